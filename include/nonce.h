/* nonce.h — the durable set of used signed-op nonces (LMDB, store.h).
 *
 * A nonce is recorded with its blob's expiry; it is pruned only after that
 * expiry. Any failure to read or record is treated as "already seen"
 * (fail safe): the caller rejects the op as a replay or a store failure,
 * never accepts it.
 *
 * A nonce is a C string of 1..NONCE_MAX bytes, stored as those bytes
 * (STORE_DB_NONCE: nonce -> BE64 expires_at; STORE_DB_NONCE_EXP:
 * BE64 expires_at || nonce, so pruning walks oldest first). expires_at is
 * Unix seconds and must be >= 0. Other input is FH_ERR_INVAL.
 */
#ifndef FH_NONCE_H
#define FH_NONCE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define NONCE_MAX 128

/* *seen = true when the nonce is recorded. On a store failure returns
 * FH_ERR_STORE and sets *seen = true; so does a NULL store (one that
 * could not be opened), and invalid input gives FH_ERR_INVAL with
 * *seen = true. */
int nonce_seen(struct store *st, const char *nonce, bool *seen);

/* Records the nonce inside the caller's write transaction (so a nonce, an
 * idempotency key and a journal intent commit at once). FH_ERR_SIG_REPLAY
 * if already present (also earlier in the same transaction); a replay
 * writes nothing and does not set the transaction's sticky error. Store
 * failures are the sticky error. Durable only when the caller's commit
 * succeeds. */
int nonce_record(struct store_txn *t, const char *nonce, int64_t expires_at);

/* Records the nonce in its own transaction and returns 0 only once it is
 * durably committed. Concurrent callers are group-committed: one fsync for
 * a batch, each caller woken only after the batch's commit succeeded.
 * FH_ERR_SIG_REPLAY if already present (also within the same batch);
 * FH_ERR_STORE / FH_ERR_STORE_FULL on failure (treat as seen); a NULL store
 * is FH_ERR_STORE. The calling thread must not hold a transaction. */
int nonce_record_durable(struct store *st, const char *nonce, int64_t expires_at);

/* Deletes nonces whose expiry is before `before`, at most max_per_txn per
 * transaction, until none are left; *pruned counts them (set on success
 * only). Oldest first; before <= 0 prunes nothing. max_per_txn == 0 is
 * FH_ERR_INVAL. Works on a full store (store.h: delete-only reserve). */
int nonce_prune(struct store *st, int64_t before, unsigned max_per_txn, unsigned *pruned);

#endif
