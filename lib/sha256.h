/*
 * sha256.h - SHA-256 (FIPS 180-4), small and self-contained: the key of a
 * recorded request (cassette.h) and the draws of fault injection
 * (faults.h). Not for secrets: nothing here is constant-time.
 */
#ifndef ORCH_SHA256_H
#define ORCH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32 /* bytes in a digest */

struct sha256 {
	uint32_t h[8];          /* the state */
	uint64_t total;         /* bytes hashed so far */
	unsigned char buf[64];  /* a block being filled */
	size_t n;               /* bytes in buf */
};

void sha256_init(struct sha256 *s);
void sha256_add(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN]);

/* The digest of DATA (LEN bytes) as 64 lower-case hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char out[2 * SHA256_LEN + 1]);

#endif
