/* hubsim.h — start and drive test/hubsim, the simulated felhom hub.
 *
 *   struct hubsim h;
 *   if (hubsim_start(&h, NULL) != 0) { T_CHECK(0); return; }
 *   ... POST to h.url with the key in h.key_file (h.key), pin h.fingerprint
 *       or trust h.cert_file ...
 *   hubsim_envelope(&h, "{\"poll_interval_seconds\":5}");
 *   hubsim_fault(&h, "{\"status\":401,\"count\":1}");
 *   T_EQ_INT(hubsim_stat(&h, "reports"), 1);
 *   hubsim_stop(&h);
 *
 * The simulator runs as a child process (python3, from the repository root)
 * with a private state directory; see docs/HUBSIM.md for its flags and the
 * control API.
 */
#ifndef FH_TEST_HUBSIM_H
#define FH_TEST_HUBSIM_H

#include <stddef.h>
#include <sys/types.h>

struct hubsim {
	pid_t pid;                  /* 0 when not running */
	int port;                   /* HTTPS port on 127.0.0.1 */
	int control_port;           /* plain-HTTP control port on 127.0.0.1 */
	char dir[256];              /* state directory (removed by hubsim_stop) */
	char key_file[300];         /* the accepted API key, 0600, no newline */
	char key[128];              /* its contents */
	char fingerprint[100];      /* leaf SHA-256, "AA:BB:..." */
	char cert_file[300];        /* the PEM certificate (self-signed: usable as CA file) */
	char url[64];               /* https://127.0.0.1:PORT */
};

/* Starts test/hubsim on free loopback ports with --quiet and its state in a
 * fresh t_tmpdir, plus extra_args (NULL-terminated; may be NULL). Waits up
 * to 15 s for the port file. 0, or -1 (child killed, directory removed). */
int hubsim_start(struct hubsim *h, const char *const extra_args[]);
/* SIGTERM, wait (SIGKILL after 5 s), remove the state directory. Safe on a
 * struct whose start failed or that was already stopped. */
void hubsim_stop(struct hubsim *h);

/* One control request (see sim_control). Returns the HTTP status or -1. */
int hubsim_control(struct hubsim *h, const char *method, const char *path, const char *json_body,
		   char *resp, size_t resplen);
/* POST /fault, POST /envelope, POST /reset ({} keeps the envelope). */
int hubsim_fault(struct hubsim *h, const char *json);
int hubsim_envelope(struct hubsim *h, const char *json);
int hubsim_reset(struct hubsim *h);
/* GET /stats field ("requests", "reports", "rejected", "unauthorized",
 * "faulted", "connections", "handshakes"); -1 on error. */
long hubsim_stat(struct hubsim *h, const char *field);
/* GET /requests as a malloc'd JSON text (caller frees), or NULL. */
char *hubsim_requests(struct hubsim *h);
/* Re-reads the key file after POST /api-key. 0 or -1. */
int hubsim_reload_key(struct hubsim *h);

#endif
