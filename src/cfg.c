/* cfg.c — configuration loading, overrides, validation; see cfg.h. */
#include "cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "err.h"
#include "json.h"
#include "log.h"
#include "mountunit.h"
#include "tlspin.h"

enum ktype { K_STR, K_SECRET, K_BOOL, K_INT, K_STRLIST, K_ADDRMAP, K_BACKUPMAP };

struct key {
	const char *section;     /* NULL = top level */
	const char *name;
	enum ktype type;
	size_t off;              /* offset in struct cfg */
	const char *def;         /* default (string form) or NULL */
	int64_t min, max;        /* K_INT range */
	unsigned required;       /* cfg_need bits that require the key */
};

#define O(f) offsetof(struct cfg, f)

static const struct key keys[] = {
	{ NULL, "state_dir", K_STR, O(state_dir), CFG_DEFAULT_STATE_DIR, 0, 0, 0 },

	{ "proxmox", "endpoint", K_STR, O(proxmox.endpoint), NULL, 0, 0, CFG_NEED_PROXMOX },
	{ "proxmox", "node", K_STR, O(proxmox.node), NULL, 0, 0, CFG_NEED_PROXMOX },
	{ "proxmox", "token", K_SECRET, O(proxmox.token), NULL, 0, 0, CFG_NEED_PROXMOX },
	{ "proxmox", "token_file", K_STR, O(proxmox.token_file), NULL, 0, 0, 0 },
	{ "proxmox", "tls_fingerprint", K_STR, O(proxmox.tls_fingerprint), NULL, 0, 0, 0 },
	{ "proxmox", "ca_file", K_STR, O(proxmox.ca_file), NULL, 0, 0, 0 },
	{ "proxmox", "insecure_skip_verify", K_BOOL, O(proxmox.insecure_skip_verify), "false", 0, 0, 0 },
	{ "proxmox", "timeout_seconds", K_INT, O(proxmox.timeout_seconds), "30", 1, 600, 0 },
	{ "proxmox", "task_timeout_seconds", K_INT, O(proxmox.task_timeout_seconds), "3600", 1, 86400, 0 },
	{ "proxmox", "task_poll_initial_ms", K_INT, O(proxmox.task_poll_initial_ms), "1000", 10, 60000, 0 },
	{ "proxmox", "task_poll_max_ms", K_INT, O(proxmox.task_poll_max_ms), "5000", 10, 60000, 0 },
	{ "proxmox", "max_guests", K_INT, O(proxmox.max_guests), "4096", 1, 100000, 0 },

	{ "privileged", "mode", K_STR, O(privileged.mode), "sudo", 0, 0, 0 },
	{ "privileged", "sudo_path", K_STR, O(privileged.sudo_path), "/usr/bin/sudo", 0, 0, 0 },
	{ "privileged", "path", K_STR, O(privileged.path), "/usr/sbin:/usr/bin:/sbin:/bin", 0, 0, 0 },
	{ "privileged", "timeout_seconds", K_INT, O(privileged.timeout_seconds), "60", 1, 3600, 0 },

	{ "hub", "url", K_STR, O(hub.url), NULL, 0, 0, CFG_NEED_HUB },
	{ "hub", "host_id", K_STR, O(hub.host_id), NULL, 0, 0, CFG_NEED_HUB | CFG_NEED_AUTHZ },
	{ "hub", "api_key", K_SECRET, O(hub.api_key), NULL, 0, 0, CFG_NEED_HUB },
	{ "hub", "api_key_file", K_STR, O(hub.api_key_file), NULL, 0, 0, 0 },
	{ "hub", "tls_fingerprint", K_STR, O(hub.tls_fingerprint), NULL, 0, 0, 0 },
	{ "hub", "ca_file", K_STR, O(hub.ca_file), NULL, 0, 0, 0 },
	{ "hub", "poll_seconds", K_INT, O(hub.poll_seconds), "60", 1, 3600, 0 },
	{ "hub", "timeout_seconds", K_INT, O(hub.timeout_seconds), "30", 1, 600, 0 },
	{ "hub", "min_interval_seconds", K_INT, O(hub.min_interval_seconds), "60", 1, 3600, 0 },
	{ "hub", "parked_probe_seconds", K_INT, O(hub.parked_probe_seconds), "900", 1, 86400, 0 },
	{ "hub", "backoff_initial_ms", K_INT, O(hub.backoff_initial_ms), "5000", 100, 3600000, 0 },
	{ "hub", "backoff_max_ms", K_INT, O(hub.backoff_max_ms), "300000", 100, 86400000, 0 },

	{ "authz", "signers", K_STRLIST, O(authz.signers), NULL, 0, 0, 0 },
	{ "authz", "signers_file", K_STR, O(authz.signers_file), NULL, 0, 0, 0 },
	{ "authz", "max_lifetime_seconds", K_INT, O(authz.max_lifetime_seconds), "3600", 60, 604800, 0 },
	{ "authz", "clock_skew_seconds", K_INT, O(authz.clock_skew_seconds), "60", 0, 3600, 0 },

	{ "localapi", "listen", K_STR, O(localapi.listen), NULL, 0, 0, 0 },
	{ "localapi", "guest_addresses", K_ADDRMAP, O(localapi.guest_addresses), NULL, 0, 0, 0 },
	{ "localapi", "monitor_addresses", K_STRLIST, O(localapi.monitor_addresses), NULL, 0, 0, 0 },

	{ "recon", "max_parallel_guests", K_INT, O(recon.max_parallel_guests), "4", 1, 64, 0 },
	{ "recon", "max_queued_per_guest", K_INT, O(recon.max_queued_per_guest), "16", 1, 1024, 0 },
	{ "recon", "max_queued", K_INT, O(recon.max_queued), "1024", 1, 65536, 0 },
	{ "recon", "max_mutations", K_INT, O(recon.max_mutations), "2", 1, 64, 0 },
	{ "recon", "lock_wait_seconds", K_INT, O(recon.lock_wait_seconds), "120", 1, 3600, 0 },
	{ "recon", "post_retries", K_INT, O(recon.post_retries), "3", 0, 10, 0 },
	{ "recon", "audit_max_entries", K_INT, O(recon.audit_max_entries), "10000", 100, 1000000, 0 },
	{ "recon", "idempotency_retention_seconds", K_INT, O(recon.idempotency_retention_seconds), "604800", 3600,
	  31536000, 0 },
	{ "recon", "journal_keep_closed", K_INT, O(recon.journal_keep_closed), "10000", 100, 10000000, 0 },

	{ "backup", "storage", K_STR, O(backup.storage), NULL, 0, 0, 0 },
	{ "backup", "mode", K_STR, O(backup.mode), "snapshot", 0, 0, 0 },
	{ "backup", "compress", K_STR, O(backup.compress), "zstd", 0, 0, 0 },
	{ "backup", "enabled", K_BOOL, O(backup.enabled), "true", 0, 0, 0 },
	{ "backup", "interval_seconds", K_INT, O(backup.interval_seconds), "86400", 3600, 31536000, 0 },
	{ "backup", "keep_last", K_INT, O(backup.keep_last), "7", 1, 1000, 0 },
	{ "backup", "guests", K_BACKUPMAP, O(backup.guests), NULL, 0, 0, 0 },
	{ "backup", "golden_archives", K_STRLIST, O(backup.golden_archives), NULL, 0, 0, 0 },

	{ "storage", "mount_root", K_STR, O(storage.mount_root), "/mnt/felhom", 0, 0, 0 },

	{ "log", "level", K_STR, O(log.level), "info", 0, 0, 0 },
	{ "log", "format", K_STR, O(log.format), "logfmt", 0, 0, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const sections[] = { "proxmox", "privileged", "hub", "authz", "localapi", "recon", "backup",
					 "storage", "log" };

/* Where a value came from, for error messages. */
struct origin {
	const char *file;        /* config file or NULL */
	const char *env;         /* environment variable or NULL */
};

static void errf(char *err, size_t errlen, const struct origin *o, const struct key *k,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void errf(char *err, size_t errlen, const struct origin *o, const struct key *k,
		 const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!err || !errlen)
		return;
	if (o && o->env)
		snprintf(err, errlen, "%s: %s%s%s: %s", o->env, k && k->section ? k->section : "",
			 k && k->section ? "." : "", k ? k->name : "", msg);
	else
		snprintf(err, errlen, "%s: %s%s%s: %s", o && o->file ? o->file : "config",
			 k && k->section ? k->section : "", k && k->section ? "." : "",
			 k ? k->name : "", msg);
}

static char **slot_str(struct cfg *c, const struct key *k)
{
	return (char **)(void *)((char *)c + k->off);
}

static void free_strlist(char **l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; l[i]; i++)
		free(l[i]);
	free(l);
}

static void free_addrs(struct cfg *c)
{
	size_t i;

	for (i = 0; i < c->localapi.naddrs; i++)
		free(c->localapi.guest_addresses[i].addr);
	free(c->localapi.guest_addresses);
	c->localapi.guest_addresses = NULL;
	c->localapi.naddrs = 0;
}

static void free_backup_guests(struct cfg *c)
{
	size_t i;

	for (i = 0; i < c->backup.nguests; i++)
		free(c->backup.guests[i].storage);
	free(c->backup.guests);
	c->backup.guests = NULL;
	c->backup.nguests = 0;
}

/* A Proxmox storage id: [A-Za-z][A-Za-z0-9_.-]{0,62}. */
static int valid_storage_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !isalpha((unsigned char)s[0]))
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return 0;
	}
	return 1;
}

/* A volume id "storage:path": storage id, then [A-Za-z0-9_.:/+-], no "..",
 * at most 255 bytes in all. */
static int valid_volid(const char *s)
{
	const char *colon = strchr(s, ':');
	char sid[64];
	size_t n = strlen(s);

	if (!colon || n > 255 || colon == s || (size_t)(colon - s) >= sizeof(sid) || !colon[1] || strstr(s, ".."))
		return 0;
	memcpy(sid, s, (size_t)(colon - s));
	sid[colon - s] = '\0';
	if (!valid_storage_id(sid))
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("-_.:/+", *s))
			return 0;
	}
	return 1;
}

/* A numeric IPv4 or IPv6 address (no names, no zone, no prefix). */
static int valid_ip(const char *s)
{
	unsigned char buf[16];

	if (strlen(s) > 45)
		return 0;
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The list keys: where the count lives, the cap, the entry check. */
struct strlist_kind {
	size_t off, noff;
	size_t max;
	size_t max_len;
	int (*ok)(const char *);
	const char *want;
};

static const struct strlist_kind strlists[] = {
	{ O(authz.signers), O(authz.nsigners), 256, 16384, NULL, "string" },
	{ O(backup.golden_archives), O(backup.ngolden), CFG_MAX_GOLDEN, 255, valid_volid,
	  "a volume id STORAGE:PATH" },
	{ O(localapi.monitor_addresses), O(localapi.nmonitors), CFG_MAX_MONITORS, 45, valid_ip,
	  "a numeric IPv4 or IPv6 address" },
};

static const struct strlist_kind *strlist_of(const struct key *k)
{
	size_t i;

	for (i = 0; i < sizeof(strlists) / sizeof(strlists[0]); i++) {
		if (strlists[i].off == k->off)
			return &strlists[i];
	}
	return NULL;
}

static char ***strlist_slot(struct cfg *c, const struct strlist_kind *sk)
{
	return (char ***)(void *)((char *)c + sk->off);
}

static size_t *strlist_count(struct cfg *c, const struct strlist_kind *sk)
{
	return (size_t *)(void *)((char *)c + sk->noff);
}

static int set_str(char **slot, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return FH_ERR_NOMEM;
	free(*slot);
	*slot = d;
	return 0;
}

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

static int check_range(const struct key *k, int64_t v, const struct origin *o, char *err, size_t errlen)
{
	if (v < k->min || v > k->max) {
		errf(err, errlen, o, k, "out of range: %lld not in [%lld, %lld]", (long long)v,
		     (long long)k->min, (long long)k->max);
		return FH_ERR_CONFIG;
	}
	return 0;
}

/* A single IP address literal: digits, hex, '.', ':' only; bounded. */
static int plausible_addr(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 45)
		return 0;
	for (; *s; s++) {
		if (!isxdigit((unsigned char)*s) && *s != '.' && *s != ':')
			return 0;
	}
	return 1;
}

static int parse_vmid_key(const char *s, int *out)
{
	int64_t v;

	if (!*s || !isdigit((unsigned char)*s) || parse_int(s, &v) || v < 100 || v > 999999999)
		return -1;
	*out = (int)v;
	return 0;
}

static int cmp_guest(const void *a, const void *b)
{
	const struct cfg_backup_guest *x = a, *y = b;

	return (x->vmid > y->vmid) - (x->vmid < y->vmid);
}

/* backup.guests: {"<vmid>": {"enabled":bool, "interval_seconds":N,
 * "storage":"id", "keep_last":N}, ...}; every field optional, no others. */
static int store_backup_guests(struct cfg *c, const struct key *k, const struct json *v, const struct origin *o,
			       char *err, size_t errlen)
{
	struct cfg_backup_guest *g;
	size_t i, j;
	int64_t iv;

	if (v->type != JSON_OBJECT) {
		errf(err, errlen, o, k, "wrong type: want object of vmid -> {enabled, interval_seconds, storage, keep_last}");
		return FH_ERR_CONFIG;
	}
	if (v->n > CFG_MAX_BACKUP_GUESTS) {
		errf(err, errlen, o, k, "too many guests (max %d)", CFG_MAX_BACKUP_GUESTS);
		return FH_ERR_CONFIG;
	}
	g = calloc(v->n ? v->n : 1, sizeof(*g));
	if (!g)
		return FH_ERR_NOMEM;
	for (i = 0; i < v->n; i++) {
		const struct json *e = v->items[i];
		const char *vk = v->keys[i];
		g[i].enabled = -1;
		if (parse_vmid_key(vk, &g[i].vmid)) {
			errf(err, errlen, o, k, "key \"%.32s\": want a vmid (100..999999999)", vk);
			goto fail;
		}
		for (j = 0; j < i; j++) {
			if (g[j].vmid == g[i].vmid) {
				errf(err, errlen, o, k, "%s: listed twice", vk);
				goto fail;
			}
		}
		if (e->type != JSON_OBJECT) {
			errf(err, errlen, o, k, "%s: wrong type: want object", vk);
			goto fail;
		}
		for (j = 0; j < e->n; j++) {
			const char *f = e->keys[j];
			const struct json *fv = e->items[j];
			if (!strcmp(f, "enabled")) {
				if (fv->type != JSON_BOOL) {
					errf(err, errlen, o, k, "%s.enabled: wrong type: want true or false", vk);
					goto fail;
				}
				g[i].enabled = fv->b ? 1 : 0;
			} else if (!strcmp(f, "interval_seconds") || !strcmp(f, "keep_last")) {
				int iv_ok = !json_int_strict(fv, &iv);
				int is_iv = f[0] == 'i';
				int64_t lo = is_iv ? 3600 : 1, hi = is_iv ? 31536000 : 1000;
				if (!iv_ok) {
					errf(err, errlen, o, k, "%s.%s: wrong type: want integer", vk, f);
					goto fail;
				}
				if (iv < lo || iv > hi) {
					errf(err, errlen, o, k, "%s.%s: out of range: %lld not in [%lld, %lld]", vk, f,
					     (long long)iv, (long long)lo, (long long)hi);
					goto fail;
				}
				if (is_iv)
					g[i].interval_seconds = iv;
				else
					g[i].keep_last = iv;
			} else if (!strcmp(f, "storage")) {
				if (fv->type != JSON_STRING || strlen(fv->s) != fv->slen || !valid_storage_id(fv->s)) {
					errf(err, errlen, o, k, "%s.storage: want a storage id", vk);
					goto fail;
				}
				free(g[i].storage);
				g[i].storage = strdup(fv->s);
				if (!g[i].storage)
					goto nomem;
			} else {
				errf(err, errlen, o, k, "%s.%.32s: unknown key", vk, f);
				goto fail;
			}
		}
	}
	qsort(g, v->n, sizeof(*g), cmp_guest);
	free_backup_guests(c);
	c->backup.guests = g;
	c->backup.nguests = v->n;
	return 0;
fail:
	for (i = 0; i < v->n; i++)
		free(g[i].storage);
	free(g);
	return FH_ERR_CONFIG;
nomem:
	for (i = 0; i < v->n; i++)
		free(g[i].storage);
	free(g);
	return FH_ERR_NOMEM;
}

/* Stores a JSON value into key k. */
static int store_json(struct cfg *c, const struct key *k, const struct json *v, const struct origin *o,
		      char *err, size_t errlen)
{
	size_t i, j;
	int64_t iv;

	switch (k->type) {
	case K_STR:
	case K_SECRET:
		if (v->type != JSON_STRING) {
			errf(err, errlen, o, k, "wrong type: want string");
			return FH_ERR_CONFIG;
		}
		if (strlen(v->s) != v->slen || v->slen > 4096) {
			errf(err, errlen, o, k, "invalid string (NUL byte or over 4096 bytes)");
			return FH_ERR_CONFIG;
		}
		if (k->off == O(localapi.listen))
			c->localapi.listen_set = true;
		return set_str(slot_str(c, k), v->s);
	case K_BOOL:
		if (v->type != JSON_BOOL) {
			errf(err, errlen, o, k, "wrong type: want true or false");
			return FH_ERR_CONFIG;
		}
		*(bool *)(void *)((char *)c + k->off) = v->b;
		return 0;
	case K_INT:
		if (json_int_strict(v, &iv)) {
			errf(err, errlen, o, k, "wrong type: want integer");
			return FH_ERR_CONFIG;
		}
		if (check_range(k, iv, o, err, errlen))
			return FH_ERR_CONFIG;
		*(int64_t *)(void *)((char *)c + k->off) = iv;
		return 0;
	case K_STRLIST: {
		const struct strlist_kind *sk = strlist_of(k);
		char **l;
		if (!sk)
			return FH_ERR_INTERNAL;
		if (v->type != JSON_ARRAY) {
			errf(err, errlen, o, k, "wrong type: want array of strings");
			return FH_ERR_CONFIG;
		}
		if (v->n > sk->max) {
			errf(err, errlen, o, k, "too many entries (max %zu)", sk->max);
			return FH_ERR_CONFIG;
		}
		l = calloc(v->n + 1, sizeof(*l));
		if (!l)
			return FH_ERR_NOMEM;
		for (i = 0; i < v->n; i++) {
			const struct json *e = v->items[i];
			if (e->type != JSON_STRING || strlen(e->s) != e->slen || e->slen > sk->max_len ||
			    (sk->ok && !sk->ok(e->s))) {
				free_strlist(l);
				errf(err, errlen, o, k, "entry %zu: want %s", i, sk->want);
				return FH_ERR_CONFIG;
			}
			l[i] = strdup(e->s);
			if (!l[i]) {
				free_strlist(l);
				return FH_ERR_NOMEM;
			}
		}
		free_strlist(*strlist_slot(c, sk));
		*strlist_slot(c, sk) = l;
		*strlist_count(c, sk) = v->n;
		return 0;
	}
	case K_BACKUPMAP:
		return store_backup_guests(c, k, v, o, err, errlen);
	case K_ADDRMAP: {
		struct cfg_addr *a = NULL;
		size_t na = 0;
		if (v->type != JSON_OBJECT) {
			errf(err, errlen, o, k, "wrong type: want object of vmid -> [address]");
			return FH_ERR_CONFIG;
		}
		for (i = 0; i < v->n; i++) {
			const struct json *arr = v->items[i];
			int vmid;
			if (parse_vmid_key(v->keys[i], &vmid)) {
				errf(err, errlen, o, k, "key \"%.32s\": want a vmid (100..999999999)", v->keys[i]);
				goto addr_fail;
			}
			if (arr->type != JSON_ARRAY) {
				errf(err, errlen, o, k, "%s: wrong type: want array of addresses", v->keys[i]);
				goto addr_fail;
			}
			for (j = 0; j < arr->n; j++) {
				const struct json *e = arr->items[j];
				struct cfg_addr *na2;
				if (e->type != JSON_STRING || !plausible_addr(e->s)) {
					errf(err, errlen, o, k, "%s[%zu]: want an IP address", v->keys[i], j);
					goto addr_fail;
				}
				if (na >= 4096) {
					errf(err, errlen, o, k, "too many addresses (max 4096)");
					goto addr_fail;
				}
				na2 = realloc(a, (na + 1) * sizeof(*a));
				if (!na2)
					goto addr_fail;
				a = na2;
				a[na].vmid = vmid;
				a[na].addr = strdup(e->s);
				if (!a[na].addr)
					goto addr_fail;
				na++;
			}
		}
		free_addrs(c);
		c->localapi.guest_addresses = a;
		c->localapi.naddrs = na;
		return 0;
addr_fail:
		for (j = 0; j < na; j++)
			free(a[j].addr);
		free(a);
		return FH_ERR_CONFIG;
	}
	}
	return FH_ERR_INTERNAL;
}

static const struct key *find_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if ((section == NULL) != (keys[i].section == NULL))
			continue;
		if (section && strcmp(section, keys[i].section))
			continue;
		if (!strcmp(name, keys[i].name))
			return &keys[i];
	}
	return NULL;
}

static int is_section(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (!strcmp(s, sections[i]))
			return 1;
	}
	return 0;
}

static int apply_file(struct cfg *c, const struct json *root, const char *file, char *err, size_t errlen)
{
	struct origin o = { file, NULL };
	size_t i, j;
	int r;

	if (root->type != JSON_OBJECT) {
		snprintf(err, errlen, "%s: top level must be a JSON object", file);
		return FH_ERR_CONFIG;
	}
	for (i = 0; i < root->n; i++) {
		const char *name = root->keys[i];
		const struct json *v = root->items[i];
		const struct key *k;
		if (is_section(name)) {
			if (v->type != JSON_OBJECT) {
				snprintf(err, errlen, "%s: %s: wrong type: want object", file, name);
				return FH_ERR_CONFIG;
			}
			for (j = 0; j < v->n; j++) {
				k = find_key(name, v->keys[j]);
				if (!k) {
					snprintf(err, errlen, "%s: %s.%.64s: unknown key", file, name, v->keys[j]);
					return FH_ERR_CONFIG;
				}
				r = store_json(c, k, v->items[j], &o, err, errlen);
				if (r)
					return r;
			}
			continue;
		}
		k = find_key(NULL, name);
		if (!k) {
			snprintf(err, errlen, "%s: %.64s: unknown key", file, name);
			return FH_ERR_CONFIG;
		}
		r = store_json(c, k, v, &o, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

static void env_name(const struct key *k, char *out, size_t outlen)
{
	char *p;

	snprintf(out, outlen, "FELHOM_AGENT_%s%s%s", k->section ? k->section : "", k->section ? "_" : "",
		 k->name);
	for (p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

static const char *env_get(const char *const envp[], const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; envp[i]; i++) {
		if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
			return envp[i] + n + 1;
	}
	return NULL;
}

static const struct json_limits cfg_limits = { CFG_MAX_FILE, 16, false };

/* Applies one environment value to key k. */
static int apply_env_value(struct cfg *c, const struct key *k, const char *v, const char *var,
			   char *err, size_t errlen)
{
	struct origin o = { NULL, var };
	struct json *j = NULL;
	int64_t iv;
	int r;

	if (strlen(v) > CFG_MAX_FILE) {
		errf(err, errlen, &o, k, "value too long");
		return FH_ERR_CONFIG;
	}
	switch (k->type) {
	case K_STR:
	case K_SECRET:
		if (k->off == O(localapi.listen))
			c->localapi.listen_set = true;
		return set_str(slot_str(c, k), v);
	case K_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1"))
			*(bool *)(void *)((char *)c + k->off) = true;
		else if (!strcmp(v, "false") || !strcmp(v, "0"))
			*(bool *)(void *)((char *)c + k->off) = false;
		else {
			errf(err, errlen, &o, k, "wrong type: want true or false");
			return FH_ERR_CONFIG;
		}
		return 0;
	case K_INT:
		if (parse_int(v, &iv)) {
			errf(err, errlen, &o, k, "wrong type: want integer");
			return FH_ERR_CONFIG;
		}
		if (check_range(k, iv, &o, err, errlen))
			return FH_ERR_CONFIG;
		*(int64_t *)(void *)((char *)c + k->off) = iv;
		return 0;
	case K_STRLIST:
		if (*v != '[' && k->off != O(authz.signers)) {
			errf(err, errlen, &o, k, "want a JSON array of strings");
			return FH_ERR_CONFIG;
		}
		if (*v != '[') {
			/* one signer line per line */
			const char *s;
			char **l;
			size_t i = 0, lines = 0;
			for (s = v; *s; s++)
				lines += *s == '\n';
			if (lines > 256) {
				errf(err, errlen, &o, k, "too many entries (max 256)");
				return FH_ERR_CONFIG;
			}
			l = calloc(lines + 2, sizeof(*l));
			if (!l)
				return FH_ERR_NOMEM;
			for (s = v; *s;) {
				const char *e = strchr(s, '\n');
				size_t n = e ? (size_t)(e - s) : strlen(s);
				if (n && !(n == 1 && s[0] == '\r')) {
					l[i] = strndup(s, n);
					if (!l[i]) {
						free_strlist(l);
						return FH_ERR_NOMEM;
					}
					i++;
				}
				s += n + (e ? 1 : 0);
			}
			free_strlist(c->authz.signers);
			c->authz.signers = l;
			c->authz.nsigners = i;
			return 0;
		}
		/* fall through: JSON array */
		/* FALLTHROUGH */
	case K_ADDRMAP:
	case K_BACKUPMAP:
		r = json_parse(v, strlen(v), &cfg_limits, &j, NULL, 0);
		if (r) {
			errf(err, errlen, &o, k, "invalid JSON");
			return FH_ERR_CONFIG;
		}
		r = store_json(c, k, j, &o, err, errlen);
		json_free(j);
		return r;
	}
	return FH_ERR_INTERNAL;
}

static int apply_env(struct cfg *c, const char *const envp[], char *err, size_t errlen)
{
	char name[96];
	size_t i;
	int r;

	for (i = 0; i < NKEYS; i++) {
		const char *v;
		env_name(&keys[i], name, sizeof(name));
		v = env_get(envp, name);
		if (!v)
			continue;
		r = apply_env_value(c, &keys[i], v, name, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

static int apply_defaults(struct cfg *c)
{
	size_t i;
	int r;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (!k->def)
			continue;
		switch (k->type) {
		case K_STR:
			if (!*slot_str(c, k)) {
				r = set_str(slot_str(c, k), k->def);
				if (r)
					return r;
			}
			break;
		default:
			break;   /* ints and bools are defaulted before the file is read */
		}
	}
	return 0;
}

static void preset_scalars(struct cfg *c)
{
	size_t i;
	int64_t v;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (!k->def)
			continue;
		if (k->type == K_INT && !parse_int(k->def, &v))
			*(int64_t *)(void *)((char *)c + k->off) = v;
		else if (k->type == K_BOOL)
			*(bool *)(void *)((char *)c + k->off) = !strcmp(k->def, "true");
	}
}

/* Reads a small regular file into a fresh string without a trailing newline. */
static int read_secret_file(const char *path, char **out, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *s = NULL;
	ssize_t n;
	int r = FH_ERR_CONFIG;

	if (fd < 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return FH_ERR_CONFIG;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(why, whylen, "%s is readable by others (mode %03o); chmod 600 it", path,
			 (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_size > CFG_MAX_SECRET_FILE) {
		snprintf(why, whylen, "%s is larger than %d bytes", path, CFG_MAX_SECRET_FILE);
		goto out;
	}
	s = calloc(1, CFG_MAX_SECRET_FILE + 2);
	if (!s) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	n = read(fd, s, CFG_MAX_SECRET_FILE + 1);
	if (n < 0 || n > CFG_MAX_SECRET_FILE) {
		snprintf(why, whylen, "cannot read %s", path);
		goto out;
	}
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if ((size_t)n != strlen(s) || n == 0) {
		snprintf(why, whylen, "%s is empty or holds a NUL byte", path);
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	free(s);
	close(fd);
	return r;
}

/* Inline value, file reference, or systemd credential — exactly one source. */
static int resolve_secret(struct cfg *c, const char *const envp[], const char *section, const char *name,
			  char **inline_v, char *file, const char *cred, char *err, size_t errlen)
{
	const char *credir = env_get(envp, "CREDENTIALS_DIRECTORY");
	char why[384], path[4096];
	char *v = NULL;
	int r;

	(void)c;
	if (*inline_v && file) {
		snprintf(err, errlen, "%s.%s and %s.%s_file are both set; give the secret one way",
			 section, name, section, name);
		return FH_ERR_CONFIG;
	}
	if (*inline_v)
		return 0;
	if (file) {
		r = read_secret_file(file, &v, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s.%s_file: %s", section, name, why);
			return r;
		}
	} else if (credir && *credir) {
		snprintf(path, sizeof(path), "%s/%s", credir, cred);
		if (access(path, F_OK) != 0)
			return 0;
		r = read_secret_file(path, &v, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "credential %s: %s", cred, why);
			return r;
		}
	}
	*inline_v = v;
	return 0;
}

int cfg_load(const char *path, const char *const envp[], struct cfg **out, char *err, size_t errlen)
{
	struct cfg *c = calloc(1, sizeof(*c));
	const char *file = path ? path : CFG_DEFAULT_PATH;
	struct json *root = NULL;
	char jerr[128];
	char *text = NULL;
	int fd = -1, r = FH_ERR_CONFIG;
	struct stat st;

	if (!c)
		return FH_ERR_NOMEM;
	if (!envp)
		envp = (const char *const *)environ;
	preset_scalars(c);
	c->source = strdup(file);
	if (!c->source) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && !path) {
			c->source[0] = '\0';   /* no default file: environment only */
		} else {
			snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
			goto out;
		}
	} else {
		ssize_t n;
		size_t got = 0;
		if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s: not a regular file", file);
			goto out;
		}
		if (st.st_size > CFG_MAX_FILE) {
			snprintf(err, errlen, "%s: larger than %d bytes", file, CFG_MAX_FILE);
			goto out;
		}
		text = malloc((size_t)st.st_size + 1);
		if (!text) {
			r = FH_ERR_NOMEM;
			goto out;
		}
		while (got < (size_t)st.st_size && (n = read(fd, text + got, (size_t)st.st_size - got)) > 0)
			got += (size_t)n;
		if (got != (size_t)st.st_size) {
			snprintf(err, errlen, "%s: short read", file);
			goto out;
		}
		if (json_parse(text, got, &cfg_limits, &root, jerr, sizeof(jerr))) {
			snprintf(err, errlen, "%s: %s", file, jerr);
			goto out;
		}
		r = apply_file(c, root, file, err, errlen);
		if (r)
			goto out;
		r = FH_ERR_CONFIG;
	}
	r = apply_env(c, envp, err, errlen);
	if (r)
		goto out;
	r = resolve_secret(c, envp, "proxmox", "token", &c->proxmox.token, c->proxmox.token_file,
			   "proxmox.token", err, errlen);
	if (r)
		goto out;
	r = resolve_secret(c, envp, "hub", "api_key", &c->hub.api_key, c->hub.api_key_file, "hub.api_key",
			   err, errlen);
	if (r)
		goto out;
	r = apply_defaults(c);
	if (r)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	json_free(root);
	cfg_free(c);
	return r;
}

static int valid_token_shape(const char *t)
{
	/* USER@REALM!TOKENID=SECRET: '@' before '!', '!' before the last '=' */
	const char *at = strchr(t, '@'), *bang = strchr(t, '!'), *eq = strrchr(t, '=');
	const char *p;

	if (!at || !bang || !eq || at == t || bang < at || eq < bang || eq[1] == '\0' || eq == bang + 1)
		return 0;
	for (p = t; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == ';')
			return 0;
	}
	return 1;
}

int cfg_validate(const struct cfg *c, unsigned need, char *err, size_t errlen)
{
	struct origin o = { c->source && *c->source ? c->source : "config", NULL };
	uint8_t fp[32];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (!(k->required & need))
			continue;
		if ((k->type == K_STR || k->type == K_SECRET) && (!*slot_str((struct cfg *)(uintptr_t)c, k) ||
								  !**slot_str((struct cfg *)(uintptr_t)c, k))) {
			if (k->type != K_SECRET) {
				char name[96];
				env_name(k, name, sizeof(name));
				errf(err, errlen, &o, k, "missing required field (set it, or %s)", name);
			} else {
				errf(err, errlen, &o, k,
				     "missing required secret (set it, %s.%s_file, or a systemd credential)",
				     k->section, k->name);
			}
			return FH_ERR_CONFIG;
		}
	}
	if (strcmp(c->privileged.mode, "sudo") && strcmp(c->privileged.mode, "direct")) {
		errf(err, errlen, &o, find_key("privileged", "mode"), "want \"sudo\" or \"direct\"");
		return FH_ERR_CONFIG;
	}
	if (c->privileged.path[0] != '/') {
		errf(err, errlen, &o, find_key("privileged", "path"), "want absolute directories");
		return FH_ERR_CONFIG;
	}
	if (log_level_parse(c->log.level) < 0) {
		errf(err, errlen, &o, find_key("log", "level"), "want debug, info, warn or error");
		return FH_ERR_CONFIG;
	}
	if (strcmp(c->log.format, "logfmt") && strcmp(c->log.format, "json")) {
		errf(err, errlen, &o, find_key("log", "format"), "want logfmt or json");
		return FH_ERR_CONFIG;
	}
	if (c->state_dir[0] != '/') {
		errf(err, errlen, &o, find_key(NULL, "state_dir"), "want an absolute path");
		return FH_ERR_CONFIG;
	}
	if (!mountunit_valid_root(c->storage.mount_root)) {
		errf(err, errlen, &o, find_key("storage", "mount_root"),
		     "want /mnt, /media or /srv followed by [A-Za-z0-9_] components");
		return FH_ERR_CONFIG;
	}
	if (c->backup.storage && *c->backup.storage && !valid_storage_id(c->backup.storage)) {
		errf(err, errlen, &o, find_key("backup", "storage"), "want a storage id");
		return FH_ERR_CONFIG;
	}
	if (strcmp(c->backup.mode, "snapshot") && strcmp(c->backup.mode, "suspend") && strcmp(c->backup.mode, "stop")) {
		errf(err, errlen, &o, find_key("backup", "mode"), "want snapshot, suspend or stop");
		return FH_ERR_CONFIG;
	}
	if (strcmp(c->backup.compress, "zstd") && strcmp(c->backup.compress, "gzip") &&
	    strcmp(c->backup.compress, "lzo") && strcmp(c->backup.compress, "0")) {
		errf(err, errlen, &o, find_key("backup", "compress"), "want zstd, gzip, lzo or 0");
		return FH_ERR_CONFIG;
	}
	if (need & CFG_NEED_PROXMOX) {
		int modes = (c->proxmox.tls_fingerprint && *c->proxmox.tls_fingerprint) +
			    (c->proxmox.ca_file && *c->proxmox.ca_file) + c->proxmox.insecure_skip_verify;
		if (strncmp(c->proxmox.endpoint, "https://", 8) || strlen(c->proxmox.endpoint) < 9) {
			errf(err, errlen, &o, find_key("proxmox", "endpoint"), "want https://HOST:8006");
			return FH_ERR_CONFIG;
		}
		if (!valid_token_shape(c->proxmox.token)) {
			/* never echo the value */
			errf(err, errlen, &o, find_key("proxmox", "token"),
			     "want USER@REALM!TOKENID=SECRET (value not shown)");
			return FH_ERR_CONFIG;
		}
		if (modes > 1) {
			errf(err, errlen, &o, find_key("proxmox", "tls_fingerprint"),
			     "set exactly one of tls_fingerprint, ca_file, insecure_skip_verify");
			return FH_ERR_CONFIG;
		}
		if (c->proxmox.tls_fingerprint && *c->proxmox.tls_fingerprint &&
		    tlspin_parse_fingerprint(c->proxmox.tls_fingerprint, fp)) {
			errf(err, errlen, &o, find_key("proxmox", "tls_fingerprint"),
			     "want a SHA-256 fingerprint, AA:BB:.. or 64 hex digits");
			return FH_ERR_CONFIG;
		}
		if (c->proxmox.task_poll_initial_ms > c->proxmox.task_poll_max_ms) {
			errf(err, errlen, &o, find_key("proxmox", "task_poll_initial_ms"),
			     "must not exceed proxmox.task_poll_max_ms");
			return FH_ERR_CONFIG;
		}
	}
	if (need & CFG_NEED_HUB) {
		if (strncmp(c->hub.url, "https://", 8) || strlen(c->hub.url) < 9) {
			errf(err, errlen, &o, find_key("hub", "url"), "want https://HOST[:PORT]");
			return FH_ERR_CONFIG;
		}
		if (c->hub.tls_fingerprint && *c->hub.tls_fingerprint &&
		    tlspin_parse_fingerprint(c->hub.tls_fingerprint, fp)) {
			errf(err, errlen, &o, find_key("hub", "tls_fingerprint"),
			     "want a SHA-256 fingerprint, AA:BB:.. or 64 hex digits");
			return FH_ERR_CONFIG;
		}
	}
	return 0;
}

static void gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void print_key(yajl_gen g, const struct cfg *c, const struct key *k)
{
	char *const *sp = (char *const *)(const void *)((const char *)c + k->off);
	size_t i;

	gen_str(g, k->name);
	switch (k->type) {
	case K_STR:
		if (*sp)
			gen_str(g, *sp);
		else
			yajl_gen_null(g);
		break;
	case K_SECRET:
		if (*sp)
			gen_str(g, "[REDACTED]");
		else
			yajl_gen_null(g);
		break;
	case K_BOOL:
		yajl_gen_bool(g, *(const bool *)(const void *)((const char *)c + k->off));
		break;
	case K_INT:
		yajl_gen_integer(g, (long long)*(const int64_t *)(const void *)((const char *)c + k->off));
		break;
	case K_STRLIST: {
		const struct strlist_kind *sk = strlist_of(k);
		char *const *l = sk ? *(char **const *)(const void *)((const char *)c + sk->off) : NULL;
		size_t nl = sk ? *(const size_t *)(const void *)((const char *)c + sk->noff) : 0;
		yajl_gen_array_open(g);
		for (i = 0; i < nl && l; i++)
			gen_str(g, l[i]);
		yajl_gen_array_close(g);
		break;
	}
	case K_BACKUPMAP:
		yajl_gen_map_open(g);
		for (i = 0; i < c->backup.nguests; i++) {
			const struct cfg_backup_guest *bg = &c->backup.guests[i];
			char vk[16];
			snprintf(vk, sizeof(vk), "%d", bg->vmid);
			gen_str(g, vk);
			yajl_gen_map_open(g);
			if (bg->enabled >= 0) {
				gen_str(g, "enabled");
				yajl_gen_bool(g, bg->enabled);
			}
			if (bg->interval_seconds) {
				gen_str(g, "interval_seconds");
				yajl_gen_integer(g, (long long)bg->interval_seconds);
			}
			if (bg->storage) {
				gen_str(g, "storage");
				gen_str(g, bg->storage);
			}
			if (bg->keep_last) {
				gen_str(g, "keep_last");
				yajl_gen_integer(g, (long long)bg->keep_last);
			}
			yajl_gen_map_close(g);
		}
		yajl_gen_map_close(g);
		break;
	case K_ADDRMAP: {
		yajl_gen_map_open(g);
		for (i = 0; i < c->localapi.naddrs;) {
			char vk[16];
			int vmid = c->localapi.guest_addresses[i].vmid;
			snprintf(vk, sizeof(vk), "%d", vmid);
			gen_str(g, vk);
			yajl_gen_array_open(g);
			for (; i < c->localapi.naddrs && c->localapi.guest_addresses[i].vmid == vmid; i++)
				gen_str(g, c->localapi.guest_addresses[i].addr);
			yajl_gen_array_close(g);
		}
		yajl_gen_map_close(g);
		break;
	}
	}
}

int cfg_print(const struct cfg *c, FILE *out)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *p;
	size_t n, i, s;

	if (!g)
		return FH_ERR_NOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_map_open(g);
	for (i = 0; i < NKEYS; i++) {
		if (!keys[i].section)
			print_key(g, c, &keys[i]);
	}
	for (s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		gen_str(g, sections[s]);
		yajl_gen_map_open(g);
		for (i = 0; i < NKEYS; i++) {
			if (keys[i].section && !strcmp(keys[i].section, sections[s]))
				print_key(g, c, &keys[i]);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &p, &n);
	fwrite(p, 1, n, out);
	yajl_gen_free(g);
	return 0;
}

int cfg_set_state_dir(struct cfg *c, const char *dir)
{
	return set_str(&c->state_dir, dir);
}

void cfg_free(struct cfg *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].type == K_STR || keys[i].type == K_SECRET) {
			char **sp = slot_str(c, &keys[i]);
			if (keys[i].type == K_SECRET && *sp)
				explicit_bzero(*sp, strlen(*sp));
			free(*sp);
		}
	}
	free_strlist(c->authz.signers);
	free_strlist(c->backup.golden_archives);
	free_strlist(c->localapi.monitor_addresses);
	free_backup_guests(c);
	free_addrs(c);
	free(c->source);
	free(c);
}
