/*
 * cluster: see cluster.h.
 *
 * DESIGN
 *
 * Redis keys (USER and DEVICE are ids without control characters, so
 * "\x1f" separates them; NODE is this process's random id):
 *   beep:n:NODE          the node is alive: refreshed every ttl/3, PX ttl
 *   beep:u:USER          hash: "DEVICE\x1fNODE" -> "MARK TOKEN" per node
 *                        holding a live stream of DEVICE (MARK and
 *                        TOKEN: its last SUB's, see the SUB script)
 *   beep:r:NODE          set: the users whose devices NODE registers in
 *                        beep:u (for the sweep of a dead node's fields)
 *   beep:nodes           set: every node not yet swept
 *   beep:beat            hash: NODE -> when it last beat (ms), until swept
 *   beep:g:USER          hash: DEVICE -> when its grace period ends (ms)
 *   beep:s:USER\x1fDEV   stream of the device's messages, field "f" the
 *                        packed event; trimmed to replay_max entries and
 *                        to max(replay, grace) seconds, expires likewise
 *   beep:m:USER\x1fDEV   hash: last (newest id), floor (newest id
 *                        trimmed), held (where its grace began: last,
 *                        or before a dead holder's last heartbeat, not
 *                        below took), seen (where its last stream began,
 *                        or last when one that served it left), took
 *                        (what a served UNSUB's streams took, the most
 *                        of them: the floor of a hold), tb (where the
 *                        streams that took up to took began: below it
 *                        a stream may have taken nothing, and a hold
 *                        from below tb does not rise to took), mv (the
 *                        last move a resync made, for that resync sent
 *                        again: see the SUB script), hk (what a
 *                        lone-delivery UNSUB's move kept below it for
 *                        the device's return: see the UNSUB script),
 *                        ow (what a node that left while another held
 *                        the device had taken: the grace period that
 *                        follows holds from no higher, see UNSUB)
 *   beep:ws:USER\x1fDEV  stream: the sender of each held POST's entry
 *                        (same id, field "s"), for the sender share;
 *                        trimmed to replay_max, expires as beep:s
 *   beep:wc:USER\x1fDEV  hash: SENDER -> the entries of beep:ws it holds
 *                        from f to l (fields f and l): the share's
 *                        counts, kept for the next POST to follow (see
 *                        POST); PX 10 s at most, no longer than beep:ws
 *   beep:k:USER\x1fDEV\x1fSENDER\x1fKEY  string: the id of the entry a
 *                        POST with idempotency key KEY (its text) added,
 *                        posted by SENDER (cluster_sender(), hex); PX
 *                        keep_ms, as the entry (see POST)
 *   beep:c:NODE          pub/sub channel of the messages for the node
 *   beep:tell            hash: NODE -> the generation of a loss found
 *                        (PRUNE) that it is to tell its streams of, until
 *                        its heartbeat acknowledges it
 *   beep:q:NODE          hash: request id -> the answer of NODE's UNSUB,
 *                        for the same UNSUB sent again; PX ttl past the
 *                        last, at most CLUSTER_ANSWERS_MAX (see UNSUB)
 *   beep:found           a PRUNE found the data short and began it
 *                        afresh: streams may keep entries below
 *                        beep:born, which SUB looks for only while this
 *                        is there; PX a day and the retention
 * Each operation is one Lua script (atomic, in Redis's order): POST
 * checks the holders (dropping those of dead nodes, whose devices enter
 * their grace period), appends to the stream (XADD: the entry id is the
 * event id, increasing per device) and publishes "ID ULEN DLEN USER
 * DEVICE FRAME" to each live holder, in the same order as the ids.  SUB
 * registers the node as a holder and returns where the stream starts and
 * what it must replay (XRANGE after the client's id, or after what was
 * held); UNSUB removes it and starts the grace period when no holder is
 * left; LIST reads the live holders; BEAT refreshes the node's key and
 * sweeps what dead nodes registered; BYE, at a stop, removes the node's
 * key and heartbeat (see cluster_lua.c).
 *
 * In this process an entry (struct cluster_entry) per device with
 * streams here counts them.  The first stream of a device here sends SUB;
 * further ones are served by the registry alone.  While an entry's gate
 * is closed (a SUB on its way), messages from the channel wait in the
 * entry; the SUB's answer is published first, then what waited, so the
 * registry sees each device's ids in increasing order; an id not above
 * the last it has is dropped (registry_publish_at()): exactly once.
 * When the subscription is made again (Redis lost, restarted), or the
 * node's key was found missing, every gate closes and each entry sends
 * SUB again after the last id it has: what the channel lost is replayed.
 * A SUB made before the channel's latest subscription (its epoch) does
 * not cover what was published between the two: its answer is applied
 * but the gate stays closed and SUB goes again; likewise when messages
 * were dropped from a full gate that the answer does not cover.
 *
 * Redis losing its data.  beep:born says when the present Redis data
 * began; its ids are above it.  An entry remembers the newest id it had
 * from Redis (seen) besides the newest it gave (last, which counts ids
 * given while Redis was down).  A resync whose seen is below beep:born
 * or the trimmed floor, or that finds stream entries between seen and
 * last (accepted, never sent here, now below ids given here), cannot
 * deliver them in order: the device moves to a new position above
 * everything, and its streams here get `event: reset` there; or, when
 * every id given here is below the floor (another node's move, say),
 * the reset is at the floor, and the device does not move again.
 *
 * Modules.  cluster.c: the API (cluster.h) and the lifecycle;
 * cluster_publish: a POST (the script, the sender's name, the delivery
 * here alone while Redis is down); cluster_redis: the connections, the two threads, backoff, the state
 * log; cluster_job: commands and the wait for their answers;
 * cluster_presence: the entries and their registration (SUB, UNSUB,
 * resync); cluster_delivery: from Redis into the registry (gate, replay,
 * channel, reset); cluster_lua: the scripts.  cluster_impl.h holds the
 * state they share, and with it hiredis.
 *
 * Threads and locking.  Two threads do all Redis I/O: the command thread
 * (a queue of jobs, sent pipelined on one connection; the heartbeat; the
 * entries' registrations) and the subscriber thread (the channel).
 * cl->lock guards the queue, the entries and their waiting messages; it
 * is never held across Redis I/O.  The registry is called with cl->lock
 * held (lock order: cl->lock, then the registry's), so a device's
 * messages reach the registry in order; a stream the registry alone
 * serves opens there, and every stream closes there, with it held too,
 * so that an entry's count of streams and its device's in the registry
 * move together (what the device's streams took is read as the last
 * closes, before the registry may forget the device).  A request thread waits at most
 * redis_timeout for its job (on the job's own condition variable), or
 * for a gate to open (on cl->done), then gives up (a job is then the
 * command thread's to free).  Counters are atomics.
 *
 * Redis down: what needs it answers 503 at once; a POST to a device with
 * a live stream here is delivered here, with the next id after the last
 * one the device has.  No other node's stream of the device has it, and
 * Redis never saw it, so the entry remembers (local) until Redis is back:
 * then its resync (or, its streams gone, its UNSUB) moves the device to a
 * new position above every id it and Redis gave (the stream's last and
 * floor; the entries below it go, but what the resync's answer replays,
 * or what came after what the node's streams took, which the resync or
 * the UNSUB says, held for the device's return)
 * and publishes a reset there to every other holder.  A holder not listening then finds the floor above what
 * it had when it resubscribes, and gets its reset from SUB.  A holder that
 * gave more ids alone has that id already and drops the reset as a
 * duplicate: it notes it (told), and its resync reports nothing seen, so
 * that SUB gives its streams the reset.  This node's streams missed
 * nothing of it: they go on after the new position without a reset.  A
 * resync whose answer is lost is sent again unchanged (the gate stays
 * closed, e->local and the ids as they were): Redis recognises its own
 * move and answers as the first time, with what came since, rather than
 * move again past what the lost answer replayed.  An UNSUB whose answer
 * is lost is sent again with the same request id (e->request), and Redis
 * gives the answer it kept rather than run it again (move, tell again).
 */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_delivery.h"
#include "cluster_impl.h"
#include "cluster_job.h"
#include "cluster_presence.h"
#include "cluster_redis.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "cluster"

/* The id is MS << CLUSTER_SEQ_BITS | SEQ. */
#define CLUSTER_SEQ_BITS 20
#define CLUSTER_MS_MAX (UINT64_C(1) << (64 - CLUSTER_SEQ_BITS))

/* Digits at *p into *v, below max; advances *p.  Returns -1 for none. */
static int
cluster_parse_num(const char **p, uint64_t max, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		*v = *v * 10 + (uint64_t)(*s - '0');
		if (*v >= max)
			return -1;
	}
	*p = s;
	return 0;
}

int
cluster_parse_id(const char *s, uint64_t *id)
{
	uint64_t ms, seq;

	if (s == NULL || cluster_parse_num(&s, CLUSTER_MS_MAX, &ms) < 0 ||
	    *s++ != '-' ||
	    cluster_parse_num(&s, UINT64_C(1) << CLUSTER_SEQ_BITS, &seq) < 0 ||
	    *s != '\0')
		return -1;
	*id = ms << CLUSTER_SEQ_BITS | seq;
	return 0;
}

void
cluster_format_id(uint64_t id, char *out, size_t size)
{
	snprintf(out, size, "%" PRIu64 "-%" PRIu64, id >> CLUSTER_SEQ_BITS,
	    id & ((UINT64_C(1) << CLUSTER_SEQ_BITS) - 1));
}

/*
 * url into cl's connection settings (cluster_redis_parse_url()), or -1
 * after logging why, never with its password.
 */
static int
cluster_parse_url(struct cluster *cl, const char *url)
{
	char shown[256];

	if (cluster_redis_parse_url(cl, url) == 0)
		return 0;
	cluster_redis_url_for_log(url, shown, sizeof(shown));
	log_error("--redis-url %s: expected "
	          "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
	          "unix://[[USER]:PASSWORD@]/PATH",
	    shown);
	cluster_redis_forget_url(cl);
	return -1;
}

int
cluster_check(const struct config *c)
{
	struct cluster cl = {0};

	if (c->redis_url == NULL || c->redis_url[0] == '\0')
		return 0;
	if (cluster_parse_url(&cl, c->redis_url) < 0)
		return -1;
	cluster_redis_forget_url(&cl);
	return 0;
}

/*
 * Free what cluster_new() made first: the locks, the connection settings
 * and cl.  Its threads and pipe are gone already, or were never made.
 */
static void
cluster_destroy(struct cluster *cl)
{
	pthread_cond_destroy(&cl->wake);
	pthread_cond_destroy(&cl->sub_wake);
	pthread_cond_destroy(&cl->done);
	pthread_mutex_destroy(&cl->lock);
	cluster_redis_forget_url(cl);
	free(cl);
}

struct cluster *
cluster_new(const struct config *c, struct registry *reg)
{
	struct cluster *cl = xcalloc(1, sizeof(*cl));
	char host[40] = "", url[256];
	pthread_condattr_t attr;
	int rc;

	/* Never its password in the log. */
	cluster_redis_url_for_log(c->redis_url, url, sizeof(url));
	cl->reg = reg;
	if (cluster_parse_url(cl, c->redis_url) < 0) {
		free(cl);
		return NULL;
	}
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f)
			*p = '_';
	snprintf(cl->node, sizeof(cl->node), "%s-%d-%08lx", host, (int)getpid(),
	    (unsigned long)random());
	cl->ttl_ms = c->cluster_ttl * 1000;
	cl->timeout_ms = c->redis_timeout;
	cl->maxlen = c->replay_max;
	cl->share_on = c->sender_share < 100;
	/* As the registry counts it (registry_log_crowds()). */
	cl->share = cl->share_on
	    ? registry_sender_share(cl->maxlen, c->sender_share)
	    : cl->maxlen;
	/* 0, as in the registry: no limit (a number Lua holds exactly). */
	cl->replay_bytes =
	    c->replay_bytes != 0 ? c->replay_bytes : (size_t)1 << 52;
	cl->max_waiting = c->queue_messages > 64 ? c->queue_messages : 64;
	cl->max_waiting_bytes =
	    c->max_message_memory != 0 ? c->max_message_memory / 4 : SIZE_MAX;
	cl->grace_ms = (uint64_t)c->grace_seconds * 1000;
	cl->keep_ms = (uint64_t)(c->replay_seconds > c->grace_seconds
	                      ? c->replay_seconds
	                      : c->grace_seconds) *
	    1000;
	if (cl->keep_ms < 1000)
		cl->keep_ms = 1000;
	/* Every node beats again within it after Redis comes back. */
	cl->rebuild_ms =
	    cl->ttl_ms + CLUSTER_BACKOFF_MAX_MS + 2 * cl->timeout_ms;
	pthread_mutex_init(&cl->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->wake, &attr);
	pthread_cond_init(&cl->sub_wake, &attr);
	pthread_cond_init(&cl->done, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&cl->cmd_up, false);
	atomic_init(&cl->sub_up, false);
	atomic_init(&cl->sender_seq, 0);
	for (size_t i = 0; i < KEYED_HASH_KEY_BYTES / 8; i++)
		atomic_init(&cl->sender_key[i], 0);
	log_info("cluster node %s, redis %s", cl->node, url);
	if (pipe2(cl->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		log_error("pipe2: %s: the cluster's threads could not start",
		    strerror(errno));
		goto fail;
	}
	/*
	 * Both threads or none: a node without them would say it is ready
	 * and answer every request 503 for good (test 82).
	 */
	rc = pthread_create(&cl->cmd_thread, NULL, cluster_redis_cmd_main, cl);
	if (rc == 0) {
		rc = pthread_create(
		    &cl->sub_thread, NULL, cluster_redis_sub_main, cl);
		if (rc != 0) {
			pthread_mutex_lock(&cl->lock);
			cl->stop = true;
			pthread_cond_broadcast(&cl->wake);
			pthread_mutex_unlock(&cl->lock);
			pthread_join(cl->cmd_thread, NULL);
		}
	}
	if (rc != 0) {
		log_error("pthread_create: %s: the cluster's threads could "
		          "not start",
		    strerror(rc));
		goto fail_pipe;
	}
	return cl;

fail_pipe:
	close(cl->stop_pipe[0]);
	close(cl->stop_pipe[1]);
fail:
	cluster_destroy(cl);
	return NULL;
}

void
cluster_stop(struct cluster *cl)
{
	pthread_mutex_lock(&cl->lock);
	if (!cl->leaving) {
		cl->leaving = true;
		cluster_redis_bye(cl);
		/* A page waiting in cluster_subscribe() is refused now. */
		pthread_cond_broadcast(&cl->done);
	}
	pthread_mutex_unlock(&cl->lock);
}

void
cluster_free(struct cluster *cl)
{
	struct cluster_entry *e, *tmp;

	if (cl == NULL)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->stop = true;
	pthread_cond_broadcast(&cl->wake);
	pthread_cond_broadcast(&cl->sub_wake);
	pthread_mutex_unlock(&cl->lock);
	/*
	 * The channel's thread may be in poll(): wake it now.  The byte is
	 * only a wake-up, never read (a full pipe would do as well).
	 */
	(void)!write(cl->stop_pipe[1], "", 1);
	pthread_join(cl->cmd_thread, NULL);
	pthread_join(cl->sub_thread, NULL);
	close(cl->stop_pipe[0]);
	close(cl->stop_pipe[1]);
	HASH_ITER(hh, cl->entries, e, tmp)
	{
		cluster_presence_free(cl, e);
	}
	cluster_destroy(cl);
}

static bool
cluster_is_up(struct cluster *cl)
{
	return atomic_load(&cl->cmd_up) && atomic_load(&cl->sub_up);
}

/* Static reasons for registry_start: it keeps the pointer. */
static const char *
cluster_reason(const char *why)
{
	static const char *const reasons[] = {"unknown event id",
	    "event id too old", "messages were dropped while away"};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(why, reasons[i]) == 0)
			return reasons[i];
	return "messages were lost";
}

struct registry_stream *
cluster_subscribe(struct cluster *cl, const char *user, const char *device,
    const struct registry_resume *resume, struct registry_start *start,
    struct cluster_entry **ref, enum registry_error *err, bool *down)
{
	struct registry_resume from = {.kind = REGISTRY_RESUME_FROM};
	struct registry_stream *s;
	struct cluster_entry *e;
	struct cluster_job *j;
	struct timespec ts;
	char after[CLUSTER_ID_MAX] = "";
	const char *why;

	*down = false;
	*ref = NULL;
	pthread_mutex_lock(&cl->lock);
	e = cluster_presence_find(cl, user, device);
	if (e == NULL) {
		struct buf k = {0};

		e = xcalloc(1, sizeof(*e));
		buf_printf(&k, "%s\x1f%s", user, device);
		e->key = xmemdup(k.data, k.len);
		buf_free(&k);
		e->user = xstrdup(user);
		e->device = xstrdup(device);
		HASH_ADD_KEYPTR(hh, cl->entries, e->key, strlen(e->key), e);
	}
	/*
	 * Another stream of the device is syncing here: wait for it, e held
	 * (its SUB may fail, and whoever has the lock first then may free e).
	 * So too for a job of the device on its way (its resync, a SUB) when
	 * its last stream here has closed since: its UNSUB waits for that
	 * job's answer, and this SUB, queued behind the job, found the node
	 * still the device's holder and started from its last; what the
	 * node's registry held untaken for the device was lost for this
	 * client, untold (test_cluster_reopen_during_resync; until
	 * 2026-12-07).  Once it is answered, the UNSUB goes first (below).
	 */
	cluster_job_deadline(cl, &ts);
	e->waiters++;
	while (
	    ((e->streams > 0 && e->gate) || (e->streams == 0 && e->jobs > 0)) &&
	    cluster_is_up(cl) && !cl->leaving) {
		if (pthread_cond_timedwait(&cl->done, &cl->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	e->waiters--;
	/*
	 * The node stops: refused now, as the registry, which closes next,
	 * would refuse it.  The wait outlasted the stop: the process exits
	 * MAIN_STOP_TIMEOUT_MS after SIGTERM, before BEEP_REDIS_TIMEOUT's
	 * default, and the client had no answer at all; nor does a SUB go
	 * after the node's BYE (test_cluster_reopen_wait_stop; until
	 * 2026-12-07).
	 */
	if (cl->leaving) {
		cluster_presence_maybe_free(cl, e);
		pthread_mutex_unlock(&cl->lock);
		*err = REGISTRY_CLOSED;
		return NULL;
	}
	if (e->streams > 0 && !e->gate) {
		/*
		 * The registry alone: it has the device's recent messages.
		 * With cl->lock held, as a stream closes (cluster_unsubscribe()):
		 * the device's last stream in the registry cannot close between
		 * this count and the registry's, leaving the registry to forget
		 * the device (its grace period over) and this stream to start a
		 * new one without what was held for it, and the cluster, this
		 * stream counted, to tell Redis nothing (until 2026-12-07).
		 */
		e->streams++;
		s = registry_subscribe(
		    cl->reg, user, device, resume, start, err);
		if (s == NULL) {
			e->streams--;
			cluster_presence_mark(cl, e);
			pthread_cond_signal(&cl->wake);
		} else {
			*ref = e;
			cluster_entry_started(cl, e);
		}
		pthread_mutex_unlock(&cl->lock);
		return s;
	}
	/* A job of it still on its way: its UNSUB cannot go first. */
	if (!atomic_load(&cl->cmd_up) || e->streams > 0 || e->jobs > 0) {
		cluster_presence_maybe_free(cl, e);
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		*down = true;
		return NULL;
	}
	/*
	 * Refused here, registered in Redis first: the SUB has ended the
	 * device's grace period (its UNSUB gives it back: e->undo_lo) and made
	 * the node its holder meanwhile (POSTs 200, to no stream).  So not
	 * registered at all where the registry says so before.
	 */
	if (!registry_admits(cl->reg, user, device, err)) {
		cluster_presence_maybe_free(cl, e);
		pthread_mutex_unlock(&cl->lock);
		return NULL;
	}
	/*
	 * Its last stream here closed and its UNSUB is not queued yet (the
	 * command thread reads a batch, or waits out a refusal): queued
	 * now, before this SUB.  Otherwise this SUB found the node still
	 * the device's holder and started from its last, and no UNSUB ever
	 * went: what the node's registry held untaken for the device (a
	 * POST after the closed stream's client left) was lost for this
	 * client, without an id, untold, and for every later one
	 * (test_cluster_reopen_before_unsub; until 2026-12-07).
	 */
	cluster_presence_unsub_now(cl, e);
	if (resume->kind == REGISTRY_RESUME_AT)
		cluster_format_id(resume->id, after, sizeof(after));
	e->streams++;
	e->gate = true;
	j = cluster_presence_sub_job(cl, e, JOB_SUB, after);
	if (!cluster_job_call(cl, j) || !cluster_delivery_reply_ok(j->reply)) {
		/*
		 * It may have run, or still run: then its UNSUB gives the
		 * grace back (where it did not, its token is not found).
		 */
		cluster_entry_undo(e, j->token);
		if (j->done) {
			e->jobs--;
			cluster_job_free(j);
		}
		e->streams--;
		if (e->jobs == 0) {
			cluster_delivery_drop_waiting(cl, e);
			e->gate = false;
		}
		cluster_presence_mark(cl, e);
		pthread_cond_signal(&cl->wake);
		/* Another stream of e may wait for this SUB: it need not now. */
		pthread_cond_broadcast(&cl->done);
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		*down = true;
		return NULL;
	}
	pthread_mutex_unlock(&cl->lock);
	/* Its gate is closed: what comes meanwhile waits for us. */
	if (cluster_parse_id(j->reply->element[0]->str, &from.id) < 0)
		from.id = 0;
	why = j->reply->element[1]->str;
	if (resume->kind == REGISTRY_RESUME_UNKNOWN && why[0] == '\0')
		why = "unknown event id";
	s = registry_subscribe(cl->reg, user, device, &from, start, err);
	pthread_mutex_lock(&cl->lock);
	e->jobs--;
	cluster_presence_mark(cl, e);
	pthread_cond_signal(&cl->wake);
	if (s == NULL) {
		e->streams--;
		cluster_entry_undo(e, j->token);
		cluster_delivery_drop_waiting(cl, e);
		e->gate = false;
		cluster_presence_mark(cl, e);
		pthread_cond_signal(&cl->wake);
		pthread_cond_broadcast(&cl->done);
	} else {
		if (why[0] != '\0' && !start->reset) {
			start->reset = true;
			start->reason = cluster_reason(why);
			cluster_count(&cl->resets);
		}
		e->replay_cut = 0;
		cluster_delivery_apply(
		    cl, e, j->reply, s, j->epoch != cl->sub_epoch);
		if (e->replay_cut != 0) {
			/* No room for all of it: after the hole, told. */
			if (!start->reset)
				cluster_count(&cl->resets);
			start->reset = true;
			start->reason = "messages were lost";
			start->id = e->replay_cut;
			e->replay_cut = 0;
		}
		*ref = e;
	}
	pthread_mutex_unlock(&cl->lock);
	cluster_job_free(j);
	return s;
}

void
cluster_unsubscribe(
    struct cluster *cl, struct cluster_entry *e, struct registry_stream *s)
{
	uint64_t taken = 0;
	bool last;

	if (e == NULL) {
		registry_unsubscribe(cl->reg, s);
		return;
	}
	/*
	 * The stream closes in the registry with cl->lock held, as its
	 * count here goes down: when it is the device's last here, it is its
	 * last in the registry too, and what its streams took is read as it
	 * closes.
	 * Read afterwards, it could be gone: the registry forgets a device
	 * whose grace period ended while its last stream's thread finished a
	 * write that blocked (BEEP_WRITE_TIMEOUT, longer than
	 * BEEP_GRACE_SECONDS may be), and once it has no stream, a sweep, a
	 * POST or a new device past BEEP_MAX_DEVICES may forget it.  The
	 * UNSUB then held from e->last, and what the channel had brought for
	 * the device's return was lost, untold (until 2026-12-07).
	 * registry_unsubscribe() waits for no publisher here: they all
	 * publish with cl->lock held.
	 */
	pthread_mutex_lock(&cl->lock);
	/*
	 * What the registry holds for the device Redis has too, and holds
	 * for its next stream after the UNSUB (taken): not lost, unless this
	 * node gave some alone (e->local), which Redis never had.  Counted
	 * as dropped when the registry forgot the device here (until
	 * 2026-12-07).
	 */
	last = registry_unsubscribe_taken(cl->reg, s, &taken, !e->local);
	if (--e->streams == 0) {
		/*
		 * What its streams took, not all the registry was given: one
		 * that ended before this (its client left, its expiry passed,
		 * it overflowed or was replaced) took nothing the channel
		 * brought meanwhile, and the registry holds that for the
		 * device's next stream.  Said to Redis, the UNSUB holds it for
		 * a stream on any node, this one's too (its SUB starts where
		 * Redis says).
		 */
		e->upto = e->last;
		/* Not known (no taken): said taken, as before. */
		e->took = !last || taken == 0 || taken > e->began;
		if (last && taken != 0) {
			/*
			 * Not below a move: a client would be told of a loss;
			 * unless its streams had not taken all the registry
			 * had below it (a POST that came after a stream's
			 * client left, before the move): then Redis holds from
			 * below the move, and replays what the move kept (the
			 * resync said what the streams took), or tells when a
			 * trim took it since.
			 */
			if (taken < e->moved && taken >= e->moved_below)
				taken = e->moved;
			if (taken < e->upto)
				e->upto = taken;
		}
		cluster_presence_mark(cl, e);
		pthread_cond_signal(&cl->wake);
	}
	pthread_mutex_unlock(&cl->lock);
}

/* cluster_devices(), and with device, that device too in its grace. */
static int
cluster_list(struct cluster *cl, const char *user, const char *device,
    char ***names, size_t *n)
{
	struct cluster_job *j;
	redisReply *r;
	int rc = -1;

	*names = NULL;
	*n = 0;
	if (!atomic_load(&cl->cmd_up)) {
		cluster_count(&cl->unreachable);
		return -1;
	}
	pthread_mutex_lock(&cl->lock);
	j = cluster_job_new(cl, JOB_LIST, CLUSTER_LUA_LIST, 2);
	cluster_job_key(j, "u", user, NULL);
	cluster_job_key(j, "g", user, NULL);
	cluster_job_str(j, user);
	cluster_job_num(j, cl->grace_ms);
	cluster_job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	if (device != NULL)
		cluster_job_str(j, device);
	if (!cluster_job_call(cl, j)) {
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		return -1;
	}
	pthread_mutex_unlock(&cl->lock);
	r = j->reply;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
		if (r->elements > 0)
			*names = xmalloc(r->elements * sizeof(**names));
		for (size_t i = 0; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				(*names)[(*n)++] = xstrdup(r->element[i]->str);
		rc = 0;
	} else {
		/* Or 503: presence is being rebuilt (see cluster_lua). */
		cluster_count(&cl->unreachable);
	}
	cluster_job_free(j);
	return rc;
}

int
cluster_devices(struct cluster *cl, const char *user, char ***names, size_t *n)
{
	return cluster_list(cl, user, NULL, names, n);
}

int
cluster_device_known(struct cluster *cl, const char *user, const char *device)
{
	char **names;
	size_t n;
	int known = 0;

	if (cluster_list(cl, user, device, &names, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		known = known || strcmp(names[i], device) == 0;
		free(names[i]);
	}
	free(names);
	return known;
}

void
cluster_stats(struct cluster *cl, struct cluster_stats *st)
{
	st->up = cluster_is_up(cl);
	st->node = cl->node;
	st->received =
	    atomic_load_explicit(&cl->received, memory_order_relaxed);
	st->duplicates =
	    atomic_load_explicit(&cl->duplicates, memory_order_relaxed);
	st->replayed =
	    atomic_load_explicit(&cl->replayed, memory_order_relaxed);
	st->local = atomic_load_explicit(&cl->local, memory_order_relaxed);
	st->unreachable =
	    atomic_load_explicit(&cl->unreachable, memory_order_relaxed);
	st->reconnects =
	    atomic_load_explicit(&cl->reconnects, memory_order_relaxed);
	st->resets = atomic_load_explicit(&cl->resets, memory_order_relaxed);
}
