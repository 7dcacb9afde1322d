/*
 * loadgen: load generator for SSE publish/subscribe services.
 *
 * One process, one thread, one epoll set of non-blocking sockets. It opens
 * users x devices Server-Sent Events subscriptions
 * (GET /subscribe/u<i>/device/d<j>) through a front server on 127.0.0.1,
 * then posts messages (POST /user/u<i>/device/d<j>) to random subscribed
 * devices over a few keep-alive connections, one request outstanding per
 * connection, either as fast as they answer or at a fixed rate.
 *
 * DESIGN
 * Every message has a global index g and a per-device sequence number; its
 * data is "g device seq send_ns" (send_ns is CLOCK_MONOTONIC at the moment
 * the POST is written), optionally padded and split over two lines. A
 * subscriber parses the stream as the WHATWG EventSource does (chunked
 * transfer coding, CR/LF/CRLF line ends, comments, fields, dispatch on a
 * blank line), rebuilds the expected data from the numbers it finds and
 * compares, so corruption, loss, duplication and reordering are all seen.
 * Latency is receive time minus the send time carried in the data.
 *
 * With --churn R, R streams a second (in the post phases) are cut at
 * random and reopened at once as EventSource does: with the last id the
 * stream parsed (an id with no event counts) as Last-Event-ID. A stream the
 * server ends, or a reconnect that fails, is retried after a second. A
 * `reset` event (the server could not resume) is counted: the run then
 * fails, as do lost and duplicated messages. With --samples FILE, one line
 * every --sample-ms: seconds, then RSS KiB, threads and open descriptors of
 * each --pids process, then p99 and max latency (ms) of the events received
 * in that interval, delivered, resumed and resets so far.
 *
 * Phases: subscribe (at most --sub-concurrency connections in flight),
 * settle (idle, then sample RSS), warm-up posts (not measured), measured
 * posts, drain (wait for outstanding events), done. The whole run is
 * bounded by --timeout; the last line printed is one JSON object.
 */

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOADGEN_VERSION "1.0"
#define LOADGEN_MAX_PIDS 16
#define LOADGEN_MAX_LINE 16384      /* header, chunk-size or SSE line */
#define LOADGEN_MAX_EVENT (1 << 20) /* data of one SSE event */
#define LOADGEN_READ_BUF 65536
#define LOADGEN_MAX_EVENTS 512
#define LOADGEN_MAX_STATUS 8 /* distinct status codes counted */

/* Monotonic time in nanoseconds. */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int g_quiet;

static void note(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Progress and diagnostics: stderr, so stdout stays the report. */
static void
note(const char *fmt, ...)
{
	va_list ap;

	if (g_quiet)
		return;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *
xrealloc(void *p, size_t n)
{
	void *q;

	q = realloc(p, n ? n : 1);
	if (q == NULL)
		die("out of memory (%zu bytes)", n);
	return q;
}

static void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		die("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

/*
 * A growable byte buffer. Subscribers hold ten thousand of them, so it
 * costs nothing until used and gives its memory back when it grew large.
 */
struct buf {
	char *p;
	uint32_t len;
	uint32_t cap;
};

static int
buf_append(struct buf *b, const char *p, size_t n, size_t limit)
{
	size_t need;

	need = (size_t)b->len + n;
	if (need > limit)
		return -1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < need)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = (uint32_t)cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len = (uint32_t)need;
	return 0;
}

/* Empties a buffer; frees it when it grew past the common size. */
static void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap > 4096) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ */
/* SSE parsing (WHATWG HTML, "Interpreting an event stream")           */

struct sse {
	struct buf line;  /* partial line across reads */
	struct buf data;  /* data buffer of the event being built */
	struct buf event; /* event type buffer */
	uint8_t bom_seen; /* bytes of a leading BOM matched so far */
	uint8_t started;  /* past the point where a BOM may appear */
	uint8_t after_cr; /* last byte was CR: a following LF is eaten */
	uint8_t overflow; /* a line or an event passed our limits */
	uint8_t id_len;   /* last event ID buffer (WHATWG) */
	uint8_t last_len; /* last event ID, set at each dispatch */
	char id[64];
	char last[64];
};

/* Called for every dispatched event, with data as the spec builds it. */
typedef void (*sse_event_fn)(
    void *, const char *, size_t, const char *, size_t);

struct sse_stats {
	uint64_t comments;
	uint64_t ids;
	uint64_t retries;
	uint64_t unknown_fields;
	uint64_t overflows;
};

static struct sse_stats g_sse_stats;

static void
sse_dispatch(struct sse *s, sse_event_fn fn, void *arg)
{
	/* Set before the check for data: an id alone moves it too. */
	memcpy(s->last, s->id, s->id_len);
	s->last_len = s->id_len;
	if (s->data.len == 0) {
		s->event.len = 0;
		return;
	}
	/* The last LF appended after each data line is removed. */
	s->data.len--;
	fn(arg, s->data.p, s->data.len, s->event.p, s->event.len);
	buf_reset(&s->data);
	buf_reset(&s->event);
}

static void
sse_line(struct sse *s, const char *p, size_t n, sse_event_fn fn, void *arg)
{
	const char *colon, *v;
	size_t fn_len, vn;

	if (n == 0) {
		sse_dispatch(s, fn, arg);
		return;
	}
	if (p[0] == ':') {
		g_sse_stats.comments++;
		return;
	}
	colon = memchr(p, ':', n);
	if (colon != NULL) {
		fn_len = (size_t)(colon - p);
		v = colon + 1;
		vn = n - fn_len - 1;
		if (vn > 0 && *v == ' ') {
			v++;
			vn--;
		}
	} else {
		fn_len = n;
		v = p + n;
		vn = 0;
	}
	if (fn_len == 4 && memcmp(p, "data", 4) == 0) {
		if (buf_append(&s->data, v, vn, LOADGEN_MAX_EVENT) == -1 ||
		    buf_append(&s->data, "\n", 1, LOADGEN_MAX_EVENT + 1) == -1)
			s->overflow = 1;
	} else if (fn_len == 5 && memcmp(p, "event", 5) == 0) {
		s->event.len = 0;
		if (buf_append(&s->event, v, vn, LOADGEN_MAX_LINE) == -1)
			s->overflow = 1;
	} else if (fn_len == 2 && memcmp(p, "id", 2) == 0) {
		/* An id with NUL is ignored, as is one too long for us. */
		g_sse_stats.ids++;
		if (vn < sizeof(s->id) && memchr(v, '\0', vn) == NULL) {
			memcpy(s->id, v, vn);
			s->id_len = (uint8_t)vn;
		}
	} else if (fn_len == 5 && memcmp(p, "retry", 5) == 0) {
		g_sse_stats.retries++;
	} else {
		g_sse_stats.unknown_fields++;
	}
}

/*
 * Feeds stream bytes (already de-chunked) to the parser. Lines end at CR,
 * LF or CRLF, also when the CR and the LF arrive in different reads.
 * Returns -1 when a line or an event grew past our limits.
 */
static int
sse_feed(struct sse *s, const char *p, size_t n, sse_event_fn fn, void *arg)
{
	static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
	const char *end = p + n, *q;

	while (!s->started && p < end) {
		if ((unsigned char)*p == bom[s->bom_seen]) {
			p++;
			if (++s->bom_seen == 3)
				s->started = 1;
			continue;
		}
		s->started = 1;
		/* A partial BOM was data after all: give it back. */
		if (s->bom_seen > 0 &&
		    buf_append(&s->line, (const char *)bom, s->bom_seen,
		        LOADGEN_MAX_LINE) == -1)
			s->overflow = 1;
	}
	while (p < end) {
		if (s->after_cr) {
			s->after_cr = 0;
			if (*p == '\n') {
				p++;
				continue;
			}
		}
		for (q = p; q < end && *q != '\n' && *q != '\r'; q++)
			;
		if (q == end) {
			if (buf_append(&s->line, p, (size_t)(q - p),
			        LOADGEN_MAX_LINE) == -1)
				s->overflow = 1;
			break;
		}
		if (*q == '\r')
			s->after_cr = 1;
		if (s->line.len == 0) {
			sse_line(s, p, (size_t)(q - p), fn, arg);
		} else {
			if (buf_append(&s->line, p, (size_t)(q - p),
			        LOADGEN_MAX_LINE) == -1)
				s->overflow = 1;
			sse_line(s, s->line.p, s->line.len, fn, arg);
			buf_reset(&s->line);
		}
		p = q + 1;
	}
	if (s->overflow) {
		g_sse_stats.overflows++;
		return -1;
	}
	return 0;
}

static void
sse_free(struct sse *s)
{
	buf_free(&s->line);
	buf_free(&s->data);
	buf_free(&s->event);
}

/* A new connection of the same EventSource: only the last id survives. */
static void
sse_restart(struct sse *s)
{
	sse_free(s);
	s->bom_seen = s->started = s->after_cr = s->overflow = 0;
	memcpy(s->id, s->last, s->last_len);
	s->id_len = s->last_len;
}

/* ------------------------------------------------------------------ */
/* HTTP/1.1 response parsing                                           */

enum http_state {
	HTTP_STATUS,     /* status line */
	HTTP_HEADERS,    /* header lines up to the blank one */
	HTTP_CHUNK_SIZE, /* chunk-size [; ext] CRLF */
	HTTP_CHUNK_DATA,
	HTTP_CHUNK_END,   /* the CRLF after chunk data */
	HTTP_TRAILER,     /* trailer lines up to the blank one */
	HTTP_LENGTH,      /* Content-Length body */
	HTTP_UNTIL_CLOSE, /* body delimited by the connection close */
	HTTP_DONE
};

struct http {
	struct buf line;
	uint64_t remaining;     /* of the chunk or of the body */
	int64_t content_length; /* -1: none */
	uint16_t status;
	uint8_t state;
	uint8_t chunked;
	uint8_t conn_close;
	uint8_t event_stream; /* Content-Type: text/event-stream */
	uint8_t head_done;    /* headers complete, status known */
};

struct http_ops {
	/* Headers complete; return -1 to stop parsing (and close). */
	int (*headers)(void *);
	/* Body bytes, de-chunked; return -1 to stop. */
	int (*body)(void *, const char *, size_t);
	/* The whole response is in. */
	void (*done)(void *);
};

static void
http_reset(struct http *h)
{
	h->line.len = 0;
	h->remaining = 0;
	h->content_length = -1;
	h->status = 0;
	h->state = HTTP_STATUS;
	h->chunked = 0;
	h->conn_close = 0;
	h->event_stream = 0;
	h->head_done = 0;
}

/* Case-insensitive search for a token in a header value. */
static int
value_has(const char *v, size_t n, const char *tok)
{
	size_t tn = strlen(tok), i;

	for (i = 0; i + tn <= n; i++)
		if (strncasecmp(v + i, tok, tn) == 0)
			return 1;
	return 0;
}

static int
http_header(struct http *h, const char *p, size_t n)
{
	const char *colon, *v, *e;
	size_t nn;

	colon = memchr(p, ':', n);
	if (colon == NULL)
		return -1;
	nn = (size_t)(colon - p);
	v = colon + 1;
	e = p + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (nn == 14 && strncasecmp(p, "content-length", nn) == 0) {
		char tmp[32];
		size_t vn = (size_t)(e - v);
		char *end;

		if (vn == 0 || vn >= sizeof(tmp))
			return -1;
		memcpy(tmp, v, vn);
		tmp[vn] = '\0';
		errno = 0;
		h->content_length = strtoll(tmp, &end, 10);
		if (errno || *end != '\0' || h->content_length < 0)
			return -1;
	} else if (nn == 17 && strncasecmp(p, "transfer-encoding", nn) == 0) {
		if (value_has(v, (size_t)(e - v), "chunked"))
			h->chunked = 1;
	} else if (nn == 10 && strncasecmp(p, "connection", nn) == 0) {
		if (value_has(v, (size_t)(e - v), "close"))
			h->conn_close = 1;
	} else if (nn == 12 && strncasecmp(p, "content-type", nn) == 0) {
		if (value_has(v, (size_t)(e - v), "text/event-stream"))
			h->event_stream = 1;
	}
	return 0;
}

static int
http_status_line(struct http *h, const char *p, size_t n)
{
	unsigned code = 0;
	size_t i;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	if (p[7] == '0')
		h->conn_close = 1;
	for (i = 9; i < 12; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		code = code * 10 + (unsigned)(p[i] - '0');
	}
	h->status = (uint16_t)code;
	return 0;
}

/* Decides how the body is framed, once the headers are in. */
static void
http_body_start(struct http *h)
{
	if (h->status / 100 == 1 || h->status == 204 || h->status == 304)
		h->state = HTTP_DONE;
	else if (h->chunked)
		h->state = HTTP_CHUNK_SIZE;
	else if (h->content_length >= 0) {
		h->remaining = (uint64_t)h->content_length;
		h->state = h->remaining ? HTTP_LENGTH : HTTP_DONE;
	} else {
		h->state = HTTP_UNTIL_CLOSE;
		h->conn_close = 1;
	}
}

static int
chunk_size(struct http *h, const char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;
	int digits = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX >> 4))
			return -1;
		v = (v << 4) | (uint64_t)d;
		digits++;
	}
	if (digits == 0 ||
	    (i < n && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
		return -1;
	h->remaining = v;
	return 0;
}

/*
 * Takes one CRLF- (or LF-) terminated line from p, using the line buffer
 * when it spans reads. Returns the bytes consumed; sets *lp and *ln when a
 * whole line is available, else *lp is NULL. -1 when the line is too long.
 */
static ssize_t
http_take_line(
    struct http *h, const char *p, size_t n, const char **lp, size_t *ln)
{
	const char *nl;
	size_t used, len;

	*lp = NULL;
	nl = memchr(p, '\n', n);
	if (nl == NULL) {
		if (buf_append(&h->line, p, n, LOADGEN_MAX_LINE) == -1)
			return -1;
		return (ssize_t)n;
	}
	used = (size_t)(nl - p) + 1;
	if (h->line.len == 0) {
		*lp = p;
		len = used - 1;
	} else {
		if (buf_append(&h->line, p, used - 1, LOADGEN_MAX_LINE) == -1)
			return -1;
		*lp = h->line.p;
		len = h->line.len;
	}
	if (len > 0 && (*lp)[len - 1] == '\r')
		len--;
	*ln = len;
	return (ssize_t)used;
}

/*
 * Feeds response bytes. Returns the bytes consumed (less than n only when
 * a response completed: the caller decides what follows), or -1 on a
 * protocol error or when a callback asked to stop.
 */
static ssize_t
http_feed(struct http *h, const char *p, size_t n, const struct http_ops *ops,
    void *arg)
{
	const char *start = p, *end = p + n, *l;
	size_t ln, k;
	ssize_t used;

	while (p < end && h->state != HTTP_DONE) {
		switch (h->state) {
		case HTTP_STATUS:
		case HTTP_HEADERS:
		case HTTP_CHUNK_SIZE:
		case HTTP_CHUNK_END:
		case HTTP_TRAILER:
			used = http_take_line(h, p, (size_t)(end - p), &l, &ln);
			if (used < 0)
				return -1;
			p += used;
			if (l == NULL)
				break;
			if (h->state == HTTP_STATUS) {
				if (http_status_line(h, l, ln) == -1)
					return -1;
				h->state = HTTP_HEADERS;
			} else if (h->state == HTTP_HEADERS) {
				if (ln > 0) {
					if (http_header(h, l, ln) == -1)
						return -1;
				} else if (h->status / 100 == 1) {
					/* Interim response: the real one follows. */
					http_reset(h);
				} else {
					http_body_start(h);
					h->head_done = 1;
					if (ops->headers(arg) == -1)
						return -1;
				}
			} else if (h->state == HTTP_CHUNK_SIZE) {
				if (chunk_size(h, l, ln) == -1)
					return -1;
				h->state = h->remaining ? HTTP_CHUNK_DATA
				                        : HTTP_TRAILER;
			} else if (h->state == HTTP_CHUNK_END) {
				if (ln != 0)
					return -1;
				h->state = HTTP_CHUNK_SIZE;
			} else if (ln == 0) {
				h->state = HTTP_DONE;
			}
			buf_reset(&h->line);
			break;
		case HTTP_CHUNK_DATA:
		case HTTP_LENGTH:
		case HTTP_UNTIL_CLOSE:
			k = (size_t)(end - p);
			if (h->state != HTTP_UNTIL_CLOSE && k > h->remaining)
				k = (size_t)h->remaining;
			if (ops->body(arg, p, k) == -1)
				return -1;
			p += k;
			if (h->state == HTTP_UNTIL_CLOSE)
				break;
			h->remaining -= k;
			if (h->remaining == 0)
				h->state = h->state == HTTP_LENGTH
				    ? HTTP_DONE
				    : HTTP_CHUNK_END;
			break;
		}
	}
	if (h->state == HTTP_DONE) {
		ops->done(arg);
	}
	return p - start;
}

/* ------------------------------------------------------------------ */
/* Run state                                                           */

enum conn_kind { CONN_SUB, CONN_PUB };

enum conn_state {
	CS_IDLE, /* no socket */
	CS_CONNECTING,
	CS_SENDING, /* request (partly) unwritten */
	CS_WAITING, /* request written, response not complete */
	CS_READY,   /* pub: may send; sub: streaming */
	CS_FAILED   /* sub: gave up */
};

struct conn {
	int fd;
	uint8_t kind;
	uint8_t state;
	uint8_t want_out; /* EPOLLOUT registered */
	struct http http;
	char *out; /* unwritten request bytes */
	uint32_t out_len;
	uint32_t out_off;
};

struct sub {
	struct conn c; /* first: epoll data points here */
	struct sse sse;
	uint32_t index;    /* user * devices + device */
	uint32_t sent_seq; /* last sequence number posted to it */
	uint32_t max_seq;  /* highest sequence number received */
	uint8_t inflight;  /* a post to it awaits its answer */
	uint8_t resuming;  /* reconnecting (--churn): not yet 200 */
	uint8_t queued;    /* in the retry queue */
};

struct pub {
	struct conn c;
	uint64_t msg; /* message in flight, if CS_WAITING */
	uint32_t reconnects;
	uint64_t retry_at; /* ns; reconnect no sooner than this */
};

struct msg {
	uint64_t send_ns;
	uint64_t lat_ns; /* POST sent -> event received (first) */
	uint64_t rtt_ns; /* POST sent -> response complete */
	uint32_t sub;
	uint16_t status;   /* 0: no response (connection lost) */
	uint16_t received; /* events received carrying it */
};

enum phase {
	PH_SUBSCRIBE,
	PH_SETTLE,
	PH_WARMUP,
	PH_WARMUP_DRAIN,
	PH_POST,
	PH_DRAIN,
	PH_DONE
};

struct pid_rss {
	char name[32];
	long pid;
	long before_kib;     /* before subscribing */
	long subscribed_kib; /* after subscribing and settling */
	long after_kib;      /* after the posts drained */
	/*
	 * CPU over the measured interval (first measured post sent -> its
	 * events drained): clock ticks from /proc/PID/stat (all threads,
	 * ended ones included), and context switches summed over
	 * /proc/PID/task/<tid>/status (threads alive at both samples only).
	 */
	long long utime[2], stime[2]; /* ticks; -1: unreadable */
	long long minflt[2];          /* minor page faults, all threads */
	long long vcs[2], ivcs[2];    /* voluntary, involuntary switches */
};

struct status_count {
	uint16_t code;
	uint64_t n;
};

struct opts {
	struct sockaddr_in addr;
	struct sockaddr_in post_addr; /* POSTs: --post-port, else addr */
	char host[64];
	int port, post_port;
	uint32_t users, devices;
	uint64_t posts, warmup;
	double rate;
	uint32_t conns;
	uint32_t sub_conc;
	uint32_t size;
	int multiline;
	int json_body; /* 1: {"data":"..."}; 0: raw body */
	int key;       /* a JSON body carries "key": 32 hex, one per post */
	const char *style;
	const char *label;
	double timeout_s;
	uint32_t settle_ms, drain_ms;
	uint64_t seed;
	double churn;        /* streams cut and resumed per second */
	const char *samples; /* time series file */
	uint32_t sample_ms;
	struct pid_rss pids[LOADGEN_MAX_PIDS];
	int npids;
};

static struct {
	struct opts o;
	int ep;
	enum phase phase;
	uint64_t t_start, deadline;
	int timed_out, interrupted;

	struct sub *subs;
	uint32_t nsubs, next_sub, subs_inflight, subs_ok, subs_failed;
	uint32_t *ready; /* indices of subscribed devices */
	uint32_t nready;
	uint64_t t_sub_start, t_sub_end;
	uint64_t sub_closed;  /* streams that ended after subscribing */
	uint64_t sub_errors;  /* connect/protocol errors while subscribing */
	uint64_t sub_not_sse; /* 200 without text/event-stream */
	struct status_count sub_status[LOADGEN_MAX_STATUS];

	struct pub *pubs;
	uint64_t settle_until, drain_until;

	struct msg *msgs;
	uint64_t total;                  /* warmup + posts */
	uint64_t next_msg;               /* next message to send */
	uint64_t phase_first, phase_end; /* [first, end) of the phase */
	uint64_t phase_t0;               /* when the phase started sending */
	uint64_t phase_answered; /* responses (or losses) in the phase */
	uint64_t phase_accepted, phase_delivered;
	uint64_t t_first_send, t_last_answer; /* of the measured phase */
	uint64_t t_cpu0, t_cpu1; /* CPU samples (sample_cpu()) taken */
	uint64_t late;           /* fixed rate: sent > 1 ms after schedule */
	uint64_t pub_errors;     /* connection lost with a request out */
	uint64_t pub_connect_failures;
	struct status_count post_status[LOADGEN_MAX_STATUS];

	uint64_t delivered, duplicated, out_of_order, corrupt, foreign;
	uint64_t churned; /* cuts scheduled (the --churn clock) */
	uint64_t cut;     /* streams actually cut (a busy pick is skipped) */
	uint64_t resumed, resume_failures, resets, named_events;
	uint64_t churn_t0;
	uint32_t *retry_q; /* subscribers to reconnect, in due order */
	uint64_t *retry_due;
	uint32_t retry_head, retry_len;
	FILE *samples;
	uint64_t next_sample;
	uint64_t *win; /* latencies (ns) received since the last sample */
	size_t nwin, capwin;
	uint64_t unaccepted_delivered;

	uint64_t rng;
	char *rbuf;
	char *scratch; /* message data being built or checked */
	char *body;    /* request body being built */
	char *req;     /* scratch for formatting a request */
	size_t req_cap;
} G;

static void
status_count(struct status_count *t, unsigned code)
{
	int i;

	for (i = 0; i < LOADGEN_MAX_STATUS; i++) {
		if (t[i].n == 0 || t[i].code == code) {
			t[i].code = (uint16_t)code;
			t[i].n++;
			return;
		}
	}
	t[LOADGEN_MAX_STATUS - 1].n++; /* lumped in with the last one */
}

/* xorshift64*: fast, good enough to pick targets. */
static uint64_t
rng_next(void)
{
	uint64_t x = G.rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	G.rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static long
read_rss_kib(long pid)
{
	char path[64], line[256];
	FILE *f;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

/*
 * utime and stime (clock ticks) and minor page faults of pid from
 * /proc/PID/stat.
 */
static int
read_cpu_ticks(long pid, long long *ut, long long *st, long long *minflt)
{
	char path[64], buf[1024], *p;
	unsigned long long u, s, mf;
	size_t n;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The name (field 2) may hold spaces: start after its ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	/* Skip to the space before field 10: minflt. */
	for (field = 2; field < 10 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &mf) != 1)
		return -1;
	/* Then to the space before field 14: utime, then stime (15). */
	for (; field < 14 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu %llu", &u, &s) != 2)
		return -1;
	*ut = (long long)u;
	*st = (long long)s;
	*minflt = (long long)mf;
	return 0;
}

/* Context switches summed over pid's threads. */
static void
read_ctx_switches(long pid, long long *vcs, long long *ivcs)
{
	char path[96], line[256];
	struct dirent *de;
	DIR *d;

	*vcs = *ivcs = 0;
	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	d = opendir(path);
	if (d == NULL) {
		*vcs = *ivcs = -1;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/status", pid,
		    de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue; /* the thread ended meanwhile */
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
				*vcs += strtoll(line + 24, NULL, 10);
			else if (strncmp(line,
			             "nonvoluntary_ctxt_switches:", 27) == 0)
				*ivcs += strtoll(line + 27, NULL, 10);
		}
		fclose(f);
	}
	closedir(d);
}

/* which 0: the measured posts start; 1: they have drained. */
static void
sample_cpu(int which)
{
	int i;

	for (i = 0; i < G.o.npids; i++) {
		struct pid_rss *p = &G.o.pids[i];

		if (read_cpu_ticks(p->pid, &p->utime[which], &p->stime[which],
		        &p->minflt[which]) == -1)
			p->utime[which] = p->stime[which] = -1;
		read_ctx_switches(p->pid, &p->vcs[which], &p->ivcs[which]);
	}
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

static void
conn_watch(struct conn *c, int out)
{
	struct epoll_event ev;

	if (c->want_out == out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		die("epoll_ctl MOD: %s", strerror(errno));
	c->want_out = (uint8_t)out;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	buf_free(&c->http.line);
	c->want_out = 0;
	c->state = CS_IDLE;
}

/* Starts a non-blocking connect. Returns 0, or -1 with errno set. */
static int
conn_open(struct conn *c)
{
	struct epoll_event ev;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (c->kind == CONN_PUB)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd,
	        (struct sockaddr *)(c->kind == CONN_PUB ? &G.o.post_addr
	                                                : &G.o.addr),
	        sizeof(G.o.addr)) == -1 &&
	    errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	c->fd = fd;
	c->state = CS_CONNECTING;
	c->want_out = 1;
	http_reset(&c->http);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		die("epoll_ctl ADD: %s", strerror(errno));
	return 0;
}

/*
 * Writes as much of the request as the socket takes; keeps the rest.
 * Returns 0, or -1 when the connection failed.
 */
static int
conn_send(struct conn *c, const char *p, size_t n)
{
	ssize_t w;

	if (c->out == NULL) {
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			w = 0;
		}
		if ((size_t)w == n) {
			c->state = CS_WAITING;
			conn_watch(c, 0);
			return 0;
		}
		c->out = xrealloc(NULL, n - (size_t)w);
		memcpy(c->out, p + w, n - (size_t)w);
		c->out_len = (uint32_t)(n - (size_t)w);
		c->out_off = 0;
	}
	while (c->out_off < c->out_len) {
		w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (w == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->out_off += (uint32_t)w;
	}
	if (c->out_off < c->out_len) {
		c->state = CS_SENDING;
		conn_watch(c, 1);
		return 0;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	c->state = CS_WAITING;
	conn_watch(c, 0);
	return 0;
}

/* Connect completion: 0 when connected, -1 on error. */
static int
conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Subscribers                                                         */

static size_t msg_data(char *, uint64_t, uint32_t, uint32_t, uint64_t);
static void sub_retry_later(struct sub *);

static void
sub_request(struct sub *s)
{
	uint32_t u = s->index / G.o.devices, d = s->index % G.o.devices;
	char req[512];
	int n;

	n = snprintf(req, sizeof(req),
	    "GET /subscribe/u%" PRIu32 "/device/d%" PRIu32 " HTTP/1.1\r\n"
	    "Host: %s:%d\r\n"
	    "Accept: text/event-stream\r\n"
	    "Cache-Control: no-cache\r\n"
	    "User-Agent: beep-loadgen/" LOADGEN_VERSION "\r\n"
	    "%s%.*s%s"
	    "\r\n",
	    u, d, G.o.host, G.o.port, s->sse.last_len ? "Last-Event-ID: " : "",
	    (int)s->sse.last_len, s->sse.last, s->sse.last_len ? "\r\n" : "");
	if (conn_send(&s->c, req, (size_t)n) == -1) {
		if (s->resuming) {
			G.resume_failures++;
			sub_retry_later(s);
			return;
		}
		G.sub_errors++;
		conn_close(&s->c);
		s->c.state = CS_FAILED;
		G.subs_inflight--;
		G.subs_failed++;
	}
}

static void
sub_start(struct sub *s)
{
	if (s->resuming) {
		if (conn_open(&s->c) == -1) {
			G.resume_failures++;
			sub_retry_later(s);
		}
		return;
	}
	G.subs_inflight++;
	if (conn_open(&s->c) == -1) {
		if (errno == EMFILE || errno == ENFILE)
			note("out of file descriptors at subscriber %u",
			    s->index);
		G.sub_errors++;
		s->c.state = CS_FAILED;
		G.subs_inflight--;
		G.subs_failed++;
	}
}

/* Reconnect s now, as EventSource does (--churn). */
static void
sub_resume(struct sub *s)
{
	conn_close(&s->c);
	sse_restart(&s->sse);
	http_reset(&s->c.http);
	s->resuming = 1;
	sub_start(s);
}

/* Reconnect s in a second (a failed reconnect, a stream the server ended). */
static void
sub_retry_later(struct sub *s)
{
	uint32_t k;

	conn_close(&s->c);
	s->c.state = CS_FAILED;
	s->resuming = 1;
	if (s->queued)
		return;
	s->queued = 1;
	k = (G.retry_head + G.retry_len) % G.nsubs;
	G.retry_q[k] = s->index;
	G.retry_due[k] = now_ns() + 1000000000u;
	G.retry_len++;
}

/* A subscriber that failed before it was subscribed. */
static void
sub_fail(struct sub *s)
{
	if (s->resuming) {
		G.resume_failures++;
		sub_retry_later(s);
		return;
	}
	conn_close(&s->c);
	s->c.state = CS_FAILED;
	sse_free(&s->sse);
	G.subs_inflight--;
	G.subs_failed++;
}

/* A subscribed stream that ended. */
static void
sub_lost(struct sub *s)
{
	if (G.o.churn > 0 && G.phase != PH_SUBSCRIBE) {
		G.sub_closed++;
		sub_retry_later(s);
		return;
	}
	conn_close(&s->c);
	s->c.state = CS_FAILED;
	sse_free(&s->sse);
	G.sub_closed++;
}

static int
sub_headers(void *arg)
{
	struct sub *s = arg;

	status_count(G.sub_status, s->c.http.status);
	if (s->c.http.status != 200)
		return -1;
	if (!s->c.http.event_stream)
		G.sub_not_sse++;
	s->c.state = CS_READY;
	if (s->resuming) {
		s->resuming = 0;
		G.resumed++;
		return 0;
	}
	G.subs_inflight--;
	G.subs_ok++;
	return 0;
}

static void
sub_event(void *arg, const char *data, size_t n, const char *ev, size_t evn)
{
	struct sub *s = arg;
	unsigned long long g, sub, seq, t;
	char head[80];
	struct msg *m;
	uint64_t now = now_ns();
	size_t k, hn;

	if (evn == 5 && memcmp(ev, "reset", 5) == 0) {
		G.resets++;
		return;
	}
	/* Where a stream starts (its id is taken above): not a message. */
	if (evn == 8 && memcmp(ev, "position", 8) == 0)
		return;
	if (evn > 0 && !(evn == 7 && memcmp(ev, "message", 7) == 0)) {
		G.named_events++;
		return;
	}
	hn = n < sizeof(head) - 1 ? n : sizeof(head) - 1;
	memcpy(head, data, hn);
	head[hn] = '\0';
	if (sscanf(head, "%llu %llu %llu %llu", &g, &sub, &seq, &t) != 4 ||
	    g >= G.total || sub >= G.nsubs || seq > UINT32_MAX) {
		G.foreign++;
		return;
	}
	m = &G.msgs[g];
	/* Rebuild what was sent and compare byte for byte. */
	k = msg_data(G.scratch, g, (uint32_t)sub, (uint32_t)seq, t);
	if (sub != s->index || m->sub != sub || t != m->send_ns || k != n ||
	    memcmp(data, G.scratch, n) != 0) {
		G.corrupt++;
		return;
	}
	if (m->received++ > 0) {
		G.duplicated++;
		return;
	}
	if (seq <= s->max_seq)
		G.out_of_order++;
	else
		s->max_seq = (uint32_t)seq;
	if (m->status != 0 && (m->status < 200 || m->status > 299))
		G.unaccepted_delivered++;
	m->lat_ns = now - t;
	G.delivered++;
	if (G.samples != NULL) {
		if (G.nwin == G.capwin) {
			G.capwin = G.capwin ? 2 * G.capwin : 4096;
			G.win = xrealloc(G.win, G.capwin * sizeof(*G.win));
		}
		G.win[G.nwin++] = m->lat_ns;
	}
	if (g >= G.phase_first && g < G.phase_end)
		G.phase_delivered++;
}

static int
sub_body(void *arg, const char *p, size_t n)
{
	struct sub *s = arg;

	return sse_feed(&s->sse, p, n, sub_event, s);
}

static void
sub_done(void *arg)
{
	(void)arg;
	/* The stream ended; the read loop sees HTTP_DONE and closes. */
}

static const struct http_ops sub_ops = {sub_headers, sub_body, sub_done};

/* ------------------------------------------------------------------ */
/* Publishers                                                          */

static void
req_reserve(size_t n)
{
	if (n > G.req_cap) {
		G.req = xrealloc(G.req, n);
		G.req_cap = n;
	}
}

/* Formats the data of message g into p (room for size + 128). */
static size_t
msg_data(char *p, uint64_t g, uint32_t sub, uint32_t seq, uint64_t t)
{
	size_t n;

	n = (size_t)sprintf(
	    p, "%" PRIu64 " %" PRIu32 " %" PRIu32 " %" PRIu64, g, sub, seq, t);
	if (G.o.multiline) {
		memcpy(p + n, "\nline2", 6);
		n += 6;
	}
	while (n < G.o.size)
		p[n++] = 'x';
	p[n] = '\0';
	return n;
}

/*
 * Picks a random subscribed device with no post awaiting an answer: the
 * order of two posts is only defined when the second is sent after the
 * first was answered. Returns its index, or -1 when every one is busy.
 */
static int64_t
pick_target(void)
{
	uint32_t k, si;

	for (k = 0; k < 8 + G.nready; k++) {
		if (k < 8)
			si = G.ready[rng_next() % G.nready];
		else
			si = G.ready[(k - 8) % G.nready];
		if (!G.subs[si].inflight && G.subs[si].c.state == CS_READY)
			return si;
	}
	return -1;
}

static void pub_failed(struct pub *);

/*
 * Sends the next message on an idle publisher connection. Returns 0, or
 * -1 when every device has a post in flight (nothing was sent).
 */
static int
pub_send(struct pub *pb, uint64_t now)
{
	char *data = G.scratch, *body = G.body;
	uint32_t si, u, d;
	struct sub *s;
	size_t dn, bn, i;
	int64_t target;
	uint64_t g;
	int hn;

	target = pick_target();
	if (target < 0)
		return -1;
	si = (uint32_t)target;
	s = &G.subs[si];
	s->inflight = 1;
	g = G.next_msg++;
	u = si / G.o.devices;
	d = si % G.o.devices;
	if (g == G.phase_first)
		G.phase_t0 = now;
	if (G.o.rate > 0) {
		uint64_t due = G.phase_t0 +
		    (uint64_t)((double)(g - G.phase_first) * 1e9 / G.o.rate);

		if (now > due + 1000000)
			G.late++;
	}
	now = now_ns();
	dn = msg_data(data, g, si, ++s->sent_seq, now);
	if (G.o.json_body) {
		memcpy(body, "{\"data\":\"", 9);
		bn = 9;
		for (i = 0; i < dn; i++) {
			if (data[i] == '\n') {
				body[bn++] = '\\';
				body[bn++] = 'n';
			} else {
				body[bn++] = data[i];
			}
		}
		body[bn++] = '"';
		if (G.o.key)
			/* As beep-signal.js: 32 hex digits, its own per post. */
			bn += (size_t)snprintf(body + bn, 48,
			    ",\"key\":\"%016" PRIx64 "%016" PRIx64 "\"",
			    G.o.seed, g);
		body[bn++] = '}';
	} else {
		memcpy(body, data, dn);
		bn = dn;
	}
	req_reserve(bn + 512);
	hn = snprintf(G.req, G.req_cap,
	    "POST /user/u%" PRIu32 "/device/d%" PRIu32 " HTTP/1.1\r\n"
	    "Host: %s:%d\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "\r\n",
	    u, d, G.o.host, G.o.port,
	    G.o.json_body ? "application/json" : "text/plain", bn);
	memcpy(G.req + hn, body, bn);
	G.msgs[g].send_ns = now;
	G.msgs[g].sub = si;
	pb->msg = g;
	if (G.phase == PH_POST && G.t_first_send == 0)
		G.t_first_send = now;
	http_reset(&pb->c.http);
	if (conn_send(&pb->c, G.req, (size_t)hn + bn) == -1)
		pub_failed(pb);
	return 0;
}

static void
pub_answered(uint64_t g, unsigned status, uint64_t now)
{
	struct msg *m = &G.msgs[g];

	m->status = (uint16_t)status;
	G.subs[m->sub].inflight = 0;
	if (status != 0)
		m->rtt_ns = now - m->send_ns;
	G.phase_answered++;
	if (status >= 200 && status <= 299)
		G.phase_accepted++;
	if (status != 0)
		status_count(G.post_status, status);
	if (G.phase == PH_POST)
		G.t_last_answer = now;
}

/* The connection broke: count the request in flight as lost, reconnect. */
static void
pub_failed(struct pub *pb)
{
	uint64_t now = now_ns();

	if (pb->c.state == CS_SENDING || pb->c.state == CS_WAITING) {
		G.pub_errors++;
		pub_answered(pb->msg, 0, now);
	}
	conn_close(&pb->c);
	pb->reconnects++;
	pb->retry_at = now + (pb->reconnects > 3 ? 100000000u : 0);
}

static int
pub_headers(void *arg)
{
	(void)arg;
	return 0;
}

static int
pub_body(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

static void
pub_done(void *arg)
{
	struct pub *pb = arg;

	pub_answered(pb->msg, pb->c.http.status, now_ns());
}

static const struct http_ops pub_ops = {pub_headers, pub_body, pub_done};

/* ------------------------------------------------------------------ */
/* Event loop                                                          */

static void
handle_read(struct conn *c)
{
	const struct http_ops *ops = c->kind == CONN_SUB ? &sub_ops : &pub_ops;
	struct sub *s = (struct sub *)c;
	struct pub *pb = (struct pub *)c;
	int reads;
	ssize_t r, used;

	for (reads = 0; reads < 8; reads++) {
		r = recv(c->fd, G.rbuf, LOADGEN_READ_BUF, 0);
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r == 0 && c->http.state == HTTP_UNTIL_CLOSE &&
		    c->kind == CONN_PUB) {
			c->http.state = HTTP_DONE;
			pub_done(pb);
			conn_close(c);
			return;
		}
		if (r <= 0)
			goto broken;
		if (c->kind == CONN_PUB && c->state != CS_WAITING &&
		    c->state != CS_SENDING)
			goto broken; /* nothing was asked */
		used = http_feed(&c->http, G.rbuf, (size_t)r, ops, c);
		if (used < 0)
			goto broken;
		if (c->http.state == HTTP_DONE) {
			if (c->kind == CONN_SUB)
				goto broken;
			if (c->http.conn_close || used < r) {
				conn_close(c);
				return;
			}
			c->state = CS_READY;
			return;
		}
		if (r < LOADGEN_READ_BUF)
			return;
	}
	return;
broken:
	if (c->kind == CONN_SUB) {
		if (c->state == CS_READY)
			sub_lost(s);
		else {
			if (c->http.status == 0)
				G.sub_errors++;
			sub_fail(s);
		}
	} else {
		pub_failed(pb);
	}
}

static void
handle_write(struct conn *c)
{
	if (c->state == CS_CONNECTING) {
		if (conn_connected(c) == -1) {
			if (c->kind == CONN_SUB) {
				G.sub_errors++;
				sub_fail((struct sub *)c);
			} else {
				G.pub_connect_failures++;
				pub_failed((struct pub *)c);
			}
			return;
		}
		if (c->kind == CONN_SUB) {
			sub_request((struct sub *)c);
		} else {
			c->state = CS_READY;
			conn_watch(c, 0);
		}
		return;
	}
	if (c->state == CS_SENDING && conn_send(c, NULL, 0) == -1) {
		if (c->kind == CONN_SUB) {
			G.sub_errors++;
			sub_fail((struct sub *)c);
		} else {
			pub_failed((struct pub *)c);
		}
	}
}

static void
sample_rss(int which)
{
	int i;

	for (i = 0; i < G.o.npids; i++) {
		long k = read_rss_kib(G.o.pids[i].pid);

		if (which == 0)
			G.o.pids[i].before_kib = k;
		else if (which == 1)
			G.o.pids[i].subscribed_kib = k;
		else
			G.o.pids[i].after_kib = k;
	}
}

static void
phase_begin_posts(enum phase ph, uint64_t count)
{
	G.phase = ph;
	G.phase_first = G.next_msg;
	G.phase_end = G.next_msg + count;
	G.phase_answered = G.phase_accepted = G.phase_delivered = 0;
	G.phase_t0 = 0;
	if (ph == PH_POST) {
		sample_cpu(0);
		G.t_cpu0 = now_ns();
	}
	note("%s: %" PRIu64 " posts %s",
	    ph == PH_WARMUP ? "warm-up" : "measuring", count,
	    G.o.rate > 0 ? "at a fixed rate" : "at max rate");
}

/* Threads and open descriptors of a process (0 when unreadable). */
static void
read_threads_fds(long pid, long *threads, long *fds)
{
	char path[64], line[256];
	struct dirent *e;
	FILE *f;
	DIR *d;

	*threads = *fds = 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "Threads:", 8) == 0)
				*threads = strtol(line + 8, NULL, 10);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				(*fds)++;
		closedir(d);
	}
}

static int cmp_u64(const void *, const void *);

/* One line of the --samples time series. */
static void
write_sample(uint64_t now)
{
	double p99 = 0, max = 0;
	int i;

	fprintf(G.samples, "%.1f", (double)(now - G.t_start) / 1e9);
	for (i = 0; i < G.o.npids; i++) {
		long th, fds;

		read_threads_fds(G.o.pids[i].pid, &th, &fds);
		fprintf(G.samples, "\t%ld\t%ld\t%ld",
		    read_rss_kib(G.o.pids[i].pid), th, fds);
	}
	if (G.nwin > 0) {
		qsort(G.win, G.nwin, sizeof(*G.win), cmp_u64);
		p99 = (double)G.win[(G.nwin * 99) / 100] / 1e6;
		max = (double)G.win[G.nwin - 1] / 1e6;
	}
	fprintf(G.samples,
	    "\t%.3f\t%.3f\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", p99, max,
	    G.delivered, G.resumed, G.resets);
	fflush(G.samples);
	G.nwin = 0;
}

/*
 * --churn: cut the streams due by now (random ones, subscribed and not
 * already reconnecting) and reconnect those whose retry is due. Returns
 * the next time something is due (0: nothing).
 */
static uint64_t
churn_step(uint64_t now, int cut)
{
	uint64_t wake = 0;

	while (G.retry_len > 0 && G.retry_due[G.retry_head] <= now) {
		struct sub *s = &G.subs[G.retry_q[G.retry_head]];

		G.retry_head = (G.retry_head + 1) % G.nsubs;
		G.retry_len--;
		s->queued = 0;
		sub_resume(s);
	}
	if (G.retry_len > 0)
		wake = G.retry_due[G.retry_head];
	if (!cut || G.o.churn <= 0 || G.nready == 0)
		return wake;
	if (G.churn_t0 == 0)
		G.churn_t0 = now;
	while (
	    (double)G.churned < (double)(now - G.churn_t0) * G.o.churn / 1e9) {
		struct sub *s = &G.subs[G.ready[rng_next() % G.nready]];

		G.churned++;
		if (s->c.state == CS_READY && !s->resuming && !s->inflight) {
			G.cut++;
			sub_resume(s);
		}
	}
	{
		uint64_t next = G.churn_t0 +
		    (uint64_t)((double)(G.churned + 1) * 1e9 / G.o.churn);

		if (wake == 0 || next < wake)
			wake = next;
	}
	return wake;
}

/*
 * Advances the phases, starts connections and sends due posts. Returns
 * the time the loop must wake up at the latest (0: no timer needed).
 */
static uint64_t step_posts(uint64_t);

static uint64_t
step(uint64_t now)
{
	uint64_t w = 0, r;

	if (G.phase != PH_SUBSCRIBE && G.phase != PH_SETTLE &&
	    G.phase != PH_DONE && G.o.churn > 0)
		w = churn_step(now, G.phase == PH_WARMUP || G.phase == PH_POST);
	r = step_posts(now);
	if (G.phase == PH_DONE)
		return 0;
	if (w != 0 && (r == 0 || w < r))
		return w;
	return r;
}

static uint64_t
step_posts(uint64_t now)
{
	uint64_t wake = 0;
	uint32_t i;

	switch (G.phase) {
	case PH_SUBSCRIBE:
		while (G.subs_inflight < G.o.sub_conc && G.next_sub < G.nsubs)
			sub_start(&G.subs[G.next_sub++]);
		if (G.subs_ok + G.subs_failed < G.nsubs)
			return 0;
		G.t_sub_end = now;
		note("%u/%u subscribed in %.2f s (%u failed)", G.subs_ok,
		    G.nsubs, (double)(now - G.t_sub_start) / 1e9,
		    G.subs_failed);
		G.ready = xcalloc(G.subs_ok ? G.subs_ok : 1, sizeof(uint32_t));
		for (i = 0; i < G.nsubs; i++)
			if (G.subs[i].c.state == CS_READY)
				G.ready[G.nready++] = i;
		G.phase = PH_SETTLE;
		G.settle_until = now + (uint64_t)G.o.settle_ms * 1000000u;
		for (i = 0; i < G.o.conns; i++)
			if (conn_open(&G.pubs[i].c) == -1)
				pub_failed(&G.pubs[i]);
		return G.settle_until;
	case PH_SETTLE:
		if (now < G.settle_until)
			return G.settle_until;
		sample_rss(1);
		if (G.nready == 0) {
			note("no subscriber: nothing to post to");
			G.phase = PH_DONE;
			return 0;
		}
		if (G.o.warmup > 0)
			phase_begin_posts(PH_WARMUP, G.o.warmup);
		else
			phase_begin_posts(PH_POST, G.o.posts);
		break;
	case PH_WARMUP_DRAIN:
	case PH_DRAIN:
		if (G.phase_delivered < G.phase_accepted && now < G.drain_until)
			return G.drain_until;
		if (G.phase == PH_DRAIN) {
			sample_cpu(1);
			G.t_cpu1 = now_ns();
			sample_rss(2);
			G.phase = PH_DONE;
			return 0;
		}
		phase_begin_posts(PH_POST, G.o.posts);
		break;
	default:
		break;
	}
	if (G.phase != PH_WARMUP && G.phase != PH_POST)
		return 0;

	for (i = 0; i < G.o.conns; i++) {
		struct pub *pb = &G.pubs[i];

		if (pb->c.state == CS_IDLE && now >= pb->retry_at) {
			if (conn_open(&pb->c) == -1)
				pub_failed(pb);
		} else if (pb->c.state == CS_IDLE) {
			if (wake == 0 || pb->retry_at < wake)
				wake = pb->retry_at;
		}
		if (pb->c.state != CS_READY || G.next_msg >= G.phase_end)
			continue;
		if (G.o.rate > 0) {
			uint64_t due = (G.phase_t0 ? G.phase_t0 : now) +
			    (uint64_t)((double)(G.next_msg - G.phase_first) *
			        1e9 / G.o.rate);

			if (due > now) {
				if (wake == 0 || due < wake)
					wake = due;
				continue;
			}
		}
		/* One request outstanding per connection. */
		if (pub_send(pb, now) == -1)
			break;
		now = now_ns();
	}
	if (G.phase_answered >= G.phase_end - G.phase_first) {
		G.drain_until = now + (uint64_t)G.o.drain_ms * 1000000u;
		G.phase = G.phase == PH_WARMUP ? PH_WARMUP_DRAIN : PH_DRAIN;
		note("%s: all %" PRIu64 " answered, %" PRIu64 " accepted",
		    G.phase == PH_DRAIN ? "measuring" : "warm-up",
		    G.phase_end - G.phase_first, G.phase_accepted);
		return step_posts(now);
	}
	return wake;
}

static void
on_signal(int sig)
{
	(void)sig;
	G.interrupted = 1;
}

static void
run(void)
{
	struct epoll_event evs[LOADGEN_MAX_EVENTS];
	int n, i, no_pwait2 = 0;

	while (G.phase != PH_DONE && !G.interrupted) {
		uint64_t now = now_ns(), wake, until;
		struct timespec ts, *tsp = NULL;

		if (now >= G.deadline) {
			G.timed_out = 1;
			note("timeout after %.1f s", G.o.timeout_s);
			break;
		}
		if (G.samples != NULL && now >= G.next_sample) {
			write_sample(now);
			G.next_sample =
			    now + (uint64_t)G.o.sample_ms * 1000000u;
		}
		wake = step(now);
		if (G.samples != NULL && (wake == 0 || wake > G.next_sample))
			wake = G.next_sample;
		if (G.phase == PH_DONE)
			break;
		until = G.deadline;
		if (wake != 0 && wake < until)
			until = wake;
		now = now_ns();
		if (until > now) {
			ts.tv_sec = (time_t)((until - now) / 1000000000u);
			ts.tv_nsec = (long)((until - now) % 1000000000u);
		} else {
			ts.tv_sec = 0;
			ts.tv_nsec = 0;
		}
		tsp = &ts;
		/* Nanosecond timeouts keep a fixed rate smooth; kernels (and
		 * valgrind) without epoll_pwait2 get millisecond ones. */
		n = -1;
		errno = ENOSYS;
		if (!no_pwait2)
			n = epoll_pwait2(
			    G.ep, evs, LOADGEN_MAX_EVENTS, tsp, NULL);
		if (n == -1 && errno == ENOSYS) {
			long long ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;

			no_pwait2 = 1;
			n = epoll_wait(G.ep, evs, LOADGEN_MAX_EVENTS,
			    (int)((ns + 999999) / 1000000));
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd < 0)
				continue;
			if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP) &&
			    (c->state == CS_CONNECTING ||
			        c->state == CS_SENDING)) {
				handle_write(c);
				if (c->fd < 0)
					continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP) &&
			    c->state != CS_CONNECTING)
				handle_read(c);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Report                                                              */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct pct {
	uint64_t n;
	double p50, p90, p99, p999, max, mean; /* ms */
};

/* Nearest-rank percentiles of v (sorted in place), in milliseconds. */
static struct pct
percentiles(uint64_t *v, uint64_t n)
{
	struct pct r;
	static const double q[4] = {0.50, 0.90, 0.99, 0.999};
	double *out[4];
	long double sum = 0;
	uint64_t i;
	int k;

	memset(&r, 0, sizeof(r));
	r.n = n;
	if (n == 0)
		return r;
	qsort(v, n, sizeof(*v), cmp_u64);
	out[0] = &r.p50;
	out[1] = &r.p90;
	out[2] = &r.p99;
	out[3] = &r.p999;
	for (k = 0; k < 4; k++) {
		uint64_t idx = (uint64_t)(q[k] * (double)n + 0.999999999);

		if (idx == 0)
			idx = 1;
		if (idx > n)
			idx = n;
		*out[k] = (double)v[idx - 1] / 1e6;
	}
	for (i = 0; i < n; i++)
		sum += v[i];
	r.max = (double)v[n - 1] / 1e6;
	r.mean = (double)(sum / n) / 1e6;
	return r;
}

static void
json_pct(FILE *f, const char *name, const struct pct *p)
{
	fprintf(f,
	    "\"%s\":{\"n\":%" PRIu64 ",\"p50\":%.4f,\"p90\":%.4f,"
	    "\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,\"mean\":%.4f}",
	    name, p->n, p->p50, p->p90, p->p99, p->p999, p->max, p->mean);
}

static void
json_status(FILE *f, const char *name, const struct status_count *t)
{
	int i, first = 1;

	fprintf(f, "\"%s\":{", name);
	for (i = 0; i < LOADGEN_MAX_STATUS; i++) {
		if (t[i].n == 0)
			continue;
		fprintf(f, "%s\"%u\":%" PRIu64, first ? "" : ",",
		    (unsigned)t[i].code, t[i].n);
		first = 0;
	}
	fputc('}', f);
}

static void
json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static double
per_sub_kib(const struct pid_rss *p)
{
	if (p->before_kib < 0 || p->subscribed_kib < 0 || G.subs_ok == 0)
		return 0;
	return (double)(p->subscribed_kib - p->before_kib) / G.subs_ok;
}

struct cpu_use {
	int valid;
	double user_us, sys_us; /* per delivered post */
	double core_share;      /* CPU seconds per second */
	double vcs, ivcs, cs;   /* context switches per delivered post */
	double minflt;          /* minor page faults per delivered post */
};

/* p's CPU over the measured interval of dur seconds, for posts posts. */
static struct cpu_use
cpu_use(const struct pid_rss *p, uint64_t posts, double dur)
{
	struct cpu_use c = {0};
	double tick = 1e6 / (double)sysconf(_SC_CLK_TCK); /* us */

	if (posts == 0 || dur <= 0 || p->utime[0] < 0 || p->utime[1] < 0)
		return c;
	c.valid = 1;
	c.user_us = (double)(p->utime[1] - p->utime[0]) * tick / (double)posts;
	c.sys_us = (double)(p->stime[1] - p->stime[0]) * tick / (double)posts;
	c.core_share = (c.user_us + c.sys_us) * (double)posts / 1e6 / dur;
	c.minflt = (double)(p->minflt[1] - p->minflt[0]) / (double)posts;
	if (p->vcs[0] >= 0 && p->vcs[1] >= 0) {
		c.vcs = (double)(p->vcs[1] - p->vcs[0]) / (double)posts;
		c.ivcs = (double)(p->ivcs[1] - p->ivcs[0]) / (double)posts;
		c.cs = c.vcs + c.ivcs;
	}
	return c;
}

static int
report(void)
{
	uint64_t *lat, *rtt, nlat = 0, nrtt = 0, g, lost = 0, accepted = 0;
	uint64_t measured_accepted = 0;
	struct pct pl, pr;
	double dur, pps, cpu_dur;
	int i, ok;

	lat = xcalloc(G.total ? G.total : 1, sizeof(*lat));
	rtt = xcalloc(G.total ? G.total : 1, sizeof(*rtt));
	for (g = 0; g < G.total; g++) {
		struct msg *m = &G.msgs[g];
		int acc = m->status >= 200 && m->status <= 299;
		int measured = g >= G.o.warmup;

		if (g >= G.next_msg)
			break;
		if (acc) {
			accepted++;
			if (!m->received)
				lost++;
		}
		if (!measured)
			continue;
		if (acc)
			measured_accepted++;
		if (m->received)
			lat[nlat++] = m->lat_ns;
		if (m->status != 0)
			rtt[nrtt++] = m->rtt_ns;
	}
	pl = percentiles(lat, nlat);
	pr = percentiles(rtt, nrtt);
	dur = G.t_last_answer > G.t_first_send
	    ? (double)(G.t_last_answer - G.t_first_send) / 1e9
	    : 0;
	pps = dur > 0 ? (double)nrtt / dur : 0;
	ok = !G.timed_out && !G.interrupted && G.subs_failed == 0 &&
	    (G.sub_closed == 0 || G.o.churn > 0) && G.resets == 0 &&
	    lost == 0 && G.duplicated == 0 && G.out_of_order == 0 &&
	    G.corrupt == 0 && G.pub_errors == 0 && accepted == G.next_msg &&
	    G.next_msg == G.total;

	printf("loadgen %s: %s, %s body, %s\n", G.o.label, G.o.style,
	    G.o.json_body ? "json" : "raw",
	    G.timed_out         ? "TIMED OUT"
	        : G.interrupted ? "INTERRUPTED"
	                        : "completed");
	printf("  subscribers  %u/%u in %.2f s, %u failed, %" PRIu64
	       " closed early\n",
	    G.subs_ok, G.nsubs, (double)(G.t_sub_end - G.t_sub_start) / 1e9,
	    G.subs_failed, G.sub_closed);
	printf("  posts        %" PRIu64 " measured (+%" PRIu64 " warm-up) "
	       "over %u conns, %s: %.0f posts/s in %.3f s\n",
	    G.o.posts, G.o.warmup, G.o.conns,
	    G.o.rate > 0 ? "fixed rate" : "max rate", pps, dur);
	printf("  answers      %" PRIu64 " accepted (2xx) of %" PRIu64
	       " sent, %" PRIu64 " connection errors, %" PRIu64
	       " late (>1 ms behind schedule)\n",
	    accepted, G.next_msg, G.pub_errors, G.late);
	printf("  delivery     %" PRIu64 " delivered, %" PRIu64
	       " lost, %" PRIu64 " duplicated, %" PRIu64
	       " out of order, %" PRIu64 " corrupt\n",
	    G.delivered, lost, G.duplicated, G.out_of_order, G.corrupt);
	if (G.o.churn > 0)
		printf("  churn        %" PRIu64 " cut, %" PRIu64
		       " resumed (Last-Event-ID), %" PRIu64
		       " failed reconnects, %" PRIu64 " resets, %" PRIu64
		       " other named events\n",
		    G.cut, G.resumed, G.resume_failures, G.resets,
		    G.named_events);
	printf("  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
	       "max %.3f  (POST sent -> event received, n=%" PRIu64 ")\n",
	    pl.p50, pl.p90, pl.p99, pl.p999, pl.max, pl.n);
	printf("  POST rtt ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
	       "max %.3f\n",
	    pr.p50, pr.p90, pr.p99, pr.p999, pr.max);
	for (i = 0; i < G.o.npids; i++) {
		const struct pid_rss *p = &G.o.pids[i];

		printf("  rss KiB      %s[%ld]: before %ld, subscribed %ld, "
		       "after %ld -> %.2f KiB per subscriber\n",
		    p->name, p->pid, p->before_kib, p->subscribed_kib,
		    p->after_kib, per_sub_kib(p));
	}
	cpu_dur = G.t_cpu1 > G.t_cpu0 ? (double)(G.t_cpu1 - G.t_cpu0) / 1e9 : 0;
	for (i = 0; i < G.o.npids; i++) {
		struct cpu_use c = cpu_use(&G.o.pids[i], nlat, cpu_dur);

		if (c.valid)
			printf(
			    "  cpu us/post  %s: user %.2f sys %.2f (%.0f%% of "
			    "a core), %.2f context switches/post\n",
			    G.o.pids[i].name, c.user_us, c.sys_us,
			    c.core_share * 100, c.cs);
	}
	printf("  result       %s\n", ok ? "OK" : "FAILED");

	printf("{\"tool\":\"loadgen\",\"version\":\"" LOADGEN_VERSION "\","
	       "\"label\":");
	json_string(stdout, G.o.label);
	printf(",\"style\":");
	json_string(stdout, G.o.style);
	printf(",\"body\":\"%s\",\"port\":%d,\"users\":%u,\"devices\":%u,"
	       "\"posts\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"rate\":%.1f,"
	       "\"conns\":%u,\"size\":%u,\"multiline\":%s,",
	    G.o.json_body ? "json" : "raw", G.o.port, G.o.users, G.o.devices,
	    G.o.posts, G.o.warmup, G.o.rate, G.o.conns, G.o.size,
	    G.o.multiline ? "true" : "false");
	printf("\"ok\":%s,\"timed_out\":%s,\"elapsed_s\":%.3f,",
	    ok ? "true" : "false", G.timed_out ? "true" : "false",
	    (double)(now_ns() - G.t_start) / 1e9);
	printf("\"subscribers\":{\"wanted\":%u,\"ok\":%u,\"failed\":%u,"
	       "\"closed\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"not_sse\":%" PRIu64 ",\"seconds\":%.3f,",
	    G.nsubs, G.subs_ok, G.subs_failed, G.sub_closed, G.sub_errors,
	    G.sub_not_sse, (double)(G.t_sub_end - G.t_sub_start) / 1e9);
	json_status(stdout, "status", G.sub_status);
	printf("},\"posts_per_s\":%.1f,\"post_seconds\":%.4f,", pps, dur);
	printf("\"sent\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"measured_"
	       "accepted\":%" PRIu64 ",\"post_errors\":%" PRIu64
	       ",\"late\":%" PRIu64 ",",
	    G.next_msg, accepted, measured_accepted, G.pub_errors, G.late);
	json_status(stdout, "post_status", G.post_status);
	printf(",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated"
	       "\":%" PRIu64 ",\"out_of_order\":%" PRIu64
	       ",\"corrupt\":%" PRIu64 ",\"foreign\":%" PRIu64
	       ",\"unaccepted_delivered\":%" PRIu64 ",",
	    G.delivered, lost, G.duplicated, G.out_of_order, G.corrupt,
	    G.foreign, G.unaccepted_delivered);
	json_pct(stdout, "latency_ms", &pl);
	putchar(',');
	json_pct(stdout, "post_rtt_ms", &pr);
	printf(",\"sse\":{\"comments\":%" PRIu64 ",\"ids\":%" PRIu64
	       ",\"retries\":%" PRIu64 ",\"unknown_fields\":%" PRIu64
	       ",\"overflows\":%" PRIu64 "},",
	    g_sse_stats.comments, g_sse_stats.ids, g_sse_stats.retries,
	    g_sse_stats.unknown_fields, g_sse_stats.overflows);
	printf("\"churn\":{\"per_s\":%.3f,\"cut\":%" PRIu64
	       ",\"resumed\":%" PRIu64 ",\"failed_reconnects\":%" PRIu64
	       ",\"server_ended\":%" PRIu64 ",\"resets\":%" PRIu64
	       ",\"named_events\":%" PRIu64 "},",
	    G.o.churn, G.cut, G.resumed, G.resume_failures, G.sub_closed,
	    G.resets, G.named_events);
	printf("\"rss\":[");
	for (i = 0; i < G.o.npids; i++) {
		const struct pid_rss *p = &G.o.pids[i];

		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, p->name);
		printf(",\"pid\":%ld,\"before_kib\":%ld,\"subscribed_kib\":%ld,"
		       "\"after_kib\":%ld,\"per_sub_kib\":%.3f}",
		    p->pid, p->before_kib, p->subscribed_kib, p->after_kib,
		    per_sub_kib(p));
	}
	printf("],\"cpu\":{\"seconds\":%.4f,\"posts\":%" PRIu64 ",\"procs\":[",
	    cpu_dur, nlat);
	for (i = 0; i < G.o.npids; i++) {
		struct cpu_use c = cpu_use(&G.o.pids[i], nlat, cpu_dur);

		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, G.o.pids[i].name);
		if (c.valid)
			printf(",\"user_us_per_post\":%.3f,\"sys_us_per_post\":"
			       "%.3f,\"us_per_post\":%.3f,\"core_share\":%.3f,"
			       "\"vcs_per_post\":%.3f,\"ivcs_per_post\":%.3f,"
			       "\"cs_per_post\":%.3f,\"minflt_per_post\":%.3f}",
			    c.user_us, c.sys_us, c.user_us + c.sys_us,
			    c.core_share, c.vcs, c.ivcs, c.cs, c.minflt);
		else
			printf(",\"us_per_post\":null}");
	}
	printf("]}}\n");
	fflush(stdout);
	free(lat);
	free(rtt);
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: loadgen --port PORT [options]\n"
	    "  --host ADDR          front server address, loopback only (127.0.0.1)\n"
	    "  --port PORT          front server port\n"
	    "  --post-port PORT     send the POSTs to this port instead (another\n"
	    "                       node of a cluster: cross-node delivery)\n"
	    "  --users U            users (100)\n"
	    "  --devices D          devices per user (10); subscribers = U*D,\n"
	    "                       GET /subscribe/u<i>/device/d<j>\n"
	    "  --posts M            measured posts (1000)\n"
	    "  --warmup W           posts sent first and not measured (0)\n"
	    "  --rate R             posts/s in all; 0 = as fast as answered (0)\n"
	    "  --conns N            keep-alive publisher connections (8)\n"
	    "  --style beep|nchan   POST /user/u<i>/device/d<j>; beep: JSON body,\n"
	    "                       nchan: raw body (beep)\n"
	    "  --post-path-style S  same as --style\n"
	    "  --body json|raw      override the body format of the style\n"
	    "  --size BYTES         pad the data to BYTES with 'x' (0)\n"
	    "  --key                a JSON body carries an idempotency key, 32\n"
	    "                       hex digits, its own per post (as\n"
	    "                       beep-signal.js sends)\n"
	    "  --multiline          data spans two lines (checks SSE line splitting)\n"
	    "  --sub-concurrency K  subscriptions in flight at once (256)\n"
	    "  --settle MS          idle time after subscribing, before posting (500)\n"
	    "  --drain MS           wait for late events after the last answer (5000)\n"
	    "  --timeout S          bound on the whole run, seconds (120)\n"
	    "  --pids LIST          [name=]pid,... whose VmRSS, CPU per post and\n"
	    "                       context switches per post are reported (this\n"
	    "                       process is always, as loadgen)\n"
	    "  --label NAME         name in the report\n"
	    "  --seed N             target choice seed (1)\n"
	    "  --quiet              no progress on stderr\n"
	    "  --free-port          print a free loopback TCP port and exit\n"
	    "  --churn R            cut R random streams/s while posting; each\n"
	    "                       resumes at once with Last-Event-ID, as\n"
	    "                       EventSource does (0); a reset fails the run\n"
	    "  --samples FILE       time series, one line per --sample-ms: s,\n"
	    "                       then RSS KiB, threads, fds per --pids entry,\n"
	    "                       p99 ms, max ms, delivered, resumed, resets\n"
	    "  --sample-ms MS       sampling interval (1000)\n"
	    "Exit: 0 all delivered exactly once in order, 1 anything less, 2 usage.\n");
}

static uint64_t
parse_u64(const char *name, const char *v, uint64_t max)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || end == v || *end != '\0' || x > max || v[0] == '-')
		die("bad %s: %s", name, v);
	return x;
}

static void
parse_pids(struct opts *o, const char *arg)
{
	char *copy, *tok, *save = NULL;

	copy = strdup(arg);
	if (copy == NULL)
		die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		struct pid_rss *p;
		char *eq = strchr(tok, '=');

		if (o->npids == LOADGEN_MAX_PIDS)
			die("too many pids (max %d)", LOADGEN_MAX_PIDS);
		p = &o->pids[o->npids++];
		memset(p, 0, sizeof(*p));
		if (eq != NULL) {
			*eq = '\0';
			snprintf(p->name, sizeof(p->name), "%s", tok);
			tok = eq + 1;
		} else {
			snprintf(p->name, sizeof(p->name), "pid%s", tok);
		}
		p->pid = (long)parse_u64("pid", tok, INT_MAX);
		p->before_kib = p->subscribed_kib = p->after_kib = -1;
	}
	free(copy);
}

static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd == -1)
		die("socket: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
		die("bind: %s", strerror(errno));
	printf("%u\n", ntohs(a.sin_port));
	close(fd);
	return 0;
}

static void
parse_args(struct opts *o, int argc, char **argv)
{
	enum {
		O_HOST = 256,
		O_PORT,
		O_USERS,
		O_DEVICES,
		O_POSTS,
		O_WARMUP,
		O_RATE,
		O_CONNS,
		O_STYLE,
		O_BODY,
		O_SIZE,
		O_MULTILINE,
		O_SUBCONC,
		O_SETTLE,
		O_DRAIN,
		O_TIMEOUT,
		O_PIDS,
		O_LABEL,
		O_SEED,
		O_QUIET,
		O_FREEPORT,
		O_POSTPORT,
		O_HELP,
		O_CHURN,
		O_SAMPLES,
		O_SAMPLE_MS,
		O_KEY
	};
	static const struct option lo[] = {
	    {"host", required_argument, NULL, O_HOST},
	    {"port", required_argument, NULL, O_PORT},
	    {"post-port", required_argument, NULL, O_POSTPORT},
	    {"users", required_argument, NULL, O_USERS},
	    {"devices", required_argument, NULL, O_DEVICES},
	    {"posts", required_argument, NULL, O_POSTS},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"rate", required_argument, NULL, O_RATE},
	    {"conns", required_argument, NULL, O_CONNS},
	    {"style", required_argument, NULL, O_STYLE},
	    {"post-path-style", required_argument, NULL, O_STYLE},
	    {"body", required_argument, NULL, O_BODY},
	    {"size", required_argument, NULL, O_SIZE},
	    {"multiline", no_argument, NULL, O_MULTILINE},
	    {"sub-concurrency", required_argument, NULL, O_SUBCONC},
	    {"settle", required_argument, NULL, O_SETTLE},
	    {"drain", required_argument, NULL, O_DRAIN},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"pids", required_argument, NULL, O_PIDS},
	    {"label", required_argument, NULL, O_LABEL},
	    {"seed", required_argument, NULL, O_SEED},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"free-port", no_argument, NULL, O_FREEPORT},
	    {"help", no_argument, NULL, O_HELP},
	    {"churn", required_argument, NULL, O_CHURN},
	    {"samples", required_argument, NULL, O_SAMPLES},
	    {"sample-ms", required_argument, NULL, O_SAMPLE_MS},
	    {"key", no_argument, NULL, O_KEY}, {NULL, 0, NULL, 0}};
	const char *body = NULL;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	snprintf(o->host, sizeof(o->host), "127.0.0.1");
	o->users = 100;
	o->devices = 10;
	o->posts = 1000;
	o->conns = 8;
	o->sub_conc = 256;
	o->settle_ms = 500;
	o->drain_ms = 5000;
	o->timeout_s = 120;
	o->seed = 1;
	o->sample_ms = 1000;
	o->style = "beep";
	o->label = "run";
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_HOST:
			snprintf(o->host, sizeof(o->host), "%s", optarg);
			break;
		case O_PORT:
			o->port = (int)parse_u64("port", optarg, 65535);
			break;
		case O_POSTPORT:
			o->post_port =
			    (int)parse_u64("post-port", optarg, 65535);
			break;
		case O_USERS:
			o->users =
			    (uint32_t)parse_u64("users", optarg, 1000000);
			break;
		case O_DEVICES:
			o->devices =
			    (uint32_t)parse_u64("devices", optarg, 1000000);
			break;
		case O_POSTS:
			o->posts = parse_u64("posts", optarg, 100000000);
			break;
		case O_WARMUP:
			o->warmup = parse_u64("warmup", optarg, 100000000);
			break;
		case O_RATE:
			errno = 0;
			o->rate = strtod(optarg, &end);
			if (errno || *end != '\0' || !(o->rate >= 0) ||
			    o->rate > 1e7)
				die("bad rate: %s", optarg);
			break;
		case O_CONNS:
			o->conns = (uint32_t)parse_u64("conns", optarg, 4096);
			break;
		case O_STYLE:
			if (strcmp(optarg, "beep") == 0)
				o->style = "beep";
			else if (strcmp(optarg, "nchan") == 0)
				o->style = "nchan";
			else
				die("bad style: %s (beep|nchan)", optarg);
			break;
		case O_BODY:
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "raw") != 0)
				die("bad body: %s (json|raw)", optarg);
			body = optarg;
			break;
		case O_SIZE:
			o->size = (uint32_t)parse_u64("size", optarg, 65536);
			break;
		case O_MULTILINE:
			o->multiline = 1;
			break;
		case O_SUBCONC:
			o->sub_conc = (uint32_t)parse_u64(
			    "sub-concurrency", optarg, 100000);
			break;
		case O_SETTLE:
			o->settle_ms =
			    (uint32_t)parse_u64("settle", optarg, 3600000);
			break;
		case O_DRAIN:
			o->drain_ms =
			    (uint32_t)parse_u64("drain", optarg, 3600000);
			break;
		case O_TIMEOUT:
			errno = 0;
			o->timeout_s = strtod(optarg, &end);
			if (errno || *end != '\0' || !(o->timeout_s > 0) ||
			    o->timeout_s > 86400)
				die("bad timeout: %s", optarg);
			break;
		case O_PIDS:
			parse_pids(o, optarg);
			break;
		case O_LABEL:
			o->label = optarg;
			break;
		case O_SEED:
			o->seed = parse_u64("seed", optarg, UINT64_MAX);
			break;
		case O_CHURN:
			errno = 0;
			o->churn = strtod(optarg, &end);
			if (errno || *end != '\0' || !(o->churn >= 0) ||
			    o->churn > 1e6)
				die("bad churn: %s", optarg);
			break;
		case O_SAMPLES:
			o->samples = optarg;
			break;
		case O_KEY:
			o->key = 1;
			break;
		case O_SAMPLE_MS:
			o->sample_ms =
			    (uint32_t)parse_u64("sample-ms", optarg, 3600000);
			break;
		case O_QUIET:
			g_quiet = 1;
			break;
		case O_FREEPORT:
			exit(free_port());
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (o->port == 0)
		die("--port is required");
	/* This process: its CPU per post is part of every run's cost. */
	if (o->npids < LOADGEN_MAX_PIDS) {
		struct pid_rss *p = &o->pids[o->npids++];

		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "loadgen");
		p->pid = (long)getpid();
		p->before_kib = p->subscribed_kib = p->after_kib = -1;
	}
	if (o->users == 0 || o->devices == 0 ||
	    (uint64_t)o->users * o->devices > 1000000)
		die("users x devices must be 1..1000000");
	if (o->conns == 0 || o->sub_conc == 0)
		die("--conns and --sub-concurrency must be positive");
	o->json_body =
	    body ? strcmp(body, "json") == 0 : strcmp(o->style, "beep") == 0;
	memset(&o->addr, 0, sizeof(o->addr));
	o->addr.sin_family = AF_INET;
	o->addr.sin_port = htons((uint16_t)o->port);
	if (strcmp(o->host, "localhost") == 0)
		snprintf(o->host, sizeof(o->host), "127.0.0.1");
	if (inet_pton(AF_INET, o->host, &o->addr.sin_addr) != 1)
		die("bad host: %s (an IPv4 address)", o->host);
	/* Load goes to this machine only. */
	if ((ntohl(o->addr.sin_addr.s_addr) >> 24) != 127)
		die("host %s is not a loopback address (127.0.0.0/8)", o->host);
	o->post_addr = o->addr;
	if (o->post_port != 0)
		o->post_addr.sin_port = htons((uint16_t)o->post_port);
}

/* Raises the open file limit to the hard limit; returns the new limit. */
static rlim_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			note("setrlimit NOFILE: %s", strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	rlim_t nofile;
	uint32_t i;
	int rc;

	parse_args(&G.o, argc, argv);
	nofile = raise_nofile();
	G.nsubs = G.o.users * G.o.devices;
	if (nofile != RLIM_INFINITY &&
	    (uint64_t)G.nsubs + G.o.conns + 16 > (uint64_t)nofile)
		die("%u subscribers + %u connections need more than the "
		    "%llu open files allowed",
		    G.nsubs, G.o.conns, (unsigned long long)nofile);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	G.ep = epoll_create1(EPOLL_CLOEXEC);
	if (G.ep == -1)
		die("epoll_create1: %s", strerror(errno));
	G.rbuf = xrealloc(NULL, LOADGEN_READ_BUF);
	G.scratch = xrealloc(NULL, (size_t)G.o.size + 128);
	G.body = xrealloc(NULL, 2 * ((size_t)G.o.size + 128) + 16 + 48);
	G.subs = xcalloc(G.nsubs, sizeof(*G.subs));
	for (i = 0; i < G.nsubs; i++) {
		G.subs[i].c.fd = -1;
		G.subs[i].c.kind = CONN_SUB;
		G.subs[i].index = i;
	}
	G.pubs = xcalloc(G.o.conns, sizeof(*G.pubs));
	for (i = 0; i < G.o.conns; i++) {
		G.pubs[i].c.fd = -1;
		G.pubs[i].c.kind = CONN_PUB;
	}
	G.total = G.o.warmup + G.o.posts;
	G.msgs = xcalloc(G.total ? G.total : 1, sizeof(*G.msgs));
	G.rng = G.o.seed * 0x9e3779b97f4a7c15ULL + 1;
	G.retry_q = xcalloc(G.nsubs ? G.nsubs : 1, sizeof(*G.retry_q));
	G.retry_due = xcalloc(G.nsubs ? G.nsubs : 1, sizeof(*G.retry_due));
	if (G.o.samples != NULL) {
		G.samples = fopen(G.o.samples, "w");
		if (G.samples == NULL)
			die("%s: %s", G.o.samples, strerror(errno));
		if (G.o.sample_ms == 0)
			die("--sample-ms must be positive");
	}

	G.t_start = now_ns();
	G.deadline = G.t_start + (uint64_t)(G.o.timeout_s * 1e9);
	sample_rss(0);
	G.t_sub_start = now_ns();
	note("%u subscribers (%u users x %u devices) on %s:%d, open files "
	     "limit %llu",
	    G.nsubs, G.o.users, G.o.devices, G.o.host, G.o.port,
	    (unsigned long long)nofile);
	G.phase = PH_SUBSCRIBE;
	run();
	if (G.t_sub_end == 0)
		G.t_sub_end = now_ns();
	if (G.phase != PH_DONE) {
		/* Cut short: sample what we can. */
		sample_rss(G.phase <= PH_SETTLE ? 1 : 2);
	}
	rc = report();
	for (i = 0; i < G.nsubs; i++) {
		conn_close(&G.subs[i].c);
		sse_free(&G.subs[i].sse);
	}
	for (i = 0; i < G.o.conns; i++)
		conn_close(&G.pubs[i].c);
	free(G.subs);
	free(G.pubs);
	free(G.msgs);
	free(G.retry_q);
	free(G.retry_due);
	free(G.win);
	if (G.samples != NULL)
		fclose(G.samples);
	free(G.ready);
	free(G.rbuf);
	free(G.scratch);
	free(G.body);
	free(G.req);
	close(G.ep);
	return rc;
}
