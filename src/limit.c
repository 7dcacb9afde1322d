/*
 * limit: see limit.h.
 *
 * LOCKING: l->lock guards the bucket table; it is held for a lookup and a
 * little arithmetic.  Buckets are kept in thousandths of a token, so the
 * refill is exact integer arithmetic.
 */
#include "limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "util.h"

struct bucket {
	char *key;
	uint64_t milli; /* tokens x 1000 at t_ms */
	uint64_t t_ms;
	UT_hash_handle hh;
};

struct limit {
	pthread_mutex_t lock;
	uint64_t rate, burst; /* tokens per second; bucket size */
	struct bucket *buckets;
};

struct limit *
limit_new(unsigned rate, unsigned burst)
{
	struct limit *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->lock, NULL);
	l->rate = rate;
	l->burst = burst ? burst : 1;
	return l;
}

void
limit_free(struct limit *l)
{
	struct bucket *b, *tmp;

	if (l == NULL)
		return;
	HASH_ITER(hh, l->buckets, b, tmp)
	{
		HASH_DEL(l->buckets, b);
		free(b->key);
		free(b);
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Add what has dripped in since b->t_ms, up to the bucket's size. */
static void
bucket_refill(const struct limit *l, struct bucket *b, uint64_t now_ms)
{
	uint64_t full = l->burst * 1000;

	if (now_ms > b->t_ms) {
		b->milli += (now_ms - b->t_ms) * l->rate;
		b->t_ms = now_ms;
	}
	if (b->milli > full)
		b->milli = full;
}

bool
limit_take(
    struct limit *l, const char *key, uint64_t now_ms, unsigned *retry_after)
{
	struct bucket *b;
	bool ok;

	if (l->rate == 0)
		return true;
	pthread_mutex_lock(&l->lock);
	HASH_FIND_STR(l->buckets, key, b);
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->key = xstrdup(key);
		b->milli = l->burst * 1000;
		b->t_ms = now_ms;
		HASH_ADD_KEYPTR(hh, l->buckets, b->key, strlen(b->key), b);
	}
	bucket_refill(l, b, now_ms);
	ok = b->milli >= 1000;
	if (ok) {
		b->milli -= 1000;
	} else {
		/* ms until one whole token, rounded up to seconds. */
		uint64_t ms = ((1000 - b->milli) + l->rate - 1) / l->rate;

		*retry_after = (unsigned)((ms + 999) / 1000);
	}
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void
limit_expire(struct limit *l, uint64_t now_ms)
{
	struct bucket *b, *tmp;

	pthread_mutex_lock(&l->lock);
	HASH_ITER(hh, l->buckets, b, tmp)
	{
		bucket_refill(l, b, now_ms);
		if (b->milli == l->burst * 1000) {
			HASH_DEL(l->buckets, b);
			free(b->key);
			free(b);
		}
	}
	pthread_mutex_unlock(&l->lock);
}
