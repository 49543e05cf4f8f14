/* store.c — the one LMDB environment; see store.h.
 *
 * Concurrency inside one process:
 *   wlock   held by this process's write transaction from begin to end, so
 *           writers of this process queue here (not on LMDB's writer mutex)
 *           and a write transaction that is replayed after a map resize
 *           sees exactly the snapshot it saw before.
 *   mu      the resize gate: `active` counts live MDB_txn handles; a resize
 *           closes the gate (new transactions wait), waits for active == 0,
 *           calls mdb_env_set_mapsize, opens the gate. A thread never waits
 *           at the gate while it counts as active.
 *   gmu     the group-commit queue (store_write_grouped).
 * Lock order: wlock, then mu or gmu; mu and gmu are never held together.
 *
 * Every write transaction keeps a log of its puts and deletes (capped at
 * STORE_TXN_LOG_MAX) so that after MDB_MAP_FULL it can be replayed into a
 * fresh transaction on the grown map. mdb_txn_id() of the replay must equal
 * the original's: otherwise some other process committed in between and
 * the replay would not be exact, so it fails instead.
 *
 * After fork the child never calls into LMDB: mdb_txn_abort and
 * mdb_env_close would clear reader slots recorded under the parent's pid.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lmdb.h>

#include "buf.h"
#include "err.h"

static const char *const db_names[STORE_DB__COUNT] = {
	[STORE_DB_NONCE] = "nonce",
	[STORE_DB_NONCE_EXP] = "nonce_exp",
	[STORE_DB_SEQ] = "seq",
	[STORE_DB_JRNL] = "jrnl",
	[STORE_DB_JRNL_OPEN] = "jrnl_open",
	[STORE_DB_JRNL_VMID] = "jrnl_vmid",
	[STORE_DB_IDEM] = "idem",
	[STORE_DB_IDEM_EXP] = "idem_exp",
	[STORE_DB_AUDIT] = "audit",
	[STORE_DB_OUTBOX] = "outbox",
	[STORE_DB_OUTBOX_ID] = "outbox_id",
	[STORE_DB_LAPI_TOKEN] = "lapi_token",
	[STORE_DB_GATE] = "gate",
	[STORE_DB_PENDING] = "pending",
	[STORE_DB_BACKUP] = "backup",
};

#define RESERVE_MIN ((size_t)256 << 10)
#define LOG_PUT 1
#define LOG_DEL 2
#define LOG_HDR 8  /* op, db, BE16 klen, BE32 vlen */

struct gitem {
	store_group_fn fn;
	void *arg;
	int result;
	bool done;
	pthread_cond_t cv;
	struct gitem *next;
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_DB__COUNT];
	pid_t pid;
	dev_t dev;
	ino_t ino;
	struct store *reg_next;
	size_t psize;
	size_t map_max;          /* cap for transactions that put */
	size_t map_max_del;      /* cap for delete-only transactions */

	pthread_mutex_t wlock;

	pthread_mutex_t mu;
	pthread_cond_t cv_gate;  /* gate opened */
	pthread_cond_t cv_idle;  /* active reached 0 while the gate is closed */
	bool gate;
	unsigned active;
	size_t map_size;
	struct store_stats stats;

	pthread_mutex_t gmu;
	pthread_cond_t groom;    /* room in the queue */
	struct gitem *ghead, *gtail;
	unsigned glen;
};

struct store_txn {
	struct store *st;
	MDB_txn *txn;            /* non-NULL exactly while counted in st->active */
	bool write;
	bool log_lost;           /* log passed STORE_TXN_LOG_MAX: no replay */
	int err;
	size_t txnid;            /* write: id of the first attempt */
	unsigned nput;
	struct buf log;
};

/* Stores open in this process, keyed by the directory's (dev, ino). */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store *reg_head;

static const unsigned char empty_val[1];

/* ---------------------------------------------------------------- helpers */

static bool forked(const struct store *st)
{
	return st->pid != getpid();
}

static int lmdb_err(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == MDB_MAP_FULL)
		return FH_ERR_STORE_FULL;
	if (rc == ENOMEM)
		return FH_ERR_NOMEM;
	return FH_ERR_STORE;
}

static MDB_val mval(const void *p, size_t n)
{
	MDB_val v;

	v.mv_size = n;
	v.mv_data = (void *)(uintptr_t)(p ? p : empty_val);
	return v;
}

static size_t round_up(size_t n, size_t to)
{
	if (n % to == 0)
		return n;
	if (n > SIZE_MAX - to)
		return SIZE_MAX - SIZE_MAX % to;
	return n + (to - n % to);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* mkdir -p with mode 0700 for what it creates; each new entry is made
 * durable (fsync of its parent directory). */
static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir), i, last = 0;

	if (n == 0 || n >= sizeof path)
		return -1;
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		char c = path[i];

		if (c != '/' && c != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) == 0) {
			char save = path[last];
			int r;

			/* the parent: path[0..last) ("/" or "." at the top) */
			if (last == 0) {
				r = fsync_dir(path[0] == '/' ? "/" : ".");
			} else {
				path[last] = '\0';
				r = fsync_dir(path);
				path[last] = save;
			}
			if (r != 0)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		path[i] = c;
		if (c == '/')
			last = i;
	}
	return 0;
}

/* ------------------------------------------------------- gate and resize */

static void enter_active(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	while (st->gate)
		pthread_cond_wait(&st->cv_gate, &st->mu);
	st->active++;
	pthread_mutex_unlock(&st->mu);
}

static void leave_active(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	st->active--;
	if (st->gate && st->active == 0)
		pthread_cond_broadcast(&st->cv_idle);
	pthread_mutex_unlock(&st->mu);
}

static size_t cur_map_size(struct store *st)
{
	size_t n;

	pthread_mutex_lock(&st->mu);
	n = st->map_size;
	pthread_mutex_unlock(&st->mu);
	return n;
}

/* Sets the map size while no transaction of this process is active. The
 * caller holds none. want == 0 adopts the size another process committed
 * (MDB_MAP_RESIZED); want > 0 does nothing if the map is already that big. */
static int resize(struct store *st, size_t want)
{
	MDB_envinfo info;
	int rc;

	pthread_mutex_lock(&st->mu);
	while (st->gate)
		pthread_cond_wait(&st->cv_gate, &st->mu);
	if (want && st->map_size >= want) {
		pthread_mutex_unlock(&st->mu);
		return 0;
	}
	st->gate = true;
	while (st->active)
		pthread_cond_wait(&st->cv_idle, &st->mu);
	rc = mdb_env_set_mapsize(st->env, want);
	if (rc == 0)
		rc = mdb_env_info(st->env, &info);
	if (rc == 0) {
		st->map_size = info.me_mapsize;
		if (want)
			st->stats.map_grows++;
	}
	st->gate = false;
	pthread_cond_broadcast(&st->cv_gate);
	pthread_mutex_unlock(&st->mu);
	return rc ? FH_ERR_STORE : 0;
}

/* mdb_txn_begin counted in st->active, with LMDB's transient conditions
 * handled: stale readers (once) and a map grown by another process. */
static int env_begin(struct store *st, bool write, MDB_txn **out)
{
	bool readers_checked = false;
	unsigned resized = 0;
	MDB_txn *txn = NULL;
	int rc, dead;

	for (;;) {
		enter_active(st);
		rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &txn);
		if (rc == 0) {
			*out = txn;
			return 0;
		}
		leave_active(st);
		if (rc == MDB_READERS_FULL && !readers_checked) {
			readers_checked = true;
			if (mdb_reader_check(st->env, &dead) != 0)
				return FH_ERR_STORE;
			continue;
		}
		if (rc == MDB_MAP_RESIZED && resized++ < 3) {
			if (resize(st, 0) != 0)
				return FH_ERR_STORE;
			continue;
		}
		return rc == ENOMEM ? FH_ERR_NOMEM : FH_ERR_STORE;
	}
}

/* ------------------------------------------------------------- write log */

static void put_be(unsigned char *p, uint32_t v, unsigned n)
{
	while (n--) {
		p[n] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint32_t get_be(const unsigned char *p, unsigned n)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void log_drop(struct store_txn *t)
{
	t->log_lost = true;
	buf_free(&t->log);
	buf_init(&t->log, STORE_TXN_LOG_MAX);
}

/* Appends one write. Over the cap the log is dropped (no replay); only
 * running out of memory is an error. */
static int log_add(struct store_txn *t, int op, enum store_db db, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
	unsigned char hdr[LOG_HDR];
	int r;

	if (t->log_lost)
		return 0;
	hdr[0] = (unsigned char)op;
	hdr[1] = (unsigned char)db;
	put_be(hdr + 2, (uint32_t)klen, 2);
	put_be(hdr + 4, (uint32_t)vlen, 4);
	r = buf_append(&t->log, hdr, sizeof hdr);
	if (r == 0)
		r = buf_append(&t->log, key, klen);
	if (r == 0 && vlen)
		r = buf_append(&t->log, val, vlen);
	if (r == FH_ERR_TOOBIG) {
		log_drop(t);
		r = 0;
	}
	return r;
}

/* Re-applies the log to t->txn; a raw LMDB code. */
static int log_apply(struct store_txn *t)
{
	const unsigned char *p = (const unsigned char *)t->log.data;
	const unsigned char *end = p + t->log.len;
	int rc = 0;

	while (p && p < end) {
		size_t klen = get_be(p + 2, 2), vlen = get_be(p + 4, 4);
		MDB_dbi dbi = t->st->dbi[p[1]];
		MDB_val k = mval(p + LOG_HDR, klen), v = mval(p + LOG_HDR + klen, vlen);

		if (p[0] == LOG_PUT)
			rc = mdb_put(t->txn, dbi, &k, &v, 0);
		else
			rc = mdb_del(t->txn, dbi, &k, NULL);
		if (rc)
			return rc;
		p += LOG_HDR + klen + vlen;
	}
	return rc;
}

/* t's write transaction hit MDB_MAP_FULL and its MDB_txn is gone. Doubles
 * the map (up to the cap) and replays the log into a fresh transaction,
 * until the writes fit or the cap is reached. 0: t->txn is live again. */
static int txn_regrow(struct store_txn *t)
{
	struct store *st = t->st;
	size_t limit = t->nput ? st->map_max : st->map_max_del;
	size_t cur, want;
	int r, rc;

	for (;;) {
		cur = cur_map_size(st);
		if (cur >= limit)
			return FH_ERR_STORE_FULL;
		want = cur > limit / 2 ? limit : round_up(cur * 2, st->psize);
		if (want > limit)
			want = limit;
		r = resize(st, want);
		if (r)
			return r;
		if (t->log_lost)
			return FH_ERR_STORE_FULL;
		r = env_begin(st, true, &t->txn);
		if (r) {
			t->txn = NULL;
			return r;
		}
		pthread_mutex_lock(&st->mu);
		st->stats.replays++;
		pthread_mutex_unlock(&st->mu);
		rc = mdb_txn_id(t->txn) == t->txnid ? log_apply(t) : MDB_BAD_TXN;
		if (rc == 0)
			return 0;
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		leave_active(st);
		if (rc != MDB_MAP_FULL)
			return lmdb_err(rc);
	}
}

/* The write failed with rc: on MDB_MAP_FULL grow and replay. */
static int txn_write_failed(struct store_txn *t, int rc)
{
	if (rc != MDB_MAP_FULL)
		return t->err = lmdb_err(rc);
	mdb_txn_abort(t->txn);
	t->txn = NULL;
	leave_active(t->st);
	return t->err = txn_regrow(t);
}

/* Ends t whatever its state and frees it. */
static void txn_end(struct store_txn *t)
{
	struct store *st = t->st;

	if (forked(st)) {
		/* the parent's MDB_txn and reader slot: leave them alone */
		buf_free(&t->log);
		free(t);
		return;
	}
	if (t->txn) {
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		leave_active(st);
	}
	if (t->write)
		pthread_mutex_unlock(&st->wlock);
	buf_free(&t->log);
	free(t);
}

/* Common checks of a data operation; 0 or the (sticky) error. */
static int txn_check(struct store_txn *t, enum store_db db, const void *key, size_t klen)
{
	if (!t)
		return FH_ERR_INVAL;
	if (t->err)
		return t->err;
	if (forked(t->st))
		return t->err = FH_ERR_STORE;
	if ((unsigned)db >= STORE_DB__COUNT || (klen && !key) || klen > STORE_KEY_MAX)
		return t->err = FH_ERR_INVAL;
	if (!t->txn)
		return t->err = FH_ERR_INTERNAL;
	return 0;
}

/* ---------------------------------------------------------- open / close */

static void reg_remove(struct store *st)
{
	struct store **pp;

	pthread_mutex_lock(&reg_mu);
	for (pp = &reg_head; *pp; pp = &(*pp)->reg_next)
		if (*pp == st) {
			*pp = st->reg_next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
}

/* Adds st unless its directory is already open in this process. */
static int reg_add(struct store *st)
{
	struct store *s;
	int r = 0;

	pthread_mutex_lock(&reg_mu);
	for (s = reg_head; s; s = s->reg_next)
		if (s->dev == st->dev && s->ino == st->ino && s->pid == st->pid)
			r = FH_ERR_STORE;
	if (r == 0) {
		st->reg_next = reg_head;
		reg_head = st;
	}
	pthread_mutex_unlock(&reg_mu);
	return r;
}

/* Creates the named databases (or opens them) in one write transaction;
 * a map too small for that is grown first. The store is not shared yet. */
static int open_dbs(struct store *st)
{
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	unsigned tries, i;
	int rc = 0;

	for (tries = 0; tries < 8; tries++) {
		rc = mdb_txn_begin(st->env, NULL, 0, &txn);
		if (rc == MDB_MAP_RESIZED) {
			rc = mdb_env_set_mapsize(st->env, 0);
			if (rc)
				break;
			continue;
		}
		if (rc)
			break;
		for (i = 0; i < STORE_DB__COUNT && rc == 0; i++)
			rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		txn = NULL;
		if (rc != MDB_MAP_FULL)
			break;
		if (mdb_env_info(st->env, &info) != 0 || info.me_mapsize >= st->map_max)
			break;
		rc = mdb_env_set_mapsize(st->env, info.me_mapsize * 2 > st->map_max ?
		                                  st->map_max : info.me_mapsize * 2);
		if (rc)
			break;
		st->stats.map_grows++;
	}
	return lmdb_err(rc);
}

int store_open(const struct store_opts *o, struct store **out)
{
	struct store *st = NULL;
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;
	size_t map_size, map_max, used;
	long pg;
	int r = FH_ERR_INTERNAL, rc, fd, dead;
	bool registered = false;

	if (!o || !out || !o->dir || !o->dir[0])
		return FH_ERR_INVAL;
	map_size = o->map_size ? o->map_size : STORE_MAP_DEFAULT;
	map_max = o->map_max ? o->map_max : STORE_MAP_MAX_DEFAULT;
	if (map_size < STORE_MAP_MIN || map_size > map_max)
		return FH_ERR_INVAL;
	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			return FH_ERR_STORE;
	pg = sysconf(_SC_PAGESIZE);
	if (pg <= 0)
		return FH_ERR_STORE;
	if (mkdir_p(o->dir) != 0 || stat(o->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return FH_ERR_STORE;

	st = calloc(1, sizeof *st);
	if (!st)
		return FH_ERR_NOMEM;
	st->wlock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	st->mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	st->gmu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	st->cv_gate = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	st->cv_idle = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	st->groom = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	st->pid = getpid();
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->psize = (size_t)pg;
	st->map_max = round_up(map_max, st->psize);
	map_size = round_up(map_size, st->psize);

	r = reg_add(st);
	if (r)
		goto out;
	registered = true;
	r = FH_ERR_STORE;
	if (mdb_env_create(&st->env) != 0) {
		st->env = NULL;
		goto out;
	}
	if (mdb_env_set_maxdbs(st->env, STORE_MAXDBS) != 0 ||
	    mdb_env_set_mapsize(st->env, map_size) != 0)
		goto out;
	if (mdb_env_open(st->env, o->dir, MDB_NOTLS, 0600) != 0)
		goto out;
	/* LMDB 0.9.24 opens data.mdb's main descriptor without O_CLOEXEC:
	 * a program the agent spawns must not inherit it. */
	if (mdb_env_get_fd(st->env, &fd) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		goto out;
	if (mdb_reader_check(st->env, &dead) != 0 || mdb_env_stat(st->env, &ms) != 0)
		goto out;
	st->psize = ms.ms_psize;
	st->map_max = round_up(map_max, st->psize);
	st->map_max_del = st->map_max + round_up(map_max / 16 > RESERVE_MIN ? map_max / 16 : RESERVE_MIN,
	                                         st->psize);
	r = open_dbs(st);
	if (r)
		goto out;
	/* data.mdb and lock.mdb may be new: make their entries durable too */
	r = FH_ERR_STORE;
	if (fsync_dir(o->dir) != 0)
		goto out;
	/* Data already filling over half the map (a map grown in an earlier
	 * run, or a small map_size): grow now rather than on the first write. */
	if (mdb_env_info(st->env, &info) != 0)
		goto out;
	used = (info.me_last_pgno + 1) * st->psize;
	if (used > info.me_mapsize / 2 && info.me_mapsize < st->map_max) {
		size_t want = round_up(used * 2, st->psize);

		rc = mdb_env_set_mapsize(st->env, want > st->map_max ? st->map_max : want);
		if (rc != 0 || mdb_env_info(st->env, &info) != 0)
			goto out;
		st->stats.map_grows++;
	}
	st->map_size = info.me_mapsize;
	*out = st;
	st = NULL;
	r = 0;
out:
	if (st) {
		if (registered)
			reg_remove(st);
		if (st->env)
			mdb_env_close(st->env);
		free(st);
	}
	return r;
}

void store_close(struct store *st)
{
	if (!st || forked(st))
		return;
	reg_remove(st);
	mdb_env_close(st->env);
	pthread_mutex_destroy(&st->wlock);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->gmu);
	pthread_cond_destroy(&st->cv_gate);
	pthread_cond_destroy(&st->cv_idle);
	pthread_cond_destroy(&st->groom);
	free(st);
}

/* ---------------------------------------------------------- transactions */

int store_txn_begin(struct store *st, bool write, struct store_txn **out)
{
	struct store_txn *t = NULL;
	int r = FH_ERR_INTERNAL;

	if (!st || !out)
		return FH_ERR_INVAL;
	if (forked(st))
		return FH_ERR_STORE;
	t = calloc(1, sizeof *t);
	if (!t)
		return FH_ERR_NOMEM;
	t->st = st;
	t->write = write;
	buf_init(&t->log, STORE_TXN_LOG_MAX);
	if (write)
		pthread_mutex_lock(&st->wlock);
	r = env_begin(st, write, &t->txn);
	if (r) {
		t->txn = NULL;
		goto out;
	}
	if (write)
		t->txnid = mdb_txn_id(t->txn);
	*out = t;
	t = NULL;
out:
	if (t)
		txn_end(t);
	return r;
}

int store_txn_commit(struct store_txn *t)
{
	struct store *st;
	int r = FH_ERR_INTERNAL, rc;

	if (!t)
		return FH_ERR_INVAL;
	st = t->st;
	if (forked(st)) {
		r = FH_ERR_STORE;
		goto out;
	}
	if (t->err) {
		r = t->err;
		goto out;
	}
	if (!t->txn)
		goto out;
	if (!t->write) {
		r = 0;   /* txn_end releases the snapshot */
		goto out;
	}
	for (;;) {
		rc = mdb_txn_commit(t->txn);   /* frees the txn, also on error */
		t->txn = NULL;
		leave_active(st);
		if (rc != MDB_MAP_FULL)
			break;
		r = txn_regrow(t);
		if (r)
			goto out;
	}
	if (rc) {
		r = lmdb_err(rc);
		goto out;
	}
	pthread_mutex_lock(&st->mu);
	st->stats.commits++;
	pthread_mutex_unlock(&st->mu);
	r = 0;
out:
	txn_end(t);
	return r;
}

void store_txn_abort(struct store_txn *t)
{
	if (t)
		txn_end(t);
}

int store_txn_err(const struct store_txn *t)
{
	return t ? t->err : FH_ERR_INVAL;
}

struct store *store_txn_store(const struct store_txn *t)
{
	return t ? t->st : NULL;
}

/* ------------------------------------------------------------ operations */

int store_get(struct store_txn *t, enum store_db db, const void *key, size_t klen,
              const void **val, size_t *vlen)
{
	MDB_val k, v;
	int r = txn_check(t, db, key, klen), rc;

	if (r)
		return r;
	if (!klen || !val || !vlen)
		return t->err = FH_ERR_INVAL;
	k = mval(key, klen);
	rc = mdb_get(t->txn, t->st->dbi[db], &k, &v);
	if (rc == MDB_NOTFOUND)
		return FH_ERR_NOT_FOUND;
	if (rc)
		return t->err = lmdb_err(rc);
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

int store_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
              const void *val, size_t vlen)
{
	MDB_val k, v;
	int r = txn_check(t, db, key, klen), rc;

	if (r)
		return r;
	if (!t->write || !klen || (vlen && !val) || vlen > STORE_VAL_MAX)
		return t->err = FH_ERR_INVAL;
	r = log_add(t, LOG_PUT, db, key, klen, val, vlen);
	if (r)
		return t->err = r;
	t->nput++;
	k = mval(key, klen);
	v = mval(val, vlen);
	rc = mdb_put(t->txn, t->st->dbi[db], &k, &v, 0);
	return rc ? txn_write_failed(t, rc) : 0;
}

int store_del(struct store_txn *t, enum store_db db, const void *key, size_t klen)
{
	MDB_val k;
	size_t mark;
	int r = txn_check(t, db, key, klen), rc;

	if (r)
		return r;
	if (!t->write || !klen)
		return t->err = FH_ERR_INVAL;
	mark = t->log.len;
	r = log_add(t, LOG_DEL, db, key, klen, NULL, 0);
	if (r)
		return t->err = r;
	k = mval(key, klen);
	rc = mdb_del(t->txn, t->st->dbi[db], &k, NULL);
	if (rc == MDB_NOTFOUND) {
		if (!t->log_lost && t->log.data) {   /* nothing to replay */
			t->log.len = mark;
			t->log.data[mark] = '\0';
		}
		return FH_ERR_NOT_FOUND;
	}
	return rc ? txn_write_failed(t, rc) : 0;
}

int store_first(struct store_txn *t, enum store_db db, const void **key, size_t *klen,
                const void **val, size_t *vlen)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int r = txn_check(t, db, NULL, 0), rc;

	if (r)
		return r;
	if (!key || !klen || !val || !vlen)
		return t->err = FH_ERR_INVAL;
	rc = mdb_cursor_open(t->txn, t->st->dbi[db], &c);
	if (rc)
		return t->err = lmdb_err(rc);
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return FH_ERR_NOT_FOUND;
	if (rc)
		return t->err = lmdb_err(rc);
	*key = k.mv_data;
	*klen = k.mv_size;
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

int store_seek(struct store_txn *t, enum store_db db, const void *from, size_t flen,
               const void **key, size_t *klen, const void **val, size_t *vlen)
{
	MDB_cursor *c = NULL;
	MDB_val k = mval(from, flen), v;
	int r = txn_check(t, db, from, flen), rc;

	if (r)
		return r;
	if (!key || !klen || !val || !vlen)
		return t->err = FH_ERR_INVAL;
	rc = mdb_cursor_open(t->txn, t->st->dbi[db], &c);
	if (rc)
		return t->err = lmdb_err(rc);
	rc = mdb_cursor_get(c, &k, &v, flen ? MDB_SET_RANGE : MDB_FIRST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return FH_ERR_NOT_FOUND;
	if (rc)
		return t->err = lmdb_err(rc);
	*key = k.mv_data;
	*klen = k.mv_size;
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

/* ---------------------------------------------------------- group commit */

/* The leader: one transaction for n queued callers starting at first
 * (their fns run here), one commit; each item's result is set. */
static void group_run(struct store *st, struct gitem *first, unsigned n)
{
	struct store_txn *t = NULL;
	struct gitem *it = first;
	unsigned i, ok = 0;
	int r;

	r = store_txn_begin(st, true, &t);
	if (r == 0) {
		for (i = 0; i < n; i++, it = it->next) {
			it->result = t->err ? t->err : it->fn(t, it->arg);
			if (i + 1 == n)
				break;   /* it->next may be changing: a new arrival */
		}
		r = store_txn_commit(t);
	}
	for (i = 0, it = first; i < n; i++) {
		if (r && it->result == 0)
			it->result = r;
		if (it->result == 0)
			ok++;
		if (i + 1 < n)
			it = it->next;
	}
	if (r == 0) {
		pthread_mutex_lock(&st->mu);
		st->stats.group_commits++;
		st->stats.grouped_ops += ok;
		pthread_mutex_unlock(&st->mu);
	}
}

int store_write_grouped(struct store *st, store_group_fn fn, void *arg)
{
	struct gitem me, *it;
	unsigned n, i;
	int r;

	if (!st || !fn)
		return FH_ERR_INVAL;
	if (forked(st))
		return FH_ERR_STORE;
	memset(&me, 0, sizeof me);
	me.fn = fn;
	me.arg = arg;
	if (pthread_cond_init(&me.cv, NULL) != 0)
		return FH_ERR_NOMEM;

	pthread_mutex_lock(&st->gmu);
	while (st->glen >= STORE_QUEUE_MAX)
		pthread_cond_wait(&st->groom, &st->gmu);
	if (st->gtail)
		st->gtail->next = &me;
	else
		st->ghead = &me;
	st->gtail = &me;
	st->glen++;
	while (!me.done && st->ghead != &me)
		pthread_cond_wait(&me.cv, &st->gmu);
	if (!me.done) {
		/* Leader: take up to STORE_GROUP_MAX from the head (us). Later
		 * arrivals only append after the last one taken. */
		for (n = 1, it = &me; it->next && n < STORE_GROUP_MAX; n++)
			it = it->next;
		pthread_mutex_unlock(&st->gmu);
		group_run(st, &me, n);
		pthread_mutex_lock(&st->gmu);
		for (i = 0; i < n; i++) {
			it = st->ghead;
			st->ghead = it->next;
			if (!st->ghead)
				st->gtail = NULL;
			st->glen--;
			it->done = true;
			if (it != &me)
				pthread_cond_signal(&it->cv);
		}
		if (st->ghead)
			pthread_cond_signal(&st->ghead->cv);   /* the next leader */
		pthread_cond_broadcast(&st->groom);
	}
	r = me.result;
	pthread_mutex_unlock(&st->gmu);
	pthread_cond_destroy(&me.cv);
	return r;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	if (!st || forked(st))
		return;
	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	out->map_size = st->map_size;
	pthread_mutex_unlock(&st->mu);
}

void store_be64_put(unsigned char p[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t store_be64_get(const unsigned char p[8])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int store_seq_get(struct store_txn *t, const char *name, uint64_t def, uint64_t *out)
{
	const void *v;
	size_t vl;
	int r = store_get(t, STORE_DB_SEQ, name, strlen(name), &v, &vl);

	if (r == FH_ERR_NOT_FOUND) {
		*out = def;
		return 0;
	}
	if (r)
		return r;
	if (vl != 8)
		return FH_ERR_DECODE;
	*out = store_be64_get(v);
	return 0;
}

int store_seq_put(struct store_txn *t, const char *name, uint64_t v)
{
	unsigned char b[8];

	store_be64_put(b, v);
	return store_put(t, STORE_DB_SEQ, name, strlen(name), b, sizeof b);
}
