/*
 * metrics: the service's counters and histograms, and their rendering in
 * the Prometheus text exposition format (version 0.0.4).
 *
 * Counting never takes a lock: every counter and histogram bucket is a C11
 * atomic updated with relaxed ordering, so the hot path (a POST, a write
 * to a stream) pays one uncontended-in-the-common-case atomic add.  The
 * figures are process-wide, like the log.  A scrape reads them without
 * stopping anyone: a histogram's count is the sum of the buckets it read,
 * so every scrape is self-consistent even while writers run.  Gauges that
 * other modules own (the registry's tables, the worker pool) are passed in
 * at scrape time (struct metrics_gauges).
 */
#ifndef BEEP_METRICS_H
#define BEEP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "http.h"
#include "registry.h"
#include "util.h"

/* The Content-Type of metrics_render()'s output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Note the start time (beep_start_time_seconds); once, at start-up. */
void metrics_init(void);

/* A POST was answered with status (whatever refused or accepted it). */
void metrics_post(enum http_status status);
/* A request was refused by the per-sender rate limit (BEEP_RATE). */
void metrics_rate_limited(void);
/* A subscribe refused for now, with status (HTTP_429 or HTTP_503). */
void metrics_stream_refused(enum http_status status);
/* A POST took us microseconds to decode, pack and publish. */
void metrics_post_time(uint64_t us);
/* A stream write of len bytes succeeded, carrying events messages. */
void metrics_stream_write(size_t events, size_t len);
/* A stream ended after lifetime_ms milliseconds. */
/* A message event written, latency_us after it was published. */
void metrics_delivered(uint64_t latency_us);
void metrics_stream_end(uint64_t lifetime_ms);
/* A stream closed because a write outlasted BEEP_WRITE_TIMEOUT. */
void metrics_write_timeout(void);
/*
 * A stream's write starts (true) or ends (false) waiting for room in its
 * connection: beep_stream_writes_waiting counts those waiting now.
 */
void metrics_write_waiting(bool waiting);

/* What other modules own, read at scrape time. */
struct metrics_gauges {
	struct registry_stats reg; /* registry_stats() */
	size_t max_streams;        /* BEEP_MAX_STREAMS */
	size_t max_message_bytes;  /* BEEP_MAX_MESSAGE_MEMORY */
	size_t threads, idle;      /* worker threads alive, and idle */
	size_t requests;           /* in progress, streams included */
	bool ready;                /* what /readyz answers */
	/* In a cluster (BEEP_REDIS_URL) only: cluster_stats(). */
	bool cluster;
	struct cluster_stats cl;
};

/* Append every metric, in the text exposition format, to out. */
void metrics_render(struct buf *out, const struct metrics_gauges *g);

/* Zero every counter (unit tests only: never while others count). */
void metrics_reset(void);

#endif
