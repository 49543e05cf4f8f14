/* test_sshsig_vectors.c — runs every case of vectors/sshsig/manifest.txt
 * through the real pipeline (sig_verifier_new from the case's signers
 * file, then sig_verify_and_record) and fails on any mismatch.
 *
 * As the manifest says, cases run in file order against one nonce store
 * that starts empty, with max lifetime 3600 s and clock skew 60 s. Besides
 * the outcome, each rejected case whose blob parses must have left its
 * nonce unrecorded (an invalid op never burns a nonce), and each accepted
 * case must have recorded it.
 *
 * Coverage checks: every key type and both hashes are accepted somewhere,
 * and every rejection name appears.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "nonce.h"
#include "opblob.h"
#include "sig.h"
#include "store.h"

#define DIR "vectors/sshsig"
#define MAXLIFE 3600
#define SKEW 60
#define MAXCASES 1024

struct vcase {
	char name[128], expected[32], blob[256], sig[256], signers[256], host[128];
	long long now;
};

static struct vcase g_cases[MAXCASES];
static size_t g_ncases;
static const struct vcase *g_cur;
static struct store *g_st;
static char g_dir[256];
/* what was accepted: [keytype][hash] */
static int g_seen_type[SIG_KEY_RSA + 1][3];
static int g_seen_expected[16];

static const char *const EXPECTED[] = {
	"accept", "malformed", "namespace", "unknown_signer", "bad_signature",
	"target", "expired", "not_yet_valid", "replay",
};
#define NEXPECTED (sizeof EXPECTED / sizeof EXPECTED[0])

static int expected_code(const char *s)
{
	static const int codes[] = {
		0, FH_ERR_SIG_MALFORMED, FH_ERR_SIG_NAMESPACE, FH_ERR_SIG_UNKNOWN_SIGNER, FH_ERR_SIG_BAD_SIGNATURE,
		FH_ERR_SIG_TARGET, FH_ERR_SIG_EXPIRED, FH_ERR_SIG_NOT_YET_VALID, FH_ERR_SIG_REPLAY,
	};
	size_t i;

	for (i = 0; i < NEXPECTED; i++)
		if (strcmp(s, EXPECTED[i]) == 0) {
			g_seen_expected[i]++;
			return codes[i];
		}
	return 1;       /* never a return value of the pipeline */
}

static int copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int load_manifest(void)
{
	size_t len = 0;
	char *text = t_slurp(DIR "/manifest.txt", &len), *line, *save = NULL;

	if (!text)
		return -1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *f[7];
		size_t fl[7], k = 0;
		const char *p = line;
		struct vcase *c;
		char num[32];

		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (g_ncases == MAXCASES)
			return -1;
		while (k < 7) {
			const char *tab = strchr(p, '\t');

			f[k] = p;
			fl[k] = tab ? (size_t)(tab - p) : strlen(p);
			k++;
			if (!tab)
				break;
			p = tab + 1;
		}
		if (k != 7 || strchr(f[6], '\t'))
			return -1;
		c = &g_cases[g_ncases++];
		if (copy_field(c->name, sizeof c->name, f[0], fl[0]) ||
		    copy_field(c->expected, sizeof c->expected, f[1], fl[1]) ||
		    copy_field(c->blob, sizeof c->blob, f[2], fl[2]) || copy_field(c->sig, sizeof c->sig, f[3], fl[3]) ||
		    copy_field(c->signers, sizeof c->signers, f[4], fl[4]) ||
		    copy_field(c->host, sizeof c->host, f[5], fl[5]) || copy_field(num, sizeof num, f[6], fl[6]))
			return -1;
		c->now = strtoll(num, NULL, 10);
	}
	free(text);
	return 0;
}

static char *slurp_rel(const char *rel, size_t *len)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", DIR, rel);
	return t_slurp(path, len);
}

static void run_case(void)
{
	const struct vcase *c = g_cur;
	char signers[512], err[256], why[256];
	const char *none[1] = { NULL };
	struct sig_config cfg = { none, 0, signers, c->host, MAXLIFE, SKEW };
	struct sig_verifier *v = NULL;
	struct sig_verified *out = calloc(1, sizeof *out);
	struct opblob *ob = calloc(1, sizeof *ob);
	size_t bl = 0, al = 0;
	char *blob = slurp_rel(c->blob, &bl), *arm = slurp_rel(c->sig, &al);
	int want = expected_code(c->expected), r;

	snprintf(signers, sizeof signers, "%s/%s", DIR, c->signers);
	T_CHECK(out && ob && blob && arm);
	T_CHECK(want != 1);
	if (!out || !ob || !blob || !arm || want == 1)
		goto out;
	r = sig_verifier_new(&cfg, &v, err, sizeof err);
	if (r != 0) {
		t_failf(__FILE__, __LINE__, "signers %s: %s", c->signers, err);
		goto out;
	}
	r = sig_verify_and_record(v, g_st, (const uint8_t *)blob, bl, arm, al, c->now, out, why, sizeof why);
	if (r != want)
		t_failf(__FILE__, __LINE__, "%s: got %s (%s), want %s", c->name, r ? fh_strerror(r) : "accept", why,
			c->expected);
	if (r == 0) {
		if (out->keytype >= SIG_KEY_ED25519 && out->keytype <= SIG_KEY_RSA && out->hash >= 1 && out->hash <= 2)
			g_seen_type[out->keytype][out->hash]++;
		T_EQ_STR(out->op.host_id, c->host);
	}
	/* the nonce is recorded exactly when the op was accepted (replays
	 * were recorded by their first case) */
	if (r != FH_ERR_SIG_REPLAY && opblob_parse(blob, bl, ob, NULL, 0) == 0) {
		bool seen = false;

		T_OK(nonce_seen(g_st, ob->nonce, &seen));
		if (seen != (r == 0))
			t_failf(__FILE__, __LINE__, "%s: nonce %s after %s", c->name, seen ? "recorded" : "not recorded",
				r ? fh_strerror(r) : "accept");
	}
out:
	sig_verifier_free(v);
	free(blob);
	free(arm);
	free(out);
	free(ob);
}

T_TEST(t_coverage)
{
	static const enum sig_keytype types[] = {
		SIG_KEY_ED25519, SIG_KEY_SK_ED25519, SIG_KEY_ECDSA_P256, SIG_KEY_ECDSA_P384,
		SIG_KEY_ECDSA_P521, SIG_KEY_SK_ECDSA_P256, SIG_KEY_RSA,
	};
	size_t i, h;

	T_CHECK(g_ncases >= 100);
	for (i = 0; i < sizeof types / sizeof types[0]; i++)
		for (h = 1; h <= 2; h++)
			if (!g_seen_type[types[i]][h])
				t_failf(__FILE__, __LINE__, "no accepted %s %s case", sig_keytype_name(types[i]),
					h == 1 ? "sha256" : "sha512");
	for (i = 0; i < NEXPECTED; i++)
		if (!g_seen_expected[i])
			t_failf(__FILE__, __LINE__, "no %s case", EXPECTED[i]);
}

int main(void)
{
	char sdir[300];
	struct store_opts o = { sdir, 0, 0 };
	size_t i;

	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(sdir, sizeof sdir, "%s/db", g_dir);
	if (load_manifest() != 0 || g_ncases == 0 || store_open(&o, &g_st) != 0) {
		printf("FAIL manifest\n  cannot load %s/manifest.txt or open the store\n# passed 0 failed 1\n", DIR);
		return 1;
	}
	for (i = 0; i < g_ncases; i++) {
		g_cur = &g_cases[i];
		t_run(g_cases[i].name, run_case);
	}
	T_RUN(t_coverage);
	store_close(g_st);
	return t_done();
}
