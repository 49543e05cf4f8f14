/* sig.c — SSHSIG verification of signed ops; see include/sig.h and
 * docs/PROTOCOL.opsig.md. The armor machine is machines/sshsig_armor.rl.
 *
 * All cryptography is wolfCrypt's. What wolfSSL 5.5.4 does not check, we
 * check before calling it (research/sshsig-facts.md §5): Ed25519 S < L,
 * ECDSA points on the curve (signer load), RSA signatures shorter than the
 * modulus (left-padded) or longer (refused), and a verify counts only when
 * the call returned 0 AND the result flag is 1.
 */
#include "sig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "err.h"
#include "nonce.h"
#include "opblob.h"
#include "store.h"

#define EXCERPT_MAX 24

/* ---- reasons ---------------------------------------------------------- */

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* A short, printable rendering of outside bytes for a reason: printable
 * ASCII kept except '"' and '\\', everything else '?', at most
 * EXCERPT_MAX bytes then "...". */
static const char *excerpt(const void *p, size_t n, char *dst, size_t dstlen)
{
	const uint8_t *s = p;
	size_t i, k = 0;

	if (dstlen < EXCERPT_MAX + 4)
		return "";
	for (i = 0; i < n && i < EXCERPT_MAX; i++)
		dst[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? (char)s[i] : '?';
	if (n > EXCERPT_MAX) {
		memcpy(dst + k, "...", 3);
		k += 3;
	}
	dst[k] = '\0';
	return dst;
}

/* ---- SSH wire reader -------------------------------------------------- */

void sig_wire_init(struct sig_wire *w, const uint8_t *p, size_t n)
{
	w->p = p;
	w->n = p ? n : 0;
	w->off = 0;
}

int sig_wire_bytes(struct sig_wire *w, size_t n, const uint8_t **s)
{
	if (n > w->n - w->off)
		return FH_ERR_SIG_MALFORMED;
	*s = w->p + w->off;
	w->off += n;
	return 0;
}

int sig_wire_u8(struct sig_wire *w, uint8_t *v)
{
	const uint8_t *s;

	if (sig_wire_bytes(w, 1, &s) != 0)
		return FH_ERR_SIG_MALFORMED;
	*v = s[0];
	return 0;
}

int sig_wire_u32(struct sig_wire *w, uint32_t *v)
{
	const uint8_t *s;

	if (sig_wire_bytes(w, 4, &s) != 0)
		return FH_ERR_SIG_MALFORMED;
	*v = (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | (uint32_t)s[3];
	return 0;
}

int sig_wire_string(struct sig_wire *w, const uint8_t **s, size_t *len)
{
	size_t save = w->off;
	uint32_t n;

	if (sig_wire_u32(w, &n) != 0)
		return FH_ERR_SIG_MALFORMED;
	if (sig_wire_bytes(w, n, s) != 0) {
		w->off = save;
		return FH_ERR_SIG_MALFORMED;
	}
	*len = n;
	return 0;
}

int sig_wire_cstring(struct sig_wire *w, const char **s, size_t *len)
{
	size_t save = w->off, n;
	const uint8_t *b;

	if (sig_wire_string(w, &b, &n) != 0)
		return FH_ERR_SIG_MALFORMED;
	if (memchr(b, '\0', n)) {
		w->off = save;
		return FH_ERR_SIG_MALFORMED;
	}
	*s = (const char *)b;
	*len = n;
	return 0;
}

int sig_wire_mpint(struct sig_wire *w, const uint8_t **s, size_t *len)
{
	size_t save = w->off, n;
	const uint8_t *b;

	if (sig_wire_string(w, &b, &n) != 0)
		return FH_ERR_SIG_MALFORMED;
	if (n > 0 && (b[0] & 0x80)) {
		w->off = save;
		return FH_ERR_SIG_MALFORMED;
	}
	while (n > 0 && b[0] == 0) {
		b++;
		n--;
	}
	*s = b;
	*len = n;
	return 0;
}

int sig_wire_end(const struct sig_wire *w)
{
	return w->off == w->n ? 0 : FH_ERR_SIG_MALFORMED;
}

/* ---- key types -------------------------------------------------------- */

struct ktype {
	enum sig_keytype t;
	const char *name;       /* key type and (but for RSA) signature type */
	const char *curve;      /* ECDSA: curve name inside the key blob */
	int curve_id;           /* wolfCrypt curve */
	size_t coord;           /* ECDSA: bytes per coordinate = order bytes */
	enum wc_HashType ec_hash;
	bool sk;
};

static const struct ktype ktypes[] = {
	{ SIG_KEY_ED25519, "ssh-ed25519", NULL, 0, 0, WC_HASH_TYPE_NONE, false },
	{ SIG_KEY_SK_ED25519, "sk-ssh-ed25519@openssh.com", NULL, 0, 0, WC_HASH_TYPE_NONE, true },
	{ SIG_KEY_ECDSA_P256, "ecdsa-sha2-nistp256", "nistp256", ECC_SECP256R1, 32, WC_HASH_TYPE_SHA256, false },
	{ SIG_KEY_ECDSA_P384, "ecdsa-sha2-nistp384", "nistp384", ECC_SECP384R1, 48, WC_HASH_TYPE_SHA384, false },
	{ SIG_KEY_ECDSA_P521, "ecdsa-sha2-nistp521", "nistp521", ECC_SECP521R1, 66, WC_HASH_TYPE_SHA512, false },
	{ SIG_KEY_SK_ECDSA_P256, "sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", ECC_SECP256R1, 32,
	  WC_HASH_TYPE_SHA256, true },
	{ SIG_KEY_RSA, "ssh-rsa", NULL, 0, 0, WC_HASH_TYPE_NONE, false },
};

static const struct ktype *ktype_by_name(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof ktypes / sizeof ktypes[0]; i++)
		if (strlen(ktypes[i].name) == n && memcmp(ktypes[i].name, s, n) == 0)
			return &ktypes[i];
	return NULL;
}

static const struct ktype *ktype_of(enum sig_keytype t)
{
	size_t i;

	for (i = 0; i < sizeof ktypes / sizeof ktypes[0]; i++)
		if (ktypes[i].t == t)
			return &ktypes[i];
	return NULL;
}

const char *sig_keytype_name(enum sig_keytype t)
{
	const struct ktype *k = ktype_of(t);

	return k ? k->name : "none";
}

const char *sig_role_name(enum sig_role r)
{
	switch (r) {
	case SIG_ROLE_OPERATIONAL:
		return "operational";
	case SIG_ROLE_RECOVERY:
		return "recovery";
	}
	return "none";
}

static bool str_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* ---- envelope --------------------------------------------------------- */

int sig_envelope_parse(const uint8_t *p, size_t n, struct sig_envelope *out,
		       char *why, size_t whylen)
{
	struct sig_wire w;
	struct sig_envelope e;
	const uint8_t *magic, *reserved;
	const char *hash;
	size_t reservedlen, hashlen;
	char ex[EXCERPT_MAX + 4];

	memset(&e, 0, sizeof e);
	sig_wire_init(&w, p, n);
	if (sig_wire_bytes(&w, 6, &magic) != 0 || memcmp(magic, "SSHSIG", 6) != 0) {
		say(why, whylen, "blob: no SSHSIG magic");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_u32(&w, &e.version) != 0) {
		say(why, whylen, "blob: truncated version");
		return FH_ERR_SIG_MALFORMED;
	}
	if (e.version != 1) {
		say(why, whylen, "blob: version %u, want 1", (unsigned)e.version);
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_string(&w, &e.pubkey, &e.pubkeylen) != 0) {
		say(why, whylen, "blob: bad public key length");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_cstring(&w, &e.ns, &e.nslen) != 0) {
		say(why, whylen, "blob: bad namespace string (length or NUL byte)");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_string(&w, &reserved, &reservedlen) != 0) {
		say(why, whylen, "blob: bad reserved field length");
		return FH_ERR_SIG_MALFORMED;
	}
	if (reservedlen != 0) {
		say(why, whylen, "blob: reserved field not empty");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_cstring(&w, &hash, &hashlen) != 0) {
		say(why, whylen, "blob: bad hash algorithm string (length or NUL byte)");
		return FH_ERR_SIG_MALFORMED;
	}
	if (str_is(hash, hashlen, "sha256"))
		e.hash = SIG_HASH_SHA256;
	else if (str_is(hash, hashlen, "sha512"))
		e.hash = SIG_HASH_SHA512;
	else {
		say(why, whylen, "blob: hash algorithm \"%s\" not sha256 or sha512",
		    excerpt(hash, hashlen, ex, sizeof ex));
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_string(&w, &e.sig, &e.siglen) != 0) {
		say(why, whylen, "blob: bad signature length");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_end(&w) != 0) {
		say(why, whylen, "blob: %zu trailing bytes after the signature", w.n - w.off);
		return FH_ERR_SIG_MALFORMED;
	}
	*out = e;
	return 0;
}

/* ---- public keys ------------------------------------------------------ */

static unsigned bit_length(const uint8_t *m, size_t n)
{
	unsigned bits;
	uint8_t top;

	if (n == 0)
		return 0;
	bits = (unsigned)(n - 1) * 8;
	for (top = m[0]; top; top >>= 1)
		bits++;
	return bits;
}

int sig_pubkey_parse(const uint8_t *p, size_t n, struct sig_pubkey *out,
		     char *why, size_t whylen)
{
	struct sig_wire w;
	struct sig_pubkey k;
	const struct ktype *kt;
	const char *name, *curve;
	size_t namelen, curvelen;
	char ex[EXCERPT_MAX + 4];

	memset(&k, 0, sizeof k);
	k.blob = p;
	k.bloblen = n;
	sig_wire_init(&w, p, n);
	if (sig_wire_cstring(&w, &name, &namelen) != 0) {
		say(why, whylen, "public key: bad key type string");
		return FH_ERR_SIG_MALFORMED;
	}
	kt = ktype_by_name(name, namelen);
	if (!kt) {
		say(why, whylen, "public key: unsupported key type \"%s\"", excerpt(name, namelen, ex, sizeof ex));
		return FH_ERR_SIG_UNKNOWN_SIGNER;
	}
	k.type = kt->t;
	switch (kt->t) {
	case SIG_KEY_ED25519:
	case SIG_KEY_SK_ED25519:
		if (sig_wire_string(&w, &k.pk, &k.pklen) != 0 || k.pklen != ED25519_PUB_KEY_SIZE) {
			say(why, whylen, "public key: Ed25519 key is not 32 bytes");
			return FH_ERR_SIG_MALFORMED;
		}
		break;
	case SIG_KEY_ECDSA_P256:
	case SIG_KEY_ECDSA_P384:
	case SIG_KEY_ECDSA_P521:
	case SIG_KEY_SK_ECDSA_P256:
		if (sig_wire_cstring(&w, &curve, &curvelen) != 0) {
			say(why, whylen, "public key: bad curve name string");
			return FH_ERR_SIG_MALFORMED;
		}
		if (!str_is(curve, curvelen, kt->curve)) {
			say(why, whylen, "public key: curve \"%s\" does not match %s",
			    excerpt(curve, curvelen, ex, sizeof ex), kt->name);
			return FH_ERR_SIG_MALFORMED;
		}
		if (sig_wire_string(&w, &k.pk, &k.pklen) != 0) {
			say(why, whylen, "public key: bad point length");
			return FH_ERR_SIG_MALFORMED;
		}
		if (k.pklen > 0 && (k.pk[0] == 0x02 || k.pk[0] == 0x03)) {
			say(why, whylen, "public key: compressed point");
			return FH_ERR_SIG_MALFORMED;
		}
		if (k.pklen != 1 + 2 * kt->coord || k.pk[0] != 0x04) {
			say(why, whylen, "public key: point is not an uncompressed %s point", kt->curve);
			return FH_ERR_SIG_MALFORMED;
		}
		break;
	case SIG_KEY_RSA:
		if (sig_wire_mpint(&w, &k.rsa_e, &k.rsa_elen) != 0 ||
		    sig_wire_mpint(&w, &k.rsa_n, &k.rsa_nlen) != 0) {
			say(why, whylen, "public key: bad RSA exponent or modulus");
			return FH_ERR_SIG_MALFORMED;
		}
		break;
	case SIG_KEY_NONE:
		return FH_ERR_INTERNAL;
	}
	if (kt->sk && sig_wire_cstring(&w, &k.app, &k.applen) != 0) {
		say(why, whylen, "public key: bad FIDO application string");
		return FH_ERR_SIG_MALFORMED;
	}
	if (kt->sk && k.applen == 0) {
		say(why, whylen, "public key: empty FIDO application");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_end(&w) != 0) {
		say(why, whylen, "public key: %zu trailing bytes", w.n - w.off);
		return FH_ERR_SIG_MALFORMED;
	}
	if (kt->t == SIG_KEY_RSA) {
		uint32_t e = 0;
		size_t i;

		if (k.rsa_elen == 0 || k.rsa_elen > 4 || k.rsa_nlen == 0 || !(k.rsa_n[k.rsa_nlen - 1] & 1)) {
			say(why, whylen, "public key: RSA exponent or modulus not acceptable");
			return FH_ERR_SIG_MALFORMED;
		}
		for (i = 0; i < k.rsa_elen; i++)
			e = e << 8 | k.rsa_e[i];
		if (e < 3 || !(e & 1)) {
			say(why, whylen, "public key: RSA exponent not acceptable");
			return FH_ERR_SIG_MALFORMED;
		}
		k.rsa_bits = bit_length(k.rsa_n, k.rsa_nlen);
		if (k.rsa_bits < SIG_RSA_MIN_BITS || k.rsa_bits > SIG_RSA_MAX_BITS) {
			say(why, whylen, "public key: RSA key of %u bits (accepted: %d-%d)", k.rsa_bits,
			    SIG_RSA_MIN_BITS, SIG_RSA_MAX_BITS);
			return FH_ERR_SIG_UNKNOWN_SIGNER;
		}
	}
	*out = k;
	return 0;
}

/* ---- signatures ------------------------------------------------------- */

static int parse_ecdsa_rs(const uint8_t *p, size_t n, struct sig_signature *s)
{
	struct sig_wire w;

	sig_wire_init(&w, p, n);
	if (sig_wire_mpint(&w, &s->r, &s->rlen) != 0 || sig_wire_mpint(&w, &s->s, &s->slen) != 0 ||
	    sig_wire_end(&w) != 0)
		return FH_ERR_SIG_MALFORMED;
	return 0;
}

int sig_signature_parse(const struct sig_pubkey *k, const uint8_t *p, size_t n,
			struct sig_signature *out, char *why, size_t whylen)
{
	struct sig_wire w;
	struct sig_signature s;
	const struct ktype *kt = ktype_of(k->type);
	const char *name;
	size_t namelen;
	const uint8_t *inner;
	size_t innerlen;
	char ex[EXCERPT_MAX + 4];

	if (!kt)
		return FH_ERR_INVAL;
	memset(&s, 0, sizeof s);
	s.type = k->type;
	sig_wire_init(&w, p, n);
	if (sig_wire_cstring(&w, &name, &namelen) != 0) {
		say(why, whylen, "signature: bad type string");
		return FH_ERR_SIG_MALFORMED;
	}
	if (k->type == SIG_KEY_RSA) {
		if (str_is(name, namelen, "rsa-sha2-256"))
			s.rsa_hash = SIG_HASH_SHA256;
		else if (str_is(name, namelen, "rsa-sha2-512"))
			s.rsa_hash = SIG_HASH_SHA512;
		else if (str_is(name, namelen, "ssh-rsa")) {
			say(why, whylen, "signature: ssh-rsa (SHA-1) signatures are refused");
			return FH_ERR_SIG_MALFORMED;
		} else {
			say(why, whylen, "signature: type \"%s\" for an ssh-rsa key",
			    excerpt(name, namelen, ex, sizeof ex));
			return FH_ERR_SIG_MALFORMED;
		}
	} else if (!str_is(name, namelen, kt->name)) {
		say(why, whylen, "signature: type \"%s\" for a %s key", excerpt(name, namelen, ex, sizeof ex),
		    kt->name);
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_string(&w, &inner, &innerlen) != 0) {
		say(why, whylen, "signature: bad length");
		return FH_ERR_SIG_MALFORMED;
	}
	switch (k->type) {
	case SIG_KEY_ED25519:
	case SIG_KEY_SK_ED25519:
		if (innerlen != ED25519_SIG_SIZE) {
			say(why, whylen, "signature: Ed25519 signature of %zu bytes, want 64", innerlen);
			return FH_ERR_SIG_MALFORMED;
		}
		s.sig = inner;
		s.siglen = innerlen;
		break;
	case SIG_KEY_ECDSA_P256:
	case SIG_KEY_ECDSA_P384:
	case SIG_KEY_ECDSA_P521:
	case SIG_KEY_SK_ECDSA_P256:
		if (parse_ecdsa_rs(inner, innerlen, &s) != 0) {
			say(why, whylen, "signature: bad ECDSA r/s encoding");
			return FH_ERR_SIG_MALFORMED;
		}
		break;
	case SIG_KEY_RSA:
		s.sig = inner;
		s.siglen = innerlen;
		break;
	case SIG_KEY_NONE:
		return FH_ERR_INTERNAL;
	}
	if (kt->sk && (sig_wire_u8(&w, &s.flags) != 0 || sig_wire_u32(&w, &s.counter) != 0)) {
		say(why, whylen, "signature: truncated FIDO flags/counter");
		return FH_ERR_SIG_MALFORMED;
	}
	if (sig_wire_end(&w) != 0) {
		say(why, whylen, "signature: %zu trailing bytes", w.n - w.off);
		return FH_ERR_SIG_MALFORMED;
	}
	*out = s;
	return 0;
}

/* ---- signed data and hashing ------------------------------------------ */

#define SIGNED_DATA_MAX 128     /* 6 + 4+12 + 4 + 4+6 + 4+64 = 104 */

static void put32(uint8_t *o, uint32_t v)
{
	o[0] = (uint8_t)(v >> 24);
	o[1] = (uint8_t)(v >> 16);
	o[2] = (uint8_t)(v >> 8);
	o[3] = (uint8_t)v;
}

static int put_string(uint8_t *o, size_t *len, size_t cap, const void *s, size_t n)
{
	if (n > cap - *len || 4 > cap - *len - n)
		return FH_ERR_INTERNAL;
	put32(o + *len, (uint32_t)n);
	memcpy(o + *len + 4, s, n);
	*len += 4 + n;
	return 0;
}

/* "SSHSIG" string(SIG_NAMESPACE) string("") string(hash) string(H(msg)):
 * built from constants and our own hash, never from blob fields. */
static int signed_data(enum sig_hash h, const uint8_t *msg, size_t msglen,
		       uint8_t out[SIGNED_DATA_MAX], size_t *outlen)
{
	uint8_t dig[WC_SHA512_DIGEST_SIZE];
	size_t diglen, len = 6;
	const char *hname;
	int r;

	if (msglen > UINT32_MAX)
		return FH_ERR_INVAL;
	if (h == SIG_HASH_SHA256) {
		hname = "sha256";
		diglen = WC_SHA256_DIGEST_SIZE;
		r = wc_Sha256Hash(msg, (word32)msglen, dig);
	} else {
		hname = "sha512";
		diglen = WC_SHA512_DIGEST_SIZE;
		r = wc_Sha512Hash(msg, (word32)msglen, dig);
	}
	if (r != 0)
		return FH_ERR_INTERNAL;
	memcpy(out, "SSHSIG", 6);
	if (put_string(out, &len, SIGNED_DATA_MAX, SIG_NAMESPACE, strlen(SIG_NAMESPACE)) != 0 ||
	    put_string(out, &len, SIGNED_DATA_MAX, "", 0) != 0 ||
	    put_string(out, &len, SIGNED_DATA_MAX, hname, 6) != 0 ||
	    put_string(out, &len, SIGNED_DATA_MAX, dig, diglen) != 0)
		return FH_ERR_INTERNAL;
	*outlen = len;
	return 0;
}

int sig_signed_data(enum sig_hash h, const uint8_t *msg, size_t msglen, struct buf *out)
{
	uint8_t d[SIGNED_DATA_MAX];
	size_t dlen;
	int r;

	if ((h != SIG_HASH_SHA256 && h != SIG_HASH_SHA512) || (!msg && msglen) || !out)
		return FH_ERR_INVAL;
	r = signed_data(h, msg ? msg : (const uint8_t *)"", msglen, d, &dlen);
	if (r != 0)
		return r;
	return buf_append(out, d, dlen);
}

static int hash_of(enum wc_HashType t, const uint8_t *p, size_t n, uint8_t *dig, size_t *diglen)
{
	int sz = wc_HashGetDigestSize(t);

	if (sz <= 0 || wc_Hash(t, p, (word32)n, dig, (word32)sz) != 0)
		return FH_ERR_INTERNAL;
	*diglen = (size_t)sz;
	return 0;
}

/* ---- crypto ----------------------------------------------------------- */

/* Ed25519 group order L, little-endian (RFC 8032). */
static const uint8_t ED25519_L[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* S (the second half of an Ed25519 signature, little-endian) < L? wolfSSL
 * 5.5.4 checks only part of this (wolfSSL issue #7510). */
static bool ed25519_s_canonical(const uint8_t s[32])
{
	int i;

	for (i = 31; i >= 0; i--) {
		if (s[i] < ED25519_L[i])
			return true;
		if (s[i] > ED25519_L[i])
			return false;
	}
	return false;           /* S == L */
}

static int verify_ed25519(const struct sig_pubkey *k, const uint8_t *sig,
			  const uint8_t *msg, size_t msglen)
{
	ed25519_key key;
	int res = 0, rc;

	if (!ed25519_s_canonical(sig + 32))
		return FH_ERR_SIG_BAD_SIGNATURE;
	if (wc_ed25519_init(&key) != 0)
		return FH_ERR_INTERNAL;
	/* trusted: the bytes equal a signer key checked when it was loaded */
	rc = wc_ed25519_import_public_ex(k->pk, (word32)k->pklen, &key, 1);
	if (rc == 0)
		rc = wc_ed25519_verify_msg(sig, ED25519_SIG_SIZE, msg, (word32)msglen, &res, &key);
	wc_ed25519_free(&key);
	return rc == 0 && res == 1 ? 0 : FH_ERR_SIG_BAD_SIGNATURE;
}

static int verify_ecdsa(const struct ktype *kt, const struct sig_pubkey *k,
			const struct sig_signature *s, const uint8_t *hash, size_t hashlen)
{
	ecc_key key;
	uint8_t der[256];
	word32 derlen = sizeof der;
	int res = 0, rc;

	if (s->rlen == 0 || s->slen == 0 || s->rlen > kt->coord || s->slen > kt->coord)
		return FH_ERR_SIG_BAD_SIGNATURE;
	if (wc_ecc_rs_raw_to_sig(s->r, (word32)s->rlen, s->s, (word32)s->slen, der, &derlen) != 0)
		return FH_ERR_SIG_BAD_SIGNATURE;
	if (wc_ecc_init(&key) != 0)
		return FH_ERR_INTERNAL;
	rc = wc_ecc_import_x963_ex(k->pk, (word32)k->pklen, &key, kt->curve_id);
	if (rc == 0)
		rc = wc_ecc_verify_hash(der, derlen, hash, (word32)hashlen, &res, &key);
	wc_ecc_free(&key);
	return rc == 0 && res == 1 ? 0 : FH_ERR_SIG_BAD_SIGNATURE;
}

static int verify_rsa(const struct sig_pubkey *k, const struct sig_signature *s,
		      const uint8_t *msg, size_t msglen)
{
	RsaKey key;
	uint8_t padded[SIG_RSA_MAX_BITS / 8], dec[SIG_RSA_MAX_BITS / 8], want[128];
	uint8_t dig[WC_SHA512_DIGEST_SIZE];
	enum wc_HashType ht = s->rsa_hash == SIG_HASH_SHA256 ? WC_HASH_TYPE_SHA256 : WC_HASH_TYPE_SHA512;
	size_t diglen, modlen;
	word32 wantlen;
	int rc, r = FH_ERR_SIG_BAD_SIGNATURE, size;

	if (hash_of(ht, msg, msglen, dig, &diglen) != 0)
		return FH_ERR_INTERNAL;
	wantlen = wc_EncodeSignature(want, dig, (word32)diglen, wc_HashGetOID(ht));
	if (wantlen == 0 || wantlen > sizeof want)
		return FH_ERR_INTERNAL;
	if (wc_InitRsaKey(&key, NULL) != 0)
		return FH_ERR_INTERNAL;
	if (wc_RsaPublicKeyDecodeRaw(k->rsa_n, (word32)k->rsa_nlen, k->rsa_e, (word32)k->rsa_elen, &key) != 0)
		goto out;
	size = wc_RsaEncryptSize(&key);
	if (size <= 0 || (size_t)size > sizeof padded)
		goto out;
	modlen = (size_t)size;
	/* OpenSSH accepts a signature shorter than the modulus (left-padded
	 * with zeros); wolfSSL would refuse it. Longer is refused. */
	if (s->siglen > modlen)
		goto out;
	memset(padded, 0, modlen - s->siglen);
	memcpy(padded + (modlen - s->siglen), s->sig, s->siglen);
	rc = wc_RsaSSL_Verify(padded, (word32)modlen, dec, sizeof dec, &key);
	if (rc > 0 && (word32)rc == wantlen && memcmp(dec, want, wantlen) == 0)
		r = 0;
out:
	wc_FreeRsaKey(&key);
	return r;
}

/* The 69 bytes a FIDO authenticator signs (PROTOCOL.u2f):
 * SHA256(application) || flags || counter (BE32) || SHA256(signed data). */
static int fido_message(const struct sig_pubkey *k, const struct sig_signature *s,
			const uint8_t *d, size_t dlen, uint8_t out[69])
{
	if (wc_Sha256Hash((const byte *)k->app, (word32)k->applen, out) != 0)
		return FH_ERR_INTERNAL;
	out[32] = s->flags;
	put32(out + 33, s->counter);
	if (wc_Sha256Hash(d, (word32)dlen, out + 37) != 0)
		return FH_ERR_INTERNAL;
	return 0;
}

/* Verifies signature s by key k over the signed data d. */
static int verify_sig(const struct sig_pubkey *k, const struct sig_signature *s,
		      const uint8_t *d, size_t dlen, char *why, size_t whylen)
{
	const struct ktype *kt = ktype_of(k->type);
	uint8_t fido[69], hash[WC_SHA512_DIGEST_SIZE];
	size_t hashlen;
	int r;

	if (!kt)
		return FH_ERR_INTERNAL;
	if (kt->sk && !(s->flags & 0x01)) {
		say(why, whylen, "signature: FIDO user-presence flag not set (flags 0x%02x)", s->flags);
		return FH_ERR_SIG_BAD_SIGNATURE;
	}
	if (kt->sk) {
		r = fido_message(k, s, d, dlen, fido);
		if (r != 0)
			return r;
		d = fido;
		dlen = sizeof fido;
	}
	switch (k->type) {
	case SIG_KEY_ED25519:
	case SIG_KEY_SK_ED25519:
		r = verify_ed25519(k, s->sig, d, dlen);
		break;
	case SIG_KEY_ECDSA_P256:
	case SIG_KEY_ECDSA_P384:
	case SIG_KEY_ECDSA_P521:
	case SIG_KEY_SK_ECDSA_P256:
		r = hash_of(kt->ec_hash, d, dlen, hash, &hashlen);
		if (r == 0)
			r = verify_ecdsa(kt, k, s, hash, hashlen);
		break;
	case SIG_KEY_RSA:
		r = verify_rsa(k, s, d, dlen);
		break;
	default:
		r = FH_ERR_INTERNAL;
	}
	if (r == FH_ERR_SIG_BAD_SIGNATURE)
		say(why, whylen, "signature does not verify (%s)", kt->name);
	return r;
}

/* ---- signers ---------------------------------------------------------- */

struct signer {
	enum sig_role role;
	char id[SIG_KEY_ID_MAX + 1];
	uint8_t *blob;          /* owned key blob */
	size_t bloblen;
	struct sig_pubkey key;  /* points into blob */
	char where[96];         /* "authz.signers[2]" / "FILE:7", for duplicates */
};

struct sig_verifier {
	struct signer *signers;
	size_t n, alloc;
	char *host_id;
	int64_t max_lifetime, skew;
};

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict base64 (standard alphabet, '=' padding required, zero unused
 * bits, no whitespace) of s[0..n) into a new allocation. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *o;
	size_t i, k = 0, pad = 0;

	if (n == 0 || n % 4 != 0)
		return FH_ERR_DECODE;
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	o = malloc(n / 4 * 3);
	if (!o)
		return FH_ERR_NOMEM;
	for (i = 0; i < n; i += 4) {
		int v[4], j;
		uint32_t q = 0;

		for (j = 0; j < 4; j++) {
			bool padpos = i + 4 == n && (size_t)j >= 4 - pad;

			v[j] = padpos ? 0 : b64val((unsigned char)s[i + (size_t)j]);
			if (v[j] < 0) {
				free(o);
				return FH_ERR_DECODE;
			}
			q = q << 6 | (uint32_t)v[j];
		}
		if ((pad == 1 && i + 4 == n && (q & 0xff)) || (pad == 2 && i + 4 == n && (q & 0xffff))) {
			free(o);
			return FH_ERR_DECODE;
		}
		o[k++] = (uint8_t)(q >> 16);
		if (!(i + 4 == n && pad == 2))
			o[k++] = (uint8_t)(q >> 8);
		if (!(i + 4 == n && pad >= 1))
			o[k++] = (uint8_t)q;
	}
	*out = o;
	*outlen = k;
	return 0;
}

static bool key_id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SIG_KEY_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

/* Encodings of the Ed25519 points of order 1, 2, 4 and 8, sign bit
 * ignored (the list libsodium's ge25519_has_small_order uses): y = 0, 1,
 * the two order-8 y values, p-1, and the non-canonical p and p+1. With
 * such a key a signature is forgeable without the private key, so a
 * signer line carrying one is refused (OpenSSH >= 10.4 does the same). */
static const uint8_t ED25519_SMALL_ORDER[7][32] = {
	{ 0 },
	{ 0x01 },
	{ 0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
	  0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05 },
	{ 0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
	  0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a },
	{ 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
	{ 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
	{ 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};

/* wolfSSL 5.5.4's wc_ed25519_check_key needs the private key, and import
 * does not decode the point. So: refuse small-order encodings, then let
 * wolfCrypt decode the point in a verify of a dummy signature (R = the
 * identity, S = 0): a key that does not decode gives BAD_FUNC_ARG, a good
 * key SIG_VERIFY_E with res 0. */
static int validate_ed25519(const uint8_t pk[32])
{
	ed25519_key key;
	uint8_t sig[ED25519_SIG_SIZE] = { 0x01 }, y[32];
	size_t i;
	int res = 0, rc;

	memcpy(y, pk, 32);
	y[31] &= 0x7f;
	for (i = 0; i < sizeof ED25519_SMALL_ORDER / sizeof ED25519_SMALL_ORDER[0]; i++)
		if (memcmp(y, ED25519_SMALL_ORDER[i], 32) == 0)
			return -1;
	if (wc_ed25519_init(&key) != 0)
		return -1;
	rc = wc_ed25519_import_public_ex(pk, 32, &key, 1);
	if (rc == 0)
		rc = wc_ed25519_verify_msg(sig, sizeof sig, (const byte *)"felhom", 6, &res, &key);
	wc_ed25519_free(&key);
	return rc == SIG_VERIFY_E && res == 0 ? 0 : -1;
}

/* Checks a signer key with wolfCrypt as a full import would: Ed25519 point
 * decodes, ECDSA point on the curve and of the right order, RSA numbers
 * import. */
static int validate_key(const struct sig_pubkey *k)
{
	const struct ktype *kt = ktype_of(k->type);
	int rc = -1;

	if (!kt)
		return FH_ERR_INTERNAL;
	switch (k->type) {
	case SIG_KEY_ED25519:
	case SIG_KEY_SK_ED25519:
		rc = validate_ed25519(k->pk);
		break;
	case SIG_KEY_ECDSA_P256:
	case SIG_KEY_ECDSA_P384:
	case SIG_KEY_ECDSA_P521:
	case SIG_KEY_SK_ECDSA_P256: {
		ecc_key key;

		if (wc_ecc_init(&key) != 0)
			return FH_ERR_INTERNAL;
		rc = wc_ecc_import_x963_ex(k->pk, (word32)k->pklen, &key, kt->curve_id);
		if (rc == 0)
			rc = wc_ecc_check_key(&key);
		wc_ecc_free(&key);
		break;
	}
	case SIG_KEY_RSA: {
		RsaKey key;

		if (wc_InitRsaKey(&key, NULL) != 0)
			return FH_ERR_INTERNAL;
		rc = wc_RsaPublicKeyDecodeRaw(k->rsa_n, (word32)k->rsa_nlen, k->rsa_e, (word32)k->rsa_elen, &key);
		if (rc == 0 && wc_RsaEncryptSize(&key) != (int)((k->rsa_bits + 7) / 8))
			rc = -1;
		wc_FreeRsaKey(&key);
		break;
	}
	case SIG_KEY_NONE:
		break;
	}
	return rc == 0 ? 0 : FH_ERR_DECODE;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Next blank-separated field of s[*i..n). */
static bool next_field(const char *s, size_t n, size_t *i, const char **f, size_t *flen)
{
	while (*i < n && is_blank(s[*i]))
		(*i)++;
	if (*i == n)
		return false;
	*f = s + *i;
	while (*i < n && !is_blank(s[*i]))
		(*i)++;
	*flen = (size_t)(s + *i - *f);
	return true;
}

/* Parses one signer line s[0..n) (no line terminator) and appends it. */
static int add_signer(struct sig_verifier *v, const char *s, size_t n, const char *where,
		      char *err, size_t errlen)
{
	const char *role, *id, *kt, *b64;
	size_t rolelen, idlen, ktlen, b64len, i = 0, j;
	struct signer sg;
	char ex[EXCERPT_MAX + 4], kwhy[128];
	const struct ktype *type;
	int r = FH_ERR_CONFIG;

	memset(&sg, 0, sizeof sg);
	if (n > SIG_SIGNER_LINE_MAX) {
		say(err, errlen, "%s: signer line over %d bytes", where, SIG_SIGNER_LINE_MAX);
		goto out;
	}
	for (j = 0; j < n; j++)
		if (((unsigned char)s[j] < 0x20 && s[j] != '\t') || s[j] == 0x7f) {
			say(err, errlen, "%s: control byte in signer line", where);
			goto out;
		}
	if (!next_field(s, n, &i, &role, &rolelen) || !next_field(s, n, &i, &id, &idlen) ||
	    !next_field(s, n, &i, &kt, &ktlen) || !next_field(s, n, &i, &b64, &b64len)) {
		say(err, errlen, "%s: want \"ROLE KEY_ID KEYTYPE BASE64 [COMMENT]\"", where);
		goto out;
	}
	if (str_is(role, rolelen, "operational"))
		sg.role = SIG_ROLE_OPERATIONAL;
	else if (str_is(role, rolelen, "recovery"))
		sg.role = SIG_ROLE_RECOVERY;
	else {
		say(err, errlen, "%s: role \"%s\" is not operational or recovery", where,
		    excerpt(role, rolelen, ex, sizeof ex));
		goto out;
	}
	if (!key_id_ok(id, idlen)) {
		say(err, errlen, "%s: key id \"%s\" is not [A-Za-z0-9._@-]{1,64}", where,
		    excerpt(id, idlen, ex, sizeof ex));
		goto out;
	}
	memcpy(sg.id, id, idlen);
	type = ktype_by_name(kt, ktlen);
	if (!type) {
		say(err, errlen, "%s: unsupported key type \"%s\"", where, excerpt(kt, ktlen, ex, sizeof ex));
		goto out;
	}
	r = b64_decode(b64, b64len, &sg.blob, &sg.bloblen);
	if (r != 0) {
		if (r != FH_ERR_NOMEM) {
			say(err, errlen, "%s: key is not valid base64", where);
			r = FH_ERR_CONFIG;
		}
		goto out;
	}
	r = FH_ERR_CONFIG;
	kwhy[0] = '\0';
	if (sig_pubkey_parse(sg.blob, sg.bloblen, &sg.key, kwhy, sizeof kwhy) != 0) {
		say(err, errlen, "%s: %s", where, kwhy);
		goto out;
	}
	if (sg.key.type != type->t) {
		say(err, errlen, "%s: key type %s does not match the key blob's %s", where, type->name,
		    sig_keytype_name(sg.key.type));
		goto out;
	}
	if (validate_key(&sg.key) != 0) {
		say(err, errlen, "%s: %s key rejected by wolfCrypt (not a valid point/number)", where,
		    type->name);
		goto out;
	}
	for (j = 0; j < v->n; j++) {
		if (v->signers[j].bloblen == sg.bloblen && memcmp(v->signers[j].blob, sg.blob, sg.bloblen) == 0) {
			say(err, errlen, "%s: same key as %s", where, v->signers[j].where);
			goto out;
		}
		if (strcmp(v->signers[j].id, sg.id) == 0) {
			say(err, errlen, "%s: key id %s already used by %s", where, sg.id, v->signers[j].where);
			goto out;
		}
	}
	if (v->n >= SIG_SIGNERS_MAX) {
		say(err, errlen, "%s: more than %d signers", where, SIG_SIGNERS_MAX);
		goto out;
	}
	if (v->n == v->alloc) {
		size_t na = v->alloc ? v->alloc * 2 : 8;
		struct signer *ns = realloc(v->signers, na * sizeof *ns);

		if (!ns) {
			r = FH_ERR_NOMEM;
			goto out;
		}
		v->signers = ns;
		v->alloc = na;
	}
	snprintf(sg.where, sizeof sg.where, "%s", where);
	v->signers[v->n++] = sg;
	sg.blob = NULL;
	r = 0;
out:
	free(sg.blob);
	return r;
}

/* Reads the signers file through a capped buffer and adds each line. */
static int load_signers_file(struct sig_verifier *v, const char *path, char *err, size_t errlen)
{
	struct buf b;
	struct stat st;
	char chunk[8192], where[96];
	size_t line = 0, start = 0, i;
	ssize_t got;
	int fd = -1, r = FH_ERR_IO;

	buf_init(&b, SIG_SIGNERS_FILE_MAX);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		say(err, errlen, "authz.signers_file %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		say(err, errlen, "authz.signers_file %s: not a regular file", path);
		r = FH_ERR_CONFIG;
		goto out;
	}
	if (st.st_mode & S_IWOTH) {
		say(err, errlen, "authz.signers_file %s: world-writable", path);
		r = FH_ERR_CONFIG;
		goto out;
	}
	for (;;) {
		got = read(fd, chunk, sizeof chunk);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			say(err, errlen, "authz.signers_file %s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		r = buf_append(&b, chunk, (size_t)got);
		if (r == FH_ERR_TOOBIG) {
			say(err, errlen, "authz.signers_file %s: over %d bytes", path, SIG_SIGNERS_FILE_MAX);
			r = FH_ERR_CONFIG;
			goto out;
		}
		if (r != 0)
			goto out;
	}
	if (b.len && memchr(b.data, '\0', b.len)) {
		say(err, errlen, "authz.signers_file %s: NUL byte", path);
		r = FH_ERR_CONFIG;
		goto out;
	}
	for (i = 0; i <= b.len; i++) {
		const char *s;
		size_t n, k = 0;

		if (i < b.len && b.data[i] != '\n')
			continue;
		line++;
		s = b.data + start;
		n = i - start;
		start = i + 1;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		while (k < n && is_blank(s[k]))
			k++;
		if (k == n || s[k] == '#')
			continue;
		snprintf(where, sizeof where, "%s:%zu", path, line);
		r = add_signer(v, s, n, where, err, errlen);
		if (r != 0)
			goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return r;
}

void sig_verifier_free(struct sig_verifier *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->n; i++)
		free(v->signers[i].blob);
	free(v->signers);
	free(v->host_id);
	free(v);
}

int sig_verifier_new(const struct sig_config *c, struct sig_verifier **out,
		     char *err, size_t errlen)
{
	struct sig_verifier *v = NULL;
	char where[64];
	size_t i;
	int r = FH_ERR_INVAL;

	say(err, errlen, "invalid argument");
	if (!c || !out || (c->nsigners && !c->signers))
		goto out;
	r = FH_ERR_CONFIG;
	if (!c->host_id || !*c->host_id) {
		say(err, errlen, "hub.host_id: required to verify signed ops");
		goto out;
	}
	if (c->max_lifetime_seconds <= 0) {
		say(err, errlen, "authz.max_lifetime_seconds: must be > 0");
		goto out;
	}
	if (c->clock_skew_seconds < 0) {
		say(err, errlen, "authz.clock_skew_seconds: must be >= 0");
		goto out;
	}
	r = FH_ERR_NOMEM;
	v = calloc(1, sizeof *v);
	if (!v || !(v->host_id = strdup(c->host_id)))
		goto out;
	v->max_lifetime = c->max_lifetime_seconds;
	v->skew = c->clock_skew_seconds;
	for (i = 0; i < c->nsigners; i++) {
		if (!c->signers[i]) {
			r = FH_ERR_INVAL;
			goto out;
		}
		snprintf(where, sizeof where, "authz.signers[%zu]", i);
		r = add_signer(v, c->signers[i], strlen(c->signers[i]), where, err, errlen);
		if (r != 0)
			goto out;
	}
	if (c->signers_file && *c->signers_file) {
		r = load_signers_file(v, c->signers_file, err, errlen);
		if (r != 0)
			goto out;
	}
	say(err, errlen, "%s", "");
	*out = v;
	v = NULL;
	r = 0;
out:
	if (r == FH_ERR_NOMEM)
		say(err, errlen, "out of memory");
	sig_verifier_free(v);
	return r;
}

size_t sig_verifier_nsigners(const struct sig_verifier *v)
{
	return v ? v->n : 0;
}

static const struct signer *find_signer(const struct sig_verifier *v, const uint8_t *blob, size_t n)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (v->signers[i].bloblen == n && memcmp(v->signers[i].blob, blob, n) == 0)
			return &v->signers[i];
	return NULL;
}

/* "SHA256:<unpadded base64>" of a key blob, as ssh-keygen -l prints it. */
static void fingerprint(const uint8_t *blob, size_t n, char *out, size_t outlen)
{
	static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t d[WC_SHA256_DIGEST_SIZE];
	char s[48];
	size_t i, k = 0;

	if (wc_Sha256Hash(blob, (word32)n, d) != 0) {
		snprintf(out, outlen, "?");
		return;
	}
	for (i = 0; i < sizeof d; i += 3) {
		uint32_t q = (uint32_t)d[i] << 16;
		size_t left = sizeof d - i;

		if (left > 1)
			q |= (uint32_t)d[i + 1] << 8;
		if (left > 2)
			q |= d[i + 2];
		s[k++] = A[q >> 18 & 63];
		s[k++] = A[q >> 12 & 63];
		if (left > 1)
			s[k++] = A[q >> 6 & 63];
		if (left > 2)
			s[k++] = A[q & 63];
	}
	s[k] = '\0';
	snprintf(out, outlen, "SHA256:%s", s);
}

/* ---- the pipeline ----------------------------------------------------- */

static int check_time(const struct sig_verifier *v, const struct opblob *op, int64_t now,
		      char *why, size_t whylen)
{
	int64_t life, t;

	if (__builtin_sub_overflow(op->expires_at, op->issued_at, &life) || life <= 0) {
		say(why, whylen, "expires_at is not after issued_at");
		return FH_ERR_SIG_EXPIRED;
	}
	if (life > v->max_lifetime) {
		say(why, whylen, "lifetime %lld s over the maximum %lld s", (long long)life,
		    (long long)v->max_lifetime);
		return FH_ERR_SIG_EXPIRED;
	}
	if (__builtin_add_overflow(now, v->skew, &t))
		t = INT64_MAX;
	if (t < op->issued_at) {
		say(why, whylen, "issued_at %lld is %lld s in the future", (long long)op->issued_at,
		    (long long)(op->issued_at - now));
		return FH_ERR_SIG_NOT_YET_VALID;
	}
	if (__builtin_sub_overflow(now, v->skew, &t))
		t = INT64_MIN;
	if (t >= op->expires_at) {
		say(why, whylen, "expired at %lld (now %lld, skew %lld s)", (long long)op->expires_at,
		    (long long)now, (long long)v->skew);
		return FH_ERR_SIG_EXPIRED;
	}
	return 0;
}

int sig_check(const struct sig_verifier *v, const uint8_t *blob, size_t bloblen,
	      const char *armor, size_t armorlen, int64_t now,
	      struct sig_verified *out, char *why, size_t whylen)
{
	struct buf raw;
	struct sig_envelope env;
	struct sig_pubkey key;
	struct sig_signature s;
	const struct signer *sg;
	struct sig_verified *res = NULL;
	uint8_t sd[SIGNED_DATA_MAX];
	size_t sdlen;
	char ex[EXCERPT_MAX + 4], fp[72], owhy[160];
	int r = FH_ERR_INVAL;

	buf_init(&raw, SIG_BLOB_MAX);
	say(why, whylen, "invalid argument");
	if (!v || (!blob && bloblen) || (!armor && armorlen) || !out)
		goto out;
	if (!blob)
		blob = (const uint8_t *)"";
	/* input caps, before any work: a blob over OPBLOB_MAX_BYTES can never
	 * pass stage 6, so it is not hashed at all */
	r = FH_ERR_SIG_MALFORMED;
	if (bloblen > OPBLOB_MAX_BYTES) {
		say(why, whylen, "op blob over %d bytes", OPBLOB_MAX_BYTES);
		goto out;
	}

	/* 1. armor and envelope */
	r = sig_dearmor(armor ? armor : "", armorlen, &raw, NULL, why, whylen);
	if (r != 0)
		goto out;
	r = sig_envelope_parse((const uint8_t *)raw.data, raw.len, &env, why, whylen);
	if (r != 0)
		goto out;

	/* 2. namespace: a constant, never from input */
	if (!str_is(env.ns, env.nslen, SIG_NAMESPACE)) {
		say(why, whylen, "namespace \"%s\", want \"%s\"", excerpt(env.ns, env.nslen, ex, sizeof ex),
		    SIG_NAMESPACE);
		r = FH_ERR_SIG_NAMESPACE;
		goto out;
	}

	/* 3. public key */
	r = sig_pubkey_parse(env.pubkey, env.pubkeylen, &key, why, whylen);
	if (r != 0)
		goto out;

	/* 4. allow-list by the full key blob */
	sg = find_signer(v, key.blob, key.bloblen);
	if (!sg) {
		fingerprint(key.blob, key.bloblen, fp, sizeof fp);
		say(why, whylen, "%s key %s is not a configured signer", sig_keytype_name(key.type), fp);
		r = FH_ERR_SIG_UNKNOWN_SIGNER;
		goto out;
	}

	/* 5. crypto over the raw blob bytes we were given */
	r = sig_signature_parse(&sg->key, env.sig, env.siglen, &s, why, whylen);
	if (r != 0)
		goto out;
	r = signed_data(env.hash, blob, bloblen, sd, &sdlen);
	if (r != 0)
		goto out;
	r = verify_sig(&sg->key, &s, sd, sdlen, why, whylen);
	if (r != 0)
		goto out;

	/* 6. op blob */
	r = FH_ERR_NOMEM;
	res = calloc(1, sizeof *res);
	if (!res)
		goto out;
	owhy[0] = '\0';
	r = opblob_parse((const char *)blob, bloblen, &res->op, owhy, sizeof owhy);
	if (r != 0) {
		if (r != FH_ERR_NOMEM)
			r = FH_ERR_SIG_MALFORMED;
		say(why, whylen, "%s", owhy[0] ? owhy : "op blob does not parse");
		goto out;
	}

	/* 7. target */
	if (strcmp(res->op.host_id, v->host_id) != 0) {
		say(why, whylen, "signed for host \"%s\", this is \"%s\"",
		    excerpt(res->op.host_id, strlen(res->op.host_id), ex, sizeof ex), v->host_id);
		r = FH_ERR_SIG_TARGET;
		goto out;
	}

	/* 8. time window */
	r = check_time(v, &res->op, now, why, whylen);
	if (r != 0)
		goto out;

	res->role = sg->role;
	memcpy(res->signer_id, sg->id, sizeof res->signer_id);
	res->keytype = sg->key.type;
	res->hash = env.hash;
	say(why, whylen, "%s", "");
	*out = *res;
	r = 0;
out:
	if (r == FH_ERR_NOMEM)
		say(why, whylen, "out of memory");
	free(res);
	buf_free(&raw);
	return r;
}

void sig_thread_done(void)
{
	wc_ecc_fp_free();
}

int sig_record(struct store_txn *t, const struct sig_verified *vd)
{
	if (!t || !vd)
		return FH_ERR_INVAL;
	return nonce_record(t, vd->op.nonce, vd->op.expires_at);
}

int sig_record_durable(struct store *st, const struct sig_verified *vd)
{
	if (!st || !vd)
		return FH_ERR_INVAL;
	return nonce_record_durable(st, vd->op.nonce, vd->op.expires_at);
}

int sig_verify_and_record(const struct sig_verifier *v, struct store *st,
			  const uint8_t *blob, size_t bloblen,
			  const char *armor, size_t armorlen, int64_t now,
			  struct sig_verified *out, char *why, size_t whylen)
{
	struct sig_verified *res = NULL;
	int r = FH_ERR_INVAL;

	say(why, whylen, "invalid argument");
	if (!st || !out)
		goto out;
	r = FH_ERR_NOMEM;
	res = calloc(1, sizeof *res);
	if (!res)
		goto out;
	r = sig_check(v, blob, bloblen, armor, armorlen, now, res, why, whylen);
	if (r != 0)
		goto out;
	r = sig_record_durable(st, res);
	if (r == FH_ERR_SIG_REPLAY) {
		say(why, whylen, "nonce already used");
		goto out;
	}
	if (r != 0) {
		say(why, whylen, "nonce store failed (%s): op refused", fh_strerror(r));
		goto out;
	}
	*out = *res;
out:
	free(res);
	return r;
}
