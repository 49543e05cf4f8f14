/* disk.h — disk management for the in-guest controllers (SPEC §8, §7):
 * discovery (GET /disks), assign and eject (benign), format of a blank
 * device, the refusal of a data-bearing one with a durable pending
 * storage_wipe, and the executor of that wipe once an operator signed it.
 * docs/DISKS.md describes the behaviour for operators.
 *
 * Discovery runs `lsblk`, then per offered device `wipefs --no-act --json`
 * and `blkid -p` (and, for a device without any signature, up to four 1 MiB
 * samples, each `cmp`ed against /dev/zero as root: only the exit status
 * comes back, no byte of the device; a device under 1 MiB cannot be
 * sampled and is data-bearing) — all through the privileged backend
 * (priv.h). The
 * agent decides data-bearing-ness itself; nothing the controller claims
 * is read. Never offered: the system disk (anything holding a mount that
 * is not below mount_root, swap included), a disk holding LVM, RAID or
 * crypt volumes (Proxmox's own storage), a disk holding a member of a ZFS
 * pool (imported or not), RAID array, LVM volume group, LUKS or bcache
 * device, or an EFI System / BIOS boot partition (a ZFS-root system disk
 * has nothing mounted by device), a device sharing its filesystem UUID
 * with one the host mounted (multi-device btrfs), a disk any LXC guest
 * uses directly (devN, or an mpN/rootfs whose volume is a /dev path,
 * by-id and by-uuid names resolved), read-only and empty devices, loop
 * devices (unless include_loop). Each rule takes the whole disk: the disk
 * and every partition on it. Proxmox storages of a network or LVM type are
 * listed, not assignable.
 *
 * Every assign, eject and format outcome is written to the audit log
 * (audit.h; op disk_assign / disk_eject / disk_format, guest_id the asking
 * guest); a failed audit write is logged and never changes the answer.
 *
 * Host mounts: one per filesystem, at MOUNT_ROOT/<fs uuid, hex only>, made
 * persistent as a systemd mount unit that root writes from a fixed template
 * to MOUNT_ROOT/.units/ and enables (`felhom-agent --mount-unit add
 * MOUNT_ROOT UUID FSTYPE OPTIONS`, priv_mount_unit_add; mountunit.h), then
 * bound into the guest with `pct set VMID -mpN HOST,mp=WHERE`. Eject's
 * `--mount-unit remove MOUNT_ROOT HEX` stops, disables and deletes it. The
 * host mount's options are the guest's list without ro/rw (read-only is the
 * bind mount's ro=1, so guests sharing the mount keep their own mode).
 * `where` is always the path inside the guest.
 *
 * The endpoint functions produce the HTTP status and the exact JSON `data`
 * value of the controller's shape (seeds/003, agentapi.DiskInfo,
 * FormatResult, EjectResult). The caller wraps it:
 *   {"ok":<status < 300>,"data":<data>,"error":"<err, \"\" when ok>"}
 * data is always one valid JSON value (`null` where the controller reads
 * nothing: assign/eject/list failures). err is one line without secrets.
 * The functions return 0 whenever *status/data were produced (errors
 * included); a negative fh_err only when nothing could be produced
 * (FH_ERR_INVAL for NULL arguments, FH_ERR_NOMEM, FH_ERR_TOOBIG for data).
 *
 * Threads: every function may be called from any thread. Listing is
 * served from a cache (cache_ms) and never waits for a mutation; a probe
 * is bounded by probe_budget_ms overall and probe_timeout_ms per command
 * (what is not probed in time is reported data-bearing, fail safe).
 * Mutations (assign, eject, format, wipe) run one at a time.
 */
#ifndef FH_DISK_H
#define FH_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "gate.h"
#include "lapi.h"
#include "priv.h"
#include "pve.h"
#include "sig.h"

struct store;

#define DISK_BODY_MAX 4096              /* request body of assign/eject/format */
#define DISK_MAX_DEVICES 1024           /* lsblk rows considered */
#define DISK_DATA_MAX ((size_t)1 << 20) /* rendered data */
#define DISK_PENDING_MAX_TTL_S (30LL * 24 * 3600)

struct disk_opts {
	const struct priv_opts *priv;   /* required; disk makes its own backends from it */
	const struct pve_opts *pve;     /* NULL: no Proxmox (no storages, no mount points:
					   assign and eject answer 503; no guest's direct
					   device use can be checked: tests only) */
	struct store *st;               /* required: STORE_DB_PENDING */
	const char *host_id;            /* required: hub.host_id (the pending op's host_scope) */
	const char *mount_root;         /* default "/mnt/felhom"; must satisfy mountunit_valid_root
					   (/mnt, /media or /srv plus [A-Za-z0-9_] components) */
	const char *unit_stage_dir;     /* ignored (accepted for old callers): root writes the
					   unit files itself (priv_mount_unit_add) */
	const char *by_id_dir;          /* default "/dev/disk/by-id" */
	const char *zfs_kstat_dir;      /* default "/proc/spl/kstat/zfs" (imported pools) */
	const char *sys_block_dir;      /* default "/sys/class/block" (holders of a device) */
	uint64_t audit_max;             /* audit log bound (recon.audit_max_entries); 0 = AUDIT_MAX_DEFAULT */
	bool include_loop;              /* offer loop devices (tests) */
	int64_t cache_ms;               /* probe cache lifetime; default 5000 */
	int64_t probe_budget_ms;        /* one whole probe; default 8000 */
	long probe_timeout_ms;          /* one probing command; default 5000 */
	int64_t pending_ttl_s;          /* default 86400; at most DISK_PENDING_MAX_TTL_S */
	int64_t (*now)(void);           /* Unix seconds; NULL = time(NULL) (tests) */
};

struct disk;

/* Validates o, makes the backends (a probing one with probe_timeout_ms, a
 * mutating one with o->priv's timeout) and, with o->pve, a Proxmox client.
 * FH_ERR_CONFIG (why says which option), FH_ERR_NOMEM. *out (disk_free)
 * only on success. */
int disk_new(const struct disk_opts *o, struct disk **out, char *why, size_t whylen);
void disk_free(struct disk *d);

/* GET /disks for guest vmid: 200 {"vmid":N,"disks":[DiskInfo...]}; 503
 * (data null) when lsblk itself fails or the guests' configs cannot be
 * read (which devices they use is then unknown). Each DiskInfo: name, type
 * (usb|local-dir|network|lvm|disk), state (available|mounted|assigned for
 * devices; active|inactive|disabled for storages), backing_device,
 * mount_path (the guest path when assigned to vmid, the host path when
 * mounted for others), class (fast|slow|""), data_bearing, data_reason
 * ("" when blank), durable_id (uuid:<fs-uuid> | byid:<by-id name> |
 * pve:<storage> | "" when a raw device has no by-id name). */
int disk_list(struct disk *d, int vmid, int *status, struct buf *data, char *err, size_t errlen);

/* POST /disks/assign {uuid, where, fstype, options}: 200
 * {"vmid","durable_id","where","key":"mpN","host_path"}; 400 hostile or
 * malformed input, or a filesystem the mount unit helper would refuse (its
 * UUID not of its type's shape; nothing run), 404 no offered filesystem with that
 * uuid, 409 where or the filesystem already attached differently / no
 * free mpN / the uuid is on more than one device (the mount unit names
 * /dev/disk/by-uuid/UUID, which could then be either), 500/502 a command failed (a host mount made by this call is
 * undone), 503 no Proxmox. Attaching the same filesystem at the same
 * where again is 200. */
int disk_assign(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		char *err, size_t errlen);

/* POST /disks/eject {where}: 200 {"vmid","ejected":where,
 * "dependent_guests":[vmid...]} — this guest's mount point is removed; the
 * host mount is stopped and its unit removed only when no other guest
 * binds it (they are listed otherwise). 400, 404 (no agent disk at
 * where), 500/502, 503. */
int disk_eject(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
	       char *err, size_t errlen);

/* POST /disks/format {device, fstype}: device is /dev/NAME, NAME or
 * byid:NAME; fstype ext4|xfs|btrfs|vfat. data is always a FormatResult
 * {"vmid","device","formatted","data_bearing","reason"[,"pending_op"]}:
 * 200 blank device formatted (reason names the new uuid:...); 403
 * data-bearing, with pending_op {op:"storage_wipe", host_scope,
 * durable_id:"byid:...", fstype} recorded in STORE_DB_PENDING (expiry
 * pending_ttl_s; a newer refusal for the same durable id replaces it);
 * 400 bad input, 404 not an offered device, 409 mounted / no by-id name
 * to bind a wipe to / the device changed between the probe and mkfs, 500
 * probe or mkfs failure, 503 store failure. The whole disk the device is
 * on is probed; right before mkfs a fresh lsblk must show the device
 * still offered, unmounted, without holders or content, with the probed
 * size and serial, and its by-id name (if any) still naming it; mkfs then
 * runs on by_id_dir/NAME when that is a /dev path, else on /dev/NAME. */
int disk_format(struct disk *d, int vmid, const char *body, size_t n, int *status, struct buf *data,
		char *err, size_t errlen);

/* The local API's disk backend (lapi_disks_fn, lapi.h): the four
 * endpoints above by op; ctx is the struct disk. Register it with
 * lapi_set_disks(l, disk_lapi_call, d). */
int disk_lapi_call(void *ctx, enum lapi_disk_op op, int vmid, const char *body, size_t len, int *status,
		   struct buf *data, char *err, size_t errlen);

/* The host executor of a verified storage_wipe (ctx is the struct disk).
 * a: op "storage_wipe", this host, no guest, params durable_id (required,
 * "byid:NAME") and fstype (optional); vd: the verified signature (required,
 * its op/host/durable_id equal to a's). Requires an unexpired pending op
 * for durable_id (fstype equal to the recorded one when a carries it),
 * re-resolves by_id_dir/NAME and requires the same size and serial as
 * recorded; then, before anything is written, probes every device of the
 * tree (the device and all below it) and requires each still offered, not
 * mounted (by anyone, the agent included) and without holders; then
 * `wipefs -a` (its partitions first, then the device) and `mkfs -t
 * <recorded fstype>`, and removes the pending op. Errors (why: one line): FH_ERR_UNSUPPORTED (not a
 * storage_wipe), FH_ERR_PENDING_SIGNATURE (vd NULL), FH_ERR_SIG_BINDING
 * (host, durable id or fstype differ; the by-id name now names another
 * device), FH_ERR_INVAL (params missing/unknown; device in use),
 * FH_ERR_NOT_FOUND (no pending op; by-id name or device gone),
 * FH_ERR_SIG_EXPIRED (pending op expired; it is removed),
 * FH_ERR_DUPLICATE (an earlier wipe of it was interrupted), FH_ERR_IO (a
 * holders directory unreadable), store, Proxmox (the guests' configs)
 * and priv errors. Nothing is wiped unless every check passed. */
int disk_exec_wipe(void *ctx, const struct gate_action *a, const struct sig_verified *vd, char *why,
		   size_t whylen);

/* A pending destructive op as recorded. */
struct disk_pending {
	char durable_id[300];
	char fstype[16];
	char dev[128];          /* the device path at refusal time */
	uint64_t size;          /* bytes */
	char serial[128];
	int vmid;               /* the guest that asked */
	int64_t created_at, expires_at;
	bool running;           /* a wipe claimed it and did not finish */
};
/* FH_ERR_NOT_FOUND, FH_ERR_DECODE (a record that does not parse), store
 * errors. Expired records are returned as they are. */
int disk_pending_get(struct disk *d, const char *durable_id, struct disk_pending *out);
/* Removes pending ops expired at now; *removed (may be NULL) counts them. */
int disk_pending_prune(struct disk *d, int64_t now, size_t *removed);
/* Drops the probe cache (the next list probes again). */
void disk_invalidate(struct disk *d);

#endif
