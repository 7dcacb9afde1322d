/* Unit tests for turn: the credential against known HMAC-SHA1 vectors, the
 * iceServers document, and the start-up checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "filter.h"
#include "turn.h"

/* A secret turn_check() takes: 20 bytes at least (HMAC-SHA1's hash). */
#define SECRET "north-of-the-wall-secret"

static void
test_turn_credential_vectors(void **state)
{
	char out[TURN_CREDENTIAL_SIZE];

	(void)state;
	/* RFC 2202, HMAC-SHA1 test case 2: effcdf6a...259a7c79, base64. */
	turn_credential("Jefe", "what do ya want for nothing?", out);
	assert_string_equal(out, "7/zfauXrL6LSdBbV8YTfnCWafHk=");
	/*
	 * A TURN REST username, checked with
	 * printf %s 1700086400:alice | openssl dgst -sha1 -hmac north -binary
	 * | base64
	 */
	turn_credential("north", "1700086400:alice", out);
	assert_string_equal(out, "SXua5ne/+mDhiHTp0pQJzRO4ESg=");
}

static int
parse(struct config *c, const char *urls, const char *secret, const char *ttl)
{
	const char *argv[] = {"beep-signal", "--turn-urls", urls,
	    "--turn-secret", secret, "--turn-ttl", ttl};

	return config_parse(c, 7, (char **)argv);
}

static void
test_turn_ice_servers(void **state)
{
	struct config c;
	struct buf out = {0};

	(void)state;
	assert_int_equal(parse(&c,
	                     " stun:127.0.0.1:3478 , turn:127.0.0.1:3478,"
	                     ",turns:t.example:5349?transport=tcp",
	                     SECRET, "86400"),
	    0);
	assert_int_equal(turn_check(&c), 0);
	turn_ice_servers(&c, "alice", 1700000000, 0, &out);
	assert_string_equal(out.data,
	    "{\"iceServers\":[{\"urls\":[\"stun:127.0.0.1:3478\"]},"
	    "{\"urls\":[\"turn:127.0.0.1:3478\","
	    "\"turns:t.example:5349?transport=tcp\"],"
	    "\"username\":\"1700086400:alice\","
	    "\"credential\":\"T1uiwKrejNbGp+L55q3wrflr/0c=\"}]}");
	buf_free(&out);

	/*
	 * The caller's token expires in an hour: the relay's credentials
	 * expire with it, not a day on; one that outlives the TTL leaves it.
	 */
	turn_ice_servers(&c, "alice", 1700000000, 1700003600, &out);
	assert_non_null(strstr(out.data, "\"username\":\"1700003600:alice\""));
	buf_free(&out);
	turn_ice_servers(&c, "alice", 1700000000, 1800000000, &out);
	assert_non_null(strstr(out.data, "\"username\":\"1700086400:alice\""));
	buf_free(&out);
	config_clear(&c);

	/* STUN only: no credentials, and no secret needed. */
	assert_int_equal(parse(&c, "stun:s.example", "", "60"), 0);
	assert_int_equal(turn_check(&c), 0);
	turn_ice_servers(&c, "bob", 1, 0, &out);
	assert_string_equal(
	    out.data, "{\"iceServers\":[{\"urls\":[\"stun:s.example\"]}]}");
	buf_free(&out);
	config_clear(&c);

	/* Nothing configured: an empty list. */
	assert_int_equal(parse(&c, "", "", "86400"), 0);
	turn_ice_servers(&c, "bob", 1, 0, &out);
	assert_string_equal(out.data, "{\"iceServers\":[]}");
	buf_free(&out);
	config_clear(&c);
}

static void
test_turn_check(void **state)
{
	struct config c;

	(void)state;
	/* A TURN URL without a secret could never authenticate. */
	assert_int_equal(parse(&c, "turn:t.example", "", "86400"), 0);
	assert_int_equal(turn_check(&c), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, "http://t.example", SECRET, "86400"), 0);
	assert_int_equal(turn_check(&c), -1);
	config_clear(&c);
	/*
	 * A secret shorter than SHA-1's 20 bytes (the sample's change-me):
	 * any one credential handed out (to anyone, in open mode) is a
	 * username and its HMAC, from which an offline guess finds such a
	 * secret, and then mints credentials of any expiry, for any user:
	 * BEEP_TURN_TTL and the token's exp no longer bound the relay.
	 */
	assert_int_equal(parse(&c, "turn:t.example", "change-me", "86400"), 0);
	assert_int_equal(turn_check(&c), -1);
	config_clear(&c);
	assert_int_equal(
	    parse(&c, "turn:t.example", "0123456789abcdef012", "86400"), 0);
	assert_int_equal(turn_check(&c), -1);
	config_clear(&c);
	assert_int_equal(
	    parse(&c, "turn:t.example", "0123456789abcdef0123", "86400"), 0);
	assert_int_equal(turn_check(&c), 0);
	config_clear(&c);
	/* STUN only: no credential, so no secret to guess. */
	assert_int_equal(parse(&c, "stun:s.example", "s", "86400"), 0);
	assert_int_equal(turn_check(&c), 0);
	config_clear(&c);
	/* A scheme with no host is no URL. */
	assert_int_equal(parse(&c, "turn:", SECRET, "86400"), 0);
	assert_int_equal(turn_check(&c), -1);
	config_clear(&c);
	/* The TTL's limits. */
	assert_int_equal(parse(&c, "", "", "59"), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, "", "", "604801"), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, "", "", "604800"), 0);
	config_clear(&c);
}

/*
 * A URL the service hands out must be one a browser takes: Chromium's
 * RTCPeerConnection constructor throws (SyntaxError) on the whole list
 * when one URL is malformed, so one bad entry fails every call of every
 * page, long after a start-up that said nothing.  RFC 7064/7065: stun: and
 * stuns: are host[:port] with no query; turn: and turns: may add
 * ?transport=udp or tcp; the port is 1-65535; no "//", no user@.
 * Each of these is refused by Chromium 156 (checked with
 * new RTCPeerConnection({iceServers: [{urls, username, credential}]})).
 */
static void
test_turn_check_urls_browsers_refuse(void **state)
{
	static const char *const refused[] = {
	    "stun:s.example:3478?transport=udp",
	    "turn:t.example:3478?transport=tls",
	    "turn:t.example:3478?transport=sctp",
	    "turn:t.example:3478?x=y",
	    "turn://t.example:3478",
	    "stun://s.example",
	    "turn:t.example:99999",
	    "turn:t.example:0",
	    "turn:t.example:abc",
	    "turn:t.example:3478;x",
	    "turn:user@t.example",
	    "turn:t.example/path",
	    "turn:[::1",
	};
	static const char *const taken[] = {
	    "stun:s.example",
	    "stun:s.example:3478",
	    "stuns:s.example:5349",
	    "turn:t.example:3478?transport=udp",
	    "turns:t.example:5349?transport=tcp",
	    "turn:127.0.0.1:3478",
	    "turn:[::1]:3478",
	    "turn:[2001:db8::1]",
	};
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(parse(&c, refused[i], SECRET, "86400"), 0);
		if (turn_check(&c) != -1)
			fail_msg("BEEP_TURN_URLS=%s was taken at start-up, but "
			         "browsers refuse it: every "
			         "new RTCPeerConnection({iceServers}) of the "
			         "page would throw",
			    refused[i]);
		config_clear(&c);
	}
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		assert_int_equal(parse(&c, taken[i], SECRET, "86400"), 0);
		if (turn_check(&c) != 0)
			fail_msg("BEEP_TURN_URLS=%s is a good URL", taken[i]);
		config_clear(&c);
	}
}

/*
 * The start-up check must not refuse what browsers take: a service that
 * ran with one of these stops at start-up after the upgrade that brought
 * the check (6b8f7b6), though every browser uses it.  Each is taken by
 * Chromium 156 (new RTCPeerConnection({iceServers: [{urls, username,
 * credential}]}) does not throw): a host name with '_' (DNS names may
 * have one: internal zones, SRV-style labels; Chromium checks no
 * characters but a few such as the space), and a transport in capitals
 * (RFC 7065's ABNF strings are case-insensitive, RFC 5234; Chromium
 * compares without case).
 */
static void
test_turn_check_urls_browsers_take(void **state)
{
	static const char *const taken[] = {
	    "turn:turn_1.example:3478",
	    "stun:stun_a.example",
	    "turn:t.example:3478?transport=TCP",
	    "turns:t.example:5349?transport=Tcp",
	    "turn:t.example?transport=UDP",
	    /* A scheme is case-insensitive (RFC 3986, 3.1). */
	    "TURN:t.example:3478",
	    "STUNS:t.example",
	};
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		assert_int_equal(parse(&c, taken[i], SECRET, "86400"), 0);
		if (turn_check(&c) != 0)
			fail_msg("BEEP_TURN_URLS=%s stops the service at "
			         "start-up, but browsers take it (Chromium "
			         "156's RTCPeerConnection does)",
			    taken[i]);
		config_clear(&c);
	}
}

/*
 * A STUN USERNAME is fewer than 509 bytes (RFC 8489, 14.3), and Chromium
 * refuses a TURN username over 509 bytes ("TURN server username is too
 * long": its RTCPeerConnection constructor throws).  The user part only
 * labels the allocation, and --max-id allows ids of 4096 bytes: a long id
 * must still get a username browsers take, cut at a UTF-8 boundary (the
 * document stays valid JSON), with its credential the HMAC of what is
 * sent.
 */
static void
test_turn_username_fits_stun(void **state)
{
	const char *argv[] = {"beep-signal", "--turn-urls", "turn:t.example",
	    "--turn-secret", "north", "--max-id", "4096"};
	char user[1200], cred[TURN_CREDENTIAL_SIZE];
	struct config c;
	struct buf out = {0};
	json_error_t err;
	json_t *doc, *srv;
	const char *name;

	(void)state;
	assert_int_equal(config_parse(&c, 7, (char **)argv), 0);
	/* 600 bytes of two-byte characters: a cut may fall mid-character. */
	for (size_t i = 0; i < 300; i++)
		memcpy(user + 2 * i, "\xc3\xa9", 2);
	user[600] = '\0';
	turn_ice_servers(&c, user, 1700000000, 0, &out);
	doc = json_loads(out.data, 0, &err);
	if (doc == NULL)
		fail_msg("not JSON: %s", err.text);
	srv = json_array_get(json_object_get(doc, "iceServers"), 0);
	name = json_string_value(json_object_get(srv, "username"));
	assert_non_null(name);
	if (strlen(name) > 508)
		fail_msg("TURN username of %zu bytes for a 600-byte user: "
		         "browsers refuse a username over 509 bytes, and every "
		         "RTCPeerConnection of that user's page would throw",
		    strlen(name));
	assert_int_equal(strncmp(name, "1700086400:", 11), 0);
	turn_credential("north", name, cred);
	assert_string_equal(
	    json_string_value(json_object_get(srv, "credential")), cred);
	json_decref(doc);
	buf_free(&out);
	config_clear(&c);
}

/*
 * coturn (4.6.1, Debian 12's) refuses with 400 "Wrong username" every
 * username that holds a space, a tab, ', ", \, CR or LF, or both "union"
 * and "select" in any case (its is_secure_string(), against SQL
 * injection into its user databases), also under use-auth-secret: the
 * allocation fails and no relay candidate ever comes (checked with
 * Chromium against coturn: "Mary Ann", "O'Brien", "back\slash" get
 * "400 TURN allocate error").  Ids allow all of them, so such users
 * never get a relay.  The user part only labels the allocation: it must
 * be written so that coturn takes it, and the credential must match what
 * is sent.
 */
static bool
coturn_takes(const char *name)
{
	char low[1024];
	size_t n = strlen(name);

	if (n >= sizeof(low))
		return false;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z'
		        ? name[i] - 'A' + 'a'
		        : name[i]);
	if (strpbrk(low, " \t'\"\\\r\n") != NULL)
		return false;
	return !(strstr(low, "union") != NULL && strstr(low, "select") != NULL);
}

static void
test_turn_username_coturn_takes(void **state)
{
	static const char *const users[] = {
	    "Mary Ann",
	    "O'Brien",
	    "say \"hi\"",
	    "back\\slash",
	    "Reunion Selection",
	    "UNIONSELECT",
	};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, "turn:t.example", "north", "86400"), 0);
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		struct buf out = {0};
		char cred[TURN_CREDENTIAL_SIZE];
		json_t *doc = NULL, *srv;
		const char *name;

		turn_ice_servers(&c, users[i], 1700000000, 0, &out);
		doc = json_loads(out.data, 0, NULL);
		assert_non_null(doc);
		srv = json_array_get(json_object_get(doc, "iceServers"), 0);
		name = json_string_value(json_object_get(srv, "username"));
		assert_non_null(name);
		if (!coturn_takes(name))
			fail_msg("user '%s' gets the TURN username '%s', which "
			         "coturn refuses (400 Wrong username): that "
			         "user never gets a relay",
			    users[i], name);
		assert_int_equal(strncmp(name, "1700086400:", 11), 0);
		turn_credential("north", name, cred);
		assert_string_equal(
		    json_string_value(json_object_get(srv, "credential")),
		    cred);
		json_decref(doc);
		buf_free(&out);
	}
	/* What coturn takes stays as it is. */
	{
		struct buf out = {0};

		turn_ice_servers(&c, "a:b\xc3\xa9", 1700000000, 0, &out);
		assert_non_null(strstr(out.data, "\"1700086400:a:b\xc3\xa9\""));
		buf_free(&out);
	}
	config_clear(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_turn_credential_vectors),
	    cmocka_unit_test(test_turn_ice_servers),
	    cmocka_unit_test(test_turn_check),
	    cmocka_unit_test(test_turn_check_urls_browsers_refuse),
	    cmocka_unit_test(test_turn_check_urls_browsers_take),
	    cmocka_unit_test(test_turn_username_fits_stun),
	    cmocka_unit_test(test_turn_username_coturn_takes),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
