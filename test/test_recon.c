/* test_recon.c — the reconcile engine: the serializer (order per lane,
 * parallel lanes up to the cap, queue caps and typed overflow, drop on
 * free; concurrent submitters, also under ThreadSanitizer), desired-state
 * validation and the pure plan, planner round trips against test/pvesim
 * (a converged guest plans nothing; memory that is not MiB-aligned
 * converges in one pass; a guest only in actual is never touched),
 * Proxmox task semantics (already running, transient retries, config lock
 * wait, global mutation cap), blocked, recovery of every kind of in-flight
 * entry (backup_prune's rule included), a planned stop of a customer guest
 * held for a signature, and the outbox delivered by the daemon to
 * test/hubsim. Multi-step jobs (snapshot -> rollback -> delete ALWAYS)
 * stopped during step 1, between steps 1 and 2, and during a failing
 * step 2 are finished by recovery (each POST once against pvesim's
 * request log, the idempotency outcome and the op result once), and an
 * unreadable job record closes its job failed. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "gate.h"
#include "harness.h"
#include "idem.h"
#include "jrnl.h"
#include "json.h"
#include "outbox.h"
#include "recon.h"
#include "sim.h"
#include "store.h"

#define HOST "host-r"

static struct sim S;
static char g_dir[256];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ======================================================= the serializer */

#define LANES 8
#define PER_LANE 40

struct qstate {
	atomic_int in_lane[LANES + 1];       /* jobs running per lane now */
	atomic_int overlap;                  /* a lane ran two jobs at once */
	atomic_int order_bad;                /* a lane ran out of submit order */
	atomic_int ran;
	atomic_int dropped;
	pthread_mutex_t mu;
	int next[LANES + 1];                 /* next sequence number expected per lane */
	atomic_int hold;                     /* jobs wait while set */
	int sleep_us;
};

struct qj {
	struct qstate *s;
	int lane, seq;
};

static void qj_run(void *arg, unsigned worker)
{
	struct qj *j = arg;
	struct qstate *s = j->s;

	(void)worker;
	if (atomic_fetch_add(&s->in_lane[j->lane], 1) != 0)
		atomic_store(&s->overlap, 1);
	pthread_mutex_lock(&s->mu);
	if (s->next[j->lane] != j->seq)
		atomic_store(&s->order_bad, 1);
	s->next[j->lane] = j->seq + 1;
	pthread_mutex_unlock(&s->mu);
	while (atomic_load(&s->hold))
		sleep_ms(1);
	if (s->sleep_us)
		usleep((useconds_t)s->sleep_us);
	atomic_fetch_sub(&s->in_lane[j->lane], 1);
	atomic_fetch_add(&s->ran, 1);
	free(j);
}

static void qj_drop(void *arg)
{
	struct qj *j = arg;

	atomic_fetch_add(&j->s->dropped, 1);
	free(j);
}

static int qsubmit(struct recon_queue *q, struct qstate *s, int lane, int seq)
{
	struct qj *j = malloc(sizeof(*j));
	int r;

	j->s = s;
	j->lane = lane;
	j->seq = seq;
	r = recon_queue_submit(q, lane, qj_run, qj_drop, j);
	if (r)
		free(j);
	return r;
}

static void qstate_init(struct qstate *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
}

struct submitter {
	struct recon_queue *q;
	struct qstate *s;
	int lane;
};

static void *submit_lane(void *arg)
{
	struct submitter *sb = arg;
	int i;

	for (i = 0; i < PER_LANE; i++)
		while (qsubmit(sb->q, sb->s, sb->lane, i) == FH_ERR_QUEUE_FULL)
			sleep_ms(1);
	return NULL;
}

T_TEST(t_queue_order_and_parallelism)
{
	struct recon_queue_opts o = { 4, 8, 64 };
	struct recon_queue *q = NULL;
	struct recon_queue_stats st;
	struct qstate s;
	struct submitter sb[LANES];
	pthread_t th[LANES];
	int i;

	qstate_init(&s);
	s.sleep_us = 2000;
	T_OK(recon_queue_new(&o, &q));
	if (!q)
		return;
	/* one submitter thread per lane, all at once */
	for (i = 0; i < LANES; i++) {
		sb[i].q = q;
		sb[i].s = &s;
		sb[i].lane = i + 1;
		pthread_create(&th[i], NULL, submit_lane, &sb[i]);
	}
	for (i = 0; i < LANES; i++)
		pthread_join(th[i], NULL);
	recon_queue_wait_idle(q);
	recon_queue_stats(q, &st);
	T_EQ_INT(atomic_load(&s.ran), LANES * PER_LANE);
	T_EQ_INT(atomic_load(&s.overlap), 0);      /* one job at a time per guest */
	T_EQ_INT(atomic_load(&s.order_bad), 0);    /* in submit order */
	T_EQ_INT(st.max_running, 4);                /* lanes in parallel, up to the cap */
	T_EQ_INT(st.ran, LANES * PER_LANE);
	recon_queue_free(q);
	pthread_mutex_destroy(&s.mu);
}

T_TEST(t_queue_one_lane_is_serial)
{
	struct recon_queue_opts o = { 4, 100, 100 };
	struct recon_queue *q = NULL;
	struct recon_queue_stats st;
	struct qstate s;
	int i;

	qstate_init(&s);
	s.sleep_us = 1000;
	T_OK(recon_queue_new(&o, &q));
	if (!q)
		return;
	for (i = 0; i < 20; i++)
		T_OK(qsubmit(q, &s, 3, i));
	recon_queue_wait_idle(q);
	recon_queue_stats(q, &st);
	T_EQ_INT(st.max_running, 1);
	T_EQ_INT(atomic_load(&s.order_bad), 0);
	recon_queue_free(q);
	pthread_mutex_destroy(&s.mu);
}

T_TEST(t_queue_caps_refuse_and_drop)
{
	struct recon_queue_opts o = { 2, 3, 5 };
	struct recon_queue *q = NULL;
	struct recon_queue_stats st;
	struct qstate s;
	long t0;
	int i;

	qstate_init(&s);
	atomic_store(&s.hold, 1);
	T_OK(recon_queue_new(&o, &q));
	if (!q)
		return;
	/* lane 1: one running (held) + 3 waiting; the 4th waiting is refused */
	T_OK(qsubmit(q, &s, 1, 0));
	for (t0 = now_ms(); recon_queue_lane_busy(q, 1) != 1 || (recon_queue_stats(q, &st), st.running != 1);) {
		if (now_ms() - t0 > 5000)
			break;
		sleep_ms(1);
	}
	for (i = 1; i <= 3; i++)
		T_OK(qsubmit(q, &s, 1, i));
	t0 = now_ms();
	T_ERR(qsubmit(q, &s, 1, 4), FH_ERR_QUEUE_FULL);
	T_CHECK(now_ms() - t0 < 100);     /* a refusal, not a wait */
	T_EQ_INT(recon_queue_lane_busy(q, 1), 4);
	/* the whole queue: 3 waiting in lane 1 + 2 more = 5; the 6th refused */
	T_OK(qsubmit(q, &s, 2, 0));
	for (t0 = now_ms(); (recon_queue_stats(q, &st), st.running != 2) && now_ms() - t0 < 5000;)
		sleep_ms(1);
	T_OK(qsubmit(q, &s, 2, 1));
	T_OK(qsubmit(q, &s, 3, 0));
	T_ERR(qsubmit(q, &s, 4, 0), FH_ERR_QUEUE_FULL);
	recon_queue_stats(q, &st);
	T_EQ_INT(st.refused, 2);
	T_EQ_INT(st.queued, 5);
	/* freeing: the two running finish, the five waiting are dropped */
	atomic_store(&s.hold, 0);
	recon_queue_free(q);
	T_EQ_INT(atomic_load(&s.ran) + atomic_load(&s.dropped), 7);
	T_CHECK(atomic_load(&s.ran) >= 2);
	pthread_mutex_destroy(&s.mu);
}

/* ================================================ desired state, plan */

T_TEST(t_desired_validation)
{
	struct recon_desired d;
	char why[256];
	static const char *const bad[] = {
		"[]",
		"{\"generation\":0,\"guests\":[]}",
		"{\"generation\":\"1\",\"guests\":[]}",
		"{\"generation\":1}",
		"{\"generation\":1,\"guests\":[{\"vmid\":99,\"state\":\"running\"}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"paused\"}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"running\",\"cores\":0}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"running\",\"memory_mib\":1.5}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"running\",\"memory_mib\":512,"
		"\"memory_bytes\":536870912}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"running\",\"onboot\":\"yes\"}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"running\"},{\"vmid\":101,\"state\":\"stopped\"}]}",
		"{\"generation\":1,\"guests\":[{\"vmid\":101,\"state\":\"running\"}]} x",
	};
	size_t i;
	const char *ok = "{\"generation\":3,\"guests\":[{\"vmid\":102,\"state\":\"stopped\",\"memory_bytes\":1610612737,"
			 "\"extra\":{\"ignored\":true}},{\"vmid\":101,\"state\":\"running\",\"cores\":2,\"onboot\":true,"
			 "\"description\":\"hi\"}]}";

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = recon_desired_parse(bad[i], strlen(bad[i]), 100, &d, why, sizeof(why));

		if (r != FH_ERR_DECODE)
			t_failf(__FILE__, __LINE__, "case %zu: %s", i, t_errname(r));
	}
	T_OK(recon_desired_parse(ok, strlen(ok), 100, &d, why, sizeof(why)));
	T_EQ_INT(d.generation, 3);
	T_EQ_INT(d.n, 2);
	T_EQ_INT(d.g[0].vmid, 101);                     /* sorted */
	T_EQ_INT(d.g[0].onboot, 1);
	T_EQ_INT(d.g[1].memory_mib, 1537);               /* 1.5 GiB + 1 byte, rounded up */
	recon_desired_free(&d);
	T_ERR(recon_desired_parse(ok, strlen(ok), 1, &d, why, sizeof(why)), FH_ERR_TOOBIG);
	T_EQ_INT(recon_memory_mib_of_bytes(1048576), 1);
	T_EQ_INT(recon_memory_mib_of_bytes(1048577), 2);
}

static struct recon_actual_guest actual(int vmid, bool running, int cores, int64_t mem, const char *desc, int onboot)
{
	struct recon_actual_guest g;

	memset(&g, 0, sizeof(g));
	g.vmid = vmid;
	g.running = running;
	g.status_known = true;
	g.have_config = true;
	g.cores = cores;
	g.memory_mib = mem;
	g.description = (char *)(uintptr_t)desc;
	g.onboot = onboot;
	return g;
}

T_TEST(t_plan_pure)
{
	struct recon_desired d;
	struct recon_plan p;
	struct recon_actual_guest a[5];
	char why[256], n[64];
	const char *doc = "{\"generation\":1,\"guests\":["
			  "{\"vmid\":101,\"state\":\"running\",\"cores\":2,\"memory_mib\":1024,\"description\":\"web\\n\","
			  "\"onboot\":true},"
			  "{\"vmid\":102,\"state\":\"running\",\"cores\":4},"
			  "{\"vmid\":103,\"state\":\"stopped\",\"memory_bytes\":536870913},"
			  "{\"vmid\":104,\"state\":\"absent\"},"
			  "{\"vmid\":200,\"state\":\"running\"}]}";

	T_OK(recon_desired_parse(doc, strlen(doc), 100, &d, why, sizeof(why)));
	/* 101 converged up to whitespace and boolean spelling */
	a[0] = actual(101, true, 2, 1024, "web  \r\n\n", 1);
	a[1] = actual(102, false, 2, 512, NULL, 0);   /* cores differ and stopped */
	a[2] = actual(103, true, 1, 513, NULL, 0);    /* memory already the canonical 513 MiB; running */
	a[3] = actual(104, true, 1, 512, NULL, 0);    /* absent -> destroy (the gate will hold it) */
	a[4] = actual(105, true, 1, 512, NULL, 0);    /* only in actual: never touched */
	T_OK(recon_plan(&d, a, 5, &p));
	T_EQ_INT(p.n, 4);
	if (p.n == 4) {
		T_EQ_INT(p.a[0].act, RECON_ACT_SET_CONFIG);
		T_EQ_INT(p.a[0].vmid, 102);
		T_EQ_INT(p.a[0].cores, 4);
		T_EQ_INT(p.a[0].memory_mib, 0);
		T_EQ_INT(p.a[1].act, RECON_ACT_START);
		T_EQ_INT(p.a[1].vmid, 102);
		T_EQ_INT(p.a[2].act, RECON_ACT_STOP);
		T_EQ_INT(p.a[2].vmid, 103);
		T_EQ_INT(p.a[3].act, RECON_ACT_DESTROY);
		T_EQ_INT(p.a[3].vmid, 104);
	}
	T_EQ_INT(p.nawaiting, 1);
	T_EQ_INT(p.awaiting[0], 200);
	T_EQ_INT(p.nconverged, 1);
	recon_plan_free(&p);
	/* status unknown: no power action */
	a[1].status_known = false;
	a[1].cores = 4;
	T_OK(recon_plan(&d, a, 2, &p));
	T_EQ_INT(p.n, 0);
	recon_plan_free(&p);
	recon_norm_description("a \t\r\nb  \n\n  ", n, sizeof(n));
	T_EQ_STR(n, "a\nb");
	recon_desired_free(&d);
}

/* ====================================================== the engine */

struct fx {
	char dir[300];
	struct store *st;
	struct gate *g;
	struct recon *r;
};

static int fx_open_opts(struct fx *f, unsigned workers, unsigned max_mut, int64_t lock_wait_ms)
{
	struct store_opts so;
	struct gate_opts go;
	struct recon_opts ro;
	struct pve_opts po;
	char err[512] = "";

	memset(&so, 0, sizeof(so));
	so.dir = f->dir;
	if (store_open(&so, &f->st))
		return -1;
	memset(&go, 0, sizeof(go));
	go.st = f->st;
	go.host_id = HOST;
	go.max_lifetime_seconds = 3600;
	go.clock_skew_seconds = 60;
	if (gate_new(&go, &f->g, err, sizeof(err)))
		return -1;
	memset(&po, 0, sizeof(po));
	po.endpoint = S.endpoint;
	po.node = "pve";
	po.token = S.token;
	po.tls_fingerprint = S.fingerprint;
	po.request_timeout_ms = 5000;
	po.poll_initial_ms = 20;
	po.poll_max_ms = 100;
	po.task_timeout_ms = 20000;
	memset(&ro, 0, sizeof(ro));
	ro.st = f->st;
	ro.gate = f->g;
	ro.pve = &po;
	ro.workers = workers;
	ro.max_mutations = max_mut;
	ro.lock_wait_ms = lock_wait_ms;
	ro.post_retry_ms = 50;
	ro.post_retries = 3;
	if (recon_new(&ro, &f->r, err, sizeof(err))) {
		printf("  recon_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int fx_new(struct fx *f, unsigned workers, unsigned max_mut)
{
	static unsigned k;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/db-%u", g_dir, ++k);
	return fx_open_opts(f, workers, max_mut, 5000);
}

static void fx_close(struct fx *f)
{
	recon_free(f->r);
	gate_free(f->g);
	store_close(f->st);
	memset(f->dir + strlen(f->dir), 0, 0);
	f->r = NULL;
	f->g = NULL;
	f->st = NULL;
}

static long count(const char *mp)
{
	return sim_count_path(&S, mp);
}

static void guest_patch(const char *json)
{
	T_EQ_INT(sim_control(&S, "POST", "/guest", json, NULL, 0), 200);
}

static int run1(struct fx *f, const char *job_id, const char *op, int vmid, struct recon_result *res)
{
	struct recon_job *job = calloc(1, sizeof(*job));
	int r;

	job->source = JRNL_SRC_LOCALAPI;
	snprintf(job->job_id, sizeof(job->job_id), "%s", job_id);
	job->nsteps = 1;
	gate_action_init(&job->steps[0], op, HOST, vmid);
	r = recon_run(f->r, job, res);
	free(job);
	return r;
}

/* desired state of all 12 seeded guests as they are, with edits */
static void planner_pass(struct fx *f, const char *doc, struct recon_pass *ps)
{
	struct recon_desired d;
	char why[256];

	T_OK(recon_desired_parse(doc, strlen(doc), 100, &d, why, sizeof(why)));
	T_OK(recon_plan_pass(f->r, &d, ps));
	recon_wait_idle(f->r);
	recon_desired_free(&d);
}

T_TEST(t_planner_round_trip_converges)
{
	struct fx f;
	struct recon_pass ps;
	/* 101 running, 102 stopped, 103 running in the seed; 112 is left alone */
	const char *doc = "{\"generation\":2,\"guests\":["
			  "{\"vmid\":101,\"state\":\"running\",\"cores\":3,\"memory_bytes\":1610612737,"
			  "\"description\":\"Felhom customer container 101\\n\",\"onboot\":false},"
			  "{\"vmid\":102,\"state\":\"running\",\"memory_mib\":768},"
			  "{\"vmid\":103,\"state\":\"running\"},"
			  "{\"vmid\":999,\"state\":\"running\"}]}";
	long puts0 = count("PUT /api2/json/nodes/pve/lxc/101/config"), stop112 = count("POST /api2/json/nodes/pve/lxc/112/status/stop");

	if (fx_new(&f, 4, 2)) {
		T_CHECK(0);
		return;
	}
	planner_pass(&f, doc, &ps);
	T_EQ_INT(ps.read_error, 0);
	T_EQ_INT(ps.awaiting, 1);            /* 999: awaiting provisioning */
	T_EQ_INT(ps.converged, 1);           /* 103 */
	T_EQ_INT(ps.submitted, 3);           /* 101 config, 102 config + start (same lane, in order) */
	T_EQ_INT(count("PUT /api2/json/nodes/pve/lxc/101/config"), puts0 + 1);
	/* the round trip: read back, plan again */
	planner_pass(&f, doc, &ps);
	T_EQ_INT(ps.planned, 0);             /* converged: nothing, memory included */
	T_EQ_INT(ps.converged, 3);
	T_EQ_INT(count("PUT /api2/json/nodes/pve/lxc/101/config"), puts0 + 1);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/112/status/stop"), stop112);
	fx_close(&f);
}

T_TEST(t_no_desired_state_means_no_mutation)
{
	struct fx f;
	struct recon_pass ps;
	long req0;

	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		return;
	}
	req0 = sim_stat(&S, "requests");
	T_OK(recon_plan_pass(f.r, NULL, &ps));
	T_EQ_INT(ps.submitted, 0);
	T_EQ_INT(sim_stat(&S, "requests"), req0);   /* not even a read */
	fx_close(&f);
}

T_TEST(t_task_semantics)
{
	struct fx f;
	struct recon_result res;
	long t0, posts;

	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		return;
	}
	/* already running = success, no task */
	guest_patch("{\"vmid\":104,\"status\":\"running\"}");
	T_OK(run1(&f, "sem-1", "start", 104, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_STR(res.why, "already in effect");
	/* a transient refusal before any UPID is retried */
	guest_patch("{\"vmid\":104,\"status\":\"stopped\"}");
	posts = count("POST /api2/json/nodes/pve/lxc/104/status/start");
	T_EQ_INT(sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/lxc/104/status/start$\",\"status\":500,"
			       "\"reason\":\"can't lock file '/run/lock/lxc/pve-config-104.lock' - got timeout\","
			       "\"count\":1}"), 200);
	T_OK(run1(&f, "sem-2", "start", 104, &res));
	if (res.outcome != TASK_OUT_EXECUTED)
		printf("  sem-2: %s %s\n", t_errname(res.reason), res.why);
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/status/start"), posts + 2);
	T_CHECK(res.upid[0] != '\0');
	/* a non-transient refusal is failed at once, never retried */
	posts = count("POST /api2/json/nodes/pve/lxc/104/status/start");
	T_EQ_INT(sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/lxc/104/status/start$\",\"status\":500,"
			       "\"reason\":\"boom\",\"count\":1}"), 200);
	T_OK(run1(&f, "sem-3", "start", 104, &res));
	T_EQ_INT(res.outcome, TASK_OUT_FAILED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/status/start"), posts + 1);
	/* the config lock is waited for */
	posts = count("POST /api2/json/nodes/pve/lxc/104/snapshot");
	guest_patch("{\"vmid\":104,\"config\":{\"lock\":\"backup\"}}");
	t0 = now_ms();
	{
		struct recon_job *job = calloc(1, sizeof(*job));

		job->source = JRNL_SRC_LOCALAPI;
		snprintf(job->job_id, sizeof(job->job_id), "sem-4");
		job->nsteps = 1;
		gate_action_init(&job->steps[0], "snapshot", HOST, 104);
		gate_action_str(&job->steps[0], "name", "sem4");
		T_OK(recon_submit(f.r, job, NULL, NULL));
		free(job);
	}
	sleep_ms(400);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/snapshot"), posts);   /* still waiting */
	guest_patch("{\"vmid\":104,\"config\":{\"lock\":null}}");
	recon_wait_idle(f.r);
	T_CHECK(now_ms() - t0 >= 400);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/snapshot"), posts + 1);
	fx_close(&f);
	/* a lock that stays: failed with timeout */
	if (fx_open_opts(&f, 2, 2, 300)) {
		T_CHECK(0);
		return;
	}
	guest_patch("{\"vmid\":104,\"config\":{\"lock\":\"backup\"}}");
	T_OK(run1(&f, "sem-5", "start", 104, &res));
	T_EQ_INT(res.outcome, TASK_OUT_FAILED);
	T_EQ_INT(res.reason, FH_ERR_TIMEOUT);
	guest_patch("{\"vmid\":104,\"config\":{\"lock\":null}}");
	fx_close(&f);
}

T_TEST(t_global_mutation_cap)
{
	struct fx f;
	struct recon_stats st;
	struct recon_job *job = calloc(1, sizeof(*job));
	int vm;

	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.3}", NULL, 0), 200);
	if (fx_new(&f, 4, 1)) {
		T_CHECK(0);
		free(job);
		return;
	}
	for (vm = 105; vm <= 108; vm++) {
		memset(job, 0, sizeof(*job));
		job->source = JRNL_SRC_LOCALAPI;
		snprintf(job->job_id, sizeof(job->job_id), "cap-%d", vm);
		job->nsteps = 1;
		gate_action_init(&job->steps[0], "snapshot", HOST, vm);
		gate_action_str(&job->steps[0], "name", "capsnap");
		T_OK(recon_submit(f.r, job, NULL, NULL));
	}
	recon_wait_idle(f.r);
	recon_stats(f.r, &st);
	T_EQ_INT(st.executed, 4);
	T_EQ_INT(st.mutations_max, 1);       /* four lanes, one Proxmox mutation at a time */
	T_CHECK(st.q.max_running >= 2);      /* while the lanes themselves ran in parallel */
	fx_close(&f);
	/* with a cap of 3 they overlap */
	if (fx_new(&f, 4, 3)) {
		T_CHECK(0);
		free(job);
		return;
	}
	for (vm = 105; vm <= 108; vm++) {
		memset(job, 0, sizeof(*job));
		job->source = JRNL_SRC_LOCALAPI;
		snprintf(job->job_id, sizeof(job->job_id), "cap3-%d", vm);
		job->nsteps = 1;
		gate_action_init(&job->steps[0], "snapshot", HOST, vm);
		gate_action_str(&job->steps[0], "name", "capsnap3");
		T_OK(recon_submit(f.r, job, NULL, NULL));
	}
	recon_wait_idle(f.r);
	recon_stats(f.r, &st);
	T_CHECK(st.mutations_max >= 2 && st.mutations_max <= 3);
	fx_close(&f);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.05}", NULL, 0), 200);
	free(job);
}

struct done_box {
	pthread_mutex_t mu;
	int n;
	struct recon_result last;
};

static void done_cb(const struct recon_result *res, void *arg)
{
	struct done_box *b = arg;

	pthread_mutex_lock(&b->mu);
	b->n++;
	b->last = *res;
	pthread_mutex_unlock(&b->mu);
}

T_TEST(t_blocked)
{
	struct fx f;
	struct recon_job *job = calloc(1, sizeof(*job));
	struct recon_pass ps;
	struct recon_desired d;
	struct jrnl_stats js;
	struct done_box b1, b2;
	char why[256];
	const char *doc = "{\"generation\":4,\"guests\":[{\"vmid\":109,\"state\":\"stopped\"}]}";

	memset(&b1, 0, sizeof(b1));
	memset(&b2, 0, sizeof(b2));
	pthread_mutex_init(&b1.mu, NULL);
	pthread_mutex_init(&b2.mu, NULL);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.6}", NULL, 0), 200);
	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		free(job);
		return;
	}
	/* a long task on 110, and a second job queued behind it */
	job->source = JRNL_SRC_LOCALAPI;
	job->nsteps = 1;
	snprintf(job->job_id, sizeof(job->job_id), "blk-1");
	gate_action_init(&job->steps[0], "snapshot", HOST, 110);
	gate_action_str(&job->steps[0], "name", "blk1");
	T_OK(recon_submit(f.r, job, done_cb, &b1));
	snprintf(job->job_id, sizeof(job->job_id), "blk-2");
	gate_action_str(&job->steps[0], "description", "second");
	T_OK(recon_submit(f.r, job, done_cb, &b2));
	sleep_ms(200);                      /* the first is posted and running */
	recon_set_blocked(f.r, true);
	/* nothing new: submit refused, the planner plans nothing */
	T_ERR(recon_submit(f.r, job, NULL, NULL), FH_ERR_BLOCKED);
	T_OK(recon_desired_parse(doc, strlen(doc), 100, &d, why, sizeof(why)));
	T_OK(recon_plan_pass(f.r, &d, &ps));
	T_EQ_INT(ps.submitted, 0);
	recon_desired_free(&d);
	recon_wait_idle(f.r);
	/* the running one finished and was journaled; the queued one never ran */
	T_EQ_INT(b1.n, 1);
	T_EQ_INT(b1.last.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(b2.n, 1);
	T_EQ_INT(b2.last.outcome, TASK_OUT_NONE);
	T_EQ_INT(b2.last.reason, FH_ERR_BLOCKED);
	T_OK(jrnl_get_stats(f.st, &js));
	T_EQ_INT(js.in_flight, 0);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/109/status/stop"), 0);
	recon_set_blocked(f.r, false);
	fx_close(&f);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.05}", NULL, 0), 200);
	pthread_mutex_destroy(&b1.mu);
	pthread_mutex_destroy(&b2.mu);
	free(job);
}

/* ============================================================ recovery */

/* An intent as an earlier process left it. */
static uint64_t intent(struct fx *f, const char *job, const char *op, int64_t vmid, const char *params, int64_t created)
{
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof(*e));
	uint64_t id = 0;

	snprintf(e->job_id, sizeof(e->job_id), "%s", job);
	e->source = JRNL_SRC_LOCALAPI;
	snprintf(e->op, sizeof(e->op), "%s", op);
	e->vmid = vmid;
	snprintf(e->params, sizeof(e->params), "%s", params);
	e->created_at = created;
	if (store_txn_begin(f->st, true, &t) || jrnl_intent(t, e, &id) || store_txn_commit(t))
		id = 0;
	free(e);
	return id;
}

static void set_upid(struct fx *f, uint64_t id, const char *upid)
{
	struct store_txn *t = NULL;

	T_OK(store_txn_begin(f->st, true, &t));
	T_OK(jrnl_set_upid(t, id, upid));
	T_OK(jrnl_event(t, id, TASK_EV_POSTED));
	T_OK(store_txn_commit(t));
}

static struct pve_client *direct(void)
{
	struct pve_opts po;
	struct pve_client *c = NULL;
	struct pve_err e;

	memset(&po, 0, sizeof(po));
	po.endpoint = S.endpoint;
	po.node = "pve";
	po.token = S.token;
	po.tls_fingerprint = S.fingerprint;
	po.poll_initial_ms = 20;
	po.poll_max_ms = 100;
	if (pve_client_new(&po, &c, &e))
		return NULL;
	return c;
}

struct rows {
	int n;
	char found[16][48], action[16][48];
	uint64_t id[16];
};

static void on_row(const struct recon_recovery_row *row, void *arg)
{
	struct rows *r = arg;

	if (r->n < 16) {
		r->id[r->n] = row->id;
		snprintf(r->found[r->n], 48, "%s", row->found ? row->found : "");
		snprintf(r->action[r->n], 48, "%s", row->action ? row->action : "");
		r->n++;
	}
}

static const char *row_action(const struct rows *r, uint64_t id)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->id[i] == id)
			return r->action[i];
	return "(none)";
}

static int state_of(struct fx *f, uint64_t id, enum task_outcome *out)
{
	struct jrnl_entry *e = calloc(1, sizeof(*e));
	int s = 0;

	if (!jrnl_get(f->st, id, e)) {
		s = (int)e->state;
		if (out)
			*out = e->outcome;
	}
	free(e);
	return s;
}

T_TEST(t_recovery_cases)
{
	struct fx f;
	struct pve_client *c = direct();
	struct pve_err e;
	struct recon_recovery rec;
	struct rows rows;
	struct jrnl_stats js;
	char upid[UPID_MAX];
	int64_t now = (int64_t)time(NULL);
	uint64_t a, b, cc, d, ee, g, h, u;
	enum task_outcome out = 0;
	long p105, p106;

	if (!c || fx_new(&f, 3, 2)) {
		T_CHECK(0);
		pve_client_free(c);
		return;
	}
	guest_patch("{\"vmid\":105,\"status\":\"stopped\"}");
	guest_patch("{\"vmid\":106,\"status\":\"stopped\"}");
	guest_patch("{\"vmid\":107,\"status\":\"running\"}");
	guest_patch("{\"vmid\":108,\"status\":\"stopped\"}");
	/* a: posted, the task finished meanwhile */
	a = intent(&f, "rec-a", "snapshot", 105, "{\"name\":\"reca\"}", now);
	T_OK(pve_snapshot(c, 105, "reca", NULL, upid, &e));
	set_upid(&f, a, upid);
	sleep_ms(300);
	/* b: posted, the task still runs (awaited) */
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":1.0}", NULL, 0), 200);
	b = intent(&f, "rec-b", "snapshot", 106, "{\"name\":\"recb\"}", now);
	T_OK(pve_snapshot(c, 106, "recb", NULL, upid, &e));
	set_upid(&f, b, upid);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.05}", NULL, 0), 200);
	/* cc: the POST happened, the UPID was never recorded: adopted */
	cc = intent(&f, "rec-c", "start", 108, "{}", now);
	T_OK(pve_start(c, 108, upid, &e));
	/* d: never posted, not in effect: re-posted */
	d = intent(&f, "rec-d", "start", 105, "{}", now);
	/* ee: never posted, already in effect (107 runs): closed, no POST */
	ee = intent(&f, "rec-e", "start", 107, "{}", now);
	/* g: a host op (never re-run): closed failed "interrupted" */
	g = intent(&f, "rec-g", "storage_wipe", -1, "{\"durable_id\":\"byid:x\"}", now);
	/* h: set_config never posted */
	h = intent(&f, "rec-h", "set_config", 106, "{\"cores\":3}", now);
	/* u: posted (a UPID is recorded) but Proxmox does not know the task:
	 * never dispatched again */
	guest_patch("{\"vmid\":111,\"status\":\"stopped\"}");
	u = intent(&f, "rec-u", "start", 111, "{}", now);
	if (u)
		set_upid(&f, u, "UPID:pve:00001234:00005678:6B000000:vzstart:111:felhom@pve!agent:");
	T_CHECK(a && b && cc && d && ee && g && h && u);
	sleep_ms(200);
	fx_close(&f);                         /* "restart" */
	if (fx_open_opts(&f, 3, 2, 5000)) {
		T_CHECK(0);
		pve_client_free(c);
		return;
	}
	p105 = count("POST /api2/json/nodes/pve/lxc/105/status/start");
	p106 = count("PUT /api2/json/nodes/pve/lxc/106/config");

	/* dry run first: looks, writes nothing */
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_row, &rows, &rec));
	T_EQ_INT(rec.in_flight, 8);
	T_EQ_INT(rows.n, 8);
	T_EQ_STR(row_action(&rows, a), "would close");
	T_EQ_STR(row_action(&rows, b), "would await");
	T_EQ_STR(row_action(&rows, d), "would re-post");
	T_EQ_STR(row_action(&rows, ee), "would close (in effect)");
	T_EQ_STR(row_action(&rows, g), "would close failed");
	T_EQ_STR(row_action(&rows, u), "would close failed");
	T_OK(jrnl_get_stats(f.st, &js));
	T_EQ_INT(js.in_flight, 8);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/105/status/start"), p105);

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_row, &rows, &rec));
	T_EQ_INT(rec.in_flight, 8);
	T_EQ_INT(rec.left, 0);
	T_EQ_INT(rec.adopted, 1);
	T_EQ_STR(row_action(&rows, a), "closed");
	T_EQ_STR(row_action(&rows, b), "awaited, closed");
	T_EQ_STR(row_action(&rows, cc), "closed");
	T_EQ_STR(row_action(&rows, d), "re-posted, closed");
	T_EQ_STR(row_action(&rows, ee), "closed (in effect)");
	T_EQ_STR(row_action(&rows, g), "closed failed (interrupted)");
	T_EQ_STR(row_action(&rows, h), "re-posted, closed");
	T_EQ_STR(row_action(&rows, u), "closed failed");
	T_EQ_INT(state_of(&f, u, &out), TASK_FAILED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/111/status/start"), 0);
	T_EQ_INT(state_of(&f, a, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, b, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, cc, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, d, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, ee, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, g, &out), TASK_FAILED);
	T_EQ_INT(out, TASK_OUT_FAILED);
	T_EQ_INT(state_of(&f, h, &out), TASK_SUCCEEDED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/105/status/start"), p105 + 1);   /* d, once */
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/107/status/start"), 0);          /* ee: none */
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/108/status/start"), 1);          /* cc: adopted, no re-post */
	T_EQ_INT(count("PUT /api2/json/nodes/pve/lxc/106/config"), p106 + 1);
	T_OK(jrnl_get_stats(f.st, &js));
	T_EQ_INT(js.in_flight, 0);
	/* and again: nothing to do */
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_row, &rows, &rec));
	T_EQ_INT(rec.in_flight, 0);
	T_EQ_INT(rows.n, 0);
	fx_close(&f);
	pve_client_free(c);
}

/* A planned stop of a guest the agent did not create is held for a
 * signature: no POST, audited once per (generation, guest, action). */
static int audit_hits(struct fx *f, const char *needle)
{
	struct buf tail;
	const char *p;
	int n = 0;

	buf_init(&tail, 1 << 22);
	if (audit_tail_json(f->st, AUDIT_TAIL_MAX, &tail) == 0)
		for (p = buf_str(&tail); (p = strstr(p, needle)) != NULL; p++)
			n++;
	buf_free(&tail);
	return n;
}

T_TEST(t_planned_stop_of_customer_guest_is_pending)
{
	struct fx f;
	struct recon_pass ps;
	struct recon_stats st;
	const char *gen5 = "{\"generation\":5,\"guests\":[{\"vmid\":112,\"state\":\"stopped\"}]}";
	const char *gen6 = "{\"generation\":6,\"guests\":[{\"vmid\":112,\"state\":\"stopped\"}]}";
	const char *needle = "\"decision\":\"pending_signature\",\"op\":\"stop\",\"guest_id\":112";
	long stops = count("POST /api2/json/nodes/pve/lxc/112/status/stop");
	long shut = count("POST /api2/json/nodes/pve/lxc/112/status/shutdown");

	guest_patch("{\"vmid\":112,\"status\":\"running\"}");
	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		return;
	}
	planner_pass(&f, gen5, &ps);
	T_EQ_INT(ps.planned, 1);
	T_EQ_INT(ps.submitted, 1);
	recon_stats(f.r, &st);
	T_EQ_INT(st.pending, 1);
	T_EQ_INT(st.posts, 0);
	T_EQ_INT(audit_hits(&f, needle), 1);
	/* the same generation again: still planned, not asked again */
	planner_pass(&f, gen5, &ps);
	T_EQ_INT(ps.planned, 1);
	T_EQ_INT(ps.submitted, 0);
	planner_pass(&f, gen5, &ps);
	T_EQ_INT(ps.submitted, 0);
	T_EQ_INT(audit_hits(&f, needle), 1);
	/* a new generation asks once more */
	planner_pass(&f, gen6, &ps);
	T_EQ_INT(ps.submitted, 1);
	planner_pass(&f, gen6, &ps);
	T_EQ_INT(ps.submitted, 0);
	T_EQ_INT(audit_hits(&f, needle), 2);
	recon_stats(f.r, &st);
	T_EQ_INT(st.pending, 2);
	T_EQ_INT(st.posts, 0);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/112/status/stop"), stops);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/112/status/shutdown"), shut);
	fx_close(&f);
}

/* curl_easy_escape's form: unreserved bytes kept, the rest %XX. */
static void url_escape(const char *s, char *out, size_t n)
{
	size_t k = 0;

	for (; *s && k + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, n - k, "%%%02X", c);
	}
	out[k] = '\0';
}

static long deletes_of(const char *volid)
{
	char esc[600], key[800];

	url_escape(volid, esc, sizeof(esc));
	snprintf(key, sizeof(key), "DELETE /api2/json/nodes/pve/storage/local/content/%s", esc);
	return count(key);
}

static bool volume_there(const char *volid)
{
	char *big = malloc(4 << 20), needle[300];
	bool has = false;

	snprintf(needle, sizeof(needle), "\"%s\"", volid);
	if (big && sim_control(&S, "GET", "/volumes", NULL, big, 4 << 20) == 200)
		has = strstr(big, needle) != NULL;
	free(big);
	return has;
}

/* backup_prune's recovery rule: the volume gone = in effect; still there
 * and never posted = posted now; posted before and the task unknown =
 * closed failed (never re-posted). An imgdel task is named VMID@STORAGE,
 * not by its volume, so none is adopted (another prune's task of the same
 * guest must not close this one): a lost DELETE shows as the volume gone. */
T_TEST(t_recovery_backup_prune)
{
	struct fx f;
	struct pve_client *c = direct();
	struct pve_err e;
	struct recon_recovery rec;
	struct rows rows;
	char resp[4096], vols[4][256], params[4][400], upid[UPID_MAX], *p = resp;
	int64_t now = (int64_t)time(NULL);
	uint64_t p1, p2, p3, p4;
	enum task_outcome out = 0;
	int k = 0, i;

	snprintf(params[0], sizeof(params[0]), "{\"storage\":\"local\",\"vmid\":110,\"ctimes\":[%" PRId64 ",%" PRId64
		 ",%" PRId64 ",%" PRId64 "]}", now - 9000, now - 8000, now - 7000, now - 6000);
	if (!c || sim_control(&S, "POST", "/backups", params[0], resp, sizeof(resp)) != 200) {
		T_CHECK(0);
		pve_client_free(c);
		return;
	}
	while (k < 4 && (p = strstr(p, "\"local:backup/")) != NULL) {
		char *q = strchr(p + 1, '"');

		if (!q)
			break;
		snprintf(vols[k++], sizeof(vols[0]), "%.*s", (int)(q - p - 1), p + 1);
		p = q + 1;
	}
	T_EQ_INT(k, 4);
	if (k != 4 || fx_new(&f, 2, 2)) {
		T_CHECK(0);
		pve_client_free(c);
		return;
	}
	for (i = 0; i < 4; i++)
		snprintf(params[i], sizeof(params[i]), "{\"storage\":\"local\",\"volid\":\"%.255s\"}", vols[i]);
	/* p1: never posted, the volume still there */
	p1 = intent(&f, "bk-p1", "backup_prune", 110, params[0], now);
	/* p2: never posted as far as the journal knows, the volume gone */
	p2 = intent(&f, "bk-p2", "backup_prune", 110, params[1], now);
	T_OK(pve_delete_volume(c, "local", vols[1], upid, &e));
	/* p3: posted (a UPID recorded) but Proxmox forgot the task */
	p3 = intent(&f, "bk-p3", "backup_prune", 110, params[2], now);
	if (p3)
		set_upid(&f, p3, "UPID:pve:00001234:00005678:6B000000:imgdel:110@local:felhom@pve!agent:");
	/* p4: the DELETE went out, its UPID was never recorded (its task, of
	 * the same guest and storage as p2's, must not close p1) */
	p4 = intent(&f, "bk-p4", "backup_prune", 110, params[3], now);
	T_OK(pve_delete_volume(c, "local", vols[3], upid, &e));
	T_CHECK(p1 && p2 && p3 && p4);
	sleep_ms(300);
	fx_close(&f);
	if (fx_open_opts(&f, 2, 2, 5000)) {
		T_CHECK(0);
		pve_client_free(c);
		return;
	}
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_row, &rows, &rec));
	T_EQ_INT(rec.in_flight, 4);
	T_EQ_STR(row_action(&rows, p1), "would re-post");
	T_EQ_STR(row_action(&rows, p2), "would close (in effect)");
	T_EQ_STR(row_action(&rows, p3), "would close failed");
	T_EQ_STR(row_action(&rows, p4), "would close (in effect)");
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_row, &rows, &rec));
	T_EQ_INT(rec.left, 0);
	T_EQ_STR(row_action(&rows, p1), "re-posted, closed");
	T_EQ_STR(row_action(&rows, p2), "closed (in effect)");
	T_EQ_STR(row_action(&rows, p3), "closed failed");
	T_EQ_STR(row_action(&rows, p4), "closed (in effect)");
	T_EQ_INT(rec.adopted, 0);
	T_EQ_INT(state_of(&f, p1, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, p2, &out), TASK_SUCCEEDED);
	T_EQ_INT(state_of(&f, p3, &out), TASK_FAILED);
	T_EQ_INT(state_of(&f, p4, &out), TASK_SUCCEEDED);
	T_EQ_INT(deletes_of(vols[0]), 1);        /* p1: once, by recovery */
	T_EQ_INT(deletes_of(vols[1]), 1);        /* p2: the earlier one only */
	T_EQ_INT(deletes_of(vols[2]), 0);        /* p3: never re-posted */
	T_EQ_INT(deletes_of(vols[3]), 1);        /* p4: in effect, not re-posted */
	T_CHECK(!volume_there(vols[0]));
	T_CHECK(volume_there(vols[2]));
	fx_close(&f);
	pve_client_free(c);
}

T_TEST(t_signed_op_outcome_in_outbox_once)
{
	struct fx f;
	struct buf b;
	uint64_t through = 0, n = 0;
	struct recon_op_entry *e = NULL;
	size_t ne = 0, i;
	enum task_outcome o;
	char why[256];
	const char *doc = "{\"ops\":[{\"id\":\"ob-1\",\"action\":{\"op\":\"snapshot\",\"guest_id\":109,"
			  "\"params\":{\"name\":\"ob1\"}}},{\"id\":\"ob-2\",\"action\":{\"op\":\"destroy\",\"guest_id\":109}},"
			  "{\"id\":\"ob-3\",\"blob_b64\":\"!!\",\"signature\":\"x\"},{\"action\":{\"op\":\"start\"}}]}";

	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		return;
	}
	T_OK(recon_ops_parse(doc, strlen(doc), &e, &ne, why, sizeof(why)));
	T_EQ_INT(ne, 3);                     /* the entry without an id has nobody to answer */
	for (i = 0; i < ne; i++)
		T_OK(recon_signed_op(f.r, &e[i], (int64_t)time(NULL), &o));
	recon_wait_idle(f.r);
	/* delivered again before the results were acknowledged: nothing new */
	for (i = 0; i < ne; i++)
		T_OK(recon_signed_op(f.r, &e[i], (int64_t)time(NULL), &o));
	recon_wait_idle(f.r);
	recon_ops_free(e, ne);
	buf_init(&b, 1 << 20);
	T_OK(outbox_batch(f.st, 100, &b, &through));
	T_CHECK(strstr(buf_str(&b), "{\"id\":\"ob-1\",\"outcome\":\"executed\",\"reason\":\"\"}") != NULL);
	T_CHECK(strstr(buf_str(&b), "{\"id\":\"ob-2\",\"outcome\":\"pending_signature\"") != NULL);
	T_CHECK(strstr(buf_str(&b), "{\"id\":\"ob-3\",\"outcome\":\"rejected\",\"reason\":\"malformed\"}") != NULL);
	T_OK(outbox_pending(f.st, &n));
	T_EQ_INT(n, 3);
	T_OK(outbox_ack(f.st, through));
	T_OK(outbox_pending(f.st, &n));
	T_EQ_INT(n, 0);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/109/snapshot"), 1);
	buf_free(&b);
	fx_close(&f);
}

/* ================================================ multi-step jobs */

/* snapshot -> rollback -> delete_snapshot (ALWAYS) of one snapshot on
 * vmid, as the selftest builds it, with a hub op id. */
static struct recon_job *job3(const char *job_id, const char *op_id, int vmid, const char *snap)
{
	struct recon_job *job = calloc(1, sizeof(*job));
	static const char *const ops[] = { "snapshot", "rollback", "delete_snapshot" };
	size_t i;

	job->source = JRNL_SRC_LOCALAPI;
	snprintf(job->job_id, sizeof(job->job_id), "%s", job_id);
	snprintf(job->op_id, sizeof(job->op_id), "%s", op_id);
	job->nsteps = 3;
	for (i = 0; i < 3; i++) {
		T_OK(gate_action_init(&job->steps[i], ops[i], HOST, vmid));
		T_OK(gate_action_str(&job->steps[i], "name", snap));
	}
	job->step_flags[2] = RECON_STEP_ALWAYS;
	return job;
}

struct posts3 {
	long snap, rollback, del;
};

static void posts3(int vmid, const char *snap, struct posts3 *p)
{
	char a[160], b[160], c[160];

	snprintf(a, sizeof(a), "POST /api2/json/nodes/pve/lxc/%d/snapshot", vmid);
	snprintf(b, sizeof(b), "POST /api2/json/nodes/pve/lxc/%d/snapshot/%s/rollback", vmid, snap);
	snprintf(c, sizeof(c), "DELETE /api2/json/nodes/pve/lxc/%d/snapshot/%s", vmid, snap);
	p->snap = count(a);
	p->rollback = count(b);
	p->del = count(c);
}

/* Waits (up to 10 s) until count(mp) >= want. */
static bool wait_count(const char *mp, long want)
{
	long end = now_ms() + 10000;

	while (count(mp) < want && now_ms() < end)
		sleep_ms(10);
	return count(mp) >= want;
}

/* How often the outbox holds a result for op id, and its outcome. */
static int outbox_results(struct fx *f, const char *id, char *outcome, size_t n)
{
	struct buf b;
	uint64_t through = 0;
	char needle[200];
	const char *p;
	int hits = 0;

	outcome[0] = '\0';
	buf_init(&b, 1 << 20);
	snprintf(needle, sizeof(needle), "{\"id\":\"%s\",\"outcome\":\"", id);
	if (outbox_batch(f->st, OUTBOX_BATCH_MAX, &b, &through) == 0) {
		for (p = buf_str(&b); (p = strstr(p, needle)) != NULL; p++) {
			const char *o = p + strlen(needle), *q = strchr(o, '"');

			if (q && (size_t)(q - o) < n) {
				memcpy(outcome, o, (size_t)(q - o));
				outcome[q - o] = '\0';
			}
			hits++;
		}
	}
	buf_free(&b);
	return hits;
}

static bool snap_exists(int vmid, const char *snap)
{
	const struct json_limits lim = { 16u << 20, 16, true };
	char *resp = malloc(16u << 20);
	struct json *g = NULL;
	bool has = false;
	size_t i, k;

	if (resp && sim_control(&S, "GET", "/guests", NULL, resp, 16u << 20) == 200 &&
	    json_parse(resp, strlen(resp), &lim, &g, NULL, 0) == 0) {
		for (i = 0; g->type == JSON_ARRAY && i < g->n; i++) {
			const struct json *snaps = json_get(g->items[i], "snapshots");
			int64_t id = 0;

			if (json_int(json_get(g->items[i], "vmid"), &id) || id != vmid)
				continue;
			for (k = 0; snaps && k < snaps->n; k++) {
				const char *sn = "";

				if (!json_str(snaps->items[k], &sn) && !strcmp(sn, snap))
					has = true;
			}
		}
	}
	json_free(g);
	free(resp);
	return has;
}

struct jrows {
	int n;
	struct recon_recovery_row r[16];
};

static void on_jrow(const struct recon_recovery_row *row, void *arg)
{
	struct jrows *j = arg;

	if (j->n < 16)
		j->r[j->n++] = *row;
}

/* The row for op of job_id with found == what ("" any). */
static const struct recon_recovery_row *jrow(const struct jrows *j, const char *op, const char *found)
{
	int i;

	for (i = 0; i < j->n; i++)
		if (!strcmp(j->r[i].op, op) && (!found[0] || (j->r[i].found && !strcmp(j->r[i].found, found))))
			return &j->r[i];
	return NULL;
}

static const char *jrow_action(const struct jrows *j, const char *op, const char *found)
{
	const struct recon_recovery_row *r = jrow(j, op, found);

	return r && r->action ? r->action : "(none)";
}

static void stats_expect(struct fx *f, uint64_t in_flight, uint64_t open, uint64_t waiting)
{
	struct jrnl_stats js;

	T_OK(jrnl_get_stats(f->st, &js));
	T_EQ_INT(js.in_flight, in_flight);
	T_EQ_INT(js.jobs_open, open);
	T_EQ_INT(js.jobs_waiting, waiting);
}

static void idem_expect(struct fx *f, const char *key, enum task_outcome want)
{
	struct idem_rec ir;

	memset(&ir, 0, sizeof(ir));
	T_OK(idem_get(f->st, key, &ir));
	T_EQ_INT(ir.outcome, want);
}

/* (a) killed while step 1 (the snapshot) is in flight: recovery closes it
 * by its task, then runs rollback and delete; every POST once. */
T_TEST(t_job_resumes_after_crash_in_step1)
{
	struct fx f;
	struct recon_job *job = job3("mj-a", "mj-op-a", 113, "mja");
	struct recon_recovery rec;
	struct jrows rows;
	struct posts3 p0, p1;
	struct done_box b;
	char out[32];

	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		free(job);
		return;
	}
	posts3(113, "mja", &p0);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":1.0}", NULL, 0), 200);
	T_OK(recon_submit(f.r, job, done_cb, &b));
	T_CHECK(wait_count("POST /api2/json/nodes/pve/lxc/113/snapshot", p0.snap + 1));
	sleep_ms(150);                        /* the UPID is journaled */
	recon_cancel(f.r);                    /* "crash": the task goes on without us */
	fx_close(&f);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.05}", NULL, 0), 200);
	T_EQ_INT(b.n, 1);
	T_EQ_INT(b.last.outcome, TASK_OUT_NONE);
	sleep_ms(1100);                       /* the snapshot task ended meanwhile */
	if (fx_open_opts(&f, 2, 2, 5000)) {
		T_CHECK(0);
		free(job);
		return;
	}
	stats_expect(&f, 1, 1, 0);
	idem_expect(&f, "mj-a", TASK_OUT_NONE);
	T_EQ_INT(outbox_results(&f, "mj-op-a", out, sizeof(out)), 0);

	/* dry run: the step in flight would close; the rest would run */
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_jrow, &rows, &rec));
	T_EQ_INT(rec.in_flight, 1);
	T_EQ_INT(rec.jobs, 1);
	T_EQ_INT(rec.continued, 2);
	T_EQ_INT(rows.n, 3);
	T_EQ_STR(jrow_action(&rows, "snapshot", ""), "would close");
	T_EQ_STR(jrow_action(&rows, "rollback", "continuation"), "would run");
	T_EQ_STR(jrow_action(&rows, "delete_snapshot", "continuation"), "would run");
	T_CHECK(jrow(&rows, "rollback", "continuation") && jrow(&rows, "rollback", "continuation")->id == 0 &&
		jrow(&rows, "rollback", "continuation")->state == TASK_QUEUED);
	posts3(113, "mja", &p1);
	T_EQ_INT(p1.rollback, p0.rollback);   /* the dry run posted nothing */
	stats_expect(&f, 1, 1, 0);

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_jrow, &rows, &rec));
	T_EQ_INT(rec.jobs, 1);
	T_EQ_INT(rec.continued, 2);
	T_EQ_INT(rec.left, 0);
	T_EQ_STR(jrow_action(&rows, "snapshot", ""), "closed");
	T_EQ_STR(jrow_action(&rows, "rollback", "continuation"), "ran, closed");
	T_EQ_STR(jrow_action(&rows, "delete_snapshot", "continuation"), "ran, closed");
	posts3(113, "mja", &p1);
	T_EQ_INT(p1.snap, p0.snap + 1);
	T_EQ_INT(p1.rollback, p0.rollback + 1);
	T_EQ_INT(p1.del, p0.del + 1);
	T_CHECK(!snap_exists(113, "mja"));
	stats_expect(&f, 0, 0, 0);
	idem_expect(&f, "mj-a", TASK_OUT_EXECUTED);
	T_EQ_INT(outbox_results(&f, "mj-op-a", out, sizeof(out)), 1);
	T_EQ_STR(out, "executed");

	/* again: nothing left, nothing posted, the result not queued twice */
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_jrow, &rows, &rec));
	T_EQ_INT(rows.n, 0);
	T_EQ_INT(rec.jobs, 0);
	/* and a redelivery of the job gets the stored outcome, runs nothing */
	{
		struct recon_result res;

		T_OK(recon_run(f.r, job, &res));
		T_CHECK(res.replayed);
		T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	}
	posts3(113, "mja", &p0);
	T_CHECK(p0.snap == p1.snap && p0.rollback == p1.rollback && p0.del == p1.del);
	T_EQ_INT(outbox_results(&f, "mj-op-a", out, sizeof(out)), 1);
	fx_close(&f);
	pthread_mutex_destroy(&b.mu);
	free(job);
}

/* (b) stopped between step 1 and step 2 (step 1 closed, step 2 never
 * admitted): no entry is in flight, the job record says where it stands,
 * recovery resumes at the rollback. */
T_TEST(t_job_resumes_between_steps)
{
	struct fx f;
	struct recon_job *job = job3("mj-b", "mj-op-b", 114, "mjb");
	struct recon_recovery rec;
	struct jrows rows;
	struct posts3 p0, p1;
	struct done_box b;
	char out[32];

	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		free(job);
		return;
	}
	posts3(114, "mjb", &p0);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.6}", NULL, 0), 200);
	T_OK(recon_submit(f.r, job, done_cb, &b));
	T_CHECK(wait_count("POST /api2/json/nodes/pve/lxc/114/snapshot", p0.snap + 1));
	/* the snapshot runs to its end and is closed; the rollback is not
	 * admitted: the process stops right between the two */
	recon_set_blocked(f.r, true);
	recon_wait_idle(f.r);
	T_EQ_INT(b.n, 1);
	T_EQ_INT(b.last.outcome, TASK_OUT_NONE);
	T_EQ_INT(b.last.reason, FH_ERR_BLOCKED);
	T_EQ_INT(b.last.steps[0].outcome, TASK_OUT_EXECUTED);
	fx_close(&f);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.05}", NULL, 0), 200);
	if (fx_open_opts(&f, 2, 2, 5000)) {
		T_CHECK(0);
		free(job);
		return;
	}
	stats_expect(&f, 1, 1, 1);            /* no entry, one job waiting */
	idem_expect(&f, "mj-b", TASK_OUT_NONE);
	T_CHECK(snap_exists(114, "mjb"));

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_jrow, &rows, &rec));
	T_EQ_INT(rec.in_flight, 0);
	T_EQ_INT(rec.jobs, 1);
	T_EQ_INT(rows.n, 2);
	T_EQ_STR(jrow_action(&rows, "rollback", "continuation"), "would run");
	T_EQ_STR(jrow_action(&rows, "delete_snapshot", "continuation"), "would run");
	posts3(114, "mjb", &p1);
	T_EQ_INT(p1.rollback, p0.rollback);

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_jrow, &rows, &rec));
	T_EQ_INT(rec.continued, 2);
	T_EQ_INT(rec.left, 0);
	T_EQ_STR(jrow_action(&rows, "rollback", "continuation"), "ran, closed");
	T_EQ_STR(jrow_action(&rows, "delete_snapshot", "continuation"), "ran, closed");
	posts3(114, "mjb", &p1);
	T_EQ_INT(p1.snap, p0.snap + 1);
	T_EQ_INT(p1.rollback, p0.rollback + 1);
	T_EQ_INT(p1.del, p0.del + 1);
	T_CHECK(!snap_exists(114, "mjb"));
	stats_expect(&f, 0, 0, 0);
	idem_expect(&f, "mj-b", TASK_OUT_EXECUTED);
	T_EQ_INT(outbox_results(&f, "mj-op-b", out, sizeof(out)), 1);
	T_EQ_STR(out, "executed");
	fx_close(&f);
	pthread_mutex_destroy(&b.mu);
	free(job);
}

/* (c) killed while step 2 (the rollback) is in flight, and its task
 * fails: recovery closes it failed by its task (never re-posted), skips
 * nothing it must run (the ALWAYS delete runs), and the job's outcome is
 * failed, once. */
T_TEST(t_job_resumes_after_failed_step2)
{
	struct fx f;
	struct recon_job *job = job3("mj-c", "mj-op-c", 115, "mjc");
	struct recon_recovery rec;
	struct jrows rows;
	struct posts3 p0, p1;
	struct done_box b;
	char out[32];

	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		free(job);
		return;
	}
	posts3(115, "mjc", &p0);
	T_EQ_INT(sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/lxc/115/snapshot/mjc/rollback$\","
			       "\"kind\":\"task_fail\",\"reason\":\"rollback failed: boom\",\"count\":1}"), 200);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.8}", NULL, 0), 200);
	T_OK(recon_submit(f.r, job, done_cb, &b));
	T_CHECK(wait_count("POST /api2/json/nodes/pve/lxc/115/snapshot/mjc/rollback", p0.rollback + 1));
	sleep_ms(150);
	recon_cancel(f.r);
	fx_close(&f);
	T_EQ_INT(sim_control(&S, "POST", "/task-seconds", "{\"seconds\":0.05}", NULL, 0), 200);
	T_EQ_INT(b.n, 1);
	T_EQ_INT(b.last.outcome, TASK_OUT_NONE);
	sleep_ms(900);                        /* the rollback task failed meanwhile */
	if (fx_open_opts(&f, 2, 2, 5000)) {
		T_CHECK(0);
		free(job);
		return;
	}
	stats_expect(&f, 1, 1, 0);

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_jrow, &rows, &rec));
	T_EQ_INT(rows.n, 2);
	T_EQ_STR(jrow_action(&rows, "rollback", ""), "would close");
	T_EQ_INT(jrow(&rows, "rollback", "") ? (int)jrow(&rows, "rollback", "")->outcome : 0, TASK_OUT_FAILED);
	T_EQ_STR(jrow_action(&rows, "delete_snapshot", "continuation"), "would run (always)");

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_jrow, &rows, &rec));
	T_EQ_INT(rec.left, 0);
	T_EQ_INT(rec.continued, 1);
	T_EQ_STR(jrow_action(&rows, "rollback", ""), "closed");
	T_EQ_STR(jrow_action(&rows, "delete_snapshot", "continuation"), "ran, closed");
	posts3(115, "mjc", &p1);
	T_EQ_INT(p1.snap, p0.snap + 1);
	T_EQ_INT(p1.rollback, p0.rollback + 1);       /* posted once, never again */
	T_EQ_INT(p1.del, p0.del + 1);                 /* the ALWAYS step ran */
	T_CHECK(!snap_exists(115, "mjc"));
	stats_expect(&f, 0, 0, 0);
	idem_expect(&f, "mj-c", TASK_OUT_FAILED);
	T_EQ_INT(outbox_results(&f, "mj-op-c", out, sizeof(out)), 1);
	T_EQ_STR(out, "failed");
	fx_close(&f);
	pthread_mutex_destroy(&b.mu);
	free(job);
}

/* A job record that does not decode: the job is closed failed (typed,
 * "decode"), nothing of it runs; its step in flight is resolved alone
 * and does not overwrite the job's outcome. */
T_TEST(t_job_record_corrupt)
{
	struct fx f;
	struct store_txn *t = NULL;
	struct recon_recovery rec;
	struct jrows rows;
	struct idem_rec ir;
	unsigned char k[9];
	uint64_t id;
	long starts;
	const struct recon_recovery_row *row;

	if (fx_new(&f, 2, 2)) {
		T_CHECK(0);
		return;
	}
	guest_patch("{\"vmid\":107,\"status\":\"running\"}");
	starts = count("POST /api2/json/nodes/pve/lxc/107/status/start");
	id = intent(&f, "mj-bad", "start", 107, "{}", (int64_t)time(NULL));
	T_CHECK(id != 0);
	memset(&ir, 0, sizeof(ir));
	ir.jrnl_id = id;
	ir.expires_at = (int64_t)time(NULL) + 3600;
	T_OK(store_txn_begin(f.st, true, &t));
	T_OK(idem_put(t, "mj-bad", &ir));
	store_be64_put(k, id);
	k[8] = 'J';
	T_OK(store_put(t, STORE_DB_JRNL_OPEN, k, sizeof(k), "\x01garbage", 8));
	T_OK(store_txn_commit(t));
	stats_expect(&f, 2, 1, 1);            /* the entry, and the job that cannot say */

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_jrow, &rows, &rec));
	T_EQ_STR(jrow_action(&rows, "job", "job record unreadable"), "would close the job failed");
	idem_expect(&f, "mj-bad", TASK_OUT_NONE);

	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_jrow, &rows, &rec));
	T_EQ_INT(rec.jobs, 1);
	T_EQ_INT(rec.jobs_failed, 1);
	row = jrow(&rows, "start", "job record unreadable");
	T_CHECK(row && !strcmp(row->action, "job closed failed") && row->outcome == TASK_OUT_FAILED);
	T_EQ_STR(jrow_action(&rows, "start", "no task"), "closed (in effect)");
	memset(&ir, 0, sizeof(ir));
	T_OK(idem_get(f.st, "mj-bad", &ir));
	T_EQ_INT(ir.outcome, TASK_OUT_FAILED);
	T_EQ_STR(ir.reason, "decode");
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/107/status/start"), starts);
	stats_expect(&f, 0, 0, 0);
	fx_close(&f);
}

int main(void)
{
	const char *const args[] = { "--guests", "15", "--task-seconds", "0.05", NULL };

	t_tmpdir(g_dir, sizeof(g_dir));
	T_RUN(t_queue_order_and_parallelism);
	T_RUN(t_queue_one_lane_is_serial);
	T_RUN(t_queue_caps_refuse_and_drop);
	T_RUN(t_desired_validation);
	T_RUN(t_plan_pure);
	if (sim_start(&S, args) != 0) {
		printf("FAIL sim_start\n");
		return t_done() | 1;
	}
	T_RUN(t_planner_round_trip_converges);
	T_RUN(t_no_desired_state_means_no_mutation);
	T_RUN(t_task_semantics);
	T_RUN(t_global_mutation_cap);
	T_RUN(t_blocked);
	T_RUN(t_recovery_cases);
	T_RUN(t_planned_stop_of_customer_guest_is_pending);
	T_RUN(t_recovery_backup_prune);
	T_RUN(t_signed_op_outcome_in_outbox_once);
	T_RUN(t_job_resumes_after_crash_in_step1);
	T_RUN(t_job_resumes_between_steps);
	T_RUN(t_job_resumes_after_failed_step2);
	T_RUN(t_job_record_corrupt);
	sim_stop(&S);
	return t_done();
}
