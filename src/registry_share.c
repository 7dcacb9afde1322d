/* registry_share: see registry_share.h, and DESIGN in registry.c. */
#include "registry_share.h"

#include <pthread.h>
#include <string.h>
#include <utlist.h>

#include "registry_expire.h"
#include "registry_log.h"

/*
 * How much nearer a stream lag behind must come to count as catching up,
 * for registry_overflow_laggards(): a quarter of it, at most half a batch
 * (one take, which stops short of a batch, is then enough), at least a
 * byte.
 */
static uint64_t
lag_step(uint64_t lag)
{
	uint64_t step = lag / 4;

	if (step > REGISTRY_BATCH_BYTES / 2)
		step = REGISTRY_BATCH_BYTES / 2;
	return step > 0 ? step : 1;
}

/*
 * The time from t->seen to now that counts as memory's short time for
 * a stream that has taken out bytes (its bytes_out) and needs step to
 * count as catching up: the time memory was short meanwhile
 * (registry_short_ms(): noted wherever the pending bytes change, POSTs
 * or none); or all of it when the stream took less than step since t was
 * seen (t->out): one that reads nothing, or next to nothing, cannot have
 * come within its bound, room or not (a stream that never read once
 * escaped when bursts that filled the budget came 10 s apart with room
 * between).  For the latter, 0 when now, read before the lock, is
 * older.
 */
static uint64_t
short_for(const struct registry *reg, const struct lag_time *t, uint64_t out,
    uint64_t step, uint64_t now)
{
	uint64_t ms;

	if (out < t->out || out - t->out < step)
		return now > t->seen ? now - t->seen : 0;
	/*
	 * Not 0 when now is older than t->seen: the short time noted since
	 * (short_at only rises, to it, in lag_time_seen()) would be lost.
	 */
	ms = registry_short_ms(reg, now);
	return ms > t->short_at ? ms - t->short_at : 0;
}

/*
 * t's time brought up to now as if the budget had been full all along:
 * to choose the most stuck of several sightings.
 */
static uint64_t
lag_time(const struct lag_time *t, uint64_t now)
{
	return t->ms + (now > t->seen ? now - t->seen : 0);
}

/* t, brought up to now (t->ms), counts on from now, at out. */
static void
lag_time_seen(
    const struct registry *reg, struct lag_time *t, uint64_t out, uint64_t now)
{
	/* now, read before the lock, may be older: keep the later. */
	uint64_t ms = registry_short_ms(reg, now);

	if (now > t->seen)
		t->seen = now;
	/* Nor the short time at it: counted again at the next walk. */
	if (ms > t->short_at)
		t->short_at = ms;
	t->out = out;
}

/* Both of s's times brought up to now (short_for()), not yet seen again. */
static void
lag_times_count(const struct registry *reg, struct registry_stream *s,
    uint64_t step, uint64_t now)
{
	s->stuck.ms += short_for(reg, &s->stuck, s->bytes_out, step, now);
	s->over.ms += short_for(reg, &s->over, s->bytes_out, step, now);
}

/* Both of s's times count on from now, at what it has taken. */
static void
lag_times_seen(
    const struct registry *reg, struct registry_stream *s, uint64_t now)
{
	lag_time_seen(reg, &s->stuck, s->bytes_out, now);
	lag_time_seen(reg, &s->over, s->bytes_out, now);
}

/* Whether d keeps a sighting of a stream that went less than stuck_ms ago. */
static bool
lag_recent(const struct registry *reg, const struct reg_device *d, uint64_t now)
{
	return d->lag_stuck.seen != 0 && now >= d->lag_kept_ms &&
	    now - d->lag_kept_ms < reg->limits.stuck_ms;
}

/*
 * Whether s has a sighting that says something of it: seen past its
 * bound, and not since taken all its device had then (then it has come
 * within its bound, or near enough).
 */
static bool
lag_sighted(const struct registry_stream *s)
{
	return s->stuck.seen != 0 && s->bytes_out < s->lag_bytes_in;
}

/*
 * Whether s has taken nothing for longer than stuck_ms and a walk's
 * interval (alive_ms): a ghost behind the front, or the old stream of a
 * client that reconnects every 1.1 s.  Locked.
 */
static bool
stream_silent(
    const struct registry *reg, const struct registry_stream *s, uint64_t now)
{
	return now >= s->alive_ms &&
	    now - s->alive_ms >= reg->limits.stuck_ms + REGISTRY_LAGGARD_MS;
}

/* The bound the streams were last judged by: the queue, or the share. */
static uint64_t
lag_bound(const struct registry *reg)
{
	uint64_t bound = reg->limits.queue_bytes;

	return reg->share < bound ? reg->share : bound;
}

/*
 * t, one of s's times, as it stands at now: when s's times stopped within
 * its bound (registry_lag_took()), they count on from now.
 */
static struct lag_time
lag_as_of(const struct registry *reg, const struct registry_stream *s,
    const struct lag_time *t, uint64_t now)
{
	struct lag_time c = *t;

	if (s->lag_within)
		lag_time_seen(reg, &c, s->bytes_out, now);
	return c;
}

/*
 * s, seen past its bound (a sighting), has taken (registry_take()): when
 * that brings it within the bound the streams were last judged by, its
 * times stop, brought up to now, until it is past that bound again
 * (registry_lag_fed(), or registry_share() counting it smaller), or a walk
 * sees it within (its next sighting then fresh).  Seen only at walks, a
 * stream that came within its bound between two and fell behind again
 * before the next was charged all the time between (a phone that read
 * into its share and was fed past it 35 s later was ended for 35 s past
 * it).  Not fresh at once: a client that reads into its bound and feeds
 * itself past it again at once would never be stuck (its stretch within
 * lasts no time).  Locked.
 */
void
registry_lag_took(
    const struct registry *reg, struct registry_stream *s, uint64_t now)
{
	if (s->lag_within || !lag_sighted(s) ||
	    s->device->bytes_in - s->bytes_out > lag_bound(reg))
		return;
	lag_times_count(reg, s, lag_step(s->lag_behind), now);
	lag_times_seen(reg, s, now);
	s->lag_within = true;
}

/*
 * s's device was appended to: when s, its times stopped within its bound
 * (registry_lag_took()), is past it now, they count on from now.  Locked.
 */
void
registry_lag_fed(
    const struct registry *reg, struct registry_stream *s, uint64_t now)
{
	if (!s->lag_within ||
	    s->device->bytes_in - s->bytes_out <= lag_bound(reg))
		return;
	lag_times_seen(reg, s, now);
	s->lag_within = false;
}

/*
 * Keep s's sighting (registry_overflow_laggards()) in d as s goes (ends,
 * is replaced, or is ended as stuck): of those gone less than stuck_ms
 * ago, the most stuck (with its distance) and the longest past the bound,
 * each as it was when seen (its time counts on from then: short_for()):
 * see registry_lag_inherit().  Locked.
 */
void
registry_lag_keep(const struct registry *reg, struct reg_device *d,
    const struct registry_stream *s, uint64_t now)
{
	bool recent = lag_recent(reg, d, now);
	struct lag_time stuck, over;

	if (!lag_sighted(s))
		return;
	stuck = lag_as_of(reg, s, &s->stuck, now);
	over = lag_as_of(reg, s, &s->over, now);
	if (!recent || lag_time(&stuck, now) > lag_time(&d->lag_stuck, now)) {
		d->lag_stuck = stuck;
		d->lag_behind = s->lag_behind;
		d->lag_bytes_in = s->lag_bytes_in;
	}
	if (!recent || lag_time(&over, now) > lag_time(&d->lag_over, now))
		d->lag_over = over;
	d->lag_kept_ms = now;
}

/*
 * A new stream of d starts with the sighting of d's streams gone (ended,
 * replaced) less than stuck_ms ago (registry_lag_keep()), and of the
 * others still in its list, live or going (hung up, replaced, ended:
 * their threads have not unsubscribed yet): the most stuck of them, and
 * the longest past the bound, each as it was when seen, its time counting
 * on from then (short_for(): the time memory was short only), so that neither
 * an old sighting nor a chain of reconnects makes it longer than memory
 * was short (or than the stream was seen behind, when it read nothing).
 * A client that comes back to the same backlog has not
 * caught up by coming back (each new stream once started afresh, so a
 * client that reconnected every 0.9 s, reading nothing, was never stuck
 * and pinned its backlog for ever; or that read a batch a second and fed
 * as much again as held messages while away a moment).  One that read on
 * in between is nearer than the sighting's distance: caught up at the
 * next look.  A sibling silent for longer than stuck_ms and a walk's
 * interval, live or going (a ghost behind the front, or the old stream of
 * a client that reconnects every 1.1 s), passes on its times but not its
 * distance: the new stream catches up by reading on from where it starts.
 * A client away longer starts afresh: its messages were held meanwhile,
 * first to be dropped.  Locked.
 */
void
registry_lag_inherit(const struct registry *reg, struct reg_device *d,
    struct registry_stream *s, uint64_t now)
{
	const struct registry_stream *t;

	memset(&s->stuck, 0, sizeof(s->stuck));
	memset(&s->over, 0, sizeof(s->over));
	if (lag_recent(reg, d, now)) {
		s->stuck = d->lag_stuck;
		s->over = d->lag_over;
		s->lag_behind = d->lag_behind;
		s->lag_bytes_in = d->lag_bytes_in;
	}
	DL_FOREACH(d->streams, t)
	{
		struct lag_time stuck, over;
		bool silent;

		if (t == s || !lag_sighted(t))
			continue;
		stuck = lag_as_of(reg, t, &t->stuck, now);
		over = lag_as_of(reg, t, &t->over, now);
		if (s->over.seen == 0 ||
		    lag_time(&over, now) > lag_time(&s->over, now))
			s->over = over;
		if (s->stuck.seen != 0 &&
		    lag_time(&stuck, now) <= lag_time(&s->stuck, now))
			continue;
		s->stuck = stuck;
		silent = stream_silent(reg, t, now);
		/*
		 * A silent sibling (a ghost, or the old stream of a client
		 * that reconnects to dodge the clock): its clock, judged from
		 * where s starts, so that s catches up by reading on from
		 * there.
		 */
		s->lag_behind =
		    silent ? d->bytes_in - s->bytes_out : t->lag_behind;
		s->lag_bytes_in = silent ? d->bytes_in : t->lag_bytes_in;
	}
	/*
	 * What s takes counts from where it starts, when behind where its
	 * sighting was (a client that lost what was in flight resumes
	 * there).
	 */
	if (s->stuck.out > s->bytes_out)
		s->stuck.out = s->bytes_out;
	if (s->over.out > s->bytes_out)
		s->over.out = s->bytes_out;
}

/* How often, at most, the laggard rules walk every stream. */
static uint64_t
laggard_interval(const struct registry *reg)
{
	return reg->limits.stuck_ms < REGISTRY_LAGGARD_MS ? reg->limits.stuck_ms
	                                                  : REGISTRY_LAGGARD_MS;
}

/*
 * What s has yet to take that is not yet delivered: what pins memory.
 * The delivered messages are a prefix of the log, so it is the lesser of
 * what s is behind by and what of the log is not delivered (a stream
 * behind a sibling that took it all holds nothing: eviction ends it).
 * Locked.
 */
static uint64_t
stream_pending(const struct reg_device *d, const struct registry_stream *s)
{
	uint64_t behind = d->bytes_in - s->bytes_out;
	uint64_t pending = device_pending(d);

	return behind < pending ? behind : pending;
}

/*
 * A stream's share of the message budget, for registry_overflow_laggards()
 * and registry_backlogged(): half of it over the live streams that have
 * something pending (stream_pending(): streams that only wait make no
 * one's share smaller), so that the stuck streams within their shares
 * hold at most half of it.  No floor, and the next message counted:
 * either would let enough stuck streams hold it all again.  A walk over
 * every stream, so counted at most every laggard_interval() (now, read
 * before the lock, may be older than the last count: that count stands),
 * and again after a walk ended streams.  Locked.
 */
static uint64_t
registry_share(struct registry *reg, uint64_t now)
{
	struct registry_stream *s, *tmp;
	size_t n = 0;

	if (reg->share_at_ms != 0 &&
	    now < reg->share_at_ms + laggard_interval(reg))
		return reg->share;
	HASH_ITER(hh, reg->streams, s, tmp)
	{
		n += stream_live(s) && stream_pending(s->device, s) > 0;
	}
	reg->share = reg->limits.max_message_bytes / 2 / (n > 0 ? n : 1);
	reg->share_at_ms = now ? now : 1;
	/*
	 * A stream whose times stopped within its bound
	 * (registry_lag_took()) and is past this one: they count on from
	 * now, not from the next walk, which may come long after.  With the
	 * POSTs to its device (registry_lag_fed() in registry_publish_id()),
	 * the only way past its bound: a walk judges by this share.
	 */
	HASH_ITER(hh, reg->streams, s, tmp)
	{
		if (s->lag_within && stream_live(s))
			registry_lag_fed(reg, s, now);
	}
	return reg->share;
}

/*
 * Whether a message of len for d, a device that is here, is to be refused
 * for now (REGISTRY_BACKLOGGED): the live streams' pending bytes (not yet
 * delivered; what devices away hold does not count, as this POST may drop
 * it) fill more than half the budget, and it would put a live stream of d
 * with something pending further than its share (registry_share()),
 * counting the backlog it resumed with.  A stream with nothing pending
 * takes any one.  The next message is counted, as
 * registry_overflow_laggards() counts it: excused, each stuck stream could
 * hold a message more than its share.  So the stuck streams within their
 * shares hold at most half the budget; without this, a client that reads a
 * little on each of its streams, enough to count as catching up, and feeds
 * its own devices back up kept them between their shares and their queues:
 * most of the budget, from one address.  (Fed while it is away a moment, as
 * held messages, it has not caught up either: its next stream starts with
 * the sighting, registry_lag_inherit().)  Not for a message accepted
 * elsewhere: refused, that cuts the device.  Locked.
 */
bool
registry_backlogged(
    struct registry *reg, const struct reg_device *d, size_t len, uint64_t now)
{
	const struct registry_stream *s;
	uint64_t share;

	if (!registry_memory_short(reg))
		return false;
	share = registry_share(reg, now);
	DL_FOREACH(d->streams, s)
	{
		uint64_t p = stream_pending(d, s);

		/*
		 * A silent stream reading its backlog behind a sibling that
		 * took past it (a ghost behind the front, its client back on
		 * a new stream): what it holds back is read; the walk judges
		 * it, as it judges any stuck stream.
		 */
		if (s->cursor < s->start_seq && d->taken > s->cursor &&
		    stream_silent(reg, s, now))
			continue;
		if (stream_live(s) && p > 0 && p + len > share)
			return true;
	}
	return false;
}

/*
 * The message budget is full for a POST to a device that is here: end
 * (overflow) the live streams of other devices that are further behind
 * than their queue allows, or than their share of the budget
 * (registry_share()), counting the backlog they resumed with, which
 * stream_overflows() otherwise forgives, and that have not caught up
 * (lag_step()) for limits.stuck_ms, or have been past that bound for
 * limits.catch_up_ms however they read: a client that reads, even a
 * backlog of megabytes, is left to read it, for that long (reading 8 KiB
 * a second on each stream of a user's 32 devices, each resumed at a
 * 4 MiB backlog held while away, counted as catching up, and kept 128 MiB
 * for minutes).  The share: streams that never read,
 * each just within its queue (256 from one address at 1 MiB each: the
 * whole default budget), pinned it until BEEP_WRITE_TIMEOUT.  Catching
 * up, not taking: a stream that takes a batch a second while its device
 * is fed as much again (by the same client, at a trickle) held its
 * backlog for ever.  Their devices then hold what they have not taken,
 * first in line to be dropped, and held messages make room.  Without this
 * a client that never reads pinned a whole backlog per device (held
 * messages that became its backlog: up to BEEP_REPLAY_BYTES) for
 * BEEP_WRITE_TIMEOUT, and a few dozen such devices the whole budget:
 * every other POST got 503.  A stream it ends no longer holds back the
 * delivery of its backlog (registry_log_deliver()): when a sibling that
 * started past that backlog keeps the device here, it is delivered at
 * once, for the caller to evict.  A walk over every stream, so at most
 * every REGISTRY_LAGGARD_MS (or stuck_ms, when shorter).  Returns whether
 * it ended any.  Locked.
 */
bool
registry_overflow_laggards(
    struct registry *reg, const struct reg_device *target, uint64_t now)
{
	struct registry_stream *s, *tmp;
	bool ended = false;
	uint64_t share, bound = reg->limits.queue_bytes;

	if (now < reg->laggards_next_ms)
		return false;
	share = registry_share(reg, now);
	if (share < bound)
		bound = share;
	HASH_ITER(hh, reg->streams, s, tmp)
	{
		struct reg_device *d = s->device;

		/* Not seen from its own device's POST: its lag runs on. */
		if (d == target)
			continue;
		uint64_t behind = d->bytes_in - s->bytes_out;

		/* An ending stream keeps its sighting for registry_lag_keep(). */
		if (!stream_live(s))
			continue;
		if (behind <= bound) {
			/* Its next sighting is fresh. */
			s->stuck.seen = 0;
			s->lag_within = false;
			continue;
		}
		/*
		 * Its times count the time memory was short since it was last
		 * seen so (short_for()).  Both start again at a fresh
		 * sighting: first seen so, or it has taken all that there was
		 * when last seen so (an old sighting, from an earlier full
		 * budget, says nothing of it now).  Its stuck time starts
		 * again, too, when it has come nearer by lag_step() of the
		 * distance it had then (a byte a second is not catching up);
		 * its time past the bound does not: reading on, however
		 * little, does not restart it.
		 */
		if (!lag_sighted(s)) {
			s->stuck.ms = 0;
			s->over.ms = 0;
			s->lag_behind = behind;
		} else {
			uint64_t step = lag_step(s->lag_behind);

			lag_times_count(reg, s, step, now);
			if (behind + step <= s->lag_behind) {
				s->stuck.ms = 0;
				s->lag_behind = behind;
			}
		}
		s->lag_bytes_in = d->bytes_in;
		lag_times_seen(reg, s, now);
		if (s->stuck.ms < reg->limits.stuck_ms &&
		    (reg->limits.catch_up_ms == 0 ||
		        s->over.ms < reg->limits.catch_up_ms))
			continue;
		s->ended |= STREAM_ENDED_OVERFLOW;
		reg->overflows++;
		registry_lag_keep(reg, d, s, now);
		pthread_cond_signal(&s->cond);
		registry_log_deliver(reg, d, d->taken, now);
		registry_expire_grace(reg, d, now);
		/* What it held goes before what others hold. */
		if (d->held_counted > 0 && reg->holding != d) {
			DL_DELETE2(reg->holding, d, hprev, hnext);
			DL_PREPEND2(reg->holding, d, hprev, hnext);
		}
		ended = true;
	}
	reg->laggards_next_ms = ended ? 0 : now + laggard_interval(reg);
	/* What it ended no longer counts in anyone's share. */
	if (ended)
		reg->share_at_ms = 0;
	return ended;
}
