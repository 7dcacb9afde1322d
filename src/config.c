/* config: see config.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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

#define OFF(field) offsetof(struct config, field)

/* The words some string options are limited to. */
static const struct {
	const char *flag;
	const char *choices; /* space-separated */
} config_choices[] = {
    {"auth", "none jwt header"},
    {"jwt-alg", "HS256 HS384 HS512 RS256 ES256"},
    {"list-policy", "self any"},
};

static bool
config_choice_ok(const char *flag, const char *value)
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

static const struct config_option config_options[] = {
    {"listen", "BEEP_LISTEN", CONFIG_STR, OFF(listen), "", 0, 0,
        "FastCGI socket: unix:PATH or HOST:PORT; empty: the socket "
        "inherited on fd 0 (spawn-fcgi, systemd StandardInput=socket) "
        "or by LISTEN_FDS"},
    {"socket-mode", "BEEP_SOCKET_MODE", CONFIG_MODE, OFF(socket_mode), "0660",
        0, 0777, "permissions of the unix socket it creates"},
    {"keepalive", "BEEP_KEEPALIVE", CONFIG_UINT, OFF(keepalive), "15", 1, 3600,
        "seconds between SSE keepalive comments on a stream"},
    {"write-timeout", "BEEP_WRITE_TIMEOUT", CONFIG_UINT, OFF(write_timeout),
        "30", 1, 3600,
        "seconds a read of a request or a write to a stream may wait (a "
        "client that stops sending or reading) before it is closed"},
    {"max-streams", "BEEP_MAX_STREAMS", CONFIG_SIZE, OFF(max_streams), "10000",
        1, 1000000, "open streams in all; past it a subscribe gets 503"},
    {"min-idle", "BEEP_MIN_IDLE", CONFIG_UINT, OFF(min_idle), "8", 1, 1024,
        "idle worker threads kept ready for short requests"},
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
        "most bytes of messages a device keeps for replay or holds"},
    {"grace", "BEEP_GRACE_SECONDS", CONFIG_UINT, OFF(grace_seconds), "30", 0,
        3600, "seconds a device stays addressable (202) after its last stream"},
    {"auth", "BEEP_AUTH", CONFIG_STR, OFF(auth), "none", 0, 0,
        "none (open), jwt (JSON Web Tokens) or header (a forward-auth "
        "proxy's identity header)"},
    {"jwt-alg", "BEEP_JWT_ALG", CONFIG_STR, OFF(jwt_alg), "HS256", 0, 0,
        "the only algorithm accepted: HS256, HS384, HS512, RS256 or ES256"},
    {"jwt-secret", "BEEP_JWT_SECRET", CONFIG_STR, OFF(jwt_secret), "", 0, 0,
        "HMAC secret for HS256/384/512"},
    {"jwt-key", "BEEP_JWT_KEY", CONFIG_STR, OFF(jwt_key), "", 0, 0,
        "PEM public key file for RS256/ES256"},
    {"jwt-issuer", "BEEP_JWT_ISSUER", CONFIG_STR, OFF(jwt_issuer), "", 0, 0,
        "when set, a token's iss must equal it"},
    {"jwt-audience", "BEEP_JWT_AUDIENCE", CONFIG_STR, OFF(jwt_audience), "", 0,
        0, "when set, a token's aud must contain it"},
    {"jwt-leeway", "BEEP_JWT_LEEWAY", CONFIG_UINT, OFF(jwt_leeway), "30", 0,
        600, "seconds of clock skew allowed for exp and nbf"},
    {"jwt-cookie", "BEEP_JWT_COOKIE", CONFIG_STR, OFF(jwt_cookie), "beep_token",
        0, 0, "cookie that may carry the token"},
    {"jwt-query", "BEEP_JWT_QUERY", CONFIG_UINT, OFF(jwt_query), "1", 0, 1,
        "1: a subscribe may carry the token as ?access_token= (URLs get "
        "logged); 0: not"},
    {"auth-param", "BEEP_AUTH_PARAM", CONFIG_STR, OFF(auth_param),
        "BEEP_USER_CLAIM", 0, 0,
        "header mode: the FastCGI parameter in which the front passes the "
        "forward-auth identity {\"userid\":...,\"clientid\":...}"},
    {"list-policy", "BEEP_LIST_POLICY", CONFIG_STR, OFF(list_policy), "self", 0,
        0, "with auth: list the devices of self only, or of any user"},
    {"rate", "BEEP_RATE", CONFIG_UINT, OFF(rate), "100", 0, 100000,
        "POSTs per second per sender (token user, else client address); "
        "0: no limit; past it 429"},
    {"burst", "BEEP_BURST", CONFIG_UINT, OFF(burst), "200", 1, 1000000,
        "POSTs a sender may make at once before the rate applies"},
    {"max-streams-per-device", "BEEP_MAX_STREAMS_PER_DEVICE", CONFIG_SIZE,
        OFF(max_streams_per_device), "8", 1, 1000,
        "open streams per device; past it a subscribe gets 429"},
    {"max-devices-per-user", "BEEP_MAX_DEVICES_PER_USER", CONFIG_SIZE,
        OFF(max_devices_per_user), "32", 1, 100000,
        "devices per user (live or in grace); past it 429"},
    {"cors-origins", "BEEP_CORS_ORIGINS", CONFIG_STR, OFF(cors_origins), "*", 0,
        0, "Access-Control-Allow-Origin: * or a comma-separated list"},
    {"log-level", "BEEP_LOG_LEVEL", CONFIG_LEVEL, OFF(log_level), "info", 0, 0,
        "debug, info, warn or error"},
    {"turn-urls", "BEEP_TURN_URLS", CONFIG_STR, OFF(turn_urls), "", 0, 0,
        "ICE servers for GET /ice-servers: comma-separated stun:, stuns:, "
        "turn: or turns: URLs"},
    {"turn-secret", "BEEP_TURN_SECRET", CONFIG_STR, OFF(turn_secret), "", 0, 0,
        "TURN REST secret (coturn's static-auth-secret); needed with "
        "turn: URLs"},
    {"turn-ttl", "BEEP_TURN_TTL", CONFIG_UINT, OFF(turn_ttl), "86400", 60,
        604800, "seconds a TURN credential from /ice-servers is valid"},
};

#define CONFIG_NOPTIONS (sizeof(config_options) / sizeof(config_options[0]))

static int
config_set(struct config *c, const struct config_option *o, const char *value,
    const char *source)
{
	char *p = (char *)c + o->offset, *end;
	uintmax_t v;
	int level;

	switch (o->type) {
	case CONFIG_STR:
		if (!config_choice_ok(o->flag, value))
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
	if (o->type == CONFIG_MODE)
		fprintf(stderr,
		    "beep-signal: %s: invalid value '%s' for --%s "
		    "(an octal mode up to %jo)\n",
		    source, value, o->flag, o->max);
	else if (o->type == CONFIG_LEVEL || o->type == CONFIG_STR)
		fprintf(stderr,
		    "beep-signal: %s: invalid value '%s' for --%s\n", source,
		    value, o->flag);
	else
		fprintf(stderr,
		    "beep-signal: %s: invalid value '%s' for --%s "
		    "(a whole number from %ju to %ju)\n",
		    source, value, o->flag, o->min, o->max);
	return -1;
}

void
config_usage(FILE *f)
{
	fprintf(f,
	    "Usage: beep-signal [OPTION]...\n"
	    "WebRTC signaling over Server-Sent Events, as a FastCGI "
	    "responder.\n\n"
	    "Every option may also be set by its environment variable; "
	    "a flag wins.\n\n");
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		const struct config_option *o = &config_options[i];

		fprintf(f, "  --%-14s %-24s default: %s\n", o->flag, o->env,
		    o->def[0] ? o->def : "(none)");
		fprintf(f, "      %s\n", o->help);
	}
	fprintf(f,
	    "  --help                   show this help\n"
	    "  --version                show the version\n");
}

static int
config_unknown(const char *arg)
{
	fprintf(
	    stderr, "beep-signal: unknown argument '%s' (see --help)\n", arg);
	return -1;
}

int
config_parse(struct config *c, int argc, char **argv)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
		const struct config_option *o = &config_options[i];
		const char *env = getenv(o->env);

		if (config_set(c, o, o->def, "default") < 0)
			abort();
		if (env != NULL && env[0] != '\0' &&
		    config_set(c, o, env, o->env) < 0)
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL, *eq;
		const struct config_option *o = NULL;
		size_t len;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("beep-signal %s\n", BEEP_VERSION);
			return 1;
		}
		if (strncmp(arg, "--", 2) != 0)
			return config_unknown(arg);
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		for (size_t j = 0; j < CONFIG_NOPTIONS && o == NULL; j++)
			if (strlen(config_options[j].flag) == len &&
			    strncmp(config_options[j].flag, arg, len) == 0)
				o = &config_options[j];
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
		if (config_set(c, o, value, "command line") < 0)
			return -1;
	}
	return 0;
}

void
config_clear(struct config *c)
{
	free(c->listen);
	free(c->cors_origins);
	free(c->auth);
	free(c->jwt_alg);
	free(c->jwt_secret);
	free(c->jwt_key);
	free(c->jwt_issuer);
	free(c->jwt_audience);
	free(c->jwt_cookie);
	free(c->auth_param);
	free(c->list_policy);
	free(c->turn_urls);
	free(c->turn_secret);
	memset(c, 0, sizeof(*c));
}
