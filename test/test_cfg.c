/* test_cfg.c — config loading, env overrides, validation messages,
 * secrets by reference, redaction, and the logger's scrubbing. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cfg.h"
#include "err.h"
#include "harness.h"
#include "log.h"

#define SECRET "0f8e7d6c-5b4a-4321-9876-abcdefabcdef"
#define TOKEN "felhom@pve!agent=" SECRET
#define HUBKEY "hubkey-7b1d3c0e9a8f4e2d"

static char dir[256];

static const char *write_cfg(const char *name, const char *text)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (t_write_file(path, text, 0600))
		abort();
	return path;
}

static int load(const char *text, const char *const env[], struct cfg **c, char *err, size_t errlen)
{
	const char *p = write_cfg("agent.json", text);
	static const char *const noenv[] = { NULL };

	return cfg_load(p, env ? env : noenv, c, err, errlen);
}

T_TEST(t_empty_file_plus_env_is_complete)
{
	const char *env[] = { "FELHOM_AGENT_PROXMOX_ENDPOINT=https://127.0.0.1:8006", "FELHOM_AGENT_PROXMOX_NODE=pve",
			"FELHOM_AGENT_PROXMOX_TOKEN=" TOKEN,
			"FELHOM_AGENT_PROXMOX_TLS_FINGERPRINT="
			"AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
			"FELHOM_AGENT_STATE_DIR=/srv/felhom", "FELHOM_AGENT_HUB_POLL_SECONDS=120", NULL };
	struct cfg *c = NULL;
	char err[512] = "";

	T_OK(load("{}", env, &c, err, sizeof(err)));
	if (!c)
		return;
	T_OK(cfg_validate(c, CFG_NEED_PROXMOX, err, sizeof(err)));
	T_EQ_STR(c->proxmox.node, "pve");
	T_EQ_STR(c->state_dir, "/srv/felhom");
	T_EQ_INT(c->hub.poll_seconds, 120);
	T_EQ_INT(c->hub.timeout_seconds, 30);        /* default */
	T_EQ_STR(c->privileged.mode, "sudo");        /* default */
	/* mode-aware: the read-only selftest needs no hub section, the daemon does */
	T_ERR(cfg_validate(c, CFG_NEED_PROXMOX | CFG_NEED_HUB, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "hub.url: missing required field") != NULL);
	T_CHECK(strstr(err, "FELHOM_AGENT_HUB_URL") != NULL);
	cfg_free(c);
}

T_TEST(t_env_beats_file)
{
	const char *env[] = { "FELHOM_AGENT_PROXMOX_NODE=other", "FELHOM_AGENT_HUB_TLS_FINGERPRINT=" "ab", NULL };
	struct cfg *c = NULL;
	char err[512];

	T_OK(load("{\"proxmox\":{\"node\":\"pve\"}}", env, &c, err, sizeof(err)));
	if (!c)
		return;
	T_EQ_STR(c->proxmox.node, "other");
	T_EQ_STR(c->hub.tls_fingerprint, "ab");
	cfg_free(c);
}

struct bad_case {
	const char *text;
	const char *want;   /* substring of the error */
};

T_TEST(t_errors_name_file_and_key)
{
	static const struct bad_case cases[] = {
		{ "{\"proxmox\":{\"bogus\":1}}", "agent.json: proxmox.bogus: unknown key" },
		{ "{\"bogus\":1}", "agent.json: bogus: unknown key" },
		{ "{\"proxmox\":{\"node\":5}}", "agent.json: proxmox.node: wrong type: want string" },
		{ "{\"proxmox\":{\"insecure_skip_verify\":\"yes\"}}", "proxmox.insecure_skip_verify: wrong type" },
		{ "{\"hub\":{\"poll_seconds\":1.5}}", "hub.poll_seconds: wrong type: want integer" },
		{ "{\"hub\":{\"poll_seconds\":0}}", "hub.poll_seconds: out of range: 0 not in [1, 3600]" },
		{ "{\"hub\":[]}", "agent.json: hub: wrong type: want object" },
		{ "{\"authz\":{\"signers\":[1]}}", "authz.signers: entry 0: want string" },
		{ "{\"localapi\":{\"guest_addresses\":{\"abc\":[]}}}", "localapi.guest_addresses: key \"abc\"" },
		{ "{\"localapi\":{\"guest_addresses\":{\"101\":[\"; rm\"]}}}", "101[0]: want an IP address" },
		{ "{\"a\":1,\"a\":1}", "duplicate object key" },
		{ "[]", "top level must be a JSON object" },
		{ "{", "invalid JSON syntax" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg *c = NULL;
		char err[512] = "";
		T_ERR(load(cases[i].text, NULL, &c, err, sizeof(err)), FH_ERR_CONFIG);
		if (!strstr(err, cases[i].want))
			t_failf(__FILE__, __LINE__, "case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].want);
		T_CHECK(c == NULL);
	}
}

T_TEST(t_env_errors_name_variable)
{
	const char *env[] = { "FELHOM_AGENT_HUB_TIMEOUT_SECONDS=abc", NULL };
	struct cfg *c = NULL;
	char err[512] = "";

	T_ERR(load("{}", env, &c, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "FELHOM_AGENT_HUB_TIMEOUT_SECONDS: hub.timeout_seconds: wrong type") != NULL);
}

T_TEST(t_validate_semantics)
{
	struct cfg *c = NULL;
	char err[512] = "";
	const char *env[] = { "FELHOM_AGENT_PROXMOX_TOKEN=" TOKEN, NULL };

	T_OK(load("{\"proxmox\":{\"endpoint\":\"http://pve:8006\",\"node\":\"pve\"}}", env, &c, err, sizeof(err)));
	if (!c)
		return;
	T_ERR(cfg_validate(c, CFG_NEED_PROXMOX, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "proxmox.endpoint: want https://HOST:8006") != NULL);
	cfg_free(c);
	c = NULL;
	T_OK(load("{\"proxmox\":{\"endpoint\":\"https://pve:8006\",\"node\":\"pve\",\"ca_file\":\"/x\","
		  "\"insecure_skip_verify\":true}}", env, &c, err, sizeof(err)));
	if (!c)
		return;
	T_ERR(cfg_validate(c, CFG_NEED_PROXMOX, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "exactly one of") != NULL);
	cfg_free(c);
	c = NULL;
	{
		const char *env2[] = { "FELHOM_AGENT_PROXMOX_TOKEN=" SECRET, NULL };   /* no user part */
		T_OK(load("{\"proxmox\":{\"endpoint\":\"https://pve:8006\",\"node\":\"pve\"}}", env2, &c, err,
			  sizeof(err)));
		if (!c)
			return;
		T_ERR(cfg_validate(c, CFG_NEED_PROXMOX, err, sizeof(err)), FH_ERR_CONFIG);
		T_CHECK(strstr(err, "proxmox.token") != NULL);
		T_CHECK(strstr(err, SECRET) == NULL);   /* the value is never echoed */
		cfg_free(c);
	}
}

T_TEST(t_backup_storage_localapi_defaults)
{
	struct cfg *c = NULL;
	char err[512] = "";

	T_OK(load("{}", NULL, &c, err, sizeof(err)));
	if (!c)
		return;
	T_OK(cfg_validate(c, 0, err, sizeof(err)));
	T_CHECK(c->backup.enabled);
	T_EQ_INT(c->backup.interval_seconds, 86400);
	T_EQ_INT(c->backup.keep_last, 7);
	T_CHECK(c->backup.storage == NULL);       /* no storage: backups disabled */
	T_EQ_INT((long long)c->backup.nguests, 0);
	T_EQ_INT((long long)c->backup.ngolden, 0);
	T_EQ_STR(c->storage.mount_root, "/mnt/felhom");
	T_EQ_INT((long long)c->localapi.nmonitors, 0);
	cfg_free(c);
}

T_TEST(t_backup_keys_from_file)
{
	struct cfg *c = NULL;
	char err[512] = "";

	T_OK(load("{\"backup\":{\"storage\":\"backup-nas\",\"enabled\":false,\"interval_seconds\":7200,"
		  "\"keep_last\":3,\"golden_archives\":[\"backup-nas:backup/vzdump-lxc-101-2025_01_01-00_00_00.tar.zst\"],"
		  "\"guests\":{\"205\":{\"enabled\":true,\"storage\":\"local\"},"
		  "\"101\":{\"interval_seconds\":3600,\"keep_last\":2},\"150\":{}}},"
		  "\"storage\":{\"mount_root\":\"/srv/disks\"},"
		  "\"localapi\":{\"monitor_addresses\":[\"10.10.0.9\",\"fd00::9\"]}}",
		  NULL, &c, err, sizeof(err)));
	if (!c) {
		t_failf(__FILE__, __LINE__, "%s", err);
		return;
	}
	T_OK(cfg_validate(c, 0, err, sizeof(err)));
	T_CHECK(!c->backup.enabled);
	T_EQ_INT(c->backup.interval_seconds, 7200);
	T_EQ_INT(c->backup.keep_last, 3);
	T_EQ_INT((long long)c->backup.ngolden, 1);
	T_EQ_STR(c->backup.golden_archives[0], "backup-nas:backup/vzdump-lxc-101-2025_01_01-00_00_00.tar.zst");
	T_CHECK(c->backup.golden_archives[1] == NULL);
	T_EQ_INT((long long)c->backup.nguests, 3);
	if (c->backup.nguests == 3) {
		/* sorted by vmid; unset fields stay unset */
		T_EQ_INT(c->backup.guests[0].vmid, 101);
		T_EQ_INT(c->backup.guests[0].enabled, -1);
		T_EQ_INT(c->backup.guests[0].interval_seconds, 3600);
		T_EQ_INT(c->backup.guests[0].keep_last, 2);
		T_CHECK(c->backup.guests[0].storage == NULL);
		T_EQ_INT(c->backup.guests[1].vmid, 150);
		T_EQ_INT(c->backup.guests[1].enabled, -1);
		T_EQ_INT(c->backup.guests[1].keep_last, 0);
		T_EQ_INT(c->backup.guests[2].vmid, 205);
		T_EQ_INT(c->backup.guests[2].enabled, 1);
		T_EQ_STR(c->backup.guests[2].storage, "local");
	}
	T_EQ_STR(c->storage.mount_root, "/srv/disks");
	T_EQ_INT((long long)c->localapi.nmonitors, 2);
	T_EQ_STR(c->localapi.monitor_addresses[1], "fd00::9");
	cfg_free(c);
}

T_TEST(t_backup_keys_from_env)
{
	const char *env[] = { "FELHOM_AGENT_BACKUP_ENABLED=false", "FELHOM_AGENT_BACKUP_INTERVAL_SECONDS=43200",
			      "FELHOM_AGENT_BACKUP_KEEP_LAST=14", "FELHOM_AGENT_BACKUP_STORAGE=local",
			      "FELHOM_AGENT_BACKUP_GUESTS={\"102\":{\"keep_last\":1,\"enabled\":true}}",
			      "FELHOM_AGENT_BACKUP_GOLDEN_ARCHIVES=[\"local:backup/golden.tar.zst\"]",
			      "FELHOM_AGENT_STORAGE_MOUNT_ROOT=/media/disks",
			      "FELHOM_AGENT_LOCALAPI_MONITOR_ADDRESSES=[\"127.0.0.1\",\"::1\"]", NULL };
	struct cfg *c = NULL;
	char err[512] = "";

	/* the environment beats the file */
	T_OK(load("{\"backup\":{\"keep_last\":2,\"guests\":{\"300\":{}}}}", env, &c, err, sizeof(err)));
	if (!c) {
		t_failf(__FILE__, __LINE__, "%s", err);
		return;
	}
	T_OK(cfg_validate(c, 0, err, sizeof(err)));
	T_CHECK(!c->backup.enabled);
	T_EQ_INT(c->backup.interval_seconds, 43200);
	T_EQ_INT(c->backup.keep_last, 14);
	T_EQ_STR(c->backup.storage, "local");
	T_EQ_INT((long long)c->backup.nguests, 1);
	if (c->backup.nguests == 1) {
		T_EQ_INT(c->backup.guests[0].vmid, 102);
		T_EQ_INT(c->backup.guests[0].keep_last, 1);
		T_EQ_INT(c->backup.guests[0].enabled, 1);
	}
	T_EQ_INT((long long)c->backup.ngolden, 1);
	T_EQ_STR(c->storage.mount_root, "/media/disks");
	T_EQ_INT((long long)c->localapi.nmonitors, 2);
	cfg_free(c);
}

T_TEST(t_backup_keys_bad_values_name_the_path)
{
	static const struct bad_case cases[] = {
		{ "{\"backup\":{\"interval_seconds\":60}}",
		  "backup.interval_seconds: out of range: 60 not in [3600, 31536000]" },
		{ "{\"backup\":{\"keep_last\":0}}", "backup.keep_last: out of range: 0 not in [1, 1000]" },
		{ "{\"backup\":{\"keep_last\":1001}}", "backup.keep_last: out of range" },
		{ "{\"backup\":{\"enabled\":1}}", "backup.enabled: wrong type: want true or false" },
		{ "{\"backup\":{\"guests\":[]}}", "backup.guests: wrong type: want object" },
		{ "{\"backup\":{\"guests\":{\"99\":{}}}}", "backup.guests: key \"99\": want a vmid" },
		{ "{\"backup\":{\"guests\":{\"abc\":{}}}}", "backup.guests: key \"abc\"" },
		{ "{\"backup\":{\"guests\":{\"101\":5}}}", "backup.guests: 101: wrong type: want object" },
		{ "{\"backup\":{\"guests\":{\"101\":{\"keep_last\":0}}}}",
		  "backup.guests: 101.keep_last: out of range: 0 not in [1, 1000]" },
		{ "{\"backup\":{\"guests\":{\"101\":{\"interval_seconds\":10}}}}",
		  "backup.guests: 101.interval_seconds: out of range" },
		{ "{\"backup\":{\"guests\":{\"101\":{\"interval_seconds\":\"1h\"}}}}",
		  "backup.guests: 101.interval_seconds: wrong type: want integer" },
		{ "{\"backup\":{\"guests\":{\"101\":{\"enabled\":\"yes\"}}}}", "backup.guests: 101.enabled: wrong type" },
		{ "{\"backup\":{\"guests\":{\"101\":{\"storage\":\"../etc\"}}}}",
		  "backup.guests: 101.storage: want a storage id" },
		{ "{\"backup\":{\"guests\":{\"101\":{\"keep\":1}}}}", "backup.guests: 101.keep: unknown key" },
		{ "{\"backup\":{\"guests\":{\"101\":{},\"0101\":{}}}}", "backup.guests: 0101: listed twice" },
		{ "{\"backup\":{\"golden_archives\":[\"no-colon\"]}}",
		  "backup.golden_archives: entry 0: want a volume id" },
		{ "{\"backup\":{\"golden_archives\":[\"local:backup/../x\"]}}", "backup.golden_archives: entry 0" },
		{ "{\"backup\":{\"golden_archives\":\"local:x\"}}", "backup.golden_archives: wrong type" },
		{ "{\"localapi\":{\"monitor_addresses\":[\"monitor.example\"]}}",
		  "localapi.monitor_addresses: entry 0: want a numeric IPv4 or IPv6 address" },
		{ "{\"localapi\":{\"monitor_addresses\":[\"10.0.0.256\"]}}", "localapi.monitor_addresses: entry 0" },
		{ "{\"localapi\":{\"monitor_addresses\":[\"10.0.0.1/24\"]}}", "localapi.monitor_addresses: entry 0" },
		{ "{\"storage\":{\"mount_root\":5}}", "storage.mount_root: wrong type: want string" },
		{ "{\"storage\":{\"bogus\":\"x\"}}", "storage.bogus: unknown key" },
	};
	size_t i;
	char big[40000];
	size_t n = 0;
	struct cfg *c = NULL;
	char err[512] = "";

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = NULL;
		err[0] = '\0';
		T_ERR(load(cases[i].text, NULL, &c, err, sizeof(err)), FH_ERR_CONFIG);
		if (!strstr(err, cases[i].want))
			t_failf(__FILE__, __LINE__, "case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].want);
		T_CHECK(c == NULL);
	}
	/* bounded: more than CFG_MAX_MONITORS addresses is refused */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "{\"localapi\":{\"monitor_addresses\":[");
	for (i = 0; i <= CFG_MAX_MONITORS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"10.0.0.%zu\"", i ? "," : "", i % 250);
	snprintf(big + n, sizeof(big) - n, "]}}");
	c = NULL;
	T_ERR(load(big, NULL, &c, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "localapi.monitor_addresses: too many entries") != NULL);
	/* environment values are checked the same way, naming the variable */
	{
		const char *env[] = { "FELHOM_AGENT_BACKUP_GUESTS={\"101\":{\"keep_last\":-1}}", NULL };
		const char *env2[] = { "FELHOM_AGENT_LOCALAPI_MONITOR_ADDRESSES=10.0.0.1", NULL };
		c = NULL;
		T_ERR(load("{}", env, &c, err, sizeof(err)), FH_ERR_CONFIG);
		T_CHECK(strstr(err, "FELHOM_AGENT_BACKUP_GUESTS: backup.guests: 101.keep_last: out of range") != NULL);
		T_ERR(load("{}", env2, &c, err, sizeof(err)), FH_ERR_CONFIG);
		T_CHECK(strstr(err, "FELHOM_AGENT_LOCALAPI_MONITOR_ADDRESSES: localapi.monitor_addresses: want a JSON array") !=
			NULL);
	}
	/* semantic checks at validation */
	{
		static const struct bad_case vcases[] = {
			{ "{\"storage\":{\"mount_root\":\"mnt/felhom\"}}", "storage.mount_root: want /mnt, /media or /srv" },
			{ "{\"storage\":{\"mount_root\":\"/mnt/../etc\"}}", "storage.mount_root: want /mnt, /media or /srv" },
			{ "{\"storage\":{\"mount_root\":\"/data/disks\"}}", "storage.mount_root: want /mnt, /media or /srv" },
			{ "{\"storage\":{\"mount_root\":\"/mnt/a b\"}}", "storage.mount_root: want /mnt, /media or /srv" },
			{ "{\"backup\":{\"storage\":\"a/b\"}}", "backup.storage: want a storage id" },
			{ "{\"backup\":{\"mode\":\"fast\"}}", "backup.mode: want snapshot, suspend or stop" },
			{ "{\"backup\":{\"compress\":\"xz\"}}", "backup.compress: want zstd, gzip, lzo or 0" },
		};
		for (i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
			c = NULL;
			err[0] = '\0';
			T_OK(load(vcases[i].text, NULL, &c, err, sizeof(err)));
			if (!c)
				continue;
			T_ERR(cfg_validate(c, 0, err, sizeof(err)), FH_ERR_CONFIG);
			if (!strstr(err, vcases[i].want))
				t_failf(__FILE__, __LINE__, "vcase %zu: error \"%s\" lacks \"%s\"", i, err,
					vcases[i].want);
			cfg_free(c);
		}
	}
}

T_TEST(t_backup_keys_printed)
{
	struct cfg *c = NULL;
	char err[512] = "", path[512];
	char *text = NULL;
	FILE *f;

	T_OK(load("{\"backup\":{\"guests\":{\"101\":{\"keep_last\":2,\"enabled\":false}},"
		  "\"golden_archives\":[\"local:backup/g.tar.zst\"]},\"localapi\":{\"monitor_addresses\":[\"::1\"]}}",
		  NULL, &c, err, sizeof(err)));
	if (!c)
		return;
	snprintf(path, sizeof(path), "%s/printed.json", dir);
	f = fopen(path, "w");
	T_CHECK(f != NULL);
	if (f) {
		T_OK(cfg_print(c, f));
		fclose(f);
		text = t_slurp(path, NULL);
	}
	T_CHECK(text != NULL);
	if (text) {
		T_CHECK(strstr(text, "\"101\"") != NULL);
		T_CHECK(strstr(text, "\"keep_last\": 2") != NULL);
		T_CHECK(strstr(text, "\"enabled\": false") != NULL);
		T_CHECK(strstr(text, "local:backup/g.tar.zst") != NULL);
		T_CHECK(strstr(text, "\"mount_root\": \"/mnt/felhom\"") != NULL);
		T_CHECK(strstr(text, "\"::1\"") != NULL);
	}
	free(text);
	cfg_free(c);
}

T_TEST(t_secret_by_file_and_credential)
{
	char tokpath[512], credir[512], credfile[600], text[1024], err[512] = "";
	struct cfg *c = NULL;

	snprintf(tokpath, sizeof(tokpath), "%s/token", dir);
	T_CHECK(t_write_file(tokpath, TOKEN "\n", 0600) == 0);
	snprintf(text, sizeof(text), "{\"proxmox\":{\"token_file\":\"%s\"}}", tokpath);
	T_OK(load(text, NULL, &c, err, sizeof(err)));
	if (c)
		T_EQ_STR(c->proxmox.token, TOKEN);
	cfg_free(c);
	c = NULL;

	/* both inline and by file: ambiguous */
	snprintf(text, sizeof(text), "{\"proxmox\":{\"token\":\"a@b!c=d\",\"token_file\":\"%s\"}}", tokpath);
	T_ERR(load(text, NULL, &c, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "both set") != NULL);

	/* readable by others: refused */
	chmod(tokpath, 0644);
	snprintf(text, sizeof(text), "{\"proxmox\":{\"token_file\":\"%s\"}}", tokpath);
	T_ERR(load(text, NULL, &c, err, sizeof(err)), FH_ERR_CONFIG);
	T_CHECK(strstr(err, "readable by others") != NULL);
	T_CHECK(strstr(err, SECRET) == NULL);

	/* systemd credentials */
	snprintf(credir, sizeof(credir), "%s/creds", dir);
	mkdir(credir, 0700);
	snprintf(credfile, sizeof(credfile), "%s/hub.api_key", credir);
	T_CHECK(t_write_file(credfile, HUBKEY, 0400) == 0);
	{
		char envv[700];
		const char *env[] = { envv, NULL };
		snprintf(envv, sizeof(envv), "CREDENTIALS_DIRECTORY=%s", credir);
		T_OK(load("{}", env, &c, err, sizeof(err)));
		if (c)
			T_EQ_STR(c->hub.api_key, HUBKEY);
		cfg_free(c);
		c = NULL;
	}
}

T_TEST(t_print_config_redacts)
{
	const char *env[] = { "FELHOM_AGENT_PROXMOX_TOKEN=" TOKEN, "FELHOM_AGENT_HUB_API_KEY=" HUBKEY, NULL };
	struct cfg *c = NULL;
	char err[512], path[512];
	char *out;
	FILE *f;

	T_OK(load("{\"proxmox\":{\"node\":\"pve\"}}", env, &c, err, sizeof(err)));
	if (!c)
		return;
	snprintf(path, sizeof(path), "%s/printed.json", dir);
	f = fopen(path, "w");
	T_CHECK(f != NULL);
	if (!f) {
		cfg_free(c);
		return;
	}
	T_OK(cfg_print(c, f));
	fclose(f);
	out = t_slurp(path, NULL);
	T_CHECK(out != NULL);
	if (out) {
		T_CHECK(strstr(out, SECRET) == NULL);
		T_CHECK(strstr(out, HUBKEY) == NULL);
		T_CHECK(strstr(out, "\"token\": \"[REDACTED]\"") != NULL);
		T_CHECK(strstr(out, "\"api_key\": \"[REDACTED]\"") != NULL);
		T_CHECK(strstr(out, "\"node\": \"pve\"") != NULL);
	}
	free(out);
	cfg_free(c);
}

T_TEST(t_log_scrubs_and_escapes)
{
	char path[512];
	char *out;
	FILE *f;

	snprintf(path, sizeof(path), "%s/log.txt", dir);
	f = fopen(path, "w");
	if (!f) {
		T_CHECK(f != NULL);
		return;
	}
	log_setup(LOG_DEBUG, LOG_FMT_LOGFMT, f);
	log_add_secret(TOKEN);
	log_add_secret(SECRET);
	log_event(LOG_INFO, "test.event", "note", "token is " TOKEN " and " SECRET, "x", "a\"b\nc", NULL);
	log_setup(LOG_WARN, LOG_FMT_LOGFMT, f);
	log_event(LOG_INFO, "test.filtered", NULL);
	log_setup(LOG_INFO, LOG_FMT_JSON, f);
	log_event(LOG_ERROR, "test.json", "k", "v", NULL);
	fclose(f);
	log_setup(LOG_INFO, LOG_FMT_LOGFMT, stderr);
	log_clear_secrets();
	out = t_slurp(path, NULL);
	T_CHECK(out != NULL);
	if (!out)
		return;
	T_CHECK(strstr(out, SECRET) == NULL);
	T_CHECK(strstr(out, "note=\"token is [REDACTED] and [REDACTED]\"") != NULL);
	T_CHECK(strstr(out, "x=\"a\\\"b\\nc\"") != NULL);
	T_CHECK(strstr(out, "level=info event=test.event") != NULL);
	T_CHECK(strstr(out, "test.filtered") == NULL);
	T_CHECK(strstr(out, "\"level\":\"error\",\"event\":\"test.json\",\"k\":\"v\"}") != NULL);
	free(out);
}

int main(void)
{
	t_tmpdir(dir, sizeof(dir));
	T_RUN(t_empty_file_plus_env_is_complete);
	T_RUN(t_env_beats_file);
	T_RUN(t_errors_name_file_and_key);
	T_RUN(t_env_errors_name_variable);
	T_RUN(t_validate_semantics);
	T_RUN(t_backup_storage_localapi_defaults);
	T_RUN(t_backup_keys_from_file);
	T_RUN(t_backup_keys_from_env);
	T_RUN(t_backup_keys_bad_values_name_the_path);
	T_RUN(t_backup_keys_printed);
	T_RUN(t_secret_by_file_and_credential);
	T_RUN(t_print_config_redacts);
	T_RUN(t_log_scrubs_and_escapes);
	return t_done();
}
