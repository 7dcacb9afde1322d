/*
 * limit: see limit.h.
 *
 * LOCKING: l->lock guards the bucket table and the use list; it is held
 * for a lookup and a little arithmetic, and by limit_expire() for the
 * buckets it forgets plus one.  Buckets are kept in thousandths of a token,
 * so the refill is exact integer arithmetic.
 *
 * The use list holds every bucket, least recently used first: a bucket
 * untouched for l->refill_ms is full again, the same as a new one, so the
 * expiry forgets from the head and stops at the first recent bucket.
 */
#include "limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "keyed_hash.h"
#include "util.h"

struct bucket {
	char *key;
	uint64_t milli; /* tokens x 1000 at t_ms */
	uint64_t t_ms;  /* the last refill, i.e. the last use */
	UT_hash_handle hh;
	struct bucket *prev, *next; /* the use list */
};

struct limit {
	pthread_mutex_t lock;
	uint64_t rate, burst; /* tokens per second; bucket size */
	uint64_t refill_ms;   /* an empty bucket is full again after it */
	struct bucket *buckets;
	struct bucket *lru; /* least recently used first */
};

struct limit *
limit_new(unsigned rate, unsigned burst)
{
	struct limit *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->lock, NULL);
	l->rate = rate;
	l->burst = burst ? burst : 1;
	if (rate > 0)
		l->refill_ms = (l->burst * 1000 + l->rate - 1) / l->rate;
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
	size_t len;

	if (l->rate == 0)
		return true;
	len = strlen(key);
	return limit_take_hashed(
	    l, key, len, keyed_hash64(key, len), now_ms, retry_after);
}

/*
 * The table's hash of a key is its keyed_hash64(), cut to uthash's
 * width, whichever function was called: one key, one bucket.
 */
bool
limit_take_hashed(struct limit *l, const char *key, size_t len, uint64_t hash,
    uint64_t now_ms, unsigned *retry_after)
{
	unsigned hashv = (unsigned)hash;
	struct bucket *b;
	bool ok;

	if (l->rate == 0)
		return true;
	pthread_mutex_lock(&l->lock);
	HASH_FIND_BYHASHVALUE(hh, l->buckets, key, len, hashv, b);
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->key = xmemdup(key, len);
		b->milli = l->burst * 1000;
		b->t_ms = now_ms;
		HASH_ADD_KEYPTR_BYHASHVALUE(
		    hh, l->buckets, b->key, len, hashv, b);
	} else {
		DL_DELETE(l->lru, b);
	}
	/*
	 * Used now: to the tail.  Threads read the clock before taking the
	 * lock, so the list is in t_ms order but for such gaps; a bucket is
	 * then forgotten one expiry later at worst, never too early.
	 */
	DL_APPEND(l->lru, b);
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

size_t
limit_expire(struct limit *l, uint64_t now_ms)
{
	struct bucket *b;
	size_t n = 0;

	pthread_mutex_lock(&l->lock);
	while ((b = l->lru) != NULL && b->t_ms + l->refill_ms <= now_ms) {
		DL_DELETE(l->lru, b);
		HASH_DEL(l->buckets, b);
		free(b->key);
		free(b);
		n++;
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}
