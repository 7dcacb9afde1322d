/* config_option: see config_option.h. */
#include "config_option.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_check.h"
#include "log.h"
#include "util.h"

#define OFF(field) offsetof(struct config, field)

const struct config_option config_options[] = {
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
        "POSTs per second per sender (token user, else client address), "
        "a subscribe's replay counting one per max-body bytes replayed; "
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
        "than it once encoded: 413); in a cluster, what waits for a "
        "subscribe's answer takes up to a quarter more"},
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

const size_t config_option_count =
    sizeof(config_options) / sizeof(config_options[0]);

/*
 * Set option o from value.  source says where the value came from, for
 * the error message: "default", an environment variable, "command line",
 * or "FILE:LINE" (then the option is named as a file key, without "--").
 */
int
config_option_set(struct config *c, const struct config_option *o,
    const char *value, const char *source, bool file)
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
