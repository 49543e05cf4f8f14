/* test_tlspin.c — tlspin against throwaway wolfSSL servers on 127.0.0.1,
 * expected digests from the openssl CLI, and a pinned libcurl (OpenSSL
 * flavour) request in the same binary. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfio.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <curl/curl.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "tlspin.h"

/* ------------------------------------------------------------ fixtures */

struct keyset {
	char cert[512], key[512], der[512];
	char fp[96];   /* openssl's "AA:BB:.." */
	char pin[TLSPIN_CURL_MAX]; /* "sha256//" + openssl's SPKI digest */
	uint8_t leaf[32];
};

static char g_dir[256];
static struct keyset g_ec, g_rsa;
static int g_fixtures_ok;

/* Runs cmd and returns its first output line (newline stripped); 0 or -1. */
static int run_line(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	size_t n;
	int st;

	if (!p)
		return -1;
	if (!fgets(out, (int)outlen, p))
		out[0] = '\0';
	st = pclose(p);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return st == 0 && n ? 0 : -1;
}

static int make_keyset(struct keyset *ks, const char *name, const char *newkey)
{
	char cmd[2048], line[256];
	const char *eq;
	int n;

	snprintf(ks->cert, sizeof ks->cert, "%s/%s.crt", g_dir, name);
	snprintf(ks->key, sizeof ks->key, "%s/%s.key", g_dir, name);
	snprintf(ks->der, sizeof ks->der, "%s/%s.der", g_dir, name);
	n = snprintf(cmd, sizeof cmd,
		     "openssl req -x509 -newkey %s -nodes -days 2 -subj /CN=t -keyout '%s' -out '%s' "
		     ">/dev/null 2>&1 && openssl x509 -in '%s' -outform der -out '%s' && echo done",
		     newkey, ks->key, ks->cert, ks->cert, ks->der);
	if (n < 0 || (size_t)n >= sizeof cmd || run_line(cmd, line, sizeof line) != 0)
		return -1;
	snprintf(cmd, sizeof cmd, "openssl x509 -in '%s' -noout -fingerprint -sha256", ks->cert);
	if (run_line(cmd, line, sizeof line) != 0 || !(eq = strchr(line, '=')))
		return -1;
	snprintf(ks->fp, sizeof ks->fp, "%s", eq + 1);
	snprintf(cmd, sizeof cmd,
		 "openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der | "
		 "openssl dgst -sha256 -binary | base64",
		 ks->cert);
	if (run_line(cmd, line, sizeof line) != 0)
		return -1;
	n = snprintf(ks->pin, sizeof ks->pin, "sha256//%s", line);
	if (n < 0 || (size_t)n >= sizeof ks->pin)
		return -1;
	return tlspin_parse_fingerprint(ks->fp, ks->leaf);
}

static void fixtures(void)
{
	t_tmpdir(g_dir, sizeof g_dir);
	g_fixtures_ok = make_keyset(&g_ec, "ec", "ec -pkeyopt ec_paramgen_curve:prime256v1") == 0 &&
			make_keyset(&g_rsa, "rsa", "rsa:2048") == 0;
	if (!g_fixtures_ok)
		fprintf(stderr, "test_tlspin: could not make certificates with openssl\n");
}

static void fixtures_cleanup(void)
{
	const struct keyset *sets[] = { &g_ec, &g_rsa };
	size_t i;

	for (i = 0; i < 2; i++) {
		unlink(sets[i]->cert);
		unlink(sets[i]->key);
		unlink(sets[i]->der);
	}
	rmdir(g_dir);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------- test server */

enum srv_mode {
	SRV_TLS,   /* handshake, then count application bytes until the peer closes */
	SRV_HTTP,  /* as SRV_TLS, answering each request with 200 "ok" */
	SRV_PLAIN, /* write a plain-text HTTP error and close: not TLS */
	SRV_CLOSE, /* close right after accept */
	SRV_MUTE   /* listen, never accept, never answer */
};

struct srv {
	enum srv_mode mode;
	int lfd;
	unsigned port;
	pthread_t th;
	int started;
	WOLFSSL_CTX *ctx;
	atomic_int stop;
	atomic_int conns_done;   /* connections fully handled */
	atomic_int handshakes;   /* TLS handshakes completed */
	atomic_long app_bytes;   /* application bytes read after handshakes */
	atomic_int requests;     /* HTTP requests answered */
	char sni[256];           /* SNI of the last ClientHello; valid once conns_done moved */
	char version[16];        /* protocol of the last handshake, e.g. "TLSv1.3" */
};

/* Server-side read callback that keeps the first bytes (the ClientHello). */
struct srv_io {
	int fd;
	unsigned char hello[8192];
	size_t hello_len;
};

static int srv_recv(WOLFSSL *ssl, char *buf, int sz, void *vctx)
{
	struct srv_io *io = vctx;
	ssize_t n;

	(void)ssl;
	do
		n = recv(io->fd, buf, (size_t)sz, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? WOLFSSL_CBIO_ERR_TIMEOUT
							       : WOLFSSL_CBIO_ERR_GENERAL;
	if (io->hello_len < sizeof io->hello) {
		size_t k = sizeof io->hello - io->hello_len;
		if (k > (size_t)n)
			k = (size_t)n;
		memcpy(io->hello + io->hello_len, buf, k);
		io->hello_len += k;
	}
	return (int)n;
}

static int srv_send(WOLFSSL *ssl, char *buf, int sz, void *vctx)
{
	struct srv_io *io = vctx;
	ssize_t n;

	(void)ssl;
	do
		n = send(io->fd, buf, (size_t)sz, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return (int)n;
}

static void srv_conn_tls(struct srv *s, int fd)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct srv_io *io = calloc(1, sizeof *io);
	WOLFSSL *ssl = wolfSSL_new(s->ctx);
	char buf[4096], req[8192];
	size_t reqlen = 0;

	s->sni[0] = '\0';
	if (!io || !ssl)
		goto out;
	io->fd = fd;
	wolfSSL_set_fd(ssl, fd);
	wolfSSL_SSLSetIORecv(ssl, srv_recv);
	wolfSSL_SSLSetIOSend(ssl, srv_send);
	wolfSSL_SetIOReadCtx(ssl, io);
	wolfSSL_SetIOWriteCtx(ssl, io);
	if (wolfSSL_accept(ssl) != WOLFSSL_SUCCESS)
		goto out;
	{
		unsigned char sni[256];
		unsigned int sz = sizeof sni - 1;
		if (wolfSSL_SNI_GetFromBuffer(io->hello, (unsigned int)io->hello_len, WOLFSSL_SNI_HOST_NAME,
					      sni, &sz) == WOLFSSL_SUCCESS && sz < sizeof s->sni) {
			memcpy(s->sni, sni, sz);
			s->sni[sz] = '\0';
		}
	}
	snprintf(s->version, sizeof s->version, "%s", wolfSSL_get_version(ssl));
	atomic_fetch_add(&s->handshakes, 1);
	for (;;) {
		int n = wolfSSL_read(ssl, buf, (int)sizeof buf);
		if (n <= 0)
			break;
		atomic_fetch_add(&s->app_bytes, n);
		if (s->mode != SRV_HTTP)
			continue;
		if ((size_t)n > sizeof req - 1 - reqlen)
			break;
		memcpy(req + reqlen, buf, (size_t)n);
		reqlen += (size_t)n;
		req[reqlen] = '\0';
		if (strstr(req, "\r\n\r\n")) {
			atomic_fetch_add(&s->requests, 1);
			reqlen = 0;
			if (wolfSSL_write(ssl, resp, (int)sizeof resp - 1) != (int)sizeof resp - 1)
				break;
		}
	}
	wolfSSL_shutdown(ssl);
out:
	if (ssl)
		wolfSSL_free(ssl);
	free(io);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
		struct timeval tv = { .tv_sec = 5 };
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (s->mode == SRV_PLAIN) {
			static const char msg[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
			char junk[512];
			(void)!write(fd, msg, sizeof msg - 1);
			shutdown(fd, SHUT_WR);
			while (read(fd, junk, sizeof junk) > 0)
				;
		} else if (s->mode != SRV_CLOSE) {
			srv_conn_tls(s, fd);
		}
		close(fd);
		atomic_fetch_add(&s->conns_done, 1);
	}
	/* wolfSSL 5.5.4 (Debian: FP_ECC + HAVE_THREAD_LS) keeps a per-thread
	 * ECC fixed-point cache that only this call in this thread frees. */
	wc_ecc_fp_free();
	return NULL;
}

/* Binds 127.0.0.1:0 and starts the server; 0 or -1. */
static int srv_start(struct srv *s, enum srv_mode mode, const struct keyset *ks, int tls12_only)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof sa;

	memset(s, 0, sizeof *s);
	s->mode = mode;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s->lfd, 8) != 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &salen) != 0)
		return -1;
	s->port = ntohs(sa.sin_port);
	if (mode == SRV_MUTE)
		return 0;
	if (mode == SRV_TLS || mode == SRV_HTTP) {
		s->ctx = wolfSSL_CTX_new(tls12_only ? wolfTLSv1_2_server_method()
						    : wolfSSLv23_server_method());
		if (!s->ctx ||
		    wolfSSL_CTX_use_certificate_file(s->ctx, ks->cert, WOLFSSL_FILETYPE_PEM) !=
			    WOLFSSL_SUCCESS ||
		    wolfSSL_CTX_use_PrivateKey_file(s->ctx, ks->key, WOLFSSL_FILETYPE_PEM) !=
			    WOLFSSL_SUCCESS)
			return -1;
	}
	if (pthread_create(&s->th, NULL, srv_main, s) != 0)
		return -1;
	s->started = 1;
	return 0;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, 1);
	if (s->started)
		pthread_join(s->th, NULL);
	if (s->ctx)
		wolfSSL_CTX_free(s->ctx);
	if (s->lfd >= 0)
		close(s->lfd);
}

/* Waits until the server finished n connections; 0 or -1 after 5 s. */
static int srv_wait(struct srv *s, int n)
{
	long long end = mono_ms() + 5000;

	while (atomic_load(&s->conns_done) < n) {
		if (mono_ms() > end)
			return -1;
		usleep(2000);
	}
	return 0;
}

/* ------------------------------------------------------------------ tests */

T_TEST(t_parse_fingerprint)
{
	static const char colon[] = "80:D4:F2:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:"
				    "DD:EE:FF:01:23:45:67:89:AB:CD:EF:10:32:54:69:F5";
	static const char plain[] = "80d4f200112233445566778899aabbccddeeff0123456789abcdef10325469F5";
	uint8_t a[32], b[32], keep[32];
	char out[96], bad[128];

	T_OK(tlspin_parse_fingerprint(colon, a));
	T_CHECK(a[0] == 0x80 && a[1] == 0xd4 && a[30] == 0x69 && a[31] == 0xf5);
	T_OK(tlspin_parse_fingerprint(plain, b));
	T_CHECK(memcmp(a, b, 32) == 0);
	tlspin_format_fingerprint(a, out);
	T_EQ_STR(out, colon);
	T_EQ_INT(strlen(out), 95);

	/* lower case with colons */
	snprintf(bad, sizeof bad, "%s", colon);
	for (char *p = bad; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	T_OK(tlspin_parse_fingerprint(bad, b));
	T_CHECK(memcmp(a, b, 32) == 0);

	memset(keep, 0x5a, sizeof keep);
	memcpy(b, keep, 32);
	T_ERR(tlspin_parse_fingerprint(NULL, b), FH_ERR_CONFIG);
	T_ERR(tlspin_parse_fingerprint("", b), FH_ERR_CONFIG);
	T_ERR(tlspin_parse_fingerprint(plain + 1, b), FH_ERR_CONFIG);   /* 63 digits */
	snprintf(bad, sizeof bad, "%s0", plain);                        /* 65 */
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	T_ERR(tlspin_parse_fingerprint(colon + 1, b), FH_ERR_CONFIG);   /* 94 chars */
	snprintf(bad, sizeof bad, "%s:", colon);                        /* trailing colon */
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, "%.94s", colon);                      /* 31.5 pairs */
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, "%s", plain);
	bad[10] = 'g';
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, "%s", colon);
	bad[2] = '-';                                                   /* wrong separator */
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, "%s", colon);
	bad[3] = ':';                                                   /* colon in a pair */
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, " %.63s", plain);                     /* whitespace */
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, "%s\n", plain);
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);
	snprintf(bad, sizeof bad, "%.95s", "80D4F2001122334455667788:99:AA:BB:CC:DD:EE:FF:01:23:45:67:89:AB:"
					    "CD:EF:10:32:54:69:F5:00:00:00:00:00:00:00:00");
	T_ERR(tlspin_parse_fingerprint(bad, b), FH_ERR_CONFIG);          /* mixed forms */
	T_ERR(tlspin_parse_fingerprint("0x80d4f200112233445566778899aabbccddeeff0123456789abcdef103254", b),
	      FH_ERR_CONFIG);
	T_CHECK(memcmp(b, keep, 32) == 0); /* untouched on failure */
	T_ERR(tlspin_parse_fingerprint(plain, NULL), FH_ERR_INVAL);
}

T_TEST(t_loopback)
{
	T_CHECK(tlspin_host_is_loopback("127.0.0.1"));
	T_CHECK(tlspin_host_is_loopback("127.255.255.254"));
	T_CHECK(tlspin_host_is_loopback("127.0.1.1"));
	T_CHECK(tlspin_host_is_loopback("::1"));
	T_CHECK(tlspin_host_is_loopback("[::1]"));
	T_CHECK(tlspin_host_is_loopback("0:0:0:0:0:0:0:1"));
	T_CHECK(tlspin_host_is_loopback("localhost"));
	T_CHECK(tlspin_host_is_loopback("LocalHost"));

	T_CHECK(!tlspin_host_is_loopback(NULL));
	T_CHECK(!tlspin_host_is_loopback(""));
	T_CHECK(!tlspin_host_is_loopback("128.0.0.1"));
	T_CHECK(!tlspin_host_is_loopback("126.255.255.255"));
	T_CHECK(!tlspin_host_is_loopback("10.0.0.1"));
	T_CHECK(!tlspin_host_is_loopback("0.0.0.0"));
	T_CHECK(!tlspin_host_is_loopback("127.1"));
	T_CHECK(!tlspin_host_is_loopback("127.0.0.1 "));
	T_CHECK(!tlspin_host_is_loopback("127.0.0.1.example"));
	T_CHECK(!tlspin_host_is_loopback("::"));
	T_CHECK(!tlspin_host_is_loopback("::2"));
	T_CHECK(!tlspin_host_is_loopback("[::1"));
	T_CHECK(!tlspin_host_is_loopback("::1]"));
	T_CHECK(!tlspin_host_is_loopback("[127.0.0.1]"));
	T_CHECK(!tlspin_host_is_loopback("localhost.example"));
	T_CHECK(!tlspin_host_is_loopback("localhost."));
	T_CHECK(!tlspin_host_is_loopback("pve.local"));
}

static void check_cert_digests(const struct keyset *ks)
{
	size_t len = 0;
	char *der = t_slurp(ks->der, &len);
	uint8_t leaf[32], keep[32];
	char pin[TLSPIN_CURL_MAX], fp[96];

	T_CHECK(der != NULL);
	if (!der)
		return;
	T_OK(tlspin_cert_digests((const uint8_t *)der, len, leaf, pin));
	T_EQ_STR(pin, ks->pin);
	tlspin_format_fingerprint(leaf, fp);
	T_EQ_STR(fp, ks->fp);

	memset(keep, 0x11, sizeof keep);
	memcpy(leaf, keep, sizeof leaf);
	T_ERR(tlspin_cert_digests((const uint8_t *)der, len - 1, leaf, pin), FH_ERR_DECODE);
	T_ERR(tlspin_cert_digests((const uint8_t *)der, 40, leaf, pin), FH_ERR_DECODE);
	T_ERR(tlspin_cert_digests((const uint8_t *)der + 1, len - 1, leaf, pin), FH_ERR_DECODE);
	T_CHECK(memcmp(leaf, keep, sizeof keep) == 0);
	free(der);
}

T_TEST(t_cert_digests)
{
	static const uint8_t junk[] = { 0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00 };
	static const uint8_t indef[] = { 0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00 };
	char *grown;
	size_t len = 0;
	uint8_t leaf[32];
	char pin[TLSPIN_CURL_MAX];

	T_CHECK(g_fixtures_ok);
	if (!g_fixtures_ok)
		return;
	check_cert_digests(&g_ec);
	check_cert_digests(&g_rsa);
	T_ERR(tlspin_cert_digests(junk, sizeof junk, leaf, pin), FH_ERR_DECODE);
	T_ERR(tlspin_cert_digests(indef, sizeof indef, leaf, pin), FH_ERR_DECODE);
	T_ERR(tlspin_cert_digests(NULL, 10, leaf, pin), FH_ERR_INVAL);
	T_ERR(tlspin_cert_digests(junk, 0, leaf, pin), FH_ERR_INVAL);
	/* trailing garbage after the certificate */
	grown = t_slurp(g_ec.der, &len);
	T_CHECK(grown != NULL);
	if (grown) {
		char *g2 = realloc(grown, len + 1);
		T_CHECK(g2 != NULL);
		if (g2) {
			grown = g2;
			grown[len] = 0;
			T_ERR(tlspin_cert_digests((const uint8_t *)grown, len + 1, leaf, pin), FH_ERR_DECODE);
		}
		free(grown);
	}
}

/* One probe against a TLS server with keyset ks; checks the common facts. */
static void probe_case(const struct keyset *ks, int tls12_only, const char *host, const char *want_sni)
{
	const char *want_version = tls12_only ? "TLSv1.2" : "TLSv1.3";
	struct srv s;
	uint8_t seen[32], wrong[32];
	char pin[TLSPIN_CURL_MAX], fp[96];

	T_CHECK(g_fixtures_ok);
	if (!g_fixtures_ok)
		return;
	T_CHECK(srv_start(&s, SRV_TLS, ks, tls12_only) == 0);

	/* right pin */
	memset(seen, 0, sizeof seen);
	T_OK(tlspin_probe(host, s.port, 5000, ks->leaf, pin, seen));
	T_EQ_STR(pin, ks->pin);
	T_CHECK(memcmp(seen, ks->leaf, 32) == 0);
	T_CHECK(srv_wait(&s, 1) == 0);
	T_EQ_INT(atomic_load(&s.handshakes), 1);
	T_EQ_INT(atomic_load(&s.app_bytes), 0);
	T_EQ_STR(s.sni, want_sni);
	T_EQ_STR(s.version, want_version);

	/* wrong pin: one bit off */
	memcpy(wrong, ks->leaf, 32);
	wrong[31] ^= 1;
	memset(seen, 0, sizeof seen);
	T_ERR(tlspin_probe(host, s.port, 5000, wrong, pin, seen), FH_ERR_TLS_PIN);
	T_EQ_STR(pin, "");
	tlspin_format_fingerprint(seen, fp);
	T_EQ_STR(fp, ks->fp);
	T_CHECK(srv_wait(&s, 2) == 0);
	T_EQ_INT(atomic_load(&s.handshakes), 2);
	T_EQ_INT(atomic_load(&s.app_bytes), 0);

	/* wrong pin, seen_leaf not wanted */
	T_ERR(tlspin_probe(host, s.port, 5000, wrong, pin, NULL), FH_ERR_TLS_PIN);
	T_CHECK(srv_wait(&s, 3) == 0);
	T_EQ_INT(atomic_load(&s.app_bytes), 0);
	srv_stop(&s);
}

T_TEST(t_probe_ec_tls13)
{
	probe_case(&g_ec, 0, "127.0.0.1", "");
}

T_TEST(t_probe_rsa_tls12)
{
	probe_case(&g_rsa, 1, "127.0.0.1", "");
}

T_TEST(t_probe_localhost_sni)
{
	probe_case(&g_ec, 0, "localhost", "localhost");
}

struct probe_arg {
	unsigned port;
	int rc;
	char pin[TLSPIN_CURL_MAX];
};

static void *probe_thread(void *arg)
{
	struct probe_arg *a = arg;

	a->rc = tlspin_probe("127.0.0.1", a->port, 5000, g_ec.leaf, a->pin, NULL);
	return NULL;
}

/* Probes from threads that then exit: per-thread wolfSSL state must not
 * leak (LeakSanitizer checks this in the sanitizer build). */
T_TEST(t_probe_threads)
{
	struct srv s;
	struct probe_arg a[4];
	pthread_t th[4];
	int i;

	T_CHECK(g_fixtures_ok);
	if (!g_fixtures_ok)
		return;
	T_CHECK(srv_start(&s, SRV_TLS, &g_ec, 0) == 0);
	for (i = 0; i < 4; i++) {
		memset(&a[i], 0, sizeof a[i]);
		a[i].port = s.port;
		T_CHECK(pthread_create(&th[i], NULL, probe_thread, &a[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		T_OK(a[i].rc);
		T_EQ_STR(a[i].pin, g_ec.pin);
	}
	T_CHECK(srv_wait(&s, 4) == 0);
	T_EQ_INT(atomic_load(&s.app_bytes), 0);
	srv_stop(&s);
}

T_TEST(t_probe_closed_port)
{
	struct srv s;
	unsigned port;
	char pin[TLSPIN_CURL_MAX];

	T_CHECK(srv_start(&s, SRV_MUTE, NULL, 0) == 0);
	port = s.port;
	srv_stop(&s); /* the port is now closed */
	T_ERR(tlspin_probe("127.0.0.1", port, 2000, g_ec.leaf, pin, NULL), FH_ERR_TRANSPORT);
	T_EQ_STR(pin, "");
}

T_TEST(t_probe_timeout)
{
	struct srv s;
	char pin[TLSPIN_CURL_MAX];
	long long t0, dt;

	T_CHECK(srv_start(&s, SRV_MUTE, NULL, 0) == 0);
	t0 = mono_ms();
	T_ERR(tlspin_probe("127.0.0.1", s.port, 300, g_ec.leaf, pin, NULL), FH_ERR_TIMEOUT);
	dt = mono_ms() - t0;
	T_CHECK(dt >= 290 && dt < 2000);
	srv_stop(&s);
}

T_TEST(t_probe_not_tls)
{
	struct srv s;
	char pin[TLSPIN_CURL_MAX];

	T_CHECK(srv_start(&s, SRV_PLAIN, NULL, 0) == 0);
	T_ERR(tlspin_probe("127.0.0.1", s.port, 3000, g_ec.leaf, pin, NULL), FH_ERR_TLS);
	srv_stop(&s);
}

T_TEST(t_probe_peer_closes)
{
	struct srv s;
	char pin[TLSPIN_CURL_MAX];

	T_CHECK(srv_start(&s, SRV_CLOSE, NULL, 0) == 0);
	T_ERR(tlspin_probe("127.0.0.1", s.port, 3000, g_ec.leaf, pin, NULL), FH_ERR_TRANSPORT);
	srv_stop(&s);
}

T_TEST(t_probe_bad_args)
{
	char pin[TLSPIN_CURL_MAX];

	T_ERR(tlspin_probe(NULL, 443, 1000, g_ec.leaf, pin, NULL), FH_ERR_INVAL);
	T_ERR(tlspin_probe("", 443, 1000, g_ec.leaf, pin, NULL), FH_ERR_INVAL);
	T_ERR(tlspin_probe("127.0.0.1", 0, 1000, g_ec.leaf, pin, NULL), FH_ERR_INVAL);
	T_ERR(tlspin_probe("127.0.0.1", 65536, 1000, g_ec.leaf, pin, NULL), FH_ERR_INVAL);
	T_ERR(tlspin_probe("127.0.0.1", 443, 0, g_ec.leaf, pin, NULL), FH_ERR_INVAL);
	T_ERR(tlspin_probe("127.0.0.1", 443, 1000, NULL, pin, NULL), FH_ERR_INVAL);
	T_ERR(tlspin_probe("127.0.0.1", 443, 1000, g_ec.leaf, NULL, NULL), FH_ERR_INVAL);
}

struct body {
	char data[64];
	size_t len;
};

static size_t body_write(char *p, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;
	size_t k = sz * n;

	if (k > sizeof b->data - 1 - b->len)
		return 0;
	memcpy(b->data + b->len, p, k);
	b->len += k;
	b->data[b->len] = '\0';
	return k;
}

static CURLcode curl_get(unsigned port, const char *pin, struct body *b)
{
	CURL *c = curl_easy_init();
	char url[64];
	CURLcode rc;

	if (!c)
		return CURLE_FAILED_INIT;
	memset(b, 0, sizeof *b);
	snprintf(url, sizeof url, "https://127.0.0.1:%u/api2/json/version", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, pin);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	return rc;
}

/* The pin tlspin derives is the one libcurl (OpenSSL) enforces. */
static void curl_case(const struct keyset *ks, int tls12_only)
{
	struct srv s;
	struct body b;
	char pin[TLSPIN_CURL_MAX], wrong[TLSPIN_CURL_MAX];
	size_t n;
	CURLcode cr;

	T_CHECK(g_fixtures_ok);
	if (!g_fixtures_ok)
		return;
	T_CHECK(srv_start(&s, SRV_HTTP, ks, tls12_only) == 0);
	T_OK(tlspin_probe("127.0.0.1", s.port, 5000, ks->leaf, pin, NULL));
	T_CHECK(srv_wait(&s, 1) == 0);

	cr = curl_get(s.port, pin, &b);
	T_EQ_INT(cr, CURLE_OK);
	T_EQ_STR(b.data, "ok");
	T_CHECK(srv_wait(&s, 2) == 0);
	T_EQ_INT(atomic_load(&s.requests), 1);
	T_CHECK(atomic_load(&s.app_bytes) > 0);

	/* same pin with one base64 character changed */
	snprintf(wrong, sizeof wrong, "%s", pin);
	n = strlen(wrong);
	wrong[n - 3] = wrong[n - 3] == 'A' ? 'B' : 'A';
	atomic_store(&s.app_bytes, 0);
	cr = curl_get(s.port, wrong, &b);
	T_EQ_INT(cr, CURLE_SSL_PINNEDPUBKEYNOTMATCH);
	T_CHECK(srv_wait(&s, 3) == 0);
	T_EQ_INT(atomic_load(&s.handshakes), 3);
	T_EQ_INT(atomic_load(&s.requests), 1);
	T_EQ_INT(atomic_load(&s.app_bytes), 0);
	T_EQ_INT(b.len, 0);
	srv_stop(&s);
}

T_TEST(t_curl_pin_ec)
{
	curl_case(&g_ec, 0);
}

T_TEST(t_curl_pin_rsa_tls12)
{
	curl_case(&g_rsa, 1);
}

int main(void)
{
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || wolfSSL_Init() != WOLFSSL_SUCCESS) {
		fprintf(stderr, "test_tlspin: library init failed\n");
		return 1;
	}
	fixtures();
	T_RUN(t_parse_fingerprint);
	T_RUN(t_loopback);
	T_RUN(t_cert_digests);
	T_RUN(t_probe_ec_tls13);
	T_RUN(t_probe_rsa_tls12);
	T_RUN(t_probe_localhost_sni);
	T_RUN(t_probe_threads);
	T_RUN(t_probe_closed_port);
	T_RUN(t_probe_timeout);
	T_RUN(t_probe_not_tls);
	T_RUN(t_probe_peer_closes);
	T_RUN(t_probe_bad_args);
	T_RUN(t_curl_pin_ec);
	T_RUN(t_curl_pin_rsa_tls12);
	rc = t_done();
	fixtures_cleanup();
	wolfSSL_Cleanup();
	curl_global_cleanup();
	return rc;
}
