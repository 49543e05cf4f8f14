/* fuzz_upid.c — libFuzzer target for upid_parse(). Not built by make.
 *
 *   ragel -G2 -C -I machines -o gen/upid.c machines/upid.rl
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Igen \
 *         gen/upid.c src/err.c test/fuzz_upid.c -o build/fuzz_upid
 *   mkdir -p /tmp/upid-corpus && printf '%s' \
 *     'UPID:example-node:000934AF:0D015579:68BF3A41:vzdump:100:u@pam!tok:' \
 *     > /tmp/upid-corpus/seed1
 *   build/fuzz_upid -max_total_time=60 -max_len=600 /tmp/upid-corpus
 *
 * (The minimal line is `clang -fsanitize=fuzzer,address -Iinclude -Igen
 * gen/upid.c src/err.c test/fuzz_upid.c`.) libFuzzer reads every file of a
 * corpus directory as one input, so a fresh directory seeded with a few
 * UPIDs is a better start than vectors/upid itself.
 *
 * Besides memory errors, every input is checked against:
 *  - the pve-common regex (POSIX ERE) plus the C API's limits (UPID_MAX, no
 *    NUL, each field fits its slot): both must accept or reject alike;
 *  - on success: fields re-encode to the input (hex case aside), tokenid is
 *    the part of user after its last '!', strings are terminated in their
 *    slots;
 *  - on failure: FH_ERR_UPID, *out untouched, *where set and <= size.
 * Any mismatch aborts.
 */
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "upid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char RE[] =
	"^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
	"([0-9A-Fa-f]{8}):([^:[:space:]/]+):([^:[:space:]/]*):([^:[:space:]/]+):$";

static regex_t re;
static int re_ready;

static int ref_accepts(const char *s, size_t n)
{
	char buf[UPID_MAX + 1];
	regmatch_t m[9];
	const char *bang;

	if (n > UPID_MAX || memchr(s, '\0', n))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (regexec(&re, buf, 9, m, 0) != 0)
		return 0;
	if (m[1].rm_eo - m[1].rm_so > 63 || m[6].rm_eo - m[6].rm_so > 63 ||
	    m[7].rm_eo - m[7].rm_so > 63 || m[8].rm_eo - m[8].rm_so > 191)
		return 0;
	buf[m[8].rm_eo] = '\0';
	bang = strrchr(buf + m[8].rm_so, '!');
	return !bang || strlen(bang + 1) <= 63;
}

static int terminated(const char *f, size_t cap)
{
	return memchr(f, '\0', cap) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct upid u, sentinel;
	size_t where = SIZE_MAX;
	int r, ref;

	if (!re_ready) {
		if (regcomp(&re, RE, REG_EXTENDED) != 0)
			abort();
		re_ready = 1;
	}
	memset(&u, 0x5A, sizeof u);
	memset(&sentinel, 0x5A, sizeof sentinel);
	r = upid_parse(s, size, &u, &where);
	ref = ref_accepts(s, size);
	if ((r == FH_OK) != ref) {
		fprintf(stderr, "upid_parse=%d, reference=%d\n", r, ref);
		abort();
	}
	if (r != FH_OK) {
		if (r != FH_ERR_UPID || where > size || memcmp(&u, &sentinel, sizeof u) != 0)
			abort();
		return 0;
	}
	if (where != SIZE_MAX)
		abort();
	if (!terminated(u.node, sizeof u.node) || !terminated(u.type, sizeof u.type) ||
	    !terminated(u.id, sizeof u.id) || !terminated(u.user, sizeof u.user) ||
	    !terminated(u.tokenid, sizeof u.tokenid))
		abort();
	{
		const char *bang = strrchr(u.user, '!');

		if (strcmp(u.tokenid, bang ? bang + 1 : "") != 0)
			abort();
	}
	{
		char enc[UPID_MAX * 2];
		int w, n, match = 0;

		for (w = 8; w <= 9; w++) {
			n = snprintf(enc, sizeof enc, "UPID:%s:%08X:%0*llX:%08X:%s:%s:%s:",
				     u.node, (unsigned)u.pid, w, (unsigned long long)u.pstart,
				     (unsigned)u.starttime, u.type, u.id, u.user);
			if (n > 0 && (size_t)n == size && strncasecmp(enc, s, size) == 0)
				match = 1;
		}
		if (!match)
			abort();
	}
	return 0;
}
