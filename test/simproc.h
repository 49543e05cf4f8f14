/* simproc.h — the child-process side shared by the simulator launchers
 * (sim.h for test/pvesim, hubsim.h for test/hubsim): start a simulator
 * script, wait for its port file, stop it, talk to its plain-HTTP control
 * port, and the small file/JSON readers they use.
 *
 * The simulators run from the repository root as child processes that die
 * with the test (PR_SET_PDEATHSIG). Messages go to stderr prefixed with the
 * caller's name ("sim_start", "hubsim_start").
 */
#ifndef FH_TEST_SIMPROC_H
#define FH_TEST_SIMPROC_H

#include <stddef.h>
#include <sys/types.h>

/* Runs base_argv (base_argv[0] is the script; NULL-terminated) followed by
 * extra_args (NULL-terminated; the array may be NULL), then waits up to 15 s
 * for port_file to hold "port" and "control_port". 0 with *pid, *port and
 * *control_port set; -1 with the child stopped, dir removed and cleared
 * (*pid 0). At most 63 arguments in all. */
int simproc_start(const char *who, const char *const base_argv[], const char *const extra_args[],
		  const char *port_file, char *dir, pid_t *pid, int *port, int *control_port);

/* SIGTERM *pid if it is > 0, wait (SIGKILL after 5 s), set it to 0; then
 * remove dir and everything below it and clear it (dir may be ""). */
void simproc_stop(pid_t *pid, char *dir);

/* One plain-HTTP/1.0 request to 127.0.0.1:control_port (10 s bound).
 * json_body may be NULL. The response body is copied NUL-terminated into
 * resp (truncated to fit; resp may be NULL). Returns the HTTP status, or -1
 * on a transport error or when control_port <= 0. */
int simproc_control(int control_port, const char *method, const char *path, const char *json_body,
		    char *resp, size_t resplen);

/* GET path on the control port, then the integer member field of the
 * answer's first maxlen - 1 bytes (simproc_json_long). -1 on any error. */
long simproc_get_long(int control_port, const char *path, const char *field, size_t maxlen);

/* Reads a small file into buf (NUL-terminated, trailing CR/LF/spaces cut).
 * Returns the length kept, or -1 (unreadable, or longer than len - 1). */
long simproc_read_small(const char *path, char *buf, size_t len);

/* The integer after "\"key\":" in a JSON text (first occurrence). 0 or -1. */
int simproc_json_long(const char *json, const char *key, long *out);

#endif
