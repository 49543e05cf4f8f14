/* hubsim.c — see hubsim.h. Control requests go through sim_control() (the
 * same plain-HTTP client as for pvesim). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "hubsim.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sim.h"

#define HUBSIM_SCRIPT "test/hubsim"
#define HUBSIM_MAX_ARGS 64
#define HUBSIM_REQLOG_MAX (8u << 20)

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

static void remove_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int read_small(const char *path, char *buf, size_t len)
{
	char *p = t_slurp(path, NULL);
	size_t n;

	if (!p)
		return -1;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		p[--n] = '\0';
	if (n == 0 || n + 1 > len) {
		free(p);
		return -1;
	}
	memcpy(buf, p, n + 1);
	free(p);
	return 0;
}

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

int hubsim_start(struct hubsim *h, const char *const extra_args[])
{
	char portf[300], fpf[300], state[300], *ports = NULL;
	const char *argv[HUBSIM_MAX_ARGS];
	size_t n = 0, i;
	long deadline, port = 0, cport = 0;
	pid_t pid;

	memset(h, 0, sizeof *h);
	t_tmpdir(h->dir, sizeof h->dir);
	snprintf(portf, sizeof portf, "%s/ports.json", h->dir);
	snprintf(fpf, sizeof fpf, "%s/fingerprint", h->dir);
	snprintf(state, sizeof state, "%s/state", h->dir);
	snprintf(h->key_file, sizeof h->key_file, "%s/hub.key", h->dir);
	snprintf(h->cert_file, sizeof h->cert_file, "%s/hub-ca.pem", h->dir);

	argv[n++] = HUBSIM_SCRIPT;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--control";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--port-file";
	argv[n++] = portf;
	argv[n++] = "--fingerprint-file";
	argv[n++] = fpf;
	argv[n++] = "--cert-file";
	argv[n++] = h->cert_file;
	argv[n++] = "--api-key-file";
	argv[n++] = h->key_file;
	argv[n++] = "--state-dir";
	argv[n++] = state;
	argv[n++] = "--quiet";
	for (i = 0; extra_args && extra_args[i]; i++) {
		if (n + 1 >= HUBSIM_MAX_ARGS) {
			fprintf(stderr, "hubsim_start: too many arguments\n");
			remove_tree(h->dir);
			h->dir[0] = '\0';
			return -1;
		}
		argv[n++] = extra_args[i];
	}
	argv[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		remove_tree(h->dir);
		h->dir[0] = '\0';
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(127);
		execv(HUBSIM_SCRIPT, (char *const *)(uintptr_t)argv);
		fprintf(stderr, "hubsim_start: exec %s: %s\n", HUBSIM_SCRIPT, strerror(errno));
		_exit(127);
	}
	h->pid = pid;
	deadline = now_ms() + 15000;
	for (;;) {
		int st;
		ports = t_slurp(portf, NULL);
		if (ports && json_long(ports, "port", &port) == 0 && json_long(ports, "control_port", &cport) == 0)
			break;
		free(ports);
		ports = NULL;
		if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
			h->pid = 0;
			fprintf(stderr, "hubsim_start: simulator exited early\n");
			goto fail;
		}
		if (now_ms() > deadline) {
			fprintf(stderr, "hubsim_start: no port file after 15 s\n");
			goto fail;
		}
		sleep_ms(20);
	}
	free(ports);
	h->port = (int)port;
	h->control_port = (int)cport;
	if (read_small(fpf, h->fingerprint, sizeof h->fingerprint) != 0 || hubsim_reload_key(h) != 0) {
		fprintf(stderr, "hubsim_start: cannot read fingerprint or key\n");
		goto fail;
	}
	snprintf(h->url, sizeof h->url, "https://127.0.0.1:%d", h->port);
	return 0;
fail:
	hubsim_stop(h);
	return -1;
}

void hubsim_stop(struct hubsim *h)
{
	if (h->pid > 0) {
		long deadline = now_ms() + 5000;
		int st;

		kill(h->pid, SIGTERM);
		for (;;) {
			pid_t r = waitpid(h->pid, &st, WNOHANG);
			if (r == h->pid || (r < 0 && errno != EINTR))
				break;
			if (now_ms() > deadline) {
				kill(h->pid, SIGKILL);
				waitpid(h->pid, &st, 0);
				break;
			}
			sleep_ms(10);
		}
		h->pid = 0;
	}
	remove_tree(h->dir);
	h->dir[0] = '\0';
}

int hubsim_reload_key(struct hubsim *h)
{
	return read_small(h->key_file, h->key, sizeof h->key);
}

int hubsim_control(struct hubsim *h, const char *method, const char *path, const char *json_body, char *resp,
		   size_t resplen)
{
	struct sim s;

	memset(&s, 0, sizeof s);
	s.control_port = h->control_port;
	return sim_control(&s, method, path, json_body, resp, resplen);
}

int hubsim_fault(struct hubsim *h, const char *json)
{
	return hubsim_control(h, "POST", "/fault", json, NULL, 0);
}

int hubsim_envelope(struct hubsim *h, const char *json)
{
	return hubsim_control(h, "POST", "/envelope", json, NULL, 0);
}

int hubsim_reset(struct hubsim *h)
{
	return hubsim_control(h, "POST", "/reset", "{}", NULL, 0);
}

long hubsim_stat(struct hubsim *h, const char *field)
{
	char resp[4096];
	long v;

	if (hubsim_control(h, "GET", "/stats", NULL, resp, sizeof resp) != 200)
		return -1;
	if (json_long(resp, field, &v) != 0)
		return -1;
	return v;
}

char *hubsim_requests(struct hubsim *h)
{
	char *buf = malloc(HUBSIM_REQLOG_MAX);

	if (!buf)
		return NULL;
	if (hubsim_control(h, "GET", "/requests", NULL, buf, HUBSIM_REQLOG_MAX) != 200) {
		free(buf);
		return NULL;
	}
	return buf;
}
