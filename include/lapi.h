/* lapi.h — the per-guest local HTTPS API for in-guest controllers (SPEC §8,
 * issue 7). docs/LOCALAPI.md is the operator and wire reference.
 *
 * A wolfSSL TLS 1.2/1.3 server with a self-signed ECDSA P-256 leaf that is
 * made with wolfCrypt at first start and kept 0600 under
 * STATE_DIR/localapi/ (key.pem, cert.pem), reused across restarts. One
 * event thread (epoll, non-blocking sockets and TLS) serves every
 * connection; requests are parsed by the Ragel machine in httpreq.h.
 *
 * Who may connect: a source address that is loopback, allow-listed
 * (monitor_addresses) or a known guest address is admitted; any other
 * connection is closed before the TLS handshake (counted, reported through
 * the event callback). A guest's addresses are the ip=/ip6= addresses of
 * its net* config, for DHCP guests the addresses Proxmox reports on its
 * running interfaces, plus localapi.guest_addresses.
 *
 * Auth: "Authorization: Bearer TOKEN". One token per guest; the store keeps
 * only SHA-256(token) (named DB "lapi_token", key BE32 vmid); comparison is
 * constant time. No or unknown token: 401. A valid token from an address
 * that is not one of its guest's: 403. Every answer is scoped to the
 * token's guest. /healthz and /readyz need no token and are answered only
 * to loopback and allow-listed addresses (403 otherwise).
 *
 * Every answer is the envelope {"ok":..,"data":..,"error":".."} ("error"
 * always a string, "" on success), under 1 MiB, and comes within a
 * deadline well inside the controller's 15 s timeout: /storage and
 * /host/metrics are answered from a snapshot that a background refresher
 * keeps (Proxmox every refresh_ms, sensors every slow_refresh_ms; the
 * payload says when each part was taken); the backup endpoints call the
 * registered backend on a worker thread and answer 503 if it has not
 * answered within backend_ms.
 *
 * Threads: lapi_start starts the event thread, the backend worker and
 * (when o->pve is given) the refresher. Functions below may be called from
 * any thread unless they say otherwise. The library never logs: the caller
 * gets counters (lapi_get_stats) and rate-limited events (on_event).
 */
#ifndef FH_LAPI_H
#define FH_LAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#include "cfg.h"
#include "priv.h"
#include "pve.h"
#include "store.h"
#include "tlspin.h"

#define LAPI_DEFAULT_PORT 8443
#define LAPI_DEFAULT_BRIDGE "vmbr0"
#define LAPI_DIR "localapi"                 /* under the state directory */
#define LAPI_TOKEN_MAX 80                    /* token text incl. NUL */
#define LAPI_RESPONSE_MAX ((size_t)1 << 20)  /* every response is shorter */
#define LAPI_MAX_GUESTS 4096
#define LAPI_ADDRS_PER_GUEST 32
#define LAPI_MONITOR_MAX 64

/* Defaults of struct lapi_opts (0 = default). */
#define LAPI_MAX_CONNS 256
#define LAPI_MAX_CONNS_PER_ADDR 16
#define LAPI_HANDSHAKE_MS 10000
#define LAPI_READ_MS 10000          /* first byte to end of a request */
#define LAPI_IDLE_MS 60000          /* keep-alive wait for the next request */
#define LAPI_WRITE_MS 10000
#define LAPI_BACKEND_MS 10000       /* backend answer deadline */
#define LAPI_REFRESH_MS 30000
#define LAPI_SLOW_REFRESH_MS 300000
#define LAPI_HUB_FRESH_SECONDS 7200
#define LAPI_MAX_REQUESTS_PER_CONN 1000
#define LAPI_BACKEND_QUEUE 64

/* ---------------------------------------------------------------- leaf */

struct lapi_cert_info {
	char fingerprint[96];           /* SHA-256 of the leaf DER, "AA:BB:.." */
	char spki_pin[TLSPIN_CURL_MAX]; /* curl's "sha256//BASE64" */
	bool created;                   /* made now (key, certificate or both) */
};
/* Loads STATE_DIR/localapi/{key,cert}.pem, creating the directory (0700)
 * and the files (0600, atomically, under a lock so concurrent callers
 * agree) when absent: both absent makes a new P-256 key and certificate;
 * a key without a certificate gets a new certificate for that key (the
 * SPKI pin stays). FH_ERR_DECODE when a file exists but is unusable or
 * the pair does not match (nothing is overwritten: remove both files to
 * start over), FH_ERR_IO, FH_ERR_INTERNAL (wolfCrypt), FH_ERR_INVAL. */
int lapi_cert_ensure(const char *state_dir, struct lapi_cert_info *out);

/* -------------------------------------------------------------- tokens */

/* Token text: "fhl1.<vmid>.<43 base64url chars>" (256 random bits). */

/* Creates or replaces (rotates) vmid's token; only its SHA-256 and the
 * issue time are stored. out gets the token, NUL-terminated (never logged
 * by this library). FH_ERR_INVAL (vmid outside 100..999999999), store
 * errors, FH_ERR_INTERNAL (RNG). */
int lapi_token_issue(struct store *st, int vmid, int64_t now, char out[LAPI_TOKEN_MAX]);
/* Removes vmid's token. FH_ERR_NOT_FOUND when it had none; store errors. */
int lapi_token_revoke(struct store *st, int vmid);
/* Checks a token (the text after "Bearer "). 0 and *vmid on a match;
 * FH_ERR_NOT_FOUND when malformed, unknown, revoked or not matching (one
 * answer for all, in time independent of the stored hash); FH_ERR_STORE. */
int lapi_token_check(struct store *st, const char *tok, size_t len, int *vmid);
/* Revokes the token of every vmid not in present[0..n) (any order). An
 * empty list is refused (FH_ERR_INVAL): a Proxmox answer with no guest is
 * never taken to mean that every guest is gone. *revoked (may be NULL)
 * gets the number removed. Store errors. */
int lapi_tokens_prune(struct store *st, const int *present, size_t n, unsigned *revoked);

/* ------------------------------------------------------------- backend */

/* The backup endpoints, implemented elsewhere (the reconcile engine) and
 * plugged in with lapi_set_backend. Each function runs on the server's
 * worker thread (one call at a time), gets the token's vmid and fills
 * *out; it returns 0 or an fh_err code (FH_ERR_TIMEOUT / FH_ERR_CANCELLED
 * answer 503, others 500, both with the error's name). A call that has not
 * returned within backend_ms is answered 503 and its late result dropped.
 * Strings are copied NUL-terminated; out is zeroed before the call. */
struct lapi_backup_due {
	bool due;
	char reason[32];        /* never_backed_up | interval_elapsed | not_due | disabled */
};
struct lapi_backup_job {
	char job_id[64];
	char phase[16];         /* idle | running | done | failed */
	char error[256];        /* "" unless failed */
};
struct lapi_backend {
	int (*backup_due)(void *ctx, int vmid, struct lapi_backup_due *out);
	/* Enqueues a backup (or returns the one already queued/running). */
	int (*backup_enqueue)(void *ctx, int vmid, struct lapi_backup_job *out);
	int (*backup_status)(void *ctx, int vmid, struct lapi_backup_job *out);
};

/* --------------------------------------------------------- disk backend */

/* The disk endpoints (GET /disks, POST /disks/assign|eject|format),
 * implemented elsewhere (disk.h) and plugged in with lapi_set_disks. The
 * call runs on the server's worker thread like the backup backend, under
 * the same deadline, and gets the token's vmid and the request body
 * (len <= HTTPREQ_BODY_MAX, not NUL-terminated; empty for GET). It sets
 * *status (200..599), appends the JSON value of the envelope's "data" to
 * data (nothing: null) and, for an answer that is not 2xx, a one-line
 * reason to err (the envelope's "error"). A non-zero return is answered
 * 500 (503 for FH_ERR_TIMEOUT / FH_ERR_CANCELLED) with the error's name,
 * whatever data holds. Without a disk backend the endpoints answer 501. */
enum lapi_disk_op { LAPI_DISK_LIST = 0, LAPI_DISK_ASSIGN, LAPI_DISK_EJECT, LAPI_DISK_FORMAT };
typedef int (*lapi_disks_fn)(void *ctx, enum lapi_disk_op op, int vmid, const char *body, size_t len, int *status,
			     struct buf *data, char *err, size_t errlen);

/* -------------------------------------------------------------- server */

enum lapi_event_kind {
	LAPI_EV_ADDR_REJECTED = 0,  /* closed before TLS: unknown source address */
	LAPI_EV_CONN_CAP,           /* closed before TLS: global or per-address cap */
	LAPI_EV_AUTH_FAILED,        /* 401 */
	LAPI_EV_FORBIDDEN,          /* 403: token not valid from this address */
	LAPI_EV_REFRESH_FAILED,     /* a snapshot refresh failed (code, reason) */
	LAPI_EV_TOKENS_REVOKED,     /* tokens of vanished guests revoked (count) */
	LAPI_EV__COUNT
};
struct lapi_event {
	enum lapi_event_kind kind;
	const char *name;           /* stable: "addr_rejected", "conn_cap", ... */
	char addr[48];              /* peer address, "" if none */
	int vmid;                   /* token's guest, 0 if none */
	const char *reason;         /* static text, never a token */
	int code;                   /* fh_err for refresh failures, else 0 */
	unsigned long count;        /* revoked tokens */
	unsigned long suppressed;   /* events of this kind dropped since the last one */
};
/* Called on a server thread, one call at a time; at most 5 per second per
 * kind (a burst of 20), the rest counted in `suppressed`. Must not block. */
typedef void (*lapi_event_fn)(void *ctx, const struct lapi_event *ev);

struct lapi_opts {
	/* "ADDR:PORT" or "[V6ADDR]:PORT" (numeric, port 0 = any free port);
	 * NULL: the first IPv4 address of `bridge`, port LAPI_DEFAULT_PORT;
	 * "": the API is disabled (lapi_start succeeds with *out NULL). */
	const char *listen;
	const char *bridge;                 /* NULL: LAPI_DEFAULT_BRIDGE */
	const char *state_dir;              /* required: the leaf lives here */
	struct store *store;                /* required: token hashes */
	const struct cfg_addr *guest_addresses; /* localapi.guest_addresses */
	size_t naddrs;
	const char *const *monitor_addresses; /* may call /healthz, /readyz */
	size_t nmonitor;
	bool loopback_untrusted;            /* loopback only when listed (tests) */
	/* The refresher's own Proxmox client (made from these options) and
	 * privileged backend (sensors; its timeout is capped at 15 s). NULL
	 * pve: no refresher thread (call lapi_refresh yourself). */
	const struct pve_opts *pve;
	const struct priv_opts *priv;
	unsigned max_conns, max_conns_per_addr;
	long handshake_ms, read_ms, idle_ms, write_ms, backend_ms;
	long refresh_ms, slow_refresh_ms;
	int64_t hub_fresh_seconds;          /* /readyz: hub reached within this */
	lapi_event_fn on_event;
	void *event_ctx;
};

struct lapi;

/* Loads or creates the leaf, binds the listener and starts the threads.
 * why (may be NULL) gets one line on failure. FH_ERR_CONFIG (bad listen
 * address, no address on the bridge), FH_ERR_IO (bind/listen), the
 * lapi_cert_ensure errors, FH_ERR_INVAL, FH_ERR_NOMEM, FH_ERR_TLS. */
int lapi_start(const struct lapi_opts *o, struct lapi **out, char *why, size_t whylen);
/* Stops the threads, closes every connection, frees. NULL is allowed.
 * Waits for a running backend call and a running refresh (cancelled). */
void lapi_stop(struct lapi *l);
/* The bound port (useful with port 0). */
int lapi_port(const struct lapi *l);
/* Registers (or, with be NULL, removes) the backup backend. Returns after
 * any call into the previous backend has finished. be is copied. */
void lapi_set_backend(struct lapi *l, const struct lapi_backend *be, void *ctx);
/* Registers (or, with fn NULL, removes) the disk backend; returns after
 * any call into the previous one has finished. */
void lapi_set_disks(struct lapi *l, lapi_disks_fn fn, void *ctx);
/* The daemon reached the hub at `when` (Unix seconds): feeds /readyz. */
void lapi_note_hub(struct lapi *l, int64_t when);
/* One refresh by the caller, with its own clients (pve required; priv may
 * be NULL). slow also reads sensors. On success a new snapshot is served
 * and tokens of guests that vanished are revoked. Proxmox errors as
 * returned by pve_* (e->step names the call), FH_ERR_TOOBIG (over
 * LAPI_MAX_GUESTS), FH_ERR_NOMEM. Serialize calls (not concurrent with
 * itself or with the internal refresher). */
struct lapi_refresh_err {
	char step[32];                  /* "node_status", "node_storage", "lxc_list", ... */
	struct pve_err pve;
	unsigned configs_failed;        /* guests whose config could not be read */
};
int lapi_refresh(struct lapi *l, struct pve_client *pve, struct priv *priv, bool slow,
		 struct lapi_refresh_err *e);
/* Asks the internal refresher to run now (no-op without one). */
void lapi_refresh_kick(struct lapi *l);

struct lapi_stats {
	unsigned long accepted, rejected_addr, rejected_cap;
	unsigned long handshakes, handshake_failures;
	unsigned long timeouts;             /* connections closed by a deadline */
	unsigned long requests;             /* complete or failed requests answered */
	unsigned long status_2xx, status_4xx, status_5xx;
	unsigned long auth_failed, forbidden, bad_requests;
	unsigned long backend_timeouts;
	unsigned long refreshes, refresh_failures, tokens_revoked;
	unsigned long active_conns;
	int64_t snapshot_taken_at;          /* 0: none yet */
};
void lapi_get_stats(struct lapi *l, struct lapi_stats *out);

/* Parses "ADDR:PORT" / "[V6]:PORT" (numeric only) into a sockaddr.
 * FH_ERR_CONFIG when malformed. */
struct sockaddr_storage;
int lapi_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *sslen);

#endif
