/* utf8.h — well-formed UTF-8 (RFC 3629: shortest form only, no surrogates,
 * at most U+10FFFF), for text the agent stores or signs. */
#ifndef FH_UTF8_H
#define FH_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the well-formed sequence starting at p[0..n), or 0. */
size_t utf8_seq(const unsigned char *p, size_t n);
/* True when all of p[0..n) is well-formed UTF-8. */
bool utf8_valid(const char *p, size_t n);
/* Copies s (NULL = "") into dst (cap bytes plus the NUL), never cutting a
 * sequence in half; control bytes, DEL and invalid UTF-8 become '?'. */
void utf8_clean(char *dst, size_t cap, const char *s);

#endif
