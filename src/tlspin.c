/* tlspin.c — see tlspin.h.
 *
 * The SPKI is cut out of the certificate DER by a small DER walker instead
 * of being rebuilt by wolfSSL: on wolfSSL 5.5.4 both wolfSSL_i2d_PUBKEY and
 * wc_GetPubKeyDerFromCert return the bare PKCS#1 RSAPublicKey for RSA keys
 * (not the SubjectPublicKeyInfo), so their digest is not libcurl's pin. The
 * raw bytes from the certificate are exactly what OpenSSL hashes.
 *
 * The socket has its own wolfSSL I/O callbacks (MSG_NOSIGNAL, EOF and
 * resets recorded) so a peer that drops the connection mid-handshake is
 * FH_ERR_TRANSPORT, while alerts and protocol garbage are FH_ERR_TLS.
 * Name resolution (getaddrinfo) is not bounded by timeout_ms.
 */
#include "tlspin.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfio.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "err.h"

#define PIN_PREFIX "sha256//"

/* ---------------------------------------------------------------- helpers */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 1 when equal; time independent of where the first difference is. */
static int ct_equal32(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t acc = 0;
	size_t i;

	for (i = 0; i < 32; i++)
		acc = (uint8_t)(acc | (a[i] ^ b[i]));
	return acc == 0;
}

int tlspin_parse_fingerprint(const char *s, uint8_t out[32])
{
	uint8_t tmp[32];
	size_t len, i, step;

	if (!out)
		return FH_ERR_INVAL;
	if (!s)
		return FH_ERR_CONFIG;
	len = strlen(s);
	if (len == 64)
		step = 2;
	else if (len == 95)
		step = 3;
	else
		return FH_ERR_CONFIG;
	for (i = 0; i < 32; i++) {
		const char *p = s + i * step;
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0)
			return FH_ERR_CONFIG;
		if (step == 3 && i < 31 && p[2] != ':')
			return FH_ERR_CONFIG;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, tmp, sizeof tmp);
	return FH_OK;
}

void tlspin_format_fingerprint(const uint8_t fp[32], char out[96])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < 32; i++) {
		out[i * 3] = hex[fp[i] >> 4];
		out[i * 3 + 1] = hex[fp[i] & 0x0f];
		out[i * 3 + 2] = i < 31 ? ':' : '\0';
	}
}

int tlspin_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN + 1];
	size_t n;

	if (!host || !*host)
		return 0;
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	/* inet_pton(AF_INET) takes only the full dotted quad: "127.1" and
	 * "0x7f.0.0.1" are not literals here. */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	n = strlen(host);
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof buf)
			return 0;
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
	return 0;
}

/* ------------------------------------------------------------ DER walking */

/* Reads one DER header at der[*off] (within [0, end)), checks the tag and
 * that the content fits; on success *off is the content start and *clen its
 * length. Definite lengths only, at most 4 length bytes. */
static int der_hdr(const uint8_t *der, size_t end, size_t *off, uint8_t tag, size_t *clen)
{
	size_t p = *off, l;

	if (p >= end || der[p] != tag)
		return -1;
	p++;
	if (p >= end)
		return -1;
	if (der[p] < 0x80) {
		l = der[p++];
	} else {
		size_t nb = der[p++] & 0x7fu, i;
		if (nb == 0 || nb > 4 || nb > end - p)
			return -1;
		for (l = 0, i = 0; i < nb; i++)
			l = (l << 8) | der[p++];
		if (l < 0x80)
			return -1; /* not minimal: not DER */
	}
	if (l > end - p)
		return -1;
	*off = p;
	*clen = l;
	return 0;
}

static int der_skip(const uint8_t *der, size_t end, size_t *off, uint8_t tag)
{
	size_t clen;

	if (der_hdr(der, end, off, tag, &clen) != 0)
		return -1;
	*off += clen;
	return 0;
}

/* Locates tbsCertificate.subjectPublicKeyInfo (header included) in a DER
 * certificate that spans exactly len bytes. */
static int der_find_spki(const uint8_t *der, size_t len, size_t *spki_off, size_t *spki_len)
{
	size_t off = 0, clen, tbs_end, start, spki_end, o;

	if (der_hdr(der, len, &off, 0x30, &clen) != 0 || off + clen != len)
		return -1;
	if (der_hdr(der, len, &off, 0x30, &clen) != 0) /* tbsCertificate */
		return -1;
	tbs_end = off + clen;
	if (off < tbs_end && der[off] == 0xa0 && der_skip(der, tbs_end, &off, 0xa0) != 0)
		return -1; /* [0] version */
	if (der_skip(der, tbs_end, &off, 0x02) != 0 ||    /* serialNumber */
	    der_skip(der, tbs_end, &off, 0x30) != 0 ||    /* signature */
	    der_skip(der, tbs_end, &off, 0x30) != 0 ||    /* issuer */
	    der_skip(der, tbs_end, &off, 0x30) != 0 ||    /* validity */
	    der_skip(der, tbs_end, &off, 0x30) != 0)      /* subject */
		return -1;
	start = off;
	if (der_hdr(der, tbs_end, &off, 0x30, &clen) != 0)
		return -1;
	spki_end = off + clen;
	/* SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING } */
	o = off;
	if (der_skip(der, spki_end, &o, 0x30) != 0 || der_skip(der, spki_end, &o, 0x03) != 0 ||
	    o != spki_end)
		return -1;
	*spki_off = start;
	*spki_len = spki_end - start;
	return 0;
}

int tlspin_cert_digests(const uint8_t *der, size_t len, uint8_t leaf_sha256[32],
			char curl_pin[TLSPIN_CURL_MAX])
{
	uint8_t leaf[32], spki_hash[32];
	byte b64[64];
	word32 b64len = sizeof b64;
	size_t off, slen;

	if (!der || !len || !leaf_sha256 || !curl_pin || len > UINT32_MAX)
		return FH_ERR_INVAL;
	if (der_find_spki(der, len, &off, &slen) != 0)
		return FH_ERR_DECODE;
	if (wc_Sha256Hash(der, (word32)len, leaf) != 0 ||
	    wc_Sha256Hash(der + off, (word32)slen, spki_hash) != 0)
		return FH_ERR_INTERNAL;
	if (Base64_Encode_NoNl(spki_hash, (word32)sizeof spki_hash, b64, &b64len) != 0 ||
	    sizeof PIN_PREFIX - 1 + b64len >= TLSPIN_CURL_MAX)
		return FH_ERR_INTERNAL;
	memcpy(leaf_sha256, leaf, sizeof leaf);
	memcpy(curl_pin, PIN_PREFIX, sizeof PIN_PREFIX - 1);
	memcpy(curl_pin + sizeof PIN_PREFIX - 1, b64, b64len);
	curl_pin[sizeof PIN_PREFIX - 1 + b64len] = '\0';
	return FH_OK;
}

/* ----------------------------------------------------------------- probe */

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static int g_init_rc;

static void wolf_init(void)
{
	g_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t rem = deadline - now_ms();
		int r;

		if (rem <= 0)
			return 0;
		r = poll(&pfd, 1, rem > INT_MAX ? INT_MAX : (int)rem);
		if (r > 0)
			return 1;
		if (r == 0)
			continue; /* re-check the clock */
		if (errno != EINTR)
			return -1;
	}
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fd_out)
{
	int fd, err = 0, w;
	socklen_t elen = sizeof err;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return FH_ERR_TRANSPORT;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		*fd_out = fd;
		return FH_OK;
	}
	if (errno != EINPROGRESS && errno != EINTR) {
		close(fd);
		return FH_ERR_TRANSPORT;
	}
	w = wait_fd(fd, POLLOUT, deadline);
	if (w <= 0) {
		close(fd);
		return w == 0 ? FH_ERR_TIMEOUT : FH_ERR_TRANSPORT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
		close(fd);
		return FH_ERR_TRANSPORT;
	}
	*fd_out = fd;
	return FH_OK;
}

static int connect_host(const char *host, unsigned port, int64_t deadline, int *fd_out)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	int rc = FH_ERR_TRANSPORT;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	snprintf(portstr, sizeof portstr, "%u", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res) {
		/* AI_ADDRCONFIG hides ::1 and 127.0.0.1 on a host whose only
		 * interface is lo; ask again without it. */
		hints.ai_flags = AI_NUMERICSERV;
		if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
			return now_ms() >= deadline ? FH_ERR_TIMEOUT : FH_ERR_TRANSPORT;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		if (now_ms() >= deadline) {
			rc = FH_ERR_TIMEOUT;
			break;
		}
		rc = connect_one(ai, deadline, fd_out);
		if (rc == FH_OK || rc == FH_ERR_TIMEOUT)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

int tlspin_io_recv(int fd, char *buf, int sz, bool *failed)
{
	for (;;) {
		ssize_t n = recv(fd, buf, (size_t)sz, 0);
		if (n > 0)
			return (int)n;
		if (n == 0) {
			*failed = true;
			return WOLFSSL_CBIO_ERR_CONN_CLOSE;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return WOLFSSL_CBIO_ERR_WANT_READ;
		*failed = true;
		return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
	}
}

int tlspin_io_send(int fd, const char *buf, int sz, bool *failed)
{
	for (;;) {
		ssize_t n = send(fd, buf, (size_t)sz, MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return WOLFSSL_CBIO_ERR_WANT_WRITE;
		*failed = true;
		return errno == EPIPE ? WOLFSSL_CBIO_ERR_CONN_CLOSE
		       : errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
	}
}

struct pin_io {
	int fd;
	bool failed; /* the socket hit EOF, a reset or another error */
};

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *vctx)
{
	struct pin_io *io = vctx;

	(void)ssl;
	return tlspin_io_recv(io->fd, buf, sz, &io->failed);
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *vctx)
{
	struct pin_io *io = vctx;

	(void)ssl;
	return tlspin_io_send(io->fd, buf, sz, &io->failed);
}

/* "[::1]" -> "::1" in buf; other hosts unchanged. NULL if it cannot fit. */
static const char *strip_brackets(const char *host, char *buf, size_t buflen)
{
	size_t n = strlen(host);

	if (n < 2 || host[0] != '[' || host[n - 1] != ']')
		return host;
	if (n - 2 >= buflen)
		return NULL;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	return buf;
}

static int is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Drives the handshake to completion within the deadline. */
static int handshake(WOLFSSL *ssl, struct pin_io *io, int64_t deadline)
{
	for (;;) {
		int r = wolfSSL_connect(ssl), e, w;

		if (r == WOLFSSL_SUCCESS)
			return FH_OK;
		e = wolfSSL_get_error(ssl, r);
		if (e == WOLFSSL_ERROR_WANT_READ)
			w = wait_fd(io->fd, POLLIN, deadline);
		else if (e == WOLFSSL_ERROR_WANT_WRITE)
			w = wait_fd(io->fd, POLLOUT, deadline);
		else
			return io->failed ? FH_ERR_TRANSPORT : FH_ERR_TLS;
		if (w == 0)
			return FH_ERR_TIMEOUT;
		if (w < 0)
			return FH_ERR_TRANSPORT;
	}
}

/* Leaf digest and SPKI pin of the certificate the peer presented. */
static int peer_digests(WOLFSSL *ssl, uint8_t leaf[32], char pin[TLSPIN_CURL_MAX])
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
	const unsigned char *der;
	int derlen = 0, rc;

	if (!x)
		return FH_ERR_TLS;
	der = wolfSSL_X509_get_der(x, &derlen);
	if (!der || derlen <= 0)
		rc = FH_ERR_TLS;
	else
		rc = tlspin_cert_digests(der, (size_t)derlen, leaf, pin);
	wolfSSL_X509_free(x);
	return rc == FH_ERR_DECODE ? FH_ERR_TLS : rc;
}

int tlspin_probe(const char *host, unsigned port, long timeout_ms, const uint8_t want_leaf[32],
		 char curl_pin[TLSPIN_CURL_MAX], uint8_t seen_leaf[32])
{
	char hbuf[INET6_ADDRSTRLEN + 1], pin[TLSPIN_CURL_MAX];
	uint8_t leaf[32];
	const char *h;
	int64_t deadline;
	int fd = -1, rc;
	WOLFSSL_CTX *ctx = NULL;
	WOLFSSL *ssl = NULL;
	struct pin_io io;

	if (curl_pin)
		curl_pin[0] = '\0';
	if (!host || !*host || !port || port > 65535 || timeout_ms <= 0 || !want_leaf || !curl_pin)
		return FH_ERR_INVAL;
	h = strip_brackets(host, hbuf, sizeof hbuf);
	if (!h)
		return FH_ERR_INVAL;
	if (timeout_ms > INT32_MAX)
		timeout_ms = INT32_MAX; /* ~24 days; keeps the deadline arithmetic in range */
	deadline = now_ms() + timeout_ms;
	pthread_once(&g_init_once, wolf_init);
	if (g_init_rc != 0)
		return FH_ERR_TLS;

	rc = connect_host(h, port, deadline, &fd);
	if (rc != FH_OK)
		return rc;
	io.fd = fd;
	io.failed = false;

	rc = FH_ERR_TLS;
	ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!ctx)
		goto out;
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
		goto out;
	/* The pin replaces chain and name validation. */
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	ssl = wolfSSL_new(ctx);
	if (!ssl)
		goto out;
	if (wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS)
		goto out;
	wolfSSL_SSLSetIORecv(ssl, io_recv);
	wolfSSL_SSLSetIOSend(ssl, io_send);
	wolfSSL_SetIOReadCtx(ssl, &io);
	wolfSSL_SetIOWriteCtx(ssl, &io);
	if (!is_ip_literal(h) &&
	    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, h, (unsigned short)strnlen(h, USHRT_MAX)) !=
		    WOLFSSL_SUCCESS)
		goto out;

	rc = handshake(ssl, &io, deadline);
	if (rc != FH_OK)
		goto out;
	rc = peer_digests(ssl, leaf, pin);
	if (rc != FH_OK)
		goto out;
	if (seen_leaf)
		memcpy(seen_leaf, leaf, sizeof leaf);
	if (!ct_equal32(leaf, want_leaf)) {
		rc = FH_ERR_TLS_PIN;
		goto out;
	}
	memcpy(curl_pin, pin, sizeof pin);
	rc = FH_OK;
out:
	if (ssl) {
		if (rc != FH_ERR_TIMEOUT && !io.failed)
			(void)wolfSSL_shutdown(ssl); /* close_notify, best effort */
		wolfSSL_free(ssl);
	}
	if (ctx)
		wolfSSL_CTX_free(ctx);
	wolfSSL_ERR_clear_error();
	/* Debian's wolfSSL 5.5.4 has FP_ECC with HAVE_THREAD_LS: every thread
	 * that does ECC grows its own fixed-point cache (~3 MB after one
	 * handshake) that only wc_ecc_fp_free() in that same thread releases,
	 * and that leaks when the thread exits. A probe is rare; drop it. */
	wc_ecc_fp_free();
	close(fd);
	return rc;
}
