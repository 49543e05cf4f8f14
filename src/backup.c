/* backup.c — per-guest backups behind the local API; see backup.h. */
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "cfg.h"
#include "err.h"
#include "gate.h"
#include "idem.h"
#include "jrnl.h"
#include "log.h"
#include "pve.h"
#include "recon.h"

#define PROBE_WAIT_DEFAULT 3000
#define PROBE_WAIT_MAX 8000
#define FLAG_PROBED 0x1u

/* ---------------------------------------------------------------- record */

static const char *const phase_names[BACKUP__PHASE_END] = { "idle", "running", "done", "failed" };

const char *backup_phase_name(enum backup_phase p)
{
	return (unsigned)p < BACKUP__PHASE_END ? phase_names[p] : "";
}

static bool clean_str(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap + 1);

	if (n > cap)
		return false;
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

static void put_be64(unsigned char *p, int64_t v)
{
	store_be64_put(p, (uint64_t)v);
}

int backup_rec_encode(const struct backup_rec *r, unsigned char out[BACKUP_REC_MAX], size_t *n)
{
	size_t jl, el, k = 0;

	if ((unsigned)r->phase >= BACKUP__PHASE_END || !clean_str(r->job_id, BACKUP_JOB_ID_MAX) ||
	    !clean_str(r->error, BACKUP_ERROR_MAX) || r->started_at < 0 || r->finished_at < 0 ||
	    r->last_success_at < 0 || r->own_since < 0)
		return FH_ERR_INVAL;
	jl = strlen(r->job_id);
	el = strlen(r->error);
	out[k++] = BACKUP_REC_VERSION;
	out[k++] = (unsigned char)r->phase;
	out[k++] = r->probed ? FLAG_PROBED : 0;
	put_be64(out + k, r->started_at);
	k += 8;
	put_be64(out + k, r->finished_at);
	k += 8;
	put_be64(out + k, r->last_success_at);
	k += 8;
	put_be64(out + k, r->own_since);
	k += 8;
	out[k++] = (unsigned char)jl;
	memcpy(out + k, r->job_id, jl);
	k += jl;
	out[k++] = (unsigned char)(el >> 8);
	out[k++] = (unsigned char)el;
	memcpy(out + k, r->error, el);
	k += el;
	*n = k;
	return 0;
}

int backup_rec_decode(const void *vp, size_t n, struct backup_rec *out)
{
	const unsigned char *p = vp;
	struct backup_rec r;
	size_t k = 0, jl, el, nt;
	uint64_t t[4];
	size_t i;

	memset(&r, 0, sizeof(r));
	if (n < 3 || (p[0] != BACKUP_REC_VERSION && p[0] != 1))
		return FH_ERR_DECODE;
	nt = p[0] == 1 ? 3 : 4;
	if (n < 3 + 8 * nt + 1 + 2 || p[1] >= BACKUP__PHASE_END || (p[2] & ~FLAG_PROBED))
		return FH_ERR_DECODE;
	r.phase = (enum backup_phase)p[1];
	r.probed = (p[2] & FLAG_PROBED) != 0;
	k = 3;
	for (i = 0; i < nt; i++, k += 8) {
		t[i] = store_be64_get(p + k);
		if (t[i] > (uint64_t)INT64_MAX)
			return FH_ERR_DECODE;
	}
	r.started_at = (int64_t)t[0];
	r.finished_at = (int64_t)t[1];
	r.last_success_at = (int64_t)t[2];
	/* version 1 did not keep it: the last job's start is the safe side */
	r.own_since = nt == 4 ? (int64_t)t[3] : r.started_at;
	jl = p[k++];
	if (jl > BACKUP_JOB_ID_MAX || n - k < jl + 2)
		return FH_ERR_DECODE;
	memcpy(r.job_id, p + k, jl);
	k += jl;
	el = ((size_t)p[k] << 8) | p[k + 1];
	k += 2;
	if (el > BACKUP_ERROR_MAX || n - k != el)
		return FH_ERR_DECODE;
	memcpy(r.error, p + k, el);
	if (!clean_str(r.job_id, BACKUP_JOB_ID_MAX) || strlen(r.job_id) != jl || !clean_str(r.error, BACKUP_ERROR_MAX) ||
	    strlen(r.error) != el)
		return FH_ERR_DECODE;
	*out = r;
	return 0;
}

static void vmid_key(int vmid, unsigned char k[4])
{
	uint32_t v = (uint32_t)vmid;

	k[0] = (unsigned char)(v >> 24);
	k[1] = (unsigned char)(v >> 16);
	k[2] = (unsigned char)(v >> 8);
	k[3] = (unsigned char)v;
}

int backup_rec_get(struct store *st, int vmid, struct backup_rec *out)
{
	struct store_txn *t = NULL;
	unsigned char k[4];
	const void *v;
	size_t vl;
	int r;

	if (vmid < 1)
		return FH_ERR_INVAL;
	vmid_key(vmid, k);
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = store_get(t, STORE_DB_BACKUP, k, sizeof(k), &v, &vl);
	if (!r)
		r = vl > BACKUP_REC_MAX ? FH_ERR_DECODE : backup_rec_decode(v, vl, out);
	store_txn_abort(t);
	return r;
}

int backup_rec_put(struct store *st, int vmid, const struct backup_rec *rec)
{
	struct store_txn *t = NULL;
	unsigned char k[4], buf[BACKUP_REC_MAX];
	size_t n = 0;
	int r;

	if (vmid < 1)
		return FH_ERR_INVAL;
	if (rec) {
		r = backup_rec_encode(rec, buf, &n);
		if (r)
			return r;
	}
	vmid_key(vmid, k);
	r = store_txn_begin(st, true, &t);
	if (r)
		return r;
	if (rec)
		r = store_put(t, STORE_DB_BACKUP, k, sizeof(k), buf, n);
	else {
		r = store_del(t, STORE_DB_BACKUP, k, sizeof(k));
		if (r == FH_ERR_NOT_FOUND)
			r = 0;
	}
	if (r) {
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t);
}

/* ---------------------------------------------------------------- module */

struct guest_pol {
	int vmid;
	int enabled;                 /* -1 unset */
	int64_t interval_seconds, keep_last;   /* 0 unset */
	char storage[64];            /* "" unset */
};

enum ev_kind { EV_DONE = 1, EV_PROBE, EV_PRUNED };

struct event {
	struct event *next;
	enum ev_kind kind;
	int vmid;
	char job_id[RECON_JOB_ID_MAX + 1];
	enum task_outcome outcome;
	int reason;
	char why[BACKUP_ERROR_MAX + 1];
};

/* A job submitted by this process whose done callback has not been applied. */
struct live {
	int vmid;
	char job_id[BACKUP_JOB_ID_MAX + 1];
};

struct backup {
	struct store *st;
	struct recon *recon;
	struct pve_client *pc;
	char host_id[128];
	long probe_wait_ms;
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
	/* policy */
	bool enabled;
	char storage[64], mode[16], compress[16];
	int64_t interval_seconds, keep_last;
	struct guest_pol *gp;
	size_t ngp;
	char **golden;
	size_t ngolden;

	pthread_mutex_t mu;          /* records (read-modify-write), live, counter */
	struct live *live;
	size_t nlive, caplive;
	uint64_t counter;

	pthread_mutex_t qmu;         /* the event queue and the stats */
	pthread_cond_t qcv;          /* an event arrived / stop */
	pthread_cond_t idle_cv;      /* the worker became idle; a probe ended */
	struct event *head, *tail;
	size_t nev;
	bool busy, stop;
	int probing;                 /* vmid the worker is looking at, 0 none */
	struct backup_stats s;
	pthread_t th;
	bool started;
};

static int64_t now_s(const struct backup *b)
{
	return b->clock ? b->clock(b->clock_ctx) : (int64_t)time(NULL);
}

static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* One line, printable: control bytes become spaces. */
static void copy_line(char *dst, size_t cap, const char *src)
{
	char *p;

	copy(dst, cap, src);
	for (p = dst; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

static int cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, c = *(const int *)y;

	return (a > c) - (a < c);
}

static bool live_vmid(const struct backup *b, int vmid)
{
	size_t i;

	for (i = 0; i < b->nlive; i++) {
		if (b->live[i].vmid == vmid)
			return true;
	}
	return false;
}

/* Walks the records in t: those of guests not in sorted[0..n) and without
 * a live job are counted in *gone and, with del, deleted. 0 or the store's
 * error. */
static int scan_gone(struct backup *b, struct store_txn *t, const int *sorted, size_t n, bool del, unsigned *gone)
{
	unsigned char from[4] = { 0, 0, 0, 0 };
	int r;

	for (;;) {
		const void *k, *v;
		size_t kl, vl;
		uint32_t vm;
		int key;

		r = store_seek(t, STORE_DB_BACKUP, from, sizeof(from), &k, &kl, &v, &vl);
		if (r)
			return r == FH_ERR_NOT_FOUND ? 0 : r;
		if (kl != 4)
			return FH_ERR_DECODE;
		memcpy(from, k, 4);
		vm = ((uint32_t)from[0] << 24) | ((uint32_t)from[1] << 16) | ((uint32_t)from[2] << 8) | from[3];
		key = (int)vm;
		if (!bsearch(&key, sorted, n, sizeof(*sorted), cmp_int) && !live_vmid(b, key)) {
			if (del && (r = store_del(t, STORE_DB_BACKUP, from, sizeof(from))) != 0)
				return r;
			(*gone)++;
		}
		if (vm == UINT32_MAX)
			return 0;
		vmid_key((int)(vm + 1), from);
	}
}

int backup_note_present(struct backup *b, const int *vmids, size_t n, unsigned *forgotten)
{
	struct store_txn *t = NULL;
	unsigned gone = 0;
	int *sorted, r;

	if (forgotten)
		*forgotten = 0;
	if (!b || !vmids || !n)
		return FH_ERR_INVAL;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return FH_ERR_NOMEM;
	memcpy(sorted, vmids, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_int);
	pthread_mutex_lock(&b->mu);
	/* a read first: the common case (nobody gone) writes and syncs nothing */
	r = store_txn_begin(b->st, false, &t);
	if (!r) {
		r = scan_gone(b, t, sorted, n, false, &gone);
		store_txn_abort(t);
	}
	if (!r && gone) {
		gone = 0;
		r = store_txn_begin(b->st, true, &t);
		if (!r) {
			r = scan_gone(b, t, sorted, n, true, &gone);
			if (r)
				store_txn_abort(t);
			else
				r = store_txn_commit(t);
		}
	}
	pthread_mutex_unlock(&b->mu);
	free(sorted);
	if (!r && forgotten)
		*forgotten = gone;
	return r;
}

void backup_policy_of(struct backup *b, int vmid, struct backup_policy *out)
{
	const struct guest_pol *g = NULL;
	size_t lo = 0, hi = b->ngp;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (b->gp[mid].vmid == vmid) {
			g = &b->gp[mid];
			break;
		}
		if (b->gp[mid].vmid < vmid)
			lo = mid + 1;
		else
			hi = mid;
	}
	memset(out, 0, sizeof(*out));
	out->enabled = g && g->enabled >= 0 ? g->enabled == 1 : b->enabled;
	copy(out->storage, sizeof(out->storage), g && g->storage[0] ? g->storage : b->storage);
	copy(out->mode, sizeof(out->mode), b->mode);
	copy(out->compress, sizeof(out->compress), b->compress);
	out->interval_seconds = g && g->interval_seconds ? g->interval_seconds : b->interval_seconds;
	out->keep_last = g && g->keep_last ? g->keep_last : b->keep_last;
	if (!out->storage[0])
		out->enabled = false;
}

static bool is_golden(const struct backup *b, const char *volid)
{
	size_t i;

	for (i = 0; i < b->ngolden; i++) {
		if (!strcmp(b->golden[i], volid))
			return true;
	}
	return false;
}

/* ---- live jobs (b->mu held) */

static bool live_has(const struct backup *b, int vmid, const char *job_id)
{
	size_t i;

	for (i = 0; i < b->nlive; i++) {
		if (b->live[i].vmid == vmid && !strcmp(b->live[i].job_id, job_id))
			return true;
	}
	return false;
}

static int live_add(struct backup *b, int vmid, const char *job_id)
{
	if (b->nlive == b->caplive) {
		size_t nc = b->caplive ? b->caplive * 2 : 16;
		struct live *nl = realloc(b->live, nc * sizeof(*nl));
		if (!nl)
			return FH_ERR_NOMEM;
		b->live = nl;
		b->caplive = nc;
	}
	b->live[b->nlive].vmid = vmid;
	copy(b->live[b->nlive].job_id, sizeof(b->live[b->nlive].job_id), job_id);
	b->nlive++;
	return 0;
}

static void live_del(struct backup *b, int vmid, const char *job_id)
{
	size_t i;

	for (i = 0; i < b->nlive; i++) {
		if (b->live[i].vmid == vmid && !strcmp(b->live[i].job_id, job_id)) {
			b->live[i] = b->live[--b->nlive];
			return;
		}
	}
}

/* ---- events */

static int push_event(struct backup *b, struct event *e, bool must)
{
	pthread_mutex_lock(&b->qmu);
	if (b->stop || (!must && b->nev >= BACKUP_EVENTS_MAX)) {
		pthread_mutex_unlock(&b->qmu);
		free(e);
		return FH_ERR_QUEUE_FULL;
	}
	e->next = NULL;
	if (b->tail)
		b->tail->next = e;
	else
		b->head = e;
	b->tail = e;
	b->nev++;
	pthread_cond_signal(&b->qcv);
	pthread_mutex_unlock(&b->qmu);
	return 0;
}

static void stat_add(struct backup *b, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&b->qmu);
	*field += n;
	pthread_mutex_unlock(&b->qmu);
}

struct done_arg {
	struct backup *b;
	int vmid;
	char job_id[RECON_JOB_ID_MAX + 1];
	enum ev_kind kind;
};

/* The engine's done callback (an engine worker): queue the outcome only. */
static void on_done(const struct recon_result *res, void *arg)
{
	struct done_arg *d = arg;
	struct event *e = calloc(1, sizeof(*e));

	if (e) {
		e->kind = d->kind;
		e->vmid = d->vmid;
		copy(e->job_id, sizeof(e->job_id), d->job_id);
		e->outcome = res->outcome;
		e->reason = res->reason;
		copy_line(e->why, sizeof(e->why), res->why[0] ? res->why : fh_strerror(res->reason));
		push_event(d->b, e, true);
	} else {
		log_event(LOG_ERROR, "backup.event_lost", "job_id", d->job_id, "error", "nomem", NULL);
	}
	free(d);
}

/* ---- resolving a running record */

/* The outcome the engine stored for job_id: 0 and *rec, FH_ERR_NOT_FOUND,
 * or a store error. *text gets the journal's detail when there is one. */
static int stored_outcome(struct backup *b, const char *job_id, struct idem_rec *rec, char *text, size_t textlen)
{
	struct jrnl_entry *e;
	int r = idem_get(b->st, job_id, rec);

	text[0] = '\0';
	if (r || rec->outcome == TASK_OUT_NONE || !rec->jrnl_id)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e)
		return 0;
	if (!jrnl_get(b->st, rec->jrnl_id, e))
		copy_line(text, textlen, e->text);
	free(e);
	return 0;
}

static void fail_text(char *dst, size_t cap, const struct idem_rec *ir, const char *text)
{
	char tmp[IDEM_REASON_MAX + JRNL_TEXT_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s%s%s", ir->reason[0] ? ir->reason : task_outcome_name(ir->outcome),
		 text[0] ? ": " : "", text);
	copy_line(dst, cap, tmp);
}

/* With b->mu held: a record in phase running whose job this process is not
 * running is settled from the idempotency store. *changed when written. */
static int resolve_running(struct backup *b, int vmid, struct backup_rec *rec)
{
	struct idem_rec ir;
	char text[JRNL_TEXT_MAX + 1];
	int r;

	if (rec->phase != BACKUP_RUNNING || live_has(b, vmid, rec->job_id))
		return 0;
	r = stored_outcome(b, rec->job_id, &ir, text, sizeof(text));
	if (r == FH_ERR_NOT_FOUND) {
		rec->phase = BACKUP_FAILED;
		copy(rec->error, sizeof(rec->error), "interrupted: the job was lost before the engine admitted it");
	} else if (r) {
		return r;
	} else if (ir.outcome == TASK_OUT_NONE) {
		return 0;            /* in flight in the journal: recovery closes it */
	} else if (ir.outcome == TASK_OUT_EXECUTED) {
		rec->phase = BACKUP_DONE;
		rec->error[0] = '\0';
		rec->last_success_at = rec->started_at;
	} else {
		rec->phase = BACKUP_FAILED;
		fail_text(rec->error, sizeof(rec->error), &ir, text);
	}
	rec->finished_at = now_s(b);
	r = backup_rec_put(b->st, vmid, rec);
	if (!r)
		log_event(LOG_INFO, "backup.resolved", "job_id", rec->job_id, "phase", backup_phase_name(rec->phase),
			  NULL);
	return r;
}

/* ---- the backend */

static int check_vmid(int vmid)
{
	return vmid >= 100 && vmid <= 999999999 ? 0 : FH_ERR_INVAL;
}

/* Queues a storage look for vmid (once at a time) and waits up to the
 * probe wait for it. b->mu is not held. */
static void probe_and_wait(struct backup *b, int vmid)
{
	struct event *e = calloc(1, sizeof(*e));
	struct timespec dl;
	long ms = b->probe_wait_ms;

	if (!e)
		return;
	e->kind = EV_PROBE;
	e->vmid = vmid;
	if (push_event(b, e, false))
		return;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->qmu);
	for (;;) {
		struct event *q;
		bool queued = false;

		for (q = b->head; q && !queued; q = q->next)
			queued = q->kind == EV_PROBE && q->vmid == vmid;
		if ((!queued && b->probing != vmid) || b->stop)
			break;
		if (pthread_cond_timedwait(&b->idle_cv, &b->qmu, &dl) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&b->qmu);
}

/* A guest's record (zeroed when there is none), a "running" one left by an
 * earlier process settled first (resolve_running). */
static int load_settled(struct backup *b, int vmid, struct backup_rec *rec)
{
	int r;

	pthread_mutex_lock(&b->mu);
	r = backup_rec_get(b->st, vmid, rec);
	if (r == FH_ERR_NOT_FOUND) {
		memset(rec, 0, sizeof(*rec));
		r = 0;
	} else if (!r) {
		r = resolve_running(b, vmid, rec);
	}
	pthread_mutex_unlock(&b->mu);
	return r;
}

int backup_due(void *ctx, int vmid, struct lapi_backup_due *out)
{
	struct backup *b = ctx;
	struct backup_policy pol;
	struct backup_rec rec;
	int r, pass;

	r = check_vmid(vmid);
	if (r)
		return r;
	backup_policy_of(b, vmid, &pol);
	if (!pol.enabled) {
		out->due = false;
		copy(out->reason, sizeof(out->reason), "disabled");
		return 0;
	}
	for (pass = 0; pass < 2; pass++) {
		r = load_settled(b, vmid, &rec);
		if (r)
			return r;
		if (rec.last_success_at || rec.probed || rec.phase == BACKUP_RUNNING || pass)
			break;
		probe_and_wait(b, vmid);
	}
	if (rec.phase == BACKUP_RUNNING) {
		out->due = false;
		copy(out->reason, sizeof(out->reason), "not_due");
	} else if (!rec.last_success_at) {
		out->due = true;
		copy(out->reason, sizeof(out->reason), "never_backed_up");
	} else if (now_s(b) - rec.last_success_at >= pol.interval_seconds) {
		out->due = true;
		copy(out->reason, sizeof(out->reason), "interval_elapsed");
	} else {
		out->due = false;
		copy(out->reason, sizeof(out->reason), "not_due");
	}
	return 0;
}

static void fill_job(const struct backup_rec *rec, struct lapi_backup_job *out)
{
	copy(out->job_id, sizeof(out->job_id), rec->job_id);
	copy(out->phase, sizeof(out->phase), backup_phase_name(rec->phase));
	copy(out->error, sizeof(out->error), rec->phase == BACKUP_FAILED ? rec->error : "");
}

static int build_vzdump(const struct backup *b, int vmid, const struct backup_policy *pol, const char *job_id,
			struct recon_job *job)
{
	int r;

	memset(job, 0, sizeof(*job));
	job->source = JRNL_SRC_BACKUP;
	copy(job->job_id, sizeof(job->job_id), job_id);
	job->nsteps = 1;
	r = gate_action_init(&job->steps[0], "vzdump", b->host_id, vmid);
	r = r ? r : gate_action_str(&job->steps[0], "storage", pol->storage);
	r = r ? r : gate_action_str(&job->steps[0], "mode", pol->mode);
	r = r ? r : gate_action_str(&job->steps[0], "compress", pol->compress);
	return r;
}

int backup_enqueue(void *ctx, int vmid, struct lapi_backup_job *out)
{
	struct backup *b = ctx;
	struct backup_policy pol;
	struct backup_rec rec, old;
	struct recon_job *job = NULL;
	struct done_arg *d = NULL;
	bool had = true;
	char job_id[BACKUP_JOB_ID_MAX + 1];
	int r;

	r = check_vmid(vmid);
	if (r)
		return r;
	backup_policy_of(b, vmid, &pol);
	pthread_mutex_lock(&b->mu);
	r = backup_rec_get(b->st, vmid, &old);
	if (r == FH_ERR_NOT_FOUND || r == FH_ERR_DECODE) {
		if (r == FH_ERR_DECODE)
			log_msg(LOG_WARN, "backup.record_corrupt", "vmid %d: replaced by the new job's record", vmid);
		memset(&old, 0, sizeof(old));
		had = r == FH_ERR_NOT_FOUND ? false : true;
		r = 0;
	} else if (!r) {
		r = resolve_running(b, vmid, &old);
	}
	if (r)
		goto out;
	if (old.phase == BACKUP_RUNNING) {
		fill_job(&old, out);
		goto out;
	}
	if (!pol.enabled) {
		r = FH_ERR_CONFIG;
		goto out;
	}
	rec = old;
	snprintf(job_id, sizeof(job_id), "backup-%d-%" PRId64 "-%" PRIu64, vmid, now_s(b), ++b->counter);
	job = calloc(1, sizeof(*job));
	d = calloc(1, sizeof(*d));
	if (!job || !d) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	r = build_vzdump(b, vmid, &pol, job_id, job);
	if (r)
		goto out;
	rec.phase = BACKUP_RUNNING;
	copy(rec.job_id, sizeof(rec.job_id), job_id);
	rec.error[0] = '\0';
	rec.started_at = now_s(b);
	rec.finished_at = 0;
	if (!rec.own_since)
		rec.own_since = rec.started_at;
	r = live_add(b, vmid, job_id);
	if (r)
		goto out;
	r = backup_rec_put(b->st, vmid, &rec);   /* durable before the engine sees the job */
	if (r) {
		live_del(b, vmid, job_id);
		goto out;
	}
	d->b = b;
	d->vmid = vmid;
	d->kind = EV_DONE;
	copy(d->job_id, sizeof(d->job_id), job_id);
	r = recon_submit(b->recon, job, on_done, d);
	if (r) {
		int r2;

		live_del(b, vmid, job_id);
		r2 = backup_rec_put(b->st, vmid, had ? &old : NULL);
		if (r2)
			log_event(LOG_ERROR, "backup.restore_failed", "job_id", job_id, "error", fh_strerror(r2), NULL);
		log_event(LOG_WARN, "backup.refused", "job_id", job_id, "error", fh_strerror(r), NULL);
		stat_add(b, &b->s.refused, 1);
		goto out;
	}
	d = NULL;                /* owned by the engine's callback now */
	stat_add(b, &b->s.enqueued, 1);
	log_event(LOG_INFO, "backup.enqueued", "job_id", job_id, "storage", pol.storage, NULL);
	fill_job(&rec, out);
out:
	pthread_mutex_unlock(&b->mu);
	free(job);
	free(d);
	return r;
}

int backup_status(void *ctx, int vmid, struct lapi_backup_job *out)
{
	struct backup *b = ctx;
	struct backup_rec rec;
	int r = check_vmid(vmid);

	if (r)
		return r;
	r = load_settled(b, vmid, &rec);
	if (!r)
		fill_job(&rec, out);
	return r;
}

void backup_lapi_backend(struct backup *b, struct lapi_backend *be)
{
	(void)b;
	memset(be, 0, sizeof(*be));
	be->backup_due = backup_due;
	be->backup_enqueue = backup_enqueue;
	be->backup_status = backup_status;
}

/* ---- the worker */

/* The storage's backup archives of vmid, newest first. */
static int list_archives(struct backup *b, const char *storage, int vmid, struct pve_content **out, size_t *n)
{
	struct pve_content *all = NULL, *mine;
	struct pve_err e;
	size_t na = 0, i, k = 0;
	int r = pve_storage_content(b->pc, storage, "backup", &all, &na, &e);

	if (r) {
		log_event(LOG_WARN, "backup.storage_read_failed", "storage", storage, "error", fh_strerror(r), "reason",
			  e.reason, NULL);
		return r;
	}
	mine = calloc(na ? na : 1, sizeof(*mine));
	if (!mine) {
		free(all);
		return FH_ERR_NOMEM;
	}
	for (i = 0; i < na; i++) {
		size_t sl = strlen(storage);
		if (all[i].vmid != vmid || strncmp(all[i].volid, storage, sl) || all[i].volid[sl] != ':')
			continue;
		mine[k++] = all[i];
	}
	free(all);
	/* newest first (insertion sort: a guest has few archives) */
	for (i = 1; i < k; i++) {
		struct pve_content c = mine[i];
		size_t j = i;
		while (j > 0 && (mine[j - 1].ctime < c.ctime ||
				 (mine[j - 1].ctime == c.ctime && strcmp(mine[j - 1].volid, c.volid) < 0))) {
			mine[j] = mine[j - 1];
			j--;
		}
		mine[j] = c;
	}
	*out = mine;
	*n = k;
	return 0;
}

static void do_probe(struct backup *b, int vmid)
{
	struct backup_policy pol;
	struct pve_content *a = NULL;
	struct backup_rec rec;
	size_t n = 0;
	int r;

	backup_policy_of(b, vmid, &pol);
	if (!pol.enabled)
		return;
	pthread_mutex_lock(&b->mu);
	r = backup_rec_get(b->st, vmid, &rec);
	pthread_mutex_unlock(&b->mu);
	if (r == FH_ERR_NOT_FOUND)
		memset(&rec, 0, sizeof(rec));
	else if (r || rec.probed || rec.last_success_at)
		return;
	stat_add(b, &b->s.probes, 1);
	r = list_archives(b, pol.storage, vmid, &a, &n);
	if (r)
		return;              /* looked at again on the next due call */
	pthread_mutex_lock(&b->mu);
	r = backup_rec_get(b->st, vmid, &rec);
	if (r == FH_ERR_NOT_FOUND) {
		memset(&rec, 0, sizeof(rec));
		r = 0;
	}
	if (!r && !rec.probed) {
		rec.probed = true;
		if (n && !rec.last_success_at && a[0].ctime > 0)
			rec.last_success_at = a[0].ctime;
		r = backup_rec_put(b->st, vmid, &rec);
	}
	pthread_mutex_unlock(&b->mu);
	if (r)
		log_event(LOG_WARN, "backup.probe_not_stored", "error", fh_strerror(r), NULL);
	free(a);
}

/* Job id of the prune of volid: "prune-<vmid>-<first 32 hex of SHA-256(volid)>". */
static int prune_job_id(int vmid, const char *volid, char out[RECON_JOB_ID_MAX + 1])
{
	unsigned char dig[WC_SHA256_DIGEST_SIZE];
	char hex[33];
	int i;

	if (wc_Sha256Hash((const unsigned char *)volid, (word32)strlen(volid), dig) != 0)
		return FH_ERR_INTERNAL;
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	snprintf(out, RECON_JOB_ID_MAX + 1, "prune-%d-%s", vmid, hex);
	return 0;
}

static void do_retention(struct backup *b, int vmid)
{
	struct backup_policy pol;
	struct backup_rec rec;
	struct pve_content *a = NULL;
	size_t n = 0, i, kept = 0;
	int r;

	backup_policy_of(b, vmid, &pol);
	if (!pol.storage[0])
		return;
	pthread_mutex_lock(&b->mu);
	r = backup_rec_get(b->st, vmid, &rec);
	pthread_mutex_unlock(&b->mu);
	if (r || !rec.own_since || !rec.started_at) {
		if (r != FH_ERR_NOT_FOUND)
			stat_add(b, &b->s.prune_errors, 1);
		return;   /* no window known: nothing is pruned */
	}
	r = list_archives(b, pol.storage, vmid, &a, &n);
	if (r) {
		stat_add(b, &b->s.prune_errors, 1);
		return;
	}
	for (i = 0; i < n; i++) {
		struct recon_job *job;
		struct done_arg *d;

		if (a[i].protected_ || is_golden(b, a[i].volid))
			continue;    /* never pruned, never counted */
		if (i == 0 || kept < (size_t)pol.keep_last) {
			kept++;
			continue;
		}
		if (a[i].ctime < rec.own_since || a[i].ctime >= rec.started_at)
			continue;    /* not this guest's by this agent, or not older than the backup just made */
		job = calloc(1, sizeof(*job));
		d = calloc(1, sizeof(*d));
		r = job && d ? 0 : FH_ERR_NOMEM;
		if (!r) {
			job->source = JRNL_SRC_BACKUP;
			job->nsteps = 1;
			r = prune_job_id(vmid, a[i].volid, job->job_id);
			r = r ? r : gate_action_init(&job->steps[0], "backup_prune", b->host_id, vmid);
			r = r ? r : gate_action_str(&job->steps[0], "storage", pol.storage);
			r = r ? r : gate_action_str(&job->steps[0], "volid", a[i].volid);
		}
		if (!r) {
			d->b = b;
			d->vmid = vmid;
			d->kind = EV_PRUNED;
			copy(d->job_id, sizeof(d->job_id), job->job_id);
			r = recon_submit(b->recon, job, on_done, d);
			if (r == FH_ERR_DUPLICATE)
				r = 0;       /* the same prune is queued already */
			else if (!r)
				d = NULL;
		}
		if (r) {
			stat_add(b, &b->s.prune_errors, 1);
			log_event(LOG_WARN, "backup.prune_not_submitted", "volid", a[i].volid, "error", fh_strerror(r),
				  NULL);
		} else if (!d) {
			stat_add(b, &b->s.prunes_submitted, 1);
			log_event(LOG_INFO, "backup.prune_submitted", "volid", a[i].volid, NULL);
		}
		free(job);
		free(d);
	}
	free(a);
}

static void apply_done(struct backup *b, const struct event *e)
{
	struct backup_rec rec;
	bool success = false;
	int r;

	pthread_mutex_lock(&b->mu);
	live_del(b, e->vmid, e->job_id);
	r = backup_rec_get(b->st, e->vmid, &rec);
	if (!r && rec.phase == BACKUP_RUNNING && !strcmp(rec.job_id, e->job_id)) {
		if (e->outcome == TASK_OUT_EXECUTED) {
			rec.phase = BACKUP_DONE;
			rec.error[0] = '\0';
			rec.last_success_at = rec.started_at;
			success = true;
		} else if (e->outcome != TASK_OUT_NONE) {
			char tmp[sizeof(rec.error) + 32];

			rec.phase = BACKUP_FAILED;
			snprintf(tmp, sizeof(tmp), "%s: %s", task_outcome_name(e->outcome), e->why);
			copy_line(rec.error, sizeof(rec.error), tmp);
		}
		if (e->outcome != TASK_OUT_NONE) {
			rec.finished_at = now_s(b);
			r = backup_rec_put(b->st, e->vmid, &rec);
		} else {
			/* not decided here (blocked, stopped, still in flight):
			 * status settles it from the idempotency store */
			r = resolve_running(b, e->vmid, &rec);
		}
	}
	pthread_mutex_unlock(&b->mu);
	if (r && r != FH_ERR_NOT_FOUND)
		log_event(LOG_ERROR, "backup.record_failed", "job_id", e->job_id, "error", fh_strerror(r), NULL);
	if (e->outcome == TASK_OUT_EXECUTED)
		stat_add(b, &b->s.done, 1);
	else if (e->outcome != TASK_OUT_NONE)
		stat_add(b, &b->s.failed, 1);
	log_event(success ? LOG_INFO : LOG_WARN, "backup.finished", "job_id", e->job_id, "outcome",
		  task_outcome_name(e->outcome), "why", e->why, NULL);
	if (success)
		do_retention(b, e->vmid);
}

static void *worker(void *arg)
{
	struct backup *b = arg;

	pthread_mutex_lock(&b->qmu);
	for (;;) {
		struct event *e;

		while (!b->head && !b->stop) {
			b->busy = false;
			pthread_cond_broadcast(&b->idle_cv);
			pthread_cond_wait(&b->qcv, &b->qmu);
		}
		if (b->stop)
			break;
		e = b->head;
		b->head = e->next;
		if (!b->head)
			b->tail = NULL;
		b->nev--;
		b->busy = true;
		if (e->kind == EV_PROBE)
			b->probing = e->vmid;
		pthread_mutex_unlock(&b->qmu);
		if (e->kind == EV_DONE)
			apply_done(b, e);
		else if (e->kind == EV_PROBE)
			do_probe(b, e->vmid);
		else if (e->kind == EV_PRUNED)
			stat_add(b, e->outcome == TASK_OUT_EXECUTED ? &b->s.prunes_done : &b->s.prune_errors, 1);
		free(e);
		pthread_mutex_lock(&b->qmu);
		b->probing = 0;
		pthread_cond_broadcast(&b->idle_cv);
	}
	b->busy = false;
	pthread_cond_broadcast(&b->idle_cv);
	pthread_mutex_unlock(&b->qmu);
	return NULL;
}

void backup_wait_idle(struct backup *b)
{
	pthread_mutex_lock(&b->qmu);
	while ((b->head || b->busy) && !b->stop)
		pthread_cond_wait(&b->idle_cv, &b->qmu);
	pthread_mutex_unlock(&b->qmu);
}

void backup_stats(struct backup *b, struct backup_stats *out)
{
	pthread_mutex_lock(&b->qmu);
	*out = b->s;
	pthread_mutex_unlock(&b->qmu);
}

/* ---- life */

static int copy_policy(struct backup *b, const struct cfg *c, char *why, size_t whylen)
{
	size_t i;

	b->enabled = c->backup.enabled;
	if (c->backup.storage && strlen(c->backup.storage) >= sizeof(b->storage)) {
		snprintf(why, whylen, "backup.storage: too long");
		return FH_ERR_CONFIG;
	}
	copy(b->storage, sizeof(b->storage), c->backup.storage);
	copy(b->mode, sizeof(b->mode), c->backup.mode ? c->backup.mode : "snapshot");
	copy(b->compress, sizeof(b->compress), c->backup.compress ? c->backup.compress : "zstd");
	b->interval_seconds = c->backup.interval_seconds > 0 ? c->backup.interval_seconds : 86400;
	b->keep_last = c->backup.keep_last > 0 ? c->backup.keep_last : 7;
	if (c->backup.nguests > CFG_MAX_BACKUP_GUESTS || c->backup.ngolden > CFG_MAX_GOLDEN) {
		snprintf(why, whylen, "backup.guests or backup.golden_archives over their caps");
		return FH_ERR_CONFIG;
	}
	b->gp = calloc(c->backup.nguests ? c->backup.nguests : 1, sizeof(*b->gp));
	b->golden = calloc(c->backup.ngolden + 1, sizeof(*b->golden));
	if (!b->gp || !b->golden)
		return FH_ERR_NOMEM;
	for (i = 0; i < c->backup.nguests; i++) {
		const struct cfg_backup_guest *g = &c->backup.guests[i];
		if (i && g->vmid <= c->backup.guests[i - 1].vmid) {
			snprintf(why, whylen, "backup.guests: not sorted by vmid");
			return FH_ERR_CONFIG;
		}
		if (g->storage && strlen(g->storage) >= sizeof(b->gp[i].storage)) {
			snprintf(why, whylen, "backup.guests: %d.storage: too long", g->vmid);
			return FH_ERR_CONFIG;
		}
		b->gp[i].vmid = g->vmid;
		b->gp[i].enabled = g->enabled;
		b->gp[i].interval_seconds = g->interval_seconds;
		b->gp[i].keep_last = g->keep_last;
		copy(b->gp[i].storage, sizeof(b->gp[i].storage), g->storage);
	}
	b->ngp = c->backup.nguests;
	for (i = 0; i < c->backup.ngolden; i++) {
		b->golden[i] = strdup(c->backup.golden_archives[i]);
		if (!b->golden[i])
			return FH_ERR_NOMEM;
		b->ngolden = i + 1;
	}
	return 0;
}

static void free_struct(struct backup *b)
{
	size_t i;

	pve_client_free(b->pc);
	for (i = 0; i < b->ngolden; i++)
		free(b->golden[i]);
	free(b->golden);
	free(b->gp);
	free(b->live);
	pthread_mutex_destroy(&b->mu);
	pthread_mutex_destroy(&b->qmu);
	pthread_cond_destroy(&b->qcv);
	pthread_cond_destroy(&b->idle_cv);
	free(b);
}

int backup_new(const struct backup_opts *o, struct backup **out, char *why, size_t whylen)
{
	struct backup *b;
	struct pve_err e;
	int r;

	if (!o || !o->st || !o->recon || !o->pve || !o->cfg || !o->host_id || !o->host_id[0] ||
	    strlen(o->host_id) >= sizeof(b->host_id) || o->probe_wait_ms < 0 || o->probe_wait_ms > PROBE_WAIT_MAX) {
		snprintf(why, whylen, "backup options incomplete or out of range");
		return FH_ERR_INVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return FH_ERR_NOMEM;
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->qmu, NULL);
	pthread_cond_init(&b->qcv, NULL);
	pthread_cond_init(&b->idle_cv, NULL);
	b->st = o->st;
	b->recon = o->recon;
	copy(b->host_id, sizeof(b->host_id), o->host_id);
	b->probe_wait_ms = o->probe_wait_ms ? o->probe_wait_ms : PROBE_WAIT_DEFAULT;
	b->clock = o->clock;
	b->clock_ctx = o->clock_ctx;
	r = copy_policy(b, o->cfg, why, whylen);
	if (r)
		goto fail;
	memset(&e, 0, sizeof(e));
	r = pve_client_new(o->pve, &b->pc, &e);
	if (r) {
		snprintf(why, whylen, "proxmox: %s", e.reason);
		goto fail;
	}
	if (pthread_create(&b->th, NULL, worker, b)) {
		snprintf(why, whylen, "cannot start the backup worker");
		r = FH_ERR_NOMEM;
		goto fail;
	}
	b->started = true;
	*out = b;
	return 0;
fail:
	free_struct(b);
	return r;
}

void backup_stop(struct backup *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->qmu);
	b->stop = true;
	pthread_cond_broadcast(&b->qcv);
	pthread_cond_broadcast(&b->idle_cv);
	pthread_mutex_unlock(&b->qmu);
	pve_cancel(b->pc);
	if (b->started)
		pthread_join(b->th, NULL);
	b->started = false;
}

void backup_free(struct backup *b)
{
	struct event *e;

	if (!b)
		return;
	backup_stop(b);
	while ((e = b->head)) {
		b->head = e->next;
		free(e);
	}
	free_struct(b);
}
