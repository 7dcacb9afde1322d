/* registry_log: see registry_log.h, and DESIGN in registry.c. */
#include "registry_log.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The ring's least room: what its first message allocates. */
#define LOG_MIN_CAP 8

/*
 * device_recount() for a device in grace, or one that held: see
 * registry_impl.h.  Out of line, so that the test before it inlines.
 */
void
registry_log_recount_held(struct registry *reg, struct reg_device *d)
{
	size_t n = d->grace_until != 0 ? device_held(d) : 0;
	size_t bytes = n > 0 ? d->bytes : 0;
	size_t pending = n > 0 ? device_pending(d) : 0;

	if (n == 0 && d->held_counted == 0)
		return;
	if (d->held_counted == 0 && n > 0)
		DL_APPEND2(reg->holding, d, hprev, hnext);
	else if (d->held_counted > 0 && n == 0)
		DL_DELETE2(reg->holding, d, hprev, hnext);
	reg->held = reg->held - d->held_counted + n;
	d->held_counted = n;
	reg->held_bytes = reg->held_bytes - d->held_bytes_counted + bytes;
	d->held_bytes_counted = bytes;
	reg->held_pending =
	    reg->held_pending - d->held_pending_counted + pending;
	d->held_pending_counted = pending;
}

/*
 * Move d's log to a ring of cap slots (at least its count), oldest at 0.
 */
static void
log_resize(struct reg_device *d, size_t cap)
{
	struct registry_msg **ring = xmalloc(cap * sizeof(*ring));

	for (size_t i = 0; i < d->count; i++)
		ring[i] = d->ring[(d->head + i) % d->cap];
	free(d->ring);
	d->ring = ring;
	d->cap = cap;
	d->head = 0;
}

/*
 * See registry.h.  bound may be near SIZE_MAX (no bound), where
 * bound * pct would wrap.
 */
uint64_t
registry_sender_share(uint64_t bound, unsigned pct)
{
	return bound / 100 * pct + (bound % 100 * pct + 99) / 100;
}

/*
 * The most senders whose held messages one publish may push out: one
 * that needs the room of more is refused (only a message many times the
 * size of those it would push out needs that).
 */
#define LOG_OTHERS_MAX 4

/*
 * One sender cannot make a device away lose what others posted to it:
 * the device's bounds are the device's, whoever sent, and one sender
 * within its rate filled them (80 messages of 60 KB fill 4 MiB), so that
 * the client came back to a reset and the other caller's offer was gone.
 * A sender past its share is refused instead (the sender's app tries
 * again later); its messages stay in order and nothing accepted goes.
 * Nor does another's held message go for room unless its own sender
 * holds its share: a sender past its share posting under a second name
 * (another address, another account), which holds nothing, pushed out
 * the offer all the same (until 2026-12-07).  Delivered messages kept
 * for replay go first, as always, and count for no one.
 */
enum registry_error
registry_log_crowds(const struct registry *reg, const struct reg_device *d,
    const struct registry_msg *m)
{
	const struct registry_limits *l = &reg->limits;
	size_t count = d->count + 1, bytes = d->bytes + m->size, n = 0;
	uint64_t seq, mine = 0, mine_bytes = 0, share, share_bytes;
	uint64_t other[LOG_OTHERS_MAX], held[LOG_OTHERS_MAX] = {0},
	                                held_bytes[LOG_OTHERS_MAX] = {0};

	if (m->sender == 0 || l->sender_share >= 100 || d->count == 0)
		return REGISTRY_OK;
	/* What the bounds push out, oldest first: whose held ones. */
	for (seq = d->first_seq; seq <= d->last_seq &&
	     (count > l->replay_max || bytes > l->replay_bytes);
	     seq++) {
		const struct registry_msg *o = device_log_at(d, seq);
		size_t i = 0;

		count--;
		bytes -= o->size;
		if (o->seq <= d->taken || o->sender == m->sender)
			continue;
		while (i < n && other[i] != o->sender)
			i++;
		if (i < n)
			continue;
		if (n == LOG_OTHERS_MAX)
			return REGISTRY_HELD_FULL;
		other[n++] = o->sender;
	}
	if (n == 0)
		return REGISTRY_OK;
	/*
	 * What m's sender, and each sender it would push out, hold that no
	 * stream has taken: under the lock, a walk of at most replay_max,
	 * and only for a publish that would push out another's.
	 */
	share = registry_sender_share(l->replay_max, l->sender_share);
	share_bytes = registry_sender_share(l->replay_bytes, l->sender_share);
	if (share == 0 || share_bytes == 0)
		return REGISTRY_CROWDED;
	for (seq = d->taken >= d->first_seq ? d->taken + 1 : d->first_seq;
	     seq <= d->last_seq; seq++) {
		const struct registry_msg *o = device_log_at(d, seq);

		if (o->sender == m->sender) {
			mine++;
			mine_bytes += o->size;
			if (mine >= share || mine_bytes >= share_bytes)
				return REGISTRY_CROWDED;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (other[i] == o->sender) {
				held[i]++;
				held_bytes[i] += o->size;
				break;
			}
		}
	}
	/*
	 * Each pushed out must be its own sender's past its share: else the
	 * device keeps all it may of senders within their shares, m's
	 * included (told apart: it is not m's sender's doing).
	 */
	for (size_t i = 0; i < n; i++)
		if (held[i] < share && held_bytes[i] < share_bytes)
			return REGISTRY_HELD_FULL;
	return REGISTRY_OK;
}

/* Off d's keys: m leaves d's log. */
static void
log_key_del(struct registry *reg, struct reg_device *d, struct reg_key *k)
{
	if (k == NULL || !k->listed)
		return;
	HASH_DEL(d->keys, k);
	k->listed = false;
	reg->nkeys--;
}

void
registry_log_drop_oldest(struct registry *reg, struct reg_device *d)
{
	struct registry_msg *m = d->ring[d->head];

	/* The first message after what was taken goes untaken. */
	if (m->seq == d->taken + 1) {
		d->taken_id = d->floor_id;
		d->taken_seq = d->taken;
	}
	d->floor_id = m->id;
	d->bytes -= m->size;
	reg->bytes -= m->size;
	if (m->list != MSG_ON_NONE) {
		reg->delivered_bytes -= m->size;
		d->delivered_bytes -= m->size;
	}
	if (m->list == MSG_ON_RETAINED) {
		DL_DELETE2(reg->retained, m, rprev, rnext);
	} else if (m->list == MSG_ON_OVERDUE) {
		DL_DELETE2(reg->overdue, m, rprev, rnext);
		reg->noverdue--;
	}
	m->list = MSG_ON_NONE;
	log_key_del(reg, d, m->key);
	d->head = (d->head + 1) % d->cap;
	d->count--;
	d->first_seq++;
	registry_msg_unref(m);
	/*
	 * A quarter full or less: half the room.  The budget counts a
	 * message's slot only while it is there (msg_overhead), and a ring
	 * that only grew kept room for the most messages the device ever
	 * held (up to twice BEEP_REPLAY_MAX) until it was forgotten, outside
	 * every byte count.  Halved at a quarter, doubled when full: each
	 * move is paid for by the appends or drops since the last.
	 */
	if (d->cap > LOG_MIN_CAP && d->count <= d->cap / 4)
		log_resize(d, d->cap / 2);
}

/* Drop what the log need not keep any more: see DESIGN in registry.c. */
void
registry_log_trim(struct registry *reg, struct reg_device *d, uint64_t now)
{
	const struct registry_limits *l = &reg->limits;
	uint64_t min;
	bool ended = false;

	/* What a stream that read on, or ended, held back is delivered now. */
	registry_log_deliver(reg, d, d->taken, now);
	min = device_min_cursor(d);
	while (d->count > 0) {
		struct registry_msg *m = d->ring[d->head];
		bool over =
		    d->count > l->replay_max || d->bytes > l->replay_bytes;

		/*
		 * Only a delivered message (seq <= min <= delivered) has a
		 * t_ms; now was read before the lock, so a newer t_ms is
		 * possible.  An overdue one was found past its window
		 * already (registry_expire()).
		 */
		if (!over &&
		    (m->seq > min ||
		        (m->list != MSG_ON_OVERDUE &&
		            m->t_ms + l->replay_ms > now)))
			break;
		/* Past the retention bound, even what is not yet taken goes. */
		if (m->seq > d->taken)
			reg->dropped++;
		else if (!over)
			reg->expired++;
		ended |= device_overflow_behind(reg, d, m->seq);
		registry_log_drop_oldest(reg, d);
	}
	if (ended)
		registry_log_deliver(reg, d, d->taken, now);
	device_recount(reg, d);
}

const struct registry_msg *
registry_log_find_key(const struct reg_device *d, const struct registry_msg *m)
{
	struct reg_key *k;

	HASH_FIND_BYHASHVALUE(
	    hh, d->keys, m->key->name, m->key->len, m->key->hashv, k);
	return k != NULL ? k->m : NULL;
}

/* id: the caller's (registry_publish_at()), or 0 for the next one. */
void
registry_log_append(struct registry *reg, struct reg_device *d,
    struct registry_msg *m, uint64_t id)
{
	if (d->count == d->cap)
		log_resize(d, d->cap ? d->cap * 2 : LOG_MIN_CAP);
	m->seq = ++d->last_seq;
	if (id == 0)
		id = ++reg->last_id;
	else if (id > reg->last_id)
		reg->last_id = id;
	m->id = d->top_id = id;
	m->device = d;
	if (d->count == 0)
		d->first_seq = m->seq;
	else
		device_log_at(d, m->seq - 1)->next = m;
	d->ring[(d->head + d->count) % d->cap] = registry_msg_ref(m);
	d->count++;
	if (m->key != NULL && !m->key->listed) {
		struct reg_key *old;

		/* Only the newest of a key's messages is found (none repeats). */
		/* Its hash made at its publish (registry_publish_id()). */
		HASH_FIND_BYHASHVALUE(
		    hh, d->keys, m->key->name, m->key->len, m->key->hashv, old);
		log_key_del(reg, d, old);
		HASH_ADD_KEYPTR_BYHASHVALUE(hh, d->keys, m->key->name,
		    m->key->len, m->key->hashv, m->key);
		m->key->listed = true;
		reg->nkeys++;
	}
	d->bytes += m->size;
	d->bytes_in += m->size;
	m->bytes_in = d->bytes_in;
	reg->bytes += m->size;
	device_recount(reg, d);
}

/*
 * Where a new stream of d starts and what it must be told first.  Called
 * before the stream is linked in.
 */
uint64_t
registry_log_start(struct registry *reg, struct reg_device *d,
    const struct registry_resume *resume, struct registry_start *start)
{
	uint64_t lo = d->count ? d->first_seq - 1 : d->last_seq;
	uint64_t cursor;
	bool live = device_live(d);

	memset(start, 0, sizeof(*start));
	/* With no usable id: live only, or what was held while away. */
	cursor = live ? d->last_seq : (d->taken > lo ? d->taken : lo);
	/*
	 * A position of this device's streams is its floor or the id of a
	 * message in its log (registry_log_position_id()); from a cluster's
	 * Redis (REGISTRY_RESUME_FROM) any id within the log's range.  Any
	 * other (another device's, never issued) is unknown: walking past
	 * it would skip, untold, what the device holds untaken below it.
	 */
	if ((resume->kind == REGISTRY_RESUME_AT ||
	        resume->kind == REGISTRY_RESUME_FROM) &&
	    resume->id >= d->floor_id && resume->id <= d->top_id) {
		uint64_t at = lo, hi = d->last_seq;

		/*
		 * The last message at or below the id (ids rise along the
		 * log), or lo: searched, not walked, under the lock (the log
		 * is as long as a client's POSTs made it, up to replay_max;
		 * test_registry_start_walk).
		 */
		while (at < hi) {
			uint64_t mid = at + (hi - at + 1) / 2;

			reg->start_walked++;
			if (device_log_at(d, mid)->id <= resume->id)
				at = mid;
			else
				hi = mid - 1;
		}
		if (resume->kind == REGISTRY_RESUME_FROM ||
		    resume->id == d->floor_id ||
		    (d->count > 0 && at >= d->first_seq &&
		        device_log_at(d, at)->id == resume->id)) {
			/* Every message after that id is still in the log. */
			reg->replayed += d->last_seq - at;
			return at;
		}
		start->reason = "unknown event id";
	} else if (resume->kind == REGISTRY_RESUME_AT ||
	    resume->kind == REGISTRY_RESUME_FROM)
		start->reason = resume->id > d->top_id ? "unknown event id"
		                                       : "event id too old";
	else if (resume->kind == REGISTRY_RESUME_UNKNOWN)
		start->reason = "unknown event id";
	else if (!live && d->taken < lo)
		start->reason = "messages were dropped while away";
	if (start->reason != NULL) {
		start->reset = true;
		reg->resets++;
	}
	return cursor;
}

/*
 * The event id that names position cursor of d: resuming after it starts
 * at cursor again, as long as the log keeps what follows
 * (registry_log_start()).
 * The message at cursor when the log holds it; else cursor is just before
 * the log (or the log is empty), and the floor is the id of the message
 * at cursor, or an id older than everything in the log.
 */
uint64_t
registry_log_position_id(const struct reg_device *d, uint64_t cursor)
{
	if (d->count > 0 && cursor >= d->first_seq)
		return device_log_at(d, cursor)->id;
	return d->floor_id;
}

/*
 * REGISTRY_RESUME_FROM id on a device with no stream whose log does not
 * cover id: its caller will supply what follows id, so the log restarts
 * empty there (what it held is the caller's to resend, not lost).
 */
void
registry_log_restart(struct registry *reg, struct reg_device *d, uint64_t id)
{
	while (d->count > 0)
		registry_log_drop_oldest(reg, d);
	d->taken = d->delivered = d->last_seq;
	d->floor_id = d->top_id = id;
	device_recount(reg, d);
}

/*
 * A stream of d took, or started past, every message up to upto (or
 * nothing new: upto is d->taken).  What was taken counts as delivered
 * (its replay window starts now; it goes on reg->retained, where the
 * memory budget may evict it), but not past the cursor of a live stream
 * still reading its backlog (below its start_seq): a sibling that starts
 * live, or takes a newer message, passes over that backlog, and were it
 * delivered, an eviction would end the stream that reads it and lose
 * what it has yet to read.  A stream that lags once past its start
 * holds nothing back: what its sibling took is delivered, and it is
 * ended when that is evicted.  When the reader reads on or ends,
 * registry_log_trim() catches the mark up, and so do registry_hangup()
 * and registry_displace() when they end it before its thread does.  The
 * delivered messages stay a prefix of the log, in order.
 */
void
registry_log_deliver(
    struct registry *reg, struct reg_device *d, uint64_t upto, uint64_t now)
{
	const struct registry_stream *s;
	uint64_t q;

	if (upto > d->taken)
		d->taken = upto;
	upto = d->taken;
	DL_FOREACH(d->streams, s)
	{
		if (stream_live(s) && s->cursor < s->start_seq &&
		    s->cursor < upto)
			upto = s->cursor;
	}
	q = d->delivered + 1;
	if (q < d->first_seq)
		q = d->first_seq;
	for (; d->count > 0 && q <= upto; q++) {
		struct registry_msg *m = device_log_at(d, q);

		m->t_ms = now;
		m->list = MSG_ON_RETAINED;
		DL_APPEND2(reg->retained, m, rprev, rnext);
		reg->delivered_bytes += m->size;
		d->delivered_bytes += m->size;
	}
	if (upto > d->delivered)
		d->delivered = upto;
	device_recount(reg, d);
}
