/* report.h — the HostReport the agent POSTs to the hub (SPEC §6), collected
 * from Proxmox (pve.h), the privileged backend (sensors) and a read-only
 * cloudflared probe, generated with yajl. vectors/host-report.golden.json
 * is the wire contract.
 */
#ifndef FH_REPORT_H
#define FH_REPORT_H

#include <stddef.h>

#include "buf.h"
#include "pve.h"
#include "priv.h"

struct report_sources {
	struct pve_client *pve;        /* required */
	struct priv *priv;             /* for sensors -j; NULL: cpu_temp_c null */
	const char *host_id;           /* hub.host_id */
	const char *agent_version;
	const char *systemctl_path;    /* default "/usr/bin/systemctl" */
	const char *audit_tail_json;   /* a JSON array to embed, or NULL for [] */
};

struct report_err {
	char step[32];                 /* which collection step failed */
	struct pve_err pve;
};

/* Collects and appends the report JSON to out. Node status failing is
 * fatal for the cycle (returns its error; nothing to POST); one guest's
 * config failing keeps its run status and drops only its spec; an empty
 * status becomes "unknown"; a failed cloudflared probe is "unknown". */
int report_collect(const struct report_sources *s, struct buf *out, struct report_err *e);

#endif
