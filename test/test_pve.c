/* test_pve.c — the Proxmox API client against the simulated host over real
 * TLS on loopback: reads, mutations, task waiting, typed errors, trust
 * modes, connection reuse, and the 16-privilege role. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "err.h"
#include "harness.h"
#include "pve.h"
#include "sim.h"

static struct sim S;

enum trust_mode { T_PIN, T_CA, T_INSECURE, T_NONE, T_WRONG_PIN };

static struct pve_client *client_for(struct sim *s, enum trust_mode t, const char *token)
{
	struct pve_opts o;
	struct pve_client *c = NULL;
	struct pve_err e;

	memset(&o, 0, sizeof(o));
	o.endpoint = s->endpoint;
	o.node = "pve";
	o.token = token ? token : s->token;
	switch (t) {
	case T_PIN: o.tls_fingerprint = s->fingerprint; break;
	case T_CA: o.ca_file = s->cert_file; break;
	case T_INSECURE: o.insecure_skip_verify = true; break;
	case T_NONE: break;
	case T_WRONG_PIN:
		o.tls_fingerprint = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
				    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
		break;
	}
	o.request_timeout_ms = 5000;
	o.poll_initial_ms = 20;
	o.poll_max_ms = 100;
	o.task_timeout_ms = 10000;
	if (pve_client_new(&o, &c, &e)) {
		t_failf(__FILE__, __LINE__, "pve_client_new: %s", e.reason);
		return NULL;
	}
	return c;
}

static const char *secret_of(const char *token)
{
	const char *eq = strrchr(token, '=');
	return eq ? eq + 1 : token;
}

/* No error text may ever carry the token's secret. */
static void no_secret(const struct pve_err *e)
{
	const char *sec = secret_of(S.token);

	if (strstr(e->reason, sec) || strstr(e->path, sec) || strstr(e->log_tail, sec) ||
	    strstr(e->exitstatus, sec))
		t_failf(__FILE__, __LINE__, "secret in error text");
}

T_TEST(t_reads)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_version v;
	struct pve_node_entry *nodes = NULL;
	struct pve_node_status ns;
	struct pve_guest *g = NULL;
	struct pve_storage *st = NULL;
	struct pve_content *ct = NULL;
	struct pve_iface *ifs = NULL;
	struct pve_task_entry *tasks = NULL;
	struct pve_stats stats;
	size_t nn = 0, ng = 0, nst = 0, nct = 0, nif = 0, ntasks = 0, i;
	int running = 0;

	if (!c)
		return;
	T_OK(pve_get_version(c, &v, &e));
	T_CHECK(v.version[0] != '\0');
	T_OK(pve_list_nodes(c, &nodes, &nn, &e));
	T_EQ_INT(nn, 1);
	if (nn) {
		T_EQ_STR(nodes[0].node, "pve");
		T_EQ_STR(nodes[0].ssl_fingerprint, S.fingerprint);
	}
	T_OK(pve_node_status(c, &ns, &e));
	T_CHECK(ns.mem_total > 0 && ns.rootfs_total > 0);
	T_CHECK(ns.cpu >= 0.0 && ns.cpu <= 1.0);
	T_CHECK(ns.loadavg[0][0] != '\0' && ns.loadavg[2][0] != '\0');
	T_OK(pve_list_lxc(c, &g, &ng, &e));
	T_EQ_INT(ng, 3);
	for (i = 0; i < ng; i++) {
		struct pve_guest_config gc;
		T_CHECK(g[i].vmid >= 100);
		T_OK(pve_guest_config(c, g[i].vmid, &gc, &e));
		T_CHECK(gc.cores > 0);
		T_CHECK(gc.memory_mib > 0);
		T_CHECK(gc.rootfs_gib > 0);
		T_CHECK(gc.digest[0] != '\0');
		T_CHECK(pve_guest_config_get(&gc, "net0") != NULL);
		pve_guest_config_free(&gc);
		if (!strcmp(g[i].status, "running") && !running) {
			running = g[i].vmid;
			T_OK(pve_lxc_interfaces(c, running, &ifs, &nif, &e));
			T_CHECK(nif >= 1);
		}
	}
	T_CHECK(running != 0);
	T_OK(pve_list_storage(c, &st, &nst, &e));
	T_CHECK(nst >= 2);
	free(st);
	st = NULL;
	T_OK(pve_node_storage(c, &st, &nst, &e));
	T_CHECK(nst >= 2);
	for (i = 0; i < nst; i++)
		T_CHECK(st[i].storage[0] != '\0');
	T_OK(pve_storage_content(c, "local", "backup", &ct, &nct, &e));
	T_OK(pve_list_tasks(c, 0, 0, &tasks, &ntasks, &e));
	/* one keep-alive connection for all of it */
	pve_stats(c, &stats);
	T_EQ_INT(stats.connects, 1);
	T_EQ_INT(stats.pin_probes, 1);
	free(nodes);
	free(g);
	free(st);
	free(ct);
	free(ifs);
	free(tasks);
	pve_client_free(c);
}

/* QEMU VMs: the list and a VM's config as key/value pairs. */
T_TEST(t_qemu_reads)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_guest *g = NULL;
	struct pve_guest_config cfg;
	size_t n = 99;
	char resp[256];

	if (!c)
		return;
	T_OK(pve_list_qemu(c, &g, &n, &e));
	T_EQ_INT(n, 0);
	free(g);
	g = NULL;
	T_EQ_INT(sim_control(&S, "POST", "/vm",
			     "{\"vmid\":300,\"config\":{\"name\":\"win\",\"scsi1\":\"/dev/disk/by-id/ata-X_1,size=100G\"}}",
			     resp, sizeof(resp)),
		 200);
	T_OK(pve_list_qemu(c, &g, &n, &e));
	T_EQ_INT(n, 1);
	if (n == 1)
		T_EQ_INT(g[0].vmid, 300);
	free(g);
	memset(&cfg, 0, sizeof(cfg));
	T_OK(pve_qemu_config(c, 300, &cfg, &e));
	T_EQ_STR(pve_guest_config_get(&cfg, "scsi1") ? pve_guest_config_get(&cfg, "scsi1") : "",
		 "/dev/disk/by-id/ata-X_1,size=100G");
	pve_guest_config_free(&cfg);
	T_ERR(pve_qemu_config(c, 301, &cfg, &e), FH_ERR_HTTP_5XX);
	T_ERR(pve_qemu_config(c, 7, &cfg, &e), FH_ERR_INVAL);
	T_EQ_INT(sim_control(&S, "POST", "/vm", "{\"vmid\":300,\"config\":null}", resp, sizeof(resp)), 200);
	pve_client_free(c);
}

T_TEST(t_pin_mismatch_sends_no_request)
{
	struct pve_client *c;
	struct pve_err e;
	struct pve_version v;

	sim_control(&S, "POST", "/reset", "{}", NULL, 0);
	c = client_for(&S, T_WRONG_PIN, NULL);
	if (!c)
		return;
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_TLS_PIN);
	T_CHECK(strstr(e.reason, S.fingerprint) != NULL);   /* names what the server showed */
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_TLS_PIN);
	no_secret(&e);
	T_EQ_INT(sim_stat(&S, "requests"), 0);
	T_CHECK(sim_stat(&S, "handshakes") >= 1);
	pve_client_free(c);
}

T_TEST(t_trust_modes)
{
	struct pve_client *c;
	struct pve_err e;
	struct pve_version v;
	struct pve_opts o;

	c = client_for(&S, T_CA, NULL);
	if (c) {
		T_OK(pve_get_version(c, &v, &e));
		pve_client_free(c);
	}
	c = client_for(&S, T_INSECURE, NULL);
	if (c) {
		T_OK(pve_get_version(c, &v, &e));
		pve_client_free(c);
	}
	/* system roots do not know the simulator's self-signed certificate */
	c = client_for(&S, T_NONE, NULL);
	if (c) {
		T_ERR(pve_get_version(c, &v, &e), FH_ERR_TLS);
		pve_client_free(c);
	}
	/* insecure is refused for anything but loopback */
	memset(&o, 0, sizeof(o));
	o.endpoint = "https://pve.example.net:8006";
	o.node = "pve";
	o.token = S.token;
	o.insecure_skip_verify = true;
	T_ERR(pve_client_new(&o, &c, &e), FH_ERR_CONFIG);
	o.insecure_skip_verify = false;
	o.ca_file = S.cert_file;
	o.tls_fingerprint = S.fingerprint;
	T_ERR(pve_client_new(&o, &c, &e), FH_ERR_CONFIG);
}

T_TEST(t_auth_errors)
{
	char bad[300];
	struct pve_client *c;
	struct pve_err e;
	struct pve_version v;

	snprintf(bad, sizeof(bad), "felhom@pve!agent=00000000-0000-0000-0000-000000000000");
	c = client_for(&S, T_PIN, bad);
	if (!c)
		return;
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_HTTP_401);
	T_EQ_INT(e.http_status, 401);
	T_CHECK(e.reason[0] != '\0');
	T_CHECK(strstr(e.reason, "00000000-0000") == NULL);
	pve_client_free(c);
}

T_TEST(t_http_error_mapping)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_version v;
	struct pve_node_status ns;
	struct pve_stats st;

	if (!c)
		return;
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/version$\",\"status\":501,"
		      "\"reason\":\"Method 'GET /version' not implemented\",\"count\":1}");
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_HTTP_501);
	T_EQ_STR(e.reason, "Method 'GET /version' not implemented");
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/version$\",\"status\":500,"
		      "\"reason\":\"can't lock file '/var/lock/x' - got timeout\",\"count\":1}");
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_HTTP_5XX);
	T_CHECK(strstr(e.reason, "got timeout") != NULL);
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/status$\",\"status\":596,"
		      "\"reason\":\"Connection timed out\",\"count\":1}");
	T_ERR(pve_node_status(c, &ns, &e), FH_ERR_HTTP_PROXY);
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/status$\",\"status\":400,"
		      "\"reason\":\"Parameter verification failed.\",\"count\":1}");
	T_ERR(pve_node_status(c, &ns, &e), FH_ERR_HTTP_4XX);
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/version$\",\"kind\":\"malformed_json\",\"count\":1}");
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_DECODE);
	/* the client keeps working, reconnecting after the server's closes */
	T_OK(pve_get_version(c, &v, &e));
	pve_stats(c, &st);
	T_CHECK(st.connects >= 2);
	T_EQ_INT(st.pin_probes, 1);
	no_secret(&e);
	pve_client_free(c);
}

T_TEST(t_slow_response_times_out)
{
	struct pve_opts o;
	struct pve_client *c = NULL;
	struct pve_err e;
	struct pve_version v;

	memset(&o, 0, sizeof(o));
	o.endpoint = S.endpoint;
	o.node = "pve";
	o.token = S.token;
	o.tls_fingerprint = S.fingerprint;
	o.request_timeout_ms = 300;
	T_OK(pve_client_new(&o, &c, &e));
	if (!c)
		return;
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/version$\",\"kind\":\"slow\",\"delay_ms\":1500,"
		      "\"count\":1}");
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_TIMEOUT);
	pve_client_free(c);
}

T_TEST(t_response_cap)
{
	struct pve_opts o;
	struct pve_client *c = NULL;
	struct pve_err e;
	struct pve_guest *g = NULL;
	size_t n = 0;
	static const char *const args[] = { "--guests", "200", NULL };
	struct sim big;

	if (sim_start(&big, args)) {
		t_failf(__FILE__, __LINE__, "sim_start");
		return;
	}
	memset(&o, 0, sizeof(o));
	o.endpoint = big.endpoint;
	o.node = "pve";
	o.token = big.token;
	o.tls_fingerprint = big.fingerprint;
	o.max_response = 4096;
	T_OK(pve_client_new(&o, &c, &e));
	if (c) {
		T_ERR(pve_list_lxc(c, &g, &n, &e), FH_ERR_TOOBIG);
		T_CHECK(g == NULL);
		pve_client_free(c);
		c = NULL;
	}
	/* and a list longer than the entry cap */
	o.max_response = 0;
	o.max_guests = 50;
	T_OK(pve_client_new(&o, &c, &e));
	if (c) {
		T_ERR(pve_list_lxc(c, &g, &n, &e), FH_ERR_TOOBIG);
		pve_client_free(c);
	}
	sim_stop(&big);
}

static int first_guest(struct pve_client *c, const char *status)
{
	struct pve_guest *g = NULL;
	struct pve_err e;
	size_t n = 0, i;
	int vmid = 0;

	if (pve_list_lxc(c, &g, &n, &e))
		return 0;
	for (i = 0; i < n && !vmid; i++) {
		if (!status || !strcmp(g[i].status, status))
			vmid = g[i].vmid;
	}
	free(g);
	return vmid;
}

static int post_and_wait(struct pve_client *c, int r, const char *upid, struct pve_err *e)
{
	struct pve_task_result res;

	if (r)
		return r;
	return pve_task_wait(c, upid, &res, e);
}

T_TEST(t_task_lifecycle)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_guest gs;
	struct upid u;
	char upid[UPID_MAX];
	int vmid;

	if (!c)
		return;
	vmid = first_guest(c, "running");
	T_CHECK(vmid != 0);
	T_OK(pve_snapshot(c, vmid, "selftest1", "test", upid, &e));
	T_OK(upid_parse(upid, strlen(upid), &u, NULL));
	T_EQ_STR(u.type, "vzsnapshot");
	T_EQ_STR(u.user, "felhom@pve!agent");
	T_OK(post_and_wait(c, 0, upid, &e));
	T_OK(post_and_wait(c, pve_rollback(c, vmid, "selftest1", upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_delete_snapshot(c, vmid, "selftest1", upid, &e), upid, &e));
	/* a rollback leaves the container stopped (start=0) */
	T_OK(pve_guest_status(c, vmid, &gs, &e));
	T_EQ_STR(gs.status, "stopped");
	T_OK(post_and_wait(c, pve_start(c, vmid, upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_stop(c, vmid, upid, &e), upid, &e));
	T_OK(pve_guest_status(c, vmid, &gs, &e));
	T_EQ_STR(gs.status, "stopped");
	T_ERR(pve_stop(c, vmid, upid, &e), FH_ERR_HTTP_5XX);
	T_CHECK(strstr(e.reason, "not running") != NULL);
	T_OK(post_and_wait(c, pve_start(c, vmid, upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_shutdown(c, vmid, 30, true, upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_start(c, vmid, upid, &e), upid, &e));
	/* starting a running guest: Proxmox says so at the POST */
	T_ERR(pve_start(c, vmid, upid, &e), FH_ERR_HTTP_5XX);
	T_CHECK(strstr(e.reason, "already running") != NULL);
	pve_client_free(c);
}

T_TEST(t_set_config_sync_and_digest)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_guest_config gc;
	struct pve_param kv[] = { { "memory", "3072" }, { "description", "set by test" } };
	char upid[UPID_MAX] = "x";
	int vmid;

	if (!c)
		return;
	vmid = first_guest(c, NULL);
	T_OK(pve_guest_config(c, vmid, &gc, &e));
	T_OK(pve_set_config(c, vmid, kv, 2, NULL, gc.digest, upid, &e));
	T_EQ_STR(upid, "");
	pve_guest_config_free(&gc);
	T_OK(pve_guest_config(c, vmid, &gc, &e));
	T_EQ_INT(gc.memory_mib, 3072);
	/* a stale digest is refused by the server */
	T_ERR(pve_set_config(c, vmid, kv, 1, NULL, "0000000000000000000000000000000000000000", upid, &e),
	      FH_ERR_HTTP_5XX);
	T_CHECK(strstr(e.reason, "detected modified configuration") != NULL);
	pve_guest_config_free(&gc);
	pve_client_free(c);
}

T_TEST(t_backup_restore_destroy)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_vzdump vz = { 0, "local", NULL, NULL, NULL };
	struct pve_restore rs;
	struct pve_content *ct = NULL;
	struct pve_guest gs;
	char upid[UPID_MAX];
	size_t n = 0, i;
	bool no_task = true;
	int vmid;
	const char *volid = NULL;

	if (!c)
		return;
	vmid = first_guest(c, NULL);
	vz.vmid = vmid;
	T_OK(pve_vzdump(c, &vz, upid, &no_task, &e));
	T_CHECK(!no_task);
	T_OK(post_and_wait(c, 0, upid, &e));
	T_OK(pve_storage_content(c, "local", "backup", &ct, &n, &e));
	for (i = 0; i < n; i++) {
		if (ct[i].vmid == vmid)
			volid = ct[i].volid;
	}
	T_CHECK(volid != NULL);
	if (volid) {
		memset(&rs, 0, sizeof(rs));
		rs.vmid = 4242;
		rs.ostemplate = volid;
		rs.storage = "local-lvm";
		rs.unique = true;
		T_OK(post_and_wait(c, pve_restore_lxc(c, &rs, upid, &e), upid, &e));
		T_OK(pve_guest_status(c, 4242, &gs, &e));
		/* restoring over an existing guest without force is refused */
		T_ERR(pve_restore_lxc(c, &rs, upid, &e), FH_ERR_HTTP_5XX);
		T_CHECK(strstr(e.reason, "already exists") != NULL);
		T_OK(post_and_wait(c, pve_destroy(c, 4242, true, false, upid, &e), upid, &e));
		T_ERR(pve_guest_status(c, 4242, &gs, &e), FH_ERR_HTTP_5XX);
	}
	/* vzdump of a vmid with no local guest answers "OK": no task */
	vz.vmid = 999999;
	T_OK(pve_vzdump(c, &vz, upid, &no_task, &e));
	T_CHECK(no_task);
	T_EQ_STR(upid, "");
	free(ct);
	pve_client_free(c);
}

static int has_volume(struct pve_client *c, const char *storage, const char *volid, bool *prot)
{
	struct pve_content *ct = NULL;
	struct pve_err e;
	size_t n = 0, i;
	int found = 0;

	if (pve_storage_content(c, storage, "backup", &ct, &n, &e))
		return -1;
	for (i = 0; i < n; i++) {
		if (!strcmp(ct[i].volid, volid)) {
			found = 1;
			if (prot)
				*prot = ct[i].protected_;
		}
	}
	free(ct);
	return found;
}

/* Pulls the n-th (0-based) string of "volids":[...] out of a control answer. */
static int nth_volid(const char *resp, int n, char *out, size_t outlen)
{
	const char *p = strstr(resp, "\"volids\"");
	const char *q;
	int i;

	if (!p)
		return -1;
	for (i = 0; i <= n; i++) {
		p = strchr(p + 1, '"');
		if (i == 0)
			p = strchr(p + 1, '"'); /* skip the key's closing quote */
		if (!p)
			return -1;
		if (i < n) {
			p = strchr(p + 1, '"');
			if (!p)
				return -1;
		}
	}
	q = strchr(p + 1, '"');
	if (!q || (size_t)(q - p - 1) >= outlen)
		return -1;
	memcpy(out, p + 1, (size_t)(q - p - 1));
	out[q - p - 1] = '\0';
	return 0;
}

T_TEST(t_delete_volume)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_task_result res;
	char upid[UPID_MAX], resp[4096], keep[256], prot[256], path[512];
	long before;
	bool p = false;
	int st;

	if (!c)
		return;
	st = sim_control(&S, "POST", "/backups",
			 "{\"storage\":\"backup-nas\",\"vmid\":101,\"ctimes\":[1700000000,1700086400],"
			 "\"protected\":[1]}", resp, sizeof(resp));
	T_EQ_INT(st, 200);
	T_OK(nth_volid(resp, 0, keep, sizeof(keep)));
	T_OK(nth_volid(resp, 1, prot, sizeof(prot)));
	T_EQ_INT(has_volume(c, "backup-nas", prot, &p), 1);
	T_CHECK(p);

	/* an unprotected archive: an imgdel task, then it is gone */
	T_OK(pve_delete_volume(c, "backup-nas", keep, upid, &e));
	T_CHECK(strstr(upid, ":imgdel:101@backup-nas:") != NULL);
	T_OK(pve_task_wait(c, upid, &res, &e));
	T_EQ_STR(res.exitstatus, "OK");
	T_EQ_INT(has_volume(c, "backup-nas", keep, NULL), 0);
	/* the volid travelled URL-encoded as one path segment */
	snprintf(path, sizeof(path), "DELETE /api2/json/nodes/pve/storage/backup-nas/content/backup-nas%%3Abackup%%2F%s",
		 strchr(keep, '/') + 1);
	T_EQ_INT(sim_count_path(&S, path), 1);

	/* a protected archive: the task fails with Proxmox's words, the archive stays */
	T_OK(pve_delete_volume(c, "backup-nas", prot, upid, &e));
	T_ERR(pve_task_wait(c, upid, &res, &e), FH_ERR_TASK);
	T_CHECK(strstr(e.exitstatus, "cannot remove protected archive") != NULL);
	T_EQ_INT(has_volume(c, "backup-nas", prot, NULL), 1);
	/* unprotected through the control API, it can go */
	T_EQ_INT(sim_control(&S, "POST", "/volume", "{\"volid\":\"", NULL, 0), 400);
	snprintf(resp, sizeof(resp), "{\"volid\":\"%s\",\"protected\":false}", prot);
	T_EQ_INT(sim_control(&S, "POST", "/volume", resp, NULL, 0), 200);
	T_OK(pve_delete_volume(c, "backup-nas", prot, upid, &e));
	T_OK(pve_task_wait(c, upid, &res, &e));
	T_EQ_INT(has_volume(c, "backup-nas", prot, NULL), 0);

	/* shapes are checked before anything is sent */
	before = sim_stat(&S, "requests");
	T_ERR(pve_delete_volume(c, "backup-nas", "local:backup/vzdump-lxc-101-x.tar.zst", upid, &e), FH_ERR_INVAL);
	T_ERR(pve_delete_volume(c, "backup-nas", "backup-nas:../../etc/passwd", upid, &e), FH_ERR_INVAL);
	T_ERR(pve_delete_volume(c, "backup-nas", "backup-nas:", upid, &e), FH_ERR_INVAL);
	T_ERR(pve_delete_volume(c, "backup-nas", "no-colon", upid, &e), FH_ERR_INVAL);
	T_ERR(pve_delete_volume(c, "backup/nas", "backup/nas:x", upid, &e), FH_ERR_INVAL);
	T_ERR(pve_delete_volume(c, "backup-nas", "backup-nas:a b", upid, &e), FH_ERR_INVAL);
	T_ERR(pve_delete_volume(c, NULL, "backup-nas:x", upid, &e), FH_ERR_INVAL);
	T_EQ_INT(sim_stat(&S, "requests"), before);

	/* a refused DELETE is an HTTP error and never re-sent */
	sim_fault(&S, "{\"method\":\"DELETE\",\"path_regex\":\"/content/\",\"status\":500,\"reason\":\"boom\",\"count\":1}");
	before = sim_stat(&S, "requests");
	T_ERR(pve_delete_volume(c, "backup-nas", "backup-nas:backup/vzdump-lxc-101-2020_01_01-00_00_00.tar.zst", upid,
				&e), FH_ERR_HTTP_5XX);
	T_EQ_INT(sim_stat(&S, "requests"), before + 1);
	no_secret(&e);
	pve_client_free(c);
}

/* vzdump never lets Proxmox prune: remove=0 is always sent, with snapshot
 * mode and zstd by default. */
T_TEST(t_vzdump_sends_remove_0)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_vzdump vz = { 0, "backup-nas", NULL, NULL, NULL };
	char upid[UPID_MAX];
	char *log = malloc(1 << 20);
	bool no_task = true;
	const char *v;

	if (!c || !log) {
		T_CHECK(0);
		free(log);
		pve_client_free(c);
		return;
	}
	sim_reset(&S);
	vz.vmid = first_guest(c, NULL);
	T_OK(post_and_wait(c, pve_vzdump(c, &vz, upid, &no_task, &e), upid, &e));
	T_EQ_INT(sim_control(&S, "GET", "/requests", NULL, log, 1 << 20), 200);
	v = strstr(log, "/vzdump\"");
	T_CHECK(v != NULL);
	if (v) {
		T_CHECK(strstr(v, "\"remove\":\"0\"") != NULL);
		T_CHECK(strstr(v, "\"mode\":\"snapshot\"") != NULL);
		T_CHECK(strstr(v, "\"compress\":\"zstd\"") != NULL);
	}
	free(log);
	pve_client_free(c);
}

T_TEST(t_task_failure_names_privilege)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_vzdump vz = { 0, "local", NULL, NULL, NULL };
	char upid[UPID_MAX];
	bool no_task;

	if (!c)
		return;
	vz.vmid = first_guest(c, NULL);
	sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/vzdump$\",\"kind\":\"task_fail\",\"count\":1,"
		      "\"reason\":\"Permission check failed (/storage/local, Datastore.AllocateSpace)\"}");
	T_OK(pve_vzdump(c, &vz, upid, &no_task, &e));
	T_ERR(post_and_wait(c, 0, upid, &e), FH_ERR_TASK);
	T_EQ_STR(e.privilege, "Datastore.AllocateSpace");
	T_EQ_STR(e.perm_path, "/storage/local");
	T_CHECK(strstr(e.exitstatus, "Permission check failed") != NULL);
	T_CHECK(strstr(e.log_tail, "TASK ERROR") != NULL);
	no_secret(&e);
	pve_client_free(c);
}

T_TEST(t_task_warnings_are_success)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_task_result res;
	struct pve_vzdump vz = { 0, "local", NULL, NULL, NULL };
	char upid[UPID_MAX];
	bool no_task;

	if (!c)
		return;
	vz.vmid = first_guest(c, NULL);
	sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/vzdump$\",\"kind\":\"task_fail\",\"count\":1,"
		      "\"reason\":\"WARNINGS: 2\"}");
	T_OK(pve_vzdump(c, &vz, upid, &no_task, &e));
	T_OK(pve_task_wait(c, upid, &res, &e));
	T_EQ_STR(res.exitstatus, "WARNINGS: 2");
	T_EQ_INT(res.warnings, 2);
	T_CHECK(res.log_tail[0] != '\0');
	/* a plain OK carries no warnings */
	T_OK(pve_vzdump(c, &vz, upid, &no_task, &e));
	T_OK(pve_task_wait(c, upid, &res, &e));
	T_EQ_STR(res.exitstatus, "OK");
	T_EQ_INT(res.warnings, 0);
	pve_client_free(c);
}

T_TEST(t_task_wait_timeout_and_no_such_task)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_task_result res;
	struct pve_opts o;
	struct pve_client *quick = NULL;
	char upid[UPID_MAX];
	int vmid;

	if (!c)
		return;
	vmid = first_guest(c, NULL);
	/* the task log not being there yet is transient */
	sim_fault(&S, "{\"method\":\"GET\",\"path_regex\":\"/tasks/.*/status$\",\"kind\":\"no_such_task\","
		      "\"count\":2}");
	T_OK(post_and_wait(c, pve_snapshot(c, vmid, "nst1", NULL, upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_delete_snapshot(c, vmid, "nst1", upid, &e), upid, &e));

	memset(&o, 0, sizeof(o));
	o.endpoint = S.endpoint;
	o.node = "pve";
	o.token = S.token;
	o.tls_fingerprint = S.fingerprint;
	o.poll_initial_ms = 20;
	o.poll_max_ms = 50;
	o.task_timeout_ms = 300;
	T_OK(pve_client_new(&o, &quick, &e));
	if (quick) {
		sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/snapshot$\",\"kind\":\"task_never_finishes\","
			      "\"count\":1}");
		T_OK(pve_snapshot(quick, vmid, "forever1", NULL, upid, &e));
		T_ERR(pve_task_wait(quick, upid, &res, &e), FH_ERR_TIMEOUT);
		pve_client_free(quick);
	}
	pve_client_free(c);
}

struct canceller {
	struct pve_client *c;
	long delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;
	struct timespec ts = { k->delay_ms / 1000, (k->delay_ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	pve_cancel(k->c);
	return NULL;
}

T_TEST(t_task_wait_cancellable)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_task_result res;
	struct pve_version v;
	struct canceller k;
	pthread_t th;
	char upid[UPID_MAX];
	int vmid;

	if (!c)
		return;
	vmid = first_guest(c, NULL);
	sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/snapshot$\",\"kind\":\"task_never_finishes\","
		      "\"count\":1}");
	T_OK(pve_snapshot(c, vmid, "forever2", NULL, upid, &e));
	k.c = c;
	k.delay_ms = 200;
	pthread_create(&th, NULL, cancel_later, &k);
	T_ERR(pve_task_wait(c, upid, &res, &e), FH_ERR_CANCELLED);
	pthread_join(th, NULL);
	/* a cancelled client stays cancelled */
	T_ERR(pve_get_version(c, &v, &e), FH_ERR_CANCELLED);
	pve_client_free(c);
}

T_TEST(t_mutation_never_reposted)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	char upid[UPID_MAX], key[160];
	long before;
	int vmid;

	if (!c)
		return;
	vmid = first_guest(c, "stopped");
	if (!vmid)
		vmid = first_guest(c, NULL);
	snprintf(key, sizeof(key), "POST /api2/json/nodes/pve/lxc/%d/status/start", vmid);
	before = sim_count_path(&S, key);
	sim_fault(&S, "{\"method\":\"POST\",\"path_regex\":\"/status/start$\",\"status\":500,"
		      "\"reason\":\"got no worker upid - start worker failed\",\"count\":1}");
	T_ERR(pve_start(c, vmid, upid, &e), FH_ERR_HTTP_5XX);
	T_EQ_INT(sim_count_path(&S, key) - before, 1);
	pve_client_free(c);
}

T_TEST(t_input_validation)
{
	struct pve_client *c = client_for(&S, T_PIN, NULL);
	struct pve_err e;
	struct pve_task_status ts;
	struct pve_content *ct = NULL;
	char upid[UPID_MAX];
	size_t n;

	if (!c)
		return;
	T_ERR(pve_snapshot(c, 101, "bad name", NULL, upid, &e), FH_ERR_INVAL);
	T_ERR(pve_snapshot(c, 101, "../x", NULL, upid, &e), FH_ERR_INVAL);
	T_ERR(pve_start(c, 5, upid, &e), FH_ERR_INVAL);
	T_ERR(pve_storage_content(c, "local/../x", NULL, &ct, &n, &e), FH_ERR_INVAL);
	T_ERR(pve_task_status(c, "UPID:not-a-upid", &ts, &e), FH_ERR_UPID);
	pve_client_free(c);
}

T_TEST(t_permission_text_parsing)
{
	char priv[64], path[128];

	T_OK(pve_parse_permission("Permission check failed (/vms/100, VM.PowerMgmt)", priv, sizeof(priv), path,
				  sizeof(path)));
	T_EQ_STR(priv, "VM.PowerMgmt");
	T_EQ_STR(path, "/vms/100");
	T_OK(pve_parse_permission("x: Permission check failed (/, Sys.Audit|Sys.Modify) y", priv, sizeof(priv),
				  path, sizeof(path)));
	T_EQ_STR(priv, "Sys.Audit|Sys.Modify");
	T_ERR(pve_parse_permission("Permission check failed (mount point type bind is only allowed for root@pam)",
				   priv, sizeof(priv), path, sizeof(path)), FH_ERR_NOT_FOUND);
	T_ERR(pve_parse_permission("Permission check failed (/vms/100, VM.PowerMgmt", priv, sizeof(priv), path,
				   sizeof(path)), FH_ERR_NOT_FOUND);
	T_ERR(pve_parse_permission(NULL, priv, sizeof(priv), path, sizeof(path)), FH_ERR_NOT_FOUND);
}

/* The 16-privilege role is enough for every read and mutation the agent
 * makes, and a privilege outside it is refused with its name. */
T_TEST(t_role_agent_is_enough)
{
	static const char *const args[] = { "--role", "agent", NULL };
	struct sim r;
	struct pve_client *c;
	struct pve_err e;
	struct pve_version v;
	struct pve_node_entry *nodes = NULL;
	struct pve_node_status ns;
	struct pve_guest *g = NULL;
	struct pve_storage *st = NULL;
	struct pve_content *ct = NULL;
	struct pve_task_entry *tasks = NULL;
	struct pve_iface *ifs = NULL;
	struct pve_guest_config gc;
	struct pve_vzdump vz = { 0, "local", NULL, NULL, NULL };
	struct pve_restore rs;
	struct pve_param kv[] = { { "cores", "2" }, { "memory", "2048" }, { "description", "x" } };
	char upid[UPID_MAX];
	size_t n = 0, i;
	bool no_task;
	int vmid = 0, running = 0;

	if (sim_start(&r, args)) {
		t_failf(__FILE__, __LINE__, "sim_start failed");
		return;
	}
	c = client_for(&r, T_PIN, NULL);
	if (!c) {
		sim_stop(&r);
		return;
	}
	T_OK(pve_get_version(c, &v, &e));
	T_OK(pve_list_nodes(c, &nodes, &n, &e));
	T_OK(pve_node_status(c, &ns, &e));
	T_OK(pve_list_lxc(c, &g, &n, &e));
	T_CHECK(n > 0);
	for (i = 0; i < n; i++) {
		if (!vmid)
			vmid = g[i].vmid;
		if (!running && !strcmp(g[i].status, "running"))
			running = g[i].vmid;
	}
	T_OK(pve_guest_config(c, vmid, &gc, &e));
	pve_guest_config_free(&gc);
	T_OK(pve_list_storage(c, &st, &n, &e));
	T_CHECK(n > 0);
	free(st);
	st = NULL;
	T_OK(pve_node_storage(c, &st, &n, &e));
	T_CHECK(n > 0);
	T_OK(pve_list_tasks(c, vmid, 0, &tasks, &n, &e));
	if (running)
		T_OK(pve_lxc_interfaces(c, running, &ifs, &n, &e));
	T_OK(pve_set_config(c, vmid, kv, 3, NULL, NULL, upid, &e));
	T_OK(post_and_wait(c, pve_snapshot(c, vmid, "role1", NULL, upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_rollback(c, vmid, "role1", upid, &e), upid, &e));
	T_OK(post_and_wait(c, pve_delete_snapshot(c, vmid, "role1", upid, &e), upid, &e));
	vz.vmid = vmid;
	T_OK(post_and_wait(c, pve_vzdump(c, &vz, upid, &no_task, &e), upid, &e));
	T_OK(pve_storage_content(c, "local", "backup", &ct, &n, &e));
	T_CHECK(n > 0);
	if (n > 0) {
		memset(&rs, 0, sizeof(rs));
		rs.vmid = 4343;
		rs.ostemplate = ct[0].volid;
		rs.storage = "local-lvm";
		rs.unique = true;
		T_OK(post_and_wait(c, pve_restore_lxc(c, &rs, upid, &e), upid, &e));
		T_OK(post_and_wait(c, pve_start(c, 4343, upid, &e), upid, &e));
		T_OK(post_and_wait(c, pve_shutdown(c, 4343, 10, false, upid, &e), upid, &e));
		T_OK(post_and_wait(c, pve_start(c, 4343, upid, &e), upid, &e));
		T_OK(post_and_wait(c, pve_stop(c, 4343, upid, &e), upid, &e));
		T_OK(post_and_wait(c, pve_destroy(c, 4343, true, false, upid, &e), upid, &e));
	}
	free(nodes);
	free(g);
	free(st);
	free(ct);
	free(tasks);
	free(ifs);
	pve_client_free(c);
	sim_stop(&r);
}

T_TEST(t_empty_acl_is_visible)
{
	static const char *const args[] = { "--role", "none", NULL };
	struct sim r;
	struct pve_client *c;
	struct pve_err e;
	struct pve_version v;
	struct pve_node_status ns;
	struct pve_guest *g = NULL;
	size_t n = 99;

	if (sim_start(&r, args)) {
		t_failf(__FILE__, __LINE__, "sim_start failed");
		return;
	}
	c = client_for(&r, T_PIN, NULL);
	if (c) {
		T_OK(pve_get_version(c, &v, &e));
		T_ERR(pve_node_status(c, &ns, &e), FH_ERR_HTTP_403);
		T_EQ_STR(e.privilege, "Sys.Audit");
		T_OK(pve_list_lxc(c, &g, &n, &e));   /* filtered silently */
		T_EQ_INT(n, 0);
		free(g);
		pve_client_free(c);
	}
	sim_stop(&r);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sim_start(&S, NULL)) {
		printf("FAIL sim_start\n# passed 0 failed 1\n");
		return 1;
	}
	T_RUN(t_reads);
	T_RUN(t_qemu_reads);
	T_RUN(t_pin_mismatch_sends_no_request);
	T_RUN(t_trust_modes);
	T_RUN(t_auth_errors);
	T_RUN(t_http_error_mapping);
	T_RUN(t_slow_response_times_out);
	T_RUN(t_response_cap);
	T_RUN(t_task_lifecycle);
	T_RUN(t_set_config_sync_and_digest);
	T_RUN(t_backup_restore_destroy);
	T_RUN(t_delete_volume);
	T_RUN(t_vzdump_sends_remove_0);
	T_RUN(t_task_failure_names_privilege);
	T_RUN(t_task_warnings_are_success);
	T_RUN(t_task_wait_timeout_and_no_such_task);
	T_RUN(t_task_wait_cancellable);
	T_RUN(t_mutation_never_reposted);
	T_RUN(t_input_validation);
	T_RUN(t_permission_text_parsing);
	T_RUN(t_role_agent_is_enough);
	T_RUN(t_empty_acl_is_visible);
	sim_stop(&S);
	curl_global_cleanup();
	return t_done();
}
