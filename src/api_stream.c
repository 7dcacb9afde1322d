/*
 * api_stream: a stream's ids ("<epoch>-<n>", or a cluster's), its first
 * and last bytes, its messages as events, and the refusal an EventSource
 * comes back from.
 */
#include "api_impl.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "sse.h"

#define LOG_MODULE "api"

/* The longest Last-Event-ID a refused stream gives back as its id. */
#define API_ECHO_ID_MAX 128

/*
 * A replaced stream's client waits this long before it reconnects, so
 * that two clients replacing each other (one device id in two tabs) do
 * so at most once per period, not in a loop.
 */
#define API_REPLACED_RETRY_MS 30000
/* Clients reconnect after a stop within this many milliseconds. */
#define API_RETRY_MIN_MS 1000
#define API_RETRY_SPREAD_MS 4000

/*
 * Refuse a stream for now (status 429 or 503, why), with Retry-After.  To
 * a client that reads only an event stream (EventSource: Accept:
 * text/event-stream) as one that it comes back from, since EventSource
 * never retries a 4xx or 5xx answer: 200, an event "refused" whose data
 * is the error and its status, and a retry: field of Retry-After plus up
 * to as much again (so that the clients refused together do not all come
 * back together); the stream then ends, and EventSource reconnects after
 * that long, with its Last-Event-ID.  To any other, the error.
 */
void
api_refuse_stream(const struct api_request *req, struct api_response *resp,
    enum http_status status, const char *why)
{
	api_refuse_stream_after(req, resp, status, why, API_RETRY_AFTER);
}

void
api_refuse_stream_after(const struct api_request *req,
    struct api_response *resp, enum http_status status, const char *why,
    unsigned seconds)
{
	const char *id = req->last_event_id;
	json_t *doc;
	char *text;
	long wait_ms;

	if (seconds == 0)
		seconds = 1;
	metrics_stream_refused(status);
	api_retry_after(resp, seconds);
	if (!http_accepts_event_stream_only(req->accept)) {
		api_error(resp, status, why);
		return;
	}
	doc = json_pack(
	    "{s:s,s:i}", "error", why, "status", http_status_code[status]);
	text = json_dumps(doc, JSON_COMPACT);
	wait_ms = seconds * 1000L + random() % (seconds * 1000L);
	resp->status = HTTP_200;
	buf_puts(&resp->headers,
	    "Content-Type: text/event-stream\r\n"
	    "Cache-Control: no-store\r\n");
	buf_printf(&resp->body, "retry: %ld\nevent: refused\n", wait_ms);
	/*
	 * The id it came with, given back: the WHATWG model starts each
	 * response's last event id empty, and an event without an id field
	 * would then make the client's empty, so that it came back with no
	 * Last-Event-ID and missed what was sent meanwhile (browsers keep it
	 * anyway; this does not rely on them).
	 */
	if (id != NULL && *id != '\0' && strlen(id) <= API_ECHO_ID_MAX &&
	    strpbrk(id, "\r\n") == NULL)
		buf_printf(&resp->body, "id: %s\n", id);
	buf_printf(&resp->body, "data: %s\n\n", text);
	free(text);
	json_decref(doc);
}

/*
 * Event ids are "<epoch>-<n>": see registry_epoch(), registry_msg_id();
 * in a cluster, Redis stream ids (cluster_format_id()).
 */
void
api_format_id(const struct api *api, uint64_t n, char *out, size_t size)
{
	char text[sizeof(api->epoch) + 20];
	size_t len = api->epoch_len;

	if (api->cluster != NULL) {
		cluster_format_id(n, out, size);
		return;
	}
	/*
	 * The epoch's digits are made once (api_new()): only n's here.  Into
	 * out at once when it has room for the longest id, as every caller's
	 * has: the whole epoch array copied (a fixed size, no call), n's
	 * digits over what follows the '-'.
	 */
	if (size >= sizeof(api->epoch) + 21) {
		memcpy(out, api->epoch, sizeof(api->epoch));
		len += util_u64_digits(n, out + len);
		out[len] = '\0';
		return;
	}
	memcpy(text, api->epoch, len);
	len += util_u64_digits(n, text + len);
	if (size == 0)
		return;
	if (len >= size)
		len = size - 1;
	memcpy(out, text, len);
	out[len] = '\0';
}

/*
 * Read decimal digits at *p into *v, advancing *p; false on no digit or
 * overflow.  Stricter than strtoull: no sign, no space.  Leading zeros are
 * read (the value, not the text, is the id).
 */
static bool
api_parse_u64(const char **p, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return false;
		*v = *v * 10 + d;
	}
	*p = s;
	return true;
}

/*
 * Read an event id back: "<epoch>-<n>" of this run, digits only, else
 * unknown (a reset).  An id we gave with leading zeros added is the same
 * id, taken: EventSource gives an id back as it came, so only a hand-made
 * client sends one, reformatting a number, and it names that place and
 * no other; unknown, it would cost the client what was kept for it (and
 * an ICE restart) at each reconnect (test_api).  What could read as
 * another number (a sign, a space, an overflow) is unknown.
 */
void
api_parse_id(
    const struct api *api, const char *s, struct registry_resume *resume)
{
	uint64_t epoch, n;

	resume->kind = REGISTRY_RESUME_NONE;
	if (s == NULL || *s == '\0')
		return;
	resume->kind = REGISTRY_RESUME_UNKNOWN;
	if (api->cluster != NULL) {
		if (cluster_parse_id(s, &resume->id) == 0)
			resume->kind = REGISTRY_RESUME_AT;
		return;
	}
	if (!api_parse_u64(&s, &epoch) || *s++ != '-' ||
	    !api_parse_u64(&s, &n) || *s != '\0' ||
	    epoch != registry_epoch(api->reg))
		return;
	resume->kind = REGISTRY_RESUME_AT;
	resume->id = n;
}

void
api_stream_open(
    struct api *api, const struct registry_start *start, struct buf *out)
{
	char id[48], hello[48], *data;
	json_t *doc;

	/*
	 * The keepalive interval, for a client that takes a stream silent
	 * for too long for dead (beep-signal.js's idleTimeout): it waits
	 * for several of them, however long BEEP_KEEPALIVE is set.
	 * EventSource ignores comments.
	 */
	snprintf(hello, sizeof(hello), "beep-signal keepalive=%u",
	    api->config->keepalive);
	sse_format_comment(out, hello);
	/*
	 * How long to wait before reconnecting after a drop, given at every
	 * start: EventSource keeps the last retry: it parsed, and a refusal's
	 * (5-10 s), a stop's or a replaced stream's (30 s) would otherwise
	 * stay its wait for every later drop.  Spread, so that the clients of
	 * a front that drops them all do not all come back in the same
	 * millisecond.
	 */
	if (api->config->reconnect_ms > 0) {
		unsigned ms = api->config->reconnect_ms;

		sse_format_retry(out, ms + (unsigned)(random() % (ms / 2 + 1)));
	}
	/*
	 * Where the stream starts, before any message: a client cut before
	 * its first message resumes from here and loses nothing.  As an event
	 * "position" with empty data, not an id: field alone: WHATWG sets the
	 * last event id even when a block dispatches nothing, and Chromium
	 * does, but Firefox and WebKit (every browser on iOS) set it only
	 * when they dispatch an event, so a phone cut before its first
	 * message came back without it and lost what was sent meanwhile.  A
	 * named event reaches only listeners of its name: onmessage never
	 * sees it.  With a reset, the reset event carries the position.
	 */
	api_format_id(api, start->id, id, sizeof(id));
	if (!start->reset) {
		sse_format_event(out, id, "position", "", 0);
		return;
	}
	doc = json_pack("{s:s}", "reason", start->reason);
	data = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	sse_format_event(out, id, "reset", data, strlen(data));
	free(data);
}

void
api_stream_message(struct api *api, const struct registry_msg *m, bool envelope,
    struct buf *out)
{
	size_t len;
	const char *packed = registry_msg_frame(m, &len);
	char id[48];

	api_format_id(api, registry_msg_id(m), id, sizeof(id));
	if (event_render(out, packed, len, id, envelope) < 0)
		log_error("message %s is not a packed event", id);
}

void
api_stream_keepalive(struct buf *out)
{
	sse_format_comment(out, NULL);
}

void
api_stream_replaced(struct buf *out)
{
	static const char why[] =
	    "{\"reason\":\"a newer stream of this device replaced this one\"}";

	sse_format_event(out, NULL, "replaced", why, sizeof(why) - 1);
	sse_format_retry(out, API_REPLACED_RETRY_MS);
}

void
api_stream_expired(struct buf *out)
{
	static const char why[] =
	    "{\"error\":\"credentials expired\",\"status\":401}";

	sse_format_event(out, NULL, "refused", why, sizeof(why) - 1);
}

void
api_stream_close(struct buf *out)
{
	/* Spread reconnects so a restart is not hit by every client at once. */
	sse_format_retry(
	    out, API_RETRY_MIN_MS + (unsigned)(random() % API_RETRY_SPREAD_MS));
}
