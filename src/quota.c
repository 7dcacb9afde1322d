/*
 * quota: see quota.h.
 *
 * LOCKING: q->lock guards the table; it is held for a lookup and an
 * increment or decrement.  Keys holding nothing are removed, so the table
 * has one entry per key holding something (per address with a stream).
 */
#include "quota.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyed_hash.h"
#include "util.h"

struct quota_entry {
	char *key;
	size_t count;
	UT_hash_handle hh;
};

struct quota {
	pthread_mutex_t lock;
	size_t max;
	struct quota_entry *entries;
};

struct quota *
quota_new(size_t max)
{
	struct quota *q = xcalloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	q->max = max;
	return q;
}

void
quota_free(struct quota *q)
{
	struct quota_entry *e, *tmp;

	if (q == NULL)
		return;
	HASH_ITER(hh, q->entries, e, tmp)
	{
		HASH_DEL(q->entries, e);
		free(e->key);
		free(e);
	}
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* Count one more for key: within max, or up to 2 x max when over. */
static bool
quota_take(struct quota *q, const char *key, bool over)
{
	struct quota_entry *e;
	bool ok = true;

	if (q->max == 0)
		return true;
	pthread_mutex_lock(&q->lock);
	HASH_FIND_STR(q->entries, key, e);
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		HASH_ADD_KEYPTR(hh, q->entries, e->key, strlen(e->key), e);
	}
	if (e->count < q->max || (over && e->count < 2 * q->max))
		e->count++;
	else
		ok = false;
	pthread_mutex_unlock(&q->lock);
	return ok;
}

bool
quota_acquire(struct quota *q, const char *key)
{
	return quota_take(q, key, false);
}

bool
quota_acquire_over(struct quota *q, const char *key)
{
	return quota_take(q, key, true);
}

void
quota_release(struct quota *q, const char *key)
{
	struct quota_entry *e;

	if (q->max == 0)
		return;
	pthread_mutex_lock(&q->lock);
	HASH_FIND_STR(q->entries, key, e);
	if (e != NULL && e->count > 0 && --e->count == 0) {
		HASH_DEL(q->entries, e);
		free(e->key);
		free(e);
	}
	pthread_mutex_unlock(&q->lock);
}

bool
quota_limited(const struct quota *q)
{
	return q->max > 0;
}

size_t
quota_count(struct quota *q, const char *key)
{
	struct quota_entry *e;
	size_t n;

	pthread_mutex_lock(&q->lock);
	HASH_FIND_STR(q->entries, key, e);
	n = e ? e->count : 0;
	pthread_mutex_unlock(&q->lock);
	return n;
}
