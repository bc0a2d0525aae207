/* metrics.c — per-layer probes and the pruning sweep (see metrics.h; definitions in
 * docs/design.md section 4). */
#include "metrics.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ---- containers ----------------------------------------------------------------------- */

int probe_set_from_val(ProbeSet *ps, const Dataset *ds, int batches, int B, char *err,
                       size_t errlen) {
    memset(ps, 0, sizeof *ps);
    size_t available = dataset_val_batches(ds, B);
    size_t n = batches > 0 ? (size_t)batches : 0;
    if (n > available) n = available;
    ps->B = B;
    ps->T = ds->seq_len;
    if (n == 0) return 0;
    size_t per = (size_t)B * (size_t)ps->T;
    ps->tokens = malloc(sizeof *ps->tokens * per * n);
    ps->targets = malloc(sizeof *ps->targets * per * n);
    if (!ps->tokens || !ps->targets) {
        probe_set_free(ps);
        snprintf(err, errlen, "metrics: out of memory for %zu probe batches", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        dataset_val_batch(ds, i, B, ps->tokens + i * per, ps->targets + i * per);
    ps->n_batches = (int)n;
    return 0;
}

void probe_set_free(ProbeSet *ps) {
    free(ps->tokens);
    free(ps->targets);
    ps->tokens = ps->targets = NULL;
    ps->n_batches = 0;
}

static void fill_nan(double *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

int layer_probe_alloc(LayerProbe *p, int L) {
    memset(p, 0, sizeof *p);
    size_t P = (size_t)(L + 1);
    p->L = L;
    p->step = -1;
    p->variance = malloc(sizeof(double) * P);
    p->angular = malloc(sizeof(double) * P * P);
    p->angular_last = malloc(sizeof(double) * P * P);
    p->grad_norm = malloc(sizeof(double) * (size_t)(L > 0 ? L : 1));
    if (!p->variance || !p->angular || !p->angular_last || !p->grad_norm) {
        layer_probe_free(p);
        return -1;
    }
    fill_nan(p->variance, P);
    fill_nan(p->angular, P * P);
    fill_nan(p->angular_last, P * P);
    fill_nan(p->grad_norm, (size_t)L);
    return 0;
}

void layer_probe_free(LayerProbe *p) {
    free(p->variance), free(p->angular), free(p->angular_last), free(p->grad_norm);
    p->variance = p->angular = p->angular_last = p->grad_norm = NULL;
}

int prune_result_alloc(PruneResult *p, int L) {
    memset(p, 0, sizeof *p);
    p->L = L;
    p->base_loss = NAN;
    size_t n = (size_t)(L > 0 ? L : 1);
    p->block = malloc(sizeof(double) * n);
    p->attn = malloc(sizeof(double) * n);
    p->mlp = malloc(sizeof(double) * n);
    if (!p->block || !p->attn || !p->mlp) {
        prune_result_free(p);
        return -1;
    }
    fill_nan(p->block, n), fill_nan(p->attn, n), fill_nan(p->mlp, n);
    return 0;
}

void prune_result_free(PruneResult *p) {
    free(p->block), free(p->attn), free(p->mlp);
    p->block = p->attn = p->mlp = NULL;
}

/* ---- primitives ----------------------------------------------------------------------- */

double metrics_token_variance(const float *x, int C) {
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    return var / C; /* two passes: no cancellation for large means (post_ln's h_l are not) */
}

static double l2norm(const float *x, int C) {
    double s = 0.0;
    for (int i = 0; i < C; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* d(a, b) given |a| and |b| (see metrics_angular_distance). */
static double angular_with_norms(const float *a, const float *b, int C, double na, double nb) {
    if (na == 0.0 || nb == 0.0) return na == nb ? 0.0 : 0.5;
    double minus = 0.0, plus = 0.0;
    for (int i = 0; i < C; i++) {
        double u = a[i] / na, v = b[i] / nb;
        minus += (u - v) * (u - v);
        plus += (u + v) * (u + v);
    }
    /* angle = 2 atan(|u - v| / |u + v|) for unit u, v (Kahan, "How Futile are Mindless
     * Assessments of Roundoff", 2006, section 12) */
    return 2.0 * atan2(sqrt(minus), sqrt(plus)) / PI;
}

double metrics_angular_distance(const float *a, const float *b, int C) {
    return angular_with_norms(a, b, C, l2norm(a, C), l2norm(b, C));
}

/* ---- probes --------------------------------------------------------------------------- */

void metrics_grad_norms(const Model *m, double scale, LayerProbe *p) {
    for (int l = 1; l <= p->L; l++) p->grad_norm[l - 1] = scale * model_grad_norm_block(m, l - 1);
}

int metrics_hidden_probes(Model *m, const ProbeSet *ps, LayerProbe *p, char *err,
                          size_t errlen) {
    const ModelConfig *c = model_config(m);
    const int L = c->n_layer, C = c->d_model, B = model_batch(m), T = c->seq_len, N = B * T;
    const size_t P = (size_t)L + 1;
    if (p->L != L) {
        snprintf(err, errlen, "metrics: probe sized for %d layers, model has %d", p->L, L);
        return -1;
    }
    fill_nan(p->variance, P);
    fill_nan(p->angular, P * P);
    fill_nan(p->angular_last, P * P);
    if (ps->n_batches == 0) return 0;
    if (ps->B != B || ps->T != T) {
        snprintf(err, errlen, "metrics: probe batches are %d x %d, the model runs %d x %d",
                 ps->B, ps->T, B, T);
        return -1;
    }
    float *ha = malloc(sizeof *ha * (size_t)N * C), *hb = malloc(sizeof *hb * (size_t)N * C);
    double *na = malloc(sizeof *na * (size_t)N), *nb = malloc(sizeof *nb * (size_t)N),
           *tok = malloc(sizeof *tok * (size_t)N);
    double *var_sum = calloc(P, sizeof *var_sum), *all_sum = calloc(P * P, sizeof *all_sum),
           *last_sum = calloc(P * P, sizeof *last_sum);
    int rc = -1;
    if (!ha || !hb || !na || !nb || !tok || !var_sum || !all_sum || !last_sum) {
        snprintf(err, errlen, "metrics: out of memory for hidden-state probes");
        goto done;
    }
    for (int batch = 0; batch < ps->n_batches; batch++) {
        size_t off = (size_t)batch * (size_t)N;
        model_forward(m, ps->tokens + off, NULL, NULL);
        /* One layer in memory against each later one: (L+1)(L+2)/2 downloads of [N, C],
         * memory 2 N C whatever the depth. Per-token values are computed in parallel into
         * tok[] and summed serially, so the result does not depend on the thread count. */
        for (int l = 0; l <= L; l++) {
            model_get_hidden(m, l, ha);
#pragma omp parallel for schedule(static)
            for (int n = 0; n < N; n++) {
                tok[n] = metrics_token_variance(ha + (size_t)n * C, C);
                na[n] = l2norm(ha + (size_t)n * C, C);
            }
            for (int n = 0; n < N; n++) var_sum[l] += tok[n];
            for (int mm = l + 1; mm <= L; mm++) {
                model_get_hidden(m, mm, hb);
#pragma omp parallel for schedule(static)
                for (int n = 0; n < N; n++) {
                    nb[n] = l2norm(hb + (size_t)n * C, C);
                    tok[n] = angular_with_norms(ha + (size_t)n * C, hb + (size_t)n * C, C, na[n],
                                                nb[n]);
                }
                size_t at = (size_t)l * P + (size_t)mm;
                for (int n = 0; n < N; n++) {
                    all_sum[at] += tok[n];
                    if (n % T == T - 1) last_sum[at] += tok[n]; /* last position of a sequence */
                }
            }
        }
    }
    const double n_all = (double)ps->n_batches * N, n_last = (double)ps->n_batches * B;
    for (size_t l = 0; l < P; l++) {
        p->variance[l] = var_sum[l] / n_all;
        for (size_t mm = l; mm < P; mm++) {
            p->angular[l * P + mm] = mm == l ? 0.0 : all_sum[l * P + mm] / n_all;
            p->angular_last[l * P + mm] = mm == l ? 0.0 : last_sum[l * P + mm] / n_last;
        }
    }
    rc = 0;
done:
    free(ha), free(hb), free(na), free(nb), free(tok);
    free(var_sum), free(all_sum), free(last_sum);
    return rc;
}

int metrics_probe_batches(int probe_tokens, int B, int T) {
    const long long per = (long long)B * T;
    long long n = per > 0 ? ((long long)probe_tokens + per - 1) / per : 1;
    return n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
}

int metrics_prune_batch(Model *m, const ProbeSet *ps, int batch, unsigned what, double *sums,
                        char *err, size_t errlen) {
    const ModelConfig *c = model_config(m);
    const int L = c->n_layer;
    if (batch < 0 || batch >= ps->n_batches || ps->B != model_batch(m) || ps->T != c->seq_len) {
        snprintf(err, errlen, "metrics: pruning batch %d of %d (%d x %d) on a model that runs "
                 "%d x %d", batch, ps->n_batches, ps->B, ps->T, model_batch(m), c->seq_len);
        return -1;
    }
    unsigned char *skip = calloc((size_t)2 * L, 1);
    if (!skip) {
        snprintf(err, errlen, "metrics: out of memory");
        return -1;
    }
    double *block = sums, *attn = sums + L, *mlp = sums + 2 * L, *base = sums + 3 * L;
    /* One full forward, then every variant from its first removed sublayer
     * (model_forward_from), blocks from the last to the first, so that each variant reads
     * only residual-stream states no earlier variant has overwritten: the results equal one
     * full forward per variant exactly, for about half the work. */
    const size_t per = (size_t)ps->B * (size_t)ps->T;
    const int32_t *tok = ps->tokens + (size_t)batch * per, *tgt = ps->targets + (size_t)batch * per;
    *base += model_forward(m, tok, tgt, NULL);
    for (int l = L - 1; l >= 0; l--) {
        /* SkipMask: skip[2l + s] replaces sublayer s of block l+1 by the identity */
        if (what & PRUNE_WHAT_MLP) {
            skip[2 * l + 1] = 1;
            mlp[l] += model_forward_from(m, 2 * l + 1, tok, tgt, skip);
            skip[2 * l + 1] = 0;
        }
        if (what & PRUNE_WHAT_BLOCK) {
            skip[2 * l] = skip[2 * l + 1] = 1;
            block[l] += model_forward_from(m, 2 * l, tok, tgt, skip);
            skip[2 * l] = skip[2 * l + 1] = 0;
        }
        if (what & PRUNE_WHAT_ATTN) {
            skip[2 * l] = 1;
            attn[l] += model_forward_from(m, 2 * l, tok, tgt, skip);
            skip[2 * l] = 0;
        }
    }
    free(skip);
    return 0;
}

void metrics_prune_finish(const double *sums, int batches, PruneResult *out) {
    const int L = out->L;
    const double nb = batches > 0 ? (double)batches : NAN;
    out->batches = batches;
    out->base_loss = sums[3 * L] / nb;
    for (int l = 0; l < L; l++) {
        out->block[l] = sums[l] / nb;
        out->attn[l] = sums[L + l] / nb;
        out->mlp[l] = sums[2 * L + l] / nb;
    }
}

int metrics_prune(Model *m, const ProbeSet *ps, PruneResult *out, char *err, size_t errlen) {
    const ModelConfig *c = model_config(m);
    const int L = c->n_layer;
    if (out->L != L) {
        snprintf(err, errlen, "metrics: pruning result sized for %d layers, model has %d",
                 out->L, L);
        return -1;
    }
    double *sum = calloc((size_t)3 * L + 1, sizeof *sum); /* block, attn, mlp, base */
    if (!sum) {
        snprintf(err, errlen, "metrics: out of memory");
        return -1;
    }
    /* Losses are summed over batches in batch order, as train_evaluate sums them. */
    for (int i = 0; i < ps->n_batches; i++)
        if (metrics_prune_batch(m, ps, i, PRUNE_WHAT_ALL, sum, err, errlen) != 0) {
            free(sum);
            return -1;
        }
    metrics_prune_finish(sum, ps->n_batches, out);
    free(sum);
    return 0;
}
