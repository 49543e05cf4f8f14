/* bench_lapi.c — the local API's throughput and latency next to nginx
 * serving the same bytes. Prints figures, never fails. See docs/LOCALAPI.md
 * ("Benchmark") for how to rerun it by hand.
 *
 *  1. keep-alive GET /storage with wrk (-t1 -c32 --latency): requests/s and
 *     p99, against the agent and against nginx (one worker) serving the same
 *     JSON bytes with the same ECDSA P-256 leaf over TLS 1.3 with the same
 *     key-share group and cipher (both are printed, as negotiated with
 *     `openssl s_client`);
 *  2. new TLS connections per second: the same with "Connection: close";
 *  3. (1) again while 50 slowloris connections (a header byte per second;
 *     one the server cuts at its read deadline is replaced at once) are
 *     held open against the server under test.
 * Needs wrk and nginx (Debian packages wrk, nginx-light); without them the
 * figures that need them are skipped with a note. Duration per run:
 * FH_BENCH_SECONDS (default 5); each figure is the median (by requests/s)
 * of FH_BENCH_REPS runs (default 3).
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "lapi.h"
#include "sim.h"
#include "store.h"

static int g_secs = 5, g_reps = 3;
static char g_dir[256], g_tok[LAPI_TOKEN_MAX];

static int have(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* Runs a shell command, returns its stdout (malloc'd) or NULL. */
static char *capture(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *out = NULL;
	size_t len = 0, cap = 0;
	char buf[4096];
	size_t n;

	if (!p)
		return NULL;
	while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
		if (len + n + 1 > cap) {
			char *nb;
			cap = (len + n + 1) * 2;
			nb = realloc(out, cap);
			if (!nb)
				break;
			out = nb;
		}
		memcpy(out + len, buf, n);
		len += n;
		out[len] = '\0';
	}
	pclose(p);
	return out;
}

static double unit_ms(double v, const char *u)
{
	if (!strncmp(u, "us", 2))
		return v / 1000.0;
	if (!strncmp(u, "ms", 2))
		return v;
	if (u[0] == 's')
		return v * 1000.0;
	return v;
}

struct wrkres {
	double rps, p50, p99;
	long errors;
	int ok;
};

static void run_wrk(int port, int conns, bool close_conn, struct wrkres *r)
{
	char cmd[1024], *out, *p;
	double v;
	char u[8];

	memset(r, 0, sizeof *r);
	snprintf(cmd, sizeof cmd,
		 "wrk -t1 -c%d -d%ds --latency -H 'Authorization: Bearer %s'%s https://127.0.0.1:%d/storage 2>&1",
		 conns, g_secs, g_tok, close_conn ? " -H 'Connection: close'" : "", port);
	out = capture(cmd);
	if (!out)
		return;
	if ((p = strstr(out, "Requests/sec:")) != NULL)
		r->rps = atof(p + 13);
	if ((p = strstr(out, "     50%")) != NULL && sscanf(p + 8, "%lf%7s", &v, u) == 2)
		r->p50 = unit_ms(v, u);
	if ((p = strstr(out, "     99%")) != NULL && sscanf(p + 8, "%lf%7s", &v, u) == 2)
		r->p99 = unit_ms(v, u);
	if ((p = strstr(out, "Non-2xx or 3xx responses:")) != NULL)
		r->errors += atol(p + 26);
	if ((p = strstr(out, "Socket errors:")) != NULL) {
		long a = 0, b = 0, c = 0, d = 0;
		if (sscanf(p, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a, &b, &c, &d) == 4)
			r->errors += a + b + c + d;
	}
	r->ok = r->rps > 0;
	free(out);
}

static int cmp_rps(const void *a, const void *b)
{
	const struct wrkres *x = a, *y = b;

	return (x->rps > y->rps) - (x->rps < y->rps);
}

/* The run with the median requests/s of g_reps runs (this machine is
 * shared; single runs vary by tens of percent). */
static void run_wrk_med(int port, int conns, bool close_conn, struct wrkres *r)
{
	struct wrkres runs[9];
	int i, n = g_reps < 1 ? 1 : g_reps > 9 ? 9 : g_reps;

	for (i = 0; i < n; i++)
		run_wrk(port, conns, close_conn, &runs[i]);
	qsort(runs, (size_t)n, sizeof runs[0], cmp_rps);
	*r = runs[n / 2];
}

/* "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519" as openssl s_client sees it. */
static void negotiated(int port, char *dst, size_t n)
{
	char cmd[256], *out, *p;
	char proto[32] = "?", cipher[64] = "?", group[64] = "?";

	snprintf(cmd, sizeof cmd, "echo | openssl s_client -connect 127.0.0.1:%d -brief 2>&1", port);
	out = capture(cmd);
	if (out) {
		if ((p = strstr(out, "Protocol version: ")) != NULL)
			sscanf(p + 18, "%31s", proto);
		if ((p = strstr(out, "Ciphersuite: ")) != NULL)
			sscanf(p + 13, "%63s", cipher);
		if ((p = strstr(out, "Server Temp Key: ")) != NULL)
			sscanf(p + 17, "%63[^,\n]", group);
		free(out);
	}
	snprintf(dst, n, "%s %s %s", proto, cipher, group);
}

/* ------------------------------------------------------------ slowloris */

struct loris {
	pthread_t th;
	atomic_bool stop;
	int port, n;
	int held;
};

/* Opens connection i: TLS handshake, then the start of a request. */
static WOLFSSL *loris_open(WOLFSSL_CTX *ctx, int port, int *fdp)
{
	static const char head[] = "GET /storage HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	struct sockaddr_in a;
	WOLFSSL *ssl;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*fdp = -1;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return NULL;
	}
	ssl = wolfSSL_new(ctx);
	if (!ssl || wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS || wolfSSL_connect(ssl) != WOLFSSL_SUCCESS ||
	    wolfSSL_write(ssl, head, (int)sizeof head - 1) <= 0) {
		if (ssl)
			wolfSSL_free(ssl);
		close(fd);
		return NULL;
	}
	*fdp = fd;
	return ssl;
}

/* Keeps s->n slowloris connections open: one header byte per connection
 * per second; a connection the server cut (read deadline) is replaced. */
static void *loris_main(void *arg)
{
	struct loris *s = arg;
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	WOLFSSL *ssl[64];
	int fd[64], i;

	if (!ctx)
		return NULL;
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	for (i = 0; i < s->n; i++) {
		ssl[i] = loris_open(ctx, s->port, &fd[i]);
		s->held += ssl[i] != NULL;
	}
	while (!atomic_load(&s->stop)) {
		for (i = 0; i < s->n; i++) {
			if (ssl[i] && wolfSSL_write(ssl[i], "a", 1) != 1) {
				wolfSSL_free(ssl[i]);
				close(fd[i]);
				ssl[i] = NULL;
			}
			if (!ssl[i])
				ssl[i] = loris_open(ctx, s->port, &fd[i]);
		}
		usleep(1000 * 1000);
	}
	for (i = 0; i < s->n; i++) {
		if (ssl[i]) {
			wolfSSL_free(ssl[i]);
			close(fd[i]);
		}
	}
	wolfSSL_CTX_free(ctx);
	wc_ecc_fp_free();
	return NULL;
}

/* ------------------------------------------------------------ nginx */

static pid_t start_nginx(const char *body, int *port_out)
{
	char conf[512], path[512], cmd[1200];
	FILE *f;
	pid_t pid;
	int port = 0, i;
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	int probe = socket(AF_INET, SOCK_STREAM, 0);

	/* a free port */
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (probe < 0 || bind(probe, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(probe, (struct sockaddr *)&a, &al) != 0)
		return -1;
	port = ntohs(a.sin_port);
	close(probe);
	snprintf(conf, sizeof conf, "%s/nginx.conf", g_dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f,
		"worker_processes 1;\ndaemon off;\nmaster_process off;\npid %s/nginx.pid;\n"
		"error_log %s/nginx.err;\nevents { worker_connections 1024; }\n"
		"http {\n access_log off;\n client_body_temp_path %s/nb; proxy_temp_path %s/np;\n"
		" fastcgi_temp_path %s/nf; uwsgi_temp_path %s/nu; scgi_temp_path %s/ns;\n"
		" keepalive_requests 1000;\n"
		" server {\n  listen 127.0.0.1:%d ssl;\n"
		"  ssl_certificate %s/localapi/cert.pem;\n  ssl_certificate_key %s/localapi/key.pem;\n"
		"  ssl_protocols TLSv1.3;\n  ssl_ecdh_curve X25519:prime256v1;\n"
		"  ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;\n"
		"  location = /storage { default_type application/json; return 200 '%s'; }\n }\n}\n",
		g_dir, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir, port, g_dir, g_dir, body);
	fclose(f);
	snprintf(path, sizeof path, "%s", g_dir);
	pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", 0);
		if (dn >= 0) {
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execlp("nginx", "nginx", "-c", conf, "-p", path, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		a.sin_port = htons((uint16_t)port);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
			close(fd);
			*port_out = port;
			return pid;
		}
		if (fd >= 0)
			close(fd);
		usleep(50000);
	}
	snprintf(cmd, sizeof cmd, "cat %s/nginx.err >&2", g_dir);
	(void)!system(cmd);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return -1;
}

/* ------------------------------------------------------------ main */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct buf_s { char d[65536]; size_t len; } *b = ud;

	if (b->len + sz * n >= sizeof b->d)
		return 0;
	memcpy(b->d + b->len, p, sz * n);
	b->len += sz * n;
	b->d[b->len] = '\0';
	return sz * n;
}

static void row(const char *what, const struct wrkres *a, const struct wrkres *n)
{
	printf("%-34s %10.0f %8.2f %10.0f %8.2f %7.2f\n", what, a->rps, a->p99, n ? n->rps : 0.0, n ? n->p99 : 0.0,
	       n && n->rps > 0 ? a->rps / n->rps : 0.0);
}

int main(void)
{
	static struct sim sim;
	static struct pve_opts po;
	static char a1[] = "127.0.0.1";
	static struct cfg_addr ga[] = { { 101, a1 } };
	static struct { char d[65536]; size_t len; } body;
	const char *args[] = { "--role", "agent", NULL };
	struct store_opts so;
	struct store *st = NULL;
	struct lapi_opts o;
	struct lapi *l = NULL;
	struct lapi_stats lst;
	struct lapi_cert_info leaf;
	struct wrkres a_ka, n_ka, a_hs, n_hs, a_sl, n_sl;
	struct loris ls;
	char db[300], why[256], neg_a[160], neg_n[160], hdr[200];
	const char *e = getenv("FH_BENCH_SECONDS");
	pid_t ngx = -1;
	int nport = 0, i, have_wrk = have("wrk"), have_nginx = have("nginx");
	CURL *h;
	struct curl_slist *hl = NULL;

	if (e && atoi(e) > 0)
		g_secs = atoi(e);
	e = getenv("FH_BENCH_REPS");
	if (e && atoi(e) > 0)
		g_reps = atoi(e);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	wolfSSL_Init();
	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(db, sizeof db, "%s/db", g_dir);
	memset(&so, 0, sizeof so);
	so.dir = db;
	if (store_open(&so, &st) || lapi_token_issue(st, 101, 1, g_tok) || sim_start(&sim, args)) {
		printf("bench_lapi: setup failed\n");
		return 0;
	}
	memset(&po, 0, sizeof po);
	po.endpoint = sim.endpoint;
	po.node = "pve";
	po.token = sim.token;
	po.tls_fingerprint = sim.fingerprint;
	memset(&o, 0, sizeof o);
	o.listen = "127.0.0.1:0";
	o.state_dir = g_dir;
	o.store = st;
	o.guest_addresses = ga;   /* the loader runs from 127.0.0.1: it is guest 101 */
	o.naddrs = 1;
	o.pve = &po;
	o.refresh_ms = 600000;
	o.max_conns_per_addr = 128;
	if (lapi_start(&o, &l, why, sizeof why) || lapi_cert_ensure(g_dir, &leaf)) {
		printf("bench_lapi: lapi_start: %s\n", why);
		return 0;
	}
	for (i = 0; i < 300; i++) {
		lapi_get_stats(l, &lst);
		if (lst.refreshes)
			break;
		usleep(20000);
	}
	/* the exact bytes the agent serves, for nginx */
	h = curl_easy_init();
	snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", g_tok);
	hl = curl_slist_append(hl, hdr);
	snprintf(why, sizeof why, "https://127.0.0.1:%d/storage", lapi_port(l));
	curl_easy_setopt(h, CURLOPT_URL, why);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, leaf.spki_pin);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(h) != CURLE_OK || !body.len) {
		printf("bench_lapi: GET /storage failed\n");
		return 0;
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	printf("GET /storage body: %zu bytes; %d s per run, median of %d runs; wrk -t1 (one loader thread), "
	       "servers on one thread each\n", body.len, g_secs, g_reps);
	if (!have_wrk) {
		printf("wrk not installed (apt-get install wrk): throughput figures skipped\n");
		goto out;
	}
	if (have_nginx)
		ngx = start_nginx(body.d, &nport);
	if (ngx < 0)
		printf("nginx %s: comparison skipped\n", have_nginx ? "did not start" : "not installed (apt-get install nginx-light)");
	negotiated(lapi_port(l), neg_a, sizeof neg_a);
	printf("agent TLS: %s\n", neg_a);
	if (ngx > 0) {
		negotiated(nport, neg_n, sizeof neg_n);
		printf("nginx TLS: %s (1 worker, same leaf and bytes)\n", neg_n);
	}
	memset(&n_ka, 0, sizeof n_ka);
	memset(&n_hs, 0, sizeof n_hs);
	memset(&n_sl, 0, sizeof n_sl);
	run_wrk_med(lapi_port(l), 32, false, &a_ka);
	if (ngx > 0)
		run_wrk_med(nport, 32, false, &n_ka);
	run_wrk_med(lapi_port(l), 8, true, &a_hs);
	if (ngx > 0)
		run_wrk_med(nport, 8, true, &n_hs);
	memset(&ls, 0, sizeof ls);
	ls.port = lapi_port(l);
	ls.n = 50;
	pthread_create(&ls.th, NULL, loris_main, &ls);
	sleep(1);
	run_wrk_med(lapi_port(l), 32, false, &a_sl);
	lapi_get_stats(l, &lst);
	atomic_store(&ls.stop, true);
	pthread_join(ls.th, NULL);
	printf("slowloris against the agent: %d held, agent connections during the run %lu\n", ls.held,
	       lst.active_conns);
	if (ngx > 0) {
		memset(&ls, 0, sizeof ls);
		ls.port = nport;
		ls.n = 50;
		pthread_create(&ls.th, NULL, loris_main, &ls);
		sleep(1);
		run_wrk_med(nport, 32, false, &n_sl);
		atomic_store(&ls.stop, true);
		pthread_join(ls.th, NULL);
	}
	printf("\n%-34s %10s %8s %10s %8s %7s\n", "", "agent r/s", "p99 ms", "nginx r/s", "p99 ms", "ratio");
	row("keep-alive GET /storage (c=32)", &a_ka, ngx > 0 ? &n_ka : NULL);
	row("new TLS connection each (c=8)", &a_hs, ngx > 0 ? &n_hs : NULL);
	row("keep-alive + 50 slowloris (c=32)", &a_sl, ngx > 0 ? &n_sl : NULL);
	printf("agent p99 under slowloris vs without: x%.2f; p50 %.2f -> %.2f ms\n",
	       a_ka.p99 > 0 ? a_sl.p99 / a_ka.p99 : 0.0, a_ka.p50, a_sl.p50);
	if (a_ka.errors || a_hs.errors || a_sl.errors)
		printf("agent errors (non-2xx or socket): %ld %ld %ld\n", a_ka.errors, a_hs.errors, a_sl.errors);
out:
	if (ngx > 0) {
		kill(ngx, SIGTERM);
		waitpid(ngx, NULL, 0);
	}
	lapi_stop(l);
	sim_stop(&sim);
	store_close(st);
	wc_ecc_fp_free();
	curl_global_cleanup();
	return 0;
}
