/*
 * One case, or a few, of a unit binary: each main() calls
 * filter_from_env() before it runs its groups, so that
 *
 *	T='test_cluster_resynced_*' build/tests/test_cluster
 *
 * runs only the cases whose names match T, a cmocka glob ('*' any
 * characters, '?' one).  Unset or empty, every case runs.
 */
#ifndef TEST_FILTER_H
#define TEST_FILTER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

/*
 * cmocka keeps the pointer, not a copy: getenv()'s string of the
 * environment the process started with lives as long as the process,
 * whatever a case does to the environment later.
 */
static inline void
filter_from_env(void)
{
	const char *pattern = getenv("T");

	if (pattern != NULL && *pattern != '\0')
		cmocka_set_test_filter(pattern);
}

#endif
