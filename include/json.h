/* json.h — bounded JSON decoding into a small tree, built on yajl's
 * callback parser; and small helpers to read it.
 *
 * The parser enforces a byte cap, a nesting cap, rejects duplicate object
 * keys, and keeps every number's exact text, so callers can tell integers
 * from floats and can accept Proxmox's numbers-sent-as-strings. Trailing
 * bytes after the top-level value are rejected.
 */
#ifndef FH_JSON_H
#define FH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	bool b;                 /* JSON_BOOL */
	char *s;                /* JSON_STRING: value; JSON_NUMBER: the literal text */
	size_t slen;
	size_t n;               /* ARRAY/OBJECT: element count */
	char **keys;            /* OBJECT: keys (NUL-terminated) */
	struct json **items;    /* ARRAY/OBJECT: values */
};

struct json_limits {
	size_t max_bytes;       /* input cap */
	unsigned max_depth;     /* nesting cap (arrays + objects) */
	bool allow_dup_keys;    /* false: duplicate key -> error */
};

/* Parses exactly one JSON value from p[0..n). On success *out owns a tree to
 * free with json_free. Errors: FH_ERR_TOOBIG (over max_bytes or max_depth),
 * FH_ERR_DECODE (syntax, duplicate key, trailing bytes), FH_ERR_NOMEM.
 * errbuf (may be NULL) receives a short reason without input bytes. */
int json_parse(const char *p, size_t n, const struct json_limits *lim,
	       struct json **out, char *errbuf, size_t errlen);
void json_free(struct json *j);

/* Object member by key, or NULL (also NULL when j is not an object). */
const struct json *json_get(const struct json *j, const char *key);
/* Walks "a.b.c" through nested objects. */
const struct json *json_path(const struct json *j, const char *dotted);

/* Lenient scalar readers for Proxmox's wire habits. Each returns 0 on
 * success, FH_ERR_NOT_FOUND when j is NULL or JSON null, FH_ERR_DECODE when
 * the value has the wrong shape. */
int json_int(const struct json *j, int64_t *out);       /* 5, "5", 5.0 -> 5 */
int json_uint(const struct json *j, uint64_t *out);
int json_double(const struct json *j, double *out);     /* 0.5, "0.5" */
int json_bool(const struct json *j, bool *out);         /* true, 1, "1", 0 ... */
/* A string value (numbers are given as their text). Borrowed pointer. */
int json_str(const struct json *j, const char **out);
/* Copies a string/number into dst[dstlen]; FH_ERR_TOOBIG if it does not fit. */
int json_strcpy(const struct json *j, char *dst, size_t dstlen);

/* Strict reader: only a JSON integer literal (no fraction, no exponent,
 * no string) within int64. */
int json_int_strict(const struct json *j, int64_t *out);

#endif
