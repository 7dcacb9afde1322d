/* Unit tests for config: defaults, environment, flags, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "config.h"
#include "filter.h"
#include "registry.h"

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
	assert_int_equal(c.catch_up_seconds, 30);
	assert_int_equal(c.stuck_ms, 1000);
	assert_int_equal(c.sender_share, 50);
	config_clear(&c);
}

/*
 * A device's log drops a message longer than BEEP_REPLAY_BYTES at once:
 * below BEEP_MAX_BODY, refused at start; at it, accepted.
 */
static void
test_config_replay_bytes_not_below_max_body(void **state)
{
	const char *below[] = {"beep-signal", "--replay-bytes", "65535"};
	const char *at[] = {"beep-signal", "--replay-bytes", "65536"};
	const char *both[] = {
	    "beep-signal", "--replay-bytes", "4096", "--max-body", "4096"};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 3, below), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, at), 0);
	config_clear(&c);
	assert_int_equal(parse(&c, 5, both), 0);
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

/* Each registry limit comes from its own option, seconds as ms. */
static void
test_config_registry_limits(void **state)
{
	const char *argv[] = {"beep-signal", "--max-streams", "11", "--queue",
	    "12", "--queue-bytes", "1300", "--replay-max", "14",
	    "--replay-bytes", "1500", "--replay-seconds", "16", "--grace", "17",
	    "--max-streams-per-device", "18", "--max-devices-per-user", "19",
	    "--max-message-memory", "70000", "--max-body", "1500",
	    "--catch-up-seconds", "21", "--stuck-ms", "2200", "--sender-share",
	    "23"};
	struct registry_limits l;
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 29, argv), 0);
	memset(&l, 0xff, sizeof(l));
	config_registry_limits(&c, &l);
	assert_int_equal(l.max_streams, 11);
	assert_int_equal(l.queue_messages, 12);
	assert_int_equal(l.queue_bytes, 1300);
	assert_int_equal(l.replay_max, 14);
	assert_int_equal(l.replay_bytes, 1500);
	assert_int_equal(l.replay_ms, 16000);
	assert_int_equal(l.grace_ms, 17000);
	assert_int_equal(l.streams_per_device, 18);
	assert_int_equal(l.devices_per_user, 19);
	assert_int_equal(l.max_message_bytes, 70000);
	assert_int_equal(l.catch_up_ms, 21000);
	assert_int_equal(l.stuck_ms, 2200);
	assert_int_equal(l.sender_share, 23);
	config_clear(&c);
}

static void
test_config_refusals(void **state)
{
	static const char *bad[][3] = {
	    {"beep-signal", "--keepalive", "0"},
	    {"beep-signal", "--keepalive", "3601"},
	    {"beep-signal", "--catch-up-seconds", "0"},
	    {"beep-signal", "--catch-up-seconds", "3601"},
	    {"beep-signal", "--stuck-ms", "99"},
	    {"beep-signal", "--stuck-ms", "3600001"},
	    {"beep-signal", "--sender-share", "101"},
	    {"beep-signal", "--sender-share", "-1"},
	    {"beep-signal", "--max-body", "12x"},
	    {"beep-signal", "--max-body", "-5"},
	    {"beep-signal", "--socket-mode", "0999"},
	    {"beep-signal", "--log-level", "loud"},
	    {"beep-signal", "--no-such", "1"},
	    {"beep-signal", "stray", "1"},
	    /* Parameters the client chooses: it would choose who it is. */
	    {"beep-signal", "--auth-param", "HTTP_X_USER_CLAIM"},
	    {"beep-signal", "--auth-param", "http_x_user_claim"},
	    {"beep-signal", "--auth-param", "QUERY_STRING"},
	    {"beep-signal", "--auth-param", ""},
	    /*
	     * Not HTTP_*, and the client's all the same: Caddy's and
	     * lighttpd's SERVER_NAME is the Host it sent, Caddy's
	     * SCRIPT_FILENAME its path; nginx's fastcgi_params set
	     * REMOTE_USER to the user of whatever Basic credentials it sent,
	     * verified or not.
	     */
	    {"beep-signal", "--auth-param", "SERVER_NAME"},
	    {"beep-signal", "--auth-param", "script_filename"},
	    {"beep-signal", "--auth-param", "REMOTE_USER"},
	    /* Origins no browser sends, or that every sandbox sends. */
	    {"beep-signal", "--cors-origins", "null"},
	    {"beep-signal", "--cors-origins", "https://a.example, null"},
	    {"beep-signal", "--cors-origins", "https://a.example,*"},
	    {"beep-signal", "--cors-origins", "https://a.example/"},
	    {"beep-signal", "--cors-origins", "https://A.example"},
	    /* Cookie names no cookie as sent has (RFC 6265's token). */
	    {"beep-signal", "--jwt-cookie", "a=b"},
	    {"beep-signal", "--jwt-cookie", "a b"},
	    {"beep-signal", "--jwt-cookie", "a;b"},
	    {"beep-signal", "--jwt-cookie", "t\xc3\xa9"},
	    {"beep-signal", "--cors-origins", "a.example"},
	    {"beep-signal", "--cors-origins", "https://"},
	    {"beep-signal", "--cors-origins", "HTTPS://a.example"},
	    {"beep-signal", "--cors-origins", "1http://a.example"},
	    /*
	     * Ports no browser sends: the scheme's default (an origin
	     * leaves it out), none after the ':', leading zeros, past
	     * 65535; and a port without a host.
	     */
	    {"beep-signal", "--cors-origins", "https://a.example:443"},
	    {"beep-signal", "--cors-origins", "http://a.example:80"},
	    {"beep-signal", "--cors-origins",
	        "https://a.example, http://[::1]:80"},
	    {"beep-signal", "--cors-origins", "https://a.example:"},
	    {"beep-signal", "--cors-origins", "https://a.example:08443"},
	    {"beep-signal", "--cors-origins", "https://a.example:65536"},
	    {"beep-signal", "--cors-origins", "https://a.example:0"},
	    {"beep-signal", "--cors-origins", "https://a.example:84:43"},
	    {"beep-signal", "--cors-origins", "https://:8443"},
	    {"beep-signal", "--cors-origins", "http://[::1"},
	    {"beep-signal", "--cors-origins", "http://[::1]x"},
	    /*
	     * Address hosts written otherwise than a browser's Origin
	     * writes them (WHATWG URL host serializer): never matched.
	     */
	    {"beep-signal", "--cors-origins", "http://[0:0::1]"},
	    {"beep-signal", "--cors-origins", "http://[::0001]:8080"},
	    {"beep-signal", "--cors-origins", "http://[1:0:0:1:0:0:0:1]"},
	    {"beep-signal", "--cors-origins", "http://[1::1:0:0:0:1]"},
	    {"beep-signal", "--cors-origins", "http://[::ffff:1.2.3.4]"},
	    {"beep-signal", "--cors-origins", "http://[::g]"},
	    {"beep-signal", "--cors-origins", "http://[1:2:3:4:5:6:7:8:9]"},
	    {"beep-signal", "--cors-origins", "http://127.000.0.1"},
	    {"beep-signal", "--cors-origins", "http://127.1:8080"},
	    {"beep-signal", "--cors-origins", "http://2130706433"},
	    {"beep-signal", "--cors-origins", "http://0x7f.0.0.1"},
	    {"beep-signal", "--cors-origins", "http://10.0.0.256"},
	    {"beep-signal", "--cors-origins", "http://10.0.0.1."},
	    {"beep-signal", "--cors-origins", "http://a.example.0x1f"},
	    {"beep-signal", "--cors-origins", "http://0x"},
	};
	static const char *good[][3] = {
	    {"beep-signal", "--auth-param", "REMOTE_USER_CLAIM"},
	    {"beep-signal", "--cors-origins", "*"},
	    {"beep-signal", "--cors-origins", ""},
	    {"beep-signal", "--cors-origins",
	        " https://a.example:8443 ,http://[::1]:8080,"},
	    /* Apps' own schemes, and compose's service names. */
	    {"beep-signal", "--cors-origins",
	        "capacitor://localhost,ionic://localhost,tauri://localhost"},
	    {"beep-signal", "--cors-origins",
	        "chrome-extension://abcdefghijklmnop,http://my_app:3000"},
	    {"beep-signal", "--cors-origins", "https://xn--bcher-kva.example"},
	    /* Another scheme's default port is a port like any. */
	    {"beep-signal", "--cors-origins",
	        "http://a.example:443,https://a.example:80,http://a:65535"},
	    /* Address hosts as browsers write them. */
	    {"beep-signal", "--cors-origins",
	        "http://[::],http://[1:0:0:1::1]:8080,http://[::ffff:102:304]"},
	    {"beep-signal", "--cors-origins",
	        "http://[2001:db8::1:0],http://[1:2:3:4:5:6:7:0]"},
	    {"beep-signal", "--cors-origins",
	        "http://127.0.0.1:8080,http://10.0.0.255,http://1.example"},
	    {"beep-signal", "--cors-origins", "http://a.example.,http://0xg"},
	    {"beep-signal", "--jwt-cookie", "__Host-beep_token"},
	    {"beep-signal", "--jwt-cookie", "!#$%&'*+-.^_`|~"},
	    {"beep-signal", "--jwt-cookie", ""},
	};
	const char *missing[] = {"beep-signal", "--keepalive"};
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&c, 3, bad[i]), -1);
		config_clear(&c);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(parse(&c, 3, good[i]), 0);
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
	const char *argv[] = {"beep-signal", "--keepalive", "300", "--max-id",
	    "4096", "--catch-up-seconds", "3600", "--stuck-ms", "3600000",
	    "--sender-share", "100"};
	const char *low[] = {"beep-signal", "--catch-up-seconds", "1",
	    "--stuck-ms", "100", "--sender-share", "0"};
	/* Past what lighttpd's server.max-write-idle (360 s) allows. */
	const char *quiet[] = {"beep-signal", "--keepalive", "301"};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 11, argv), 0);
	assert_int_equal(c.keepalive, 300);
	assert_int_equal(c.sender_share, 100);
	assert_int_equal(c.max_id, 4096);
	assert_int_equal(c.catch_up_seconds, 3600);
	assert_int_equal(c.stuck_ms, 3600000);
	config_clear(&c);
	assert_int_equal(parse(&c, 7, low), 0);
	assert_int_equal(c.sender_share, 0);
	assert_int_equal(c.catch_up_seconds, 1);
	assert_int_equal(c.stuck_ms, 100);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, quiet), -1);
	config_clear(&c);
}

/* The cluster's options: off by default, edges, and out of range. */
static void
test_config_cluster_options(void **state)
{
	const char *none[] = {"beep-signal"};
	const char *lo[] = {"beep-signal", "--redis-url", "unix:///r.sock",
	    "--cluster-ttl", "1", "--redis-timeout", "10"};
	const char *hi[] = {
	    "beep-signal", "--cluster-ttl", "3600", "--redis-timeout", "60000"};
	const char *ttl0[] = {"beep-signal", "--cluster-ttl", "0"};
	const char *wait9[] = {"beep-signal", "--redis-timeout", "9"};
	const char *wait_big[] = {"beep-signal", "--redis-timeout", "60001"};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 1, none), 0);
	assert_string_equal(c.redis_url, "");
	assert_int_equal(c.cluster_ttl, 15);
	assert_int_equal(c.redis_timeout, 2000);
	config_clear(&c);
	assert_int_equal(parse(&c, 7, lo), 0);
	assert_string_equal(c.redis_url, "unix:///r.sock");
	assert_int_equal(c.cluster_ttl, 1);
	assert_int_equal(c.redis_timeout, 10);
	config_clear(&c);
	assert_int_equal(parse(&c, 5, hi), 0);
	assert_int_equal(c.cluster_ttl, 3600);
	assert_int_equal(c.redis_timeout, 60000);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, ttl0), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, wait9), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, wait_big), -1);
	config_clear(&c);
}

/* BEEP_MAX_TOKEN and BEEP_MAX_STREAMS_PER_ADDRESS: defaults and edges. */
static void
test_config_token_and_address_limits(void **state)
{
	const char *none[] = {"beep-signal"};
	const char *edges[] = {"beep-signal", "--max-token", "256",
	    "--max-streams-per-address", "0"};
	const char *small[] = {"beep-signal", "--max-token", "255"};
	/* A worker's stack holds what libjwt puts on it for this much. */
	const char *most[] = {"beep-signal", "--max-token", "32768"};
	const char *big[] = {"beep-signal", "--max-token", "32769"};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 1, none), 0);
	assert_int_equal(c.max_token, 8192);
	assert_int_equal(c.max_streams_per_address, 256);
	config_clear(&c);
	assert_int_equal(parse(&c, 5, edges), 0);
	assert_int_equal(c.max_token, 256);
	assert_int_equal(c.max_streams_per_address, 0);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, small), -1);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, most), 0);
	assert_int_equal(c.max_token, 32768);
	config_clear(&c);
	assert_int_equal(parse(&c, 3, big), -1);
	config_clear(&c);
}

/* Write len bytes to a new temporary file; returns its path (static). */
static const char *
write_file_n(const char *text, size_t len)
{
	static char path[] = "/tmp/beep-test-config-XXXXXX";
	int fd;

	strcpy(path, "/tmp/beep-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static const char *
write_file(const char *text)
{
	return write_file_n(text, strlen(text));
}

/* flag > environment > file > default, for the same and other keys. */
static void
test_config_file_precedence(void **state)
{
	const char *path = write_file("\xEF\xBB\xBF# a comment, after a BOM\n"
	                              "\n"
	                              "  keepalive = 7\n"
	                              "max-body=2048\n"
	                              "max-id = 99\r\n"
	                              "cors-origins = \"https://a.example\"\n"
	                              "log-format = json\n"
	                              "jwt-secret = \"a # quoted\"\n"
	                              "jwt-audience = a#b\n");
	const char *argv[] = {"beep-signal", "--config", path, "--max-id", "5"};
	struct config c;

	(void)state;
	setenv("BEEP_MAX_BODY", "4096", 1);
	assert_int_equal(parse(&c, 5, argv), 0);
	assert_int_equal(c.keepalive, 7);   /* the file over the default */
	assert_int_equal(c.max_body, 4096); /* the environment over it */
	assert_int_equal(c.max_id, 5);      /* the flag over the file */
	assert_string_equal(c.cors_origins, "https://a.example");
	assert_string_equal(c.log_format, "json");
	assert_string_equal(c.jwt_secret, "a # quoted");
	assert_string_equal(c.jwt_audience, "a#b");
	assert_int_equal(c.max_streams, 10000); /* the default */
	config_clear(&c);
	unsetenv("BEEP_MAX_BODY");
	/* BEEP_CONFIG names the file when no --config does. */
	setenv("BEEP_CONFIG", path, 1);
	assert_int_equal(parse(&c, 1, argv), 0);
	assert_int_equal(c.keepalive, 7);
	config_clear(&c);
	unsetenv("BEEP_CONFIG");
	unlink(path);
}

static void
test_config_file_refusals(void **state)
{
	static const char *bad[] = {
	    "no-such-key = 1\n",
	    /* A byte order mark is skipped on the first line only. */
	    "keepalive = 3\n\xEF\xBB\xBFmax-id = 9\n",
	    "keepalive = 0\n",
	    "keepalive\n",
	    "keepalive = 3\nkeepalive = 4\n",
	    "--keepalive = 3\n",
	    "log-format = xml\n",
	    "metrics-allow = 10.0.0.0/33\n",
	    /* The whole secret, silently: comments take their own line. */
	    "jwt-secret = s3cret # rotate\n",
	    "jwt-secret = s3cret\t# rotate\n",
	    "jwt-secret = # set before going live\n",
	    "jwt-secret = \"\n",
	    "jwt-secret = \"s3cret\n",
	    /*
	     * CR line ends (an old Mac editor's): one line, whose first
	     * value would take in every line after it, silently.
	     */
	    "jwt-audience = a\rjwt-secret = s3cret\r",
	};
	const char *missing[] = {"beep-signal", "--config", "/nonexistent/x"};
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = write_file(bad[i]);
		const char *argv[] = {"beep-signal", "--config", path};

		if (parse(&c, 3, argv) != -1)
			fail_msg("accepted: %s", bad[i]);
		config_clear(&c);
		unlink(path);
	}
	assert_int_equal(parse(&c, 3, missing), -1);
	config_clear(&c);
	/* A NUL ended the line there: the secret "s3", silently. */
	{
		static const char nul[] = "jwt-secret = s3\0cret\n";
		const char *path = write_file_n(nul, sizeof(nul) - 1);
		const char *argv[] = {"beep-signal", "--config", path};

		assert_int_equal(parse(&c, 3, argv), -1);
		config_clear(&c);
		unlink(path);
	}
}

/*
 * What --print-config writes, the file reads back as it was: a value the
 * file would refuse or change unquoted ('#' after a space, a quote at
 * either end, a space at either end) is written quoted.
 */
static void
test_config_print_reads_back(void **state)
{
	static const char *secrets[] = {"s3cret # rotate", "\"s3cret",
	    "s3cret\"", "\"s3cret\"", " s3cret ", "a#b", "#s3cret", "s3\rcret",
	    "s3cret\r"};
	const char *env[] = {"beep-signal"};

	(void)state;
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		struct config c;
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		const char *path;
		const char *argv[] = {"beep-signal", "--config", NULL};

		assert_non_null(f);
		setenv("BEEP_JWT_SECRET", secrets[i], 1);
		assert_int_equal(parse(&c, 1, env), 0);
		config_print(f, &c);
		fclose(f);
		config_clear(&c);
		unsetenv("BEEP_JWT_SECRET");
		path = write_file(text);
		free(text);
		argv[2] = path;
		if (parse(&c, 3, argv) != 0)
			fail_msg("not read back: '%s'", secrets[i]);
		assert_string_equal(c.jwt_secret, secrets[i]);
		config_clear(&c);
		unlink(path);
	}
}

static void
test_config_new_options(void **state)
{
	const char *none[] = {"beep-signal"};
	const char *set[] = {"beep-signal", "--metrics-allow",
	    "10.0.0.0/8, ::1", "--log-format", "json"};
	const char *bad[] = {"beep-signal", "--metrics-allow", "10.0.0.0/8,"};
	struct config c;

	(void)state;
	assert_int_equal(parse(&c, 1, none), 0);
	assert_string_equal(c.metrics_allow, "127.0.0.0/8,::1");
	assert_string_equal(c.log_format, "text");
	config_clear(&c);
	assert_int_equal(parse(&c, 5, set), 0);
	assert_string_equal(c.metrics_allow, "10.0.0.0/8, ::1");
	config_clear(&c);
	assert_int_equal(parse(&c, 3, bad), -1);
	config_clear(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_defaults),
	    cmocka_unit_test(test_config_replay_bytes_not_below_max_body),
	    cmocka_unit_test(test_config_env_then_flags),
	    cmocka_unit_test(test_config_registry_limits),
	    cmocka_unit_test(test_config_refusals),
	    cmocka_unit_test(test_config_limits_at_edges),
	    cmocka_unit_test(test_config_token_and_address_limits),
	    cmocka_unit_test(test_config_file_precedence),
	    cmocka_unit_test(test_config_file_refusals),
	    cmocka_unit_test(test_config_print_reads_back),
	    cmocka_unit_test(test_config_new_options),
	    cmocka_unit_test(test_config_cluster_options),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
