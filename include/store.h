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
 */
#ifndef FH_STORE_H
#define FH_STORE_H

#include <stdbool.h>
#include <stddef.h>

struct store;
struct store_txn;

struct store_opts {
	const char *dir;         /* directory for data.mdb/lock.mdb; created 0700 */
	size_t map_size;         /* initial map size; default 64 MiB */
	size_t map_max;          /* growth cap; default 4 GiB */
};

int store_open(const struct store_opts *o, struct store **out);
void store_close(struct store *st);

int store_txn_begin(struct store *st, bool write, struct store_txn **out);
/* Commits (write) or ends (read); on a sticky error aborts and returns it. */
int store_txn_commit(struct store_txn *t);
void store_txn_abort(struct store_txn *t);
/* The transaction's sticky error, 0 if none. */
int store_txn_err(const struct store_txn *t);
/* The store a transaction belongs to. */
struct store *store_txn_store(const struct store_txn *t);

#endif
