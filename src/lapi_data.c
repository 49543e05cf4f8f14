/* lapi_data.c — the local API's snapshots (see lapi_int.h).
 *
 * A snapshot is immutable once built: the event thread reads it under the
 * server's snapshot lock while the refresher builds the next one. The
 * /storage body of every guest and the guest-independent part of the
 * /host/metrics body are rendered once per snapshot, so a request costs a
 * lookup and a copy.
 *
 * Wire shapes are the controller's (seeds/003, agentapi/client.go):
 *   /storage       {"vmid":N,"mounts":[{"key","storage","mount_point",
 *                   "class","backup"}]}
 *   /host/metrics  {"vmid":N,"taken_at","sensors_taken_at","host":{...},
 *                   "storage_targets":[{...,"thin_pool","smart"}]}
 */
#include "lapi_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "buf.h"
#include "err.h"
#include "report.h"

#define MOUNTS_MAX 256

/* ------------------------------------------------------------- addresses */

int lapi_addr_parse(const char *s, size_t n, struct lapi_addr *a)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	const char *slash;
	struct lapi_addr out;

	if (!s || !a)
		return -1;
	slash = memchr(s, '/', n);
	if (slash)
		n = (size_t)(slash - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(&out, 0, sizeof out);
	if (inet_pton(AF_INET, tmp, out.b) == 1) {
		out.fam = 4;
	} else if (inet_pton(AF_INET6, tmp, out.b) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		out.fam = 6;
		if (memcmp(out.b, mapped, sizeof mapped) == 0) {
			memmove(out.b, out.b + 12, 4);
			memset(out.b + 4, 0, 12);
			out.fam = 4;
		}
	} else {
		return -1;
	}
	*a = out;
	return 0;
}

int lapi_addr_from_sa(const struct sockaddr *sa, struct lapi_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, sizeof *a);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		a->fam = 4;
		memcpy(a->b, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (memcmp(&in6->sin6_addr, mapped, sizeof mapped) == 0) {
			a->fam = 4;
			memcpy(a->b, (const uint8_t *)&in6->sin6_addr + 12, 4);
		} else {
			a->fam = 6;
			memcpy(a->b, &in6->sin6_addr, 16);
		}
		return 0;
	}
	return -1;
}

void lapi_addr_format(const struct lapi_addr *a, char *dst, size_t n)
{
	if (!n)
		return;
	if (!inet_ntop(a->fam == 4 ? AF_INET : AF_INET6, a->b, dst, (socklen_t)n))
		dst[0] = '\0';
}

bool lapi_addr_is_loopback(const struct lapi_addr *a)
{
	static const uint8_t lo6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	if (a->fam == 4)
		return a->b[0] == 127;
	return memcmp(a->b, lo6, 16) == 0;
}

int lapi_addr_cmp(const struct lapi_addr *x, const struct lapi_addr *y)
{
	if (x->fam != y->fam)
		return x->fam < y->fam ? -1 : 1;
	return memcmp(x->b, y->b, 16);
}

static int ent_cmp(const void *p, const void *q)
{
	const struct lapi_addr_ent *x = p, *y = q;
	int c = lapi_addr_cmp(&x->a, &y->a);

	if (c)
		return c;
	return (x->vmid > y->vmid) - (x->vmid < y->vmid);
}

/* First index entry with address a, or n. */
static size_t index_lower(const struct lapi_snap *s, const struct lapi_addr *a)
{
	size_t lo = 0, hi = s->nindex;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lapi_addr_cmp(&s->index[mid].a, a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool lapi_snap_known(const struct lapi_snap *s, const struct lapi_addr *a)
{
	size_t i = index_lower(s, a);

	return i < s->nindex && lapi_addr_cmp(&s->index[i].a, a) == 0;
}

bool lapi_snap_owns(const struct lapi_snap *s, const struct lapi_addr *a, int vmid)
{
	size_t i;

	for (i = index_lower(s, a); i < s->nindex && lapi_addr_cmp(&s->index[i].a, a) == 0; i++) {
		if (s->index[i].vmid == vmid)
			return true;
	}
	return false;
}

const struct lapi_snap_guest *lapi_snap_guest(const struct lapi_snap *s, int vmid)
{
	size_t lo = 0, hi = s->nguests;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->guests[mid].vmid < vmid)
			lo = mid + 1;
		else if (s->guests[mid].vmid > vmid)
			hi = mid;
		else
			return &s->guests[mid];
	}
	return NULL;
}

void lapi_snap_free(struct lapi_snap *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nguests; i++) {
		free(s->guests[i].addrs);
		free(s->guests[i].storage_body);
	}
	free(s->guests);
	free(s->index);
	free(s->metrics_tail);
	free(s);
}

/* Builds the sorted index from the guests' addresses plus the configured
 * ones (entries whose text is not an address are skipped). */
static int build_index(struct lapi_snap *s, const struct cfg_addr *ga, size_t nga)
{
	size_t n = nga, i, j, k = 0;

	for (i = 0; i < s->nguests; i++)
		n += s->guests[i].naddrs;
	s->index = calloc(n ? n : 1, sizeof *s->index);
	if (!s->index)
		return FH_ERR_NOMEM;
	for (i = 0; i < s->nguests; i++) {
		for (j = 0; j < s->guests[i].naddrs; j++) {
			s->index[k].a = s->guests[i].addrs[j];
			s->index[k++].vmid = s->guests[i].vmid;
		}
	}
	for (i = 0; i < nga; i++) {
		if (ga[i].addr && lapi_addr_parse(ga[i].addr, strlen(ga[i].addr), &s->index[k].a) == 0)
			s->index[k++].vmid = ga[i].vmid;
	}
	qsort(s->index, k, sizeof *s->index, ent_cmp);
	/* drop exact duplicates */
	for (i = j = 0; i < k; i++) {
		if (j && ent_cmp(&s->index[j - 1], &s->index[i]) == 0)
			continue;
		s->index[j++] = s->index[i];
	}
	s->nindex = j;
	return 0;
}

int lapi_snap_static(const struct cfg_addr *ga, size_t n, struct lapi_snap **out)
{
	struct lapi_snap *s = calloc(1, sizeof *s);
	int r;

	if (!s)
		return FH_ERR_NOMEM;
	r = build_index(s, ga, n);
	if (r) {
		lapi_snap_free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* ------------------------------------------------------------ JSON output */

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

static void g_num_text(struct gen *w, const char *t)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, yajl_gen_number(w->g, t, strlen(t)));
}

/* A number in [lo, hi] with `dec` decimals, trailing zeros trimmed
 * (never an exponent; NaN becomes lo). */
static void g_fixed(struct gen *w, double v, double lo, double hi, int dec)
{
	char t[48];
	int n;

	if (!isfinite(v) || v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	n = snprintf(t, sizeof t, "%.*f", dec, v);
	if (n <= 0 || (size_t)n >= sizeof t) {
		g_ok(w, yajl_gen_invalid_number);
		return;
	}
	while (n > 2 && t[n - 1] == '0' && t[n - 2] != '.')
		t[--n] = '\0';
	g_num_text(w, t);
}

static void g_map(struct gen *w, bool open)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, open ? yajl_gen_map_open(w->g) : yajl_gen_map_close(w->g));
}

static void g_arr(struct gen *w, bool open)
{
	if (w->st == yajl_gen_status_ok)
		g_ok(w, open ? yajl_gen_array_open(w->g) : yajl_gen_array_close(w->g));
}

static void g_time(struct gen *w, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char d[32];

	if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		g_null(w);
		return;
	}
	g_str(w, d);
}

static int gen_new(struct gen *w)
{
	w->st = yajl_gen_status_ok;
	w->g = yajl_gen_alloc(NULL);
	if (!w->g)
		return FH_ERR_NOMEM;
	yajl_gen_config(w->g, yajl_gen_validate_utf8, 1);
	return 0;
}

/* Copies the generated text (with prefix/suffix) into a malloc'd string. */
static int gen_take(struct gen *w, const char *prefix, size_t skip, const char *suffix, char **out,
		    size_t *len)
{
	const unsigned char *text;
	size_t tlen, pl = strlen(prefix), sl = strlen(suffix);
	char *s;

	if (w->st != yajl_gen_status_ok)
		return w->st == yajl_gen_invalid_string ? FH_ERR_DECODE : FH_ERR_INTERNAL;
	if (yajl_gen_get_buf(w->g, &text, &tlen) != yajl_gen_status_ok || tlen < skip)
		return FH_ERR_INTERNAL;
	if (pl + tlen - skip + sl >= LAPI_RESPONSE_MAX - 1024)
		return FH_ERR_TOOBIG;
	s = malloc(pl + tlen - skip + sl + 1);
	if (!s)
		return FH_ERR_NOMEM;
	memcpy(s, prefix, pl);
	memcpy(s + pl, text + skip, tlen - skip);
	memcpy(s + pl + tlen - skip, suffix, sl + 1);
	*out = s;
	*len = pl + tlen - skip + sl;
	return 0;
}

/* ------------------------------------------------------------- collection */

struct mount {
	int idx;
	char storage[64];
	char mount_point[256];
	bool backup;
};

struct target {
	const struct pve_storage *s;
};

/* fast | slow | "" from a storage type. Local block storage is fast;
 * network and backup storage slow; directories and anything else unknown. */
static const char *class_of_type(const char *type)
{
	static const char *const fast[] = { "lvmthin", "lvm", "zfspool", "rbd", "btrfs", NULL };
	static const char *const slow[] = { "nfs", "cifs", "pbs", "glusterfs", "cephfs", "iscsi", "iscsidirect", NULL };
	size_t i;

	for (i = 0; fast[i]; i++)
		if (!strcmp(type, fast[i]))
			return "fast";
	for (i = 0; slow[i]; i++)
		if (!strcmp(type, slow[i]))
			return "slow";
	return "";
}

static const char *class_of_storage(const struct pve_storage *st, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(st[i].storage, name))
			return class_of_type(st[i].type);
	return "";
}

/* "netN"/"mpN": the number N (0..max), or -1. */
static int key_index(const char *key, const char *prefix, int max)
{
	size_t pl = strlen(prefix);
	const char *p;
	int v = 0;

	if (strncmp(key, prefix, pl) != 0 || !key[pl])
		return -1;
	for (p = key + pl; *p; p++) {
		if (*p < '0' || *p > '9' || v > max)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v <= max ? v : -1;
}

/* Calls fn(k, klen, v, vlen) for each "k=v" (or bare "v", k NULL) element
 * of a comma-separated property string. */
static void each_prop(const char *s, void (*fn)(void *, size_t, const char *, size_t, const char *, size_t),
		      void *arg)
{
	size_t pos = 0;

	while (s[pos]) {
		size_t end = pos, eq;
		while (s[end] && s[end] != ',')
			end++;
		for (eq = pos; eq < end && s[eq] != '='; eq++)
			;
		if (eq < end)
			fn(arg, pos, s + pos, eq - pos, s + eq + 1, end - eq - 1);
		else
			fn(arg, pos, NULL, 0, s + pos, end - pos);
		pos = s[end] ? end + 1 : end;
	}
}

struct net_ctx {
	struct lapi_addr *addrs;
	size_t *n;
	bool dhcp;
};

static void add_addr(struct lapi_addr *addrs, size_t *n, const struct lapi_addr *a)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (lapi_addr_cmp(&addrs[i], a) == 0)
			return;
	if (*n < LAPI_ADDRS_PER_GUEST)
		addrs[(*n)++] = *a;
}

static bool eqn(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static void net_prop(void *arg, size_t pos, const char *k, size_t kl, const char *v, size_t vl)
{
	struct net_ctx *c = arg;
	struct lapi_addr a;

	(void)pos;
	if (!k)
		return;
	if (eqn(k, kl, "ip")) {
		if (eqn(v, vl, "dhcp"))
			c->dhcp = true;
		else if (lapi_addr_parse(v, vl, &a) == 0)
			add_addr(c->addrs, c->n, &a);
	} else if (eqn(k, kl, "ip6")) {
		if (eqn(v, vl, "dhcp") || eqn(v, vl, "auto"))
			c->dhcp = true;
		else if (lapi_addr_parse(v, vl, &a) == 0)
			add_addr(c->addrs, c->n, &a);
	}
}

struct mp_ctx {
	struct mount *m;
	bool backup_set;
};

static void copy_n(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void mp_prop(void *arg, size_t pos, const char *k, size_t kl, const char *v, size_t vl)
{
	struct mp_ctx *c = arg;

	if ((pos == 0 && !k) || (k && eqn(k, kl, "volume"))) {
		/* "STORAGE:VOLUME", or an absolute host path / device (bind
		 * or device mount: no storage, never in backups) */
		const char *colon = memchr(v, ':', vl);
		if (vl && v[0] == '/')
			c->m->storage[0] = '\0';
		else
			copy_n(c->m->storage, sizeof c->m->storage, v, colon ? (size_t)(colon - v) : vl);
	} else if (k && eqn(k, kl, "mp")) {
		copy_n(c->m->mount_point, sizeof c->m->mount_point, v, vl);
	} else if (k && eqn(k, kl, "backup")) {
		c->m->backup = eqn(v, vl, "1");
		c->backup_set = true;
	}
}

static int mount_cmp(const void *p, const void *q)
{
	const struct mount *x = p, *y = q;

	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Renders one guest's /storage body (the whole envelope). */
static int render_storage(int vmid, const struct mount *m, size_t nm, const struct pve_storage *st, size_t nst,
			  char **out, size_t *len)
{
	struct gen w;
	size_t i;
	int r;

	r = gen_new(&w);
	if (r)
		return r;
	g_map(&w, true);
	g_str(&w, "vmid");
	g_int(&w, vmid);
	g_str(&w, "mounts");
	g_arr(&w, true);
	for (i = 0; i < nm; i++) {
		char key[16];
		snprintf(key, sizeof key, "mp%d", m[i].idx);
		g_map(&w, true);
		g_str(&w, "key");
		g_str(&w, key);
		g_str(&w, "storage");
		g_str(&w, m[i].storage);
		g_str(&w, "mount_point");
		g_str(&w, m[i].mount_point);
		g_str(&w, "class");
		g_str(&w, m[i].storage[0] ? class_of_storage(st, nst, m[i].storage) : "");
		g_str(&w, "backup");
		g_bool(&w, m[i].storage[0] && m[i].backup);
		g_map(&w, false);
	}
	g_arr(&w, false);
	g_map(&w, false);
	r = gen_take(&w, "{\"ok\":true,\"data\":", 0, ",\"error\":\"\"}", out, len);
	yajl_gen_free(w.g);
	return r;
}

static double pct(int64_t part, int64_t whole)
{
	return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

/* The guest-independent part of /host/metrics. */
static int render_metrics(const struct lapi_snap *s, const char *node, const struct pve_node_status *ns,
			  const struct pve_storage *st, size_t nst, char **out, size_t *len)
{
	struct gen w;
	size_t i;
	int r;

	r = gen_new(&w);
	if (r)
		return r;
	g_map(&w, true);
	g_str(&w, "taken_at");
	g_time(&w, s->taken_at);
	g_str(&w, "sensors_taken_at");
	g_time(&w, s->slow_taken_at);
	g_str(&w, "host");
	g_map(&w, true);
	g_str(&w, "node");
	g_str(&w, node);
	g_str(&w, "cpu_percent");
	g_fixed(&w, ns->cpu * 100.0, 0.0, 100.0, 2);
	g_str(&w, "memory_total_bytes");
	g_int(&w, ns->mem_total);
	g_str(&w, "memory_used_bytes");
	g_int(&w, ns->mem_used);
	g_str(&w, "memory_percent");
	g_fixed(&w, pct(ns->mem_used, ns->mem_total), 0.0, 100.0, 2);
	g_str(&w, "disk_total_bytes");
	g_int(&w, ns->rootfs_total);
	g_str(&w, "disk_used_bytes");
	g_int(&w, ns->rootfs_used);
	g_str(&w, "disk_percent");
	g_fixed(&w, pct(ns->rootfs_used, ns->rootfs_total), 0.0, 100.0, 2);
	g_str(&w, "loadavg");
	g_arr(&w, true);
	for (i = 0; i < 3; i++)
		g_str(&w, ns->loadavg[i][0] ? ns->loadavg[i] : "0.00");
	g_arr(&w, false);
	g_str(&w, "uptime_seconds");
	g_int(&w, ns->uptime);
	g_str(&w, "cpu_temp_c");
	if (s->have_temp)
		g_int(&w, s->temp);
	else
		g_null(&w);
	g_map(&w, false);
	g_str(&w, "storage_targets");
	g_arr(&w, true);
	for (i = 0; i < nst; i++) {
		const struct pve_storage *t = &st[i];
		const char *cls = class_of_type(t->type);
		g_map(&w, true);
		g_str(&w, "name");
		g_str(&w, t->storage);
		g_str(&w, "type");
		g_str(&w, t->type);
		g_str(&w, "state");
		g_str(&w, !t->enabled ? "disabled" : t->active ? "active" : "inactive");
		g_str(&w, "reachable");
		g_bool(&w, t->enabled && t->active);
		g_str(&w, "total_bytes");
		g_int(&w, t->total);
		g_str(&w, "used_bytes");
		g_int(&w, t->used);
		g_str(&w, "avail_bytes");
		g_int(&w, t->avail);
		g_str(&w, "used_fraction");
		g_fixed(&w, t->used_fraction, 0.0, 1.0, 4);
		g_str(&w, "content");
		g_str(&w, t->content);
		g_str(&w, "mount_path");
		g_str(&w, "");
		g_str(&w, "class_hint");
		g_str(&w, cls);
		g_str(&w, "thin_pool");
		if (!strcmp(t->type, "lvmthin") && t->active) {
			/* Proxmox reports an lvmthin storage's usage as the
			 * pool's data usage; metadata is not in the API. */
			g_map(&w, true);
			g_str(&w, "data_used_fraction");
			g_fixed(&w, t->used_fraction, 0.0, 1.0, 4);
			g_str(&w, "metadata_used_fraction");
			g_null(&w);
			g_map(&w, false);
		} else {
			g_null(&w);
		}
		g_str(&w, "smart");
		g_map(&w, true);
		g_str(&w, "health");
		g_str(&w, "UNKNOWN");
		g_str(&w, "temperature_c");
		g_null(&w);
		g_str(&w, "percentage_used");
		g_null(&w);
		g_map(&w, false);
		g_map(&w, false);
	}
	g_arr(&w, false);
	g_map(&w, false);
	/* skip the object's '{': the body is {"ok":true,"data":{"vmid":N + "," + rest */
	r = gen_take(&w, ",", 1, ",\"error\":\"\"}", out, len);
	yajl_gen_free(w.g);
	return r;
}

static int guest_cmp(const void *p, const void *q)
{
	const struct pve_guest *x = p, *y = q;

	return (x->vmid > y->vmid) - (x->vmid < y->vmid);
}

static void set_step(struct lapi_refresh_err *e, const char *step)
{
	snprintf(e->step, sizeof e->step, "%s", step);
}

/* Reads one guest's config into g (addresses, /storage body). */
static int collect_guest(struct pve_client *pve, const struct pve_guest *pg, const struct pve_storage *st,
			 size_t nst, struct lapi_snap_guest *g)
{
	struct pve_guest_config gc;
	struct pve_err pe;
	struct mount *mounts = NULL;
	struct lapi_addr addrs[LAPI_ADDRS_PER_GUEST];
	size_t nm = 0, na = 0, i;
	bool dhcp = false;
	int r;

	r = pve_guest_config(pve, pg->vmid, &gc, &pe);
	if (r)
		return r;
	mounts = calloc(MOUNTS_MAX, sizeof *mounts);
	if (!mounts) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < gc.n; i++) {
		const char *k = gc.kv[i].key, *v = gc.kv[i].value ? gc.kv[i].value : "";
		int idx;

		if (key_index(k, "net", 31) >= 0) {
			struct net_ctx c = { addrs, &na, false };
			each_prop(v, net_prop, &c);
			dhcp |= c.dhcp;
		} else if ((idx = key_index(k, "mp", MOUNTS_MAX - 1)) >= 0 && nm < MOUNTS_MAX) {
			struct mp_ctx c;
			memset(&mounts[nm], 0, sizeof mounts[nm]);
			mounts[nm].idx = idx;
			c.m = &mounts[nm];
			c.backup_set = false;
			each_prop(v, mp_prop, &c);
			nm++;
		}
	}
	if (dhcp && !strcmp(pg->status, "running")) {
		struct pve_iface *ifs = NULL;
		size_t nif = 0;
		if (pve_lxc_interfaces(pve, pg->vmid, &ifs, &nif, &pe) == 0) {
			for (i = 0; i < nif; i++) {
				struct lapi_addr a;
				if (!strcmp(ifs[i].name, "lo"))
					continue;
				if (ifs[i].inet[0] && lapi_addr_parse(ifs[i].inet, strlen(ifs[i].inet), &a) == 0)
					add_addr(addrs, &na, &a);
				if (ifs[i].inet6[0] && lapi_addr_parse(ifs[i].inet6, strlen(ifs[i].inet6), &a) == 0)
					add_addr(addrs, &na, &a);
			}
		}
		free(ifs);
	}
	qsort(mounts, nm, sizeof *mounts, mount_cmp);
	r = render_storage(pg->vmid, mounts, nm, st, nst, &g->storage_body, &g->storage_len);
	if (r)
		goto out;
	g->vmid = pg->vmid;
	if (na) {
		g->addrs = malloc(na * sizeof *g->addrs);
		if (!g->addrs) {
			free(g->storage_body);
			g->storage_body = NULL;
			r = FH_ERR_NOMEM;
			goto out;
		}
		memcpy(g->addrs, addrs, na * sizeof *addrs);
	}
	g->naddrs = na;
out:
	free(mounts);
	pve_guest_config_free(&gc);
	return r;
}

/* Copies prev's entry for vmid into g (a guest whose config read failed). */
static int carry_guest(const struct lapi_snap *prev, int vmid, struct lapi_snap_guest *g)
{
	const struct lapi_snap_guest *o = prev ? lapi_snap_guest(prev, vmid) : NULL;

	memset(g, 0, sizeof *g);
	g->vmid = vmid;
	if (!o)
		return 0;
	if (o->storage_body) {
		g->storage_body = malloc(o->storage_len + 1);
		if (!g->storage_body)
			return FH_ERR_NOMEM;
		memcpy(g->storage_body, o->storage_body, o->storage_len + 1);
		g->storage_len = o->storage_len;
	}
	if (o->naddrs) {
		g->addrs = malloc(o->naddrs * sizeof *g->addrs);
		if (!g->addrs)
			return FH_ERR_NOMEM;
		memcpy(g->addrs, o->addrs, o->naddrs * sizeof *g->addrs);
		g->naddrs = o->naddrs;
	}
	return 0;
}

int lapi_collect(struct pve_client *pve, struct priv *priv, bool slow, const struct lapi_snap *prev,
		 const struct cfg_addr *ga, size_t nga, int64_t now, struct lapi_snap **out, int **vmids,
		 size_t *nvmids, struct lapi_refresh_err *e)
{
	struct lapi_refresh_err scratch;
	struct pve_node_status ns;
	struct pve_storage *st = NULL;
	struct pve_guest *guests = NULL;
	struct lapi_snap *s = NULL;
	int *ids = NULL;
	size_t nst = 0, ng = 0, i;
	int r;

	if (!e)
		e = &scratch;
	memset(e, 0, sizeof *e);
	if (!pve || !out || !vmids || !nvmids)
		return FH_ERR_INVAL;
	r = pve_node_status(pve, &ns, &e->pve);
	if (r) {
		set_step(e, "node_status");
		goto out;
	}
	r = pve_node_storage(pve, &st, &nst, &e->pve);
	if (r) {
		set_step(e, "node_storage");
		goto out;
	}
	r = pve_list_lxc(pve, &guests, &ng, &e->pve);
	if (r) {
		set_step(e, "lxc_list");
		goto out;
	}
	if (ng > LAPI_MAX_GUESTS) {
		set_step(e, "lxc_list");
		r = FH_ERR_TOOBIG;
		goto out;
	}
	qsort(guests, ng, sizeof *guests, guest_cmp);
	r = FH_ERR_NOMEM;
	s = calloc(1, sizeof *s);
	ids = malloc((ng ? ng : 1) * sizeof *ids);
	if (!s || !ids)
		goto out;
	s->guests = calloc(ng ? ng : 1, sizeof *s->guests);
	if (!s->guests)
		goto out;
	for (i = 0; i < ng; i++) {
		int gr;

		if (i && guests[i].vmid == guests[i - 1].vmid)
			continue;
		ids[s->nguests] = guests[i].vmid;
		gr = collect_guest(pve, &guests[i], st, nst, &s->guests[s->nguests]);
		if (gr == FH_ERR_CANCELLED) {
			set_step(e, "guest_config");
			r = gr;
			goto out;
		}
		if (gr == FH_ERR_NOMEM) {
			set_step(e, "guest_config");
			goto out;
		}
		if (gr) {
			e->configs_failed++;
			gr = carry_guest(prev, guests[i].vmid, &s->guests[s->nguests]);
			if (gr)
				goto out;
		}
		s->nguests++;
	}
	s->have_data = true;
	s->taken_at = now;
	if (prev && prev->slow_taken_at) {
		s->slow_taken_at = prev->slow_taken_at;
		s->have_temp = prev->have_temp;
		s->temp = prev->temp;
	}
	if (priv && (slow || !s->slow_taken_at)) {
		struct buf b;
		int t;
		buf_init(&b, 1u << 20);
		if (priv_sensors(priv, &b, NULL) == 0 && report_parse_sensors(b.data, b.len, &t) == 0) {
			s->have_temp = true;
			s->temp = t;
		} else {
			s->have_temp = false;
		}
		s->slow_taken_at = now;
		buf_free(&b);
	}
	r = build_index(s, ga, nga);
	if (r) {
		set_step(e, "index");
		goto out;
	}
	r = render_metrics(s, pve_node(pve), &ns, st, nst, &s->metrics_tail, &s->metrics_tail_len);
	if (r) {
		set_step(e, "render");
		goto out;
	}
	*out = s;
	s = NULL;
	*vmids = ids;
	ids = NULL;
	*nvmids = (*out)->nguests;
	r = 0;
out:
	if (r && !e->step[0])
		set_step(e, "collect");
	lapi_snap_free(s);
	free(ids);
	free(st);
	free(guests);
	return r;
}
