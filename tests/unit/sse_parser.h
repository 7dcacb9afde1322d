/*
 * A test-only event-stream parser that follows the WHATWG HTML algorithm
 * ("Interpreting an event stream") to the letter, so the framer is judged
 * by what a browser would make of its output.
 */
#ifndef TEST_SSE_PARSER_H
#define TEST_SSE_PARSER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SSE_PARSER_MAX 16

struct sse_parsed {
	char type[128]; /* "message" unless an event field set it */
	size_t type_len;
	struct buf data;
	char id[128];
};

struct sse_parser {
	struct sse_parsed events[SSE_PARSER_MAX];
	size_t n;
	struct buf data; /* the data buffer */
	char type[128];  /* the event type buffer */
	size_t type_len;
	char last_id[128]; /* the last event ID buffer */
	/*
	 * EventSource's last event ID string: the buffer as the last blank
	 * line left it, what a reconnection sends as Last-Event-ID (an id:
	 * line of an event not yet ended is not it yet).
	 */
	char resume_id[128];
	long retry; /* -1 when never set */
	size_t comments;
};

static void
sse_parser_dispatch(struct sse_parser *p)
{
	struct sse_parsed *e;

	memcpy(p->resume_id, p->last_id, sizeof(p->resume_id));
	if (p->data.len == 0) {
		buf_reset(&p->data);
		p->type[0] = '\0';
		p->type_len = 0;
		return;
	}
	if (p->data.data[p->data.len - 1] == '\n')
		p->data.data[--p->data.len] = '\0';
	if (p->n < SSE_PARSER_MAX) {
		e = &p->events[p->n++];
		memset(e, 0, sizeof(*e));
		if (p->type_len > 0) {
			memcpy(e->type, p->type, p->type_len);
			e->type_len = p->type_len;
		} else {
			memcpy(e->type, "message", sizeof("message"));
			e->type_len = sizeof("message") - 1;
		}
		buf_append(&e->data, p->data.data, p->data.len);
		snprintf(e->id, sizeof(e->id), "%s", p->last_id);
	}
	buf_reset(&p->data);
	p->type[0] = '\0';
	p->type_len = 0;
}

static void
sse_parser_line(struct sse_parser *p, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	const char *value;
	size_t flen, vlen;

	if (len == 0) {
		sse_parser_dispatch(p);
		return;
	}
	if (line[0] == ':') {
		p->comments++;
		return;
	}
	flen = colon ? (size_t)(colon - line) : len;
	value = colon ? colon + 1 : line + len;
	vlen = colon ? len - flen - 1 : 0;
	if (vlen > 0 && value[0] == ' ')
		value++, vlen--;
		/* The whole name, NULs included: "data\0" is no field of ours. */
#define SSE_FIELD_IS(name)                                                     \
	(flen == sizeof(name) - 1 && memcmp(line, name, flen) == 0)
	if (SSE_FIELD_IS("event")) {
		/* Kept whole, NULs included (up to 127 bytes). */
		p->type_len =
		    vlen < sizeof(p->type) ? vlen : sizeof(p->type) - 1;
		memcpy(p->type, value, p->type_len);
		p->type[p->type_len] = '\0';
	} else if (SSE_FIELD_IS("data")) {
		buf_append(&p->data, value, vlen);
		buf_append(&p->data, "\n", 1);
	} else if (SSE_FIELD_IS("id")) {
		if (memchr(value, '\0', vlen) == NULL)
			snprintf(p->last_id, sizeof(p->last_id), "%.*s",
			    (int)vlen, value);
	} else if (SSE_FIELD_IS("retry")) {
		bool digits = vlen > 0;

		for (size_t i = 0; i < vlen; i++)
			digits = digits && value[i] >= '0' && value[i] <= '9';
		if (digits)
			p->retry = strtol(value, NULL, 10);
	}
#undef SSE_FIELD_IS
}

/* Parse a whole stream; events ending without a blank line are dropped. */
static void
sse_parse(struct sse_parser *p, const char *s, size_t len)
{
	size_t start = 0, i = 0;

	memset(p, 0, sizeof(*p));
	p->retry = -1;
	/* UTF-8 decode strips one leading BOM. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		start = i = 3;
	while (i < len) {
		if (s[i] == '\r' || s[i] == '\n') {
			sse_parser_line(p, s + start, i - start);
			if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
				i++;
			start = ++i;
		} else {
			i++;
		}
	}
}

static void
sse_parser_free(struct sse_parser *p)
{
	for (size_t i = 0; i < p->n; i++)
		buf_free(&p->events[i].data);
	buf_free(&p->data);
}

#endif
