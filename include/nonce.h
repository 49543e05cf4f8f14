/* nonce.h — the durable set of used signed-op nonces (LMDB, store.h).
 *
 * A nonce is recorded with its blob's expiry; it is pruned only after that
 * expiry. Any failure to read or record is treated as "already seen"
 * (fail safe): the caller rejects the op as a replay or a store failure,
 * never accepts it.
 */
#ifndef FH_NONCE_H
#define FH_NONCE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define NONCE_MAX 128

/* *seen = true when the nonce is recorded. On a store failure returns
 * FH_ERR_STORE and sets *seen = true. */
int nonce_seen(struct store *st, const char *nonce, bool *seen);

/* Records the nonce inside the caller's write transaction (so a nonce, an
 * idempotency key and a journal intent commit at once). FH_ERR_SIG_REPLAY
 * if already present. Durable only when the caller's commit succeeds. */
int nonce_record(struct store_txn *t, const char *nonce, int64_t expires_at);

/* Records the nonce in its own transaction and returns 0 only once it is
 * durably committed. Concurrent callers are group-committed: one fsync for
 * a batch, each caller woken only after the batch's commit succeeded.
 * FH_ERR_SIG_REPLAY if already present (also within the same batch);
 * FH_ERR_STORE / FH_ERR_STORE_FULL on failure (treat as seen). */
int nonce_record_durable(struct store *st, const char *nonce, int64_t expires_at);

/* Deletes nonces whose expiry is before `before`, at most max_per_txn per
 * transaction, until none are left; *pruned counts them. */
int nonce_prune(struct store *st, int64_t before, unsigned max_per_txn, unsigned *pruned);

#endif
