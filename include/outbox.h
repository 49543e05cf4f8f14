/* outbox.h — the durable outbox of signed-op results (LMDB, store.h;
 * SPEC §6 `POST /api/v1/op-results`).
 *
 * The engine puts an op's outcome in the outbox in the transaction that
 * decides it (outbox_put); the hub client builds a batch (outbox_batch),
 * POSTs it, and after a 2xx acknowledges it (outbox_ack). Results survive
 * restarts and hub outages; a batch that was sent but not acknowledged is
 * sent again (the hub's op-results is idempotent by id), so each outcome
 * is delivered once as far as the agent can tell.
 *
 * Ids are the op ids the hub gave (1..OUTBOX_ID_MAX bytes, printable
 * ASCII). While an id is pending, a second put of it keeps the first
 * result and writes nothing; after it was acknowledged, a put of the same
 * id (the hub delivered the op again and gets its stored outcome again)
 * queues it anew.
 *
 * Layout: STORE_DB_OUTBOX BE64 seq -> record (id, outcome, reason);
 * STORE_DB_OUTBOX_ID id -> BE64 seq; STORE_DB_SEQ "outbox_next" and
 * "outbox_n" (pending count). Batches go oldest first.
 *
 * Errors: FH_ERR_INVAL (bad id, outcome, reason), FH_ERR_TOOBIG (the
 * outbox holds OUTBOX_PENDING_MAX results) are returned without setting
 * the sticky error and without writing; store failures are sticky.
 * Thread-safe as store.h (concurrent puts serialize on the store's write
 * lock or share a group commit).
 */
#ifndef FH_OUTBOX_H
#define FH_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"
#include "task.h"

#define OUTBOX_ID_MAX 128
#define OUTBOX_REASON_MAX 256        /* longer reasons are cut */
#define OUTBOX_PENDING_MAX 65536     /* results waiting for the hub */
#define OUTBOX_BATCH_MAX 256         /* results per batch */

/* Queues (id, outcome, reason) inside t. outcome is not TASK_OUT_NONE;
 * reason NULL = "" (cut to OUTBOX_REASON_MAX bytes, invalid UTF-8 and
 * control bytes -> '?'). 0 also when id is already pending (the first
 * result is kept). */
int outbox_put(struct store_txn *t, const char *id, enum task_outcome outcome,
               const char *reason);

/* Appends to json_out the oldest min(max, OUTBOX_BATCH_MAX) pending
 * results as the op-results body
 *   [{"id":"op-1","outcome":"executed","reason":""},...]
 * and sets *through to the sequence number of the last one (0 and "[]"
 * when nothing is pending). A result that would pass json_out's cap ends
 * the batch early (FH_ERR_TOOBIG only if not even one fits). On error
 * json_out and *through are left as they were. */
int outbox_batch(struct store *st, size_t max, struct buf *json_out, uint64_t *through);

/* Removes every pending result with sequence number <= through (what a
 * batch covered, after the hub accepted it); results put later stay.
 * through == 0 does nothing. Durable when it returns 0. */
int outbox_ack(struct store *st, uint64_t through);

/* Results pending now. */
int outbox_pending(struct store *st, uint64_t *n);

#endif
