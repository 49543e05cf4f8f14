/* test_store.c — the LMDB store (store.h) and the nonce set (nonce.h) on
 * real files in a private temp directory: layout and modes, sticky errors,
 * map growth from a tiny map, the growth cap and recovery by pruning,
 * replay detection inside caller transactions and across reopen, bounded
 * ordered pruning, fail-safe answers on a corrupt data file, a failing
 * write (RLIMIT_FSIZE), unreadable files and a read-only directory, use
 * after fork, a map grown by another process, and group commit from
 * concurrent threads. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "nonce.h"
#include "store.h"

/* ------------------------------------------------------------- fixtures */

static char g_base[256];   /* everything this test writes; removed at the end */

/* A fresh private directory g_base/tN. */
static void fresh_base(char *out, size_t outlen)
{
	static int n;

	snprintf(out, outlen, "%s/t%d", g_base, n++);
	if (mkdir(out, 0700) != 0)
		t_failf(__FILE__, __LINE__, "mkdir %s: %s", out, strerror(errno));
}

/* A fresh store directory path (not yet created) under a fresh base. */
static void fresh_dir(char *out, size_t outlen)
{
	char base[280];

	fresh_base(base, sizeof base);
	snprintf(out, outlen, "%s/state/db", base);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct store *open_at(const char *dir, size_t map_size, size_t map_max)
{
	struct store_opts o = { dir, map_size, map_max };
	struct store *st = NULL;

	T_OK(store_open(&o, &st));
	return st;
}

static bool seen(struct store *st, const char *nonce)
{
	bool s = false;
	int r = nonce_seen(st, nonce, &s);

	if (r)
		t_failf(__FILE__, __LINE__, "nonce_seen(%s) returned %s", nonce, t_errname(r));
	return s;
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return (mode_t)-1;
	return sb.st_mode & 07777;
}

/* Records count nonces "PREFIX-i" (expiry exp0 + i) in caller transactions
 * of per_txn each; returns how many were committed (stops at the first
 * failed commit, whose code goes to *err). */
static int record_many(struct store *st, const char *prefix, int count, int per_txn, int64_t exp0,
                       int *err)
{
	char nonce[64];
	int i = 0, done = 0, r = 0;

	while (i < count) {
		struct store_txn *t = NULL;
		int j, start = i;

		r = store_txn_begin(st, true, &t);
		if (r)
			break;
		for (j = 0; j < per_txn && i < count; j++, i++) {
			snprintf(nonce, sizeof nonce, "%s-%d", prefix, i);
			r = nonce_record(t, nonce, exp0 + i);
			if (r)
				break;
		}
		if (r) {
			store_txn_abort(t);
			break;
		}
		r = store_txn_commit(t);
		if (r)
			break;
		done += i - start;
	}
	if (err)
		*err = r;
	return done;
}

/* --------------------------------------------------------------- layout */

/* Open descriptors on files in dir: all of them, or only those without
 * FD_CLOEXEC. */
static int store_fds(const char *dir, bool only_leaky)
{
	char p[64], l[512], real[PATH_MAX];
	DIR *d;
	struct dirent *e;
	size_t dl;
	int n = 0;

	if (!realpath(dir, real))
		return -1;
	dl = strlen(real);
	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		ssize_t m;

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		m = readlink(p, l, sizeof l - 1);
		if (m <= 0)
			continue;
		l[m] = '\0';
		if (strncmp(l, real, dl) != 0 || l[dl] != '/')
			continue;
		if (!only_leaky || !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			n++;
	}
	closedir(d);
	return n;
}

T_TEST(t_open_layout)
{
	char dir[300], path[400];
	struct store_opts o = { NULL, 0, 0 };
	struct store *st = NULL, *st2 = NULL;
	struct store_stats s;

	fresh_dir(dir, sizeof dir);
	T_ERR(store_open(&o, &st), FH_ERR_INVAL);
	o.dir = dir;
	o.map_size = 1024;
	T_ERR(store_open(&o, &st), FH_ERR_INVAL);
	o.map_size = (size_t)8 << 20;
	o.map_max = (size_t)4 << 20;
	T_ERR(store_open(&o, &st), FH_ERR_INVAL);
	T_CHECK(st == NULL);

	st = open_at(dir, 0, 0);
	T_CHECK(st != NULL);
	if (!st)
		return;
	store_get_stats(st, &s);
	T_EQ_INT(s.map_size, STORE_MAP_DEFAULT);
	/* STATE/db and STATE both created 0700, the files 0600 */
	T_EQ_INT(mode_of(dir), 0700);
	snprintf(path, sizeof path, "%s/..", dir);
	T_EQ_INT(mode_of(path), 0700);
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	T_EQ_INT(mode_of(path), 0600);
	snprintf(path, sizeof path, "%s/lock.mdb", dir);
	T_EQ_INT(mode_of(path), 0600);

	/* no descriptor of the store survives exec */
	T_EQ_INT(store_fds(dir, false), 3);   /* lock.mdb, data.mdb, its O_DSYNC twin */
	T_EQ_INT(store_fds(dir, true), 0);

	/* the same environment twice in one process is refused */
	o.dir = dir;
	o.map_size = 0;
	o.map_max = 0;
	T_ERR(store_open(&o, &st2), FH_ERR_STORE);
	snprintf(path, sizeof path, "%s/../db/", dir);   /* same dir, other spelling */
	o.dir = path;
	T_ERR(store_open(&o, &st2), FH_ERR_STORE);
	T_CHECK(st2 == NULL);
	store_close(st);
	st = open_at(dir, 0, 0);   /* free again after close */
	store_close(st);
	store_close(NULL);
}

/* --------------------------------------------------------------- sticky */

T_TEST(t_sticky_error)
{
	char dir[300];
	struct store *st;
	struct store_txn *t = NULL;
	const void *v, *k;
	size_t vl, kl;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 0, 0);
	if (!st)
		return;

	/* NOT_FOUND is an answer, not a failure */
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(store_get(t, STORE_DB_NONCE, "k1", 2, &v, &vl), FH_ERR_NOT_FOUND);
	T_ERR(store_del(t, STORE_DB_NONCE, "k1", 2), FH_ERR_NOT_FOUND);
	T_ERR(store_first(t, STORE_DB_NONCE, &k, &kl, &v, &vl), FH_ERR_NOT_FOUND);
	T_EQ_INT(store_txn_err(t), 0);
	T_OK(store_put(t, STORE_DB_NONCE, "k1", 2, "v1", 2));
	T_OK(store_get(t, STORE_DB_NONCE, "k1", 2, &v, &vl));
	T_CHECK(vl == 2 && memcmp(v, "v1", 2) == 0);
	T_CHECK(store_txn_store(t) == st);
	T_OK(store_txn_commit(t));

	/* the first failure sticks: later calls do nothing, commit aborts */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(store_put(t, STORE_DB_NONCE, "k2", 2, "v2", 2));
	T_ERR(store_put(t, STORE_DB_NONCE, "", 0, "x", 1), FH_ERR_INVAL);
	T_EQ_INT(store_txn_err(t), FH_ERR_INVAL);
	T_ERR(store_put(t, STORE_DB_NONCE, "k3", 2, "v3", 2), FH_ERR_INVAL);
	T_ERR(store_get(t, STORE_DB_NONCE, "k1", 2, &v, &vl), FH_ERR_INVAL);
	T_ERR(store_del(t, STORE_DB_NONCE, "k1", 2), FH_ERR_INVAL);
	T_ERR(nonce_record(t, "n-sticky", 100), FH_ERR_INVAL);
	T_ERR(store_txn_commit(t), FH_ERR_INVAL);

	T_OK(store_txn_begin(st, false, &t));
	T_OK(store_get(t, STORE_DB_NONCE, "k1", 2, &v, &vl));
	T_ERR(store_get(t, STORE_DB_NONCE, "k2", 2, &v, &vl), FH_ERR_NOT_FOUND);
	T_ERR(store_get(t, STORE_DB_NONCE, "k3", 2, &v, &vl), FH_ERR_NOT_FOUND);
	/* writing in a read transaction is a (sticky) misuse */
	T_ERR(store_put(t, STORE_DB_NONCE, "k4", 2, "v", 1), FH_ERR_INVAL);
	T_ERR(store_get(t, STORE_DB_NONCE, "k1", 2, &v, &vl), FH_ERR_INVAL);
	T_ERR(store_txn_commit(t), FH_ERR_INVAL);
	T_CHECK(!seen(st, "n-sticky"));

	/* an oversized value and key */
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(store_put(t, STORE_DB_NONCE, "k5", 2, "v", STORE_VAL_MAX + 1), FH_ERR_INVAL);
	store_txn_abort(t);
	T_OK(store_txn_begin(st, true, &t));
	{
		static char bigkey[STORE_KEY_MAX + 1];
		memset(bigkey, 'k', sizeof bigkey);
		T_ERR(store_put(t, STORE_DB_NONCE, bigkey, sizeof bigkey, "v", 1), FH_ERR_INVAL);
	}
	T_ERR(store_txn_commit(t), FH_ERR_INVAL);
	T_ERR(store_txn_commit(NULL), FH_ERR_INVAL);
	store_txn_abort(NULL);
	store_close(st);
}

/* --------------------------------------------------------------- replay */

T_TEST(t_replay)
{
	char dir[300], n128[NONCE_MAX + 1], n129[NONCE_MAX + 2];
	struct store *st;
	struct store_txn *t = NULL;
	bool s = false;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 0, 0);
	if (!st)
		return;
	memset(n128, 'a', NONCE_MAX);
	n128[NONCE_MAX] = '\0';
	memset(n129, 'b', NONCE_MAX + 1);
	n129[NONCE_MAX + 1] = '\0';

	/* bad input is refused, and nonce_seen fails safe on it */
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(nonce_record(t, "", 100), FH_ERR_INVAL);
	T_ERR(nonce_record(t, NULL, 100), FH_ERR_INVAL);
	T_ERR(nonce_record(t, n129, 100), FH_ERR_INVAL);
	T_ERR(nonce_record(t, "neg", -1), FH_ERR_INVAL);
	T_ERR(nonce_record(NULL, "x", 1), FH_ERR_INVAL);
	T_ERR(nonce_seen(st, n129, &s), FH_ERR_INVAL);
	T_CHECK(s);
	T_ERR(nonce_record_durable(st, "", 100), FH_ERR_INVAL);

	/* inside a caller transaction; a replay does not poison it */
	T_OK(nonce_record(t, "n-1", 1000));
	T_OK(nonce_record(t, n128, 1000));
	T_ERR(nonce_record(t, "n-1", 2000), FH_ERR_SIG_REPLAY);
	T_EQ_INT(store_txn_err(t), 0);
	/* not visible outside before commit, and abort leaves nothing */
	T_CHECK(!seen(st, "n-1"));
	store_txn_abort(t);
	T_CHECK(!seen(st, "n-1"));
	T_CHECK(!seen(st, n128));

	/* commit makes it permanent */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(nonce_record(t, "n-1", 1000));
	T_OK(nonce_record(t, n128, 1000));
	T_OK(store_txn_commit(t));
	T_CHECK(seen(st, "n-1"));
	T_CHECK(seen(st, n128));
	T_CHECK(!seen(st, "n-2"));
	T_ERR(nonce_record_durable(st, "n-1", 5000), FH_ERR_SIG_REPLAY);
	T_OK(nonce_record_durable(st, "n-2", 5000));
	T_ERR(nonce_record_durable(st, "n-2", 5000), FH_ERR_SIG_REPLAY);

	/* reopen keeps it */
	store_close(st);
	st = open_at(dir, 0, 0);
	if (!st)
		return;
	T_CHECK(seen(st, "n-1"));
	T_CHECK(seen(st, "n-2"));
	T_CHECK(seen(st, n128));
	T_CHECK(!seen(st, "n-3"));
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(nonce_record(t, "n-1", 1000), FH_ERR_SIG_REPLAY);
	T_ERR(nonce_record(t, "n-2", 1000), FH_ERR_SIG_REPLAY);
	T_OK(store_txn_commit(t));
	store_close(st);
}

/* ---------------------------------------------------------- map growth */

T_TEST(t_map_growth)
{
	char dir[300], nonce[64];
	struct store *st;
	struct store_txn *t = NULL;
	struct store_stats s0, s1;
	int err = 0, i, missing = 0;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 64 << 10, (size_t)64 << 20);
	if (!st)
		return;
	store_get_stats(st, &s0);
	T_EQ_INT(s0.map_size, 64 << 10);

	/* 6000 nonces in transactions of 200: MDB_MAP_FULL inside puts and
	 * commits, each grows the map and replays the transaction */
	T_EQ_INT(record_many(st, "grow", 6000, 200, 1000, &err), 6000);
	T_EQ_INT(err, 0);
	/* and one big transaction of 4000 more */
	T_OK(store_txn_begin(st, true, &t));
	for (i = 0; i < 4000; i++) {
		snprintf(nonce, sizeof nonce, "big-%d", i);
		T_OK(nonce_record(t, nonce, 1000 + i));
	}
	T_OK(store_txn_commit(t));
	store_get_stats(st, &s1);
	T_CHECK(s1.map_grows >= 3);
	T_CHECK(s1.replays >= 3);
	T_CHECK(s1.map_size >= ((size_t)1 << 20));
	T_CHECK(s1.map_size <= ((size_t)64 << 20));
	printf("  map 64 KiB -> %zu KiB in %llu grows, %llu replays\n", s1.map_size >> 10,
	       (unsigned long long)s1.map_grows, (unsigned long long)s1.replays);

	for (i = 0; i < 6000; i++) {
		snprintf(nonce, sizeof nonce, "grow-%d", i);
		missing += !seen(st, nonce);
	}
	for (i = 0; i < 4000; i++) {
		snprintf(nonce, sizeof nonce, "big-%d", i);
		missing += !seen(st, nonce);
	}
	T_EQ_INT(missing, 0);

	/* reopen with the small initial size: the map is grown at open */
	store_close(st);
	st = open_at(dir, 64 << 10, (size_t)64 << 20);
	if (!st)
		return;
	store_get_stats(st, &s1);
	T_CHECK(s1.map_size >= ((size_t)1 << 20));
	T_CHECK(seen(st, "grow-0"));
	T_CHECK(seen(st, "big-3999"));
	T_OK(nonce_record_durable(st, "after-reopen", 5));
	store_close(st);
}

/* ------------------------------------------------------------ full cap */

T_TEST(t_store_full)
{
	char dir[300], nonce[64];
	struct store *st;
	struct store_stats s;
	unsigned pruned = 0;
	int err = 0, done, i, missing = 0;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 64 << 10, 256 << 10);
	if (!st)
		return;
	/* fill until the cap: every committed nonce is kept */
	done = record_many(st, "full", 100000, 50, 1000, &err);
	T_ERR(err, FH_ERR_STORE_FULL);
	T_CHECK(done > 100);
	store_get_stats(st, &s);
	T_EQ_INT(s.map_size, 256 << 10);
	printf("  %d nonces fit in 256 KiB\n", done);

	/* reads still work */
	for (i = 0; i < done; i++) {
		snprintf(nonce, sizeof nonce, "full-%d", i);
		missing += !seen(st, nonce);
	}
	T_EQ_INT(missing, 0);
	T_CHECK(!seen(st, "never"));
	/* a large write still does not fit */
	T_EQ_INT(record_many(st, "more", 2000, 2000, 1, &err), 0);
	T_ERR(err, FH_ERR_STORE_FULL);

	/* pruning the older half works on the full map, in small transactions */
	T_OK(nonce_prune(st, 1000 + done / 2, 16, &pruned));
	T_EQ_INT(pruned, done / 2);
	T_CHECK(!seen(st, "full-0"));
	T_CHECK(seen(st, "full-0") == false);
	snprintf(nonce, sizeof nonce, "full-%d", done / 2);
	T_CHECK(seen(st, nonce));
	snprintf(nonce, sizeof nonce, "full-%d", done - 1);
	T_CHECK(seen(st, nonce));

	/* and further small writes fit again */
	for (i = 0; i < 20; i++) {
		snprintf(nonce, sizeof nonce, "again-%d", i);
		T_OK(nonce_record_durable(st, nonce, 99999));
	}
	T_EQ_INT(record_many(st, "batch", done / 4, 50, 5000, &err), done / 4);
	T_EQ_INT(err, 0);
	T_CHECK(seen(st, "again-19"));
	store_close(st);
}

/* ------------------------------------------------------------- pruning */

static int64_t be64(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return (int64_t)v;
}

T_TEST(t_prune)
{
	char dir[300], nonce[64];
	struct store *st;
	struct store_txn *t = NULL;
	struct store_stats s0, s1;
	unsigned pruned = 99, total = 0;
	int64_t before;
	int i, wrong = 0;
	const void *k, *v;
	size_t kl, vl;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 0, 0);
	if (!st)
		return;
	/* 300 nonces, recorded in a scrambled order; expiry 1000 + (i % 100),
	 * so three nonces share each expiry */
	T_OK(store_txn_begin(st, true, &t));
	for (i = 0; i < 300; i++) {
		int j = (i * 7919) % 300;
		snprintf(nonce, sizeof nonce, "p-%d", j);
		T_OK(nonce_record(t, nonce, 1000 + j % 100));
	}
	T_OK(store_txn_commit(t));

	T_ERR(nonce_prune(st, 2000, 0, &pruned), FH_ERR_INVAL);
	T_OK(nonce_prune(st, 1000, 5, &pruned));   /* nothing is < 1000 */
	T_EQ_INT(pruned, 0);

	/* step the cut-off: each step removes exactly the nonces now expired,
	 * in transactions of at most max_per_txn (commits = pruned/max + 1,
	 * the last one finding nothing more to delete) */
	for (before = 1001; before <= 1090; before += 11) {
		store_get_stats(st, &s0);
		T_OK(nonce_prune(st, before, 7, &pruned));
		store_get_stats(st, &s1);
		T_EQ_INT(s1.commits - s0.commits, pruned / 7 + 1);
		total += pruned;
		T_EQ_INT(total, 3 * (before - 1000));
		/* the index now starts at the cut-off */
		T_OK(store_txn_begin(st, false, &t));
		T_OK(store_first(t, STORE_DB_NONCE_EXP, &k, &kl, &v, &vl));
		T_CHECK(kl > 8);
		T_EQ_INT(be64(k), before);
		store_txn_abort(t);
	}
	for (i = 0; i < 300; i++) {
		bool want = 1000 + i % 100 >= before - 11;
		snprintf(nonce, sizeof nonce, "p-%d", i);
		wrong += seen(st, nonce) != want;
	}
	T_EQ_INT(wrong, 0);
	/* a pruned nonce can be recorded again (its blob has expired anyway) */
	T_OK(nonce_record_durable(st, "p-0", 5000));
	T_OK(nonce_prune(st, INT64_MAX, 1000, &pruned));
	T_EQ_INT(pruned, 300 - total + 1);
	T_OK(store_txn_begin(st, false, &t));
	T_ERR(store_first(t, STORE_DB_NONCE_EXP, &k, &kl, &v, &vl), FH_ERR_NOT_FOUND);
	T_ERR(store_first(t, STORE_DB_NONCE, &k, &kl, &v, &vl), FH_ERR_NOT_FOUND);
	store_txn_abort(t);
	store_close(st);
}

/* ---------------------------------------------------------- fail safe */

/* Zeroes the page-type flags of every page holding marker, as a disk that
 * returned garbage would: LMDB reports MDB_CORRUPTED when it meets one. */
static int corrupt_pages(const char *dir, const char *marker)
{
	char path[400];
	unsigned char *data;
	size_t len, off, psize = (size_t)sysconf(_SC_PAGESIZE);
	int fd, hits = 0;

	snprintf(path, sizeof path, "%s/data.mdb", dir);
	data = (unsigned char *)t_slurp(path, &len);
	if (!data)
		return -1;
	fd = open(path, O_WRONLY);
	for (off = 0; fd >= 0 && off + psize <= len; off += psize) {
		static const unsigned char zero[2];
		if (!memmem(data + off, psize, marker, strlen(marker)))
			continue;
		if (pwrite(fd, zero, 2, (off_t)(off + 10)) == 2)   /* mp_flags */
			hits++;
	}
	if (fd >= 0)
		close(fd);
	free(data);
	return hits;
}

T_TEST(t_failsafe_corrupt)
{
	char dir[300];
	struct store *st;
	struct store_txn *t = NULL;
	bool s = false;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 0, 0);
	if (!st)
		return;
	T_OK(nonce_record_durable(st, "VICTIM-one", 100));
	T_OK(nonce_record_durable(st, "VICTIM-two", 100));
	store_close(st);
	T_CHECK(corrupt_pages(dir, "VICTIM-") >= 2);

	st = open_at(dir, 0, 0);
	if (!st)
		return;
	T_ERR(nonce_seen(st, "VICTIM-one", &s), FH_ERR_STORE);
	T_CHECK(s);
	s = false;
	T_ERR(nonce_seen(st, "unrelated", &s), FH_ERR_STORE);   /* cannot tell: seen */
	T_CHECK(s);
	T_ERR(nonce_record_durable(st, "VICTIM-one", 100), FH_ERR_STORE);
	T_ERR(nonce_record_durable(st, "fresh", 100), FH_ERR_STORE);
	T_OK(store_txn_begin(st, true, &t));
	T_ERR(nonce_record(t, "fresh", 100), FH_ERR_STORE);
	T_ERR(store_txn_commit(t), FH_ERR_STORE);
	store_close(st);
	/* a store that could not be opened answers "seen" too */
	s = false;
	T_ERR(nonce_seen(NULL, "x", &s), FH_ERR_STORE);
	T_CHECK(s);
	T_ERR(nonce_record_durable(NULL, "x", 1), FH_ERR_STORE);
}

/* A write that fails in the kernel (EFBIG past RLIMIT_FSIZE) fails the
 * commit, commits nothing, and leaves the store usable. */
T_TEST(t_failsafe_write_error)
{
	char dir[300], path[400];
	struct store *st;
	struct rlimit old, lim;
	struct stat sb;
	void (*oldsig)(int);
	int err = 0;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 0, 0);
	if (!st)
		return;
	T_OK(nonce_record_durable(st, "w-0", 100));
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	T_CHECK(stat(path, &sb) == 0);
	T_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	/* 3000 nonces need pages past the end of the file */
	T_EQ_INT(record_many(st, "f", 3000, 3000, 100, &err), 0);
	T_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, oldsig);
	T_ERR(err, FH_ERR_STORE);
	T_CHECK(!seen(st, "f-0"));
	T_CHECK(!seen(st, "f-2999"));
	T_CHECK(seen(st, "w-0"));
	/* usable again: the same transaction now commits */
	T_EQ_INT(record_many(st, "f", 3000, 3000, 100, &err), 3000);
	T_EQ_INT(err, 0);
	T_ERR(nonce_record_durable(st, "w-0", 100), FH_ERR_SIG_REPLAY);
	T_CHECK(seen(st, "f-2999"));
	store_close(st);
}

/* Unreadable data file and read-only directory. Root ignores file modes,
 * so as root this runs in a child that drops to uid/gid 65534. */
static int unreadable_child(const char *dir_ro, const char *dir_unread)
{
	struct store_opts o = { dir_unread, 0, 0 };
	struct store *st = NULL;
	char path[400];
	bool s = false;
	int bad = 0;

	snprintf(path, sizeof path, "%s/data.mdb", dir_unread);
	if (chmod(path, 0) != 0)
		bad |= 1;
	if (store_open(&o, &st) != FH_ERR_STORE)
		bad |= 2;
	if (nonce_seen(st, "a", &s) != FH_ERR_STORE || !s)
		bad |= 4;
	if (chmod(dir_ro, 0500) != 0)
		bad |= 8;
	o.dir = dir_ro;
	if (store_open(&o, &st) != FH_ERR_STORE)
		bad |= 16;
	return bad;
}

T_TEST(t_failsafe_unreadable)
{
	char base[280], d1[300], d2[300];
	struct store *st;
	int bad = 0, stt = 0;
	pid_t pid;

	fresh_base(base, sizeof base);
	snprintf(d1, sizeof d1, "%s/ro", base);
	snprintf(d2, sizeof d2, "%s/unread", base);
	T_CHECK(mkdir(d1, 0700) == 0);
	st = open_at(d2, 0, 0);
	if (!st)
		return;
	T_OK(nonce_record_durable(st, "a", 1));
	store_close(st);
	if (geteuid() != 0) {
		bad = unreadable_child(d1, d2);
	} else {
		char path[400];
		T_CHECK(chmod(g_base, 0711) == 0);
		T_CHECK(chmod(base, 0711) == 0);
		T_CHECK(chown(d1, 65534, 65534) == 0);
		T_CHECK(chown(d2, 65534, 65534) == 0);
		snprintf(path, sizeof path, "%s/data.mdb", d2);
		T_CHECK(chown(path, 65534, 65534) == 0);
		snprintf(path, sizeof path, "%s/lock.mdb", d2);
		T_CHECK(chown(path, 65534, 65534) == 0);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
				_exit(100);
			_exit(unreadable_child(d1, d2));
		}
		T_CHECK(pid > 0 && waitpid(pid, &stt, 0) == pid);
		T_CHECK(WIFEXITED(stt));
		bad = WEXITSTATUS(stt);
	}
	T_EQ_INT(bad, 0);
}

/* ---------------------------------------------------------------- fork */

T_TEST(t_fork_refused)
{
	char dir[300];
	struct store *st;
	struct store_txn *rt = NULL;
	const void *v;
	size_t vl;
	int stt = 0;
	pid_t pid;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 0, 0);
	if (!st)
		return;
	T_OK(nonce_record_durable(st, "before-fork", 100));
	T_OK(store_txn_begin(st, false, &rt));   /* held across the fork */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct store_txn *t = NULL;
		struct store_stats s;
		bool s1 = false;
		int bad = 0;

		if (nonce_seen(st, "before-fork", &s1) != FH_ERR_STORE || !s1)
			bad |= 1;
		s1 = false;
		if (nonce_seen(st, "other", &s1) != FH_ERR_STORE || !s1)
			bad |= 2;
		if (nonce_record_durable(st, "child", 100) != FH_ERR_STORE)
			bad |= 4;
		if (store_txn_begin(st, true, &t) != FH_ERR_STORE)
			bad |= 8;
		if (store_get(rt, STORE_DB_NONCE, "before-fork", 11, &v, &vl) != FH_ERR_STORE)
			bad |= 16;
		if (store_txn_commit(rt) != FH_ERR_STORE)   /* frees; parent's slot untouched */
			bad |= 32;
		if (nonce_prune(st, 1000, 10, &(unsigned){ 0 }) != FH_ERR_STORE)
			bad |= 64;
		store_get_stats(st, &s);
		if (s.commits != 0)
			bad |= 128;
		store_close(st);   /* leaves the parent's handles alone */
		_exit(bad);
	}
	T_CHECK(pid > 0 && waitpid(pid, &stt, 0) == pid);
	T_CHECK(WIFEXITED(stt));
	T_EQ_INT(WEXITSTATUS(stt), 0);
	/* the parent is unaffected, its read transaction included */
	T_OK(store_get(rt, STORE_DB_NONCE, "before-fork", 11, &v, &vl));
	T_OK(store_txn_commit(rt));
	T_CHECK(seen(st, "before-fork"));
	T_CHECK(!seen(st, "child"));
	T_OK(nonce_record_durable(st, "after-fork", 100));
	store_close(st);
}

/* Another process grows the map: this one adopts it (MDB_MAP_RESIZED). */
T_TEST(t_map_resized_elsewhere)
{
	char dir[300];
	struct store *st;
	struct store_stats s0, s1;
	int stt = 0;
	pid_t pid;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 64 << 10, (size_t)64 << 20);
	if (!st)
		return;
	T_OK(nonce_record_durable(st, "mine", 100));
	store_get_stats(st, &s0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* a fresh environment of the child's own (allowed after fork) */
		struct store_opts o = { dir, 64 << 10, (size_t)64 << 20 };
		struct store *cst = NULL;
		int err = 0;

		if (store_open(&o, &cst) != 0)
			_exit(1);
		if (record_many(cst, "child", 5000, 500, 100, &err) != 5000)
			_exit(2);
		_exit(0);   /* no store_close: like a process that just ends */
	}
	T_CHECK(pid > 0 && waitpid(pid, &stt, 0) == pid);
	T_CHECK(WIFEXITED(stt));
	T_EQ_INT(WEXITSTATUS(stt), 0);
	T_CHECK(seen(st, "child-4999"));
	T_CHECK(seen(st, "mine"));
	store_get_stats(st, &s1);
	T_CHECK(s1.map_size > s0.map_size);
	T_OK(nonce_record_durable(st, "mine-2", 100));
	T_CHECK(seen(st, "mine-2"));
	store_close(st);
}

/* ------------------------------------------------------------ threads */

#define GC_THREADS 8
#define GC_NONCES 200

struct gc_arg {
	struct store *st;
	int id;
	atomic_int *wins;      /* per nonce */
	atomic_int *other;     /* results other than 0 and replay */
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;
	char nonce[32];
	int i;

	/* every thread tries every nonce, each in its own order */
	for (i = 0; i < GC_NONCES; i++) {
		int j = (i * 37 + a->id * 53) % GC_NONCES;
		int r;

		if (a->id % 2)
			j = GC_NONCES - 1 - j;
		snprintf(nonce, sizeof nonce, "gc-%d", j);
		r = nonce_record_durable(a->st, nonce, 1000 + j);
		if (r == 0)
			atomic_fetch_add(&a->wins[j], 1);
		else if (r != FH_ERR_SIG_REPLAY)
			atomic_fetch_add(a->other, 1);
	}
	return NULL;
}

T_TEST(t_group_commit)
{
	char dir[300], nonce[32];
	struct store *st;
	struct store_stats s;
	struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	atomic_int wins[GC_NONCES], other = 0;
	int i, ones = 0, missing = 0;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 64 << 10, (size_t)64 << 20);   /* grows meanwhile */
	if (!st)
		return;
	for (i = 0; i < GC_NONCES; i++)
		atomic_init(&wins[i], 0);
	for (i = 0; i < GC_THREADS; i++) {
		args[i].st = st;
		args[i].id = i;
		args[i].wins = wins;
		args[i].other = &other;
		T_CHECK(pthread_create(&th[i], NULL, gc_thread, &args[i]) == 0);
	}
	for (i = 0; i < GC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < GC_NONCES; i++)
		ones += atomic_load(&wins[i]) == 1;
	T_EQ_INT(ones, GC_NONCES);
	T_EQ_INT(atomic_load(&other), 0);
	store_get_stats(st, &s);
	T_EQ_INT(s.grouped_ops, GC_NONCES);
	/* callers shared commits */
	T_CHECK(s.group_commits < (uint64_t)GC_THREADS * GC_NONCES);
	printf("  %d calls, %llu group commits\n", GC_THREADS * GC_NONCES,
	       (unsigned long long)s.group_commits);
	store_close(st);

	st = open_at(dir, 0, 0);
	if (!st)
		return;
	for (i = 0; i < GC_NONCES; i++) {
		snprintf(nonce, sizeof nonce, "gc-%d", i);
		missing += !seen(st, nonce);
	}
	T_EQ_INT(missing, 0);
	store_close(st);
}

/* Readers keep reading while writers grow a tiny map under them. */
#define RW_WRITERS 4
#define RW_READERS 4
#define RW_PER_WRITER 300

struct rw_arg {
	struct store *st;
	int id;
	atomic_int *stop;
	atomic_int *errors;
	atomic_int *reads;
};

static void *rw_writer(void *p)
{
	struct rw_arg *a = p;
	char nonce[32];
	int i;

	for (i = 0; i < RW_PER_WRITER; i++) {
		snprintf(nonce, sizeof nonce, "rw-%d-%d", a->id, i);
		if (nonce_record_durable(a->st, nonce, 1000 + i) != 0)
			atomic_fetch_add(a->errors, 1);
	}
	return NULL;
}

static void *rw_reader(void *p)
{
	struct rw_arg *a = p;
	bool s = false;

	while (!atomic_load(a->stop)) {
		if (nonce_seen(a->st, "rw-base", &s) != 0 || !s)
			atomic_fetch_add(a->errors, 1);
		if (nonce_seen(a->st, "rw-absent", &s) != 0 || s)
			atomic_fetch_add(a->errors, 1);
		atomic_fetch_add(a->reads, 1);
	}
	return NULL;
}

T_TEST(t_readers_during_growth)
{
	char dir[300];
	struct store *st;
	struct store_stats s;
	struct rw_arg args[RW_WRITERS + RW_READERS];
	pthread_t th[RW_WRITERS + RW_READERS];
	atomic_int stop = 0, errors = 0, reads = 0;
	int i;

	fresh_dir(dir, sizeof dir);
	st = open_at(dir, 32 << 10, (size_t)64 << 20);
	if (!st)
		return;
	T_OK(nonce_record_durable(st, "rw-base", 1));
	for (i = 0; i < RW_WRITERS + RW_READERS; i++) {
		args[i].st = st;
		args[i].id = i;
		args[i].stop = &stop;
		args[i].errors = &errors;
		args[i].reads = &reads;
		T_CHECK(pthread_create(&th[i], NULL, i < RW_WRITERS ? rw_writer : rw_reader,
		                       &args[i]) == 0);
	}
	for (i = 0; i < RW_WRITERS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, 1);
	for (; i < RW_WRITERS + RW_READERS; i++)
		pthread_join(th[i], NULL);
	T_EQ_INT(atomic_load(&errors), 0);
	T_CHECK(atomic_load(&reads) > 0);
	store_get_stats(st, &s);
	T_CHECK(s.map_grows >= 1);
	T_EQ_INT(s.grouped_ops, RW_WRITERS * RW_PER_WRITER + 1);
	T_CHECK(seen(st, "rw-3-299"));
	store_close(st);
}

int main(void)
{
	t_tmpdir(g_base, sizeof g_base);
	T_RUN(t_open_layout);
	T_RUN(t_sticky_error);
	T_RUN(t_replay);
	T_RUN(t_map_growth);
	T_RUN(t_store_full);
	T_RUN(t_prune);
	T_RUN(t_failsafe_corrupt);
	T_RUN(t_failsafe_write_error);
	T_RUN(t_failsafe_unreadable);
	T_RUN(t_fork_refused);
	T_RUN(t_map_resized_elsewhere);
	T_RUN(t_group_commit);
	T_RUN(t_readers_during_growth);
	nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
