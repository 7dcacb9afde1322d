/* Unit tests for depth: the nesting of JSON text, measured unparsed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "depth.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_depth_table),
	    cmocka_unit_test(test_depth_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
