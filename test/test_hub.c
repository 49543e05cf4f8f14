/* test_hub.c — the hub client against the simulated hub (test/hubsim):
 * bearer header and body on the wire, every trust mode (a pin mismatch
 * sends no request), typed errors, the key never in an error, the envelope
 * decoder and the interval clamp, bounded answers, cancellation of a hung
 * request from another thread, and the fence (the hub client and the trust
 * code never start a process). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

#include "err.h"
#include "harness.h"
#include "hub.h"
#include "hubsim.h"
#include "json.h"

static struct hubsim H;
static char *golden;          /* a report that satisfies the contract */
static size_t golden_len;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

enum trust { T_PIN, T_CA, T_SYSTEM };

static int client(const char *url, const char *key, enum trust t, long timeout_ms, struct hub_client **out,
		  struct hub_err *e)
{
	struct hub_opts o;

	memset(&o, 0, sizeof(o));
	o.url = url;
	o.api_key = key;
	if (t == T_PIN)
		o.tls_fingerprint = H.fingerprint;
	else if (t == T_CA)
		o.ca_file = H.cert_file;
	o.request_timeout_ms = timeout_ms;
	return hub_client_new(&o, out, e);
}

/* The key must never be in an error. */
static void no_key(const struct hub_err *e, int line)
{
	if (strstr(e->reason, H.key))
		t_failf(__FILE__, line, "the API key appears in the error reason");
}

T_TEST(t_bearer_and_body_posted)
{
	struct hub_client *c = NULL;
	struct hub_envelope env;
	struct hub_err e;
	char resp[65536];
	char *log;

	hubsim_reset(&H);
	T_OK(client(H.url, H.key, T_PIN, 5000, &c, &e));
	if (!c)
		return;
	T_EQ_STR(hub_trust_name(c), "fingerprint-pin");
	T_OK(hub_post_report(c, golden, golden_len, &env, &e));
	T_CHECK(env.poll_interval_set && env.poll_interval_seconds == 60);
	T_CHECK(env.blocked_set && !env.blocked);
	T_CHECK(env.desired_generation_set && env.desired_generation == 0);
	T_CHECK(env.signed_ops_set && !env.has_signed_ops);
	/* the hub stored exactly the body we sent, authenticated by the bearer key */
	T_EQ_INT(hubsim_stat(&H, "reports"), 1);
	T_EQ_INT(hubsim_control(&H, "GET", "/last-report", NULL, resp, sizeof(resp)), 200);
	T_CHECK(strstr(resp, "\"host_id\":\"host-7f3a\"") != NULL);
	T_CHECK(strstr(resp, "\"vmid\":101") != NULL);
	log = hubsim_requests(&H);
	T_CHECK(log && strstr(log, "\"method\":\"POST\",\"path\":\"/api/v1/host-report\",\"status\":200") != NULL);
	T_CHECK(log && strstr(log, "\"auth\":\"ok\"") != NULL);
	T_CHECK(log && strstr(log, H.key) == NULL);
	free(log);
	/* a second report reuses the connection */
	T_OK(hub_post_report(c, golden, golden_len, &env, &e));
	T_EQ_INT(hubsim_stat(&H, "connections"), 2);   /* pin probe + one libcurl connection */
	T_EQ_INT(hubsim_stat(&H, "requests"), 2);
	{
		struct hub_stats st;
		hub_stats(c, &st);
		T_EQ_INT(st.requests, 2);
		T_EQ_INT(st.connects, 1);
		T_EQ_INT(st.pin_probes, 1);
	}
	hub_client_free(c);
}

T_TEST(t_wrong_key_is_401)
{
	struct hub_client *c = NULL;
	struct hub_envelope env;
	struct hub_err e;

	hubsim_reset(&H);
	T_OK(client(H.url, "not-the-key-0123456789", T_CA, 5000, &c, &e));
	if (!c)
		return;
	T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_HTTP_401);
	T_EQ_INT(e.http_status, 401);
	T_CHECK(strstr(e.reason, "invalid api key") != NULL);
	T_EQ_INT(hubsim_stat(&H, "unauthorized"), 1);
	T_EQ_INT(hubsim_stat(&H, "reports"), 0);
	hub_client_free(c);
}

T_TEST(t_trust_ca_file_and_system_roots)
{
	struct hub_client *c = NULL;
	struct hub_envelope env;
	struct hub_err e;

	hubsim_reset(&H);
	T_OK(client(H.url, H.key, T_CA, 5000, &c, &e));
	if (c) {
		T_EQ_STR(hub_trust_name(c), "ca-file");
		T_OK(hub_post_report(c, golden, golden_len, &env, &e));
		hub_client_free(c);
		c = NULL;
	}
	/* the self-signed certificate is not in the system store: TLS error, and
	 * verification failed before any request */
	T_OK(client(H.url, H.key, T_SYSTEM, 5000, &c, &e));
	if (c) {
		T_EQ_STR(hub_trust_name(c), "system-roots");
		T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_TLS);
		no_key(&e, __LINE__);
		hub_client_free(c);
	}
	T_EQ_INT(hubsim_stat(&H, "requests"), 1);
}

T_TEST(t_pin_mismatch_sends_no_request)
{
	struct hub_client *c = NULL;
	struct hub_opts o;
	struct hub_envelope env;
	struct hub_err e;

	hubsim_reset(&H);
	memset(&o, 0, sizeof(o));
	o.url = H.url;
	o.api_key = H.key;
	o.tls_fingerprint = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
	T_OK(hub_client_new(&o, &c, &e));
	if (!c)
		return;
	T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_TLS_PIN);
	T_CHECK(strstr(e.reason, H.fingerprint) != NULL);   /* names what the server showed */
	no_key(&e, __LINE__);
	T_EQ_INT(hubsim_stat(&H, "requests"), 0);
	T_EQ_INT(hubsim_stat(&H, "handshakes"), 1);        /* the wolfSSL probe, nothing else */
	/* and again: still nothing sent */
	T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_TLS_PIN);
	T_EQ_INT(hubsim_stat(&H, "requests"), 0);
	hub_client_free(c);
}

T_TEST(t_options_validated)
{
	struct hub_client *c = NULL;
	struct hub_opts o;
	struct hub_err e;
	char url[128];

	memset(&o, 0, sizeof(o));
	o.api_key = H.key;
	o.url = "http://127.0.0.1:1";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	o.url = "https://user:pw@127.0.0.1:1";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	T_CHECK(strstr(e.reason, "pw") == NULL);
	o.url = "https://127.0.0.1:1/?x=1";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	o.url = "https://127.0.0.1:99999";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	o.url = "";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	/* the key: required, printable, and never echoed when refused */
	o.url = H.url;
	o.api_key = "has space-SECRETSECRET";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	T_CHECK(strstr(e.reason, "SECRETSECRET") == NULL);
	o.api_key = NULL;
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	/* exactly one trust mode, a parsable pin */
	o.api_key = H.key;
	o.ca_file = H.cert_file;
	o.tls_fingerprint = H.fingerprint;
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	T_CHECK(strstr(e.reason, "exactly one") != NULL);
	o.ca_file = NULL;
	o.tls_fingerprint = "AA:BB";
	T_ERR(hub_client_new(&o, &c, &e), FH_ERR_CONFIG);
	T_CHECK(c == NULL);
	/* a path prefix is kept, a trailing slash dropped */
	o.tls_fingerprint = H.fingerprint;
	snprintf(url, sizeof(url), "%s/prefix/", H.url);
	o.url = url;
	T_OK(hub_client_new(&o, &c, &e));
	if (c) {
		struct hub_envelope env;
		char want[160];
		snprintf(want, sizeof(want), "%s/prefix/api/v1/host-report", H.url);
		T_EQ_STR(hub_report_url(c), want);
		hubsim_reset(&H);
		T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_HTTP_4XX);
		T_EQ_INT(e.http_status, 404);
		hub_client_free(c);
		c = NULL;
	}
	/* IPv6 literal */
	o.url = "https://[::1]:8443/";
	o.tls_fingerprint = NULL;
	T_OK(hub_client_new(&o, &c, &e));
	if (c)
		T_EQ_STR(hub_report_url(c), "https://[::1]:8443/api/v1/host-report");
	hub_client_free(c);
}

/* Posts once with a fault armed; returns the code, e filled. */
static int post_with_fault(const char *fault, long timeout_ms, struct hub_err *e)
{
	struct hub_client *c = NULL;
	struct hub_envelope env;
	int r;

	hubsim_reset(&H);
	if (fault)
		hubsim_fault(&H, fault);
	if (client(H.url, H.key, T_PIN, timeout_ms, &c, e))
		return -1000;
	r = hub_post_report(c, golden, golden_len, &env, e);
	no_key(e, __LINE__);
	hub_client_free(c);
	return r;
}

T_TEST(t_typed_errors)
{
	struct hub_err e;
	struct hub_client *c = NULL;
	struct hub_envelope env;
	long t0;

	T_EQ_INT(post_with_fault("{\"status\":401,\"count\":1}", 5000, &e), FH_ERR_HTTP_401);
	T_EQ_INT(e.http_status, 401);
	T_EQ_INT(post_with_fault("{\"status\":403,\"reason\":\"host disabled\",\"count\":1}", 5000, &e),
		 FH_ERR_HTTP_403);
	T_CHECK(strstr(e.reason, "host disabled") != NULL);
	T_EQ_INT(post_with_fault("{\"status\":500,\"count\":1}", 5000, &e), FH_ERR_HTTP_5XX);
	T_EQ_INT(post_with_fault("{\"status\":503,\"reason\":\"maintenance\",\"count\":1}", 5000, &e), FH_ERR_HTTP_5XX);
	T_EQ_INT(e.http_status, 503);
	T_CHECK(strstr(e.reason, "HTTP 503 maintenance") != NULL);
	T_EQ_INT(post_with_fault("{\"status\":429,\"count\":1}", 5000, &e), FH_ERR_HTTP_4XX);
	T_EQ_INT(post_with_fault("{\"status\":302,\"count\":1}", 5000, &e), FH_ERR_DECODE);
	T_EQ_INT(post_with_fault("{\"kind\":\"malformed\",\"count\":1}", 5000, &e), FH_ERR_DECODE);
	T_EQ_INT(post_with_fault("{\"kind\":\"malformed\",\"body\":\"[1,2]\",\"count\":1}", 5000, &e), FH_ERR_DECODE);
	T_EQ_INT(post_with_fault("{\"kind\":\"malformed\",\"body\":\"{\\\"blocked\\\":\\\"yes\\\"}\",\"count\":1}", 5000,
				 &e), FH_ERR_DECODE);
	T_CHECK(strstr(e.reason, "blocked") != NULL);
	T_EQ_INT(post_with_fault("{\"kind\":\"malformed\",\"body\":\"\",\"count\":1}", 5000, &e), FH_ERR_DECODE);
	T_EQ_INT(post_with_fault("{\"kind\":\"reset\",\"count\":1}", 5000, &e), FH_ERR_TRANSPORT);
	T_EQ_INT(post_with_fault("{\"kind\":\"close\",\"count\":1}", 5000, &e), FH_ERR_TRANSPORT);
	/* the per-request timeout bounds a hub that never answers */
	t0 = now_ms();
	T_EQ_INT(post_with_fault("{\"kind\":\"hang\",\"count\":1}", 1000, &e), FH_ERR_TIMEOUT);
	T_CHECK(now_ms() - t0 < 4000);
	/* the answer is bounded: 100 KiB of envelope is over the 64 KiB cap */
	T_EQ_INT(post_with_fault("{\"kind\":\"big\",\"size\":102400,\"count\":1}", 5000, &e), FH_ERR_TOOBIG);
	/* the hub validates the contract: a report with drifted field names is 422 */
	hubsim_reset(&H);
	T_OK(client(H.url, H.key, T_PIN, 5000, &c, &e));
	if (c) {
		static const char bad[] = "{\"host_id\":\"h\",\"hostid\":\"typo\"}";
		T_ERR(hub_post_report(c, bad, sizeof(bad) - 1, &env, &e), FH_ERR_HTTP_4XX);
		T_EQ_INT(e.http_status, 422);
		T_CHECK(strstr(e.reason, "contract") != NULL);
		T_EQ_INT(hubsim_stat(&H, "rejected"), 1);
		T_ERR(hub_post_report(c, "", 0, &env, &e), FH_ERR_INVAL);
		hub_client_free(c);
		c = NULL;
	}
	/* nobody listening */
	{
		struct hub_opts o;
		memset(&o, 0, sizeof(o));
		o.url = "https://127.0.0.1:1";
		o.api_key = H.key;
		o.ca_file = H.cert_file;
		T_OK(hub_client_new(&o, &c, &e));
		if (c) {
			T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_TRANSPORT);
			no_key(&e, __LINE__);
			hub_client_free(c);
		}
	}
}

T_TEST(t_key_never_in_errors)
{
	struct hub_err e;

	/* a hostile hub echoes our Authorization header in its status line and body */
	T_EQ_INT(post_with_fault("{\"kind\":\"echo_auth\",\"count\":1}", 5000, &e), FH_ERR_HTTP_5XX);
	T_CHECK(strstr(e.reason, "echo Bearer") != NULL);
	T_CHECK(strstr(e.reason, "[REDACTED]") != NULL);
	no_key(&e, __LINE__);
	/* and in an error member */
	{
		char f[512];
		snprintf(f, sizeof(f), "{\"status\":500,\"body\":\"{\\\"error\\\":\\\"bad key %s\\\"}\",\"count\":1}", H.key);
		T_EQ_INT(post_with_fault(f, 5000, &e), FH_ERR_HTTP_5XX);
		T_CHECK(strstr(e.reason, "bad key [REDACTED]") != NULL);
		no_key(&e, __LINE__);
	}
}

T_TEST(t_envelope_decoder)
{
	struct hub_envelope v;
	char why[128];
	const size_t cap = 65536;

#define ENV(s) hub_parse_envelope(s, strlen(s), cap, &v, why, sizeof(why))
	memset(&v, 0x55, sizeof(v));
	T_OK(ENV("{\"poll_interval_seconds\":120,\"blocked\":true,\"desired_generation\":7,\"has_signed_ops\":true}"));
	T_CHECK(v.poll_interval_set && v.poll_interval_seconds == 120);
	T_CHECK(v.blocked_set && v.blocked);
	T_CHECK(v.desired_generation_set && v.desired_generation == 7);
	T_CHECK(v.signed_ops_set && v.has_signed_ops);
	/* absent, null and unknown members */
	T_OK(ENV("{\"future_field\":{\"x\":[1,2]},\"blocked\":null}"));
	T_CHECK(!v.poll_interval_set && !v.blocked_set && !v.blocked && !v.desired_generation_set &&
		!v.signed_ops_set && !v.has_signed_ops);
	T_OK(ENV("{}"));
	/* wrong types are typed decode errors, never guesses */
	T_ERR(ENV("{\"poll_interval_seconds\":\"60\"}"), FH_ERR_DECODE);
	T_CHECK(strstr(why, "poll_interval_seconds") != NULL);
	T_ERR(ENV("{\"poll_interval_seconds\":60.5}"), FH_ERR_DECODE);
	T_ERR(ENV("{\"blocked\":1}"), FH_ERR_DECODE);
	T_ERR(ENV("{\"has_signed_ops\":\"true\"}"), FH_ERR_DECODE);
	T_ERR(ENV("{\"desired_generation\":-1}"), FH_ERR_DECODE);
	T_ERR(ENV("{\"desired_generation\":1e3}"), FH_ERR_DECODE);
	T_ERR(ENV("[]"), FH_ERR_DECODE);
	T_ERR(ENV("null"), FH_ERR_DECODE);
	T_ERR(ENV("{} {}"), FH_ERR_DECODE);
	T_ERR(ENV("{\"blocked\":true,\"blocked\":false}"), FH_ERR_DECODE);
	T_ERR(ENV(""), FH_ERR_DECODE);
	T_ERR(hub_parse_envelope("{\"a\":\"xxxxxxxxxx\"}", 16, 8, &v, why, sizeof(why)), FH_ERR_TOOBIG);
	T_ERR(ENV("{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"), FH_ERR_TOOBIG);
	/* the output is left alone on error */
	v.poll_interval_seconds = 42;
	T_ERR(ENV("{\"poll_interval_seconds\":5,\"blocked\":2}"), FH_ERR_DECODE);
	T_EQ_INT(v.poll_interval_seconds, 42);
#undef ENV
}

T_TEST(t_interval_clamp)
{
	T_EQ_INT(hub_clamp_interval(5, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 60);
	T_EQ_INT(hub_clamp_interval(59, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 60);
	T_EQ_INT(hub_clamp_interval(60, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 60);
	T_EQ_INT(hub_clamp_interval(61, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 61);
	T_EQ_INT(hub_clamp_interval(3600, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 3600);
	T_EQ_INT(hub_clamp_interval(3601, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 3600);
	T_EQ_INT(hub_clamp_interval(-5, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 60);
	T_EQ_INT(hub_clamp_interval(INT64_MAX, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX), 3600);
	T_EQ_INT(hub_clamp_interval(0, 1, HUB_INTERVAL_MAX), 1);   /* a lowered minimum (tests) */
}

struct canceller {
	struct hub_client *c;
	long delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;
	struct timespec ts = { k->delay_ms / 1000, (k->delay_ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	hub_cancel(k->c);
	return NULL;
}

T_TEST(t_cancel_hung_request)
{
	struct hub_client *c = NULL;
	struct hub_envelope env;
	struct hub_err e;
	struct canceller k;
	pthread_t th;
	long t0;

	hubsim_reset(&H);
	hubsim_fault(&H, "{\"kind\":\"hang\",\"count\":1}");
	T_OK(client(H.url, H.key, T_PIN, 60000, &c, &e));
	if (!c)
		return;
	k.c = c;
	k.delay_ms = 300;
	t0 = now_ms();
	T_CHECK(pthread_create(&th, NULL, cancel_later, &k) == 0);
	T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_CANCELLED);
	T_CHECK(now_ms() - t0 < 3000);   /* well inside the 60 s request timeout */
	pthread_join(th, NULL);
	/* cancelled for good */
	T_ERR(hub_post_report(c, golden, golden_len, &env, &e), FH_ERR_CANCELLED);
	T_EQ_INT(hubsim_stat(&H, "requests"), 1);
	hub_client_free(c);
}

/* Undefined symbols of an object, from nm. */
static char *undefined_syms(const char *obj)
{
	const char *argv[] = { "/usr/bin/nm", "-u", "--format=just-symbols", obj, NULL };
	const char *env[] = { "LC_ALL=C", NULL };
	char *out = NULL;

	if (t_run_cmd(argv, env, &out, NULL) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int has_sym(const char *list, const char *sym)
{
	const char *p = list;
	size_t n = strlen(sym);

	while ((p = strstr(p, sym)) != NULL) {
		if ((p == list || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0' || p[n] == '@'))
			return 1;
		p += n;
	}
	return 0;
}

T_TEST(t_fence_hub_spawns_nothing)
{
	static const char *const objs[] = { "hub.o", "httptrust.o", "sdnotify.o" };
	static const char *const spawn[] = { "fork", "vfork", "clone", "execve", "execv", "execvp", "posix_spawn",
					     "posix_spawnp", "system", "popen", NULL };
	size_t i, j;

	for (i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		char path[512];
		char *u;
		snprintf(path, sizeof(path), "%s/obj/%s", t_build_dir(), objs[i]);
		u = undefined_syms(path);
		T_CHECK(u != NULL);
		if (!u)
			continue;
		for (j = 0; spawn[j]; j++) {
			if (has_sym(u, spawn[j]))
				t_failf(__FILE__, __LINE__, "%s references %s", objs[i], spawn[j]);
		}
		/* and it does use libcurl: the check looked at the right file */
		if (i == 0)
			T_CHECK(has_sym(u, "curl_easy_perform"));
		free(u);
	}
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	golden = t_slurp("vectors/host-report.golden.json", &golden_len);
	if (!golden || hubsim_start(&H, NULL)) {
		fprintf(stderr, "test_hub: cannot start the simulated hub or read the golden report\n");
		free(golden);
		printf("# passed 0 failed 1\n");
		return 1;
	}
	T_RUN(t_bearer_and_body_posted);
	T_RUN(t_wrong_key_is_401);
	T_RUN(t_trust_ca_file_and_system_roots);
	T_RUN(t_pin_mismatch_sends_no_request);
	T_RUN(t_options_validated);
	T_RUN(t_typed_errors);
	T_RUN(t_key_never_in_errors);
	T_RUN(t_envelope_decoder);
	T_RUN(t_interval_clamp);
	T_RUN(t_cancel_hung_request);
	T_RUN(t_fence_hub_spawns_nothing);
	hubsim_stop(&H);
	free(golden);
	curl_global_cleanup();
	return t_done();
}
