-- beep-signal behind lighttpd: the backend out of reach, for EventSource;
-- lighttpd's own errors on the API in the backend's JSON.
--
-- conf/lighttpd.conf runs this at the start of every response of the API
-- (magnet.attract-response-start-to: mod_magnet, lighttpd
-- 1.4.65 or later; Debian's lighttpd-modules-lua), from the directory
-- var.beep_signal_scripts names there: make install puts it in
-- $(PREFIX)/share/beep-signal.
--
-- When lighttpd cannot reach the backend (a restart without socket
-- activation, a crash) it answers a subscribe itself: 503 (the connect
-- failed or took longer than "connect-timeout", or the backend is left
-- out for a few seconds after such a failure), 500 (the backend hung up
-- before it answered); 502 and 504 are taken alike.  EventSource never
-- retries any of them.  A bare EventSource (GET, Accept: text/event-stream
-- exactly) gets instead what conf/nginx.conf's @beep_stream_down gives,
-- byte for byte (lighttpd adds Accept-Ranges and Content-Length): 200, an event
-- "refused" with lighttpd's status, its own Last-Event-ID back as id (up
-- to 128 bytes, as the backend gives it back; longer or absent, a comment
-- line), and retry: 5 to 6 s (5 s plus ten times the last two digits of
-- the client's port, in ms, so that clients cut together do not all come
-- back together), after which it comes back by itself.  Readable from any
-- origin, with credentials or none: it holds nothing but the caller's own
-- header.
--
-- It also runs at the start of every other response of the API, for
-- lighttpd's own 413 (a body past server.max-request-size, 1 MiB in
-- conf/lighttpd.conf): the backend's answer to one past BEEP_MAX_BODY,
-- {"error":"body too large"} with CORS headers, as conf/nginx.conf's
-- @beep_too_large gives, so that a client sees one 413 whatever the size
-- (lighttpd's HTML page had no CORS headers: fetch() on another origin saw
-- a network error, which beep-signal.js sends again; test 112).
--
-- Any other request meeting lighttpd's own 500, 502, 503 or 504 gets that
-- status with {"error":"backend unavailable"} and the same CORS headers,
-- as conf/nginx.conf and the Caddyfile give (test 112).  Every answer of
-- the backend's own (never an HTML page) passes as it is.

local r = lighty.r
local status = r.req_item.http_status
if status ~= 413 and status ~= 500 and status ~= 502 and status ~= 503
    and status ~= 504 then
	return 0
end
-- lighttpd's own error page (the backend answers in JSON or as a stream).
local ctype = r.resp_header["Content-Type"]
if ctype ~= nil and not ctype:find("^text/html") then
	return 0
end
local origin = r.req_header["Origin"]

-- The answer's type, not to be cached, readable from the caller's origin
-- (it holds nothing but the caller's own header).
local function answer_head(ctype)
	r.resp_header["Content-Type"] = ctype
	r.resp_header["Cache-Control"] = "no-store"
	if origin ~= nil and origin ~= "" then
		r.resp_header["Access-Control-Allow-Origin"] = origin
	end
	r.resp_header["Access-Control-Allow-Credentials"] = "true"
	r.resp_header["Vary"] = "Origin"
end

-- status with {"error":msg} and CORS headers, the backend's kind of answer.
local function json(msg)
	answer_head("application/json")
	r.resp_body.set({ "{\"error\":\"" .. msg .. "\"}" })
	return status
end

if status == 413 then
	return json("body too large")
end
if r.req_attr["request.method"] ~= "GET"
    or not r.req_attr["request.uri"]:find("^/subscribe/")
    or r.req_header["Accept"] ~= "text/event-stream" then
	return json("backend unavailable")
end

-- A header value holds no CR, LF or NUL (lighttpd refuses the request);
-- checked anyway: the id must add no field.
local id = r.req_header["Last-Event-ID"]
local id_field = ":"
if id ~= nil and #id >= 1 and #id <= 128 and not id:find("[\r\n%z]") then
	id_field = "id: " .. id
end
local tail = (r.req_attr["request.remote-port"] or ""):match("(%d%d)$")
local retry_ms = tail and ("5" .. tail .. "0") or "5000"

answer_head("text/event-stream")
r.resp_header["Retry-After"] = "5"
r.resp_body.set({ "retry: " .. retry_ms .. "\n" .. id_field ..
    "\nevent: refused\ndata: {\"error\":\"backend unavailable\"," ..
    "\"status\":" .. status .. "}\n\n" })
return 200
