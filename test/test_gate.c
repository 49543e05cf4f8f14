/* test_gate.c — the reversibility gate: the classifier table, role scoping
 * and binding as pure functions, then the adversarial matrix end to end
 * (hub document -> recon_ops_parse -> recon_signed_op -> the real SSHSIG
 * verifier -> gate -> executor -> test/pvesim), with signatures minted here
 * by `ssh-keygen -Y sign -n felhom-op-v1`. The simulator's per-path
 * request counts prove what was (not) executed. */
#include <inttypes.h>
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
#include "idem.h"
#include "jrnl.h"
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

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static void keygen(const char *name, const char *type, const char *bits)
{
	char *p = xprintf("%s/%s", g_dir, name);
	const char *argv[] = { "/usr/bin/ssh-keygen", "-q", "-t", type, "-b", bits, "-N", "", "-C", name, "-f", p, NULL };

	if (t_run_cmd(argv, run_env, NULL, NULL) != 0)
		abort();
	free(p);
}

static char *signer_line(const char *role, const char *id, const char *name)
{
	char *p = xprintf("%s/%s.pub", g_dir, name), *s = t_slurp(p, NULL), *sp, *l;

	if (!s)
		abort();
	if ((sp = strchr(s, '\n')) != NULL)
		*sp = '\0';
	l = xprintf("%s %s %s", role, id, s);
	free(s);
	free(p);
	return l;
}

static char *fresh_nonce(void)
{
	return xprintf("nonce-%08u-%ld-abcdef", ++g_seq, (long)getpid());
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
	return xprintf("{\"expires_at\":%" PRId64 ",\"guest_id\":%s,\"host_id\":\"%s\",\"issued_at\":%" PRId64
		       ",\"key_id\":\"test\",\"nonce\":\"%s\",\"op\":\"%s\",\"params\":%s,\"v\":1}",
		       expires, g, host, issued, nonce, op, params_json);
}

static char *sign(const char *key, const char *blob)
{
	char *msg = xprintf("%s/msg-%u", g_dir, ++g_seq), *sigp = xprintf("%s.sig", msg);
	char *kp = xprintf("%s/%s", g_dir, key), *armor;
	const char *argv[] = { "/usr/bin/ssh-keygen", "-q", "-Y", "sign", "-f", kp, "-n", SIG_NAMESPACE, msg, NULL };

	if (t_write_file(msg, blob, 0600) != 0 || t_run_cmd(argv, run_env, NULL, NULL) != 0)
		abort();
	armor = t_slurp(sigp, NULL);
	if (!armor)
		abort();
	unlink(msg);
	unlink(sigp);
	free(msg);
	free(sigp);
	free(kp);
	return armor;
}

static void b64(const char *s, struct buf *o)
{
	static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), i;

	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		buf_printf(o, "%c%c%c%c", T[v >> 18 & 63], T[v >> 12 & 63], i + 1 < n ? T[v >> 6 & 63] : '=',
			   i + 2 < n ? T[v & 63] : '=');
	}
}

static void json_str(const char *s, struct buf *o)
{
	buf_appendz(o, "\"");
	for (; *s; s++) {
		if (*s == '\n')
			buf_appendz(o, "\\n");
		else if (*s == '"' || *s == '\\')
			buf_printf(o, "\\%c", *s);
		else
			buf_append(o, s, 1);
	}
	buf_appendz(o, "\"");
}

/* One signed-ops entry (action_json NULL: none). */
static void op_entry(struct buf *doc, const char *id, const char *blob, const char *armor, const char *action_json)
{
	buf_printf(doc, "%s{\"id\":\"%s\"", doc->len > 8 ? "," : "", id);
	if (blob) {
		buf_appendz(doc, ",\"blob_b64\":\"");
		b64(blob, doc);
		buf_appendz(doc, "\",\"signature\":");
		json_str(armor, doc);
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
	if (gate_new(&go, &f->g, err, sizeof(err))) {
		printf("  gate_new: %s\n", err);
		return -1;
	}
	memset(&ro, 0, sizeof(ro));
	ro.st = f->st;
	ro.gate = f->g;
	ro.pve = &po;
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

/* ================================================================ pure */

T_TEST(t_classifier_table)
{
	struct gate_action a;
	struct gate_prov p;
	enum gate_class c;
	const char *why;
	static const struct { const char *op; enum gate_class want; } plain[] = {
		{ "start", GATE_BENIGN },         { "stop", GATE_BENIGN },
		{ "shutdown", GATE_BENIGN },      { "snapshot", GATE_BENIGN },
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
	char fp[128], *pub = xprintf("%s/anna.pub", g_dir), *out = NULL, *nl;
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
	s = sign("mallory", b);
	feed1(&f, "op-unknown", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-unknown", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "unknown_signer");
	T_OK(nonce_seen(f.st, nonce, &seen));
	T_CHECK(!seen);
	free(b);
	free(s);
	free(nonce);
	/* expired */
	b = mkblob("destroy", HOST, 111, "{}", now - 3000, now - 1000, NULL);
	s = sign("anna", b);
	feed1(&f, "op-expired", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-expired", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "expired");
	free(b);
	free(s);
	/* wrong host */
	b = mkblob("destroy", "host-other", 111, "{}", now - 10, now + 600, NULL);
	s = sign("anna", b);
	feed1(&f, "op-host", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-host", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "target");
	free(b);
	free(s);
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
	char reason[64], *nonce = NULL, *b, *s, *b2, *s2;
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
	s = sign("anna", b);
	feed1(&f, "op-bind-op", b, s, "{\"op\":\"destroy\",\"guest_id\":108}");
	T_EQ_INT(outcome(&f, "op-bind-op", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "binding_mismatch");
	/* wrong params */
	b2 = mkblob("destroy", HOST, 108, "{\"purge\":false}", now - 10, now + 600, NULL);
	s2 = sign("anna", b2);
	feed1(&f, "op-bind-params", b2, s2, "{\"op\":\"destroy\",\"guest_id\":108,\"params\":{\"purge\":true}}");
	T_EQ_INT(outcome(&f, "op-bind-params", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "binding_mismatch");
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/108"), d108);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), d111);
	free(b);
	free(s);
	free(b2);
	free(s2);
	fx_close(&f);
}

T_TEST(t_recovery_key_on_destroy_is_role_denied)
{
	struct fx f;
	char reason[64], *nonce = NULL, *b, *s;
	int64_t now = (int64_t)time(NULL);
	long d = count("DELETE /api2/json/nodes/pve/lxc/111");
	bool seen = false;

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	b = mkblob("destroy", HOST, 111, "{}", now - 10, now + 600, &nonce);
	s = sign("bob", b);
	feed1(&f, "op-role", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-role", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "role_denied");
	T_OK(nonce_seen(f.st, nonce, &seen));
	T_CHECK(seen);
	T_EQ_INT(count("DELETE /api2/json/nodes/pve/lxc/111"), d);
	free(b);
	free(s);
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
	char reason[64], *b, *s, params[4096], fp_anna[128], fp_carl[128];
	int64_t now = (int64_t)time(NULL);

	if (fx_new(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_nsigners(f.g), 2);
	/* carl is not a signer yet */
	b = mkblob("stop", HOST, 101, "{}", now - 10, now + 600, NULL);
	s = sign("carl", b);
	feed1(&f, "op-carl-1", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-carl-1", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "unknown_signer");
	free(b);
	free(s);
	/* the recovery key adds carl and removes anna */
	T_OK(gate_fingerprint(L_OPS, fp_anna, sizeof(fp_anna)));
	T_OK(gate_fingerprint(L_CARL, fp_carl, sizeof(fp_carl)));
	{
		struct buf p;

		buf_init(&p, sizeof(params));
		buf_appendz(&p, "{\"add\":");
		json_str(L_CARL, &p);
		buf_printf(&p, ",\"remove\":\"%s\"}", fp_anna);
		snprintf(params, sizeof(params), "%s", buf_str(&p));
		buf_free(&p);
	}
	b = mkblob("signer_rotate", HOST, 0, params, now - 10, now + 600, NULL);
	s = sign("bob", b);
	feed1(&f, "op-rotate", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-rotate", reason), TASK_OUT_EXECUTED);
	T_EQ_INT(gate_nsigners(f.g), 2);
	T_EQ_INT(gate_noperational(f.g), 1);
	free(b);
	free(s);
	/* anna is gone, carl signs */
	b = mkblob("stop", HOST, 101, "{}", now - 10, now + 600, NULL);
	s = sign("anna", b);
	feed1(&f, "op-anna-after", b, s, NULL);
	T_EQ_STR((outcome(&f, "op-anna-after", reason), reason), "unknown_signer");
	free(b);
	free(s);
	/* the rotated set survives a restart */
	fx_close(&f);
	if (fx_open(&f, signers2, 2)) {
		T_CHECK(0);
		return;
	}
	b = mkblob("stop", HOST, 103, "{}", now - 10, now + 600, NULL);
	s = sign("carl", b);
	feed1(&f, "op-carl-2", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-carl-2", reason), TASK_OUT_EXECUTED);
	free(b);
	free(s);
	/* removing the last operational signer is refused */
	snprintf(params, sizeof(params), "{\"remove\":\"%s\"}", fp_carl);
	b = mkblob("signer_rotate", HOST, 0, params, now - 10, now + 600, NULL);
	s = sign("bob", b);
	feed1(&f, "op-rotate-last", b, s, NULL);
	T_EQ_INT(outcome(&f, "op-rotate-last", reason), TASK_OUT_FAILED);
	T_EQ_STR(reason, "last_operational_signer");
	T_EQ_INT(gate_noperational(f.g), 1);
	free(b);
	free(s);
	fx_close(&f);
}

T_TEST(t_zero_signers)
{
	struct fx f;
	char reason[64], res[256], *b, *s;
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
	s = sign("anna", b);
	feed1(&f, "z-signed", b, s, NULL);
	T_EQ_INT(outcome(&f, "z-signed", reason), TASK_OUT_REJECTED);
	T_EQ_STR(reason, "unknown_signer");
	T_CHECK(guest_exists(102));
	free(b);
	free(s);
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
	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_RESTORE_TEST;
	snprintf(job->job_id, sizeof(job->job_id), "rt-151");
	job->nsteps = 1;
	T_OK(gate_action_init(&job->steps[0], "restore", HOST, 151));
	T_OK(gate_action_str(&job->steps[0], "archive", vol));
	T_OK(gate_action_str(&job->steps[0], "storage", "local-lvm"));
	job->step_flags[0] = JRNL_F_CREATES_GUEST | JRNL_F_SCRATCH;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_RESTORE_TEST;
	snprintf(job->job_id, sizeof(job->job_id), "rt-151-cleanup");
	job->nsteps = 1;
	T_OK(gate_action_init(&job->steps[0], "destroy", HOST, 151));
	job->step_flags[0] = JRNL_F_DESTROYS_GUEST;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	T_CHECK(!guest_exists(151));

	/* a guest the agent created in another job, not scratch: pending */
	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_PROVISION;
	snprintf(job->job_id, sizeof(job->job_id), "prov-152");
	job->nsteps = 1;
	T_OK(gate_action_init(&job->steps[0], "restore", HOST, 152));
	T_OK(gate_action_str(&job->steps[0], "archive", vol));
	T_OK(gate_action_str(&job->steps[0], "storage", "local-lvm"));
	job->step_flags[0] = JRNL_F_CREATES_GUEST;
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_EXECUTED);
	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_LOCALAPI;
	snprintf(job->job_id, sizeof(job->job_id), "other-152");
	job->nsteps = 1;
	T_OK(gate_action_init(&job->steps[0], "destroy", HOST, 152));
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
	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_LOCALAPI;
	snprintf(job->job_id, sizeof(job->job_id), "other-rollback");
	job->nsteps = 1;
	T_OK(gate_action_init(&job->steps[0], "rollback", HOST, 101));
	T_OK(gate_action_str(&job->steps[0], "name", "felhomst1"));
	T_OK(recon_run(f.r, job, &res));
	T_EQ_INT(res.outcome, TASK_OUT_PENDING_SIGNATURE);
	T_EQ_INT(count("POST /api2/json/nodes/pve/lxc/101/snapshot/felhomst1/rollback"), 1);
	free(job);
	fx_close(&f);
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
	sim_stop(&S);
	sig_thread_done();
	free(L_OPS);
	free(L_REC);
	free(L_CARL);
	return t_done();
}
