/* hubsim.c — see hubsim.h. The child process, the port file and the
 * plain-HTTP control client are simproc.h's, shared with sim.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "hubsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "simproc.h"

#define HUBSIM_SCRIPT "test/hubsim"
#define HUBSIM_REQLOG_MAX (8u << 20)

int hubsim_start(struct hubsim *h, const char *const extra_args[])
{
	char portf[300], fpf[300], state[300];

	memset(h, 0, sizeof *h);
	t_tmpdir(h->dir, sizeof h->dir);
	snprintf(portf, sizeof portf, "%s/ports.json", h->dir);
	snprintf(fpf, sizeof fpf, "%s/fingerprint", h->dir);
	snprintf(state, sizeof state, "%s/state", h->dir);
	snprintf(h->key_file, sizeof h->key_file, "%s/hub.key", h->dir);
	snprintf(h->cert_file, sizeof h->cert_file, "%s/hub-ca.pem", h->dir);
	{
		const char *const argv[] = {
			HUBSIM_SCRIPT,
			"--listen", "127.0.0.1:0",
			"--control", "127.0.0.1:0",
			"--port-file", portf,
			"--fingerprint-file", fpf,
			"--cert-file", h->cert_file,
			"--api-key-file", h->key_file,
			"--state-dir", state,
			"--quiet",
			NULL,
		};

		if (simproc_start("hubsim_start", argv, extra_args, portf, h->dir, &h->pid, &h->port,
				  &h->control_port) != 0)
			return -1;
	}
	if (simproc_read_small(fpf, h->fingerprint, sizeof h->fingerprint) <= 0 ||
	    hubsim_reload_key(h) != 0) {
		fprintf(stderr, "hubsim_start: cannot read fingerprint or key\n");
		hubsim_stop(h);
		return -1;
	}
	snprintf(h->url, sizeof h->url, "https://127.0.0.1:%d", h->port);
	return 0;
}

void hubsim_stop(struct hubsim *h)
{
	simproc_stop(&h->pid, h->dir);
}

int hubsim_reload_key(struct hubsim *h)
{
	return simproc_read_small(h->key_file, h->key, sizeof h->key) > 0 ? 0 : -1;
}

int hubsim_control(struct hubsim *h, const char *method, const char *path, const char *json_body, char *resp,
		   size_t resplen)
{
	return simproc_control(h->control_port, method, path, json_body, resp, resplen);
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
	return simproc_get_long(h->control_port, "/stats", field, 4096);
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
