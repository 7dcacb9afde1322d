/*
 * keyed_hash: the hash function of every uthash table in the service.
 * Include this header instead of <uthash.h>.
 *
 * Clients choose most of those tables' keys: user and device names, the
 * addresses and senders the limits count.  uthash's own function
 * (Jenkins's) has no key, so anyone can compute it: a client could make
 * thousands of names that fall into one bucket (a laptop finds 3,000 in
 * seconds).  uthash then stops growing that table for good, and every
 * lookup there walks the whole chain.  The registry's lookups run under its
 * one lock, so a few such POSTs a second would stall every stream.  So
 * the tables hash with SipHash-2-4 under a key drawn at random once per
 * process: names that collide in one process do not collide in the next,
 * and nothing a client sees tells where a name falls.
 */
#ifndef BEEP_KEYED_HASH_H
#define BEEP_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

#define KEYED_HASH_KEY_BYTES 16

#ifdef UTHASH_H
#error "keyed_hash.h must come before <uthash.h>, which it includes"
#endif

/*
 * The hash of len bytes at key.  Draws the process's key from getrandom()
 * on its first call (keyed_hash_init() draws it at start).
 */
unsigned keyed_hash(const void *key, size_t len);

/*
 * keyed_hash() in 64 bits, never 0: a name to tell clients apart by
 * (registry_msg_set_sender()) that nothing outside the process can
 * compute, so that no client can make its own collide with another's.
 */
uint64_t keyed_hash64(const void *key, size_t len);

/* Draw the key now; the process stops if the kernel gives no random bytes. */
void keyed_hash_init(void);

/* SipHash-2-4 of len bytes at in under key (its 64-bit output). */
uint64_t keyed_hash_siphash24(
    const void *in, size_t len, const unsigned char key[KEYED_HASH_KEY_BYTES]);

#define HASH_FUNCTION(keyptr, keylen, hashv)                                   \
	((hashv) = keyed_hash((keyptr), (size_t)(keylen)))

#include <uthash.h>

#endif
