/* tokenizer.c — the byte-level tokenizer (see tokenizer.h): token id = byte value. */
#include "tokenizer.h"

size_t tokenizer_encode_bytes(const unsigned char *bytes, size_t n, uint16_t *tokens) {
    for (size_t i = 0; i < n; i++) tokens[i] = bytes[i];
    return n;
}

long tokenizer_decode(const uint16_t *tokens, size_t n, char *out, size_t outcap) {
    if (outcap > 0) out[0] = '\0';
    if (outcap < n + 1) return -1;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] >= TOKENIZER_VOCAB) {
            out[0] = '\0';
            return -1;
        }
        out[i] = (char)(unsigned char)tokens[i];
    }
    out[n] = '\0';
    return (long)n;
}
