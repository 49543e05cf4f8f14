/* http_request.rl — the local API's HTTP/1.x request machine (see
 * include/httpreq.h for the grammar, the limits and the answers).
 *
 * ragel -G2 -C -I machines -o gen/http_request.c machines/http_request.rl
 *
 * The machine is resumable: cs lives in struct httpreq and each call runs
 * `write exec` over the bytes given. Lengths are counted in the actions
 * (line, target, method, header count, header bytes, Authorization value);
 * the first limit passed records a status and a static reason and stops the
 * machine with fbreak, and the error is sticky. The body is not parsed:
 * after the head, Content-Length bytes are copied into r->body.
 *
 * Tests: test/test_httpreq.c (cases fed whole, byte by byte and at every
 * split point), test/fuzz_httpreq.c with vectors/fuzz/httpreq/.
 */
#include "httpreq.h"

#include <string.h>

#include "err.h"

enum { PH_HEAD = 0, PH_HEADDONE, PH_BODY, PH_DONE, PH_ERR };
enum { F_OTHER = 0, F_AUTH, F_CL, F_TE, F_CONN, F_EXPECT, F_HOST };

/* Records the first failure only. */
static void fail(struct httpreq *r, int status, const char *reason)
{
	if (r->phase == PH_ERR)
		return;
	r->phase = PH_ERR;
	r->status = status;
	r->reason = reason;
	r->err = FH_ERR_DECODE;
}

static char lower(unsigned char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

static int field_begin(struct httpreq *r)
{
	static const struct { const char *name; int id; } known[] = {
		{ "authorization", F_AUTH }, { "content-length", F_CL },
		{ "transfer-encoding", F_TE }, { "connection", F_CONN },
		{ "expect", F_EXPECT }, { "host", F_HOST },
	};
	size_t i;

	if (++r->nheaders > HTTPREQ_HEADERS_MAX) {
		fail(r, 431, "too many header fields");
		return -1;
	}
	r->cur = F_OTHER;
	r->vlen = 0;
	r->val_long = false;
	r->trail_ws = 0;
	r->toklen = 0;
	r->tok_long = false;
	if (!r->name_long) {
		for (i = 0; i < sizeof known / sizeof known[0]; i++) {
			if (strlen(known[i].name) == r->nlen && memcmp(known[i].name, r->name, r->nlen) == 0) {
				r->cur = known[i].id;
				break;
			}
		}
	}
	if (r->cur == F_AUTH && r->has_auth) {
		fail(r, 400, "repeated Authorization field");
		return -1;
	}
	if (r->cur == F_HOST && r->has_host) {
		fail(r, 400, "repeated Host field");
		return -1;
	}
	return 0;
}

/* End of one token of a Connection value. */
static void conn_token(struct httpreq *r)
{
	if (r->toklen && !r->tok_long) {
		if (r->toklen == 5 && memcmp(r->tok, "close", 5) == 0)
			r->conn_close = true;
		else if (r->toklen == 10 && memcmp(r->tok, "keep-alive", 10) == 0)
			r->conn_keep = true;
	}
	r->toklen = 0;
	r->tok_long = false;
}

static int field_byte(struct httpreq *r, unsigned char c)
{
	bool ws = c == ' ' || c == '\t';

	r->trail_ws = ws ? r->trail_ws + 1 : 0;
	switch (r->cur) {
	case F_AUTH:
		if (r->auth_len >= HTTPREQ_AUTH_MAX) {
			fail(r, 431, "Authorization field too large");
			return -1;
		}
		r->auth[r->auth_len++] = (char)c;
		break;
	case F_CL:
	case F_EXPECT:
		if (r->vlen < sizeof r->val - 1)
			r->val[r->vlen++] = (char)c;
		else
			r->val_long = true;
		break;
	case F_CONN:
		if (c == ',' || ws) {
			conn_token(r);
		} else if (r->toklen < sizeof r->tok) {
			r->tok[r->toklen++] = lower(c);
		} else {
			r->tok_long = true;
		}
		break;
	default:
		break;
	}
	return 0;
}

static int field_end(struct httpreq *r)
{
	size_t i, n;
	uint64_t v = 0;

	switch (r->cur) {
	case F_AUTH:
		r->auth_len -= r->trail_ws;
		r->auth[r->auth_len] = '\0';
		r->has_auth = true;
		break;
	case F_CL:
		n = r->vlen - (r->val_long ? 0 : r->trail_ws);
		if (r->val_long || n == 0 || n > 19) {
			fail(r, 400, "bad Content-Length");
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (r->val[i] < '0' || r->val[i] > '9') {
				fail(r, 400, "bad Content-Length");
				return -1;
			}
			v = v * 10 + (uint64_t)(r->val[i] - '0');
		}
		if (r->has_content_length && r->content_length != v) {
			fail(r, 400, "conflicting Content-Length fields");
			return -1;
		}
		r->has_content_length = true;
		r->content_length = v;
		if (v > HTTPREQ_BODY_MAX) {
			fail(r, 413, "request body too large");
			return -1;
		}
		break;
	case F_TE:
		fail(r, 501, "Transfer-Encoding is not supported (send Content-Length)");
		return -1;
	case F_CONN:
		conn_token(r);
		break;
	case F_EXPECT:
		n = r->vlen - (r->val_long ? 0 : r->trail_ws);
		if (r->val_long || n != 12) {
			fail(r, 417, "unsupported Expect");
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (lower((unsigned char)r->val[i]) != "100-continue"[i]) {
				fail(r, 417, "unsupported Expect");
				return -1;
			}
		}
		r->expect_continue = true;
		break;
	case F_HOST:
		r->has_host = true;
		break;
	default:
		break;
	}
	return 0;
}

static int head_end(struct httpreq *r)
{
	const char *q;

	if (r->version == 11 && !r->has_host) {
		fail(r, 400, "missing Host field");
		return -1;
	}
	r->method[r->mlen] = '\0';
	r->target[r->target_len] = '\0';
	q = memchr(r->target, '?', r->target_len);
	r->path_len = q ? (size_t)(q - r->target) : r->target_len;
	if (r->version == 11)
		r->keep_alive = !r->conn_close;
	else
		r->keep_alive = r->conn_keep && !r->conn_close;
	if (!r->has_content_length || r->content_length == 0)
		r->expect_continue = false;
	r->body_rem = r->has_content_length ? r->content_length : 0;
	r->phase = PH_HEADDONE;
	return 0;
}

%%{
	machine http_request;
	alphtype unsigned char;
	access r->;

	action line_b {
		if (++r->line_bytes > HTTPREQ_LINE_MAX) {
			fail(r, 400, "request line too long");
			fbreak;
		}
	}
	action method_c {
		if (r->mlen >= HTTPREQ_METHOD_MAX) {
			fail(r, 400, "method too long");
			fbreak;
		}
		r->method[r->mlen++] = (char)fc;
	}
	action target_c {
		if (r->target_len >= HTTPREQ_TARGET_MAX) {
			fail(r, 400, "request target too long");
			fbreak;
		}
		r->target[r->target_len++] = (char)fc;
	}
	action vmaj { r->vmaj = fc - '0'; }
	action vmin { r->vmin = fc - '0'; }
	action version_end {
		if (r->vmaj != 1 || r->vmin > 1) {
			fail(r, 505, "HTTP version not supported");
			fbreak;
		}
		r->version = 10 + r->vmin;
	}

	action hdr_b {
		if (++r->header_bytes > HTTPREQ_HEADER_BYTES_MAX) {
			fail(r, 431, "header section too large");
			fbreak;
		}
	}
	action name_start { r->nlen = 0; r->name_long = false; }
	action name_c {
		if (r->nlen < sizeof r->name)
			r->name[r->nlen++] = lower(fc);
		else
			r->name_long = true;
	}
	action name_end { if (field_begin(r) != 0) fbreak; }
	action value_c { if (field_byte(r, fc) != 0) fbreak; }
	action value_end { if (field_end(r) != 0) fbreak; }
	action head_done {
		if (head_end(r) != 0)
			fbreak;
		fbreak;
	}

	crlf   = '\r\n';
	tchar  = alnum | [!#$%&'*+\-.^_`|~];
	vch    = 0x21..0x7e | 0x80..0xff;
	tgch   = 0x21..0x7e | 0x80..0xff;
	ows    = [ \t]*;

	method  = tchar+ $method_c;
	target  = ( '/' tgch* ) $target_c;
	version = 'HTTP/' digit @vmaj '.' digit @vmin;
	request_line = ( method ' ' target ' ' version crlf @version_end ) $line_b;

	value  = ( vch ( vch | [ \t] )* )?;
	field  = ( tchar+ >name_start $name_c ) ':' @name_end ows ( value $value_c ) crlf @value_end;

	main := request_line ( field $hdr_b )* ( crlf $hdr_b @head_done );

	write data nofinal noentry;
}%%

void httpreq_init(struct httpreq *r)
{
	if (!r)
		return;
	/* The results are cleared field by field: the body slot needs no
	 * zeroing and is most of the struct. */
	r->method[0] = '\0';
	r->target[0] = '\0';
	r->target_len = r->path_len = 0;
	r->version = 0;
	r->keep_alive = false;
	r->has_content_length = false;
	r->content_length = 0;
	r->expect_continue = r->has_host = r->has_auth = false;
	r->auth[0] = '\0';
	r->auth_len = 0;
	r->nheaders = 0;
	r->body_len = 0;
	r->status = 0;
	r->reason = NULL;
	r->phase = PH_HEAD;
	r->err = 0;
	r->mlen = r->line_bytes = r->header_bytes = 0;
	r->nlen = 0;
	r->name_long = false;
	r->cur = F_OTHER;
	r->vlen = 0;
	r->val_long = false;
	r->trail_ws = 0;
	r->toklen = 0;
	r->tok_long = false;
	r->conn_close = r->conn_keep = false;
	r->vmaj = r->vmin = 0;
	r->body_rem = 0;
	%% write init;
}

void httpreq_reset(struct httpreq *r)
{
	httpreq_init(r);
}

int httpreq_feed(struct httpreq *r, const char *in, size_t n, size_t *used)
{
	const unsigned char *p, *pe, *start;
	size_t take;

	if (!r || !used || (!in && n))
		return FH_ERR_INVAL;
	*used = 0;
	switch (r->phase) {
	case PH_ERR:
		return r->err;
	case PH_DONE:
		return HTTPREQ_DONE;
	case PH_BODY:
		take = n < r->body_rem ? n : (size_t)r->body_rem;
		if (take)
			memcpy(r->body + r->body_len, in, take);
		r->body_len += take;
		r->body_rem -= take;
		*used = take;
		if (r->body_rem == 0) {
			r->phase = PH_DONE;
			return HTTPREQ_DONE;
		}
		return HTTPREQ_MORE;
	default:
		break;
	}
	if (n == 0)
		return HTTPREQ_MORE;
	start = p = (const unsigned char *)in;
	pe = p + n;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
	%% write exec;
#pragma GCC diagnostic pop

	*used = (size_t)(p - start);
	if (r->phase == PH_ERR)
		return r->err;
	if (r->cs == http_request_error) {
		fail(r, 400, "malformed request");
		*used = (size_t)(p - start);
		return r->err;
	}
	if (r->phase == PH_HEADDONE) {
		if (r->body_rem > 0) {
			r->phase = PH_BODY;
			return HTTPREQ_HEAD;
		}
		r->phase = PH_DONE;
		return HTTPREQ_DONE;
	}
	return HTTPREQ_MORE;
}
