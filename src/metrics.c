/* metrics: see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <time.h>

#include "config.h"

/* The most buckets a histogram has, +Inf excluded. */
#define METRICS_MAX_BUCKETS 12

struct metrics_histogram {
	const char *name, *help;
	size_t nbounds;
	uint64_t bounds_us[METRICS_MAX_BUCKETS]; /* upper bounds, ascending */
	/* Non-cumulative counts; [nbounds] is the +Inf bucket. */
	_Atomic uint64_t buckets[METRICS_MAX_BUCKETS + 1];
	_Atomic uint64_t sum_us;
};

static _Atomic uint64_t metrics_posts[HTTP__MAX];
static _Atomic uint64_t metrics_limited;
/* Subscribes refused for now: 429 (index 0) and 503 (index 1). */
static _Atomic uint64_t metrics_refused[2];
static _Atomic uint64_t metrics_events;
static _Atomic uint64_t metrics_bytes;
static _Atomic uint64_t metrics_write_timeouts;
/* Stream writes waiting for room now (a gauge: up, then down). */
static _Atomic uint64_t metrics_writes_waiting;
static _Atomic uint64_t metrics_start_s;

static struct metrics_histogram metrics_lifetime = {
    .name = "beep_stream_lifetime_seconds",
    .help = "How long streams lasted, from subscribe to end.",
    .nbounds = 10,
    .bounds_us = {1000000, 5000000, 15000000, 60000000, 300000000, 900000000,
        3600000000, 14400000000, 43200000000, 86400000000},
};

static struct metrics_histogram metrics_delivery = {
    .name = "beep_delivery_latency_seconds",
    .help = "From a message's publish to the end of the write of its event "
            "to a stream (replays included).",
    .nbounds = 12,
    .bounds_us = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000,
        1000000, 10000000},
};

static struct metrics_histogram metrics_post_hist = {
    .name = "beep_post_duration_seconds",
    .help = "Time to decode, pack and publish a POST's message (body "
            "read and response write excluded).",
    .nbounds = 10,
    .bounds_us = {10, 25, 50, 100, 250, 500, 1000, 2500, 10000, 100000},
};

static void
metrics_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t
metrics_read(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void
metrics_observe(struct metrics_histogram *h, uint64_t us)
{
	size_t i = 0;

	while (i < h->nbounds && us > h->bounds_us[i])
		i++;
	metrics_count(&h->buckets[i], 1);
	metrics_count(&h->sum_us, us);
}

void
metrics_init(void)
{
	atomic_store(&metrics_start_s, (uint64_t)time(NULL));
}

void
metrics_post(enum http_status status)
{
	if (status < HTTP__MAX)
		metrics_count(&metrics_posts[status], 1);
}

void
metrics_rate_limited(void)
{
	metrics_count(&metrics_limited, 1);
}

void
metrics_stream_refused(enum http_status status)
{
	metrics_count(&metrics_refused[status == HTTP_503], 1);
}

void
metrics_post_time(uint64_t us)
{
	metrics_observe(&metrics_post_hist, us);
}

void
metrics_stream_write(size_t events, size_t len)
{
	if (events > 0)
		metrics_count(&metrics_events, events);
	metrics_count(&metrics_bytes, len);
}

void
metrics_delivered(uint64_t latency_us)
{
	metrics_observe(&metrics_delivery, latency_us);
}

void
metrics_write_timeout(void)
{
	metrics_count(&metrics_write_timeouts, 1);
}

void
metrics_write_waiting(bool waiting)
{
	if (waiting)
		metrics_count(&metrics_writes_waiting, 1);
	else
		atomic_fetch_sub_explicit(
		    &metrics_writes_waiting, 1, memory_order_relaxed);
}

void
metrics_stream_end(uint64_t lifetime_ms)
{
	metrics_observe(&metrics_lifetime, lifetime_ms * 1000);
}

static void
metrics_head(
    struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_one(struct buf *out, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_head(out, name, type, help);
	buf_printf(out, "%s %" PRIu64 "\n", name, v);
}

/* Seconds from microseconds, exactly (no floating point rounding). */
static void
metrics_seconds(struct buf *out, uint64_t us)
{
	buf_printf(out, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

static void
metrics_histogram_render(struct buf *out, struct metrics_histogram *h)
{
	uint64_t cum = 0;

	metrics_head(out, h->name, "histogram", h->help);
	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += metrics_read(&h->buckets[i]);
		buf_printf(out, "%s_bucket{le=\"", h->name);
		if (i < h->nbounds)
			metrics_seconds(out, h->bounds_us[i]);
		else
			buf_puts(out, "+Inf");
		buf_printf(out, "\"} %" PRIu64 "\n", cum);
	}
	buf_printf(out, "%s_sum ", h->name);
	metrics_seconds(out, metrics_read(&h->sum_us));
	buf_printf(out, "\n%s_count %" PRIu64 "\n", h->name, cum);
}

/* Figures of the cluster (BEEP_REDIS_URL), read from its atomics. */
static void
metrics_render_cluster(struct buf *out, const struct metrics_gauges *g)
{
	metrics_one(out, "beep_redis_up", "gauge",
	    "1 while both connections to Redis are up, else 0.", g->cl.up);
	metrics_one(out, "beep_cluster_received_total", "counter",
	    "Messages received from Redis for streams on this node.",
	    g->cl.received);
	metrics_one(out, "beep_cluster_duplicates_total", "counter",
	    "Messages from Redis a device here already had: dropped.",
	    g->cl.duplicates);
	metrics_one(out, "beep_cluster_replayed_total", "counter",
	    "Messages replayed from Redis streams to streams opening here.",
	    g->cl.replayed);
	metrics_one(out, "beep_cluster_local_posts_total", "counter",
	    "POSTs delivered on this node alone while Redis was down.",
	    g->cl.local);
	metrics_one(out, "beep_cluster_unreachable_total", "counter",
	    "Requests answered 503 because Redis was needed and down.",
	    g->cl.unreachable);
	metrics_one(out, "beep_redis_reconnects_total", "counter",
	    "Connections to Redis made again after a loss.", g->cl.reconnects);
}

void
metrics_render(struct buf *out, const struct metrics_gauges *g)
{
	uint64_t start = metrics_read(&metrics_start_s);

	metrics_head(out, "beep_build_info", "gauge",
	    "The running version: always 1, with the version as a label.");
	buf_printf(out, "beep_build_info{version=\"%s\"} 1\n", config_version);
	metrics_one(out, "beep_start_time_seconds", "gauge",
	    "When the process started, in seconds since 1970.", start);
	metrics_one(out, "beep_ready", "gauge",
	    "1 when new streams are accepted (what /readyz says), else 0.",
	    g->ready);
	metrics_one(out, "beep_streams_open", "gauge", "Open SSE streams.",
	    g->reg.streams);
	metrics_one(out, "beep_streams_max", "gauge",
	    "Most open streams allowed (BEEP_MAX_STREAMS).", g->max_streams);
	metrics_one(out, "beep_users", "gauge",
	    "Users with a device, live or in its grace period.", g->reg.users);
	metrics_head(out, "beep_devices", "gauge",
	    "Devices: live (with a stream) or in their grace period.");
	buf_printf(out,
	    "beep_devices{state=\"live\"} %zu\n"
	    "beep_devices{state=\"grace\"} %zu\n",
	    g->reg.devices > g->reg.grace ? g->reg.devices - g->reg.grace : 0,
	    g->reg.grace);
	metrics_head(out, "beep_worker_threads", "gauge",
	    "Worker threads: busy (serving a request or a stream) or idle "
	    "(waiting to accept).");
	buf_printf(out,
	    "beep_worker_threads{state=\"busy\"} %zu\n"
	    "beep_worker_threads{state=\"idle\"} %zu\n",
	    g->threads > g->idle ? g->threads - g->idle : 0, g->idle);
	metrics_one(out, "beep_requests_in_progress", "gauge",
	    "Requests being served, open streams included.", g->requests);
	metrics_head(out, "beep_posts_total", "counter",
	    "POSTs answered, by status code.");
	for (int i = 0; i < HTTP__MAX; i++)
		buf_printf(out, "beep_posts_total{code=\"%d\"} %" PRIu64 "\n",
		    http_status_code[i], metrics_read(&metrics_posts[i]));
	metrics_one(out, "beep_rate_limited_total", "counter",
	    "POSTs, and subscribes while their sender owes for a replay, "
	    "refused with 429 by the per-sender rate (BEEP_RATE).",
	    metrics_read(&metrics_limited));
	metrics_head(out, "beep_streams_refused_total", "counter",
	    "Subscribes refused for now (429: the address's, the user's or "
	    "the device's limit, the sender's rate; 503: full, too many devices, no thread free, "
	    "stopping, Redis unreachable), whether answered with the status "
	    "or, to EventSource, as an event stream.");
	buf_printf(out,
	    "beep_streams_refused_total{code=\"429\"} %" PRIu64 "\n"
	    "beep_streams_refused_total{code=\"503\"} %" PRIu64 "\n",
	    metrics_read(&metrics_refused[0]),
	    metrics_read(&metrics_refused[1]));
	metrics_one(out, "beep_messages_published_total", "counter",
	    "Messages accepted for a device (live or in grace).",
	    g->reg.published);
	metrics_one(out, "beep_events_delivered_total", "counter",
	    "Message events written to streams (a message delivered to two "
	    "streams counts twice; replays count).",
	    metrics_read(&metrics_events));
	metrics_one(out, "beep_messages_held", "gauge",
	    "Messages waiting for devices in their grace period.", g->reg.held);
	metrics_one(out, "beep_messages_overdue", "gauge",
	    "Delivered messages past their replay window that a lagging "
	    "stream of their device has not taken yet.",
	    g->reg.overdue);
	metrics_one(out, "beep_messages_dropped_total", "counter",
	    "Undelivered messages dropped (a device forgotten, a log over "
	    "its limits).",
	    g->reg.dropped);
	/*
	 * The cluster counts the resets it decides itself (Redis's reason,
	 * a replay cut for memory, a reset during a stream), which its
	 * registry does not.
	 */
	metrics_one(out, "beep_stream_resets_total", "counter",
	    "Streams that started with a reset event (messages were lost), "
	    "and in a cluster reset events sent during a stream.",
	    g->reg.resets + (g->cluster ? g->cl.resets : 0));
	metrics_one(out, "beep_stream_overflows_total", "counter",
	    "Streams closed for falling too far behind (BEEP_STREAM_QUEUE).",
	    g->reg.overflows);
	metrics_one(out, "beep_devices_forgotten_total", "counter",
	    "Devices forgotten: their grace period ended, or a new device "
	    "took their place (BEEP_MAX_DEVICES).",
	    g->reg.forgotten);
	metrics_one(out, "beep_stream_written_bytes_total", "counter",
	    "Bytes of events, keepalives and retry fields written to streams "
	    "(FastCGI framing excluded).",
	    metrics_read(&metrics_bytes));
	metrics_one(out, "beep_messages_replayed_total", "counter",
	    "Messages a resuming stream (Last-Event-ID) started behind: "
	    "replayed to it.",
	    g->reg.replayed);
	metrics_one(out, "beep_messages_expired_total", "counter",
	    "Delivered messages dropped when their replay window ended.",
	    g->reg.expired);
	metrics_one(out, "beep_messages_evicted_total", "counter",
	    "Delivered messages dropped early for the memory budget "
	    "(BEEP_MAX_MESSAGE_MEMORY).",
	    g->reg.evicted);
	metrics_one(out, "beep_messages_backlogged_total", "counter",
	    "POSTs refused with 503 because message memory was short and "
	    "their device's stream was further behind than its share of it.",
	    g->reg.backlogged);
	metrics_one(out, "beep_messages_crowded_total", "counter",
	    "POSTs refused for the sender share (BEEP_SENDER_SHARE): 429 "
	    "when their sender held its share of what a device keeps and "
	    "would have pushed out another sender's held message, 503 when "
	    "they would have pushed out the held message of a sender within "
	    "its share.",
	    g->reg.crowded);
	/*
	 * A single node's: in a cluster Redis's POST script finds the
	 * repeats and keeps the keys, and its answer to a repeat is that to
	 * a new message ({status, id, w, born}), so neither is counted here.
	 */
	metrics_one(out, "beep_messages_repeated_total", "counter",
	    "POSTs with the idempotency key of a message their sender posted "
	    "that its device still keeps: answered with that message's id, "
	    "not delivered again (not counted in a cluster).",
	    g->reg.repeated);
	metrics_one(out, "beep_message_keys", "gauge",
	    "Idempotency keys of the messages devices keep, indexed for "
	    "repeats (0 in a cluster, whose keys Redis keeps).",
	    g->reg.keys);
	metrics_one(out, "beep_message_memory_bytes", "gauge",
	    "Bytes of messages held in all (queued, held, retained): each "
	    "its frame and 128 for what keeps it.",
	    g->reg.message_bytes);
	metrics_one(out, "beep_message_memory_max_bytes", "gauge",
	    "The memory budget for messages (BEEP_MAX_MESSAGE_MEMORY).",
	    g->max_message_bytes);
	metrics_one(out, "beep_streams_replaced_total", "counter",
	    "Streams replaced by a newer one of the same device "
	    "(BEEP_MAX_STREAMS_PER_DEVICE).",
	    g->reg.replaced);
	metrics_one(out, "beep_stream_write_timeouts_total", "counter",
	    "Streams closed because a write outlasted BEEP_WRITE_TIMEOUT (a "
	    "client that stopped reading).",
	    metrics_read(&metrics_write_timeouts));
	metrics_one(out, "beep_stream_writes_waiting", "gauge",
	    "Stream writes waiting now for room in their connection (a client, "
	    "or its front, not reading): each holds its worker thread, up to "
	    "BEEP_WRITE_TIMEOUT.",
	    metrics_read(&metrics_writes_waiting));
	metrics_histogram_render(out, &metrics_lifetime);
	metrics_histogram_render(out, &metrics_post_hist);
	metrics_histogram_render(out, &metrics_delivery);
	if (g->cluster)
		metrics_render_cluster(out, g);
}

void
metrics_reset(void)
{
	struct metrics_histogram *hs[] = {
	    &metrics_lifetime, &metrics_post_hist, &metrics_delivery};

	for (int i = 0; i < HTTP__MAX; i++)
		atomic_store(&metrics_posts[i], 0);
	atomic_store(&metrics_limited, 0);
	atomic_store(&metrics_refused[0], 0);
	atomic_store(&metrics_refused[1], 0);
	atomic_store(&metrics_events, 0);
	atomic_store(&metrics_bytes, 0);
	atomic_store(&metrics_write_timeouts, 0);
	atomic_store(&metrics_writes_waiting, 0);
	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
		for (size_t j = 0; j <= METRICS_MAX_BUCKETS; j++)
			atomic_store(&hs[i]->buckets[j], 0);
		atomic_store(&hs[i]->sum_us, 0);
	}
}
