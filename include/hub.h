/* hub.h — the hub client (SPEC §6): POST {hub.url}/api/v1/host-report with
 * `Authorization: Bearer KEY`, and the response envelope.
 *
 * TLS verification is always on: the system roots, hub.ca_file, or a
 * hub.tls_fingerprint leaf pin — the same trust code as the Proxmox client
 * (httptrust.h); there is no insecure mode for the hub. A pin mismatch
 * fails before any request byte, so the key is never sent to a wrong peer.
 *
 * One libcurl handle per client (one keep-alive connection reused across
 * reports). A client is used by one thread at a time; hub_cancel() may be
 * called from any thread or a signal handler.
 *
 * The API key lives only in the client's header list (wiped on free). It is
 * never part of an error: curl's texts do not carry headers, and any text
 * taken from the hub's answer (status reason, "error"/"message" member) is
 * scrubbed of the key before it reaches struct hub_err.
 */
#ifndef FH_HUB_H
#define FH_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The clamp the agent applies to the hub's poll_interval_seconds. */
#define HUB_INTERVAL_MIN 60
#define HUB_INTERVAL_MAX 3600
#define HUB_DEF_TIMEOUT_MS 30000L
#define HUB_DEF_CONNECT_MS 10000L
#define HUB_DEF_MAX_RESPONSE (64u * 1024)   /* envelope body cap */
#define HUB_REPORT_PATH "/api/v1/host-report"

struct hub_opts {
	const char *url;             /* https://HOST[:PORT][/PREFIX]; no userinfo, query, fragment */
	const char *api_key;         /* the bearer key; required, printable, no spaces */
	const char *ca_file;         /* verify against this CA bundle */
	const char *tls_fingerprint; /* or pin the leaf SHA-256 ("AA:BB:.." or hex) */
	long request_timeout_ms;     /* whole request; default HUB_DEF_TIMEOUT_MS */
	long connect_timeout_ms;     /* default min(HUB_DEF_CONNECT_MS, request timeout) */
	size_t max_response;         /* response body cap; default HUB_DEF_MAX_RESPONSE */
};

/* The response envelope. Each *_set flag says whether its member was
 * present and not null; absent members leave the value at 0/false. */
struct hub_envelope {
	bool poll_interval_set;
	int64_t poll_interval_seconds;   /* as sent, before clamping */
	bool blocked_set;
	bool blocked;                    /* true: perform no mutation, keep reporting */
	bool desired_generation_set;
	int64_t desired_generation;
	bool signed_ops_set;
	bool has_signed_ops;
};

/* Detail of the last failure. */
struct hub_err {
	int code;                    /* the fh_err returned */
	long http_status;            /* 0 if no HTTP answer */
	char reason[256];            /* never contains the API key */
};

struct hub_client;

/* Validates opts and makes a client; no network yet. FH_ERR_CONFIG with
 * e->reason (bad URL, missing/ill-formed key, several trust modes, bad
 * fingerprint), FH_ERR_NOMEM. */
int hub_client_new(const struct hub_opts *o, struct hub_client **out, struct hub_err *e);
void hub_client_free(struct hub_client *c);
/* Async-signal-safe: the current and every later request of this client
 * returns FH_ERR_CANCELLED (an in-flight transfer is aborted from libcurl's
 * progress callback, which runs at least once a second). */
void hub_cancel(struct hub_client *c);
/* "system-roots", "ca-file" or "fingerprint-pin". */
const char *hub_trust_name(const struct hub_client *c);
/* The full report URL (no secret in it). */
const char *hub_report_url(const struct hub_client *c);

struct hub_stats {
	unsigned long requests;      /* HTTP requests sent */
	unsigned long connects;      /* new TCP+TLS connections libcurl opened */
	unsigned long pin_probes;    /* wolfSSL pin handshakes */
};
void hub_stats(const struct hub_client *c, struct hub_stats *out);

/* POSTs the report JSON (len bytes) and decodes the envelope into *env
 * (written only on success). Errors: FH_ERR_TRANSPORT, FH_ERR_TIMEOUT,
 * FH_ERR_TLS, FH_ERR_TLS_PIN (no request was sent), FH_ERR_HTTP_401,
 * FH_ERR_HTTP_403, FH_ERR_HTTP_4XX (e.g. 422: the hub rejected the report),
 * FH_ERR_HTTP_5XX, FH_ERR_DECODE (not a JSON object, a member of the wrong
 * type, or a 1xx/3xx answer), FH_ERR_TOOBIG (answer over max_response),
 * FH_ERR_CANCELLED, FH_ERR_NOMEM. A report is never re-sent by the client. */
int hub_post_report(struct hub_client *c, const char *json, size_t len, struct hub_envelope *env,
		    struct hub_err *e);

/* Any other hub endpoint (GET /api/v1/desired-state, GET
 * /api/v1/signed-ops, POST /api/v1/op-results) with the same trust, key,
 * timeouts and cancellation as the report. path starts with '/' and is
 * appended to hub.url (its prefix kept); json/len is the POST body (NULL
 * for GET). On 2xx returns 0 with the answer in out (appended; at most cap
 * bytes, more is FH_ERR_TOOBIG). 404 is FH_ERR_NOT_FOUND; other errors as
 * hub_post_report. *status gets the HTTP status (0 without an answer). */
int hub_request(struct hub_client *c, const char *method, const char *path, const char *json, size_t len,
		size_t cap, struct buf *out, long *status, struct hub_err *e);

/* Decodes an envelope body. Unknown members are ignored (the hub may add
 * some); a known member of the wrong type is FH_ERR_DECODE, as is anything
 * but one JSON object. FH_ERR_TOOBIG over max_bytes or 16 levels deep. */
int hub_parse_envelope(const char *p, size_t n, size_t max_bytes, struct hub_envelope *out, char *why,
		       size_t whylen);

/* The interval the agent adopts: seconds clamped to [min, max]. */
int64_t hub_clamp_interval(int64_t seconds, int64_t min, int64_t max);

#endif
