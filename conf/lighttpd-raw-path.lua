-- beep-signal behind lighttpd: the API's paths as the client sent them.
--
-- conf/lighttpd.conf runs this for every request before lighttpd picks
-- its handler (magnet.attract-raw-url-to: mod_magnet, Debian's
-- lighttpd-modules-lua), from the directory var.beep_signal_scripts
-- names there: make install puts it in $(PREFIX)/share/beep-signal.
--
-- lighttpd (1.4.69) matches $HTTP["url"], and maps to a file, a path it
-- has percent-decoded (%2F too) and whose "." and ".." steps it has
-- removed, whatever server.http-parseopts says: those options change the
-- target it passes on, never that path.  So an id such as
-- "..%2F..%2F..%2Fx" took a request out of the API's condition to where
-- its steps led: lighttpd's own HTML 404, or a file of the document root,
-- where the backend refuses it in JSON.  The backend routes on
-- REQUEST_URI, the target as the client sent it, whatever lighttpd does
-- here.  So a request whose target starts with a path of the API and
-- whose path, so resolved, no longer does is started again on a target
-- that keeps its steps: its "%" and "." escaped, so that decoding gives
-- back the path as sent (its dots as "%2E"), which no step removes.  It
-- then matches the API's condition and goes to the backend, whatever the
-- order of the modules (mod_fastcgi picks its requests before this
-- script runs when it is loaded first, as Debian's 10-fastcgi.conf
-- does).  Nothing else is changed: every other request keeps lighttpd's
-- path.

local r = lighty.r
-- The target as sent, without its query.  An absolute-form target
-- ("http://host/...", rare) keeps lighttpd's path.
local sent = (r.req_attr["request.orig-uri"] or ""):match("^/[^?]*")
if sent == nil then
	return 0
end
-- The API's first path segments (conf/lighttpd.conf's condition, which
-- leaves /metrics out on purpose).
local function api(p)
	for _, route in ipairs({ "/subscribe", "/user", "/healthz", "/readyz",
	    "/ice-servers" }) do
		if p == route or p:sub(1, #route + 1) == route .. "/" then
			return true
		end
	end
	return false
end
-- Once started again, the path starts so: not started a second time.
if not api(sent) or api(r.req_attr["uri.path"] or "") then
	return 0
end
local target = sent:gsub("%%", "%%25"):gsub("%.", "%%252E")
local query = r.req_attr["request.orig-uri"]:match("%?.*$")
r.req_attr["request.uri"] = target .. (query or "")
return lighty.RESTART_REQUEST
