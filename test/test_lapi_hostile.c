/* test_lapi_hostile.c — the local API under hostile clients: slowloris (in
 * the handshake and in the request), oversized request line, headers and
 * body, garbage after TLS, garbage instead of TLS, half-closed sockets,
 * connection caps and 1,000 bad-token requests. Throughout, a legitimate
 * client (guest 101 from 127.0.0.2, curl, keep-alive) keeps asking for
 * /storage and must be answered 200 every time, quickly. Every case is
 * bounded by short server deadlines, so the whole run takes seconds.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "lapi.h"
#include "sim.h"
#include "store.h"

#define READ_MS 1500
#define HS_MS 1500

static char g_dir[256];
static struct sim g_sim;
static int g_sim_ok;
static struct store *g_st;
static struct lapi *g_l;
static int g_port;
static struct lapi_cert_info g_leaf;
static char g_tok[LAPI_TOKEN_MAX];
static WOLFSSL_CTX *g_cctx;
static atomic_ulong g_auth_events;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------ the legitimate client */

struct legit {
	pthread_t th;
	atomic_bool stop;
	unsigned long ok, bad;
	double lat[20000];
	size_t n;
	long last_status;
	CURLcode last_cc;
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static void *legit_main(void *arg)
{
	struct legit *lg = arg;
	char url[128], auth[160];
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	unsigned i = 0;

	snprintf(url, sizeof url, "https://127.0.0.1:%d/storage", g_port);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_tok);
	hdr = curl_slist_append(hdr, auth);
	while (!atomic_load(&lg->stop) && h) {
		double t0;
		long st = 0;
		CURLcode cc;

		if (++i % 10 == 0) {   /* now and then a fresh connection (a new handshake) */
			curl_easy_cleanup(h);
			h = curl_easy_init();
			if (!h)
				break;
		}
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, g_leaf.spki_pin);
		curl_easy_setopt(h, CURLOPT_INTERFACE, "127.0.0.2");
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
		t0 = now_ms();
		cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		if (getenv("LEGIT_TRACE"))
			fprintf(stderr, "legit %u cc=%d st=%ld %.1fms\n", i, cc, st, now_ms() - t0);
		if (cc == CURLE_OK && st == 200) {
			lg->ok++;
			if (lg->n < sizeof lg->lat / sizeof lg->lat[0])
				lg->lat[lg->n++] = now_ms() - t0;
		} else {
			lg->bad++;
			lg->last_status = st;
			lg->last_cc = cc;
		}
		usleep(10000);
	}
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	return NULL;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void legit_start(struct legit *lg)
{
	memset(lg, 0, sizeof *lg);
	if (pthread_create(&lg->th, NULL, legit_main, lg) != 0)
		abort();
}

/* Stops the client and checks it was always answered, quickly. */
static void legit_check(struct legit *lg, const char *what)
{
	double p50 = 0, p99 = 0, mx = 0;

	atomic_store(&lg->stop, true);
	pthread_join(lg->th, NULL);
	if (lg->n) {
		qsort(lg->lat, lg->n, sizeof lg->lat[0], dcmp);
		p50 = lg->lat[lg->n / 2];
		p99 = lg->lat[(lg->n * 99) / 100];
		mx = lg->lat[lg->n - 1];
	}
	printf("  legit client during %s: %lu ok, %lu failed, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", what, lg->ok,
	       lg->bad, p50, p99, mx);
	if (lg->bad)
		t_failf(__FILE__, __LINE__, "%s: legit client failed %lu times (last status %ld, curl %d)", what,
			lg->bad, lg->last_status, lg->last_cc);
	T_CHECK(lg->ok >= 5);
	/* "within its normal latency": nothing waits behind a hostile peer */
	if (p99 > 500.0)
		t_failf(__FILE__, __LINE__, "%s: legit p99 %.1f ms", what, p99);
}

/* ------------------------------------------------------ raw clients */

static int tcp_open(const char *src, int port)
{
	struct sockaddr_in a, s;
	struct timeval tv = { 3, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	inet_pton(AF_INET, src, &s.sin_addr);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (bind(fd, (struct sockaddr *)&s, sizeof s) != 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 when the peer closed fd within ms (EOF or reset), 0 if still open. */
static int closed_within(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char b[256];

	for (;;) {
		ssize_t n;
		if (poll(&p, 1, ms) <= 0)
			return 0;
		n = recv(fd, b, sizeof b, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return 1;
	}
}

struct tc {
	int fd;
	WOLFSSL *ssl;
};

static int tls_open(struct tc *t, const char *src)
{
	t->ssl = NULL;
	t->fd = tcp_open(src, g_port);
	if (t->fd < 0)
		return -1;
	t->ssl = wolfSSL_new(g_cctx);
	if (!t->ssl || wolfSSL_set_fd(t->ssl, t->fd) != WOLFSSL_SUCCESS ||
	    wolfSSL_connect(t->ssl) != WOLFSSL_SUCCESS) {
		if (t->ssl)
			wolfSSL_free(t->ssl);
		close(t->fd);
		t->ssl = NULL;
		t->fd = -1;
		return -1;
	}
	return 0;
}

static void tls_close(struct tc *t)
{
	if (t->ssl)
		wolfSSL_free(t->ssl);
	if (t->fd >= 0)
		close(t->fd);
	t->ssl = NULL;
	t->fd = -1;
}

/* Writes everything it can (the server may close early); bytes written. */
static size_t tls_send(struct tc *t, const void *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		int chunk = (int)(n - off > 16384 ? 16384 : n - off), w = wolfSSL_write(t->ssl, (const char *)p + off, chunk);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	return off;
}

/* Reads until close/timeout; returns the HTTP status of the first answer
 * (0 if none) and whether the server closed. */
static int tls_answer(struct tc *t, bool *closed, char *body, size_t cap)
{
	char buf[65536];
	size_t len = 0;
	int status = 0;

	*closed = false;
	for (;;) {
		int n = wolfSSL_read(t->ssl, buf + len, (int)(sizeof buf - 1 - len));
		if (n <= 0) {
			int e = wolfSSL_get_error(t->ssl, n);
			*closed = e != WOLFSSL_ERROR_WANT_READ;   /* SO_RCVTIMEO gives WANT_READ */
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= sizeof buf - 1)
			break;
	}
	buf[len] = '\0';
	if (len > 12 && !strncmp(buf, "HTTP/1.1 ", 9))
		status = atoi(buf + 9);
	if (body && cap) {
		const char *b = strstr(buf, "\r\n\r\n");
		snprintf(body, cap, "%s", b ? b + 4 : "");
	}
	return status;
}

/* One raw request over a fresh TLS connection from 127.0.0.1. */
static int raw_request(const void *req, size_t n, bool *closed, char *body, size_t cap)
{
	struct tc t;
	int st;

	if (tls_open(&t, "127.0.0.1") != 0)
		return -1;
	tls_send(&t, req, n);
	st = tls_answer(&t, closed, body, cap);
	tls_close(&t);
	return st;
}

/* ------------------------------------------------------------ fixture */

static void on_event(void *ctx, const struct lapi_event *ev)
{
	(void)ctx;
	if (ev->kind == LAPI_EV_AUTH_FAILED)
		atomic_fetch_add(&g_auth_events, 1);
}

static int setup(void)
{
	static struct pve_opts po;
	static char a2[] = "127.0.0.2";
	static struct cfg_addr ga[] = { { 101, a2 } };
	struct store_opts so;
	struct lapi_opts o;
	char db[300], why[256];
	const char *args[] = { "--role", "agent", NULL };
	struct lapi_stats st;
	int i;

	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(db, sizeof db, "%s/db", g_dir);
	memset(&so, 0, sizeof so);
	so.dir = db;
	if (store_open(&so, &g_st) != 0 || lapi_token_issue(g_st, 101, 1, g_tok) != 0)
		return -1;
	if (sim_start(&g_sim, args) != 0)
		return -1;
	g_sim_ok = 1;
	memset(&po, 0, sizeof po);
	po.endpoint = g_sim.endpoint;
	po.node = "pve";
	po.token = g_sim.token;
	po.tls_fingerprint = g_sim.fingerprint;
	memset(&o, 0, sizeof o);
	o.listen = "127.0.0.1:0";
	o.state_dir = g_dir;
	o.store = g_st;
	o.guest_addresses = ga;
	o.naddrs = 1;
	o.pve = &po;
	o.refresh_ms = 60000;
	o.read_ms = READ_MS;
	o.handshake_ms = HS_MS;
	o.idle_ms = 5000;
	o.max_conns = 200;
	o.max_conns_per_addr = 80;
	o.on_event = on_event;
	if (lapi_start(&o, &g_l, why, sizeof why) != 0) {
		fprintf(stderr, "lapi_start: %s\n", why);
		return -1;
	}
	g_port = lapi_port(g_l);
	if (lapi_cert_ensure(g_dir, &g_leaf) != 0)
		return -1;
	for (i = 0; i < 300; i++) {
		lapi_get_stats(g_l, &st);
		if (st.refreshes)
			break;
		usleep(20000);
	}
	wolfSSL_Init();
	g_cctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!g_cctx)
		return -1;
	wolfSSL_CTX_set_verify(g_cctx, WOLFSSL_VERIFY_NONE, NULL);
	return st.refreshes ? 0 : -1;
}

/* ------------------------------------------------------------ tests */

T_TEST(t_slowloris_request)
{
	enum { N = 50 };
	static struct tc c[N];
	static const char head[] = "GET /storage HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	struct legit lg;
	struct lapi_stats before, after;
	double t0;
	int i, open = 0, closed = 0;

	lapi_get_stats(g_l, &before);
	for (i = 0; i < N; i++) {
		if (tls_open(&c[i], "127.0.0.1") == 0) {
			tls_send(&c[i], head, sizeof head - 1);
			open++;
		}
	}
	T_EQ_INT(open, N);
	legit_start(&lg);
	/* one byte per connection every 200 ms, for longer than READ_MS */
	t0 = now_ms();
	while (now_ms() - t0 < READ_MS + 1200) {
		for (i = 0; i < N; i++)
			if (c[i].ssl && wolfSSL_write(c[i].ssl, "a", 1) != 1)
				tls_close(&c[i]);
		usleep(200000);
	}
	legit_check(&lg, "50 slowloris requests");
	for (i = 0; i < N; i++) {
		if (c[i].fd < 0 || closed_within(c[i].fd, 2000))
			closed++;
		tls_close(&c[i]);
	}
	T_EQ_INT(closed, N);
	lapi_get_stats(g_l, &after);
	T_CHECK(after.timeouts - before.timeouts >= N);
}

T_TEST(t_slowloris_handshake)
{
	enum { N = 50 };
	int fd[N], i, closed = 0;
	struct legit lg;
	static const unsigned char hello_part[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };

	for (i = 0; i < N; i++) {
		fd[i] = tcp_open("127.0.0.1", g_port);
		if (fd[i] >= 0 && i % 2)
			(void)!write(fd[i], hello_part, sizeof hello_part);   /* half a ClientHello, then nothing */
	}
	legit_start(&lg);
	usleep((HS_MS + 800) * 1000);
	legit_check(&lg, "50 stalled handshakes");
	for (i = 0; i < N; i++) {
		if (fd[i] < 0 || closed_within(fd[i], 2000))
			closed++;
		if (fd[i] >= 0)
			close(fd[i]);
	}
	T_EQ_INT(closed, N);
}

/* One round of oversized requests; the caller repeats it. */
static void oversized_round(char *big)
{
	char body[512];
	bool closed;
	size_t n;
	int i;

	/* request line over 2 KiB */
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'a', 3000);
	n += 3000;
	n += (size_t)sprintf(big + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	T_EQ_INT(raw_request(big, n, &closed, body, sizeof body), 400);
	T_CHECK(closed);
	T_CHECK(strstr(body, "\"ok\":false") && strstr(body, "request target too long"));
	/* 1 MiB of request line: answered at the cap, not after reading it all */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'b', (1u << 20) - 5);
	T_EQ_INT(raw_request(big, 1u << 20, &closed, NULL, 0), 400);
	/* too many header fields */
	n = (size_t)sprintf(big, "GET /storage HTTP/1.1\r\nHost: x\r\n");
	for (i = 0; i < 40; i++)
		n += (size_t)sprintf(big + n, "X-H%d: v\r\n", i);
	n += (size_t)sprintf(big + n, "\r\n");
	T_EQ_INT(raw_request(big, n, &closed, body, sizeof body), 431);
	T_CHECK(closed);
	/* one huge field */
	n = (size_t)sprintf(big, "GET /storage HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + n, 'v', 9000);
	n += 9000;
	n += (size_t)sprintf(big + n, "\r\n\r\n");
	T_EQ_INT(raw_request(big, n, &closed, NULL, 0), 431);
	/* a huge Authorization value */
	n = (size_t)sprintf(big, "GET /storage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ");
	memset(big + n, 't', 4000);
	n += 4000;
	n += (size_t)sprintf(big + n, "\r\n\r\n");
	T_EQ_INT(raw_request(big, n, &closed, NULL, 0), 431);
	/* a body over 8 KiB: 413 before any body byte is read */
	n = (size_t)sprintf(big, "POST /backup HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
	T_EQ_INT(raw_request(big, n, &closed, body, sizeof body), 413);
	T_CHECK(closed);
	/* chunked: 501 */
	n = (size_t)sprintf(big, "POST /backup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	T_EQ_INT(raw_request(big, n, &closed, NULL, 0), 501);
	/* HTTP/2 preface and a strange version */
	T_EQ_INT(raw_request("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, &closed, NULL, 0), 400);
	T_EQ_INT(raw_request("GET / HTTP/3.0\r\nHost: x\r\n\r\n", 27, &closed, NULL, 0), 505);
}

T_TEST(t_oversized)
{
	char *big = malloc(1u << 20);
	struct legit lg;
	double t0 = now_ms();
	int rounds = 0;

	if (!big)
		return;
	legit_start(&lg);
	do {
		oversized_round(big);
		rounds++;
	} while (now_ms() - t0 < 1000.0);
	legit_check(&lg, "oversized requests");
	printf("  %d rounds of 9 oversized requests\n", rounds);
	free(big);
}

T_TEST(t_garbage)
{
	unsigned char buf[4096];
	unsigned seed = 7;
	bool closed;
	int i, k, fd;
	struct legit lg;
	struct lapi_stats before, after;

	legit_start(&lg);
	/* garbage after a good handshake: 400, closed */
	for (k = 0; k < 200; k++) {
		for (i = 0; i < (int)sizeof buf; i++)
			buf[i] = (unsigned char)rand_r(&seed);
		T_EQ_INT(raw_request(buf, sizeof buf, &closed, NULL, 0), 400);
		T_CHECK(closed);
	}
	/* garbage instead of TLS: the handshake fails and the socket closes */
	lapi_get_stats(g_l, &before);
	for (k = 0; k < 20; k++) {
		fd = tcp_open("127.0.0.1", g_port);
		T_CHECK(fd >= 0);
		if (fd < 0)
			continue;
		for (i = 0; i < (int)sizeof buf; i++)
			buf[i] = (unsigned char)rand_r(&seed);
		if (k % 4 == 0)
			memcpy(buf, "\x16\x03\x03\xff\xff", 5);   /* a record header claiming 64 KiB */
		if (k % 4 == 1)
			memcpy(buf, "GET / HTTP/1.1\r\n\r\n", 18);  /* plain HTTP on the TLS port */
		(void)!write(fd, buf, sizeof buf);
		T_CHECK(closed_within(fd, 3000));
		close(fd);
	}
	lapi_get_stats(g_l, &after);
	T_CHECK(after.handshake_failures - before.handshake_failures >= 15);
	legit_check(&lg, "garbage");
}

T_TEST(t_half_closed)
{
	struct tc t;
	int fd, st;
	bool closed;
	char body[256];
	static const char partial[] = "GET /storage HTTP/1.1\r\nHost: x\r\n";
	static const char full[] = "GET /storage HTTP/1.1\r\nHost: x\r\n\r\n";

	/* TCP half-close before any TLS byte */
	fd = tcp_open("127.0.0.1", g_port);
	T_CHECK(fd >= 0);
	if (fd >= 0) {
		shutdown(fd, SHUT_WR);
		T_CHECK(closed_within(fd, 2000));
		close(fd);
	}
	/* half a request, then the write side closed: the server closes */
	if (tls_open(&t, "127.0.0.1") == 0) {
		tls_send(&t, partial, sizeof partial - 1);
		shutdown(t.fd, SHUT_WR);
		T_CHECK(closed_within(t.fd, 2000));
		tls_close(&t);
	} else {
		T_CHECK(0);
	}
	/* a whole request, then half-close: still answered (401: no token) */
	if (tls_open(&t, "127.0.0.1") == 0) {
		tls_send(&t, full, sizeof full - 1);
		shutdown(t.fd, SHUT_WR);
		st = tls_answer(&t, &closed, body, sizeof body);
		T_EQ_INT(st, 401);
		T_CHECK(closed);
		tls_close(&t);
	} else {
		T_CHECK(0);
	}
	/* reset in the middle of a request */
	if (tls_open(&t, "127.0.0.1") == 0) {
		struct linger lg = { 1, 0 };
		tls_send(&t, partial, sizeof partial - 1);
		setsockopt(t.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		tls_close(&t);
	}
	/* the server is still fine */
	T_EQ_INT(raw_request(full, sizeof full - 1, &closed, NULL, 0), 401);
}

T_TEST(t_conn_caps)
{
	enum { N = 90 };
	int fd[N], i, rejected = 0;
	struct lapi_stats before, after;
	struct legit lg;

	lapi_get_stats(g_l, &before);
	legit_start(&lg);
	/* per-address cap (80 in this fixture): 90 from one address */
	for (i = 0; i < N; i++)
		fd[i] = tcp_open("127.0.0.7", g_port);
	usleep(200000);
	for (i = 0; i < N; i++)
		if (fd[i] >= 0 && closed_within(fd[i], 0))
			rejected++;
	lapi_get_stats(g_l, &after);
	T_EQ_INT(after.rejected_cap - before.rejected_cap, N - 80);
	T_EQ_INT(rejected, N - 80);
	for (i = 0; i < N; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	legit_check(&lg, "90 idle connections from one address");
}

struct badclient {
	pthread_t th;
	int n, got401, other;
	bool fresh;   /* a new connection per request */
};

static void *bad_main(void *arg)
{
	struct badclient *b = arg;
	char url[128];
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	int i;

	snprintf(url, sizeof url, "https://127.0.0.1:%d/storage", g_port);
	hdr = curl_slist_append(hdr, "Authorization: Bearer fhl1.101.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	for (i = 0; i < b->n && h; i++) {
		long st = 0;
		if (b->fresh && i) {
			curl_easy_cleanup(h);
			h = curl_easy_init();
			if (!h)
				break;
		}
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(h, CURLOPT_INTERFACE, "127.0.0.2");
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
		if (curl_easy_perform(h) == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK &&
		    st == 401)
			b->got401++;
		else
			b->other++;
	}
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	return NULL;
}

T_TEST(t_bad_tokens)
{
	struct badclient b[4];
	struct legit lg;
	struct lapi_stats before, after;
	unsigned long ev0 = atomic_load(&g_auth_events), evs;
	double t0 = now_ms(), secs;
	int i, total = 0;

	lapi_get_stats(g_l, &before);
	legit_start(&lg);
	for (i = 0; i < 4; i++) {
		memset(&b[i], 0, sizeof b[i]);
		b[i].n = 250;
		b[i].fresh = i == 3;   /* one of them reconnects every time */
		pthread_create(&b[i].th, NULL, bad_main, &b[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(b[i].th, NULL);
		total += b[i].got401;
		T_EQ_INT(b[i].other, 0);
	}
	legit_check(&lg, "1,000 bad-token requests");
	secs = (now_ms() - t0) / 1e3;
	T_EQ_INT(total, 1000);
	lapi_get_stats(g_l, &after);
	T_CHECK(after.auth_failed - before.auth_failed >= 1000);
	/* the event callback is rate-limited: a burst of 20, then 5/s */
	evs = atomic_load(&g_auth_events) - ev0;
	printf("  1000 bad tokens in %.2f s, %lu auth events reported\n", secs, evs);
	T_CHECK((double)evs <= 20.0 + 5.0 * secs + 2.0);
}

int main(void)
{
	int ok;

	signal(SIGPIPE, SIG_IGN);   /* writes to sockets the server closed */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ok = setup() == 0;
	if (!ok) {
		printf("FAIL setup\n# passed 0 failed 1\n");
	} else {
		T_RUN(t_slowloris_request);
		T_RUN(t_slowloris_handshake);
		T_RUN(t_oversized);
		T_RUN(t_garbage);
		T_RUN(t_half_closed);
		T_RUN(t_conn_caps);
		T_RUN(t_bad_tokens);
	}
	lapi_stop(g_l);
	if (g_cctx)
		wolfSSL_CTX_free(g_cctx);
	wc_ecc_fp_free();
	if (g_sim_ok)
		sim_stop(&g_sim);
	store_close(g_st);
	curl_global_cleanup();
	return ok ? t_done() : 1;
}
