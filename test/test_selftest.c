/* test_selftest.c — `felhom-agent --selftest` and `--selftest=task` as an
 * operator runs them, against the simulated host: what is printed, what is
 * sent, the exit status, and that no secret reaches any output. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "sim.h"

static char agent[512];
static char dir[256];

struct envb {
	char ep[128], tokfile[600], fp[200], node[64], state[600], cfgpath[600];
	const char *v[8];
};

/* Environment for the agent: endpoint, node, pin, token by file. */
static void make_env(struct sim *s, struct envb *b, const char *fingerprint)
{
	snprintf(b->ep, sizeof(b->ep), "FELHOM_AGENT_PROXMOX_ENDPOINT=%s", s->endpoint);
	snprintf(b->tokfile, sizeof(b->tokfile), "FELHOM_AGENT_PROXMOX_TOKEN_FILE=%s/token", s->dir);
	snprintf(b->fp, sizeof(b->fp), "FELHOM_AGENT_PROXMOX_TLS_FINGERPRINT=%s",
		 fingerprint ? fingerprint : s->fingerprint);
	snprintf(b->node, sizeof(b->node), "FELHOM_AGENT_PROXMOX_NODE=pve");
	snprintf(b->state, sizeof(b->state), "FELHOM_AGENT_STATE_DIR=%s", dir);
	snprintf(b->cfgpath, sizeof(b->cfgpath), "%s/empty.json", dir);
	b->v[0] = b->ep;
	b->v[1] = b->tokfile;
	b->v[2] = b->fp;
	b->v[3] = b->node;
	b->v[4] = b->state;
	b->v[5] = getenv("ASAN_OPTIONS") ? "ASAN_OPTIONS=detect_leaks=1" : NULL;
	b->v[6] = NULL;
}

static const char *secret_of(const char *token)
{
	const char *eq = strrchr(token, '=');
	return eq ? eq + 1 : token;
}

static void no_secret(struct sim *s, const char *out, const char *err)
{
	if (strstr(out, secret_of(s->token)) || strstr(err, secret_of(s->token)))
		t_failf(__FILE__, __LINE__, "the token secret appears in the output");
}

T_TEST(t_selftest_read_reports_and_mutates_nothing)
{
	static const char *const args[] = { "--guests", "4", NULL };
	struct sim s;
	struct envb b;
	char *out = NULL, *err = NULL;
	char resp[65536];
	int st;

	if (sim_start(&s, args)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	make_env(&s, &b, NULL);
	{
		const char *argv[] = { agent, "--config", b.cfgpath, "--selftest", NULL };
		st = t_run_cmd(argv, b.v, &out, &err);
	}
	T_EQ_INT(st, 0);
	T_CHECK(strstr(out, "version: 9.") != NULL);
	T_CHECK(strstr(out, "guests: 4") != NULL);
	T_CHECK(strstr(out, "storage: 3") != NULL);
	T_CHECK(strstr(out, "result: ok") != NULL);
	T_CHECK(strstr(out, " 1 connections") != NULL);
	no_secret(&s, out, err);
	/* read-only: the simulator saw nothing but GETs */
	T_EQ_INT(sim_control(&s, "GET", "/requests", NULL, resp, sizeof(resp)), 200);
	T_CHECK(strstr(resp, "\"GET\"") != NULL);
	T_CHECK(strstr(resp, "\"POST\"") == NULL && strstr(resp, "\"PUT\"") == NULL &&
		strstr(resp, "\"DELETE\"") == NULL);
	/* one status call per guest config, linear in guests */
	T_EQ_INT(sim_stat(&s, "requests"), 5 + 4);
	free(out);
	free(err);
	sim_stop(&s);
}

T_TEST(t_selftest_pin_mismatch_sends_nothing)
{
	struct sim s;
	struct envb b;
	char *out = NULL, *err = NULL;
	int st;

	if (sim_start(&s, NULL)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	make_env(&s, &b, "0000000000000000000000000000000000000000000000000000000000000000");
	{
		const char *argv[] = { agent, "--config", b.cfgpath, "--selftest", NULL };
		st = t_run_cmd(argv, b.v, &out, &err);
	}
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "tls_pin_mismatch") != NULL);
	T_CHECK(strstr(out, s.fingerprint) != NULL);
	T_EQ_INT(sim_stat(&s, "requests"), 0);
	no_secret(&s, out, err);
	free(out);
	free(err);
	sim_stop(&s);
}

T_TEST(t_selftest_empty_acl_hint)
{
	static const char *const args[] = { "--role", "none", NULL };
	struct sim s;
	struct envb b;
	char *out = NULL, *err = NULL;
	int st;

	if (sim_start(&s, args)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	make_env(&s, &b, NULL);
	{
		const char *argv[] = { agent, "--config", b.cfgpath, "--selftest", NULL };
		st = t_run_cmd(argv, b.v, &out, &err);
	}
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "http_forbidden") != NULL);
	T_CHECK(strstr(out, "[missing privilege Sys.Audit on /nodes/pve]") != NULL);
	T_CHECK(strstr(out, "privilege-separated ACL is probably empty") != NULL);
	no_secret(&s, out, err);
	free(out);
	free(err);
	sim_stop(&s);
}

T_TEST(t_selftest_partial_failure_keeps_going)
{
	struct sim s;
	struct envb b;
	char *out = NULL, *err = NULL;
	int st;

	if (sim_start(&s, NULL)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	sim_fault(&s, "{\"method\":\"GET\",\"path_regex\":\"/lxc/102/config$\",\"status\":500,"
		      "\"reason\":\"Configuration file 'nodes/pve/lxc/102.conf' does not exist\",\"count\":1}");
	make_env(&s, &b, NULL);
	{
		const char *argv[] = { agent, "--config", b.cfgpath, "--selftest", NULL };
		st = t_run_cmd(argv, b.v, &out, &err);
	}
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "guest 102 config: FAILED http_server_error (HTTP 500)") != NULL);
	T_CHECK(strstr(out, "storage: 3") != NULL);   /* later steps still ran */
	T_CHECK(strstr(out, "result: FAILED") != NULL);
	free(out);
	free(err);
	sim_stop(&s);
}

T_TEST(t_selftest_task_round_trip)
{
	struct sim s;
	struct envb b;
	char *out = NULL, *err = NULL;
	char resp[65536];
	const char *p1, *p2, *p3;
	int st;

	if (sim_start(&s, NULL)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	make_env(&s, &b, NULL);
	{
		const char *argv[] = { agent, "--config", b.cfgpath, "--selftest=task", "--vmid", "101", NULL };
		const char *extra[] = { "FELHOM_AGENT_PROXMOX_TASK_POLL_INITIAL_MS=20",
					"FELHOM_AGENT_PROXMOX_TASK_POLL_MAX_MS=100" };
		const char *env[10];
		size_t i, k = 0;
		for (i = 0; b.v[i]; i++)
			env[k++] = b.v[i];
		env[k++] = extra[0];
		env[k++] = extra[1];
		env[k] = NULL;
		st = t_run_cmd(argv, env, &out, &err);
	}
	T_EQ_INT(st, 0);
	T_CHECK(strstr(out, "snapshot: OK") != NULL);
	T_CHECK(strstr(out, "rollback: OK") != NULL);
	T_CHECK(strstr(out, "delete snapshot: OK") != NULL);
	no_secret(&s, out, err);
	/* the order on the wire: snapshot, rollback, delete */
	T_EQ_INT(sim_control(&s, "GET", "/requests", NULL, resp, sizeof(resp)), 200);
	p1 = strstr(resp, "/lxc/101/snapshot\"");
	p2 = strstr(resp, "/rollback\"");
	p3 = strstr(resp, "\"DELETE\"");
	T_CHECK(p1 && p2 && p3 && p1 < p2 && p2 < p3);
	free(out);
	free(err);
	sim_stop(&s);
}

T_TEST(t_selftest_task_failure_still_cleans_up)
{
	struct sim s;
	struct envb b;
	char *out = NULL, *err = NULL;
	int st;

	if (sim_start(&s, NULL)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	sim_fault(&s, "{\"method\":\"POST\",\"path_regex\":\"/rollback$\",\"kind\":\"task_fail\",\"count\":1,"
		      "\"reason\":\"Permission check failed (/vms/101, VM.Snapshot.Rollback)\"}");
	make_env(&s, &b, NULL);
	{
		const char *argv[] = { agent, "--config", b.cfgpath, "--selftest=task", "--vmid", "101", NULL };
		st = t_run_cmd(argv, b.v, &out, &err);
	}
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "rollback: FAILED task_failed") != NULL);
	T_CHECK(strstr(out, "[missing privilege VM.Snapshot.Rollback on /vms/101]") != NULL);
	T_CHECK(strstr(out, "delete snapshot: OK") != NULL);
	free(out);
	free(err);
	sim_stop(&s);
}

int main(void)
{
	char cfg[512];

	snprintf(agent, sizeof(agent), "%s/felhom-agent", t_build_dir());
	t_tmpdir(dir, sizeof(dir));
	snprintf(cfg, sizeof(cfg), "%s/empty.json", dir);
	if (t_write_file(cfg, "{}", 0600))
		return 1;
	T_RUN(t_selftest_read_reports_and_mutates_nothing);
	T_RUN(t_selftest_pin_mismatch_sends_nothing);
	T_RUN(t_selftest_empty_acl_hint);
	T_RUN(t_selftest_partial_failure_keeps_going);
	T_RUN(t_selftest_task_round_trip);
	T_RUN(t_selftest_task_failure_still_cleans_up);
	return t_done();
}
