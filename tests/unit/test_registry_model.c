/*
 * A randomized model test of the registry, single-threaded and
 * deterministic (fixed seeds, an xorshift PRNG, an injected clock):
 * random subscribes, resumes (some displacing the client's old stream),
 * publishes (some a cluster's, with their ids: a duplicate is turned
 * away, and one accepted elsewhere but refused for memory cuts the
 * device, ending its streams), takes (some cut mid-batch), hang-ups,
 * clock steps and sweeps, over four devices of two users, then a clean
 * stop in half the runs; under seven limit configurations, 4 seeds x
 * 20000 operations each (about 0.15 s), through registry.h.  Each seed
 * draws the registry's msg_overhead (what a message costs beyond its
 * frame, REGISTRY_MSG_OVERHEAD in the service; 0 in some runs), and the
 * byte limits grow with it so that they hold about as many messages: the
 * model counts each message as its frame and that overhead (a keyed
 * one its key's entry too, REGISTRY_KEY_OVERHEAD and its name, where the
 * overhead is not 0), as the registry must in every byte count.  A model of each client (the last
 * id it saw) and of each device (every message accepted for it) checks
 * the delivery guarantees of DESIGN (src/registry.c):
 *
 *   - a stream delivers exactly the device's accepted messages after the
 *     id it started at (start.id), in order: no gap, no duplicate;
 *   - a resume from the client's last id without start.reset starts
 *     where that id does: nothing it saw again, nothing after it missed;
 *     so a client that keeps resuming without a reset gets every
 *     accepted message once;
 *   - where no limit can lose anything (replay window and grace longer
 *     than the run, no queue, replay or memory limit) no resume is reset
 *     and no stream overflows, and every byte accepted is held; with only
 *     a replay window and grace, none overflows, and a resume is reset
 *     only when a message after its id was delivered a window ago or
 *     the device may have been forgotten;
 *   - the budget: message_bytes never above it, and evictions only by a
 *     publish that did not fit, and a refusal only once nothing delivered
 *     is left to evict;
 *   - retention: after every stream took what it will, a sweep one
 *     window later leaves only what a stream still open has not taken,
 *     or what no stream ever took (held), whatever other device lags;
 *   - a stream cut off by a refused cluster message takes nothing more;
 *     one ended by registry_close() has taken all its device accepted;
 *   - with senders drawn (one configuration), a publish refused for
 *     its sender's share (REGISTRY_CROWDED) changes nothing, and the
 *     guarantees above hold around such refusals;
 *   - at the end, every stream gone and the clock past grace and replay,
 *     nothing is left (message_bytes, devices, users, held all 0);
 *   - after every operation, the registry's own byte counts (read
 *     through registry_impl.h: the only white-box check) equal what its
 *     logs hold, recounted message by message from each one's size:
 *     bytes, delivered_bytes, held, held_bytes and held_pending, each
 *     device's and in all, every live stream's bytes_out against its
 *     cursor, the retained and overdue lists; so a count that drifts or
 *     wraps is caught where it goes wrong, not only when a decision it
 *     feeds comes out different.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "registry.h"
#include "registry_impl.h"

/* Seeds per configuration; more for a longer hunt (-DMODEL_SEEDS=500). */
#ifndef MODEL_SEEDS
#define MODEL_SEEDS 4
#endif
#ifndef MODEL_OPS
#define MODEL_OPS 20000
#endif

#define NDEV 4
#define NCLI 2
#define NCLIENTS (NDEV * NCLI)

/* The registry's clock (limits.clock_ms) and registry_expire()'s now. */
static uint64_t model_now;

static uint64_t
model_clock(void)
{
	return model_now;
}

static uint64_t rng_state;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static size_t
rnd(size_t n)
{
	return (size_t)(rng() % n);
}

struct mmsg {
	uint64_t id;
	size_t len;
	size_t size;       /* len and the run's msg_overhead (and key) */
	char c;            /* every byte of its frame */
	bool touched;      /* a stream took it or started past it */
	uint64_t touch_ms; /* when first: its delivery is no earlier */
};

struct mdev {
	struct mmsg *msgs; /* accepted, in id order */
	size_t n, cap;
	size_t touch_lo; /* every message below it is touched */
	uint64_t subs;   /* subscribes so far */
	uint64_t sub_ms; /* when the last was */
	/*
	 * The latest subscribe that came grace_ms or more after the one
	 * before: the device may have been forgotten in between, not
	 * after it (0: none).
	 */
	uint64_t forget_ms;
};

struct mstream {
	struct registry_stream *s;
	uint64_t pos;    /* id of the last message it delivered, or start.id */
	uint64_t sub_no; /* its device's subscribes before it */
	bool hung;       /* registry_hangup() was called */
	bool cut;        /* its device was cut: it must end */
};

struct mclient {
	int dev;
	bool resumable; /* has a last id (start.id or a message's) */
	uint64_t last;
	uint64_t last_ms;     /* when it saw last */
	struct mstream cur;   /* .s NULL: not connected */
	struct mstream ghost; /* a stream it left, not yet ended; .s NULL */
};

struct config {
	const char *name;
	struct registry_limits l;
	bool lossless;     /* nothing may be lost: no reset, no overflow */
	bool no_overflow;  /* no stream may overflow */
	size_t max_len;    /* the longest message published */
	uint64_t step_max; /* the longest clock step */
	unsigned senders;  /* registry_publish()'s senders drawn; 0: none */
};

struct model {
	const struct config *cfg;
	/* The registry's limits: cfg's, byte limits grown with overhead. */
	struct registry_limits l;
	struct registry *reg;
	struct mdev dev[NDEV];
	struct mclient cli[NCLIENTS];
	char serial;
	bool ending;  /* the final quiesce() */
	bool closing; /* registry_close() was called */
	uint64_t seed;
	uint64_t last_id;
	size_t accepted, accepted_bytes; /* publishes that returned OK/HELD */
	/*
	 * Of them, those posted with an idempotency key (each its own, never
	 * a repeat): the registry's index of the logs' keys holds one for
	 * each such message in a log, so all of them while nothing is lost,
	 * never more, and none at the end.
	 */
	size_t keyed;
	unsigned long key_serial;
	unsigned resumes, resets, window_resets, overflows, replaced, taken,
	    evictions, backlogged, crowded;
};

static const char *
user_of(int d)
{
	return d < 2 ? "u" : "v";
}

static const char *
name_of(int d)
{
	static const char *names[NDEV] = {"d0", "d1", "d2", "d3"};

	return names[d];
}

/* The index of d's first accepted message with an id above id. */
static size_t
next_after(const struct mdev *d, uint64_t id)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->msgs[mid].id <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
touch(struct mmsg *m)
{
	if (!m->touched) {
		m->touched = true;
		m->touch_ms = model_now;
	}
}

static void
touch_upto(struct mdev *d, uint64_t id)
{
	for (size_t i = d->touch_lo; i < d->n && d->msgs[i].id <= id; i++)
		touch(&d->msgs[i]);
	while (d->touch_lo < d->n && d->msgs[d->touch_lo].touched)
		d->touch_lo++;
}

/*
 * Whether a message of d after id may have gone for its replay window:
 * one taken, or started past, replay_ms ago or more (it was delivered no
 * earlier).  Nothing else loses one with only a window and grace.
 */
static bool
lost_by_window(const struct model *mo, const struct mdev *d, uint64_t id)
{
	for (size_t i = next_after(d, id); i < d->n; i++) {
		if (d->msgs[i].touched &&
		    d->msgs[i].touch_ms + mo->l.replay_ms <= model_now)
			return true;
	}
	return false;
}

static size_t
open_streams(const struct model *mo)
{
	size_t n = 0;

	for (int i = 0; i < NCLIENTS; i++)
		n += (mo->cli[i].cur.s != NULL) + (mo->cli[i].ghost.s != NULL);
	return n;
}

static void
check_stats(struct model *mo)
{
	struct registry_stats st;

	registry_stats(mo->reg, &st);
	assert_int_equal(st.streams, open_streams(mo));
	if (mo->l.max_message_bytes > 0)
		assert_true(st.message_bytes <= mo->l.max_message_bytes);
	else
		assert_int_equal(st.evicted, 0);
	/* Until the end steps the clock past grace and replay. */
	if (mo->cfg->lossless && !mo->ending) {
		assert_int_equal(st.dropped, 0);
		assert_int_equal(st.expired, 0);
		assert_int_equal(st.resets, 0);
		/* Nothing goes: every byte accepted is still held. */
		assert_int_equal(st.message_bytes, mo->accepted_bytes);
		assert_int_equal(st.published, mo->accepted);
		assert_int_equal(st.keys, mo->keyed);
	}
	assert_true(st.keys <= mo->keyed);
	if (mo->cfg->no_overflow || mo->cfg->lossless)
		assert_int_equal(st.overflows, 0);
}

static void
end_stream(struct model *mo, struct mstream *ms)
{
	registry_unsubscribe(mo->reg, ms->s);
	memset(ms, 0, sizeof(*ms));
}

static void
op_subscribe(struct model *mo, struct mclient *c)
{
	struct mdev *d = &mo->dev[c->dev];
	struct registry_resume r = {REGISTRY_RESUME_NONE, 0};
	struct registry_start start;
	enum registry_error err;
	struct registry_stream *s;

	if (c->cur.s != NULL) {
		/* Back while its old stream is still open: that one lingers. */
		if (c->ghost.s != NULL)
			end_stream(mo, &c->ghost);
		c->ghost = c->cur;
		memset(&c->cur, 0, sizeof(c->cur));
		if (rnd(2) == 0) {
			registry_hangup(
			    mo->reg, registry_stream_id(c->ghost.s));
			c->ghost.hung = true;
		}
	}
	if (c->resumable) {
		r.kind = REGISTRY_RESUME_AT;
		r.id = c->last;
	}
	if (d->subs > 0 && model_now - d->sub_ms >= mo->l.grace_ms)
		d->forget_ms = model_now;
	s = registry_subscribe(
	    mo->reg, user_of(c->dev), name_of(c->dev), &r, &start, &err);
	if (s == NULL && err == REGISTRY_DEVICE_FULL) {
		/* Twice streams_per_device open, replaced ones ending. */
		size_t spd = mo->l.streams_per_device, open = 0;

		for (int i = 0; i < NCLIENTS; i++)
			if (mo->cli[i].dev == c->dev)
				open += (mo->cli[i].cur.s != NULL) +
				    (mo->cli[i].ghost.s != NULL);
		assert_true(spd > 0 && open >= 2 * spd);
		return;
	}
	if (s == NULL) {
		/* Else only max_devices can refuse here. */
		assert_int_equal(err, REGISTRY_DEVICES_FULL);
		assert_true(mo->l.max_devices > 0);
		return;
	}
	assert_int_equal(err, REGISTRY_OK);
	assert_true(start.id <= mo->last_id);
	if (r.kind == REGISTRY_RESUME_AT) {
		mo->resumes++;
		if (start.reset) {
			mo->resets++;
			assert_non_null(start.reason);
			/* Every id it resumes from is one the registry gave. */
			assert_string_equal(start.reason, "event id too old");
			assert_false(mo->cfg->lossless);
			if (mo->cfg->no_overflow && d->forget_ms < c->last_ms) {
				assert_true(lost_by_window(mo, d, c->last));
				mo->window_resets++;
			}
		} else {
			/* It starts where its last id does. */
			assert_int_equal(
			    next_after(d, start.id), next_after(d, c->last));
		}
	}
	/*
	 * Tagged with its client's tag; now and then it displaces the
	 * client's stream still open (registry_displace()), which then
	 * takes nothing more.
	 */
	if (rnd(3) == 0)
		registry_displace(mo->reg, s, (uint64_t)(c - mo->cli) + 1);
	else
		registry_stream_tag(mo->reg, s, (uint64_t)(c - mo->cli) + 1);
	c->cur.s = s;
	c->cur.pos = start.id;
	c->cur.sub_no = d->subs++;
	d->sub_ms = model_now;
	c->cur.hung = false;
	c->cur.cut = false;
	c->last = start.id;
	c->last_ms = model_now;
	c->resumable = true;
	touch_upto(d, start.id);
}

/*
 * The bytes of messages that may not have been delivered: untouched, or
 * not yet taken by a stream still open.
 */
static size_t
undelivered_bound(const struct model *mo)
{
	size_t bound = 0;

	for (int di = 0; di < NDEV; di++) {
		const struct mdev *d = &mo->dev[di];
		uint64_t min = UINT64_MAX;

		for (int i = 0; i < NCLIENTS; i++) {
			const struct mclient *c = &mo->cli[i];

			if (c->dev != di)
				continue;
			if (c->cur.s != NULL && c->cur.pos < min)
				min = c->cur.pos;
			if (c->ghost.s != NULL && c->ghost.pos < min)
				min = c->ghost.pos;
		}
		for (size_t i = 0; i < d->n; i++) {
			if (d->msgs[i].id > min || !d->msgs[i].touched)
				bound += d->msgs[i].size;
		}
	}
	return bound;
}

static void
op_publish(struct model *mo, int di)
{
	struct mdev *d = &mo->dev[di];
	static const size_t lens[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89};
	struct registry_stats before, after;
	struct registry_msg *m;
	enum registry_error res;
	size_t len, size, mode = rnd(10);
	uint64_t id = 0;
	char frame[128], key[32];
	size_t keylen = 0;

	len = lens[rnd(sizeof(lens) / sizeof(lens[0]))];
	if (len > mo->cfg->max_len)
		len = 1 + rnd(mo->cfg->max_len);
	mo->serial = (char)(mo->serial == 'z' ? 'a' : mo->serial + 1);
	/* What it counts in every byte count of the registry. */
	size = len + mo->l.msg_overhead;
	memset(frame, mo->serial, len);
	m = registry_msg_new(frame, len);
	registry_stats(mo->reg, &before);
	if (mode == 0) {
		/* A cluster's: accepted elsewhere, with a later id. */
		id = mo->last_id + 1 + rnd(3);
		res = registry_publish_accepted_at(
		    mo->reg, user_of(di), name_of(di), m, id);
	} else if (mode == 1 && d->n > 0) {
		/* One the device has had: a duplicate, or it is gone. */
		id = d->msgs[d->n - 1].id - rnd(2);
		res = registry_publish_at(
		    mo->reg, user_of(di), name_of(di), m, id);
		assert_true(
		    res == REGISTRY_DUPLICATE || res == REGISTRY_NOT_FOUND);
	} else {
		/* Drawn only where drawn: other runs keep their draws. */
		if (mo->cfg->senders > 0)
			registry_msg_set_sender(m, 1 + rnd(mo->cfg->senders));
		keylen = (size_t)snprintf(
		    key, sizeof(key), "k%lu", ++mo->key_serial);
		registry_msg_set_key(m, key, keylen);
		/*
		 * Its key's entry counts with it, where a message costs
		 * more than its frame (registry_publish()).
		 */
		if (mo->l.msg_overhead > 0)
			size +=
			    REGISTRY_KEY_OVERHEAD + sizeof(uint64_t) + keylen;
		res = registry_publish(mo->reg, user_of(di), name_of(di), m);
	}
	registry_stats(mo->reg, &after);
	if (after.evicted > before.evicted) {
		/* Evictions only for a publish that did not fit. */
		assert_true(mo->l.max_message_bytes > 0);
		assert_true(
		    before.message_bytes + size > mo->l.max_message_bytes);
		mo->evictions += (unsigned)(after.evicted - before.evicted);
	}
	switch (res) {
	case REGISTRY_OK:
	case REGISTRY_HELD:
		/* Closing, only what a live stream will take. */
		assert_false(mo->closing && res == REGISTRY_HELD);
		assert_true(registry_msg_id(m) > mo->last_id);
		assert_true(id == 0 || registry_msg_id(m) == id);
		mo->last_id = registry_msg_id(m);
		if (d->n == d->cap) {
			d->cap = d->cap ? 2 * d->cap : 64;
			d->msgs = realloc(d->msgs, d->cap * sizeof(*d->msgs));
			assert_non_null(d->msgs);
		}
		d->msgs[d->n++] = (struct mmsg){.id = mo->last_id,
		    .len = len,
		    .size = size,
		    .c = mo->serial};
		assert_int_equal(after.published, before.published + 1);
		mo->accepted++;
		mo->accepted_bytes += size;
		mo->keyed += keylen > 0;
		break;
	case REGISTRY_NOT_FOUND:
		/*
		 * Where no stream ends but by its client, a device with a
		 * stream linked in is known.
		 */
		for (int i = 0; i < NCLIENTS && mo->cfg->lossless; i++) {
			if (mo->cli[i].dev == di) {
				assert_null(mo->cli[i].cur.s);
				assert_null(mo->cli[i].ghost.s);
			}
		}
		break;
	case REGISTRY_CLOSED:
		assert_true(mo->closing);
		break;
	case REGISTRY_DUPLICATE:
		assert_int_equal(mode, 1);
		assert_int_equal(after.published, before.published);
		break;
	case REGISTRY_MEMORY_FULL:
		if (mode == 0) {
			/*
			 * Refused, it cut the device at id: its live streams
			 * end (their clients resume from before the hole).
			 */
			mo->last_id = id;
			for (int i = 0; i < NCLIENTS; i++) {
				if (mo->cli[i].dev == di &&
				    mo->cli[i].cur.s != NULL)
					mo->cli[i].cur.cut = true;
			}
		}
		assert_true(mo->l.max_message_bytes > 0);
		/* (The cut made room, but too late for m.) */
		assert_true(mode == 0 ||
		    after.message_bytes + size > mo->l.max_message_bytes);
		/*
		 * Refused only when no delivered message is left to evict:
		 * what stays is what no stream took, or what an open
		 * stream has still to take (a backlog it reads holds back
		 * its delivery).
		 */
		if (size <= mo->l.max_message_bytes &&
		    after.message_bytes > undelivered_bound(mo))
			fail_msg("%s: refused with %zu bytes, at most %zu "
			         "undelivered",
			    mo->cfg->name, after.message_bytes,
			    undelivered_bound(mo));
		break;
	case REGISTRY_BACKLOGGED:
		/*
		 * Refused for a stream of the device far behind while more
		 * than half the budget is not yet delivered: never one
		 * accepted elsewhere, and nothing was dropped for it.
		 */
		assert_int_not_equal(mode, 0);
		assert_true(mo->l.max_message_bytes > 0);
		assert_true(
		    undelivered_bound(mo) > mo->l.max_message_bytes / 2);
		assert_int_equal(after.backlogged, before.backlogged + 1);
		assert_int_equal(after.published, before.published);
		assert_int_equal(after.evicted, before.evicted);
		assert_int_equal(after.dropped, before.dropped);
		mo->backlogged++;
		break;
	case REGISTRY_CROWDED:
	case REGISTRY_HELD_FULL:
		/*
		 * Refused for its sender's share, as it would have pushed
		 * out another's: only with senders, and nothing changed.
		 */
		assert_true(mo->cfg->senders > 0 && mode > 0);
		assert_int_equal(after.crowded, before.crowded + 1);
		assert_int_equal(after.published, before.published);
		assert_int_equal(after.evicted, before.evicted);
		assert_int_equal(after.dropped, before.dropped);
		assert_int_equal(after.message_bytes, before.message_bytes);
		mo->crowded++;
		break;
	default:
		fail_msg("publish: %d", (int)res);
	}
	registry_msg_unref(m);
}

/*
 * One registry_wait() on c's stream; the client reads at most keep of
 * the batch (then leaves).  Returns what it woke for; the stream is
 * ended (c->cur.s NULL) unless it goes on.
 */
static enum registry_wake
op_take(struct model *mo, struct mclient *c, size_t keep)
{
	struct mdev *d = &mo->dev[c->dev];
	struct mstream *ms = &c->cur;
	struct registry_batch b;
	enum registry_wake w = registry_wait(mo->reg, ms->s, 0, &b);
	struct registry_msg *m;
	size_t k = 0;

	/* Cut: it takes nothing across the hole. */
	assert_false(
	    ms->cut && (w == REGISTRY_MESSAGES || w == REGISTRY_TIMEOUT));
	switch (w) {
	case REGISTRY_MESSAGES:
		assert_false(ms->hung);
		assert_true(b.n > 0);
		for (m = b.first; m != NULL; m = registry_batch_next(&b, m)) {
			size_t i = next_after(d, ms->pos), len;
			const char *f = registry_msg_frame(m, &len);

			/* The next accepted message of its device, once. */
			assert_true(i < d->n);
			assert_int_equal(registry_msg_id(m), d->msgs[i].id);
			assert_int_equal(len, d->msgs[i].len);
			for (size_t j = 0; j < len; j++)
				assert_int_equal(f[j], d->msgs[i].c);
			ms->pos = d->msgs[i].id;
			touch(&d->msgs[i]);
			if (k++ < keep) {
				c->last = ms->pos;
				c->last_ms = model_now;
			}
			mo->taken++;
		}
		assert_int_equal(k, b.n);
		touch_upto(d, 0);
		registry_batch_release(&b);
		if (keep < k) {
			/* Cut mid-batch: it saw only the first keep. */
			end_stream(mo, ms);
		}
		return w;
	case REGISTRY_TIMEOUT:
		assert_false(ms->hung);
		return w;
	case REGISTRY_GONE:
		assert_true(ms->hung);
		break;
	case REGISTRY_CLOSING:
		/* Only once it handed out all its device has accepted. */
		assert_true(mo->closing);
		if (next_after(d, ms->pos) != d->n)
			fail_msg("%s seed %llu: %s/%s stream %llu closed at "
			         "%llu, its device's last %llu (%zu after it)",
			    mo->cfg->name, (unsigned long long)mo->seed,
			    user_of(c->dev), name_of(c->dev),
			    (unsigned long long)registry_stream_id(ms->s),
			    (unsigned long long)ms->pos,
			    (unsigned long long)d->msgs[d->n - 1].id,
			    d->n - next_after(d, ms->pos));
		break;
	case REGISTRY_OVERFLOW:
		assert_false(mo->cfg->no_overflow || mo->cfg->lossless);
		mo->overflows++;
		break;
	case REGISTRY_REPLACED:
		assert_true(mo->l.streams_per_device > 0);
		assert_true(d->subs > ms->sub_no + 1);
		mo->replaced++;
		break;
	default:
		fail_msg("wait: %d", (int)w);
	}
	end_stream(mo, ms);
	return w;
}

static void check_counts(struct model *mo);

/*
 * Let every stream (but some that lag) take all it will, then step the
 * clock past the replay window and sweep: what is left must be what an
 * open stream has not taken, or what no stream ever took.
 */
static void
quiesce(struct model *mo, bool past_grace)
{
	struct registry_stats st;
	size_t bound = 0;

	for (int i = 0; i < NCLIENTS; i++) {
		struct mclient *c = &mo->cli[i];

		if (c->ghost.s != NULL)
			end_stream(mo, &c->ghost);
		/* Some lag: what they have not taken stays. */
		if (c->cur.s == NULL || (!past_grace && rnd(4) == 0))
			continue;
		/* Drained when a wait finds nothing. */
		while (c->cur.s != NULL &&
		    op_take(mo, c, SIZE_MAX) == REGISTRY_MESSAGES)
			;
		if (past_grace && c->cur.s != NULL)
			end_stream(mo, &c->cur);
	}
	/* (The lossless configuration's window outlasts the run.) */
	if (!mo->cfg->lossless || past_grace)
		model_now += mo->l.replay_ms + 1;
	if (past_grace) {
		model_now += mo->l.grace_ms + 1;
		mo->ending = true;
	}
	registry_expire(mo->reg, model_now);
	check_stats(mo);
	check_counts(mo);
	/* Delivered, by a stream that took it or started past it, no later. */
	bound = undelivered_bound(mo);
	registry_stats(mo->reg, &st);
	if (past_grace) {
		assert_int_equal(st.message_bytes, 0);
		assert_int_equal(st.devices, 0);
		assert_int_equal(st.users, 0);
		assert_int_equal(st.held, 0);
		assert_int_equal(st.grace, 0);
		assert_int_equal(st.keys, 0);
	} else if (!mo->cfg->lossless) {
		if (st.message_bytes > bound)
			fail_msg("%s: %zu bytes kept past the window, at most "
			         "%zu expected",
			    mo->cfg->name, st.message_bytes, bound);
	}
}

/*
 * A byte limit of cfg's grown by overhead for each message of about 16
 * bytes it held, so that with any overhead it holds about as many
 * messages (0, no limit, stays 0).
 */
static size_t
grow(size_t limit, size_t overhead)
{
	return limit == 0 ? 0 : limit + limit / 16 * overhead;
}

/*
 * m, next on reg->overdue then reg->retained, comes right after the last
 * of its device's seen so (in seen[], one a device), or is its log's head.
 */
static void
check_order(struct registry_msg *m, struct registry_msg **seen, size_t *n)
{
	const struct reg_device *d = m->device;
	size_t i;

	for (i = 0; i < *n && seen[i]->device != d; i++)
		;
	if (i == *n) {
		assert_true(*n <= NDEV);
		(*n)++;
		assert_int_equal(m->seq, d->first_seq);
	} else {
		assert_int_equal(m->seq, seen[i]->seq + 1);
	}
	seen[i] = m;
}

/*
 * White-box: every byte count of the registry (registry_impl.h) against
 * what its logs hold, recounted from each message's size (its frame and
 * the overhead: mo's reference).  Single-threaded, so without the lock.
 */
static void
check_counts(struct model *mo)
{
	struct registry *reg = mo->reg;
	struct reg_device *d, *dtmp;
	struct registry_msg *m;
	size_t bytes = 0, delivered = 0, held = 0, held_bytes = 0;
	size_t held_pending = 0, ondevs = 0, onlists = 0, overdue = 0;
	size_t nholding = 0, nseen = 0;
	struct registry_msg *seen[NDEV + 1];

	HASH_ITER(hh, reg->devices, d, dtmp)
	{
		size_t dbytes = 0, ddelivered = 0, n;
		const struct registry_stream *s;

		assert_int_equal(d->count,
		    d->count > 0 ? d->last_seq - d->first_seq + 1 : 0);
		for (uint64_t q = d->first_seq;
		     d->count > 0 && q <= d->last_seq; q++) {
			m = device_log_at(d, q);
			assert_int_equal(m->seq, q);
			if (m->size !=
			    m->len + mo->l.msg_overhead +
			        (m->key != NULL && mo->l.msg_overhead > 0
			                ? REGISTRY_KEY_OVERHEAD + m->key->len
			                : 0))
				fail_msg("%s seed %llu: message %llu of %zu "
				         "bytes has size %zu, overhead %zu",
				    mo->cfg->name, (unsigned long long)mo->seed,
				    (unsigned long long)m->id, m->len, m->size,
				    mo->l.msg_overhead);
			dbytes += m->size;
			/* The delivered ones are a prefix of the log. */
			assert_true(
			    (m->list != MSG_ON_NONE) == (q <= d->delivered));
			if (m->list != MSG_ON_NONE) {
				ddelivered += m->size;
				ondevs++;
			}
		}
		if (d->bytes != dbytes || d->delivered_bytes != ddelivered)
			fail_msg("%s seed %llu: %s/%s counts %zu bytes, %zu "
			         "delivered; its log holds %zu, %zu",
			    mo->cfg->name, (unsigned long long)mo->seed,
			    d->user->name, d->name, d->bytes,
			    d->delivered_bytes, dbytes, ddelivered);
		assert_true(d->bytes_in >= d->bytes);
		assert_true(d->taken >= d->delivered);
		/* device_recount()'s, from scratch. */
		n = d->grace_until != 0 ? device_held(d) : 0;
		assert_int_equal(d->held_counted, n);
		assert_int_equal(d->held_bytes_counted, n > 0 ? dbytes : 0);
		assert_int_equal(
		    d->held_pending_counted, n > 0 ? dbytes - ddelivered : 0);
		held += n;
		held_bytes += n > 0 ? dbytes : 0;
		held_pending += n > 0 ? dbytes - ddelivered : 0;
		nholding += n > 0;
		bytes += dbytes;
		delivered += ddelivered;
		/* A live stream is behind by what its log holds after it. */
		DL_FOREACH(d->streams, s)
		{
			uint64_t behind = 0;

			assert_true(s->bytes_out <= d->bytes_in);
			if (!stream_live(s))
				continue;
			assert_true(s->cursor <= d->last_seq);
			assert_true(d->count == 0
			        ? s->cursor == d->last_seq
			        : s->cursor + 1 >= d->first_seq);
			for (uint64_t q = s->cursor + 1; q <= d->last_seq; q++)
				behind += device_log_at(d, q)->size;
			if (d->bytes_in - s->bytes_out != behind)
				fail_msg("%s seed %llu: stream %llu of %s/%s "
				         "counts %llu bytes behind, its log "
				         "holds %llu after it",
				    mo->cfg->name, (unsigned long long)mo->seed,
				    (unsigned long long)s->id, d->user->name,
				    d->name,
				    (unsigned long long)(d->bytes_in -
				        s->bytes_out),
				    (unsigned long long)behind);
		}
	}
	/*
	 * Each device's delivered messages on the lists in the order of its
	 * log, its overdue ones first: the head of reg->overdue, else of
	 * reg->retained, is its log's head (what eviction relies on).
	 */
	DL_FOREACH2(reg->overdue, m, rnext)
	{
		assert_int_equal(m->list, MSG_ON_OVERDUE);
		check_order(m, seen, &nseen);
		onlists++;
		overdue++;
	}
	DL_FOREACH2(reg->retained, m, rnext)
	{
		assert_int_equal(m->list, MSG_ON_RETAINED);
		check_order(m, seen, &nseen);
		onlists++;
	}
	assert_int_equal(onlists, ondevs);
	assert_int_equal(reg->noverdue, overdue);
	DL_FOREACH2(reg->holding, d, hnext)
	{
		nholding--;
	}
	assert_int_equal(nholding, 0);
	if (reg->bytes != bytes || reg->delivered_bytes != delivered ||
	    reg->held != held || reg->held_bytes != held_bytes ||
	    reg->held_pending != held_pending)
		fail_msg("%s seed %llu overhead %zu: the registry counts bytes "
		         "%zu, delivered %zu, held %zu (%zu bytes, %zu "
		         "pending); its logs hold %zu, %zu, %zu (%zu, %zu)",
		    mo->cfg->name, (unsigned long long)mo->seed,
		    mo->l.msg_overhead, reg->bytes, reg->delivered_bytes,
		    reg->held, reg->held_bytes, reg->held_pending, bytes,
		    delivered, held, held_bytes, held_pending);
}

/*
 * What a message costs beyond its frame in the run of the seed numbered
 * n (from 1): 0 (frames alone), the service's, and some in between.
 */
static size_t
overhead_of(uint64_t n)
{
	static const size_t overheads[] = {0, REGISTRY_MSG_OVERHEAD, 1, 40, 7};

	return overheads[(n - 1) % (sizeof(overheads) / sizeof(overheads[0]))];
}

static void
run(const struct config *cfg, uint64_t seed, size_t overhead, int ops)
{
	struct model mo;
	struct registry_limits *l = &mo.l;

	memset(&mo, 0, sizeof(mo));
	mo.cfg = cfg;
	mo.seed = seed;
	mo.serial = 'a';
	rng_state = seed;
	model_now = 1000;
	*l = cfg->l;
	l->msg_overhead = overhead;
	l->queue_bytes = grow(l->queue_bytes, l->msg_overhead);
	l->replay_bytes = grow(l->replay_bytes, l->msg_overhead);
	l->max_message_bytes = grow(l->max_message_bytes, l->msg_overhead);
	l->clock_ms = model_clock;
	mo.reg = registry_new(l);
	for (int i = 0; i < NCLIENTS; i++)
		mo.cli[i].dev = i % NDEV;
	for (int op = 0; op < ops; op++) {
		struct mclient *c = &mo.cli[rnd(NCLIENTS)];
		size_t r = rnd(100);

		if (r < 30) {
			op_publish(&mo, (int)rnd(NDEV));
		} else if (r < 55) {
			if (c->cur.s != NULL)
				op_take(&mo, c, SIZE_MAX);
		} else if (r < 65) {
			if (c->cur.s == NULL || rnd(4) == 0)
				op_subscribe(&mo, c);
		} else if (r < 69) {
			/* The client leaves: the watcher hangs up. */
			if (c->cur.s != NULL && !c->cur.hung) {
				registry_hangup(
				    mo.reg, registry_stream_id(c->cur.s));
				c->cur.hung = true;
			}
		} else if (r < 72) {
			if (c->ghost.s != NULL)
				end_stream(&mo, &c->ghost);
			else if (c->cur.s != NULL)
				end_stream(&mo, &c->cur);
		} else if (r < 75) {
			/* Cut mid-write: it saw only part of a batch. */
			if (c->cur.s != NULL)
				op_take(&mo, c, rnd(3));
		} else if (r < 87) {
			model_now += rnd(cfg->step_max + 1);
		} else if (r < 95) {
			registry_expire(mo.reg, model_now);
		} else if (r < 99) {
			check_stats(&mo);
		} else if (rnd(4) == 0) {
			/* A new page: no last id. */
			c->resumable = false;
		}
		/*
		 * A recount walks every log, and the lossless one's keeps
		 * everything: there, now and then.
		 */
		if (!cfg->lossless || op % 64 == 0)
			check_counts(&mo);
		if (op % 500 == 499)
			quiesce(&mo, false);
	}
	/*
	 * Half the runs stop cleanly: what is accepted from now on (for a
	 * live stream only) is still handed out before REGISTRY_CLOSING.
	 */
	if (seed % 2 == 0) {
		registry_close(mo.reg);
		mo.closing = true;
		for (int i = 0; i < 20; i++)
			op_publish(&mo, (int)rnd(NDEV));
	}
	/* Everyone gone, the clock past grace and replay: nothing left. */
	quiesce(&mo, true);
	check_counts(&mo);
	print_message(
	    "%-14s seed %-4llu overhead %-3zu resumes %u resets %u (%u) overflows %u "
	    "replaced %u evicted %u backlogged %u crowded %u taken %u\n",
	    cfg->name, (unsigned long long)seed, mo.l.msg_overhead, mo.resumes,
	    mo.resets, mo.window_resets, mo.overflows, mo.replaced,
	    mo.evictions, mo.backlogged, mo.crowded, mo.taken);
	registry_free(mo.reg);
	for (int i = 0; i < NDEV; i++)
		free(mo.dev[i].msgs);
}

static const struct config configs[] = {
    {.name = "lossless",
        .l = {.replay_ms = 1000000000000ull, .grace_ms = 1000000000000ull},
        .lossless = true,
        .max_len = 89,
        .step_max = 500},
    {.name = "window",
        .l = {.replay_ms = 50, .grace_ms = 200, .streams_per_device = 2},
        .no_overflow = true,
        .max_len = 89,
        .step_max = 40},
    {.name = "window-1",
        .l = {.replay_ms = 20, .grace_ms = 0, .streams_per_device = 1},
        .no_overflow = true,
        .max_len = 34,
        .step_max = 30},
    {.name = "replay-queue",
        .l = {.replay_max = 3,
            .replay_bytes = 40,
            .queue_messages = 4,
            .queue_bytes = 60,
            .replay_ms = 100,
            .grace_ms = 0,
            .streams_per_device = 1},
        .max_len = 34,
        .step_max = 60},
    {.name = "budget",
        .l = {.max_message_bytes = 200,
            .queue_messages = 8,
            .queue_bytes = 120,
            .replay_ms = 100,
            .grace_ms = 300,
            .streams_per_device = 2,
            .stuck_ms = 50,
            .catch_up_ms = 150},
        .max_len = 89,
        .step_max = 60},
    {.name = "budget-tiny",
        .l = {.max_message_bytes = 64,
            .replay_max = 5,
            .replay_ms = 30,
            .grace_ms = 100,
            .streams_per_device = 1,
            .max_devices = 3},
        .max_len = 89,
        .step_max = 30},
    {.name = "sender-share",
        .l = {.replay_max = 6,
            .replay_bytes = 120,
            .queue_messages = 4,
            .queue_bytes = 80,
            .replay_ms = 100,
            .grace_ms = 300,
            .streams_per_device = 2,
            .sender_share = 50},
        .max_len = 34,
        .step_max = 60,
        .senders = 3},
    {.name = "budget-noqueue",
        .l = {.max_message_bytes = 150,
            .replay_ms = 200,
            .grace_ms = 50,
            .streams_per_device = 2},
        .max_len = 55,
        .step_max = 80},
};

static void
test_registry_model(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		for (uint64_t seed = 1; seed <= MODEL_SEEDS; seed++)
			run(&configs[i], seed * 0x9e3779b97f4a7c15ull,
			    overhead_of(seed), MODEL_OPS);
	}
}

/*
 * The byte counts alone (check_counts()), over every entry of registry.h,
 * the model's delivery guarantees aside: a cluster's ids and replays
 * (registry_replay_at(), REGISTRY_RESUME_FROM, registry_publish_at()),
 * the stream and device limits (max_streams with max_over, displacing),
 * any resume id, and a stop; with each seed's overhead.
 */
#define CHAOS_STREAMS 12

struct chaos_stream {
	struct registry_stream *s;
	int dev;
};

static void
chaos_run(const struct config *cfg, uint64_t seed, size_t overhead, int ops)
{
	struct model mo;
	struct registry_limits *l = &mo.l;
	struct chaos_stream cs[CHAOS_STREAMS];
	uint64_t top = 0; /* the highest id given or chosen so far */

	memset(&mo, 0, sizeof(mo));
	memset(cs, 0, sizeof(cs));
	mo.cfg = cfg;
	mo.seed = seed;
	rng_state = seed;
	model_now = 1000;
	*l = cfg->l;
	l->msg_overhead = overhead;
	l->queue_bytes = grow(l->queue_bytes, overhead);
	l->replay_bytes = grow(l->replay_bytes, overhead);
	l->max_message_bytes = grow(l->max_message_bytes, overhead);
	l->max_streams = 1 + rnd(CHAOS_STREAMS);
	l->max_over = rnd(3);
	l->devices_per_user = rnd(3);
	l->clock_ms = model_clock;
	mo.reg = registry_new(l);
	for (int op = 0; op < ops; op++) {
		struct chaos_stream *c = &cs[rnd(CHAOS_STREAMS)];
		int di = (int)rnd(NDEV);
		size_t r = rnd(100);
		char frame[128];
		size_t len = 1 + rnd(cfg->max_len);
		struct registry_stats st;

		memset(frame, 'x', len);
		if (r < 25) {
			struct registry_msg *m = registry_msg_new(frame, len);
			uint64_t id = rnd(3) == 0 ? top + 1 + rnd(3) : 0;
			enum registry_error res;

			if (id == 0)
				res = registry_publish(
				    mo.reg, user_of(di), name_of(di), m);
			else if (rnd(2) == 0)
				res = registry_publish_at(
				    mo.reg, user_of(di), name_of(di), m, id);
			else
				res = registry_publish_accepted_at(
				    mo.reg, user_of(di), name_of(di), m, id);
			if (registry_msg_id(m) > top)
				top = registry_msg_id(m);
			if (id > top && res == REGISTRY_MEMORY_FULL)
				top = id;
			registry_msg_unref(m);
		} else if (r < 45) {
			struct registry_batch b;
			enum registry_wake w;

			if (c->s == NULL)
				continue;
			w = registry_wait(mo.reg, c->s, 0, &b);
			if (w == REGISTRY_MESSAGES)
				registry_batch_release(&b);
			else if (w != REGISTRY_TIMEOUT) {
				registry_unsubscribe(mo.reg, c->s);
				c->s = NULL;
			}
		} else if (r < 60) {
			struct registry_resume res = {
			    (enum registry_resume_kind)rnd(
			        REGISTRY_RESUME__MAX),
			    top > 4 ? top - rnd(5) : rnd(5)};
			struct registry_start start;
			enum registry_error err;

			if (c->s != NULL) {
				registry_unsubscribe(mo.reg, c->s);
				c->s = NULL;
			}
			c->dev = di;
			c->s = registry_subscribe(mo.reg, user_of(di),
			    name_of(di), &res, &start, &err);
			if (c->s == NULL)
				continue;
			if (start.over || rnd(3) == 0)
				registry_displace_over(
				    mo.reg, c->s, (uint64_t)(c - cs) % 3 + 1);
			else
				registry_stream_tag(
				    mo.reg, c->s, (uint64_t)(c - cs) % 3 + 1);
			/* A cluster's replay of its backlog. */
			if (res.kind == REGISTRY_RESUME_FROM) {
				uint64_t id = res.id;

				for (size_t i = rnd(4); i > 0; i--) {
					struct registry_msg *m =
					    registry_msg_new(frame, len);

					id += 1 + rnd(2);
					registry_replay_at(mo.reg, c->s, m, id);
					if (id > top)
						top = id;
					registry_msg_unref(m);
				}
			}
		} else if (r < 66) {
			if (c->s != NULL)
				registry_hangup(
				    mo.reg, registry_stream_id(c->s));
		} else if (r < 70) {
			if (c->s != NULL) {
				registry_unsubscribe(mo.reg, c->s);
				c->s = NULL;
			}
		} else if (r < 85) {
			model_now += rnd(cfg->step_max + 1);
		} else if (r < 95) {
			registry_expire(mo.reg, model_now);
		} else if (r < 99) {
			char **names;
			size_t n;

			registry_devices(mo.reg, user_of(di), &names, &n);
			for (size_t i = 0; i < n; i++)
				free(names[i]);
			free(names);
		} else if (op > ops * 9 / 10 && rnd(20) == 0) {
			registry_close(mo.reg);
		}
		registry_stats(mo.reg, &st);
		if (l->max_message_bytes > 0)
			assert_true(st.message_bytes <= l->max_message_bytes);
		check_counts(&mo);
	}
	for (int i = 0; i < CHAOS_STREAMS; i++) {
		if (cs[i].s != NULL)
			registry_unsubscribe(mo.reg, cs[i].s);
	}
	model_now += cfg->l.replay_ms + cfg->l.grace_ms + 2;
	registry_expire(mo.reg, model_now);
	check_counts(&mo);
	{
		struct registry_stats st;

		registry_stats(mo.reg, &st);
		assert_int_equal(st.message_bytes, 0);
		assert_int_equal(st.devices, 0);
		assert_int_equal(st.held, 0);
		assert_int_equal(st.keys, 0);
		print_message("%-14s seed %-4llu overhead %-3zu published "
		              "%llu refused %llu evicted %llu dropped %llu "
		              "overflows %llu replaced %llu resets %llu\n",
		    cfg->name, (unsigned long long)seed, overhead,
		    (unsigned long long)st.published,
		    (unsigned long long)st.refused,
		    (unsigned long long)st.evicted,
		    (unsigned long long)st.dropped,
		    (unsigned long long)st.overflows,
		    (unsigned long long)st.replaced,
		    (unsigned long long)st.resets);
	}
	registry_free(mo.reg);
}

static void
test_registry_model_counts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		for (uint64_t seed = 1; seed <= MODEL_SEEDS; seed++)
			chaos_run(&configs[i], seed * 0x9e3779b97f4a7c15ull,
			    overhead_of(seed), MODEL_OPS);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry_model),
	    cmocka_unit_test(test_registry_model_counts),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
