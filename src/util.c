/* util: see util.h. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
util_oom(size_t size)
{
	/* Nothing sensible can continue without memory; say why and stop. */
	fprintf(
	    stderr, "beep-signal: out of memory allocating %zu bytes\n", size);
	abort();
}

void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		util_oom(size);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		util_oom(n * size);
	return p;
}

void *
xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (q == NULL)
		util_oom(size);
	return q;
}

char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

char *
xmemdup(const void *p, size_t len)
{
	char *s = xmalloc(len + 1);

	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/* "00" to "99", for util_u64_digits(): two digits per division. */
static const char util_digit_pairs[200] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t
util_u64_digits(uint64_t v, char *p)
{
	size_t n = 1;
	char *q;

	/*
	 * Counted first, so that the digits go straight to p: made in an
	 * array of their own, they cost a memcpy() call to move.
	 */
	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	/* From the last digit back, two at a time. */
	q = p + n;
	while (v >= 100) {
		q -= 2;
		memcpy(q, util_digit_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10)
		memcpy(q - 2, util_digit_pairs + 2 * v, 2);
	else
		q[-1] = (char)('0' + v);
	return n;
}

uint64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
util_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* What buf_printf() reserves before its first try. */
#define BUF_PRINTF_ROOM 128

void
buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (b->sink != NULL && b->len > 0 && need > b->sink->at) {
		if (!b->sink->failed)
			b->sink->spill(b, b->sink);
		b->len = 0;
		need = extra + 1;
		if (need <= b->cap)
			return;
	}
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (b->borrowed) {
		char *data = xmalloc(cap);

		memcpy(data, b->data, b->len);
		data[b->len] = '\0';
		b->data = data;
		b->borrowed = false;
	} else {
		b->data = xrealloc(b->data, cap);
	}
	b->cap = cap;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	/*
	 * Formatted once when it fits in the room there is (a header line, an
	 * id): only a longer text is measured by the first pass and formatted
	 * again, after the buffer grows (a buffer on the stack stays there
	 * while its text fits).
	 */
	if (b->cap <= b->len + 1)
		buf_reserve(b, BUF_PRINTF_ROOM);
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		buf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_to_heap(struct buf *b)
{
	char *data;

	if (!b->borrowed)
		return;
	data = xmalloc(b->len + 1);
	memcpy(data, b->data, b->len);
	data[b->len] = '\0';
	b->data = data;
	b->cap = b->len + 1;
	b->borrowed = false;
}

void
buf_free(struct buf *b)
{
	if (!b->borrowed)
		free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->borrowed = false;
}

const char *
util_list_next(const char **p, size_t *len)
{
	for (;;) {
		const char *s = *p, *e;
		size_t n;

		if (*s == '\0')
			return NULL;
		n = strcspn(s, ",");
		e = s + n;
		*p = *e == ',' ? e + 1 : e;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			*len = (size_t)(e - s);
			return s;
		}
	}
}
