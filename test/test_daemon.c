/* test_daemon.c — build/felhom-agent as a daemon against both simulators
 * (test/pvesim for Proxmox, test/hubsim for the hub), with a test
 * NOTIFY_SOCKET: report at once then every interval, interval adoption and
 * clamp, backoff growth within its jitter bounds, parked mode on 401/403
 * and recovery (by probe and by reload), node status failure skipping the
 * POST, SIGTERM/SIGINT during hung requests, SIGHUP with good and bad
 * configurations, the READY/WATCHDOG/STOPPING/RELOADING datagrams (and
 * keep-alives stopping when the loop overruns its budget), --status and
 * --selftest=hub output — and, after every run, that neither the hub key
 * nor the Proxmox token reaches stdout, stderr or the status file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <netinet/in.h>

#include "daemon.h"
#include "err.h"
#include "harness.h"
#include "hubsim.h"
#include "json.h"
#include "sim.h"

static char agent_bin[512];
static struct sim P;          /* shared simulated Proxmox host (3 guests) */
static struct hubsim H;       /* shared simulated hub */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

struct notif;
static struct notif *g_notif;   /* drained during every wait, as systemd would */
static void notif_pump(struct notif *s);

static void sleep_ms(long ms)
{
	long end = now_ms() + ms;

	for (;;) {
		long left = end - now_ms();
		struct timespec ts;
		if (g_notif)
			notif_pump(g_notif);
		if (left <= 0)
			return;
		if (left > 10)
			left = 10;
		ts.tv_sec = 0;
		ts.tv_nsec = left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* ------------------------------------------------------ notify socket */

#define NOTIF_MAX 4096

struct notif {
	int fd;
	char name[108];               /* as given in NOTIFY_SOCKET */
	char path[300];               /* filesystem socket, or "" for abstract */
	size_t n;
	char *msg[NOTIF_MAX];
	long at[NOTIF_MAX];           /* CLOCK_MONOTONIC ms when received */
};

static int notif_open(struct notif *s, const char *dir, int abstract)
{
	struct sockaddr_un a;
	socklen_t len;
	static int seq;

	memset(s, 0, sizeof(*s));
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (abstract) {
		snprintf(s->name, sizeof(s->name), "@felhom-test-%d-%d", (int)getpid(), ++seq);
		memcpy(a.sun_path, s->name, strlen(s->name));
		a.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(s->name));
	} else {
		if (strlen(dir) + sizeof("/notify.sock") > sizeof(a.sun_path))
			return -1;
		snprintf(s->path, sizeof(s->path), "%s/notify.sock", dir);
		memcpy(s->name, s->path, strlen(s->path) + 1);
		memcpy(a.sun_path, s->path, strlen(s->path) + 1);
		len = (socklen_t)sizeof(a);
	}
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, len))
		return -1;
	g_notif = s;
	return 0;
}

static void notif_pump(struct notif *s)
{
	char b[4200];

	for (;;) {
		ssize_t r = recv(s->fd, b, sizeof(b) - 1, 0);
		if (r < 0)
			return;
		b[r] = '\0';
		if (s->n < NOTIF_MAX) {
			s->msg[s->n] = strdup(b);
			s->at[s->n] = now_ms();
			s->n++;
		}
	}
}

/* Index of the first message at or after `from` that starts with prefix,
 * waiting up to timeout_ms; -1 if none came. */
static long notif_wait(struct notif *s, size_t from, const char *prefix, long timeout_ms)
{
	long end = now_ms() + timeout_ms;
	size_t i = from;

	for (;;) {
		notif_pump(s);
		for (; i < s->n; i++) {
			if (!strncmp(s->msg[i], prefix, strlen(prefix)))
				return (long)i;
		}
		if (now_ms() > end)
			return -1;
		sleep_ms(10);
	}
}

static size_t notif_count(struct notif *s, const char *prefix, size_t from, size_t to)
{
	size_t i, k = 0;

	for (i = from; i < to && i < s->n; i++)
		k += !strncmp(s->msg[i], prefix, strlen(prefix));
	return k;
}

static void notif_close(struct notif *s)
{
	size_t i;

	if (g_notif == s)
		g_notif = NULL;
	for (i = 0; i < s->n; i++)
		free(s->msg[i]);
	if (s->fd >= 0)
		close(s->fd);
	if (s->path[0])
		unlink(s->path);
	s->n = 0;
	s->fd = -1;
}

/* ------------------------------------------------------------ the agent */

#define ENV_MAX 64

struct agent {
	pid_t pid;
	char dir[256];                /* private: state dir, config, outputs */
	char state[300], cfg[300], out[300], err[300], keyfile[300], tokfile[300];
	char *env[ENV_MAX];
	size_t nenv;
};

static void env_set(struct agent *a, const char *name, const char *value)
{
	size_t i, n = strlen(name);
	char *kv;

	if (asprintf(&kv, "%s=%s", name, value) < 0)
		abort();
	for (i = 0; i < a->nenv; i++) {
		if (!strncmp(a->env[i], name, n) && a->env[i][n] == '=') {
			free(a->env[i]);
			a->env[i] = kv;
			return;
		}
	}
	if (a->nenv + 1 >= ENV_MAX)
		abort();
	a->env[a->nenv++] = kv;
	a->env[a->nenv] = NULL;
}

static void env_unset(struct agent *a, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < a->nenv; i++) {
		if (!strncmp(a->env[i], name, n) && a->env[i][n] == '=') {
			free(a->env[i]);
			a->env[i] = a->env[--a->nenv];
			a->env[a->nenv] = NULL;
			return;
		}
	}
}

/* A fresh agent set up against P and H with short intervals. */
static void agent_init(struct agent *a, struct sim *p, struct hubsim *h)
{
	static const char *const pass[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", NULL };
	size_t i;

	memset(a, 0, sizeof(*a));
	t_tmpdir(a->dir, sizeof(a->dir));
	snprintf(a->state, sizeof(a->state), "%s/state", a->dir);
	snprintf(a->cfg, sizeof(a->cfg), "%s/agent.json", a->dir);
	snprintf(a->out, sizeof(a->out), "%s/stdout", a->dir);
	snprintf(a->err, sizeof(a->err), "%s/stderr", a->dir);
	snprintf(a->keyfile, sizeof(a->keyfile), "%s/hub.key", a->dir);
	t_write_file(a->cfg, "{}", 0600);
	t_write_file(a->keyfile, h->key, 0600);
	snprintf(a->tokfile, sizeof(a->tokfile), "%s/token", p->dir);
	env_set(a, "FELHOM_AGENT_PROXMOX_ENDPOINT", p->endpoint);
	env_set(a, "FELHOM_AGENT_PROXMOX_NODE", "pve");
	env_set(a, "FELHOM_AGENT_PROXMOX_TOKEN_FILE", a->tokfile);
	env_set(a, "FELHOM_AGENT_PROXMOX_TLS_FINGERPRINT", p->fingerprint);
	env_set(a, "FELHOM_AGENT_HUB_URL", h->url);
	env_set(a, "FELHOM_AGENT_HUB_HOST_ID", "host-test");
	env_set(a, "FELHOM_AGENT_HUB_API_KEY_FILE", a->keyfile);
	env_set(a, "FELHOM_AGENT_HUB_TLS_FINGERPRINT", h->fingerprint);
	env_set(a, "FELHOM_AGENT_STATE_DIR", a->state);
	env_set(a, "FELHOM_AGENT_PRIVILEGED_SUDO_PATH", "/bin/false");
	env_set(a, "FELHOM_AGENT_LOG_LEVEL", "debug");
	env_set(a, "FELHOM_AGENT_HUB_POLL_SECONDS", "1");
	env_set(a, "FELHOM_AGENT_HUB_MIN_INTERVAL_SECONDS", "1");
	env_set(a, "FELHOM_AGENT_HUB_BACKOFF_INITIAL_MS", "200");
	env_set(a, "FELHOM_AGENT_HUB_BACKOFF_MAX_MS", "800");
	env_set(a, "FELHOM_AGENT_HUB_PARKED_PROBE_SECONDS", "1");
	env_set(a, "FELHOM_AGENT_HUB_TIMEOUT_SECONDS", "5");
	for (i = 0; pass[i]; i++) {
		if (getenv(pass[i]))
			env_set(a, pass[i], getenv(pass[i]));
	}
}

static int agent_spawn2(struct agent *a, const char *mode, const char *arg)
{
	posix_spawn_file_actions_t fa;
	const char *argv[6];
	int n = 0, r;

	argv[n++] = agent_bin;
	argv[n++] = "--config";
	argv[n++] = a->cfg;
	if (mode)
		argv[n++] = mode;
	if (mode && arg)
		argv[n++] = arg;
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, a->out, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, a->err, O_WRONLY | O_CREAT | O_APPEND, 0600);
	r = posix_spawn(&a->pid, agent_bin, &fa, NULL, (char *const *)(uintptr_t)argv, a->env);
	posix_spawn_file_actions_destroy(&fa);
	return r ? -1 : 0;
}

static int agent_spawn(struct agent *a, const char *mode)
{
	return agent_spawn2(a, mode, NULL);
}

/* Exit status (128+signal when killed), or -1 after timeout_ms (then the
 * agent is SIGKILLed). */
static int agent_wait(struct agent *a, long timeout_ms)
{
	long end = now_ms() + timeout_ms;
	int st;

	if (a->pid <= 0)
		return -2;
	for (;;) {
		pid_t r = waitpid(a->pid, &st, WNOHANG);
		if (r == a->pid)
			break;
		if (now_ms() > end) {
			kill(a->pid, SIGKILL);
			waitpid(a->pid, &st, 0);
			a->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	a->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *agent_log(struct agent *a)
{
	char *s = t_slurp(a->err, NULL);
	return s ? s : strdup("");
}

static char *agent_status_file(struct agent *a)
{
	char p[400];

	snprintf(p, sizeof(p), "%s/status.json", a->state);
	return t_slurp(p, NULL);
}

/* Neither the hub key nor the Proxmox token secret in anything the agent
 * wrote: stdout, stderr, the status file. */
static void no_secrets(struct agent *a, struct sim *p, int line)
{
	const char *files[3] = { a->out, a->err, NULL };
	char sp[400], *key = t_slurp(a->keyfile, NULL), *tok = t_slurp(a->tokfile, NULL);
	const char *secret;
	size_t i;

	snprintf(sp, sizeof(sp), "%s/status.json", a->state);
	files[2] = sp;
	secret = tok && strrchr(tok, '=') ? strrchr(tok, '=') + 1 : NULL;
	T_CHECK(key != NULL && secret != NULL);   /* the check looks at real secrets */
	(void)p;
	for (i = 0; i < 3; i++) {
		char *s = t_slurp(files[i], NULL);
		if (!s)
			continue;
		if (key && strlen(key) >= 8 && strstr(s, key))
			t_failf(__FILE__, line, "the hub API key appears in %s", files[i]);
		if (secret && strlen(secret) >= 8 && strstr(s, secret))
			t_failf(__FILE__, line, "the Proxmox token secret appears in %s", files[i]);
		if (strstr(s, H.key))
			t_failf(__FILE__, line, "the hub's current key appears in %s", files[i]);
		free(s);
	}
	free(key);
	free(tok);
}

static void agent_done(struct agent *a)
{
	size_t i;
	char cmd[400];

	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
		a->pid = 0;
	}
	for (i = 0; i < a->nenv; i++)
		free(a->env[i]);
	a->nenv = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", a->dir);
}

/* Runs the agent with a mode (and its argument) to completion, capturing
 * stdout. */
static int agent_run_mode2(struct agent *a, const char *mode, const char *arg, char **out)
{
	int st;

	unlink(a->out);
	if (agent_spawn2(a, mode, arg))
		return -1;
	st = agent_wait(a, 60000);
	*out = t_slurp(a->out, NULL);
	if (!*out)
		*out = strdup("");
	return st;
}

static int agent_run_mode(struct agent *a, const char *mode, char **out)
{
	return agent_run_mode2(a, mode, NULL, out);
}

/* --------------------------------------------------------------- hub side */

struct reqs {
	struct json *root;
	const struct json *list;
};

static int reqs_get(struct reqs *r)
{
	const struct json_limits lim = { 8u << 20, 16, true };
	char *t = hubsim_requests(&H);
	int rc;

	memset(r, 0, sizeof(*r));
	if (!t)
		return -1;
	rc = json_parse(t, strlen(t), &lim, &r->root, NULL, 0);
	free(t);
	if (rc || r->root->type != JSON_ARRAY)
		return -1;
	r->list = r->root;
	return 0;
}

/* The request log once it holds at least n entries (hubsim counts a
 * report before it logs the request). */
static int reqs_wait(struct reqs *r, size_t n, long timeout_ms)
{
	long end = now_ms() + timeout_ms;

	for (;;) {
		if (reqs_get(r) == 0 && r->list->n >= n)
			return 0;
		json_free(r->root);
		memset(r, 0, sizeof(*r));
		if (now_ms() > end)
			return -1;
		sleep_ms(20);
	}
}

static double req_num(const struct json *e, const char *k)
{
	double d = 0;

	json_double(json_get(e, k), &d);
	return d;
}

static long req_int(const struct json *e, const char *k)
{
	int64_t v = 0;

	json_int(json_get(e, k), &v);
	return (long)v;
}

static void reqs_free(struct reqs *r)
{
	json_free(r->root);
}

static int wait_stat(struct hubsim *h, const char *field, long want, long timeout_ms)
{
	long end = now_ms() + timeout_ms;

	while (hubsim_stat(h, field) < want) {
		if (now_ms() > end)
			return -1;
		sleep_ms(20);
	}
	return 0;
}

static int wait_log(struct agent *a, const char *needle, long timeout_ms)
{
	long end = now_ms() + timeout_ms;

	for (;;) {
		char *s = agent_log(a);
		int found = strstr(s, needle) != NULL;
		free(s);
		if (found)
			return 0;
		if (now_ms() > end)
			return -1;
		sleep_ms(20);
	}
}

static size_t count_in(const char *s, const char *needle)
{
	size_t k = 0;

	while ((s = strstr(s, needle)) != NULL) {
		k++;
		s += strlen(needle);
	}
	return k;
}

static void reset_sims(void)
{
	hubsim_control(&H, "POST", "/reset", "{\"envelope\":true}", NULL, 0);
	sim_reset(&P);
}

/* ---------------------------------------------------------------- tests */

T_TEST(t_reports_at_once_then_every_interval_with_notify)
{
	struct agent a;
	struct notif n;
	struct reqs r;
	char wd[32];
	long t0, ready, stopping, i1;
	size_t i, k;
	int st;

	reset_sims();
	hubsim_envelope(&H, "{\"poll_interval_seconds\":1}");
	agent_init(&a, &P, &H);
	T_OK(notif_open(&n, a.dir, 1));
	env_set(&a, "NOTIFY_SOCKET", n.name);
	env_set(&a, "WATCHDOG_USEC", "400000");
	t0 = now_ms();
	T_OK(agent_spawn(&a, NULL));
	/* at once: the first report well before the 1 s interval elapses */
	T_OK(wait_stat(&H, "reports", 1, 5000));
	T_CHECK(now_ms() - t0 < 3000);
	ready = notif_wait(&n, 0, "READY=1", 3000);
	T_CHECK(ready >= 0);
	/* then every interval */
	T_OK(wait_stat(&H, "reports", 4, 6000));
	T_OK(reqs_wait(&r, 4, 2000));
	if (r.list) {
		double prev = 0;
		for (i = 0, k = 0; i < r.list->n; i++) {
			const struct json *e = r.list->items[i];
			double t = req_num(e, "mono");
			const char *auth;
			T_CHECK(!json_str(json_get(e, "auth"), &auth) && !strcmp(auth, "ok"));
			T_EQ_INT(req_int(e, "status"), 200);
			if (prev > 0) {
				double gap = t - prev;
				if (gap < 0.8 || gap > 2.5)
					t_failf(__FILE__, __LINE__, "gap between reports %.2f s, want about 1 s", gap);
				k++;
			}
			prev = t;
		}
		T_CHECK(k >= 3);
	}
	reqs_free(&r);
	/* keep-alives at half of WATCHDOG_USEC (200 ms) */
	notif_pump(&n);
	T_CHECK(notif_count(&n, "WATCHDOG=1", 0, n.n) >= 8);
	i1 = notif_wait(&n, 0, "STATUS=reporting every 1s", 1000);
	T_CHECK(i1 >= 0);
	/* SIGTERM: STOPPING=1, exit 0, promptly */
	t0 = now_ms();
	kill(a.pid, SIGTERM);
	st = agent_wait(&a, 5000);
	T_EQ_INT(st, 0);
	T_CHECK(now_ms() - t0 < 3000);
	stopping = notif_wait(&n, 0, "STOPPING=1", 1000);
	T_CHECK(stopping > ready);
	{
		char *s = agent_status_file(&a);
		struct stat sb;
		char p[400];
		T_CHECK(s && strstr(s, "\"state\": \"stopped\""));
		snprintf(p, sizeof(p), "%s/status.json", a.state);
		T_CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);
		free(s);
	}
	snprintf(wd, sizeof(wd), "watchdog_ms=400");
	{
		char *log = agent_log(&a);
		T_CHECK(strstr(log, wd) != NULL);
		T_CHECK(strstr(log, "event=daemon.stop signal=SIGTERM") != NULL);
		free(log);
	}
	no_secrets(&a, &P, __LINE__);
	notif_close(&n);
	agent_done(&a);
}

T_TEST(t_interval_adoption_and_clamp)
{
	struct agent a;
	char *s;
	long n0, t0;

	reset_sims();
	/* the hub asks for 2 s: adopted (minimum lowered to 1 for the test) */
	hubsim_envelope(&H, "{\"poll_interval_seconds\":2}");
	agent_init(&a, &P, &H);
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "reports", 1, 5000));
	t0 = now_ms();
	T_OK(wait_stat(&H, "reports", 3, 8000));
	n0 = now_ms() - t0;
	T_CHECK(n0 > 3000 && n0 < 6500);   /* two intervals of 2 s */
	/* 0 is clamped up to the minimum (1 s here) */
	hubsim_envelope(&H, "{\"poll_interval_seconds\":0}");
	T_OK(wait_log(&a, "poll_interval_seconds=0 interval_adopted=1", 5000));
	/* above the 3600 s ceiling: clamped down, visible in the status file */
	hubsim_envelope(&H, "{\"poll_interval_seconds\":99999,\"blocked\":true,\"desired_generation\":3,"
			    "\"has_signed_ops\":true}");
	T_OK(wait_log(&a, "poll_interval_seconds=99999 interval_adopted=3600 blocked=true desired_generation=3 "
			  "has_signed_ops=true", 5000));
	sleep_ms(300);
	s = agent_status_file(&a);
	T_CHECK(s && strstr(s, "\"interval_seconds\": 3600"));
	T_CHECK(s && strstr(s, "\"poll_interval_seconds\": 99999"));
	T_CHECK(s && strstr(s, "\"blocked\": true"));
	T_CHECK(s && strstr(s, "\"desired_generation\": 3"));
	free(s);
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);

	/* the default minimum is 60: a hub asking for 5 s gets 60 */
	reset_sims();
	hubsim_envelope(&H, "{\"poll_interval_seconds\":5}");
	agent_init(&a, &P, &H);
	env_set(&a, "FELHOM_AGENT_HUB_MIN_INTERVAL_SECONDS", "60");
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_log(&a, "poll_interval_seconds=5 interval_adopted=60", 5000));
	sleep_ms(200);
	s = agent_status_file(&a);
	T_CHECK(s && strstr(s, "\"interval_seconds\": 60"));
	free(s);
	sleep_ms(1500);
	T_EQ_INT(hubsim_stat(&H, "reports"), 1);   /* not every 1 s (poll_seconds) nor 5 s */
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	agent_done(&a);
}

T_TEST(t_backoff_function_bounds_and_jitter)
{
	unsigned n;
	int64_t lo = INT64_MAX, hi = 0, sum = 0;
	int i, below = 0, above = 0;

	/* exact bounds with the extreme random values */
	T_EQ_INT(daemon_backoff_ms(1, 5000, 300000, 0), 1000);
	T_EQ_INT(daemon_backoff_ms(1, 5000, 300000, 4000), 5000);
	T_EQ_INT(daemon_backoff_ms(2, 5000, 300000, 9000), 10000);
	T_EQ_INT(daemon_backoff_ms(3, 5000, 300000, 19000), 20000);
	T_EQ_INT(daemon_backoff_ms(7, 5000, 300000, 299000), 300000);   /* 5 s * 64 = 320 s, capped */
	T_EQ_INT(daemon_backoff_ms(100, 5000, 300000, 299000), 300000);
	T_EQ_INT(daemon_backoff_ms(100, 5000, 300000, 299001), 1000);    /* rnd wraps into the range */
	T_EQ_INT(daemon_backoff_ms(1000000, 5000, 300000, 0), 1000);    /* no overflow */
	T_EQ_INT(daemon_backoff_ms(1, 200, 800, 0), 200);               /* floor = base when base < 1 s */
	T_EQ_INT(daemon_backoff_ms(5, 200, 800, 600), 800);
	T_EQ_INT(daemon_backoff_ms(3, 5000, 100, 4000), 5000);          /* cap below base counts as base */
	T_EQ_INT(daemon_backoff_ms(3, 5000, 100, 4001), 1000);
	/* the ceiling doubles per failure until the cap */
	for (n = 1; n <= 12; n++) {
		int64_t ceil = 5000LL << (n - 1);
		if (ceil > 300000)
			ceil = 300000;
		for (i = 0; i < 200; i++) {
			int64_t d = daemon_backoff_ms(n, 5000, 300000, (uint64_t)rand() * 2654435761u + (uint64_t)i);
			if (d < 1000 || d > ceil)
				t_failf(__FILE__, __LINE__, "failure %u: %lld outside [1000, %lld]", n, (long long)d,
					(long long)ceil);
		}
	}
	/* full jitter: spread over the whole range, not clustered at the top */
	for (i = 0; i < 4000; i++) {
		uint64_t x = (uint64_t)rand() << 32 ^ (uint64_t)rand();
		int64_t d = daemon_backoff_ms(6, 5000, 300000, x);   /* range [1000, 160000] */
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d;
		below += d < 40000;
		above += d > 120000;
	}
	T_CHECK(lo < 5000 && hi > 155000);
	T_CHECK(sum / 4000 > 70000 && sum / 4000 < 90000);   /* mean of U[1000,160000] = 80500 */
	T_CHECK(below > 700 && above > 700);
}

/* "retry_in_ms=N" values in log order. */
static size_t retries(const char *log, long *out, size_t max)
{
	size_t k = 0;
	const char *p = log;

	while (k < max && (p = strstr(p, "event=hub.report_failed")) != NULL) {
		const char *q = strstr(p, "retry_in_ms=");
		if (!q)
			break;
		out[k++] = strtol(q + 12, NULL, 10);
		p = q;
	}
	return k;
}

T_TEST(t_backoff_growth_then_recovery)
{
	struct agent a;
	struct reqs r;
	long ret[64], t0;
	size_t nr, i;
	char *log, *s;

	reset_sims();
	hubsim_fault(&H, "{\"status\":503,\"reason\":\"maintenance\",\"count\":-1}");
	agent_init(&a, &P, &H);
	t0 = now_ms();
	T_OK(agent_spawn(&a, NULL));
	sleep_ms(4500);
	log = agent_log(&a);
	nr = retries(log, ret, 64);
	/* base 200 ms, cap 800 ms: ceilings 200, 400, 800, 800, ... ; floor 200 */
	T_CHECK(nr >= 5);
	for (i = 0; i < nr; i++) {
		long ceil = 200L << (i < 3 ? i : 2);
		if (ret[i] < 200 || ret[i] > ceil)
			t_failf(__FILE__, __LINE__, "retry %zu waited %ld ms, want [200, %ld]", i + 1, ret[i], ceil);
	}
	T_CHECK(strstr(log, "event=hub.report_failed error=http_server_error step=report http_status=503") != NULL);
	T_CHECK(strstr(log, "attempt=1 ") && strstr(log, "attempt=2 ") && strstr(log, "attempt=3 "));
	free(log);
	/* no storm: the hub saw one request per attempt, spaced by the waits */
	T_OK(reqs_get(&r));
	if (r.list) {
		double elapsed = (double)(now_ms() - t0) / 1000.0;
		T_CHECK(r.list->n >= 5 && (double)r.list->n <= elapsed / 0.2 + 1);
		for (i = 1; i < r.list->n && i - 1 < nr; i++) {
			double gap = req_num(r.list->items[i], "mono") - req_num(r.list->items[i - 1], "mono");
			if (gap * 1000.0 < (double)ret[i - 1] - 50)
				t_failf(__FILE__, __LINE__, "attempt %zu came %.0f ms after the previous, before its %ld ms wait",
					i + 1, gap * 1000.0, ret[i - 1]);
		}
	}
	reqs_free(&r);
	s = agent_status_file(&a);
	T_CHECK(s && strstr(s, "\"state\": \"backoff\"") && strstr(s, "\"last_error\": \"http_server_error\""));
	free(s);
	/* the hub comes back: recovered, counters reset */
	hubsim_reset(&H);
	T_OK(wait_stat(&H, "reports", 1, 3000));
	T_OK(wait_log(&a, "event=hub.recovered", 2000));
	sleep_ms(200);
	s = agent_status_file(&a);
	T_CHECK(s && strstr(s, "\"state\": \"running\"") && strstr(s, "\"consecutive_failures\": 0") &&
		strstr(s, "\"last_error\": \"\""));
	free(s);
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_parked_on_401_probes_slowly_then_recovers)
{
	struct agent a;
	char *log, *s, *out = NULL;
	long t0, nreq;
	int st;

	reset_sims();
	hubsim_fault(&H, "{\"status\":401,\"count\":3}");
	agent_init(&a, &P, &H);
	t0 = now_ms();
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_log(&a, "event=hub.parked error=http_unauthorized", 5000));
	sleep_ms(300);
	/* visible in status, and --status says so */
	s = agent_status_file(&a);
	T_CHECK(s && strstr(s, "\"parked\": true") && strstr(s, "\"state\": \"parked\""));
	free(s);
	{
		struct agent q = a;
		q.pid = 0;
		snprintf(q.out, sizeof(q.out), "%s/status-out", a.dir);
		st = agent_run_mode(&q, "--status", &out);
		T_EQ_INT(st, 1);
		T_CHECK(strstr(out, "parked:           YES") != NULL);
		T_CHECK(strstr(out, "UNHEALTHY (parked") != NULL);
		free(out);
	}
	/* probes every ~1 s (parked_probe_seconds=1, ±10 %), never a storm:
	 * three refusals, then the fourth probe is accepted */
	T_OK(wait_stat(&H, "reports", 1, 6000));
	nreq = hubsim_stat(&H, "requests");
	T_EQ_INT(nreq, 4);
	T_CHECK(now_ms() - t0 >= 2500);
	T_OK(wait_log(&a, "event=hub.unparked", 2000));
	log = agent_log(&a);
	T_EQ_INT(count_in(log, "event=hub.parked "), 3);    /* one line per probe period */
	T_EQ_INT(count_in(log, "event=hub.report_failed"), 0);
	free(log);
	sleep_ms(200);
	s = agent_status_file(&a);
	T_CHECK(s && strstr(s, "\"parked\": false") && strstr(s, "\"state\": \"running\""));
	free(s);
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_parked_on_403_no_storm)
{
	struct agent a;
	long n;

	reset_sims();
	hubsim_fault(&H, "{\"status\":403,\"reason\":\"host disabled\",\"count\":-1}");
	agent_init(&a, &P, &H);
	env_set(&a, "FELHOM_AGENT_HUB_PARKED_PROBE_SECONDS", "900");
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_log(&a, "event=hub.parked error=http_forbidden", 5000));
	sleep_ms(2500);
	n = hubsim_stat(&H, "requests");
	T_EQ_INT(n, 1);                    /* the next probe is 15 minutes away */
	{
		char *s = agent_status_file(&a);
		T_CHECK(s && strstr(s, "\"last_error\": \"http_forbidden\"") && strstr(s, "host disabled"));
		free(s);
	}
	T_CHECK(kill(a.pid, 0) == 0);      /* still running, not crashed */
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_parked_then_fixed_key_and_reload)
{
	struct agent a;
	long t0;

	reset_sims();
	agent_init(&a, &P, &H);
	t_write_file(a.keyfile, "wrong-key-0000000000000000", 0600);
	env_set(&a, "FELHOM_AGENT_HUB_PARKED_PROBE_SECONDS", "900");
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_log(&a, "event=hub.parked error=http_unauthorized", 5000));
	T_EQ_INT(hubsim_stat(&H, "reports"), 0);
	/* the operator fixes the key and reloads: a report goes out at once */
	t_write_file(a.keyfile, H.key, 0600);
	t0 = now_ms();
	kill(a.pid, SIGHUP);
	T_OK(wait_stat(&H, "reports", 1, 3000));
	T_CHECK(now_ms() - t0 < 3000);
	if (wait_log(&a, "event=hub.unparked", 2000)) {
		char *log = agent_log(&a);
		t_failf(__FILE__, __LINE__, "no hub.unparked; log:\n%s", log);
		free(log);
	}
	T_OK(wait_log(&a, "event=daemon.reloaded hub_changed=yes", 1000));
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_node_status_failure_skips_post)
{
	struct agent a;
	struct reqs r;
	char resp[262144];
	long nst;

	reset_sims();
	sim_fault(&P, "{\"method\":\"GET\",\"path_regex\":\"/nodes/pve/status$\",\"status\":500,"
		      "\"reason\":\"node status exploded\",\"count\":2}");
	agent_init(&a, &P, &H);
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "reports", 1, 6000));
	T_OK(reqs_wait(&r, 1, 2000));
	{
		char *log = agent_log(&a);
		T_EQ_INT(count_in(log, "event=hub.collect_failed error=http_server_error step=node_status"), 2);
		T_CHECK(strstr(log, "node status exploded") != NULL);
		free(log);
	}
	/* the two failed cycles sent nothing: the only hub request is the report
	 * of the third cycle, after the third node status read */
	T_CHECK(r.list && r.list->n >= 1);
	T_EQ_INT(hubsim_stat(&H, "requests"), hubsim_stat(&H, "reports"));
	nst = sim_count_path(&P, "GET /api2/json/nodes/pve/status");
	T_CHECK(nst >= 3);
	T_EQ_INT(sim_control(&P, "GET", "/requests", NULL, resp, sizeof(resp)), 200);
	if (r.list && r.list->n >= 1) {
		/* the third node-status read (the first that succeeded) precedes the
		 * first POST; the two failed ones were each followed by no POST */
		const struct json_limits lim = { sizeof(resp), 16, true };
		struct json *pl = NULL;
		double t3 = 0, first_post = req_num(r.list->items[0], "time");
		size_t i;
		int k = 0;
		T_OK(json_parse(resp, strlen(resp), &lim, &pl, NULL, 0));
		for (i = 0; pl && pl->type == JSON_ARRAY && i < pl->n; i++) {
			const char *path;
			if (json_str(json_get(pl->items[i], "path"), &path) || strcmp(path, "/api2/json/nodes/pve/status"))
				continue;
			if (++k == 3)
				t3 = req_num(pl->items[i], "time");
		}
		T_CHECK(k >= 3 && t3 > 0 && t3 <= first_post + 0.01);
		json_free(pl);
	}
	reqs_free(&r);
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_sigterm_during_hung_hub_request)
{
	struct agent a;
	struct notif n;
	long t0;

	reset_sims();
	hubsim_fault(&H, "{\"kind\":\"hang\",\"count\":1}");
	agent_init(&a, &P, &H);
	env_set(&a, "FELHOM_AGENT_HUB_TIMEOUT_SECONDS", "600");
	T_OK(notif_open(&n, a.dir, 0));           /* a filesystem socket this time */
	env_set(&a, "NOTIFY_SOCKET", n.name);
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "requests", 1, 5000));  /* the POST is in flight, unanswered */
	sleep_ms(300);
	T_EQ_INT(hubsim_stat(&H, "reports"), 0);
	t0 = now_ms();
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 10000), 0);
	T_CHECK(now_ms() - t0 < 3000);            /* not the 600 s request timeout */
	T_CHECK(notif_wait(&n, 0, "STOPPING=1", 1000) >= 0);
	{
		char *s = agent_status_file(&a);
		T_CHECK(s && strstr(s, "\"state\": \"stopped\""));
		free(s);
	}
	no_secrets(&a, &P, __LINE__);
	notif_close(&n);
	agent_done(&a);
}

T_TEST(t_sigint_during_hung_proxmox_request)
{
	struct agent a;
	long t0;

	reset_sims();
	sim_fault(&P, "{\"method\":\"GET\",\"path_regex\":\"/nodes/pve/status$\",\"kind\":\"slow\","
		      "\"delay_ms\":60000,\"count\":1}");
	agent_init(&a, &P, &H);
	env_set(&a, "FELHOM_AGENT_PROXMOX_TIMEOUT_SECONDS", "600");
	T_OK(agent_spawn(&a, NULL));
	sleep_ms(1000);
	T_EQ_INT(sim_count_path(&P, "GET /api2/json/nodes/pve/status"), 1);
	t0 = now_ms();
	kill(a.pid, SIGINT);
	T_EQ_INT(agent_wait(&a, 10000), 0);
	T_CHECK(now_ms() - t0 < 3000);
	T_EQ_INT(hubsim_stat(&H, "requests"), 0);  /* stopping: no POST of a half report */
	{
		char *log = agent_log(&a);
		T_CHECK(strstr(log, "event=daemon.stop signal=SIGINT") != NULL);
		free(log);
	}
	agent_done(&a);
}

T_TEST(t_sighup_reload_good_and_bad)
{
	struct agent a;
	struct notif n;
	long r1, m1, before_us, after_us;
	size_t mark;
	char cfg[512], resp[65536];
	struct timespec ts;

	reset_sims();
	agent_init(&a, &P, &H);
	T_OK(notif_open(&n, a.dir, 1));
	env_set(&a, "NOTIFY_SOCKET", n.name);
	/* these keys come from the file in this test (the environment would win) */
	env_unset(&a, "FELHOM_AGENT_HUB_HOST_ID");
	env_unset(&a, "FELHOM_AGENT_HUB_POLL_SECONDS");
	env_unset(&a, "FELHOM_AGENT_LOG_LEVEL");
	t_write_file(a.cfg, "{\"hub\":{\"host_id\":\"host-test\",\"poll_seconds\":1}}", 0600);
	hubsim_envelope(&H, "{\"poll_interval_seconds\":1}");
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "reports", 1, 5000));
	T_CHECK(notif_wait(&n, 0, "READY=1", 2000) >= 0);

	/* a bad file: kept the old configuration, said why, kept reporting */
	t_write_file(a.cfg, "{\"hub\":{\"host_id\":\"host-bad\",\"poll_seconds\":\"often\"}}", 0600);
	notif_pump(&n);
	mark = n.n;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	before_us = (long)ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
	kill(a.pid, SIGHUP);
	T_OK(wait_log(&a, "event=daemon.reload_rejected error=config", 3000));
	{
		char *log = agent_log(&a);
		T_CHECK(strstr(log, "hub.poll_seconds: wrong type: want integer") != NULL);
		T_CHECK(strstr(log, "keeping the running configuration") != NULL);
		free(log);
	}
	r1 = notif_wait(&n, mark, "RELOADING=1\nMONOTONIC_USEC=", 2000);
	T_CHECK(r1 >= 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	after_us = (long)ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
	if (r1 >= 0) {
		long us = strtol(strchr(n.msg[r1], '\n') + 1 + strlen("MONOTONIC_USEC="), NULL, 10);
		T_CHECK(us >= before_us && us <= after_us);
		T_CHECK(notif_wait(&n, (size_t)r1 + 1, "READY=1", 2000) > r1);
	}
	{
		long k = hubsim_stat(&H, "reports");
		T_OK(wait_stat(&H, "reports", k + 2, 4000));   /* still running, old settings */
	}
	T_EQ_INT(hubsim_control(&H, "GET", "/last-report", NULL, resp, sizeof(resp)), 200);
	T_CHECK(strstr(resp, "\"host_id\":\"host-test\"") != NULL);
	/* a secret given two ways is refused the same way, without echoing it */
	t_write_file(a.cfg, "{\"hub\":{\"host_id\":\"host-bad\",\"api_key\":\"inline-key-0123456789\"}}", 0600);
	kill(a.pid, SIGHUP);
	T_OK(wait_log(&a, "hub.api_key and hub.api_key_file are both set", 3000));
	{
		char *log = agent_log(&a);
		T_EQ_INT(count_in(log, "event=daemon.reload_rejected"), 2);
		T_CHECK(strstr(log, "inline-key-0123456789") == NULL);
		free(log);
	}

	/* a good file: swapped in whole (the new host_id is in the next report,
	 * and the log format changed to JSON) */
	snprintf(cfg, sizeof(cfg), "{\"hub\":{\"host_id\":\"host-reloaded\",\"poll_seconds\":1},"
		 "\"log\":{\"format\":\"json\",\"level\":\"debug\"}}");
	t_write_file(a.cfg, cfg, 0600);
	notif_pump(&n);
	mark = n.n;
	kill(a.pid, SIGHUP);
	T_OK(wait_log(&a, "\"event\":\"daemon.reloaded\"", 3000));   /* already in the new format */
	m1 = notif_wait(&n, mark, "RELOADING=1", 2000);
	T_CHECK(m1 >= 0 && notif_wait(&n, (size_t)m1 + 1, "READY=1", 2000) > m1);
	{
		long k = hubsim_stat(&H, "reports");
		T_OK(wait_stat(&H, "reports", k + 1, 4000));
	}
	T_EQ_INT(hubsim_control(&H, "GET", "/last-report", NULL, resp, sizeof(resp)), 200);
	T_CHECK(strstr(resp, "\"host_id\":\"host-reloaded\"") != NULL);
	T_OK(wait_log(&a, "\"event\":\"hub.report\"", 3000));
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &P, __LINE__);
	notif_close(&n);
	agent_done(&a);
}

T_TEST(t_watchdog_stops_when_the_loop_overruns)
{
	static const char *const args[] = { "--guests", "16", NULL };
	struct sim p2;
	struct agent a;
	struct notif n;
	size_t i, first_wd;
	long maxgap = 0, ready;

	if (sim_start(&p2, args)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	hubsim_control(&H, "POST", "/reset", "{\"envelope\":true}", NULL, 0);
	/* every guest config takes 0.9 s: each request is within the 1 s
	 * timeout, but the first collect (budget (4 + 0) * 1 s + 2 * 1 s + 4 s
	 * = 10 s) takes about 16 s */
	sim_fault(&p2, "{\"method\":\"GET\",\"path_regex\":\"/lxc/[0-9]+/config$\",\"kind\":\"slow\","
		       "\"delay_ms\":900,\"count\":-1}");
	agent_init(&a, &p2, &H);
	env_set(&a, "FELHOM_AGENT_PROXMOX_TLS_FINGERPRINT", "");
	env_set(&a, "FELHOM_AGENT_PROXMOX_CA_FILE", p2.cert_file);
	env_set(&a, "FELHOM_AGENT_PROXMOX_TIMEOUT_SECONDS", "1");
	env_set(&a, "FELHOM_AGENT_PRIVILEGED_TIMEOUT_SECONDS", "1");
	env_set(&a, "FELHOM_AGENT_HUB_POLL_SECONDS", "60");
	T_OK(notif_open(&n, a.dir, 1));
	env_set(&a, "NOTIFY_SOCKET", n.name);
	env_set(&a, "WATCHDOG_USEC", "200000");
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "reports", 1, 30000));
	ready = notif_wait(&n, 0, "READY=1", 100);

	sleep_ms(1500);   /* sleeping until the next interval: keep-alives again */
	notif_pump(&n);
	T_CHECK(ready >= 0);
	first_wd = (size_t)notif_wait(&n, 0, "WATCHDOG=1", 10);
	for (i = first_wd + 1; i < n.n; i++) {
		size_t j;
		if (strcmp(n.msg[i], "WATCHDOG=1"))
			continue;
		for (j = i - 1; j > first_wd && strcmp(n.msg[j], "WATCHDOG=1"); j--)
			;
		if (n.at[i] - n.at[j] > maxgap)
			maxgap = n.at[i] - n.at[j];
	}
	/* keep-alives flowed at first (within budget), stopped for seconds once
	 * the collect overran, and resumed after the report */
	T_CHECK(notif_count(&n, "WATCHDOG=1", 0, (size_t)ready) >= 20);
	T_CHECK(maxgap >= 2500);
	T_CHECK(notif_count(&n, "WATCHDOG=1", (size_t)ready, n.n) >= 5);
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	no_secrets(&a, &p2, __LINE__);
	notif_close(&n);
	agent_done(&a);
	sim_stop(&p2);
}

T_TEST(t_status_command)
{
	struct agent a, q;
	char *out = NULL;
	int st;

	reset_sims();
	hubsim_envelope(&H, "{\"poll_interval_seconds\":30,\"desired_generation\":9}");
	agent_init(&a, &P, &H);
	/* before any daemon ran: missing, unhealthy */
	q = a;
	st = agent_run_mode(&q, "--status", &out);
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "no usable status") && strstr(out, "health: UNHEALTHY"));
	free(out);
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "reports", 1, 5000));
	sleep_ms(300);
	q = a;
	q.pid = 0;
	snprintf(q.out, sizeof(q.out), "%s/status-out", a.dir);
	st = agent_run_mode(&q, "--status", &out);
	T_EQ_INT(st, 0);
	T_CHECK(strstr(out, ": running") != NULL);
	T_CHECK(strstr(out, "health: healthy") != NULL);
	T_CHECK(strstr(out, "interval:         30s") != NULL);
	T_CHECK(strstr(out, "1 sent since start") != NULL);
	T_CHECK(strstr(out, "desired_generation=9") != NULL);
	T_CHECK(strstr(out, "last error:       none") != NULL);
	T_CHECK(strstr(out, "/api/v1/host-report") != NULL);
	T_CHECK(strstr(out, H.key) == NULL);
	free(out);
	/* a daemon that died without a word: the status is stale */
	kill(a.pid, SIGKILL);
	agent_wait(&a, 5000);
	st = agent_run_mode(&q, "--status", &out);
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "not running") != NULL);
	free(out);
	/* a clean stop: unhealthy, says stopped */
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_stat(&H, "reports", 2, 5000));
	kill(a.pid, SIGTERM);
	T_EQ_INT(agent_wait(&a, 5000), 0);
	st = agent_run_mode(&q, "--status", &out);
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "UNHEALTHY (the daemon has stopped)") != NULL);
	free(out);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_selftest_hub_output)
{
	struct agent a;
	char *out = NULL;
	int st;

	reset_sims();
	hubsim_envelope(&H, "{\"poll_interval_seconds\":5,\"blocked\":true}");
	agent_init(&a, &P, &H);
	env_set(&a, "FELHOM_AGENT_HUB_MIN_INTERVAL_SECONDS", "60");   /* the real default */
	st = agent_run_mode(&a, "--selftest=hub", &out);
	T_EQ_INT(st, 0);
	T_CHECK(strstr(out, "selftest=hub") != NULL);
	T_CHECK(strstr(out, "trust fingerprint-pin") != NULL);
	T_CHECK(strstr(out, "\"host_id\": \"host-test\"") != NULL);
	T_CHECK(strstr(out, "\"vmid\": 101") != NULL);
	T_CHECK(strstr(out, "envelope: poll_interval_seconds=5 (adopted 60s) blocked=true") != NULL);
	T_CHECK(strstr(out, "result: ok") != NULL);
	T_EQ_INT(hubsim_stat(&H, "reports"), 1);
	free(out);
	/* the upper bound */
	hubsim_envelope(&H, "{\"poll_interval_seconds\":7200}");
	st = agent_run_mode(&a, "--selftest=hub", &out);
	T_EQ_INT(st, 0);
	T_CHECK(strstr(out, "poll_interval_seconds=7200 (adopted 3600s)") != NULL);
	free(out);
	/* refused key: exit 1, a hint, no key */
	hubsim_fault(&H, "{\"status\":401,\"count\":1}");
	st = agent_run_mode(&a, "--selftest=hub", &out);
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "report: FAILED http_unauthorized (HTTP 401)") != NULL);
	T_CHECK(strstr(out, "hint: the hub refused hub.api_key") != NULL);
	free(out);
	/* node status failing: nothing posted */
	hubsim_reset(&H);
	sim_fault(&P, "{\"method\":\"GET\",\"path_regex\":\"/nodes/pve/status$\",\"status\":500,\"count\":1}");
	st = agent_run_mode(&a, "--selftest=hub", &out);
	T_EQ_INT(st, 1);
	T_CHECK(strstr(out, "collect: FAILED http_server_error (HTTP 500): node_status") != NULL);
	T_EQ_INT(hubsim_stat(&H, "requests"), 0);
	free(out);
	no_secrets(&a, &P, __LINE__);
	agent_done(&a);
}

T_TEST(t_daemon_refuses_bad_hub_config)
{
	struct agent a;
	char *out = NULL, *log;
	int st;

	agent_init(&a, &P, &H);
	env_set(&a, "FELHOM_AGENT_HUB_URL", "http://127.0.0.1:1");
	st = agent_run_mode(&a, NULL, &out);
	T_EQ_INT(st, 1);
	log = agent_log(&a);
	T_CHECK(strstr(log, "hub.url") != NULL);
	free(log);
	free(out);
	agent_done(&a);
}

/* ------------------------------------------------------------ local API */

static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

struct body {
	char b[8192];
	size_t n;
};

static size_t body_cb(char *p, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;
	size_t k = sz * n;

	if (k > sizeof(b->b) - 1 - b->n)
		k = sizeof(b->b) - 1 - b->n;
	memcpy(b->b + b->n, p, k);
	b->n += k;
	b->b[b->n] = '\0';
	return sz * n;
}

/* METHOD https://127.0.0.1:port/path pinned to pin; the status, 0 when
 * no HTTP answer came. */
static long lapi_req(const char *method, int port, const char *path, const char *pin, const char *token,
		     const char *body, struct body *b)
{
	char url[128], auth[256];
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	long status = 0;

	memset(b, 0, sizeof(*b));
	if (!h)
		return 0;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdr = curl_slist_append(hdr, auth);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	}
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return status;
}

static long lapi_get(int port, const char *path, const char *pin, const char *token, struct body *b)
{
	return lapi_req("GET", port, path, pin, token, NULL, b);
}

static void trim_nl(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* The daemon serves the local API from localapi.listen with the store's
 * tokens, feeds /readyz from the hub loop, moves the listener on SIGHUP
 * when localapi.listen changes, and logs no token. */
T_TEST(t_localapi_in_daemon)
{
	struct agent a;
	struct body b;
	char *tok = NULL, *pin = NULL, *log, cfgtxt[256];
	int p1 = free_port(), p2 = free_port(), st, i;
	long s = 0;

	T_CHECK(p1 > 0 && p2 > 0 && p1 != p2);
	reset_sims();
	hubsim_control(&H, "POST", "/envelope", "{\"poll_interval_seconds\":1}", NULL, 0);
	agent_init(&a, &P, &H);
	snprintf(cfgtxt, sizeof(cfgtxt),
		 "{\"localapi\":{\"listen\":\"127.0.0.1:%d\",\"guest_addresses\":{\"101\":[\"127.0.0.1\"]}},"
		 "\"backup\":{\"storage\":\"local\"}}", p1);
	t_write_file(a.cfg, cfgtxt, 0600);
	T_EQ_INT(agent_run_mode2(&a, "--issue-token", "101", &tok), 0);
	T_EQ_INT(agent_run_mode2(&a, "--print-fingerprint=spki", NULL, &pin), 0);
	trim_nl(tok);
	trim_nl(pin);
	T_CHECK(strlen(tok) >= 32);
	T_CHECK(!strncmp(pin, "sha256//", 8));

	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_log(&a, "localapi.start", 20000));
	/* 503 until the first snapshot of Proxmox is taken */
	for (i = 0; i < 100 && (s = lapi_get(p1, "/storage", pin, tok, &b)) != 200; i++)
		sleep_ms(100);
	T_EQ_INT(s, 200);
	T_CHECK(strstr(b.b, "\"ok\":true") != NULL);
	T_EQ_INT(lapi_get(p1, "/storage", pin, "felhom-not-a-token", &b), 401);
	/* disk management is wired (its privileged backend is /bin/false here:
	 * lsblk fails, 503 — not the 501 of an API without it) */
	T_EQ_INT(lapi_get(p1, "/disks", pin, tok, &b), 503);
	T_CHECK(strstr(b.b, "\"ok\":false") != NULL);
	T_EQ_INT(lapi_get(p1, "/healthz", pin, NULL, &b), 200);
	/* ready once the hub took a report and Proxmox was read */
	for (i = 0; i < 100 && (s = lapi_get(p1, "/readyz", pin, NULL, &b)) != 200; i++)
		sleep_ms(100);
	T_EQ_INT(s, 200);
	/* backups through the engine: due, POST (202), status until done */
	T_EQ_INT(lapi_get(p1, "/backup/due", pin, tok, &b), 200);
	T_CHECK(strstr(b.b, "\"due\":true") != NULL);
	T_EQ_INT(lapi_req("POST", p1, "/backup", pin, tok, "{}", &b), 202);
	T_CHECK(strstr(b.b, "\"phase\":\"running\"") != NULL);
	for (i = 0; i < 150; i++) {
		s = lapi_get(p1, "/backup/status", pin, tok, &b);
		if (s != 200 || !strstr(b.b, "\"phase\":\"running\""))
			break;
		sleep_ms(100);
	}
	T_EQ_INT(s, 200);
	T_CHECK(strstr(b.b, "\"phase\":\"done\"") != NULL);
	T_EQ_INT(lapi_get(p1, "/backup/due", pin, tok, &b), 200);
	T_CHECK(strstr(b.b, "\"reason\":\"not_due\"") != NULL);
	/* disk changes wait while the hub blocks mutations; listing does not */
	T_EQ_INT(lapi_req("POST", p1, "/disks/format", pin, tok, "{\"device\":\"sdb\",\"fstype\":\"ext4\"}", &b) > 0, 1);
	T_CHECK(strstr(b.b, "disk changes wait") == NULL);
	hubsim_control(&H, "POST", "/envelope", "{\"blocked\":true}", NULL, 0);
	for (i = 0; i < 100; i++) {
		s = lapi_req("POST", p1, "/disks/format", pin, tok, "{\"device\":\"sdb\",\"fstype\":\"ext4\"}", &b);
		if (strstr(b.b, "disk changes wait"))
			break;
		sleep_ms(100);
	}
	T_EQ_INT(s, 503);
	T_CHECK(strstr(b.b, "\"formatted\":false") != NULL);
	T_EQ_INT(lapi_req("POST", p1, "/disks/eject", pin, tok, "{\"where\":\"/data\"}", &b), 503);
	T_CHECK(strstr(b.b, "disk changes wait") != NULL);
	lapi_get(p1, "/disks", pin, tok, &b);
	T_CHECK(strstr(b.b, "disk changes wait") == NULL);
	hubsim_control(&H, "POST", "/envelope", "{\"blocked\":false}", NULL, 0);
	for (i = 0; i < 100; i++) {
		lapi_req("POST", p1, "/disks/eject", pin, tok, "{\"where\":\"/data\"}", &b);
		if (!strstr(b.b, "disk changes wait"))
			break;
		sleep_ms(100);
	}
	T_CHECK(strstr(b.b, "disk changes wait") == NULL);
	/* a wrong pin fails the handshake */
	T_EQ_INT(lapi_get(p1, "/healthz", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL, &b), 0);

	/* SIGHUP with a new listen address: the API moves */
	snprintf(cfgtxt, sizeof(cfgtxt),
		 "{\"localapi\":{\"listen\":\"127.0.0.1:%d\",\"guest_addresses\":{\"101\":[\"127.0.0.1\"]}},"
		 "\"backup\":{\"storage\":\"local\"}}", p2);
	t_write_file(a.cfg, cfgtxt, 0600);
	kill(a.pid, SIGHUP);
	T_OK(wait_log(&a, "daemon.reloaded", 20000));
	for (i = 0; i < 100 && (s = lapi_get(p2, "/storage", pin, tok, &b)) != 200; i++)
		sleep_ms(100);
	T_EQ_INT(s, 200);
	T_EQ_INT(lapi_get(p1, "/healthz", pin, NULL, &b), 0);

	kill(a.pid, SIGTERM);
	st = agent_wait(&a, 20000);
	T_EQ_INT(st, 0);
	log = agent_log(&a);
	T_CHECK(strstr(log, "localapi.stop") != NULL);
	T_CHECK(strstr(log, "localapi.auth_failed") != NULL);
	T_CHECK(strstr(log, tok) == NULL);
	free(log);
	no_secrets(&a, &P, __LINE__);
	free(tok);
	free(pin);
	agent_done(&a);
}

/* With no listen address and no bridge address the API cannot start; the
 * daemon keeps reporting and says why. */
T_TEST(t_localapi_unavailable_is_not_fatal)
{
	struct agent a;
	char *log;
	int st;

	reset_sims();
	agent_init(&a, &P, &H);
	t_write_file(a.cfg, "{\"localapi\":{\"listen\":\"192.0.2.1:8443\"}}", 0600);
	T_OK(agent_spawn(&a, NULL));
	T_OK(wait_log(&a, "localapi.start_failed", 20000));
	T_OK(wait_stat(&H, "reports", 1, 20000));
	kill(a.pid, SIGTERM);
	st = agent_wait(&a, 20000);
	T_EQ_INT(st, 0);
	log = agent_log(&a);
	T_EQ_INT((long)count_in(log, "level=error event=localapi.start_failed"), 1);
	T_CHECK(strstr(log, "cannot listen on 192.0.2.1:8443") != NULL);
	T_CHECK(strstr(log, "event=daemon.ready") != NULL);
	free(log);
	agent_done(&a);
}

int main(void)
{
	const char *only = getenv("TEST_ONLY");   /* run one test by name while debugging */

	snprintf(agent_bin, sizeof(agent_bin), "%s/felhom-agent", t_build_dir());
	signal(SIGPIPE, SIG_IGN);
	if (sim_start(&P, NULL) || hubsim_start(&H, NULL)) {
		fprintf(stderr, "test_daemon: cannot start the simulators\n");
		sim_stop(&P);
		printf("# passed 0 failed 1\n");
		return 1;
	}
#define RUN(t) do { if (!only || strstr(#t, only)) T_RUN(t); } while (0)
	RUN(t_reports_at_once_then_every_interval_with_notify);
	RUN(t_interval_adoption_and_clamp);
	RUN(t_backoff_function_bounds_and_jitter);
	RUN(t_backoff_growth_then_recovery);
	RUN(t_parked_on_401_probes_slowly_then_recovers);
	RUN(t_parked_on_403_no_storm);
	RUN(t_parked_then_fixed_key_and_reload);
	RUN(t_node_status_failure_skips_post);
	RUN(t_sigterm_during_hung_hub_request);
	RUN(t_sigint_during_hung_proxmox_request);
	RUN(t_sighup_reload_good_and_bad);
	RUN(t_watchdog_stops_when_the_loop_overruns);
	RUN(t_status_command);
	RUN(t_selftest_hub_output);
	RUN(t_daemon_refuses_bad_hub_config);
	RUN(t_localapi_in_daemon);
	RUN(t_localapi_unavailable_is_not_fatal);
	hubsim_stop(&H);
	sim_stop(&P);
	return t_done();
}
