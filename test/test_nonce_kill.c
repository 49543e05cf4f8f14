/* test_nonce_kill.c — durability of nonce_record_durable across SIGKILL.
 *
 * The test binary re-executes itself (/proc/self/exe --child DIR ROUND
 * THREADS) as a writer: it opens the store and records fresh nonces in a
 * loop from THREADS threads, writing each nonce as one line to stdout (a
 * pipe) only AFTER nonce_record_durable returned 0. The parent kills it
 * with SIGKILL at a random moment 5-50 ms after its first report, then
 * reopens the store and asserts that every reported nonce is present:
 * nonce_seen says seen and recording it again is a replay. Each line is
 * one write() under PIPE_BUF, so lines from several threads never mix.
 * The random seed is printed; FH_KILL_SEED=N reproduces a run.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "nonce.h"
#include "store.h"

#define MAX_REPORTED 2000000   /* cap on nonces kept by the parent */
#define FIRST_REPORT_MS 20000  /* a child must report within this */

/* ------------------------------------------------------------ the child */

struct child_arg {
	struct store *st;
	int round, id;
};

static void *child_thread(void *p)
{
	const struct child_arg *a = p;
	char line[96];
	unsigned long i;

	for (i = 0;; i++) {
		int n = snprintf(line, sizeof line, "k%d-t%d-%lu", a->round, a->id, i);
		int r = nonce_record_durable(a->st, line, 4000000000LL);

		if (r != 0) {
			fprintf(stderr, "child: nonce_record_durable(%s): %s\n", line, fh_strerror(r));
			_exit(3);
		}
		line[n++] = '\n';
		if (write(1, line, (size_t)n) != (ssize_t)n)
			_exit(4);
	}
	return NULL;
}

static int child_main(const char *dir, int round, int threads)
{
	struct store_opts o = { dir, 64 << 10, (size_t)256 << 20 };
	struct child_arg args[16];
	pthread_t th[16];
	struct store *st = NULL;
	int i, r;

	if (threads < 1 || threads > 16)
		return 2;
	r = store_open(&o, &st);
	if (r) {
		fprintf(stderr, "child: store_open: %s\n", fh_strerror(r));
		return 2;
	}
	for (i = 0; i < threads; i++) {
		args[i].st = st;
		args[i].round = round;
		args[i].id = i;
		if (pthread_create(&th[i], NULL, child_thread, &args[i]) != 0)
			return 2;
	}
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	return 0;   /* not reached: the threads run until killed */
}

/* ----------------------------------------------------------- the parent */

static char g_dir[300];
static char g_self[4096];
static char **g_nonces;
static size_t g_n;
static uint64_t g_rng;

static uint64_t rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends the complete lines in buf[0..*len) to g_nonces and keeps the
 * unfinished tail. */
static void take_lines(char *buf, size_t *len, size_t *count)
{
	char *p = buf, *nl;

	while ((nl = memchr(p, '\n', (size_t)(buf + *len - p))) != NULL) {
		*nl = '\0';
		if (g_n < MAX_REPORTED && (g_nonces[g_n] = strdup(p)) != NULL) {
			g_n++;
			(*count)++;
		}
		p = nl + 1;
	}
	*len = (size_t)(buf + *len - p);
	memmove(buf, p, *len);
}

/* Reads what is there until deadline (ms, monotonic) or EOF; 1 on EOF. */
static int pump(int fd, char *buf, size_t cap, size_t *len, size_t *count, long long deadline,
                bool until_first)
{
	size_t before = *count;

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (until_first && *count > before)
			return 0;
		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		*len += (size_t)n;
		take_lines(buf, len, count);
		if (*len == cap)   /* a line longer than any nonce: give up on it */
			*len = 0;
	}
}

/* One round: start a writer with `threads` threads, kill it 5-50 ms after
 * its first durable report, check what it reported. */
static void one_round(int round, int threads)
{
	char rs[16], ts[16], buf[8192];
	const char *argv[] = { g_self, "--child", g_dir, rs, ts, NULL };
	posix_spawn_file_actions_t fa;
	size_t len = 0, count = 0, first = g_n, i;
	struct store_opts o = { g_dir, 0, 0 };
	struct store *st = NULL;
	int p[2], stt = 0, missing = 0, not_replay = 0;
	long delay;
	pid_t pid;

	snprintf(rs, sizeof rs, "%d", round);
	snprintf(ts, sizeof ts, "%d", threads);
	if (pipe2(p, O_CLOEXEC) != 0) {
		T_CHECK(!"pipe2");
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (posix_spawn(&pid, g_self, &fa, NULL, (char *const *)(uintptr_t)argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		T_CHECK(!"posix_spawn");
		close(p[0]);
		close(p[1]);
		return;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);

	/* the kill moment is counted from the first durable report */
	pump(p[0], buf, sizeof buf, &len, &count, now_ms() + FIRST_REPORT_MS, true);
	T_CHECK(count > 0);
	delay = 5 + (long)(rnd() % 46);
	pump(p[0], buf, sizeof buf, &len, &count, now_ms() + delay, false);
	kill(pid, SIGKILL);
	pump(p[0], buf, sizeof buf, &len, &count, now_ms() + FIRST_REPORT_MS, false);
	close(p[0]);
	T_CHECK(waitpid(pid, &stt, 0) == pid);
	/* it was still writing when killed (not dead of an error) */
	T_CHECK(WIFSIGNALED(stt) && WTERMSIG(stt) == SIGKILL);

	T_OK(store_open(&o, &st));
	if (!st)
		return;
	for (i = first; i < g_n; i++) {
		bool s = false;

		if (nonce_seen(st, g_nonces[i], &s) != 0 || !s)
			missing++;
		if (nonce_record_durable(st, g_nonces[i], 4000000000LL) != FH_ERR_SIG_REPLAY)
			not_replay++;
	}
	store_close(st);
	T_EQ_INT(missing, 0);
	T_EQ_INT(not_replay, 0);
	printf("  round %2d: %d thread(s), killed %3ld ms after the first report, %zu reported, all present\n",
	       round, threads, delay, count);
	fflush(stdout);
}

static int g_round;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rounds(int n, int threads)
{
	int i;

	for (i = 0; i < n; i++)
		one_round(g_round++, threads);
}

T_TEST(t_kill_single_writer)
{
	rounds(15, 1);
}

T_TEST(t_kill_concurrent_writers)
{
	rounds(8, 4);
	rounds(7, 8);
}

/* Everything reported in any round is still there after all the kills,
 * and the store still takes new nonces. */
T_TEST(t_all_rounds_present)
{
	struct store_opts o = { g_dir, 0, 0 };
	struct store *st = NULL;
	size_t i;
	int missing = 0;

	T_CHECK(g_n > 0);
	T_OK(store_open(&o, &st));
	if (!st)
		return;
	for (i = 0; i < g_n; i++) {
		bool s = false;

		if (nonce_seen(st, g_nonces[i], &s) != 0 || !s)
			missing++;
	}
	T_EQ_INT(missing, 0);
	T_OK(nonce_record_durable(st, "after-all-kills", 1));
	T_CHECK(g_n > 0 && nonce_record_durable(st, g_nonces[g_n - 1], 1) == FH_ERR_SIG_REPLAY);
	store_close(st);
	printf("  %zu nonces reported over %d kills, 0 missing\n", g_n, g_round);
}

int main(int argc, char **argv)
{
	const char *seed = getenv("FH_KILL_SEED");
	char base[256];
	ssize_t n;
	size_t i;

	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2], atoi(argv[3]), atoi(argv[4]));

	n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
	if (n <= 0) {
		fprintf(stderr, "readlink /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	g_self[n] = '\0';
	g_rng = seed ? strtoull(seed, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	if (!g_rng)
		g_rng = 1;
	printf("# seed %llu\n", (unsigned long long)g_rng);
	g_nonces = calloc(MAX_REPORTED, sizeof *g_nonces);
	if (!g_nonces)
		return 1;
	t_tmpdir(base, sizeof base);
	snprintf(g_dir, sizeof g_dir, "%s/state/db", base);

	T_RUN(t_kill_single_writer);
	T_RUN(t_kill_concurrent_writers);
	T_RUN(t_all_rounds_present);
	for (i = 0; i < g_n; i++)
		free(g_nonces[i]);
	free(g_nonces);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
