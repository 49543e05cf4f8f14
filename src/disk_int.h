/* disk_int.h — internals shared by src/disk.c and src/disk_probe.c (not a
 * public header).
 *
 *   disk_probe.c  the inventory: lsblk rows, the device tree, what is never
 *                 offered, by-id names, the deep probe and classification
 *   disk.c        the endpoints, the cache, pending ops, the wipe executor
 */
#ifndef FH_DISK_INT_H
#define FH_DISK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "priv.h"

#define DPROBE_MOUNTS_MAX 8
#define DPROBE_SAMPLES 4

struct dprobe_dev {
	char name[64];              /* kernel name, e.g. sdb1 */
	char path[128];             /* /dev/sdb1 */
	char pkname[64];            /* parent's kernel name, "" for a root */
	char type[16];              /* disk, part, loop, lvm, crypt, raid1, rom, ... */
	uint64_t size;              /* bytes */
	bool ro, rm, rota;
	char tran[16];              /* usb, sata, nvme, ... */
	char serial[128];
	/* lsblk's view of the content (udev's probe; "" when unknown) */
	char ls_fstype[32];         /* FSTYPE: ext4, vfat, zfs_member, LVM2_member, ... */
	char ls_uuid[64];           /* UUID (shared by every member of a multi-device btrfs) */
	char ls_label[128];         /* LABEL (a ZFS member's pool name) */
	char ls_pttype[16];         /* PTTYPE */
	char parttype[48];          /* GPT type GUID or MBR type (0xef), lowercase: lsblk's
				       PARTTYPE when listed, else blkid's PART_ENTRY_TYPE */
	char mounts[DPROBE_MOUNTS_MAX][256];
	size_t nmounts;
	int parent;                 /* index, -1 for a root */
	int root;                   /* index of the top ancestor */
	int nchildren;
	bool offered;               /* may be shown, assigned, formatted */
	char excl[160];             /* roots: why never offered */
	char host_mount[256];       /* MOUNT_ROOT/<hex> it is mounted on, "" if none */
	/* the deep probe (offered devices) */
	bool probed;
	char fstype[32];            /* blkid TYPE (filesystems and members alike) */
	char uuid[64];              /* blkid UUID */
	char label[128];            /* blkid LABEL */
	char pttype[16];            /* blkid PTTYPE */
	char usage[16];             /* blkid USAGE: filesystem, raid, crypto, other */
	bool data_bearing;
	char reason[192];           /* why data-bearing; "" when blank */
	char byid[256];             /* name under by_id_dir, "" if none */
};

struct dprobe {
	struct dprobe_dev *devs;    /* lsblk order */
	size_t n;
};

struct dprobe_env {
	struct priv *priv;          /* the probing backend */
	const char *mount_root;
	const char *by_id_dir;
	const char *zfs_kstat_dir;
	const char *sys_block_dir;  /* /sys/class/block: holders */
	bool include_loop;
};

/* Parses lsblk --json --list output into p (replacing its contents), links
 * parents, marks what is never offered: a tree is tainted (root excl set,
 * nothing in it offered) by a mount outside mount_root, swap, a volume on
 * it, a member signature (dprobe_member_sig), a boot/volume partition type
 * (dprobe_system_parttype), or a filesystem UUID shared with a device
 * mounted outside mount_root (multi-device btrfs). FH_ERR_DECODE,
 * FH_ERR_TOOBIG (over DISK_MAX_DEVICES rows), FH_ERR_NOMEM. */
int dprobe_parse(const struct dprobe_env *env, const char *json, size_t n, struct dprobe *p);
/* Runs lsblk and dprobe_parse, then fills by-id names. why gets a line. */
int dprobe_inventory(const struct dprobe_env *env, struct dprobe *p, char *why, size_t whylen);
/* Probes device i (wipefs, blkid, samples) unless the monotonic deadline
 * (ms) has passed; classifies it. Fail safe: anything unknown is
 * data-bearing; a sample shorter than expected is a failed probe. A member
 * signature or a boot/volume partition type found here taints the whole
 * tree (dprobe_taint_tree). */
void dprobe_deep(const struct dprobe_env *env, struct dprobe *p, size_t i, int64_t deadline_ms);
/* dprobe_deep of every offered device of i's tree (its root and all below). */
void dprobe_deep_tree(const struct dprobe_env *env, struct dprobe *p, size_t i, int64_t deadline_ms);
/* Never offers i's tree again: the root's excl gets why (unless already
 * set), every device of the tree stops being offered. */
void dprobe_taint_tree(struct dprobe *p, size_t i, const char *why);
/* Is k i itself or below i? */
bool dprobe_is_under(const struct dprobe *p, size_t k, size_t i);
/* Signatures of a device that belongs to a pool, array, volume group,
 * encrypted or cache device: zfs_member, *_raid_member, LVM1/LVM2_member,
 * crypto_LUKS, bcache. */
bool dprobe_member_sig(const char *fstype);
/* Partition types of boot and pool/volume partitions (EFI System, BIOS
 * boot, ZFS, Linux RAID/LVM/LUKS; MBR 0xef, 0xfd, 0x8e), case-insensitive. */
bool dprobe_system_parttype(const char *parttype);
/* Holders of NAME in sys_block_dir/NAME/holders: 0 none (or NAME has no
 * directory there), 1 some (the first one's name in first), FH_ERR_IO
 * when the directory exists but cannot be read, FH_ERR_INVAL for a bad
 * name. */
int dprobe_holders(const struct dprobe_env *env, const char *name, char *first, size_t cap);
/* Index of the device whose path is path, or -1. */
int dprobe_find(const struct dprobe *p, const char *path);
void dprobe_free(struct dprobe *p);
/* Deep-copies src into dst (dst's old contents freed). */
int dprobe_copy(struct dprobe *dst, const struct dprobe *src);

/* Resolves by_id_dir/name (a symlink) lexically to /dev/...; 0 or
 * FH_ERR_NOT_FOUND / FH_ERR_INVAL. Any directory of udev links
 * (/dev/disk/by-uuid, by-path, ...) resolves the same way. */
int dprobe_resolve_byid(const char *by_id_dir, const char *name, char *out, size_t outlen);
/* Lexically normalizes an absolute path in place ("." and ".." segments,
 * repeated and trailing '/'); s must have room for PATH_MAX bytes or be
 * shorter than its buffer already (the result is never longer). */
void dprobe_normalize(char *s);
/* A by-id name: [A-Za-z0-9._:+@-], 1..200 bytes, not "." or "..". */
bool dprobe_valid_byid(const char *name);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t dprobe_now_ms(void);
/* strlcpy-alike; truncates. */
void dprobe_copy_str(char *dst, size_t cap, const char *s);

#endif
