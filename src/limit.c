/*
 * limit: see limit.h.
 *
 * LOCKING: l->lock guards the bucket table and the use list; it is held
 * for a lookup and a little arithmetic, and by limit_expire() for the
 * buckets it forgets plus one.  Buckets are kept in thousandths of a token,
 * so the refill is exact integer arithmetic.  A bucket may owe tokens
 * (limit_charge_hashed(): a subscribe's replay, paid once known): then
 * milli is below 0, and it refills from there.
 *
 * The use list holds every bucket, least recently used first: a bucket
 * untouched for l->refill_ms is full again, the same as a new one, so the
 * expiry forgets from the head and stops at the first recent bucket.  One
 * that owes is full again that much later (bucket_full_ms()): the expiry
 * puts it behind the rest rather than stop at it (which kept every
 * bucket behind it, every new sender's, for as long as its debt), and
 * never forgets it too early; one that does not owe is never behind a
 * more recent one that does not owe either.  An expiry looks at each
 * bucket that owes at most once.
 */
#include "limit.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "keyed_hash.h"
#include "util.h"

struct bucket {
	char *key;
	int64_t milli; /* tokens x 1000 at t_ms; below 0 while it owes */
	uint64_t t_ms; /* the last refill, i.e. the last use */
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
	int64_t full = (int64_t)(l->burst * 1000);

	if (now_ms > b->t_ms) {
		b->milli += (int64_t)((now_ms - b->t_ms) * l->rate);
		b->t_ms = now_ms;
	}
	if (b->milli > full)
		b->milli = full;
}

/* When b is full again at the latest: later by what it owes. */
static uint64_t
bucket_full_ms(const struct limit *l, const struct bucket *b)
{
	uint64_t owed = b->milli < 0 ? (uint64_t)-b->milli : 0;

	return b->t_ms + l->refill_ms + (owed + l->rate - 1) / l->rate;
}

/*
 * Whole seconds, at least 1, until milli (x 1000 tokens, below want)
 * has refilled to want; at most UINT_MAX, not wrapped to a few: a debt
 * limit_charge_hashed() bounds may still be far past it at BEEP_RATE 1.
 */
static unsigned
milli_wait(const struct limit *l, int64_t milli, int64_t want)
{
	uint64_t ms = ((uint64_t)(want - milli) + l->rate - 1) / l->rate;
	uint64_t s = (ms + 999) / 1000;

	if (s > UINT_MAX)
		return UINT_MAX;
	return s > 0 ? (unsigned)s : 1;
}

/*
 * key's bucket, refilled to now_ms and moved to the use list's tail; a
 * new, full one when it has none.  With l->lock held.
 */
static inline struct bucket *bucket_use(struct limit *l, const char *key,
    size_t len, uint64_t hash, uint64_t now_ms) __attribute__((always_inline));

static inline struct bucket *
bucket_use(struct limit *l, const char *key, size_t len, uint64_t hash,
    uint64_t now_ms)
{
	unsigned hashv = (unsigned)hash;
	struct bucket *b;

	HASH_FIND_BYHASHVALUE(hh, l->buckets, key, len, hashv, b);
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->key = xmemdup(key, len);
		b->milli = (int64_t)(l->burst * 1000);
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
	return b;
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
	struct bucket *b;
	bool ok;

	if (l->rate == 0)
		return true;
	pthread_mutex_lock(&l->lock);
	b = bucket_use(l, key, len, hash, now_ms);
	ok = b->milli >= 1000;
	if (ok)
		b->milli -= 1000;
	else
		*retry_after = milli_wait(l, b->milli, 1000);
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void
limit_charge_hashed(struct limit *l, const char *key, size_t len, uint64_t hash,
    uint64_t now_ms, uint64_t milli)
{
	struct bucket *b;

	if (l->rate == 0 || milli == 0)
		return;
	/* More than any bucket could ever owe a replay: a bound, no wrap. */
	if (milli > INT64_MAX / 4)
		milli = INT64_MAX / 4;
	pthread_mutex_lock(&l->lock);
	b = bucket_use(l, key, len, hash, now_ms);
	if (b->milli < INT64_MIN / 2)
		b->milli = INT64_MIN / 2;
	b->milli -= (int64_t)milli;
	pthread_mutex_unlock(&l->lock);
}

bool
limit_owes_hashed(struct limit *l, const char *key, size_t len, uint64_t hash,
    uint64_t now_ms, unsigned *retry_after)
{
	unsigned hashv = (unsigned)hash;
	struct bucket *b;
	bool owes = false;

	if (l->rate == 0)
		return false;
	pthread_mutex_lock(&l->lock);
	/* Looked at, not used: no bucket made, none moved. */
	HASH_FIND_BYHASHVALUE(hh, l->buckets, key, len, hashv, b);
	if (b != NULL && b->milli < 0) {
		int64_t milli = b->milli;

		if (now_ms > b->t_ms)
			milli += (int64_t)((now_ms - b->t_ms) * l->rate);
		owes = milli < 0;
		if (owes)
			*retry_after = milli_wait(l, milli, 0);
	}
	pthread_mutex_unlock(&l->lock);
	return owes;
}

size_t
limit_expire(struct limit *l, uint64_t now_ms)
{
	struct bucket *b, *owing = NULL; /* the first put behind */
	size_t n = 0;

	pthread_mutex_lock(&l->lock);
	while ((b = l->lru) != NULL && b != owing) {
		if (bucket_full_ms(l, b) <= now_ms) {
			DL_DELETE(l->lru, b);
			HASH_DEL(l->buckets, b);
			free(b->key);
			free(b);
			n++;
		} else if (b->milli < 0) {
			/*
			 * It owes: full later than its last use says.  Put
			 * behind the rest, so that it holds up no other's
			 * expiry; those that do not owe keep their order.
			 */
			DL_DELETE(l->lru, b);
			DL_APPEND(l->lru, b);
			if (owing == NULL)
				owing = b;
		} else {
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}
