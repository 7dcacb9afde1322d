/* turn: see turn.h. */
#include "turn.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define LOG_MODULE "turn"

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
		if (len > n && strncmp(url, schemes[i].scheme, n) == 0)
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
		static const char udp[] = "?transport=udp";
		static const char tcp[] = "?transport=tcp";
		size_t n = (size_t)(end - q);

		if (kind != TURN_KIND_TURN || n != sizeof(udp) - 1 ||
		    (memcmp(q, udp, n) != 0 && memcmp(q, tcp, n) != 0))
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

			/* A name's letters, digits, '-', '.', and UTF-8. */
			if (!(isalnum(ch) || ch == '-' || ch == '.' ||
			        ch >= 0x80))
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

void
turn_ice_servers(
    const struct config *c, const char *user, time_t now, struct buf *out)
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

		size_t cut = strlen(user), room;

		buf_printf(&name, "%" PRIdMAX ":",
		    (intmax_t)now + (intmax_t)c->turn_ttl);
		/*
		 * A STUN USERNAME is fewer than 509 bytes (RFC 8489), and
		 * browsers refuse a longer one (Chromium's RTCPeerConnection
		 * throws): a long id is cut, at a character's start (ids
		 * are UTF-8).  The user part only labels the allocation.
		 */
		room = TURN_USERNAME_MAX - name.len;
		if (cut > room) {
			cut = room;
			while (cut > 0 &&
			    ((unsigned char)user[cut] & 0xc0) == 0x80)
				cut--;
		}
		buf_append(&name, user, cut);
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
