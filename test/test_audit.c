/* test_audit.c — the bounded audit log (audit.h): bounds and pruning (in
 * the append's transaction and in small later ones), validation without
 * side effects, restart persistence, and the tail's JSON checked element
 * by element against vectors/host-report.golden.json's audit_tail entry
 * (same keys in the same order, same value types). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "store.h"
#include "storetest.h"

static char g_base[256];

static struct json *parse(const char *p, size_t n)
{
	struct json_limits lim = { 1 << 22, 16, false };
	struct json *j = NULL;
	char err[128];

	if (json_parse(p, n, &lim, &j, err, sizeof err) != 0) {
		t_failf(__FILE__, __LINE__, "json: %s", err);
		return NULL;
	}
	return j;
}

static void rec(struct audit_rec *r, int64_t at, const char *op, int64_t guest)
{
	memset(r, 0, sizeof *r);
	r->at = at;
	r->decision = AUDIT_SIGNED;
	r->op = op;
	r->guest_id = guest;
	r->signer_key_id = "ops-anna";
	r->outcome = TASK_OUT_EXECUTED;
	r->reason = "";
}

static void append(struct store *st, const struct audit_rec *r, uint64_t max)
{
	struct store_txn *t = NULL;

	T_OK(store_txn_begin(st, true, &t));
	T_OK(audit_append(t, r, max, NULL));
	T_OK(store_txn_commit(t));
}

/* The op names of the tail, in order, as "a,b,c". */
static void tail_ops(struct store *st, size_t n, char *out, size_t outlen)
{
	struct buf b;
	struct json *j;
	size_t i;

	out[0] = '\0';
	buf_init(&b, 1 << 20);
	T_OK(audit_tail_json(st, n, &b));
	j = parse(b.data ? b.data : "", b.len);
	if (j && j->type == JSON_ARRAY)
		for (i = 0; i < j->n; i++) {
			const char *op = "";

			json_str(json_get(j->items[i], "op"), &op);
			if (i)
				strncat(out, ",", outlen - strlen(out) - 1);
			strncat(out, op, outlen - strlen(out) - 1);
		}
	else
		t_failf(__FILE__, __LINE__, "tail is not an array");
	json_free(j);
	buf_free(&b);
}

T_TEST(t_bounds)
{
	char dir[300], ops[4096], name[16];
	struct store *st = storetest_fresh(g_base, "a", dir, sizeof dir);
	struct audit_rec r;
	uint64_t n = 0, pruned = 0;
	int i;

	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 0);
	tail_ops(st, 10, ops, sizeof ops);
	T_EQ_STR(ops, "");
	for (i = 1; i <= 25; i++) {
		snprintf(name, sizeof name, "op%d", i);
		rec(&r, 1781000000 + i, name, 101);
		append(st, &r, 10);
	}
	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 10);
	tail_ops(st, 3, ops, sizeof ops);
	T_EQ_STR(ops, "op23,op24,op25");           /* newest, oldest first */
	tail_ops(st, 100, ops, sizeof ops);
	T_EQ_STR(ops, "op16,op17,op18,op19,op20,op21,op22,op23,op24,op25");
	tail_ops(st, 0, ops, sizeof ops);
	T_EQ_STR(ops, "");

	/* a raised bound keeps more; a lowered one prunes at most
	 * AUDIT_PRUNE_PER_APPEND per append, audit_prune does the rest */
	for (i = 26; i <= 60; i++) {
		snprintf(name, sizeof name, "op%d", i);
		rec(&r, 1781000000 + i, name, 101);
		append(st, &r, 1000);
	}
	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 45);
	rec(&r, 1781000100, "op61", 101);
	append(st, &r, 5);
	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 46 - AUDIT_PRUNE_PER_APPEND);
	T_OK(audit_prune(st, 5, 4, &pruned));
	T_EQ_INT(pruned, 46 - AUDIT_PRUNE_PER_APPEND - 5);
	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 5);
	tail_ops(st, 100, ops, sizeof ops);
	T_EQ_STR(ops, "op57,op58,op59,op60,op61");
	T_OK(audit_prune(st, 5, 4, &pruned));
	T_EQ_INT(pruned, 0);
	T_ERR(audit_prune(st, 5, 0, &pruned), FH_ERR_INVAL);

	/* restart */
	store_close(st);
	st = storetest_open(dir);
	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 5);
	tail_ops(st, 2, ops, sizeof ops);
	T_EQ_STR(ops, "op60,op61");
	store_close(st);
}

T_TEST(t_validation)
{
	char dir[300], ops[256], longop[80];
	struct store *st = storetest_fresh(g_base, "a", dir, sizeof dir);
	struct store_txn *t = NULL;
	struct audit_rec r;
	uint64_t n = 0, seq = 0;

	T_OK(store_txn_begin(st, true, &t));
	rec(&r, 0, "Guest_Destroy", 101);
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);
	rec(&r, 0, "", 101);
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);
	memset(longop, 'a', sizeof longop - 1);
	longop[sizeof longop - 1] = '\0';
	rec(&r, 0, longop, 101);
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);
	rec(&r, 0, "guest_destroy", 0);
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);          /* vmid 0 */
	rec(&r, 0, "guest_destroy", 101);
	r.decision = (enum audit_decision)0;
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);
	rec(&r, 0, "guest_destroy", 101);
	r.outcome = TASK_OUT_NONE;
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);
	rec(&r, 0, "guest_destroy", 101);
	r.signer_key_id = "key\nid";
	T_ERR(audit_append(t, &r, 10, NULL), FH_ERR_INVAL);
	rec(&r, 0, "guest_destroy", 101);
	T_ERR(audit_append(t, &r, AUDIT_MAX_ENTRIES + 1, NULL), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), 0);
	/* at 0 means now; max 0 means the default */
	rec(&r, 0, "guest_destroy", AUDIT_NO_GUEST);
	r.signer_key_id = NULL;
	r.reason = NULL;
	T_OK(audit_append(t, &r, 0, &seq));
	T_EQ_INT(seq, 1);
	T_OK(store_txn_commit(t));
	T_OK(audit_count(st, &n));
	T_EQ_INT(n, 1);
	tail_ops(st, 5, ops, sizeof ops);
	T_EQ_STR(ops, "guest_destroy");
	store_close(st);
}

/* The tail's elements have exactly the golden audit_tail element's keys,
 * in its order, with the same JSON types; values round-trip. */
T_TEST(t_tail_matches_golden)
{
	char dir[300];
	struct store *st = storetest_fresh(g_base, "a", dir, sizeof dir);
	struct json *golden = NULL, *mine = NULL;
	const struct json *gt, *ge;
	struct audit_rec r;
	struct buf b;
	struct tm tm;
	size_t glen = 0, i, k;
	char *gtext = t_slurp("vectors/host-report.golden.json", &glen);
	const char *s = NULL;
	int64_t at;

	T_CHECK(gtext != NULL);
	if (!gtext)
		return;
	golden = parse(gtext, glen);
	gt = json_get(golden, "audit_tail");
	T_CHECK(gt && gt->type == JSON_ARRAY && gt->n >= 1);
	if (!gt || gt->n < 1)
		goto out;
	ge = gt->items[0];

	/* the golden entry itself, then a host-scoped rejection with a reason
	 * that needs escaping, then an unsigned benign one */
	memset(&tm, 0, sizeof tm);
	T_CHECK(strptime("2026-06-08T18:20:11Z", "%Y-%m-%dT%H:%M:%SZ", &tm) != NULL);
	at = (int64_t)timegm(&tm);
	rec(&r, at, "guest_rollback", 101);
	append(st, &r, 100);
	memset(&r, 0, sizeof r);
	r.at = at + 1;
	r.decision = AUDIT_REJECTED;
	r.op = "signer_rotate";
	r.guest_id = AUDIT_NO_GUEST;
	r.signer_key_id = "rec-1";
	r.outcome = TASK_OUT_REJECTED;
	r.reason = "role_denied: \"quoted\" \\ caf\xc3\xa9\x01";
	append(st, &r, 100);
	memset(&r, 0, sizeof r);
	r.at = at + 2;
	r.decision = AUDIT_BENIGN;
	r.op = "guest_start";
	r.guest_id = 102;
	r.outcome = TASK_OUT_EXECUTED;
	append(st, &r, 100);
	memset(&r, 0, sizeof r);
	r.at = at + 3;
	r.decision = AUDIT_PENDING_SIGNATURE;
	r.op = "guest_destroy";
	r.guest_id = 103;
	r.outcome = TASK_OUT_PENDING_SIGNATURE;
	append(st, &r, 100);

	buf_init(&b, 1 << 20);
	T_OK(audit_tail_json(st, 10, &b));
	mine = parse(b.data, b.len);
	T_CHECK(mine && mine->type == JSON_ARRAY && mine->n == 4);
	if (!mine || mine->n != 4)
		goto out_buf;
	for (i = 0; i < mine->n; i++) {
		const struct json *me = mine->items[i];

		T_CHECK(me->type == JSON_OBJECT);
		T_EQ_INT(me->n, ge->n);
		for (k = 0; k < ge->n && k < me->n; k++) {
			const struct json *gv = ge->items[k], *mv = me->items[k];

			T_EQ_STR(me->keys[k], ge->keys[k]);
			/* guest_id: integer in the golden, integer or null here */
			if (strcmp(ge->keys[k], "guest_id") == 0)
				T_CHECK(mv->type == JSON_NUMBER || mv->type == JSON_NULL);
			else
				T_EQ_INT(mv->type, gv->type);
		}
	}
	/* the first one reproduces the golden entry exactly */
	for (k = 0; k < ge->n; k++) {
		const struct json *gv = ge->items[k], *mv = json_get(mine->items[0], ge->keys[k]);

		T_CHECK(mv != NULL);
		if (mv && gv->type != JSON_NULL)
			T_EQ_STR(mv->s, gv->s);
	}
	json_str(json_get(mine->items[1], "reason"), &s);
	T_EQ_STR(s, "role_denied: \"quoted\" \\ caf\xc3\xa9?");
	T_CHECK(json_get(mine->items[1], "guest_id")->type == JSON_NULL);
	json_str(json_get(mine->items[1], "decision"), &s);
	T_EQ_STR(s, "rejected");
	json_str(json_get(mine->items[2], "decision"), &s);
	T_EQ_STR(s, "benign");
	json_str(json_get(mine->items[2], "signer_key_id"), &s);
	T_EQ_STR(s, "");
	json_str(json_get(mine->items[3], "decision"), &s);
	T_EQ_STR(s, "pending_signature");
	json_str(json_get(mine->items[3], "outcome"), &s);
	T_EQ_STR(s, "pending_signature");
	json_str(json_get(mine->items[3], "at"), &s);
	T_EQ_STR(s, "2026-06-08T18:20:14Z");
out_buf:
	buf_free(&b);
out:
	json_free(golden);
	json_free(mine);
	free(gtext);
	store_close(st);
}

/* out keeps what it had; on error nothing is added. */
T_TEST(t_tail_appends_or_nothing)
{
	char dir[300];
	struct store *st = storetest_fresh(g_base, "a", dir, sizeof dir);
	struct audit_rec r;
	struct buf b;
	int i;

	for (i = 0; i < 5; i++) {
		rec(&r, 1781000000 + i, "guest_start", 101);
		append(st, &r, 100);
	}
	buf_init(&b, 300);
	T_OK(buf_appendz(&b, "x="));
	T_ERR(audit_tail_json(st, 5, &b), FH_ERR_TOOBIG);
	T_EQ_INT(b.len, 2);
	T_EQ_STR(buf_str(&b), "x=");
	T_OK(audit_tail_json(st, 1, &b));
	T_CHECK(strncmp(buf_str(&b), "x=[{\"at\":", 9) == 0);
	T_CHECK(b.data[b.len - 1] == ']');
	buf_free(&b);
	store_close(st);
}

int main(void)
{
	char tmp[200];

	t_tmpdir(tmp, sizeof tmp);
	snprintf(g_base, sizeof g_base, "%s", tmp);
	T_RUN(t_bounds);
	T_RUN(t_validation);
	T_RUN(t_tail_matches_golden);
	T_RUN(t_tail_appends_or_nothing);
	storetest_rm_tree(g_base);
	return t_done();
}
