/* storetest.h — the LMDB store in tests that open many of them (test_audit,
 * test_outbox): each store in its own directory below one base, all
 * removed at the end.
 *
 *   char base[256], dir[300];
 *   t_tmpdir(base, sizeof base);
 *   struct store *st = storetest_fresh(base, "a", dir, sizeof dir);
 *   ... store_close(st); st = storetest_open(dir); ...
 *   storetest_rm_tree(base);
 */
#ifndef FH_TEST_STORETEST_H
#define FH_TEST_STORETEST_H

#include <stddef.h>

#include "store.h"

/* store_open() on dir with default options, checked with T_OK; NULL after
 * a failed check. */
struct store *storetest_open(const char *dir);

/* A new store in "<base>/<prefix><n>" (n counts up per process); the path
 * goes to dir. */
struct store *storetest_fresh(const char *base, const char *prefix, char *dir, size_t dirlen);

/* Removes dir and everything below it (best effort). */
void storetest_rm_tree(const char *dir);

#endif
