/*
 * cluster_setup: what the command thread (cluster_redis) asks of Redis on
 * a new command connection before the connection takes a job: the fence
 * (the connection before it closed in Redis, if Redis still holds it),
 * the eviction check (a Redis that evicts the cluster's keys is not
 * used), the scripts (SCRIPT LOAD of each cluster_lua script), and the
 * senders' key, which the command thread reads again after each
 * heartbeat.  Called on the command thread only, without cl->lock (taken
 * here to store what is read).  Cluster modules only.
 */
#ifndef BEEP_CLUSTER_SETUP_H
#define BEEP_CLUSTER_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster_impl.h"

/*
 * The command connection Redis knows this node by: its CLIENT ID, and the
 * run_id of the Redis that gave it (ids start again when Redis does).
 */
struct cluster_setup_fence {
	long long id; /* 0: none known */
	char run[48];
	/*
	 * The run INFO last named (CLIENT may be refused where INFO is not:
	 * run is then never set), and whether this connection's is another.
	 * One not known (INFO refused) is not taken for another: every
	 * connection would prune the node's registrations (test 70).
	 */
	char seen[48];
	/*
	 * Until its PRUNE is queued: a connection that fails after the fence
	 * (-LOADING to SCRIPT LOAD while Redis loads its snapshot, a refused
	 * eviction policy) leaves the run seen, not pruned (test 71).
	 */
	bool new_run;
};

/*
 * Prepare c, connected and authenticated, for the command thread: the
 * fence (*fence, the command thread's own, zeroed before its first
 * connection), the eviction check, the scripts into cl->sha, then the
 * senders' key.  Returns 0, or -1 with why (n bytes) when c failed or
 * Redis is not to be used; c is the caller's to free either way.
 */
int cluster_setup(struct cluster *cl, redisContext *c,
    struct cluster_setup_fence *fence, char *why, size_t n);

/*
 * Read the senders' key from Redis (drawing and storing one if it has
 * none) into cl (cluster_sender_key_set()); say: warn when none could be
 * read.  Returns 0 (also when none could be read: the node's last is
 * kept), or -1 with why when c failed.
 */
int cluster_setup_sender_key(
    struct cluster *cl, redisContext *c, bool say, char *why, size_t n);

#endif
