/* event: see event.h. */
#include "event.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

void
event_pack(struct buf *out, const char *data, size_t len, bool is_json,
    const char *event, const char *from_json)
{
	buf_reserve(out, len + 64);
	buf_append(out, is_json ? "j" : "s", 1);
	buf_puts(out, event ? event : "");
	buf_append(out, "", 1);
	buf_puts(out, from_json ? from_json : "null");
	buf_append(out, "", 1);
	buf_append(out, data, len);
}

void
event_pack_reset(struct buf *out, const char *reason)
{
	json_t *doc = json_pack("{s:s}", "reason", reason);
	char *data = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	buf_append(out, "r", 1);
	buf_puts(out, "reset");
	buf_append(out, "", 1);
	buf_puts(out, "null");
	buf_append(out, "", 1);
	buf_puts(out, data);
	free(data);
}

int
event_render(
    struct buf *out, const char *p, size_t len, const char *id, bool envelope)
{
	const char *end = p + len, *event, *from, *data;
	char *text = NULL, *enc = NULL;
	json_t *s;
	int rc = 0;

	if (len < 3 || (p[0] != 's' && p[0] != 'j' && p[0] != 'r'))
		return -1;
	event = p + 1;
	from = memchr(event, '\0', (size_t)(end - event));
	if (from == NULL)
		return -1;
	from++;
	data = memchr(from, '\0', (size_t)(end - from));
	if (data == NULL)
		return -1;
	data++;
	if (!envelope || p[0] == 'r') {
		sse_format_event(out, id, event[0] ? event : NULL, data,
		    (size_t)(end - data));
		return 0;
	}
	if (p[0] == 's') {
		/* Text becomes a JSON string: no line break survives it. */
		s = json_stringn(data, (size_t)(end - data));
		enc = s ? json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(s);
		if (enc == NULL)
			return -1;
	}
	text = xmalloc(
	    strlen(from) + (size_t)(end - data) + (enc ? strlen(enc) : 0) + 32);
	strcpy(text, "{\"from\":");
	strcat(text, from);
	strcat(text, ",\"data\":");
	if (enc != NULL) {
		strcat(text, enc);
	} else {
		size_t n = strlen(text);

		memcpy(text + n, data, (size_t)(end - data));
		text[n + (size_t)(end - data)] = '\0';
	}
	strcat(text, "}");
	sse_format_event(out, id, event[0] ? event : NULL, text, strlen(text));
	free(text);
	free(enc);
	return rc;
}

char *
event_from_json(const char *user, const char *device)
{
	json_t *doc = json_pack("{s:s, s:o}", "user", user, "device",
	    device ? json_string(device) : json_null());
	char *text = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	return text;
}
