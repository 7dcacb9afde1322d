/*
 * alloc_tune: glibc malloc's settings for a thread per stream.
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
 * can use (measured: README "Reliability").  With the cache off, blocks go
 * back to their arena at once; posts went no slower behind nginx.
 *
 * glibc reads its tunables only when a program starts, from the
 * environment (GLIBC_TUNABLES=glibc.malloc.tcache_count=0): so the binary
 * re-executes itself once with them, before anything else, keeping its
 * pid, arguments, descriptors and name (the kernel would call it "exe").  It leaves things as they are when
 * GLIBC_TUNABLES already names tcache_count (the operator's choice wins),
 * when the allocator is not glibc's (sanitizers, valgrind), for a
 * set-user-id start (glibc ignores tunables there), and for a start
 * through the loader (`ld.so beep-signal ...`: /proc/self/exe is ld.so).
 */
#ifndef BEEP_ALLOC_TUNE_H
#define BEEP_ALLOC_TUNE_H

/* The tunable the binary sets, and the value. */
#define ALLOC_TUNE_NAME "glibc.malloc.tcache_count"
#define ALLOC_TUNE_SETTING ALLOC_TUNE_NAME "=0"

/*
 * The value GLIBC_TUNABLES needs, from its current one (NULL: unset): a
 * new string (free it), the current tunables followed by
 * ALLOC_TUNE_SETTING, or NULL when they already set ALLOC_TUNE_NAME.
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
