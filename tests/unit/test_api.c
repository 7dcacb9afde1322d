/* Unit tests for api: status codes, headers and bodies, no FastCGI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "sse_parser.h"

struct fixture {
	struct config c;
	struct registry *reg;
	struct api *api;
};

static int
setup_with(void **state, const char *origins)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *argv[] = {
	    "beep-signal", "--cors-origins", origins, "--max-id", "8"};
	struct registry_limits l = {
	    .max_streams = 2, .queue_messages = 16, .grace_ms = 60000};

	if (config_parse(&f->c, 5, (char **)argv) != 0)
		return -1;
	f->reg = registry_new(&l);
	f->api = api_new(&f->c, f->reg, NULL, NULL);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(state, "*");
}

static int
setup_list(void **state)
{
	return setup_with(state, "https://a.example, https://b.example");
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	api_free(f->api);
	registry_free(f->reg);
	config_clear(&f->c);
	free(f);
	return 0;
}

static enum http_status
call(struct fixture *f, const char *method, const char *uri, const char *ct,
    const char *body, struct api_response *resp)
{
	struct api_request req = {
	    .method = method,
	    .uri = uri,
	    .content_type = ct,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	};

	memset(resp, 0, sizeof(*resp));
	api_handle(f->api, &req, resp);
	return resp->status;
}

static bool
has_header(const struct api_response *r, const char *line)
{
	return r->headers.data && strstr(r->headers.data, line) != NULL;
}

static void
test_api_statuses(void **state)
{
	static const struct {
		const char *method, *uri, *ct, *body;
		enum http_status status;
		const char *allow;
	} cases[] = {
	    {"GET", "/healthz", NULL, NULL, HTTP_200, NULL},
	    {"GET", "/user/bob/devices", NULL, NULL, HTTP_200, NULL},
	    {"GET", "/nope", NULL, NULL, HTTP_404, NULL},
	    {"PUT", "/user/bob/device/x", NULL, NULL, HTTP_405,
	        "Allow: POST, OPTIONS\r\n"},
	    {"POST", "/subscribe/bob/device/x", NULL, NULL, HTTP_405,
	        "Allow: GET, OPTIONS\r\n"},
	    {"GET", "/user/123456789/devices", NULL, NULL, HTTP_400, NULL},
	    {"GET", "/user/%41%/devices", NULL, NULL, HTTP_400, NULL},
	    {"POST", "/user/bob/device/x", "text/plain", "data=1", HTTP_415,
	        NULL},
	    {"POST", "/user/bob/device/x", "application/json", "{", HTTP_400,
	        NULL},
	    {"POST", "/user/bob/device/x", "application/json",
	        "{\"data\":\"\"}", HTTP_400, NULL},
	    {"POST", "/user/bob/device/x", "application/json",
	        "{\"data\":\"hi\"}", HTTP_404, NULL},
	    {"OPTIONS", "/user/bob/device/x", NULL, NULL, HTTP_204,
	        "Access-Control-Allow-Methods: POST, OPTIONS\r\n"},
	    {"OPTIONS", "/subscribe/bob/device/x", NULL, NULL, HTTP_204,
	        "Access-Control-Allow-Methods: GET, OPTIONS\r\n"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_response r;

		assert_int_equal(call(f, cases[i].method, cases[i].uri,
		                     cases[i].ct, cases[i].body, &r),
		    cases[i].status);
		assert_true(
		    has_header(&r, "Access-Control-Allow-Origin: *\r\n"));
		if (cases[i].allow)
			assert_true(has_header(&r, cases[i].allow));
		if (http_status_code[cases[i].status] >= 400) {
			assert_true(has_header(
			    &r, "Content-Type: application/json\r\n"));
			assert_non_null(strstr(r.body.data, "{\"error\":"));
		}
		assert_null(r.stream);
		api_response_clear(&r);
	}
}

static void
test_api_subscribe_post_list(void **state)
{
	struct fixture *f = *state;
	struct api_response sub, r;
	struct registry_batch b;
	struct sse_parser p;
	struct buf all = {0};

	assert_int_equal(
	    call(f, "GET", "/subscribe/bob/device/ph%20one", NULL, NULL, &sub),
	    HTTP_200);
	assert_non_null(sub.stream);
	assert_true(has_header(&sub, "Content-Type: text/event-stream\r\n"));
	assert_true(
	    has_header(&sub, "Cache-Control: no-cache, no-transform\r\n"));
	assert_true(has_header(&sub, "X-Accel-Buffering: no\r\n"));

	call(f, "GET", "/user/bob/devices", NULL, NULL, &r);
	assert_string_equal(r.body.data, "[\"ph one\"]");
	api_response_clear(&r);

	assert_int_equal(
	    call(f, "POST", "/user/bob/device/ph%20one", "application/json",
	        "{\"data\":\"a\\nb\",\"event\":\"offer\"}", &r),
	    HTTP_200);
	api_response_clear(&r);
	assert_int_equal(
	    call(f, "POST", "/user/bob/device/ph%20one",
	        "application/x-www-form-urlencoded", "data=x%0D%0Ay", &r),
	    HTTP_200);
	api_response_clear(&r);

	api_stream_open(f->api, &sub.start, &all);
	assert_int_equal(
	    registry_wait(f->reg, sub.stream, 0, &b), REGISTRY_MESSAGES);
	for (size_t i = 0; i < b.n; i++)
		api_stream_message(f->api, b.msgs[i], false, &all);
	registry_batch_release(&b);
	api_stream_close(&all);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.events[0].type, "offer");
	assert_string_equal(p.events[0].data.data, "a\nb");
	assert_string_equal(p.events[1].data.data, "x\ny");
	assert_int_equal(p.comments, 1);
	/* Every event has an id "<epoch>-<n>", increasing. */
	assert_true(strchr(p.events[0].id, '-') != NULL);
	assert_true(strtoull(strchr(p.events[1].id, '-') + 1, NULL, 10) >
	    strtoull(strchr(p.events[0].id, '-') + 1, NULL, 10));
	assert_true(p.retry >= 1000);
	sse_parser_free(&p);
	buf_free(&all);

	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);
	call(f, "GET", "/user/bob/devices", NULL, NULL, &r);
	assert_string_equal(r.body.data, "[]");
	api_response_clear(&r);
}

static void
test_api_full_is_503(void **state)
{
	struct fixture *f = *state;
	struct api_response a, b, c, r;

	call(f, "GET", "/subscribe/u/device/1", NULL, NULL, &a);
	call(f, "GET", "/subscribe/u/device/2", NULL, NULL, &b);
	assert_int_equal(
	    call(f, "GET", "/subscribe/u/device/3", NULL, NULL, &c), HTTP_503);
	assert_true(has_header(&c, "Retry-After: "));
	assert_null(c.stream);
	/* Posts and lists still work while full. */
	assert_int_equal(call(f, "POST", "/user/u/device/1", "application/json",
	                     "{\"data\":1}", &r),
	    HTTP_200);
	api_response_clear(&r);
	registry_unsubscribe(f->reg, a.stream);
	registry_unsubscribe(f->reg, b.stream);
	api_response_clear(&a);
	api_response_clear(&b);
	api_response_clear(&c);
}

static void
test_api_body_too_large(void **state)
{
	struct fixture *f = *state;
	struct api_request req = {.method = "POST",
	    .uri = "/user/u/device/1",
	    .content_type = "application/json",
	    .body_too_large = true};
	struct api_response r = {0};

	api_handle(f->api, &req, &r);
	assert_int_equal(r.status, HTTP_413);
	api_response_clear(&r);
}

static void
test_api_cors_list(void **state)
{
	struct fixture *f = *state;
	struct api_request req = {.method = "GET",
	    .uri = "/user/u/devices",
	    .origin = "https://b.example"};
	struct api_response r = {0};

	api_handle(f->api, &req, &r);
	assert_true(has_header(
	    &r, "Access-Control-Allow-Origin: https://b.example\r\n"));
	assert_true(has_header(&r, "Vary: Origin\r\n"));
	api_response_clear(&r);
	req.origin = "https://evil.example";
	api_handle(f->api, &req, &r);
	assert_false(has_header(&r, "Access-Control-Allow-Origin"));
	api_response_clear(&r);
	req.origin = NULL;
	api_handle(f->api, &req, &r);
	assert_false(has_header(&r, "Access-Control-Allow-Origin"));
	api_response_clear(&r);
}

/* Grace (202), ids in POST answers, and resuming by header or query. */
static void
test_api_replay(void **state)
{
	struct fixture *f = *state;
	struct api_request req = {
	    .method = "GET", .uri = "/subscribe/u/device/d"};
	struct api_response sub = {0}, r;
	struct registry_batch b;
	struct sse_parser p;
	struct buf all = {0};
	char first[64], uri[128];

	assert_int_equal(
	    call(f, "GET", "/subscribe/u/device/d", NULL, NULL, &sub),
	    HTTP_200);
	assert_int_equal(call(f, "POST", "/user/u/device/d", "application/json",
	                     "{\"data\":\"one\"}", &r),
	    HTTP_200);
	/* {"id":"<epoch>-<n>"} */
	assert_int_equal(
	    sscanf(r.body.data, "{\"id\":\"%63[0-9-]\"}", first), 1);
	api_response_clear(&r);
	registry_wait(f->reg, sub.stream, 0, &b);
	registry_batch_release(&b);
	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);

	/* Away, within grace: 202, held. */
	assert_int_equal(call(f, "POST", "/user/u/device/d", "application/json",
	                     "{\"data\":\"two\"}", &r),
	    HTTP_202);
	assert_non_null(strstr(r.body.data, "{\"id\":\""));
	api_response_clear(&r);

	/* Back with Last-Event-ID = first: gets "two" only, no reset. */
	req.last_event_id = first;
	api_handle(f->api, &req, &sub);
	assert_false(sub.start.reset);
	api_stream_open(f->api, &sub.start, &all);
	assert_int_equal(
	    registry_wait(f->reg, sub.stream, 0, &b), REGISTRY_MESSAGES);
	for (size_t i = 0; i < b.n; i++)
		api_stream_message(f->api, b.msgs[i], false, &all);
	registry_batch_release(&b);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.events[0].data.data, "two");
	sse_parser_free(&p);
	buf_free(&all);
	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);

	/* An id of another run, by query: a reset event first. */
	snprintf(uri, sizeof(uri), "/subscribe/u/device/d?last_event_id=1-1");
	req.uri = uri;
	req.last_event_id = NULL;
	api_handle(f->api, &req, &sub);
	assert_true(sub.start.reset);
	api_stream_open(f->api, &sub.start, &all);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.events[0].type, "reset");
	assert_non_null(strstr(p.events[0].data.data, "\"reason\""));
	assert_true(p.events[0].id[0] != '\0');
	sse_parser_free(&p);
	buf_free(&all);
	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);
}

/* GET /ice-servers: open mode, nothing configured; bad ?user=; methods. */
static void
test_api_ice_servers(void **state)
{
	struct fixture *f = *state;
	struct api_response r;

	assert_int_equal(
	    call(f, "GET", "/ice-servers?user=bob", NULL, NULL, &r), HTTP_200);
	assert_string_equal(r.body.data, "{\"iceServers\":[]}");
	assert_true(has_header(&r, "Cache-Control: no-store\r\n"));
	api_response_clear(&r);
	/* Longer than --max-id 8, or a control character: 400. */
	assert_int_equal(
	    call(f, "GET", "/ice-servers?user=123456789", NULL, NULL, &r),
	    HTTP_400);
	api_response_clear(&r);
	assert_int_equal(
	    call(f, "GET", "/ice-servers?user=%01", NULL, NULL, &r), HTTP_400);
	api_response_clear(&r);
	assert_int_equal(
	    call(f, "POST", "/ice-servers", NULL, NULL, &r), HTTP_405);
	assert_true(has_header(&r, "Allow: GET, OPTIONS\r\n"));
	api_response_clear(&r);
	assert_int_equal(
	    call(f, "OPTIONS", "/ice-servers", NULL, NULL, &r), HTTP_204);
	api_response_clear(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_api_statuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_api_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_subscribe_post_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_full_is_503, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_body_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_cors_list, setup_list, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_ice_servers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
