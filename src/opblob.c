/* opblob.c — strict parser and canonical form of the signed operation blob;
 * see opblob.h for the exact subset.
 *
 * Decoding is yajl's (through json_parse); on top of it this file adds the
 * checks yajl 2.1 does not make, each found by probing it:
 *  - yajl's lexer accepts overlong UTF-8, encoded surrogates and code
 *    points above U+10FFFF in raw string bytes: utf8_valid() re-checks every
 *    decoded string and key;
 *  - yajl turns a lone "\ud800" escape into '?' and pairs a high surrogate
 *    with any following \u escape ("\ud800\u0041" becomes U+10041), and
 *    it accepts a value followed by an unterminated string ("{} \"x"):
 *    strings_ok() scans the raw text's strings before the tree is used;
 *  - yajl takes vertical tab and form feed as whitespace (RFC 8259 does
 *    not): parse_doc() rejects those bytes (inside a string yajl rejects
 *    every raw control byte anyway);
 *  - yajl hands numbers over as text: int_text() admits only integers in
 *    the safe range.
 */
#include "opblob.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "utf8.h"
#include "json.h"

static void set_why(char *why, size_t whylen, const char *s)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", s);
}

/* A decoded string value: no NUL, well-formed UTF-8. */
static bool text_ok(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL && utf8_valid(s, n);
}

static int hex4(const char *p, size_t avail, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (avail < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Scans the strings of a document yajl has already accepted: a \u escape
 * of a high surrogate must be followed at once by an escaped low one, a
 * low one never stands alone, and the text must not end inside a string.
 * (yajl 2.1 accepts a complete value followed by an unterminated string,
 * `{} "x`: its end-of-input check feeds one space, which an open string
 * swallows.) Outside strings valid JSON has no backslash, and inside one
 * every backslash starts exactly one escape, so tracking quotes and
 * escapes is enough. */
static bool strings_ok(const char *p, size_t n)
{
	bool in = false;
	size_t i;
	unsigned u, lo;

	for (i = 0; i < n; i++) {
		char c = p[i];
		if (!in) {
			if (c == '"')
				in = true;
			continue;
		}
		if (c == '"') {
			in = false;
			continue;
		}
		if (c != '\\')
			continue;
		if (++i >= n)
			return false;
		if (p[i] != 'u')
			continue;
		if (hex4(p + i + 1, n - i - 1, &u))
			return false;
		i += 4;
		if (u >= 0xdc00 && u <= 0xdfff)
			return false;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (n - i - 1 < 6 || p[i + 1] != '\\' || p[i + 2] != 'u' ||
			    hex4(p + i + 3, n - i - 3, &lo) || lo < 0xdc00 || lo > 0xdfff)
				return false;
			i += 6;
		}
	}
	return !in;
}

/* A JSON number's text as an integer of the canonical subset. yajl has
 * checked the JSON number grammar already; this admits only '-'? digits
 * with no leading zero, not "-0", within +-(2^53-1). */
static int int_text(const char *s, size_t n, int64_t *out, const char **why)
{
	size_t i = 0, digits;
	uint64_t v = 0;
	bool neg = false;

	if (n && s[0] == '-') {
		neg = true;
		i = 1;
	}
	digits = n - i;
	if (digits == 0) {
		*why = "number syntax";
		return FH_ERR_SIG_MALFORMED;
	}
	for (; i < n; i++) {
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
			*why = "float or exponent where an integer is due";
			return FH_ERR_SIG_MALFORMED;
		}
		if (s[i] < '0' || s[i] > '9') {
			*why = "number syntax";
			return FH_ERR_SIG_MALFORMED;
		}
	}
	i = neg ? 1 : 0;
	if (digits > 1 && s[i] == '0') {
		*why = "number with a leading zero";
		return FH_ERR_SIG_MALFORMED;
	}
	if (digits > 16) {
		*why = "integer outside +-(2^53-1)";
		return FH_ERR_SIG_MALFORMED;
	}
	for (; i < n; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (v > (uint64_t)OPBLOB_MAX_SAFE_INT) {
		*why = "integer outside +-(2^53-1)";
		return FH_ERR_SIG_MALFORMED;
	}
	if (neg && v == 0) {
		*why = "negative zero";
		return FH_ERR_SIG_MALFORMED;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* ---- canonical emission ---- */

int json_canonical_string(const char *s, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = out->len, i, run = 0;
	int r = FH_ERR_INTERNAL;

	if (!text_ok(s, n))
		return FH_ERR_INVAL;
	r = buf_append(out, "\"", 1);
	for (i = 0; !r && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			elen = 6;
			break;
		}
		r = buf_append(out, s + run, i - run);
		if (!r)
			r = buf_append(out, esc, elen);
		run = i + 1;
	}
	if (!r)
		r = buf_append(out, s + run, n - run);
	if (!r)
		r = buf_append(out, "\"", 1);
	if (r && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}

static int emit_str(struct buf *out, const char *s)
{
	return json_canonical_string(s, strlen(s), out);
}

struct member {
	const char *key;
	const struct json *val;
};

/* Byte order of NUL-free keys: strcmp compares as unsigned char. */
static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->key, ((const struct member *)b)->key);
}

/* Emits a tree that check_tree() accepted. */
static int emit_tree(const struct json *j, struct buf *out)
{
	struct member *m = NULL;
	size_t i;
	int r = FH_ERR_INTERNAL;

	switch (j->type) {
	case JSON_NULL:
		return buf_appendz(out, "null");
	case JSON_BOOL:
		return buf_appendz(out, j->b ? "true" : "false");
	case JSON_NUMBER:       /* already the shortest form: checked by int_text */
		return buf_append(out, j->s, j->slen);
	case JSON_STRING:
		return json_canonical_string(j->s, j->slen, out);
	case JSON_ARRAY:
		r = buf_append(out, "[", 1);
		for (i = 0; !r && i < j->n; i++) {
			if (i)
				r = buf_append(out, ",", 1);
			if (!r)
				r = emit_tree(j->items[i], out);
		}
		return r ? r : buf_append(out, "]", 1);
	case JSON_OBJECT:
		break;
	}
	if (j->n) {
		m = malloc(j->n * sizeof(*m));
		if (!m)
			return FH_ERR_NOMEM;
		for (i = 0; i < j->n; i++) {
			m[i].key = j->keys[i];
			m[i].val = j->items[i];
		}
		qsort(m, j->n, sizeof(*m), member_cmp);
	}
	r = buf_append(out, "{", 1);
	for (i = 0; !r && i < j->n; i++) {
		if (i)
			r = buf_append(out, ",", 1);
		if (!r)
			r = emit_str(out, m[i].key);
		if (!r)
			r = buf_append(out, ":", 1);
		if (!r)
			r = emit_tree(m[i].val, out);
	}
	if (!r)
		r = buf_append(out, "}", 1);
	free(m);
	return r;
}

/* Every value of the tree inside the canonical subset. */
static int check_tree(const struct json *j, const char **why)
{
	int64_t v;
	size_t i;
	int r;

	switch (j->type) {
	case JSON_NULL:
	case JSON_BOOL:
		return 0;
	case JSON_NUMBER:
		return int_text(j->s, j->slen, &v, why);
	case JSON_STRING:
		if (!text_ok(j->s, j->slen)) {
			*why = "NUL or invalid UTF-8 in a string";
			return FH_ERR_SIG_MALFORMED;
		}
		return 0;
	case JSON_ARRAY:
	case JSON_OBJECT:
		for (i = 0; i < j->n; i++) {
			if (j->type == JSON_OBJECT && !utf8_valid(j->keys[i], strlen(j->keys[i]))) {
				*why = "invalid UTF-8 in a key";
				return FH_ERR_SIG_MALFORMED;
			}
			r = check_tree(j->items[i], why);
			if (r)
				return r;
		}
		return 0;
	}
	*why = "unknown value type";
	return FH_ERR_INTERNAL;
}

/* json_parse plus the checks yajl leaves out; maps input rejections to
 * FH_ERR_SIG_MALFORMED. */
static int parse_doc(const char *p, size_t n, size_t max_bytes, unsigned max_depth, struct json **out,
		     char *why, size_t whylen)
{
	struct json_limits lim = { max_bytes, max_depth, false };
	struct json *j = NULL;
	char jwhy[96] = "";
	int r;

	if (n > max_bytes) {
		set_why(why, whylen, "input too long");
		return FH_ERR_SIG_MALFORMED;
	}
	if (n && (memchr(p, '\v', n) || memchr(p, '\f', n))) {
		set_why(why, whylen, "vertical tab or form feed outside a string");
		return FH_ERR_SIG_MALFORMED;
	}
	r = json_parse(p, n, &lim, &j, jwhy, sizeof(jwhy));
	if (r == FH_ERR_NOMEM)
		return r;
	if (r) {
		set_why(why, whylen, jwhy[0] ? jwhy : "invalid JSON");
		return FH_ERR_SIG_MALFORMED;
	}
	if (!strings_ok(p, n)) {
		json_free(j);
		set_why(why, whylen, "unpaired surrogate escape or trailing bytes");
		return FH_ERR_SIG_MALFORMED;
	}
	*out = j;
	return 0;
}

int json_canonical_why(const char *p, size_t n, struct buf *out, char *why, size_t whylen)
{
	struct json *j = NULL;
	const char *w = "";
	size_t start = out->len;
	int r = FH_ERR_INTERNAL;

	r = parse_doc(p, n, JSON_CANON_MAX_BYTES, JSON_CANON_MAX_DEPTH, &j, why, whylen);
	if (r)
		goto out;
	r = check_tree(j, &w);
	if (r) {
		set_why(why, whylen, w);
		goto out;
	}
	r = emit_tree(j, out);
	if (r && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
out:
	json_free(j);
	return r;
}

int json_canonical(const char *p, size_t n, struct buf *out)
{
	return json_canonical_why(p, n, out, NULL, 0);
}

/* ---- field grammars (shared by the parser and the validator) ---- */

static bool op_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool host_char(char c)
{
	return alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool nonce_char(char c)
{
	return alnum(c) || c == '+' || c == '/' || c == '=' || c == '_' || c == '-';
}

static bool print_char(char c)
{
	return c >= 0x20 && c <= 0x7e;
}

static bool grammar(const char *s, size_t n, size_t min, size_t max, bool (*ok)(char))
{
	size_t i;

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++) {
		if (!ok(s[i]))
			return false;
	}
	return true;
}

static bool op_ok(const char *s, size_t n) { return grammar(s, n, 1, 63, op_char); }
static bool host_ok(const char *s, size_t n) { return grammar(s, n, 1, 127, host_char); }
static bool nonce_ok(const char *s, size_t n) { return grammar(s, n, 16, 128, nonce_char); }
static bool key_id_ok(const char *s, size_t n) { return grammar(s, n, 1, 64, print_char); }
static bool param_key_ok(const char *s, size_t n) { return grammar(s, n, 1, 63, op_char); }

static bool guest_ok(int64_t g)
{
	return g >= 100 && g <= 999999999;
}

static bool time_ok(int64_t t)
{
	return t >= 1 && t <= OPBLOB_MAX_SAFE_INT;
}

/* Length of a NUL-terminated string inside a fixed array, or SIZE_MAX when
 * the array holds no NUL. */
static size_t field_len(const char *s, size_t size)
{
	size_t n = strnlen(s, size);
	return n < size ? n : SIZE_MAX;
}

#define FLEN(f) field_len((f), sizeof(f))

static int param_cmp(const void *a, const void *b)
{
	return strcmp(((const struct opblob_param *)a)->key, ((const struct opblob_param *)b)->key);
}

static int validate_params(const struct opblob *b, const char **why)
{
	size_t i, k, n;

	if (b->nparams > OPBLOB_MAX_PARAMS) {
		*why = "params: too many members";
		return FH_ERR_INVAL;
	}
	for (i = 0; i < b->nparams; i++) {
		const struct opblob_param *pm = &b->params[i];
		n = FLEN(pm->key);
		if (n == SIZE_MAX || !param_key_ok(pm->key, n)) {
			*why = "params: key not [a-z0-9_]{1,63}";
			return FH_ERR_INVAL;
		}
		for (k = 0; k < i; k++) {
			if (strcmp(b->params[k].key, pm->key) == 0) {
				*why = "params: duplicate key";
				return FH_ERR_INVAL;
			}
		}
		switch (pm->type) {
		case OPBLOB_STR:
			n = FLEN(pm->str);
			if (n == SIZE_MAX || !utf8_valid(pm->str, n)) {
				*why = "params: string not UTF-8 of at most 1023 bytes";
				return FH_ERR_INVAL;
			}
			break;
		case OPBLOB_INT:
			if (pm->num < -OPBLOB_MAX_SAFE_INT || pm->num > OPBLOB_MAX_SAFE_INT) {
				*why = "params: integer outside +-(2^53-1)";
				return FH_ERR_INVAL;
			}
			break;
		case OPBLOB_BOOL:
		case OPBLOB_NULL:
			break;
		default:
			*why = "params: unknown value type";
			return FH_ERR_INVAL;
		}
	}
	return 0;
}

int opblob_validate(const struct opblob *b, char *why, size_t whylen)
{
	const char *w = NULL;
	size_t n;

	if (b->v != 1)
		w = "v: not 1";
	else if ((n = FLEN(b->op)) == SIZE_MAX || !op_ok(b->op, n))
		w = "op: not [a-z0-9_]{1,63}";
	else if ((n = FLEN(b->host_id)) == SIZE_MAX || !host_ok(b->host_id, n))
		w = "host_id: not [A-Za-z0-9._-]{1,127}";
	else if (b->has_guest && !guest_ok(b->guest_id))
		w = "guest_id: not null or 100..999999999";
	else if ((n = FLEN(b->key_id)) == SIZE_MAX || !key_id_ok(b->key_id, n))
		w = "key_id: not printable ASCII of 1..64 bytes";
	else if ((n = FLEN(b->nonce)) == SIZE_MAX || !nonce_ok(b->nonce, n))
		w = "nonce: not [A-Za-z0-9+/=_-]{16,128}";
	else if (!time_ok(b->issued_at))
		w = "issued_at: not a positive safe integer";
	else if (!time_ok(b->expires_at))
		w = "expires_at: not a positive safe integer";
	else if (b->expires_at <= b->issued_at)
		w = "expires_at: not after issued_at";
	else if (validate_params(b, &w) == 0)
		return 0;
	set_why(why, whylen, w);
	return FH_ERR_INVAL;
}

/* ---- the blob parser ---- */

static const char *const blob_fields[] = {
	"expires_at", "guest_id", "host_id", "issued_at", "key_id", "nonce", "op", "params", "v",
};
static const char *const missing_why[] = {
	"missing field expires_at", "missing field guest_id", "missing field host_id",
	"missing field issued_at", "missing field key_id", "missing field nonce", "missing field op",
	"missing field params", "missing field v",
};
#define NFIELDS (sizeof(blob_fields) / sizeof(blob_fields[0]))

/* A string member into dst (size dstlen) if it passes ok(). */
static int get_str(const struct json *v, bool (*ok)(const char *, size_t), char *dst, size_t dstlen,
		   const char *bad_type, const char *bad_value, const char **why)
{
	if (v->type != JSON_STRING) {
		*why = bad_type;
		return FH_ERR_SIG_MALFORMED;
	}
	if (!text_ok(v->s, v->slen) || v->slen >= dstlen || !ok(v->s, v->slen)) {
		*why = bad_value;
		return FH_ERR_SIG_MALFORMED;
	}
	memcpy(dst, v->s, v->slen);
	dst[v->slen] = '\0';
	return 0;
}

static int get_int(const struct json *v, int64_t *out, const char *bad_type, const char **why)
{
	if (v->type != JSON_NUMBER) {
		*why = bad_type;
		return FH_ERR_SIG_MALFORMED;
	}
	return int_text(v->s, v->slen, out, why);
}

static int get_params(const struct json *v, struct opblob *b, const char **why)
{
	size_t i;
	int r;

	if (v->type != JSON_OBJECT) {
		*why = "params: not an object";
		return FH_ERR_SIG_MALFORMED;
	}
	if (v->n > OPBLOB_MAX_PARAMS) {
		*why = "params: more than 16 members";
		return FH_ERR_SIG_MALFORMED;
	}
	for (i = 0; i < v->n; i++) {
		struct opblob_param *pm = &b->params[i];
		const struct json *pv = v->items[i];
		size_t kn = strlen(v->keys[i]);

		if (!param_key_ok(v->keys[i], kn)) {
			*why = "params: key not [a-z0-9_]{1,63}";
			return FH_ERR_SIG_MALFORMED;
		}
		memcpy(pm->key, v->keys[i], kn + 1);
		switch (pv->type) {
		case JSON_STRING:
			pm->type = OPBLOB_STR;
			r = get_str(pv, utf8_valid, pm->str, sizeof(pm->str), "params: not a string",
				    "params: string with NUL, invalid UTF-8 or over 1023 bytes", why);
			if (r)
				return r;
			break;
		case JSON_NUMBER:
			pm->type = OPBLOB_INT;
			r = int_text(pv->s, pv->slen, &pm->num, why);
			if (r)
				return r;
			break;
		case JSON_BOOL:
			pm->type = OPBLOB_BOOL;
			pm->b = pv->b;
			break;
		case JSON_NULL:
			pm->type = OPBLOB_NULL;
			break;
		case JSON_ARRAY:
		case JSON_OBJECT:
		default:
			*why = "params: nested value";
			return FH_ERR_SIG_MALFORMED;
		}
	}
	b->nparams = v->n;
	qsort(b->params, b->nparams, sizeof(b->params[0]), param_cmp);
	return 0;
}

int opblob_parse(const char *p, size_t n, struct opblob *out, char *why, size_t whylen)
{
	struct json *j = NULL;
	struct opblob *b = NULL;
	const struct json *f[NFIELDS];
	const char *w = "internal";
	size_t i, k;
	int r = FH_ERR_INTERNAL;

	r = parse_doc(p, n, OPBLOB_MAX_BYTES, OPBLOB_MAX_DEPTH, &j, why, whylen);
	if (r)
		return r;
	r = FH_ERR_SIG_MALFORMED;
	if (j->type != JSON_OBJECT) {
		w = "not a JSON object";
		goto out;
	}
	memset(f, 0, sizeof(f));
	for (i = 0; i < j->n; i++) {
		for (k = 0; k < NFIELDS; k++) {
			if (strcmp(j->keys[i], blob_fields[k]) == 0)
				break;
		}
		if (k == NFIELDS) {
			w = "unknown top-level field";
			goto out;
		}
		f[k] = j->items[i];     /* json_parse rejected duplicates */
	}
	for (k = 0; k < NFIELDS; k++) {
		if (!f[k]) {
			w = missing_why[k];
			goto out;
		}
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	/* fields in blob_fields order: expires_at guest_id host_id issued_at
	 * key_id nonce op params v */
	if (get_int(f[0], &b->expires_at, "expires_at: not an integer", &w))
		goto out;
	if (f[1]->type == JSON_NULL) {
		b->has_guest = false;
	} else {
		if (get_int(f[1], &b->guest_id, "guest_id: not an integer or null", &w))
			goto out;
		b->has_guest = true;
		if (!guest_ok(b->guest_id)) {
			w = "guest_id: not 100..999999999";
			goto out;
		}
	}
	if (get_str(f[2], host_ok, b->host_id, sizeof(b->host_id), "host_id: not a string",
		    "host_id: not [A-Za-z0-9._-]{1,127}", &w))
		goto out;
	if (get_int(f[3], &b->issued_at, "issued_at: not an integer", &w))
		goto out;
	if (get_str(f[4], key_id_ok, b->key_id, sizeof(b->key_id), "key_id: not a string",
		    "key_id: not printable ASCII of 1..64 bytes", &w))
		goto out;
	if (get_str(f[5], nonce_ok, b->nonce, sizeof(b->nonce), "nonce: not a string",
		    "nonce: not [A-Za-z0-9+/=_-]{16,128}", &w))
		goto out;
	if (get_str(f[6], op_ok, b->op, sizeof(b->op), "op: not a string", "op: not [a-z0-9_]{1,63}", &w))
		goto out;
	if (get_params(f[7], b, &w))
		goto out;
	if (get_int(f[8], &b->v, "v: not an integer", &w))
		goto out;
	if (b->v != 1) {
		w = "v: not 1";
		goto out;
	}
	if (!time_ok(b->issued_at)) {
		w = "issued_at: not positive";
		goto out;
	}
	if (!time_ok(b->expires_at)) {
		w = "expires_at: not positive";
		goto out;
	}
	if (b->expires_at <= b->issued_at) {
		w = "expires_at: not after issued_at";
		goto out;
	}
	memcpy(out, b, sizeof(*out));
	r = 0;
out:
	if (r)
		set_why(why, whylen, w);
	free(b);
	json_free(j);
	return r;
}

/* ---- canonical emission of a blob ---- */

static int emit_params(const struct opblob *b, struct buf *out)
{
	const struct opblob_param *sorted[OPBLOB_MAX_PARAMS];
	size_t i, k;
	int r;

	for (i = 0; i < b->nparams; i++) {
		/* insertion sort by key: at most 16 */
		for (k = i; k > 0 && strcmp(sorted[k - 1]->key, b->params[i].key) > 0; k--)
			sorted[k] = sorted[k - 1];
		sorted[k] = &b->params[i];
	}
	r = buf_append(out, "{", 1);
	for (i = 0; !r && i < b->nparams; i++) {
		const struct opblob_param *pm = sorted[i];
		if (i)
			r = buf_append(out, ",", 1);
		if (!r)
			r = emit_str(out, pm->key);
		if (!r)
			r = buf_append(out, ":", 1);
		if (r)
			break;
		switch (pm->type) {
		case OPBLOB_STR:
			r = emit_str(out, pm->str);
			break;
		case OPBLOB_INT:
			r = buf_printf(out, "%" PRId64, pm->num);
			break;
		case OPBLOB_BOOL:
			r = buf_appendz(out, pm->b ? "true" : "false");
			break;
		case OPBLOB_NULL:
		default:
			r = buf_appendz(out, "null");
			break;
		}
	}
	return r ? r : buf_append(out, "}", 1);
}

int opblob_params_canonical(const struct opblob *b, struct buf *out)
{
	const char *w = NULL;
	size_t start = out->len;
	int r;

	if (validate_params(b, &w))
		return FH_ERR_INVAL;
	r = emit_params(b, out);
	if (r && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}

int opblob_canonical(const struct opblob *b, struct buf *out)
{
	size_t start = out->len;
	int r = FH_ERR_INTERNAL;

	if (opblob_validate(b, NULL, 0))
		return FH_ERR_INVAL;
	r = buf_printf(out, "{\"expires_at\":%" PRId64 ",\"guest_id\":", b->expires_at);
	if (!r)
		r = b->has_guest ? buf_printf(out, "%" PRId64, b->guest_id) : buf_appendz(out, "null");
	if (!r)
		r = buf_appendz(out, ",\"host_id\":");
	if (!r)
		r = emit_str(out, b->host_id);
	if (!r)
		r = buf_printf(out, ",\"issued_at\":%" PRId64 ",\"key_id\":", b->issued_at);
	if (!r)
		r = emit_str(out, b->key_id);
	if (!r)
		r = buf_appendz(out, ",\"nonce\":");
	if (!r)
		r = emit_str(out, b->nonce);
	if (!r)
		r = buf_appendz(out, ",\"op\":");
	if (!r)
		r = emit_str(out, b->op);
	if (!r)
		r = buf_appendz(out, ",\"params\":");
	if (!r)
		r = emit_params(b, out);
	if (!r)
		r = buf_appendz(out, ",\"v\":1}");
	if (r && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}
