/* test_fence.c — the structural fence between the two Proxmox backends,
 * asserted over the built objects: the API side (pve, tlspin, and
 * httptrust with the libcurl handle setup they share) references no
 * process-spawning symbol; the privileged backend and the process
 * runner under it reference no socket, resolver, libcurl or wolfSSL
 * symbol. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "nmsyms.h"

static const char *const spawn_syms[] = { "fork", "vfork", "clone", "execve", "execv", "execvp", "execvpe",
					  "execl", "execlp", "execle", "fexecve", "posix_spawn", "posix_spawnp",
					  "system", "popen", NULL };
static const char *const net_syms[] = { "socket", "connect", "bind", "listen", "accept", "accept4",
					"getaddrinfo", "gethostbyname", "sendto", "sendmsg", "recvfrom",
					"recvmsg", "socketpair", NULL };

static void check_object(const char *name, const char *const *forbidden, const char *const *prefixes)
{
	char obj[512];
	char *syms;
	size_t i;

	snprintf(obj, sizeof(obj), "%s/obj/%s.o", t_build_dir(), name);
	syms = nmsyms_undefined(obj);
	if (!syms) {
		t_failf(__FILE__, __LINE__, "nm failed on %s", obj);
		return;
	}
	for (i = 0; forbidden[i]; i++) {
		if (nmsyms_has(syms, forbidden[i]))
			t_failf(__FILE__, __LINE__, "%s references %s", obj, forbidden[i]);
	}
	for (i = 0; prefixes && prefixes[i]; i++) {
		if (nmsyms_has_prefix(syms, prefixes[i]))
			t_failf(__FILE__, __LINE__, "%s references %s*", obj, prefixes[i]);
	}
	free(syms);
}

T_TEST(t_api_client_never_spawns)
{
	check_object("pve", spawn_syms, NULL);
	check_object("tlspin", spawn_syms, NULL);
	check_object("httptrust", spawn_syms, NULL);
}

T_TEST(t_privileged_backend_never_connects)
{
	static const char *const prefixes[] = { "curl_", "wolfSSL", "wc_", NULL };
	check_object("priv", net_syms, prefixes);
	check_object("proc", net_syms, prefixes);
}

/* The collector talks to Proxmox only through pve_ and runs only its fixed
 * read-only probe: no socket or libcurl of its own. */
T_TEST(t_report_collector_uses_the_clients)
{
	static const char *const prefixes[] = { "curl_", "wolfSSL", NULL };
	check_object("report", net_syms, prefixes);
}

/* The checker itself must be able to see such symbols. */
T_TEST(t_fence_checker_sees_symbols)
{
	char obj[512];
	char *syms;

	snprintf(obj, sizeof(obj), "%s/obj/proc.o", t_build_dir());
	syms = nmsyms_undefined(obj);
	T_CHECK(syms != NULL);
	if (syms)
		T_CHECK(nmsyms_has(syms, "posix_spawn"));
	free(syms);
	snprintf(obj, sizeof(obj), "%s/obj/pve.o", t_build_dir());
	syms = nmsyms_undefined(obj);
	T_CHECK(syms != NULL);
	if (syms)
		T_CHECK(nmsyms_has_prefix(syms, "curl_"));
	free(syms);
}

int main(void)
{
	T_RUN(t_api_client_never_spawns);
	T_RUN(t_privileged_backend_never_connects);
	T_RUN(t_report_collector_uses_the_clients);
	T_RUN(t_fence_checker_sees_symbols);
	return t_done();
}
