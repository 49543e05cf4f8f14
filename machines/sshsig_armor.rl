/* sshsig_armor.rl — the SSHSIG armor (PROTOCOL.sshsig §1) parsed and
 * base64-decoded in one pass; see include/sig.h for the policy.
 *
 * ragel -G2 -C -I machines -o gen/sshsig_armor.c machines/sshsig_armor.rl
 *
 * The machine is fed bytes: its state (cs) and the partial base64 quantum
 * live in struct sig_armor, so input may arrive in pieces split anywhere.
 * The grammar fixes the shape (header at byte 0, LF/CRLF, alphabet,
 * whitespace, at most two '=' with nothing but whitespace after them,
 * footer right after a LF, only whitespace after the footer); the actions
 * decode and check what a regular grammar should not count: the padding
 * against the number of base64 characters and the unused bits. The size
 * cap is enforced before the machine runs. Every failure is sticky and
 * records the offset of the first bad byte.
 *
 * Tests: test/test_sig.c (armor cases), vectors/sshsig/ (armor_* cases),
 * test/fuzz_sshsig_armor.c (against a plain reference decoder, and split
 * feeding against one-shot feeding).
 */
#include "sig.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

%%{
	machine sshsig_armor;
	access a->;

	action b64 {
		if (put_sextet(a, fc) != 0) {
			a->where = base + (size_t)(fpc - data);
			fbreak;
		}
	}
	action pad { a->npad++; }
	# First byte of the footer: the body is complete, settle the padding.
	action body_end {
		if (end_body(a) != 0) {
			a->where = base + (size_t)(fpc - data);
			fbreak;
		}
	}

	ws     = [ \t\n\v\f\r];
	b64c   = [A-Za-z0-9+/];
	body   = ( b64c $b64 | ws )* ( '=' $pad ws* ( '=' $pad ws* )? )?;

	main := '-----BEGIN SSH SIGNATURE-----' '\r'? '\n'
		body '\n'
		( '-----END SSH SIGNATURE-----' >body_end )
		ws*;

	write data noerror nofinal noentry;
}%%

static const char HEADER[] = "-----BEGIN SSH SIGNATURE-----";

static int fail(struct sig_armor *a, const char *reason)
{
	a->err = FH_ERR_SIG_MALFORMED;
	a->reason = reason;
	return a->err;
}

/* Value of a base64 character the grammar already checked. */
static uint32_t b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (uint32_t)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (uint32_t)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (uint32_t)(c - '0' + 52);
	return c == '+' ? 62u : 63u;
}

static int put_sextet(struct sig_armor *a, char c)
{
	uint8_t o[3];

	a->quad = (a->quad << 6) | b64val(c);
	if (++a->nq < 4)
		return 0;
	o[0] = (uint8_t)(a->quad >> 16);
	o[1] = (uint8_t)(a->quad >> 8);
	o[2] = (uint8_t)a->quad;
	a->quad = 0;
	a->nq = 0;
	if (buf_append(a->out, o, sizeof o) != 0)
		return fail(a, "armor: decoded signature too large");
	return 0;
}

/* "xx==" carries one byte (4 unused bits), "xxx=" two (2 unused bits);
 * with no padding the characters must come in whole quanta. */
static int end_body(struct sig_armor *a)
{
	uint8_t o[2];

	if (a->npad == 0 && a->nq == 0)
		return 0;
	if (a->npad == 0)
		return fail(a, "armor: base64 padding missing");
	if (a->npad == 2 && a->nq == 2) {
		if (a->quad & 0xf)
			return fail(a, "armor: non-zero unused bits before padding");
		o[0] = (uint8_t)(a->quad >> 4);
		if (buf_append(a->out, o, 1) != 0)
			return fail(a, "armor: decoded signature too large");
		return 0;
	}
	if (a->npad == 1 && a->nq == 3) {
		if (a->quad & 0x3)
			return fail(a, "armor: non-zero unused bits before padding");
		o[0] = (uint8_t)(a->quad >> 10);
		o[1] = (uint8_t)(a->quad >> 2);
		if (buf_append(a->out, o, 2) != 0)
			return fail(a, "armor: decoded signature too large");
		return 0;
	}
	return fail(a, "armor: wrong base64 padding");
}

void sig_armor_init(struct sig_armor *a, struct buf *out)
{
	memset(a, 0, sizeof *a);
	a->out = out;
	%% write init;
}

int sig_armor_feed(struct sig_armor *a, const char *data, size_t n)
{
	const char *p, *pe;
	size_t base;

	if (a->err)
		return a->err;
	if (n > SIG_ARMOR_MAX - a->fed) {
		a->where = SIG_ARMOR_MAX;
		return fail(a, "armor: over 16384 bytes");
	}
	if (n == 0)
		return 0;
	base = a->fed;
	p = data;
	pe = data + n;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
	%% write exec;
#pragma GCC diagnostic pop

	if (a->err)
		return a->err;
	if (a->cs == %%{ write error; }%%) {
		a->where = base + (size_t)(p - data);
		if (a->where < sizeof HEADER)
			return fail(a, "armor: must start with " "-----BEGIN SSH SIGNATURE----- and a newline");
		return fail(a, "armor: unexpected byte");
	}
	a->fed += n;
	return 0;
}

int sig_armor_finish(struct sig_armor *a)
{
	if (a->err)
		return a->err;
	if (a->cs < %%{ write first_final; }%%) {
		a->where = a->fed;
		return fail(a, "armor: input ends before -----END SSH SIGNATURE-----");
	}
	return 0;
}

int sig_dearmor(const char *armor, size_t n, struct buf *out, size_t *where,
		char *why, size_t whylen)
{
	struct sig_armor a;
	size_t start = out->len;
	int r;

	sig_armor_init(&a, out);
	r = sig_armor_feed(&a, armor, n);
	if (r == 0)
		r = sig_armor_finish(&a);
	if (r != 0) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		if (where)
			*where = a.where;
		if (why && whylen)
			snprintf(why, whylen, "%s (offset %zu)", a.reason, a.where);
	}
	return r;
}
