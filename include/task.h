/* task.h — the lifecycle of one mutation (SPEC §7), a Ragel machine over
 * an event alphabet (machines/task.rl).
 *
 *   queued --INTENT--> intent --POSTED--> posted --RUNNING--> running
 *     |                  |                  |                    |
 *     |                  |                  +--SUCCEEDED/FAILED--+--> succeeded | failed
 *     |                  +--FAILED--> failed       (POST refused for good, no UPID)
 *     |                  +--ROLLED_BACK--> rolled_back (never posted; abandoned
 *     |                                    or compensated, e.g. by recovery)
 *     +--REJECTED--> failed   (refused before any intent: gate, blocked,
 *                              queue overflow; nothing was written or posted)
 *
 * Every other (state, event) pair is invalid: task_step returns
 * FH_ERR_TASK_EVENT ("invalid_task_event") and never moves. In particular:
 *   - terminal states (succeeded, failed, rolled_back) accept no event;
 *   - nothing repeats (RUNNING in running, POSTED in posted are errors);
 *   - once posted, a task cannot be rolled back (it is never re-dispatched;
 *     its Proxmox task decides) and cannot go back to intent;
 *   - a synchronous success is POSTED followed by SUCCEEDED; "already
 *     running / already stopped" on a retry is reported the same way;
 *   - SUCCEEDED needs a post first (intent -> succeeded is invalid).
 *
 * The enums below are the persisted form (journal records, dumps): their
 * numeric values are stable and append-only; Ragel's `cs` is never stored
 * (minimisation merges and renumbers states). A task's state is rebuilt from
 * its event history with task_replay, and the journal persists both.
 *
 * Outcomes (enum task_outcome) are the four words of SPEC §6 op-results and
 * the audit log, shared by jrnl_, idem_, audit_ and outbox_.
 *
 * Everything here is pure (no allocation, no I/O, thread-safe).
 */
#ifndef FH_TASK_H
#define FH_TASK_H

#include <stdbool.h>
#include <stddef.h>

/* Persisted: values never change. 0 is never a valid state. */
enum task_state {
	TASK_QUEUED = 1,
	TASK_INTENT = 2,
	TASK_POSTED = 3,
	TASK_RUNNING = 4,
	TASK_SUCCEEDED = 5,
	TASK_FAILED = 6,
	TASK_ROLLED_BACK = 7,
	TASK_STATE__END          /* one past the last */
};

/* Persisted: values never change. 0 is never a valid event. */
enum task_event {
	TASK_EV_INTENT = 1,      /* the intent is durably written */
	TASK_EV_POSTED = 2,      /* Proxmox accepted the POST (UPID) or it succeeded synchronously */
	TASK_EV_RUNNING = 3,     /* the task was seen running */
	TASK_EV_SUCCEEDED = 4,   /* the task ended OK (or WARNINGS) */
	TASK_EV_FAILED = 5,      /* the task or a non-transient POST failed */
	TASK_EV_ROLLED_BACK = 6, /* an intent never posted was abandoned or compensated */
	TASK_EV_REJECTED = 7,    /* refused before any intent (gate, blocked, overflow) */
	TASK_EV__END             /* one past the last */
};

/* Persisted: values never change. TASK_OUT_NONE: not decided yet. */
enum task_outcome {
	TASK_OUT_NONE = 0,
	TASK_OUT_EXECUTED = 1,
	TASK_OUT_PENDING_SIGNATURE = 2,
	TASK_OUT_REJECTED = 3,
	TASK_OUT_FAILED = 4,
	TASK_OUT__END
};

/* One transition. 0 and *to set on success; FH_ERR_TASK_EVENT when ev is
 * not allowed in from (also for values outside the enums); FH_ERR_INVAL
 * when to is NULL. *to is untouched on error. */
int task_step(enum task_state from, enum task_event ev, enum task_state *to);

/* Rebuilds a state from a history that starts at queued: the state after
 * feeding hist[0..n) one by one (n == 0 gives TASK_QUEUED).
 * FH_ERR_TASK_EVENT at the first invalid event (*bad_at = its index, when
 * bad_at is not NULL); FH_ERR_INVAL for out NULL or hist NULL with n > 0.
 * *out (and *bad_at) are written only on the outcome they describe. */
int task_replay(const enum task_event *hist, size_t n, enum task_state *out);
int task_replay_at(const enum task_event *hist, size_t n, enum task_state *out, size_t *bad_at);

/* succeeded, failed, rolled_back. false for anything else. */
bool task_state_terminal(enum task_state s);
/* A value of the enum (persisted bytes are checked with these). */
bool task_state_valid(int s);
bool task_event_valid(int ev);
bool task_outcome_valid(int o);

/* Stable names: "queued", "intent", "posted", "running", "succeeded",
 * "failed", "rolled_back"; events "intent", "posted", "running",
 * "succeeded", "failed", "rolled_back", "rejected"; outcomes "", "executed",
 * "pending_signature", "rejected", "failed". "unknown" for values outside
 * the enums. Static strings. */
const char *task_state_name(enum task_state s);
const char *task_event_name(enum task_event ev);
const char *task_outcome_name(enum task_outcome o);
/* Parses an outcome word (not ""): 0 or FH_ERR_INVAL. */
int task_outcome_parse(const char *s, enum task_outcome *out);

#endif
