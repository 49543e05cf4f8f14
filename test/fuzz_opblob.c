/* fuzz_opblob.c — libFuzzer target for the op-blob parser and the canonical
 * JSON form (opblob.h). Built by `make fuzz`; replayed over
 * vectors/fuzz/opblob/ by build/test_fuzz_opblob in make check.
 *
 * Properties checked on every input (abort() on violation):
 *  - json_canonical: an accepted input's output is a fixed point (its own
 *    canonical form), no longer than the input, and json_canonical never
 *    touches the buffer when it rejects;
 *  - opblob_parse: an accepted blob's canonical bytes re-parse to the same
 *    struct, equal json_canonical of the input, and fit OPBLOB_MAX_BYTES;
 *    a rejected one leaves the output struct untouched and gives a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "opblob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static int param_eq(const struct opblob_param *a, const struct opblob_param *b)
{
	if (strcmp(a->key, b->key) || a->type != b->type)
		return 0;
	switch (a->type) {
	case OPBLOB_STR: return strcmp(a->str, b->str) == 0;
	case OPBLOB_INT: return a->num == b->num;
	case OPBLOB_BOOL: return a->b == b->b;
	default: return 1;
	}
}

static int blob_eq(const struct opblob *a, const struct opblob *b)
{
	size_t i;

	if (a->v != b->v || strcmp(a->op, b->op) || strcmp(a->host_id, b->host_id) ||
	    a->has_guest != b->has_guest || (a->has_guest && a->guest_id != b->guest_id) ||
	    strcmp(a->key_id, b->key_id) || strcmp(a->nonce, b->nonce) || a->issued_at != b->issued_at ||
	    a->expires_at != b->expires_at || a->nparams != b->nparams)
		return 0;
	for (i = 0; i < a->nparams; i++) {
		if (!param_eq(&a->params[i], &b->params[i]))
			return 0;
	}
	return 1;
}

static void fuzz_canonical(const char *p, size_t n)
{
	struct buf b, b2;
	char why[128] = "";
	int r;

	buf_init(&b, 1 << 20);
	buf_init(&b2, 1 << 20);
	buf_appendz(&b, "#");
	r = json_canonical_why(p, n, &b, why, sizeof(why));
	if (r == 0) {
		check(b.len - 1 <= n);
		check(json_canonical(b.data + 1, b.len - 1, &b2) == 0);
		check(b2.len == b.len - 1 && memcmp(b2.data, b.data + 1, b2.len) == 0);
	} else {
		check(r == FH_ERR_SIG_MALFORMED || r == FH_ERR_NOMEM);
		check(b.len == 1 && strcmp(b.data, "#") == 0);
		check(r != FH_ERR_SIG_MALFORMED || why[0] != '\0');
	}
	buf_free(&b);
	buf_free(&b2);
}

static void fuzz_blob(const char *p, size_t n)
{
	struct opblob *o = malloc(sizeof(*o)), *o2 = calloc(1, sizeof(*o2)), *pristine = malloc(sizeof(*o));
	struct buf c, j;
	char why[128] = "";
	int r;

	check(o && o2 && pristine);
	memset(o, 0x5a, sizeof(*o));
	memcpy(pristine, o, sizeof(*o));
	buf_init(&c, 1 << 20);
	buf_init(&j, 1 << 20);
	r = opblob_parse(p, n, o, why, sizeof(why));
	if (r == 0) {
		check(opblob_validate(o, NULL, 0) == 0);
		check(opblob_canonical(o, &c) == 0);
		check(c.len <= OPBLOB_MAX_BYTES && c.len <= n);
		check(opblob_parse(c.data, c.len, o2, NULL, 0) == 0);
		check(blob_eq(o, o2));
		check(json_canonical(p, n, &j) == 0);
		check(j.len == c.len && memcmp(j.data, c.data, c.len) == 0);
		buf_reset(&c);
		check(opblob_params_canonical(o, &c) == 0);
	} else {
		check(r == FH_ERR_SIG_MALFORMED || r == FH_ERR_NOMEM);
		check(memcmp(o, pristine, sizeof(*o)) == 0);
		check(r != FH_ERR_SIG_MALFORMED || why[0] != '\0');
	}
	buf_free(&c);
	buf_free(&j);
	free(o);
	free(o2);
	free(pristine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_canonical((const char *)data, size);
	fuzz_blob((const char *)data, size);
	return 0;
}
