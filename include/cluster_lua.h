/*
 * cluster_lua: the Lua scripts the cluster runs in Redis, one per
 * operation, each atomic there (the keys they use: see the DESIGN comment
 * in cluster.c).  Text only: no Redis client, no I/O.  Redis compiles them
 * when a node connects (SCRIPT LOAD); tests/unit/test_cluster.c runs them
 * in a real redis-server.
 */
#ifndef BEEP_CLUSTER_LUA_H
#define BEEP_CLUSTER_LUA_H

enum cluster_lua {
	CLUSTER_LUA_POST, /* append, publish to the holders: 200/202/404 */
	CLUSTER_LUA_SUB, /* register a holder; where to start, what to replay */
	CLUSTER_LUA_UNSUB, /* drop a holder; grace when none is left */
	CLUSTER_LUA_LIST,  /* the devices with a live holder, or 503 */
	CLUSTER_LUA_BEAT,  /* the node's heartbeat: was its key still there? */
	CLUSTER_LUA_BYE,   /* the node stops: its key and heartbeat go */
	CLUSTER_LUA_PRUNE, /* a new Redis run: the node's registrations go */
	CLUSTER_LUA__MAX
};

/* The scripts' text, by enum cluster_lua. */
extern const char *const cluster_lua[CLUSTER_LUA__MAX];

#endif
