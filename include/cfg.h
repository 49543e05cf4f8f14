/* cfg.h — the agent's configuration: one JSON file plus FELHOM_AGENT_*
 * environment overrides, validated with the key path in every error.
 *
 * Every key has an override named from its path: FELHOM_AGENT_<SECTION>_<KEY>
 * in upper case (hub.tls_fingerprint -> FELHOM_AGENT_HUB_TLS_FINGERPRINT;
 * top-level state_dir -> FELHOM_AGENT_STATE_DIR). Overrides are applied
 * before validation, so an empty {} file plus environment is complete.
 * List- and object-valued keys take JSON text in the environment
 * (authz.signers also takes one signer line per line).
 *
 * Secrets (proxmox.token, hub.api_key) may be given inline, by file
 * (proxmox.token_file, hub.api_key_file) or as systemd credentials named
 * "proxmox.token" / "hub.api_key" in $CREDENTIALS_DIRECTORY. They are never
 * printed: cfg_print() writes "[REDACTED]" in their place.
 */
#ifndef FH_CFG_H
#define FH_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_DEFAULT_PATH "/etc/felhom-agent/agent.json"
#define CFG_DEFAULT_STATE_DIR "/var/lib/felhom-agent"
#define CFG_MAX_FILE (1024 * 1024)
#define CFG_MAX_SECRET_FILE 4096

/* What a mode needs; validation checks only those sections' required keys. */
enum cfg_need {
	CFG_NEED_PROXMOX = 1 << 0,
	CFG_NEED_HUB = 1 << 1,
	CFG_NEED_AUTHZ = 1 << 2,
	CFG_NEED_PRIVILEGED = 1 << 3,
};

struct cfg_addr {            /* localapi.guest_addresses entry */
	int vmid;
	char *addr;
};

/* Bounds of the list- and object-valued keys. */
#define CFG_MAX_BACKUP_GUESTS 4096   /* backup.guests entries */
#define CFG_MAX_GOLDEN 256           /* backup.golden_archives entries */
#define CFG_MAX_MONITORS 64          /* localapi.monitor_addresses entries */

/* backup.guests entry: one guest's overrides of the backup section. A field
 * not given in the entry is "unset" and the section value applies. */
struct cfg_backup_guest {
	int vmid;
	int enabled;                 /* -1 unset, 0 false, 1 true */
	int64_t interval_seconds;    /* 0 unset, else 3600..31536000 */
	int64_t keep_last;           /* 0 unset, else 1..1000 */
	char *storage;               /* NULL unset, else a storage id */
};

struct cfg {
	char *source;            /* the file read, or "" */
	char *state_dir;
	struct {
		char *endpoint, *node, *token, *token_file, *tls_fingerprint, *ca_file;
		bool insecure_skip_verify;
		int64_t timeout_seconds, task_timeout_seconds, task_poll_initial_ms, task_poll_max_ms;
		int64_t max_guests;
	} proxmox;
	struct {
		char *mode;          /* "sudo" | "direct" */
		char *sudo_path, *path;
		int64_t timeout_seconds;
	} privileged;
	struct {
		char *url, *host_id, *api_key, *api_key_file, *tls_fingerprint, *ca_file;
		int64_t poll_seconds, timeout_seconds;
		int64_t min_interval_seconds;  /* lower clamp of the hub's interval (60) */
		int64_t parked_probe_seconds;  /* parked (401/403) probe period (900) */
		int64_t backoff_initial_ms, backoff_max_ms; /* failure backoff (5000, 300000) */
	} hub;
	struct {
		char **signers;      /* NULL-terminated */
		size_t nsigners;
		char *signers_file;
		int64_t max_lifetime_seconds, clock_skew_seconds;
	} authz;
	struct {
		char *listen;
		bool listen_set;     /* "" disables; unset = bridge default */
		struct cfg_addr *guest_addresses;
		size_t naddrs;
		char **monitor_addresses;  /* NULL-terminated numeric IPs allowed /healthz, /readyz */
		size_t nmonitors;
	} localapi;
	struct {
		int64_t max_parallel_guests;   /* serializer lanes run at once (4) */
		int64_t max_queued_per_guest;  /* jobs waiting per guest (16) */
		int64_t max_queued;            /* jobs waiting in all (1024) */
		int64_t max_mutations;         /* concurrent Proxmox mutations (2) */
		int64_t lock_wait_seconds;     /* wait for a guest's config lock (120) */
		int64_t post_retries;          /* transient POST retries before a UPID (3) */
		int64_t audit_max_entries;     /* audit log bound (10000) */
		int64_t idempotency_retention_seconds; /* job keys kept (604800) */
		int64_t journal_keep_closed;   /* closed journal entries kept (10000) */
	} recon;
	struct {
		char *storage, *mode, *compress;
		bool enabled;                  /* (true) no storage also means disabled */
		int64_t interval_seconds;      /* between successful backups (86400) */
		int64_t keep_last;             /* archives kept per guest (7) */
		struct cfg_backup_guest *guests;  /* per-guest overrides, sorted by vmid */
		size_t nguests;
		char **golden_archives;        /* NULL-terminated volids never pruned */
		size_t ngolden;
	} backup;
	struct {
		char *mount_root;              /* absolute, no ".." ("/mnt/felhom") */
	} storage;
	struct {
		char *level, *format;
	} log;
};

/* Loads path (NULL = CFG_DEFAULT_PATH; a missing default file is an empty
 * config, a missing explicit file is an error), applies env overrides from
 * envp (NULL = environ), resolves secrets given by reference, applies
 * defaults. On error returns FH_ERR_CONFIG and writes one line naming the
 * file/variable and key path into err. *out is freed with cfg_free. */
int cfg_load(const char *path, const char *const envp[], struct cfg **out, char *err, size_t errlen);
/* Checks what the mode needs (bitmask of enum cfg_need); FH_ERR_CONFIG
 * with the key path in err. */
int cfg_validate(const struct cfg *c, unsigned need, char *err, size_t errlen);
/* Effective configuration as JSON, every secret replaced by "[REDACTED]". */
int cfg_print(const struct cfg *c, FILE *out);
void cfg_free(struct cfg *c);
/* Replaces state_dir (for --state-dir). */
int cfg_set_state_dir(struct cfg *c, const char *dir);

#endif
