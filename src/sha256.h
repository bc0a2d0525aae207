/* sha256.h — SHA-256 (FIPS 180-4), used to fingerprint resolved configs (config_sha256 in run
 * files) and anything else that needs a content hash. Owns: the hash and its hex form. */
#ifndef NORMBENCH_SHA256_H
#define NORMBENCH_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t nbytes;      /* message length so far */
    unsigned char buf[64];
    size_t nbuf;          /* bytes waiting in buf */
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, unsigned char digest[32]);

/* One-shot: the digest of data[0..n) as 64 lower-case hex digits plus a NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);

#endif
