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

#include "turn.h"

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
	                     "north", "86400"),
	    0);
	assert_int_equal(turn_check(&c), 0);
	turn_ice_servers(&c, "alice", 1700000000, &out);
	assert_string_equal(out.data,
	    "{\"iceServers\":[{\"urls\":[\"stun:127.0.0.1:3478\"]},"
	    "{\"urls\":[\"turn:127.0.0.1:3478\","
	    "\"turns:t.example:5349?transport=tcp\"],"
	    "\"username\":\"1700086400:alice\","
	    "\"credential\":\"SXua5ne/+mDhiHTp0pQJzRO4ESg=\"}]}");
	buf_free(&out);
	config_clear(&c);

	/* STUN only: no credentials, and no secret needed. */
	assert_int_equal(parse(&c, "stun:s.example", "", "60"), 0);
	assert_int_equal(turn_check(&c), 0);
	turn_ice_servers(&c, "bob", 1, &out);
	assert_string_equal(
	    out.data, "{\"iceServers\":[{\"urls\":[\"stun:s.example\"]}]}");
	buf_free(&out);
	config_clear(&c);

	/* Nothing configured: an empty list. */
	assert_int_equal(parse(&c, "", "", "86400"), 0);
	turn_ice_servers(&c, "bob", 1, &out);
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
	assert_int_equal(parse(&c, "http://t.example", "s", "86400"), 0);
	assert_int_equal(turn_check(&c), -1);
	config_clear(&c);
	/* A scheme with no host is no URL. */
	assert_int_equal(parse(&c, "turn:", "s", "86400"), 0);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_turn_credential_vectors),
	    cmocka_unit_test(test_turn_ice_servers),
	    cmocka_unit_test(test_turn_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
