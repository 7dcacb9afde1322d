/* keyed_hash: see keyed_hash.h. */
#include "keyed_hash.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

static unsigned char keyed_hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t keyed_hash_once = PTHREAD_ONCE_INIT;

static void
keyed_hash_draw(void)
{
	size_t got = 0;

	while (got < sizeof(keyed_hash_key)) {
		ssize_t n = getrandom(
		    keyed_hash_key + got, sizeof(keyed_hash_key) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A fixed key would undo the point: stop, and say why. */
			fprintf(stderr,
			    "beep-signal: getrandom: %s: no key for the hash "
			    "tables\n",
			    n < 0 ? strerror(errno) : "no bytes");
			abort();
		}
		got += (size_t)n;
	}
}

void
keyed_hash_init(void)
{
	pthread_once(&keyed_hash_once, keyed_hash_draw);
}

unsigned
keyed_hash(const void *key, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint32_t h;

	keyed_hash_init();
	crypto_shorthash(out, key, len, keyed_hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}
