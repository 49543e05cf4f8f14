/* buf.h — a growable byte buffer with a hard cap (curl's dynbuf idea).
 *
 * Every byte that arrives from outside is collected in a struct buf whose
 * cap is fixed when it is made; an append that would pass the cap fails with
 * FH_ERR_TOOBIG and leaves the buffer as it was. The data is always
 * NUL-terminated (the NUL is not counted in len and not against the cap).
 */
#ifndef FH_BUF_H
#define FH_BUF_H

#include <stddef.h>

struct buf {
	char *data;     /* NULL until the first append */
	size_t len;
	size_t alloc;
	size_t cap;     /* largest len ever allowed */
};

void buf_init(struct buf *b, size_t cap);
/* 0, FH_ERR_TOOBIG (over cap, buffer unchanged) or FH_ERR_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendz(struct buf *b, const char *s);
/* printf into the buffer; same errors. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);          /* len = 0, memory kept */
void buf_free(struct buf *b);           /* frees; the struct may be reused after buf_init */
/* The contents as a C string ("" when empty); owned by the buffer. */
const char *buf_str(const struct buf *b);

#endif
