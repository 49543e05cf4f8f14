/* bench_upid.c — upid_parse() against a plain sscanf/strtoul reference
 * parser with roughly the same validation. Prints figures, never fails.
 * Each parser runs for about 0.5 s on a realistic token-user UPID. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "upid.h"

static const char UPID[] =
	"UPID:pve-node-01:0012D687:1A3B4C5D6:68BF3A41:vzcreate:105:felhom-agent@pve!felhom:";

/* ---- reference parser ---------------------------------------------------
 * What one would write without Ragel: copy to a C string, sscanf the hex
 * trio, strtoul/strtoull the digits, strchr/strspn the rest. Same rules as
 * upid_parse (grammar, slot sizes, UPID_MAX, NUL); where is not computed. */

static int ref_field(const char *f, size_t len, size_t cap, int may_be_empty)
{
	if (len >= cap || (len == 0 && !may_be_empty))
		return 0;
	return strcspn(f, "/ \t\n\v\f\r") >= len;
}

static int ref_parse(const char *s, size_t n, struct upid *out)
{
	char buf[UPID_MAX + 1], pidb[9], pstb[10], stb[9];
	char *f[3], *end, *node, *p, *bang;
	struct upid u;
	size_t nl, i;
	int used = -1;

	if (n > UPID_MAX || memchr(s, '\0', n))
		return FH_ERR_UPID;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (strncmp(buf, "UPID:", 5) != 0)
		return FH_ERR_UPID;
	memset(&u, 0, sizeof u);

	node = buf + 5;
	end = strchr(node, ':');
	if (!end)
		return FH_ERR_UPID;
	nl = (size_t)(end - node);
	if (nl == 0 || nl >= sizeof u.node || !isalnum((unsigned char)node[0]) ||
	    !isalnum((unsigned char)node[nl - 1]))
		return FH_ERR_UPID;
	for (i = 0; i < nl; i++)
		if (!isalnum((unsigned char)node[i]) && node[i] != '-')
			return FH_ERR_UPID;
	memcpy(u.node, node, nl);

	p = end + 1;
	if (sscanf(p, "%8[0-9A-Fa-f]:%9[0-9A-Fa-f]:%8[0-9A-Fa-f]:%n", pidb, pstb, stb, &used) != 3 ||
	    used < 0 || strlen(pidb) != 8 || strlen(pstb) < 8 || strlen(stb) != 8)
		return FH_ERR_UPID;
	u.pid = (uint32_t)strtoul(pidb, NULL, 16);
	u.pstart = strtoull(pstb, NULL, 16);
	u.starttime = (uint32_t)strtoul(stb, NULL, 16);
	p += used;

	/* type, id, user: each ends at a ':' */
	for (i = 0; i < 3; i++) {
		f[i] = p;
		end = strchr(p, ':');
		if (!end)
			return FH_ERR_UPID;
		*end = '\0';
		p = end + 1;
	}
	if (*p != '\0')
		return FH_ERR_UPID;
	if (!ref_field(f[0], strlen(f[0]), sizeof u.type, 0) ||
	    !ref_field(f[1], strlen(f[1]), sizeof u.id, 1) ||
	    !ref_field(f[2], strlen(f[2]), sizeof u.user, 0))
		return FH_ERR_UPID;
	strcpy(u.type, f[0]);
	strcpy(u.id, f[1]);
	strcpy(u.user, f[2]);
	bang = strrchr(u.user, '!');
	if (bang) {
		if (strlen(bang + 1) >= sizeof u.tokenid)
			return FH_ERR_UPID;
		strcpy(u.tokenid, bang + 1);
	}
	*out = u;
	return FH_OK;
}

/* ---- timing ------------------------------------------------------------- */

typedef int (*parse_fn)(const char *s, size_t n, struct upid *out);

static int run_upid(const char *s, size_t n, struct upid *out)
{
	return upid_parse(s, n, out, NULL);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile uint64_t sink;

/* Seconds for iters parses. The input pointer goes through a volatile so the
 * compiler cannot hoist the parse out of the loop. */
static double timed(parse_fn fn, size_t iters)
{
	const char *volatile in = UPID;
	size_t n = sizeof UPID - 1, i;
	struct upid u;
	uint64_t acc = 0;
	double t0 = now();

	for (i = 0; i < iters; i++) {
		if (fn(in, n, &u) == FH_OK)
			acc += u.pid + (unsigned char)u.tokenid[0];
	}
	sink = acc;
	return now() - t0;
}

/* ns per parse, running for about 0.5 s after calibration. */
static double ns_per_op(parse_fn fn, size_t *iters_out)
{
	size_t iters = 1000;
	double t;

	while ((t = timed(fn, iters)) < 0.05)
		iters *= 2;
	iters = (size_t)((double)iters * 0.5 / t) + 1;
	t = timed(fn, iters);
	*iters_out = iters;
	return t * 1e9 / (double)iters;
}

static int same(const struct upid *a, const struct upid *b)
{
	return strcmp(a->node, b->node) == 0 && a->pid == b->pid && a->pstart == b->pstart &&
	       a->starttime == b->starttime && strcmp(a->type, b->type) == 0 &&
	       strcmp(a->id, b->id) == 0 && strcmp(a->user, b->user) == 0 &&
	       strcmp(a->tokenid, b->tokenid) == 0;
}

int main(void)
{
	struct upid a, b;
	size_t na, nb;
	double ta, tb;

	if (upid_parse(UPID, sizeof UPID - 1, &a, NULL) != FH_OK ||
	    ref_parse(UPID, sizeof UPID - 1, &b) != FH_OK || !same(&a, &b))
		printf("warning: the parsers disagree on the bench input\n");
	ta = ns_per_op(run_upid, &na);
	tb = ns_per_op(ref_parse, &nb);
	printf("input: %s (%zu bytes)\n", UPID, sizeof UPID - 1);
	printf("upid_parse: %.1f ns/op (%zu ops)\n", ta, na);
	printf("reference sscanf/strtoul parser: %.1f ns/op (%zu ops)\n", tb, nb);
	printf("ratio reference/upid_parse: %.2fx\n", tb / ta);
	return 0;
}
