-- beep-signal behind lighttpd: the call page's files on their own paths.
--
-- conf/lighttpd-web.conf runs this for the paths it serves (/,
-- /index.html, /app.js, /style.css, /beep-signal.js) once lighttpd has
-- mapped them to a file (magnet.attract-physical-path-to), from the
-- directory conf/lighttpd.conf's var.beep_signal_scripts names: make
-- install puts it in $(PREFIX)/share/beep-signal.
--
-- lighttpd matches its conditions on the path decoded (%2F too) with its
-- "." and ".." steps removed, so "/x/..%2Fapp.js", "//app.js" or
-- "/%61pp.js" reach this file's conditions too.  The file is served only
-- when the path as sent is the one the condition names; any other gets
-- lighttpd's 404, as a path of the site without a file does.  (A path
-- that starts with one of the API's never comes here:
-- conf/lighttpd-raw-path.lua sends it to the backend.)

local r = lighty.r
local sent = (r.req_attr["request.orig-uri"] or ""):match("^[^?]*")
if sent ~= r.req_attr["uri.path"] then
	return 404
end
-- The files take GET and HEAD only.  lighttpd's static handler answers a
-- POST with the file, 200, as if it had been taken, and PUT, DELETE or
-- PATCH with its own 501; nginx (conf/nginx-web.conf) answers them 405.
-- A 405 says what is allowed (RFC 9110); lighttpd drops the headers of
-- a status returned without a body, so the body is given here.
local method = r.req_attr["request.method"]
if method ~= "GET" and method ~= "HEAD" then
	r.resp_header["Allow"] = "GET, HEAD"
	r.resp_header["Content-Type"] = "text/plain; charset=utf-8"
	r.resp_body.set({ "405 Method Not Allowed\n" })
	return 405
end
return 0
