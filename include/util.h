/*
 * util: allocation that aborts on failure, a growable byte buffer, and the
 * monotonic clock.  Every other module may use it; it uses none of them.
 */
#ifndef BEEP_UTIL_H
#define BEEP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Allocate or abort: callers never check for NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
/* Copy len bytes and add a NUL terminator. */
char *xmemdup(const void *p, size_t len);

/* The decimal digits of v at p (room for 20, no NUL); returns how many. */
size_t util_u64_digits(uint64_t v, char *p);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t util_now_ms(void);
/* The same clock in microseconds. */
uint64_t util_now_us(void);

/*
 * A growable byte buffer.  Zero-initialise it ({0}); data is always
 * NUL-terminated once anything has been appended.  BUF_ON_STACK() starts
 * one in the caller's array instead, which it leaves for the heap only if
 * it outgrows it: a short-lived buffer of a request or an event then costs
 * no allocation.  Such a buffer must not outlive the array, and its data
 * must not be kept (buf_free() it like any other).
 */
struct buf_sink;

struct buf {
	char *data;
	size_t len;
	size_t cap;
	bool borrowed;         /* data is the caller's array, not the heap's */
	struct buf_sink *sink; /* NULL, or where it empties itself (below) */
};

/*
 * Where a buffer that would grow past at bytes empties itself first: a
 * stream's rendered events go out in pieces of about that size, however
 * much a message grows when rendered (a line break becomes a "data: "
 * line), so that a stream whose write blocks holds one piece, not the
 * whole.  spill() takes b's len bytes (and sets failed when it cannot:
 * what comes after is dropped); b is then empty.  Only buf_grow() calls
 * it, so an append of more than at bytes makes the buffer as large as
 * it: callers that may append that much append it in pieces
 * (buf_sink_piece()).
 */
struct buf_sink {
	void (*spill)(struct buf *b, struct buf_sink *sink);
	size_t at;
	bool failed;
};

/* The most a caller appends at once to a buffer with a sink. */
static inline size_t
buf_sink_piece(const struct buf *b)
{
	return b->sink != NULL ? b->sink->at / 2 : (size_t)-1;
}

#define BUF_ON_STACK(array)                                                    \
	((struct buf){.data = (array) + 0 * sizeof(BUF_MUST_BE_ARRAY(array)),  \
	    .cap = sizeof(array),                                              \
	    .borrowed = true})
/* A pointer has no size to take: refused at compile time. */
#define BUF_MUST_BE_ARRAY(a)                                                   \
	char[1 -                                                               \
	    2 *                                                                \
	        __builtin_types_compatible_p(                                  \
	            __typeof__(a), __typeof__(&(a)[0]))]

/* Room for extra more bytes and a NUL: buf_reserve() when there is none. */
void buf_grow(struct buf *b, size_t extra);

/*
 * The three below are inline: a request and its event append a score of
 * short pieces, and a call each to find the room there would cost more
 * than the copy.
 */
static inline void
buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 > b->cap)
		buf_grow(b, extra);
}

static inline void
buf_append(struct buf *b, const void *p, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static inline void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
/* Move a BUF_ON_STACK() buffer's bytes to the heap (else do nothing). */
void buf_to_heap(struct buf *b);
void buf_free(struct buf *b);

/*
 * The next item of the comma-separated list at *p, without surrounding
 * blanks (spaces, tabs): its start and length, or NULL at the end.  Empty
 * items are skipped.  *p moves past it.
 */
const char *util_list_next(const char **p, size_t *len);

#endif
