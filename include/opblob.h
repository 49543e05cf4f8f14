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
 *
 * The subset, exactly (vectors/canonical/ is the conformance suite, its
 * manifest.txt the list of cases; docs/felhom-opsign.md explains it):
 *  - Keys are sorted by the bytes of their UTF-8 encoding (memcmp order,
 *    a shorter key before any key it prefixes). RFC 8785 sorts by UTF-16
 *    code units; the two orders agree on every key made of characters
 *    below U+E000 (so on every ASCII key, which is all the blob has) and
 *    differ only when a key holds a character at or above U+10000 and
 *    another holds one in U+E000..U+FFFF. Byte order is what SPEC §5
 *    fixes and is what any language can compute without UTF-16.
 *  - Numbers are integers within the I-JSON safe range
 *    [-(2^53-1), 2^53-1], written as shortest decimal ("-5", "0",
 *    "9007199254740991"). For such integers this is exactly RFC 8785's
 *    ECMAScript number form. Fractions, exponents ("1.0", "1e3"), values
 *    outside the range and "-0" (ambiguous: 0 in integer languages, -0 in
 *    IEEE ones) are rejected, never rounded or normalized.
 *  - Strings must be well-formed UTF-8 after decoding (no overlong forms,
 *    no encoded surrogates, nothing above U+10FFFF); a \u escape of a
 *    surrogate must be a high one immediately followed by an escaped low
 *    one; U+0000 is rejected anywhere (the agent keeps C strings). Input
 *    escapes are decoded ("\u0041" -> "A", "\/" -> "/") and re-escaped
 *    minimally; DEL (0x7f) and U+2028/U+2029 are written verbatim.
 *  - Duplicate keys (after decoding escapes) are rejected at every level.
 *
 * Every input rejection is FH_ERR_SIG_MALFORMED ("malformed"). Functions
 * that take a `why` buffer (may be NULL) write a short reason there that
 * never quotes input bytes. Every function that appends to a struct buf
 * leaves it exactly as it was on failure.
 */
#ifndef FH_OPBLOB_H
#define FH_OPBLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define OPBLOB_MAX_BYTES 8192
#define OPBLOB_MAX_DEPTH 4        /* nesting cap for a blob (it needs 2) */
#define OPBLOB_MAX_PARAMS 16
#define OPBLOB_MAX_SAFE_INT 9007199254740991LL   /* 2^53 - 1 */
/* json_canonical's caps (the hub's conformance form, not the blob). */
#define JSON_CANON_MAX_BYTES (64 * 1024)
#define JSON_CANON_MAX_DEPTH 32

struct opblob_param {
	char key[64];            /* [a-z0-9_]{1,63} */
	enum { OPBLOB_STR, OPBLOB_INT, OPBLOB_BOOL, OPBLOB_NULL } type;
	char str[1024];          /* OPBLOB_STR: UTF-8, no NUL, at most 1023 bytes */
	int64_t num;             /* OPBLOB_INT: within +-OPBLOB_MAX_SAFE_INT */
	bool b;                  /* OPBLOB_BOOL */
};

struct opblob {
	int64_t v;               /* always 1 */
	char op[64];             /* [a-z0-9_]{1,63} */
	char host_id[128];       /* [A-Za-z0-9._-]{1,127} */
	bool has_guest;          /* false: "guest_id":null (host-scoped op) */
	int64_t guest_id;        /* vmid 100..999999999 when has_guest */
	char key_id[128];        /* printable ASCII (0x20..0x7e), 1..64 bytes; advisory, audit only */
	char nonce[129];         /* [A-Za-z0-9+/=_-]{16,128} */
	int64_t issued_at, expires_at;   /* 1..OPBLOB_MAX_SAFE_INT, expires_at > issued_at */
	size_t nparams;
	struct opblob_param params[OPBLOB_MAX_PARAMS];   /* sorted by key */
};

/* Parses the exact bytes of a blob. Every field above is required
 * (guest_id may be null, params may be {}); unknown top-level fields,
 * duplicate keys, floats, strings where integers are due, integers where
 * strings are due, nested values or arrays in params, over-deep
 * (OPBLOB_MAX_DEPTH) or over-long (OPBLOB_MAX_BYTES) input, NUL or invalid
 * UTF-8 in strings, and any field outside the ranges above:
 * FH_ERR_SIG_MALFORMED with a short reason in why (never quoting input
 * bytes). FH_ERR_NOMEM otherwise. *out is written only on success; its
 * params are sorted by key. Whether the bytes were canonical is not
 * checked here: the signature covers the raw bytes (compare with
 * opblob_canonical's output to check it). */
int opblob_parse(const char *p, size_t n, struct opblob *out, char *why, size_t whylen);

/* Checks a blob built in memory against every rule opblob_parse applies
 * (params need not be sorted but keys must be unique). 0 or FH_ERR_INVAL
 * with a short reason in why. */
int opblob_validate(const struct opblob *b, char *why, size_t whylen);

/* Canonical bytes of a blob into out (appended). FH_ERR_INVAL when the
 * struct fails opblob_validate; FH_ERR_TOOBIG (out's cap) or FH_ERR_NOMEM.
 * For every blob opblob_parse accepts, parsing this output gives the same
 * struct. */
int opblob_canonical(const struct opblob *b, struct buf *out);

/* Canonicalizes any JSON document made of objects, arrays, strings,
 * integers, true/false/null (floats: FH_ERR_SIG_MALFORMED) — the hub's
 * conformance form, see vectors/canonical/. Input over JSON_CANON_MAX_BYTES
 * or nested deeper than JSON_CANON_MAX_DEPTH, and anything outside the
 * subset described at the top: FH_ERR_SIG_MALFORMED. FH_ERR_TOOBIG when
 * out's cap is reached, FH_ERR_NOMEM. */
int json_canonical(const char *p, size_t n, struct buf *out);
/* The same, with a short reason for a rejection in why. */
int json_canonical_why(const char *p, size_t n, struct buf *out, char *why, size_t whylen);

/* Appends s[0..n) as a canonical JSON string (quotes included).
 * FH_ERR_INVAL when s holds a NUL or is not well-formed UTF-8. */
int json_canonical_string(const char *s, size_t n, struct buf *out);

/* Canonical bytes of the params object alone ("{}" when empty): what
 * action binding compares. FH_ERR_INVAL when a param fails validation. */
int opblob_params_canonical(const struct opblob *b, struct buf *out);

#endif
