/*
 * registry_log: a device's message log (see DESIGN in registry.c): the
 * ring of messages, numbered first_seq .. last_seq; appending, which
 * gives a message its seq and id; dropping the oldest, and trimming what
 * no live stream and no retention bound keeps; and where a new stream
 * starts in it, named as an event id.  All with reg->lock held.
 * Registry modules only.
 */
#ifndef BEEP_REGISTRY_LOG_H
#define BEEP_REGISTRY_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "registry_impl.h"

/*
 * Append m to d's log with id, the caller's (registry_publish_at()), or 0
 * for the next registry-wide one; the log takes its own reference.
 */
void registry_log_append(struct registry *reg, struct reg_device *d,
    struct registry_msg *m, uint64_t id);
/*
 * Whether appending m to d's log would push out (past replay_max or
 * replay_bytes, as registry_log_trim() does) a message that another
 * sender posted and no stream has taken, while m's sender already holds
 * its share (limits.sender_share) of those bounds in messages not taken
 * (REGISTRY_CROWDED), or that message's sender holds less than its share
 * (REGISTRY_HELD_FULL); else REGISTRY_OK.  Walks the log; its caller
 * asks only when m would fill it.
 */
enum registry_error registry_log_crowds(const struct registry *reg,
    const struct reg_device *d, const struct registry_msg *m);
/*
 * The message of d's log posted with m's idempotency key (not NULL) by
 * m's sender, or NULL.  One lookup in d's keys, by the hash its publish
 * made (m->key->hashv: registry_publish_id()).
 */
const struct registry_msg *registry_log_find_key(
    const struct reg_device *d, const struct registry_msg *m);
/* Drop the oldest message of d's log (off reg->retained too). */
void registry_log_drop_oldest(struct registry *reg, struct reg_device *d);
/*
 * Drop what d's log need not keep any more, now (ms), ending a live
 * stream that has not taken what goes; first, deliver what a stream that
 * read on or ended no longer holds back (registry_log_deliver()).
 */
void registry_log_trim(
    struct registry *reg, struct reg_device *d, uint64_t now);
/*
 * Where a new stream of d starts (its cursor) and what it must be told
 * first.  Called before the stream is linked in.
 */
uint64_t registry_log_start(struct registry *reg, struct reg_device *d,
    const struct registry_resume *resume, struct registry_start *start);
/* The event id that names position cursor of d's log. */
uint64_t registry_log_position_id(const struct reg_device *d, uint64_t cursor);
/*
 * REGISTRY_RESUME_FROM id on a device with no stream whose log does not
 * cover id: the log restarts empty at id.
 */
void registry_log_restart(
    struct registry *reg, struct reg_device *d, uint64_t id);
/*
 * A stream of d took, or started past, the messages up to upto (its
 * cursor; d->taken: nothing new): d->taken follows, and d->delivered up
 * to what no live stream still reading its backlog lacks (now: when
 * their replay window starts).
 */
void registry_log_deliver(
    struct registry *reg, struct reg_device *d, uint64_t upto, uint64_t now);

#endif
