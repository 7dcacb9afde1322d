/*
 * cluster_delivery: messages from Redis into the local registry, per
 * device held here (struct cluster_entry): the channel's messages, and a
 * SUB answer's replay, behind the entry's gate, in id order, exactly once;
 * a reset where a resubscription found messages lost.  All with cl->lock
 * held (lock order: cl->lock, then the registry's).  Cluster modules only.
 */
#ifndef BEEP_CLUSTER_DELIVERY_H
#define BEEP_CLUSTER_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster_impl.h"

/* Whether r is a well-formed SUB answer {from, why, entries}. */
bool cluster_delivery_reply_ok(const redisReply *r);
/*
 * Apply a SUB answer to e, then what waited behind its gate, and open the
 * gate (unless the answer is not enough: see cluster_delivery.c).  fresh:
 * the stream just subscribed, for which the registry started the device's
 * log at from (its backlog is the answer's entries), or NULL for a
 * resubscription; stale: the channel was subscribed again after the SUB
 * was made.
 */
void cluster_delivery_apply(struct cluster *cl, struct cluster_entry *e,
    redisReply *r, struct registry_stream *fresh, bool stale);
/* Drop what waits behind e's gate. */
void cluster_delivery_drop_waiting(struct cluster *cl, struct cluster_entry *e);
/*
 * A message from the channel, "ID ULEN DLEN USER DEVICE FRAME": to the
 * registry, or behind its entry's gate.  Takes cl->lock itself.
 */
void cluster_delivery_receive(struct cluster *cl, const char *p, size_t len);

#endif
