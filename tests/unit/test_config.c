/* Unit tests for config: defaults, environment, flags, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static int
parse(struct config *c, int argc, const char **argv)
{
	return config_parse(c, argc, (char **)argv);
}

static void
test_config_defaults(void **state)
{
	const char *argv[] = {"beep-signal"};
	struct config c;

	(void)state;
	unsetenv("BEEP_KEEPALIVE");
	assert_int_equal(parse(&c, 1, argv), 0);
	assert_string_equal(c.listen, "");
	assert_int_equal(c.keepalive, 4);
	assert_int_equal(c.max_streams, 10000);
	assert_int_equal(c.max_body, 65536);
	assert_int_equal(c.max_id, 256);
	assert_int_equal(c.socket_mode, 0660);
	assert_string_equal(c.cors_origins, "*");
	config_clear(&c);
}

static void
test_config_env_then_flags(void **state)
{
	const char *argv[] = {"beep-signal", "--keepalive", "3",
	    "--max-body=1024", "--listen", "unix:/tmp/x.sock"};
	struct config c;

	(void)state;
	setenv("BEEP_KEEPALIVE", "9", 1);
	setenv("BEEP_MAX_STREAMS", "7", 1);
	assert_int_equal(parse(&c, 6, argv), 0);
	assert_int_equal(c.keepalive, 3);   /* the flag wins */
	assert_int_equal(c.max_streams, 7); /* the environment fills in */
	assert_int_equal(c.max_body, 1024);
	assert_string_equal(c.listen, "unix:/tmp/x.sock");
	config_clear(&c);
	unsetenv("BEEP_KEEPALIVE");
	unsetenv("BEEP_MAX_STREAMS");
}

static void
test_config_refusals(void **state)
{
	static const char *bad[][3] = {
	    {"beep-signal", "--keepalive", "0"},
	    {"beep-signal", "--keepalive", "3601"},
	    {"beep-signal", "--max-body", "12x"},
	    {"beep-signal", "--max-body", "-5"},
	    {"beep-signal", "--socket-mode", "0999"},
	    {"beep-signal", "--log-level", "loud"},
	    {"beep-signal", "--no-such", "1"},
	    {"beep-signal", "stray", "1"},
	};
	const char *missing[] = {"beep-signal", "--keepalive"};
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&c, 3, bad[i]), -1);
		config_clear(&c);
	}
	assert_int_equal(parse(&c, 2, missing), -1);
	config_clear(&c);
	setenv("BEEP_MAX_ID", "0", 1);
	assert_int_equal(parse(&c, 1, missing), -1);
	config_clear(&c);
	unsetenv("BEEP_MAX_ID");
}

static void
test_config_limits_at_edges(void **state)
{
	const char *argv[] = {
	    "beep-signal", "--keepalive", "3600", "--max-id", "4096"};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 5, argv), 0);
	assert_int_equal(c.keepalive, 3600);
	assert_int_equal(c.max_id, 4096);
	config_clear(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_config_env_then_flags),
	    cmocka_unit_test(test_config_refusals),
	    cmocka_unit_test(test_config_limits_at_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
