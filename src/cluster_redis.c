/* cluster_redis: see cluster_redis.h. */
#include "cluster_redis.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_delivery.h"
#include "cluster_job.h"
#include "cluster_presence.h"
#include "cluster_setup.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define LOG_MODULE "cluster"

void
cluster_redis_url_for_log(const char *url, char *out, size_t n)
{
	const char *at = strrchr(url, '@'), *scheme = strstr(url, "://");
	int keep = scheme != NULL && (at == NULL || scheme < at)
	    ? (int)(scheme + 3 - url)
	    : 0;
	char *query;

	/*
	 * Whatever the scheme, and whether it parses or not (the error for
	 * a mistyped one logs it too): all before the last '@'.
	 */
	if (at != NULL)
		snprintf(out, n, "%.*s***%s", keep, url, at);
	else
		snprintf(out, n, "%s", url);
	/*
	 * Nor a query, where other clients take a password
	 * (?password=...): refused here, and logged in the error (test 93).
	 */
	query = strchr(out, '?');
	if (query != NULL && (size_t)(query - out) + sizeof("?***") <= n)
		memcpy(query, "?***", sizeof("?***"));
	else if (query != NULL)
		*query = '\0';
}

/*
 * One part of a URL's user information, percent-decoded (RFC 3986: a
 * password may hold '@', ':' or '/' only so), as a new string; NULL for
 * a bad escape or a %00, which would cut it short.
 */
static char *
redis_url_part(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t n;

	if (http_percent_decode(s, len, false, out, &n) < 0 ||
	    strlen(out) != n) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * The user information that ends at at ("[USER]:PASS" or "USER:PASS")
 * into cl->user and cl->password; -1 when it has no password (AUTH
 * needs one) or does not decode.
 */
static int
redis_url_userinfo(struct cluster *cl, const char *p, const char *at)
{
	const char *colon = memchr(p, ':', (size_t)(at - p));

	if (colon == NULL)
		return -1;
	if (colon > p &&
	    (cl->user = redis_url_part(p, (size_t)(colon - p))) == NULL)
		return -1;
	cl->password = redis_url_part(colon + 1, (size_t)(at - colon - 1));
	return cl->password != NULL ? 0 : -1;
}

/*
 * "redis://[[USER]:PASS@]HOST[:PORT][/DB]" or "unix://[[USER]:PASS@]/PATH"
 * (also "unix:/PATH").  The user information ends at the last '@' before
 * the host, at the "@/" before a socket's path: as the log redacts it
 * (cluster_redis_url_for_log()).
 */
int
cluster_redis_parse_url(struct cluster *cl, const char *url)
{
	const char *p, *at, *slash, *colon;

	if (strncmp(url, "unix://", 7) == 0 || strncmp(url, "unix:", 5) == 0) {
		p = url + (url[5] == '/' && url[6] == '/' ? 7 : 5);
		if (*p != '/' && (at = strstr(p, "@/")) != NULL) {
			if (redis_url_userinfo(cl, p, at) < 0)
				return -1;
			p = at + 1;
		}
		if (*p != '/')
			return -1;
		cl->path = xstrdup(p);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	at = strrchr(p, '@');
	if (at != NULL) {
		if (redis_url_userinfo(cl, p, at) < 0)
			return -1;
		p = at + 1;
	}
	slash = strchr(p, '/');
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

void
cluster_redis_forget_url(struct cluster *cl)
{
	free(cl->host);
	free(cl->path);
	free(cl->user);
	free(cl->password);
	cl->host = cl->path = cl->user = cl->password = NULL;
}

/* A connection, authenticated, on its database; NULL and why on failure. */
static redisContext *
redis_connect(struct cluster *cl, char *why, size_t size)
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
	/* A host gone without a word: TCP's keepalive probes find it. */
	if (cl->path == NULL)
		redisEnableKeepAlive(c);
	if (cl->password != NULL) {
		/* AUTH USER PASS: an ACL user (Redis 6); else the default one. */
		r = cl->user != NULL
		    ? redisCommand(c, "AUTH %s %s", cl->user, cl->password)
		    : redisCommand(c, "AUTH %s", cl->password);
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

/*
 * A connection's state, logged when it changes, and the first time: a
 * node that never reaches Redis (a wrong password, host or socket) would
 * otherwise never say so.  *said is the calling thread's own.
 */
static void
redis_state(
    atomic_bool *flag, bool *said, bool up, const char *what, const char *why)
{
	if (atomic_exchange(flag, up) == up && *said)
		return;
	*said = true;
	if (up)
		log_info("redis %s: up", what);
	else
		log_warn("redis %s: down: %s", what, why);
}

/* Whether r says a script was not there (it did not run). */
static bool
redis_noscript(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/*
 * A job is answered (reply NULL: it failed); with cl->lock held.  The
 * job is freed here unless a request thread waits for it.
 */
static void
redis_complete(struct cluster *cl, struct cluster_job *j, redisReply *r)
{
	/* One per POST while Redis refuses writes (MISCONF, OOM...). */
	static struct log_limit limit =
	    LOG_LIMIT(LOG_ERROR, "redis: error answers");
	uint64_t held;

	if (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    log_limit_pass(&limit, util_now_ms(), &held))
		log_error("redis: %s (%llu more not logged)", r->str,
		    (unsigned long long)held);
	j->reply = r;
	j->done = true;
	/*
	 * Not run: it goes again once the scripts are loaded again.  Lost
	 * with the connection (Redis unreachable as the node began to stop):
	 * once connected again, which the stop tries once more (see
	 * cluster_redis_cmd_main()); before, never (the node listed for its
	 * BEEP_CLUSTER_TTL after its stop: test_cluster_bye_after_outage).
	 */
	if (j->kind == JOB_BYE &&
	    (redis_noscript(r) || (r == NULL && !cl->stop)))
		cl->bye_again = true;
	else if (j->kind == JOB_BYE && r != NULL &&
	    r->type != REDIS_REPLY_ERROR)
		cl->bye_said = true;
	cluster_presence_answer(cl, j);
	if (j->abandoned || j->kind == JOB_SYNC || j->kind == JOB_UNSUB ||
	    j->kind == JOB_BEAT || j->kind == JOB_BYE || j->kind == JOB_PRUNE)
		cluster_job_free(j);
	else
		pthread_cond_signal(&j->answered);
}

void
cluster_redis_bye(struct cluster *cl)
{
	struct cluster_job *j =
	    cluster_job_new(cl, JOB_BYE, CLUSTER_LUA_BYE, 1);

	cluster_job_key(j, "n", cl->node, NULL);
	cluster_job_str(j, cl->node);
	cluster_job_enqueue(cl, j);
}

/*
 * The PRUNE's last argument: the devices this node has streams of, whose
 * fields it keeps (see the script); with cl->lock held.
 */
static void
redis_prune_live(struct cluster *cl, struct cluster_job *j)
{
	struct cluster_entry *e, *tmp;
	struct buf live = {0};

	HASH_ITER(hh, cl->entries, e, tmp)
	{
		if (e->streams > 0)
			buf_printf(&live, "%s\x1e", e->key);
	}
	cluster_job_arg(j, live.len > 0 ? live.data : "", live.len);
	buf_free(&live);
}

/*
 * Queue the PRUNE of run (see the script), then the resync of every
 * device with streams here; with cl->lock held.
 */
static void
redis_queue_prune(struct cluster *cl, const char *run)
{
	struct cluster_job *j =
	    cluster_job_new(cl, JOB_PRUNE, CLUSTER_LUA_PRUNE, 0);

	cluster_job_str(j, cl->node);
	cluster_job_num(j, cl->grace_ms);
	cluster_job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	cluster_job_str(j, run);
	cluster_job_num(j, cl->wrote);
	redis_prune_live(cl, j);
	cluster_job_num(j, cl->wrote_born);
	cluster_job_str(j, cl->wrote_run);
	/*
	 * First: a job queued while the connection was being made again
	 * (a POST whose caller saw the commands up just before they went
	 * down) would otherwise run on the new run before the PRUNE, and
	 * its count, of the new run, replace the one the PRUNE compares.
	 */
	cluster_job_enqueue_first(cl, j);
	cl->prune_again = false;
	cl->prune_queued = true;
	cluster_presence_resync_all(cl);
}

/* ms from now on CLOCK_MONOTONIC, into *ts. */
static void
redis_deadline(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/*
 * Wait ms on cond (cl->wake in the command thread, cl->sub_wake in the
 * channel's) unless stopping; with cl->lock held.  Each thread has its own:
 * a job's pthread_cond_signal() on cl->wake taken by the channel's thread in
 * its backoff left the command thread asleep until its next heartbeat, and
 * the request to 503 (test 39).
 */
static void
redis_sleep(struct cluster *cl, pthread_cond_t *cond, unsigned ms)
{
	struct timespec ts;

	redis_deadline(&ts, ms);
	if (!cl->stop)
		pthread_cond_timedwait(cond, &cl->lock, &ts);
}

/*
 * Take the queue to send, with cl->lock held.  A job whose request gave
 * up while it waited here (abandoned: the client got 503) is not sent but
 * failed: a POST answered 503 must not be delivered after all, for the
 * sender retries it.  One already sent when its request gives up may still
 * take effect (README: Cluster, failure behaviour).
 */
static struct cluster_job *
redis_take_queue(struct cluster *cl)
{
	struct cluster_job *j = cl->queue, *next, *batch = NULL,
	                   **tail = &batch;

	cl->queue = cl->queue_tail = NULL;
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		if (j->abandoned) {
			redis_complete(cl, j, NULL);
			continue;
		}
		*tail = j;
		tail = &j->next;
	}
	return batch;
}

/* Fail every queued job; with cl->lock held. */
static void
redis_fail_queue(struct cluster *cl)
{
	struct cluster_job *j = cl->queue, *next;

	cl->queue = cl->queue_tail = NULL;
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		redis_complete(cl, j, NULL);
	}
}

/*
 * The command connection's reconnection backoff: ms slept out on cl->wake,
 * with cl->lock held, whatever wakes it but a stop.  cl->wake says there is
 * work (a job queued, a device's last stream gone), and each one cut the
 * backoff short into a reconnection at once: streams ending during an
 * outage came to Redis as a connection each (test 37).  A job queued
 * meanwhile is failed at once, as at each attempt: its request is answered
 * (503, or a POST delivered here alone) no later than before.
 */
static void
redis_backoff(struct cluster *cl, unsigned ms)
{
	struct timespec ts;

	redis_deadline(&ts, ms);
	while (!cl->stop) {
		redis_fail_queue(cl);
		if (pthread_cond_timedwait(&cl->wake, &cl->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
}

void *
cluster_redis_cmd_main(void *arg)
{
	struct cluster *cl = arg;
	redisContext *c = NULL;
	unsigned backoff = CLUSTER_BACKOFF_MIN_MS;
	uint64_t next_beat = 0;
	struct cluster_setup_fence fence = {0};
	bool was_up = false, said = false, last_try = false, key_due = false;
	char why[256];

	pthread_mutex_lock(&cl->lock);
	for (;;) {
		struct cluster_job *batch, *j, *next;
		uint64_t now = util_now_ms();
		bool broken = false, noscript = false;

		/*
		 * Stopping unconnected, its BYE not said (Redis unreachable as
		 * it began to stop, or the BYE still queued): one more
		 * connection, bounded by BEEP_REDIS_TIMEOUT, for it; failing
		 * that, the node's key expires (BEEP_CLUSTER_TTL) and the
		 * other nodes' heartbeats sweep its fields, as a node that
		 * died.
		 */
		if (cl->stop && c == NULL && cl->leaving && !cl->bye_said &&
		    !last_try) {
			last_try = true;
			cl->bye_again = true;
		}
		if (cl->stop && !cl->bye_again &&
		    (cl->queue == NULL || c == NULL))
			break;
		if (c == NULL) {
			redis_fail_queue(cl);
			pthread_mutex_unlock(&cl->lock);
			c = redis_connect(cl, why, sizeof(why));
			if (c != NULL &&
			    cluster_setup(cl, c, &fence, why, sizeof(why)) <
			        0) {
				redisFree(c);
				c = NULL;
			}
			pthread_mutex_lock(&cl->lock);
			if (c == NULL) {
				/* Stopping, a BYE gets this one try. */
				if (cl->stop)
					cl->bye_again = false;
				redis_state(
				    &cl->cmd_up, &said, false, "commands", why);
				redis_backoff(cl, backoff);
				backoff = backoff * 2 > CLUSTER_BACKOFF_MAX_MS
				    ? CLUSTER_BACKOFF_MAX_MS
				    : backoff * 2;
				continue;
			}
			backoff = CLUSTER_BACKOFF_MIN_MS;
			memcpy(cl->run, fence.seen, sizeof(cl->run));
			if (was_up) {
				cluster_count(&cl->reconnects);
				cl->again = true;
			}
			was_up = true;
			next_beat = 0;
			key_due = false;
			/*
			 * Another Redis run: what it holds of this node may be
			 * older than what the node did (a snapshot, a replica).
			 * Its registrations go, then come again from its streams.
			 */
			if ((fence.new_run || cl->prune_again) &&
			    !cl->leaving) {
				redis_queue_prune(cl, fence.seen);
				fence.new_run = false;
			}
			if (cl->bye_again) {
				cl->bye_again = false;
				cluster_redis_bye(cl);
			}
			redis_state(&cl->cmd_up, &said, true, "commands", NULL);
			continue;
		}
		/*
		 * A PRUNE Redis refused (READONLY from a replica not yet
		 * promoted, OOM, MISCONF) on this connection: again when
		 * the refused registrations are, before them (test 88;
		 * before, only the next connection pruned).
		 */
		if (cl->prune_again && !cl->prune_queued && !cl->leaving &&
		    now >= cl->retry_at)
			redis_queue_prune(cl, fence.seen);
		/* Registrations Redis refused wait (cl->retry_at). */
		if (cl->dirty && now >= cl->retry_at)
			cluster_presence_reconcile(cl);
		/*
		 * No beat once leaving (its BYE is queued), but the next one's
		 * time still moves on: the wait below would be 1 ms per turn
		 * until the stop otherwise.
		 */
		if (now >= next_beat && cl->leaving) {
			next_beat = now + cl->ttl_ms / 3;
		} else if (now >= next_beat) {
			key_due = true;
			j = cluster_job_new(cl, JOB_BEAT, CLUSTER_LUA_BEAT, 1);
			cluster_job_key(j, "n", cl->node, NULL);
			cluster_job_num(j, cl->ttl_ms);
			cluster_job_str(j, cl->again ? "1" : "0");
			cluster_job_num(j, cl->rebuild_ms);
			cluster_job_str(j, cl->node);
			cluster_job_num(j, cl->grace_ms);
			cluster_job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
			j->token = cl->tell_ack;
			cluster_job_num(j, j->token);
			cluster_job_enqueue(cl, j);
			next_beat = now + cl->ttl_ms / 3;
		}
		if (cl->queue == NULL) {
			uint64_t until = next_beat;
			unsigned wait;

			if (cl->dirty && cl->retry_at > now &&
			    cl->retry_at < until)
				until = cl->retry_at;
			wait = until > now ? (unsigned)(until - now) : 1;

			redis_sleep(cl, &cl->wake, wait);
			continue;
		}
		batch = redis_take_queue(cl);
		if (batch == NULL)
			continue;
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
				} else if (redis_noscript(r)) {
					noscript = true;
				}
				pthread_mutex_lock(&cl->lock);
			}
			redis_complete(cl, j, r);
		}
		/*
		 * Scripts are loaded once a connection: ones flushed since
		 * (SCRIPT FLUSH, a failover to a replica without them) would
		 * fail every job, UNSUBs again at once, for as long as it
		 * lasts.  A new connection loads them again.
		 */
		if (noscript && !broken) {
			broken = true;
			snprintf(why, sizeof(why),
			    "scripts gone (NOSCRIPT): loading them again");
		} else if (broken) {
			snprintf(why, sizeof(why), "%s", c->errstr);
		} else if (key_due) {
			/*
			 * After a heartbeat's batch, the senders' key as Redis
			 * has it now (see cluster_setup_sender_key()).
			 */
			key_due = false;
			pthread_mutex_unlock(&cl->lock);
			broken = cluster_setup_sender_key(
			             cl, c, false, why, sizeof(why)) < 0;
			pthread_mutex_lock(&cl->lock);
		}
		if (broken) {
			redisFree(c);
			c = NULL;
			redis_state(&cl->cmd_up, &said, false, "commands", why);
		}
	}
	redis_fail_queue(cl);
	pthread_mutex_unlock(&cl->lock);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

static void
redis_sub_reply(struct cluster *cl, redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING)
		cluster_delivery_receive(
		    cl, r->element[2]->str, r->element[2]->len);
}

/*
 * Read the channel's messages until c fails, stops answering, or the
 * cluster stops; why says which.  A connection can go silent without
 * closing (a partition, a NAT or firewall that forgets it, a Redis host
 * gone): nothing would then arrive, and the node would take every
 * message published meanwhile for never sent.  So, whenever the channel
 * has been quiet for the heartbeat's period (BEEP_CLUSTER_TTL / 3), a
 * PING goes out (allowed in subscribe mode), and a connection that
 * answers nothing within BEEP_REDIS_TIMEOUT is given up: the caller
 * reconnects, and what the channel lost comes from the streams.
 */
static void
redis_sub_listen(struct cluster *cl, redisContext *c, char *why, size_t size)
{
	uint64_t heard = util_now_ms(), pinged = 0;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
		    {.fd = cl->stop_pipe[0], .events = POLLIN}};
		void *reply = NULL;
		uint64_t now;
		bool stop;
		int n;

		while (redisGetReplyFromReader(c, &reply) == REDIS_OK &&
		    reply != NULL) {
			redis_sub_reply(cl, reply);
			freeReplyObject(reply);
			reply = NULL;
		}
		pthread_mutex_lock(&cl->lock);
		stop = cl->stop;
		pthread_mutex_unlock(&cl->lock);
		if (stop || c->err)
			break;
		n = poll(pfd, 2, CLUSTER_SUB_POLL_MS);
		if (n < 0 && errno != EINTR)
			break;
		/* cluster_free(): stop is set, seen above. */
		if (n > 0 && pfd[1].revents != 0)
			continue;
		now = util_now_ms();
		if (n > 0) {
			if (redisBufferRead(c) != REDIS_OK)
				break;
			heard = now;
			pinged = 0;
			continue;
		}
		if (pinged != 0 && now - pinged >= cl->timeout_ms) {
			snprintf(why, size,
			    "no answer to PING within BEEP_REDIS_TIMEOUT");
			return;
		}
		if (pinged == 0 && now - heard >= cl->ttl_ms / 3) {
			int done = 0;

			if (redisAppendCommand(c, "PING") != REDIS_OK)
				break;
			do {
				if (redisBufferWrite(c, &done) != REDIS_OK)
					break;
			} while (!done);
			if (c->err)
				break;
			pinged = now;
		}
	}
	snprintf(why, size, "%s", c->err ? c->errstr : "stopping");
}

void *
cluster_redis_sub_main(void *arg)
{
	struct cluster *cl = arg;
	unsigned backoff = CLUSTER_BACKOFF_MIN_MS;
	bool was_up = false, said = false;
	char why[256], channel[80], refused[256] = "";

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
		c = redis_connect(cl, why, sizeof(why));
		r = c ? redisCommand(c, "SUBSCRIBE %s", channel) : NULL;
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			/* Refused (an ACL without the channel): Redis says why. */
			bool refusal =
			    r != NULL && r->type == REDIS_REPLY_ERROR;

			if (c != NULL)
				snprintf(why, sizeof(why), "SUBSCRIBE: %s",
				    refusal ? r->str : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			if (c != NULL)
				redisFree(c);
			pthread_mutex_lock(&cl->lock);
			/*
			 * Down already (Redis closed the channel as it revoked
			 * it): a refusal is said once, and again when it
			 * changes, so that the log tells why it stays down.
			 */
			if (refusal && strcmp(refused, why) != 0) {
				if (!atomic_load(&cl->sub_up))
					log_warn(
					    "redis channel: refused: %s", why);
				snprintf(refused, sizeof(refused), "%s", why);
			}
			redis_state(&cl->sub_up, &said, false, "channel", why);
			redis_sleep(cl, &cl->sub_wake, backoff);
			pthread_mutex_unlock(&cl->lock);
			backoff = backoff * 2 > CLUSTER_BACKOFF_MAX_MS
			    ? CLUSTER_BACKOFF_MAX_MS
			    : backoff * 2;
			continue;
		}
		freeReplyObject(r);
		backoff = CLUSTER_BACKOFF_MIN_MS;
		refused[0] = '\0';
		if (was_up)
			cluster_count(&cl->reconnects);
		was_up = true;
		pthread_mutex_lock(&cl->lock);
		/*
		 * What the channel lost while away comes from the streams, by
		 * a SUB made from now on (see cluster_delivery_apply()).
		 */
		cl->sub_epoch++;
		cluster_presence_resync_all(cl);
		redis_state(&cl->sub_up, &said, true, "channel", NULL);
		pthread_mutex_unlock(&cl->lock);
		redis_sub_listen(cl, c, why, sizeof(why));
		redisFree(c);
		pthread_mutex_lock(&cl->lock);
		redis_state(&cl->sub_up, &said, false, "channel", why);
		pthread_mutex_unlock(&cl->lock);
	}
	return NULL;
}
