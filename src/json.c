/* json.c — yajl's callback parser building a bounded tree; see json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "err.h"

#define JSON_MAX_KEYS 4096      /* members per object: keeps duplicate checks cheap */

struct frame {
	struct json *node;
	char *pending_key;      /* object: key waiting for its value */
};

struct pctx {
	const struct json_limits *lim;
	struct json *root;
	struct frame *stack;
	unsigned depth;
	int err;                /* first error seen by a callback */
	const char *why;
	yajl_handle h;
	int completing;         /* inside yajl_complete_parse */
	size_t root_end;        /* input offset just past the top-level value */
	size_t n;
};

static void json_free_node(struct json *j)
{
	size_t i;

	if (!j)
		return;
	for (i = 0; i < j->n; i++) {
		if (j->keys)
			free(j->keys[i]);
		json_free_node(j->items[i]);
	}
	free(j->keys);
	free(j->items);
	free(j->s);
	free(j);
}

void json_free(struct json *j)
{
	json_free_node(j);
}

static int fail(struct pctx *c, int err, const char *why)
{
	if (!c->err) {
		c->err = err;
		c->why = why;
	}
	return 0;
}

/* Attaches a finished value to the current container (or as the root). */
static int attach(struct pctx *c, struct json *v)
{
	struct frame *f;
	struct json *p;
	size_t nn;

	if (c->depth == 0) {
		c->root = v;
		/* A scalar root is only known complete at the end of input. */
		c->root_end = c->completing ? c->n : yajl_get_bytes_consumed(c->h);
		return 1;
	}
	f = &c->stack[c->depth - 1];
	p = f->node;
	if (p->type == JSON_OBJECT && !f->pending_key) {
		json_free_node(v);
		return fail(c, FH_ERR_INTERNAL, "value without key");
	}
	nn = p->n + 1;
	if (p->type == JSON_OBJECT && nn > JSON_MAX_KEYS) {
		json_free_node(v);
		return fail(c, FH_ERR_TOOBIG, "too many object members");
	}
	{
		struct json **items = realloc(p->items, nn * sizeof(*items));
		if (!items) {
			json_free_node(v);
			return fail(c, FH_ERR_NOMEM, "out of memory");
		}
		p->items = items;
	}
	if (p->type == JSON_OBJECT) {
		char **keys = realloc(p->keys, nn * sizeof(*keys));
		if (!keys) {
			json_free_node(v);
			return fail(c, FH_ERR_NOMEM, "out of memory");
		}
		p->keys = keys;
		p->keys[p->n] = f->pending_key;
		f->pending_key = NULL;
	}
	p->items[p->n] = v;
	p->n = nn;
	return 1;
}

static struct json *mk(struct pctx *c, enum json_type t)
{
	struct json *j = calloc(1, sizeof(*j));

	if (!j) {
		fail(c, FH_ERR_NOMEM, "out of memory");
		return NULL;
	}
	j->type = t;
	return j;
}

static struct json *mk_text(struct pctx *c, enum json_type t, const char *s, size_t n)
{
	struct json *j = mk(c, t);

	if (!j)
		return NULL;
	j->s = malloc(n + 1);
	if (!j->s) {
		free(j);
		fail(c, FH_ERR_NOMEM, "out of memory");
		return NULL;
	}
	memcpy(j->s, s, n);
	j->s[n] = '\0';
	j->slen = n;
	return j;
}

static int cb_null(void *ctx)
{
	struct pctx *c = ctx;
	struct json *j = mk(c, JSON_NULL);
	return j ? attach(c, j) : 0;
}

static int cb_bool(void *ctx, int v)
{
	struct pctx *c = ctx;
	struct json *j = mk(c, JSON_BOOL);

	if (!j)
		return 0;
	j->b = v != 0;
	return attach(c, j);
}

static int cb_number(void *ctx, const char *s, size_t n)
{
	struct pctx *c = ctx;
	struct json *j = mk_text(c, JSON_NUMBER, s, n);
	return j ? attach(c, j) : 0;
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
	struct pctx *c = ctx;
	struct json *j = mk_text(c, JSON_STRING, (const char *)s, n);
	return j ? attach(c, j) : 0;
}

static int open_container(struct pctx *c, enum json_type t)
{
	struct json *j;

	if (c->depth >= c->lim->max_depth)
		return fail(c, FH_ERR_TOOBIG, "nesting too deep");
	j = mk(c, t);
	if (!j)
		return 0;
	c->stack[c->depth].node = j;
	c->stack[c->depth].pending_key = NULL;
	c->depth++;
	return 1;
}

static int close_container(struct pctx *c)
{
	struct frame *f = &c->stack[c->depth - 1];
	struct json *j = f->node;

	free(f->pending_key);
	f->pending_key = NULL;
	c->depth--;
	return attach(c, j);
}

static int cb_start_map(void *ctx)
{
	return open_container(ctx, JSON_OBJECT);
}

static int cb_start_array(void *ctx)
{
	return open_container(ctx, JSON_ARRAY);
}

static int cb_end(void *ctx)
{
	return close_container(ctx);
}

static int cb_key(void *ctx, const unsigned char *s, size_t n)
{
	struct pctx *c = ctx;
	struct frame *f = &c->stack[c->depth - 1];
	struct json *p = f->node;
	size_t i;

	if (memchr(s, '\0', n))
		return fail(c, FH_ERR_DECODE, "NUL in object key");
	if (!c->lim->allow_dup_keys) {
		for (i = 0; i < p->n; i++) {
			if (strlen(p->keys[i]) == n && memcmp(p->keys[i], s, n) == 0)
				return fail(c, FH_ERR_DECODE, "duplicate object key");
		}
	}
	f->pending_key = malloc(n + 1);
	if (!f->pending_key)
		return fail(c, FH_ERR_NOMEM, "out of memory");
	memcpy(f->pending_key, s, n);
	f->pending_key[n] = '\0';
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_bool,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_key,
	.yajl_end_map = cb_end,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end,
};

static void set_err(char *errbuf, size_t errlen, const char *why)
{
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s", why);
}

int json_parse(const char *p, size_t n, const struct json_limits *lim, struct json **out,
	       char *errbuf, size_t errlen)
{
	struct pctx c;
	yajl_handle h = NULL;
	yajl_status st;
	int r = FH_ERR_INTERNAL;
	unsigned i;

	memset(&c, 0, sizeof(c));
	c.lim = lim;
	if (n > lim->max_bytes) {
		set_err(errbuf, errlen, "document too large");
		return FH_ERR_TOOBIG;
	}
	c.stack = calloc(lim->max_depth ? lim->max_depth : 1, sizeof(*c.stack));
	if (!c.stack)
		return FH_ERR_NOMEM;
	h = yajl_alloc(&callbacks, NULL, &c);
	if (!h) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	c.h = h;
	c.n = n;
	st = yajl_parse(h, (const unsigned char *)p, n);
	if (st == yajl_status_ok) {
		c.completing = 1;
		st = yajl_complete_parse(h);
	}
	if (c.err) {
		r = c.err;
		set_err(errbuf, errlen, c.why);
		goto out;
	}
	/* yajl's final check feeds one space, which an unterminated string
	 * after the value absorbs ('{} "x'): only whitespace may follow. */
	if (st == yajl_status_ok && c.root) {
		size_t k;
		for (k = c.root_end; k < n; k++) {
			if (p[k] != ' ' && p[k] != '\t' && p[k] != '\n' && p[k] != '\r') {
				st = yajl_status_error;
				break;
			}
		}
	}
	if (st != yajl_status_ok || !c.root) {
		/* yajl's verbose error would quote input bytes: keep it short. */
		r = FH_ERR_DECODE;
		set_err(errbuf, errlen, n == 0 ? "empty document" : "invalid JSON syntax");
		goto out;
	}
	*out = c.root;
	c.root = NULL;
	r = 0;
out:
	for (i = 0; i < c.depth; i++) {
		free(c.stack[i].pending_key);
		json_free_node(c.stack[i].node);
	}
	json_free_node(c.root);
	free(c.stack);
	if (h)
		yajl_free(h);
	return r;
}

const struct json *json_get(const struct json *j, const char *key)
{
	size_t i;

	if (!j || j->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < j->n; i++) {
		if (strcmp(j->keys[i], key) == 0)
			return j->items[i];
	}
	return NULL;
}

const struct json *json_path(const struct json *j, const char *dotted)
{
	char part[128];
	const char *s = dotted;

	while (j && *s) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, s, n);
		part[n] = '\0';
		j = json_get(j, part);
		s += n;
		if (*s == '.')
			s++;
	}
	return j;
}

static int is_absent(const struct json *j)
{
	return !j || j->type == JSON_NULL;
}

/* Parses text as a whole-number literal, allowing "5.0"-style integral
 * floats only when lenient. */
static int parse_int_text(const char *s, int lenient, int64_t *out)
{
	char *end;
	long long v;

	if (!*s)
		return FH_ERR_DECODE;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == 0 && *end == '\0' && end != s) {
		*out = v;
		return 0;
	}
	if (lenient) {
		double d;
		errno = 0;
		d = strtod(s, &end);
		if (errno == 0 && *end == '\0' && end != s && isfinite(d) && !(floor(d) < d) && !(floor(d) > d) &&
		    d >= -9.2e18 && d <= 9.2e18) {
			*out = (int64_t)d;
			return 0;
		}
	}
	return FH_ERR_DECODE;
}

int json_int(const struct json *j, int64_t *out)
{
	int64_t v;
	int r;

	if (is_absent(j))
		return FH_ERR_NOT_FOUND;
	if (j->type == JSON_BOOL) {
		*out = j->b;
		return 0;
	}
	if (j->type != JSON_NUMBER && j->type != JSON_STRING)
		return FH_ERR_DECODE;
	if (j->type == JSON_STRING && strlen(j->s) != j->slen)
		return FH_ERR_DECODE;
	r = parse_int_text(j->s, 1, &v);
	if (r)
		return r;
	*out = v;
	return 0;
}

int json_uint(const struct json *j, uint64_t *out)
{
	int64_t v;
	int r = json_int(j, &v);

	if (r)
		return r;
	if (v < 0)
		return FH_ERR_DECODE;
	*out = (uint64_t)v;
	return 0;
}

int json_int_strict(const struct json *j, int64_t *out)
{
	const char *s;
	int64_t v;

	if (is_absent(j))
		return FH_ERR_NOT_FOUND;
	if (j->type != JSON_NUMBER)
		return FH_ERR_DECODE;
	for (s = j->s; *s; s++) {
		if (*s == '.' || *s == 'e' || *s == 'E')
			return FH_ERR_DECODE;
	}
	if (parse_int_text(j->s, 0, &v))
		return FH_ERR_DECODE;
	*out = v;
	return 0;
}

int json_double(const struct json *j, double *out)
{
	char *end;
	double d;

	if (is_absent(j))
		return FH_ERR_NOT_FOUND;
	if (j->type == JSON_BOOL) {
		*out = j->b ? 1.0 : 0.0;
		return 0;
	}
	if ((j->type != JSON_NUMBER && j->type != JSON_STRING) || !*j->s)
		return FH_ERR_DECODE;
	errno = 0;
	d = strtod(j->s, &end);
	if (errno || *end != '\0' || !isfinite(d))
		return FH_ERR_DECODE;
	*out = d;
	return 0;
}

int json_bool(const struct json *j, bool *out)
{
	if (is_absent(j))
		return FH_ERR_NOT_FOUND;
	if (j->type == JSON_BOOL) {
		*out = j->b;
		return 0;
	}
	if (j->type == JSON_NUMBER || j->type == JSON_STRING) {
		const char *s = j->s;
		if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") ||
		    (j->type == JSON_STRING && !*s)) {
			*out = false;
			return 0;
		}
	}
	return FH_ERR_DECODE;
}

int json_str(const struct json *j, const char **out)
{
	if (is_absent(j))
		return FH_ERR_NOT_FOUND;
	if (j->type != JSON_STRING && j->type != JSON_NUMBER)
		return FH_ERR_DECODE;
	if (strlen(j->s) != j->slen)
		return FH_ERR_DECODE;   /* embedded NUL */
	*out = j->s;
	return 0;
}

int json_strcpy(const struct json *j, char *dst, size_t dstlen)
{
	const char *s;
	int r = json_str(j, &s);

	if (r)
		return r;
	if (j->slen >= dstlen)
		return FH_ERR_TOOBIG;
	memcpy(dst, s, j->slen + 1);
	return 0;
}
