/* Unit tests for quota: counts per key with a ceiling, and threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>
#include <pthread.h>

#include "filter.h"
#include "quota.h"

static void
test_quota_at_the_limit(void **state)
{
	struct quota *q = quota_new(3);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(quota_acquire(q, "10.0.0.1"));
	assert_false(quota_acquire(q, "10.0.0.1"));
	assert_int_equal(quota_count(q, "10.0.0.1"), 3);
	/* Another key has its own count. */
	assert_true(quota_acquire(q, "10.0.0.2"));
	/* One released: one more fits, and only one. */
	quota_release(q, "10.0.0.1");
	assert_true(quota_acquire(q, "10.0.0.1"));
	assert_false(quota_acquire(q, "10.0.0.1"));
	for (int i = 0; i < 3; i++)
		quota_release(q, "10.0.0.1");
	assert_int_equal(quota_count(q, "10.0.0.1"), 0);
	/* Releasing what is not held changes nothing. */
	quota_release(q, "10.0.0.1");
	quota_release(q, "nobody");
	assert_int_equal(quota_count(q, "10.0.0.1"), 0);
	assert_int_equal(quota_count(q, "10.0.0.2"), 1);
	quota_free(q); /* with a key still held: freed all the same */
}

/*
 * quota_acquire_over(): past max until the place it took comes back, and
 * never past twice max.
 */
static void
test_quota_over(void **state)
{
	struct quota *q = quota_new(2);

	(void)state;
	assert_true(quota_limited(q));
	assert_true(quota_acquire(q, "a"));
	assert_true(quota_acquire(q, "a"));
	assert_false(quota_acquire(q, "a"));
	assert_true(quota_acquire_over(q, "a"));
	assert_int_equal(quota_count(q, "a"), 3);
	/* The one it took the place of ends: at max, still full. */
	quota_release(q, "a");
	assert_int_equal(quota_count(q, "a"), 2);
	assert_false(quota_acquire(q, "a"));
	/* Displaced ones that take long to end: at most 2 x max. */
	assert_true(quota_acquire_over(q, "a"));
	assert_true(quota_acquire_over(q, "a"));
	assert_false(quota_acquire_over(q, "a"));
	assert_int_equal(quota_count(q, "a"), 4);
	quota_release(q, "a");
	quota_release(q, "a");
	quota_release(q, "a");
	assert_true(quota_acquire(q, "a"));
	/* Over a key that held nothing yet, too. */
	assert_true(quota_acquire_over(q, "b"));
	assert_int_equal(quota_count(q, "b"), 1);
	quota_release(q, "b");
	quota_release(q, "a");
	quota_release(q, "a");
	assert_int_equal(quota_count(q, "a"), 0);
	assert_int_equal(quota_count(q, "b"), 0);
	quota_free(q);
}

static void
test_quota_off(void **state)
{
	struct quota *q = quota_new(0);

	(void)state;
	assert_false(quota_limited(q));
	for (int i = 0; i < 10000; i++)
		assert_true(quota_acquire(q, "a"));
	assert_true(quota_acquire_over(q, "a"));
	quota_release(q, "a");
	quota_free(q);
}

#define THREADS 4
#define ROUNDS 20000

static void *
churn(void *arg)
{
	struct quota *q = arg;

	for (int i = 0; i < ROUNDS; i++)
		if (quota_acquire(q, "shared"))
			quota_release(q, "shared");
	return NULL;
}

/* Acquire and release from several threads: nothing is lost. */
static void
test_quota_threads(void **state)
{
	struct quota *q = quota_new(2);
	pthread_t t[THREADS];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, q), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(quota_count(q, "shared"), 0);
	assert_true(quota_acquire(q, "shared"));
	assert_true(quota_acquire(q, "shared"));
	assert_false(quota_acquire(q, "shared"));
	quota_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quota_at_the_limit),
	    cmocka_unit_test(test_quota_over),
	    cmocka_unit_test(test_quota_off),
	    cmocka_unit_test(test_quota_threads),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
