/* sim.c — see sim.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "sim.h"

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "simproc.h"

#define SIM_SCRIPT "test/pvesim"

int sim_start(struct sim *s, const char *const extra_args[])
{
	char portf[300], tokf[300], fpf[300];

	memset(s, 0, sizeof *s);
	t_tmpdir(s->dir, sizeof s->dir);
	snprintf(portf, sizeof portf, "%s/ports.json", s->dir);
	snprintf(tokf, sizeof tokf, "%s/token", s->dir);
	snprintf(fpf, sizeof fpf, "%s/fingerprint", s->dir);
	snprintf(s->cert_file, sizeof s->cert_file, "%s/ca.pem", s->dir);
	{
		const char *const argv[] = {
			SIM_SCRIPT,
			"--listen", "127.0.0.1:0",
			"--control", "127.0.0.1:0",
			"--port-file", portf,
			"--token-file", tokf,
			"--fingerprint-file", fpf,
			"--cert-file", s->cert_file,
			"--state-dir", s->dir,
			"--auth-delay", "0",
			"--quiet",
			NULL,
		};

		if (simproc_start("sim_start", argv, extra_args, portf, s->dir, &s->pid, &s->port,
				  &s->control_port) != 0)
			return -1;
	}
	if (simproc_read_small(tokf, s->token, sizeof s->token) < 0 ||
	    simproc_read_small(fpf, s->fingerprint, sizeof s->fingerprint) < 0) {
		fprintf(stderr, "sim_start: cannot read token or fingerprint\n");
		sim_stop(s);
		return -1;
	}
	snprintf(s->endpoint, sizeof s->endpoint, "https://127.0.0.1:%d", s->port);
	return 0;
}

void sim_stop(struct sim *s)
{
	simproc_stop(&s->pid, s->dir);
}

int sim_control(struct sim *s, const char *method, const char *path, const char *json_body,
		char *resp, size_t resplen)
{
	return simproc_control(s->control_port, method, path, json_body, resp, resplen);
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
	/* the scalar fields come before by_path, so a truncated answer is fine */
	return simproc_get_long(s->control_port, "/stats", field, 8192);
}

long sim_count_path(struct sim *s, const char *method_and_path)
{
	char path[1200];
	const unsigned char *p;
	size_t n;

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
	return simproc_get_long(s->control_port, path, "count", 256);
}
