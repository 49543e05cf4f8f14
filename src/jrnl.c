/* jrnl.c — the in-flight operation journal; see jrnl.h.
 *
 * Record (STORE_DB_JRNL value), version 1, integers big-endian:
 *   u8 version, u8 source, u8 state, u8 outcome, u32 flags,
 *   i64 vmid, i64 created_at, i64 updated_at, i64 closed_at,
 *   7 strings as u16 length + bytes: job_id, op, params, signer_key_id,
 *   upid, reason, text;
 *   u8 nhist, then nhist times (u8 event, i64 at).
 * Decoding checks every length against its cap, every enum, that nothing
 * trails, and that the stored state is the replay of the stored history
 * (task_replay): a record that disagrees with itself is FH_ERR_DECODE.
 *
 * Every write function validates and reads first, then writes: an error it
 * decides itself (INVAL, NOT_FOUND, TASK_EVENT, TOOBIG, DECODE) leaves the
 * transaction untouched and not sticky.
 *
 * Job records (jrnl.h "multi-step jobs") live in STORE_DB_JRNL_OPEN under
 * the 9-byte key BE64 first-step id || 'J', which sorts right after that
 * entry's own 8-byte key: the in-flight walk steps over them, the job walk
 * steps over the entries' keys. Their record is decoded with the same
 * bounded reader (every length, enum, range and step invariant checked).
 */
#include "jrnl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "task.h"
#include "utf8.h"

#define REC_VERSION 1
#define REC_MAX 8192           /* > every field at its cap */
#define SEQ_NEXT "jrnl_next"
#define SEQ_CLOSED "jrnl_closed"
#define SEQ_OPEN "jrnl_open"
#define JOB_VERSION 1
#define JOB_REC_MAX (64 + 2 * (2 + JRNL_JOB_ID_MAX) + \
                     JRNL_JOB_STEPS_MAX * (2 + JRNL_OP_MAX + 8 + 4 + 8 + 2 + JRNL_PARAMS_MAX))
#define JOB_TAG 'J'            /* jrnl_open key BE64 id || JOB_TAG: a job record */

/* ---------------------------------------------------------------- helpers */

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* strlen bounded by the array: SIZE_MAX when s has no NUL in [0, cap]. */
static size_t slen(const char *s, size_t cap)
{
	const char *z = memchr(s, '\0', cap + 1);

	return z ? (size_t)(z - s) : SIZE_MAX;
}

/* Printable ASCII (0x20..0x7e). */
static bool printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static bool name_chars(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* ----------------------------------------------------------- the record */

struct wr {
	unsigned char *b;
	size_t cap, n;
	bool over;
};

static void w_bytes(struct wr *w, const void *p, size_t n)
{
	if (w->over || n > w->cap - w->n) {
		w->over = true;
		return;
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_u8(struct wr *w, unsigned v)
{
	unsigned char c = (unsigned char)v;

	w_bytes(w, &c, 1);
}

static void w_u32(struct wr *w, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 8), (unsigned char)v };

	w_bytes(w, b, 4);
}

static void w_i64(struct wr *w, int64_t v)
{
	unsigned char b[8];

	store_be64_put(b, (uint64_t)v);
	w_bytes(w, b, 8);
}

static void w_str(struct wr *w, const char *s)
{
	size_t n = strlen(s);
	unsigned char b[2] = { (unsigned char)(n >> 8), (unsigned char)n };

	if (n > 0xffff) {
		w->over = true;
		return;
	}
	w_bytes(w, b, 2);
	w_bytes(w, s, n);
}

struct rd {
	const unsigned char *p;
	size_t n;
	bool bad;
};

static const unsigned char *r_take(struct rd *r, size_t n)
{
	const unsigned char *q;

	if (r->bad || n > r->n) {
		r->bad = true;
		return NULL;
	}
	q = r->p;
	r->p += n;
	r->n -= n;
	return q;
}

static unsigned r_u8(struct rd *r)
{
	const unsigned char *q = r_take(r, 1);

	return q ? q[0] : 0;
}

static uint32_t r_u32(struct rd *r)
{
	const unsigned char *q = r_take(r, 4);

	return q ? ((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]) : 0;
}

static int64_t r_i64(struct rd *r)
{
	const unsigned char *q = r_take(r, 8);

	return q ? (int64_t)store_be64_get(q) : 0;
}

/* A string of at most cap bytes, no NUL, into dst[cap + 1]. */
static void r_str(struct rd *r, char *dst, size_t cap)
{
	const unsigned char *q = r_take(r, 2), *s;
	size_t n;

	dst[0] = '\0';
	if (!q)
		return;
	n = (size_t)q[0] << 8 | q[1];
	if (n > cap) {
		r->bad = true;
		return;
	}
	s = r_take(r, n);
	if (!s || memchr(s, '\0', n)) {
		r->bad = true;
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int encode(const struct jrnl_entry *e, struct wr *w)
{
	size_t i;

	w->n = 0;
	w->over = false;
	w_u8(w, REC_VERSION);
	w_u8(w, (unsigned)e->source);
	w_u8(w, (unsigned)e->state);
	w_u8(w, (unsigned)e->outcome);
	w_u32(w, e->flags);
	w_i64(w, e->vmid);
	w_i64(w, e->created_at);
	w_i64(w, e->updated_at);
	w_i64(w, e->closed_at);
	w_str(w, e->job_id);
	w_str(w, e->op);
	w_str(w, e->params);
	w_str(w, e->signer_key_id);
	w_str(w, e->upid);
	w_str(w, e->reason);
	w_str(w, e->text);
	w_u8(w, (unsigned)e->nhist);
	for (i = 0; i < e->nhist; i++) {
		w_u8(w, (unsigned)e->hist[i].ev);
		w_i64(w, e->hist[i].at);
	}
	return w->over ? FH_ERR_INTERNAL : 0;
}

static int decode(uint64_t id, const void *p, size_t n, struct jrnl_entry *out)
{
	struct rd r = { p, n, false };
	struct jrnl_entry *e;
	enum task_event evs[JRNL_HIST_MAX];
	enum task_state replayed;
	unsigned src, st, oc, ev;
	size_t i;
	int rc = FH_ERR_DECODE;

	e = calloc(1, sizeof *e);
	if (!e)
		return FH_ERR_NOMEM;
	if (r_u8(&r) != REC_VERSION)
		goto out;
	src = r_u8(&r);
	st = r_u8(&r);
	oc = r_u8(&r);
	e->flags = r_u32(&r);
	e->vmid = r_i64(&r);
	e->created_at = r_i64(&r);
	e->updated_at = r_i64(&r);
	e->closed_at = r_i64(&r);
	r_str(&r, e->job_id, JRNL_JOB_ID_MAX);
	r_str(&r, e->op, JRNL_OP_MAX);
	r_str(&r, e->params, JRNL_PARAMS_MAX);
	r_str(&r, e->signer_key_id, JRNL_KEY_ID_MAX);
	r_str(&r, e->upid, JRNL_UPID_MAX);
	r_str(&r, e->reason, JRNL_REASON_MAX);
	r_str(&r, e->text, JRNL_TEXT_MAX);
	e->nhist = r_u8(&r);
	if (r.bad || e->nhist > JRNL_HIST_MAX)
		goto out;
	for (i = 0; i < e->nhist; i++) {
		ev = r_u8(&r);
		e->hist[i].at = r_i64(&r);
		if (!task_event_valid((int)ev))
			r.bad = true;
		e->hist[i].ev = (enum task_event)ev;
		evs[i] = (enum task_event)ev;
	}
	if (r.bad || r.n != 0)
		goto out;
	if (src < JRNL_SRC_DESIRED || src >= JRNL_SRC__END || !task_state_valid((int)st) ||
	    !task_outcome_valid((int)oc) || (e->flags & ~JRNL_F__ALL))
		goto out;
	e->source = (enum jrnl_source)src;
	e->state = (enum task_state)st;
	e->outcome = (enum task_outcome)oc;
	if (task_replay(evs, e->nhist, &replayed) != 0 || replayed != e->state)
		goto out;
	if (task_state_terminal(e->state) != (e->outcome != TASK_OUT_NONE))
		goto out;
	e->id = id;
	memcpy(out, e, sizeof *e);
	rc = 0;
out:
	free(e);
	return rc;
}

/* ------------------------------------------------------------- reading */

static void id_key(unsigned char k[8], uint64_t id)
{
	store_be64_put(k, id);
}

int jrnl_get_txn(struct store_txn *t, uint64_t id, struct jrnl_entry *out)
{
	unsigned char k[8];
	const void *v;
	size_t vl;
	int r;

	if (!t || !out || id == 0)
		return FH_ERR_INVAL;
	id_key(k, id);
	r = store_get(t, STORE_DB_JRNL, k, sizeof k, &v, &vl);
	if (r)
		return r;
	return decode(id, v, vl, out);
}

int jrnl_get(struct store *st, uint64_t id, struct jrnl_entry *out)
{
	struct store_txn *t = NULL;
	int r;

	if (!st || !out || id == 0)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = jrnl_get_txn(t, id, out);
	store_txn_abort(t);
	return r;
}

/* ------------------------------------------------------------- writing */

static int put_entry(struct store_txn *t, const struct jrnl_entry *e)
{
	struct wr w = { malloc(REC_MAX), REC_MAX, 0, false };
	unsigned char k[8];
	int r;

	if (!w.b)
		return FH_ERR_NOMEM;
	r = encode(e, &w);
	if (r == 0) {
		id_key(k, e->id);
		r = store_put(t, STORE_DB_JRNL, k, sizeof k, w.b, w.n);
	}
	free(w.b);
	return r;
}

static void vmid_key(unsigned char k[16], int64_t vmid, uint64_t id)
{
	store_be64_put(k, (uint64_t)vmid);
	store_be64_put(k + 8, id);
}

static int check_entry(const struct jrnl_entry *e)
{
	size_t n;

	if (e->source < JRNL_SRC_DESIRED || e->source >= JRNL_SRC__END)
		return FH_ERR_INVAL;
	n = slen(e->op, JRNL_OP_MAX);
	if (n == 0 || n == SIZE_MAX || !name_chars(e->op, n))
		return FH_ERR_INVAL;
	n = slen(e->job_id, JRNL_JOB_ID_MAX);
	if (n == SIZE_MAX || !printable(e->job_id, n))
		return FH_ERR_INVAL;
	n = slen(e->signer_key_id, JRNL_KEY_ID_MAX);
	if (n == SIZE_MAX || !printable(e->signer_key_id, n))
		return FH_ERR_INVAL;
	if (slen(e->params, JRNL_PARAMS_MAX) == SIZE_MAX)
		return FH_ERR_INVAL;
	if (e->vmid != JRNL_NO_VMID && (e->vmid < 1 || e->vmid > JRNL_VMID_MAX))
		return FH_ERR_INVAL;
	if (e->created_at < 0)
		return FH_ERR_INVAL;
	if (e->flags & ~JRNL_F__ALL)
		return FH_ERR_INVAL;
	if ((e->flags & JRNL_F_SCRATCH) && !(e->flags & JRNL_F_CREATES_GUEST))
		return FH_ERR_INVAL;
	if ((e->flags & (JRNL_F_CREATES_GUEST | JRNL_F_DESTROYS_GUEST)) && e->vmid == JRNL_NO_VMID)
		return FH_ERR_INVAL;
	return 0;
}

int jrnl_intent(struct store_txn *t, const struct jrnl_entry *in, uint64_t *id)
{
	struct jrnl_entry *e = NULL;
	unsigned char vk[16];
	uint64_t next = 0, open_n = 0;
	int r = FH_ERR_INTERNAL;

	if (!t || !in || !id)
		return FH_ERR_INVAL;
	r = check_entry(in);
	if (r)
		return r;
	e = malloc(sizeof *e);
	if (!e)
		return FH_ERR_NOMEM;
	r = store_seq_get(t, SEQ_NEXT, 1, &next);
	if (r == 0)
		r = store_seq_get(t, SEQ_OPEN, 0, &open_n);
	if (r)
		goto out;
	if (next == 0 || next == UINT64_MAX) {
		r = FH_ERR_DECODE;
		goto out;
	}
	memcpy(e, in, sizeof *e);
	e->id = next;
	e->state = TASK_INTENT;
	e->nhist = 1;
	memset(e->hist, 0, sizeof e->hist);
	if (e->created_at == 0)
		e->created_at = now_s();
	e->hist[0].ev = TASK_EV_INTENT;
	e->hist[0].at = e->created_at;
	e->updated_at = e->created_at;
	e->closed_at = 0;
	e->upid[0] = '\0';
	e->outcome = TASK_OUT_NONE;
	e->reason[0] = '\0';
	e->text[0] = '\0';

	r = put_entry(t, e);
	if (r == 0) {
		unsigned char k[8];

		id_key(k, e->id);
		r = store_put(t, STORE_DB_JRNL_OPEN, k, sizeof k, NULL, 0);
	}
	if (r == 0 && (e->flags & (JRNL_F_CREATES_GUEST | JRNL_F_DESTROYS_GUEST))) {
		vmid_key(vk, e->vmid, e->id);
		r = store_put(t, STORE_DB_JRNL_VMID, vk, sizeof vk, NULL, 0);
	}
	if (r == 0)
		r = store_seq_put(t, SEQ_NEXT, next + 1);
	if (r == 0)
		r = store_seq_put(t, SEQ_OPEN, open_n + 1);
	if (r == 0)
		*id = next;
out:
	free(e);
	return r;
}

/* Loads entry id for an update (heap, caller frees). */
static int load(struct store_txn *t, uint64_t id, struct jrnl_entry **out)
{
	struct jrnl_entry *e;
	int r;

	if (!t || id == 0)
		return FH_ERR_INVAL;
	if (store_txn_err(t))
		return store_txn_err(t);
	e = malloc(sizeof *e);
	if (!e)
		return FH_ERR_NOMEM;
	r = jrnl_get_txn(t, id, e);
	if (r) {
		free(e);
		return r;
	}
	*out = e;
	return 0;
}

int jrnl_set_upid(struct store_txn *t, uint64_t id, const char *upid)
{
	struct jrnl_entry *e = NULL;
	size_t n;
	int r;

	if (!upid)
		return FH_ERR_INVAL;
	n = strlen(upid);
	if (n == 0 || n > JRNL_UPID_MAX || !printable(upid, n))
		return FH_ERR_INVAL;
	r = load(t, id, &e);
	if (r)
		return r;
	if (task_state_terminal(e->state)) {
		r = FH_ERR_INVAL;
	} else if (e->upid[0]) {
		r = strcmp(e->upid, upid) == 0 ? 0 : FH_ERR_INVAL;
	} else {
		memcpy(e->upid, upid, n + 1);
		e->updated_at = now_s();
		r = put_entry(t, e);
	}
	free(e);
	return r;
}

/* Feeds ev to e in memory (validated); terminal says whether it must end. */
static int feed(struct jrnl_entry *e, enum task_event ev, bool terminal)
{
	enum task_state to;
	int r = task_step(e->state, ev, &to);

	if (r)
		return r;
	if (task_state_terminal(to) != terminal)
		return FH_ERR_INVAL;
	if (e->nhist >= JRNL_HIST_MAX)
		return FH_ERR_TOOBIG;
	e->state = to;
	e->updated_at = now_s();
	e->hist[e->nhist].ev = ev;
	e->hist[e->nhist].at = e->updated_at;
	e->nhist++;
	return 0;
}

int jrnl_event(struct store_txn *t, uint64_t id, enum task_event ev)
{
	struct jrnl_entry *e = NULL;
	int r;

	r = load(t, id, &e);
	if (r)
		return r;
	r = feed(e, ev, false);
	if (r == 0)
		r = put_entry(t, e);
	free(e);
	return r;
}

int jrnl_close(struct store_txn *t, uint64_t id, enum task_event ev,
               enum task_outcome outcome, const char *reason, const char *text)
{
	struct jrnl_entry *e = NULL;
	unsigned char k[8];
	uint64_t open_n = 0, closed = 0;
	size_t n;
	int r;

	if (!task_outcome_valid((int)outcome) || outcome == TASK_OUT_NONE)
		return FH_ERR_INVAL;
	n = reason ? strlen(reason) : 0;
	if (n > JRNL_REASON_MAX || (n && !name_chars(reason, n)))
		return FH_ERR_INVAL;
	r = load(t, id, &e);
	if (r)
		return r;
	r = feed(e, ev, true);
	if (r == 0)
		r = store_seq_get(t, SEQ_OPEN, 0, &open_n);
	if (r == 0)
		r = store_seq_get(t, SEQ_CLOSED, 0, &closed);
	if (r)
		goto out;
	e->outcome = outcome;
	memcpy(e->reason, reason ? reason : "", n + 1);
	utf8_clean(e->text, JRNL_TEXT_MAX, text);
	e->closed_at = e->updated_at;
	r = put_entry(t, e);
	if (r == 0) {
		id_key(k, id);
		r = store_del(t, STORE_DB_JRNL_OPEN, k, sizeof k);
		if (r == FH_ERR_NOT_FOUND)
			r = 0;   /* index lost: the record is what counts */
	}
	if (r == 0)
		r = store_seq_put(t, SEQ_OPEN, open_n ? open_n - 1 : 0);
	if (r == 0)
		r = store_seq_put(t, SEQ_CLOSED, closed + 1);
out:
	free(e);
	return r;
}

/* ----------------------------------------------------------- iterators */

/* Reads up to JRNL_ITER_BATCH entries with id >= *from, walking `db`
 * (STORE_DB_JRNL or STORE_DB_JRNL_OPEN; keys BE64 ids). *n read; *from
 * moves past the last id read; *done when the walk reached the end. */
static int read_batch(struct store *st, enum store_db db, uint64_t *from, struct jrnl_entry *es,
                      size_t *n, bool *done)
{
	struct store_txn *t = NULL;
	const void *k, *v;
	size_t kl, vl, got = 0;
	unsigned char key[8];
	uint64_t pos = *from, id;
	int r;

	*done = false;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	while (got < JRNL_ITER_BATCH) {
		id_key(key, pos);
		r = store_seek(t, db, key, sizeof key, &k, &kl, &v, &vl);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;
			*done = true;
			break;
		}
		if (r)
			break;
		if (db == STORE_DB_JRNL_OPEN && kl == 9 && ((const unsigned char *)k)[8] == JOB_TAG) {
			/* a job record: not an entry */
			id = store_be64_get(k);
			if (id == UINT64_MAX) {
				*done = true;
				break;
			}
			pos = id + 1;
			continue;
		}
		if (kl != 8) {
			r = FH_ERR_DECODE;
			break;
		}
		id = store_be64_get(k);
		if (db == STORE_DB_JRNL)
			r = decode(id, v, vl, &es[got]);
		else
			r = jrnl_get_txn(t, id, &es[got]);
		if (r == FH_ERR_NOT_FOUND)
			r = FH_ERR_DECODE;   /* index without its record */
		if (r)
			break;
		got++;
		if (id == UINT64_MAX) {
			*done = true;
			break;
		}
		pos = id + 1;
	}
	store_txn_abort(t);
	if (r)
		return r;
	*from = pos;
	*n = got;
	return 0;
}

static int walk(struct store *st, enum store_db db, jrnl_fn fn, void *arg)
{
	struct jrnl_entry *es;
	uint64_t from = 1;
	size_t n, i;
	bool done = false;
	int r = 0;

	if (!st || !fn)
		return FH_ERR_INVAL;
	es = malloc(JRNL_ITER_BATCH * sizeof *es);
	if (!es)
		return FH_ERR_NOMEM;
	while (!done && r == 0) {
		r = read_batch(st, db, &from, es, &n, &done);
		for (i = 0; r == 0 && i < n; i++)
			r = fn(&es[i], arg);
	}
	free(es);
	return r;
}

int jrnl_in_flight(struct store *st, jrnl_fn fn, void *arg)
{
	return walk(st, STORE_DB_JRNL_OPEN, fn, arg);
}

int jrnl_foreach(struct store *st, jrnl_fn fn, void *arg)
{
	return walk(st, STORE_DB_JRNL, fn, arg);
}

/* ----------------------------------------------------------- provenance */

static bool was_posted(const struct jrnl_entry *e)
{
	size_t i;

	for (i = 0; i < e->nhist; i++)
		if (e->hist[i].ev == TASK_EV_POSTED)
			return true;
	return false;
}

int jrnl_provenance_txn(struct store_txn *t, int64_t vmid, struct jrnl_provenance *out)
{
	struct jrnl_provenance p;
	struct jrnl_entry *e = NULL;
	unsigned char key[16];
	const void *k, *v;
	size_t kl, vl;
	uint64_t id = 0;
	int r;

	if (!t || !out || vmid < 1 || vmid > JRNL_VMID_MAX)
		return FH_ERR_INVAL;
	e = malloc(sizeof *e);
	if (!e)
		return FH_ERR_NOMEM;
	memset(&p, 0, sizeof p);
	for (;;) {
		vmid_key(key, vmid, id);
		r = store_seek(t, STORE_DB_JRNL_VMID, key, sizeof key, &k, &kl, &v, &vl);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;
			break;
		}
		if (r)
			break;
		if (kl != 16) {
			r = FH_ERR_DECODE;
			break;
		}
		if (memcmp(k, key, 8) != 0)
			break;   /* past this vmid */
		id = store_be64_get((const unsigned char *)k + 8);
		r = jrnl_get_txn(t, id, e);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;   /* index left behind: nothing to learn */
		} else if (r) {
			break;
		} else {
			/* a destroy that may have happened ends what came before */
			if ((e->flags & JRNL_F_DESTROYS_GUEST) && was_posted(e))
				memset(&p, 0, sizeof p);
			if (e->flags & JRNL_F_CREATES_GUEST) {
				memset(&p, 0, sizeof p);
				if (e->state == TASK_SUCCEEDED) {
					p.created_by_agent = true;
					p.scratch = (e->flags & JRNL_F_SCRATCH) != 0;
					p.create_id = e->id;
					memcpy(p.create_job_id, e->job_id, sizeof p.create_job_id);
				}
			}
		}
		if (id == UINT64_MAX)
			break;
		id++;
	}
	free(e);
	if (r == 0)
		*out = p;
	return r;
}

int jrnl_provenance(struct store *st, int64_t vmid, struct jrnl_provenance *out)
{
	struct store_txn *t = NULL;
	int r;

	if (!st || !out || vmid < 1 || vmid > JRNL_VMID_MAX)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = jrnl_provenance_txn(t, vmid, out);
	store_txn_abort(t);
	return r;
}

/* -------------------------------------------------------------- pruning */

/* One transaction: deletes up to max closed entries from *pos on while
 * more than keep are kept. *n deleted, *done when nothing is left to do. */
static int prune_once(struct store *st, uint64_t keep, unsigned max, uint64_t *pos,
                      unsigned *n, bool *done)
{
	struct store_txn *t = NULL;
	struct jrnl_entry *e = NULL;
	unsigned char key[8], vk[16];
	const void *k, *v;
	size_t kl, vl;
	uint64_t closed = 0, id, at = *pos;
	unsigned del = 0;
	int r;

	*done = false;
	e = malloc(sizeof *e);
	if (!e)
		return FH_ERR_NOMEM;
	r = store_txn_begin(st, true, &t);
	if (r) {
		free(e);
		return r;
	}
	r = store_seq_get(t, SEQ_CLOSED, 0, &closed);
	while (r == 0 && del < max) {
		if (closed <= keep) {
			*done = true;
			break;
		}
		id_key(key, at);
		r = store_seek(t, STORE_DB_JRNL, key, sizeof key, &k, &kl, &v, &vl);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;
			*done = true;   /* the counter is ahead of the records */
			break;
		}
		if (r)
			break;
		if (kl != 8) {
			r = FH_ERR_DECODE;
			break;
		}
		id = store_be64_get(k);
		r = decode(id, v, vl, e);
		if (r)
			break;
		at = id + 1;
		if (!task_state_terminal(e->state))
			continue;
		id_key(key, id);
		r = store_del(t, STORE_DB_JRNL, key, sizeof key);
		if (r == 0 && (e->flags & (JRNL_F_CREATES_GUEST | JRNL_F_DESTROYS_GUEST))) {
			vmid_key(vk, e->vmid, id);
			r = store_del(t, STORE_DB_JRNL_VMID, vk, sizeof vk);
			if (r == FH_ERR_NOT_FOUND)
				r = 0;
		}
		if (r)
			break;
		closed--;
		del++;
	}
	if (r == 0 && del)
		r = store_seq_put(t, SEQ_CLOSED, closed);
	if (r == 0)
		r = store_txn_commit(t);
	else
		store_txn_abort(t);
	free(e);
	if (r)
		return r;
	*pos = at;
	*n = del;
	return 0;
}

int jrnl_prune(struct store *st, uint64_t keep_closed, unsigned max_per_txn, uint64_t *pruned)
{
	uint64_t pos = 1, total = 0;
	unsigned n;
	bool done = false;
	int r = 0;

	if (!st || max_per_txn == 0)
		return FH_ERR_INVAL;
	while (!done) {
		r = prune_once(st, keep_closed, max_per_txn, &pos, &n, &done);
		if (r)
			return r;
		total += n;
	}
	if (pruned)
		*pruned = total;
	return 0;
}

/* ------------------------------------------------------ multi-step jobs */

static void job_key(unsigned char k[9], uint64_t id)
{
	store_be64_put(k, id);
	k[8] = JOB_TAG;
}

static bool printable_z(const char *s, size_t cap)
{
	size_t n = slen(s, cap);

	return n != SIZE_MAX && printable(s, n);
}

/* The rules of jrnl.h for a job record (id included). */
static int check_job(const struct jrnl_job *j)
{
	uint64_t last = 0;
	size_t i, n;

	if (j->id == 0 || j->source < JRNL_SRC_DESIRED || j->source >= JRNL_SRC__END)
		return FH_ERR_INVAL;
	if (j->nsteps < 2 || j->nsteps > JRNL_JOB_STEPS_MAX || j->cur >= j->nsteps)
		return FH_ERR_INVAL;
	if (j->outcome != TASK_OUT_NONE && j->outcome != TASK_OUT_EXECUTED && j->outcome != TASK_OUT_FAILED)
		return FH_ERR_INVAL;
	if (j->reason > 0 || j->reason <= FH_ERR__LAST)
		return FH_ERR_INVAL;
	if (j->idem_expires_at <= 0 || j->created_at < 0)
		return FH_ERR_INVAL;
	if (!printable_z(j->job_id, JRNL_JOB_ID_MAX) || !printable_z(j->op_id, JRNL_OP_ID_MAX))
		return FH_ERR_INVAL;
	for (i = 0; i < j->nsteps; i++) {
		const struct jrnl_job_step *s = &j->steps[i];

		n = slen(s->op, JRNL_OP_MAX);
		if (n == 0 || n == SIZE_MAX || !name_chars(s->op, n))
			return FH_ERR_INVAL;
		if (s->vmid != JRNL_NO_VMID && (s->vmid < 1 || s->vmid > JRNL_VMID_MAX))
			return FH_ERR_INVAL;
		if (slen(s->params, JRNL_PARAMS_MAX) == SIZE_MAX)
			return FH_ERR_INVAL;
		if (s->flags & ~(JRNL_F__ALL | JRNL_JOB_STEP_ALWAYS))
			return FH_ERR_INVAL;
		if ((i == 0 && s->entry_id != j->id) || (i > j->cur && s->entry_id != 0))
			return FH_ERR_INVAL;
		if (s->entry_id) {
			if (s->entry_id <= last && i > 0)
				return FH_ERR_INVAL;
			last = s->entry_id;
		}
	}
	return 0;
}

static int encode_job(const struct jrnl_job *j, struct wr *w)
{
	size_t i;

	w->n = 0;
	w->over = false;
	w_u8(w, JOB_VERSION);
	w_u8(w, (unsigned)j->source);
	w_u8(w, (unsigned)j->nsteps);
	w_u8(w, (unsigned)j->cur);
	w_u8(w, (unsigned)j->outcome);
	w_u32(w, (uint32_t)j->reason);
	w_i64(w, j->idem_expires_at);
	w_i64(w, j->created_at);
	w_i64(w, j->updated_at);
	w_str(w, j->job_id);
	w_str(w, j->op_id);
	for (i = 0; i < j->nsteps; i++) {
		w_str(w, j->steps[i].op);
		w_i64(w, j->steps[i].vmid);
		w_u32(w, j->steps[i].flags);
		w_i64(w, (int64_t)j->steps[i].entry_id);
		w_str(w, j->steps[i].params);
	}
	return w->over ? FH_ERR_INTERNAL : 0;
}

static int decode_job(uint64_t id, const void *p, size_t n, struct jrnl_job *out)
{
	struct rd r = { p, n, false };
	struct jrnl_job *j;
	unsigned src, ns, cur, oc;
	size_t i;
	int rc = FH_ERR_DECODE;

	if (n > JOB_REC_MAX)
		return FH_ERR_DECODE;
	j = calloc(1, sizeof *j);
	if (!j)
		return FH_ERR_NOMEM;
	if (r_u8(&r) != JOB_VERSION)
		goto out;
	src = r_u8(&r);
	ns = r_u8(&r);
	cur = r_u8(&r);
	oc = r_u8(&r);
	j->reason = (int)(int32_t)r_u32(&r);
	j->idem_expires_at = r_i64(&r);
	j->created_at = r_i64(&r);
	j->updated_at = r_i64(&r);
	r_str(&r, j->job_id, JRNL_JOB_ID_MAX);
	r_str(&r, j->op_id, JRNL_OP_ID_MAX);
	if (r.bad || ns < 2 || ns > JRNL_JOB_STEPS_MAX || !task_outcome_valid((int)oc))
		goto out;
	for (i = 0; i < ns; i++) {
		struct jrnl_job_step *s = &j->steps[i];

		r_str(&r, s->op, JRNL_OP_MAX);
		s->vmid = r_i64(&r);
		s->flags = r_u32(&r);
		s->entry_id = (uint64_t)r_i64(&r);
		r_str(&r, s->params, JRNL_PARAMS_MAX);
	}
	if (r.bad || r.n != 0 || src < JRNL_SRC_DESIRED || src >= JRNL_SRC__END)
		goto out;
	j->id = id;
	j->source = (enum jrnl_source)src;
	j->nsteps = ns;
	j->cur = cur;
	j->outcome = (enum task_outcome)oc;
	if (check_job(j))
		goto out;
	memcpy(out, j, sizeof *j);
	rc = 0;
out:
	free(j);
	return rc;
}

int jrnl_job_put(struct store_txn *t, const struct jrnl_job *in)
{
	struct jrnl_job *j;
	struct wr w = { NULL, JOB_REC_MAX, 0, false };
	unsigned char k[9];
	int r;

	if (!t || !in)
		return FH_ERR_INVAL;
	if (store_txn_err(t))
		return store_txn_err(t);
	r = check_job(in);
	if (r)
		return r;
	j = malloc(sizeof *j);
	w.b = malloc(JOB_REC_MAX);
	if (!j || !w.b) {
		free(j);
		free(w.b);
		return FH_ERR_NOMEM;
	}
	memcpy(j, in, sizeof *j);
	j->updated_at = now_s();
	if (j->created_at == 0)
		j->created_at = j->updated_at;
	r = encode_job(j, &w);
	if (r == 0) {
		job_key(k, j->id);
		r = store_put(t, STORE_DB_JRNL_OPEN, k, sizeof k, w.b, w.n);
	}
	free(j);
	free(w.b);
	return r;
}

int jrnl_job_get_txn(struct store_txn *t, uint64_t id, struct jrnl_job *out)
{
	unsigned char k[9];
	const void *v;
	size_t vl;
	int r;

	if (!t || !out || id == 0)
		return FH_ERR_INVAL;
	job_key(k, id);
	r = store_get(t, STORE_DB_JRNL_OPEN, k, sizeof k, &v, &vl);
	if (r)
		return r;
	return decode_job(id, v, vl, out);
}

int jrnl_job_get(struct store *st, uint64_t id, struct jrnl_job *out)
{
	struct store_txn *t = NULL;
	int r;

	if (!st || !out || id == 0)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = jrnl_job_get_txn(t, id, out);
	store_txn_abort(t);
	return r;
}

int jrnl_job_del(struct store_txn *t, uint64_t id)
{
	unsigned char k[9];

	if (!t || id == 0)
		return FH_ERR_INVAL;
	if (store_txn_err(t))
		return store_txn_err(t);
	job_key(k, id);
	return store_del(t, STORE_DB_JRNL_OPEN, k, sizeof k);
}

/* The next job key at or after id (in jrnl_open, entries' 8-byte keys are
 * stepped over): *found false when there is none. */
static int seek_job(struct store_txn *t, uint64_t id, uint64_t *at, const void **v, size_t *vl, bool *found)
{
	unsigned char key[9];
	const void *k;
	size_t kl;
	int r;

	*found = false;
	for (;;) {
		job_key(key, id);
		r = store_seek(t, STORE_DB_JRNL_OPEN, key, sizeof key, &k, &kl, v, vl);
		if (r == FH_ERR_NOT_FOUND)
			return 0;
		if (r)
			return r;
		if (kl != 8 && kl != 9)
			return FH_ERR_DECODE;
		id = store_be64_get(k);
		if (kl == 9) {
			if (((const unsigned char *)k)[8] != JOB_TAG)
				return FH_ERR_DECODE;
			*at = id;
			*found = true;
			return 0;
		}
		/* an entry's key (id > the one sought): its job key, if any, is next */
	}
}

/* Counts the job records, and those with no step in flight (a record that
 * does not decode counts as waiting: recovery must look at it). */
static int count_jobs(struct store_txn *t, uint64_t *open, uint64_t *waiting)
{
	struct jrnl_job *j = malloc(sizeof *j);
	const void *v;
	size_t vl;
	uint64_t id = 0, at = 0;
	bool found;
	int r;

	if (!j)
		return FH_ERR_NOMEM;
	*open = *waiting = 0;
	for (;;) {
		r = seek_job(t, id, &at, &v, &vl, &found);
		if (r || !found)
			break;
		(*open)++;
		r = decode_job(at, v, vl, j);
		if (r == FH_ERR_DECODE)
			(*waiting)++;
		else if (r)
			break;
		else if (j->steps[j->cur].entry_id == 0)
			(*waiting)++;
		r = 0;
		if (at == UINT64_MAX)
			break;
		id = at + 1;
	}
	free(j);
	return r;
}

int jrnl_jobs_open(struct store *st, jrnl_job_fn fn, void *arg)
{
	struct jrnl_job *js;
	struct store_txn *t = NULL;
	uint64_t ids[JRNL_JOB_ITER_BATCH], id = 1, at = 0;
	int rcs[JRNL_JOB_ITER_BATCH];
	size_t n, i;
	bool found = true, done = false;
	int r = 0;

	if (!st || !fn)
		return FH_ERR_INVAL;
	js = malloc(JRNL_JOB_ITER_BATCH * sizeof *js);
	if (!js)
		return FH_ERR_NOMEM;
	while (!done && r == 0) {
		const void *v;
		size_t vl;

		r = store_txn_begin(st, false, &t);
		if (r)
			break;
		for (n = 0; n < JRNL_JOB_ITER_BATCH;) {
			r = seek_job(t, id, &at, &v, &vl, &found);
			if (r || !found) {
				done = true;
				break;
			}
			ids[n] = at;
			rcs[n] = decode_job(at, v, vl, &js[n]);
			if (rcs[n] == FH_ERR_NOMEM) {
				r = FH_ERR_NOMEM;
				break;
			}
			n++;
			if (at == UINT64_MAX) {
				done = true;
				break;
			}
			id = at + 1;
		}
		store_txn_abort(t);
		for (i = 0; r == 0 && i < n; i++)
			r = fn(ids[i], rcs[i] ? NULL : &js[i], rcs[i], arg);
	}
	free(js);
	return r;
}

int jrnl_get_stats(struct store *st, struct jrnl_stats *out)
{
	struct store_txn *t = NULL;
	struct jrnl_stats s;
	int r;

	if (!st || !out)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	memset(&s, 0, sizeof s);
	r = store_seq_get(t, SEQ_NEXT, 1, &s.next_id);
	if (r == 0)
		r = store_seq_get(t, SEQ_CLOSED, 0, &s.closed);
	if (r == 0)
		r = store_seq_get(t, SEQ_OPEN, 0, &s.in_flight);
	if (r == 0)
		r = count_jobs(t, &s.jobs_open, &s.jobs_waiting);
	if (r == 0)
		s.in_flight += s.jobs_waiting;
	store_txn_abort(t);
	if (r == 0)
		*out = s;
	return r;
}

/* ---------------------------------------------------------------- names */

static const char *const source_names[JRNL_SRC__END] = {
	[JRNL_SRC_DESIRED] = "desired",
	[JRNL_SRC_SIGNED] = "signed",
	[JRNL_SRC_LOCALAPI] = "localapi",
	[JRNL_SRC_BACKUP] = "backup",
	[JRNL_SRC_PROVISION] = "provision",
	[JRNL_SRC_RESTORE_TEST] = "restore_test",
	[JRNL_SRC_SELFTEST] = "selftest",
};

const char *jrnl_source_name(enum jrnl_source s)
{
	if (s < JRNL_SRC_DESIRED || s >= JRNL_SRC__END)
		return "unknown";
	return source_names[s];
}

int jrnl_source_parse(const char *s, enum jrnl_source *out)
{
	int i;

	if (!s || !out)
		return FH_ERR_INVAL;
	for (i = JRNL_SRC_DESIRED; i < JRNL_SRC__END; i++)
		if (strcmp(s, source_names[i]) == 0) {
			*out = (enum jrnl_source)i;
			return 0;
		}
	return FH_ERR_INVAL;
}
