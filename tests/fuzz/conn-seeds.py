#!/usr/bin/env python3
"""Write the seeds of fuzz_conn (tests/fuzz/corpus/conn/): a mode byte, 0
for raw bytes (what a front sends) or 1 for records as tests/fuzz/fuzz_conn.c
reads them (t, i, l, p, then the content); plus 2, the request judged at
libfcgi's first read of it (a kept connection's, server_judge())."""
import os
import struct

BEGIN, ABORT, PARAMS, STDIN, GET_VALUES = 1, 2, 4, 5, 9


def rec(t, i, content=b"", pad=0, version=1, pad_bytes=None):
    pad_bytes = bytes(pad) if pad_bytes is None else pad_bytes
    return struct.pack(">BBHHBB", version, t, i, len(content), len(pad_bytes), 0) + content + pad_bytes


def nv(k, v):
    return bytes([len(k), len(v)]) + k + v


def begin(i, keep=1, role=1):
    return rec(BEGIN, i, struct.pack(">HB5x", role, keep))


def request(i, body=b"", params=nv(b"REQUEST_METHOD", b"POST") + nv(b"CONTENT_LENGTH", b"2")):
    out = begin(i) + rec(PARAMS, i, params, pad=3) + rec(PARAMS, i)
    if body:
        out += rec(STDIN, i, body)
    return out + rec(STDIN, i)


def structured(*recs):
    """Mode 1: each (t, i, content, pad) as t, i, l, p and the content."""
    out = b"\1"
    for t, i, content, pad in recs:
        out += bytes([t, i, len(content), pad]) + content
    return out


PARAMS_4K = struct.pack(">BBHHBB", 1, PARAMS, 1, 4096, 0, 0)
STDIN_4K = struct.pack(">BBHHBB", 1, STDIN, 1, 4096, 0, 0)
seeds = {
    "whole": b"\0" + request(1, b"{}"),
    "whole-two": b"\0" + request(1, b"{}") + request(1),
    "not-whole": b"\0" + request(1, b"{}")[:-8],
    "other-id-end": b"\0" + begin(1) + rec(STDIN, 2) + rec(PARAMS, 1) + rec(STDIN, 1),
    "management-inside": b"\0" + begin(1) + rec(GET_VALUES, 0, nv(b"FCGI_MAX_CONNS", b""))
    + rec(PARAMS, 1) + rec(STDIN, 1),
    # A GET_VALUES naming a variable four times overflows libfcgi's
    # 64-byte answer on the stack: the reader refuses it (test 72).
    "management-long": b"\0" + begin(1) + rec(GET_VALUES, 0, nv(b"FCGI_MAX_CONNS", b"") * 4)
    + rec(PARAMS, 1) + rec(STDIN, 1),
    "cut-parameter": b"\0" + begin(1) + rec(PARAMS, 1, bytes([14, 4]) + b"REQUEST") + rec(PARAMS, 1) + rec(STDIN, 1),
    "end-before-params": b"\0" + begin(1) + rec(STDIN, 1),
    "bad-role": b"\0" + begin(1, role=7) + rec(PARAMS, 1) + rec(STDIN, 1),
    "abort-in-body": b"\0" + begin(1) + rec(PARAMS, 1) + rec(STDIN, 1, b"x") + rec(ABORT, 1) + rec(STDIN, 1),
    "version-2": b"\0" + begin(1) + rec(PARAMS, 1, version=2) + rec(STDIN, 1),
    # libfcgi reads these two paddings as records (server_conn_whole()):
    # here the header of a record of the stream it reads next (parameters,
    # then body), whose 4,096 bytes never come.
    "padded-begin": b"\0" + rec(BEGIN, 1, struct.pack(">HB5x", 1, 1), pad_bytes=PARAMS_4K)
    + rec(PARAMS, 1) + rec(STDIN, 1),
    "padded-params-end": b"\0" + begin(1) + rec(PARAMS, 1, pad_bytes=STDIN_4K) + rec(STDIN, 1),
    "structured": structured((BEGIN, 1, b"\0\1\1\0\0\0\0\0", 0), (PARAMS, 1, nv(b"A", b"b"), 2),
                             (PARAMS, 1, b"", 0), (STDIN, 1, b"{}", 6), (STDIN, 1, b"", 0)),
}
# The same bytes judged at the first read, not looked at first.
for name in ("whole", "whole-two", "not-whole", "other-id-end", "management-inside",
             "padded-begin", "padded-params-end", "structured"):
    seeds["judged-" + name] = bytes([seeds[name][0] | 2]) + seeds[name][1:]
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "conn")
os.makedirs(here, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
