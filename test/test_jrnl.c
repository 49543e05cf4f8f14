/* test_jrnl.c — the journal (jrnl.h) and idempotency keys (idem.h) on a
 * real LMDB store: intent / UPID / events / close, invalid events refused
 * with nothing written, history replay equal to the persisted state,
 * in-flight iteration order (and a callback that writes), a nonce, an
 * idempotency key and an intent committed and aborted together, restart
 * persistence, retention pruning, provenance, validation, corrupt records,
 * idempotency records with their expiry pruning, and multi-step job
 * records (kept beside the in-flight entries, validated, counted as work
 * while between steps, corrupt ones typed). */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "idem.h"
#include "jrnl.h"
#include "nonce.h"
#include "store.h"
#include "task.h"

static char g_base[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct store *open_fresh(char *dir, size_t dirlen)
{
	static int n;
	struct store_opts o;
	struct store *st = NULL;

	snprintf(dir, dirlen, "%s/s%d", g_base, n++);
	memset(&o, 0, sizeof o);
	o.dir = dir;
	T_OK(store_open(&o, &st));
	return st;
}

static struct store *reopen(const char *dir)
{
	struct store_opts o;
	struct store *st = NULL;

	memset(&o, 0, sizeof o);
	o.dir = dir;
	T_OK(store_open(&o, &st));
	return st;
}

static void fill(struct jrnl_entry *e, const char *job, const char *op, int64_t vmid, uint32_t flags)
{
	memset(e, 0, sizeof *e);
	snprintf(e->job_id, sizeof e->job_id, "%s", job);
	e->source = JRNL_SRC_SIGNED;
	snprintf(e->op, sizeof e->op, "%s", op);
	e->vmid = vmid;
	snprintf(e->params, sizeof e->params, "{\"name\":\"snap1\"}");
	e->flags = flags;
	snprintf(e->signer_key_id, sizeof e->signer_key_id, "ops-anna");
}

/* One intent in its own committed transaction. */
static uint64_t intent1(struct store *st, const char *job, const char *op, int64_t vmid, uint32_t flags)
{
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	uint64_t id = 0;

	fill(e, job, op, vmid, flags);
	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_intent(t, e, &id));
	T_OK(store_txn_commit(t));
	free(e);
	return id;
}

static void event1(struct store *st, uint64_t id, enum task_event ev)
{
	struct store_txn *t = NULL;

	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_event(t, id, ev));
	T_OK(store_txn_commit(t));
}

static void close1(struct store *st, uint64_t id, enum task_event ev, enum task_outcome o)
{
	struct store_txn *t = NULL;

	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_close(t, id, ev, o, o == TASK_OUT_EXECUTED ? NULL : "task_failed", "detail"));
	T_OK(store_txn_commit(t));
}

/* A copy of the raw stored record of id (caller frees), for "nothing
 * written" checks. */
static void *raw(struct store *st, uint64_t id, size_t *len)
{
	struct store_txn *t = NULL;
	unsigned char k[8];
	const void *v;
	void *copy = NULL;
	int i;

	for (i = 7; i >= 0; i--)
		k[7 - i] = (unsigned char)(id >> (8 * i));
	*len = 0;
	if (store_txn_begin(st, false, &t) != 0)
		return NULL;
	if (store_get(t, STORE_DB_JRNL, k, 8, &v, len) == 0) {
		copy = malloc(*len);
		memcpy(copy, v, *len);
	}
	store_txn_abort(t);
	return copy;
}

/* ------------------------------------------------------------ lifecycle */

T_TEST(t_lifecycle)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	struct jrnl_stats s;
	enum task_event evs[JRNL_HIST_MAX];
	enum task_state replayed;
	uint64_t id;
	size_t i;

	id = intent1(st, "job-1", "guest_snapshot", 101, 0);
	T_EQ_INT(id, 1);
	T_OK(jrnl_get(st, id, e));
	T_EQ_INT(e->id, 1);
	T_EQ_STR(e->job_id, "job-1");
	T_EQ_STR(e->op, "guest_snapshot");
	T_EQ_STR(e->params, "{\"name\":\"snap1\"}");
	T_EQ_STR(e->signer_key_id, "ops-anna");
	T_EQ_INT(e->source, JRNL_SRC_SIGNED);
	T_EQ_INT(e->vmid, 101);
	T_EQ_INT(e->state, TASK_INTENT);
	T_EQ_INT(e->nhist, 1);
	T_EQ_INT(e->hist[0].ev, TASK_EV_INTENT);
	T_CHECK(e->created_at > 1700000000);
	T_EQ_INT(e->outcome, TASK_OUT_NONE);
	T_EQ_STR(e->upid, "");

	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_set_upid(t, id, "UPID:pve:0000A1B2:0001C3D4:6650A1B2:vzsnapshot:101:agent@pve!t:"));
	/* the same UPID again is a no-op, another one is refused */
	T_OK(jrnl_set_upid(t, id, "UPID:pve:0000A1B2:0001C3D4:6650A1B2:vzsnapshot:101:agent@pve!t:"));
	T_ERR(jrnl_set_upid(t, id, "UPID:other"), FH_ERR_INVAL);
	T_ERR(jrnl_set_upid(t, id, ""), FH_ERR_INVAL);
	T_ERR(jrnl_set_upid(t, id, "UPID:\n"), FH_ERR_INVAL);
	T_OK(jrnl_event(t, id, TASK_EV_POSTED));
	T_OK(store_txn_commit(t));
	event1(st, id, TASK_EV_RUNNING);
	T_OK(jrnl_get_stats(st, &s));
	T_EQ_INT(s.in_flight, 1);
	T_EQ_INT(s.closed, 0);
	close1(st, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);

	T_OK(jrnl_get(st, id, e));
	T_EQ_INT(e->state, TASK_SUCCEEDED);
	T_EQ_INT(e->outcome, TASK_OUT_EXECUTED);
	T_EQ_STR(e->reason, "");
	T_EQ_STR(e->text, "detail");
	T_CHECK(e->closed_at >= e->created_at);
	T_EQ_INT(e->nhist, 4);
	T_EQ_STR(task_event_name(e->hist[1].ev), "posted");
	T_EQ_STR(task_event_name(e->hist[2].ev), "running");
	T_EQ_STR(task_event_name(e->hist[3].ev), "succeeded");
	T_CHECK(e->upid[0] == 'U');
	for (i = 0; i < e->nhist; i++)
		evs[i] = e->hist[i].ev;
	T_OK(task_replay(evs, e->nhist, &replayed));
	T_EQ_INT(replayed, e->state);
	T_OK(jrnl_get_stats(st, &s));
	T_EQ_INT(s.in_flight, 0);
	T_EQ_INT(s.closed, 1);
	T_EQ_INT(s.next_id, 2);
	T_ERR(jrnl_get(st, 2, e), FH_ERR_NOT_FOUND);
	free(e);
	store_close(st);
}

/* An invalid event (or a call not allowed in the state) is refused, does not
 * poison the transaction, and writes nothing. */
T_TEST(t_invalid_event_writes_nothing)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	uint64_t a, b, other = 0;
	void *before, *after;
	size_t lb, la;

	a = intent1(st, "a", "guest_start", 100, 0);
	b = intent1(st, "b", "guest_start", 100, 0);
	before = raw(st, a, &lb);
	T_CHECK(before != NULL);

	T_OK(store_txn_begin(st, true, &t));
	T_ERR(jrnl_event(t, a, TASK_EV_RUNNING), FH_ERR_TASK_EVENT);      /* intent -> running */
	T_ERR(jrnl_event(t, a, TASK_EV_INTENT), FH_ERR_TASK_EVENT);       /* twice */
	T_ERR(jrnl_event(t, a, TASK_EV_REJECTED), FH_ERR_TASK_EVENT);     /* serializer only */
	T_ERR(jrnl_event(t, a, TASK_EV_ROLLED_BACK), FH_ERR_INVAL);       /* ends it: use close */
	T_ERR(jrnl_event(t, a, (enum task_event)99), FH_ERR_TASK_EVENT);
	T_ERR(jrnl_close(t, a, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL), FH_ERR_TASK_EVENT);
	T_ERR(jrnl_close(t, a, TASK_EV_POSTED, TASK_OUT_EXECUTED, NULL, NULL), FH_ERR_INVAL);
	T_ERR(jrnl_close(t, a, TASK_EV_FAILED, TASK_OUT_NONE, NULL, NULL), FH_ERR_INVAL);
	T_ERR(jrnl_close(t, a, TASK_EV_FAILED, TASK_OUT_FAILED, "Bad Reason", NULL), FH_ERR_INVAL);
	T_ERR(jrnl_event(t, 999, TASK_EV_POSTED), FH_ERR_NOT_FOUND);
	T_ERR(jrnl_event(t, 0, TASK_EV_POSTED), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), 0);
	/* the transaction is still good for other writes */
	T_OK(jrnl_event(t, b, TASK_EV_POSTED));
	T_OK(store_txn_commit(t));

	after = raw(st, a, &la);
	T_CHECK(after && la == lb && memcmp(before, after, lb) == 0);
	T_OK(jrnl_get(st, b, e));
	T_EQ_INT(e->state, TASK_POSTED);

	/* a closed entry takes nothing more */
	close1(st, b, TASK_EV_FAILED, TASK_OUT_FAILED);
	free(before);
	before = raw(st, b, &lb);
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(jrnl_event(t, b, TASK_EV_RUNNING), FH_ERR_TASK_EVENT);
	T_ERR(jrnl_close(t, b, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL), FH_ERR_TASK_EVENT);
	T_ERR(jrnl_set_upid(t, b, "UPID:late"), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), 0);
	T_OK(store_txn_commit(t));
	free(after);
	after = raw(st, b, &la);
	T_CHECK(after && la == lb && memcmp(before, after, lb) == 0);

	/* invalid input to jrnl_intent writes nothing and uses no id */
	fill(e, "x", "Guest-Start", 100, 0);
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* op charset */
	fill(e, "x", "", 100, 0);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* op empty */
	fill(e, "x", "guest_start", 0, 0);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* vmid 0 */
	fill(e, "x", "guest_start", 1000000000, 0);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* vmid too big */
	fill(e, "x", "guest_create", 100, JRNL_F_SCRATCH);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* scratch without create */
	fill(e, "x", "guest_create", JRNL_NO_VMID, JRNL_F_CREATES_GUEST);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* create without vmid */
	fill(e, "x", "guest_create", 100, 0x80);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* unknown flag */
	fill(e, "x", "guest_start", 100, 0);
	e->source = (enum jrnl_source)0;
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* source */
	fill(e, "x", "guest_start", 100, 0);
	memset(e->job_id, 'j', sizeof e->job_id);                    /* no NUL */
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);
	fill(e, "bad\tjob", "guest_start", 100, 0);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* control byte */
	fill(e, "caf\xc3\xa9", "guest_start", 100, 0);
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);              /* not ASCII */
	fill(e, "x", "guest_start", 100, 0);
	e->created_at = -5;
	T_ERR(jrnl_intent(t, e, &other), FH_ERR_INVAL);
	T_ERR(jrnl_set_upid(t, a, "UPID:\x80"), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), 0);
	fill(e, "ok", "host_op", JRNL_NO_VMID, 0);
	T_OK(jrnl_intent(t, e, &other));
	T_OK(store_txn_commit(t));
	T_EQ_INT(other, 3);   /* the refused intents used no id */
	T_EQ_INT(other, b + 1);
	free(before);
	free(after);
	free(e);
	store_close(st);
}

/* Every path the machine allows, persisted: the stored state is the replay
 * of the stored history, for every entry the dump walks. */
struct chk {
	size_t n;
	int bad;
};

static int check_replay(const struct jrnl_entry *e, void *arg)
{
	struct chk *c = arg;
	enum task_event evs[JRNL_HIST_MAX];
	enum task_state s;
	size_t i;

	for (i = 0; i < e->nhist; i++)
		evs[i] = e->hist[i].ev;
	if (task_replay(evs, e->nhist, &s) != 0 || s != e->state)
		c->bad++;
	if (task_state_terminal(e->state) != (e->outcome != TASK_OUT_NONE))
		c->bad++;
	c->n++;
	return 0;
}

T_TEST(t_history_replay)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct chk c = { 0, 0 };
	uint64_t id;

	id = intent1(st, "p1", "guest_stop", 100, 0);                  /* intent */
	id = intent1(st, "p2", "guest_stop", 100, 0);                  /* posted */
	event1(st, id, TASK_EV_POSTED);
	id = intent1(st, "p3", "guest_stop", 100, 0);                  /* running */
	event1(st, id, TASK_EV_POSTED);
	event1(st, id, TASK_EV_RUNNING);
	id = intent1(st, "p4", "guest_stop", 100, 0);                  /* posted -> succeeded */
	event1(st, id, TASK_EV_POSTED);
	close1(st, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	id = intent1(st, "p5", "guest_stop", 100, 0);                  /* running -> failed */
	event1(st, id, TASK_EV_POSTED);
	event1(st, id, TASK_EV_RUNNING);
	close1(st, id, TASK_EV_FAILED, TASK_OUT_FAILED);
	id = intent1(st, "p6", "guest_stop", 100, 0);                  /* intent -> failed */
	close1(st, id, TASK_EV_FAILED, TASK_OUT_FAILED);
	id = intent1(st, "p7", "guest_stop", 100, 0);                  /* intent -> rolled back */
	close1(st, id, TASK_EV_ROLLED_BACK, TASK_OUT_FAILED);
	id = intent1(st, "p8", "guest_stop", 100, 0);                  /* posted -> failed */
	event1(st, id, TASK_EV_POSTED);
	close1(st, id, TASK_EV_FAILED, TASK_OUT_FAILED);
	id = intent1(st, "p9", "guest_stop", 100, 0);                  /* running -> succeeded */
	event1(st, id, TASK_EV_POSTED);
	event1(st, id, TASK_EV_RUNNING);
	close1(st, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	T_OK(jrnl_foreach(st, check_replay, &c));
	T_EQ_INT(c.n, 9);
	T_EQ_INT(c.bad, 0);
	store_close(st);
}

/* ---------------------------------------------------------- iteration */

struct seen {
	uint64_t ids[2048];
	size_t n;
	struct store *st;
	bool close_them;
	int err;
};

static int collect(const struct jrnl_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < 2048)
		s->ids[s->n++] = e->id;
	if (task_state_terminal(e->state))
		s->err = 1;
	if (s->close_them) {
		/* resolving from inside the walk: the callback holds no txn */
		struct store_txn *t = NULL;
		int r = store_txn_begin(s->st, true, &t);

		if (r == 0)
			r = jrnl_close(t, e->id, TASK_EV_ROLLED_BACK, TASK_OUT_FAILED, "recovered", NULL);
		if (r == 0)
			r = store_txn_commit(t);
		else if (t)
			store_txn_abort(t);
		if (r)
			s->err = 2;
	}
	return 0;
}

static int collect_all_ok(const struct jrnl_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s && s->n < 2048)
		s->ids[s->n++] = e->id;
	return 0;
}

static int stop_at_3(const struct jrnl_entry *e, void *arg)
{
	(void)arg;
	return e->id >= 3 ? 42 : 0;
}

T_TEST(t_in_flight_order)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct seen *s = calloc(1, sizeof *s);
	struct jrnl_stats js;
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	bool open[301] = { false };
	uint64_t id, i, want = 0;
	size_t k;

	/* 300 intents in batches of 30 per transaction (more than JRNL_ITER_BATCH) */
	for (i = 0; i < 10; i++) {
		T_OK(store_txn_begin(st, true, &t));
		for (k = 0; k < 30; k++) {
			fill(e, "j", "guest_start", 100 + (int64_t)k, 0);
			T_OK(jrnl_intent(t, e, &id));
			open[id] = true;
		}
		T_OK(store_txn_commit(t));
	}
	/* close a scattered two thirds */
	for (id = 1; id <= 300; id++)
		if (id % 3 != 0) {
			if (id % 2)
				event1(st, id, TASK_EV_POSTED);
			close1(st, id, id % 2 ? TASK_EV_SUCCEEDED : TASK_EV_ROLLED_BACK,
			       id % 2 ? TASK_OUT_EXECUTED : TASK_OUT_FAILED);
			open[id] = false;
		}
	s->st = st;
	T_OK(jrnl_in_flight(st, collect, s));
	T_EQ_INT(s->err, 0);
	T_EQ_INT(s->n, 100);
	for (k = 0, id = 1; id <= 300; id++)
		if (open[id]) {
			if (k < s->n && s->ids[k] != id)
				t_failf(__FILE__, __LINE__, "in-flight #%zu is %llu, want %llu", k,
				        (unsigned long long)s->ids[k], (unsigned long long)id);
			k++;
			want++;
		}
	T_EQ_INT(want, 100);
	/* strictly increasing */
	for (k = 1; k < s->n; k++)
		T_CHECK(s->ids[k] > s->ids[k - 1]);

	/* the dump walks all 300 in order */
	memset(s, 0, sizeof *s);
	T_OK(jrnl_foreach(st, check_replay, &(struct chk){ 0, 0 }));
	T_ERR(jrnl_foreach(st, stop_at_3, NULL), 42);

	/* recovery-style: close every in-flight entry from inside the walk */
	s->st = st;
	s->close_them = true;
	T_OK(jrnl_in_flight(st, collect, s));
	T_EQ_INT(s->err, 0);
	T_EQ_INT(s->n, 100);
	memset(s, 0, sizeof *s);
	T_OK(jrnl_in_flight(st, collect, s));
	T_EQ_INT(s->n, 0);
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.in_flight, 0);
	T_EQ_INT(js.closed, 300);
	T_ERR(jrnl_in_flight(st, NULL, NULL), FH_ERR_INVAL);
	free(s);
	free(e);
	store_close(st);
}

/* ---------------------------------------------- joint commit and abort */

T_TEST(t_joint_commit_and_abort)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	struct idem_rec rec, got;
	uint64_t id = 0, id2 = 0;
	bool seen = false;

	memset(&rec, 0, sizeof rec);
	rec.expires_at = 4000000000;

	/* aborted: nothing of the three is there, and the id is not used */
	fill(e, "op-A", "guest_destroy", 150, JRNL_F_DESTROYS_GUEST);
	T_OK(store_txn_begin(st, true, &t));
	T_OK(nonce_record(t, "nonce-aaaaaaaaaaaa", 4000000000));
	T_OK(idem_put(t, "op:op-A", &rec));
	T_OK(jrnl_intent(t, e, &id));
	T_OK(idem_set_outcome(t, "op:op-A", TASK_OUT_NONE, NULL, id));
	store_txn_abort(t);
	T_OK(nonce_seen(st, "nonce-aaaaaaaaaaaa", &seen));
	T_CHECK(!seen);
	T_ERR(idem_get(st, "op:op-A", &got), FH_ERR_NOT_FOUND);
	T_ERR(jrnl_get(st, id, e), FH_ERR_NOT_FOUND);

	/* committed: all three, the idem record pointing at the intent */
	fill(e, "op-A", "guest_destroy", 150, JRNL_F_DESTROYS_GUEST);
	T_OK(store_txn_begin(st, true, &t));
	T_OK(nonce_record(t, "nonce-aaaaaaaaaaaa", 4000000000));
	T_OK(idem_put(t, "op:op-A", &rec));
	T_OK(jrnl_intent(t, e, &id2));
	T_OK(idem_set_outcome(t, "op:op-A", TASK_OUT_NONE, NULL, id2));
	/* the same key again in the same transaction: duplicate, not sticky */
	T_ERR(idem_put(t, "op:op-A", &rec), FH_ERR_DUPLICATE);
	T_EQ_INT(store_txn_err(t), 0);
	T_OK(store_txn_commit(t));
	T_EQ_INT(id2, id);    /* the aborted intent did not use up the id */
	T_OK(nonce_seen(st, "nonce-aaaaaaaaaaaa", &seen));
	T_CHECK(seen);
	T_OK(idem_get(st, "op:op-A", &got));
	T_EQ_INT(got.jrnl_id, id2);
	T_EQ_INT(got.outcome, TASK_OUT_NONE);
	T_OK(jrnl_get(st, id2, e));
	T_EQ_STR(e->job_id, "op-A");

	/* close the job: outcome in the journal and the idem record at once */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_event(t, id2, TASK_EV_POSTED));
	T_OK(jrnl_close(t, id2, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL));
	T_OK(idem_set_outcome(t, "op:op-A", TASK_OUT_EXECUTED, NULL, 0));
	T_OK(store_txn_commit(t));

	/* the hub redelivers op-A: the key is there, its outcome is reported */
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(idem_put(t, "op:op-A", &rec), FH_ERR_DUPLICATE);
	T_OK(idem_lookup(t, "op:op-A", &got));
	T_EQ_INT(got.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(got.jrnl_id, id2);
	T_ERR(nonce_record(t, "nonce-aaaaaaaaaaaa", 4000000000), FH_ERR_SIG_REPLAY);
	T_OK(store_txn_commit(t));
	free(e);
	store_close(st);
}

/* ------------------------------------------------------------- restart */

T_TEST(t_restart_persistence)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct seen *s = calloc(1, sizeof *s);
	struct jrnl_entry *e = calloc(1, sizeof *e);
	struct store_txn *t = NULL;
	uint64_t a, b, c, d;

	a = intent1(st, "r1", "guest_start", 100, 0);
	b = intent1(st, "r2", "guest_stop", 101, 0);
	event1(st, b, TASK_EV_POSTED);
	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_set_upid(t, b, "UPID:pve:1:2:3:vzstop:101:a@pve:"));
	T_OK(store_txn_commit(t));
	c = intent1(st, "r3", "guest_start", 102, 0);
	close1(st, c, TASK_EV_ROLLED_BACK, TASK_OUT_FAILED);
	store_close(st);

	st = reopen(dir);
	T_OK(jrnl_in_flight(st, collect, s));
	T_EQ_INT(s->n, 2);
	T_EQ_INT(s->ids[0], a);
	T_EQ_INT(s->ids[1], b);
	T_OK(jrnl_get(st, b, e));
	T_EQ_INT(e->state, TASK_POSTED);
	T_EQ_STR(e->upid, "UPID:pve:1:2:3:vzstop:101:a@pve:");
	T_OK(jrnl_get(st, c, e));
	T_EQ_INT(e->state, TASK_ROLLED_BACK);
	T_EQ_STR(e->reason, "task_failed");
	d = intent1(st, "r4", "guest_start", 103, 0);
	T_EQ_INT(d, c + 1);
	/* recovery after the restart finishes the posted one */
	event1(st, b, TASK_EV_RUNNING);
	close1(st, b, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	T_OK(jrnl_get(st, b, e));
	T_EQ_INT(e->state, TASK_SUCCEEDED);
	free(s);
	free(e);
	store_close(st);
}

/* ----------------------------------------------------------- retention */

T_TEST(t_retention_pruning)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct seen *s = calloc(1, sizeof *s);
	struct jrnl_entry *e = calloc(1, sizeof *e);
	struct jrnl_stats js;
	struct store_stats ss0, ss1;
	uint64_t id, pruned = 0, i, nid;

	/* 55 entries: every 11th stays in flight, the rest close */
	for (i = 1; i <= 55; i++) {
		id = intent1(st, "k", "guest_start", 100, 0);
		T_EQ_INT(id, i);
		if (i % 11 != 0)
			close1(st, id, TASK_EV_ROLLED_BACK, TASK_OUT_FAILED);
	}
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.closed, 50);
	T_EQ_INT(js.in_flight, 5);
	store_get_stats(st, &ss0);
	T_OK(jrnl_prune(st, 10, 3, &pruned));
	store_get_stats(st, &ss1);
	T_EQ_INT(pruned, 40);
	/* small transactions: 40 deletions at 3 per commit */
	T_CHECK(ss1.commits - ss0.commits >= 14);
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.closed, 10);
	T_EQ_INT(js.in_flight, 5);
	/* in-flight ones untouched */
	T_OK(jrnl_in_flight(st, collect, s));
	T_EQ_INT(s->n, 5);
	for (i = 0; i < 5; i++)
		T_EQ_INT(s->ids[i], 11 * (i + 1));
	/* the newest 10 closed survive: 44 and 45..54 minus 44 (in flight) */
	memset(s, 0, sizeof *s);
	T_OK(jrnl_foreach(st, collect_all_ok, s));
	T_EQ_INT(s->n, 15);
	T_EQ_INT(s->ids[0], 11);
	for (i = 1; i <= 54; i++) {
		int r = jrnl_get(st, i, e);
		bool kept = i % 11 == 0 || i >= 45;

		if (kept ? r != 0 : r != FH_ERR_NOT_FOUND)
			t_failf(__FILE__, __LINE__, "entry %llu: %s", (unsigned long long)i, fh_strerror(r));
	}
	/* nothing more to prune; ids are never reused */
	T_OK(jrnl_prune(st, 10, 3, &pruned));
	T_EQ_INT(pruned, 0);
	T_OK(jrnl_prune(st, 0, 100, &pruned));
	T_EQ_INT(pruned, 10);
	nid = intent1(st, "k", "guest_start", 100, 0);
	T_EQ_INT(nid, 56);
	T_ERR(jrnl_prune(st, 0, 0, &pruned), FH_ERR_INVAL);
	free(s);
	free(e);
	store_close(st);
}

/* ----------------------------------------------------------- provenance */

T_TEST(t_provenance)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct jrnl_provenance p;
	uint64_t c, d;

	/* nothing known: not created by the agent */
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(!p.created_by_agent && !p.scratch && p.create_id == 0);

	/* a scratch guest created by a restore test */
	c = intent1(st, "rt-1", "guest_restore", 200, JRNL_F_CREATES_GUEST | JRNL_F_SCRATCH);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(!p.created_by_agent);                  /* still in flight */
	event1(st, c, TASK_EV_POSTED);
	close1(st, c, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(p.created_by_agent);
	T_CHECK(p.scratch);
	T_EQ_INT(p.create_id, c);
	T_EQ_STR(p.create_job_id, "rt-1");
	/* other vmids (neighbours in key order) are not affected */
	T_OK(jrnl_provenance(st, 199, &p));
	T_CHECK(!p.created_by_agent);
	T_OK(jrnl_provenance(st, 201, &p));
	T_CHECK(!p.created_by_agent);

	/* a destroy that was never posted leaves it in place */
	d = intent1(st, "rt-1", "guest_destroy", 200, JRNL_F_DESTROYS_GUEST);
	close1(st, d, TASK_EV_ROLLED_BACK, TASK_OUT_FAILED);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(p.created_by_agent && p.scratch);
	/* a posted destroy ends it (even while running or when it failed) */
	d = intent1(st, "rt-1", "guest_destroy", 200, JRNL_F_DESTROYS_GUEST);
	event1(st, d, TASK_EV_POSTED);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(!p.created_by_agent && !p.scratch && p.create_id == 0);
	close1(st, d, TASK_EV_FAILED, TASK_OUT_FAILED);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(!p.created_by_agent);

	/* created again by the agent, not scratch this time */
	c = intent1(st, "prov-2", "guest_create", 200, JRNL_F_CREATES_GUEST);
	event1(st, c, TASK_EV_POSTED);
	close1(st, c, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(p.created_by_agent && !p.scratch);
	T_EQ_STR(p.create_job_id, "prov-2");

	/* a failed create gives nothing */
	c = intent1(st, "prov-3", "guest_create", 300, JRNL_F_CREATES_GUEST | JRNL_F_SCRATCH);
	event1(st, c, TASK_EV_POSTED);
	close1(st, c, TASK_EV_FAILED, TASK_OUT_FAILED);
	T_OK(jrnl_provenance(st, 300, &p));
	T_CHECK(!p.created_by_agent && !p.scratch);

	/* an op without flags on the vmid (e.g. hub-supplied "scratch" in its
	 * params) is not provenance */
	c = intent1(st, "hub", "guest_set_config", 400, 0);
	event1(st, c, TASK_EV_POSTED);
	close1(st, c, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	T_OK(jrnl_provenance(st, 400, &p));
	T_CHECK(!p.created_by_agent);

	/* provenance survives a restart; pruning its create loses it (fail safe) */
	store_close(st);
	st = reopen(dir);
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(p.created_by_agent);
	T_OK(jrnl_prune(st, 0, 64, NULL));
	T_OK(jrnl_provenance(st, 200, &p));
	T_CHECK(!p.created_by_agent);

	T_ERR(jrnl_provenance(st, 0, &p), FH_ERR_INVAL);
	T_ERR(jrnl_provenance(st, 1000000000, &p), FH_ERR_INVAL);
	T_ERR(jrnl_provenance(st, -1, &p), FH_ERR_INVAL);
	store_close(st);
}

/* ---------------------------------------------------- text and corruption */

T_TEST(t_close_text_cleaned)
{
	char dir[300], text[1000];
	struct store *st = open_fresh(dir, sizeof dir);
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	uint64_t id = intent1(st, "t", "guest_start", 100, 0);
	size_t i;

	/* control bytes and invalid UTF-8 become '?', valid UTF-8 stays */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_close(t, id, TASK_EV_FAILED, TASK_OUT_FAILED, "task_failed",
	                "line1\nline2 \xff\xc3\xa9 \xed\xa0\x80!"));
	T_OK(store_txn_commit(t));
	T_OK(jrnl_get(st, id, e));
	T_EQ_STR(e->text, "line1?line2 ?\xc3\xa9 ??" "?!");

	/* long text is cut at the cap without splitting a sequence */
	id = intent1(st, "t", "guest_start", 100, 0);
	text[0] = 'a';   /* then 2-byte sequences: one straddles byte 256 */
	for (i = 1; i + 2 < sizeof text; i += 2)
		memcpy(text + i, "\xc3\xa9", 2);
	text[i] = '\0';
	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_close(t, id, TASK_EV_FAILED, TASK_OUT_FAILED, NULL, text));
	T_OK(store_txn_commit(t));
	T_OK(jrnl_get(st, id, e));
	T_EQ_INT(strlen(e->text), JRNL_TEXT_MAX - 1);
	T_CHECK(e->text[0] == 'a');
	T_CHECK((unsigned char)e->text[JRNL_TEXT_MAX - 2] == 0xa9);
	free(e);
	store_close(st);
}

T_TEST(t_corrupt_record)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof *e);
	unsigned char k[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	const void *v;
	unsigned char *copy;
	size_t vl;
	uint64_t id = intent1(st, "c", "guest_start", 100, 0);

	T_EQ_INT(id, 1);
	/* the stored state byte says posted, the history says intent */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(store_get(t, STORE_DB_JRNL, k, 8, &v, &vl));
	copy = malloc(vl);
	memcpy(copy, v, vl);
	copy[2] = TASK_POSTED;
	T_OK(store_put(t, STORE_DB_JRNL, k, 8, copy, vl));
	T_OK(store_txn_commit(t));
	T_ERR(jrnl_get(st, id, e), FH_ERR_DECODE);
	T_ERR(jrnl_in_flight(st, collect_all_ok, NULL), FH_ERR_DECODE);
	/* the write calls refuse it without poisoning the transaction */
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(jrnl_event(t, id, TASK_EV_RUNNING), FH_ERR_DECODE);
	T_EQ_INT(store_txn_err(t), 0);
	/* truncated, and trailing bytes */
	T_OK(store_put(t, STORE_DB_JRNL, k, 8, copy, vl - 1));
	T_OK(store_txn_commit(t));
	T_ERR(jrnl_get(st, id, e), FH_ERR_DECODE);
	free(copy);
	free(e);
	store_close(st);
}

/* --------------------------------------------------------------- idem */

T_TEST(t_idem)
{
	char dir[300], longkey[IDEM_KEY_MAX + 2];
	struct store *st = open_fresh(dir, sizeof dir);
	struct store_txn *t = NULL;
	struct idem_rec rec, got;
	uint64_t pruned = 0;
	int i;

	memset(&rec, 0, sizeof rec);
	T_OK(store_txn_begin(st, true, &t));
	rec.expires_at = 0;
	T_ERR(idem_put(t, "job:a", &rec), FH_ERR_INVAL);             /* expiry required */
	rec.expires_at = 1000;
	rec.outcome = (enum task_outcome)9;
	T_ERR(idem_put(t, "job:a", &rec), FH_ERR_INVAL);
	rec.outcome = TASK_OUT_NONE;
	snprintf(rec.reason, sizeof rec.reason, "Bad");
	T_ERR(idem_put(t, "job:a", &rec), FH_ERR_INVAL);
	rec.reason[0] = '\0';
	T_ERR(idem_put(t, "", &rec), FH_ERR_INVAL);
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	T_ERR(idem_put(t, longkey, &rec), FH_ERR_INVAL);
	longkey[IDEM_KEY_MAX] = '\0';
	T_OK(idem_put(t, longkey, &rec));                            /* exactly at the cap */
	T_EQ_INT(store_txn_err(t), 0);
	/* 20 keys with expiries 1001..1020 */
	for (i = 0; i < 20; i++) {
		char key[32];

		snprintf(key, sizeof key, "job:%02d", i);
		rec.expires_at = 1001 + i;
		T_OK(idem_put(t, key, &rec));
	}
	T_OK(store_txn_commit(t));

	T_OK(store_txn_begin(st, true, &t));
	T_ERR(idem_set_outcome(t, "job:missing", TASK_OUT_REJECTED, "replay", 0), FH_ERR_NOT_FOUND);
	T_OK(idem_set_outcome(t, "job:05", TASK_OUT_REJECTED, "role_denied", 0));
	T_OK(idem_set_outcome(t, "job:06", TASK_OUT_EXECUTED, NULL, 77));
	T_ERR(idem_set_outcome(t, "job:06", TASK_OUT_EXECUTED, "No Caps", 77), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), 0);
	T_OK(store_txn_commit(t));
	T_OK(idem_get(st, "job:05", &got));
	T_EQ_INT(got.outcome, TASK_OUT_REJECTED);
	T_EQ_STR(got.reason, "role_denied");
	T_EQ_INT(got.jrnl_id, 0);
	T_EQ_INT(got.expires_at, 1006);
	T_CHECK(got.created_at > 0);
	T_OK(idem_get(st, "job:06", &got));
	T_EQ_INT(got.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(got.jrnl_id, 77);
	T_ERR(idem_get(st, "job:nope", &got), FH_ERR_NOT_FOUND);

	/* prune what expired before 1011 (the long key at 1000 and 001..010),
	 * 3 per transaction; survives a restart */
	T_OK(idem_prune(st, 1011, 3, &pruned));
	T_EQ_INT(pruned, 11);
	store_close(st);
	st = reopen(dir);
	T_ERR(idem_get(st, longkey, &got), FH_ERR_NOT_FOUND);
	T_ERR(idem_get(st, "job:09", &got), FH_ERR_NOT_FOUND);
	T_OK(idem_get(st, "job:10", &got));
	T_OK(idem_get(st, "job:19", &got));
	T_OK(idem_prune(st, 1011, 3, &pruned));
	T_EQ_INT(pruned, 0);
	T_ERR(idem_prune(st, 1011, 0, &pruned), FH_ERR_INVAL);
	T_OK(idem_prune(st, INT64_MAX, 100, &pruned));
	T_EQ_INT(pruned, 10);
	store_close(st);
}

/* ---------------------------------------------------- job records */

static void job_fill(struct jrnl_job *j, uint64_t first)
{
	static const char *const ops[] = { "snapshot", "rollback", "delete_snapshot" };
	size_t i;

	memset(j, 0, sizeof *j);
	j->id = first;
	j->source = JRNL_SRC_SELFTEST;
	snprintf(j->job_id, sizeof j->job_id, "selftest:101:1");
	snprintf(j->op_id, sizeof j->op_id, "op-7");
	j->idem_expires_at = 2000000000;
	j->nsteps = 3;
	for (i = 0; i < 3; i++) {
		snprintf(j->steps[i].op, sizeof j->steps[i].op, "%s", ops[i]);
		j->steps[i].vmid = 101;
		snprintf(j->steps[i].params, sizeof j->steps[i].params, "{\"name\":\"s1\"}");
	}
	j->steps[2].flags = JRNL_JOB_STEP_ALWAYS;
	j->steps[0].entry_id = first;
	j->outcome = TASK_OUT_NONE;
}

static int job_put1(struct store *st, const struct jrnl_job *j)
{
	struct store_txn *t = NULL;
	int r = store_txn_begin(st, true, &t);

	if (r)
		return r;
	r = jrnl_job_put(t, j);
	if (r) {
		T_EQ_INT(store_txn_err(t), 0);    /* refused: not sticky */
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t);
}

struct jseen {
	int n, bad;
	uint64_t ids[16];
};

static int job_seen(uint64_t id, const struct jrnl_job *j, int rc, void *arg)
{
	struct jseen *s = arg;

	if (s->n < 16)
		s->ids[s->n++] = id;
	if (!j) {
		if (rc != FH_ERR_DECODE)
			s->bad = 100;
		s->bad++;
	} else if (j->id != id) {
		s->bad = 1000;
	}
	return 0;
}

T_TEST(t_job_records)
{
	char dir[300];
	struct store *st = open_fresh(dir, sizeof dir);
	struct jrnl_job *j = calloc(1, sizeof *j), *g = calloc(1, sizeof *g);
	struct jrnl_stats js;
	struct seen s;
	struct jseen js2;
	struct store_txn *t = NULL;
	unsigned char k[9];
	uint64_t a, b, c, d;

	/* entries 1..4 in flight; jobs on 1 and 3 */
	a = intent1(st, "selftest:101:1", "snapshot", 101, 0);
	b = intent1(st, "other", "start", 102, 0);
	c = intent1(st, "job-c", "start", 103, 0);
	d = intent1(st, "x", "stop", 104, 0);
	T_CHECK(a == 1 && b == 2 && c == 3 && d == 4);
	job_fill(j, a);
	T_OK(job_put1(st, j));
	job_fill(g, c);
	g->steps[0].vmid = g->steps[1].vmid = g->steps[2].vmid = 103;
	T_OK(job_put1(st, g));
	T_OK(jrnl_job_get(st, a, g));
	T_EQ_INT(g->id, a);
	T_EQ_INT(g->nsteps, 3);
	T_EQ_STR(g->steps[1].op, "rollback");
	T_EQ_STR(g->steps[2].params, "{\"name\":\"s1\"}");
	T_EQ_INT(g->steps[2].flags, JRNL_JOB_STEP_ALWAYS);
	T_EQ_STR(g->op_id, "op-7");
	T_CHECK(g->created_at > 0 && g->updated_at >= g->created_at);
	/* the in-flight walk sees entries only, in order */
	memset(&s, 0, sizeof s);
	T_OK(jrnl_in_flight(st, collect_all_ok, &s));
	T_EQ_INT(s.n, 4);
	T_CHECK(s.ids[0] == 1 && s.ids[1] == 2 && s.ids[2] == 3 && s.ids[3] == 4);
	/* the job walk sees jobs only */
	memset(&js2, 0, sizeof js2);
	T_OK(jrnl_jobs_open(st, job_seen, &js2));
	T_EQ_INT(js2.n, 2);
	T_EQ_INT(js2.bad, 0);
	T_CHECK(js2.ids[0] == a && js2.ids[1] == c);
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.in_flight, 4);
	T_EQ_INT(js.jobs_open, 2);
	T_EQ_INT(js.jobs_waiting, 0);

	/* step 1 closed, step 2 not admitted: the job waits, and counts as
	 * work in flight */
	event1(st, a, TASK_EV_POSTED);
	close1(st, a, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED);
	j->cur = 1;
	j->outcome = TASK_OUT_EXECUTED;
	T_OK(job_put1(st, j));
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.in_flight, 3 + 1);
	T_EQ_INT(js.jobs_waiting, 1);
	memset(&s, 0, sizeof s);
	T_OK(jrnl_in_flight(st, collect_all_ok, &s));
	T_EQ_INT(s.n, 3);
	/* step 2 admitted as entry 5 */
	j->steps[1].entry_id = intent1(st, "selftest:101:1", "rollback", 101, 0);
	T_EQ_INT(j->steps[1].entry_id, 5);
	T_OK(job_put1(st, j));
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.in_flight, 4);
	T_EQ_INT(js.jobs_waiting, 0);

	/* validation: refused, nothing written, not sticky */
	*g = *j;
	g->nsteps = 1;
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->cur = 3;
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->steps[2].entry_id = 9;             /* a step after cur with an entry */
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->steps[0].entry_id = 2;             /* the first step is the key */
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->steps[1].flags = 0x800;
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	snprintf(g->steps[1].op, sizeof g->steps[1].op, "Roll-back");
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->outcome = TASK_OUT_PENDING_SIGNATURE;
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->reason = 5;
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->op_id[3] = '\n';
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	*g = *j;
	g->idem_expires_at = 0;
	T_ERR(job_put1(st, g), FH_ERR_INVAL);
	T_OK(jrnl_job_get(st, a, g));
	T_EQ_INT(g->cur, 1);
	T_EQ_INT(g->steps[1].entry_id, 5);

	/* persisted across a restart */
	store_close(st);
	st = reopen(dir);
	T_OK(jrnl_job_get(st, a, g));
	T_EQ_INT(g->steps[1].entry_id, 5);

	/* a record that does not decode: typed, and the walk reports it */
	T_OK(store_txn_begin(st, true, &t));
	store_be64_put(k, c);
	k[8] = 'J';
	T_OK(store_put(t, STORE_DB_JRNL_OPEN, k, sizeof k, "\x01\x07", 2));
	T_OK(store_txn_commit(t));
	T_ERR(jrnl_job_get(st, c, g), FH_ERR_DECODE);
	memset(&js2, 0, sizeof js2);
	T_OK(jrnl_jobs_open(st, job_seen, &js2));
	T_EQ_INT(js2.n, 2);
	T_EQ_INT(js2.bad, 1);
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.jobs_waiting, 1);         /* the unreadable one: recovery must look */
	/* a valid record with a byte flipped in its step count, and one
	 * with a byte trailing */
	{
		const void *v;
		size_t vl;
		unsigned char *cp;

		T_OK(store_txn_begin(st, true, &t));
		store_be64_put(k, a);
		T_OK(store_get(t, STORE_DB_JRNL_OPEN, k, sizeof k, &v, &vl));
		cp = malloc(vl + 1);
		memcpy(cp, v, vl);
		cp[vl] = 0;
		T_OK(store_put(t, STORE_DB_JRNL_OPEN, k, sizeof k, cp, vl + 1));
		T_OK(store_txn_commit(t));
		T_ERR(jrnl_job_get(st, a, g), FH_ERR_DECODE);
		cp[2] = 9;
		T_OK(store_txn_begin(st, true, &t));
		T_OK(store_put(t, STORE_DB_JRNL_OPEN, k, sizeof k, cp, vl));
		T_OK(store_txn_commit(t));
		T_ERR(jrnl_job_get(st, a, g), FH_ERR_DECODE);
		cp[2] = 3;
		T_OK(store_txn_begin(st, true, &t));
		T_OK(store_put(t, STORE_DB_JRNL_OPEN, k, sizeof k, cp, vl));
		T_OK(store_txn_commit(t));
		T_OK(jrnl_job_get(st, a, g));
		free(cp);
	}

	/* deleted with the job's end; a second delete is NOT_FOUND */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(jrnl_job_del(t, a));
	T_ERR(jrnl_job_del(t, a), FH_ERR_NOT_FOUND);
	T_OK(jrnl_job_del(t, c));
	T_OK(store_txn_commit(t));
	T_ERR(jrnl_job_get(st, a, g), FH_ERR_NOT_FOUND);
	memset(&js2, 0, sizeof js2);
	T_OK(jrnl_jobs_open(st, job_seen, &js2));
	T_EQ_INT(js2.n, 0);
	T_OK(jrnl_get_stats(st, &js));
	T_EQ_INT(js.jobs_open, 0);
	T_EQ_INT(js.in_flight, 4);
	/* pruning leaves job records alone (none here), entries still walk */
	memset(&s, 0, sizeof s);
	T_OK(jrnl_in_flight(st, collect_all_ok, &s));
	T_EQ_INT(s.n, 4);
	free(j);
	free(g);
	store_close(st);
}

int main(void)
{
	char tmp[200];

	t_tmpdir(tmp, sizeof tmp);
	snprintf(g_base, sizeof g_base, "%s", tmp);
	T_RUN(t_lifecycle);
	T_RUN(t_invalid_event_writes_nothing);
	T_RUN(t_history_replay);
	T_RUN(t_in_flight_order);
	T_RUN(t_joint_commit_and_abort);
	T_RUN(t_restart_persistence);
	T_RUN(t_retention_pruning);
	T_RUN(t_provenance);
	T_RUN(t_close_text_cleaned);
	T_RUN(t_corrupt_record);
	T_RUN(t_idem);
	T_RUN(t_job_records);
	nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
