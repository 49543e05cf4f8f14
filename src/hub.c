/* hub.c — the hub client over libcurl; see hub.h. */
#include "hub.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "httptrust.h"
#include "json.h"

#define HUB_MAX_KEY 1024
#define HUB_JSON_DEPTH 16
#define HUB_BEARER "Authorization: Bearer "

#define HUB_REASON_MAX 128           /* bytes kept of a status line's reason phrase */

struct hub_client {
	/* the handle, its headers (they hold the key: wiped on free), the
	 * trust, the answer, the cancel flag (httptrust.h) */
	struct httptrust_conn conn;
	const char *key;                /* points into conn.hdrs (for scrubbing); not owned */
	char url[1024];                 /* the report URL */
	char base[1024];                /* hub.url without trailing '/' */
	size_t max_response;
};

/* Replaces every occurrence of the key in s by "[REDACTED]" (in place,
 * truncating as needed), then control bytes by spaces. */
static void scrub(const struct hub_client *c, char *s, size_t cap)
{
	size_t kn = c && c->key ? strlen(c->key) : 0;
	char *p;

	while (kn >= 4 && (p = strstr(s, c->key)) != NULL) {
		static const char red[] = "[REDACTED]";
		size_t rn = sizeof(red) - 1, tail = strlen(p + kn);
		size_t off = (size_t)(p - s);
		if (off + rn >= cap) {
			*p = '\0';
			break;
		}
		if (off + rn + tail >= cap)
			tail = cap - off - rn - 1;
		memmove(p + rn, p + kn, tail);
		memcpy(p, red, rn);
		p[rn + tail] = '\0';
	}
	for (p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

static void set_reason(const struct hub_client *c, struct hub_err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_reason(const struct hub_client *c, struct hub_err *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
	scrub(c, e->reason, sizeof(e->reason));
}

static int fail(struct hub_err *e, int code)
{
	if (e)
		e->code = code;
	return code;
}

static void err_reset(struct hub_err *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

int64_t hub_clamp_interval(int64_t seconds, int64_t min, int64_t max)
{
	if (seconds < min)
		return min;
	if (seconds > max)
		return max;
	return seconds;
}

/* ---- envelope ---- */

static int env_bool(const struct json *root, const char *k, bool *has, bool *v, char *why, size_t whylen)
{
	const struct json *j = json_get(root, k);

	*has = false;
	if (!j || j->type == JSON_NULL)
		return 0;
	if (j->type != JSON_BOOL) {
		snprintf(why, whylen, "envelope member \"%s\": want true or false", k);
		return FH_ERR_DECODE;
	}
	*has = true;
	*v = j->b;
	return 0;
}

static int env_int(const struct json *root, const char *k, bool *has, int64_t *v, char *why, size_t whylen)
{
	const struct json *j = json_get(root, k);

	*has = false;
	if (!j || j->type == JSON_NULL)
		return 0;
	if (json_int_strict(j, v)) {
		snprintf(why, whylen, "envelope member \"%s\": want an integer", k);
		return FH_ERR_DECODE;
	}
	*has = true;
	return 0;
}

int hub_parse_envelope(const char *p, size_t n, size_t max_bytes, struct hub_envelope *out, char *why,
		       size_t whylen)
{
	struct json_limits lim = { max_bytes, HUB_JSON_DEPTH, false };
	struct hub_envelope env;
	struct json *root = NULL;
	char scratch[128];
	int r;

	if (!why || !whylen) {
		why = scratch;
		whylen = sizeof(scratch);
	}
	why[0] = '\0';
	memset(&env, 0, sizeof(env));
	if (n == 0) {
		snprintf(why, whylen, "empty answer; want the envelope object");
		return FH_ERR_DECODE;
	}
	r = json_parse(p, n, &lim, &root, NULL, 0);
	if (r) {
		snprintf(why, whylen, r == FH_ERR_TOOBIG ? "envelope too large or too deep" : "envelope is not JSON");
		return r == FH_ERR_TOOBIG || r == FH_ERR_NOMEM ? r : FH_ERR_DECODE;
	}
	r = FH_ERR_DECODE;
	if (root->type != JSON_OBJECT) {
		snprintf(why, whylen, "envelope is not a JSON object");
		goto out;
	}
	if (env_int(root, "poll_interval_seconds", &env.poll_interval_set, &env.poll_interval_seconds, why,
		    whylen) ||
	    env_bool(root, "blocked", &env.blocked_set, &env.blocked, why, whylen) ||
	    env_int(root, "desired_generation", &env.desired_generation_set, &env.desired_generation, why,
		    whylen) ||
	    env_bool(root, "has_signed_ops", &env.signed_ops_set, &env.has_signed_ops, why, whylen))
		goto out;
	if (env.desired_generation_set && env.desired_generation < 0) {
		snprintf(why, whylen, "envelope member \"desired_generation\": negative");
		goto out;
	}
	*out = env;
	r = 0;
out:
	json_free(root);
	return r;
}

/* ---- construction ---- */

static int valid_key(const char *k)
{
	size_t n = strlen(k);

	if (n < 1 || n > HUB_MAX_KEY)
		return 0;
	for (; *k; k++) {
		if ((unsigned char)*k <= ' ' || (unsigned char)*k >= 0x7f)
			return 0;
	}
	return 1;
}

/* Takes host, port and the report URL out of hub.url with libcurl's URL
 * parser; the report URL is the given URL without a trailing '/', plus
 * HUB_REPORT_PATH. */
static int parse_url(struct hub_client *c, const char *url, char *host, size_t hostlen, unsigned *port,
		     struct hub_err *e)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *p = NULL, *user = NULL, *pw = NULL, *q = NULL, *frag = NULL;
	size_t n, hn;
	long pn;
	int r = FH_ERR_CONFIG;

	if (!u)
		return FH_ERR_NOMEM;
	if (strncmp(url, "https://", 8) || strlen(url) >= sizeof(c->url) - sizeof(HUB_REPORT_PATH) ||
	    strpbrk(url, " \t\r\n")) {
		set_reason(c, e, "hub.url: want https://HOST[:PORT][/PATH]");
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || strcmp(scheme, "https") ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		set_reason(c, e, "hub.url: want https://HOST[:PORT][/PATH]");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK) {
		set_reason(c, e, "hub.url: no user or password in the URL; the key goes in hub.api_key");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		set_reason(c, e, "hub.url: no query or fragment");
		goto out;
	}
	hn = strlen(h);
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		memmove(h, h + 1, hn - 2);
		h[hn - 2] = '\0';
		hn -= 2;
	}
	pn = strtol(p, NULL, 10);
	if (hn == 0 || hn >= hostlen || pn < 1 || pn > 65535) {
		set_reason(c, e, "hub.url: bad host or port");
		goto out;
	}
	memcpy(host, h, hn + 1);
	*port = (unsigned)pn;
	n = strlen(url);
	while (n > 8 && url[n - 1] == '/')
		n--;
	snprintf(c->url, sizeof(c->url), "%.*s%s", (int)n, url, HUB_REPORT_PATH);
	snprintf(c->base, sizeof(c->base), "%.*s", (int)n, url);
	r = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(p);
	curl_free(user);
	curl_free(pw);
	curl_free(q);
	curl_free(frag);
	curl_url_cleanup(u);
	return r;
}

int hub_client_new(const struct hub_opts *o, struct hub_client **out, struct hub_err *e)
{
	struct hub_client *c;
	struct httptrust_opts to;
	struct httptrust_conn_opts co;
	struct buf auth;
	struct curl_slist *s;
	char host[256], why[200];
	unsigned port = 0;
	int r = FH_ERR_CONFIG;

	err_reset(e);
	c = calloc(1, sizeof(*c));
	if (!c)
		return fail(e, FH_ERR_NOMEM);
	buf_init(&auth, HUB_MAX_KEY + 64);
	if (!o->url || !*o->url) {
		set_reason(c, e, "hub.url is required");
		goto out;
	}
	if (!o->api_key || !valid_key(o->api_key)) {
		/* never echo the value */
		set_reason(c, e, "hub.api_key: want 1..%d printable characters, no spaces (value not shown)",
			   HUB_MAX_KEY);
		goto out;
	}
	r = parse_url(c, o->url, host, sizeof(host), &port, e);
	if (r)
		goto out;
	memset(&to, 0, sizeof(to));
	to.ca_file = o->ca_file;
	to.tls_fingerprint = o->tls_fingerprint;
	to.allow_insecure = false;      /* verification is always on for the hub */
	r = httptrust_init(&c->conn.trust, host, port, &to, why, sizeof(why));
	if (r) {
		set_reason(c, e, "hub: %s", why);
		goto out;
	}
	r = FH_ERR_NOMEM;
	memset(&co, 0, sizeof(co));
	co.timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : HUB_DEF_TIMEOUT_MS;
	co.connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HUB_DEF_CONNECT_MS;
	if (co.connect_ms > co.timeout_ms)
		co.connect_ms = co.timeout_ms;
	c->max_response = o->max_response ? o->max_response : HUB_DEF_MAX_RESPONSE;
	co.max_body = c->max_response;
	co.max_reason = HUB_REASON_MAX;

	if (buf_printf(&auth, HUB_BEARER "%s", o->api_key))
		goto out;
	if (httptrust_conn_header(&c->conn, buf_str(&auth)) ||
	    httptrust_conn_header(&c->conn, "Content-Type: application/json") ||
	    httptrust_conn_header(&c->conn, "Accept: application/json") ||
	    httptrust_conn_header(&c->conn, "Expect:"))
		goto out;
	for (s = c->conn.hdrs; s; s = s->next) {
		if (!strncmp(s->data, HUB_BEARER, sizeof(HUB_BEARER) - 1))
			c->key = s->data + sizeof(HUB_BEARER) - 1;
	}
	if (httptrust_conn_open(&c->conn, &co))
		goto out;
	curl_easy_setopt(c->conn.h, CURLOPT_URL, c->url);
	*out = c;
	c = NULL;
	r = 0;
out:
	if (auth.data)
		explicit_bzero(auth.data, auth.alloc);
	buf_free(&auth);
	hub_client_free(c);
	return r ? fail(e, r) : 0;
}

void hub_client_free(struct hub_client *c)
{
	if (!c)
		return;
	httptrust_conn_free(&c->conn);
	free(c);
}

void hub_cancel(struct hub_client *c)
{
	atomic_store(&c->conn.cancelled, 1);
}

const char *hub_trust_name(const struct hub_client *c)
{
	return httptrust_mode_name(c->conn.trust.mode);
}

const char *hub_report_url(const struct hub_client *c)
{
	return c->url;
}

void hub_stats(const struct hub_client *c, struct hub_stats *out)
{
	out->requests = c->conn.n_requests;
	out->connects = c->conn.n_connects;
	out->pin_probes = c->conn.trust.probes;
}

/* ---- the request ---- */

static int map_status(long st)
{
	if (st >= 200 && st < 300)
		return 0;
	if (st == 401)
		return FH_ERR_HTTP_401;
	if (st == 403)
		return FH_ERR_HTTP_403;
	if (st >= 400 && st < 500)
		return FH_ERR_HTTP_4XX;
	if (st >= 500 && st < 600)
		return FH_ERR_HTTP_5XX;
	return FH_ERR_DECODE;   /* 1xx that libcurl passed on, 3xx (never followed), nonsense */
}

/* "error" or "message" from a JSON error body, if there is one. */
static const char *error_text(const struct buf *b, struct json **doc)
{
	struct json_limits lim = { b->cap, HUB_JSON_DEPTH, true };
	const char *m = NULL;

	*doc = NULL;
	if (!b->len || json_parse(b->data, b->len, &lim, doc, NULL, 0))
		return NULL;
	if (!json_str(json_get(*doc, "error"), &m) && *m)
		return m;
	if (!json_str(json_get(*doc, "message"), &m) && *m)
		return m;
	return NULL;
}

/* One request to url: POST json/len, or GET when json is NULL. The
 * answer is in c->conn.body (at most cap bytes). 0 for 2xx with *status set;
 * typed errors otherwise, e->reason never holding the key. */
static int perform(struct hub_client *c, const char *url, const char *json, size_t len, size_t cap, long *status,
		   struct hub_err *e)
{
	struct json *doc = NULL;
	char why[200], cerr[sizeof(e->reason)];
	long st = 0;
	CURLcode rc;
	int r;

	*status = 0;
	if (atomic_load(&c->conn.cancelled)) {
		set_reason(c, e, "cancelled");
		return fail(e, FH_ERR_CANCELLED);
	}
	why[0] = '\0';
	r = httptrust_ensure(&c->conn.trust, c->conn.h, c->conn.connect_ms, why, sizeof(why));
	if (r) {
		set_reason(c, e, "%s", why);
		return fail(e, r);
	}
	curl_easy_setopt(c->conn.h, CURLOPT_URL, url);
	if (json) {
		curl_easy_setopt(c->conn.h, CURLOPT_POSTFIELDS, json);
		curl_easy_setopt(c->conn.h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(c->conn.h, CURLOPT_HTTPGET, 1L);
	}
	c->conn.body.cap = cap;
	httptrust_conn_begin(&c->conn);
	rc = curl_easy_perform(c->conn.h);
	httptrust_conn_connects(&c->conn);
	curl_easy_setopt(c->conn.h, CURLOPT_POSTFIELDS, NULL);
	if (rc != CURLE_OK) {
		r = httptrust_conn_error(&c->conn, rc, "answer", cerr, sizeof(cerr));
		set_reason(c, e, "%s", cerr);
		return fail(e, r);
	}
	curl_easy_getinfo(c->conn.h, CURLINFO_RESPONSE_CODE, &st);
	*status = st;
	if (e)
		e->http_status = st;
	r = map_status(st);
	if (r) {
		const char *m = error_text(&c->conn.body, &doc);
		if (m && !strcmp(m, c->conn.status_reason))
			m = NULL;   /* said once is enough */
		set_reason(c, e, "HTTP %ld%s%s%s%.160s", st, c->conn.status_reason[0] ? " " : "",
			   c->conn.status_reason, m ? ": " : "", m ? m : "");
		json_free(doc);
		return fail(e, r);
	}
	return 0;
}

int hub_post_report(struct hub_client *c, const char *json, size_t len, struct hub_envelope *env,
		    struct hub_err *e)
{
	struct hub_envelope got;
	char why[200];
	long status;
	int r;

	err_reset(e);
	if (!json || len == 0) {
		set_reason(c, e, "empty report");
		return fail(e, FH_ERR_INVAL);
	}
	r = perform(c, c->url, json, len, c->max_response, &status, e);
	if (r)
		return r;
	r = hub_parse_envelope(c->conn.body.data ? c->conn.body.data : "", c->conn.body.len, c->max_response, &got, why,
			       sizeof(why));
	if (r) {
		set_reason(c, e, "%s", why);
		return fail(e, r);
	}
	*env = got;
	return 0;
}

int hub_request(struct hub_client *c, const char *method, const char *path, const char *json, size_t len,
		size_t cap, struct buf *out, long *status, struct hub_err *e)
{
	char url[2048];
	int r;

	err_reset(e);
	*status = 0;
	if (!path || path[0] != '/' || strpbrk(path, " \t\r\n") || (strcmp(method, "GET") && strcmp(method, "POST")) ||
	    (!strcmp(method, "POST") && !json) || (!strcmp(method, "GET") && json)) {
		set_reason(c, e, "bad hub request");
		return fail(e, FH_ERR_INVAL);
	}
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url)) {
		set_reason(c, e, "hub URL too long");
		return fail(e, FH_ERR_INVAL);
	}
	r = perform(c, url, json, len, cap, status, e);
	if (r == FH_ERR_HTTP_4XX && *status == 404)
		r = fail(e, FH_ERR_NOT_FOUND);
	if (r)
		return r;
	if (c->conn.body.len && buf_append(out, c->conn.body.data, c->conn.body.len)) {
		set_reason(c, e, "answer larger than the caller's buffer");
		return fail(e, FH_ERR_TOOBIG);
	}
	return 0;
}
