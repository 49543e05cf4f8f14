/* daemon.c — the hub control loop, signals, reload, systemd notification
 * and the status file; see daemon.h.
 *
 * Threads: the main thread runs the loop; a watchdog thread (only when
 * systemd asked for keep-alives) sends WATCHDOG=1 while the loop's lease
 * (an atomic monotonic deadline the loop renews before each step) holds.
 * Signal handlers only set atomic flags, cancel the current clients and
 * write one byte to a self-pipe that wakes the loop's sleep.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "audit.h"
#include "backup.h"
#include "disk.h"
#include "err.h"
#include "gate.h"
#include "idem.h"
#include "jrnl.h"
#include "json.h"
#include "lapi.h"
#include "log.h"
#include "nonce.h"
#include "outbox.h"
#include "priv.h"
#include "pve.h"
#include "recon.h"
#include "report.h"
#include "sdnotify.h"
#include "store.h"

#define LEASE_SLACK_MS 2000
#define SLEEP_LEASE_MS 5000
#define RELOAD_LEASE_MS 30000
#define STALE_GRACE_S 60
#define REPORT_CAP (64u * 1024 * 1024)
#define DAEMON_MOUNT_ROOT(c) ((c)->storage.mount_root)

/* ---------------------------------------------------------------- time */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_s(void)
{
	return (int64_t)time(NULL);
}

static uint64_t rnd64(void)
{
	static _Thread_local uint64_t x;
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	if (!x)
		x = (uint64_t)mono_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

int64_t daemon_backoff_ms(unsigned failures, int64_t base_ms, int64_t cap_ms, uint64_t rnd)
{
	int64_t ceil = base_ms > 0 ? base_ms : 1, lo;
	unsigned i;

	if (cap_ms < ceil)
		cap_ms = ceil;
	for (i = 1; i < failures && ceil < cap_ms; i++)
		ceil = ceil > cap_ms / 2 ? cap_ms : ceil * 2;
	if (ceil > cap_ms)
		ceil = cap_ms;
	lo = base_ms < 1000 ? base_ms : 1000;
	if (lo < 1)
		lo = 1;
	if (lo > ceil)
		lo = ceil;
	return lo + (int64_t)(rnd % (uint64_t)(ceil - lo + 1));
}

/* ------------------------------------------------------------- signals */

static atomic_int g_stop_sig;          /* the signal that asked us to stop, 0 = none */
static atomic_int g_reload;
static atomic_int g_wake_fd = -1;      /* write end of the self-pipe */
static _Atomic(struct pve_client *) g_pve;
static _Atomic(struct hub_client *) g_hub;
static _Atomic(struct recon *) g_recon;
static atomic_int g_results;           /* the engine put an op result in the outbox */
static _Atomic(struct hub_client *) g_hubx;   /* the engine's hub client */

void daemon_cancel_all(void)
{
	struct pve_client *p = atomic_load(&g_pve);
	struct hub_client *h = atomic_load(&g_hub);
	struct recon *r = atomic_load(&g_recon);

	if (p)
		pve_cancel(p);
	if (h)
		hub_cancel(h);
	if (r)
		recon_cancel(r);
	h = atomic_load(&g_hubx);
	if (h)
		hub_cancel(h);
}

static void on_signal(int sig)
{
	int saved = errno, fd;

	if (sig == SIGHUP) {
		atomic_store(&g_reload, 1);
	} else {
		atomic_store(&g_stop_sig, sig);
		daemon_cancel_all();
	}
	fd = atomic_load(&g_wake_fd);
	if (fd >= 0 && write(fd, "x", 1) < 0) {
		/* the pipe is full: the loop is awake anyway */
	}
	errno = saved;
}

/* ------------------------------------------------------------- clients */

struct clients {
	struct pve_client *pve;
	struct hub_client *hub;
	struct priv *priv;
};

static void clients_free(struct clients *k)
{
	pve_client_free(k->pve);
	hub_client_free(k->hub);
	priv_free(k->priv);
	memset(k, 0, sizeof(*k));
}

static void pve_opts_of(const struct cfg *c, struct pve_opts *po)
{
	memset(po, 0, sizeof(*po));
	po->endpoint = c->proxmox.endpoint;
	po->node = c->proxmox.node;
	po->token = c->proxmox.token;
	po->ca_file = c->proxmox.ca_file;
	po->tls_fingerprint = c->proxmox.tls_fingerprint;
	po->insecure_skip_verify = c->proxmox.insecure_skip_verify;
	po->request_timeout_ms = (long)c->proxmox.timeout_seconds * 1000L;
	po->poll_initial_ms = (long)c->proxmox.task_poll_initial_ms;
	po->poll_max_ms = (long)c->proxmox.task_poll_max_ms;
	po->task_timeout_ms = (long)c->proxmox.task_timeout_seconds * 1000L;
	po->max_guests = (unsigned)c->proxmox.max_guests;
}

/* Builds every client from c; nothing is kept on failure. why names the
 * section and never a secret. */
/* The hub client options from the config (the report's and the engine's). */
static void hub_opts_of(const struct cfg *c, struct hub_opts *ho)
{
	memset(ho, 0, sizeof(*ho));
	ho->url = c->hub.url;
	ho->api_key = c->hub.api_key;
	ho->ca_file = c->hub.ca_file;
	ho->tls_fingerprint = c->hub.tls_fingerprint;
	ho->request_timeout_ms = (long)c->hub.timeout_seconds * 1000L;
}

static void priv_opts_of(const struct cfg *c, struct priv_opts *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->mode = c->privileged.mode && !strcmp(c->privileged.mode, "direct") ? PRIV_MODE_DIRECT : PRIV_MODE_SUDO;
	pr->sudo_path = c->privileged.sudo_path;
	pr->path = c->privileged.path;
	pr->timeout_ms = (long)c->privileged.timeout_seconds * 1000L;
}

static int clients_make(const struct cfg *c, struct clients *out, char *why, size_t whylen)
{
	struct clients k;
	struct pve_opts po;
	struct pve_err pe;
	struct hub_opts ho;
	struct hub_err he;
	struct priv_opts pr;
	int r;

	memset(&k, 0, sizeof(k));
	pve_opts_of(c, &po);
	r = pve_client_new(&po, &k.pve, &pe);
	if (r) {
		snprintf(why, whylen, "proxmox: %s", pe.reason);
		goto out;
	}
	hub_opts_of(c, &ho);
	r = hub_client_new(&ho, &k.hub, &he);
	if (r) {
		snprintf(why, whylen, "%s", he.reason);
		goto out;
	}
	priv_opts_of(c, &pr);
	r = priv_new(&pr, &k.priv);
	if (r) {
		snprintf(why, whylen, "privileged: invalid options (%s)", fh_strerror(r));
		goto out;
	}
	*out = k;
	memset(&k, 0, sizeof(k));
	r = 0;
out:
	clients_free(&k);
	return r;
}

static long connect_ms_of(const struct cfg *c)
{
	long t = (long)c->hub.timeout_seconds * 1000L;

	return t < HUB_DEF_CONNECT_MS ? t : HUB_DEF_CONNECT_MS;
}

/* ------------------------------------------------------------ the engine */

static void on_result(void *arg)
{
	int fd = atomic_load(&g_wake_fd);

	(void)arg;
	atomic_store(&g_results, 1);
	if (fd >= 0 && write(fd, "r", 1) < 0) {
		/* the pipe is full: the loop is awake anyway */
	}
}

void daemon_engine_close(struct daemon_engine *e)
{
	if (!e)
		return;
	backup_stop(e->backup);  /* before the engine: its worker submits retention jobs */
	if (e->recon) {
		if (atomic_load(&g_recon) == e->recon)
			atomic_store(&g_recon, NULL);
		recon_cancel(e->recon);
		recon_free(e->recon);
	}
	backup_free(e->backup);  /* after the engine: it calls the backups' done callbacks while it stops */
	disk_free(e->disk);     /* after the engine: its executor */
	gate_free(e->gate);
	store_close(e->st);
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	memset(e, 0, sizeof(*e));
	e->lock_fd = -1;
}

int daemon_engine_open(const struct cfg *c, bool with_recon, struct daemon_engine *out, char *why, size_t whylen)
{
	struct daemon_engine e;
	struct store_opts so;
	struct gate_opts go;
	struct recon_opts ro;
	struct pve_opts po;
	char dbdir[PATH_MAX], err[512] = "";
	int r;

	memset(&e, 0, sizeof(e));
	e.lock_fd = -1;
	r = recon_lock(c->state_dir, &e.lock_fd);
	if (r) {
		snprintf(why, whylen, "%s: %s", c->state_dir,
			 r == FH_ERR_LOCKED ? "another felhom-agent process runs the engine on this state directory" :
			 "cannot take the engine lock");
		goto out;
	}
	if ((size_t)snprintf(dbdir, sizeof(dbdir), "%s/db", c->state_dir) >= sizeof(dbdir)) {
		r = FH_ERR_CONFIG;
		snprintf(why, whylen, "state_dir too long");
		goto out;
	}
	memset(&so, 0, sizeof(so));
	so.dir = dbdir;
	r = store_open(&so, &e.st);
	if (r) {
		snprintf(why, whylen, "cannot open the store in %s: %s", dbdir, fh_strerror(r));
		goto out;
	}
	memset(&go, 0, sizeof(go));
	go.st = e.st;
	go.signers = (const char *const *)c->authz.signers;
	go.nsigners = c->authz.nsigners;
	go.signers_file = c->authz.signers_file;
	go.host_id = c->hub.host_id && *c->hub.host_id ? c->hub.host_id : "local";
	go.max_lifetime_seconds = c->authz.max_lifetime_seconds;
	go.clock_skew_seconds = c->authz.clock_skew_seconds;
	go.golden_archives = (const char *const *)c->backup.golden_archives;
	go.ngolden = c->backup.ngolden;
	r = gate_new(&go, &e.gate, err, sizeof(err));
	if (r) {
		snprintf(why, whylen, "signers: %s", err);
		goto out;
	}
	if (with_recon) {
		struct disk_opts dko;
		struct priv_opts pr;

		pve_opts_of(c, &po);
		priv_opts_of(c, &pr);
		memset(&dko, 0, sizeof(dko));
		dko.priv = &pr;
		dko.pve = &po;
		dko.st = e.st;
		dko.host_id = go.host_id;
		dko.mount_root = DAEMON_MOUNT_ROOT(c);
		dko.audit_max = (uint64_t)c->recon.audit_max_entries;
		r = disk_new(&dko, &e.disk, err, sizeof(err));
		if (r) {
			snprintf(why, whylen, "disk management: %s", err);
			goto out;
		}
		memset(&ro, 0, sizeof(ro));
		ro.st = e.st;
		ro.gate = e.gate;
		ro.pve = &po;
		ro.workers = (unsigned)c->recon.max_parallel_guests;
		ro.max_per_lane = (unsigned)c->recon.max_queued_per_guest;
		ro.max_queued = (unsigned)c->recon.max_queued;
		ro.max_mutations = (unsigned)c->recon.max_mutations;
		ro.lock_wait_ms = c->recon.lock_wait_seconds * 1000;
		ro.post_retries = (unsigned)c->recon.post_retries;
		ro.audit_max = (uint64_t)c->recon.audit_max_entries;
		ro.idem_retention_s = c->recon.idempotency_retention_seconds;
		ro.on_result = on_result;
		ro.exec_host = disk_exec_wipe;
		ro.exec_host_ctx = e.disk;
		r = recon_new(&ro, &e.recon, err, sizeof(err));
		if (r) {
			snprintf(why, whylen, "%s", err);
			goto out;
		}
		{
			struct backup_opts bo;

			memset(&bo, 0, sizeof(bo));
			bo.st = e.st;
			bo.recon = e.recon;
			bo.pve = &po;
			bo.cfg = c;
			bo.host_id = go.host_id;
			r = backup_new(&bo, &e.backup, err, sizeof(err));
			if (r) {
				snprintf(why, whylen, "backup: %s", err);
				goto out;
			}
		}
	}
	*out = e;
	memset(&e, 0, sizeof(e));
	e.lock_fd = -1;
	r = 0;
out:
	daemon_engine_close(&e);
	return r;
}

/* ---- the hub's engine endpoints ----
 * GET /api/v1/desired-state, GET /api/v1/signed-ops, POST
 * /api/v1/op-results, through a second hub client (same trust, key and
 * limits as the report; hub.h), so the engine's requests never share a
 * body buffer with the report's. */

/* One request; the answer appended to out. why never holds the key. */
static int hubx_call(struct hub_client *hx, const char *method, const char *path, const char *json, size_t len,
		     size_t cap, struct buf *out, long *status, char *why, size_t whylen)
{
	struct hub_err he;
	int r = hub_request(hx, method, path, json, len, cap, out, status, &he);

	if (r)
		snprintf(why, whylen, "%s %s: %.200s", method, path, he.reason);
	return r;
}

/* ---------------------------------------------------------- the watchdog */

struct wd {
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;                   /* under mu */
	atomic_llong lease_ms;       /* keep-alives only while mono_ms() <= lease */
	int64_t period_ms;
	struct sdnotify *n;
};

static void *wd_main(void *arg)
{
	struct wd *w = arg;
	struct timespec ts;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		int64_t due = mono_ms() + w->period_ms;
		ts.tv_sec = (time_t)(due / 1000);
		ts.tv_nsec = (long)(due % 1000) * 1000000L;
		while (!w->stop && mono_ms() < due)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		if (mono_ms() <= atomic_load(&w->lease_ms))
			sdnotify_send(w->n, "WATCHDOG=1");
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int wd_start(struct wd *w, struct sdnotify *n, uint64_t usec)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	w->n = n;
	w->period_ms = (int64_t)(usec / 2000);
	if (w->period_ms < 1)
		w->period_ms = 1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* signals belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&w->th, NULL, wd_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return FH_ERR_NOMEM;
	}
	w->started = true;
	return 0;
}

static void wd_stop(struct wd *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	w->started = false;
}

/* -------------------------------------------------------- status file */

static void g_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void g_kv_str(yajl_gen g, const char *k, const char *v)
{
	g_str(g, k);
	g_str(g, v);
}

static void g_kv_int(yajl_gen g, const char *k, int64_t v)
{
	g_str(g, k);
	yajl_gen_integer(g, (long long)v);
}

static void g_kv_time(yajl_gen g, const char *k, int64_t v)
{
	g_str(g, k);
	if (v > 0)
		yajl_gen_integer(g, (long long)v);
	else
		yajl_gen_null(g);
}

static void g_kv_bool(yajl_gen g, const char *k, bool v)
{
	g_str(g, k);
	yajl_gen_bool(g, v);
}

static int status_json(const struct daemon_status *st, struct buf *out)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *p;
	size_t n;
	int r;

	if (!g)
		return FH_ERR_NOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_map_open(g);
	g_kv_str(g, "agent_version", st->agent_version);
	g_kv_int(g, "pid", st->pid);
	g_kv_str(g, "state", st->state);
	g_kv_time(g, "started_at", st->started_at);
	g_kv_time(g, "updated_at", st->updated_at);
	g_kv_time(g, "last_attempt_at", st->last_attempt_at);
	g_kv_time(g, "last_report_at", st->last_report_at);
	g_kv_time(g, "next_attempt_at", st->next_attempt_at);
	g_kv_time(g, "stale_after", st->stale_after);
	g_kv_str(g, "last_error", st->last_error);
	g_kv_str(g, "last_error_step", st->last_error_step);
	g_kv_str(g, "last_error_reason", st->last_error_reason);
	g_kv_int(g, "last_http_status", st->last_http_status);
	g_kv_int(g, "consecutive_failures", st->consecutive_failures);
	g_kv_int(g, "reports_sent", st->reports_sent);
	g_kv_bool(g, "parked", st->parked);
	g_kv_time(g, "parked_since", st->parked_since);
	g_kv_int(g, "interval_seconds", st->interval_seconds);
	g_kv_bool(g, "ready", st->ready);
	g_kv_str(g, "hub_url", st->hub_url);
	g_str(g, "envelope");
	if (st->have_envelope) {
		const struct hub_envelope *e = &st->envelope;
		yajl_gen_map_open(g);
		g_str(g, "poll_interval_seconds");
		if (e->poll_interval_set)
			yajl_gen_integer(g, (long long)e->poll_interval_seconds);
		else
			yajl_gen_null(g);
		g_kv_bool(g, "blocked", e->blocked);
		g_str(g, "desired_generation");
		if (e->desired_generation_set)
			yajl_gen_integer(g, (long long)e->desired_generation);
		else
			yajl_gen_null(g);
		g_kv_bool(g, "has_signed_ops", e->has_signed_ops);
		yajl_gen_map_close(g);
	} else {
		yajl_gen_null(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &p, &n);
	r = buf_append(out, p, n);
	yajl_gen_free(g);
	return r;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int daemon_status_write(const char *dir, const struct daemon_status *st)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	struct buf b;
	int fd = -1, r = FH_ERR_IO;

	buf_init(&b, DAEMON_STATUS_MAX);
	if ((size_t)snprintf(dst, sizeof(dst), "%s/" DAEMON_STATUS_FILE, dir) >= sizeof(dst) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/." DAEMON_STATUS_FILE ".XXXXXX", dir) >= sizeof(tmp))
		goto out;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		goto out;
	r = status_json(st, &b);
	if (r || buf_appendz(&b, "\n"))
		goto out;
	r = FH_ERR_IO;
	fd = mkstemp(tmp);     /* 0600 */
	if (fd < 0)
		goto out;
	if (fchmod(fd, 0600) || write_all(fd, b.data, b.len) || fdatasync(fd) || close(fd)) {
		fd = -1;
		unlink(tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, dst)) {
		unlink(tmp);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	buf_free(&b);
	return r;
}

static int64_t j_time(const struct json *o, const char *k)
{
	int64_t v = 0;

	return json_int_strict(json_get(o, k), &v) ? 0 : v;
}

static void j_copy(const struct json *o, const char *k, char *dst, size_t n)
{
	if (json_strcpy(json_get(o, k), dst, n))
		dst[0] = '\0';
}

static bool j_bool(const struct json *o, const char *k)
{
	const struct json *j = json_get(o, k);

	return j && j->type == JSON_BOOL && j->b;
}

int daemon_status_read(const char *dir, struct daemon_status *out, char *why, size_t whylen)
{
	const struct json_limits lim = { DAEMON_STATUS_MAX, 8, false };
	struct daemon_status st;
	struct json *root = NULL;
	const struct json *env;
	char path[PATH_MAX];
	struct buf b;
	char chunk[4096];
	struct stat sb;
	ssize_t n;
	int fd, r = FH_ERR_IO;

	buf_init(&b, DAEMON_STATUS_MAX);
	memset(&st, 0, sizeof(st));
	snprintf(path, sizeof(path), "%s/" DAEMON_STATUS_FILE, dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return errno == ENOENT ? FH_ERR_NOT_FOUND : FH_ERR_IO;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		goto out;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		r = buf_append(&b, chunk, (size_t)n);
		if (r) {
			snprintf(why, whylen, "%s is larger than %d bytes", path, DAEMON_STATUS_MAX);
			goto out;
		}
	}
	r = json_parse(b.data ? b.data : "", b.len, &lim, &root, NULL, 0);
	if (r || root->type != JSON_OBJECT) {
		snprintf(why, whylen, "%s is not a status object", path);
		r = r == FH_ERR_NOMEM ? r : FH_ERR_DECODE;
		goto out;
	}
	j_copy(root, "agent_version", st.agent_version, sizeof(st.agent_version));
	st.pid = j_time(root, "pid");
	j_copy(root, "state", st.state, sizeof(st.state));
	st.started_at = j_time(root, "started_at");
	st.updated_at = j_time(root, "updated_at");
	st.last_attempt_at = j_time(root, "last_attempt_at");
	st.last_report_at = j_time(root, "last_report_at");
	st.next_attempt_at = j_time(root, "next_attempt_at");
	st.stale_after = j_time(root, "stale_after");
	j_copy(root, "last_error", st.last_error, sizeof(st.last_error));
	j_copy(root, "last_error_step", st.last_error_step, sizeof(st.last_error_step));
	j_copy(root, "last_error_reason", st.last_error_reason, sizeof(st.last_error_reason));
	st.last_http_status = (long)j_time(root, "last_http_status");
	st.consecutive_failures = j_time(root, "consecutive_failures");
	st.reports_sent = j_time(root, "reports_sent");
	st.parked = j_bool(root, "parked");
	st.parked_since = j_time(root, "parked_since");
	st.interval_seconds = j_time(root, "interval_seconds");
	st.ready = j_bool(root, "ready");
	j_copy(root, "hub_url", st.hub_url, sizeof(st.hub_url));
	env = json_get(root, "envelope");
	if (env && env->type == JSON_OBJECT) {
		st.have_envelope = true;
		st.envelope.poll_interval_set =
			!json_int_strict(json_get(env, "poll_interval_seconds"), &st.envelope.poll_interval_seconds);
		st.envelope.blocked = j_bool(env, "blocked");
		st.envelope.desired_generation_set =
			!json_int_strict(json_get(env, "desired_generation"), &st.envelope.desired_generation);
		st.envelope.has_signed_ops = j_bool(env, "has_signed_ops");
	}
	if (!st.state[0] || !st.pid) {
		snprintf(why, whylen, "%s lacks state or pid", path);
		r = FH_ERR_DECODE;
		goto out;
	}
	*out = st;
	r = 0;
out:
	json_free(root);
	buf_free(&b);
	close(fd);
	return r;
}

static void fmt_ago(char *dst, size_t n, int64_t t, int64_t now)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char ts[32];
	int64_t d = now - t;

	if (t <= 0) {
		snprintf(dst, n, "never");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (d >= 0)
		snprintf(dst, n, "%s (%llds ago)", ts, (long long)d);
	else
		snprintf(dst, n, "%s (in %llds)", ts, (long long)-d);
}

int daemon_status_print(const struct daemon_status *st, int64_t now, FILE *out)
{
	char a[96], b[96];
	const char *why = NULL;
	bool alive = st->pid > 0 && (kill((pid_t)st->pid, 0) == 0 || errno == EPERM);

	if (!strcmp(st->state, "stopped"))
		why = "the daemon has stopped";
	else if (!alive)
		why = "the daemon is not running (stale status file)";
	else if (st->stale_after > 0 && now > st->stale_after)
		why = "the status has not been updated in time: the daemon looks stuck";
	else if (st->parked)
		why = "parked: the hub refused the API key (401/403); fix hub.api_key, then reload";
	else if (!strcmp(st->state, "starting"))
		why = "no report attempted yet";
	else if (strcmp(st->state, "running"))
		why = "the last cycle failed; retrying with backoff";

	fprintf(out, "felhom-agent %s (pid %lld): %s\n", st->agent_version, (long long)st->pid, st->state);
	fprintf(out, "  hub:              %s\n", st->hub_url[0] ? st->hub_url : "-");
	fmt_ago(a, sizeof(a), st->last_report_at, now);
	fprintf(out, "  last report:      %s, %lld sent since start\n", a, (long long)st->reports_sent);
	fmt_ago(a, sizeof(a), st->last_attempt_at, now);
	fprintf(out, "  last attempt:     %s\n", a);
	if (st->last_error[0]) {
		fprintf(out, "  last error:       %s in %s", st->last_error, st->last_error_step);
		if (st->last_http_status)
			fprintf(out, " (HTTP %ld)", st->last_http_status);
		if (st->last_error_reason[0])
			fprintf(out, ": %s", st->last_error_reason);
		fprintf(out, "; %lld consecutive failure%s\n", (long long)st->consecutive_failures,
			st->consecutive_failures == 1 ? "" : "s");
	} else {
		fprintf(out, "  last error:       none\n");
	}
	fmt_ago(a, sizeof(a), st->parked_since, now);
	fprintf(out, "  parked:           %s%s%s\n", st->parked ? "YES since " : "no", st->parked ? a : "", "");
	fprintf(out, "  interval:         %llds\n", (long long)st->interval_seconds);
	fmt_ago(b, sizeof(b), st->next_attempt_at, now);
	fprintf(out, "  next attempt:     %s\n", strcmp(st->state, "stopped") ? b : "-");
	if (st->have_envelope) {
		fprintf(out, "  envelope:         poll_interval_seconds=");
		if (st->envelope.poll_interval_set)
			fprintf(out, "%lld", (long long)st->envelope.poll_interval_seconds);
		else
			fprintf(out, "-");
		fprintf(out, " blocked=%s desired_generation=", st->envelope.blocked ? "true" : "false");
		if (st->envelope.desired_generation_set)
			fprintf(out, "%lld", (long long)st->envelope.desired_generation);
		else
			fprintf(out, "-");
		fprintf(out, " has_signed_ops=%s\n", st->envelope.has_signed_ops ? "true" : "false");
	} else {
		fprintf(out, "  envelope:         none yet\n");
	}
	fmt_ago(a, sizeof(a), st->updated_at, now);
	fprintf(out, "  status written:   %s\n", a);
	fprintf(out, "health: %s%s%s\n", why ? "UNHEALTHY (" : "healthy", why ? why : "", why ? ")" : "");
	return why ? 1 : 0;
}

/* ---------------------------------------------------------- the daemon */

struct daemon {
	const struct daemon_opts *opts;
	struct cfg **cfgp;
	struct clients k;
	struct sdnotify *notify;
	struct wd wd;
	struct daemon_status st;
	struct buf report;
	int wake[2];
	int64_t next_ms;             /* monotonic time of the next cycle */
	int64_t interval_s;
	unsigned failures;
	unsigned long last_collect_requests;
	bool have_env;
	struct hub_envelope env;
	bool notify_warned, status_warned;
	/* the reconcile engine */
	struct daemon_engine eng;
	struct hub_client *hx;          /* the engine's hub requests; NULL until started */
	pthread_t rec_th;
	bool rec_started;
	atomic_bool rec_done;
	int rec_rc;
	struct recon_recovery rec;
	struct recon_desired desired;
	bool have_desired;
	int64_t desired_gen_seen;    /* envelope generation handled; -1: none yet */
	int64_t last_awaiting;       /* desired guests not on the host, last logged */
	int64_t next_prune_ms;
	uint64_t audit_failures_seen, store_failures_seen;
	struct buf audit_tail;
	bool results_warned;
	/* the local API (lapi.h); NULL when disabled or not started yet */
	struct lapi *lapi;
	atomic_bool disk_changes_ok;  /* recovery done and the hub does not block mutations */
	int64_t lapi_retry_ms;       /* monotonic time of the next start attempt; 0: none */
	bool lapi_warned;
};

static const struct cfg *C(const struct daemon *d)
{
	return *d->cfgp;
}

static void lease(struct daemon *d, int64_t until_ms)
{
	atomic_store(&d->wd.lease_ms, (long long)until_ms);
}

static int64_t collect_budget_ms(const struct daemon *d)
{
	const struct cfg *c = C(d);

	return (int64_t)(4 + d->last_collect_requests) * c->proxmox.timeout_seconds * 1000 +
	       2 * c->privileged.timeout_seconds * 1000 + REPORT_PROBE_TIMEOUT_MS + LEASE_SLACK_MS +
	       (c->proxmox.tls_fingerprint && *c->proxmox.tls_fingerprint && d->last_collect_requests == 0 ?
		10000 : 0);
}

static int64_t post_budget_ms(const struct daemon *d)
{
	const struct cfg *c = C(d);

	return c->hub.timeout_seconds * 1000 + connect_ms_of(c) + LEASE_SLACK_MS;
}

static void notify(struct daemon *d, const char *msg)
{
	if (sdnotify_send(d->notify, msg) && !d->notify_warned) {
		d->notify_warned = true;
		log_event(LOG_WARN, "daemon.notify_failed", "error", fh_strerror(FH_ERR_IO), "msg",
			  "cannot send to NOTIFY_SOCKET; systemd will not hear from the agent", NULL);
	}
}

static void notify_status(struct daemon *d)
{
	char msg[512];

	if (d->st.parked)
		snprintf(msg, sizeof(msg), "STATUS=parked: the hub refused the API key (%s); probing every %llds",
			 d->st.last_error, (long long)C(d)->hub.parked_probe_seconds);
	else if (d->st.last_error[0])
		snprintf(msg, sizeof(msg), "STATUS=retrying after %lld failure(s): %s in %s",
			 (long long)d->st.consecutive_failures, d->st.last_error, d->st.last_error_step);
	else if (d->st.reports_sent)
		snprintf(msg, sizeof(msg), "STATUS=reporting every %llds; %lld reports sent",
			 (long long)d->interval_s, (long long)d->st.reports_sent);
	else
		snprintf(msg, sizeof(msg), "STATUS=starting");
	notify(d, msg);
}

static void write_status(struct daemon *d, const char *state)
{
	int64_t now = wall_s(), left = d->next_ms - mono_ms();

	if (state != d->st.state)
		snprintf(d->st.state, sizeof(d->st.state), "%s", state);
	d->st.updated_at = now;
	d->st.interval_seconds = d->interval_s;
	d->st.next_attempt_at = now + (left > 0 ? (left + 999) / 1000 : 0);
	d->st.stale_after = d->st.next_attempt_at + (collect_budget_ms(d) + post_budget_ms(d)) / 1000 +
			    STALE_GRACE_S;
	snprintf(d->st.hub_url, sizeof(d->st.hub_url), "%s", d->k.hub ? hub_report_url(d->k.hub) : "");
	if (daemon_status_write(C(d)->state_dir, &d->st)) {
		if (!d->status_warned)
			log_event(LOG_WARN, "daemon.status_write_failed", "error", fh_strerror(FH_ERR_IO), "dir",
				  C(d)->state_dir, NULL);
		d->status_warned = true;
	} else {
		d->status_warned = false;
	}
	notify_status(d);
}

static void schedule_in(struct daemon *d, int64_t ms)
{
	d->next_ms = mono_ms() + ms;
}

static void register_secrets(const struct cfg *c)
{
	const char *eq;

	if (c->proxmox.token) {
		log_add_secret(c->proxmox.token);
		eq = strrchr(c->proxmox.token, '=');
		if (eq)
			log_add_secret(eq + 1);
	}
	if (c->hub.api_key)
		log_add_secret(c->hub.api_key);
}

static void publish(const struct clients *k)
{
	atomic_store(&g_pve, k->pve);
	atomic_store(&g_hub, k->hub);
}

static char *i2s(char *b, size_t n, int64_t v)
{
	snprintf(b, n, "%lld", (long long)v);
	return b;
}

static void adopt_envelope(struct daemon *d, const struct hub_envelope *e)
{
	const struct cfg *c = C(d);
	int64_t want = d->interval_s;
	bool changed = !d->have_env;
	char a[24], b[24], g[24];

	if (e->poll_interval_set)
		want = hub_clamp_interval(e->poll_interval_seconds, c->hub.min_interval_seconds, HUB_INTERVAL_MAX);
	if (d->have_env)
		changed = want != d->interval_s || e->blocked != d->env.blocked ||
			  e->desired_generation != d->env.desired_generation ||
			  e->has_signed_ops != d->env.has_signed_ops ||
			  e->poll_interval_seconds != d->env.poll_interval_seconds;
	d->interval_s = want;
	d->env = *e;
	d->have_env = true;
	d->st.have_envelope = true;
	d->st.envelope = *e;
	if (changed)
		log_event(LOG_INFO, "hub.envelope", "poll_interval_seconds",
			  e->poll_interval_set ? i2s(a, sizeof(a), e->poll_interval_seconds) : "-", "interval_adopted",
			  i2s(b, sizeof(b), want), "blocked", e->blocked ? "true" : "false", "desired_generation",
			  e->desired_generation_set ? i2s(g, sizeof(g), e->desired_generation) : "-",
			  "has_signed_ops", e->has_signed_ops ? "true" : "false", NULL);
}

static void note_error(struct daemon *d, const char *step, int code, long http, const char *reason)
{
	snprintf(d->st.last_error, sizeof(d->st.last_error), "%s", fh_strerror(code));
	snprintf(d->st.last_error_step, sizeof(d->st.last_error_step), "%s", step);
	snprintf(d->st.last_error_reason, sizeof(d->st.last_error_reason), "%s", reason ? reason : "");
	d->st.last_http_status = http;
}

static int64_t parked_delay_ms(const struct cfg *c)
{
	int64_t p = c->hub.parked_probe_seconds * 1000, j = p / 10;

	return p - j + (int64_t)(rnd64() % (uint64_t)(2 * j + 1));
}

/* A failed cycle: backoff, or the next parked probe. One log line. */
static void cycle_failed(struct daemon *d, const char *step, int code, long http, const char *reason,
			 const char *detail)
{
	const struct cfg *c = C(d);
	char a[24], b[24], h[24];
	int64_t delay;

	note_error(d, step, code, http, reason);
	if (d->st.parked) {
		delay = parked_delay_ms(c);
		schedule_in(d, delay);
		log_event(LOG_WARN, "hub.parked", "error", fh_strerror(code), "step", step, "http_status",
			  http ? i2s(h, sizeof(h), http) : "", "reason", reason, "next_probe_in_s",
			  i2s(b, sizeof(b), (delay + 999) / 1000), NULL);
		write_status(d, "parked");
		return;
	}
	d->failures++;
	d->st.consecutive_failures = d->failures;
	delay = daemon_backoff_ms(d->failures, c->hub.backoff_initial_ms, c->hub.backoff_max_ms, rnd64());
	schedule_in(d, delay);
	log_event(LOG_WARN, !strcmp(step, "collect") ? "hub.collect_failed" : "hub.report_failed", "error",
		  fh_strerror(code), "step", detail ? detail : step, "http_status", http ? i2s(h, sizeof(h), http) : "",
		  "reason", reason, "attempt", i2s(a, sizeof(a), d->failures), "retry_in_ms",
		  i2s(b, sizeof(b), delay), NULL);
	write_status(d, "backoff");
}

static void park(struct daemon *d, int code, const struct hub_err *he)
{
	if (!d->st.parked) {
		d->st.parked = true;
		d->st.parked_since = wall_s();
	}
	d->failures = 0;
	d->st.consecutive_failures = 0;
	cycle_failed(d, "report", code, he->http_status, he->reason, NULL);
}

/* ---- the engine inside the loop ---- */

static void recovery_row(const struct recon_recovery_row *row, void *arg)
{
	char id[24], vm[24];

	(void)arg;
	log_event(row->outcome == TASK_OUT_FAILED ? LOG_WARN : LOG_INFO, "recon.recovery", "id",
		  i2s(id, sizeof(id), (int64_t)row->id), "job_id", row->job_id, "op", row->op, "vmid",
		  row->vmid > 0 ? i2s(vm, sizeof(vm), row->vmid) : "-", "state", task_state_name(row->state), "found",
		  row->found ? row->found : "", "action", row->action ? row->action : "", "outcome",
		  task_outcome_name(row->outcome), "upid", row->upid, "detail", row->detail, NULL);
}

static void *recovery_main(void *arg)
{
	struct daemon *d = arg;

	d->rec_rc = recon_recover(d->eng.recon, false, recovery_row, NULL, &d->rec);
	atomic_store(&d->rec_done, true);
	on_result(NULL);       /* wake the loop */
	return NULL;
}

static bool str_diff(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && b && strcmp(a, b));
}

/* ---- the local API (lapi.h) ----
 * Runs beside the engine: it needs the store (token hashes) and stops
 * before the store closes. A listener that cannot start (the bridge has no
 * address yet at boot, the port is taken) does not stop the daemon: the
 * error is logged and the start retried at the next report cycle, at most
 * every LOCALAPI_RETRY_MS. */
#define LOCALAPI_RETRY_MS 30000

static void localapi_event(void *ctx, const struct lapi_event *ev)
{
	char name[48], vm[24], cnt[24], sup[24];

	(void)ctx;
	snprintf(name, sizeof(name), "localapi.%s", ev->name ? ev->name : "event");
	log_event(ev->kind == LAPI_EV_TOKENS_REVOKED ? LOG_INFO : LOG_WARN, name, "addr", ev->addr, "vmid",
		  ev->vmid ? i2s(vm, sizeof(vm), ev->vmid) : "", "reason", ev->reason ? ev->reason : "", "error",
		  ev->code ? fh_strerror(ev->code) : "", "count", ev->count ? i2s(cnt, sizeof(cnt), (int64_t)ev->count) : "",
		  "suppressed", ev->suppressed ? i2s(sup, sizeof(sup), (int64_t)ev->suppressed) : "", NULL);
}

/* The disk endpoints. Listing always; assign, eject and format only once
 * recovery has resolved the journal and while the hub does not block
 * mutations (like every other change), else 503 with the reason (format:
 * in a FormatResult, which is all the controller reads). */
static int localapi_disks(void *ctx, enum lapi_disk_op op, int vmid, const char *body, size_t len, int *status,
			  struct buf *data, char *err, size_t errlen)
{
	struct daemon *d = ctx;
	static const char why[] = "disk changes wait: recovery in progress or mutations blocked by the hub";

	if (op != LAPI_DISK_LIST && !atomic_load(&d->disk_changes_ok)) {
		*status = 503;
		snprintf(err, errlen, "%s", why);
		if (op == LAPI_DISK_FORMAT)
			return buf_printf(data,
					  "{\"vmid\":%d,\"device\":\"\",\"formatted\":false,\"data_bearing\":false,"
					  "\"reason\":\"%s\"}",
					  vmid, why);
		return 0;
	}
	return disk_lapi_call(d->eng.disk, op, vmid, body, len, status, data, err, errlen);
}

static bool localapi_disabled(const struct cfg *c)
{
	return c->localapi.listen_set && c->localapi.listen && !*c->localapi.listen;
}

static void localapi_start(struct daemon *d)
{
	const struct cfg *c = C(d);
	struct lapi_opts lo;
	struct pve_opts po;
	struct priv_opts pr;
	char why[256] = "", port[24];
	int r;

	d->lapi_retry_ms = 0;
	if (d->lapi || !d->eng.st || localapi_disabled(c))
		return;
	memset(&lo, 0, sizeof(lo));
	lo.listen = c->localapi.listen_set ? c->localapi.listen : NULL;
	lo.state_dir = c->state_dir;
	lo.store = d->eng.st;
	lo.guest_addresses = c->localapi.guest_addresses;
	lo.naddrs = c->localapi.naddrs;
	lo.monitor_addresses = (const char *const *)c->localapi.monitor_addresses;
	lo.nmonitor = c->localapi.nmonitors;
	pve_opts_of(c, &po);
	priv_opts_of(c, &pr);
	lo.pve = &po;
	lo.priv = &pr;
	/* /readyz: the hub answered within three report periods (and a minute) */
	lo.hub_fresh_seconds = 3 * (d->interval_s > 0 ? d->interval_s : c->hub.poll_seconds) + 60;
	lo.on_event = localapi_event;
	r = lapi_start(&lo, &d->lapi, why, sizeof(why));
	if (r) {
		d->lapi = NULL;
		d->lapi_retry_ms = mono_ms() + LOCALAPI_RETRY_MS;
		log_event(d->lapi_warned ? LOG_DEBUG : LOG_ERROR, "localapi.start_failed", "error", fh_strerror(r),
			  "reason", why, "msg", "the local API is down; retrying at the next cycle", NULL);
		d->lapi_warned = true;
		return;
	}
	d->lapi_warned = false;
	if (!d->lapi)
		return;
	if (d->eng.disk)
		lapi_set_disks(d->lapi, localapi_disks, d);
	if (d->eng.backup) {
		struct lapi_backend be;

		backup_lapi_backend(d->eng.backup, &be);
		lapi_set_backend(d->lapi, &be, d->eng.backup);
	}
	if (d->st.last_report_at > 0 && !d->st.parked && !d->failures)
		lapi_note_hub(d->lapi, d->st.last_report_at);
	log_event(LOG_INFO, "localapi.start", "listen", lo.listen ? lo.listen : "bridge " LAPI_DEFAULT_BRIDGE, "port",
		  i2s(port, sizeof(port), lapi_port(d->lapi)), NULL);
}

static void localapi_stop(struct daemon *d)
{
	if (!d->lapi)
		return;
	lapi_stop(d->lapi);
	d->lapi = NULL;
	log_event(LOG_INFO, "localapi.stop", NULL);
}

static bool localapi_settings_changed(const struct cfg *o, const struct cfg *n)
{
	size_t i;

	if (o->localapi.listen_set != n->localapi.listen_set || str_diff(o->localapi.listen, n->localapi.listen) ||
	    o->localapi.naddrs != n->localapi.naddrs || o->localapi.nmonitors != n->localapi.nmonitors ||
	    str_diff(o->privileged.mode, n->privileged.mode) ||
	    str_diff(o->privileged.sudo_path, n->privileged.sudo_path) ||
	    str_diff(o->privileged.path, n->privileged.path) ||
	    o->privileged.timeout_seconds != n->privileged.timeout_seconds)
		return true;
	for (i = 0; i < o->localapi.naddrs; i++)
		if (o->localapi.guest_addresses[i].vmid != n->localapi.guest_addresses[i].vmid ||
		    str_diff(o->localapi.guest_addresses[i].addr, n->localapi.guest_addresses[i].addr))
			return true;
	for (i = 0; i < o->localapi.nmonitors; i++)
		if (str_diff(o->localapi.monitor_addresses[i], n->localapi.monitor_addresses[i]))
			return true;
	return false;
}

/* Opens the engine and starts recovery on a helper thread. */
static int engine_start(struct daemon *d)
{
	sigset_t all, old;
	char why[512];
	int r;

	atomic_store(&d->rec_done, false);
	atomic_store(&d->disk_changes_ok, false);
	d->desired_gen_seen = -1;
	r = daemon_engine_open(C(d), true, &d->eng, why, sizeof(why));
	if (r) {
		log_event(LOG_ERROR, "recon.open_failed", "error", fh_strerror(r), "reason", why, NULL);
		return r;
	}
	atomic_store(&g_recon, d->eng.recon);
	{
		struct hub_opts ho;
		struct hub_err he;

		hub_opts_of(C(d), &ho);
		r = hub_client_new(&ho, &d->hx, &he);
		if (r) {
			log_event(LOG_ERROR, "recon.hub_client", "error", fh_strerror(r), "reason", he.reason, NULL);
			daemon_engine_close(&d->eng);
			return r;
		}
		atomic_store(&g_hubx, d->hx);
	}
	if (gate_nsigners(d->eng.gate) == 0)
		log_event(LOG_WARN, "gate.no_signers", "msg",
			  "no operator signers: every destructive operation stays pending_signature", NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&d->rec_th, NULL, recovery_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		atomic_store(&g_hubx, NULL);
		hub_client_free(d->hx);
		d->hx = NULL;
		daemon_engine_close(&d->eng);
		return FH_ERR_NOMEM;
	}
	d->rec_started = true;
	localapi_start(d);
	log_event(LOG_INFO, "recon.start", "signers", i2s(why, 24, (int64_t)gate_nsigners(d->eng.gate)), NULL);
	return 0;
}

static void engine_stop(struct daemon *d)
{
	localapi_stop(d);
	if (d->eng.recon)
		recon_cancel(d->eng.recon);
	if (d->hx)
		hub_cancel(d->hx);
	if (d->rec_started) {
		pthread_join(d->rec_th, NULL);
		d->rec_started = false;
	}
	atomic_store(&g_hubx, NULL);
	hub_client_free(d->hx);
	d->hx = NULL;
	daemon_engine_close(&d->eng);
	recon_desired_free(&d->desired);
	d->have_desired = false;
	sig_thread_done();
}

static bool recovered(struct daemon *d)
{
	char a[24], b[24], c[24], e[24], f[24], g[24], h[24];

	if (!atomic_load(&d->rec_done))
		return false;
	if (d->rec_started) {
		atomic_store(&d->disk_changes_ok, d->eng.recon && !recon_blocked(d->eng.recon));
		pthread_join(d->rec_th, NULL);
		d->rec_started = false;
		log_event(d->rec_rc ? LOG_WARN : LOG_INFO, "recon.recovered", "error",
			  d->rec_rc ? fh_strerror(d->rec_rc) : "", "in_flight", i2s(a, sizeof(a), (int64_t)d->rec.in_flight),
			  "closed", i2s(b, sizeof(b), (int64_t)(d->rec.closed + d->rec.awaited)), "reposted",
			  i2s(c, sizeof(c), (int64_t)d->rec.reposted), "left", i2s(e, sizeof(e), (int64_t)d->rec.left),
			  "jobs", i2s(f, sizeof(f), (int64_t)d->rec.jobs), "continued",
			  i2s(g, sizeof(g), (int64_t)d->rec.continued), "jobs_failed",
			  i2s(h, sizeof(h), (int64_t)d->rec.jobs_failed), NULL);
	}
	return true;
}

/* POSTs waiting op results, oldest first, a batch at a time. */
static void deliver_results(struct daemon *d)
{
	struct buf b;
	char why[256];
	int i;

	atomic_store(&g_results, 0);
	if (!d->eng.st || !d->hx)
		return;
	buf_init(&b, HUB_DEF_MAX_RESPONSE * 16);
	for (i = 0; i < 16; i++) {
		uint64_t through = 0;
		long st = 0;
		int r;

		buf_reset(&b);
		r = outbox_batch(d->eng.st, OUTBOX_BATCH_MAX, &b, &through);
		if (r || !through)
			break;
		lease(d, mono_ms() + post_budget_ms(d));
		{
			struct buf ans;
			buf_init(&ans, HUB_DEF_MAX_RESPONSE);
			r = hubx_call(d->hx, "POST", "/api/v1/op-results", b.data ? b.data : "", b.len,
				      HUB_DEF_MAX_RESPONSE, &ans, &st, why, sizeof(why));
			buf_free(&ans);
		}
		if (r) {
			if (!d->results_warned)
				log_event(LOG_WARN, "hub.op_results_failed", "error", fh_strerror(r), "reason", why, NULL);
			d->results_warned = true;
			break;
		}
		d->results_warned = false;
		r = outbox_ack(d->eng.st, through);
		if (r) {
			log_event(LOG_WARN, "recon.outbox_ack_failed", "error", fh_strerror(r), NULL);
			break;
		}
	}
	buf_free(&b);
}

/* GET the desired state when the envelope's generation moved. */
static void fetch_desired(struct daemon *d, int64_t gen)
{
	struct recon_desired nd;
	struct buf ans;
	char why[256], g[24];
	long st = 0;
	int r;

	if (gen == d->desired_gen_seen)
		return;
	if (gen <= 0) {
		if (d->have_desired)
			log_event(LOG_INFO, "recon.desired_cleared", "msg", "no desired state published", NULL);
		recon_desired_free(&d->desired);
		d->have_desired = false;
		d->desired_gen_seen = gen;
		return;
	}
	lease(d, mono_ms() + post_budget_ms(d));
	buf_init(&ans, RECON_DESIRED_MAX_BYTES);
	r = hubx_call(d->hx, "GET", "/api/v1/desired-state", NULL, 0, RECON_DESIRED_MAX_BYTES, &ans, &st, why,
		      sizeof(why));
	if (r == FH_ERR_NOT_FOUND) {
		buf_free(&ans);
		recon_desired_free(&d->desired);
		d->have_desired = false;
		d->desired_gen_seen = gen;
		log_event(LOG_INFO, "recon.desired_cleared", "msg", "the hub has no desired state (404)", NULL);
		return;
	}
	if (r) {
		buf_free(&ans);
		log_event(LOG_WARN, "hub.desired_state_failed", "error", fh_strerror(r), "reason", why, NULL);
		return;     /* kept as it was; tried again next cycle */
	}
	r = recon_desired_parse(buf_str(&ans), ans.len, (size_t)C(d)->proxmox.max_guests, &nd, why, sizeof(why));
	buf_free(&ans);
	d->desired_gen_seen = gen;
	if (r) {
		/* an invalid document changes nothing at all */
		log_event(LOG_ERROR, "recon.desired_invalid", "error", fh_strerror(r), "reason", why, "generation",
			  i2s(g, sizeof(g), gen), NULL);
		recon_desired_free(&d->desired);
		d->have_desired = false;
		return;
	}
	recon_desired_free(&d->desired);
	d->desired = nd;
	d->have_desired = true;
	log_event(LOG_INFO, "recon.desired", "generation", i2s(g, sizeof(g), nd.generation), "guests",
		  i2s(why, 24, (int64_t)nd.n), NULL);
}

static void fetch_signed_ops(struct daemon *d)
{
	struct recon_op_entry *e = NULL;
	struct buf ans;
	char why[256], a[24], b[24];
	size_t n = 0, i, queued = 0, decided = 0;
	long st = 0;
	int r;

	lease(d, mono_ms() + post_budget_ms(d));
	buf_init(&ans, RECON_OPS_MAX_BYTES);
	r = hubx_call(d->hx, "GET", "/api/v1/signed-ops", NULL, 0, RECON_OPS_MAX_BYTES, &ans, &st, why, sizeof(why));
	if (r) {
		buf_free(&ans);
		log_event(LOG_WARN, "hub.signed_ops_failed", "error", fh_strerror(r), "reason", why, NULL);
		return;
	}
	r = recon_ops_parse(buf_str(&ans), ans.len, &e, &n, why, sizeof(why));
	buf_free(&ans);
	if (r) {
		log_event(LOG_WARN, "recon.signed_ops_invalid", "error", fh_strerror(r), "reason", why, NULL);
		return;
	}
	for (i = 0; i < n; i++) {
		enum task_outcome o = TASK_OUT_NONE;

		r = recon_signed_op(d->eng.recon, &e[i], wall_s(), &o);
		if (r) {
			log_event(LOG_WARN, "recon.op_not_taken", "id", e[i].id, "error", fh_strerror(r), NULL);
			continue;
		}
		if (o == TASK_OUT_NONE)
			queued++;
		else
			decided++;
	}
	recon_ops_free(e, n);
	if (n)
		log_event(LOG_INFO, "recon.signed_ops", "queued", i2s(a, sizeof(a), (int64_t)queued), "decided",
			  i2s(b, sizeof(b), (int64_t)decided), NULL);
}

static void prune(struct daemon *d)
{
	const struct cfg *c = C(d);
	int64_t now = wall_s();
	uint64_t n = 0;
	unsigned k = 0;

	if (mono_ms() < d->next_prune_ms)
		return;
	d->next_prune_ms = mono_ms() + DAEMON_PRUNE_PERIOD_MS;
	if (jrnl_prune(d->eng.st, (uint64_t)c->recon.journal_keep_closed, 256, &n) ||
	    idem_prune(d->eng.st, now, 256, &n) || nonce_prune(d->eng.st, now - c->authz.clock_skew_seconds, 256, &k) ||
	    audit_prune(d->eng.st, (uint64_t)c->recon.audit_max_entries, 256, &n) ||
	    (d->eng.disk && disk_pending_prune(d->eng.disk, now, NULL)))
		log_event(LOG_WARN, "recon.prune_failed", "msg", "store pruning failed; retried next hour", NULL);
}

/* After an accepted report: blocked, results, desired state, signed ops,
 * the planner. */
static void engine_step(struct daemon *d, const struct hub_envelope *env)
{
	struct recon_stats rs;
	struct recon_pass ps;
	char a[24], b[24], c[24];

	if (!d->eng.recon)
		return;
	recon_set_blocked(d->eng.recon, env->blocked);
	atomic_store(&d->disk_changes_ok, atomic_load(&d->rec_done) && !env->blocked);
	deliver_results(d);
	recon_stats(d->eng.recon, &rs);
	if (rs.audit_failures > d->audit_failures_seen)
		log_event(LOG_WARN, "recon.audit_write_failed", "count",
			  i2s(a, sizeof(a), (int64_t)(rs.audit_failures - d->audit_failures_seen)), "msg",
			  "audit records could not be written; the decisions stand", NULL);
	if (rs.store_failures > d->store_failures_seen)
		log_event(LOG_ERROR, "recon.journal_write_failed", "count",
			  i2s(a, sizeof(a), (int64_t)(rs.store_failures - d->store_failures_seen)), "msg",
			  "journal writes failed after a POST; recovery resolves them", NULL);
	d->audit_failures_seen = rs.audit_failures;
	d->store_failures_seen = rs.store_failures;
	if (!recovered(d) || env->blocked)
		return;
	fetch_desired(d, env->desired_generation_set ? env->desired_generation : 0);
	if (env->has_signed_ops)
		fetch_signed_ops(d);
	if (d->have_desired && !recon_plan_pass(d->eng.recon, &d->desired, &ps) &&
	    (ps.submitted || ps.read_error || (int64_t)ps.awaiting != d->last_awaiting)) {
		d->last_awaiting = (int64_t)ps.awaiting;
		log_event(ps.read_error ? LOG_WARN : LOG_INFO, "recon.plan", "generation",
			  i2s(a, sizeof(a), d->desired.generation), "submitted", i2s(b, sizeof(b), (int64_t)ps.submitted),
			  "awaiting_provisioning", i2s(c, sizeof(c), (int64_t)ps.awaiting), "error",
			  ps.read_error ? fh_strerror(ps.read_error) : "", NULL);
	}
	deliver_results(d);
	prune(d);
}

/* The guests Proxmox lists: backup records of guests that are gone are
 * forgotten, so a reused vmid inherits nothing (backup.h). */
static void note_guests(void *ctx, const struct pve_guest *g, size_t n)
{
	struct daemon *d = ctx;
	unsigned gone = 0;
	char a[24];
	int *v;
	size_t i;
	int r;

	if (!d->eng.backup || !n)
		return;
	v = malloc(n * sizeof(*v));
	if (!v)
		return;
	for (i = 0; i < n; i++)
		v[i] = g[i].vmid;
	r = backup_note_present(d->eng.backup, v, n, &gone);
	free(v);
	if (r)
		log_event(LOG_WARN, "backup.forget_failed", "error", fh_strerror(r), NULL);
	else if (gone)
		log_event(LOG_INFO, "backup.forgotten", "guests", i2s(a, sizeof(a), gone), "msg",
			  "backup records of guests Proxmox no longer lists", NULL);
}

static void cycle(struct daemon *d)
{
	const struct cfg *c = C(d);
	struct report_sources src;
	struct report_err re;
	struct hub_envelope env;
	struct hub_err he;
	struct pve_stats ps0, ps1;
	char a[24], b[24];
	int r;

	d->st.last_attempt_at = wall_s();
	if (!d->lapi && d->lapi_retry_ms && mono_ms() >= d->lapi_retry_ms)
		localapi_start(d);
	lease(d, mono_ms() + collect_budget_ms(d));
	memset(&src, 0, sizeof(src));
	src.pve = d->k.pve;
	src.priv = d->k.priv;
	src.host_id = c->hub.host_id;
	src.agent_version = FH_VERSION;
	src.on_guests = note_guests;
	src.guests_ctx = d;
	buf_reset(&d->audit_tail);
	if (d->eng.st && audit_tail_json(d->eng.st, DAEMON_AUDIT_TAIL, &d->audit_tail) == 0)
		src.audit_tail_json = buf_str(&d->audit_tail);
	buf_reset(&d->report);
	pve_stats(d->k.pve, &ps0);
	r = report_collect(&src, &d->report, &re);
	pve_stats(d->k.pve, &ps1);
	if (atomic_load(&g_stop_sig))
		return;
	if (r) {
		cycle_failed(d, "collect", r, re.pve.http_status, re.pve.reason, re.step[0] ? re.step : "collect");
		return;
	}
	d->last_collect_requests = ps1.requests - ps0.requests;
	if (re.specs_dropped)
		log_event(LOG_WARN, "report.spec_dropped", "guests", i2s(a, sizeof(a), re.specs_dropped), "vmid",
			  i2s(b, sizeof(b), re.spec_vmid), "error", fh_strerror(re.spec_code), NULL);
	if (!d->st.ready) {
		d->st.ready = true;
		notify(d, "READY=1");
		log_event(LOG_INFO, "daemon.ready", "msg", "first collection succeeded", NULL);
	}
	lease(d, mono_ms() + post_budget_ms(d));
	r = hub_post_report(d->k.hub, d->report.data, d->report.len, &env, &he);
	if (atomic_load(&g_stop_sig))
		return;
	if (r == FH_ERR_HTTP_401 || r == FH_ERR_HTTP_403) {
		park(d, r, &he);
		return;
	}
	if (r) {
		cycle_failed(d, "report", r, he.http_status, he.reason, NULL);
		return;
	}
	if (d->st.parked)
		log_event(LOG_INFO, "hub.unparked", "msg", "the hub accepted the report again", NULL);
	else if (d->failures)
		log_event(LOG_INFO, "hub.recovered", "failures", i2s(a, sizeof(a), d->failures), NULL);
	else if (!d->st.reports_sent)
		log_event(LOG_INFO, "hub.first_report", "bytes", i2s(a, sizeof(a), (int64_t)d->report.len), NULL);
	d->st.parked = false;
	d->st.parked_since = 0;
	d->failures = 0;
	d->st.consecutive_failures = 0;
	d->st.reports_sent++;
	d->st.last_report_at = wall_s();
	if (d->lapi)
		lapi_note_hub(d->lapi, d->st.last_report_at);
	d->st.last_error[0] = d->st.last_error_step[0] = d->st.last_error_reason[0] = '\0';
	d->st.last_http_status = 0;
	adopt_envelope(d, &env);
	engine_step(d, &env);
	if (atomic_load(&g_stop_sig))
		return;
	schedule_in(d, d->interval_s * 1000);
	log_event(LOG_DEBUG, "hub.report", "bytes", i2s(a, sizeof(a), (int64_t)d->report.len), "next_in_s",
		  i2s(b, sizeof(b), d->interval_s), NULL);
	write_status(d, "running");
}

static bool hub_settings_changed(const struct cfg *o, const struct cfg *n)
{
#define DIFF(f) ((o->f == NULL) != (n->f == NULL) || (o->f && n->f && strcmp(o->f, n->f)))
	return DIFF(hub.url) || DIFF(hub.api_key) || DIFF(hub.ca_file) || DIFF(hub.tls_fingerprint) ||
	       o->hub.timeout_seconds != n->hub.timeout_seconds;
#undef DIFF
}

/* The backup policy, golden archives, disk management and privileged
 * settings the engine's companions were built from. */
static bool engine_parts_changed(const struct cfg *o, const struct cfg *n)
{
	size_t i;

	if (str_diff(o->backup.storage, n->backup.storage) || str_diff(o->backup.mode, n->backup.mode) ||
	    str_diff(o->backup.compress, n->backup.compress) || o->backup.enabled != n->backup.enabled ||
	    o->backup.interval_seconds != n->backup.interval_seconds || o->backup.keep_last != n->backup.keep_last ||
	    o->backup.nguests != n->backup.nguests || o->backup.ngolden != n->backup.ngolden ||
	    str_diff(o->storage.mount_root, n->storage.mount_root) || str_diff(o->privileged.mode, n->privileged.mode) ||
	    str_diff(o->privileged.sudo_path, n->privileged.sudo_path) ||
	    str_diff(o->privileged.path, n->privileged.path) ||
	    o->privileged.timeout_seconds != n->privileged.timeout_seconds)
		return true;
	for (i = 0; i < o->backup.nguests; i++) {
		const struct cfg_backup_guest *x = &o->backup.guests[i], *y = &n->backup.guests[i];
		if (x->vmid != y->vmid || x->enabled != y->enabled || x->interval_seconds != y->interval_seconds ||
		    x->keep_last != y->keep_last || str_diff(x->storage, y->storage))
			return true;
	}
	for (i = 0; i < o->backup.ngolden; i++)
		if (str_diff(o->backup.golden_archives[i], n->backup.golden_archives[i]))
			return true;
	return false;
}

/* Settings the engine was built from. */
static bool engine_settings_changed(const struct cfg *o, const struct cfg *n)
{
	size_t i;

	if (engine_parts_changed(o, n))
		return true;
	if (str_diff(o->state_dir, n->state_dir) || str_diff(o->proxmox.endpoint, n->proxmox.endpoint) ||
	    str_diff(o->proxmox.node, n->proxmox.node) || str_diff(o->proxmox.token, n->proxmox.token) ||
	    str_diff(o->proxmox.ca_file, n->proxmox.ca_file) ||
	    str_diff(o->proxmox.tls_fingerprint, n->proxmox.tls_fingerprint) ||
	    o->proxmox.insecure_skip_verify != n->proxmox.insecure_skip_verify ||
	    o->proxmox.timeout_seconds != n->proxmox.timeout_seconds ||
	    o->proxmox.task_timeout_seconds != n->proxmox.task_timeout_seconds ||
	    o->proxmox.task_poll_initial_ms != n->proxmox.task_poll_initial_ms ||
	    o->proxmox.task_poll_max_ms != n->proxmox.task_poll_max_ms ||
	    o->proxmox.max_guests != n->proxmox.max_guests || str_diff(o->hub.url, n->hub.url) ||
	    str_diff(o->hub.host_id, n->hub.host_id) || str_diff(o->hub.api_key, n->hub.api_key) ||
	    str_diff(o->hub.ca_file, n->hub.ca_file) || str_diff(o->hub.tls_fingerprint, n->hub.tls_fingerprint) ||
	    o->hub.timeout_seconds != n->hub.timeout_seconds ||
	    str_diff(o->authz.signers_file, n->authz.signers_file) || o->authz.nsigners != n->authz.nsigners ||
	    o->authz.max_lifetime_seconds != n->authz.max_lifetime_seconds ||
	    o->authz.clock_skew_seconds != n->authz.clock_skew_seconds ||
	    memcmp(&o->recon, &n->recon, sizeof(o->recon)))
		return true;
	for (i = 0; i < o->authz.nsigners; i++)
		if (str_diff(o->authz.signers[i], n->authz.signers[i]))
			return true;
	/* a signers file may have changed behind the same name */
	return n->authz.signers_file && *n->authz.signers_file;
}

static void reload(struct daemon *d)
{
	char msg[128], err[512];
	struct cfg *nc = NULL, *old;
	struct clients nk, ok;
	bool changed, engine_changed, lapi_changed;
	int r;

	sdnotify_reloading_msg(msg, sizeof(msg));
	notify(d, msg);
	lease(d, mono_ms() + RELOAD_LEASE_MS);
	memset(&nk, 0, sizeof(nk));
	err[0] = '\0';
	r = cfg_load(d->opts->config_path, NULL, &nc, err, sizeof(err));
	if (!r && d->opts->state_dir)
		r = cfg_set_state_dir(nc, d->opts->state_dir);
	if (!r)
		r = cfg_validate(nc, CFG_NEED_PROXMOX | CFG_NEED_HUB, err, sizeof(err));
	if (!r)
		r = clients_make(nc, &nk, err, sizeof(err));
	if (r) {
		log_event(LOG_ERROR, "daemon.reload_rejected", "error", fh_strerror(r), "reason", err, "msg",
			  "keeping the running configuration", NULL);
		cfg_free(nc);
		if (d->st.ready)
			notify(d, "READY=1");
		notify_status(d);
		return;
	}
	old = *d->cfgp;
	changed = hub_settings_changed(old, nc);
	engine_changed = engine_settings_changed(old, nc);
	lapi_changed = !engine_changed && localapi_settings_changed(old, nc);
	if (engine_changed)
		engine_stop(d);
	else if (lapi_changed)
		localapi_stop(d);    /* running jobs stay in the journal for the new engine's recovery */
	ok = d->k;
	d->k = nk;
	publish(&d->k);
	*d->cfgp = nc;
	clients_free(&ok);
	cfg_free(old);
	{
		int lvl = log_level_parse(nc->log.level), fmt = log_format_parse(nc->log.format);
		log_setup((enum log_level)lvl, (enum log_format)fmt, stderr);
	}
	log_clear_secrets();
	register_secrets(nc);
	d->last_collect_requests = 0;
	if (d->have_env && d->env.poll_interval_set)
		d->interval_s = hub_clamp_interval(d->env.poll_interval_seconds, nc->hub.min_interval_seconds,
						   HUB_INTERVAL_MAX);
	else
		d->interval_s = nc->hub.poll_seconds;
	if (changed || d->st.parked || d->failures) {
		/* an operator acted: try now (parked mode ends only when the hub
		 * accepts a report; a refusal keeps it with a fresh period) */
		d->failures = 0;
		d->st.consecutive_failures = 0;
		schedule_in(d, 0);
	}
	if (engine_changed && engine_start(d))
		log_event(LOG_ERROR, "recon.disabled", "msg",
			  "the engine could not start with the new configuration: no mutation until it can", NULL);
	if (lapi_changed)
		localapi_start(d);
	log_event(LOG_INFO, "daemon.reloaded", "hub_changed", changed ? "yes" : "no", "engine_rebuilt",
		  engine_changed ? "yes" : "no", NULL);
	if (d->st.ready)
		notify(d, "READY=1");
	write_status(d, d->st.state[0] ? d->st.state : "starting");
}

static void drain(int fd)
{
	char tmp[64];

	while (read(fd, tmp, sizeof(tmp)) > 0)
		;
}

static int setup_signals(struct sigaction *old_term, struct sigaction *old_int, struct sigaction *old_hup)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGTERM, &sa, old_term) || sigaction(SIGINT, &sa, old_int) || sigaction(SIGHUP, &sa, old_hup))
		return FH_ERR_IO;
	return 0;
}

int daemon_run(const struct daemon_opts *o, struct cfg **cfgp)
{
	struct daemon d;
	struct sigaction ot, oi, oh;
	char why[512], a[24], b[24];
	uint64_t wd_usec;
	int r = FH_ERR_IO, sig;
	bool signals_set = false;

	memset(&d, 0, sizeof(d));
	d.opts = o;
	d.cfgp = cfgp;
	d.wake[0] = d.wake[1] = -1;
	buf_init(&d.report, REPORT_CAP);
	buf_init(&d.audit_tail, REPORT_AUDIT_MAX_BYTES);
	d.eng.lock_fd = -1;
	atomic_init(&d.rec_done, false);
	atomic_init(&d.disk_changes_ok, false);
	atomic_store(&g_results, 0);
	atomic_init(&d.wd.lease_ms, (long long)mono_ms() + 60000);
	atomic_store(&g_stop_sig, 0);
	atomic_store(&g_reload, 0);
	if (pipe2(d.wake, O_CLOEXEC | O_NONBLOCK))
		goto out;
	atomic_store(&g_wake_fd, d.wake[1]);
	r = setup_signals(&ot, &oi, &oh);
	if (r)
		goto out;
	signals_set = true;
	r = sdnotify_open(NULL, &d.notify);
	if (r) {
		log_event(LOG_WARN, "daemon.notify_unavailable", "error", fh_strerror(r), "msg",
			  "NOTIFY_SOCKET is not usable; running without systemd notification", NULL);
		r = sdnotify_open((const char *const[]){ NULL }, &d.notify);
		if (r)
			goto out;
	}
	r = clients_make(C(&d), &d.k, why, sizeof(why));
	if (r) {
		log_event(LOG_ERROR, "daemon.clients", "error", fh_strerror(r), "reason", why, NULL);
		goto out;
	}
	publish(&d.k);
	r = engine_start(&d);
	if (r)
		goto out;
	if (atomic_load(&g_stop_sig))
		daemon_cancel_all();
	wd_usec = sdnotify_watchdog_usec(d.notify);
	if (wd_usec && wd_start(&d.wd, d.notify, wd_usec)) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	d.st.pid = getpid();
	d.st.started_at = wall_s();
	snprintf(d.st.agent_version, sizeof(d.st.agent_version), "%s", FH_VERSION);
	d.interval_s = C(&d)->hub.poll_seconds;
	schedule_in(&d, 0);
	log_event(LOG_INFO, "daemon.start", "version", FH_VERSION, "hub", hub_report_url(d.k.hub), "trust",
		  hub_trust_name(d.k.hub), "interval_s", i2s(a, sizeof(a), d.interval_s), "watchdog_ms",
		  i2s(b, sizeof(b), (int64_t)(wd_usec / 1000)), "notify",
		  sdnotify_enabled(d.notify) ? "yes" : "no", NULL);
	write_status(&d, "starting");

	while (!atomic_load(&g_stop_sig)) {
		int64_t now, wait;
		struct pollfd pfd;

		if (atomic_exchange(&g_reload, 0)) {
			reload(&d);
			continue;
		}
		if (atomic_load(&g_results)) {
			atomic_store(&g_results, 0);
			if (d.eng.recon && recovered(&d))
				deliver_results(&d);
			continue;
		}
		now = mono_ms();
		if (now >= d.next_ms) {
			cycle(&d);
			continue;
		}
		wait = d.next_ms - now;
		lease(&d, d.next_ms + SLEEP_LEASE_MS);
		pfd.fd = d.wake[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, wait > INT_MAX ? INT_MAX : (int)wait) > 0)
			drain(d.wake[0]);
	}
	sig = atomic_load(&g_stop_sig);
	notify(&d, "STOPPING=1");
	log_event(LOG_INFO, "daemon.stop", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
	d.next_ms = mono_ms();
	write_status(&d, "stopped");
	r = 0;
out:
	engine_stop(&d);
	atomic_store(&g_pve, NULL);
	atomic_store(&g_hub, NULL);
	wd_stop(&d.wd);
	if (signals_set) {
		sigaction(SIGTERM, &ot, NULL);
		sigaction(SIGINT, &oi, NULL);
		sigaction(SIGHUP, &oh, NULL);
	}
	atomic_store(&g_wake_fd, -1);
	if (d.wake[0] >= 0)
		close(d.wake[0]);
	if (d.wake[1] >= 0)
		close(d.wake[1]);
	clients_free(&d.k);
	sdnotify_close(d.notify);
	buf_free(&d.report);
	buf_free(&d.audit_tail);
	return r;
}

/* ---------------------------------------------------- --selftest=hub */

int daemon_once(const struct cfg *c, struct daemon_once *out)
{
	struct clients k;
	struct report_sources src;
	struct report_err re;
	struct hub_err he;
	struct pve_stats ps;
	struct hub_stats hs;
	int r;

	memset(out, 0, sizeof(*out));
	buf_init(&out->report, REPORT_CAP);
	memset(&k, 0, sizeof(k));
	r = clients_make(c, &k, out->reason, sizeof(out->reason));
	if (r) {
		snprintf(out->step, sizeof(out->step), "clients");
		out->code = r;
		return r;
	}
	publish(&k);
	snprintf(out->trust, sizeof(out->trust), "%s", hub_trust_name(k.hub));
	snprintf(out->url, sizeof(out->url), "%s", hub_report_url(k.hub));
	memset(&src, 0, sizeof(src));
	src.pve = k.pve;
	src.priv = k.priv;
	src.host_id = c->hub.host_id;
	src.agent_version = FH_VERSION;
	r = report_collect(&src, &out->report, &re);
	if (r) {
		snprintf(out->step, sizeof(out->step), "collect");
		snprintf(out->reason, sizeof(out->reason), "%s%s%s", re.step, re.pve.reason[0] ? ": " : "",
			 re.pve.reason);
		out->http_status = re.pve.http_status;
		goto out;
	}
	r = hub_post_report(k.hub, out->report.data, out->report.len, &out->env, &he);
	if (r) {
		snprintf(out->step, sizeof(out->step), "report");
		snprintf(out->reason, sizeof(out->reason), "%s", he.reason);
		out->http_status = he.http_status;
		goto out;
	}
	out->posted = true;
	out->interval = out->env.poll_interval_set ?
		hub_clamp_interval(out->env.poll_interval_seconds, c->hub.min_interval_seconds, HUB_INTERVAL_MAX) :
		c->hub.poll_seconds;
out:
	out->code = r;
	pve_stats(k.pve, &ps);
	hub_stats(k.hub, &hs);
	out->pve_requests = ps.requests;
	out->hub_requests = hs.requests;
	atomic_store(&g_pve, NULL);
	atomic_store(&g_hub, NULL);
	clients_free(&k);
	return r;
}

void daemon_once_free(struct daemon_once *o)
{
	buf_free(&o->report);
}
