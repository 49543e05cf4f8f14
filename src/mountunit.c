/* mountunit.c — the root side of persistent host mounts (see mountunit.h).
 *
 * Runs as root on behalf of an unprivileged caller, so nothing it is given
 * is trusted: every argument is checked against a narrow shape, the unit's
 * text comes from one fixed template, and every directory on the way to
 * the unit file is opened one component at a time without following a
 * symbolic link and must be root's and writable by nobody else (so no one
 * else can swap a component after it was checked). systemctl runs through
 * proc.h with a fixed argv; the only unit name it ever sees is derived here.
 */
#include "mountunit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "proc.h"

#define MU_ENV_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define MU_MAX_OUTPUT ((size_t)64 << 10)

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One line: control bytes become spaces. */
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	if (!why || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	for (i = 0; why[i]; i++)
		if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] == 0x7f)
			why[i] = ' ';
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* --------------------------------------------------------------- shapes */

bool mountunit_valid_root(const char *s)
{
	static const char *const tops[] = { "/mnt", "/media", "/srv", NULL };
	size_t i, n, k;
	const char *c;

	if (!s)
		return false;
	n = strnlen(s, MOUNTUNIT_ROOT_MAX + 1);
	if (n > MOUNTUNIT_ROOT_MAX)
		return false;
	for (i = 0; tops[i]; i++) {
		k = strlen(tops[i]);
		if (strncmp(s, tops[i], k) == 0 && (s[k] == '\0' || s[k] == '/'))
			break;
	}
	if (!tops[i])
		return false;
	/* then ("/" word+)* */
	for (c = s + k; *c;) {
		if (*c != '/' || !is_word(c[1]))
			return false;
		for (c++; is_word(*c); c++)
			;
	}
	return true;
}

int mountunit_unit_name(const char *where, char *out, size_t cap)
{
	size_t i, o = 0;

	if (!where || !out || where[0] != '/' || where[1] == '\0')
		return FH_ERR_INVAL;
	/* systemd's path escaping: drop the leading "/", "/" -> "-"; every byte
	 * allowed here is one systemd keeps as it is (no "-", ".", "\"). */
	for (i = 1; where[i]; i++) {
		char c = where[i];
		if (c == '/') {
			if (where[i - 1] == '/' || where[i + 1] == '\0')
				return FH_ERR_INVAL;
			c = '-';
		} else if (!is_word(c)) {
			return FH_ERR_INVAL;
		}
		if (o + 1 >= cap)
			return FH_ERR_TOOBIG;
		out[o++] = c;
	}
	if (o + sizeof ".mount" > cap)
		return FH_ERR_TOOBIG;
	memcpy(out + o, ".mount", sizeof ".mount");
	return 0;
}

int mountunit_options(const char *in, char *out, size_t cap)
{
	/* the allow-list in canonical order; the first three always apply */
	static const char *const order[] = { "nodev", "nosuid", "nofail", "noexec", "noatime", "relatime", "ro", "rw", NULL };
	bool seen[8] = { false };
	size_t o = 0, i;
	const char *s = in;

	if (!out || cap < MOUNTUNIT_OPTIONS_MAX)
		return out ? FH_ERR_TOOBIG : FH_ERR_INVAL;
	if (s && *s) {
		if (strnlen(s, 129) > 128)
			return FH_ERR_INVAL;
		for (;;) {
			size_t n = strcspn(s, ",");
			for (i = 0; order[i]; i++)
				if (strlen(order[i]) == n && strncmp(s, order[i], n) == 0)
					break;
			if (!order[i] || seen[i])
				return FH_ERR_INVAL; /* unknown, empty or repeated */
			seen[i] = true;
			if (s[n] == '\0')
				break;
			s += n + 1;
		}
		if (seen[6] && seen[7])
			return FH_ERR_INVAL; /* ro and rw */
	}
	seen[0] = seen[1] = seen[2] = true;
	for (i = 0; order[i]; i++) {
		size_t n = strlen(order[i]);
		if (!seen[i])
			continue;
		if (o)
			out[o++] = ',';
		memcpy(out + o, order[i], n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

/* 8-4-4-4-12 hex for ext4/xfs/btrfs; XXXX-XXXX for vfat/exfat. */
static bool uuid_fits(const char *u, const char *fstype)
{
	static const size_t std_dash[] = { 8, 13, 18, 23 };
	size_t n = strnlen(u, 40), i, k;
	bool short_form = !strcmp(fstype, "vfat") || !strcmp(fstype, "exfat");

	if (short_form) {
		if (n != 9)
			return false;
		for (i = 0; i < n; i++)
			if (i == 4 ? u[i] != '-' : !is_hex(u[i]))
				return false;
		return true;
	}
	if (n != 36)
		return false;
	for (i = 0, k = 0; i < n; i++) {
		if (k < 4 && i == std_dash[k]) {
			if (u[i] != '-')
				return false;
			k++;
		} else if (!is_hex(u[i])) {
			return false;
		}
	}
	return true;
}

static bool fstype_ok(const char *s)
{
	static const char *const types[] = { "ext4", "xfs", "btrfs", "vfat", "exfat", NULL };
	size_t i;

	for (i = 0; s && types[i]; i++)
		if (!strcmp(s, types[i]))
			return true;
	return false;
}

/* Fills where and unit from mount_root and hex. */
static int derive(struct mountunit_args *a, char *why, size_t whylen)
{
	int k = snprintf(a->where, sizeof a->where, "%s/%s", a->mount_root, a->hex);

	if (k < 0 || (size_t)k >= sizeof a->where || mountunit_unit_name(a->where, a->unit, sizeof a->unit) != 0) {
		set_why(why, whylen, "cannot derive the unit name");
		return FH_ERR_INVAL;
	}
	return 0;
}

static int check_root(const char *mount_root, struct mountunit_args *a, char *why, size_t whylen)
{
	memset(a, 0, sizeof *a);
	if (!mountunit_valid_root(mount_root)) {
		set_why(why, whylen, "MOUNT_ROOT must be /mnt, /media or /srv, optionally followed by /[A-Za-z0-9_]+ "
			"components, at most %d bytes", MOUNTUNIT_ROOT_MAX);
		return FH_ERR_INVAL;
	}
	memcpy(a->mount_root, mount_root, strlen(mount_root) + 1);
	return 0;
}

int mountunit_check_add(const char *mount_root, const char *uuid, const char *fstype, const char *options,
			struct mountunit_args *a, char *why, size_t whylen)
{
	char canon[MOUNTUNIT_OPTIONS_MAX];
	size_t i, o = 0;
	int r;

	if (!a)
		return FH_ERR_INVAL;
	r = check_root(mount_root, a, why, whylen);
	if (r)
		return r;
	if (!fstype_ok(fstype)) {
		set_why(why, whylen, "FSTYPE must be one of ext4, xfs, btrfs, vfat, exfat");
		return FH_ERR_INVAL;
	}
	if (!uuid || !uuid_fits(uuid, fstype)) {
		set_why(why, whylen, "UUID must be 8-4-4-4-12 hex digits (ext4, xfs, btrfs) or XXXX-XXXX (vfat, exfat)");
		return FH_ERR_INVAL;
	}
	if (!options || mountunit_options(options, canon, sizeof canon) != 0 || strcmp(canon, options) != 0) {
		set_why(why, whylen, "OPTIONS must be nodev,nosuid,nofail[,noexec][,noatime][,relatime][,ro|,rw]");
		return FH_ERR_INVAL;
	}
	memcpy(a->fstype, fstype, strlen(fstype) + 1);
	memcpy(a->uuid, uuid, strlen(uuid) + 1);
	memcpy(a->options, canon, strlen(canon) + 1);
	for (i = 0; uuid[i]; i++)
		if (uuid[i] != '-')
			a->hex[o++] = (uuid[i] >= 'A' && uuid[i] <= 'F') ? (char)(uuid[i] - 'A' + 'a') : uuid[i];
	a->hex[o] = '\0';
	return derive(a, why, whylen);
}

int mountunit_check_remove(const char *mount_root, const char *hex, struct mountunit_args *a, char *why,
			   size_t whylen)
{
	size_t n, i;
	int r;

	if (!a)
		return FH_ERR_INVAL;
	r = check_root(mount_root, a, why, whylen);
	if (r)
		return r;
	n = hex ? strnlen(hex, 40) : 0;
	for (i = 0; i < n; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			break;
	if ((n != 32 && n != 8) || i != n) {
		set_why(why, whylen, "HEX must be 32 or 8 lower-case hex digits (a UUID without dashes)");
		return FH_ERR_INVAL;
	}
	memcpy(a->hex, hex, n + 1);
	return derive(a, why, whylen);
}

int mountunit_render(const struct mountunit_args *a, char *out, size_t cap)
{
	int k;

	if (!a || !out)
		return FH_ERR_INVAL;
	k = snprintf(out, cap,
		     "# Written by felhom-agent --mount-unit; removed when the disk is ejected.\n"
		     "[Unit]\n"
		     "Description=felhom-agent disk uuid:%s\n"
		     "Before=pve-guests.service\n"
		     "\n"
		     "[Mount]\n"
		     "What=/dev/disk/by-uuid/%s\n"
		     "Where=%s\n"
		     "Type=%s\n"
		     "Options=%s\n"
		     "DirectoryMode=0755\n"
		     "\n"
		     "[Install]\n"
		     "WantedBy=multi-user.target\n",
		     a->uuid, a->uuid, a->where, a->fstype, a->options);
	if (k < 0 || (size_t)k >= cap)
		return FH_ERR_TOOBIG;
	return 0;
}

/* ---------------------------------------------------------- directories */

/* Opens dirfd/name as a directory without following a symbolic link
 * (creating it 0755 when create), and requires it to be owned by owner and
 * not writable by group or others. shown names it in why. FH_ERR_NOT_FOUND
 * when absent and not create. */
static int step(int dirfd, const char *name, bool create, uid_t owner, const char *shown, int *out, char *why,
		size_t whylen)
{
	struct stat st;
	bool made = false;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST) {
			set_why(why, whylen, "cannot create %s: %s", shown, strerror(errno));
			return FH_ERR_IO;
		}
		made = true;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return FH_ERR_NOT_FOUND;
		if (errno == ELOOP || errno == ENOTDIR) {
			set_why(why, whylen, "%s is a symbolic link or not a directory", shown);
			return FH_ERR_INVAL;
		}
		set_why(why, whylen, "cannot open %s: %s", shown, strerror(errno));
		return FH_ERR_IO;
	}
	if (made && fchmod(fd, 0755) != 0) {
		set_why(why, whylen, "cannot chmod %s: %s", shown, strerror(errno));
		close(fd);
		return FH_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		set_why(why, whylen, "cannot stat %s: %s", shown, strerror(errno));
		close(fd);
		return FH_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != owner || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		set_why(why, whylen, "%s must be a directory owned by uid %ld and writable only by it", shown,
			(long)owner);
		close(fd);
		return FH_ERR_INVAL;
	}
	*out = fd;
	return 0;
}

/* Opens MOUNT_ROOT (*mrfd) and MOUNT_ROOT/.units (*ufd) below env->root,
 * component by component. */
static int open_dirs(const struct mountunit_env *env, const struct mountunit_args *a, bool create, int *mrfd,
		     int *ufd, char *why, size_t whylen)
{
	char path[MOUNTUNIT_ROOT_MAX + 1], shown[MOUNTUNIT_ROOT_MAX + 8];
	char *comp, *save = NULL;
	int fd, next, r;

	*mrfd = *ufd = -1;
	fd = open(env->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		set_why(why, whylen, "cannot open the root directory: %s", strerror(errno));
		return FH_ERR_IO;
	}
	memcpy(path, a->mount_root, strlen(a->mount_root) + 1);
	shown[0] = '\0';
	for (comp = strtok_r(path + 1, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		size_t sl = strlen(shown);
		snprintf(shown + sl, sizeof shown - sl, "/%s", comp);
		r = step(fd, comp, create, env->owner, shown, &next, why, whylen);
		close(fd);
		if (r)
			return r;
		fd = next;
	}
	r = step(fd, ".units", create, env->owner, ".units of MOUNT_ROOT", &next, why, whylen);
	if (r) {
		close(fd);
		return r;
	}
	*mrfd = fd;
	*ufd = next;
	return 0;
}

/* ------------------------------------------------------------- the unit */

/* The unit file's absolute path as systemctl must see it. */
static int unit_path(const struct mountunit_env *env, const struct mountunit_args *a, char *out, size_t cap)
{
	size_t rl = strlen(env->root);
	int k;

	while (rl > 0 && env->root[rl - 1] == '/')
		rl--;
	k = snprintf(out, cap, "%.*s%s/.units/%s", (int)rl, env->root, a->mount_root, a->unit);
	return (k < 0 || (size_t)k >= cap) ? FH_ERR_TOOBIG : 0;
}

/* Does another unit file claim a->unit? Ours is only a link to upath. */
static int foreign_unit(const struct mountunit_env *env, const struct mountunit_args *a, const char *upath,
			char *why, size_t whylen)
{
	static const char *const dirs[] = { "etc/systemd/system", "run/systemd/system", "run/systemd/generator",
					    "usr/lib/systemd/system", "lib/systemd/system", NULL };
	char rel[PATH_MAX], target[PATH_MAX];
	struct stat st;
	size_t i;
	int rootfd, r = 0;

	rootfd = open(env->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		set_why(why, whylen, "cannot open the root directory: %s", strerror(errno));
		return FH_ERR_IO;
	}
	for (i = 0; dirs[i] && !r; i++) {
		ssize_t n;
		snprintf(rel, sizeof rel, "%s/%s", dirs[i], a->unit);
		if (fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			set_why(why, whylen, "cannot look at /%s: %s", rel, strerror(errno));
			r = FH_ERR_IO;
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			n = readlinkat(rootfd, rel, target, sizeof target - 1);
			if (n >= 0) {
				target[n] = '\0';
				if (!strcmp(target, upath))
					continue; /* the link enable made to our file */
			}
		}
		set_why(why, whylen, "/%s exists and is not ours: refusing to manage %s", rel, a->unit);
		r = FH_ERR_INVAL;
	}
	close(rootfd);
	return r;
}

static int run_systemctl(const struct mountunit_env *env, const char *verb, const char *arg, char *why,
			 size_t whylen)
{
	const char *const argv[] = { env->systemctl, verb, "--now", arg, NULL };
	const char *const envp[] = { MU_ENV_PATH, "LC_ALL=C", NULL };
	struct proc_opts po = { MOUNTUNIT_SYSTEMCTL_TIMEOUT_MS, MU_MAX_OUTPUT };
	struct proc_result res;
	int r;

	r = proc_run(env->systemctl, argv, envp, &po, NULL, &res);
	if (r == 0 && (res.signaled || res.status != 0))
		r = FH_ERR_EXIT;
	if (r)
		set_why(why, whylen, "systemctl %s --now %s: %s (exit %d): %s", verb, arg, fh_strerror(r), res.status,
			res.stderr_tail);
	return r;
}

/* Writes text as ufd/name through a temporary file renamed into place. */
static int write_unit(int ufd, const char *name, const char *text, char *why, size_t whylen)
{
	char tmp[NAME_MAX + 1];
	size_t len = strlen(text), done = 0;
	int fd, k;

	k = snprintf(tmp, sizeof tmp, ".%s.%ld.tmp", name, (long)getpid());
	if (k < 0 || (size_t)k >= sizeof tmp) {
		set_why(why, whylen, "unit name too long");
		return FH_ERR_TOOBIG;
	}
	if (unlinkat(ufd, tmp, 0) != 0 && errno != ENOENT) {
		set_why(why, whylen, "cannot remove a stale %s: %s", tmp, strerror(errno));
		return FH_ERR_IO;
	}
	fd = openat(ufd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		set_why(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
		return FH_ERR_IO;
	}
	while (done < len) {
		ssize_t w = write(fd, text + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (done != len || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		set_why(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlinkat(ufd, tmp, 0);
		return FH_ERR_IO;
	}
	close(fd);
	if (renameat(ufd, tmp, ufd, name) != 0) {
		set_why(why, whylen, "cannot rename %s: %s", tmp, strerror(errno));
		unlinkat(ufd, tmp, 0);
		return FH_ERR_IO;
	}
	(void)fsync(ufd);
	return 0;
}

static bool env_ok(const struct mountunit_env *env)
{
	return env && env->root && env->root[0] == '/' && env->systemctl && env->systemctl[0] == '/';
}

int mountunit_add(const struct mountunit_env *env, const char *mount_root, const char *uuid, const char *fstype,
		  const char *options, char *why, size_t whylen)
{
	struct mountunit_args a;
	char text[MOUNTUNIT_TEXT_MAX], upath[PATH_MAX];
	struct stat st;
	int mrfd = -1, ufd = -1, r;

	set_why(why, whylen, "%s", "");
	if (!env_ok(env)) {
		set_why(why, whylen, "bad environment");
		return FH_ERR_INVAL;
	}
	r = mountunit_check_add(mount_root, uuid, fstype, options, &a, why, whylen);
	if (!r)
		r = mountunit_render(&a, text, sizeof text);
	if (!r)
		r = unit_path(env, &a, upath, sizeof upath);
	if (r)
		return r;
	r = foreign_unit(env, &a, upath, why, whylen);
	if (r)
		return r;
	r = open_dirs(env, &a, true, &mrfd, &ufd, why, whylen);
	if (r)
		goto out;
	if (fstatat(mrfd, a.hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
		set_why(why, whylen, "the mount point %s exists and is not a directory", a.where);
		r = FH_ERR_INVAL;
		goto out;
	}
	if (fstatat(ufd, a.unit, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
		set_why(why, whylen, "%s/.units/%s exists and is not a regular file", a.mount_root, a.unit);
		r = FH_ERR_INVAL;
		goto out;
	}
	r = write_unit(ufd, a.unit, text, why, whylen);
	if (r)
		goto out;
	r = run_systemctl(env, "enable", upath, why, whylen);
	if (r) {
		/* leave nothing behind; the first failure is what is reported */
		char ignored[256];
		(void)run_systemctl(env, "disable", a.unit, ignored, sizeof ignored);
		(void)unlinkat(ufd, a.unit, 0);
		(void)fsync(ufd);
	}
out:
	if (mrfd >= 0)
		close(mrfd);
	if (ufd >= 0)
		close(ufd);
	return r;
}

int mountunit_remove(const struct mountunit_env *env, const char *mount_root, const char *hex, char *why,
		     size_t whylen)
{
	struct mountunit_args a;
	char upath[PATH_MAX];
	struct stat st;
	int mrfd = -1, ufd = -1, r;

	set_why(why, whylen, "%s", "");
	if (!env_ok(env)) {
		set_why(why, whylen, "bad environment");
		return FH_ERR_INVAL;
	}
	r = mountunit_check_remove(mount_root, hex, &a, why, whylen);
	if (!r)
		r = unit_path(env, &a, upath, sizeof upath);
	if (r)
		return r;
	r = open_dirs(env, &a, false, &mrfd, &ufd, why, whylen);
	if (r == FH_ERR_NOT_FOUND) {
		set_why(why, whylen, "%s is not installed", a.unit);
		return 0;
	}
	if (r)
		goto out;
	if (fstatat(ufd, a.unit, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT) {
			set_why(why, whylen, "%s is not installed", a.unit);
			r = 0;
		} else {
			set_why(why, whylen, "cannot look at %s: %s", a.unit, strerror(errno));
			r = FH_ERR_IO;
		}
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_why(why, whylen, "%s/.units/%s is not a regular file", a.mount_root, a.unit);
		r = FH_ERR_INVAL;
		goto out;
	}
	r = foreign_unit(env, &a, upath, why, whylen);
	if (!r)
		r = run_systemctl(env, "disable", a.unit, why, whylen);
	if (r)
		goto out;
	if (unlinkat(ufd, a.unit, 0) != 0 && errno != ENOENT) {
		set_why(why, whylen, "cannot remove %s: %s", a.unit, strerror(errno));
		r = FH_ERR_IO;
		goto out;
	}
	(void)fsync(ufd);
out:
	if (mrfd >= 0)
		close(mrfd);
	if (ufd >= 0)
		close(ufd);
	return r;
}
