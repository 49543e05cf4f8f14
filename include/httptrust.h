/* httptrust.h — TLS trust for every outbound libcurl connection (the
 * Proxmox API client, the hub client; later PBS). One piece of code, so the
 * same configuration means the same checks everywhere (SPEC §3 "TLS trust").
 *
 * Exactly one mode per endpoint:
 *   system roots  full verification against the system CA store (default);
 *   CA file       full verification against ca_file only;
 *   pin           the leaf certificate's SHA-256 must equal tls_fingerprint.
 *                 A wolfSSL probe (tlspin.h) checks the leaf once, derives its
 *                 SPKI pin and hands it to libcurl, which enforces it on every
 *                 connection right after the handshake, before any request
 *                 byte; chain and name checks are off (the pin replaces them);
 *   insecure      no verification; only where the caller allows it at all,
 *                 and only for a loopback host.
 *
 * Usage: httptrust_init() once per client (validates, no network), then
 * httptrust_apply() on its CURL handle, then httptrust_ensure() before every
 * request (the pin probe runs on the first one only). httptrust_free().
 * A struct httptrust is used by one thread at a time.
 *
 * struct httptrust_conn is the rest of what both clients set up the same
 * way: the one CURL handle with its headers, timeouts, HTTPS-only, no
 * redirects, TCP keep-alive, the capped answer body, the status line's
 * reason phrase, the cancel flag, the counters and the mapping of libcurl
 * failures to typed errors. Each client keeps its own URLs, methods,
 * status mapping and error texts.
 */
#ifndef FH_HTTPTRUST_H
#define FH_HTTPTRUST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "buf.h"
#include "tlspin.h"

enum httptrust_mode { HTTPTRUST_SYSTEM, HTTPTRUST_CA_FILE, HTTPTRUST_PIN, HTTPTRUST_INSECURE };

struct httptrust_opts {
	const char *ca_file;          /* NULL or "" = unset */
	const char *tls_fingerprint;  /* "AA:BB:.." or 64 hex digits; NULL or "" = unset */
	bool insecure_skip_verify;
	bool allow_insecure;          /* false: insecure_skip_verify is refused outright */
};

struct httptrust {
	enum httptrust_mode mode;
	char host[256];               /* without brackets for IPv6 */
	unsigned port;
	char *ca_file;                /* owned */
	uint8_t want_leaf[32];
	char curl_pin[TLSPIN_CURL_MAX]; /* "" until the pin probe succeeded */
	unsigned long probes;         /* wolfSSL pin handshakes made */
};

/* Validates the options for host:port and fills *t (no network). Errors:
 * FH_ERR_CONFIG with a one-line why (several modes given, fingerprint
 * unparsable, insecure refused), FH_ERR_NOMEM. Never echoes a secret. */
int httptrust_init(struct httptrust *t, const char *host, unsigned port, const struct httptrust_opts *o,
		   char *why, size_t whylen);
/* Sets the handle's verification options for the mode. */
void httptrust_apply(const struct httptrust *t, CURL *h);
/* Before a request: in pin mode, the first call probes host:port with
 * wolfSSL (timeout_ms overall) and sets CURLOPT_PINNEDPUBLICKEY; later calls
 * do nothing. FH_ERR_TLS_PIN (why names the fingerprint the server showed),
 * FH_ERR_TRANSPORT, FH_ERR_TLS, FH_ERR_TIMEOUT. Other modes: 0. */
int httptrust_ensure(struct httptrust *t, CURL *h, long timeout_ms, char *why, size_t whylen);
/* "system-roots", "ca-file", "fingerprint-pin" or "INSECURE". */
const char *httptrust_mode_name(enum httptrust_mode m);
void httptrust_free(struct httptrust *t);

#define HTTPTRUST_REASON_MAX 256

struct httptrust_conn_opts {
	long timeout_ms;              /* whole request (CURLOPT_TIMEOUT_MS) */
	long connect_ms;              /* connect + handshake; also bounds the pin probe */
	size_t max_body;              /* cap of every answer (the caller may change body.cap per request) */
	size_t max_reason;            /* bytes kept of the reason phrase, NUL included (2..HTTPTRUST_REASON_MAX) */
	long max_age_conn;            /* CURLOPT_MAXAGE_CONN in seconds; 0: libcurl's default */
};

struct httptrust_conn {
	CURL *h;
	struct curl_slist *hdrs;      /* may hold a credential: wiped on free */
	struct httptrust trust;       /* the caller fills it with httptrust_init() */
	struct buf body;              /* the last answer */
	bool toobig;                  /* the last answer passed body.cap */
	char status_reason[HTTPTRUST_REASON_MAX]; /* of the last status line, control bytes as spaces */
	size_t max_reason;
	long timeout_ms, connect_ms;
	atomic_int cancelled;         /* set from any thread; aborts the transfer under way */
	unsigned long n_requests, n_connects;
	char errbuf[CURL_ERROR_SIZE];
};

/* Appends one request header line (before httptrust_conn_open). 0 or
 * FH_ERR_NOMEM. The list is wiped and freed by httptrust_conn_free(). */
int httptrust_conn_header(struct httptrust_conn *k, const char *line);
/* Makes the handle: the headers, the body/header/progress callbacks (the
 * progress one aborts when cancelled is set), no signals, the error buffer,
 * the timeouts, HTTPS only, no redirects, TCP keep-alive, the user agent,
 * then httptrust_apply(). k->trust must be initialised. 0 or FH_ERR_NOMEM. */
int httptrust_conn_open(struct httptrust_conn *k, const struct httptrust_conn_opts *o);
/* Around each transfer the caller makes with curl_easy_perform(k->h) (URL
 * and method set by the caller): httptrust_conn_begin() before clears the
 * last answer and counts the request; httptrust_conn_connects() after
 * counts the connections the transfer opened and returns how many (0 when
 * it reused one). */
void httptrust_conn_begin(struct httptrust_conn *k);
long httptrust_conn_connects(struct httptrust_conn *k);
/* The typed error of a failed transfer: FH_ERR_TLS_PIN, FH_ERR_TLS,
 * FH_ERR_TIMEOUT, FH_ERR_CANCELLED, FH_ERR_TOOBIG, FH_ERR_NOMEM or
 * FH_ERR_TRANSPORT; why gets "<what> larger than N bytes", "cancelled" or
 * libcurl's text with its error buffer. */
int httptrust_conn_error(const struct httptrust_conn *k, CURLcode rc, const char *what, char *why, size_t whylen);
/* Frees the handle, wipes and frees the headers, frees the body and the
 * trust. Safe on a zeroed struct. */
void httptrust_conn_free(struct httptrust_conn *k);

#endif
