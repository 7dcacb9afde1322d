/*
 * cluster: several nodes joined through Redis, between the api and the
 * registry.  The API's only view of it; hiredis stays inside the cluster
 * modules (src/cluster*.c, include/cluster_impl.h).
 *
 * Each device has a Redis stream: a POST on any node appends to it (the
 * stream entry id is the event id) and publishes the message to the
 * nodes that hold a live stream of the device, which hand it to their
 * registry with that id (registry_publish_at()).  A node lists the
 * devices it holds in Redis and refreshes a key with a TTL: a node that
 * dies leaves the list within the TTL.  A stream that opens on a node
 * where its device has no other stream is replayed from the Redis stream
 * (REGISTRY_RESUME_FROM).  See the DESIGN comment in cluster.c.
 *
 * Redis I/O happens in the module's two threads only, never under the
 * registry lock; request threads hand them a command and wait for its
 * answer, at most redis_timeout.
 */
#ifndef BEEP_CLUSTER_H
#define BEEP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"

struct cluster;
/* A device this node holds streams of: what cluster_subscribe() gives. */
struct cluster_entry;

struct cluster_stats {
	bool up;             /* both connections to Redis are up */
	const char *node;    /* this node's id in Redis */
	uint64_t received;   /* messages received from Redis for streams here */
	uint64_t duplicates; /* of them, already delivered: dropped */
	uint64_t replayed;   /* messages replayed from Redis to streams here */
	uint64_t local; /* POSTs delivered here alone while Redis was down */
	uint64_t unreachable; /* requests answered 503: Redis was needed */
	uint64_t reconnects;  /* connections to Redis made again after a loss */
	uint64_t resets;      /* streams told that messages were lost */
};

/*
 * Start a node of the cluster c->redis_url names, its threads and its
 * connections (made, and made again, in the background: the node starts
 * while Redis is down).  reg must outlive it.  Returns NULL after logging
 * why when the URL is unusable.
 */
struct cluster *cluster_new(const struct config *c, struct registry *reg);
/*
 * Whether cluster_new() could take c->redis_url (empty: no cluster), for
 * --check-config: 0, or -1 after logging why.
 */
int cluster_check(const struct config *c);
/* Stop the threads and free everything; no stream may be open. */
void cluster_free(struct cluster *cl);
/*
 * The service is stopping: take this node out of the cluster now (its
 * devices go into their grace period everywhere).  Thread-safe.
 */
void cluster_stop(struct cluster *cl);

/*
 * Open a stream as registry_subscribe() does, for the whole cluster: a
 * device this node holds no stream of is registered in Redis and starts
 * where resume says, replayed from its Redis stream (resume->id is a
 * cluster id, see cluster_parse_id()).  On success *ref is what
 * cluster_unsubscribe() must be given once the stream has ended.
 * Returns NULL with *err set as registry_subscribe() does (REGISTRY_CLOSED
 * once cluster_stop() was called, also for a page that waited here), or
 * with *down set when Redis was needed and did not answer.
 */
struct registry_stream *cluster_subscribe(struct cluster *cl, const char *user,
    const char *device, const struct registry_resume *resume,
    struct registry_start *start, struct cluster_entry **ref,
    enum registry_error *err, bool *down);

/*
 * A stream s that cluster_subscribe() opened, with ref, has ended: close
 * it, in place of registry_unsubscribe(), and with the device's last
 * stream here, have its registration in Redis go, holding what its
 * streams did not take for the device's return.
 */
void cluster_unsubscribe(
    struct cluster *cl, struct cluster_entry *ref, struct registry_stream *s);

/*
 * The name every node of the cluster gives the sender key names (len
 * bytes: what BEEP_RATE counts it by), never 0; 0 while this node has not
 * read the key the nodes share (see cluster_setup.c).  Thread-safe.
 */
uint64_t cluster_sender(struct cluster *cl, const void *key, size_t len);

/*
 * Deliver a packed event to (user, device) wherever it is live: returns
 * REGISTRY_OK (live somewhere), REGISTRY_HELD (in its grace period),
 * REGISTRY_NOT_FOUND, or REGISTRY_MEMORY_FULL / REGISTRY_CLOSED from the
 * local registry; the event id in id.  *down is set (and the result
 * means nothing) when Redis was needed and did not answer.  While Redis
 * is down a device with a live stream on this node still gets it.
 */
enum registry_error cluster_publish(struct cluster *cl, const char *user,
    const char *device, uint64_t sender, const char *frame, size_t len,
    char *id, size_t size, bool *down);
/*
 * cluster_publish() with an idempotency key, key[0..key_len) (body_msg's,
 * key_len 0: none): a message posted by sender with the key of an entry
 * the device's Redis stream still holds from the same sender is that one
 * sent again (its sender lost the answer): not added, answered with that
 * entry's id (REGISTRY_OK to a device with a holder, REGISTRY_HELD to
 * one in its grace period).  Another sender's key of the same text is
 * another key.  Redis keeps each key, its text and its sender's name, as
 * long as the stream keeps its entry (keep_ms).  Not while Redis is
 * down (the node's own registry delivers then), nor for sender 0 (not
 * named yet): posted again, it is a new message.
 */
enum registry_error cluster_publish_key(struct cluster *cl, const char *user,
    const char *device, uint64_t sender, const char *key, size_t key_len,
    const char *frame, size_t len, char *id, size_t size, bool *down);

/*
 * The devices of user with a live stream on any live node, as
 * registry_devices() gives them.  Returns 0, or -1 when Redis did not
 * answer, or when it lost its data and the nodes have not all registered
 * their devices again (the list is not known yet).
 */
int cluster_devices(
    struct cluster *cl, const char *user, char ***names, size_t *n);
/*
 * Whether user's device is there for a POST: 1 when it has a live holder
 * or is away within its grace period (a POST would be 200 or 202), 0
 * when not, -1 when Redis cannot say.
 */
int cluster_device_known(
    struct cluster *cl, const char *user, const char *device);

/* A copy of the figures, for /healthz and /metrics; lock-free. */
void cluster_stats(struct cluster *cl, struct cluster_stats *st);

/*
 * Event ids in a cluster are Redis stream ids, "MS-SEQ"; the registry
 * holds them packed in 64 bits.  cluster_parse_id() returns 0 (leading
 * zeros read as the same id, as Redis reads them), or -1 for anything
 * else.
 */
#define CLUSTER_ID_MAX 48
int cluster_parse_id(const char *s, uint64_t *id);
void cluster_format_id(uint64_t id, char *out, size_t size);

#endif
