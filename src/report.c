/* report.c — collects the HostReport and writes it with yajl_gen (see
 * report.h and vectors/host-report.md for the wire contract).
 *
 * The cycle: node status (fatal), the LXC list (fatal), one config per
 * guest (degrades to "no spec"), sensors through the privileged backend
 * (degrades to null), the cloudflared probe (degrades to "unknown"). The
 * whole document is generated into yajl's buffer and appended to the
 * caller's buf in one step, so a failure leaves the caller's buffer alone.
 */
#include "report.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "err.h"
#include "json.h"
#include "proc.h"

#ifndef FH_VERSION
#define FH_VERSION "0.0.0-unknown"
#endif


#define REPORT_SENSORS_MAX_BYTES ((size_t)1 << 20)
#define REPORT_SENSORS_MAX_DEPTH 8
#define REPORT_AUDIT_MAX_DEPTH 16
#define REPORT_TEMP_MIN (-60.0)
#define REPORT_TEMP_MAX 200.0
#define REPORT_PROBE_PATH_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

/* Proxmox's pct defaults for keys a config may leave out. */
#define PCT_DEFAULT_MEMORY_MIB 512
#define PCT_DEFAULT_SWAP_MIB 512

/* ---------------------------------------------------------------------
 * Small helpers.
 */

static void set_step(struct report_err *e, const char *step)
{
	size_t n = strlen(step);

	if (n >= sizeof e->step)
		n = sizeof e->step - 1;
	memcpy(e->step, step, n);
	e->step[n] = '\0';
}

/* 100 * part / whole as a percentage in [0, 100]; 0 when whole is not positive. */
static double percent_of(int64_t part, int64_t whole)
{
	double p;

	if (whole <= 0 || part <= 0)
		return 0.0;
	p = 100.0 * (double)part / (double)whole;
	return p > 100.0 ? 100.0 : p;
}

/* ---------------------------------------------------------------------
 * sensors -j
 */

static bool is_cpu_chip(const char *name)
{
	static const char *const prefixes[] = { "coretemp-", "k10temp-", "zenpower-", "cpu_thermal-", NULL };
	size_t i;

	for (i = 0; prefixes[i]; i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* "temp" digits "_input" */
static bool is_temp_input(const char *key)
{
	size_t d;

	if (strncmp(key, "temp", 4) != 0)
		return false;
	d = strspn(key + 4, "0123456789");
	return d > 0 && strcmp(key + 4 + d, "_input") == 0;
}

int report_parse_sensors(const char *p, size_t n, int *out)
{
	const struct json_limits lim = { REPORT_SENSORS_MAX_BYTES, REPORT_SENSORS_MAX_DEPTH, false };
	struct json *root = NULL;
	double best = 0.0;
	long rounded;
	bool found = false;
	size_t c, f, k;
	int r = FH_ERR_INTERNAL;

	if (!p || !out)
		return FH_ERR_INVAL;
	r = json_parse(p, n, &lim, &root, NULL, 0);
	if (r)
		goto out;
	if (root->type != JSON_OBJECT) {
		r = FH_ERR_DECODE;
		goto out;
	}
	for (c = 0; c < root->n; c++) {
		const struct json *chip = root->items[c];

		if (chip->type != JSON_OBJECT || !is_cpu_chip(root->keys[c]))
			continue;
		for (f = 0; f < chip->n; f++) {
			const struct json *feat = chip->items[f];

			if (feat->type != JSON_OBJECT)
				continue; /* "Adapter": "ISA adapter" */
			for (k = 0; k < feat->n; k++) {
				double v;

				if (!is_temp_input(feat->keys[k]) || feat->items[k]->type != JSON_NUMBER ||
				    json_double(feat->items[k], &v) != 0 || !isfinite(v) ||
				    v < REPORT_TEMP_MIN || v > REPORT_TEMP_MAX)
					continue;
				if (!found || v > best)
					best = v;
				found = true;
			}
		}
	}
	if (!found) {
		r = FH_ERR_NOT_FOUND;
		goto out;
	}
	rounded = lround(best);
	*out = (int)rounded;
	r = 0;
out:
	json_free(root);
	return r;
}

/* 0 and *temp, or the reason there is none. */
static int collect_temp(struct priv *pv, int *temp)
{
	struct buf b;
	int r;

	if (!pv)
		return FH_ERR_INVAL;
	buf_init(&b, REPORT_SENSORS_MAX_BYTES);
	r = priv_sensors(pv, &b, NULL);
	if (r == 0)
		r = report_parse_sensors(buf_str(&b), b.len, temp);
	buf_free(&b);
	return r;
}

/* ---------------------------------------------------------------------
 * The cloudflared probe: systemctl is-active cloudflared.
 */

int report_probe_cloudflared(const char *systemctl_path, const char **word)
{
	static const char *const words[] = { "active", "inactive", "failed", NULL };
	static const char *const argv[] = { "systemctl", "is-active", "cloudflared", NULL };
	static const char *const envp[] = { REPORT_PROBE_PATH_ENV, "LC_ALL=C", NULL };
	const char *path = systemctl_path ? systemctl_path : REPORT_DEFAULT_SYSTEMCTL;
	struct proc_opts po = { REPORT_PROBE_TIMEOUT_MS, REPORT_PROBE_MAX_OUTPUT };
	struct proc_result res;
	struct buf out;
	const char *text;
	size_t len, i;
	int r;

	if (word)
		*word = "unknown";
	if (!word || path[0] != '/')
		return FH_ERR_INVAL;
	buf_init(&out, REPORT_PROBE_MAX_OUTPUT);
	/* is-active exits non-zero for inactive and failed: the word decides */
	r = proc_run(path, argv, envp, &po, &out, &res);
	if (r)
		goto out;
	if (res.signaled) {
		r = FH_ERR_EXIT;
		goto out;
	}
	text = buf_str(&out);
	len = out.len;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		len--;
	r = FH_ERR_DECODE;
	for (i = 0; words[i]; i++) {
		if (strlen(words[i]) == len && memcmp(text, words[i], len) == 0) {
			*word = words[i];
			r = 0;
			break;
		}
	}
out:
	buf_free(&out);
	return r;
}

/* ---------------------------------------------------------------------
 * Guests.
 */

struct spec {
	bool known;
	int cores;
	int64_t memory_mib, swap_mib, rootfs_gib;
	char hostname[128];
	bool unprivileged, onboot;
};

static int cmp_guest(const void *a, const void *b)
{
	const struct pve_guest *x = a, *y = b;

	return (x->vmid > y->vmid) - (x->vmid < y->vmid);
}

/* The spec of one guest, with pct's defaults for keys a config leaves out:
 * cores 0 (no limit: all host cores), memory 512, swap 512, rootfs_gib 0
 * (no size= in rootfs), hostname "CT<vmid>". */
static void spec_from(struct spec *sp, int vmid, const struct pve_guest_config *gc)
{
	memset(sp, 0, sizeof *sp);
	sp->known = true;
	sp->cores = gc->cores > 0 ? gc->cores : 0;
	sp->memory_mib = gc->memory_mib >= 0 ? gc->memory_mib : PCT_DEFAULT_MEMORY_MIB;
	sp->swap_mib = gc->swap_mib >= 0 ? gc->swap_mib : PCT_DEFAULT_SWAP_MIB;
	sp->rootfs_gib = gc->rootfs_gib >= 0 ? gc->rootfs_gib : 0;
	if (gc->hostname[0])
		snprintf(sp->hostname, sizeof sp->hostname, "%s", gc->hostname);
	else
		snprintf(sp->hostname, sizeof sp->hostname, "CT%d", vmid);
	sp->unprivileged = gc->unprivileged;
	sp->onboot = gc->onboot;
}

static const char *run_status(const char *s)
{
	if (!strcmp(s, "running"))
		return "running";
	if (!strcmp(s, "stopped"))
		return "stopped";
	return "unknown";
}

/* ---------------------------------------------------------------------
 * Generation. Every yajl_gen call goes through these so that the first
 * failure sticks and the rest are skipped.
 */

struct gen {
	yajl_gen g;
	yajl_gen_status st;
};

static void g_ok(struct gen *w, yajl_gen_status s)
{
	if (w->st == yajl_gen_status_ok)
		w->st = s;
}

static void g_str(struct gen *w, const char *s)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_string(w->g, (const unsigned char *)s, strlen(s)));
}

static void g_key(struct gen *w, const char *k)
{
	g_str(w, k);
}

static void g_int(struct gen *w, int64_t v)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_integer(w->g, (long long)v));
}

static void g_bool(struct gen *w, bool b)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_bool(w->g, b ? 1 : 0));
}

static void g_null(struct gen *w)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_null(w->g));
}

/* A percentage as a JSON number with two decimals ("7.25", "100.00"):
 * always a fraction, never an exponent, independent of %g's rounding. */
static void g_pct(struct gen *w, double v)
{
	char t[32];
	int n;

	if (!isfinite(v) || v < 0.0)
		v = 0.0;
	if (v > 100.0)
		v = 100.0;
	n = snprintf(t, sizeof t, "%.2f", v);
	if (n <= 0 || (size_t)n >= sizeof t) {
		g_ok(w, yajl_gen_invalid_number);
		return;
	}
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_number(w->g, t, (size_t)n));
}

static void g_map_open(struct gen *w)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_map_open(w->g));
}

static void g_map_close(struct gen *w)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_map_close(w->g));
}

static void g_arr_open(struct gen *w)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_array_open(w->g));
}

static void g_arr_close(struct gen *w)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_array_close(w->g));
}

/* Re-emits a parsed tree (numbers by their literal text). */
static void g_tree(struct gen *w, const struct json *j)
{
	size_t i;

	switch (j->type) {
	case JSON_NULL:
		g_null(w);
		break;
	case JSON_BOOL:
		g_bool(w, j->b);
		break;
	case JSON_NUMBER:
		if (w->st == yajl_gen_status_ok)
			g_ok(w, yajl_gen_number(w->g, j->s, j->slen));
		break;
	case JSON_STRING:
		if (w->st == yajl_gen_status_ok)
			g_ok(w, yajl_gen_string(w->g, (const unsigned char *)j->s, j->slen));
		break;
	case JSON_ARRAY:
		g_arr_open(w);
		for (i = 0; i < j->n; i++)
			g_tree(w, j->items[i]);
		g_arr_close(w);
		break;
	case JSON_OBJECT:
		g_map_open(w);
		for (i = 0; i < j->n; i++) {
			g_key(w, j->keys[i]);
			g_tree(w, j->items[i]);
		}
		g_map_close(w);
		break;
	}
}

static void rfc3339(int64_t t, char dst[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(dst, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(dst, 32, "1970-01-01T00:00:00Z");
}

struct facts {
	const struct report_sources *s;
	const struct pve_node_status *ns;
	const struct pve_guest *guests;
	const struct spec *specs;
	size_t nguests;
	bool have_temp;
	int temp;
	const char *cloudflared;
	const struct json *audit;   /* NULL: [] */
};

static void gen_host(struct gen *w, const struct facts *f)
{
	const struct pve_node_status *ns = f->ns;
	size_t i;

	g_key(w, "host");
	g_map_open(w);
	g_key(w, "node");
	g_str(w, pve_node(f->s->pve));
	g_key(w, "cpu_percent");
	g_pct(w, ns->cpu * 100.0);
	g_key(w, "memory_total_bytes");
	g_int(w, ns->mem_total);
	g_key(w, "memory_used_bytes");
	g_int(w, ns->mem_used);
	g_key(w, "memory_percent");
	g_pct(w, percent_of(ns->mem_used, ns->mem_total));
	g_key(w, "disk_total_bytes");
	g_int(w, ns->rootfs_total);
	g_key(w, "disk_used_bytes");
	g_int(w, ns->rootfs_used);
	g_key(w, "disk_percent");
	g_pct(w, percent_of(ns->rootfs_used, ns->rootfs_total));
	g_key(w, "loadavg");
	g_arr_open(w);
	for (i = 0; i < 3; i++)
		g_str(w, ns->loadavg[i][0] ? ns->loadavg[i] : "0.00");
	g_arr_close(w);
	g_key(w, "uptime_seconds");
	g_int(w, ns->uptime);
	g_key(w, "cpu_temp_c");
	if (f->have_temp)
		g_int(w, f->temp);
	else
		g_null(w);
	g_map_close(w);
}

static void gen_guest(struct gen *w, const struct pve_guest *g, const struct spec *sp)
{
	g_map_open(w);
	g_key(w, "vmid");
	g_int(w, g->vmid);
	g_key(w, "name");
	g_str(w, g->name);
	g_key(w, "status");
	g_str(w, run_status(g->status));
	if (sp->known) {
		g_key(w, "spec");
		g_map_open(w);
		g_key(w, "cores");
		g_int(w, sp->cores);
		g_key(w, "memory_mib");
		g_int(w, sp->memory_mib);
		g_key(w, "swap_mib");
		g_int(w, sp->swap_mib);
		g_key(w, "rootfs_gib");
		g_int(w, sp->rootfs_gib);
		g_key(w, "hostname");
		g_str(w, sp->hostname);
		g_key(w, "unprivileged");
		g_bool(w, sp->unprivileged);
		g_key(w, "onboot");
		g_bool(w, sp->onboot);
		g_map_close(w);
	}
	g_map_close(w);
}

static int gen_report(const struct facts *f, struct buf *out)
{
	static const char *const empty[] = { "storage_targets", "backups", "restore_tests", "pbs_snapshots", NULL };
	struct gen w = { NULL, yajl_gen_status_ok };
	const unsigned char *text;
	size_t len, i;
	char when[32];
	time_t now;
	int r = FH_ERR_INTERNAL;

	w.g = yajl_gen_alloc(NULL);
	if (!w.g) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	/* Never emit bytes that are not UTF-8, whatever came in. */
	yajl_gen_config(w.g, yajl_gen_validate_utf8, 1);
	now = time(NULL);
	rfc3339(f->s->now ? f->s->now : (int64_t)now, when);

	g_map_open(&w);
	g_key(&w, "host_id");
	g_str(&w, f->s->host_id);
	g_key(&w, "agent_version");
	g_str(&w, f->s->agent_version ? f->s->agent_version : FH_VERSION);
	g_key(&w, "generated_at");
	g_str(&w, when);
	gen_host(&w, f);
	g_key(&w, "guests");
	g_arr_open(&w);
	for (i = 0; i < f->nguests; i++)
		gen_guest(&w, &f->guests[i], &f->specs[i]);
	g_arr_close(&w);
	g_key(&w, "cloudflared");
	g_str(&w, f->cloudflared);
	for (i = 0; empty[i]; i++) {
		g_key(&w, empty[i]);
		g_arr_open(&w);
		g_arr_close(&w);
	}
	g_key(&w, "audit_tail");
	if (f->audit) {
		g_tree(&w, f->audit);
	} else {
		g_arr_open(&w);
		g_arr_close(&w);
	}
	g_map_close(&w);
	if (w.st != yajl_gen_status_ok) {
		r = w.st == yajl_gen_invalid_string ? FH_ERR_DECODE : FH_ERR_INTERNAL;
		goto out;
	}
	if (yajl_gen_get_buf(w.g, &text, &len) != yajl_gen_status_ok) {
		r = FH_ERR_INTERNAL;
		goto out;
	}
	r = buf_append(out, text, len);
out:
	if (w.g)
		yajl_gen_free(w.g);
	return r;
}

/* ---------------------------------------------------------------------
 * The cycle.
 */

int report_collect(const struct report_sources *s, struct buf *out, struct report_err *e)
{
	const struct json_limits alim = { REPORT_AUDIT_MAX_BYTES, REPORT_AUDIT_MAX_DEPTH, false };
	struct report_err scratch;
	struct pve_node_status ns;
	struct pve_guest *guests = NULL;
	struct spec *specs = NULL;
	struct json *audit = NULL;
	struct facts f;
	size_t ng = 0, i;
	int r = FH_ERR_INTERNAL;

	if (!e)
		e = &scratch;
	memset(e, 0, sizeof *e);
	memset(&f, 0, sizeof f);
	if (!s || !s->pve || !out || !s->host_id || !s->host_id[0]) {
		set_step(e, "args");
		r = FH_ERR_INVAL;
		goto out;
	}
	if (s->audit_tail_json) {
		r = json_parse(s->audit_tail_json, strlen(s->audit_tail_json), &alim, &audit, NULL, 0);
		if (r == 0 && audit->type != JSON_ARRAY)
			r = FH_ERR_DECODE;
		if (r) {
			set_step(e, "audit_tail");
			goto out;
		}
	}

	r = pve_node_status(s->pve, &ns, &e->pve);
	if (r) {
		set_step(e, "node_status");
		goto out;
	}
	r = pve_list_lxc(s->pve, &guests, &ng, &e->pve);
	if (r) {
		set_step(e, "lxc_list");
		goto out;
	}
	if (ng > 1)
		qsort(guests, ng, sizeof *guests, cmp_guest);
	if (s->on_guests)
		s->on_guests(s->guests_ctx, guests, ng);
	specs = calloc(ng ? ng : 1, sizeof *specs);
	if (!specs) {
		set_step(e, "generate");
		r = FH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < ng; i++) {
		struct pve_guest_config gc;
		struct pve_err ge;
		int gr = pve_guest_config(s->pve, guests[i].vmid, &gc, &ge);

		if (gr == FH_ERR_CANCELLED) {
			/* The daemon is stopping: no point reading the rest. */
			set_step(e, "guest_config");
			e->pve = ge;
			r = gr;
			goto out;
		}
		if (gr) {
			if (e->specs_dropped++ == 0) {
				e->spec_vmid = guests[i].vmid;
				e->spec_code = gr;
			}
			continue;
		}
		spec_from(&specs[i], guests[i].vmid, &gc);
		pve_guest_config_free(&gc);
	}

	f.s = s;
	f.ns = &ns;
	f.guests = guests;
	f.specs = specs;
	f.nguests = ng;
	e->temp_code = collect_temp(s->priv, &f.temp);
	f.have_temp = e->temp_code == 0;
	e->cloudflared_code = report_probe_cloudflared(s->systemctl_path, &f.cloudflared);
	f.audit = audit;

	r = gen_report(&f, out);
	if (r)
		set_step(e, r == FH_ERR_TOOBIG ? "output" : "generate");
out:
	json_free(audit);
	free(specs);
	free(guests);
	return r;
}
