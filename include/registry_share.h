/*
 * registry_share: the streams' shares of the message budget (see DESIGN
 * in registry.c).  A stream's pending bytes are what it has not taken
 * that is not yet delivered; its share is half the budget over the live
 * streams with something pending.  While the live streams' pending bytes
 * fill more than half the budget, a POST that would put a stream of its
 * device past its share is refused (registry_backlogged()); when the
 * budget is full, streams past their share, or queue, that do not catch
 * up for stuck_ms, or stay past them for catch_up_ms however they read
 * (both the time memory was short only, noted by registry_short_note();
 * all the time between two sightings for one that took less than a step
 * in it; neither while a take has brought it within its bound:
 * registry_lag_took(), registry_lag_fed()), are ended
 * (registry_overflow_laggards()), and a stream's sighting so passes to
 * its device's next stream (registry_lag_keep(), registry_lag_inherit()).
 * All with reg->lock held.  Registry modules only.
 */
#ifndef BEEP_REGISTRY_SHARE_H
#define BEEP_REGISTRY_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry_impl.h"

/* Keep s's sighting in d as s goes (ends, is replaced or ended as stuck). */
void registry_lag_keep(const struct registry *reg, struct reg_device *d,
    const struct registry_stream *s, uint64_t now);
/* Give s, a new stream of d, the sighting it starts with. */
void registry_lag_inherit(const struct registry *reg, struct reg_device *d,
    struct registry_stream *s, uint64_t now);
/* s, seen past its bound, has taken: its times stop if it is within. */
void registry_lag_took(
    const struct registry *reg, struct registry_stream *s, uint64_t now);
/* s's device was appended to: its times run again if it is past. */
void registry_lag_fed(
    const struct registry *reg, struct registry_stream *s, uint64_t now);
/*
 * Whether a message of len for d, a device that is here, is to be refused
 * for now (REGISTRY_BACKLOGGED).
 */
bool registry_backlogged(
    struct registry *reg, const struct reg_device *d, size_t len, uint64_t now);
/*
 * The budget is full for a POST to target, a device that is here: end the
 * stuck streams of other devices.  Returns whether it ended any.
 */
bool registry_overflow_laggards(
    struct registry *reg, const struct reg_device *target, uint64_t now);

#endif
