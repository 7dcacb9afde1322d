/*
 * config: every setting of the service, each a command-line flag with an
 * environment fallback (BEEP_*) and a default.  One table drives parsing,
 * validation and --help, so they cannot disagree.
 */
#ifndef BEEP_CONFIG_H
#define BEEP_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct config {
	char *listen;            /* "unix:PATH", "HOST:PORT", or "" for fd 0 */
	unsigned socket_mode;    /* permissions of a unix socket we create */
	unsigned keepalive;      /* seconds between SSE keepalive comments */
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
	unsigned grace_seconds;  /* a device outlives its last stream */
	char *auth;              /* "none", "jwt" or "header" */
	char *jwt_alg;           /* the one algorithm accepted */
	char *jwt_secret;        /* HS* secret */
	char *jwt_key;           /* RS256/ES256 PEM public key file */
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
	char *cors_origins; /* "*" or a comma-separated list */
	int log_level;      /* enum log_level */
	char *turn_urls;    /* ICE server URLs, comma-separated, or "" */
	char *turn_secret;  /* coturn's static-auth-secret, or "" */
	unsigned turn_ttl;  /* seconds a TURN credential is valid */
};

/*
 * Fill c from the environment, then from argv.  Returns 0, 1 when --help
 * or --version was printed (exit 0), or -1 after printing an error
 * (exit 2).  Call once, at start-up.
 */
int config_parse(struct config *c, int argc, char **argv);

/* Print the options table (what --help shows) to f. */
void config_usage(FILE *f);

void config_clear(struct config *c);

#endif
