/* audit.h — the bounded audit log (LMDB, store.h; SPEC §7).
 *
 * Every gate decision and every executed mutation is appended here; the
 * newest entries are embedded in the host report's `audit_tail`
 * (vectors/host-report.md "Audit entry"): report_sources.audit_tail_json
 * takes the text audit_tail_json builds.
 *
 * For an executed mutation the record is appended in the journal's
 * transaction (jrnl_close's). Elsewhere the caller appends in its own
 * transaction and, if that fails, logs it and keeps its decision.
 *
 * The log is bounded: audit_append removes, in the same transaction, up to
 * AUDIT_PRUNE_PER_APPEND of the oldest entries past max_entries; audit_prune
 * does the rest in small transactions (after max_entries was lowered).
 *
 * Layout: STORE_DB_AUDIT BE64 seq -> versioned binary record; STORE_DB_SEQ
 * "audit_first" / "audit_next" -> BE64 (entries are seq first..next-1,
 * contiguous: pruning always takes the oldest).
 *
 * Errors: FH_ERR_INVAL for a bad record (not sticky, nothing written);
 * store failures are the transaction's sticky error.
 */
#ifndef FH_AUDIT_H
#define FH_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"
#include "task.h"

#define AUDIT_MAX_DEFAULT 10000    /* entries kept by default */
#define AUDIT_MAX_ENTRIES 1000000  /* largest max_entries accepted */
#define AUDIT_PRUNE_PER_APPEND 16  /* oldest entries removed per append, at most */
#define AUDIT_TAIL_MAX 200         /* entries audit_tail_json returns, at most */
#define AUDIT_OP_MAX 63            /* [a-z0-9_]{1,63} */
#define AUDIT_KEY_ID_MAX 64        /* SIG_KEY_ID_MAX */
#define AUDIT_REASON_MAX 256       /* longer reasons are cut */
#define AUDIT_NO_GUEST (-1)        /* guest_id null: host-scoped op */

/* The gate's decision (vectors/host-report.md): persisted values. */
enum audit_decision {
	AUDIT_BENIGN = 1,              /* "benign": allowed unsigned */
	AUDIT_SIGNED = 2,              /* "signed": allowed with a verified signature */
	AUDIT_PENDING_SIGNATURE = 3,   /* "pending_signature" */
	AUDIT_REJECTED = 4,            /* "rejected" */
	AUDIT_DECISION__END
};

struct audit_rec {
	int64_t at;                    /* Unix seconds; 0 = now */
	enum audit_decision decision;
	const char *op;                /* required, [a-z0-9_]{1,AUDIT_OP_MAX} */
	int64_t guest_id;              /* vmid, or AUDIT_NO_GUEST */
	const char *signer_key_id;     /* NULL or "" when unsigned; printable ASCII */
	enum task_outcome outcome;     /* not TASK_OUT_NONE */
	const char *reason;            /* NULL = ""; a rejection's name or failure
	                                * text, cut to AUDIT_REASON_MAX bytes,
	                                * invalid UTF-8 / control bytes -> '?' */
};

/* Appends r inside t and prunes (same transaction) up to
 * AUDIT_PRUNE_PER_APPEND oldest entries while more than max_entries are
 * kept. max_entries 1..AUDIT_MAX_ENTRIES (0: AUDIT_MAX_DEFAULT). *seq (may
 * be NULL) gets the new entry's sequence number on success. */
int audit_append(struct store_txn *t, const struct audit_rec *r, uint64_t max_entries,
                 uint64_t *seq);

/* Removes the oldest entries while more than max_entries are kept, at most
 * max_per_txn per transaction; *pruned (may be NULL) on success. */
int audit_prune(struct store *st, uint64_t max_entries, unsigned max_per_txn, uint64_t *pruned);

/* Appends to out a JSON array of the newest min(n, AUDIT_TAIL_MAX) entries,
 * oldest first, each
 *   {"at":"2026-06-08T18:20:11Z","decision":"signed","op":"guest_rollback",
 *    "guest_id":101|null,"signer_key_id":"ops-anna","outcome":"executed",
 *    "reason":""}
 * (n == 0 or an empty log: "[]"). On error out is left as it was
 * (FH_ERR_TOOBIG when it does not fit out's cap, FH_ERR_DECODE for a
 * stored record that does not decode, store errors). */
int audit_tail_json(struct store *st, size_t n, struct buf *out);

/* Entries kept now. */
int audit_count(struct store *st, uint64_t *n);

/* "benign", "signed", "pending_signature", "rejected"; "unknown" otherwise. */
const char *audit_decision_name(enum audit_decision d);

#endif
