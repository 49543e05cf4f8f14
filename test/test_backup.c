/* test_backup.c — backups behind the local API against test/pvesim: the
 * record codec and a corrupt record, the four /backup/due reasons (one of
 * them from the storage's existing archives), POST -> running -> done as
 * one journaled vzdump (snapshot, zstd, remove=0), a second POST while
 * running, a failed task, status across close/reopen (finished, still in
 * flight, lost before admission), retention with a protected and a golden
 * archive, and the per-guest policy from the config. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "cfg.h"
#include "err.h"
#include "gate.h"
#include "harness.h"
#include "idem.h"
#include "jrnl.h"
#include "recon.h"
#include "sim.h"
#include "store.h"

#define HOST "host-b"
#define VZDUMP_PATH "POST /api2/json/nodes/pve/vzdump"

static struct sim S;
static char g_dir[256];
static atomic_llong clock_offset;

static int64_t test_clock(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL) + (int64_t)atomic_load(&clock_offset);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct fx {
	char dir[300];
	struct cfg *cfg;
	struct store *st;
	struct gate *g;
	struct recon *r;
	struct backup *b;
	struct pve_opts po;
};

/* Opens store, gate, engine and backup module on f->dir with the config
 * text cfg_json (the backup section is what matters). */
static int fx_open(struct fx *f, const char *cfg_json)
{
	static const char *const noenv[] = { NULL };
	struct store_opts so;
	struct gate_opts go;
	struct recon_opts ro;
	struct backup_opts bo;
	char path[400], err[512] = "";

	snprintf(path, sizeof(path), "%s.json", f->dir);
	if (t_write_file(path, cfg_json, 0600) || cfg_load(path, noenv, &f->cfg, err, sizeof(err)) ||
	    cfg_validate(f->cfg, 0, err, sizeof(err))) {
		printf("  cfg: %s\n", err);
		return -1;
	}
	memset(&so, 0, sizeof(so));
	so.dir = f->dir;
	if (store_open(&so, &f->st))
		return -1;
	memset(&go, 0, sizeof(go));
	go.st = f->st;
	go.host_id = HOST;
	go.max_lifetime_seconds = 3600;
	go.clock_skew_seconds = 60;
	go.golden_archives = (const char *const *)f->cfg->backup.golden_archives;
	go.ngolden = f->cfg->backup.ngolden;
	if (gate_new(&go, &f->g, err, sizeof(err))) {
		printf("  gate_new: %s\n", err);
		return -1;
	}
	memset(&f->po, 0, sizeof(f->po));
	f->po.endpoint = S.endpoint;
	f->po.node = "pve";
	f->po.token = S.token;
	f->po.tls_fingerprint = S.fingerprint;
	f->po.request_timeout_ms = 5000;
	f->po.poll_initial_ms = 20;
	f->po.poll_max_ms = 100;
	f->po.task_timeout_ms = 20000;
	memset(&ro, 0, sizeof(ro));
	ro.st = f->st;
	ro.gate = f->g;
	ro.pve = &f->po;
	ro.workers = 2;
	ro.max_mutations = 2;
	ro.lock_wait_ms = 5000;
	ro.post_retry_ms = 50;
	ro.post_retries = 2;
	if (recon_new(&ro, &f->r, err, sizeof(err))) {
		printf("  recon_new: %s\n", err);
		return -1;
	}
	memset(&bo, 0, sizeof(bo));
	bo.st = f->st;
	bo.recon = f->r;
	bo.pve = &f->po;
	bo.cfg = f->cfg;
	bo.host_id = HOST;
	bo.probe_wait_ms = 5000;
	bo.clock = test_clock;
	if (backup_new(&bo, &f->b, err, sizeof(err))) {
		printf("  backup_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int fx_new(struct fx *f, const char *cfg_json)
{
	static unsigned k;

	memset(f, 0, sizeof(f->dir));
	f->cfg = NULL;
	f->st = NULL;
	f->g = NULL;
	f->r = NULL;
	f->b = NULL;
	snprintf(f->dir, sizeof(f->dir), "%s/db-%u", g_dir, ++k);
	return fx_open(f, cfg_json);
}

/* The engine first (its done callbacks reach the backup module), then the rest. */
static void fx_close(struct fx *f)
{
	backup_stop(f->b);
	recon_free(f->r);
	backup_free(f->b);
	gate_free(f->g);
	store_close(f->st);
	cfg_free(f->cfg);
	f->r = NULL;
	f->b = NULL;
	f->g = NULL;
	f->st = NULL;
	f->cfg = NULL;
}

/* Polls status until the phase is not running (at most ms). */
static int wait_phase(struct fx *f, int vmid, struct lapi_backup_job *j, long ms)
{
	long waited = 0;
	int r;

	for (;;) {
		memset(j, 0, sizeof(*j));
		r = backup_status(f->b, vmid, j);
		if (r || strcmp(j->phase, "running") || waited >= ms)
			return r;
		sleep_ms(50);
		waited += 50;
	}
}

static char *requests(void)
{
	char *buf = malloc(1 << 21);

	if (buf && sim_control(&S, "GET", "/requests", NULL, buf, 1 << 21) != 200) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

static char *volumes(void)
{
	char *buf = malloc(1 << 20);

	if (buf && sim_control(&S, "GET", "/volumes", NULL, buf, 1 << 20) != 200) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/* The n-th string of "volids":[...] in a /backups answer. */
static int nth_volid(const char *resp, int n, char *out, size_t outlen)
{
	const char *p = strstr(resp, "\"volids\":[");
	const char *q;
	int i;

	if (!p)
		return -1;
	p += strlen("\"volids\":[");
	for (i = 0; i < n; i++) {
		p = strchr(p, ',');
		if (!p)
			return -1;
		p++;
	}
	if (*p != '"')
		return -1;
	q = strchr(p + 1, '"');
	if (!q || (size_t)(q - p - 1) >= outlen)
		return -1;
	memcpy(out, p + 1, (size_t)(q - p - 1));
	out[q - p - 1] = '\0';
	return 0;
}

/* ============================================================== tests */

T_TEST(t_record_codec_and_corrupt_record)
{
	struct backup_rec r, d;
	unsigned char buf[BACKUP_REC_MAX], bad[BACKUP_REC_MAX + 8];
	size_t n = 0;
	struct fx f;
	struct lapi_backup_job j;
	struct lapi_backup_due due;
	struct store_txn *t = NULL;
	unsigned char key[4] = { 0, 0, 0, 101 };

	memset(&r, 0, sizeof(r));
	r.phase = BACKUP_FAILED;
	strcpy(r.job_id, "backup-101-1700000000-3");
	strcpy(r.error, "failed: task_failed: job errors");
	r.started_at = 1700000000;
	r.finished_at = 1700000100;
	r.last_success_at = 1690000000;
	r.own_since = 1680000000;
	r.probed = true;
	T_OK(backup_rec_encode(&r, buf, &n));
	T_OK(backup_rec_decode(buf, n, &d));
	T_EQ_INT(d.phase, BACKUP_FAILED);
	T_EQ_STR(d.job_id, r.job_id);
	T_EQ_STR(d.error, r.error);
	T_EQ_INT(d.started_at, r.started_at);
	T_EQ_INT(d.finished_at, r.finished_at);
	T_EQ_INT(d.last_success_at, r.last_success_at);
	T_EQ_INT(d.own_since, r.own_since);
	T_CHECK(d.probed);
	/* a version-1 record (no own_since) reads with own_since = started_at */
	{
		unsigned char v1[BACKUP_REC_MAX];
		size_t k = 0;
		memcpy(v1, buf, 27);
		v1[0] = 1;
		k = 27;
		memcpy(v1 + k, buf + 35, n - 35);
		k += n - 35;
		T_OK(backup_rec_decode(v1, k, &d));
		T_EQ_INT(d.own_since, r.started_at);
		T_EQ_STR(d.job_id, r.job_id);
		T_EQ_STR(d.error, r.error);
	}
	/* every truncation, a trailing byte, a bad version, phase or flag */
	for (size_t k = 0; k < n; k++)
		T_ERR(backup_rec_decode(buf, k, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[n] = 'x';
	T_ERR(backup_rec_decode(bad, n + 1, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[0] = 9;
	T_ERR(backup_rec_decode(bad, n, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[1] = BACKUP__PHASE_END;
	T_ERR(backup_rec_decode(bad, n, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[2] = 0x80;
	T_ERR(backup_rec_decode(bad, n, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[3] = 0x80;            /* a negative started_at */
	T_ERR(backup_rec_decode(bad, n, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[35] = 200;            /* job id length past the cap */
	T_ERR(backup_rec_decode(bad, n, &d), FH_ERR_DECODE);
	memcpy(bad, buf, n);
	bad[37] = '\n';           /* a control byte in the job id */
	T_ERR(backup_rec_decode(bad, n, &d), FH_ERR_DECODE);
	/* encode refuses what decode would refuse */
	r.phase = BACKUP__PHASE_END;
	T_ERR(backup_rec_encode(&r, buf, &n), FH_ERR_INVAL);
	r.phase = BACKUP_DONE;
	strcpy(r.error, "two\nlines");
	T_ERR(backup_rec_encode(&r, buf, &n), FH_ERR_INVAL);

	/* a corrupt stored record is a typed error for due and status; a POST replaces it */
	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(store_txn_begin(f.st, true, &t));
	T_OK(store_put(t, STORE_DB_BACKUP, key, sizeof(key), "garbage!", 8));
	T_OK(store_txn_commit(t));
	T_ERR(backup_status(f.b, 101, &j), FH_ERR_DECODE);
	T_ERR(backup_due(f.b, 101, &due), FH_ERR_DECODE);
	memset(&j, 0, sizeof(j));
	T_OK(backup_enqueue(f.b, 101, &j));
	T_EQ_STR(j.phase, "running");
	T_OK(wait_phase(&f, 101, &j, 15000));
	T_EQ_STR(j.phase, "done");
	/* bad vmids never reach the store */
	T_ERR(backup_status(f.b, 99, &j), FH_ERR_INVAL);
	T_ERR(backup_enqueue(f.b, 0, &j), FH_ERR_INVAL);
	fx_close(&f);
}

T_TEST(t_due_reasons)
{
	struct fx f, g;
	struct lapi_backup_due d;
	struct lapi_backup_job j;
	struct backup_policy pol;
	struct backup_stats bs;

	/* 101..103 have one archive on backup-nas a day (+ a minute per guest) old */
	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\",\"guests\":{\"102\":{\"interval_seconds\":604800},"
		       "\"103\":{\"enabled\":false}}}}")) {
		T_CHECK(0);
		return;
	}
	memset(&d, 0, sizeof(d));
	T_OK(backup_due(f.b, 105, &d));
	T_CHECK(d.due);
	T_EQ_STR(d.reason, "never_backed_up");
	memset(&d, 0, sizeof(d));
	T_OK(backup_due(f.b, 101, &d));          /* the existing archive counts, and it is a day old */
	T_CHECK(d.due);
	T_EQ_STR(d.reason, "interval_elapsed");
	memset(&d, 0, sizeof(d));
	T_OK(backup_due(f.b, 102, &d));          /* weekly for this guest: not yet */
	T_CHECK(!d.due);
	T_EQ_STR(d.reason, "not_due");
	memset(&d, 0, sizeof(d));
	T_OK(backup_due(f.b, 103, &d));
	T_CHECK(!d.due);
	T_EQ_STR(d.reason, "disabled");
	backup_stats(f.b, &bs);
	T_EQ_INT(bs.probes, 3);                  /* 101, 102, 105; never 103 */
	/* the look is made once: its result is durable */
	T_OK(backup_due(f.b, 102, &d));
	T_OK(backup_due(f.b, 105, &d));
	backup_stats(f.b, &bs);
	T_EQ_INT(bs.probes, 3);
	/* disabled: POST is refused with a config error, nothing is submitted */
	T_ERR(backup_enqueue(f.b, 103, &j), FH_ERR_CONFIG);
	T_OK(backup_status(f.b, 103, &j));
	T_EQ_STR(j.phase, "idle");
	T_EQ_STR(j.job_id, "");
	backup_policy_of(f.b, 102, &pol);
	T_CHECK(pol.enabled);
	T_EQ_INT(pol.interval_seconds, 604800);
	T_EQ_INT(pol.keep_last, 7);
	T_EQ_STR(pol.storage, "backup-nas");
	T_EQ_STR(pol.mode, "snapshot");
	T_EQ_STR(pol.compress, "zstd");
	fx_close(&f);

	/* no storage configured: every guest is disabled, whatever enabled says */
	if (fx_new(&g, "{\"backup\":{\"enabled\":true}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(backup_due(g.b, 101, &d));
	T_EQ_STR(d.reason, "disabled");
	T_ERR(backup_enqueue(g.b, 101, &j), FH_ERR_CONFIG);
	fx_close(&g);
	/* enabled false section-wide, one guest switched on */
	if (fx_new(&g, "{\"backup\":{\"storage\":\"local\",\"enabled\":false,\"guests\":{\"104\":{\"enabled\":true}}}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(backup_due(g.b, 101, &d));
	T_EQ_STR(d.reason, "disabled");
	T_OK(backup_due(g.b, 104, &d));
	T_EQ_STR(d.reason, "never_backed_up");
	fx_close(&g);
}

T_TEST(t_post_runs_one_vzdump_then_done)
{
	struct fx f;
	struct lapi_backup_job j1, j2, st;
	struct lapi_backup_due d;
	struct backup_stats bs;
	long before;
	char *log;
	const char *v;

	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	sim_reset(&S);
	sim_control(&S, "POST", "/task-seconds", "{\"seconds\":1.5}", NULL, 0);
	before = sim_count_path(&S, VZDUMP_PATH);
	memset(&j1, 0, sizeof(j1));
	T_OK(backup_enqueue(f.b, 105, &j1));
	T_EQ_STR(j1.phase, "running");
	T_CHECK(!strncmp(j1.job_id, "backup-105-", 11));
	/* a second POST while it runs: the same job, nothing new */
	sleep_ms(300);
	memset(&j2, 0, sizeof(j2));
	T_OK(backup_enqueue(f.b, 105, &j2));
	T_EQ_STR(j2.job_id, j1.job_id);
	T_EQ_STR(j2.phase, "running");
	T_OK(backup_status(f.b, 105, &st));
	T_EQ_STR(st.phase, "running");
	T_EQ_STR(st.job_id, j1.job_id);
	T_OK(backup_due(f.b, 105, &d));
	T_CHECK(!d.due);
	T_OK(wait_phase(&f, 105, &st, 20000));
	T_EQ_STR(st.phase, "done");
	T_EQ_STR(st.job_id, j1.job_id);
	T_EQ_STR(st.error, "");
	T_EQ_INT(sim_count_path(&S, VZDUMP_PATH) - before, 1);
	log = requests();
	T_CHECK(log != NULL);
	if (log) {
		v = strstr(log, "/nodes/pve/vzdump\"");
		T_CHECK(v != NULL);
		if (v) {
			const char *end = strchr(v, '}');
			char one[1024];
			size_t n = end ? (size_t)(end - v) : 0;
			if (n >= sizeof(one))
				n = sizeof(one) - 1;
			memcpy(one, v, n);
			one[n] = '\0';
			T_CHECK(strstr(one, "\"mode\":\"snapshot\"") != NULL);
			T_CHECK(strstr(one, "\"compress\":\"zstd\"") != NULL);
			T_CHECK(strstr(one, "\"remove\":\"0\"") != NULL);
			T_CHECK(strstr(one, "\"storage\":\"backup-nas\"") != NULL);
			T_CHECK(strstr(one, "\"vmid\":\"105\"") != NULL);
		}
		T_CHECK(strstr(v ? v + 1 : log, "/nodes/pve/vzdump\"") == NULL);   /* only one */
	}
	free(log);
	/* now backed up: not due until the interval has passed */
	T_OK(backup_due(f.b, 105, &d));
	T_CHECK(!d.due);
	T_EQ_STR(d.reason, "not_due");
	atomic_store(&clock_offset, 86400 + 60);
	T_OK(backup_due(f.b, 105, &d));
	T_CHECK(d.due);
	T_EQ_STR(d.reason, "interval_elapsed");
	atomic_store(&clock_offset, 0);
	backup_wait_idle(f.b);
	backup_stats(f.b, &bs);
	T_EQ_INT(bs.enqueued, 1);
	T_EQ_INT(bs.done, 1);
	sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.3}", NULL, 0);
	fx_close(&f);
}

T_TEST(t_failed_task_gives_failed_with_error)
{
	struct fx f;
	struct lapi_backup_job j;
	struct lapi_backup_due d;

	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	sim_reset(&S);
	sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/vzdump$\",\"kind\":\"task_fail\",\"count\":1,"
		      "\"reason\":\"job errors\"}");
	T_OK(backup_enqueue(f.b, 104, &j));
	T_EQ_STR(j.phase, "running");
	T_OK(wait_phase(&f, 104, &j, 20000));
	T_EQ_STR(j.phase, "failed");
	T_CHECK(j.error[0] != '\0');
	T_CHECK(strstr(j.error, "job errors") != NULL);
	/* still never backed up: due again */
	T_OK(backup_due(f.b, 104, &d));
	T_CHECK(d.due);
	T_EQ_STR(d.reason, "never_backed_up");
	/* a new POST makes a new job */
	{
		struct lapi_backup_job k;
		T_OK(backup_enqueue(f.b, 104, &k));
		T_CHECK(strcmp(k.job_id, j.job_id) != 0);
		T_OK(wait_phase(&f, 104, &k, 20000));
		T_EQ_STR(k.phase, "done");
	}
	fx_close(&f);
}

T_TEST(t_refused_submit_restores_record)
{
	struct fx f;
	struct lapi_backup_job j, k;
	struct backup_stats bs;

	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(backup_enqueue(f.b, 105, &j));
	T_OK(wait_phase(&f, 105, &j, 20000));
	T_EQ_STR(j.phase, "done");
	recon_set_blocked(f.r, true);
	T_ERR(backup_enqueue(f.b, 105, &k), FH_ERR_BLOCKED);
	T_OK(backup_status(f.b, 105, &k));
	T_EQ_STR(k.phase, "done");               /* as before the refused POST */
	T_EQ_STR(k.job_id, j.job_id);
	backup_stats(f.b, &bs);
	T_EQ_INT(bs.refused, 1);
	recon_set_blocked(f.r, false);
	fx_close(&f);
}

T_TEST(t_status_survives_restart)
{
	struct fx f;
	struct lapi_backup_job j, k;
	struct backup_rec rec;
	struct recon_recovery rv;
	char dir[300];

	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", f.dir);
	/* finished before the restart */
	T_OK(backup_enqueue(f.b, 104, &j));
	T_OK(wait_phase(&f, 104, &j, 20000));
	T_EQ_STR(j.phase, "done");
	fx_close(&f);
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	if (fx_open(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(backup_status(f.b, 104, &k));
	T_EQ_STR(k.phase, "done");
	T_EQ_STR(k.job_id, j.job_id);

	/* in flight across the restart: running until the engine's recovery closes it */
	sim_control(&S, "POST", "/task-seconds", "{\"seconds\":3}", NULL, 0);
	T_OK(backup_enqueue(f.b, 105, &j));
	{
		struct idem_rec ir;
		int waited = 0;
		char tasks[8192];
		/* wait for the POST (the engine records the UPID once it has one) */
		while (waited < 5000) {
			if (sim_control(&S, "GET", "/tasks", NULL, tasks, sizeof(tasks)) == 200 &&
			    strstr(tasks, ":vzdump:105:"))
				break;
			sleep_ms(50);
			waited += 50;
		}
		sleep_ms(200);
		T_OK(idem_get(f.st, j.job_id, &ir));
		T_EQ_INT(ir.outcome, TASK_OUT_NONE);
	}
	recon_cancel(f.r);
	fx_close(&f);
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	if (fx_open(&f, "{\"backup\":{\"storage\":\"backup-nas\"}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(backup_status(f.b, 105, &k));
	T_EQ_STR(k.phase, "running");
	T_EQ_STR(k.job_id, j.job_id);
	T_OK(recon_recover(f.r, false, NULL, NULL, &rv));
	T_CHECK(rv.in_flight >= 1);
	T_OK(backup_status(f.b, 105, &k));
	T_EQ_STR(k.phase, "done");               /* learnt from the journal's outcome */
	T_EQ_STR(k.job_id, j.job_id);
	sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.3}", NULL, 0);

	/* a record left running whose job the engine never admitted */
	memset(&rec, 0, sizeof(rec));
	rec.phase = BACKUP_RUNNING;
	strcpy(rec.job_id, "backup-103-1700000000-1");
	rec.started_at = 1700000000;
	T_OK(backup_rec_put(f.st, 103, &rec));
	T_OK(backup_status(f.b, 103, &k));
	T_EQ_STR(k.phase, "failed");
	T_CHECK(strstr(k.error, "interrupted") != NULL);
	T_OK(backup_rec_get(f.st, 103, &rec));
	T_EQ_INT(rec.phase, BACKUP_FAILED);
	fx_close(&f);
}

struct prune_seen {
	int n, backup_source, executed;
	char job_id[RECON_JOB_ID_MAX + 1];
};

static int count_prunes(const struct jrnl_entry *e, void *arg)
{
	struct prune_seen *ps = arg;

	if (strcmp(e->op, "backup_prune"))
		return 0;
	ps->n++;
	ps->backup_source += e->source == JRNL_SRC_BACKUP;
	ps->executed += e->outcome == TASK_OUT_EXECUTED;
	snprintf(ps->job_id, sizeof(ps->job_id), "%s", e->job_id);
	return 0;
}

T_TEST(t_retention_keeps_newest_protected_and_golden)
{
	struct fx f;
	struct lapi_backup_job j;
	struct backup_stats bs;
	char req[512], resp[4096], cfgtext[1024], vol[4][256];
	char *vols;
	long dels_before;
	int64_t now = (int64_t)time(NULL);
	int i;

	/* archives of 106 on backup-nas, newest first: P0 (protected), P1, P2, P3 (golden) */
	snprintf(req, sizeof(req), "{\"storage\":\"backup-nas\",\"vmid\":106,\"ctimes\":[%" PRId64 ",%" PRId64
		 ",%" PRId64 ",%" PRId64 "],\"protected\":[0]}", now - 3600, now - 7200, now - 10800, now - 14400);
	T_EQ_INT(sim_control(&S, "POST", "/backups", req, resp, sizeof(resp)), 200);
	for (i = 0; i < 4; i++)
		T_OK(nth_volid(resp, i, vol[i], sizeof(vol[i])));
	snprintf(cfgtext, sizeof(cfgtext),
		 "{\"backup\":{\"storage\":\"backup-nas\",\"keep_last\":7,\"guests\":{\"106\":{\"keep_last\":2}},"
		 "\"golden_archives\":[\"%s\"]}}", vol[3]);
	if (fx_new(&f, cfgtext)) {
		T_CHECK(0);
		return;
	}
	/* the agent has backed 106 up since before these archives */
	{
		struct backup_rec seed;

		memset(&seed, 0, sizeof(seed));
		seed.phase = BACKUP_DONE;
		strcpy(seed.job_id, "backup-106-1-1");
		seed.started_at = seed.finished_at = seed.last_success_at = now - 14400;
		seed.own_since = now - 20000;
		T_OK(backup_rec_put(f.st, 106, &seed));
	}
	sim_reset(&S);
	dels_before = 0;
	T_OK(backup_enqueue(f.b, 106, &j));
	T_OK(wait_phase(&f, 106, &j, 20000));
	T_EQ_STR(j.phase, "done");
	backup_wait_idle(f.b);
	recon_wait_idle(f.r);
	backup_wait_idle(f.b);
	/* kept: the new archive and P1 (keep_last 2, protected ones not
	 * counted), P0 (protected), P3 (golden); pruned: P2 only */
	vols = volumes();
	T_CHECK(vols != NULL);
	if (vols) {
		T_CHECK(strstr(vols, vol[0]) != NULL);
		T_CHECK(strstr(vols, vol[1]) != NULL);
		if (strstr(vols, vol[2]) != NULL)
			t_failf(__FILE__, __LINE__, "archive %s was not pruned", vol[2]);
		T_CHECK(strstr(vols, vol[3]) != NULL);
	}
	free(vols);
	{
		char *log = requests();
		const char *p = log;
		long dels = 0;
		while (p && (p = strstr(p, "\"method\":\"DELETE\"")) != NULL) {
			dels++;
			p++;
		}
		T_EQ_INT(dels - dels_before, 1);
		free(log);
	}
	backup_stats(f.b, &bs);
	T_EQ_INT(bs.prunes_submitted, 1);
	T_EQ_INT(bs.prunes_done, 1);
	T_EQ_INT(bs.prune_errors, 0);
	/* the prune is a journaled job of its own (source backup), executed */
	{
		struct prune_seen ps;
		char tasks[1 << 14];
		memset(&ps, 0, sizeof(ps));
		T_OK(jrnl_foreach(f.st, count_prunes, &ps));
		T_EQ_INT(ps.n, 1);
		T_EQ_INT(ps.backup_source, 1);
		T_EQ_INT(ps.executed, 1);
		T_CHECK(!strncmp(ps.job_id, "prune-106-", 10));
		T_CHECK(sim_control(&S, "GET", "/tasks", NULL, tasks, sizeof(tasks)) == 200 &&
			strstr(tasks, ":imgdel:106@backup-nas:") != NULL);
	}
	/* a second backup: P1 drops out (the new pair is kept), nothing else */
	T_OK(backup_enqueue(f.b, 106, &j));
	T_OK(wait_phase(&f, 106, &j, 20000));
	T_EQ_STR(j.phase, "done");
	backup_wait_idle(f.b);
	recon_wait_idle(f.r);
	backup_wait_idle(f.b);
	vols = volumes();
	if (vols) {
		T_CHECK(strstr(vols, vol[0]) != NULL);   /* protected */
		T_CHECK(strstr(vols, vol[3]) != NULL);   /* golden */
		T_CHECK(strstr(vols, vol[1]) == NULL);
	}
	free(vols);
	fx_close(&f);
}

/* Archives made before this agent's first backup of the guest (an earlier
 * guest with the same vmid, archives made by hand) are never pruned; the
 * record of a guest Proxmox no longer lists is forgotten, so a reused vmid
 * starts afresh. */
T_TEST(t_retention_spares_other_incarnations_and_forgets_vanished_guests)
{
	struct fx f;
	struct lapi_backup_job j;
	struct backup_stats bs;
	struct backup_rec rec;
	char req[512], resp[4096], vol[3][256];
	char *vols;
	int64_t now = (int64_t)time(NULL);
	const int present[] = { 101, 102, 104 };
	unsigned gone = 99;
	int i;

	snprintf(req, sizeof(req), "{\"storage\":\"backup-nas\",\"vmid\":106,\"ctimes\":[%" PRId64 ",%" PRId64
		 ",%" PRId64 "],\"protected\":[]}", now - 3600, now - 7200, now - 10800);
	T_EQ_INT(sim_control(&S, "POST", "/backups", req, resp, sizeof(resp)), 200);
	for (i = 0; i < 3; i++)
		T_OK(nth_volid(resp, i, vol[i], sizeof(vol[i])));
	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\",\"keep_last\":1}}")) {
		T_CHECK(0);
		return;
	}
	T_OK(backup_enqueue(f.b, 106, &j));
	T_OK(wait_phase(&f, 106, &j, 20000));
	T_EQ_STR(j.phase, "done");
	backup_wait_idle(f.b);
	recon_wait_idle(f.r);
	backup_wait_idle(f.b);
	vols = volumes();
	T_CHECK(vols != NULL);
	for (i = 0; vols && i < 3; i++) {
		if (!strstr(vols, vol[i]))
			t_failf(__FILE__, __LINE__, "archive %s of an earlier incarnation was pruned", vol[i]);
	}
	free(vols);
	backup_stats(f.b, &bs);
	T_EQ_INT(bs.prunes_submitted, 0);
	T_OK(backup_rec_get(f.st, 106, &rec));
	T_CHECK(rec.own_since > 0 && rec.own_since == rec.started_at);

	/* 106 is gone from Proxmox: its record is forgotten; the others stay */
	T_OK(backup_rec_put(f.st, 101, &rec));
	T_ERR(backup_note_present(f.b, present, 0, &gone), FH_ERR_INVAL);
	T_OK(backup_rec_get(f.st, 106, &rec));
	T_OK(backup_note_present(f.b, present, 3, &gone));
	T_EQ_INT(gone, 1);
	T_ERR(backup_rec_get(f.st, 106, &rec), FH_ERR_NOT_FOUND);
	T_OK(backup_rec_get(f.st, 101, &rec));
	fx_close(&f);
}

T_TEST(t_policy_per_guest_from_config)
{
	struct fx f;
	struct lapi_backup_job j;
	char *log;

	if (fx_new(&f, "{\"backup\":{\"storage\":\"backup-nas\",\"mode\":\"snapshot\",\"compress\":\"zstd\","
		       "\"guests\":{\"102\":{\"storage\":\"local\"}}}}")) {
		T_CHECK(0);
		return;
	}
	sim_reset(&S);
	T_OK(backup_enqueue(f.b, 102, &j));
	T_OK(wait_phase(&f, 102, &j, 20000));
	T_EQ_STR(j.phase, "done");
	log = requests();
	T_CHECK(log && strstr(log, "\"storage\":\"local\"") != NULL);
	T_CHECK(log && strstr(log, "\"storage\":\"backup-nas\"") == NULL);
	free(log);
	fx_close(&f);
}

int main(void)
{
	const char *const args[] = { "--guests", "6", "--task-seconds", "0.3", NULL };

	t_tmpdir(g_dir, sizeof(g_dir));
	if (sim_start(&S, args) != 0) {
		printf("FAIL sim_start\n");
		return t_done() | 1;
	}
	T_RUN(t_due_reasons);
	T_RUN(t_record_codec_and_corrupt_record);
	T_RUN(t_post_runs_one_vzdump_then_done);
	T_RUN(t_failed_task_gives_failed_with_error);
	T_RUN(t_refused_submit_restores_record);
	T_RUN(t_status_survives_restart);
	T_RUN(t_retention_keeps_newest_protected_and_golden);
	T_RUN(t_retention_spares_other_incarnations_and_forgets_vanished_guests);
	T_RUN(t_policy_per_guest_from_config);
	sim_stop(&S);
	return t_done();
}
