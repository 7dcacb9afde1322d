/*
 * FastCGI parameter handling: arbitrary bytes decoded as FCGI_PARAMS
 * name-value pairs (FastCGI 1.0, section 3.4), mapped onto an api_request
 * by the server's own server_params_to_request() (which the server's body
 * reading follows too: its CONTENT_LENGTH), and handled by api_handle() against a real
 * registry, on the production worker stack.  Streams a request opens stay
 * open for the rest of the input, so later requests post to them; each
 * stream's output is parsed as a browser would.
 *
 * Input: one byte for the authentication mode (0 open, 1 jwt, 2 header;
 * others open), then requests, each a 2-byte big-endian length and that
 * many bytes of FCGI_PARAMS, then a 2-byte length and that many bytes of
 * body.  A request with no parameters at all closes the oldest open
 * stream.  In jwt mode "@T" in a parameter stands for a valid token for
 * user "u", and "@D" for one pinned to device "d" (the fuzzer cannot sign).
 * Properties: every answer that is not a stream has a status, header
 * lines with no stray CR, LF or NUL, and a JSON body ({"error": "..."}
 * for 4xx and 5xx); every stream parses as SSE with one event per message.
 */
#include <jansson.h>

#include "api.h"
#include "body.h"
#include "fuzz.h"
#include "server_params.h"
#include "sse_parser.h"
#include "token.h"

#define MAX_OPEN 8
#define MAX_PARAMS 64
#define SECRET                                                                 \
	"fuzz-secret-of-some-length-at-least-64-bytes-for-hs512-xxxxxxxxx"
enum fuzz_mode { MODE_OPEN, MODE_JWT, MODE_HEADER, MODE__MAX };

static struct config confs[MODE__MAX];
static struct registry_limits limits;
static char *tokens[2]; /* "@T", "@D" */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A token for payload, signed with SECRET (HS256); free it. */
static char *
mint(const char *payload)
{
	static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct buf t = {0};

	token_head_payload(
	    &t, head, sizeof(head) - 1, payload, strlen(payload));
	token_sign_hs256(&t, SECRET, t.data, t.len - 1);
	return t.data;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Small limits, so that the fuzzer reaches each of them. */
	const char *args[] = {"fuzz", "--max-body", "1024", "--max-id", "16",
	    "--rate", "0", "--queue", "4", "--queue-bytes", "2048",
	    "--replay-max", "8", "--replay-bytes", "4096", "--max-streams", "6",
	    "--max-streams-per-device", "2", "--max-devices-per-user", "3",
	    "--max-streams-per-address", "3", "--max-message-memory", "65536",
	    "--cors-origins", "https://a.example, https://b.example",
	    "--log-level", "error", "--jwt-secret", SECRET, "--auth", NULL};
	const size_t n = sizeof(args) / sizeof(args[0]);

	(void)argc, (void)argv;
	body_init(); /* as main() does */
	for (int m = 0; m < MODE__MAX; m++) {
		args[n - 1] = m == MODE_JWT ? "jwt"
		    : m == MODE_HEADER      ? "header"
		                            : "none";
		if (config_parse(&confs[m], (int)n, (char **)args) != 0)
			abort();
	}
	tokens[0] = mint("{\"sub\":\"u\",\"exp\":4102444800}");
	tokens[1] = mint("{\"sub\":\"u\",\"device\":\"d\",\"exp\":4102444800}");
	config_registry_limits(&confs[MODE_OPEN], &limits);
	return 0;
}

/* libfcgi keeps each parameter as one "name=value" string, NULL-ended. */
struct params {
	char *kv[MAX_PARAMS + 1];
	size_t n;
};

static bool
read_len(const uint8_t **p, size_t *len, size_t *out)
{
	if (*len < 1)
		return false;
	if (**p >> 7 == 0) {
		*out = **p;
		*p += 1, *len -= 1;
		return true;
	}
	if (*len < 4)
		return false;
	*out = (size_t)((*p)[0] & 0x7f) << 24 | (size_t)(*p)[1] << 16 |
	    (size_t)(*p)[2] << 8 | (*p)[3];
	*p += 4, *len -= 4;
	return true;
}

/* Append s[0..len) to b with "@T" and "@D" replaced by the tokens. */
static void
append_value(struct buf *b, const uint8_t *s, size_t len, bool tokens_on)
{
	for (size_t i = 0; i < len; i++) {
		if (tokens_on && s[i] == '@' && i + 1 < len &&
		    (s[i + 1] == 'T' || s[i + 1] == 'D')) {
			buf_puts(b, tokens[s[i + 1] == 'D']);
			i++;
		} else {
			buf_append(b, s + i, 1);
		}
	}
}

/* Decode FCGI_PARAMS; false when malformed (libfcgi drops the request). */
static bool
params_decode(struct params *ps, const uint8_t *p, size_t len, bool tokens_on)
{
	ps->n = 0;
	ps->kv[0] = NULL;
	while (len > 0) {
		size_t nlen, vlen;
		struct buf kv = {0};

		if (!read_len(&p, &len, &nlen) || !read_len(&p, &len, &vlen) ||
		    nlen > len || vlen > len - nlen)
			return false;
		if (ps->n == MAX_PARAMS)
			return true;
		buf_append(&kv, p, nlen);
		buf_append(&kv, "=", 1);
		append_value(&kv, p + nlen, vlen, tokens_on);
		ps->kv[ps->n++] = kv.data;
		ps->kv[ps->n] = NULL;
		p += nlen + vlen, len -= nlen + vlen;
	}
	return true;
}

static void
params_clear(struct params *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->kv[i]);
	ps->n = 0;
	ps->kv[0] = NULL;
}

struct open {
	struct api_response resp[MAX_OPEN];
	size_t n;
};

static void
check_response(const struct api_response *r)
{
	const char *h = r->headers.data ? r->headers.data : "";
	json_t *doc;

	FUZZ_CHECK(r->status < HTTP__MAX);
	FUZZ_CHECK(strlen(h) == r->headers.len);
	/* Lines "Name: value\r\n", no CR or LF inside one. */
	for (const char *p = h; *p != '\0';) {
		const char *end = strstr(p, "\r\n");

		FUZZ_CHECK(end != NULL && end > p);
		FUZZ_CHECK(memchr(p, '\n', (size_t)(end - p)) == NULL &&
		    memchr(p, '\r', (size_t)(end - p)) == NULL);
		FUZZ_CHECK(memchr(p, ':', (size_t)(end - p)) != NULL);
		p = end + 2;
	}
	if (r->stream != NULL || r->status == HTTP_204) {
		FUZZ_CHECK(r->body.len == 0);
		return;
	}
	doc = json_loadb(r->body.data, r->body.len, JSON_DECODE_ANY, NULL);
	FUZZ_CHECK(doc != NULL);
	if (http_status_code[r->status] >= 400)
		FUZZ_CHECK(json_is_string(json_object_get(doc, "error")));
	json_decref(doc);
}

/*
 * Hand a stream its pending messages, as its thread would, and parse
 * them.  Returns false when its thread would end it (it fell too far
 * behind, or a newer stream of its device replaced it).
 */
static bool
drain(struct api *api, struct registry *reg, struct api_response *r, bool first)
{
	struct registry_batch b;
	struct buf out = {0};
	struct sse_parser sp;
	size_t want = 0;
	enum registry_wake w;

	/* A stream starts with its position, or with a reset. */
	if (first) {
		api_stream_open(api, &r->start, &out);
		want++;
	}
	while ((w = registry_wait(reg, r->stream, util_now_ms(), &b)) ==
	    REGISTRY_MESSAGES) {
		for (struct registry_msg *m = b.first; m != NULL;
		     m = registry_batch_next(&b, m))
			api_stream_message(api, m, r->envelope, &out);
		want += b.n;
		registry_batch_release(&b);
	}
	FUZZ_CHECK(w == REGISTRY_TIMEOUT || w == REGISTRY_OVERFLOW ||
	    w == REGISTRY_REPLACED);
	if (w == REGISTRY_REPLACED) {
		api_stream_replaced(&out);
		want++;
	}
	sse_parse(&sp, out.data ? out.data : "", out.len);
	FUZZ_CHECK(sp.n == (want < SSE_PARSER_MAX ? want : SSE_PARSER_MAX));
	/*
	 * Only a stream's start (within BEEP_RECONNECT_MS's spread) and a
	 * replaced stream's last words say when to come back.
	 */
	if (w == REGISTRY_REPLACED)
		FUZZ_CHECK(sp.retry == 30000);
	else if (first)
		FUZZ_CHECK(sp.retry >= (long)confs[MODE_OPEN].reconnect_ms &&
		    sp.retry <= (long)(confs[MODE_OPEN].reconnect_ms +
		                    confs[MODE_OPEN].reconnect_ms / 2));
	else
		FUZZ_CHECK(sp.retry == -1);
	if (first)
		FUZZ_CHECK(sp.n > 0 &&
		    strcmp(sp.events[0].type,
		        r->start.reset ? "reset" : "position") == 0);
	for (size_t i = 0; i < sp.n; i++) {
		FUZZ_CHECK(strcmp(sp.events[i].type, "replaced") == 0 ||
		    (sp.events[i].id[0] >= '0' && sp.events[i].id[0] <= '9'));
		/* No poster's message passes for the service's own. */
		FUZZ_CHECK((first && i == 0) ||
		    strcmp(sp.events[i].type, "position") != 0);
	}
	sse_parser_free(&sp);
	buf_free(&out);
	return w == REGISTRY_TIMEOUT;
}

/* End a stream as server_stream() does: api_stream_end() closes it. */
static void
close_stream(struct api *api, struct open *o, size_t i)
{
	api_stream_end(api, &o->resp[i]);
	api_response_clear(&o->resp[i]);
	memmove(
	    &o->resp[i], &o->resp[i + 1], (o->n - i - 1) * sizeof(o->resp[0]));
	o->n--;
}

static void
handle(const struct config *conf, struct api *api, struct registry *reg,
    struct open *o, struct params *ps, const char *body, size_t body_len)
{
	struct api_request ar = {0};
	struct api_response resp = {0};
	struct api_pending pending = {0};
	struct buf uri = {0}, last_id = {0};
	const char *cl;

	/* As server_handle() reads them: the server's own mapping. */
	server_params_to_request(ps->kv, conf->auth_param, &ar, &uri);
	/*
	 * Ids start with the registry's epoch, which the fuzzer cannot
	 * guess: a leading '@' stands for it, so resuming is reached.
	 */
	if (ar.last_event_id != NULL && ar.last_event_id[0] == '@') {
		buf_printf(&last_id, "%llu%s",
		    (unsigned long long)registry_epoch(reg),
		    ar.last_event_id + 1);
		ar.last_event_id = last_id.data;
	}
	/* A POST's body is read only when the checks before it pass. */
	if (ar.method != NULL && strcmp(ar.method, "POST") == 0 &&
	    api_precheck(api, &ar, METHOD_POST, &pending, &resp)) {
		cl = ar.content_length;
		ar.body_too_large =
		    (cl != NULL && strtoull(cl, NULL, 10) > conf->max_body) ||
		    body_len > conf->max_body;
		ar.body = body;
		ar.body_len = ar.body_too_large ? 0 : body_len;
	}
	api_handle(api, &ar, &pending, &resp);
	buf_free(&uri);
	buf_free(&last_id);
	if (resp.stream == NULL) {
		check_response(&resp);
		api_response_clear(&resp);
		return;
	}
	FUZZ_CHECK(resp.status == HTTP_200);
	check_response(&resp);
	if (o->n == MAX_OPEN)
		close_stream(api, o, 0);
	o->resp[o->n++] = resp;
	if (!drain(api, reg, &o->resp[o->n - 1], true))
		close_stream(api, o, o->n - 1);
}

struct job {
	const uint8_t *data;
	size_t size;
};

static void
run(void *arg)
{
	struct job *j = arg;
	enum fuzz_mode mode = j->size > 0 && j->data[0] < MODE__MAX
	    ? (enum fuzz_mode)j->data[0]
	    : MODE_OPEN;
	const uint8_t *p = j->data + (j->size > 0);
	size_t len = j->size - (j->size > 0);
	const struct config *conf = &confs[mode];
	struct registry *reg = registry_new(&limits);
	struct api *api = api_new(conf, reg, NULL, NULL);
	struct open o = {0};
	struct params ps;

	FUZZ_CHECK(api != NULL);
	while (len >= 2) {
		size_t plen = (size_t)p[0] << 8 | p[1], blen = 0;
		const uint8_t *params, *body;
		char *b;

		p += 2, len -= 2;
		plen = plen < len ? plen : len;
		params = p;
		p += plen, len -= plen;
		if (len >= 2) {
			blen = (size_t)p[0] << 8 | p[1];
			p += 2, len -= 2;
			blen = blen < len ? blen : len;
		}
		body = p;
		p += blen, len -= blen;
		if (plen == 0) {
			if (o.n > 0)
				close_stream(api, &o, 0);
			continue;
		}
		if (!params_decode(&ps, params, plen, mode == MODE_JWT)) {
			params_clear(&ps);
			continue;
		}
		/* An exact copy of the body, so a read past it is caught. */
		b = xmemdup(body, blen);
		handle(conf, api, reg, &o, &ps, b, blen);
		free(b);
		params_clear(&ps);
		for (size_t i = o.n; i-- > 0;)
			if (!drain(api, reg, &o.resp[i], false))
				close_stream(api, &o, i);
	}
	while (o.n > 0)
		close_stream(api, &o, 0);
	api_free(api);
	registry_free(reg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job j = {data, size};

	fuzz_on_worker_stack(run, &j);
	return 0;
}
