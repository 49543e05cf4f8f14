/* test_httpreq.c — the local API's request machine (machines/http_request.rl).
 *
 * Every case is fed three ways: whole, one byte at a time, and split at
 * every offset into two pieces; all must agree on the outcome and the
 * fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "harness.h"
#include "httpreq.h"

/* Feeds s in pieces of at most `step` bytes (0 = whole; `split` > 0 splits
 * once there instead). Returns the final result; *consumed the bytes used
 * up to DONE (or the error). Handles HTTPREQ_HEAD by feeding on. */
static int feed_pieces(struct httpreq *r, const char *s, size_t n, size_t step, size_t split,
		       size_t *consumed, int *saw_head)
{
	size_t off = 0, used;
	int rc = HTTPREQ_MORE;

	*saw_head = 0;
	httpreq_init(r);
	while (off < n || rc == HTTPREQ_HEAD) {
		size_t len = n - off;

		if (split)
			len = off < split ? split - off : n - off;
		else if (step && len > step)
			len = step;
		rc = httpreq_feed(r, s + off, len, &used);
		if (used > len)
			return -1000;
		off += used;
		if (rc == HTTPREQ_HEAD) {
			*saw_head = 1;
			continue;
		}
		if (rc != HTTPREQ_MORE)
			break;
		if (used != len)
			return -1001;
	}
	*consumed = off;
	return rc;
}

struct expect {
	int rc;            /* HTTPREQ_DONE, HTTPREQ_MORE or FH_ERR_DECODE */
	int status;
	const char *method, *target, *auth, *body;
	size_t path_len;
	int version;
	int keep_alive;    /* -1 don't check */
};

/* Runs one case all the ways; the whole-feed result is the reference. */
static void check_case(const char *name, const char *s, size_t n, const struct expect *e)
{
	static struct httpreq r;
	size_t consumed, ref_consumed = 0, k;
	int rc, head;

	for (k = 0; k <= n + 1; k++) {
		/* k == 0: whole; k == 1: byte by byte; k >= 2: split at k-1 */
		size_t step = k == 1 ? 1 : 0, split = k >= 2 ? k - 1 : 0;

		if (k >= 2 && split >= n)
			break;
		rc = feed_pieces(&r, s, n, step, split, &consumed, &head);
		if (rc != e->rc) {
			t_failf(__FILE__, __LINE__, "%s (k=%zu): rc %d want %d (status %d %s)", name, k, rc, e->rc,
				r.status, r.reason ? r.reason : "");
			return;
		}
		if (k == 0)
			ref_consumed = consumed;
		else if (rc == HTTPREQ_DONE && consumed != ref_consumed) {
			t_failf(__FILE__, __LINE__, "%s (k=%zu): consumed %zu want %zu", name, k, consumed, ref_consumed);
			return;
		}
		if (rc == FH_ERR_DECODE) {
			if (r.status != e->status || !r.reason || !*r.reason) {
				t_failf(__FILE__, __LINE__, "%s (k=%zu): status %d want %d", name, k, r.status, e->status);
				return;
			}
			continue;
		}
		if (rc != HTTPREQ_DONE)
			continue;
		if ((e->method && strcmp(r.method, e->method)) || (e->target && strcmp(r.target, e->target)) ||
		    (e->auth && (!r.has_auth || strcmp(r.auth, e->auth))) || (!e->auth && r.has_auth) ||
		    (e->version && r.version != e->version) ||
		    (e->keep_alive >= 0 && (int)r.keep_alive != e->keep_alive) ||
		    (e->path_len && r.path_len != e->path_len)) {
			t_failf(__FILE__, __LINE__, "%s (k=%zu): fields method=%s target=%s auth=%s v=%d ka=%d pl=%zu",
				name, k, r.method, r.target, r.has_auth ? r.auth : "-", r.version, r.keep_alive,
				r.path_len);
			return;
		}
		if (e->body && (r.body_len != strlen(e->body) || memcmp(r.body, e->body, r.body_len))) {
			t_failf(__FILE__, __LINE__, "%s (k=%zu): body", name, k);
			return;
		}
	}
}

#define CASE(name, str, ...) do { \
	static const char s_[] = str; \
	const struct expect e_ = { __VA_ARGS__ }; \
	check_case(name, s_, sizeof s_ - 1, &e_); } while (0)

T_TEST(t_simple_get)
{
	CASE("get", "GET /storage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc.def\r\n\r\n",
	     .rc = HTTPREQ_DONE, .method = "GET", .target = "/storage", .auth = "Bearer abc.def",
	     .version = 11, .keep_alive = 1, .path_len = 8);
	CASE("query", "GET /host/metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", .rc = HTTPREQ_DONE,
	     .target = "/host/metrics?x=1", .path_len = 13, .keep_alive = 1);
	CASE("ows", "GET / HTTP/1.1\r\nHost:x\r\nAuthorization: \t Bearer t \t \r\n\r\n", .rc = HTTPREQ_DONE,
	     .auth = "Bearer t", .keep_alive = 1);
	CASE("case-insensitive names", "GET / HTTP/1.1\r\nHOST: x\r\naUtHoRiZaTiOn: Bearer q\r\n\r\n",
	     .rc = HTTPREQ_DONE, .auth = "Bearer q", .keep_alive = 1);
	CASE("obs-text value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9 \x80\r\n\r\n", .rc = HTTPREQ_DONE,
	     .keep_alive = 1);
	CASE("empty value", "GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Sp:   \r\n\r\n", .rc = HTTPREQ_DONE,
	     .keep_alive = 1);
}

T_TEST(t_keep_alive)
{
	CASE("1.1 close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", .rc = HTTPREQ_DONE,
	     .keep_alive = 0);
	CASE("1.1 list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close ,bar\r\n\r\n", .rc = HTTPREQ_DONE,
	     .keep_alive = 0);
	CASE("1.0 default", "GET / HTTP/1.0\r\n\r\n", .rc = HTTPREQ_DONE, .version = 10, .keep_alive = 0);
	CASE("1.0 keep", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .rc = HTTPREQ_DONE, .version = 10,
	     .keep_alive = 1);
	CASE("long token", "GET / HTTP/1.1\r\nHost: x\r\nConnection: closeclosecloseclose\r\n\r\n",
	     .rc = HTTPREQ_DONE, .keep_alive = 1);
}

T_TEST(t_body)
{
	CASE("post {}", "POST /backup HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", .rc = HTTPREQ_DONE,
	     .method = "POST", .body = "{}", .keep_alive = 1);
	CASE("post empty", "POST /backup HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", .rc = HTTPREQ_DONE,
	     .body = "", .keep_alive = 1);
	CASE("post no length", "POST /backup HTTP/1.1\r\nHost: x\r\n\r\n", .rc = HTTPREQ_DONE, .body = "",
	     .keep_alive = 1);
	CASE("same cl twice", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	     .rc = HTTPREQ_DONE, .body = "abc", .keep_alive = 1);
	CASE("partial body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", .rc = HTTPREQ_MORE);
	CASE("conflicting cl", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
	     .rc = FH_ERR_DECODE, .status = 400);
	CASE("cl list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", .rc = FH_ERR_DECODE,
	     .status = 400);
	CASE("cl sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", .rc = FH_ERR_DECODE,
	     .status = 400);
	CASE("cl huge digits", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	     .rc = FH_ERR_DECODE, .status = 400);
	CASE("cl over cap", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8193\r\n\r\n", .rc = FH_ERR_DECODE,
	     .status = 413);
	CASE("chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	     .rc = FH_ERR_DECODE, .status = 501);
	CASE("expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
	     .rc = HTTPREQ_DONE, .body = "x", .keep_alive = 1);
	CASE("bad expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", .rc = FH_ERR_DECODE,
	     .status = 417);
}

T_TEST(t_head_then_body)
{
	static const char s[] = "POST /backup HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
				"Content-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\n";
	struct httpreq *r = malloc(sizeof *r);
	size_t used, head_len = strstr(s, "\r\n\r\n") + 4 - s;

	T_CHECK(r != NULL);
	if (!r)
		return;
	httpreq_init(r);
	T_EQ_INT(httpreq_feed(r, s, sizeof s - 1, &used), HTTPREQ_HEAD);
	T_EQ_INT(used, head_len);
	T_CHECK(r->expect_continue);
	T_EQ_INT(httpreq_feed(r, s + head_len, sizeof s - 1 - head_len, &used), HTTPREQ_DONE);
	T_EQ_INT(used, 4);
	T_EQ_INT(r->body_len, 4);
	T_CHECK(memcmp(r->body, "abcd", 4) == 0);
	/* done is sticky; the pipelined request is left for the next parse */
	T_EQ_INT(httpreq_feed(r, "x", 1, &used), HTTPREQ_DONE);
	T_EQ_INT(used, 0);
	httpreq_reset(r);
	T_EQ_INT(httpreq_feed(r, s + head_len + 4, sizeof s - 1 - head_len - 4, &used), HTTPREQ_MORE);
	T_EQ_INT(httpreq_feed(r, "Host: b\r\n\r\n", 11, &used), HTTPREQ_DONE);
	T_EQ_STR(r->method, "GET");
	free(r);
}

T_TEST(t_pipelined)
{
	static const char s[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	struct httpreq *r = malloc(sizeof *r);
	size_t used;

	T_CHECK(r != NULL);
	if (!r)
		return;
	httpreq_init(r);
	T_EQ_INT(httpreq_feed(r, s, sizeof s - 1, &used), HTTPREQ_DONE);
	T_EQ_STR(r->target, "/a");
	T_EQ_INT(used, (sizeof s - 1) / 2);
	httpreq_reset(r);
	T_EQ_INT(httpreq_feed(r, s + used, sizeof s - 1 - used, &used), HTTPREQ_DONE);
	T_EQ_STR(r->target, "/b");
	free(r);
}

T_TEST(t_syntax_errors)
{
	CASE("bare lf", "GET / HTTP/1.1\nHost: x\n\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("double space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("ctl in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x01\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("nul in target", "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("lower http", "GET / http/1.1\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("http2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("http 2.0 origin", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 505);
	CASE("http 1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", .rc = FH_ERR_DECODE, .status = 505);
	CASE("no host", "GET / HTTP/1.1\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("two auth", "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
	     .rc = FH_ERR_DECODE, .status = 400);
	CASE("leading crlf", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .rc = FH_ERR_DECODE, .status = 400);
	CASE("tls hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", .rc = FH_ERR_DECODE, .status = 400);
	CASE("incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", .rc = HTTPREQ_MORE);
}

/* Builds "GET /<n x 'a'> HTTP/1.1\r\nHost: x\r\n\r\n" etc. into a malloc'd string. */
static char *mk(const char *pre, size_t n, char fill, const char *post)
{
	size_t a = strlen(pre), b = strlen(post);
	char *s = malloc(a + n + b + 1);

	if (!s)
		abort();
	memcpy(s, pre, a);
	memset(s + a, fill, n);
	memcpy(s + a + n, post, b + 1);
	return s;
}

static int feed_whole(const char *s, struct httpreq *r)
{
	size_t used;

	httpreq_init(r);
	return httpreq_feed(r, s, strlen(s), &used);
}

T_TEST(t_limits)
{
	struct httpreq *r = malloc(sizeof *r);
	char *s;
	size_t i;
	struct buf_s { char *p; size_t n; } hb;

	T_CHECK(r != NULL);
	if (!r)
		return;
	/* target exactly at the cap: fine; one more: 400 */
	s = mk("GET /", HTTPREQ_TARGET_MAX - 1, 'a', " HTTP/1.1\r\nHost: x\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), HTTPREQ_DONE);
	T_EQ_INT(r->target_len, HTTPREQ_TARGET_MAX);
	free(s);
	s = mk("GET /", HTTPREQ_TARGET_MAX, 'a', " HTTP/1.1\r\nHost: x\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), FH_ERR_DECODE);
	T_EQ_INT(r->status, 400);
	free(s);
	/* a long method */
	s = mk("", HTTPREQ_METHOD_MAX + 1, 'G', " / HTTP/1.1\r\nHost: x\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), FH_ERR_DECODE);
	T_EQ_INT(r->status, 400);
	free(s);
	/* a request line of megabytes: stops at the line cap, not the end */
	s = mk("GET /", 1u << 20, 'b', "");
	{
		size_t used;
		httpreq_init(r);
		T_EQ_INT(httpreq_feed(r, s, strlen(s), &used), FH_ERR_DECODE);
		T_CHECK(used <= HTTPREQ_LINE_MAX + 1);
		T_EQ_INT(r->status, 400);
	}
	free(s);
	/* Authorization at the cap and over it */
	s = mk("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ", HTTPREQ_AUTH_MAX, 'z', "\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), HTTPREQ_DONE);
	T_EQ_INT(r->auth_len, HTTPREQ_AUTH_MAX);
	free(s);
	s = mk("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ", HTTPREQ_AUTH_MAX + 1, 'z', "\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), FH_ERR_DECODE);
	T_EQ_INT(r->status, 431);
	free(s);
	/* one huge unknown field: the header section cap */
	s = mk("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", HTTPREQ_HEADER_BYTES_MAX, 'v', "\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), FH_ERR_DECODE);
	T_EQ_INT(r->status, 431);
	free(s);
	/* a huge field name (never stored past its slot) */
	s = mk("GET / HTTP/1.1\r\nHost: x\r\nX", HTTPREQ_HEADER_BYTES_MAX, 'n', ": v\r\n\r\n");
	T_EQ_INT(feed_whole(s, r), FH_ERR_DECODE);
	T_EQ_INT(r->status, 431);
	free(s);
	/* header count: HTTPREQ_HEADERS_MAX fields are fine, one more is 431 */
	hb.n = 0;
	hb.p = malloc(64 * (HTTPREQ_HEADERS_MAX + 2) + 64);
	if (!hb.p)
		abort();
	hb.n += (size_t)sprintf(hb.p, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (i = 1; i < HTTPREQ_HEADERS_MAX; i++)
		hb.n += (size_t)sprintf(hb.p + hb.n, "X-%zu: y\r\n", i);
	strcpy(hb.p + hb.n, "\r\n");
	T_EQ_INT(feed_whole(hb.p, r), HTTPREQ_DONE);
	T_EQ_INT(r->nheaders, HTTPREQ_HEADERS_MAX);
	strcpy(hb.p + hb.n, "X-last: y\r\n\r\n");
	T_EQ_INT(feed_whole(hb.p, r), FH_ERR_DECODE);
	T_EQ_INT(r->status, 431);
	free(hb.p);
	/* errors are sticky */
	{
		size_t used;
		T_EQ_INT(httpreq_feed(r, "GET", 3, &used), FH_ERR_DECODE);
		T_EQ_INT(used, 0);
		T_EQ_INT(r->status, 431);
	}
	T_ERR(httpreq_feed(NULL, "x", 1, &i), FH_ERR_INVAL);
	free(r);
}

/* Random garbage never crashes and never consumes more than given. */
T_TEST(t_random_bytes)
{
	struct httpreq *r = malloc(sizeof *r);
	unsigned seed = 12345;
	char in[512];
	int round;

	T_CHECK(r != NULL);
	if (!r)
		return;
	for (round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof in), i, off = 0, used;
		int rc = HTTPREQ_MORE;

		for (i = 0; i < n; i++)
			in[i] = (char)(rand_r(&seed) & 0xff);
		if (round % 2)
			memcpy(in, "GET / HTTP/1.1\r\n", n < 16 ? n : 16);
		httpreq_init(r);
		while (off < n) {
			size_t len = (size_t)(rand_r(&seed) % 7) + 1;
			if (len > n - off)
				len = n - off;
			rc = httpreq_feed(r, in + off, len, &used);
			T_CHECK(used <= len);
			off += used;
			if (rc < 0 || rc == HTTPREQ_DONE)
				break;
		}
		if (rc < 0)
			T_CHECK(r->status >= 400 && r->reason != NULL);
	}
	free(r);
}

int main(void)
{
	T_RUN(t_simple_get);
	T_RUN(t_keep_alive);
	T_RUN(t_body);
	T_RUN(t_head_then_body);
	T_RUN(t_pipelined);
	T_RUN(t_syntax_errors);
	T_RUN(t_limits);
	T_RUN(t_random_bytes);
	return t_done();
}
