/* simproc.c — see simproc.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "simproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SIMPROC_MAX_ARGS 64
#define SIMPROC_START_MS 15000
#define SIMPROC_STOP_MS 5000
#define SIMPROC_CTL_TIMEOUT_MS 10000

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* Removes the state directory and everything below it, then clears dir. */
static void remove_tree(char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

long simproc_read_small(const char *path, char *buf, size_t len)
{
	char *p = t_slurp(path, NULL);
	size_t n;

	if (!p)
		return -1;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		p[--n] = '\0';
	if (n + 1 > len) {
		free(p);
		return -1;
	}
	memcpy(buf, p, n + 1);
	free(p);
	return (long)n;
}

int simproc_json_long(const char *json, const char *key, long *out)
{
	char pat[160];
	const char *p;
	char *end;
	long v;

	if (snprintf(pat, sizeof pat, "\"%s\":", key) >= (int)sizeof pat)
		return -1;
	p = strstr(json, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	errno = 0;
	v = strtol(p, &end, 10);
	if (end == p || errno != 0)
		return -1;
	*out = v;
	return 0;
}

int simproc_start(const char *who, const char *const base_argv[], const char *const extra_args[],
		  const char *port_file, char *dir, pid_t *pid, int *port, int *control_port)
{
	const char *argv[SIMPROC_MAX_ARGS];
	char *ports = NULL;
	size_t n = 0, i;
	long deadline, p = 0, cp = 0;
	pid_t child;

	*pid = 0;
	for (i = 0; base_argv[i]; i++) {
		if (n + 1 >= SIMPROC_MAX_ARGS)
			goto too_many;
		argv[n++] = base_argv[i];
	}
	for (i = 0; extra_args && extra_args[i]; i++) {
		if (n + 1 >= SIMPROC_MAX_ARGS)
			goto too_many;
		argv[n++] = extra_args[i];
	}
	argv[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "%s: fork: %s\n", who, strerror(errno));
		remove_tree(dir);
		return -1;
	}
	if (child == 0) {
		/* the simulator dies with the test, even when the test crashes */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(127);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		fprintf(stderr, "%s: exec %s: %s\n", who, argv[0], strerror(errno));
		_exit(127);
	}
	*pid = child;

	deadline = now_ms() + SIMPROC_START_MS;
	for (;;) {
		int st;

		ports = t_slurp(port_file, NULL);
		if (ports && simproc_json_long(ports, "port", &p) == 0 &&
		    simproc_json_long(ports, "control_port", &cp) == 0)
			break;
		free(ports);
		ports = NULL;
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			fprintf(stderr, "%s: simulator exited early\n", who);
			goto fail;
		}
		if (now_ms() > deadline) {
			fprintf(stderr, "%s: no port file after 15 s\n", who);
			goto fail;
		}
		sleep_ms(20);
	}
	free(ports);
	*port = (int)p;
	*control_port = (int)cp;
	return 0;
too_many:
	fprintf(stderr, "%s: too many arguments\n", who);
	remove_tree(dir);
	return -1;
fail:
	simproc_stop(pid, dir);
	return -1;
}

void simproc_stop(pid_t *pid, char *dir)
{
	if (*pid > 0) {
		long deadline = now_ms() + SIMPROC_STOP_MS;
		int st;

		kill(*pid, SIGTERM);
		for (;;) {
			pid_t r = waitpid(*pid, &st, WNOHANG);
			if (r == *pid || (r < 0 && errno != EINTR))
				break;
			if (now_ms() > deadline) {
				kill(*pid, SIGKILL);
				waitpid(*pid, &st, 0);
				break;
			}
			sleep_ms(10);
		}
		*pid = 0;
	}
	remove_tree(dir);
}

long simproc_get_long(int control_port, const char *path, const char *field, size_t maxlen)
{
	char *resp = malloc(maxlen);
	long v = -1;

	if (!resp)
		return -1;
	if (simproc_control(control_port, "GET", path, NULL, resp, maxlen) != 200 ||
	    simproc_json_long(resp, field, &v) != 0)
		v = -1;
	free(resp);
	return v;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int simproc_control(int control_port, const char *method, const char *path, const char *json_body,
		    char *resp, size_t resplen)
{
	struct sockaddr_in sa;
	char head[512], chunk[4096];
	char *buf = NULL, *body;
	size_t len = 0, cap = 0, blen = json_body ? strlen(json_body) : 0;
	long deadline = now_ms() + SIMPROC_CTL_TIMEOUT_MS;
	int fd, status = -1, n;

	if (resp && resplen)
		resp[0] = '\0';
	if (control_port <= 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)control_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	n = snprintf(head, sizeof head,
		     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n", method, path, blen);
	if (n < 0 || (size_t)n >= sizeof head)
		goto out;
	if (send_all(fd, head, (size_t)n) != 0 || (blen && send_all(fd, json_body, blen) != 0))
		goto out;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
		long left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			goto out;
		r = recv(fd, chunk, sizeof chunk, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (r == 0)
			break;
		if (len + (size_t)r + 1 > cap) {
			size_t ncap = (cap ? cap * 2 : 8192);
			char *q;
			while (ncap < len + (size_t)r + 1)
				ncap *= 2;
			q = realloc(buf, ncap);
			if (!q)
				goto out;
			buf = q;
			cap = ncap;
		}
		memcpy(buf + len, chunk, (size_t)r);
		len += (size_t)r;
		buf[len] = '\0';
	}
	if (!buf || sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
		status = -1;
		goto out;
	}
	body = strstr(buf, "\r\n\r\n");
	if (resp && resplen && body) {
		size_t bl;
		body += 4;
		bl = strlen(body);
		if (bl >= resplen)
			bl = resplen - 1;
		memcpy(resp, body, bl);
		resp[bl] = '\0';
	}
out:
	free(buf);
	close(fd);
	return status;
}
