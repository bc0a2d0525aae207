/* schemes.c — the table of normalization schemes (docs/design.md section 3).
 *
 * Each row derives SublayerSpecs from the depth L and the layer index l (1-based). Every
 * constant comes from the row's formula with the config's overrides applied; nothing is
 * hard-coded for a particular depth (the Mix-LN and LNS releases hard-coded DeepNorm's
 * a = 2.828, right only for L = 32, and used the init gain (8L)^(+1/4) instead of
 * (8L)^(-1/4): scheme tests check the formulas at several depths to rule that out).
 */
#include "schemes.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void scheme_params_default(SchemeParams *p) {
    p->mixln_alpha = NAN;
    p->deepnorm_alpha = NAN;
    p->deepnorm_beta = NAN;
    p->init_std = 0.02;
}

/* The plain spec: Pre-LN placement, unit scales, normal(0, init_std) on every weight. */
static void spec_base(const SchemeParams *p, SublayerSpec *out) {
    out->placement = PLACE_PRE;
    out->in_scale = 1.0f;
    out->residual_scale = 1.0f;
    out->init = INIT_NORMAL;
    out->init_std = (float)p->init_std;
    for (int i = 0; i < SUBLAYER_MAX_WEIGHTS; i++) out->init_gain[i] = 1.0f;
}

double scheme_mixln_boundary(const SchemeParams *p, int L) {
    double alpha = isnan(p->mixln_alpha) ? 0.25 : p->mixln_alpha;
    return floor(alpha * L);
}

/* DeepNet (Wang et al. 2022), decoder-only row of Table 1: alpha = (2N)^(1/4),
 * beta = (8N)^(-1/4), N = number of layers. */
double scheme_deepnorm_alpha(const SchemeParams *p, int L) {
    return isnan(p->deepnorm_alpha) ? pow(2.0 * L, 0.25) : p->deepnorm_alpha;
}
double scheme_deepnorm_beta(const SchemeParams *p, int L) {
    return isnan(p->deepnorm_beta) ? pow(8.0 * L, -0.25) : p->deepnorm_beta;
}

/* Pre-LN (GPT-2, LLaMA): x + F(N(x)). */
static void spec_pre_ln(const SchemeParams *p, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)l, (void)s;
    spec_base(p, out);
}

/* Post-LN (Vaswani et al. 2017): N(x + F(x)). */
static void spec_post_ln(const SchemeParams *p, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)l, (void)s;
    spec_base(p, out);
    out->placement = PLACE_POST;
}

/* DeepNorm: N(a x + F(x)); xavier-normal init with gain b on v, o and the MLP weights,
 * gain 1 on q and k (torchscale's reset_parameters / DeepNet section 2.3). */
static void spec_deepnorm(const SchemeParams *p, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)l;
    spec_base(p, out);
    float beta = (float)scheme_deepnorm_beta(p, L);
    out->placement = PLACE_POST;
    out->residual_scale = (float)scheme_deepnorm_alpha(p, L);
    out->init = INIT_XAVIER;
    if (s == SUBLAYER_ATTN) {
        out->init_gain[ROLE_V] = beta;
        out->init_gain[ROLE_O] = beta;
    } else {
        out->init_gain[ROLE_GATE] = beta;
        out->init_gain[ROLE_UP] = beta;
        out->init_gain[ROLE_DOWN] = beta;
    }
}

/* DeepNorm as the LNS and Mix-LN releases trained it (their NORM_TYPE=deeppost), the rows
 * behind the papers' published DeepNorm numbers: N(2.8284271247461903 x + F(x)), the
 * residual scale hard-coded (DeepNet's (2L)^(1/4) only for L = 32), and xavier-normal init
 * with gain (8L)^(+1/4) on v, o, gate, up and down (DeepNet's b is (8L)^(-1/4)), gain 1 on
 * q and k. Source: peft_pretraining/modeling_llama.py of github.com/lmsdss/LayerNorm-Scaling
 * (5d4dd11, 2025-02-07: LlamaDecoderLayer.forward `residual = 2.8284271247461903 *
 * residual`; LlamaPreTrainedModel._init_weights `xavier_normal_(..., gain=(num_layers * 8)
 * ** 0.25)` for is_deeppost_layer, gain=1 for is_deeppost_layer_qk), the same lines in
 * github.com/pixeli99/MixLN (ff45826). scheme.deepnorm_alpha / deepnorm_beta do not apply. */
static void spec_deepnorm_release(const SchemeParams *p, int L, int l, Sublayer s,
                                  SublayerSpec *out) {
    (void)l;
    spec_base(p, out);
    const float gain = (float)pow(8.0 * L, 0.25);
    out->placement = PLACE_POST;
    out->residual_scale = (float)SCHEME_DEEPNORM_RELEASE_ALPHA;
    out->init = INIT_XAVIER;
    if (s == SUBLAYER_ATTN) {
        out->init_gain[ROLE_V] = gain;
        out->init_gain[ROLE_O] = gain;
    } else {
        out->init_gain[ROLE_GATE] = gain;
        out->init_gain[ROLE_UP] = gain;
        out->init_gain[ROLE_DOWN] = gain;
    }
}

/* Mix-LN (Li et al. 2024): Post-LN for l <= floor(alpha L), Pre-LN after. */
static void spec_mix_ln(const SchemeParams *p, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)s;
    spec_base(p, out);
    if (l <= scheme_mixln_boundary(p, L)) out->placement = PLACE_POST;
}

/* LayerNorm Scaling (Sun et al. 2025, "The Curse of Depth", eq. 12): x + F(N(x) / sqrt(l)). */
static void spec_lns(const SchemeParams *p, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)s;
    spec_base(p, out);
    out->in_scale = (float)(1.0 / sqrt((double)l));
}

static const SchemeRow scheme_table[] = {
    {"pre_ln", "x + F(N(x))", "GPT-2 / LLaMA", spec_pre_ln},
    {"post_ln", "N(x + F(x))", "Vaswani et al. 2017", spec_post_ln},
    {"deepnorm", "N(a x + F(x)), a=(2L)^(1/4), xavier gain b=(8L)^(-1/4)",
     "DeepNet, Wang et al. 2022", spec_deepnorm},
    {"deepnorm_release", "N(2.8284 x + F(x)), xavier gain (8L)^(+1/4): the LNS/Mix-LN releases' DeepNorm",
     "lmsdss/LayerNorm-Scaling 5d4dd11 and pixeli99/MixLN ff45826, modeling_llama.py (deeppost)",
     spec_deepnorm_release},
    {"mix_ln", "post_ln for l <= floor(alpha L), pre_ln after (alpha 0.25)",
     "Mix-LN, Li et al. 2024", spec_mix_ln},
    {"lns", "x + F(N(x) / sqrt(l))", "Curse of Depth, Sun et al. 2025, eq. 12", spec_lns},
};

size_t scheme_count(void) { return sizeof scheme_table / sizeof scheme_table[0]; }

const SchemeRow *scheme_at(size_t i) { return i < scheme_count() ? &scheme_table[i] : NULL; }

const SchemeRow *scheme_find(const char *name) {
    for (size_t i = 0; i < scheme_count(); i++)
        if (strcmp(scheme_table[i].name, name) == 0) return &scheme_table[i];
    return NULL;
}

int scheme_check_params(const SchemeParams *p, int L, char *err, size_t errlen) {
    if (L < 1) {
        snprintf(err, errlen, "scheme: depth must be >= 1, got %d", L);
        return -1;
    }
    if (!isnan(p->mixln_alpha) && (p->mixln_alpha < 0.0 || p->mixln_alpha > 1.0)) {
        snprintf(err, errlen, "scheme.mixln_alpha: must be in [0, 1], got %g", p->mixln_alpha);
        return -1;
    }
    if (!isnan(p->deepnorm_alpha) && !(p->deepnorm_alpha > 0.0)) {
        snprintf(err, errlen, "scheme.deepnorm_alpha: must be > 0, got %g", p->deepnorm_alpha);
        return -1;
    }
    if (!isnan(p->deepnorm_beta) && !(p->deepnorm_beta > 0.0)) {
        snprintf(err, errlen, "scheme.deepnorm_beta: must be > 0, got %g", p->deepnorm_beta);
        return -1;
    }
    if (!(p->init_std > 0.0)) {
        snprintf(err, errlen, "init.std: must be > 0, got %g", p->init_std);
        return -1;
    }
    return 0;
}

int scheme_build_table(const SchemeRow *row, const SchemeParams *p, int L, SublayerSpec *specs,
                       char *err, size_t errlen) {
    if (scheme_check_params(p, L, err, errlen) != 0) return -1;
    for (int l = 1; l <= L; l++) {
        row->spec(p, L, l, SUBLAYER_ATTN, &specs[2 * (l - 1) + SUBLAYER_ATTN]);
        row->spec(p, L, l, SUBLAYER_MLP, &specs[2 * (l - 1) + SUBLAYER_MLP]);
    }
    return 0;
}

const char *placement_name(NormPlacement p) { return p == PLACE_POST ? "post" : "pre"; }

const char *init_kind_name(InitKind k) { return k == INIT_XAVIER ? "xavier_normal" : "normal"; }
