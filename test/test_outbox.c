/* test_outbox.c — the durable outbox of op results (outbox.h): idempotent
 * put, batch shape and order, acknowledgement, restart persistence, the
 * pending cap, a small output buffer, and concurrent producers (group
 * commit and their own transactions) racing a batch/ack consumer: every
 * result delivered exactly once. Also runs under ThreadSanitizer. */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "outbox.h"
#include "store.h"
#include "storetest.h"

static char g_base[256];

static void put1(struct store *st, const char *id, enum task_outcome o, const char *reason)
{
	struct store_txn *t = NULL;

	T_OK(store_txn_begin(st, true, &t));
	T_OK(outbox_put(t, id, o, reason));
	T_OK(store_txn_commit(t));
}

static struct json *parse(const char *p, size_t n)
{
	struct json_limits lim = { 1 << 22, 8, false };
	struct json *j = NULL;

	if (json_parse(p, n, &lim, &j, NULL, 0) != 0)
		return NULL;
	return j;
}

/* The batch as "id=outcome/reason;..." (and *through). */
static int batch_str(struct store *st, size_t max, char *out, size_t outlen, uint64_t *through)
{
	struct buf b;
	struct json *j;
	size_t i;
	int r;

	out[0] = '\0';
	buf_init(&b, 1 << 20);
	r = outbox_batch(st, max, &b, through);
	if (r) {
		buf_free(&b);
		return r;
	}
	j = parse(b.data, b.len);
	if (!j || j->type != JSON_ARRAY) {
		buf_free(&b);
		json_free(j);
		return FH_ERR_DECODE;
	}
	for (i = 0; i < j->n; i++) {
		const struct json *e = j->items[i];
		const char *id = "?", *oc = "?", *rs = "?";

		/* exactly the three keys of SPEC §6, in this order */
		if (e->type != JSON_OBJECT || e->n != 3 || strcmp(e->keys[0], "id") != 0 ||
		    strcmp(e->keys[1], "outcome") != 0 || strcmp(e->keys[2], "reason") != 0)
			r = FH_ERR_DECODE;
		json_str(json_get(e, "id"), &id);
		json_str(json_get(e, "outcome"), &oc);
		json_str(json_get(e, "reason"), &rs);
		snprintf(out + strlen(out), outlen - strlen(out), "%s=%s/%s;", id, oc, rs);
	}
	json_free(j);
	buf_free(&b);
	return r;
}

T_TEST(t_put_batch_ack)
{
	char dir[300], s[4096];
	struct store *st = storetest_fresh(g_base, "o", dir, sizeof dir);
	uint64_t through = 99, n = 0, t1;
	struct buf b;

	T_OK(batch_str(st, 10, s, sizeof s, &through));
	T_EQ_STR(s, "");
	T_EQ_INT(through, 0);
	buf_init(&b, 64);
	T_OK(outbox_batch(st, 10, &b, &through));
	T_EQ_STR(buf_str(&b), "[]");
	buf_free(&b);

	put1(st, "op-1", TASK_OUT_EXECUTED, NULL);
	put1(st, "op-2", TASK_OUT_REJECTED, "replay");
	put1(st, "op-1", TASK_OUT_FAILED, "second");       /* kept: the first */
	put1(st, "op-3", TASK_OUT_PENDING_SIGNATURE, "");
	put1(st, "op-4", TASK_OUT_FAILED, "task_failed: \"exit\" code 1");
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, 4);

	T_OK(batch_str(st, 2, s, sizeof s, &through));
	T_EQ_STR(s, "op-1=executed/;op-2=rejected/replay;");
	t1 = through;
	/* a result put after the batch was built is not covered by its ack */
	put1(st, "op-5", TASK_OUT_EXECUTED, NULL);
	T_OK(outbox_ack(st, t1));
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, 3);
	T_OK(batch_str(st, 100, s, sizeof s, &through));
	T_EQ_STR(s, "op-3=pending_signature/;op-4=failed/task_failed: \"exit\" code 1;op-5=executed/;");
	/* acknowledging the same batch twice is harmless */
	T_OK(outbox_ack(st, t1));
	T_OK(outbox_ack(st, 0));
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, 3);

	/* restart: the pending ones are still there, in order */
	store_close(st);
	st = storetest_open(dir);
	T_OK(batch_str(st, 100, s, sizeof s, &through));
	T_EQ_STR(s, "op-3=pending_signature/;op-4=failed/task_failed: \"exit\" code 1;op-5=executed/;");
	T_OK(outbox_ack(st, through));
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, 0);
	T_OK(batch_str(st, 100, s, sizeof s, &through));
	T_EQ_STR(s, "");

	/* after an ack, the same id (the hub asked again) queues anew */
	put1(st, "op-1", TASK_OUT_EXECUTED, NULL);
	T_OK(batch_str(st, 100, s, sizeof s, &through));
	T_EQ_STR(s, "op-1=executed/;");
	store_close(st);
}

T_TEST(t_validation)
{
	char dir[300], longid[OUTBOX_ID_MAX + 2], longr[600], s[2048];
	struct store *st = storetest_fresh(g_base, "o", dir, sizeof dir);
	struct store_txn *t = NULL;
	uint64_t through = 0;
	struct json *j;
	struct buf b;
	const char *reason = NULL;

	T_OK(store_txn_begin(st, true, &t));
	T_ERR(outbox_put(t, "", TASK_OUT_EXECUTED, NULL), FH_ERR_INVAL);
	T_ERR(outbox_put(t, NULL, TASK_OUT_EXECUTED, NULL), FH_ERR_INVAL);
	T_ERR(outbox_put(t, "a\nb", TASK_OUT_EXECUTED, NULL), FH_ERR_INVAL);
	T_ERR(outbox_put(t, "op", TASK_OUT_NONE, NULL), FH_ERR_INVAL);
	T_ERR(outbox_put(t, "op", (enum task_outcome)7, NULL), FH_ERR_INVAL);
	memset(longid, 'i', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	T_ERR(outbox_put(t, longid, TASK_OUT_EXECUTED, NULL), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), 0);
	longid[OUTBOX_ID_MAX] = '\0';
	/* a long reason with a control byte is cut and cleaned */
	memset(longr, 'r', sizeof longr - 1);
	longr[sizeof longr - 1] = '\0';
	longr[0] = '\t';
	T_OK(outbox_put(t, longid, TASK_OUT_FAILED, longr));
	T_OK(store_txn_commit(t));
	T_OK(batch_str(st, 1, s, sizeof s, &through));
	buf_init(&b, 1 << 16);
	T_OK(outbox_batch(st, 1, &b, &through));
	j = parse(b.data, b.len);
	T_CHECK(j && j->n == 1);
	if (j && j->n == 1) {
		json_str(json_get(j->items[0], "reason"), &reason);
		T_EQ_INT(strlen(reason), OUTBOX_REASON_MAX);
		T_CHECK(reason[0] == '?');
	}
	json_free(j);

	/* a buffer too small for even one result: TOOBIG, untouched */
	buf_free(&b);
	buf_init(&b, 40);
	T_OK(buf_appendz(&b, "keep"));
	through = 1234;
	T_ERR(outbox_batch(st, 10, &b, &through), FH_ERR_TOOBIG);
	T_EQ_STR(buf_str(&b), "keep");
	T_EQ_INT(through, 1234);
	buf_free(&b);
	store_close(st);
}

/* A small buffer ends the batch early; the rest comes in the next one. */
T_TEST(t_batch_fits_buffer)
{
	char dir[300], id[32];
	struct store *st = storetest_fresh(g_base, "o", dir, sizeof dir);
	uint64_t through = 0, n = 0, rounds = 0;
	struct buf b;
	int i;

	for (i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "op-%02d", i);
		put1(st, id, TASK_OUT_EXECUTED, NULL);
	}
	do {
		struct json *j;

		buf_init(&b, 300);
		T_OK(outbox_batch(st, OUTBOX_BATCH_MAX, &b, &through));
		j = parse(b.data, b.len);
		T_CHECK(j != NULL && j->type == JSON_ARRAY);
		T_CHECK(b.len <= 300);
		if (j)
			n += j->n;
		json_free(j);
		buf_free(&b);
		T_OK(outbox_ack(st, through));
		rounds++;
	} while (through && rounds < 100);
	T_EQ_INT(n, 50);
	T_CHECK(rounds > 5);
	store_close(st);
}

T_TEST(t_pending_cap)
{
	char dir[300], id[32];
	struct store *st = storetest_fresh(g_base, "o", dir, sizeof dir);
	struct store_txn *t = NULL;
	uint64_t n = 0, through = 0;
	char s[512];
	int i;

	T_OK(store_txn_begin(st, true, &t));
	for (i = 0; i < OUTBOX_PENDING_MAX; i++) {
		snprintf(id, sizeof id, "cap-%06d", i);
		T_OK(outbox_put(t, id, TASK_OUT_EXECUTED, NULL));
	}
	T_ERR(outbox_put(t, "one-more", TASK_OUT_EXECUTED, NULL), FH_ERR_TOOBIG);
	/* an id already pending is still fine (nothing to add) */
	T_OK(outbox_put(t, "cap-000007", TASK_OUT_FAILED, NULL));
	T_EQ_INT(store_txn_err(t), 0);
	T_OK(store_txn_commit(t));
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, OUTBOX_PENDING_MAX);
	T_OK(batch_str(st, 1, s, sizeof s, &through));
	T_EQ_STR(s, "cap-000000=executed/;");
	T_OK(outbox_ack(st, through));
	put1(st, "one-more", TASK_OUT_EXECUTED, NULL);
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, OUTBOX_PENDING_MAX);
	store_close(st);
}

/* ---------------------------------------------------------- concurrency
 *
 * Producers put 900 distinct ids, half through store_write_grouped, half in
 * their own transactions; every tenth is put again at once (the hub
 * redelivering an op while its result is pending). A consumer builds
 * batches and acknowledges them meanwhile. Each id must be delivered once;
 * a redelivered id may come a second time only if its first copy had been
 * acknowledged before the redelivery (outbox.h). */

#define PRODUCERS 6
#define PER_PRODUCER 150

struct prod {
	struct store *st;
	int id;
	int errors;
};

struct gput {
	const char *id;
};

static int put_fn(struct store_txn *t, void *arg)
{
	struct gput *g = arg;

	return outbox_put(t, g->id, TASK_OUT_EXECUTED, "grouped");
}

static void *producer(void *arg)
{
	struct prod *p = arg;
	char id[32];
	int i;

	for (i = 0; i < PER_PRODUCER; i++) {
		snprintf(id, sizeof id, "p%d-%03d", p->id, i);
		if (i % 2) {
			struct gput g = { id };

			if (store_write_grouped(p->st, put_fn, &g) != 0)
				p->errors++;
		} else {
			struct store_txn *t = NULL;

			if (store_txn_begin(p->st, true, &t) != 0) {
				p->errors++;
				continue;
			}
			if (outbox_put(t, id, TASK_OUT_EXECUTED, NULL) != 0 || store_txn_commit(t) != 0)
				p->errors++;
			else if (i % 10 == 0) {
				/* a redelivery while pending: no second copy */
				struct gput g = { id };

				if (store_write_grouped(p->st, put_fn, &g) != 0)
					p->errors++;
			}
		}
	}
	return NULL;
}

struct cons {
	struct store *st;
	volatile int *stop;            /* read under the mutex */
	pthread_mutex_t *mu;
	unsigned char seen[PRODUCERS][PER_PRODUCER];
	int dup, errors, batches;
};

static int drain_once(struct cons *c)
{
	struct buf b;
	struct json *j;
	uint64_t through = 0;
	size_t i;
	int pi, k;

	buf_init(&b, 1 << 20);
	if (outbox_batch(c->st, 64, &b, &through) != 0) {
		c->errors++;
		buf_free(&b);
		return 0;
	}
	j = parse(b.data, b.len);
	buf_free(&b);
	if (!j) {
		c->errors++;
		return 0;
	}
	for (i = 0; i < j->n; i++) {
		const char *id = NULL;

		if (json_str(json_get(j->items[i], "id"), &id) != 0 ||
		    sscanf(id, "p%d-%d", &pi, &k) != 2 || pi < 0 || pi >= PRODUCERS || k < 0 ||
		    k >= PER_PRODUCER) {
			c->errors++;
			continue;
		}
		/* a redelivery (k % 10 == 0) that came after the first copy was
		 * acknowledged is queued anew by design: at most one extra */
		if (c->seen[pi][k] >= (k % 10 == 0 ? 2 : 1))
			c->dup++;
		c->seen[pi][k]++;
	}
	i = j->n;
	json_free(j);
	if (through && outbox_ack(c->st, through) != 0)
		c->errors++;
	c->batches++;
	return (int)i;
}

static void *consumer(void *arg)
{
	struct cons *c = arg;
	int stop;

	for (;;) {
		pthread_mutex_lock(c->mu);
		stop = *c->stop;
		pthread_mutex_unlock(c->mu);
		if (drain_once(c) == 0) {
			if (stop)
				break;
			usleep(200);
		}
	}
	return NULL;
}

T_TEST(t_concurrent_exactly_once)
{
	char dir[300];
	struct store *st = storetest_fresh(g_base, "o", dir, sizeof dir);
	pthread_t pt[PRODUCERS], ct;
	struct prod p[PRODUCERS];
	struct cons *c = calloc(1, sizeof *c);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	volatile int stop = 0;
	uint64_t n = 1;
	int i, k, missing = 0;

	c->st = st;
	c->stop = &stop;
	c->mu = &mu;
	T_OK(pthread_create(&ct, NULL, consumer, c));
	for (i = 0; i < PRODUCERS; i++) {
		p[i].st = st;
		p[i].id = i;
		p[i].errors = 0;
		T_OK(pthread_create(&pt[i], NULL, producer, &p[i]));
	}
	for (i = 0; i < PRODUCERS; i++) {
		pthread_join(pt[i], NULL);
		T_EQ_INT(p[i].errors, 0);
	}
	pthread_mutex_lock(&mu);
	stop = 1;
	pthread_mutex_unlock(&mu);
	pthread_join(ct, NULL);
	/* the consumer stopped on an empty batch after the producers ended */
	T_EQ_INT(c->errors, 0);
	T_EQ_INT(c->dup, 0);
	for (i = 0; i < PRODUCERS; i++)
		for (k = 0; k < PER_PRODUCER; k++)
			if (!c->seen[i][k])
				missing++;
	T_EQ_INT(missing, 0);
	T_OK(outbox_pending(st, &n));
	T_EQ_INT(n, 0);
	printf("  %d results from %d producers in %d batches, %d duplicates\n",
	       PRODUCERS * PER_PRODUCER, PRODUCERS, c->batches, c->dup);
	free(c);
	store_close(st);
}

int main(void)
{
	char tmp[200];

	t_tmpdir(tmp, sizeof tmp);
	snprintf(g_base, sizeof g_base, "%s", tmp);
	T_RUN(t_put_batch_ack);
	T_RUN(t_validation);
	T_RUN(t_batch_fits_buffer);
	T_RUN(t_pending_cap);
	T_RUN(t_concurrent_exactly_once);
	storetest_rm_tree(g_base);
	return t_done();
}
