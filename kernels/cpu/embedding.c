/* embedding.c — token embedding lookup (forward) and its scatter-add backward. */
#include <string.h>

#include "cpu_ops.h"

/* Columns per work item of the backward: each thread owns whole column blocks of dtable. */
enum { EMBED_COL_BLOCK = 64 };

/* out[n, :] = table[tokens[n], :] */
void cpu_embedding_forward(Backend *be, void *out, const int32_t *tokens, const void *table,
                           int N, int C) {
    (void)be;
    float *o = out;
    const float *tab = table;
#pragma omp parallel for schedule(dynamic, 64)
    for (int n = 0; n < N; n++)
        memcpy(o + (size_t)n * C, tab + (size_t)tokens[n] * C, (size_t)C * sizeof(float));
}

/* dtable[tokens[n], :] += dout[n, :]. Several positions may hold the same token, so rows of
 * dtable are shared between positions: the work is split over column blocks instead, and
 * each block walks the positions in order (fixed summation order, no races). */
void cpu_embedding_backward(Backend *be, float *dtable, const void *dout,
                            const int32_t *tokens, int N, int C) {
    (void)be;
    const float *g = dout;
    int blocks = (C + EMBED_COL_BLOCK - 1) / EMBED_COL_BLOCK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < blocks; blk++) {
        int c0 = blk * EMBED_COL_BLOCK;
        int c1 = c0 + EMBED_COL_BLOCK < C ? c0 + EMBED_COL_BLOCK : C;
        for (int n = 0; n < N; n++) {
            float *row = dtable + (size_t)tokens[n] * C;
            const float *grow = g + (size_t)n * C;
            for (int c = c0; c < c1; c++) row[c] += grow[c];
        }
    }
}
