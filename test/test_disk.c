/* test_disk.c — disk management (disk.h) against fake host tools and the
 * simulated Proxmox host, then on real loop devices when the machine
 * allows it.
 *
 * The fakes (test/fakebin.h) are #!/bin/sh scripts in a private bin
 * directory, the only directory on the backend's PATH (mode direct). Each
 * appends its name and arguments, one per line, then "--", to a record
 * file. lsblk prints a fixture; wipefs/blkid print per-device fixtures
 * from a directory (absent = nothing found); cmp is the real cmp over a
 * device's content fixture (absent = zeros); mkfs writes the fixtures of a
 * new filesystem; `wipefs -a` removes a device's fixtures; pct applies its
 * change to the simulator's guest config through the control API; the
 * agent's own binary (priv_opts.self_path, run for `--mount-unit add|remove`)
 * only records. Every file path is baked into the script text (the backend
 * passes no environment but PATH and LC_ALL).
 */
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "disk.h"
#include "err.h"
#include "fakebin.h"
#include "gate.h"
#include "json.h"
#include "mountunit.h"
#include "priv.h"
#include "pve.h"
#include "sim.h"
#include "store.h"

static char g_dir[256], g_byid[300], g_db[300], g_sys[300];
static char g_shm[256];          /* by-id links below /dev (mkfs may use them) */
static bool g_byid_dev;          /* g_byid is a /dev path */
static struct sim g_sim;
static bool g_have_sim;
static struct pve_opts g_po;
static struct priv_opts g_privo;
static struct store *g_st;
static int64_t g_now = 1781000000;

static int64_t fake_now(void)
{
	return g_now;
}

#define UUID_C "0b3c2a1e-1111-4222-8333-944455556666"
#define UUID_D1 "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define UUID_G "cccccccc-dddd-4eee-8fff-000000000001"
#define UUID_NEW "11111111-2222-4333-8444-555555555555"
#define HEX_C "0b3c2a1e111142228333944455556666"
#define HEX_G "ccccccccdddd4eee8fff000000000001"

/* ------------------------------------------------------------- fakes */

static struct fakebin g_fb;

static void fake(const char *name, const char *body)
{
	T_CHECK(fakebin_script(&g_fb, name, body) == 0);
}

static void fx_write(const char *name, const char *text)
{
	T_CHECK(fakebin_fx_write(&g_fb, name, text) == 0);
}

static void fx_rm(const char *name)
{
	fakebin_fx_rm(&g_fb, name);
}

static void install_fakes(void)
{
	char pct[1024];

	T_CHECK(fakebin_disk_tools(&g_fb) == 0);
	/* lsblk: fx/lsblk.json.N on its Nth run when that exists (a device
	 * that changes between two looks), else fx/lsblk.json */
	fake("lsblk", "n=0; [ -f \"$FX/lsblk_n\" ] && n=$(/bin/cat \"$FX/lsblk_n\"); n=$((n+1)); "
		      "echo \"$n\" > \"$FX/lsblk_n\"; "
		      "if [ -f \"$FX/lsblk.json.$n\" ]; then /bin/cat \"$FX/lsblk.json.$n\"; "
		      "else /bin/cat \"$FX/lsblk.json\"; fi");
	/* mkfs: as fakebin's, on the device a by-id link names */
	fake("mkfs", "s=$(/usr/bin/readlink -f -- \"$3\" | /usr/bin/tr / _); u=$(/bin/cat \"$FX/next_uuid\"); "
		     "printf 'TYPE=%s\\nUUID=%s\\nUSAGE=filesystem\\n' \"$2\" \"$u\" > \"$FX/blkid$s\"; "
		     "printf '{\"signatures\":[{\"type\":\"%s\",\"offset\":\"0x438\"}]}' \"$2\" > \"$FX/wipefs$s\"");
	snprintf(pct, sizeof pct,
		 "if [ \"$3\" = -delete ]; then b=\"{\\\"vmid\\\":$2,\\\"config\\\":{\\\"$4\\\":null}}\"; "
		 "else k=\"${3#-}\"; b=\"{\\\"vmid\\\":$2,\\\"config\\\":{\\\"$k\\\":\\\"$4\\\"}}\"; fi\n"
		 "/usr/bin/curl -s -o /dev/null -X POST --data \"$b\" http://127.0.0.1:%d/guest",
		 g_sim.control_port);
	fake("pct", pct);
	T_CHECK(fakebin_self(&g_fb, NULL) == 0);
}

static char *rec(void)
{
	return fakebin_log(&g_fb);
}

static void rec_clear(void)
{
	fakebin_clear(&g_fb);
}

static bool rec_absent(void)
{
	return fakebin_log_absent(&g_fb);
}

static size_t rec_count(const char *needle)
{
	return fakebin_count(&g_fb, needle);
}

/* The host: a system disk (LVM, swap, /), a blank disk, a USB ext4 disk, a
 * GPT disk with an xfs partition, a signature-less disk holding data, a
 * disk someone else mounted, one of ours, an optical drive and a loop. */
/* One lsblk row; NULL members are JSON null. */
static void xrow(char *out, size_t cap, const char *name, const char *pk, const char *type, const char *size,
		 const char *serial, const char *fstype, const char *uuid, const char *label, const char *parttype,
		 const char *mnt)
{
	char q[8][160];
	const char *v[8] = { pk, serial, fstype, uuid, label, parttype, mnt, NULL };
	size_t i, o = strlen(out);

	for (i = 0; i < 7; i++) {
		if (v[i])
			snprintf(q[i], sizeof q[i], "\"%s\"", v[i]);
		else
			snprintf(q[i], sizeof q[i], "null");
	}
	snprintf(out + o, cap - o,
		 ",{\"name\":\"%s\",\"path\":\"/dev/%s\",\"pkname\":%s,\"type\":\"%s\",\"size\":%s,"
		 "\"ro\":false,\"rm\":false,\"rota\":true,\"tran\":\"sata\",\"serial\":%s,\"fstype\":%s,"
		 "\"uuid\":%s,\"label\":%s,\"pttype\":null%s%s%s,\"mountpoints\":[%s]}",
		 name, name, q[0], type, size, q[1], q[2], q[3], q[4], parttype ? ",\"parttype\":" : "",
		 parttype ? q[5] : "", "", q[6]);
}

static void lsblk_fixture_to(const char *file, bool sdc_mounted, const char *extra)
{
	char text[16384];
#define ROW "{\"name\":\"%s\",\"path\":\"/dev/%s\",\"pkname\":%s,\"type\":\"%s\",\"size\":%s," \
			  "\"ro\":false,\"rm\":%s,\"rota\":%s,\"tran\":%s,\"serial\":%s,\"fstype\":null," \
			  "\"uuid\":null,\"label\":null,\"pttype\":null,\"mountpoints\":[%s]}"
	struct { const char *name, *pk, *type, *size, *rm, *rota, *tran, *serial, *mnt; } rows[] = {
		{ "sda", "null", "disk", "256060514304", "false", "false", "\"sata\"", "\"SERA\"", "null" },
		{ "sda1", "\"sda\"", "part", "536870912", "false", "false", "null", "null", "\"/boot/efi\"" },
		{ "sda2", "\"sda\"", "part", "255522586624", "false", "false", "null", "null", "null" },
		{ "pve-root", "\"sda2\"", "lvm", "100000000000", "false", "false", "null", "null", "\"/\"" },
		{ "sdb", "null", "disk", "107374182400", "false", "true", "\"sata\"", "\"SERB\"", "null" },
		{ "sdc", "null", "disk", "64023257088", "true", "false", "\"usb\"", "\"SERC\"", "null" },
		{ "sdd", "null", "disk", "500107862016", "false", "false", "\"sata\"", "\"SERD\"", "null" },
		{ "sdd1", "\"sdd\"", "part", "500106813440", "false", "false", "null", "null", "null" },
		{ "sde", "null", "disk", "2000398934016", "false", "true", "\"sata\"", "\"SERE\"", "null" },
		{ "sdf", "null", "disk", "1000204886016", "false", "true", "\"sata\"", "\"SERF\"", "\"/srv/other\"" },
		{ "sdg", "null", "disk", "1000204886016", "false", "true", "\"sata\"", "\"SERG\"",
		  "\"/mnt/felhom/" HEX_G "\"" },
		{ "sr0", "null", "rom", "1073741312", "true", "true", "\"sata\"", "\"SR\"", "null" },
		{ "loop0", "null", "loop", "1048576", "false", "false", "null", "null", "null" },
	};
	size_t i, o = 0;

	o += (size_t)snprintf(text + o, sizeof text - o, "{\"blockdevices\":[");
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *mnt = rows[i].mnt;
		if (sdc_mounted && !strcmp(rows[i].name, "sdc"))
			mnt = "\"/mnt/felhom/" HEX_C "\"";
		o += (size_t)snprintf(text + o, sizeof text - o, "%s", i ? "," : "");
		o += (size_t)snprintf(text + o, sizeof text - o, ROW, rows[i].name, rows[i].name, rows[i].pk,
				      rows[i].type, rows[i].size, rows[i].rm, rows[i].rota, rows[i].tran,
				      rows[i].serial, mnt);
	}
	snprintf(text + o, sizeof text - o, "%s]}\n", extra ? extra : "");
	fx_write(file, text);
}

static void lsblk_fixture(bool sdc_mounted)
{
	lsblk_fixture_to("lsblk.json", sdc_mounted, NULL);
}

static void byid_link(const char *name, const char *target)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s", g_byid, name);
	unlink(path);
	T_CHECK(symlink(target, path) == 0);
}

static void fixtures(void)
{
	lsblk_fixture(false);
	fx_write("blkid_dev_sdc", "DEVNAME=/dev/sdc\nUUID=" UUID_C "\nTYPE=ext4\nUSAGE=filesystem\n");
	fx_write("wipefs_dev_sdc", "{\"signatures\":[{\"device\":\"sdc\",\"offset\":\"0x438\",\"type\":\"ext4\","
				   "\"uuid\":\"" UUID_C "\",\"label\":null}]}\n");
	fx_write("blkid_dev_sdd", "DEVNAME=/dev/sdd\nPTUUID=1234\nPTTYPE=gpt\n");
	fx_write("wipefs_dev_sdd", "{\"signatures\":[{\"device\":\"sdd\",\"offset\":\"0x200\",\"type\":\"gpt\"}]}\n");
	fx_write("blkid_dev_sdd1", "DEVNAME=/dev/sdd1\nUUID=" UUID_D1 "\nTYPE=xfs\nUSAGE=filesystem\n");
	fx_write("wipefs_dev_sdd1", "{\"signatures\":[{\"device\":\"sdd1\",\"offset\":\"0x0\",\"type\":\"xfs\"}]}\n");
	fx_write("data_dev_sde", "leftover bytes of an old filesystem");
	fx_write("blkid_dev_sdg", "DEVNAME=/dev/sdg\nUUID=" UUID_G "\nTYPE=ext4\nUSAGE=filesystem\n");
	fx_write("next_uuid", UUID_NEW);
	fx_rm("blkid_dev_sdb");
	fx_rm("wipefs_dev_sdb");
	byid_link("ata-DISK_SERB", "/dev/sdb");
	byid_link("usb-USB_SERC", "/dev/sdc");
	byid_link("ata-DISK_SERD", "/dev/sdd");
	byid_link("wwn-0x5000cca000000001", "/dev/sdd");
	byid_link("ata-DISK_SERD-part1", "/dev/sdd1");
}

static struct disk *mk_disk(bool with_pve)
{
	struct disk_opts o;
	struct disk *d = NULL;
	char why[256] = "";

	memset(&o, 0, sizeof o);
	o.priv = &g_privo;
	o.pve = with_pve && g_have_sim ? &g_po : NULL;
	o.st = g_st;
	o.host_id = "host-7f3a";
	o.by_id_dir = g_byid;
	o.sys_block_dir = g_sys;
	o.now = fake_now;
	o.pending_ttl_s = 3600;
	T_OK(disk_new(&o, &d, why, sizeof why));
	if (!d)
		fprintf(stderr, "disk_new: %s\n", why);
	return d;
}

static bool contains(const char *hay, const char *needle)
{
	bool ok = hay && strstr(hay, needle) != NULL;

	if (!ok)
		fprintf(stderr, "  missing: %s\n  in: %s\n", needle, hay ? hay : "(null)");
	return ok;
}

static bool starts(const char *s, const char *prefix)
{
	bool ok = s && !strncmp(s, prefix, strlen(prefix));

	if (!ok)
		fprintf(stderr, "  want prefix: %s\n  got: %s\n", prefix, s ? s : "(null)");
	return ok;
}

/* The newest audit entries as JSON (malloc'd). */
static char *audit_tail(size_t n)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 20);
	T_OK(audit_tail_json(g_st, n, &b));
	s = strdup(buf_str(&b));
	buf_free(&b);
	return s;
}

/* ------------------------------------------------------------- tests */

T_TEST(t_new_rejects)
{
	struct disk_opts o;
	struct disk *d = NULL;
	char why[256];

	memset(&o, 0, sizeof o);
	o.priv = &g_privo;
	o.st = g_st;
	T_ERR(disk_new(&o, &d, why, sizeof why), FH_ERR_CONFIG); /* no host id */
	o.host_id = "h";
	o.mount_root = "/mnt/fel-hom";                             /* would need unit-name escaping */
	T_ERR(disk_new(&o, &d, why, sizeof why), FH_ERR_CONFIG);
	T_CHECK(strstr(why, "/mnt, /media or /srv") != NULL);
	o.mount_root = "relative";
	T_ERR(disk_new(&o, &d, why, sizeof why), FH_ERR_CONFIG);
	/* only what the mount unit helper accepts (mountunit_valid_root) */
	{
		static const char *const bad[] = { "/var/felhom", "/mnt/", "/mnt//x", "/mnt/a/../b", "/mnt/a.b",
						   "/mntx", "/", "/etc", "/mnt/%i", NULL };
		static const char *const good[] = { "/mnt", "/srv", "/media/usb_1", "/mnt/felhom/Data_2", NULL };
		size_t i;
		for (i = 0; bad[i]; i++) {
			o.mount_root = bad[i];
			T_ERR(disk_new(&o, &d, why, sizeof why), FH_ERR_CONFIG);
			T_CHECK(mountunit_valid_root(bad[i]) == false);
		}
		for (i = 0; good[i]; i++) {
			o.mount_root = good[i];
			T_OK(disk_new(&o, &d, why, sizeof why));
			disk_free(d);
			d = NULL;
		}
	}
	o.mount_root = NULL;
	o.pending_ttl_s = DISK_PENDING_MAX_TTL_S + 1;
	T_ERR(disk_new(&o, &d, why, sizeof why), FH_ERR_CONFIG);
	T_CHECK(d == NULL);
}

T_TEST(t_list_shapes)
{
	struct disk *d = mk_disk(true);
	struct buf data;
	struct json *j = NULL;
	struct json_limits lim = { 1 << 20, 8, false };
	char err[256], *got;
	int status = 0;
	const char *s;

	if (!d)
		return;
	fixtures();
	/* guest 101 already has the agent's sdg mount bound at /srv/photos */
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest",
			     "{\"vmid\":101,\"config\":{\"mp3\":\"/mnt/felhom/" HEX_G ",mp=/srv/photos\"}}", NULL, 0),
		 200);
	buf_init(&data, DISK_DATA_MAX);
	rec_clear();
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	s = buf_str(&data);
	T_OK(json_parse(s, data.len, &lim, &j, NULL, 0));
	json_free(j);
	T_CHECK(!strncmp(s, "{\"vmid\":101,\"disks\":[{\"name\":\"sdb\"", 34));
	T_CHECK(contains(s, "{\"name\":\"sdb\",\"type\":\"disk\",\"state\":\"available\",\"backing_device\":\"/dev/sdb\","
			    "\"mount_path\":\"\",\"class\":\"slow\",\"data_bearing\":false,\"data_reason\":\"\","
			    "\"durable_id\":\"byid:ata-DISK_SERB\"}"));
	T_CHECK(contains(s, "{\"name\":\"sdc\",\"type\":\"usb\",\"state\":\"available\",\"backing_device\":\"/dev/sdc\","
			    "\"mount_path\":\"\",\"class\":\"slow\",\"data_bearing\":true,"
			    "\"data_reason\":\"filesystem signature (ext4)\",\"durable_id\":\"uuid:" UUID_C "\"}"));
	T_CHECK(contains(s, "{\"name\":\"sdd\",\"type\":\"disk\",\"state\":\"available\",\"backing_device\":\"/dev/sdd\","
			    "\"mount_path\":\"\",\"class\":\"fast\",\"data_bearing\":true,"
			    "\"data_reason\":\"partition table (gpt)\",\"durable_id\":\"byid:ata-DISK_SERD\"}"));
	T_CHECK(contains(s, "{\"name\":\"sdd1\",\"type\":\"local-dir\",\"state\":\"available\","
			    "\"backing_device\":\"/dev/sdd1\",\"mount_path\":\"\",\"class\":\"fast\",\"data_bearing\":true,"
			    "\"data_reason\":\"filesystem signature (xfs)\",\"durable_id\":\"uuid:" UUID_D1 "\"}"));
	T_CHECK(contains(s, "{\"name\":\"sde\",\"type\":\"disk\",\"state\":\"available\",\"backing_device\":\"/dev/sde\","
			    "\"mount_path\":\"\",\"class\":\"slow\",\"data_bearing\":true,"
			    "\"data_reason\":\"non-zero sampled sectors at 0 MiB\",\"durable_id\":\"\"}"));
	T_CHECK(contains(s, "{\"name\":\"sdg\",\"type\":\"local-dir\",\"state\":\"assigned\","
			    "\"backing_device\":\"/dev/sdg\",\"mount_path\":\"/srv/photos\",\"class\":\"slow\","
			    "\"data_bearing\":true,\"data_reason\":\"filesystem signature (ext4)\","
			    "\"durable_id\":\"uuid:" UUID_G "\"}"));
	T_CHECK(contains(s, "{\"name\":\"local-lvm\",\"type\":\"lvm\",\"state\":\"active\",\"backing_device\":\"\","
			    "\"mount_path\":\"\",\"class\":\"fast\",\"data_bearing\":true,"
			    "\"data_reason\":\"Proxmox storage (lvmthin); not assignable\",\"durable_id\":\"pve:local-lvm\"}"));
	T_CHECK(contains(s, "{\"name\":\"backup-nas\",\"type\":\"network\",\"state\":\"active\""));
	/* never offered: the system disk and its parts, someone else's mount,
	 * the optical drive, loops, Proxmox's dir storage */
	T_CHECK(!strstr(s, "\"sda") && !strstr(s, "pve-root") && !strstr(s, "\"sdf\"") && !strstr(s, "sr0") &&
		!strstr(s, "loop0") && !strstr(s, "\"local\""));
	/* the wwn- name loses to the ata- name; only sdb and sde were sampled:
	 * sdb (102400 MiB, blank) at its start, a quarter, the middle and its
	 * last MiB; sde at its start only (not zero there) */
	got = fakebin_select(&g_fb, (const char *const[]){ "cmp\n", NULL });
	T_EQ_STR(got, "cmp\n-s\n-n\n1M\n-i\n0M:0\n/dev/sdb\n/dev/zero\n--\n"
		      "cmp\n-s\n-n\n1M\n-i\n25600M:0\n/dev/sdb\n/dev/zero\n--\n"
		      "cmp\n-s\n-n\n1M\n-i\n51200M:0\n/dev/sdb\n/dev/zero\n--\n"
		      "cmp\n-s\n-n\n1M\n-i\n102399M:0\n/dev/sdb\n/dev/zero\n--\n"
		      "cmp\n-s\n-n\n1M\n-i\n0M:0\n/dev/sde\n/dev/zero\n--\n");
	free(got);
	got = fakebin_select(&g_fb, (const char *const[]){ "dd\n", NULL });
	T_EQ_STR(got, "");
	free(got);
	T_EQ_INT(rec_count("lsblk\n"), 1);

	/* for another guest sdg is only mounted (host path shown) */
	T_OK(disk_list(d, 102, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "{\"name\":\"sdg\",\"type\":\"local-dir\",\"state\":\"mounted\","
					  "\"backing_device\":\"/dev/sdg\",\"mount_path\":\"/mnt/felhom/" HEX_G "\""));
	/* cached: no second lsblk */
	T_EQ_INT(rec_count("lsblk\n"), 1);
	disk_invalidate(d);
	T_OK(disk_list(d, 102, &status, &data, err, sizeof err));
	T_EQ_INT(rec_count("lsblk\n"), 2);

	/* lsblk failing: 503 and data null */
	fake("lsblk", "exit 1");
	disk_invalidate(d);
	T_OK(disk_list(d, 102, &status, &data, err, sizeof err));
	T_EQ_INT(status, 503);
	T_EQ_STR(buf_str(&data), "null");
	install_fakes();
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest", "{\"vmid\":101,\"config\":{\"mp3\":null}}", NULL, 0), 200);
	buf_free(&data);
	disk_free(d);
}

T_TEST(t_hostile_inputs)
{
	static const char *const assign_bad[] = {
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data/../etc\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/etc\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/usr/local/x\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"data\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data//x\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data/\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data/.hidden\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data/./x\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data,mp=/etc\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data x\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"rw,exec\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"x,dev\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"suid\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"ro,rw\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"noatime,,ro\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"noatime,noatime\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ntfs\",\"options\":\"\"}",
		"{\"uuid\":\"../../etc\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"--\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"ext4\",\"options\":\"\",\"force\":\"1\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":[\"/data\"],\"fstype\":\"ext4\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"where\":\"/etc\"}",
		"{\"uuid\":\"" UUID_C "\",\"where\":\"/da\\u0000ta\"}",
		"[\"" UUID_C "\"]",
		"not json",
		"",
		NULL
	};
	static const char *const eject_bad[] = {
		"{\"where\":\"/data/../../etc\"}", "{\"where\":\"/proc\"}", "{\"where\":\"relative\"}",
		"{\"where\":\"/data\",\"all\":\"1\"}", "{\"where\":1}", "{}x", NULL
	};
	struct disk *d = mk_disk(true);
	struct buf data;
	char err[256], big[DISK_BODY_MAX + 64];
	int status;
	size_t i;
	uint64_t na0 = 0, na1 = 0, calls = 0;

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	rec_clear();
	T_OK(audit_count(g_st, &na0));
	for (i = 0; assign_bad[i]; i++) {
		status = 0;
		T_OK(disk_assign(d, 101, assign_bad[i], strlen(assign_bad[i]), &status, &data, err, sizeof err));
		calls++;
		if (status != 400)
			fprintf(stderr, "  assign body %zu: status %d\n", i, status);
		T_EQ_INT(status, 400);
		T_EQ_STR(buf_str(&data), "null");
		T_CHECK(err[0] != '\0');
	}
	for (i = 0; eject_bad[i]; i++) {
		status = 0;
		T_OK(disk_eject(d, 101, eject_bad[i], strlen(eject_bad[i]), &status, &data, err, sizeof err));
		calls++;
		T_EQ_INT(status, 400);
	}
	memset(big, ' ', sizeof big);
	memcpy(big, "{\"where\":\"/data\"}", 17);
	T_OK(disk_eject(d, 101, big, sizeof big, &status, &data, err, sizeof err));
	T_EQ_INT(status, 400);
	/* nothing ran at all: no probe, no mount, no pct; each refusal audited */
	T_CHECK(rec_absent());
	T_OK(audit_count(g_st, &na1));
	T_EQ_INT((long long)(na1 - na0), (long long)(calls + 1));
	{
		char *t = audit_tail(1);
		T_CHECK(contains(t, "\"decision\":\"rejected\",\"op\":\"disk_eject\",\"guest_id\":101,"));
		T_CHECK(contains(t, "\"outcome\":\"rejected\",\"reason\":\"400 "));
		free(t);
	}

	/* format: hostile device names and fstypes answer a FormatResult */
	{
		const char *b1 = "{\"device\":\"/dev/../etc/passwd\",\"fstype\":\"ext4\"}";
		const char *b2 = "{\"device\":\"/dev/sdb\",\"fstype\":\"ntfs\"}";
		const char *b3 = "{\"device\":\"/dev/sdb\",\"fstype\":\"ext4\",\"force\":\"true\"}";
		T_OK(disk_format(d, 101, b1, strlen(b1), &status, &data, err, sizeof err));
		T_EQ_INT(status, 400);
		T_CHECK(starts(buf_str(&data), "{\"vmid\":101,\"device\":\"\",\"formatted\":false,\"data_bearing\":false,\"reason\":"));
		T_OK(disk_format(d, 101, b2, strlen(b2), &status, &data, err, sizeof err));
		T_EQ_INT(status, 400);
		T_EQ_STR(buf_str(&data), "{\"vmid\":101,\"device\":\"/dev/sdb\",\"formatted\":false,\"data_bearing\":false,"
					 "\"reason\":\"fstype must be one of ext4, xfs, btrfs, vfat\"}");
		T_OK(disk_format(d, 101, b3, strlen(b3), &status, &data, err, sizeof err));
		T_EQ_INT(status, 400);
	}
	T_CHECK(rec_absent());
	buf_free(&data);
	disk_free(d);
}

T_TEST(t_assign_and_eject)
{
	struct disk *d = mk_disk(true);
	struct buf data;
	char err[256], resp[65536], text[MOUNTUNIT_TEXT_MAX], why[160];
	char *got;
	struct mountunit_args ma;
	int status = 0;
	const char *a1 = "{\"uuid\":\"" UUID_C "\",\"where\":\"/data/media\",\"fstype\":\"ext4\",\"options\":\"noatime,noexec\"}";
	const char *a2 = "{\"uuid\":\"uuid:" UUID_C "\",\"where\":\"/media\",\"fstype\":\"\",\"options\":\"ro\"}";
	const char *e1 = "{\"where\":\"/data/media\"}";
	const char *e2 = "{\"where\":\"/media\"}";

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	rec_clear();
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_EQ_STR(buf_str(&data), "{\"vmid\":101,\"durable_id\":\"uuid:" UUID_C "\",\"where\":\"/data/media\","
				 "\"key\":\"mp0\",\"host_path\":\"/mnt/felhom/" HEX_C "\"}");
	/* root makes the unit (the agent's binary, --mount-unit add), then the
	 * bind mount: the guest's options in the helper's canonical order */
	got = fakebin_select(&g_fb, (const char *const[]){ "felhom-agent\n", "pct\n", NULL });
	T_EQ_STR(got, "felhom-agent\n--mount-unit\nadd\n/mnt/felhom\n" UUID_C "\next4\n"
		      "nodev,nosuid,nofail,noexec,noatime\n--\n"
		      "pct\nset\n101\n-mp0\n/mnt/felhom/" HEX_C ",mp=/data/media\n--\n");
	free(got);
	T_EQ_INT(rec_count("install\n") + rec_count("systemctl\n") + rec_count("rm\n"), 0);
	/* what the helper writes for those arguments mounts exactly the
	 * host_path the guest got */
	T_OK(mountunit_check_add("/mnt/felhom", UUID_C, "ext4", "nodev,nosuid,nofail,noexec,noatime", &ma, why,
				 sizeof why));
	T_EQ_STR(ma.where, "/mnt/felhom/" HEX_C);
	T_EQ_STR(ma.unit, "mnt-felhom-" HEX_C ".mount");
	T_OK(mountunit_render(&ma, text, sizeof text));
	T_CHECK(contains(text, "What=/dev/disk/by-uuid/" UUID_C "\nWhere=/mnt/felhom/" HEX_C "\n"));
	T_CHECK(contains(text, "Options=nodev,nosuid,nofail,noexec,noatime\n"));
	T_CHECK(sim_control(&g_sim, "GET", "/guests", NULL, resp, sizeof resp) == 200);
	T_CHECK(contains(resp, "/mnt/felhom/" HEX_C ",mp=/data/media"));
	/* audited: who, what, the outcome */
	got = audit_tail(1);
	T_CHECK(contains(got, "\"decision\":\"benign\",\"op\":\"disk_assign\",\"guest_id\":101,\"signer_key_id\":\"\","
			      "\"outcome\":\"executed\",\"reason\":\"200 uuid:" UUID_C " (/dev/sdc) at /data/media as mp0\"}"));
	free(got);

	/* now the host shows the mount; the same request again changes nothing */
	lsblk_fixture(true);
	disk_invalidate(d);
	rec_clear();
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_EQ_INT(rec_count("pct\n"), 0);
	T_EQ_INT(rec_count("felhom-agent\n"), 0);
	/* another where for the same filesystem in the same guest: 409 */
	{
		const char *a3 = "{\"uuid\":\"" UUID_C "\",\"where\":\"/other\",\"fstype\":\"ext4\",\"options\":\"\"}";
		const char *a4 = "{\"uuid\":\"" UUID_C "\",\"where\":\"/data\",\"fstype\":\"xfs\",\"options\":\"\"}";
		const char *a5 = "{\"uuid\":\"" UUID_NEW "\",\"where\":\"/data\",\"fstype\":\"\",\"options\":\"\"}";
		T_OK(disk_assign(d, 101, a3, strlen(a3), &status, &data, err, sizeof err));
		T_EQ_INT(status, 409);
		T_OK(disk_assign(d, 101, a4, strlen(a4), &status, &data, err, sizeof err));
		T_EQ_INT(status, 400); /* fstype does not match the filesystem */
		T_OK(disk_assign(d, 101, a5, strlen(a5), &status, &data, err, sizeof err));
		T_EQ_INT(status, 404);
	}
	/* a second guest shares the host mount, read-only */
	rec_clear();
	T_OK(disk_assign(d, 102, a2, strlen(a2), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	got = rec();
	T_CHECK(contains(got, "pct\nset\n102\n-mp0\n/mnt/felhom/" HEX_C ",mp=/media,ro=1\n--\n"));
	T_CHECK(!strstr(got, "felhom-agent\n"));
	free(got);

	/* eject from 101: detached, 102 still depends on the host mount */
	rec_clear();
	T_OK(disk_eject(d, 101, e1, strlen(e1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_EQ_STR(buf_str(&data), "{\"vmid\":101,\"ejected\":\"/data/media\",\"dependent_guests\":[102]}");
	got = rec();
	T_EQ_STR(got, "pct\nset\n101\n-delete\nmp0\n--\n");
	free(got);
	T_OK(disk_eject(d, 101, e1, strlen(e1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	/* eject from 102: the last user, so the host mount goes too */
	rec_clear();
	T_OK(disk_eject(d, 102, e2, strlen(e2), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_EQ_STR(buf_str(&data), "{\"vmid\":102,\"ejected\":\"/media\",\"dependent_guests\":[]}");
	got = audit_tail(1);
	T_CHECK(contains(got, "\"decision\":\"benign\",\"op\":\"disk_eject\",\"guest_id\":102,\"signer_key_id\":\"\","
			      "\"outcome\":\"executed\",\"reason\":\"200 /mnt/felhom/" HEX_C " at /media (mp0)\"}"));
	free(got);
	got = rec();
	T_EQ_STR(got, "pct\nset\n102\n-delete\nmp0\n--\n"
		      "felhom-agent\n--mount-unit\nremove\n/mnt/felhom\n" HEX_C "\n--\n");
	free(got);
	T_CHECK(sim_control(&g_sim, "GET", "/guests", NULL, resp, sizeof resp) == 200);
	T_CHECK(!strstr(resp, HEX_C));

	/* a failing pct undoes the host mount this call made */
	lsblk_fixture(false);
	disk_invalidate(d);
	fake("pct", "exit 5");
	rec_clear();
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	got = fakebin_select(&g_fb, (const char *const[]){ "felhom-agent\n", "pct\n", NULL });
	T_EQ_STR(got, "felhom-agent\n--mount-unit\nadd\n/mnt/felhom\n" UUID_C "\next4\n"
		      "nodev,nosuid,nofail,noexec,noatime\n--\n"
		      "pct\nset\n101\n-mp0\n/mnt/felhom/" HEX_C ",mp=/data/media\n--\n"
		      "felhom-agent\n--mount-unit\nremove\n/mnt/felhom\n" HEX_C "\n--\n");
	free(got);
	install_fakes();

	/* the helper refusing (it undoes a failed enable itself): 500 with its
	 * reason, no bind mount, nothing else to undo */
	T_CHECK(fakebin_self(&g_fb, "echo 'felhom-agent: unit name mnt-felhom-x.mount is claimed by "
				    "/etc/systemd/system/mnt-felhom-x.mount' >&2; exit 1") == 0);
	rec_clear();
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	T_EQ_STR(buf_str(&data), "null");
	T_EQ_STR(err, "host mount failed: felhom-agent exit_status (exit 1): felhom-agent: unit name "
		      "mnt-felhom-x.mount is claimed by /etc/systemd/system/mnt-felhom-x.mount");
	T_EQ_INT(rec_count("felhom-agent\n--mount-unit\nadd\n"), 1);
	T_EQ_INT(rec_count("felhom-agent\n--mount-unit\nremove\n"), 0);
	T_EQ_INT(rec_count("pct\n"), 0);
	/* the agent's binary missing: nothing runs */
	T_CHECK(unlink(g_fb.self) == 0);
	rec_clear();
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	T_CHECK(contains(err, "spawn_failed"));
	T_EQ_INT(rec_count("felhom-agent\n") + rec_count("pct\n"), 0);
	install_fakes();

	/* read-only for the guest is the bind mount's ro=1; the host mount
	 * itself stays read-write (other guests may share it) */
	rec_clear();
	T_OK(disk_assign(d, 102, a2, strlen(a2), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	got = fakebin_select(&g_fb, (const char *const[]){ "felhom-agent\n", "pct\n", NULL });
	T_EQ_STR(got, "felhom-agent\n--mount-unit\nadd\n/mnt/felhom\n" UUID_C "\next4\nnodev,nosuid,nofail\n--\n"
		      "pct\nset\n102\n-mp0\n/mnt/felhom/" HEX_C ",mp=/media,ro=1\n--\n");
	free(got);
	/* the helper failing to remove the unit: detached, 500 with its reason */
	T_CHECK(fakebin_self(&g_fb, "printf 'x\\nfelhom-agent: systemctl disable \\033failed\\n\\n' >&2; exit 1") == 0);
	rec_clear();
	T_OK(disk_eject(d, 102, e2, strlen(e2), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	T_EQ_STR(err, "detached; host unmount failed: felhom-agent exit_status (exit 1): felhom-agent: systemctl "
		      "disable ?failed");
	got = rec();
	T_EQ_STR(got, "pct\nset\n102\n-delete\nmp0\n--\n"
		      "felhom-agent\n--mount-unit\nremove\n/mnt/felhom\n" HEX_C "\n--\n");
	free(got);
	install_fakes();

	/* a filesystem the helper would refuse (a vfat whose UUID has the
	 * long shape): 400 before anything runs */
	fx_write("blkid_dev_sdc", "DEVNAME=/dev/sdc\nUUID=" UUID_C "\nTYPE=vfat\nUSAGE=filesystem\n");
	disk_invalidate(d);
	rec_clear();
	{
		const char *av = "{\"uuid\":\"" UUID_C "\",\"where\":\"/data/media\",\"fstype\":\"\",\"options\":\"\"}";
		T_OK(disk_assign(d, 101, av, strlen(av), &status, &data, err, sizeof err));
		T_EQ_INT(status, 400);
		T_CHECK(contains(err, "filesystem cannot be mounted"));
	}
	T_EQ_INT(rec_count("felhom-agent\n") + rec_count("pct\n"), 0);
	fixtures();
	disk_invalidate(d);

	/* without Proxmox: 503 */
	{
		struct disk *d2 = mk_disk(false);
		if (d2) {
			T_OK(disk_assign(d2, 101, a1, strlen(a1), &status, &data, err, sizeof err));
			T_EQ_INT(status, 503);
			disk_free(d2);
		}
	}
	buf_free(&data);
	disk_free(d);
}

T_TEST(t_format_blank_and_refused)
{
	struct disk *d = mk_disk(true);
	struct disk_pending pd;
	struct buf data;
	char err[256];
	int status = 0;
	char *got;
	const char *fb = "{\"device\":\"/dev/sdb\",\"fstype\":\"ext4\"}";
	const char *fc = "{\"device\":\"sdd\",\"fstype\":\"xfs\"}";
	const char *fe = "{\"device\":\"/dev/sde\",\"fstype\":\"ext4\"}";
	const char *fa = "{\"device\":\"/dev/sda\",\"fstype\":\"ext4\"}";
	const char *fm = "{\"device\":\"/dev/sdg\",\"fstype\":\"ext4\"}";
	const char *fz = "{\"device\":\"/dev/sdz\",\"fstype\":\"ext4\"}";

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	/* warm the cache first: format must not trust it */
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	rec_clear();
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_EQ_STR(buf_str(&data), "{\"vmid\":101,\"device\":\"/dev/sdb\",\"formatted\":true,\"data_bearing\":false,"
				 "\"reason\":\"formatted ext4; durable_id uuid:" UUID_NEW "\"}");
	/* one look to decide, one right before mkfs; mkfs on the by-id name */
	T_EQ_INT(rec_count("lsblk\n"), 2);
	{
		char want[600];
		snprintf(want, sizeof want, "mkfs\n-t\next4\n%s\n--\n", g_byid_dev ? "" : "/dev/sdb");
		if (g_byid_dev)
			snprintf(want, sizeof want, "mkfs\n-t\next4\n%s/ata-DISK_SERB\n--\n", g_byid);
		T_EQ_INT(rec_count(want), 1);
		T_EQ_INT(rec_count("mkfs\n"), 1);
	}
	/* at once in /disks as a filesystem */
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "{\"name\":\"sdb\",\"type\":\"local-dir\",\"state\":\"available\","
					  "\"backing_device\":\"/dev/sdb\",\"mount_path\":\"\",\"class\":\"slow\","
					  "\"data_bearing\":true,\"data_reason\":\"filesystem signature (ext4)\","
					  "\"durable_id\":\"uuid:" UUID_NEW "\"}"));
	/* formatting it again: now data-bearing, refused */
	rec_clear();
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	T_EQ_INT(rec_count("mkfs\n"), 0);

	/* the partitioned disk: 403 with the full body and a durable pending op */
	rec_clear();
	T_OK(disk_format(d, 102, fc, strlen(fc), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	T_EQ_STR(buf_str(&data), "{\"vmid\":102,\"device\":\"sdd\",\"formatted\":false,\"data_bearing\":true,"
				 "\"reason\":\"partition table (gpt)\",\"pending_op\":{\"op\":\"storage_wipe\","
				 "\"host_scope\":\"host-7f3a\",\"durable_id\":\"byid:ata-DISK_SERD\",\"fstype\":\"xfs\"}}");
	T_CHECK(err[0] != '\0');
	T_EQ_INT(rec_count("mkfs\n"), 0);
	T_EQ_INT(rec_count("wipefs\n-a\n"), 0);
	T_OK(disk_pending_get(d, "byid:ata-DISK_SERD", &pd));
	T_EQ_STR(pd.fstype, "xfs");
	T_EQ_STR(pd.dev, "/dev/sdd");
	T_EQ_STR(pd.serial, "SERD");
	T_EQ_INT((long long)pd.size, 500107862016LL);
	T_EQ_INT(pd.vmid, 102);
	T_EQ_INT(pd.expires_at, g_now + 3600);
	T_CHECK(!pd.running);
	got = audit_tail(1);
	T_CHECK(contains(got, "\"decision\":\"pending_signature\",\"op\":\"disk_format\",\"guest_id\":102,"));
	T_CHECK(contains(got, "\"outcome\":\"pending_signature\",\"reason\":\"403 device /dev/sdd fstype xfs; "
			      "pending storage_wipe byid:ata-DISK_SERD: device is data-bearing (partition table (gpt))"));
	free(got);

	/* data-bearing without a by-id name: refused, nothing to bind a wipe to */
	T_OK(disk_format(d, 101, fe, strlen(fe), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	T_CHECK(starts(buf_str(&data), "{\"vmid\":101,\"device\":\"/dev/sde\",\"formatted\":false,\"data_bearing\":true,"));
	T_CHECK(!strstr(buf_str(&data), "pending_op"));
	/* the system disk, an agent mount, an unknown device */
	T_OK(disk_format(d, 101, fa, strlen(fa), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	T_OK(disk_format(d, 101, fm, strlen(fm), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	T_OK(disk_format(d, 101, fz, strlen(fz), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	/* mkfs failing: 500, a FormatResult all the same */
	fx_rm("blkid_dev_sdb");
	fx_rm("wipefs_dev_sdb");
	fake("mkfs", "exit 1");
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	T_CHECK(starts(buf_str(&data), "{\"vmid\":101,\"device\":\"/dev/sdb\",\"formatted\":false,\"data_bearing\":false,\"reason\":\"mkfs failed"));
	install_fakes();
	got = NULL;
	free(got);
	buf_free(&data);
	disk_free(d);
}

static void wipe_action(struct gate_action *a, struct sig_verified *vd, const char *durable, const char *fstype)
{
	T_OK(gate_action_init(a, "storage_wipe", "host-7f3a", 0));
	T_OK(gate_action_str(a, "durable_id", durable));
	if (fstype)
		T_OK(gate_action_str(a, "fstype", fstype));
	memset(vd, 0, sizeof *vd);
	vd->op = a->b;
	vd->role = SIG_ROLE_OPERATIONAL;
}

static void reopen_store(void)
{
	struct store_opts so;

	store_close(g_st);
	g_st = NULL;
	memset(&so, 0, sizeof so);
	so.dir = g_db;
	T_OK(store_open(&so, &g_st));
}

T_TEST(t_pending_durable_and_expiry)
{
	struct disk *d = mk_disk(false);
	struct disk_pending pd;
	struct buf data;
	char err[256];
	int status;
	size_t gone = 9;
	const char *fc = "{\"device\":\"byid:ata-DISK_SERD\",\"fstype\":\"ext4\"}";

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	T_OK(disk_pending_prune(d, INT64_MAX, NULL)); /* earlier tests' refusals */
	T_OK(disk_format(d, 101, fc, strlen(fc), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	disk_free(d);
	reopen_store();
	d = mk_disk(false);
	if (!d) {
		buf_free(&data);
		return;
	}
	T_OK(disk_pending_get(d, "byid:ata-DISK_SERD", &pd));
	T_EQ_STR(pd.fstype, "ext4");
	T_OK(disk_pending_prune(d, g_now + 3599, &gone));
	T_EQ_INT(gone, 0);
	T_OK(disk_pending_prune(d, g_now + 3600, &gone));
	T_EQ_INT(gone, 1);
	T_ERR(disk_pending_get(d, "byid:ata-DISK_SERD", &pd), FH_ERR_NOT_FOUND);
	buf_free(&data);
	disk_free(d);
}

T_TEST(t_wipe_executor)
{
	struct disk *d = mk_disk(false);
	struct gate_action a;
	struct sig_verified vd;
	struct buf data;
	char err[256], why[256];
	int status;
	const char *fc = "{\"device\":\"/dev/sdd\",\"fstype\":\"ext4\"}";
	char *got;

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	rec_clear();
	/* no pending op yet */
	wipe_action(&a, &vd, "byid:ata-DISK_SERD", NULL);
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_NOT_FOUND);
	T_OK(disk_format(d, 101, fc, strlen(fc), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	rec_clear();
	/* refusals before anything runs */
	T_ERR(disk_exec_wipe(d, &a, NULL, why, sizeof why), FH_ERR_PENDING_SIGNATURE);
	{
		struct gate_action b;
		struct sig_verified vb;
		T_OK(gate_action_init(&b, "destroy", "host-7f3a", 101));
		memset(&vb, 0, sizeof vb);
		vb.op = b.b;
		T_ERR(disk_exec_wipe(d, &b, &vb, why, sizeof why), FH_ERR_UNSUPPORTED);
		wipe_action(&b, &vb, "byid:ata-DISK_SERD", "xfs");
		T_ERR(disk_exec_wipe(d, &b, &vb, why, sizeof why), FH_ERR_SIG_BINDING); /* fstype differs */
		T_CHECK(strstr(why, "fstype") != NULL);
		wipe_action(&b, &vb, "byid:ata-DISK_SERB", NULL);
		vb.op = a.b; /* signature over another durable id */
		T_ERR(disk_exec_wipe(d, &b, &vb, why, sizeof why), FH_ERR_SIG_BINDING);
		T_OK(gate_action_init(&b, "storage_wipe", "host-other", 0));
		T_OK(gate_action_str(&b, "durable_id", "byid:ata-DISK_SERD"));
		vb.op = b.b;
		T_ERR(disk_exec_wipe(d, &b, &vb, why, sizeof why), FH_ERR_SIG_BINDING);
		wipe_action(&b, &vb, "byid:../../sda", NULL);
		T_ERR(disk_exec_wipe(d, &b, &vb, why, sizeof why), FH_ERR_INVAL);
		wipe_action(&b, &vb, "byid:ata-DISK_SERD", NULL);
		T_OK(gate_action_str(&b, "force", "1"));
		vb.op = b.b;
		T_ERR(disk_exec_wipe(d, &b, &vb, why, sizeof why), FH_ERR_INVAL);
	}
	/* the by-id name now points at another device (different size/serial) */
	byid_link("ata-DISK_SERD", "/dev/sdb");
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_SIG_BINDING);
	T_CHECK(strstr(why, "another device") != NULL);
	/* gone entirely */
	unlink(g_byid);
	{
		char p[400];
		snprintf(p, sizeof p, "%s/ata-DISK_SERD", g_byid);
		unlink(p);
	}
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_NOT_FOUND);
	byid_link("ata-DISK_SERD", "/dev/sdd");
	T_EQ_INT(rec_count("wipefs\n-a\n"), 0);
	T_EQ_INT(rec_count("mkfs\n"), 0);

	/* success, exactly once; the signature may carry the fstype */
	wipe_action(&a, &vd, "byid:ata-DISK_SERD", "ext4");
	rec_clear();
	T_OK(disk_exec_wipe(d, &a, &vd, why, sizeof why));
	got = rec();
	T_CHECK(contains(got, "wipefs\n-a\n/dev/sdd1\n--\nwipefs\n-a\n/dev/sdd\n--\nmkfs\n-t\next4\n/dev/sdd\n--\n"));
	free(got);
	T_CHECK(strstr(why, "wiped /dev/sdd") != NULL);
	{
		struct disk_pending pd;
		T_ERR(disk_pending_get(d, "byid:ata-DISK_SERD", &pd), FH_ERR_NOT_FOUND);
	}
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_NOT_FOUND);
	T_EQ_INT(rec_count("wipefs\n-a\n"), 2);
	T_EQ_INT(rec_count("mkfs\n"), 1);

	/* expiry: a refusal an hour old cannot be executed */
	fixtures();
	T_OK(disk_format(d, 101, fc, strlen(fc), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	g_now += 3600;
	rec_clear();
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_SIG_EXPIRED);
	T_CHECK(rec_absent());
	g_now -= 3600;
	/* an interrupted earlier wipe is never silently repeated */
	T_OK(disk_format(d, 101, fc, strlen(fc), &status, &data, err, sizeof err));
	fake("mkfs", "exit 3");
	rec_clear();
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_EXIT);
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_NOT_FOUND);
	install_fakes();
	buf_free(&data);
	disk_free(d);
}

/* ------------------------------------------------ the security findings */

#define UUID_BT "dddddddd-0000-4000-8000-00000000b7f5"
#define ESP_GUID "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

static void host_fixture(const char *rows)
{
	char text[16384];

	snprintf(text, sizeof text, "{\"blockdevices\":[%s]}\n", rows[0] == ',' ? rows + 1 : rows);
	fx_write("lsblk.json", text);
}

/* fx/lsblk.json with its first `from` replaced by `to`, as the Nth lsblk
 * answer from now on. */
static void lsblk_later(int nth, const char *from, const char *to)
{
	char path[400], name[32], *text, *at, out[16384];

	snprintf(path, sizeof path, "%s/lsblk.json", g_fb.fx);
	text = t_slurp(path, NULL);
	T_CHECK(text != NULL);
	if (!text)
		return;
	at = strstr(text, from);
	T_CHECK(at != NULL);
	if (at) {
		snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
		snprintf(name, sizeof name, "lsblk.json.%d", nth);
		fx_write(name, out);
	}
	fx_write("lsblk_n", "0");
	free(text);
}

static void lsblk_later_clear(int nth)
{
	char name[32];

	snprintf(name, sizeof name, "lsblk.json.%d", nth);
	fx_rm(name);
	fx_rm("lsblk_n");
}

/* finding 1: a ZFS-root system disk (nothing mounted by device), an ESP
 * known only from lsblk's PARTTYPE or only from blkid's PART_ENTRY_TYPE,
 * a multi-device btrfs the host mounted through its other device */
T_TEST(t_system_disks_never_offered)
{
	static const char *const devs[] = { "/dev/sda", "/dev/sda1", "/dev/sda2", "sda3", "byid:ata-SYS_SERA",
					    "/dev/sdh", "/dev/sdh1", "/dev/sdm", "/dev/sdm1", "/dev/sdj", NULL };
	static const char *const uuids[] = { "ABCD-2222", "ABCD-1111", "ABCD-3333", UUID_BT, NULL };
	static const char *const byids[] = { "byid:ata-SYS_SERA", "byid:ata-DISK_SERH", "byid:ata-DISK_SERM",
					     "byid:ata-DISK_SERJ", NULL };
	struct disk *d = mk_disk(true);
	char rows[8192] = "", err[256], body[256];
	struct disk_pending pd;
	struct buf data;
	int status = 0;
	size_t i;
	const char *s;

	if (!d)
		return;
	fixtures();
	T_OK(disk_pending_prune(d, INT64_MAX, NULL));
	/* sda: Proxmox on ZFS, lsblk without a PARTTYPE column */
	xrow(rows, sizeof rows, "sda", NULL, "disk", "256060514304", "SERA", NULL, NULL, NULL, NULL, NULL);
	xrow(rows, sizeof rows, "sda1", "sda", "part", "1031168", NULL, NULL, NULL, NULL, NULL, NULL);
	xrow(rows, sizeof rows, "sda2", "sda", "part", "536870912", NULL, "vfat", "ABCD-2222", NULL, NULL, NULL);
	xrow(rows, sizeof rows, "sda3", "sda", "part", "255522586624", NULL, "zfs_member", "1234567890", "rpool",
	     NULL, NULL);
	/* a spare blank disk: still offered */
	xrow(rows, sizeof rows, "sdb", NULL, "disk", "107374182400", "SERB", NULL, NULL, NULL, NULL, NULL);
	/* sdh: an ESP by lsblk's PARTTYPE; sdm: an ESP only blkid names */
	xrow(rows, sizeof rows, "sdh", NULL, "disk", "64023257088", "SERH", NULL, NULL, NULL, NULL, NULL);
	xrow(rows, sizeof rows, "sdh1", "sdh", "part", "536870912", NULL, "vfat", "ABCD-1111", NULL, ESP_GUID, NULL);
	xrow(rows, sizeof rows, "sdm", NULL, "disk", "64023257088", "SERM", NULL, NULL, NULL, NULL, NULL);
	xrow(rows, sizeof rows, "sdm1", "sdm", "part", "536870912", NULL, NULL, NULL, NULL, NULL, NULL);
	/* sdi+sdj: one btrfs, the host mounted it through sdi */
	xrow(rows, sizeof rows, "sdi", NULL, "disk", "1000204886016", "SERI", "btrfs", UUID_BT, NULL, NULL,
	     "/srv/pool");
	xrow(rows, sizeof rows, "sdj", NULL, "disk", "1000204886016", "SERJ", "btrfs", UUID_BT, NULL, NULL, NULL);
	host_fixture(rows);
	fx_write("blkid_dev_sda", "DEVNAME=/dev/sda\nPTUUID=77\nPTTYPE=gpt\n");
	fx_write("blkid_dev_sda1", "DEVNAME=/dev/sda1\nPART_ENTRY_SCHEME=gpt\n"
				   "PART_ENTRY_TYPE=21686148-6449-6e6f-744e-656564454649\n");
	fx_write("blkid_dev_sda2", "DEVNAME=/dev/sda2\nUUID=ABCD-2222\nTYPE=vfat\nUSAGE=filesystem\n"
				   "PART_ENTRY_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b\n");
	fx_write("blkid_dev_sda3", "DEVNAME=/dev/sda3\nLABEL=rpool\nUUID=1234567890\nTYPE=zfs_member\n"
				   "USAGE=filesystem\n");
	fx_write("blkid_dev_sdm", "DEVNAME=/dev/sdm\nPTUUID=78\nPTTYPE=gpt\n");
	fx_write("blkid_dev_sdm1", "DEVNAME=/dev/sdm1\nUUID=ABCD-3333\nTYPE=vfat\nUSAGE=filesystem\n"
				   "PART_ENTRY_SCHEME=gpt\nPART_ENTRY_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b\n");
	fx_write("blkid_dev_sdi", "DEVNAME=/dev/sdi\nUUID=" UUID_BT "\nTYPE=btrfs\nUSAGE=filesystem\n");
	fx_write("blkid_dev_sdj", "DEVNAME=/dev/sdj\nUUID=" UUID_BT "\nTYPE=btrfs\nUSAGE=filesystem\n");
	byid_link("ata-SYS_SERA", "/dev/sda");
	byid_link("ata-DISK_SERH", "/dev/sdh");
	byid_link("ata-DISK_SERM", "/dev/sdm");
	byid_link("ata-DISK_SERJ", "/dev/sdj");
	buf_init(&data, DISK_DATA_MAX);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	s = buf_str(&data);
	T_CHECK(contains(s, "{\"name\":\"sdb\",\"type\":\"disk\",\"state\":\"available\""));
	T_CHECK(!strstr(s, "\"sda") && !strstr(s, "\"sdh") && !strstr(s, "\"sdm") && !strstr(s, "\"sdi") &&
		!strstr(s, "\"sdj") && !strstr(s, "ABCD-") && !strstr(s, UUID_BT));
	rec_clear();
	for (i = 0; devs[i]; i++) {
		snprintf(body, sizeof body, "{\"device\":\"%s\",\"fstype\":\"ext4\"}", devs[i]);
		status = 0;
		T_OK(disk_format(d, 101, body, strlen(body), &status, &data, err, sizeof err));
		if (status != 404)
			fprintf(stderr, "  format %s: %d %s\n", devs[i], status, err);
		T_EQ_INT(status, 404);
		T_CHECK(!strstr(buf_str(&data), "pending_op"));
	}
	snprintf(body, sizeof body, "{\"device\":\"/dev/sda\",\"fstype\":\"ext4\"}");
	T_OK(disk_format(d, 101, body, strlen(body), &status, &data, err, sizeof err));
	T_CHECK(contains(err, "zfs_member"));
	snprintf(body, sizeof body, "{\"device\":\"/dev/sdj\",\"fstype\":\"ext4\"}");
	T_OK(disk_format(d, 101, body, strlen(body), &status, &data, err, sizeof err));
	T_CHECK(contains(err, "shares its filesystem UUID with the host-mounted /dev/sdi"));
	/* refused formats are audited as rejected */
	{
		char *t = audit_tail(1);
		T_CHECK(contains(t, "\"decision\":\"rejected\",\"op\":\"disk_format\",\"guest_id\":101,"));
		T_CHECK(contains(t, "\"outcome\":\"rejected\",\"reason\":\"404 device /dev/sdj fstype ext4: "
				    "device is not offered (shares its filesystem UUID"));
		free(t);
	}
	for (i = 0; uuids[i]; i++) {
		snprintf(body, sizeof body, "{\"uuid\":\"%s\",\"where\":\"/data/x\",\"fstype\":\"\",\"options\":\"\"}",
			 uuids[i]);
		status = 0;
		T_OK(disk_assign(d, 101, body, strlen(body), &status, &data, err, sizeof err));
		T_EQ_INT(status, 404);
	}
	/* nothing ran but looks: no mkfs, no wipe, no mount, no pct */
	T_EQ_INT(rec_count("mkfs\n"), 0);
	T_EQ_INT(rec_count("wipefs\n-a\n"), 0);
	T_EQ_INT(rec_count("felhom-agent\n"), 0);
	T_EQ_INT(rec_count("pct\n"), 0);
	for (i = 0; byids[i]; i++)
		T_ERR(disk_pending_get(d, byids[i], &pd), FH_ERR_NOT_FOUND);
	buf_free(&data);
	disk_free(d);
}

/* finding 2: devices LXC guests use directly (devN, device mount points,
 * by-id and by-uuid names) */
T_TEST(t_guest_devices_never_offered)
{
	struct disk *d = mk_disk(true);
	struct gate_action a;
	struct sig_verified vd;
	struct buf data;
	char err[256], why[256];
	int status = 0;
	const char *s;
	const char *fb = "{\"device\":\"/dev/sdb\",\"fstype\":\"ext4\"}";
	const char *fc = "{\"device\":\"/dev/sdc\",\"fstype\":\"ext4\"}";
	const char *fd = "{\"device\":\"sdd\",\"fstype\":\"ext4\"}";
	const char *a1 = "{\"uuid\":\"" UUID_C "\",\"where\":\"/data/media\",\"fstype\":\"\",\"options\":\"\"}";

	if (!d)
		return;
	fixtures();
	T_OK(disk_pending_prune(d, INT64_MAX, NULL));
	buf_init(&data, DISK_DATA_MAX);
	/* a refusal recorded before sdd's partition went to a guest */
	T_OK(disk_format(d, 101, fd, strlen(fd), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest", "{\"vmid\":102,\"config\":{\"dev0\":\"/dev/sdb,mode=0660\"}}",
			     NULL, 0), 200);
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest",
			     "{\"vmid\":103,\"config\":{\"mp4\":\"/dev/disk/by-id/ata-DISK_SERD-part1,mp=/x\"}}", NULL, 0),
		 200);
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest",
			     "{\"vmid\":101,\"config\":{\"mp5\":\"volume=/dev/disk/by-uuid/" UUID_C ",mp=/y\"}}", NULL, 0),
		 200);
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	s = buf_str(&data);
	T_CHECK(contains(s, "{\"name\":\"sde\""));
	T_CHECK(!strstr(s, "\"sdb\"") && !strstr(s, "\"sdc\"") && !strstr(s, "\"sdd\"") && !strstr(s, "\"sdd1\""));
	rec_clear();
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	T_CHECK(contains(err, "used directly by guest 102 (dev0)"));
	T_OK(disk_format(d, 101, fc, strlen(fc), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	T_CHECK(contains(err, "used directly by guest 101 (mp5)"));
	T_OK(disk_format(d, 101, fd, strlen(fd), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	T_CHECK(contains(err, "used directly by guest 103 (mp4)"));
	T_OK(disk_assign(d, 102, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 404);
	/* the signed wipe of sdd is refused too */
	wipe_action(&a, &vd, "byid:ata-DISK_SERD", NULL);
	{
		struct disk_opts o;
		struct disk *dw = NULL;
		memset(&o, 0, sizeof o);
		o.priv = &g_privo;
		o.pve = &g_po;
		o.st = g_st;
		o.host_id = "host-7f3a";
		o.by_id_dir = g_byid;
		o.sys_block_dir = g_sys;
		o.now = fake_now;
		T_OK(disk_new(&o, &dw, why, sizeof why));
		if (dw) {
			T_ERR(disk_exec_wipe(dw, &a, &vd, why, sizeof why), FH_ERR_INVAL);
			T_CHECK(contains(why, "guest 103 (mp4)"));
			disk_free(dw);
		}
	}
	T_EQ_INT(rec_count("mkfs\n"), 0);
	T_EQ_INT(rec_count("wipefs\n-a\n"), 0);
	T_EQ_INT(rec_count("felhom-agent\n"), 0);
	T_EQ_INT(rec_count("pct\n"), 0);
	/* a guest config that cannot be read: which devices are used is
	 * unknown, so nothing is answered */
	T_CHECK(sim_control(&g_sim, "POST", "/fault",
			    "{\"method\":\"GET\",\"path_regex\":\"/lxc/102/config$\",\"status\":500,\"count\":-1}", NULL,
			    0) == 200);
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 503);
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	T_EQ_INT(rec_count("mkfs\n"), 0);
	T_CHECK(sim_control(&g_sim, "POST", "/reset", "{}", NULL, 0) == 200);
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest", "{\"vmid\":102,\"config\":{\"dev0\":null}}", NULL, 0), 200);
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest", "{\"vmid\":103,\"config\":{\"mp4\":null}}", NULL, 0), 200);
	T_EQ_INT(sim_control(&g_sim, "POST", "/guest", "{\"vmid\":101,\"config\":{\"mp5\":null}}", NULL, 0), 200);
	/* a disk passed through to a QEMU VM */
	T_EQ_INT(sim_control(&g_sim, "POST", "/vm", "{\"vmid\":300,\"config\":{\"scsi1\":\"/dev/sde,size=10G\"}}", NULL,
			     0),
		 200);
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_CHECK(!strstr(buf_str(&data), "\"sde\""));
	{
		const char *fe = "{\"device\":\"/dev/sde\",\"fstype\":\"ext4\"}";
		T_OK(disk_format(d, 101, fe, strlen(fe), &status, &data, err, sizeof err));
		T_EQ_INT(status, 404);
		T_CHECK(contains(err, "used directly by guest 300 (scsi1)"));
	}
	T_EQ_INT(rec_count("mkfs\n"), 0);
	T_EQ_INT(sim_control(&g_sim, "POST", "/vm", "{\"vmid\":300,\"config\":null}", NULL, 0), 200);
	/* all free again */
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "{\"name\":\"sdb\""));
	T_CHECK(contains(buf_str(&data), "{\"name\":\"sdd1\""));
	T_OK(disk_pending_prune(d, INT64_MAX, NULL));
	buf_free(&data);
	disk_free(d);
}

/* finding 3: right before mkfs the device is looked at again */
T_TEST(t_format_rechecks_before_mkfs)
{
	struct disk *d = mk_disk(false);
	struct buf data;
	char err[256], holders[400];
	int status = 0;
	const char *fb = "{\"device\":\"/dev/sdb\",\"fstype\":\"ext4\"}";

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	rec_clear();
	/* another disk in sdb's place between the probe and mkfs */
	lsblk_later(2, "\"SERB\"", "\"SERX\"");
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	T_CHECK(contains(err, "changed since it was probed"));
	T_EQ_INT(rec_count("lsblk\n"), 2);
	/* another size */
	lsblk_later(2, "107374182400", "107374182912");
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	/* a partition table appeared */
	lsblk_later(2, "\"name\":\"sdb\",\"path\":\"/dev/sdb\",\"pkname\":null,\"type\":\"disk\",\"size\":107374182400,"
		       "\"ro\":false,\"rm\":false,\"rota\":true,\"tran\":\"sata\",\"serial\":\"SERB\",\"fstype\":null,"
		       "\"uuid\":null,\"label\":null,\"pttype\":null",
		    "\"name\":\"sdb\",\"path\":\"/dev/sdb\",\"pkname\":null,\"type\":\"disk\",\"size\":107374182400,"
		    "\"ro\":false,\"rm\":false,\"rota\":true,\"tran\":\"sata\",\"serial\":\"SERB\",\"fstype\":null,"
		    "\"uuid\":null,\"label\":null,\"pttype\":\"gpt\"");
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	lsblk_later_clear(2);
	/* something holds it (a device-mapper or md device on top) */
	snprintf(holders, sizeof holders, "%s/sdb", g_sys);
	T_CHECK(mkdir(holders, 0755) == 0);
	snprintf(holders, sizeof holders, "%s/sdb/holders", g_sys);
	T_CHECK(mkdir(holders, 0755) == 0);
	snprintf(holders, sizeof holders, "%s/sdb/holders/dm-7", g_sys);
	T_CHECK(mkdir(holders, 0755) == 0);
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	T_CHECK(contains(err, "held by dm-7"));
	T_EQ_INT(rec_count("mkfs\n"), 0);
	rmdir(holders);
	/* unchanged: formatted */
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_EQ_INT(rec_count("mkfs\n"), 1);
	{
		char *t = audit_tail(1);
		T_CHECK(contains(t, "\"decision\":\"benign\",\"op\":\"disk_format\",\"guest_id\":101,"));
		T_CHECK(contains(t, "\"outcome\":\"executed\",\"reason\":\"200 device /dev/sdb (mkfs on "));
		free(t);
	}
	buf_free(&data);
	disk_free(d);
}

/* finding 4: the whole tree is checked before the first wipefs */
T_TEST(t_wipe_preflight)
{
	struct disk *d = mk_disk(false);
	struct gate_action a;
	struct sig_verified vd;
	struct disk_pending pd;
	struct buf data;
	char rows[2048] = "", err[256], why[256], holders[400];
	int status = 0;
	char *got;
	const char *fd = "{\"device\":\"/dev/sdd\",\"fstype\":\"ext4\"}";

	if (!d)
		return;
	fixtures();
	T_OK(disk_pending_prune(d, INT64_MAX, NULL));
	xrow(rows, sizeof rows, "sdd2", "sdd", "part", "1048576", NULL, NULL, NULL, NULL, NULL, NULL);
	lsblk_fixture_to("lsblk.json", false, rows);
	fx_write("blkid_dev_sdd2", "DEVNAME=/dev/sdd2\nUUID=" UUID_NEW "\nTYPE=ext4\nUSAGE=filesystem\n");
	buf_init(&data, DISK_DATA_MAX);
	T_OK(disk_format(d, 101, fd, strlen(fd), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	/* sdd2 is busy: held by md0, and wipefs -a on it would fail */
	fake("wipefs", "if [ \"$1\" = --no-act ]; then f=\"$FX/wipefs$(printf %s \"$3\" | /usr/bin/tr / _)\"; "
		       "[ -f \"$f\" ] && /bin/cat \"$f\"; exit 0; fi\n"
		       "if [ \"$1\" = -a ]; then [ \"$2\" = /dev/sdd2 ] && exit 1; s=$(printf %s \"$2\" | /usr/bin/tr / _); "
		       "/bin/rm -f \"$FX/wipefs$s\" \"$FX/blkid$s\" \"$FX/data$s\"; exit 0; fi\nexit 1");
	snprintf(holders, sizeof holders, "%s/sdd2", g_sys);
	T_CHECK(mkdir(holders, 0755) == 0);
	snprintf(holders, sizeof holders, "%s/sdd2/holders", g_sys);
	T_CHECK(mkdir(holders, 0755) == 0);
	snprintf(holders, sizeof holders, "%s/sdd2/holders/md0", g_sys);
	T_CHECK(mkdir(holders, 0755) == 0);
	wipe_action(&a, &vd, "byid:ata-DISK_SERD", NULL);
	rec_clear();
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_INVAL);
	T_CHECK(contains(why, "/dev/sdd2 is held by md0"));
	T_EQ_INT(rec_count("wipefs\n-a\n"), 0);
	T_EQ_INT(rec_count("mkfs\n"), 0);
	T_OK(disk_pending_get(d, "byid:ata-DISK_SERD", &pd));
	T_CHECK(!pd.running);
	rmdir(holders);
	install_fakes();
	/* a pool member only blkid sees (lsblk's udev data is stale) */
	fx_write("blkid_dev_sdd2", "DEVNAME=/dev/sdd2\nLABEL=tank\nUUID=99\nTYPE=zfs_member\nUSAGE=filesystem\n");
	rec_clear();
	T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_INVAL);
	T_CHECK(contains(why, "ZFS pool tank (not imported)"));
	T_EQ_INT(rec_count("wipefs\n-a\n"), 0);
	T_OK(disk_pending_get(d, "byid:ata-DISK_SERD", &pd));
	T_CHECK(!pd.running);
	/* all clear: every partition, then the disk, then mkfs */
	fx_write("blkid_dev_sdd2", "DEVNAME=/dev/sdd2\nUUID=" UUID_NEW "\nTYPE=ext4\nUSAGE=filesystem\n");
	rec_clear();
	T_OK(disk_exec_wipe(d, &a, &vd, why, sizeof why));
	got = fakebin_select(&g_fb, (const char *const[]){ "wipefs\n-a\n", "mkfs\n", NULL });
	T_EQ_STR(got, "wipefs\n-a\n/dev/sdd1\n--\nwipefs\n-a\n/dev/sdd2\n--\nwipefs\n-a\n/dev/sdd\n--\n"
		      "mkfs\n-t\next4\n/dev/sdd\n--\n");
	free(got);
	lsblk_fixture(false);
	fx_rm("blkid_dev_sdd2");
	buf_free(&data);
	disk_free(d);
}

/* finding 5: a filesystem UUID on two devices is never mounted by UUID */
T_TEST(t_assign_duplicate_uuid)
{
	struct disk *d = mk_disk(true);
	struct buf data;
	char rows[2048] = "", err[256];
	int status = 0;
	const char *a1 = "{\"uuid\":\"" UUID_C "\",\"where\":\"/data/media\",\"fstype\":\"ext4\",\"options\":\"\"}";

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	/* a clone of sdc's filesystem on sdk, seen by blkid */
	xrow(rows, sizeof rows, "sdk", NULL, "disk", "64023257088", "SERK", NULL, NULL, NULL, NULL, NULL);
	lsblk_fixture_to("lsblk.json", false, rows);
	fx_write("blkid_dev_sdk", "DEVNAME=/dev/sdk\nUUID=" UUID_C "\nTYPE=ext4\nUSAGE=filesystem\n");
	rec_clear();
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	T_CHECK(contains(err, "is on more than one device"));
	/* seen by lsblk only */
	fx_rm("blkid_dev_sdk");
	rows[0] = '\0';
	xrow(rows, sizeof rows, "sdk", NULL, "disk", "64023257088", "SERK", "ext4", UUID_C, NULL, NULL, NULL);
	lsblk_fixture_to("lsblk.json", false, rows);
	disk_invalidate(d);
	T_OK(disk_assign(d, 101, a1, strlen(a1), &status, &data, err, sizeof err));
	T_EQ_INT(status, 409);
	T_EQ_INT(rec_count("felhom-agent\n"), 0);
	T_EQ_INT(rec_count("pct\n"), 0);
	{
		char *t = audit_tail(1);
		T_CHECK(contains(t, "\"decision\":\"rejected\",\"op\":\"disk_assign\",\"guest_id\":101,"));
		T_CHECK(contains(t, "\"reason\":\"409 uuid:" UUID_C " at /data/media: filesystem uuid"));
		free(t);
	}
	lsblk_fixture(false);
	buf_free(&data);
	disk_free(d);
}

/* finding 7: a short or empty sample is never "all zero"; only cmp's exit
 * status reaches the agent */
T_TEST(t_short_sample_is_data_bearing)
{
	struct disk *d = mk_disk(false);
	struct buf data;
	char err[256], path[400], row[1024] = "";
	int status = 0;
	const char *fb = "{\"device\":\"/dev/sdb\",\"fstype\":\"ext4\"}";
	FILE *f;

	if (!d)
		return;
	fixtures();
	buf_init(&data, DISK_DATA_MAX);
	/* the real cmp over 1000 zero bytes where 1 MiB was asked: EOF, exit 1 */
	fake("cmp", "/usr/bin/head -c 1000 /dev/zero > \"$FX/short\"; "
		    "exec /usr/bin/cmp -s -n \"$3\" -i \"$5\" \"$FX/short\" /dev/zero");
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_CHECK(contains(buf_str(&data), "{\"name\":\"sdb\",\"type\":\"disk\",\"state\":\"available\","
					  "\"backing_device\":\"/dev/sdb\",\"mount_path\":\"\",\"class\":\"slow\","
					  "\"data_bearing\":true,\"data_reason\":\"non-zero sampled sectors at 0 MiB\""));
	rec_clear();
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	T_EQ_INT(rec_count("mkfs\n"), 0);
	/* nothing at all to compare: exit 1 as well */
	fake("cmp", ": > \"$FX/empty\"; exec /usr/bin/cmp -s -n \"$3\" -i \"$5\" \"$FX/empty\" /dev/zero");
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "\"data_bearing\":true,\"data_reason\":\"non-zero sampled sectors at 0 MiB\""));
	/* cmp in trouble (exit 2): a failed probe, data-bearing */
	fake("cmp", "echo 'cmp: /dev/sdb: Input/output error' >&2; exit 2");
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "\"data_bearing\":true,\"data_reason\":\"probe failed: sample exit_status\""));
	rec_clear();
	T_OK(disk_format(d, 101, fb, strlen(fb), &status, &data, err, sizeof err));
	T_EQ_INT(status, 500);
	T_EQ_INT(rec_count("mkfs\n"), 0);
	install_fakes();

	/* the samples sit inside the device: a sparse 100 GiB content fixture
	 * with one byte set in the middle MiB is found there; one set in a MiB
	 * no sample covers is not (sampling is a heuristic, signatures are
	 * probed first) */
	snprintf(path, sizeof path, "%s/data_dev_sdb", g_fb.fx);
	f = fopen(path, "w");
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK(ftruncate(fileno(f), 107374182400LL) == 0);
		T_CHECK(fseeko(f, (off_t)51200 * 1048576 + 4096, SEEK_SET) == 0);
		T_CHECK(fputc(0x5a, f) == 0x5a);
		T_CHECK(fclose(f) == 0);
	}
	disk_invalidate(d);
	rec_clear();
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "\"backing_device\":\"/dev/sdb\",\"mount_path\":\"\",\"class\":\"slow\","
					  "\"data_bearing\":true,\"data_reason\":\"non-zero sampled sectors at 51200 MiB\""));
	T_EQ_INT(rec_count("cmp\n-s\n-n\n1M\n-i\n0M:0\n/dev/sdb\n/dev/zero\n--\n"), 1);
	T_EQ_INT(rec_count("cmp\n-s\n-n\n1M\n-i\n25600M:0\n/dev/sdb\n/dev/zero\n--\n"), 1);
	T_EQ_INT(rec_count("cmp\n-s\n-n\n1M\n-i\n51200M:0\n/dev/sdb\n/dev/zero\n--\n"), 1);
	T_EQ_INT(rec_count("/dev/sdb\n/dev/zero\n"), 3); /* found: the last MiB is not read */
	f = fopen(path, "w");
	T_CHECK(f != NULL);
	if (f) {
		T_CHECK(ftruncate(fileno(f), 107374182400LL) == 0);
		T_CHECK(fseeko(f, (off_t)51201 * 1048576, SEEK_SET) == 0);
		T_CHECK(fputc(0x5a, f) == 0x5a);
		T_CHECK(fclose(f) == 0);
	}
	disk_invalidate(d);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "\"backing_device\":\"/dev/sdb\",\"mount_path\":\"\",\"class\":\"slow\","
					  "\"data_bearing\":false,\"data_reason\":\"\""));
	fx_rm("data_dev_sdb");

	/* a device under 1 MiB has no whole MiB to sample: data-bearing, no cmp */
	xrow(row, sizeof row, "sdt", NULL, "disk", "1048575", "SERT", NULL, NULL, NULL, NULL, NULL);
	lsblk_fixture_to("lsblk.json", false, row);
	disk_invalidate(d);
	rec_clear();
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_CHECK(contains(buf_str(&data), "{\"name\":\"sdt\",\"type\":\"disk\",\"state\":\"available\","
					  "\"backing_device\":\"/dev/sdt\",\"mount_path\":\"\",\"class\":\"slow\","
					  "\"data_bearing\":true,\"data_reason\":\"smaller than 1 MiB: cannot be sampled\""));
	T_EQ_INT(rec_count("/dev/sdt\n/dev/zero\n"), 0);
	/* exactly 1 MiB: one sample */
	row[0] = '\0';
	xrow(row, sizeof row, "sdt", NULL, "disk", "1048576", "SERT", NULL, NULL, NULL, NULL, NULL);
	lsblk_fixture_to("lsblk.json", false, row);
	disk_invalidate(d);
	rec_clear();
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_CHECK(contains(buf_str(&data), "\"backing_device\":\"/dev/sdt\",\"mount_path\":\"\",\"class\":\"slow\","
					  "\"data_bearing\":false,\"data_reason\":\"\""));
	T_EQ_INT(rec_count("cmp\n-s\n-n\n1M\n-i\n0M:0\n/dev/sdt\n/dev/zero\n--\n"), 1);
	T_EQ_INT(rec_count("/dev/sdt\n/dev/zero\n"), 1);
	lsblk_fixture(false);
	buf_free(&data);
	disk_free(d);
}

/* ------------------------------------------------------- real loop devices */

static int run(const char *const argv[], char **out)
{
	char *o = NULL, *e = NULL;
	int st = t_run_cmd(argv, NULL, &o, &e);

	if (out)
		*out = o;
	else
		free(o);
	free(e);
	return st;
}

static void chomp(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

T_TEST(t_real_loop_devices)
{
	char img[3][400], loop[3][64] = { "", "", "" }, why[256], err[256], body[256], byid[400], p[500];
	const char *names[3] = { "felhomtest-fs", "felhomtest-pt", "felhomtest-blank" };
	struct priv_opts po;
	struct disk_opts o;
	struct disk *d = NULL;
	struct buf data;
	int i, status;
	bool ok = true;

	if (geteuid() != 0) {
		printf("loop-device tests: not run (not root)\n");
		return;
	}
	{
		const char *argv[] = { "/usr/sbin/losetup", "-f", NULL };
		if (run(argv, NULL) != 0) {
			printf("loop-device tests: not run (losetup -f fails)\n");
			return;
		}
	}
	/* below /dev when possible: mkfs then runs on the by-id link */
	snprintf(byid, sizeof byid, "%s/loop-by-id", g_shm[0] ? g_shm : g_dir);
	mkdir(byid, 0755);
	for (i = 0; i < 3; i++) {
		FILE *f;
		snprintf(img[i], sizeof img[i], "%s/%s.img", g_dir, names[i]);
		f = fopen(img[i], "w");
		T_CHECK(f != NULL);
		if (!f)
			return;
		T_CHECK(ftruncate(fileno(f), 64 << 20) == 0);
		if (i == 1) {
			/* an MBR with one Linux partition and nothing else */
			unsigned char mbr[512] = { 0 };
			mbr[446 + 4] = 0x83;
			mbr[446 + 8] = 0x00; mbr[446 + 9] = 0x08;           /* start LBA 2048 */
			mbr[446 + 12] = 0x00; mbr[446 + 13] = 0x00; mbr[446 + 14] = 0x02; /* 131072 sectors */
			mbr[510] = 0x55;
			mbr[511] = 0xaa;
			T_CHECK(fwrite(mbr, 1, sizeof mbr, f) == sizeof mbr);
		}
		fclose(f);
	}
	{
		const char *argv[] = { "/usr/sbin/mkfs.ext4", "-q", "-F", img[0], NULL };
		T_EQ_INT(run(argv, NULL), 0);
	}
	for (i = 0; i < 3; i++) {
		const char *argv[] = { "/usr/sbin/losetup", "-f", "--show", img[i], NULL };
		char *out = NULL;
		if (run(argv, &out) != 0 || !out || strncmp(out, "/dev/loop", 9) != 0) {
			printf("loop-device tests: not run (losetup cannot attach an image here)\n");
			free(out);
			ok = false;
			break;
		}
		chomp(out);
		snprintf(loop[i], sizeof loop[i], "%s", out);
		free(out);
		snprintf(p, sizeof p, "%s/%s", byid, names[i]);
		T_CHECK(symlink(loop[i], p) == 0);
	}
	if (!ok)
		goto detach;
	printf("loop-device tests: running on %s %s %s\n", loop[0], loop[1], loop[2]);
	memset(&po, 0, sizeof po);
	po.mode = PRIV_MODE_DIRECT;
	po.path = "/usr/sbin:/usr/bin:/sbin:/bin";
	po.timeout_ms = 60000;
	memset(&o, 0, sizeof o);
	o.priv = &po;
	o.st = g_st;
	o.host_id = "host-7f3a";
	o.by_id_dir = byid;
	o.include_loop = true;
	o.now = fake_now;
	T_OK(disk_new(&o, &d, why, sizeof why));
	if (!d)
		goto detach;
	buf_init(&data, DISK_DATA_MAX);
	T_OK(disk_list(d, 101, &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	{
		char want[600];
		const char *s = buf_str(&data);
		snprintf(want, sizeof want, "\"backing_device\":\"%s\",\"mount_path\":\"\",\"class\":", loop[0]);
		T_CHECK(contains(s, want));
		T_CHECK(contains(s, "\"data_reason\":\"filesystem signature (ext4)\",\"durable_id\":\"uuid:"));
		snprintf(want, sizeof want, "\"data_bearing\":true,\"data_reason\":\"partition table (dos)\","
					    "\"durable_id\":\"byid:%s\"}", names[1]);
		T_CHECK(contains(s, want));
		snprintf(want, sizeof want, "\"data_bearing\":false,\"data_reason\":\"\",\"durable_id\":\"byid:%s\"}",
			 names[2]);
		T_CHECK(contains(s, want));
	}
	/* the blank one is formatted */
	snprintf(body, sizeof body, "{\"device\":\"%s\",\"fstype\":\"ext4\"}", loop[2]);
	T_OK(disk_format(d, 101, body, strlen(body), &status, &data, err, sizeof err));
	T_EQ_INT(status, 200);
	T_CHECK(contains(buf_str(&data), "\"formatted\":true,\"data_bearing\":false,\"reason\":\"formatted ext4; durable_id uuid:"));
	if (g_shm[0]) {
		char *t = audit_tail(1), want[600];
		snprintf(want, sizeof want, "\"reason\":\"200 device %s (mkfs on %s/felhomtest-blank) fstype ext4", loop[2],
			 byid);
		T_CHECK(contains(t, want));
		free(t);
	}
	/* the partitioned one is refused, then wiped through a signed op */
	snprintf(body, sizeof body, "{\"device\":\"byid:%s\",\"fstype\":\"ext4\"}", names[1]);
	T_OK(disk_format(d, 101, body, strlen(body), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	T_CHECK(contains(buf_str(&data), "\"pending_op\":{\"op\":\"storage_wipe\",\"host_scope\":\"host-7f3a\","
					  "\"durable_id\":\"byid:felhomtest-pt\",\"fstype\":\"ext4\"}"));
	{
		struct gate_action a;
		struct sig_verified vd;
		char *out = NULL;
		const char *argv[] = { "/usr/sbin/blkid", "-p", "-o", "export", loop[1], NULL };
		wipe_action(&a, &vd, "byid:felhomtest-pt", NULL);
		T_OK(disk_exec_wipe(d, &a, &vd, why, sizeof why));
		T_EQ_INT(run(argv, &out), 0);
		T_CHECK(contains(out, "TYPE=ext4"));
		T_CHECK(out && !strstr(out, "PTTYPE"));
		free(out);
		T_ERR(disk_exec_wipe(d, &a, &vd, why, sizeof why), FH_ERR_NOT_FOUND);
	}
	/* the filesystem one is data-bearing: refused */
	snprintf(body, sizeof body, "{\"device\":\"%s\",\"fstype\":\"ext4\"}", loop[0]);
	T_OK(disk_format(d, 101, body, strlen(body), &status, &data, err, sizeof err));
	T_EQ_INT(status, 403);
	buf_free(&data);
	disk_free(d);
detach:
	for (i = 0; i < 3; i++)
		if (loop[i][0]) {
			const char *argv[] = { "/usr/sbin/losetup", "-d", loop[i], NULL };
			T_EQ_INT(run(argv, NULL), 0);
		}
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	struct store_opts so;

	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(g_shm, sizeof g_shm, "/dev/shm/felhom-disk-XXXXXX");
	if (mkdtemp(g_shm)) {
		g_byid_dev = true;
		snprintf(g_byid, sizeof g_byid, "%s/by-id", g_shm);
	} else {
		g_shm[0] = '\0';
		snprintf(g_byid, sizeof g_byid, "%s/by-id", g_dir);
		printf("by-id links below /dev: not available (no writable /dev/shm); mkfs-by-id checks not run\n");
	}
	snprintf(g_db, sizeof g_db, "%s/db", g_dir);
	snprintf(g_sys, sizeof g_sys, "%s/sys", g_dir);
	if (fakebin_init(&g_fb, g_dir) || mkdir(g_byid, 0755) || mkdir(g_sys, 0755)) {
		perror("mkdir");
		return 1;
	}
	memset(&so, 0, sizeof so);
	so.dir = g_db;
	if (store_open(&so, &g_st) != 0) {
		fprintf(stderr, "store_open failed\n");
		return 1;
	}
	{
		const char *args[] = { "--guests", "3", NULL };
		g_have_sim = sim_start(&g_sim, args) == 0;
	}
	T_CHECK(g_have_sim);
	memset(&g_po, 0, sizeof g_po);
	g_po.endpoint = g_sim.endpoint;
	g_po.node = "pve";
	g_po.token = g_sim.token;
	g_po.tls_fingerprint = g_sim.fingerprint;
	memset(&g_privo, 0, sizeof g_privo);
	g_privo.mode = PRIV_MODE_DIRECT;
	g_privo.path = g_fb.bin;
	g_privo.timeout_ms = 10000;
	g_privo.self_path = g_fb.self;
	install_fakes();

	T_RUN(t_new_rejects);
	if (g_have_sim) {
		T_RUN(t_list_shapes);
		T_RUN(t_hostile_inputs);
		T_RUN(t_assign_and_eject);
		T_RUN(t_format_blank_and_refused);
	}
	T_RUN(t_pending_durable_and_expiry);
	T_RUN(t_wipe_executor);
	if (g_have_sim) {
		T_RUN(t_system_disks_never_offered);
		T_RUN(t_guest_devices_never_offered);
		T_RUN(t_assign_duplicate_uuid);
	}
	T_RUN(t_format_rechecks_before_mkfs);
	T_RUN(t_wipe_preflight);
	T_RUN(t_short_sample_is_data_bearing);
	T_RUN(t_real_loop_devices);

	sim_stop(&g_sim);
	store_close(g_st);
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (g_shm[0])
		nftw(g_shm, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
