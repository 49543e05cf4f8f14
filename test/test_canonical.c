/* test_canonical.c — the canonical JSON form and the strict op-blob parser
 * (opblob.h): every case of vectors/canonical/manifest.txt, parse and
 * canonical round trips, and every class of malformed blob. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "opblob.h"

#define VEC_DIR "vectors/canonical"
#define MARK "QQMARKQQ"   /* a byte string that must never show in a reason */

/* ---- helpers ---- */

static bool param_eq(const struct opblob_param *a, const struct opblob_param *b)
{
	if (strcmp(a->key, b->key) || a->type != b->type)
		return false;
	switch (a->type) {
	case OPBLOB_STR: return strcmp(a->str, b->str) == 0;
	case OPBLOB_INT: return a->num == b->num;
	case OPBLOB_BOOL: return a->b == b->b;
	default: return true;
	}
}

static bool blob_eq(const struct opblob *a, const struct opblob *b)
{
	size_t i;

	if (a->v != b->v || strcmp(a->op, b->op) || strcmp(a->host_id, b->host_id) ||
	    a->has_guest != b->has_guest || (a->has_guest && a->guest_id != b->guest_id) ||
	    strcmp(a->key_id, b->key_id) || strcmp(a->nonce, b->nonce) || a->issued_at != b->issued_at ||
	    a->expires_at != b->expires_at || a->nparams != b->nparams)
		return false;
	for (i = 0; i < a->nparams; i++) {
		if (!param_eq(&a->params[i], &b->params[i]))
			return false;
	}
	return true;
}

/* The fields of a test blob as raw JSON text; NULL omits the member. */
struct fields {
	const char *expires_at, *guest_id, *host_id, *issued_at, *key_id, *nonce, *op, *params, *v;
	const char *extra;    /* appended raw after the last member, e.g. ",\"x\":1" */
};

static const struct fields base = {
	"1781000900", "null", "\"host-7f3a\"", "1781000000", "\"ops-" MARK "\"", "\"q3J0bm9uY2Utbm9uY2U\"",
	"\"storage_wipe\"", "{\"durable_id\":\"byid:ata-WDC_X\"}", "1", "",
};

/* Builds {"op":..,...} in a deliberately non-canonical member order. */
static void mk(struct buf *b, const struct fields *f)
{
	const char *names[] = { "v", "op", "host_id", "guest_id", "params", "key_id", "nonce", "issued_at",
				"expires_at" };
	const char *vals[] = { f->v, f->op, f->host_id, f->guest_id, f->params, f->key_id, f->nonce,
			       f->issued_at, f->expires_at };
	size_t i;
	bool first = true;

	buf_reset(b);
	buf_appendz(b, "{ ");
	for (i = 0; i < 9; i++) {
		if (!vals[i])
			continue;
		buf_printf(b, "%s\"%s\": %s", first ? "" : ", ", names[i], vals[i]);
		first = false;
	}
	buf_appendz(b, f->extra ? f->extra : "");
	buf_appendz(b, " }");
}

/* Parses text; on success checks that the canonical bytes re-parse to the
 * same struct and are a fixed point of json_canonical. */
static int parse_rt(const char *p, size_t n, struct opblob *out, char *why, size_t whylen)
{
	struct opblob *again = calloc(1, sizeof(*again));
	struct buf c, c2;
	int r;

	buf_init(&c, 1 << 16);
	buf_init(&c2, 1 << 16);
	r = opblob_parse(p, n, out, why, whylen);
	if (r == 0) {
		T_OK(opblob_canonical(out, &c));
		T_OK(opblob_parse(c.data, c.len, again, NULL, 0));
		T_CHECK(blob_eq(out, again));
		T_OK(json_canonical(c.data, c.len, &c2));
		T_CHECK(c.len == c2.len && memcmp(c.data, c2.data, c.len) == 0);
		buf_reset(&c2);
		T_OK(json_canonical(p, n, &c2));       /* canonical of the input = canonical of the struct */
		T_CHECK(c.len == c2.len && memcmp(c.data, c2.data, c.len) == 0);
	}
	buf_free(&c);
	buf_free(&c2);
	free(again);
	return r;
}

static char *xstrdup_rep(char ch, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

/* ---- the manifest ---- */

static char *vec_path(const char *name, const char *suffix)
{
	char *p = malloc(strlen(VEC_DIR) + strlen(name) + strlen(suffix) + 2);
	sprintf(p, "%s/%s%s", VEC_DIR, name, suffix);
	return p;
}

T_TEST(t_manifest_cases)
{
	size_t mlen = 0, nok = 0, nbad = 0;
	char *m = t_slurp(VEC_DIR "/manifest.txt", &mlen);
	char *line, *save = NULL;

	T_CHECK(m != NULL);
	if (!m)
		return;
	for (line = strtok_r(m, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tab1, *tab2, *name = line, *outcome;
		if (line[0] == '#' || !line[0])
			continue;
		tab1 = strchr(line, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		T_CHECK(tab1 && tab2);
		if (!tab1 || !tab2)
			continue;
		*tab1 = *tab2 = '\0';
		outcome = tab1 + 1;
		if (strcmp(outcome, "ok") == 0) {
			char *ip = vec_path(name, ".in.json"), *op = vec_path(name, ".out");
			size_t il = 0, ol = 0;
			char *in = t_slurp(ip, &il), *want = t_slurp(op, &ol);
			struct buf b, b2;
			buf_init(&b, 1 << 20);
			buf_init(&b2, 1 << 20);
			T_CHECK(in && want);
			if (in && want) {
				int r = json_canonical(in, il, &b);
				if (r || b.len != ol || memcmp(b.data, want, ol) != 0)
					t_failf(__FILE__, __LINE__, "case %s: r=%s, got %zu bytes, want %zu", name,
						fh_strerror(r), b.len, ol);
				/* canonical output is a fixed point */
				T_OK(json_canonical(want, ol, &b2));
				T_CHECK(b2.len == ol && memcmp(b2.data, want, ol) == 0);
			}
			nok++;
			free(in);
			free(want);
			free(ip);
			free(op);
			buf_free(&b);
			buf_free(&b2);
		} else if (strcmp(outcome, "malformed") == 0) {
			char *ip = vec_path(name, ".bad.json");
			size_t il = 0;
			char *in = t_slurp(ip, &il);
			struct buf b;
			char why[128] = "";
			buf_init(&b, 1 << 20);
			buf_appendz(&b, "prefix");
			T_CHECK(in != NULL);
			if (in) {
				int r = json_canonical_why(in, il, &b, why, sizeof(why));
				if (r != FH_ERR_SIG_MALFORMED)
					t_failf(__FILE__, __LINE__, "case %s: r=%s, want malformed", name,
						fh_strerror(r));
				T_CHECK(why[0] != '\0');
				T_EQ_STR(buf_str(&b), "prefix");   /* untouched on failure */
			}
			nbad++;
			free(in);
			free(ip);
			buf_free(&b);
		} else {
			t_failf(__FILE__, __LINE__, "case %s: unknown outcome %s", name, outcome);
		}
	}
	free(m);
	/* the manifest is not accidentally empty or truncated */
	T_CHECK(nok >= 40);
	T_CHECK(nbad >= 50);
}

/* Every file in the directory belongs to a manifest case. */
T_TEST(t_manifest_covers_files)
{
	DIR *d = opendir(VEC_DIR);
	struct dirent *de;
	char *m = t_slurp(VEC_DIR "/manifest.txt", NULL);
	size_t files = 0;

	T_CHECK(d && m);
	if (!d || !m) {
		if (d)
			closedir(d);
		free(m);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char name[256], needle[300];
		const char *n = de->d_name;
		size_t l = strlen(n);
		const char *suffixes[] = { ".in.json", ".out", ".bad.json" };
		size_t k;
		bool matched = false;

		if (n[0] == '.' || !strcmp(n, "manifest.txt") || !strcmp(n, "mkvectors.py") ||
		    !strcmp(n, "__pycache__"))
			continue;
		for (k = 0; k < 3; k++) {
			size_t sl = strlen(suffixes[k]);
			if (l > sl && l - sl < sizeof(name) && !strcmp(n + l - sl, suffixes[k])) {
				memcpy(name, n, l - sl);
				name[l - sl] = '\0';
				snprintf(needle, sizeof(needle), "\n%s\t%s\t", name, k == 2 ? "malformed" : "ok");
				matched = strstr(m, needle) != NULL;
			}
		}
		if (!matched)
			t_failf(__FILE__, __LINE__, "file %s is not a manifest case", n);
		files++;
	}
	closedir(d);
	free(m);
	T_CHECK(files >= 100);
}

static const char *python3(void)
{
	static const char *const cands[] = { "/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3" };
	size_t i;

	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	}
	return NULL;
}

/* The checked-in generator's reference canonicalizer agrees with the files
 * (so the vectors cannot drift from the script that documents them). */
T_TEST(t_generator_check)
{
	const char *py = python3();
	char *out = NULL;

	T_CHECK(py != NULL);     /* python3 is a build dependency (Makefile DEB_PKGS) */
	if (!py)
		return;
	{
		const char *argv[] = { py, VEC_DIR "/mkvectors.py", "--check", NULL };
		const char *envp[] = { "LC_ALL=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", NULL };
		int st = t_run_cmd(argv, envp, &out, NULL);
		T_EQ_INT(st, 0);
		T_CHECK(out && strstr(out, " 0 problems"));
		if (st)
			printf("%s", out ? out : "");
	}
	free(out);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Differential: the Python reference (mkvectors.py --canon-dir) and
 * json_canonical agree on every input of the fuzz corpus, outcome and
 * bytes. */
T_TEST(t_differential_fuzz_corpus)
{
	const char *py = python3();
	char *out = NULL, *line, *save = NULL;
	size_t cases = 0;

	T_CHECK(py != NULL);
	if (!py)
		return;
	{
		const char *argv[] = { py, VEC_DIR "/mkvectors.py", "--canon-dir", "vectors/fuzz/opblob", NULL };
		const char *envp[] = { "LC_ALL=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", NULL };
		T_EQ_INT(t_run_cmd(argv, envp, &out, NULL), 0);
	}
	for (line = out ? strtok_r(out, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *t1 = strchr(line, '\t'), *t2, path[512];
		struct buf got, want;
		size_t len = 0, i;
		char *in;
		int r;

		if (!t1)
			continue;
		*t1 = '\0';
		t2 = strchr(t1 + 1, '\t');
		if (t2)
			*t2 = '\0';
		snprintf(path, sizeof(path), "vectors/fuzz/opblob/%s", line);
		in = t_slurp(path, &len);
		T_CHECK(in != NULL);
		if (!in)
			continue;
		buf_init(&got, 1 << 20);
		buf_init(&want, 1 << 20);
		r = json_canonical(in, len, &got);
		if (!strcmp(t1 + 1, "malformed")) {
			if (r != FH_ERR_SIG_MALFORMED)
				t_failf(__FILE__, __LINE__, "%s: python rejects, C gives %s", line, fh_strerror(r));
		} else {
			for (i = 0; t2 && t2[1 + i] && t2[2 + i]; i += 2) {
				char byte = (char)(hexval(t2[1 + i]) << 4 | hexval(t2[2 + i]));
				buf_append(&want, &byte, 1);
			}
			if (r || got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
				t_failf(__FILE__, __LINE__, "%s: C (%s, %zu bytes) and python (%zu bytes) differ", line,
					fh_strerror(r), got.len, want.len);
		}
		cases++;
		buf_free(&got);
		buf_free(&want);
		free(in);
	}
	free(out);
	T_CHECK(cases >= 50);
}

/* ---- json_canonical details not in files ---- */

T_TEST(t_canonical_string)
{
	struct buf b;

	buf_init(&b, 256);
	T_OK(json_canonical_string("a\"\\\b\f\n\r\t\x01\x1f\x7f\xc3\xa9", 13, &b));
	T_EQ_STR(buf_str(&b), "\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\"");
	buf_reset(&b);
	T_ERR(json_canonical_string("a\0b", 3, &b), FH_ERR_INVAL);
	T_ERR(json_canonical_string("\xc0\x80", 2, &b), FH_ERR_INVAL);
	T_ERR(json_canonical_string("\xed\xa0\x80", 3, &b), FH_ERR_INVAL);
	T_EQ_INT(b.len, 0);
	T_OK(json_canonical_string("", 0, &b));
	T_EQ_STR(buf_str(&b), "\"\"");
	buf_free(&b);
}

T_TEST(t_canonical_output_cap)
{
	struct buf b;

	buf_init(&b, 8);
	buf_appendz(&b, "xy");
	T_ERR(json_canonical("{\"abc\":\"defgh\"}", 15, &b), FH_ERR_TOOBIG);
	T_EQ_STR(buf_str(&b), "xy");
	T_EQ_INT(b.len, 2);
	T_OK(json_canonical(" [ 1 ] ", 7, &b));
	T_EQ_STR(buf_str(&b), "xy[1]");
	buf_free(&b);
}

T_TEST(t_canonical_null_input)
{
	struct buf b;
	char why[64] = "";

	buf_init(&b, 64);
	T_ERR(json_canonical_why(NULL, 0, &b, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_CHECK(why[0]);
	buf_free(&b);
}

/* ---- opblob_parse: accepted blobs ---- */

static const char spec_canonical[] =
	"{\"expires_at\":1781000900,\"guest_id\":null,\"host_id\":\"host-7f3a\",\"issued_at\":1781000000,"
	"\"key_id\":\"ops-" MARK "\",\"nonce\":\"q3J0bm9uY2Utbm9uY2U\",\"op\":\"storage_wipe\","
	"\"params\":{\"durable_id\":\"byid:ata-WDC_X\"},\"v\":1}";

T_TEST(t_parse_spec_blob)
{
	struct opblob *o = calloc(1, sizeof(*o));
	struct buf b, c;
	char why[128] = "";

	buf_init(&b, 1 << 16);
	buf_init(&c, 1 << 16);
	mk(&b, &base);
	T_OK(parse_rt(b.data, b.len, o, why, sizeof(why)));
	T_EQ_INT(o->v, 1);
	T_EQ_STR(o->op, "storage_wipe");
	T_EQ_STR(o->host_id, "host-7f3a");
	T_CHECK(!o->has_guest);
	T_EQ_STR(o->key_id, "ops-" MARK);
	T_EQ_STR(o->nonce, "q3J0bm9uY2Utbm9uY2U");
	T_EQ_INT(o->issued_at, 1781000000);
	T_EQ_INT(o->expires_at, 1781000900);
	T_EQ_INT(o->nparams, 1);
	T_EQ_STR(o->params[0].key, "durable_id");
	T_EQ_INT(o->params[0].type, OPBLOB_STR);
	T_EQ_STR(o->params[0].str, "byid:ata-WDC_X");
	T_OK(opblob_canonical(o, &c));
	T_EQ_STR(buf_str(&c), spec_canonical);
	buf_reset(&c);
	T_OK(opblob_params_canonical(o, &c));
	T_EQ_STR(buf_str(&c), "{\"durable_id\":\"byid:ata-WDC_X\"}");
	/* the canonical bytes parse as well */
	T_OK(parse_rt(spec_canonical, strlen(spec_canonical), o, NULL, 0));
	buf_free(&b);
	buf_free(&c);
	free(o);
}

T_TEST(t_parse_edges_accepted)
{
	struct opblob *o = calloc(1, sizeof(*o));
	struct buf b, c;
	struct fields f;
	char *op63 = xstrdup_rep('a', 63), *host127 = xstrdup_rep('H', 127), *n128 = xstrdup_rep('Z', 128);
	char *s1023 = xstrdup_rep('s', 1023);
	char q1[80], q2[160], q3[160], params[4096];
	size_t i;

	buf_init(&b, 1 << 16);
	buf_init(&c, 1 << 16);

	/* longest op, host, nonce; key_id of 64 printable characters incl. space and ~ */
	f = base;
	snprintf(q1, sizeof(q1), "\"%s\"", op63);
	snprintf(q2, sizeof(q2), "\"%s\"", host127);
	snprintf(q3, sizeof(q3), "\"%s\"", n128);
	f.op = q1;
	f.host_id = q2;
	f.nonce = q3;
	f.key_id = "\" ~!#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`\"";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_INT(strlen(o->op), 63);
	T_EQ_INT(strlen(o->host_id), 127);
	T_EQ_INT(strlen(o->nonce), 128);
	T_EQ_INT(strlen(o->key_id), 64);

	/* escaped key_id characters */
	f = base;
	f.key_id = "\"a\\\"b\\\\c\\/d\"";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_STR(o->key_id, "a\"b\\c/d");

	/* host charset, shortest nonce, guest bounds */
	f = base;
	f.host_id = "\"A.b_c-9\"";
	f.nonce = "\"+/=_-AAAAAAAAAAA\"";
	f.guest_id = "100";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_CHECK(o->has_guest);
	T_EQ_INT(o->guest_id, 100);
	f.guest_id = "999999999";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_INT(o->guest_id, 999999999);

	/* smallest times; largest safe times */
	f = base;
	f.issued_at = "1";
	f.expires_at = "2";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	f.issued_at = "9007199254740990";
	f.expires_at = "9007199254740991";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_INT(o->expires_at, 9007199254740991LL);

	/* empty params */
	f = base;
	f.params = "{ }";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_INT(o->nparams, 0);
	buf_reset(&c);
	T_OK(opblob_params_canonical(o, &c));
	T_EQ_STR(buf_str(&c), "{}");

	/* every param type, sorted on output, unicode and escapes kept */
	f = base;
	f.params = "{\"z\":null,\"n\":-9007199254740991,\"b\":false,\"t\":true,\"s\":\"\\u00e9\\n\\u2028\",\"e\":\"\"}";
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_INT(o->nparams, 6);
	buf_reset(&c);
	T_OK(opblob_params_canonical(o, &c));
	T_EQ_STR(buf_str(&c), "{\"b\":false,\"e\":\"\",\"n\":-9007199254740991,\"s\":\"\xc3\xa9\\n\xe2\x80\xa8\","
			      "\"t\":true,\"z\":null}");
	T_EQ_STR(o->params[0].key, "b");
	T_EQ_STR(o->params[5].key, "z");

	/* 16 params (the cap), one string of 1023 bytes */
	{
		size_t off = 0;
		off += (size_t)snprintf(params + off, sizeof(params) - off, "{\"long\":\"%s\"", s1023);
		for (i = 1; i < OPBLOB_MAX_PARAMS; i++)
			off += (size_t)snprintf(params + off, sizeof(params) - off, ",\"p%02zu\":%zu", i, i);
		snprintf(params + off, sizeof(params) - off, "}");
	}
	f = base;
	f.params = params;
	mk(&b, &f);
	T_OK(parse_rt(b.data, b.len, o, NULL, 0));
	T_EQ_INT(o->nparams, 16);
	T_EQ_INT(strlen(o->params[0].str), 1023);

	buf_free(&b);
	buf_free(&c);
	free(op63);
	free(host127);
	free(n128);
	free(s1023);
	free(o);
}

/* ---- opblob_parse: every malformed class ---- */

struct bad_case {
	const char *what;
	struct fields f;      /* fields differing from base; zero means "as base" */
	bool omit[9];         /* expires guest host issued key nonce op params v */
};

static void apply(struct fields *dst, const struct bad_case *bc)
{
	const char **d[] = { &dst->expires_at, &dst->guest_id, &dst->host_id, &dst->issued_at, &dst->key_id,
			     &dst->nonce, &dst->op, &dst->params, &dst->v };
	const char *const s[] = { bc->f.expires_at, bc->f.guest_id, bc->f.host_id, bc->f.issued_at, bc->f.key_id,
				  bc->f.nonce, bc->f.op, bc->f.params, bc->f.v };
	size_t i;

	*dst = base;
	for (i = 0; i < 9; i++) {
		if (s[i])
			*d[i] = s[i];
		if (bc->omit[i])
			*d[i] = NULL;
	}
	if (bc->f.extra)
		dst->extra = bc->f.extra;
}

#define F(...) { __VA_ARGS__ }
static const struct bad_case bad_cases[] = {
	/* missing fields, one at a time */
	{ "missing expires_at", F(0), { [0] = true } },
	{ "missing guest_id", F(0), { [1] = true } },
	{ "missing host_id", F(0), { [2] = true } },
	{ "missing issued_at", F(0), { [3] = true } },
	{ "missing key_id", F(0), { [4] = true } },
	{ "missing nonce", F(0), { [5] = true } },
	{ "missing op", F(0), { [6] = true } },
	{ "missing params", F(0), { [7] = true } },
	{ "missing v", F(0), { [8] = true } },
	/* unknown and duplicate fields */
	{ "unknown top-level field", F(.extra = ", \"" MARK "\": 1"), { 0 } },
	{ "unknown field null", F(.extra = ", \"guest\": null"), { 0 } },
	{ "duplicate top-level key", F(.extra = ", \"op\": \"storage_wipe\""), { 0 } },
	{ "duplicate escaped key", F(.extra = ", \"\\u006fp\": \"x\""), { 0 } },
	{ "duplicate param key", F(.params = "{\"a\":\"" MARK "\",\"a\":\"" MARK "\"}"), { 0 } },
	/* floats and exponents */
	{ "float v", F(.v = "1.0"), { 0 } },
	{ "exponent issued_at", F(.issued_at = "1.781e9"), { 0 } },
	{ "exponent expires_at", F(.expires_at = "1781000900e0"), { 0 } },
	{ "float guest", F(.guest_id = "100.5"), { 0 } },
	{ "float param", F(.params = "{\"n\":0.5}"), { 0 } },
	{ "negative zero guest", F(.guest_id = "-0"), { 0 } },
	{ "negative zero param", F(.params = "{\"n\":-0}"), { 0 } },
	{ "unsafe integer param", F(.params = "{\"n\":9007199254740992}"), { 0 } },
	{ "huge integer", F(.expires_at = "99999999999999999999"), { 0 } },
	/* strings where integers are due */
	{ "string v", F(.v = "\"1\""), { 0 } },
	{ "string issued_at", F(.issued_at = "\"1781000000\""), { 0 } },
	{ "string expires_at", F(.expires_at = "\"1781000900\""), { 0 } },
	{ "string guest_id", F(.guest_id = "\"100\""), { 0 } },
	{ "bool guest_id", F(.guest_id = "true"), { 0 } },
	{ "null v", F(.v = "null"), { 0 } },
	{ "null issued_at", F(.issued_at = "null"), { 0 } },
	/* integers where strings are due */
	{ "integer host_id", F(.host_id = "5"), { 0 } },
	{ "integer op", F(.op = "1"), { 0 } },
	{ "integer nonce", F(.nonce = "1234567890123456"), { 0 } },
	{ "integer key_id", F(.key_id = "7"), { 0 } },
	{ "null key_id", F(.key_id = "null"), { 0 } },
	{ "null host_id", F(.host_id = "null"), { 0 } },
	/* nested values and arrays */
	{ "object in params", F(.params = "{\"a\":{}}"), { 0 } },
	{ "array in params", F(.params = "{\"a\":[\"" MARK "\"]}"), { 0 } },
	{ "params is an array", F(.params = "[]"), { 0 } },
	{ "params is a string", F(.params = "\"x\""), { 0 } },
	{ "params is null", F(.params = "null"), { 0 } },
	{ "array guest_id", F(.guest_id = "[100]"), { 0 } },
	{ "array host_id", F(.host_id = "[\"h\"]"), { 0 } },
	{ "object v", F(.v = "{}"), { 0 } },
	{ "over-deep params", F(.params = "{\"a\":{\"b\":{\"c\":{}}}}"), { 0 } },
	/* NUL and invalid UTF-8 */
	{ "NUL in key_id", F(.key_id = "\"a\\u0000b\""), { 0 } },
	{ "NUL in param", F(.params = "{\"a\":\"x\\u0000\"}"), { 0 } },
	{ "overlong UTF-8 in param", F(.params = "{\"a\":\"\xc0\x80\"}"), { 0 } },
	{ "encoded surrogate in param", F(.params = "{\"a\":\"\xed\xa0\x80\"}"), { 0 } },
	{ "lone surrogate escape in param", F(.params = "{\"a\":\"\\ud800\"}"), { 0 } },
	{ "bad surrogate pair in param", F(.params = "{\"a\":\"\\ud800\\u0041\"}"), { 0 } },
	{ "truncated UTF-8 in param", F(.params = "{\"a\":\"\xe2\x82\"}"), { 0 } },
	{ "raw control in param", F(.params = "{\"a\":\"\t\"}"), { 0 } },
	/* v */
	{ "v 0", F(.v = "0"), { 0 } },
	{ "v 2", F(.v = "2"), { 0 } },
	{ "v -1", F(.v = "-1"), { 0 } },
	/* op grammar */
	{ "empty op", F(.op = "\"\""), { 0 } },
	{ "upper-case op", F(.op = "\"Storage_wipe\""), { 0 } },
	{ "dash in op", F(.op = "\"storage-wipe\""), { 0 } },
	{ "space in op", F(.op = "\"storage wipe\""), { 0 } },
	{ "64-byte op", F(.op = "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""), { 0 } },
	{ "non-ASCII op", F(.op = "\"st\xc3\xb6rage\""), { 0 } },
	/* host_id grammar */
	{ "empty host", F(.host_id = "\"\""), { 0 } },
	{ "slash in host", F(.host_id = "\"h/" MARK "\""), { 0 } },
	{ "space in host", F(.host_id = "\"h ost\""), { 0 } },
	{ "colon in host", F(.host_id = "\"h:1\""), { 0 } },
	{ "non-ASCII host", F(.host_id = "\"h\xc3\xa9\""), { 0 } },
	/* guest_id range */
	{ "guest 99", F(.guest_id = "99"), { 0 } },
	{ "guest 0", F(.guest_id = "0"), { 0 } },
	{ "guest negative", F(.guest_id = "-100"), { 0 } },
	{ "guest 1000000000", F(.guest_id = "1000000000"), { 0 } },
	/* nonce grammar */
	{ "15-byte nonce", F(.nonce = "\"AAAAAAAAAAAAAAA\""), { 0 } },
	{ "nonce with space", F(.nonce = "\"AAAAAAAA AAAAAAA\""), { 0 } },
	{ "nonce with !", F(.nonce = "\"AAAAAAAAAAAAAAA!\""), { 0 } },
	{ "nonce with dot", F(.nonce = "\"AAAAAAAAAAAAAAA.\""), { 0 } },
	/* key_id */
	{ "empty key_id", F(.key_id = "\"\""), { 0 } },
	{ "tab in key_id", F(.key_id = "\"a\\tb\""), { 0 } },
	{ "DEL in key_id", F(.key_id = "\"a\x7f\""), { 0 } },
	{ "non-ASCII key_id", F(.key_id = "\"\xc3\xa9\""), { 0 } },
	{ "65-byte key_id", F(.key_id = "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""), { 0 } },
	/* times */
	{ "issued_at 0", F(.issued_at = "0"), { 0 } },
	{ "issued_at negative", F(.issued_at = "-1"), { 0 } },
	{ "expires_at 0", F(.expires_at = "0", .issued_at = "1"), { 0 } },
	{ "expires_at == issued_at", F(.expires_at = "1781000000"), { 0 } },
	{ "expires_at < issued_at", F(.expires_at = "1780999999"), { 0 } },
	{ "issued_at 2^53", F(.issued_at = "9007199254740992", .expires_at = "9007199254740993"), { 0 } },
	/* params keys and sizes */
	{ "upper-case param key", F(.params = "{\"A\":1}"), { 0 } },
	{ "dash in param key", F(.params = "{\"durable-id\":\"x\"}"), { 0 } },
	{ "empty param key", F(.params = "{\"\":1}"), { 0 } },
	{ "64-byte param key",
	  F(.params = "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}"), { 0 } },
	{ "17 params", F(.params = "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,"
				   "\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1}"), { 0 } },
	/* syntax */
	{ "trailing garbage", F(.extra = "} x"), { 0 } },
	{ "trailing comma", F(.extra = ","), { 0 } },
	{ "vertical tab", F(.extra = "\v"), { 0 } },
	{ "unterminated", F(.extra = ", \"x"), { 0 } },
};

T_TEST(t_parse_malformed_classes)
{
	struct opblob *o = malloc(sizeof(*o)), *pristine = malloc(sizeof(*o));
	struct buf b;
	struct fields f;
	size_t i;

	memset(o, 0xa5, sizeof(*o));
	memcpy(pristine, o, sizeof(*o));
	buf_init(&b, 1 << 16);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char why[128] = "";
		int r;
		apply(&f, &bad_cases[i]);
		mk(&b, &f);
		r = opblob_parse(b.data, b.len, o, why, sizeof(why));
		if (r != FH_ERR_SIG_MALFORMED)
			t_failf(__FILE__, __LINE__, "%s: r=%s, want malformed", bad_cases[i].what, fh_strerror(r));
		if (!why[0] || strstr(why, MARK) || strstr(why, "QQ"))
			t_failf(__FILE__, __LINE__, "%s: bad reason \"%s\"", bad_cases[i].what, why);
		if (memcmp(o, pristine, sizeof(*o)) != 0)
			t_failf(__FILE__, __LINE__, "%s: output written on failure", bad_cases[i].what);
	}
	buf_free(&b);
	free(o);
	free(pristine);
}

T_TEST(t_parse_reasons)
{
	struct opblob *o = calloc(1, sizeof(*o));
	struct buf b;
	struct fields f;
	char why[128];

	buf_init(&b, 1 << 16);
	f = base;
	f.nonce = NULL;
	mk(&b, &f);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "missing field nonce");
	f = base;
	f.v = "2";
	mk(&b, &f);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "v: not 1");
	f = base;
	f.issued_at = "1.5";
	mk(&b, &f);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "float or exponent where an integer is due");
	f = base;
	f.extra = ", \"op\": 1";
	mk(&b, &f);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "duplicate object key");
	/* a tiny why buffer is fine; NULL too */
	T_ERR(opblob_parse(b.data, b.len, o, why, 4), FH_ERR_SIG_MALFORMED);
	T_EQ_INT(strlen(why), 3);
	T_ERR(opblob_parse(b.data, b.len, o, NULL, 0), FH_ERR_SIG_MALFORMED);
	buf_free(&b);
	free(o);
}

T_TEST(t_parse_not_objects)
{
	struct opblob *o = calloc(1, sizeof(*o));
	static const char *const docs[] = { "[]", "1", "null", "\"x\"", "", " ", "{", "[{}]" };
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		T_ERR(opblob_parse(docs[i], strlen(docs[i]), o, NULL, 0), FH_ERR_SIG_MALFORMED);
	/* a good blob with an unterminated string after it (yajl alone takes it) */
	buf_init(&b, 1 << 16);
	buf_appendz(&b, spec_canonical);
	T_OK(opblob_parse(b.data, b.len, o, NULL, 0));
	buf_appendz(&b, " \"x");
	T_ERR(opblob_parse(b.data, b.len, o, NULL, 0), FH_ERR_SIG_MALFORMED);
	buf_appendz(&b, "\\");
	T_ERR(opblob_parse(b.data, b.len, o, NULL, 0), FH_ERR_SIG_MALFORMED);
	buf_free(&b);
	free(o);
}

T_TEST(t_parse_size_and_depth_caps)
{
	struct opblob *o = calloc(1, sizeof(*o));
	struct buf b, pad;
	struct fields f;
	char why[128] = "";

	buf_init(&b, 1 << 16);
	buf_init(&pad, 1 << 16);
	/* pad a valid blob with whitespace to exactly the cap: accepted */
	f = base;
	mk(&b, &f);
	while (b.len + pad.len < OPBLOB_MAX_BYTES)
		buf_append(&pad, " ", 1);
	buf_append(&b, pad.data, pad.len);
	T_EQ_INT(b.len, OPBLOB_MAX_BYTES);
	T_OK(opblob_parse(b.data, b.len, o, NULL, 0));
	/* one more byte: rejected before parsing */
	buf_append(&b, " ", 1);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "input too long");
	/* depth 4 is the cap; 5 is refused by the tree parser itself */
	f = base;
	f.params = "{\"a\":[[[]]]}";
	mk(&b, &f);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "nesting too deep");
	f.params = "{\"a\":[[]]}";
	mk(&b, &f);
	T_ERR(opblob_parse(b.data, b.len, o, why, sizeof(why)), FH_ERR_SIG_MALFORMED);
	T_EQ_STR(why, "params: nested value");
	buf_free(&b);
	buf_free(&pad);
	free(o);
}

/* ---- building blobs in memory ---- */

static void good_struct(struct opblob *o)
{
	memset(o, 0, sizeof(*o));
	o->v = 1;
	strcpy(o->op, "storage_wipe");
	strcpy(o->host_id, "host-7f3a");
	strcpy(o->key_id, "ops-anna");
	strcpy(o->nonce, "AAAAAAAAAAAAAAAAAAAAAA");
	o->issued_at = 1781000000;
	o->expires_at = 1781000900;
}

T_TEST(t_canonical_from_struct)
{
	struct opblob *o = malloc(sizeof(*o)), *p = calloc(1, sizeof(*p));
	struct buf b;
	char why[128] = "";

	buf_init(&b, 1 << 16);
	good_struct(o);
	/* params unsorted in memory: canonical output sorts them */
	o->nparams = 3;
	strcpy(o->params[0].key, "zeta");
	o->params[0].type = OPBLOB_INT;
	o->params[0].num = -7;
	strcpy(o->params[1].key, "durable_id");
	o->params[1].type = OPBLOB_STR;
	strcpy(o->params[1].str, "uuid:\"q\"\x01");
	strcpy(o->params[2].key, "force");
	o->params[2].type = OPBLOB_BOOL;
	o->params[2].b = true;
	T_OK(opblob_validate(o, why, sizeof(why)));
	T_OK(opblob_canonical(o, &b));
	T_EQ_STR(buf_str(&b), "{\"expires_at\":1781000900,\"guest_id\":null,\"host_id\":\"host-7f3a\","
			      "\"issued_at\":1781000000,\"key_id\":\"ops-anna\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\","
			      "\"op\":\"storage_wipe\",\"params\":{\"durable_id\":\"uuid:\\\"q\\\"\\u0001\","
			      "\"force\":true,\"zeta\":-7},\"v\":1}");
	T_OK(opblob_parse(b.data, b.len, p, NULL, 0));
	T_EQ_STR(p->params[0].key, "durable_id");
	T_EQ_STR(p->params[0].str, "uuid:\"q\"\x01");
	T_EQ_STR(p->params[2].key, "zeta");
	/* guest-scoped */
	buf_reset(&b);
	o->has_guest = true;
	o->guest_id = 101;
	o->nparams = 0;
	T_OK(opblob_canonical(o, &b));
	T_CHECK(strstr(buf_str(&b), "\"guest_id\":101,") != NULL);
	buf_free(&b);
	free(o);
	free(p);
}

T_TEST(t_validate_rejects)
{
	struct opblob *o = malloc(sizeof(*o));
	struct buf b;
	char why[128];
	int k;

	buf_init(&b, 1 << 16);
	buf_appendz(&b, "keep");
	for (k = 0; k < 16; k++) {
		good_struct(o);
		switch (k) {
		case 0: o->v = 2; break;
		case 1: strcpy(o->op, "Bad"); break;
		case 2: memset(o->op, 'a', sizeof(o->op)); break;         /* no NUL */
		case 3: strcpy(o->host_id, ""); break;
		case 4: o->has_guest = true; o->guest_id = 99; break;
		case 5: strcpy(o->key_id, "tab\there"); break;
		case 6: strcpy(o->nonce, "short"); break;
		case 7: o->issued_at = 0; break;
		case 8: o->expires_at = o->issued_at; break;
		case 9: o->nparams = OPBLOB_MAX_PARAMS + 1; break;
		case 10: o->nparams = 1; strcpy(o->params[0].key, "Bad"); break;
		case 11:
			o->nparams = 2;
			strcpy(o->params[0].key, "a");
			strcpy(o->params[1].key, "a");
			break;
		case 12: o->nparams = 1; strcpy(o->params[0].key, "a"); strcpy(o->params[0].str, "\xc0\x80"); break;
		case 13: o->nparams = 1; strcpy(o->params[0].key, "a"); o->params[0].type = OPBLOB_INT;
			o->params[0].num = INT64_MAX; break;
		case 14: o->expires_at = OPBLOB_MAX_SAFE_INT + 1; break;
		case 15: o->nparams = 1; strcpy(o->params[0].key, "a");
			memset(o->params[0].str, 'x', sizeof(o->params[0].str)); break;
		}
		why[0] = '\0';
		if (opblob_validate(o, why, sizeof(why)) != FH_ERR_INVAL || !why[0])
			t_failf(__FILE__, __LINE__, "validate case %d accepted", k);
		T_ERR(opblob_canonical(o, &b), FH_ERR_INVAL);
		T_EQ_STR(buf_str(&b), "keep");
	}
	/* params_canonical checks its params only */
	good_struct(o);
	o->nparams = 1;
	strcpy(o->params[0].key, "A");
	T_ERR(opblob_params_canonical(o, &b), FH_ERR_INVAL);
	T_EQ_STR(buf_str(&b), "keep");
	buf_free(&b);
	free(o);
}

T_TEST(t_canonical_struct_output_cap)
{
	struct opblob *o = malloc(sizeof(*o));
	struct buf b;

	good_struct(o);
	buf_init(&b, 64);
	buf_appendz(&b, "pre");
	T_ERR(opblob_canonical(o, &b), FH_ERR_TOOBIG);
	T_EQ_STR(buf_str(&b), "pre");
	T_EQ_INT(b.len, 3);
	buf_free(&b);
	free(o);
}

int main(void)
{
	T_RUN(t_manifest_cases);
	T_RUN(t_manifest_covers_files);
	T_RUN(t_generator_check);
	T_RUN(t_differential_fuzz_corpus);
	T_RUN(t_canonical_string);
	T_RUN(t_canonical_output_cap);
	T_RUN(t_canonical_null_input);
	T_RUN(t_parse_spec_blob);
	T_RUN(t_parse_edges_accepted);
	T_RUN(t_parse_malformed_classes);
	T_RUN(t_parse_reasons);
	T_RUN(t_parse_not_objects);
	T_RUN(t_parse_size_and_depth_caps);
	T_RUN(t_canonical_from_struct);
	T_RUN(t_validate_rejects);
	T_RUN(t_canonical_struct_output_cap);
	return t_done();
}
