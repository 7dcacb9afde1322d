/* Unit tests for limit: the token bucket, with a clock the test drives. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "filter.h"
#include "keyed_hash.h"
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

/*
 * A key taken with the hash its caller made (the API's sender) and
 * without is one bucket: the API takes with it, and a bucket found by
 * another hash would give a sender a second burst.
 */
static void
test_limit_hashed_same_bucket(void **state)
{
	struct limit *l = limit_new(1, 2);
	unsigned retry = 0;

	(void)state;
	assert_true(limit_take(l, "u:al", 1000, &retry));
	assert_true(limit_take_hashed(
	    l, "u:al", 4, keyed_hash64("u:al", 4), 1000, &retry));
	assert_false(limit_take(l, "u:al", 1000, &retry));
	assert_false(limit_take_hashed(
	    l, "u:al", 4, keyed_hash64("u:al", 4), 1000, &retry));
	assert_true(limit_take_hashed(
	    l, "u:bo", 4, keyed_hash64("u:bo", 4), 1000, &retry));
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

/*
 * The expiry forgets the buckets untouched for burst/rate seconds, least
 * recently used first, and stops at the first recent one: a bucket used
 * again moves behind the others.
 */
static void
test_limit_expire_in_use_order(void **state)
{
	struct limit *l = limit_new(2, 4); /* full again 2 s after use */
	unsigned retry = 0;

	(void)state;
	assert_true(limit_take(l, "a", 0, &retry));
	assert_true(limit_take(l, "b", 100, &retry));
	assert_true(limit_take(l, "c", 200, &retry));
	assert_true(limit_take(l, "a", 300, &retry)); /* a: behind c */
	assert_int_equal(limit_expire(l, 2099), 0);
	/* b (used at 100) is refilled at 2100; a, used again at 300, not. */
	assert_int_equal(limit_expire(l, 2100), 1);
	assert_int_equal(limit_expire(l, 2199), 0);
	assert_int_equal(limit_expire(l, 2300), 2); /* c, then a */
	assert_int_equal(limit_expire(l, 100000), 0);
	/* A forgotten bucket is a full one: the whole burst again. */
	for (int i = 0; i < 4; i++)
		assert_true(limit_take(l, "a", 100000, &retry));
	assert_false(limit_take(l, "a", 100000, &retry));
	limit_free(l);
}

/* Many buckets, expired as time passes: each forgotten once, in order. */
static void
test_limit_expire_many(void **state)
{
	struct limit *l = limit_new(1000, 1000); /* full again 1 s after use */
	unsigned retry = 0;
	char key[32];
	size_t total = 0;

	(void)state;
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_true(limit_take(l, key, (uint64_t)i, &retry));
	}
	/* At 1000 only k0 (used at 0) is due; then 1000 a second. */
	for (uint64_t now = 1000; now <= 11000; now += 1000) {
		size_t n = limit_expire(l, now);

		assert_int_equal(n,
		    now == 1000        ? 1
		        : now == 11000 ? 999
		                       : 1000);
		total += n;
	}
	assert_int_equal(total, 10000);
	limit_free(l);
}

#define H(k) (k), sizeof(k) - 1, keyed_hash64((k), sizeof(k) - 1)

/*
 * A charge (a subscribe's replay, paid once known) takes however much,
 * into debt: the bucket owes until it has refilled past 0, and takes no
 * token until it holds one again.  limit_owes_hashed() only looks.
 */
static void
test_limit_charge_into_debt(void **state)
{
	struct limit *l = limit_new(2, 4); /* 2/s, bursts of 4 */
	unsigned retry = 0;

	(void)state;
	/* No bucket: owes nothing, and none is made. */
	assert_false(limit_owes_hashed(l, H("a"), 0, &retry));
	assert_int_equal(limit_expire(l, 1000000), 0);
	/* 4 tokens, 3.5 charged: owes nothing, half a token to take. */
	limit_charge_hashed(l, H("a"), 1000, 3500);
	assert_false(limit_owes_hashed(l, H("a"), 1000, &retry));
	assert_false(limit_take(l, "a", 1000, &retry));
	assert_int_equal(retry, 1);
	/* At the limit: 6.5 more owes 6 tokens, 3 s at 2/s. */
	limit_charge_hashed(l, H("a"), 1000, 6500);
	assert_true(limit_owes_hashed(l, H("a"), 1000, &retry));
	assert_int_equal(retry, 3);
	assert_false(limit_take(l, "a", 1000, &retry));
	assert_int_equal(retry, 4); /* 7 tokens: 3.5 s, rounded up */
	/* One ms short of paid, and paid. */
	assert_true(limit_owes_hashed(l, H("a"), 3999, &retry));
	assert_int_equal(retry, 1);
	assert_false(limit_owes_hashed(l, H("a"), 4000, &retry));
	assert_false(limit_take(l, "a", 4000, &retry));
	assert_true(limit_take(l, "a", 4500, &retry));
	/* Another sender's bucket is its own; off charges nothing. */
	assert_false(limit_owes_hashed(l, H("b"), 1000, &retry));
	limit_free(l);
	l = limit_new(0, 1);
	limit_charge_hashed(l, H("a"), 0, 1000000);
	assert_false(limit_owes_hashed(l, H("a"), 0, &retry));
	assert_true(limit_take(l, "a", 0, &retry));
	limit_free(l);
}

/*
 * A bucket that owes is full again only once it has paid and refilled:
 * not forgotten before (a forgotten one is a full one, and would let its
 * sender off its debt).  Nor does it hold up those behind it: before, the
 * expiry stopped at it, and at BEEP_RATE 1 a sender owing for a few
 * replays kept every other sender's bucket for hours.
 */
static void
test_limit_expire_owed(void **state)
{
	struct limit *l = limit_new(1, 2); /* full again 2 s after use */
	unsigned retry = 0;

	(void)state;
	limit_charge_hashed(l, H("a"), 0, 12000); /* owes 10: 12 s to full */
	assert_true(limit_take(l, "b", 100, &retry));
	assert_true(limit_take(l, "c", 200, &retry));
	assert_int_equal(limit_expire(l, 2099), 0);
	assert_int_equal(limit_expire(l, 2100), 1);  /* b, behind a */
	assert_int_equal(limit_expire(l, 11999), 1); /* c */
	assert_true(limit_owes_hashed(l, H("a"), 9999, &retry));
	assert_int_equal(limit_expire(l, 11999), 0);
	assert_int_equal(limit_expire(l, 12000), 1); /* a */
	assert_true(limit_take(l, "a", 12000, &retry));
	assert_true(limit_take(l, "a", 12000, &retry));
	assert_false(limit_take(l, "a", 12000, &retry));
	/* Two that owe, one used behind them: each goes in its time. */
	limit_charge_hashed(l, H("a"), 20000, 5000); /* owes 3: 25 s */
	limit_charge_hashed(l, H("d"), 20000, 4000); /* owes 2: 24 s */
	assert_true(limit_take(l, "e", 20500, &retry));
	assert_int_equal(limit_expire(l, 22500), 1); /* e */
	assert_int_equal(limit_expire(l, 23999), 0);
	assert_int_equal(limit_expire(l, 24000), 1); /* d */
	/* a has paid at 23 s, and is full, and forgotten, at 25 s. */
	assert_false(limit_owes_hashed(l, H("a"), 24000, &retry));
	assert_int_equal(limit_expire(l, 24999), 0);
	assert_int_equal(limit_expire(l, 25000), 1); /* a */
	assert_int_equal(limit_expire(l, 100000), 0);
	limit_free(l);
}

/*
 * Debts past what Retry-After's unsigned seconds hold (BEEP_RATE 1, a
 * charge of any size: limit_charge_hashed() bounds it, as it bounds a
 * bucket's debt through repeated charges): the wait is the most it can
 * say, never one wrapped to a few seconds (or 0, which the API made 1).
 * And at the other end, BEEP_RATE 100000 and BEEP_BURST 1000000, a
 * bucket that owes as much pays and is full and forgotten in time.
 */
static void
test_limit_debt_extremes(void **state)
{
	struct limit *l = limit_new(1, 1);
	unsigned retry = 0;

	(void)state;
	for (int i = 0; i < 8; i++) {
		limit_charge_hashed(l, H("a"), 0, UINT64_MAX);
		assert_true(limit_owes_hashed(l, H("a"), 0, &retry));
		assert_int_equal(retry, UINT_MAX);
		assert_false(limit_take(l, "a", 0, &retry));
		assert_int_equal(retry, UINT_MAX);
	}
	/* Owed about 2^62.6 ms at 1/s: not full (nor forgotten) before. */
	assert_int_equal(limit_expire(l, UINT64_MAX / 4), 0);
	assert_int_equal(limit_expire(l, UINT64_MAX - 1), 1);
	limit_free(l);
	l = limit_new(100000, 1000000);
	/* 10^10 thousandths: 10^7 tokens, 100 s at 100000/s. */
	limit_charge_hashed(l, H("a"), 0, 10000000000ull + 1000000000ull);
	assert_true(limit_owes_hashed(l, H("a"), 0, &retry));
	assert_int_equal(retry, 100);
	assert_true(limit_owes_hashed(l, H("a"), 99999, &retry));
	assert_int_equal(retry, 1);
	assert_false(limit_owes_hashed(l, H("a"), 100000, &retry));
	/* Full 10 s later (10^6 tokens at 100000/s), then forgotten. */
	assert_int_equal(limit_expire(l, 109999), 0);
	assert_int_equal(limit_expire(l, 110000), 1);
	limit_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limit_burst_then_rate),
	    cmocka_unit_test(test_limit_hashed_same_bucket),
	    cmocka_unit_test(test_limit_off_and_expire),
	    cmocka_unit_test(test_limit_expire_in_use_order),
	    cmocka_unit_test(test_limit_expire_many),
	    cmocka_unit_test(test_limit_charge_into_debt),
	    cmocka_unit_test(test_limit_expire_owed),
	    cmocka_unit_test(test_limit_debt_extremes),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
