/* httpreq.h — HTTP/1.x request parser for the local API (machines/http_request.rl).
 *
 * The request line and the header fields are parsed by a Ragel machine that
 * is fed bytes as they arrive: its state lives in struct httpreq between
 * calls, so a request may come in any number of pieces (one byte at a time
 * included). The parser owns no socket and allocates nothing; every field
 * it keeps has a fixed slot, and every limit below is enforced in the
 * machine's actions (never by {1,N} repetition in the grammar).
 *
 * Grammar (RFC 9112, strict):
 *   request   = METHOD SP TARGET SP "HTTP/" DIGIT "." DIGIT CRLF
 *               *( FIELD-NAME ":" OWS FIELD-VALUE OWS CRLF ) CRLF [ BODY ]
 *   METHOD    = 1*tchar (at most 15 bytes)
 *   TARGET    = "/" *( any byte but CTL, SP, DEL )   (origin form only)
 *   FIELD-NAME= 1*tchar; no space before the colon; no obs-fold
 *   FIELD-VALUE bytes: VCHAR, obs-text (0x80-0xFF), SP, HTAB
 * Line ends are CRLF (a bare LF is an error). Leading empty lines are not
 * accepted.
 *
 * Answers to a bad request (r->status; the reason is a static string):
 *   400  syntax error anywhere; request line over HTTPREQ_LINE_MAX or target
 *        over HTTPREQ_TARGET_MAX; a bad, repeated-and-different or list-valued
 *        Content-Length; a second Authorization or Host field; HTTP/1.1
 *        without Host
 *   413  Content-Length over HTTPREQ_BODY_MAX (known before any body byte)
 *   417  Expect other than 100-continue
 *   431  more than HTTPREQ_HEADERS_MAX fields, header section over
 *        HTTPREQ_HEADER_BYTES_MAX, or an Authorization value over
 *        HTTPREQ_AUTH_MAX
 *   501  any Transfer-Encoding (chunked bodies are not supported: the body
 *        length must be given by Content-Length; a request without either
 *        has no body)
 *   505  an HTTP version other than 1.0 and 1.1
 * Every error is sticky (later calls return the same error) and means the
 * connection cannot be read further: answer and close.
 *
 * Keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
 * "Connection: keep-alive". Pipelined bytes after a complete request are
 * not consumed (see *used); httpreq_reset() readies the parser for them.
 */
#ifndef FH_HTTPREQ_H
#define FH_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPREQ_LINE_MAX 2048          /* request line, CRLF included */
#define HTTPREQ_TARGET_MAX 1024        /* request target bytes */
#define HTTPREQ_METHOD_MAX 15
#define HTTPREQ_HEADERS_MAX 32         /* header fields */
#define HTTPREQ_HEADER_BYTES_MAX 8192  /* header section, CRLFs and final CRLF included */
#define HTTPREQ_AUTH_MAX 512           /* Authorization value */
#define HTTPREQ_BODY_MAX 8192          /* Content-Length cap */

/* httpreq_feed results (errors are negative fh_err codes). */
enum httpreq_result {
	HTTPREQ_MORE = 0,   /* everything consumed, the request is not complete */
	HTTPREQ_HEAD = 1,   /* the head is complete, the body is still to come
			     * (returned once; r->expect_continue says whether
			     * the client waits for "100 Continue") */
	HTTPREQ_DONE = 2,   /* the whole request (head and body) is complete */
};

struct httpreq {
	/* ---- results: valid after HTTPREQ_HEAD / HTTPREQ_DONE ---- */
	char method[HTTPREQ_METHOD_MAX + 1];
	char target[HTTPREQ_TARGET_MAX + 1];  /* as sent, NUL-terminated */
	size_t target_len;
	size_t path_len;                      /* bytes of target before '?' */
	int version;                          /* 10 or 11 */
	bool keep_alive;
	bool has_content_length;
	uint64_t content_length;
	bool expect_continue;
	bool has_host;
	bool has_auth;
	char auth[HTTPREQ_AUTH_MAX + 1];      /* Authorization value, OWS trimmed */
	size_t auth_len;
	unsigned nheaders;
	char body[HTTPREQ_BODY_MAX];          /* valid after HTTPREQ_DONE */
	size_t body_len;

	/* ---- error: valid when httpreq_feed returned an error ---- */
	int status;                           /* 400, 413, 417, 431, 501, 505 */
	const char *reason;                   /* static text, no input bytes */

	/* ---- private parser state ---- */
	int cs;
	int phase;
	int err;
	size_t mlen, line_bytes, header_bytes;
	char name[24];
	size_t nlen;
	bool name_long;
	int cur;                              /* which field the value belongs to */
	char val[40];                         /* small field values */
	size_t vlen;
	bool val_long;
	size_t trail_ws;                      /* trailing OWS bytes in the value so far */
	char tok[16];                         /* Connection: current token */
	size_t toklen;
	bool tok_long;
	bool conn_close, conn_keep;
	int vmaj, vmin;
	uint64_t body_rem;
};

/* Makes r ready for a new request (all results cleared). */
void httpreq_init(struct httpreq *r);
/* Same as httpreq_init: for the next request on a keep-alive connection. */
void httpreq_reset(struct httpreq *r);

/* Feeds p[0..n). *used gets the bytes consumed: all n for HTTPREQ_MORE;
 * up to the end of the head for HTTPREQ_HEAD; up to the end of the body
 * for HTTPREQ_DONE (bytes after it belong to the next request). After
 * HTTPREQ_HEAD, feed the rest of the input (possibly n == 0) to continue.
 * Feeding after HTTPREQ_DONE returns HTTPREQ_DONE with *used 0.
 * Errors: FH_ERR_DECODE (r->status and r->reason set; sticky),
 * FH_ERR_INVAL (NULL arguments). */
int httpreq_feed(struct httpreq *r, const char *p, size_t n, size_t *used);

#endif
