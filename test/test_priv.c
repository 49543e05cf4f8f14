/* test_priv.c — the privileged backend against fake tools.
 *
 * Each fake is a small #!/bin/sh script in a private bin directory (the
 * only directory on the backend's PATH). It appends its $0 and arguments,
 * one per line, then a "--" line, to a record file whose absolute path is
 * baked into the script text: the backend gives the child no environment
 * besides PATH and LC_ALL, so nothing else could carry it. Tests compare
 * the record byte for byte, and check it is absent when a call must be
 * refused before anything runs.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "priv.h"

static char g_dir[256];   /* private temp dir */
static char g_bin[300];   /* g_dir/bin: the backend's PATH */
static char g_rec[300];   /* g_dir/record */
static char g_pidf[300];  /* g_dir/pid: a grandchild's pid */

/* Writes g_bin/NAME: a script that records its argv, then runs body. */
static void fake(const char *name, const char *body)
{
	char path[400], text[4096];
	int n;

	snprintf(path, sizeof path, "%s/%s", g_bin, name);
	n = snprintf(text, sizeof text,
		     "#!/bin/sh\n"
		     "{ printf '%%s\\n' \"$0\"; for a in \"$@\"; do printf '%%s\\n' \"$a\"; done; "
		     "printf '%%s\\n' '--'; } >> '%s'\n"
		     "%s\n",
		     g_rec, body ? body : "");
	T_CHECK(n > 0 && (size_t)n < sizeof text);
	unlink(path); /* never write through a link_tool() symlink into the real tool */
	T_CHECK(t_write_file(path, text, 0755) == 0);
}

/* g_bin/NAME as a symlink to a real program (no shell in between). */
static void link_tool(const char *name, const char *target)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s", g_bin, name);
	unlink(path);
	T_CHECK(symlink(target, path) == 0);
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
	return access(g_rec, F_OK) != 0 && errno == ENOENT;
}

static struct priv *mk(enum priv_mode mode, long timeout_ms, size_t max_output)
{
	struct priv_opts o;
	char sudo[400];
	struct priv *p = NULL;

	snprintf(sudo, sizeof sudo, "%s/sudo", g_bin);
	memset(&o, 0, sizeof o);
	o.mode = mode;
	o.sudo_path = sudo;
	o.path = g_bin;
	o.timeout_ms = timeout_ms;
	o.max_output = max_output;
	T_OK(priv_new(&o, &p));
	return p;
}

static struct priv *mk_direct(void)
{
	return mk(PRIV_MODE_DIRECT, 5000, 1 << 20);
}

/* No child of this process is left, running or zombie. */
static bool no_children(void)
{
	int st;

	return waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD;
}

T_TEST(t_golden_pct_create)
{
	struct priv *p = mk_direct();
	struct priv_err e;
	struct priv_golden g = {
		.vmid = 123,
		.ostemplate = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
		.hostname = "golden.example",
		.storage = "local-lvm",
		.rootfs_gib = 8,
		.memory_mib = 2048,
		.cores = 2,
		.net0 = "name=eth0,bridge=vmbr0,ip=dhcp",
	};
	char want[2048];
	char *got;

	fake("pct", NULL);
	rec_clear();
	T_OK(priv_pct_create_golden(p, &g, &e));
	T_EQ_INT(e.exit_status, 0);
	T_EQ_STR(e.program, "pct");
	snprintf(want, sizeof want,
		 "%s/pct\ncreate\n123\nlocal:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst\n"
		 "--hostname\ngolden.example\n--features\nkeyctl=1,nesting=1\n--unprivileged\n1\n"
		 "--storage\nlocal-lvm\n--rootfs\nlocal-lvm:8\n--memory\n2048\n--cores\n2\n"
		 "--net0\nname=eth0,bridge=vmbr0,ip=dhcp\n--\n",
		 g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);
	priv_free(p);
}

T_TEST(t_mount_uuid)
{
	struct priv *p = mk_direct();
	char want[2048];
	char *got;

	fake("mount", NULL);
	rec_clear();
	T_OK(priv_mount_uuid(p, "0b3c2a1e-1111-4222-8333-944455556666", "/mnt/data", "ext4",
			     "noatime,ro,nodev,noatime", NULL));
	T_OK(priv_mount_uuid(p, "ABCD-1234", "/srv/usb", "vfat", NULL, NULL));
	T_OK(priv_mount_uuid(p, "abcd-1234", "/media/x", "exfat", "", NULL));
	snprintf(want, sizeof want,
		 "%s/mount\n-t\next4\n-o\nnodev,nosuid,noatime,ro\nUUID=0b3c2a1e-1111-4222-8333-944455556666\n/mnt/data\n--\n"
		 "%s/mount\n-t\nvfat\n-o\nnodev,nosuid\nUUID=ABCD-1234\n/srv/usb\n--\n"
		 "%s/mount\n-t\nexfat\n-o\nnodev,nosuid\nUUID=abcd-1234\n/media/x\n--\n",
		 g_bin, g_bin, g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);
	priv_free(p);
}

T_TEST(t_smartctl_bitmask)
{
	struct priv *p = mk_direct();
	struct priv_err e;
	struct buf out;
	char want[512];
	char *got;

	buf_init(&out, 1 << 20);
	fake("smartctl", "printf '%s\\n' '{\"smart_status\":{\"passed\":false}}'; exit 4");
	rec_clear();
	T_OK(priv_smartctl(p, "/dev/sda", &out, &e));
	T_EQ_INT(e.exit_status, 4);
	T_EQ_STR(buf_str(&out), "{\"smart_status\":{\"passed\":false}}\n");
	snprintf(want, sizeof want, "%s/smartctl\n--json\n-a\n/dev/sda\n--\n", g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* 8 (disk failing) + 64 (error log) is still a report, not a failure */
	buf_reset(&out);
	fake("smartctl", "printf 'x'; exit 72");
	T_OK(priv_smartctl(p, "/dev/nvme0n1", &out, &e));
	T_EQ_STR(buf_str(&out), "x");

	/* bit 1: device open failed — the command failed, stdout not given */
	buf_reset(&out);
	fake("smartctl", "printf 'partial'; printf 'open failed\\n' >&2; exit 2");
	T_ERR(priv_smartctl(p, "/dev/sdb", &out, &e), FH_ERR_EXIT);
	T_EQ_INT(e.exit_status, 2);
	T_EQ_STR(e.stderr_tail, "open failed\n");
	T_EQ_INT(out.len, 0);
	buf_free(&out);
	priv_free(p);
}

T_TEST(t_sensors_wipefs_blkid)
{
	struct priv *p = mk_direct();
	struct buf out;
	char want[1024];
	char *got;

	buf_init(&out, 1 << 20);
	fake("sensors", "printf '%s\\n' '{\"coretemp-isa-0000\":{}}'");
	fake("wipefs", "printf '%s\\n' '{\"signatures\":[]}'");
	fake("blkid", "printf 'DEVNAME=/dev/sdc\\nTYPE=ext4\\n'");
	rec_clear();
	T_OK(priv_sensors(p, &out, NULL));
	T_EQ_STR(buf_str(&out), "{\"coretemp-isa-0000\":{}}\n");
	buf_reset(&out);
	T_OK(priv_wipefs_probe(p, "/dev/sdc", &out, NULL));
	T_EQ_STR(buf_str(&out), "{\"signatures\":[]}\n");
	buf_reset(&out);
	T_OK(priv_blkid_probe(p, "/dev/disk/by-id/ata-X_Y-1:0", &out, NULL));
	T_EQ_STR(buf_str(&out), "DEVNAME=/dev/sdc\nTYPE=ext4\n");
	snprintf(want, sizeof want,
		 "%s/sensors\n-j\n--\n"
		 "%s/wipefs\n--no-act\n--json\n/dev/sdc\n--\n"
		 "%s/blkid\n-p\n-o\nexport\n/dev/disk/by-id/ata-X_Y-1:0\n--\n",
		 g_bin, g_bin, g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);
	buf_free(&out);
	priv_free(p);
}

T_TEST(t_mkfs_and_bind_mp)
{
	struct priv *p = mk_direct();
	char want[2048];
	char *got;

	fake("mkfs", NULL);
	fake("pct", NULL);
	rec_clear();
	T_OK(priv_mkfs(p, "/dev/sdd1", "xfs", NULL));
	T_OK(priv_pct_set_bind_mp(p, 105, 3, "/mnt/data/media", "/srv/media", false, NULL));
	T_OK(priv_pct_set_bind_mp(p, 999999999, 255, "/srv/share", "/data", true, NULL));
	snprintf(want, sizeof want,
		 "%s/mkfs\n-t\nxfs\n/dev/sdd1\n--\n"
		 "%s/pct\nset\n105\n-mp3\n/mnt/data/media,mp=/srv/media\n--\n"
		 "%s/pct\nset\n999999999\n-mp255\n/srv/share,mp=/data,ro=1\n--\n",
		 g_bin, g_bin, g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);
	priv_free(p);
}

T_TEST(t_sudo_mode)
{
	struct priv *p = mk(PRIV_MODE_SUDO, 5000, 1 << 20);
	struct priv_err e;
	struct buf out;
	const char *const missing[] = { "nosuchtool", NULL };
	char want[1024];
	char *got;

	buf_init(&out, 1 << 20);
	fake("sudo", "shift 2; exec \"$@\"");
	fake("wipefs", "printf 'probe'");
	rec_clear();
	T_OK(priv_wipefs_probe(p, "/dev/sde", &out, &e));
	T_EQ_STR(buf_str(&out), "probe");
	T_EQ_STR(e.program, "wipefs");
	snprintf(want, sizeof want,
		 "%s/sudo\n-n\n--\n%s/wipefs\n--no-act\n--json\n/dev/sde\n--\n"
		 "%s/wipefs\n--no-act\n--json\n/dev/sde\n--\n",
		 g_bin, g_bin, g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* the tool is resolved before sudo runs: a missing one never reaches it */
	rec_clear();
	T_ERR(priv_run(p, missing, &out, NULL), FH_ERR_SPAWN);
	T_CHECK(rec_absent());
	buf_free(&out);
	priv_free(p);

	{
		struct priv_opts o;
		struct priv *q = NULL;
		char nosudo[400];

		snprintf(nosudo, sizeof nosudo, "%s/no-such-sudo", g_dir);
		memset(&o, 0, sizeof o);
		o.mode = PRIV_MODE_SUDO;
		o.sudo_path = nosudo;
		o.path = g_bin;
		T_OK(priv_new(&o, &q));
		T_ERR(priv_wipefs_probe(q, "/dev/sde", NULL, NULL), FH_ERR_SPAWN);
		T_CHECK(rec_absent());
		priv_free(q);
	}
}

T_TEST(t_exit_status_and_stderr)
{
	struct priv *p = mk_direct();
	struct priv_err e;
	struct buf out;
	const char *const argv[] = { "failer", "a b", "$(x)", NULL };
	const char *const kill_argv[] = { "selfkill", NULL };
	char want[512];
	char *got;

	buf_init(&out, 1 << 20);
	fake("failer", "printf 'out'; printf 'first\\nbad\\tthing\\001\\033[31m\\n' >&2; exit 3");
	rec_clear();
	T_ERR(priv_run(p, argv, &out, &e), FH_ERR_EXIT);
	T_EQ_INT(e.exit_status, 3);
	T_EQ_STR(e.stderr_tail, "first\nbad?thing??[31m\n");
	T_EQ_STR(e.program, "failer");
	T_EQ_INT(out.len, 0); /* outputs only on success */
	snprintf(want, sizeof want, "%s/failer\na b\n$(x)\n--\n", g_bin);
	got = rec();
	T_EQ_STR(got, want); /* arguments reach the tool verbatim, unexpanded */
	free(got);

	fake("selfkill", "kill -9 $$");
	T_ERR(priv_run(p, kill_argv, &out, &e), FH_ERR_EXIT);
	T_EQ_INT(e.exit_status, 128 + SIGKILL);
	T_CHECK(no_children());
	buf_free(&out);
	priv_free(p);
}

/* /proc/PID/stat state: 0 when gone, else the state letter. */
static char proc_state(long pid)
{
	char path[64], *s, *rp;
	char st = 0;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	s = t_slurp(path, NULL);
	if (!s)
		return 0;
	rp = strrchr(s, ')');
	if (rp && rp[1] == ' ')
		st = rp[2];
	free(s);
	return st;
}

T_TEST(t_timeout_kills_group)
{
	struct priv *p = mk(PRIV_MODE_DIRECT, 300, 1 << 20);
	struct priv_err e;
	const char *const argv[] = { "hang", NULL };
	char body[600];
	struct timespec a, b;
	long ms, gpid;
	char *pidtxt;
	int i;
	char st = 'S';

	snprintf(body, sizeof body,
		 "printf 'started\\n' >&2; /bin/sleep 30 & printf '%%s\\n' $! > '%s'; exec /bin/sleep 30",
		 g_pidf);
	fake("hang", body);
	clock_gettime(CLOCK_MONOTONIC, &a);
	T_ERR(priv_run(p, argv, NULL, &e), FH_ERR_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (long)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	T_CHECK(ms >= 250 && ms < 5000);
	T_EQ_INT(e.exit_status, 128 + SIGKILL);
	T_EQ_STR(e.stderr_tail, "started\n");
	T_CHECK(no_children());

	/* the grandchild in the same group got the SIGKILL too */
	pidtxt = t_slurp(g_pidf, NULL);
	T_CHECK(pidtxt != NULL);
	gpid = pidtxt ? strtol(pidtxt, NULL, 10) : 0;
	free(pidtxt);
	T_CHECK(gpid > 1);
	for (i = 0; gpid > 1 && i < 200; i++) {
		struct timespec d = { 0, 10 * 1000 * 1000 };
		st = proc_state(gpid);
		if (st == 0 || st == 'Z' || st == 'X')
			break;
		nanosleep(&d, NULL);
	}
	T_CHECK(st == 0 || st == 'Z' || st == 'X');
	priv_free(p);
}

T_TEST(t_output_cap)
{
	struct priv *p = mk(PRIV_MODE_DIRECT, 5000, 65536);
	struct priv_err e;
	struct buf out;
	const char *const yes_argv[] = { "yes", NULL };
	const char *const big_argv[] = { "big", NULL };
	size_t i;
	bool all_q = true;

	buf_init(&out, 1 << 20);
	link_tool("yes", "/usr/bin/yes");
	T_ERR(priv_run(p, yes_argv, &out, &e), FH_ERR_TOOBIG);
	T_EQ_INT(out.len, 0);
	T_CHECK(no_children());
	/* discarded stdout is not captured, so not capped: yes would run to the
	 * timeout, which the timeout test covers; a bounded one passes */
	priv_free(p);

	/* 300 KB on stderr before 300 KB on stdout: reading one pipe at a
	 * time would stall the child on a full stderr pipe */
	p = mk(PRIV_MODE_DIRECT, 10000, 1 << 20);
	fake("big", "/usr/bin/head -c 300000 /dev/zero >&2; /usr/bin/head -c 300000 /dev/zero");
	T_OK(priv_run(p, big_argv, &out, &e));
	T_EQ_INT(out.len, 300000);
	T_EQ_INT(strlen(e.stderr_tail), 511);
	for (i = 0; i < strlen(e.stderr_tail); i++)
		if (e.stderr_tail[i] != '?')
			all_q = false;
	T_CHECK(all_q); /* NUL bytes sanitized */

	/* the caller's own buf cap also holds */
	buf_free(&out);
	buf_init(&out, 1000);
	T_ERR(priv_run(p, big_argv, &out, &e), FH_ERR_TOOBIG);
	T_EQ_INT(out.len, 0);
	buf_free(&out);
	priv_free(p);
}

T_TEST(t_spawn_failures)
{
	struct priv *p = mk_direct();
	struct priv_err e;
	const char *const missing[] = { "nosuchtool", NULL };
	const char *const noexec[] = { "noexec", NULL };
	const char *const badinterp[] = { "badinterp", NULL };
	const char *const slash[] = { "/bin/sh", "-c", "true", NULL };
	const char *const rel[] = { "./pct", NULL };
	const char *const empty_arg[] = { "pct", "", NULL };
	const char *const empty_tool[] = { "", NULL };
	const char *const nul_first[] = { NULL };
	char path[400];

	fake("pct", NULL);
	snprintf(path, sizeof path, "%s/noexec", g_bin);
	T_CHECK(t_write_file(path, "#!/bin/sh\nexit 0\n", 0644) == 0);
	snprintf(path, sizeof path, "%s/badinterp", g_bin);
	T_CHECK(t_write_file(path, "#!/nonexistent/interp\n", 0755) == 0);
	rec_clear();
	T_ERR(priv_run(p, missing, NULL, &e), FH_ERR_SPAWN);
	T_EQ_INT(e.exit_status, -1);
	T_EQ_STR(e.program, "nosuchtool");
	T_ERR(priv_run(p, noexec, NULL, &e), FH_ERR_SPAWN);
	T_ERR(priv_run(p, badinterp, NULL, &e), FH_ERR_SPAWN);
	T_EQ_INT(e.exit_status, -1);
	T_ERR(priv_run(p, slash, NULL, &e), FH_ERR_INVAL);
	T_ERR(priv_run(p, rel, NULL, &e), FH_ERR_INVAL);
	T_ERR(priv_run(p, empty_arg, NULL, &e), FH_ERR_INVAL);
	T_ERR(priv_run(p, empty_tool, NULL, &e), FH_ERR_INVAL);
	T_ERR(priv_run(p, nul_first, NULL, &e), FH_ERR_INVAL);
	T_ERR(priv_run(p, NULL, NULL, &e), FH_ERR_INVAL);
	T_ERR(priv_run(NULL, missing, NULL, &e), FH_ERR_INVAL);
	T_CHECK(rec_absent());
	T_CHECK(no_children());
	priv_free(p);
}

T_TEST(t_child_environment)
{
	struct priv *p = mk_direct();
	struct buf out;
	const char *const env_argv[] = { "env", NULL };
	const char *const ls_argv[] = { "ls", "/proc/self/fd", NULL };
	const char *const rl_argv[] = { "readlink", "/proc/self/fd/0", "/proc/self/cwd", NULL };
	const char *const cat_argv[] = { "cat", "/proc/self/stat", NULL };
	char want[512];
	int leak;
	long pid = 0, pgrp = -1;
	char *rp;

	buf_init(&out, 1 << 20);
	link_tool("env", "/usr/bin/env");
	link_tool("ls", "/bin/ls");
	link_tool("readlink", "/bin/readlink");
	link_tool("cat", "/bin/cat");

	setenv("FH_TEST_SECRET", "leak", 1);
	T_OK(priv_run(p, env_argv, &out, NULL));
	snprintf(want, sizeof want, "PATH=%s\nLC_ALL=C\n", g_bin);
	T_EQ_STR(buf_str(&out), want);
	unsetenv("FH_TEST_SECRET");

	/* a descriptor opened without O_CLOEXEC is still not inherited;
	 * ls's own fd 3 is the directory it reads */
	leak = open("/dev/null", O_RDONLY);
	T_CHECK(leak > 2);
	buf_reset(&out);
	T_OK(priv_run(p, ls_argv, &out, NULL));
	T_EQ_STR(buf_str(&out), "0\n1\n2\n3\n");
	close(leak);

	/* stdin is /dev/null, the working directory is / */
	buf_reset(&out);
	T_OK(priv_run(p, rl_argv, &out, NULL));
	T_EQ_STR(buf_str(&out), "/dev/null\n/\n");

	/* its own process group: pgrp == pid */
	buf_reset(&out);
	T_OK(priv_run(p, cat_argv, &out, NULL));
	pid = strtol(buf_str(&out), NULL, 10);
	rp = strrchr(buf_str(&out), ')');
	if (rp)
		T_CHECK(sscanf(rp, ") %*c %*d %ld", &pgrp) == 1);
	T_CHECK(pid > 1);
	T_EQ_INT(pgrp, pid);
	buf_free(&out);
	priv_free(p);
}

T_TEST(t_validation_rejects)
{
	struct priv *p = mk_direct();
	struct priv_err e;
	struct priv_golden ok = {
		.vmid = 200, .ostemplate = "local:vztmpl/t.tar.zst", .hostname = "h",
		.storage = "local", .rootfs_gib = 4, .memory_mib = 512, .cores = 1,
		.net0 = "name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1",
	};
	struct priv_golden g;
	static const char *const bad_devs[] = {
		"/dev/sda; rm -rf /", "/dev/$(x)", "/dev/sda`id`", "/dev/../etc/shadow",
		"/dev/./sda", "/dev//sda", "/etc/passwd", "sda", "/dev/", "", "/dev/sd a",
		"/dev/sda\n", "/dev/sda|x", "/dev/sda&", "/dev/sd*", NULL
	};
	static const char *const bad_uuids[] = {
		"abc$(x)", "zz-zz", "1234;rm", "----", "",
		"00000000000000000000000000000000000000000000000000000000000000000", NULL
	};
	static const char *const bad_targets[] = {
		"relative/dir", "/", "//", "/etc", "/etc/x", "/usr/local/x", "/var/lib/vz",
		"/mnt/../etc", "/mnt//x", "/./etc", "/mnt/.", "/mnt/a b", "/mnt/x;rm", "/proc",
		"/sys/x", "/boot", "/root/x", "/run/x", "/tmp/x", "", NULL
	};
	static const char *const bad_opts[] = {
		"exec", "suid", "dev", "nodev,exec", "ro,,rw", "ro,", ",ro", "rw;rm -rf /",
		"uid=0", "ro rw", "remount", NULL
	};
	static const char *const bad_guest[] = {
		"rel", "/", "/a,b", "/a=b", "/a/../b", "/a:b", "/a b", "", NULL
	};
	static const char *const bad_host[] = {
		"/etc", "/", "/mnt/x,y", "/mnt/x=y", "rel", "/mnt/../etc", "/var/lib/x", NULL
	};
	size_t i;

	fake("pct", NULL);
	fake("mount", NULL);
	fake("smartctl", NULL);
	fake("wipefs", NULL);
	fake("blkid", NULL);
	fake("mkfs", NULL);
	rec_clear();

	for (i = 0; bad_devs[i]; i++) {
		T_ERR(priv_smartctl(p, bad_devs[i], NULL, &e), FH_ERR_INVAL);
		T_ERR(priv_wipefs_probe(p, bad_devs[i], NULL, NULL), FH_ERR_INVAL);
		T_ERR(priv_blkid_probe(p, bad_devs[i], NULL, NULL), FH_ERR_INVAL);
		T_ERR(priv_mkfs(p, bad_devs[i], "ext4", NULL), FH_ERR_INVAL);
	}
	T_EQ_INT(e.exit_status, -1);
	T_EQ_STR(e.program, "smartctl");
	T_ERR(priv_smartctl(p, NULL, NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_smartctl(NULL, "/dev/sda", NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_sensors(NULL, NULL, NULL), FH_ERR_INVAL);

	T_ERR(priv_mkfs(p, "/dev/sdb", "exfat", NULL), FH_ERR_INVAL);
	T_ERR(priv_mkfs(p, "/dev/sdb", "ntfs", NULL), FH_ERR_INVAL);
	T_ERR(priv_mkfs(p, "/dev/sdb", "ext4 -F", NULL), FH_ERR_INVAL);
	T_ERR(priv_mkfs(p, "/dev/sdb", NULL, NULL), FH_ERR_INVAL);

	for (i = 0; bad_uuids[i]; i++)
		T_ERR(priv_mount_uuid(p, bad_uuids[i], "/mnt/d", "ext4", NULL, NULL), FH_ERR_INVAL);
	for (i = 0; bad_targets[i]; i++)
		T_ERR(priv_mount_uuid(p, "ABCD-1234", bad_targets[i], "ext4", NULL, NULL), FH_ERR_INVAL);
	for (i = 0; bad_opts[i]; i++)
		T_ERR(priv_mount_uuid(p, "ABCD-1234", "/mnt/d", "ext4", bad_opts[i], NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_uuid(p, "ABCD-1234", "/mnt/d", "ntfs", NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_uuid(p, "ABCD-1234", "/mnt/d", "ext4;x", NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_uuid(p, "ABCD-1234", "/mnt/d", NULL, NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_uuid(p, NULL, "/mnt/d", "ext4", NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_uuid(p, "ABCD-1234", NULL, "ext4", NULL, NULL), FH_ERR_INVAL);

	for (i = 0; bad_guest[i]; i++)
		T_ERR(priv_pct_set_bind_mp(p, 100, 0, "/mnt/x", bad_guest[i], false, NULL), FH_ERR_INVAL);
	for (i = 0; bad_host[i]; i++)
		T_ERR(priv_pct_set_bind_mp(p, 100, 0, bad_host[i], "/data", false, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_set_bind_mp(p, 99, 0, "/mnt/x", "/data", false, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_set_bind_mp(p, 1000000000, 0, "/mnt/x", "/data", false, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_set_bind_mp(p, 100, -1, "/mnt/x", "/data", false, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_set_bind_mp(p, 100, 256, "/mnt/x", "/data", false, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_set_bind_mp(p, 100, 0, NULL, "/data", false, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_set_bind_mp(p, 100, 0, "/mnt/x", NULL, false, NULL), FH_ERR_INVAL);

	T_ERR(priv_pct_create_golden(p, NULL, NULL), FH_ERR_INVAL);
#define BAD_GOLDEN(field, value) \
	do { g = ok; g.field = value; T_ERR(priv_pct_create_golden(p, &g, NULL), FH_ERR_INVAL); } while (0)
	BAD_GOLDEN(vmid, 99);
	BAD_GOLDEN(vmid, 1000000000);
	BAD_GOLDEN(hostname, "-bad");
	BAD_GOLDEN(hostname, "bad-");
	BAD_GOLDEN(hostname, "bad_name");
	BAD_GOLDEN(hostname, "a..b");
	BAD_GOLDEN(hostname, "h; rm -rf /");
	BAD_GOLDEN(hostname, "$(x)");
	BAD_GOLDEN(hostname, "");
	BAD_GOLDEN(hostname, NULL);
	BAD_GOLDEN(hostname, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	BAD_GOLDEN(storage, "lo cal");
	BAD_GOLDEN(storage, "-x");
	BAD_GOLDEN(storage, "a:b");
	BAD_GOLDEN(ostemplate, "local:../../etc/shadow");
	BAD_GOLDEN(ostemplate, "local:vztmpl/x;rm");
	BAD_GOLDEN(ostemplate, "--unprivileged=0");
	BAD_GOLDEN(ostemplate, NULL);
	BAD_GOLDEN(net0, "name=eth0,bridge=vmbr0;rm");
	BAD_GOLDEN(net0, "name=eth0,foo=bar");
	BAD_GOLDEN(net0, "name=eth0,,ip=dhcp");
	BAD_GOLDEN(net0, "name");
	BAD_GOLDEN(net0, "name=eth0 --features x");
	BAD_GOLDEN(net0, "");
	BAD_GOLDEN(rootfs_gib, 0);
	BAD_GOLDEN(memory_mib, 0);
	BAD_GOLDEN(cores, 0);
#undef BAD_GOLDEN

	T_CHECK(rec_absent());
	/* and the good one does run */
	T_OK(priv_pct_create_golden(p, &ok, NULL));
	T_CHECK(!rec_absent());
	priv_free(p);
}

T_TEST(t_priv_new)
{
	struct priv_opts o;
	struct priv *p = NULL;

	T_OK(priv_new(NULL, &p)); /* all defaults */
	priv_free(p);
	p = NULL;
	T_ERR(priv_new(NULL, NULL), FH_ERR_INVAL);
	memset(&o, 0, sizeof o);
	o.path = "/usr/bin::/bin"; /* empty element would mean "." */
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.path = "bin:/usr/bin";
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.path = "/usr/bin";
	o.sudo_path = "sudo";
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.sudo_path = NULL;
	o.timeout_ms = -1;
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.timeout_ms = 0;
	o.mode = (enum priv_mode)7;
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.mode = PRIV_MODE_SUDO;
	o.self_path = "felhom-agent"; /* must be absolute */
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.self_path = "/usr/bin/../bin/felhom-agent";
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	o.self_path = "/usr/bin/felhom agent";
	T_ERR(priv_new(&o, &p), FH_ERR_INVAL);
	T_CHECK(p == NULL);
	priv_free(NULL);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- disk management commands ---- */

T_TEST(t_disk_commands)
{
	struct priv *p = mk_direct();
	struct buf out;
	char want[4096];
	char *got;

	buf_init(&out, 2 << 20);
	fake("lsblk", "printf '{\"blockdevices\":[]}'");
	fake("wipefs", NULL);
	fake("pct", NULL);
	rec_clear();
	T_OK(priv_lsblk(p, &out, NULL));
	T_EQ_STR(buf_str(&out), "{\"blockdevices\":[]}");
	T_OK(priv_wipefs_all(p, "/dev/sdb1", NULL));
	T_OK(priv_pct_delete_mp(p, 101, 7, NULL));
	snprintf(want, sizeof want,
		 "%s/lsblk\n--json\n--bytes\n--list\n--output\n" PRIV_LSBLK_COLUMNS "\n--\n"
		 "%s/wipefs\n-a\n/dev/sdb1\n--\n"
		 "%s/pct\nset\n101\n-delete\nmp7\n--\n",
		 g_bin, g_bin, g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* refused before anything runs */
	rec_clear();
	T_ERR(priv_wipefs_all(p, "/dev/sdb --force", NULL), FH_ERR_INVAL);
	T_ERR(priv_wipefs_all(p, "sdb", NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_delete_mp(p, 99, 0, NULL), FH_ERR_INVAL);
	T_ERR(priv_pct_delete_mp(p, 101, 256, NULL), FH_ERR_INVAL);
	T_CHECK(rec_absent());
	buf_free(&out);
	priv_free(p);
}

/* cmp's exit status is the whole answer: 0 zero, 1 not zero, else error. */
T_TEST(t_sample_is_zero)
{
	struct priv *p = mk_direct();
	struct priv_err e;
	char want[2048], *got;
	bool zero = true;

	fake("cmp", "exit 0");
	rec_clear();
	T_OK(priv_sample_is_zero(p, "/dev/sdb", 12345, 1, &zero, &e));
	T_CHECK(zero);
	T_OK(priv_sample_is_zero(p, "/dev/disk/by-id/ata-X_Y-part1", 0, PRIV_SAMPLE_MAX_LEN_MIB, &zero, NULL));
	T_CHECK(zero);
	snprintf(want, sizeof want,
		 "%s/cmp\n-s\n-n\n1M\n-i\n12345M:0\n/dev/sdb\n/dev/zero\n--\n"
		 "%s/cmp\n-s\n-n\n64M\n-i\n0M:0\n/dev/disk/by-id/ata-X_Y-part1\n/dev/zero\n--\n",
		 g_bin, g_bin);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	fake("cmp", "exit 1"); /* a difference, or the range ran past the end */
	zero = true;
	T_OK(priv_sample_is_zero(p, "/dev/sdb", 1, 1, &zero, &e));
	T_CHECK(!zero);
	T_EQ_INT(e.exit_status, 1);

	fake("cmp", "echo 'cmp: /dev/sdb: Input/output error' >&2; exit 2");
	zero = true;
	T_ERR(priv_sample_is_zero(p, "/dev/sdb", 1, 1, &zero, &e), FH_ERR_EXIT);
	T_CHECK(!zero);
	T_EQ_INT(e.exit_status, 2);
	T_CHECK(strstr(e.stderr_tail, "Input/output error") != NULL);
	T_EQ_STR(e.program, "cmp");

	fake("cmp", "kill -9 $$");
	zero = true;
	T_ERR(priv_sample_is_zero(p, "/dev/sdb", 1, 1, &zero, &e), FH_ERR_EXIT);
	T_CHECK(!zero);

	/* the real cmp, on files standing in for a device, when there is one */
	if (access("/usr/bin/cmp", X_OK) == 0) {
		char img[400];
		int fd;
		fake("cmp", "exec /usr/bin/cmp \"$@\"");
		snprintf(img, sizeof img, "%s/img", g_dir);
		fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		T_CHECK(fd >= 0 && ftruncate(fd, 3 << 20) == 0);
		T_CHECK(pwrite(fd, "x", 1, (2 << 20) + 5) == 1);
		close(fd);
		/* the backend takes only /dev paths: a regular file with a known
		 * non-zero byte is checked with the same argv through priv_run */
		{
			const char *const a0[] = { "cmp", "-s", "-n", "1M", "-i", "1M:0", img, "/dev/zero", NULL };
			const char *const a1[] = { "cmp", "-s", "-n", "1M", "-i", "2M:0", img, "/dev/zero", NULL };
			const char *const a2[] = { "cmp", "-s", "-n", "2M", "-i", "2M:0", img, "/dev/zero", NULL };
			T_OK(priv_run(p, a0, NULL, &e));
			T_ERR(priv_run(p, a1, NULL, &e), FH_ERR_EXIT);
			T_EQ_INT(e.exit_status, 1);
			T_ERR(priv_run(p, a2, NULL, &e), FH_ERR_EXIT); /* past the end: not zero */
			T_EQ_INT(e.exit_status, 1);
		}
		zero = true;
		T_ERR(priv_sample_is_zero(p, "/dev/felhom-no-such-device", 0, 1, &zero, &e), FH_ERR_EXIT);
		T_CHECK(!zero);
		T_EQ_INT(e.exit_status, 2);
		zero = false;
		T_OK(priv_sample_is_zero(p, "/dev/zero", 7, 2, &zero, &e));
		T_CHECK(zero);
	} else {
		printf("# /usr/bin/cmp missing: the real-cmp checks did not run\n");
	}

	/* refused before anything runs */
	fake("cmp", "exit 0");
	rec_clear();
	zero = true;
	T_ERR(priv_sample_is_zero(p, "/etc/shadow", 0, 1, &zero, &e), FH_ERR_INVAL);
	T_CHECK(!zero);
	T_EQ_STR(e.program, "cmp");
	T_ERR(priv_sample_is_zero(p, "/dev/../etc/shadow", 0, 1, &zero, NULL), FH_ERR_INVAL);
	T_ERR(priv_sample_is_zero(p, "/dev/sdb", PRIV_SAMPLE_MAX_MIB + 1, 1, &zero, NULL), FH_ERR_INVAL);
	T_ERR(priv_sample_is_zero(p, "/dev/sdb", 0, 0, &zero, NULL), FH_ERR_INVAL);
	T_ERR(priv_sample_is_zero(p, "/dev/sdb", 0, PRIV_SAMPLE_MAX_LEN_MIB + 1, &zero, NULL), FH_ERR_INVAL);
	T_ERR(priv_sample_is_zero(p, "/dev/sdb", 0, 1, NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_sample_is_zero(NULL, "/dev/sdb", 0, 1, &zero, NULL), FH_ERR_INVAL);
	T_CHECK(rec_absent());
	priv_free(p);
}

/* The agent's own binary, as the --mount-unit helper. */
T_TEST(t_mount_unit)
{
	struct priv_opts o;
	struct priv *p = NULL;
	struct priv_err e;
	char self[400], want[4096], *got;

	snprintf(self, sizeof self, "%s/felhom-agent", g_bin);
	memset(&o, 0, sizeof o);
	o.mode = PRIV_MODE_DIRECT;
	o.path = g_bin;
	o.self_path = self;
	T_OK(priv_new(&o, &p));
	fake("felhom-agent", NULL);
	rec_clear();
	T_OK(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, &e));
	T_OK(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "xfs", "ro,noatime,nodev",
				 &e));
	T_OK(priv_mount_unit_add(p, "/srv", "ABCD-12EF", "vfat", "", &e));
	T_OK(priv_mount_unit_remove(p, "/mnt/felhom", "0b1c2d3eaaaabbbbcccc0123456789ab", &e));
	T_OK(priv_mount_unit_remove(p, "/media/usb_1", "abcd12ef", &e));
	snprintf(want, sizeof want,
		 "%s\n--mount-unit\nadd\n/mnt/felhom\n0b1c2d3e-aaaa-bbbb-cccc-0123456789ab\next4\nnodev,nosuid,nofail\n--\n"
		 "%s\n--mount-unit\nadd\n/mnt/felhom\n0b1c2d3e-aaaa-bbbb-cccc-0123456789ab\nxfs\n"
		 "nodev,nosuid,nofail,noatime,ro\n--\n"
		 "%s\n--mount-unit\nadd\n/srv\nABCD-12EF\nvfat\nnodev,nosuid,nofail\n--\n"
		 "%s\n--mount-unit\nremove\n/mnt/felhom\n0b1c2d3eaaaabbbbcccc0123456789ab\n--\n"
		 "%s\n--mount-unit\nremove\n/media/usb_1\nabcd12ef\n--\n",
		 self, self, self, self, self);
	got = rec();
	T_EQ_STR(got, want);
	free(got);

	/* the helper's one line comes back in the error */
	fake("felhom-agent", "echo 'felhom-agent: --mount-unit add: invalid_argument: /mnt/felhom/.units is a "
			     "symbolic link or not a directory' >&2; exit 1");
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, &e),
	      FH_ERR_EXIT);
	T_EQ_INT(e.exit_status, 1);
	T_EQ_STR(e.program, "felhom-agent");
	T_CHECK(strstr(e.stderr_tail, "symbolic link") != NULL);

	/* refused before anything runs */
	rec_clear();
	T_ERR(priv_mount_unit_add(p, "/etc", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, &e), FH_ERR_INVAL);
	T_EQ_STR(e.program, "felhom-agent");
	T_ERR(priv_mount_unit_add(p, "/mnt/../etc", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/fel-hom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "ABCD-12EF", "ext4", NULL, NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "vfat", NULL, NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ntfs", NULL, NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", "suid", NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", "ro,rw", NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab\n", "ext4", NULL, NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_add(p, "/mnt/felhom%i", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, NULL),
	      FH_ERR_INVAL);
	T_ERR(priv_mount_unit_remove(p, "/mnt/felhom", "../../etc", NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_unit_remove(p, "/mnt/felhom", "0B1C2D3EAAAABBBBCCCC0123456789AB", NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_unit_remove(p, "/mnt/pve", "abc", NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_unit_remove(p, "/var/lib", "abcd12ef", NULL), FH_ERR_INVAL);
	T_ERR(priv_mount_unit_remove(NULL, "/mnt/felhom", "abcd12ef", NULL), FH_ERR_INVAL);
	T_CHECK(rec_absent());
	priv_free(p);

	/* a missing agent binary is a spawn failure, in both modes */
	memset(&o, 0, sizeof o);
	snprintf(self, sizeof self, "%s/no-such-agent", g_dir);
	o.mode = PRIV_MODE_SUDO;
	o.path = g_bin;
	o.self_path = self;
	snprintf(want, sizeof want, "%s/sudo", g_bin);
	o.sudo_path = want;
	fake("sudo", "shift 2; exec \"$@\"");
	T_OK(priv_new(&o, &p));
	rec_clear();
	T_ERR(priv_mount_unit_remove(p, "/mnt/felhom", "abcd12ef", &e), FH_ERR_SPAWN);
	T_CHECK(rec_absent());
	priv_free(p);
}

/* The sudoers rules for the disk commands (docs/systemd/felhom-agent.sudoers)
 * allow exactly the argv the backend builds in sudo mode, and not a
 * variant with one more option or a system path. */
static bool sudoers_allows(const char *text, const char *alias, const char *tool_path, const char *args)
{
	char head[128], spec[4096], pat[4096];
	const char *p, *e;
	size_t n, i, o = 0;
	bool ok = false;

	snprintf(head, sizeof head, "Cmnd_Alias %s = %s ", alias, tool_path);
	p = strstr(text, head);
	if (!p)
		return false;
	p += strlen(head);
	e = strchr(p, '\n');
	n = e ? (size_t)(e - p) : strlen(p);
	if (n >= sizeof spec)
		return false;
	memcpy(spec, p, n);
	spec[n] = '\0';
	for (i = 0; spec[i]; i++) { /* sudoers escapes \, \: \= \\ */
		if (spec[i] == '\\' && strchr(",:=\\", spec[i + 1]))
			i++;
		pat[o++] = spec[i];
	}
	pat[o] = '\0';
	if (pat[0] == '^') {
		regex_t re;
		if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
			return false;
		ok = regexec(&re, args, 0, NULL, 0) == 0;
		regfree(&re);
	} else {
		ok = strcmp(pat, args) == 0;
	}
	return ok;
}

T_TEST(t_disk_sudoers)
{
	char *text = t_slurp("docs/systemd/felhom-agent.sudoers", NULL);

	T_CHECK(text != NULL);
	if (!text)
		return;
	T_CHECK(sudoers_allows(text, "FELHOM_LSBLK", "/usr/bin/lsblk",
			       "--json --bytes --list --output " PRIV_LSBLK_COLUMNS));
	T_CHECK(!sudoers_allows(text, "FELHOM_LSBLK", "/usr/bin/lsblk",
				"--json --bytes --list --output " PRIV_LSBLK_COLUMNS " /dev/sda"));
	T_CHECK(sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
			       "-s -n 1M -i 12345M:0 /dev/sdb /dev/zero"));
	T_CHECK(sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
			       "-s -n 64M -i 0M:0 /dev/disk/by-id/ata-X_Y-part1 /dev/zero"));
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-s -n 65M -i 0M:0 /dev/sdb /dev/zero"));
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-s -n 1 -i 12345:0 /dev/sdb /dev/zero")); /* byte granularity */
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-n 1M -i 0M:0 /dev/sdb /dev/zero")); /* without -s it prints the difference */
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-s -n 1M -i 0M:0 /etc/shadow /dev/zero"));
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-s -n 1M -i 0M:0 /dev/sdb /dev/sda"));
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-s -n 1M -i 0M:1M /dev/sdb /dev/zero"));
	T_CHECK(!sudoers_allows(text, "FELHOM_CMP_SAMPLE", "/usr/bin/cmp",
				"-s -n 1M -i 0M:0 /dev/sdb /dev/zero -l"));
	/* the rules that made the agent user root are gone */
	T_CHECK(strstr(text, "FELHOM_DD_SAMPLE") == NULL);
	T_CHECK(strstr(text, "FELHOM_UNIT_") == NULL);
	T_CHECK(strstr(text, "/usr/bin/dd ") == NULL);
	T_CHECK(strstr(text, "/usr/bin/systemctl ") == NULL);
	T_CHECK(strstr(text, "/usr/bin/install ") == NULL);
	T_CHECK(strstr(text, "/usr/bin/rm ") == NULL);
	T_CHECK(sudoers_allows(text, "FELHOM_WIPEFS_ALL", "/usr/sbin/wipefs", "-a /dev/sdb1"));
	T_CHECK(!sudoers_allows(text, "FELHOM_WIPEFS_ALL", "/usr/sbin/wipefs", "-a /dev/sdb1 --force"));
	T_CHECK(sudoers_allows(text, "FELHOM_PCT_DEL_MP", "/usr/sbin/pct", "set 101 -delete mp7"));
	T_CHECK(!sudoers_allows(text, "FELHOM_PCT_DEL_MP", "/usr/sbin/pct", "set 101 -delete rootfs"));
	T_CHECK(sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
			       "--mount-unit add /mnt/felhom 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 nodev,nosuid,nofail"));
	T_CHECK(sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
			       "--mount-unit add /srv ABCD-12EF vfat nodev,nosuid,nofail,noexec,noatime,relatime,rw"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
				"--mount-unit add /etc 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 nodev,nosuid,nofail"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
				"--mount-unit add /mnt/../etc 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 nodev,nosuid,nofail"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
				"--mount-unit add /mnt/felhom ABCD-12EF ext4 nodev,nosuid,nofail"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
				"--mount-unit add /mnt/felhom 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 nodev,nosuid"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
				"--mount-unit add /mnt/felhom 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 "
				"nodev,nosuid,nofail,suid"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_ADD", "/usr/bin/felhom-agent",
				"--mount-unit add /mnt/felhom 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 "
				"nodev,nosuid,nofail --config /tmp/x"));
	T_CHECK(sudoers_allows(text, "FELHOM_MOUNT_UNIT_REMOVE", "/usr/bin/felhom-agent",
			       "--mount-unit remove /mnt/felhom 0b1c2d3eaaaabbbbcccc0123456789ab"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_REMOVE", "/usr/bin/felhom-agent",
				"--mount-unit remove /mnt/felhom ../../etc"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_REMOVE", "/usr/bin/felhom-agent",
				"--mount-unit remove /mnt/felhom abcd12ef abcd12ef"));
	T_CHECK(!sudoers_allows(text, "FELHOM_MOUNT_UNIT_REMOVE", "/usr/bin/felhom-agent", "--selftest"));
	/* every disk alias is granted */
	T_CHECK(strstr(text, "FELHOM_LSBLK, FELHOM_CMP_SAMPLE, FELHOM_WIPEFS_ALL, FELHOM_PCT_DEL_MP, "
			     "FELHOM_MOUNT_UNIT_ADD, FELHOM_MOUNT_UNIT_REMOVE\n") != NULL);
	free(text);
}

int main(void)
{
	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(g_bin, sizeof g_bin, "%s/bin", g_dir);
	snprintf(g_rec, sizeof g_rec, "%s/record", g_dir);
	snprintf(g_pidf, sizeof g_pidf, "%s/pid", g_dir);
	if (mkdir(g_bin, 0755) != 0) {
		perror("mkdir");
		return 1;
	}

	T_RUN(t_priv_new);
	T_RUN(t_golden_pct_create);
	T_RUN(t_mount_uuid);
	T_RUN(t_smartctl_bitmask);
	T_RUN(t_sensors_wipefs_blkid);
	T_RUN(t_mkfs_and_bind_mp);
	T_RUN(t_sudo_mode);
	T_RUN(t_exit_status_and_stderr);
	T_RUN(t_timeout_kills_group);
	T_RUN(t_output_cap);
	T_RUN(t_spawn_failures);
	T_RUN(t_child_environment);
	T_RUN(t_validation_rejects);
	T_RUN(t_disk_commands);
	T_RUN(t_sample_is_zero);
	T_RUN(t_mount_unit);
	T_RUN(t_disk_sudoers);

	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
