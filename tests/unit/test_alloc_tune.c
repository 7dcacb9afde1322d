/*
 * Unit tests for alloc_tune: the GLIBC_TUNABLES value that turns glibc's
 * per-thread cache off, added to whatever the operator set, never over
 * their own tcache_count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "alloc_tune.h"

static void
expect_tunables(const char *current, const char *want)
{
	char *got = alloc_tune_tunables(current);

	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
test_alloc_tune_unset(void **state)
{
	(void)state;
	expect_tunables(NULL, "glibc.malloc.tcache_count=0");
	expect_tunables("", "glibc.malloc.tcache_count=0");
}

static void
test_alloc_tune_added_to_others(void **state)
{
	(void)state;
	expect_tunables("glibc.malloc.arena_max=2",
	    "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0");
	expect_tunables(
	    "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0",
	    "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0:"
	    "glibc.malloc.tcache_count=0");
	/* Names that only begin like it, or end like it, are others. */
	expect_tunables("glibc.malloc.tcache_counts=3",
	    "glibc.malloc.tcache_counts=3:glibc.malloc.tcache_count=0");
	expect_tunables("x.glibc.malloc.tcache_count=3",
	    "x.glibc.malloc.tcache_count=3:glibc.malloc.tcache_count=0");
	expect_tunables("glibc.malloc.tcache_count",
	    "glibc.malloc.tcache_count:glibc.malloc.tcache_count=0");
}

static void
test_alloc_tune_operator_wins(void **state)
{
	(void)state;
	/* Already set, to anything, anywhere in the list: left alone. */
	expect_tunables("glibc.malloc.tcache_count=7", NULL);
	expect_tunables("glibc.malloc.tcache_count=0", NULL);
	expect_tunables(
	    "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=3", NULL);
	expect_tunables(
	    "glibc.malloc.tcache_count=3:glibc.malloc.arena_max=2", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_tune_unset),
	    cmocka_unit_test(test_alloc_tune_added_to_others),
	    cmocka_unit_test(test_alloc_tune_operator_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
