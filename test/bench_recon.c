/* bench_recon.c — the engine's figures (make bench; never pass/fail):
 *   - desired-state parse and the pure plan for 1,000 guests (converged,
 *     and with every guest needing a change);
 *   - the gate's decision (classify + role + binding);
 *   - a planner pass against test/pvesim (the reads it costs);
 *   - recovery of 1,000 in-flight entries beside 100,000 closed ones,
 *     resolved against test/pvesim (dry run, then for real).
 * The journal's own per-mutation cost and scan speed are in bench_jrnl. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "gate.h"
#include "harness.h"
#include "jrnl.h"
#include "recon.h"
#include "sim.h"
#include "store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void desired_doc(struct buf *b, int n, int cores)
{
	int i;

	buf_printf(b, "{\"generation\":5,\"guests\":[");
	for (i = 0; i < n; i++)
		buf_printf(b, "%s{\"vmid\":%d,\"state\":\"%s\",\"cores\":%d,\"memory_bytes\":%lld,\"description\":\"guest %d\","
			   "\"onboot\":true}",
			   i ? "," : "", 101 + i, i % 3 ? "running" : "stopped", cores, 1024LL * 1048576 + 7, i);
	buf_appendz(b, "]}");
}

static void bench_plan(void)
{
	struct buf doc;
	struct recon_desired d;
	struct recon_actual_guest *a = calloc(1000, sizeof(*a));
	struct recon_plan p;
	char why[256], desc[1000][24];
	double t0, el;
	int i, iters = 0;

	buf_init(&doc, 8 << 20);
	desired_doc(&doc, 1000, 2);
	t0 = now_s();
	do {
		if (recon_desired_parse(doc.data, doc.len, 4096, &d, why, sizeof(why)))
			abort();
		recon_desired_free(&d);
		iters++;
	} while ((el = now_s() - t0) < 1.0);
	printf("%-52s %9.1f us (%zu bytes)\n", "desired state parse, 1,000 guests:", el * 1e6 / iters, doc.len);
	if (recon_desired_parse(doc.data, doc.len, 4096, &d, why, sizeof(why)))
		abort();
	for (i = 0; i < 1000; i++) {
		snprintf(desc[i], sizeof(desc[i]), "guest %d \n", i);
		a[999 - i].vmid = 101 + i;       /* actual in another order */
		a[999 - i].running = i % 3 != 0;
		a[999 - i].status_known = true;
		a[999 - i].have_config = true;
		a[999 - i].cores = 2;
		a[999 - i].memory_mib = 1025;
		a[999 - i].description = desc[i];
		a[999 - i].onboot = 1;
	}
	iters = 0;
	t0 = now_s();
	do {
		if (recon_plan(&d, a, 1000, &p) || p.n != 0)
			abort();
		recon_plan_free(&p);
		iters++;
	} while ((el = now_s() - t0) < 1.0);
	printf("%-52s %9.1f us\n", "plan, 1,000 guests, all converged:", el * 1e6 / iters);
	for (i = 0; i < 1000; i++) {
		a[i].cores = 1;
		a[i].running = !a[i].running;
	}
	iters = 0;
	t0 = now_s();
	do {
		if (recon_plan(&d, a, 1000, &p) || p.n != 2000)
			abort();
		recon_plan_free(&p);
		iters++;
	} while ((el = now_s() - t0) < 1.0);
	printf("%-52s %9.1f us (2,000 actions)\n", "plan, 1,000 guests, every one changed:", el * 1e6 / iters);
	recon_desired_free(&d);
	buf_free(&doc);
	free(a);
}

static void bench_gate(void)
{
	struct gate_action a;
	struct gate_decision dec;
	struct sig_verified vd;
	double t0, el;
	long iters = 0;

	gate_action_init(&a, "destroy", "host-b", 111);
	gate_action_bool(&a, "purge", true);
	memset(&vd, 0, sizeof(vd));
	vd.role = SIG_ROLE_OPERATIONAL;
	snprintf(vd.signer_id, sizeof(vd.signer_id), "ops");
	vd.op = a.b;
	t0 = now_s();
	do {
		gate_decide(&a, NULL, &vd, &dec);
		iters++;
	} while ((el = now_s() - t0) < 0.5);
	if (!dec.allowed)
		abort();
	printf("%-52s %9.0f ns\n", "gate decision (signed destroy, binding checked):", el * 1e9 / (double)iters);
}

static struct sim S;

static int engine(const char *dir, struct store **st, struct gate **g, struct recon **r)
{
	struct store_opts so;
	struct gate_opts go;
	struct recon_opts ro;
	struct pve_opts po;
	char err[256];

	memset(&so, 0, sizeof(so));
	so.dir = dir;
	memset(&go, 0, sizeof(go));
	memset(&ro, 0, sizeof(ro));
	memset(&po, 0, sizeof(po));
	if (store_open(&so, st))
		return -1;
	go.st = *st;
	go.host_id = "host-b";
	go.max_lifetime_seconds = 3600;
	if (gate_new(&go, g, err, sizeof(err)))
		return -1;
	po.endpoint = S.endpoint;
	po.node = "pve";
	po.token = S.token;
	po.tls_fingerprint = S.fingerprint;
	po.poll_initial_ms = 20;
	po.poll_max_ms = 100;
	ro.st = *st;
	ro.gate = *g;
	ro.pve = &po;
	ro.workers = 8;
	ro.max_mutations = 4;
	return recon_new(&ro, r, err, sizeof(err));
}

static void bench_pass(const char *base)
{
	struct store *st = NULL;
	struct gate *g = NULL;
	struct recon *r = NULL;
	struct recon_desired d;
	struct recon_pass ps;
	struct buf doc;
	char dir[400], why[256];
	long req0;
	double t0;

	snprintf(dir, sizeof(dir), "%s/pass", base);
	if (engine(dir, &st, &g, &r)) {
		printf("planner pass: engine failed\n");
		return;
	}
	buf_init(&doc, 8 << 20);
	buf_printf(&doc, "{\"generation\":1,\"guests\":[");
	{
		int i;

		for (i = 0; i < 200; i++)
			buf_printf(&doc, "%s{\"vmid\":%d,\"state\":\"%s\"}", i ? "," : "", 101 + i,
				   (i % 3) == 1 ? "stopped" : "running");
	}
	buf_appendz(&doc, "]}");
	if (recon_desired_parse(doc.data, doc.len, 4096, &d, why, sizeof(why)))
		abort();
	req0 = sim_stat(&S, "requests");
	t0 = now_s();
	recon_plan_pass(r, &d, &ps);
	printf("%-52s %9.1f ms, %ld Proxmox reads, %zu planned\n", "planner pass, 200 guests, converged:",
	       (now_s() - t0) * 1e3, sim_stat(&S, "requests") - req0, ps.planned);
	recon_desired_free(&d);
	buf_free(&doc);
	recon_free(r);
	gate_free(g);
	store_close(st);
}

static void bench_recovery(const char *base)
{
	struct store *st = NULL;
	struct gate *g = NULL;
	struct recon *r = NULL;
	struct store_txn *t = NULL;
	struct jrnl_entry *e = calloc(1, sizeof(*e));
	struct recon_recovery rec;
	char dir[400];
	long i, req0;
	uint64_t id;
	double t0;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/recovery", base);
	if (engine(dir, &st, &g, &r)) {
		printf("recovery: engine failed\n");
		return;
	}
	/* 100,000 closed entries, then 1,000 intents whose effect is there
	 * already (start on running guests): each costs a task-list read and a
	 * status read, then a close */
	t0 = now_s();
	for (i = 0; !rc && i < 101000; i++) {
		if (i % 1000 == 0 && (rc = store_txn_begin(st, true, &t)))
			break;
		memset(e, 0, sizeof(*e));
		snprintf(e->job_id, sizeof(e->job_id), "bench-%ld", i);
		e->source = JRNL_SRC_LOCALAPI;
		snprintf(e->op, sizeof(e->op), "start");
		e->vmid = 101 + 3 * (i % 60);     /* seeded running guests */
		snprintf(e->params, sizeof(e->params), "{}");
		e->created_at = (int64_t)time(NULL) - 60;
		rc = jrnl_intent(t, e, &id);
		if (!rc && i < 100000) {
			rc = jrnl_event(t, id, TASK_EV_POSTED);
			if (!rc)
				rc = jrnl_close(t, id, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, NULL, NULL);
		}
		if (!rc && i % 1000 == 999)
			rc = store_txn_commit(t);
	}
	if (rc) {
		printf("recovery: populating failed: %s\n", fh_strerror(rc));
		return;
	}
	printf("populated 100,000 closed + 1,000 in-flight entries in %.1f s\n", now_s() - t0);
	req0 = sim_stat(&S, "requests");
	t0 = now_s();
	rc = recon_recover(r, true, NULL, NULL, &rec);
	printf("%-52s %9.1f ms (%zu in flight, %ld Proxmox requests)%s\n", "recovery, dry run:", (now_s() - t0) * 1e3,
	       rec.in_flight, sim_stat(&S, "requests") - req0, rc ? " FAILED" : "");
	req0 = sim_stat(&S, "requests");
	t0 = now_s();
	rc = recon_recover(r, false, NULL, NULL, &rec);
	printf("%-52s %9.1f ms (%zu closed, %zu left, %ld Proxmox requests)%s\n", "recovery, resolving all:",
	       (now_s() - t0) * 1e3, rec.closed, rec.left, sim_stat(&S, "requests") - req0, rc ? " FAILED" : "");
	free(e);
	recon_free(r);
	gate_free(g);
	store_close(st);
}

int main(void)
{
	const char *const args[] = { "--guests", "200", "--task-seconds", "0.05", NULL };
	char base[256];

	t_tmpdir(base, sizeof(base));
	bench_plan();
	bench_gate();
	if (sim_start(&S, args) != 0) {
		printf("simulator did not start\n");
		return 0;
	}
	bench_pass(base);
	bench_recovery(base);
	sim_stop(&S);
	return 0;
}
