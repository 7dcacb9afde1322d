# gdb: how many bytes glibc's per-thread caches (tcache) hold in a running
# backend, by block size and by what each thread is doing. Needs gdb and
# libc6-dbg (glibc's symbols); it stops the process for a second or two:
#
#   gdb -p PID -batch -ex 'source tests/load/tcache-census.py'
#
# How the soak's memory growth was found (README "Reliability"): with the
# caches on, nearly all of it sat in sleeping stream threads. With them off
# (src/alloc_tune.c, the default) every thread's cache is empty.
import collections

import gdb

sizes = collections.Counter()
blocks = collections.Counter()
kinds = collections.Counter()
per_thread = []
for th in gdb.selected_inferior().threads():
    th.switch()
    try:
        tc = gdb.parse_and_eval("tcache")
    except gdb.error:
        continue
    if int(tc) == 0:
        continue
    held = 0
    for i in range(64):
        n = int(tc.dereference()["counts"][i])
        if n:
            size = 32 + 16 * i  # chunk size of tcache bin i (x86-64)
            blocks[size] += n
            sizes[size] += n * size
            held += n * size
    per_thread.append(held)
    frames, f = [], gdb.newest_frame()
    while f is not None and len(frames) < 16:
        if f.name():
            frames.append(f.name())
        f = f.older()
    if "server_stream" in frames:
        kind = "stream"
    elif "server_watcher" in frames:
        kind = "watcher"
    elif any(n.startswith("accept") for n in frames):
        kind = "idle"
    else:
        kind = "other"
    kinds[kind] += 1
    kinds[kind + " bytes"] += held

print("threads with a cache: %d, bytes held in caches: %d"
      % (len(per_thread), sum(sizes.values())))
for size in sorted(sizes):
    print("  %5d-byte blocks: %7d (%d bytes)" % (size, blocks[size], sizes[size]))
print("by thread:", dict(kinds))
per_thread.sort()
if per_thread:
    print("per thread: median %d, max %d bytes"
          % (per_thread[len(per_thread) // 2], per_thread[-1]))
