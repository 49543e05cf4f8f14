/* buf.c — bounded growable buffer; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void buf_init(struct buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

static int buf_reserve(struct buf *b, size_t add)
{
	size_t want, na;
	char *p;

	if (add > b->cap || b->len > b->cap - add)
		return FH_ERR_TOOBIG;
	want = b->len + add + 1;
	if (want <= b->alloc)
		return 0;
	na = b->alloc ? b->alloc : 256;
	while (na < want)
		na = na > (SIZE_MAX / 2) ? want : na * 2;
	p = realloc(b->data, na);
	if (!p)
		return FH_ERR_NOMEM;
	b->data = p;
	b->alloc = na;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n);

	if (r)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_appendz(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return FH_ERR_INTERNAL;
	r = buf_reserve(b, (size_t)n);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}
