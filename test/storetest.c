/* storetest.c — see storetest.h. */
#include "storetest.h"

#include <ftw.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct store *storetest_open(const char *dir)
{
	struct store_opts o;
	struct store *st = NULL;

	memset(&o, 0, sizeof o);
	o.dir = dir;
	T_OK(store_open(&o, &st));
	return st;
}

struct store *storetest_fresh(const char *base, const char *prefix, char *dir, size_t dirlen)
{
	static int n;

	snprintf(dir, dirlen, "%s/%s%d", base, prefix, n++);
	return storetest_open(dir);
}

void storetest_rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
