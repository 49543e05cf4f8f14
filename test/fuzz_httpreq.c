/* fuzz_httpreq.c — libFuzzer target for the local API's request machine
 * (machines/http_request.rl). `make fuzz` runs it; make check replays
 * vectors/fuzz/httpreq/ through test/fuzz_replay.c.
 *
 * The first input byte picks how the rest is cut into pieces (whole, one
 * byte at a time, or pieces of 2..255 bytes). Besides memory errors, every
 * input is checked against:
 *  - feeding whole and feeding in pieces agree on the result, the bytes
 *    consumed and the fields;
 *  - *used never passes what was given; an error has a 4xx/5xx status and a
 *    reason, and is sticky;
 *  - on success the fields hold their invariants (NUL-terminated, within
 *    their caps, path_len <= target_len, body_len == content_length).
 * Any mismatch aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct httpreq whole, pieces;

/* Runs one request through r with pieces of `step` bytes (0 = whole). */
static int run(struct httpreq *r, const char *s, size_t n, size_t step, size_t *consumed)
{
	size_t off = 0, used;
	int rc = HTTPREQ_MORE;

	httpreq_init(r);
	for (;;) {
		size_t len = n - off;

		if (step && len > step)
			len = step;
		rc = httpreq_feed(r, s + off, len, &used);
		if (used > len)
			abort();
		off += used;
		if (rc == HTTPREQ_HEAD)
			continue;
		if (rc != HTTPREQ_MORE || off >= n)
			break;
		if (used != len)
			abort();
	}
	*consumed = off;
	return rc;
}

static void check_fields(const struct httpreq *r)
{
	if (memchr(r->method, '\0', sizeof r->method) == NULL || strlen(r->method) == 0)
		abort();
	if (r->target_len > HTTPREQ_TARGET_MAX || strlen(r->target) != r->target_len || r->target[0] != '/')
		abort();
	if (r->path_len > r->target_len)
		abort();
	if (r->version != 10 && r->version != 11)
		abort();
	if (r->has_auth && (r->auth_len > HTTPREQ_AUTH_MAX || strlen(r->auth) != r->auth_len))
		abort();
	if (r->nheaders > HTTPREQ_HEADERS_MAX)
		abort();
	if (r->body_len > HTTPREQ_BODY_MAX || r->body_len != (r->has_content_length ? r->content_length : 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s;
	size_t n, step, c1, c2, used;
	int r1, r2;

	if (size == 0)
		return 0;
	step = data[0] == 0 ? 0 : data[0] == 1 ? 1 : data[0];
	s = (const char *)data + 1;
	n = size - 1;
	r1 = run(&whole, s, n, 0, &c1);
	r2 = run(&pieces, s, n, step, &c2);
	if (r1 != r2) {
		fprintf(stderr, "whole %d vs pieces(%zu) %d\n", r1, step, r2);
		abort();
	}
	if (r1 < 0) {
		if (r1 != FH_ERR_DECODE || whole.status < 400 || whole.status > 599 || !whole.reason ||
		    whole.status != pieces.status || strcmp(whole.reason, pieces.reason) != 0)
			abort();
		if (httpreq_feed(&whole, "x", 1, &used) != r1 || used != 0)
			abort();
		return 0;
	}
	if (r1 == HTTPREQ_DONE) {
		if (c1 != c2)
			abort();
		check_fields(&whole);
		if (strcmp(whole.method, pieces.method) || strcmp(whole.target, pieces.target) ||
		    whole.has_auth != pieces.has_auth || strcmp(whole.auth, pieces.auth) ||
		    whole.keep_alive != pieces.keep_alive || whole.body_len != pieces.body_len ||
		    memcmp(whole.body, pieces.body, whole.body_len) != 0)
			abort();
	}
	return 0;
}
