/*
 * JSON Web Tokens built by hand, for the unit tests and the fuzz drivers
 * (tests/fuzz/): base64url and an HS256 signature, with libcrypto, so
 * that a test can encode any bytes as a token's parts, well-formed JSON
 * or not, and sign them or not.  libjwt (test_api.c) only builds valid
 * tokens.
 */
#ifndef TEST_TOKEN_H
#define TEST_TOKEN_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Append p[0..len) to out in base64url, without padding (RFC 7515). */
static inline void
token_b64url(struct buf *out, const void *p, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;
		char q[4];

		if (n > 1)
			v |= (unsigned)s[i + 1] << 8;
		if (n > 2)
			v |= s[i + 2];
		for (size_t k = 0; k < 4; k++)
			q[k] = abc[(v >> (18 - 6 * k)) & 63];
		buf_append(out, q, n + 1);
	}
}

/*
 * Append base64url(head) "." base64url(payload) ".": a token up to its
 * signature, which the caller appends.
 */
static inline void
token_head_payload(struct buf *out, const void *head, size_t head_len,
    const void *payload, size_t payload_len)
{
	token_b64url(out, head, head_len);
	buf_append(out, ".", 1);
	token_b64url(out, payload, payload_len);
	buf_append(out, ".", 1);
}

/* Append the HS256 signature of p[0..len) under secret, in base64url. */
static inline void
token_sign_hs256(struct buf *out, const char *secret, const void *p, size_t len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;

	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), p, len, mac,
	        &mac_len) == NULL)
		abort();
	token_b64url(out, mac, mac_len);
}

#endif
