/* crossentropy.c — fused softmax cross-entropy over rows of logits[N,V]:
 *   losses[n]  = logsumexp(logits[n]) - logits[n, targets[n]]
 *   dlogits[n] = dloss * (softmax(logits[n]) - onehot(targets[n]))   (written, not added)
 * The log-sum-exp is taken about the row maximum and summed in double, in index order; the
 * softmax reuses those exponentials (p = e / sum).
 * dlogits may alias logits: each row's loss is computed before the row is overwritten, and
 * element j of the row is read before it is written. */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"

void cpu_crossentropy(Backend *be, float *losses, void *dlogits, const void *logits,
                      const int32_t *targets, int N, int V, float dloss) {
    (void)be;
    const float *x = logits;
    float *dx = dlogits;
#pragma omp parallel
    {
        /* exp(row[j] - max) of the current row, kept for the gradient: softmax = e / sum,
         * one exp per element instead of two (double exp is most of this op's time) */
        double *e = dx ? malloc((size_t)V * sizeof *e) : NULL;
#pragma omp for schedule(dynamic, 16)
        for (int n = 0; n < N; n++) {
            const float *row = x + (size_t)n * V;
            float maxv = -INFINITY;
            for (int j = 0; j < V; j++)
                if (row[j] > maxv) maxv = row[j];
            double sum = 0.0;
            for (int j = 0; j < V; j++) {
                double ej = exp((double)row[j] - maxv);
                if (e) e[j] = ej;
                sum += ej;
            }
            double lse = maxv + log(sum);
            int target = targets[n];
            losses[n] = (float)(lse - row[target]);
            if (dx) {
                float *drow = dx + (size_t)n * V;
                const double inv = 1.0 / sum;
                for (int j = 0; j < V; j++) {
                    /* without the buffer (out of memory) each p is recomputed: same formula */
                    double p = e ? e[j] * inv : exp((double)row[j] - maxv) * inv;
                    drow[j] = (float)(dloss * (p - (j == target ? 1.0 : 0.0)));
                }
            }
        }
        free(e);
    }
}
