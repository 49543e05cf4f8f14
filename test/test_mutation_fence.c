/* test_mutation_fence.c — the executor is the only way to Proxmox change:
 * over every built object of the agent (every .o in build/obj and build/obj/gen, generated machines
 * included), only recon.o may reference a Proxmox mutation (nm -u), and it
 * must, so the fence cannot pass by a rename. pve.o defines them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nmsyms.h"

static const char *const mutations[] = { "pve_start", "pve_stop", "pve_shutdown", "pve_destroy",
					 "pve_restore_lxc", "pve_vzdump", "pve_snapshot", "pve_rollback",
					 "pve_delete_snapshot", "pve_set_config", "pve_delete_volume", NULL };

/* Checks every object in dir; counts them in *n. */
static void check_dir(const char *dir, size_t *n, unsigned *recon_refs)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		t_failf(__FILE__, __LINE__, "cannot open %s", dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name), i;
		char obj[1024];
		char *syms;
		int is_recon;

		if (len < 3 || strcmp(de->d_name + len - 2, ".o"))
			continue;
		snprintf(obj, sizeof(obj), "%s/%s", dir, de->d_name);
		syms = nmsyms_undefined(obj);
		if (!syms) {
			t_failf(__FILE__, __LINE__, "nm failed on %s", obj);
			continue;
		}
		(*n)++;
		is_recon = !strcmp(de->d_name, "recon.o");
		for (i = 0; mutations[i]; i++) {
			if (!nmsyms_has(syms, mutations[i]))
				continue;
			if (is_recon)
				(*recon_refs)++;
			else
				t_failf(__FILE__, __LINE__, "%s references %s: only the executor (recon.o) may", obj,
					mutations[i]);
		}
		free(syms);
	}
	closedir(d);
}

T_TEST(t_only_the_executor_mutates)
{
	char dir[512];
	size_t n = 0;
	unsigned recon_refs = 0;

	snprintf(dir, sizeof(dir), "%s/obj", t_build_dir());
	check_dir(dir, &n, &recon_refs);
	snprintf(dir, sizeof(dir), "%s/obj/gen", t_build_dir());
	check_dir(dir, &n, &recon_refs);
	/* the agent's objects were all there: main, daemon, recon, pve, ... */
	T_CHECK(n >= 20);
	/* and the executor really is where the mutations are */
	T_EQ_INT(recon_refs, 11);
}

int main(void)
{
	T_RUN(t_only_the_executor_mutates);
	return t_done();
}
