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

/*
 * The worker stack of a production build: SERVER_STACK_SIZE in
 * src/server.c (without a sanitizer).  Decoders of untrusted input run
 * on a stack this size here, so input that recurses past it crashes the
 * driver as it would crash the service.  The libraries that recurse
 * (jansson, libjwt) are not instrumented, so their frames are the size
 * they are in production.
 */
#define FUZZ_STACK_SIZE (128 * 1024)

#define FUZZ_CHECK(cond)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n",        \
			    __FILE__, __LINE__, #cond);                     \
			abort();                                            \
		}                                                           \
	} while (0)

struct fuzz_call {
	void (*fn)(void *);
	void *arg;
};

static void *
fuzz_trampoline(void *p)
{
	struct fuzz_call *c = p;

	c->fn(c->arg);
	return NULL;
}

/* Run fn(arg) to its end on a new thread with a FUZZ_STACK_SIZE stack. */
static inline void
fuzz_on_worker_stack(void (*fn)(void *), void *arg)
{
	struct fuzz_call c = {fn, arg};
	pthread_attr_t attr;
	pthread_t tid;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, FUZZ_STACK_SIZE);
	if (pthread_create(&tid, &attr, fuzz_trampoline, &c) != 0)
		abort();
	pthread_join(tid, NULL);
	pthread_attr_destroy(&attr);
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
