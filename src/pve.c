/* pve.c — Proxmox VE API client over libcurl; see pve.h.
 *
 * Wire habits absorbed here (research: proxmox-api-facts.md):
 *  - errors carry their text in the HTTP status line; bodies are {"data":null}
 *    (plus "message" on newer servers), 401s come after a 3 s delay;
 *  - the server closes the connection after every status >= 400, and drops
 *    idle keep-alive connections after 5 s, so connections are not reused
 *    past 4 s of idleness;
 *  - numbers may arrive as strings, booleans as 0/1, fields may be absent.
 */
#include "pve.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "httptrust.h"
#include "json.h"

#define PVE_DEF_TIMEOUT_MS 30000L
#define PVE_DEF_CONNECT_MS 10000L
#define PVE_DEF_MAX_RESPONSE (16u * 1024 * 1024)
#define PVE_DEF_MAX_GUESTS 4096u
#define PVE_JSON_DEPTH 32
#define PVE_NO_SUCH_TASK_GRACE_MS 10000L

struct pve_client {
	/* the handle, its headers (they hold the token: wiped on free), the
	 * trust (CA / pin / insecure), the body, the cancel flag (httptrust.h) */
	struct httptrust_conn conn;
	char base[512];                 /* https://host:port/api2/json */
	char host[256];
	unsigned port;
	char node[64];
	long poll_initial_ms, poll_max_ms, task_timeout_ms;
	size_t max_response;
	unsigned max_guests;
};

static void set_reason(struct pve_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reason(struct pve_err *e, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
	for (p = e->reason; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

static int fail(struct pve_err *e, int code)
{
	if (e)
		e->code = code;
	return code;
}

static void err_reset(struct pve_err *e, const char *method, const char *path)
{
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	snprintf(e->method, sizeof(e->method), "%s", method);
	snprintf(e->path, sizeof(e->path), "%s", path);
}

int pve_parse_permission(const char *text, char *priv, size_t privlen, char *path, size_t pathlen)
{
	static const char key[] = "Permission check failed (";
	const char *p = text ? strstr(text, key) : NULL;
	const char *comma, *close;
	size_t pn, vn;

	if (!p)
		return FH_ERR_NOT_FOUND;
	p += sizeof(key) - 1;
	close = strchr(p, ')');
	if (!close)
		return FH_ERR_NOT_FOUND;
	comma = memchr(p, ',', (size_t)(close - p));
	if (!comma) {
		/* bare text, e.g. "(mount point type bind is only allowed for root@pam)" */
		return FH_ERR_NOT_FOUND;
	}
	pn = (size_t)(comma - p);
	comma++;
	while (*comma == ' ')
		comma++;
	vn = (size_t)(close - comma);
	if (vn == 0 || vn >= privlen || pn >= pathlen)
		return FH_ERR_NOT_FOUND;
	memcpy(priv, comma, vn);
	priv[vn] = '\0';
	memcpy(path, p, pn);
	path[pn] = '\0';
	return 0;
}

/* ---- construction ---- */

static int parse_endpoint(struct pve_client *c, const char *ep, struct pve_err *e)
{
	const char *h = ep + 8, *end, *colon;
	size_t hn;
	long port = 8006;

	if (strncmp(ep, "https://", 8) != 0) {
		set_reason(e, "proxmox endpoint must start with https://");
		return FH_ERR_CONFIG;
	}
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			set_reason(e, "proxmox endpoint: bad IPv6 literal");
			return FH_ERR_CONFIG;
		}
		hn = (size_t)(end - h - 1);
		if (hn == 0 || hn >= sizeof(c->host))
			return FH_ERR_CONFIG;
		memcpy(c->host, h + 1, hn);
		c->host[hn] = '\0';
		colon = end + 1;
	} else {
		colon = h + strcspn(h, ":/");
		hn = (size_t)(colon - h);
		if (hn == 0 || hn >= sizeof(c->host)) {
			set_reason(e, "proxmox endpoint: bad host");
			return FH_ERR_CONFIG;
		}
		memcpy(c->host, h, hn);
		c->host[hn] = '\0';
	}
	if (*colon == ':') {
		char *pe;
		port = strtol(colon + 1, &pe, 10);
		if (pe == colon + 1 || port < 1 || port > 65535 || (*pe && strcmp(pe, "/"))) {
			set_reason(e, "proxmox endpoint: bad port");
			return FH_ERR_CONFIG;
		}
	} else if (*colon && strcmp(colon, "/")) {
		set_reason(e, "proxmox endpoint: want https://HOST:PORT with no path");
		return FH_ERR_CONFIG;
	}
	for (h = c->host; *h; h++) {
		if (!isalnum((unsigned char)*h) && !strchr(".-:", *h)) {
			set_reason(e, "proxmox endpoint: bad host");
			return FH_ERR_CONFIG;
		}
	}
	c->port = (unsigned)port;
	if (strchr(c->host, ':'))
		snprintf(c->base, sizeof(c->base), "https://[%s]:%u/api2/json", c->host, c->port);
	else
		snprintf(c->base, sizeof(c->base), "https://%s:%u/api2/json", c->host, c->port);
	return 0;
}

static int valid_node(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= 64 || n[0] == '-' || n[len - 1] == '-')
		return 0;
	for (; *n; n++) {
		if (!isalnum((unsigned char)*n) && *n != '-')
			return 0;
	}
	return 1;
}

int pve_client_new(const struct pve_opts *o, struct pve_client **out, struct pve_err *e)
{
	struct pve_client *c;
	struct buf auth;
	struct httptrust_opts to;
	struct httptrust_conn_opts co;
	int r = FH_ERR_CONFIG;
	const char *eq;

	err_reset(e, "", "");
	memset(&co, 0, sizeof(co));
	c = calloc(1, sizeof(*c));
	if (!c)
		return fail(e, FH_ERR_NOMEM);
	buf_init(&auth, 4096);
	if (!o->endpoint || !o->node || !o->token) {
		set_reason(e, "proxmox endpoint, node and token are required");
		goto out;
	}
	r = parse_endpoint(c, o->endpoint, e);
	if (r)
		goto out;
	r = FH_ERR_CONFIG;
	if (!valid_node(o->node)) {
		set_reason(e, "proxmox node name must be letters, digits and '-'");
		goto out;
	}
	snprintf(c->node, sizeof(c->node), "%s", o->node);
	eq = strrchr(o->token, '=');
	if (!strchr(o->token, '!') || !eq || eq[1] == '\0' || strpbrk(o->token, "\r\n")) {
		set_reason(e, "proxmox token must be USER@REALM!TOKENID=SECRET");
		goto out;
	}
	memset(&to, 0, sizeof(to));
	to.ca_file = o->ca_file;
	to.tls_fingerprint = o->tls_fingerprint;
	to.insecure_skip_verify = o->insecure_skip_verify;
	to.allow_insecure = true;      /* loopback only; httptrust checks the host */
	r = httptrust_init(&c->conn.trust, c->host, c->port, &to, e ? e->reason : NULL, e ? sizeof(e->reason) : 0);
	if (r)
		goto out;
	r = FH_ERR_CONFIG;
	co.timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : PVE_DEF_TIMEOUT_MS;
	co.connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : PVE_DEF_CONNECT_MS;
	c->poll_initial_ms = o->poll_initial_ms > 0 ? o->poll_initial_ms : 1000;
	c->poll_max_ms = o->poll_max_ms > 0 ? o->poll_max_ms : 5000;
	if (c->poll_max_ms < c->poll_initial_ms)
		c->poll_max_ms = c->poll_initial_ms;
	c->task_timeout_ms = o->task_timeout_ms > 0 ? o->task_timeout_ms : 3600000L;
	c->max_response = o->max_response ? o->max_response : PVE_DEF_MAX_RESPONSE;
	c->max_guests = o->max_guests ? o->max_guests : PVE_DEF_MAX_GUESTS;
	co.max_body = c->max_response;
	co.max_reason = HTTPTRUST_REASON_MAX;
	co.max_age_conn = 4;    /* Proxmox drops idle keep-alive connections after 5 s */

	if (buf_printf(&auth, "Authorization: PVEAPIToken=%s", o->token)) {
		set_reason(e, "proxmox token too long");
		goto out;
	}
	r = httptrust_conn_header(&c->conn, buf_str(&auth));
	if (!r)
		r = httptrust_conn_header(&c->conn, "Accept: application/json");
	if (!r)
		r = httptrust_conn_open(&c->conn, &co);
	if (r)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
out:
	if (auth.data)
		explicit_bzero(auth.data, auth.alloc);
	buf_free(&auth);
	pve_client_free(c);
	return r ? fail(e, r) : 0;
}

void pve_client_free(struct pve_client *c)
{
	if (!c)
		return;
	httptrust_conn_free(&c->conn);
	free(c);
}

void pve_cancel(struct pve_client *c)
{
	atomic_store(&c->conn.cancelled, 1);
}

void pve_stats(const struct pve_client *c, struct pve_stats *out)
{
	out->requests = c->conn.n_requests;
	out->connects = c->conn.n_connects;
	out->pin_probes = c->conn.trust.probes;
}

const char *pve_node(const struct pve_client *c)
{
	return c->node;
}

/* ---- one request ---- */

static int ensure_pin(struct pve_client *c, struct pve_err *e)
{
	int r = httptrust_ensure(&c->conn.trust, c->conn.h, c->conn.connect_ms, e ? e->reason : NULL,
				 e ? sizeof(e->reason) : 0);

	return r;
}

static int map_status(long st)
{
	if (st >= 200 && st < 300)
		return 0;
	if (st == 401)
		return FH_ERR_HTTP_401;
	if (st == 403)
		return FH_ERR_HTTP_403;
	if (st == 501)
		return FH_ERR_HTTP_501;
	if (st >= 595 && st <= 599)
		return FH_ERR_HTTP_PROXY;
	if (st >= 400 && st < 500)
		return FH_ERR_HTTP_4XX;
	return FH_ERR_HTTP_5XX;
}

static const struct json_limits *pve_limits(const struct pve_client *c)
{
	static _Thread_local struct json_limits l;

	l.max_bytes = c->max_response;
	l.max_depth = PVE_JSON_DEPTH;
	l.allow_dup_keys = true;
	return &l;
}

/* Sends one request. path is below /api2/json and already escaped; form is
 * an x-www-form-urlencoded body or NULL. On success *root owns the decoded
 * document and *data points at its "data" member. A GET whose reused
 * connection turned out dead is retried once; other methods never are. */
static int request(struct pve_client *c, const char *method, const char *path, const char *form,
		   struct json **root, const struct json **data, struct pve_err *e)
{
	char url[2048], why[sizeof(e->reason)];
	long status = 0, nconn = 0;
	CURLcode rc;
	int r, attempt;
	struct json *doc = NULL;
	const struct json *msg;

	err_reset(e, method, path);
	if (atomic_load(&c->conn.cancelled)) {
		set_reason(e, "cancelled");
		return fail(e, FH_ERR_CANCELLED);
	}
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url)) {
		set_reason(e, "request path too long");
		return fail(e, FH_ERR_INVAL);
	}
	r = ensure_pin(c, e);
	if (r)
		return fail(e, r);
	curl_easy_setopt(c->conn.h, CURLOPT_URL, url);
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(c->conn.h, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(c->conn.h, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c->conn.h, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(c->conn.h, CURLOPT_POSTFIELDS, form ? form : "");
	} else {
		/* PUT and DELETE: form body for PUT, query string for DELETE */
		if (form) {
			curl_easy_setopt(c->conn.h, CURLOPT_POSTFIELDS, form);
		} else {
			curl_easy_setopt(c->conn.h, CURLOPT_HTTPGET, 1L);
		}
		curl_easy_setopt(c->conn.h, CURLOPT_CUSTOMREQUEST, method);
	}
	for (attempt = 0;; attempt++) {
		httptrust_conn_begin(&c->conn);
		rc = curl_easy_perform(c->conn.h);
		nconn = httptrust_conn_connects(&c->conn);
		if (rc == CURLE_OK)
			break;
		if (attempt == 0 && !strcmp(method, "GET") && nconn == 0 &&
		    (rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR))
			continue;   /* a pooled connection the server had dropped */
		r = httptrust_conn_error(&c->conn, rc, "response", why, sizeof(why));
		set_reason(e, "%s", why);
		return fail(e, r);
	}
	curl_easy_getinfo(c->conn.h, CURLINFO_RESPONSE_CODE, &status);
	if (e)
		e->http_status = status;
	r = map_status(status);
	if (r) {
		/* The reason phrase is the message; newer servers add "message". */
		set_reason(e, "%s", c->conn.status_reason[0] ? c->conn.status_reason : "(no reason)");
		if (c->conn.body.len && !json_parse(c->conn.body.data, c->conn.body.len, pve_limits(c), &doc, NULL, 0)) {
			const struct json *errs = json_get(doc, "errors");
			const char *m;
			size_t i;
			msg = json_get(doc, "message");
			if (!json_str(msg, &m) && *m && !c->conn.status_reason[0])
				set_reason(e, "%s", m);
			/* 400s name the offending parameters: "upid: no such task" */
			for (i = 0; e && errs && errs->type == JSON_OBJECT && i < errs->n; i++) {
				size_t used = strlen(e->reason);
				if (json_str(errs->items[i], &m) || used + 8 >= sizeof(e->reason))
					break;
				snprintf(e->reason + used, sizeof(e->reason) - used, "%s%s: %s", i ? "; " : " (",
					 errs->keys[i], m);
				if (i + 1 == errs->n || strlen(e->reason) + 2 >= sizeof(e->reason))
					strncat(e->reason, ")", sizeof(e->reason) - strlen(e->reason) - 1);
			}
		}
		if (e && r == FH_ERR_HTTP_403)
			pve_parse_permission(e->reason, e->privilege, sizeof(e->privilege), e->perm_path,
					     sizeof(e->perm_path));
		json_free(doc);
		return fail(e, r);
	}
	r = json_parse(c->conn.body.data ? c->conn.body.data : "", c->conn.body.len, pve_limits(c), &doc, NULL, 0);
	if (r) {
		set_reason(e, r == FH_ERR_TOOBIG ? "response too large or too deep" : "response is not valid JSON");
		return fail(e, r == FH_ERR_NOMEM ? r : FH_ERR_DECODE);
	}
	if (doc->type != JSON_OBJECT || !json_get(doc, "data")) {
		json_free(doc);
		set_reason(e, "response has no \"data\" member");
		return fail(e, FH_ERR_DECODE);
	}
	*root = doc;
	*data = json_get(doc, "data");
	return 0;
}

/* ---- decoding helpers ---- */

struct dec {
	struct pve_err *e;
	int r;                   /* first error */
};

static void dec_fail(struct dec *d, const char *field, const char *why)
{
	if (d->r)
		return;
	d->r = FH_ERR_DECODE;
	set_reason(d->e, "field \"%s\": %s", field, why);
}

static void d_str(struct dec *d, const struct json *o, const char *k, char *dst, size_t n)
{
	int r = json_strcpy(json_get(o, k), dst, n);

	if (r == FH_ERR_NOT_FOUND)
		dst[0] = '\0';
	else if (r == FH_ERR_TOOBIG)
		dec_fail(d, k, "too long");
	else if (r)
		dec_fail(d, k, "want a string");
}

static void d_i64(struct dec *d, const struct json *o, const char *k, int64_t *dst, int64_t def)
{
	int r = json_int(json_get(o, k), dst);

	if (r == FH_ERR_NOT_FOUND)
		*dst = def;
	else if (r)
		dec_fail(d, k, "want an integer");
}

static void d_int(struct dec *d, const struct json *o, const char *k, int *dst, int def)
{
	int64_t v;

	d_i64(d, o, k, &v, def);
	if (v < -2147483647 || v > 2147483647)
		dec_fail(d, k, "integer out of range");
	else
		*dst = (int)v;
}

static void d_dbl(struct dec *d, const struct json *o, const char *k, double *dst)
{
	int r = json_double(json_get(o, k), dst);

	if (r == FH_ERR_NOT_FOUND)
		*dst = 0.0;
	else if (r)
		dec_fail(d, k, "want a number");
}

static void d_bool(struct dec *d, const struct json *o, const char *k, bool *dst)
{
	int r = json_bool(json_get(o, k), dst);

	if (r == FH_ERR_NOT_FOUND)
		*dst = false;
	else if (r)
		dec_fail(d, k, "want a boolean");
}

static int want_type(const struct json *j, enum json_type t, struct pve_err *e)
{
	if (!j || j->type != t) {
		set_reason(e, "\"data\" is not %s", t == JSON_ARRAY ? "an array" : "an object");
		return fail(e, FH_ERR_DECODE);
	}
	return 0;
}

typedef void (*decode_fn)(struct dec *d, const struct json *o, void *dst);

/* GETs path, expects an array, decodes each element into a calloc'd array. */
static int get_list(struct pve_client *c, const char *path, size_t elem, decode_fn fn, void **out,
		    size_t *n, struct pve_err *e)
{
	struct json *root = NULL;
	const struct json *data;
	struct dec d = { e, 0 };
	char *arr = NULL;
	size_t i;
	int r = request(c, "GET", path, NULL, &root, &data, e);

	if (r)
		return r;
	r = want_type(data, JSON_ARRAY, e);
	if (r)
		goto out;
	if (data->n > c->max_guests) {
		set_reason(e, "list of %zu entries over the cap of %u", data->n, c->max_guests);
		r = fail(e, FH_ERR_TOOBIG);
		goto out;
	}
	arr = calloc(data->n ? data->n : 1, elem);
	if (!arr) {
		r = fail(e, FH_ERR_NOMEM);
		goto out;
	}
	for (i = 0; i < data->n && !d.r; i++) {
		if (data->items[i]->type != JSON_OBJECT) {
			dec_fail(&d, "[]", "element is not an object");
			break;
		}
		fn(&d, data->items[i], arr + i * elem);
	}
	if (d.r) {
		r = fail(e, d.r);
		goto out;
	}
	*out = arr;
	*n = data->n;
	arr = NULL;
	r = 0;
out:
	free(arr);
	json_free(root);
	return r;
}

/* GETs path, expects an object, decodes it into a zeroed copy of *dst that
 * replaces *dst only on success. */
static int get_object(struct pve_client *c, const char *path, decode_fn fn, void *dst, size_t size,
		      struct pve_err *e)
{
	struct json *root = NULL;
	const struct json *data;
	struct dec d = { e, 0 };
	void *tmp;
	int r = request(c, "GET", path, NULL, &root, &data, e);

	if (r)
		return r;
	r = want_type(data, JSON_OBJECT, e);
	if (!r) {
		tmp = calloc(1, size);
		if (!tmp) {
			r = fail(e, FH_ERR_NOMEM);
		} else {
			fn(&d, data, tmp);
			r = d.r ? fail(e, d.r) : 0;
			if (!r)
				memcpy(dst, tmp, size);
			free(tmp);
		}
	}
	json_free(root);
	return r;
}

/* ---- reads ---- */

static void dec_version(struct dec *d, const struct json *o, void *dst)
{
	struct pve_version *v = dst;

	d_str(d, o, "version", v->version, sizeof(v->version));
	d_str(d, o, "release", v->release, sizeof(v->release));
	d_str(d, o, "repoid", v->repoid, sizeof(v->repoid));
	if (!v->version[0])
		dec_fail(d, "version", "missing");
}

int pve_get_version(struct pve_client *c, struct pve_version *out, struct pve_err *e)
{
	return get_object(c, "/version", dec_version, out, sizeof(*out), e);
}

static void dec_node(struct dec *d, const struct json *o, void *dst)
{
	struct pve_node_entry *n = dst;

	d_str(d, o, "node", n->node, sizeof(n->node));
	d_str(d, o, "status", n->status, sizeof(n->status));
	d_str(d, o, "ssl_fingerprint", n->ssl_fingerprint, sizeof(n->ssl_fingerprint));
	d_dbl(d, o, "cpu", &n->cpu);
	d_i64(d, o, "maxcpu", &n->maxcpu, 0);
	d_i64(d, o, "mem", &n->mem, 0);
	d_i64(d, o, "maxmem", &n->maxmem, 0);
	d_i64(d, o, "uptime", &n->uptime, 0);
	if (!n->node[0])
		dec_fail(d, "node", "missing");
}

int pve_list_nodes(struct pve_client *c, struct pve_node_entry **out, size_t *n, struct pve_err *e)
{
	return get_list(c, "/nodes", sizeof(**out), dec_node, (void **)out, n, e);
}

static void dec_node_status(struct dec *d, const struct json *o, void *dst)
{
	struct pve_node_status *s = dst;
	const struct json *la = json_get(o, "loadavg");
	const struct json *mem = json_get(o, "memory"), *swap = json_get(o, "swap");
	const struct json *rootfs = json_get(o, "rootfs"), *ci = json_get(o, "cpuinfo");
	size_t i;

	d_dbl(d, o, "cpu", &s->cpu);
	d_i64(d, o, "uptime", &s->uptime, 0);
	if (la && la->type == JSON_ARRAY && la->n == 3) {
		for (i = 0; i < 3; i++) {
			if (json_strcpy(la->items[i], s->loadavg[i], sizeof(s->loadavg[i])))
				dec_fail(d, "loadavg", "want three short strings");
		}
	} else if (la && la->type != JSON_NULL) {
		dec_fail(d, "loadavg", "want an array of three");
	}
	if (!mem || mem->type != JSON_OBJECT)
		dec_fail(d, "memory", "missing");
	d_i64(d, mem, "total", &s->mem_total, 0);
	d_i64(d, mem, "used", &s->mem_used, 0);
	d_i64(d, mem, "free", &s->mem_free, 0);
	d_i64(d, swap, "total", &s->swap_total, 0);
	d_i64(d, swap, "used", &s->swap_used, 0);
	d_i64(d, rootfs, "total", &s->rootfs_total, 0);
	d_i64(d, rootfs, "used", &s->rootfs_used, 0);
	d_i64(d, rootfs, "avail", &s->rootfs_avail, 0);
	d_str(d, o, "kversion", s->kversion, sizeof(s->kversion));
	d_str(d, o, "pveversion", s->pveversion, sizeof(s->pveversion));
	d_int(d, ci, "cpus", &s->cpus, 0);
}

int pve_node_status(struct pve_client *c, struct pve_node_status *out, struct pve_err *e)
{
	char path[128];

	snprintf(path, sizeof(path), "/nodes/%s/status", c->node);
	return get_object(c, path, dec_node_status, out, sizeof(*out), e);
}

static void dec_guest(struct dec *d, const struct json *o, void *dst)
{
	struct pve_guest *g = dst;

	d_int(d, o, "vmid", &g->vmid, 0);
	d_str(d, o, "name", g->name, sizeof(g->name));
	d_str(d, o, "status", g->status, sizeof(g->status));
	d_str(d, o, "lock", g->lock, sizeof(g->lock));
	d_str(d, o, "tags", g->tags, sizeof(g->tags));
	d_bool(d, o, "template", &g->template_);
	d_int(d, o, "cpus", &g->cpus, 0);
	d_i64(d, o, "maxmem", &g->maxmem, 0);
	d_i64(d, o, "mem", &g->mem, 0);
	d_i64(d, o, "maxdisk", &g->maxdisk, 0);
	d_i64(d, o, "disk", &g->disk, 0);
	d_i64(d, o, "uptime", &g->uptime, 0);
	d_dbl(d, o, "cpu", &g->cpu);
	if (g->vmid < 1)
		dec_fail(d, "vmid", "missing or not positive");
}

int pve_list_lxc(struct pve_client *c, struct pve_guest **out, size_t *n, struct pve_err *e)
{
	char path[128];

	snprintf(path, sizeof(path), "/nodes/%s/lxc", c->node);
	return get_list(c, path, sizeof(**out), dec_guest, (void **)out, n, e);
}

static int check_vmid(int vmid, struct pve_err *e)
{
	if (vmid < 100 || vmid > 999999999) {
		set_reason(e, "vmid %d out of range 100..999999999", vmid);
		return fail(e, FH_ERR_INVAL);
	}
	return 0;
}

int pve_guest_status(struct pve_client *c, int vmid, struct pve_guest *out, struct pve_err *e)
{
	char path[160];
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d/status/current", c->node, vmid);
	return get_object(c, path, dec_guest, out, sizeof(*out), e);
}

void pve_guest_config_free(struct pve_guest_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n; i++) {
		free(cfg->kv[i].key);
		free(cfg->kv[i].value);
	}
	free(cfg->kv);
	cfg->kv = NULL;
	cfg->n = 0;
}

const char *pve_guest_config_get(const struct pve_guest_config *cfg, const char *key)
{
	size_t i;

	for (i = 0; i < cfg->n; i++) {
		if (!strcmp(cfg->kv[i].key, key))
			return cfg->kv[i].value;
	}
	return NULL;
}

/* "local-lvm:vm-101-disk-0,size=8G" -> 8. Sizes in T/G/M/K, rounded up to GiB. */
static int64_t rootfs_gib(const char *v)
{
	const char *p = strstr(v, ",size=");
	char *end;
	double x;

	if (!p)
		return -1;
	x = strtod(p + 6, &end);
	if (end == p + 6 || x < 0)
		return -1;
	switch (*end) {
	case 'T': x *= 1024.0; break;
	case 'G': break;
	case 'M': x /= 1024.0; break;
	case 'K': x /= 1024.0 * 1024.0; break;
	default: return -1;
	}
	if (x > 1e9)
		return -1;
	return (int64_t)(x + 0.999999);
}

int pve_list_qemu(struct pve_client *c, struct pve_guest **out, size_t *n, struct pve_err *e)
{
	char path[128];

	snprintf(path, sizeof(path), "/nodes/%s/qemu", c->node);
	return get_list(c, path, sizeof(**out), dec_guest, (void **)out, n, e);
}

static int config_of(struct pve_client *c, const char *kind, int vmid, struct pve_guest_config *out,
		     struct pve_err *e);

int pve_guest_config(struct pve_client *c, int vmid, struct pve_guest_config *out, struct pve_err *e)
{
	return config_of(c, "lxc", vmid, out, e);
}

int pve_qemu_config(struct pve_client *c, int vmid, struct pve_guest_config *out, struct pve_err *e)
{
	return config_of(c, "qemu", vmid, out, e);
}

/* GET /nodes/{node}/{kind}/{vmid}/config as key/value pairs. */
static int config_of(struct pve_client *c, const char *kind, int vmid, struct pve_guest_config *out,
		     struct pve_err *e)
{
	struct pve_guest_config g;
	struct json *root = NULL;
	const struct json *data;
	struct dec d = { e, 0 };
	char path[160];
	const char *v;
	size_t i;
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	memset(&g, 0, sizeof(g));
	snprintf(path, sizeof(path), "/nodes/%s/%s/%d/config", c->node, kind, vmid);
	r = request(c, "GET", path, NULL, &root, &data, e);
	if (r)
		return r;
	r = want_type(data, JSON_OBJECT, e);
	if (r)
		goto out;
	g.kv = calloc(data->n ? data->n : 1, sizeof(*g.kv));
	if (!g.kv) {
		r = fail(e, FH_ERR_NOMEM);
		goto out;
	}
	for (i = 0; i < data->n; i++) {
		const struct json *val = data->items[i];
		const char *s;
		if (val->type == JSON_BOOL)
			s = val->b ? "1" : "0";
		else if (json_str(val, &s)) {
			dec_fail(&d, data->keys[i], "want a scalar");
			break;
		}
		g.kv[g.n].key = strdup(data->keys[i]);
		g.kv[g.n].value = strdup(s);
		g.n++;
		if (!g.kv[g.n - 1].key || !g.kv[g.n - 1].value) {
			r = fail(e, FH_ERR_NOMEM);
			goto out;
		}
	}
	d_int(&d, data, "cores", &g.cores, 0);
	d_i64(&d, data, "memory", &g.memory_mib, -1);
	d_i64(&d, data, "swap", &g.swap_mib, -1);
	d_str(&d, data, "hostname", g.hostname, sizeof(g.hostname));
	d_str(&d, data, "rootfs", g.rootfs, sizeof(g.rootfs));
	d_str(&d, data, "digest", g.digest, sizeof(g.digest));
	d_str(&d, data, "lock", g.lock, sizeof(g.lock));
	d_bool(&d, data, "unprivileged", &g.unprivileged);
	d_bool(&d, data, "onboot", &g.onboot);
	if (d.r) {
		r = fail(e, d.r);
		goto out;
	}
	v = g.rootfs[0] ? g.rootfs : NULL;
	g.rootfs_gib = v ? rootfs_gib(v) : -1;
	*out = g;
	memset(&g, 0, sizeof(g));
	r = 0;
out:
	pve_guest_config_free(&g);
	json_free(root);
	return r;
}

static void dec_storage(struct dec *d, const struct json *o, void *dst)
{
	struct pve_storage *s = dst;

	d_str(d, o, "storage", s->storage, sizeof(s->storage));
	d_str(d, o, "type", s->type, sizeof(s->type));
	d_str(d, o, "content", s->content, sizeof(s->content));
	d_bool(d, o, "enabled", &s->enabled);
	d_bool(d, o, "active", &s->active);
	d_bool(d, o, "shared", &s->shared);
	d_i64(d, o, "total", &s->total, 0);
	d_i64(d, o, "used", &s->used, 0);
	d_i64(d, o, "avail", &s->avail, 0);
	d_dbl(d, o, "used_fraction", &s->used_fraction);
	if (!json_get(o, "enabled"))
		s->enabled = true;   /* absent means enabled */
	if (!s->storage[0])
		dec_fail(d, "storage", "missing");
}

int pve_list_storage(struct pve_client *c, struct pve_storage **out, size_t *n, struct pve_err *e)
{
	return get_list(c, "/storage", sizeof(**out), dec_storage, (void **)out, n, e);
}

int pve_node_storage(struct pve_client *c, struct pve_storage **out, size_t *n, struct pve_err *e)
{
	char path[128];

	snprintf(path, sizeof(path), "/nodes/%s/storage", c->node);
	return get_list(c, path, sizeof(**out), dec_storage, (void **)out, n, e);
}

static void dec_content(struct dec *d, const struct json *o, void *dst)
{
	struct pve_content *s = dst;
	const struct json *notes = json_get(o, "notes");
	const char *nt;

	d_str(d, o, "volid", s->volid, sizeof(s->volid));
	d_str(d, o, "format", s->format, sizeof(s->format));
	d_str(d, o, "content", s->content, sizeof(s->content));
	d_str(d, o, "subtype", s->subtype, sizeof(s->subtype));
	d_int(d, o, "vmid", &s->vmid, 0);
	d_i64(d, o, "size", &s->size, 0);
	d_i64(d, o, "ctime", &s->ctime, 0);
	d_bool(d, o, "protected", &s->protected_);
	if (!json_str(notes, &nt)) {
		size_t n = strcspn(nt, "\n");
		if (n >= sizeof(s->notes))
			n = sizeof(s->notes) - 1;
		memcpy(s->notes, nt, n);
		s->notes[n] = '\0';
	}
	if (!s->volid[0])
		dec_fail(d, "volid", "missing");
}

static int valid_ident(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return 0;
	}
	return 1;
}

int pve_storage_content(struct pve_client *c, const char *storage, const char *content,
			struct pve_content **out, size_t *n, struct pve_err *e)
{
	char path[256];

	if (!valid_ident(storage, 63) || (content && !valid_ident(content, 31))) {
		set_reason(e, "bad storage or content name");
		return fail(e, FH_ERR_INVAL);
	}
	snprintf(path, sizeof(path), "/nodes/%s/storage/%s/content%s%s", c->node, storage,
		 content ? "?content=" : "", content ? content : "");
	return get_list(c, path, sizeof(**out), dec_content, (void **)out, n, e);
}

/* Escapes a UPID for a path segment after checking it with the machine. */
static int upid_path(struct pve_client *c, const char *upid, const char *suffix, char *path, size_t len,
		     struct pve_err *e)
{
	struct upid u;
	char *esc;

	if (upid_parse(upid, strlen(upid), &u, NULL)) {
		set_reason(e, "malformed UPID");
		return fail(e, FH_ERR_UPID);
	}
	esc = curl_easy_escape(c->conn.h, upid, 0);
	if (!esc)
		return fail(e, FH_ERR_NOMEM);
	snprintf(path, len, "/nodes/%s/tasks/%s%s", c->node, esc, suffix);
	curl_free(esc);
	return 0;
}

static void dec_task_status(struct dec *d, const struct json *o, void *dst)
{
	struct pve_task_status *t = dst;

	d_str(d, o, "upid", t->upid, sizeof(t->upid));
	d_str(d, o, "status", t->status, sizeof(t->status));
	d_str(d, o, "exitstatus", t->exitstatus, sizeof(t->exitstatus));
	d_str(d, o, "type", t->type, sizeof(t->type));
	d_str(d, o, "id", t->id, sizeof(t->id));
	d_str(d, o, "user", t->user, sizeof(t->user));
	d_i64(d, o, "starttime", &t->starttime, 0);
	if (strcmp(t->status, "running") && strcmp(t->status, "stopped"))
		dec_fail(d, "status", "want running or stopped");
}

int pve_task_status(struct pve_client *c, const char *upid, struct pve_task_status *out, struct pve_err *e)
{
	char path[1024];
	int r = upid_path(c, upid, "/status", path, sizeof(path), e);

	if (r)
		return r;
	return get_object(c, path, dec_task_status, out, sizeof(*out), e);
}

/* Joins the "t" members of log lines [from, from+count) into dst. */
static int task_log_range(struct pve_client *c, const char *upid, long start, long limit, char *dst,
			  size_t dstlen, long *total, struct pve_err *e)
{
	struct json *root = NULL;
	const struct json *data;
	char path[1100], base[1024];
	size_t i, o = 0;
	int64_t tot = 0;
	int r = upid_path(c, upid, "/log", base, sizeof(base), e);

	if (r)
		return r;
	snprintf(path, sizeof(path), "%s?start=%ld&limit=%ld", base, start, limit);
	r = request(c, "GET", path, NULL, &root, &data, e);
	if (r)
		return r;
	r = want_type(data, JSON_ARRAY, e);
	if (r)
		goto out;
	if (json_int(json_get(root, "total"), &tot))
		tot = (int64_t)data->n;
	if (dst && dstlen) {
		dst[0] = '\0';
		for (i = 0; i < data->n; i++) {
			const char *t;
			size_t tn, k;
			if (json_str(json_get(data->items[i], "t"), &t))
				continue;
			tn = strlen(t);
			if (o && o + 1 < dstlen)
				dst[o++] = '\n';
			for (k = 0; k < tn && o + 1 < dstlen; k++)
				dst[o++] = ((unsigned char)t[k] < 0x20) ? ' ' : t[k];
			dst[o] = '\0';
		}
	}
	*total = (long)tot;
	r = 0;
out:
	json_free(root);
	return r;
}

int pve_task_log_tail(struct pve_client *c, const char *upid, unsigned max_lines, char *dst, size_t dstlen,
		      struct pve_err *e)
{
	long total = 0;
	int r = task_log_range(c, upid, 0, 1, NULL, 0, &total, e);

	if (r)
		return r;
	return task_log_range(c, upid, total > (long)max_lines ? total - (long)max_lines : 0, (long)max_lines,
			      dst, dstlen, &total, e);
}

static void dec_task_entry(struct dec *d, const struct json *o, void *dst)
{
	struct pve_task_entry *t = dst;

	d_str(d, o, "upid", t->upid, sizeof(t->upid));
	d_str(d, o, "type", t->type, sizeof(t->type));
	d_str(d, o, "id", t->id, sizeof(t->id));
	d_str(d, o, "user", t->user, sizeof(t->user));
	d_str(d, o, "status", t->status, sizeof(t->status));
	d_i64(d, o, "starttime", &t->starttime, 0);
	d_i64(d, o, "endtime", &t->endtime, 0);
}

int pve_list_tasks(struct pve_client *c, int vmid, int64_t since, struct pve_task_entry **out, size_t *n,
		   struct pve_err *e)
{
	char path[256];
	int k;

	k = snprintf(path, sizeof(path), "/nodes/%s/tasks?source=all&limit=%u", c->node, c->max_guests);
	if (vmid)
		k += snprintf(path + k, sizeof(path) - (size_t)k, "&vmid=%d", vmid);
	if (since > 0)
		snprintf(path + k, sizeof(path) - (size_t)k, "&since=%lld", (long long)since);
	return get_list(c, path, sizeof(**out), dec_task_entry, (void **)out, n, e);
}

static void dec_iface(struct dec *d, const struct json *o, void *dst)
{
	struct pve_iface *f = dst;

	d_str(d, o, "name", f->name, sizeof(f->name));
	d_str(d, o, "hwaddr", f->hwaddr, sizeof(f->hwaddr));
	d_str(d, o, "inet", f->inet, sizeof(f->inet));
	d_str(d, o, "inet6", f->inet6, sizeof(f->inet6));
}

int pve_lxc_interfaces(struct pve_client *c, int vmid, struct pve_iface **out, size_t *n, struct pve_err *e)
{
	char path[160];
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d/interfaces", c->node, vmid);
	return get_list(c, path, sizeof(**out), dec_iface, (void **)out, n, e);
}

/* ---- mutations ---- */

struct form {
	struct buf b;
	CURL *h;
	int r;
};

static void form_init(struct form *f, CURL *h)
{
	buf_init(&f->b, 64 * 1024);
	f->h = h;
	f->r = 0;
}

static void form_add(struct form *f, const char *k, const char *v)
{
	char *esc;

	if (f->r || !v)
		return;
	esc = curl_easy_escape(f->h, v, 0);
	if (!esc) {
		f->r = FH_ERR_NOMEM;
		return;
	}
	f->r = buf_printf(&f->b, "%s%s=%s", f->b.len ? "&" : "", k, esc);
	curl_free(esc);
}

static void form_addi(struct form *f, const char *k, long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%ld", v);
	form_add(f, k, s);
}

/* Sends a mutation and takes the UPID from "data". accept_ok: the answer
 * may be the string "OK" (vzdump); accept_null: null means synchronous. */
static int mutate(struct pve_client *c, const char *method, const char *path, struct form *f,
		  char upid[UPID_MAX], bool accept_ok, bool accept_null, bool *no_task, struct pve_err *e)
{
	struct json *root = NULL;
	const struct json *data;
	struct upid u;
	int r;

	if (f && f->r) {
		set_reason(e, "request parameters too large");
		r = fail(e, f->r);
		goto out;
	}
	r = request(c, method, path, f && f->b.len ? buf_str(&f->b) : (strcmp(method, "DELETE") ? "" : NULL),
		    &root, &data, e);
	if (r)
		goto out;
	if (no_task)
		*no_task = false;
	if (data->type == JSON_NULL && accept_null) {
		upid[0] = '\0';
		r = 0;
		goto out;
	}
	if (data->type != JSON_STRING) {
		set_reason(e, "mutation answered without a UPID");
		r = fail(e, FH_ERR_DECODE);
		goto out;
	}
	if (accept_ok && !strcmp(data->s, "OK")) {
		upid[0] = '\0';
		if (no_task)
			*no_task = true;
		r = 0;
		goto out;
	}
	if (data->slen >= UPID_MAX || upid_parse(data->s, data->slen, &u, NULL)) {
		set_reason(e, "mutation answered with a malformed UPID");
		r = fail(e, FH_ERR_UPID);
		goto out;
	}
	memcpy(upid, data->s, data->slen + 1);
	r = 0;
out:
	if (f)
		buf_free(&f->b);
	json_free(root);
	return r;
}

static int valid_snapname(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 40 || !isalpha((unsigned char)s[0]))
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	}
	return 1;
}

static int valid_volid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255 || !strchr(s, ':'))
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("-_.:/+", *s))
			return 0;
	}
	return 1;
}

int pve_restore_lxc(struct pve_client *c, const struct pve_restore *rs, char upid[UPID_MAX], struct pve_err *e)
{
	struct form f;
	char path[128];
	int r = check_vmid(rs->vmid, e);

	if (r)
		return r;
	if (!rs->ostemplate || !valid_volid(rs->ostemplate) || (rs->storage && !valid_ident(rs->storage, 63))) {
		set_reason(e, "bad archive volid or storage name");
		return fail(e, FH_ERR_INVAL);
	}
	form_init(&f, c->conn.h);
	form_addi(&f, "vmid", rs->vmid);
	form_add(&f, "ostemplate", rs->ostemplate);
	form_add(&f, "restore", "1");
	form_add(&f, "storage", rs->storage);
	if (rs->force)
		form_add(&f, "force", "1");
	if (rs->unique)
		form_add(&f, "unique", "1");
	if (rs->start)
		form_add(&f, "start", "1");
	snprintf(path, sizeof(path), "/nodes/%s/lxc", c->node);
	return mutate(c, "POST", path, &f, upid, false, false, NULL, e);
}

int pve_vzdump(struct pve_client *c, const struct pve_vzdump *v, char upid[UPID_MAX], bool *no_task,
	       struct pve_err *e)
{
	struct form f;
	char path[128];
	int r = check_vmid(v->vmid, e);

	if (r)
		return r;
	if (!v->storage || !valid_ident(v->storage, 63) || (v->mode && !valid_ident(v->mode, 16)) ||
	    (v->compress && !valid_ident(v->compress, 16))) {
		set_reason(e, "bad storage, mode or compress");
		return fail(e, FH_ERR_INVAL);
	}
	form_init(&f, c->conn.h);
	form_addi(&f, "vmid", v->vmid);
	form_add(&f, "storage", v->storage);
	form_add(&f, "mode", v->mode ? v->mode : "snapshot");
	form_add(&f, "compress", v->compress ? v->compress : "zstd");
	form_add(&f, "notes-template", v->notes_template);
	/* Retention is the agent's alone: never let vzdump prune by the
	 * storage's prune-backups settings (its default is remove=1). */
	form_add(&f, "remove", "0");
	snprintf(path, sizeof(path), "/nodes/%s/vzdump", c->node);
	return mutate(c, "POST", path, &f, upid, true, false, no_task, e);
}

int pve_snapshot(struct pve_client *c, int vmid, const char *name, const char *description,
		 char upid[UPID_MAX], struct pve_err *e)
{
	struct form f;
	char path[160];
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	if (!name || !valid_snapname(name)) {
		set_reason(e, "bad snapshot name");
		return fail(e, FH_ERR_INVAL);
	}
	form_init(&f, c->conn.h);
	form_add(&f, "snapname", name);
	form_add(&f, "description", description);
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d/snapshot", c->node, vmid);
	return mutate(c, "POST", path, &f, upid, false, false, NULL, e);
}

static int snap_op(struct pve_client *c, int vmid, const char *name, const char *method, const char *suffix,
		   char upid[UPID_MAX], struct pve_err *e)
{
	char path[200];
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	if (!name || !valid_snapname(name)) {
		set_reason(e, "bad snapshot name");
		return fail(e, FH_ERR_INVAL);
	}
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d/snapshot/%s%s", c->node, vmid, name, suffix);
	return mutate(c, method, path, NULL, upid, false, false, NULL, e);
}

int pve_rollback(struct pve_client *c, int vmid, const char *name, char upid[UPID_MAX], struct pve_err *e)
{
	return snap_op(c, vmid, name, "POST", "/rollback", upid, e);
}

int pve_delete_snapshot(struct pve_client *c, int vmid, const char *name, char upid[UPID_MAX],
			struct pve_err *e)
{
	return snap_op(c, vmid, name, "DELETE", "", upid, e);
}

int pve_set_config(struct pve_client *c, int vmid, const struct pve_param *set, size_t nset,
		   const char *delete_keys, const char *digest, char upid[UPID_MAX], struct pve_err *e)
{
	struct form f;
	char path[160];
	size_t i;
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	form_init(&f, c->conn.h);
	for (i = 0; i < nset; i++) {
		if (!valid_ident(set[i].key, 32) || !set[i].value) {
			buf_free(&f.b);
			set_reason(e, "bad config key");
			return fail(e, FH_ERR_INVAL);
		}
		form_add(&f, set[i].key, set[i].value);
	}
	form_add(&f, "delete", delete_keys);
	form_add(&f, "digest", digest);
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d/config", c->node, vmid);
	return mutate(c, "PUT", path, &f, upid, false, true, NULL, e);
}

static int power(struct pve_client *c, int vmid, const char *what, struct form *f, char upid[UPID_MAX],
		 struct pve_err *e)
{
	char path[160];
	int r = check_vmid(vmid, e);

	if (r) {
		if (f)
			buf_free(&f->b);
		return r;
	}
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d/status/%s", c->node, vmid, what);
	return mutate(c, "POST", path, f, upid, false, false, NULL, e);
}

int pve_start(struct pve_client *c, int vmid, char upid[UPID_MAX], struct pve_err *e)
{
	return power(c, vmid, "start", NULL, upid, e);
}

int pve_stop(struct pve_client *c, int vmid, char upid[UPID_MAX], struct pve_err *e)
{
	return power(c, vmid, "stop", NULL, upid, e);
}

int pve_shutdown(struct pve_client *c, int vmid, int timeout_s, bool force_stop, char upid[UPID_MAX],
		 struct pve_err *e)
{
	struct form f;

	form_init(&f, c->conn.h);
	if (timeout_s > 0)
		form_addi(&f, "timeout", timeout_s);
	if (force_stop)
		form_add(&f, "forceStop", "1");
	return power(c, vmid, "shutdown", &f, upid, e);
}

int pve_destroy(struct pve_client *c, int vmid, bool purge, bool force, char upid[UPID_MAX], struct pve_err *e)
{
	char path[200];
	int r = check_vmid(vmid, e);

	if (r)
		return r;
	snprintf(path, sizeof(path), "/nodes/%s/lxc/%d%s%s%s", c->node, vmid,
		 purge || force ? "?" : "", purge ? "purge=1" : "", force ? (purge ? "&force=1" : "force=1") : "");
	return mutate(c, "DELETE", path, NULL, upid, false, false, NULL, e);
}

int pve_delete_volume(struct pve_client *c, const char *storage, const char *volid, char upid[UPID_MAX],
		      struct pve_err *e)
{
	char path[640];
	char *esc;
	const char *colon;

	if (!storage || !valid_ident(storage, 63) || !volid || !valid_volid(volid)) {
		set_reason(e, "bad storage name or volid");
		return fail(e, FH_ERR_INVAL);
	}
	/* The volid must live on the named storage. */
	colon = strchr(volid, ':');
	if ((size_t)(colon - volid) != strlen(storage) || strncmp(volid, storage, strlen(storage)) ||
	    !colon[1] || strstr(volid, "..")) {
		set_reason(e, "volid is not on the named storage");
		return fail(e, FH_ERR_INVAL);
	}
	esc = curl_easy_escape(c->conn.h, volid, 0);
	if (!esc) {
		set_reason(e, "out of memory");
		return fail(e, FH_ERR_NOMEM);
	}
	snprintf(path, sizeof(path), "/nodes/%s/storage/%s/content/%s", c->node, storage, esc);
	curl_free(esc);
	return mutate(c, "DELETE", path, NULL, upid, false, true, NULL, e);
}

/* ---- task waiting ---- */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Sleeps ms in short slices; FH_ERR_CANCELLED as soon as cancelled. */
static int nap(struct pve_client *c, long ms)
{
	long end = now_ms() + ms;

	for (;;) {
		long left = end - now_ms();
		struct timespec ts;
		if (atomic_load(&c->conn.cancelled))
			return FH_ERR_CANCELLED;
		if (left <= 0)
			return 0;
		if (left > 20)
			left = 20;
		ts.tv_sec = 0;
		ts.tv_nsec = left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* "WARNINGS: n" -> n; -1 otherwise. */
static long warnings_count(const char *s)
{
	char *end;
	long n;

	if (strncmp(s, "WARNINGS: ", 10))
		return -1;
	n = strtol(s + 10, &end, 10);
	if (end == s + 10 || *end || n < 0)
		return -1;
	return n;
}

int pve_task_wait(struct pve_client *c, const char *upid, struct pve_task_result *res, struct pve_err *e)
{
	struct pve_task_status st;
	struct pve_task_result out;
	struct pve_err tmp;
	long start = now_ms(), interval = c->poll_initial_ms, w;
	int r;

	memset(&out, 0, sizeof(out));
	for (;;) {
		r = pve_task_status(c, upid, &st, e);
		if (r == FH_ERR_HTTP_4XX && e && e->http_status == 400 && strstr(e->reason, "no such task") &&
		    now_ms() - start < PVE_NO_SUCH_TASK_GRACE_MS) {
			/* the task's log file is not there yet just after dispatch */
		} else if (r) {
			return r;
		} else if (!strcmp(st.status, "stopped")) {
			break;
		}
		if (now_ms() - start >= c->task_timeout_ms) {
			err_reset(e, "GET", "task");
			set_reason(e, "task still running after %ld ms", c->task_timeout_ms);
			return fail(e, FH_ERR_TIMEOUT);
		}
		r = nap(c, interval);
		if (r) {
			err_reset(e, "GET", "task");
			set_reason(e, "cancelled while waiting for the task");
			return fail(e, r);
		}
		interval = interval * 2 > c->poll_max_ms ? c->poll_max_ms : interval * 2;
	}
	snprintf(out.exitstatus, sizeof(out.exitstatus), "%s", st.exitstatus);
	w = warnings_count(st.exitstatus);
	if (!strcmp(st.exitstatus, "OK")) {
		*res = out;
		return 0;
	}
	/* failure or warnings: keep the log tail (best effort) */
	if (pve_task_log_tail(c, upid, 20, out.log_tail, sizeof(out.log_tail), &tmp))
		out.log_tail[0] = '\0';
	if (w >= 0) {
		out.warnings = (unsigned)w;
		*res = out;
		return 0;
	}
	err_reset(e, "GET", "task");
	if (e) {
		snprintf(e->exitstatus, sizeof(e->exitstatus), "%s", st.exitstatus);
		snprintf(e->log_tail, sizeof(e->log_tail), "%s", out.log_tail);
		set_reason(e, "task %s failed: %s", st.type[0] ? st.type : "?", st.exitstatus);
		if (pve_parse_permission(st.exitstatus, e->privilege, sizeof(e->privilege), e->perm_path,
					 sizeof(e->perm_path)))
			pve_parse_permission(out.log_tail, e->privilege, sizeof(e->privilege), e->perm_path,
					     sizeof(e->perm_path));
	}
	return fail(e, FH_ERR_TASK);
}
