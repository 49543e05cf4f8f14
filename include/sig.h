/* sig.h — verification of operator-signed operations: OpenSSH SSHSIG over
 * an op blob (SPEC §5). The byte-level protocol, the rejection names and
 * the golden vectors are described in docs/PROTOCOL.opsig.md.
 *
 * Pipeline (sig_check, then recording), each stage with its typed rejection
 * from err.h; a later stage is reached only when every earlier one passed:
 *
 *   0. caps       op blob over OPBLOB_MAX_BYTES (never hashed)   -> malformed
 *   1. armor      Ragel machine (machines/sshsig_armor.rl) + SSHSIG envelope:
 *                 magic, version exactly 1, reserved empty, hash exactly
 *                 "sha256"/"sha512", no trailing bytes     -> malformed
 *   2. namespace  exactly SIG_NAMESPACE (a constant)        -> namespace
 *   3. public key parse; unsupported type or size           -> malformed /
 *                                                              unknown_signer
 *   4. allow-list the FULL key blob, byte for byte, against
 *                 the configured signers (never the key id) -> unknown_signer
 *   5. crypto     signature structure                       -> malformed
 *                 wolfCrypt verify over the signed data built
 *                 from the RAW blob bytes received          -> bad_signature
 *   6. op blob    opblob_parse()                            -> malformed
 *   7. target     host_id == configured host id              -> target
 *   8. time       lifetime > max                             -> expired
 *                 now + skew <  issued_at                    -> not_yet_valid
 *                 now - skew >= expires_at                   -> expired
 *   9. nonce      recorded last, durably                     -> replay
 *
 * sig_check() runs stages 1-8 and does no I/O; it does not look at the
 * nonce store at all, so a replayed op passes sig_check and is rejected
 * only by recording (sig_record / sig_record_durable), which is the single
 * authority on "already used". Nothing is recorded for an op that failed
 * any earlier stage, so an invalid signature never burns a nonce.
 *
 * Rejection reasons (`why`) are one short line; they quote input bytes
 * only as a sanitized excerpt (printable ASCII, at most 24 bytes).
 */
#ifndef FH_SIG_H
#define FH_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "opblob.h"

struct store;
struct store_txn;

#define SIG_NAMESPACE "felhom-op-v1"
#define SIG_ARMOR_MAX 16384                    /* armored signature, bytes */
#define SIG_BLOB_MAX (SIG_ARMOR_MAX / 4 * 3)   /* decoded SSHSIG blob, bytes */
#define SIG_KEY_ID_MAX 64
#define SIG_SIGNERS_MAX 1024                   /* signer lines in all */
#define SIG_SIGNERS_FILE_MAX (1024 * 1024)     /* authz.signers_file, bytes */
#define SIG_SIGNER_LINE_MAX 16384              /* one signer line, bytes */
#define SIG_RSA_MIN_BITS 2048
#define SIG_RSA_MAX_BITS 4096                  /* wolfSSL 5.5.4 RSA_MAX_SIZE */

/* ---- armor (machines/sshsig_armor.rl) ---------------------------------
 *
 * Policy: "-----BEGIN SSH SIGNATURE-----" at byte 0, then LF or CRLF; a
 * base64 body in which any whitespace (space, \t \n \v \f \r) is skipped,
 * so any line width works; strict padding (missing '=', non-zero unused
 * bits, base64 after '=' -> malformed); "-----END SSH SIGNATURE-----"
 * right after a LF; only whitespace after the footer; at most
 * SIG_ARMOR_MAX bytes in all. Anything else is FH_ERR_SIG_MALFORMED. */

struct sig_armor {
	int cs;                 /* Ragel state, kept between feeds */
	int err;                /* sticky: 0 or FH_ERR_SIG_MALFORMED */
	const char *reason;     /* static text for err */
	size_t fed;             /* armored bytes consumed so far */
	size_t where;           /* offset of the first bad byte (on err) */
	uint32_t quad;          /* base64 bits not yet emitted */
	unsigned nq;            /* sextets in quad, 0..3 */
	unsigned npad;          /* '=' seen */
	struct buf *out;        /* decoded bytes are appended here */
};

/* Starts a parse whose decoded bytes go to out (the caller's buffer; give
 * it a cap of at least SIG_BLOB_MAX). */
void sig_armor_init(struct sig_armor *a, struct buf *out);
/* Feeds the next n armored bytes (input may be split anywhere). 0, or
 * FH_ERR_SIG_MALFORMED (sticky; out's contents are then meaningless). */
int sig_armor_feed(struct sig_armor *a, const char *p, size_t n);
/* End of input: 0 when a complete armor was seen, else FH_ERR_SIG_MALFORMED. */
int sig_armor_finish(struct sig_armor *a);
/* One-shot: decodes armor[0..n) and appends the blob to out. On error out
 * is left as it was and *where (may be NULL) gets the offset of the first
 * bad byte; why (may be NULL) gets a reason. */
int sig_dearmor(const char *armor, size_t n, struct buf *out, size_t *where,
		char *why, size_t whylen);

/* ---- SSH wire reader (RFC 4251 encodings) -----------------------------
 * A bounded cursor over borrowed bytes. Every read checks the length
 * against what is left; every function returns 0 or FH_ERR_SIG_MALFORMED
 * and moves the cursor only on success. */

struct sig_wire {
	const uint8_t *p;
	size_t n;               /* total bytes */
	size_t off;             /* bytes consumed */
};

void sig_wire_init(struct sig_wire *w, const uint8_t *p, size_t n);
int sig_wire_u8(struct sig_wire *w, uint8_t *v);
int sig_wire_u32(struct sig_wire *w, uint32_t *v);             /* big-endian */
int sig_wire_bytes(struct sig_wire *w, size_t n, const uint8_t **s); /* raw n bytes */
int sig_wire_string(struct sig_wire *w, const uint8_t **s, size_t *len);
/* A string holding text: no NUL byte anywhere (a trailing NUL included). */
int sig_wire_cstring(struct sig_wire *w, const char **s, size_t *len);
/* A non-negative mpint: negative values rejected, leading zero bytes
 * stripped (non-minimal encodings accepted, as OpenSSH does); zero gives
 * len 0. */
int sig_wire_mpint(struct sig_wire *w, const uint8_t **s, size_t *len);
/* 0 when every byte was consumed; trailing bytes -> malformed. */
int sig_wire_end(const struct sig_wire *w);

/* ---- parsed structures (pointers borrow the caller's bytes) ----------- */

enum sig_keytype {
	SIG_KEY_NONE = 0,
	SIG_KEY_ED25519,        /* ssh-ed25519 */
	SIG_KEY_SK_ED25519,     /* sk-ssh-ed25519@openssh.com */
	SIG_KEY_ECDSA_P256,     /* ecdsa-sha2-nistp256 */
	SIG_KEY_ECDSA_P384,     /* ecdsa-sha2-nistp384 */
	SIG_KEY_ECDSA_P521,     /* ecdsa-sha2-nistp521 */
	SIG_KEY_SK_ECDSA_P256,  /* sk-ecdsa-sha2-nistp256@openssh.com */
	SIG_KEY_RSA,            /* ssh-rsa, 2048-4096 bits */
};
/* SSH name of a key type ("ssh-ed25519", ...); "none" for SIG_KEY_NONE. */
const char *sig_keytype_name(enum sig_keytype t);

enum sig_hash { SIG_HASH_SHA256 = 1, SIG_HASH_SHA512 };

/* The SSHSIG blob: "SSHSIG" uint32 version, string publickey, string
 * namespace, string reserved, string hash_algorithm, string signature. */
struct sig_envelope {
	uint32_t version;
	const uint8_t *pubkey;
	size_t pubkeylen;
	const char *ns;         /* not NUL-terminated */
	size_t nslen;
	enum sig_hash hash;
	const uint8_t *sig;
	size_t siglen;
};

/* Stage 1 after the armor. Stricter than OpenSSH: version exactly 1,
 * reserved empty, hash exactly "sha256" or "sha512", no NUL in any text
 * string. FH_ERR_SIG_MALFORMED; *out written only on success. */
int sig_envelope_parse(const uint8_t *p, size_t n, struct sig_envelope *out,
		       char *why, size_t whylen);

struct sig_pubkey {
	enum sig_keytype type;
	const uint8_t *blob;    /* the whole key blob: what the allow-list compares */
	size_t bloblen;
	const uint8_t *pk;      /* ed25519: 32 bytes; ecdsa: 0x04 || X || Y */
	size_t pklen;
	const uint8_t *rsa_e, *rsa_n;   /* stripped magnitudes */
	size_t rsa_elen, rsa_nlen;
	unsigned rsa_bits;
	const char *app;        /* sk: application string (not NUL-terminated) */
	size_t applen;
};

/* Stage 3. Structure errors (lengths, trailing bytes, curve name not
 * matching the type, compressed or wrong-length points, bad RSA numbers)
 * -> FH_ERR_SIG_MALFORMED; well-formed keys of a type we do not accept
 * (certificates, ssh-dss, webauthn or unknown names, RSA outside
 * 2048-4096 bits) -> FH_ERR_SIG_UNKNOWN_SIGNER. Points are checked on the
 * curve when a signer is loaded (wc_ecc_check_key); a blob key is trusted
 * only through byte equality with such a signer key (stage 4). */
int sig_pubkey_parse(const uint8_t *p, size_t n, struct sig_pubkey *out,
		     char *why, size_t whylen);

struct sig_signature {
	enum sig_keytype type;
	enum sig_hash rsa_hash;         /* RSA: rsa-sha2-256 / rsa-sha2-512 */
	const uint8_t *sig;             /* ed25519: 64 bytes; RSA: s */
	size_t siglen;
	const uint8_t *r, *s;           /* ECDSA: stripped magnitudes */
	size_t rlen, slen;
	uint8_t flags;                  /* sk */
	uint32_t counter;               /* sk */
};

/* Parses the signature blob for key k: its type name must be the key's
 * (for RSA: rsa-sha2-256 or rsa-sha2-512; ssh-rsa SHA-1 and webauthn
 * forms are refused), no trailing bytes at either level.
 * FH_ERR_SIG_MALFORMED; *out written only on success. */
int sig_signature_parse(const struct sig_pubkey *k, const uint8_t *p, size_t n,
			struct sig_signature *out, char *why, size_t whylen);

/* Builds the SSHSIG signed data for SIG_NAMESPACE, an empty reserved field
 * and hash h over msg into out (appended): "SSHSIG" string(ns) string("")
 * string(hashname) string(H(msg)). */
int sig_signed_data(enum sig_hash h, const uint8_t *msg, size_t msglen, struct buf *out);

/* ---- signers and the verifier ------------------------------------------
 * A signer line is "ROLE KEY_ID KEYTYPE BASE64 [COMMENT]", fields
 * separated by spaces or tabs: ROLE "operational" or "recovery"; KEY_ID
 * [A-Za-z0-9._@-]{1,64}; KEYTYPE equal to the type named inside the
 * decoded key blob, which must be a supported type (sig_pubkey_parse
 * accepts it). In a signers file '#' starts a comment line and blank lines
 * are skipped; LF or CRLF. Two signers with the same key material or the
 * same KEY_ID are a configuration error. */

enum sig_role { SIG_ROLE_OPERATIONAL = 1, SIG_ROLE_RECOVERY };
/* "operational" / "recovery"; "none" otherwise. */
const char *sig_role_name(enum sig_role r);

struct sig_config {
	const char *const *signers;     /* authz.signers lines (may be NULL) */
	size_t nsigners;
	const char *signers_file;       /* authz.signers_file (NULL/"" = none) */
	const char *host_id;            /* hub.host_id; required, compared exactly */
	int64_t max_lifetime_seconds;   /* authz.max_lifetime_seconds, > 0 */
	int64_t clock_skew_seconds;     /* authz.clock_skew_seconds, >= 0 */
};

struct sig_verifier;

/* Builds a verifier: parses every signer line, imports and validates each
 * key with wolfCrypt (ECDSA points with wc_ecc_check_key). FH_ERR_CONFIG
 * with one line in err naming the source ("authz.signers[2]" or
 * "FILE:LINE") and the problem; FH_ERR_IO when the signers file cannot be
 * read; FH_ERR_NOMEM. No signers at all is allowed: every check is then
 * unknown_signer. *out (free with sig_verifier_free) only on success. */
int sig_verifier_new(const struct sig_config *c, struct sig_verifier **out,
		     char *err, size_t errlen);
void sig_verifier_free(struct sig_verifier *v);
size_t sig_verifier_nsigners(const struct sig_verifier *v);

/* What a successful check proves. */
struct sig_verified {
	struct opblob op;       /* op, host_id, guest (has_guest), params,
				   key_id (advisory), nonce, issued/expires */
	enum sig_role role;     /* of the matching signer */
	char signer_id[SIG_KEY_ID_MAX + 1];     /* its KEY_ID from config */
	enum sig_keytype keytype;
	enum sig_hash hash;
};

/* Stages 1-8 over the raw op blob bytes blob[0..bloblen) and the armored
 * signature armor[0..armorlen), at time now (Unix seconds). 0 and *out
 * filled, or a typed rejection: FH_ERR_SIG_MALFORMED, _NAMESPACE,
 * _UNKNOWN_SIGNER, _BAD_SIGNATURE, _TARGET, _EXPIRED, _NOT_YET_VALID
 * (FH_ERR_NOMEM/FH_ERR_INTERNAL on trouble); why (may be NULL) gets one
 * line. No I/O, no nonce lookup. Safe to call from several threads on one
 * verifier. *out written only on success. */
int sig_check(const struct sig_verifier *v, const uint8_t *blob, size_t bloblen,
	      const char *armor, size_t armorlen, int64_t now,
	      struct sig_verified *out, char *why, size_t whylen);

/* wolfSSL 5.5.4 here is built with FP_ECC and HAVE_THREAD_LS: each thread
 * that verified an ECDSA signature holds its own fixed-point table cache
 * (the speed-up for repeated keys). A thread that called sig_check and is
 * about to exit calls this to free that cache (wc_ecc_fp_free); the main
 * thread need not. */
void sig_thread_done(void);

/* Stage 9 inside the caller's LMDB write transaction (so the nonce, an
 * idempotency key and a journal intent commit together): nonce_record().
 * FH_ERR_SIG_REPLAY if the nonce was used; FH_ERR_STORE otherwise on
 * failure. The op counts as accepted only once the caller's commit
 * returned 0. */
int sig_record(struct store_txn *t, const struct sig_verified *vd);

/* Stage 9 in its own durable transaction: nonce_record_durable(). 0 only
 * once the nonce is on disk; FH_ERR_SIG_REPLAY; FH_ERR_STORE /
 * FH_ERR_STORE_FULL (fail safe: reject the op). */
int sig_record_durable(struct store *st, const struct sig_verified *vd);

/* sig_check then sig_record_durable: the whole pipeline, as run by
 * --verify-op. Same errors as both; why is filled on every rejection. */
int sig_verify_and_record(const struct sig_verifier *v, struct store *st,
			  const uint8_t *blob, size_t bloblen,
			  const char *armor, size_t armorlen, int64_t now,
			  struct sig_verified *out, char *why, size_t whylen);

#endif
