/* tokenizer.h — normbench's byte-level tokenizer: vocabulary of 256, token id = byte value.
 * Owns only the byte <-> token mapping; files and shards live in data.h. No state. */
#ifndef NORMBENCH_TOKENIZER_H
#define NORMBENCH_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define TOKENIZER_VOCAB 256

/* tokens[i] = bytes[i] for i < n; returns n (the token count always equals the byte count). */
size_t tokenizer_encode_bytes(const unsigned char *bytes, size_t n, uint16_t *tokens);

/* Writes the n bytes of tokens into out (capacity outcap, which must be >= n + 1) and
 * NUL-terminates. Returns n, or -1 when a token is >= TOKENIZER_VOCAB or out is too small
 * (out is then the empty string when outcap > 0). Embedded NUL bytes are copied as they are. */
long tokenizer_decode(const uint16_t *tokens, size_t n, char *out, size_t outcap);

#endif
