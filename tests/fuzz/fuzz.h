/*
 * What the libFuzzer drivers share: running a call on a thread with the
 * production worker stack, splitting an input into parts, and a check
 * that aborts (so libFuzzer keeps the input) when a property fails.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/*
 * The worker stack of a production build: SERVER_STACK_SIZE in
 * src/server.c (without a sanitizer).  Decoders of untrusted input run
 * on a stack this size here, so input that recurses past it crashes the
 * driver as it would crash the service.  The libraries that recurse
 * (jansson, libjwt) are not instrumented, so their frames are the size
 * they are in production.
 */
#define FUZZ_STACK_SIZE (128 * 1024)

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * One worker thread, made once with a FUZZ_STACK_SIZE stack, runs each
 * call: a thread per input would cost more than most inputs do.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void (*fn)(void *);
	void *arg;
	bool started, pending, done;
} fuzz_worker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
    NULL, false, false, false};

static void *
fuzz_worker_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&fuzz_worker.lock);
	for (;;) {
		while (!fuzz_worker.pending)
			pthread_cond_wait(&fuzz_worker.cond, &fuzz_worker.lock);
		fuzz_worker.pending = false;
		pthread_mutex_unlock(&fuzz_worker.lock);
		fuzz_worker.fn(fuzz_worker.arg);
		pthread_mutex_lock(&fuzz_worker.lock);
		fuzz_worker.done = true;
		pthread_cond_broadcast(&fuzz_worker.cond);
	}
	return NULL;
}

/* Run fn(arg) to its end on the worker, whose stack is FUZZ_STACK_SIZE. */
static inline void
fuzz_on_worker_stack(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&fuzz_worker.lock);
	if (!fuzz_worker.started) {
		pthread_attr_t attr;
		pthread_t tid;

		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, FUZZ_STACK_SIZE);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&tid, &attr, fuzz_worker_main, NULL) != 0)
			abort();
		pthread_attr_destroy(&attr);
		fuzz_worker.started = true;
	}
	fuzz_worker.fn = fn;
	fuzz_worker.arg = arg;
	fuzz_worker.done = false;
	fuzz_worker.pending = true;
	pthread_cond_broadcast(&fuzz_worker.cond);
	while (!fuzz_worker.done)
		pthread_cond_wait(&fuzz_worker.cond, &fuzz_worker.lock);
	pthread_mutex_unlock(&fuzz_worker.lock);
}

/*
 * Take the next part of *p (up to *len bytes) ending at byte sep, or all
 * that is left; returns it as a new NUL-terminated string (free it) and
 * its length in *out_len.
 */
static inline char *
fuzz_take(const uint8_t **p, size_t *len, uint8_t sep, size_t *out_len)
{
	const uint8_t *end = memchr(*p, sep, *len);
	size_t n = end ? (size_t)(end - *p) : *len;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += end ? n + 1 : n;
	*len -= end ? n + 1 : n;
	if (out_len != NULL)
		*out_len = n;
	return s;
}

/*
 * Expand repeats in s[0..len): the bytes 0xFE, n, m and then k = m % 8 + 1
 * bytes stand for those k bytes repeated 8 * n times (write m = 8 for one
 * byte: a NUL may separate the parts of an input).  0xFE never occurs in
 * UTF-8, so this takes nothing away from text; it lets the fuzzer write
 * input that is large or deeply nested (2,040 "[" in four bytes), which
 * byte-level mutation of uninstrumented parsers would take hours to grow.
 * Returns a new NUL-terminated string (free it) of at most FUZZ_EXPAND_MAX
 * bytes.
 */
#define FUZZ_EXPAND_MAX (64 * 1024)

static inline char *
fuzz_expand(const char *s, size_t len, size_t *out_len)
{
	struct buf out = {0};
	size_t i = 0;

	buf_append(&out, "", 0);
	while (i < len) {
		if ((unsigned char)s[i] == 0xfe && i + 2 < len) {
			size_t n = 8 * (unsigned char)s[i + 1];
			size_t k = 1 + (unsigned char)s[i + 2] % 8;

			if (k > len - i - 3)
				k = len - i - 3;
			for (size_t r = 0; r < n && k > 0; r++) {
				if (out.len + k > FUZZ_EXPAND_MAX)
					break;
				buf_append(&out, s + i + 3, k);
			}
			i += 3 + k;
		} else {
			if (out.len < FUZZ_EXPAND_MAX)
				buf_append(&out, s + i, 1);
			i++;
		}
	}
	*out_len = out.len;
	return out.data;
}

/* Text as an SSE parser gives it back: CRLF and CR become LF. */
static inline char *
fuzz_lf(const char *s, size_t len, size_t *out_len)
{
	char *out = malloc(len + 1);
	size_t n = 0;

	if (out == NULL)
		abort();
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			out[n++] = '\n';
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	*out_len = n;
	return out;
}

#endif
