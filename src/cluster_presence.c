/* cluster_presence: see cluster_presence.h. */
#include "cluster_presence.h"

#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "cluster_delivery.h"
#include "cluster_job.h"
#include "event.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "cluster"

struct cluster_entry *
cluster_presence_find(struct cluster *cl, const char *user, const char *device)
{
	struct cluster_entry *e;
	struct buf k = {0};

	buf_printf(&k, "%s\x1f%s", user, device);
	HASH_FIND(hh, cl->entries, k.data, k.len, e);
	buf_free(&k);
	return e;
}

void
cluster_presence_mark(struct cluster *cl, struct cluster_entry *e)
{
	cl->dirty = true;
	if (!e->todo) {
		e->todo = true;
		DL_APPEND2(cl->todo, e, todo_prev, todo_next);
	}
}

static void
presence_unmark(struct cluster *cl, struct cluster_entry *e)
{
	if (e->todo) {
		DL_DELETE2(cl->todo, e, todo_prev, todo_next);
		e->todo = false;
	}
}

void
cluster_presence_free(struct cluster *cl, struct cluster_entry *e)
{
	presence_unmark(cl, e);
	HASH_DEL(cl->entries, e);
	cluster_delivery_drop_waiting(cl, e);
	free(e->key);
	free(e->user);
	free(e->device);
	free(e);
}

/* Free e when nothing refers to it any more; with cl->lock held. */
void
cluster_presence_maybe_free(struct cluster *cl, struct cluster_entry *e)
{
	if (e->streams > 0 || e->jobs > 0 || e->waiters > 0 || e->registered ||
	    e->gate)
		return;
	cluster_presence_free(cl, e);
}

/*
 * The arguments that let a script tell the device's other holders that
 * this node delivered messages alone (see e->local): the flag, then (after
 * what the script takes between) the user and the reset frame to publish.
 */
static void
presence_local_args(struct cluster_job *j, struct cluster_entry *e, bool local)
{
	struct buf b = {0};

	j->local = local;
	cluster_job_str(j, e->user);
	if (local)
		event_pack_reset(&b, "messages were lost");
	cluster_job_arg(j, b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
}

/*
 * The newest id e had from Redis, as a script is to judge what never
 * reached its streams: below the lowest message from Redis its registry
 * dropped as a duplicate of a lone id (e->collided), which Redis has
 * below ids the streams took, however far seen came since.
 */
static uint64_t
presence_seen(const struct cluster_entry *e)
{
	if (e->collided != 0 && e->collided - 1 < e->seen)
		return e->collided - 1;
	return e->seen;
}

/*
 * A resync (sync) says what the device's streams here took, when that is
 * below e->last (the SUB's after), and the newest id given alone
 * (e->alone).  One that moves the device (e->local) keeps what came
 * after what they took (the channel's, held in the registry for a
 * stream whose client left, or not taken yet), and a client back from
 * there is replayed it; one that did not take the lone id, which Redis
 * never had, gets a reset first.  Until
 * 2026-12-07 the move took such a message (answered 200), told
 * (test_cluster_unsub_after_hangup_resynced).  Any resync brings the
 * device's seen down to it, which the UNSUB holds from at the lowest: a
 * later one that said nothing set seen to the move, above what it kept
 * (test_cluster_unsub_after_hangup_resynced_twice).  "" "": none.  Read by
 * the device's key, with cl->lock held: the entry's streams here open and
 * close in the registry under it (cluster_unsubscribe() reads what they
 * took as the last closes, registry_unsubscribe_taken()), so none closes
 * between this read and the job, and while one is open the registry
 * cannot forget the device; with none open it may have, and "" says
 * nothing, as before (told, not replayed).
 */
static void
presence_taken_args(struct cluster *cl, struct cluster_job *j,
    const struct cluster_entry *e, bool sync)
{
	char id[CLUSTER_ID_MAX];
	uint64_t taken = 0;

	if (sync &&
	    registry_device_taken(cl->reg, e->user, e->device, &taken)) {
		/* As cluster_unsubscribe(): below a move, nobody's ids. */
		if (taken < e->moved && taken >= e->moved_below)
			taken = e->moved;
	}
	if (taken != 0 && taken < e->last)
		cluster_format_id(taken, id, sizeof(id));
	else
		id[0] = '\0';
	cluster_job_str(j, id);
	if (id[0] != '\0')
		cluster_format_id(e->alone, id, sizeof(id));
	cluster_job_str(j, id);
}

/*
 * A job of kind running script (SUB or UNSUB) for e, with cl->lock held:
 * its four keys, the user's presence and grace hashes, then the device's
 * stream and metadata in the order the script names them (m_first: KEYS
 * u g m s, the UNSUB's; else u g s m, the SUB's: their KEYS[3] and
 * KEYS[4]), then its first two arguments, the device and this node.
 */
static struct cluster_job *
presence_job_new(struct cluster *cl, const struct cluster_entry *e,
    enum cluster_job_kind kind, enum cluster_lua script, bool m_first)
{
	struct cluster_job *j = cluster_job_new(cl, kind, script, 4);

	cluster_job_key(j, "u", e->user, NULL);
	cluster_job_key(j, "g", e->user, NULL);
	cluster_job_key(j, m_first ? "m" : "s", e->user, e->device);
	cluster_job_key(j, m_first ? "s" : "m", e->user, e->device);
	cluster_job_str(j, e->device);
	cluster_job_str(j, cl->node);
	return j;
}

/* A SUB job for e, after id ("": none), with cl->lock held. */
struct cluster_job *
cluster_presence_sub_job(struct cluster *cl, struct cluster_entry *e,
    enum cluster_job_kind kind, const char *after)
{
	struct cluster_job *j =
	    presence_job_new(cl, e, kind, CLUSTER_LUA_SUB, false);
	char seen[CLUSTER_ID_MAX];

	cluster_job_str(j, after);
	cluster_job_num(j, cl->maxlen);
	cluster_job_str(j, kind == JOB_SYNC ? "1" : "0");
	cluster_job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	/*
	 * Told (e->told): nothing seen, so the script finds messages lost.
	 * Nor past a message from Redis dropped as a duplicate of a lone
	 * id: the script finds it between that and after.
	 */
	j->told = kind == JOB_SYNC && e->told;
	cluster_format_id(j->told ? 0 : presence_seen(e), seen, sizeof(seen));
	cluster_job_str(j, seen);
	cluster_job_str(j, cl->again ? "1" : "0");
	cluster_job_num(j, cl->rebuild_ms);
	/* A request's SUB starts the device here: a resync tells. */
	cluster_job_str(j, kind == JOB_SYNC && e->local ? "1" : "0");
	presence_local_args(j, e, kind == JOB_SYNC && e->local);
	cluster_job_num(j, cl->replay_bytes);
	j->token = ++cl->sub_tokens;
	cluster_job_num(j, j->token);
	/* Undone SUBs of e whose UNSUB has not run: this one holds for them. */
	cluster_job_num(j, kind == JOB_SUB ? e->undo_lo : 0);
	cluster_job_num(j, kind == JOB_SUB ? e->undo_hi : 0);
	cluster_job_num(j, REGISTRY_MSG_OVERHEAD);
	presence_taken_args(cl, j, e, kind == JOB_SYNC);
	j->epoch = cl->sub_epoch;
	j->entry = e;
	e->jobs++;
	return j;
}

/*
 * Every entry with streams sends SUB again; with cl->lock held.  A walk of
 * every entry, on what concerns them all (a connection to Redis made
 * again, a heartbeat's finding): every one is marked, as each was looked
 * at before the command thread looked at marked ones only.
 */
void
cluster_presence_resync_all(struct cluster *cl)
{
	struct cluster_entry *e, *tmp;

	HASH_ITER(hh, cl->entries, e, tmp)
	{
		cluster_presence_mark(cl, e);
		if (e->streams == 0)
			continue;
		e->gate = true;
		e->sync_wanted = true;
	}
	cl->dirty = true;
	pthread_cond_signal(&cl->wake);
}

/* Queue what e needs (SUB again, UNSUB), or free it; with cl->lock held. */
static void
presence_reconcile_one(struct cluster *cl, struct cluster_entry *e)
{
	char after[CLUSTER_ID_MAX];

	/* Redis is back: its resync tells the other holders. */
	if (e->local && e->streams > 0 && e->jobs == 0)
		e->sync_wanted = true;
	if (e->sync_wanted && e->jobs == 0) {
		e->sync_wanted = false;
		if (e->streams > 0) {
			e->gate = true;
			cluster_format_id(e->last, after, sizeof(after));
			cluster_job_enqueue(cl,
			    cluster_presence_sub_job(cl, e, JOB_SYNC, after));
			return;
		}
		cluster_delivery_drop_waiting(cl, e);
		e->gate = false;
	}
	if (e->streams == 0 && e->registered && e->jobs == 0) {
		struct cluster_job *j =
		    presence_job_new(cl, e, JOB_UNSUB, CLUSTER_LUA_UNSUB, true);

		cluster_job_num(j, cl->grace_ms);
		cluster_job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
		/* Its streams have gone, not what they alone had. */
		cluster_job_str(j, e->local ? "1" : "0");
		cluster_format_id(e->last, after, sizeof(after));
		cluster_job_str(j, after);
		presence_local_args(j, e, e->local);
		/* Kept until its answer: a SUB meanwhile names them. */
		j->token = e->undo_hi;
		cluster_job_num(j, e->undo_lo);
		cluster_job_num(j, e->undo_hi);
		/* What its streams had: what came since is held. */
		if (e->upto != 0)
			cluster_format_id(e->upto, after, sizeof(after));
		else
			after[0] = '\0';
		cluster_job_str(j, after);
		/* What it gave alone, which Redis never had. */
		if (e->local)
			cluster_format_id(e->alone, after, sizeof(after));
		else
			after[0] = '\0';
		cluster_job_str(j, after);
		/*
		 * And the newest it had from Redis: what Redis has
		 * between it and upto never reached its streams, nor
		 * what a move or a trim put the floor above.  Told
		 * (e->told): nothing, as a resync says (another node's
		 * reset was dropped here, its lone messages may be
		 * hidden among this node's; "" said nothing of it,
		 * and a client back without an id was not told, until
		 * 2026-12-07).
		 */
		if (e->local)
			cluster_format_id(e->told ? 0 : presence_seen(e), after,
			    sizeof(after));
		else
			after[0] = '\0';
		cluster_job_str(j, after);
		/*
		 * Its request id: the same as the last UNSUB's when
		 * that one's answer was lost (it may have run), kept
		 * by Redis for as long as the node's heartbeat key
		 * could last past it.
		 */
		if (e->request == 0)
			e->request = ++cl->requests;
		cluster_job_num(j, e->request);
		cluster_job_num(j, cl->ttl_ms);
		cluster_job_num(j, CLUSTER_ANSWERS_MAX);
		/* Whether they took anything past where they began. */
		cluster_job_str(j, e->took ? "1" : "0");
		/*
		 * And where they began: what they took is what came
		 * after it, not all below it (see UNSUB's tb).
		 */
		if (e->began != 0)
			cluster_format_id(e->began, after, sizeof(after));
		else
			after[0] = '\0';
		cluster_job_str(j, after);
		j->entry = e;
		e->jobs++;
		cluster_job_enqueue(cl, j);
		return;
	}
	cluster_presence_maybe_free(cl, e);
}

void
cluster_presence_unsub_now(struct cluster *cl, struct cluster_entry *e)
{
	if (e->streams == 0 && e->registered && e->jobs == 0)
		presence_reconcile_one(cl, e);
}

/*
 * Queue what the entries need (SUB again, UNSUB); with cl->lock held.
 * The UNSUBs sent again (e->request: the answer of the one before lost
 * with the connection) go first: Redis keeps the newest answers only
 * (CLUSTER_ANSWERS_MAX, then half that), and after an outage on a large
 * node more than half that many new UNSUBs, sent before, trimmed the
 * kept answer, and the one sent again ran again: a lone-delivery UNSUB
 * moved the device again, a reset for clients that lost nothing
 * (test_cluster_unsub_resent_first; until 2026-12-07).  Redis runs them in
 * the order sent (one connection, pipelined).
 */
void
cluster_presence_reconcile(struct cluster *cl)
{
	struct cluster_entry *e, *tmp;

	/*
	 * The marked entries alone (cl->todo): a walk of every entry of the
	 * node, twice, on each device's first stream here and last close,
	 * held cl->lock for O(devices here) per stream (up to
	 * BEEP_MAX_STREAMS; test_cluster_reconcile_walk, until 2026-12-08).
	 * An entry changes only where it is marked, and one looked at that
	 * needs more later (its job on its way, refused) is marked again by
	 * what comes of it (its answer).
	 */
	cl->dirty = false;
	for (e = cl->todo; e != NULL; e = tmp) {
		tmp = e->todo_next;
		cl->reconciled++;
		if (e->request != 0) {
			presence_unmark(cl, e);
			presence_reconcile_one(cl, e);
		}
	}
	while ((e = cl->todo) != NULL) {
		cl->reconciled++;
		presence_unmark(cl, e);
		presence_reconcile_one(cl, e);
	}
}

/*
 * Whether r is an error Redis gives before a script runs (then it did not
 * run at all), rather than one a script raised as it ran.
 */
static bool
presence_not_run(const redisReply *r)
{
	static const char *const before[] = {"NOSCRIPT", "BUSY", "LOADING",
	    "OOM", "READONLY", "NOPERM", "MASTERDOWN", "NOREPLICAS", "MISCONF"};

	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return false;
	for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
		size_t n = strlen(before[i]);

		if (strncmp(r->str, before[i], n) == 0 &&
		    (r->str[n] == ' ' || r->str[n] == '\0'))
			return true;
	}
	return false;
}

/*
 * A registration (SUB again, UNSUB) Redis answered: refused with an
 * error, the next ones wait, longer each time (see cl->retry_at); a
 * connection lost instead is made again with its own backoff.
 */
static void
presence_retry(struct cluster *cl, const redisReply *r, bool ok)
{
	if (ok) {
		cl->retry_ms = 0;
		cl->retry_at = 0;
		return;
	}
	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return;
	cl->retry_ms = cl->retry_ms == 0                ? CLUSTER_BACKOFF_MIN_MS
	    : cl->retry_ms * 2 > CLUSTER_BACKOFF_MAX_MS ? CLUSTER_BACKOFF_MAX_MS
	                                                : cl->retry_ms * 2;
	cl->retry_at = util_now_ms() + cl->retry_ms;
}

/*
 * The generation of a heartbeat's "resync, and tell" ({2, gen}, see the
 * beat script), or 0 for any other answer.
 */
static uint64_t
presence_beat_tell(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[0]->integer != 2 ||
	    r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->integer <= 0)
		return 0;
	return (uint64_t)r->element[1]->integer;
}

/*
 * The log's word that a device's resync found a gap (why: messages lost,
 * dropped while away...), its streams told: a Redis that lost its data
 * makes every device with streams here resync at once, as many as
 * BEEP_MAX_STREAMS, so at most once a second, the rest counted (each
 * stream gets its reset all the same).
 */
static void
presence_log_resync(const struct cluster_entry *e, const char *why)
{
	static struct log_limit limit = LOG_LIMIT(
	    LOG_WARN, "a device's resync found a gap, its streams told");
	uint64_t held;

	if (log_limit_pass(&limit, util_now_ms(), &held))
		log_warn("user %s device %s: resync: %s (%llu more not logged)",
		    e->user, e->device, why, (unsigned long long)held);
}

/*
 * What an answer (j->reply, NULL when the job failed) does to the entries
 * and the node's registration; with cl->lock held.
 */
void
cluster_presence_answer(struct cluster *cl, struct cluster_job *j)
{
	struct cluster_entry *e = j->entry;
	redisReply *r = j->reply;
	bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;

	switch (j->kind) {
	case JOB_SUB:
	case JOB_SYNC:
		/*
		 * Sent after an UNSUB whose answer was lost: the next UNSUB is
		 * another request (this SUB may have registered the node
		 * again), which an answer Redis kept for the first must not
		 * stand for.  One never sent changed nothing in Redis.
		 */
		if (j->sent)
			e->request = 0;
		ok = ok && cluster_delivery_reply_ok(r);
		/*
		 * Sent and not answered, or answered with what a script that
		 * ran may leave (an error it raised after its first write):
		 * Redis may have run it, and then holds the node as the
		 * device's holder until an UNSUB says otherwise (every POST to
		 * it 200, lost).  Registered, then, as far as we know: the
		 * UNSUB is sent when no stream is left, and does nothing where
		 * the SUB did not run.
		 */
		if (ok || (j->sent && !presence_not_run(r)))
			e->registered = true;
		/* The other holders were told (whatever becomes of e). */
		if (ok && j->local) {
			e->local = false;
			e->collided = 0;
		}
		if (ok && j->told)
			e->told = false;
		if (j->kind == JOB_SUB && !j->abandoned) {
			/* Its request applies it, then lets go of e (jobs). */
			pthread_cond_broadcast(&cl->done);
			break;
		}
		e->jobs--;
		if (j->kind == JOB_SYNC)
			presence_retry(cl, r, ok);
		if (ok && e->streams > 0 && !j->abandoned) {
			if (r->element[1]->len > 0)
				presence_log_resync(e, r->element[1]->str);
			cluster_delivery_apply(
			    cl, e, r, NULL, j->epoch != cl->sub_epoch);
		} else if (!ok && e->streams > 0 && j->kind == JOB_SYNC) {
			/* Again once connected; the gate stays. */
			e->sync_wanted = true;
		} else if (e->jobs == 0) {
			/* No other SUB on its way needs the gate. */
			cluster_delivery_drop_waiting(cl, e);
			e->gate = false;
		}
		cluster_presence_mark(cl, e);
		pthread_cond_broadcast(&cl->done);
		break;
	case JOB_UNSUB:
		e->jobs--;
		presence_retry(cl, r, ok);
		/*
		 * Answered, it is done (an error answer kept nothing): the
		 * next UNSUB is a new request.  Lost, the next one is this
		 * one again (see e->request).
		 */
		if (r != NULL)
			e->request = 0;
		if (ok) {
			e->registered = false;
			/* Its field is gone: what failed since is still undone. */
			if (e->undo_hi == j->token)
				e->undo_lo = e->undo_hi = 0;
			else if (e->undo_lo <= j->token)
				e->undo_lo = j->token + 1;
		}
		if (ok && j->local) {
			e->local = false;
			e->collided = 0;
		}
		cluster_presence_mark(cl, e);
		/* A stream opening meanwhile waits for it (cluster_subscribe()). */
		pthread_cond_broadcast(&cl->done);
		break;
	case JOB_BEAT:
		/*
		 * The key was gone: Redis restarted, or we were away (and
		 * our registrations may have been swept); or an earlier
		 * heartbeat's answer was lost, which may have said so.
		 */
		if (!ok) {
			if (j->sent)
				cl->beat_unknown = true;
			break;
		}
		/* Its acknowledgement ran (see the beat script). */
		if (j->token == cl->tell_ack)
			cl->tell_ack = 0;
		if (presence_beat_tell(r) != 0) {
			/*
			 * Another node found that Redis lost messages it had
			 * accepted (PRUNE): every stream here is told, also
			 * one whose newest id from Redis is above the new
			 * base (posted to since the finding).  Acknowledged
			 * by the next heartbeat, the told flags holding it
			 * here meanwhile; told once, also when Redis says it
			 * again (that acknowledgement lost before it ran: a
			 * second reset would be told).  The answer does not
			 * say whether the key was there: a resync all the
			 * same.
			 */
			struct cluster_entry *e2, *tmp;
			uint64_t gen = presence_beat_tell(r);

			if (gen != cl->tell_done) {
				HASH_ITER(hh, cl->entries, e2, tmp)
				{
					if (e2->streams > 0)
						e2->told = true;
				}
				cl->tell_done = gen;
			}
			cl->tell_ack = gen;
			cluster_presence_resync_all(cl);
		}
		if (cl->beat_unknown ||
		    (r->type == REDIS_REPLY_INTEGER && r->integer != 1))
			cluster_presence_resync_all(cl);
		cl->beat_unknown = false;
		cl->again = true;
		break;
	case JOB_PRUNE:
		/*
		 * Not run, or not known to have run: again, after the
		 * registrations' backoff when refused (a connection lost
		 * instead: the next one).
		 */
		cl->prune_queued = false;
		presence_retry(cl, r, ok);
		if (!ok)
			cl->prune_again = true;
		else if (r->type == REDIS_REPLY_INTEGER && r->integer == 2)
			log_warn("redis came back with older data: messages "
			         "it had accepted are lost, and the streams "
			         "of their devices are told (event: reset)");
		break;
	case JOB_POST:
		/*
		 * {status, id, w, born}: the count of accepted messages of
		 * the data that began at born (for PRUNE).  Noted here, in
		 * the order of the answers: a count from before a flush does
		 * not outlive the data after it.
		 */
		if (ok && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
		    r->element[2]->type == REDIS_REPLY_INTEGER &&
		    r->element[3]->type == REDIS_REPLY_STRING) {
			uint64_t w = (uint64_t)r->element[2]->integer;
			uint64_t born = strtoull(r->element[3]->str, NULL, 10);

			if (born != cl->wrote_born ||
			    strcmp(cl->run, cl->wrote_run) != 0) {
				cl->wrote_born = born;
				memcpy(cl->wrote_run, cl->run, sizeof(cl->run));
				cl->wrote = w;
			} else if (w > cl->wrote) {
				cl->wrote = w;
			}
		}
		break;
	case JOB_LIST:
	case JOB_BYE:
		break;
	}
}
