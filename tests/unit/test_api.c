/* Unit tests for api: status codes, headers and bodies, no FastCGI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>
#include <time.h>

#include "api.h"
#include "body.h"
#include "filter.h"
#include "sse_parser.h"

struct fixture {
	struct config c;
	struct registry *reg;
	struct api *api;
};

/* A fixture: the options argv, a registry with the limits l, an api. */
static struct fixture *
fixture_new(int argc, const char **argv, const struct registry_limits *l)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	assert_int_equal(config_parse(&f->c, argc, (char **)argv), 0);
	f->reg = registry_new(l);
	f->api = api_new(&f->c, f->reg, NULL, NULL);
	assert_non_null(f->api);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	api_free(f->api);
	registry_free(f->reg);
	config_clear(&f->c);
	free(f);
}

/* A fixture from argv, with room for 16 streams. */
static struct fixture *
fixture_argv(int argc, const char **argv)
{
	struct registry_limits l = {.max_streams = 16,
	    .queue_messages = 16,
	    .grace_ms = 60000,
	    .streams_per_device = 8,
	    .devices_per_user = 32};

	return fixture_new(argc, argv, &l);
}

/* Open mode, ids up to 8 bytes, these CORS origins; the limits l. */
static struct fixture *
fixture_open(const char *origins, const struct registry_limits *l)
{
	const char *argv[] = {
	    "beep-signal", "--cors-origins", origins, "--max-id", "8"};

	return fixture_new(5, argv, l);
}

static int
setup_with(void **state, const char *origins)
{
	/* Room for two streams (test_api_full_is_503 fills them). */
	struct registry_limits l = {
	    .max_streams = 2, .queue_messages = 16, .grace_ms = 60000};

	*state = fixture_open(origins, &l);
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
	fixture_free(*state);
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
	api_handle(f->api, &req, NULL, resp);
	return resp->status;
}

/* api_precheck() as the server calls it, the method parsed first. */
static bool
precheck(struct fixture *f, const struct api_request *req,
    struct api_pending *p, struct api_response *resp)
{
	return api_precheck(
	    f->api, req, route_method_parse(req->method), p, resp);
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
	    /*
	     * No data to a device not there: 404, as the Express service
	     * looked the device up first (to one that is: 400, below).
	     */
	    {"POST", "/user/bob/device/x", "application/json",
	        "{\"data\":\"\"}", HTTP_404, NULL},
	    {"POST", "/user/bob/device/x", "application/json", "", HTTP_404,
	        NULL},
	    {"POST", "/user/bob/device/x", "application/json",
	        "{\"data\":\"hi\"}", HTTP_404, NULL},
	    {"OPTIONS", "/user/bob/device/x", NULL, NULL, HTTP_204,
	        "Access-Control-Allow-Methods: POST, OPTIONS\r\n"},
	    {"OPTIONS", "/subscribe/bob/device/x", NULL, NULL, HTTP_204,
	        "Access-Control-Allow-Methods: GET, OPTIONS\r\n"},
	    /*
	     * A bad id's preflight as its route's: the request that follows
	     * gets its 400, which a page can read (a failed preflight is a
	     * CORS error, with no status).
	     */
	    {"OPTIONS", "/user/%41%/devices", NULL, NULL, HTTP_204,
	        "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"},
	    {"OPTIONS", "/user/123456789/devices", NULL, NULL, HTTP_204,
	        "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"},
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

	/* No data to a device that is there: 400 (an empty body is {}). */
	assert_int_equal(call(f, "POST", "/user/bob/device/ph%20one",
	                     "application/json", "{}", &r),
	    HTTP_400);
	assert_string_equal(r.body.data, "{\"error\":\"no data supplied\"}");
	api_response_clear(&r);
	assert_int_equal(call(f, "POST", "/user/bob/device/ph%20one",
	                     "application/json", "", &r),
	    HTTP_400);
	assert_string_equal(r.body.data, "{\"error\":\"no data supplied\"}");
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
	for (struct registry_msg *m = b.first; m != NULL;
	     m = registry_batch_next(&b, m))
		api_stream_message(f->api, m, false, &all);
	registry_batch_release(&b);
	api_stream_close(&all);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.events[0].type, "position");
	assert_string_equal(p.events[1].type, "offer");
	assert_string_equal(p.events[1].data.data, "a\nb");
	assert_string_equal(p.events[2].data.data, "x\ny");
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

	api_handle(f->api, &req, NULL, &r);
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

	api_handle(f->api, &req, NULL, &r);
	assert_true(has_header(
	    &r, "Access-Control-Allow-Origin: https://b.example\r\n"));
	assert_true(has_header(&r, "Vary: Origin\r\n"));
	api_response_clear(&r);
	req.origin = "https://evil.example";
	api_handle(f->api, &req, NULL, &r);
	assert_false(has_header(&r, "Access-Control-Allow-Origin"));
	api_response_clear(&r);
	req.origin = NULL;
	api_handle(f->api, &req, NULL, &r);
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
	api_handle(f->api, &req, NULL, &sub);
	assert_false(sub.start.reset);
	api_stream_open(f->api, &sub.start, &all);
	assert_int_equal(
	    registry_wait(f->reg, sub.stream, 0, &b), REGISTRY_MESSAGES);
	for (struct registry_msg *m = b.first; m != NULL;
	     m = registry_batch_next(&b, m))
		api_stream_message(f->api, m, false, &all);
	registry_batch_release(&b);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.events[0].type, "position");
	assert_string_equal(p.events[1].data.data, "two");
	sse_parser_free(&p);
	buf_free(&all);
	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);

	/* An id of another run, by query: a reset event first. */
	snprintf(uri, sizeof(uri), "/subscribe/u/device/d?last_event_id=1-1");
	req.uri = uri;
	req.last_event_id = NULL;
	api_handle(f->api, &req, NULL, &sub);
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

	/* This run's epoch, but not an id as we write them: unknown. */
	req.uri = "/subscribe/u/device/d";
	for (size_t i = 0; i < 5; i++) {
		static const char *const bad[] = {
		    "- 1", "-+1", "--1", "-18446744073709551616", "-1 "};
		char id[96];

		snprintf(id, sizeof(id), "%llu%s",
		    (unsigned long long)registry_epoch(f->reg), bad[i]);
		req.last_event_id = id;
		api_handle(f->api, &req, NULL, &sub);
		assert_non_null(sub.stream);
		assert_true(sub.start.reset);
		assert_string_equal(sub.start.reason, "unknown event id");
		registry_unsubscribe(f->reg, sub.stream);
		api_response_clear(&sub);
	}
}

/*
 * An id with leading zeros, in its epoch or in its number, is the same id
 * (a client that pads or reformats numbers), so the same place: what was
 * kept after it, no reset.  Only a hand-made client sends one (EventSource
 * gives the id back as it came); unknown, it would lose what was kept for
 * it, and restart its call, at each reconnect.  No id reads as another
 * place than the one it names (test_api_replay).
 */
static void
test_api_resume_zero_led_id(void **state)
{
	static const char *const forms[] = {
	    "0%.*s-%s", "%.*s-000%s", "00%.*s-0%s"};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct api_request req = {.method = "GET"};
		struct api_response sub = {0}, r;
		struct registry_batch b;
		struct sse_parser p;
		struct buf all = {0};
		char sub_uri[64], post_uri[64], first[64], padded[80], *dash;

		snprintf(
		    sub_uri, sizeof(sub_uri), "/subscribe/u/device/z%zu", i);
		snprintf(post_uri, sizeof(post_uri), "/user/u/device/z%zu", i);
		assert_int_equal(
		    call(f, "GET", sub_uri, NULL, NULL, &sub), HTTP_200);
		assert_int_equal(call(f, "POST", post_uri, "application/json",
		                     "{\"data\":\"one\"}", &r),
		    HTTP_200);
		assert_int_equal(
		    sscanf(r.body.data, "{\"id\":\"%63[0-9-]\"}", first), 1);
		api_response_clear(&r);
		registry_wait(f->reg, sub.stream, 0, &b);
		registry_batch_release(&b);
		registry_unsubscribe(f->reg, sub.stream);
		api_response_clear(&sub);
		assert_int_equal(call(f, "POST", post_uri, "application/json",
		                     "{\"data\":\"two\"}", &r),
		    HTTP_202);
		api_response_clear(&r);

		dash = strchr(first, '-');
		assert_non_null(dash);
		snprintf(padded, sizeof(padded), forms[i], (int)(dash - first),
		    first, dash + 1);
		req.uri = sub_uri;
		req.last_event_id = padded;
		api_handle(f->api, &req, NULL, &sub);
		assert_non_null(sub.stream);
		assert_false(sub.start.reset);
		assert_int_equal(registry_wait(f->reg, sub.stream, 0, &b),
		    REGISTRY_MESSAGES);
		for (struct registry_msg *m = b.first; m != NULL;
		     m = registry_batch_next(&b, m))
			api_stream_message(f->api, m, false, &all);
		registry_batch_release(&b);
		sse_parse(&p, all.data, all.len);
		assert_int_equal(p.n, 1);
		assert_string_equal(p.events[0].data.data, "two");
		sse_parser_free(&p);
		buf_free(&all);
		registry_unsubscribe(f->reg, sub.stream);
		api_response_clear(&sub);
	}
}

#define SECRET                                                                 \
	"api-test-secret-of-some-length-at-least-64-bytes-for-hs512-xxxxx"

static char *
token_for(const char *user)
{
	jwt_t *jwt;
	char *tok, *out;

	jwt_new(&jwt);
	jwt_add_grant(jwt, "sub", user);
	jwt_add_grant_int(jwt, "exp", (long)time(NULL) + 600);
	jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET,
	    (int)strlen(SECRET));
	tok = jwt_encode_str(jwt);
	out = xstrdup(tok);
	free(tok);
	jwt_free(jwt);
	return out;
}

/* Release a stream the way the server does when it ends. */
static void
end_stream(struct fixture *f, struct api_response *r)
{
	api_stream_end(f->api, r);
	api_response_clear(r);
}

/*
 * Issue 8, CSRF: a request identified by the cookie must come from our own
 * origin (Sec-Fetch-Site: same-origin, or Origin equal to scheme://Host)
 * or an allow-listed one; bearer and query tokens are not ambient.
 */
static void
test_api_cookie_needs_same_origin(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "jwt", "--jwt-secret",
	    SECRET, "--cors-origins", "https://app.example"};
	struct fixture *f = fixture_argv(7, argv);
	char *t = token_for("alice"), cookie[512], bearer[512], uri[512];
	static const struct {
		const char *origin, *site, *host;
		bool https;
		bool ok;
	} cases[] = {
	    {"https://evil.example", NULL, "beep.example", true, false},
	    {"https://evil.example", "cross-site", "beep.example", true, false},
	    {NULL, NULL, "beep.example", true, false},
	    {"null", NULL, "beep.example", true, false},
	    {NULL, "same-site", "beep.example", true, false},
	    {NULL, "none", "beep.example", true, false},
	    {NULL, "same-origin", "beep.example", true, true},
	    {"https://app.example", "cross-site", "beep.example", true, true},
	    {"https://beep.example", NULL, "beep.example", true, true},
	    {"https://BEEP.example", NULL, "beep.example", true, true},
	    {"http://beep.example", NULL, "beep.example", true, false},
	    {"http://127.0.0.1:8080", NULL, "127.0.0.1:8080", false, true},
	    {"http://127.0.0.1:8081", NULL, "127.0.0.1:8080", false, false},
	    {"https://beep.example.evil", NULL, "beep.example", true, false},
	    {"https://beep.example", NULL, NULL, true, false},
	};

	(void)state;
	snprintf(cookie, sizeof(cookie), "x=1; beep_token=%s", t);
	snprintf(bearer, sizeof(bearer), "Bearer %s", t);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_request post = {.method = "POST",
		    .uri = "/user/bob/device/d",
		    .content_type = "application/json",
		    .body = "{\"data\":1}",
		    .body_len = 10,
		    .cookie = cookie,
		    .origin = cases[i].origin,
		    .sec_fetch_site = cases[i].site,
		    .host = cases[i].host,
		    .https = cases[i].https};
		struct api_request sub = post;
		struct api_response r = {0};
		struct api_pending p = {0};

		sub.method = "GET";
		sub.uri = "/subscribe/alice/device/d";
		sub.body = NULL;
		sub.body_len = 0;
		/* Refused before the body is read, or wanting it. */
		assert_int_equal(precheck(f, &post, &p, &r), cases[i].ok);
		api_handle(f->api, &post, &p, &r);
		/* 404: let through, to a device that is not there. */
		assert_int_equal(r.status, cases[i].ok ? HTTP_404 : HTTP_403);
		if (!cases[i].ok)
			assert_non_null(strstr(r.body.data, "{\"error\":"));
		api_response_clear(&r);
		api_handle(f->api, &sub, NULL, &r);
		assert_int_equal(r.status, cases[i].ok ? HTTP_200 : HTTP_403);
		assert_true((r.stream != NULL) == cases[i].ok);
		if (r.stream)
			end_stream(f, &r);
		else
			api_response_clear(&r);

		/* The same from a bearer or query token: not ambient. */
		post.cookie = NULL;
		post.authorization = bearer;
		api_handle(f->api, &post, NULL, &r);
		assert_int_equal(r.status, HTTP_404);
		api_response_clear(&r);
		snprintf(uri, sizeof(uri),
		    "/subscribe/alice/device/d?access_token=%s", t);
		sub.cookie = NULL;
		sub.uri = uri;
		api_handle(f->api, &sub, NULL, &r);
		assert_int_equal(r.status, HTTP_200);
		end_stream(f, &r);
	}
	free(t);
	fixture_free(f);
}

/* With CORS "*", no Origin is trusted with the cookie. */
static void
test_api_cookie_star_trusts_no_origin(void **state)
{
	const char *argv[] = {
	    "beep-signal", "--auth", "jwt", "--jwt-secret", SECRET};
	struct fixture *f = fixture_argv(5, argv);
	char *t = token_for("alice"), cookie[512];
	struct api_request req = {.method = "GET",
	    .uri = "/user/alice/devices",
	    .cookie = cookie,
	    .origin = "https://evil.example"};
	struct api_response r = {0};

	(void)state;
	snprintf(cookie, sizeof(cookie), "beep_token=%s", t);
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_403);
	api_response_clear(&r);
	req.origin = NULL;
	req.sec_fetch_site = "same-origin";
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_200);
	api_response_clear(&r);
	/*
	 * A query token that does not decode counts as given and malformed,
	 * as every query parameter does: 401, the cookie not tried.
	 */
	{
		struct api_request sub = {.method = "GET",
		    .uri = "/subscribe/alice/device/d?access_token=%zz",
		    .cookie = cookie,
		    .sec_fetch_site = "same-origin"};

		api_handle(f->api, &sub, NULL, &r);
		assert_int_equal(r.status, HTTP_401);
		assert_null(r.stream);
	}
	api_response_clear(&r);
	free(t);
	fixture_free(f);
}

/* A token past BEEP_MAX_TOKEN: 401 saying so, before any parsing. */
static void
test_api_token_too_long(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "jwt", "--jwt-secret",
	    SECRET, "--max-token", "256"};
	struct fixture *f = fixture_argv(7, argv);
	char header[600];
	struct api_request req = {.method = "POST",
	    .uri = "/user/bob/device/d",
	    .authorization = header};
	struct api_response r = {0};
	struct api_pending p = {0};

	(void)state;
	strcpy(header, "Bearer ");
	memset(header + 7, 'A', 257);
	header[7 + 257] = '\0';
	assert_false(precheck(f, &req, &p, &r));
	assert_int_equal(r.status, HTTP_401);
	assert_non_null(strstr(r.body.data, "token too long"));
	assert_true(has_header(&r, "error=\"invalid_token\""));
	api_response_clear(&r);
	fixture_free(f);
}

/*
 * Issue 8: a POST is routed, authenticated, allowed and rate-limited from
 * its parameters; only then is its body wanted.
 */
static void
test_api_precheck_before_body(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "jwt", "--jwt-secret",
	    SECRET, "--rate", "1", "--burst", "1"};
	struct fixture *f = fixture_argv(9, argv);
	char *t = token_for("alice"), bearer[512];
	struct api_request req = {.method = "POST",
	    .uri = "/user/bob/device/d",
	    .content_type = "application/json"};
	struct api_response r = {0}, sub = {0};
	struct api_pending p = {0};
	struct api_request sreq = {
	    .method = "GET", .uri = "/subscribe/alice/device/d"};

	(void)state;
	/* No credentials, a bad route, a bad method: no body wanted. */
	assert_false(precheck(f, &req, &p, &r));
	assert_int_equal(r.status, HTTP_401);
	api_handle(f->api, &req, &p, &r); /* already answered: unchanged */
	assert_int_equal(r.status, HTTP_401);
	api_response_clear(&r);
	req.uri = "/nope";
	assert_false(precheck(f, &req, &p, &r));
	assert_int_equal(r.status, HTTP_404);
	api_pending_clear(&p);
	api_response_clear(&r);
	/* A GET answered 200 by the precheck is not handled twice. */
	{
		struct api_request list = {.method = "GET",
		    .uri = "/user/alice/devices",
		    .authorization = bearer};

		snprintf(bearer, sizeof(bearer), "Bearer %s", t);
		assert_false(precheck(f, &list, &p, &r));
		assert_int_equal(r.status, HTTP_200);
		api_handle(f->api, &list, &p, &r);
		assert_string_equal(r.body.data, "[]");
		api_response_clear(&r);
	}
	/* Identified: the body is wanted, and nothing answered yet. */
	snprintf(bearer, sizeof(bearer), "Bearer %s", t);
	req.authorization = bearer;
	sreq.authorization = bearer;
	api_handle(f->api, &sreq, NULL, &sub);
	assert_int_equal(sub.status, HTTP_200);
	req.uri = "/user/alice/device/d";
	assert_true(precheck(f, &req, &p, &r));
	assert_int_equal(r.status, 0);
	req.body = "{\"data\":\"hi\"}";
	req.body_len = strlen(req.body);
	api_handle(f->api, &req, &p, &r);
	assert_int_equal(r.status, HTTP_200);
	api_response_clear(&r);
	/* The rate (1, burst 1) is spent: 429 before the body. */
	assert_false(precheck(f, &req, &p, &r));
	assert_int_equal(r.status, HTTP_429);
	api_pending_clear(&p);
	api_response_clear(&r);
	/* A precheck that passed, then dropped (body never came): freed. */
	api_expire(f->api, util_now_ms() + 10000);
	end_stream(f, &sub);
	free(t);
	fixture_free(f);
}

/*
 * Header mode: the identity service may have gone by what a browser sends
 * by itself (a cookie, Basic or Negotiate it keeps, a TLS client
 * certificate the request shows nothing of), so a browser's request from
 * another site is refused whatever it carries but a bearer token.
 */
static void
test_api_header_mode_cross_site(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "header"};
	struct fixture *f = fixture_argv(3, argv);
	static const struct {
		const char *authorization, *cookie, *origin, *site;
		bool ok;
	} cases[] = {
	    {"Basic YWxpY2U6cHc=", NULL, "https://evil.example", "cross-site",
	        false},
	    {"Negotiate YIIC", NULL, "https://evil.example", NULL, false},
	    {NULL, NULL, "https://evil.example", NULL, false},
	    {NULL, NULL, NULL, "cross-site", false},
	    {NULL, NULL, NULL, "same-site", false},
	    {NULL, "s=1", NULL, NULL, false},
	    /* Not a browser: neither Origin nor Sec-Fetch-Site. */
	    {"Basic YWxpY2U6cHc=", NULL, NULL, NULL, true},
	    {NULL, NULL, NULL, NULL, true},
	    /*
	     * Another scheme, which a page sets itself: the identity service
	     * may have gone by something else (the address; test 52).
	     */
	    {"Bearer abc", NULL, "https://evil.example", "cross-site", false},
	    {"Token abc", NULL, "https://app.example", NULL, false},
	    {"Bearer abc", NULL, "http://192.0.2.7:1837", "same-site", true},
	    /* The user's own navigation (the address bar, a bookmark). */
	    {"Basic YWxpY2U6cHc=", NULL, NULL, "none", true},
	    {"Digest username=a", NULL, "https://evil.example", "cross-site",
	        false},
	    /* From the service's own origin. */
	    {"Basic YWxpY2U6cHc=", NULL, NULL, "same-origin", true},
	    {NULL, "s=1", "http://192.0.2.7:1837", NULL, true},
	};
	/*
	 * The same origin by a name, over plain HTTP: the name may be a
	 * page's site's, re-pointed at the service (DNS rebinding; test 52).
	 * Over HTTPS, or by an address or localhost, it is the service's.
	 */
	static const struct {
		const char *host, *origin, *site;
		bool https, ok;
	} own[] = {
	    {"svc.example", NULL, "same-origin", false, false},
	    {"svc.example", "http://svc.example", NULL, false, false},
	    {"svc.example:1837", "http://svc.example:1837", "same-origin",
	        false, false},
	    {NULL, NULL, "same-origin", false, false},
	    {"svc.example", NULL, "same-origin", true, true},
	    {"svc.example", "https://svc.example", NULL, true, true},
	    {"localhost:1837", NULL, "same-origin", false, true},
	    {"[::1]:1837", "http://[::1]:1837", "same-origin", false, true},
	    {"192.0.2.7", "http://192.0.2.7", NULL, false, true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_request req = {.method = "POST",
		    .uri = "/user/bob/device/d",
		    .content_type = "application/json",
		    .claim = "{\"userid\":\"alice\"}",
		    .host = "192.0.2.7:1837",
		    .authorization = cases[i].authorization,
		    .cookie = cases[i].cookie,
		    .origin = cases[i].origin,
		    .sec_fetch_site = cases[i].site};
		struct api_response r = {0};
		struct api_pending p = {0};

		if (cases[i].ok) {
			assert_true(precheck(f, &req, &p, &r));
			assert_int_equal(r.status, 0);
		} else {
			assert_false(precheck(f, &req, &p, &r));
			assert_int_equal(r.status, HTTP_403);
			assert_non_null(strstr(
			    r.body.data, "credentials from another site"));
		}
		/* A body that never came: what the precheck kept, freed. */
		api_pending_clear(&p);
		api_response_clear(&r);
	}
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		struct api_request req = {.method = "GET",
		    .uri = "/user/alice/devices",
		    .claim = "{\"userid\":\"alice\"}",
		    .host = own[i].host,
		    .https = own[i].https,
		    .origin = own[i].origin,
		    .sec_fetch_site = own[i].site};
		struct api_response r = {0};

		api_handle(f->api, &req, NULL, &r);
		assert_int_equal(r.status, own[i].ok ? HTTP_200 : HTTP_403);
		api_response_clear(&r);
	}
	api_expire(f->api, util_now_ms() + 10000);
	fixture_free(f);
}

/*
 * Header mode, a named service over plain HTTP: its origin listed makes
 * its own pages' requests its own, an EventSource's without Origin too.
 */
static void
test_api_header_mode_named_listed(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "header",
	    "--cors-origins", "http://svc.example:1837"};
	struct fixture *f = fixture_argv(5, argv);
	static const struct {
		const char *host, *origin;
		bool ok;
	} cases[] = {
	    {"svc.example:1837", NULL, true},
	    {"SVC.example:1837", "http://svc.example:1837", true},
	    {"svc.example", NULL, false},
	    {"evil.example:1837", NULL, false},
	    {"evil.example:1837", "http://evil.example:1837", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_request req = {.method = "GET",
		    .uri = "/user/alice/devices",
		    .claim = "{\"userid\":\"alice\"}",
		    .host = cases[i].host,
		    .origin = cases[i].origin,
		    .sec_fetch_site = "same-origin"};
		struct api_response r = {0};

		api_handle(f->api, &req, NULL, &r);
		assert_int_equal(r.status, cases[i].ok ? HTTP_200 : HTTP_403);
		api_response_clear(&r);
	}
	fixture_free(f);
}

/*
 * Header mode without the front's claim: 401, with no WWW-Authenticate,
 * whose challenge is the identity service's (README, Forward auth); a
 * Bearer challenge would tell a browser to send a token nothing here reads.
 */
static void
test_api_header_mode_no_claim(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "header"};
	struct fixture *f = fixture_argv(3, argv);
	struct api_request req = {.method = "GET", .uri = "/user/bob/devices"};
	struct api_response r = {0};
	struct api_pending p = {0};

	(void)state;
	assert_false(precheck(f, &req, &p, &r));
	assert_int_equal(r.status, HTTP_401);
	assert_non_null(strstr(r.body.data, "authentication required"));
	assert_true(r.headers.data == NULL ||
	    strstr(r.headers.data, "WWW-Authenticate") == NULL);
	api_pending_clear(&p);
	api_response_clear(&r);
	fixture_free(f);
}

/*
 * README, Security: while twice BEEP_MAX_STREAMS_PER_DEVICE streams of a
 * device are open (the replaced ones still ending), a subscribe gets 429
 * "too many streams for this device" with Retry-After (to EventSource,
 * the refused event it comes back from); once one ends, there is room.
 */
static void
test_api_streams_per_device_refused(void **state)
{
	const char *argv[] = {"beep-signal"};
	struct registry_limits l = {.max_streams = 16,
	    .queue_messages = 16,
	    .grace_ms = 60000,
	    .streams_per_device = 1};
	struct fixture *f = fixture_new(1, argv, &l);
	struct api_request req = {.method = "GET",
	    .uri = "/subscribe/u/device/d",
	    .remote_addr = "192.0.2.1"};
	struct api_request es = req;
	struct api_response s[2], r = {0};

	(void)state;
	es.accept = "text/event-stream";
	for (int i = 0; i < 2; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		api_handle(f->api, &req, NULL, &s[i]);
		assert_int_equal(s[i].status, HTTP_200);
	}
	/* s[0] replaced by s[1], still ending: twice the limit open. */
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_429);
	assert_true(has_header(&r, "Retry-After: "));
	assert_non_null(strstr(r.body.data,
	    "{\"error\":\"too many streams for this "
	    "device\""));
	assert_null(r.stream);
	api_response_clear(&r);
	api_handle(f->api, &es, NULL, &r);
	assert_int_equal(r.status, HTTP_200);
	assert_null(r.stream);
	assert_non_null(strstr(r.body.data, "event: refused\n"));
	assert_non_null(strstr(r.body.data, "\"status\":429"));
	api_response_clear(&r);
	/* The replaced one ends: room for one more. */
	end_stream(f, &s[0]);
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_200);
	end_stream(f, &r);
	end_stream(f, &s[1]);
	fixture_free(f);
}

/* Issue 8: streams per client address in open mode. */
static void
test_api_streams_per_address(void **state)
{
	const char *argv[] = {"beep-signal", "--max-streams-per-address", "3"};
	struct fixture *f = fixture_argv(3, argv);
	struct api_response s[4], r = {0};
	char uri[64];

	(void)state;
	for (int i = 0; i < 4; i++) {
		struct api_request req = {
		    .method = "GET", .uri = uri, .remote_addr = "192.0.2.1"};

		snprintf(uri, sizeof(uri), "/subscribe/u%d/device/d", i);
		memset(&s[i], 0, sizeof(s[i]));
		api_handle(f->api, &req, NULL, &s[i]);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(s[i].status, HTTP_200);
	assert_int_equal(s[3].status, HTTP_429);
	assert_true(has_header(&s[3], "Retry-After: "));
	assert_non_null(strstr(s[3].body.data, "address"));
	assert_null(s[3].stream);
	api_response_clear(&s[3]);
	{
		/* Another address is not affected. */
		struct api_request other = {.method = "GET",
		    .uri = "/subscribe/v/device/d",
		    .remote_addr = "192.0.2.2"};

		api_handle(f->api, &other, NULL, &r);
		assert_int_equal(r.status, HTTP_200);
		end_stream(f, &r);
	}
	/* A stream ends: its place is free again, once. */
	end_stream(f, &s[0]);
	{
		struct api_request req = {.method = "GET",
		    .uri = "/subscribe/w/device/d",
		    .remote_addr = "192.0.2.1"};
		struct api_request other = {.method = "GET",
		    .uri = "/subscribe/x/device/d",
		    .remote_addr = "192.0.2.1"};

		api_handle(f->api, &req, NULL, &s[0]);
		assert_int_equal(s[0].status, HTTP_200);
		api_handle(f->api, &other, NULL, &r);
		assert_int_equal(r.status, HTTP_429);
		api_response_clear(&r);
	}
	{
		/*
		 * At the limit, a reconnect to a device with a stream from
		 * this address takes its place: the old one is replaced.
		 * Until the replaced ones end the address holds more, but
		 * never more than twice its limit, however many reconnects
		 * chain (each replaces the one before).
		 */
		struct api_request req = {.method = "GET",
		    .uri = "/subscribe/u1/device/d",
		    .remote_addr = "192.0.2.1"};
		struct api_request from_other = {.method = "GET",
		    .uri = "/subscribe/z/device/d",
		    .remote_addr = "192.0.2.9"};
		struct api_request to_other = {.method = "GET",
		    .uri = "/subscribe/z/device/d",
		    .remote_addr = "192.0.2.1"};
		struct api_response theirs = {0}, chain[4];
		struct registry_batch b;

		for (int i = 0; i < 4; i++) {
			memset(&chain[i], 0, sizeof(chain[i]));
			api_handle(f->api, &req, NULL, &chain[i]);
		}
		for (int i = 0; i < 3; i++)
			assert_int_equal(chain[i].status, HTTP_200);
		assert_int_equal(chain[3].status, HTTP_429);
		api_response_clear(&chain[3]);
		assert_int_equal(registry_wait(f->reg, s[1].stream, 0, &b),
		    REGISTRY_REPLACED);
		for (int i = 0; i < 2; i++)
			assert_int_equal(
			    registry_wait(f->reg, chain[i].stream, 0, &b),
			    REGISTRY_REPLACED);
		assert_int_equal(registry_wait(f->reg, chain[2].stream, 0, &b),
		    REGISTRY_TIMEOUT);
		/* The replaced end: back at the limit, the newest open. */
		end_stream(f, &s[1]);
		end_stream(f, &chain[0]);
		end_stream(f, &chain[1]);
		s[1] = chain[2];
		/* Another address's stream of a device is not taken. */
		api_handle(f->api, &from_other, NULL, &theirs);
		assert_int_equal(theirs.status, HTTP_200);
		api_handle(f->api, &to_other, NULL, &r);
		assert_int_equal(r.status, HTTP_429);
		api_response_clear(&r);
		assert_int_equal(registry_wait(f->reg, theirs.stream, 0, &b),
		    REGISTRY_TIMEOUT);
		end_stream(f, &theirs);
	}
	for (int i = 0; i < 3; i++)
		end_stream(f, &s[i]);
	{
		/* Every place came back, no more: 3 fit, the 4th does not. */
		char uri2[64];
		struct api_request req = {
		    .method = "GET", .uri = uri2, .remote_addr = "192.0.2.1"};

		for (int i = 0; i < 4; i++) {
			snprintf(
			    uri2, sizeof(uri2), "/subscribe/n%d/device/d", i);
			memset(&s[i], 0, sizeof(s[i]));
			api_handle(f->api, &req, NULL, &s[i]);
		}
		for (int i = 0; i < 3; i++)
			assert_int_equal(s[i].status, HTTP_200);
		assert_int_equal(s[3].status, HTTP_429);
		api_response_clear(&s[3]);
		for (int i = 0; i < 3; i++)
			end_stream(f, &s[i]);
	}
	fixture_free(f);
}

/*
 * A reconnect at the address limit whose subscribe then fails (the
 * service's stream limit) takes no one's place: the old stream lives on.
 * At BEEP_MAX_STREAMS a reconnect of a device with a live stream takes
 * its place, up to max_over past the limit counting the replaced streams
 * still ending (BEEP_MIN_IDLE in service): past that it fails.
 */
static void
test_api_displace_only_when_open(void **state)
{
	const char *argv[] = {"beep-signal", "--max-streams-per-address", "2"};
	struct registry_limits l = {.max_streams = 1,
	    .max_over = 1,
	    .queue_messages = 16,
	    .grace_ms = 60000,
	    .streams_per_device = 8};
	struct fixture *f = fixture_new(3, argv, &l);
	struct api_request d = {.method = "GET",
	    .uri = "/subscribe/u/device/d",
	    .remote_addr = "192.0.2.1"};
	struct api_response sd = {0}, sd2 = {0}, again = {0};
	struct registry_batch b;

	(void)state;
	api_handle(f->api, &d, NULL, &sd);
	assert_int_equal(sd.status, HTTP_200);
	/* Full: the reconnect takes the ghost's place. */
	api_handle(f->api, &d, NULL, &sd2);
	assert_int_equal(sd2.status, HTTP_200);
	assert_int_equal(
	    registry_wait(f->reg, sd.stream, 0, &b), REGISTRY_REPLACED);
	/* The ghost still ending: max_over past the limit; refused. */
	api_handle(f->api, &d, NULL, &again);
	assert_int_equal(again.status, HTTP_503);
	assert_null(again.stream);
	api_response_clear(&again);
	assert_int_equal(
	    registry_wait(f->reg, sd2.stream, 0, &b), REGISTRY_TIMEOUT);
	end_stream(f, &sd);
	end_stream(f, &sd2);
	fixture_free(f);
}

/* With authentication on, the per-user limits apply, not the address. */
static void
test_api_streams_per_address_not_with_auth(void **state)
{
	const char *argv[] = {"beep-signal", "--auth", "jwt", "--jwt-secret",
	    SECRET, "--max-streams-per-address", "1"};
	struct fixture *f = fixture_argv(7, argv);
	char *t = token_for("alice"), bearer[512], uri[64];
	struct api_response s[3];

	(void)state;
	snprintf(bearer, sizeof(bearer), "Bearer %s", t);
	for (int i = 0; i < 3; i++) {
		struct api_request req = {.method = "GET",
		    .uri = uri,
		    .remote_addr = "192.0.2.1",
		    .authorization = bearer};

		snprintf(uri, sizeof(uri), "/subscribe/alice/device/d%d", i);
		memset(&s[i], 0, sizeof(s[i]));
		api_handle(f->api, &req, NULL, &s[i]);
		assert_int_equal(s[i].status, HTTP_200);
	}
	for (int i = 0; i < 3; i++)
		end_stream(f, &s[i]);
	free(t);
	fixture_free(f);
}

static enum http_status
get_from(struct fixture *f, const char *uri, const char *addr,
    struct api_response *r)
{
	struct api_request req = {
	    .method = "GET", .uri = uri, .remote_addr = addr};

	memset(r, 0, sizeof(*r));
	api_handle(f->api, &req, NULL, r);
	return r->status;
}

/* A POST from addr with a small body, prechecked first as the server does. */
static enum http_status
post_from(struct fixture *f, const char *addr)
{
	struct api_request req = {.method = "POST",
	    .uri = "/user/bob/device/d",
	    .content_type = "application/json",
	    .remote_addr = addr,
	    .body = "{\"data\":1}",
	    .body_len = 10};
	struct api_response r = {0};
	struct api_pending p = {0};
	enum http_status status;

	if (precheck(f, &req, &p, &r))
		api_handle(f->api, &req, &p, &r);
	status = r.status;
	api_response_clear(&r);
	return status;
}

/*
 * A keyed POST from addr: its status, and the id it was answered in id
 * (64 bytes).
 */
static enum http_status
post_key_from(struct fixture *f, const char *addr, const char *body, char *id)
{
	struct api_request req = {.method = "POST",
	    .uri = "/user/bob/device/d",
	    .content_type = "application/json",
	    .remote_addr = addr,
	    .body = body,
	    .body_len = strlen(body)};
	struct api_response r = {0};
	struct api_pending p = {0};
	enum http_status status;

	id[0] = '\0';
	if (precheck(f, &req, &p, &r))
		api_handle(f->api, &req, &p, &r);
	status = r.status;
	if (status == HTTP_200 || status == HTTP_202)
		assert_int_equal(
		    sscanf(r.body.data, "{\"id\":\"%63[0-9-]\"}", id), 1);
	api_response_clear(&r);
	return status;
}

/*
 * A POST's idempotency key is its sender's (in open mode, its address):
 * another address posting with the same key, first, does not have the
 * sender's message taken for a repeat of its own, whether or not the
 * sender share names senders (BEEP_SENDER_SHARE 100 names none for
 * it: the key does).  /healthz counts the repeats and the keys indexed.
 */
static void
test_api_post_key_per_sender(void **state)
{
	const char *share[] = {"beep-signal", "--sender-share", "50"};
	const char *no_share[] = {
	    "beep-signal", "--sender-share", "100", "--rate", "0"};
	char id_m[64], id_a[64], id[64];

	(void)state;
	for (int run = 0; run < 2; run++) {
		struct fixture *f = run == 0 ? fixture_argv(3, share)
		                             : fixture_argv(5, no_share);
		struct api_response sub, hz;

		assert_int_equal(
		    get_from(f, "/subscribe/bob/device/d", "192.0.2.1", &sub),
		    HTTP_200);
		assert_int_equal(post_key_from(f, "192.0.2.66",
		                     "{\"data\":\"m\",\"key\":\"2\"}", id_m),
		    HTTP_200);
		assert_int_equal(post_key_from(f, "192.0.2.1",
		                     "{\"data\":\"a\",\"key\":\"2\"}", id_a),
		    HTTP_200);
		assert_string_not_equal(id_a, id_m);
		/* Each one's repeat: its own id. */
		assert_int_equal(post_key_from(f, "192.0.2.1",
		                     "{\"data\":\"a\",\"key\":\"2\"}", id),
		    HTTP_200);
		assert_string_equal(id, id_a);
		assert_int_equal(post_key_from(f, "192.0.2.66",
		                     "{\"data\":\"m\",\"key\":\"2\"}", id),
		    HTTP_200);
		assert_string_equal(id, id_m);
		/* Counted for operators: two repeats, two keys indexed. */
		assert_int_equal(
		    get_from(f, "/healthz", "127.0.0.1", &hz), HTTP_200);
		assert_non_null(strstr(hz.body.data, "\"repeated\":2,"));
		assert_non_null(strstr(hz.body.data, "\"keys\":2,"));
		api_response_clear(&hz);
		end_stream(f, &sub);
		fixture_free(f);
	}
}

/*
 * The per-address limits count an IPv6 client by its network
 * (BEEP_IPV6_PREFIX, 64): a host that takes a new address from its /64
 * for each request meets the same limits; another network does not.
 */
static void
test_api_ipv6_network(void **state)
{
	const char *argv[] = {"beep-signal", "--max-streams-per-address", "1",
	    "--rate", "1", "--burst", "1", "--ipv6-prefix", "64"};
	const char *per_address[] = {"beep-signal", "--max-streams-per-address",
	    "1", "--rate", "1", "--burst", "1", "--ipv6-prefix", "128"};
	struct api_response a, b, c, d;

	(void)state;
	for (int run = 0; run < 2; run++) {
		struct fixture *f =
		    fixture_argv(9, run == 0 ? argv : per_address);
		enum http_status same = run == 0 ? HTTP_429 : HTTP_200;

		assert_int_equal(get_from(f, "/subscribe/bob/device/d",
		                     "2001:db8:1:2::a", &a),
		    HTTP_200);
		/* The same /64: one stream there already. */
		assert_int_equal(get_from(f, "/subscribe/u1/device/d",
		                     "2001:db8:1:2:ffff::b", &b),
		    same);
		/* Another /64. */
		assert_int_equal(get_from(f, "/subscribe/u2/device/d",
		                     "2001:db8:1:3::a", &c),
		    HTTP_200);
		/* IPv4 clients, on a dual-stack socket too, are each their own. */
		assert_int_equal(get_from(f, "/subscribe/u3/device/d",
		                     "::ffff:192.0.2.1", &d),
		    HTTP_200);
		if (run == 0) {
			struct api_response e;
			struct registry_batch rb;

			/*
			 * A reconnect from another address of the network
			 * takes the place of its stream of the device (the
			 * old one is replaced); from another network it
			 * does not.
			 */
			assert_int_equal(get_from(f, "/subscribe/bob/device/d",
			                     "2001:db8:1:3::b", &e),
			    HTTP_429);
			api_response_clear(&e);
			assert_int_equal(get_from(f, "/subscribe/bob/device/d",
			                     "2001:db8:1:2::beef", &e),
			    HTTP_200);
			assert_int_equal(
			    registry_wait(f->reg, a.stream, 0, &rb),
			    REGISTRY_REPLACED);
			end_stream(f, &a);
			a = e;
		}
		/* The rate (1, burst 1) likewise. */
		assert_int_equal(post_from(f, "2001:db8:1:2::a"), HTTP_200);
		assert_int_equal(post_from(f, "2001:db8:1:2::c"), same);
		assert_int_equal(post_from(f, "2001:db8:1:3::c"), HTTP_200);
		end_stream(f, &a);
		if (b.stream != NULL)
			end_stream(f, &b);
		else
			api_response_clear(&b);
		end_stream(f, &c);
		end_stream(f, &d);
		fixture_free(f);
	}
}

/* A subscribe from addr with this Accept and Last-Event-ID headers. */
static enum http_status
get_resuming(struct fixture *f, const char *uri, const char *addr,
    const char *accept, const char *last_id, struct api_response *r)
{
	struct api_request req = {.method = "GET",
	    .uri = uri,
	    .remote_addr = addr,
	    .accept = accept,
	    .last_event_id = last_id};

	memset(r, 0, sizeof(*r));
	api_handle(f->api, &req, NULL, r);
	return r->status;
}

static enum http_status
get_accepting(struct fixture *f, const char *uri, const char *addr,
    const char *accept, struct api_response *r)
{
	return get_resuming(f, uri, addr, accept, NULL, r);
}

/*
 * A body within BEEP_MAX_BODY whose message packs longer than
 * BEEP_REPLAY_BYTES (jansson writes 1e-7 back as 9.9999999999999995e-08)
 * is refused: its device's log would drop it as soon as it was accepted.
 */
static void
test_api_packed_over_replay_bytes(void **state)
{
	const char *argv[] = {
	    "beep-signal", "--max-body", "2048", "--replay-bytes", "2048"};
	struct registry_limits l = {.max_streams = 2,
	    .queue_messages = 16,
	    .grace_ms = 60000,
	    .replay_max = 16,
	    .replay_bytes = 2048};
	struct fixture *f = fixture_new(5, argv, &l);
	struct api_response s, r;
	char body[2048];
	size_t n = 0;

	(void)state;
	assert_int_equal(
	    get_from(f, "/subscribe/u/device/d", "192.0.2.1", &s), HTTP_200);
	n += (size_t)snprintf(body, sizeof(body), "{\"data\":[1e-7");
	while (n < 1000)
		n += (size_t)snprintf(body + n, sizeof(body) - n, ",1e-7");
	snprintf(body + n, sizeof(body) - n, "]}");
	assert_int_equal(
	    call(f, "POST", "/user/u/device/d", "application/json", body, &r),
	    HTTP_413);
	assert_non_null(strstr(r.body.data, "BEEP_REPLAY_BYTES"));
	api_response_clear(&r);
	/* What fits once packed is accepted. */
	body[200] = '\0';
	strcpy(body + 195, "]}");
	assert_int_equal(
	    call(f, "POST", "/user/u/device/d", "application/json", body, &r),
	    HTTP_200);
	api_response_clear(&r);
	registry_unsubscribe(f->reg, s.stream);
	api_response_clear(&s);
	fixture_free(f);
}

/*
 * A stream refused for now reaches EventSource (Accept: text/event-stream
 * alone) as an event stream it comes back from: EventSource never retries
 * a 429 or 503.  Any other client gets the status.
 */
static void
test_api_refused_as_event_stream(void **state)
{
	const char *argv[] = {"beep-signal", "--max-streams-per-address", "1"};
	struct registry_limits l = {.max_streams = 2, .queue_messages = 16};
	struct fixture *f = fixture_new(3, argv, &l);
	/* The id it came with is given back, if it can be an id field. */
	static const struct {
		const char *addr, *last_id, *id_line, *data;
	} refusals[] = {
	    {"192.0.2.1", "1-7", "id: 1-7\n",
	        "{\"error\":\"too many streams from this address\","
	        "\"status\":429}"},
	    {"192.0.2.3", "1-7\rid: 9", "",
	        "{\"error\":\"too many streams\",\"status\":503}"},
	};
	struct api_response a, b, r;

	(void)state;
	assert_int_equal(
	    get_from(f, "/subscribe/u/device/a", "192.0.2.1", &a), HTTP_200);
	assert_int_equal(
	    get_from(f, "/subscribe/u/device/b", "192.0.2.2", &b), HTTP_200);
	for (size_t i = 0; i < 2; i++) {
		char want[160];
		unsigned long ms;
		int used = 0;

		assert_int_equal(
		    get_resuming(f, "/subscribe/v/device/c", refusals[i].addr,
		        "text/event-stream", refusals[i].last_id, &r),
		    HTTP_200);
		assert_null(r.stream);
		assert_true(
		    has_header(&r, "Content-Type: text/event-stream\r\n"));
		assert_true(has_header(&r, "Cache-Control: no-store\r\n"));
		assert_true(has_header(&r, "Retry-After: 5\r\n"));
		/* Back after Retry-After and up to as long again. */
		assert_int_equal(
		    sscanf(r.body.data, "retry: %lu\n%n", &ms, &used), 1);
		assert_true(ms >= 5000 && ms < 10000);
		snprintf(want, sizeof(want), "event: refused\n%sdata: %s\n\n",
		    refusals[i].id_line, refusals[i].data);
		assert_string_equal(r.body.data + used, want);
		api_response_clear(&r);
		/* A client that reads JSON gets the status. */
		assert_int_equal(
		    get_accepting(f, "/subscribe/v/device/c", refusals[i].addr,
		        "text/event-stream, application/json", &r),
		    i == 0 ? HTTP_429 : HTTP_503);
		assert_non_null(strstr(r.body.data, "\"error\""));
		api_response_clear(&r);
	}
	/* Nothing was held for the refused: a place that frees is taken. */
	end_stream(f, &a);
	assert_int_equal(get_accepting(f, "/subscribe/v/device/c", "192.0.2.1",
	                     "text/event-stream", &r),
	    HTTP_200);
	assert_non_null(r.stream);
	end_stream(f, &r);
	end_stream(f, &b);
	fixture_free(f);
}

/* Issue 12: /readyz at the stream limit and while stopping. */
static void
test_api_readyz(void **state)
{
	const char *argv[] = {"beep-signal", "--max-streams", "16"};
	struct fixture *f = fixture_argv(3, argv);
	struct api_response s[16], r;

	(void)state;
	assert_int_equal(get_from(f, "/readyz", NULL, &r), HTTP_200);
	assert_non_null(strstr(r.body.data, "ready"));
	api_response_clear(&r);
	for (int i = 0; i < 16; i++) {
		char uri[64];

		snprintf(uri, sizeof(uri), "/subscribe/u%d/device/d", i);
		assert_int_equal(
		    get_from(f, uri, "192.0.2.9", &s[i]), HTTP_200);
		if (i < 15) {
			assert_int_equal(
			    get_from(f, "/readyz", NULL, &r), HTTP_200);
			api_response_clear(&r);
		}
	}
	/* At max_streams: a subscribe would get 503, so /readyz says 503. */
	assert_int_equal(get_from(f, "/readyz", NULL, &r), HTTP_503);
	assert_non_null(strstr(r.body.data, "\"error\""));
	api_response_clear(&r);
	end_stream(f, &s[0]);
	assert_int_equal(get_from(f, "/readyz", NULL, &r), HTTP_200);
	api_response_clear(&r);
	for (int i = 1; i < 16; i++)
		end_stream(f, &s[i]);
	/* Stopping: 503 at once, /healthz still 200. */
	api_stop(f->api);
	assert_int_equal(get_from(f, "/readyz", NULL, &r), HTTP_503);
	assert_non_null(strstr(r.body.data, "stopping"));
	api_response_clear(&r);
	assert_int_equal(get_from(f, "/healthz", NULL, &r), HTTP_200);
	api_response_clear(&r);
	fixture_free(f);
}

/* Issue 12: /metrics to BEEP_METRICS_ALLOW addresses only. */
static void
test_api_metrics_allow(void **state)
{
	const char *argv[] = {"beep-signal"};
	const char *argv2[] = {"beep-signal", "--metrics-allow", "10.0.0.0/8"};
	struct fixture *f = fixture_argv(1, argv);
	struct api_response r;

	(void)state;
	assert_int_equal(get_from(f, "/metrics", "127.0.0.1", &r), HTTP_200);
	assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body.data, "\nbeep_streams_open 0\n"));
	api_response_clear(&r);
	assert_int_equal(get_from(f, "/metrics", "::1", &r), HTTP_200);
	api_response_clear(&r);
	assert_int_equal(get_from(f, "/metrics", "10.1.2.3", &r), HTTP_403);
	assert_null(strstr(r.body.data, "beep_"));
	api_response_clear(&r);
	assert_int_equal(get_from(f, "/metrics", NULL, &r), HTTP_403);
	api_response_clear(&r);
	fixture_free(f);
	f = fixture_argv(3, argv2);
	assert_int_equal(get_from(f, "/metrics", "10.1.2.3", &r), HTTP_200);
	api_response_clear(&r);
	assert_int_equal(get_from(f, "/metrics", "127.0.0.1", &r), HTTP_403);
	api_response_clear(&r);
	fixture_free(f);
}

/*
 * From loopback the counters go only to a Host that is an address or
 * localhost (DNS rebinding; test 68), and loopback is what
 * BEEP_METRICS_ALLOW takes for it: a scoped address ("::1%lo", as Go
 * writes one and Caddy passes it on) too.  The allow-list took ::1%lo
 * as ::1 while the Host check took it for no loopback and let a page
 * whose name was re-pointed at the host read the counters.  An address
 * the list allows that is no loopback (fe80::1%eth0) is asked by any
 * name still.
 */
static void
test_api_metrics_loopback_host(void **state)
{
	const char *argv[] = {
	    "beep-signal", "--metrics-allow", "127.0.0.0/8, ::1, fe80::/10"};
	static const char *const loopback[] = {"127.0.0.1", "127.1.2.3", "::1",
	    "::1%lo", "::ffff:127.0.0.1", "::ffff:127.0.0.1%lo"};
	static const char *const uris[] = {"/metrics", "/healthz"};
	struct fixture *f = fixture_argv(3, argv);

	(void)state;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		for (size_t u = 0; u < 2; u++) {
			struct api_request req = {.method = "GET",
			    .uri = uris[u],
			    .remote_addr = loopback[i],
			    .host = "rebound.example:9180"};
			struct api_response r = {0};

			api_handle(f->api, &req, NULL, &r);
			if (strstr(r.body.data, "beep_streams_open") != NULL ||
			    strstr(r.body.data, "\"streams\"") != NULL)
				fail_msg("%s from %s with a foreign Host gave "
				         "the counters",
				    uris[u], loopback[i]);
			api_response_clear(&r);
			req.host = "localhost:9180";
			api_handle(f->api, &req, NULL, &r);
			assert_int_equal(r.status, HTTP_200);
			if (strstr(r.body.data, "beep_streams_open") == NULL &&
			    strstr(r.body.data, "\"streams\"") == NULL)
				fail_msg("%s from %s as localhost: no "
				         "counters",
				    uris[u], loopback[i]);
			api_response_clear(&r);
		}
	{
		struct api_request req = {.method = "GET",
		    .uri = "/metrics",
		    .remote_addr = "fe80::1%eth0",
		    .host = "scraper.example:9180"};
		struct api_response r = {0};

		api_handle(f->api, &req, NULL, &r);
		assert_int_equal(r.status, HTTP_200);
		api_response_clear(&r);
	}
	fixture_free(f);
}

/*
 * A stream opens with its position: an event "position", empty data and
 * the id (every browser sets its last event id from an event it
 * dispatches; Firefox and WebKit from no other block).  A client cut
 * before its first message resumes from it and gets what its ghost took.
 */
static void
test_api_stream_position(void **state)
{
	struct registry_limits l = {.grace_ms = 60000, .replay_ms = 60000};
	struct fixture *f = fixture_open("*", &l);
	struct api_request req = {
	    .method = "GET", .uri = "/subscribe/u/device/d"};
	struct api_response sub = {0}, sub2 = {0}, r;
	struct registry_batch b;
	struct sse_parser p;
	struct buf all = {0};
	char pos[128];

	(void)state;
	api_handle(f->api, &req, NULL, &sub);
	assert_non_null(sub.stream);
	api_stream_open(f->api, &sub.start, &all);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.events[0].type, "position");
	assert_int_equal(p.events[0].data.len, 0);
	assert_string_equal(p.events[0].id, p.last_id);
	assert_int_equal(p.comments, 1);
	assert_true(strchr(p.last_id, '-') != NULL);
	snprintf(pos, sizeof(pos), "%s", p.last_id);
	sse_parser_free(&p);
	buf_free(&all);
	/* Posted while the client is cut; the ghost takes it. */
	assert_int_equal(call(f, "POST", "/user/u/device/d", "application/json",
	                     "{\"data\":\"one\"}", &r),
	    HTTP_200);
	api_response_clear(&r);
	assert_int_equal(
	    registry_wait(f->reg, sub.stream, 0, &b), REGISTRY_MESSAGES);
	registry_batch_release(&b);
	/* The reconnect, with the id it parsed, gets it. */
	req.last_event_id = pos;
	api_handle(f->api, &req, NULL, &sub2);
	assert_non_null(sub2.stream);
	assert_false(sub2.start.reset);
	api_stream_open(f->api, &sub2.start, &all);
	assert_int_equal(
	    registry_wait(f->reg, sub2.stream, 0, &b), REGISTRY_MESSAGES);
	for (struct registry_msg *m = b.first; m != NULL;
	     m = registry_batch_next(&b, m))
		api_stream_message(f->api, m, false, &all);
	registry_batch_release(&b);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.events[0].type, "position");
	assert_string_equal(p.events[1].data.data, "one");
	sse_parser_free(&p);
	buf_free(&all);
	/* A replaced stream says so, and to wait long before retrying. */
	api_stream_replaced(&all);
	sse_parse(&p, all.data, all.len);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.events[0].type, "replaced");
	assert_non_null(strstr(p.events[0].data.data, "\"reason\""));
	assert_true(p.retry >= 10000);
	sse_parser_free(&p);
	buf_free(&all);
	registry_unsubscribe(f->reg, sub.stream);
	registry_unsubscribe(f->reg, sub2.stream);
	api_response_clear(&sub);
	api_response_clear(&sub2);
	fixture_free(f);
}

/* Posts not accepted (memory full, stopping) get 503 + Retry-After. */
static void
test_api_post_refused(void **state)
{
	struct registry_limits l = {.grace_ms = 60000, .max_message_bytes = 64};
	struct fixture *f = fixture_open("*", &l);
	struct api_request req = {
	    .method = "GET", .uri = "/subscribe/u/device/d"};
	struct api_response sub = {0}, r = {0};

	(void)state;
	api_handle(f->api, &req, NULL, &sub);
	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);
	req = (struct api_request){.method = "POST",
	    .uri = "/user/u/device/d",
	    .content_type = "application/json",
	    .body = "{\"data\":\"0123456789012345678901234567890123456789\"}"};
	req.body_len = strlen(req.body);
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_202);
	api_response_clear(&r);
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_503);
	assert_true(has_header(&r, "Retry-After: "));
	assert_string_equal(r.body.data, "{\"error\":\"message memory full\"}");
	api_response_clear(&r);
	req = (struct api_request){
	    .method = "GET", .uri = "/healthz", .remote_addr = "127.0.0.1"};
	api_handle(f->api, &req, NULL, &r);
	assert_non_null(strstr(r.body.data, "\"message_bytes\":"));
	assert_null(strstr(r.body.data, "\"message_bytes\":0"));
	api_response_clear(&r);
	/* The counters are for BEEP_METRICS_ALLOW; others get the status. */
	req.remote_addr = "192.0.2.1";
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_200);
	assert_string_equal(r.body.data, "{\"status\":\"ok\"}");
	api_response_clear(&r);
	registry_close(f->reg);
	req = (struct api_request){.method = "POST",
	    .uri = "/user/u/device/d",
	    .content_type = "application/json",
	    .body = "{\"data\":1}"};
	req.body_len = strlen(req.body);
	api_handle(f->api, &req, NULL, &r);
	assert_int_equal(r.status, HTTP_503);
	assert_true(has_header(&r, "Retry-After: "));
	assert_string_equal(r.body.data, "{\"error\":\"service is stopping\"}");
	api_response_clear(&r);
	fixture_free(f);
}

/*
 * With memory short, a POST for a device whose stream is past its share
 * of it gets 503 "device backlogged" + Retry-After: not accepted.
 */
static void
test_api_post_backlogged(void **state)
{
	struct registry_limits l = {
	    .grace_ms = 60000, .max_message_bytes = 400};
	struct fixture *f = fixture_open("*", &l);
	struct api_request req = {
	    .method = "GET", .uri = "/subscribe/u/device/d"};
	struct api_response sub = {0}, r = {0};
	struct registry_stats st;
	int accepted = 0;

	(void)state;
	api_handle(f->api, &req, NULL, &sub);
	req = (struct api_request){.method = "POST",
	    .uri = "/user/u/device/d",
	    .content_type = "application/json",
	    .body = "{\"data\":\"0123456789012345678901234567890123456789\"}"};
	req.body_len = strlen(req.body);
	/* The stream never reads: accepted until it is past half of 400. */
	for (;;) {
		api_handle(f->api, &req, NULL, &r);
		if (r.status != HTTP_200)
			break;
		accepted++;
		api_response_clear(&r);
	}
	assert_int_equal(r.status, HTTP_503);
	assert_true(has_header(&r, "Retry-After: "));
	assert_string_equal(r.body.data, "{\"error\":\"device backlogged\"}");
	api_response_clear(&r);
	registry_stats(f->reg, &st);
	assert_true(accepted > 1);
	assert_int_equal(st.published, (uint64_t)accepted);
	assert_int_equal(st.backlogged, 1);
	assert_true(st.message_bytes > 200 && st.message_bytes <= 400);
	registry_unsubscribe(f->reg, sub.stream);
	api_response_clear(&sub);
	fixture_free(f);
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
	assert_true(has_header(&r, "Allow: GET, HEAD, OPTIONS\r\n"));
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
	        test_api_resume_zero_led_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_subscribe_post_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_full_is_503, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_body_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_api_cors_list, setup_list, teardown),
	    cmocka_unit_test(test_api_stream_position),
	    cmocka_unit_test(test_api_post_refused),
	    cmocka_unit_test(test_api_post_backlogged),
	    cmocka_unit_test(test_api_cookie_needs_same_origin),
	    cmocka_unit_test(test_api_cookie_star_trusts_no_origin),
	    cmocka_unit_test(test_api_token_too_long),
	    cmocka_unit_test(test_api_header_mode_cross_site),
	    cmocka_unit_test(test_api_header_mode_named_listed),
	    cmocka_unit_test(test_api_header_mode_no_claim),
	    cmocka_unit_test(test_api_precheck_before_body),
	    cmocka_unit_test(test_api_streams_per_device_refused),
	    cmocka_unit_test(test_api_streams_per_address),
	    cmocka_unit_test(test_api_displace_only_when_open),
	    cmocka_unit_test(test_api_streams_per_address_not_with_auth),
	    cmocka_unit_test(test_api_post_key_per_sender),
	    cmocka_unit_test(test_api_ipv6_network),
	    cmocka_unit_test(test_api_refused_as_event_stream),
	    cmocka_unit_test(test_api_packed_over_replay_bytes),
	    cmocka_unit_test(test_api_readyz),
	    cmocka_unit_test(test_api_metrics_allow),
	    cmocka_unit_test(test_api_metrics_loopback_host),
	    cmocka_unit_test_setup_teardown(
	        test_api_ice_servers, setup, teardown),
	};

	body_init(); /* bodies parsed as the server parses them */
	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
