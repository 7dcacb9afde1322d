/*
 * registry: who is connected, and the messages on their way to them.
 *
 * users -> devices -> streams, in one process, behind one mutex.  A device
 * keeps a log of its recent messages, numbered from 1; each stream is a
 * cursor into that log.  A publisher appends to the log and signals the
 * condition variable of every stream of the device; the thread serving a
 * stream sleeps on its own condition variable, takes a batch of messages
 * under the lock, and writes them after unlocking.  So a slow stream
 * delays no one: the lock is never held across I/O.
 *
 * The registry knows nothing of FastCGI, HTTP, JSON or Redis.
 */
#ifndef BEEP_REGISTRY_H
#define BEEP_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The most messages one registry_wait() hands out, and the most bytes of
 * them (but always one message).  A stream's thread renders its batch
 * into one buffer that it holds while its write blocks, outside
 * BEEP_MAX_MESSAGE_MEMORY, and SSE framing can make a message up to 7
 * times larger (each line break its own "data: " line): the bytes keep
 * that buffer small whatever the backlog.
 */
#define REGISTRY_BATCH 64
#define REGISTRY_BATCH_BYTES 16384

struct registry;
struct registry_stream;

/*
 * A message: an immutable, reference-counted, preformatted SSE frame,
 * shared by every stream that delivers it.
 */
struct registry_msg;

/* What a message costs beyond its frame (registry_limits.msg_overhead). */
#define REGISTRY_MSG_OVERHEAD 128
/*
 * What a message's idempotency key costs beyond its text and its sender's
 * 8 bytes (registry_msg_set_key()): its entry in its device's table and
 * an allocation's header; counted in the message's size with them.
 */
#define REGISTRY_KEY_OVERHEAD 96

struct registry_limits {
	size_t max_streams; /* open streams in all; 0 = no limit */
	/*
	 * Past max_streams, streams admitted each in place of one of its
	 * device's live streams (registry_start.over), counted until the
	 * replaced ones end.  0 = none.
	 */
	size_t max_over;
	size_t queue_messages; /* undelivered messages per stream or device */
	size_t queue_bytes;    /* undelivered bytes (sizes), likewise */
	size_t replay_max;     /* delivered messages a device retains */
	size_t replay_bytes;   /* and at most this many bytes of them */
	uint64_t replay_ms;    /* how long it retains them */
	uint64_t grace_ms;     /* how long a device outlives its last stream */
	/* live streams kept per device; a new one replaces the oldest */
	size_t streams_per_device; /* 0 = no limit */
	size_t devices_per_user;   /* live or in grace; 0 = no limit */
	/*
	 * Devices in all, live or in grace: past it a new device takes the
	 * place of the device in grace whose grace ends first.  0 = no limit.
	 */
	size_t max_devices;
	/*
	 * Bytes (sizes) held in all logs (queued, held and retained); past it
	 * the oldest retained messages go, then publishing fails.  0 = none.
	 */
	size_t max_message_bytes;
	/*
	 * What a message costs beyond its frame, in every byte count above
	 * (queue_bytes, replay_bytes, max_message_bytes): its struct, its
	 * allocation's header and its slot in its device's log.  Tiny
	 * messages (a hang-up) cost several times their frame: counted as
	 * frames alone, 256 KiB of one-byte messages took 4 MB (a review).
	 * REGISTRY_MSG_OVERHEAD in the service; 0 where a test counts frames.
	 */
	size_t msg_overhead;
	/*
	 * With the budget full, a stream further behind than its queue, or
	 * than its share of the budget (registry_share.c),
	 * backlog counted, that has not caught up at all for this long is
	 * ended (see registry_publish()); 0: at the next POST that finds it
	 * so.
	 */
	uint64_t stuck_ms;
	/*
	 * With the budget full, a stream past that bound for this long,
	 * however it reads (catching up does not reset it), is ended as
	 * stuck: a client reading a little on each of its streams held
	 * their backlogs for minutes.  0: no limit.
	 */
	uint64_t catch_up_ms;
	/*
	 * The share of its device's log bounds (replay_max messages,
	 * replay_bytes), in percent, that a sender may hold not yet taken
	 * and still push out, to make room for its next message, one
	 * another sender posted that no stream has taken: past it that
	 * publish is refused (REGISTRY_CROWDED), so that one sender cannot
	 * make a device away lose what others posted to it; refused too
	 * when the sender of one it would push out holds less than its
	 * share, so that a second name of the same sender (another
	 * address, another account) cannot either.  Within its share,
	 * pushing out only what senders at their share hold, or only its
	 * own or delivered ones, the oldest go as before.  100 (or more): never refused, the oldest go
	 * whoever sent; 0: refused whenever another's would go.  Messages
	 * whose sender is not known (0) are never refused for it.
	 */
	unsigned sender_share;
	/* The registry's clock: util_now_ms() when NULL (tests set one). */
	uint64_t (*clock_ms)(void);
};

struct registry_stats {
	size_t users;
	size_t devices; /* live or in their grace period */
	size_t streams;
	size_t held;          /* messages waiting for devices in grace */
	size_t message_bytes; /* bytes (sizes) held in all logs */
	uint64_t published;   /* messages accepted by registry_publish() */
	uint64_t overflows;   /* streams closed for falling too far behind */
	uint64_t forgotten;   /* devices forgotten when their grace ended */
	uint64_t dropped;     /* undelivered messages dropped: see DESIGN */
	uint64_t resets;      /* streams that started with a reset */
	uint64_t replaced;    /* streams replaced by a newer one */
	uint64_t evicted;     /* retained messages dropped for the budget */
	uint64_t refused;     /* publishes refused: memory or stopping */
	uint64_t backlogged;  /* of them, REGISTRY_BACKLOGGED */
	uint64_t crowded;     /* publishes refused CROWDED or HELD_FULL */
	uint64_t repeated; /* publishes of a key the log held (not appended) */
	size_t keys;  /* keys of messages in the logs, indexed for repeats */
	size_t grace; /* devices in their grace period */
	uint64_t replayed; /* messages a resuming stream started behind */
	uint64_t expired;  /* delivered messages past their replay window */
	/* Past it, and not yet taken by a live stream that lags (DESIGN) */
	size_t overdue;
	/*
	 * At max_devices with none to give way (every device live, or its
	 * last stream still ending): a new device is refused.
	 */
	bool devices_full;
};

/* Where a new stream starts, from the last event id its client saw. */
enum registry_resume_kind {
	REGISTRY_RESUME_NONE,    /* no id: live only, or what is held */
	REGISTRY_RESUME_AT,      /* after the message with this id */
	REGISTRY_RESUME_UNKNOWN, /* an id not from this registry */
	/*
	 * After this id, which the caller gave the device's messages (see
	 * registry_publish_at()): the caller supplies whatever the log lacks
	 * after it.  For a device with no stream, a log that does not cover
	 * the id restarts empty at it instead of resetting the client.
	 */
	REGISTRY_RESUME_FROM,
	REGISTRY_RESUME__MAX
};

struct registry_resume {
	enum registry_resume_kind kind;
	uint64_t id; /* with REGISTRY_RESUME_AT */
};

/*
 * What a new stream must tell its client first.  id names the position
 * the stream starts at: resuming after it (REGISTRY_RESUME_AT) gets every
 * message the stream would have got.  Send it before anything else, so
 * that a client cut before its first event can still resume.
 */
struct registry_start {
	uint64_t id;        /* the position, as an event id */
	bool reset;         /* messages were lost: send a reset event */
	const char *reason; /* with reset: why, a static string */
	/*
	 * Admitted past max_streams, as a device with a live stream is (up
	 * to max_over): the caller makes it take the place of one of them
	 * (registry_displace_over()).
	 */
	bool over;
};

/* Why registry_wait() returned. */
enum registry_wake {
	REGISTRY_MESSAGES, /* the batch holds messages to write */
	REGISTRY_TIMEOUT,  /* the deadline passed: time for a keepalive */
	REGISTRY_GONE,     /* the client left: end the stream */
	REGISTRY_OVERFLOW, /* the stream fell too far behind: end it */
	REGISTRY_CLOSING,  /* the service is stopping: end the stream */
	REGISTRY_REPLACED, /* a newer stream of the device took its place */
	REGISTRY_EXPIRED,  /* its expiry passed (registry_stream_expires()) */
	REGISTRY_WAKE__MAX
};

enum registry_error {
	REGISTRY_OK,           /* done; a publish reached a live stream */
	REGISTRY_HELD,         /* published to a device in its grace period */
	REGISTRY_FULL,         /* max_streams reached */
	REGISTRY_USER_FULL,    /* devices_per_user reached */
	REGISTRY_DEVICES_FULL, /* max_devices reached, none in grace to go */
	REGISTRY_CLOSED,       /* registry_close() was called */
	REGISTRY_NOT_FOUND,    /* no such device with a live stream */
	REGISTRY_MEMORY_FULL,  /* undelivered messages fill the budget */
	REGISTRY_DUPLICATE,    /* registry_publish_at(): the log is past id */
	REGISTRY_BACKLOGGED,   /* memory is short and a stream is far behind */
	REGISTRY_DEVICE_FULL,  /* 2 x streams_per_device open, some ending */
	REGISTRY_CROWDED,      /* it would push out another sender's held one */
	REGISTRY_HELD_FULL,    /* and that one's sender is within its share */
	REGISTRY_ERROR__MAX
};

/*
 * Messages handed out by one registry_wait(), oldest first: first, then
 * each one's successor in its device's log, up to last.  Two pointers,
 * not an array: a stream's thread keeps the batch in the frame it sleeps
 * in, and every byte of that frame counts in memory per stream (see
 * server_stream.c).  Walk it with registry_batch_next().
 */
struct registry_batch {
	struct registry_msg *first, *last; /* NULL when n is 0 */
	size_t n;
};

/* Create a message holding a copy of frame; the caller owns one reference. */
struct registry_msg *registry_msg_new(const char *frame, size_t len);

/*
 * Create a message with room for a frame of len bytes, which the caller
 * writes through *frame before it publishes the message (a frame made to
 * its size, not copied); the caller owns one reference.
 */
struct registry_msg *registry_msg_alloc(size_t len, char **frame);
const char *registry_msg_frame(const struct registry_msg *m, size_t *len);
/*
 * Say who posted m, before it is published: a name for its sender that
 * no other sender has (keyed_hash64() of what BEEP_RATE counts it by),
 * or 0, not known (the default).  A device's log tells its senders apart
 * by it (limits.sender_share, REGISTRY_CROWDED).
 */
void registry_msg_set_sender(struct registry_msg *m, uint64_t sender);
/*
 * Give m, before registry_publish(), its sender's idempotency key,
 * key[0..len) (body_msg's key, 1 to BODY_KEY_MAX characters; len 0:
 * none, the default).  A message posted with the key of one its device's
 * log still holds from the same sender (registry_msg_set_sender();
 * delivered within the replay window, or held) is that one sent again,
 * its answer lost: registry_publish() does not append it, and answers as
 * for that one, with its id (registry_msg_id(m)).  Another sender's key
 * of the same text is another key.  Found in one lookup, not a walk of
 * the log.
 */
void registry_msg_set_key(struct registry_msg *m, const char *key, size_t len);
/*
 * A publish was refused, REGISTRY_CROWDED or REGISTRY_HELD_FULL, by the
 * same rule outside the registry (a cluster's Redis): counted as its own
 * (registry_stats() crowded).  Thread-safe.
 */
void registry_count_crowded(struct registry *reg);
/*
 * What one sender may hold of a device's bound (limits.replay_max or
 * replay_bytes) at a sender_share of pct (at most 100): pct percent of
 * bound, rounded up.  The cluster counts a device away's share with it
 * too, so that both count it the same.
 */
uint64_t registry_sender_share(uint64_t bound, unsigned pct);

/* The message's number in its device's log (0 until published). */
uint64_t registry_msg_seq(const struct registry_msg *m);
/*
 * The message's event id, unique in the registry and increasing in the
 * order of publishing (0 until published).  With registry_epoch(), which
 * differs between runs, it names the message for ever.
 */
uint64_t registry_msg_id(const struct registry_msg *m);
void registry_msg_unref(struct registry_msg *m);
/*
 * When the message was published (util_now_us()), or 0 until then: what a
 * stream measures its delivery latency from.
 */
uint64_t registry_msg_published_us(const struct registry_msg *m);

struct registry *registry_new(const struct registry_limits *limits);
/* Free everything; no thread may use the registry any more. */
void registry_free(struct registry *reg);

/* When this registry was made, in ms since 1970: the epoch of its ids. */
uint64_t registry_epoch(const struct registry *reg);

/*
 * Open a stream for (user, device), starting where resume says: after the
 * message with the given id when the device still retains everything
 * after it; with no id, live only, or (for a device in its grace period)
 * with everything not yet taken by any of its streams.  When messages the
 * client should have had are gone, start->reset says so, and the stream
 * starts as with no id.  start->id always names where it starts.  When
 * the device already has streams_per_device live streams, the oldest is
 * replaced: woken with REGISTRY_REPLACED, no longer live.  A replaced
 * stream counts until its caller unsubscribes it, which a client that
 * reads nothing delays to the write timeout: while the device has twice
 * streams_per_device streams open, a new one is refused
 * (REGISTRY_DEVICE_FULL).  Returns the stream, or NULL with *err set to
 * REGISTRY_FULL, REGISTRY_USER_FULL, REGISTRY_DEVICES_FULL,
 * REGISTRY_DEVICE_FULL or REGISTRY_CLOSED.  The caller must end it with registry_unsubscribe().
 */
/*
 * Whether registry_subscribe() would take a stream of user's device now,
 * or why not (*err): a cluster asks before it registers the device in
 * Redis, which a refusal afterwards cannot undo exactly (it would start
 * the device's grace period again).  Another subscribe may still take
 * the last place in between.
 */
bool registry_admits(struct registry *reg, const char *user, const char *device,
    enum registry_error *err);

struct registry_stream *registry_subscribe(struct registry *reg,
    const char *user, const char *device, const struct registry_resume *resume,
    struct registry_start *start, enum registry_error *err);

/*
 * Close the stream and free it.  A device whose last stream closes stays
 * addressable for grace_ms (then registry_expire() forgets it).
 */
void registry_unsubscribe(struct registry *reg, struct registry_stream *s);
/*
 * registry_unsubscribe(), and whether s was its device's last stream:
 * then *taken is the position up to which the device's streams took its
 * messages, or started past them, as an event id (registry_subscribe()'s
 * start->id names one so): what comes after it the device holds for its
 * next stream.  Not registry_publish_at()'s newest id: a stream no
 * longer live (its client left, its expiry passed, overflowed, replaced)
 * before its caller unsubscribed it took nothing published meanwhile.
 * Read as s closes, before the device can be forgotten (its grace period
 * may have ended while s's thread finished its last write, up to the
 * write timeout; or, once s is gone, a sweep, a POST, or a new device
 * past max_devices may forget it at any time).  A cluster's UNSUB tells
 * Redis this, so that any node's next stream of the device gets what
 * this node's held.  kept: the caller keeps what the device holds
 * elsewhere too (a cluster's Redis has every message it gave the
 * registry for the device): a device forgotten as s closes (its grace
 * period over while s's thread finished) does not count them as dropped.
 */
bool registry_unsubscribe_taken(struct registry *reg, struct registry_stream *s,
    uint64_t *taken, bool kept);

/*
 * The position up to which the streams of user's device took its
 * messages, or started past them, as an event id, into *taken: what
 * registry_unsubscribe_taken() reads as the last one closes, read while
 * they are open.  False (nothing set) when the device is not known.  A
 * cluster's resync that moves the device tells Redis, so that the move
 * keeps what came after it for a client back without it.
 */
bool registry_device_taken(struct registry *reg, const char *user,
    const char *device, uint64_t *taken);

/* A stream's id, unique for the life of the registry, never 0. */
uint64_t registry_stream_id(const struct registry_stream *s);

/*
 * The bytes (each message's size, as BEEP_REPLAY_BYTES counts them) s has
 * yet to take: just after it opened, its replay (in a cluster what Redis
 * replayed too, once cluster_subscribe() returned).
 */
uint64_t registry_stream_behind(
    struct registry *reg, const struct registry_stream *s);

/*
 * End s at until_ms (CLOCK_MONOTONIC, see util_now_ms(); 0: never, as a
 * new stream is): from then registry_wait() returns REGISTRY_EXPIRED and
 * takes nothing, so what s was not handed before its expiry is held for
 * the device's next stream, not counted as delivered to this one.  From
 * that return s is no longer live, as a stream whose client left: with no
 * other live stream its device is away (posts to it held), and a stream
 * of it opened before s is unsubscribed starts with what s left.  Called
 * by s's own thread, which alone reads it (in registry_wait()).
 */
void registry_stream_expires(struct registry_stream *s, uint64_t until_ms);

/*
 * Tag s with its client's (a hash of its address, never 0), for
 * registry_displace().  A stream is untagged until then.
 */
void registry_stream_tag(
    struct registry *reg, struct registry_stream *s, uint64_t tag);

/* Whether (user, device) has a live stream tagged tag. */
bool registry_has_tagged(
    struct registry *reg, const char *user, const char *device, uint64_t tag);

/*
 * Tag s, just subscribed, with tag, and mark the oldest other live stream
 * of its device tagged tag replaced and wake it (REGISTRY_REPLACED), as a
 * stream past streams_per_device does the oldest: for a client that came
 * back to its device while its old stream is still open (behind Caddy a
 * departure is noticed only at a later write), so that the new stream
 * takes that one's place.  Returns whether there was one (it may have
 * ended meanwhile).
 */
bool registry_displace(
    struct registry *reg, struct registry_stream *s, uint64_t tag);

/*
 * As registry_displace(), for s admitted past max_streams (start.over):
 * with no other live stream of its device tagged tag, the oldest other
 * live one is replaced, so that s takes a place already counted.
 */
bool registry_displace_over(
    struct registry *reg, struct registry_stream *s, uint64_t tag);

/*
 * Append m to the device's log (giving it its id) and wake its streams.
 * Takes its own reference: the caller still owns its own.  Returns
 * REGISTRY_OK when the device has a live stream, REGISTRY_HELD when it is
 * in its grace period (the message waits for it), or REGISTRY_NOT_FOUND.
 * Or, without appending: REGISTRY_MEMORY_FULL when m does not fit in
 * max_message_bytes even after dropping every retained message it may
 * drop (one longer than max_message_bytes alone is refused at once, with
 * nothing dropped); REGISTRY_BACKLOGGED, with nothing dropped, when the
 * messages not yet delivered fill more than half of max_message_bytes and
 * m would put a live stream of the device further behind than its share
 * of the budget (registry_backlogged() in registry_share.c);
 * REGISTRY_CROWDED, with nothing dropped, when m would push out of the
 * device's log (replay_max, replay_bytes) a message another sender
 * posted that no stream has taken, and m's sender (registry_msg_set_sender())
 * already holds limits.sender_share of those bounds untaken;
 * REGISTRY_HELD_FULL, with nothing dropped, when m's sender does not but
 * that message's sender holds less than its share too (the device keeps
 * all it may of senders within their shares); and
 * REGISTRY_CLOSED when the registry is closing and no live stream will
 * deliver m before the end.
 */
enum registry_error registry_publish(struct registry *reg, const char *user,
    const char *device, struct registry_msg *m);

/*
 * registry_publish() with an id the caller chose (ids from another
 * store): the device's ids must increase, so an id not above the newest
 * one the device has (or resumed from) is a message it already has: it
 * is not appended and REGISTRY_DUPLICATE is returned.  Ids of different
 * devices need not be ordered; registry_msg_id() returns it.
 */
enum registry_error registry_publish_at(struct registry *reg, const char *user,
    const char *device, struct registry_msg *m, uint64_t id);

/*
 * registry_publish_at() of a message already accepted elsewhere (a
 * cluster's, answered 200 by another node).  Refused for memory
 * (REGISTRY_MEMORY_FULL), it cuts the device at id in the same step,
 * under the same lock, so that no stream delivers across the hole: the
 * device's live streams end as overflowed (their clients resume from
 * their last id), and its log forgets everything up to id, the refused
 * message included (counted as dropped when untaken).  A resume from
 * before id then gets a reset here, or, as REGISTRY_RESUME_FROM once no
 * stream is left, the caller's replay of what follows; one without an
 * id, while the device has no live stream, a reset.  Held, not refused,
 * for a device whose grace period ended while a stream of it is still
 * open (ending): its caller still holds the device elsewhere.
 */
enum registry_error registry_publish_accepted_at(struct registry *reg,
    const char *user, const char *device, struct registry_msg *m, uint64_t id);

/*
 * registry_publish_accepted_at() to s's device of a message that s, just
 * subscribed, starts behind: its backlog, supplied by the caller
 * (a cluster's replay).  Like what the log held when s started, it does
 * not count against s's queue: a client whose backlog is longer than its
 * queue can still resume.  The caller bounds the backlog (replay limits).
 * Refused for memory, it cuts the device at id but for s, which goes on
 * after id (nothing of its backlog before the hole): the caller tells its
 * client of the loss.
 */
enum registry_error registry_replay_at(struct registry *reg,
    struct registry_stream *s, struct registry_msg *m, uint64_t id);

/*
 * Forget devices whose grace period ended by now_ms (CLOCK_MONOTONIC),
 * with their held messages, and drop retained messages delivered more
 * than replay_ms before now_ms.  Call it about once a second; it costs
 * what it drops, not what is kept.
 */
void registry_expire(struct registry *reg, uint64_t now_ms);

/*
 * Sleep until s has messages, its client leaves, it overflows, it is
 * replaced, the registry closes, its expiry passes, or deadline_ms
 * (CLOCK_MONOTONIC, see util_now_ms()) passes.  Pending messages are handed out before
 * REGISTRY_CLOSING, so nothing accepted is lost on a clean stop; once it
 * returned REGISTRY_CLOSING, s no longer counts as live.  On
 * REGISTRY_MESSAGES, b holds references the caller must drop with
 * registry_batch_release().
 */
enum registry_wake registry_wait(struct registry *reg,
    struct registry_stream *s, uint64_t deadline_ms, struct registry_batch *b);

/* The message after m in b, or NULL after b->last. */
struct registry_msg *registry_batch_next(
    const struct registry_batch *b, const struct registry_msg *m);

void registry_batch_release(struct registry_batch *b);

/*
 * Mark the stream with this id as gone (its client left) and wake it.
 * Safe to call with the id of a stream that has already ended.
 */
void registry_hangup(struct registry *reg, uint64_t stream_id);

/*
 * Copy the ids of user's devices that have a live stream: *names is an
 * array of *n new strings (free each, then the array); NULL when none.
 */
void registry_devices(
    struct registry *reg, const char *user, char ***names, size_t *n);

/*
 * Whether user's device is there for a POST: live, or away within its
 * grace period (a POST to it would be 200 or 202, not 404).
 */
bool registry_device_known(
    struct registry *reg, const char *user, const char *device);

void registry_stats(struct registry *reg, struct registry_stats *st);
/*
 * The streams open (registry_stats()'s streams) alone, under the lock:
 * what a cluster subscribe's check before Redis needs, without the walk
 * of the devices in grace that registry_stats() makes at max_devices for
 * devices_full, which the subscribe's own refusal makes again.
 */
size_t registry_streams(struct registry *reg);

/*
 * Refuse new streams, and from now on accept a message only for a device
 * with a live stream; wake every stream with REGISTRY_CLOSING.
 */
void registry_close(struct registry *reg);

#endif
