/* httptrust.c — TLS trust and the libcurl handle setup shared by every
 * libcurl client (pve.c, hub.c); see httptrust.h. */
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

/* ---- the connection ---- */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct httptrust_conn *k = ud;

	if (buf_append(&k->body, p, sz * nm)) {
		k->toobig = true;
		return 0;       /* over the cap: libcurl aborts with CURLE_WRITE_ERROR */
	}
	return sz * nm;
}

/* Keeps the reason phrase of the last status line (after 1xx). */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct httptrust_conn *k = ud;
	size_t n = sz * nm, i, o = 0;

	if (n > 9 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', n);
		if (sp) {
			sp++;
			while ((size_t)(sp - p) < n && *sp != ' ' && *sp != '\r' && *sp != '\n')
				sp++;
			while ((size_t)(sp - p) < n && *sp == ' ')
				sp++;
			for (i = (size_t)(sp - p); i < n && o + 1 < k->max_reason; i++) {
				unsigned char ch = (unsigned char)p[i];
				if (ch == '\r' || ch == '\n')
					break;
				k->status_reason[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
			}
		}
		k->status_reason[o] = '\0';
	}
	return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t cc, curl_off_t d)
{
	struct httptrust_conn *k = ud;

	(void)a, (void)b, (void)cc, (void)d;
	return atomic_load(&k->cancelled) ? 1 : 0;
}

int httptrust_conn_header(struct httptrust_conn *k, const char *line)
{
	struct curl_slist *n = curl_slist_append(k->hdrs, line);

	if (!n)
		return FH_ERR_NOMEM;
	k->hdrs = n;
	return 0;
}

int httptrust_conn_open(struct httptrust_conn *k, const struct httptrust_conn_opts *o)
{
	atomic_init(&k->cancelled, 0);
	k->timeout_ms = o->timeout_ms;
	k->connect_ms = o->connect_ms;
	k->max_reason = o->max_reason;
	if (k->max_reason < 2 || k->max_reason > sizeof(k->status_reason))
		k->max_reason = sizeof(k->status_reason);
	buf_init(&k->body, o->max_body);
	k->h = curl_easy_init();
	if (!k->h)
		return FH_ERR_NOMEM;
	curl_easy_setopt(k->h, CURLOPT_HTTPHEADER, k->hdrs);
	curl_easy_setopt(k->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k->h, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(k->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(k->h, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(k->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(k->h, CURLOPT_XFERINFODATA, k);
	curl_easy_setopt(k->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(k->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, k->errbuf);
	curl_easy_setopt(k->h, CURLOPT_TIMEOUT_MS, k->timeout_ms);
	curl_easy_setopt(k->h, CURLOPT_CONNECTTIMEOUT_MS, k->connect_ms);
	curl_easy_setopt(k->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(k->h, CURLOPT_FOLLOWLOCATION, 0L);
	if (o->max_age_conn > 0)
		curl_easy_setopt(k->h, CURLOPT_MAXAGE_CONN, o->max_age_conn);
	curl_easy_setopt(k->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(k->h, CURLOPT_USERAGENT, "felhom-agent/" FH_VERSION);
	httptrust_apply(&k->trust, k->h);
	return 0;
}

void httptrust_conn_begin(struct httptrust_conn *k)
{
	buf_reset(&k->body);
	k->toobig = false;
	k->status_reason[0] = '\0';
	k->errbuf[0] = '\0';
	k->n_requests++;
}

long httptrust_conn_connects(struct httptrust_conn *k)
{
	long n = 0;

	if (curl_easy_getinfo(k->h, CURLINFO_NUM_CONNECTS, &n) != CURLE_OK || n <= 0)
		return 0;
	k->n_connects += (unsigned long)n;
	return n;
}

static int map_curl(CURLcode rc, bool toobig)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return FH_ERR_TLS_PIN;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return FH_ERR_TLS;
	case CURLE_OPERATION_TIMEDOUT:
		return FH_ERR_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return FH_ERR_CANCELLED;
	case CURLE_WRITE_ERROR:
		return toobig ? FH_ERR_TOOBIG : FH_ERR_TRANSPORT;
	case CURLE_OUT_OF_MEMORY:
		return FH_ERR_NOMEM;
	default:
		return FH_ERR_TRANSPORT;
	}
}

int httptrust_conn_error(const struct httptrust_conn *k, CURLcode rc, const char *what, char *why, size_t whylen)
{
	int r = map_curl(rc, k->toobig);

	if (why && whylen) {
		if (r == FH_ERR_TOOBIG)
			snprintf(why, whylen, "%s larger than %zu bytes", what, k->body.cap);
		else if (r == FH_ERR_CANCELLED)
			snprintf(why, whylen, "cancelled");
		else
			snprintf(why, whylen, "%s%s%s", curl_easy_strerror(rc), k->errbuf[0] ? ": " : "", k->errbuf);
	}
	return r;
}

void httptrust_conn_free(struct httptrust_conn *k)
{
	struct curl_slist *s;

	if (!k)
		return;
	if (k->h)
		curl_easy_cleanup(k->h);
	k->h = NULL;
	for (s = k->hdrs; s; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(k->hdrs);
	k->hdrs = NULL;
	buf_free(&k->body);
	httptrust_free(&k->trust);
}
