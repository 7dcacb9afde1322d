/*
 * cluster_redis: the connections to Redis and the two threads that own
 * them: the command thread (connects, has cluster_setup ready the
 * connection, sends the queued jobs pipelined, beats) and the subscriber
 * thread (the node's channel).  Each reconnects with backoff
 * (CLUSTER_BACKOFF_MIN_MS doubling to CLUSTER_BACKOFF_MAX_MS) and logs
 * each change of state once.  Cluster modules only.
 */
#ifndef BEEP_CLUSTER_REDIS_H
#define BEEP_CLUSTER_REDIS_H

#include "cluster_impl.h"

/*
 * "redis://[[USER]:PASS@]HOST[:PORT][/DB]" or "unix://[[USER]:PASS@]/PATH"
 * into cl's host, port, db, user, password or path (USER and PASS
 * percent-decoded).  Returns 0, or -1; either way
 * cluster_redis_forget_url() frees what it set.
 */
int cluster_redis_parse_url(struct cluster *cl, const char *url);
void cluster_redis_forget_url(struct cluster *cl);

/*
 * url as it may be logged, into out[n]: all between its scheme's "://"
 * (or its start) and its last '@' (user and password) as "***", whatever
 * the scheme.  Cut short to fit.
 */
void cluster_redis_url_for_log(const char *url, char *out, size_t n);
/*
 * Queue the node's BYE (the bye script in cluster_lua.c), with cl->lock
 * held: at a stop (cluster_stop()), and by the command thread again once
 * it has loaded the scripts again, when Redis had lost them (NOSCRIPT:
 * SCRIPT FLUSH, a failover), which would otherwise leave the node's key
 * to expire and its devices held from its last heartbeat, as a dead
 * node's are.  Stopping, it gets one reconnection.
 */
void cluster_redis_bye(struct cluster *cl);
/* The threads' bodies (pthread_create), given the cluster; they end on cl->stop. */
void *cluster_redis_cmd_main(void *arg);
void *cluster_redis_sub_main(void *arg);

#endif
