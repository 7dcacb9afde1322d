/* body: see body.h. */
#include "body.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "depth.h"
#include "util.h"

bool
body_event_valid(const char *s, size_t len)
{
	if (len == 0 || len > BODY_EVENT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		        c == '-'))
			return false;
	}
	return true;
}

static enum http_status
body_decode_json(const char *body, size_t len, unsigned max_depth,
    struct body_msg *msg, const char **why)
{
	json_t *root, *data, *event;
	json_error_t err;

	if (!depth_json_within(body, len, max_depth)) {
		*why = "JSON nested too deeply";
		return HTTP_400;
	}
	root = json_loadb(body, len, JSON_ALLOW_NUL, &err);
	if (root == NULL) {
		*why = "malformed JSON";
		return HTTP_400;
	}
	if (!json_is_object(root)) {
		*why = "JSON body must be an object";
		goto fail;
	}
	event = json_object_get(root, "event");
	if (event != NULL && !json_is_null(event)) {
		if (!json_is_string(event) ||
		    !body_event_valid(
		        json_string_value(event), json_string_length(event))) {
			*why = "event must be 1-64 characters of "
			       "[A-Za-z0-9_.-]";
			goto fail;
		}
		msg->event = xstrdup(json_string_value(event));
	}
	data = json_object_get(root, "data");
	if (data == NULL || json_is_null(data) ||
	    (json_is_string(data) && json_string_length(data) == 0)) {
		*why = "no data supplied";
		goto fail;
	}
	if (json_is_string(data)) {
		msg->data_len = json_string_length(data);
		msg->data = xmemdup(json_string_value(data), msg->data_len);
	} else {
		char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);

		msg->is_json = true;
		msg->data_len = strlen(text);
		msg->data = xmemdup(text, msg->data_len);
		free(text);
	}
	json_decref(root);
	return HTTP_200;
fail:
	json_decref(root);
	body_msg_clear(msg);
	return HTTP_400;
}

static enum http_status
body_decode_form(
    const char *body, size_t len, struct body_msg *msg, const char **why)
{
	const char *p = body, *end = body + len;
	bool have_data = false, have_event = false;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		size_t klen = (size_t)((eq ? eq : pair_end) - p), vlen, n;
		char *key = xmalloc(klen + 1), *val;

		if (http_percent_decode(p, klen, true, key, &n) < 0) {
			free(key);
			*why = "malformed form encoding";
			goto fail;
		}
		vlen = eq ? (size_t)(pair_end - eq - 1) : 0;
		val = xmalloc(vlen + 1);
		if (http_percent_decode(
		        eq ? eq + 1 : "", vlen, true, val, &vlen) < 0) {
			free(key);
			free(val);
			*why = "malformed form encoding";
			goto fail;
		}
		/* The first occurrence of a field wins. */
		if (!have_data && strcmp(key, "data") == 0 && n == 4) {
			msg->data = val;
			msg->data_len = vlen;
			have_data = true;
			val = NULL;
		} else if (!have_event && strcmp(key, "event") == 0 && n == 5) {
			if (!body_event_valid(val, vlen)) {
				free(key);
				free(val);
				*why = "event must be 1-64 characters of "
				       "[A-Za-z0-9_.-]";
				goto fail;
			}
			msg->event = val;
			have_event = true;
			val = NULL;
		}
		free(key);
		free(val);
		p = pair_end + 1;
	}
	if (!have_data || msg->data_len == 0) {
		*why = "no data supplied";
		goto fail;
	}
	if (!http_utf8_valid(msg->data, msg->data_len)) {
		*why = "data must be valid UTF-8";
		goto fail;
	}
	return HTTP_200;
fail:
	body_msg_clear(msg);
	return HTTP_400;
}

enum http_status
body_decode(const char *ct, const char *body, size_t len, unsigned max_depth,
    struct body_msg *msg, const char **why)
{
	memset(msg, 0, sizeof(*msg));
	if (http_media_type_is(ct, "application/json"))
		return body_decode_json(body, len, max_depth, msg, why);
	if (http_media_type_is(ct, "application/x-www-form-urlencoded"))
		return body_decode_form(body, len, msg, why);
	*why = "Content-Type must be application/json or "
	       "application/x-www-form-urlencoded";
	return HTTP_415;
}

void
body_msg_clear(struct body_msg *msg)
{
	free(msg->data);
	free(msg->event);
	memset(msg, 0, sizeof(*msg));
}
