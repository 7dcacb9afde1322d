/* cluster_setup: see cluster_setup.h. */
#include "cluster_setup.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

#define LOG_MODULE "cluster"

static int
redis_load_scripts(struct cluster *cl, redisContext *c, char *why, size_t n)
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

/*
 * An answer to one of the fence's commands: 1 when usable (*out, which
 * the caller frees), 0 when Redis refused it (an error: its ACL, or busy),
 * -1 when c failed.
 */
static int
redis_fence_ask(redisContext *c, redisReply **out, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	*out = NULL;
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_ERROR) {
		/* Once a run: the fence cannot work (see redis_fence()). */
		static _Atomic bool told;

		if (!atomic_exchange(&told, true))
			log_warn(
			    "redis refused %.*s (%s): a connection given up "
			    "is not closed in Redis before the next one",
			    (int)strcspn(fmt, " "), fmt, r->str);
		freeReplyObject(r);
		return 0;
	}
	*out = r;
	return 1;
}

/*
 * A connection given up may still have commands on their way to Redis (a
 * partition that heals: TCP sends them again later), which would then run
 * after what the next connection sends: a device's SUB after its UNSUB,
 * which registers the node as its holder for good.  So the new connection
 * first closes the old one in Redis, if it is still there (what Redis has
 * not read of it is dropped), and notes its own id for the next time: only
 * on the same Redis run (INFO's run_id: a restarted one gives the old id to
 * another client).  What Redis refuses (an ACL without INFO or CLIENT,
 * logged once; busy) leaves what is known for the next connection.  -1
 * when c failed.
 */
static int
redis_fence(redisContext *c, struct cluster_setup_fence *f, char *why, size_t n)
{
	char run[sizeof(f->run)] = "";
	redisReply *r;
	const char *p;
	int rc;

	if ((rc = redis_fence_ask(c, &r, "INFO server")) < 0)
		goto fail;
	if (rc > 0 && r->type == REDIS_REPLY_STRING &&
	    (p = strstr(r->str, "run_id:")) != NULL) {
		p += 7;
		snprintf(run, sizeof(run), "%.*s", (int)strcspn(p, "\r\n"), p);
	}
	if (r != NULL)
		freeReplyObject(r);
	if (run[0] != '\0' && strcmp(run, f->seen) != 0)
		f->new_run = true;
	if (run[0] == '\0')
		return 0;
	memcpy(f->seen, run, sizeof(run));
	if (f->id > 0 && strcmp(run, f->run) == 0) {
		if ((rc = redis_fence_ask(
		         c, &r, "CLIENT KILL ID %lld", f->id)) < 0)
			goto fail;
		if (r != NULL)
			freeReplyObject(r);
		if (rc == 0)
			return 0;
	}
	if ((rc = redis_fence_ask(c, &r, "CLIENT ID")) < 0)
		goto fail;
	f->id = 0;
	if (rc > 0 && r->type == REDIS_REPLY_INTEGER) {
		f->id = r->integer;
		memcpy(f->run, run, sizeof(run));
	}
	if (r != NULL)
		freeReplyObject(r);
	return 0;
fail:
	snprintf(why, n, "fence: %s", c->errstr);
	return -1;
}

/*
 * A Redis with a memory limit that evicts keys at it (maxmemory with any
 * maxmemory-policy but noeviction: volatile-lru is the managed services'
 * default) drops the cluster's own keys, which all have a TTL or are
 * taken for cold: heartbeats, held messages, grace periods, presence.
 * What was answered 200/202 would then be lost untold, so such a Redis is
 * not used (the connection fails, and why is logged); at its limit,
 * noeviction refuses writes instead (OOM: 503, and nothing lost).  An ACL
 * without INFO leaves it unchecked.  -1 with why when refused, or when c
 * failed.
 */
static int
redis_check_eviction(redisContext *c, char *why, size_t n)
{
	redisReply *r = redisCommand(c, "INFO memory");
	const char *p, *q;
	char policy[32] = "";
	long long maxmemory = 0;

	if (r == NULL) {
		snprintf(why, n, "INFO memory: %s", c->errstr);
		return -1;
	}
	if (r->type == REDIS_REPLY_STRING) {
		if ((p = strstr(r->str, "\nmaxmemory:")) != NULL)
			maxmemory = strtoll(p + 11, NULL, 10);
		if ((q = strstr(r->str, "\nmaxmemory_policy:")) != NULL) {
			q += 18;
			snprintf(policy, sizeof(policy), "%.*s",
			    (int)strcspn(q, "\r\n"), q);
		}
	}
	freeReplyObject(r);
	if (maxmemory > 0 && policy[0] != '\0' &&
	    strcmp(policy, "noeviction") != 0) {
		/* The command thread's alone: said once, and when it changes. */
		static char told[sizeof(policy)];

		snprintf(why, n,
		    "maxmemory-policy %s evicts the cluster's keys at maxmemory "
		    "(messages accepted would be lost untold): set noeviction",
		    policy);
		if (strcmp(told, policy) != 0) {
			log_warn("redis not used: %s", why);
			memcpy(told, policy, sizeof(told));
		}
		return -1;
	}
	return 0;
}

/* beep:sk's value in r, read into key: whether it was one. */
static bool
redis_sender_key_of(const redisReply *r, unsigned char *key, size_t n)
{
	if (r->type != REDIS_REPLY_STRING || r->len != 2 * n ||
	    strspn(r->str, "0123456789abcdef") != r->len)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(r->str + 2 * i, "%2x", &v);
		key[i] = (unsigned char)v;
	}
	return true;
}

/*
 * The key every node names senders under (cluster_sender(), the sender
 * share: see the POST script): a device's messages are in Redis, posted
 * through any node, so a sender must have one name on all of them, and
 * one no client can compute (else it could make its own collide with
 * another's).  The first node to find none in Redis draws it (SET NX,
 * beep:sk, no TTL); every node reads it as it connects and again at each
 * heartbeat (say false: no warning), and takes the one Redis has.  A
 * Redis that lost its data (restarted empty, flushed) gets a new one
 * from the next node to connect or beat; until every node has beaten
 * since, a sender may have two names: refused sooner (503), never a
 * loss.  Until 2026-12-07 a node read it only as it connected: a flush
 * left the nodes on two keys for as long as they stayed connected, and
 * a node that connected while Redis refused to store one (OOM,
 * READONLY, MISCONF) named no sender until it connected again, its
 * POSTs never checked (test_cluster_sender_key_changed, _late).  A key
 * not read (refused, drawn from no random bytes) leaves the node's
 * last, or none: its senders are not known (0), and its POSTs go as a
 * node of the version before's.  -1 when c failed.
 */
int
cluster_setup_sender_key(
    struct cluster *cl, redisContext *c, bool say, char *why, size_t n)
{
	unsigned char key[KEYED_HASH_KEY_BYTES];
	char hex[2 * KEYED_HASH_KEY_BYTES + 1];
	redisReply *r;
	size_t got = 0;
	bool read;

	if ((r = redisCommand(c, "GET beep:sk")) == NULL)
		goto fail;
	read = redis_sender_key_of(r, key, sizeof(key));
	freeReplyObject(r);
	if (!read) {
		while (got < sizeof(key)) {
			ssize_t k = getrandom(key + got, sizeof(key) - got, 0);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		for (size_t i = 0; i < sizeof(key); i++)
			snprintf(hex + 2 * i, 3, "%02x", key[i]);
		if (got == sizeof(key)) {
			r = redisCommand(c, "SET beep:sk %s NX", hex);
			if (r == NULL)
				goto fail;
			freeReplyObject(r);
		}
		if ((r = redisCommand(c, "GET beep:sk")) == NULL)
			goto fail;
		read = redis_sender_key_of(r, key, sizeof(key));
		freeReplyObject(r);
	}
	if (!read) {
		if (say)
			log_warn("redis: no sender key (beep:sk): this node's "
			         "POSTs are of no known sender "
			         "(BEEP_SENDER_SHARE) until Redis keeps one");
		return 0;
	}
	pthread_mutex_lock(&cl->lock);
	cluster_sender_key_set(cl, key);
	pthread_mutex_unlock(&cl->lock);
	return 0;
fail:
	snprintf(why, n, "sender key: %s", c->errstr);
	return -1;
}

/*
 * The command connection's first words: the fence, the eviction check,
 * the scripts, then the senders' key.
 */
int
cluster_setup(struct cluster *cl, redisContext *c,
    struct cluster_setup_fence *fence, char *why, size_t n)
{
	if (redis_fence(c, fence, why, n) < 0 ||
	    redis_check_eviction(c, why, n) < 0 ||
	    redis_load_scripts(cl, c, why, n) < 0)
		return -1;
	return cluster_setup_sender_key(cl, c, true, why, n);
}
