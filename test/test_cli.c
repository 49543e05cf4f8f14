/* test_cli.c — the command line as an operator meets it: exit statuses,
 * one-line usage errors, --print-config redaction, and no secret in any
 * output of a failing run. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

#define SECRET "3c1f9a7e-2b4d-4e6f-8a1b-c2d3e4f5a6b7"
#define TOKEN "felhom@pve!agent=" SECRET
#define HUBKEY "hk-5f2e8d1c9b7a6e4d"

static char agent[512];
static char dir[256];

static int run(const char *const argv[], const char *const env[], char **out, char **err)
{
	return t_run_cmd(argv, env, out, err);
}

static int one_line(const char *s)
{
	const char *nl = strchr(s, '\n');
	return s[0] && nl && nl[1] == '\0';
}

T_TEST(t_version_and_help)
{
	const char *a1[] = { agent, "--version", NULL };
	const char *a2[] = { agent, "--help", NULL };
	const char *env[] = { NULL };
	char *out = NULL, *err = NULL;

	T_EQ_INT(run(a1, env, &out, &err), 0);
	T_CHECK(strncmp(out, "felhom-agent ", 13) == 0);
	free(out);
	free(err);
	T_EQ_INT(run(a2, env, &out, &err), 0);
	T_CHECK(strstr(out, "--selftest=task --vmid N") != NULL);
	T_CHECK(strstr(out, "--print-config") != NULL);
	free(out);
	free(err);
}

T_TEST(t_usage_errors_exit_2_with_one_line)
{
	static const char *const cases[][4] = {
		{ "--bogus", NULL, NULL, NULL },
		{ "--selftest=task", NULL, NULL, NULL },
		{ "--selftest=nope", NULL, NULL, NULL },
		{ "--selftest=task", "--vmid", "abc", NULL },
		{ "--selftest=task", "--vmid", "99", NULL },
		{ "--selftest", "--vmid", "101", NULL },
		{ "--config", NULL, NULL, NULL },
		{ "--state-dir", "relative", NULL, NULL },
		{ "--selftest", "--print-config", NULL, NULL },
	};
	const char *env[] = { NULL };
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[6] = { agent };
		char *out = NULL, *err = NULL;
		int st;
		for (k = 0; k < 4 && cases[i][k]; k++)
			argv[k + 1] = cases[i][k];
		argv[k + 1] = NULL;
		st = run(argv, env, &out, &err);
		if (st != 2 || !one_line(err) || out[0])
			t_failf(__FILE__, __LINE__, "case %zu (%s): status %d, stderr \"%s\"", i, cases[i][0], st, err);
		free(out);
		free(err);
	}
	{
		const char *argv[] = { agent, "--selftest=nope", NULL };
		char *err = NULL;
		run(argv, env, NULL, &err);
		T_CHECK(strstr(err, "(want read|task|hub)") != NULL);
		free(err);
	}
}

T_TEST(t_print_config_env_only_redacted)
{
	char cfgpath[512];
	const char *argv[] = { agent, "--config", cfgpath, "--print-config", NULL };
	const char *env[] = { "FELHOM_AGENT_PROXMOX_TOKEN=" TOKEN, "FELHOM_AGENT_HUB_API_KEY=" HUBKEY,
			      "FELHOM_AGENT_PROXMOX_NODE=pve1", NULL };
	char *out = NULL, *err = NULL;

	snprintf(cfgpath, sizeof(cfgpath), "%s/empty.json", dir);
	T_CHECK(t_write_file(cfgpath, "{}", 0600) == 0);
	T_EQ_INT(run(argv, env, &out, &err), 0);
	T_CHECK(strstr(out, "\"node\": \"pve1\"") != NULL);
	T_CHECK(strstr(out, "[REDACTED]") != NULL);
	T_CHECK(strstr(out, SECRET) == NULL && strstr(err, SECRET) == NULL);
	T_CHECK(strstr(out, HUBKEY) == NULL && strstr(err, HUBKEY) == NULL);
	free(out);
	free(err);
}

T_TEST(t_config_errors_exit_1_name_the_key)
{
	char cfgpath[512];
	const char *argv[] = { agent, "--config", cfgpath, "--selftest", NULL };
	const char *env[] = { "FELHOM_AGENT_PROXMOX_TOKEN=" TOKEN, NULL };
	char *out = NULL, *err = NULL;

	snprintf(cfgpath, sizeof(cfgpath), "%s/bad.json", dir);
	T_CHECK(t_write_file(cfgpath, "{\"proxmox\":{\"node\":\"pve\",\"endpont\":\"x\"}}", 0600) == 0);
	T_EQ_INT(run(argv, env, &out, &err), 1);
	T_CHECK(strstr(err, "bad.json: proxmox.endpont: unknown key") != NULL);
	T_CHECK(strstr(err, SECRET) == NULL && strstr(out, SECRET) == NULL);
	free(out);
	free(err);

	/* missing endpoint; the selftest needs no hub section */
	T_CHECK(t_write_file(cfgpath, "{\"proxmox\":{\"node\":\"pve\"}}", 0600) == 0);
	T_EQ_INT(run(argv, env, &out, &err), 1);
	T_CHECK(strstr(err, "proxmox.endpoint: missing required field") != NULL);
	T_CHECK(strstr(err, "hub.") == NULL);
	free(out);
	free(err);

	/* a missing explicit config file is an error, not an empty config */
	snprintf(cfgpath, sizeof(cfgpath), "%s/does-not-exist.json", dir);
	T_EQ_INT(run(argv, env, &out, &err), 1);
	T_CHECK(strstr(err, "does-not-exist.json: cannot open") != NULL);
	free(out);
	free(err);
}

T_TEST(t_insecure_refused_off_loopback)
{
	char cfgpath[512];
	const char *argv[] = { agent, "--config", cfgpath, "--selftest", NULL };
	const char *env[] = { "FELHOM_AGENT_PROXMOX_TOKEN=" TOKEN, NULL };
	char *out = NULL, *err = NULL;

	snprintf(cfgpath, sizeof(cfgpath), "%s/insecure.json", dir);
	T_CHECK(t_write_file(cfgpath,
			     "{\"proxmox\":{\"node\":\"pve\",\"endpoint\":\"https://pve.example.net:8006\","
			     "\"insecure_skip_verify\":true}}", 0600) == 0);
	T_EQ_INT(run(argv, env, &out, &err), 1);
	T_CHECK(strstr(err, "insecure_skip_verify is refused for a non-loopback endpoint") != NULL);
	T_CHECK(strstr(err, SECRET) == NULL && strstr(out, SECRET) == NULL);
	free(out);
	free(err);
}

int main(void)
{
	snprintf(agent, sizeof(agent), "%s/felhom-agent", t_build_dir());
	t_tmpdir(dir, sizeof(dir));
	T_RUN(t_version_and_help);
	T_RUN(t_usage_errors_exit_2_with_one_line);
	T_RUN(t_print_config_env_only_redacted);
	T_RUN(t_config_errors_exit_1_name_the_key);
	T_RUN(t_insecure_refused_off_loopback);
	return t_done();
}
