/* crossentropy.c — fused softmax cross-entropy over rows of logits[N,V]:
 *   losses[n]  = logsumexp(logits[n]) - logits[n, targets[n]]
 *   dlogits[n] = dloss * (softmax(logits[n]) - onehot(targets[n]))   (written, not added)
 * The log-sum-exp is taken about the row maximum and summed in double, in index order.
 * dlogits may alias logits: each row's loss is computed before the row is overwritten, and
 * element j of the row is read before it is written. */
#include <math.h>

#include "cpu_ops.h"

void cpu_crossentropy(Backend *be, float *losses, void *dlogits, const void *logits,
                      const int32_t *targets, int N, int V, float dloss) {
    (void)be;
    const float *x = logits;
    float *dx = dlogits;
#pragma omp parallel for schedule(dynamic, 16)
    for (int n = 0; n < N; n++) {
        const float *row = x + (size_t)n * V;
        float maxv = -INFINITY;
        for (int j = 0; j < V; j++)
            if (row[j] > maxv) maxv = row[j];
        double sum = 0.0;
        for (int j = 0; j < V; j++) sum += exp((double)row[j] - maxv);
        double lse = maxv + log(sum);
        int target = targets[n];
        losses[n] = (float)(lse - row[target]);
        if (dx) {
            float *drow = dx + (size_t)n * V;
            for (int j = 0; j < V; j++) {
                double p = exp((double)row[j] - lse);
                drow[j] = (float)(dloss * (p - (j == target ? 1.0 : 0.0)));
            }
        }
    }
}
