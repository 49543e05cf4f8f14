/* harness.c — see harness.h. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

static int g_passed, g_failed, g_cur_failed;
static const char *g_cur;

const char *t_errname(int code)
{
	return fh_strerror(code);
}

void t_fail(const char *file, int line, const char *expr)
{
	t_failf(file, line, "%s", expr);
}

void t_failf(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (!g_cur_failed)
		printf("FAIL %s\n", g_cur ? g_cur : "?");
	g_cur_failed++;
	printf("  %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void t_run(const char *name, void (*fn)(void))
{
	g_cur = name;
	g_cur_failed = 0;
	fn();
	if (g_cur_failed)
		g_failed++;
	else {
		g_passed++;
		printf("ok %s\n", name);
	}
	fflush(stdout);
	g_cur = NULL;
}

int t_done(void)
{
	printf("# passed %d failed %d\n", g_passed, g_failed);
	fflush(stdout);
	return g_failed ? 1 : 0;
}

void t_tmpdir(char *out, size_t outlen)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(out, outlen, "%s/felhom-test-XXXXXX", base);
	if (n < 0 || (size_t)n >= outlen || !mkdtemp(out)) {
		fprintf(stderr, "t_tmpdir: %s\n", strerror(errno));
		abort();
	}
}

char *t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t r;
		if (cap - n < 4096) {
			char *q = realloc(p, cap + 65536);
			if (!q) {
				free(p);
				fclose(f);
				return NULL;
			}
			p = q;
			cap += 65536;
		}
		r = fread(p + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

int t_write_file(const char *path, const char *data, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	size_t n = strlen(data), off = 0;

	if (fd < 0)
		return -1;
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);
		if (w < 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return close(fd);
}

const char *t_build_dir(void)
{
	const char *b = getenv("FH_BUILD_DIR");
	return b && *b ? b : "build";
}

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>

static int drain(int fd, char **dst, size_t *len, size_t *cap)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n <= 0)
		return 0;
	if (*len + (size_t)n + 1 > *cap) {
		size_t nc = (*cap ? *cap * 2 : 8192) + (size_t)n;
		char *p = realloc(*dst, nc);
		if (!p)
			abort();
		*dst = p;
		*cap = nc;
	}
	memcpy(*dst + *len, tmp, (size_t)n);
	*len += (size_t)n;
	(*dst)[*len] = '\0';
	return 1;
}

int t_run_cmd(const char *const argv[], const char *const envp[], char **out, char **err)
{
	posix_spawn_file_actions_t fa;
	int po[2], pe[2], st = 0, open_fds = 2;
	char *bo = NULL, *be = NULL;
	size_t lo = 0, co = 0, le = 0, ce = 0;
	pid_t pid;

	if (out)
		*out = NULL;
	if (err)
		*err = NULL;
	if (pipe2(po, O_CLOEXEC))
		return -1;
	if (pipe2(pe, O_CLOEXEC)) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)(uintptr_t)argv,
			(char *const *)(uintptr_t)envp)) {
		posix_spawn_file_actions_destroy(&fa);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	while (open_fds > 0) {
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			break;
		if (p[0].revents && p[0].fd >= 0 && !drain(po[0], &bo, &lo, &co)) {
			close(po[0]);
			po[0] = -1;
			open_fds--;
		}
		if (p[1].revents && p[1].fd >= 0 && !drain(pe[0], &be, &le, &ce)) {
			close(pe[0]);
			pe[0] = -1;
			open_fds--;
		}
	}
	waitpid(pid, &st, 0);
	if (!bo)
		bo = calloc(1, 1);
	if (!be)
		be = calloc(1, 1);
	if (out)
		*out = bo;
	else
		free(bo);
	if (err)
		*err = be;
	else
		free(be);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}
