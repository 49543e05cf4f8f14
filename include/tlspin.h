/* tlspin.h — certificate pinning for outbound connections, done by wolfSSL.
 *
 * libcurl (OpenSSL flavour on Debian 12) does HTTP; wolfSSL does the pin.
 * tlspin_probe() performs one TLS handshake to HOST:PORT with wolfSSL,
 * sends no application byte, takes the leaf certificate, compares its
 * SHA-256 (of the DER) with the configured pin and, on a match, derives the
 * SHA-256 of its SubjectPublicKeyInfo as libcurl's pin string
 * "sha256//BASE64". libcurl then enforces that SPKI pin on every connection
 * it makes, right after the handshake and before any request byte.
 */
#ifndef FH_TLSPIN_H
#define FH_TLSPIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSPIN_CURL_MAX 80       /* "sha256//" + 44 base64 + NUL fits */

/* Parses "AA:BB:.." or plain hex (64 digits, either case) into 32 bytes.
 * FH_ERR_CONFIG on anything else. */
int tlspin_parse_fingerprint(const char *s, uint8_t out[32]);
/* Formats 32 bytes as "AA:BB:..:FF" (96 bytes incl. NUL). */
void tlspin_format_fingerprint(const uint8_t fp[32], char out[96]);

/* Leaf SHA-256 and SPKI pin of a DER certificate. */
int tlspin_cert_digests(const uint8_t *der, size_t len, uint8_t leaf_sha256[32],
			char curl_pin[TLSPIN_CURL_MAX]);

/* One wolfSSL handshake to host:port (numeric or name), timeout_ms overall.
 * want_leaf: the pinned leaf digest. On match 0 and curl_pin filled;
 * FH_ERR_TLS_PIN on mismatch (seen_leaf, if not NULL, gets the digest the
 * server presented), FH_ERR_TRANSPORT / FH_ERR_TLS / FH_ERR_TIMEOUT
 * otherwise. No application data is ever written. */
int tlspin_probe(const char *host, unsigned port, long timeout_ms, const uint8_t want_leaf[32],
		 char curl_pin[TLSPIN_CURL_MAX], uint8_t seen_leaf[32]);

/* True when host is a loopback address literal (127.0.0.0/8, ::1) or
 * "localhost". */
int tlspin_host_is_loopback(const char *host);

/* wolfSSL custom I/O over a non-blocking socket, for the probe here and the
 * local API's server (lapi.c): one recv()/send() on fd (EINTR retried,
 * MSG_NOSIGNAL), returning the byte count or a WOLFSSL_CBIO_ERR_* code
 * (WANT_READ / WANT_WRITE on EAGAIN). *failed is set true on EOF, a reset
 * or another socket error, never cleared. */
int tlspin_io_recv(int fd, char *buf, int sz, bool *failed);
int tlspin_io_send(int fd, const char *buf, int sz, bool *failed);

#endif
