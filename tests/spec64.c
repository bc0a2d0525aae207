/* spec64.c — the float64 specification of the ops of kernels/backend.h (see spec64.h).
 * Written for obviousness, not speed: each function is the textbook formula in plain loops,
 * cited beside it, with the derivation of each backward spelled out where it is not one line.
 * The backwards are checked against finite differences of the forwards in test_kernels.c,
 * so a slip in either shows up there before it is used to judge a backend. */
#include "spec64.h"

#include <math.h>

/* ---- embedding --------------------------------------------------------------------------- */

void spec_embedding_forward(double *out, const int32_t *tokens, const double *table, int N,
                            int C) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = table[(size_t)tokens[n] * C + c];
}

/* Each out row is a copy of one table row, so its gradient lands on that row; a token that
 * occurs at several positions collects the sum of their gradients. */
void spec_embedding_backward(double *dtable, const double *dout, const int32_t *tokens, int N,
                             int C) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dtable[(size_t)tokens[n] * C + c] += dout[(size_t)n * C + c];
}

/* ---- linear layer ------------------------------------------------------------------------ */

void spec_matmul_forward(double *out, const double *inp, const double *w, int N, int IC,
                         int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int i = 0; i < IC; i++) s += inp[(size_t)n * IC + i] * w[(size_t)o * IC + i];
            out[(size_t)n * OC + o] = s;
        }
}

/* out[n,o] = sum_i inp[n,i] w[o,i], so d out[n,o] / d inp[n,i] = w[o,i] and
 * d out[n,o] / d w[o,i] = inp[n,i]:
 *   dinp[n,i] += sum_o dout[n,o] w[o,i];   dw[o,i] += sum_n dout[n,o] inp[n,i] */
void spec_matmul_backward(double *dinp, double *dw, const double *dout, const double *inp,
                          const double *w, int N, int IC, int OC) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double s = 0.0;
                for (int o = 0; o < OC; o++) s += dout[(size_t)n * OC + o] * w[(size_t)o * IC + i];
                dinp[(size_t)n * IC + i] += s;
            }
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < IC; i++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o] * inp[(size_t)n * IC + i];
            dw[(size_t)o * IC + i] += s;
        }
}

/* ---- RMSNorm / LayerNorm ----------------------------------------------------------------- */

void spec_norm_stats(NormKind kind, double *mean, double *rstd, const double *inp, int N, int C,
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
void spec_norm_forward(NormKind kind, double *out, const double *inp, const double *w,
                       const double *b, int N, int C, double eps, double s) {
    for (int n = 0; n < N; n++) {
        double mu, r;
        spec_norm_stats(kind, &mu, &r, inp + (size_t)n * C, 1, C, eps);
        for (int c = 0; c < C; c++) {
            double y = (inp[(size_t)n * C + c] - mu) * r * w[c];
            if (kind == NORM_LAYER && b) y += b[c];
            out[(size_t)n * C + c] = s * y;
        }
    }
}

/* Per row, with xhat_c = (x_c - mu) r, r = 1/sqrt(m2 + eps), m2 = mean_c (x_c - mu)^2 and
 * out_c = s (xhat_c w_c + b_c):
 *   d mu / d x_j = 1/C (LayerNorm; mu = 0 for RMSNorm),  d m2 / d x_j = 2 (x_j - mu) / C,
 *   so d r / d x_j = -r^3 (x_j - mu) / C, and
 *   d xhat_c / d x_j = r (delta_cj - 1/C - xhat_c xhat_j / C)   (LayerNorm)
 *                    = r (delta_cj       - xhat_c xhat_j / C)   (RMSNorm).
 * The backward is the transposed Jacobian applied to dout, written out entry by entry:
 *   dinp_j += sum_c dout_c s w_c d xhat_c / d x_j;  dw_c += s dout_c xhat_c;  db_c += s dout_c.
 * (Summing over c gives the familiar closed form r (g - mean(g) - xhat mean(g xhat)) with
 * g = s dout w that backends use; the spec keeps the Jacobian so it is checkable by eye.) */
void spec_norm_backward(NormKind kind, double *dinp, double *dw, double *db, const double *dout,
                        const double *inp, const double *w, int N, int C, double eps, double s) {
    const double centre = kind == NORM_LAYER ? 1.0 / C : 0.0;
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double mu, r;
        spec_norm_stats(kind, &mu, &r, x, 1, C, eps);
        for (int j = 0; j < C; j++) {
            double xhat_j = (x[j] - mu) * r, sum = 0.0;
            for (int c = 0; c < C; c++) {
                double xhat_c = (x[c] - mu) * r;
                double dxhat_c_dx_j = r * ((c == j ? 1.0 : 0.0) - centre - xhat_c * xhat_j / C);
                sum += dy[c] * s * w[c] * dxhat_c_dx_j;
            }
            dinp[(size_t)n * C + j] += sum;
        }
        for (int c = 0; c < C; c++) {
            dw[c] += s * dy[c] * (x[c] - mu) * r;
            if (kind == NORM_LAYER && db) db[c] += s * dy[c];
        }
    }
}

/* ---- rotary position embedding ----------------------------------------------------------- */

/* RoFormer (Su et al. 2021) eq. 34, in HF LLaMA's rotate_half pairing: the pair
 * (x_i, x_{i+HS/2}) rotated by the angle t theta^(-2i/HS) */
void spec_rope_forward(double *out, const double *inp, int B, int T, int NH, int HS,
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

/* The forward is out = R x with R the rotation [[cos, -sin], [sin, cos]] on each pair, so
 * dinp += R^T dout, the rotation by -angle:
 *   dx_i += cos dout_i + sin dout_{i+HS/2};   dx_{i+HS/2} += -sin dout_i + cos dout_{i+HS/2} */
void spec_rope_backward(double *dinp, const double *dout, int B, int T, int NH, int HS,
                        double theta) {
    int half = HS / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                size_t base = (((size_t)b * T + t) * NH + h) * HS;
                for (int i = 0; i < half; i++) {
                    double angle = t * pow(theta, -2.0 * i / HS);
                    double d1 = dout[base + i], d2 = dout[base + i + half];
                    dinp[base + i] += d1 * cos(angle) + d2 * sin(angle);
                    dinp[base + i + half] += -d1 * sin(angle) + d2 * cos(angle);
                }
            }
}

/* ---- causal attention -------------------------------------------------------------------- */

/* The HS-vector of head h at position t of batch b in a [B,T,NH*HS] tensor */
static const double *head_row(const double *x, int b, int t, int h, int T, int NH, int HS) {
    return x + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
}

/* p[t2] = softmax over t2 <= t of q_t . k_t2 / sqrt(HS), and 0 for t2 > t (the causal mask):
 * row t of head h's probability matrix. Vaswani et al. 2017 eq. 1. */
static void attention_row(double *p, const double *q, const double *k, int b, int h, int t,
                          int T, int NH, int HS) {
    const double *qt = head_row(q, b, t, h, T, NH, HS);
    double maxs = -INFINITY, sum = 0.0;
    for (int t2 = 0; t2 < T; t2++) {
        if (t2 > t) {
            p[t2] = 0.0;
            continue;
        }
        const double *kt = head_row(k, b, t2, h, T, NH, HS);
        double score = 0.0;
        for (int i = 0; i < HS; i++) score += qt[i] * kt[i];
        p[t2] = score / sqrt((double)HS);
        maxs = fmax(maxs, p[t2]);
    }
    /* softmax about the row maximum: the same function, without overflow */
    for (int t2 = 0; t2 <= t; t2++) {
        p[t2] = exp(p[t2] - maxs);
        sum += p[t2];
    }
    for (int t2 = 0; t2 <= t; t2++) p[t2] /= sum;
}

void spec_attention_probs(double *probs, const double *q, const double *k, int B, int T, int NH,
                          int HS) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++)
                attention_row(probs + (((size_t)b * NH + h) * T + t) * T, q, k, b, h, t, T, NH,
                              HS);
}

/* out_t = sum_{t2 <= t} P[t, t2] v_t2 */
void spec_attention_forward(double *out, const double *q, const double *k, const double *v,
                            int B, int T, int NH, int HS) {
    double p[T];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                attention_row(p, q, k, b, h, t, T, NH, HS);
                double *ot = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                for (int i = 0; i < HS; i++) ot[i] = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const double *vt = head_row(v, b, t2, h, T, NH, HS);
                    for (int i = 0; i < HS; i++) ot[i] += p[t2] * vt[i];
                }
            }
}

/* With S = Q K^T / sqrt(HS) (masked), P = softmax_rows(S), O = P V, row by row:
 *   dV_t2 += P[t,t2] dO_t                     (O is linear in V)
 *   dP[t,t2] = dO_t . V_t2                    (O is linear in P)
 *   dS[t,t2] = P[t,t2] (dP[t,t2] - sum_u P[t,u] dP[t,u])
 *                                             (softmax Jacobian: dP_j/dS_i = P_j (delta_ij - P_i))
 *   dQ_t += sum_t2 dS[t,t2] K_t2 / sqrt(HS);  dK_t2 += dS[t,t2] Q_t / sqrt(HS)
 * Masked entries have P = 0, hence dS = 0: the future gets no gradient. */
void spec_attention_backward(double *dq, double *dk, double *dv, const double *dout,
                             const double *q, const double *k, const double *v, int B, int T,
                             int NH, int HS) {
    const size_t C = (size_t)NH * HS;
    const double scale = 1.0 / sqrt((double)HS);
    double p[T], dp[T];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                attention_row(p, q, k, b, h, t, T, NH, HS);
                const double *dot = head_row(dout, b, t, h, T, NH, HS);
                const double *qt = head_row(q, b, t, h, T, NH, HS);
                double *dqt = dq + ((size_t)b * T + t) * C + (size_t)h * HS;
                double rowsum = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const double *vt = head_row(v, b, t2, h, T, NH, HS);
                    dp[t2] = 0.0;
                    for (int i = 0; i < HS; i++) dp[t2] += dot[i] * vt[i];
                    rowsum += p[t2] * dp[t2];
                }
                for (int t2 = 0; t2 <= t; t2++) {
                    const double *kt = head_row(k, b, t2, h, T, NH, HS);
                    double *dkt = dk + ((size_t)b * T + t2) * C + (size_t)h * HS;
                    double *dvt = dv + ((size_t)b * T + t2) * C + (size_t)h * HS;
                    double ds = p[t2] * (dp[t2] - rowsum);
                    for (int i = 0; i < HS; i++) {
                        dvt[i] += p[t2] * dot[i];
                        dqt[i] += ds * kt[i] * scale;
                        dkt[i] += ds * qt[i] * scale;
                    }
                }
            }
}

/* ---- SwiGLU ------------------------------------------------------------------------------ */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Shazeer 2020 eq. 6 (Swish_1 = SiLU, Elfwing et al. 2018) */
void spec_swiglu_forward(double *out, const double *gate, const double *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

/* silu(x) = x sigmoid(x);  silu'(x) = sigmoid(x) + x sigmoid(x) (1 - sigmoid(x))
 * (sigmoid' = sigmoid (1 - sigmoid)) */
void spec_swiglu_backward(double *dgate, double *dup, const double *dout, const double *gate,
                          const double *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double sg = sigmoid(gate[i]);
        dgate[i] += dout[i] * up[i] * (sg + gate[i] * sg * (1.0 - sg));
        dup[i] += dout[i] * gate[i] * sg;
    }
}

/* ---- scaled residual --------------------------------------------------------------------- */

/* DeepNorm's x_{l+1} = a x_l + F(x_l) (Wang et al. 2022 eq. 1); a = 1 is the plain residual */
void spec_residual_forward(double *out, const double *x, double scale, const double *f,
                           size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = scale * x[i] + f[i];
}

void spec_scaled_add(double *dst, const double *src, double scale, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] += scale * src[i];
}

/* ---- cross-entropy ----------------------------------------------------------------------- */

/* log sum_j exp(row[j]), taken about the row maximum (the same value, without overflow) */
static double logsumexp(const double *row, int V) {
    double maxv = -INFINITY, sum = 0.0;
    for (int j = 0; j < V; j++) maxv = fmax(maxv, row[j]);
    for (int j = 0; j < V; j++) sum += exp(row[j] - maxv);
    return maxv + log(sum);
}

/* -log softmax(z)_y = logsumexp(z) - z_y */
void spec_crossentropy_forward(double *losses, const double *logits, const int32_t *targets,
                               int N, int V) {
    for (int n = 0; n < N; n++) {
        const double *row = logits + (size_t)n * V;
        losses[n] = logsumexp(row, V) - row[targets[n]];
    }
}

/* d (logsumexp(z) - z_y) / d z_j = softmax(z)_j - [j == y] */
void spec_crossentropy_backward(double *dlogits, const double *logits, const int32_t *targets,
                                int N, int V, double dloss) {
    for (int n = 0; n < N; n++) {
        const double *row = logits + (size_t)n * V;
        double lse = logsumexp(row, V);
        for (int j = 0; j < V; j++)
            dlogits[(size_t)n * V + j] =
                dloss * (exp(row[j] - lse) - (j == targets[n] ? 1.0 : 0.0));
    }
}

/* ---- optimizer and reductions ------------------------------------------------------------ */

/* Loshchilov & Hutter 2019, Algorithm 2 with alpha = 1 and schedule multiplier eta_t = lr
 * (so the decay is lr * wd * p, as in PyTorch's AdamW) */
void spec_adamw_update(double *p, double *m, double *v, const double *g, size_t n, double lr,
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

double spec_sumsq(const double *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

/* --- DyT (Zhu et al. 2025, "Transformers without Normalization", eq. 1) -------------------- */
/* out = s (w tanh(alpha x) + b) */
void spec_dyt_forward(double *out, const double *inp, double alpha, const double *w,
                      const double *b, int N, int C, double s) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            out[i] = s * (w[c] * tanh(alpha * inp[i]) + (b ? b[c] : 0.0));
        }
}

/* d tanh(a x)/dx = a (1 - tanh^2), d/da = x (1 - tanh^2) */
void spec_dyt_backward(double *dinp, double *dalpha, double *dw, double *db, const double *dout,
                       const double *inp, double alpha, const double *w, int N, int C,
                       double s) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            double t = tanh(alpha * inp[i]), g = s * dout[i];
            dinp[i] += g * w[c] * alpha * (1.0 - t * t);
            *dalpha += g * w[c] * inp[i] * (1.0 - t * t);
            dw[c] += g * t;
            if (db) db[c] += g;
        }
}

/* --- branch scale (LayerScale: SC = C; SkipInit: SC = 1) ----------------------------------- */
void spec_branch_scale_forward(double *out, const double *inp, const double *scale, int N, int C,
                               int SC) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = scale[SC == 1 ? 0 : c] * inp[(size_t)n * C + c];
}

void spec_branch_scale_backward(double *dinp, double *dscale, const double *dout,
                                const double *inp, const double *scale, int N, int C, int SC) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            dinp[i] += scale[SC == 1 ? 0 : c] * dout[i];
            dscale[SC == 1 ? 0 : c] += dout[i] * inp[i];
        }
}
