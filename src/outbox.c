/* outbox.c — the durable outbox of op results; see outbox.h.
 *
 * Record (STORE_DB_OUTBOX value), version 1:
 *   u8 version, u8 outcome, u8 id length, id, u16 reason length, reason.
 * STORE_DB_OUTBOX_ID maps the id to its BE64 sequence number while it is
 * pending; STORE_DB_SEQ "outbox_next" is the next sequence number (from 1),
 * "outbox_n" the pending count (the cap's counter).
 */
#include "outbox.h"

#include <string.h>

#include "err.h"
#include "utf8.h"
#include "opblob.h"

#define REC_VERSION 1
#define REC_MAX (2 + 1 + OUTBOX_ID_MAX + 2 + OUTBOX_REASON_MAX)
#define SEQ_NEXT "outbox_next"
#define SEQ_N "outbox_n"
#define ACK_PER_TXN 256
#define ELEM_MAX 2048

static bool id_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > OUTBOX_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

int outbox_put(struct store_txn *t, const char *id, enum task_outcome outcome,
               const char *reason)
{
	unsigned char b[REC_MAX], k[8];
	char why[OUTBOX_REASON_MAX + 1];
	const void *v;
	size_t vl, idn, rn, n = 0;
	uint64_t next = 0, pending = 0;
	int r;

	if (!t || !id)
		return FH_ERR_INVAL;
	idn = strnlen(id, OUTBOX_ID_MAX + 1);
	if (!id_ok(id, idn) || !task_outcome_valid((int)outcome) || outcome == TASK_OUT_NONE)
		return FH_ERR_INVAL;
	r = store_get(t, STORE_DB_OUTBOX_ID, id, idn, &v, &vl);
	if (r == 0)
		return 0;   /* pending already: the first result stands */
	if (r != FH_ERR_NOT_FOUND)
		return r;
	r = store_seq_get(t, SEQ_NEXT, 1, &next);
	if (r == 0)
		r = store_seq_get(t, SEQ_N, 0, &pending);
	if (r)
		return r;
	if (next == 0 || next == UINT64_MAX)
		return FH_ERR_DECODE;
	if (pending >= OUTBOX_PENDING_MAX)
		return FH_ERR_TOOBIG;
	utf8_clean(why, OUTBOX_REASON_MAX, reason);
	rn = strlen(why);

	b[n++] = REC_VERSION;
	b[n++] = (unsigned char)outcome;
	b[n++] = (unsigned char)idn;
	memcpy(b + n, id, idn);
	n += idn;
	b[n++] = (unsigned char)(rn >> 8);
	b[n++] = (unsigned char)rn;
	memcpy(b + n, why, rn);
	n += rn;

	store_be64_put(k, next);
	r = store_put(t, STORE_DB_OUTBOX, k, sizeof k, b, n);
	if (r == 0)
		r = store_put(t, STORE_DB_OUTBOX_ID, id, idn, k, sizeof k);
	if (r == 0)
		r = store_seq_put(t, SEQ_NEXT, next + 1);
	if (r == 0)
		r = store_seq_put(t, SEQ_N, pending + 1);
	return r;
}

struct res {
	unsigned outcome;
	char id[OUTBOX_ID_MAX + 1];
	char reason[OUTBOX_REASON_MAX + 1];
};

static int decode(const void *v, size_t vl, struct res *out)
{
	const unsigned char *b = v;
	size_t idn, rn;

	if (vl < 3 || b[0] != REC_VERSION || !task_outcome_valid(b[1]) || b[1] == TASK_OUT_NONE)
		return FH_ERR_DECODE;
	idn = b[2];
	if (vl < 3 + idn + 2)
		return FH_ERR_DECODE;
	rn = (size_t)b[3 + idn] << 8 | b[3 + idn + 1];
	if (idn > OUTBOX_ID_MAX || rn > OUTBOX_REASON_MAX || vl != 3 + idn + 2 + rn)
		return FH_ERR_DECODE;
	out->outcome = b[1];
	memcpy(out->id, b + 3, idn);
	out->id[idn] = '\0';
	memcpy(out->reason, b + 3 + idn + 2, rn);
	out->reason[rn] = '\0';
	if (!id_ok(out->id, idn) || memchr(out->reason, '\0', rn))
		return FH_ERR_DECODE;
	return 0;
}

static int elem_json(const struct res *x, struct buf *e)
{
	int r = buf_appendz(e, "{\"id\":");

	if (r == 0)
		r = json_canonical_string(x->id, strlen(x->id), e);
	if (r == 0)
		r = buf_printf(e, ",\"outcome\":\"%s\",\"reason\":",
		               task_outcome_name((enum task_outcome)x->outcome));
	if (r == 0)
		r = json_canonical_string(x->reason, strlen(x->reason), e);
	if (r == 0)
		r = buf_appendz(e, "}");
	return r == FH_ERR_INVAL ? FH_ERR_DECODE : r;
}

int outbox_batch(struct store *st, size_t max, struct buf *json_out, uint64_t *through)
{
	struct store_txn *t = NULL;
	struct buf arr, e;
	struct res x;
	unsigned char k[8];
	const void *kp, *v;
	size_t kl, vl, got = 0;
	uint64_t last = 0, pos = 1;
	int r;

	if (!st || !json_out || !through || json_out->len > json_out->cap)
		return FH_ERR_INVAL;
	if (max > OUTBOX_BATCH_MAX)
		max = OUTBOX_BATCH_MAX;
	buf_init(&arr, json_out->cap - json_out->len);
	buf_init(&e, ELEM_MAX);
	r = store_txn_begin(st, false, &t);
	if (r)
		goto out;
	r = buf_appendz(&arr, "[");
	while (r == 0 && got < max) {
		store_be64_put(k, pos);
		r = store_seek(t, STORE_DB_OUTBOX, k, sizeof k, &kp, &kl, &v, &vl);
		if (r == FH_ERR_NOT_FOUND) {
			r = 0;
			break;
		}
		if (r == 0 && kl != 8)
			r = FH_ERR_DECODE;
		if (r == 0)
			r = decode(v, vl, &x);
		buf_reset(&e);
		if (r == 0)
			r = elem_json(&x, &e);
		if (r)
			break;
		/* room for it, a comma and the closing bracket? */
		if (arr.cap - arr.len < e.len + 2) {
			if (got == 0)
				r = FH_ERR_TOOBIG;
			break;
		}
		if (got)
			r = buf_appendz(&arr, ",");
		if (r == 0)
			r = buf_append(&arr, e.data, e.len);
		last = store_be64_get(kp);
		got++;
		if (last == UINT64_MAX)
			break;
		pos = last + 1;
	}
	if (r == 0)
		r = buf_appendz(&arr, "]");
	if (r == 0)
		r = buf_append(json_out, arr.data, arr.len);
	if (r == 0)
		*through = last;
out:
	if (t)
		store_txn_abort(t);
	buf_free(&arr);
	buf_free(&e);
	return r;
}

int outbox_ack(struct store *st, uint64_t through)
{
	struct store_txn *t = NULL;
	struct res x;
	unsigned char k[8];
	const void *kp, *v;
	size_t kl, vl;
	uint64_t seq, pending = 0;
	unsigned n;
	bool done = false;
	int r;

	if (!st)
		return FH_ERR_INVAL;
	if (through == 0)
		return 0;
	while (!done) {
		r = store_txn_begin(st, true, &t);
		if (r)
			return r;
		r = store_seq_get(t, SEQ_N, 0, &pending);
		for (n = 0; r == 0 && n < ACK_PER_TXN; n++) {
			r = store_first(t, STORE_DB_OUTBOX, &kp, &kl, &v, &vl);
			if (r == FH_ERR_NOT_FOUND) {
				r = 0;
				done = true;
				break;
			}
			if (r == 0 && kl != 8)
				r = FH_ERR_DECODE;
			if (r)
				break;
			seq = store_be64_get(kp);
			if (seq > through) {
				done = true;
				break;
			}
			r = decode(v, vl, &x);
			if (r)
				break;
			store_be64_put(k, seq);
			r = store_del(t, STORE_DB_OUTBOX, k, sizeof k);
			if (r == 0) {
				/* the id index points here unless something is off */
				const void *iv;
				size_t ivl;
				int g = store_get(t, STORE_DB_OUTBOX_ID, x.id, strlen(x.id), &iv, &ivl);

				if (g == 0 && ivl == 8 && store_be64_get(iv) == seq)
					r = store_del(t, STORE_DB_OUTBOX_ID, x.id, strlen(x.id));
				else if (g != 0 && g != FH_ERR_NOT_FOUND)
					r = g;
			}
			if (r == 0 && pending)
				pending--;
		}
		if (r == 0 && n)
			r = store_seq_put(t, SEQ_N, pending);
		if (r) {
			store_txn_abort(t);
			return r;
		}
		r = store_txn_commit(t);
		if (r)
			return r;
		if (n < ACK_PER_TXN)
			done = true;
	}
	return 0;
}

int outbox_pending(struct store *st, uint64_t *n)
{
	struct store_txn *t = NULL;
	uint64_t v = 0;
	int r;

	if (!st || !n)
		return FH_ERR_INVAL;
	r = store_txn_begin(st, false, &t);
	if (r)
		return r;
	r = store_seq_get(t, SEQ_N, 0, &v);
	store_txn_abort(t);
	if (r == 0)
		*n = v;
	return r;
}
