/* test_fence.c — the structural fence between the two Proxmox backends,
 * asserted over the built objects: the API side (pve, tlspin) references
 * no process-spawning symbol; the privileged backend and the process
 * runner under it reference no socket, resolver, libcurl or wolfSSL
 * symbol. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static const char *const spawn_syms[] = { "fork", "vfork", "clone", "execve", "execv", "execvp", "execvpe",
					  "execl", "execlp", "execle", "fexecve", "posix_spawn", "posix_spawnp",
					  "system", "popen", NULL };
static const char *const net_syms[] = { "socket", "connect", "bind", "listen", "accept", "accept4",
					"getaddrinfo", "gethostbyname", "sendto", "sendmsg", "recvfrom",
					"recvmsg", "socketpair", NULL };

/* Undefined symbols of an object, one per line, from nm. */
static char *undefined_syms(const char *obj)
{
	const char *argv[] = { "/usr/bin/nm", "-u", "--format=just-symbols", obj, NULL };
	const char *env[] = { "LC_ALL=C", NULL };
	char *out = NULL, *err = NULL;
	int st = t_run_cmd(argv, env, &out, &err);

	free(err);
	if (st != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int has_sym(const char *list, const char *sym)
{
	const char *p = list;
	size_t n = strlen(sym);

	while ((p = strstr(p, sym)) != NULL) {
		int start = p == list || p[-1] == '\n';
		char end = p[n];
		if (start && (end == '\n' || end == '\0' || end == '@'))
			return 1;
		p += n;
	}
	return 0;
}

static int has_prefix_sym(const char *list, const char *prefix)
{
	const char *p = list;
	size_t n = strlen(prefix);

	while (*p) {
		if (!strncmp(p, prefix, n))
			return 1;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return 0;
}

static void check_object(const char *name, const char *const *forbidden, const char *const *prefixes)
{
	char obj[512];
	char *syms;
	size_t i;

	snprintf(obj, sizeof(obj), "%s/obj/%s.o", t_build_dir(), name);
	syms = undefined_syms(obj);
	if (!syms) {
		t_failf(__FILE__, __LINE__, "nm failed on %s", obj);
		return;
	}
	for (i = 0; forbidden[i]; i++) {
		if (has_sym(syms, forbidden[i]))
			t_failf(__FILE__, __LINE__, "%s references %s", obj, forbidden[i]);
	}
	for (i = 0; prefixes && prefixes[i]; i++) {
		if (has_prefix_sym(syms, prefixes[i]))
			t_failf(__FILE__, __LINE__, "%s references %s*", obj, prefixes[i]);
	}
	free(syms);
}

T_TEST(t_api_client_never_spawns)
{
	check_object("pve", spawn_syms, NULL);
	check_object("tlspin", spawn_syms, NULL);
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
	syms = undefined_syms(obj);
	T_CHECK(syms != NULL);
	if (syms)
		T_CHECK(has_sym(syms, "posix_spawn"));
	free(syms);
	snprintf(obj, sizeof(obj), "%s/obj/pve.o", t_build_dir());
	syms = undefined_syms(obj);
	T_CHECK(syms != NULL);
	if (syms)
		T_CHECK(has_prefix_sym(syms, "curl_"));
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
