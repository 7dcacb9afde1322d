/* Unit tests for depth: the nesting of JSON text, measured unparsed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "depth.h"
#include "filter.h"

static void
test_depth_table(void **state)
{
	static const struct {
		const char *text;
		unsigned deepest; /* within this, not one less */
	} cases[] = {
	    {"", 0},
	    {"1", 0},
	    {"\"[[[\"", 0},
	    {"[]", 1},
	    {"{}", 1},
	    {"[[],[],{}]", 2},
	    {"{\"a\":[{\"b\":[1]}]}", 4},
	    /* An escaped quote does not end the string. */
	    {"[\"\\\"[[[[\"]", 1},
	    /* An escaped backslash does. */
	    {"[\"\\\\\",[[1]]]", 3},
	    /* Unbalanced closers do not lower the count below zero. */
	    {"]]]]}}[[", 2},
	    /* Not JSON at all, measured all the same. */
	    {"[[[ x", 3},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = cases[i].text;

		assert_true(depth_json_within(t, strlen(t), cases[i].deepest));
		if (cases[i].deepest > 0)
			assert_false(depth_json_within(
			    t, strlen(t), cases[i].deepest - 1));
	}
}

/* The length is what counts, not a NUL: a NUL hides nothing. */
static void
test_depth_nul(void **state)
{
	const char t[] = "[\0[[";

	(void)state;
	assert_true(depth_json_within(t, 1, 1));
	assert_false(depth_json_within(t, 4, 2));
}

/* The byte-at-a-time scan depth_json_within() once was: the reference. */
static bool
depth_reference(const char *s, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return false;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

/*
 * Texts of quotes, backslashes, brackets, a letter and NUL, every depth
 * bound: the string-skipping scan answers as the reference does.
 */
static void
test_depth_matches_reference(void **state)
{
	static const char alphabet[] = {
	    '"', '\\', '[', ']', '{', '}', 'a', '\0'};
	char t[24];
	uint32_t x = 2463534242u; /* xorshift32: the same texts every run */

	(void)state;
	for (int n = 0; n < 200000; n++) {
		size_t len = (size_t)(n % (int)sizeof(t));

		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			t[i] = alphabet[x % sizeof(alphabet)];
		}
		for (unsigned max = 0; max < 5; max++)
			if (depth_json_within(t, len, max) !=
			    depth_reference(t, len, max))
				fail_msg(
				    "depth %u of \"%.*s\"", max, (int)len, t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_depth_table),
	    cmocka_unit_test(test_depth_nul),
	    cmocka_unit_test(test_depth_matches_reference),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
