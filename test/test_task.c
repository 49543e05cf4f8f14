/* test_task.c — the task lifecycle machine (machines/task.rl, task.h):
 * every (state, event) pair against an independent table, every history
 * up to length 5 against that table, names, and out-of-enum values. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "task.h"

/* The allowed transitions, written out from SPEC §7 / task.h (0: invalid). */
static enum task_state expect(enum task_state s, enum task_event ev)
{
	switch (s) {
	case TASK_QUEUED:
		if (ev == TASK_EV_INTENT) return TASK_INTENT;
		if (ev == TASK_EV_REJECTED) return TASK_FAILED;
		return 0;
	case TASK_INTENT:
		if (ev == TASK_EV_POSTED) return TASK_POSTED;
		if (ev == TASK_EV_FAILED) return TASK_FAILED;
		if (ev == TASK_EV_ROLLED_BACK) return TASK_ROLLED_BACK;
		return 0;
	case TASK_POSTED:
		if (ev == TASK_EV_RUNNING) return TASK_RUNNING;
		if (ev == TASK_EV_SUCCEEDED) return TASK_SUCCEEDED;
		if (ev == TASK_EV_FAILED) return TASK_FAILED;
		return 0;
	case TASK_RUNNING:
		if (ev == TASK_EV_SUCCEEDED) return TASK_SUCCEEDED;
		if (ev == TASK_EV_FAILED) return TASK_FAILED;
		return 0;
	default:
		return 0;
	}
}

T_TEST(t_every_pair)
{
	int s, ev, valid = 0, invalid = 0;

	for (s = TASK_QUEUED; s < TASK_STATE__END; s++)
		for (ev = TASK_EV_INTENT; ev < TASK_EV__END; ev++) {
			enum task_state want = expect((enum task_state)s, (enum task_event)ev);
			enum task_state to = (enum task_state)99;
			int r = task_step((enum task_state)s, (enum task_event)ev, &to);

			if (want) {
				valid++;
				if (r != 0 || to != want)
					t_failf(__FILE__, __LINE__, "%s --%s--> want %s, got r=%s to=%d",
					        task_state_name((enum task_state)s),
					        task_event_name((enum task_event)ev),
					        task_state_name(want), fh_strerror(r), (int)to);
			} else {
				invalid++;
				if (r != FH_ERR_TASK_EVENT || to != (enum task_state)99)
					t_failf(__FILE__, __LINE__, "%s --%s--> must be invalid, got r=%s to=%d",
					        task_state_name((enum task_state)s),
					        task_event_name((enum task_event)ev), fh_strerror(r), (int)to);
			}
		}
	/* 7 states x 7 events: 10 allowed transitions (2+3+3+2), 39 refused */
	T_EQ_INT(valid, 10);
	T_EQ_INT(invalid, 39);
}

T_TEST(t_terminal_absorbs_nothing)
{
	enum task_state term[] = { TASK_SUCCEEDED, TASK_FAILED, TASK_ROLLED_BACK };
	size_t i;
	int ev;

	for (i = 0; i < 3; i++) {
		T_CHECK(task_state_terminal(term[i]));
		for (ev = TASK_EV_INTENT; ev < TASK_EV__END; ev++) {
			enum task_state to = TASK_QUEUED;

			T_ERR(task_step(term[i], (enum task_event)ev, &to), FH_ERR_TASK_EVENT);
			T_EQ_INT(to, TASK_QUEUED);
		}
	}
	T_CHECK(!task_state_terminal(TASK_QUEUED));
	T_CHECK(!task_state_terminal(TASK_INTENT));
	T_CHECK(!task_state_terminal(TASK_POSTED));
	T_CHECK(!task_state_terminal(TASK_RUNNING));
}

T_TEST(t_out_of_enum)
{
	enum task_state to = TASK_QUEUED;
	int bad[] = { 0, -1, 8, 100, 101, 107, 1000 };
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* as an event: never a transition (101..107 are the machine's
		 * internal start markers and must not leak through) */
		T_ERR(task_step(TASK_QUEUED, (enum task_event)bad[i], &to), FH_ERR_TASK_EVENT);
		T_ERR(task_step(TASK_INTENT, (enum task_event)bad[i], &to), FH_ERR_TASK_EVENT);
		/* as a state */
		T_ERR(task_step((enum task_state)bad[i], TASK_EV_INTENT, &to), FH_ERR_TASK_EVENT);
		T_ERR(task_step((enum task_state)bad[i], TASK_EV_FAILED, &to), FH_ERR_TASK_EVENT);
		T_EQ_STR(task_state_name((enum task_state)bad[i]), "unknown");
		T_EQ_STR(task_event_name((enum task_event)bad[i]), "unknown");
		T_CHECK(!task_state_valid(bad[i]));
		T_CHECK(!task_event_valid(bad[i]));
	}
	T_EQ_INT(to, TASK_QUEUED);
	T_ERR(task_step(TASK_QUEUED, TASK_EV_INTENT, NULL), FH_ERR_INVAL);
}

T_TEST(t_names)
{
	T_EQ_STR(task_state_name(TASK_QUEUED), "queued");
	T_EQ_STR(task_state_name(TASK_INTENT), "intent");
	T_EQ_STR(task_state_name(TASK_POSTED), "posted");
	T_EQ_STR(task_state_name(TASK_RUNNING), "running");
	T_EQ_STR(task_state_name(TASK_SUCCEEDED), "succeeded");
	T_EQ_STR(task_state_name(TASK_FAILED), "failed");
	T_EQ_STR(task_state_name(TASK_ROLLED_BACK), "rolled_back");
	T_EQ_STR(task_event_name(TASK_EV_INTENT), "intent");
	T_EQ_STR(task_event_name(TASK_EV_POSTED), "posted");
	T_EQ_STR(task_event_name(TASK_EV_RUNNING), "running");
	T_EQ_STR(task_event_name(TASK_EV_SUCCEEDED), "succeeded");
	T_EQ_STR(task_event_name(TASK_EV_FAILED), "failed");
	T_EQ_STR(task_event_name(TASK_EV_ROLLED_BACK), "rolled_back");
	T_EQ_STR(task_event_name(TASK_EV_REJECTED), "rejected");
	T_EQ_STR(task_outcome_name(TASK_OUT_NONE), "");
	T_EQ_STR(task_outcome_name(TASK_OUT_EXECUTED), "executed");
	T_EQ_STR(task_outcome_name(TASK_OUT_PENDING_SIGNATURE), "pending_signature");
	T_EQ_STR(task_outcome_name(TASK_OUT_REJECTED), "rejected");
	T_EQ_STR(task_outcome_name(TASK_OUT_FAILED), "failed");
	T_EQ_STR(task_outcome_name((enum task_outcome)5), "unknown");
	T_EQ_STR(fh_strerror(FH_ERR_TASK_EVENT), "invalid_task_event");
	T_EQ_STR(fh_strerror(FH_ERR_DUPLICATE), "duplicate");
}

T_TEST(t_outcome_parse)
{
	enum task_outcome o = TASK_OUT_NONE;
	int i;

	for (i = TASK_OUT_EXECUTED; i < TASK_OUT__END; i++) {
		T_OK(task_outcome_parse(task_outcome_name((enum task_outcome)i), &o));
		T_EQ_INT(o, i);
	}
	o = TASK_OUT_EXECUTED;
	T_ERR(task_outcome_parse("", &o), FH_ERR_INVAL);
	T_ERR(task_outcome_parse("Executed", &o), FH_ERR_INVAL);
	T_ERR(task_outcome_parse("executed ", &o), FH_ERR_INVAL);
	T_ERR(task_outcome_parse(NULL, &o), FH_ERR_INVAL);
	T_EQ_INT(o, TASK_OUT_EXECUTED);
}

/* Every history of length 0..5 over the 7 events (19,608 of them): replay
 * accepts exactly the ones the table walks, ends in the table's state, and
 * names the first bad index otherwise. */
T_TEST(t_replay_all_histories)
{
	enum task_event h[5];
	size_t len, k, accepted = 0, total = 0;

	for (len = 0; len <= 5; len++) {
		size_t combos = 1, c;

		for (k = 0; k < len; k++)
			combos *= 7;
		for (c = 0; c < combos; c++) {
			size_t x = c, first_bad = SIZE_MAX, bad_at = 12345;
			enum task_state s = TASK_QUEUED, got = (enum task_state)99;
			int r;

			for (k = 0; k < len; k++) {
				h[k] = (enum task_event)(1 + x % 7);
				x /= 7;
			}
			for (k = 0; k < len && first_bad == SIZE_MAX; k++) {
				enum task_state n = expect(s, h[k]);

				if (!n)
					first_bad = k;
				else
					s = n;
			}
			r = task_replay_at(h, len, &got, &bad_at);
			total++;
			if (first_bad == SIZE_MAX) {
				accepted++;
				if (r != 0 || got != s)
					t_failf(__FILE__, __LINE__, "len %zu combo %zu: r=%d got=%d want=%d",
					        len, c, r, (int)got, (int)s);
			} else if (r != FH_ERR_TASK_EVENT || bad_at != first_bad || got != (enum task_state)99) {
				t_failf(__FILE__, __LINE__, "len %zu combo %zu: r=%d bad_at=%zu want %zu",
				        len, c, r, bad_at, first_bad);
			}
		}
	}
	T_EQ_INT(total, 19608);
	/* paths from queued: 1 (empty) + 2 + 3 + 3+... counted by hand:
	 * len0 1; len1 2 (intent, rejected); len2 3; len3 3; len4 2; len5 0 */
	T_EQ_INT(accepted, 11);
}

T_TEST(t_replay_examples)
{
	enum task_event ok[] = { TASK_EV_INTENT, TASK_EV_POSTED, TASK_EV_RUNNING, TASK_EV_SUCCEEDED };
	enum task_event rb[] = { TASK_EV_INTENT, TASK_EV_ROLLED_BACK };
	enum task_event again[] = { TASK_EV_INTENT, TASK_EV_POSTED, TASK_EV_RUNNING, TASK_EV_RUNNING };
	enum task_event weird[] = { TASK_EV_INTENT, (enum task_event)(100 + TASK_SUCCEEDED) };
	enum task_state s = TASK_QUEUED;
	size_t bad = 0;

	T_OK(task_replay(NULL, 0, &s));
	T_EQ_INT(s, TASK_QUEUED);
	T_OK(task_replay(ok, 4, &s));
	T_EQ_INT(s, TASK_SUCCEEDED);
	T_OK(task_replay(ok, 3, &s));
	T_EQ_INT(s, TASK_RUNNING);
	T_OK(task_replay(rb, 2, &s));
	T_EQ_INT(s, TASK_ROLLED_BACK);
	s = TASK_QUEUED;
	T_ERR(task_replay_at(again, 4, &s, &bad), FH_ERR_TASK_EVENT);
	T_EQ_INT(bad, 3);
	T_EQ_INT(s, TASK_QUEUED);
	/* a start marker smuggled into a history is not a jump */
	T_ERR(task_replay_at(weird, 2, &s, &bad), FH_ERR_TASK_EVENT);
	T_EQ_INT(bad, 1);
	T_ERR(task_replay(NULL, 1, &s), FH_ERR_INVAL);
	T_ERR(task_replay(ok, 1, NULL), FH_ERR_INVAL);
}

int main(void)
{
	T_RUN(t_every_pair);
	T_RUN(t_terminal_absorbs_nothing);
	T_RUN(t_out_of_enum);
	T_RUN(t_names);
	T_RUN(t_outcome_parse);
	T_RUN(t_replay_all_histories);
	T_RUN(t_replay_examples);
	return t_done();
}
