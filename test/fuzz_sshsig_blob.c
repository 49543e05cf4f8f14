/* fuzz_sshsig_blob.c — libFuzzer target for the decoded SSHSIG blob: the
 * SSH wire reader, the envelope, public-key and signature parsers, and the
 * whole of sig_check() including the wolfCrypt verify. `make fuzz` runs
 * it; make check replays vectors/fuzz/sshsig_blob/ through
 * build/test_fuzz_sshsig_blob (run from the repository root).
 *
 * The verifier trusts the golden-vector signers (vectors/sshsig/
 * signers.txt) and the message is vectors/sshsig/fuzz-message.json; the
 * seeds (written by vectors/sshsig/gen.py) are real signatures over that
 * message by those keys, so mutations reach the crypto and every stage
 * after it.
 *
 * Invariants checked on every input (any failure aborts):
 *  - each parser returns 0 or its documented codes, and leaves its output
 *    untouched on failure; on success every pointer lies inside the input;
 *  - sig_check() agrees with the stage parsers: it accepts only what all of
 *    them accept, and a blob the envelope parser refuses is "malformed";
 *  - the reason is one line of printable ASCII.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1781000300

static struct sig_verifier *g_v;
static char *g_msg;
static size_t g_msglen;

static void init(void)
{
	struct sig_config c = { NULL, 0, "vectors/sshsig/signers.txt", "host-7f3a", 3600, 60 };
	char err[256];
	FILE *f;

	if (sig_verifier_new(&c, &g_v, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_sshsig_blob: %s (run from the repository root)\n", err);
		abort();
	}
	f = fopen("vectors/sshsig/fuzz-message.json", "rb");
	g_msg = malloc(8192);
	if (!f || !g_msg)
		abort();
	g_msglen = fread(g_msg, 1, 8192, f);
	fclose(f);
}

static int inside(const void *p, size_t n, const uint8_t *base, size_t size)
{
	const uint8_t *q = p;

	if (n == 0)
		return 1;
	return q >= base && q <= base + size && n <= (size_t)(base + size - q);
}

static void check_why(const char *why)
{
	size_t i;

	for (i = 0; why[i]; i++)
		if (why[i] < 0x20 || why[i] > 0x7e)
			abort();
}

static char *armor(const uint8_t *p, size_t n)
{
	static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = malloc(n / 3 * 4 + n / 52 + 128);
	size_t k = 0, i, col = 0;

	if (!o)
		abort();
	k += (size_t)sprintf(o, "-----BEGIN SSH SIGNATURE-----\n");
	for (i = 0; i < n; i += 3) {
		uint32_t q = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);

		o[k++] = A[q >> 18 & 63];
		o[k++] = A[q >> 12 & 63];
		o[k++] = i + 1 < n ? A[q >> 6 & 63] : '=';
		o[k++] = i + 2 < n ? A[q & 63] : '=';
		if ((col += 4) >= 68) {
			o[k++] = '\n';
			col = 0;
		}
	}
	k += (size_t)sprintf(o + k, "\n-----END SSH SIGNATURE-----\n");
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sig_envelope env, env0;
	struct sig_pubkey key, key0;
	struct sig_signature sg, sg0;
	struct sig_verified *out;
	char why[256];
	int re, rk = -1, rs = -1, rc;

	if (!g_v)
		init();
	memset(&env, 0xA5, sizeof env);
	env0 = env;
	why[0] = '\0';
	re = sig_envelope_parse(data, size, &env, why, sizeof why);
	check_why(why);
	if (re != 0) {
		if (re != FH_ERR_SIG_MALFORMED || memcmp(&env, &env0, sizeof env) != 0)
			abort();
	} else {
		if (env.version != 1 || !inside(env.pubkey, env.pubkeylen, data, size) ||
		    !inside(env.ns, env.nslen, data, size) || !inside(env.sig, env.siglen, data, size) ||
		    (env.hash != SIG_HASH_SHA256 && env.hash != SIG_HASH_SHA512))
			abort();
		memset(&key, 0xA5, sizeof key);
		key0 = key;
		rk = sig_pubkey_parse(env.pubkey, env.pubkeylen, &key, why, sizeof why);
		check_why(why);
		if (rk != 0) {
			if ((rk != FH_ERR_SIG_MALFORMED && rk != FH_ERR_SIG_UNKNOWN_SIGNER) ||
			    memcmp(&key, &key0, sizeof key) != 0)
				abort();
		} else {
			if (key.type < SIG_KEY_ED25519 || key.type > SIG_KEY_RSA || key.blob != env.pubkey ||
			    key.bloblen != env.pubkeylen || !inside(key.pk, key.pklen, data, size) ||
			    !inside(key.rsa_n, key.rsa_nlen, data, size) || !inside(key.app, key.applen, data, size))
				abort();
			if (key.type == SIG_KEY_RSA && (key.rsa_bits < SIG_RSA_MIN_BITS || key.rsa_bits > SIG_RSA_MAX_BITS))
				abort();
			memset(&sg, 0xA5, sizeof sg);
			sg0 = sg;
			rs = sig_signature_parse(&key, env.sig, env.siglen, &sg, why, sizeof why);
			check_why(why);
			if (rs != 0) {
				if (rs != FH_ERR_SIG_MALFORMED || memcmp(&sg, &sg0, sizeof sg) != 0)
					abort();
			} else if (sg.type != key.type || !inside(sg.sig, sg.siglen, data, size) ||
				   !inside(sg.r, sg.rlen, data, size) || !inside(sg.s, sg.slen, data, size) ||
				   (sg.rlen && sg.r[0] == 0) || (sg.slen && sg.s[0] == 0)) {
				abort();
			}
		}
	}

	/* the whole pipeline over the same bytes, armored */
	if (size <= SIG_BLOB_MAX - 64) {
		char *a = armor(data, size);

		out = malloc(sizeof *out);
		if (!out)
			abort();
		why[0] = '\0';
		rc = sig_check(g_v, (const uint8_t *)g_msg, g_msglen, a, strlen(a), NOW, out, why, sizeof why);
		check_why(why);
		/* what the stages say the pipeline must answer (the message is
		 * fixed and valid, so stages 6-8 always pass) */
		if (re != 0) {
			if (rc != FH_ERR_SIG_MALFORMED)
				abort();
		} else if (env.nslen != strlen(SIG_NAMESPACE) || memcmp(env.ns, SIG_NAMESPACE, env.nslen) != 0) {
			if (rc != FH_ERR_SIG_NAMESPACE)
				abort();
		} else if (rk != 0) {
			if (rc != rk)
				abort();
		} else if (rc != FH_ERR_SIG_UNKNOWN_SIGNER) {
			/* a configured key: structure, then crypto */
			if (rs != 0 ? rc != FH_ERR_SIG_MALFORMED : (rc != 0 && rc != FH_ERR_SIG_BAD_SIGNATURE))
				abort();
		}
		if (rc != 0 && why[0] == '\0')
			abort();
		if (rc == 0 && (strcmp(out->op.host_id, "host-7f3a") != 0 || out->keytype != key.type ||
				out->hash != env.hash || out->signer_id[0] == '\0'))
			abort();
		free(out);
		free(a);
	}
	return 0;
}
