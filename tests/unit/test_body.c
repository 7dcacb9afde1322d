/* Unit tests for body: JSON and form decoding, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"

#define JSON "application/json"
#define FORM "application/x-www-form-urlencoded"

static const struct {
	const char *ct;
	const char *body;
	enum http_status status;
	const char *data;
	const char *event;
} body_cases[] = {
    {JSON, "{\"data\":\"hi\"}", HTTP_200, "hi", NULL},
    {JSON "; charset=utf-8", "{\"data\":\"a\\nb\"}", HTTP_200, "a\nb", NULL},
    {JSON, "{\"data\":{\"sdp\":\"v=0\",\"n\":[1,2]}}", HTTP_200,
        "{\"sdp\":\"v=0\",\"n\":[1,2]}", NULL},
    {JSON, "{\"data\":42}", HTTP_200, "42", NULL},
    {JSON, "{\"data\":false}", HTTP_200, "false", NULL},
    {JSON, "{\"data\":[]}", HTTP_200, "[]", NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"ice.candidate-1_\"}", HTTP_200, "x",
        "ice.candidate-1_"},
    {JSON, "{\"data\":\"x\",\"event\":null}", HTTP_200, "x", NULL},
    {JSON, "{\"data\":\"\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":null}", HTTP_400, NULL, NULL},
    {JSON, "{}", HTTP_400, NULL, NULL},
    {JSON, "[1]", HTTP_400, NULL, NULL},
    {JSON, "\"data\"", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":", HTTP_400, NULL, NULL},
    {JSON, "", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"bad event\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"a\\nb\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":\"\"}", HTTP_400, NULL, NULL},
    {JSON, "{\"data\":\"x\",\"event\":7}", HTTP_400, NULL, NULL},
    {FORM, "data=hello+world", HTTP_200, "hello world", NULL},
    {FORM, "event=answer&data=a%0D%0Ab", HTTP_200, "a\r\nb", "answer"},
    {FORM, "data=first&data=second", HTTP_200, "first", NULL},
    {FORM, "x=1&data=caf%C3%A9&y", HTTP_200, "caf\xc3\xa9", NULL},
    {FORM, "data=", HTTP_400, NULL, NULL},
    {FORM, "data", HTTP_400, NULL, NULL},
    {FORM, "other=1", HTTP_400, NULL, NULL},
    {FORM, "data=%C3%28", HTTP_400, NULL, NULL},
    {FORM, "data=%zz", HTTP_400, NULL, NULL},
    {FORM, "data=x&event=no%20spaces", HTTP_400, NULL, NULL},
    {"text/plain", "data=x", HTTP_415, NULL, NULL},
    {NULL, "{\"data\":\"x\"}", HTTP_415, NULL, NULL},
    {"application/jsonx", "{\"data\":\"x\"}", HTTP_415, NULL, NULL},
};

static void
test_body_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]);
	     i++) {
		struct body_msg m;
		const char *why = NULL;
		enum http_status st =
		    body_decode(body_cases[i].ct, body_cases[i].body,
		        strlen(body_cases[i].body), 32, &m, &why);

		assert_int_equal(st, body_cases[i].status);
		if (st != HTTP_200) {
			assert_non_null(why);
			assert_null(m.data);
			continue;
		}
		assert_int_equal(m.data_len, strlen(body_cases[i].data));
		assert_string_equal(m.data, body_cases[i].data);
		if (body_cases[i].event)
			assert_string_equal(m.event, body_cases[i].event);
		else
			assert_null(m.event);
		body_msg_clear(&m);
	}
}

static void
test_body_nul_in_json_string(void **state)
{
	const char *b = "{\"data\":\"a\\u0000b\"}";
	struct body_msg m;
	const char *why;

	(void)state;
	assert_int_equal(
	    body_decode(JSON, b, strlen(b), 32, &m, &why), HTTP_200);
	assert_int_equal(m.data_len, 3);
	assert_memory_equal(m.data, "a\0b", 3);
	body_msg_clear(&m);
}

/* Nesting exactly at the limit parses; one level more is refused. */
static void
test_body_depth_limit(void **state)
{
	char b[256];
	struct body_msg m;
	const char *why;
	size_t n = 0;

	(void)state;
	n += (size_t)sprintf(b + n, "{\"data\":");
	for (int i = 0; i < 3; i++)
		b[n++] = '[';
	for (int i = 0; i < 3; i++)
		b[n++] = ']';
	b[n++] = '}';
	b[n] = '\0';
	/* depth 4: the object and three arrays */
	assert_int_equal(body_decode(JSON, b, n, 4, &m, &why), HTTP_200);
	assert_string_equal(m.data, "[[[]]]");
	body_msg_clear(&m);
	assert_int_equal(body_decode(JSON, b, n, 3, &m, &why), HTTP_400);
	/* Brackets inside strings do not count. */
	strcpy(b, "{\"data\":\"[[[[[[\\\"]]]]\"}");
	assert_int_equal(
	    body_decode(JSON, b, strlen(b), 1, &m, &why), HTTP_200);
	body_msg_clear(&m);
}

static void
test_body_event_limit(void **state)
{
	char name[70];

	(void)state;
	memset(name, 'e', sizeof(name));
	assert_true(body_event_valid(name, BODY_EVENT_MAX));
	assert_false(body_event_valid(name, BODY_EVENT_MAX + 1));
	assert_false(body_event_valid(name, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_table),
	    cmocka_unit_test(test_body_nul_in_json_string),
	    cmocka_unit_test(test_body_depth_limit),
	    cmocka_unit_test(test_body_event_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
