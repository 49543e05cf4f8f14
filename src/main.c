/* main.c — felhom-agent's command line: parses flags, loads the config,
 * and runs one mode. Library code returns errors; this file decides what
 * to print and the exit status (0 ok, 1 failure, 2 usage). */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <yajl/yajl_gen.h>

#include "buf.h"
#include "cfg.h"
#include "daemon.h"
#include "err.h"
#include "json.h"
#include "lapi.h"
#include "log.h"
#include "jrnl.h"
#include "mountunit.h"
#include "opblob.h"
#include "pve.h"
#include "recon.h"
#include "sig.h"
#include "store.h"

#define EXIT_USAGE 2

static const char usage_text[] =
	"usage: felhom-agent [--config PATH] [--state-dir DIR] [MODE]\n"
	"\n"
	"modes:\n"
	"  (none)                 run the daemon: report to the hub at once, then every\n"
	"                         interval (SIGTERM/SIGINT stop, SIGHUP reloads the config)\n"
	"  --status               print the running daemon's status file; exit 0 when\n"
	"                         healthy, 1 when unhealthy or missing\n"
	"  --selftest[=read]      read-only report of the Proxmox host: version, nodes,\n"
	"                         node status, guests with their config, storage\n"
	"  --selftest=task --vmid N\n"
	"                         snapshot -> rollback -> delete-snapshot on guest N, one\n"
	"                         journaled job through the reconcile engine (benign: it\n"
	"                         touches only the snapshot it made), each task waited for\n"
	"  --replay-journal [--dry-run]\n"
	"                         resolve the journal's in-flight entries as the daemon does\n"
	"                         at start-up and print what was found and done; --dry-run\n"
	"                         only looks (nothing is written or posted)\n"
	"  --dump-journal         print every journal entry kept, one JSON object a line\n"
	"  --selftest=hub         one collect + report to the hub; prints the report and\n"
	"                         the hub's envelope\n"
	"  --verify-op BLOB_FILE SIG_FILE\n"
	"                         run the signed-operation pipeline on an op blob and its\n"
	"                         armored SSH signature against the configured signers,\n"
	"                         host id and nonce store; prints the verified op as JSON\n"
	"                         (exit 0) or the rejection name and a reason (exit 1).\n"
	"                         A verified op's nonce is recorded: it cannot be used twice.\n"
	"  --print-config         print the effective configuration, secrets redacted\n"
	"  --print-fingerprint[=spki]\n"
	"                         print the local API leaf's SHA-256 (AA:BB:..), or with\n"
	"                         =spki curl's sha256//BASE64 pin; creates the key and\n"
	"                         certificate in STATE_DIR/localapi/ first if absent\n"
	"  --issue-token VMID     create or rotate guest VMID's local API token; prints\n"
	"                         it alone on stdout, once (only its hash is kept)\n"
	"  --revoke-token VMID    revoke guest VMID's local API token\n"
	"  --mount-unit add MOUNT_ROOT UUID FSTYPE OPTIONS\n"
	"  --mount-unit remove MOUNT_ROOT HEX\n"
	"                         root only, run by the agent through sudo (first argument,\n"
	"                         no config, no environment): write, enable and start the\n"
	"                         mount unit of a data filesystem from a fixed template, or\n"
	"                         stop, disable and delete it (docs/OPERATIONS.md)\n"
	"  --version              print the version\n"
	"  --help                 this text\n"
	"\n"
	"options:\n"
	"  --config PATH          config file (default " CFG_DEFAULT_PATH ")\n"
	"  --state-dir DIR        durable state directory (overrides state_dir)\n"
	"  --vmid N               guest for --selftest=task\n"
	"  --signers FILE         signer lines for --verify-op (ROLE KEY_ID KEYTYPE BASE64\n"
	"                         [COMMENT]); replaces authz.signers and authz.signers_file\n"
	"  --host-id ID           this host's id for --verify-op (replaces hub.host_id)\n"
	"\n"
	"Every config key can be overridden by FELHOM_AGENT_<SECTION>_<KEY>.\n";

enum mode { MODE_DAEMON, MODE_SELFTEST_READ, MODE_SELFTEST_TASK, MODE_SELFTEST_HUB, MODE_PRINT_CONFIG,
	    MODE_VERSION, MODE_HELP, MODE_STATUS, MODE_VERIFY_OP, MODE_PRINT_FP, MODE_ISSUE_TOKEN,
	    MODE_REVOKE_TOKEN, MODE_REPLAY_JOURNAL, MODE_DUMP_JOURNAL };

struct args {
	enum mode mode;
	int mode_set;
	const char *config;
	const char *state_dir;
	long vmid;
	const char *blob_file, *sig_file;   /* --verify-op */
	const char *signers, *host_id;      /* --verify-op overrides */
	int fp_spki;                        /* --print-fingerprint=spki */
	long token_vmid;                    /* --issue-token / --revoke-token */
	int dry_run;                        /* --replay-journal --dry-run */
};

static struct pve_client *volatile g_client;

static void on_signal(int sig)
{
	struct pve_client *c = g_client;

	(void)sig;
	if (c)
		pve_cancel(c);
	daemon_cancel_all();
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("felhom-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	return EXIT_USAGE;
}

/* Value of "--flag=value" or of the next argument. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
	size_t n = strlen(flag);

	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int set_mode(struct args *a, enum mode m, const char *flag)
{
	if (a->mode_set)
		return usage_error("%s: only one mode at a time", flag);
	a->mode = m;
	a->mode_set = 1;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	int i, r;

	memset(a, 0, sizeof(*a));
	a->mode = MODE_DAEMON;
	a->vmid = -1;
	for (i = 1; i < argc; i++) {
		const char *s = argv[i], *v;
		if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			r = set_mode(a, MODE_HELP, s);
		} else if (!strcmp(s, "--version")) {
			r = set_mode(a, MODE_VERSION, s);
		} else if (!strcmp(s, "--print-fingerprint") || !strcmp(s, "--print-fingerprint=spki")) {
			r = set_mode(a, MODE_PRINT_FP, s);
			a->fp_spki = s[19] == '=';
		} else if (!strcmp(s, "--issue-token") || !strcmp(s, "--revoke-token")) {
			char *end;
			if (i + 1 >= argc)
				return usage_error("%s needs a VMID", s);
			r = set_mode(a, s[2] == 'i' ? MODE_ISSUE_TOKEN : MODE_REVOKE_TOKEN, s);
			v = argv[++i];
			a->token_vmid = strtol(v, &end, 10);
			if (!r && (end == v || *end || a->token_vmid < 100 || a->token_vmid > 999999999))
				return usage_error("%s \"%.20s\": want a vmid 100..999999999", s, v);
		} else if (!strcmp(s, "--print-config")) {
			r = set_mode(a, MODE_PRINT_CONFIG, s);
		} else if (!strcmp(s, "--status")) {
			r = set_mode(a, MODE_STATUS, s);
		} else if (!strcmp(s, "--selftest") || !strcmp(s, "--selftest=read")) {
			r = set_mode(a, MODE_SELFTEST_READ, s);
		} else if (!strcmp(s, "--selftest=task")) {
			r = set_mode(a, MODE_SELFTEST_TASK, s);
		} else if (!strcmp(s, "--selftest=hub")) {
			r = set_mode(a, MODE_SELFTEST_HUB, s);
		} else if (!strcmp(s, "--replay-journal")) {
			r = set_mode(a, MODE_REPLAY_JOURNAL, s);
		} else if (!strcmp(s, "--dump-journal")) {
			r = set_mode(a, MODE_DUMP_JOURNAL, s);
		} else if (!strcmp(s, "--dry-run")) {
			a->dry_run = 1;
			r = 0;
		} else if (!strcmp(s, "--verify-op")) {
			if (i + 2 >= argc || !*argv[i + 1] || !*argv[i + 2])
				return usage_error("%s needs BLOB_FILE SIG_FILE", "--verify-op");
			r = set_mode(a, MODE_VERIFY_OP, s);
			a->blob_file = argv[++i];
			a->sig_file = argv[++i];
		} else if (!strcmp(s, "--signers") || !strncmp(s, "--signers=", 10)) {
			v = flag_value(argc, argv, &i, "--signers");
			if (!v || !*v)
				return usage_error("%s needs a file", "--signers");
			a->signers = v;
			r = 0;
		} else if (!strcmp(s, "--host-id") || !strncmp(s, "--host-id=", 10)) {
			v = flag_value(argc, argv, &i, "--host-id");
			if (!v || !*v)
				return usage_error("%s needs an id", "--host-id");
			a->host_id = v;
			r = 0;
		} else if (!strncmp(s, "--selftest=", 11)) {
			return usage_error("unknown selftest \"%.40s\" (want read|task|hub)", s + 11);
		} else if (!strcmp(s, "--config") || !strncmp(s, "--config=", 9)) {
			v = flag_value(argc, argv, &i, "--config");
			if (!v || !*v)
				return usage_error("%s needs a path", "--config");
			a->config = v;
			r = 0;
		} else if (!strcmp(s, "--state-dir") || !strncmp(s, "--state-dir=", 12)) {
			v = flag_value(argc, argv, &i, "--state-dir");
			if (!v || v[0] != '/')
				return usage_error("%s needs an absolute path", "--state-dir");
			a->state_dir = v;
			r = 0;
		} else if (!strcmp(s, "--vmid") || !strncmp(s, "--vmid=", 7)) {
			char *end;
			v = flag_value(argc, argv, &i, "--vmid");
			if (!v)
				return usage_error("%s needs a number", "--vmid");
			a->vmid = strtol(v, &end, 10);
			if (end == v || *end || a->vmid < 100 || a->vmid > 999999999)
				return usage_error("--vmid \"%.20s\": want a vmid 100..999999999", v);
			r = 0;
		} else {
			return usage_error("unknown argument \"%.60s\"", s);
		}
		if (r)
			return r;
	}
	if ((a->signers || a->host_id) && a->mode != MODE_VERIFY_OP)
		return usage_error("%s are only for --verify-op", "--signers and --host-id");
	if (a->vmid >= 0 && a->mode != MODE_SELFTEST_TASK)
		return usage_error("%s is only for --selftest=task", "--vmid");
	if (a->mode == MODE_SELFTEST_TASK && a->vmid < 0)
		return usage_error("%s needs --vmid N (the guest to snapshot and roll back)", "--selftest=task");
	if (a->dry_run && a->mode != MODE_REPLAY_JOURNAL)
		return usage_error("%s is only for --replay-journal", "--dry-run");
	return 0;
}

/* Registers the configured secrets with the logger's scrubber. */
static void guard_secrets(const struct cfg *c)
{
	const char *eq;

	if (c->proxmox.token) {
		log_add_secret(c->proxmox.token);
		eq = strrchr(c->proxmox.token, '=');
		if (eq)
			log_add_secret(eq + 1);
	}
	if (c->hub.api_key)
		log_add_secret(c->hub.api_key);
}

static int make_client(const struct cfg *c, struct pve_client **out)
{
	struct pve_opts o;
	struct pve_err e;
	int r;

	memset(&o, 0, sizeof(o));
	o.endpoint = c->proxmox.endpoint;
	o.node = c->proxmox.node;
	o.token = c->proxmox.token;
	o.ca_file = c->proxmox.ca_file;
	o.tls_fingerprint = c->proxmox.tls_fingerprint;
	o.insecure_skip_verify = c->proxmox.insecure_skip_verify;
	o.request_timeout_ms = (long)c->proxmox.timeout_seconds * 1000L;
	o.poll_initial_ms = (long)c->proxmox.task_poll_initial_ms;
	o.poll_max_ms = (long)c->proxmox.task_poll_max_ms;
	o.task_timeout_ms = (long)c->proxmox.task_timeout_seconds * 1000L;
	o.max_guests = (unsigned)c->proxmox.max_guests;
	r = pve_client_new(&o, out, &e);
	if (r) {
		log_event(LOG_ERROR, "proxmox.client", "error", fh_strerror(r), "reason", e.reason, NULL);
		return r;
	}
	if (c->proxmox.insecure_skip_verify)
		log_event(LOG_WARN, "proxmox.tls", "msg",
			  "insecure_skip_verify is on: the Proxmox certificate is NOT verified (loopback only)",
			  NULL);
	g_client = *out;
	return 0;
}

static void print_err(const char *step, int r, const struct pve_err *e)
{
	printf("  %s: FAILED %s", step, fh_strerror(r));
	if (e->http_status)
		printf(" (HTTP %ld)", e->http_status);
	if (e->reason[0])
		printf(": %s", e->reason);
	if (e->privilege[0])
		printf(" [missing privilege %s on %s]", e->privilege, e->perm_path);
	printf("\n");
	log_event(LOG_WARN, "selftest.step_failed", "step", step, "error", fh_strerror(r), "reason", e->reason,
		  "privilege", e->privilege, NULL);
}

static double gib(int64_t b)
{
	return (double)b / (1024.0 * 1024.0 * 1024.0);
}

static double pct(int64_t part, int64_t whole)
{
	return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

/* The read-only selftest. Returns the exit status. */
static int selftest_read(const struct cfg *c)
{
	struct pve_client *pc = NULL;
	struct pve_err e;
	struct pve_version v;
	struct pve_node_entry *nodes = NULL;
	struct pve_node_status ns;
	struct pve_guest *guests = NULL;
	struct pve_storage *st = NULL;
	struct pve_stats stats;
	size_t nn = 0, ng = 0, nst = 0, i;
	int r, failed = 0, calls = 0, forbidden = 0, empty = 0;

	if (make_client(c, &pc))
		return 1;
	printf("felhom-agent %s selftest (read-only; nothing is changed)\n", FH_VERSION);
	printf("endpoint %s node %s trust %s\n", c->proxmox.endpoint, c->proxmox.node,
	       c->proxmox.tls_fingerprint ? "fingerprint-pin" : c->proxmox.ca_file ? "ca-file" :
	       c->proxmox.insecure_skip_verify ? "INSECURE" : "system-roots");

	r = pve_get_version(pc, &v, &e);
	if (r) {
		print_err("version", r, &e);
		failed++;
		if (r == FH_ERR_TLS_PIN || r == FH_ERR_TLS || r == FH_ERR_TRANSPORT || r == FH_ERR_HTTP_401)
			goto done;   /* nothing else can work */
	} else {
		printf("version: %s (release %s, repoid %s)\n", v.version, v.release, v.repoid);
	}

	calls++;
	r = pve_list_nodes(pc, &nodes, &nn, &e);
	if (r) {
		print_err("nodes", r, &e);
		failed++;
		forbidden += r == FH_ERR_HTTP_403;
	} else {
		int found = 0;
		empty += nn == 0;
		printf("nodes: %zu\n", nn);
		for (i = 0; i < nn; i++) {
			printf("  %s %s%s%s\n", nodes[i].node, nodes[i].status,
			       nodes[i].ssl_fingerprint[0] ? " fingerprint " : "", nodes[i].ssl_fingerprint);
			found |= !strcmp(nodes[i].node, c->proxmox.node);
		}
		if (!found) {
			printf("  node %s: FAILED not_found: the configured node is not in /nodes\n", c->proxmox.node);
			failed++;
		}
	}

	calls++;
	r = pve_node_status(pc, &ns, &e);
	if (r) {
		print_err("node status", r, &e);
		failed++;
		forbidden += r == FH_ERR_HTTP_403;
	} else {
		printf("node status: cpu %.1f%% (%d cpus) memory %.1f/%.1f GiB (%.0f%%) rootfs %.1f/%.1f GiB "
		       "(%.0f%%) load %s %s %s uptime %llds\n",
		       ns.cpu * 100.0, ns.cpus, gib(ns.mem_used), gib(ns.mem_total), pct(ns.mem_used, ns.mem_total),
		       gib(ns.rootfs_used), gib(ns.rootfs_total), pct(ns.rootfs_used, ns.rootfs_total),
		       ns.loadavg[0], ns.loadavg[1], ns.loadavg[2], (long long)ns.uptime);
		printf("  %s, kernel %s\n", ns.pveversion, ns.kversion);
	}

	calls++;
	r = pve_list_lxc(pc, &guests, &ng, &e);
	if (r) {
		print_err("guests", r, &e);
		failed++;
		forbidden += r == FH_ERR_HTTP_403;
	} else {
		empty += ng == 0;
		printf("guests: %zu\n", ng);
		for (i = 0; i < ng; i++) {
			struct pve_guest_config gc;
			char step[48];
			printf("  %d %-8s %s", guests[i].vmid, guests[i].status[0] ? guests[i].status : "unknown",
			       guests[i].name);
			calls++;
			r = pve_guest_config(pc, guests[i].vmid, &gc, &e);
			if (r) {
				printf("\n");
				snprintf(step, sizeof(step), "guest %d config", guests[i].vmid);
				print_err(step, r, &e);
				failed++;
				forbidden += r == FH_ERR_HTTP_403;
				continue;
			}
			printf(" cores %d memory %lld MiB swap %lld MiB rootfs %lld GiB%s\n", gc.cores,
			       (long long)gc.memory_mib, (long long)gc.swap_mib, (long long)gc.rootfs_gib,
			       gc.unprivileged ? " unprivileged" : " PRIVILEGED");
			pve_guest_config_free(&gc);
		}
	}

	calls++;
	r = pve_node_storage(pc, &st, &nst, &e);
	if (r) {
		print_err("storage", r, &e);
		failed++;
		forbidden += r == FH_ERR_HTTP_403;
	} else {
		empty += nst == 0;
		printf("storage: %zu\n", nst);
		for (i = 0; i < nst; i++)
			printf("  %-12s %-8s %s %.1f/%.1f GiB (%.0f%%) content %s\n", st[i].storage, st[i].type,
			       st[i].active ? "active  " : "INACTIVE", gib(st[i].used), gib(st[i].total),
			       st[i].used_fraction * 100.0, st[i].content);
	}
	/* Privilege-separated tokens start with an empty ACL: the privileged
	 * reads answer 403 and the lists come back silently empty. */
	if (forbidden > 0 && forbidden + empty >= calls - 1)
		printf("hint: every call was refused or empty: the token's privilege-separated ACL is probably "
		       "empty; grant the role to the token as well as the user (see docs/PROXMOX.md)\n");
done:
	pve_stats(pc, &stats);
	printf("result: %s (%lu requests, %lu connections, %lu pin probes)\n", failed ? "FAILED" : "ok",
	       stats.requests, stats.connects, stats.pin_probes);
	log_event(failed ? LOG_WARN : LOG_INFO, "selftest.done", "mode", "read", "failed_steps",
		  failed ? "yes" : "no", NULL);
	g_client = NULL;
	free(nodes);
	free(guests);
	free(st);
	pve_client_free(pc);
	return failed ? 1 : 0;
}

/* One step of the selftest job; one or two lines. */
static void print_step(const char *what, const struct recon_step_result *st)
{
	char priv[64], path[128];

	if (st->outcome == TASK_OUT_NONE) {
		printf("  %s: not run%s%s\n", what, st->why[0] ? ": " : "", st->why);
		return;
	}
	if (st->upid[0])
		printf("  %s: posted %s\n", what, st->upid);
	if (st->outcome == TASK_OUT_EXECUTED) {
		printf("  %s: %s\n", what, !strncmp(st->why, "WARNINGS", 8) ? st->why : "OK");
		return;
	}
	printf("  %s: FAILED %s", what, st->outcome == TASK_OUT_FAILED ? fh_strerror(st->reason) :
	       task_outcome_name(st->outcome));
	if (st->why[0])
		printf(": %s", st->why);
	if (!pve_parse_permission(st->why, priv, sizeof(priv), path, sizeof(path)))
		printf(" [missing privilege %s on %s]", priv, path);
	printf("\n");
	log_event(LOG_WARN, "selftest.step_failed", "step", what, "outcome", task_outcome_name(st->outcome), "error",
		  fh_strerror(st->reason), NULL);
}

/* snapshot -> rollback -> delete-snapshot on one guest: one journaled job
 * through the engine (the gate finds it benign by provenance: it touches
 * only the snapshot it made), each task waited for. */
static int selftest_task(const struct cfg *c, int vmid)
{
	static const char *const what[] = { "snapshot", "rollback", "delete snapshot" };
	struct daemon_engine eng;
	struct recon_job *job = NULL;
	struct recon_result res;
	const char *host;
	char why[512], snap[48];
	size_t i;
	int r, failed = 1;

	printf("felhom-agent %s selftest=task on guest %d (snapshot -> rollback -> delete)\n", FH_VERSION, vmid);
	r = daemon_engine_open(c, true, &eng, why, sizeof(why));
	if (r) {
		printf("  engine: FAILED %s: %s\n", fh_strerror(r), why);
		return 1;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		goto done;
	host = gate_host_id(eng.gate);
	snprintf(snap, sizeof(snap), "felhom-selftest-%lld", (long long)time(NULL));
	job->source = JRNL_SRC_SELFTEST;
	snprintf(job->job_id, sizeof(job->job_id), "selftest:%d:%s", vmid, snap + 16);
	job->nsteps = 3;
	r = gate_action_init(&job->steps[0], "snapshot", host, vmid);
	if (!r)
		r = gate_action_str(&job->steps[0], "name", snap);
	if (!r)
		r = gate_action_str(&job->steps[0], "description", "felhom-agent selftest; safe to delete");
	if (!r)
		r = gate_action_init(&job->steps[1], "rollback", host, vmid);
	if (!r)
		r = gate_action_str(&job->steps[1], "name", snap);
	if (!r)
		r = gate_action_init(&job->steps[2], "delete_snapshot", host, vmid);
	if (!r)
		r = gate_action_str(&job->steps[2], "name", snap);
	/* the snapshot is ours: remove it even when the rollback failed */
	job->step_flags[2] = RECON_STEP_ALWAYS;
	if (!r)
		r = recon_run(eng.recon, job, &res);
	if (r) {
		printf("  job: FAILED %s\n", fh_strerror(r));
		goto done;
	}
	for (i = 0; i < 3; i++)
		print_step(what[i], &res.steps[i]);
	failed = res.outcome != TASK_OUT_EXECUTED;
done:
	printf("result: %s (journal job %s)\n", failed ? "FAILED" : "ok", job ? job->job_id : "-");
	free(job);
	daemon_engine_close(&eng);
	return failed;
}

/* Writes one JSON value of the tree, in order, through yajl. */
static void gen_json(yajl_gen g, const struct json *j)
{
	size_t i;

	switch (j->type) {
	case JSON_NULL:
		yajl_gen_null(g);
		break;
	case JSON_BOOL:
		yajl_gen_bool(g, j->b);
		break;
	case JSON_NUMBER:
		yajl_gen_number(g, j->s, j->slen);
		break;
	case JSON_STRING:
		yajl_gen_string(g, (const unsigned char *)j->s, j->slen);
		break;
	case JSON_ARRAY:
		yajl_gen_array_open(g);
		for (i = 0; i < j->n; i++)
			gen_json(g, j->items[i]);
		yajl_gen_array_close(g);
		break;
	case JSON_OBJECT:
		yajl_gen_map_open(g);
		for (i = 0; i < j->n; i++) {
			yajl_gen_string(g, (const unsigned char *)j->keys[i], strlen(j->keys[i]));
			gen_json(g, j->items[i]);
		}
		yajl_gen_map_close(g);
		break;
	}
}

/* Prints a JSON document indented; as it is when it does not parse. */
static void print_json_pretty(const char *p, size_t n)
{
	const struct json_limits lim = { n + 1, 64, true };
	struct json *root = NULL;
	yajl_gen g;
	const unsigned char *out;
	size_t on, i;

	if (json_parse(p, n, &lim, &root, NULL, 0) || !(g = yajl_gen_alloc(NULL))) {
		fwrite(p, 1, n, stdout);
		fputc('\n', stdout);
		json_free(root);
		return;
	}
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	gen_json(g, root);
	yajl_gen_get_buf(g, &out, &on);
	/* yajl prints an empty array or object as "[", a blank line, "]" */
	for (i = 0; i < on; i++) {
		size_t k = i + 1;
		if (out[i] == '[' || out[i] == '{') {
			if (k + 1 < on && out[k] == '\n' && out[k + 1] == '\n') {
				k += 2;
				while (k < on && out[k] == ' ')
					k++;
				if (k < on && out[k] == (out[i] == '[' ? ']' : '}')) {
					fputc(out[i], stdout);
					fputc(out[k], stdout);
					i = k;
					continue;
				}
			}
		}
		fputc(out[i], stdout);
	}
	yajl_gen_free(g);
	json_free(root);
}

/* One collect + report (--selftest=hub). Returns the exit status. */
static int selftest_hub(const struct cfg *c)
{
	struct daemon_once o;
	int r;

	printf("felhom-agent %s selftest=hub (one collect + report)\n", FH_VERSION);
	r = daemon_once(c, &o);
	if (o.url[0])
		printf("hub %s trust %s host_id %s\n", o.url, o.trust, c->hub.host_id);
	if (o.report.len) {
		printf("report (%zu bytes):\n", o.report.len);
		print_json_pretty(o.report.data, o.report.len);
	}
	if (r) {
		printf("%s: FAILED %s", o.step, fh_strerror(r));
		if (o.http_status)
			printf(" (HTTP %ld)", o.http_status);
		if (o.reason[0])
			printf(": %s", o.reason);
		printf("\n");
		if (r == FH_ERR_HTTP_401 || r == FH_ERR_HTTP_403)
			printf("hint: the hub refused hub.api_key; the daemon would park (probe every %llds) "
			       "until the key is fixed\n", (long long)c->hub.parked_probe_seconds);
		log_event(LOG_WARN, "selftest.step_failed", "step", o.step, "error", fh_strerror(r), "reason",
			  o.reason, NULL);
	} else {
		printf("envelope: poll_interval_seconds=");
		if (o.env.poll_interval_set)
			printf("%lld", (long long)o.env.poll_interval_seconds);
		else
			printf("-");
		printf(" (adopted %llds) blocked=%s desired_generation=", (long long)o.interval,
		       o.env.blocked ? "true" : "false");
		if (o.env.desired_generation_set)
			printf("%lld", (long long)o.env.desired_generation);
		else
			printf("-");
		printf(" has_signed_ops=%s\n", o.env.has_signed_ops ? "true" : "false");
	}
	printf("result: %s (%lu Proxmox requests, %lu hub requests)\n", r ? "FAILED" : "ok", o.pve_requests,
	       o.hub_requests);
	log_event(r ? LOG_WARN : LOG_INFO, "selftest.done", "mode", "hub", "failed_steps", r ? "yes" : "no", NULL);
	daemon_once_free(&o);
	return r ? 1 : 0;
}

/* --status: the daemon's status file, for an operator. */
static int show_status(const struct cfg *c)
{
	struct daemon_status st;
	char why[600];
	int r = daemon_status_read(c->state_dir, &st, why, sizeof(why));

	if (r) {
		printf("felhom-agent: no usable status: %s\n", why);
		printf("health: UNHEALTHY (%s)\n", r == FH_ERR_NOT_FOUND ? "the daemon has not run with this state_dir" :
		       "the status file cannot be read");
		return 1;
	}
	return daemon_status_print(&st, (int64_t)time(NULL), stdout);
}

/* Reads a small file whole; FH_ERR_IO / FH_ERR_TOOBIG. */
static int read_small(const char *path, size_t cap, struct buf *out)
{
	char chunk[4096];
	FILE *f = fopen(path, "rb");
	size_t n;
	int r = 0;

	if (!f)
		return FH_ERR_IO;
	while (!r && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = buf_append(out, chunk, n);
	if (!r && ferror(f))
		r = FH_ERR_IO;
	fclose(f);
	if (!r && out->len > cap)
		r = FH_ERR_TOOBIG;
	return r;
}

/* The verified op as one JSON line (strings canonically escaped). */
static int print_verified(const struct sig_verified *vd)
{
	struct buf o;
	int r = 0;

	buf_init(&o, 64 * 1024);
	r |= buf_appendz(&o, "{\"op\":");
	r |= json_canonical_string(vd->op.op, strlen(vd->op.op), &o);
	r |= buf_appendz(&o, ",\"host_id\":");
	r |= json_canonical_string(vd->op.host_id, strlen(vd->op.host_id), &o);
	if (vd->op.has_guest)
		r |= buf_printf(&o, ",\"guest_id\":%lld", (long long)vd->op.guest_id);
	else
		r |= buf_appendz(&o, ",\"guest_id\":null");
	r |= buf_appendz(&o, ",\"params\":");
	r |= opblob_params_canonical(&vd->op, &o);
	r |= buf_appendz(&o, ",\"key_id\":");
	r |= json_canonical_string(vd->op.key_id, strlen(vd->op.key_id), &o);
	r |= buf_appendz(&o, ",\"signer\":");
	r |= json_canonical_string(vd->signer_id, strlen(vd->signer_id), &o);
	r |= buf_appendz(&o, ",\"role\":");
	r |= json_canonical_string(sig_role_name(vd->role), strlen(sig_role_name(vd->role)), &o);
	r |= buf_appendz(&o, ",\"nonce\":");
	r |= json_canonical_string(vd->op.nonce, strlen(vd->op.nonce), &o);
	r |= buf_printf(&o, ",\"issued_at\":%lld,\"expires_at\":%lld}\n", (long long)vd->op.issued_at,
			(long long)vd->op.expires_at);
	if (!r)
		fputs(buf_str(&o), stdout);
	buf_free(&o);
	return r ? FH_ERR_INTERNAL : 0;
}

/* --verify-op: the whole pipeline, nonce recorded last. Exit 0 verified,
 * 1 rejected (the rejection name first on its line) or failed. */
static int verify_op(const struct cfg *c, const struct args *a)
{
	struct sig_config sc;
	struct sig_verifier *v = NULL;
	struct sig_verified vd;
	struct store_opts so;
	struct store *st = NULL;
	struct buf blob, armor;
	char err[512] = "", why[512] = "", dbdir[4096];
	int r;

	buf_init(&blob, OPBLOB_MAX_BYTES + 1);
	buf_init(&armor, SIG_ARMOR_MAX + 1);
	r = read_small(a->blob_file, OPBLOB_MAX_BYTES, &blob);
	if (r == FH_ERR_TOOBIG) {
		printf("malformed: the op blob is larger than %d bytes\n", OPBLOB_MAX_BYTES);
		r = 1;
		goto out;
	}
	if (r) {
		fprintf(stderr, "felhom-agent: --verify-op: cannot read %s\n", a->blob_file);
		r = 1;
		goto out;
	}
	r = read_small(a->sig_file, SIG_ARMOR_MAX, &armor);
	if (r == FH_ERR_TOOBIG) {
		printf("malformed: the signature is larger than %d bytes\n", SIG_ARMOR_MAX);
		r = 1;
		goto out;
	}
	if (r) {
		fprintf(stderr, "felhom-agent: --verify-op: cannot read %s\n", a->sig_file);
		r = 1;
		goto out;
	}
	memset(&sc, 0, sizeof(sc));
	if (a->signers) {
		sc.signers_file = a->signers;
	} else {
		sc.signers = (const char *const *)c->authz.signers;
		sc.nsigners = c->authz.nsigners;
		sc.signers_file = c->authz.signers_file;
	}
	sc.host_id = a->host_id ? a->host_id : c->hub.host_id;
	sc.max_lifetime_seconds = c->authz.max_lifetime_seconds;
	sc.clock_skew_seconds = c->authz.clock_skew_seconds;
	if (!sc.host_id || !*sc.host_id) {
		fprintf(stderr, "felhom-agent: --verify-op: no host id (set hub.host_id or --host-id)\n");
		r = 1;
		goto out;
	}
	if (sig_verifier_new(&sc, &v, err, sizeof(err))) {
		fprintf(stderr, "felhom-agent: signers: %s\n", err);
		r = 1;
		goto out;
	}
	snprintf(dbdir, sizeof(dbdir), "%s/db", c->state_dir);
	memset(&so, 0, sizeof(so));
	so.dir = dbdir;
	r = store_open(&so, &st);
	if (r) {
		fprintf(stderr, "felhom-agent: cannot open the nonce store in %s: %s\n", dbdir, fh_strerror(r));
		r = 1;
		goto out;
	}
	r = sig_verify_and_record(v, st, (const uint8_t *)blob.data, blob.len, buf_str(&armor), armor.len,
				  (int64_t)time(NULL), &vd, why, sizeof(why));
	if (r) {
		printf("%s: %s\n", fh_strerror(r), why[0] ? why : "rejected");
		log_event(LOG_WARN, "verify_op.rejected", "rejection", fh_strerror(r), NULL);
		r = 1;
		goto out;
	}
	log_event(LOG_INFO, "verify_op.verified", "op", vd.op.op, "signer", vd.signer_id, "role",
		  sig_role_name(vd.role), NULL);
	r = print_verified(&vd) ? 1 : 0;
out:
	store_close(st);
	sig_verifier_free(v);
	buf_free(&blob);
	buf_free(&armor);
	return r;
}

/* --print-fingerprint[=spki]: the local API leaf's pin, alone on stdout. */
static int print_fingerprint(const struct cfg *c, int spki)
{
	struct lapi_cert_info info;
	int r = lapi_cert_ensure(c->state_dir, &info);

	if (r) {
		fprintf(stderr, "felhom-agent: local API key/certificate in %s/%s: %s\n", c->state_dir, LAPI_DIR,
			fh_strerror(r));
		return 1;
	}
	if (info.created)
		log_event(LOG_INFO, "localapi.leaf_created", "dir", c->state_dir, NULL);
	printf("%s\n", spki ? info.spki_pin : info.fingerprint);
	return 0;
}

/* --issue-token VMID / --revoke-token VMID. The token goes to stdout only. */
static int token_cmd(const struct cfg *c, int vmid, int revoke)
{
	struct store_opts so;
	struct store *st = NULL;
	char dbdir[4096], tok[LAPI_TOKEN_MAX], vm[16];
	int r;

	snprintf(vm, sizeof(vm), "%d", vmid);
	snprintf(dbdir, sizeof(dbdir), "%s/db", c->state_dir);
	memset(&so, 0, sizeof(so));
	so.dir = dbdir;
	r = store_open(&so, &st);
	if (r) {
		fprintf(stderr, "felhom-agent: cannot open the store in %s: %s\n", dbdir, fh_strerror(r));
		return 1;
	}
	if (revoke) {
		r = lapi_token_revoke(st, vmid);
		if (r == 0 || r == FH_ERR_NOT_FOUND)
			log_event(LOG_INFO, "localapi.token_revoked", "vmid", vm, "had_token",
				  r == 0 ? "yes" : "no", NULL);
		else
			fprintf(stderr, "felhom-agent: --revoke-token %d: %s\n", vmid, fh_strerror(r));
		r = r == 0 || r == FH_ERR_NOT_FOUND ? 0 : 1;
	} else {
		r = lapi_token_issue(st, vmid, (int64_t)time(NULL), tok);
		if (r == 0) {
			printf("%s\n", tok);
			memset(tok, 0, sizeof(tok));
			log_event(LOG_INFO, "localapi.token_issued", "vmid", vm, NULL);
		} else {
			fprintf(stderr, "felhom-agent: --issue-token %d: %s\n", vmid, fh_strerror(r));
		}
		r = r ? 1 : 0;
	}
	store_close(st);
	return r;
}

/* ---- the journal tools ---- */

static void replay_row(const struct recon_recovery_row *row, void *arg)
{
	char vm[24];

	(void)arg;
	if (row->vmid > 0)
		snprintf(vm, sizeof(vm), "%lld", (long long)row->vmid);
	else
		snprintf(vm, sizeof(vm), "-");
	printf("%-7llu %-16s %-9s %-8s %-24s %-22s %-17s %s%s%s\n", (unsigned long long)row->id, row->op, vm,
	       task_state_name(row->state), row->found ? row->found : "", row->action ? row->action : "",
	       row->outcome ? task_outcome_name(row->outcome) : "-", row->detail, row->upid[0] ? " " : "", row->upid);
	fflush(stdout);
}

/* --replay-journal [--dry-run]: the start-up recovery as a tool. Exit 0
 * when nothing is left in flight (or a dry run looked at everything). */
static int replay_journal(const struct cfg *c, int dry)
{
	struct daemon_engine eng;
	struct jrnl_stats js;
	struct recon_recovery rec;
	char why[512];
	int r;

	r = daemon_engine_open(c, false, &eng, why, sizeof(why));
	if (r) {
		fprintf(stderr, "felhom-agent: --replay-journal: %s\n", why);
		return 1;
	}
	r = jrnl_get_stats(eng.st, &js);
	daemon_engine_close(&eng);
	if (r) {
		fprintf(stderr, "felhom-agent: --replay-journal: cannot read the journal: %s\n", fh_strerror(r));
		return 1;
	}
	if (js.in_flight == 0) {
		printf("nothing to do: no journal entry in flight in %s/db (%llu closed kept)\n", c->state_dir,
		       (unsigned long long)js.closed);
		return 0;
	}
	if (cfg_validate(c, CFG_NEED_PROXMOX, why, sizeof(why))) {
		fprintf(stderr, "felhom-agent: --replay-journal: %llu entries in flight need Proxmox: %s\n",
			(unsigned long long)js.in_flight, why);
		return 1;
	}
	r = daemon_engine_open(c, true, &eng, why, sizeof(why));
	if (r) {
		fprintf(stderr, "felhom-agent: --replay-journal: %s\n", why);
		return 1;
	}
	printf("%s%llu journal entries in flight in %s/db", dry ? "dry run: " : "", (unsigned long long)js.in_flight,
	       c->state_dir);
	if (js.jobs_waiting)
		printf(" (%llu of them multi-step jobs between two steps)", (unsigned long long)js.jobs_waiting);
	printf("\n");
	printf("%-7s %-16s %-9s %-8s %-24s %-22s %-17s %s\n", "ID", "OP", "VMID", "STATE", "FOUND", "ACTION",
	       "OUTCOME", "DETAIL");
	memset(&rec, 0, sizeof(rec));
	r = recon_recover(eng.recon, dry != 0, replay_row, NULL, &rec);
	daemon_engine_close(&eng);
	printf("%s: %zu in flight, %zu closed, %zu awaited, %zu adopted, %zu re-posted, %zu left in flight",
	       dry ? "dry run" : "done", rec.in_flight, rec.closed, rec.awaited, rec.adopted, rec.reposted, rec.left);
	if (rec.jobs)
		printf("; %zu multi-step jobs: %zu steps continued, %zu closed failed (unreadable record)", rec.jobs,
		       rec.continued, rec.jobs_failed);
	printf("%s%s\n", r ? "; error " : "", r ? fh_strerror(r) : "");
	log_event(r || (!dry && rec.left) ? LOG_WARN : LOG_INFO, "replay_journal.done", "dry_run", dry ? "yes" : "no",
		  "error", r ? fh_strerror(r) : "", NULL);
	return r || (!dry && rec.left) ? 1 : 0;
}

static int dump_one(const struct jrnl_entry *e, void *arg)
{
	struct buf *b = arg;
	int r;

	buf_reset(b);
	r = recon_entry_json(e, b);
	if (!r) {
		fputs(buf_str(b), stdout);
		fputc('\n', stdout);
	}
	return r;
}

/* --dump-journal: every entry kept, one JSON object a line. Read-only: it
 * works beside a running daemon. */
static int dump_journal(const struct cfg *c)
{
	struct store_opts so;
	struct store *st = NULL;
	struct buf b;
	char dbdir[4096];
	int r;

	snprintf(dbdir, sizeof(dbdir), "%s/db", c->state_dir);
	memset(&so, 0, sizeof(so));
	so.dir = dbdir;
	r = store_open(&so, &st);
	if (r) {
		fprintf(stderr, "felhom-agent: --dump-journal: cannot open %s: %s\n", dbdir, fh_strerror(r));
		return 1;
	}
	buf_init(&b, 64 * 1024);
	r = jrnl_foreach(st, dump_one, &b);
	buf_free(&b);
	store_close(st);
	if (r) {
		fprintf(stderr, "felhom-agent: --dump-journal: %s\n", fh_strerror(r));
		return 1;
	}
	return 0;
}

/* --mount-unit: the root side of host mounts (mountunit.h). Reads no
 * config and no environment; one line on stderr when it fails. */
static int mount_unit_cmd(int argc, char **argv)
{
	const struct mountunit_env env = { "/", MOUNTUNIT_SYSTEMCTL, 0 };
	char why[512] = "";
	int r;

	if (argc == 7 && !strcmp(argv[2], "add"))
		r = 0;
	else if (argc == 5 && !strcmp(argv[2], "remove"))
		r = 1;
	else
		return usage_error("%s", "--mount-unit add MOUNT_ROOT UUID FSTYPE OPTIONS | remove MOUNT_ROOT HEX");
	if (geteuid() != 0) {
		fprintf(stderr, "felhom-agent: --mount-unit: must run as root (through sudo)\n");
		return 1;
	}
	if (r == 0)
		r = mountunit_add(&env, argv[3], argv[4], argv[5], argv[6], why, sizeof why);
	else
		r = mountunit_remove(&env, argv[3], argv[4], why, sizeof why);
	if (r) {
		fprintf(stderr, "felhom-agent: --mount-unit %s: %s: %s\n", argv[2], fh_strerror(r), why);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	struct cfg *c = NULL;
	char err[512];
	unsigned need = 0;
	int r;

	/* Descriptors 0-2 must be open before any file (the LMDB store above
	 * all) can be given one of those numbers and receive stray output. */
	for (r = 0; r < 3; r++) {
		if (fcntl(r, F_GETFD) < 0 && open("/dev/null", O_RDWR) != r)
			return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "--mount-unit"))
		return mount_unit_cmd(argc, argv);
	r = parse_args(argc, argv, &a);
	if (r)
		return r;
	if (a.mode == MODE_HELP) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (a.mode == MODE_VERSION) {
		printf("felhom-agent %s\n", FH_VERSION);
		return 0;
	}
	log_setup(LOG_INFO, LOG_FMT_LOGFMT, stderr);
	if (cfg_load(a.config, NULL, &c, err, sizeof(err))) {
		fprintf(stderr, "felhom-agent: config: %s\n", err);
		return 1;
	}
	guard_secrets(c);
	if (a.state_dir && cfg_set_state_dir(c, a.state_dir)) {
		cfg_free(c);
		return 1;
	}
	switch (a.mode) {
	case MODE_SELFTEST_READ:
	case MODE_SELFTEST_TASK:
		need = CFG_NEED_PROXMOX;
		break;
	case MODE_SELFTEST_HUB:
	case MODE_DAEMON:
		need = CFG_NEED_PROXMOX | CFG_NEED_HUB;
		break;
	default:
		need = 0;
		break;
	}
	if (cfg_validate(c, need, err, sizeof(err))) {
		fprintf(stderr, "felhom-agent: config: %s\n", err);
		cfg_free(c);
		return 1;
	}
	{
		int lvl = log_level_parse(c->log.level), fmt = log_format_parse(c->log.format);
		log_setup((enum log_level)lvl, (enum log_format)fmt, stderr);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	switch (a.mode) {
	case MODE_PRINT_CONFIG:
		r = cfg_print(c, stdout) ? 1 : 0;
		fputc('\n', stdout);
		break;
	case MODE_SELFTEST_READ:
		r = selftest_read(c);
		break;
	case MODE_SELFTEST_TASK:
		r = selftest_task(c, (int)a.vmid);
		break;
	case MODE_SELFTEST_HUB:
		r = selftest_hub(c);
		break;
	case MODE_STATUS:
		r = show_status(c);
		break;
	case MODE_VERIFY_OP:
		r = verify_op(c, &a);
		break;
	case MODE_PRINT_FP:
		r = print_fingerprint(c, a.fp_spki);
		break;
	case MODE_ISSUE_TOKEN:
	case MODE_REVOKE_TOKEN:
		r = token_cmd(c, (int)a.token_vmid, a.mode == MODE_REVOKE_TOKEN);
		break;
	case MODE_REPLAY_JOURNAL:
		r = replay_journal(c, a.dry_run);
		break;
	case MODE_DUMP_JOURNAL:
		r = dump_journal(c);
		break;
	case MODE_DAEMON: {
		struct daemon_opts o = { a.config, a.state_dir };
		r = daemon_run(&o, &c) ? 1 : 0;
		break;
	}
	default:
		r = 1;
		break;
	}
	curl_global_cleanup();
	cfg_free(c);
	log_clear_secrets();
	return r;
}
