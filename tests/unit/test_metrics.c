/*
 * Unit tests for metrics: counters from many threads, histogram buckets
 * at their bounds, and the exposition format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "filter.h"
#include "metrics.h"

#define THREADS 4
#define PER_THREAD 100000

static struct buf
render(void)
{
	struct metrics_gauges g = {
	    .max_streams = 10, .threads = 9, .idle = 4, .ready = true};
	struct buf b = {0};

	g.reg.streams = 3;
	g.reg.published = 42;
	metrics_render(&b, &g);
	return b;
}

/* The value of the sample line that starts with name (labels included). */
static double
sample(const struct buf *b, const char *name)
{
	const char *p = b->data;
	size_t n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == b->data || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	fail_msg("no sample %s in:\n%s", name, b->data);
	return -1;
}

static void *
worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_post(HTTP_200);
		metrics_stream_write(1, 10);
	}
	return NULL;
}

static void
test_metrics_counters_threads(void **state)
{
	pthread_t t[THREADS];
	struct buf b;

	(void)state;
	metrics_reset();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	metrics_post(HTTP_404);
	metrics_rate_limited();
	metrics_stream_refused(HTTP_503);
	metrics_stream_refused(HTTP_503);
	metrics_stream_refused(HTTP_429);
	b = render();
	assert_true(sample(&b, "beep_posts_total{code=\"200\"}") ==
	    THREADS * PER_THREAD);
	assert_true(sample(&b, "beep_posts_total{code=\"404\"}") == 1);
	assert_true(sample(&b, "beep_posts_total{code=\"429\"}") == 0);
	assert_true(sample(&b, "beep_rate_limited_total") == 1);
	assert_true(
	    sample(&b, "beep_streams_refused_total{code=\"429\"}") == 1);
	assert_true(
	    sample(&b, "beep_streams_refused_total{code=\"503\"}") == 2);
	assert_true(
	    sample(&b, "beep_events_delivered_total") == THREADS * PER_THREAD);
	assert_true(sample(&b, "beep_stream_written_bytes_total") ==
	    10.0 * THREADS * PER_THREAD);
	assert_true(sample(&b, "beep_streams_open") == 3);
	assert_true(sample(&b, "beep_messages_published_total") == 42);
	assert_true(sample(&b, "beep_worker_threads{state=\"busy\"}") == 5);
	assert_true(sample(&b, "beep_worker_threads{state=\"idle\"}") == 4);
	assert_true(sample(&b, "beep_ready") == 1);
	buf_free(&b);
}

static void
test_metrics_histogram(void **state)
{
	struct buf b;

	(void)state;
	metrics_reset();
	metrics_stream_end(1000);      /* exactly 1 s: in le="1" */
	metrics_stream_end(1001);      /* just over: le="5" */
	metrics_stream_end(0);         /* le="1" */
	metrics_stream_end(864000000); /* 10 days: +Inf only */
	metrics_post_time(10);         /* le="0.00001" */
	metrics_delivered(50);         /* exactly 50 us: le="0.00005" */
	metrics_delivered(51);         /* just over: le="0.0001" */
	b = render();
	assert_true(
	    sample(&b,
	        "beep_delivery_latency_seconds_bucket{le=\"0.000050\"}") == 1);
	assert_true(
	    sample(&b,
	        "beep_delivery_latency_seconds_bucket{le=\"0.000100\"}") == 2);
	assert_true(
	    sample(&b, "beep_delivery_latency_seconds_sum") == 0.000101);
	assert_true(
	    sample(&b,
	        "beep_stream_lifetime_seconds_bucket{le=\"1.000000\"}") == 2);
	assert_true(
	    sample(&b,
	        "beep_stream_lifetime_seconds_bucket{le=\"5.000000\"}") == 3);
	assert_true(
	    sample(&b,
	        "beep_stream_lifetime_seconds_bucket{le=\"86400.000000\"}") ==
	    3);
	assert_true(
	    sample(&b, "beep_stream_lifetime_seconds_bucket{le=\"+Inf\"}") ==
	    4);
	assert_true(sample(&b, "beep_stream_lifetime_seconds_count") == 4);
	assert_true(
	    sample(&b, "beep_stream_lifetime_seconds_sum") == 864002.001);
	assert_true(
	    sample(&b, "beep_post_duration_seconds_bucket{le=\"0.000010\"}") ==
	    1);
	assert_true(sample(&b, "beep_post_duration_seconds_count") == 1);
	buf_free(&b);
}

/* Every line is a comment (# HELP / # TYPE) or "name{labels} value". */
static void
test_metrics_format(void **state)
{
	struct buf b;
	char *line, *save = NULL;
	int types = 0;

	(void)state;
	b = render();
	assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
	for (line = strtok_r(b.data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# TYPE beep_", 12) == 0) {
			types++;
			continue;
		}
		if (strncmp(line, "# HELP beep_", 12) == 0)
			continue;
		assert_true(strncmp(line, "beep_", 5) == 0);
		assert_non_null(strchr(line, ' '));
	}
	assert_true(types >= 20);
	buf_free(&b);
}

/*
 * beep_messages_crowded_total counts both refusals of the sender share
 * (registry_stats() crowded: REGISTRY_CROWDED and REGISTRY_HELD_FULL), the
 * poster's 429 and the 503 "device holds all it keeps": its HELP says
 * both, as the README's table does, or an operator who reads it takes
 * every count for a 429.
 */
static void
test_metrics_crowded_help(void **state)
{
	struct buf b;
	const char *help, *end;
	char *line;

	(void)state;
	b = render();
	help = strstr(b.data, "# HELP beep_messages_crowded_total ");
	assert_non_null(help);
	end = strchr(help, '\n');
	assert_non_null(end);
	line = strndup(help, (size_t)(end - help));
	assert_non_null(strstr(line, "429"));
	assert_non_null(strstr(line, "503"));
	free(line);
	buf_free(&b);
}

/*
 * The idempotency keys (registry_stats() repeated and keys): the POSTs
 * answered as repeats of a message the log holds, not delivered again,
 * and the keys indexed now.  Without them an operator cannot tell
 * whether clients' retries are being caught.
 */
static void
test_metrics_repeats(void **state)
{
	struct metrics_gauges g = {.reg = {.repeated = 7, .keys = 5}};
	struct buf b = {0};

	(void)state;
	metrics_render(&b, &g);
	assert_true(sample(&b, "beep_messages_repeated_total") == 7);
	assert_true(sample(&b, "beep_message_keys") == 5);
	assert_non_null(
	    strstr(b.data, "# TYPE beep_messages_repeated_total counter\n"));
	assert_non_null(strstr(b.data, "# TYPE beep_message_keys gauge\n"));
	buf_free(&b);
}

/* In a cluster, its figures as cluster_stats() gave them; else none. */
static void
test_metrics_cluster(void **state)
{
	struct metrics_gauges g = {.cluster = true,
	    .cl = {.up = true,
	        .received = 11,
	        .duplicates = 12,
	        .replayed = 13,
	        .local = 14,
	        .unreachable = 15,
	        .reconnects = 16,
	        .resets = 2},
	    .reg = {.resets = 3}};
	struct buf b = {0};

	(void)state;
	metrics_render(&b, &g);
	assert_true(sample(&b, "beep_redis_up") == 1);
	assert_true(sample(&b, "beep_cluster_received_total") == 11);
	assert_true(sample(&b, "beep_cluster_duplicates_total") == 12);
	assert_true(sample(&b, "beep_cluster_replayed_total") == 13);
	assert_true(sample(&b, "beep_cluster_local_posts_total") == 14);
	assert_true(sample(&b, "beep_cluster_unreachable_total") == 15);
	assert_true(sample(&b, "beep_redis_reconnects_total") == 16);
	/* The registry's resets and those the cluster decided. */
	assert_true(sample(&b, "beep_stream_resets_total") == 5);
	buf_free(&b);
	b = render();
	assert_null(strstr(b.data, "beep_redis_up"));
	assert_null(strstr(b.data, "beep_cluster_"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_metrics_counters_threads),
	    cmocka_unit_test(test_metrics_histogram),
	    cmocka_unit_test(test_metrics_format),
	    cmocka_unit_test(test_metrics_crowded_help),
	    cmocka_unit_test(test_metrics_repeats),
	    cmocka_unit_test(test_metrics_cluster),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
