/* harness.h — the project's small test harness.
 *
 *   T_TEST(t_name) { T_CHECK(x == 1); T_EQ_STR(a, "b"); }
 *   int main(void) { T_RUN(t_name); return t_done(); }
 *
 * Each test binary prints "ok NAME" or "FAIL NAME" lines (with every failed
 * check as "  file:line: expression") and ends with "# passed N failed M";
 * test/run sums them into the one "N passed, N failed" line.
 */
#ifndef FH_TEST_HARNESS_H
#define FH_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

void t_fail(const char *file, int line, const char *expr);
void t_failf(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_run(const char *name, void (*fn)(void));
int t_done(void);
/* Makes a fresh private directory under $TMPDIR (or /tmp); aborts on failure. */
void t_tmpdir(char *out, size_t outlen);
/* Reads a whole file (NUL-terminated, caller frees); NULL on error. */
char *t_slurp(const char *path, size_t *len);
/* Writes a file with mode; 0 or -1. */
int t_write_file(const char *path, const char *data, int mode);
/* Directory holding the running test binary's build (e.g. "build"), and the
 * source tree root (the current directory when run from make). */
const char *t_build_dir(void);

#define T_TEST(name) static void name(void)
#define T_RUN(name) t_run(#name, name)
#define T_CHECK(cond) do { if (!(cond)) t_fail(__FILE__, __LINE__, #cond); } while (0)
#define T_EQ_INT(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
	if (t_a_ != t_b_) t_failf(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, t_a_, t_b_); } while (0)
#define T_EQ_STR(a, b) do { const char *t_a_ = (a), *t_b_ = (b); \
	if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) \
		t_failf(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); } while (0)
/* expression must return 0 (FH_OK); prints the error name otherwise */
#define T_OK(expr) do { int t_r_ = (expr); \
	if (t_r_ != 0) t_failf(__FILE__, __LINE__, "%s returned %d (%s)", #expr, t_r_, t_errname(t_r_)); } while (0)
#define T_ERR(expr, code) do { int t_r_ = (expr); \
	if (t_r_ != (code)) t_failf(__FILE__, __LINE__, "%s returned %d (%s), want %s", #expr, t_r_, t_errname(t_r_), #code); } while (0)

const char *t_errname(int code);

/* Runs argv[0] (a path) with exactly envp, stdin /dev/null, capturing
 * stdout and stderr (each NUL-terminated, caller frees; may be NULL to
 * discard). Returns the exit status, 128+signal, or -1. */
int t_run_cmd(const char *const argv[], const char *const envp[], char **out, char **err);
#endif
