/*
 * limit: a token bucket per sender, so that no one client can cost more
 * than rate requests a second (with bursts up to burst).  Thread-safe.
 */
#ifndef BEEP_LIMIT_H
#define BEEP_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct limit;

/* rate tokens a second, at most burst; rate 0 allows everything. */
struct limit *limit_new(unsigned rate, unsigned burst);
void limit_free(struct limit *l);

/*
 * Take a token from key's bucket at now_ms (CLOCK_MONOTONIC).  Returns
 * true, or false with *retry_after set to the whole seconds until the
 * next token.
 */
bool limit_take(
    struct limit *l, const char *key, uint64_t now_ms, unsigned *retry_after);

/*
 * limit_take() of key's len bytes, whose keyed_hash64() its caller has
 * made already (the API names a POST's sender by it): the key is not
 * hashed again, and not under the lock.
 */
bool limit_take_hashed(struct limit *l, const char *key, size_t len,
    uint64_t hash, uint64_t now_ms, unsigned *retry_after);

/*
 * Take milli thousandths of a token from key's bucket at now_ms, however
 * few it holds: it may go below 0 and owe them (a cost known only once
 * paid for: a subscribe's replay), and then every limit_take_hashed()
 * waits until it has refilled past that.
 */
void limit_charge_hashed(struct limit *l, const char *key, size_t len,
    uint64_t hash, uint64_t now_ms, uint64_t milli);

/*
 * Whether key's bucket owes tokens at now_ms (limit_charge_hashed()):
 * then true, with *retry_after set to the whole seconds until it owes
 * none.  Takes nothing; false for a key without a bucket, and with rate 0.
 */
bool limit_owes_hashed(struct limit *l, const char *key, size_t len,
    uint64_t hash, uint64_t now_ms, unsigned *retry_after);

/*
 * Forget buckets that have refilled (untouched for burst/rate seconds,
 * plus the time to refill what they owe): they are the same as new ones.
 * O(forgotten): the buckets are kept in order of use.  Returns how many were forgotten.
 */
size_t limit_expire(struct limit *l, uint64_t now_ms);

#endif
