/* Unit tests for limit: the token bucket, with a clock the test drives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "limit.h"

static void
test_limit_burst_then_rate(void **state)
{
	struct limit *l = limit_new(2, 3); /* 2/s, bursts of 3 */
	unsigned retry = 0;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(limit_take(l, "a", 1000, &retry));
	assert_false(limit_take(l, "a", 1000, &retry));
	assert_int_equal(retry, 1);
	/* Another sender has its own bucket. */
	assert_true(limit_take(l, "b", 1000, &retry));
	/* Half a second later one token has dripped in, and only one. */
	assert_true(limit_take(l, "a", 1500, &retry));
	assert_false(limit_take(l, "a", 1500, &retry));
	/* Never more than the burst, however long the wait. */
	for (int i = 0; i < 3; i++)
		assert_true(limit_take(l, "a", 100000, &retry));
	assert_false(limit_take(l, "a", 100000, &retry));
	limit_free(l);
}

static void
test_limit_off_and_expire(void **state)
{
	struct limit *off = limit_new(0, 1), *l = limit_new(1, 1);
	unsigned retry = 0;

	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_true(limit_take(off, "a", 0, &retry));
	assert_true(limit_take(l, "a", 0, &retry));
	assert_false(limit_take(l, "a", 0, &retry));
	/* Still draining: kept; refilled: forgotten, which changes nothing. */
	limit_expire(l, 500);
	assert_false(limit_take(l, "a", 500, &retry));
	limit_expire(l, 5000);
	assert_true(limit_take(l, "a", 5000, &retry));
	limit_free(off);
	limit_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limit_burst_then_rate),
	    cmocka_unit_test(test_limit_off_and_expire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
