/* recon.h — the reconcile engine (SPEC §7): the per-guest serializer, the
 * executor behind the gate (gate.h), the desired-state planner, signed and
 * unsigned jobs, crash recovery.
 *
 * The executor here is the only code in the tree that calls a Proxmox
 * mutation (pve_start ... pve_set_config, pve_delete_volume);
 * test/test_mutation_fence.c checks the built objects for it. Ops that are
 * not Proxmox calls (recon_host_op: storage_wipe) are handed to the
 * caller's host executor (recon_opts.exec_host) the same way: admitted by
 * the gate, journaled, run once, closed. Every mutation, from any source (hub
 * desired state, hub jobs and signed ops, local-API jobs, backups,
 * provisioning, restore tests, --selftest=task), is a job submitted here.
 *
 * A job's life (task.h is the lifecycle machine, jrnl.h the journal):
 *   submit   refused at once (typed, nothing written) when the guest's lane
 *            or the whole queue is at its cap (FH_ERR_QUEUE_FULL) or the
 *            hub blocked mutations (FH_ERR_BLOCKED); a job id already
 *            queued or running is not queued twice;
 *   admit    in its lane's turn, in one LMDB write transaction: the stored
 *            outcome of its idempotency key, if any, is reported again and
 *            nothing runs; otherwise provenance from the journal, the gate's
 *            decision, the nonce of a verified signature (burnt even when
 *            the gate rejects), then either the journal intent + the
 *            idempotency key (allowed), or the decision with its audit record
 *            and op result (pending_signature, rejected);
 *   execute  wait for the guest's config lock, POST (retried only on a
 *            transient error before a UPID exists, after looking for a task
 *            the lost attempt may have started; "already running / already
 *            stopped" and, on a retry, "already exists/used" count as done),
 *            record the UPID durably, wait for the task;
 *   close    one transaction: the journal entry's terminal event and
 *            outcome, the idempotency key's outcome, the audit record, the
 *            op result in the outbox (for jobs that carry a hub op id).
 * A job of several steps repeats admit/execute/close per step; its
 * idempotency outcome and op result are written once, with the last step
 * that runs (or the decision that ends it). From the admission of its
 * first step to that final write it has a job record in the journal
 * (jrnl.h "multi-step jobs"): every step in canonical form with its
 * flags, the source, job id, op id and idempotency expiry, the step in
 * flight or the next to admit, and the outcome so far. The record is
 * written in the transaction of the first step's intent and moved on in
 * the transactions that admit and close each step, so a crash at any
 * point leaves it naming exactly where the job stands (recovery below).
 * A blocked engine starts no new POST: jobs not yet admitted are dropped
 * (nothing was written; the hub delivers them again), admitted ones keep
 * their intent in flight and resume when unblocked (recon_resume); tasks
 * already posted are left to finish and are journaled.
 *
 * Threads: `workers` threads run the lanes. Each worker has its own
 * Proxmox client (a client serves one thread at a time), and so does the
 * planner/recovery side (recon_plan_pass, recon_recover), which the caller
 * runs from one thread.
 */
#ifndef FH_RECON_H
#define FH_RECON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "gate.h"
#include "jrnl.h"
#include "pve.h"
#include "sig.h"
#include "task.h"

struct store;

/* ======================================================= the serializer
 *
 * Lanes keyed by vmid (0: host-scoped work). Jobs of one lane run one at a
 * time in submit order; different lanes run in parallel on at most
 * `workers` threads; a lane that ran a job goes to the back of the ready
 * list (no lane starves another). Caps: jobs waiting per lane and in all;
 * a submit over either is FH_ERR_QUEUE_FULL and queues nothing. */

#define RECON_WORKERS_MAX 64
#define RECON_QUEUED_MAX 65536

struct recon_queue;

struct recon_queue_opts {
	unsigned workers;            /* threads, 1..RECON_WORKERS_MAX */
	unsigned max_per_lane;       /* jobs waiting in one lane (running one not counted), >= 1 */
	unsigned max_queued;         /* jobs waiting in all lanes, 1..RECON_QUEUED_MAX */
};

/* Runs on a worker; worker is its index (0..workers-1). */
typedef void (*recon_job_fn)(void *arg, unsigned worker);
/* A queued job that will never run (the queue is freed): release arg. */
typedef void (*recon_drop_fn)(void *arg);

/* Starts the workers. FH_ERR_INVAL (opts out of range), FH_ERR_NOMEM. */
int recon_queue_new(const struct recon_queue_opts *o, struct recon_queue **out);
/* Appends a job to lane's queue. FH_ERR_QUEUE_FULL (nothing queued, fn and
 * drop not called), FH_ERR_CANCELLED (the queue is being freed). */
int recon_queue_submit(struct recon_queue *q, int64_t lane, recon_job_fn fn, recon_drop_fn drop, void *arg);
/* Blocks until no job is queued or running. */
void recon_queue_wait_idle(struct recon_queue *q);
/* Jobs queued or running in lane. */
size_t recon_queue_lane_busy(struct recon_queue *q, int64_t lane);
/* Stops: running jobs finish, queued ones are dropped (drop called), the
 * workers are joined. NULL is allowed. */
void recon_queue_free(struct recon_queue *q);

struct recon_queue_stats {
	uint64_t submitted, ran, refused, dropped;
	unsigned running, max_running;   /* jobs running now, most at once */
	size_t queued;                   /* waiting now */
};
void recon_queue_stats(struct recon_queue *q, struct recon_queue_stats *out);

/* ===================================================== desired state
 *
 * GET /api/v1/desired-state:
 *   {"generation":N,"guests":[{"vmid":101,"state":"running","cores":2,
 *     "memory_mib":1024}, ...]}
 * Validated strictly: generation an integer >= 1; guests an array of at
 * most max_guests objects with a unique vmid 100..999999999; state
 * "running" | "stopped" | "absent" ("absent" plans a destroy, which the
 * gate holds as pending_signature unless signed); cores 1..8192 (optional);
 * memory as memory_mib 16..16777216 or memory_bytes (a non-MiB-aligned
 * value is rounded up to whole MiB, the unit Proxmox stores, so it
 * converges in one pass); optional description (string, at most 1023 bytes)
 * and onboot (true/false, 0/1). Unknown members are ignored (the hub may
 * add some); a known member of the wrong type or range rejects the whole
 * document (no mutation at all). */

#define RECON_DESIRED_MAX_BYTES ((size_t)16 << 20)
#define RECON_DESCRIPTION_MAX 1023      /* a param string of an action (opblob) */
#define RECON_MEMORY_MIB_MIN 16
#define RECON_MEMORY_MIB_MAX 16777216
#define RECON_CORES_MAX 8192

enum recon_want { RECON_WANT_RUNNING = 1, RECON_WANT_STOPPED = 2, RECON_WANT_ABSENT = 3 };

struct recon_desired_guest {
	int vmid;
	enum recon_want state;
	int cores;                   /* 0: not managed */
	int64_t memory_mib;          /* 0: not managed */
	char *description;           /* NULL: not managed; owned */
	int onboot;                  /* -1: not managed, else 0/1 */
};

struct recon_desired {
	int64_t generation;
	size_t n;
	struct recon_desired_guest *g;   /* sorted by vmid */
};

/* Parses and validates p[0..n). *out (recon_desired_free) only on success.
 * FH_ERR_DECODE with a one-line why (never quoting more than a key name),
 * FH_ERR_TOOBIG (over RECON_DESIRED_MAX_BYTES, or more than max_guests),
 * FH_ERR_NOMEM. */
int recon_desired_parse(const char *p, size_t n, size_t max_guests, struct recon_desired *out, char *why,
			size_t whylen);
void recon_desired_free(struct recon_desired *d);

/* Actual state of one guest, normalized. */
struct recon_actual_guest {
	int vmid;
	bool running;                /* status "running" */
	bool status_known;           /* status was running or stopped */
	bool have_config;            /* the config read succeeded */
	int cores;                   /* 0 when absent */
	int64_t memory_mib;          /* Proxmox's default 512 when absent */
	char *description;           /* NULL when absent; owned */
	int onboot;                  /* 0/1 */
};

/* Fills g from a list row and its config (cfg may be NULL when the read
 * failed). FH_ERR_NOMEM. */
int recon_actual_from_pve(const struct pve_guest *row, const struct pve_guest_config *cfg,
			  struct recon_actual_guest *g);
void recon_actual_free(struct recon_actual_guest *g, size_t n);

/* ============================================================ the plan
 *
 * A pure diff of desired vs actual: per guest in both, at most one
 * set_config (only the managed keys that differ after normalization:
 * memory in MiB, description with CRLF as LF and trailing whitespace
 * trimmed, onboot as 0/1) and then at most one power action (start when
 * desired running and stopped, stop when desired stopped and running).
 * A guest only in actual gets nothing (never stopped or destroyed by the
 * plan); a guest only in desired is listed as awaiting provisioning; an
 * "absent" guest present in actual gets a destroy (destructive: the gate
 * holds it), and a stop of a guest no agent job created is held the same
 * way (gate.h). A guest whose status is not known gets no power action. A
 * converged guest plans nothing. */

enum recon_act { RECON_ACT_SET_CONFIG = 1, RECON_ACT_START, RECON_ACT_STOP, RECON_ACT_DESTROY };

struct recon_action {
	enum recon_act act;
	int vmid;
	int cores;                   /* set_config: 0 = unchanged */
	int64_t memory_mib;          /* set_config: 0 = unchanged */
	const char *description;     /* set_config: NULL = unchanged (borrowed from the desired state) */
	int onboot;                  /* set_config: -1 = unchanged */
};

struct recon_plan {
	size_t n;
	struct recon_action *a;      /* in execution order */
	size_t nawaiting;
	int *awaiting;               /* vmids only in desired: awaiting provisioning */
	size_t nconverged;           /* guests in both that need nothing */
};

/* Plans desired against actual[0..nactual) (any order). *out
 * (recon_plan_free) only on success; FH_ERR_NOMEM. */
int recon_plan(const struct recon_desired *d, const struct recon_actual_guest *actual, size_t nactual,
	       struct recon_plan *out);
void recon_plan_free(struct recon_plan *p);
/* "set_config", "start", "stop", "destroy". */
const char *recon_act_name(enum recon_act a);
/* The gate action for a planned action on host host_id. FH_ERR_INVAL. */
int recon_action_to_gate(const struct recon_action *a, const char *host_id, struct gate_action *out);

/* Normalizations (exposed for tests). */
int64_t recon_memory_mib_of_bytes(int64_t bytes);     /* rounded up; 0 for <= 0 */
/* Description as compared: CRLF -> LF, trailing whitespace of every line
 * and of the whole text removed; into out (cap n). */
void recon_norm_description(const char *s, char *out, size_t n);

/* =========================================================== the engine */

struct recon;

struct recon_opts {
	struct store *st;            /* required: journal, idempotency, audit, outbox, nonces */
	struct gate *gate;           /* required */
	const struct pve_opts *pve;  /* required: each worker makes its own client */
	unsigned workers;            /* recon.max_parallel_guests (4) */
	unsigned max_per_lane;       /* recon.max_queued_per_guest (16) */
	unsigned max_queued;         /* recon.max_queued (1024) */
	unsigned max_mutations;      /* recon.max_mutations: Proxmox mutations at once (2) */
	int64_t lock_wait_ms;        /* recon.lock_wait_seconds * 1000 (120 s) */
	unsigned post_retries;       /* recon.post_retries (3) */
	int64_t post_retry_ms;       /* first retry delay, doubled each time (500) */
	uint64_t audit_max;          /* recon.audit_max_entries (10000) */
	int64_t idem_retention_s;    /* recon.idempotency_retention_seconds (7 days) */
	/* Called (on any thread, no lock held) when an op result was put in
	 * the outbox, so the caller can deliver it soon. May be NULL. */
	void (*on_result)(void *arg);
	void *on_result_arg;
	/* The host executor for ops that are not Proxmox calls
	 * (recon_host_op). Called on a worker, at most once per admitted
	 * step, under the max_mutations cap, after the intent and its
	 * hand-over are journaled; vd is the verified op (NULL: unsigned).
	 * Returns 0 (executed) or a negative fh_err (failed; why, one line,
	 * goes to the journal, audit and op result; never a secret). Never
	 * retried: a step found in flight after a crash is closed failed
	 * "interrupted". NULL: such steps fail "no host executor". */
	int (*exec_host)(void *ctx, const struct gate_action *a, const struct sig_verified *vd, char *why,
			 size_t whylen);
	void *exec_host_ctx;
};

/* Builds the engine and starts its workers; no Proxmox call yet.
 * FH_ERR_INVAL, FH_ERR_CONFIG (the Proxmox options; err says why),
 * FH_ERR_NOMEM. */
int recon_new(const struct recon_opts *o, struct recon **out, char *err, size_t errlen);
/* Waits for running jobs (their tasks are awaited), drops queued ones.
 * NULL is allowed. */
void recon_free(struct recon *r);
/* Async-signal-safe: cancels every Proxmox call of the engine (running
 * jobs end with their intent or UPID in the journal, for recovery). */
void recon_cancel(struct recon *r);

/* blocked: no new POST from now on (see the top). Unblocking resumes the
 * intents left in flight (recon_resume). */
void recon_set_blocked(struct recon *r, bool blocked);
bool recon_blocked(struct recon *r);

/* ---- jobs ---- */

#define RECON_JOB_ID_MAX JRNL_JOB_ID_MAX
#define RECON_STEPS_MAX 4

/* What one step of a job came to. */
struct recon_step_result {
	bool ran;                    /* the gate decided it (executed or not) */
	enum task_outcome outcome;
	int reason;
	char upid[UPID_MAX];
	char why[160];
};

struct recon_result {
	enum task_outcome outcome;   /* executed | pending_signature | rejected | failed;
					NONE: not decided here (blocked, cancelled, still
					executing under an earlier delivery, left in flight) */
	int reason;                  /* fh_err code (0 for executed) */
	char why[256];               /* one line; never a secret */
	bool replayed;               /* the stored outcome of an earlier delivery */
	uint64_t jrnl_id;            /* the last step's journal entry, 0 if none */
	char upid[UPID_MAX];         /* the last step's task, "" if none */
	size_t nsteps;               /* steps[0..nsteps): one per step of the job */
	struct recon_step_result steps[RECON_STEPS_MAX];
};

/* A step flag (beside the JRNL_F_* ones): run this step even when an
 * earlier step of the job failed (the selftest deletes its snapshot
 * whatever the rollback did). Kept in the job record
 * (JRNL_JOB_STEP_ALWAYS), never in a journal entry. */
#define RECON_STEP_ALWAYS 0x100u

struct recon_job {
	enum jrnl_source source;
	char job_id[RECON_JOB_ID_MAX + 1];   /* idempotency key, "" = none (desired-state actions) */
	char op_id[129];             /* hub op id: the outcome goes to op-results; "" = none */
	size_t nsteps;               /* 1..RECON_STEPS_MAX steps, run in order, one journal entry
					each; a step that does not execute ends the job */
	struct gate_action steps[RECON_STEPS_MAX];
	uint32_t step_flags[RECON_STEPS_MAX];   /* JRNL_F_* the engine asserts for a step */
	bool is_signed;              /* vd holds a verified op (single-step jobs only) */
	struct sig_verified vd;
	int64_t idem_expires_at;     /* 0: now + idem_retention_s */
};

/* Queues job (copied) in the lane of its first step's guest. done (may be
 * NULL) is called on a worker with the result once the job ended (also
 * when it did not execute); it must not block. FH_ERR_QUEUE_FULL,
 * FH_ERR_BLOCKED, FH_ERR_DUPLICATE (the same job id is already queued or
 * running), FH_ERR_INVAL, FH_ERR_NOMEM; then nothing was queued or
 * written and done is not called. */
typedef void (*recon_done_fn)(const struct recon_result *res, void *arg);
int recon_submit(struct recon *r, const struct recon_job *job, recon_done_fn done, void *arg);
/* recon_submit and wait for the result. Submission errors are returned
 * (res untouched); otherwise 0 and *res. */
int recon_run(struct recon *r, const struct recon_job *job, struct recon_result *res);

/* A decision that never reaches the queue (a signed op whose signature did
 * not verify): audit record and, when op_id is given, the op result, in one
 * transaction; stored under job_id (may be "") so a redelivery gets it
 * again. 0 or a store error (the caller logs it; the decision stands). */
int recon_record_rejection(struct recon *r, const char *job_id, const char *op_id, const char *op,
			   int64_t guest, int reason, const char *why, int64_t idem_expires_at);

/* ---- hub signed ops (GET /api/v1/signed-ops) ----
 *   {"ops":[{"id":"op-1","blob_b64":"...","signature":"-----BEGIN SSH SIGNATURE-----..."},
 *           {"id":"job-7","action":{"op":"start","guest_id":101,"params":{}}}]}
 * An entry has an id (1..128 printable ASCII) and either a signed blob
 * (blob_b64 + signature: the action is the blob's op, or "action" when
 * given, which the signature must then bind), or an unsigned "action"
 * (benign actions run; destructive ones are pending_signature). At most
 * RECON_OPS_MAX entries per document. */

#define RECON_OPS_MAX 256
#define RECON_OPS_MAX_BYTES ((size_t)4 << 20)

/* One entry as delivered (what recon_signed_op takes). */
struct recon_op_entry {
	char id[129];
	bool has_blob;
	struct buf blob;             /* decoded blob bytes (cap OPBLOB_MAX_BYTES + 1) */
	struct buf armor;            /* the armored signature (cap SIG_ARMOR_MAX + 1) */
	bool has_action;
	struct gate_action action;   /* op, guest, params as delivered (host: set on use) */
	int parse_error;             /* 0, or FH_ERR_SIG_MALFORMED: the entry is answered rejected */
	char why[128];
};

/* Parses the document into *entries (recon_ops_free). A document that is
 * not {"ops":[...]} is FH_ERR_DECODE; a bad entry with a usable id is kept
 * with parse_error set (it gets a "rejected"/"malformed" result); one
 * without an id is skipped. FH_ERR_TOOBIG past the caps. */
int recon_ops_parse(const char *p, size_t n, struct recon_op_entry **entries, size_t *nentries, char *why,
		    size_t whylen);
void recon_ops_free(struct recon_op_entry *e, size_t n);

/* Handles one entry at time now: verification (gate_check), then a job
 * (recon_submit) for a verified or unsigned action, or the rejection
 * recorded at once. *outcome_now is TASK_OUT_NONE when a job was queued (its
 * result goes to the outbox when it ends), otherwise the outcome recorded
 * now. Returns 0, or the submit error (queue full, blocked: nothing was
 * recorded; the hub delivers the op again). */
int recon_signed_op(struct recon *r, const struct recon_op_entry *e, int64_t now, enum task_outcome *outcome_now);

/* ---- the planner pass ----
 * Reads the actual state (the LXC list and each desired guest's config,
 * on the engine's own client), plans against d and submits every action
 * whose lane is idle (a guest with work queued or running is planned again
 * next pass). Nothing at all when d is NULL or blocked. Destructive
 * planned actions reach the gate unsigned: pending_signature, audited once
 * per (generation, guest, action), and not submitted again in that
 * generation. */
struct recon_pass {
	size_t planned, submitted, busy, refused;
	size_t awaiting, converged;
	int read_error;              /* the list read failed: nothing planned */
	char why[256];
};
int recon_plan_pass(struct recon *r, const struct recon_desired *d, struct recon_pass *out);

/* ---- recovery ---- */

/* One row of the recovery table. */
struct recon_recovery_row {
	uint64_t id;
	char job_id[RECON_JOB_ID_MAX + 1];
	char op[64];
	int64_t vmid;
	enum task_state state;       /* as found */
	char upid[UPID_MAX];         /* as found or adopted */
	const char *found;           /* "task stopped", "task running", "task adopted", "no task", ... */
	const char *action;          /* "closed", "awaited", "re-posted", "would close", ... */
	enum task_outcome outcome;
	char detail[160];
};
typedef void (*recon_row_fn)(const struct recon_recovery_row *row, void *arg);

struct recon_recovery {
	size_t in_flight;            /* entries found in flight */
	size_t closed;               /* closed by recovery */
	size_t awaited;              /* were running, awaited then closed */
	size_t adopted;              /* intent without UPID: task found in the node's list */
	size_t reposted;             /* queued to execute again (never posted before) */
	size_t left;                 /* still in flight (dry run, errors, blocked) */
	size_t jobs;                 /* multi-step jobs found open (job records) */
	size_t continued;            /* steps of those admitted and closed after the restart
					(dry run: steps that would run) */
	size_t jobs_failed;          /* jobs closed failed for an unreadable record */
};

/* Multi-step jobs. Recovery first reads the open job records. A record
 * that does not decode (or disagrees with the journal) closes its job
 * failed "decode" at once (idempotency outcome if still executing, op
 * result, record deleted; its entries still in flight are resolved alone
 * and do not write the job's outcome); nothing more of it runs. Every
 * other job is continued through the queue, in its lane, as a job of the
 * same source, job id and op id (unsigned: a signed job has one step, so
 * it never has a record): its step in flight, if any, is resolved by the
 * journal exactly as below (never dispatched again once posted); then,
 * if the job has not failed, the next steps are admitted one by one (the
 * gate decides each as at first admission, with the provenance of the
 * job's earlier steps from their journal entries); if it has failed, only
 * its remaining RECON_STEP_ALWAYS steps run. A job stopped between two
 * steps resumes at the next one. The job's outcome goes to its
 * idempotency key and op result once, when its last step closes. Each
 * continued step gives a row (found "continuation", state queued; id 0
 * for a step not admitted); a dry run lists the steps the continuation
 * would run ("would run", "would run (always)", "would skip (a step
 * failed)"), posting nothing. recon_resume continues jobs the same way.
 *
 * Resolves every in-flight journal entry, before any other mutation: its
 * task looked up once; finished -> closed with its outcome; running ->
 * awaited, then closed; an intent without UPID -> a task this agent started
 * after the intent in the node's task list is adopted, else the op's
 * recovery rule (check actual state: already in effect -> closed; never
 * posted -> executed again through the queue, or rolled back for ops
 * without a rule). An entry that was posted (its UPID is recorded) is never
 * dispatched again: if Proxmox no longer knows its task and the effect is
 * not there, it is closed failed. backup_prune adopts no task (an imgdel
 * worker is named VMID@STORAGE, not by its volume): this agent's unrecorded
 * imgdel tasks of that guest and storage are let finish, then the volume
 * decides (gone: closed; there: posted again unless posted before). A host
 * op (recon_host_op) in flight is never run again: closed failed
 * "interrupted" (FH_ERR_INTERRUPTED). The queue's caps are respected by
 * waiting for room. dry_run: looks (reads only), writes and posts nothing.
 * row (may be NULL) gets one call per entry. When not a dry run, waits for
 * the re-posted jobs. 0, or the first store error. */
int recon_recover(struct recon *r, bool dry_run, recon_row_fn row, void *arg, struct recon_recovery *out);
/* Re-queues intents left in flight and continues open multi-step jobs
 * that no job of this process is running (after a block ended). */
int recon_resume(struct recon *r);

/* ---- tools ---- */

/* Takes STATE_DIR/engine.lock (flock, exclusive, not waiting): one
 * process at a time runs the engine on a state directory (the daemon,
 * --replay-journal, --selftest=task). *fd (close it to release) on
 * success; FH_ERR_LOCKED when another process holds it; FH_ERR_IO. */
int recon_lock(const char *state_dir, int *fd);

/* One journal entry as a JSON object (one line, no newline) appended to
 * out: id, job_id, source, op, vmid (null when host-scoped), params (the
 * canonical object), flags, signer_key_id, state, history [{event, at}],
 * upid, outcome, reason, text, created_at, updated_at, closed_at.
 * FH_ERR_TOOBIG (out's cap), FH_ERR_NOMEM. */
int recon_entry_json(const struct jrnl_entry *e, struct buf *out);

/* ---- counters ---- */
struct recon_stats {
	uint64_t admitted, executed, failed, pending, rejected, replayed;
	uint64_t posts, post_retries, adopted;
	uint64_t audit_failures;     /* audit records that could not be written (decision kept) */
	uint64_t store_failures;     /* journal writes that failed after a POST (recovery resolves) */
	unsigned mutations_now, mutations_max;   /* concurrent Proxmox mutations */
	struct recon_queue_stats q;
};
void recon_stats(struct recon *r, struct recon_stats *out);
/* Waits until no job is queued or running. */
void recon_wait_idle(struct recon *r);

/* The Proxmox task type an op's POST starts ("vzstart", ..., "imgdel" for
 * backup_prune), or NULL for ops that have none (set_config,
 * signer_rotate, host ops). */
const char *recon_task_type(const char *op);
/* True for the ops the host executor runs (storage_wipe). */
bool recon_host_op(const char *op);

#endif
