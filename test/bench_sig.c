/* bench_sig.c — cost of verifying a signed op. Prints figures, never fails.
 *
 * Per key type (ssh-keygen keys made here; the FIDO vectors of
 * vectors/sshsig/): sig_check() of a complete op (armor, envelope, key,
 * allow-list, hashes, verify, op blob, target, time) in µs/op; the same
 * plus a durable nonce commit (nonce_record_durable, its own fsync'd LMDB
 * transaction; each iteration records a fresh nonce); and one
 * `ssh-keygen -Y verify` process on the same vector (median wall time),
 * with the ratio. Last, the floor for the "within 1.5x" target: a bare
 * wc_ed25519_verify_msg over the same signed data plus one durable commit,
 * against the full pipeline plus one durable commit.
 *
 * The store lives under the build directory (a real disk, not /tmp, which
 * may be tmpfs), so the commit figure includes a real fsync.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ed25519.h>

#include "err.h"
#include "harness.h"
#include "nonce.h"
#include "sig.h"
#include "store.h"

#define HOST "host-7f3a"

static const char *const ENVP[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
static char g_dir[256];

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int spawn_wait(const char *const argv[], const char *stdin_path)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)(uintptr_t)argv, (char *const *)(uintptr_t)ENVP) == 0)
		waitpid(pid, &st, 0);
	posix_spawn_file_actions_destroy(&fa);
	return st;
}

static char *path(const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", g_dir, name) < 0)
		abort();
	return p;
}

struct kcase {
	const char *label, *name, *type, *bits;
	const char *vec;        /* FIDO: vector case name instead of ssh-keygen */
	char *blob, *armor, *line, *blobpath, *sigpath;
	size_t bloblen, armorlen;
	int64_t now;
};

static struct kcase K[] = {
	{ .label = "ed25519", .name = "ed25519", .type = "ed25519", .bits = "256", .vec = NULL },
	{ .label = "ecdsa-p256", .name = "p256", .type = "ecdsa", .bits = "256", .vec = NULL },
	{ .label = "ecdsa-p384", .name = "p384", .type = "ecdsa", .bits = "384", .vec = NULL },
	{ .label = "ecdsa-p521", .name = "p521", .type = "ecdsa", .bits = "521", .vec = NULL },
	{ .label = "rsa-2048", .name = "rsa2048", .type = "rsa", .bits = "2048", .vec = NULL },
	{ .label = "rsa-3072", .name = "rsa3072", .type = "rsa", .bits = "3072", .vec = NULL },
	{ .label = "rsa-4096", .name = "rsa4096", .type = "rsa", .bits = "4096", .vec = NULL },
	{ .label = "sk-ed25519", .name = "sked", .type = NULL, .bits = NULL, .vec = "accept_sked_sha512" },
	{ .label = "sk-ecdsa-p256", .name = "skec", .type = NULL, .bits = NULL, .vec = "accept_skec_sha512" },
};
#define NK (sizeof K / sizeof K[0])

static int prepare(struct kcase *k, int64_t now)
{
	char *kp = path(k->name), *pub = NULL, *pubp = NULL, *sp;
	int r = -1;

	if (k->vec) {
		/* the FIDO vectors: fixed time, signer line from signers.txt */
		char *sl = t_slurp("vectors/sshsig/signers.txt", NULL), *l, *save = NULL, want[32];

		if (asprintf(&k->blobpath, "vectors/sshsig/blobs/%s.json", k->vec) < 0 ||
		    asprintf(&k->sigpath, "vectors/sshsig/sigs/%s.sig", k->vec) < 0)
			abort();
		k->blob = t_slurp(k->blobpath, &k->bloblen);
		k->armor = t_slurp(k->sigpath, &k->armorlen);
		k->now = 1781000300;
		snprintf(want, sizeof want, " vec-%s ", k->name);
		for (l = sl ? strtok_r(sl, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
			if (strstr(l, want))
				k->line = strdup(l);
		free(sl);
		r = k->blob && k->armor && k->line ? 0 : -1;
		goto out;
	}
	{
		const char *kg[] = { "/usr/bin/ssh-keygen", "-q", "-t", k->type, "-b", k->bits, "-N", "", "-f", kp, NULL };

		if (spawn_wait(kg, NULL) != 0)
			goto out;
	}
	k->now = now;
	if (asprintf(&k->blob, "{\"expires_at\":%lld,\"guest_id\":null,\"host_id\":\"%s\",\"issued_at\":%lld,"
		     "\"key_id\":\"ops-anna\",\"nonce\":\"bench-nonce-%s-000000\",\"op\":\"storage_wipe\","
		     "\"params\":{\"durable_id\":\"byid:ata-WDC_X\"},\"v\":1}",
		     (long long)now + 600, HOST, (long long)now - 10, k->name) < 0)
		abort();
	k->bloblen = strlen(k->blob);
	if (asprintf(&k->blobpath, "%s/%s.msg", g_dir, k->name) < 0 || asprintf(&k->sigpath, "%s.sig", k->blobpath) < 0)
		abort();
	if (t_write_file(k->blobpath, k->blob, 0600) != 0)
		goto out;
	{
		const char *sg[] = { "/usr/bin/ssh-keygen", "-Y", "sign", "-f", kp, "-n", SIG_NAMESPACE, k->blobpath, NULL };

		if (spawn_wait(sg, NULL) != 0)
			goto out;
	}
	k->armor = t_slurp(k->sigpath, &k->armorlen);
	if (asprintf(&pubp, "%s.pub", kp) < 0)
		abort();
	pub = t_slurp(pubp, NULL);
	if (!k->armor || !pub)
		goto out;
	sp = strchr(pub, ' ');
	if (sp && (sp = strchr(sp + 1, ' ')) != NULL)
		*sp = '\0';
	if ((sp = strchr(pub, '\n')) != NULL)
		*sp = '\0';
	if (asprintf(&k->line, "operational bench-%s %s", k->name, pub) < 0)
		abort();
	r = 0;
out:
	free(kp);
	free(pub);
	free(pubp);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median wall time of `ssh-keygen -Y verify` on k's vector, in µs. */
static double keygen_verify_us(const struct kcase *k, int runs)
{
	char *allowed = path("allowed_signers"), *line = NULL, *kt, *end;
	double t[64];
	int i, ok = 0;
	const char *argv[] = { "/usr/bin/ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "bench",
			       "-n", SIG_NAMESPACE, "-s", k->sigpath, NULL };

	/* "bench namespaces="felhom-op-v1" KEYTYPE BASE64" from the signer
	 * line "ROLE ID KEYTYPE BASE64 [COMMENT]" */
	kt = strchr(k->line, ' ');
	kt = kt ? strchr(kt + 1, ' ') : NULL;
	end = kt ? strchr(kt + 1, ' ') : NULL;
	end = end ? strchr(end + 1, ' ') : NULL;
	if (!kt || asprintf(&line, "bench namespaces=\"%s\" %.*s\n", SIG_NAMESPACE,
			    (int)(end ? (size_t)(end - kt - 1) : strlen(kt + 1)), kt + 1) < 0)
		abort();
	if (t_write_file(allowed, line, 0600) != 0)
		abort();
	if (runs > 64)
		runs = 64;
	for (i = 0; i < runs; i++) {
		double t0 = now_us();
		int st = spawn_wait(argv, k->blobpath);

		t[i] = now_us() - t0;
		ok += st == 0;
	}
	qsort(t, (size_t)runs, sizeof t[0], cmp_double);
	if (ok != runs)
		printf("  (ssh-keygen -Y verify succeeded %d/%d times on %s)\n", ok, runs, k->label);
	free(line);
	free(allowed);
	return t[runs / 2];
}

int main(void)
{
	const char *lines[NK];
	struct sig_config cfg = { lines, 0, NULL, HOST, 3600, 60 };
	struct sig_verifier *v = NULL;
	struct store *st = NULL;
	char err[256], sdir[512], why[256];
	struct store_opts so = { sdir, 0, 0 };
	struct sig_verified *out = malloc(sizeof *out);
	int64_t now = (int64_t)time(NULL);
	double full_commit_ed = 0, ed_check = 0;
	size_t i;

	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(sdir, sizeof sdir, "%s/bench-sig-store-%d", t_build_dir(), (int)getpid());
	for (i = 0; i < NK; i++) {
		if (prepare(&K[i], now) != 0) {
			printf("bench_sig: cannot prepare %s (ssh-keygen, or run from the repository root)\n", K[i].label);
			return 0;
		}
		lines[cfg.nsigners++] = K[i].line;
	}
	if (!out || sig_verifier_new(&cfg, &v, err, sizeof err) != 0 || store_open(&so, &st) != 0) {
		printf("bench_sig: setup failed: %s\n", err);
		return 0;
	}
	printf("SSHSIG verification of one op (blob %zu bytes), store under %s\n", K[0].bloblen, t_build_dir());
	printf("%-14s %12s %16s %18s %10s\n", "key", "check_us", "check+commit_us", "ssh-keygen_verify", "ratio");
	for (i = 0; i < NK; i++) {
		struct kcase *k = &K[i];
		int n = 0, iters, r = 0, j;
		double t0, check_us, commit_us, proc_us;

		/* warm up (wolfSSL's fixed-point ECC tables), then ~0.4 s */
		for (j = 0; j < 3; j++)
			r |= sig_check(v, (const uint8_t *)k->blob, k->bloblen, k->armor, k->armorlen, k->now, out, why,
				       sizeof why);
		if (r != 0) {
			printf("%-14s check failed: %s (%s)\n", k->label, fh_strerror(r), why);
			continue;
		}
		t0 = now_us();
		while (now_us() - t0 < 400000) {
			sig_check(v, (const uint8_t *)k->blob, k->bloblen, k->armor, k->armorlen, k->now, out, NULL, 0);
			n++;
		}
		check_us = (now_us() - t0) / n;
		/* check + a durable commit of a fresh nonce each time */
		iters = 50;
		t0 = now_us();
		for (j = 0; j < iters; j++) {
			char nonce[NONCE_MAX + 64];

			sig_check(v, (const uint8_t *)k->blob, k->bloblen, k->armor, k->armorlen, k->now, out, NULL, 0);
			snprintf(nonce, sizeof nonce, "%s-%zu-%d", out->op.nonce, i, j);
			if (nonce_record_durable(st, nonce, out->op.expires_at) != 0)
				printf("  (commit failed)\n");
		}
		commit_us = (now_us() - t0) / iters;
		proc_us = keygen_verify_us(k, 21);
		printf("%-14s %12.1f %16.1f %15.0f us %9.0fx\n", k->label, check_us, commit_us, proc_us,
		       proc_us / check_us);
		if (i == 0) {
			ed_check = check_us;
			full_commit_ed = commit_us;
		}
	}

	/* the floor: bare wolfCrypt Ed25519 verify over the same signed data,
	 * plus one durable commit */
	{
		struct sig_envelope env;
		struct sig_pubkey key;
		struct sig_signature sg;
		struct buf raw, d;
		ed25519_key ek;
		int n = 0, res = 0, j, iters = 50;
		double t0, bare_us, bare_commit_us;

		buf_init(&raw, SIG_BLOB_MAX);
		buf_init(&d, 256);
		if (sig_dearmor(K[0].armor, K[0].armorlen, &raw, NULL, NULL, 0) != 0 ||
		    sig_envelope_parse((const uint8_t *)raw.data, raw.len, &env, NULL, 0) != 0 ||
		    sig_pubkey_parse(env.pubkey, env.pubkeylen, &key, NULL, 0) != 0 ||
		    sig_signature_parse(&key, env.sig, env.siglen, &sg, NULL, 0) != 0 ||
		    sig_signed_data(env.hash, (const uint8_t *)K[0].blob, K[0].bloblen, &d) != 0 ||
		    wc_ed25519_init(&ek) != 0 || wc_ed25519_import_public(key.pk, 32, &ek) != 0) {
			printf("bench_sig: floor setup failed\n");
			return 0;
		}
		t0 = now_us();
		while (now_us() - t0 < 400000) {
			wc_ed25519_verify_msg(sg.sig, 64, (const byte *)d.data, (word32)d.len, &res, &ek);
			n++;
		}
		bare_us = (now_us() - t0) / n;
		t0 = now_us();
		for (j = 0; j < iters; j++) {
			char nonce[64];

			wc_ed25519_verify_msg(sg.sig, 64, (const byte *)d.data, (word32)d.len, &res, &ek);
			snprintf(nonce, sizeof nonce, "bare-floor-nonce-%d", j);
			nonce_record_durable(st, nonce, K[0].now + 600);
		}
		bare_commit_us = (now_us() - t0) / iters;
		printf("\nfloor (ed25519): bare wc_ed25519_verify_msg %.1f us (res %d); + durable commit %.1f us\n",
		       bare_us, res, bare_commit_us);
		printf("full pipeline:   sig_check %.1f us (%.2fx bare verify); + durable commit %.1f us\n", ed_check,
		       ed_check / bare_us, full_commit_ed);
		printf("target: pipeline + commit within 1.5x of bare verify + commit: %.2fx\n",
		       full_commit_ed / bare_commit_us);
		wc_ed25519_free(&ek);
		buf_free(&raw);
		buf_free(&d);
	}
	store_close(st);
	sig_verifier_free(v);
	/* remove the store we made */
	{
		char f[700];

		snprintf(f, sizeof f, "%s/data.mdb", sdir);
		unlink(f);
		snprintf(f, sizeof f, "%s/lock.mdb", sdir);
		unlink(f);
		rmdir(sdir);
	}
	for (i = 0; i < NK; i++) {
		free(K[i].blob);
		free(K[i].armor);
		free(K[i].line);
		free(K[i].blobpath);
		free(K[i].sigpath);
	}
	free(out);
	return 0;
}
