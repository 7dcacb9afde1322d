/* config: see config.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_check.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#ifndef BEEP_VERSION
#define BEEP_VERSION "dev"
#endif

enum config_type {
	CONFIG_UINT,
	CONFIG_SIZE,
	CONFIG_MODE,
	CONFIG_STR,
	CONFIG_LEVEL
};

struct config_option {
	const char *flag; /* without the leading "--" */
	const char *env;
	enum config_type type;
	size_t offset;
	const char *def;
	uintmax_t min, max;
	const char *help;
};

/* The longest line of a configuration file, its line break included. */
#define CONFIG_LINE_MAX (1 << 20)
/* The most of an operator's value, path or key an error message echoes. */
#define CONFIG_SHOWN 1024

const char config_version[] = BEEP_VERSION;

#define OFF(field) offsetof(struct config, field)

static const struct config_option config_options[] = {
    {"listen", "BEEP_LISTEN", CONFIG_STR, OFF(listen), "", 0, 0,
        "FastCGI socket: unix:PATH or HOST:PORT; empty: the socket "
        "inherited on fd 0 (spawn-fcgi, systemd StandardInput=socket) "
        "or by LISTEN_FDS"},
    {"socket-mode", "BEEP_SOCKET_MODE", CONFIG_MODE, OFF(socket_mode), "0660",
        0, 0777, "permissions of the unix socket it creates"},
    {"keepalive", "BEEP_KEEPALIVE", CONFIG_UINT, OFF(keepalive), "4", 1, 300,
        "seconds between SSE keepalive comments on a stream; behind Caddy a "
        "departed client is noticed within 2 of them; at most 300: "
        "lighttpd cuts a stream it relayed nothing on for 360 s "
        "(server.max-write-idle)"},
    {"reconnect-ms", "BEEP_RECONNECT_MS", CONFIG_UINT, OFF(reconnect_ms),
        "2000", 0, 600000,
        "milliseconds EventSource waits to reconnect after its stream "
        "drops: each stream starts with a retry: of this plus up to half "
        "as much again at random, which also undoes a longer retry: of a "
        "refusal or a stop; 0: none (the browser's own, until a "
        "refusal, stop or replaced stream sends its retry:, which the "
        "page's EventSource then keeps)"},
    {"write-timeout", "BEEP_WRITE_TIMEOUT", CONFIG_UINT, OFF(write_timeout),
        "30", 1, 3600,
        "seconds a write to a stream may wait (a client that stops "
        "reading) before the stream is closed"},
    {"max-streams", "BEEP_MAX_STREAMS", CONFIG_SIZE, OFF(max_streams), "10000",
        1, 1000000,
        "open streams in all; past it a subscribe gets 503 (one of a device "
        "with a live stream takes that stream's place)"},
    {"min-idle", "BEEP_MIN_IDLE", CONFIG_UINT, OFF(min_idle), "8", 1, 1024,
        "idle worker threads kept ready for short requests; also how many "
        "reconnects of devices with a live stream are admitted past "
        "max-streams"},
    {"max-body", "BEEP_MAX_BODY", CONFIG_SIZE, OFF(max_body), "65536", 16,
        16777216, "largest POST body in bytes; larger gets 413"},
    {"max-id", "BEEP_MAX_ID", CONFIG_SIZE, OFF(max_id), "256", 1, 4096,
        "longest user or device id in bytes; longer gets 400"},
    {"max-depth", "BEEP_MAX_DEPTH", CONFIG_UINT, OFF(max_depth), "32", 1, 128,
        "deepest JSON nesting in a POST body; deeper gets 400"},
    {"queue", "BEEP_STREAM_QUEUE", CONFIG_SIZE, OFF(queue_messages), "128", 1,
        1000000, "undelivered messages a stream may hold before it is closed"},
    {"queue-bytes", "BEEP_STREAM_QUEUE_BYTES", CONFIG_SIZE, OFF(queue_bytes),
        "1048576", 1024, 1073741824,
        "undelivered bytes a stream may hold before it is closed"},
    {"replay-seconds", "BEEP_REPLAY_SECONDS", CONFIG_UINT, OFF(replay_seconds),
        "30", 0, 3600, "seconds a device keeps delivered messages for replay"},
    {"replay-max", "BEEP_REPLAY_MAX", CONFIG_SIZE, OFF(replay_max), "256", 1,
        100000, "most delivered messages a device keeps for replay"},
    {"replay-bytes", "BEEP_REPLAY_BYTES", CONFIG_SIZE, OFF(replay_bytes),
        "4194304", 1024, 1073741824,
        "most bytes of messages a device keeps for replay or holds (at "
        "least max-body)"},
    {"sender-share", "BEEP_SENDER_SHARE", CONFIG_UINT, OFF(sender_share), "50",
        0, 100,
        "percent of a device's replay-max and replay-bytes one sender (as "
        "rate counts it) may hold not yet taken and still push out another "
        "sender's held message for room, and that the other must hold for "
        "it to go; else such a POST gets 429 (the poster past it) or 503 "
        "(the other within it); 100: the oldest go whoever sent; in a "
        "cluster of replay-max only"},
    {"grace", "BEEP_GRACE_SECONDS", CONFIG_UINT, OFF(grace_seconds), "30", 0,
        3600, "seconds a device stays addressable (202) after its last stream"},
    {"auth", "BEEP_AUTH", CONFIG_STR, OFF(auth), "none", 0, 0,
        "none (open), jwt (JSON Web Tokens) or header (a forward-auth "
        "proxy's identity header)"},
    {"jwt-alg", "BEEP_JWT_ALG", CONFIG_STR, OFF(jwt_alg), "HS256", 0, 0,
        "the only algorithm accepted: HS256, HS384, HS512, RS256 or ES256"},
    {"jwt-secret", "BEEP_JWT_SECRET", CONFIG_STR, OFF(jwt_secret), "", 0, 0,
        "HMAC secret for HS256/384/512: at least 32/48/64 bytes"},
    {"jwt-secret-previous", "BEEP_JWT_SECRET_PREVIOUS", CONFIG_STR,
        OFF(jwt_secret_prev), "", 0, 0,
        "the HMAC secret before the current one, also taken while tokens "
        "it signed live (a rotation)"},
    {"jwt-key", "BEEP_JWT_KEY", CONFIG_STR, OFF(jwt_key), "", 0, 0,
        "PEM public key file for RS256/ES256"},
    {"jwt-key-previous", "BEEP_JWT_KEY_PREVIOUS", CONFIG_STR, OFF(jwt_key_prev),
        "", 0, 0,
        "the public key file before the current one, also taken while "
        "tokens it verifies live (a rotation)"},
    {"jwt-issuer", "BEEP_JWT_ISSUER", CONFIG_STR, OFF(jwt_issuer), "", 0, 0,
        "when set, a token's iss must equal it"},
    {"jwt-audience", "BEEP_JWT_AUDIENCE", CONFIG_STR, OFF(jwt_audience), "", 0,
        0, "when set, a token's aud must contain it"},
    {"jwt-leeway", "BEEP_JWT_LEEWAY", CONFIG_UINT, OFF(jwt_leeway), "30", 0,
        600, "seconds of clock skew allowed for exp and nbf"},
    {"jwt-cookie", "BEEP_JWT_COOKIE", CONFIG_STR, OFF(jwt_cookie), "beep_token",
        0, 0, "cookie that may carry the token (empty: none is read)"},
    {"jwt-query", "BEEP_JWT_QUERY", CONFIG_UINT, OFF(jwt_query), "1", 0, 1,
        "1: a subscribe may carry the token as ?access_token= (URLs get "
        "logged); 0: not"},
    {"auth-param", "BEEP_AUTH_PARAM", CONFIG_STR, OFF(auth_param),
        "BEEP_USER_CLAIM", 0, 0,
        "header mode: the FastCGI parameter in which the front passes the "
        "forward-auth identity {\"userid\":...,\"clientid\":...}; never "
        "one the client chooses (HTTP_*, QUERY_STRING, ...)"},
    {"list-policy", "BEEP_LIST_POLICY", CONFIG_STR, OFF(list_policy), "self", 0,
        0, "with auth: list the devices of self only, or of any user"},
    {"rate", "BEEP_RATE", CONFIG_UINT, OFF(rate), "100", 0, 100000,
        "POSTs per second per sender (token user, else client address); "
        "0: no limit; past it 429"},
    {"burst", "BEEP_BURST", CONFIG_UINT, OFF(burst), "200", 1, 1000000,
        "POSTs a sender may make at once before the rate applies"},
    {"max-streams-per-device", "BEEP_MAX_STREAMS_PER_DEVICE", CONFIG_SIZE,
        OFF(max_streams_per_device), "8", 1, 1000,
        "live streams kept per device; a new one replaces the oldest; "
        "with twice it open (replaced ones still ending) past it 429"},
    {"max-devices-per-user", "BEEP_MAX_DEVICES_PER_USER", CONFIG_SIZE,
        OFF(max_devices_per_user), "32", 1, 100000,
        "devices per user (live or in grace); past it 429"},
    {"max-devices", "BEEP_MAX_DEVICES", CONFIG_SIZE, OFF(max_devices), "100000",
        1, 100000000,
        "devices in all (live or in grace); past it a new device takes the "
        "place of the one whose grace ends first (forgotten early, what it "
        "held dropped), or gets 503 when none can go"},
    {"cors-origins", "BEEP_CORS_ORIGINS", CONFIG_STR, OFF(cors_origins), "*", 0,
        0,
        "Access-Control-Allow-Origin: * or a comma-separated list of "
        "origins as browsers send them (scheme://host[:port], lower "
        "case, no default port; never null)"},
    {"log-level", "BEEP_LOG_LEVEL", CONFIG_LEVEL, OFF(log_level), "info", 0, 0,
        "debug, info, warn or error"},
    {"max-token", "BEEP_MAX_TOKEN", CONFIG_SIZE, OFF(max_token), "8192", 256,
        32768,
        "longest token (header, cookie or query) or forward-auth claim in "
        "bytes; longer gets 401"},
    {"max-streams-per-address", "BEEP_MAX_STREAMS_PER_ADDRESS", CONFIG_SIZE,
        OFF(max_streams_per_address), "256", 0, 1000000,
        "open mode: open streams per client address (REMOTE_ADDR); 0: no "
        "limit; past it a subscribe gets 429, unless it replaces the "
        "device's stream from that address (a reconnect)"},
    {"ipv6-prefix", "BEEP_IPV6_PREFIX", CONFIG_UINT, OFF(ipv6_prefix), "64", 1,
        128,
        "bits of an IPv6 client's address the per-address limits (streams "
        "per address, the open-mode rate) count it by: its network, since "
        "one host may hold a whole /64; 128: each address"},
    {"log-format", "BEEP_LOG_FORMAT", CONFIG_STR, OFF(log_format), "text", 0, 0,
        "text (one line per event) or json (one JSON object per line)"},
    {"metrics-allow", "BEEP_METRICS_ALLOW", CONFIG_STR, OFF(metrics_allow),
        "127.0.0.0/8,::1", 0, 0,
        "client addresses (REMOTE_ADDR) GET /metrics answers: a "
        "comma-separated list of ADDRESS[/BITS]; others get 403"},
    {"max-message-memory", "BEEP_MAX_MESSAGE_MEMORY", CONFIG_SIZE,
        OFF(max_message_memory), "268435456", 65536, 68719476736,
        "bytes of messages held in all (queued, held, retained); past it "
        "the oldest delivered go, then (for a device that is here) those "
        "held for devices away, then a POST gets 503 (a message longer "
        "than it once encoded: 413)"},
    {"catch-up-seconds", "BEEP_CATCH_UP_SECONDS", CONFIG_UINT,
        OFF(catch_up_seconds), "30", 1, 3600,
        "seconds a stream may stay further behind than its share while "
        "message memory is full, however it reads, before it is closed "
        "(its device holds the rest, first to go)"},
    {"stuck-ms", "BEEP_STUCK_MS", CONFIG_UINT, OFF(stuck_ms), "1000", 100,
        3600000,
        "milliseconds a stream further behind than its share may go "
        "without catching up while message memory is full before it is "
        "closed as stuck (its device holds the rest, first to go); longer "
        "spares a slow reader behind a front's buffers, and lets a stream "
        "that never reads hold memory that long"},
    {"read-timeout", "BEEP_READ_TIMEOUT", CONFIG_UINT, OFF(read_timeout), "10",
        1, 3600,
        "seconds to read a whole request (parameters and body) from when it "
        "starts arriving; past it 408 or the connection is closed"},
    {"idle-timeout", "BEEP_IDLE_TIMEOUT", CONFIG_UINT, OFF(idle_timeout), "75",
        0, 86400,
        "seconds a kept-alive FastCGI connection may wait for its next "
        "request (closed within the second after); keep it above the "
        "front's (nginx keepalive_timeout); 0: no limit"},
    {"max-drain", "BEEP_MAX_DRAIN", CONFIG_SIZE, OFF(max_drain), "1048576", 16,
        1073741824,
        "bytes past max-body of a body read and dropped so that the answer "
        "(413, or a refusal) reaches the client; past them the connection "
        "is closed"},
    {"redis-url", "BEEP_REDIS_URL", CONFIG_STR, OFF(redis_url), "", 0, 0,
        "cluster: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
        "unix://[[USER]:PASSWORD@]/PATH (USER and PASSWORD "
        "percent-encoded) joins the nodes that name it; empty: a single "
        "node"},
    {"cluster-ttl", "BEEP_CLUSTER_TTL", CONFIG_UINT, OFF(cluster_ttl), "15", 1,
        3600,
        "cluster: seconds a node's devices stay listed after its last "
        "heartbeat (sent every third of it)"},
    {"redis-timeout", "BEEP_REDIS_TIMEOUT", CONFIG_UINT, OFF(redis_timeout),
        "2000", 10, 60000,
        "cluster: milliseconds a request waits for Redis; then 503"},
    {"turn-urls", "BEEP_TURN_URLS", CONFIG_STR, OFF(turn_urls), "", 0, 0,
        "ICE servers for GET /ice-servers: comma-separated stun:, stuns:, "
        "turn: or turns: URLs"},
    {"turn-secret", "BEEP_TURN_SECRET", CONFIG_STR, OFF(turn_secret), "", 0, 0,
        "TURN REST secret (coturn's static-auth-secret); needed with "
        "turn: URLs: at least 20 bytes"},
    {"turn-ttl", "BEEP_TURN_TTL", CONFIG_UINT, OFF(turn_ttl), "86400", 60,
        604800, "seconds a TURN credential from /ice-servers is valid"},
};

#define CONFIG_NOPTIONS (sizeof(config_options) / sizeof(config_options[0]))

/*
 * Set option o from value.  source says where the value came from, for
 * the error message: "default", an environment variable, "command line",
 * or "FILE:LINE" (then the option is named as a file key, without "--").
 */
static int
config_set(struct config *c, const struct config_option *o, const char *value,
    const char *source, bool file)
{
	const char *dashes = file ? "" : "--", *why = NULL;
	char *p = (char *)c + o->offset, *end, shown[CONFIG_SHOWN];
	uintmax_t v;
	int level;

	switch (o->type) {
	case CONFIG_STR:
		if (!config_check_choice(o->flag, value) ||
		    !config_check_str(o->flag, value, &why))
			break;
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		return 0;
	case CONFIG_LEVEL:
		level = log_level_parse(value);
		if (level < 0)
			break;
		*(int *)p = level;
		return 0;
	case CONFIG_UINT:
	case CONFIG_SIZE:
	case CONFIG_MODE:
		if (value[0] < '0' || value[0] > '9')
			break;
		errno = 0;
		v = strtoumax(value, &end, o->type == CONFIG_MODE ? 8 : 10);
		if (errno != 0 || *end != '\0' || v < o->min || v > o->max)
			break;
		if (o->type == CONFIG_SIZE)
			*(size_t *)p = (size_t)v;
		else
			*(unsigned *)p = (unsigned)v;
		return 0;
	}
	log_shown(value, shown, sizeof(shown));
	if (o->type == CONFIG_MODE)
		fprintf(stderr,
		    "beep-signal: %s: invalid value '%s' for %s%s "
		    "(an octal mode up to %jo)\n",
		    source, shown, dashes, o->flag, o->max);
	else if (o->type == CONFIG_LEVEL || o->type == CONFIG_STR)
		fprintf(stderr,
		    "beep-signal: %s: invalid value '%s' for %s%s%s%s\n",
		    source, shown, dashes, o->flag, why ? ": " : "",
		    why ? why : "");
	else
		fprintf(stderr,
		    "beep-signal: %s: invalid value '%s' for %s%s "
		    "(a whole number from %ju to %ju)\n",
		    source, shown, dashes, o->flag, o->min, o->max);
	return -1;
}

void
config_usage(FILE *f)
{
	size_t flag_w = 0, env_w = 0;

	fprintf(f,
	    "Usage: beep-signal [OPTION]...\n"
	    "WebRTC signaling over Server-Sent Events, as a FastCGI "
	    "responder.\n\n"
	    "Every option may also be set by its environment variable or as\n"
	    "a key (its name without --) in the configuration file; a flag\n"
	    "wins over the environment, which wins over the file.\n\n");
	/* Columns as wide as the longest flag and variable. */
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		size_t fl = strlen(config_options[i].flag);
		size_t el = strlen(config_options[i].env);

		flag_w = fl > flag_w ? fl : flag_w;
		env_w = el > env_w ? el : env_w;
	}
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		const struct config_option *o = &config_options[i];

		fprintf(f, "  --%-*s %-*s default: %s\n", (int)flag_w, o->flag,
		    (int)env_w, o->env, o->def[0] ? o->def : "(none)");
		fprintf(f, "      %s\n", o->help);
	}
	fprintf(f,
	    "  --config FILE            read options from FILE (or "
	    "BEEP_CONFIG=FILE)\n"
	    "  --check-config           check the options and the file, "
	    "then exit\n"
	    "  --print-config           print the options in effect, as a "
	    "file, then exit\n"
	    "  --help                   show this help\n"
	    "  --version                show the version\n");
}

static int
config_unknown(const char *arg)
{
	char shown[CONFIG_SHOWN];

	fprintf(stderr, "beep-signal: unknown argument '%s' (see --help)\n",
	    log_shown(arg, shown, sizeof(shown)));
	return -1;
}

static const struct config_option *
config_find(const char *name, size_t len)
{
	for (size_t j = 0; j < CONFIG_NOPTIONS; j++)
		if (strlen(config_options[j].flag) == len &&
		    strncmp(config_options[j].flag, name, len) == 0)
			return &config_options[j];
	return NULL;
}

static char *
config_trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Read the configuration file: "key = value" lines, blank lines and
 * comment lines starting with '#'.  A value may be wrapped in double
 * quotes (kept as is inside).  Every error names FILE:LINE.
 */
/*
 * Whether an unquoted value is taken as it is.  Not one that opens a
 * quote it does not close, nor one with a '#' first or after a space:
 * comments take a line of their own, and "s3cret # rotate" would
 * otherwise be the whole secret, and "key = # later" the text
 * "# later", silently.
 */
static bool
config_value_plain(const char *value, const char *where)
{
	if (value[0] == '"') {
		fprintf(stderr,
		    strchr(value + 1, '"') != NULL
		        ? "beep-signal: %s: text after the closing double "
		          "quote: comments take a line of their own\n"
		        : "beep-signal: %s: a double quote not closed\n",
		    where);
		return false;
	}
	/*
	 * A CR inside a line is a file with CR line ends (an old Mac
	 * editor's) read as one line: the value would take in the lines
	 * after it.  Quoted, it is kept (--print-config quotes it).
	 */
	if (strchr(value, '\r') != NULL) {
		fprintf(stderr,
		    "beep-signal: %s: a carriage return inside a line (CR "
		    "line ends? use LF or CRLF; quote the value to keep it)\n",
		    where);
		return false;
	}
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '#' &&
		    (p == value || p[-1] == ' ' || p[-1] == '\t')) {
			fprintf(stderr,
			    "beep-signal: %s: '#' after a space: comments "
			    "take a line of their own (quote the value to "
			    "keep it)\n",
			    where);
			return false;
		}
	}
	return true;
}

/*
 * One line of f, its line break included, into line (CONFIG_LINE_MAX + 1
 * bytes); its length, or -1 at the end of the file or on an error
 * (ferror()), or -2 when it is longer than CONFIG_LINE_MAX.  Bounded: a
 * file named by mistake (/dev/zero, a dump without a line break) is
 * refused, not read whole into memory; getline()'s failure for want of
 * memory looked like the file's end, and the file was OK (test 93).
 */
static ssize_t
config_line(FILE *f, char *line)
{
	size_t n = 0;
	int ch;

	while ((ch = getc(f)) != EOF) {
		if (n == CONFIG_LINE_MAX)
			return -2;
		line[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	line[n] = '\0';
	return n > 0 ? (ssize_t)n : -1;
}

static int
config_file(struct config *c, const char *path)
{
	unsigned seen[CONFIG_NOPTIONS] = {0}, lineno = 0;
	FILE *f = fopen(path, "r");
	char *line, where[CONFIG_SHOWN + 16], shown[CONFIG_SHOWN];
	ssize_t n;
	int rc = 0;

	log_shown(path, shown, sizeof(shown));
	if (f == NULL) {
		fprintf(
		    stderr, "beep-signal: %s: %s\n", shown, strerror(errno));
		return -1;
	}
	line = xmalloc(CONFIG_LINE_MAX + 1);
	while (rc == 0 && (n = config_line(f, line)) != -1) {
		const struct config_option *o;
		char *key, *value, *eq;
		size_t klen, vlen;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", shown, lineno);
		if (n == -2) {
			fprintf(stderr,
			    "beep-signal: %s: a line longer than %d bytes\n",
			    where, CONFIG_LINE_MAX);
			rc = -1;
			break;
		}
		/* A NUL would end the line early, and the value with it. */
		if (memchr(line, '\0', (size_t)n) != NULL) {
			fprintf(stderr, "beep-signal: %s: a NUL byte\n", where);
			rc = -1;
			break;
		}
		key = config_trim(line);
		/* A UTF-8 byte order mark (a Windows editor's) is no key. */
		if (lineno == 1 && strncmp(key, "\xEF\xBB\xBF", 3) == 0)
			key = config_trim(key + 3);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			fprintf(stderr,
			    "beep-signal: %s: expected key = value\n", where);
			rc = -1;
			break;
		}
		klen = (size_t)(eq - key);
		while (
		    klen > 0 && (key[klen - 1] == ' ' || key[klen - 1] == '\t'))
			klen--;
		value = config_trim(eq + 1);
		vlen = strlen(value);
		if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
			value[vlen - 1] = '\0';
			value++;
		} else if (!config_value_plain(value, where)) {
			rc = -1;
			break;
		}
		o = config_find(key, klen);
		if (o == NULL) {
			char kshown[CONFIG_SHOWN];

			key[klen] = '\0';
			fprintf(stderr, "beep-signal: %s: unknown key '%s'\n",
			    where, log_shown(key, kshown, sizeof(kshown)));
			rc = -1;
		} else if (seen[o - config_options] != 0) {
			fprintf(stderr,
			    "beep-signal: %s: '%s' set again (first on line "
			    "%u)\n",
			    where, o->flag, seen[o - config_options]);
			rc = -1;
		} else {
			seen[o - config_options] = lineno;
			rc = config_set(c, o, value, where, true);
		}
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "beep-signal: %s: %s\n",
		    log_shown(path, shown, sizeof(shown)), strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

/* Print one option's value as the file would hold it. */
static void
config_value(FILE *f, const struct config *c, const struct config_option *o)
{
	const char *p = (const char *)c + o->offset;

	switch (o->type) {
	case CONFIG_STR: {
		const char *v = *(char *const *)p;
		size_t len = strlen(v);

		/*
		 * Quoted when the file would not read it back as it is
		 * (config_file()): a '#' (refused after a space), a quote
		 * at either end, a space at either end (trimmed), a CR (at
		 * the end trimmed as a CRLF line's, inside refused as CR
		 * line ends).
		 */
		if (len > 0 &&
		    (strchr(v, '#') != NULL || strchr(v, '\r') != NULL ||
		        v[0] == '"' || v[len - 1] == '"' ||
		        strchr(" \t", v[0]) != NULL ||
		        strchr(" \t", v[len - 1]) != NULL))
			fprintf(f, "\"%s\"", v);
		else
			fputs(v, f);
		break;
	}
	case CONFIG_LEVEL:
		fputs(log_level_name[*(const int *)p], f);
		break;
	case CONFIG_MODE:
		fprintf(f, "%04o", *(const unsigned *)p);
		break;
	case CONFIG_UINT:
		fprintf(f, "%u", *(const unsigned *)p);
		break;
	case CONFIG_SIZE:
		fprintf(f, "%zu", *(const size_t *)p);
		break;
	}
}

/* Write text as "# " comment lines of at most 76 columns. */
static void
config_comment(FILE *f, const char *text)
{
	while (*text != '\0') {
		size_t len = strlen(text), cut = len;

		if (len > 74) {
			cut = 74;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = strcspn(text, " ");
		}
		fprintf(f, "# %.*s\n", (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

/*
 * Whether every value can be written to a file that reads back as it is:
 * not one with a line break (a file holds a key a line, and has no
 * escapes: the rest of the value would be a line of its own, an error
 * or another key).  -1, saying which, when one cannot.
 */
static int
config_printable(const struct config *c)
{
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		const struct config_option *o = &config_options[i];

		if (o->type == CONFIG_STR &&
		    strchr(*(char *const *)((const char *)c + o->offset),
		        '\n') != NULL) {
			fprintf(stderr,
			    "beep-signal: --print-config: %s has a line "
			    "break, which a configuration file cannot hold: "
			    "set it by %s or --%s\n",
			    o->flag, o->env, o->flag);
			return -1;
		}
	}
	return 0;
}

void
config_print(FILE *f, const struct config *c)
{
	struct config def;

	memset(&def, 0, sizeof(def));
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
		if (config_set(&def, &config_options[i], config_options[i].def,
		        "default", false) < 0)
			abort();
	fprintf(f,
	    "# beep-signal configuration file: beep-signal --config FILE, or\n"
	    "# BEEP_CONFIG=FILE.  Written by beep-signal --print-config.\n"
	    "#\n"
	    "# One \"key = value\" per line; lines starting with '#' are "
	    "comments\n"
	    "# (a '#' after a space in a value is an error: quote the value "
	    "to keep it).\n"
	    "# A key is a long option without its \"--\"; a value may be "
	    "wrapped in\n"
	    "# double quotes.  A flag wins over the environment variable "
	    "(named\n"
	    "# below each key), which wins over this file, which wins over "
	    "the\n"
	    "# default.  Unknown keys, keys set twice and invalid values are\n"
	    "# errors: check a file with\n"
	    "#   beep-signal --config FILE --check-config\n"
	    "# Keys at their default are shown commented out.\n");
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		const struct config_option *o = &config_options[i];
		char range[128] = "";
		bool is_def;

		if (o->type == CONFIG_UINT || o->type == CONFIG_SIZE)
			snprintf(range, sizeof(range),
			    "; a whole number from %ju to %ju", o->min, o->max);
		else if (o->type == CONFIG_MODE)
			snprintf(range, sizeof(range),
			    "; an octal mode up to %jo", o->max);
		fputc('\n', f);
		{
			struct buf b = {0};

			buf_printf(&b, "%s: %s%s. Environment: %s.", o->flag,
			    o->help, range, o->env);
			config_comment(f, b.data);
			buf_free(&b);
		}
		fprintf(f, "# default: %s\n", o->def[0] ? o->def : "(none)");
		if (o->type == CONFIG_STR)
			is_def = strcmp(*(char *const *)((const char *)c +
			                    o->offset),
			             *(char *const *)((const char *)&def +
			                 o->offset)) == 0;
		else
			is_def =
			    memcmp((const char *)c + o->offset,
			        (const char *)&def + o->offset,
			        o->type == CONFIG_SIZE ? sizeof(size_t)
			                               : sizeof(unsigned)) == 0;
		fprintf(f, "%s%s =", is_def ? "#" : "", o->flag);
		if (o->type != CONFIG_STR ||
		    (*(char *const *)((const char *)c + o->offset))[0] != '\0')
			fputc(' ', f);
		config_value(f, c, o);
		fputc('\n', f);
	}
	config_clear(&def);
}

/* What the command line asks for besides options. */
struct config_cli {
	const char *file; /* --config FILE */
	bool check;       /* --check-config */
	bool print;       /* --print-config */
};

/*
 * The first pass over argv: --help and --version (answered at once),
 * --config, --check-config and --print-config.  Returns 0, 1 or -1.
 */
static int
config_cli(int argc, char **argv, struct config_cli *cli)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("beep-signal %s\n", config_version);
			return 1;
		}
		if (strcmp(arg, "--check-config") == 0)
			cli->check = true;
		else if (strcmp(arg, "--print-config") == 0)
			cli->print = true;
		else if (strncmp(arg, "--config=", 9) == 0)
			cli->file = arg + 9;
		else if (strcmp(arg, "--config") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr,
				    "beep-signal: --config needs a value\n");
				return -1;
			}
			cli->file = argv[++i];
		}
	}
	return 0;
}

/*
 * Settings that cannot work together, whatever their sources: a device's
 * log drops at once a message longer than BEEP_REPLAY_BYTES, even before
 * any stream took it, so a POST of BEEP_MAX_BODY would be answered 200
 * and never delivered.  (Replay limits below the queue's only weaken
 * replay: main() warns.)  -1 after saying why.
 */
static int
config_consistent(const struct config *c)
{
	if (c->replay_bytes < c->max_body) {
		fprintf(stderr,
		    "beep-signal: --replay-bytes (%zu) is below --max-body "
		    "(%zu): a message that long would be dropped as soon as "
		    "it was accepted\n",
		    c->replay_bytes, c->max_body);
		return -1;
	}
	return 0;
}

/* Edits (insert, delete, replace) from a to b, up to 3: 3 means more. */
static unsigned
config_edits(const char *a, const char *b)
{
	unsigned row[64], prev[64];
	size_t na = strlen(a), nb = strlen(b);

	if (nb >= sizeof(row) / sizeof(row[0]) ||
	    (na > nb ? na - nb : nb - na) >= 3)
		return 3;
	for (size_t j = 0; j <= nb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= na; i++) {
		memcpy(prev, row, sizeof(row));
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= nb; j++) {
			unsigned v = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
		}
	}
	return row[nb] < 3 ? row[nb] : 3;
}

/*
 * A BEEP_ variable that is no option's but within two edits of one's
 * (BEEP_MAX_STREAM): a typo that would leave the option at its default,
 * untold.  The fronts' and scripts' own variables (BEEP_SOCKET,
 * BEEP_WEB_ROOT, BEEP_NODES, ...) share the prefix and are further from
 * every option's: they are left alone.  A warning, not a refusal.
 */
static void
config_env_typos(void)
{
	extern char **environ;

	for (char **e = environ; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		const char *best = NULL;
		unsigned d = 3;
		char name[64], shown[4 * sizeof(name)];

		if (strncmp(*e, "BEEP_", 5) != 0 || eq == NULL ||
		    (size_t)(eq - *e) >= sizeof(name))
			continue;
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		if (strcmp(name, "BEEP_CONFIG") == 0)
			continue;
		for (size_t i = 0; i < CONFIG_NOPTIONS && d > 0; i++) {
			unsigned k = config_edits(name, config_options[i].env);

			if (k < d) {
				d = k;
				best = config_options[i].env;
			}
		}
		if (d > 0 && d < 3)
			fprintf(stderr,
			    "beep-signal: warning: %s is not an option's "
			    "variable, and is ignored: did you mean %s?\n",
			    log_shown(name, shown, sizeof(shown)), best);
	}
}

int
config_parse(struct config *c, int argc, char **argv)
{
	struct config_cli cli = {0};
	int rc;

	memset(c, 0, sizeof(*c));
	rc = config_cli(argc, argv, &cli);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
		if (config_set(c, &config_options[i], config_options[i].def,
		        "default", false) < 0)
			abort();
	if (cli.file == NULL) {
		const char *env = getenv("BEEP_CONFIG");

		if (env != NULL && env[0] != '\0')
			cli.file = env;
	}
	if (cli.file != NULL && config_file(c, cli.file) < 0)
		return -1;
	config_env_typos();
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		const struct config_option *o = &config_options[i];
		const char *env = getenv(o->env);

		if (env != NULL && env[0] != '\0' &&
		    config_set(c, o, env, o->env, false) < 0)
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL, *eq;
		const struct config_option *o;
		size_t len;

		if (strcmp(arg, "--check-config") == 0 ||
		    strcmp(arg, "--print-config") == 0 ||
		    strncmp(arg, "--config=", 9) == 0)
			continue;
		if (strcmp(arg, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0)
			return config_unknown(arg);
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		o = config_find(arg, len);
		if (o == NULL)
			return config_unknown(argv[i]);
		if (eq != NULL)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			fprintf(stderr, "beep-signal: --%s needs a value\n",
			    o->flag);
			return -1;
		}
		if (config_set(c, o, value, "command line", false) < 0)
			return -1;
	}
	if (config_consistent(c) < 0)
		return -1;
	if (cli.print) {
		/* One key a line, no escapes: see config_printable(). */
		if (config_printable(c) < 0)
			return -1;
		config_print(stdout, c);
		return 1;
	}
	c->file = cli.file;
	return cli.check ? CONFIG_CHECK : 0;
}

/*
 * Here, not in the registry (which knows nothing of the configuration) nor
 * in main (which the unit tests and the fuzz drivers do not link): config
 * needs only the registry's type, so the graph still points one way.
 */
void
config_registry_limits(const struct config *c, struct registry_limits *out)
{
	*out = (struct registry_limits){
	    .max_streams = c->max_streams,
	    /*
	     * A device's reconnect at max_streams, each holding a worker
	     * until the stream it replaced ends: the server runs
	     * 2 * min_idle + 256 beyond max_streams, so this many leave
	     * min_idle + 256 for short requests.
	     */
	    .max_over = c->min_idle,
	    .queue_messages = c->queue_messages,
	    .queue_bytes = c->queue_bytes,
	    .replay_max = c->replay_max,
	    .replay_bytes = c->replay_bytes,
	    .sender_share = c->sender_share,
	    .replay_ms = (uint64_t)c->replay_seconds * 1000,
	    .grace_ms = (uint64_t)c->grace_seconds * 1000,
	    .streams_per_device = c->max_streams_per_device,
	    .devices_per_user = c->max_devices_per_user,
	    .max_devices = c->max_devices,
	    .max_message_bytes = c->max_message_memory,
	    .msg_overhead = REGISTRY_MSG_OVERHEAD,
	    .stuck_ms = c->stuck_ms,
	    .catch_up_ms = (uint64_t)c->catch_up_seconds * 1000,
	};
}

void
config_clear(struct config *c)
{
	free(c->listen);
	free(c->cors_origins);
	free(c->auth);
	free(c->jwt_alg);
	free(c->jwt_secret);
	free(c->jwt_secret_prev);
	free(c->jwt_key);
	free(c->jwt_key_prev);
	free(c->jwt_issuer);
	free(c->jwt_audience);
	free(c->jwt_cookie);
	free(c->auth_param);
	free(c->list_policy);
	free(c->log_format);
	free(c->metrics_allow);
	free(c->redis_url);
	free(c->turn_urls);
	free(c->turn_secret);
	memset(c, 0, sizeof(*c));
}
