/* audit.c — the bounded audit log; see audit.h.
 *
 * Record (STORE_DB_AUDIT value), version 1, big-endian:
 *   u8 version, u8 decision, u8 outcome, i64 at, i64 guest_id,
 *   3 strings as u16 length + bytes: op, signer_key_id, reason.
 * Strings are checked on the way in (op [a-z0-9_], key id printable ASCII,
 * reason cleaned to UTF-8 without control bytes) and again on the way out.
 */
#include "audit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "utf8.h"
#include "opblob.h"

#define REC_VERSION 1
#define REC_MAX (3 + 16 + 6 + AUDIT_OP_MAX + AUDIT_KEY_ID_MAX + AUDIT_REASON_MAX)
#define SEQ_FIRST "audit_first"
#define SEQ_NEXT "audit_next"
#define ELEM_MAX 2048          /* one JSON element, escaped */

static bool op_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > AUDIT_OP_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool key_id_ok(const char *s, size_t n)
{
	size_t i;

	if (n > AUDIT_KEY_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static void put_str(unsigned char *b, size_t *n, const char *s)
{
	size_t l = strlen(s);

	b[(*n)++] = (unsigned char)(l >> 8);
	b[(*n)++] = (unsigned char)l;
	memcpy(b + *n, s, l);
	*n += l;
}

/* The log's live range [*first, *next) from its two counters (both start at
 * 1). Store errors, or FH_ERR_DECODE when next is below first. */
static int read_range(struct store_txn *t, uint64_t *first, uint64_t *next)
{
	int r = store_seq_get(t, SEQ_FIRST, 1, first);

	if (r == 0)
		r = store_seq_get(t, SEQ_NEXT, 1, next);
	if (r == 0 && *next < *first)
		r = FH_ERR_DECODE;
	return r;
}

int audit_append(struct store_txn *t, const struct audit_rec *r, uint64_t max_entries,
                 uint64_t *seq)
{
	unsigned char b[REC_MAX], k[8];
	char reason[AUDIT_REASON_MAX + 1];
	const char *kid;
	uint64_t first = 0, next = 0;
	size_t n = 0, opn, kidn;
	unsigned pruned = 0;
	int rc;

	if (!t || !r || !r->op)
		return FH_ERR_INVAL;
	if (max_entries == 0)
		max_entries = AUDIT_MAX_DEFAULT;
	kid = r->signer_key_id ? r->signer_key_id : "";
	opn = strnlen(r->op, AUDIT_OP_MAX + 1);
	kidn = strnlen(kid, AUDIT_KEY_ID_MAX + 1);
	if (max_entries > AUDIT_MAX_ENTRIES || r->decision < AUDIT_BENIGN ||
	    r->decision >= AUDIT_DECISION__END || !task_outcome_valid((int)r->outcome) ||
	    r->outcome == TASK_OUT_NONE || !op_ok(r->op, opn) || !key_id_ok(kid, kidn) ||
	    r->at < 0 || (r->guest_id != AUDIT_NO_GUEST && (r->guest_id < 1 || r->guest_id > 999999999)))
		return FH_ERR_INVAL;
	utf8_clean(reason, AUDIT_REASON_MAX, r->reason);

	rc = read_range(t, &first, &next);
	if (rc)
		return rc;
	if (first == 0 || next == UINT64_MAX)
		return FH_ERR_DECODE;

	b[n++] = REC_VERSION;
	b[n++] = (unsigned char)r->decision;
	b[n++] = (unsigned char)r->outcome;
	store_be64_put(b + n, (uint64_t)(r->at ? r->at : (int64_t)time(NULL)));
	n += 8;
	store_be64_put(b + n, (uint64_t)r->guest_id);
	n += 8;
	put_str(b, &n, r->op);
	put_str(b, &n, kid);
	put_str(b, &n, reason);

	store_be64_put(k, next);
	rc = store_put(t, STORE_DB_AUDIT, k, sizeof k, b, n);
	if (rc)
		return rc;
	next++;
	while (next - first > max_entries && pruned < AUDIT_PRUNE_PER_APPEND) {
		store_be64_put(k, first);
		rc = store_del(t, STORE_DB_AUDIT, k, sizeof k);
		if (rc && rc != FH_ERR_NOT_FOUND)
			return rc;
		first++;
		pruned++;
	}
	rc = store_seq_put(t, SEQ_NEXT, next);
	if (rc == 0 && pruned)
		rc = store_seq_put(t, SEQ_FIRST, first);
	if (rc == 0 && seq)
		*seq = next - 1;
	return rc;
}

int audit_prune(struct store *st, uint64_t max_entries, unsigned max_per_txn, uint64_t *pruned)
{
	struct store_txn *t = NULL;
	unsigned char k[8];
	uint64_t first, next, total = 0;
	unsigned n;
	int r;

	if (!st || max_per_txn == 0 || max_entries > AUDIT_MAX_ENTRIES)
		return FH_ERR_INVAL;
	for (;;) {
		r = store_txn_begin(st, true, &t);
		if (r)
			return r;
		r = read_range(t, &first, &next);
		if (r == 0 && first == 0)
			r = FH_ERR_DECODE;
		for (n = 0; r == 0 && n < max_per_txn && next - first > max_entries; n++) {
			store_be64_put(k, first);
			r = store_del(t, STORE_DB_AUDIT, k, sizeof k);
			if (r == FH_ERR_NOT_FOUND)
				r = 0;
			first++;
		}
		if (r == 0 && n)
			r = store_seq_put(t, SEQ_FIRST, first);
		if (r) {
			store_txn_abort(t);
			return r;
		}
		r = store_txn_commit(t);
		if (r)
			return r;
		total += n;
		if (n < max_per_txn || next - first <= max_entries)
			break;
	}
	if (pruned)
		*pruned = total;
	return 0;
}

int audit_count(struct store *st, uint64_t *out)
{
	struct store_txn *t = NULL;
	uint64_t first = 0, next = 0;
	int r;

	if (!st || !out)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = read_range(t, &first, &next);
	store_txn_abort(t);
	if (r == 0)
		*out = next - first;
	return r;
}

/* ------------------------------------------------------------------ tail */

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

/* One stored record as a JSON object appended to e. */
static int elem_json(const void *v, size_t vl, struct buf *e)
{
	struct rd r = { v, vl, false };
	const unsigned char *h;
	char op[AUDIT_OP_MAX + 1], kid[AUDIT_KEY_ID_MAX + 1], reason[AUDIT_REASON_MAX + 1], at[32];
	unsigned dec, oc;
	int64_t when, guest;
	time_t tt;
	struct tm tm;
	int rc;

	h = r_take(&r, 19);
	r_str(&r, op, AUDIT_OP_MAX);
	r_str(&r, kid, AUDIT_KEY_ID_MAX);
	r_str(&r, reason, AUDIT_REASON_MAX);
	if (r.bad || r.n != 0 || !h || h[0] != REC_VERSION)
		return FH_ERR_DECODE;
	dec = h[1];
	oc = h[2];
	when = (int64_t)store_be64_get(h + 3);
	guest = (int64_t)store_be64_get(h + 11);
	if (dec < AUDIT_BENIGN || dec >= AUDIT_DECISION__END || !task_outcome_valid((int)oc) ||
	    oc == TASK_OUT_NONE || !op_ok(op, strlen(op)) || !key_id_ok(kid, strlen(kid)) || when < 0 ||
	    (guest != AUDIT_NO_GUEST && (guest < 1 || guest > 999999999)))
		return FH_ERR_DECODE;
	tt = (time_t)when;
	if (!gmtime_r(&tt, &tm) || strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return FH_ERR_DECODE;

	rc = buf_printf(e, "{\"at\":\"%s\",\"decision\":\"%s\",\"op\":\"%s\",\"guest_id\":", at,
	                audit_decision_name((enum audit_decision)dec), op);
	if (rc == 0)
		rc = guest == AUDIT_NO_GUEST ? buf_appendz(e, "null") : buf_printf(e, "%lld", (long long)guest);
	if (rc == 0)
		rc = buf_appendz(e, ",\"signer_key_id\":");
	if (rc == 0) {
		rc = json_canonical_string(kid, strlen(kid), e);
		if (rc == FH_ERR_INVAL)
			rc = FH_ERR_DECODE;
	}
	if (rc == 0)
		rc = buf_printf(e, ",\"outcome\":\"%s\",\"reason\":",
		                task_outcome_name((enum task_outcome)oc));
	if (rc == 0) {
		rc = json_canonical_string(reason, strlen(reason), e);
		if (rc == FH_ERR_INVAL)
			rc = FH_ERR_DECODE;
	}
	if (rc == 0)
		rc = buf_appendz(e, "}");
	return rc;
}

int audit_tail_json(struct store *st, size_t n, struct buf *out)
{
	struct store_txn *t = NULL;
	struct buf arr, e;
	unsigned char k[8];
	const void *v;
	size_t vl;
	uint64_t first = 0, next = 0, from, s;
	bool any = false;
	int r;

	if (!st || !out || out->len > out->cap)
		return FH_ERR_INVAL;
	if (n > AUDIT_TAIL_MAX)
		n = AUDIT_TAIL_MAX;
	buf_init(&arr, out->cap - out->len);
	buf_init(&e, ELEM_MAX);
	r = store_txn_begin(st, false, &t);
	if (r)
		goto out;
	r = read_range(t, &first, &next);
	if (r == 0)
		r = buf_appendz(&arr, "[");
	from = next - first > n ? next - n : first;
	for (s = from; r == 0 && s < next; s++) {
		store_be64_put(k, s);
		r = store_get(t, STORE_DB_AUDIT, k, sizeof k, &v, &vl);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;   /* pruned under an older first: skip */
			continue;
		}
		buf_reset(&e);
		if (r == 0)
			r = elem_json(v, vl, &e);
		if (r == 0 && any)
			r = buf_appendz(&arr, ",");
		if (r == 0)
			r = buf_append(&arr, e.data, e.len);
		any = true;
	}
	if (r == 0)
		r = buf_appendz(&arr, "]");
	if (r == 0)
		r = buf_append(out, arr.data, arr.len);
out:
	if (t)
		store_txn_abort(t);
	buf_free(&arr);
	buf_free(&e);
	return r;
}

const char *audit_decision_name(enum audit_decision d)
{
	switch (d) {
	case AUDIT_BENIGN:
		return "benign";
	case AUDIT_SIGNED:
		return "signed";
	case AUDIT_PENDING_SIGNATURE:
		return "pending_signature";
	case AUDIT_REJECTED:
		return "rejected";
	default:
		return "unknown";
	}
}
