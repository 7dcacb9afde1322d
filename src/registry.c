/*
 * registry: see registry.h.
 *
 * DESIGN / LOCKING
 *
 * reg->lock guards everything below it: the user and device tables, every
 * device's log, every stream's cursor and flags, the statistics.  It is
 * held only for table updates and pointer copies: never across I/O, JSON
 * encoding or frame formatting.  Messages are reference-counted with
 * atomics, so a batch taken under the lock is written and released
 * without it.
 *
 * A device's log is a ring of message pointers, oldest first, numbered
 * first_seq .. last_seq.  Each stream is a cursor: the number of the last
 * message it took.  The log drops its oldest message once every stream of
 * the device has taken it.  When a stream falls more than queue_messages
 * or queue_bytes behind, it is marked overflowed and woken; its thread
 * ends it, and the log no longer waits for it.
 *
 * Stream lifecycle: registry_subscribe() links the stream into its device
 * and into reg->streams (by id); its thread loops in registry_wait();
 * registry_hangup() (from the connection watcher), an overflow, or
 * registry_close() set a flag and signal its condition variable; the
 * thread then calls registry_unsubscribe(), which unlinks and frees it.
 * Only that thread frees the stream, and the watcher refers to streams by
 * id, never by pointer, so it cannot touch a freed stream.
 *
 * Shutdown: registry_close() sets closing and broadcasts to every stream;
 * each thread delivers what it has pending, then sees REGISTRY_CLOSING.
 */
#include "registry.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include <utlist.h>

#include "util.h"

struct registry_msg {
	atomic_uint refs;
	uint64_t seq;
	size_t len;
	char frame[];
};

struct reg_user {
	char *name;
	struct reg_device *devices;
	UT_hash_handle hh;
};

struct reg_device {
	char *name;
	struct reg_user *user;
	struct registry_stream *streams; /* utlist DL */
	size_t nstreams;
	/* The log: ring[(head + i) % cap] holds message first_seq + i. */
	struct registry_msg **ring;
	size_t cap, head, count;
	uint64_t first_seq; /* seq of ring[head] when count > 0 */
	uint64_t last_seq;  /* seq of the newest message ever appended */
	uint64_t bytes_in;  /* frame bytes ever appended */
	UT_hash_handle hh;
};

struct registry_stream {
	uint64_t id;
	struct reg_device *device;
	pthread_cond_t cond;
	uint64_t cursor;    /* seq of the last message taken */
	uint64_t bytes_out; /* frame bytes taken, to compare with bytes_in */
	bool gone, overflow;
	atomic_uint pinned; /* publishers about to signal cond, unlocked */
	struct registry_stream *prev, *next; /* in the device's list */
	UT_hash_handle hh;                   /* in reg->streams, by id */
};

struct registry {
	pthread_mutex_t lock;
	struct registry_limits limits;
	struct reg_user *users;
	struct registry_stream *streams;
	size_t nusers, ndevices, nstreams;
	uint64_t next_id;
	uint64_t published, overflows;
	bool closing;
};

struct registry_msg *
registry_msg_new(const char *frame, size_t len)
{
	struct registry_msg *m = xmalloc(sizeof(*m) + len);

	atomic_init(&m->refs, 1);
	m->seq = 0;
	m->len = len;
	memcpy(m->frame, frame, len);
	return m;
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

static struct registry_msg *
registry_msg_ref(struct registry_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void
registry_msg_unref(struct registry_msg *m)
{
	if (m != NULL &&
	    atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

struct registry *
registry_new(const struct registry_limits *limits)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));

	pthread_mutex_init(&reg->lock, NULL);
	reg->limits = *limits;
	if (reg->limits.queue_messages == 0)
		reg->limits.queue_messages = SIZE_MAX / 2;
	if (reg->limits.queue_bytes == 0)
		reg->limits.queue_bytes = SIZE_MAX / 2;
	reg->next_id = 1;
	return reg;
}

static struct registry_msg *
device_log_at(const struct reg_device *d, uint64_t seq)
{
	return d->ring[(d->head + (size_t)(seq - d->first_seq)) % d->cap];
}

static void
device_free(struct registry *reg, struct reg_device *d)
{
	struct reg_user *u = d->user;

	for (size_t i = 0; i < d->count; i++)
		registry_msg_unref(d->ring[(d->head + i) % d->cap]);
	HASH_DEL(u->devices, d);
	reg->ndevices--;
	free(d->ring);
	free(d->name);
	free(d);
	if (u->devices == NULL) {
		HASH_DEL(reg->users, u);
		reg->nusers--;
		free(u->name);
		free(u);
	}
}

void
registry_free(struct registry *reg)
{
	struct registry_stream *s, *stmp;
	struct reg_user *u, *utmp;
	struct reg_device *d, *dtmp;

	if (reg == NULL)
		return;
	HASH_ITER(hh, reg->streams, s, stmp)
	{
		HASH_DEL(reg->streams, s);
		pthread_cond_destroy(&s->cond);
		free(s);
	}
	HASH_ITER(hh, reg->users, u, utmp)
	{
		HASH_ITER(hh, u->devices, d, dtmp)
		{
			d->streams = NULL;
			device_free(reg, d);
		}
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/*
 * Drop the log's oldest messages that every stream has taken.  With no
 * streams the device is about to go, and device_free() empties the log.
 */
static void
device_trim(struct reg_device *d)
{
	uint64_t min = d->last_seq;
	struct registry_stream *s;

	DL_FOREACH(d->streams, s)
	{
		if (!s->overflow && s->cursor < min)
			min = s->cursor;
	}
	while (d->count > 0 && d->first_seq <= min) {
		registry_msg_unref(d->ring[d->head]);
		d->head = (d->head + 1) % d->cap;
		d->count--;
		d->first_seq++;
	}
}

static void
device_append(struct reg_device *d, struct registry_msg *m)
{
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct registry_msg **ring = xmalloc(cap * sizeof(*ring));

		for (size_t i = 0; i < d->count; i++)
			ring[i] = d->ring[(d->head + i) % d->cap];
		free(d->ring);
		d->ring = ring;
		d->cap = cap;
		d->head = 0;
	}
	m->seq = ++d->last_seq;
	if (d->count == 0)
		d->first_seq = m->seq;
	d->ring[(d->head + d->count) % d->cap] = registry_msg_ref(m);
	d->count++;
	d->bytes_in += m->len;
}

struct registry_stream *
registry_subscribe(struct registry *reg, const char *user, const char *device,
    enum registry_error *err)
{
	struct registry_stream *s = NULL;
	struct reg_device *d = NULL;
	struct reg_user *u = NULL;
	pthread_condattr_t attr;

	pthread_mutex_lock(&reg->lock);
	if (reg->closing) {
		*err = REGISTRY_CLOSED;
		goto out;
	}
	if (reg->limits.max_streams > 0 &&
	    reg->nstreams >= reg->limits.max_streams) {
		*err = REGISTRY_FULL;
		goto out;
	}
	HASH_FIND_STR(reg->users, user, u);
	if (u == NULL) {
		u = xcalloc(1, sizeof(*u));
		u->name = xstrdup(user);
		HASH_ADD_KEYPTR(hh, reg->users, u->name, strlen(u->name), u);
		reg->nusers++;
	}
	HASH_FIND_STR(u->devices, device, d);
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->name = xstrdup(device);
		d->user = u;
		HASH_ADD_KEYPTR(hh, u->devices, d->name, strlen(d->name), d);
		reg->ndevices++;
	}
	s = xcalloc(1, sizeof(*s));
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	s->id = reg->next_id++;
	s->device = d;
	s->cursor = d->last_seq;
	s->bytes_out = d->bytes_in;
	DL_APPEND(d->streams, s);
	d->nstreams++;
	HASH_ADD(hh, reg->streams, id, sizeof(s->id), s);
	reg->nstreams++;
	*err = REGISTRY_OK;
out:
	pthread_mutex_unlock(&reg->lock);
	return s;
}

void
registry_unsubscribe(struct registry *reg, struct registry_stream *s)
{
	struct reg_device *d = s->device;

	pthread_mutex_lock(&reg->lock);
	HASH_DEL(reg->streams, s);
	reg->nstreams--;
	DL_DELETE(d->streams, s);
	if (--d->nstreams == 0)
		device_free(reg, d);
	else
		device_trim(d);
	pthread_mutex_unlock(&reg->lock);
	/* Unlinked: no new pins; wait for publishers still signalling. */
	while (atomic_load_explicit(&s->pinned, memory_order_acquire) != 0)
		sched_yield();
	pthread_cond_destroy(&s->cond);
	free(s);
}

uint64_t
registry_stream_id(const struct registry_stream *s)
{
	return s->id;
}

/*
 * Whether a device has a stream that can still deliver: one whose client
 * is not known to be gone and that has not overflowed.  Such a stream's
 * thread may be blocked writing to a slow client, so it is still linked
 * in; but it is no longer listed, and posts to it alone get 404.
 */
static bool
device_live(const struct reg_device *d)
{
	const struct registry_stream *s;

	DL_FOREACH(d->streams, s)
	{
		if (!s->gone && !s->overflow)
			return true;
	}
	return false;
}

static struct reg_device *
registry_find_device(struct registry *reg, const char *user, const char *device)
{
	struct reg_user *u;
	struct reg_device *d = NULL;

	HASH_FIND_STR(reg->users, user, u);
	if (u != NULL)
		HASH_FIND_STR(u->devices, device, d);
	return d;
}

size_t
registry_publish(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m, enum registry_error *err)
{
	struct registry_stream *s, *wake[8];
	struct reg_device *d;
	size_t n = 0, nw = 0;

	pthread_mutex_lock(&reg->lock);
	d = registry_find_device(reg, user, device);
	if (d == NULL || !device_live(d)) {
		*err = REGISTRY_NOT_FOUND;
		goto out;
	}
	device_append(d, m);
	reg->published++;
	DL_FOREACH(d->streams, s)
	{
		if (s->overflow || s->gone)
			continue;
		if (d->last_seq - s->cursor > reg->limits.queue_messages ||
		    d->bytes_in - s->bytes_out > reg->limits.queue_bytes) {
			s->overflow = true;
			reg->overflows++;
		}
		/*
		 * Signalled after unlocking, so the woken thread does not
		 * block at once on the lock we hold; the pin keeps the
		 * stream from being freed until then.
		 */
		if (nw < 8) {
			atomic_fetch_add_explicit(
			    &s->pinned, 1, memory_order_relaxed);
			wake[nw++] = s;
		} else {
			pthread_cond_signal(&s->cond);
		}
		n++;
	}
	/* An overflowed stream no longer holds the log back. */
	device_trim(d);
	*err = REGISTRY_OK;
out:
	pthread_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < nw; i++) {
		pthread_cond_signal(&wake[i]->cond);
		atomic_fetch_sub_explicit(
		    &wake[i]->pinned, 1, memory_order_release);
	}
	return n;
}

static void
registry_take(struct registry_stream *s, struct registry_batch *b)
{
	struct reg_device *d = s->device;

	b->n = 0;
	while (s->cursor < d->last_seq && b->n < REGISTRY_BATCH) {
		struct registry_msg *m = device_log_at(d, s->cursor + 1);

		b->msgs[b->n++] = registry_msg_ref(m);
		s->cursor++;
		s->bytes_out += m->len;
	}
	device_trim(d);
}

enum registry_wake
registry_wait(struct registry *reg, struct registry_stream *s,
    uint64_t deadline_ms, struct registry_batch *b)
{
	struct timespec ts = {
	    .tv_sec = (time_t)(deadline_ms / 1000),
	    .tv_nsec = (long)(deadline_ms % 1000) * 1000000,
	};
	enum registry_wake wake;

	b->n = 0;
	pthread_mutex_lock(&reg->lock);
	for (;;) {
		if (s->overflow) {
			wake = REGISTRY_OVERFLOW;
			break;
		}
		if (s->gone) {
			wake = REGISTRY_GONE;
			break;
		}
		if (s->cursor < s->device->last_seq) {
			registry_take(s, b);
			wake = REGISTRY_MESSAGES;
			break;
		}
		if (reg->closing) {
			wake = REGISTRY_CLOSING;
			break;
		}
		if (util_now_ms() >= deadline_ms) {
			wake = REGISTRY_TIMEOUT;
			break;
		}
		pthread_cond_timedwait(&s->cond, &reg->lock, &ts);
	}
	pthread_mutex_unlock(&reg->lock);
	return wake;
}

void
registry_batch_release(struct registry_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		registry_msg_unref(b->msgs[i]);
	b->n = 0;
}

void
registry_hangup(struct registry *reg, uint64_t stream_id)
{
	struct registry_stream *s;

	pthread_mutex_lock(&reg->lock);
	HASH_FIND(hh, reg->streams, &stream_id, sizeof(stream_id), s);
	if (s != NULL) {
		s->gone = true;
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&reg->lock);
}

void
registry_devices(
    struct registry *reg, const char *user, char ***names, size_t *n)
{
	struct reg_device *d, *tmp;
	struct reg_user *u;
	size_t i = 0;

	*names = NULL;
	*n = 0;
	pthread_mutex_lock(&reg->lock);
	HASH_FIND_STR(reg->users, user, u);
	if (u != NULL && HASH_COUNT(u->devices) > 0) {
		*names = xmalloc(HASH_COUNT(u->devices) * sizeof(**names));
		HASH_ITER(hh, u->devices, d, tmp)
		{
			if (device_live(d))
				(*names)[i++] = xstrdup(d->name);
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (i == 0) {
		free(*names);
		*names = NULL;
	}
	*n = i;
}

void
registry_stats(struct registry *reg, struct registry_stats *st)
{
	pthread_mutex_lock(&reg->lock);
	st->users = reg->nusers;
	st->devices = reg->ndevices;
	st->streams = reg->nstreams;
	st->published = reg->published;
	st->overflows = reg->overflows;
	pthread_mutex_unlock(&reg->lock);
}

void
registry_close(struct registry *reg)
{
	struct registry_stream *s, *tmp;

	pthread_mutex_lock(&reg->lock);
	reg->closing = true;
	HASH_ITER(hh, reg->streams, s, tmp)
	{
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&reg->lock);
}
