/* nmsyms.c — see nmsyms.h. */
#include "nmsyms.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"

char *nmsyms_undefined(const char *obj)
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

int nmsyms_has(const char *list, const char *sym)
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

int nmsyms_has_prefix(const char *list, const char *prefix)
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
