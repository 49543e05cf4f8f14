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
 */
#ifndef FH_HTTPTRUST_H
#define FH_HTTPTRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

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

#endif
