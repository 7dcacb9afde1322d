/*
 * config: every setting of the service, each a command-line flag, an
 * environment variable (BEEP_*), a key of the configuration file, and a
 * default.  One table (config_option.h) drives parsing, validation,
 * --help and --print-config (the sample file), so they cannot disagree.
 */
#ifndef BEEP_CONFIG_H
#define BEEP_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct registry_limits;

struct config {
	char *listen;            /* "unix:PATH", "HOST:PORT", or "" for fd 0 */
	unsigned socket_mode;    /* permissions of a unix socket we create */
	unsigned keepalive;      /* seconds between SSE keepalive comments */
	unsigned reconnect_ms;   /* a stream's retry:, before its jitter */
	unsigned write_timeout;  /* seconds a stream write may block */
	size_t max_streams;      /* open streams in all */
	unsigned min_idle;       /* idle workers kept ready to accept */
	size_t max_body;         /* POST body bytes */
	size_t max_id;           /* user/device id bytes, after decoding */
	unsigned max_depth;      /* JSON nesting in a POST body */
	size_t queue_messages;   /* undelivered messages per stream */
	size_t queue_bytes;      /* undelivered bytes per stream */
	unsigned replay_seconds; /* how long delivered messages are kept */
	size_t replay_max;       /* how many delivered messages are kept */
	size_t replay_bytes;     /* and how many bytes of them */
	unsigned sender_share;   /* % of those one sender may hold: 429 */
	unsigned grace_seconds;  /* a device outlives its last stream */
	char *auth;              /* "none", "jwt" or "header" */
	char *jwt_alg;           /* the one algorithm accepted */
	char *jwt_secret;        /* HS* secret */
	char *jwt_secret_prev;   /* the one before, during a rotation */
	char *jwt_key;           /* RS256/ES256 PEM public key file */
	char *jwt_key_prev;      /* the one before, during a rotation */
	char *jwt_issuer;        /* required iss, or "" */
	char *jwt_audience;      /* required aud, or "" */
	unsigned jwt_leeway;     /* seconds of clock skew for exp/nbf */
	char *jwt_cookie;        /* cookie carrying the token */
	unsigned jwt_query;      /* 1: ?access_token= on subscribe */
	char *auth_param;        /* header mode: the FastCGI parameter */
	char *list_policy;       /* "self" or "any" */
	unsigned rate;           /* POSTs/s per sender; 0 = no limit */
	unsigned burst;          /* token bucket size */
	size_t max_streams_per_device;
	size_t max_devices_per_user;
	size_t max_devices;
	char *cors_origins; /* "*" or a comma-separated list */
	int log_level;      /* enum log_level */
	size_t max_token;   /* bytes of a token or forward-auth claim */
	size_t max_streams_per_address; /* open mode; 0 = no limit */
	unsigned ipv6_prefix;           /* bits an IPv6 client is counted by */
	char *log_format;               /* "text" or "json" */
	char *metrics_allow; /* who may GET /metrics: ADDRESS[/BITS],... */
	/* Message bytes held in all logs. */
	size_t max_message_memory;
	unsigned catch_up_seconds; /* past its share of a full memory */
	unsigned stuck_ms;         /* ... taking nothing, before it is ended */
	unsigned read_timeout;     /* seconds to read a whole request */
	unsigned idle_timeout;     /* seconds a kept connection may idle; 0 */
	size_t max_drain;          /* body bytes drained past max_body */
	char *redis_url;           /* cluster: the Redis URL, or "" */
	unsigned cluster_ttl;      /* cluster: seconds a node stays listed */
	unsigned redis_timeout;    /* cluster: ms a request waits for Redis */
	char *turn_urls;           /* ICE server URLs, comma-separated, or "" */
	char *turn_secret;         /* coturn's static-auth-secret, or "" */
	unsigned turn_ttl;         /* seconds a TURN credential is valid */
	const char *file;          /* the configuration file read, or NULL */
};

/* The version, as --version prints it (git describe at build time). */
extern const char config_version[];

/*
 * Fill c from the defaults, then the configuration file (--config FILE or
 * BEEP_CONFIG), then the environment, then argv: each wins over the ones
 * before.  Returns 0, 1 when --help, --version or --print-config printed
 * what was asked (exit 0), CONFIG_CHECK when --check-config asked for a
 * check and every value is valid (the caller then checks what needs other
 * modules, such as the JWT key, and says OK), or -1 after printing an
 * error (exit 2), which for a file names FILE:LINE.  Call once, at
 * start-up.
 */
#define CONFIG_CHECK 2

int config_parse(struct config *c, int argc, char **argv);

/* Print the options table (what --help shows) to f. */
void config_usage(FILE *f);

/*
 * Print c as a configuration file: every key with its help, range,
 * environment variable and default; keys at their default commented out.
 */
void config_print(FILE *f, const struct config *c);

/*
 * Fill *out, every field, with the registry's limits as c sets them
 * (seconds become milliseconds): what registry_new() takes.
 */
void config_registry_limits(
    const struct config *c, struct registry_limits *out);

void config_clear(struct config *c);

#endif
