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
 * the last message it took.  device->taken is the highest number any
 * of its streams took, or started past (a new stream that starts at the
 * newest message, or after a resume id, has what is before it).
 * device->delivered is the same, but that it stops at the cursor of a
 * live stream still reading its backlog (behind where it started), until
 * that stream reads on or ends: a sibling that starts live, or takes a
 * newer message, does not deliver that backlog from under it
 * (registry_log_deliver()).  The log drops a message once (1) every live
 * stream and the device have taken it, and (2) it was delivered (first
 * taken, as above) more than replay_ms ago, or more than replay_max (or
 * replay_bytes of) messages are retained.  So a
 * reconnecting client can replay what it missed, and messages for a device
 * in its grace period wait.  A device's log, delivered or held, is
 * bounded by replay_max and replay_bytes (registry_log_trim()): past that
 * the oldest go, those not yet taken counted as dropped, and the device's
 * next stream starts with a reset; but a publish that would push out one
 * that another sender posted and no stream has taken is refused
 * (REGISTRY_CROWDED) once its own sender holds limits.sender_share of the
 * bounds untaken, or while the other holds less than that
 * (registry_log_crowds()), so that one sender, under one name or two,
 * cannot make a device away lose what others posted to it.  Each message keeps its
 * sender's name for it; the log is walked only when a publish fills it.
 * device->floor_id is the highest id the log no longer holds (at creation,
 * the registry's newest id): a client that saw an id below it may have
 * missed something, and gets a reset.  A new stream's cursor is also
 * named as an id (registry_log_position_id()): the id of the message at
 * the cursor, or the floor when the cursor is just before the log.  Resuming
 * after that id puts the cursor back where it was, so a client that was
 * told it before anything else cannot lose what a stream took for it.
 *
 * When a stream falls more than queue_messages or queue_bytes behind, it
 * is marked overflowed and woken; its thread ends it, and the log no
 * longer waits for it.
 *
 * Memory.  reg->retained lists every delivered message still in a log
 * and in its replay window, in the order of delivery; reg->overdue those
 * past it that a live stream has not taken yet (it lags, or reads its
 * backlog: it will take them, or overflow, or time out writing), in the
 * same order.  A device delivers and drops its messages in seq order,
 * so its messages on each list are in the order of its log, and its
 * overdue ones come before its retained ones: the head of reg->overdue,
 * or of reg->retained when none is overdue, is the head of its device's
 * log.  registry_expire() pops the head of reg->retained while it was
 * delivered more than replay_ms ago, and stops at the first that was
 * not: it drops it, or moves it to reg->overdue when a live stream has
 * not taken it, so that one slow reader holds back no other device's
 * expiry.  An overdue message goes as soon as its device's streams have
 * all taken it (registry_log_trim(), on each take and each stream's
 * end).  The sweep costs what it drops or moves.  reg->bytes counts the
 * sizes (frame and msg_overhead) in all logs; a publish that would pass
 * max_message_bytes first drops delivered messages from the head of reg->overdue, then of
 * reg->retained (the oldest delivered, whichever device; a live stream
 * still behind one is ended as overflowed, so one slow reader cannot make
 * the service refuse every post).  Then, for a device with a live stream only, the messages
 * held for devices in grace go, device by device, the one that began to
 * hold first first (reg->holding; counted as dropped, and such a device's
 * client comes back to a reset; unless another keeps them, device->kept:
 * a cluster's Redis, which gives them to its next stream): what a client that is here waits for
 * comes before what waits for one that is away, so that clients posting
 * to devices they keep away cannot make every post fail; but only when
 * dropping them all would make room (reg->held_bytes), so that none is
 * lost for nothing.  A publish is refused when only messages live
 * streams have not taken are left, or for a device in grace when only
 * held ones are.  Before any of that, while the live streams' pending
 * bytes (not yet delivered: reg->bytes less reg->delivered_bytes, those
 * on reg->retained and reg->overdue, less reg->held_pending, what
 * devices in grace hold) fill more than half the budget, a publish that
 * would put a live stream of its device past its share is refused
 * (registry_backlogged() in registry_share.c), so that streams that read
 * too slowly cannot fill the budget from their own clients' posts.
 * reg->held counts the messages no stream has taken of the devices in
 * grace, and reg->holding lists the devices in grace that hold any, so
 * registry_stats() walks no held message and the eviction finds a device
 * to drop at once (registry_stats() walks reg->grace at max_devices only,
 * past the devices whose last stream is still ending, as a new device's
 * subscribe does, once for its refusal and the device that gives way: see
 * device_to_forget(); a cluster's check before Redis takes the count of
 * streams alone, registry_streams()).
 *
 * Tables (uthash): reg->devices holds every device by its key, its user's
 * name and its own (each with its '\0', beside its hash handle), so that
 * a POST finds its device in one lookup; reg->users holds each user by
 * name, with the list of its devices in the order they came (listing,
 * devices_per_user); reg->streams holds every stream by id.
 *
 * Stream lifecycle: registry_subscribe() links the stream into its device
 * and into reg->streams (by id); its thread loops in registry_wait();
 * registry_hangup() (from the connection watcher), an overflow, or
 * registry_close() set a flag and signal its condition variable, or its
 * expiry passes in registry_wait(), which marks it expired (no longer
 * live, at once: a new stream of its device may come before it ends); the
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
 *
 * Modules.  The registry is six files behind the one interface,
 * registry.h, sharing their structures through registry_impl.h (with the
 * small helpers every one calls under the lock: stream_live(),
 * device_live(), device_min_cursor(), device_log_at(), device_recount();
 * and a device's key and its lookup, device_key_make() and
 * registry_find_device()): this file holds users, devices and streams
 * (subscribe, unsubscribe, tags, listing) and the counters;
 * registry_publish.c the writing side (a message published: its
 * refusals, the room made for it, its streams woken; a device cut at a
 * message accepted elsewhere); registry_deliver.c the reading side (the
 * messages, a stream's wait and the batch it takes, a hang-up);
 * registry_share.c the streams' shares of the budget; registry_log.c a
 * device's log (append, trim, drop the oldest, where a new stream
 * starts); registry_expire.c what is let go (the grace list, the retained
 * list and the memory budget's eviction, registry_expire(), forgetting a
 * device).  Dependencies point one way: registry, registry_publish and
 * registry_deliver -> registry_share -> registry_expire -> registry_log;
 * registry.c and registry_publish.c call nothing of each other.  All of
 * it runs under reg->lock, as above, but a message's reference count and
 * a taken batch's walk.
 */
#include "registry.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "registry_expire.h"
#include "registry_impl.h"
#include "registry_log.h"
#include "registry_share.h"
#include "util.h"

struct registry *
registry_new(const struct registry_limits *limits)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));
	pthread_mutexattr_t attr;
	struct timespec ts;

	/*
	 * Adaptive: a thread that finds the lock taken spins a little
	 * before it sleeps, since it is held only for table updates and
	 * pointer copies (LOCKING above).
	 */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&reg->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	reg->limits = *limits;
	if (reg->limits.queue_messages == 0)
		reg->limits.queue_messages = SIZE_MAX / 2;
	if (reg->limits.queue_bytes == 0)
		reg->limits.queue_bytes = SIZE_MAX / 2;
	if (reg->limits.replay_max == 0)
		reg->limits.replay_max = SIZE_MAX / 2;
	if (reg->limits.replay_bytes == 0)
		reg->limits.replay_bytes = SIZE_MAX / 2;
	/* Its struct, an allocation's header and its slot in a log. */
	_Static_assert(sizeof(struct registry_msg) + 16 + sizeof(void *) <=
	        REGISTRY_MSG_OVERHEAD,
	    "REGISTRY_MSG_OVERHEAD: what a message costs beyond its frame");
	/* A key's entry and an allocation's header. */
	_Static_assert(sizeof(struct reg_key) + 16 <= REGISTRY_KEY_OVERHEAD,
	    "REGISTRY_KEY_OVERHEAD: what a key costs beyond its name");
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

void
registry_free(struct registry *reg)
{
	struct registry_stream *s, *stmp;
	struct reg_device *d, *dtmp;

	if (reg == NULL)
		return;
	HASH_ITER(hh, reg->streams, s, stmp)
	{
		HASH_DEL(reg->streams, s);
		pthread_cond_destroy(&s->cond);
		free(s);
	}
	HASH_ITER(hh, reg->devices, d, dtmp)
	{
		d->streams = NULL;
		registry_expire_forget(reg, d);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* Mark s replaced and wake it: its thread ends it.  Locked. */
static void
stream_replace(struct registry *reg, struct registry_stream *s)
{
	s->ended |= STREAM_ENDED_REPLACED;
	reg->replaced++;
	pthread_cond_signal(&s->cond);
}

/*
 * Make room for one more live stream of d: while it has streams_per_device
 * live ones, mark the oldest replaced and wake it.
 */
static void
device_replace(struct registry *reg, struct reg_device *d, uint64_t now)
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
		stream_replace(reg, s);
		registry_lag_keep(reg, d, s, now);
		live--;
	}
}

/*
 * The device in grace that goes first to make room under max_devices:
 * the one whose grace ends first, of those with no stream left (one whose
 * last stream is still ending, its write blocked, goes when that ends:
 * see registry_expire()).  NULL when every device is live or ending.
 */
static struct reg_device *
device_to_forget(struct registry *reg)
{
	struct reg_device *d = reg->grace;

	while (d != NULL && d->nstreams > 0)
		d = d->gnext;
	return d;
}

/* Whether the registry is at max_streams.  Locked. */
static bool
registry_full(const struct registry *reg)
{
	return reg->limits.max_streams > 0 &&
	    reg->nstreams >= reg->limits.max_streams;
}

/*
 * Why a stream of device d (NULL: a new one) of user u (NULL: a new one)
 * cannot be taken now, or REGISTRY_OK.  expired: a device of u whose
 * grace has ended, which the subscribe forgets first (NULL: none, or
 * forgotten already).  Devices in grace are made by subscribing and
 * leaving, which nothing else bounds: a new device past max_devices takes
 * the place of device_to_forget()'s, which *forget is set to (else NULL),
 * so that the subscribe does not walk reg->grace again for it.
 *
 * At max_streams a device with a live stream is not refused: its new
 * stream is admitted over the limit (start->over), and its caller makes
 * it take the place of one of the device's (registry_displace_over()).
 * Behind Caddy a client that left keeps its stream until a later write to
 * it fails, so a phone that reloads while the service is full would
 * otherwise be refused by its own ghost.  A replaced stream counts until
 * its thread ends it, which a client that reads nothing delays to
 * BEEP_WRITE_TIMEOUT, and each holds a worker meanwhile: streams are
 * admitted so only up to limits.max_over past max_streams, which the
 * server's workers beyond max_streams leave room for.
 */
static enum registry_error
subscribe_refusal(struct registry *reg, const struct reg_device *d,
    const struct reg_user *u, const struct reg_device *expired,
    struct reg_device **forget)
{
	size_t gone = expired != NULL;

	*forget = NULL;
	if (reg->closing)
		return REGISTRY_CLOSED;
	if (registry_full(reg) &&
	    (d == NULL || !device_live(d) ||
	        reg->nstreams - reg->limits.max_streams >=
	            reg->limits.max_over))
		return REGISTRY_FULL;
	/*
	 * Replaced streams stay open until their threads end them, which a
	 * client that reads nothing delays to the write timeout: without a
	 * bound, one client (with authentication on, where no address limit
	 * applies) resuming a device again and again held every stream of
	 * BEEP_MAX_STREAMS, and everyone else was refused (a review).  As
	 * the address limit does, at most twice the device's streams.
	 */
	if (d != NULL && reg->limits.streams_per_device > 0 &&
	    d->nstreams >= 2 * reg->limits.streams_per_device)
		return REGISTRY_DEVICE_FULL;
	if (d != NULL)
		return REGISTRY_OK;
	if (u != NULL && reg->limits.devices_per_user > 0 &&
	    u->ndevices - gone >= reg->limits.devices_per_user)
		return REGISTRY_USER_FULL;
	if (reg->limits.max_devices > 0 &&
	    reg->ndevices - gone >= reg->limits.max_devices &&
	    (*forget = device_to_forget(reg)) == NULL)
		return REGISTRY_DEVICES_FULL;
	return REGISTRY_OK;
}

bool
registry_admits(struct registry *reg, const char *user, const char *device,
    enum registry_error *err)
{
	struct reg_device *d, *expired = NULL, *forget;
	struct reg_user *u;
	struct device_key k;
	unsigned user_hash; /* as registry_subscribe(): before the lock */

	device_key_make(&k, user, device);
	HASH_VALUE(user, k.user_len, user_hash);
	pthread_mutex_lock(&reg->lock);
	/* As registry_subscribe() finds them: one expired counts as gone. */
	d = registry_find_device(reg, &k);
	if (d != NULL && device_expired(d, registry_now(reg)) &&
	    d->nstreams == 0) {
		expired = d;
		d = NULL;
	}
	if (d != NULL)
		u = d->user;
	else
		HASH_FIND_BYHASHVALUE(
		    hh, reg->users, user, k.user_len, user_hash, u);
	*err = subscribe_refusal(reg, d, u, expired, &forget);
	pthread_mutex_unlock(&reg->lock);
	device_key_free(&k);
	return *err == REGISTRY_OK;
}

struct registry_stream *
registry_subscribe(struct registry *reg, const char *user, const char *device,
    const struct registry_resume *resume, struct registry_start *start,
    enum registry_error *err)
{
	struct registry_stream *s = NULL;
	struct reg_device *d = NULL, *forget;
	struct reg_user *u = NULL;
	pthread_condattr_t attr;
	uint64_t now = registry_now(reg);
	struct device_key k;
	unsigned user_hash; /* for reg->users, also made before the lock */
	bool over;          /* admitted past max_streams */

	memset(start, 0, sizeof(*start));
	device_key_make(&k, user, device);
	HASH_VALUE(user, k.user_len, user_hash);
	pthread_mutex_lock(&reg->lock);
	/* A grace period that ended is over, swept or not. */
	d = registry_find_device(reg, &k);
	if (d != NULL && device_expired(d, now) && d->nstreams == 0) {
		reg->forgotten++;
		registry_expire_forget(reg, d);
		d = NULL;
	}
	if (d != NULL)
		u = d->user;
	else
		HASH_FIND_BYHASHVALUE(
		    hh, reg->users, user, k.user_len, user_hash, u);
	*err = subscribe_refusal(reg, d, u, NULL, &forget);
	if (*err != REGISTRY_OK)
		goto out;
	/* A new device at max_devices: forget is the one that gives way. */
	if (forget != NULL) {
		reg->forgotten++;
		registry_expire_forget(reg, forget);
		/* It may have been the user's last device: then u went. */
		HASH_FIND_BYHASHVALUE(
		    hh, reg->users, user, k.user_len, user_hash, u);
	}
	if (u == NULL) {
		u = xcalloc(1, sizeof(*u));
		u->name = xstrdup(user);
		HASH_ADD_KEYPTR_BYHASHVALUE(
		    hh, reg->users, u->name, k.user_len, user_hash, u);
		reg->nusers++;
	}
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d) + k.len);
		memcpy(d->key, k.p, k.len);
		d->name = d->key + k.user_len + 1;
		d->user = u;
		/*
		 * Whatever was sent before it existed, it cannot replay;
		 * unless the caller supplies it (REGISTRY_RESUME_FROM).
		 */
		d->floor_id = resume->kind == REGISTRY_RESUME_FROM
		    ? resume->id
		    : reg->last_id;
		d->top_id = d->floor_id;
		HASH_ADD_KEYPTR_BYHASHVALUE(
		    hh, reg->devices, d->key, k.len, k.hash, d);
		DL_APPEND2(u->devices, d, uprev, unext);
		u->ndevices++;
		reg->ndevices++;
	} else if (resume->kind == REGISTRY_RESUME_FROM && d->nstreams == 0 &&
	    (resume->id < d->floor_id || resume->id > d->top_id)) {
		registry_log_restart(reg, d, resume->id);
	}
	/*
	 * An id the caller gave is one the registry has given too: a client
	 * of the stream that starts there (told it by its first id: line)
	 * resumes from it on another stream of the device, which the log
	 * judges against reg->last_id.
	 */
	if (resume->kind == REGISTRY_RESUME_FROM && resume->id > reg->last_id)
		reg->last_id = resume->id;
	if (d->grace_until != 0) {
		DL_DELETE2(reg->grace, d, gprev, gnext);
		reg->ngrace--;
		d->grace_until = 0;
	}
	/* Whether another keeps what it holds: said as its last closes. */
	d->kept = false;
	/* Over, it takes one place only: registry_displace_over(). */
	over = registry_full(reg);
	if (!over)
		device_replace(reg, d, now);
	registry_log_trim(reg, d, now);
	s = xcalloc(1, sizeof(*s));
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&s->pinned, 0);
	s->id = reg->next_stream++;
	s->device = d;
	s->cursor = registry_log_start(reg, d, resume, start);
	start->id = registry_log_position_id(d, s->cursor);
	start->over = over;
	/*
	 * Count what it is behind by from where it starts: what a stream
	 * that took up to its cursor took out, read off the message there
	 * (or, before the log, off its first), not summed over what follows.
	 */
	if (s->cursor >= d->last_seq || d->count == 0)
		s->bytes_out = d->bytes_in;
	else if (s->cursor >= d->first_seq)
		s->bytes_out = device_log_at(d, s->cursor)->bytes_in;
	else
		s->bytes_out = device_log_at(d, d->first_seq)->bytes_in -
		    device_log_at(d, d->first_seq)->size;
	s->start_seq = d->last_seq;
	s->start_bytes = d->bytes_in;
	registry_lag_inherit(reg, d, s, now);
	s->alive_ms = now;
	DL_APPEND(d->streams, s);
	d->nstreams++;
	/*
	 * What it starts past counts as taken, as in registry_take(), and
	 * delivered unless a sibling still reads it.
	 */
	registry_log_deliver(reg, d, s->cursor, now);
	HASH_ADD(hh, reg->streams, id, sizeof(s->id), s);
	reg->nstreams++;
	*err = REGISTRY_OK;
out:
	registry_short_note(reg, now);
	pthread_mutex_unlock(&reg->lock);
	device_key_free(&k);
	return s;
}

/*
 * The position up to which d's streams took its messages, or started
 * past them, as an event id (see registry_unsubscribe_taken()).  Locked.
 */
static uint64_t
device_taken_id(const struct reg_device *d)
{
	/*
	 * Messages after the taken one dropped untaken: not their floor,
	 * which would say they were taken, but the taken one's id.
	 */
	if (d->taken < (d->count ? d->first_seq - 1 : d->last_seq) &&
	    d->taken_seq == d->taken)
		return d->taken_id;
	return registry_log_position_id(d, d->taken);
}

bool
registry_unsubscribe_taken(
    struct registry *reg, struct registry_stream *s, uint64_t *taken, bool kept)
{
	struct reg_device *d = s->device;
	uint64_t now = registry_now(reg);
	bool last;

	pthread_mutex_lock(&reg->lock);
	HASH_DEL(reg->streams, s);
	reg->nstreams--;
	registry_lag_keep(reg, d, s, now);
	DL_DELETE(d->streams, s);
	last = --d->nstreams == 0;
	if (last) {
		/*
		 * Read before the device may go: its grace period may have
		 * ended while this stream's last write blocked.
		 */
		*taken = device_taken_id(d);
		registry_expire_orphan(reg, d, now, kept);
	} else {
		/* Its other streams may all be gone or overflowed. */
		registry_expire_grace(reg, d, now);
		registry_log_trim(reg, d, now);
	}
	registry_short_note(reg, now);
	pthread_mutex_unlock(&reg->lock);
	/* Unlinked: no new pins; wait for publishers still signalling. */
	while (atomic_load_explicit(&s->pinned, memory_order_acquire) != 0)
		sched_yield();
	pthread_cond_destroy(&s->cond);
	free(s);
	return last;
}

bool
registry_device_taken(
    struct registry *reg, const char *user, const char *device, uint64_t *taken)
{
	struct reg_device *d;
	struct device_key k;

	device_key_make(&k, user, device);
	pthread_mutex_lock(&reg->lock);
	d = registry_find_device(reg, &k);
	if (d != NULL)
		*taken = device_taken_id(d);
	pthread_mutex_unlock(&reg->lock);
	device_key_free(&k);
	return d != NULL;
}

void
registry_unsubscribe(struct registry *reg, struct registry_stream *s)
{
	uint64_t taken;

	registry_unsubscribe_taken(reg, s, &taken, false);
}

uint64_t
registry_stream_id(const struct registry_stream *s)
{
	return s->id;
}

uint64_t
registry_stream_behind(struct registry *reg, const struct registry_stream *s)
{
	uint64_t behind;

	pthread_mutex_lock(&reg->lock);
	behind = s->device->bytes_in > s->bytes_out
	    ? s->device->bytes_in - s->bytes_out
	    : 0;
	pthread_mutex_unlock(&reg->lock);
	return behind;
}

void
registry_stream_expires(struct registry_stream *s, uint64_t until_ms)
{
	s->until_ms = until_ms;
}

void
registry_stream_tag(
    struct registry *reg, struct registry_stream *s, uint64_t tag)
{
	pthread_mutex_lock(&reg->lock);
	s->tag = tag;
	pthread_mutex_unlock(&reg->lock);
}

/*
 * The oldest live stream of d tagged tag (0: any), but s; NULL: none.
 * Locked.
 */
static struct registry_stream *
device_tagged(struct reg_device *d, uint64_t tag, struct registry_stream *s)
{
	struct registry_stream *t;

	/* d->streams is in the order of subscribing: oldest first. */
	DL_FOREACH(d->streams, t)
	{
		if (t != s && stream_live(t) && (tag == 0 || t->tag == tag))
			return t;
	}
	return NULL;
}

bool
registry_has_tagged(
    struct registry *reg, const char *user, const char *device, uint64_t tag)
{
	struct device_key k;
	struct reg_device *d;
	bool found;

	if (tag == 0)
		return false;
	device_key_make(&k, user, device);
	pthread_mutex_lock(&reg->lock);
	d = registry_find_device(reg, &k);
	found = d != NULL && device_tagged(d, tag, NULL) != NULL;
	pthread_mutex_unlock(&reg->lock);
	device_key_free(&k);
	return found;
}

/*
 * s, tagged tag, takes the place of the oldest other live stream of its
 * device tagged tag; with any and none such, of the oldest other live one.
 */
static bool
displace(
    struct registry *reg, struct registry_stream *s, uint64_t tag, bool any)
{
	struct registry_stream *old;

	pthread_mutex_lock(&reg->lock);
	s->tag = tag;
	old = tag != 0 ? device_tagged(s->device, tag, s) : NULL;
	if (old == NULL && any)
		old = device_tagged(s->device, 0, s);
	if (old != NULL) {
		struct reg_device *d = old->device;
		uint64_t now = registry_now(reg);

		stream_replace(reg, old);
		registry_lag_keep(reg, d, old, now);
		/* A backlog old held back from a sibling is delivered now. */
		registry_log_deliver(reg, d, d->taken, now);
		registry_short_note(reg, now);
	}
	pthread_mutex_unlock(&reg->lock);
	return old != NULL;
}

bool
registry_displace(struct registry *reg, struct registry_stream *s, uint64_t tag)
{
	return displace(reg, s, tag, false);
}

bool
registry_displace_over(
    struct registry *reg, struct registry_stream *s, uint64_t tag)
{
	return displace(reg, s, tag, true);
}

void
registry_devices(
    struct registry *reg, const char *user, char ***names, size_t *n)
{
	struct reg_device *d;
	struct reg_user *u;
	size_t i = 0, len = strlen(user);
	unsigned hash;

	*names = NULL;
	*n = 0;
	HASH_VALUE(user, len, hash);
	pthread_mutex_lock(&reg->lock);
	HASH_FIND_BYHASHVALUE(hh, reg->users, user, len, hash, u);
	if (u != NULL && u->ndevices > 0) {
		*names = xmalloc(u->ndevices * sizeof(**names));
		DL_FOREACH2(u->devices, d, unext)
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

bool
registry_device_known(
    struct registry *reg, const char *user, const char *device)
{
	struct reg_device *d;
	struct device_key k;
	bool known;

	device_key_make(&k, user, device);
	pthread_mutex_lock(&reg->lock);
	d = registry_find_device(reg, &k);
	/* As registry_publish_id(): a grace period that ended is over. */
	known = d != NULL && !device_expired(d, registry_now(reg));
	pthread_mutex_unlock(&reg->lock);
	device_key_free(&k);
	return known;
}

void
registry_count_crowded(struct registry *reg)
{
	pthread_mutex_lock(&reg->lock);
	reg->crowded++;
	pthread_mutex_unlock(&reg->lock);
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
	st->backlogged = reg->backlogged;
	st->crowded = reg->crowded;
	st->repeated = reg->repeated;
	st->keys = reg->nkeys;
	st->published = reg->published;
	st->overflows = reg->overflows;
	st->forgotten = reg->forgotten;
	st->dropped = reg->dropped;
	st->resets = reg->resets;
	st->grace = reg->ngrace;
	st->replayed = reg->replayed;
	st->expired = reg->expired;
	st->overdue = reg->noverdue;
	/*
	 * As subscribe_refusal() finds it for a new device.  At the limit
	 * only, the walk passes devices whose last stream is still ending
	 * alone: one is a worker's write blocked, so at most a stream each.
	 */
	st->devices_full = reg->limits.max_devices > 0 &&
	    reg->ndevices >= reg->limits.max_devices &&
	    device_to_forget(reg) == NULL;
	pthread_mutex_unlock(&reg->lock);
}

size_t
registry_streams(struct registry *reg)
{
	size_t n;

	pthread_mutex_lock(&reg->lock);
	n = reg->nstreams;
	pthread_mutex_unlock(&reg->lock);
	return n;
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
