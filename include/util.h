/*
 * util: allocation that aborts on failure, a growable byte buffer, and the
 * monotonic clock.  Every other module may use it; it uses none of them.
 */
#ifndef BEEP_UTIL_H
#define BEEP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocate or abort: callers never check for NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
/* Copy len bytes and add a NUL terminator. */
char *xmemdup(const void *p, size_t len);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t util_now_ms(void);
/* The same clock in microseconds. */
uint64_t util_now_us(void);

/*
 * A growable byte buffer.  Zero-initialise it ({0}); data is always
 * NUL-terminated once anything has been appended.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
