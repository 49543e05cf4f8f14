/* sigtest.h — operator signatures minted in tests with ssh-keygen, and the
 * bits of a hub signed-ops document (base64 of the blob, a JSON string).
 * Any failure aborts: a test without its keys cannot say anything. */
#ifndef FH_SIGTEST_H
#define FH_SIGTEST_H

#include "buf.h"

/* malloc'd printf; aborts on failure. */
char *sigtest_xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* DIR/NAME (and NAME.pub): ssh-keygen -t TYPE -b BITS, no passphrase. */
void sigtest_keygen(const char *dir, const char *name, const char *type, const char *bits);
/* The armored SSHSIG of blob by the private key at key_path (ssh-keygen -Y
 * sign, namespace SIG_NAMESPACE); scratch files go to dir. malloc'd. */
char *sigtest_sign(const char *dir, const char *key_path, const char *blob);
/* Appends standard base64 of the string s. */
void sigtest_b64(const char *s, struct buf *o);
/* Appends s as a JSON string (quotes, backslashes and newlines escaped). */
void sigtest_json_quote(const char *s, struct buf *o);

#endif
