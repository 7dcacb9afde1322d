/* turn: see turn.h. */
#include "turn.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define LOG_MODULE "turn"

/* The shortest secret taken: HMAC-SHA1's hash size (RFC 2104). */
#define TURN_SECRET_MIN 20

enum turn_kind {
	TURN_KIND_BAD,
	TURN_KIND_STUN, /* stun:, stuns: no credentials */
	TURN_KIND_TURN, /* turn:, turns: REST credentials */
};

static enum turn_kind
turn_kind(const char *url, size_t len)
{
	static const struct {
		const char *scheme;
		enum turn_kind kind;
	} schemes[] = {
	    {"stun:", TURN_KIND_STUN},
	    {"stuns:", TURN_KIND_STUN},
	    {"turn:", TURN_KIND_TURN},
	    {"turns:", TURN_KIND_TURN},
	};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].scheme);

		/* A scheme and at least one character of host. */
		if (len > n && strncasecmp(url, schemes[i].scheme, n) == 0)
			return schemes[i].kind;
	}
	return TURN_KIND_BAD;
}

/*
 * Whether url (len bytes, its scheme already known) is one browsers take
 * (RFC 7064, 7065): after the scheme a host (a name, an IPv4 address or
 * an IPv6 one in brackets), an optional port of 1 to 65535, and for TURN
 * only an optional ?transport=udp or ?transport=tcp.  Chromium's
 * RTCPeerConnection throws on the whole list for one URL outside that
 * ("stun:h?transport=udp", "turn://h", "turn:user@h", a port of 99999),
 * so every call of every page would fail.
 */
static bool
turn_url_ok(const char *url, size_t len, enum turn_kind kind)
{
	const char *p = memchr(url, ':', len), *end = url + len;
	const char *q = memchr(url, '?', len);
	const char *host_end;

	p++; /* past the scheme's ':' */
	if (q != NULL) {
		/* The key as it is; its value in any case, as Chromium. */
		static const char key[] = "?transport=";
		size_t n = (size_t)(end - q), k = sizeof(key) - 1;

		if (kind != TURN_KIND_TURN || n != k + 3 ||
		    memcmp(q, key, k) != 0 ||
		    (strncasecmp(q + k, "udp", 3) != 0 &&
		        strncasecmp(q + k, "tcp", 3) != 0))
			return false;
		end = q;
	}
	if (p < end && *p == '[') {
		host_end = memchr(p, ']', (size_t)(end - p));
		if (host_end == NULL || host_end == p + 1)
			return false;
		for (const char *h = p + 1; h < host_end; h++)
			if (!(isxdigit((unsigned char)*h) || *h == ':' ||
			        *h == '.'))
				return false;
		host_end++;
	} else {
		host_end = p;
		while (host_end < end && *host_end != ':') {
			unsigned char ch = (unsigned char)*host_end;

			/*
			 * A name's letters, digits, '-', '_' (DNS names may
			 * have one, and browsers take it), '.', and UTF-8.
			 */
			if (!(isalnum(ch) || ch == '-' || ch == '_' ||
			        ch == '.' || ch >= 0x80))
				return false;
			host_end++;
		}
		if (host_end == p)
			return false;
	}
	if (host_end < end) {
		unsigned long port = 0;
		const char *d = host_end + 1;

		if (*host_end != ':' || d == end || end - d > 5)
			return false;
		for (; d < end; d++) {
			if (!isdigit((unsigned char)*d))
				return false;
			port = port * 10 + (unsigned long)(*d - '0');
		}
		if (port == 0 || port > 65535)
			return false;
	}
	return true;
}

int
turn_check(const struct config *c)
{
	const char *p = c->turn_urls, *url;
	bool need_secret = false;
	size_t len;

	while ((url = util_list_next(&p, &len)) != NULL) {
		enum turn_kind kind = turn_kind(url, len);

		if (kind == TURN_KIND_BAD) {
			log_error("BEEP_TURN_URLS: '%.*s' is not a stun:, "
			          "stuns:, turn: or turns: URL",
			    (int)len, url);
			return -1;
		}
		if (!turn_url_ok(url, len, kind)) {
			log_error(
			    "BEEP_TURN_URLS: '%.*s' is not a URL browsers "
			    "take: %s:HOST[:PORT]%s",
			    (int)len, url,
			    kind == TURN_KIND_STUN ? "stun" : "turn",
			    kind == TURN_KIND_STUN ? " (no query)"
			                           : "[?transport=udp|tcp]");
			return -1;
		}
		if (kind == TURN_KIND_TURN)
			need_secret = true;
	}
	if (need_secret && c->turn_secret[0] == '\0') {
		log_error("BEEP_TURN_URLS names a TURN server: "
		          "BEEP_TURN_SECRET must be set (coturn's "
		          "static-auth-secret)");
		return -1;
	}
	/*
	 * RFC 2104: a key at least as long as the hash (SHA-1's 20
	 * bytes).  Every credential handed out is a username and its
	 * HMAC, to anyone in open mode: a shorter secret (change-me) falls
	 * to an offline guess from one, and then mints credentials of any
	 * expiry for any user, past BEEP_TURN_TTL and the token's exp.
	 */
	if (need_secret && strlen(c->turn_secret) < TURN_SECRET_MIN) {
		log_error("BEEP_TURN_SECRET is %zu bytes: at least %d are "
		          "needed (RFC 2104; e.g. openssl rand -hex 32 "
		          "gives 64)",
		    strlen(c->turn_secret), TURN_SECRET_MIN);
		return -1;
	}
	return 0;
}

void
turn_credential(
    const char *secret, const char *username, char out[TURN_CREDENTIAL_SIZE])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	if (HMAC(EVP_sha1(), secret, (int)strlen(secret),
	        (const unsigned char *)username, strlen(username), mac,
	        &mac_len) == NULL ||
	    mac_len != 20) {
		/* libcrypto without SHA-1 cannot serve this at all. */
		log_error("HMAC-SHA1 failed");
		abort();
	}
	EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
}

/* Whether s holds word, in any case. */
static bool
turn_has_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	for (; *s != '\0'; s++)
		if (strncasecmp(s, word, n) == 0)
			return true;
	return false;
}

/*
 * Append user to out as the label of a TURN username, in at most room
 * bytes, as coturn takes it: coturn answers 400 ("wrong username",
 * its is_secure_string(), a guard against SQL injection into its user
 * databases) to a username that holds a space, tab, ', ", \, CR or LF,
 * or both "union" and "select" in any case, whatever the secret says.
 * Those characters (and '%', so that the label stays unambiguous) are
 * written as %XX, and so is the first letter of "select" when "union" is
 * there too.  The label is cut at a character's start to fit room (a
 * STUN USERNAME is fewer than 509 bytes, and browsers refuse longer
 * ones).  The user part only labels the allocation in coturn's logs.
 */
static void
turn_label(const char *user, size_t room, struct buf *out)
{
	bool union_select =
	    turn_has_word(user, "union") && turn_has_word(user, "select");
	const unsigned char *p = (const unsigned char *)user;

	while (*p != '\0') {
		char esc[4];
		size_t n = 1;

		if (strchr(" \t'\"\\\r\n%", *p) != NULL ||
		    (union_select &&
		        strncasecmp((const char *)p, "select", 6) == 0)) {
			snprintf(esc, sizeof(esc), "%%%02X", *p);
			if (room < 3)
				return;
			buf_append(out, esc, 3);
			room -= 3;
			p++;
			continue;
		}
		/* A UTF-8 sequence whole (ids are valid UTF-8). */
		while ((p[n] & 0xc0) == 0x80)
			n++;
		if (room < n)
			return;
		buf_append(out, (const char *)p, n);
		room -= n;
		p += n;
	}
}

void
turn_ice_servers(const struct config *c, const char *user, time_t now,
    long long until, struct buf *out)
{
	json_t *stun = json_array(), *turn = json_array(), *list = json_array();
	json_t *doc;
	const char *p = c->turn_urls, *url;
	size_t len;
	char *text;

	while ((url = util_list_next(&p, &len)) != NULL) {
		enum turn_kind kind = turn_kind(url, len);

		if (kind != TURN_KIND_BAD)
			json_array_append_new(
			    kind == TURN_KIND_STUN ? stun : turn,
			    json_stringn(url, len));
	}
	if (json_array_size(stun) > 0)
		json_array_append_new(list, json_pack("{s:o}", "urls", stun));
	else
		json_decref(stun);
	if (json_array_size(turn) > 0) {
		char cred[TURN_CREDENTIAL_SIZE];
		struct buf name = {0};

		intmax_t expiry = (intmax_t)now + (intmax_t)c->turn_ttl;

		/*
		 * A relay's credentials do not outlive the token that got
		 * them (a token read from a log, or revoked by not being
		 * renewed, would otherwise keep the relay for a day).
		 */
		if (until > 0 && (intmax_t)until < expiry)
			expiry = (intmax_t)until;
		buf_printf(&name, "%" PRIdMAX ":", expiry);
		turn_label(user, TURN_USERNAME_MAX - name.len, &name);
		turn_credential(c->turn_secret, name.data, cred);
		json_array_append_new(list,
		    json_pack("{s:o, s:s, s:s}", "urls", turn, "username",
		        name.data, "credential", cred));
		buf_free(&name);
	} else
		json_decref(turn);
	doc = json_pack("{s:o}", "iceServers", list);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	buf_puts(out, text);
	free(text);
}
