/* nonce.c — the durable nonce set; see nonce.h.
 *
 * Two named databases of the store (store.h):
 *   STORE_DB_NONCE      nonce bytes            -> BE64 expires_at
 *   STORE_DB_NONCE_EXP  BE64 expires_at || nonce -> empty
 * Expiries are non-negative, so big-endian bytes sort like the numbers and
 * pruning walks the index from its first key, oldest first.
 */
#include "nonce.h"

#include <string.h>

#include "err.h"

#define EXP_KEY_MAX (8 + NONCE_MAX)

/* Length of a valid nonce (1..NONCE_MAX bytes), 0 if invalid. */
static size_t nonce_len(const char *nonce)
{
	size_t n;

	if (!nonce)
		return 0;
	n = strnlen(nonce, NONCE_MAX + 1);
	return n <= NONCE_MAX ? n : 0;
}

int nonce_seen(struct store *st, const char *nonce, bool *seen)
{
	struct store_txn *t = NULL;
	const void *val;
	size_t n = nonce_len(nonce), vlen;
	int r = FH_ERR_INTERNAL;

	if (!seen)
		return FH_ERR_INVAL;
	*seen = true;   /* fail safe until proven otherwise */
	if (!n)
		return FH_ERR_INVAL;
	if (!st)
		return FH_ERR_STORE;
	r = store_txn_begin(st, false, &t);
	if (r)
		goto out;
	r = store_get(t, STORE_DB_NONCE, nonce, n, &val, &vlen);
	if (r == 0 || r == FH_ERR_NOT_FOUND) {
		bool found = r == 0;

		r = store_txn_commit(t);
		t = NULL;
		if (r == 0)
			*seen = found;
	}
out:
	store_txn_abort(t);
	if (r && r != FH_ERR_INVAL && r != FH_ERR_NOMEM)
		r = FH_ERR_STORE;
	return r;
}

int nonce_record(struct store_txn *t, const char *nonce, int64_t expires_at)
{
	unsigned char ekey[EXP_KEY_MAX], ev[8];
	const void *val;
	size_t n = nonce_len(nonce), vlen;
	int r;

	if (!t || !n || expires_at < 0)
		return FH_ERR_INVAL;
	r = store_txn_err(t);
	if (r)
		return r;
	r = store_get(t, STORE_DB_NONCE, nonce, n, &val, &vlen);
	if (r == 0)
		return FH_ERR_SIG_REPLAY;
	if (r != FH_ERR_NOT_FOUND)
		return r;
	store_be64_put(ev, (uint64_t)expires_at);
	memcpy(ekey, ev, 8);
	memcpy(ekey + 8, nonce, n);
	r = store_put(t, STORE_DB_NONCE, nonce, n, ev, sizeof ev);
	if (r == 0)
		r = store_put(t, STORE_DB_NONCE_EXP, ekey, 8 + n, NULL, 0);
	return r;
}

struct durable_arg {
	const char *nonce;
	int64_t expires_at;
};

static int record_one(struct store_txn *t, void *arg)
{
	const struct durable_arg *a = arg;

	return nonce_record(t, a->nonce, a->expires_at);
}

int nonce_record_durable(struct store *st, const char *nonce, int64_t expires_at)
{
	struct durable_arg a;

	if (!nonce_len(nonce) || expires_at < 0)
		return FH_ERR_INVAL;
	if (!st)
		return FH_ERR_STORE;
	a.nonce = nonce;
	a.expires_at = expires_at;
	return store_write_grouped(st, record_one, &a);
}

/* One transaction: deletes up to max entries expiring before `before`.
 * *n counts them, *more says whether expired entries may remain. */
static int prune_txn(struct store *st, int64_t before, unsigned max, unsigned *n, bool *more)
{
	struct store_txn *t = NULL;
	unsigned char ekey[EXP_KEY_MAX], nkey[NONCE_MAX];
	const void *k, *v;
	size_t klen, vlen, nlen;
	unsigned done = 0;
	int r = FH_ERR_INTERNAL;

	*more = false;
	r = store_txn_begin(st, true, &t);
	if (r)
		goto out;
	while (done < max) {
		r = store_first(t, STORE_DB_NONCE_EXP, &k, &klen, &v, &vlen);
		if (r == FH_ERR_NOT_FOUND)
			break;
		if (r)
			goto out;
		if (klen <= 8 || klen > EXP_KEY_MAX) {
			r = FH_ERR_STORE;   /* not a key we wrote */
			goto out;
		}
		memcpy(ekey, k, klen);   /* k is invalid after the next write */
		if (store_be64_get(ekey) >= (uint64_t)before)
			break;
		nlen = klen - 8;
		memcpy(nkey, ekey + 8, nlen);
		r = store_del(t, STORE_DB_NONCE_EXP, ekey, klen);
		if (r)
			goto out;
		/* the nonce itself, if it still carries this expiry */
		r = store_get(t, STORE_DB_NONCE, nkey, nlen, &v, &vlen);
		if (r == 0 && vlen == 8 && memcmp(v, ekey, 8) == 0)
			r = store_del(t, STORE_DB_NONCE, nkey, nlen);
		if (r && r != FH_ERR_NOT_FOUND)
			goto out;
		done++;
	}
	r = store_txn_commit(t);
	t = NULL;
	if (r)
		goto out;
	*n = done;
	*more = done == max;
out:
	store_txn_abort(t);
	return r;
}

int nonce_prune(struct store *st, int64_t before, unsigned max_per_txn, unsigned *pruned)
{
	unsigned total = 0, n = 0;
	bool more = true;
	int r = 0;

	if (!st || !max_per_txn || !pruned)
		return FH_ERR_INVAL;
	if (before <= 0) {
		*pruned = 0;
		return 0;
	}
	while (more) {
		r = prune_txn(st, before, max_per_txn, &n, &more);
		if (r)
			return r;
		total += n;
	}
	*pruned = total;
	return 0;
}
