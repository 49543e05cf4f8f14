/* disk_probe.c — the block-device inventory of disk.h: lsblk rows into a
 * tree, what is never offered, by-id names, and the deep probe (wipefs,
 * blkid, sampled sectors) that decides data-bearing-ness. Nothing here
 * writes to a device.
 */
#include "disk_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "disk.h"
#include "err.h"
#include "json.h"

#define LSBLK_MAX_BYTES ((size_t)4 << 20)
#define WIPEFS_MAX_BYTES ((size_t)256 << 10)
#define BLKID_MAX_BYTES ((size_t)16 << 10)
#define SAMPLE_MIB 1 /* MiB per sample */

int64_t dprobe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dprobe_copy_str(char *dst, size_t cap, const char *s)
{
	size_t n;

	if (!cap)
		return;
	if (!s)
		s = "";
	n = strnlen(s, cap - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void dprobe_free(struct dprobe *p)
{
	free(p->devs);
	p->devs = NULL;
	p->n = 0;
}

int dprobe_copy(struct dprobe *dst, const struct dprobe *src)
{
	struct dprobe_dev *d = NULL;

	if (src->n) {
		d = malloc(src->n * sizeof *d);
		if (!d)
			return FH_ERR_NOMEM;
		memcpy(d, src->devs, src->n * sizeof *d);
	}
	dprobe_free(dst);
	dst->devs = d;
	dst->n = src->n;
	return 0;
}

int dprobe_find(const struct dprobe *p, const char *path)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (!strcmp(p->devs[i].path, path))
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------ lsblk rows */

static void str_of(const struct json *j, const char *key, char *dst, size_t cap)
{
	const char *s = NULL;

	dst[0] = '\0';
	if (json_str(json_get(j, key), &s) == 0 && s)
		dprobe_copy_str(dst, cap, s);
}

static bool bool_of(const struct json *j, const char *key)
{
	bool b = false;

	return json_bool(json_get(j, key), &b) == 0 && b;
}

/* Is m one of our host mounts, MOUNT_ROOT/<lowercase hex>? */
static bool is_agent_mount(const char *root, const char *m)
{
	size_t rl = strlen(root);
	const char *h;

	if (strncmp(m, root, rl) != 0 || m[rl] != '/')
		return false;
	h = m + rl + 1;
	return *h && strspn(h, "0123456789abcdef") == strlen(h) && strlen(h) <= 64;
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

bool dprobe_member_sig(const char *t)
{
	static const char *const members[] = { "zfs_member", "LVM1_member", "LVM2_member", "crypto_LUKS",
					       "bcache", NULL };
	size_t i, n;

	if (!t || !*t)
		return false;
	for (i = 0; members[i]; i++)
		if (!strcmp(t, members[i]))
			return true;
	n = strlen(t);
	return n > 12 && !strcmp(t + n - 12, "_raid_member"); /* linux_, isw_, ddf_, ... */
}

bool dprobe_system_parttype(const char *t)
{
	static const char *const types[] = {
		"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", /* EFI System */
		"21686148-6449-6e6f-744e-656564454649", /* BIOS boot */
		"6a898cc3-1dd2-11b2-99a6-080020736631", /* ZFS (Solaris /usr) */
		"6a945a3b-1dd2-11b2-99a6-080020736631", /* ZFS reserved (Solaris reserved 1) */
		"a19d880f-05fc-4d3b-a006-743f0f84911e", /* Linux RAID */
		"e6d6d379-f507-44c2-a23c-238f2a3df928", /* Linux LVM */
		"ca7d7ccb-63ed-4c53-861c-1742536059cc", /* Linux LUKS */
		"0xef", "0xfd", "0x8e",                 /* MBR: EFI, Linux RAID autodetect, LVM */
		NULL
	};
	size_t i;

	if (!t || !*t)
		return false;
	for (i = 0; types[i]; i++)
		if (!strcasecmp(t, types[i]))
			return true;
	return false;
}

/* Any mount of d that is not one of ours (swap included)? */
static bool host_mounted(const struct dprobe_env *env, const struct dprobe_dev *d)
{
	size_t k;

	for (k = 0; k < d->nmounts; k++)
		if (!is_agent_mount(env->mount_root, d->mounts[k]))
			return true;
	return false;
}

void dprobe_taint_tree(struct dprobe *p, size_t i, const char *why)
{
	int root = p->devs[i].root;
	struct dprobe_dev *r = &p->devs[root];
	size_t k;

	if (!r->excl[0])
		dprobe_copy_str(r->excl, sizeof r->excl, why);
	for (k = 0; k < p->n; k++)
		if (p->devs[k].root == root)
			p->devs[k].offered = false;
}

bool dprobe_is_under(const struct dprobe *p, size_t k, size_t i)
{
	int c = (int)k, hops = 0;

	while (c >= 0 && hops++ <= 16) {
		if (c == (int)i)
			return true;
		c = p->devs[c].parent;
	}
	return false;
}

/* Sets excl on the root of i unless already set. */
static void taint(struct dprobe *p, size_t i, const char *why, const char *what)
{
	struct dprobe_dev *r = &p->devs[p->devs[i].root];

	if (!r->excl[0])
		snprintf(r->excl, sizeof r->excl, "%s%s%s", why, what ? " " : "", what ? what : "");
}

static void link_tree(const struct dprobe_env *env, struct dprobe *p)
{
	size_t i, j;

	for (i = 0; i < p->n; i++) {
		struct dprobe_dev *d = &p->devs[i];
		d->parent = -1;
		if (d->pkname[0])
			for (j = 0; j < p->n; j++)
				if (j != i && !strcmp(p->devs[j].name, d->pkname)) {
					d->parent = (int)j;
					break;
				}
	}
	for (i = 0; i < p->n; i++) {
		int r = (int)i, hops = 0;
		while (p->devs[r].parent >= 0 && hops++ < 16)
			r = p->devs[r].parent;
		p->devs[i].root = r;
		if (p->devs[i].parent >= 0)
			p->devs[p->devs[i].parent].nchildren++;
	}
	/* never offered: the reasons sit on the root of each tree */
	for (i = 0; i < p->n; i++) {
		struct dprobe_dev *d = &p->devs[i];
		size_t k;

		if (d->parent < 0 && d->pkname[0])
			taint(p, i, "parent device not listed", NULL);
		for (k = 0; k < d->nmounts; k++) {
			if (is_agent_mount(env->mount_root, d->mounts[k])) {
				if (!d->host_mount[0])
					dprobe_copy_str(d->host_mount, sizeof d->host_mount, d->mounts[k]);
			} else {
				taint(p, i, !strcmp(d->mounts[k], "[SWAP]") ? "holds swap" : "mounted by the host at",
				      !strcmp(d->mounts[k], "[SWAP]") ? NULL : d->mounts[k]);
			}
		}
		if (d->parent >= 0 && strcmp(d->type, "part") != 0)
			taint(p, i, "holds a volume of type", d->type); /* lvm, crypt, raid, dm, md */
		/* a pool, array, volume group or encrypted device lives here,
		 * whether or not it is imported or open now (a ZFS root has
		 * nothing mounted by device) */
		if (dprobe_member_sig(d->ls_fstype))
			taint(p, i, "holds a member of a pool or volume:", d->ls_fstype);
		if (dprobe_system_parttype(d->parttype))
			taint(p, i, "holds a boot or volume partition of type", d->parttype);
		/* a multi-device filesystem (btrfs) mounted by the host through
		 * another of its devices */
		if (d->ls_uuid[0] && !host_mounted(env, d))
			for (j = 0; j < p->n; j++)
				if (j != i && !strcasecmp(p->devs[j].ls_uuid, d->ls_uuid) &&
				    host_mounted(env, &p->devs[j])) {
					taint(p, i, "shares its filesystem UUID with the host-mounted", p->devs[j].path);
					break;
				}
	}
	for (i = 0; i < p->n; i++) {
		struct dprobe_dev *d = &p->devs[i];
		struct dprobe_dev *r = &p->devs[d->root];

		if (d->parent < 0) {
			if (strcmp(d->type, "disk") != 0 && strcmp(d->type, "loop") != 0)
				taint(p, i, "device type", d->type);
			else if (!strcmp(d->type, "loop") && !env->include_loop)
				taint(p, i, "loop device", NULL);
			else if (has_prefix(d->name, "zram") || has_prefix(d->name, "ram"))
				taint(p, i, "memory device", NULL);
			else if (d->ro)
				taint(p, i, "read-only device", NULL);
			else if (d->size == 0)
				taint(p, i, "empty device", NULL);
		}
		/* offered: a root without a reason, or its partitions */
		d->offered = !r->excl[0] && (d->parent < 0 || !strcmp(d->type, "part"));
	}
}

int dprobe_parse(const struct dprobe_env *env, const char *text, size_t n, struct dprobe *p)
{
	struct json_limits lim = { LSBLK_MAX_BYTES, 8, false };
	struct json *j = NULL;
	const struct json *rows;
	struct dprobe_dev *devs = NULL;
	size_t i, nd = 0;
	int r;

	r = json_parse(text, n, &lim, &j, NULL, 0);
	if (r)
		return r == FH_ERR_TOOBIG ? r : FH_ERR_DECODE;
	rows = json_get(j, "blockdevices");
	if (!rows || rows->type != JSON_ARRAY) {
		r = FH_ERR_DECODE;
		goto out;
	}
	if (rows->n > DISK_MAX_DEVICES) {
		r = FH_ERR_TOOBIG;
		goto out;
	}
	devs = calloc(rows->n ? rows->n : 1, sizeof *devs);
	if (!devs) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < rows->n; i++) {
		const struct json *row = rows->items[i], *mp;
		struct dprobe_dev *d = &devs[nd];
		uint64_t size = 0;

		if (!row || row->type != JSON_OBJECT)
			continue;
		str_of(row, "name", d->name, sizeof d->name);
		str_of(row, "path", d->path, sizeof d->path);
		str_of(row, "pkname", d->pkname, sizeof d->pkname);
		str_of(row, "type", d->type, sizeof d->type);
		str_of(row, "tran", d->tran, sizeof d->tran);
		str_of(row, "serial", d->serial, sizeof d->serial);
		str_of(row, "fstype", d->ls_fstype, sizeof d->ls_fstype);
		str_of(row, "uuid", d->ls_uuid, sizeof d->ls_uuid);
		str_of(row, "label", d->ls_label, sizeof d->ls_label);
		str_of(row, "pttype", d->ls_pttype, sizeof d->ls_pttype);
		str_of(row, "parttype", d->parttype, sizeof d->parttype);
		lower(d->parttype);
		if (!d->name[0] || strchr(d->name, '/'))
			continue;
		if (!d->path[0])
			snprintf(d->path, sizeof d->path, "/dev/%s", d->name);
		if (json_uint(json_get(row, "size"), &size) == 0)
			d->size = size;
		d->ro = bool_of(row, "ro");
		d->rm = bool_of(row, "rm");
		d->rota = bool_of(row, "rota");
		mp = json_get(row, "mountpoints");
		if (mp && mp->type == JSON_ARRAY) {
			size_t k;
			for (k = 0; k < mp->n && d->nmounts < DPROBE_MOUNTS_MAX; k++) {
				const char *s = NULL;
				if (json_str(mp->items[k], &s) == 0 && s && *s)
					dprobe_copy_str(d->mounts[d->nmounts++], sizeof d->mounts[0], s);
			}
		} else {
			char one[256];
			str_of(row, "mountpoint", one, sizeof one);
			if (one[0])
				dprobe_copy_str(d->mounts[d->nmounts++], sizeof d->mounts[0], one);
		}
		nd++;
	}
	dprobe_free(p);
	p->devs = devs;
	p->n = nd;
	devs = NULL;
	link_tree(env, p);
	r = 0;
out:
	free(devs);
	json_free(j);
	return r;
}

/* ---------------------------------------------------------------- by-id */

bool dprobe_valid_byid(const char *s)
{
	size_t i, n;

	if (!s)
		return false;
	n = strnlen(s, 202);
	if (n == 0 || n > 200 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._:+@-", c)))
			return false;
	}
	return true;
}

void dprobe_normalize(char *s)
{
	char out[PATH_MAX];
	size_t o = 0;
	const char *p = s;

	while (*p) {
		const char *e;
		size_t n;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (o + 1 + n < sizeof out) {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	memcpy(s, out, o + 1);
}

int dprobe_resolve_byid(const char *dir, const char *name, char *out, size_t outlen)
{
	char link[PATH_MAX], target[PATH_MAX], full[PATH_MAX * 2];
	struct stat st;
	ssize_t k;

	if (!dprobe_valid_byid(name))
		return FH_ERR_INVAL;
	if ((size_t)snprintf(link, sizeof link, "%s/%s", dir, name) >= sizeof link)
		return FH_ERR_INVAL;
	if (lstat(link, &st) != 0 || !S_ISLNK(st.st_mode))
		return FH_ERR_NOT_FOUND;
	k = readlink(link, target, sizeof target - 1);
	if (k <= 0)
		return FH_ERR_NOT_FOUND;
	target[k] = '\0';
	if (target[0] == '/')
		snprintf(full, sizeof full, "%s", target);
	else
		snprintf(full, sizeof full, "%s/%s", dir, target);
	if (full[0] != '/')
		return FH_ERR_INVAL;
	dprobe_normalize(full);
	if (strncmp(full, "/dev/", 5) != 0 || strlen(full) >= outlen)
		return FH_ERR_INVAL;
	memcpy(out, full, strlen(full) + 1);
	return 0;
}

/* Lower is better: ata-/nvme-/usb-/scsi- names over wwn-/eui.; volume
 * names (lvm-, dm-, md-) are never a disk's identity. */
static int byid_rank(const char *n)
{
	if (has_prefix(n, "lvm-") || has_prefix(n, "dm-") || has_prefix(n, "md-"))
		return 9;
	if (has_prefix(n, "wwn-") || has_prefix(n, "nvme-eui.") || has_prefix(n, "nvme-nvme."))
		return 2;
	return 1;
}

static bool byid_better(const char *a, const char *cur)
{
	int ra = byid_rank(a), rc = byid_rank(cur);

	if (!cur[0])
		return ra < 9;
	if (ra != rc)
		return ra < rc;
	if (strlen(a) != strlen(cur))
		return strlen(a) < strlen(cur);
	return strcmp(a, cur) < 0;
}

static void fill_byid(const struct dprobe_env *env, struct dprobe *p)
{
	DIR *dir = opendir(env->by_id_dir);
	struct dirent *e;
	unsigned seen = 0;

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL && seen++ < 4096) {
		char dev[256];
		int i;
		if (!dprobe_valid_byid(e->d_name) || e->d_name[0] == '.')
			continue;
		if (dprobe_resolve_byid(env->by_id_dir, e->d_name, dev, sizeof dev) != 0)
			continue;
		i = dprobe_find(p, dev);
		if (i >= 0 && byid_better(e->d_name, p->devs[i].byid))
			dprobe_copy_str(p->devs[i].byid, sizeof p->devs[i].byid, e->d_name);
	}
	closedir(dir);
}

int dprobe_inventory(const struct dprobe_env *env, struct dprobe *p, char *why, size_t whylen)
{
	struct buf out;
	struct priv_err pe;
	int r;

	buf_init(&out, LSBLK_MAX_BYTES);
	r = priv_lsblk(env->priv, &out, &pe);
	if (r) {
		snprintf(why, whylen, "lsblk: %s (exit %d)", fh_strerror(r), pe.exit_status);
		goto out;
	}
	r = dprobe_parse(env, out.data ? out.data : "", out.len, p);
	if (r) {
		snprintf(why, whylen, "lsblk output: %s", fh_strerror(r));
		goto out;
	}
	fill_byid(env, p);
out:
	buf_free(&out);
	return r;
}

/* ---------------------------------------------------------- deep probe */

/* blkid -p -o export: KEY=VALUE lines. */
static void blkid_field(const char *text, const char *key, char *dst, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = text;

	dst[0] = '\0';
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t v = n - kl - 1;
			if (v >= cap)
				v = cap - 1;
			memcpy(dst, p + kl + 1, v);
			dst[v] = '\0';
			return;
		}
		p = nl ? nl + 1 : NULL;
	}
}

static void set_reason(struct dprobe_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(struct dprobe_dev *d, const char *fmt, ...)
{
	va_list ap;

	d->data_bearing = true;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof d->reason, fmt, ap);
	va_end(ap);
}

static bool zfs_imported(const struct dprobe_env *env, const char *pool)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	if (!pool[0] || !env->zfs_kstat_dir || !env->zfs_kstat_dir[0])
		return false;
	for (i = 0; pool[i]; i++)
		if (pool[i] == '/' || (pool[i] == '.' && (i == 0)))
			return true; /* a label we cannot look up: fail safe */
	snprintf(path, sizeof path, "%s/%s", env->zfs_kstat_dir, pool);
	return stat(path, &st) == 0;
}

void dprobe_deep(const struct dprobe_env *env, struct dprobe *p, size_t i, int64_t deadline_ms)
{
	struct dprobe_dev *d = &p->devs[i];
	struct buf out;
	struct priv_err pe;
	char first_sig[48] = "", first_off[32] = "";
	size_t nsig = 0;
	int r;

	d->probed = false;
	d->data_bearing = true;
	d->fstype[0] = d->uuid[0] = d->label[0] = d->pttype[0] = d->usage[0] = '\0';
	snprintf(d->reason, sizeof d->reason, "not probed within the time budget");
	buf_init(&out, WIPEFS_MAX_BYTES);

	/* signatures, every one (wipefs) */
	if (!d->host_mount[0]) {
		struct json_limits lim = { WIPEFS_MAX_BYTES, 6, true };
		struct json *j = NULL;
		const struct json *sigs;

		if (dprobe_now_ms() >= deadline_ms)
			goto out;
		r = priv_wipefs_probe(env->priv, d->path, &out, &pe);
		if (r) {
			snprintf(d->reason, sizeof d->reason, "probe failed: wipefs %s", fh_strerror(r));
			goto out;
		}
		if (out.len) {
			if (json_parse(out.data, out.len, &lim, &j, NULL, 0) != 0) {
				snprintf(d->reason, sizeof d->reason, "probe failed: wipefs output undecodable");
				goto out;
			}
			sigs = json_get(j, "signatures");
			if (sigs && sigs->type == JSON_ARRAY) {
				nsig = sigs->n;
				if (nsig) {
					str_of(sigs->items[0], "type", first_sig, sizeof first_sig);
					str_of(sigs->items[0], "offset", first_off, sizeof first_off);
				}
			}
			json_free(j);
		}
	}
	/* low-level probe of the content (blkid -p): TYPE, UUID, PTTYPE, USAGE */
	if (dprobe_now_ms() >= deadline_ms)
		goto out;
	buf_reset(&out);
	r = priv_blkid_probe(env->priv, d->path, &out, &pe);
	if (r && !(r == FH_ERR_EXIT && pe.exit_status == 2)) { /* 2: nothing found */
		snprintf(d->reason, sizeof d->reason, "probe failed: blkid %s", fh_strerror(r));
		goto out;
	}
	if (r == 0) {
		const char *t = out.data ? out.data : "";
		blkid_field(t, "TYPE", d->fstype, sizeof d->fstype);
		blkid_field(t, "UUID", d->uuid, sizeof d->uuid);
		blkid_field(t, "LABEL", d->label, sizeof d->label);
		blkid_field(t, "PTTYPE", d->pttype, sizeof d->pttype);
		blkid_field(t, "USAGE", d->usage, sizeof d->usage);
		if (!d->parttype[0]) {
			blkid_field(t, "PART_ENTRY_TYPE", d->parttype, sizeof d->parttype);
			lower(d->parttype);
		}
	}
	d->reason[0] = '\0';
	d->data_bearing = false;
	if (dprobe_member_sig(d->fstype) || dprobe_system_parttype(d->parttype)) {
		char why[160];
		if (!strcmp(d->fstype, "zfs_member"))
			snprintf(why, sizeof why, "holds a member of the ZFS pool %.64s (%s)", d->label,
				 zfs_imported(env, d->label) ? "imported" : "not imported");
		else if (dprobe_member_sig(d->fstype))
			snprintf(why, sizeof why, "holds a member of a pool or volume: %s", d->fstype);
		else
			snprintf(why, sizeof why, "holds a boot or volume partition of type %s", d->parttype);
		dprobe_taint_tree(p, i, why);
		set_reason(d, "%s", why);
	} else if (d->fstype[0] && !strcmp(d->usage, "filesystem")) {
		set_reason(d, "filesystem signature (%s)", d->fstype);
	} else if (d->fstype[0] && !strcmp(d->usage, "raid")) {
		set_reason(d, "RAID/LVM member (%s)", d->fstype);
	} else if (d->fstype[0] && !strcmp(d->usage, "crypto")) {
		set_reason(d, "encrypted volume (%s)", d->fstype);
	} else if (d->fstype[0]) {
		set_reason(d, "signature %s", d->fstype);
	} else if (d->pttype[0]) {
		set_reason(d, "partition table (%s)", d->pttype);
	} else if (nsig) {
		set_reason(d, "signature %s at %s", first_sig, first_off);
	} else if (d->nchildren) {
		set_reason(d, "%s", "has partitions");
	} else if (d->host_mount[0]) {
		set_reason(d, "mounted at %.150s", d->host_mount);
	} else {
		/* no signature at all: sample the start, a quarter, the middle and
		 * the last whole MiB, each as `cmp` against /dev/zero as root (only
		 * the exit status comes back, never a byte of the device). Every
		 * range lies inside the device as lsblk sized it; a range cmp finds
		 * shorter than asked (the device shrank, or a read came up short)
		 * is "not zero", like a difference: only a full-length zero answer
		 * counts as zero. A device under 1 MiB has no whole MiB to
		 * sample (the granularity of the command) and is data-bearing. */
		uint64_t mibs = d->size >> 20, off[DPROBE_SAMPLES];
		size_t k;

		if (mibs < SAMPLE_MIB) {
			set_reason(d, "%s", "smaller than 1 MiB: cannot be sampled");
			d->probed = true;
			goto out;
		}
		off[0] = 0;
		off[1] = mibs / 4;
		off[2] = mibs / 2;
		off[3] = mibs - SAMPLE_MIB;
		for (k = 0; k < DPROBE_SAMPLES; k++) {
			char at[32];
			bool zero = false;
			if (k && off[k] <= off[k - 1])
				continue;
			if (dprobe_now_ms() >= deadline_ms) {
				set_reason(d, "%s", "not probed within the time budget");
				goto out;
			}
			r = priv_sample_is_zero(env->priv, d->path, off[k], SAMPLE_MIB, &zero, &pe);
			if (r) {
				set_reason(d, "probe failed: sample %s", fh_strerror(r));
				goto out;
			}
			if (!zero) {
				snprintf(at, sizeof at, "%llu", (unsigned long long)off[k]);
				set_reason(d, "non-zero sampled sectors at %s MiB", at);
				break;
			}
		}
	}
	d->probed = true;
out:
	buf_free(&out);
}

void dprobe_deep_tree(const struct dprobe_env *env, struct dprobe *p, size_t i, int64_t deadline_ms)
{
	int root = p->devs[i].root;
	size_t k;

	for (k = 0; k < p->n; k++)
		if (p->devs[k].root == root && p->devs[k].offered)
			dprobe_deep(env, p, k, deadline_ms);
}

int dprobe_holders(const struct dprobe_env *env, const char *name, char *first, size_t cap)
{
	char path[PATH_MAX];
	DIR *dir;
	struct dirent *e;
	int r = 0;

	if (cap)
		first[0] = '\0';
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return FH_ERR_INVAL;
	if (!env->sys_block_dir || !env->sys_block_dir[0])
		return 0;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", env->sys_block_dir, name) >= sizeof path)
		return FH_ERR_INVAL;
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0; /* not a kernel block device here: lsblk's rows are all we know */
	strncat(path, "/holders", sizeof path - strlen(path) - 1);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : FH_ERR_IO;
	while ((e = readdir(dir)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		dprobe_copy_str(first, cap, e->d_name);
		r = 1;
		break;
	}
	closedir(dir);
	return r;
}
