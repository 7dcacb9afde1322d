/*
 * cluster_impl: the state the cluster modules share (cluster.c, and
 * cluster_publish, cluster_job, cluster_presence, cluster_delivery,
 * cluster_redis, cluster_setup); see the
 * DESIGN comment in cluster.c.  Included by src/cluster*.c only: with
 * hiredis, it stays out of every other module.
 */
#ifndef BEEP_CLUSTER_IMPL_H
#define BEEP_CLUSTER_IMPL_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cluster.h"
#include "cluster_lua.h"
#include "keyed_hash.h"
#include "registry.h"

/* Reconnection backoff, doubling from min to max. */
#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 2000
/* How often the channel's thread looks up from its wait for messages. */
#define CLUSTER_SUB_POLL_MS 250
/*
 * How long the metadata of a device outlives its last message while a
 * node holds the device (once none does: away() in cluster_lua.c).
 */
#define CLUSTER_META_TTL_MS (24 * 3600 * 1000ULL)
/*
 * Most answers of this node's UNSUBs Redis keeps for the same UNSUB sent
 * again (see the UNSUB script): past it, only the newest half.
 */
#define CLUSTER_ANSWERS_MAX 4096
/* Most arguments of a command (SUB's: 3, 4 keys, 19). */
#define CLUSTER_ARGS 26

/* A message from the channel, waiting behind a closed gate. */
struct cluster_wait {
	uint64_t id;
	struct registry_msg *m;
	size_t cost; /* counted in cl->waiting_bytes: frame, overheads */
	struct cluster_wait *next;
};

struct cluster_entry {
	char *key; /* "USER\x1fDEVICE" */
	char *user, *device;
	size_t streams;   /* open here */
	unsigned jobs;    /* SUB or UNSUB jobs on their way */
	unsigned waiters; /* requests waiting for a SUB or job of it */
	bool registered;  /* Redis lists this node as a holder */
	bool gate;        /* closed: channel messages wait in waiting */
	bool sync_wanted; /* send SUB again after last */
	/*
	 * On cl->todo: changed since the command thread last looked at it
	 * (cluster_presence_mark()).
	 */
	bool todo;
	struct cluster_entry *todo_prev, *todo_next;
	/*
	 * Delivered messages here alone (Redis down) that no other node's
	 * stream has: the next resync (or UNSUB) tells the other holders.
	 */
	bool local;
	/*
	 * With local: the newest id given alone.  The UNSUB says it, so that
	 * a client back without an id is replayed what came after its
	 * streams' last only when they took every lone message (the others
	 * Redis never had: lost, told).
	 */
	uint64_t alone;
	/*
	 * The tokens, undo_lo to undo_hi (0 0: none), of the request SUBs
	 * from which no stream here started (the request gave up, or the
	 * registry refused the stream) since the last that one did: any of
	 * them may have run and ended the device's grace period.  The next
	 * UNSUB carries them and gives back what was held, if one of them is
	 * the last to have written this node's field (see the UNSUB script);
	 * the next request SUB too, and holds from there.  Only this entry's
	 * SUBs write the field, and any that starts a stream clears them.
	 */
	uint64_t undo_lo, undo_hi;
	/*
	 * cl->sub_tokens when a stream of e last started here (by its SUB,
	 * or from the registry alone): a SUB made before is not undone.
	 */
	uint64_t started;
	/*
	 * Another node's reset for what it delivered alone came at an id
	 * this node had given already (its own lone ids ran further) and was
	 * dropped as a duplicate: whatever that node delivered may be hidden
	 * among them.  The next resync reports nothing seen, so that the
	 * script moves the device and this node's streams get the reset.
	 */
	bool told;
	uint64_t last; /* the newest id given to the registry */
	uint64_t seen; /* the newest of them that came from Redis */
	/*
	 * The lowest id from Redis that the registry dropped as a duplicate
	 * above seen: one it had given alone (Redis gave a message the same
	 * id, in the same millisecond), so that message never reached a
	 * stream here, though seen may come to be above it.  A resync, and
	 * an UNSUB that carries e->local, say they have seen no further than
	 * below it (presence_seen() in cluster_presence.c).  0: none.
	 */
	uint64_t collided;
	/*
	 * When its last stream here closed, what its streams had taken
	 * (registry_unsubscribe_taken(), at most last): what came after (the
	 * channel's, after a stream ended in the registry or before the
	 * UNSUB ran) no stream here took, and the UNSUB holds it for the
	 * device's return.  0: none closed.
	 */
	uint64_t upto;
	/*
	 * Where its streams here began: the SUB's start for the first of
	 * them (cluster_delivery_apply()'s fresh), an id they took nothing
	 * at or below.  And, when the last closed, whether they took
	 * anything past it (upto above began): a stream that started after
	 * what another node's stream held untaken (the device live there,
	 * a client without an id) took none of it, and its UNSUB must not
	 * say a stream of the device took it (the UNSUB's "took" field).
	 */
	uint64_t began;
	bool took;
	/*
	 * Where the last resync moved the device, above what this node had
	 * delivered alone (cluster_delivery_apply()'s to): the ids below it
	 * that no message has are nobody's, so a stream here that took the
	 * last message before it had everything up to it.  0: none.
	 */
	uint64_t moved;
	/*
	 * With moved: the newest id the registry had below it (what the
	 * resync replayed included).  Streams that took less than that did
	 * not have everything below the move: the UNSUB must not say so.
	 */
	uint64_t moved_below;
	/*
	 * A new stream's replay had no room for the message with this id
	 * (registry_replay_at()): the stream starts after it, with a reset.  0:
	 * none.
	 */
	uint64_t replay_cut;
	/*
	 * The request id of its last UNSUB, until Redis answers one: the
	 * next UNSUB, after an answer lost with the connection, is the same
	 * request (nothing else of e was sent since: a SUB sent makes this
	 * 0, see cluster_presence_answer()), and Redis answers it as it did
	 * the first time rather than run it again.  0: none.
	 */
	uint64_t request;
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
	JOB_PRUNE, /* a new Redis run: the node's registrations go */
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
	/*
	 * A SUB's: the token it leaves in this node's field (cl->sub_tokens);
	 * an UNSUB's: the last of the tokens it undoes (e->undo_hi), or 0;
	 * a BEAT's: the generation it acknowledges (cl->tell_ack), or 0.
	 */
	uint64_t token;
	bool local;  /* a SYNC's or UNSUB's: it carries its entry's local */
	bool told;   /* a SYNC's: it carries its entry's told */
	bool waited; /* a request waits on answered (cluster_job_call()) */
	pthread_cond_t answered;
	struct cluster_job *next;
};

struct cluster {
	struct registry *reg;
	char node[64];
	char *host, *path, *user, *password;
	int port, db;
	unsigned ttl_ms, timeout_ms;
	size_t maxlen, max_waiting;
	/*
	 * What waits behind all gates (cluster_wait.cost), and its bound: a
	 * quarter of BEEP_MAX_MESSAGE_MEMORY, beside the registry's (none
	 * when that is 0).  With cl->lock.
	 */
	size_t waiting_bytes, max_waiting_bytes;
	size_t replay_bytes; /* most frame bytes a SUB replays */
	uint64_t keep_ms, grace_ms;
	char sha[CLUSTER_LUA__MAX][41];

	pthread_mutex_t lock;
	/* The command thread: work, or stop (in its backoff: stop only). */
	pthread_cond_t wake;
	pthread_cond_t sub_wake; /* the channel's thread, in backoff: stop */
	/*
	 * A pipe whose read end the channel's thread polls beside its
	 * connection: cluster_free() writes a byte to it after setting stop,
	 * so the thread ends at once rather than at its next look up
	 * (CLUSTER_SUB_POLL_MS).
	 */
	int stop_pipe[2];
	pthread_cond_t done; /* request threads: a job is done, a gate opened */
	struct cluster_job *queue, *queue_tail;
	struct cluster_entry *entries;
	bool dirty; /* some entry may need a job: those on todo */
	/*
	 * The entries that changed since the command thread last looked
	 * (utlist DL via todo_prev/todo_next, in the order marked): it looks
	 * at them alone, not at every entry of the node, with cl->lock held.
	 */
	struct cluster_entry *todo;
	/*
	 * Entries cluster_presence_reconcile() has looked at, in all: its
	 * walk, under cl->lock, counted (test_cluster_reconcile_walk).
	 */
	unsigned long reconciled;
	/*
	 * A Redis has known this node (it beat, or was connected before the
	 * present connection): a Redis without beep:born lost its data.
	 */
	bool again;
	/*
	 * A heartbeat went unanswered: it may have found the node's key gone
	 * (swept, see the beat script) and set it again, so the next answer
	 * cannot tell; it resyncs whatever it says.
	 */
	bool beat_unknown;
	/*
	 * The generation of the last "resync, and tell" a heartbeat
	 * answered ({2, gen}: see the beat script), which this node acted
	 * on; and the one its next heartbeat acknowledges, until a
	 * heartbeat carrying it is answered (0: none).  Redis gives the
	 * answer again until then: one lost with the connection is not.
	 */
	uint64_t tell_done, tell_ack;
	/*
	 * Registrations Redis refused (an error answer: MISCONF, OOM,
	 * NOREPLICAS, READONLY...) are sent again no sooner than retry_at
	 * (CLOCK_MONOTONIC ms), retry_ms later each time they fail again:
	 * a refusal that lasts would otherwise have them sent again at once,
	 * as fast as Redis answers, each answer logged.  0: none pending.
	 */
	uint64_t retry_at;
	unsigned retry_ms;
	unsigned sub_epoch;  /* channel subscriptions made so far */
	uint64_t sub_tokens; /* SUB jobs made so far (their tokens) */
	uint64_t requests;   /* UNSUB request ids given so far */
	unsigned rebuild_ms; /* see the beat script */
	/*
	 * The key every node names senders under (cluster_sender()), as
	 * Redis keeps it (beep:sk, see cluster_setup.c), in words, under a
	 * sequence count: odd while written, 0 until first read.  Written
	 * with lock held (cluster_sender_key_set()); read without it, on
	 * every POST (cluster_sender(): a seqlock).
	 */
	_Atomic uint64_t sender_key[KEYED_HASH_KEY_BYTES / 8];
	_Atomic uint64_t sender_seq;
	/*
	 * BEEP_SENDER_SHARE below 100, and that share of maxlen (rounded
	 * up, registry_sender_share()): what one sender may hold of a
	 * device away (the POST script).
	 */
	bool share_on;
	size_t share;
	bool stop, leaving;
	/*
	 * The BYE found the scripts gone, or was lost with the connection
	 * before the stop: sent again once connected (see
	 * cluster_redis_cmd_main()).
	 */
	bool bye_again;
	bool bye_said; /* a BYE was answered */
	/*
	 * A PRUNE failed: sent again, after the registrations' backoff when
	 * Redis refused it, else on the next connection.
	 */
	bool prune_again;
	bool prune_queued; /* a PRUNE sent, not answered yet */
	pthread_t cmd_thread, sub_thread;

	atomic_bool cmd_up, sub_up;
	/*
	 * The highest count of accepted messages a POST had from Redis
	 * (beep:w) since its data began at wrote_born (beep:born, ms; 0:
	 * none), both from the answers in their order (the command thread,
	 * with lock): a new run of that data that began below it lost some
	 * (PRUNE).  A count from before the data began again (a flush) says
	 * nothing of the data after it.
	 */
	uint64_t wrote, wrote_born;
	/*
	 * The Redis run of the command connection (INFO's run_id; "" not
	 * known), and the one wrote was counted on: two runs of the same data
	 * give the same count to two different messages (one lost with a
	 * snapshot, one the restored Redis counted in its place), so Redis
	 * keeps each run's highest (beep:wr) and PRUNE compares with that.
	 */
	char run[48], wrote_run[48];
	_Atomic uint64_t received, duplicates, replayed, local, unreachable;
	_Atomic uint64_t reconnects, resets;
};

static inline void
cluster_count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

_Static_assert(KEYED_HASH_KEY_BYTES % 8 == 0, "the senders' key in words");

/*
 * The senders' key, a seqlock of C11 atomics: the words are atomics too,
 * so that no read races a write, and written with release (read with
 * acquire) so that the count's odd store comes before them and a reader
 * that read any word of a new key reads the count past what it first
 * read, and tries again: never half of one key and half of another.
 * Set: with cl->lock held (one writer at a time).
 */
static inline void
cluster_sender_key_set(
    struct cluster *cl, const unsigned char key[KEYED_HASH_KEY_BYTES])
{
	uint64_t seq =
	    atomic_load_explicit(&cl->sender_seq, memory_order_relaxed);

	atomic_store_explicit(&cl->sender_seq, seq + 1, memory_order_relaxed);
	for (size_t i = 0; i < KEYED_HASH_KEY_BYTES / 8; i++) {
		uint64_t w;

		memcpy(&w, key + 8 * i, sizeof(w));
		atomic_store_explicit(
		    &cl->sender_key[i], w, memory_order_release);
	}
	atomic_store_explicit(&cl->sender_seq, seq + 2, memory_order_release);
}

/* Get, into key, without cl->lock: false while none was set. */
static inline bool
cluster_sender_key_get(
    struct cluster *cl, unsigned char key[KEYED_HASH_KEY_BYTES])
{
	uint64_t seq, again;

	do {
		seq =
		    atomic_load_explicit(&cl->sender_seq, memory_order_acquire);
		if (seq == 0)
			return false;
		for (size_t i = 0; i < KEYED_HASH_KEY_BYTES / 8; i++) {
			uint64_t w = atomic_load_explicit(
			    &cl->sender_key[i], memory_order_acquire);

			memcpy(key + 8 * i, &w, sizeof(w));
		}
		again =
		    atomic_load_explicit(&cl->sender_seq, memory_order_relaxed);
	} while ((seq & 1) != 0 || again != seq);
	return true;
}

/*
 * A request's SUB of token started no stream here (e->undo_lo..undo_hi):
 * the next UNSUB, or SUB, undoes it; unless a stream of e started after
 * it was made.  With cl->lock held.
 */
static inline void
cluster_entry_undo(struct cluster_entry *e, uint64_t token)
{
	if (token <= e->started)
		return;
	if (e->undo_hi == 0)
		e->undo_lo = token;
	e->undo_hi = token;
}

/* A stream of e started: no SUB made before is to be undone. */
static inline void
cluster_entry_started(struct cluster *cl, struct cluster_entry *e)
{
	e->undo_lo = e->undo_hi = 0;
	e->started = cl->sub_tokens;
}

#endif
