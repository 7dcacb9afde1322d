/*
 * registry_deliver: see registry.h, and the DESIGN comment in registry.c.
 *
 * The reading side of the registry: the messages (made by a publisher,
 * shared by reference), and what a stream's thread calls: registry_wait()
 * sleeps on the stream's condition variable and takes a batch under
 * reg->lock (registry_take(), which also starts the replay window of what
 * is delivered for the first time); the batch is walked and released
 * after unlocking; registry_hangup() is the connection watcher's way to
 * wake a stream whose client left.  Depends on registry_expire (a stream
 * whose client left may start its device's grace period) and registry_log
 * (trimming what every stream has taken).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "registry_expire.h"
#include "registry_impl.h"
#include "registry_log.h"
#include "registry_share.h"
#include "util.h"

struct registry_msg *
registry_msg_alloc(size_t len, char **frame)
{
	struct registry_msg *m;

	/*
	 * len and size are 32 bits (struct registry_msg); a frame is at most
	 * max_body (16 MiB) and its envelope, so none comes near: stop, as
	 * for memory, rather than count one wrong.
	 */
	if (len > UINT32_MAX / 2) {
		fprintf(stderr, "beep-signal: a message of %zu bytes\n", len);
		abort();
	}
	m = xmalloc(sizeof(*m) + len);
	atomic_init(&m->refs, 1);
	m->seq = m->id = m->t_ms = m->published_us = m->sender = 0;
	m->key = NULL;
	m->device = NULL;
	m->list = MSG_ON_NONE;
	m->rprev = m->rnext = NULL;
	m->next = NULL;
	m->len = m->size = len;
	*frame = m->frame;
	return m;
}

struct registry_msg *
registry_msg_new(const char *frame, size_t len)
{
	char *to;
	struct registry_msg *m = registry_msg_alloc(len, &to);

	memcpy(to, frame, len);
	return m;
}

void
registry_msg_set_sender(struct registry_msg *m, uint64_t sender)
{
	m->sender = sender;
}

void
registry_msg_set_key(struct registry_msg *m, const char *key, size_t len)
{
	struct reg_key *k = NULL;

	if (len > 0) {
		/* Its sender's 8 bytes are set at registry_publish(). */
		k = xmalloc(sizeof(*k) + sizeof(m->sender) + len);
		k->m = m;
		k->listed = false;
		k->len = sizeof(m->sender) + len;
		memset(k->name, 0, sizeof(m->sender));
		memcpy(k->name + sizeof(m->sender), key, len);
	}
	free(m->key);
	m->key = k;
}

const char *
registry_msg_frame(const struct registry_msg *m, size_t *len)
{
	*len = m->len;
	return m->frame;
}

uint64_t
registry_msg_seq(const struct registry_msg *m)
{
	return m->seq;
}

uint64_t
registry_msg_id(const struct registry_msg *m)
{
	return m->id;
}

uint64_t
registry_msg_published_us(const struct registry_msg *m)
{
	return m->published_us;
}

void
registry_msg_unref(struct registry_msg *m)
{
	if (m != NULL &&
	    atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		free(m->key);
		free(m);
	}
}

static void
registry_take(
    struct registry *reg, struct registry_stream *s, struct registry_batch *b)
{
	struct reg_device *d = s->device;
	uint64_t now = registry_now(reg);
	size_t bytes = 0;

	b->n = 0;
	b->first = b->last = NULL;
	while (s->cursor < d->last_seq && b->n < REGISTRY_BATCH) {
		struct registry_msg *m = device_log_at(d, s->cursor + 1);

		if (b->n > 0 && bytes + m->len > REGISTRY_BATCH_BYTES)
			break;
		bytes += m->len;
		if (b->first == NULL)
			b->first = m;
		b->last = registry_msg_ref(m);
		b->n++;
		s->cursor++;
		s->bytes_out += m->size;
	}
	/*
	 * Delivered now: their replay window starts (see DESIGN).  A stream
	 * that started ahead of d->delivered (live only, or resuming) passes
	 * over messages no stream took yet: they count as delivered now too,
	 * so that the delivered ones stay a prefix of the log, in order;
	 * unless a sibling still reads its backlog there: they wait for it
	 * (registry_log_deliver()).  registry_log_trim() delivers up to
	 * d->taken before it trims: raised here to what s took, it is one
	 * delivery, not a second that would find nothing left to do.
	 */
	if (s->cursor > d->taken)
		d->taken = s->cursor;
	if (b->n > 0) {
		s->alive_ms = now;
		/* Seen past its bound: within it now? */
		if (s->stuck.seen != 0)
			registry_lag_took(reg, s, now);
	}
	registry_log_trim(reg, d, now);
	registry_short_note(reg, now);
}

/*
 * s has just stopped being live (its client left, or its expiry passed),
 * though its thread has yet to unsubscribe it: a backlog it held back
 * from a sibling is delivered now, and its device, with no other live
 * stream, is away from now: what s left untaken is held for the device's
 * next stream, which its client may open before s is unsubscribed (a
 * stream that found the device live would start past it).  Locked.  Out
 * of line: once in a stream's life, its work is no part of the frame every
 * stream sleeps under in registry_wait() (one stack page: server_stream.c).
 */
static void stream_ended(struct registry *reg, struct registry_stream *s)
    __attribute__((noinline, cold));

static void
stream_ended(struct registry *reg, struct registry_stream *s)
{
	struct reg_device *d = s->device;
	uint64_t now = registry_now(reg);

	registry_log_deliver(reg, d, d->taken, now);
	registry_expire_grace(reg, d, now);
	registry_short_note(reg, now);
}

/* s's expiry has ended it, as registry_hangup() ends a stream.  Locked. */
static void
stream_expired(struct registry *reg, struct registry_stream *s)
{
	s->ended |= STREAM_ENDED_EXPIRED;
	stream_ended(reg, s);
}

enum registry_wake
registry_wait(struct registry *reg, struct registry_stream *s,
    uint64_t deadline_ms, struct registry_batch *b)
{
	uint64_t until = s->until_ms;
	/* Woken at the expiry when it comes before the deadline. */
	bool at_expiry = until != 0 && until <= deadline_ms;
	uint64_t wait_ms = at_expiry ? until : deadline_ms;
	struct timespec ts = {
	    .tv_sec = (time_t)(wait_ms / 1000),
	    .tv_nsec = (long)(wait_ms % 1000) * 1000000,
	};
	enum registry_wake wake;
	bool timed_out = false;

	b->n = 0;
	b->first = b->last = NULL;
	pthread_mutex_lock(&reg->lock);
	for (;;) {
		if (s->ended & STREAM_ENDED_OVERFLOW) {
			wake = REGISTRY_OVERFLOW;
			break;
		}
		if (s->ended & STREAM_ENDED_GONE) {
			wake = REGISTRY_GONE;
			break;
		}
		if (s->ended & STREAM_ENDED_REPLACED) {
			wake = REGISTRY_REPLACED;
			break;
		}
		/* Ended already: its device's log no longer waits for it. */
		if (s->ended & STREAM_ENDED_EXPIRED) {
			wake = REGISTRY_EXPIRED;
			break;
		}
		if (s->cursor < s->device->last_seq) {
			/*
			 * Past its expiry it takes nothing, not even what was
			 * posted as its wait timed out: taken, a message counts
			 * as delivered, and the device's next stream (a new
			 * EventSource, no Last-Event-ID) would start past it.
			 * Only a stream with an expiry reads the clock here.
			 */
			if (until != 0 &&
			    ((timed_out && at_expiry) ||
			        util_now_ms() >= until)) {
				stream_expired(reg, s);
				wake = REGISTRY_EXPIRED;
				break;
			}
			registry_take(reg, s, b);
			wake = REGISTRY_MESSAGES;
			break;
		}
		if (reg->closing) {
			/* It takes nothing more: posts to it are refused. */
			s->ended |= STREAM_ENDED_CLOSED;
			wake = REGISTRY_CLOSING;
			break;
		}
		if (timed_out && at_expiry) {
			stream_expired(reg, s);
			wake = REGISTRY_EXPIRED;
			break;
		}
		if (timed_out) {
			wake = REGISTRY_TIMEOUT;
			break;
		}
		/*
		 * The wait itself says when wait_ms has passed (s->cond waits
		 * on CLOCK_MONOTONIC, as util_now_ms() reads; a past one at
		 * once): no read of the clock per wake, under the lock.
		 */
		timed_out = pthread_cond_timedwait(&s->cond, &reg->lock, &ts) ==
		    ETIMEDOUT;
	}
	pthread_mutex_unlock(&reg->lock);
	return wake;
}

struct registry_msg *
registry_batch_next(
    const struct registry_batch *b, const struct registry_msg *m)
{
	/* last's next may be being set (an append): never read it. */
	return m == b->last ? NULL : m->next;
}

void
registry_batch_release(struct registry_batch *b)
{
	struct registry_msg *m = b->first, *next;

	for (; m != NULL; m = next) {
		next = registry_batch_next(b, m);
		registry_msg_unref(m);
	}
	b->first = b->last = NULL;
	b->n = 0;
}

void
registry_hangup(struct registry *reg, uint64_t stream_id)
{
	struct registry_stream *s;

	pthread_mutex_lock(&reg->lock);
	HASH_FIND(hh, reg->streams, &stream_id, sizeof(stream_id), s);
	if (s != NULL) {
		s->ended |= STREAM_ENDED_GONE;
		stream_ended(reg, s);
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&reg->lock);
}
