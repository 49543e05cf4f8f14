/* idem.c — idempotency keys; see idem.h.
 *
 * Record (STORE_DB_IDEM value), version 1, big-endian:
 *   u8 version, u8 outcome, u64 jrnl_id, i64 created_at, i64 expires_at,
 *   u8 reason length, reason bytes.
 * Expiry index (STORE_DB_IDEM_EXP): BE64 expires_at || key -> empty.
 */
#include "idem.h"

#include <string.h>
#include <time.h>

#include "err.h"

#define REC_VERSION 1
#define REC_FIXED (1 + 1 + 8 + 8 + 8 + 1)

static bool key_ok(const char *key, size_t *n)
{
	if (!key)
		return false;
	*n = strnlen(key, IDEM_KEY_MAX + 1);
	return *n >= 1 && *n <= IDEM_KEY_MAX;
}

static bool reason_ok(const char *s, size_t *n)
{
	size_t i;

	*n = s ? strnlen(s, IDEM_REASON_MAX + 1) : 0;
	if (*n > IDEM_REASON_MAX)
		return false;
	for (i = 0; i < *n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static size_t encode(const struct idem_rec *r, unsigned char *b)
{
	size_t n = strlen(r->reason);

	b[0] = REC_VERSION;
	b[1] = (unsigned char)r->outcome;
	store_be64_put(b + 2, r->jrnl_id);
	store_be64_put(b + 10, (uint64_t)r->created_at);
	store_be64_put(b + 18, (uint64_t)r->expires_at);
	b[26] = (unsigned char)n;
	memcpy(b + REC_FIXED, r->reason, n);
	return REC_FIXED + n;
}

static int decode(const void *v, size_t vl, struct idem_rec *out)
{
	const unsigned char *b = v;
	struct idem_rec r;
	size_t n, dummy;

	if (vl < REC_FIXED || b[0] != REC_VERSION || !task_outcome_valid(b[1]))
		return FH_ERR_DECODE;
	n = b[26];
	if (n > IDEM_REASON_MAX || vl != REC_FIXED + n)
		return FH_ERR_DECODE;
	memset(&r, 0, sizeof r);
	r.outcome = (enum task_outcome)b[1];
	r.jrnl_id = store_be64_get(b + 2);
	r.created_at = (int64_t)store_be64_get(b + 10);
	r.expires_at = (int64_t)store_be64_get(b + 18);
	memcpy(r.reason, b + REC_FIXED, n);
	r.reason[n] = '\0';
	if (r.expires_at <= 0 || !reason_ok(r.reason, &dummy) || dummy != n)
		return FH_ERR_DECODE;
	*out = r;
	return 0;
}

int idem_lookup(struct store_txn *t, const char *key, struct idem_rec *out)
{
	const void *v;
	size_t vl, n;
	int r;

	if (!t || !out || !key_ok(key, &n))
		return FH_ERR_INVAL;
	r = store_get(t, STORE_DB_IDEM, key, n, &v, &vl);
	if (r)
		return r;
	return decode(v, vl, out);
}

int idem_get(struct store *st, const char *key, struct idem_rec *out)
{
	struct store_txn *t = NULL;
	int r;

	if (!st || !out)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = idem_lookup(t, key, out);
	store_txn_abort(t);
	return r;
}

static void exp_key(unsigned char *k, int64_t exp, const char *key, size_t n)
{
	store_be64_put(k, (uint64_t)exp);
	memcpy(k + 8, key, n);
}

int idem_put(struct store_txn *t, const char *key, const struct idem_rec *rec)
{
	struct idem_rec r;
	unsigned char b[REC_FIXED + IDEM_REASON_MAX], k[8 + IDEM_KEY_MAX];
	const void *v;
	size_t vl, n, rn, bl;
	int rc;

	if (!t || !rec || !key_ok(key, &n))
		return FH_ERR_INVAL;
	if (rec->expires_at <= 0 || rec->created_at < 0 || !task_outcome_valid((int)rec->outcome) ||
	    !memchr(rec->reason, '\0', sizeof rec->reason) || !reason_ok(rec->reason, &rn))
		return FH_ERR_INVAL;
	rc = store_get(t, STORE_DB_IDEM, key, n, &v, &vl);
	if (rc == 0)
		return FH_ERR_DUPLICATE;
	if (rc != FH_ERR_NOT_FOUND)
		return rc;
	r = *rec;
	if (r.created_at == 0)
		r.created_at = (int64_t)time(NULL);
	bl = encode(&r, b);
	rc = store_put(t, STORE_DB_IDEM, key, n, b, bl);
	if (rc == 0) {
		exp_key(k, r.expires_at, key, n);
		rc = store_put(t, STORE_DB_IDEM_EXP, k, 8 + n, NULL, 0);
	}
	return rc;
}

int idem_set_outcome(struct store_txn *t, const char *key, enum task_outcome outcome,
                     const char *reason, uint64_t jrnl_id)
{
	struct idem_rec r;
	unsigned char b[REC_FIXED + IDEM_REASON_MAX];
	size_t n, rn, bl;
	int rc;

	if (!t || !key_ok(key, &n) || !task_outcome_valid((int)outcome) || !reason_ok(reason, &rn))
		return FH_ERR_INVAL;
	rc = idem_lookup(t, key, &r);
	if (rc)
		return rc;
	r.outcome = outcome;
	memcpy(r.reason, reason ? reason : "", rn);
	r.reason[rn] = '\0';
	if (jrnl_id)
		r.jrnl_id = jrnl_id;
	bl = encode(&r, b);
	return store_put(t, STORE_DB_IDEM, key, n, b, bl);
}

/* One transaction of pruning: up to max records expired before `before`. */
static int prune_once(struct store *st, int64_t before, unsigned max, unsigned *n, bool *done)
{
	struct store_txn *t = NULL;
	unsigned char k[8 + IDEM_KEY_MAX];
	const void *kp, *v;
	size_t kl, vl;
	unsigned del = 0;
	int r;

	*done = false;
	r = store_txn_begin(st, true, &t);
	if (r)
		return r;
	while (del < max) {
		r = store_first(t, STORE_DB_IDEM_EXP, &kp, &kl, &v, &vl);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;
			*done = true;
			break;
		}
		if (r)
			break;
		if (kl <= 8 || kl > sizeof k) {
			r = FH_ERR_DECODE;
			break;
		}
		if ((int64_t)store_be64_get(kp) >= before) {
			*done = true;
			break;
		}
		memcpy(k, kp, kl);
		r = store_del(t, STORE_DB_IDEM_EXP, k, kl);
		if (r == 0) {
			r = store_del(t, STORE_DB_IDEM, k + 8, kl - 8);
			if (r == FH_ERR_NOT_FOUND)
				r = 0;
		}
		if (r)
			break;
		del++;
	}
	if (r == 0)
		r = store_txn_commit(t);
	else
		store_txn_abort(t);
	if (r == 0)
		*n = del;
	return r;
}

int idem_prune(struct store *st, int64_t before, unsigned max_per_txn, uint64_t *pruned)
{
	uint64_t total = 0;
	unsigned n = 0;
	bool done = false;
	int r;

	if (!st || max_per_txn == 0)
		return FH_ERR_INVAL;
	while (!done) {
		r = prune_once(st, before, max_per_txn, &n, &done);
		if (r)
			return r;
		total += n;
	}
	if (pruned)
		*pruned = total;
	return 0;
}
