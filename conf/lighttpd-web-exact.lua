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
return 0
