/* sim.c — see sim.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "sim.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#define SIM_SCRIPT "test/pvesim"
#define SIM_MAX_ARGS 64
#define SIM_CTL_TIMEOUT_MS 10000

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

/* Removes the (flat) state directory and everything in it. */
static void remove_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	char path[600];

	if (!dir[0])
		return;
	d = opendir(dir);
	if (d) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < (int)sizeof path)
				unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* Reads a small file into buf (NUL-terminated, trailing whitespace cut). */
static int read_small(const char *path, char *buf, size_t len)
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
	return 0;
}

/* The integer after "\"key\":" in a JSON text (first occurrence). */
static int json_long(const char *json, const char *key, long *out)
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

static int child_exited(struct sim *s)
{
	int st;
	pid_t r = waitpid(s->pid, &st, WNOHANG);

	if (r == s->pid) {
		s->pid = 0;
		return 1;
	}
	return 0;
}

int sim_start(struct sim *s, const char *const extra_args[])
{
	char portf[300], tokf[300], fpf[300], *ports = NULL;
	const char *argv[SIM_MAX_ARGS];
	size_t n = 0, i;
	long deadline, port = 0, cport = 0;
	pid_t pid;

	memset(s, 0, sizeof *s);
	t_tmpdir(s->dir, sizeof s->dir);
	snprintf(portf, sizeof portf, "%s/ports.json", s->dir);
	snprintf(tokf, sizeof tokf, "%s/token", s->dir);
	snprintf(fpf, sizeof fpf, "%s/fingerprint", s->dir);
	snprintf(s->cert_file, sizeof s->cert_file, "%s/ca.pem", s->dir);

	argv[n++] = SIM_SCRIPT;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--control";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = portf;
	argv[n++] = "--token-file";
	argv[n++] = tokf;
	argv[n++] = "--fingerprint-file";
	argv[n++] = fpf;
	argv[n++] = "--cert-file";
	argv[n++] = s->cert_file;
	argv[n++] = "--state-dir";
	argv[n++] = s->dir;
	argv[n++] = "--auth-delay";
	argv[n++] = "0";
	argv[n++] = "--quiet";
	for (i = 0; extra_args && extra_args[i]; i++) {
		if (n + 1 >= SIM_MAX_ARGS) {
			fprintf(stderr, "sim_start: too many arguments\n");
			remove_dir(s->dir);
			s->dir[0] = '\0';
			return -1;
		}
		argv[n++] = extra_args[i];
	}
	argv[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "sim_start: fork: %s\n", strerror(errno));
		remove_dir(s->dir);
		s->dir[0] = '\0';
		return -1;
	}
	if (pid == 0) {
		/* the simulator dies with the test, even when the test crashes */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(127);
		execv(SIM_SCRIPT, (char *const *)(uintptr_t)argv);
		fprintf(stderr, "sim_start: exec %s: %s\n", SIM_SCRIPT, strerror(errno));
		_exit(127);
	}
	s->pid = pid;

	deadline = now_ms() + 15000;
	for (;;) {
		ports = t_slurp(portf, NULL);
		if (ports && json_long(ports, "port", &port) == 0 &&
		    json_long(ports, "control_port", &cport) == 0)
			break;
		free(ports);
		ports = NULL;
		if (child_exited(s)) {
			fprintf(stderr, "sim_start: simulator exited early\n");
			goto fail;
		}
		if (now_ms() > deadline) {
			fprintf(stderr, "sim_start: no port file after 15 s\n");
			goto fail;
		}
		sleep_ms(20);
	}
	free(ports);
	s->port = (int)port;
	s->control_port = (int)cport;
	if (read_small(tokf, s->token, sizeof s->token) != 0 ||
	    read_small(fpf, s->fingerprint, sizeof s->fingerprint) != 0) {
		fprintf(stderr, "sim_start: cannot read token or fingerprint\n");
		goto fail;
	}
	snprintf(s->endpoint, sizeof s->endpoint, "https://127.0.0.1:%d", s->port);
	return 0;
fail:
	sim_stop(s);
	return -1;
}

void sim_stop(struct sim *s)
{
	if (s->pid > 0) {
		long deadline = now_ms() + 5000;
		int st;

		kill(s->pid, SIGTERM);
		for (;;) {
			pid_t r = waitpid(s->pid, &st, WNOHANG);
			if (r == s->pid || (r < 0 && errno != EINTR))
				break;
			if (now_ms() > deadline) {
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &st, 0);
				break;
			}
			sleep_ms(10);
		}
		s->pid = 0;
	}
	remove_dir(s->dir);
	s->dir[0] = '\0';
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

int sim_control(struct sim *s, const char *method, const char *path, const char *json_body,
		char *resp, size_t resplen)
{
	struct sockaddr_in sa;
	char head[512], chunk[4096];
	char *buf = NULL, *body;
	size_t len = 0, cap = 0, blen = json_body ? strlen(json_body) : 0;
	long deadline = now_ms() + SIM_CTL_TIMEOUT_MS;
	int fd, status = -1, n;

	if (resp && resplen)
		resp[0] = '\0';
	if (s->control_port <= 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)s->control_port);
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

int sim_fault(struct sim *s, const char *json)
{
	return sim_control(s, "POST", "/fault", json, NULL, 0);
}

int sim_reset(struct sim *s)
{
	return sim_control(s, "POST", "/reset", "{}", NULL, 0);
}

long sim_stat(struct sim *s, const char *field)
{
	char resp[8192];
	long v;

	/* the scalar fields come before by_path, so a truncated answer is fine */
	if (sim_control(s, "GET", "/stats", NULL, resp, sizeof resp) != 200)
		return -1;
	if (json_long(resp, field, &v) != 0)
		return -1;
	return v;
}

long sim_count_path(struct sim *s, const char *method_and_path)
{
	char path[1200], resp[256];
	const unsigned char *p;
	size_t n;
	long v;

	n = (size_t)snprintf(path, sizeof path, "/count?key=");
	for (p = (const unsigned char *)method_and_path; *p; p++) {
		if (n + 4 >= sizeof path)
			return -1;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '/' || *p == '-' || *p == '_' || *p == '.')
			path[n++] = (char)*p;
		else
			n += (size_t)snprintf(path + n, sizeof path - n, "%%%02X", *p);
	}
	path[n] = '\0';
	if (sim_control(s, "GET", path, NULL, resp, sizeof resp) != 200)
		return -1;
	if (json_long(resp, "count", &v) != 0)
		return -1;
	return v;
}
