/* proc.c — bounded fixed-argv process runs; see proc.h. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define PROC_POLL_SLICE_MS 100  /* longest sleep between child-exit checks */
#define PROC_IDLE_SLICE_MS 10   /* same, once both pipes are closed */

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define PROC_HAVE_CLOSEFROM 1
#endif

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One mutable block holding a char *[] and its strings, so posix_spawn
 * gets what it wants without casting const away. Caller frees. */
static char **copy_vec(const char *const v[])
{
	size_t count = 0, bytes = 0, i;
	char **vec;
	char *w;

	for (i = 0; v[i]; i++) {
		if (i >= PROC_MAX_ARGS)
			return NULL;
		count++;
		bytes += strlen(v[i]) + 1;
	}
	vec = malloc((count + 1) * sizeof *vec + bytes);
	if (!vec)
		return NULL;
	w = (char *)(vec + count + 1);
	for (i = 0; i < count; i++) {
		size_t n = strlen(v[i]) + 1;
		memcpy(w, v[i], n);
		vec[i] = w;
		w += n;
	}
	vec[count] = NULL;
	return vec;
}

/* Moves *fd above 0-2 so the child's dup2 onto stdio cannot clobber it. */
static int fd_above_stdio(int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return FH_ERR_IO;
	close(*fd);
	*fd = nfd;
	return 0;
}

static int spawn_child(const char *path, char *const argv[], char *const envp[], int out_w, int err_w,
		       pid_t *pid_out)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	bool fa_ok = false, at_ok = false;
	pid_t pid;
	int r = FH_ERR_SPAWN;

	if (posix_spawn_file_actions_init(&fa) != 0)
		goto out;
	fa_ok = true;
	if (posix_spawnattr_init(&at) != 0)
		goto out;
	at_ok = true;
	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out_w, 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, err_w, 2) != 0)
		goto out;
#ifdef PROC_HAVE_CLOSEFROM
	/* Descriptors another thread opened without O_CLOEXEC stay out too. */
	if (posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
	    posix_spawn_file_actions_addchdir_np(&fa, "/") != 0)
		goto out;
#endif
	if (posix_spawnattr_setflags(&at, (short)(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						  POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    posix_spawnattr_setpgroup(&at, 0) != 0 || posix_spawnattr_setsigmask(&at, &none) != 0 ||
	    posix_spawnattr_setsigdefault(&at, &all) != 0)
		goto out;
	if (posix_spawn(&pid, path, &fa, &at, argv, envp) != 0)
		goto out;
	*pid_out = pid;
	r = 0;
out:
	if (at_ok)
		posix_spawnattr_destroy(&at);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	return r;
}

/* What the pipes have delivered so far. */
struct sink {
	struct pollfd fds[2];   /* [0] stdout, [1] stderr; fd -1 once at EOF */
	bool collect;           /* keep stdout (else discard) */
	struct buf col;         /* stdout, capped */
	char tail[PROC_TAIL_MAX];
	size_t tail_len;
};

static void tail_add(struct sink *sk, const char *d, size_t n)
{
	if (n >= PROC_TAIL_MAX) {
		memcpy(sk->tail, d + n - PROC_TAIL_MAX, PROC_TAIL_MAX);
		sk->tail_len = PROC_TAIL_MAX;
		return;
	}
	if (sk->tail_len + n > PROC_TAIL_MAX) {
		size_t drop = sk->tail_len + n - PROC_TAIL_MAX;
		memmove(sk->tail, sk->tail + drop, sk->tail_len - drop);
		sk->tail_len -= drop;
	}
	memcpy(sk->tail + sk->tail_len, d, n);
	sk->tail_len += n;
}

/* One read from pipe i if poll said it is ready. 0, or FH_ERR_TOOBIG,
 * FH_ERR_NOMEM, FH_ERR_IO, each of which ends the run. */
static int sink_read(struct sink *sk, int i)
{
	char chunk[16384];
	ssize_t n;

	if (sk->fds[i].fd < 0 || !sk->fds[i].revents)
		return 0;
	if (sk->fds[i].revents & POLLNVAL)
		return FH_ERR_IO;
	n = read(sk->fds[i].fd, chunk, sizeof chunk);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : FH_ERR_IO;
	if (n == 0) {
		close(sk->fds[i].fd);
		sk->fds[i].fd = -1;
		return 0;
	}
	if (i == 1) {
		tail_add(sk, chunk, (size_t)n);
		return 0;
	}
	return sk->collect ? buf_append(&sk->col, chunk, (size_t)n) : 0;
}

/* Reads both pipes until the child has exited and what it wrote is read,
 * or until the deadline (FH_ERR_TIMEOUT) or a cap or error ends the run.
 * Whatever ends it, the child is reaped before returning and its wait
 * status is in *status (*reaped false only if waitpid itself failed). */
static int pump(struct sink *sk, pid_t pid, long long deadline, int *status, bool *reaped)
{
	bool got = false;
	int r = 0, st = 0, i;

	for (;;) {
		long long left = deadline - now_ms();
		bool open_fds = sk->fds[0].fd >= 0 || sk->fds[1].fd >= 0;
		int slice, n;

		if (got && !open_fds)
			break;
		if (left <= 0) {
			/* Once the child is gone, only a grandchild that keeps
			 * writing gets here; what the child said stands. */
			if (!got)
				r = FH_ERR_TIMEOUT;
			break;
		}
		if (got)
			slice = 0; /* drain only what is already there */
		else
			slice = (int)(left < PROC_POLL_SLICE_MS ? left : PROC_POLL_SLICE_MS);
		if (!got && !open_fds && slice > PROC_IDLE_SLICE_MS)
			slice = PROC_IDLE_SLICE_MS;
		n = poll(sk->fds, 2, slice);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = FH_ERR_IO;
			break;
		}
		if (n == 0 && got)
			break; /* a grandchild holds a pipe open: stop reading */
		for (i = 0; i < 2 && r == 0; i++)
			r = sink_read(sk, i);
		if (r != 0)
			break;
		if (!got) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid) {
				got = true;
			} else if (w < 0 && errno != EINTR) {
				r = FH_ERR_IO;
				break;
			}
		}
	}
	if (!got) {
		/* The group is ours until the leader is reaped, so this reaches
		 * the child and anything it started, never a stranger. */
		kill(-pid, SIGKILL);
		for (;;) {
			pid_t w = waitpid(pid, &st, 0);
			if (w == pid) {
				got = true;
				break;
			}
			if (w < 0 && errno != EINTR)
				break;
		}
	}
	*status = st;
	*reaped = got;
	return r;
}

int proc_run(const char *path, const char *const argv[], const char *const envp[], const struct proc_opts *o,
	     struct buf *out, struct proc_result *res)
{
	char **av = NULL, **ev = NULL;
	struct sink sk;
	int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	pid_t pid = -1;
	int r = FH_ERR_INTERNAL, st = 0;
	bool reaped = false;
	long long deadline;
	size_t i;

	memset(&sk, 0, sizeof sk);
	sk.fds[0].fd = sk.fds[1].fd = -1;
	buf_init(&sk.col, o ? o->max_output : 0);
	if (res) {
		res->status = -1;
		res->signaled = false;
		res->stderr_tail[0] = '\0';
	}
	if (!path || path[0] != '/' || !argv || !argv[0] || !envp || !o || o->timeout_ms <= 0) {
		r = FH_ERR_INVAL;
		goto out;
	}
	av = copy_vec(argv);
	ev = copy_vec(envp);
	if (!av || !ev) {
		r = FH_ERR_INVAL;   /* too many elements, or out of memory */
		goto out;
	}
	if (pipe2(out_p, O_CLOEXEC) != 0 || fd_above_stdio(&out_p[0]) != 0 || fd_above_stdio(&out_p[1]) != 0 ||
	    pipe2(err_p, O_CLOEXEC) != 0 || fd_above_stdio(&err_p[0]) != 0 || fd_above_stdio(&err_p[1]) != 0) {
		r = FH_ERR_IO;
		goto out;
	}
	deadline = now_ms() + o->timeout_ms;
	r = spawn_child(path, av, ev, out_p[1], err_p[1], &pid);
	if (r != 0)
		goto out;
	close(out_p[1]);
	close(err_p[1]);
	out_p[1] = err_p[1] = -1;
	sk.collect = out != NULL;
	sk.fds[0].fd = out_p[0];
	sk.fds[1].fd = err_p[0];
	sk.fds[0].events = sk.fds[1].events = POLLIN;
	out_p[0] = err_p[0] = -1; /* owned by sk now */
	r = pump(&sk, pid, deadline, &st, &reaped);
	if (!reaped) {
		if (r == 0)
			r = FH_ERR_IO;
		goto out;
	}
	if (res) {
		res->signaled = WIFSIGNALED(st);
		res->status = res->signaled ? 128 + WTERMSIG(st) : WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	}
	if (r != 0)
		goto out;
	if (out && sk.col.len)
		r = buf_append(out, sk.col.data, sk.col.len);
out:
	if (res) {
		for (i = 0; i < sk.tail_len; i++) {
			unsigned char c = (unsigned char)sk.tail[i];
			res->stderr_tail[i] = (c < 0x20 && c != '\n') || c == 0x7f ? '?' : (char)c;
		}
		res->stderr_tail[sk.tail_len] = '\0';
	}
	for (i = 0; i < 2; i++) {
		if (sk.fds[i].fd >= 0)
			close(sk.fds[i].fd);
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
	}
	buf_free(&sk.col);
	free(av);
	free(ev);
	return r;
}
