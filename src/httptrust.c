/* httptrust.c — TLS trust setup shared by every libcurl client; see
 * httptrust.h. Factored out of pve.c unchanged in behaviour. */
#include "httptrust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static int why_set(char *why, size_t whylen, int code, const char *text)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", text);
	return code;
}

int httptrust_init(struct httptrust *t, const char *host, unsigned port, const struct httptrust_opts *o,
		   char *why, size_t whylen)
{
	bool has_ca = o->ca_file && *o->ca_file, has_fp = o->tls_fingerprint && *o->tls_fingerprint;
	int modes = has_ca + has_fp + o->insecure_skip_verify;

	memset(t, 0, sizeof(*t));
	if (!host || !*host || strlen(host) >= sizeof(t->host) || port == 0 || port > 65535)
		return why_set(why, whylen, FH_ERR_CONFIG, "bad host or port");
	if (modes > 1)
		return why_set(why, whylen, FH_ERR_CONFIG,
			       "give exactly one of ca_file, tls_fingerprint, insecure_skip_verify");
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = port;
	if (has_fp) {
		if (tlspin_parse_fingerprint(o->tls_fingerprint, t->want_leaf))
			return why_set(why, whylen, FH_ERR_CONFIG, "tls_fingerprint is not a SHA-256 fingerprint");
		t->mode = HTTPTRUST_PIN;
	} else if (has_ca) {
		t->ca_file = strdup(o->ca_file);
		if (!t->ca_file)
			return FH_ERR_NOMEM;
		t->mode = HTTPTRUST_CA_FILE;
	} else if (o->insecure_skip_verify) {
		if (!o->allow_insecure)
			return why_set(why, whylen, FH_ERR_CONFIG,
				       "insecure_skip_verify is not available here; verification is always on");
		if (!tlspin_host_is_loopback(t->host))
			return why_set(why, whylen, FH_ERR_CONFIG,
				       "insecure_skip_verify is refused for a non-loopback endpoint");
		t->mode = HTTPTRUST_INSECURE;
	} else {
		t->mode = HTTPTRUST_SYSTEM;
	}
	return 0;
}

void httptrust_apply(const struct httptrust *t, CURL *h)
{
	switch (t->mode) {
	case HTTPTRUST_SYSTEM:
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		break;
	case HTTPTRUST_CA_FILE:
		curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		break;
	case HTTPTRUST_PIN:
		/* The pin replaces chain and name checks; libcurl enforces the SPKI
		 * pin derived by the wolfSSL probe on every connection. */
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		break;
	case HTTPTRUST_INSECURE:
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		break;
	}
}

int httptrust_ensure(struct httptrust *t, CURL *h, long timeout_ms, char *why, size_t whylen)
{
	uint8_t seen[32];
	char fp[96];
	int r;

	if (t->mode != HTTPTRUST_PIN || t->curl_pin[0])
		return 0;
	t->probes++;
	r = tlspin_probe(t->host, t->port, timeout_ms, t->want_leaf, t->curl_pin, seen);
	if (r == FH_ERR_TLS_PIN) {
		tlspin_format_fingerprint(seen, fp);
		if (why && whylen)
			snprintf(why, whylen, "server certificate fingerprint %s does not match the pinned one", fp);
		t->curl_pin[0] = '\0';
		return r;
	}
	if (r) {
		if (why && whylen)
			snprintf(why, whylen, "TLS pin probe to %s:%u failed (%s)", t->host, t->port, fh_strerror(r));
		t->curl_pin[0] = '\0';
		return r;
	}
	curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, t->curl_pin);
	return 0;
}

const char *httptrust_mode_name(enum httptrust_mode m)
{
	switch (m) {
	case HTTPTRUST_SYSTEM:
		return "system-roots";
	case HTTPTRUST_CA_FILE:
		return "ca-file";
	case HTTPTRUST_PIN:
		return "fingerprint-pin";
	case HTTPTRUST_INSECURE:
		return "INSECURE";
	}
	return "?";
}

void httptrust_free(struct httptrust *t)
{
	if (!t)
		return;
	free(t->ca_file);
	t->ca_file = NULL;
	t->curl_pin[0] = '\0';
}
