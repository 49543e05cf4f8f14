/* fuzz_sshsig_armor.c — libFuzzer target for the SSHSIG armor machine
 * (machines/sshsig_armor.rl). `make fuzz` runs it; make check replays
 * vectors/fuzz/sshsig_armor/ through build/test_fuzz_sshsig_armor.
 *
 * Every input is parsed three ways, which must agree on the outcome and,
 * on success, on every decoded byte:
 *  - sig_dearmor() in one piece;
 *  - sig_armor_feed() in pieces whose sizes come from the input itself
 *    (so every split point gets exercised);
 *  - ref(), a plain loop written from the policy in include/sig.h.
 * On failure the caller's buffer must be untouched and *where inside the
 * input (or the cap). Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char HDR[] = "-----BEGIN SSH SIGNATURE-----";
static const char FTR[] = "-----END SSH SIGNATURE-----";

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int b64v(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The policy, spelled out: 0 and the decoded bytes, or -1. */
static int ref(const uint8_t *d, size_t n, uint8_t *out, size_t *outlen)
{
	size_t hl = sizeof HDR - 1, fl = sizeof FTR - 1, i, j, k, o = 0;
	unsigned nq = 0, npad = 0;
	uint32_t q = 0;

	if (n > SIG_ARMOR_MAX || n < hl || memcmp(d, HDR, hl) != 0)
		return -1;
	i = hl;
	if (i < n && d[i] == '\r')
		i++;
	if (i >= n || d[i] != '\n')
		return -1;
	i++;
	for (j = i; j < n && (b64v(d[j]) >= 0 || is_ws(d[j]) || d[j] == '='); j++)
		;
	if (j >= n || j == i || d[j - 1] != '\n' || n - j < fl || memcmp(d + j, FTR, fl) != 0)
		return -1;
	for (k = j + fl; k < n; k++)
		if (!is_ws(d[k]))
			return -1;
	for (k = i; k < j; k++) {
		int v = b64v(d[k]);

		if (is_ws(d[k]))
			continue;
		if (d[k] == '=') {
			if (++npad > 2)
				return -1;
			continue;
		}
		if (npad)
			return -1;
		q = q << 6 | (uint32_t)v;
		if (++nq == 4) {
			out[o++] = (uint8_t)(q >> 16);
			out[o++] = (uint8_t)(q >> 8);
			out[o++] = (uint8_t)q;
			q = 0;
			nq = 0;
		}
	}
	if (npad == 0 && nq != 0)
		return -1;
	if (npad == 1) {
		if (nq != 3 || (q & 3))
			return -1;
		out[o++] = (uint8_t)(q >> 10);
		out[o++] = (uint8_t)(q >> 2);
	}
	if (npad == 2) {
		if (nq != 2 || (q & 0xf))
			return -1;
		out[o++] = (uint8_t)(q >> 4);
	}
	*outlen = o;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t refout[SIG_ARMOR_MAX];
	const char *s = (const char *)data;
	struct buf one, pieces;
	struct sig_armor a;
	size_t where = SIZE_MAX, reflen = 0, off = 0;
	uint32_t seed = 2166136261u;
	char why[200];
	int r1, r2, r3;

	buf_init(&one, SIG_BLOB_MAX);
	buf_init(&pieces, SIG_BLOB_MAX);
	if (buf_append(&one, "pre", 3) != 0)
		abort();
	why[0] = '\0';
	r1 = sig_dearmor(s, size, &one, &where, why, sizeof why);
	if (r1 != 0 && r1 != FH_ERR_SIG_MALFORMED)
		abort();
	if (r1 != 0) {
		/* untouched buffer, a location, a reason */
		if (one.len != 3 || memcmp(one.data, "pre", 4) != 0 || where > (size > SIG_ARMOR_MAX ? SIG_ARMOR_MAX : size) ||
		    why[0] == '\0')
			abort();
	} else if (where != SIZE_MAX || one.len < 3 || memcmp(one.data, "pre", 3) != 0) {
		abort();
	}

	/* in pieces of 1..64 bytes chosen from the input */
	sig_armor_init(&a, &pieces);
	r2 = 0;
	while (off < size && r2 == 0) {
		size_t step;

		seed = (seed ^ data[off]) * 16777619u;
		step = 1 + (seed >> 7) % 64;
		if (step > size - off)
			step = size - off;
		r2 = sig_armor_feed(&a, s + off, step);
		off += step;
	}
	if (r2 == 0)
		r2 = sig_armor_finish(&a);
	if (size > SIG_ARMOR_MAX && r2 == 0)
		abort();

	r3 = ref(data, size, refout, &reflen) == 0 ? 0 : FH_ERR_SIG_MALFORMED;
	if (r1 != r2 || r1 != r3) {
		fprintf(stderr, "one-shot %d, pieces %d, reference %d\n", r1, r2, r3);
		abort();
	}
	if (r1 == 0) {
		if (one.len - 3 != reflen || pieces.len != reflen || memcmp(one.data + 3, refout, reflen) != 0 ||
		    memcmp(pieces.data ? pieces.data : "", refout, reflen) != 0)
			abort();
	}
	buf_free(&one);
	buf_free(&pieces);
	return 0;
}
