/* opblob.h — the signed operation blob (SPEC §5): strict parser and the
 * canonical JSON form signers emit.
 *
 *   {"expires_at":1781000900,"guest_id":null,"host_id":"host-7f3a",
 *    "issued_at":1781000000,"key_id":"ops-anna","nonce":"q3J...",
 *    "op":"storage_wipe","params":{"durable_id":"byid:ata-WDC_X"},"v":1}
 *
 * Canonical form: keys sorted by byte value, no insignificant whitespace,
 * integers only, strings with minimal escaping (RFC 8785 for this subset:
 * escape only '"', '\\' and control bytes; \b \f \n \r \t by their short
 * forms, other controls as \u00XX lower-case hex; everything else, UTF-8
 * included, verbatim).
 */
#ifndef FH_OPBLOB_H
#define FH_OPBLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define OPBLOB_MAX_BYTES 8192
#define OPBLOB_MAX_PARAMS 16

struct opblob_param {
	char key[64];
	enum { OPBLOB_STR, OPBLOB_INT, OPBLOB_BOOL, OPBLOB_NULL } type;
	char str[1024];          /* OPBLOB_STR */
	int64_t num;             /* OPBLOB_INT */
	bool b;                  /* OPBLOB_BOOL */
};

struct opblob {
	int64_t v;               /* always 1 */
	char op[64];             /* [a-z0-9_]+ */
	char host_id[128];
	bool has_guest;          /* false: "guest_id":null (host-scoped op) */
	int64_t guest_id;        /* vmid when has_guest */
	char key_id[128];        /* advisory, audit only */
	char nonce[129];
	int64_t issued_at, expires_at;
	size_t nparams;
	struct opblob_param params[OPBLOB_MAX_PARAMS];   /* sorted by key */
};

/* Parses the exact bytes of a blob. Every field above is required
 * (guest_id may be null, params may be {}); unknown top-level fields,
 * duplicate keys, floats, strings where integers are due, nested values in
 * params, over-deep or over-long input: FH_ERR_SIG_MALFORMED with a short
 * reason in why (never quoting input bytes). *out is written only on
 * success. Whether the bytes were canonical is not checked here: the
 * signature covers the raw bytes. */
int opblob_parse(const char *p, size_t n, struct opblob *out, char *why, size_t whylen);

/* Canonical bytes of a blob into out (appended). */
int opblob_canonical(const struct opblob *b, struct buf *out);

/* Canonicalizes any JSON document made of objects, arrays, strings,
 * integers, true/false/null (floats: FH_ERR_SIG_MALFORMED) — the hub's
 * conformance form, see vectors/canonical/. */
int json_canonical(const char *p, size_t n, struct buf *out);

/* Canonical bytes of the params object alone ("{}" when empty): what
 * action binding compares. */
int opblob_params_canonical(const struct opblob *b, struct buf *out);

#endif
