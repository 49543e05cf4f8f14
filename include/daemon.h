/* daemon.h — the agent's daemon: the hub control loop (SPEC §6) under
 * systemd, and the status file an operator reads with `--status`.
 *
 * The loop: collect a HostReport (report.h) and POST it (hub.h) at once,
 * then every interval. The interval is hub.poll_seconds until the hub's
 * first envelope, then the envelope's poll_interval_seconds clamped to
 * [hub.min_interval_seconds (60), HUB_INTERVAL_MAX (3600)]. The envelope's
 * blocked / desired_generation / has_signed_ops are kept for the reconcile
 * engine and logged when they change.
 *
 * Failures (collect or POST, anything but 401/403) are retried with
 * exponential backoff and full jitter: failure n waits a uniform random
 * time in [min(1 s, b), min(cap, b * 2^(n-1))], b = hub.backoff_initial_ms
 * (5 s), cap = hub.backoff_max_ms (300 s); see daemon_backoff_ms(). Node
 * status failing skips the POST for that cycle (report_collect fails).
 *
 * A 401 or 403 from the hub parks the loop: no backoff storm, one probe
 * (a full cycle) every hub.parked_probe_seconds (900, jittered by ±10 %),
 * one log line per probe, "parked" in the status file; the first accepted
 * report, or a successful reload, leaves parked mode.
 *
 * Signals: SIGTERM/SIGINT stop the loop (an in-flight HTTP request is
 * cancelled through pve_cancel/hub_cancel; a running privileged command is
 * bounded by privileged.timeout_seconds); SIGHUP re-reads the config file
 * and environment, validates them and builds new clients, then swaps all
 * of it in at once — or keeps the running configuration and logs why.
 *
 * systemd (Type=notify, sdnotify.h): READY=1 after the first successful
 * collect; RELOADING=1 + MONOTONIC_USEC at the start of a reload and
 * READY=1 at its end; STOPPING=1; STATUS= lines; WATCHDOG=1 at half of
 * $WATCHDOG_USEC from a small thread, only while the main loop is within
 * the time budget of the step it declared (a collect: (4 + R) *
 * proxmox.timeout + 2 * privileged.timeout + 4 s, R = Proxmox requests
 * of the previous collect; a POST: hub.timeout + connect + 2 s; a sleep:
 * until 5 s after its end). A loop stuck past its budget stops the
 * keep-alives and systemd restarts the service.
 *
 * The reconcile engine (recon.h, gate.h) runs inside the daemon:
 *   - at start-up the engine lock (STATE_DIR/engine.lock) is taken, the
 *     LMDB store opened and recovery started on a helper thread; reports
 *     go on meanwhile, but nothing is submitted (no mutation) until every
 *     in-flight journal entry is resolved;
 *   - after every accepted report: `blocked` goes to the engine at once;
 *     op results waiting in the outbox are POSTed to
 *     /api/v1/op-results (and acknowledged on 2xx); when
 *     desired_generation moved, GET /api/v1/desired-state (404 or
 *     generation 0: no desired state, zero mutations); when
 *     has_signed_ops, GET /api/v1/signed-ops and each op is verified,
 *     gated and queued; then a planner pass over the desired state;
 *   - a result put in the outbox by a finished job wakes the loop, which
 *     delivers it without waiting for the next cycle;
 *   - the report's audit_tail is the newest DAEMON_AUDIT_TAIL audit
 *     entries; the journal, idempotency keys, nonces and the audit log are
 *     pruned once an hour;
 *   - an unreachable hub only means no new work: nothing is stopped or
 *     destroyed for it;
 *   - SIGTERM cancels the engine's Proxmox calls (running jobs keep their
 *     intent or UPID in the journal for the next start's recovery); a
 *     reload that changes the proxmox, authz or recon sections rebuilds the
 *     engine the same way.
 */
#ifndef FH_DAEMON_H
#define FH_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "cfg.h"
#include "hub.h"

#define DAEMON_STATUS_FILE "status.json"
#define DAEMON_AUDIT_TAIL 50                 /* audit entries in each report */
#define DAEMON_PRUNE_PERIOD_MS (3600 * 1000) /* store pruning */
#define DAEMON_STATUS_MAX (64 * 1024)

struct daemon_opts {
	const char *config_path;     /* --config, or NULL for the default (re-read on SIGHUP) */
	const char *state_dir;       /* --state-dir, or NULL */
};

struct store;
struct backup;
struct disk;
struct gate;
struct recon;

/* The engine as the daemon and the tools (--replay-journal,
 * --dump-journal, --selftest=task) run it. */
struct daemon_engine {
	int lock_fd;                 /* STATE_DIR/engine.lock, -1 when not held */
	struct store *st;            /* STATE_DIR/db */
	struct gate *gate;           /* signers from authz.*, host id hub.host_id ("local" when unset) */
	struct recon *recon;         /* NULL unless asked for */
	struct disk *disk;           /* with recon: disk management, the executor of storage_wipe */
	struct backup *backup;       /* with recon: the local API's backups (backup.h) */
};

/* Takes the engine lock, opens the store and the gate, and with with_recon
 * the engine (its Proxmox clients from the proxmox section, limits from
 * recon.*) and disk management (disk.h: privileged, proxmox,
 * storage.mount_root), which executes
 * signed storage_wipe ops for the engine, and the backups of the local API
 * (backup.h: the backup section). why gets one line naming what failed. FH_ERR_LOCKED (another
 * process holds STATE_DIR), FH_ERR_CONFIG, FH_ERR_STORE, FH_ERR_IO,
 * FH_ERR_NOMEM; nothing is kept open on error. */
int daemon_engine_open(const struct cfg *c, bool with_recon, struct daemon_engine *out, char *why, size_t whylen);
/* Cancels and frees the engine, closes the store, releases the lock. */
void daemon_engine_close(struct daemon_engine *e);

/* Runs the daemon until SIGTERM/SIGINT. *cfg is the validated starting
 * configuration; a reload replaces it (the old one is freed), so the caller
 * frees *cfg afterwards. Installs its own handlers for SIGTERM, SIGINT and
 * SIGHUP. 0 after a clean stop; FH_ERR_CONFIG when the clients cannot be
 * made from *cfg (logged), FH_ERR_IO / FH_ERR_NOMEM for setup failures. */
int daemon_run(const struct daemon_opts *o, struct cfg **cfg);

/* Async-signal-safe: cancels the Proxmox and hub clients the daemon code
 * is using right now (daemon_run or daemon_once). */
void daemon_cancel_all(void);

/* One collect + report without the loop (--selftest=hub). */
struct daemon_once {
	struct buf report;           /* the report JSON; daemon_once_free */
	bool posted;                 /* the hub accepted it */
	struct hub_envelope env;     /* when posted */
	int64_t interval;            /* the interval the daemon would adopt */
	char step[16];               /* failed step: "clients", "collect", "report" */
	int code;                    /* its fh_err */
	long http_status;
	char reason[320];            /* never holds a secret */
	char trust[24];              /* the hub's trust mode */
	char url[1024];              /* the report URL */
	unsigned long pve_requests, hub_requests;
};
int daemon_once(const struct cfg *c, struct daemon_once *out);
void daemon_once_free(struct daemon_once *o);

/* The backoff delay in ms before retry number `failures` (1 = after the
 * first failure): a uniform pick by rnd from [min(1000, base), ceiling],
 * ceiling = min(cap, base * 2^(failures-1)). cap below base counts as base. */
int64_t daemon_backoff_ms(unsigned failures, int64_t base_ms, int64_t cap_ms, uint64_t rnd);

/* ---- the status file: STATE_DIR/status.json, 0600, replaced atomically
 * (temp file + rename) after every cycle, reload, park and stop. Times are
 * Unix seconds, 0 = never. It never holds a secret. */
struct daemon_status {
	char agent_version[64];
	int64_t pid;
	char state[16];              /* starting | running | backoff | parked | stopped */
	int64_t started_at, updated_at;
	int64_t last_attempt_at;     /* last cycle start */
	int64_t last_report_at;      /* last report the hub accepted */
	int64_t next_attempt_at;
	int64_t stale_after;         /* no update by then: the daemon is stuck or gone */
	char last_error[32];         /* fh_strerror name of the last failed cycle, "" after a success */
	char last_error_step[16];    /* "collect" or "report" */
	char last_error_reason[256];
	long last_http_status;
	int64_t consecutive_failures;
	int64_t reports_sent;
	bool parked;
	int64_t parked_since;
	int64_t interval_seconds;    /* the interval in force */
	bool have_envelope;
	struct hub_envelope envelope; /* the last one received */
	bool ready;                  /* READY=1 was sent (first collect succeeded) */
	char hub_url[512];
};
/* Writes st atomically into dir (created 0700 if missing). FH_ERR_IO. */
int daemon_status_write(const char *dir, const struct daemon_status *st);
/* Reads and decodes dir/status.json. FH_ERR_NOT_FOUND (no file),
 * FH_ERR_IO, FH_ERR_TOOBIG, FH_ERR_DECODE, with a one-line why. */
int daemon_status_read(const char *dir, struct daemon_status *st, char *why, size_t whylen);
/* Prints st for an operator. Returns 0 when healthy (running, the last
 * cycle succeeded, not parked, not stale, the process alive), 1 otherwise
 * (the reason is printed). */
int daemon_status_print(const struct daemon_status *st, int64_t now, FILE *out);

#endif
