/*
 * event: what a POST leaves in the registry, and how a stream turns it
 * into SSE.  A message is packed once, by the publisher; each stream
 * renders it, as posted or in an envelope that names the verified sender.
 * Pure: no I/O, no locks.
 *
 * The packed form: one byte, 's' (the data is text) or 'j' (the data is
 * compact JSON text); the event name and the sender's JSON ("null" when
 * unknown), each NUL-terminated; then the data bytes to the end.  'r'
 * marks the service's own `event: reset` in the middle of a stream (see
 * event_pack_reset()): rendered as the reset a stream starts with, never
 * in an envelope.
 */
#ifndef BEEP_EVENT_H
#define BEEP_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/*
 * Pack data[0..len) (JSON text when is_json, else text), the event name
 * (NULL: none) and the sender (JSON text, NULL: "null") into out.
 */
void event_pack(struct buf *out, const char *data, size_t len, bool is_json,
    const char *event, const char *from_json);

/*
 * The bytes event_pack_to() writes for these (event_pack()'s arguments but
 * data's bytes), and event_pack() appends.
 */
size_t event_pack_len(size_t len, const char *event, const char *from_json);

/*
 * event_pack() into dst, which has room for event_pack_len() bytes: the
 * same bytes, for a block made to their size (registry_msg_alloc()).
 */
void event_pack_to(char *dst, const char *data, size_t len, bool is_json,
    const char *event, const char *from_json);

/*
 * Pack the service's own reset event, {"reason":reason}: messages the
 * stream should have had before it were lost (a cluster node found a gap).
 */
void event_pack_reset(struct buf *out, const char *reason);

/*
 * Append the SSE event for a packed message to out, with the given id.
 * With envelope, its data is {"from":<sender>,"data":<data as JSON>}.
 * Returns 0, or -1 when p is not a packed message.
 */
int event_render(
    struct buf *out, const char *p, size_t len, const char *id, bool envelope);

/* The sender's JSON for user and device (device may be NULL); free it. */
char *event_from_json(const char *user, const char *device);

#endif
