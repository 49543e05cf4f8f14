/* bench_report.c — one HostReport collect cycle (report_collect) against
 * the simulated Proxmox host with 10, 100 and 1000 guests. Prints wall
 * time, the HTTP requests the simulator saw, requests per guest, TCP
 * connections, and the bytes of the report. Figures, never pass/fail.
 *
 * The cloudflared probe and `sensors` are fake scripts in a private
 * directory (so the figures do not depend on the machine's systemd), and
 * they are part of the cycle being timed; a second line per size times
 * the probe alone. Run from the repository root (make bench does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "harness.h"
#include "priv.h"
#include "pve.h"
#include "report.h"
#include "sim.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int write_script(const char *path, const char *body)
{
	char text[2048];
	int n = snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);

	if (n < 0 || (size_t)n >= sizeof text)
		return -1;
	return t_write_file(path, text, 0755);
}

static void one(unsigned guests, const char *systemctl, const char *sensors_dir)
{
	char nbuf[16];
	const char *const args[] = { "--guests", nbuf, NULL };
	struct sim s;
	struct pve_opts o;
	struct pve_client *c = NULL;
	struct priv_opts po;
	struct priv *p = NULL;
	struct pve_err pe;
	struct pve_stats st;
	struct report_sources src;
	struct report_err e;
	struct buf b;
	double t0, wall, probe;
	const char *word;
	long reqs, conns;
	int r;

	snprintf(nbuf, sizeof nbuf, "%u", guests);
	buf_init(&b, (size_t)16 << 20);
	if (sim_start(&s, args) != 0) {
		printf("%7u  simulator did not start\n", guests);
		return;
	}
	memset(&o, 0, sizeof o);
	o.endpoint = s.endpoint;
	o.node = "pve";
	o.token = s.token;
	o.tls_fingerprint = s.fingerprint;
	memset(&po, 0, sizeof po);
	po.mode = PRIV_MODE_DIRECT;
	po.path = sensors_dir;
	if (pve_client_new(&o, &c, &pe) != 0 || priv_new(&po, &p) != 0) {
		printf("%7u  client setup failed: %s\n", guests, pe.reason);
		goto out;
	}
	memset(&src, 0, sizeof src);
	src.pve = c;
	src.priv = p;
	src.host_id = "host-bench";
	src.systemctl_path = systemctl;
	sim_reset(&s);

	t0 = now_ms();
	r = report_collect(&src, &b, &e);
	wall = now_ms() - t0;
	reqs = sim_stat(&s, "requests");
	conns = sim_stat(&s, "connections");
	pve_stats(c, &st);
	if (r != 0) {
		printf("%7u  collect failed at %s: %s (%s)\n", guests, e.step, fh_strerror(r), e.pve.reason);
		goto out;
	}
	t0 = now_ms();
	report_probe_cloudflared(systemctl, &word);
	probe = now_ms() - t0;
	printf("%7u %9.1f %9ld %10.3f %7ld %10zu %11.1f %9.3f %9.1f\n", guests, wall, reqs,
	       (double)reqs / guests, conns, b.len, (double)b.len / guests, wall / guests, probe);
out:
	buf_free(&b);
	priv_free(p);
	pve_client_free(c);
	sim_stop(&s);
}

int main(void)
{
	static const unsigned sizes[] = { 10, 100, 1000 };
	char dir[256], sc[320], sens[320], sensors[400];
	const char *argv[] = { "/bin/rm", "-rf", dir, NULL };
	const char *env[] = { "LC_ALL=C", NULL };
	size_t i;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	t_tmpdir(dir, sizeof dir);
	snprintf(sc, sizeof sc, "%s/systemctl", dir);
	snprintf(sens, sizeof sens, "%s/bin", dir);
	snprintf(sensors, sizeof sensors, "%s/sensors", sens);
	if (write_script(sc, "echo active") != 0 || mkdir(sens, 0700) != 0 ||
	    write_script(sensors, "printf '%s\\n' '{\"coretemp-isa-0000\":{\"Package id 0\":{\"temp1_input\":48.0}}}'") != 0) {
		printf("cannot write the fake tools\n");
		return 1;
	}
	printf("one report_collect cycle against pvesim (fingerprint pin, keep-alive):\n"
	       "node status + LXC list + one config per guest + sensors + cloudflared probe\n");
	printf("%7s %9s %9s %10s %7s %10s %11s %9s %9s\n", "guests", "wall_ms", "requests", "req/guest",
	       "conns", "bytes", "bytes/guest", "ms/guest", "probe_ms");
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		one(sizes[i], sc, sens);
	t_run_cmd(argv, env, NULL, NULL);
	curl_global_cleanup();
	return 0;
}
