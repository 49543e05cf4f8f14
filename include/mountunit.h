/* mountunit.h — the root side of persistent host mounts: the mount unit of
 * one data filesystem, written from a fixed template and handed to PID 1.
 *
 * The agent user never supplies a unit's text, name or location. It runs
 * (through sudo, priv_mount_unit_add/_remove in priv.h)
 *
 *   felhom-agent --mount-unit add MOUNT_ROOT UUID FSTYPE OPTIONS
 *   felhom-agent --mount-unit remove MOUNT_ROOT HEX
 *
 * and this module, as root, checks every argument again and derives the rest:
 *
 *   MOUNT_ROOT  "/mnt", "/media" or "/srv", optionally followed by
 *               "/"-separated components of [A-Za-z0-9_]; at most
 *               MOUNTUNIT_ROOT_MAX bytes (so no "..", "//", "%", newline).
 *   UUID        a filesystem UUID: 8-4-4-4-12 hex digits for ext4, xfs and
 *               btrfs; XXXX-XXXX for vfat and exfat (either case, as blkid
 *               prints it: it names /dev/disk/by-uuid/UUID).
 *   FSTYPE      ext4 | xfs | btrfs | vfat | exfat.
 *   OPTIONS     the canonical form mountunit_options() produces:
 *               "nodev,nosuid,nofail" then ",noexec", ",noatime",
 *               ",relatime", ",ro" or ",rw", each optional, in that order.
 *   HEX         the UUID without dashes, lower case (32 or 8 digits).
 *
 *   Where=MOUNT_ROOT/HEX, unit name = Where escaped by systemd's rules (with
 *   this alphabet: the leading "/" dropped, every other "/" a "-") + ".mount",
 *   unit file MOUNT_ROOT/.units/NAME.
 *
 * add: opens every directory from "/" to MOUNT_ROOT/.units without following
 * a symbolic link, creating what is missing (0755), and requires each to be
 * a directory owned by root and writable by nobody else; refuses a unit name
 * that another unit file already claims (a regular file, or a link to any
 * other file, in /etc/systemd/system, /run/systemd/system,
 * /run/systemd/generator, /usr/lib/systemd/system or /lib/systemd/system),
 * a mount point that exists and is not a directory, and a unit file path
 * that exists and is not a regular file; writes the unit through a temporary
 * file (O_EXCL|O_NOFOLLOW, 0644, fsync) renamed into place; then runs
 * `systemctl enable --now MOUNT_ROOT/.units/NAME`. When that fails it runs
 * `systemctl disable --now NAME` and removes the file: a failed add leaves
 * no unit behind.
 *
 * remove: the same directory checks (nothing created); when no regular
 * file MOUNT_ROOT/.units/NAME exists nothing is ours and nothing runs (0);
 * else `systemctl disable --now NAME`, and when that succeeded the file is
 * unlinked. Only names derived here are ever passed to systemctl.
 *
 * systemctl runs through proc.h (fixed argv, environment PATH and LC_ALL=C
 * only, MOUNTUNIT_SYSTEMCTL_TIMEOUT_MS). Library code: nothing is printed;
 * `why` receives one line for the operator.
 */
#ifndef FH_MOUNTUNIT_H
#define FH_MOUNTUNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MOUNTUNIT_ROOT_MAX 180          /* bytes of MOUNT_ROOT */
#define MOUNTUNIT_OPTIONS_MAX 64        /* bytes of the canonical options */
#define MOUNTUNIT_TEXT_MAX 1024         /* bytes of a rendered unit */
#define MOUNTUNIT_SYSTEMCTL_TIMEOUT_MS 45000L
#define MOUNTUNIT_SYSTEMCTL "/usr/bin/systemctl"

/* The checked arguments and everything derived from them. */
struct mountunit_args {
	char mount_root[MOUNTUNIT_ROOT_MAX + 1];
	char uuid[37];                  /* "" for remove */
	char fstype[8];                 /* "" for remove */
	char options[MOUNTUNIT_OPTIONS_MAX];   /* canonical; "" for remove */
	char hex[33];
	char where[MOUNTUNIT_ROOT_MAX + 34];    /* MOUNT_ROOT/HEX */
	char unit[MOUNTUNIT_ROOT_MAX + 40];     /* escaped Where + ".mount" */
};

/* Where the helper acts. The command line uses { "/", MOUNTUNIT_SYSTEMCTL,
 * 0 } and refuses to run unless the effective uid is 0; tests pass a
 * private directory standing for "/", a recording fake systemctl and their
 * own uid. */
struct mountunit_env {
	const char *root;               /* an existing directory that stands for "/" */
	const char *systemctl;          /* absolute path of systemctl */
	uid_t owner;                    /* required owner of every directory on the way */
};

/* Canonical OPTIONS from a guest's comma list: NULL or "" is
 * "nodev,nosuid,nofail"; tokens from nodev nosuid noexec noatime relatime
 * ro rw nofail, each at most once, ro and rw not together, no empty token.
 * 0, or FH_ERR_INVAL (bad list), FH_ERR_TOOBIG (cap under
 * MOUNTUNIT_OPTIONS_MAX). */
int mountunit_options(const char *in, char *out, size_t cap);

/* Is s an acceptable MOUNT_ROOT (see above)? */
bool mountunit_valid_root(const char *s);

/* The unit name of an absolute path of [A-Za-z0-9_/] without empty
 * components ("/mnt/felhom/ab12" -> "mnt-felhom-ab12.mount"). 0,
 * FH_ERR_INVAL (another byte, "/", "//", trailing "/"), FH_ERR_TOOBIG. */
int mountunit_unit_name(const char *where, char *out, size_t cap);

/* Checks the add arguments (options must be canonical already) and fills
 * *a. 0 or FH_ERR_INVAL with why set. */
int mountunit_check_add(const char *mount_root, const char *uuid, const char *fstype, const char *options,
			struct mountunit_args *a, char *why, size_t whylen);

/* Checks the remove arguments and fills *a (uuid, fstype, options "").
 * 0 or FH_ERR_INVAL with why set. */
int mountunit_check_remove(const char *mount_root, const char *hex, struct mountunit_args *a, char *why,
			   size_t whylen);

/* The unit file's text for checked add arguments; NUL-terminated in out.
 * 0 or FH_ERR_TOOBIG (cap under MOUNTUNIT_TEXT_MAX is always enough). */
int mountunit_render(const struct mountunit_args *a, char *out, size_t cap);

/* add / remove as described above; each checks its arguments first.
 * 0, or FH_ERR_INVAL (argument or an unsafe state on disk refused; nothing
 * written), FH_ERR_IO (a file operation failed), FH_ERR_SPAWN,
 * FH_ERR_EXIT, FH_ERR_TIMEOUT (systemctl); why says which. */
int mountunit_add(const struct mountunit_env *env, const char *mount_root, const char *uuid, const char *fstype,
		  const char *options, char *why, size_t whylen);
int mountunit_remove(const struct mountunit_env *env, const char *mount_root, const char *hex, char *why,
		     size_t whylen);

#endif
