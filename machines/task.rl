/* task.rl — the task lifecycle machine over an event alphabet (task.h).
 *
 * ragel -G2 -C -I machines -o gen/task.c machines/task.rl
 *
 * The alphabet is ints: the events of enum task_event (1..7) and, to start
 * the machine in a given state, one "from" marker per state (FROM_BASE +
 * enum task_state). A step feeds [marker(from), ev]; a replay feeds
 * [marker(queued), hist...]. Each transition's action records the task.h
 * state it enters; that, never `cs`, is what callers see and persist
 * (Ragel minimises the three terminal states into one and may renumber
 * states whenever the machine changes; research §3.6). An event that has
 * no transition sends the machine to the error state, where it stays; p is
 * then left on the offending symbol.
 *
 * The symbol values are written below as numbers and checked against
 * task.h with static assertions, so the two cannot drift apart.
 *
 * Tests: test/test_task.c checks every (state, event) pair against an
 * independent table, and replays.
 */
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "err.h"

#define FROM_BASE 100

_Static_assert(TASK_EV_INTENT == 1 && TASK_EV_POSTED == 2 && TASK_EV_RUNNING == 3 &&
	       TASK_EV_SUCCEEDED == 4 && TASK_EV_FAILED == 5 && TASK_EV_ROLLED_BACK == 6 &&
	       TASK_EV_REJECTED == 7 && TASK_EV__END == 8, "task.rl event symbols match task.h");
_Static_assert(TASK_QUEUED == 1 && TASK_INTENT == 2 && TASK_POSTED == 3 && TASK_RUNNING == 4 &&
	       TASK_SUCCEEDED == 5 && TASK_FAILED == 6 && TASK_ROLLED_BACK == 7 &&
	       TASK_STATE__END == 8, "task.rl state markers match task.h");

struct run {
	int cs;
	enum task_state st;      /* the state the last transition entered */
};

%%{
	machine task;
	alphtype int;
	access r->;

	# Events (enum task_event).
	EV_INTENT = 1;
	EV_POSTED = 2;
	EV_RUNNING = 3;
	EV_SUCCEEDED = 4;
	EV_FAILED = 5;
	EV_ROLLED_BACK = 6;
	EV_REJECTED = 7;

	# Start markers: FROM_BASE + enum task_state.
	FROM_QUEUED = 101;
	FROM_INTENT = 102;
	FROM_POSTED = 103;
	FROM_RUNNING = 104;
	FROM_SUCCEEDED = 105;
	FROM_FAILED = 106;
	FROM_ROLLED_BACK = 107;

	action queued      { r->st = TASK_QUEUED; }
	action intent      { r->st = TASK_INTENT; }
	action posted      { r->st = TASK_POSTED; }
	action running     { r->st = TASK_RUNNING; }
	action succeeded   { r->st = TASK_SUCCEEDED; }
	action failed      { r->st = TASK_FAILED; }
	action rolled_back { r->st = TASK_ROLLED_BACK; }

	main := (
		start: (
			FROM_QUEUED @queued -> queued |
			FROM_INTENT @intent -> intent |
			FROM_POSTED @posted -> posted |
			FROM_RUNNING @running -> running |
			FROM_SUCCEEDED @succeeded -> final |
			FROM_FAILED @failed -> final |
			FROM_ROLLED_BACK @rolled_back -> final
		),
		queued: (
			EV_INTENT @intent -> intent |
			EV_REJECTED @failed -> final
		),
		intent: (
			EV_POSTED @posted -> posted |
			EV_FAILED @failed -> final |
			EV_ROLLED_BACK @rolled_back -> final
		),
		posted: (
			EV_RUNNING @running -> running |
			EV_SUCCEEDED @succeeded -> final |
			EV_FAILED @failed -> final
		),
		running: (
			EV_SUCCEEDED @succeeded -> final |
			EV_FAILED @failed -> final
		)
	);

	write data noerror nofinal noentry;
}%%

static void run_init(struct run *r)
{
	memset(r, 0, sizeof *r);
	%% write init;
}

/* Feeds syms[0..n); 0, or FH_ERR_TASK_EVENT with *bad = index of the
 * symbol that had no transition (the machine stays in error). */
static int run_feed(struct run *r, const int *syms, size_t n, size_t *bad)
{
	const int *p = syms, *pe = syms + n;

	if (r->cs == %%{ write error; }%%) {
		*bad = 0;
		return FH_ERR_TASK_EVENT;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
	%% write exec;
#pragma GCC diagnostic pop
	if (r->cs == %%{ write error; }%%) {
		*bad = (size_t)(p - syms);
		return FH_ERR_TASK_EVENT;
	}
	return 0;
}

bool task_state_valid(int s)
{
	return s >= TASK_QUEUED && s < TASK_STATE__END;
}

bool task_event_valid(int ev)
{
	return ev >= TASK_EV_INTENT && ev < TASK_EV__END;
}

bool task_outcome_valid(int o)
{
	return o >= TASK_OUT_NONE && o < TASK_OUT__END;
}

bool task_state_terminal(enum task_state s)
{
	return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_ROLLED_BACK;
}

int task_step(enum task_state from, enum task_event ev, enum task_state *to)
{
	struct run r;
	int syms[2];
	size_t bad;
	int rc;

	if (!to)
		return FH_ERR_INVAL;
	/* Out-of-enum values must never alias a marker or an event. */
	if (!task_state_valid((int)from) || !task_event_valid((int)ev))
		return FH_ERR_TASK_EVENT;
	syms[0] = FROM_BASE + (int)from;
	syms[1] = (int)ev;
	run_init(&r);
	rc = run_feed(&r, syms, 2, &bad);
	if (rc)
		return rc;
	*to = r.st;
	return 0;
}

int task_replay_at(const enum task_event *hist, size_t n, enum task_state *out, size_t *bad_at)
{
	struct run r;
	int sym, rc;
	size_t i, bad;

	if (!out || (!hist && n > 0))
		return FH_ERR_INVAL;
	run_init(&r);
	sym = FROM_BASE + (int)TASK_QUEUED;
	rc = run_feed(&r, &sym, 1, &bad);
	if (rc)
		return FH_ERR_INTERNAL;
	/* One symbol at a time: an out-of-enum value is refused here rather
	 * than being read as a start marker. */
	for (i = 0; i < n; i++) {
		if (!task_event_valid((int)hist[i])) {
			if (bad_at)
				*bad_at = i;
			return FH_ERR_TASK_EVENT;
		}
		sym = (int)hist[i];
		rc = run_feed(&r, &sym, 1, &bad);
		if (rc) {
			if (bad_at)
				*bad_at = i;
			return rc;
		}
	}
	*out = r.st;
	return 0;
}

int task_replay(const enum task_event *hist, size_t n, enum task_state *out)
{
	return task_replay_at(hist, n, out, NULL);
}

static const char *const state_names[TASK_STATE__END] = {
	[TASK_QUEUED] = "queued",
	[TASK_INTENT] = "intent",
	[TASK_POSTED] = "posted",
	[TASK_RUNNING] = "running",
	[TASK_SUCCEEDED] = "succeeded",
	[TASK_FAILED] = "failed",
	[TASK_ROLLED_BACK] = "rolled_back",
};

static const char *const event_names[TASK_EV__END] = {
	[TASK_EV_INTENT] = "intent",
	[TASK_EV_POSTED] = "posted",
	[TASK_EV_RUNNING] = "running",
	[TASK_EV_SUCCEEDED] = "succeeded",
	[TASK_EV_FAILED] = "failed",
	[TASK_EV_ROLLED_BACK] = "rolled_back",
	[TASK_EV_REJECTED] = "rejected",
};

static const char *const outcome_names[TASK_OUT__END] = {
	[TASK_OUT_NONE] = "",
	[TASK_OUT_EXECUTED] = "executed",
	[TASK_OUT_PENDING_SIGNATURE] = "pending_signature",
	[TASK_OUT_REJECTED] = "rejected",
	[TASK_OUT_FAILED] = "failed",
};

const char *task_state_name(enum task_state s)
{
	return task_state_valid((int)s) ? state_names[s] : "unknown";
}

const char *task_event_name(enum task_event ev)
{
	return task_event_valid((int)ev) ? event_names[ev] : "unknown";
}

const char *task_outcome_name(enum task_outcome o)
{
	return task_outcome_valid((int)o) ? outcome_names[o] : "unknown";
}

int task_outcome_parse(const char *s, enum task_outcome *out)
{
	int i;

	if (!s || !out)
		return FH_ERR_INVAL;
	for (i = TASK_OUT_EXECUTED; i < TASK_OUT__END; i++)
		if (strcmp(s, outcome_names[i]) == 0) {
			*out = (enum task_outcome)i;
			return 0;
		}
	return FH_ERR_INVAL;
}
