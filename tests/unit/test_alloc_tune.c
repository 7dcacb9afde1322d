/*
 * Unit tests for alloc_tune: the GLIBC_TUNABLES value that turns glibc's
 * per-thread cache off and trims its static TLS surplus, added to
 * whatever the operator set, never over a tunable of their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "alloc_tune.h"
#include "filter.h"

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

#define ALL ALLOC_TUNE_SETTINGS
#define NNS_TLS ALLOC_TUNE_NNS ":" ALLOC_TUNE_STATIC_TLS

static void
test_alloc_tune_unset(void **state)
{
	(void)state;
	expect_tunables(NULL,
	    "glibc.malloc.tcache_max=64:glibc.rtld.nns=1:"
	    "glibc.rtld.optional_static_tls=0");
	expect_tunables("", ALL);
}

static void
test_alloc_tune_added_to_others(void **state)
{
	(void)state;
	expect_tunables(
	    "glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:" ALL);
	expect_tunables(
	    "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0",
	    "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0:" ALL);
	/* Names that only begin like it, or end like it, are others. */
	expect_tunables("glibc.malloc.tcache_counts=3",
	    "glibc.malloc.tcache_counts=3:" ALL);
	expect_tunables("x.glibc.malloc.tcache_count=3",
	    "x.glibc.malloc.tcache_count=3:" ALL);
	expect_tunables(
	    "glibc.malloc.tcache_count", "glibc.malloc.tcache_count:" ALL);
	expect_tunables(
	    "glibc.malloc.tcache_maxi=64", "glibc.malloc.tcache_maxi=64:" ALL);
	expect_tunables("glibc.rtld.nnsx=12", "glibc.rtld.nnsx=12:" ALL);
}

static void
test_alloc_tune_operator_wins(void **state)
{
	(void)state;
	/* Each one set, to anything, anywhere in the list: left alone. */
	expect_tunables("glibc.malloc.tcache_count=7",
	    "glibc.malloc.tcache_count=7:" NNS_TLS);
	expect_tunables("glibc.malloc.tcache_count=0",
	    "glibc.malloc.tcache_count=0:" NNS_TLS);
	expect_tunables("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=3",
	    "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=3:" NNS_TLS);
	/* The cache's largest block named: the cache is theirs too. */
	expect_tunables("glibc.malloc.tcache_max=1032",
	    "glibc.malloc.tcache_max=1032:" NNS_TLS);
	expect_tunables("glibc.malloc.tcache_max=0:glibc.rtld.nns=1",
	    "glibc.malloc.tcache_max=0:glibc.rtld.nns=1:" ALLOC_TUNE_STATIC_TLS);
	expect_tunables("glibc.rtld.nns=2:glibc.malloc.arena_max=2",
	    "glibc.rtld.nns=2:glibc.malloc.arena_max=2:" ALLOC_TUNE_TCACHE
	    ":" ALLOC_TUNE_STATIC_TLS);
	expect_tunables("glibc.rtld.optional_static_tls=512",
	    "glibc.rtld.optional_static_tls=512:" ALLOC_TUNE_TCACHE
	    ":" ALLOC_TUNE_NNS);
	/* All of them named: nothing to do (no second re-execution). */
	expect_tunables(ALL, NULL);
	expect_tunables("glibc.rtld.optional_static_tls=512:"
	                "glibc.malloc.tcache_count=7:glibc.rtld.nns=4",
	    NULL);
	expect_tunables("glibc.malloc.arena_max=2:" ALL, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_tune_unset),
	    cmocka_unit_test(test_alloc_tune_added_to_others),
	    cmocka_unit_test(test_alloc_tune_operator_wins),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
