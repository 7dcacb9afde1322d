/*
 * registry_impl: the state the registry modules share (registry.c, and
 * registry_publish, registry_deliver, registry_share, registry_expire,
 * registry_log): the structures, and the small helpers every one of them
 * calls under reg->lock (and a device's key, made before it), kept static
 * inline so that the compiler inlines them as before the split.  See the
 * DESIGN comment in registry.c.  Included by src/registry*.c only: every
 * other module sees registry.h, where the structures are opaque.
 */
#ifndef BEEP_REGISTRY_IMPL_H
#define BEEP_REGISTRY_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "keyed_hash.h"
#include "registry.h"
#include "util.h"

/*
 * Which registry-wide list a delivered message is on, in delivery order:
 * none (not delivered yet, or dropped), reg->retained (replayable for
 * BEEP_REPLAY_SECONDS), or reg->overdue (past that window, kept until the
 * lagging streams of its device have taken it; registry_expire()).
 */
enum registry_msg_list {
	MSG_ON_NONE = 0,
	MSG_ON_RETAINED,
	MSG_ON_OVERDUE,
};

struct registry_msg {
	atomic_uint refs;
	/* Under reg->lock: which of reg's lists holds it (padding else). */
	enum registry_msg_list list;
	/*
	 * Who posted it (registry_msg_set_sender()), 0: not known; set
	 * before it is published, read under reg->lock.
	 */
	uint64_t sender;
	/*
	 * Its idempotency key (registry_msg_set_key()), NULL: none; set
	 * before it is published, freed with it.
	 */
	struct reg_key *key;
	uint64_t seq;          /* number in its device's log */
	uint64_t id;           /* event id, registry-wide */
	uint64_t published_us; /* util_now_us() at registry_publish() */
	/* The rest, under reg->lock: */
	uint64_t t_ms;             /* when it was delivered (first taken) */
	struct reg_device *device; /* whose log holds it */
	struct registry_msg *rprev, *rnext; /* its links in that list */
	/*
	 * The next message appended to its device's log: set once, under
	 * reg->lock, when that one is appended, and never changed, so a
	 * stream walks the messages it took (struct registry_batch) after
	 * unlocking.
	 */
	struct registry_msg *next;
	/*
	 * Its frame's length, and len and limits.msg_overhead: what it counts
	 * in every byte count.  32 bits each (a frame is at most max_body and
	 * its envelope, far below 4 GiB: registry_msg_alloc() checks), so
	 * that the struct stays within REGISTRY_MSG_OVERHEAD.
	 */
	uint32_t len, size;
	/*
	 * Its device's bytes_in once it was appended: what a stream that
	 * took it has taken out (registry_subscribe()), without a walk.
	 */
	uint64_t bytes_in;
	char frame[];
};

/*
 * A message's idempotency key, in its device's keys while the message is
 * in that device's log (registry_log_append() to
 * registry_log_drop_oldest()): a POST's repeat is found in one lookup
 * under reg->lock, not by a walk of the log.  Its name is its sender
 * (8 bytes, set at registry_publish()) then the key's text: one sender's
 * key never matches another's, and the text is compared whole (the
 * table's hash is keyed: keyed_hash.h).
 */
struct reg_key {
	UT_hash_handle hh;
	struct registry_msg *m;
	bool listed;    /* in its device's keys */
	unsigned hashv; /* uthash's of name, made once at its publish */
	size_t len;     /* of name */
	char name[];
};

struct reg_user {
	char *name;
	struct reg_device
	    *devices; /* utlist DL via uprev/unext: oldest first */
	size_t ndevices;
	UT_hash_handle hh; /* in reg->users, by name */
};

/*
 * A stream's time behind while memory is short
 * (registry_share.c): ms counted up to seen (a walk that saw it), and
 * registry_short_ms() and the stream's bytes_out then, to tell how long
 * memory was short since and what the stream took meanwhile.
 */
struct lag_time {
	uint64_t ms, seen, short_at, out;
};

struct reg_device {
	const char *name; /* in key, after its user's name */
	struct reg_user *user;
	struct registry_stream *streams; /* utlist DL */
	size_t nstreams;
	/* The log: ring[(head + i) % cap] holds message first_seq + i. */
	struct registry_msg **ring;
	size_t cap, head, count;
	size_t bytes;       /* the sizes in the log */
	uint64_t first_seq; /* seq of ring[head] when count > 0 */
	uint64_t last_seq;  /* seq of the newest message ever appended */
	uint64_t taken;     /* the highest seq a stream took or started past */
	uint64_t delivered; /* up to it, delivered: registry_log_deliver() */
	uint64_t bytes_in;  /* the sizes ever appended */
	uint64_t floor_id;  /* the highest id no longer in the log */
	/*
	 * The id of message taken_seq, the taken one, kept as the log
	 * dropped the first message after it untaken (floor_id names what
	 * was dropped last, which no stream took): registry_unsubscribe_taken().
	 */
	uint64_t taken_id, taken_seq;
	uint64_t top_id;      /* the newest id appended, or resumed from */
	uint64_t grace_until; /* while on reg->grace: when it is forgotten */
	/*
	 * What it holds is kept elsewhere too: its last stream closed with
	 * registry_unsubscribe_taken()'s kept (a cluster's Redis has it),
	 * and none opened since.  Forgotten (its grace over, its place taken
	 * past max_devices), or its log dropped for room, it counts nothing
	 * as dropped.
	 */
	bool kept;
	struct reg_device *gprev, *gnext; /* in reg->grace */
	size_t held_counted;              /* its share of reg->held */
	size_t held_bytes_counted;        /* its share of reg->held_bytes */
	size_t held_pending_counted;      /* its share of reg->held_pending */
	/* The sizes of its messages on reg->retained or reg->overdue. */
	size_t delivered_bytes;
	/*
	 * The sighting of its streams that went while seen behind (struct
	 * registry_stream's lag_*, stuck, over), for its next stream to
	 * start with: registry_lag_inherit() in registry_share.c.
	 * lag_stuck.seen 0: none; lag_kept_ms, when the last such went.
	 */
	uint64_t lag_behind, lag_bytes_in, lag_kept_ms;
	struct lag_time lag_stuck, lag_over;
	struct reg_device *hprev, *hnext; /* in reg->holding, when it holds */
	/* The keys of its log's messages that have one: struct reg_key. */
	struct reg_key *keys;
	struct reg_device *uprev, *unext; /* in user->devices */
	/*
	 * In reg->devices, by key: its user's name and its own, each ending
	 * in '\0' (registry_device_key()).  One table for every device, its
	 * key beside its handle, so that a POST finds its device in one
	 * lookup, in one or two of the cache lines it then reads, rather
	 * than through its user's entry and that user's table of devices.
	 */
	UT_hash_handle hh;
	char key[];
};

/* Why a stream is no longer live: the bits of registry_stream.ended. */
enum {
	STREAM_ENDED_GONE = 1 << 0,     /* its client left: registry_hangup() */
	STREAM_ENDED_OVERFLOW = 1 << 1, /* too far behind, or cut off */
	STREAM_ENDED_REPLACED = 1 << 2, /* a newer stream took its place */
	STREAM_ENDED_CLOSED = 1 << 3,   /* it saw the registry close */
	STREAM_ENDED_EXPIRED = 1 << 4,  /* its expiry passed: registry_wait() */
};

struct registry_stream {
	uint64_t id;
	struct reg_device *device;
	pthread_cond_t cond;
	uint64_t cursor;    /* seq of the last message taken */
	uint64_t bytes_out; /* the sizes taken, to compare with bytes_in */
	/*
	 * The log's end (last_seq, bytes_in) when the stream started, or
	 * after its last registry_replay_at(): what it started behind by is
	 * its backlog, bounded by the replay limits, and does not count
	 * against its queue (see stream_overflows()).
	 */
	uint64_t start_seq, start_bytes;
	uint64_t tag; /* its client's, for registry_displace(); 0: none */
	/*
	 * Seen behind by more than its queue or share with the budget full:
	 * its device's bytes_in when last seen so, how far behind when its
	 * stuck time started, and its stuck time and its time past the bound
	 * (the time memory was short: limits.stuck_ms, limits.catch_up_ms), each
	 * as counted when last seen (stuck.seen 0: not seen so, or seen
	 * within its bound since); see registry_overflow_laggards().
	 */
	uint64_t lag_bytes_in, lag_behind;
	struct lag_time stuck, over;
	/*
	 * Seen within that bound at a take since (registry_lag_took()): its
	 * times stopped then, until it is past the bound again.
	 */
	bool lag_within;
	/*
	 * Why it is no longer live (STREAM_ENDED_*, any of them), 0 while it
	 * is: one byte, so that stream_live(), asked several times a POST,
	 * tests it once.  Here, where lag_within leaves room.
	 */
	uint8_t ended;
	/* When it started or last took a message: registry_lag_inherit(). */
	uint64_t alive_ms;
	/* registry_stream_expires(): its own thread's, read without the lock. */
	uint64_t until_ms;
	atomic_uint pinned; /* publishers about to signal cond, unlocked */
	struct registry_stream *prev, *next; /* in the device's list */
	UT_hash_handle hh;                   /* in reg->streams, by id */
};

struct registry {
	pthread_mutex_t lock;
	struct registry_limits limits;
	uint64_t epoch;
	struct reg_user *users;     /* by name */
	struct reg_device *devices; /* by key, every user's */
	struct registry_stream *streams;
	struct reg_device *grace;      /* utlist DL via gprev/gnext */
	struct registry_msg *retained; /* utlist DL via rprev/rnext */
	/*
	 * Delivered messages past their window that a live stream has not
	 * taken yet, in delivery order: utlist DL via rprev/rnext.
	 */
	struct registry_msg *overdue;
	/* Devices in grace holding untaken messages, utlist DL (hprev/hnext) */
	struct reg_device *holding;
	size_t nusers, ndevices, nstreams;
	size_t bytes;      /* the sizes in all logs */
	size_t held;       /* untaken messages of devices in grace */
	size_t held_bytes; /* the log bytes of the devices on reg->holding */
	/* The sizes of the messages on reg->retained and reg->overdue. */
	size_t delivered_bytes;
	/* Of the devices on reg->holding, their bytes not yet delivered. */
	size_t held_pending;
	uint64_t next_stream;
	uint64_t last_id; /* the newest event id given */
	uint64_t published, overflows, forgotten, dropped, resets;
	uint64_t replaced, evicted, refused, backlogged, crowded, repeated;
	size_t nkeys;               /* in every device's keys */
	size_t ngrace;              /* devices on reg->grace */
	uint64_t replayed, expired; /* see struct registry_stats */
	/*
	 * Messages of a device's log a new stream's start looked at, in
	 * all (registry_log_start(), registry_subscribe()), under the lock:
	 * counted (test_registry_start_walk).
	 */
	uint64_t start_walked;
	size_t noverdue; /* messages on reg->overdue */
	/* No walk for laggards before this (registry_overflow_laggards()). */
	uint64_t laggards_next_ms;
	/* registry_share(), counted at share_at_ms; 0: not yet. */
	uint64_t share, share_at_ms;
	/*
	 * Since when memory has been short (registry_memory_short(); 0: it
	 * is not), and for how long in all before that: registry_short_ms().
	 */
	uint64_t short_since, short_total;
	/* The latest now registry_short_note() was given. */
	uint64_t short_noted;
	bool closing;
};

/*
 * A device key (user and device names, each with its '\0') up to this
 * long is made on the stack, not allocated: two names of max_id's
 * default length fit.
 */
#define REGISTRY_KEY_STACK (2 * 256 + 2)

/*
 * A device's key in reg->devices (struct reg_device): its user's name and
 * its own, each with its '\0'.  Made before the lock is taken, on the
 * caller's stack when it fits (as names of up to max_id's default do).
 */
struct device_key {
	char *p;
	size_t len, user_len;
	unsigned hash; /* keyed_hash() of it, made before the lock too */
	char stack[REGISTRY_KEY_STACK];
};

static inline void
device_key_make(struct device_key *k, const char *user, const char *device)
{
	size_t dl = strlen(device) + 1;

	k->user_len = strlen(user);
	k->len = k->user_len + 1 + dl;
	k->p = k->len <= sizeof(k->stack) ? k->stack : xmalloc(k->len);
	memcpy(k->p, user, k->user_len + 1);
	memcpy(k->p + k->user_len + 1, device, dl);
	HASH_VALUE(k->p, k->len, k->hash);
}

static inline void
device_key_free(struct device_key *k)
{
	if (k->p != k->stack)
		free(k->p);
}

static inline struct reg_device *
registry_find_device(struct registry *reg, const struct device_key *k)
{
	struct reg_device *d;

	HASH_FIND_BYHASHVALUE(hh, reg->devices, k->p, k->len, k->hash, d);
	return d;
}

/* How often, at most, a full budget walks every stream for laggards. */
#define REGISTRY_LAGGARD_MS 100

/* limits.clock_ms, or util_now_ms(). */
static inline uint64_t
registry_now(const struct registry *reg)
{
	return reg->limits.clock_ms != NULL ? reg->limits.clock_ms()
	                                    : util_now_ms();
}

static inline struct registry_msg *
registry_msg_ref(struct registry_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

static inline struct registry_msg *
device_log_at(const struct reg_device *d, uint64_t seq)
{
	return d->ring[(d->head + (size_t)(seq - d->first_seq)) % d->cap];
}

/* Messages in the log that no stream of the device has taken. */
static inline size_t
device_held(const struct reg_device *d)
{
	uint64_t from = d->count ? d->first_seq - 1 : d->last_seq;

	if (d->taken > from)
		from = d->taken;
	return (size_t)(d->last_seq - from);
}

/* The sizes in d's log not yet delivered. */
static inline size_t
device_pending(const struct reg_device *d)
{
	return d->bytes - d->delivered_bytes;
}

/*
 * Whether memory is short: the live streams' pending bytes (not yet
 * delivered, not held for devices away) fill more than half the budget.
 * Then a POST that would put a stream past its share is refused, and the
 * laggard rules' times run (registry_share.c).
 */
static inline bool
registry_memory_short(const struct registry *reg)
{
	size_t pending = reg->bytes - reg->delivered_bytes;

	pending = pending > reg->held_pending ? pending - reg->held_pending : 0;
	return pending > reg->limits.max_message_bytes / 2;
}

/*
 * How long memory has been short in all, up to now (read before the lock,
 * it may be older than the last change: that change stands).
 */
static inline uint64_t
registry_short_ms(const struct registry *reg, uint64_t now)
{
	uint64_t ms = reg->short_total;

	if (reg->short_since != 0 && now > reg->short_since)
		ms += now - reg->short_since;
	return ms;
}

/*
 * Note at now whether memory is short, after anything that may have
 * changed the pending bytes (a message appended, taken, delivered or
 * dropped, a device gone away or back): called before every unlock of an
 * operation that may, so that the time it is short is known however the
 * POSTs come.
 */
static inline void
registry_short_note(struct registry *reg, uint64_t now)
{
	bool is_short = registry_memory_short(reg);

	/*
	 * now, read before the lock, may be older than a note before it:
	 * the state changed after that note, so not before its time (a
	 * stretch already counted as not short was counted again).
	 */
	if (now < reg->short_noted)
		now = reg->short_noted;
	reg->short_noted = now;
	if (is_short == (reg->short_since != 0))
		return;
	if (is_short) {
		reg->short_since = now != 0 ? now : 1;
	} else {
		reg->short_total = registry_short_ms(reg, now);
		reg->short_since = 0;
	}
}

/* device_recount() past its test: registry_log.c. */
void registry_log_recount_held(struct registry *reg, struct reg_device *d);

/*
 * Keep reg->held equal to the untaken messages of devices in grace,
 * reg->holding to the devices in grace that have any, in the order they
 * began to hold (but a device whose stuck stream was ended for room goes
 * first: registry_overflow_laggards()), reg->held_bytes to what dropping
 * their logs would free, and reg->held_pending to what of it is not yet
 * delivered.
 */
static inline void
device_recount(struct registry *reg, struct reg_device *d)
{
	/*
	 * Holding nothing, before or now (a live device, every time the log
	 * is appended to, delivered or trimmed): there is nothing to change,
	 * as held_bytes_counted is 0 whenever held_counted is.  Tested here,
	 * where it inlines: a POST asks five times, and a call cost more
	 * than the test.
	 */
	if (d->grace_until == 0 && d->held_counted == 0)
		return;
	registry_log_recount_held(reg, d);
}

/*
 * Whether a stream can still deliver: its client is not known to be gone,
 * it has not overflowed, no newer stream replaced it, it has not seen the
 * registry close, and its expiry has not ended it.  A stream that cannot
 * may still be linked in (its thread may be blocked writing to a slow
 * client), but it takes nothing more, is not listed, and the log does not
 * wait for it.
 */
static inline bool
stream_live(const struct registry_stream *s)
{
	return s->ended == 0;
}

/* Whether a device has a live stream; posts to one that has not are held. */
static inline bool
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
static inline uint64_t
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

/*
 * Before d's message seq is dropped: end each live stream of d that has
 * not read it yet (it cannot read what is gone, and resumes by replay).
 * Returns whether it ended any.
 */
static inline bool
device_overflow_behind(struct registry *reg, struct reg_device *d, uint64_t seq)
{
	struct registry_stream *s;
	bool ended = false;

	DL_FOREACH(d->streams, s)
	{
		if (stream_live(s) && s->cursor < seq) {
			s->ended |= STREAM_ENDED_OVERFLOW;
			reg->overflows++;
			pthread_cond_signal(&s->cond);
			ended = true;
		}
	}
	return ended;
}

/* Whether d's grace period is over (it is then to be forgotten). */
static inline bool
device_expired(const struct reg_device *d, uint64_t now)
{
	return d->grace_until != 0 && d->grace_until <= now;
}

#endif
