/* test_systemd.c — the shipped systemd unit and sudoers file.
 *
 * - `systemd-analyze verify` on a copy of docs/systemd/felhom-agent.service
 *   whose ExecStart points at the built binary's absolute path (the real
 *   /usr/bin/felhom-agent does not exist on a build machine); it must pass
 *   with no output at all.
 * - `systemd-analyze security --offline=true` on the same copy: the exposure
 *   score docs/OPERATIONS.md states must not get worse.
 * - The unit's contract with the code: Type=notify, the credential names
 *   cfg.c reads, a watchdog, a non-root user, no NoNewPrivileges.
 * - `visudo -cf` on docs/systemd/felhom-agent.sudoers (when the sudo package
 *   is installed; the test says so otherwise).
 * - Every command line the privileged backend hands to sudo (captured with a
 *   recording fake sudo, argv exactly as priv.c builds it) matches exactly
 *   one sudoers rule (the one meant for it), and lines with one word changed
 *   or added do not. The commands whose rules were withdrawn (dd samples,
 *   unit files installed, enabled, disabled and removed by the agent user)
 *   match none.
 */
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "priv.h"

#define UNIT "docs/systemd/felhom-agent.service"
#define SUDOERS "docs/systemd/felhom-agent.sudoers"
#define MAX_EXPOSURE 5.2

static const char *const tool_env[] = { "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C", NULL };
static char dir[256];

/* The unit with ExecStart= on the built binary, written as dir/felhom-agent.service. */
static int unit_copy(char *path, size_t len)
{
	char bin[PATH_MAX], binpath[512];
	char *u = t_slurp(UNIT, NULL), *p, *out;
	size_t n;
	int r;

	snprintf(binpath, sizeof(binpath), "%s/felhom-agent", t_build_dir());
	if (!u || !realpath(binpath, bin)) {
		free(u);
		return -1;
	}
	p = strstr(u, "\nExecStart=/usr/bin/felhom-agent ");
	if (!p) {
		free(u);
		return -1;
	}
	n = strlen(u) + strlen(bin) + 1;
	out = malloc(n);
	if (!out) {
		free(u);
		return -1;
	}
	snprintf(out, n, "%.*s\nExecStart=%s%s", (int)(p - u), u, bin,
		 p + strlen("\nExecStart=/usr/bin/felhom-agent"));
	snprintf(path, len, "%s/felhom-agent.service", dir);
	r = t_write_file(path, out, 0644);
	free(out);
	free(u);
	return r;
}

T_TEST(t_unit_verifies_cleanly)
{
	char unit[512], *out = NULL, *err = NULL;
	int st;

	T_OK(unit_copy(unit, sizeof(unit)));
	{
		const char *argv[] = { "/usr/bin/systemd-analyze", "verify", unit, NULL };
		st = t_run_cmd(argv, tool_env, &out, &err);
	}
	T_EQ_INT(st, 0);
	if (out[0] || err[0])
		t_failf(__FILE__, __LINE__, "systemd-analyze verify said:\n%s%s", out, err);
	free(out);
	free(err);
	/* the control: the shipped file names /usr/bin/felhom-agent, which verify
	 * must reject here, so the check above looked at ExecStart at all */
	if (access("/usr/bin/felhom-agent", X_OK) != 0) {
		char orig[512];
		char *u = t_slurp(UNIT, NULL);
		snprintf(orig, sizeof(orig), "%s/orig/felhom-agent.service", dir);
		{
			char d[400];
			snprintf(d, sizeof(d), "%s/orig", dir);
			mkdir(d, 0700);
		}
		T_CHECK(u && t_write_file(orig, u, 0644) == 0);
		{
			const char *argv[] = { "/usr/bin/systemd-analyze", "verify", orig, NULL };
			st = t_run_cmd(argv, tool_env, &out, &err);
		}
		T_CHECK(st != 0 && strstr(err, "/usr/bin/felhom-agent") != NULL);
		free(out);
		free(err);
		free(u);
	}
}

T_TEST(t_unit_security_exposure)
{
	char unit[512], *out = NULL, *err = NULL, *p;
	double score = 99;
	int st;

	T_OK(unit_copy(unit, sizeof(unit)));
	{
		const char *argv[] = { "/usr/bin/systemd-analyze", "security", "--offline=true", "--no-pager", unit, NULL };
		st = t_run_cmd(argv, tool_env, &out, &err);
	}
	/* exit status is the exposure bucket; the score line is what counts */
	(void)st;
	p = strstr(out, "Overall exposure level for felhom-agent.service: ");
	T_CHECK(p != NULL);
	if (p)
		score = strtod(p + strlen("Overall exposure level for felhom-agent.service: "), NULL);
	if (score > MAX_EXPOSURE + 0.001)
		t_failf(__FILE__, __LINE__, "exposure %.1f is worse than the documented %.1f", score, MAX_EXPOSURE);
	printf("# systemd-analyze security --offline=true: exposure %.1f\n", score);
	T_CHECK(strstr(out, "PrivateTmp=") && strstr(out, "ProtectSystem="));
	free(out);
	free(err);
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

T_TEST(t_unit_contract)
{
	char *u = t_slurp(UNIT, NULL);

	T_CHECK(u != NULL);
	if (!u)
		return;
	T_CHECK(has_line(u, "Type=notify"));
	T_CHECK(has_line(u, "Restart=on-failure"));
	T_CHECK(has_line(u, "User=felhom-agent"));
	T_CHECK(has_line(u, "StateDirectory=felhom-agent"));
	T_CHECK(has_line(u, "ConfigurationDirectory=felhom-agent"));
	T_CHECK(has_line(u, "ProtectSystem=strict"));
	T_CHECK(has_line(u, "PrivateTmp=yes"));
	T_CHECK(has_line(u, "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"));
	T_CHECK(strstr(u, "\nSystemCallFilter=@system-service") != NULL);
	T_CHECK(strstr(u, "\nWatchdogSec=") != NULL);
	T_CHECK(strstr(u, "\nExecReload=/bin/kill -HUP $MAINPID") != NULL);
	/* the credential names cfg.c looks up in $CREDENTIALS_DIRECTORY */
	T_CHECK(strstr(u, "\nLoadCredential=hub.api_key:") != NULL);
	T_CHECK(strstr(u, "\nLoadCredential=proxmox.token:") != NULL);
	/* sudo needs setuid: no_new_privs would break the privileged backend */
	T_CHECK(strstr(u, "\nNoNewPrivileges=") == NULL);
	free(u);
}

T_TEST(t_sudoers_syntax)
{
	char *out = NULL, *err = NULL;
	int st;

	if (access("/usr/sbin/visudo", X_OK) != 0) {
		printf("# visudo not installed (Debian package sudo): the sudoers syntax check did not run; "
		       "the rule-matching checks still did\n");
		return;
	}
	{
		const char *argv[] = { "/usr/sbin/visudo", "-cf", SUDOERS, NULL };
		st = t_run_cmd(argv, tool_env, &out, &err);
	}
	T_EQ_INT(st, 0);
	T_CHECK(strstr(out, "parsed OK") != NULL);
	free(out);
	free(err);
	/* and visudo does reject a broken copy: the check can fail */
	{
		char bad[400];
		char *s = t_slurp(SUDOERS, NULL);
		snprintf(bad, sizeof(bad), "%s/broken.sudoers", dir);
		T_CHECK(s != NULL);
		if (s) {
			char *q = strstr(s, "NOPASSWD:");
			if (q)
				q[8] = ' ';      /* "NOPASSWD " */
			t_write_file(bad, s, 0440);
			free(s);
		}
		{
			const char *argv[] = { "/usr/sbin/visudo", "-cf", bad, NULL };
			st = t_run_cmd(argv, tool_env, &out, &err);
		}
		T_CHECK(st != 0);
		free(out);
		free(err);
	}
}

/* ---- rule matching ---- */

struct rule {
	char name[64];        /* the Cmnd_Alias */
	char tool[32];        /* basename */
	char path[128];
	char args[2048];      /* as sudo compares them: literal, or ^ERE$ */
};

/* Undoes the sudoers argument escapes (\, \: \= \\); keeps regex escapes. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s == '\\' && (s[1] == ',' || s[1] == ':' || s[1] == '=' || s[1] == '\\'))
			s++;
		*w++ = *s;
	}
	*w = '\0';
}

static size_t parse_rules(const char *text, struct rule *r, size_t max)
{
	size_t n = 0;
	const char *p = text;

	while (n < max && (p = strstr(p, "\nCmnd_Alias ")) != NULL) {
		const char *eq = strstr(p, " = "), *end;
		const char *sp, *slash;
		size_t pl;
		p++;
		if (!eq)
			break;
		pl = (size_t)(eq - (p + strlen("Cmnd_Alias ")));
		if (pl >= sizeof(r[n].name))
			continue;
		memcpy(r[n].name, p + strlen("Cmnd_Alias "), pl);
		r[n].name[pl] = '\0';
		end = strchr(eq, '\n');
		if (!end)
			end = eq + strlen(eq);
		eq += 3;
		sp = memchr(eq, ' ', (size_t)(end - eq));
		if (!sp)
			sp = end;
		pl = (size_t)(sp - eq);
		if (pl >= sizeof(r[n].path))
			continue;
		memcpy(r[n].path, eq, pl);
		r[n].path[pl] = '\0';
		slash = strrchr(r[n].path, '/');
		slash = slash ? slash + 1 : r[n].path;
		if (strlen(slash) >= sizeof(r[n].tool))
			continue;
		memcpy(r[n].tool, slash, strlen(slash) + 1);
		snprintf(r[n].args, sizeof(r[n].args), "%.*s", (int)(end - sp - (sp < end)), sp + (sp < end));
		unescape(r[n].args);
		n++;
	}
	return n;
}

/* Does the argument string match rule r the way sudo compares it? */
static int rule_matches(const struct rule *r, const char *args)
{
	size_t n = strlen(r->args);
	regex_t re;
	int ok;

	if (n >= 2 && r->args[0] == '^' && r->args[n - 1] == '$') {
		if (regcomp(&re, r->args, REG_EXTENDED | REG_NOSUB))
			return -1;
		ok = regexec(&re, args, 0, NULL, 0) == 0;
		regfree(&re);
		return ok;
	}
	return strcmp(r->args, args) == 0;
}

/* How many rules allow tool + args; *which (may be NULL) names the last. */
static int count_rules(const struct rule *r, size_t nr, const char *tool, const char *args, const char **which)
{
	size_t i;
	int n = 0;

	for (i = 0; i < nr; i++) {
		if (!strcmp(r[i].tool, tool) && rule_matches(&r[i], args) == 1) {
			n++;
			if (which)
				*which = r[i].name;
		}
	}
	return n;
}

static int any_rule(const struct rule *r, size_t nr, const char *tool, const char *args)
{
	return count_rules(r, nr, tool, args, NULL) > 0;
}

T_TEST(t_sudoers_rules_match_priv_argv)
{
	static const char *const tools[] = { "pct",   "mount", "smartctl", "sensors", "wipefs",       "blkid",
					     "mkfs",  "lsblk", "cmp",      "felhom-agent", NULL };
	/* the alias each call below must match, in call order */
	static const char *const expect[] = {
		"FELHOM_PCT_CREATE", "FELHOM_MOUNT", "FELHOM_MOUNT", "FELHOM_SMARTCTL", "FELHOM_SENSORS",
		"FELHOM_WIPEFS", "FELHOM_BLKID", "FELHOM_MKFS", "FELHOM_PCT_SET_MP", "FELHOM_PCT_SET_MP",
		"FELHOM_LSBLK", "FELHOM_CMP_SAMPLE", "FELHOM_CMP_SAMPLE", "FELHOM_WIPEFS_ALL", "FELHOM_PCT_DEL_MP",
		"FELHOM_MOUNT_UNIT_ADD", "FELHOM_MOUNT_UNIT_ADD", "FELHOM_MOUNT_UNIT_ADD", "FELHOM_MOUNT_UNIT_REMOVE",
		"FELHOM_MOUNT_UNIT_REMOVE", NULL
	};
	char bin[300], sudo[300], logf[300], script[700], path[400], self[400];
	struct rule rules[32];
	struct priv_opts o;
	struct priv *p = NULL;
	struct buf b;
	char *text = t_slurp(SUDOERS, NULL), *log, *line, *save;
	size_t nr, i, calls = 0;

	T_CHECK(text != NULL);
	if (!text)
		return;
	nr = parse_rules(text, rules, 32);
	T_EQ_INT(nr, 14);
	/* every alias is granted, and only those */
	{
		char grant[2048] = "felhom-agent ALL=(root) NOPASSWD: ";
		size_t gl = strlen(grant);
		for (i = 0; i < nr && gl + sizeof(rules[i].name) + 4 < sizeof(grant); i++) {
			size_t nl = strlen(rules[i].name);
			if (i) {
				memcpy(grant + gl, ", ", 2);
				gl += 2;
			}
			memcpy(grant + gl, rules[i].name, nl);
			gl += nl;
		}
		memcpy(grant + gl, "\n", 2);
		T_CHECK(strstr(text, grant) != NULL);
	}
	for (i = 0; i < nr; i++) {
		regex_t re;
		size_t n = strlen(rules[i].args);
		/* every variable rule is a full anchored ERE that compiles */
		if (n && rules[i].args[0] == '^') {
			T_CHECK(rules[i].args[n - 1] == '$');
			T_CHECK(regcomp(&re, rules[i].args, REG_EXTENDED | REG_NOSUB) == 0);
			regfree(&re);
		}
		T_CHECK(!strncmp(rules[i].path, "/usr/sbin/", 10) || !strncmp(rules[i].path, "/usr/bin/", 9));
	}
	/* a fake sudo that records its argv, fake tools on privileged.path */
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	mkdir(bin, 0700);
	for (i = 0; tools[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", bin, tools[i]);
		t_write_file(path, "#!/bin/sh\nexit 0\n", 0755);
	}
	snprintf(logf, sizeof(logf), "%s/sudo.log", dir);
	snprintf(sudo, sizeof(sudo), "%s/fake-sudo", dir);
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n{ for a in \"$@\"; do printf '%%s\\037' \"$a\"; done; printf '\\n'; } >> '%s'\n", logf);
	t_write_file(sudo, script, 0755);
	memset(&o, 0, sizeof(o));
	o.mode = PRIV_MODE_SUDO;
	o.sudo_path = sudo;
	o.path = bin;
	snprintf(self, sizeof(self), "%s/felhom-agent", bin);
	o.self_path = self;
	T_OK(priv_new(&o, &p));
	if (!p) {
		free(text);
		return;
	}
	buf_init(&b, 1 << 20);
	{
		struct priv_golden g = { 9000, "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "golden",
					 "local-lvm", 8, 1024, 2, "name=eth0,bridge=vmbr0,ip=dhcp" };
		T_OK(priv_pct_create_golden(p, &g, NULL));
	}
	T_OK(priv_mount_uuid(p, "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "/mnt/data", "ext4", NULL, NULL));
	T_OK(priv_mount_uuid(p, "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "/srv/backup", "xfs", "noatime,nofail", NULL));
	T_OK(priv_smartctl(p, "/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K0XXXX", &b, NULL));
	T_OK(priv_sensors(p, &b, NULL));
	T_OK(priv_wipefs_probe(p, "/dev/sdb", &b, NULL));
	T_OK(priv_blkid_probe(p, "/dev/nvme0n1p1", &b, NULL));
	T_OK(priv_mkfs(p, "/dev/sdc", "ext4", NULL));
	T_OK(priv_pct_set_bind_mp(p, 101, 0, "/mnt/data/cust-101", "/data", false, NULL));
	T_OK(priv_pct_set_bind_mp(p, 101, 3, "/media/usb1/x", "/srv/media", true, NULL));
	T_OK(priv_lsblk(p, &b, NULL));
	{
		bool zero = false;
		T_OK(priv_sample_is_zero(p, "/dev/sdb", 12345, 1, &zero, NULL));
		T_OK(priv_sample_is_zero(p, "/dev/disk/by-id/nvme-Samsung_SSD_980_S123-part2", 0, 64, &zero, NULL));
	}
	T_OK(priv_wipefs_all(p, "/dev/sdb1", NULL));
	T_OK(priv_pct_delete_mp(p, 101, 7, NULL));
	T_OK(priv_mount_unit_add(p, "/mnt/felhom", "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab", "ext4", NULL, NULL));
	T_OK(priv_mount_unit_add(p, "/srv/data_1", "0B1C2D3E-AAAA-BBBB-CCCC-0123456789AB", "btrfs",
				 "rw,relatime,noatime,noexec,nofail,nosuid,nodev", NULL));
	T_OK(priv_mount_unit_add(p, "/media", "ABCD-12EF", "exfat", "ro", NULL));
	T_OK(priv_mount_unit_remove(p, "/mnt/felhom", "0b1c2d3eaaaabbbbcccc0123456789ab", NULL));
	T_OK(priv_mount_unit_remove(p, "/media", "abcd12ef", NULL));
	buf_free(&b);
	priv_free(p);

	log = t_slurp(logf, NULL);
	T_CHECK(log != NULL);
	for (line = log ? strtok_r(log, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *argv[64], args[4096], *f, *s2;
		const char *tool;
		size_t na = 0, k, o2 = 0;
		for (f = strtok_r(line, "\037", &s2); f && na < 64; f = strtok_r(NULL, "\037", &s2))
			argv[na++] = f;
		calls++;
		/* sudo -n -- /ABS/TOOL args */
		T_CHECK(na >= 3 && !strcmp(argv[0], "-n") && !strcmp(argv[1], "--") && argv[2][0] == '/');
		if (na < 3)
			continue;
		tool = strrchr(argv[2], '/') + 1;
		args[0] = '\0';
		for (k = 3; k < na; k++)
			o2 += (size_t)snprintf(args + o2, sizeof(args) - o2, "%s%s", k > 3 ? " " : "", argv[k]);
		{
			const char *which = "";
			int m = count_rules(rules, nr, tool, args, &which);
			if (m != 1)
				t_failf(__FILE__, __LINE__, "%d sudoers rules allow: %s %s", m, tool, args);
			else if (calls > sizeof(expect) / sizeof(expect[0]) - 1 || strcmp(which, expect[calls - 1]))
				t_failf(__FILE__, __LINE__, "call %zu (%s %s) matched %s", calls, tool, args, which);
		}
		/* the same with one more argument in the middle */
		if (na > 4) {
			char mid[4200];
			size_t o3 = 0;
			for (k = 3; k < na; k++)
				o3 += (size_t)snprintf(mid + o3, sizeof(mid) - o3, "%s%s%s", k > 3 ? " " : "",
						       k == na - 1 ? "--config /tmp/x " : "", argv[k]);
			if (any_rule(rules, nr, tool, mid))
				t_failf(__FILE__, __LINE__, "a sudoers rule also allows: %s %s", tool, mid);
		}
		/* one extra option, or one word swapped for a dangerous one, is refused */
		{
			char more[4200];
			snprintf(more, sizeof(more), "%s --force", args);
			if (any_rule(rules, nr, tool, more))
				t_failf(__FILE__, __LINE__, "a sudoers rule also allows: %s %s", tool, more);
		}
	}
	T_EQ_INT(calls, 20);
	/* the withdrawn commands: root-equivalent for the agent user */
	T_CHECK(!any_rule(rules, nr, "dd", "if=/dev/sdb bs=1048576 skip=12345 count=1 iflag=fullblock status=none"));
	T_CHECK(!any_rule(rules, nr, "install", "-D -m 0644 /var/lib/felhom-agent/units/etc.mount /mnt/.units/etc.mount"));
	T_CHECK(!any_rule(rules, nr, "systemctl", "enable --now /mnt/felhom/.units/mnt-felhom-ab12.mount"));
	T_CHECK(!any_rule(rules, nr, "systemctl", "disable --now mnt-pve-backup.mount"));
	T_CHECK(!any_rule(rules, nr, "systemctl", "disable --now mnt-felhom-ab12.mount"));
	T_CHECK(!any_rule(rules, nr, "rm", "-f -- /mnt/felhom/.units/mnt-felhom-ab12.mount"));
	/* and the helper only in its two pinned shapes */
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit add /mnt/felhom 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab "
						     "ext4 nodev,nosuid,nofail extra"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit add /etc 0b1c2d3e-aaaa-bbbb-cccc-0123456789ab "
						     "ext4 nodev,nosuid,nofail"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit add /mnt/a/../../etc "
						     "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 nodev,nosuid,nofail"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit add /mnt/felhom ABCD-12EF ext4 nodev,nosuid,nofail"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit add /mnt/felhom "
						     "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab ext4 nodev,nosuid,nofail,noatime,noexec"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit remove /mnt/felhom ab12"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--mount-unit remove /mnt/felhom ../../etc/shadow"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--config /tmp/evil.json --mount-unit remove /mnt/felhom abcd12ef"));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", ""));
	T_CHECK(!any_rule(rules, nr, "felhom-agent", "--selftest"));
	T_CHECK(!any_rule(rules, nr, "cmp", "-s -n 1M -i 0M:0 /dev/sdb /etc/shadow"));
	T_CHECK(!any_rule(rules, nr, "cmp", "-n 1M -i 0M:0 /dev/sdb /dev/zero"));
	/* shapes priv.c refuses are refused by sudoers too */
	T_CHECK(!any_rule(rules, nr, "pct", "set 101 -mp0 /dev/sda,mp=/data"));
	T_CHECK(!any_rule(rules, nr, "pct", "set 101 -mp0 /etc,mp=/data"));
	T_CHECK(!any_rule(rules, nr, "pct", "destroy 101"));
	T_CHECK(!any_rule(rules, nr, "pct", "exec 101 -- sh"));
	T_CHECK(!any_rule(rules, nr, "mount", "-t ext4 -o nodev,nosuid UUID=0b1c /mnt/../etc"));
	T_CHECK(!any_rule(rules, nr, "mount", "-t ext4 -o suid UUID=0b1c /mnt/data"));
	T_CHECK(!any_rule(rules, nr, "mount", "--bind / /mnt/x"));
	T_CHECK(!any_rule(rules, nr, "smartctl", "--json -a /dev/../etc/shadow"));
	T_CHECK(!any_rule(rules, nr, "smartctl", "--json -a /dev/sda -s on"));
	T_CHECK(!any_rule(rules, nr, "mkfs", "-t ntfs /dev/sdc"));
	T_CHECK(!any_rule(rules, nr, "wipefs", "--all /dev/sdb"));
	T_CHECK(!any_rule(rules, nr, "sensors", "-j -s"));
	T_CHECK(!any_rule(rules, nr, "pct", "create 9000 local:vztmpl/x.tar.zst --hostname g --features keyctl=1,nesting=1 "
				     "--unprivileged 0 --storage local-lvm --rootfs local-lvm:8 --memory 1024 --cores 2 "
				     "--net0 name=eth0"));
	free(log);
	free(text);
}

int main(void)
{
	t_tmpdir(dir, sizeof(dir));
	T_RUN(t_unit_verifies_cleanly);
	T_RUN(t_unit_security_exposure);
	T_RUN(t_unit_contract);
	T_RUN(t_sudoers_syntax);
	T_RUN(t_sudoers_rules_match_priv_argv);
	{
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return t_done();
}
