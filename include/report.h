/* report.h — the HostReport the agent POSTs to the hub (SPEC §6), collected
 * from Proxmox (pve.h), the privileged backend (sensors) and a read-only
 * cloudflared probe, generated with yajl. vectors/host-report.golden.json
 * is the wire contract; vectors/host-report.md documents every field.
 *
 * One collect cycle costs 2 + G Proxmox requests for G guests (node status,
 * the LXC list, one config read per guest), one `sensors -j` through the
 * privileged backend (bounded by that backend's own timeout) and one
 * `systemctl is-active cloudflared` (2 s, 256 bytes of output at most).
 *
 * The cloudflared probe is not a privileged operation: it runs the fixed
 * argv {"systemctl", "is-active", "cloudflared"} from systemctl_path with
 * posix_spawn (no shell, no sudo), an environment of PATH and LC_ALL=C
 * only, stdin and stderr on /dev/null, in its own process group (killed
 * whole on timeout). The word on stdout decides (`systemctl is-active`
 * exits 3 for inactive and failed): "active", "inactive" or "failed";
 * anything else, or a probe that cannot run, times out or says too much,
 * is "unknown".
 */
#ifndef FH_REPORT_H
#define FH_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pve.h"
#include "priv.h"

#define REPORT_DEFAULT_SYSTEMCTL "/usr/bin/systemctl"
#define REPORT_PROBE_TIMEOUT_MS 2000      /* the cloudflared probe, start to reap */
#define REPORT_PROBE_MAX_OUTPUT 256       /* its stdout cap in bytes */
#define REPORT_AUDIT_MAX_BYTES (1u << 20) /* audit_tail_json cap */

struct report_sources {
	struct pve_client *pve;        /* required */
	struct priv *priv;             /* for sensors -j; NULL: cpu_temp_c null */
	const char *host_id;           /* hub.host_id; required, non-empty */
	const char *agent_version;     /* NULL: FH_VERSION of this build */
	const char *systemctl_path;    /* absolute; default REPORT_DEFAULT_SYSTEMCTL */
	const char *audit_tail_json;   /* a JSON array to embed, or NULL for [] */
	int64_t now;                   /* generated_at as Unix seconds; 0: time(NULL) */
	/* Called once per collect with the LXC list Proxmox returned (when the
	 * list read succeeded), before the report is generated; may be NULL. */
	void (*on_guests)(void *ctx, const struct pve_guest *g, size_t n);
	void *guests_ctx;
};

/* Why a collect failed, and (on success too) what was degraded, so the
 * caller can log it once. Library code does not log. */
struct report_err {
	char step[32];                 /* which step failed: "args", "audit_tail",
					* "node_status", "lxc_list", "guest_config"
					* (cancelled only), "generate", "output";
					* "" on success */
	struct pve_err pve;            /* detail when the step is a pve call */
	/* Degradations of a successful collect (all 0 when nothing degraded). */
	unsigned specs_dropped;        /* guests reported without a spec */
	int spec_vmid;                 /* the first of them */
	int spec_code;                 /* its pve_guest_config error */
	int temp_code;                 /* why cpu_temp_c is null: the priv_sensors
					* error, FH_ERR_DECODE (unparsable JSON),
					* FH_ERR_NOT_FOUND (no CPU sensor), or
					* FH_ERR_INVAL (no privileged backend) */
	int cloudflared_code;          /* why cloudflared is "unknown": FH_ERR_SPAWN,
					* FH_ERR_TIMEOUT, FH_ERR_TOOBIG, FH_ERR_EXIT
					* (killed by a signal), FH_ERR_DECODE (another
					* word), FH_ERR_INVAL (relative path) */
};

/* Collects and appends the report JSON (compact, one object, no newline)
 * to out. Node status failing is fatal for the cycle (returns its error,
 * step "node_status"; nothing to POST), and so is the LXC list failing
 * (step "lxc_list": without it there is no guest to report, and an empty
 * list would tell the hub every guest is gone; over the client's
 * max_guests it is FH_ERR_TOOBIG). One guest's config failing keeps its
 * run status and drops only its spec; an empty or unrecognized status
 * becomes "unknown"; sensors failing makes cpu_temp_c null; a failed
 * cloudflared probe is "unknown". Guests are sorted by vmid. A
 * pve_cancel() during the guest configs returns FH_ERR_CANCELLED (step
 * "guest_config") rather than a report of spec-less guests.
 *
 * Errors: FH_ERR_INVAL (no pve client, host_id missing; step "args"),
 * FH_ERR_DECODE / FH_ERR_TOOBIG (audit_tail_json is not a JSON array, or
 * is over REPORT_AUDIT_MAX_BYTES; step "audit_tail", checked before any
 * request), the pve error of node status or the list, FH_ERR_TOOBIG (the
 * report does not fit out's cap; step "output"), FH_ERR_NOMEM. On error
 * out is left as it was. e may be NULL. */
int report_collect(const struct report_sources *s, struct buf *out, struct report_err *e);

/* The cloudflared probe alone: *word is set to one of the static strings
 * "active", "inactive", "failed" or "unknown" and is never NULL. Returns
 * 0 when the word came from systemctl, otherwise the reason it is
 * "unknown" (as report_err.cloudflared_code). path NULL: the default. */
int report_probe_cloudflared(const char *systemctl_path, const char **word);

/* The CPU temperature from `sensors -j` output: the maximum temp*_input of
 * the CPU chips (coretemp-*, k10temp-*, zenpower-*, cpu_thermal-*: e.g.
 * coretemp "Package id 0" and "Core N", k10temp "Tctl"/"Tccd1"), rounded
 * to whole degrees C. Readings outside -60..200 C are ignored as bogus.
 * FH_ERR_DECODE (not JSON, or not an object), FH_ERR_TOOBIG (over 1 MiB),
 * FH_ERR_NOT_FOUND (no CPU sensor reading). *out written only on success. */
int report_parse_sensors(const char *p, size_t n, int *out);

#endif
