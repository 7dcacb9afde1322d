/*
 * alloc_tune: glibc's settings for a thread per stream: malloc's and the
 * static TLS's.
 *
 * glibc gives every thread a cache of freed blocks (tcache: up to 7 blocks
 * of each of 64 sizes up to 1 KiB) that no other thread can reuse.  It
 * fills when the thread frees, and also when it allocates: a block taken
 * from an arena's bins brings up to 6 more of its size along.  A stream's
 * thread sleeps for the whole life of its stream with whatever its cache
 * held by then (libfcgi's parameters, messages it trimmed from its
 * device's log): about 7 KiB a thread, rising as threads serve more
 * requests before they settle, and never given back while the stream
 * lasts.  With thousands of streams that is tens of MiB no other thread
 * can use (measured: README "Reliability").  So the cache keeps blocks of
 * up to 64 bytes only (4 sizes: 7 blocks of each are ~1.5 KiB at most per
 * thread; measured, 0.3 KiB more per stream than with no cache), where
 * most of a request's allocations fall (libfcgi's parameter strings, the
 * ids): with no cache at all, glibc's allocator took 3,900 more
 * instructions per POST (14% of the backend's; README "Performance").
 *
 * glibc also puts, at the top of every thread's stack, its descriptor
 * (2,368 bytes) and the static TLS block: the TLS of the program and its
 * libraries (152 bytes here) and a surplus kept for libraries loaded later
 * (1,664 bytes by default: room for copies of libc in 3 more link-map
 * namespaces, dlmopen(), and 512 "optional" bytes).  That is 4,224 bytes,
 * more than a page, before the thread's first frame, so a sleeping stream
 * held two pages of stack.  Nothing here uses dlmopen(), and a library
 * loaded later with TLS works without the optional bytes (they only spare
 * it a slower access): with glibc.rtld.nns=1 and
 * glibc.rtld.optional_static_tls=0 the surplus is 288 bytes, the block
 * 2,816, and a sleeping stream's frames fit in the same page (see
 * server_stream.c).  A library that needs static TLS (initial-exec
 * model) still finds the 144 bytes glibc keeps for one.
 *
 * glibc reads its tunables only when a program starts, from the
 * environment (GLIBC_TUNABLES): so the binary re-executes itself once with
 * them, before anything else, keeping its pid, arguments, descriptors and
 * name (the kernel would call it "exe").  Each is added unless
 * GLIBC_TUNABLES already names it (the operator's choice wins); nothing is
 * done when it names them all, when the allocator is not glibc's
 * (sanitizers, valgrind), for a
 * set-user-id start (glibc ignores tunables there), and for a start
 * through the loader (`ld.so beep-signal ...`: /proc/self/exe is ld.so).
 */
#ifndef BEEP_ALLOC_TUNE_H
#define BEEP_ALLOC_TUNE_H

/*
 * The tunables the binary sets, with their values, in this order.  The
 * cache's is left out when the operator names either of the cache's
 * tunables (ALLOC_TUNE_TCACHE_ALSO too).
 */
#define ALLOC_TUNE_TCACHE "glibc.malloc.tcache_max=64"
#define ALLOC_TUNE_TCACHE_ALSO "glibc.malloc.tcache_count"
#define ALLOC_TUNE_NNS "glibc.rtld.nns=1"
#define ALLOC_TUNE_STATIC_TLS "glibc.rtld.optional_static_tls=0"
#define ALLOC_TUNE_SETTINGS                                                    \
	ALLOC_TUNE_TCACHE ":" ALLOC_TUNE_NNS ":" ALLOC_TUNE_STATIC_TLS

/*
 * The value GLIBC_TUNABLES needs, from its current one (NULL: unset): a
 * new string (free it), the current tunables followed by those of
 * ALLOC_TUNE_SETTINGS they do not name, or NULL when they name them all.
 */
char *alloc_tune_tunables(const char *current);

/*
 * Re-execute this program (/proc/self/exe, the same argv) with those
 * tunables, if it needs them.  Call it first in main(), before any thread
 * or descriptor is made.  Returns only when it did not re-execute: 0 when
 * nothing was to be done, -1 with errno when the exec failed (the program
 * then runs with glibc's defaults, and the environment as it was).
 */
int alloc_tune_apply(char **argv);

#endif
