/* test_report.c — the HostReport against its contract and the simulated
 * Proxmox host.
 *
 * The contract: vectors/host-report.golden.json. The report generated
 * here must have the golden's field-name set at every level (top, host,
 * each guest, spec, and each element of every collection that has one;
 * a missing or extra key fails, order is irrelevant) and the golden's wire
 * types (an integer there is a JSON integer here: no '.', no exponent in
 * the raw number text; booleans are true/false; collections are arrays,
 * never null). Then the partial-failure policy, each case against pvesim
 * with fault injection; the cloudflared probe against fake systemctl
 * scripts; and the CPU temperature against fake `sensors` scripts run by
 * the privileged backend in direct mode.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "harness.h"
#include "json.h"
#include "priv.h"
#include "pve.h"
#include "report.h"
#include "sim.h"

#define GOLDEN "vectors/host-report.golden.json"
#define GOLDEN_MD "vectors/host-report.md"
#define OUT_CAP ((size_t)4 << 20)

static struct sim S;
static char g_dir[256];            /* private temp dir for fakes */
static char g_sc[8][320];          /* fake systemctl paths */
enum { SC_ACTIVE, SC_INACTIVE, SC_FAILED, SC_GARBAGE, SC_SLEEP, SC_MISSING, SC_CHATTY, SC_BLANK };
static char g_sens_core[300];      /* dirs holding a fake `sensors` */
static char g_sens_k10[300];
static char g_sens_fail[300];
static char g_sens_garbage[300];
static char g_sens_nocpu[300];
static char g_sleep_pidfile[320];

static const char AUDIT_ONE[] =
	"[{\"at\":\"2026-06-08T18:20:11Z\",\"decision\":\"signed\",\"op\":\"guest_rollback\","
	"\"guest_id\":101,\"signer_key_id\":\"ops-anna\",\"outcome\":\"executed\",\"reason\":\"\"}]";

/* coretemp: max is Core 1's 51.5 -> 52; acpitz (90) and nvme (60) are not the CPU. */
static const char SENSORS_CORETEMP[] =
	"{\"acpitz-acpi-0\":{\"Adapter\":\"ACPI interface\",\"temp1\":{\"temp1_input\":90.000,\"temp1_crit\":119.000}},"
	"\"coretemp-isa-0000\":{\"Adapter\":\"ISA adapter\","
	"\"Package id 0\":{\"temp1_input\":48.000,\"temp1_max\":80.000,\"temp1_crit\":100.000,\"temp1_crit_alarm\":0.000},"
	"\"Core 0\":{\"temp2_input\":45.000,\"temp2_max\":80.000,\"temp2_crit\":100.000,\"temp2_crit_alarm\":0.000},"
	"\"Core 1\":{\"temp3_input\":51.500,\"temp3_max\":80.000,\"temp3_crit\":100.000,\"temp3_crit_alarm\":0.000}},"
	"\"nvme-pci-0100\":{\"Adapter\":\"PCI adapter\",\"Composite\":{\"temp1_input\":60.850,\"temp1_max\":81.850}}}";

/* k10temp: Tctl 62.625 is the max -> 63. */
static const char SENSORS_K10TEMP[] =
	"{\"k10temp-pci-00c3\":{\"Adapter\":\"PCI adapter\",\"Tctl\":{\"temp1_input\":62.625},"
	"\"Tccd1\":{\"temp3_input\":55.250}},"
	"\"amdgpu-pci-0a00\":{\"Adapter\":\"PCI adapter\",\"edge\":{\"temp1_input\":70.000}}}";

static const char SENSORS_NOCPU[] =
	"{\"acpitz-acpi-0\":{\"Adapter\":\"ACPI interface\",\"temp1\":{\"temp1_input\":27.800}}}";

/* ---------------------------------------------------------------------
 * Fixtures.
 */

static void write_script(const char *path, const char *body)
{
	char text[8192];
	int n = snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);

	if (n < 0 || (size_t)n >= sizeof text || t_write_file(path, text, 0755) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		abort();
	}
}

/* dir/sensors printing out (with printf, a dash builtin: the privileged
 * backend's PATH is this directory alone) and exiting with code. */
static void fake_sensors(char *dir, size_t dirlen, const char *name, const char *out, int code)
{
	char path[400], body[4096];

	snprintf(dir, dirlen, "%s/%s", g_dir, name);
	if (mkdir(dir, 0700) != 0) {
		fprintf(stderr, "mkdir %s: %s\n", dir, strerror(errno));
		abort();
	}
	snprintf(path, sizeof path, "%s/sensors", dir);
	snprintf(body, sizeof body, "printf '%%s\\n' '%s'\nexit %d", out, code);
	write_script(path, body);
}

static void make_fakes(void)
{
	static const char *const names[] = { "sc-active", "sc-inactive", "sc-failed", "sc-garbage",
					     "sc-sleep", "sc-missing", "sc-chatty", "sc-blank" };
	char body[1024];
	size_t i;

	t_tmpdir(g_dir, sizeof g_dir);
	for (i = 0; i < 8; i++)
		snprintf(g_sc[i], sizeof g_sc[i], "%s/%s", g_dir, names[i]);
	snprintf(g_sleep_pidfile, sizeof g_sleep_pidfile, "%s/sleep.pid", g_dir);
	/* systemctl is-active: the word on stdout, exit 0 only for active. */
	write_script(g_sc[SC_ACTIVE], "[ \"$1 $2\" = 'is-active cloudflared' ] || exit 9\necho active");
	write_script(g_sc[SC_INACTIVE], "[ \"$1 $2\" = 'is-active cloudflared' ] || exit 9\necho inactive\nexit 3");
	write_script(g_sc[SC_FAILED], "[ \"$1 $2\" = 'is-active cloudflared' ] || exit 9\necho failed\nexit 3");
	write_script(g_sc[SC_GARBAGE], "echo 'Failed to connect to bus: No such file or directory'\necho activating");
	snprintf(body, sizeof body, "sleep 30 &\necho $! > '%s'\nwait\necho active", g_sleep_pidfile);
	write_script(g_sc[SC_SLEEP], body);
	/* SC_MISSING is never written. */
	write_script(g_sc[SC_CHATTY], "i=0\nwhile [ $i -lt 40 ]; do echo active-active; i=$((i+1)); done");
	write_script(g_sc[SC_BLANK], "exit 4");

	fake_sensors(g_sens_core, sizeof g_sens_core, "sens-core", SENSORS_CORETEMP, 0);
	fake_sensors(g_sens_k10, sizeof g_sens_k10, "sens-k10", SENSORS_K10TEMP, 0);
	fake_sensors(g_sens_fail, sizeof g_sens_fail, "sens-fail", "No sensors found!", 1);
	fake_sensors(g_sens_garbage, sizeof g_sens_garbage, "sens-garbage", "{\"coretemp-isa-0000\":{", 0);
	fake_sensors(g_sens_nocpu, sizeof g_sens_nocpu, "sens-nocpu", SENSORS_NOCPU, 0);
}

static void rm_fakes(void)
{
	const char *argv[] = { "/bin/rm", "-rf", g_dir, NULL };
	const char *env[] = { "LC_ALL=C", NULL };

	if (g_dir[0])
		t_run_cmd(argv, env, NULL, NULL);
}

static struct pve_client *client(unsigned max_guests)
{
	struct pve_opts o;
	struct pve_client *c = NULL;
	struct pve_err e;

	memset(&o, 0, sizeof o);
	o.endpoint = S.endpoint;
	o.node = "pve";
	o.token = S.token;
	o.tls_fingerprint = S.fingerprint;
	o.request_timeout_ms = 5000;
	o.max_guests = max_guests;
	if (pve_client_new(&o, &c, &e)) {
		t_failf(__FILE__, __LINE__, "pve_client_new: %s", e.reason);
		return NULL;
	}
	return c;
}

static struct priv *sensors_backend(const char *dir)
{
	struct priv_opts o;
	struct priv *p = NULL;

	memset(&o, 0, sizeof o);
	o.mode = PRIV_MODE_DIRECT;
	o.path = dir;
	o.timeout_ms = 5000;
	if (priv_new(&o, &p) != 0) {
		t_failf(__FILE__, __LINE__, "priv_new(%s)", dir);
		return NULL;
	}
	return p;
}

static void sources(struct report_sources *s, struct pve_client *c, struct priv *p, const char *systemctl)
{
	memset(s, 0, sizeof *s);
	s->pve = c;
	s->priv = p;
	s->host_id = "host-7f3a";
	s->agent_version = "9.9.9-test";
	s->systemctl_path = systemctl;
}

static struct json *parse(const char *p, size_t n)
{
	const struct json_limits lim = { OUT_CAP, 32, false };
	struct json *j = NULL;
	char why[128] = "";

	if (json_parse(p, n, &lim, &j, why, sizeof why) != 0) {
		t_failf(__FILE__, __LINE__, "report is not JSON: %s", why);
		return NULL;
	}
	return j;
}

static struct json *load_golden(void)
{
	size_t n = 0;
	char *text = t_slurp(GOLDEN, &n);
	struct json *j;

	if (!text) {
		t_failf(__FILE__, __LINE__, "cannot read %s", GOLDEN);
		return NULL;
	}
	j = parse(text, n);
	free(text);
	return j;
}

/* Collects one report into a fresh buffer and parses it. */
static struct json *collect(const struct report_sources *s, struct report_err *e, struct buf *b)
{
	buf_init(b, OUT_CAP);
	if (report_collect(s, b, e) != 0) {
		t_failf(__FILE__, __LINE__, "report_collect failed at %s: %s", e->step, e->pve.reason);
		return NULL;
	}
	return parse(b->data, b->len);
}

/* ---------------------------------------------------------------------
 * The contract checker.
 */

static bool is_int_text(const struct json *j)
{
	return j->type == JSON_NUMBER && !strpbrk(j->s, ".eE");
}

/* Paths (a "[]" per array level) whose value may be null, and keys that
 * may be absent (the spec of a guest whose config could not be read). */
static const char *const NULLABLE[] = {
	"host.cpu_temp_c", "storage_targets[].thin_pool", "storage_targets[].smart.temperature_c",
	"storage_targets[].smart.percentage_used", "audit_tail[].guest_id", NULL
};
static const char *const OPTIONAL[] = { "guests[].spec", NULL };

static bool listed(const char *const list[], const char *path)
{
	size_t i;

	for (i = 0; list[i]; i++)
		if (!strcmp(list[i], path))
			return true;
	return false;
}

static int g_quiet; /* check_shape counts without failing the test */

#define SHAPE_FAIL(...) do { if (!g_quiet) t_failf(__FILE__, __LINE__, __VA_ARGS__); } while (0)

static const char *tname(enum json_type t)
{
	static const char *const n[] = { "null", "bool", "number", "string", "array", "object" };
	return n[t];
}

/* got must have exactly gold's keys (order irrelevant), except OPTIONAL ones
 * that may be missing; each value the golden's wire type, recursively.
 * Returns the number of problems found (each reported). */
static int check_shape(const struct json *gold, const struct json *got, const char *path)
{
	char sub[256];
	size_t i, k;
	int bad = 0;

	if (got->type == JSON_NULL && listed(NULLABLE, path))
		return 0;
	if (gold->type != got->type) {
		SHAPE_FAIL("%s: golden type %s, report type %s", path, tname(gold->type),
			tname(got->type));
		return 1;
	}
	switch (gold->type) {
	case JSON_NUMBER:
		if (is_int_text(gold) && !is_int_text(got)) {
			SHAPE_FAIL("%s: golden integer, report number text \"%s\"", path, got->s);
			bad++;
		}
		break;
	case JSON_ARRAY:
		if (gold->n == 0) {
			SHAPE_FAIL("%s: golden documents no element shape", path);
			return 1;
		}
		snprintf(sub, sizeof sub, "%s[]", path);
		for (i = 0; i < got->n; i++)
			bad += check_shape(gold->items[0], got->items[i], sub);
		break;
	case JSON_OBJECT:
		for (i = 0; i < gold->n; i++) {
			const struct json *v = json_get(got, gold->keys[i]);

			snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", gold->keys[i]);
			if (!v) {
				if (!listed(OPTIONAL, sub)) {
					SHAPE_FAIL("%s: missing in the report", sub);
					bad++;
				}
				continue;
			}
			bad += check_shape(gold->items[i], v, sub);
		}
		for (k = 0; k < got->n; k++) {
			if (!json_get(gold, got->keys[k])) {
				SHAPE_FAIL("%s%s%s: not in the golden file", path,
					path[0] ? "." : "", got->keys[k]);
				bad++;
			}
		}
		break;
	default:
		break;
	}
	return bad;
}

static const char *str_at(const struct json *j, const char *key)
{
	const struct json *v = json_get(j, key);
	return v && v->type == JSON_STRING ? v->s : NULL;
}

static const struct json *guest(const struct json *rep, int vmid)
{
	const struct json *gs = json_get(rep, "guests");
	size_t i;

	for (i = 0; gs && gs->type == JSON_ARRAY && i < gs->n; i++) {
		int64_t v;
		if (json_int_strict(json_get(gs->items[i], "vmid"), &v) == 0 && v == vmid)
			return gs->items[i];
	}
	return NULL;
}

static int64_t int_at(const struct json *j, const char *dotted)
{
	int64_t v = -999999;

	if (json_int_strict(json_path(j, dotted), &v) != 0)
		t_failf(__FILE__, __LINE__, "%s is not a JSON integer", dotted);
	return v;
}

static bool bool_at(const struct json *j, const char *dotted)
{
	const struct json *v = json_path(j, dotted);

	if (!v || v->type != JSON_BOOL) {
		t_failf(__FILE__, __LINE__, "%s is not true/false", dotted);
		return false;
	}
	return v->b;
}

static double pct_at(const struct json *j, const char *dotted)
{
	const struct json *v = json_path(j, dotted);
	double d = -1.0;

	if (!v || v->type != JSON_NUMBER || json_double(v, &d) != 0)
		t_failf(__FILE__, __LINE__, "%s is not a number", dotted);
	else if (!(d >= 0.0 && d <= 100.0))
		t_failf(__FILE__, __LINE__, "%s = %s outside 0..100", dotted, v->s);
	return d;
}

/* Every key of the golden file, at any depth, named as `key` in the doc. */
static void check_doc_names(const struct json *j, const char *doc)
{
	char want[96];
	size_t i;

	if (j->type != JSON_OBJECT && j->type != JSON_ARRAY)
		return;
	for (i = 0; i < j->n; i++) {
		if (j->type == JSON_OBJECT) {
			snprintf(want, sizeof want, "`%s`", j->keys[i]);
			if (!strstr(doc, want))
				t_failf(__FILE__, __LINE__, "%s does not document %s", GOLDEN_MD, want);
		}
		check_doc_names(j->items[i], doc);
	}
}

/* ---------------------------------------------------------------------
 * Tests.
 */

/* The golden file itself: one example element per collection, every
 * field documented in host-report.md, integers where the contract says. */
T_TEST(t_golden_is_complete)
{
	static const char *const colls[] = { "guests", "storage_targets", "backups", "restore_tests",
					     "pbs_snapshots", "audit_tail", NULL };
	struct json *g = load_golden();
	char *doc = t_slurp(GOLDEN_MD, NULL);
	size_t i;

	if (!g || !doc) {
		T_CHECK(doc != NULL);
		json_free(g);
		free(doc);
		return;
	}
	T_EQ_INT(g->type, JSON_OBJECT);
	for (i = 0; colls[i]; i++) {
		const struct json *c = json_get(g, colls[i]);
		T_CHECK(c && c->type == JSON_ARRAY && c->n == 1);
		if (c && c->n == 1)
			T_EQ_INT(c->items[0]->type, JSON_OBJECT);
	}
	T_CHECK(json_path(g, "guests") && json_get(json_get(g, "guests")->items[0], "spec") != NULL);
	T_EQ_INT(json_get(json_get(g, "host"), "loadavg")->n, 3);
	check_doc_names(g, doc);
	T_CHECK(strstr(doc, "byte-identical") != NULL);
	json_free(g);
	free(doc);
}

T_TEST(t_contract_matches_golden)
{
	struct pve_client *c = client(0);
	struct priv *p = sensors_backend(g_sens_core);
	struct report_sources s;
	struct report_err e;
	struct pve_node_status ns;
	struct pve_err pe;
	struct json *gold = load_golden(), *rep = NULL;
	const struct json *gs, *la, *at;
	struct buf b;
	size_t i;

	buf_init(&b, OUT_CAP);
	if (!c || !p || !gold)
		goto out;
	sources(&s, c, p, g_sc[SC_ACTIVE]);
	s.audit_tail_json = AUDIT_ONE;
	s.now = 1780943345; /* 2026-06-08T18:29:05Z */
	rep = collect(&s, &e, &b);
	if (!rep)
		goto out;
	T_EQ_STR(e.step, "");
	T_EQ_INT(e.specs_dropped, 0);
	T_EQ_INT(e.temp_code, 0);
	T_EQ_INT(e.cloudflared_code, 0);

	/* key sets and wire types at every level */
	T_EQ_INT(check_shape(gold, rep, ""), 0);

	/* collections: arrays, never null; audit_tail carries the given element */
	T_CHECK(json_get(rep, "storage_targets")->type == JSON_ARRAY);
	T_EQ_INT(json_get(rep, "storage_targets")->n, 0);
	T_EQ_INT(json_get(rep, "backups")->n, 0);
	T_EQ_INT(json_get(rep, "restore_tests")->n, 0);
	T_EQ_INT(json_get(rep, "pbs_snapshots")->n, 0);
	at = json_get(rep, "audit_tail");
	T_CHECK(at && at->type == JSON_ARRAY && at->n == 1);
	if (at && at->n == 1) {
		T_EQ_STR(str_at(at->items[0], "op"), "guest_rollback");
		T_EQ_INT(int_at(at->items[0], "guest_id"), 101);
	}

	/* top level */
	T_EQ_STR(str_at(rep, "host_id"), "host-7f3a");
	T_EQ_STR(str_at(rep, "agent_version"), "9.9.9-test");
	T_EQ_STR(str_at(rep, "generated_at"), "2026-06-08T18:29:05Z");
	T_EQ_STR(str_at(rep, "cloudflared"), "active");

	/* host, against what the client reads */
	T_OK(pve_node_status(c, &ns, &pe));
	T_EQ_STR(json_path(rep, "host.node")->s, "pve");
	T_EQ_INT(int_at(rep, "host.memory_total_bytes"), ns.mem_total);
	T_EQ_INT(int_at(rep, "host.memory_used_bytes"), ns.mem_used);
	T_EQ_INT(int_at(rep, "host.disk_total_bytes"), ns.rootfs_total);
	T_EQ_INT(int_at(rep, "host.disk_used_bytes"), ns.rootfs_used);
	T_CHECK(int_at(rep, "host.uptime_seconds") > 0);
	T_EQ_INT(int_at(rep, "host.cpu_temp_c"), 52);
	pct_at(rep, "host.cpu_percent");
	{
		double mp = pct_at(rep, "host.memory_percent");
		double want = 100.0 * (double)ns.mem_used / (double)ns.mem_total;
		T_CHECK(mp > want - 0.01 && mp < want + 0.01);
	}
	pct_at(rep, "host.disk_percent");
	la = json_path(rep, "host.loadavg");
	T_CHECK(la && la->type == JSON_ARRAY && la->n == 3);
	for (i = 0; la && i < la->n; i++) {
		T_EQ_INT(la->items[i]->type, JSON_STRING);
		T_EQ_STR(la->items[i]->s, ns.loadavg[i]);
	}

	/* guests: sorted, each with a spec equal to its config */
	gs = json_get(rep, "guests");
	T_CHECK(gs && gs->n == 3);
	for (i = 0; gs && i < gs->n; i++) {
		const struct json *g = gs->items[i];
		struct pve_guest_config gc;
		int vmid = (int)int_at(g, "vmid");

		T_EQ_INT(vmid, 101 + (int)i);
		T_CHECK(json_get(g, "spec") != NULL);
		if (pve_guest_config(c, vmid, &gc, &pe) != 0) {
			T_CHECK(0);
			continue;
		}
		T_EQ_INT(int_at(g, "spec.cores"), gc.cores);
		T_EQ_INT(int_at(g, "spec.memory_mib"), gc.memory_mib);
		T_EQ_INT(int_at(g, "spec.swap_mib"), gc.swap_mib);
		T_EQ_INT(int_at(g, "spec.rootfs_gib"), gc.rootfs_gib);
		T_EQ_STR(json_path(g, "spec.hostname")->s, gc.hostname);
		T_EQ_STR(str_at(g, "name"), gc.hostname); /* pvesim names guests by hostname */
		T_CHECK(bool_at(g, "spec.unprivileged") == gc.unprivileged);
		T_CHECK(bool_at(g, "spec.onboot") == gc.onboot);
		pve_guest_config_free(&gc);
	}
	/* pvesim seeds 101 and 103 running, 102 stopped; onboot on 101 and 103 */
	T_EQ_STR(str_at(guest(rep, 101), "status"), "running");
	T_EQ_STR(str_at(guest(rep, 102), "status"), "stopped");
	T_EQ_STR(str_at(guest(rep, 103), "status"), "running");
	T_CHECK(bool_at(guest(rep, 101), "spec.onboot"));
	T_CHECK(!bool_at(guest(rep, 102), "spec.onboot"));
out:
	json_free(rep);
	json_free(gold);
	buf_free(&b);
	priv_free(p);
	pve_client_free(c);
}

/* The checker itself fails on drift: each mutation of the golden text
 * (a renamed, extra or missing key at some level, a float where an integer
 * is due, 1 for a boolean) and each synthetic case (a null collection, a
 * null where null is not allowed, an element of the wrong shape) must be
 * found; the golden against itself finds nothing. */
T_TEST(t_checker_catches_drift)
{
	static const struct { const char *from, *to; } muts[] = {
		{ "\"cpu_percent\"", "\"cpu_pct\"" },
		{ "\"uptime_seconds\": 864000", "\"uptime_seconds\": 864000.0" },
		{ "\"cpu_temp_c\": 47", "\"cpu_temp_c\": 4.7e1" },
		{ "\"onboot\": true", "\"onboot\": 1" },
		{ "\"reachable\": true,", "" },
		{ "\"host_id\": \"host-7f3a\",", "\"host_id\": \"host-7f3a\", \"hub_id\": \"x\"," },
		{ "\"hostname\": \"cust-101\",", "\"hostname\": \"cust-101\", \"arch\": \"amd64\"," },
		{ "\"verified\": true", "\"verified\": \"yes\"" },
		{ "\"cloudflared\": \"active\"", "\"cloudflared\": null" },
	};
	static const struct { const char *gold, *got; } pairs[] = {
		{ "{\"a\":[{\"x\":1}]}", "{\"a\":null}" },
		{ "{\"a\":[{\"x\":1}]}", "{\"a\":{}}" },
		{ "{\"a\":[{\"x\":1}]}", "{\"a\":[{\"x\":1},{\"y\":1}]}" },
		{ "{\"a\":[{\"x\":1}]}", "{\"a\":[{\"x\":1,\"y\":2}]}" },
		{ "{\"a\":[{\"x\":1}]}", "{\"a\":[{\"x\":null}]}" },
		{ "{\"a\":[]}", "{\"a\":[]}" },  /* no documented element shape */
	};
	struct json *gold = load_golden(), *bad, *g2;
	char *text;
	size_t n = 0, i;

	if (!gold)
		return;
	text = t_slurp(GOLDEN, &n);
	T_CHECK(text != NULL);
	for (i = 0; text && i < sizeof muts / sizeof muts[0]; i++) {
		const char *at = strstr(text, muts[i].from);
		struct buf m;

		T_CHECK(at != NULL);
		if (!at)
			continue;
		buf_init(&m, OUT_CAP);
		T_OK(buf_append(&m, text, (size_t)(at - text)));
		T_OK(buf_appendz(&m, muts[i].to));
		T_OK(buf_appendz(&m, at + strlen(muts[i].from)));
		bad = parse(m.data, m.len);
		if (bad) {
			g_quiet = 1;
			if (check_shape(gold, bad, "") == 0)
				t_failf(__FILE__, __LINE__, "mutation %zu (%s) not caught", i, muts[i].to);
			g_quiet = 0;
		}
		json_free(bad);
		buf_free(&m);
	}
	for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		g2 = parse(pairs[i].gold, strlen(pairs[i].gold));
		bad = parse(pairs[i].got, strlen(pairs[i].got));
		if (g2 && bad) {
			g_quiet = 1;
			if (check_shape(g2, bad, "") == 0)
				t_failf(__FILE__, __LINE__, "pair %zu (%s) not caught", i, pairs[i].got);
			g_quiet = 0;
		}
		json_free(g2);
		json_free(bad);
	}
	T_EQ_INT(check_shape(gold, gold, ""), 0);
	free(text);
	json_free(gold);
}

/* Node status failing is fatal: its error, step "node_status", nothing
 * appended, and nothing else asked of Proxmox. */
T_TEST(t_node_status_failure_is_fatal)
{
	struct pve_client *c = client(0);
	struct report_sources s;
	struct report_err e;
	struct buf b;

	buf_init(&b, OUT_CAP);
	if (!c)
		return;
	sim_reset(&S);
	T_EQ_INT(sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/nodes/pve/status$\",\"status\":500,"
			       "\"reason\":\"node status exploded\",\"count\":1}"), 200);
	sources(&s, c, NULL, g_sc[SC_ACTIVE]);
	T_OK(buf_appendz(&b, "previous"));
	T_ERR(report_collect(&s, &b, &e), FH_ERR_HTTP_5XX);
	T_EQ_STR(e.step, "node_status");
	T_EQ_INT(e.pve.http_status, 500);
	T_EQ_STR(e.pve.reason, "node status exploded");
	T_EQ_INT(b.len, strlen("previous"));
	T_EQ_STR(buf_str(&b), "previous");
	T_EQ_INT(sim_count_path(&S, "GET /api2/json/nodes/pve/lxc"), 0);
	T_EQ_INT(sim_stat(&S, "requests"), 1);
	/* the next cycle works again */
	buf_reset(&b);
	T_OK(report_collect(&s, &b, &e));
	T_CHECK(b.len > 0 && b.data[0] == '{');
	buf_free(&b);
	pve_client_free(c);
}

/* The list failing is fatal too (an empty list would say every guest is
 * gone), and so is a list over the client's max_guests. */
T_TEST(t_list_failure_is_fatal)
{
	struct pve_client *c = client(0), *small = client(2);
	struct report_sources s;
	struct report_err e;
	struct buf b;

	buf_init(&b, OUT_CAP);
	if (!c || !small)
		goto out;
	sim_reset(&S);
	T_EQ_INT(sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/nodes/pve/lxc$\",\"status\":596,"
			       "\"reason\":\"Connection timed out\",\"count\":1}"), 200);
	sources(&s, c, NULL, g_sc[SC_ACTIVE]);
	T_ERR(report_collect(&s, &b, &e), FH_ERR_HTTP_PROXY);
	T_EQ_STR(e.step, "lxc_list");
	T_EQ_INT(b.len, 0);
	sources(&s, small, NULL, g_sc[SC_ACTIVE]);
	T_ERR(report_collect(&s, &b, &e), FH_ERR_TOOBIG);
	T_EQ_STR(e.step, "lxc_list");
	T_EQ_INT(b.len, 0);
out:
	buf_free(&b);
	pve_client_free(small);
	pve_client_free(c);
}

/* One guest's config failing: that guest keeps its listed run status and
 * has no spec key; the others have one. Once for a running guest (101),
 * once for a stopped one (102). */
T_TEST(t_guest_config_failure_drops_only_spec)
{
	static const struct { int vmid; const char *status; } cases[] = { { 101, "running" }, { 102, "stopped" } };
	struct pve_client *c = client(0);
	struct json *gold = load_golden();
	size_t k;

	if (!c || !gold)
		goto out;
	for (k = 0; k < 2; k++) {
		struct report_sources s;
		struct report_err e;
		struct json *rep;
		struct buf b;
		char fault[256];
		int v;

		sim_reset(&S);
		snprintf(fault, sizeof fault,
			 "{\"method\":\"GET\",\"path_regex\":\"/lxc/%d/config$\",\"status\":500,"
			 "\"reason\":\"can't lock file '/run/lock/lxc/pve-config-%d.lock' - got timeout\",\"count\":1}",
			 cases[k].vmid, cases[k].vmid);
		T_EQ_INT(sim_fault(&S, fault), 200);
		sources(&s, c, NULL, g_sc[SC_ACTIVE]);
		rep = collect(&s, &e, &b);
		if (rep) {
			T_EQ_INT(check_shape(gold, rep, ""), 0);
			T_EQ_INT(json_get(rep, "guests")->n, 3);
			for (v = 101; v <= 103; v++) {
				const struct json *g = guest(rep, v);

				T_CHECK(g != NULL);
				if (!g)
					continue;
				if (v == cases[k].vmid) {
					T_EQ_STR(str_at(g, "status"), cases[k].status);
					T_CHECK(json_get(g, "spec") == NULL);
					T_EQ_INT(g->n, 3); /* vmid, name, status */
				} else {
					T_CHECK(json_get(g, "spec") != NULL);
					T_CHECK(int_at(g, "spec.cores") > 0);
				}
			}
			T_EQ_INT(e.specs_dropped, 1);
			T_EQ_INT(e.spec_vmid, cases[k].vmid);
			T_EQ_INT(e.spec_code, FH_ERR_HTTP_5XX);
			T_EQ_STR(e.step, "");
		}
		json_free(rep);
		buf_free(&b);
	}
out:
	json_free(gold);
	pve_client_free(c);
}

/* An empty status (and any status that is not running or stopped)
 * becomes "unknown"; the spec is still there. */
T_TEST(t_empty_status_is_unknown)
{
	struct pve_client *c = client(0);
	struct report_sources s;
	struct report_err e;
	struct json *rep = NULL;
	struct buf b;

	buf_init(&b, OUT_CAP);
	if (!c)
		return;
	T_EQ_INT(sim_control(&S, "POST", "/guest", "{\"vmid\":103,\"status\":\"\"}", NULL, 0), 200);
	T_EQ_INT(sim_control(&S, "POST", "/guest", "{\"vmid\":101,\"status\":\"paused\"}", NULL, 0), 200);
	sources(&s, c, NULL, g_sc[SC_ACTIVE]);
	buf_free(&b);
	rep = collect(&s, &e, &b);
	if (rep) {
		T_EQ_STR(str_at(guest(rep, 103), "status"), "unknown");
		T_EQ_STR(str_at(guest(rep, 101), "status"), "unknown");
		T_EQ_STR(str_at(guest(rep, 102), "status"), "stopped");
		T_CHECK(json_get(guest(rep, 103), "spec") != NULL);
	}
	json_free(rep);
	buf_free(&b);
	T_EQ_INT(sim_control(&S, "POST", "/reset", "{\"state\":true}", NULL, 0), 200);
	pve_client_free(c);
}

/* Is pid gone (or a zombie waiting for init)? Waits up to 2 s. */
static bool pid_gone(pid_t pid)
{
	int i;

	for (i = 0; i < 200; i++) {
		char path[64], *st;
		bool zombie = false;

		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		st = t_slurp(path, NULL);
		if (st) {
			const char *rp = strrchr(st, ')');
			zombie = rp && rp[1] == ' ' && rp[2] == 'Z';
			free(st);
		}
		if (zombie)
			return true;
		usleep(10000);
	}
	return false;
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cloudflared probe against fake systemctl executables. */
T_TEST(t_cloudflared_probe)
{
	static const struct { int sc; const char *word; int code; } cases[] = {
		{ SC_ACTIVE, "active", 0 },
		{ SC_INACTIVE, "inactive", 0 },        /* exit 3, the word decides */
		{ SC_FAILED, "failed", 0 },            /* exit 3 */
		{ SC_GARBAGE, "unknown", FH_ERR_DECODE },
		{ SC_MISSING, "unknown", FH_ERR_SPAWN },
		{ SC_CHATTY, "unknown", FH_ERR_TOOBIG }, /* over 256 bytes */
		{ SC_BLANK, "unknown", FH_ERR_DECODE },  /* nothing on stdout */
	};
	const char *word = NULL;
	long long t0, dt;
	char *pidtxt;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		word = NULL;
		T_EQ_INT(report_probe_cloudflared(g_sc[cases[i].sc], &word), cases[i].code);
		T_EQ_STR(word, cases[i].word);
	}
	/* relative paths are refused, nothing runs */
	T_ERR(report_probe_cloudflared("systemctl", &word), FH_ERR_INVAL);
	T_EQ_STR(word, "unknown");

	/* a probe that hangs: unknown after the 2 s bound, its whole group killed */
	unlink(g_sleep_pidfile);
	t0 = ms_now();
	T_ERR(report_probe_cloudflared(g_sc[SC_SLEEP], &word), FH_ERR_TIMEOUT);
	dt = ms_now() - t0;
	T_EQ_STR(word, "unknown");
	T_CHECK(dt >= REPORT_PROBE_TIMEOUT_MS - 50 && dt < REPORT_PROBE_TIMEOUT_MS + 1500);
	pidtxt = t_slurp(g_sleep_pidfile, NULL);
	T_CHECK(pidtxt != NULL);
	if (pidtxt) {
		pid_t sp = (pid_t)atoi(pidtxt);
		T_CHECK(sp > 1);
		if (sp > 1)
			T_CHECK(pid_gone(sp));
		free(pidtxt);
	}
}

/* The probe's word in a whole report, and a failed probe never fatal. */
T_TEST(t_cloudflared_in_report)
{
	static const struct { int sc; const char *word; } cases[] = {
		{ SC_FAILED, "failed" }, { SC_INACTIVE, "inactive" }, { SC_MISSING, "unknown" },
	};
	struct pve_client *c = client(0);
	size_t i;

	if (!c)
		return;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct report_sources s;
		struct report_err e;
		struct json *rep;
		struct buf b;

		sources(&s, c, NULL, g_sc[cases[i].sc]);
		rep = collect(&s, &e, &b);
		if (rep)
			T_EQ_STR(str_at(rep, "cloudflared"), cases[i].word);
		T_EQ_INT(e.cloudflared_code, cases[i].sc == SC_MISSING ? FH_ERR_SPAWN : 0);
		json_free(rep);
		buf_free(&b);
	}
	pve_client_free(c);
}

/* cpu_temp_c through a privileged backend in direct mode running a fake
 * `sensors`: the integer for coretemp and k10temp shapes, null otherwise. */
T_TEST(t_cpu_temp)
{
	static const struct { const char *dir; bool known; int temp; int code; } cases[] = {
		{ g_sens_core, true, 52, 0 },
		{ g_sens_k10, true, 63, 0 },
		{ g_sens_fail, false, 0, FH_ERR_EXIT },
		{ g_sens_garbage, false, 0, FH_ERR_DECODE },
		{ g_sens_nocpu, false, 0, FH_ERR_NOT_FOUND },
		{ NULL, false, 0, FH_ERR_INVAL },       /* no privileged backend */
	};
	struct pve_client *c = client(0);
	size_t i;

	if (!c)
		return;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct priv *p = cases[i].dir ? sensors_backend(cases[i].dir) : NULL;
		struct report_sources s;
		struct report_err e;
		struct json *rep;
		struct buf b;
		const struct json *t;

		sources(&s, c, p, g_sc[SC_ACTIVE]);
		rep = collect(&s, &e, &b);
		t = rep ? json_path(rep, "host.cpu_temp_c") : NULL;
		T_CHECK(t != NULL);
		if (t && cases[i].known) {
			T_CHECK(is_int_text(t));
			T_EQ_INT(int_at(rep, "host.cpu_temp_c"), cases[i].temp);
		} else if (t) {
			T_EQ_INT(t->type, JSON_NULL);
		}
		T_EQ_INT(e.temp_code, cases[i].code);
		json_free(rep);
		buf_free(&b);
		priv_free(p);
	}
	pve_client_free(c);
}

/* The sensors parser on its own: shapes, bounds, rounding. */
T_TEST(t_parse_sensors)
{
	int t = -1;

	T_OK(report_parse_sensors(SENSORS_CORETEMP, strlen(SENSORS_CORETEMP), &t));
	T_EQ_INT(t, 52);
	T_OK(report_parse_sensors(SENSORS_K10TEMP, strlen(SENSORS_K10TEMP), &t));
	T_EQ_INT(t, 63);
	t = -1;
	T_ERR(report_parse_sensors(SENSORS_NOCPU, strlen(SENSORS_NOCPU), &t), FH_ERR_NOT_FOUND);
	T_EQ_INT(t, -1);
	T_ERR(report_parse_sensors("[]", 2, &t), FH_ERR_DECODE);
	T_ERR(report_parse_sensors("{} x", 4, &t), FH_ERR_DECODE);
	T_ERR(report_parse_sensors("", 0, &t), FH_ERR_DECODE);
	/* a bogus reading is ignored, the sane one kept; strings are not readings */
	{
		static const char j[] = "{\"coretemp-isa-0000\":{\"Package id 0\":{\"temp1_input\":-273.0},"
					"\"Core 0\":{\"temp2_input\":40.4,\"temp2_max\":99.0},"
					"\"Core 1\":{\"temp3_input\":\"88\"}}}";
		T_OK(report_parse_sensors(j, strlen(j), &t));
		T_EQ_INT(t, 40);
	}
	{
		static const char j[] = "{\"zenpower-pci-00c3\":{\"Tdie\":{\"temp1_input\":49.5}}}";
		T_OK(report_parse_sensors(j, strlen(j), &t));
		T_EQ_INT(t, 50);
	}
	{
		static const char j[] = "{\"coretemp-isa-0000\":{\"Package id 0\":{\"temp1_input\":1e3}}}";
		T_ERR(report_parse_sensors(j, strlen(j), &t), FH_ERR_NOT_FOUND);
	}
}

/* Caller errors and caps: no host_id; an audit tail that is not a JSON
 * array (checked before any request); a report over the buffer's cap
 * leaves the buffer as it was. */
T_TEST(t_args_audit_and_output_cap)
{
	static const char *const bad_audit[] = { "{}", "[1,", "", "\"x\"", "[] []", NULL };
	struct pve_client *c = client(0);
	struct report_sources s;
	struct report_err e;
	struct json *rep;
	struct buf b;
	size_t i;

	buf_init(&b, OUT_CAP);
	if (!c)
		return;
	sim_reset(&S);
	sources(&s, c, NULL, g_sc[SC_ACTIVE]);
	s.host_id = NULL;
	T_ERR(report_collect(&s, &b, &e), FH_ERR_INVAL);
	T_EQ_STR(e.step, "args");
	s.host_id = "";
	T_ERR(report_collect(&s, &b, &e), FH_ERR_INVAL);
	s.host_id = "host-7f3a";
	T_ERR(report_collect(NULL, &b, &e), FH_ERR_INVAL);
	T_ERR(report_collect(&s, NULL, NULL), FH_ERR_INVAL);
	for (i = 0; bad_audit[i]; i++) {
		s.audit_tail_json = bad_audit[i];
		T_ERR(report_collect(&s, &b, &e), FH_ERR_DECODE);
		T_EQ_STR(e.step, "audit_tail");
	}
	T_EQ_INT(sim_stat(&S, "requests"), 0);
	T_EQ_INT(b.len, 0);

	/* an empty array embeds as [] */
	s.audit_tail_json = " [ ] ";
	buf_free(&b);
	rep = collect(&s, &e, &b);
	if (rep)
		T_CHECK(json_get(rep, "audit_tail")->type == JSON_ARRAY && json_get(rep, "audit_tail")->n == 0);
	json_free(rep);
	buf_free(&b);

	/* over the cap: FH_ERR_TOOBIG, step output, buffer untouched */
	s.audit_tail_json = NULL;
	buf_init(&b, 200);
	T_OK(buf_appendz(&b, "kept"));
	T_ERR(report_collect(&s, &b, &e), FH_ERR_TOOBIG);
	T_EQ_STR(e.step, "output");
	T_EQ_STR(buf_str(&b), "kept");
	buf_free(&b);

	/* default agent_version and the real clock */
	s.agent_version = NULL;
	rep = collect(&s, &e, &b);
	if (rep) {
		const char *ga = str_at(rep, "generated_at");
		T_EQ_STR(str_at(rep, "agent_version"), FH_VERSION);
		T_CHECK(ga && strlen(ga) == 20 && ga[4] == '-' && ga[10] == 'T' && ga[19] == 'Z');
	}
	json_free(rep);
	buf_free(&b);
	pve_client_free(c);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	make_fakes();
	if (sim_start(&S, NULL)) {
		printf("FAIL sim_start\n# passed 0 failed 1\n");
		rm_fakes();
		return 1;
	}
	T_RUN(t_golden_is_complete);
	T_RUN(t_contract_matches_golden);
	T_RUN(t_checker_catches_drift);
	T_RUN(t_node_status_failure_is_fatal);
	T_RUN(t_list_failure_is_fatal);
	T_RUN(t_guest_config_failure_drops_only_spec);
	T_RUN(t_empty_status_is_unknown);
	T_RUN(t_cloudflared_probe);
	T_RUN(t_cloudflared_in_report);
	T_RUN(t_cpu_temp);
	T_RUN(t_parse_sensors);
	T_RUN(t_args_audit_and_output_cap);
	sim_stop(&S);
	rm_fakes();
	curl_global_cleanup();
	return t_done();
}
