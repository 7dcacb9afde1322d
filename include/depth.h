/*
 * depth: how deeply a JSON text nests, measured without parsing it.
 * jansson's parser, dumper and destructor recurse once per level, and
 * worker threads have small stacks (SERVER_STACK_SIZE): every JSON text
 * from a client (a POST body, a token's header and payload, a forward-auth
 * claim) is measured here before any library parses it.  Pure: no I/O.
 */
#ifndef BEEP_DEPTH_H
#define BEEP_DEPTH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether arrays and objects in s[0..len) nest at most max deep.  Brackets
 * inside strings do not count; the text need not be valid JSON (what a
 * parser would refuse is measured all the same, so the answer bounds what
 * any parser could reach).  Stops at the first level past max.
 */
bool depth_json_within(const char *s, size_t len, unsigned max);

#endif
