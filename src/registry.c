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
 * without it.  Condition variables are signalled after unlocking, so the
 * woken thread does not block at once on the lock; a pin count keeps the
 * stream alive until then.
 *
 * A device's log is a ring of message pointers, oldest first, numbered
 * first_seq .. last_seq; each message also has an event id from one
 * counter for the whole registry, or one its publisher chose
 * (registry_publish_at(): a cluster's ids, increasing per device only;
 * device->top_id, the newest, turns an id not above it away as a
 * duplicate, and REGISTRY_RESUME_FROM may restart an idle device's log at
 * the caller's id).  Each stream is a cursor: the number of
 * the last message it took.  device->delivered is the highest number any
 * of its streams took.  The log drops a message once (1) every live
 * stream and the device have taken it, and (2) it was delivered (first
 * taken) more than replay_ms ago, or more than replay_max (or
 * replay_bytes of) messages are retained.  So a
 * reconnecting client can replay what it missed, and messages for a device
 * in its grace period wait.  Messages waiting for an absent device are
 * bounded by queue_messages and queue_bytes: past that the oldest are
 * dropped and counted, and the device's next stream starts with a reset.
 * device->floor_id is the highest id the log no longer holds (at creation,
 * the registry's newest id): a client that saw an id below it may have
 * missed something, and gets a reset.  A new stream's cursor is also
 * named as an id (device_position_id()): the id of the message at the
 * cursor, or the floor when the cursor is just before the log.  Resuming
 * after that id puts the cursor back where it was, so a client that was
 * told it before anything else cannot lose what a stream took for it.
 *
 * When a stream falls more than queue_messages or queue_bytes behind, it
 * is marked overflowed and woken; its thread ends it, and the log no
 * longer waits for it.
 *
 * Memory.  reg->retained lists every delivered message still in a log,
 * in the order of delivery.  A device delivers and drops its messages in
 * seq order, so its messages on that list are a prefix of its log, in
 * the same order, and the head of reg->retained is always the head of
 * its device's log.  registry_expire() pops the head while it was
 * delivered more than replay_ms ago, and stops at the first that was not
 * (or that a live stream has not taken yet: it lags, and will take it, or
 * overflow, or time out writing): it costs what it drops.  reg->bytes
 * counts the frame bytes in all logs; a publish that would pass
 * max_message_bytes first pops retained messages from the head (the
 * oldest delivered, whichever device; a live stream still behind one is
 * ended as overflowed, so one slow reader cannot make the service refuse
 * every post), and is refused when only messages no stream has taken are
 * left: those are never dropped for another device's sake.  reg->held counts the messages no stream has taken of
 * the devices in grace, so registry_stats() walks nothing.
 *
 * Stream lifecycle: registry_subscribe() links the stream into its device
 * and into reg->streams (by id); its thread loops in registry_wait();
 * registry_hangup() (from the connection watcher), an overflow, or
 * registry_close() set a flag and signal its condition variable; the
 * thread then calls registry_unsubscribe(), which unlinks and frees it.
 * Only that thread frees the stream, and the watcher refers to streams by
 * id, never by pointer, so it cannot touch a freed stream.
 *
 * A device keeps at most streams_per_device live streams: a new one marks
 * the oldest replaced and wakes it (REGISTRY_REPLACED); it no longer
 * takes messages, and its thread ends it.  Streams that are ending (gone,
 * overflowed, replaced) do not count: each ends within a write timeout.
 *
 * Device lifecycle: made by its first stream; live while it has a live
 * stream: one neither gone, overflowed, replaced nor closed (only live
 * devices are listed); when its last live stream is lost, it waits
 * grace_ms on reg->grace for a new one, holding what is posted to it,
 * then registry_expire() forgets it.  reg->grace is in expiry order
 * (grace_until never decreases along it), so the sweep stops at the first
 * device whose grace has not ended.
 *
 * Shutdown: registry_close() sets closing and broadcasts to every stream;
 * each thread delivers what it has pending, then sees REGISTRY_CLOSING,
 * which marks its stream closed (no longer live).  While closing, a
 * publish to a device with no live stream is refused (REGISTRY_CLOSED):
 * a message is accepted only when a stream will still take it.
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
	uint64_t seq;          /* number in its device's log */
	uint64_t id;           /* event id, registry-wide */
	uint64_t published_us; /* util_now_us() at registry_publish() */
	/* The rest, under reg->lock: */
	uint64_t t_ms;             /* when it was delivered (first taken) */
	struct reg_device *device; /* whose log holds it */
	bool retained;             /* on reg->retained */
	struct registry_msg *rprev, *rnext; /* in reg->retained */
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
	size_t bytes;         /* frame bytes in the log */
	uint64_t first_seq;   /* seq of ring[head] when count > 0 */
	uint64_t last_seq;    /* seq of the newest message ever appended */
	uint64_t delivered;   /* the highest seq any stream has taken */
	uint64_t bytes_in;    /* frame bytes ever appended */
	uint64_t floor_id;    /* the highest id no longer in the log */
	uint64_t top_id;      /* the newest id appended, or resumed from */
	uint64_t grace_until; /* while on reg->grace: when it is forgotten */
	struct reg_device *gprev, *gnext; /* in reg->grace */
	size_t held_counted;              /* its share of reg->held */
	UT_hash_handle hh;
};

struct registry_stream {
	uint64_t id;
	struct reg_device *device;
	pthread_cond_t cond;
	uint64_t cursor;    /* seq of the last message taken */
	uint64_t bytes_out; /* frame bytes taken, to compare with bytes_in */
	bool gone, overflow, replaced, closed;
	atomic_uint pinned; /* publishers about to signal cond, unlocked */
	struct registry_stream *prev, *next; /* in the device's list */
	UT_hash_handle hh;                   /* in reg->streams, by id */
};

struct registry {
	pthread_mutex_t lock;
	struct registry_limits limits;
	uint64_t epoch;
	struct reg_user *users;
	struct registry_stream *streams;
	struct reg_device *grace;      /* utlist DL via gprev/gnext */
	struct registry_msg *retained; /* utlist DL via rprev/rnext */
	size_t nusers, ndevices, nstreams;
	size_t bytes; /* frame bytes in all logs */
	size_t held;  /* untaken messages of devices in grace */
	uint64_t next_stream;
	uint64_t last_id; /* the newest event id given */
	uint64_t published, overflows, forgotten, dropped, resets;
	uint64_t replaced, evicted, refused;
	size_t ngrace;              /* devices on reg->grace */
	uint64_t replayed, expired; /* see struct registry_stats */
	bool closing;
};

/* Streams a publisher may pin and signal after unlocking; more wait. */
#define REGISTRY_WAKE_MAX 8
/* Devices or messages registry_expire() drops per hold of the lock. */
#define REGISTRY_SWEEP_SLICE 1024

struct registry_msg *
registry_msg_new(const char *frame, size_t len)
{
	struct registry_msg *m = xmalloc(sizeof(*m) + len);

	atomic_init(&m->refs, 1);
	m->seq = m->id = m->t_ms = m->published_us = 0;
	m->device = NULL;
	m->retained = false;
	m->rprev = m->rnext = NULL;
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
	struct timespec ts;

	pthread_mutex_init(&reg->lock, NULL);
	reg->limits = *limits;
	if (reg->limits.queue_messages == 0)
		reg->limits.queue_messages = SIZE_MAX / 2;
	if (reg->limits.queue_bytes == 0)
		reg->limits.queue_bytes = SIZE_MAX / 2;
	if (reg->limits.replay_max == 0)
		reg->limits.replay_max = SIZE_MAX / 2;
	if (reg->limits.replay_bytes == 0)
		reg->limits.replay_bytes = SIZE_MAX / 2;
	if (reg->limits.max_message_bytes == 0)
		reg->limits.max_message_bytes = SIZE_MAX / 2;
	clock_gettime(CLOCK_REALTIME, &ts);
	reg->epoch =
	    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	reg->next_stream = 1;
	return reg;
}

uint64_t
registry_epoch(const struct registry *reg)
{
	return reg->epoch;
}

static struct registry_msg *
device_log_at(const struct reg_device *d, uint64_t seq)
{
	return d->ring[(d->head + (size_t)(seq - d->first_seq)) % d->cap];
}

/* Messages in the log that no stream of the device has taken. */
static size_t
device_held(const struct reg_device *d)
{
	uint64_t from = d->count ? d->first_seq - 1 : d->last_seq;

	if (d->delivered > from)
		from = d->delivered;
	return (size_t)(d->last_seq - from);
}

/* Keep reg->held equal to the untaken messages of devices in grace. */
static void
device_recount(struct registry *reg, struct reg_device *d)
{
	size_t n = d->grace_until != 0 ? device_held(d) : 0;

	reg->held = reg->held - d->held_counted + n;
	d->held_counted = n;
}

static void
device_drop_oldest(struct registry *reg, struct reg_device *d)
{
	struct registry_msg *m = d->ring[d->head];

	d->floor_id = m->id;
	d->bytes -= m->len;
	reg->bytes -= m->len;
	if (m->retained) {
		DL_DELETE2(reg->retained, m, rprev, rnext);
		m->retained = false;
	}
	d->head = (d->head + 1) % d->cap;
	d->count--;
	d->first_seq++;
	registry_msg_unref(m);
}

static void
device_free(struct registry *reg, struct reg_device *d)
{
	struct reg_user *u = d->user;

	if (d->grace_until != 0) {
		DL_DELETE2(reg->grace, d, gprev, gnext);
		reg->ngrace--;
	}
	d->grace_until = 0;
	device_recount(reg, d);
	reg->dropped += device_held(d);
	while (d->count > 0)
		device_drop_oldest(reg, d);
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
 * Whether a stream can still deliver: its client is not known to be gone,
 * it has not overflowed, no newer stream replaced it, and it has not seen
 * the registry close.  A stream that cannot may still be linked in (its
 * thread may be blocked writing to a slow client), but it takes nothing
 * more, is not listed, and the log does not wait for it.
 */
static bool
stream_live(const struct registry_stream *s)
{
	return !s->gone && !s->overflow && !s->replaced && !s->closed;
}

/* Whether a device has a live stream; posts to one that has not are held. */
static bool
device_live(const struct reg_device *d)
{
	const struct registry_stream *s;

	DL_FOREACH(d->streams, s)
	{
		if (stream_live(s))
			return true;
	}
	return false;
}

/* The lowest cursor of d's live streams, or d->delivered when higher. */
static uint64_t
device_min_cursor(const struct reg_device *d)
{
	const struct registry_stream *s;
	uint64_t min = d->delivered;

	DL_FOREACH(d->streams, s)
	{
		if (stream_live(s) && s->cursor < min)
			min = s->cursor;
	}
	return min;
}

/* Drop what the log need not keep any more: see DESIGN at the top. */
static void
device_trim(struct registry *reg, struct reg_device *d, uint64_t now)
{
	const struct registry_limits *l = &reg->limits;
	uint64_t min = device_min_cursor(d);
	struct registry_stream *s;

	while (d->count > 0) {
		struct registry_msg *m = d->ring[d->head];
		bool over =
		    d->count > l->replay_max || d->bytes > l->replay_bytes;

		/*
		 * Only a delivered message (seq <= min <= delivered) has a
		 * t_ms; now was read before the lock, so a newer t_ms is
		 * possible.
		 */
		if (!over && (m->seq > min || m->t_ms + l->replay_ms > now))
			break;
		/* Past the retention bound, even what is not yet taken goes. */
		if (m->seq > d->delivered)
			reg->dropped++;
		DL_FOREACH(d->streams, s)
		{
			if (stream_live(s) && s->cursor < m->seq) {
				/* It cannot read what is gone: end it. */
				s->overflow = true;
				reg->overflows++;
				pthread_cond_signal(&s->cond);
			}
		}
		device_drop_oldest(reg, d);
	}
	device_recount(reg, d);
}

static void device_grace(
    struct registry *reg, struct reg_device *d, uint64_t now);

/*
 * Drop the oldest retained message, of whichever device.  It was
 * delivered, but a live stream of its device may not have taken it yet
 * (it lags, or replays): then it stays, unless force says to end those
 * streams (they overflow: their clients come back with a reset).
 * Returns whether it dropped it.
 */
static bool
registry_drop_retained(struct registry *reg, bool force)
{
	struct registry_msg *m = reg->retained;
	struct registry_stream *s;
	struct reg_device *d;

	if (m == NULL)
		return false;
	d = m->device;
	/* The head of reg->retained is its log's head: see DESIGN. */
	if (d->count == 0 || d->ring[d->head] != m)
		return false;
	if (m->seq > device_min_cursor(d)) {
		if (!force)
			return false;
		DL_FOREACH(d->streams, s)
		{
			if (stream_live(s) && s->cursor < m->seq) {
				s->overflow = true;
				reg->overflows++;
				pthread_cond_signal(&s->cond);
			}
		}
	}
	device_drop_oldest(reg, d);
	device_grace(reg, d, util_now_ms());
	device_recount(reg, d);
	return true;
}

/*
 * Start d's grace period, if it has not started: when its last stream
 * ends, or earlier, when its last live stream is found gone or overflowed
 * while its thread is still busy.
 */
static void
device_grace(struct registry *reg, struct reg_device *d, uint64_t now)
{
	if (d->grace_until != 0 || device_live(d))
		return;
	d->grace_until = now + reg->limits.grace_ms;
	/* now was read before the lock: keep the list in expiry order. */
	if (reg->grace != NULL &&
	    reg->grace->gprev->grace_until > d->grace_until)
		d->grace_until = reg->grace->gprev->grace_until;
	DL_APPEND2(reg->grace, d, gprev, gnext);
	reg->ngrace++;
	device_recount(reg, d);
}

/* Whether d's grace period is over (it is then to be forgotten). */
static bool
device_expired(const struct reg_device *d, uint64_t now)
{
	return d->grace_until != 0 && d->grace_until <= now;
}

/* id: the caller's (registry_publish_at()), or 0 for the next one. */
static void
device_append(struct registry *reg, struct reg_device *d,
    struct registry_msg *m, uint64_t id)
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
	if (id == 0)
		id = ++reg->last_id;
	else if (id > reg->last_id)
		reg->last_id = id;
	m->id = d->top_id = id;
	m->device = d;
	if (d->count == 0)
		d->first_seq = m->seq;
	d->ring[(d->head + d->count) % d->cap] = registry_msg_ref(m);
	d->count++;
	d->bytes += m->len;
	d->bytes_in += m->len;
	reg->bytes += m->len;
	device_recount(reg, d);
}

/*
 * Where a new stream of d starts and what it must be told first.  Called
 * before the stream is linked in.
 */
static uint64_t
device_start(struct registry *reg, struct reg_device *d,
    const struct registry_resume *resume, struct registry_start *start)
{
	uint64_t lo = d->count ? d->first_seq - 1 : d->last_seq;
	uint64_t cursor;
	bool live = device_live(d);

	memset(start, 0, sizeof(*start));
	/* With no usable id: live only, or what was held while away. */
	cursor = live ? d->last_seq : (d->delivered > lo ? d->delivered : lo);
	if ((resume->kind == REGISTRY_RESUME_AT && resume->id <= reg->last_id &&
	        resume->id >= d->floor_id) ||
	    (resume->kind == REGISTRY_RESUME_FROM &&
	        resume->id >= d->floor_id && resume->id <= d->top_id)) {
		/* Every message after that id is still in the log. */
		cursor = lo;
		while (cursor < d->last_seq &&
		    device_log_at(d, cursor + 1)->id <= resume->id)
			cursor++;
		reg->replayed += d->last_seq - cursor;
		return cursor;
	}
	if (resume->kind == REGISTRY_RESUME_AT)
		start->reason = resume->id > reg->last_id ? "unknown event id"
		                                          : "event id too old";
	else if (resume->kind == REGISTRY_RESUME_FROM)
		start->reason = resume->id > d->top_id ? "unknown event id"
		                                       : "event id too old";
	else if (resume->kind == REGISTRY_RESUME_UNKNOWN)
		start->reason = "unknown event id";
	else if (!live && d->delivered < lo)
		start->reason = "messages were dropped while away";
	if (start->reason != NULL) {
		start->reset = true;
		reg->resets++;
	}
	return cursor;
}

/*
 * The event id that names position cursor of d: resuming after it starts
 * at cursor again, as long as the log keeps what follows (device_start()).
 * The message at cursor when the log holds it; else cursor is just before
 * the log (or the log is empty), and the floor is the id of the message
 * at cursor, or an id older than everything in the log.
 */
static uint64_t
device_position_id(const struct reg_device *d, uint64_t cursor)
{
	if (d->count > 0 && cursor >= d->first_seq)
		return device_log_at(d, cursor)->id;
	return d->floor_id;
}

/*
 * Make room for one more live stream of d: while it has streams_per_device
 * live ones, mark the oldest replaced and wake it.
 */
static void
device_replace(struct registry *reg, struct reg_device *d)
{
	size_t max = reg->limits.streams_per_device, live = 0;
	struct registry_stream *s;

	if (max == 0)
		return;
	DL_FOREACH(d->streams, s)
	{
		live += stream_live(s);
	}
	/* d->streams is in the order of subscribing: oldest first. */
	DL_FOREACH(d->streams, s)
	{
		if (live < max)
			break;
		if (!stream_live(s))
			continue;
		s->replaced = true;
		reg->replaced++;
		pthread_cond_signal(&s->cond);
		live--;
	}
}

/*
 * REGISTRY_RESUME_FROM id on a device with no stream whose log does not
 * cover id: its caller will supply what follows id, so the log restarts
 * empty there (what it held is the caller's to resend, not lost).
 */
static void
device_restart(struct registry *reg, struct reg_device *d, uint64_t id)
{
	while (d->count > 0)
		device_drop_oldest(reg, d);
	d->delivered = d->last_seq;
	d->floor_id = d->top_id = id;
	device_recount(reg, d);
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

struct registry_stream *
registry_subscribe(struct registry *reg, const char *user, const char *device,
    const struct registry_resume *resume, struct registry_start *start,
    enum registry_error *err)
{
	struct registry_stream *s = NULL;
	struct reg_device *d = NULL;
	struct reg_user *u = NULL;
	pthread_condattr_t attr;
	uint64_t now = util_now_ms();

	memset(start, 0, sizeof(*start));
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
	/* A grace period that ended is over, swept or not. */
	d = registry_find_device(reg, user, device);
	if (d != NULL && device_expired(d, now) && d->nstreams == 0) {
		reg->forgotten++;
		device_free(reg, d);
	}
	d = NULL;
	HASH_FIND_STR(reg->users, user, u);
	if (u != NULL)
		HASH_FIND_STR(u->devices, device, d);
	if (d == NULL && u != NULL && reg->limits.devices_per_user > 0 &&
	    HASH_COUNT(u->devices) >= reg->limits.devices_per_user) {
		*err = REGISTRY_USER_FULL;
		goto out;
	}
	if (u == NULL) {
		u = xcalloc(1, sizeof(*u));
		u->name = xstrdup(user);
		HASH_ADD_KEYPTR(hh, reg->users, u->name, strlen(u->name), u);
		reg->nusers++;
	}
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->name = xstrdup(device);
		d->user = u;
		/*
		 * Whatever was sent before it existed, it cannot replay;
		 * unless the caller supplies it (REGISTRY_RESUME_FROM).
		 */
		d->floor_id = resume->kind == REGISTRY_RESUME_FROM
		    ? resume->id
		    : reg->last_id;
		d->top_id = d->floor_id;
		HASH_ADD_KEYPTR(hh, u->devices, d->name, strlen(d->name), d);
		reg->ndevices++;
	} else if (resume->kind == REGISTRY_RESUME_FROM && d->nstreams == 0 &&
	    (resume->id < d->floor_id || resume->id > d->top_id)) {
		device_restart(reg, d, resume->id);
	}
	if (d->grace_until != 0) {
		DL_DELETE2(reg->grace, d, gprev, gnext);
		reg->ngrace--;
		d->grace_until = 0;
	}
	device_replace(reg, d);
	device_trim(reg, d, now);
	s = xcalloc(1, sizeof(*s));
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&s->pinned, 0);
	s->id = reg->next_stream++;
	s->device = d;
	s->cursor = device_start(reg, d, resume, start);
	start->id = device_position_id(d, s->cursor);
	/* Count what it is behind by from where it starts. */
	s->bytes_out = d->bytes_in;
	for (uint64_t q = s->cursor + 1; q <= d->last_seq; q++)
		s->bytes_out -= device_log_at(d, q)->len;
	DL_APPEND(d->streams, s);
	d->nstreams++;
	HASH_ADD(hh, reg->streams, id, sizeof(s->id), s);
	reg->nstreams++;
	*err = REGISTRY_OK;
out:
	pthread_mutex_unlock(&reg->lock);
	return s;
}

/* d's last stream ended: forget it, or let its grace period run. */
static void
device_orphan(struct registry *reg, struct reg_device *d, uint64_t now)
{
	device_grace(reg, d, now);
	if (reg->limits.grace_ms == 0 || device_expired(d, now)) {
		reg->forgotten += reg->limits.grace_ms > 0;
		device_free(reg, d);
		return;
	}
	device_trim(reg, d, now);
}

void
registry_unsubscribe(struct registry *reg, struct registry_stream *s)
{
	struct reg_device *d = s->device;
	uint64_t now = util_now_ms();

	pthread_mutex_lock(&reg->lock);
	HASH_DEL(reg->streams, s);
	reg->nstreams--;
	DL_DELETE(d->streams, s);
	if (--d->nstreams == 0) {
		device_orphan(reg, d, now);
	} else {
		/* Its other streams may all be gone or overflowed. */
		device_grace(reg, d, now);
		device_trim(reg, d, now);
	}
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

/* registry_publish() with id, or 0 for the next registry-wide one. */
static enum registry_error
registry_publish_id(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m, uint64_t id)
{
	struct registry_stream *s, *wake[REGISTRY_WAKE_MAX];
	enum registry_error res;
	struct reg_device *d;
	uint64_t now = util_now_ms(), now_us = util_now_us();
	size_t nw = 0;

	pthread_mutex_lock(&reg->lock);
	d = registry_find_device(reg, user, device);
	/* A grace period that ended is over, swept or not. */
	if (d != NULL && device_expired(d, now)) {
		if (d->nstreams == 0) {
			reg->forgotten++;
			device_free(reg, d);
		}
		d = NULL;
	}
	if (d == NULL) {
		res = REGISTRY_NOT_FOUND;
		goto out;
	}
	if (id != 0 && id <= d->top_id) {
		res = REGISTRY_DUPLICATE;
		goto out;
	}
	res = device_live(d) ? REGISTRY_OK : REGISTRY_HELD;
	/* Stopping: accept only what a live stream will still take. */
	if (reg->closing && res != REGISTRY_OK) {
		res = REGISTRY_CLOSED;
		reg->refused++;
		goto out;
	}
	/*
	 * The oldest delivered messages make room, even from a stream that
	 * lags behind them; undelivered ones never do.
	 */
	while (reg->bytes + m->len > reg->limits.max_message_bytes &&
	    registry_drop_retained(reg, true))
		reg->evicted++;
	if (reg->bytes + m->len > reg->limits.max_message_bytes) {
		res = REGISTRY_MEMORY_FULL;
		reg->refused++;
		goto out;
	}
	m->published_us = now_us;
	device_append(reg, d, m, id);
	reg->published++;
	DL_FOREACH(d->streams, s)
	{
		if (!stream_live(s))
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
		if (nw < REGISTRY_WAKE_MAX) {
			atomic_fetch_add_explicit(
			    &s->pinned, 1, memory_order_relaxed);
			wake[nw++] = s;
		} else {
			pthread_cond_signal(&s->cond);
		}
	}
	device_trim(reg, d, now);
	/* Its last live stream may just have overflowed. */
	if (res == REGISTRY_OK)
		device_grace(reg, d, now);
out:
	pthread_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < nw; i++) {
		pthread_cond_signal(&wake[i]->cond);
		atomic_fetch_sub_explicit(
		    &wake[i]->pinned, 1, memory_order_release);
	}
	return res;
}

enum registry_error
registry_publish(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m)
{
	return registry_publish_id(reg, user, device, m, 0);
}

enum registry_error
registry_publish_at(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m, uint64_t id)
{
	/* 0 is never above a device's newest id. */
	if (id == 0)
		return REGISTRY_DUPLICATE;
	return registry_publish_id(reg, user, device, m, id);
}

void
registry_expire(struct registry *reg, uint64_t now_ms)
{
	struct reg_device *d, *next;
	bool more;

	/* In slices, so that a mass expiry never holds the lock for long. */
	do {
		size_t n = 0;

		more = false;
		pthread_mutex_lock(&reg->lock);
		/* In expiry order: stop at the first whose grace is not over. */
		for (d = reg->grace; d != NULL && device_expired(d, now_ms);
		     d = next) {
			next = d->gnext;
			/* One with a stream still ending goes when that ends. */
			if (d->nstreams > 0)
				continue;
			if (n++ == REGISTRY_SWEEP_SLICE) {
				more = true;
				break;
			}
			reg->forgotten++;
			device_free(reg, d);
		}
		/* In delivery order: stop at the first still in its window. */
		while (!more && reg->retained != NULL &&
		    reg->retained->t_ms + reg->limits.replay_ms <= now_ms) {
			if (n++ == REGISTRY_SWEEP_SLICE)
				more = true;
			else if (registry_drop_retained(reg, false))
				reg->expired++;
			else
				break;
		}
		pthread_mutex_unlock(&reg->lock);
	} while (more);
}

static void
registry_take(
    struct registry *reg, struct registry_stream *s, struct registry_batch *b)
{
	struct reg_device *d = s->device;
	uint64_t now = util_now_ms();

	b->n = 0;
	while (s->cursor < d->last_seq && b->n < REGISTRY_BATCH) {
		struct registry_msg *m = device_log_at(d, s->cursor + 1);

		b->msgs[b->n++] = registry_msg_ref(m);
		s->cursor++;
		s->bytes_out += m->len;
	}
	/*
	 * Delivered now: their replay window starts (see DESIGN).  A stream
	 * that started ahead of d->delivered (live only, or resuming) passes
	 * over messages no stream took yet: they count as delivered now too,
	 * so that the delivered ones stay a prefix of the log, in order.
	 */
	if (s->cursor > d->delivered) {
		uint64_t q = d->delivered + 1;

		if (q < d->first_seq)
			q = d->first_seq;
		for (; q <= s->cursor; q++) {
			struct registry_msg *m = device_log_at(d, q);

			m->t_ms = now;
			m->retained = true;
			DL_APPEND2(reg->retained, m, rprev, rnext);
		}
		d->delivered = s->cursor;
	}
	device_trim(reg, d, now);
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
		if (s->replaced) {
			wake = REGISTRY_REPLACED;
			break;
		}
		if (s->cursor < s->device->last_seq) {
			registry_take(reg, s, b);
			wake = REGISTRY_MESSAGES;
			break;
		}
		if (reg->closing) {
			/* It takes nothing more: posts to it are refused. */
			s->closed = true;
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
		device_grace(reg, s->device, util_now_ms());
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
	st->held = reg->held;
	st->message_bytes = reg->bytes;
	st->replaced = reg->replaced;
	st->evicted = reg->evicted;
	st->refused = reg->refused;
	st->published = reg->published;
	st->overflows = reg->overflows;
	st->forgotten = reg->forgotten;
	st->dropped = reg->dropped;
	st->resets = reg->resets;
	st->grace = reg->ngrace;
	st->replayed = reg->replayed;
	st->expired = reg->expired;
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
