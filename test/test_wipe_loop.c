/* test_wipe_loop.c — the operator-signed wipe loop end to end.
 *
 * In this process, the stack the daemon builds (daemon_engine_open): the
 * store, the gate with a test signer, disk management (loop devices
 * offered, by-id names from a directory of symlinks made here, the
 * privileged backend in direct mode over test/fakebin.h tools), the
 * reconcile engine with disk_exec_wipe as its host executor, and the local
 * API with the disk backend plugged in — against test/pvesim and
 * test/hubsim:
 *
 *   1. guest 101's controller POSTs /disks/format over TLS (leaf pinned,
 *      bearer token) on a data-bearing device: 403 with the FormatResult
 *      and its pending_op;
 *   2. the operator runs build/felhom-opsign exactly as the controller
 *      prints it (the key is the operator's default identity in $HOME);
 *      the bundle goes to hubsim under an op id;
 *   3. the signed ops are fetched and run the way the daemon does (hub
 *      client, recon_ops_parse, recon_signed_op) and the op results are
 *      delivered from the outbox: the device is wiped exactly once;
 *   4. replays (the same id, the same bundle under a new id, a fresh
 *      signature with nothing pending) wipe nothing;
 *   5. refusals — another durable id, another host, an expired signature,
 *      a lifetime over the maximum, a signature not valid yet, an unknown
 *      signer, another fstype, the by-id name now naming another device —
 *      each leave the device intact (run before step 3, while the pending
 *      op exists, so that each is refused for its own reason).
 * With fake tools always; again with real loop devices (recording wrappers
 * around the real tools) when running as root where losetup works.
 *
 * Then build/felhom-agent as a daemon with a signed storage_wipe for a
 * durable id nothing is pending for: the op result it delivers says
 * failed/not_found with the disk module's reason in its audit tail (not
 * "no host executor"), and no wipefs -a ran.
 */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "disk.h"
#include "err.h"
#include "fakebin.h"
#include "gate.h"
#include "hub.h"
#include "hubsim.h"
#include "json.h"
#include "lapi.h"
#include "outbox.h"
#include "priv.h"
#include "pve.h"
#include "recon.h"
#include "sim.h"
#include "store.h"

#define HOST "host-7f3a"
#define DAEMON_HOST "host-daemon"
#define VMID 101
#define UUID_NEW "11111111-2222-4333-8444-555555555555"

static char g_dir[256], g_home[300], g_tmp[300], g_mallory[300], g_opsign[400], g_agent[400];
static char *g_signer;                  /* "operational ops-anna ssh-ed25519 AAAA... anna" */
static struct sim P;
static struct hubsim H;

/* The real loop devices, attached in main when the machine allows it. */
static struct {
	bool ok;
	char img[2][300];
	char dev[2][64];                     /* [0] MBR-partitioned, [1] blank and smaller */
} g_loop;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool contains(const char *hay, const char *needle)
{
	bool ok = hay && strstr(hay, needle) != NULL;

	if (!ok)
		fprintf(stderr, "  missing: %s\n  in: %s\n", needle, hay ? hay : "(null)");
	return ok;
}

static void chomp(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

static int run(const char *const argv[], char **out)
{
	static const char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
	char *o = NULL, *e = NULL;
	int st = t_run_cmd(argv, env, &o, &e);

	if (out)
		*out = o ? o : strdup("");
	else
		free(o);
	free(e);
	return st;
}

static struct json *parse(const char *s)
{
	const struct json_limits lim = { 4u << 20, 16, false };
	struct json *j = NULL;

	if (!s || json_parse(s, strlen(s), &lim, &j, NULL, 0) != 0)
		return NULL;
	return j;
}

static const char *jstr(const struct json *j, const char *key)
{
	const char *s = NULL;

	if (json_str(json_get(j, key), &s) != 0)
		return NULL;
	return s;
}

/* ------------------------------------------------------------ operators */

static const char *const *opsign_env(void)
{
	static char home[320], tmp[320];
	static const char *env[5];

	snprintf(home, sizeof(home), "HOME=%s", g_home);
	snprintf(tmp, sizeof(tmp), "TMPDIR=%s", g_tmp);
	env[0] = "PATH=/usr/bin:/bin";
	env[1] = "LC_ALL=C";
	env[2] = home;
	env[3] = tmp;
	env[4] = NULL;
	return env;
}

/* Runs felhom-opsign with args (NULL-terminated, without argv[0]) as the
 * operator (HOME holds the default identity, no ssh-agent). *bundle gets
 * stdout without the trailing newline. The exit status. */
static int opsign(const char *const args[], char **bundle)
{
	const char *argv[32];
	char *out = NULL, *err = NULL;
	size_t n = 0;
	int st;

	argv[n++] = g_opsign;
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	st = t_run_cmd(argv, opsign_env(), &out, &err);
	if (st != 0)
		fprintf(stderr, "  felhom-opsign exit %d: %s\n", st, err ? err : "");
	free(err);
	if (out)
		chomp(out);
	*bundle = out ? out : strdup("");
	return st;
}

/* The controller's line for a pending_op, run word by word as printed. */
static int opsign_as_printed(const char *line, char **bundle)
{
	char *copy = strdup(line), *save = NULL, *w;
	const char *args[16];
	size_t n = 0;
	int st;

	for (w = strtok_r(copy, " ", &save); w && n < 15; w = strtok_r(NULL, " ", &save))
		args[n++] = w;
	args[n] = NULL;
	T_EQ_INT(n, 7);
	T_EQ_STR(args[0], "felhom-opsign");
	st = opsign(args + 1, bundle);
	free(copy);
	return st;
}

/* A bundle is exactly {"blob_b64":"...","signature":"..."}. */
static bool bundle_ok(const char *b)
{
	struct json *j = parse(b);
	bool ok = j && j->type == JSON_OBJECT && j->n == 2 && jstr(j, "blob_b64") && jstr(j, "signature") &&
		  !strncmp(jstr(j, "signature"), "-----BEGIN SSH SIGNATURE-----", 29);

	json_free(j);
	if (!ok)
		fprintf(stderr, "  not a bundle: %s\n", b ? b : "(null)");
	return ok;
}

/* ----------------------------------------------------------------- hub */

/* hubsim serves the bundle as its only signed op, under id. */
static void hub_offer(const char *id, const char *bundle)
{
	struct buf doc;

	T_CHECK(bundle_ok(bundle));
	buf_init(&doc, 1 << 20);
	buf_printf(&doc, "{\"ops\":[{\"id\":\"%s\",%s]}", id, bundle + 1);
	T_EQ_INT(hubsim_control(&H, "POST", "/signed-ops", buf_str(&doc), NULL, 0), 200);
	buf_free(&doc);
}

/* Deliveries hubsim recorded for id; the last one's outcome and reason. */
static int hub_results(const char *id, char *outcome, size_t olen, char *reason, size_t rlen)
{
	char *resp = malloc(1 << 20);
	struct json *j;
	const struct json *list, *last;
	int n = -1;

	outcome[0] = reason[0] = '\0';
	if (!resp)
		return -1;
	if (hubsim_control(&H, "GET", "/op-results", NULL, resp, 1 << 20) == 200 && (j = parse(resp)) != NULL) {
		list = json_get(json_get(j, "results"), id);
		n = 0;
		if (list && list->type == JSON_ARRAY && list->n) {
			n = (int)list->n;
			last = list->items[list->n - 1];
			snprintf(outcome, olen, "%s", jstr(last, "outcome") ? jstr(last, "outcome") : "?");
			snprintf(reason, rlen, "%s", jstr(last, "reason") ? jstr(last, "reason") : "?");
		}
		json_free(j);
	}
	free(resp);
	return n;
}

/* ------------------------------------------------------------ the stack */

struct stack {
	bool real;
	char root[300], state[320], db[340], byid[320], sys[320];
	char dev[64], other[64];              /* the data-bearing device, another one */
	char name[64], other_name[64];        /* their by-id names */
	const char *pttype;                   /* the device's partition table */
	struct fakebin fb;
	struct priv_opts priv;
	struct pve_opts pve;
	struct store *st;
	struct gate *g;
	struct disk *dk;
	struct recon *r;
	struct lapi *l;
	struct hub_client *hx;
	struct lapi_cert_info leaf;
	char token[LAPI_TOKEN_MAX];
};

static void byid_link(const struct stack *s, const char *name, const char *target)
{
	char p[400];

	snprintf(p, sizeof(p), "%s/%s", s->byid, name);
	unlink(p);
	T_CHECK(symlink(target, p) == 0);
}

/* The fake host: a system disk, a blank disk (sdb) and a GPT disk with
 * an xfs partition (sdd). */
static void fake_host(struct stack *s)
{
	static const char lsblk[] =
		"{\"blockdevices\":["
		"{\"name\":\"sda\",\"path\":\"/dev/sda\",\"pkname\":null,\"type\":\"disk\",\"size\":256060514304,"
		"\"ro\":false,\"rm\":false,\"rota\":false,\"tran\":\"sata\",\"serial\":\"SERA\",\"fstype\":null,"
		"\"uuid\":null,\"label\":null,\"pttype\":null,\"mountpoints\":[null]},"
		"{\"name\":\"sda1\",\"path\":\"/dev/sda1\",\"pkname\":\"sda\",\"type\":\"part\",\"size\":256059465728,"
		"\"ro\":false,\"rm\":false,\"rota\":false,\"tran\":null,\"serial\":null,\"fstype\":null,"
		"\"uuid\":null,\"label\":null,\"pttype\":null,\"mountpoints\":[\"/\"]},"
		"{\"name\":\"sdb\",\"path\":\"/dev/sdb\",\"pkname\":null,\"type\":\"disk\",\"size\":107374182400,"
		"\"ro\":false,\"rm\":false,\"rota\":true,\"tran\":\"sata\",\"serial\":\"SERB\",\"fstype\":null,"
		"\"uuid\":null,\"label\":null,\"pttype\":null,\"mountpoints\":[null]},"
		"{\"name\":\"sdd\",\"path\":\"/dev/sdd\",\"pkname\":null,\"type\":\"disk\",\"size\":500107862016,"
		"\"ro\":false,\"rm\":false,\"rota\":false,\"tran\":\"sata\",\"serial\":\"SERD\",\"fstype\":null,"
		"\"uuid\":null,\"label\":null,\"pttype\":null,\"mountpoints\":[null]},"
		"{\"name\":\"sdd1\",\"path\":\"/dev/sdd1\",\"pkname\":\"sdd\",\"type\":\"part\",\"size\":500106813440,"
		"\"ro\":false,\"rm\":false,\"rota\":false,\"tran\":null,\"serial\":null,\"fstype\":null,"
		"\"uuid\":null,\"label\":null,\"pttype\":null,\"mountpoints\":[null]}]}\n";

	T_CHECK(fakebin_disk_tools(&s->fb) == 0);
	T_CHECK(fakebin_fx_write(&s->fb, "lsblk.json", lsblk) == 0);
	T_CHECK(fakebin_fx_write(&s->fb, "blkid_dev_sdd", "DEVNAME=/dev/sdd\nPTUUID=1234\nPTTYPE=gpt\n") == 0);
	T_CHECK(fakebin_fx_write(&s->fb, "wipefs_dev_sdd",
				 "{\"signatures\":[{\"device\":\"sdd\",\"offset\":\"0x200\",\"type\":\"gpt\"}]}\n") == 0);
	T_CHECK(fakebin_fx_write(&s->fb, "blkid_dev_sdd1",
				 "DEVNAME=/dev/sdd1\nUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee\nTYPE=xfs\n"
				 "USAGE=filesystem\n") == 0);
	T_CHECK(fakebin_fx_write(&s->fb, "wipefs_dev_sdd1",
				 "{\"signatures\":[{\"device\":\"sdd1\",\"offset\":\"0x0\",\"type\":\"xfs\"}]}\n") == 0);
	T_CHECK(fakebin_fx_write(&s->fb, "next_uuid", UUID_NEW) == 0);
	snprintf(s->dev, sizeof(s->dev), "/dev/sdd");
	snprintf(s->other, sizeof(s->other), "/dev/sdb");
	snprintf(s->name, sizeof(s->name), "ata-DISK_SERD");
	snprintf(s->other_name, sizeof(s->other_name), "ata-DISK_SERB");
	s->pttype = "gpt";
}

/* Recording wrappers around the real tools (the loop devices). */
static void real_host(struct stack *s)
{
	static const char *const tools[] = { "lsblk", "wipefs", "blkid", "cmp", "mkfs", NULL };
	static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin", NULL };
	size_t i, k;

	for (i = 0; tools[i]; i++) {
		char p[300] = "";
		for (k = 0; dirs[k]; k++) {
			snprintf(p, sizeof(p), "%s/%s", dirs[k], tools[i]);
			if (access(p, X_OK) == 0)
				break;
		}
		T_CHECK(dirs[k] != NULL);
		T_CHECK(fakebin_wrap(&s->fb, tools[i], p) == 0);
	}
	snprintf(s->dev, sizeof(s->dev), "%s", g_loop.dev[0]);
	snprintf(s->other, sizeof(s->other), "%s", g_loop.dev[1]);
	snprintf(s->name, sizeof(s->name), "felhomwipe-pt");
	snprintf(s->other_name, sizeof(s->other_name), "felhomwipe-blank");
	s->pttype = "dos";
}

static int stack_open(struct stack *s, bool real)
{
	static char addr[] = "127.0.0.1";
	static struct cfg_addr ga[] = { { VMID, addr } };
	static unsigned k;
	struct store_opts so;
	struct gate_opts go;
	struct disk_opts dko;
	struct recon_opts ro;
	struct lapi_opts lo;
	struct hub_opts ho;
	struct hub_err he;
	const char *signers[1] = { g_signer };
	char why[512] = "";

	memset(s, 0, sizeof(*s));
	s->real = real;
	snprintf(s->root, sizeof(s->root), "%s/stack-%u", g_dir, ++k);
	snprintf(s->state, sizeof(s->state), "%s/state", s->root);
	snprintf(s->db, sizeof(s->db), "%s/db", s->state);
	snprintf(s->byid, sizeof(s->byid), "%s/by-id", s->root);
	snprintf(s->sys, sizeof(s->sys), "%s/sys", s->root);
	if (mkdir(s->root, 0700) || mkdir(s->state, 0700) || mkdir(s->byid, 0755) || mkdir(s->sys, 0755) ||
	    fakebin_init(&s->fb, s->root))
		return -1;
	if (real)
		real_host(s);
	else
		fake_host(s);
	byid_link(s, s->name, s->dev);
	byid_link(s, s->other_name, s->other);

	s->priv.mode = PRIV_MODE_DIRECT;
	s->priv.path = s->fb.bin;
	s->priv.timeout_ms = 30000;
	s->pve.endpoint = P.endpoint;
	s->pve.node = "pve";
	s->pve.token = P.token;
	s->pve.tls_fingerprint = P.fingerprint;

	memset(&so, 0, sizeof(so));
	so.dir = s->db;
	if (store_open(&so, &s->st))
		return -1;
	memset(&go, 0, sizeof(go));
	go.st = s->st;
	go.signers = signers;
	go.nsigners = 1;
	go.host_id = HOST;
	go.max_lifetime_seconds = 3600;
	go.clock_skew_seconds = 60;
	if (gate_new(&go, &s->g, why, sizeof(why))) {
		fprintf(stderr, "gate_new: %s\n", why);
		return -1;
	}
	memset(&dko, 0, sizeof(dko));
	dko.priv = &s->priv;
	dko.pve = &s->pve;
	dko.st = s->st;
	dko.host_id = HOST;
	dko.by_id_dir = s->byid;
	dko.include_loop = real;
	if (!real)
		dko.sys_block_dir = s->sys; /* no holders: the fake devices are not this machine's */
	if (disk_new(&dko, &s->dk, why, sizeof(why))) {
		fprintf(stderr, "disk_new: %s\n", why);
		return -1;
	}
	memset(&ro, 0, sizeof(ro));
	ro.st = s->st;
	ro.gate = s->g;
	ro.pve = &s->pve;
	ro.workers = 2;
	ro.exec_host = disk_exec_wipe;
	ro.exec_host_ctx = s->dk;
	if (recon_new(&ro, &s->r, why, sizeof(why))) {
		fprintf(stderr, "recon_new: %s\n", why);
		return -1;
	}
	memset(&lo, 0, sizeof(lo));
	lo.listen = "127.0.0.1:0";
	lo.state_dir = s->state;
	lo.store = s->st;
	lo.guest_addresses = ga;
	lo.naddrs = 1;
	lo.pve = &s->pve;
	lo.priv = &s->priv;
	if (lapi_start(&lo, &s->l, why, sizeof(why)) || !s->l) {
		fprintf(stderr, "lapi_start: %s\n", why);
		return -1;
	}
	lapi_set_disks(s->l, disk_lapi_call, s->dk);
	if (lapi_cert_ensure(s->state, &s->leaf) || lapi_token_issue(s->st, VMID, (int64_t)time(NULL), s->token))
		return -1;
	memset(&ho, 0, sizeof(ho));
	ho.url = H.url;
	ho.api_key = H.key;
	ho.tls_fingerprint = H.fingerprint;
	ho.request_timeout_ms = 10000;
	if (hub_client_new(&ho, &s->hx, &he)) {
		fprintf(stderr, "hub_client_new: %s\n", he.reason);
		return -1;
	}
	return 0;
}

static void stack_close(struct stack *s)
{
	hub_client_free(s->hx);
	lapi_stop(s->l);
	recon_free(s->r);
	disk_free(s->dk);
	gate_free(s->g);
	store_close(s->st);
	explicit_bzero(s->token, sizeof(s->token));
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------- the controller's side */

static size_t body_cb(char *p, size_t sz, size_t n, void *ud)
{
	return buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

/* POST https://127.0.0.1:PORT/path with guest 101's token, the leaf's SPKI
 * pinned. The HTTP status (0: no answer). */
static long lapi_post(const struct stack *s, const char *path, const char *body, struct buf *out)
{
	char url[128], auth[160];
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	long status = 0;

	buf_reset(out);
	if (!h)
		return 0;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", lapi_port(s->l), path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* the leaf is self-signed: its public key is pinned instead */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, s->leaf.spki_pin);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	explicit_bzero(auth, sizeof(auth));
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return status;
}

/* ------------------------------------------------------ the daemon's side */

/* GET /api/v1/signed-ops, each entry to the engine, wait for the jobs
 * (src/daemon.c fetch_signed_ops). The entries handled. */
static size_t fetch_signed_ops(struct stack *s)
{
	struct recon_op_entry *e = NULL;
	struct buf ans;
	struct hub_err he;
	char why[256] = "";
	size_t n = 0, i;
	long st = 0;

	buf_init(&ans, RECON_OPS_MAX_BYTES);
	T_OK(hub_request(s->hx, "GET", "/api/v1/signed-ops", NULL, 0, RECON_OPS_MAX_BYTES, &ans, &st, &he));
	T_EQ_INT(st, 200);
	T_OK(recon_ops_parse(buf_str(&ans), ans.len, &e, &n, why, sizeof(why)));
	buf_free(&ans);
	for (i = 0; i < n; i++) {
		enum task_outcome o = TASK_OUT_NONE;
		T_OK(recon_signed_op(s->r, &e[i], (int64_t)time(NULL), &o));
	}
	recon_ops_free(e, n);
	recon_wait_idle(s->r);
	return n;
}

/* POST the outbox to /api/v1/op-results, acknowledge (src/daemon.c
 * deliver_results). What was sent, all batches concatenated (caller frees). */
static char *deliver_results(struct stack *s)
{
	struct buf b, sent, ans;
	struct hub_err he;
	uint64_t pending = 1;
	int i;

	buf_init(&b, HUB_DEF_MAX_RESPONSE * 16);
	buf_init(&sent, 1 << 20);
	buf_init(&ans, HUB_DEF_MAX_RESPONSE);
	for (i = 0; i < 16; i++) {
		uint64_t through = 0;
		long st = 0;

		buf_reset(&b);
		T_OK(outbox_batch(s->st, OUTBOX_BATCH_MAX, &b, &through));
		if (!through)
			break;
		buf_appendz(&sent, buf_str(&b));
		buf_reset(&ans);
		T_OK(hub_request(s->hx, "POST", "/api/v1/op-results", buf_str(&b), b.len, HUB_DEF_MAX_RESPONSE, &ans,
				 &st, &he));
		T_EQ_INT(st, 200);
		T_OK(outbox_ack(s->st, through));
	}
	T_OK(outbox_pending(s->st, &pending));
	T_EQ_INT(pending, 0);
	buf_free(&b);
	buf_free(&ans);
	{
		char *r = strdup(buf_str(&sent));
		buf_free(&sent);
		return r;
	}
}

/* One hub round for one op: offered, fetched, run, result delivered. Checks
 * that the op result delivered is outcome/reason (reason NULL: not
 * checked) and returns what deliver_results sent. */
static char *round_trip(struct stack *s, const char *id, const char *bundle, const char *outcome, const char *reason,
			int line)
{
	char got_o[32], got_r[128], *sent;
	int before = hub_results(id, got_o, sizeof(got_o), got_r, sizeof(got_r)), after;

	hub_offer(id, bundle);
	T_EQ_INT(fetch_signed_ops(s), 1);
	sent = deliver_results(s);
	after = hub_results(id, got_o, sizeof(got_o), got_r, sizeof(got_r));
	if (after != before + 1 || strcmp(got_o, outcome) || (reason && strcmp(got_r, reason)))
		t_failf(__FILE__, line, "op %s: %d -> %d deliveries, last %s/%s; want %s/%s", id, before, after, got_o,
			got_r, outcome, reason ? reason : "*");
	return sent;
}

/* ----------------------------------------------------- device condition */

static char *blkid_real(const char *dev)
{
	const char *argv[] = { "/usr/sbin/blkid", "-p", "-o", "export", dev, NULL };
	char *out = NULL;

	run(argv, &out);
	return out;
}

/* The device still holds what it held: no wipe, no mkfs ran. */
static void intact(struct stack *s, int line)
{
	char *sel;
	const char *const wipes[] = { "wipefs\n-a\n", "mkfs\n", NULL };
	struct disk_pending pd;
	bool ok;

	sel = fakebin_select(&s->fb, wipes);
	if (!sel || *sel)
		t_failf(__FILE__, line, "wipe commands ran: %s", sel ? sel : "(nomem)");
	free(sel);
	if (s->real) {
		char *b = blkid_real(s->dev), want[32];
		snprintf(want, sizeof(want), "PTTYPE=%s", s->pttype);
		ok = b && strstr(b, want) && !strstr(b, "\nTYPE=");
		if (!ok)
			t_failf(__FILE__, line, "%s changed: %s", s->dev, b ? b : "");
		free(b);
	} else {
		char p[400], *b;
		snprintf(p, sizeof(p), "%s/blkid_dev_sdd", s->fb.fx);
		b = t_slurp(p, NULL);
		ok = b && strstr(b, "PTTYPE=gpt") && fakebin_fx_exists(&s->fb, "wipefs_dev_sdd") &&
		     fakebin_fx_exists(&s->fb, "wipefs_dev_sdd1") && fakebin_fx_exists(&s->fb, "blkid_dev_sdd1");
		if (!ok)
			t_failf(__FILE__, line, "the fixtures of /dev/sdd changed");
		free(b);
	}
	/* still pending, not claimed */
	{
		char durable[128];
		snprintf(durable, sizeof(durable), "byid:%s", s->name);
		if (disk_pending_get(s->dk, durable, &pd) != 0 || pd.running)
			t_failf(__FILE__, line, "the pending op for %s is gone or claimed", durable);
	}
}

/* Host-scoped audit entries of op with this decision and outcome (and
 * signer, unless NULL). */
static int audit_count_of(struct stack *s, const char *opname, const char *decision, const char *outcome,
			  const char *signer)
{
	struct buf b;
	struct json *j;
	size_t i;
	int n = 0;

	buf_init(&b, 1 << 20);
	T_OK(audit_tail_json(s->st, AUDIT_TAIL_MAX, &b));
	j = parse(buf_str(&b));
	T_CHECK(j && j->type == JSON_ARRAY);
	for (i = 0; j && i < j->n; i++) {
		const struct json *e = j->items[i];
		const char *op = jstr(e, "op"), *d = jstr(e, "decision"), *o = jstr(e, "outcome");
		const char *k = jstr(e, "signer_key_id");
		if (op && !strcmp(op, opname) && d && !strcmp(d, decision) && o && !strcmp(o, outcome) &&
		    (!signer || (k && !strcmp(k, signer))) && json_get(e, "guest_id") &&
		    json_get(e, "guest_id")->type == JSON_NULL)
			n++;
	}
	json_free(j);
	buf_free(&b);
	return n;
}

/* ---------------------------------------------------------- the loop */

static void wipe_loop(bool real)
{
	struct stack s;
	struct buf resp;
	struct json *env = NULL;
	const struct json *data, *pop;
	char body[200], line[400], durable[128], want[600], now_s[32];
	char *bundle = NULL, *b2 = NULL, *sent, *wiped_log = NULL;
	const char *const wipes[] = { "wipefs\n-a\n", "mkfs\n", NULL };
	struct recon_stats rs0, rs1;
	struct disk_pending pd;
	long status, t0, t_format;

	if (stack_open(&s, real) != 0) {
		fprintf(stderr, "  the stack could not be built\n");
		T_CHECK(0);
		stack_close(&s);
		return;
	}
	buf_init(&resp, LAPI_RESPONSE_MAX);
	snprintf(durable, sizeof(durable), "byid:%s", s.name);

	/* 1. the controller asks for a format of the data-bearing device */
	fakebin_clear(&s.fb);
	snprintf(body, sizeof(body), "{\"device\":\"%s\",\"fstype\":\"ext4\"}", s.dev);
	t0 = now_ms();
	status = lapi_post(&s, "/disks/format", body, &resp);
	t_format = now_ms() - t0;
	T_EQ_INT(status, 403);
	env = parse(buf_str(&resp));
	T_CHECK(env && env->type == JSON_OBJECT && env->n == 3);
	{
		const struct json *ok = json_get(env, "ok");
		const char *e = jstr(env, "error");
		T_CHECK(ok && ok->type == JSON_BOOL && !ok->b);
		T_CHECK(e && *e);
	}
	data = json_get(env, "data");
	T_CHECK(data && data->type == JSON_OBJECT && data->n == 6);
	{
		int64_t v = 0;
		bool fb = true, db = false;
		const struct json *f = json_get(data, "formatted"), *d = json_get(data, "data_bearing");
		T_OK(json_int_strict(json_get(data, "vmid"), &v));
		T_EQ_INT(v, VMID);
		T_EQ_STR(jstr(data, "device"), s.dev);
		T_OK(json_bool(f, &fb));
		T_CHECK(!fb && f && f->type == JSON_BOOL);
		T_OK(json_bool(d, &db));
		T_CHECK(db && d && d->type == JSON_BOOL);
		snprintf(want, sizeof(want), "partition table (%s)", s.pttype);
		T_EQ_STR(jstr(data, "reason"), want);
	}
	pop = json_get(data, "pending_op");
	T_CHECK(pop && pop->type == JSON_OBJECT && pop->n == 4);
	T_EQ_STR(jstr(pop, "op"), "storage_wipe");
	T_EQ_STR(jstr(pop, "host_scope"), HOST);
	T_EQ_STR(jstr(pop, "durable_id"), durable);
	T_EQ_STR(jstr(pop, "fstype"), "ext4");
	/* and byte for byte, in the controller's member order */
	snprintf(want, sizeof(want),
		 "\"data\":{\"vmid\":%d,\"device\":\"%s\",\"formatted\":false,\"data_bearing\":true,"
		 "\"reason\":\"partition table (%s)\",\"pending_op\":{\"op\":\"storage_wipe\",\"host_scope\":\"%s\","
		 "\"durable_id\":\"%s\",\"fstype\":\"ext4\"}}",
		 VMID, s.dev, s.pttype, HOST, durable);
	T_CHECK(contains(buf_str(&resp), want));
	T_OK(disk_pending_get(s.dk, durable, &pd));
	T_EQ_STR(pd.dev, s.dev);
	T_EQ_STR(pd.fstype, "ext4");
	T_EQ_INT(pd.vmid, VMID);
	T_CHECK(!pd.running);
	T_EQ_INT(fakebin_count(&s.fb, "lsblk\n"), 1);
	intact(&s, __LINE__);

	/* 2. the command the controller prints, run as printed */
	snprintf(line, sizeof(line), "felhom-opsign -op %s -host %s -durable-id %s", pop ? jstr(pop, "op") : "",
		 pop ? jstr(pop, "host_scope") : "", pop ? jstr(pop, "durable_id") : "");
	snprintf(want, sizeof(want), "felhom-opsign -op storage_wipe -host %s -durable-id %s", HOST, durable);
	T_EQ_STR(line, want);
	json_free(env);
	env = NULL;
	T_EQ_INT(opsign_as_printed(line, &bundle), 0);
	T_CHECK(bundle_ok(bundle));

	/* 5. refusals first, while the pending op exists: each leaves the
	 * device intact and the pending op unclaimed */
	fakebin_clear(&s.fb);
	{
		char other_durable[128];
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", other_durable, NULL };
		snprintf(other_durable, sizeof(other_durable), "byid:%s", s.other_name);
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-other-durable", b2, "failed", "not_found", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		const char *a[] = { "-op", "storage_wipe", "-host", "host-other", "-durable-id", durable, NULL };
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-wrong-host", b2, "rejected", "target", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, "-now", now_s,
				    "-ttl", "15m", NULL };
		snprintf(now_s, sizeof(now_s), "%lld", (long long)time(NULL) - 7200);
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-expired", b2, "rejected", "expired", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		/* a lifetime over authz.max_lifetime_seconds (3600) */
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, "-ttl", "2h", NULL };
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-too-long", b2, "rejected", "expired", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, "-now", now_s, NULL };
		snprintf(now_s, sizeof(now_s), "%lld", (long long)time(NULL) + 1800);
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-not-yet", b2, "rejected", "not_yet_valid", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, "-key", g_mallory, NULL };
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-unknown-signer", b2, "rejected", "unknown_signer", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, "-param", "fstype=xfs",
				    NULL };
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-other-fstype", b2, "failed", "binding_mismatch", __LINE__));
		free(b2);
		intact(&s, __LINE__);
	}
	{
		/* the by-id name now names another device (other size and serial) */
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, NULL };
		byid_link(&s, s.name, s.other);
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-moved-byid", b2, "failed", "binding_mismatch", __LINE__));
		free(b2);
		byid_link(&s, s.name, s.dev);
		intact(&s, __LINE__);
		if (s.real) {
			char *b = blkid_real(s.other);
			T_CHECK(b && !strstr(b, "TYPE="));   /* the other device untouched too */
			free(b);
		} else {
			T_CHECK(!fakebin_fx_exists(&s.fb, "blkid_dev_sdb"));
		}
	}
	T_EQ_INT(audit_count_of(&s, "storage_wipe", "signed", "failed", "ops-anna"), 3);
	T_EQ_INT(audit_count_of(&s, "unknown", "rejected", "rejected", NULL), 5);   /* unverified: op not trusted */
	T_EQ_INT(audit_count_of(&s, "storage_wipe", "signed", "executed", NULL), 0);

	/* 3. the operator's bundle: wiped exactly once */
	fakebin_clear(&s.fb);
	t0 = now_ms();
	sent = round_trip(&s, "op-wipe-1", bundle, "executed", "", __LINE__);
	printf("wipe loop (%s): format refused in %ld ms; offer, fetch, verify, wipe, result delivered in %ld ms\n",
	       real ? "loop devices" : "fake tools", t_format, now_ms() - t0);
	T_CHECK(contains(sent, "{\"id\":\"op-wipe-1\",\"outcome\":\"executed\",\"reason\":\"\"}"));
	free(sent);
	wiped_log = fakebin_select(&s.fb, wipes);
	if (s.real)
		snprintf(want, sizeof(want), "wipefs\n-a\n%s\n--\nmkfs\n-t\next4\n%s\n--\n", s.dev, s.dev);
	else
		snprintf(want, sizeof(want),
			 "wipefs\n-a\n/dev/sdd1\n--\nwipefs\n-a\n/dev/sdd\n--\nmkfs\n-t\next4\n/dev/sdd\n--\n");
	T_EQ_STR(wiped_log, want);
	if (s.real) {
		char *b = blkid_real(s.dev);
		T_CHECK(contains(b, "TYPE=ext4"));
		T_CHECK(b && !strstr(b, "PTTYPE"));
		free(b);
	} else {
		char p[400], *b;
		snprintf(p, sizeof(p), "%s/blkid_dev_sdd", s.fb.fx);
		b = t_slurp(p, NULL);
		T_CHECK(contains(b, "TYPE=ext4\nUUID=" UUID_NEW "\n"));
		T_CHECK(b && !strstr(b, "PTTYPE"));
		T_CHECK(!fakebin_fx_exists(&s.fb, "wipefs_dev_sdd1") && !fakebin_fx_exists(&s.fb, "blkid_dev_sdd1"));
		free(b);
	}
	T_ERR(disk_pending_get(s.dk, durable, &pd), FH_ERR_NOT_FOUND);
	T_EQ_INT(audit_count_of(&s, "storage_wipe", "signed", "executed", "ops-anna"), 1);
	{
		/* the hub stopped offering it once its result arrived */
		char ops[4096];
		T_EQ_INT(hubsim_control(&H, "GET", "/signed-ops", NULL, ops, sizeof(ops)), 200);
		T_CHECK(contains(ops, "\"ops\":[]"));
	}

	/* 4. replays: nothing runs again */
	recon_stats(s.r, &rs0);
	sent = round_trip(&s, "op-wipe-1", bundle, "executed", "", __LINE__);
	free(sent);
	recon_stats(s.r, &rs1);
	T_EQ_INT(rs1.replayed, rs0.replayed + 1);
	T_EQ_INT(rs1.executed, rs0.executed);
	free(round_trip(&s, "op-wipe-1-again", bundle, "rejected", "replay", __LINE__));
	{
		/* a fresh signature for the same disk: nothing is pending any more */
		const char *a[] = { "-op", "storage_wipe", "-host", HOST, "-durable-id", durable, NULL };
		T_EQ_INT(opsign(a, &b2), 0);
		free(round_trip(&s, "op-wipe-2", b2, "failed", "not_found", __LINE__));
		free(b2);
	}
	{
		char *again = fakebin_select(&s.fb, wipes);
		T_EQ_STR(again, wiped_log);
		free(again);
	}
	T_EQ_INT(audit_count_of(&s, "storage_wipe", "signed", "executed", NULL), 1);

	free(wiped_log);
	free(bundle);
	buf_free(&resp);
	stack_close(&s);
}

T_TEST(t_wipe_loop_fake_tools)
{
	wipe_loop(false);
}

T_TEST(t_wipe_loop_loop_devices)
{
	printf("loop-device wipe loop: running on %s %s\n", g_loop.dev[0], g_loop.dev[1]);
	wipe_loop(true);
}

/* ------------------------------------------------------------ the daemon */

/* build/felhom-agent with a signed storage_wipe for a durable id nothing
 * is pending for: the daemon hands it to disk management, which refuses. */
T_TEST(t_daemon_routes_storage_wipe)
{
	static const char *const pass[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", NULL };
	char dir[256], state[300], cfgp[300], keyf[300], tokf[300], outp[300], errp[300], cfgtxt[2048];
	char o[32] = "", r[128] = "", *env[40], *bundle = NULL, *log;
	struct fakebin fb;
	posix_spawn_file_actions_t fa;
	const char *argv[] = { g_agent, "--config", cfgp, NULL };
	const char *a[] = { "-op", "storage_wipe", "-host", DAEMON_HOST, "-durable-id", "byid:ata-NOTHING_PENDING", NULL };
	size_t ne = 0, i;
	pid_t pid = 0;
	long end, t0;
	int n = 0, st = -1;

	t_tmpdir(dir, sizeof(dir));
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(cfgp, sizeof(cfgp), "%s/agent.json", dir);
	snprintf(keyf, sizeof(keyf), "%s/hub.key", dir);
	snprintf(tokf, sizeof(tokf), "%s/token", P.dir);
	snprintf(outp, sizeof(outp), "%s/stdout", dir);
	snprintf(errp, sizeof(errp), "%s/stderr", dir);
	T_CHECK(fakebin_init(&fb, dir) == 0);
	/* every disk tool fails or finds nothing */
	T_CHECK(fakebin_script(&fb, "lsblk", "exit 1") == 0);
	T_CHECK(fakebin_script(&fb, "wipefs", "exit 1") == 0);
	T_CHECK(fakebin_script(&fb, "blkid", "exit 2") == 0);
	T_CHECK(fakebin_script(&fb, "cmp", "exit 2") == 0);
	T_CHECK(fakebin_script(&fb, "mkfs", "exit 1") == 0);
	T_CHECK(t_write_file(keyf, H.key, 0600) == 0);
	snprintf(cfgtxt, sizeof(cfgtxt),
		 "{\"privileged\":{\"mode\":\"direct\",\"path\":\"%s\"},\"authz\":{\"signers\":[\"%s\"]},"
		 "\"localapi\":{\"listen\":\"\"}}",
		 fb.bin, g_signer);
	T_CHECK(t_write_file(cfgp, cfgtxt, 0600) == 0);

#define ENV(k, v) do { if (asprintf(&env[ne], "%s=%s", (k), (v)) < 0) abort(); ne++; } while (0)
	ENV("FELHOM_AGENT_PROXMOX_ENDPOINT", P.endpoint);
	ENV("FELHOM_AGENT_PROXMOX_NODE", "pve");
	ENV("FELHOM_AGENT_PROXMOX_TOKEN_FILE", tokf);
	ENV("FELHOM_AGENT_PROXMOX_TLS_FINGERPRINT", P.fingerprint);
	ENV("FELHOM_AGENT_HUB_URL", H.url);
	ENV("FELHOM_AGENT_HUB_HOST_ID", DAEMON_HOST);
	ENV("FELHOM_AGENT_HUB_API_KEY_FILE", keyf);
	ENV("FELHOM_AGENT_HUB_TLS_FINGERPRINT", H.fingerprint);
	ENV("FELHOM_AGENT_STATE_DIR", state);
	ENV("FELHOM_AGENT_LOG_LEVEL", "debug");
	ENV("FELHOM_AGENT_HUB_POLL_SECONDS", "1");
	ENV("FELHOM_AGENT_HUB_MIN_INTERVAL_SECONDS", "1");
	ENV("FELHOM_AGENT_HUB_TIMEOUT_SECONDS", "5");
	for (i = 0; pass[i]; i++)
		if (getenv(pass[i]))
			ENV(pass[i], getenv(pass[i]));
#undef ENV
	env[ne] = NULL;

	T_EQ_INT(hubsim_control(&H, "POST", "/reset", "{\"envelope\":true}", NULL, 0), 200);
	T_EQ_INT(hubsim_envelope(&H, "{\"poll_interval_seconds\":1}"), 200);
	T_EQ_INT(opsign(a, &bundle), 0);
	hub_offer("op-daemon-1", bundle);

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_APPEND, 0600);
	t0 = now_ms();
	T_EQ_INT(posix_spawn(&pid, g_agent, &fa, NULL, (char *const *)(uintptr_t)argv, env), 0);
	posix_spawn_file_actions_destroy(&fa);

	/* the op result arrives at the hub */
	for (end = now_ms() + 30000; now_ms() < end; sleep_ms(100)) {
		n = hub_results("op-daemon-1", o, sizeof(o), r, sizeof(r));
		if (n > 0)
			break;
	}
	T_EQ_INT(n, 1);
	printf("daemon: op result at the hub %ld ms after the agent was started\n", now_ms() - t0);
	T_EQ_STR(o, "failed");
	T_EQ_STR(r, "not_found");          /* disk management's answer, not "unsupported_op" */
	/* the disk module's reason reaches the hub in the report's audit tail */
	{
		bool seen = false;
		char *rep = malloc(1 << 22);
		for (end = now_ms() + 15000; rep && !seen && now_ms() < end; sleep_ms(200))
			seen = hubsim_control(&H, "GET", "/last-report", NULL, rep, 1 << 22) == 200 &&
			       strstr(rep, "no pending format refusal for byid:ata-NOTHING_PENDING") &&
			       strstr(rep, "\"op\":\"storage_wipe\"");
		T_CHECK(seen);
		T_CHECK(rep && !strstr(rep, "no host executor"));
		free(rep);
	}
	if (pid > 0) {
		kill(pid, SIGTERM);
		for (end = now_ms() + 20000; now_ms() < end; sleep_ms(20)) {
			int ws;
			if (waitpid(pid, &ws, WNOHANG) == pid) {
				st = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
				pid = 0;
				break;
			}
		}
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	T_EQ_INT(st, 0);
	T_EQ_INT(fakebin_count(&fb, "wipefs\n-a\n"), 0);
	T_EQ_INT(fakebin_count(&fb, "mkfs\n"), 0);
	log = t_slurp(errp, NULL);
	T_CHECK(contains(log, "event=recon.signed_ops"));
	T_CHECK(log && !strstr(log, H.key));
	if (n != 1)
		fprintf(stderr, "  the agent's log:\n%s\n", log ? log : "");
	free(log);
	free(bundle);
	for (i = 0; i < ne; i++)
		free(env[i]);
	{
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
}

/* ---------------------------------------------------------------- main */

static char *keygen(const char *path, const char *comment)
{
	const char *argv[] = { "/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path, NULL };
	char pub[400], *s;

	if (run(argv, NULL) != 0)
		return NULL;
	snprintf(pub, sizeof(pub), "%s.pub", path);
	s = t_slurp(pub, NULL);
	if (s)
		chomp(s);
	return s;
}

/* Attaches the two images when running as root where losetup works; why
 * says otherwise. */
static bool loop_setup(char *why, size_t whylen)
{
	static const long sizes[2] = { 64L << 20, 32L << 20 };
	int i;

	if (geteuid() != 0) {
		snprintf(why, whylen, "not root");
		return false;
	}
	{
		const char *argv[] = { "/usr/sbin/losetup", "-f", NULL };
		if (run(argv, NULL) != 0) {
			snprintf(why, whylen, "losetup -f fails");
			return false;
		}
	}
	for (i = 0; i < 2; i++) {
		FILE *f;
		char *out = NULL;
		const char *argv[] = { "/usr/sbin/losetup", "-f", "--show", g_loop.img[i], NULL };

		snprintf(g_loop.img[i], sizeof(g_loop.img[i]), "%s/loop%d.img", g_dir, i);
		f = fopen(g_loop.img[i], "w");
		if (!f || ftruncate(fileno(f), sizes[i]) != 0) {
			if (f)
				fclose(f);
			snprintf(why, whylen, "cannot make an image");
			return false;
		}
		if (i == 0) {
			/* an MBR with one Linux partition and nothing else */
			unsigned char mbr[512] = { 0 };
			mbr[446 + 4] = 0x83;
			mbr[446 + 9] = 0x08;            /* start LBA 2048 */
			mbr[446 + 14] = 0x01;           /* 65536 sectors */
			mbr[510] = 0x55;
			mbr[511] = 0xaa;
			if (fwrite(mbr, 1, sizeof(mbr), f) != sizeof(mbr)) {
				fclose(f);
				snprintf(why, whylen, "cannot write the MBR");
				return false;
			}
		}
		fclose(f);
		if (run(argv, &out) != 0 || strncmp(out, "/dev/loop", 9) != 0) {
			free(out);
			snprintf(why, whylen, "losetup cannot attach an image here");
			return false;
		}
		chomp(out);
		snprintf(g_loop.dev[i], sizeof(g_loop.dev[i]), "%s", out);
		free(out);
	}
	g_loop.ok = true;
	return true;
}

static void loop_teardown(void)
{
	int i;

	for (i = 0; i < 2; i++)
		if (g_loop.dev[i][0]) {
			const char *argv[] = { "/usr/sbin/losetup", "-d", g_loop.dev[i], NULL };
			if (run(argv, NULL) != 0)
				fprintf(stderr, "cannot detach %s\n", g_loop.dev[i]);
			g_loop.dev[i][0] = '\0';
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
	char ssh[320], key[400], why[128] = "", *pub, *mal;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t_tmpdir(g_dir, sizeof(g_dir));
	snprintf(g_home, sizeof(g_home), "%s/home", g_dir);
	snprintf(g_tmp, sizeof(g_tmp), "%s/tmp", g_dir);
	snprintf(ssh, sizeof(ssh), "%s/.ssh", g_home);
	snprintf(key, sizeof(key), "%s/id_ed25519", ssh);
	snprintf(g_mallory, sizeof(g_mallory), "%s/mallory", g_dir);
	snprintf(g_opsign, sizeof(g_opsign), "%s/felhom-opsign", t_build_dir());
	snprintf(g_agent, sizeof(g_agent), "%s/felhom-agent", t_build_dir());
	if (mkdir(g_home, 0700) || mkdir(ssh, 0700) || mkdir(g_tmp, 0700)) {
		perror("mkdir");
		return 1;
	}
	/* the operator's default identity, and a key nobody listed */
	pub = keygen(key, "anna");
	mal = keygen(g_mallory, "mallory");
	if (!pub || !mal || asprintf(&g_signer, "operational ops-anna %s", pub) < 0) {
		fprintf(stderr, "test_wipe_loop: ssh-keygen failed\n");
		printf("# passed 0 failed 1\n");
		return 1;
	}
	free(pub);
	free(mal);
	if (sim_start(&P, NULL) || hubsim_start(&H, NULL)) {
		fprintf(stderr, "test_wipe_loop: cannot start the simulators\n");
		sim_stop(&P);
		printf("# passed 0 failed 1\n");
		return 1;
	}

	T_RUN(t_wipe_loop_fake_tools);
	if (loop_setup(why, sizeof(why)))
		T_RUN(t_wipe_loop_loop_devices);
	else
		printf("loop-device wipe loop: not run (%s)\n", why);
	loop_teardown();
	T_RUN(t_daemon_routes_storage_wipe);

	hubsim_stop(&H);
	sim_stop(&P);
	free(g_signer);
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rc = t_done();
	curl_global_cleanup();
	return rc;
}
