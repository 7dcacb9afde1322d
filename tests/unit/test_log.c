/*
 * Unit tests for log: text and JSON lines, read back from a pipe put in
 * place of stderr.  JSON lines are checked with jansson: every line must
 * parse, whatever the message holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/socket.h>
#include <unistd.h>

#include "filter.h"
#include "log.h"

#define LOG_MODULE "test"

/* Run the write with stderr going to a pipe; return what was written. */
static char *
capture(enum log_format format, const char *msg)
{
	static char out[4 * LOG_LINE_MAX];
	int fds[2], saved;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	log_set_format(format);
	log_info("%s", msg);
	log_debug("not shown at the default level");
	log_set_format(LOG_FORMAT_TEXT);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
	return out;
}

/*
 * Fails unless line is valid UTF-8 (RFC 3629: no overlong form, no
 * surrogate, nothing past U+10FFFF) with no C1 control (U+0080 to
 * U+009F) raw in it: neither the character (C2 80 to C2 9F) nor a lone
 * byte 80 to 9F, the 8-bit CSI (9B) of some terminals among them.
 */
static void
assert_no_raw_c1(const char *line)
{
	const unsigned char *p = (const unsigned char *)line;

	while (*p != '\0') {
		size_t want = *p < 0x80 ? 1
		    : *p >= 0xf0        ? 4
		    : *p >= 0xe0        ? 3
		                        : 2;
		unsigned char lo = *p == 0xe0 ? 0xa0 : *p == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = *p == 0xed ? 0x9f : *p == 0xf4 ? 0x8f : 0xbf;

		if (want > 1 &&
		    (*p < 0xc2 || *p > 0xf4 || p[1] < lo || p[1] > hi))
			fail_msg("byte %#x not UTF-8 at offset %td in %s", *p,
			    (const char *)p - line, line);
		for (size_t i = 2; i < want; i++)
			if ((p[i] & 0xc0) != 0x80)
				fail_msg("byte %#x not UTF-8 at offset %td in "
				         "%s",
				    *p, (const char *)p - line, line);
		if (p[0] == 0xc2 && p[1] <= 0x9f)
			fail_msg("C1 control U+00%02X raw in %s", p[1], line);
		p += want;
	}
}

/* Fails unless line is JSON whose "message" reads back as msg. */
static void
assert_json_message(const char *line, const char *msg)
{
	json_error_t err;
	json_t *doc = json_loads(line, 0, &err);

	if (doc == NULL)
		fail_msg("not JSON: %s (%s)", line, err.text);
	assert_string_equal(
	    json_string_value(json_object_get(doc, "message")), msg);
	json_decref(doc);
}

/* msg[0..size): lead letters, then U+009B (C2 9B) to the end. */
static void
fill_c1(char *msg, size_t size, size_t lead)
{
	size_t n = lead;

	memset(msg, 'a', lead);
	while (n + 2 < size) {
		memcpy(msg + n, "\xc2\x9b", 2);
		n += 2;
	}
	msg[n] = '\0';
}

static void
test_log_text(void **state)
{
	char *line;

	(void)state;
	line = capture(LOG_FORMAT_TEXT, "ready on unix:/x");
	assert_non_null(strstr(line, "Z info test: ready on unix:/x\n"));
	assert_int_equal(strchr(line, '\n')[1], '\0');
}

/*
 * A message with text the service did not write (a configuration value,
 * a path, an answer from Redis) holding a line break, a carriage return
 * or a terminal escape is one line still, with none of them raw: a text
 * line is what journald, a terminal and grep see, and a value with a line
 * break wrote a second line that looked like the service's own.
 */
static void
test_log_text_controls(void **state)
{
	char *line;

	(void)state;
	line = capture(LOG_FORMAT_TEXT,
	    "bind /x\n2026-01-01T00:00:00.000Z error main: forged\r"
	    "\x1b[2K\x1b]0;t\x07 del \x7f tab \t end");
	assert_int_equal(strchr(line, '\n')[1], '\0');
	for (const char *p = line; *p != '\n'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fail_msg("control byte %#x in %s", *p, line);
	assert_non_null(strstr(line,
	    "Z info test: bind /x\\n2026-01-01T00:00:00.000Z error main: "
	    "forged\\r\\x1b[2K\\x1b]0;t\\x07 del \\x7f tab \\t end\n"));
}

/*
 * U+2028, U+2029 and U+0085 (NEL) end a line for a reader that splits on
 * Unicode line breaks (Python's str.splitlines, some log shippers), and a
 * client id may hold them: each is written as the escapes of its bytes,
 * as a C0 control is, so the line is one line for such a reader too.
 */
static void
test_log_text_unicode_breaks(void **state)
{
	char *line;

	(void)state;
	line = capture(LOG_FORMAT_TEXT,
	    "id a\xe2\x80\xa8"
	    "b\xe2\x80\xa9"
	    "c\xc2\x85"
	    "d \xe2\x80\xa7 "
	    "\xc2\xa0 end");
	assert_null(strstr(line, "\xe2\x80\xa8"));
	assert_null(strstr(line, "\xe2\x80\xa9"));
	assert_null(strstr(line, "\xc2\x85"));
	/* Its neighbours (U+2027, U+00A0) are no line break: kept as they are. */
	assert_non_null(strstr(line,
	    "Z info test: id a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9c\\xc2\\x85d "
	    "\xe2\x80\xa7 \xc2\xa0 end\n"));
}

/*
 * The C1 controls, U+0080 to U+009F (C2 80 to C2 9F): some terminals act
 * on them in UTF-8 too (U+009B is the 8-bit CSI, U+009D OSC), so one in
 * client text (a header, a path, a token) would drive the terminal that
 * shows the line (journalctl, tail).  Each is written as the escapes of
 * its bytes, as U+0085 and a C0 control are; U+00A0, the next character,
 * is no control and is kept as it is.
 */
static void
test_log_text_c1(void **state)
{
	char msg[256], want[512];
	size_t n, w;
	char *line;

	(void)state;
	line = capture(LOG_FORMAT_TEXT,
	    "ua \xc2\x9b"
	    "2K \xc2\x9d"
	    "0;t\xc2\x9c nbsp \xc2\xa0 end");
	assert_non_null(strstr(line,
	    "Z info test: ua \\xc2\\x9b2K \\xc2\\x9d0;t\\xc2\\x9c nbsp "
	    "\xc2\xa0 end\n"));
	/* Every one of them, and none left raw. */
	n = (size_t)snprintf(msg, sizeof(msg), "all ");
	w = (size_t)snprintf(want, sizeof(want), "Z info test: all ");
	for (unsigned c = 0x80; c <= 0x9f; c++) {
		msg[n++] = '\xc2';
		msg[n++] = (char)c;
		w += (size_t)snprintf(
		    want + w, sizeof(want) - w, "\\xc2\\x%02x", c);
	}
	snprintf(msg + n, sizeof(msg) - n, " \xc2\xa0 end");
	snprintf(want + w, sizeof(want) - w, " \xc2\xa0 end\n");
	line = capture(LOG_FORMAT_TEXT, msg);
	assert_no_raw_c1(line);
	assert_non_null(strstr(line, want));
}

/*
 * Bytes that are not UTF-8 (from a client's header, a path, an answer
 * from Redis): a lone byte 80 to 9F is a C1 control to a terminal that
 * reads bytes as Latin-1 or ISO 2022 (9B the 8-bit CSI), and a line
 * holding one is no UTF-8 to a strict reader of the journal.  Each byte
 * of what is not UTF-8 is written \xHH, as a JSON line writes U+FFFD, so
 * a text line is always valid UTF-8; valid non-ASCII UTF-8 (U+00A0,
 * U+00E9, U+20AC, U+1F600) is kept as it is.
 */
static void
test_log_text_invalid_utf8(void **state)
{
	static const struct {
		const char *msg, *want;
	} cases[] = {
	    {"csi \x9b"
	     "2J osc \x9d"
	     "0;t\x9c nel \x85 end",
	        "csi \\x9b2J osc \\x9d0;t\\x9c nel \\x85 end\n"},
	    {"high \xa0 \xff \xfe \xc0\xaf \xc1\xbf end",
	        "high \\xa0 \\xff \\xfe \\xc0\\xaf \\xc1\\xbf end\n"},
	    /* A sequence cut short, mid-message and at its end. */
	    {"cut \xc3 \xe2\x82 \xf0\x9f\x98 end \xe2\x82",
	        "cut \\xc3 \\xe2\\x82 \\xf0\\x9f\\x98 end \\xe2\\x82\n"},
	    /* Shaped like UTF-8, forbidden by it (as in the JSON case). */
	    {"overlong \xe0\x80\xaf surrogate \xed\xa0\x80 past "
	     "\xf4\x90\x80\x80 f5 \xf5\x80 end",
	        "overlong \\xe0\\x80\\xaf surrogate \\xed\\xa0\\x80 past "
	        "\\xf4\\x90\\x80\\x80 f5 \\xf5\\x80 end\n"},
	    /* Valid UTF-8 around them stays as it is. */
	    {"ok \xc2\xa0\xc3\xa9\x9b\xe2\x82\xac\x80\xf0\x9f\x98\x80 end",
	        "ok \xc2\xa0\xc3\xa9\\x9b\xe2\x82\xac\\x80"
	        "\xf0\x9f\x98\x80 end\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line = capture(LOG_FORMAT_TEXT, cases[i].msg);
		const char *p = strstr(line, "Z info test: ");

		assert_no_raw_c1(line);
		assert_non_null(p);
		assert_string_equal(p + 13, cases[i].want);
	}
}

/*
 * A long message of lone 9B bytes is cut between escapes (\x9b, four
 * bytes), at every alignment against the line's prefix, and the line is
 * valid UTF-8 with no raw C1.
 */
static void
test_log_text_long_invalid(void **state)
{
	char msg[2 * LOG_LINE_MAX];

	(void)state;
	for (size_t lead = 0; lead < 4; lead++) {
		const char *p;
		char *line;

		memset(msg, 'a', lead);
		memset(msg + lead, '\x9b', sizeof(msg) - 1 - lead);
		msg[sizeof(msg) - 1] = '\0';
		line = capture(LOG_FORMAT_TEXT, msg);
		assert_true(strlen(line) <= LOG_LINE_MAX);
		assert_no_raw_c1(line);
		p = strstr(line, "test: ");
		assert_non_null(p);
		assert_true(strlen(p) > 6 + lead + 4 * 100);
		for (p += 6 + lead; *p != '\n'; p += 4)
			if (strncmp(p, "\\x9b", 4) != 0)
				fail_msg("lead %zu: not a whole escape at %s",
				    lead, p);
	}
}

/*
 * A long message of C1 controls is cut between escapes: each is eight
 * bytes written (\xc2\x9b), and the line ends on a whole one, at every
 * alignment against the line's prefix.
 */
static void
test_log_text_long_c1(void **state)
{
	char msg[2 * LOG_LINE_MAX];

	(void)state;
	for (size_t lead = 0; lead < 8; lead++) {
		const char *p;
		char *line;

		fill_c1(msg, sizeof(msg), lead);
		line = capture(LOG_FORMAT_TEXT, msg);
		assert_true(strlen(line) <= LOG_LINE_MAX);
		p = strstr(line, "test: ");
		assert_non_null(p);
		for (p += 6 + lead; *p != '\n'; p += 8)
			if (strncmp(p, "\\xc2\\x9b", 8) != 0)
				fail_msg("lead %zu: not a whole escape at %s",
				    lead, p);
	}
}

/* A long message of escapes is cut whole, within a line. */
static void
test_log_text_long(void **state)
{
	char msg[LOG_LINE_MAX];
	char *line;
	size_t len;

	(void)state;
	memset(msg, '\n', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	line = capture(LOG_FORMAT_TEXT, msg);
	len = strlen(line);
	assert_true(len <= LOG_LINE_MAX);
	assert_int_equal(strchr(line, '\n') - line, len - 1);
	/* Escapes whole: an even count of backslash-n pairs ends it. */
	assert_true(len >= 3 && line[len - 3] == '\\' && line[len - 2] == 'n');
}

/*
 * A long message of multi-byte characters is cut between characters: a
 * line that ends inside one is not UTF-8, and a strict reader of the
 * journal (or of a copy of the text lines) shows it as garbage or refuses
 * the line.  Each width at each alignment against the line's prefix.
 */
static void
test_log_text_long_utf8(void **state)
{
	static const char *chars[] = {
	    "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	char msg[2 * LOG_LINE_MAX];

	(void)state;
	for (size_t c = 0; c < 3; c++)
		for (size_t lead = 0; lead < 4; lead++) {
			size_t w = strlen(chars[c]), n = lead;
			const unsigned char *p;
			char *line;

			memset(msg, 'a', lead);
			while (n + w < sizeof(msg)) {
				memcpy(msg + n, chars[c], w);
				n += w;
			}
			msg[n] = '\0';
			line = capture(LOG_FORMAT_TEXT, msg);
			assert_true(strlen(line) <= LOG_LINE_MAX);
			p = (const unsigned char *)strstr(line, "test: ");
			assert_non_null(p);
			for (p += 6 + lead; *p != '\n'; p += w)
				if (memcmp(p, chars[c], w) != 0)
					fail_msg("width %zu, lead %zu: cut "
					         "inside a character",
					    w, lead);
		}
}

static void
test_log_json(void **state)
{
	static const char *msgs[] = {
	    "plain",
	    "quote \" backslash \\ tab \t newline \n cr \r",
	    "control \x01\x1f del \x7f",
	    "utf-8 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	    "broken \xc3 \xff \xe2\x82 end",
	};
	json_error_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		char *line = capture(LOG_FORMAT_JSON, msgs[i]);
		size_t len = strlen(line);
		json_t *doc;

		assert_true(len > 0 && line[len - 1] == '\n');
		assert_null(memchr(line, '\n', len - 1));
		doc = json_loads(line, 0, &err);
		if (doc == NULL)
			fail_msg("not JSON: %s (%s)", line, err.text);
		assert_string_equal(
		    json_string_value(json_object_get(doc, "level")), "info");
		assert_string_equal(
		    json_string_value(json_object_get(doc, "module")), "test");
		assert_non_null(strchr(
		    json_string_value(json_object_get(doc, "time")), 'T'));
		if (i < 4)
			assert_string_equal(
			    json_string_value(json_object_get(doc, "message")),
			    msgs[i]);
		else
			assert_non_null(strstr(
			    json_string_value(json_object_get(doc, "message")),
			    "broken \xef\xbf\xbd"));
		json_decref(doc);
	}
}

/*
 * The same three in a JSON line: JSON lets them through raw, but a reader
 * that splits on Unicode line breaks splits the line there and parses
 * neither half.  Each is written \u2028, \u2029, \u0085, and the message
 * reads back as it was.
 */
static void
test_log_json_unicode_breaks(void **state)
{
	static const char msg[] = "id a\xe2\x80\xa8"
	                          "b\xe2\x80\xa9"
	                          "c\xc2\x85"
	                          "d \xe2\x80\xa7 \xc2\xa0 end";
	char *line;

	(void)state;
	line = capture(LOG_FORMAT_JSON, msg);
	assert_null(strstr(line, "\xe2\x80\xa8"));
	assert_null(strstr(line, "\xe2\x80\xa9"));
	assert_null(strstr(line, "\xc2\x85"));
	assert_non_null(strstr(line,
	    "\"message\":\"id a\\u2028b\\u2029c\\u0085d \xe2\x80\xa7 "
	    "\xc2\xa0 end\"}\n"));
	assert_json_message(line, msg);
}

/*
 * The C1 controls in a JSON line: JSON lets them through raw, and a JSON
 * line is shown in a terminal too.  Each is written \u0080 to \u009f, and
 * the message reads back as it was; U+00A0 is kept as it is.
 */
static void
test_log_json_c1(void **state)
{
	char msg[256];
	size_t n;
	char *line;

	(void)state;
	line = capture(LOG_FORMAT_JSON,
	    "ua \xc2\x9b"
	    "2K \xc2\x9d"
	    "0;t\xc2\x9c nbsp \xc2\xa0 end");
	assert_non_null(strstr(line,
	    "\"message\":\"ua \\u009b2K \\u009d0;t\\u009c nbsp \xc2\xa0 "
	    "end\"}\n"));
	n = (size_t)snprintf(msg, sizeof(msg), "all ");
	for (unsigned c = 0x80; c <= 0x9f; c++) {
		msg[n++] = '\xc2';
		msg[n++] = (char)c;
	}
	snprintf(msg + n, sizeof(msg) - n, " \xc2\xa0 end");
	line = capture(LOG_FORMAT_JSON, msg);
	assert_no_raw_c1(line);
	assert_non_null(strstr(line, "\\u0080\\u0081"));
	assert_non_null(strstr(line, "\\u009e\\u009f \xc2\xa0 end\"}\n"));
	assert_json_message(line, msg);
}

/*
 * A long message of C1 controls in a JSON line: cut between escapes
 * (\u009b, six bytes), at every alignment, and the line parses.
 */
static void
test_log_json_long_c1(void **state)
{
	char msg[2 * LOG_LINE_MAX];

	(void)state;
	for (size_t lead = 0; lead < 6; lead++) {
		const char *m;
		char *line;
		json_t *doc;

		fill_c1(msg, sizeof(msg), lead);
		line = capture(LOG_FORMAT_JSON, msg);
		assert_true(strlen(line) <= LOG_LINE_MAX);
		assert_null(strstr(line, "\xc2\x9b"));
		doc = json_loads(line, 0, NULL);
		if (doc == NULL)
			fail_msg("lead %zu: not JSON: %s", lead, line);
		m = json_string_value(json_object_get(doc, "message"));
		assert_true(strlen(m) > lead + 2 * 100);
		assert_memory_equal(m, msg, strlen(m));
		json_decref(doc);
	}
}

/*
 * Byte sequences shaped like UTF-8 that UTF-8 forbids (RFC 3629): an
 * overlong form, a UTF-16 surrogate, a code point past U+10FFFF.  A
 * strict reader (jansson here; serde_json, Python's decoder) refuses the
 * whole line when one is copied through, so each must become U+FFFD.
 */
static void
test_log_json_forbidden_utf8(void **state)
{
	static const char *msgs[] = {
	    "overlong 3 \xe0\x80\xaf end",
	    "overlong 4 \xf0\x80\x80\xaf end",
	    "surrogate \xed\xa0\x80 end",
	    "past U+10FFFF \xf4\x90\x80\x80 end",
	    "lead f5 \xf5\x80\x80\x80 end",
	};
	json_error_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		char *line = capture(LOG_FORMAT_JSON, msgs[i]);
		const char *m;
		json_t *doc = json_loads(line, 0, &err);

		if (doc == NULL)
			fail_msg("not JSON: %s (%s)", line, err.text);
		m = json_string_value(json_object_get(doc, "message"));
		assert_non_null(strstr(m, " \xef\xbf\xbd"));
		assert_non_null(strstr(m, " end"));
		json_decref(doc);
	}
}

/* A message longer than a line is cut, and the line is still JSON. */
static void
test_log_json_long(void **state)
{
	char msg[3 * LOG_LINE_MAX];
	json_t *doc;
	char *line;

	(void)state;
	memset(msg, '"', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	line = capture(LOG_FORMAT_JSON, msg);
	assert_true(strlen(line) <= LOG_LINE_MAX);
	doc = json_loads(line, 0, NULL);
	assert_non_null(doc);
	json_decref(doc);
	assert_int_equal(log_format_parse("json"), LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("text"), LOG_FORMAT_TEXT);
	assert_int_equal(log_format_parse("xml"), -1);
}

/*
 * A line traffic can repeat: the first goes, the next within LOG_LIMIT_MS
 * are held back and counted, and the first after it says how many.
 */
static void
test_log_limit(void **state)
{
	struct log_limit l = {0};
	uint64_t held = 99;

	(void)state;
	assert_true(log_limit_pass(&l, 5000, &held));
	assert_int_equal(held, 0);
	for (int i = 0; i < 3; i++)
		assert_false(
		    log_limit_pass(&l, 5000 + LOG_LIMIT_MS - 1, &held));
	assert_true(log_limit_pass(&l, 5000 + LOG_LIMIT_MS, &held));
	assert_int_equal(held, 3);
	assert_false(log_limit_pass(&l, 5000 + LOG_LIMIT_MS, &held));
	assert_true(log_limit_pass(&l, 5000 + 5 * LOG_LIMIT_MS, &held));
	assert_int_equal(held, 1);
	/* A clock read before that pass, by another thread: held back. */
	assert_false(log_limit_pass(&l, 5000 + 5 * LOG_LIMIT_MS - 1, &held));
}

/* What log_limit_sweep(now_ms, all) writes, read back from a pipe. */
static char *
sweep_says(uint64_t now_ms, bool all)
{
	static char out[4 * LOG_LINE_MAX];
	int fds[2], saved;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	log_limit_sweep(now_ms, all);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

/*
 * Those held back after a kind's last line are told once LOG_LIMIT_MS has
 * passed since it, at the kind's level, once: a burst that ends is told
 * whole, not as one line that says "(0 more not logged)".  The summary
 * takes the window as a line would; at the stop (all), whatever the time.
 * An error kind's summary is a warning: no new error.
 */
static void
test_log_limit_sweep(void **state)
{
	static struct log_limit l = LOG_LIMIT(LOG_WARN, "a kind of line");
	static struct log_limit e = LOG_LIMIT(LOG_ERROR, "an error");
	uint64_t held = 99;

	(void)state;
	assert_true(log_limit_pass(&l, 5000, &held));
	for (int i = 0; i < 3; i++)
		assert_false(log_limit_pass(&l, 5100, &held));
	/* Within the window: not yet. */
	assert_string_equal(sweep_says(5000 + LOG_LIMIT_MS - 1, false), "");
	assert_non_null(strstr(sweep_says(5000 + LOG_LIMIT_MS, false),
	    "Z warn test: 3 more not logged in the last 1 s: a kind of "
	    "line\n"));
	/* Told once. */
	assert_string_equal(sweep_says(5000 + 3 * LOG_LIMIT_MS, false), "");
	/* The summary took the window: the next one is held back... */
	assert_false(log_limit_pass(&l, 5000 + LOG_LIMIT_MS + 1, &held));
	/* ...and told at the stop, though its window has not ended. */
	assert_non_null(strstr(sweep_says(5000 + LOG_LIMIT_MS + 2, true),
	    "Z warn test: 1 more not logged in the last 1 s: a kind of "
	    "line\n"));
	assert_string_equal(sweep_says(5000 + LOG_LIMIT_MS + 3, true), "");
	/* A line let through after it says none held back. */
	assert_true(log_limit_pass(&l, 5000 + 2 * LOG_LIMIT_MS + 2, &held));
	assert_int_equal(held, 0);
	/* An error kind's count: at warn (the first was the error). */
	assert_true(log_limit_pass(&e, 9000, &held));
	assert_false(log_limit_pass(&e, 9001, &held));
	assert_non_null(strstr(sweep_says(9000 + LOG_LIMIT_MS, false),
	    "Z warn test: 1 more not logged in the last 1 s: an error\n"));
}

/*
 * stderr whose reader has stalled (journald's stream socket, a pipe to a
 * logger that hangs): a log line never blocks the thread that writes it,
 * which may hold a lock others wait on (the cluster's, the server's).
 * The lines that did not fit are counted, and the next line that fits
 * says how many.  fd[0] is the reader's end; pipe or socket pair.
 */
static void
stalled_reader(int fd[2])
{
	char buf[4096], all[1 << 16];
	size_t got = 0;
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	dup2(fd[1], STDERR_FILENO);
	/* A write that blocks ends the test here (SIGALRM), not hangs it. */
	alarm(20);
	for (int i = 0; i < 20000; i++)
		log_warn("line %d, while no one reads: %0500d", i, 0);
	alarm(0);
	/* The reader reads again. */
	fcntl(fd[0], F_SETFL, fcntl(fd[0], F_GETFL) | O_NONBLOCK);
	while (read(fd[0], buf, sizeof(buf)) > 0)
		continue;
	log_warn("after");
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd[1]);
	while (got < sizeof(all) - 1 &&
	    (n = read(fd[0], all + got, sizeof(all) - 1 - got)) > 0)
		got += (size_t)n;
	all[got] = '\0';
	close(fd[0]);
	assert_non_null(strstr(all, "log lines dropped"));
	assert_non_null(strstr(all, ": after\n"));
}

static void
test_log_stalled_socket(void **state)
{
	int fd[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	stalled_reader(fd);
}

static void
test_log_stalled_pipe(void **state)
{
	int fd[2];

	(void)state;
	assert_int_equal(pipe(fd), 0);
	stalled_reader(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_text),
	    cmocka_unit_test(test_log_text_controls),
	    cmocka_unit_test(test_log_text_unicode_breaks),
	    cmocka_unit_test(test_log_text_c1),
	    cmocka_unit_test(test_log_text_invalid_utf8),
	    cmocka_unit_test(test_log_text_long_invalid),
	    cmocka_unit_test(test_log_text_long_c1),
	    cmocka_unit_test(test_log_text_long),
	    cmocka_unit_test(test_log_text_long_utf8),
	    cmocka_unit_test(test_log_json),
	    cmocka_unit_test(test_log_json_unicode_breaks),
	    cmocka_unit_test(test_log_json_c1),
	    cmocka_unit_test(test_log_json_long_c1),
	    cmocka_unit_test(test_log_json_forbidden_utf8),
	    cmocka_unit_test(test_log_json_long),
	    cmocka_unit_test(test_log_limit),
	    cmocka_unit_test(test_log_limit_sweep),
	    cmocka_unit_test(test_log_stalled_socket),
	    cmocka_unit_test(test_log_stalled_pipe),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
