/* lapi_int.h — internals shared by src/lapi*.c (not a public header).
 *
 *   lapi_auth.c  the leaf (key + certificate files) and the guest tokens
 *   lapi_data.c  snapshots: collection from Proxmox, address index, the
 *                pre-rendered /storage and /host/metrics bodies
 *   lapi.c       the server: event thread, TLS, routing, worker, refresher
 */
#ifndef FH_LAPI_INT_H
#define FH_LAPI_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lapi.h"

/* ---- lapi_auth.c ---- */
struct lapi_leaf_paths {
	char dir[PATH_MAX], key[PATH_MAX], cert[PATH_MAX], lock[PATH_MAX];
};
struct lapi_leaf {
	unsigned char key_der[512];
	size_t key_len;
	unsigned char cert_der[2048];
	size_t cert_len;
};
int lapi_leaf_paths(const char *state_dir, struct lapi_leaf_paths *p);
/* lapi_cert_ensure, also handing back the DER pair (out may be NULL). */
int lapi_leaf_load(const char *state_dir, struct lapi_leaf *out, struct lapi_cert_info *info);
/* wolfSSL_Init once per process. */
void lapi_wolf_init(void);

/* ---- lapi_data.c ---- */
struct lapi_addr {
	uint8_t fam;                /* 4 or 6 */
	uint8_t b[16];              /* IPv4 in b[0..3] */
};
struct lapi_addr_ent {
	struct lapi_addr a;
	int vmid;
};
struct lapi_snap_guest {
	int vmid;
	struct lapi_addr *addrs;    /* from Proxmox (config + interfaces) */
	size_t naddrs;
	char *storage_body;         /* the whole GET /storage response body */
	size_t storage_len;
};
struct lapi_snap {
	bool have_data;             /* from a successful Proxmox collection */
	int64_t taken_at;           /* Unix seconds, 0 = never */
	int64_t slow_taken_at;      /* sensors, 0 = never */
	bool have_temp;
	int temp;
	struct lapi_snap_guest *guests;   /* sorted by vmid */
	size_t nguests;
	struct lapi_addr_ent *index;      /* sorted by address, then vmid */
	size_t nindex;
	char *metrics_tail;         /* after {"ok":true,"data":{"vmid":N */
	size_t metrics_tail_len;
};

/* "10.0.0.5", "10.0.0.5/24", "fe80::1", "[::1]" -> address. -1 if not one. */
int lapi_addr_parse(const char *s, size_t n, struct lapi_addr *a);
/* A peer's sockaddr; IPv4-mapped IPv6 becomes IPv4. -1 for other families. */
int lapi_addr_from_sa(const struct sockaddr *sa, struct lapi_addr *a);
void lapi_addr_format(const struct lapi_addr *a, char *dst, size_t n);
bool lapi_addr_is_loopback(const struct lapi_addr *a);
int lapi_addr_cmp(const struct lapi_addr *x, const struct lapi_addr *y);

/* A snapshot with only the configured addresses (no Proxmox data). */
int lapi_snap_static(const struct cfg_addr *ga, size_t n, struct lapi_snap **out);
void lapi_snap_free(struct lapi_snap *s);
/* Is a a known guest address (any guest)? */
bool lapi_snap_known(const struct lapi_snap *s, const struct lapi_addr *a);
/* Is a one of vmid's addresses? */
bool lapi_snap_owns(const struct lapi_snap *s, const struct lapi_addr *a, int vmid);
const struct lapi_snap_guest *lapi_snap_guest(const struct lapi_snap *s, int vmid);

/* One collection: node status, node storage, the LXC list, every guest's
 * config, interfaces of running DHCP guests; with slow (or when prev has
 * no sensor reading yet) also `sensors -j` through priv. prev (may be
 * NULL) lends data for guests whose config read fails and the last sensor
 * reading. *vmids gets the listed guests (malloc'd, caller frees). */
int lapi_collect(struct pve_client *pve, struct priv *priv, bool slow, const struct lapi_snap *prev,
		 const struct cfg_addr *ga, size_t nga, int64_t now, struct lapi_snap **out, int **vmids,
		 size_t *nvmids, struct lapi_refresh_err *e);

#endif
