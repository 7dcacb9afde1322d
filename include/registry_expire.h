/*
 * registry_expire: what the registry lets go (see DESIGN in registry.c):
 * devices, on reg->grace in expiry order once their last live stream is
 * lost, forgotten when their grace ends; and delivered messages, on
 * reg->retained in delivery order, dropped when their replay window ends
 * (or moved to reg->overdue, while a live stream has not taken them) or
 * the memory budget needs room; and, when it needs more, the messages
 * held for devices in grace (reg->holding).  registry_expire()
 * (registry.h) sweeps both.  All but registry_expire() with reg->lock held.  Registry modules
 * only.
 */
#ifndef BEEP_REGISTRY_EXPIRE_H
#define BEEP_REGISTRY_EXPIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "registry_impl.h"

/*
 * Forget d, with its log (its untaken messages count as dropped, unless
 * kept elsewhere: d->kept), and its user when d was the user's last
 * device.
 */
void registry_expire_forget(struct registry *reg, struct reg_device *d);
/*
 * Drop the oldest delivered message, of whichever device (reg->overdue's
 * head, else reg->retained's), ending the live streams that have not
 * taken it.  Returns whether there was one.
 */
bool registry_expire_evict(struct registry *reg);
/*
 * Drop the log of the device in grace that began to hold untaken
 * messages first (they count as dropped: its client comes back to a
 * reset; unless kept elsewhere, d->kept: its next stream gets them from
 * there).  Returns whether there was one.
 */
bool registry_expire_drop_held(struct registry *reg);
/* Start d's grace period, now (ms), unless started or d is live. */
void registry_expire_grace(
    struct registry *reg, struct reg_device *d, uint64_t now);
/*
 * d's last stream ended: forget it, or let its grace period run.  kept:
 * what d holds is kept elsewhere too (registry_unsubscribe_taken()), so,
 * forgotten now or later in its grace period (swept, or its place taken
 * past max_devices), or its log dropped for room, it does not count as
 * dropped (d->kept).
 */
void registry_expire_orphan(
    struct registry *reg, struct reg_device *d, uint64_t now, bool kept);

#endif
