/* test_verify_op.c — `felhom-agent --verify-op BLOB SIG` as an operator runs
 * it offline: no config file, signers and host id from flags, nonce store
 * under --state-dir; a real ssh-keygen signature over a felhom-opsign blob. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "harness.h"

static char agent[512], opsign[512], dir[256];
static char key[300], blobf[300], sigf[300], signers[300], state[300];
static const char *const env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

static int run(const char *const argv[], char **out, char **err)
{
	return t_run_cmd(argv, env, out, err);
}

/* Makes the key, the signers file, a fresh canonical blob and its signature. */
static int setup(void)
{
	char pub[320], line[1024], *pk, *out = NULL;
	const char *kg[] = { "/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "anna", "-f", key, NULL };
	const char *pb[] = { opsign, "-op", "storage_wipe", "-host", "host-7f3a", "-durable-id", "byid:ata-WDC_X",
			     "-key-id", "ops-anna", "-print-blob", NULL };
	const char *sg[] = { "/usr/bin/ssh-keygen", "-q", "-Y", "sign", "-n", "felhom-op-v1", "-f", key, blobf, NULL };
	char *sp;
	size_t n;

	snprintf(key, sizeof(key), "%s/id_ed25519", dir);
	snprintf(blobf, sizeof(blobf), "%s/op.json", dir);
	snprintf(sigf, sizeof(sigf), "%s/op.json.sig", dir);
	snprintf(signers, sizeof(signers), "%s/signers", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	if (run(kg, NULL, NULL) != 0)
		return -1;
	snprintf(pub, sizeof(pub), "%s.pub", key);
	pk = t_slurp(pub, NULL);
	if (!pk)
		return -1;
	/* "ssh-ed25519 AAAA... anna" -> "operational ops-anna ssh-ed25519 AAAA... anna" */
	snprintf(line, sizeof(line), "# operators\noperational ops-anna %s", pk);
	free(pk);
	if (t_write_file(signers, line, 0600))
		return -1;
	if (run(pb, &out, NULL) != 0) {
		free(out);
		return -1;
	}
	n = strlen(out);
	while (n && out[n - 1] == '\n')
		out[--n] = '\0';
	if (t_write_file(blobf, out, 0600)) {
		free(out);
		return -1;
	}
	free(out);
	if (run(sg, NULL, NULL) != 0)
		return -1;
	sp = t_slurp(sigf, NULL);
	if (!sp)
		return -1;
	free(sp);
	return 0;
}

static int verify(const char *host, const char *blob, char **out, char **err)
{
	const char *argv[] = { agent, "--verify-op", blob ? blob : blobf, sigf, "--signers", signers, "--host-id",
			       host, "--state-dir", state, NULL };
	return run(argv, out, err);
}

T_TEST(t_verify_then_replay)
{
	char *out = NULL, *err = NULL;

	/* a wrong host rejects without burning the nonce */
	T_EQ_INT(verify("host-other", NULL, &out, &err), 1);
	T_CHECK(strncmp(out, "target: ", 8) == 0);
	free(out);
	free(err);

	T_EQ_INT(verify("host-7f3a", NULL, &out, &err), 0);
	T_CHECK(strstr(out, "\"op\":\"storage_wipe\"") != NULL);
	T_CHECK(strstr(out, "\"host_id\":\"host-7f3a\",\"guest_id\":null") != NULL);
	T_CHECK(strstr(out, "\"params\":{\"durable_id\":\"byid:ata-WDC_X\"}") != NULL);
	T_CHECK(strstr(out, "\"signer\":\"ops-anna\",\"role\":\"operational\"") != NULL);
	free(out);
	free(err);

	/* used once: the nonce is on disk */
	T_EQ_INT(verify("host-7f3a", NULL, &out, &err), 1);
	T_CHECK(strncmp(out, "replay: ", 8) == 0);
	free(out);
	free(err);
}

T_TEST(t_rejections_named_first)
{
	char tampered[300], nobody[300], *blob, *p, *out = NULL, *err = NULL;
	const char *argv[] = { agent, "--verify-op", blobf, sigf, "--signers", nobody, "--host-id", "host-7f3a",
			       "--state-dir", state, NULL };

	snprintf(nobody, sizeof(nobody), "%s/no-signers", dir);
	T_CHECK(t_write_file(nobody, "# nobody may sign\n", 0600) == 0);
	blob = t_slurp(blobf, NULL);
	T_CHECK(blob != NULL);
	if (!blob)
		return;
	p = strstr(blob, "byid:ata-WDC_X");
	if (p)
		p[5] = 'b';   /* same shape, other device */
	snprintf(tampered, sizeof(tampered), "%s/tampered.json", dir);
	T_CHECK(t_write_file(tampered, blob, 0600) == 0);
	free(blob);
	T_EQ_INT(verify("host-7f3a", tampered, &out, &err), 1);
	T_CHECK(strncmp(out, "bad_signature: ", 15) == 0);
	free(out);
	free(err);

	T_EQ_INT(run(argv, &out, &err), 1);
	T_CHECK(strncmp(out, "unknown_signer: ", 16) == 0);
	free(out);
	free(err);
}

T_TEST(t_usage)
{
	const char *a1[] = { agent, "--verify-op", blobf, NULL };
	const char *a2[] = { agent, "--selftest", "--signers", signers, NULL };
	const char *a3[] = { agent, "--verify-op", blobf, sigf, "--signers", signers, "--state-dir", state, NULL };
	char *out = NULL, *err = NULL;

	T_EQ_INT(run(a1, &out, &err), 2);
	free(out);
	free(err);
	T_EQ_INT(run(a2, &out, &err), 2);
	free(out);
	free(err);
	/* no host id anywhere: a clear failure, not a verification */
	T_EQ_INT(run(a3, &out, &err), 1);
	T_CHECK(strstr(err, "no host id") != NULL);
	free(out);
	free(err);
}

int main(void)
{
	snprintf(agent, sizeof(agent), "%s/felhom-agent", t_build_dir());
	snprintf(opsign, sizeof(opsign), "%s/felhom-opsign", t_build_dir());
	t_tmpdir(dir, sizeof(dir));
	if (setup()) {
		printf("FAIL setup\n# passed 0 failed 1\n");
		return 1;
	}
	T_RUN(t_verify_then_replay);
	T_RUN(t_rejections_named_first);
	T_RUN(t_usage);
	return t_done();
}
