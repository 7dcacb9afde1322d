/*
 * registry_publish: see registry.h, and the DESIGN comment in registry.c.
 *
 * The writing side of the registry: a message published to a device
 * (registry_publish() and its forms with an id chosen elsewhere, accepted
 * elsewhere, or replayed to one stream), found its device, refused (not
 * found, a duplicate, closing, backlogged, crowded, memory full), given
 * room (the oldest delivered evicted, laggards ended, what devices in
 * grace hold dropped), appended to the device's log, and its streams
 * woken (after unlocking) or ended as overflowed; and a device cut at a
 * message accepted elsewhere that it has no room for (device_cut()).
 * Depends on registry_share (backlogged, laggards), registry_expire
 * (eviction, grace) and registry_log (append, crowding, trim).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <utlist.h>

#include "registry_expire.h"
#include "registry_impl.h"
#include "registry_log.h"
#include "registry_share.h"
#include "util.h"

/* Streams a publisher may pin and signal after unlocking; more wait. */
#define REGISTRY_WAKE_MAX 8

/*
 * Whether s is further behind d's log than its queue allows, counted from
 * where it started (its backlog, bounded by the replay limits, is not
 * queued messages).  The next message it is to take is not counted in
 * bytes: one over queue_bytes (which may be set below BEEP_MAX_BODY)
 * would otherwise end every stream it is posted to, however fast it
 * reads, and so would an ICE candidate posted right after a big offer.
 * Locked.
 */
static bool
stream_overflows(const struct registry *reg, const struct reg_device *d,
    const struct registry_stream *s)
{
	uint64_t seq = s->cursor > s->start_seq ? s->cursor : s->start_seq;
	uint64_t bytes =
	    s->bytes_out > s->start_bytes ? s->bytes_out : s->start_bytes;
	uint64_t behind = d->bytes_in - bytes;

	if (d->last_seq == seq)
		return false;
	if (seq + 1 >= d->first_seq && d->count > 0) {
		size_t next = device_log_at(d, seq + 1)->size;

		if (behind >= next)
			behind -= next;
	}
	return d->last_seq - seq > reg->limits.queue_messages ||
	    behind > reg->limits.queue_bytes;
}

static void device_cut(struct registry *reg, struct reg_device *d, uint64_t id,
    struct registry_stream *keep, uint64_t now);

/*
 * registry_publish() with id, or 0 for the next registry-wide one; with
 * replay, a stream of the device that m is part of the backlog of.
 * accepted: m was accepted elsewhere, so that a refusal for memory cuts
 * the device at id (device_cut()) in the same step: no stream takes
 * anything across the hole meanwhile.
 */
static enum registry_error
registry_publish_id(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m, uint64_t id, struct registry_stream *replay,
    bool accepted)
{
	struct registry_stream *s, *wake[REGISTRY_WAKE_MAX];
	enum registry_error res, crowd;
	struct reg_device *d;
	const struct registry_msg *prior;
	uint64_t now_us = util_now_us();
	/* One read of the clock: util_now_ms() is the same one in ms. */
	uint64_t now = reg->limits.clock_ms != NULL ? reg->limits.clock_ms()
	                                            : now_us / 1000;
	size_t nw = 0;
	struct device_key k;

	m->size = m->len + reg->limits.msg_overhead;
	/* Its key is its sender's: another's of the same text is another. */
	if (m->key != NULL && !m->key->listed) {
		memcpy(m->key->name, &m->sender, sizeof(m->sender));
		/*
		 * Hashed once, outside the lock: its lookup here and its
		 * entry's in registry_log_append() use it (a SipHash of its
		 * 40 bytes is ~280 instructions, and there were three).
		 */
		HASH_VALUE(m->key->name, m->key->len, m->key->hashv);
	}
	/*
	 * The key's entry is memory the message holds: counted with it, in
	 * every byte bound (not where a caller counts frames alone, with no
	 * overhead).
	 */
	if (m->key != NULL && reg->limits.msg_overhead > 0)
		m->size += (uint32_t)(REGISTRY_KEY_OVERHEAD + m->key->len);
	device_key_make(&k, user, device);
	pthread_mutex_lock(&reg->lock);
	d = registry_find_device(reg, &k);
	/*
	 * A grace period that ended is over, swept or not; but for a
	 * message accepted elsewhere while a stream of the device is still
	 * closing (its last write blocked, up to the write timeout): the
	 * cluster that accepted it holds the device as long as that stream,
	 * and a client back meanwhile, served by this registry alone, or the
	 * stream's close, telling the cluster what it took, is to find it
	 * here.  Refused, it was lost, untold (until 2026-12-07).
	 */
	if (d != NULL && device_expired(d, now) &&
	    !(accepted && d->nstreams > 0)) {
		if (d->nstreams == 0) {
			reg->forgotten++;
			registry_expire_forget(reg, d);
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
	/*
	 * Posted again by its sender with the key of one the log holds:
	 * that one, whose answer its sender did not get (a network lost it), sent again.
	 * Not appended (it would arrive twice); answered as that one was,
	 * with its id: 200 once taken or while the device is here, 202
	 * while it waits for the device away.
	 */
	if (id == 0 && m->key != NULL &&
	    (prior = registry_log_find_key(d, m)) != NULL) {
		m->id = prior->id;
		res = prior->seq <= d->taken || device_live(d) ? REGISTRY_OK
		                                               : REGISTRY_HELD;
		reg->repeated++;
		goto out;
	}
	res = device_live(d) ? REGISTRY_OK : REGISTRY_HELD;
	/* Stopping: accept only what a live stream will still take. */
	if (reg->closing && res != REGISTRY_OK) {
		res = REGISTRY_CLOSED;
		reg->refused++;
		goto out;
	}
	if (res == REGISTRY_OK && !accepted &&
	    registry_backlogged(reg, d, m->size, now)) {
		res = REGISTRY_BACKLOGGED;
		reg->refused++;
		reg->backlogged++;
		goto out;
	}
	/*
	 * Its sender past its share of the log's bounds would push out
	 * another's held message: refused, nothing dropped.  Asked only
	 * when m fills the log.
	 */
	if ((d->count >= reg->limits.replay_max ||
	        d->bytes + m->size > reg->limits.replay_bytes) &&
	    (crowd = registry_log_crowds(reg, d, m)) != REGISTRY_OK) {
		res = crowd;
		reg->crowded++;
		goto out;
	}
	/*
	 * One that the whole budget could not hold is refused before
	 * anything makes room for it: it would be evicted for nothing.
	 */
	if (m->size > reg->limits.max_message_bytes) {
		res = REGISTRY_MEMORY_FULL;
		reg->refused++;
		if (accepted)
			device_cut(reg, d, id, replay, now);
		goto out;
	}
	/*
	 * The oldest delivered messages make room, even from a stream that
	 * lags behind them; undelivered ones never do.
	 */
	while (reg->bytes + m->size > reg->limits.max_message_bytes &&
	    registry_expire_evict(reg))
		reg->evicted++;
	/*
	 * Then, for a client that is here, what waits for those away: only
	 * when that makes room, or they would be lost for nothing.
	 */
	if (res == REGISTRY_OK &&
	    reg->bytes + m->size >
	        reg->limits.max_message_bytes + reg->held_bytes &&
	    registry_overflow_laggards(reg, d, now)) {
		/* What the streams it ended held back is delivered now. */
		while (reg->bytes + m->size > reg->limits.max_message_bytes &&
		    registry_expire_evict(reg))
			reg->evicted++;
	}
	if (res == REGISTRY_OK &&
	    reg->bytes + m->size <=
	        reg->limits.max_message_bytes + reg->held_bytes)
		while (reg->bytes + m->size > reg->limits.max_message_bytes &&
		    registry_expire_drop_held(reg))
			;
	if (reg->bytes + m->size > reg->limits.max_message_bytes) {
		res = REGISTRY_MEMORY_FULL;
		reg->refused++;
		if (accepted)
			device_cut(reg, d, id, replay, now);
		goto out;
	}
	m->published_us = now_us;
	registry_log_append(reg, d, m, id);
	reg->published++;
	DL_FOREACH(d->streams, s)
	{
		if (!stream_live(s))
			continue;
		if (s == replay) {
			s->start_seq = d->last_seq;
			s->start_bytes = d->bytes_in;
		}
		if (stream_overflows(reg, d, s)) {
			s->ended |= STREAM_ENDED_OVERFLOW;
			reg->overflows++;
		}
		/* Its times stopped within its bound: past it again? */
		if (s->lag_within)
			registry_lag_fed(reg, s, now);
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
	registry_log_trim(reg, d, now);
	/* Its last live stream may just have overflowed. */
	if (res == REGISTRY_OK)
		registry_expire_grace(reg, d, now);
out:
	registry_short_note(reg, now);
	pthread_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < nw; i++) {
		pthread_cond_signal(&wake[i]->cond);
		atomic_fetch_sub_explicit(
		    &wake[i]->pinned, 1, memory_order_release);
	}
	device_key_free(&k);
	return res;
}

enum registry_error
registry_publish(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m)
{
	return registry_publish_id(reg, user, device, m, 0, NULL, false);
}

enum registry_error
registry_publish_at(struct registry *reg, const char *user, const char *device,
    struct registry_msg *m, uint64_t id)
{
	/* 0 is never above a device's newest id. */
	if (id == 0)
		return REGISTRY_DUPLICATE;
	return registry_publish_id(reg, user, device, m, id, NULL, false);
}

enum registry_error
registry_publish_accepted_at(struct registry *reg, const char *user,
    const char *device, struct registry_msg *m, uint64_t id)
{
	if (id == 0)
		return REGISTRY_DUPLICATE;
	return registry_publish_id(reg, user, device, m, id, NULL, true);
}

enum registry_error
registry_replay_at(struct registry *reg, struct registry_stream *s,
    struct registry_msg *m, uint64_t id)
{
	/* The names never change while the device has a stream. */
	const struct reg_device *d = s->device;

	if (id == 0)
		return REGISTRY_DUPLICATE;
	return registry_publish_id(reg, d->user->name, d->name, m, id, s, true);
}

/*
 * Cut d at id, the id of a message accepted elsewhere that it has no room
 * for (see registry_publish_accepted_at() in registry.h), sparing keep
 * (registry_replay_at()'s stream) or none; with reg->lock held.  The
 * streams it ends are signalled under the lock (rare: memory is short).
 */
static void
device_cut(struct registry *reg, struct reg_device *d, uint64_t id,
    struct registry_stream *keep, uint64_t now)
{
	struct registry_stream *s;

	/* Every live stream but keep is behind the hole. */
	DL_FOREACH(d->streams, s)
	{
		if (s != keep && stream_live(s)) {
			s->ended |= STREAM_ENDED_OVERFLOW;
			reg->overflows++;
			pthread_cond_signal(&s->cond);
		}
	}
	while (d->count > 0) {
		if (d->ring[d->head]->seq > d->taken)
			reg->dropped++;
		registry_log_drop_oldest(reg, d);
	}
	/*
	 * The refused message takes its place in the log and goes at once,
	 * untaken: a client back without an id is told, as for any dropped
	 * while it was away.
	 */
	if (d->last_seq == d->taken) {
		d->taken_id = d->floor_id;
		d->taken_seq = d->taken;
	}
	d->last_seq++;
	reg->dropped++;
	if (id > d->floor_id)
		d->floor_id = id;
	if (id > d->top_id)
		d->top_id = id;
	if (id > reg->last_id)
		reg->last_id = id;
	if (keep != NULL && keep->device == d) {
		keep->cursor = keep->start_seq = d->last_seq;
		keep->start_bytes = keep->bytes_out = d->bytes_in;
	}
	device_recount(reg, d);
	registry_expire_grace(reg, d, now);
}
