/* fuzz_replay.c — runs a libFuzzer target over its corpus without libFuzzer,
 * so make check replays every checked-in input under the sanitizers.
 * The binary is build/test_fuzz_NAME; the corpus is vectors/fuzz/NAME/. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	const char *name;
	char dirpath[512], path[1024];
	struct dirent *de;
	DIR *d;
	size_t inputs = 0;

	(void)argc;
	base = base ? base + 1 : argv[0];
	name = strncmp(base, "test_fuzz_", 10) == 0 ? base + 10 : base;
	snprintf(dirpath, sizeof(dirpath), "vectors/fuzz/%s", name);
	d = opendir(dirpath);
	if (!d) {
		printf("FAIL replay_%s\n  no corpus at %s\n# passed 0 failed 1\n", name, dirpath);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = 0;
		char *data;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
		data = t_slurp(path, &len);
		if (!data)
			continue;
		/* an exact-size copy, so reads past the end are caught */
		{
			uint8_t *exact = malloc(len ? len : 1);
			if (!exact)
				abort();
			memcpy(exact, data, len);
			LLVMFuzzerTestOneInput(exact, len);
			free(exact);
		}
		free(data);
		inputs++;
	}
	closedir(d);
	if (inputs == 0) {
		printf("FAIL replay_%s\n  empty corpus %s\n# passed 0 failed 1\n", name, dirpath);
		return 1;
	}
	printf("ok replay_%s (%zu inputs)\n# passed 1 failed 0\n", name, inputs);
	return 0;
}
