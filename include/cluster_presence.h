/*
 * cluster_presence: the devices this node holds streams of (struct
 * cluster_entry) and their registration in Redis: SUB when a device's
 * first stream opens here, UNSUB when its last one has gone, SUB again
 * (a resync) after a loss; and what each answer does to them.  All with
 * cl->lock held.  Cluster modules only.
 */
#ifndef BEEP_CLUSTER_PRESENCE_H
#define BEEP_CLUSTER_PRESENCE_H

#include "cluster_impl.h"

/* The entry of (user, device), or NULL. */
struct cluster_entry *cluster_presence_find(
    struct cluster *cl, const char *user, const char *device);
/* Take e out of the table and free it, whatever refers to it. */
void cluster_presence_free(struct cluster *cl, struct cluster_entry *e);
/* Free e when nothing refers to it any more. */
void cluster_presence_maybe_free(struct cluster *cl, struct cluster_entry *e);
/*
 * A SUB job (JOB_SUB, a request's; JOB_SYNC, a resync) for e, after the
 * id after ("": none); counted in e->jobs.
 */
struct cluster_job *cluster_presence_sub_job(struct cluster *cl,
    struct cluster_entry *e, enum cluster_job_kind kind, const char *after);
/* Every entry with streams closes its gate and sends SUB again. */
void cluster_presence_resync_all(struct cluster *cl);
/*
 * e changed (its streams, jobs, gate, registration...): the command thread
 * looks at it next (cl->dirty).  With cl->lock held.
 */
void cluster_presence_mark(struct cluster *cl, struct cluster_entry *e);
/* Queue what the marked entries need (SUB again, UNSUB); the command thread's. */
void cluster_presence_reconcile(struct cluster *cl);
/*
 * Queue e's UNSUB now: its streams here have all closed, it is still
 * registered, and nothing of it is queued (see cluster_subscribe()).
 * With cl->lock held.
 */
void cluster_presence_unsub_now(struct cluster *cl, struct cluster_entry *e);
/* What j's answer (j->reply, NULL: failed) does to its entry and the node. */
void cluster_presence_answer(struct cluster *cl, struct cluster_job *j);

#endif
