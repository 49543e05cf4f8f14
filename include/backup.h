/* backup.h — per-guest backups behind the local API (SPEC §8, §9): the
 * policy from the local config, /backup/due, POST /backup as a journaled
 * vzdump job of the reconcile engine, a durable per-guest status that
 * survives restarts, and retention (pruning old archives through the
 * engine's backup_prune op).
 *
 * Policy (config only, never the hub): the backup section (enabled,
 * storage, mode, compress, interval_seconds, keep_last) with backup.guests
 * overriding enabled, interval_seconds, storage and keep_last per vmid. A
 * guest whose effective policy is disabled or has no storage has backups
 * disabled. backup.golden_archives are never pruned.
 *
 * Durable state: STORE_DB_BACKUP, BE32 vmid -> a versioned record (struct
 * backup_rec). The record is written phase "running" before the job is
 * submitted; the job's end (the engine's done callback) sets done or
 * failed. A record left "running" by an earlier process is resolved from
 * the idempotency store: outcome recorded -> done/failed; recorded without
 * outcome (in flight in the journal) -> stays running until the engine's
 * recovery closes it; never recorded and not queued in this process (the
 * job was lost before the engine admitted it) -> failed "interrupted".
 *
 * /backup/due: disabled | never_backed_up | interval_elapsed | not_due,
 * from the record alone, without waiting on any Proxmox task. The first
 * time a guest has no known successful backup, the module looks (once, on
 * its own thread, at most probe_wait_ms) at the policy storage's existing
 * archives of that vmid; the newest archive's ctime counts as the last
 * success, so a reinstalled agent does not back everything up again. If
 * that look fails or takes longer, the answer is never_backed_up (an extra
 * backup is the safe side) and the look's result is used once it arrives.
 * A guest whose job is running is not_due.
 *
 * Retention: after a successful backup, on the module's worker thread with
 * its own Proxmox client: the policy storage's backup archives of the vmid,
 * newest first; the newest keep_last that are not protected are kept, and
 * so are the newest archive, every protected one (Proxmox's own prune rule:
 * protected archives do not count towards keep_last) and every golden
 * archive; so is every archive made before this guest's first backup by
 * this agent (own_since: an earlier guest with the same vmid, or archives
 * made by hand before the agent took over) and every archive not older than
 * the backup that just succeeded (a clock step must not push it out); one
 * backup_prune job (source JRNL_SRC_BACKUP, job id derived from vmid and
 * volid) is submitted for each other archive.
 *
 * A reused vmid inherits nothing: the daemon reports the guests Proxmox
 * lists after every collect (backup_note_present), and the record of a
 * guest that is gone is deleted, so the next guest with that vmid starts a
 * new own_since.
 *
 * Threads: the lapi backend functions run on the local API's worker; the
 * done callbacks on engine workers (they only queue an event); one worker
 * thread of this module applies events, probes storages and runs
 * retention. Shut down in this order: backup_stop (no more submits),
 * recon_free (it calls the done callbacks of dropped jobs while it stops),
 * backup_free.
 */
#ifndef FH_BACKUP_H
#define FH_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lapi.h"
#include "store.h"

struct cfg;
struct pve_opts;
struct recon;

#define BACKUP_JOB_ID_MAX 63         /* fits lapi_backup_job.job_id */
#define BACKUP_ERROR_MAX 255         /* fits lapi_backup_job.error */
#define BACKUP_REC_VERSION 2         /* version 1 (no own_since) is still read */
#define BACKUP_REC_MAX 512           /* encoded record, bytes */
#define BACKUP_EVENTS_MAX 4096       /* worker events queued at once */

enum backup_phase {                  /* persisted: values never change */
	BACKUP_IDLE = 0,
	BACKUP_RUNNING = 1,
	BACKUP_DONE = 2,
	BACKUP_FAILED = 3,
	BACKUP__PHASE_END
};

/* One guest's durable state. */
struct backup_rec {
	enum backup_phase phase;
	char job_id[BACKUP_JOB_ID_MAX + 1];   /* current or last job, "" if none */
	char error[BACKUP_ERROR_MAX + 1];     /* "" unless failed */
	int64_t started_at;                   /* Unix seconds, 0 if none */
	int64_t finished_at;                  /* 0 while running or never */
	int64_t last_success_at;              /* start of the last successful backup, 0 if none */
	int64_t own_since;                    /* start of the first job this agent ran for this
						 guest (its current incarnation); 0 if none yet */
	bool probed;                          /* the storage's existing archives were looked at */
};

/* "idle", "running", "done", "failed" ("" outside the enum). */
const char *backup_phase_name(enum backup_phase p);

/* Record encoding: version byte, phase, flags, four BE64 times (version
 * 1: three, own_since read as started_at), then length-prefixed job id and
 * error. Encode: FH_ERR_INVAL (phase outside
 * the enum, strings not terminated or with control bytes), *n set.
 * Decode: FH_ERR_DECODE for anything malformed (unknown version or phase,
 * lengths past the end or over their caps, trailing bytes, negative
 * times); never reads past n. */
int backup_rec_encode(const struct backup_rec *r, unsigned char out[BACKUP_REC_MAX], size_t *n);
int backup_rec_decode(const void *p, size_t n, struct backup_rec *out);
/* One guest's record in its own transaction. FH_ERR_NOT_FOUND (none),
 * FH_ERR_DECODE (corrupt), store errors. */
int backup_rec_get(struct store *st, int vmid, struct backup_rec *out);
/* Writes (r) or deletes (r NULL) one guest's record. */
int backup_rec_put(struct store *st, int vmid, const struct backup_rec *r);

/* A guest's effective policy. */
struct backup_policy {
	bool enabled;                /* false also when storage is "" */
	char storage[64];
	char mode[16];               /* snapshot | suspend | stop */
	char compress[16];           /* zstd | gzip | lzo | 0 */
	int64_t interval_seconds;
	int64_t keep_last;
};

struct backup_opts {
	struct store *st;            /* required */
	struct recon *recon;         /* required: every vzdump and prune is its job */
	const struct pve_opts *pve;  /* required: the worker's own client (storage reads) */
	const struct cfg *cfg;       /* required: the backup section is copied at backup_new */
	const char *host_id;         /* required: the host of every gate action */
	long probe_wait_ms;          /* /backup/due's wait for a storage look (default 3000, max 8000) */
	/* Clock (Unix seconds) for tests; NULL = time(). */
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
};

struct backup;

/* Copies the policy, makes the worker's Proxmox client and starts the
 * worker thread; no Proxmox call yet. FH_ERR_INVAL (a required option
 * missing), FH_ERR_CONFIG (Proxmox options or the policy; why says which),
 * FH_ERR_NOMEM. *out (backup_free) only on success. */
int backup_new(const struct backup_opts *o, struct backup **out, char *why, size_t whylen);
/* Stops the worker (a Proxmox read in progress is cancelled); from then
 * on nothing is submitted to the engine and finished jobs' events are
 * dropped (their records are settled from the idempotency store at the
 * next start). Call it before recon_free: the worker may be submitting a
 * retention job. Idempotent; NULL is allowed. */
void backup_stop(struct backup *b);
/* backup_stop, then frees. The engine must already be freed (see the
 * top). NULL is allowed. */
void backup_free(struct backup *b);

/* Fills be with the three functions below; pass b as the ctx of
 * lapi_set_backend. */
void backup_lapi_backend(struct backup *b, struct lapi_backend *be);

/* The backend functions (ctx is the struct backup).
 * due: FH_ERR_DECODE (corrupt record), store errors.
 * enqueue: the running job when there is one (same job id, phase running);
 *   otherwise a new job: record written running, then recon_submit. A
 *   refused submit (FH_ERR_QUEUE_FULL, FH_ERR_BLOCKED, ...) puts the record
 *   back as it was and is returned. Backups disabled for the guest:
 *   FH_ERR_CONFIG (the local API answers 500 "config"). A corrupt record
 *   is replaced by the new job's.
 * status: phase idle (no record), running, done or failed with the error;
 *   FH_ERR_DECODE (corrupt record), store errors. */
int backup_due(void *ctx, int vmid, struct lapi_backup_due *out);
int backup_enqueue(void *ctx, int vmid, struct lapi_backup_job *out);
int backup_status(void *ctx, int vmid, struct lapi_backup_job *out);

/* The guests Proxmox lists now (vmids, any order): the records of guests
 * not listed are deleted (a job of this process still running for one is
 * left alone). An empty list is refused (FH_ERR_INVAL): an answer with no
 * guest is never taken to mean that every guest is gone. *forgotten (may
 * be NULL) gets the number deleted. Store errors. */
int backup_note_present(struct backup *b, const int *vmids, size_t n, unsigned *forgotten);

/* The effective policy of vmid. */
void backup_policy_of(struct backup *b, int vmid, struct backup_policy *out);

/* Waits until the worker has no event queued or in progress (tests). */
void backup_wait_idle(struct backup *b);

struct backup_stats {
	uint64_t enqueued;           /* jobs submitted */
	uint64_t refused;            /* submits refused (record restored) */
	uint64_t done, failed;       /* outcomes applied */
	uint64_t probes;             /* storage looks for never_backed_up */
	uint64_t prunes_submitted;   /* backup_prune jobs submitted */
	uint64_t prunes_done;        /* ... that executed */
	uint64_t prune_errors;       /* retention reads or submits that failed */
};
void backup_stats(struct backup *b, struct backup_stats *out);

#endif
