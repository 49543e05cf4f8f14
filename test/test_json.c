/* test_json.c — the bounded JSON tree and its lenient/strict readers. */
#include <stdlib.h>

#include "err.h"
#include "harness.h"
#include "json.h"

static const struct json_limits strict = { 4096, 8, false };
static const struct json_limits lenient = { 4096, 8, true };

static int parse(const char *s, const struct json_limits *l, struct json **out)
{
	return json_parse(s, strlen(s), l, out, NULL, 0);
}

T_TEST(t_parse_basic)
{
	struct json *j = NULL;
	int64_t i;
	double d;
	bool b;
	const char *s;

	T_OK(parse("{\"a\":1,\"b\":\"2\",\"c\":[true,null],\"d\":{\"e\":0.25},\"f\":\"x\"}", &strict, &j));
	T_OK(json_int(json_get(j, "a"), &i));
	T_EQ_INT(i, 1);
	T_OK(json_int(json_get(j, "b"), &i));   /* number sent as string */
	T_EQ_INT(i, 2);
	T_ERR(json_int_strict(json_get(j, "b"), &i), FH_ERR_DECODE);
	T_OK(json_double(json_path(j, "d.e"), &d));
	T_CHECK(d > 0.24 && d < 0.26);
	T_OK(json_bool(json_get(j, "c")->items[0], &b));
	T_CHECK(b);
	T_ERR(json_int(json_get(j, "c")->items[1], &i), FH_ERR_NOT_FOUND);
	T_ERR(json_int(json_get(j, "zz"), &i), FH_ERR_NOT_FOUND);
	T_ERR(json_int(json_get(j, "f"), &i), FH_ERR_DECODE);
	T_OK(json_str(json_get(j, "f"), &s));
	T_EQ_STR(s, "x");
	json_free(j);
}

T_TEST(t_numbers_exact)
{
	struct json *j = NULL;
	int64_t i;

	T_OK(parse("[1.0, 1e3, 9223372036854775807, 9223372036854775808, -5]", &strict, &j));
	T_ERR(json_int_strict(j->items[0], &i), FH_ERR_DECODE);
	T_OK(json_int(j->items[0], &i));
	T_EQ_INT(i, 1);
	T_ERR(json_int_strict(j->items[1], &i), FH_ERR_DECODE);
	T_OK(json_int_strict(j->items[2], &i));
	T_CHECK(i == INT64_MAX);
	T_ERR(json_int_strict(j->items[3], &i), FH_ERR_DECODE);
	T_OK(json_int_strict(j->items[4], &i));
	T_EQ_INT(i, -5);
	json_free(j);
}

T_TEST(t_bool_spellings)
{
	struct json *j = NULL;
	bool b = true;

	T_OK(parse("[0, 1, \"1\", \"0\", true, false, 2, \"maybe\"]", &strict, &j));
	T_OK(json_bool(j->items[0], &b));
	T_CHECK(!b);
	T_OK(json_bool(j->items[1], &b));
	T_CHECK(b);
	T_OK(json_bool(j->items[2], &b));
	T_CHECK(b);
	T_OK(json_bool(j->items[3], &b));
	T_CHECK(!b);
	T_ERR(json_bool(j->items[6], &b), FH_ERR_DECODE);
	T_ERR(json_bool(j->items[7], &b), FH_ERR_DECODE);
	json_free(j);
}

T_TEST(t_rejects)
{
	struct json *j = NULL;
	char deep[64];
	char why[64];

	T_ERR(parse("{\"a\":1,\"a\":2}", &strict, &j), FH_ERR_DECODE);
	T_OK(parse("{\"a\":1,\"a\":2}", &lenient, &j));
	json_free(j);
	j = NULL;
	T_ERR(parse("{\"a\":1} x", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("{\"a\":1} {}", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("{} \"x", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("[1] \"", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("5 \"x", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("{\"a\":", &strict, &j), FH_ERR_DECODE);
	T_ERR(parse("[\"\xff\"]", &strict, &j), FH_ERR_DECODE);   /* invalid UTF-8 */
	T_ERR(parse("{\"a\\u0000b\":1}", &strict, &j), FH_ERR_DECODE);
	memset(deep, '[', 9);
	memset(deep + 9, ']', 9);
	deep[18] = '\0';
	T_ERR(json_parse(deep, strlen(deep), &strict, &j, why, sizeof(why)), FH_ERR_TOOBIG);
	T_EQ_STR(why, "nesting too deep");
	deep[8] = ']';
	deep[17] = '\0';
	memmove(deep + 8, deep + 9, 9);
	T_OK(parse("[[[[[[[[]]]]]]]]", &strict, &j));
	json_free(j);
	j = NULL;
	T_OK(parse(" 5 \n", &strict, &j));
	json_free(j);
	j = NULL;
	T_OK(parse("\"s\"\r\n", &strict, &j));
	json_free(j);
	j = NULL;
	{
		struct json_limits small = { 8, 8, false };
		T_ERR(parse("[1,2,3,4,5]", &small, &j), FH_ERR_TOOBIG);
	}
	T_CHECK(j == NULL);
}

T_TEST(t_embedded_nul_string)
{
	struct json *j = NULL;
	const char *s;
	char buf[8];

	T_OK(parse("[\"a\\u0000b\"]", &strict, &j));
	T_ERR(json_str(j->items[0], &s), FH_ERR_DECODE);
	T_ERR(json_strcpy(j->items[0], buf, sizeof(buf)), FH_ERR_DECODE);
	json_free(j);
}

T_TEST(t_strcpy_bounds)
{
	struct json *j = NULL;
	char buf[4];

	T_OK(parse("[\"abc\",\"abcd\",42]", &strict, &j));
	T_OK(json_strcpy(j->items[0], buf, sizeof(buf)));
	T_EQ_STR(buf, "abc");
	T_ERR(json_strcpy(j->items[1], buf, sizeof(buf)), FH_ERR_TOOBIG);
	T_OK(json_strcpy(j->items[2], buf, sizeof(buf)));
	T_EQ_STR(buf, "42");
	json_free(j);
}

int main(void)
{
	T_RUN(t_parse_basic);
	T_RUN(t_numbers_exact);
	T_RUN(t_bool_spellings);
	T_RUN(t_rejects);
	T_RUN(t_embedded_nul_string);
	T_RUN(t_strcpy_bounds);
	return t_done();
}
