/*
 * cluster_publish: a POST in a cluster (cluster_publish()): the POST
 * script through the command thread, the sender share's name for it
 * (cluster_sender()), and, while Redis is down, the delivery to a device
 * with a live stream here alone (cluster_publish_local()).  See the
 * DESIGN comment in cluster.c ("Redis down").
 */
#include "cluster.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "body.h"
#include "cluster_impl.h"
#include "cluster_job.h"
#include "cluster_presence.h"
#include "util.h"

/* Redis is down: a device with a live stream here still gets m. */
static enum registry_error
cluster_publish_local(struct cluster *cl, const char *user, const char *device,
    const char *frame, size_t len, char *id, size_t size, bool *down)
{
	enum registry_error res = REGISTRY_NOT_FOUND;
	struct cluster_entry *e;
	struct registry_msg *m;

	/* Packed before cl->lock, as in cluster_publish(). */
	m = registry_msg_new(frame, len);
	pthread_mutex_lock(&cl->lock);
	e = cluster_presence_find(cl, user, device);
	if (e == NULL || e->streams == 0 || e->gate) {
		pthread_mutex_unlock(&cl->lock);
		registry_msg_unref(m);
		cluster_count(&cl->unreachable);
		*down = true;
		return res;
	}
	res = registry_publish_at(cl->reg, user, device, m, e->last + 1);
	if (res == REGISTRY_OK || res == REGISTRY_HELD) {
		e->last++;
		cluster_format_id(e->last, id, size);
		cluster_count(&cl->local);
		/*
		 * Another node's stream of the device (a second tab, a ghost
		 * left behind by a move) cannot have it, nor can Redis: once
		 * Redis is back, the resync tells them (see e->local).
		 */
		e->local = true;
		e->alone = e->last;
		cluster_presence_mark(cl, e);
	} else if (res == REGISTRY_NOT_FOUND || res == REGISTRY_DUPLICATE) {
		cluster_count(&cl->unreachable);
		*down = true;
	}
	pthread_mutex_unlock(&cl->lock);
	registry_msg_unref(m);
	return res;
}

uint64_t
cluster_sender(struct cluster *cl, const void *key, size_t len)
{
	unsigned char k[KEYED_HASH_KEY_BYTES];
	uint64_t h;

	/* Not cl->lock, which every cluster path contends for. */
	if (!cluster_sender_key_get(cl, k))
		return 0;
	h = keyed_hash_siphash24(key, len, k);
	return h != 0 ? h : 1;
}

enum registry_error
cluster_publish(struct cluster *cl, const char *user, const char *device,
    uint64_t sender, const char *frame, size_t len, char *id, size_t size,
    bool *down)
{
	return cluster_publish_key(
	    cl, user, device, sender, NULL, 0, frame, len, id, size, down);
}

enum registry_error
cluster_publish_key(struct cluster *cl, const char *user, const char *device,
    uint64_t sender, const char *key, size_t key_len, const char *frame,
    size_t len, char *id, size_t size, bool *down)
{
	enum registry_error res = REGISTRY_NOT_FOUND;
	struct cluster_job *j;
	redisReply *r;
	void *copy;

	*down = false;
	id[0] = '\0';
	if (!atomic_load(&cl->cmd_up))
		return cluster_publish_local(
		    cl, user, device, frame, len, id, size, down);
	/*
	 * A sender not named yet (the nodes' key not read): its key cannot
	 * be told from another's, so none is looked for (posted again, it
	 * would arrive twice) rather than another's message taken for it.
	 */
	if (sender == 0 || key_len > BODY_KEY_MAX)
		key_len = 0;
	/*
	 * The frame, as long as the client made it (up to BEEP_MAX_BODY),
	 * copied before cl->lock, which every POST, stream and delivery of
	 * the channel waits for (test_cluster_post_copy_unlocked).
	 */
	copy = xmemdup(frame, len);
	pthread_mutex_lock(&cl->lock);
	j = cluster_job_new(cl, JOB_POST, CLUSTER_LUA_POST, 4);
	cluster_job_key(j, "u", user, NULL);
	cluster_job_key(j, "g", user, NULL);
	cluster_job_key(j, "s", user, device);
	cluster_job_key(j, "m", user, device);
	cluster_job_str(j, device);
	cluster_job_str(j, user);
	cluster_job_arg_own(j, copy, len);
	cluster_job_num(j, cl->maxlen);
	cluster_job_num(j, cl->keep_ms);
	cluster_job_num(j, cl->grace_ms);
	cluster_job_num(j, CLUSTER_META_TTL_MS + cl->keep_ms);
	cluster_job_str(j, cl->run);
	/* Named: the script keeps it with the entry, and counts shares. */
	if (cl->share_on && sender != 0) {
		char name[17];

		snprintf(name, sizeof(name), "%016" PRIx64, sender);
		cluster_job_str(j, name);
		cluster_job_num(j, cl->share);
	} else if (key_len > 0) {
		/* No name: the script asks no share of it. */
		cluster_job_str(j, "");
		cluster_job_num(j, 0);
	}
	/*
	 * The key, its sender's name and its text (not a hash of it, which
	 * could be made to collide), looked for and kept with the entry.
	 * Another sender's key of the same text is another key.
	 */
	if (key_len > 0) {
		char k[17 + 1 + BODY_KEY_MAX];
		int n = snprintf(k, sizeof(k), "%016" PRIx64 "\x1f", sender);

		memcpy(k + n, key, key_len);
		cluster_job_arg(j, k, (size_t)n + key_len);
	}
	if (!cluster_job_call(cl, j)) {
		pthread_mutex_unlock(&cl->lock);
		cluster_count(&cl->unreachable);
		*down = true;
		return res;
	}
	pthread_mutex_unlock(&cl->lock);
	r = j->reply;
	if (r == NULL && !j->sent) {
		/* Redis went down before it was sent: as if it were down. */
		cluster_job_free(j);
		return cluster_publish_local(
		    cl, user, device, frame, len, id, size, down);
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		cluster_count(&cl->unreachable);
		*down = true;
	} else if (r->element[0]->integer == 429 ||
	    (r->element[0]->integer == 503 && r->elements >= 2)) {
		/* The sender share (see the script): as one node counts it. */
		res = r->element[0]->integer == 429 ? REGISTRY_CROWDED
		                                    : REGISTRY_HELD_FULL;
		registry_count_crowded(cl->reg);
	} else if (r->element[0]->integer == 503) {
		/* Redis restarted empty: presence not rebuilt yet. */
		cluster_count(&cl->unreachable);
		*down = true;
	} else if (r->element[0]->integer != 404 && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		/* Its count (beep:w) was noted with the answer. */
		res =
		    r->element[0]->integer == 200 ? REGISTRY_OK : REGISTRY_HELD;
		snprintf(id, size, "%s", r->element[1]->str);
	}
	cluster_job_free(j);
	return res;
}
