/* lapi_auth.c — the local API's leaf certificate and guest tokens (lapi.h).
 *
 * Leaf: an ECDSA P-256 key and a self-signed certificate made with wolfCrypt,
 * PEM files 0600 in STATE_DIR/localapi/, written to a temporary name,
 * fsynced and renamed, under an flock on STATE_DIR/localapi/.lock so the
 * daemon and a concurrent `--print-fingerprint` agree on one pair.
 *
 * Tokens: "fhl1.<vmid>.<base64url(32 random bytes)>". The vmid in the text
 * only says which record to compare with; the store keeps, per guest, the
 * record {version 1, SHA-256(token), BE64 issue time} under key BE32 vmid
 * in the "lapi_token" database. The comparison is constant time, and an
 * unknown vmid is compared against a dummy so both paths cost the same.
 */
#include "lapi.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "err.h"
#include "lapi_int.h"

#define PEM_MAX 16384
#define DER_MAX 4096
#define TOKEN_PREFIX "fhl1."
#define TOKEN_RAND 32
#define TOKEN_B64 43
#define REC_LEN (1 + 32 + 8)

/* ------------------------------------------------------------ file helpers */

static int path_join(char *dst, size_t n, const char *a, const char *b)
{
	int w = snprintf(dst, n, "%s/%s", a, b);

	return w < 0 || (size_t)w >= n ? FH_ERR_INVAL : 0;
}

static int mkdir_0700(const char *p)
{
	if (mkdir(p, 0700) == 0 || errno == EEXIST)
		return 0;
	return FH_ERR_IO;
}

/* Reads a whole small file. FH_ERR_NOT_FOUND when absent. */
static int read_file(const char *path, unsigned char *dst, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = FH_ERR_IO;
	size_t got = 0;
	struct stat st;

	if (fd < 0)
		return errno == ENOENT ? FH_ERR_NOT_FOUND : FH_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if ((size_t)st.st_size > cap) {
		r = FH_ERR_DECODE;
		goto out;
	}
	while (got < cap) {
		ssize_t n = read(fd, dst + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*len = got;
	r = 0;
out:
	close(fd);
	return r;
}

/* Writes data to path atomically (temp file 0600, fsync, rename, dir fsync). */
static int write_file_atomic(const char *dir, const char *path, const unsigned char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, r = FH_ERR_IO, w, dfd;
	size_t off = 0;

	w = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (w < 0 || (size_t)w >= sizeof tmp)
		return FH_ERR_INVAL;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return FH_ERR_IO;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	if (fchmod(fd, 0600) != 0 || fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r)
		(void)unlink(tmp);
	return r;
}

/* ------------------------------------------------------------------ leaf */

int lapi_leaf_paths(const char *state_dir, struct lapi_leaf_paths *p)
{
	if (!state_dir || !*state_dir || !p)
		return FH_ERR_INVAL;
	if (path_join(p->dir, sizeof p->dir, state_dir, LAPI_DIR) ||
	    path_join(p->key, sizeof p->key, p->dir, "key.pem") ||
	    path_join(p->cert, sizeof p->cert, p->dir, "cert.pem") ||
	    path_join(p->lock, sizeof p->lock, p->dir, ".lock"))
		return FH_ERR_INVAL;
	return 0;
}

/* Makes a self-signed certificate for key; der gets it. */
static int make_cert(ecc_key *key, WC_RNG *rng, unsigned char *der, size_t cap, size_t *len)
{
	Cert cert;
	int n;

	if (wc_InitCert(&cert) != 0)
		return FH_ERR_INTERNAL;
	snprintf(cert.subject.commonName, CTC_NAME_SIZE, "%s", "felhom-agent local API");
	snprintf(cert.subject.org, CTC_NAME_SIZE, "%s", "felhom");
	cert.daysValid = 3650;
	cert.isCA = 0;
	cert.sigType = CTC_SHA256wECDSA;
	n = wc_MakeCert(&cert, der, (word32)cap, NULL, key, rng);
	if (n <= 0)
		return FH_ERR_INTERNAL;
	n = wc_SignCert(cert.bodySz, cert.sigType, der, (word32)cap, NULL, key, rng);
	if (n <= 0)
		return FH_ERR_INTERNAL;
	*len = (size_t)n;
	return 0;
}

static int to_pem(const unsigned char *der, size_t len, int type, unsigned char *pem, size_t cap, size_t *plen)
{
	int n = wc_DerToPem(der, (word32)len, pem, (word32)cap, type);

	if (n <= 0)
		return FH_ERR_INTERNAL;
	*plen = (size_t)n;
	return 0;
}

/* 0 when the key and certificate DER belong together. */
static int pair_matches(const unsigned char *kder, size_t klen, const unsigned char *cder, size_t clen)
{
	WOLFSSL_CTX *ctx;
	int ok = 0;

	lapi_wolf_init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (!ctx)
		return FH_ERR_INTERNAL;
	if (wolfSSL_CTX_use_certificate_buffer(ctx, cder, (long)clen, WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS &&
	    wolfSSL_CTX_use_PrivateKey_buffer(ctx, kder, (long)klen, WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS &&
	    wolfSSL_CTX_check_private_key(ctx) == WOLFSSL_SUCCESS)
		ok = 1;
	wolfSSL_CTX_free(ctx);
	return ok ? 0 : FH_ERR_DECODE;
}

static int fill_info(const unsigned char *cder, size_t clen, bool created, struct lapi_cert_info *info)
{
	uint8_t leaf[32];
	int r = tlspin_cert_digests(cder, clen, leaf, info->spki_pin);

	if (r)
		return r == FH_ERR_DECODE ? FH_ERR_DECODE : FH_ERR_INTERNAL;
	tlspin_format_fingerprint(leaf, info->fingerprint);
	info->created = created;
	return 0;
}

int lapi_leaf_load(const char *state_dir, struct lapi_leaf *out, struct lapi_cert_info *info)
{
	struct lapi_leaf_paths p;
	unsigned char *kpem = NULL, *cpem = NULL;
	size_t kplen = 0, cplen = 0, klen = 0, clen = 0;
	struct lapi_leaf leaf;
	struct lapi_cert_info inf;
	ecc_key key;
	WC_RNG rng;
	bool key_init = false, rng_init = false, created = false;
	int lockfd = -1, r, kr, cr, n;

	memset(&leaf, 0, sizeof leaf);
	memset(&inf, 0, sizeof inf);
	r = lapi_leaf_paths(state_dir, &p);
	if (r)
		return r;
	r = FH_ERR_NOMEM;
	kpem = malloc(PEM_MAX);
	cpem = malloc(PEM_MAX);
	if (!kpem || !cpem)
		goto out;
	r = FH_ERR_IO;
	if (mkdir_0700(state_dir) || mkdir_0700(p.dir))
		goto out;
	lockfd = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lockfd < 0)
		goto out;
	while (flock(lockfd, LOCK_EX) != 0) {
		if (errno != EINTR)
			goto out;
	}
	kr = read_file(p.key, kpem, PEM_MAX, &kplen);
	cr = read_file(p.cert, cpem, PEM_MAX, &cplen);
	if ((kr && kr != FH_ERR_NOT_FOUND) || (cr && cr != FH_ERR_NOT_FOUND)) {
		r = kr && kr != FH_ERR_NOT_FOUND ? kr : cr;
		goto out;
	}
	if (kr == FH_ERR_NOT_FOUND && cr == 0) {
		r = FH_ERR_DECODE;   /* a certificate without its key: refuse to guess */
		goto out;
	}
	r = FH_ERR_INTERNAL;
	if (wc_InitRng(&rng) != 0)
		goto out;
	rng_init = true;
	if (wc_ecc_init(&key) != 0)
		goto out;
	key_init = true;
	if (kr == FH_ERR_NOT_FOUND) {
		/* First start: a new key. */
		if (wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0)
			goto out;
		n = wc_EccKeyToDer(&key, leaf.key_der, sizeof leaf.key_der);
		if (n <= 0)
			goto out;
		klen = (size_t)n;
		r = to_pem(leaf.key_der, klen, ECC_PRIVATEKEY_TYPE, kpem, PEM_MAX, &kplen);
		if (r)
			goto out;
		r = write_file_atomic(p.dir, p.key, kpem, kplen);
		if (r)
			goto out;
		created = true;
	} else {
		word32 idx = 0;

		n = wc_KeyPemToDer(kpem, (int)kplen, leaf.key_der, (int)sizeof leaf.key_der, NULL);
		if (n <= 0) {
			r = FH_ERR_DECODE;
			goto out;
		}
		klen = (size_t)n;
		if (wc_EccPrivateKeyDecode(leaf.key_der, &idx, &key, (word32)klen) != 0 ||
		    wc_ecc_get_curve_id(key.idx) != ECC_SECP256R1) {
			r = FH_ERR_DECODE;
			goto out;
		}
	}
	r = FH_ERR_INTERNAL;
	if (cr == FH_ERR_NOT_FOUND) {
		r = make_cert(&key, &rng, leaf.cert_der, sizeof leaf.cert_der, &clen);
		if (r)
			goto out;
		r = to_pem(leaf.cert_der, clen, CERT_TYPE, cpem, PEM_MAX, &cplen);
		if (r)
			goto out;
		r = write_file_atomic(p.dir, p.cert, cpem, cplen);
		if (r)
			goto out;
		created = true;
	} else {
		n = wc_CertPemToDer(cpem, (int)cplen, leaf.cert_der, (int)sizeof leaf.cert_der, CERT_TYPE);
		if (n <= 0) {
			r = FH_ERR_DECODE;
			goto out;
		}
		clen = (size_t)n;
	}
	r = pair_matches(leaf.key_der, klen, leaf.cert_der, clen);
	if (r)
		goto out;
	r = fill_info(leaf.cert_der, clen, created, &inf);
	if (r)
		goto out;
	leaf.key_len = klen;
	leaf.cert_len = clen;
	if (out)
		*out = leaf;
	if (info)
		*info = inf;
	r = 0;
out:
	if (key_init)
		wc_ecc_free(&key);
	if (rng_init)
		wc_FreeRng(&rng);
	if (lockfd >= 0)
		close(lockfd);   /* drops the flock */
	if (kpem) {
		memset(kpem, 0, PEM_MAX);
		free(kpem);
	}
	free(cpem);
	memset(leaf.key_der, 0, sizeof leaf.key_der);
	/* This thread did ECC work: drop its fixed-point cache (wolfSSL 5.5.4
	 * keeps one per thread and leaks it at thread exit). */
	wc_ecc_fp_free();
	return r;
}

int lapi_cert_ensure(const char *state_dir, struct lapi_cert_info *out)
{
	struct lapi_leaf *leaf;
	int r;

	if (!state_dir || !out)
		return FH_ERR_INVAL;
	leaf = malloc(sizeof *leaf);
	if (!leaf)
		return FH_ERR_NOMEM;
	r = lapi_leaf_load(state_dir, leaf, out);
	memset(leaf, 0, sizeof *leaf);
	free(leaf);
	return r;
}

/* ---------------------------------------------------------------- tokens */

static void be32(uint8_t k[4], uint32_t v)
{
	k[0] = (uint8_t)(v >> 24);
	k[1] = (uint8_t)(v >> 16);
	k[2] = (uint8_t)(v >> 8);
	k[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t k[4])
{
	return (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
}

static bool vmid_ok(int vmid)
{
	return vmid >= 100 && vmid <= 999999999;
}

int lapi_token_issue(struct store *st, int vmid, int64_t now, char out[LAPI_TOKEN_MAX])
{
	uint8_t rnd[TOKEN_RAND], rec[REC_LEN], key[4];
	byte b64[64];
	word32 b64len = sizeof b64;
	char tok[LAPI_TOKEN_MAX];
	struct store_txn *t = NULL;
	WC_RNG rng;
	size_t i;
	int r = FH_ERR_INTERNAL, w;

	if (!st || !out || !vmid_ok(vmid))
		return FH_ERR_INVAL;
	if (wc_InitRng(&rng) != 0)
		return FH_ERR_INTERNAL;
	w = wc_RNG_GenerateBlock(&rng, rnd, sizeof rnd);
	wc_FreeRng(&rng);
	if (w != 0)
		goto out;
	if (Base64_Encode_NoNl(rnd, sizeof rnd, b64, &b64len) != 0 || b64len < TOKEN_B64)
		goto out;
	for (i = 0; i < TOKEN_B64; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	w = snprintf(tok, sizeof tok, TOKEN_PREFIX "%d.%.*s", vmid, TOKEN_B64, (const char *)b64);
	if (w < 0 || (size_t)w >= sizeof tok)
		goto out;
	rec[0] = 1;
	if (wc_Sha256Hash((const byte *)tok, (word32)w, rec + 1) != 0)
		goto out;
	for (i = 0; i < 8; i++)
		rec[33 + i] = (uint8_t)((uint64_t)now >> (56 - 8 * i));
	be32(key, (uint32_t)vmid);
	r = store_txn_begin(st, true, &t);
	if (r)
		goto out;
	(void)store_put(t, STORE_DB_LAPI_TOKEN, key, sizeof key, rec, sizeof rec);
	r = store_txn_commit(t);
	if (r)
		goto out;
	memcpy(out, tok, (size_t)w + 1);
	r = 0;
out:
	memset(tok, 0, sizeof tok);
	memset(rnd, 0, sizeof rnd);
	memset(b64, 0, sizeof b64);
	return r;
}

int lapi_token_revoke(struct store *st, int vmid)
{
	struct store_txn *t = NULL;
	uint8_t key[4];
	int r;

	if (!st || !vmid_ok(vmid))
		return FH_ERR_INVAL;
	be32(key, (uint32_t)vmid);
	r = store_txn_begin(st, true, &t);
	if (r)
		return r;
	r = store_del(t, STORE_DB_LAPI_TOKEN, key, sizeof key);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t);
}

/* Parses "fhl1.<vmid>.<43 base64url>"; 0 and *vmid, or -1. */
static int token_shape(const char *tok, size_t len, int *vmid)
{
	size_t i = sizeof TOKEN_PREFIX - 1, digits = 0;
	long v = 0;

	if (len < i || memcmp(tok, TOKEN_PREFIX, i) != 0)
		return -1;
	for (; i < len && tok[i] >= '0' && tok[i] <= '9'; i++) {
		if (++digits > 9)
			return -1;
		v = v * 10 + (tok[i] - '0');
	}
	if (!digits || tok[sizeof TOKEN_PREFIX - 1] == '0' || i >= len || tok[i] != '.')
		return -1;
	i++;
	if (len - i != TOKEN_B64)
		return -1;
	for (; i < len; i++) {
		char c = tok[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_'))
			return -1;
	}
	if (!vmid_ok((int)v))
		return -1;
	*vmid = (int)v;
	return 0;
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc = (uint8_t)(acc | (a[i] ^ b[i]));
	return acc == 0;
}

int lapi_token_check(struct store *st, const char *tok, size_t len, int *vmid)
{
	static const uint8_t dummy[32] = { 0 };
	uint8_t h[32], stored[32], key[4];
	const void *val = NULL;
	size_t vlen = 0;
	struct store_txn *t = NULL;
	int v = 0, shape, r, found = 0, match;

	if (!st || (!tok && len) || !vmid)
		return FH_ERR_INVAL;
	if (len > LAPI_TOKEN_MAX)
		len = LAPI_TOKEN_MAX;   /* longer cannot match; hash a bounded prefix */
	shape = token_shape(tok ? tok : "", len, &v);
	if (wc_Sha256Hash((const byte *)(tok ? tok : ""), (word32)len, h) != 0)
		return FH_ERR_INTERNAL;
	memcpy(stored, dummy, sizeof stored);
	if (shape == 0) {
		be32(key, (uint32_t)v);
		r = store_txn_begin(st, false, &t);
		if (r)
			return r;
		r = store_get(t, STORE_DB_LAPI_TOKEN, key, sizeof key, &val, &vlen);
		if (r == 0 && vlen == REC_LEN && ((const uint8_t *)val)[0] == 1) {
			memcpy(stored, (const uint8_t *)val + 1, sizeof stored);
			found = 1;
		}
		store_txn_abort(t);
		if (r && r != FH_ERR_NOT_FOUND)
			return r;
	}
	match = ct_equal(h, stored, sizeof h);
	memset(h, 0, sizeof h);
	if (!(match && found && shape == 0))
		return FH_ERR_NOT_FOUND;
	*vmid = v;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int lapi_tokens_prune(struct store *st, const int *present, size_t n, unsigned *revoked)
{
	int *sorted = NULL;
	struct store_txn *t = NULL;
	uint8_t from[4] = { 0, 0, 0, 0 }, del[4];
	unsigned count = 0;
	int r;

	if (revoked)
		*revoked = 0;
	if (!st || !present || n == 0 || n > LAPI_MAX_GUESTS)
		return FH_ERR_INVAL;
	sorted = malloc(n * sizeof *sorted);
	if (!sorted)
		return FH_ERR_NOMEM;
	memcpy(sorted, present, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_int);
	r = store_txn_begin(st, true, &t);
	if (r)
		goto out;
	for (;;) {
		const void *k, *v;
		size_t klen, vlen;
		uint32_t id;
		int vm;

		r = store_seek(t, STORE_DB_LAPI_TOKEN, from, sizeof from, &k, &klen, &v, &vlen);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;
			break;
		}
		if (r)
			break;
		if (klen != 4) {           /* not ours: skip past it */
			r = FH_ERR_STORE;
			break;
		}
		id = get_be32(k);
		vm = (int)id;
		if (id > INT32_MAX || !bsearch(&vm, sorted, n, sizeof *sorted, cmp_int)) {
			be32(del, id);
			r = store_del(t, STORE_DB_LAPI_TOKEN, del, sizeof del);
			if (r)
				break;
			count++;
		}
		if (id == UINT32_MAX)
			break;
		be32(from, id + 1);
	}
	if (r) {
		store_txn_abort(t);
		goto out;
	}
	if (count == 0) {
		store_txn_abort(t);
	} else {
		r = store_txn_commit(t);
		if (r)
			goto out;
	}
	if (revoked)
		*revoked = count;
out:
	free(sorted);
	return r;
}
