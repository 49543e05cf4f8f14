/* sigtest.c — see sigtest.h. */
#include "sigtest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

#include "harness.h"
#include "sig.h"

static const char *const run_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

char *sigtest_xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

void sigtest_keygen(const char *dir, const char *name, const char *type, const char *bits)
{
	char *p = sigtest_xprintf("%s/%s", dir, name);
	const char *argv[] = { "/usr/bin/ssh-keygen", "-q", "-t", type, "-b", bits, "-N", "", "-C", name, "-f", p, NULL };

	if (t_run_cmd(argv, run_env, NULL, NULL) != 0)
		abort();
	free(p);
}

char *sigtest_sign(const char *dir, const char *key_path, const char *blob)
{
	static unsigned seq;
	char *msg = sigtest_xprintf("%s/msg-%u-%ld", dir, ++seq, (long)getpid()), *sigp = sigtest_xprintf("%s.sig", msg);
	char *armor;
	const char *argv[] = { "/usr/bin/ssh-keygen", "-q", "-Y", "sign", "-f", key_path, "-n", SIG_NAMESPACE, msg, NULL };

	if (t_write_file(msg, blob, 0600) != 0 || t_run_cmd(argv, run_env, NULL, NULL) != 0)
		abort();
	armor = t_slurp(sigp, NULL);
	if (!armor)
		abort();
	unlink(msg);
	unlink(sigp);
	free(msg);
	free(sigp);
	return armor;
}

void sigtest_b64(const char *s, struct buf *o)
{
	size_t n = strlen(s);
	word32 len = (word32)((n + 2) / 3 * 4 + 1);
	byte *t = malloc(len);

	if (!t || Base64_Encode_NoNl((const byte *)s, (word32)n, t, &len) != 0)
		abort();
	buf_append(o, (const char *)t, len);
	free(t);
}

void sigtest_json_quote(const char *s, struct buf *o)
{
	buf_appendz(o, "\"");
	for (; *s; s++) {
		if (*s == '\n')
			buf_appendz(o, "\\n");
		else if (*s == '"' || *s == '\\')
			buf_printf(o, "\\%c", *s);
		else
			buf_append(o, s, 1);
	}
	buf_appendz(o, "\"");
}
