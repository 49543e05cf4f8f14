/* upid.rl — Proxmox UPID parser (see include/upid.h for the grammar).
 *
 * ragel -G2 -C -I machines -o gen/upid.c machines/upid.rl
 *
 * The machine checks only the shape of each field; lengths are counted in
 * the actions (a {1,N} repetition would cost about N states per field) and
 * hex is decoded there too. Every failure records the offset of the first
 * byte that is wrong (or, for a field too long for its slot in struct upid,
 * the first byte that does not fit) and stops the machine. Fields are
 * collected in a local struct and copied to *out only after the whole input
 * was accepted, so *out is untouched on error.
 *
 * Tests: test/test_upid.c (vectors/upid/cases.txt and a differential test
 * against the pve-common regex), test/fuzz_upid.c, test/bench_upid.c.
 */
#include "upid.h"

#include <stdint.h>
#include <string.h>

#include "err.h"

%%{
	machine upid;

	# A failing action records fpc (or another offset) in fail_at and stops
	# the machine with fbreak.
	action node_c {
		if (!put(u.node, sizeof u.node, &len, fc)) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
	}
	action type_c {
		if (!put(u.type, sizeof u.type, &len, fc)) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
	}
	action id_c {
		if (!put(u.id, sizeof u.id, &len, fc)) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
	}
	action user_c {
		if (fc == '!')
			bang = len;    /* index of the last '!' seen so far */
		if (!put(u.user, sizeof u.user, &len, fc)) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
	}

	# Hex digits: at most 8 (pid, starttime) or 9 (pstart), counted here.
	action hex8_c {
		if (len == 8) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
		val = (val << 4) | hexval(fc);
		len++;
	}
	action hex9_c {
		if (len == 9) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
		val = (val << 4) | hexval(fc);
		len++;
	}

	# The ':' ending each field: final length checks, store, reset counters.
	action node_end { len = 0; }
	action pid_end {
		if (len != 8) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
		u.pid = (uint32_t)val;
		len = 0;
		val = 0;
	}
	action pstart_end {
		if (len < 8) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
		u.pstart = val;
		len = 0;
		val = 0;
	}
	action start_end {
		if (len != 8) {
			fail_at = (size_t)(fpc - s);
			fbreak;
		}
		u.starttime = (uint32_t)val;
		len = 0;
		val = 0;
	}
	action type_end { len = 0; }
	action id_end { len = 0; }
	action user_end {
		if (bang != SIZE_MAX) {
			size_t tlen = len - bang - 1;

			if (tlen >= sizeof u.tokenid) {
				/* first token byte that does not fit */
				fail_at = (size_t)(fpc - s) - tlen + (sizeof u.tokenid - 1);
				fbreak;
			}
			memcpy(u.tokenid, u.user + bang + 1, tlen);
		}
	}

	# Bytes allowed in TYPE, ID and USER: Perl's [^:\s/], minus NUL (which
	# cannot live in a C string). Ragel's `space` is [\t\n\v\f\r ], the same
	# set as Perl's \s on bytes.
	fchar  = any - ( ':' | '/' | space | 0 );
	node   = alnum ( ( alnum | '-' )* alnum )?;

	main := 'UPID:'
		node     $node_c  ':' @node_end
		xdigit+  $hex8_c  ':' @pid_end
		xdigit+  $hex9_c  ':' @pstart_end
		xdigit+  $hex8_c  ':' @start_end
		fchar+   $type_c  ':' @type_end
		fchar*   $id_c    ':' @id_end
		fchar+   $user_c  ':' @user_end;

	write data noerror nofinal noentry;
}%%

/* Appends c to a NUL-terminated slot of cap bytes; 0 if it does not fit. */
static int put(char *dst, size_t cap, size_t *len, char c)
{
	if (*len >= cap - 1)
		return 0;
	dst[(*len)++] = c;
	return 1;
}

/* Value of a hex digit the machine already checked. */
static uint64_t hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (uint64_t)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (uint64_t)(c - 'a' + 10);
	return (uint64_t)(c - 'A' + 10);
}

int upid_parse(const char *s, size_t n, struct upid *out, size_t *where)
{
	struct upid u;
	const char *p, *pe;
	size_t len = 0, bang = SIZE_MAX, fail_at = SIZE_MAX;
	uint64_t val = 0;
	int cs, done = 0;

	if (!out)
		return FH_ERR_INVAL;
	if (n > UPID_MAX) {
		if (where)
			*where = UPID_MAX;
		return FH_ERR_UPID;
	}
	if (!s || n == 0) {
		if (where)
			*where = 0;
		return FH_ERR_UPID;
	}
	memset(&u, 0, sizeof u);
	p = s;
	pe = s + n;

	%% write init;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
	%% write exec;
#pragma GCC diagnostic pop

	/* The only final state is the one after USER's ':' and it has no
	 * transitions, so reaching it with all input consumed is acceptance. */
	if (fail_at == SIZE_MAX && p == pe && cs >= %%{ write first_final; }%%)
		done = 1;
	if (!done) {
		if (where)
			*where = fail_at != SIZE_MAX ? fail_at : (size_t)(p - s);
		return FH_ERR_UPID;
	}
	*out = u;
	return FH_OK;
}
