#!/usr/bin/env python3
"""Write the seeds of fuzz_fcgi (tests/fuzz/corpus/fcgi/): each a mode
byte (0 open, 1 jwt, 2 header), then a few requests, as FCGI_PARAMS
name-value pairs and a body, length-prefixed as tests/fuzz/fuzz_fcgi.c
reads them.  In jwt mode "@T" and "@D" stand for valid tokens."""
import os
import struct


def nv_len(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def params(**kv):
    out = b""
    for k, v in kv.items():
        k, v = k.encode(), v.encode() if isinstance(v, str) else v
        out += nv_len(len(k)) + nv_len(len(v)) + k + v
    return out


def request(body=b"", **kv):
    p = params(**kv)
    return struct.pack(">H", len(p)) + p + struct.pack(">H", len(body)) + body


def close():
    return struct.pack(">HH", 0, 0)


SUB = dict(REQUEST_METHOD="GET", REMOTE_ADDR="192.0.2.1")
POST = dict(REQUEST_METHOD="POST", REMOTE_ADDR="192.0.2.2")
OPEN, JWT, HEADER = b"\0", b"\1", b"\2"
FORM = "application/x-www-form-urlencoded"
seeds = {
    "subscribe-post-json": OPEN + request(REQUEST_URI="/subscribe/alice/device/phone?envelope=1", **SUB)
    + request(b'{"data":{"sdp":"v=0\\r\\n"},"event":"offer"}', REQUEST_URI="/user/alice/device/phone",
              CONTENT_TYPE="application/json", CONTENT_LENGTH="41", **POST),
    "subscribe-post-form": OPEN + request(REQUEST_URI="/subscribe/b%C3%B6b/device/d1", HTTP_LAST_EVENT_ID="1-1", **SUB)
    + request(b"data=line1%0D%0Aline2&event=ice", REQUEST_URI="/user/b%C3%B6b/device/d1",
              CONTENT_TYPE="application/x-www-form-urlencoded", **POST),
    "grace-held": OPEN + request(REQUEST_URI="/subscribe/u/device/d", **SUB) + close()
    + request(b"data=held", REQUEST_URI="/user/u/device/d", CONTENT_TYPE="application/x-www-form-urlencoded", **POST)
    + request(REQUEST_URI="/subscribe/u/device/d", **SUB),
    "no-uri-options-health": OPEN + request(REQUEST_METHOD="OPTIONS", SCRIPT_NAME="/user", PATH_INFO="/x/devices",
                                     HTTP_ORIGIN="https://a.example")
    + request(REQUEST_METHOD="GET", REQUEST_URI="/healthz")
    + request(REQUEST_METHOD="GET", REQUEST_URI="/user/x/devices", QUERY_STRING="a=b"),
    "resume": OPEN + request(REQUEST_URI="/subscribe/r/device/d", **SUB)
    + request(b"data=1", REQUEST_URI="/user/r/device/d", CONTENT_TYPE="application/x-www-form-urlencoded", **POST)
    + request(b"data=2", REQUEST_URI="/user/r/device/d", CONTENT_TYPE="application/x-www-form-urlencoded", **POST)
    + close() + request(REQUEST_URI="/subscribe/r/device/d", HTTP_LAST_EVENT_ID="@-1", **SUB)
    + request(REQUEST_URI="/subscribe/r/device/d?lastEventId=9-9", **SUB),
    "too-large": OPEN + request(b"x" * 64, REQUEST_URI="/user/a/device/b", CONTENT_TYPE="application/json",
                         CONTENT_LENGTH="99999", **POST)
    + request(REQUEST_METHOD="DELETE", REQUEST_URI="/user/a/device/b"),
    "jwt-bearer-cookie-csrf": JWT + request(REQUEST_URI="/subscribe/u/device/d?access_token=@T", **SUB)
    + request(b"data=hi", REQUEST_URI="/user/u/device/d", CONTENT_TYPE=FORM, HTTP_AUTHORIZATION="Bearer @D", **POST)
    + request(b"data=csrf", REQUEST_URI="/user/u/device/d", CONTENT_TYPE=FORM, HTTP_COOKIE="beep_token=@T",
              HTTP_ORIGIN="https://evil.example", **POST)
    + request(b"data=own", REQUEST_URI="/user/u/device/d", CONTENT_TYPE=FORM, HTTP_COOKIE="a=b; beep_token=@T",
              HTTP_ORIGIN="https://beep.example", HTTP_HOST="beep.example", HTTPS="on", **POST)
    + request(REQUEST_URI="/user/v/devices", HTTP_AUTHORIZATION="Bearer @T", **SUB),
    "header-claim": HEADER + request(REQUEST_URI="/subscribe/u/device/d", BEEP_USER_CLAIM='{"userid":"u"}', **SUB)
    + request(b'{"data":1}', REQUEST_URI="/user/u/device/d", CONTENT_TYPE="application/json",
              BEEP_USER_CLAIM='{"userid":"x","clientid":"y"}', HTTP_COOKIE="s=1", HTTP_SEC_FETCH_SITE="same-origin",
              **POST),
}
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fcgi")
os.makedirs(here, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
