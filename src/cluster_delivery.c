/* cluster_delivery: see cluster_delivery.h. */
#include "cluster_delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_presence.h"
#include "event.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "cluster"

/* Free what waits behind e's gate; with cl->lock held. */
static void
delivery_free_waiting(struct cluster *cl, struct cluster_entry *e)
{
	while (e->waiting != NULL) {
		struct cluster_wait *w = e->waiting;

		e->waiting = w->next;
		cl->waiting_bytes -= w->cost;
		registry_msg_unref(w->m);
		free(w);
	}
	e->waiting_tail = NULL;
	e->nwaiting = 0;
}

void
cluster_delivery_drop_waiting(struct cluster *cl, struct cluster_entry *e)
{
	e->dropped = 0;
	delivery_free_waiting(cl, e);
}

/* The log's word that a message found no room behind a gate. */
static struct log_limit cluster_delivery_gate_log = LOG_LIMIT(LOG_WARN,
    "no room behind a gate for a message from redis "
    "(BEEP_MAX_MESSAGE_MEMORY / 4)");

/* The log's word that a message from Redis found no room (below). */
static struct log_limit cluster_delivery_full_log = LOG_LIMIT(
    LOG_WARN, "no room for a message from redis (BEEP_MAX_MESSAGE_MEMORY)");

/*
 * Give m to the registry unless e already has id; with cl->lock held.
 * replay: the stream just subscribed whose backlog m is, or NULL.
 */
static void
delivery_publish(struct cluster *cl, struct cluster_entry *e, uint64_t id,
    struct registry_msg *m, _Atomic uint64_t *counter,
    struct registry_stream *replay)
{
	size_t len;
	const char *frame = registry_msg_frame(m, &len);
	/* Another node's reset, for what it delivered alone (moved()). */
	bool reset = len > 0 && frame[0] == 'r';
	uint64_t held;
	enum registry_error res = replay != NULL
	    ? registry_replay_at(cl->reg, replay, m, id)
	    : registry_publish_accepted_at(cl->reg, e->user, e->device, m, id);

	switch (res) {
	case REGISTRY_DUPLICATE:
		cluster_count(&cl->duplicates);
		/* At an id this node gave alone, above what it had from Redis. */
		if (reset && id > e->seen) {
			e->told = true;
			e->sync_wanted = true;
			cluster_presence_mark(cl, e);
		} else if (!reset && replay == NULL && e->local &&
		    id > e->seen && id <= e->alone &&
		    (e->collided == 0 || id < e->collided)) {
			/*
			 * Not a message it had from Redis: a lone id's (one
			 * given while e->local, at most e->alone).  Only then:
			 * a new stream's answer may lower seen below messages
			 * the channel brought, whose copies in a resync's
			 * answer would look the same, and a loss found there
			 * would reset the device's streams for nothing.
			 */
			e->collided = id;
		} else if (!reset && replay != NULL) {
			/*
			 * A new stream's backlog that the registry kept from
			 * before (its log still past where the stream starts,
			 * which cluster_delivery_apply() made e->last and
			 * e->seen): the node has it.  Left there, the next id
			 * it gave alone, e->last + 1, was a duplicate too (its
			 * POSTs 503 for as long as Redis was down), and a
			 * resync or UNSUB found what the stream had taken
			 * above seen and told a loss (until 2026-12-07).  Not
			 * seen at an id it may have given alone: Redis's entry
			 * there may be another (a collision, above).
			 */
			if (id > e->last)
				e->last = id;
			if (id > e->seen && !(e->local && id <= e->alone))
				e->seen = id;
		}
		return;
	case REGISTRY_OK:
	case REGISTRY_HELD:
		break;
	case REGISTRY_MEMORY_FULL:
		/*
		 * Accepted elsewhere (answered 200), and no room here: the
		 * device's streams must not go on past the hole.  They end,
		 * and their clients replay it from Redis; but a new stream
		 * whose replay this is starts after it with a reset (ended,
		 * it would come back to the same replay).
		 */
		/*
		 * At most once a second: a node out of memory under a stream
		 * of messages from Redis logged each one (a review).
		 */
		if (log_limit_pass(
		        &cluster_delivery_full_log, util_now_ms(), &held))
			log_warn("user %s device %s: no room for a message "
			         "from redis (BEEP_MAX_MESSAGE_MEMORY): %s "
			         "(%llu more not logged)",
			    e->user, e->device,
			    replay != NULL ? "the new stream starts after it"
			                   : "the device's streams here end",
			    (unsigned long long)held);
		/* The registry has cut the device there (see registry.h). */
		if (replay != NULL)
			e->replay_cut = id;
		return;
	default:
		return;
	}
	if (id > e->last)
		e->last = id;
	if (id > e->seen)
		e->seen = id;
	if (counter != NULL)
		cluster_count(counter);
	if (reset)
		cluster_count(&cl->resets);
}

/* Tell e's streams that messages before id were lost. */
static void
delivery_reset(struct cluster *cl, struct cluster_entry *e, uint64_t id)
{
	struct buf b = {0};
	struct registry_msg *m;

	event_pack_reset(&b, "messages were lost");
	m = registry_msg_new(b.data, b.len);
	buf_free(&b);
	/* No room even for that: the registry cuts the device there. */
	registry_publish_accepted_at(cl->reg, e->user, e->device, m, id);
	registry_msg_unref(m);
	cluster_count(&cl->resets);
}

/*
 * Apply a SUB answer {from, why, entries[, to]} to e, then what waited
 * behind its gate, and open the gate; with cl->lock held.  to: the device
 * moved there after the entries, because this node had delivered messages
 * alone (e->local); its streams here missed nothing, so they go on after
 * it without a reset (the ids between are nobody's).  fresh: the stream
 * for which the registry just started the device's log at from
 * (REGISTRY_RESUME_FROM); the entries are its backlog
 * (registry_replay_at()), which the SUB script bounds by BEEP_REPLAY_MAX
 * and BEEP_REPLAY_BYTES, not its queue.  NULL: a resubscription, whose
 * why, when not empty, puts a reset before what comes next.  stale: the
 * channel was subscribed again after the SUB was made, so what was
 * published between the two is in neither the answer nor the waiting
 * messages; then, as when waiting messages were dropped that the answer
 * does not cover, the gate stays closed and SUB goes again after what was
 * applied.
 */
void
cluster_delivery_apply(struct cluster *cl, struct cluster_entry *e,
    redisReply *r, struct registry_stream *fresh, bool stale)
{
	redisReply *list = r->element[2];
	uint64_t from = 0, to;

	/* A request's stream starts here: its UNSUB is no undoing. */
	if (fresh != NULL)
		cluster_entry_started(cl, e);
	cluster_parse_id(r->element[0]->str, &from);
	if (fresh == NULL && r->element[1]->len > 0 && from > e->last)
		delivery_reset(cl, e, from);
	if (fresh != NULL || from > e->last)
		e->last = from;
	if (fresh != NULL)
		e->began = from;
	if (fresh != NULL || from > e->seen)
		e->seen = from;
	for (size_t i = 0; i < list->elements; i++) {
		redisReply *en = list->element[i];
		struct registry_msg *m;
		uint64_t id;

		if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
		    cluster_parse_id(en->element[0]->str, &id) < 0 ||
		    en->element[1]->elements < 2)
			continue;
		m = registry_msg_new(en->element[1]->element[1]->str,
		    en->element[1]->element[1]->len);
		delivery_publish(cl, e, id, m, &cl->replayed, fresh);
		registry_msg_unref(m);
	}
	if (r->elements == 4 &&
	    cluster_parse_id(r->element[3]->str, &to) == 0) {
		if (to > e->moved)
			e->moved_below = e->last;
		if (to > e->last)
			e->last = to;
		if (to > e->seen)
			e->seen = to;
		if (to > e->moved)
			e->moved = to;
	}
	if (stale || e->seen < e->dropped) {
		e->sync_wanted = true;
		cluster_presence_mark(cl, e);
		pthread_cond_signal(&cl->wake);
		return;
	}
	while (e->waiting != NULL) {
		struct cluster_wait *w = e->waiting;

		e->waiting = w->next;
		cl->waiting_bytes -= w->cost;
		delivery_publish(cl, e, w->id, w->m, NULL, NULL);
		registry_msg_unref(w->m);
		free(w);
	}
	e->waiting_tail = NULL;
	e->nwaiting = 0;
	e->dropped = 0;
	e->gate = false;
	pthread_cond_broadcast(&cl->done);
}

/* Whether r is a well-formed SUB answer, with or without its "to". */
bool
cluster_delivery_reply_ok(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    (r->elements == 3 ||
	        (r->elements == 4 &&
	            r->element[3]->type == REDIS_REPLY_STRING)) &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    r->element[2]->type == REDIS_REPLY_ARRAY;
}

/* A message from the channel: "ID ULEN DLEN USER DEVICE FRAME". */
void
cluster_delivery_receive(struct cluster *cl, const char *p, size_t len)
{
	char idtext[CLUSTER_ID_MAX];
	unsigned long ulen, dlen;
	int off = 0;
	uint64_t id;
	struct cluster_entry *e;
	struct buf k = {0};
	struct registry_msg *m;

	/*
	 * One space after DLEN, exactly: a space in the format would skip
	 * the user's own leading spaces too (ids may begin with them), and
	 * read the user, device and frame shifted, another device's.
	 */
	if (sscanf(p, "%47s %lu %lu%n", idtext, &ulen, &dlen, &off) != 3 ||
	    off <= 0 || (size_t)off >= len || p[off] != ' ' || ulen > len ||
	    dlen > len || (size_t)off + 1 + ulen + dlen > len ||
	    cluster_parse_id(idtext, &id) < 0) {
		log_error("malformed message from redis");
		return;
	}
	off++;
	cluster_count(&cl->received);
	buf_append(&k, p + off, ulen);
	buf_puts(&k, "\x1f");
	buf_append(&k, p + off + ulen, dlen);
	m = registry_msg_new(
	    p + off + ulen + dlen, len - (size_t)off - ulen - dlen);
	pthread_mutex_lock(&cl->lock);
	HASH_FIND(hh, cl->entries, k.data, k.len, e);
	if (e != NULL && e->gate) {
		size_t flen;
		struct cluster_wait *w;

		registry_msg_frame(m, &flen);
		/* Beyond the bound, the oldest go: SUB brings them back. */
		if (e->nwaiting >= cl->max_waiting) {
			struct cluster_wait *old = e->waiting;

			e->waiting = old->next;
			if (e->waiting == NULL)
				e->waiting_tail = NULL;
			if (old->id > e->dropped)
				e->dropped = old->id;
			cl->waiting_bytes -= old->cost;
			registry_msg_unref(old->m);
			free(old);
			e->nwaiting--;
		}
		/*
		 * No room behind all gates (a quarter of
		 * BEEP_MAX_MESSAGE_MEMORY, which does not count them): m and
		 * what waited for e go, as the oldest above, and SUB brings
		 * them back (its answer, or one sent again past e->dropped),
		 * into the registry's count.  Until 2026-12-08 they were
		 * bounded per device alone: many devices subscribing while
		 * large messages came for them held max(BEEP_STREAM_QUEUE, 64)
		 * of BEEP_MAX_BODY each, past any BEEP_MAX_MESSAGE_MEMORY (a
		 * review).
		 */
		if (flen + REGISTRY_MSG_OVERHEAD + sizeof(*w) >
		    cl->max_waiting_bytes - cl->waiting_bytes) {
			uint64_t held;

			if (log_limit_pass(&cluster_delivery_gate_log,
			        util_now_ms(), &held))
				log_warn("user %s device %s: no room for a "
				         "message behind its gate "
				         "(BEEP_MAX_MESSAGE_MEMORY / 4): its "
				         "SUB goes again past it (%llu more "
				         "not logged)",
				    e->user, e->device,
				    (unsigned long long)held);
			delivery_free_waiting(cl, e);
			if (id > e->dropped)
				e->dropped = id;
			pthread_mutex_unlock(&cl->lock);
			registry_msg_unref(m);
			buf_free(&k);
			return;
		}
		w = xmalloc(sizeof(*w));
		w->id = id;
		w->m = m;
		w->cost = flen + REGISTRY_MSG_OVERHEAD + sizeof(*w);
		cl->waiting_bytes += w->cost;
		w->next = NULL;
		if (e->waiting_tail != NULL)
			e->waiting_tail->next = w;
		else
			e->waiting = w;
		e->waiting_tail = w;
		e->nwaiting++;
		m = NULL;
	} else if (e != NULL) {
		delivery_publish(cl, e, id, m, NULL, NULL);
	}
	pthread_mutex_unlock(&cl->lock);
	registry_msg_unref(m);
	buf_free(&k);
}
