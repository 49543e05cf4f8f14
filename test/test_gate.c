/* test_gate.c — the reversibility gate: the classifier table, role scoping
 * and binding as pure functions, then the adversarial matrix end to end
 * (hub document -> recon_ops_parse -> recon_signed_op -> the real SSHSIG
 * verifier -> gate -> executor -> test/pvesim), with signatures minted here
 * by `ssh-keygen -Y sign -n felhom-op-v1`. The simulator's per-path
 * request counts prove what was (not) executed. Also: stop/shutdown of a
 * guest the agent did not create, backup_prune (retention source, golden
 * archives), host-executed storage_wipe through a fake executor, and the
 * move of the rotated signer set from an earlier version's state. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "err.h"
#include "gate.h"
#include "harness.h"
#include "sigtest.h"
#include "idem.h"
#include "jrnl.h"
#include "json.h"
#include "nonce.h"
#include "opblob.h"
#include "outbox.h"
#include "recon.h"
#include "sig.h"
#include "sim.h"
#include "store.h"

#define HOST "host-7f3a"

static struct sim S;
static char g_dir[256];
static const char *const run_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
static unsigned g_seq;
static char *L_OPS, *L_REC, *L_CARL;     /* signer lines */

/* ---------------------------------------------------------------- keys */


static void keygen(const char *name, const char *type, const char *bits)
{
	sigtest_keygen(g_dir, name, type, bits);
}

static char *signer_line(const char *role, const char *id, const char *name)
{
	char *p = sigtest_xprintf("%s/%s.pub", g_dir, name), *s = t_slurp(p, NULL), *sp, *l;

	if (!s)
		abort();
	if ((sp = strchr(s, '\n')) != NULL)
		*sp = '\0';
	l = sigtest_xprintf("%s %s %s", role, id, s);
	free(s);
	free(p);
	return l;
}

static char *fresh_nonce(void)
{
	return sigtest_xprintf("nonce-%08u-%ld-abcdef", ++g_seq, (long)getpid());
}

/* Canonical blob text for an op. guest 0 = null. params: canonical JSON object text. */
static char *blob_text(const char *op, const char *host, int64_t guest, const char *params_json, const char *nonce,
		       int64_t issued, int64_t expires)
{
	char g[24];

	if (guest)
		snprintf(g, sizeof(g), "%" PRId64, guest);
	else
		snprintf(g, sizeof(g), "null");
	return sigtest_xprintf("{\"expires_at\":%" PRId64 ",\"guest_id\":%s,\"host_id\":\"%s\",\"issued_at\":%" PRId64
		       ",\"key_id\":\"test\",\"nonce\":\"%s\",\"op\":\"%s\",\"params\":%s,\"v\":1}",
		       expires, g, host, issued, nonce, op, params_json);
}

static char *sign(const char *key, const char *blob)
{
	char *kp = sigtest_xprintf("%s/%s", g_dir, key), *armor = sigtest_sign(g_dir, kp, blob);

	free(kp);
	return armor;
}


/* One signed-ops entry (action_json NULL: none). */
static void op_entry(struct buf *doc, const char *id, const char *blob, const char *armor, const char *action_json)
{
	buf_printf(doc, "%s{\"id\":\"%s\"", doc->len > 8 ? "," : "", id);
	if (blob) {
		buf_appendz(doc, ",\"blob_b64\":\"");
		sigtest_b64(blob, doc);
		buf_appendz(doc, "\",\"signature\":");
		sigtest_json_quote(armor, doc);
	}
	if (action_json)
		buf_printf(doc, ",\"action\":%s", action_json);
	buf_appendz(doc, "}");
}

/* ---------------------------------------------------------- the fixture */

struct fx {
	char dir[300];
	struct store *st;
	struct gate *g;
	struct recon *r;
};

static struct pve_opts pve_opts_of(void)
{
	struct pve_opts o;

	memset(&o, 0, sizeof(o));
	o.endpoint = S.endpoint;
	o.node = "pve";
	o.token = S.token;
	o.tls_fingerprint = S.fingerprint;
	o.request_timeout_ms = 5000;
	o.poll_initial_ms = 20;
	o.poll_max_ms = 100;
	o.task_timeout_ms = 20000;
	return o;
}

/* What the next fx_open gives the gate and the engine. */
static const char *const *g_golden;
static size_t g_ngolden;

/* The fake host executor: counts its calls, answers g_host.rc. */
static struct {
	pthread_mutex_t mu;
	int calls, rc;
	bool use;                    /* fx_open installs it */
	bool last_signed;
	char last_durable[256], last_fstype[64], why[64];
} g_host = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int fake_exec_host(void *ctx, const struct gate_action *a, const struct sig_verified *vd, char *why,
			  size_t whylen)
{
	const struct opblob_param *d = gate_action_param(a, "durable_id"), *fs = gate_action_param(a, "fstype");
	int rc;

	T_CHECK(ctx == &g_host);
	pthread_mutex_lock(&g_host.mu);
	g_host.calls++;
	g_host.last_signed = vd != NULL;
	snprintf(g_host.last_durable, sizeof(g_host.last_durable), "%.200s", d ? d->str : "");
	snprintf(g_host.last_fstype, sizeof(g_host.last_fstype), "%.60s", fs ? fs->str : "");
	rc = g_host.rc;
	if (rc)
		snprintf(why, whylen, "%s", g_host.why);
	pthread_mutex_unlock(&g_host.mu);
	return rc;
}

static int host_calls(void)
{
	int n;

	pthread_mutex_lock(&g_host.mu);
	n = g_host.calls;
	pthread_mutex_unlock(&g_host.mu);
	return n;
}

static int fx_open(struct fx *f, const char *const *signers, size_t n)
{
	struct store_opts so;
	struct gate_opts go;
	struct recon_opts ro;
	struct pve_opts po = pve_opts_of();
	char err[512] = "";

	memset(&so, 0, sizeof(so));
	so.dir = f->dir;
	if (store_open(&so, &f->st))
		return -1;
	memset(&go, 0, sizeof(go));
	go.st = f->st;
	go.signers = signers;
	go.nsigners = n;
	go.host_id = HOST;
	go.max_lifetime_seconds = 3600;
	go.clock_skew_seconds = 60;
	go.golden_archives = g_golden;
	go.ngolden = g_ngolden;
	if (gate_new(&go, &f->g, err, sizeof(err))) {
		printf("  gate_new: %s\n", err);
		return -1;
	}
	memset(&ro, 0, sizeof(ro));
	ro.st = f->st;
	ro.gate = f->g;
	ro.pve = &po;
	if (g_host.use) {
		ro.exec_host = fake_exec_host;
		ro.exec_host_ctx = &g_host;
	}
	ro.workers = 3;
	ro.lock_wait_ms = 5000;
	ro.post_retry_ms = 50;
	ro.post_retries = 3;
	if (recon_new(&ro, &f->r, err, sizeof(err))) {
		printf("  recon_new: %s\n", err);
		return -1;
	}
	return 0;
}

static void fx_close(struct fx *f)
{
	recon_free(f->r);
	gate_free(f->g);
	store_close(f->st);
	f->r = NULL;
	f->g = NULL;
	f->st = NULL;
}

static int fx_new(struct fx *f, const char *const *signers, size_t n)
{
	static unsigned k;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/db-%u", g_dir, ++k);
	return fx_open(f, signers, n);
}

/* Feeds a signed-ops document and waits for every job it started. */
static void feed(struct fx *f, const char *doc)
{
	struct recon_op_entry *e = NULL;
	size_t n = 0, i;
	char why[256];
	enum task_outcome o;

	T_OK(recon_ops_parse(doc, strlen(doc), &e, &n, why, sizeof(why)));
	for (i = 0; i < n; i++)
		T_OK(recon_signed_op(f->r, &e[i], (int64_t)time(NULL), &o));
	recon_ops_free(e, n);
	recon_wait_idle(f->r);
}

static void feed1(struct fx *f, const char *id, const char *blob, const char *armor, const char *action)
{
	struct buf doc;

	buf_init(&doc, 1 << 20);
	buf_appendz(&doc, "{\"ops\":[");
	op_entry(&doc, id, blob, armor, action);
	buf_appendz(&doc, "]}");
	feed(f, buf_str(&doc));
	buf_free(&doc);
}

/* Stored outcome of op id, its reason in reason[64]. */
static int outcome(struct fx *f, const char *id, char *reason)
{
	struct idem_rec ir;
	char key[200];

	snprintf(key, sizeof(key), "op:%s", id);
	reason[0] = '\0';
	if (idem_get(f->st, key, &ir))
		return TASK_OUT_NONE;
	snprintf(reason, 64, "%s", ir.reason);
	return (int)ir.outcome;
}

/* The op-results the outbox holds for id (last one), "" if none. */
static void result_of(struct fx *f, const char *id, char *out, size_t n)
{
	struct buf b;
	uint64_t through;
	char needle[200];
	const char *p, *q;

	out[0] = '\0';
	buf_init(&b, 1 << 20);
	if (outbox_batch(f->st, OUTBOX_BATCH_MAX, &b, &through) == 0) {
		snprintf(needle, sizeof(needle), "{\"id\":\"%s\"", id);
		p = strstr(buf_str(&b), needle);
		if (p && (q = strchr(p, '}')) != NULL)
			snprintf(out, n, "%.*s", (int)(q - p + 1), p);
	}
	buf_free(&b);
}

static long count(const char *method_path)
{
	return sim_count_path(&S, method_path);
}

static bool guest_exists(int vmid)
{
	char *big = malloc(1 << 20), needle[32];
	bool has = false;

	if (big && sim_control(&S, "GET", "/guests", NULL, big, 1 << 20) == 200) {
		snprintf(needle, sizeof(needle), "\"vmid\":%d,", vmid);
		has = strstr(big, needle) != NULL;
	}
	free(big);
	return has;
}

static char *mkblob(const char *op, const char *host, int64_t guest, const char *params, int64_t issued,
		    int64_t expires, char **nonce_out)
{
	char *n = fresh_nonce(), *b = blob_text(op, host, guest, params, n, issued, expires);

	if (nonce_out)
		*nonce_out = n;
	else
		free(n);
	return b;
}

/* Signs blob with key, feeds it as op id (action NULL: the blob alone) and
 * returns the op's stored outcome, its reason in reason[64]. Frees blob. */
static int run_signed(struct fx *f, const char *id, const char *key, char *blob, const char *action, char *reason)
{
	char *s = sign(key, blob);

	feed1(f, id, blob, s, action);
	free(blob);
	free(s);
	return outcome(f, id, reason);
}

/* Resets job to one step, op on guest from source, as job id. */
static void job_one(struct recon_job *job, enum jrnl_source source, const char *id, const char *op, int64_t guest)
{
	memset(job, 0, sizeof(*job));
	job->source = source;
	snprintf(job->job_id, sizeof(job->job_id), "%s", id);
	job->nsteps = 1;
	T_OK(gate_action_init(&job->steps[0], op, HOST, guest));
}

/* ================================================================ pure */

T_TEST(t_classifier_table)
{
	struct gate_action a;
	struct gate_prov p;
	enum gate_class c;
	const char *why;
	static const struct { const char *op; enum gate_class want; } plain[] = {
		{ "start", GATE_BENIGN },         { "stop", GATE_DESTRUCTIVE },
		{ "shutdown", GATE_DESTRUCTIVE }, { "snapshot", GATE_BENIGN },
		{ "backup_prune", GATE_DESTRUCTIVE },
		{ "vzdump", GATE_BENIGN },        { "destroy", GATE_DESTRUCTIVE },
		{ "rollback", GATE_DESTRUCTIVE }, { "delete_snapshot", GATE_DESTRUCTIVE },
		{ "storage_wipe", GATE_DESTRUCTIVE }, { "disk_shrink", GATE_DESTRUCTIVE },
		{ "signer_rotate", GATE_DESTRUCTIVE }, { "frobnicate", GATE_DESTRUCTIVE },
		{ "restore", GATE_BENIGN },
	};
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		T_OK(gate_action_init(&a, plain[i].op, HOST, 101));
		T_OK(gate_classify(&a, NULL, &c, &why));
		if (c != plain[i].want)
			t_failf(__FILE__, __LINE__, "%s classified %s", plain[i].op, gate_class_name(c));
	}
	/* restore over an existing guest (force) */
	T_OK(gate_action_init(&a, "restore", HOST, 101));
	T_OK(gate_action_bool(&a, "force", true));
	T_OK(gate_classify(&a, NULL, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	/* config: data keys are destructive, others benign */
	T_OK(gate_action_init(&a, "set_config", HOST, 101));
	T_OK(gate_action_int(&a, "cores", 2));
	T_OK(gate_action_int(&a, "memory", 2048));
	T_OK(gate_classify(&a, NULL, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	T_OK(gate_action_str(&a, "rootfs", "local-lvm:vm-101-disk-0,size=4G"));
	T_OK(gate_classify(&a, NULL, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	T_OK(gate_action_init(&a, "set_config", HOST, 101));
	T_OK(gate_action_str(&a, "delete", "description,mp0"));
	T_OK(gate_classify(&a, NULL, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	T_OK(gate_action_init(&a, "set_config", HOST, 101));
	T_OK(gate_action_str(&a, "delete", "description,onboot"));
	T_OK(gate_classify(&a, NULL, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	/* provenance from the journal makes a destroy / rollback benign */
	memset(&p, 0, sizeof(p));
	T_OK(gate_action_init(&a, "destroy", HOST, 150));
	p.created_in_job = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	memset(&p, 0, sizeof(p));
	p.scratch = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	p.own_snapshot = true;
	p.scratch = false;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);              /* a snapshot fact does not excuse a destroy */
	T_OK(gate_action_init(&a, "rollback", HOST, 150));
	T_OK(gate_action_str(&a, "name", "s1"));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	/* stop / shutdown: only a guest an agent job created (any job), or a
	 * scratch guest */
	memset(&p, 0, sizeof(p));
	T_OK(gate_action_init(&a, "stop", HOST, 150));
	p.own_snapshot = true;
	p.retention = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	memset(&p, 0, sizeof(p));
	p.created_by_agent = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	T_OK(gate_action_init(&a, "shutdown", HOST, 150));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	memset(&p, 0, sizeof(p));
	p.scratch = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	memset(&p, 0, sizeof(p));
	p.created_in_job = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	/* ... and created_by_agent does not excuse a destroy from another job */
	memset(&p, 0, sizeof(p));
	p.created_by_agent = true;
	T_OK(gate_action_init(&a, "destroy", HOST, 150));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	/* backup_prune: the engine's retention only, never a golden archive */
	T_OK(gate_action_init(&a, "backup_prune", HOST, 150));
	T_OK(gate_action_str(&a, "storage", "local"));
	T_OK(gate_action_str(&a, "volid", "local:backup/vzdump-lxc-150-2025_01_01-00_00_00.tar.zst"));
	memset(&p, 0, sizeof(p));
	p.created_by_agent = p.created_in_job = p.scratch = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	memset(&p, 0, sizeof(p));
	p.retention = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	p.golden = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	T_EQ_STR(why, "names a golden archive");
	T_OK(gate_action_init(&a, "backup_prune", HOST, 0));
	p.golden = false;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);            /* an archive belongs to a guest */
	/* a golden archive: only a restore without force may name it */
	memset(&p, 0, sizeof(p));
	p.golden = true;
	T_OK(gate_action_init(&a, "restore", HOST, 160));
	T_OK(gate_action_str(&a, "archive", "local:backup/golden.tar.zst"));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_BENIGN);
	T_OK(gate_action_bool(&a, "force", true));
	p.created_in_job = true;
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	T_OK(gate_action_init(&a, "vzdump", HOST, 160));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	/* nothing excuses a rotation or a wipe */
	memset(&p, 1, sizeof(p));
	p.created_in_job = p.scratch = p.own_snapshot = true;
	T_OK(gate_action_init(&a, "signer_rotate", HOST, 0));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	T_OK(gate_action_init(&a, "storage_wipe", HOST, 0));
	T_OK(gate_classify(&a, &p, &c, &why));
	T_EQ_INT(c, GATE_DESTRUCTIVE);
	/* an op name a blob cannot carry is no action */
	T_ERR(gate_action_init(&a, "Destroy", HOST, 101), FH_ERR_INVAL);
	T_ERR(gate_action_init(&a, "destroy", HOST, 5), FH_ERR_INVAL);
}

static void fake_vd(struct sig_verified *vd, enum sig_role role, const char *op, int64_t guest)
{
	memset(vd, 0, sizeof(*vd));
	vd->role = role;
	snprintf(vd->signer_id, sizeof(vd->signer_id), "%s", role == SIG_ROLE_RECOVERY ? "rec-bob" : "ops-anna");
	vd->op.v = 1;
	snprintf(vd->op.op, sizeof(vd->op.op), "%s", op);
	snprintf(vd->op.host_id, sizeof(vd->op.host_id), "%s", HOST);
	vd->op.has_guest = guest != 0;
	vd->op.guest_id = guest;
}

T_TEST(t_decide_roles_and_binding)
{
	struct gate_action a;
	struct sig_verified vd;
	struct gate_decision d;

	T_OK(gate_action_init(&a, "destroy", HOST, 111));
	T_OK(gate_decide(&a, NULL, NULL, &d));
	T_CHECK(!d.allowed);
	T_EQ_INT(d.outcome, TASK_OUT_PENDING_SIGNATURE);

	fake_vd(&vd, SIG_ROLE_OPERATIONAL, "destroy", 111);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_CHECK(d.allowed);
	T_EQ_STR(d.signer, "ops-anna");

	fake_vd(&vd, SIG_ROLE_RECOVERY, "destroy", 111);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_CHECK(!d.allowed);
	T_EQ_INT(d.reason, FH_ERR_SIG_ROLE_DENIED);
	T_EQ_STR(fh_strerror(d.reason), "role_denied");

	/* a recovery key may sign a rotation, and only that */
	T_OK(gate_action_init(&a, "signer_rotate", HOST, 0));
	fake_vd(&vd, SIG_ROLE_RECOVERY, "signer_rotate", 0);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_CHECK(d.allowed);
	fake_vd(&vd, SIG_ROLE_OPERATIONAL, "signer_rotate", 0);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_CHECK(d.allowed);
	/* even a benign op signed by a recovery key is refused */
	T_OK(gate_action_init(&a, "start", HOST, 101));
	fake_vd(&vd, SIG_ROLE_RECOVERY, "start", 101);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_EQ_INT(d.reason, FH_ERR_SIG_ROLE_DENIED);

	/* binding: guest, op, params, host */
	T_OK(gate_action_init(&a, "destroy", HOST, 111));
	fake_vd(&vd, SIG_ROLE_OPERATIONAL, "destroy", 112);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_EQ_INT(d.reason, FH_ERR_SIG_BINDING);
	fake_vd(&vd, SIG_ROLE_OPERATIONAL, "stop", 111);
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_EQ_INT(d.reason, FH_ERR_SIG_BINDING);
	fake_vd(&vd, SIG_ROLE_OPERATIONAL, "destroy", 111);
	vd.op.nparams = 1;
	snprintf(vd.op.params[0].key, sizeof(vd.op.params[0].key), "purge");
	vd.op.params[0].type = OPBLOB_BOOL;
	vd.op.params[0].b = true;
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_EQ_INT(d.reason, FH_ERR_SIG_BINDING);
	T_OK(gate_action_bool(&a, "purge", true));
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_CHECK(d.allowed);
	fake_vd(&vd, SIG_ROLE_OPERATIONAL, "destroy", 111);
	snprintf(vd.op.host_id, sizeof(vd.op.host_id), "host-other");
	T_OK(gate_action_init(&a, "destroy", HOST, 111));
	T_OK(gate_decide(&a, NULL, &vd, &d));
	T_EQ_INT(d.reason, FH_ERR_SIG_BINDING);
}

T_TEST(t_fingerprint_matches_ssh_keygen)
{
	char fp[128], *pub = sigtest_xprintf("%s/anna.pub", g_dir), *out = NULL, *nl;
	const char *argv[] = { "/usr/bin/ssh-keygen", "-l", "-E", "sha256", "-f", pub, NULL };

	T_OK(gate_fingerprint(L_OPS, fp, sizeof(fp)));
	T_EQ_INT(t_run_cmd(argv, run_env, &out, NULL), 0);
	T_CHECK(out && strstr(out, fp) != NULL);
	nl = out ? strchr(out, '\n') : NULL;
	if (nl)
		*nl = '\0';
	free(out);
	free(pub);
	T_ERR(gate_fingerprint("operational x ssh-ed25519", fp, sizeof(fp)), FH_ERR_CONFIG);
}

/* ===================================================== the matrix (e2e) */

static const char *signers2[2];

T_TEST(t_unsigned_destructive_job_is_pending)
{
	struct fx f;
	char reason[64], res[256];
	long before = count("DELETE /api2/json/nodes/pve/lxc/102");

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	feed1(&f, "job-unsigned-destroy", NULL, NULL, "{\"op\":\"destroy\",\"guest_id\":102,\"params\":{}}");
	result_of(&f, "job-unsigned-destroy", res, sizeof(res));
	T_EQ_STR(res, "{\"id\":\"job-unsigned-destroy\",\"outcome\":\"pending_signature\",\"reason\":\"pending_signature\"}");
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/102"), before);
	T_CHECK(guest_exists(102));
	/* pending is not stored as the op's outcome: a signature may follow */
	T_EQ_INT(outcome(&f, "job-unsigned-destroy", reason), TASK_OUT_NONE);
	/* a benign unsigned job runs */
	feed1(&f, "job-unsigned-start", NULL, NULL, "{\"op\":\"start\",\"guest_id\":105}");
	T_EQ_INT(outcome(&f, "job-unsigned-start", reason), TASK_OUT_EXECUTED);
	fx_close(&f);
}

T_TEST(t_unsigned_destructive_desired_delta_is_pending)
{
	struct fx f;
	struct recon_desired d;
	struct recon_pass ps;
	struct buf tail;
	char why[256];
	/* "scratch" is the hub claiming provenance: ignored */
	const char *doc = "{\"generation\":7,\"guests\":[{\"vmid\":108,\"state\":\"absent\",\"scratch\":true}]}";
	long before = count("DELETE /api2/json/nodes/pve/lxc/108");

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	T_OK(recon_desired_parse(doc, strlen(doc), 100, &d, why, sizeof(why)));
	T_OK(recon_plan_pass(f.r, &d, &ps));
	recon_wait_idle(f.r);
	T_EQ_INT(ps.submitted, 1);
	/* a second pass of the same generation does not ask again */
	T_OK(recon_plan_pass(f.r, &d, &ps));
	recon_wait_idle(f.r);
	T_EQ_INT(ps.submitted, 0);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/108"), before);
	T_CHECK(guest_exists(108));
	buf_init(&tail, 1 << 20);
	T_OK(audit_tail_json(f.st, 10, &tail));
	T_CHECK(strstr(buf_str(&tail), "\"decision\":\"pending_signature\",\"op\":\"destroy\",\"guest_id\":108") != NULL);
	buf_free(&tail);
	recon_desired_free(&d);
	fx_close(&f);
}

T_TEST(t_hub_claimed_scratch_is_refused)
{
	struct fx f;
	char res[256];
	long before = count("DELETE /api2/json/nodes/pve/lxc/111");

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	feed1(&f, "job-scratch-claim", NULL, NULL,
	      "{\"op\":\"destroy\",\"guest_id\":111,\"params\":{\"scratch\":true,\"provenance\":\"agent\"}}");
	result_of(&f, "job-scratch-claim", res, sizeof(res));
	T_CHECK(strstr(res, "\"outcome\":\"pending_signature\"") != NULL);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), before);
	T_CHECK(guest_exists(111));
	fx_close(&f);
}

T_TEST(t_typed_rejections)
{
	struct fx f;
	char reason[64], *nonce = NULL, *b, *s;
	int64_t now = (int64_t)time(NULL);
	bool seen = true;

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	/* unknown signer: nothing burnt */
	b = mkblob("destroy", HOST, 111, "{}", now - 10, now + 600, &nonce);
	T_EQ_INT(run_signed(&f, "op-unknown", "mallory", b, NULL, reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "unknown_signer");
	T_OK(nonce_seen(f.st, nonce, &seen));
	T_CHECK(!seen);
	free(nonce);
	/* expired */
	b = mkblob("destroy", HOST, 111, "{}", now - 3000, now - 1000, NULL);
	T_EQ_INT(run_signed(&f, "op-expired", "anna", b, NULL, reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "expired");
	/* wrong host */
	b = mkblob("destroy", "host-other", 111, "{}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-host", "anna", b, NULL, reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "target");
	/* tampered blob */
	b = mkblob("destroy", HOST, 111, "{}", now - 10, now + 600, NULL);
	s = sign("anna", b);
	b[strlen(b) - 2] = '2';     /* "v":1 -> "v":2: not the signed bytes */
	feed1(&f, "op-tampered", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-tampered", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "bad_signature");
	free(b);
	free(s);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111") >= 0, 1);
	T_CHECK(guest_exists(111));
	fx_close(&f);
}

T_TEST(t_binding_mismatch_burns_the_nonce)
{
	struct fx f;
	char reason[64], *nonce = NULL, *b, *s;
	int64_t now = (int64_t)time(NULL);
	long d108 = count("DELETE /api2/json/nodes/pve/lxc/108"), d111 = count("DELETE /api2/json/nodes/pve/lxc/111");
	bool seen = false;

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	/* wrong guest: signed for 111, the action is 108 */
	b = mkblob("destroy", HOST, 111, "{}", now - 10, now + 600, &nonce);
	s = sign("anna", b);
	feed1(&f, "op-bind-guest", b, s, "{\"op\":\"destroy\",\"guest_id\":108,\"params\":{}}");
	T_EQ_INT(outcome(&f, "op-bind-guest", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "binding_mismatch");
	T_OK(nonce_seen(f.st, nonce, &seen));
	T_CHECK(seen);
	/* the nonce is gone: the correct pairing is now a replay */
	feed1(&f, "op-bind-retry", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-bind-retry", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "replay");
	free(b);
	free(s);
	free(nonce);
	/* wrong op */
	b = mkblob("stop", HOST, 108, "{}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-bind-op", "anna", b, "{\"op\":\"destroy\",\"guest_id\":108}", reason),
		 TASK_OUT_REJECTED);
	T_EQ_STR(reason, "binding_mismatch");
	/* wrong params */
	b = mkblob("destroy", HOST, 108, "{\"purge\":false}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-bind-params", "anna", b,
			    "{\"op\":\"destroy\",\"guest_id\":108,\"params\":{\"purge\":true}}", reason),
		 TASK_OUT_REJECTED);
	T_EQ_STR(reason, "binding_mismatch");
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/108"), d108);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), d111);
	fx_close(&f);
}

T_TEST(t_recovery_key_on_destroy_is_role_denied)
{
	struct fx f;
	char reason[64], *nonce = NULL, *b;
	int64_t now = (int64_t)time(NULL);
	long d = count("DELETE /api2/json/nodes/pve/lxc/111");
	bool seen = false;

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	b = mkblob("destroy", HOST, 111, "{}", now - 10, now + 600, &nonce);
	T_EQ_INT(run_signed(&f, "op-role", "bob", b, NULL, reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "role_denied");
	T_OK(nonce_seen(f.st, nonce, &seen));
	T_CHECK(seen);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), d);
	free(nonce);
	fx_close(&f);
}

T_TEST(t_valid_destroy_once_then_replays)
{
	struct fx f;
	char reason[64], res[256], *b, *s;
	int64_t now = (int64_t)time(NULL);
	struct buf tail;

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	T_CHECK(guest_exists(111));
	b = mkblob("destroy", HOST, 111, "{}", now - 10, now + 600, NULL);
	s = sign("anna", b);
	feed1(&f, "op-destroy", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-destroy", reason), TASK_OUT_EXECUTED);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), 1);
	T_CHECK(!guest_exists(111));
	result_of(&f, "op-destroy", res, sizeof(res));
	T_EQ_STR(res, "{\"id\":\"op-destroy\",\"outcome\":\"executed\",\"reason\":\"\"}");
	buf_init(&tail, 1 << 20);
	T_OK(audit_tail_json(f.st, 5, &tail));
	T_CHECK(strstr(buf_str(&tail), "\"decision\":\"signed\",\"op\":\"destroy\",\"guest_id\":111,"
				       "\"signer_key_id\":\"ops-anna\",\"outcome\":\"executed\"") != NULL);
	buf_free(&tail);
	/* the hub delivers the same op again: its stored outcome, no second DELETE */
	feed1(&f, "op-destroy", b, s, NULL);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), 1);
	/* across a restart */
	fx_close(&f);
	if (fx_open(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	feed1(&f, "op-destroy", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-destroy", reason), TASK_OUT_EXECUTED);
	/* another op id carrying the used nonce: replay */
	feed1(&f, "op-destroy-again", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-destroy-again", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "replay");
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), 1);
	free(b);
	free(s);
	fx_close(&f);
}

T_TEST(t_signer_rotation)
{
	struct fx f;
	char reason[64], *b, params[4096], fp_anna[128], fp_carl[128];
	int64_t now = (int64_t)time(NULL);

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_nsigners(f.g), 2);
	/* carl is not a signer yet */
	b = mkblob("stop", HOST, 101, "{}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-carl-1", "carl", b, NULL, reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "unknown_signer");
	/* the recovery key adds carl and removes anna */
	T_OK(gate_fingerprint(L_OPS, fp_anna, sizeof(fp_anna)));
	T_OK(gate_fingerprint(L_CARL, fp_carl, sizeof(fp_carl)));
	{
		struct buf p;

		buf_init(&p, sizeof(params));
		buf_appendz(&p, "{\"add\":");
		sigtest_json_quote(L_CARL, &p);
		buf_printf(&p, ",\"remove\":\"%s\"}", fp_anna);
		snprintf(params, sizeof(params), "%s", buf_str(&p));
		buf_free(&p);
	}
	b = mkblob("signer_rotate", HOST, 0, params, now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-rotate", "bob", b, NULL, reason), TASK_OUT_EXECUTED);
	T_EQ_INT(gate_nsigners(f.g), 2);
	T_EQ_INT(gate_noperational(f.g), 1);
	/* anna is gone, carl signs */
	b = mkblob("stop", HOST, 101, "{}", now - 10, now + 600, NULL);
	T_EQ_STR((run_signed(&f, "op-anna-after", "anna", b, NULL, reason), reason), "unknown_signer");
	/* the rotated set survives a restart */
	fx_close(&f);
	if (fx_open(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	b = mkblob("stop", HOST, 103, "{}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-carl-2", "carl", b, NULL, reason), TASK_OUT_EXECUTED);
	/* removing the last operational signer is refused */
	snprintf(params, sizeof(params), "{\"remove\":\"%s\"}", fp_carl);
	b = mkblob("signer_rotate", HOST, 0, params, now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "op-rotate-last", "bob", b, NULL, reason), TASK_OUT_FAILED);
	T_EQ_STR(reason, "last_operational_signer");
	T_EQ_INT(gate_noperational(f.g), 1);
	fx_close(&f);
}

T_TEST(t_zero_signers)
{
	struct fx f;
	char reason[64], res[256], *b;
	int64_t now = (int64_t)time(NULL);

	if (fx_new(&f, NULL, 0)) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_nsigners(f.g), 0);
	feed1(&f, "z-destroy", NULL, NULL, "{\"op\":\"destroy\",\"guest_id\":102}");
	result_of(&f, "z-destroy", res, sizeof(res));
	T_CHECK(strstr(res, "pending_signature") != NULL);
	b = mkblob("destroy", HOST, 102, "{}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "z-signed", "anna", b, NULL, reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "unknown_signer");
	T_CHECK(guest_exists(102));
	fx_close(&f);
}

/* A volid of a seeded backup of guest 101 on "local". */
static void backup_volid(char *out, size_t n)
{
	char *big = malloc(1 << 20), *p, *q;

	out[0] = '\0';
	if (big && sim_control(&S, "GET", "/volumes", NULL, big, 1 << 20) == 200 &&
	    (p = strstr(big, "local:backup/vzdump-lxc-101-")) != NULL && (q = strchr(p, '"')) != NULL)
		snprintf(out, n, "%.*s", (int)(q - p), p);
	free(big);
}

T_TEST(t_provenance_from_the_journal)
{
	struct fx f;
	struct recon_job *job = calloc(1, sizeof(*job));
	struct recon_result res;
	char vol[256];
	long d150 = count("DELETE /api2/json/nodes/pve/lxc/150");

	if (!job || fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		free(job);
		return;
	}
	backup_volid(vol, sizeof(vol));
	T_CHECK(vol[0] != '\0');
	/* restore into a new guest and destroy it, one journaled job: benign */
	job->source = JRNL_SRC_PROVISION;
	snprintf(job->job_id, sizeof(job->job_id), "prov-150");
	job->nsteps = 2;
	T_OK(gate_action_init(&job->steps[0], "restore", HOST, 150));
	T_OK(gate_action_str(&job->steps[0], "archive", vol));
	T_OK(gate_action_str(&job->steps[0], "storage", "local-lvm"));
	T_OK(gate_action_bool(&job->steps[0], "unique", true));
	job->step_flags[0] = JRNL_F_CREATES_GUEST;
	T_OK(gate_action_init(&job->steps[1], "destroy", HOST, 150));
	job->step_flags[1] = JRNL_F_DESTROYS_GUEST;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/150"), d150 + 1);
	T_CHECK(!guest_exists(150));

	/* a scratch guest of a restore test: a later job may destroy it */
	job_one(job, JRNL_SRC_RESTORE_TEST, "rt-151", "restore", 151);
	T_OK(gate_action_str(&job->steps[0], "archive", vol));
	T_OK(gate_action_str(&job->steps[0], "storage", "local-lvm"));
	job->step_flags[0] = JRNL_F_CREATES_GUEST | JRNL_F_SCRATCH;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	job_one(job, JRNL_SRC_RESTORE_TEST, "rt-151-cleanup", "destroy", 151);
	job->step_flags[0] = JRNL_F_DESTROYS_GUEST;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_CHECK(!guest_exists(151));

	/* a guest the agent created in another job, not scratch: pending */
	job_one(job, JRNL_SRC_PROVISION, "prov-152", "restore", 152);
	T_OK(gate_action_str(&job->steps[0], "archive", vol));
	T_OK(gate_action_str(&job->steps[0], "storage", "local-lvm"));
	job->step_flags[0] = JRNL_F_CREATES_GUEST;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	job_one(job, JRNL_SRC_LOCALAPI, "other-152", "destroy", 152);
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_PENDING_SIGNATURE);
	T_CHECK(guest_exists(152));

	/* the selftest's own snapshot: snapshot, rollback, delete in one job */
	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_SELFTEST;
	snprintf(job->job_id, sizeof(job->job_id), "selftest-101");
	job->nsteps = 3;
	T_OK(gate_action_init(&job->steps[0], "snapshot", HOST, 101));
	T_OK(gate_action_str(&job->steps[0], "name", "felhomst1"));
	T_OK(gate_action_init(&job->steps[1], "rollback", HOST, 101));
	T_OK(gate_action_str(&job->steps[1], "name", "felhomst1"));
	T_OK(gate_action_init(&job->steps[2], "delete_snapshot", HOST, 101));
	T_OK(gate_action_str(&job->steps[2], "name", "felhomst1"));
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/101/snapshot/felhomst1/rollback"), 1);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/101/snapshot/felhomst1"), 1);
	/* another job may not roll back to a snapshot it did not make */
	job_one(job, JRNL_SRC_LOCALAPI, "other-rollback", "rollback", 101);
	T_OK(gate_action_str(&job->steps[0], "name", "felhomst1"));
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_PENDING_SIGNATURE);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/101/snapshot/felhomst1/rollback"), 1);
	free(job);
	fx_close(&f);
}

/* ===================================================== stop, prune, host */

static struct json *sim_json(const char *path)
{
	const struct json_limits lim = { 32u << 20, 16, true };
	size_t cap = 32u << 20;
	char *resp = malloc(cap);
	struct json *j = NULL;

	if (!resp)
		return NULL;
	resp[0] = '\0';
	if (sim_control(&S, "GET", path, NULL, resp, cap) != 200 || json_parse(resp, strlen(resp), &lim, &j, NULL, 0))
		j = NULL;
	free(resp);
	return j;
}

/* Accepted (200) DELETEs of a volume on storage sid, from the request log. */
static long volume_deletes(const char *sid)
{
	struct json *reqs = sim_json("/requests");
	char prefix[128];
	size_t i;
	long n = 0;

	if (!reqs || reqs->type != JSON_ARRAY) {
		json_free(reqs);
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "/api2/json/nodes/pve/storage/%s/content/", sid);
	for (i = 0; i < reqs->n; i++) {
		const char *m = "", *p = "";
		int64_t st = 0;

		json_str(json_get(reqs->items[i], "method"), &m);
		json_str(json_get(reqs->items[i], "path"), &p);
		json_int(json_get(reqs->items[i], "status"), &st);
		n += !strcmp(m, "DELETE") && !strncmp(p, prefix, strlen(prefix)) && st == 200;
	}
	json_free(reqs);
	return n;
}

static bool volume_there(const char *volid)
{
	char *big = malloc(4 << 20), needle[300];
	bool has = false;

	snprintf(needle, sizeof(needle), "\"%s\"", volid);
	if (big && sim_control(&S, "GET", "/volumes", NULL, big, 4 << 20) == 200)
		has = strstr(big, needle) != NULL;
	free(big);
	return has;
}

/* Preloads n backups of vmid on "local" (oldest first); their volids. */
static int preload_backups(int vmid, int n, char vols[][256])
{
	char body[256], resp[4096], *p = resp;
	int64_t now = (int64_t)time(NULL);
	int i, k = 0;

	snprintf(body, sizeof(body), "{\"storage\":\"local\",\"vmid\":%d,\"ctimes\":[", vmid);
	for (i = 0; i < n; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s%" PRId64, i ? "," : "",
			 now - 86400 * 3 + i * 600);
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "]}");
	if (sim_control(&S, "POST", "/backups", body, resp, sizeof(resp)) != 200)
		return -1;
	while (k < n && (p = strstr(p, "\"local:backup/")) != NULL) {
		char *q = strchr(p + 1, '"');

		if (!q)
			break;
		snprintf(vols[k++], 256, "%.*s", (int)(q - p - 1), p + 1);
		p = q + 1;
	}
	return k == n ? 0 : -1;
}

static int audit_hits(struct fx *f, const char *needle)
{
	struct buf tail;
	const char *p;
	int n = 0;

	buf_init(&tail, 1 << 22);
	if (audit_tail_json(f->st, AUDIT_TAIL_MAX, &tail) == 0)
		for (p = buf_str(&tail); (p = strstr(p, needle)) != NULL; p++)
			n++;
	buf_free(&tail);
	return n;
}

/* The journal entry that executed op id (via its idempotency key). */
static int entry_of(struct fx *f, const char *id, struct jrnl_entry *e)
{
	struct idem_rec ir;
	char key[200];

	snprintf(key, sizeof(key), "op:%s", id);
	if (idem_get(f->st, key, &ir) || !ir.jrnl_id)
		return -1;
	return jrnl_get(f->st, ir.jrnl_id, e);
}

static bool guest_running(int vmid)
{
	struct json *g = sim_json("/guests");
	size_t i;
	bool run = false;

	for (i = 0; g && i < g->n; i++) {
		int64_t id = 0;
		const char *st = "";

		if (json_int(json_get(g->items[i], "vmid"), &id) || id != vmid)
			continue;
		json_str(json_get(g->items[i], "status"), &st);
		run = !strcmp(st, "running");
	}
	json_free(g);
	return run;
}

T_TEST(t_stop_of_a_customer_guest_needs_a_signature)
{
	struct fx f;
	struct recon_job *job = calloc(1, sizeof(*job));
	struct recon_result res;
	char reason[64], rs[256], vol[256], *b;
	int64_t now = (int64_t)time(NULL);
	long stop104 = count("POST /api2/json/nodes/pve/lxc/104/status/stop");
	long shut104 = count("POST /api2/json/nodes/pve/lxc/104/status/shutdown");
	long stop153 = count("POST /api2/json/nodes/pve/lxc/153/status/stop");

	if (!job || fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		free(job);
		return;
	}
	T_EQ_INT(sim_control(&S, "POST", "/guest", "{\"vmid\":104,\"status\":\"running\"}", NULL, 0), 200);
	/* the hub, unsigned: held, nothing posted, audited */
	feed1(&f, "stop-unsigned", NULL, NULL, "{\"op\":\"stop\",\"guest_id\":104}");
	result_of(&f, "stop-unsigned", rs, sizeof(rs));
	T_EQ_STR(rs, "{\"id\":\"stop-unsigned\",\"outcome\":\"pending_signature\",\"reason\":\"pending_signature\"}");
	feed1(&f, "shutdown-unsigned", NULL, NULL, "{\"op\":\"shutdown\",\"guest_id\":104,\"params\":{\"timeout\":30}}");
	result_of(&f, "shutdown-unsigned", rs, sizeof(rs));
	T_CHECK(strstr(rs, "\"outcome\":\"pending_signature\"") != NULL);
	/* the hub claiming the agent made it changes nothing */
	feed1(&f, "stop-claim", NULL, NULL,
	      "{\"op\":\"stop\",\"guest_id\":104,\"params\":{\"created_by_agent\":true,\"scratch\":true}}");
	result_of(&f, "stop-claim", rs, sizeof(rs));
	T_CHECK(strstr(rs, "\"outcome\":\"pending_signature\"") != NULL);
	/* nor does the local API as a source */
	job_one(job, JRNL_SRC_LOCALAPI, "lapi-stop-104", "stop", 104);
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_PENDING_SIGNATURE);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/status/stop"), stop104);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/status/shutdown"), shut104);
	T_CHECK(guest_running(104));
	T_EQ_INT(audit_hits(&f, "\"decision\":\"pending_signature\",\"op\":\"stop\",\"guest_id\":104"), 3);
	/* signed by an operational key: executed */
	b = mkblob("stop", HOST, 104, "{}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "stop-signed", "anna", b, NULL, reason), TASK_OUT_EXECUTED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/104/status/stop"), stop104 + 1);
	T_CHECK(!guest_running(104));
	/* a guest an agent job created (another job): stopped unsigned */
	backup_volid(vol, sizeof(vol));
	job_one(job, JRNL_SRC_PROVISION, "prov-153", "restore", 153);
	T_OK(gate_action_str(&job->steps[0], "archive", vol));
	T_OK(gate_action_str(&job->steps[0], "storage", "local-lvm"));
	T_OK(gate_action_bool(&job->steps[0], "start", true));
	job->step_flags[0] = JRNL_F_CREATES_GUEST;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(sim_control(&S, "POST", "/guest", "{\"vmid\":153,\"status\":\"running\"}", NULL, 0), 200);
	job_one(job, JRNL_SRC_LOCALAPI, "lapi-stop-153", "stop", 153);
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/153/status/stop"), stop153 + 1);
	T_CHECK(!guest_running(153));
	free(job);
	fx_close(&f);
}

T_TEST(t_backup_prune)
{
	struct fx f;
	struct recon_job *job = calloc(1, sizeof(*job));
	struct recon_result res;
	struct jrnl_entry *e = calloc(1, sizeof(*e));
	char vols[4][256], rs[256], act[1024], reason[64], *b, params[600];
	const char *golden[1];
	int64_t now = (int64_t)time(NULL);
	long del0;

	if (!job || !e || preload_backups(109, 4, vols) || fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		free(job);
		free(e);
		return;
	}
	del0 = volume_deletes("local");
	T_CHECK(del0 >= 0);
	/* the engine's own retention: executed, one DELETE, journaled */
	job_one(job, JRNL_SRC_BACKUP, "prune-109-0", "backup_prune", 109);
	T_OK(gate_action_str(&job->steps[0], "storage", "local"));
	T_OK(gate_action_str(&job->steps[0], "volid", vols[0]));
	T_OK(recon_run(f.r, job, &res));
	if (res.outcome != TASK_OUT_EXECUTED)
		printf("  prune: %s %s\n", t_errname(res.reason), res.why);
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(volume_deletes("local"), del0 + 1);
	T_CHECK(!volume_there(vols[0]));
	T_OK(jrnl_get(f.st, res.jrnl_id, e));
	T_EQ_STR(e->op, "backup_prune");
	T_EQ_INT(e->source, JRNL_SRC_BACKUP);
	T_EQ_INT(e->state, TASK_SUCCEEDED);
	/* the same job again: its stored outcome, no second DELETE */
	T_OK(recon_run(f.r, job, &res));
	T_CHECK(res.replayed);
	T_EQ_INT(volume_deletes("local"), del0 + 1);
	/* the hub, unsigned: pending_signature, nothing deleted */
	snprintf(act, sizeof(act),
		 "{\"op\":\"backup_prune\",\"guest_id\":109,\"params\":{\"storage\":\"local\",\"volid\":\"%s\"}}", vols[1]);
	feed1(&f, "prune-hub", NULL, NULL, act);
	result_of(&f, "prune-hub", rs, sizeof(rs));
	T_EQ_STR(rs, "{\"id\":\"prune-hub\",\"outcome\":\"pending_signature\",\"reason\":\"pending_signature\"}");
	/* the local API: the same */
	job_one(job, JRNL_SRC_LOCALAPI, "prune-lapi", "backup_prune", 109);
	T_OK(gate_action_str(&job->steps[0], "storage", "local"));
	T_OK(gate_action_str(&job->steps[0], "volid", vols[1]));
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_PENDING_SIGNATURE);
	T_EQ_INT(volume_deletes("local"), del0 + 1);
	T_CHECK(volume_there(vols[1]));
	/* signed: executed, and journaled as "signed" (a hub op never runs as
	 * the retention) */
	snprintf(params, sizeof(params), "{\"storage\":\"local\",\"volid\":\"%s\"}", vols[1]);
	b = mkblob("backup_prune", HOST, 109, params, now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "prune-signed", "anna", b, NULL, reason), TASK_OUT_EXECUTED);
	T_EQ_INT(volume_deletes("local"), del0 + 2);
	T_CHECK(!volume_there(vols[1]));
	T_OK(entry_of(&f, "prune-signed", e));
	T_EQ_INT(e->source, JRNL_SRC_SIGNED);
	T_CHECK(e->signer_key_id[0] != '\0');
	fx_close(&f);

	/* a golden archive: held even for the retention */
	golden[0] = vols[2];
	g_golden = golden;
	g_ngolden = 1;
	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		g_golden = NULL;
		g_ngolden = 0;
		free(job);
		free(e);
		return;
	}
	T_EQ_INT(gate_ngolden(f.g), 1);
	job_one(job, JRNL_SRC_BACKUP, "prune-109-golden", "backup_prune", 109);
	T_OK(gate_action_str(&job->steps[0], "storage", "local"));
	T_OK(gate_action_str(&job->steps[0], "volid", vols[2]));
	T_CHECK(gate_names_golden(f.g, &job->steps[0]));
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_PENDING_SIGNATURE);
	T_CHECK(strstr(res.why, "golden") != NULL);
	T_EQ_INT(volume_deletes("local"), del0 + 2);
	T_CHECK(volume_there(vols[2]));
	/* while the other archive still goes */
	snprintf(job->job_id, sizeof(job->job_id), "prune-109-3");
	T_OK(gate_action_init(&job->steps[0], "backup_prune", HOST, 109));
	T_OK(gate_action_str(&job->steps[0], "storage", "local"));
	T_OK(gate_action_str(&job->steps[0], "volid", vols[3]));
	T_CHECK(!gate_names_golden(f.g, &job->steps[0]));
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_EQ_INT(volume_deletes("local"), del0 + 3);
	fx_close(&f);
	g_golden = NULL;
	g_ngolden = 0;
	/* a golden volid that is not one */
	{
		struct store_opts so;
		struct store *st = NULL;
		struct gate_opts go;
		struct gate *g = NULL;
		const char *badg[1] = { "no colon here" };
		char err[256] = "", dir[300];

		snprintf(dir, sizeof(dir), "%s/db-golden-bad", g_dir);
		memset(&so, 0, sizeof(so));
		so.dir = dir;
		T_OK(store_open(&so, &st));
		memset(&go, 0, sizeof(go));
		go.st = st;
		go.host_id = HOST;
		go.max_lifetime_seconds = 3600;
		go.clock_skew_seconds = 60;
		go.golden_archives = badg;
		go.ngolden = 1;
		T_ERR(gate_new(&go, &g, err, sizeof(err)), FH_ERR_CONFIG);
		T_CHECK(strstr(err, "golden archive 1") != NULL);
		store_close(st);
	}
	free(job);
	free(e);
}

static uint64_t wipe_intent(struct fx *f, const char *job, bool handed)
{
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof(*e));
	uint64_t id = 0;

	snprintf(e->job_id, sizeof(e->job_id), "%s", job);
	e->source = JRNL_SRC_SIGNED;
	snprintf(e->op, sizeof(e->op), "storage_wipe");
	e->vmid = JRNL_NO_VMID;
	snprintf(e->params, sizeof(e->params), "{\"durable_id\":\"byid:ata-CRASH\",\"fstype\":\"ext4\"}");
	snprintf(e->signer_key_id, sizeof(e->signer_key_id), "ops-anna");
	if (store_txn_begin(f->st, true, &t) || jrnl_intent(t, e, &id) ||
	    (handed && jrnl_event(t, id, TASK_EV_POSTED)) || store_txn_commit(t))
		id = 0;
	free(e);
	return id;
}

struct wrows {
	int n;
	char action[8][48];
};

static void on_wrow(const struct recon_recovery_row *row, void *arg)
{
	struct wrows *w = arg;

	if (w->n < 8)
		snprintf(w->action[w->n++], 48, "%s", row->action ? row->action : "");
}

T_TEST(t_host_executor_storage_wipe)
{
	struct fx f;
	struct jrnl_entry *e = calloc(1, sizeof(*e));
	struct recon_recovery rec;
	struct wrows rows;
	char reason[64], rs[256], *b, *s, *b2, *s2, *b3;
	int64_t now = (int64_t)time(NULL);
	uint64_t i1, i2;
	enum task_outcome o;

	g_host.use = true;
	g_host.calls = 0;
	g_host.rc = 0;
	if (!e || fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		free(e);
		g_host.use = false;
		return;
	}
	/* signed: handed over once, executed, no UPID */
	b = mkblob("storage_wipe", HOST, 0, "{\"durable_id\":\"byid:ata-WDC_X\",\"fstype\":\"ext4\"}", now - 10,
		   now + 600, NULL);
	s = sign("anna", b);
	feed1(&f, "wipe-1", b, s, NULL);
	T_EQ_INT(outcome(&f, "wipe-1", reason), TASK_OUT_EXECUTED);
	T_EQ_INT(host_calls(), 1);
	T_CHECK(g_host.last_signed);
	T_EQ_STR(g_host.last_durable, "byid:ata-WDC_X");
	T_EQ_STR(g_host.last_fstype, "ext4");
	T_OK(entry_of(&f, "wipe-1", e));
	T_EQ_INT(e->state, TASK_SUCCEEDED);
	T_EQ_STR(e->upid, "");
	T_EQ_INT(e->vmid, JRNL_NO_VMID);
	T_EQ_STR(e->signer_key_id, "ops-anna");
	/* the same op delivered again: its stored outcome, not run again */
	feed1(&f, "wipe-1", b, s, NULL);
	T_EQ_INT(outcome(&f, "wipe-1", reason), TASK_OUT_EXECUTED);
	T_EQ_INT(host_calls(), 1);
	/* unsigned from the hub: pending_signature, not run */
	feed1(&f, "wipe-unsigned", NULL, NULL,
	      "{\"op\":\"storage_wipe\",\"guest_id\":null,\"params\":{\"durable_id\":\"byid:ata-WDC_X\"}}");
	result_of(&f, "wipe-unsigned", rs, sizeof(rs));
	T_EQ_STR(rs, "{\"id\":\"wipe-unsigned\",\"outcome\":\"pending_signature\",\"reason\":\"pending_signature\"}");
	T_EQ_INT(host_calls(), 1);
	/* a signature bound to another device does not cover this one */
	b2 = mkblob("storage_wipe", HOST, 0, "{\"durable_id\":\"byid:ata-OTHER\"}", now - 10, now + 600, NULL);
	s2 = sign("anna", b2);
	feed1(&f, "wipe-bind", b2, s2,
	      "{\"op\":\"storage_wipe\",\"guest_id\":null,\"params\":{\"durable_id\":\"byid:ata-WDC_X\"}}");
	T_EQ_INT(outcome(&f, "wipe-bind", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "binding_mismatch");
	T_EQ_INT(host_calls(), 1);
	/* the executor refuses: failed with its code and line */
	pthread_mutex_lock(&g_host.mu);
	g_host.rc = FH_ERR_IO;
	snprintf(g_host.why, sizeof(g_host.why), "byid:ata-Y names another device now");
	pthread_mutex_unlock(&g_host.mu);
	b3 = mkblob("storage_wipe", HOST, 0, "{\"durable_id\":\"byid:ata-Y\"}", now - 10, now + 600, NULL);
	T_EQ_INT(run_signed(&f, "wipe-fail", "anna", b3, NULL, reason), TASK_OUT_FAILED);
	T_EQ_STR(reason, fh_strerror(FH_ERR_IO));
	T_EQ_INT(host_calls(), 2);
	T_OK(entry_of(&f, "wipe-fail", e));
	T_EQ_INT(e->state, TASK_FAILED);
	T_CHECK(strstr(e->text, "names another device") != NULL);
	g_host.rc = 0;

	/* a crash with a wipe in flight (handed over, and not yet): recovery
	 * closes both failed "interrupted" and never calls the executor */
	i1 = wipe_intent(&f, "op:wipe-crash-1", true);
	i2 = wipe_intent(&f, "op:wipe-crash-2", false);
	T_CHECK(i1 && i2);
	fx_close(&f);
	if (fx_open(&f, signers2, 2)) {
		T_CHECK(0);
		goto out;
	}
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, true, on_wrow, &rows, &rec));
	T_EQ_INT(rec.in_flight, 2);
	T_EQ_INT(rows.n, 2);
	T_EQ_STR(rows.action[0], "would close failed");
	memset(&rows, 0, sizeof(rows));
	T_OK(recon_recover(f.r, false, on_wrow, &rows, &rec));
	T_EQ_INT(rec.closed, 2);
	T_EQ_INT(rec.left, 0);
	T_EQ_STR(rows.action[0], "closed failed (interrupted)");
	T_EQ_STR(rows.action[1], "closed failed (interrupted)");
	T_OK(jrnl_get(f.st, i1, e));
	T_EQ_INT(e->state, TASK_FAILED);
	T_EQ_INT(e->outcome, TASK_OUT_FAILED);
	T_EQ_STR(e->reason, "interrupted");
	T_OK(jrnl_get(f.st, i2, e));
	T_EQ_STR(e->reason, "interrupted");
	T_EQ_INT(host_calls(), 2);
	/* and recovery again: nothing, still not called */
	T_OK(recon_recover(f.r, false, NULL, NULL, &rec));
	T_EQ_INT(rec.in_flight, 0);
	T_EQ_INT(host_calls(), 2);
	fx_close(&f);

	/* no host executor configured: failed, never "executed" */
	g_host.use = false;
	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		goto out;
	}
	feed1(&f, "wipe-1", b, s, NULL);         /* a fresh state: the nonce is new here */
	T_EQ_INT(outcome(&f, "wipe-1", reason), TASK_OUT_FAILED);
	T_EQ_STR(reason, "unsupported_op");
	T_OK(entry_of(&f, "wipe-1", e));
	T_EQ_STR(e->text, "no host executor");
	T_EQ_INT(host_calls(), 2);
	(void)o;
	fx_close(&f);
out:
	g_host.use = false;
	free(b);
	free(s);
	free(b2);
	free(s2);
	free(e);
}

/* The rotated signer set of an earlier version's state directory
 * (STORE_DB_SEQ "gate_signers") moves to STORE_DB_GATE "signers". */
T_TEST(t_signer_set_moves_from_the_old_place)
{
	struct store_opts so;
	struct store *st = NULL;
	struct store_txn *t = NULL;
	struct gate_opts go;
	struct gate *g = NULL;
	struct buf rec;
	const void *v;
	size_t n;
	char dir[300], err[256] = "", fp_anna[128];

	snprintf(dir, sizeof(dir), "%s/db-migrate", g_dir);
	memset(&so, 0, sizeof(so));
	so.dir = dir;
	T_OK(store_open(&so, &st));
	buf_init(&rec, 1 << 16);
	buf_printf(&rec, "+%s\n", L_CARL);
	T_OK(store_txn_begin(st, true, &t));
	T_OK(store_put(t, STORE_DB_SEQ, "gate_signers", 12, rec.data, rec.len));
	T_OK(store_txn_commit(t));
	memset(&go, 0, sizeof(go));
	go.st = st;
	go.signers = signers2;
	go.nsigners = 2;
	go.host_id = HOST;
	go.max_lifetime_seconds = 3600;
	go.clock_skew_seconds = 60;
	T_OK(gate_new(&go, &g, err, sizeof(err)));
	T_EQ_INT(gate_nsigners(g), 3);             /* anna, bob + carl from the old record */
	T_EQ_INT(gate_noperational(g), 2);
	gate_free(g);
	g = NULL;
	T_OK(store_txn_begin(st, false, &t));
	T_ERR(store_get(t, STORE_DB_SEQ, "gate_signers", 12, &v, &n), FH_ERR_NOT_FOUND);
	T_OK(store_get(t, STORE_DB_GATE, "signers", 7, &v, &n));
	T_CHECK(n == rec.len && !memcmp(v, rec.data, n));
	store_txn_abort(t);
	/* again: nothing left to move, the set is the same */
	T_OK(gate_new(&go, &g, err, sizeof(err)));
	T_EQ_INT(gate_nsigners(g), 3);
	gate_free(g);
	g = NULL;
	/* both present (a stale old key): the gate's database wins, the old
	 * key goes */
	T_OK(gate_fingerprint(L_OPS, fp_anna, sizeof(fp_anna)));
	buf_reset(&rec);
	buf_printf(&rec, "-%s\n", fp_anna);
	T_OK(store_txn_begin(st, true, &t));
	T_OK(store_put(t, STORE_DB_SEQ, "gate_signers", 12, rec.data, rec.len));
	T_OK(store_txn_commit(t));
	T_OK(gate_new(&go, &g, err, sizeof(err)));
	T_EQ_INT(gate_nsigners(g), 3);
	gate_free(g);
	g = NULL;
	T_OK(store_txn_begin(st, false, &t));
	T_ERR(store_get(t, STORE_DB_SEQ, "gate_signers", 12, &v, &n), FH_ERR_NOT_FOUND);
	store_txn_abort(t);
	/* an old record that does not read is not carried over: a typed
	 * error, the old key left for the operator */
	T_OK(store_txn_begin(st, true, &t));
	T_OK(store_del(t, STORE_DB_GATE, "signers", 7));
	T_OK(store_put(t, STORE_DB_SEQ, "gate_signers", 12, "garbage", 7));
	T_OK(store_txn_commit(t));
	T_ERR(gate_new(&go, &g, err, sizeof(err)), FH_ERR_DECODE);
	T_CHECK(g == NULL);
	T_OK(store_txn_begin(st, false, &t));
	T_OK(store_get(t, STORE_DB_SEQ, "gate_signers", 12, &v, &n));
	T_ERR(store_get(t, STORE_DB_GATE, "signers", 7, &v, &n), FH_ERR_NOT_FOUND);
	store_txn_abort(t);
	buf_free(&rec);
	store_close(st);
}

int main(void)
{
	const char *const args[] = { "--guests", "12", "--task-seconds", "0.05", NULL };

	t_tmpdir(g_dir, sizeof(g_dir));
	keygen("anna", "ed25519", "256");
	keygen("bob", "ecdsa", "256");
	keygen("carl", "ed25519", "256");
	keygen("mallory", "ed25519", "256");
	L_OPS = signer_line("operational", "ops-anna", "anna");
	L_REC = signer_line("recovery", "rec-bob", "bob");
	L_CARL = signer_line("operational", "ops-carl", "carl");
	signers2[0] = L_OPS;
	signers2[1] = L_REC;
	T_RUN(t_classifier_table);
	T_RUN(t_decide_roles_and_binding);
	T_RUN(t_fingerprint_matches_ssh_keygen);
	if (sim_start(&S, args) != 0) {
		printf("FAIL sim_start\n");
		return t_done() | 1;
	}
	T_RUN(t_unsigned_destructive_job_is_pending);
	T_RUN(t_unsigned_destructive_desired_delta_is_pending);
	T_RUN(t_hub_claimed_scratch_is_refused);
	T_RUN(t_typed_rejections);
	T_RUN(t_binding_mismatch_burns_the_nonce);
	T_RUN(t_recovery_key_on_destroy_is_role_denied);
	T_RUN(t_valid_destroy_once_then_replays);
	T_RUN(t_signer_rotation);
	T_RUN(t_zero_signers);
	T_RUN(t_provenance_from_the_journal);
	T_RUN(t_stop_of_a_customer_guest_needs_a_signature);
	T_RUN(t_backup_prune);
	T_RUN(t_host_executor_storage_wipe);
	T_RUN(t_signer_set_moves_from_the_old_place);
	sim_stop(&S);
	sig_thread_done();
	free(L_OPS);
	free(L_REC);
	free(L_CARL);
	return t_done();
}
