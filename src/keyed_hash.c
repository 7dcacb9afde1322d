/*
 * keyed_hash: see keyed_hash.h.
 *
 * SipHash-2-4 (Aumasson and Bernstein, 2012), written here from its
 * specification and checked against its reference outputs
 * (test_keyed_hash).  Not libsodium's crypto_shorthash, the same function:
 * libsodium has 568 bytes of static TLS, which glibc puts at the top of
 * every thread's stack, where a sleeping stream's frames have ~1,280 bytes
 * (README, memory per stream): linked in, it cost every stream a second
 * stack page (test 45).
 */
#include "keyed_hash.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static unsigned char keyed_hash_key[KEYED_HASH_KEY_BYTES];
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

/* Eight bytes at p, little-endian. */
static inline uint64_t
keyed_hash_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint64_t
keyed_hash_rotl(uint64_t x, int b)
{
	return x << b | x >> (64 - b);
}

#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = keyed_hash_rotl(v1, 13);                                  \
		v1 ^= v0;                                                      \
		v0 = keyed_hash_rotl(v0, 32);                                  \
		v2 += v3;                                                      \
		v3 = keyed_hash_rotl(v3, 16);                                  \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = keyed_hash_rotl(v3, 21);                                  \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = keyed_hash_rotl(v1, 17);                                  \
		v1 ^= v2;                                                      \
		v2 = keyed_hash_rotl(v2, 32);                                  \
	} while (0)

uint64_t
keyed_hash_siphash24(
    const void *in, size_t len, const unsigned char key[KEYED_HASH_KEY_BYTES])
{
	const unsigned char *p = in, *end = p + (len - len % 8);
	uint64_t k0 = keyed_hash_le64(key), k1 = keyed_hash_le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56;

	for (; p != end; p += 8) {
		uint64_t m = keyed_hash_le64(p);

		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	/*
	 * The last 0-7 bytes, under the length's low byte.  A switch that
	 * falls through, as the reference code has it: a loop cost about 55
	 * instructions per device key of a POST (a check, a shift and an
	 * or per byte, and the count), the jump and these ors about 15.
	 */
	switch (len % 8) {
	case 7:
		b |= (uint64_t)p[6] << 48;
		/* FALLTHROUGH */
	case 6:
		b |= (uint64_t)p[5] << 40;
		/* FALLTHROUGH */
	case 5:
		b |= (uint64_t)p[4] << 32;
		/* FALLTHROUGH */
	case 4:
		b |= (uint64_t)p[3] << 24;
		/* FALLTHROUGH */
	case 3:
		b |= (uint64_t)p[2] << 16;
		/* FALLTHROUGH */
	case 2:
		b |= (uint64_t)p[1] << 8;
		/* FALLTHROUGH */
	case 1:
		b |= (uint64_t)p[0];
		break;
	case 0:
		break;
	}
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

unsigned
keyed_hash(const void *key, size_t len)
{
	keyed_hash_init();
	return (unsigned)keyed_hash_siphash24(key, len, keyed_hash_key);
}

uint64_t
keyed_hash64(const void *key, size_t len)
{
	uint64_t h;

	keyed_hash_init();
	h = keyed_hash_siphash24(key, len, keyed_hash_key);
	return h != 0 ? h : 1;
}
