/*
 * turn: the ICE servers a browser should use (GET /ice-servers), with
 * time-limited TURN credentials in the TURN REST form that coturn's
 * use-auth-secret accepts: username "<expiry unix time>:<user>",
 * credential base64(HMAC-SHA1(secret, username)).  Configured by
 * BEEP_TURN_URLS, BEEP_TURN_SECRET and BEEP_TURN_TTL.  No I/O; the HMAC is
 * libcrypto's.
 */
#ifndef BEEP_TURN_H
#define BEEP_TURN_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "util.h"

/* The longest TURN username handed out: a STUN USERNAME is fewer than
 * 509 bytes (RFC 8489, 14.3), and browsers refuse longer ones. */
#define TURN_USERNAME_MAX 508

/* base64 of a 20-byte HMAC-SHA1 with its NUL: 28 + 1. */
#define TURN_CREDENTIAL_SIZE 29

/*
 * Check c's TURN settings at start-up: every URL is stun:, stuns:, turn:
 * or turns:, and TURN URLs come with a secret of at least 20 bytes (an
 * offline guess from one credential finds a shorter one).  Returns 0,
 * or -1 after logging why.
 */
int turn_check(const struct config *c);

/*
 * The credential for username: base64(HMAC-SHA1(secret, username)), NUL
 * terminated, into out (TURN_CREDENTIAL_SIZE bytes).
 */
void turn_credential(
    const char *secret, const char *username, char out[TURN_CREDENTIAL_SIZE]);

/*
 * Append {"iceServers":[...]} to out: the STUN URLs in one entry without
 * credentials, the TURN URLs in one entry with a username for user that
 * expires c->turn_ttl seconds after now, or at until when that is sooner
 * (the Unix time the caller's own credentials expire; 0: they do not)
 * (user cut, at a character's start, to keep it within TURN_USERNAME_MAX
 * bytes).  No URLs: an empty list.
 */
void turn_ice_servers(const struct config *c, const char *user, time_t now,
    long long until, struct buf *out);

#endif
