/* bench_store.c — durable nonce commits against the disk's flush rate.
 * Prints figures, never fails.
 *
 *  1. raw: append 48 bytes + fdatasync in a loop, on the same filesystem
 *     (the physical floor of one flush per op);
 *  2. nonce_record_durable from one thread: one LMDB commit per op, each
 *     synced (LMDB flushes data, then writes the meta page O_DSYNC);
 *  3. nonce_record_durable from 1/2/4/8/16 threads: group commit shares one
 *     commit among the callers queued while the previous one was syncing,
 *     so ops/s rises past commits/s while every op is still durable before
 *     its call returns.
 * Each figure runs for FH_BENCH_SECONDS (default 1) in a fresh store under
 * $TMPDIR (or /tmp).
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "nonce.h"
#include "store.h"

static double g_secs = 1.0;
static char g_base[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double raw_fdatasync(void)
{
	char path[300], rec[48];
	double t0, el;
	long n = 0;
	int fd;

	snprintf(path, sizeof path, "%s/raw.log", g_base);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	memset(rec, 'r', sizeof rec);
	t0 = now_s();
	do {
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec || fdatasync(fd) != 0)
			break;
		n++;
	} while ((el = now_s() - t0) < g_secs);
	el = now_s() - t0;
	close(fd);
	unlink(path);
	return (double)n / el;
}

struct worker {
	struct store *st;
	int id;
	atomic_int *stop;
	long ops, errors;
};

static void *work(void *p)
{
	struct worker *w = p;
	char nonce[64];

	while (!atomic_load(w->stop)) {
		snprintf(nonce, sizeof nonce, "bench-%d-%ld", w->id, w->ops + w->errors);
		if (nonce_record_durable(w->st, nonce, 2000000000LL) == 0)
			w->ops++;
		else
			w->errors++;
	}
	return NULL;
}

/* Runs `threads` writers for g_secs in a fresh store; ops/s and commits/s. */
static int run(int threads, double *ops_s, double *commits_s, long *errors)
{
	char dir[300];
	struct store_opts o = { dir, 0, 0 };
	struct store *st = NULL;
	struct store_stats s0, s1;
	struct worker w[16];
	pthread_t th[16];
	atomic_int stop = 0;
	double t0, el;
	long ops = 0;
	int i, r;

	static int runs;

	snprintf(dir, sizeof dir, "%s/db-%d", g_base, runs++);
	r = store_open(&o, &st);
	if (r)
		return r;
	store_get_stats(st, &s0);
	t0 = now_s();
	for (i = 0; i < threads; i++) {
		w[i].st = st;
		w[i].id = i;
		w[i].stop = &stop;
		w[i].ops = w[i].errors = 0;
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	while (now_s() - t0 < g_secs)
		usleep(10000);
	atomic_store(&stop, 1);
	*errors = 0;
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		ops += w[i].ops;
		*errors += w[i].errors;
	}
	el = now_s() - t0;
	store_get_stats(st, &s1);
	store_close(st);
	*ops_s = (double)ops / el;
	*commits_s = (double)(s1.commits - s0.commits) / el;
	return 0;
}

int main(void)
{
	static const int nthreads[] = { 1, 2, 4, 8, 16 };
	const char *e = getenv("FH_BENCH_SECONDS");
	double raw, ops, commits, single = 0;
	long errors;
	size_t i;

	if (e && atof(e) > 0)
		g_secs = atof(e);
	t_tmpdir(g_base, sizeof g_base);
	printf("filesystem of %s, %.1f s per figure\n", g_base, g_secs);

	raw = raw_fdatasync();
	printf("raw append 48 B + fdatasync:          %8.0f flushes/s\n", raw);
	if (run(1, &ops, &commits, &errors) == 0) {
		single = ops;
		printf("nonce_record_durable, 1 thread:       %8.0f commits/s  (%.2f x raw; LMDB syncs data, then the meta page)\n",
		       ops, raw > 0 ? ops / raw : 0.0);
	}
	printf("\ngroup commit (every success durable before it is reported):\n");
	printf("%8s %12s %12s %12s %10s %8s\n", "threads", "ops/s", "commits/s", "ops/commit", "x 1-thread", "errors");
	for (i = 0; i < sizeof nthreads / sizeof nthreads[0]; i++) {
		if (run(nthreads[i], &ops, &commits, &errors) != 0) {
			printf("%8d   store_open failed\n", nthreads[i]);
			continue;
		}
		printf("%8d %12.0f %12.0f %12.2f %10.2f %8ld\n", nthreads[i], ops, commits,
		       commits > 0 ? ops / commits : 0.0, single > 0 ? ops / single : 0.0, errors);
		fflush(stdout);
	}
	nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
