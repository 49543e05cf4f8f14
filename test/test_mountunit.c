/* test_mountunit.c — the root side of host mounts (mountunit.h).
 *
 * The pure parts (options, unit names, argument checks, the rendered text)
 * are compared byte for byte. add/remove run against a private directory
 * that stands for "/" and a fake systemctl (a #!/bin/sh script that records
 * its argv to a file and fails on request), with the test's own uid as the
 * required owner; hostile states on disk (symbolic links on the way, a
 * directory others may write, a unit name another unit file claims) must be
 * refused with nothing run and nothing written. The command line is run
 * once as a non-root user: it must refuse before touching anything.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "mountunit.h"

#define UUID "0B1C2D3E-aaaa-bbbb-cccc-0123456789AB"
#define HEX "0b1c2d3eaaaabbbbcccc0123456789ab"
#define UNIT "mnt-felhom-" HEX ".mount"

static char g_dir[256];
static char g_root[300];      /* stands for "/" */
static char g_ctl[300];       /* the fake systemctl */
static char g_rec[300];       /* its record */
static char g_fail[300];      /* exists: systemctl fails */

static struct mountunit_env env(void)
{
	struct mountunit_env e = { g_root, g_ctl, geteuid() };
	return e;
}

static char *rec(void)
{
	char *s = t_slurp(g_rec, NULL);

	if (!s) {
		s = malloc(1);
		if (s)
			s[0] = '\0';
	}
	return s;
}

static void rec_clear(void)
{
	unlink(g_rec);
}

static bool rec_absent(void)
{
	return access(g_rec, F_OK) != 0;
}

static void path_of(char *out, size_t cap, const char *rel)
{
	snprintf(out, cap, "%s%s", g_root, rel);
}

static bool exists(const char *rel)
{
	char p[1100];
	struct stat st;

	path_of(p, sizeof p, rel);
	return lstat(p, &st) == 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh empty root. */
static void reset_root(void)
{
	nftw(g_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	T_CHECK(mkdir(g_root, 0755) == 0);
	T_CHECK(chmod(g_root, 0755) == 0);
	unlink(g_fail);
	rec_clear();
}

static void mkdirs(const char *rel)
{
	char p[1100], *s;

	path_of(p, sizeof p, rel);
	for (s = p + strlen(g_root) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

/* ------------------------------------------------------------ pure parts */

T_TEST(t_options_canonical)
{
	char out[MOUNTUNIT_OPTIONS_MAX];

	T_OK(mountunit_options(NULL, out, sizeof out));
	T_EQ_STR(out, "nodev,nosuid,nofail");
	T_OK(mountunit_options("", out, sizeof out));
	T_EQ_STR(out, "nodev,nosuid,nofail");
	T_OK(mountunit_options("ro,noatime,noexec", out, sizeof out));
	T_EQ_STR(out, "nodev,nosuid,nofail,noexec,noatime,ro");
	T_OK(mountunit_options("nofail,rw,relatime,nosuid,nodev", out, sizeof out));
	T_EQ_STR(out, "nodev,nosuid,nofail,relatime,rw");
	T_OK(mountunit_options("nodev,nosuid,nofail,noexec,noatime,relatime,ro", out, sizeof out));
	T_EQ_STR(out, "nodev,nosuid,nofail,noexec,noatime,relatime,ro");
	T_ERR(mountunit_options("ro,rw", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("noatime,noatime", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("suid", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("exec", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("dev", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("noatime,", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options(",noatime", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("noatime\nWhat=/etc", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("x-systemd.requires=/", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_options("noatime", out, 8), FH_ERR_TOOBIG);
}

T_TEST(t_unit_name)
{
	char out[300];

	T_OK(mountunit_unit_name("/mnt/felhom/" HEX, out, sizeof out));
	T_EQ_STR(out, UNIT);
	T_OK(mountunit_unit_name("/srv/data_1/ab12cd34", out, sizeof out));
	T_EQ_STR(out, "srv-data_1-ab12cd34.mount");
	T_OK(mountunit_unit_name("/mnt", out, sizeof out));
	T_EQ_STR(out, "mnt.mount");
	T_ERR(mountunit_unit_name("/", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_unit_name("mnt/x", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_unit_name("/mnt//x", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_unit_name("/mnt/x/", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_unit_name("/mnt/a-b", out, sizeof out), FH_ERR_INVAL);   /* would need \x2d */
	T_ERR(mountunit_unit_name("/mnt/a.b", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_unit_name("/mnt/a\\x2fb", out, sizeof out), FH_ERR_INVAL);
	T_ERR(mountunit_unit_name("/mnt/felhom", out, 10), FH_ERR_TOOBIG);
}

T_TEST(t_render_exact)
{
	struct mountunit_args a;
	char text[MOUNTUNIT_TEXT_MAX], why[256];

	T_OK(mountunit_check_add("/mnt/felhom", UUID, "ext4", "nodev,nosuid,nofail,noatime", &a, why, sizeof why));
	T_EQ_STR(a.hex, HEX);
	T_EQ_STR(a.where, "/mnt/felhom/" HEX);
	T_EQ_STR(a.unit, UNIT);
	T_OK(mountunit_render(&a, text, sizeof text));
	T_EQ_STR(text,
		 "# Written by felhom-agent --mount-unit; removed when the disk is ejected.\n"
		 "[Unit]\n"
		 "Description=felhom-agent disk uuid:" UUID "\n"
		 "Before=pve-guests.service\n"
		 "\n"
		 "[Mount]\n"
		 "What=/dev/disk/by-uuid/" UUID "\n"
		 "Where=/mnt/felhom/" HEX "\n"
		 "Type=ext4\n"
		 "Options=nodev,nosuid,nofail,noatime\n"
		 "DirectoryMode=0755\n"
		 "\n"
		 "[Install]\n"
		 "WantedBy=multi-user.target\n");
	T_ERR(mountunit_render(&a, text, 100), FH_ERR_TOOBIG);

	/* vfat's short volume id keeps its case in What=, not in Where= */
	T_OK(mountunit_check_add("/media", "ABCD-12EF", "vfat", "nodev,nosuid,nofail", &a, why, sizeof why));
	T_EQ_STR(a.hex, "abcd12ef");
	T_EQ_STR(a.unit, "media-abcd12ef.mount");
	T_OK(mountunit_render(&a, text, sizeof text));
	T_CHECK(strstr(text, "\nWhat=/dev/disk/by-uuid/ABCD-12EF\nWhere=/media/abcd12ef\nType=vfat\n"
			     "Options=nodev,nosuid,nofail\n") != NULL);

	T_OK(mountunit_check_remove("/srv/x_1", "abcd12ef", &a, why, sizeof why));
	T_EQ_STR(a.where, "/srv/x_1/abcd12ef");
	T_EQ_STR(a.unit, "srv-x_1-abcd12ef.mount");
	T_EQ_STR(a.uuid, "");
}

T_TEST(t_validation_refusals)
{
	static const char *const roots[] = {
		"/etc", "/", "", "mnt/felhom", "/mnt/../etc", "/mnt/felhom/../../etc", "/mnt/./x", "/mnt//x",
		"/mnt/x/", "/mntx", "/mnt-x", "/mediax/y", "/mnt/a-b", "/mnt/a.b", "/mnt/.units", "/mnt/a%b",
		"/mnt/%h", "/mnt/a\nb", "/mnt/a b", "/mnt/a\\x2fb", "/var/lib/felhom-agent", "/srv/a\xc3\xa9",
		"/MNT/x", NULL
	};
	static const char *const uuids_std[] = {
		"0b1c2d3e-aaaa-bbbb-cccc-0123456789a", "0b1c2d3e-aaaa-bbbb-cccc-0123456789abc",
		"0b1c2d3eaaaabbbbcccc0123456789ab", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ag",
		"0b1c2d3e-aaaa-bbbb-cccc-01234567\n9ab", "0b1c2d3e-aaaa-bbbb-cccc-0123456%89ab",
		"0b1c2d3-eaaaa-bbbb-cccc-0123456789ab", "ABCD-12EF", "------------------------------------",
		"../../../../../../../../../../../etc", "", NULL
	};
	static const char *const opts[] = {
		"", "nodev,nosuid", "nodev,nosuid,nofail,", "nodev,nosuid,nofail,suid", "nodev,nosuid,nofail,ro,rw",
		"nodev,nosuid,nofail,noatime,noexec", "noatime", "nodev,nosuid,nofail\nWhat=/etc",
		"nodev,nosuid,nofail,x-systemd.after=%i", "nofail,nodev,nosuid", "nodev,nosuid,nofail,nofail", NULL
	};
	static const char *const hexes[] = {
		HEX "0", "0B1C2D3EAAAABBBBCCCC0123456789AB", "abcd12e", "abcd-12ef", "../../etc", "abcd12eg", "",
		"abcd12ef\n", NULL
	};
	struct mountunit_args a;
	char why[256], root181[200];
	size_t i;

	for (i = 0; roots[i]; i++) {
		why[0] = '\0';
		if (mountunit_check_add(roots[i], UUID, "ext4", "nodev,nosuid,nofail", &a, why, sizeof why) !=
		    FH_ERR_INVAL)
			t_failf(__FILE__, __LINE__, "root \"%s\" accepted", roots[i]);
		T_CHECK(strstr(why, "MOUNT_ROOT") != NULL);
		if (mountunit_check_remove(roots[i], HEX, &a, why, sizeof why) != FH_ERR_INVAL)
			t_failf(__FILE__, __LINE__, "root \"%s\" accepted for remove", roots[i]);
	}
	T_ERR(mountunit_check_add(NULL, UUID, "ext4", "nodev,nosuid,nofail", &a, why, sizeof why), FH_ERR_INVAL);
	/* 180 bytes are fine, 181 are not */
	memset(root181, 'a', sizeof root181);
	memcpy(root181, "/mnt/", 5);
	root181[180] = '\0';
	T_OK(mountunit_check_add(root181, UUID, "ext4", "nodev,nosuid,nofail", &a, why, sizeof why));
	T_CHECK(strlen(a.unit) < 256);
	root181[180] = 'a';
	root181[181] = '\0';
	T_ERR(mountunit_check_add(root181, UUID, "ext4", "nodev,nosuid,nofail", &a, why, sizeof why), FH_ERR_INVAL);

	for (i = 0; uuids_std[i]; i++)
		if (mountunit_check_add("/mnt/felhom", uuids_std[i], "xfs", "nodev,nosuid,nofail", &a, why,
					sizeof why) != FH_ERR_INVAL)
			t_failf(__FILE__, __LINE__, "uuid \"%s\" accepted for xfs", uuids_std[i]);
	T_ERR(mountunit_check_add("/mnt/felhom", UUID, "vfat", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_ERR(mountunit_check_add("/mnt/felhom", "ABCD-12E", "vfat", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_ERR(mountunit_check_add("/mnt/felhom", "ABCD_12EF", "exfat", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_ERR(mountunit_check_add("/mnt/felhom", NULL, "ext4", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_OK(mountunit_check_add("/mnt/felhom", "abcd-12ef", "exfat", "nodev,nosuid,nofail", &a, why, sizeof why));

	T_ERR(mountunit_check_add("/mnt/felhom", UUID, "ntfs", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_ERR(mountunit_check_add("/mnt/felhom", UUID, "EXT4", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_ERR(mountunit_check_add("/mnt/felhom", UUID, "ext4\n", "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_ERR(mountunit_check_add("/mnt/felhom", UUID, NULL, "nodev,nosuid,nofail", &a, why, sizeof why),
	      FH_ERR_INVAL);
	T_CHECK(strstr(why, "FSTYPE") != NULL);

	for (i = 0; opts[i]; i++)
		if (mountunit_check_add("/mnt/felhom", UUID, "btrfs", opts[i], &a, why, sizeof why) != FH_ERR_INVAL)
			t_failf(__FILE__, __LINE__, "options \"%s\" accepted", opts[i]);
	T_ERR(mountunit_check_add("/mnt/felhom", UUID, "btrfs", NULL, &a, why, sizeof why), FH_ERR_INVAL);

	for (i = 0; hexes[i]; i++)
		if (mountunit_check_remove("/mnt/felhom", hexes[i], &a, why, sizeof why) != FH_ERR_INVAL)
			t_failf(__FILE__, __LINE__, "hex \"%s\" accepted", hexes[i]);
	T_ERR(mountunit_check_remove("/mnt/felhom", NULL, &a, why, sizeof why), FH_ERR_INVAL);
	/* why is always one line */
	T_CHECK(strchr(why, '\n') == NULL);
}

/* -------------------------------------------------------- add / remove */

static const char want_text[] =
	"# Written by felhom-agent --mount-unit; removed when the disk is ejected.\n"
	"[Unit]\n"
	"Description=felhom-agent disk uuid:" UUID "\n"
	"Before=pve-guests.service\n"
	"\n"
	"[Mount]\n"
	"What=/dev/disk/by-uuid/" UUID "\n"
	"Where=/mnt/felhom/" HEX "\n"
	"Type=ext4\n"
	"Options=nodev,nosuid,nofail,noexec\n"
	"DirectoryMode=0755\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

static int add(char *why, size_t whylen)
{
	struct mountunit_env e = env();
	return mountunit_add(&e, "/mnt/felhom", UUID, "ext4", "nodev,nosuid,nofail,noexec", why, whylen);
}

static int del(char *why, size_t whylen)
{
	struct mountunit_env e = env();
	return mountunit_remove(&e, "/mnt/felhom", HEX, why, whylen);
}

T_TEST(t_add_and_remove)
{
	char p[1100], want[1200], why[512], *got, *text;
	struct stat st;

	reset_root();
	T_OK(add(why, sizeof why));
	path_of(p, sizeof p, "/mnt/felhom/.units/" UNIT);
	text = t_slurp(p, NULL);
	T_EQ_STR(text, want_text);
	free(text);
	T_CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 &&
		st.st_uid == geteuid());
	path_of(p, sizeof p, "/mnt/felhom/.units");
	T_CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
	path_of(p, sizeof p, "/mnt/felhom");
	T_CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
	path_of(p, sizeof p, "/mnt");
	T_CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
	/* no temporary file left */
	{
		char tmp[700];
		snprintf(tmp, sizeof tmp, "/mnt/felhom/.units/.%s.%ld.tmp", UNIT, (long)getpid());
		T_CHECK(!exists(tmp));
	}
	snprintf(want, sizeof want, "%s\nenable\n--now\n%s/mnt/felhom/.units/%s\n--\n", g_ctl, g_root, UNIT);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* again: the same file, enabled again */
	rec_clear();
	T_OK(add(why, sizeof why));
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* the link enable makes to our file is ours, not a foreign unit */
	mkdirs("/etc/systemd/system");
	{
		char link[1100], target[1100];
		path_of(link, sizeof link, "/etc/systemd/system/" UNIT);
		path_of(target, sizeof target, "/mnt/felhom/.units/" UNIT);
		T_CHECK(symlink(target, link) == 0);
	}
	rec_clear();
	T_OK(del(why, sizeof why));
	snprintf(want, sizeof want, "%s\ndisable\n--now\n%s\n--\n", g_ctl, UNIT);
	got = rec();
	T_EQ_STR(got, want);
	free(got);
	T_CHECK(!exists("/mnt/felhom/.units/" UNIT));
	T_CHECK(exists("/mnt/felhom/.units"));

	/* nothing installed: nothing runs, success */
	rec_clear();
	T_OK(del(why, sizeof why));
	T_CHECK(rec_absent());
	reset_root();
	T_OK(del(why, sizeof why));
	T_CHECK(rec_absent());
	T_CHECK(!exists("/mnt")); /* remove creates nothing */

	/* MOUNT_ROOT itself may be a top directory */
	{
		struct mountunit_env e = env();
		T_OK(mountunit_add(&e, "/srv", "ABCD-12EF", "vfat", "nodev,nosuid,nofail,ro", why, sizeof why));
		T_CHECK(exists("/srv/.units/srv-abcd12ef.mount"));
		T_OK(mountunit_remove(&e, "/srv", "abcd12ef", why, sizeof why));
		T_CHECK(!exists("/srv/.units/srv-abcd12ef.mount"));
	}
}

T_TEST(t_systemctl_failures)
{
	char p[1100], want[1200], why[512], *got;

	/* a failed enable is undone: disabled, file gone, the first error kept */
	reset_root();
	T_CHECK(t_write_file(g_fail, "", 0644) == 0);
	T_ERR(add(why, sizeof why), FH_ERR_EXIT);
	T_CHECK(strstr(why, "systemctl enable --now") != NULL);
	T_CHECK(strstr(why, UNIT " failed.") != NULL);
	T_CHECK(strchr(why, '\n') == NULL);
	T_CHECK(!exists("/mnt/felhom/.units/" UNIT));
	snprintf(want, sizeof want, "%s\nenable\n--now\n%s/mnt/felhom/.units/%s\n--\n%s\ndisable\n--now\n%s\n--\n",
		 g_ctl, g_root, UNIT, g_ctl, UNIT);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* a failed disable keeps the file */
	unlink(g_fail);
	T_OK(add(why, sizeof why));
	T_CHECK(t_write_file(g_fail, "", 0644) == 0);
	T_ERR(del(why, sizeof why), FH_ERR_EXIT);
	T_CHECK(exists("/mnt/felhom/.units/" UNIT));
	unlink(g_fail);

	/* systemctl missing */
	{
		struct mountunit_env e = env();
		snprintf(p, sizeof p, "%s/no-systemctl", g_dir);
		e.systemctl = p;
		T_ERR(mountunit_remove(&e, "/mnt/felhom", HEX, why, sizeof why), FH_ERR_SPAWN);
		T_CHECK(exists("/mnt/felhom/.units/" UNIT));
	}
}

/* The symbolic link / ownership refusals: nothing runs, nothing written. */
static void expect_refused(const char *what, int r, const char *why)
{
	if (r != FH_ERR_INVAL)
		t_failf(__FILE__, __LINE__, "%s: got %d (%s), want invalid_argument", what, r, t_errname(r));
	if (!rec_absent())
		t_failf(__FILE__, __LINE__, "%s: systemctl ran", what);
	if (strchr(why, '\n'))
		t_failf(__FILE__, __LINE__, "%s: why has a newline", what);
}

T_TEST(t_unsafe_states_refused)
{
	char p[1100], q[1100], why[512], *s;

	/* .units is a symbolic link to a directory the caller controls */
	reset_root();
	mkdirs("/mnt/felhom");
	mkdirs("/elsewhere");
	path_of(p, sizeof p, "/mnt/felhom/.units");
	path_of(q, sizeof q, "/elsewhere");
	T_CHECK(symlink(q, p) == 0);
	expect_refused(".units symlink (add)", add(why, sizeof why), why);
	T_CHECK(strstr(why, "symbolic link") != NULL);
	T_CHECK(!exists("/elsewhere/" UNIT));
	expect_refused(".units symlink (remove)", del(why, sizeof why), why);

	/* MOUNT_ROOT, or a directory above it, is a symbolic link */
	reset_root();
	mkdirs("/mnt");
	mkdirs("/elsewhere");
	path_of(p, sizeof p, "/mnt/felhom");
	path_of(q, sizeof q, "/elsewhere");
	T_CHECK(symlink(q, p) == 0);
	expect_refused("MOUNT_ROOT symlink", add(why, sizeof why), why);
	T_CHECK(!exists("/elsewhere/.units"));
	reset_root();
	mkdirs("/real/felhom");
	path_of(p, sizeof p, "/mnt");
	path_of(q, sizeof q, "/real");
	T_CHECK(symlink(q, p) == 0);
	expect_refused("/mnt symlink", add(why, sizeof why), why);
	T_CHECK(!exists("/real/felhom/.units"));

	/* the unit file is a symbolic link (to a secret, say): neither
	 * overwritten nor followed, by add or by remove */
	reset_root();
	mkdirs("/mnt/felhom/.units");
	path_of(q, sizeof q, "/secret");
	T_CHECK(t_write_file(q, "secret\n", 0600) == 0);
	path_of(p, sizeof p, "/mnt/felhom/.units/" UNIT);
	T_CHECK(symlink(q, p) == 0);
	expect_refused("unit symlink (add)", add(why, sizeof why), why);
	expect_refused("unit symlink (remove)", del(why, sizeof why), why);
	s = t_slurp(q, NULL);
	T_EQ_STR(s, "secret\n");
	free(s);
	T_CHECK(exists("/mnt/felhom/.units/" UNIT)); /* the link itself stays */

	/* the unit path is a directory */
	reset_root();
	mkdirs("/mnt/felhom/.units/" UNIT);
	expect_refused("unit directory", add(why, sizeof why), why);

	/* a directory on the way that others may write */
	reset_root();
	mkdirs("/mnt/felhom");
	path_of(p, sizeof p, "/mnt/felhom");
	T_CHECK(chmod(p, 0775) == 0);
	expect_refused("group-writable MOUNT_ROOT", add(why, sizeof why), why);
	T_CHECK(strstr(why, "/mnt/felhom") != NULL);
	T_CHECK(!exists("/mnt/felhom/.units"));
	T_CHECK(chmod(p, 01777) == 0);
	expect_refused("world-writable MOUNT_ROOT", add(why, sizeof why), why);

	/* a directory on the way owned by someone else */
	if (geteuid() == 0) {
		reset_root();
		mkdirs("/mnt/felhom/.units");
		path_of(p, sizeof p, "/mnt/felhom/.units");
		T_CHECK(chown(p, 12345, 12345) == 0);
		expect_refused("foreign-owned .units (add)", add(why, sizeof why), why);
		expect_refused("foreign-owned .units (remove)", del(why, sizeof why), why);
	} else {
		printf("# not root: the foreign-owner case did not run\n");
	}

	/* the mount point exists and is not a directory */
	reset_root();
	mkdirs("/mnt/felhom");
	path_of(p, sizeof p, "/mnt/felhom/" HEX);
	T_CHECK(t_write_file(p, "", 0644) == 0);
	expect_refused("mount point file", add(why, sizeof why), why);
	T_CHECK(!exists("/mnt/felhom/.units/" UNIT));
	reset_root();
	mkdirs("/mnt/felhom");
	path_of(p, sizeof p, "/mnt/felhom/" HEX);
	path_of(q, sizeof q, "/etc");
	mkdirs("/etc");
	T_CHECK(symlink(q, p) == 0);
	expect_refused("mount point symlink", add(why, sizeof why), why);

	/* another unit file already claims the name (a Proxmox directory
	 * storage, an fstab mount, a link to some other file) */
	{
		static const char *const claims[] = { "/etc/systemd/system", "/run/systemd/generator",
						      "/run/systemd/system", "/usr/lib/systemd/system", NULL };
		size_t i;
		for (i = 0; claims[i]; i++) {
			char rel[300];
			reset_root();
			mkdirs(claims[i]);
			snprintf(rel, sizeof rel, "%s/%s", claims[i], UNIT);
			path_of(p, sizeof p, rel);
			T_CHECK(t_write_file(p, "[Mount]\n", 0644) == 0);
			expect_refused(claims[i], add(why, sizeof why), why);
			T_CHECK(strstr(why, "not ours") != NULL);
			T_CHECK(!exists("/mnt/felhom/.units/" UNIT));
		}
		reset_root();
		mkdirs("/etc/systemd/system");
		path_of(p, sizeof p, "/etc/systemd/system/" UNIT);
		T_CHECK(symlink("/mnt/other/.units/" UNIT, p) == 0);
		expect_refused("link elsewhere", add(why, sizeof why), why);
		/* and remove will not disable it either, even with our file there */
		unlink(p);
		T_OK(add(why, sizeof why));
		T_CHECK(t_write_file(p, "[Mount]\n", 0644) == 0);
		rec_clear();
		expect_refused("foreign unit (remove)", del(why, sizeof why), why);
	}

	/* a stale temporary file (even a symbolic link) is replaced, not followed */
	reset_root();
	mkdirs("/mnt/felhom/.units");
	path_of(q, sizeof q, "/secret");
	T_CHECK(t_write_file(q, "secret\n", 0600) == 0);
	{
		char rel[700];
		snprintf(rel, sizeof rel, "/mnt/felhom/.units/.%s.%ld.tmp", UNIT, (long)getpid());
		path_of(p, sizeof p, rel);
		T_CHECK(symlink(q, p) == 0);
		T_OK(add(why, sizeof why));
		T_CHECK(!exists(rel));
	}
	s = t_slurp(q, NULL);
	T_EQ_STR(s, "secret\n");
	free(s);
	path_of(p, sizeof p, "/mnt/felhom/.units/" UNIT);
	s = t_slurp(p, NULL);
	T_EQ_STR(s, want_text);
	free(s);

	/* bad environment */
	{
		struct mountunit_env e = env();
		e.systemctl = "systemctl";
		T_ERR(mountunit_add(&e, "/mnt/felhom", UUID, "ext4", "nodev,nosuid,nofail", why, sizeof why),
		      FH_ERR_INVAL);
		T_ERR(mountunit_add(NULL, "/mnt/felhom", UUID, "ext4", "nodev,nosuid,nofail", why, sizeof why),
		      FH_ERR_INVAL);
	}
	/* argument refusals touch nothing */
	reset_root();
	{
		struct mountunit_env e = env();
		expect_refused("bad root", mountunit_add(&e, "/etc", UUID, "ext4", "nodev,nosuid,nofail", why,
							 sizeof why), why);
		expect_refused("bad options", mountunit_add(&e, "/mnt/felhom", UUID, "ext4", "nodev,nosuid,nofail,suid",
							    why, sizeof why), why);
		expect_refused("bad hex", mountunit_remove(&e, "/mnt/felhom", "../../etc", why, sizeof why), why);
		T_CHECK(!exists("/mnt"));
	}
}

/* The command line: not root -> refused before anything; bad shape -> 2. */
T_TEST(t_cli)
{
	char agent[400], *out = NULL, *err = NULL;
	int st;

	snprintf(agent, sizeof agent, "%s/felhom-agent", t_build_dir());
	{
		const char *argv[] = { agent, "--mount-unit", "add", "/mnt/felhom", NULL };
		const char *envp[] = { "PATH=/usr/bin:/bin", NULL };
		st = t_run_cmd(argv, envp, &out, &err);
		T_EQ_INT(st, 2);
		T_CHECK(err && strstr(err, "--mount-unit add MOUNT_ROOT") != NULL);
		free(out);
		free(err);
	}
	/* as a user other than root (nobody when we are root) */
	{
		int pipefd[2];
		pid_t pid;
		char buf[512] = "";
		ssize_t n;

		T_CHECK(pipe(pipefd) == 0);
		pid = fork();
		if (pid == 0) {
			char a1[] = "--mount-unit", a2[] = "add", a3[] = "/mnt/felhom", a4[] = UUID, a5[] = "ext4",
			     a6[] = "nodev,nosuid,nofail";
			char *const argv[] = { agent, a1, a2, a3, a4, a5, a6, NULL };
			char *const envp[] = { NULL };
			dup2(pipefd[1], 2);
			close(pipefd[0]);
			if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
				_exit(99);
			execve(agent, argv, envp);
			_exit(98);
		}
		close(pipefd[1]);
		n = read(pipefd[0], buf, sizeof buf - 1);
		if (n > 0)
			buf[n] = '\0';
		close(pipefd[0]);
		T_CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
		T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
		T_CHECK(strstr(buf, "must run as root") != NULL);
		T_CHECK(strchr(buf, '\n') == buf + strlen(buf) - 1); /* one line */
	}
}

int main(void)
{
	char script[1200];

	t_tmpdir(g_dir, sizeof g_dir);
	chmod(g_dir, 0755);
	snprintf(g_root, sizeof g_root, "%s/root", g_dir);
	snprintf(g_ctl, sizeof g_ctl, "%s/systemctl", g_dir);
	snprintf(g_rec, sizeof g_rec, "%s/record", g_dir);
	snprintf(g_fail, sizeof g_fail, "%s/fail", g_dir);
	snprintf(script, sizeof script,
		 "#!/bin/sh\n"
		 "{ printf '%%s\\n' \"$0\"; for a in \"$@\"; do printf '%%s\\n' \"$a\"; done; printf '%%s\\n' '--'; } >> '%s'\n"
		 "if [ -e '%s' ]; then\n"
		 "  printf 'Job for %%s failed.\\nSee \"systemctl status\".\\n' \"$3\" >&2; exit 1\n"
		 "fi\n"
		 "exit 0\n",
		 g_rec, g_fail);
	if (t_write_file(g_ctl, script, 0755) != 0 || mkdir(g_root, 0755) != 0) {
		perror("setup");
		return 1;
	}
	T_RUN(t_options_canonical);
	T_RUN(t_unit_name);
	T_RUN(t_render_exact);
	T_RUN(t_validation_refusals);
	T_RUN(t_add_and_remove);
	T_RUN(t_systemctl_failures);
	T_RUN(t_unsafe_states_refused);
	T_RUN(t_cli);
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
