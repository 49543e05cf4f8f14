/* test_lapi.c — the local API end to end: real TLS on loopback, a libcurl
 * client pinning the leaf's SPKI (CURLOPT_PINNEDPUBLICKEY), the simulated
 * Proxmox host behind the refresher, tokens in a real LMDB store, and
 * loopback aliases (127.0.0.2 = guest 101, 127.0.0.3 = guest 102) as guest
 * source addresses. Every answer is checked to be the envelope
 * {"ok":bool,"data":..,"error":string}.
 */
#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "json.h"
#include "lapi.h"
#include "sim.h"
#include "store.h"
#include "tlspin.h"
#include "../src/lapi_int.h"

static char g_dir[256];
static struct sim g_sim;
static int g_sim_ok;
static struct store *g_st;
static struct lapi *g_l;
static struct lapi_cert_info g_leaf;
static char g_tok101[LAPI_TOKEN_MAX], g_tok102[LAPI_TOKEN_MAX];
static atomic_ulong g_events[LAPI_EV__COUNT];
static atomic_int g_token_in_event;

/* ------------------------------------------------------------ client */

struct resp {
	char *body;
	size_t len;
	long status;
	CURLcode cc;
	long connects;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	char *nb;

	if (r->len + sz * n > (2u << 20))
		return 0;
	nb = realloc(r->body, r->len + sz * n + 1);
	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, sz * n);
	r->len += sz * n;
	r->body[r->len] = '\0';
	return sz * n;
}

/* One request. h may be a reused handle (keep-alive) or NULL. */
static void do_req(CURL *h, int port, const char *method, const char *path, const char *src, const char *token,
		   const char *body, const char *pin, struct resp *out)
{
	char url[256], auth[256];
	struct curl_slist *hdr = NULL;
	CURL *own = NULL;

	memset(out, 0, sizeof *out);
	if (!h)
		h = own = curl_easy_init();
	if (!h) {
		out->cc = CURLE_FAILED_INIT;
		return;
	}
	snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin ? pin : g_leaf.spki_pin);
	curl_easy_setopt(h, CURLOPT_INTERFACE, src ? src : "127.0.0.1");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		hdr = curl_slist_append(hdr, auth);
	}
	if (!strcmp(method, "POST")) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	out->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &out->connects);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	if (own)
		curl_easy_cleanup(own);
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* Parses the envelope: ok is a bool, error a string, exactly the three
 * keys; *data points into *root (caller frees root). 0 or -1. */
static int envelope(const struct resp *r, struct json **root, const struct json **data, bool *ok,
		    const char **err)
{
	static const struct json_limits lim = { 1u << 20, 32, false };
	const struct json *o, *e;

	*root = NULL;
	if (!r->body || json_parse(r->body, r->len, &lim, root, NULL, 0) != 0)
		return -1;
	if ((*root)->type != JSON_OBJECT || (*root)->n != 3)
		return -1;
	o = json_get(*root, "ok");
	e = json_get(*root, "error");
	*data = json_get(*root, "data");
	if (!o || o->type != JSON_BOOL || !e || e->type != JSON_STRING || !*data)
		return -1;
	*ok = o->b;
	*err = e->s;
	return 0;
}

/* Request + envelope check: returns the status; data and root as envelope(). */
static long call(int port, const char *method, const char *path, const char *src, const char *token,
		 const char *body, struct json **root, const struct json **data)
{
	struct resp r;
	const struct json *d = NULL;
	const char *err = NULL;
	struct json *rt = NULL;
	bool ok = false;
	long st;

	do_req(NULL, port, method, path, src, token, body, NULL, &r);
	if (r.cc != CURLE_OK) {
		t_failf(__FILE__, __LINE__, "%s %s from %s: curl %d (%s)", method, path, src ? src : "-", r.cc,
			curl_easy_strerror(r.cc));
		resp_free(&r);
		return -1;
	}
	if (envelope(&r, &rt, &d, &ok, &err) != 0) {
		t_failf(__FILE__, __LINE__, "%s %s: not an envelope: %.200s", method, path, r.body ? r.body : "");
		json_free(rt);
		resp_free(&r);
		return -1;
	}
	if (ok != (r.status < 300) || (ok && err[0]) || (!ok && !err[0]))
		t_failf(__FILE__, __LINE__, "%s %s: ok=%d with status %ld error \"%s\"", method, path, ok, r.status, err);
	st = r.status;
	if (root) {
		*root = rt;
		*data = d;
	} else {
		json_free(rt);
	}
	resp_free(&r);
	return st;
}

static const char *jstr(const struct json *j, const char *key)
{
	const struct json *v = json_get(j, key);

	return v && v->type == JSON_STRING ? v->s : NULL;
}

static int64_t jint(const struct json *j, const char *key)
{
	int64_t v = -999;
	const struct json *x = json_get(j, key);

	if (!x || x->type != JSON_NUMBER || json_int_strict(x, &v) != 0)
		return -999;
	return v;
}

/* ------------------------------------------------------------ backend */

static atomic_int g_be_mode;      /* 0 normal, 1 slow, 2 store error */
static atomic_int g_be_calls;

static int be_due(void *ctx, int vmid, struct lapi_backup_due *out)
{
	(void)ctx;
	atomic_fetch_add(&g_be_calls, 1);
	if (atomic_load(&g_be_mode) == 1)
		usleep(1500 * 1000);
	if (atomic_load(&g_be_mode) == 2)
		return FH_ERR_STORE;
	out->due = vmid == 101;
	snprintf(out->reason, sizeof out->reason, "%s", vmid == 101 ? "never_backed_up" : "not_due");
	return 0;
}

static int be_enqueue(void *ctx, int vmid, struct lapi_backup_job *out)
{
	(void)ctx;
	atomic_fetch_add(&g_be_calls, 1);
	snprintf(out->job_id, sizeof out->job_id, "job-%d-1", vmid);
	snprintf(out->phase, sizeof out->phase, "running");
	return 0;
}

static int be_status(void *ctx, int vmid, struct lapi_backup_job *out)
{
	(void)ctx;
	atomic_fetch_add(&g_be_calls, 1);
	snprintf(out->job_id, sizeof out->job_id, "job-%d-1", vmid);
	snprintf(out->phase, sizeof out->phase, "failed");
	snprintf(out->error, sizeof out->error, "vzdump: \"disk\" full\n");
	return 0;
}

static const struct lapi_backend g_fake = { be_due, be_enqueue, be_status };

/* ------------------------------------------------------------ fixture */

static void on_event(void *ctx, const struct lapi_event *ev)
{
	(void)ctx;
	atomic_fetch_add(&g_events[ev->kind], 1);
	if ((g_tok101[0] && strstr(ev->reason, "fhl1.")) || strstr(ev->addr, "fhl1."))
		atomic_store(&g_token_in_event, 1);
}

static struct pve_opts g_po;
static char g_a2[] = "127.0.0.2", g_a3[] = "127.0.0.3";
static struct cfg_addr g_ga[] = { { 101, g_a2 }, { 102, g_a3 } };

static void base_opts(struct lapi_opts *o)
{
	memset(o, 0, sizeof *o);
	o->listen = "127.0.0.1:0";
	o->state_dir = g_dir;
	o->store = g_st;
	o->guest_addresses = g_ga;
	o->naddrs = 2;
	o->refresh_ms = 60000;
	o->backend_ms = 700;
	o->on_event = on_event;
}

static int wait_refresh(struct lapi *l, unsigned long n)
{
	struct lapi_stats s;
	int i;

	for (i = 0; i < 300; i++) {
		lapi_get_stats(l, &s);
		if (s.refreshes >= n)
			return 0;
		usleep(20000);
	}
	return -1;
}

static int setup(void)
{
	struct store_opts so;
	char db[300];
	struct lapi_opts o;
	const char *args[] = { "--role", "agent", NULL };
	char why[256];

	t_tmpdir(g_dir, sizeof g_dir);
	snprintf(db, sizeof db, "%s/db", g_dir);
	memset(&so, 0, sizeof so);
	so.dir = db;
	if (store_open(&so, &g_st) != 0)
		return -1;
	if (lapi_token_issue(g_st, 101, 1, g_tok101) || lapi_token_issue(g_st, 102, 1, g_tok102))
		return -1;
	if (sim_start(&g_sim, args) != 0)
		return -1;
	g_sim_ok = 1;
	/* guest 101: a volume mount in backups, a bind mount, a network volume */
	if (sim_control(&g_sim, "POST", "/guest",
			"{\"vmid\":101,\"config\":{"
			"\"mp0\":\"local-lvm:vm-101-disk-1,mp=/srv/data,backup=1,size=8G\","
			"\"mp2\":\"backup-nas:101/vm-101-disk-2.raw,mp=/archive,size=100G\","
			"\"mp1\":\"/mnt/host/media,mp=/media\"}}",
			NULL, 0) != 200)
		return -1;
	/* guest 103: DHCP (its address comes from the interfaces call) */
	if (sim_control(&g_sim, "POST", "/guest",
			"{\"vmid\":103,\"config\":{\"net0\":\"name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=dhcp,type=veth\"}}", NULL,
			0) != 200)
		return -1;
	memset(&g_po, 0, sizeof g_po);
	g_po.endpoint = g_sim.endpoint;
	g_po.node = "pve";
	g_po.token = g_sim.token;
	g_po.tls_fingerprint = g_sim.fingerprint;
	base_opts(&o);
	o.pve = &g_po;
	if (lapi_start(&o, &g_l, why, sizeof why) != 0) {
		fprintf(stderr, "lapi_start: %s\n", why);
		return -1;
	}
	if (lapi_cert_ensure(g_dir, &g_leaf) != 0)
		return -1;
	return wait_refresh(g_l, 1);
}

/* ------------------------------------------------------------ tests */

T_TEST(t_leaf_and_pins)
{
	struct lapi_cert_info again;
	uint8_t want[32], seen[32];
	char pin[TLSPIN_CURL_MAX];
	struct resp r;
	char path[400];
	char *pem;

	T_CHECK(strlen(g_leaf.fingerprint) == 95);
	T_CHECK(strncmp(g_leaf.spki_pin, "sha256//", 8) == 0);
	T_CHECK(!g_leaf.created);   /* lapi_start made it */
	/* the leaf the server presents is the one on disk (wolfSSL client) */
	T_OK(tlspin_parse_fingerprint(g_leaf.fingerprint, want));
	T_OK(tlspin_probe("127.0.0.1", (unsigned)lapi_port(g_l), 5000, want, pin, seen));
	T_EQ_STR(pin, g_leaf.spki_pin);
	/* reused: same answer again */
	T_OK(lapi_cert_ensure(g_dir, &again));
	T_EQ_STR(again.fingerprint, g_leaf.fingerprint);
	snprintf(path, sizeof path, "%s/localapi/key.pem", g_dir);
	pem = t_slurp(path, NULL);
	T_CHECK(pem && strstr(pem, "BEGIN EC PRIVATE KEY"));
	free(pem);
	{
		char cmd[600];
		snprintf(cmd, sizeof cmd, "test \"$(stat -c %%a %s/localapi/key.pem %s/localapi/cert.pem)\" = \"600\n600\"",
			 g_dir, g_dir);
		T_EQ_INT(system(cmd), 0);
	}
	/* a wrong pin fails the handshake: no HTTP answer at all */
	do_req(NULL, lapi_port(g_l), "GET", "/storage", "127.0.0.2", g_tok101, NULL,
	       "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &r);
	T_EQ_INT(r.cc, CURLE_SSL_PINNEDPUBKEYNOTMATCH);
	T_EQ_INT(r.status, 0);
	resp_free(&r);
}

T_TEST(t_storage)
{
	struct resp r;
	static const char want[] =
		"{\"ok\":true,\"data\":{\"vmid\":101,\"mounts\":["
		"{\"key\":\"mp0\",\"storage\":\"local-lvm\",\"mount_point\":\"/srv/data\",\"class\":\"fast\",\"backup\":true},"
		"{\"key\":\"mp1\",\"storage\":\"\",\"mount_point\":\"/media\",\"class\":\"\",\"backup\":false},"
		"{\"key\":\"mp2\",\"storage\":\"backup-nas\",\"mount_point\":\"/archive\",\"class\":\"slow\",\"backup\":false}"
		"]},\"error\":\"\"}";
	static const char want102[] = "{\"ok\":true,\"data\":{\"vmid\":102,\"mounts\":[]},\"error\":\"\"}";

	do_req(NULL, lapi_port(g_l), "GET", "/storage", "127.0.0.2", g_tok101, NULL, NULL, &r);
	T_EQ_INT(r.cc, CURLE_OK);
	T_EQ_INT(r.status, 200);
	T_EQ_STR(r.body, want);
	resp_free(&r);
	/* scoped to the token's guest */
	do_req(NULL, lapi_port(g_l), "GET", "/storage", "127.0.0.3", g_tok102, NULL, NULL, &r);
	T_EQ_INT(r.status, 200);
	T_EQ_STR(r.body, want102);
	resp_free(&r);
	/* a query string does not change the route */
	T_EQ_INT(call(lapi_port(g_l), "GET", "/storage?x=1", "127.0.0.2", g_tok101, NULL, NULL, NULL), 200);
}

T_TEST(t_metrics)
{
	struct json *root = NULL;
	const struct json *d = NULL, *h, *t, *la, *x;
	size_t i;
	int saw_thin = 0;

	T_EQ_INT(call(lapi_port(g_l), "GET", "/host/metrics", "127.0.0.2", g_tok101, NULL, &root, &d), 200);
	if (!root)
		return;
	T_EQ_INT(jint(d, "vmid"), 101);
	T_CHECK(jstr(d, "taken_at") != NULL);
	x = json_get(d, "sensors_taken_at");
	T_CHECK(x && (x->type == JSON_NULL || x->type == JSON_STRING));
	h = json_get(d, "host");
	T_CHECK(h && h->type == JSON_OBJECT);
	if (h) {
		double cpu = -1;
		T_EQ_STR(jstr(h, "node"), "pve");
		T_OK(json_double(json_get(h, "cpu_percent"), &cpu));
		T_CHECK(cpu >= 0.0 && cpu <= 100.0);
		T_CHECK(jint(h, "memory_total_bytes") > 0);
		T_CHECK(jint(h, "memory_used_bytes") >= 0);
		T_CHECK(jint(h, "disk_total_bytes") > 0);
		T_CHECK(jint(h, "uptime_seconds") >= 0);
		la = json_get(h, "loadavg");
		T_CHECK(la && la->type == JSON_ARRAY && la->n == 3 && la->items[0]->type == JSON_STRING);
		x = json_get(h, "cpu_temp_c");
		T_CHECK(x && (x->type == JSON_NULL || x->type == JSON_NUMBER));
	}
	t = json_get(d, "storage_targets");
	T_CHECK(t && t->type == JSON_ARRAY && t->n == 3);
	for (i = 0; t && i < t->n; i++) {
		const struct json *s = t->items[i], *sm = json_get(s, "smart"), *tp = json_get(s, "thin_pool");
		double f = -1;
		T_CHECK(jstr(s, "name") && jstr(s, "type") && jstr(s, "state") && jstr(s, "content"));
		T_CHECK(json_get(s, "reachable") && json_get(s, "reachable")->type == JSON_BOOL);
		T_CHECK(jint(s, "total_bytes") >= 0 && jint(s, "used_bytes") >= 0 && jint(s, "avail_bytes") >= 0);
		T_OK(json_double(json_get(s, "used_fraction"), &f));
		T_CHECK(f >= 0.0 && f <= 1.0);
		T_CHECK(jstr(s, "mount_path") && jstr(s, "class_hint"));
		T_CHECK(sm && sm->type == JSON_OBJECT);
		if (sm) {
			T_EQ_STR(jstr(sm, "health"), "UNKNOWN");
			T_CHECK(json_get(sm, "temperature_c") && json_get(sm, "temperature_c")->type == JSON_NULL);
			T_CHECK(json_get(sm, "percentage_used") && json_get(sm, "percentage_used")->type == JSON_NULL);
		}
		T_CHECK(tp != NULL);
		if (tp && tp->type == JSON_OBJECT) {
			saw_thin = 1;
			T_EQ_STR(jstr(s, "type"), "lvmthin");
			T_CHECK(json_get(tp, "data_used_fraction")->type == JSON_NUMBER);
			T_CHECK(json_get(tp, "metadata_used_fraction")->type == JSON_NULL);
		}
	}
	T_CHECK(saw_thin);
	json_free(root);
}

T_TEST(t_auth)
{
	int port = lapi_port(g_l);
	unsigned long before = atomic_load(&g_events[LAPI_EV_AUTH_FAILED]);
	char bad[LAPI_TOKEN_MAX];
	struct resp r;

	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", NULL, NULL, NULL, NULL), 401);
	T_EQ_INT(call(port, "GET", "/nope", "127.0.0.2", NULL, NULL, NULL, NULL), 401);
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", "garbage", NULL, NULL, NULL), 401);
	/* right shape, wrong secret */
	snprintf(bad, sizeof bad, "%s", g_tok101);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A';
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", bad, NULL, NULL, NULL), 401);
	/* a token for a vmid with no token */
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", "fhl1.999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
		      NULL, NULL),
		 401);
	/* another scheme */
	do_req(NULL, port, "GET", "/storage", "127.0.0.2", NULL, NULL, NULL, &r);
	T_EQ_INT(r.status, 401);
	resp_free(&r);
	/* 101's token from 102's address, and from plain loopback: 403 */
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.3", g_tok101, NULL, NULL, NULL), 403);
	T_EQ_INT(call(port, "GET", "/host/metrics", "127.0.0.1", g_tok101, NULL, NULL, NULL), 403);
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", g_tok102, NULL, NULL, NULL), 403);
	T_CHECK(atomic_load(&g_events[LAPI_EV_AUTH_FAILED]) > before);
	T_CHECK(atomic_load(&g_events[LAPI_EV_FORBIDDEN]) > 0);
	T_EQ_INT(atomic_load(&g_token_in_event), 0);
}

T_TEST(t_routes)
{
	int port = lapi_port(g_l);
	struct json *root = NULL;
	const struct json *d = NULL;

	T_EQ_INT(call(port, "GET", "/nope", "127.0.0.2", g_tok101, NULL, NULL, NULL), 404);
	T_EQ_INT(call(port, "GET", "/storage/", "127.0.0.2", g_tok101, NULL, NULL, NULL), 404);
	T_EQ_INT(call(port, "POST", "/storage", "127.0.0.2", g_tok101, "{}", NULL, NULL), 405);
	T_EQ_INT(call(port, "DELETE", "/host/metrics", "127.0.0.2", g_tok101, NULL, NULL, NULL), 405);
	T_EQ_INT(call(port, "GET", "/backup", "127.0.0.2", g_tok101, NULL, NULL, NULL), 405);
	T_EQ_INT(call(port, "GET", "/disks", "127.0.0.2", g_tok101, NULL, NULL, NULL), 501);
	T_EQ_INT(call(port, "POST", "/disks/assign", "127.0.0.2", g_tok101, "{\"uuid\":\"x\"}", NULL, NULL), 501);
	T_EQ_INT(call(port, "POST", "/disks/eject", "127.0.0.2", g_tok101, "{}", NULL, NULL), 501);
	T_EQ_INT(call(port, "POST", "/disks/format", "127.0.0.2", g_tok101, "{\"device\":\"/dev/sdb\"}", &root, &d),
		 501);
	if (root) {
		const struct json *f = json_get(d, "formatted");
		T_CHECK(d->type == JSON_OBJECT && d->n == 2);
		T_CHECK(f && f->type == JSON_BOOL && !f->b);
		T_EQ_STR(jstr(d, "reason"), "not implemented");
		json_free(root);
	}
}

T_TEST(t_health)
{
	int port = lapi_port(g_l);
	struct json *root = NULL;
	const struct json *d = NULL;

	T_EQ_INT(call(port, "GET", "/healthz", "127.0.0.1", NULL, NULL, NULL, NULL), 200);
	T_EQ_INT(call(port, "POST", "/healthz", "127.0.0.1", NULL, "", NULL, NULL), 405);
	/* Proxmox reached, hub never: not ready */
	T_EQ_INT(call(port, "GET", "/readyz", "127.0.0.1", NULL, NULL, &root, &d), 503);
	if (root) {
		T_CHECK(json_get(d, "proxmox") && json_get(d, "proxmox")->b);
		T_CHECK(json_get(d, "hub") && !json_get(d, "hub")->b);
		json_free(root);
	}
	lapi_note_hub(g_l, (int64_t)time(NULL));
	T_EQ_INT(call(port, "GET", "/readyz", "127.0.0.1", NULL, NULL, NULL, NULL), 200);
	lapi_note_hub(g_l, (int64_t)time(NULL) - LAPI_HUB_FRESH_SECONDS - 10);
	T_EQ_INT(call(port, "GET", "/readyz", "127.0.0.1", NULL, NULL, NULL, NULL), 503);
}

T_TEST(t_backup_backend)
{
	int port = lapi_port(g_l);
	struct json *root = NULL;
	const struct json *d = NULL;
	struct timespec a, b;
	double ms;

	/* none registered */
	T_EQ_INT(call(port, "GET", "/backup/due", "127.0.0.2", g_tok101, NULL, NULL, NULL), 503);
	T_EQ_INT(call(port, "POST", "/backup", "127.0.0.2", g_tok101, "{}", NULL, NULL), 503);
	lapi_set_backend(g_l, &g_fake, NULL);
	T_EQ_INT(call(port, "GET", "/backup/due", "127.0.0.2", g_tok101, NULL, &root, &d), 200);
	if (root) {
		T_EQ_INT(jint(d, "vmid"), 101);
		T_CHECK(json_get(d, "due") && json_get(d, "due")->type == JSON_BOOL && json_get(d, "due")->b);
		T_EQ_STR(jstr(d, "reason"), "never_backed_up");
		json_free(root);
	}
	T_EQ_INT(call(port, "GET", "/backup/due", "127.0.0.3", g_tok102, NULL, &root, &d), 200);
	if (root) {
		T_EQ_INT(jint(d, "vmid"), 102);
		T_EQ_STR(jstr(d, "reason"), "not_due");
		json_free(root);
	}
	T_EQ_INT(call(port, "POST", "/backup", "127.0.0.2", g_tok101, "{}", &root, &d), 202);
	if (root) {
		T_EQ_INT(jint(d, "vmid"), 101);
		T_EQ_STR(jstr(d, "job_id"), "job-101-1");
		T_EQ_STR(jstr(d, "phase"), "running");
		json_free(root);
	}
	T_EQ_INT(call(port, "POST", "/backup", "127.0.0.2", g_tok101, "", NULL, NULL), 202);
	T_EQ_INT(call(port, "POST", "/backup", "127.0.0.2", g_tok101, " { } ", NULL, NULL), 202);
	T_EQ_INT(call(port, "POST", "/backup", "127.0.0.2", g_tok101, "{\"force\":true}", NULL, NULL), 400);
	T_EQ_INT(call(port, "POST", "/backup", "127.0.0.2", g_tok101, "[]", NULL, NULL), 400);
	T_EQ_INT(call(port, "GET", "/backup/status", "127.0.0.2", g_tok101, NULL, &root, &d), 200);
	if (root) {
		T_EQ_STR(jstr(d, "phase"), "failed");
		T_EQ_STR(jstr(d, "error"), "vzdump: \"disk\" full\n");
		T_EQ_STR(jstr(d, "job_id"), "job-101-1");
		json_free(root);
	}
	/* a backend error: 500 with its name */
	atomic_store(&g_be_mode, 2);
	T_EQ_INT(call(port, "GET", "/backup/due", "127.0.0.2", g_tok101, NULL, &root, &d), 500);
	if (root) {
		T_EQ_STR(jstr(root, "error"), "store_failed");
		json_free(root);
	}
	/* a slow backend: 503 at the deadline (700 ms), never a hang */
	atomic_store(&g_be_mode, 1);
	clock_gettime(CLOCK_MONOTONIC, &a);
	T_EQ_INT(call(port, "GET", "/backup/due", "127.0.0.2", g_tok101, NULL, NULL, NULL), 503);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	T_CHECK(ms >= 600 && ms < 1400);
	/* the other endpoints do not wait for it */
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", g_tok101, NULL, NULL, NULL), 200);
	atomic_store(&g_be_mode, 0);
	usleep(1200 * 1000);   /* the slow call returns; its result is dropped */
	T_EQ_INT(call(port, "GET", "/backup/due", "127.0.0.2", g_tok101, NULL, NULL, NULL), 200);
	lapi_set_backend(g_l, NULL, NULL);
	T_EQ_INT(call(port, "GET", "/backup/status", "127.0.0.2", g_tok101, NULL, NULL, NULL), 503);
}

/* A fake disk backend: echoes what it got, refuses format with a body. */
static atomic_int g_disk_calls;
static int fake_disks(void *ctx, enum lapi_disk_op op, int vmid, const char *body, size_t len, int *status,
		      struct buf *data, char *err, size_t errlen)
{
	(void)ctx;
	atomic_fetch_add(&g_disk_calls, 1);
	switch (op) {
	case LAPI_DISK_LIST:
		*status = 200;
		return buf_printf(data, "{\"disks\":[],\"vmid\":%d,\"body_len\":%zu}", vmid, len);
	case LAPI_DISK_FORMAT:
		*status = 403;
		snprintf(err, errlen, "device is data-bearing");
		return buf_printf(data, "{\"vmid\":%d,\"formatted\":false,\"data_bearing\":true,\"echo\":%.*s}", vmid,
				  (int)len, body);
	case LAPI_DISK_EJECT:
		return FH_ERR_STORE;
	case LAPI_DISK_ASSIGN:
		*status = 400;
		snprintf(err, errlen, "where: not allowed");
		return 0;
	}
	return FH_ERR_INTERNAL;
}

T_TEST(t_disk_backend)
{
	int port = lapi_port(g_l);
	struct json *root = NULL;
	const struct json *d = NULL;

	lapi_set_disks(g_l, fake_disks, NULL);
	T_EQ_INT(call(port, "GET", "/disks", "127.0.0.2", g_tok101, NULL, &root, &d), 200);
	if (root) {
		T_EQ_INT(jint(d, "vmid"), 101);
		T_EQ_INT(jint(d, "body_len"), 0);
		T_CHECK(json_get(root, "ok") && json_get(root, "ok")->b);
		T_EQ_STR(jstr(root, "error"), "");
		json_free(root);
	}
	T_EQ_INT(call(port, "POST", "/disks/format", "127.0.0.3", g_tok102, "{\"device\":\"/dev/sdb\"}", &root, &d),
		 403);
	if (root) {
		T_EQ_INT(jint(d, "vmid"), 102);
		T_CHECK(json_get(root, "ok") && !json_get(root, "ok")->b);
		T_EQ_STR(jstr(root, "error"), "device is data-bearing");
		T_EQ_STR(jstr(json_get(d, "echo"), "device"), "/dev/sdb");
		json_free(root);
	}
	T_EQ_INT(call(port, "POST", "/disks/assign", "127.0.0.2", g_tok101, "{}", &root, &d), 400);
	if (root) {
		T_EQ_STR(jstr(root, "error"), "where: not allowed");
		T_CHECK(json_get(root, "data") && json_get(root, "data")->type == JSON_NULL);
		json_free(root);
	}
	T_EQ_INT(call(port, "POST", "/disks/eject", "127.0.0.2", g_tok101, "{}", &root, &d), 500);
	if (root) {
		T_EQ_STR(jstr(root, "error"), "store_failed");
		json_free(root);
	}
	/* no token: never reaches the backend */
	atomic_store(&g_disk_calls, 0);
	T_EQ_INT(call(port, "GET", "/disks", "127.0.0.2", NULL, NULL, NULL, NULL), 401);
	T_EQ_INT(atomic_load(&g_disk_calls), 0);
	lapi_set_disks(g_l, NULL, NULL);
	T_EQ_INT(call(port, "GET", "/disks", "127.0.0.2", g_tok101, NULL, NULL, NULL), 501);
}

T_TEST(t_keep_alive)
{
	CURL *h = curl_easy_init();
	struct resp r;
	int i;

	for (i = 0; i < 5; i++) {
		do_req(h, lapi_port(g_l), "GET", "/storage", "127.0.0.2", g_tok101, NULL, NULL, &r);
		T_EQ_INT(r.status, 200);
		T_EQ_INT(r.connects, i == 0 ? 1 : 0);
		resp_free(&r);
	}
	/* a 404 keeps the connection */
	do_req(h, lapi_port(g_l), "GET", "/x", "127.0.0.2", g_tok101, NULL, NULL, &r);
	T_EQ_INT(r.status, 404);
	resp_free(&r);
	do_req(h, lapi_port(g_l), "GET", "/storage", "127.0.0.2", g_tok101, NULL, NULL, &r);
	T_EQ_INT(r.connects, 0);
	resp_free(&r);
	curl_easy_cleanup(h);
}

T_TEST(t_tokens)
{
	int port = lapi_port(g_l), vm = 0;
	char old[LAPI_TOKEN_MAX], tok150[LAPI_TOKEN_MAX];
	unsigned rev = 99;
	int present[] = { 101, 102, 103 };
	struct lapi_stats st;

	/* rotation: the old token stops working at once */
	memcpy(old, g_tok101, sizeof old);
	T_OK(lapi_token_issue(g_st, 101, 2, g_tok101));
	T_CHECK(strcmp(old, g_tok101) != 0);
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", old, NULL, NULL, NULL), 401);
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", g_tok101, NULL, NULL, NULL), 200);
	T_OK(lapi_token_check(g_st, g_tok101, strlen(g_tok101), &vm));
	T_EQ_INT(vm, 101);
	T_ERR(lapi_token_check(g_st, old, strlen(old), &vm), FH_ERR_NOT_FOUND);
	/* revoke */
	T_OK(lapi_token_revoke(g_st, 102));
	T_ERR(lapi_token_revoke(g_st, 102), FH_ERR_NOT_FOUND);
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.3", g_tok102, NULL, NULL, NULL), 401);
	T_OK(lapi_token_issue(g_st, 102, 3, g_tok102));
	/* a guest that is gone from Proxmox loses its token at the next refresh */
	T_OK(lapi_token_issue(g_st, 150, 3, tok150));
	T_ERR(lapi_tokens_prune(g_st, present, 0, &rev), FH_ERR_INVAL);
	lapi_get_stats(g_l, &st);
	lapi_refresh_kick(g_l);
	T_OK(wait_refresh(g_l, st.refreshes + 1));
	T_ERR(lapi_token_check(g_st, tok150, strlen(tok150), &vm), FH_ERR_NOT_FOUND);
	T_OK(lapi_token_check(g_st, g_tok101, strlen(g_tok101), &vm));
	T_OK(lapi_token_check(g_st, g_tok102, strlen(g_tok102), &vm));
	T_CHECK(atomic_load(&g_events[LAPI_EV_TOKENS_REVOKED]) >= 1);
	/* the daemon's entry point does the same */
	T_OK(lapi_token_issue(g_st, 151, 3, tok150));
	T_OK(lapi_tokens_prune(g_st, present, 3, &rev));
	T_EQ_INT(rev, 1);
	T_OK(lapi_tokens_prune(g_st, present, 3, &rev));
	T_EQ_INT(rev, 0);
	T_ERR(lapi_token_issue(g_st, 99, 3, tok150), FH_ERR_INVAL);
}

/* The DHCP guest's address comes from its interfaces; static ones from net0. */
T_TEST(t_collect_addresses)
{
	struct pve_client *pc = NULL;
	struct pve_err pe;
	struct lapi_snap *s = NULL;
	struct lapi_addr a;
	int *ids = NULL;
	size_t n = 0;

	T_OK(pve_client_new(&g_po, &pc, &pe));
	if (!pc)
		return;
	T_OK(lapi_collect(pc, NULL, false, NULL, g_ga, 2, 1700000000, &s, &ids, &n, NULL));
	if (s) {
		T_EQ_INT(n, 3);
		T_CHECK(lapi_addr_parse("10.10.0.101", 11, &a) == 0 && lapi_snap_owns(s, &a, 101));
		T_CHECK(!lapi_snap_owns(s, &a, 102));
		/* the simulator reports a DHCP guest's link-local address */
		T_CHECK(lapi_addr_parse("fe80::be24:11ff:feaa:bbcc/64", 28, &a) == 0 && lapi_snap_owns(s, &a, 103));
		T_CHECK(lapi_addr_parse("127.0.0.1", 9, &a) == 0 && !lapi_snap_known(s, &a));   /* lo skipped */
		T_CHECK(lapi_addr_parse("127.0.0.2", 9, &a) == 0 && lapi_snap_owns(s, &a, 101));
		T_CHECK(lapi_addr_parse("127.0.0.9", 9, &a) == 0 && !lapi_snap_known(s, &a));
		T_CHECK(lapi_addr_parse("::ffff:127.0.0.3", 16, &a) == 0 && lapi_snap_owns(s, &a, 102));
		T_CHECK(s->slow_taken_at == 0 && !s->have_temp);
	}
	lapi_snap_free(s);
	free(ids);
	pve_client_free(pc);
}

/* Loopback untrusted: only guest and allow-listed addresses get a handshake. */
T_TEST(t_admission)
{
	struct lapi_opts o;
	struct lapi *l = NULL;
	struct lapi_stats st;
	const char *mon[] = { "127.0.0.1" };
	char why[256];
	struct resp r;
	int port;

	base_opts(&o);
	o.loopback_untrusted = true;
	o.monitor_addresses = mon;
	o.nmonitor = 1;
	T_OK(lapi_start(&o, &l, why, sizeof why));
	if (!l)
		return;
	port = lapi_port(l);
	/* 127.0.0.9: closed before any TLS byte */
	do_req(NULL, port, "GET", "/healthz", "127.0.0.9", NULL, NULL, NULL, &r);
	T_CHECK(r.cc != CURLE_OK && r.status == 0);
	resp_free(&r);
	lapi_get_stats(l, &st);
	T_EQ_INT(st.rejected_addr, 1);
	T_EQ_INT(st.handshakes, 0);
	/* a guest address gets in, but not to the health endpoints */
	T_EQ_INT(call(port, "GET", "/healthz", "127.0.0.2", NULL, NULL, NULL, NULL), 403);
	T_EQ_INT(call(port, "GET", "/healthz", "127.0.0.1", NULL, NULL, NULL, NULL), 200);
	/* no Proxmox data in this instance yet: a configured address is known,
	 * and the answer says the data is not there (never a hang) */
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.2", g_tok101, NULL, NULL, NULL), 503);
	T_EQ_INT(call(port, "GET", "/host/metrics", "127.0.0.2", g_tok101, NULL, NULL, NULL), 503);
	/* and 127.0.0.3 with 101's token: addresses not known yet -> 503, not 403 */
	T_EQ_INT(call(port, "GET", "/storage", "127.0.0.3", g_tok101, NULL, NULL, NULL), 503);
	lapi_stop(l);
}

T_TEST(t_listen_parse)
{
	struct sockaddr_storage ss;
	unsigned len;
	struct lapi_opts o;
	struct lapi *l = (struct lapi *)1;
	char why[256];

	T_OK(lapi_parse_listen("192.168.0.162:8443", &ss, &len));
	T_EQ_INT(ss.ss_family, AF_INET);
	T_OK(lapi_parse_listen("[fd00::1]:8443", &ss, &len));
	T_EQ_INT(ss.ss_family, AF_INET6);
	T_ERR(lapi_parse_listen("fd00::1:8443", &ss, &len), FH_ERR_CONFIG);
	T_ERR(lapi_parse_listen("host.example:8443", &ss, &len), FH_ERR_CONFIG);
	T_ERR(lapi_parse_listen("1.2.3.4:65536", &ss, &len), FH_ERR_CONFIG);
	T_ERR(lapi_parse_listen("1.2.3.4:", &ss, &len), FH_ERR_CONFIG);
	T_ERR(lapi_parse_listen("1.2.3.4:-1", &ss, &len), FH_ERR_CONFIG);
	/* "" disables; no bridge: a config error naming it */
	base_opts(&o);
	o.listen = "";
	T_OK(lapi_start(&o, &l, why, sizeof why));
	T_CHECK(l == NULL);
	o.listen = NULL;
	o.bridge = "felhom-nobr0";
	T_ERR(lapi_start(&o, &l, why, sizeof why), FH_ERR_CONFIG);
	T_CHECK(strstr(why, "felhom-nobr0") != NULL);
}

/* The command line: --print-fingerprint[=spki], --issue-token, --revoke-token. */
T_TEST(t_cli)
{
	char agent[512], cfgp[400], sd[300], *out = NULL, *err = NULL;
	const char *env[] = { "PATH=/usr/bin:/bin", NULL };
	struct lapi_cert_info info;
	int vm = 0;
	struct store_opts so;
	struct store *st = NULL;
	char db[400];

	snprintf(agent, sizeof agent, "%s/felhom-agent", t_build_dir());
	snprintf(sd, sizeof sd, "%s/cli", g_dir);
	snprintf(cfgp, sizeof cfgp, "%s/cli.json", g_dir);
	T_EQ_INT(t_write_file(cfgp, "{}", 0600), 0);
	{
		const char *a[] = { agent, "--config", cfgp, "--state-dir", sd, "--print-fingerprint", NULL };
		T_EQ_INT(t_run_cmd(a, env, &out, &err), 0);
		T_CHECK(out && strlen(out) == 96 && out[95] == '\n');
		T_OK(lapi_cert_ensure(sd, &info));
		T_CHECK(out && strncmp(out, info.fingerprint, 95) == 0);
		free(out);
		free(err);
	}
	{
		const char *a[] = { agent, "--config", cfgp, "--state-dir", sd, "--print-fingerprint=spki", NULL };
		T_EQ_INT(t_run_cmd(a, env, &out, &err), 0);
		T_CHECK(out && strncmp(out, info.spki_pin, strlen(info.spki_pin)) == 0 &&
			out[strlen(info.spki_pin)] == '\n');
		free(out);
		free(err);
	}
	{
		const char *a[] = { agent, "--config", cfgp, "--state-dir", sd, "--issue-token", "4242", NULL };
		size_t n;
		T_EQ_INT(t_run_cmd(a, env, &out, &err), 0);
		n = out ? strlen(out) : 0;
		T_CHECK(n > 10 && out[n - 1] == '\n' && strchr(out, '\n') == out + n - 1);
		T_CHECK(out && strncmp(out, "fhl1.4242.", 10) == 0);
		T_CHECK(err && out && (n < 2 || !strstr(err, out + 10)));   /* never logged */
		if (out && n) {
			out[n - 1] = '\0';
			snprintf(db, sizeof db, "%s/db", sd);
			memset(&so, 0, sizeof so);
			so.dir = db;
			T_OK(store_open(&so, &st));
			T_OK(lapi_token_check(st, out, n - 1, &vm));
			T_EQ_INT(vm, 4242);
			store_close(st);
		}
		free(out);
		free(err);
	}
	{
		const char *a[] = { agent, "--config", cfgp, "--state-dir", sd, "--revoke-token", "4242", NULL };
		T_EQ_INT(t_run_cmd(a, env, &out, &err), 0);
		T_EQ_STR(out, "");
		free(out);
		free(err);
	}
	{
		const char *a[] = { agent, "--config", cfgp, "--state-dir", sd, "--issue-token", "12", NULL };
		T_EQ_INT(t_run_cmd(a, env, &out, &err), 2);
		free(out);
		free(err);
	}
}

int main(void)
{
	int ok;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ok = setup() == 0;
	if (!ok) {
		printf("FAIL setup\n# passed 0 failed 1\n");
	} else {
		T_RUN(t_leaf_and_pins);
		T_RUN(t_storage);
		T_RUN(t_metrics);
		T_RUN(t_auth);
		T_RUN(t_routes);
		T_RUN(t_health);
		T_RUN(t_backup_backend);
		T_RUN(t_disk_backend);
		T_RUN(t_keep_alive);
		T_RUN(t_tokens);
		T_RUN(t_collect_addresses);
		T_RUN(t_admission);
		T_RUN(t_listen_parse);
		T_RUN(t_cli);
	}
	lapi_stop(g_l);
	if (g_sim_ok)
		sim_stop(&g_sim);
	store_close(g_st);
	curl_global_cleanup();
	return ok ? t_done() : 1;
}
