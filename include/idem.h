/* idem.h — idempotency keys (LMDB, store.h; SPEC §7).
 *
 * A key (a signed op's id or nonce, a local-API or backup job id) maps to
 * the journal entry that executes it (0 when the job was decided without
 * executing: rejected, pending_signature) and its stored outcome. A job
 * that comes again with a recorded key is not executed again: the caller
 * reports the stored outcome (idem_lookup).
 *
 * Keys are byte strings of 1..IDEM_KEY_MAX bytes without NUL; different
 * kinds of keys share one namespace, so callers prefix them by kind
 * (e.g. "op:<id>", "job:<id>", "nonce:<nonce>").
 *
 * A record is kept until its expires_at (Unix seconds, > 0) has passed and
 * idem_prune removes it: for a signed op, the blob's expiry (after that the
 * verifier rejects a replay as expired anyway); for jobs, now + the job
 * retention the caller chooses.
 *
 * Layout: STORE_DB_IDEM key -> record (versioned binary);
 * STORE_DB_IDEM_EXP BE64 expires_at || key -> empty (pruning order).
 *
 * Errors: FH_ERR_INVAL (bad key, bad record), FH_ERR_NOT_FOUND,
 * FH_ERR_DUPLICATE, FH_ERR_DECODE (stored record does not decode) are
 * returned without setting the transaction's sticky error and without
 * writing; store failures are the sticky error (store.h).
 */
#ifndef FH_IDEM_H
#define FH_IDEM_H

#include <stdint.h>

#include "store.h"
#include "task.h"

#define IDEM_KEY_MAX 200          /* a 128-byte id plus a kind prefix */
#define IDEM_REASON_MAX 63        /* a stable reason name, [a-z0-9_] */

struct idem_rec {
	uint64_t jrnl_id;             /* 0: no journal entry */
	enum task_outcome outcome;    /* TASK_OUT_NONE while executing */
	char reason[IDEM_REASON_MAX + 1];   /* "" when none */
	int64_t created_at;           /* input: 0 = now */
	int64_t expires_at;           /* > 0 */
};

/* Reads key's record in t (read or write transaction) or in its own read
 * transaction. *out written only on success. FH_ERR_NOT_FOUND when absent. */
int idem_lookup(struct store_txn *t, const char *key, struct idem_rec *out);
int idem_get(struct store *st, const char *key, struct idem_rec *out);

/* Records key inside the caller's write transaction (so nonce, key and
 * journal intent commit at once). FH_ERR_DUPLICATE ("duplicate") when the
 * key is already recorded (also earlier in the same transaction): nothing
 * is written, the transaction stays usable, and the caller reports the
 * stored outcome (idem_lookup) instead of executing. FH_ERR_INVAL for
 * expires_at <= 0, an outcome outside the enum or a bad reason. */
int idem_put(struct store_txn *t, const char *key, const struct idem_rec *rec);

/* Sets the stored outcome (and reason, NULL = "") of a recorded key, and
 * the journal id when jrnl_id != 0. FH_ERR_NOT_FOUND when absent. */
int idem_set_outcome(struct store_txn *t, const char *key, enum task_outcome outcome,
                     const char *reason, uint64_t jrnl_id);

/* Deletes records whose expires_at is before `before`, oldest first, at
 * most max_per_txn per transaction, until none are left; *pruned (may be
 * NULL) counts them, set on success only. max_per_txn == 0: FH_ERR_INVAL. */
int idem_prune(struct store *st, int64_t before, unsigned max_per_txn, uint64_t *pruned);

#endif
