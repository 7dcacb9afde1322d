/* config_check: see config_check.h. */
#include "config_check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "util.h"

/* The words some string options are limited to. */
static const struct {
	const char *flag;
	const char *choices; /* space-separated */
} config_choices[] = {
    {"auth", "none jwt header"},
    {"jwt-alg", "HS256 HS384 HS512 RS256 ES256"},
    {"list-policy", "self any"},
    {"log-format", "text json"},
};

/*
 * FastCGI parameters whose value the client chooses: the headers it sends
 * (HTTP_*), the parts of its request line, and what fronts make of them:
 * SERVER_NAME is the Host it sent (Caddy, lighttpd), SCRIPT_FILENAME its
 * path (Caddy), REMOTE_USER the user of the Basic credentials it sent,
 * verified or not (nginx's fastcgi_params).  The forward-auth identity
 * (--auth-param) must be one the front sets, never one of these.
 */
static const char *const config_client_params[] = {"CONTENT_LENGTH",
    "CONTENT_TYPE", "DOCUMENT_URI", "PATH_INFO", "PATH_TRANSLATED",
    "QUERY_STRING", "REMOTE_USER", "REQUEST_METHOD", "REQUEST_URI",
    "SCRIPT_FILENAME", "SCRIPT_NAME", "SERVER_NAME"};

static bool
config_auth_param_ok(const char *value, const char **why)
{
	if (value[0] == '\0') {
		*why = "empty";
		return false;
	}
	if (strncasecmp(value, "HTTP_", 5) == 0) {
		*why = "an HTTP_* parameter is a header the client sends: "
		       "it could choose its own identity";
		return false;
	}
	for (size_t i = 0;
	     i < sizeof(config_client_params) / sizeof(config_client_params[0]);
	     i++)
		if (strcasecmp(value, config_client_params[i]) == 0) {
			*why = "the client chooses that parameter's value";
			return false;
		}
	return true;
}

/*
 * Why an IPv6 address (len bytes at a, inside the brackets) is not as a
 * browser writes it in an Origin (the WHATWG URL standard's serializer:
 * lower-case hexadecimal pieces without leading zeros, the first longest
 * run of two or more zero pieces as "::", no dotted IPv4 tail), or NULL.
 * The reason names the form to list instead.
 */
static const char *
config_ipv6_why(const char *a, size_t len)
{
	/* Start-up only, one thread: the reason outlives the call. */
	static char why[96];
	char text[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN];
	unsigned char b[16];
	size_t at = 0, run = 0, best = 0, best_len = 0;

	if (len >= sizeof(text))
		return "an IPv6 host is [address]";
	memcpy(text, a, len);
	text[len] = '\0';
	if (inet_pton(AF_INET6, text, b) != 1)
		return "an IPv6 host is [address]";
	for (size_t i = 0; i < 8; i++) {
		run = b[2 * i] == 0 && b[2 * i + 1] == 0 ? run + 1 : 0;
		if (run > best_len) {
			best_len = run;
			best = i + 1 - run;
		}
	}
	for (size_t i = 0; i < 8; i++) {
		if (best_len >= 2 && i == best) {
			at += (size_t)snprintf(out + at, sizeof(out) - at, "%s",
			    i == 0 ? "::" : ":");
			i += best_len - 1;
			continue;
		}
		at += (size_t)snprintf(out + at, sizeof(out) - at, "%x%s",
		    (unsigned)(b[2 * i] << 8 | b[2 * i + 1]), i < 7 ? ":" : "");
	}
	if (strcmp(out, text) == 0)
		return NULL;
	snprintf(why, sizeof(why),
	    "a browser's Origin writes that IPv6 host [%s]", out);
	return why;
}

/*
 * Whether a host (len bytes at h) ends in a number, as the WHATWG URL
 * standard reads it: its last label (a trailing dot aside) is decimal, or
 * 0x and hexadecimal.  Such a host is an IPv4 address to a browser.
 */
static bool
config_host_numeric(const char *h, size_t len)
{
	size_t start;

	if (len > 0 && h[len - 1] == '.')
		len--;
	start = len;
	while (start > 0 && h[start - 1] != '.')
		start--;
	if (start == len)
		return false;
	if (len - start >= 2 && h[start] == '0' && h[start + 1] == 'x')
		return strspn(h + start + 2, "0123456789abcdef") >=
		    len - start - 2;
	return strspn(h + start, "0123456789") >= len - start;
}

/*
 * Whether an IPv4 host (len bytes at h) is as a browser writes it: four
 * decimal numbers of 0 to 255, without leading zeros.
 */
static bool
config_ipv4_canonical(const char *h, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t from = i;
		unsigned n = 0;

		while (i < len && h[i] >= '0' && h[i] <= '9' && i - from < 3)
			n = n * 10 + (unsigned)(h[i++] - '0');
		if (i == from || n > 255 || (h[from] == '0' && i - from > 1))
			return false;
		if (part < 3 && (i >= len || h[i++] != '.'))
			return false;
	}
	return i == len;
}

/*
 * Whether the host and port of an origin (s[at..len), after its "://",
 * the scheme's text before it) are as a browser writes them: a host (an
 * IPv6 address in brackets), then at most one ':' and a port of 1 to 65535
 * without leading zeros, and never the scheme's default (80 for http,
 * 443 for https), which an Origin leaves out.  Any other would never
 * match a browser's Origin.
 */
static bool
config_origin_port_ok(const char *s, size_t at, size_t len, const char **why)
{
	const char *host = s + at, *end = s + len, *colon;
	unsigned long port = 0;

	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (close == NULL || close == host + 1 ||
		    memchr(host + 1, '[', (size_t)(close - host - 1)) != NULL) {
			*why = "an IPv6 host is [address]";
			return false;
		}
		colon = close + 1;
		if (colon < end && *colon != ':') {
			*why =
			    "an IPv6 host is [address], then :port or nothing";
			return false;
		}
		*why = config_ipv6_why(host + 1, (size_t)(close - host - 1));
		if (*why != NULL)
			return false;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		if (colon == NULL)
			colon = end;
		if (colon == host ||
		    memchr(host, '[', (size_t)(colon - host)) != NULL ||
		    memchr(host, ']', (size_t)(colon - host)) != NULL) {
			*why = "an origin is scheme://host[:port] (an IPv6 "
			       "host in brackets)";
			return false;
		}
		if (config_host_numeric(host, (size_t)(colon - host)) &&
		    !config_ipv4_canonical(host, (size_t)(colon - host))) {
			*why = "a browser's Origin writes an IPv4 host as four "
			       "numbers of 0 to 255 without leading zeros";
			return false;
		}
	}
	if (colon == end)
		return true;
	for (const char *d = colon + 1; d < end; d++) {
		if (*d < '0' || *d > '9' || d - colon > 5) {
			port = 0;
			break;
		}
		port = port * 10 + (unsigned long)(*d - '0');
	}
	if (port == 0 || port > 65535 || colon[1] == '0') {
		*why = "a port is 1 to 65535, as browsers write it (no leading "
		       "zero, nothing after)";
		return false;
	}
	if ((at == 7 && strncmp(s, "http", 4) == 0 && port == 80) ||
	    (at == 8 && strncmp(s, "https", 5) == 0 && port == 443)) {
		*why = "a browser's Origin leaves the scheme's default port "
		       "out (:80 for http, :443 for https): list the origin "
		       "without it";
		return false;
	}
	return true;
}

/*
 * Whether one --cors-origins entry (len bytes at s) is an origin as a
 * browser sends it: a scheme in lower case (http, https, or an app's own:
 * capacitor, ionic, tauri, chrome-extension...), "://", then a host and
 * port in lower case, nothing after.  Anything else would never match (so
 * the list would silently refuse its own site), or, for "null" (sandboxed
 * frames, file: and data: pages: any site can send it), match anyone.
 */
static bool
config_origin_ok(const char *s, size_t len, const char **why)
{
	size_t n = 0;

	/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	while (n < len &&
	    ((s[n] >= 'a' && s[n] <= 'z') ||
	        (n > 0 &&
	            ((s[n] >= '0' && s[n] <= '9') || s[n] == '+' ||
	                s[n] == '-' || s[n] == '.'))))
		n++;
	n = n > 0 && len - n >= 3 && strncmp(s + n, "://", 3) == 0 ? n + 3 : 0;

	if (len == 4 && strncmp(s, "null", 4) == 0) {
		*why = "\"null\" is the origin any sandboxed frame or file "
		       "sends";
		return false;
	}
	if (len == 1 && s[0] == '*') {
		*why = "* stands alone, not in a list";
		return false;
	}
	if (n == 0 || n == len) {
		*why = "an origin is a scheme, :// and a host";
		return false;
	}
	for (size_t i = n; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		        s[i] == '-' || s[i] == '_' || s[i] == ':' ||
		        s[i] == '[' || s[i] == ']')) {
			*why = "an origin is scheme://host[:port] as browsers "
			       "send it: lower case, no path, no trailing /";
			return false;
		}
	return config_origin_port_ok(s, n, len, why);
}

/* Whether value is "*" or a comma-separated list of origins. */
static bool
config_origins_ok(const char *value, const char **why)
{
	const char *p = value, *s;
	size_t len;

	if (strcmp(value, "*") == 0)
		return true;
	while ((s = util_list_next(&p, &len)) != NULL)
		if (!config_origin_ok(s, len, why))
			return false;
	return true;
}

/*
 * Whether value is a cookie's name as RFC 6265 has it (a token: visible
 * ASCII but separators), or "" (no cookie is read).  A name with '=', ';'
 * or a space never matched a cookie as sent, and one with '=' matched a
 * prefix of another's value.
 */
static bool
config_cookie_name_ok(const char *value, const char **why)
{
	for (const char *p = value; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?={}", *p) != NULL) {
			*why = "a cookie name is letters, digits and "
			       "!#$%&'*+-.^_`|~ (or empty: no cookie)";
			return false;
		}
	return true;
}

/* Whether a string option's value is well-formed beyond its choices. */
bool
config_check_str(const char *flag, const char *value, const char **why)
{
	if (strcmp(flag, "jwt-cookie") == 0)
		return config_cookie_name_ok(value, why);
	if (strcmp(flag, "metrics-allow") == 0)
		return cidr_list_parse(value, NULL, why) == 0;
	if (strcmp(flag, "auth-param") == 0)
		return config_auth_param_ok(value, why);
	if (strcmp(flag, "cors-origins") == 0)
		return config_origins_ok(value, why);
	return true;
}

bool
config_check_choice(const char *flag, const char *value)
{
	for (size_t i = 0;
	     i < sizeof(config_choices) / sizeof(config_choices[0]); i++) {
		const char *p = config_choices[i].choices;
		size_t n = strlen(value);

		if (strcmp(config_choices[i].flag, flag) != 0)
			continue;
		while (*p != '\0') {
			size_t len = strcspn(p, " ");

			if (len == n && n > 0 && strncmp(p, value, n) == 0)
				return true;
			p += len + (p[len] == ' ');
		}
		return false;
	}
	return true;
}
