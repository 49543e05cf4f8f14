/* test_upid.c — upid_parse(): the golden cases in vectors/upid/cases.txt,
 * failure offsets, untouched output, and a differential test against the
 * pve-common regex (POSIX ERE) plus the struct slot limits on mutated and
 * randomly generated UPIDs. Run from the repository root. */
#include "harness.h"

#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "upid.h"

#define CASES_PATH "vectors/upid/cases.txt"
#define MIN_CASES 30
#define MIN_INVALID 20

/* ---- helpers ---------------------------------------------------------- */

static int hexdig(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes src[0..n) with the \xNN escape into dst (cap bytes, NUL-terminated
 * for convenience). Returns the decoded length, or -1 on a bad escape or
 * overflow. */
static long unescape(const char *src, size_t n, char *dst, size_t cap)
{
	size_t i = 0, o = 0;

	while (i < n) {
		char c = src[i];

		if (o + 1 >= cap)
			return -1;
		if (c == '\\') {
			int hi, lo;

			if (n - i < 4 || src[i + 1] != 'x')
				return -1;
			hi = hexdig(src[i + 2]);
			lo = hexdig(src[i + 3]);
			if (hi < 0 || lo < 0)
				return -1;
			dst[o++] = (char)(hi << 4 | lo);
			i += 4;
		} else {
			dst[o++] = c;
			i++;
		}
	}
	dst[o] = '\0';
	return (long)o;
}

/* Parses a copy of s[0..n) placed in a buffer of exactly n bytes, so the
 * sanitizers catch any read past the end. */
static int parse_exact(const char *s, size_t n, struct upid *out, size_t *where)
{
	char *copy = malloc(n ? n : 1);
	int r;

	if (!copy)
		abort();
	if (n)
		memcpy(copy, s, n);
	r = upid_parse(copy, n, out, where);
	free(copy);
	return r;
}

/* Escapes bytes for a failure message. */
static const char *show(const char *s, size_t n)
{
	static char buf[4 * UPID_MAX + 64];
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < sizeof buf; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == '\\')
			o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02X", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- golden cases ----------------------------------------------------- */

static const char *const keys[] = {
	"node", "pid", "pstart", "starttime", "type", "id", "user", "tokenid",
};

/* Compares one parsed struct with "node=..;pid=..;..." (values escaped).
 * Reports mismatches against cases.txt line lineno; returns 0 if equal. */
static int check_expected(const struct upid *u, const char *exp, int lineno)
{
	char val[256];
	const char *p = exp;
	size_t k;
	int bad = 0;

	for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		size_t klen = strlen(keys[k]);
		const char *end = strchr(p, ';');
		size_t vlen;
		char *num_end;
		unsigned long long num;

		if (!end)
			end = p + strlen(p);
		if (strncmp(p, keys[k], klen) != 0 || p[klen] != '=') {
			t_failf(__FILE__, __LINE__, "%s:%d: expected key %s at \"%s\"",
				CASES_PATH, lineno, keys[k], p);
			return 1;
		}
		p += klen + 1;
		vlen = (size_t)(end - p);
		if (unescape(p, vlen, val, sizeof val) < 0) {
			t_failf(__FILE__, __LINE__, "%s:%d: bad value for %s", CASES_PATH, lineno, keys[k]);
			return 1;
		}
		switch (k) {
		case 0: bad |= strcmp(u->node, val) != 0; break;
		case 4: bad |= strcmp(u->type, val) != 0; break;
		case 5: bad |= strcmp(u->id, val) != 0; break;
		case 6: bad |= strcmp(u->user, val) != 0; break;
		case 7: bad |= strcmp(u->tokenid, val) != 0; break;
		default:
			num = strtoull(val, &num_end, 10);
			if (*val == '\0' || *num_end != '\0') {
				t_failf(__FILE__, __LINE__, "%s:%d: bad number for %s", CASES_PATH, lineno, keys[k]);
				return 1;
			}
			if (k == 1)
				bad |= u->pid != num;
			else if (k == 2)
				bad |= u->pstart != num;
			else
				bad |= u->starttime != num;
		}
		if (bad) {
			t_failf(__FILE__, __LINE__, "%s:%d: field %s differs from \"%s\"",
				CASES_PATH, lineno, keys[k], val);
			return 1;
		}
		p = *end ? end + 1 : end;
	}
	if (*p) {
		t_failf(__FILE__, __LINE__, "%s:%d: trailing text in expected column: \"%s\"",
			CASES_PATH, lineno, p);
		return 1;
	}
	return 0;
}

T_TEST(golden_cases)
{
	size_t flen;
	char *text = t_slurp(CASES_PATH, &flen);
	char *line, *next;
	int lineno = 0, nvalid = 0, ninvalid = 0;

	T_CHECK(text != NULL);
	if (!text)
		return;
	for (line = text; line && *line; line = next) {
		char *tab1, *tab2, *nl = strchr(line, '\n');
		char upid[UPID_MAX * 2];
		long n;
		struct upid u, sentinel;
		size_t where = SIZE_MAX;
		int r;

		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		if (*line == '\0' || *line == '#')
			continue;
		tab1 = strchr(line, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (!tab1 || !tab2 || strchr(tab2 + 1, '\t')) {
			t_failf(__FILE__, __LINE__, "%s:%d: want 3 TAB-separated columns", CASES_PATH, lineno);
			continue;
		}
		*tab1 = '\0';
		*tab2 = '\0';
		n = unescape(tab1 + 1, (size_t)(tab2 - tab1 - 1), upid, sizeof upid);
		if (n < 0) {
			t_failf(__FILE__, __LINE__, "%s:%d: bad escape in UPID", CASES_PATH, lineno);
			continue;
		}
		memset(&u, 0xA5, sizeof u);
		memset(&sentinel, 0xA5, sizeof sentinel);
		r = parse_exact(upid, (size_t)n, &u, &where);
		if (strcmp(line, "valid") == 0) {
			nvalid++;
			if (r != FH_OK) {
				t_failf(__FILE__, __LINE__, "%s:%d: valid case rejected (%s at %zu): %s",
					CASES_PATH, lineno, t_errname(r), where, show(upid, (size_t)n));
				continue;
			}
			T_EQ_INT(where, SIZE_MAX);  /* untouched on success */
			check_expected(&u, tab2 + 1, lineno);
		} else if (strcmp(line, "invalid") == 0) {
			ninvalid++;
			if (tab2[1] == '\0')
				t_failf(__FILE__, __LINE__, "%s:%d: invalid case without a reason", CASES_PATH, lineno);
			if (r != FH_ERR_UPID) {
				t_failf(__FILE__, __LINE__, "%s:%d: invalid case (%s) returned %d: %s",
					CASES_PATH, lineno, tab2 + 1, r, show(upid, (size_t)n));
				continue;
			}
			if (memcmp(&u, &sentinel, sizeof u) != 0)
				t_failf(__FILE__, __LINE__, "%s:%d: output touched on error", CASES_PATH, lineno);
			if (where > (size_t)n)
				t_failf(__FILE__, __LINE__, "%s:%d: where %zu beyond input length %ld",
					CASES_PATH, lineno, where, n);
		} else {
			t_failf(__FILE__, __LINE__, "%s:%d: unknown kind \"%s\"", CASES_PATH, lineno, line);
		}
	}
	free(text);
	printf("  %s: %d valid, %d invalid\n", CASES_PATH, nvalid, ninvalid);
	T_CHECK(nvalid + ninvalid >= MIN_CASES);
	T_CHECK(ninvalid >= MIN_INVALID);
	T_CHECK(nvalid >= 1);
}

/* ---- direct tests ----------------------------------------------------- */

#define BASE "UPID:example-node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam:"

T_TEST(example_fields)
{
	struct upid u;

	T_OK(upid_parse(BASE, strlen(BASE), &u, NULL));
	T_EQ_STR(u.node, "example-node");
	T_EQ_INT(u.pid, 0xC346);
	T_EQ_INT(u.pstart, 0x165A0CE4);
	T_EQ_INT(u.starttime, 0x68D7279C);
	T_EQ_STR(u.type, "aptupdate");
	T_EQ_STR(u.id, "");
	T_EQ_STR(u.user, "root@pam");
	T_EQ_STR(u.tokenid, "");
}

struct where_case {
	const char *s;
	size_t n;        /* 0: strlen(s) */
	size_t where;
};

T_TEST(where_offsets)
{
	static const struct where_case cases[] = {
		{ "", 0, 0 },
		{ "upid:example-node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 0 },
		{ "UPID", 0, 4 },
		/* missing trailing colon: input ends where ':' was expected */
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam", 0, 64 },
		{ "UPID::0000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 5 },
		{ "UPID:example.node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 12 },
		{ "UPID:example-:0000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 13 },
		{ "UPID:-x:0000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 5 },
		/* 7-hex pid: the ':' where the 8th digit belongs */
		{ "UPID:example-node:000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 25 },
		/* 9-hex pid: the 9th digit */
		{ "UPID:example-node:00000C346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 26 },
		{ "UPID:example-node:0000G346:165A0CE4:68D7279C:aptupdate::root@pam:", 0, 22 },
		{ "UPID:example-node:0000C346:65A0CE4:68D7279C:aptupdate::root@pam:", 0, 34 },
		{ "UPID:example-node:0000C346:00165A0CE4:68D7279C:aptupdate::root@pam:", 0, 36 },
		{ "UPID:example-node:0000C346:165A0CE4:8D7279C:aptupdate::root@pam:", 0, 43 },
		{ "UPID:example-node:0000C346:165A0CE4:068D7279C:aptupdate::root@pam:", 0, 44 },
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C:apt/update::root@pam:", 0, 48 },
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C:apt update::root@pam:", 0, 48 },
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C::100:root@pam:", 0, 45 },
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C:vzdump:100::", 0, 56 },
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C:vzdump:100:root@pam:extra:", 0, 65 },
		{ "UPID:example-node:0000C346:165A0CE4:68D7279C:vzdump:1\0" "00:root@pam:", 67, 53 },
		{ BASE "\n", 0, 65 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct where_case *c = &cases[i];
		size_t n = c->n ? c->n : strlen(c->s);
		size_t where = SIZE_MAX;
		struct upid u;
		int r = parse_exact(c->s, n, &u, &where);

		if (r != FH_ERR_UPID || where != c->where)
			t_failf(__FILE__, __LINE__, "case %zu \"%s\": r=%d where=%zu, want %zu",
				i, show(c->s, n), r, where, c->where);
	}
}

/* Builds "UPID:a:00000001:00000002:00000003:x::" + user + ":" into buf. */
static size_t with_user(char *buf, size_t cap, const char *user_head, char fill, size_t nfill,
			const char *user_tail)
{
	size_t o = (size_t)snprintf(buf, cap, "UPID:a:00000001:00000002:00000003:x::%s", user_head);

	memset(buf + o, fill, nfill);
	o += nfill;
	o += (size_t)snprintf(buf + o, cap - o, "%s:", user_tail);
	return o;
}

T_TEST(length_limits)
{
	char buf[UPID_MAX + 64];
	struct upid u;
	size_t n, where;

	/* node: 63 fits, 64th byte (offset 5 + 63) does not */
	memcpy(buf, "UPID:", 5);
	memset(buf + 5, 'n', 63);
	n = 68 + (size_t)snprintf(buf + 68, sizeof buf - 68, ":00000001:00000002:00000003:x::u:");
	T_OK(parse_exact(buf, n, &u, NULL));
	T_EQ_INT(strlen(u.node), 63);
	memset(buf + 5, 'n', 64);
	n = 69 + (size_t)snprintf(buf + 69, sizeof buf - 69, ":00000001:00000002:00000003:x::u:");
	where = 0;
	T_ERR(parse_exact(buf, n, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, 68);

	/* user starts at offset 37; 191 fits, byte 192 (offset 37 + 191) does not */
	n = with_user(buf, sizeof buf, "", 'u', 191, "");
	T_OK(parse_exact(buf, n, &u, NULL));
	T_EQ_INT(strlen(u.user), 191);
	n = with_user(buf, sizeof buf, "", 'u', 192, "");
	T_ERR(parse_exact(buf, n, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, 37 + 191);

	/* tokenid starts at 43 ("u@pve!" at 37); 63 fits, 64th byte does not */
	n = with_user(buf, sizeof buf, "u@pve!", 'k', 63, "");
	T_OK(parse_exact(buf, n, &u, NULL));
	T_EQ_INT(strlen(u.tokenid), 63);
	T_EQ_INT(strlen(u.user), 69);
	n = with_user(buf, sizeof buf, "u@pve!", 'k', 64, "");
	T_ERR(parse_exact(buf, n, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, 43 + 63);
	/* a long segment before the LAST '!' is not the token */
	n = with_user(buf, sizeof buf, "u@pve!", 'k', 100, "!t");
	T_OK(parse_exact(buf, n, &u, NULL));
	T_EQ_STR(u.tokenid, "t");

	/* UPID_MAX: 512 bytes are parsed (and fail at the first garbage byte,
	 * offset 39); 513 are refused at offset UPID_MAX without parsing. */
	n = (size_t)snprintf(buf, sizeof buf, "UPID:a:00000001:00000002:00000003:x::u:");
	T_EQ_INT(n, 39);
	memset(buf + n, 'x', sizeof buf - n);
	T_ERR(parse_exact(buf, UPID_MAX, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, 39);
	T_ERR(parse_exact(buf, UPID_MAX + 1, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, UPID_MAX);
	memcpy(buf, "garbage", 7);
	T_ERR(parse_exact(buf, UPID_MAX + 1, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, UPID_MAX);
}

T_TEST(output_untouched_on_error)
{
	static const char *const bad[] = {
		"UPID:example-node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam",
		"UPID:example-node:0000C346:165A0CE4:68D7279C:aptupdate::root@pam::",
		/* tokenid of 65 bytes */
		"UPID:example-node:0000C346:165A0CE4:68D7279C:aptupdate::u@pve!kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk:",
		"UPID:example-node:0000C346:165A0CE4:68D7279C:vzdump:100:root@pam/x:",
	};
	struct upid u, before;
	size_t i, where;

	/* first a good parse, so the struct holds real values */
	T_OK(upid_parse(BASE, strlen(BASE), &u, NULL));
	before = u;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		where = SIZE_MAX;
		T_ERR(upid_parse(bad[i], strlen(bad[i]), &u, &where), FH_ERR_UPID);
		T_CHECK(where != SIZE_MAX);
		T_CHECK(memcmp(&u, &before, sizeof u) == 0);
		/* where may be NULL */
		T_ERR(upid_parse(bad[i], strlen(bad[i]), &u, NULL), FH_ERR_UPID);
		T_CHECK(memcmp(&u, &before, sizeof u) == 0);
	}
}

T_TEST(edges)
{
	struct upid u;
	size_t where = 7;
	char buf[128];

	/* where is untouched on success */
	T_OK(upid_parse(BASE, strlen(BASE), &u, &where));
	T_EQ_INT(where, 7);
	/* NULL input with n == 0 is the empty input */
	T_ERR(upid_parse(NULL, 0, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, 0);
	T_ERR(upid_parse(BASE, strlen(BASE), NULL, &where), FH_ERR_INVAL);
	/* only s[0..n) is read: a valid prefix of a longer buffer parses */
	snprintf(buf, sizeof buf, "%sTRAILING", BASE);
	T_OK(upid_parse(buf, strlen(BASE), &u, NULL));
	T_EQ_STR(u.user, "root@pam");
	/* a prefix of a valid UPID fails at its end */
	T_ERR(upid_parse(BASE, 30, &u, &where), FH_ERR_UPID);
	T_EQ_INT(where, 30);
}

/* ---- differential test against the pve-common regex ---------------------
 *
 * Reference: PVE::Tools::upid_decode's regex as POSIX ERE, plus what the C
 * API adds: at most UPID_MAX bytes, no NUL, and every field fits its slot.
 */

static regex_t g_re;
static int g_re_ok;

static const char RE[] =
	"^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
	"([0-9A-Fa-f]{8}):([^:[:space:]/]+):([^:[:space:]/]*):([^:[:space:]/]+):$";

/* 1 and *ref filled if the reference accepts s[0..n). */
static int ref_parse(const char *s, size_t n, struct upid *ref)
{
	char buf[UPID_MAX + 1];
	regmatch_t m[9];
	const char *bang;
	size_t len[9];
	int i;

	if (n > UPID_MAX || memchr(s, '\0', n))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (regexec(&g_re, buf, 9, m, 0) != 0)
		return 0;
	for (i = 0; i < 9; i++)
		len[i] = m[i].rm_so < 0 ? 0 : (size_t)(m[i].rm_eo - m[i].rm_so);
	if (len[1] >= sizeof ref->node || len[6] >= sizeof ref->type ||
	    len[7] >= sizeof ref->id || len[8] >= sizeof ref->user)
		return 0;
	memset(ref, 0, sizeof *ref);
	memcpy(ref->node, buf + m[1].rm_so, len[1]);
	memcpy(ref->type, buf + m[6].rm_so, len[6]);
	memcpy(ref->id, buf + m[7].rm_so, len[7]);
	memcpy(ref->user, buf + m[8].rm_so, len[8]);
	buf[m[3].rm_eo] = buf[m[4].rm_eo] = buf[m[5].rm_eo] = '\0';
	ref->pid = (uint32_t)strtoul(buf + m[3].rm_so, NULL, 16);
	ref->pstart = strtoull(buf + m[4].rm_so, NULL, 16);
	ref->starttime = (uint32_t)strtoul(buf + m[5].rm_so, NULL, 16);
	bang = strrchr(ref->user, '!');
	if (bang) {
		if (strlen(bang + 1) >= sizeof ref->tokenid)
			return 0;
		strcpy(ref->tokenid, bang + 1);
	}
	return 1;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd_u32(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return (uint32_t)(g_rng >> 32);
}

static uint32_t rnd(uint32_t bound)
{
	return rnd_u32() % bound;
}

static int same(const struct upid *a, const struct upid *b)
{
	return strcmp(a->node, b->node) == 0 && a->pid == b->pid && a->pstart == b->pstart &&
	       a->starttime == b->starttime && strcmp(a->type, b->type) == 0 &&
	       strcmp(a->id, b->id) == 0 && strcmp(a->user, b->user) == 0 &&
	       strcmp(a->tokenid, b->tokenid) == 0;
}

/* Runs both parsers on s[0..n); 0 if they agree. */
static int compare_one(const char *s, size_t n)
{
	struct upid a, b;
	size_t where = SIZE_MAX;
	int r = parse_exact(s, n, &a, &where);
	int ok = ref_parse(s, n, &b);

	if ((r == FH_OK) != ok) {
		t_failf(__FILE__, __LINE__, "upid_parse %s, reference %s: \"%s\"",
			r == FH_OK ? "accepts" : "rejects", ok ? "accepts" : "rejects", show(s, n));
		return 1;
	}
	if (ok && !same(&a, &b)) {
		t_failf(__FILE__, __LINE__, "fields differ from the reference: \"%s\"", show(s, n));
		return 1;
	}
	if (!ok && where > n) {
		t_failf(__FILE__, __LINE__, "where %zu > n %zu: \"%s\"", where, n, show(s, n));
		return 1;
	}
	return 0;
}

static const char seeds[][UPID_MAX] = {
	BASE,
	"UPID:example-node:000934AF:0D015579:68BF3A41:vzdump:100:91a1da29-a47d-11f0-84e0-fafbfc944d00@pam!some-token:",
	"UPID:example-node:000934AF:FFFFFFFFF:68BF3A41:fake-but-valid-type:100:root@pam:",
	"UPID:pve1:0000c346:165a0ce4:68d7279c:vzstart:101:felhom@pve!agent:",
	"UPID:a:00000000:00000000:00000000:x::u:",
};

/* bytes that matter to the grammar, picked more often than random ones */
static const char interesting[] = ":/!@-. \t\n\v\f\r\0aAzZ09fFgGx\x7f\x80\xff";

T_TEST(differential_mutations)
{
	char buf[UPID_MAX + 16];
	size_t s, iter;
	int fails = 0, accepted = 0;

	T_CHECK(g_re_ok);
	if (!g_re_ok)
		return;
	for (s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
		fails += compare_one(seeds[s], strlen(seeds[s]));
	for (iter = 0; iter < 200000 && fails < 5; iter++) {
		const char *seed = seeds[rnd(sizeof seeds / sizeof seeds[0])];
		size_t n = strlen(seed), k, muts = 1 + rnd(3);

		memcpy(buf, seed, n);
		for (k = 0; k < muts && n > 0; k++) {
			size_t at = rnd((uint32_t)n);
			char c = rnd(2) ? interesting[rnd(sizeof interesting - 1)] : (char)rnd(256);

			switch (rnd(4)) {
			case 0:         /* replace */
				buf[at] = c;
				break;
			case 1:         /* insert */
				if (n < sizeof buf - 1) {
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = c;
					n++;
				}
				break;
			case 2:         /* delete */
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			default:        /* truncate */
				n = at;
				break;
			}
		}
		if (compare_one(buf, n) == 0) {
			struct upid u;

			if (upid_parse(buf, n, &u, NULL) == FH_OK)
				accepted++;
		} else {
			fails++;
		}
	}
	printf("  %zu mutations, %d accepted\n", iter, accepted);
	T_EQ_INT(fails, 0);
	T_CHECK(accepted > 0);
}

static void rand_field(char *dst, size_t len, const char *alphabet)
{
	size_t i, na = strlen(alphabet);

	for (i = 0; i < len; i++)
		dst[i] = alphabet[rnd((uint32_t)na)];
	dst[len] = '\0';
}

/* Random well-formed UPIDs (fields up to and a little past their limits),
 * encoded the way pve-common does, in upper or lower case. */
T_TEST(differential_generated)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static const char fch[] = "abcxyzABC019-_.@=!;\\~\x01\x7f\x80\xfe";
	char node[80], type[80], id[80], user[220], buf[1024];
	size_t iter;
	int fails = 0, accepted = 0;

	T_CHECK(g_re_ok);
	if (!g_re_ok)
		return;
	for (iter = 0; iter < 50000 && fails < 5; iter++) {
		size_t nl = 1 + rnd(66);
		uint32_t pid = rnd_u32(), st = rnd_u32();
		uint64_t pstart = rnd(2) ? rnd_u32() : (uint64_t)rnd_u32() << 4 | rnd(16);
		int lower = (int)rnd(2), n;

		rand_field(node, nl, rnd(4) ? alnum : "a-");
		if (nl > 1 && rnd(2))
			node[1 + rnd((uint32_t)nl - 1)] = '-';
		rand_field(type, 1 + rnd(66), fch);
		rand_field(id, rnd(67), fch);
		rand_field(user, 1 + rnd(rnd(2) ? 70 : 195), fch);
		n = snprintf(buf, sizeof buf,
			     lower ? "UPID:%s:%08" PRIx32 ":%08" PRIx64 ":%08" PRIx32 ":%s:%s:%s:"
				   : "UPID:%s:%08" PRIX32 ":%08" PRIX64 ":%08" PRIX32 ":%s:%s:%s:",
			     node, pid, pstart, st, type, id, user);
		if (compare_one(buf, (size_t)n) == 0) {
			struct upid u;

			if (upid_parse(buf, (size_t)n, &u, NULL) == FH_OK)
				accepted++;
		} else {
			fails++;
		}
	}
	printf("  %zu generated, %d accepted\n", iter, accepted);
	T_EQ_INT(fails, 0);
	T_CHECK(accepted > 1000);
}

int main(void)
{
	g_re_ok = regcomp(&g_re, RE, REG_EXTENDED) == 0;
	T_RUN(golden_cases);
	T_RUN(example_fields);
	T_RUN(where_offsets);
	T_RUN(length_limits);
	T_RUN(output_untouched_on_error);
	T_RUN(edges);
	T_RUN(differential_mutations);
	T_RUN(differential_generated);
	if (g_re_ok)
		regfree(&g_re);
	return t_done();
}
