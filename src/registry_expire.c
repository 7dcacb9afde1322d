/* registry_expire: see registry_expire.h, and DESIGN in registry.c. */
#include "registry_expire.h"

#include <stdlib.h>

#include "registry_log.h"
#include "util.h"

/* Devices or messages registry_expire() drops per hold of the lock. */
#define REGISTRY_SWEEP_SLICE 1024

/* Forget d; its untaken messages count as dropped unless kept elsewhere. */
void
registry_expire_forget(struct registry *reg, struct reg_device *d)
{
	struct reg_user *u = d->user;

	if (d->grace_until != 0) {
		DL_DELETE2(reg->grace, d, gprev, gnext);
		reg->ngrace--;
	}
	d->grace_until = 0;
	device_recount(reg, d);
	if (!d->kept)
		reg->dropped += device_held(d);
	while (d->count > 0)
		registry_log_drop_oldest(reg, d);
	HASH_DEL(reg->devices, d);
	DL_DELETE2(u->devices, d, uprev, unext);
	u->ndevices--;
	reg->ndevices--;
	free(d->ring);
	free(d);
	if (u->devices == NULL) {
		HASH_DEL(reg->users, u);
		reg->nusers--;
		free(u->name);
		free(u);
	}
}

/*
 * Drop m, the oldest message of its device's log and delivered: unless a
 * live stream of its device has not taken it yet (it lags, or replays),
 * when force says whether to end those streams (they overflow: their
 * clients come back with a reset) or to keep it.  Returns whether it
 * dropped it.
 */
static bool
drop_delivered(struct registry *reg, struct registry_msg *m, bool force)
{
	struct reg_device *d = m->device;
	bool ended = false;
	uint64_t now;

	if (d->count == 0 || d->ring[d->head] != m)
		return false;
	if (m->seq > device_min_cursor(d)) {
		if (!force)
			return false;
		ended = device_overflow_behind(reg, d, m->seq);
	}
	registry_log_drop_oldest(reg, d);
	now = registry_now(reg);
	/*
	 * What a stream it ended held back (its sibling took it) is
	 * delivered now: it goes next, if room is still needed.
	 */
	if (ended)
		registry_log_deliver(reg, d, d->taken, now);
	registry_expire_grace(reg, d, now);
	device_recount(reg, d);
	return true;
}

/*
 * Drop the oldest delivered message, of whichever device: the overdue
 * ones first (delivered before any still on reg->retained), ending the
 * live streams that have not taken it.  The head of either list is its
 * log's head: see DESIGN.  Returns whether there was one.
 */
bool
registry_expire_evict(struct registry *reg)
{
	struct registry_msg *m =
	    reg->overdue != NULL ? reg->overdue : reg->retained;

	return m != NULL && drop_delivered(reg, m, true);
}

/*
 * The head of reg->retained is past its window: drop it, or, when a live
 * stream has not taken it yet, move it to reg->overdue, where it goes
 * when that stream takes it or ends (registry_log_trim()), so that the
 * sweep goes on to the next, whichever device it is for: one slow reader
 * holds back no other device's expiry.
 */
static void
expire_head(struct registry *reg)
{
	struct registry_msg *m = reg->retained;

	if (drop_delivered(reg, m, false)) {
		reg->expired++;
		return;
	}
	DL_DELETE2(reg->retained, m, rprev, rnext);
	m->list = MSG_ON_OVERDUE;
	DL_APPEND2(reg->overdue, m, rprev, rnext);
	reg->noverdue++;
}

bool
registry_expire_drop_held(struct registry *reg)
{
	struct reg_device *d = reg->holding;

	if (d == NULL)
		return false;
	/*
	 * Its streams, if any are still linked, take nothing more.  Kept
	 * elsewhere (a cluster's Redis), its next stream gets them there.
	 */
	if (!d->kept)
		reg->dropped += device_held(d);
	while (d->count > 0)
		registry_log_drop_oldest(reg, d);
	device_recount(reg, d);
	return true;
}

/*
 * Start d's grace period, if it has not started: when its last stream
 * ends, or earlier, when its last live stream is found gone or overflowed
 * while its thread is still busy.
 */
void
registry_expire_grace(struct registry *reg, struct reg_device *d, uint64_t now)
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

/* d's last stream ended: forget it, or let its grace period run. */
void
registry_expire_orphan(
    struct registry *reg, struct reg_device *d, uint64_t now, bool kept)
{
	d->kept = kept;
	registry_expire_grace(reg, d, now);
	if (reg->limits.grace_ms == 0 || device_expired(d, now)) {
		reg->forgotten += reg->limits.grace_ms > 0;
		registry_expire_forget(reg, d);
		return;
	}
	registry_log_trim(reg, d, now);
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
			registry_expire_forget(reg, d);
		}
		/* In delivery order: stop at the first still in its window. */
		while (!more && reg->retained != NULL &&
		    reg->retained->t_ms + reg->limits.replay_ms <= now_ms) {
			if (n++ == REGISTRY_SWEEP_SLICE)
				more = true;
			else
				expire_head(reg);
		}
		pthread_mutex_unlock(&reg->lock);
	} while (more);
}
