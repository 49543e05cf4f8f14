/* gate.c — the classifier, the decision, nonce recording and the signer
 * set with its LMDB rotation; see gate.h. */
#include "gate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "buf.h"
#include "err.h"
#include "store.h"

/* Where the rotation record lives: the gate's own database. A state
 * directory of an earlier version kept it in STORE_DB_SEQ under
 * "gate_signers"; gate_new moves it over (migrate_legacy). */
#define GATE_DB STORE_DB_GATE
#define GATE_KEY "signers"
#define GATE_LEGACY_DB STORE_DB_SEQ
#define GATE_LEGACY_KEY "gate_signers"

/* ---------------------------------------------------------------- actions */

static bool key_ok(const char *k)
{
	size_t n = strlen(k), i;

	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

int gate_action_init(struct gate_action *a, const char *op, const char *host_id, int64_t guest)
{
	struct gate_action x;

	if (!a || !op || !host_id)
		return FH_ERR_INVAL;
	memset(&x, 0, sizeof(x));
	x.b.v = 1;
	if (strlen(op) >= sizeof(x.b.op) || !key_ok(op) || strlen(host_id) >= sizeof(x.b.host_id) || !*host_id)
		return FH_ERR_INVAL;
	snprintf(x.b.op, sizeof(x.b.op), "%s", op);
	snprintf(x.b.host_id, sizeof(x.b.host_id), "%s", host_id);
	if (guest) {
		if (guest < 100 || guest > 999999999)
			return FH_ERR_INVAL;
		x.b.has_guest = true;
		x.b.guest_id = guest;
	}
	*a = x;
	return 0;
}

static struct opblob_param *param_slot(struct gate_action *a, const char *key, int *r)
{
	size_t i, at;

	*r = FH_ERR_INVAL;
	if (!a || !key || !key_ok(key))
		return NULL;
	for (i = 0; i < a->b.nparams; i++)
		if (!strcmp(a->b.params[i].key, key))
			return NULL;
	*r = FH_ERR_TOOBIG;
	if (a->b.nparams >= OPBLOB_MAX_PARAMS)
		return NULL;
	for (at = 0; at < a->b.nparams && strcmp(a->b.params[at].key, key) < 0; at++)
		;
	memmove(&a->b.params[at + 1], &a->b.params[at], (a->b.nparams - at) * sizeof(a->b.params[0]));
	memset(&a->b.params[at], 0, sizeof(a->b.params[at]));
	snprintf(a->b.params[at].key, sizeof(a->b.params[at].key), "%s", key);
	a->b.nparams++;
	*r = 0;
	return &a->b.params[at];
}

int gate_action_str(struct gate_action *a, const char *key, const char *v)
{
	struct opblob_param *p;
	int r;

	if (!v || strlen(v) >= sizeof(p->str))
		return FH_ERR_INVAL;
	p = param_slot(a, key, &r);
	if (!p)
		return r;
	p->type = OPBLOB_STR;
	snprintf(p->str, sizeof(p->str), "%s", v);
	return 0;
}

int gate_action_int(struct gate_action *a, const char *key, int64_t v)
{
	struct opblob_param *p;
	int r;

	if (v > OPBLOB_MAX_SAFE_INT || v < -OPBLOB_MAX_SAFE_INT)
		return FH_ERR_INVAL;
	p = param_slot(a, key, &r);
	if (!p)
		return r;
	p->type = OPBLOB_INT;
	p->num = v;
	return 0;
}

int gate_action_bool(struct gate_action *a, const char *key, bool v)
{
	struct opblob_param *p;
	int r;

	p = param_slot(a, key, &r);
	if (!p)
		return r;
	p->type = OPBLOB_BOOL;
	p->b = v;
	return 0;
}

int gate_action_null(struct gate_action *a, const char *key)
{
	struct opblob_param *p;
	int r;

	p = param_slot(a, key, &r);
	if (!p)
		return r;
	p->type = OPBLOB_NULL;
	return 0;
}

const struct opblob_param *gate_action_param(const struct gate_action *a, const char *key)
{
	size_t i;

	for (i = 0; a && key && i < a->b.nparams; i++)
		if (!strcmp(a->b.params[i].key, key))
			return &a->b.params[i];
	return NULL;
}

void gate_action_from_blob(struct gate_action *a, const struct opblob *b)
{
	memset(a, 0, sizeof(*a));
	a->b.v = 1;
	memcpy(a->b.op, b->op, sizeof(a->b.op));
	memcpy(a->b.host_id, b->host_id, sizeof(a->b.host_id));
	a->b.has_guest = b->has_guest;
	a->b.guest_id = b->guest_id;
	a->b.nparams = b->nparams <= OPBLOB_MAX_PARAMS ? b->nparams : OPBLOB_MAX_PARAMS;
	memcpy(a->b.params, b->params, a->b.nparams * sizeof(a->b.params[0]));
}

/* -------------------------------------------------------------- classifier */

enum rule {
	R_BENIGN,          /* reversible, touches no data */
	R_CONFIG,          /* benign when every key is a benign key */
	R_RESTORE,         /* benign without force (no overwrite) or over a guest of this job */
	R_AGENT_GUEST,     /* destroy: benign only for a guest this job created or a scratch guest */
	R_AGENT_CREATED,   /* stop, shutdown: benign only for a guest an agent job created or a scratch guest */
	R_OWN_SNAPSHOT,    /* benign only for a snapshot this job made */
	R_RETENTION,       /* backup_prune: benign only as the engine's own retention */
	R_DESTRUCTIVE,     /* always */
};

struct op_rule {
	const char *op;
	enum rule rule;
};

static const struct op_rule RULES[] = {
	{ "start", R_BENIGN },
	{ "stop", R_AGENT_CREATED },
	{ "shutdown", R_AGENT_CREATED },
	{ "snapshot", R_BENIGN },
	{ "vzdump", R_BENIGN },
	{ "set_config", R_CONFIG },
	{ "restore", R_RESTORE },
	{ "destroy", R_AGENT_GUEST },
	{ "rollback", R_OWN_SNAPSHOT },
	{ "delete_snapshot", R_OWN_SNAPSHOT },
	{ "backup_prune", R_RETENTION },
	{ "storage_wipe", R_DESTRUCTIVE },
	{ "disk_shrink", R_DESTRUCTIVE },
	{ "signer_rotate", R_DESTRUCTIVE },
};

static const char *const BENIGN_KEYS[] = { GATE_CONFIG_BENIGN_KEYS };

static const struct op_rule *rule_of(const char *op)
{
	size_t i;

	for (i = 0; i < sizeof(RULES) / sizeof(RULES[0]); i++)
		if (!strcmp(RULES[i].op, op))
			return &RULES[i];
	return NULL;
}

bool gate_op_known(const char *op)
{
	return op && rule_of(op) != NULL;
}

const char *gate_class_name(enum gate_class c)
{
	return c == GATE_BENIGN ? "benign" : c == GATE_DESTRUCTIVE ? "destructive" : "unknown";
}

static bool benign_key(const char *k, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(BENIGN_KEYS) / sizeof(BENIGN_KEYS[0]); i++)
		if (strlen(BENIGN_KEYS[i]) == n && !memcmp(BENIGN_KEYS[i], k, n))
			return true;
	return false;
}

/* set_config: every key set, and every key named in "delete" (a comma
 * list), must be a benign key; "digest" is the guard, not a change. */
static bool config_benign(const struct gate_action *a)
{
	size_t i;

	for (i = 0; i < a->b.nparams; i++) {
		const struct opblob_param *p = &a->b.params[i];

		if (!strcmp(p->key, "digest"))
			continue;
		if (!strcmp(p->key, "delete")) {
			const char *s = p->str, *e;

			if (p->type != OPBLOB_STR)
				return false;
			while (*s) {
				e = strchr(s, ',');
				if (!e)
					e = s + strlen(s);
				if (!benign_key(s, (size_t)(e - s)))
					return false;
				s = *e ? e + 1 : e;
			}
			continue;
		}
		if (!benign_key(p->key, strlen(p->key)))
			return false;
	}
	return true;
}

/* restore's "force": absent, false and 0 mean no overwrite; anything
 * else (true, a non-zero number, a string, null) is taken as set. */
static bool force_set(const struct gate_action *a)
{
	const struct opblob_param *f = gate_action_param(a, "force");

	return f && !((f->type == OPBLOB_BOOL && !f->b) || (f->type == OPBLOB_INT && f->num == 0));
}

int gate_classify(const struct gate_action *a, const struct gate_prov *p, enum gate_class *out, const char **why)
{
	static const struct gate_prov none;
	const struct op_rule *ru;
	const char *w;
	enum gate_class c = GATE_DESTRUCTIVE;

	if (!a || !out)
		return FH_ERR_INVAL;
	if (!p)
		p = &none;
	ru = rule_of(a->b.op);
	if (!ru) {
		w = "unknown op: destructive until proven otherwise";
		goto out;
	}
	/* a golden archive is only ever read: restored into a new guest */
	if (p->golden && !(ru->rule == R_RESTORE && !force_set(a))) {
		w = "names a golden archive";
		goto out;
	}
	switch (ru->rule) {
	case R_BENIGN:
		c = GATE_BENIGN;
		w = "reversible, touches no data";
		break;
	case R_CONFIG:
		if (config_benign(a)) {
			c = GATE_BENIGN;
			w = "config change of non-data keys";
		} else {
			w = "config change touching disks or volumes (data-bearing)";
		}
		break;
	case R_RESTORE:
		if (!force_set(a)) {
			c = GATE_BENIGN;
			w = "restore into a new guest (no overwrite)";
		} else if (a->b.has_guest && (p->created_in_job || p->scratch)) {
			c = GATE_BENIGN;
			w = "restore over a guest the agent created (journal)";
		} else {
			w = "restore over an existing guest overwrites its data";
		}
		break;
	case R_AGENT_GUEST:
		if (a->b.has_guest && p->created_in_job) {
			c = GATE_BENIGN;
			w = "destroys a guest created in this journaled job";
		} else if (a->b.has_guest && p->scratch) {
			c = GATE_BENIGN;
			w = "destroys an agent-tagged scratch guest (journal)";
		} else {
			w = "destroys a guest the agent did not create";
		}
		break;
	case R_AGENT_CREATED:
		if (a->b.has_guest && (p->created_by_agent || p->created_in_job)) {
			c = GATE_BENIGN;
			w = "the guest was created by an agent job (journal)";
		} else if (a->b.has_guest && p->scratch) {
			c = GATE_BENIGN;
			w = "an agent-tagged scratch guest (journal)";
		} else {
			w = "stops a guest the agent did not create";
		}
		break;
	case R_RETENTION:
		if (a->b.has_guest && p->retention) {
			c = GATE_BENIGN;
			w = "the engine's own backup retention";
		} else {
			w = "deletes a backup archive";
		}
		break;
	case R_OWN_SNAPSHOT:
		if (a->b.has_guest && p->own_snapshot) {
			c = GATE_BENIGN;
			w = "the snapshot was made in this journaled job";
		} else {
			w = "discards a snapshot or the changes since it";
		}
		break;
	case R_DESTRUCTIVE:
	default:
		w = !strcmp(a->b.op, "signer_rotate") ? "changes who may sign" : "destroys or overwrites data";
		break;
	}
out:
	*out = c;
	if (why)
		*why = w;
	return 0;
}

/* ---------------------------------------------------------------- decision */

static void params_canon(const struct opblob *b, struct buf *o)
{
	buf_reset(o);
	if (opblob_params_canonical(b, o))
		buf_reset(o);
}

/* The signed op must be exactly the action: op, host, guest, params. */
static const char *binding_problem(const struct gate_action *a, const struct opblob *s)
{
	struct buf x, y;
	const char *w = NULL;

	if (strcmp(a->b.op, s->op))
		return "op differs from the action's";
	if (strcmp(a->b.host_id, s->host_id))
		return "host differs from the action's";
	if (a->b.has_guest != s->has_guest || (a->b.has_guest && a->b.guest_id != s->guest_id))
		return "guest differs from the action's";
	buf_init(&x, OPBLOB_MAX_BYTES * 4);
	buf_init(&y, OPBLOB_MAX_BYTES * 4);
	params_canon(&a->b, &x);
	params_canon(s, &y);
	if (!x.len || x.len != y.len || memcmp(x.data, y.data, x.len))
		w = "params differ from the action's";
	buf_free(&x);
	buf_free(&y);
	return w;
}

int gate_decide(const struct gate_action *a, const struct gate_prov *p, const struct sig_verified *vd,
		struct gate_decision *out)
{
	struct gate_decision d;
	const char *w = NULL;

	if (!a || !out)
		return FH_ERR_INVAL;
	memset(&d, 0, sizeof(d));
	gate_classify(a, p, &d.cls, &w);
	if (vd) {
		d.is_signed = true;
		d.role = vd->role;
		snprintf(d.signer, sizeof(d.signer), "%s", vd->signer_id);
		if (vd->role != SIG_ROLE_OPERATIONAL &&
		    !(vd->role == SIG_ROLE_RECOVERY && !strcmp(a->b.op, "signer_rotate"))) {
			d.outcome = TASK_OUT_REJECTED;
			d.reason = FH_ERR_SIG_ROLE_DENIED;
			snprintf(d.why, sizeof(d.why), "a %s key may not sign %s", sig_role_name(vd->role), a->b.op);
		} else if ((w = binding_problem(a, &vd->op)) != NULL) {
			d.outcome = TASK_OUT_REJECTED;
			d.reason = FH_ERR_SIG_BINDING;
			snprintf(d.why, sizeof(d.why), "%s", w);
		} else {
			d.allowed = true;
			snprintf(d.why, sizeof(d.why), "%s, signed by %s (%s)", gate_class_name(d.cls), vd->signer_id,
				 sig_role_name(vd->role));
		}
	} else if (d.cls == GATE_BENIGN) {
		d.allowed = true;
		snprintf(d.why, sizeof(d.why), "benign: %s", w);
	} else {
		d.outcome = TASK_OUT_PENDING_SIGNATURE;
		d.reason = FH_ERR_PENDING_SIGNATURE;
		snprintf(d.why, sizeof(d.why), "destructive (%s): needs an operator signature", w);
	}
	*out = d;
	return 0;
}

int gate_record(struct store_txn *t, const struct sig_verified *vd, struct gate_decision *d)
{
	int r;

	if (!t || !d)
		return FH_ERR_INVAL;
	if (!vd)
		return 0;
	r = sig_record(t, vd);
	if (r == FH_ERR_SIG_REPLAY) {
		d->allowed = false;
		d->outcome = TASK_OUT_REJECTED;
		d->reason = FH_ERR_SIG_REPLAY;
		snprintf(d->why, sizeof(d->why), "nonce already used");
		return 0;
	}
	return r;
}

/* ------------------------------------------------------------ fingerprints */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64v(int c)
{
	const char *p = c ? strchr(B64, c) : NULL;

	return p ? (int)(p - B64) : -1;
}

/* Lenient standard base64 (padding optional) into o[cap]; -1 on a bad byte. */
static long b64dec(const char *s, size_t n, uint8_t *o, size_t cap)
{
	uint32_t q = 0;
	size_t i, k = 0;
	unsigned bits = 0;

	for (i = 0; i < n; i++) {
		int v;

		if (s[i] == '=')
			break;
		v = b64v((unsigned char)s[i]);
		if (v < 0)
			return -1;
		q = q << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k >= cap)
				return -1;
			o[k++] = (uint8_t)(q >> bits);
		}
	}
	return (long)k;
}

static void b64enc_nopad(const uint8_t *p, size_t n, char *o, size_t cap)
{
	size_t i, k = 0;
	uint32_t q = 0;
	unsigned bits = 0;

	for (i = 0; i < n; i++) {
		q = q << 8 | p[i];
		bits += 8;
		while (bits >= 6 && k + 1 < cap) {
			bits -= 6;
			o[k++] = B64[(q >> bits) & 63];
		}
	}
	if (bits && k + 1 < cap)
		o[k++] = B64[(q << (6 - bits)) & 63];
	o[k] = '\0';
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The n-th (0-based) blank-separated field of s. */
static bool field(const char *s, unsigned nth, const char **f, size_t *flen)
{
	unsigned k = 0;

	for (;;) {
		while (*s && blank(*s))
			s++;
		if (!*s)
			return false;
		*f = s;
		while (*s && !blank(*s))
			s++;
		*flen = (size_t)(s - *f);
		if (k++ == nth)
			return true;
	}
}

int gate_fingerprint(const char *line, char *out, size_t outlen)
{
	uint8_t *blob = NULL, dig[WC_SHA256_DIGEST_SIZE];
	const char *f;
	size_t flen;
	long n;
	char enc[64];
	int r = FH_ERR_CONFIG;

	if (!line || !out || outlen < 8 + sizeof(enc))
		return FH_ERR_INVAL;
	if (!field(line, 3, &f, &flen) || flen > SIG_SIGNER_LINE_MAX)
		return FH_ERR_CONFIG;
	blob = malloc(flen);
	if (!blob)
		return FH_ERR_NOMEM;
	n = b64dec(f, flen, blob, flen);
	if (n <= 0)
		goto out;
	if (wc_Sha256Hash(blob, (word32)n, dig) != 0) {
		r = FH_ERR_INTERNAL;
		goto out;
	}
	b64enc_nopad(dig, sizeof(dig), enc, sizeof(enc));
	snprintf(out, outlen, "SHA256:%s", enc);
	r = 0;
out:
	free(blob);
	return r;
}

static bool line_is_role(const char *line, const char *role)
{
	const char *f;
	size_t n;

	return field(line, 0, &f, &n) && n == strlen(role) && !memcmp(f, role, n);
}

/* ------------------------------------------------------------- signer set */

struct strv {
	char **v;
	size_t n, alloc;
};

static void strv_free(struct strv *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int strv_addn(struct strv *s, const char *p, size_t n)
{
	char *c;

	if (s->n == s->alloc) {
		size_t na = s->alloc ? s->alloc * 2 : 16;
		char **nv = realloc(s->v, na * sizeof(*nv));
		if (!nv)
			return FH_ERR_NOMEM;
		s->v = nv;
		s->alloc = na;
	}
	c = strndup(p, n);
	if (!c)
		return FH_ERR_NOMEM;
	s->v[s->n++] = c;
	return 0;
}

static int strv_add(struct strv *s, const char *p)
{
	return strv_addn(s, p, strlen(p));
}

static bool strv_has(const struct strv *s, const char *p)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], p))
			return true;
	return false;
}

static void strv_del(struct strv *s, size_t i)
{
	free(s->v[i]);
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
	s->n--;
}

/* The rotation on top of the config: lines added, fingerprints of config
 * keys removed. Stored as text: "+LINE\n" and "-FP\n". */
struct rotation {
	struct strv add, remove;
};

static void rotation_free(struct rotation *ro)
{
	strv_free(&ro->add);
	strv_free(&ro->remove);
}

static int rotation_parse(const char *p, size_t n, struct rotation *out)
{
	struct rotation ro;
	size_t i = 0;
	int r = 0;

	memset(&ro, 0, sizeof(ro));
	while (!r && i < n) {
		const char *e = memchr(p + i, '\n', n - i);
		size_t len = e ? (size_t)(e - (p + i)) : n - i;

		if (len < 2 || (p[i] != '+' && p[i] != '-') || memchr(p + i, '\0', len))
			r = FH_ERR_DECODE;
		else if (ro.add.n + ro.remove.n >= GATE_ROTATION_MAX_LINES * 2)
			r = FH_ERR_DECODE;
		else
			r = strv_addn(p[i] == '+' ? &ro.add : &ro.remove, p + i + 1, len - 1);
		i += len + 1;
	}
	if (r) {
		rotation_free(&ro);
		return r;
	}
	*out = ro;
	return 0;
}

static int rotation_text(const struct rotation *ro, struct buf *o)
{
	size_t i;
	int r = 0;

	for (i = 0; !r && i < ro->add.n; i++)
		r = buf_printf(o, "+%s\n", ro->add.v[i]);
	for (i = 0; !r && i < ro->remove.n; i++)
		r = buf_printf(o, "-%s\n", ro->remove.v[i]);
	return r;
}

static int rotation_read(struct store_txn *t, struct rotation *out)
{
	const void *v;
	size_t n;
	int r = store_get(t, GATE_DB, GATE_KEY, sizeof(GATE_KEY) - 1, &v, &n);

	if (r == FH_ERR_NOT_FOUND) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (r)
		return r;
	if (n > GATE_ROTATION_MAX_BYTES)
		return FH_ERR_DECODE;
	return rotation_parse(v, n, out);
}

struct gate {
	struct store *st;
	pthread_rwlock_t lk;
	struct sig_verifier *v;      /* under lk */
	struct strv base;            /* config + file lines */
	struct strv base_fp;         /* their fingerprints */
	struct strv golden;          /* golden archive volids (read-only after gate_new) */
	size_t n, nop;               /* effective signers, operational ones (under lk) */
	char *host_id;
	int64_t max_lifetime, skew;
};

/* Reads the signers file into lines (comments and blanks skipped). */
static int read_signers_file(const char *path, struct strv *out, char *err, size_t errlen)
{
	struct buf b;
	char chunk[4096];
	struct stat sb;
	ssize_t n;
	size_t i = 0;
	int fd, r = FH_ERR_IO;

	buf_init(&b, SIG_SIGNERS_FILE_MAX);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "authz.signers_file %s: %s", path, strerror(errno));
		return FH_ERR_IO;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "authz.signers_file %s: not a regular file", path);
		goto out;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "authz.signers_file %s: %s", path, strerror(errno));
			goto out;
		}
		if (buf_append(&b, chunk, (size_t)n)) {
			snprintf(err, errlen, "authz.signers_file %s: over %d bytes", path, SIG_SIGNERS_FILE_MAX);
			r = FH_ERR_CONFIG;
			goto out;
		}
	}
	r = 0;
	while (!r && i < b.len) {
		const char *s = b.data + i, *e = memchr(s, '\n', b.len - i);
		size_t len = e ? (size_t)(e - s) : b.len - i, k = 0;

		i += len + 1;
		if (len && s[len - 1] == '\r')
			len--;
		while (k < len && blank(s[k]))
			k++;
		if (k == len || s[k] == '#')
			continue;
		r = strv_addn(out, s, len);
	}
out:
	close(fd);
	buf_free(&b);
	return r;
}

/* Effective lines: base minus removed fingerprints, plus added lines. */
static int effective(const struct gate *g, const struct rotation *ro, struct strv *out)
{
	struct strv e;
	size_t i;
	int r = 0;

	memset(&e, 0, sizeof(e));
	for (i = 0; !r && i < g->base.n; i++)
		if (!strv_has(&ro->remove, g->base_fp.v[i]))
			r = strv_add(&e, g->base.v[i]);
	for (i = 0; !r && i < ro->add.n; i++)
		r = strv_add(&e, ro->add.v[i]);
	if (r) {
		strv_free(&e);
		return r;
	}
	*out = e;
	return 0;
}

static int build_verifier(const struct gate *g, const struct strv *lines, struct sig_verifier **out,
			  size_t *nop, char *err, size_t errlen)
{
	struct sig_config sc;
	size_t i, k = 0;
	int r;

	memset(&sc, 0, sizeof(sc));
	sc.signers = (const char *const *)lines->v;
	sc.nsigners = lines->n;
	sc.host_id = g->host_id;
	sc.max_lifetime_seconds = g->max_lifetime;
	sc.clock_skew_seconds = g->skew;
	r = sig_verifier_new(&sc, out, err, errlen);
	if (r)
		return r;
	for (i = 0; i < lines->n; i++)
		k += line_is_role(lines->v[i], "operational");
	*nop = k;
	return 0;
}

static int load(struct gate *g, char *err, size_t errlen)
{
	struct store_txn *t = NULL;
	struct rotation ro;
	struct strv lines;
	struct sig_verifier *v = NULL, *old;
	size_t nop = 0;
	int r;

	memset(&ro, 0, sizeof(ro));
	memset(&lines, 0, sizeof(lines));
	r = store_txn_begin(g->st, false, &t);
	if (r) {
		snprintf(err, errlen, "signer rotation: cannot read the store (%s)", fh_strerror(r));
		return r;
	}
	r = rotation_read(t, &ro);
	store_txn_abort(t);
	if (r) {
		snprintf(err, errlen, "signer rotation record: %s", fh_strerror(r));
		goto out;
	}
	r = effective(g, &ro, &lines);
	if (r)
		goto out;
	r = build_verifier(g, &lines, &v, &nop, err, errlen);
	if (r)
		goto out;
	pthread_rwlock_wrlock(&g->lk);
	old = g->v;
	g->v = v;
	g->n = lines.n;
	g->nop = nop;
	pthread_rwlock_unlock(&g->lk);
	sig_verifier_free(old);
	v = NULL;
out:
	sig_verifier_free(v);
	strv_free(&lines);
	rotation_free(&ro);
	return r;
}

/* A golden archive as configured: a volid "storage:rest", printable
 * ASCII without blanks, short enough to be compared with a param. */
static bool golden_ok(const char *v)
{
	size_t n, i;
	const char *colon;

	if (!v)
		return false;
	n = strlen(v);
	colon = strchr(v, ':');
	if (n == 0 || n >= sizeof(((struct opblob_param *)0)->str) || !colon || colon == v || !colon[1])
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	return true;
}

/* A state directory of an earlier version keeps the rotation record in
 * STORE_DB_SEQ: moved to STORE_DB_GATE in one transaction (the gate's
 * database wins when both exist; the old key is dropped either way). */
static int migrate_legacy(struct store *st, char *err, size_t errlen)
{
	struct store_txn *t = NULL;
	struct rotation ro;
	const void *v, *cur;
	void *copy_v;
	size_t n, curn;
	int r;

	r = store_txn_begin(st, true, &t);
	if (r) {
		snprintf(err, errlen, "signer rotation: cannot open the store (%s)", fh_strerror(r));
		return r;
	}
	r = store_get(t, GATE_LEGACY_DB, GATE_LEGACY_KEY, sizeof(GATE_LEGACY_KEY) - 1, &v, &n);
	if (r == FH_ERR_NOT_FOUND) {
		store_txn_abort(t);
		return 0;
	}
	if (r)
		goto fail;
	if (n > GATE_ROTATION_MAX_BYTES) {
		r = FH_ERR_DECODE;
		goto fail;
	}
	r = store_get(t, GATE_DB, GATE_KEY, sizeof(GATE_KEY) - 1, &cur, &curn);
	if (r == FH_ERR_NOT_FOUND) {
		/* only a record that reads is carried over */
		r = rotation_parse(v, n, &ro);
		if (r)
			goto fail;
		rotation_free(&ro);
		/* a copy: the value points into the map, which the put may touch */
		copy_v = malloc(n ? n : 1);
		if (!copy_v) {
			r = FH_ERR_NOMEM;
			goto fail;
		}
		if (n)
			memcpy(copy_v, v, n);
		r = store_put(t, GATE_DB, GATE_KEY, sizeof(GATE_KEY) - 1, copy_v, n);
		free(copy_v);
	}
	if (!r)
		r = store_del(t, GATE_LEGACY_DB, GATE_LEGACY_KEY, sizeof(GATE_LEGACY_KEY) - 1);
	if (r)
		goto fail;
	r = store_txn_commit(t);
	if (r)
		snprintf(err, errlen, "signer rotation: cannot move the record (%s)", fh_strerror(r));
	return r;
fail:
	store_txn_abort(t);
	snprintf(err, errlen, "signer rotation record of an earlier version: %s", fh_strerror(r));
	return r;
}

bool gate_names_golden(const struct gate *g, const struct gate_action *a)
{
	size_t i, k;

	if (!g || !a)
		return false;
	for (i = 0; i < a->b.nparams; i++) {
		if (a->b.params[i].type != OPBLOB_STR)
			continue;
		for (k = 0; k < g->golden.n; k++)
			if (!strcmp(a->b.params[i].str, g->golden.v[k]))
				return true;
	}
	return false;
}

size_t gate_ngolden(const struct gate *g)
{
	return g ? g->golden.n : 0;
}

int gate_new(const struct gate_opts *o, struct gate **out, char *err, size_t errlen)
{
	struct gate *g;
	struct sig_config sc;
	struct sig_verifier *probe = NULL;
	size_t i;
	int r = FH_ERR_INVAL;

	if (!o || !out || !o->st || !o->host_id || !*o->host_id || (o->nsigners && !o->signers) ||
	    (o->ngolden && !o->golden_archives) || o->ngolden > GATE_GOLDEN_MAX)
		return FH_ERR_INVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return FH_ERR_NOMEM;
	pthread_rwlock_init(&g->lk, NULL);
	g->st = o->st;
	g->max_lifetime = o->max_lifetime_seconds;
	g->skew = o->clock_skew_seconds;
	g->host_id = strdup(o->host_id);
	if (!g->host_id) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	/* the configuration alone first: its errors name their source */
	memset(&sc, 0, sizeof(sc));
	sc.signers = o->signers;
	sc.nsigners = o->nsigners;
	sc.signers_file = o->signers_file;
	sc.host_id = o->host_id;
	sc.max_lifetime_seconds = o->max_lifetime_seconds;
	sc.clock_skew_seconds = o->clock_skew_seconds;
	r = sig_verifier_new(&sc, &probe, err, errlen);
	sig_verifier_free(probe);
	if (r)
		goto out;
	for (i = 0; !r && i < o->nsigners; i++)
		r = strv_add(&g->base, o->signers[i]);
	if (!r && o->signers_file && *o->signers_file)
		r = read_signers_file(o->signers_file, &g->base, err, errlen);
	for (i = 0; !r && i < g->base.n; i++) {
		char fp[128];

		r = gate_fingerprint(g->base.v[i], fp, sizeof(fp));
		if (!r)
			r = strv_add(&g->base_fp, fp);
	}
	if (r)
		goto out;
	for (i = 0; !r && i < o->ngolden; i++) {
		if (!golden_ok(o->golden_archives[i])) {
			snprintf(err, errlen, "golden archive %zu: want a volid \"storage:...\" of printable ASCII, "
				 "at most %zu bytes", i + 1, sizeof(((struct opblob_param *)0)->str) - 1);
			r = FH_ERR_CONFIG;
		} else if (!strv_has(&g->golden, o->golden_archives[i])) {
			r = strv_add(&g->golden, o->golden_archives[i]);
		}
	}
	if (r)
		goto out;
	r = migrate_legacy(g->st, err, errlen);
	if (r)
		goto out;
	r = load(g, err, errlen);
	if (r)
		goto out;
	*out = g;
	g = NULL;
out:
	gate_free(g);
	return r;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	sig_verifier_free(g->v);
	strv_free(&g->base);
	strv_free(&g->base_fp);
	strv_free(&g->golden);
	free(g->host_id);
	pthread_rwlock_destroy(&g->lk);
	free(g);
}

size_t gate_nsigners(struct gate *g)
{
	size_t n;

	pthread_rwlock_rdlock(&g->lk);
	n = g->n;
	pthread_rwlock_unlock(&g->lk);
	return n;
}

size_t gate_noperational(struct gate *g)
{
	size_t n;

	pthread_rwlock_rdlock(&g->lk);
	n = g->nop;
	pthread_rwlock_unlock(&g->lk);
	return n;
}

const char *gate_host_id(const struct gate *g)
{
	return g->host_id;
}

int gate_check(struct gate *g, const uint8_t *blob, size_t bloblen, const char *armor, size_t armorlen,
	       int64_t now, struct sig_verified *out, char *why, size_t whylen)
{
	int r;

	pthread_rwlock_rdlock(&g->lk);
	r = sig_check(g->v, blob, bloblen, armor, armorlen, now, out, why, whylen);
	pthread_rwlock_unlock(&g->lk);
	return r;
}

int gate_reload(struct gate *g, char *err, size_t errlen)
{
	return load(g, err, errlen);
}

/* Splits s on sep into trimmed non-empty pieces. */
static int split(const char *s, char sep, struct strv *out)
{
	int r = 0;

	while (!r && s && *s) {
		const char *e = strchr(s, sep);
		size_t n = e ? (size_t)(e - s) : strlen(s);
		const char *a = s, *b = s + n;

		while (a < b && (blank(*a) || *a == '\r'))
			a++;
		while (b > a && (blank(b[-1]) || b[-1] == '\r'))
			b--;
		if (b > a)
			r = strv_addn(out, a, (size_t)(b - a));
		s = e ? e + 1 : NULL;
	}
	return r;
}

static const char *str_param(const struct gate_action *a, const char *k, int *bad)
{
	const struct opblob_param *p = gate_action_param(a, k);

	if (!p)
		return NULL;
	if (p->type != OPBLOB_STR)
		*bad = 1;
	return p->type == OPBLOB_STR ? p->str : NULL;
}

int gate_rotate(struct gate *g, struct store_txn *t, const struct gate_action *a, char *why, size_t whylen)
{
	struct rotation ro;
	struct strv add, rm, lines;
	struct sig_verifier *v = NULL;
	struct buf text;
	const char *adds, *rms;
	char fp[128], err[256];
	size_t i, j, nop = 0;
	int r = FH_ERR_INVAL, bad = 0;

	memset(&ro, 0, sizeof(ro));
	memset(&add, 0, sizeof(add));
	memset(&rm, 0, sizeof(rm));
	memset(&lines, 0, sizeof(lines));
	buf_init(&text, GATE_ROTATION_MAX_BYTES);
	if (!g || !t || !a || strcmp(a->b.op, "signer_rotate") || a->b.has_guest) {
		snprintf(why, whylen, "not a host-scoped signer_rotate");
		goto out;
	}
	for (i = 0; i < a->b.nparams; i++)
		if (strcmp(a->b.params[i].key, "add") && strcmp(a->b.params[i].key, "remove")) {
			snprintf(why, whylen, "unknown param %s (want add, remove)", a->b.params[i].key);
			goto out;
		}
	adds = str_param(a, "add", &bad);
	rms = str_param(a, "remove", &bad);
	if (bad || (!adds && !rms)) {
		snprintf(why, whylen, "want string params add (signer lines) and/or remove (fingerprints)");
		goto out;
	}
	r = split(adds, '\n', &add);
	if (!r)
		r = split(rms, ',', &rm);
	if (r)
		goto out;
	r = rotation_read(t, &ro);
	if (r) {
		snprintf(why, whylen, "rotation record: %s", fh_strerror(r));
		goto out;
	}
	/* removals first: a key is replaced by removing it and adding another */
	for (i = 0; i < rm.n; i++) {
		bool found = false;

		for (j = 0; j < ro.add.n; j++) {
			if (!gate_fingerprint(ro.add.v[j], fp, sizeof(fp)) && !strcmp(fp, rm.v[i])) {
				strv_del(&ro.add, j);
				found = true;
				break;
			}
		}
		for (j = 0; !found && j < g->base.n; j++) {
			if (!strcmp(g->base_fp.v[j], rm.v[i]) && !strv_has(&ro.remove, rm.v[i])) {
				r = strv_add(&ro.remove, rm.v[i]);
				if (r)
					goto out;
				found = true;
			}
		}
		if (!found) {
			snprintf(why, whylen, "no signer with fingerprint %.60s", rm.v[i]);
			r = FH_ERR_NOT_FOUND;
			goto out;
		}
	}
	for (i = 0; i < add.n; i++) {
		r = gate_fingerprint(add.v[i], fp, sizeof(fp));
		if (r) {
			snprintf(why, whylen, "add line %zu is not a signer line", i + 1);
			r = FH_ERR_CONFIG;
			goto out;
		}
		r = strv_add(&ro.add, add.v[i]);
		if (r)
			goto out;
	}
	if (ro.add.n > GATE_ROTATION_MAX_LINES || ro.remove.n > GATE_ROTATION_MAX_LINES) {
		snprintf(why, whylen, "more than %d rotated signers", GATE_ROTATION_MAX_LINES);
		r = FH_ERR_TOOBIG;
		goto out;
	}
	r = effective(g, &ro, &lines);
	if (r)
		goto out;
	err[0] = '\0';
	r = build_verifier(g, &lines, &v, &nop, err, sizeof(err));
	if (r) {
		snprintf(why, whylen, "%s", err);
		r = r == FH_ERR_NOMEM ? r : FH_ERR_CONFIG;
		goto out;
	}
	if (nop == 0) {
		snprintf(why, whylen, "the rotation would leave no operational signer");
		r = FH_ERR_GATE_LAST_SIGNER;
		goto out;
	}
	r = rotation_text(&ro, &text);
	if (r) {
		snprintf(why, whylen, "rotation record over %zu bytes", (size_t)GATE_ROTATION_MAX_BYTES);
		goto out;
	}
	r = store_put(t, GATE_DB, GATE_KEY, sizeof(GATE_KEY) - 1, text.data ? text.data : "", text.len);
	if (r)
		snprintf(why, whylen, "cannot store the rotation: %s", fh_strerror(r));
out:
	sig_verifier_free(v);
	buf_free(&text);
	strv_free(&lines);
	strv_free(&add);
	strv_free(&rm);
	rotation_free(&ro);
	return r;
}
