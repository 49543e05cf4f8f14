/* priv.c — the privileged backend (see priv.h).
 *
 * Every operation is a fixed argv handed to posix_spawn: never a shell, an
 * environment of exactly PATH and LC_ALL=C, stdin from /dev/null, no other
 * descriptor inherited, its own process group. The tool is looked up on
 * opts.path here, so sudo (mode sudo) is given an absolute path that sudoers
 * can match: `SUDO -n -- /abs/tool args...`. stdout and stderr are read
 * together with poll() so neither pipe can fill and stall the child; stdout
 * is capped, stderr keeps its last bytes for the error. A timeout SIGKILLs
 * the whole group and reaps the child.
 *
 * Every argument of the typed operations is checked against a narrow
 * character set before anything runs; a rejection is FH_ERR_INVAL.
 *
 * This file never touches a socket (test_fence checks the object's symbols).
 */
#include "priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "mountunit.h"
#include "proc.h"

_Static_assert(sizeof(((struct priv_err *)0)->stderr_tail) == sizeof(((struct proc_result *)0)->stderr_tail),
	       "the stderr tail passes through whole");

#define PRIV_DEFAULT_SUDO "/usr/bin/sudo"
#define PRIV_DEFAULT_SELF "/usr/bin/felhom-agent"
#define PRIV_DEFAULT_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define PRIV_DEFAULT_TIMEOUT_MS 60000L
#define PRIV_MAX_TIMEOUT_MS (7L * 24 * 3600 * 1000)
#define PRIV_DEFAULT_MAX_OUTPUT ((size_t)4 << 20)

#define PRIV_MAX_ARGS 64          /* argv elements, argv[0] included */
#define PRIV_MAX_ARG_LEN 4096     /* bytes in one argv element */
#define PRIV_MAX_SEARCH_PATH 4096 /* bytes in opts.path */
#define PRIV_MAX_FS_PATH 1024     /* device, mount and guest paths */


struct priv {
	enum priv_mode mode;
	char *sudo_path;
	char *self_path;        /* the agent binary, for --mount-unit */
	char *path;
	long timeout_ms;
	size_t max_output;
	char *env_path;         /* "PATH=<path>" */
	char env_lc[sizeof "LC_ALL=C"];
};

/* Which exit statuses count as success. */
enum priv_accept {
	PRIV_ACCEPT_ZERO,       /* only 0 */
	PRIV_ACCEPT_SMARTCTL,   /* a normal exit with bits 0-1 clear */
	PRIV_ACCEPT_CMP         /* 0 or 1 (cmp: same / different); 2 is trouble */
};

/* ---------------------------------------------------------------------
 * Argument checks. Each is a whitelist; nothing is escaped, only refused.
 */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Non-empty, at most max bytes, every byte alphanumeric or in extra. */
static bool chars_ok(const char *s, const char *extra, size_t max)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++) {
		if (i >= max)
			return false;
		if (!is_alnum(s[i]) && !strchr(extra, s[i]))
			return false;
	}
	return true;
}

/* "..", "/./" or a trailing "/.": any of them could step out of a prefix check. */
static bool has_dot_segment(const char *s)
{
	size_t n = strlen(s);

	return strstr(s, "..") || strstr(s, "/./") || (n >= 2 && strcmp(s + n - 2, "/.") == 0);
}

static bool in_list(const char *s, const char *const list[])
{
	size_t i;

	for (i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* /dev/NAME: [A-Za-z0-9/._:-] only, no dot segments. */
static bool valid_dev(const char *s)
{
	return chars_ok(s, "/._:-", PRIV_MAX_FS_PATH) && strncmp(s, "/dev/", 5) == 0 &&
	       s[5] != '\0' && !has_dot_segment(s) && !strstr(s, "//");
}

/* Filesystem UUIDs: 8-4-4-4-12 hex, vfat's XXXX-XXXX, btrfs/xfs alike. */
static bool valid_uuid(const char *s)
{
	return chars_ok(s, "-", 64) && strspn(s, "0123456789abcdefABCDEF-") == strlen(s) &&
	       strspn(s, "-") < strlen(s);
}

/* An absolute path that may also be put inside a pct property string:
 * no ',', '=' or ':' (they are that string's syntax), no spaces, no dot
 * segments, no "//". */
static bool valid_abs_path(const char *s)
{
	return chars_ok(s, "/._+@-", PRIV_MAX_FS_PATH) && s[0] == '/' && !has_dot_segment(s) &&
	       !strstr(s, "//");
}

/* Host paths the backend will never mount onto or bind into a guest. */
static bool is_system_path(const char *s)
{
	static const char *const sys[] = {
		"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
		"/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var", NULL
	};
	size_t i;

	if (strspn(s, "/") == strlen(s))
		return true; /* "/" itself */
	for (i = 0; sys[i]; i++) {
		size_t n = strlen(sys[i]);
		if (strncmp(s, sys[i], n) == 0 && (s[n] == '\0' || s[n] == '/'))
			return true;
	}
	return false;
}

/* RFC 1123: dot-separated labels of 1..63 [A-Za-z0-9-], no '-' at either end. */
static bool valid_hostname(const char *s)
{
	size_t i, label = 0;

	if (!chars_ok(s, ".-", 253))
		return false;
	for (i = 0;; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			if (s[i] == '\0')
				return true;
			label = 0;
		} else {
			label++;
		}
	}
}

/* Proxmox storage ids. */
static bool valid_storage(const char *s)
{
	return chars_ok(s, "._-", 64) && is_alnum(s[0]);
}

/* Template volume ids such as local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst. */
static bool valid_volid(const char *s)
{
	return chars_ok(s, "._:/-", 255) && (is_alnum(s[0]) || s[0] == '/') && !has_dot_segment(s);
}

/* net0: comma-separated key=value, keys from pct's network options. */
static bool valid_net0(const char *s)
{
	static const char *const keys[] = {
		"name", "bridge", "firewall", "gw", "gw6", "hwaddr", "ip", "ip6",
		"link_down", "mtu", "rate", "tag", "type", NULL
	};
	char tmp[512];
	char *tok, *save = NULL;
	size_t n;

	if (!chars_ok(s, "._:/=,-", sizeof tmp - 1))
		return false;
	n = strlen(s);
	if (s[0] == ',' || s[n - 1] == ',' || strstr(s, ",,"))
		return false;
	memcpy(tmp, s, n + 1);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || eq[1] == '\0' || strchr(eq + 1, '='))
			return false;
		*eq = '\0';
		if (!in_list(tok, keys))
			return false;
	}
	return true;
}

static const char *const mount_fstypes[] = { "ext4", "xfs", "btrfs", "vfat", "exfat", NULL };
static const char *const mkfs_fstypes[] = { "ext4", "xfs", "btrfs", "vfat", NULL };

/* "nodev,nosuid" followed by the caller's tokens (allow-listed, each once,
 * in the caller's order). NULL or "" adds nothing. */
static int build_mount_opts(const char *in, char *dst, size_t dstlen)
{
	static const char *const allow[] = {
		"nodev", "nosuid", "noexec", "noatime", "relatime", "ro", "rw", "nofail", NULL
	};
	bool seen[sizeof allow / sizeof allow[0]] = { true, true };
	size_t len = strlen("nodev,nosuid");
	const char *s = in;

	if (dstlen < 64)
		return FH_ERR_INTERNAL;
	memcpy(dst, "nodev,nosuid", len + 1);
	if (!s || !*s)
		return 0;
	if (strlen(s) > 256)
		return FH_ERR_INVAL;
	for (;;) {
		size_t n = strcspn(s, ","), i;

		for (i = 0; allow[i]; i++)
			if (strlen(allow[i]) == n && strncmp(s, allow[i], n) == 0)
				break;
		if (!allow[i])
			return FH_ERR_INVAL; /* unknown or empty token */
		if (!seen[i]) {
			size_t an = strlen(allow[i]);
			seen[i] = true;
			dst[len++] = ',';
			memcpy(dst + len, allow[i], an + 1);
			len += an;
		}
		if (s[n] == '\0')
			return 0;
		s += n + 1;
	}
}

/* opts.path: ':'-separated absolute directories, none empty (an empty one
 * would mean the current directory). */
static bool valid_search_path(const char *s)
{
	const char *c = s;

	if (!s || !*s || strlen(s) > PRIV_MAX_SEARCH_PATH)
		return false;
	for (; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return false;
	for (c = s;;) {
		if (*c != '/')
			return false;
		c = strchr(c, ':');
		if (!c)
			return true;
		c++;
	}
}

/* ---------------------------------------------------------------------
 * Construction.
 */

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

int priv_new(const struct priv_opts *o, struct priv **out)
{
	struct priv *p = NULL;
	enum priv_mode mode = PRIV_MODE_SUDO;
	const char *sudo = PRIV_DEFAULT_SUDO, *path = PRIV_DEFAULT_PATH, *self = PRIV_DEFAULT_SELF;
	long timeout = PRIV_DEFAULT_TIMEOUT_MS;
	size_t max_output = PRIV_DEFAULT_MAX_OUTPUT;
	size_t n;
	int r = FH_ERR_INTERNAL;

	if (!out)
		return FH_ERR_INVAL;
	if (o) {
		mode = o->mode;
		if (o->sudo_path)
			sudo = o->sudo_path;
		if (o->self_path)
			self = o->self_path;
		if (o->path)
			path = o->path;
		if (o->timeout_ms)
			timeout = o->timeout_ms;
		if (o->max_output)
			max_output = o->max_output;
	}
	if ((mode != PRIV_MODE_SUDO && mode != PRIV_MODE_DIRECT) || timeout < 0 ||
	    timeout > PRIV_MAX_TIMEOUT_MS || !valid_search_path(path) || sudo[0] != '/' ||
	    strlen(sudo) >= PATH_MAX || !valid_abs_path(self) || strlen(self) >= PATH_MAX) {
		r = FH_ERR_INVAL;
		goto out;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	p->mode = mode;
	p->timeout_ms = timeout;
	p->max_output = max_output;
	p->sudo_path = dup_str(sudo);
	p->self_path = dup_str(self);
	p->path = dup_str(path);
	n = strlen("PATH=") + strlen(path) + 1;
	p->env_path = malloc(n);
	if (!p->sudo_path || !p->self_path || !p->path || !p->env_path) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	snprintf(p->env_path, n, "PATH=%s", path);
	memcpy(p->env_lc, "LC_ALL=C", sizeof p->env_lc);

	*out = p;
	p = NULL;
	r = 0;
out:
	priv_free(p);
	return r;
}

void priv_free(struct priv *p)
{
	if (!p)
		return;
	free(p->sudo_path);
	free(p->self_path);
	free(p->path);
	free(p->env_path);
	free(p);
}

/* ---------------------------------------------------------------------
 * Running one command.
 */

static bool is_exec_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The first executable regular file NAME in p->path, as an absolute path. */
static int resolve_tool(const struct priv *p, const char *name, char *dst, size_t dstlen)
{
	const char *s = p->path;

	for (;;) {
		const char *e = strchr(s, ':');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		int k = snprintf(dst, dstlen, "%.*s%s%s", (int)n, s,
				 n && s[n - 1] == '/' ? "" : "/", name);

		if (k > 0 && (size_t)k < dstlen && is_exec_file(dst))
			return 0;
		if (!e)
			return FH_ERR_SPAWN;
		s = e + 1;
	}
}

static void err_reset(struct priv_err *err)
{
	if (!err)
		return;
	err->exit_status = -1;
	err->stderr_tail[0] = '\0';
	err->program[0] = '\0';
}

static void err_program(struct priv_err *err, const char *name)
{
	size_t n;

	if (!err || !name)
		return;
	n = strnlen(name, sizeof err->program - 1);
	memcpy(err->program, name, n);
	err->program[n] = '\0';
}

/* Validates a bare argv (see priv.h). */
static int check_argv(const char *const argv[])
{
	size_t i;

	if (!argv || !argv[0] || strchr(argv[0], '/'))
		return FH_ERR_INVAL;
	for (i = 0; argv[i]; i++) {
		if (i >= PRIV_MAX_ARGS || argv[i][0] == '\0' || strnlen(argv[i], PRIV_MAX_ARG_LEN + 1) > PRIV_MAX_ARG_LEN)
			return FH_ERR_INVAL;
	}
	return 0;
}

static bool status_ok(int code, bool signaled, enum priv_accept acc)
{
	if (signaled)
		return false;
	if (acc == PRIV_ACCEPT_SMARTCTL)
		return (code & 3) == 0; /* bits 2-7 report disk state, not failure */
	if (acc == PRIV_ACCEPT_CMP)
		return code == 0 || code == 1;
	return code == 0;
}

/* Runs the absolute program tool with argv[1..] (argv already checked);
 * *code (may be NULL) gets the exit status of a run that ended normally. */
static int run_exec(struct priv *p, const char *tool, const char *const argv[], struct buf *out,
		    struct priv_err *err, enum priv_accept acc, int *code)
{
	const char *vec[PRIV_MAX_ARGS + 4];
	const char *envp[3];
	struct proc_opts po;
	struct proc_result res;
	size_t n = 0, i;
	int r;

	if (p->mode == PRIV_MODE_SUDO) {
		if (!is_exec_file(p->sudo_path))
			return FH_ERR_SPAWN;
		vec[n++] = p->sudo_path;
		vec[n++] = "-n";
		vec[n++] = "--";
	}
	vec[n++] = tool;
	for (i = 1; argv[i]; i++)
		vec[n++] = argv[i];
	vec[n] = NULL;
	envp[0] = p->env_path;
	envp[1] = p->env_lc;
	envp[2] = NULL;
	po.timeout_ms = p->timeout_ms;
	po.max_output = p->max_output;
	/* stdout reaches the caller only once the exit status is judged */
	{
		struct buf col;
		buf_init(&col, p->max_output);
		r = proc_run(vec[0], vec, envp, &po, out ? &col : NULL, &res);
		if (err) {
			err->exit_status = res.status;
			memcpy(err->stderr_tail, res.stderr_tail, sizeof err->stderr_tail);
		}
		if (r == 0 && code)
			*code = res.signaled ? -1 : res.status;
		if (r == 0 && !status_ok(res.status, res.signaled, acc))
			r = FH_ERR_EXIT;
		if (r == 0 && out && col.len)
			r = buf_append(out, col.data, col.len);
		buf_free(&col);
	}
	return r;
}

static int run_cmd_code(struct priv *p, const char *const argv[], struct buf *out,
			struct priv_err *err, enum priv_accept acc, int *code)
{
	char tool[PATH_MAX];
	int r;

	err_reset(err);
	if (!p)
		return FH_ERR_INVAL;
	r = check_argv(argv);
	if (r != 0)
		return r;
	err_program(err, argv[0]);
	r = resolve_tool(p, argv[0], tool, sizeof tool);
	if (r != 0)
		return r;
	return run_exec(p, tool, argv, out, err, acc, code);
}

static int run_cmd(struct priv *p, const char *const argv[], struct buf *out,
		   struct priv_err *err, enum priv_accept acc)
{
	return run_cmd_code(p, argv, out, err, acc, NULL);
}

/* Runs the agent's own binary (opts.self_path) with argv[1..]; argv[0] is
 * its name for err. */
static int run_self(struct priv *p, const char *const argv[], struct priv_err *err)
{
	int r;

	err_reset(err);
	r = check_argv(argv);
	if (r != 0)
		return r;
	err_program(err, argv[0]);
	if (!is_exec_file(p->self_path))
		return FH_ERR_SPAWN;
	return run_exec(p, p->self_path, argv, NULL, err, PRIV_ACCEPT_ZERO, NULL);
}

int priv_run(struct priv *p, const char *const argv[], struct buf *out, struct priv_err *err)
{
	return run_cmd(p, argv, out, err, PRIV_ACCEPT_ZERO);
}

/* ---------------------------------------------------------------------
 * The operations. Each validates every argument, then builds a fixed argv.
 */

/* Fails validation: err names the program, nothing ran. */
static int reject(struct priv_err *err, const char *program)
{
	err_reset(err);
	err_program(err, program);
	return FH_ERR_INVAL;
}

static bool int_in(int v, int lo, int hi)
{
	return v >= lo && v <= hi;
}

/* Why not the API: the keyctl feature flag may be set only by root@pam,
 * never by an API token (pve-container LXC.pm). */
int priv_pct_create_golden(struct priv *p, const struct priv_golden *g, struct priv_err *err)
{
	char vmid[16], rootfs[96], mem[16], cores[16];

	if (!p || !g || !int_in(g->vmid, 100, 999999999) || !valid_volid(g->ostemplate) ||
	    !valid_hostname(g->hostname) || !valid_storage(g->storage) ||
	    !int_in(g->rootfs_gib, 1, 1 << 17) || !int_in(g->memory_mib, 16, 1 << 26) ||
	    !int_in(g->cores, 1, 8192) || !valid_net0(g->net0))
		return reject(err, "pct");
	snprintf(vmid, sizeof vmid, "%d", g->vmid);
	snprintf(rootfs, sizeof rootfs, "%s:%d", g->storage, g->rootfs_gib);
	snprintf(mem, sizeof mem, "%d", g->memory_mib);
	snprintf(cores, sizeof cores, "%d", g->cores);
	{
		const char *const argv[] = {
			"pct", "create", vmid, g->ostemplate,
			"--hostname", g->hostname,
			"--features", "keyctl=1,nesting=1",
			"--unprivileged", "1",
			"--storage", g->storage,
			"--rootfs", rootfs,
			"--memory", mem,
			"--cores", cores,
			"--net0", g->net0,
			NULL
		};
		return run_cmd(p, argv, NULL, err, PRIV_ACCEPT_ZERO);
	}
}

/* Why not the API: host mounts are not a Proxmox API operation. */
int priv_mount_uuid(struct priv *p, const char *uuid, const char *target,
		    const char *fstype, const char *options, struct priv_err *err)
{
	char opts[128], spec[80];

	if (!p || !valid_uuid(uuid) || !valid_abs_path(target) || is_system_path(target) ||
	    !fstype || !in_list(fstype, mount_fstypes) ||
	    build_mount_opts(options, opts, sizeof opts) != 0)
		return reject(err, "mount");
	snprintf(spec, sizeof spec, "UUID=%s", uuid);
	{
		const char *const argv[] = { "mount", "-t", fstype, "-o", opts, spec, target, NULL };
		return run_cmd(p, argv, NULL, err, PRIV_ACCEPT_ZERO);
	}
}

/* Why not the API: its SMART view is text/attribute lists and needs
 * Sys.Audit on /; the JSON form and NVMe wear are only in smartctl. */
int priv_smartctl(struct priv *p, const char *dev, struct buf *out, struct priv_err *err)
{
	const char *const argv[] = { "smartctl", "--json", "-a", dev, NULL };

	if (!p || !valid_dev(dev))
		return reject(err, "smartctl");
	return run_cmd(p, argv, out, err, PRIV_ACCEPT_SMARTCTL);
}

/* Why not the API: Proxmox exposes no sensor readings. */
int priv_sensors(struct priv *p, struct buf *out, struct priv_err *err)
{
	const char *const argv[] = { "sensors", "-j", NULL };

	if (!p)
		return reject(err, "sensors");
	return run_cmd(p, argv, out, err, PRIV_ACCEPT_ZERO);
}

/* Why not the API: Proxmox has no read-only signature probe. */
int priv_wipefs_probe(struct priv *p, const char *dev, struct buf *out, struct priv_err *err)
{
	const char *const argv[] = { "wipefs", "--no-act", "--json", dev, NULL };

	if (!p || !valid_dev(dev))
		return reject(err, "wipefs");
	return run_cmd(p, argv, out, err, PRIV_ACCEPT_ZERO);
}

/* Why not the API: as wipefs. */
int priv_blkid_probe(struct priv *p, const char *dev, struct buf *out, struct priv_err *err)
{
	const char *const argv[] = { "blkid", "-p", "-o", "export", dev, NULL };

	if (!p || !valid_dev(dev))
		return reject(err, "blkid");
	return run_cmd(p, argv, out, err, PRIV_ACCEPT_ZERO);
}

/* Why not the API: Proxmox makes filesystems only as whole storages. */
int priv_mkfs(struct priv *p, const char *dev, const char *fstype, struct priv_err *err)
{
	const char *const argv[] = { "mkfs", "-t", fstype, dev, NULL };

	if (!p || !valid_dev(dev) || !fstype || !in_list(fstype, mkfs_fstypes))
		return reject(err, "mkfs");
	return run_cmd(p, argv, NULL, err, PRIV_ACCEPT_ZERO);
}

/* Why not the API: bind mount points are allowed only to root@pam, never
 * to an API token. */
int priv_pct_set_bind_mp(struct priv *p, int vmid, int mp_index, const char *host_path,
			 const char *guest_path, bool read_only, struct priv_err *err)
{
	char vmid_s[16], opt[16], spec[2 * PRIV_MAX_FS_PATH + 16];

	if (!p || !int_in(vmid, 100, 999999999) || !int_in(mp_index, 0, 255) ||
	    !valid_abs_path(host_path) || is_system_path(host_path) ||
	    !valid_abs_path(guest_path) || strspn(guest_path, "/") == strlen(guest_path))
		return reject(err, "pct");
	snprintf(vmid_s, sizeof vmid_s, "%d", vmid);
	snprintf(opt, sizeof opt, "-mp%d", mp_index);
	snprintf(spec, sizeof spec, "%s,mp=%s%s", host_path, guest_path, read_only ? ",ro=1" : "");
	{
		const char *const argv[] = { "pct", "set", vmid_s, opt, spec, NULL };
		return run_cmd(p, argv, NULL, err, PRIV_ACCEPT_ZERO);
	}
}

/* ---------------------------------------------------------------------
 * Disk management (disk.h).
 */

/* Why not the API: its disk list has no filesystem UUIDs, partition
 * parents or mount points. */
int priv_lsblk(struct priv *p, struct buf *out, struct priv_err *err)
{
	const char *const argv[] = { "lsblk", "--json", "--bytes", "--list", "--output",
				     PRIV_LSBLK_COLUMNS, NULL };

	if (!p)
		return reject(err, "lsblk");
	return run_cmd(p, argv, out, err, PRIV_ACCEPT_ZERO);
}

/* Why not the API: Proxmox wipes only disks it is about to use itself. */
int priv_wipefs_all(struct priv *p, const char *dev, struct priv_err *err)
{
	const char *const argv[] = { "wipefs", "-a", dev, NULL };

	if (!p || !valid_dev(dev))
		return reject(err, "wipefs");
	return run_cmd(p, argv, NULL, err, PRIV_ACCEPT_ZERO);
}

/* Why not the API: removing a bind mount point is refused to tokens too. */
int priv_pct_delete_mp(struct priv *p, int vmid, int mp_index, struct priv_err *err)
{
	char vmid_s[16], mp[16];

	if (!p || !int_in(vmid, 100, 999999999) || !int_in(mp_index, 0, 255))
		return reject(err, "pct");
	snprintf(vmid_s, sizeof vmid_s, "%d", vmid);
	snprintf(mp, sizeof mp, "mp%d", mp_index);
	{
		const char *const argv[] = { "pct", "set", vmid_s, "-delete", mp, NULL };
		return run_cmd(p, argv, NULL, err, PRIV_ACCEPT_ZERO);
	}
}

/* Why not the API: Proxmox offers no raw reads. cmp reads the range as
 * root and says only whether it equals /dev/zero: no byte of the device
 * reaches the agent. The M suffix (2^20) keeps the granularity a MiB. */
int priv_sample_is_zero(struct priv *p, const char *dev, uint64_t offset_mib, uint64_t mib, bool *zero,
			struct priv_err *err)
{
	char n_arg[32], i_arg[48];
	int code = -1, r;

	if (zero)
		*zero = false;
	if (!p || !zero || !valid_dev(dev) || offset_mib > PRIV_SAMPLE_MAX_MIB || mib < 1 ||
	    mib > PRIV_SAMPLE_MAX_LEN_MIB)
		return reject(err, "cmp");
	snprintf(n_arg, sizeof n_arg, "%lluM", (unsigned long long)mib);
	snprintf(i_arg, sizeof i_arg, "%lluM:0", (unsigned long long)offset_mib);
	{
		const char *const argv[] = { "cmp", "-s", "-n", n_arg, "-i", i_arg, dev, "/dev/zero", NULL };
		r = run_cmd_code(p, argv, NULL, err, PRIV_ACCEPT_CMP, &code);
	}
	if (r == 0)
		*zero = code == 0;
	return r;
}

/* Why not the API: host mounts are not a Proxmox API operation, and the
 * unit must be made by PID 1 in the host's mount namespace. */
int priv_mount_unit_add(struct priv *p, const char *mount_root, const char *uuid, const char *fstype,
			const char *options, struct priv_err *err)
{
	char opts[MOUNTUNIT_OPTIONS_MAX];
	struct mountunit_args a;

	if (!p || mountunit_options(options, opts, sizeof opts) != 0 ||
	    mountunit_check_add(mount_root, uuid, fstype, opts, &a, NULL, 0) != 0)
		return reject(err, "felhom-agent");
	{
		const char *const argv[] = { "felhom-agent", "--mount-unit", "add", a.mount_root, a.uuid, a.fstype,
					     a.options, NULL };
		return run_self(p, argv, err);
	}
}

int priv_mount_unit_remove(struct priv *p, const char *mount_root, const char *hex, struct priv_err *err)
{
	struct mountunit_args a;

	if (!p || mountunit_check_remove(mount_root, hex, &a, NULL, 0) != 0)
		return reject(err, "felhom-agent");
	{
		const char *const argv[] = { "felhom-agent", "--mount-unit", "remove", a.mount_root, a.hex, NULL };
		return run_self(p, argv, err);
	}
}
