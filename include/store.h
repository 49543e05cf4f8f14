/* store.h — the one LMDB environment holding all durable agent state
 * (named databases: nonces and their expiry index now; idempotency keys,
 * the journal and the audit log later), under STATE_DIR/db/.
 *
 * Transactions carry a sticky error: once any operation in a transaction
 * fails, later operations do nothing and return that error, and commit
 * becomes abort and returns it. MDB_MAP_FULL grows the map (up to
 * map_max) and is reported as FH_ERR_STORE_FULL only past that;
 * MDB_READERS_FULL runs mdb_reader_check and retries once. Commits are
 * fully synced (no MDB_NOSYNC): a committed write is on disk.
 * An environment is used only in the process that opened it (never across
 * fork).
 *
 * Processes and threads
 *   - Open the store in the process that uses it, after any daemonizing
 *     fork. The store records getpid() at store_open; every call from
 *     another process (a forked child) fails with FH_ERR_STORE without
 *     touching LMDB, and store_close there releases nothing (the LMDB
 *     handles and reader slots belong to the parent). A child should exec
 *     or _exit.
 *   - One environment per directory per process: a second store_open of the
 *     same directory while the first is open fails with FH_ERR_STORE
 *     (closing one would drop the other's fcntl locks, lmdb.h caveats).
 *   - stdin, stdout and stderr must be open (store_open fails otherwise), so
 *     a stray write to fd 1 can never land in data.mdb. Every descriptor of
 *     the store is close-on-exec.
 *   - A store may be shared by threads (MDB_NOTLS). A transaction is used by
 *     the thread that began it, and a thread holds at most one transaction
 *     at a time (beginning a second one, or calling nonce_record_durable,
 *     while holding one may deadlock against a map resize).
 *
 * Map growth
 *   The map is grown only when no transaction of this process is active:
 *   new transactions wait at a gate while the active ones finish, then
 *   mdb_env_set_mapsize runs. A write transaction that hits MDB_MAP_FULL
 *   (in a put, a delete or the commit) is aborted, the map doubled (capped
 *   at map_max) and the transaction's writes are replayed from its own log,
 *   once per doubling, then it continues as if nothing happened. The replay
 *   is exact: writers of this process are serialized for the whole
 *   transaction, and if another process committed in between the
 *   transaction fails with FH_ERR_STORE instead. A transaction that only
 *   deletes may grow past map_max by a reserve (map_max / 16, at least
 *   256 KiB), so pruning always works on a full store. A transaction that
 *   writes more than STORE_TXN_LOG_MAX bytes cannot be replayed and gets
 *   FH_ERR_STORE_FULL on MDB_MAP_FULL (the map still grows for the next).
 *   MDB_MAP_RESIZED (another process grew the map) adopts the new size and
 *   retries.
 *
 * Errors: FH_ERR_INVAL (bad arguments), FH_ERR_STORE (any LMDB or I/O
 * failure, use after fork), FH_ERR_STORE_FULL, FH_ERR_NOMEM. Callers treat
 * FH_ERR_STORE as "cannot tell", i.e. fail safe.
 */
#ifndef FH_STORE_H
#define FH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

struct store_opts {
	const char *dir;         /* directory for data.mdb/lock.mdb; created 0700 */
	size_t map_size;         /* initial map size; default 64 MiB */
	size_t map_max;          /* growth cap; default 4 GiB */
};

#define STORE_MAP_DEFAULT ((size_t)64 << 20)
#define STORE_MAP_MAX_DEFAULT ((size_t)4 << 30)
#define STORE_MAP_MIN ((size_t)32 << 10)   /* smallest map_size accepted */

/* Named databases. Keys are byte strings ordered by memcmp (integers in
 * keys are big-endian so the order is natural). Append-only: the names are
 * on disk. STORE_MAXDBS leaves room for the later stores. */
enum store_db {
	STORE_DB_NONCE = 0,      /* "nonce": nonce bytes -> BE64 expiry */
	STORE_DB_NONCE_EXP = 1,  /* "nonce_exp": BE64 expiry || nonce -> empty */
	STORE_DB_SEQ = 2,        /* "seq": counter name -> BE64 (jrnl_, audit_, outbox_) */
	STORE_DB_JRNL = 3,       /* "jrnl": BE64 id -> journal entry (jrnl.h) */
	STORE_DB_JRNL_OPEN = 4,  /* "jrnl_open": BE64 id -> empty, entries in flight */
	STORE_DB_JRNL_VMID = 5,  /* "jrnl_vmid": BE64 vmid || BE64 id -> empty */
	STORE_DB_IDEM = 6,       /* "idem": key -> idempotency record (idem.h) */
	STORE_DB_IDEM_EXP = 7,   /* "idem_exp": BE64 expiry || key -> empty */
	STORE_DB_AUDIT = 8,      /* "audit": BE64 seq -> audit record (audit.h) */
	STORE_DB_OUTBOX = 9,     /* "outbox": BE64 seq -> op result (outbox.h) */
	STORE_DB_OUTBOX_ID = 10, /* "outbox_id": op id -> BE64 seq */
	STORE_DB_LAPI_TOKEN = 11, /* "lapi_token": BE32 vmid -> local-API token hash (lapi.h) */
	STORE_DB_GATE = 12,      /* "gate": gate state (the rotated signer set, gate.h) */
	STORE_DB_PENDING = 13,   /* "pending": durable id -> pending destructive op (disk.h) */
	STORE_DB_BACKUP = 14,    /* "backup": BE32 vmid -> per-guest backup state (backup.h) */
	STORE_DB__COUNT
};
#define STORE_MAXDBS 16

#define STORE_KEY_MAX 511                  /* LMDB's default key size limit */
#define STORE_VAL_MAX ((size_t)1 << 20)    /* one value */
#define STORE_TXN_LOG_MAX ((size_t)16 << 20) /* replayable writes per txn */
#define STORE_GROUP_MAX 256                /* callers per group commit */
#define STORE_QUEUE_MAX 1024               /* callers queued for group commits */

/* Opens (creating the directory 0700 and the files 0600 when missing) the
 * environment in o->dir and its named databases, clears stale reader slots
 * (mdb_reader_check) and grows the map at once when the data already fills
 * over half of it. *out owned by the caller (store_close).
 * FH_ERR_INVAL (no dir, map_size < STORE_MAP_MIN or > map_max),
 * FH_ERR_STORE (cannot create or open, opened twice, fds 0-2 not open),
 * FH_ERR_NOMEM. */
int store_open(const struct store_opts *o, struct store **out);
/* Closes the environment. No transaction or call may be in progress.
 * NULL is allowed. */
void store_close(struct store *st);

/* Begins a read or write transaction. Write transactions of this process
 * are serialized (a second writer waits for the first to end).
 * *out is ended by store_txn_commit or store_txn_abort.
 * FH_ERR_STORE (LMDB failure, readers full after reader check, forked
 * child), FH_ERR_NOMEM. */
int store_txn_begin(struct store *st, bool write, struct store_txn **out);
/* Commits (write) or ends (read); on a sticky error aborts and returns it. */
int store_txn_commit(struct store_txn *t);
void store_txn_abort(struct store_txn *t);
/* The transaction's sticky error, 0 if none. */
int store_txn_err(const struct store_txn *t);
/* The store a transaction belongs to. */
struct store *store_txn_store(const struct store_txn *t);

/* Point lookup. *val and *vlen point into the map, valid until the transaction
 * ends or its next write. FH_ERR_NOT_FOUND when absent (not sticky);
 * otherwise the sticky error. */
int store_get(struct store_txn *t, enum store_db db, const void *key, size_t klen,
              const void **val, size_t *vlen);
/* Inserts or overwrites (write transactions only). Sticky errors:
 * FH_ERR_INVAL (read txn, key 1..STORE_KEY_MAX, value over STORE_VAL_MAX),
 * FH_ERR_STORE, FH_ERR_STORE_FULL, FH_ERR_NOMEM. */
int store_put(struct store_txn *t, enum store_db db, const void *key, size_t klen,
              const void *val, size_t vlen);
/* Deletes a key. FH_ERR_NOT_FOUND when absent (not sticky); otherwise as
 * store_put. */
int store_del(struct store_txn *t, enum store_db db, const void *key, size_t klen);
/* The smallest key of db with its value (pointers as store_get).
 * FH_ERR_NOT_FOUND when db is empty (not sticky). */
int store_first(struct store_txn *t, enum store_db db, const void **key, size_t *klen,
                const void **val, size_t *vlen);
/* The smallest key of db that is >= from[0..flen) (flen 0: the first key),
 * with its value (pointers as store_get); iterate by seeking just past the
 * last key seen (append a 0 byte, or add 1 to a big-endian integer).
 * FH_ERR_NOT_FOUND when there is none (not sticky). */
int store_seek(struct store_txn *t, enum store_db db, const void *from, size_t flen,
               const void **key, size_t *klen, const void **val, size_t *vlen);

/* Group commit. fn runs inside a write transaction shared with other
 * concurrent callers (at most STORE_GROUP_MAX per transaction, callers over
 * STORE_QUEUE_MAX wait for room) and should check before it writes: when
 * it returns a negative code without a sticky error on the transaction,
 * that code is this caller's result alone and the others still commit (fn
 * must not have written anything then). When fn returns 0, the caller gets
 * 0 only after the one commit (one sync) holding its writes succeeded;
 * if the transaction fails (sticky error, commit error) every caller whose
 * fn returned 0 gets that error. fn is called on another thread (the
 * leader's) while the caller waits, and must not call into the store
 * except through t. Batches form only from callers that arrive while a
 * commit is syncing (no added delay), so one or two sequential callers
 * still get about one commit per call. */
typedef int (*store_group_fn)(struct store_txn *t, void *arg);
int store_write_grouped(struct store *st, store_group_fn fn, void *arg);

struct store_stats {
	uint64_t commits;        /* successful write commits (each one that
	                          * changed something is synced) */
	uint64_t grouped_ops;    /* store_write_grouped calls that returned 0 */
	uint64_t group_commits;  /* commits made for store_write_grouped */
	uint64_t map_grows;      /* map resizes after MDB_MAP_FULL or at open */
	uint64_t replays;        /* write transactions replayed after a resize */
	size_t map_size;         /* current map size */
};
/* Counters since store_open (zeroes for NULL or a forked child). */
void store_get_stats(struct store *st, struct store_stats *out);

/* Big-endian 64-bit integers, for keys that sort in numeric order. */
void store_be64_put(unsigned char p[8], uint64_t v);
uint64_t store_be64_get(const unsigned char p[8]);
/* A named counter in STORE_DB_SEQ: def when absent; FH_ERR_DECODE when
 * the stored value is not 8 bytes. */
int store_seq_get(struct store_txn *t, const char *name, uint64_t def, uint64_t *out);
int store_seq_put(struct store_txn *t, const char *name, uint64_t v);

#endif
