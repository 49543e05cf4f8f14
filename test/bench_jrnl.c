/* bench_jrnl.c — the journal's cost per mutation and the recovery scan.
 * Prints figures, never fails.
 *
 *  1. intent + close: one durable commit for the intent, one for the close
 *     (the least a journaled mutation costs), per mutation;
 *  2. the full lifecycle of a signed job: [nonce + idempotency key +
 *     intent] commit, [UPID + posted] commit, [close + idempotency outcome
 *     + audit record + outbox result] commit;
 *  3. recovery: a store holding 100,000 closed and 1,000 in-flight entries
 *     (interleaved), reopened; jrnl_in_flight over it (what start-up
 *     recovery reads), and jrnl_foreach (the dump) for comparison;
 *     provenance lookups on it.
 * Each timed figure of 1-2 runs for FH_BENCH_SECONDS (default 1) in a fresh
 * store under $TMPDIR (or /tmp); every commit is synced (store.h).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "err.h"
#include "harness.h"
#include "idem.h"
#include "jrnl.h"
#include "nonce.h"
#include "outbox.h"
#include "store.h"

#define CLOSED_N 100000
#define OPEN_N 1000

static double g_secs = 1.0;
static char g_base[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store *open_store(const char *name)
{
	char dir[400];
	struct store_opts o;
	struct store *st = NULL;

	snprintf(dir, sizeof dir, "%s/%s", g_base, name);
	memset(&o, 0, sizeof o);
	o.dir = dir;
	if (store_open(&o, &st) != 0)
		return NULL;
	return st;
}

static void entry(struct jrnl_entry *e, long i)
{
	memset(e, 0, sizeof *e);
	snprintf(e->job_id, sizeof e->job_id, "op-%ld", i);
	e->source = JRNL_SRC_SIGNED;
	snprintf(e->op, sizeof e->op, "guest_snapshot");
	e->vmid = 100 + i % 500;
	snprintf(e->params, sizeof e->params, "{\"name\":\"bench-%ld\"}", i);
	snprintf(e->signer_key_id, sizeof e->signer_key_id, "ops-anna");
}

/* 1: intent commit + close commit. */
static int intent_close(struct store *st, struct jrnl_entry *e, long i)
{
	struct store_txn *t = NULL;
	uint64_t id = 0;
	int r;

	entry(e, i);
	r = store_txn_begin(st, true, &t);
	if (r)
		return r;
	r = jrnl_intent(t, e, &id);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	r = store_txn_commit(t);
	if (r)
		return r;
	r = store_txn_begin(st, true, &t);
	if (r)
		return r;
	r = jrnl_event(t, id, TASK_EV_POSTED);
	if (r == 0)
		r = jrnl_close(t, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t);
}

/* 2: the full signed-job lifecycle, three commits. */
static int lifecycle(struct store *st, struct jrnl_entry *e, long i)
{
	struct store_txn *t = NULL;
	struct idem_rec rec;
	struct audit_rec a;
	char key[64], nonce[64];
	uint64_t id = 0;
	int r;

	entry(e, i);
	snprintf(key, sizeof key, "op:op-%ld", i);
	snprintf(nonce, sizeof nonce, "bench-nonce-%ld", i);
	memset(&rec, 0, sizeof rec);
	rec.expires_at = 4000000000;
	r = store_txn_begin(st, true, &t);
	if (r)
		return r;
	r = nonce_record(t, nonce, 4000000000);
	if (r == 0)
		r = idem_put(t, key, &rec);
	if (r == 0)
		r = jrnl_intent(t, e, &id);
	if (r == 0)
		r = idem_set_outcome(t, key, TASK_OUT_NONE, NULL, id);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	if ((r = store_txn_commit(t)) != 0 || (r = store_txn_begin(st, true, &t)) != 0)
		return r;
	r = jrnl_set_upid(t, id, "UPID:pve:0000A1B2:0001C3D4:6650A1B2:vzsnapshot:101:agent@pve!t:");
	if (r == 0)
		r = jrnl_event(t, id, TASK_EV_POSTED);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	if ((r = store_txn_commit(t)) != 0 || (r = store_txn_begin(st, true, &t)) != 0)
		return r;
	memset(&a, 0, sizeof a);
	a.decision = AUDIT_SIGNED;
	a.op = e->op;
	a.guest_id = e->vmid;
	a.signer_key_id = e->signer_key_id;
	a.outcome = TASK_OUT_EXECUTED;
	r = jrnl_close(t, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL);
	if (r == 0)
		r = idem_set_outcome(t, key, TASK_OUT_EXECUTED, NULL, 0);
	if (r == 0)
		r = audit_append(t, &a, AUDIT_MAX_DEFAULT, NULL);
	if (r == 0)
		r = outbox_put(t, e->job_id, TASK_OUT_EXECUTED, NULL);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t);
}

static void timed(const char *label, const char *name,
                  int (*fn)(struct store *, struct jrnl_entry *, long))
{
	struct store *st = open_store(name);
	struct jrnl_entry *e = malloc(sizeof *e);
	struct store_stats s0, s1;
	double t0, el;
	long n = 0;
	int r = 0;

	if (!st || !e) {
		printf("%-48s store_open failed\n", label);
		free(e);
		store_close(st);
		return;
	}
	store_get_stats(st, &s0);
	t0 = now_s();
	do {
		r = fn(st, e, n);
		if (r)
			break;
		n++;
	} while (now_s() - t0 < g_secs);
	el = now_s() - t0;
	store_get_stats(st, &s1);
	if (r)
		printf("%-48s failed after %ld: %s\n", label, n, fh_strerror(r));
	else
		printf("%-48s %8.0f us/mutation %8.0f mutations/s %8.0f commits/s (%.0f commits/mutation)\n",
		       label, el * 1e6 / (double)n, (double)n / el,
		       (double)(s1.commits - s0.commits) / el,
		       (double)(s1.commits - s0.commits) / (double)n);
	free(e);
	store_close(st);
}

static int count_fn(const struct jrnl_entry *e, void *arg)
{
	(void)e;
	(*(long *)arg)++;
	return 0;
}

/* 3: 100,000 closed + 1,000 in-flight, one in-flight entry every 101. */
static void recovery(void)
{
	struct store *st = open_store("recovery");
	struct jrnl_entry *e = malloc(sizeof *e);
	struct store_txn *t = NULL;
	struct jrnl_provenance p;
	double t0, el;
	long i, n, open_seen = 0, all_seen = 0;
	uint64_t id;
	int r = 0;

	if (!st || !e) {
		printf("recovery: store_open failed\n");
		goto out;
	}
	t0 = now_s();
	for (i = 0; r == 0 && i < CLOSED_N + OPEN_N; i++) {
		if (i % 1000 == 0 && (r = store_txn_begin(st, true, &t)) != 0)
			break;
		entry(e, i);
		if (i % 101 == 100)
			e->vmid = 100000 + i;   /* in flight */
		else if (i % 7 == 0)
			e->flags = JRNL_F_CREATES_GUEST;
		r = jrnl_intent(t, e, &id);
		if (r == 0 && i % 101 != 100) {
			r = jrnl_event(t, id, TASK_EV_POSTED);
			if (r == 0)
				r = jrnl_close(t, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL);
		}
		if (r) {
			store_txn_abort(t);
			break;
		}
		if (i % 1000 == 999)
			r = store_txn_commit(t);
	}
	if (r) {
		printf("recovery: populating failed: %s\n", fh_strerror(r));
		goto out;
	}
	printf("populated %ld entries (%d in flight) in %.2f s (1000 per commit)\n", i,
	       (CLOSED_N + OPEN_N) / 101, now_s() - t0);
	/* a restart: reopen, then the recovery scan */
	{
		char dir[400];
		struct store_opts o;

		store_close(st);
		st = NULL;
		snprintf(dir, sizeof dir, "%s/recovery", g_base);
		memset(&o, 0, sizeof o);
		o.dir = dir;
		t0 = now_s();
		if (store_open(&o, &st) != 0) {
			printf("recovery: reopen failed\n");
			goto out;
		}
		printf("%-48s %8.2f ms\n", "store_open after the restart:", (now_s() - t0) * 1e3);
	}
	t0 = now_s();
	r = jrnl_in_flight(st, count_fn, &open_seen);
	el = now_s() - t0;
	printf("%-48s %8.2f ms for %ld entries (%.2f us/entry)%s\n", "jrnl_in_flight (the recovery scan):",
	       el * 1e3, open_seen, open_seen ? el * 1e6 / (double)open_seen : 0.0, r ? " FAILED" : "");
	t0 = now_s();
	r = jrnl_foreach(st, count_fn, &all_seen);
	el = now_s() - t0;
	printf("%-48s %8.2f ms for %ld entries (%.2f us/entry)%s\n", "jrnl_foreach (the dump):",
	       el * 1e3, all_seen, all_seen ? el * 1e6 / (double)all_seen : 0.0, r ? " FAILED" : "");
	t0 = now_s();
	for (n = 0; n < 1000; n++)
		if (jrnl_provenance(st, 100 + n % 500, &p) != 0)
			break;
	el = now_s() - t0;
	printf("%-48s %8.1f us/lookup\n", "jrnl_provenance (about 29 creates per vmid):", el * 1e6 / (double)n);
out:
	free(e);
	store_close(st);
}

int main(void)
{
	const char *s = getenv("FH_BENCH_SECONDS");

	if (s && atof(s) > 0)
		g_secs = atof(s);
	t_tmpdir(g_base, sizeof g_base);
	printf("filesystem of %s, %.1f s per timed figure; every commit synced\n", g_base, g_secs);
	timed("intent + close (2 commits):", "ic", intent_close);
	timed("signed job, full lifecycle (3 commits):", "lc", lifecycle);
	recovery();
	nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
