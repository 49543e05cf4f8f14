/* test_pvesim.c — the simulated Proxmox host speaks the real wire format.
 *
 * Raw libcurl against test/pvesim (loopback, verification off): status-line
 * reasons, 401/403/501 shapes, connection close after errors, role-scoped
 * privileges, fault injection and the control API counters.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sim.h"

struct resp {
	long status;
	char reason[256];
	char connection[32];
	char *body;
	size_t len;
	long num_connects;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct resp *r = ud;
	size_t n = size * nmemb;
	char *q = realloc(r->body, r->len + n + 1);

	if (!q)
		return 0;
	r->body = q;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Keeps the reason phrase of the status line and the Connection header. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct resp *r = ud;
	size_t n = size * nmemb, m;

	if (n > 9 && strncmp(ptr, "HTTP/", 5) == 0) {
		const char *sp = memchr(ptr, ' ', n);
		if (sp && (size_t)(sp - ptr) + 5 <= n) {
			const char *reason = sp + 5; /* skip " NNN " */
			m = n - (size_t)(reason - ptr);
			while (m > 0 && (reason[m - 1] == '\r' || reason[m - 1] == '\n'))
				m--;
			if (m >= sizeof r->reason)
				m = sizeof r->reason - 1;
			memcpy(r->reason, reason, m);
			r->reason[m] = '\0';
		}
		r->connection[0] = '\0';
	} else if (n > 11 && strncasecmp(ptr, "Connection:", 11) == 0) {
		const char *v = ptr + 11;
		while (*v == ' ')
			v++;
		m = n - (size_t)(v - ptr);
		while (m > 0 && (v[m - 1] == '\r' || v[m - 1] == '\n'))
			m--;
		if (m >= sizeof r->connection)
			m = sizeof r->connection - 1;
		memcpy(r->connection, v, m);
		r->connection[m] = '\0';
	}
	return n;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* One request on handle h (reused between calls, so keep-alive shows).
 * token NULL sends no Authorization header. body is form-encoded. */
static int do_req(CURL *h, const struct sim *s, const char *method, const char *path,
		  const char *token, const char *body, struct resp *r)
{
	char url[512], auth[400];
	struct curl_slist *hdrs = NULL;
	CURLcode rc;

	memset(r, 0, sizeof *r);
	snprintf(url, sizeof url, "%s/api2/json%s", s->endpoint, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: PVEAPIToken=%s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->num_connects);
	return 0;
}

static struct sim g_sim;
static int g_up;

static int need_sim(void)
{
	if (!g_up) {
		if (sim_start(&g_sim, NULL) != 0)
			return -1;
		g_up = 1;
	}
	sim_reset(&g_sim);
	return 0;
}

/* Pulls the string value of "key":"..." out of a JSON text into out. */
static int json_str(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	p = json ? strstr(json, pat) : NULL;
	if (!p)
		return -1;
	p += strlen(pat);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

static int wait_task(CURL *h, const struct sim *s, const char *upid, char *exitstatus, size_t len)
{
	char path[400], st[32];
	struct resp r;
	int i;

	snprintf(path, sizeof path, "/nodes/pve/tasks/%s/status", upid);
	for (i = 0; i < 200; i++) {
		if (do_req(h, s, "GET", path, s->token, NULL, &r) != 0 || r.status != 200) {
			resp_free(&r);
			return -1;
		}
		if (json_str(r.body, "status", st, sizeof st) == 0 && strcmp(st, "stopped") == 0) {
			int rc = json_str(r.body, "exitstatus", exitstatus, len);
			resp_free(&r);
			return rc;
		}
		resp_free(&r);
		usleep(50000);
	}
	return -1;
}

T_TEST(t_no_token_is_401_no_ticket)
{
	CURL *h = curl_easy_init();
	struct resp r;

	T_CHECK(need_sim() == 0);
	T_CHECK(do_req(h, &g_sim, "GET", "/version", NULL, NULL, &r) == 0);
	T_EQ_INT(r.status, 401);
	T_EQ_STR(r.reason, "No ticket");
	T_EQ_INT(r.len, 0);
	T_EQ_STR(r.connection, "close");
	resp_free(&r);
	curl_easy_cleanup(h);
}

T_TEST(t_wrong_token_is_401_auth_failed)
{
	CURL *h = curl_easy_init();
	struct resp r;
	char bad[300];

	T_CHECK(need_sim() == 0);
	snprintf(bad, sizeof bad, "felhom@pve!agent=00000000-0000-4000-8000-000000000000");
	T_CHECK(do_req(h, &g_sim, "GET", "/version", bad, NULL, &r) == 0);
	T_EQ_INT(r.status, 401);
	T_EQ_STR(r.reason, "Authentication failed!");
	resp_free(&r);
	curl_easy_cleanup(h);
}

T_TEST(t_version_with_token)
{
	CURL *h = curl_easy_init();
	struct resp r;

	T_CHECK(need_sim() == 0);
	T_CHECK(do_req(h, &g_sim, "GET", "/version", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	T_CHECK(r.body && strstr(r.body, "{\"data\":{\"version\":\"") == r.body);
	T_CHECK(strstr(g_sim.token, "felhom@pve!agent=") == g_sim.token);
	T_EQ_INT(strlen(g_sim.fingerprint), 95);
	T_CHECK(access(g_sim.cert_file, R_OK) == 0);
	resp_free(&r);
	curl_easy_cleanup(h);
}

T_TEST(t_unknown_path_is_501)
{
	CURL *h = curl_easy_init();
	struct resp r;

	T_CHECK(need_sim() == 0);
	T_CHECK(do_req(h, &g_sim, "GET", "/nonexistent", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 501);
	T_EQ_STR(r.reason, "Method 'GET /nonexistent' not implemented");
	T_EQ_STR(r.body, "{\"data\":null}");
	resp_free(&r);
	curl_easy_cleanup(h);
}

T_TEST(t_connection_closed_after_error)
{
	CURL *h = curl_easy_init();
	struct resp r;

	T_CHECK(need_sim() == 0);
	T_CHECK(do_req(h, &g_sim, "GET", "/version", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.num_connects, 1);
	T_EQ_STR(r.connection, "Keep-Alive");
	resp_free(&r);
	T_CHECK(do_req(h, &g_sim, "GET", "/nodes", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	T_EQ_INT(r.num_connects, 0); /* reused */
	T_CHECK(r.body && strstr(r.body, g_sim.fingerprint) != NULL);
	resp_free(&r);
	T_CHECK(do_req(h, &g_sim, "GET", "/nodes/pve/lxc/999/config", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 500);
	T_EQ_STR(r.reason, "Configuration file 'nodes/pve/lxc/999.conf' does not exist");
	T_EQ_INT(r.num_connects, 0);
	T_EQ_STR(r.connection, "close");
	resp_free(&r);
	T_CHECK(do_req(h, &g_sim, "GET", "/version", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	T_EQ_INT(r.num_connects, 1); /* the server closed the old one */
	resp_free(&r);
	T_EQ_INT(sim_stat(&g_sim, "requests"), 4);
	T_EQ_INT(sim_stat(&g_sim, "connections"), 2);
	T_EQ_INT(sim_stat(&g_sim, "handshakes"), 2);
	T_EQ_INT(sim_count_path(&g_sim, "GET /api2/json/version"), 2);
	T_EQ_INT(sim_count_path(&g_sim, "GET /api2/json/nodes"), 1);
	T_EQ_INT(sim_count_path(&g_sim, "GET /api2/json/nothing"), 0);
	curl_easy_cleanup(h);
}

T_TEST(t_faults_and_stats)
{
	CURL *h = curl_easy_init();
	struct resp r;
	char buf[4096];

	T_CHECK(need_sim() == 0);
	T_EQ_INT(sim_fault(&g_sim, "{\"method\":\"GET\",\"path_regex\":\"/version$\",\"status\":596,"
				   "\"reason\":\"Connection timed out\",\"count\":1}"), 200);
	T_CHECK(do_req(h, &g_sim, "GET", "/version", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 596);
	T_EQ_STR(r.reason, "Connection timed out");
	T_EQ_STR(r.connection, "close");
	resp_free(&r);
	T_CHECK(do_req(h, &g_sim, "GET", "/version", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	resp_free(&r);

	T_EQ_INT(sim_fault(&g_sim, "{\"path_regex\":\"/nodes/pve/lxc$\",\"kind\":\"malformed_json\"}"), 200);
	T_CHECK(do_req(h, &g_sim, "GET", "/nodes/pve/lxc", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	T_CHECK(r.body && r.body[r.len - 1] != '}');
	resp_free(&r);

	T_EQ_INT(sim_stat(&g_sim, "requests"), 3);
	T_EQ_INT(sim_count_path(&g_sim, "GET /api2/json/version"), 2);
	T_EQ_INT(sim_control(&g_sim, "GET", "/requests", NULL, buf, sizeof buf), 200);
	T_CHECK(strstr(buf, "\"status\":596") != NULL);
	T_CHECK(strstr(buf, "\"auth\":\"token\"") != NULL);
	T_CHECK(strstr(buf, g_sim.token + strlen("felhom@pve!agent=")) == NULL);
	T_EQ_INT(sim_reset(&g_sim), 200);
	T_EQ_INT(sim_stat(&g_sim, "requests"), 0);
	T_EQ_INT(sim_control(&g_sim, "GET", "/nope", NULL, NULL, 0), 404);
	curl_easy_cleanup(h);
}

T_TEST(t_task_runs_and_fails_on_fault)
{
	CURL *h = curl_easy_init();
	struct resp r;
	char upid[256], exitst[256];

	T_CHECK(need_sim() == 0);
	/* 102 is seeded stopped */
	T_CHECK(do_req(h, &g_sim, "POST", "/nodes/pve/lxc/102/status/start", g_sim.token, "", &r) == 0);
	T_EQ_INT(r.status, 200);
	T_CHECK(json_str(r.body, "data", upid, sizeof upid) == 0);
	T_CHECK(strncmp(upid, "UPID:pve:", 9) == 0);
	T_CHECK(strstr(upid, ":vzstart:102:felhom@pve!agent:") != NULL);
	resp_free(&r);
	T_CHECK(wait_task(h, &g_sim, upid, exitst, sizeof exitst) == 0);
	T_EQ_STR(exitst, "OK");
	/* start on a running guest: 500 at the POST, like the real server */
	T_CHECK(do_req(h, &g_sim, "POST", "/nodes/pve/lxc/102/status/start", g_sim.token, "", &r) == 0);
	T_EQ_INT(r.status, 500);
	T_EQ_STR(r.reason, "CT 102 already running");
	resp_free(&r);
	/* a permission failure at task execution */
	T_EQ_INT(sim_fault(&g_sim, "{\"path_regex\":\"/status/stop$\",\"kind\":\"task_fail\","
				   "\"reason\":\"Permission check failed (/storage/local, Datastore.AllocateSpace)\"}"),
		 200);
	T_CHECK(do_req(h, &g_sim, "POST", "/nodes/pve/lxc/102/status/stop", g_sim.token, "", &r) == 0);
	T_EQ_INT(r.status, 200);
	T_CHECK(json_str(r.body, "data", upid, sizeof upid) == 0);
	resp_free(&r);
	T_CHECK(wait_task(h, &g_sim, upid, exitst, sizeof exitst) == 0);
	T_EQ_STR(exitst, "Permission check failed (/storage/local, Datastore.AllocateSpace)");
	/* bad form boolean: 400 with errors */
	T_CHECK(do_req(h, &g_sim, "DELETE", "/nodes/pve/lxc/102?force=true", g_sim.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 400);
	T_EQ_STR(r.reason, "Parameter verification failed.");
	T_CHECK(r.body && strstr(r.body, "\"errors\":{\"force\":\"type check ('boolean') failed - got 'true'\"}"));
	resp_free(&r);
	curl_easy_cleanup(h);
}

T_TEST(t_role_agent_lacks_sys_modify)
{
	const char *const args[] = { "--role", "agent", NULL };
	CURL *h = curl_easy_init();
	struct sim s;
	struct resp r;

	T_CHECK(sim_start(&s, args) == 0);
	T_CHECK(do_req(h, &s, "GET", "/nodes/pve/lxc", s.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	T_CHECK(r.body && strstr(r.body, "\"vmid\":101") != NULL);
	resp_free(&r);
	/* a privileged CT needs Sys.Modify on /, outside the 16-privilege role */
	T_CHECK(do_req(h, &s, "POST", "/nodes/pve/lxc", s.token,
		       "vmid=150&ostemplate=local%3Abackup%2Fx.tar.zst&restore=1&storage=local-lvm&unprivileged=0",
		       &r) == 0);
	T_EQ_INT(r.status, 403);
	T_EQ_STR(r.reason, "Permission check failed (/, Sys.Modify)");
	T_EQ_STR(r.connection, "close");
	resp_free(&r);
	/* bind mounts are root@pam only, whatever the role */
	T_CHECK(do_req(h, &s, "PUT", "/nodes/pve/lxc/101/config", s.token, "mp0=%2Fsrv%2Fx%2Cmp%3D%2Fx", &r) == 0);
	T_EQ_INT(r.status, 403);
	T_EQ_STR(r.reason, "Permission check failed (mount point type bind is only allowed for root@pam)");
	resp_free(&r);
	sim_stop(&s);
	curl_easy_cleanup(h);
}

T_TEST(t_privs_filter_lists_and_403)
{
	const char *const args[] = { "--privs", "VM.Audit", NULL };
	CURL *h = curl_easy_init();
	struct sim s;
	struct resp r;

	T_CHECK(sim_start(&s, args) == 0);
	T_CHECK(do_req(h, &s, "POST", "/nodes/pve/lxc/101/status/stop", s.token, "", &r) == 0);
	T_EQ_INT(r.status, 403);
	T_EQ_STR(r.reason, "Permission check failed (/vms/101, VM.PowerMgmt)");
	resp_free(&r);
	T_CHECK(do_req(h, &s, "GET", "/nodes/pve/storage", s.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 200);
	T_EQ_STR(r.body, "{\"data\":[]}");
	resp_free(&r);
	T_CHECK(do_req(h, &s, "GET", "/nodes/pve/status", s.token, NULL, &r) == 0);
	T_EQ_INT(r.status, 403);
	T_EQ_STR(r.reason, "Permission check failed (/nodes/pve, Sys.Audit)");
	resp_free(&r);
	sim_stop(&s);
	curl_easy_cleanup(h);
}

T_TEST(t_thousand_guests_fast)
{
	const char *const args[] = { "--guests", "1000", NULL };
	CURL *h = curl_easy_init();
	struct sim s;
	struct resp r;
	struct timespec a, b;
	const char *p;
	long n = 0;
	double ms;

	T_CHECK(sim_start(&s, args) == 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	T_CHECK(do_req(h, &s, "GET", "/nodes/pve/lxc", s.token, NULL, &r) == 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	T_EQ_INT(r.status, 200);
	for (p = r.body; p && (p = strstr(p, "\"vmid\":")) != NULL; p++)
		n++;
	T_EQ_INT(n, 1000);
	if (ms > 1000.0)
		t_failf(__FILE__, __LINE__, "1000-guest list took %.0f ms", ms);
	resp_free(&r);
	sim_stop(&s);
	curl_easy_cleanup(h);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	T_RUN(t_no_token_is_401_no_ticket);
	T_RUN(t_wrong_token_is_401_auth_failed);
	T_RUN(t_version_with_token);
	T_RUN(t_unknown_path_is_501);
	T_RUN(t_connection_closed_after_error);
	T_RUN(t_faults_and_stats);
	T_RUN(t_task_runs_and_fails_on_fault);
	T_RUN(t_role_agent_lacks_sys_modify);
	T_RUN(t_privs_filter_lists_and_403);
	T_RUN(t_thousand_guests_fast);
	if (g_up)
		sim_stop(&g_sim);
	curl_global_cleanup();
	return t_done();
}
