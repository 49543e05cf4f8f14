/* pve.h — the Proxmox VE API client (libcurl + yajl).
 *
 * REST over https://HOST:8006/api2/json with a PVEAPIToken header. One
 * libcurl handle per client, so one keep-alive connection is reused across
 * calls (closed by Proxmox after every error response and re-opened).
 * A client is used by one thread at a time; pve_cancel() may be called from
 * any thread or from a signal handler.
 *
 * This module never starts a process (see priv.h for that side of the fence).
 *
 * Errors: every call returns 0 or a negative fh_err code, and fills the
 * optional struct pve_err with detail. The token is never part of any error
 * text: status reasons and messages come from the server, URLs are logged
 * without credentials, and the header holding the token is never echoed.
 */
#ifndef FH_PVE_H
#define FH_PVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upid.h"

struct pve_opts {
	const char *endpoint;        /* https://HOST:8006 (no path) */
	const char *node;            /* node name for node-scoped calls */
	const char *token;           /* USER@REALM!TOKENID=SECRET */
	const char *ca_file;         /* verify against this CA bundle */
	const char *tls_fingerprint; /* or pin the leaf SHA-256 */
	bool insecure_skip_verify;   /* or, loopback only, verify nothing */
	long request_timeout_ms;     /* per HTTP request; default 30000 */
	long connect_timeout_ms;     /* default 10000 */
	size_t max_response;         /* response body cap; default 16 MiB */
	unsigned max_guests;         /* cap on list lengths; default 4096 */
	/* Task waiting: poll interval starts at poll_initial_ms and doubles up to
	 * poll_max_ms (defaults 1000 / 5000); the wait gives up after
	 * task_timeout_ms (default 3600000). */
	long poll_initial_ms;
	long poll_max_ms;
	long task_timeout_ms;
};

/* Detail of the last failure. */
struct pve_err {
	int code;                    /* the fh_err returned */
	long http_status;            /* 0 if no HTTP answer */
	char reason[256];            /* status-line reason or transport error text */
	char privilege[64];          /* from "Permission check failed (/path, Priv)" */
	char perm_path[128];         /* the "/path" of that text */
	char exitstatus[256];        /* failed task's exit status */
	char log_tail[1024];         /* failed task's last log lines, '\n'-joined */
	char method[8];
	char path[256];              /* API path without host, never with a token */
};

struct pve_client;

/* Validates opts (endpoint https://, token shape, exactly one trust mode,
 * insecure only for loopback endpoints) and makes a client; no network yet.
 * FH_ERR_CONFIG with e->reason on bad options. */
int pve_client_new(const struct pve_opts *o, struct pve_client **out, struct pve_err *e);
void pve_client_free(struct pve_client *c);
/* Async-signal-safe: makes the current and every later call of this client
 * return FH_ERR_CANCELLED (in-flight HTTP aborted, task waits stop). */
void pve_cancel(struct pve_client *c);
/* Counters, for tests and benchmarks. */
struct pve_stats {
	unsigned long requests;      /* HTTP requests sent */
	unsigned long connects;      /* new TCP+TLS connections libcurl opened */
	unsigned long pin_probes;    /* wolfSSL pin handshakes */
};
void pve_stats(const struct pve_client *c, struct pve_stats *out);
const char *pve_node(const struct pve_client *c);

/* ---- reads ---- */

struct pve_version { char version[32], release[32], repoid[64]; };
int pve_get_version(struct pve_client *c, struct pve_version *out, struct pve_err *e);

struct pve_node_entry {
	char node[64];
	char status[16];             /* online|offline|unknown */
	char ssl_fingerprint[100];
	double cpu;                  /* 0..1 */
	int64_t maxcpu, mem, maxmem, uptime;
};
/* *out is a calloc'd array of *n entries; free() it. */
int pve_list_nodes(struct pve_client *c, struct pve_node_entry **out, size_t *n, struct pve_err *e);

struct pve_node_status {
	double cpu;                  /* 0..1 as Proxmox sends it */
	int64_t uptime;
	char loadavg[3][16];         /* kept as the strings Proxmox sends */
	int64_t mem_total, mem_used, mem_free;
	int64_t swap_total, swap_used;
	int64_t rootfs_total, rootfs_used, rootfs_avail;
	char kversion[128];
	char pveversion[64];
	int cpus;                    /* cpuinfo.cpus, 0 if absent */
};
int pve_node_status(struct pve_client *c, struct pve_node_status *out, struct pve_err *e);

struct pve_guest {
	int vmid;
	char name[128];
	char status[16];             /* running|stopped|"" */
	char lock[32];
	char tags[256];
	bool template_;
	int cpus;
	int64_t maxmem, mem, maxdisk, disk, uptime;
	double cpu;
};
int pve_list_lxc(struct pve_client *c, struct pve_guest **out, size_t *n, struct pve_err *e);
int pve_guest_status(struct pve_client *c, int vmid, struct pve_guest *out, struct pve_err *e);

/* A guest's config: the raw key/value pairs (values as strings, numbers in
 * their text form) plus the fields the agent uses, decoded. */
struct pve_kv { char *key; char *value; };
struct pve_guest_config {
	size_t n;
	struct pve_kv *kv;           /* owned; pve_guest_config_free */
	int cores;                   /* 0 if absent */
	int64_t memory_mib, swap_mib; /* -1 if absent */
	char hostname[128];
	char rootfs[256];
	int64_t rootfs_gib;          /* from rootfs size=; -1 if absent */
	char digest[48];
	char lock[32];
	bool unprivileged;
	bool onboot;
};
int pve_guest_config(struct pve_client *c, int vmid, struct pve_guest_config *out, struct pve_err *e);
void pve_guest_config_free(struct pve_guest_config *cfg);
/* QEMU VMs: GET /nodes/{node}/qemu (rows as pve_list_lxc's) and
 * GET /nodes/{node}/qemu/{vmid}/config (key/value pairs; the LXC-specific
 * fields of the struct stay unset or meaningless). Disk management reads
 * them to never offer a device passed through to a VM. */
int pve_list_qemu(struct pve_client *c, struct pve_guest **out, size_t *n, struct pve_err *e);
int pve_qemu_config(struct pve_client *c, int vmid, struct pve_guest_config *out, struct pve_err *e);
/* Value of a config key, or NULL. */
const char *pve_guest_config_get(const struct pve_guest_config *cfg, const char *key);

struct pve_storage {
	char storage[64];
	char type[32];
	char content[128];
	bool enabled, active, shared;
	int64_t total, used, avail;
	double used_fraction;
};
/* /storage (cluster config view; only storage, type, content, shared are set). */
int pve_list_storage(struct pve_client *c, struct pve_storage **out, size_t *n, struct pve_err *e);
/* /nodes/{node}/storage (with usage). */
int pve_node_storage(struct pve_client *c, struct pve_storage **out, size_t *n, struct pve_err *e);

struct pve_content {
	char volid[256];
	char format[32];
	char content[32];
	char subtype[16];
	int vmid;                    /* 0 if absent */
	int64_t size, ctime;
	char notes[256];             /* first line */
	bool protected_;
};
/* content may be NULL (all) or e.g. "backup". */
int pve_storage_content(struct pve_client *c, const char *storage, const char *content,
			struct pve_content **out, size_t *n, struct pve_err *e);

struct pve_task_status {
	char upid[UPID_MAX];
	char status[16];             /* running|stopped */
	char exitstatus[256];        /* "" while running */
	char type[64];
	char id[64];
	char user[192];
	int64_t starttime;
};
int pve_task_status(struct pve_client *c, const char *upid, struct pve_task_status *out, struct pve_err *e);
/* Last up to max_lines lines of a task's log, '\n'-joined into dst. */
int pve_task_log_tail(struct pve_client *c, const char *upid, unsigned max_lines, char *dst,
		      size_t dstlen, struct pve_err *e);

struct pve_task_entry {
	char upid[UPID_MAX];
	char type[64];
	char id[64];
	char user[192];
	char status[256];            /* exit status, "" if running */
	int64_t starttime, endtime;
};
/* GET /nodes/{node}/tasks?vmid=&source=all&since= ; vmid 0 = any, since 0 = any. */
int pve_list_tasks(struct pve_client *c, int vmid, int64_t since, struct pve_task_entry **out,
		   size_t *n, struct pve_err *e);

struct pve_iface {
	char name[32];
	char hwaddr[32];
	char inet[64];               /* "10.0.0.5/24" or "" */
	char inet6[64];
};
/* GET /nodes/{node}/lxc/{vmid}/interfaces (running guests only). */
int pve_lxc_interfaces(struct pve_client *c, int vmid, struct pve_iface **out, size_t *n,
		       struct pve_err *e);

/* ---- asynchronous mutations ----
 * Each posts once and returns the UPID in upid[UPID_MAX] (validated by the
 * UPID machine). A mutation is never re-posted by the client: any error
 * after the request may have reached the server is returned as is. */

struct pve_restore {
	int vmid;
	const char *ostemplate;      /* backup volid */
	const char *storage;         /* target storage; NULL = server default */
	bool force;                  /* overwrite an existing (stopped) guest */
	bool unique;                 /* fresh MAC addresses */
	bool start;
};
int pve_restore_lxc(struct pve_client *c, const struct pve_restore *r, char upid[UPID_MAX], struct pve_err *e);

struct pve_vzdump {
	int vmid;
	const char *storage;
	const char *mode;            /* snapshot|suspend|stop; NULL = snapshot */
	const char *compress;        /* zstd|gzip|lzo|0; NULL = zstd */
	const char *notes_template;  /* may be NULL */
};
/* Always sends remove=0: vzdump never prunes old archives on its own. */
/* *no_task is set when Proxmox answered "OK" (no local guest matched): no
 * UPID then, and nothing to wait for. */
int pve_vzdump(struct pve_client *c, const struct pve_vzdump *v, char upid[UPID_MAX], bool *no_task,
	       struct pve_err *e);

int pve_snapshot(struct pve_client *c, int vmid, const char *name, const char *description,
		 char upid[UPID_MAX], struct pve_err *e);
int pve_rollback(struct pve_client *c, int vmid, const char *name, char upid[UPID_MAX], struct pve_err *e);
int pve_delete_snapshot(struct pve_client *c, int vmid, const char *name, char upid[UPID_MAX],
			struct pve_err *e);

/* PUT config: set the given pairs, delete the listed keys (comma list or
 * NULL), with the digest guard when digest is not NULL. Proxmox answers
 * synchronously (null) or with a UPID: upid is "" in the first case. */
struct pve_param { const char *key, *value; };
int pve_set_config(struct pve_client *c, int vmid, const struct pve_param *set, size_t nset,
		   const char *delete_keys, const char *digest, char upid[UPID_MAX], struct pve_err *e);

int pve_start(struct pve_client *c, int vmid, char upid[UPID_MAX], struct pve_err *e);
int pve_stop(struct pve_client *c, int vmid, char upid[UPID_MAX], struct pve_err *e);
int pve_shutdown(struct pve_client *c, int vmid, int timeout_s, bool force_stop, char upid[UPID_MAX],
		 struct pve_err *e);
int pve_destroy(struct pve_client *c, int vmid, bool purge, bool force, char upid[UPID_MAX],
		struct pve_err *e);

/* DELETE /nodes/{node}/storage/{storage}/content/{volid}: removes one volume
 * (e.g. a backup archive). storage must be a plain identifier and volid a
 * "storage:..." volume id on that same storage (no ".."); the volid is
 * URL-encoded into the path. Proxmox answers the UPID of an "imgdel" worker
 * (a protected volume makes that task fail), or null when it deleted
 * synchronously: upid is "" then. Never re-posted. */
int pve_delete_volume(struct pve_client *c, const char *storage, const char *volid, char upid[UPID_MAX],
		      struct pve_err *e);

/* ---- task waiting ---- */
struct pve_task_result {
	char exitstatus[256];        /* "OK", "WARNINGS: 2", or the error text */
	unsigned warnings;           /* n of "WARNINGS: n" */
	char log_tail[1024];         /* kept on failure and on warnings */
};
/* Polls the task until status is stopped. 0 for OK and WARNINGS: n (res
 * says which); FH_ERR_TASK with e->exitstatus, e->log_tail and
 * e->privilege (when the text names one); FH_ERR_TIMEOUT;
 * FH_ERR_CANCELLED; or a read error. A 400 "no such task" right after
 * dispatch is treated as still starting. */
int pve_task_wait(struct pve_client *c, const char *upid, struct pve_task_result *res, struct pve_err *e);

/* Pulls "Priv.Name" and "/path" out of "Permission check failed (/path, Priv.Name)"
 * anywhere in text. 0 on a match, FH_ERR_NOT_FOUND otherwise. */
int pve_parse_permission(const char *text, char *priv, size_t privlen, char *path, size_t pathlen);

#endif
