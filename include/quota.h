/*
 * quota: how many of something each key holds (open streams per client
 * address), with a ceiling.  Thread-safe: a short lock around a hash
 * lookup; no I/O.
 */
#ifndef BEEP_QUOTA_H
#define BEEP_QUOTA_H

#include <stdbool.h>
#include <stddef.h>

struct quota;

/* At most max per key; max 0 allows everything and counts nothing. */
struct quota *quota_new(size_t max);
void quota_free(struct quota *q);

/*
 * Count one more for key, unless key already holds max: returns whether
 * it was counted.  Each true must be matched by one quota_release().
 */
bool quota_acquire(struct quota *q, const char *key);

/*
 * Count one more for key even when it holds max already, up to twice max:
 * for one that takes the place of one of key's that is ending, whose
 * quota_release() follows, so that the count is past max only until then.
 * The bound holds when those take long to end (a client that reads
 * nothing holds its stream's thread in a write for BEEP_WRITE_TIMEOUT),
 * and each new one is displaced in turn.  Returns whether it was counted;
 * each true must be matched by one quota_release().
 */
bool quota_acquire_over(struct quota *q, const char *key);

/* Give back one of key's; a key that holds none is forgotten. */
void quota_release(struct quota *q, const char *key);

/* Whether q limits anything (a max of 0 allows everything). */
bool quota_limited(const struct quota *q);

/* How many key holds now. */
size_t quota_count(struct quota *q, const char *key);

#endif
