/* ref64.c — float64 plain-loop references for the ops of kernels/backend.h (see ref64.h).
 * Written for obviousness, not speed: each formula is the textbook one, cited inline. */
#include "ref64.h"

#include <math.h>

void ref_embedding_forward(double *out, const int32_t *tokens, const double *table, int N,
                           int C) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = table[(size_t)tokens[n] * C + c];
}

void ref_matmul_forward(double *out, const double *inp, const double *w, int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int i = 0; i < IC; i++) s += inp[(size_t)n * IC + i] * w[(size_t)o * IC + i];
            out[(size_t)n * OC + o] = s;
        }
}

void ref_norm_stats(NormKind kind, double *mean, double *rstd, const double *inp, int N, int C,
                    double eps) {
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double mu = 0.0, m2 = 0.0;
        if (kind == NORM_LAYER) {
            for (int c = 0; c < C; c++) mu += x[c];
            mu /= C;
        }
        for (int c = 0; c < C; c++) m2 += (x[c] - mu) * (x[c] - mu);
        m2 /= C;
        if (mean) mean[n] = mu;
        if (rstd) rstd[n] = 1.0 / sqrt(m2 + eps);
    }
}

/* RMSNorm: Zhang & Sennrich 2019 eq. 4; LayerNorm: Ba et al. 2016 eq. 4 */
void ref_norm_forward(NormKind kind, double *out, const double *inp, const double *w,
                      const double *b, int N, int C, double eps, double s) {
    for (int n = 0; n < N; n++) {
        double mu, r;
        ref_norm_stats(kind, &mu, &r, inp + (size_t)n * C, 1, C, eps);
        for (int c = 0; c < C; c++) {
            double y = (inp[(size_t)n * C + c] - mu) * r * w[c];
            if (kind == NORM_LAYER && b) y += b[c];
            out[(size_t)n * C + c] = s * y;
        }
    }
}

/* RoFormer (Su et al. 2021) eq. 34, in HF LLaMA's rotate_half pairing */
void ref_rope_forward(double *out, const double *inp, int B, int T, int NH, int HS,
                      double theta) {
    int half = HS / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                size_t base = (((size_t)b * T + t) * NH + h) * HS;
                for (int i = 0; i < half; i++) {
                    double angle = t * pow(theta, -2.0 * i / HS);
                    double x1 = inp[base + i], x2 = inp[base + i + half];
                    out[base + i] = x1 * cos(angle) - x2 * sin(angle);
                    out[base + i + half] = x2 * cos(angle) + x1 * sin(angle);
                }
            }
}

/* score of query t against key t2 for head h of batch b */
static double attention_score(const double *q, const double *k, int b, int t, int t2, int h,
                              int T, int NH, int HS) {
    size_t C = (size_t)NH * HS;
    const double *qt = q + ((size_t)b * T + t) * C + (size_t)h * HS;
    const double *kt = k + ((size_t)b * T + t2) * C + (size_t)h * HS;
    double s = 0.0;
    for (int i = 0; i < HS; i++) s += qt[i] * kt[i];
    return s / sqrt((double)HS);
}

/* Vaswani et al. 2017 eq. 1 with a causal mask */
void ref_attention_probs(double *probs, const double *q, const double *k, int B, int T, int NH,
                         int HS) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double *p = probs + (((size_t)b * NH + h) * T + t) * T;
                double maxs = -INFINITY, sum = 0.0;
                for (int t2 = 0; t2 <= t; t2++)
                    maxs = fmax(maxs, attention_score(q, k, b, t, t2, h, T, NH, HS));
                for (int t2 = 0; t2 < T; t2++) {
                    p[t2] = t2 <= t ? exp(attention_score(q, k, b, t, t2, h, T, NH, HS) - maxs)
                                    : 0.0;
                    sum += p[t2];
                }
                for (int t2 = 0; t2 < T; t2++) p[t2] /= sum;
            }
}

void ref_attention_forward(double *out, const double *q, const double *k, const double *v,
                           int B, int T, int NH, int HS) {
    size_t C = (size_t)NH * HS;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double maxs = -INFINITY, sum = 0.0;
                for (int t2 = 0; t2 <= t; t2++)
                    maxs = fmax(maxs, attention_score(q, k, b, t, t2, h, T, NH, HS));
                for (int t2 = 0; t2 <= t; t2++)
                    sum += exp(attention_score(q, k, b, t, t2, h, T, NH, HS) - maxs);
                double *ot = out + ((size_t)b * T + t) * C + (size_t)h * HS;
                for (int i = 0; i < HS; i++) ot[i] = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    double p = exp(attention_score(q, k, b, t, t2, h, T, NH, HS) - maxs) / sum;
                    const double *vt = v + ((size_t)b * T + t2) * C + (size_t)h * HS;
                    for (int i = 0; i < HS; i++) ot[i] += p * vt[i];
                }
            }
}

/* Shazeer 2020 eq. 6 (Swish_1 = SiLU) */
void ref_swiglu_forward(double *out, const double *gate, const double *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] / (1.0 + exp(-gate[i])) * up[i];
}

void ref_residual_forward(double *out, const double *x, double scale, const double *f,
                          size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = scale * x[i] + f[i];
}

void ref_crossentropy(double *losses, const double *logits, const int32_t *targets, int N,
                      int V) {
    for (int n = 0; n < N; n++) {
        const double *row = logits + (size_t)n * V;
        double maxv = -INFINITY, sum = 0.0;
        for (int j = 0; j < V; j++) maxv = fmax(maxv, row[j]);
        for (int j = 0; j < V; j++) sum += exp(row[j] - maxv);
        losses[n] = maxv + log(sum) - row[targets[n]];
    }
}

/* Loshchilov & Hutter 2019, Algorithm 2 */
void ref_adamw_update(double *p, double *m, double *v, const double *g, size_t n, double lr,
                      double beta1, double beta2, double eps, double weight_decay,
                      double grad_scale, int step) {
    double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    for (size_t i = 0; i < n; i++) {
        double gi = grad_scale * g[i];
        m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
        double mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * (mhat / (sqrt(vhat) + eps) + weight_decay * p[i]);
    }
}
