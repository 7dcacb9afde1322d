/*
 * auth: who is asking.  Verifies a JSON Web Token (libjwt) or reads the
 * identity a forward-auth proxy put in a header, and yields a user id and
 * an optional pinned device id.  The only module that includes jwt.h.
 */
#ifndef BEEP_AUTH_H
#define BEEP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum auth_mode {
	AUTH_MODE_NONE,
	AUTH_MODE_JWT,
	AUTH_MODE_HEADER,
	AUTH_MODE__MAX
};

extern const char *const auth_mode_name[AUTH_MODE__MAX];

enum auth_result {
	AUTH_ABSENT,  /* no credentials were presented */
	AUTH_OK,      /* *id is filled in */
	AUTH_INVALID, /* credentials were presented and refused */
	AUTH_RESULT__MAX
};

/* Where credentials may come from; any may be NULL. */
struct auth_request {
	const char *authorization; /* the Authorization header */
	const char *cookie;        /* the Cookie header */
	const char *query_token;   /* ?access_token=, where allowed */
	const char *claim;         /* the forward-auth identity header */
};

/* Which credential identified the requester (or was refused). */
enum auth_source {
	AUTH_SOURCE_NONE,
	AUTH_SOURCE_BEARER, /* Authorization: Bearer */
	AUTH_SOURCE_COOKIE, /* ambient: the browser sends it by itself */
	AUTH_SOURCE_QUERY,  /* ?access_token= */
	AUTH_SOURCE_CLAIM,  /* the forward-auth parameter */
	AUTH_SOURCE__MAX
};

struct auth_identity {
	char *user;   /* owned */
	char *device; /* owned, or NULL when not pinned */
	enum auth_source source;
	const char *why; /* on AUTH_INVALID, a static reason, or NULL */
	/*
	 * A JWT's: the Unix time (seconds) from which it is no longer
	 * valid (exp plus the leeway); 0 when the credentials do not
	 * expire (a forward-auth claim).
	 */
	long long expires;
};

struct auth;

/*
 * Prepare for c->auth_mode: load the JWT key file, check the settings.
 * Returns NULL after logging why (a start-up error).
 */
struct auth *auth_new(const struct config *c);
void auth_free(struct auth *a);

enum auth_mode auth_mode(const struct auth *a);

/*
 * Identify the requester; on AUTH_OK release id with auth_identity_clear().
 * No library parses a credential before its length (c->max_token) and its
 * JSON nesting (c->max_depth, see depth.h) are checked, so this is safe on
 * a worker's stack (SERVER_STACK_SIZE) whatever the request carries.
 */
enum auth_result auth_identify(
    struct auth *a, const struct auth_request *req, struct auth_identity *id);

void auth_identity_clear(struct auth_identity *id);

/* Parse "none", "jwt" or "header"; -1 when unknown. */
int auth_mode_parse(const char *s);

#endif
