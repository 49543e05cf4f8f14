/* sim.h — start and drive test/pvesim, the simulated Proxmox VE host.
 *
 *   struct sim s;
 *   const char *const args[] = { "--role", "agent", NULL };
 *   if (sim_start(&s, args) != 0) { T_CHECK(0); return; }
 *   ... talk to s.endpoint with s.token, pin s.fingerprint or trust s.cert_file ...
 *   sim_fault(&s, "{\"path_regex\":\"/version$\",\"status\":500,\"reason\":\"boom\"}");
 *   T_EQ_INT(sim_stat(&s, "requests"), 3);
 *   sim_stop(&s);
 *
 * The simulator runs as a child process (python3, from the repository root)
 * with a private state directory; see docs/SIMULATOR.md for its flags, the
 * endpoints and the control API.
 */
#ifndef FH_TEST_SIM_H
#define FH_TEST_SIM_H

#include <stddef.h>
#include <sys/types.h>

struct sim {
	pid_t pid;                  /* 0 when not running */
	int port;                   /* HTTPS API port on 127.0.0.1 */
	int control_port;           /* plain-HTTP control port on 127.0.0.1 */
	char dir[256];              /* state directory (removed by sim_stop) */
	char token[256];            /* felhom@pve!agent=UUID, the only accepted token */
	char fingerprint[100];      /* leaf SHA-256, "AA:BB:..." uppercase */
	char cert_file[300];        /* the PEM certificate (self-signed: usable as CA file) */
	char endpoint[64];          /* https://127.0.0.1:PORT */
};

/* Starts test/pvesim with --listen/--control on free loopback ports,
 * --auth-delay 0 --quiet and the state files in a fresh t_tmpdir, plus
 * extra_args (NULL-terminated; the array may be NULL). Waits up to 15 s for
 * the port file and fills *s. 0, or -1 (child killed, directory removed). */
int sim_start(struct sim *s, const char *const extra_args[]);

/* SIGTERM, wait (SIGKILL after 5 s), remove the state directory. Safe to call
 * on a struct whose start failed or that was already stopped. */
void sim_stop(struct sim *s);

/* One plain-HTTP request to the control API. json_body may be NULL. The
 * response body is copied NUL-terminated into resp (truncated to fit; resp
 * may be NULL). Returns the HTTP status, or -1 on a transport error. */
int sim_control(struct sim *s, const char *method, const char *path, const char *json_body,
		char *resp, size_t resplen);

/* POST /fault with the given JSON object; returns the HTTP status (200). */
int sim_fault(struct sim *s, const char *json);

/* POST /reset: clears faults, counters and the request log (state kept). */
int sim_reset(struct sim *s);

/* GET /stats field: "requests", "connections", "handshakes", "tasks",
 * "guests". -1 on error. */
long sim_stat(struct sim *s, const char *field);

/* Requests seen for "METHOD /path" exactly as sent (no query), e.g.
 * "GET /api2/json/version". -1 on error. */
long sim_count_path(struct sim *s, const char *method_and_path);

#endif
