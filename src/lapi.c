/* lapi.c — the local API server (lapi.h; docs/LOCALAPI.md).
 *
 * Threads
 *   event     epoll over the listener, an eventfd and every connection;
 *             accepts, admits by source address, drives wolfSSL (its own
 *             recv/send callbacks on non-blocking sockets), parses with
 *             httpreq_feed and answers. Level-triggered; a connection is in
 *             one phase at a time: HS (handshake) -> READ (a request is
 *             coming) -> WRITE -> IDLE (keep-alive) -> READ ...; BACKEND
 *             while the worker runs a backup call for it; LINGER after a
 *             closing answer (close_notify sent, write side shut): input is
 *             drained and dropped for up to LINGER_MS / LINGER_BYTES so the
 *             client reads the answer instead of a reset (as nginx's
 *             lingering_close).
 *   worker    runs the registered backend's calls one at a time; results
 *             come back through a ring and the eventfd.
 *   refresher (when opts.pve is given) collects snapshots (lapi_data.c).
 *
 * Deadlines: each phase has its own FIFO timer list (the timeout of a list
 * is constant, so appending keeps it sorted); the event loop sleeps until
 * the earliest head. HS, READ (first byte to end of request, never
 * extended by slow bytes), IDLE and WRITE expiry close the connection;
 * BACKEND expiry answers 503.
 *
 * Connections are found from epoll and worker results by slot + generation,
 * so an event for a connection closed earlier in the same batch is ignored.
 */
#include "lapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfio.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <yajl/yajl_gen.h>

#include "buf.h"
#include "err.h"
#include "httpreq.h"
#include "json.h"
#include "lapi_int.h"
#include "utf8.h"

#define ID_LISTEN UINT64_MAX
#define ID_WAKE (UINT64_MAX - 1)
#define IN_BUF 16384
#define OUT_KEEP (64 * 1024)      /* larger output buffers are freed after use */
#define PIPELINE_BUDGET 16        /* requests per wakeup before yielding */
#define PRIV_TIMEOUT_CAP_MS 15000
#define LINGER_MS 2000            /* drain after a closing answer ... */
#define LINGER_BYTES (1u << 20)   /* ... at most this much */

enum phase { PH_HS = 0, PH_READ, PH_IDLE, PH_WRITE, PH_BACKEND, PH_LINGER, PH__N };
enum op { OP_DUE = 1, OP_ENQUEUE, OP_STATUS, OP_DISK };

struct conn {
	int slot;
	uint32_t gen;
	int fd;
	enum phase phase;
	WOLFSSL *ssl;
	struct lapi_addr peer;
	char peer_s[48];
	bool trusted;                 /* loopback (unless untrusted) or monitor */
	uint32_t interest;
	struct conn *tprev, *tnext;   /* timer list */
	int tlist;                    /* -1: none */
	int64_t deadline;
	bool pending;                 /* buffered input to process without an event */
	bool io_eof;                  /* the socket said EOF / reset */
	bool cont;                    /* writing "100 Continue" */
	bool close_after;
	unsigned nreq;
	size_t lingered;
	uint32_t job_seq;
	int vmid;
	struct httpreq req;
	unsigned char in[IN_BUF];
	size_t in_off, in_len;
	struct buf out;
	size_t out_off;
};

struct job {
	enum op op;
	int vmid;
	int slot;
	uint32_t gen, seq;
	int rc;
	struct lapi_backup_due due;
	struct lapi_backup_job bj;
	/* OP_DISK */
	enum lapi_disk_op dop;
	char *body;                  /* copy of the request body (malloc'd), NULL when empty */
	size_t blen;
	struct buf data;             /* the envelope's data, raw JSON */
	int hstatus;
	char err[256];
};

struct ratelimit {
	double tokens;
	int64_t last_ms;
	unsigned long suppressed;
};

struct lapi {
	/* configuration */
	struct store *store;
	struct cfg_addr *ga;
	size_t nga;
	struct lapi_addr *monitors;
	size_t nmon;
	bool loopback_untrusted;
	unsigned max_conns, max_per_addr;
	long tl_ms[PH__N];
	long refresh_ms, slow_refresh_ms;
	int64_t hub_fresh;
	lapi_event_fn on_event;
	void *event_ctx;
	int port;

	/* event thread */
	WOLFSSL_CTX *ctx;
	int lfd, ep, wfd;
	pthread_t ev_thread;
	bool ev_started;
	struct conn **slots;
	unsigned nconns;
	uint32_t next_gen;
	struct conn *th[PH__N], *tt[PH__N];
	unsigned npending;
	int64_t now;
	int64_t accept_paused_until;
	struct buf scratch;
	atomic_bool stop;

	/* snapshot */
	pthread_mutex_t snap_mu;
	struct lapi_snap *snap;
	atomic_llong proxmox_ok_at;   /* Unix seconds of the last good refresh */
	atomic_llong hub_at;

	/* worker */
	pthread_mutex_t wmu;
	pthread_cond_t wcv, wdone;
	pthread_t wk_thread;
	bool wk_started;
	struct lapi_backend be;
	void *be_ctx;
	lapi_disks_fn disks;
	void *disks_ctx;
	bool have_be, calling;
	struct job q[LAPI_BACKEND_QUEUE], done[LAPI_BACKEND_QUEUE];
	unsigned qh, qn, dh, dn, inflight;

	/* refresher */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	pthread_t rf_thread;
	bool rf_started, kick;
	pthread_mutex_t refresh_mu;   /* one refresh at a time */
	struct pve_client *pve;
	struct priv *priv;

	/* events */
	pthread_mutex_t ev_mu;
	struct ratelimit rl[LAPI_EV__COUNT];

	/* stats */
	atomic_ulong st_accepted, st_rej_addr, st_rej_cap, st_hs, st_hs_fail, st_timeouts, st_requests,
		st_2xx, st_4xx, st_5xx, st_auth, st_forbidden, st_bad, st_be_timeouts, st_refreshes,
		st_refresh_fail, st_revoked, st_active;
	atomic_llong st_snap_at;
};

static const char *const ev_names[LAPI_EV__COUNT] = {
	"addr_rejected", "conn_cap", "auth_failed", "forbidden", "refresh_failed", "tokens_revoked",
};

/* ------------------------------------------------------------------ misc */

static pthread_once_t g_wolf_once = PTHREAD_ONCE_INIT;
static int g_wolf_rc;

static void wolf_init_once(void)
{
	g_wolf_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

void lapi_wolf_init(void)
{
	pthread_once(&g_wolf_once, wolf_init_once);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void inc(atomic_ulong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

/* Reports an event through the callback, at most 5/s per kind (burst 20). */
static void emit(struct lapi *l, enum lapi_event_kind kind, const char *addr, int vmid, const char *reason,
		 int code, unsigned long count)
{
	struct ratelimit *rl;
	struct lapi_event ev;
	int64_t now;

	if (!l->on_event)
		return;
	pthread_mutex_lock(&l->ev_mu);
	rl = &l->rl[kind];
	now = mono_ms();
	rl->tokens += (double)(now - rl->last_ms) * 5.0 / 1000.0;
	if (rl->tokens > 20.0)
		rl->tokens = 20.0;
	rl->last_ms = now;
	if (rl->tokens < 1.0) {
		rl->suppressed++;
		pthread_mutex_unlock(&l->ev_mu);
		return;
	}
	rl->tokens -= 1.0;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.name = ev_names[kind];
	copy_str(ev.addr, sizeof ev.addr, addr);
	ev.vmid = vmid;
	ev.reason = reason ? reason : "";
	ev.code = code;
	ev.count = count;
	ev.suppressed = rl->suppressed;
	rl->suppressed = 0;
	l->on_event(l->event_ctx, &ev);
	pthread_mutex_unlock(&l->ev_mu);
}

/* --------------------------------------------------------------- listening */

int lapi_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *sslen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h;
	size_t hl;
	char *end;
	long port;

	if (!s || !ss || !sslen)
		return FH_ERR_CONFIG;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return FH_ERR_CONFIG;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return FH_ERR_CONFIG;   /* bare IPv6 needs brackets */
		h = s;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof host || !colon[1])
		return FH_ERR_CONFIG;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || errno || port < 0 || port > 65535 || colon[1] == '-' || colon[1] == '+')
		return FH_ERR_CONFIG;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof *ss);
	if (s[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return FH_ERR_CONFIG;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*sslen = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return FH_ERR_CONFIG;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof *in6;
	}
	return 0;
}

/* "ADDR:8443" for the first IPv4 address of the bridge. */
static int bridge_listen(const char *bridge, char *dst, size_t n)
{
	struct ifaddrs *ifs = NULL, *i;
	int r = FH_ERR_CONFIG;

	if (getifaddrs(&ifs) != 0)
		return FH_ERR_CONFIG;
	for (i = ifs; i; i = i->ifa_next) {
		char a[INET_ADDRSTRLEN];
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, bridge) != 0)
			continue;
		if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr, a,
			       sizeof a))
			continue;
		snprintf(dst, n, "%s:%d", a, LAPI_DEFAULT_PORT);
		r = 0;
		break;
	}
	freeifaddrs(ifs);
	return r;
}

static int open_listener(const struct sockaddr_storage *ss, unsigned sslen, int *fd_out, int *port)
{
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return FH_ERR_IO;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)ss, (socklen_t)sslen) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &bl) != 0) {
		close(fd);
		return FH_ERR_IO;
	}
	*port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&bound)->sin_port
						 : ((struct sockaddr_in6 *)(void *)&bound)->sin6_port);
	*fd_out = fd;
	return 0;
}

/* ------------------------------------------------------------- TLS I/O */

static int io_recv(WOLFSSL *ssl, char *b, int sz, void *vctx)
{
	struct conn *c = vctx;

	(void)ssl;
	return tlspin_io_recv(c->fd, b, sz, &c->io_eof);
}

static int io_send(WOLFSSL *ssl, char *b, int sz, void *vctx)
{
	struct conn *c = vctx;

	(void)ssl;
	return tlspin_io_send(c->fd, b, sz, &c->io_eof);
}

/* ------------------------------------------------------------ connections */

static uint64_t conn_id(const struct conn *c)
{
	return (uint64_t)c->gen << 32 | (uint32_t)c->slot;
}

static void set_interest(struct lapi *l, struct conn *c, uint32_t ev)
{
	struct epoll_event e;

	if (c->interest == ev)
		return;
	memset(&e, 0, sizeof e);
	e.events = ev;
	e.data.u64 = conn_id(c);
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->interest = ev;
}

static void timer_unlink(struct lapi *l, struct conn *c)
{
	int t = c->tlist;

	if (t < 0)
		return;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		l->th[t] = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		l->tt[t] = c->tprev;
	c->tprev = c->tnext = NULL;
	c->tlist = -1;
}

static void timer_set(struct lapi *l, struct conn *c, int t)
{
	timer_unlink(l, c);
	c->tlist = t;
	c->deadline = l->now + l->tl_ms[t];
	c->tprev = l->tt[t];
	c->tnext = NULL;
	if (l->tt[t])
		l->tt[t]->tnext = c;
	else
		l->th[t] = c;
	l->tt[t] = c;
}

static void set_pending(struct lapi *l, struct conn *c, bool on)
{
	if (c->pending == on)
		return;
	c->pending = on;
	if (on)
		l->npending++;
	else
		l->npending--;
}

static void conn_close(struct lapi *l, struct conn *c)
{
	(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	timer_unlink(l, c);
	set_pending(l, c, false);
	if (c->ssl)
		wolfSSL_free(c->ssl);
	close(c->fd);
	buf_free(&c->out);
	l->slots[c->slot] = NULL;
	l->nconns--;
	atomic_fetch_sub_explicit(&l->st_active, 1, memory_order_relaxed);
	free(c);
}

/* --------------------------------------------------------------- answers */

static const char *status_text(int s)
{
	switch (s) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Appends s as a JSON string (ASCII escaping of quotes, backslash, controls). */
static int json_str_append(struct buf *b, const char *s)
{
	int r = buf_append(b, "\"", 1);

	for (; !r && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			r = buf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			r = buf_printf(b, "\\u%04x", ch);
		else
			r = buf_append(b, s, 1);
	}
	return r ? r : buf_append(b, "\"", 1);
}

/* Starts a response; body parts follow with respond_part, then respond_end. */
static void respond_parts(struct lapi *l, struct conn *c, int status, const char *extra,
			  const char *const *parts, const size_t *lens, size_t nparts)
{
	size_t total = 0, i;
	int r;

	for (i = 0; i < nparts; i++)
		total += lens[i];
	if (c->out.alloc > OUT_KEEP) {
		buf_free(&c->out);
		buf_init(&c->out, LAPI_RESPONSE_MAX - 1);
	}
	buf_reset(&c->out);
	if (!c->req.keep_alive || c->nreq + 1 >= LAPI_MAX_REQUESTS_PER_CONN || status == 400 || status == 413 ||
	    status == 417 || status == 431 || status == 505 || (status == 501 && c->req.status == 501))
		c->close_after = true;
	r = buf_printf(&c->out,
		       "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		       "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
		       status, status_text(status), total, extra ? extra : "",
		       c->close_after ? "Connection: close\r\n" : "");
	for (i = 0; !r && i < nparts; i++)
		r = buf_append(&c->out, parts[i], lens[i]);
	if (r) {
		/* over the 1 MiB cap or out of memory: a short 500 instead */
		static const char body[] = "{\"ok\":false,\"data\":null,\"error\":\"response too large\"}";
		buf_reset(&c->out);
		c->close_after = true;
		status = 500;
		(void)buf_printf(&c->out,
				 "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				 sizeof body - 1, body);
	}
	if (status < 300)
		inc(&l->st_2xx);
	else if (status < 500)
		inc(&l->st_4xx);
	else
		inc(&l->st_5xx);
	inc(&l->st_requests);
	c->out_off = 0;
	c->phase = PH_WRITE;
	timer_set(l, c, PH_WRITE);
}

static void respond_body(struct lapi *l, struct conn *c, int status, const char *extra, const char *body,
			 size_t len)
{
	const char *parts[1] = { body };
	size_t lens[1] = { len };

	respond_parts(l, c, status, extra, parts, lens, 1);
}

/* {"ok":OK,"data":DATA,"error":"msg"} */
static void respond_envelope(struct lapi *l, struct conn *c, int status, const char *extra, bool ok,
			     const char *msg, const char *data_json, size_t data_len)
{
	struct buf *b = &l->scratch;
	int r;

	buf_reset(b);
	r = buf_appendz(b, ok ? "{\"ok\":true,\"data\":" : "{\"ok\":false,\"data\":");
	if (!r)
		r = data_json && data_len ? buf_append(b, data_json, data_len) : buf_appendz(b, "null");
	if (!r)
		r = buf_appendz(b, ",\"error\":");
	if (!r)
		r = json_str_append(b, msg);
	if (!r)
		r = buf_append(b, "}", 1);
	if (r) {
		buf_reset(b);
		(void)buf_appendz(b, "{\"ok\":false,\"data\":null,\"error\":\"internal\"}");
		status = 500;
	}
	respond_body(l, c, status, extra, b->data, b->len);
}

/* {"ok":false,"data":DATA,"error":"msg"} */
static void respond_error_data(struct lapi *l, struct conn *c, int status, const char *extra, const char *msg,
			       const char *data_json)
{
	respond_envelope(l, c, status, extra, false, msg, data_json, data_json ? strlen(data_json) : 0);
}

static void respond_error(struct lapi *l, struct conn *c, int status, const char *msg)
{
	respond_error_data(l, c, status, status == 401 ? "WWW-Authenticate: Bearer realm=\"felhom-agent\"\r\n" : NULL,
			   msg, NULL);
}

/* ------------------------------------------------------------------ worker */

static void job_release(struct job *j)
{
	free(j->body);
	j->body = NULL;
	buf_free(&j->data);
}

/* Queues a backend call for c; for OP_DISK, with a copy of the body. */
static int submit_job(struct lapi *l, struct conn *c, enum op op, enum lapi_disk_op dop, const char *body,
		      size_t blen)
{
	struct job *j;
	char *copy = NULL;
	int r = 0;

	if (op == OP_DISK && blen) {
		copy = malloc(blen);
		if (!copy)
			return FH_ERR_NOMEM;
		memcpy(copy, body, blen);
	}
	pthread_mutex_lock(&l->wmu);
	if (op == OP_DISK ? !l->disks : !l->have_be) {
		r = FH_ERR_NOT_FOUND;
	} else if (l->inflight >= LAPI_BACKEND_QUEUE) {
		r = FH_ERR_TOOBIG;
	} else {
		j = &l->q[(l->qh + l->qn) % LAPI_BACKEND_QUEUE];
		memset(j, 0, sizeof *j);
		j->op = op;
		j->vmid = c->vmid;
		j->slot = c->slot;
		j->gen = c->gen;
		j->seq = ++c->job_seq;
		j->dop = dop;
		j->body = copy;
		j->blen = blen;
		copy = NULL;
		buf_init(&j->data, LAPI_RESPONSE_MAX / 2);
		l->qn++;
		l->inflight++;
		pthread_cond_signal(&l->wcv);
	}
	pthread_mutex_unlock(&l->wmu);
	free(copy);
	return r;
}

static void *worker_main(void *arg)
{
	struct lapi *l = arg;

	pthread_mutex_lock(&l->wmu);
	for (;;) {
		struct job j;
		struct lapi_backend be;
		void *ctx, *dctx;
		lapi_disks_fn disks;
		bool have;
		uint64_t one = 1;

		while (!atomic_load(&l->stop) && l->qn == 0)
			pthread_cond_wait(&l->wcv, &l->wmu);
		if (atomic_load(&l->stop))
			break;
		j = l->q[l->qh];
		l->qh = (l->qh + 1) % LAPI_BACKEND_QUEUE;
		l->qn--;
		be = l->be;
		ctx = l->be_ctx;
		have = l->have_be;
		disks = l->disks;
		dctx = l->disks_ctx;
		l->calling = true;
		pthread_mutex_unlock(&l->wmu);

		if (j.op == OP_DISK) {
			j.hstatus = 0;
			j.rc = disks ? disks(dctx, j.dop, j.vmid, j.body ? j.body : "", j.blen, &j.hstatus, &j.data,
					     j.err, sizeof j.err) :
				       FH_ERR_CANCELLED;
			j.err[sizeof j.err - 1] = '\0';
		} else if (!have)
			j.rc = FH_ERR_CANCELLED;
		else if (j.op == OP_DUE)
			j.rc = be.backup_due ? be.backup_due(ctx, j.vmid, &j.due) : FH_ERR_INTERNAL;
		else if (j.op == OP_ENQUEUE)
			j.rc = be.backup_enqueue ? be.backup_enqueue(ctx, j.vmid, &j.bj) : FH_ERR_INTERNAL;
		else
			j.rc = be.backup_status ? be.backup_status(ctx, j.vmid, &j.bj) : FH_ERR_INTERNAL;
		j.due.reason[sizeof j.due.reason - 1] = '\0';
		j.bj.job_id[sizeof j.bj.job_id - 1] = '\0';
		j.bj.phase[sizeof j.bj.phase - 1] = '\0';
		j.bj.error[sizeof j.bj.error - 1] = '\0';

		pthread_mutex_lock(&l->wmu);
		l->calling = false;
		pthread_cond_broadcast(&l->wdone);
		l->done[(l->dh + l->dn) % LAPI_BACKEND_QUEUE] = j;
		l->dn++;
		(void)!write(l->wfd, &one, sizeof one);
	}
	pthread_mutex_unlock(&l->wmu);
	return NULL;
}

static bool phase_ok(const char *p)
{
	return !strcmp(p, "idle") || !strcmp(p, "running") || !strcmp(p, "done") || !strcmp(p, "failed");
}

/* A finished disk call: its status, data and error in the envelope. */
static void answer_disk(struct lapi *l, struct conn *c, const struct job *j)
{
	int st = j->hstatus;

	if (j->rc) {     /* whatever data holds is partial */
		bool unavail = j->rc == FH_ERR_TIMEOUT || j->rc == FH_ERR_CANCELLED;
		respond_error(l, c, unavail ? 503 : 500,
			      j->rc == FH_ERR_CANCELLED ? "disk management not available" : fh_strerror(j->rc));
		return;
	}
	if (st < 200 || st > 599)
		st = 200;
	if (!utf8_valid(j->err, strlen(j->err))) {
		respond_error(l, c, 500, "backend gave a string that is not UTF-8");
		return;
	}
	respond_envelope(l, c, st, NULL, st < 300, st < 300 ? "" : j->err[0] ? j->err : "error", j->data.data,
			 j->data.len);
}

/* Renders a finished backend call as the answer of c. */
static void answer_job(struct lapi *l, struct conn *c, const struct job *j)
{
	yajl_gen g;
	const unsigned char *text;
	size_t len;
	int status = j->op == OP_ENQUEUE ? 202 : 200;
	bool ok = true;

	if (j->rc) {
		bool unavail = j->rc == FH_ERR_TIMEOUT || j->rc == FH_ERR_CANCELLED;
		respond_error(l, c, unavail ? 503 : 500,
			      j->rc == FH_ERR_CANCELLED ? "backups not available" : fh_strerror(j->rc));
		return;
	}
	if (j->op != OP_DUE && !phase_ok(j->bj.phase)) {
		respond_error(l, c, 500, "backend gave an unknown phase");
		return;
	}
	g = yajl_gen_alloc(NULL);
	if (!g) {
		respond_error(l, c, 500, "nomem");
		return;
	}
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
#define S(s) ok = ok && yajl_gen_string(g, (const unsigned char *)(s), strlen(s)) == yajl_gen_status_ok
	ok = yajl_gen_map_open(g) == yajl_gen_status_ok;
	S("ok");
	ok = ok && yajl_gen_bool(g, 1) == yajl_gen_status_ok;
	S("data");
	ok = ok && yajl_gen_map_open(g) == yajl_gen_status_ok;
	S("vmid");
	ok = ok && yajl_gen_integer(g, j->vmid) == yajl_gen_status_ok;
	if (j->op == OP_DUE) {
		S("due");
		ok = ok && yajl_gen_bool(g, j->due.due) == yajl_gen_status_ok;
		S("reason");
		S(j->due.reason);
	} else if (j->op == OP_ENQUEUE) {
		S("job_id");
		S(j->bj.job_id);
		S("phase");
		S(j->bj.phase);
	} else {
		S("phase");
		S(j->bj.phase);
		S("job_id");
		S(j->bj.job_id);
		S("error");
		S(j->bj.error);
	}
	ok = ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
	S("error");
	S("");
	ok = ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
#undef S
	if (ok && yajl_gen_get_buf(g, &text, &len) == yajl_gen_status_ok)
		respond_body(l, c, status, NULL, (const char *)text, len);
	else
		respond_error(l, c, 500, "backend gave a string that is not UTF-8");
	yajl_gen_free(g);
}

static void drive(struct lapi *l, struct conn *c);

/* Takes finished jobs off the ring and answers their connections. */
static void drain_done(struct lapi *l)
{
	for (;;) {
		struct job j;
		struct conn *c;

		pthread_mutex_lock(&l->wmu);
		if (l->dn == 0) {
			pthread_mutex_unlock(&l->wmu);
			return;
		}
		j = l->done[l->dh];
		l->dh = (l->dh + 1) % LAPI_BACKEND_QUEUE;
		l->dn--;
		l->inflight--;
		pthread_mutex_unlock(&l->wmu);
		c = j.slot >= 0 && (unsigned)j.slot < l->max_conns ? l->slots[j.slot] : NULL;
		if (!c || c->gen != j.gen || c->job_seq != j.seq || c->phase != PH_BACKEND) {
			job_release(&j);
			continue;   /* closed, or already answered 503 */
		}
		if (j.op == OP_DISK)
			answer_disk(l, c, &j);
		else
			answer_job(l, c, &j);
		job_release(&j);
		drive(l, c);
	}
}

/* After submit_job: 503 when it was refused, else the connection waits
 * for the backend's answer under its deadline. */
static void await_backend(struct lapi *l, struct conn *c, int submit_rc)
{
	if (submit_rc) {
		respond_error(l, c, 503, "busy");
		return;
	}
	c->phase = PH_BACKEND;
	timer_set(l, c, PH_BACKEND);
	set_interest(l, c, 0);
}

/* ---------------------------------------------------------------- routing */

enum route_id {
	R_HEALTHZ, R_READYZ, R_STORAGE, R_METRICS, R_BACKUP_DUE, R_BACKUP, R_BACKUP_STATUS, R_DISKS,
	R_DISKS_ASSIGN, R_DISKS_EJECT, R_DISKS_FORMAT
};
struct route {
	const char *path;
	const char *method;
	enum route_id id;
	bool noauth;
};
static const struct route routes[] = {
	{ "/healthz", "GET", R_HEALTHZ, true },
	{ "/readyz", "GET", R_READYZ, true },
	{ "/storage", "GET", R_STORAGE, false },
	{ "/host/metrics", "GET", R_METRICS, false },
	{ "/backup/due", "GET", R_BACKUP_DUE, false },
	{ "/backup", "POST", R_BACKUP, false },
	{ "/backup/status", "GET", R_BACKUP_STATUS, false },
	{ "/disks", "GET", R_DISKS, false },
	{ "/disks/assign", "POST", R_DISKS_ASSIGN, false },
	{ "/disks/eject", "POST", R_DISKS_EJECT, false },
	{ "/disks/format", "POST", R_DISKS_FORMAT, false },
};

static const struct route *find_route(const char *path, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		if (strlen(routes[i].path) == n && memcmp(routes[i].path, path, n) == 0)
			return &routes[i];
	}
	return NULL;
}

static void respond_method(struct lapi *l, struct conn *c, const struct route *rt)
{
	char allow[48];

	snprintf(allow, sizeof allow, "Allow: %s\r\n", rt->method);
	respond_error_data(l, c, 405, allow, "method not allowed", NULL);
}

static void handle_ready(struct lapi *l, struct conn *c, bool ready_probe)
{
	int64_t now = (int64_t)time(NULL);
	long long pok = atomic_load(&l->proxmox_ok_at), hub = atomic_load(&l->hub_at);
	int64_t pwin = 3 * (l->refresh_ms / 1000) + 30;
	bool prox = pok > 0 && now - pok <= pwin, hubok = hub > 0 && now - hub <= l->hub_fresh;
	char body[160];
	int n;

	if (!ready_probe) {
		static const char alive[] = "{\"ok\":true,\"data\":{\"alive\":true},\"error\":\"\"}";
		respond_body(l, c, 200, NULL, alive, sizeof alive - 1);
		return;
	}
	if (prox && hubok)
		n = snprintf(body, sizeof body, "{\"ok\":true,\"data\":{\"ready\":true,\"proxmox\":true,\"hub\":true},"
			     "\"error\":\"\"}");
	else
		n = snprintf(body, sizeof body, "{\"ok\":false,\"data\":{\"ready\":false,\"proxmox\":%s,\"hub\":%s},"
			     "\"error\":\"not ready\"}", prox ? "true" : "false", hubok ? "true" : "false");
	respond_body(l, c, prox && hubok ? 200 : 503, NULL, body, (size_t)n);
}

/* 0 and *vmid, or an answer was given (401/503) and -1. */
static int authenticate(struct lapi *l, struct conn *c, int *vmid)
{
	const char *a = c->req.auth;
	size_t n = c->req.auth_len, i = 6;
	const char *why;
	int r;

	if (!c->req.has_auth) {
		why = "no bearer token";
		goto fail;
	}
	if (n < 7 || strncasecmp(a, "bearer", 6) != 0 || (a[6] != ' ' && a[6] != '\t')) {
		why = "not a bearer token";
		goto fail;
	}
	while (i < n && (a[i] == ' ' || a[i] == '\t'))
		i++;
	r = lapi_token_check(l->store, a + i, n - i, vmid);
	if (r == 0)
		return 0;
	if (r != FH_ERR_NOT_FOUND) {
		respond_error(l, c, 503, "token store unavailable");
		return -1;
	}
	why = "unknown or revoked token";
fail:
	inc(&l->st_auth);
	emit(l, LAPI_EV_AUTH_FAILED, c->peer_s, 0, why, 0, 0);
	respond_error(l, c, 401, "unauthorized");
	return -1;
}

/* POST /backup takes {} or nothing. */
static bool body_empty_object(const struct httpreq *r)
{
	static const struct json_limits lim = { HTTPREQ_BODY_MAX, 4, false };
	struct json *j = NULL;
	size_t i;
	bool ok;

	for (i = 0; i < r->body_len; i++) {
		char ch = r->body[i];
		if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
			break;
	}
	if (i == r->body_len)
		return true;
	if (json_parse(r->body, r->body_len, &lim, &j, NULL, 0) != 0)
		return false;
	ok = j->type == JSON_OBJECT && j->n == 0;
	json_free(j);
	return ok;
}

static void handle_request(struct lapi *l, struct conn *c)
{
	const struct httpreq *rq = &c->req;
	const struct route *rt = find_route(rq->target, rq->path_len);
	const struct lapi_snap *s;
	const struct lapi_snap_guest *g;
	bool owns, have;
	int vmid = 0, r;

	if (rt && rt->noauth) {
		if (!c->trusted)
			respond_error(l, c, 403, "forbidden");
		else if (strcmp(rq->method, rt->method) != 0)
			respond_method(l, c, rt);
		else
			handle_ready(l, c, rt->id == R_READYZ);
		return;
	}
	if (authenticate(l, c, &vmid) != 0)
		return;
	pthread_mutex_lock(&l->snap_mu);
	owns = lapi_snap_owns(l->snap, &c->peer, vmid);
	have = l->snap->have_data;
	pthread_mutex_unlock(&l->snap_mu);
	if (!owns) {
		if (!have) {
			respond_error(l, c, 503, "guest addresses are not known yet");
			return;
		}
		inc(&l->st_forbidden);
		emit(l, LAPI_EV_FORBIDDEN, c->peer_s, vmid, "token used from another address", 0, 0);
		respond_error(l, c, 403, "forbidden: this token is not valid from this address");
		return;
	}
	if (!rt) {
		respond_error(l, c, 404, "not found");
		return;
	}
	if (strcmp(rq->method, rt->method) != 0) {
		respond_method(l, c, rt);
		return;
	}
	c->vmid = vmid;
	switch (rt->id) {
	case R_STORAGE:
		pthread_mutex_lock(&l->snap_mu);
		s = l->snap;
		g = lapi_snap_guest(s, vmid);
		if (g && g->storage_body)
			respond_body(l, c, 200, NULL, g->storage_body, g->storage_len);
		pthread_mutex_unlock(&l->snap_mu);
		if (g && g->storage_body)
			return;
		if (!have)
			respond_error(l, c, 503, "not collected yet");
		else
			respond_error(l, c, g ? 503 : 404, g ? "guest config unavailable" : "guest not found");
		return;
	case R_METRICS: {
		char head[64];
		const char *parts[2];
		size_t lens[2];

		pthread_mutex_lock(&l->snap_mu);
		s = l->snap;
		if (s->metrics_tail) {
			parts[0] = head;
			lens[0] = (size_t)snprintf(head, sizeof head, "{\"ok\":true,\"data\":{\"vmid\":%d", vmid);
			parts[1] = s->metrics_tail;
			lens[1] = s->metrics_tail_len;
			respond_parts(l, c, 200, NULL, parts, lens, 2);
		}
		pthread_mutex_unlock(&l->snap_mu);
		if (!s->metrics_tail)
			respond_error(l, c, 503, "not collected yet");
		return;
	}
	case R_BACKUP:
		if (!body_empty_object(rq)) {
			respond_error(l, c, 400, "body must be {} or empty");
			return;
		}
		/* fall through */
	case R_BACKUP_DUE:
	case R_BACKUP_STATUS:
		r = submit_job(l, c, rt->id == R_BACKUP ? OP_ENQUEUE : rt->id == R_BACKUP_DUE ? OP_DUE : OP_STATUS, 0,
			       NULL, 0);
		if (r == FH_ERR_NOT_FOUND)
			respond_error(l, c, 503, "backups not available");
		else
			await_backend(l, c, r);
		return;
	case R_DISKS:
	case R_DISKS_ASSIGN:
	case R_DISKS_EJECT:
	case R_DISKS_FORMAT: {
		enum lapi_disk_op dop = rt->id == R_DISKS ? LAPI_DISK_LIST : rt->id == R_DISKS_ASSIGN ? LAPI_DISK_ASSIGN :
					rt->id == R_DISKS_EJECT ? LAPI_DISK_EJECT : LAPI_DISK_FORMAT;

		r = submit_job(l, c, OP_DISK, dop, rq->body, rt->id == R_DISKS ? 0 : rq->body_len);
		if (r == FH_ERR_NOT_FOUND)
			respond_error_data(l, c, 501, NULL, "not implemented",
					   rt->id == R_DISKS_FORMAT ? "{\"formatted\":false,\"reason\":\"not implemented\"}" :
								      NULL);
		else
			await_backend(l, c, r);
		return;
	}
	default:
		respond_error(l, c, 404, "not found");
		return;
	}
}

/* -------------------------------------------------------------- the drive */

/* After a wolfSSL call on c returned ret (not a success): 0 when it wants
 * the socket readable or writable and c now waits for that, -1 when it
 * wants nothing more (a TLS error, close_notify, or the socket is gone). */
static int want_io(struct lapi *l, struct conn *c, int ret)
{
	int e = wolfSSL_get_error(c->ssl, ret);

	if (e == WOLFSSL_ERROR_WANT_READ && !c->io_eof) {
		set_interest(l, c, EPOLLIN);
		return 0;
	}
	if (e == WOLFSSL_ERROR_WANT_WRITE && !c->io_eof) {
		set_interest(l, c, EPOLLOUT);
		return 0;
	}
	return -1;
}

/* 1: progressed (phase changed), 0: waiting for I/O, -1: closed. */
static int step_handshake(struct lapi *l, struct conn *c)
{
	int r = wolfSSL_accept(c->ssl);

	if (r == WOLFSSL_SUCCESS) {
		inc(&l->st_hs);
		c->phase = PH_READ;
		timer_set(l, c, PH_READ);
		return 1;
	}
	if (want_io(l, c, r) == 0)
		return 0;
	inc(&l->st_hs_fail);
	conn_close(l, c);
	return -1;
}

static int step_read(struct lapi *l, struct conn *c)
{
	for (;;) {
		int n;

		if (c->in_off < c->in_len) {
			size_t used = 0;
			int rc;

			if (c->phase == PH_IDLE) {
				c->phase = PH_READ;
				timer_set(l, c, PH_READ);
			}
			rc = httpreq_feed(&c->req, (const char *)c->in + c->in_off, c->in_len - c->in_off, &used);
			c->in_off += used;
			if (rc == HTTPREQ_HEAD) {
				if (c->req.expect_continue) {
					static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
					buf_reset(&c->out);
					if (buf_append(&c->out, cont, sizeof cont - 1) != 0) {
						conn_close(l, c);
						return -1;
					}
					c->out_off = 0;
					c->cont = true;
					c->phase = PH_WRITE;
					timer_set(l, c, PH_WRITE);
					return 1;
				}
				continue;
			}
			if (rc == HTTPREQ_DONE) {
				handle_request(l, c);
				return 1;
			}
			if (rc < 0) {
				inc(&l->st_bad);
				c->req.keep_alive = false;
				respond_error(l, c, c->req.status ? c->req.status : 400,
					      c->req.reason ? c->req.reason : "bad request");
				return 1;
			}
			continue;   /* MORE: all consumed */
		}
		if (c->io_eof) {
			conn_close(l, c);
			return -1;
		}
		n = wolfSSL_read(c->ssl, c->in, (int)sizeof c->in);
		if (n > 0) {
			c->in_off = 0;
			c->in_len = (size_t)n;
			continue;
		}
		if (want_io(l, c, n) == 0)
			return 0;
		conn_close(l, c);   /* close_notify, EOF, reset or a TLS error */
		return -1;
	}
}

static int step_write(struct lapi *l, struct conn *c)
{
	while (c->out_off < c->out.len) {
		size_t chunk = c->out.len - c->out_off;
		int n;

		if (chunk > 16384)
			chunk = 16384;
		n = wolfSSL_write(c->ssl, c->out.data + c->out_off, (int)chunk);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (want_io(l, c, n) == 0)
			return 0;
		conn_close(l, c);
		return -1;
	}
	if (c->cont) {
		c->cont = false;
		buf_reset(&c->out);
		c->phase = PH_READ;
		timer_set(l, c, PH_READ);
		return 1;
	}
	if (c->close_after) {
		(void)wolfSSL_shutdown(c->ssl);   /* close_notify, best effort */
		if (c->io_eof || shutdown(c->fd, SHUT_WR) != 0) {
			conn_close(l, c);
			return -1;
		}
		c->phase = PH_LINGER;
		c->lingered = 0;
		timer_set(l, c, PH_LINGER);
		return 1;
	}
	c->nreq++;
	httpreq_reset(&c->req);
	c->phase = PH_IDLE;
	timer_set(l, c, PH_IDLE);
	return 1;
}

/* Drops input until EOF, the byte cap or the timer: 0 waiting, -1 closed. */
static int step_linger(struct lapi *l, struct conn *c)
{
	char sinkbuf[16384];

	for (;;) {
		ssize_t n = recv(c->fd, sinkbuf, sizeof sinkbuf, MSG_DONTWAIT);

		if (n > 0) {
			c->lingered += (size_t)n;
			if (c->lingered <= LINGER_BYTES)
				continue;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_interest(l, c, EPOLLIN);
			return 0;
		}
		conn_close(l, c);
		return -1;
	}
}

static void drive(struct lapi *l, struct conn *c)
{
	int budget = PIPELINE_BUDGET, r = 0;

	set_pending(l, c, false);
	for (;;) {
		switch (c->phase) {
		case PH_HS:
			r = step_handshake(l, c);
			break;
		case PH_READ:
		case PH_IDLE:
			if (c->phase == PH_IDLE && --budget <= 0 &&
			    (c->in_off < c->in_len || wolfSSL_pending(c->ssl) > 0)) {
				set_pending(l, c, true);   /* let the others run first */
				return;
			}
			r = step_read(l, c);
			break;
		case PH_WRITE:
			r = step_write(l, c);
			break;
		case PH_LINGER:
			r = step_linger(l, c);
			break;
		case PH_BACKEND:
		default:
			set_interest(l, c, 0);
			return;
		}
		if (r <= 0)
			return;
	}
}

/* ----------------------------------------------------------------- accept */

static bool is_monitor(const struct lapi *l, const struct lapi_addr *a)
{
	size_t i;

	for (i = 0; i < l->nmon; i++)
		if (lapi_addr_cmp(&l->monitors[i], a) == 0)
			return true;
	return false;
}

static unsigned count_addr(const struct lapi *l, const struct lapi_addr *a)
{
	unsigned i, n = 0;

	for (i = 0; i < l->max_conns; i++)
		if (l->slots[i] && lapi_addr_cmp(&l->slots[i]->peer, a) == 0)
			n++;
	return n;
}

static void accept_all(struct lapi *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		struct lapi_addr peer;
		struct epoll_event e;
		struct conn *c;
		char ps[48];
		bool trusted, known;
		unsigned slot;
		int fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: stop accepting for a moment
				 * instead of spinning on the ready listener */
				struct epoll_event le = { 0, { .u64 = ID_LISTEN } };
				(void)epoll_ctl(l->ep, EPOLL_CTL_MOD, l->lfd, &le);
				l->accept_paused_until = l->now + 100;
			}
			return;
		}
		if (lapi_addr_from_sa((const struct sockaddr *)&ss, &peer) != 0) {
			close(fd);
			continue;
		}
		lapi_addr_format(&peer, ps, sizeof ps);
		trusted = (lapi_addr_is_loopback(&peer) && !l->loopback_untrusted) || is_monitor(l, &peer);
		known = trusted;
		if (!known) {
			pthread_mutex_lock(&l->snap_mu);
			known = lapi_snap_known(l->snap, &peer);
			pthread_mutex_unlock(&l->snap_mu);
		}
		if (!known) {
			close(fd);
			inc(&l->st_rej_addr);
			emit(l, LAPI_EV_ADDR_REJECTED, ps, 0, "not a guest, allow-listed or loopback address", 0, 0);
			continue;
		}
		if (l->nconns >= l->max_conns || count_addr(l, &peer) >= l->max_per_addr) {
			close(fd);
			inc(&l->st_rej_cap);
			emit(l, LAPI_EV_CONN_CAP, ps, 0,
			     l->nconns >= l->max_conns ? "connection cap reached" : "per-address cap reached", 0, 0);
			continue;
		}
		for (slot = 0; slot < l->max_conns && l->slots[slot]; slot++)
			;
		c = calloc(1, sizeof *c);
		if (!c || slot >= l->max_conns) {
			free(c);
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
		c->slot = (int)slot;
		c->gen = ++l->next_gen;
		c->peer = peer;
		memcpy(c->peer_s, ps, sizeof ps);
		c->trusted = trusted;
		c->tlist = -1;
		c->phase = PH_HS;
		buf_init(&c->out, LAPI_RESPONSE_MAX - 1);
		httpreq_init(&c->req);
		c->ssl = wolfSSL_new(l->ctx);
		if (!c->ssl) {
			close(fd);
			free(c);
			continue;
		}
		wolfSSL_SetIOReadCtx(c->ssl, c);
		wolfSSL_SetIOWriteCtx(c->ssl, c);
		memset(&e, 0, sizeof e);
		e.events = EPOLLIN;
		e.data.u64 = conn_id(c);
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
			wolfSSL_free(c->ssl);
			close(fd);
			free(c);
			continue;
		}
		c->interest = EPOLLIN;
		l->slots[slot] = c;
		l->nconns++;
		atomic_fetch_add_explicit(&l->st_active, 1, memory_order_relaxed);
		inc(&l->st_accepted);
		timer_set(l, c, PH_HS);
		drive(l, c);
	}
}

/* ----------------------------------------------------------------- timers */

static void expire(struct lapi *l)
{
	int t;

	for (t = 0; t < PH__N; t++) {
		struct conn *c;

		while ((c = l->th[t]) != NULL && c->deadline <= l->now) {
			if (t == PH_BACKEND) {
				inc(&l->st_be_timeouts);
				respond_error(l, c, 503, "backend did not answer in time");
				drive(l, c);
			} else {
				if (t != PH_LINGER)
					inc(&l->st_timeouts);
				conn_close(l, c);
			}
		}
	}
}

static int next_timeout(const struct lapi *l)
{
	int64_t best = l->now + 1000;
	int t;

	if (l->npending)
		return 0;
	for (t = 0; t < PH__N; t++)
		if (l->th[t] && l->th[t]->deadline < best)
			best = l->th[t]->deadline;
	if (l->accept_paused_until && l->accept_paused_until < best)
		best = l->accept_paused_until;
	return best <= l->now ? 0 : (int)(best - l->now);
}

static void *event_main(void *arg)
{
	struct lapi *l = arg;
	struct epoll_event evs[64];
	unsigned i;

	while (!atomic_load(&l->stop)) {
		int n = epoll_wait(l->ep, evs, 64, next_timeout(l)), k;

		l->now = mono_ms();
		if (l->accept_paused_until && l->now >= l->accept_paused_until) {
			struct epoll_event le = { EPOLLIN, { .u64 = ID_LISTEN } };
			l->accept_paused_until = 0;
			(void)epoll_ctl(l->ep, EPOLL_CTL_MOD, l->lfd, &le);
		}
		for (k = 0; k < n; k++) {
			uint64_t id = evs[k].data.u64;
			struct conn *c;
			uint32_t slot;

			if (id == ID_LISTEN) {
				accept_all(l);
				continue;
			}
			if (id == ID_WAKE) {
				uint64_t v;
				(void)!read(l->wfd, &v, sizeof v);
				drain_done(l);
				continue;
			}
			slot = (uint32_t)id;
			c = slot < l->max_conns ? l->slots[slot] : NULL;
			if (!c || c->gen != (uint32_t)(id >> 32))
				continue;
			if (c->phase == PH_BACKEND)
				continue;
			drive(l, c);
		}
		if (l->npending) {
			for (i = 0; i < l->max_conns && l->npending; i++) {
				struct conn *c = l->slots[i];
				if (c && c->pending)
					drive(l, c);
			}
		}
		expire(l);
	}
	for (i = 0; i < l->max_conns; i++)
		if (l->slots[i])
			conn_close(l, l->slots[i]);
	wc_ecc_fp_free();
	return NULL;
}

/* -------------------------------------------------------------- refresher */

static int do_refresh(struct lapi *l, struct pve_client *pve, struct priv *priv, bool slow,
		      struct lapi_refresh_err *e)
{
	struct lapi_snap *ns = NULL, *old;
	int *ids = NULL;
	size_t nids = 0;
	unsigned revoked = 0;
	int64_t now = (int64_t)time(NULL);
	int r;

	pthread_mutex_lock(&l->refresh_mu);
	/* l->snap changes only under refresh_mu: reading it here is safe */
	r = lapi_collect(pve, priv, slow, l->snap, l->ga, l->nga, now, &ns, &ids, &nids, e);
	if (r) {
		pthread_mutex_unlock(&l->refresh_mu);
		inc(&l->st_refresh_fail);
		emit(l, LAPI_EV_REFRESH_FAILED, NULL, 0, e && e->step[0] ? e->step : "collect", r, 0);
		return r;
	}
	pthread_mutex_lock(&l->snap_mu);
	old = l->snap;
	l->snap = ns;
	pthread_mutex_unlock(&l->snap_mu);
	lapi_snap_free(old);
	atomic_store(&l->proxmox_ok_at, (long long)now);
	atomic_store(&l->st_snap_at, (long long)now);
	inc(&l->st_refreshes);
	if (nids > 0 && lapi_tokens_prune(l->store, ids, nids, &revoked) == 0 && revoked) {
		atomic_fetch_add_explicit(&l->st_revoked, revoked, memory_order_relaxed);
		emit(l, LAPI_EV_TOKENS_REVOKED, NULL, 0, "guests gone from Proxmox", 0, revoked);
	}
	pthread_mutex_unlock(&l->refresh_mu);
	free(ids);
	return 0;
}

int lapi_refresh(struct lapi *l, struct pve_client *pve, struct priv *priv, bool slow,
		 struct lapi_refresh_err *e)
{
	struct lapi_refresh_err scratch;

	if (!l || !pve)
		return FH_ERR_INVAL;
	return do_refresh(l, pve, priv, slow, e ? e : &scratch);
}

static void *refresher_main(void *arg)
{
	struct lapi *l = arg;
	int64_t next = 0, next_slow = 0;

	for (;;) {
		struct lapi_refresh_err e;
		int64_t now;
		bool slow;
		int r;

		pthread_mutex_lock(&l->rmu);
		for (;;) {
			struct timespec ts;
			int64_t wait_ms;

			if (atomic_load(&l->stop) || l->kick)
				break;
			now = mono_ms();
			if (now >= next)
				break;
			wait_ms = next - now;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (wait_ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			(void)pthread_cond_timedwait(&l->rcv, &l->rmu, &ts);
		}
		l->kick = false;
		pthread_mutex_unlock(&l->rmu);
		if (atomic_load(&l->stop))
			break;
		now = mono_ms();
		slow = now >= next_slow;
		r = do_refresh(l, l->pve, l->priv, slow, &e);
		if (r == 0 && slow)
			next_slow = now + l->slow_refresh_ms;
		/* before the first snapshot, retry sooner */
		next = mono_ms() + (r && atomic_load(&l->proxmox_ok_at) == 0 ? 2000 : l->refresh_ms);
	}
	wc_ecc_fp_free();
	return NULL;
}

void lapi_refresh_kick(struct lapi *l)
{
	if (!l || !l->rf_started)
		return;
	pthread_mutex_lock(&l->rmu);
	l->kick = true;
	pthread_cond_signal(&l->rcv);
	pthread_mutex_unlock(&l->rmu);
}

/* ------------------------------------------------------------ public API */

void lapi_set_backend(struct lapi *l, const struct lapi_backend *be, void *ctx)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->wmu);
	while (l->calling)
		pthread_cond_wait(&l->wdone, &l->wmu);
	if (be) {
		l->be = *be;
		l->be_ctx = ctx;
		l->have_be = true;
	} else {
		memset(&l->be, 0, sizeof l->be);
		l->be_ctx = NULL;
		l->have_be = false;
	}
	pthread_mutex_unlock(&l->wmu);
}

void lapi_set_disks(struct lapi *l, lapi_disks_fn fn, void *ctx)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->wmu);
	while (l->calling)
		pthread_cond_wait(&l->wdone, &l->wmu);
	l->disks = fn;
	l->disks_ctx = fn ? ctx : NULL;
	pthread_mutex_unlock(&l->wmu);
}

void lapi_note_hub(struct lapi *l, int64_t when)
{
	if (l)
		atomic_store(&l->hub_at, (long long)when);
}

int lapi_port(const struct lapi *l)
{
	return l ? l->port : 0;
}

void lapi_get_stats(struct lapi *l, struct lapi_stats *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof *o);
	if (!l)
		return;
#define G(f, s) o->f = atomic_load_explicit(&l->s, memory_order_relaxed)
	G(accepted, st_accepted);
	G(rejected_addr, st_rej_addr);
	G(rejected_cap, st_rej_cap);
	G(handshakes, st_hs);
	G(handshake_failures, st_hs_fail);
	G(timeouts, st_timeouts);
	G(requests, st_requests);
	G(status_2xx, st_2xx);
	G(status_4xx, st_4xx);
	G(status_5xx, st_5xx);
	G(auth_failed, st_auth);
	G(forbidden, st_forbidden);
	G(bad_requests, st_bad);
	G(backend_timeouts, st_be_timeouts);
	G(refreshes, st_refreshes);
	G(refresh_failures, st_refresh_fail);
	G(tokens_revoked, st_revoked);
	G(active_conns, st_active);
#undef G
	o->snapshot_taken_at = (int64_t)atomic_load(&l->st_snap_at);
}

static void lapi_free(struct lapi *l)
{
	size_t i;

	if (!l)
		return;
	if (l->ctx)
		wolfSSL_CTX_free(l->ctx);
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->ep >= 0)
		close(l->ep);
	if (l->wfd >= 0)
		close(l->wfd);
	for (i = 0; i < l->qn; i++)
		job_release(&l->q[(l->qh + i) % LAPI_BACKEND_QUEUE]);
	for (i = 0; i < l->dn; i++)
		job_release(&l->done[(l->dh + i) % LAPI_BACKEND_QUEUE]);
	free(l->slots);
	lapi_snap_free(l->snap);
	for (i = 0; i < l->nga; i++)
		free(l->ga[i].addr);
	free(l->ga);
	free(l->monitors);
	buf_free(&l->scratch);
	if (l->pve)
		pve_client_free(l->pve);
	if (l->priv)
		priv_free(l->priv);
	pthread_mutex_destroy(&l->snap_mu);
	pthread_mutex_destroy(&l->wmu);
	pthread_cond_destroy(&l->wcv);
	pthread_cond_destroy(&l->wdone);
	pthread_mutex_destroy(&l->rmu);
	pthread_cond_destroy(&l->rcv);
	pthread_mutex_destroy(&l->refresh_mu);
	pthread_mutex_destroy(&l->ev_mu);
	free(l);
}

void lapi_stop(struct lapi *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	atomic_store(&l->stop, true);
	if (l->pve)
		pve_cancel(l->pve);
	pthread_mutex_lock(&l->wmu);
	pthread_cond_broadcast(&l->wcv);
	pthread_mutex_unlock(&l->wmu);
	pthread_mutex_lock(&l->rmu);
	pthread_cond_broadcast(&l->rcv);
	pthread_mutex_unlock(&l->rmu);
	(void)!write(l->wfd, &one, sizeof one);
	if (l->ev_started)
		pthread_join(l->ev_thread, NULL);
	if (l->wk_started)
		pthread_join(l->wk_thread, NULL);
	if (l->rf_started)
		pthread_join(l->rf_thread, NULL);
	lapi_free(l);
}

static void why_set(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!why || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

int lapi_start(const struct lapi_opts *o, struct lapi **out, char *why, size_t whylen)
{
	struct lapi *l = NULL;
	struct lapi_leaf *leaf = NULL;
	struct sockaddr_storage ss;
	unsigned sslen = 0;
	char listen_buf[INET6_ADDRSTRLEN + 16];
	const char *listen_s;
	struct epoll_event e;
	size_t i;
	int r = FH_ERR_INVAL;

	if (why && whylen)
		why[0] = '\0';
	if (!o || !out || !o->state_dir || !o->store) {
		why_set(why, whylen, "%s", "state_dir and store are required");
		return FH_ERR_INVAL;
	}
	*out = NULL;
	if (o->listen && !*o->listen)
		return 0;   /* disabled */
	listen_s = o->listen;
	if (!listen_s) {
		const char *br = o->bridge ? o->bridge : LAPI_DEFAULT_BRIDGE;
		if (bridge_listen(br, listen_buf, sizeof listen_buf) != 0) {
			why_set(why, whylen, "localapi.listen is unset and bridge %s has no IPv4 address", br);
			return FH_ERR_CONFIG;
		}
		listen_s = listen_buf;
	}
	if (lapi_parse_listen(listen_s, &ss, &sslen) != 0) {
		why_set(why, whylen, "localapi.listen \"%.80s\": want ADDR:PORT or [V6ADDR]:PORT", listen_s);
		return FH_ERR_CONFIG;
	}
	if (o->nmonitor > LAPI_MONITOR_MAX) {
		why_set(why, whylen, "%s", "too many monitor addresses");
		return FH_ERR_INVAL;
	}

	r = FH_ERR_NOMEM;
	l = calloc(1, sizeof *l);
	if (!l)
		return FH_ERR_NOMEM;
	l->lfd = l->ep = l->wfd = -1;
	pthread_mutex_init(&l->snap_mu, NULL);
	pthread_mutex_init(&l->wmu, NULL);
	pthread_cond_init(&l->wcv, NULL);
	pthread_cond_init(&l->wdone, NULL);
	pthread_mutex_init(&l->rmu, NULL);
	pthread_cond_init(&l->rcv, NULL);
	pthread_mutex_init(&l->refresh_mu, NULL);
	pthread_mutex_init(&l->ev_mu, NULL);
	buf_init(&l->scratch, LAPI_RESPONSE_MAX - 1);
	l->store = o->store;
	l->loopback_untrusted = o->loopback_untrusted;
	l->max_conns = o->max_conns ? o->max_conns : LAPI_MAX_CONNS;
	l->max_per_addr = o->max_conns_per_addr ? o->max_conns_per_addr : LAPI_MAX_CONNS_PER_ADDR;
	l->tl_ms[PH_HS] = o->handshake_ms > 0 ? o->handshake_ms : LAPI_HANDSHAKE_MS;
	l->tl_ms[PH_READ] = o->read_ms > 0 ? o->read_ms : LAPI_READ_MS;
	l->tl_ms[PH_IDLE] = o->idle_ms > 0 ? o->idle_ms : LAPI_IDLE_MS;
	l->tl_ms[PH_WRITE] = o->write_ms > 0 ? o->write_ms : LAPI_WRITE_MS;
	l->tl_ms[PH_BACKEND] = o->backend_ms > 0 ? o->backend_ms : LAPI_BACKEND_MS;
	l->tl_ms[PH_LINGER] = LINGER_MS;
	l->refresh_ms = o->refresh_ms > 0 ? o->refresh_ms : LAPI_REFRESH_MS;
	l->slow_refresh_ms = o->slow_refresh_ms > 0 ? o->slow_refresh_ms : LAPI_SLOW_REFRESH_MS;
	l->hub_fresh = o->hub_fresh_seconds > 0 ? o->hub_fresh_seconds : LAPI_HUB_FRESH_SECONDS;
	l->on_event = o->on_event;
	l->event_ctx = o->event_ctx;
	for (i = 0; i < LAPI_EV__COUNT; i++) {
		l->rl[i].tokens = 20.0;
		l->rl[i].last_ms = mono_ms();
	}
	l->slots = calloc(l->max_conns, sizeof *l->slots);
	l->ga = calloc(o->naddrs ? o->naddrs : 1, sizeof *l->ga);
	l->monitors = calloc(o->nmonitor ? o->nmonitor : 1, sizeof *l->monitors);
	if (!l->slots || !l->ga || !l->monitors)
		goto fail;
	for (i = 0; i < o->naddrs; i++) {
		l->ga[i].vmid = o->guest_addresses[i].vmid;
		l->ga[i].addr = strdup(o->guest_addresses[i].addr ? o->guest_addresses[i].addr : "");
		l->nga++;
		if (!l->ga[i].addr)
			goto fail;
	}
	for (i = 0; i < o->nmonitor; i++) {
		const char *m = o->monitor_addresses[i];
		if (!m || lapi_addr_parse(m, strlen(m), &l->monitors[l->nmon]) != 0) {
			why_set(why, whylen, "monitor address \"%.60s\" is not an IP address", m);
			r = FH_ERR_CONFIG;
			goto fail;
		}
		l->nmon++;
	}
	r = lapi_snap_static(l->ga, l->nga, &l->snap);
	if (r)
		goto fail;

	/* the leaf and the TLS context */
	leaf = malloc(sizeof *leaf);
	if (!leaf) {
		r = FH_ERR_NOMEM;
		goto fail;
	}
	r = lapi_leaf_load(o->state_dir, leaf, NULL);
	if (r) {
		why_set(why, whylen, "the local API key/certificate in %s/" LAPI_DIR " cannot be used", o->state_dir);
		goto fail;
	}
	lapi_wolf_init();
	r = FH_ERR_TLS;
	if (g_wolf_rc != 0)
		goto fail;
	l->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (!l->ctx || wolfSSL_CTX_SetMinVersion(l->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_certificate_buffer(l->ctx, leaf->cert_der, (long)leaf->cert_len,
					       WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_PrivateKey_buffer(l->ctx, leaf->key_der, (long)leaf->key_len,
					      WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
		why_set(why, whylen, "%s", "wolfSSL rejected the leaf");
		goto fail;
	}
	wolfSSL_CTX_set_verify(l->ctx, WOLFSSL_VERIFY_NONE, NULL);
	wolfSSL_CTX_SetIORecv(l->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(l->ctx, io_send);

	/* sockets */
	r = open_listener(&ss, sslen, &l->lfd, &l->port);
	if (r) {
		why_set(why, whylen, "cannot listen on %.80s", listen_s);
		goto fail;
	}
	r = FH_ERR_IO;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->ep < 0 || l->wfd < 0)
		goto fail;
	memset(&e, 0, sizeof e);
	e.events = EPOLLIN;
	e.data.u64 = ID_LISTEN;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->lfd, &e) != 0)
		goto fail;
	e.data.u64 = ID_WAKE;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wfd, &e) != 0)
		goto fail;

	/* the refresher's own clients */
	if (o->pve) {
		struct pve_err pe;
		r = pve_client_new(o->pve, &l->pve, &pe);
		if (r) {
			why_set(why, whylen, "Proxmox client: %s", pe.reason);
			goto fail;
		}
		if (o->priv) {
			struct priv_opts po = *o->priv;
			if (po.timeout_ms <= 0 || po.timeout_ms > PRIV_TIMEOUT_CAP_MS)
				po.timeout_ms = PRIV_TIMEOUT_CAP_MS;
			r = priv_new(&po, &l->priv);
			if (r) {
				why_set(why, whylen, "%s", "privileged backend options");
				goto fail;
			}
		}
	}

	r = FH_ERR_INTERNAL;
	l->now = mono_ms();
	if (pthread_create(&l->ev_thread, NULL, event_main, l) != 0)
		goto fail;
	l->ev_started = true;
	if (pthread_create(&l->wk_thread, NULL, worker_main, l) != 0)
		goto fail;
	l->wk_started = true;
	if (l->pve) {
		if (pthread_create(&l->rf_thread, NULL, refresher_main, l) != 0)
			goto fail;
		l->rf_started = true;
	}
	memset(leaf, 0, sizeof *leaf);
	free(leaf);
	*out = l;
	return 0;
fail:
	if (leaf) {
		memset(leaf, 0, sizeof *leaf);
		free(leaf);
	}
	if (l && (l->ev_started || l->wk_started || l->rf_started)) {
		lapi_stop(l);
		return r;
	}
	lapi_free(l);
	return r;
}
