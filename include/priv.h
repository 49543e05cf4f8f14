/* priv.h — the privileged backend: the few host operations the Proxmox API
 * cannot do, each run as a fixed argv (never a shell), through `sudo -n`
 * (mode sudo) or directly when the agent already runs as root (mode direct).
 *
 * This module never opens a network connection; the API client (pve.h)
 * never starts a process. test_fence asserts both over the built objects.
 *
 * Every call is bounded: a timeout (SIGKILL to the process group after it),
 * a cap on captured stdout, and the last bytes of stderr kept for the error.
 */
#ifndef FH_PRIV_H
#define FH_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum priv_mode { PRIV_MODE_SUDO = 0, PRIV_MODE_DIRECT = 1 };

struct priv_opts {
	enum priv_mode mode;
	const char *sudo_path;     /* default "/usr/bin/sudo" */
	const char *path;          /* PATH searched for tools; default a fixed system PATH */
	long timeout_ms;           /* per command; default 60000 */
	size_t max_output;         /* stdout cap; default 4 MiB */
	const char *self_path;     /* the agent binary run for --mount-unit; default
	                            * "/usr/bin/felhom-agent" (the path sudoers names) */
};

/* Detail of the last failure, filled by every call when err is not NULL. */
struct priv_err {
	int exit_status;          /* exit code, or 128+signal; -1 if never ran */
	char stderr_tail[512];    /* last bytes of stderr, NUL-terminated */
	char program[64];         /* argv[0] basename */
};

struct priv;

int priv_new(const struct priv_opts *o, struct priv **out);
void priv_free(struct priv *p);

/* Runs argv (argv[0] a bare tool name looked up in opts.path) with no shell,
 * an empty environment except PATH and LC_ALL=C, stdin from /dev/null.
 * stdout is collected into *out (may be NULL to discard). Errors:
 * FH_ERR_SPAWN, FH_ERR_EXIT (non-zero exit; err filled), FH_ERR_TIMEOUT,
 * FH_ERR_TOOBIG (stdout over cap), FH_ERR_INVAL (argv element with a NUL
 * or empty, or argv[0] containing '/'). */
int priv_run(struct priv *p, const char *const argv[], struct buf *out, struct priv_err *err);

/* The golden LXC: `pct create VMID TEMPLATE --hostname H --features keyctl=1,nesting=1
 * --unprivileged 1 --storage S --rootfs S:GIB --memory MIB --cores N --net0 ...`.
 * Why not the API: the keyctl feature flag may be set only by root@pam,
 * never by an API token (pve-container LXC.pm). */
struct priv_golden {
	int vmid;
	const char *ostemplate;   /* e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst */
	const char *hostname;
	const char *storage;
	int rootfs_gib;
	int memory_mib;
	int cores;
	const char *net0;         /* e.g. name=eth0,bridge=vmbr0,ip=dhcp */
};
int priv_pct_create_golden(struct priv *p, const struct priv_golden *g, struct priv_err *err);

/* Mount a filesystem by UUID: `mount -t FSTYPE -o nodev,nosuid[,OPTS] UUID=... TARGET`.
 * Why not the API: host mounts are not a Proxmox API operation. */
int priv_mount_uuid(struct priv *p, const char *uuid, const char *target,
		    const char *fstype, const char *options, struct priv_err *err);

/* `smartctl --json -a DEV`. smartctl's exit status is a bit mask: bits 0-1
 * mean the command failed; bits 2-7 report disk state (8 = failing), so
 * any exit with bits 0-1 clear is success and stdout is kept.
 * Why not the API: the API's SMART view is text/attribute lists per disk and
 * needs Sys.Audit on /; the JSON form and NVMe wear are only in smartctl. */
int priv_smartctl(struct priv *p, const char *dev, struct buf *out, struct priv_err *err);

/* `sensors -j`. Why not the API: Proxmox exposes no sensor readings. */
int priv_sensors(struct priv *p, struct buf *out, struct priv_err *err);

/* `wipefs --no-act --json DEV` (read-only probe of signatures).
 * Why not the API: Proxmox has no read-only signature probe. */
int priv_wipefs_probe(struct priv *p, const char *dev, struct buf *out, struct priv_err *err);

/* `blkid -p -o export DEV`. Why not the API: as wipefs. */
int priv_blkid_probe(struct priv *p, const char *dev, struct buf *out, struct priv_err *err);

/* `mkfs -t FSTYPE DEV` for fstype in {ext4, xfs, btrfs, vfat}. Callers must
 * have judged the device blank first. Why not the API: Proxmox creates
 * filesystems only as whole storages (and wipes first). */
int priv_mkfs(struct priv *p, const char *dev, const char *fstype, struct priv_err *err);

/* `pct set VMID -mpN HOSTPATH,mp=GUESTPATH[,ro=1]`. Why not the API: bind
 * mount points are allowed only to root@pam, never to an API token. */
int priv_pct_set_bind_mp(struct priv *p, int vmid, int mp_index, const char *host_path,
			 const char *guest_path, bool read_only, struct priv_err *err);

/* ---- disk management (disk.h) ---- */

/* `lsblk --json --bytes --list --output PRIV_LSBLK_COLUMNS`: every block
 * device, one flat list (parents by PKNAME). Why not the API: Proxmox's
 * disk list has no filesystem UUIDs, partitions' parents or mount points. */
#define PRIV_LSBLK_COLUMNS "NAME,PATH,PKNAME,TYPE,SIZE,RO,RM,ROTA,TRAN,SERIAL,FSTYPE,UUID,LABEL,PTTYPE,PARTTYPE,MOUNTPOINTS"
int priv_lsblk(struct priv *p, struct buf *out, struct priv_err *err);

/* `cmp -s -n MIBM -i OFFSETM:0 DEV /dev/zero` (M = 2^20 bytes): are the mib
 * MiB at offset_mib MiB of DEV all zero? For the "non-zero sampled sectors"
 * test of a device without signatures; no byte of the device reaches the
 * agent. *zero is true only when cmp exits 0; exit 1 (a difference, or the
 * range runs past the end of the device) is *zero false and 0; exit 2 or
 * anything else is FH_ERR_EXIT (and *zero false). offset_mib <=
 * PRIV_SAMPLE_MAX_MIB, 1 <= mib <= PRIV_SAMPLE_MAX_LEN_MIB; else
 * FH_ERR_INVAL and nothing runs. Why not the API: no raw reads there. */
#define PRIV_SAMPLE_MAX_MIB ((uint64_t)1 << 40)
#define PRIV_SAMPLE_MAX_LEN_MIB 64
int priv_sample_is_zero(struct priv *p, const char *dev, uint64_t offset_mib, uint64_t mib, bool *zero,
			struct priv_err *err);

/* `wipefs -a DEV`: erases every signature of DEV (the signed storage_wipe
 * only). Why not the API: Proxmox wipes only disks it is about to use. */
int priv_wipefs_all(struct priv *p, const char *dev, struct priv_err *err);

/* `pct set VMID -delete mpN`. Why not the API: a bind mount point's removal
 * is refused to API tokens like its creation. */
int priv_pct_delete_mp(struct priv *p, int vmid, int mp_index, struct priv_err *err);

/* Persistent host mounts are systemd mount units, made by PID 1 (the
 * agent's sandbox has its own mount namespace, and /etc is read-only in
 * it). The agent's own binary writes and enables them as root, from a fixed
 * template, every argument checked again there (mountunit.h):
 *
 * `SELF --mount-unit add MOUNT_ROOT UUID FSTYPE OPTIONS` (SELF =
 * opts.self_path): the unit MOUNT_ROOT/.units/<escaped MOUNT_ROOT/HEX>.mount
 * mounting /dev/disk/by-uuid/UUID at MOUNT_ROOT/HEX (HEX = UUID without
 * dashes, lower case), enabled and started. options: the guest's list
 * (NULL or "" for none), passed in mountunit_options()' canonical form
 * ("nodev,nosuid,nofail" first, always). FH_ERR_INVAL (nothing runs) for
 * anything mountunit_check_add refuses; FH_ERR_SPAWN when SELF is not an
 * executable file; FH_ERR_EXIT with the helper's one-line reason in
 * err->stderr_tail. */
int priv_mount_unit_add(struct priv *p, const char *mount_root, const char *uuid, const char *fstype,
			const char *options, struct priv_err *err);
/* `SELF --mount-unit remove MOUNT_ROOT HEX`: stops, disables and deletes
 * that unit (succeeds doing nothing when it is not installed). HEX: 32 or 8
 * lower-case hex digits. Errors as for add. */
int priv_mount_unit_remove(struct priv *p, const char *mount_root, const char *hex, struct priv_err *err);

#endif
