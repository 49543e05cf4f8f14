/* proc.h — run one program with a fixed argv, bounded in time and output.
 *
 * The one place that starts processes: the privileged backend (priv.h)
 * and the collector's read-only probes (report.h) both run through it. No
 * shell ever: path is executed directly with exactly argv and envp.
 *
 * The child gets stdin from /dev/null, stdout and stderr on pipes, every
 * other descriptor closed, working directory "/", default signal
 * dispositions, an empty signal mask, and its own process group. Both
 * pipes are read concurrently (no deadlock on large output). On timeout or
 * an output cap the whole process group is killed; the child is always
 * reaped before proc_run returns.
 *
 * Callers must not set SIGCHLD to SIG_IGN nor reap children with
 * waitpid(-1, ...): the child could then not be reaped here (FH_ERR_IO).
 */
#ifndef FH_PROC_H
#define FH_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define PROC_TAIL_MAX 511       /* stderr bytes kept (the last ones) */
#define PROC_MAX_ARGS 128

struct proc_opts {
	long timeout_ms;        /* the whole run, > 0 */
	size_t max_output;      /* stdout cap; one byte more is FH_ERR_TOOBIG */
};

struct proc_result {
	int status;             /* exit code, 128+signal if killed; -1 if not reaped */
	bool signaled;
	char stderr_tail[PROC_TAIL_MAX + 1];   /* control bytes but '\n' shown as '?' */
};

/* Runs path (absolute) with argv (argv[0] included, NULL-terminated) and
 * envp. out (may be NULL: stdout discarded) receives stdout only on a
 * normal exit, whatever the code; judging the code is the caller's.
 * Errors: FH_ERR_INVAL (bad arguments), FH_ERR_SPAWN (could not start),
 * FH_ERR_TIMEOUT, FH_ERR_TOOBIG (stdout over max_output, or over out's own
 * cap), FH_ERR_IO, FH_ERR_NOMEM. res (may be NULL) is filled on every
 * return. */
int proc_run(const char *path, const char *const argv[], const char *const envp[], const struct proc_opts *o,
	     struct buf *out, struct proc_result *res);

#endif
