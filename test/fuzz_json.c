/* fuzz_json.c — libFuzzer target for the bounded JSON tree and the config
 * loader's reader paths (not built by default):
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude test/fuzz_json.c \
 *     src/json.c src/err.c -lyajl -o build/fuzz_json && build/fuzz_json -max_len=4096
 */
#include <stddef.h>
#include <stdint.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct json *j, unsigned depth)
{
	size_t i;
	int64_t iv;
	double dv;
	bool bv;
	const char *s;
	char small[8];

	if (!j || depth > 64)
		return;
	(void)json_int(j, &iv);
	(void)json_int_strict(j, &iv);
	(void)json_double(j, &dv);
	(void)json_bool(j, &bv);
	(void)json_str(j, &s);
	(void)json_strcpy(j, small, sizeof(small));
	for (i = 0; i < j->n; i++)
		walk(j->items[i], depth + 1);
	if (j->type == JSON_OBJECT && j->n)
		(void)json_get(j, j->keys[j->n - 1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct json_limits lim[2] = { { 1 << 16, 16, false }, { 1 << 16, 64, true } };
	struct json *j = NULL;
	int k;

	for (k = 0; k < 2; k++) {
		if (json_parse((const char *)data, size, &lim[k], &j, NULL, 0) == 0) {
			walk(j, 0);
			(void)json_path(j, "a.b.c");
			json_free(j);
			j = NULL;
		}
	}
	return 0;
}
