/* bench_disk.c — GET /disks (disk_list) latency with 20 devices behind fake
 * host tools: cold (every call probes: lsblk, then wipefs + blkid per
 * device and four 1 MiB samples per signature-less device, each a `cmp`
 * process against /dev/zero) and cached (within cache_ms). Prints
 * figures, never fails.
 *
 * The fakes are the same kind as test_disk.c's: #!/bin/sh scripts on the
 * backend's PATH. Half the devices carry an ext4 filesystem, half are
 * blank (and so sampled).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "disk.h"
#include "err.h"
#include "harness.h"
#include "store.h"

#define NDEV 20

static char g_dir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void script(const char *bin, const char *name, const char *fx, const char *body)
{
	char path[400], text[2048];

	snprintf(path, sizeof path, "%s/%s", bin, name);
	snprintf(text, sizeof text, "#!/bin/sh\nFX='%s'\n%s\n", fx, body);
	t_write_file(path, text, 0755);
}

int main(void)
{
	char bin[300], fx[300], db[300], path[400], text[16384], why[256], err[256];
	struct store_opts so;
	struct store *st = NULL;
	struct priv_opts po;
	struct disk_opts o;
	struct disk *d = NULL;
	struct buf data;
	size_t off = 0;
	int i, status = 0, rounds;
	double t0, cold = 0, cached = 0;

	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(bin, sizeof bin, "%s/bin", g_dir);
	snprintf(fx, sizeof fx, "%s/fx", g_dir);
	snprintf(db, sizeof db, "%s/db", g_dir);
	mkdir(bin, 0755);
	mkdir(fx, 0755);
	off += (size_t)snprintf(text + off, sizeof text - off, "{\"blockdevices\":[");
	for (i = 0; i < NDEV; i++) {
		off += (size_t)snprintf(text + off, sizeof text - off,
					"%s{\"name\":\"sd%c%c\",\"path\":\"/dev/sd%c%c\",\"pkname\":null,\"type\":\"disk\","
					"\"size\":1000204886016,\"ro\":false,\"rm\":false,\"rota\":true,\"tran\":\"sata\","
					"\"serial\":\"S%d\",\"mountpoints\":[null]}",
					i ? "," : "", 'a' + i / 26, 'a' + i % 26, 'a' + i / 26, 'a' + i % 26, i);
		if (i % 2 == 0) {
			char t[256];
			snprintf(path, sizeof path, "%s/blkid_dev_sd%c%c", fx, 'a' + i / 26, 'a' + i % 26);
			snprintf(t, sizeof t, "TYPE=ext4\nUUID=0000%04d-1111-4222-8333-944455556666\nUSAGE=filesystem\n", i);
			t_write_file(path, t, 0644);
		}
	}
	snprintf(text + off, sizeof text - off, "]}\n");
	snprintf(path, sizeof path, "%s/lsblk.json", fx);
	t_write_file(path, text, 0644);
	script(bin, "lsblk", fx, "/bin/cat \"$FX/lsblk.json\"");
	script(bin, "wipefs", fx, "exit 0");
	script(bin, "blkid", fx, "f=\"$FX/blkid$(printf %s \"$4\" | /usr/bin/tr / _)\"; "
				 "if [ -f \"$f\" ]; then /bin/cat \"$f\"; exit 0; fi; exit 2");
	/* the real cmp over 1 MiB of zeros: what a blank device costs */
	script(bin, "cmp", fx, "exec /usr/bin/cmp -s -n \"$3\" -i \"$5\" /dev/zero /dev/zero");

	memset(&so, 0, sizeof so);
	so.dir = db;
	if (store_open(&so, &st) != 0) {
		fprintf(stderr, "store_open failed\n");
		return 0;
	}
	memset(&po, 0, sizeof po);
	po.mode = PRIV_MODE_DIRECT;
	po.path = bin;
	memset(&o, 0, sizeof o);
	o.priv = &po;
	o.st = st;
	o.host_id = "bench";
	o.by_id_dir = fx;
	o.cache_ms = 60000;
	if (disk_new(&o, &d, why, sizeof why) != 0) {
		fprintf(stderr, "disk_new: %s\n", why);
		return 0;
	}
	buf_init(&data, DISK_DATA_MAX);
	rounds = 5;
	for (i = 0; i < rounds; i++) {
		disk_invalidate(d);
		t0 = now_ms();
		disk_list(d, 101, &status, &data, err, sizeof err);
		cold += now_ms() - t0;
	}
	for (i = 0; i < 2000; i++) {
		t0 = now_ms();
		disk_list(d, 101, &status, &data, err, sizeof err);
		cached += now_ms() - t0;
	}
	printf("disk_list, %d devices (10 ext4, 10 blank: 1 lsblk + 20 wipefs + 20 blkid + 40 cmp processes)\n",
	       NDEV);
	printf("  cold   %8.1f ms/call (mean of %d, status %d, %zu bytes)\n", cold / rounds, rounds, status,
	       data.len);
	printf("  cached %8.3f ms/call (mean of 2000)\n", cached / 2000);
	buf_free(&data);
	disk_free(d);
	store_close(st);
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
