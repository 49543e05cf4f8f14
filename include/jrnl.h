/* jrnl.h — the in-flight operation journal (LMDB, store.h; SPEC §7).
 *
 * One entry per mutation the agent executes: written as an intent before
 * the POST (jrnl_intent, inside the caller's write transaction so a nonce,
 * an idempotency key and the intent commit at once), updated with the UPID
 * once Proxmox accepts it (jrnl_set_upid), moved through the task machine
 * (jrnl_event, task.h) and closed with a terminal event and an outcome
 * (jrnl_close). A journal entry starts in `intent` (history [INTENT]);
 * `queued` and REJECTED belong to the serializer, never to the journal.
 *
 * Durability is the caller's commit: every write here happens inside the
 * caller's write transaction and is durable when store_txn_commit returns 0.
 *
 * Errors of the write calls: FH_ERR_INVAL (bad arguments, an over-cap
 * string, a sticky), FH_ERR_NOT_FOUND (no entry with that id), and
 * FH_ERR_TASK_EVENT (event not allowed in the entry's state) are returned
 * WITHOUT setting the transaction's sticky error and without writing
 * anything, so the caller may still commit its other writes; store
 * failures (FH_ERR_STORE, FH_ERR_STORE_FULL, FH_ERR_NOMEM) are the sticky
 * error. FH_ERR_DECODE: a stored record does not decode (corruption; also
 * not sticky).
 *
 * Layout (STORE_DB_*; integers big-endian):
 *   jrnl       BE64 id -> versioned binary record
 *   jrnl_open  BE64 id -> empty, for every entry not in a terminal state
 *   jrnl_vmid  BE64 vmid || BE64 id -> empty, entries that create or
 *              destroy a guest (JRNL_F_CREATES_GUEST / JRNL_F_DESTROYS_GUEST)
 *   jrnl_open  BE64 id || "J" -> job record (below), for every multi-step
 *              job not finished; id is its first step's entry id
 *   seq        "jrnl_next" -> BE64 next id; "jrnl_closed" -> BE64 count of
 *              closed entries kept
 * Ids start at 1, are never reused (also after pruning) and grow with
 * commit order.
 *
 * Provenance (flags) is written only by the engine from its own knowledge
 * of what it is executing, NEVER from hub data: jrnl_provenance answers
 * the gate's question "did an agent job create this guest, and is it a
 * scratch guest?" from the journal alone.
 *
 * Threads: as store.h (a thread holds at most one transaction). The
 * iterators read in batches in their own read transactions and call back
 * with no transaction held, so a callback may write to the store.
 */
#ifndef FH_JRNL_H
#define FH_JRNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "task.h"

#define JRNL_JOB_ID_MAX 128      /* job id / idempotency key, bytes */
#define JRNL_OP_MAX 63           /* op name [a-z0-9_]{1,63} (as opblob) */
#define JRNL_PARAMS_MAX 4096     /* canonical params JSON, bytes */
#define JRNL_UPID_MAX 512        /* as upid.h */
#define JRNL_REASON_MAX 63       /* a stable reason name ("replay", "task_failed") */
#define JRNL_TEXT_MAX 256        /* outcome detail; longer text is truncated */
#define JRNL_KEY_ID_MAX 64       /* signer key id (SIG_KEY_ID_MAX) */
#define JRNL_HIST_MAX 16         /* events kept per entry (a lifecycle needs 4) */
#define JRNL_NO_VMID (-1)        /* host-scoped operation */
#define JRNL_VMID_MAX 999999999  /* Proxmox's largest vmid */
#define JRNL_ITER_BATCH 64       /* entries read per transaction by iterators */
#define JRNL_RETAIN_DEFAULT 10000 /* closed entries kept by default */

enum jrnl_source {               /* persisted: values never change */
	JRNL_SRC_DESIRED = 1,        /* "desired": hub desired-state plan */
	JRNL_SRC_SIGNED = 2,         /* "signed": operator-signed op */
	JRNL_SRC_LOCALAPI = 3,       /* "localapi" */
	JRNL_SRC_BACKUP = 4,         /* "backup" */
	JRNL_SRC_PROVISION = 5,      /* "provision" */
	JRNL_SRC_RESTORE_TEST = 6,   /* "restore_test" */
	JRNL_SRC_SELFTEST = 7,       /* "selftest" */
	JRNL_SRC__END
};

/* Provenance flags (engine-written only). */
#define JRNL_F_CREATES_GUEST 0x1u   /* this op creates guest `vmid` */
#define JRNL_F_SCRATCH 0x2u         /* ... as an agent-tagged scratch guest */
#define JRNL_F_DESTROYS_GUEST 0x4u  /* this op removes guest `vmid` */
#define JRNL_F__ALL 0x7u

struct jrnl_event_rec {
	enum task_event ev;
	int64_t at;                     /* Unix seconds */
};

struct jrnl_entry {
	uint64_t id;                    /* set by jrnl_intent; ignored on input */
	char job_id[JRNL_JOB_ID_MAX + 1];   /* idempotency key; may be "" */
	enum jrnl_source source;
	char op[JRNL_OP_MAX + 1];       /* required */
	int64_t vmid;                   /* 1..JRNL_VMID_MAX, or JRNL_NO_VMID */
	char params[JRNL_PARAMS_MAX + 1];   /* canonical JSON text ("" allowed) */
	uint32_t flags;                 /* JRNL_F_* */
	char signer_key_id[JRNL_KEY_ID_MAX + 1];  /* "" when unsigned */
	/* Below: maintained by the journal; ignored by jrnl_intent. */
	enum task_state state;
	size_t nhist;
	struct jrnl_event_rec hist[JRNL_HIST_MAX];
	char upid[JRNL_UPID_MAX + 1];   /* "" until jrnl_set_upid */
	enum task_outcome outcome;      /* TASK_OUT_NONE until closed */
	char reason[JRNL_REASON_MAX + 1];
	char text[JRNL_TEXT_MAX + 1];
	int64_t created_at;             /* input: 0 = now */
	int64_t updated_at;             /* last write */
	int64_t closed_at;              /* 0 while in flight */
};

/* Writes a new entry in state `intent` (history [INTENT at created_at])
 * inside t and sets *id (only on success). e's journal-maintained fields
 * are ignored. FH_ERR_INVAL: source outside the enum, op empty or not
 * [a-z0-9_]+, vmid out of range, flags outside JRNL_F__ALL, SCRATCH
 * without CREATES_GUEST, a guest flag without a vmid, created_at < 0, a
 * string not NUL-terminated within its array, job_id or signer_key_id not
 * printable ASCII (params is the caller's canonical JSON text, stored as
 * is). Durable once t commits. */
int jrnl_intent(struct store_txn *t, const struct jrnl_entry *e, uint64_t *id);

/* Records the UPID (1..JRNL_UPID_MAX bytes, printable ASCII) of an entry in
 * state intent, posted or running; a second call with the same UPID is a
 * no-op, a different one FH_ERR_INVAL. Terminal entries: FH_ERR_INVAL. */
int jrnl_set_upid(struct store_txn *t, uint64_t id, const char *upid);

/* Feeds a non-terminal event (POSTED, RUNNING) to the entry: validated by
 * task_step, persists the new state and appends (ev, now) to the history.
 * FH_ERR_TASK_EVENT when not allowed in the entry's state; FH_ERR_INVAL for
 * an event that would end the entry (use jrnl_close, so a closed entry
 * always has an outcome); FH_ERR_TOOBIG if the history is full. */
int jrnl_event(struct store_txn *t, uint64_t id, enum task_event ev);

/* Ends the entry: feeds ev (SUCCEEDED, FAILED or ROLLED_BACK, validated as
 * jrnl_event) and stores the outcome (not TASK_OUT_NONE), the reason name
 * (NULL = "", at most JRNL_REASON_MAX bytes of [a-z0-9_], else
 * FH_ERR_INVAL) and text (NULL = ""; cut to JRNL_TEXT_MAX bytes, invalid
 * UTF-8 and control bytes replaced by '?'). The entry leaves the in-flight
 * set and counts against the retention (jrnl_prune). */
int jrnl_close(struct store_txn *t, uint64_t id, enum task_event ev,
               enum task_outcome outcome, const char *reason, const char *text);

/* Reads an entry (in t, or in its own read transaction). *out written only
 * on success. FH_ERR_NOT_FOUND, FH_ERR_DECODE, store errors. */
int jrnl_get_txn(struct store_txn *t, uint64_t id, struct jrnl_entry *out);
int jrnl_get(struct store *st, uint64_t id, struct jrnl_entry *out);

/* Callback of the iterators: return 0 to go on; anything else stops the
 * walk and is returned by the iterator. e is valid during the call only. */
typedef int (*jrnl_fn)(const struct jrnl_entry *e, void *arg);

/* Calls fn for every entry not in a terminal state, in id order (the
 * recovery scan). Reads JRNL_ITER_BATCH entries per read transaction and
 * calls fn with none held: fn may resolve (write) the entry. Entries
 * written meanwhile with a larger id may or may not be seen. */
int jrnl_in_flight(struct store *st, jrnl_fn fn, void *arg);
/* Calls fn for every entry kept (closed or not), in id order (the dump).
 * Same batching as jrnl_in_flight. */
int jrnl_foreach(struct store *st, jrnl_fn fn, void *arg);

struct jrnl_provenance {
	bool created_by_agent;          /* an agent job created this vmid ... */
	bool scratch;                   /* ... as a scratch guest */
	uint64_t create_id;             /* that create's journal id; 0 if none */
	char create_job_id[JRNL_JOB_ID_MAX + 1];  /* its job id */
};
/* Provenance of guest vmid from the journal alone: created_by_agent when
 * the newest entry creating vmid ended `succeeded` and no entry destroying
 * vmid was posted after it (a destroy that is posted, running, succeeded or
 * failed after posting counts: the guest may be gone and its vmid reused).
 * Anything else — no entry, the create pruned, an in-flight or failed
 * create — is "not created by the agent" (all false/0), the fail-safe
 * answer. *out written only on success. FH_ERR_INVAL for a vmid out of
 * range; store errors (treat as not created by the agent). */
int jrnl_provenance(struct store *st, int64_t vmid, struct jrnl_provenance *out);
int jrnl_provenance_txn(struct store_txn *t, int64_t vmid, struct jrnl_provenance *out);

/* Deletes closed entries, oldest first, while more than keep_closed are
 * kept: at most max_per_txn per write transaction (each committed before
 * the next), until done; in-flight entries are never pruned. *pruned (may
 * be NULL) counts them, set on success only. max_per_txn == 0 is
 * FH_ERR_INVAL. A pruned create no longer gives provenance (fail safe). */
int jrnl_prune(struct store *st, uint64_t keep_closed, unsigned max_per_txn, uint64_t *pruned);

struct jrnl_stats {
	uint64_t next_id;               /* the id the next intent gets */
	uint64_t closed;                /* closed entries kept */
	uint64_t in_flight;             /* work recovery must do: entries not terminal, plus
					   jobs_waiting (each is work without an entry) */
	uint64_t jobs_open;             /* multi-step jobs not finished (job records) */
	uint64_t jobs_waiting;          /* of those: none of its steps in flight (between two
					   steps, or a record that does not decode) */
};
int jrnl_get_stats(struct store *st, struct jrnl_stats *out);

/* ---- multi-step jobs ----
 *
 * A job of 2..JRNL_JOB_STEPS_MAX steps (recon.h) has a job record from the
 * admission of its first step until its final outcome is recorded: what
 * recovery needs to finish the job after a crash. The engine writes it in
 * the transaction of the first step's intent (jrnl_job_put), moves it on
 * in the transactions that admit or close a step (cur, entry ids, the
 * outcome so far), and deletes it (jrnl_job_del) in the transaction that
 * records the job's final outcome. So at any commit the record says either
 * "step cur is in flight as entry steps[cur].entry_id" or, when that id is
 * 0, "step cur is the next to admit" (a crash between two steps).
 *
 * Record (versioned binary, integers big-endian), version 1:
 *   u8 version, u8 source, u8 nsteps, u8 cur, u8 outcome, u32 reason
 *   (a negative fh_err as two's complement), i64 idem_expires_at,
 *   i64 created_at, i64 updated_at, job_id and op_id as u16 length +
 *   bytes, then per step: op (u16 + bytes), i64 vmid, u32 flags,
 *   u64 entry_id, params (u16 + bytes).
 * Decoding checks every length, enum and range, the step invariants
 * below, and that nothing trails: a record that fails is FH_ERR_DECODE
 * (the engine closes that job failed). Stored under the first step's id
 * in jrnl_open, so it is never pruned while the job is open. */

#define JRNL_JOB_STEPS_MAX 4
#define JRNL_OP_ID_MAX 128           /* hub op id, printable ASCII ("" none) */
#define JRNL_JOB_STEP_ALWAYS 0x100u  /* step flag: runs even when an earlier step failed */
#define JRNL_JOB_ITER_BATCH 16       /* job records read per transaction */

struct jrnl_job_step {
	char op[JRNL_OP_MAX + 1];       /* [a-z0-9_]{1,63} */
	int64_t vmid;                   /* as jrnl_entry.vmid */
	char params[JRNL_PARAMS_MAX + 1];   /* canonical JSON text of the action's params */
	uint32_t flags;                 /* JRNL_F_* | JRNL_JOB_STEP_ALWAYS */
	uint64_t entry_id;              /* its journal entry once admitted; 0 before */
};

struct jrnl_job {
	uint64_t id;                    /* the first step's entry id (the key) */
	enum jrnl_source source;
	char job_id[JRNL_JOB_ID_MAX + 1];   /* the steps' journal job id (printable) */
	char op_id[JRNL_OP_ID_MAX + 1];     /* hub op id: the final outcome goes to the outbox */
	int64_t idem_expires_at;        /* of the job's idempotency record (> 0) */
	size_t nsteps;                  /* 2..JRNL_JOB_STEPS_MAX */
	struct jrnl_job_step steps[JRNL_JOB_STEPS_MAX];
	size_t cur;                     /* < nsteps: the step in flight or the next to admit */
	enum task_outcome outcome;      /* so far: NONE, EXECUTED or FAILED */
	int reason;                     /* fh_err of the job's failure, 0 if none */
	int64_t created_at;             /* input: 0 = now */
	int64_t updated_at;             /* set by jrnl_job_put */
};
/* Step invariants (checked on put and on read): steps[0].entry_id == id;
 * every step after cur has entry_id 0; the non-zero entry ids grow with
 * the step index. */

/* Writes (creates or replaces) job j->id's record inside t. FH_ERR_INVAL
 * (not sticky, nothing written) for a record that breaks the rules above. */
int jrnl_job_put(struct store_txn *t, const struct jrnl_job *j);
/* Reads job id's record. FH_ERR_NOT_FOUND, FH_ERR_DECODE, store errors;
 * *out written only on success. */
int jrnl_job_get_txn(struct store_txn *t, uint64_t id, struct jrnl_job *out);
int jrnl_job_get(struct store *st, uint64_t id, struct jrnl_job *out);
/* Deletes job id's record (its final outcome is recorded in t).
 * FH_ERR_NOT_FOUND (not sticky) when there is none. */
int jrnl_job_del(struct store_txn *t, uint64_t id);

/* Callback of jrnl_jobs_open: j is NULL when the record of job id does not
 * decode (rc is then FH_ERR_DECODE). Return 0 to go on. */
typedef int (*jrnl_job_fn)(uint64_t id, const struct jrnl_job *j, int rc, void *arg);
/* Calls fn for every open job in id order, JRNL_JOB_ITER_BATCH records
 * per read transaction and none held during the calls (fn may write). */
int jrnl_jobs_open(struct store *st, jrnl_job_fn fn, void *arg);

/* "desired", "signed", ... ; "unknown" outside the enum. Static string. */
const char *jrnl_source_name(enum jrnl_source s);
/* 0 or FH_ERR_INVAL. */
int jrnl_source_parse(const char *s, enum jrnl_source *out);

#endif
