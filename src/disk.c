/* disk.c — disk management for the in-guest controllers (see disk.h and
 * docs/DISKS.md): the endpoints, the probe cache, pending destructive ops
 * in LMDB, and the executor of a signed storage_wipe.
 *
 * Locks: cache_mu guards the cached inventory (held only to copy it);
 * probe_mu lets one probe run at a time (a lister that finds a probe
 * running and a stale inventory answers from the stale one); mut_mu runs
 * mutations one at a time; pve_mu guards the Proxmox client (one thread at
 * a time). Order: mut_mu, then probe_mu, then cache_mu or pve_mu.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "disk_int.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "mountunit.h"
#include "store.h"

#define DEF_MOUNT_ROOT "/mnt/felhom"
#define DEF_BY_ID "/dev/disk/by-id"
#define DEF_ZFS_KSTAT "/proc/spl/kstat/zfs"
#define DEF_SYS_BLOCK "/sys/class/block"
#define DEF_CACHE_MS 5000
#define DEF_BUDGET_MS 8000
#define DEF_PROBE_TIMEOUT_MS 5000L
#define DEF_TTL_S 86400
#define PVE_TIMEOUT_MS 5000L
#define MP_MAX 256
#define PENDING_VAL_MAX 2048

struct disk {
	struct priv *pp;            /* probing backend (short timeout) */
	struct priv *pm;            /* mutating backend */
	struct pve_client *pve;     /* NULL without Proxmox */
	struct store *st;
	char host_id[128];
	char mount_root[256];
	char by_id_dir[PATH_MAX];
	char zfs_dir[PATH_MAX];
	char sys_dir[PATH_MAX];
	uint64_t audit_max;
	struct dprobe_env env;
	int64_t cache_ms, budget_ms, ttl_s;
	int64_t (*now)(void);
	pthread_mutex_t cache_mu, probe_mu, mut_mu, pve_mu;
	/* cache_mu */
	struct dprobe cache;
	struct pve_storage *stor;
	size_t nstor;
	bool have_cache;
	int64_t cache_at;           /* monotonic ms */
	uint64_t gen;               /* bumped by disk_invalidate */
};

/* One mount point of a guest's config. */
struct gmp {
	int idx;
	char volume[256];
	char mp[256];
};

static int64_t now_s(const struct disk *d)
{
	return d->now ? d->now() : (int64_t)time(NULL);
}

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ JSON out */

/* A JSON string; bytes outside printable ASCII become '?' (nothing from a
 * device label or serial can break the document or smuggle UTF-8). */
static int jstr(struct buf *b, const char *s)
{
	int r = buf_append(b, "\"", 1);

	for (; r == 0 && s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			r = buf_append(b, e, 2);
		} else if (c < 0x20 || c > 0x7e) {
			r = buf_append(b, "?", 1);
		} else {
			r = buf_append(b, s, 1);
		}
	}
	return r ? r : buf_append(b, "\"", 1);
}

static int jkv_str(struct buf *b, bool comma, const char *k, const char *v)
{
	int r = buf_printf(b, "%s\"%s\":", comma ? "," : "", k);

	return r ? r : jstr(b, v);
}

static int jkv_bool(struct buf *b, bool comma, const char *k, bool v)
{
	return buf_printf(b, "%s\"%s\":%s", comma ? "," : "", k, v ? "true" : "false");
}

static int jkv_int(struct buf *b, bool comma, const char *k, long long v)
{
	return buf_printf(b, "%s\"%s\":%lld", comma ? "," : "", k, v);
}

/* --------------------------------------------------------- validation */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool in_list(const char *s, const char *const *l)
{
	for (; *l; l++)
		if (!strcmp(s, *l))
			return true;
	return false;
}

static const char *const mkfs_types[] = { "ext4", "xfs", "btrfs", "vfat", NULL };
static const char *const mount_types[] = { "ext4", "xfs", "btrfs", "vfat", "exfat", NULL };

/* Paths never used as a mount point inside a guest. */
static bool guest_system_path(const char *s)
{
	static const char *const sys[] = {
		"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
		"/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var", NULL
	};
	size_t i;

	for (i = 0; sys[i]; i++) {
		size_t n = strlen(sys[i]);
		if (!strncmp(s, sys[i], n) && (s[n] == '\0' || s[n] == '/'))
			return true;
	}
	return false;
}

/* where: the mount point inside the guest. Absolute, [A-Za-z0-9._+@-/],
 * no empty, "." or ".." segment, no trailing '/', not a system path. */
static bool valid_where(const char *s, char *why, size_t whylen)
{
	size_t i, n;
	const char *seg;

	if (!s || s[0] != '/') {
		set_why(why, whylen, "where must be an absolute path");
		return false;
	}
	n = strnlen(s, 256);
	if (n < 2 || n > 255) {
		set_why(why, whylen, "where must be 2..255 bytes and not /");
		return false;
	}
	for (i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("._+@-/", s[i])) {
			set_why(why, whylen, "where has a character outside [A-Za-z0-9._+@-/]");
			return false;
		}
	for (seg = s; seg && *seg; seg = strchr(seg + 1, '/')) {
		const char *e = strchr(seg + 1, '/');
		size_t k = e ? (size_t)(e - seg - 1) : strlen(seg + 1);
		if (k == 0 || (k == 1 && seg[1] == '.') || (k == 2 && seg[1] == '.' && seg[2] == '.') ||
		    seg[1] == '.') {
			set_why(why, whylen, "where has an empty, dot or hidden segment");
			return false;
		}
	}
	if (guest_system_path(s)) {
		set_why(why, whylen, "where is a system path");
		return false;
	}
	return true;
}

/* Mount options from the guest: tokens of an allow-list, each at most once,
 * ro and rw not together. Writes the extra host options (ro excluded; it
 * goes to the mount point) to host_extra. */
static bool valid_options(const char *s, char *host_extra, size_t cap, bool *ro, char *why, size_t whylen)
{
	static const char *const allow[] = { "nodev", "nosuid", "noexec", "noatime", "relatime", "ro", "rw", "nofail", NULL };
	bool seen[8] = { false };
	size_t o = 0;

	*ro = false;
	host_extra[0] = '\0';
	if (!s || !*s)
		return true;
	if (strlen(s) > 128) {
		set_why(why, whylen, "options too long");
		return false;
	}
	for (;;) {
		size_t n = strcspn(s, ","), i;
		for (i = 0; allow[i]; i++)
			if (strlen(allow[i]) == n && !strncmp(s, allow[i], n))
				break;
		if (!allow[i]) {
			set_why(why, whylen, "options: only nodev, nosuid, noexec, noatime, relatime, ro, rw, nofail");
			return false;
		}
		if (seen[i]) {
			set_why(why, whylen, "options: %s given twice", allow[i]);
			return false;
		}
		seen[i] = true;
		if (!strcmp(allow[i], "ro"))
			*ro = true;
		else if (strcmp(allow[i], "rw") && strcmp(allow[i], "nodev") && strcmp(allow[i], "nosuid") &&
			 strcmp(allow[i], "nofail"))
			o += (size_t)snprintf(host_extra + o, cap - o, ",%s", allow[i]);
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	if (seen[5] && seen[6]) {
		set_why(why, whylen, "options: ro and rw together");
		return false;
	}
	return true;
}

/* A filesystem UUID ("uuid:" prefix allowed): hex and '-', 1..64 bytes. */
static bool valid_uuid(const char *s, const char **bare)
{
	size_t n;

	if (!strncmp(s, "uuid:", 5))
		s += 5;
	n = strlen(s);
	if (n == 0 || n > 64 || strspn(s, "0123456789abcdefABCDEF-") != n || strspn(s, "-") == n)
		return false;
	*bare = s;
	return true;
}

/* The host directory of a filesystem: MOUNT_ROOT/<uuid, lowercase hex only>
 * (the mount unit helper derives the same Where from the UUID). */
static void host_path_of(const struct disk *d, const char *uuid, char *out, size_t cap)
{
	char hex[72];
	size_t o = 0;

	for (; *uuid && o < sizeof hex - 1; uuid++)
		if (*uuid != '-')
			hex[o++] = (char)((*uuid >= 'A' && *uuid <= 'F') ? *uuid - 'A' + 'a' : *uuid);
	hex[o] = '\0';
	set_why(out, cap, "%s/%s", d->mount_root, hex);
}

/* ------------------------------------------------------------- bodies */

/* Parses a flat JSON object of string members named in keys (vals[i] gets
 * the value, "" when absent). Unknown members, non-strings, NULs: error. */
static int parse_body(const char *body, size_t n, const char *const *keys, char vals[][512], size_t nkeys,
		      char *why, size_t whylen)
{
	struct json_limits lim = { DISK_BODY_MAX, 2, false };
	struct json *j = NULL;
	size_t i, k;
	int r;

	for (k = 0; k < nkeys; k++)
		vals[k][0] = '\0';
	if (!body || n == 0 || n > DISK_BODY_MAX) {
		set_why(why, whylen, "body must be a JSON object of at most %d bytes", DISK_BODY_MAX);
		return FH_ERR_INVAL;
	}
	r = json_parse(body, n, &lim, &j, NULL, 0);
	if (r || j->type != JSON_OBJECT) {
		json_free(j);
		set_why(why, whylen, "body is not a JSON object");
		return FH_ERR_INVAL;
	}
	for (i = 0; i < j->n; i++) {
		const struct json *v = j->items[i];
		for (k = 0; k < nkeys; k++)
			if (!strcmp(j->keys[i], keys[k]))
				break;
		if (k == nkeys) {
			set_why(why, whylen, "unknown member in body");
			r = FH_ERR_INVAL;
			break;
		}
		if (v->type != JSON_STRING || v->slen >= 512 || strlen(v->s) != v->slen) {
			set_why(why, whylen, "%s must be a string under 512 bytes", keys[k]);
			r = FH_ERR_INVAL;
			break;
		}
		memcpy(vals[k], v->s, v->slen + 1);
	}
	json_free(j);
	return r;
}

/* --------------------------------------------------------- construction */

static int copy_opt(char *dst, size_t cap, const char *v, const char *def)
{
	const char *s = v && *v ? v : def;

	if (strlen(s) >= cap)
		return FH_ERR_CONFIG;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int disk_new(const struct disk_opts *o, struct disk **out, char *why, size_t whylen)
{
	struct disk *d = NULL;
	struct priv_opts po;
	int r = FH_ERR_CONFIG;

	if (!o || !out || !o->priv || !o->st || !o->host_id || !*o->host_id || strlen(o->host_id) >= 128) {
		set_why(why, whylen, "disk: priv, store and host_id are required");
		return o && out ? FH_ERR_CONFIG : FH_ERR_INVAL;
	}
	d = calloc(1, sizeof *d);
	if (!d)
		return FH_ERR_NOMEM;
	pthread_mutex_init(&d->cache_mu, NULL);
	pthread_mutex_init(&d->probe_mu, NULL);
	pthread_mutex_init(&d->mut_mu, NULL);
	pthread_mutex_init(&d->pve_mu, NULL);
	d->st = o->st;
	memcpy(d->host_id, o->host_id, strlen(o->host_id) + 1);
	if (copy_opt(d->mount_root, sizeof d->mount_root, o->mount_root, DEF_MOUNT_ROOT) ||
	    copy_opt(d->by_id_dir, sizeof d->by_id_dir, o->by_id_dir, DEF_BY_ID) ||
	    copy_opt(d->zfs_dir, sizeof d->zfs_dir, o->zfs_kstat_dir, DEF_ZFS_KSTAT) ||
	    copy_opt(d->sys_dir, sizeof d->sys_dir, o->sys_block_dir, DEF_SYS_BLOCK)) {
		set_why(why, whylen, "disk: a path option is too long");
		goto out;
	}
	/* mount_root: exactly what the mount unit helper accepts (mountunit.h),
	 * else every assign would fail there */
	if (!mountunit_valid_root(d->mount_root)) {
		set_why(why, whylen,
			"storage.mount_root must be /mnt, /media or /srv, optionally followed by /-separated "
			"components of [A-Za-z0-9_] (at most %d bytes)",
			MOUNTUNIT_ROOT_MAX);
		goto out;
	}
	if (d->by_id_dir[0] != '/' || d->sys_dir[0] != '/') {
		set_why(why, whylen, "disk: by_id_dir and sys_block_dir must be absolute");
		goto out;
	}
	if (o->audit_max > AUDIT_MAX_ENTRIES) {
		set_why(why, whylen, "disk: audit_max over %d", AUDIT_MAX_ENTRIES);
		goto out;
	}
	d->audit_max = o->audit_max ? o->audit_max : AUDIT_MAX_DEFAULT;
	d->cache_ms = o->cache_ms > 0 ? o->cache_ms : DEF_CACHE_MS;
	d->budget_ms = o->probe_budget_ms > 0 ? o->probe_budget_ms : DEF_BUDGET_MS;
	d->ttl_s = o->pending_ttl_s > 0 ? o->pending_ttl_s : DEF_TTL_S;
	if (d->ttl_s > DISK_PENDING_MAX_TTL_S || d->cache_ms > 3600000 || d->budget_ms > 60000) {
		set_why(why, whylen, "disk: pending_ttl_s, cache_ms or probe_budget_ms out of range");
		goto out;
	}
	d->now = o->now;
	po = *o->priv;
	r = priv_new(&po, &d->pm);
	if (r == 0) {
		long t = o->probe_timeout_ms > 0 ? o->probe_timeout_ms : DEF_PROBE_TIMEOUT_MS;
		if (po.timeout_ms == 0 || po.timeout_ms > t)
			po.timeout_ms = t;
		r = priv_new(&po, &d->pp);
	}
	if (r) {
		set_why(why, whylen, "disk: privileged backend options: %s", fh_strerror(r));
		r = r == FH_ERR_NOMEM ? r : FH_ERR_CONFIG;
		goto out;
	}
	if (o->pve) {
		struct pve_opts vo = *o->pve;
		struct pve_err pe;
		if (vo.request_timeout_ms == 0 || vo.request_timeout_ms > PVE_TIMEOUT_MS)
			vo.request_timeout_ms = PVE_TIMEOUT_MS;
		r = pve_client_new(&vo, &d->pve, &pe);
		if (r) {
			set_why(why, whylen, "disk: proxmox options: %s", pe.reason);
			goto out;
		}
	}
	d->env.priv = d->pp;
	d->env.mount_root = d->mount_root;
	d->env.by_id_dir = d->by_id_dir;
	d->env.zfs_kstat_dir = d->zfs_dir;
	d->env.sys_block_dir = d->sys_dir;
	d->env.include_loop = o->include_loop;
	*out = d;
	d = NULL;
	r = 0;
out:
	disk_free(d);
	return r;
}

void disk_free(struct disk *d)
{
	if (!d)
		return;
	priv_free(d->pp);
	priv_free(d->pm);
	pve_client_free(d->pve);
	dprobe_free(&d->cache);
	free(d->stor);
	pthread_mutex_destroy(&d->cache_mu);
	pthread_mutex_destroy(&d->probe_mu);
	pthread_mutex_destroy(&d->mut_mu);
	pthread_mutex_destroy(&d->pve_mu);
	free(d);
}

void disk_invalidate(struct disk *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->cache_mu);
	d->have_cache = false;
	d->gen++;
	pthread_mutex_unlock(&d->cache_mu);
}

/* ------------------------------------------- guests' direct device use */

#define GREF_MAX 4096

/* A host device path a guest's config names directly. */
struct gref {
	int vmid;
	char key[16];
	char path[256];             /* normalized, "/dev" or below it */
};

/* Config keys whose value names a volume: LXC rootfs, mpN, devN, unusedN;
 * QEMU scsiN, sataN, virtioN, ideN, efidiskN, tpmstateN, unusedN. */
static bool volume_key(bool qemu, const char *k)
{
	static const char *const lxc[] = { "mp", "dev", "unused", NULL };
	static const char *const vm[] = { "scsi", "sata", "virtio", "ide", "efidisk", "tpmstate", "unused", NULL };
	const char *const *pre = qemu ? vm : lxc;
	size_t i, n;

	if (!qemu && !strcmp(k, "rootfs"))
		return true;
	for (i = 0; pre[i]; i++) {
		n = strlen(pre[i]);
		if (!strncmp(k, pre[i], n) && k[n] && strlen(k + n) <= 3 && strspn(k + n, "0123456789") == strlen(k + n))
			return true;
	}
	return false;
}

/* The volume of a property string: its first field when that has no '=',
 * else the value of volume= or path=; "" when none or too long. */
static void vol_of(const char *val, char *out, size_t cap)
{
	const char *p = val;
	bool first = true;

	out[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, ","), vl = 0;
		const char *eq = memchr(p, '=', n), *v = NULL;

		if (first && !eq) {
			v = p;
			vl = n;
		} else if (eq && (((size_t)(eq - p) == 6 && !strncmp(p, "volume", 6)) ||
				  ((size_t)(eq - p) == 4 && !strncmp(p, "path", 4)))) {
			v = eq + 1;
			vl = n - (size_t)(eq - p) - 1;
		}
		if (v) {
			if (vl < cap) {
				memcpy(out, v, vl);
				out[vl] = '\0';
			}
			return;
		}
		first = false;
		p += n;
		if (*p == ',')
			p++;
	}
}

/* Appends the /dev paths one guest's config names to *g (*n entries). */
static int refs_of_guest(struct disk *d, bool qemu, int vmid, struct gref **g, size_t *n, char *why, size_t whylen)
{
	struct pve_guest_config cfg;
	struct pve_err pe;
	size_t k;
	int r;

	memset(&cfg, 0, sizeof cfg);
	pthread_mutex_lock(&d->pve_mu);
	r = qemu ? pve_qemu_config(d->pve, vmid, &cfg, &pe) : pve_guest_config(d->pve, vmid, &cfg, &pe);
	pthread_mutex_unlock(&d->pve_mu);
	if (r) {
		set_why(why, whylen, "%s %d config (which devices it uses): %s", qemu ? "VM" : "guest", vmid,
			fh_strerror(r));
		return r;
	}
	for (k = 0; k < cfg.n && !r; k++) {
		char vol[PATH_MAX];
		struct gref *ng2;

		if (!cfg.kv[k].key || !cfg.kv[k].value || !volume_key(qemu, cfg.kv[k].key))
			continue;
		vol_of(cfg.kv[k].value, vol, 256);
		if (vol[0] != '/')
			continue;
		dprobe_normalize(vol);
		if (strcmp(vol, "/dev") != 0 && strncmp(vol, "/dev/", 5) != 0)
			continue;
		if (*n == GREF_MAX) {
			set_why(why, whylen, "guests name over %d devices", GREF_MAX);
			r = FH_ERR_TOOBIG;
			break;
		}
		ng2 = realloc(*g, (*n + 1) * sizeof **g);
		if (!ng2) {
			r = FH_ERR_NOMEM;
			break;
		}
		*g = ng2;
		(*g)[*n].vmid = vmid;
		dprobe_copy_str((*g)[*n].key, sizeof (*g)[*n].key, cfg.kv[k].key);
		dprobe_copy_str((*g)[*n].path, sizeof (*g)[*n].path, vol);
		(*n)++;
	}
	pve_guest_config_free(&cfg);
	return r;
}

/* Every /dev path the guests' configs name: LXC devN, and rootfs, mpN and
 * unusedN whose volume is a device; QEMU disks passed through (scsiN,
 * sataN, virtioN, ideN, ... : /dev/...). *out: malloc'd, caller frees. */
static int guest_refs(struct disk *d, struct gref **out, size_t *nout, char *why, size_t whylen)
{
	struct gref *g = NULL;
	size_t n = 0;
	int r = 0, kind;

	*out = NULL;
	*nout = 0;
	if (!d->pve)
		return 0;
	for (kind = 0; kind < 2 && !r; kind++) {
		struct pve_guest *gs = NULL;
		struct pve_err pe;
		size_t ng = 0, i;

		pthread_mutex_lock(&d->pve_mu);
		r = kind ? pve_list_qemu(d->pve, &gs, &ng, &pe) : pve_list_lxc(d->pve, &gs, &ng, &pe);
		pthread_mutex_unlock(&d->pve_mu);
		if (r) {
			set_why(why, whylen, "cannot list %s to see which devices they use: %s",
				kind ? "VMs" : "guests", fh_strerror(r));
			break;
		}
		for (i = 0; i < ng && !r; i++)
			r = refs_of_guest(d, kind == 1, gs[i].vmid, &g, &n, why, whylen);
		free(gs);
	}
	if (r) {
		free(g);
		return r;
	}
	*out = g;
	*nout = n;
	return 0;
}

/* Taints the tree of every device ref names, after resolving udev link
 * names (by_id_dir for /dev/disk/by-id, the filesystem UUIDs lsblk and
 * blkid saw for /dev/disk/by-uuid, the link itself otherwise). */
static void apply_ref(const struct disk *d, struct dprobe *p, const struct gref *ref)
{
	char why[160], dir[256], res[300];
	const char *base;
	size_t k;
	int i;

	snprintf(why, sizeof why, "used directly by guest %d (%s)", ref->vmid, ref->key);
	if (!strcmp(ref->path, "/dev")) {
		for (k = 0; k < p->n; k++)
			dprobe_taint_tree(p, k, why);
		return;
	}
	i = dprobe_find(p, ref->path);
	if (i >= 0) {
		dprobe_taint_tree(p, (size_t)i, why);
		return;
	}
	if (!strncmp(ref->path, "/dev/disk/by-uuid/", 18)) {
		const char *u = ref->path + 18;
		for (k = 0; k < p->n; k++)
			if (*u && (!strcasecmp(p->devs[k].ls_uuid, u) || !strcasecmp(p->devs[k].uuid, u)))
				dprobe_taint_tree(p, k, why);
	}
	if (!strncmp(ref->path, "/dev/disk/by-id/", 16) &&
	    dprobe_resolve_byid(d->by_id_dir, ref->path + 16, res, sizeof res) == 0 && (i = dprobe_find(p, res)) >= 0)
		dprobe_taint_tree(p, (size_t)i, why);
	/* the host's own link (/dev/disk/by-path/..., /dev/mapper/...) */
	base = strrchr(ref->path, '/');
	if ((size_t)(base - ref->path) < sizeof dir) {
		memcpy(dir, ref->path, (size_t)(base - ref->path));
		dir[base - ref->path] = '\0';
		if (dprobe_resolve_byid(dir, base + 1, res, sizeof res) == 0 && (i = dprobe_find(p, res)) >= 0)
			dprobe_taint_tree(p, (size_t)i, why);
	}
}

static void apply_refs(const struct disk *d, struct dprobe *p, const struct gref *g, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		apply_ref(d, p, &g[i]);
}

/* A fresh inventory (lsblk, by-id names) with the guests' direct device
 * use applied; *refs (caller frees) keeps that use for applying again
 * after deep probes (by-uuid names of filesystems only blkid saw). */
static int inventory(struct disk *d, struct dprobe *p, struct gref **refs, size_t *nrefs, char *why,
		     size_t whylen)
{
	int r;

	*refs = NULL;
	*nrefs = 0;
	r = dprobe_inventory(&d->env, p, why, whylen);
	if (r)
		return r;
	r = guest_refs(d, refs, nrefs, why, whylen);
	if (r)
		return r;
	apply_refs(d, p, *refs, *nrefs);
	return 0;
}

/* ------------------------------------------------------------- probing */

/* A full probe: inventory, deep probe of every offered device within the
 * budget, Proxmox storages. */
static int probe_all(struct disk *d, struct dprobe *p, struct pve_storage **stor, size_t *nstor, char *why,
		     size_t whylen)
{
	int64_t deadline = dprobe_now_ms() + d->budget_ms;
	size_t i;
	int r;

	struct gref *refs = NULL;
	size_t nrefs = 0;

	*stor = NULL;
	*nstor = 0;
	r = inventory(d, p, &refs, &nrefs, why, whylen);
	if (r) {
		free(refs);
		return r;
	}
	for (i = 0; i < p->n; i++)
		if (p->devs[i].offered)
			dprobe_deep(&d->env, p, i, deadline);
	apply_refs(d, p, refs, nrefs);
	free(refs);
	if (d->pve) {
		struct pve_err pe;
		pthread_mutex_lock(&d->pve_mu);
		if (pve_node_storage(d->pve, stor, nstor, &pe) != 0) {
			*stor = NULL;
			*nstor = 0;
		}
		pthread_mutex_unlock(&d->pve_mu);
	}
	return 0;
}

static int copy_stor(struct pve_storage **dst, size_t *nd, const struct pve_storage *src, size_t n)
{
	*dst = NULL;
	*nd = 0;
	if (!n)
		return 0;
	*dst = malloc(n * sizeof **dst);
	if (!*dst)
		return FH_ERR_NOMEM;
	memcpy(*dst, src, n * sizeof **dst);
	*nd = n;
	return 0;
}

/* Copies the cached inventory when there is one (fresh_only: younger than
 * cache_ms); true then, with *r the copy's result. */
static bool cached_copy(struct disk *d, bool fresh_only, struct dprobe *p, struct pve_storage **stor,
			size_t *nstor, int *r)
{
	bool have;

	pthread_mutex_lock(&d->cache_mu);
	have = d->have_cache && (!fresh_only || dprobe_now_ms() - d->cache_at < d->cache_ms);
	if (have) {
		*r = dprobe_copy(p, &d->cache);
		if (!*r)
			*r = copy_stor(stor, nstor, d->stor, d->nstor);
	}
	pthread_mutex_unlock(&d->cache_mu);
	return have;
}

/* The inventory for a reader: fresh cache, a stale one while another
 * thread probes, or a new probe. Caller frees p and *stor. */
static int snapshot(struct disk *d, struct dprobe *p, struct pve_storage **stor, size_t *nstor, char *why,
		    size_t whylen)
{
	struct pve_storage *ns = NULL;
	size_t nn = 0;
	uint64_t gen;
	int r;

	for (;;) {
		/* a fresh answer; or, while someone probes, a stale one now beats waiting */
		if (cached_copy(d, true, p, stor, nstor, &r))
			return r;
		if (pthread_mutex_trylock(&d->probe_mu) == 0)
			break;
		if (cached_copy(d, false, p, stor, nstor, &r))
			return r;
		pthread_mutex_lock(&d->probe_mu);
		pthread_mutex_unlock(&d->probe_mu);
	}
	pthread_mutex_lock(&d->cache_mu);
	gen = d->gen;
	pthread_mutex_unlock(&d->cache_mu);
	r = probe_all(d, p, &ns, &nn, why, whylen);
	if (r == 0) {
		pthread_mutex_lock(&d->cache_mu);
		if (gen == d->gen && dprobe_copy(&d->cache, p) == 0) {
			free(d->stor);
			d->stor = NULL;
			d->nstor = 0;
			if (copy_stor(&d->stor, &d->nstor, ns, nn) == 0) {
				d->have_cache = true;
				d->cache_at = dprobe_now_ms();
			}
		}
		pthread_mutex_unlock(&d->cache_mu);
		*stor = ns;
		*nstor = nn;
	} else {
		free(ns);
	}
	pthread_mutex_unlock(&d->probe_mu);
	return r;
}

/* A guest's mount points (mpN) from its Proxmox config. */
static void mp_parse(const char *val, struct gmp *m)
{
	const char *p = val;
	bool first = true;

	m->volume[0] = m->mp[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		if (first && !eq) {
			dprobe_copy_str(m->volume, sizeof m->volume, "");
			if (n < sizeof m->volume) {
				memcpy(m->volume, p, n);
				m->volume[n] = '\0';
			}
		} else if (eq && (size_t)(eq - p) == 6 && !strncmp(p, "volume", 6)) {
			size_t vl = n - 7;
			if (vl < sizeof m->volume) {
				memcpy(m->volume, eq + 1, vl);
				m->volume[vl] = '\0';
			}
		} else if (eq && (size_t)(eq - p) == 2 && !strncmp(p, "mp", 2)) {
			size_t vl = n - 3;
			if (vl < sizeof m->mp) {
				memcpy(m->mp, eq + 1, vl);
				m->mp[vl] = '\0';
			}
		}
		first = false;
		p += n;
		if (*p == ',')
			p++;
	}
}

static int mp_index(const char *key)
{
	int v = 0;
	const char *p;

	if (strncmp(key, "mp", 2) != 0 || !key[2] || strlen(key) > 5)
		return -1;
	for (p = key + 2; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v < MP_MAX ? v : -1;
}

/* *out: calloc'd, MP_MAX slots at most; caller frees. */
static int guest_mps(struct disk *d, int vmid, struct gmp **out, size_t *n, char *why, size_t whylen)
{
	struct pve_guest_config cfg;
	struct pve_err pe;
	struct gmp *m;
	size_t i;
	int r;

	*out = NULL;
	*n = 0;
	if (!d->pve)
		return FH_ERR_UNSUPPORTED;
	memset(&cfg, 0, sizeof cfg);
	pthread_mutex_lock(&d->pve_mu);
	r = pve_guest_config(d->pve, vmid, &cfg, &pe);
	pthread_mutex_unlock(&d->pve_mu);
	if (r) {
		set_why(why, whylen, "guest %d config: %s", vmid, fh_strerror(r));
		return r;
	}
	m = calloc(MP_MAX, sizeof *m);
	if (!m) {
		pve_guest_config_free(&cfg);
		return FH_ERR_NOMEM;
	}
	for (i = 0; i < cfg.n && *n < MP_MAX; i++) {
		int k = mp_index(cfg.kv[i].key);
		if (k < 0 || !cfg.kv[i].value)
			continue;
		m[*n].idx = k;
		mp_parse(cfg.kv[i].value, &m[*n]);
		(*n)++;
	}
	pve_guest_config_free(&cfg);
	*out = m;
	return 0;
}

/* ------------------------------------------------------------- GET /disks */

static bool is_fs(const struct dprobe_dev *v)
{
	return v->uuid[0] && !strcmp(v->usage, "filesystem");
}

static const char *storage_kind(const char *type)
{
	static const char *const net[] = { "nfs", "cifs", "pbs", "glusterfs", "cephfs", "iscsi", "iscsidirect",
					   "rbd", NULL };

	if (in_list(type, net))
		return "network";
	if (!strcmp(type, "lvm") || !strcmp(type, "lvmthin"))
		return "lvm";
	return NULL;
}

static int render_dev(struct buf *b, const struct dprobe *p, size_t i, const struct gmp *mps, size_t nmps,
		      bool comma)
{
	const struct dprobe_dev *v = &p->devs[i], *root = &p->devs[v->root];
	const char *type, *state = "available", *mount = "", *cls;
	char durable[320];
	size_t k;
	int r;

	if (is_fs(v))
		type = (!strcmp(root->tran, "usb") || root->rm) ? "usb" : "local-dir";
	else
		type = "disk";
	cls = !strcmp(type, "usb") || root->rota ? "slow" : "fast";
	if (v->host_mount[0]) {
		state = "mounted";
		mount = v->host_mount;
		for (k = 0; k < nmps; k++)
			if (!strcmp(mps[k].volume, v->host_mount)) {
				state = "assigned";
				mount = mps[k].mp;
				break;
			}
	}
	if (is_fs(v))
		snprintf(durable, sizeof durable, "uuid:%s", v->uuid);
	else if (v->byid[0])
		snprintf(durable, sizeof durable, "byid:%s", v->byid);
	else
		durable[0] = '\0';
	r = buf_printf(b, "%s{", comma ? "," : "");
	if (!r) r = jkv_str(b, false, "name", v->name);
	if (!r) r = jkv_str(b, true, "type", type);
	if (!r) r = jkv_str(b, true, "state", state);
	if (!r) r = jkv_str(b, true, "backing_device", v->path);
	if (!r) r = jkv_str(b, true, "mount_path", mount);
	if (!r) r = jkv_str(b, true, "class", cls);
	if (!r) r = jkv_bool(b, true, "data_bearing", v->data_bearing);
	if (!r) r = jkv_str(b, true, "data_reason", v->reason);
	if (!r) r = jkv_str(b, true, "durable_id", durable);
	if (!r) r = buf_append(b, "}", 1);
	return r;
}

static int render_storage(struct buf *b, const struct pve_storage *s, const char *kind, bool comma)
{
	char reason[160], durable[80];
	int r;

	snprintf(reason, sizeof reason, "Proxmox storage (%s); not assignable", s->type);
	snprintf(durable, sizeof durable, "pve:%s", s->storage);
	r = buf_printf(b, "%s{", comma ? "," : "");
	if (!r) r = jkv_str(b, false, "name", s->storage);
	if (!r) r = jkv_str(b, true, "type", kind);
	if (!r) r = jkv_str(b, true, "state", !s->enabled ? "disabled" : s->active ? "active" : "inactive");
	if (!r) r = jkv_str(b, true, "backing_device", "");
	if (!r) r = jkv_str(b, true, "mount_path", "");
	if (!r) r = jkv_str(b, true, "class", !strcmp(kind, "network") ? "slow" : "fast");
	if (!r) r = jkv_bool(b, true, "data_bearing", true);
	if (!r) r = jkv_str(b, true, "data_reason", reason);
	if (!r) r = jkv_str(b, true, "durable_id", durable);
	if (!r) r = buf_append(b, "}", 1);
	return r;
}

static int answer_null(int *status, int code, struct buf *data, char *err, size_t errlen, const char *msg)
{
	*status = code;
	buf_reset(data);
	set_why(err, errlen, "%s", msg);
	return buf_appendz(data, "null");
}

int disk_list(struct disk *d, int vmid, int *status, struct buf *data, char *err, size_t errlen)
{
	struct dprobe p = { NULL, 0 };
	struct pve_storage *stor = NULL;
	struct gmp *mps = NULL;
	size_t nstor = 0, nmps = 0, i;
	char why[256] = "";
	bool comma = false;
	int r;

	if (!d || !status || !data)
		return FH_ERR_INVAL;
	r = snapshot(d, &p, &stor, &nstor, why, sizeof why);
	if (r) {
		r = answer_null(status, 503, data, err, errlen, why[0] ? why : "disk probe failed");
		goto out;
	}
	if (d->pve)
		(void)guest_mps(d, vmid, &mps, &nmps, why, sizeof why); /* unknown: nothing shows assigned */
	buf_reset(data);
	r = buf_printf(data, "{\"vmid\":%d,\"disks\":[", vmid);
	for (i = 0; !r && i < p.n; i++) {
		if (!p.devs[i].offered)
			continue;
		r = render_dev(data, &p, i, mps, nmps, comma);
		comma = true;
	}
	for (i = 0; !r && i < nstor; i++) {
		const char *kind = storage_kind(stor[i].type);
		if (!kind)
			continue;
		r = render_storage(data, &stor[i], kind, comma);
		comma = true;
	}
	if (!r)
		r = buf_appendz(data, "]}");
	if (r)
		goto out;
	*status = 200;
	set_why(err, errlen, "%s", "");
out:
	free(mps);
	free(stor);
	dprobe_free(&p);
	return r;
}

/* ------------------------------------------------------------- pending */

static int pending_encode(const struct disk_pending *pd, struct buf *b)
{
	int r = buf_appendz(b, "{");

	if (!r) r = jkv_str(b, false, "durable_id", pd->durable_id);
	if (!r) r = jkv_str(b, true, "fstype", pd->fstype);
	if (!r) r = jkv_str(b, true, "dev", pd->dev);
	if (!r) r = buf_printf(b, ",\"size\":%llu", (unsigned long long)pd->size);
	if (!r) r = jkv_str(b, true, "serial", pd->serial);
	if (!r) r = jkv_int(b, true, "vmid", pd->vmid);
	if (!r) r = jkv_int(b, true, "created_at", (long long)pd->created_at);
	if (!r) r = jkv_int(b, true, "expires_at", (long long)pd->expires_at);
	if (!r) r = jkv_bool(b, true, "running", pd->running);
	if (!r) r = buf_appendz(b, "}");
	return r;
}

static int pending_decode(const void *val, size_t n, struct disk_pending *pd)
{
	struct json_limits lim = { PENDING_VAL_MAX, 2, false };
	struct json *j = NULL;
	int64_t v;
	uint64_t u;
	int r = FH_ERR_DECODE;

	memset(pd, 0, sizeof *pd);
	if (json_parse(val, n, &lim, &j, NULL, 0) != 0)
		return FH_ERR_DECODE;
	if (json_strcpy(json_get(j, "durable_id"), pd->durable_id, sizeof pd->durable_id) ||
	    json_strcpy(json_get(j, "fstype"), pd->fstype, sizeof pd->fstype) ||
	    json_strcpy(json_get(j, "dev"), pd->dev, sizeof pd->dev) ||
	    json_strcpy(json_get(j, "serial"), pd->serial, sizeof pd->serial) ||
	    json_uint(json_get(j, "size"), &u) || json_bool(json_get(j, "running"), &pd->running))
		goto out;
	pd->size = u;
	if (json_int_strict(json_get(j, "vmid"), &v) || v < 0 || v > 999999999)
		goto out;
	pd->vmid = (int)v;
	if (json_int_strict(json_get(j, "created_at"), &pd->created_at) ||
	    json_int_strict(json_get(j, "expires_at"), &pd->expires_at) || !in_list(pd->fstype, mkfs_types))
		goto out;
	r = 0;
out:
	json_free(j);
	return r;
}

int disk_pending_get(struct disk *d, const char *durable_id, struct disk_pending *out)
{
	struct store_txn *t = NULL;
	const void *v;
	size_t vl, kl;
	int r;

	if (!d || !durable_id || !out || !(kl = strlen(durable_id)) || kl > STORE_KEY_MAX)
		return FH_ERR_INVAL;
	r = store_txn_begin(d->st, false, &t);
	if (r)
		return r;
	r = store_get(t, STORE_DB_PENDING, durable_id, kl, &v, &vl);
	if (r == 0)
		r = pending_decode(v, vl, out);
	store_txn_abort(t);
	return r;
}

static int pending_put(struct disk *d, const struct disk_pending *pd)
{
	struct store_txn *t = NULL;
	struct buf b;
	int r;

	buf_init(&b, PENDING_VAL_MAX);
	r = pending_encode(pd, &b);
	if (!r)
		r = store_txn_begin(d->st, true, &t);
	if (!r) {
		store_put(t, STORE_DB_PENDING, pd->durable_id, strlen(pd->durable_id), b.data, b.len);
		r = store_txn_commit(t);
	}
	buf_free(&b);
	return r;
}

static int pending_del(struct disk *d, const char *durable_id)
{
	struct store_txn *t = NULL;
	int r = store_txn_begin(d->st, true, &t);

	if (r)
		return r;
	r = store_del(t, STORE_DB_PENDING, durable_id, strlen(durable_id));
	if (r && r != FH_ERR_NOT_FOUND) {
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t);
}

int disk_pending_prune(struct disk *d, int64_t now, size_t *removed)
{
	struct store_txn *t = NULL;
	char key[STORE_KEY_MAX + 2];
	size_t klen = 0, gone = 0;
	int r;

	if (removed)
		*removed = 0;
	if (!d)
		return FH_ERR_INVAL;
	r = store_txn_begin(d->st, true, &t);
	if (r)
		return r;
	for (;;) {
		const void *k, *v;
		size_t kl, vl;
		struct disk_pending pd;
		int g = store_seek(t, STORE_DB_PENDING, key, klen, &k, &kl, &v, &vl);
		if (g == FH_ERR_NOT_FOUND)
			break;
		if (g) {
			r = g;
			break;
		}
		memcpy(key, k, kl);
		key[kl] = '\0';
		klen = kl + 1; /* seek just past this key */
		if (pending_decode(v, vl, &pd) != 0 || pd.expires_at <= now) {
			r = store_del(t, STORE_DB_PENDING, key, kl);
			if (r)
				break;
			gone++;
		}
	}
	if (r) {
		store_txn_abort(t);
		return r;
	}
	r = store_txn_commit(t);
	if (!r && removed)
		*removed = gone;
	return r;
}

/* ---------------------------------------------------------------- audit */

/* One audit record of a disk mutation's outcome, in its own transaction.
 * status: < 300 executed; 403 pending_signature (a data-bearing format);
 * other 4xx rejected; 5xx failed. A failure to write is logged and never
 * changes the answer. */
static void audit_note(struct disk *d, const char *op, int vmid, int status, const char *what, const char *err)
{
	struct audit_rec a;
	struct store_txn *t = NULL;
	char reason[AUDIT_REASON_MAX + 1];
	int r;

	memset(&a, 0, sizeof a);
	a.at = now_s(d);
	a.op = op;
	a.guest_id = vmid > 0 ? vmid : AUDIT_NO_GUEST;
	if (status < 300) {
		a.decision = AUDIT_BENIGN;
		a.outcome = TASK_OUT_EXECUTED;
	} else if (status == 403) {
		a.decision = AUDIT_PENDING_SIGNATURE;
		a.outcome = TASK_OUT_PENDING_SIGNATURE;
	} else if (status < 500) {
		a.decision = AUDIT_REJECTED;
		a.outcome = TASK_OUT_REJECTED;
	} else {
		a.decision = AUDIT_BENIGN;
		a.outcome = TASK_OUT_FAILED;
	}
	/* longer reasons are cut, as the audit log would */
	if (snprintf(reason, sizeof reason, "%d %s%s%s", status, what ? what : "",
		     what && *what && err && *err ? ": " : "", err ? err : "") < 0)
		reason[0] = '\0';
	a.reason = reason;
	r = store_txn_begin(d->st, true, &t);
	if (!r) {
		r = audit_append(t, &a, d->audit_max, NULL);
		if (r)
			store_txn_abort(t);
		else
			r = store_txn_commit(t);
	}
	if (r) {
		char v[24], st[16];
		snprintf(v, sizeof v, "%d", vmid);
		snprintf(st, sizeof st, "%d", status);
		log_event(LOG_WARN, "disk.audit_failed", "op", op, "vmid", v, "status", st, "error", fh_strerror(r),
			  NULL);
	}
}

/* --------------------------------------------------------- POST format */

static int format_result(struct buf *b, int vmid, const char *device, bool formatted, bool data_bearing,
			 const char *reason, const struct disk_pending *pd, const char *host_id)
{
	int r;

	buf_reset(b);
	r = buf_printf(b, "{\"vmid\":%d", vmid);
	if (!r) r = jkv_str(b, true, "device", device);
	if (!r) r = jkv_bool(b, true, "formatted", formatted);
	if (!r) r = jkv_bool(b, true, "data_bearing", data_bearing);
	if (!r) r = jkv_str(b, true, "reason", reason);
	if (!r && pd) {
		r = buf_appendz(b, ",\"pending_op\":{\"op\":\"storage_wipe\"");
		if (!r) r = jkv_str(b, true, "host_scope", host_id);
		if (!r) r = jkv_str(b, true, "durable_id", pd->durable_id);
		if (!r) r = jkv_str(b, true, "fstype", pd->fstype);
		if (!r) r = buf_appendz(b, "}");
	}
	if (!r)
		r = buf_appendz(b, "}");
	return r;
}

/* Finds the device named by /dev/NAME, NAME or byid:NAME in p. */
static int find_device(const struct disk *d, const struct dprobe *p, const char *dev)
{
	char path[300];

	if (!strncmp(dev, "byid:", 5)) {
		if (dprobe_resolve_byid(d->by_id_dir, dev + 5, path, sizeof path) != 0)
			return -1;
	} else if (!strncmp(dev, "/dev/", 5)) {
		dprobe_copy_str(path, sizeof path, dev);
	} else {
		set_why(path, sizeof path, "/dev/%s", dev);
	}
	return dprobe_find(p, path);
}

static bool valid_device_arg(const char *s)
{
	size_t n = strlen(s), i;
	const char *b = s;

	if (!strncmp(s, "byid:", 5))
		return dprobe_valid_byid(s + 5);
	if (!strncmp(s, "/dev/", 5))
		b = s + 5;
	n = strlen(b);
	if (n == 0 || n > 120 || strstr(b, "..") || b[0] == '/' || b[n - 1] == '/' || strstr(b, "//"))
		return false;
	for (i = 0; i < n; i++)
		if (!is_alnum(b[i]) && !strchr("._:-/", b[i]))
			return false;
	return true;
}

/* Is a partition of device i mounted by the agent? */
static bool child_mounted(const struct dprobe *p, int i)
{
	size_t k;

	for (k = 0; k < p->n; k++)
		if (p->devs[k].parent == i && p->devs[k].host_mount[0])
			return true;
	return false;
}

/* mkfs's device argument when it is a by-id link: what the privileged
 * backend and its sudoers rule accept (/dev/, [A-Za-z0-9/._:-], no dot
 * segment, no "//"). */
static bool mkfs_path_ok(const char *s)
{
	size_t i;

	if (strncmp(s, "/dev/", 5) != 0 || strstr(s, "..") || strstr(s, "//") || strstr(s, "/./") || strlen(s) > 250)
		return false;
	for (i = 0; s[i]; i++)
		if (!is_alnum(s[i]) && !strchr("/._:-", s[i]))
			return false;
	return true;
}

/* Right before mkfs on a device probed blank (was): a fresh lsblk (with the
 * guests' device use) must show it still offered, unmounted, without
 * partitions, holders or new content, with the probed size and serial,
 * and its by-id name still naming it. dev gets the path mkfs is to use:
 * by_id_dir/NAME when it has one and that is a /dev path, else /dev/NAME.
 * 0, or the HTTP status to answer (409, 500) with why. */
static int recheck_blank(struct disk *d, const struct dprobe_dev *was, char *dev, size_t cap, char *why,
			 size_t whylen)
{
	struct dprobe q = { NULL, 0 };
	struct gref *refs = NULL;
	size_t nrefs = 0;
	char pw[256] = "", path[300], holder[64];
	const struct dprobe_dev *now;
	int k, h, st = 0;

	if (inventory(d, &q, &refs, &nrefs, pw, sizeof pw) != 0) {
		set_why(why, whylen, "cannot probe devices again before mkfs: %s", pw);
		st = 500;
		goto out;
	}
	k = dprobe_find(&q, was->path);
	if (k < 0) {
		set_why(why, whylen, "%s is gone; nothing was written", was->path);
		st = 409;
		goto out;
	}
	now = &q.devs[k];
	if (!now->offered || now->nmounts || now->nchildren || now->size != was->size ||
	    strcmp(now->serial, was->serial) != 0 || strcmp(now->byid, was->byid) != 0 ||
	    strcmp(now->ls_fstype, was->ls_fstype) != 0 || strcmp(now->ls_pttype, was->ls_pttype) != 0) {
		set_why(why, whylen, "%s changed since it was probed; nothing was written", was->path);
		st = 409;
		goto out;
	}
	h = dprobe_holders(&d->env, now->name, holder, sizeof holder);
	if (h) {
		set_why(why, whylen, h > 0 ? "%s is held by %s; nothing was written" : "%s: holders unreadable%s",
			was->path, h > 0 ? holder : "");
		st = h > 0 ? 409 : 500;
		goto out;
	}
	set_why(dev, cap, "%s", was->path);
	if (was->byid[0]) {
		char byid_path[PATH_MAX + 256];
		if (dprobe_resolve_byid(d->by_id_dir, was->byid, path, sizeof path) != 0 || strcmp(path, was->path) != 0) {
			set_why(why, whylen, "by-id name %s no longer names %s; nothing was written", was->byid,
				was->path);
			st = 409;
			goto out;
		}
		snprintf(byid_path, sizeof byid_path, "%s/%s", d->by_id_dir, was->byid);
		if (mkfs_path_ok(byid_path) && strlen(byid_path) < cap)
			set_why(dev, cap, "%s", byid_path);
	}
out:
	free(refs);
	dprobe_free(&q);
	return st;
}

static const char *const format_keys[] = { "device", "fstype" };

static int format_do(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		     char *err, size_t errlen, char *what, size_t wl)
{
	char v[2][512], why[256] = "", reason[320], mkdev[300];
	struct dprobe p = { NULL, 0 };
	struct gref *refs = NULL;
	size_t nrefs = 0;
	struct priv_err pe;
	struct dprobe_dev *dv;
	int i, r, st;

	if (!d || !status || !data)
		return FH_ERR_INVAL;
	if (parse_body(body, n, format_keys, v, 2, why, sizeof why) != 0 || !v[0][0] ||
	    !valid_device_arg(v[0])) {
		if (!why[0])
			set_why(why, sizeof why, "device must be /dev/NAME, NAME or byid:NAME");
		*status = 400;
		set_why(err, errlen, "%s", why);
		return format_result(data, vmid, valid_device_arg(v[0]) ? v[0] : "", false, false, why, NULL, "");
	}
	set_why(what, wl, "device %.200s", v[0]);
	if (!in_list(v[1], mkfs_types)) {
		*status = 400;
		set_why(err, errlen, "fstype must be one of ext4, xfs, btrfs, vfat");
		return format_result(data, vmid, v[0], false, false, err, NULL, "");
	}
	set_why(what, wl, "device %.200s fstype %s", v[0], v[1]);
	pthread_mutex_lock(&d->mut_mu);
	/* a fresh look, never the cache: the decision to write is made now */
	r = inventory(d, &p, &refs, &nrefs, why, sizeof why);
	if (r) {
		*status = 500;
		set_why(err, errlen, "cannot probe devices: %s", why);
		r = format_result(data, vmid, v[0], false, false, err, NULL, "");
		goto out;
	}
	i = find_device(d, &p, v[0]);
	if (i < 0 || !p.devs[i].offered) {
		*status = 404;
		if (i < 0)
			set_why(err, errlen, "no such device");
		else
			set_why(err, errlen, "device is not offered (%s)", p.devs[p.devs[i].root].excl);
		r = format_result(data, vmid, v[0], false, false, err, NULL, "");
		goto out;
	}
	dv = &p.devs[i];
	if (dv->host_mount[0] || child_mounted(&p, i)) {
		*status = 409;
		set_why(err, errlen, "device is mounted by the agent; eject it first");
		r = format_result(data, vmid, v[0], false, true, err, NULL, "");
		goto out;
	}
	/* the whole disk: a boot partition or a pool member beside it (or
	 * below it) takes it out of reach */
	dprobe_deep_tree(&d->env, &p, (size_t)i, dprobe_now_ms() + d->budget_ms);
	apply_refs(d, &p, refs, nrefs);
	if (!dv->offered) {
		*status = 404;
		set_why(err, errlen, "device is not offered (%s)", p.devs[dv->root].excl);
		r = format_result(data, vmid, v[0], false, false, err, NULL, "");
		goto out;
	}
	if (!dv->probed) {
		*status = 500;
		set_why(err, errlen, "%s", dv->reason);
		r = format_result(data, vmid, v[0], false, false, err, NULL, "");
		goto out;
	}
	if (dv->data_bearing) {
		struct disk_pending pd;
		if (!dv->byid[0]) {
			*status = 409;
			set_why(err, errlen, "device is data-bearing (%s) and has no /dev/disk/by-id name to bind a wipe to",
				dv->reason);
			r = format_result(data, vmid, v[0], false, true, err, NULL, "");
			goto out;
		}
		memset(&pd, 0, sizeof pd);
		snprintf(pd.durable_id, sizeof pd.durable_id, "byid:%s", dv->byid);
		dprobe_copy_str(pd.fstype, sizeof pd.fstype, v[1]);
		dprobe_copy_str(pd.dev, sizeof pd.dev, dv->path);
		dprobe_copy_str(pd.serial, sizeof pd.serial, dv->serial);
		pd.size = dv->size;
		pd.vmid = vmid;
		pd.created_at = now_s(d);
		pd.expires_at = pd.created_at + d->ttl_s;
		r = pending_put(d, &pd);
		if (r) {
			*status = 503;
			set_why(err, errlen, "device is data-bearing; the pending op could not be recorded: %s",
				fh_strerror(r));
			r = format_result(data, vmid, v[0], false, true, err, NULL, "");
			goto out;
		}
		*status = 403;
		set_why(err, errlen, "device is data-bearing (%s): an operator-signed storage_wipe is required",
			dv->reason);
		set_why(what, wl, "device %.120s fstype %s; pending storage_wipe %.150s", dv->path, v[1], pd.durable_id);
		r = format_result(data, vmid, v[0], false, true, dv->reason, &pd, d->host_id);
		goto out;
	}
	/* blank: still the same device, unchanged, right now? then make the
	 * filesystem (on its by-id name) and read its UUID back */
	st = recheck_blank(d, dv, mkdev, sizeof mkdev, why, sizeof why);
	if (st) {
		*status = st;
		set_why(err, errlen, "%s", why);
		r = format_result(data, vmid, v[0], false, false, err, NULL, "");
		goto out;
	}
	r = priv_mkfs(d->pm, mkdev, v[1], &pe);
	if (r) {
		*status = 500;
		set_why(err, errlen, "mkfs failed: %s (exit %d)", fh_strerror(r), pe.exit_status);
		r = format_result(data, vmid, v[0], false, false, err, NULL, "");
		goto out;
	}
	disk_invalidate(d);
	dprobe_deep(&d->env, &p, (size_t)i, dprobe_now_ms() + d->budget_ms);
	if (is_fs(dv))
		set_why(reason, sizeof reason, "formatted %s; durable_id uuid:%s", v[1], dv->uuid);
	else
		set_why(reason, sizeof reason, "formatted %s; its UUID is not readable yet", v[1]);
	set_why(what, wl, "device %.120s (mkfs on %.150s) fstype %s", dv->path, mkdev, v[1]);
	*status = 200;
	set_why(err, errlen, "%s", "");
	r = format_result(data, vmid, v[0], true, false, reason, NULL, "");
out:
	free(refs);
	dprobe_free(&p);
	pthread_mutex_unlock(&d->mut_mu);
	return r;
}

/* One disk change: runs it, hands its reason to the caller and audits the
 * answer (a format that succeeded is audited as "formatted"). */
typedef int (*change_fn)(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
			 char *err, size_t errlen, char *what, size_t wl);

static int audited_change(struct disk *d, const char *op, change_fn fn, int vmid, const char *body, size_t n,
			  int *status, struct buf *data, char *err, size_t errlen)
{
	char what[400] = "", e[320] = "";
	int r;

	if (!d || !status || !data)
		return FH_ERR_INVAL;
	r = fn(d, vmid, body, n, status, data, e, sizeof e, what, sizeof what);
	set_why(err, errlen, "%s", e);
	if (r == 0)
		audit_note(d, op, vmid, *status, what,
			   *status == 200 && !strcmp(op, "disk_format") ? "formatted" : e);
	return r;
}

int disk_format(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		char *err, size_t errlen)
{
	return audited_change(d, "disk_format", format_do, vmid, body, n, status, data, err, errlen);
}

/* --------------------------------------------------------- POST assign */

/* The last line of a command's stderr as one printable line (": ..."),
 * "" when it said nothing: the mount unit helper's reason for a refusal. */
static void stderr_line(const struct priv_err *pe, char *out, size_t cap)
{
	const char *s = pe->stderr_tail;
	size_t n = strlen(s), o = 0, b;

	while (n && (unsigned char)s[n - 1] <= ' ')
		n--;
	for (b = n; b && s[b - 1] != '\n'; b--)
		;
	if (cap < 4 || b == n) {
		if (cap)
			out[0] = '\0';
		return;
	}
	out[o++] = ':';
	out[o++] = ' ';
	for (; b < n && o + 1 < cap; b++)
		out[o++] = ((unsigned char)s[b] < ' ' || s[b] == 0x7f) ? ' ' : s[b];
	out[o] = '\0';
}

static const char *const assign_keys[] = { "uuid", "where", "fstype", "options" };

static int assign_do(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		     char *err, size_t errlen, char *what, size_t wl)
{
	char v[4][512], why[256] = "", extra[128], host[300], key[16];
	char cand[128], hex[40];
	const char *uuid = NULL;
	struct dprobe p = { NULL, 0 }, q = { NULL, 0 };
	struct pve_storage *stor = NULL;
	struct gmp *mps = NULL;
	struct gref *refs = NULL;
	struct priv_err pe;
	size_t nstor = 0, nmps = 0, nrefs = 0, k;
	bool ro, mounted_now = false;
	int i, r, idx = -1, qi;
	bool used[MP_MAX] = { false };

	if (!d || !status || !data)
		return FH_ERR_INVAL;
	if (parse_body(body, n, assign_keys, v, 4, why, sizeof why) != 0)
		return answer_null(status, 400, data, err, errlen, why);
	if (!valid_uuid(v[0], &uuid))
		return answer_null(status, 400, data, err, errlen, "uuid must be a filesystem UUID");
	if (!valid_where(v[1], why, sizeof why))
		return answer_null(status, 400, data, err, errlen, why);
	if (v[2][0] && !in_list(v[2], mount_types))
		return answer_null(status, 400, data, err, errlen, "fstype must be one of ext4, xfs, btrfs, vfat, exfat");
	if (!valid_options(v[3], extra, sizeof extra, &ro, why, sizeof why))
		return answer_null(status, 400, data, err, errlen, why);
	if (!d->pve)
		return answer_null(status, 503, data, err, errlen, "no Proxmox connection configured");

	set_why(what, wl, "uuid:%.64s at %.200s", uuid, v[1]);
	pthread_mutex_lock(&d->mut_mu);
	r = snapshot(d, &p, &stor, &nstor, why, sizeof why);
	if (r) {
		r = answer_null(status, 500, data, err, errlen, why);
		goto out;
	}
	for (i = 0; i < (int)p.n; i++)
		if (p.devs[i].offered && is_fs(&p.devs[i]) && !strcasecmp(p.devs[i].uuid, uuid))
			break;
	if (i == (int)p.n) {
		r = answer_null(status, 404, data, err, errlen, "no offered filesystem has that uuid");
		goto out;
	}
	/* the cache may be seconds old: a fresh inventory, the device read again */
	dprobe_copy_str(cand, sizeof cand, p.devs[i].path);
	r = inventory(d, &q, &refs, &nrefs, why, sizeof why);
	if (r) {
		r = answer_null(status, 500, data, err, errlen, why);
		goto out;
	}
	qi = dprobe_find(&q, cand);
	if (qi >= 0 && q.devs[qi].offered) {
		dprobe_deep(&d->env, &q, (size_t)qi, dprobe_now_ms() + d->budget_ms);
		apply_refs(d, &q, refs, nrefs);
	}
	if (qi < 0 || !q.devs[qi].offered || !is_fs(&q.devs[qi]) || strcasecmp(q.devs[qi].uuid, uuid) != 0) {
		r = answer_null(status, 404, data, err, errlen, "the filesystem changed; list disks again");
		goto out;
	}
	/* the unit mounts /dev/disk/by-uuid/UUID: that must name one device */
	{
		const char *other = NULL;
		size_t j;
		for (j = 0; j < q.n && !other; j++)
			if ((int)j != qi && !strcasecmp(q.devs[j].ls_uuid, uuid))
				other = q.devs[j].path;
		for (j = 0; j < p.n && !other; j++)
			if (strcmp(p.devs[j].path, cand) != 0 && p.devs[j].probed && !strcasecmp(p.devs[j].uuid, uuid))
				other = p.devs[j].path;
		if (other) {
			set_why(why, sizeof why, "filesystem uuid %s is on more than one device (%s and %.100s)", uuid,
				cand, other);
			r = answer_null(status, 409, data, err, errlen, why);
			goto out;
		}
	}
	dprobe_free(&p);
	p = q;
	q.devs = NULL;
	q.n = 0;
	i = qi;
	if (!in_list(p.devs[i].fstype, mount_types)) {
		r = answer_null(status, 400, data, err, errlen, "filesystem type not supported for mounting");
		goto out;
	}
	if (v[2][0] && strcmp(v[2], p.devs[i].fstype) != 0) {
		set_why(why, sizeof why, "fstype does not match the filesystem (%s)", p.devs[i].fstype);
		r = answer_null(status, 400, data, err, errlen, why);
		goto out;
	}
	host_path_of(d, p.devs[i].uuid, host, sizeof host);
	dprobe_copy_str(hex, sizeof hex, host + strlen(d->mount_root) + 1);
	if (!p.devs[i].host_mount[0]) {
		/* the helper's own checks, here first: a filesystem it would
		 * refuse (a UUID not of its type's shape) is refused before
		 * anything runs */
		struct mountunit_args ma;
		char mopts[MOUNTUNIT_OPTIONS_MAX], mwhy[160] = "";
		if (mountunit_options(extra[0] ? extra + 1 : NULL, mopts, sizeof mopts) != 0 ||
		    mountunit_check_add(d->mount_root, p.devs[i].uuid, p.devs[i].fstype, mopts, &ma, mwhy,
					sizeof mwhy) != 0) {
			set_why(why, sizeof why, "filesystem cannot be mounted: %s", mwhy[0] ? mwhy : "options");
			r = answer_null(status, 400, data, err, errlen, why);
			goto out;
		}
	}
	r = guest_mps(d, vmid, &mps, &nmps, why, sizeof why);
	if (r) {
		r = answer_null(status, 502, data, err, errlen, why);
		goto out;
	}
	for (k = 0; k < nmps; k++) {
		used[mps[k].idx] = true;
		if (!strcmp(mps[k].mp, v[1])) {
			if (!strcmp(mps[k].volume, host) && p.devs[i].host_mount[0]) {
				idx = mps[k].idx;
				goto done; /* already so */
			}
			r = answer_null(status, 409, data, err, errlen, "where is already a mount point of this guest");
			goto out;
		}
		if (!strcmp(mps[k].volume, host)) {
			set_why(why, sizeof why, "this filesystem is already attached at %s", mps[k].mp);
			r = answer_null(status, 409, data, err, errlen, why);
			goto out;
		}
	}
	for (k = 0; k < MP_MAX && idx < 0; k++)
		if (!used[k])
			idx = (int)k;
	if (idx < 0) {
		r = answer_null(status, 409, data, err, errlen, "no free mount point index");
		goto out;
	}
	if (!p.devs[i].host_mount[0]) {
		/* root writes MOUNT_ROOT/.units/<unit> from its template, enables
		 * and starts it; a failed enable is undone there */
		r = priv_mount_unit_add(d->pm, d->mount_root, p.devs[i].uuid, p.devs[i].fstype,
					extra[0] ? extra + 1 : NULL, &pe);
		if (r) {
			char line[160];
			stderr_line(&pe, line, sizeof line);
			set_why(why, sizeof why, "host mount failed: %s %s (exit %d)%s", pe.program, fh_strerror(r),
				pe.exit_status, line);
			r = answer_null(status, 500, data, err, errlen, why);
			goto out;
		}
		mounted_now = true;
	}
	r = priv_pct_set_bind_mp(d->pm, vmid, idx, host, v[1], ro, &pe);
	if (r) {
		set_why(why, sizeof why, "pct set failed: %s (exit %d)", fh_strerror(r), pe.exit_status);
		if (mounted_now)
			(void)priv_mount_unit_remove(d->pm, d->mount_root, hex, NULL);
		r = answer_null(status, 500, data, err, errlen, why);
		goto out;
	}
done:
	disk_invalidate(d);
	snprintf(key, sizeof key, "mp%d", idx);
	set_why(what, wl, "uuid:%.64s (%.100s) at %.200s as %s", uuid, p.devs[i].path, v[1], key);
	buf_reset(data);
	r = buf_printf(data, "{\"vmid\":%d,\"durable_id\":", vmid);
	if (!r) {
		char dur[80];
		snprintf(dur, sizeof dur, "uuid:%s", p.devs[i].uuid);
		r = jstr(data, dur);
	}
	if (!r) r = jkv_str(data, true, "where", v[1]);
	if (!r) r = jkv_str(data, true, "key", key);
	if (!r) r = jkv_str(data, true, "host_path", host);
	if (!r) r = buf_appendz(data, "}");
	*status = 200;
	set_why(err, errlen, "%s", "");
out:
	free(mps);
	free(stor);
	free(refs);
	dprobe_free(&p);
	dprobe_free(&q);
	pthread_mutex_unlock(&d->mut_mu);
	return r;
}

int disk_assign(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		char *err, size_t errlen)
{
	return audited_change(d, "disk_assign", assign_do, vmid, body, n, status, data, err, errlen);
}

/* ---------------------------------------------------------- POST eject */

/* Is host one of our host directories, MOUNT_ROOT/<hex> with the 32 or 8
 * lower-case hex digits of a UUID the mount unit helper accepts? hex gets
 * them. */
static bool is_host_dir(const struct disk *d, const char *host, char *hex, size_t hcap)
{
	size_t rl = strlen(d->mount_root), hl;
	const char *h;

	if (strncmp(host, d->mount_root, rl) != 0 || host[rl] != '/')
		return false;
	h = host + rl + 1;
	hl = strlen(h);
	if ((hl != 32 && hl != 8) || strspn(h, "0123456789abcdef") != hl || hl >= hcap)
		return false;
	memcpy(hex, h, hl + 1);
	return true;
}

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The other guests binding host. */
static int dependents(struct disk *d, int vmid, const char *host, int **out, size_t *nout, char *why, size_t whylen)
{
	struct pve_guest *gs = NULL;
	struct pve_err pe;
	size_t ng = 0, i, k;
	int *dep = NULL;
	int r;

	*out = NULL;
	*nout = 0;
	pthread_mutex_lock(&d->pve_mu);
	r = pve_list_lxc(d->pve, &gs, &ng, &pe);
	pthread_mutex_unlock(&d->pve_mu);
	if (r) {
		set_why(why, whylen, "cannot list guests: %s", fh_strerror(r));
		return r;
	}
	dep = calloc(ng ? ng : 1, sizeof *dep);
	if (!dep) {
		free(gs);
		return FH_ERR_NOMEM;
	}
	for (i = 0; i < ng; i++) {
		struct gmp *m = NULL;
		size_t nm = 0;
		if (gs[i].vmid == vmid)
			continue;
		r = guest_mps(d, gs[i].vmid, &m, &nm, why, whylen);
		if (r) {
			free(gs);
			free(dep);
			return r;
		}
		for (k = 0; k < nm; k++)
			if (!strcmp(m[k].volume, host)) {
				dep[(*nout)++] = gs[i].vmid;
				break;
			}
		free(m);
	}
	free(gs);
	qsort(dep, *nout, sizeof *dep, int_cmp);
	*out = dep;
	return 0;
}

static const char *const eject_keys[] = { "where" };

static int eject_do(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		    char *err, size_t errlen, char *what, size_t wl)
{
	char v[1][512], why[256] = "", hex[40];
	struct gmp *mps = NULL;
	struct priv_err pe;
	int *dep = NULL;
	size_t nmps = 0, ndep = 0, k;
	const struct gmp *m = NULL;
	int r;

	if (!d || !status || !data)
		return FH_ERR_INVAL;
	if (parse_body(body, n, eject_keys, v, 1, why, sizeof why) != 0)
		return answer_null(status, 400, data, err, errlen, why);
	if (!valid_where(v[0], why, sizeof why))
		return answer_null(status, 400, data, err, errlen, why);
	set_why(what, wl, "at %.200s", v[0]);
	if (!d->pve)
		return answer_null(status, 503, data, err, errlen, "no Proxmox connection configured");
	pthread_mutex_lock(&d->mut_mu);
	r = guest_mps(d, vmid, &mps, &nmps, why, sizeof why);
	if (r) {
		r = answer_null(status, 502, data, err, errlen, why);
		goto out;
	}
	for (k = 0; k < nmps; k++)
		if (!strcmp(mps[k].mp, v[0]) && is_host_dir(d, mps[k].volume, hex, sizeof hex)) {
			m = &mps[k];
			break;
		}
	if (!m) {
		r = answer_null(status, 404, data, err, errlen, "no agent-managed disk is mounted at where");
		goto out;
	}
	set_why(what, wl, "%.120s at %.200s (mp%d)", m->volume, v[0], m->idx);
	r = priv_pct_delete_mp(d->pm, vmid, m->idx, &pe);
	if (r) {
		set_why(why, sizeof why, "pct set -delete failed: %s (exit %d)", fh_strerror(r), pe.exit_status);
		r = answer_null(status, 500, data, err, errlen, why);
		goto out;
	}
	disk_invalidate(d);
	r = dependents(d, vmid, m->volume, &dep, &ndep, why, sizeof why);
	if (r) {
		char msg[320];
		snprintf(msg, sizeof msg, "detached; host mount kept: %s", why);
		r = answer_null(status, 502, data, err, errlen, msg);
		goto out;
	}
	if (ndep == 0) {
		/* root stops, disables and deletes the unit (nothing when
		 * it is not installed) */
		r = priv_mount_unit_remove(d->pm, d->mount_root, hex, &pe);
		if (r) {
			char line[160];
			stderr_line(&pe, line, sizeof line);
			set_why(why, sizeof why, "detached; host unmount failed: %s %s (exit %d)%s", pe.program,
				fh_strerror(r), pe.exit_status, line);
			r = answer_null(status, 500, data, err, errlen, why);
			goto out;
		}
	}
	buf_reset(data);
	r = buf_printf(data, "{\"vmid\":%d", vmid);
	if (!r) r = jkv_str(data, true, "ejected", v[0]);
	if (!r) r = buf_appendz(data, ",\"dependent_guests\":[");
	for (k = 0; !r && k < ndep; k++)
		r = buf_printf(data, "%s%d", k ? "," : "", dep[k]);
	if (!r) r = buf_appendz(data, "]}");
	*status = 200;
	set_why(err, errlen, "%s", "");
out:
	free(dep);
	free(mps);
	pthread_mutex_unlock(&d->mut_mu);
	return r;
}

int disk_eject(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
	       char *err, size_t errlen)
{
	return audited_change(d, "disk_eject", eject_do, vmid, body, n, status, data, err, errlen);
}

/* ----------------------------------------------------------- the wipe */

static const struct opblob_param *param_of(const struct opblob *b, const char *key)
{
	size_t i;

	for (i = 0; i < b->nparams; i++)
		if (!strcmp(b->params[i].key, key))
			return &b->params[i];
	return NULL;
}

int disk_exec_wipe(void *ctx, const struct gate_action *a, const struct sig_verified *vd, char *why,
		   size_t whylen)
{
	struct disk *d = ctx;
	const struct opblob_param *pid, *pfs, *sid;
	struct disk_pending pd;
	struct dprobe p = { NULL, 0 };
	struct priv_err pe;
	char path[300], pw[256] = "";
	struct gref *refs = NULL;
	size_t i, nrefs = 0;
	int64_t deadline;
	int di, r;
	bool wiped = false;

	if (!d || !a) {
		set_why(why, whylen, "no disk context or action");
		return FH_ERR_INVAL;
	}
	if (strcmp(a->b.op, "storage_wipe") != 0) {
		set_why(why, whylen, "the disk executor runs storage_wipe only");
		return FH_ERR_UNSUPPORTED;
	}
	if (!vd) {
		set_why(why, whylen, "storage_wipe needs a verified operator signature");
		return FH_ERR_PENDING_SIGNATURE;
	}
	if (strcmp(a->b.host_id, d->host_id) != 0 || a->b.has_guest) {
		set_why(why, whylen, "storage_wipe is bound to another host or to a guest");
		return FH_ERR_SIG_BINDING;
	}
	for (i = 0; i < a->b.nparams; i++)
		if (strcmp(a->b.params[i].key, "durable_id") && strcmp(a->b.params[i].key, "fstype")) {
			set_why(why, whylen, "storage_wipe has an unknown param");
			return FH_ERR_INVAL;
		}
	pid = param_of(&a->b, "durable_id");
	pfs = param_of(&a->b, "fstype");
	if (!pid || pid->type != OPBLOB_STR || strncmp(pid->str, "byid:", 5) != 0 ||
	    !dprobe_valid_byid(pid->str + 5) || (pfs && pfs->type != OPBLOB_STR)) {
		set_why(why, whylen, "storage_wipe needs durable_id \"byid:NAME\" (and fstype a string)");
		return FH_ERR_INVAL;
	}
	sid = param_of(&vd->op, "durable_id");
	if (strcmp(vd->op.op, a->b.op) || strcmp(vd->op.host_id, a->b.host_id) || vd->op.has_guest || !sid ||
	    sid->type != OPBLOB_STR || strcmp(sid->str, pid->str)) {
		set_why(why, whylen, "the signature is not bound to this wipe");
		return FH_ERR_SIG_BINDING;
	}
	pthread_mutex_lock(&d->mut_mu);
	r = disk_pending_get(d, pid->str, &pd);
	if (r == FH_ERR_NOT_FOUND) {
		set_why(why, whylen, "no pending format refusal for %s", pid->str);
		goto out;
	}
	if (r) {
		set_why(why, whylen, "pending op unreadable: %s", fh_strerror(r));
		goto out;
	}
	if (pd.expires_at <= now_s(d)) {
		(void)pending_del(d, pid->str);
		set_why(why, whylen, "the pending op for %s expired; request the format again", pid->str);
		r = FH_ERR_SIG_EXPIRED;
		goto out;
	}
	if (pd.running) {
		set_why(why, whylen, "an earlier wipe of %s was interrupted; request the format again", pid->str);
		r = FH_ERR_DUPLICATE;
		goto out;
	}
	if (pfs && strcmp(pfs->str, pd.fstype) != 0) {
		set_why(why, whylen, "signed fstype %s differs from the requested %s", pfs->str, pd.fstype);
		r = FH_ERR_SIG_BINDING;
		goto out;
	}
	/* the by-id name must still name the same device */
	r = dprobe_resolve_byid(d->by_id_dir, pid->str + 5, path, sizeof path);
	if (r) {
		set_why(why, whylen, "%s no longer resolves to a device", pid->str);
		r = FH_ERR_NOT_FOUND;
		goto out;
	}
	r = inventory(d, &p, &refs, &nrefs, pw, sizeof pw);
	if (r) {
		set_why(why, whylen, "cannot probe devices: %s", pw);
		goto out;
	}
	di = dprobe_find(&p, path);
	if (di < 0) {
		set_why(why, whylen, "%s names %s, which is not present", pid->str, path);
		r = FH_ERR_NOT_FOUND;
		goto out;
	}
	if (p.devs[di].size != pd.size || strcmp(p.devs[di].serial, pd.serial) != 0) {
		set_why(why, whylen, "%s now names another device (size or serial differ)", pid->str);
		r = FH_ERR_SIG_BINDING;
		goto out;
	}
	if (!p.devs[di].offered || p.devs[di].host_mount[0]) {
		set_why(why, whylen, "%s is in use or not offered%s%s", path,
			p.devs[p.devs[di].root].excl[0] ? ": " : "", p.devs[p.devs[di].root].excl);
		r = FH_ERR_INVAL;
		goto out;
	}
	if (child_mounted(&p, di)) {
		set_why(why, whylen, "a partition of %s is mounted by the agent; eject it first", path);
		r = FH_ERR_INVAL;
		goto out;
	}
	/* pre-flight: every device of the tree is checked before the first
	 * write, so that a busy partition found late never leaves the ones
	 * before it wiped */
	deadline = dprobe_now_ms() + d->budget_ms;
	for (i = 0; i < p.n; i++)
		if (dprobe_is_under(&p, i, (size_t)di) && p.devs[i].offered)
			dprobe_deep(&d->env, &p, i, deadline);
	apply_refs(d, &p, refs, nrefs);
	for (i = 0; i < p.n; i++) {
		const struct dprobe_dev *v = &p.devs[i];
		char holder[64];
		int h;

		if (!dprobe_is_under(&p, i, (size_t)di))
			continue;
		if (!v->offered) {
			set_why(why, whylen, "%s is not offered: %s", v->path, p.devs[v->root].excl);
			r = FH_ERR_INVAL;
			goto out;
		}
		if (!v->probed) {
			set_why(why, whylen, "%s could not be probed: %s", v->path, v->reason);
			r = FH_ERR_INVAL;
			goto out;
		}
		if (v->nmounts || v->host_mount[0]) {
			set_why(why, whylen, "%s is mounted (%.150s)", v->path, v->nmounts ? v->mounts[0] : v->host_mount);
			r = FH_ERR_INVAL;
			goto out;
		}
		if (strcmp(v->type, "disk") != 0 && strcmp(v->type, "part") != 0 && strcmp(v->type, "loop") != 0) {
			set_why(why, whylen, "%s holds a volume of type %s", v->path, v->type);
			r = FH_ERR_INVAL;
			goto out;
		}
		h = dprobe_holders(&d->env, v->name, holder, sizeof holder);
		if (h) {
			set_why(why, whylen, h > 0 ? "%s is held by %s" : "%s: holders unreadable%s", v->path,
				h > 0 ? holder : "");
			r = h > 0 ? FH_ERR_INVAL : FH_ERR_IO;
			goto out;
		}
	}
	/* claim it: a crash from here on leaves it "running", never re-run silently */
	pd.running = true;
	r = pending_put(d, &pd);
	if (r) {
		set_why(why, whylen, "cannot claim the pending op: %s", fh_strerror(r));
		goto out;
	}
	for (i = 0; i < p.n && !r; i++)
		if (p.devs[i].parent == di) {
			r = priv_wipefs_all(d->pm, p.devs[i].path, &pe);
			wiped = wiped || r == 0;
		}
	if (!r) {
		r = priv_wipefs_all(d->pm, path, &pe);
		wiped = wiped || r == 0;
	}
	if (r) {
		set_why(why, whylen, "wipefs failed: %s (exit %d)", fh_strerror(r), pe.exit_status);
		if (!wiped) {
			pd.running = false;
			(void)pending_put(d, &pd);
		} else {
			(void)pending_del(d, pid->str);
		}
		goto out;
	}
	r = priv_mkfs(d->pm, path, pd.fstype, &pe);
	(void)pending_del(d, pid->str);
	disk_invalidate(d);
	if (r) {
		set_why(why, whylen, "wiped %s; mkfs -t %s failed: %s (exit %d)", path, pd.fstype, fh_strerror(r),
			pe.exit_status);
		goto out;
	}
	set_why(why, whylen, "wiped %s (%s) and made %s", path, pid->str, pd.fstype);
out:
	free(refs);
	dprobe_free(&p);
	pthread_mutex_unlock(&d->mut_mu);
	return r;
}

int disk_lapi_call(void *ctx, enum lapi_disk_op op, int vmid, const char *body, size_t len, int *status,
		   struct buf *data, char *err, size_t errlen)
{
	struct disk *d = ctx;

	switch (op) {
	case LAPI_DISK_LIST:
		return disk_list(d, vmid, status, data, err, errlen);
	case LAPI_DISK_ASSIGN:
		return disk_assign(d, vmid, body, len, status, data, err, errlen);
	case LAPI_DISK_EJECT:
		return disk_eject(d, vmid, body, len, status, data, err, errlen);
	case LAPI_DISK_FORMAT:
		return disk_format(d, vmid, body, len, status, data, err, errlen);
	}
	return FH_ERR_INVAL;
}
