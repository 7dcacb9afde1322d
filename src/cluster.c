/*
 * cluster: see cluster.h.
 *
 * DESIGN
 *
 * Redis keys (USER and DEVICE are ids without control characters, so
 * "\x1f" separates them; NODE is this process's random id):
 *   beep:n:NODE          the node is alive: refreshed every ttl/3, PX ttl
 *   beep:u:USER          hash: "DEVICE\x1fNODE" -> 1 per node holding a
 *                        live stream of DEVICE
 *   beep:g:USER          hash: DEVICE -> when its grace period ends (ms)
 *   beep:s:USER\x1fDEV   stream of the device's messages, field "f" the
 *                        packed event; trimmed to replay_max entries and
 *                        to max(replay, grace) seconds, expires likewise
 *   beep:m:USER\x1fDEV   hash: last (newest id), floor (newest id
 *                        trimmed), held (last when its grace began)
 *   beep:c:NODE          pub/sub channel of the messages for the node
 * Each operation is one Lua script (atomic, in Redis's order): POST
 * checks the holders (dropping those of dead nodes, whose devices enter
 * their grace period), appends to the stream (XADD: the entry id is the
 * event id, increasing per device) and publishes "ID ULEN DLEN USER
 * DEVICE FRAME" to each live holder, in the same order as the ids.  SUB
 * registers the node as a holder and returns where the stream starts and
 * what it must replay (XRANGE after the client's id, or after what was
 * held); UNSUB removes it and starts the grace period when no holder is
 * left; LIST reads the live holders.
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
 *
 * Threads and locking.  Two threads do all Redis I/O: the command thread
 * (a queue of jobs, sent pipelined on one connection; the heartbeat; the
 * entries' registrations) and the subscriber thread (the channel).
 * cl->lock guards the queue, the entries and their waiting messages; it
 * is never held across Redis I/O.  The registry is called with cl->lock
 * held (lock order: cl->lock, then the registry's), so a device's
 * messages reach the registry in order.  A request thread waits for its
 * job on cl->done at most redis_timeout, then gives up (the job is then
 * the command thread's to free).  Counters are atomics.
 *
 * Redis down: what needs it answers 503 at once; a POST to a device with
 * a live stream here is delivered here, with the next id after the last
 * one the device has (SUB then raises the Redis stream's ids above it).
 */
#include "cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cluster_lua.h"
#include "event.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "cluster"

/* The id is MS << CLUSTER_SEQ_BITS | SEQ. */
#define CLUSTER_SEQ_BITS 20
#define CLUSTER_MS_MAX (UINT64_C(1) << (64 - CLUSTER_SEQ_BITS))
/* Reconnection backoff, doubling from min to max. */
#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 2000
/* How long the metadata of a device outlives its last message. */
#define CLUSTER_META_TTL_MS (24 * 3600 * 1000ULL)
/* Most arguments of a command. */
#define CLUSTER_ARGS 16

/* A message from the channel, waiting behind a closed gate. */
struct cluster_wait {
	uint64_t id;
	struct registry_msg *m;
	struct cluster_wait *next;
};

struct cluster_entry {
	char *key; /* "USER\x1fDEVICE" */
	char *user, *device;
	size_t streams;   /* open here */
	unsigned jobs;    /* SUB or UNSUB jobs on their way */
	bool registered;  /* Redis lists this node as a holder */
	bool gate;        /* closed: channel messages wait in waiting */
	bool sync_wanted; /* send SUB again after last */
	uint64_t last;    /* the newest id given to the registry */
	uint64_t seen;    /* the newest of them that came from Redis */
	uint64_t dropped; /* the newest id dropped from waiting, or 0 */
	struct cluster_wait *waiting, *waiting_tail;
	size_t nwaiting;
	UT_hash_handle hh;
};

enum cluster_job_kind {
	JOB_POST,
	JOB_SUB,  /* a request's: it waits and applies the answer */
	JOB_SYNC, /* the command thread's own SUB, after a loss */
	JOB_UNSUB,
	JOB_LIST,
	JOB_BEAT,
	JOB_BYE,
};

struct cluster_job {
	enum cluster_job_kind kind;
	int argc;
	char *argv[CLUSTER_ARGS];
	size_t argvlen[CLUSTER_ARGS];
	struct cluster_entry *entry;
	redisReply *reply; /* NULL when it failed */
	bool done, abandoned;
	bool sent;      /* written to a connection: Redis may have run it */
	unsigned epoch; /* a SUB's: cl->sub_epoch when it was made */
	struct cluster_job *next;
};

struct cluster {
	struct registry *reg;
	char node[64];
	char *host, *path, *password;
	int port, db;
	unsigned ttl_ms, timeout_ms;
	size_t maxlen, max_waiting;
	uint64_t keep_ms, grace_ms;
	char sha[CLUSTER_LUA__MAX][41];

	pthread_mutex_t lock;
	pthread_cond_t wake; /* the command thread: work, or stop */
	pthread_cond_t done; /* request threads: a job is done, a gate opened */
	struct cluster_job *queue, *queue_tail;
	struct cluster_entry *entries;
	bool dirty; /* some entry may need a job */
	bool again; /* connected to a Redis before the present connection */
	unsigned sub_epoch;  /* channel subscriptions made so far */
	unsigned rebuild_ms; /* see the beat script */
	bool stop, leaving;
	pthread_t cmd_thread, sub_thread;

	atomic_bool cmd_up, sub_up;
	_Atomic uint64_t received, duplicates, replayed, local, unreachable;
	_Atomic uint64_t reconnects, resets;
};

static void
cluster_count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

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

/* "redis://[[USER]:PASS@]HOST[:PORT][/DB]" or "unix://PATH". */
static int
cluster_parse_url(struct cluster *cl, const char *url)
{
	const char *p, *at, *slash, *colon;

	if (strncmp(url, "unix://", 7) == 0 || strncmp(url, "unix:", 5) == 0) {
		p = url + (url[5] == '/' && url[6] == '/' ? 7 : 5);
		if (*p != '/')
			return -1;
		cl->path = xstrdup(p);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	slash = strchr(p, '/');
	at = strchr(p, '@');
	if (at != NULL && (slash == NULL || at < slash)) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon != NULL)
			cl->password =
			    xmemdup(colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	if (slash == NULL)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	cl->host = xmemdup(p, (size_t)((colon ? colon : slash) - p));
	cl->port = 6379;
	if (colon != NULL) {
		char *end;
		long v = strtol(colon + 1, &end, 10);

		if (end != slash || v < 1 || v > 65535)
			return -1;
		cl->port = (int)v;
	}
	if (*slash == '/' && slash[1] != '\0') {
		char *end;
		long v = strtol(slash + 1, &end, 10);

		if (*end != '\0' || v < 0 || v > 1000000)
			return -1;
		cl->db = (int)v;
	}
	return cl->host[0] != '\0' ? 0 : -1;
}

/* A connection, authenticated, on its database; NULL and why on failure. */
static redisContext *
cluster_connect(struct cluster *cl, char *why, size_t size)
{
	struct timeval tv = {
	    .tv_sec = cl->timeout_ms / 1000,
	    .tv_usec = (cl->timeout_ms % 1000) * 1000,
	};
	redisContext *c;
	redisReply *r = NULL;

	c = cl->path ? redisConnectUnixWithTimeout(cl->path, tv)
	             : redisConnectWithTimeout(cl->host, cl->port, tv);
	if (c == NULL || c->err) {
		snprintf(why, size, "%s", c ? c->errstr : "out of memory");
		goto fail;
	}
	redisSetTimeout(c, tv);
	if (cl->password != NULL) {
		r = redisCommand(c, "AUTH %s", cl->password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			goto fail_reply;
		freeReplyObject(r);
	}
	if (cl->db != 0) {
		r = redisCommand(c, "SELECT %d", cl->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			goto fail_reply;
		freeReplyObject(r);
	}
	return c;
fail_reply:
	snprintf(why, size, "%s",
	    r ? r->str : (c->errstr[0] ? c->errstr : "no answer"));
	if (r != NULL)
		freeReplyObject(r);
fail:
	if (c != NULL)
		redisFree(c);
	return NULL;
}

static void
job_arg(struct cluster_job *j, const void *p, size_t len)
{
	if (j->argc == CLUSTER_ARGS)
		abort(); /* a bug: a command takes more arguments */
	j->argv[j->argc] = xmemdup(p, len);
	j->argvlen[j->argc++] = len;
}

static void
job_str(struct cluster_job *j, const char *s)
{
	job_arg(j, s, strlen(s));
}

static void
job_num(struct cluster_job *j, uint64_t v)
{
	char n[24];

	snprintf(n, sizeof(n), "%" PRIu64, v);
	job_str(j, n);
}

static void
job_key(struct cluster_job *j, const char *kind, const char *user,
    const char *device)
{
	struct buf k = {0};

	buf_printf(&k, "beep:%s:%s", kind, user);
	if (device != NULL)
		buf_printf(&k, "\x1f%s", device);
	job_arg(j, k.data, k.len);
	buf_free(&k);
}

/* EVALSHA script with nkeys keys to come. */
static struct cluster_job *
job_new(struct cluster *cl, enum cluster_job_kind kind, enum cluster_lua script,
    int nkeys)
{
	struct cluster_job *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	job_str(j, "EVALSHA");
	job_str(j, cl->sha[script]);
	job_num(j, (uint64_t)nkeys);
	return j;
}

static void
job_free(struct cluster_job *j)
{
	for (int i = 0; i < j->argc; i++)
		free(j->argv[i]);
	if (j->reply != NULL)
		freeReplyObject(j->reply);
	free(j);
}

/* With cl->lock held. */
static void
cluster_enqueue(struct cluster *cl, struct cluster_job *j)
{
	if (cl->queue_tail != NULL)
		cl->queue_tail->next = j;
	else
		cl->queue = j;
	cl->queue_tail = j;
	pthread_cond_signal(&cl->wake);
}

static void
cluster_deadline(struct cluster *cl, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += cl->timeout_ms / 1000;
	ts->tv_nsec += (long)(cl->timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/*
 * Queue j and wait for it, with cl->lock held.  Returns true when it was
 * answered (j->reply may still be NULL: it failed); false when it timed
 * out, and then j belongs to the command thread.
 */
static bool
cluster_call(struct cluster *cl, struct cluster_job *j)
{
	struct timespec ts;

	cluster_deadline(cl, &ts);
	cluster_enqueue(cl, j);
	while (!j->done) {
		if (pthread_cond_timedwait(&cl->done, &cl->lock, &ts) ==
		        ETIMEDOUT &&
		    !j->done) {
			j->abandoned = true;
			return false;
		}
	}
	return true;
}

static struct cluster_entry *
entry_find(struct cluster *cl, const char *user, const char *device)
{
	struct cluster_entry *e;
	struct buf k = {0};

	buf_printf(&k, "%s\x1f%s", user, device);
	HASH_FIND(hh, cl->entries, k.data, k.len, e);
	buf_free(&k);
	return e;
}

static void
entry_drop_waiting(struct cluster_entry *e)
{
	e->dropped = 0;
	while (e->waiting != NULL) {
		struct cluster_wait *w = e->waiting;

		e->waiting = w->next;
		registry_msg_unref(w->m);
		free(w);
	}
	e->waiting_tail = NULL;
	e->nwaiting = 0;
}

/* Free e when nothing refers to it any more; with cl->lock held. */
static void
entry_maybe_free(struct cluster *cl, struct cluster_entry *e)
{
	if (e->streams > 0 || e->jobs > 0 || e->registered || e->gate)
		return;
	HASH_DEL(cl->entries, e);
	entry_drop_waiting(e);
	free(e->key);
	free(e->user);
	free(e->device);
	free(e);
}

/* Give m to the registry unless e already has id; with cl->lock held. */
static void
entry_publish(struct cluster *cl, struct cluster_entry *e, uint64_t id,
    struct registry_msg *m, _Atomic uint64_t *counter)
{
	switch (registry_publish_at(cl->reg, e->user, e->device, m, id)) {
	case REGISTRY_DUPLICATE:
		cluster_count(&cl->duplicates);
		return;
	case REGISTRY_OK:
	case REGISTRY_HELD:
		break;
	default:
		return;
	}
	if (id > e->last)
		e->last = id;
	if (id > e->seen)
		e->seen = id;
	if (counter != NULL)
		cluster_count(counter);
}

/* Tell e's streams that messages before id were lost. */
static void
entry_reset(struct cluster *cl, struct cluster_entry *e, uint64_t id)
{
	struct buf b = {0};
	struct registry_msg *m;

	event_pack_reset(&b, "messages were lost");
	m = registry_msg_new(b.data, b.len);
	buf_free(&b);
	registry_publish_at(cl->reg, e->user, e->device, m, id);
	registry_msg_unref(m);
	cluster_count(&cl->resets);
}

/*
 * Apply a SUB answer {from, why, entries} to e, then what waited behind
 * its gate, and open the gate; with cl->lock held.  fresh: the registry
 * just started the device's log at from (REGISTRY_RESUME_FROM); else a
 * resubscription, whose why, when not empty, puts a reset before what
 * comes next.  stale: the channel was subscribed again after the SUB was
 * made, so what was published between the two is in neither the answer
 * nor the waiting messages; then, as when waiting messages were dropped
 * that the answer does not cover, the gate stays closed and SUB goes
 * again after what was applied.
 */
static void
entry_apply(struct cluster *cl, struct cluster_entry *e, redisReply *r,
    bool fresh, bool stale)
{
	redisReply *list = r->element[2];
	uint64_t from = 0;

	cluster_parse_id(r->element[0]->str, &from);
	if (!fresh && r->element[1]->len > 0 && from > e->last)
		entry_reset(cl, e, from);
	if (fresh || from > e->last)
		e->last = from;
	if (fresh || from > e->seen)
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
		entry_publish(cl, e, id, m, &cl->replayed);
		registry_msg_unref(m);
	}
	if (stale || e->seen < e->dropped) {
		e->sync_wanted = true;
		cl->dirty = true;
		pthread_cond_signal(&cl->wake);
		return;
	}
	while (e->waiting != NULL) {
		struct cluster_wait *w = e->waiting;

		e->waiting = w->next;
		entry_publish(cl, e, w->id, w->m, NULL);
		registry_msg_unref(w->m);
		free(w);
	}
	e->waiting_tail = NULL;
	e->nwaiting = 0;
	e->dropped = 0;
	e->gate = false;
	pthread_cond_broadcast(&cl->done);
}

/* Whether r is a well-formed SUB answer. */
static bool
sub_reply_ok(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    r->element[2]->type == REDIS_REPLY_ARRAY;
}

/* A SUB job for e, after id ("": none), with cl->lock held. */
static struct cluster_job *
job_sub(struct cluster *cl, struct cluster_entry *e, enum cluster_job_kind kind,
    const char *after)
{
	char seen[CLUSTER_ID_MAX];

	struct cluster_job *j = job_new(cl, kind, CLUSTER_LUA_SUB, 4);

	job_key(j, "u", e->user, NULL);
	job_key(j, "g", e->user, NULL);
	job_key(j, "s", e->user, e->device);
	job_key(j, "m", e->user, e->device);
	job_str(j, e->device);
	job_str(j, cl->node);
	job_str(j, after);
	job_num(j, cl->maxlen);
	job_str(j, kind == JOB_SYNC ? "1" : "0");
	job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	cluster_format_id(e->seen, seen, sizeof(seen));
	job_str(j, seen);
	job_str(j, cl->again ? "1" : "0");
	job_num(j, cl->rebuild_ms);
	j->epoch = cl->sub_epoch;
	j->entry = e;
	e->jobs++;
	return j;
}

/* Every entry with streams sends SUB again; with cl->lock held. */
static void
cluster_resync_all(struct cluster *cl)
{
	struct cluster_entry *e, *tmp;

	HASH_ITER(hh, cl->entries, e, tmp)
	{
		if (e->streams == 0)
			continue;
		e->gate = true;
		e->sync_wanted = true;
	}
	cl->dirty = true;
	pthread_cond_signal(&cl->wake);
}

/* Queue what the entries need (SUB again, UNSUB); with cl->lock held. */
static void
cluster_reconcile(struct cluster *cl)
{
	struct cluster_entry *e, *tmp;
	char after[CLUSTER_ID_MAX];

	cl->dirty = false;
	HASH_ITER(hh, cl->entries, e, tmp)
	{
		if (e->sync_wanted && e->jobs == 0) {
			e->sync_wanted = false;
			if (e->streams > 0) {
				e->gate = true;
				cluster_format_id(
				    e->last, after, sizeof(after));
				cluster_enqueue(
				    cl, job_sub(cl, e, JOB_SYNC, after));
				continue;
			}
			entry_drop_waiting(e);
			e->gate = false;
		}
		if (e->streams == 0 && e->registered && e->jobs == 0) {
			struct cluster_job *j =
			    job_new(cl, JOB_UNSUB, CLUSTER_LUA_UNSUB, 3);

			job_key(j, "u", e->user, NULL);
			job_key(j, "g", e->user, NULL);
			job_key(j, "m", e->user, e->device);
			job_str(j, e->device);
			job_str(j, cl->node);
			job_num(j, cl->grace_ms);
			job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
			j->entry = e;
			e->jobs++;
			cluster_enqueue(cl, j);
			continue;
		}
		entry_maybe_free(cl, e);
	}
}

static void
cluster_state(atomic_bool *flag, bool up, const char *what, const char *why)
{
	if (atomic_exchange(flag, up) == up)
		return;
	if (up)
		log_info("redis %s: up", what);
	else
		log_warn("redis %s: down: %s", what, why);
}

/*
 * A job is answered (reply NULL: it failed); with cl->lock held.  The
 * job is freed here unless a request thread waits for it.
 */
static void
cluster_complete(struct cluster *cl, struct cluster_job *j, redisReply *r)
{
	struct cluster_entry *e = j->entry;
	bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;

	if (r != NULL && r->type == REDIS_REPLY_ERROR)
		log_error("redis: %s", r->str);
	j->reply = r;
	j->done = true;
	switch (j->kind) {
	case JOB_SUB:
	case JOB_SYNC:
		ok = ok && sub_reply_ok(r);
		if (ok)
			e->registered = true;
		if (j->kind == JOB_SUB && !j->abandoned) {
			/* Its request applies it, then lets go of e (jobs). */
			pthread_cond_broadcast(&cl->done);
			break;
		}
		e->jobs--;
		if (ok && e->streams > 0 && !j->abandoned) {
			if (r->element[1]->len > 0)
				log_warn("%s: resync: %s", e->key,
				    r->element[1]->str);
			entry_apply(cl, e, r, false, j->epoch != cl->sub_epoch);
		} else if (!ok && e->streams > 0 && j->kind == JOB_SYNC) {
			/* Again once connected; the gate stays. */
			e->sync_wanted = true;
		} else if (e->jobs == 0) {
			/* No other SUB on its way needs the gate. */
			entry_drop_waiting(e);
			e->gate = false;
		}
		cl->dirty = true;
		pthread_cond_broadcast(&cl->done);
		break;
	case JOB_UNSUB:
		e->jobs--;
		if (ok)
			e->registered = false;
		cl->dirty = true;
		break;
	case JOB_BEAT:
		/* The key was gone: Redis restarted, or we were away. */
		if (ok && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
			cluster_resync_all(cl);
		break;
	case JOB_POST:
	case JOB_LIST:
	case JOB_BYE:
		break;
	}
	if (j->abandoned || j->kind == JOB_SYNC || j->kind == JOB_UNSUB ||
	    j->kind == JOB_BEAT || j->kind == JOB_BYE)
		job_free(j);
	else
		pthread_cond_broadcast(&cl->done);
}

static int
cluster_load_scripts(struct cluster *cl, redisContext *c, char *why, size_t n)
{
	for (int i = 0; i < CLUSTER_LUA__MAX; i++) {
		redisReply *r =
		    redisCommand(c, "SCRIPT LOAD %s", cluster_lua[i]);

		if (r == NULL || r->type != REDIS_REPLY_STRING ||
		    r->len >= sizeof(cl->sha[i])) {
			snprintf(why, n, "SCRIPT LOAD: %s",
			    r && r->type == REDIS_REPLY_ERROR ? r->str
			                                      : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			return -1;
		}
		pthread_mutex_lock(&cl->lock);
		memcpy(cl->sha[i], r->str, r->len + 1);
		pthread_mutex_unlock(&cl->lock);
		freeReplyObject(r);
	}
	return 0;
}

/* Wait ms on cl->wake unless stopping; with cl->lock held. */
static void
cluster_sleep(struct cluster *cl, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (!cl->stop)
		pthread_cond_timedwait(&cl->wake, &cl->lock, &ts);
}

/* Fail every queued job; with cl->lock held. */
static void
cluster_fail_queue(struct cluster *cl)
{
	struct cluster_job *j = cl->queue, *next;

	cl->queue = cl->queue_tail = NULL;
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		cluster_complete(cl, j, NULL);
	}
}

static void *
cluster_cmd_main(void *arg)
{
	struct cluster *cl = arg;
	redisContext *c = NULL;
	unsigned backoff = CLUSTER_BACKOFF_MIN_MS;
	uint64_t next_beat = 0;
	bool was_up = false;
	char why[256];

	pthread_mutex_lock(&cl->lock);
	for (;;) {
		struct cluster_job *batch, *j, *next;
		uint64_t now = util_now_ms();
		bool broken = false;

		if (cl->stop && (cl->queue == NULL || c == NULL))
			break;
		if (c == NULL) {
			cluster_fail_queue(cl);
			pthread_mutex_unlock(&cl->lock);
			c = cluster_connect(cl, why, sizeof(why));
			if (c != NULL &&
			    cluster_load_scripts(cl, c, why, sizeof(why)) < 0) {
				redisFree(c);
				c = NULL;
			}
			pthread_mutex_lock(&cl->lock);
			if (c == NULL) {
				cluster_state(
				    &cl->cmd_up, false, "commands", why);
				cluster_sleep(cl, backoff);
				backoff = backoff * 2 > CLUSTER_BACKOFF_MAX_MS
				    ? CLUSTER_BACKOFF_MAX_MS
				    : backoff * 2;
				continue;
			}
			backoff = CLUSTER_BACKOFF_MIN_MS;
			if (was_up) {
				cluster_count(&cl->reconnects);
				cl->again = true;
			}
			was_up = true;
			next_beat = 0;
			cluster_state(&cl->cmd_up, true, "commands", NULL);
			continue;
		}
		if (cl->dirty)
			cluster_reconcile(cl);
		if (now >= next_beat && !cl->leaving) {
			j = job_new(cl, JOB_BEAT, CLUSTER_LUA_BEAT, 1);
			job_key(j, "n", cl->node, NULL);
			job_num(j, cl->ttl_ms);
			job_str(j, cl->again ? "1" : "0");
			job_num(j, cl->rebuild_ms);
			cluster_enqueue(cl, j);
			next_beat = now + cl->ttl_ms / 3;
		}
		if (cl->queue == NULL) {
			unsigned wait =
			    next_beat > now ? (unsigned)(next_beat - now) : 1;

			cluster_sleep(cl, wait);
			continue;
		}
		batch = cl->queue;
		cl->queue = cl->queue_tail = NULL;
		pthread_mutex_unlock(&cl->lock);
		/* Pipelined: all written, then all read, in order. */
		for (j = batch; j != NULL; j = j->next) {
			redisAppendCommandArgv(
			    c, j->argc, (const char **)j->argv, j->argvlen);
			j->sent = true;
		}
		pthread_mutex_lock(&cl->lock);
		for (j = batch; j != NULL; j = next) {
			void *r = NULL;

			next = j->next;
			j->next = NULL;
			if (!broken) {
				pthread_mutex_unlock(&cl->lock);
				if (redisGetReply(c, &r) != REDIS_OK) {
					broken = true;
					r = NULL;
				}
				pthread_mutex_lock(&cl->lock);
			}
			cluster_complete(cl, j, r);
		}
		if (broken) {
			snprintf(why, sizeof(why), "%s", c->errstr);
			redisFree(c);
			c = NULL;
			cluster_state(&cl->cmd_up, false, "commands", why);
		}
	}
	cluster_fail_queue(cl);
	pthread_mutex_unlock(&cl->lock);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* A message from the channel: "ID ULEN DLEN USER DEVICE FRAME". */
static void
cluster_receive(struct cluster *cl, const char *p, size_t len)
{
	char idtext[CLUSTER_ID_MAX];
	unsigned long ulen, dlen;
	int off = 0;
	uint64_t id;
	struct cluster_entry *e;
	struct buf k = {0};
	struct registry_msg *m;

	if (sscanf(p, "%47s %lu %lu %n", idtext, &ulen, &dlen, &off) != 3 ||
	    off == 0 || (size_t)off + ulen + dlen > len ||
	    cluster_parse_id(idtext, &id) < 0) {
		log_error("malformed message from redis");
		return;
	}
	cluster_count(&cl->received);
	buf_append(&k, p + off, ulen);
	buf_puts(&k, "\x1f");
	buf_append(&k, p + off + ulen, dlen);
	m = registry_msg_new(
	    p + off + ulen + dlen, len - (size_t)off - ulen - dlen);
	pthread_mutex_lock(&cl->lock);
	HASH_FIND(hh, cl->entries, k.data, k.len, e);
	if (e != NULL && e->gate) {
		struct cluster_wait *w = xmalloc(sizeof(*w));

		/* Beyond the bound, the oldest go: SUB brings them back. */
		if (e->nwaiting >= cl->max_waiting) {
			struct cluster_wait *old = e->waiting;

			e->waiting = old->next;
			if (e->waiting == NULL)
				e->waiting_tail = NULL;
			if (old->id > e->dropped)
				e->dropped = old->id;
			registry_msg_unref(old->m);
			free(old);
			e->nwaiting--;
		}
		w->id = id;
		w->m = m;
		w->next = NULL;
		if (e->waiting_tail != NULL)
			e->waiting_tail->next = w;
		else
			e->waiting = w;
		e->waiting_tail = w;
		e->nwaiting++;
		m = NULL;
	} else if (e != NULL) {
		entry_publish(cl, e, id, m, NULL);
	}
	pthread_mutex_unlock(&cl->lock);
	registry_msg_unref(m);
	buf_free(&k);
}

static void
cluster_sub_reply(struct cluster *cl, redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING)
		cluster_receive(cl, r->element[2]->str, r->element[2]->len);
}

static void *
cluster_sub_main(void *arg)
{
	struct cluster *cl = arg;
	unsigned backoff = CLUSTER_BACKOFF_MIN_MS;
	bool was_up = false;
	char why[256], channel[80];

	snprintf(channel, sizeof(channel), "beep:c:%s", cl->node);
	for (;;) {
		redisContext *c;
		redisReply *r;
		bool stop;

		pthread_mutex_lock(&cl->lock);
		stop = cl->stop;
		pthread_mutex_unlock(&cl->lock);
		if (stop)
			break;
		c = cluster_connect(cl, why, sizeof(why));
		r = c ? redisCommand(c, "SUBSCRIBE %s", channel) : NULL;
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			if (c != NULL)
				snprintf(why, sizeof(why), "SUBSCRIBE: %s",
				    c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			if (c != NULL)
				redisFree(c);
			pthread_mutex_lock(&cl->lock);
			cluster_state(&cl->sub_up, false, "channel", why);
			cluster_sleep(cl, backoff);
			pthread_mutex_unlock(&cl->lock);
			backoff = backoff * 2 > CLUSTER_BACKOFF_MAX_MS
			    ? CLUSTER_BACKOFF_MAX_MS
			    : backoff * 2;
			continue;
		}
		freeReplyObject(r);
		backoff = CLUSTER_BACKOFF_MIN_MS;
		if (was_up)
			cluster_count(&cl->reconnects);
		was_up = true;
		pthread_mutex_lock(&cl->lock);
		/*
		 * What the channel lost while away comes from the streams, by
		 * a SUB made from now on (see entry_apply()).
		 */
		cl->sub_epoch++;
		cluster_resync_all(cl);
		cluster_state(&cl->sub_up, true, "channel", NULL);
		pthread_mutex_unlock(&cl->lock);
		for (;;) {
			struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
			void *reply = NULL;
			int n;

			while (redisGetReplyFromReader(c, &reply) == REDIS_OK &&
			    reply != NULL) {
				cluster_sub_reply(cl, reply);
				freeReplyObject(reply);
				reply = NULL;
			}
			pthread_mutex_lock(&cl->lock);
			stop = cl->stop;
			pthread_mutex_unlock(&cl->lock);
			if (stop || c->err)
				break;
			n = poll(&pfd, 1, 250);
			if (n < 0 && errno != EINTR)
				break;
			if (n > 0 && redisBufferRead(c) != REDIS_OK)
				break;
		}
		snprintf(
		    why, sizeof(why), "%s", c->err ? c->errstr : "stopping");
		redisFree(c);
		pthread_mutex_lock(&cl->lock);
		cluster_state(&cl->sub_up, false, "channel", why);
		pthread_mutex_unlock(&cl->lock);
	}
	return NULL;
}

struct cluster *
cluster_new(const struct config *c, struct registry *reg)
{
	struct cluster *cl = xcalloc(1, sizeof(*cl));
	char host[40] = "";
	pthread_condattr_t attr;

	cl->reg = reg;
	if (cluster_parse_url(cl, c->redis_url) < 0) {
		log_error("--redis-url %s: expected redis://HOST[:PORT][/DB] "
		          "or unix:///PATH",
		    c->redis_url);
		free(cl->host);
		free(cl->path);
		free(cl->password);
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
	cl->max_waiting = c->queue_messages > 64 ? c->queue_messages : 64;
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
	pthread_cond_init(&cl->done, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&cl->cmd_up, false);
	atomic_init(&cl->sub_up, false);
	log_info("cluster node %s, redis %s", cl->node, c->redis_url);
	pthread_create(&cl->cmd_thread, NULL, cluster_cmd_main, cl);
	pthread_create(&cl->sub_thread, NULL, cluster_sub_main, cl);
	return cl;
}

void
cluster_stop(struct cluster *cl)
{
	struct cluster_job *j = xcalloc(1, sizeof(*j));
	struct buf k = {0};

	j->kind = JOB_BYE;
	job_str(j, "DEL");
	buf_printf(&k, "beep:n:%s", cl->node);
	job_arg(j, k.data, k.len);
	buf_free(&k);
	pthread_mutex_lock(&cl->lock);
	if (cl->leaving) {
		pthread_mutex_unlock(&cl->lock);
		job_free(j);
		return;
	}
	cl->leaving = true;
	cluster_enqueue(cl, j);
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
	pthread_mutex_unlock(&cl->lock);
	pthread_join(cl->cmd_thread, NULL);
	pthread_join(cl->sub_thread, NULL);
	HASH_ITER(hh, cl->entries, e, tmp)
	{
		HASH_DEL(cl->entries, e);
		entry_drop_waiting(e);
		free(e->key);
		free(e->user);
		free(e->device);
		free(e);
	}
	pthread_cond_destroy(&cl->wake);
	pthread_cond_destroy(&cl->done);
	pthread_mutex_destroy(&cl->lock);
	free(cl->host);
	free(cl->path);
	free(cl->password);
	free(cl);
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
	e = entry_find(cl, user, device);
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
	/* Another stream of the device is syncing here: wait for it. */
	cluster_deadline(cl, &ts);
	while (e->streams > 0 && e->gate && cluster_is_up(cl)) {
		if (pthread_cond_timedwait(&cl->done, &cl->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	if (e->streams > 0 && !e->gate) {
		/* The registry alone: it has the device's recent messages. */
		e->streams++;
		pthread_mutex_unlock(&cl->lock);
		s = registry_subscribe(
		    cl->reg, user, device, resume, start, err);
		pthread_mutex_lock(&cl->lock);
		if (s == NULL) {
			e->streams--;
			cl->dirty = true;
			pthread_cond_signal(&cl->wake);
		} else {
			*ref = e;
		}
		pthread_mutex_unlock(&cl->lock);
		return s;
	}
	if (!atomic_load(&cl->cmd_up) || e->streams > 0) {
		entry_maybe_free(cl, e);
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		*down = true;
		return NULL;
	}
	if (resume->kind == REGISTRY_RESUME_AT)
		cluster_format_id(resume->id, after, sizeof(after));
	e->streams++;
	e->gate = true;
	j = job_sub(cl, e, JOB_SUB, after);
	if (!cluster_call(cl, j) || !sub_reply_ok(j->reply)) {
		if (j->done) {
			e->jobs--;
			job_free(j);
		}
		e->streams--;
		if (e->jobs == 0) {
			entry_drop_waiting(e);
			e->gate = false;
		}
		cl->dirty = true;
		pthread_cond_signal(&cl->wake);
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
	cl->dirty = true;
	pthread_cond_signal(&cl->wake);
	if (s == NULL) {
		e->streams--;
		entry_drop_waiting(e);
		e->gate = false;
		cl->dirty = true;
		pthread_cond_signal(&cl->wake);
		pthread_cond_broadcast(&cl->done);
	} else {
		if (why[0] != '\0' && !start->reset) {
			start->reset = true;
			start->reason = cluster_reason(why);
			cluster_count(&cl->resets);
		}
		entry_apply(cl, e, j->reply, true, j->epoch != cl->sub_epoch);
		*ref = e;
	}
	pthread_mutex_unlock(&cl->lock);
	job_free(j);
	return s;
}

void
cluster_unsubscribe(struct cluster *cl, struct cluster_entry *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&cl->lock);
	if (--e->streams == 0) {
		cl->dirty = true;
		pthread_cond_signal(&cl->wake);
	}
	pthread_mutex_unlock(&cl->lock);
}

/* Redis is down: a device with a live stream here still gets m. */
static enum registry_error
cluster_publish_local(struct cluster *cl, const char *user, const char *device,
    const char *frame, size_t len, char *id, size_t size, bool *down)
{
	enum registry_error res = REGISTRY_NOT_FOUND;
	struct cluster_entry *e;
	struct registry_msg *m;

	pthread_mutex_lock(&cl->lock);
	e = entry_find(cl, user, device);
	if (e == NULL || e->streams == 0 || e->gate) {
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		*down = true;
		return res;
	}
	m = registry_msg_new(frame, len);
	res = registry_publish_at(cl->reg, user, device, m, e->last + 1);
	if (res == REGISTRY_OK || res == REGISTRY_HELD) {
		e->last++;
		cluster_format_id(e->last, id, size);
		cluster_count(&cl->local);
	} else if (res == REGISTRY_NOT_FOUND || res == REGISTRY_DUPLICATE) {
		cluster_count(&cl->unreachable);
		*down = true;
	}
	pthread_mutex_unlock(&cl->lock);
	registry_msg_unref(m);
	return res;
}

enum registry_error
cluster_publish(struct cluster *cl, const char *user, const char *device,
    const char *frame, size_t len, char *id, size_t size, bool *down)
{
	enum registry_error res = REGISTRY_NOT_FOUND;
	struct cluster_job *j;
	redisReply *r;

	*down = false;
	id[0] = '\0';
	if (!atomic_load(&cl->cmd_up))
		return cluster_publish_local(
		    cl, user, device, frame, len, id, size, down);
	pthread_mutex_lock(&cl->lock);
	j = job_new(cl, JOB_POST, CLUSTER_LUA_POST, 4);
	job_key(j, "u", user, NULL);
	job_key(j, "g", user, NULL);
	job_key(j, "s", user, device);
	job_key(j, "m", user, device);
	job_str(j, device);
	job_str(j, user);
	job_arg(j, frame, len);
	job_num(j, cl->maxlen);
	job_num(j, cl->keep_ms);
	job_num(j, cl->grace_ms);
	job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	if (!cluster_call(cl, j)) {
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		*down = true;
		return res;
	}
	pthread_mutex_unlock(&cl->lock);
	r = j->reply;
	if (r == NULL && !j->sent) {
		/* Redis went down before it was sent: as if it were down. */
		job_free(j);
		return cluster_publish_local(
		    cl, user, device, frame, len, id, size, down);
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		cluster_count(&cl->unreachable);
		*down = true;
	} else if (r->element[0]->integer == 503) {
		/* Redis restarted empty: presence not rebuilt yet. */
		cluster_count(&cl->unreachable);
		*down = true;
	} else if (r->element[0]->integer != 404 && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		res =
		    r->element[0]->integer == 200 ? REGISTRY_OK : REGISTRY_HELD;
		snprintf(id, size, "%s", r->element[1]->str);
	}
	job_free(j);
	return res;
}

int
cluster_devices(struct cluster *cl, const char *user, char ***names, size_t *n)
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
	j = job_new(cl, JOB_LIST, CLUSTER_LUA_LIST, 2);
	job_key(j, "u", user, NULL);
	job_key(j, "g", user, NULL);
	job_str(j, user);
	job_num(j, cl->grace_ms);
	job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	if (!cluster_call(cl, j)) {
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
		cluster_count(&cl->unreachable);
	}
	job_free(j);
	return rc;
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
