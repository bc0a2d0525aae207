/* schemes.c — the table of normalization schemes (docs/design.md section 3): one row per
 * scheme, carrying its name, label, formula, source, constants and rule.
 *
 * Each rule derives SublayerSpecs from the depth L and the layer index l (1-based), with
 * every constant resolved from the row's {key, default(L), range} and the config's
 * overrides; nothing is hard-coded for a particular depth (the Mix-LN and LNS releases
 * hard-coded DeepNorm's a = 2.828, right only for L = 32, and used the init gain (8L)^(+1/4)
 * instead of (8L)^(-1/4): scheme tests check the formulas at several depths to rule that
 * out). Code outside this file reads rows through schemes.h and never names a scheme.
 */
#include "schemes.h"

#include <math.h>
#include <string.h>

void scheme_params_default(SchemeParams *p) {
    for (int i = 0; i < SCHEME_MAX_KEYS; i++) p->value[i] = NAN;
    p->init_std = 0.02;
}

/* ---- defaults of the constants, as functions of the depth ------------------------------ */

/* DeepNet (Wang et al. 2022), decoder-only row of Table 1: alpha = (2N)^(1/4),
 * beta = (8N)^(-1/4), N = number of layers. */
static double def_deepnorm_alpha(int L) { return pow(2.0 * L, 0.25); }
static double def_deepnorm_beta(int L) { return pow(8.0 * L, -0.25); }
static double def_quarter(int L) { (void)L; return 0.25; }
static double def_one(int L) { (void)L; return 1.0; }
/* CaiT (Touvron et al. 2021), section 2.1: epsilon = 0.1 up to depth 18, 1e-5 up to 24,
 * 1e-6 beyond. */
static double def_layerscale_eps(int L) { return L <= 18 ? 0.1 : L <= 24 ? 1e-5 : 1e-6; }
/* DyT (Zhu et al. 2025), LLaMA setting: alpha0 = 0.8 for the norms before attention,
 * 0.2 for the others (FFN and final), the values of its smallest LLaMA (7B). */
static double def_dyt_attn(int L) { (void)L; return 0.8; }
static double def_dyt_other(int L) { (void)L; return 0.2; }

#define POSITIVE(lo) (lo), INFINITY, 1, 0

/* ---- the rules ------------------------------------------------------------------------- */
/* `out` arrives as the plain spec: PRE, s = r = 1, normal(0, init_std) on every weight,
 * the config's norm, no second norm, no branch scale. A rule sets what its paper changes. */

static void spec_pre_ln(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)L, (void)l, (void)s, (void)out;
}

static void spec_post_ln(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)L, (void)l, (void)s;
    out->placement = PLACE_POST;
}

/* The DeepNorm shape: N(a x + F(x)) with xavier-normal init, `gain` on v, o (attention) and
 * gate, up, down (MLP), 1 on q and k. */
static void post_norm_with_gain(SublayerSpec *out, float a, float gain, Sublayer s) {
    static const int attn_roles[] = {ROLE_V, ROLE_O}, mlp_roles[] = {ROLE_GATE, ROLE_UP, ROLE_DOWN};
    const int *roles = s == SUBLAYER_ATTN ? attn_roles : mlp_roles;
    const int n = s == SUBLAYER_ATTN ? 2 : 3;
    out->placement = PLACE_POST;
    out->residual_scale = a;
    out->init = INIT_XAVIER;
    for (int r = 0; r < n; r++) out->init_gain[roles[r]] = gain;
}

/* DeepNorm: N(a x + F(x)); xavier-normal init with gain b on v, o and the MLP weights,
 * gain 1 on q and k (torchscale's reset_parameters / DeepNet section 2.3). k = {a, b}. */
static void spec_deepnorm(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)l;
    post_norm_with_gain(out, (float)k[0], (float)k[1], s);
}

/* DeepNorm as the LNS and Mix-LN releases trained it (their NORM_TYPE=deeppost), the rows
 * behind the papers' published DeepNorm numbers: N(2.8284271247461903 x + F(x)), the
 * residual scale hard-coded (DeepNet's (2L)^(1/4) only for L = 32), and xavier-normal init
 * with gain (8L)^(+1/4) on v, o, gate, up and down (DeepNet's b is (8L)^(-1/4)), gain 1 on
 * q and k. Source: peft_pretraining/modeling_llama.py of github.com/lmsdss/LayerNorm-Scaling
 * (5d4dd11, 2025-02-07: LlamaDecoderLayer.forward `residual = 2.8284271247461903 *
 * residual`; LlamaPreTrainedModel._init_weights `xavier_normal_(..., gain=(num_layers * 8)
 * ** 0.25)` for is_deeppost_layer, gain=1 for is_deeppost_layer_qk), the same lines in
 * github.com/pixeli99/MixLN (ff45826). No constants: scheme.deepnorm_alpha / deepnorm_beta
 * are DeepNet's and do not apply. */
static void spec_deepnorm_release(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)l;
    post_norm_with_gain(out, (float)SCHEME_DEEPNORM_RELEASE_ALPHA, (float)pow(8.0 * L, 0.25), s);
}

/* Mix-LN: Post-LN for l <= floor(alpha L), Pre-LN after. k = {alpha}. */
static void spec_mix_ln(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)s;
    if (l <= floor(k[0] * L)) out->placement = PLACE_POST;
}

/* LNS: x + F(N(x) / sqrt(l)). */
static void spec_lns(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)L, (void)s;
    out->in_scale = (float)(1.0 / sqrt((double)l));
}

/* Scaled init: the output projections of each branch (o_proj, down_proj) at std/sqrt(2L). */
static void scale_output_projections(int L, Sublayer s, SublayerSpec *out) {
    out->init_gain[s == SUBLAYER_ATTN ? ROLE_O : ROLE_DOWN] = (float)(1.0 / sqrt(2.0 * L));
}

static void spec_scaled_init(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)l;
    scale_output_projections(L, s, out);
}

static void spec_lns_scaled_init(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    spec_lns(k, L, l, s, out);
    scale_output_projections(L, s, out);
}

/* DS-Init: every weight of block l from xavier-uniform scaled by alpha / sqrt(l). k = {alpha}. */
static void spec_depth_scaled_init(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)s;
    out->init = INIT_XAVIER_UNIFORM;
    for (int r = 0; r < SUBLAYER_MAX_WEIGHTS; r++) out->init_gain[r] = (float)(k[0] / sqrt((double)l));
}

/* LayerScale: x + diag(lambda) F(N(x)), lambda per channel, initialized to eps. k = {eps}. */
static void spec_layerscale(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)l, (void)s;
    out->branch = BRANCH_CHANNEL;
    out->branch_init = (float)k[0];
}

/* SkipInit: x + alpha F(N(x)), alpha one scalar per branch, initialized to 0. */
static void spec_skipinit(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)L, (void)l, (void)s;
    out->branch = BRANCH_SCALAR;
    out->branch_init = 0.0f;
}

/* Sandwich-LN: x + N2(F(N1(x))). */
static void spec_sandwich_ln(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)L, (void)l, (void)s;
    out->out_norm = 1;
}

/* Peri-LN: x + N2(F(N1(x))) in every block, and h_0 = N_e(embedding). */
static void spec_peri_ln(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)k, (void)L, (void)l, (void)s;
    out->out_norm = 1;
    out->embed_norm = 1;
}

/* DyT: every norm replaced by gamma * tanh(alpha x) + beta; alpha0 = k[0] before attention,
 * k[1] before the MLP (and for the final norm, which follows the last sublayer's spec). */
static void spec_dyt(const double *k, int L, int l, Sublayer s, SublayerSpec *out) {
    (void)L, (void)l;
    out->norm_fn = NORM_FN_DYT;
    out->dyt_alpha = (float)(s == SUBLAYER_ATTN ? k[0] : k[1]);
}

/* ---- the table ------------------------------------------------------------------------- */

static const SchemeRow scheme_table[] = {
    {.name = "pre_ln", .label = "Pre-LN", .formula = "x + F(N(x))",
     .source = "GPT-2 (Radford et al. 2019) / LLaMA (Touvron et al. 2023)", .featured = 1,
     .spec = spec_pre_ln},
    {.name = "post_ln", .label = "Post-LN", .formula = "N(x + F(x))",
     .source = "Vaswani et al. 2017", .spec = spec_post_ln},
    {.name = "deepnorm", .label = "DeepNorm",
     .formula = "N(a x + F(x)); xavier-normal, gain b on v, o, gate, up, down, 1 on q, k",
     .source = "DeepNet, Wang et al. 2022, Table 1 (decoder-only row); init as torchscale. The "
               "Mix-LN and LNS releases hard-code a = 2.828 (right only for L = 32) and use "
               "gain (8L)^(+1/4); here both follow the paper's formulas",
     .consts = {{"deepnorm_alpha", "(2L)^(1/4)", def_deepnorm_alpha, POSITIVE(0.0),
                 "residual scale a"},
                {"deepnorm_beta", "(8L)^(-1/4)", def_deepnorm_beta, POSITIVE(0.0),
                 "init gain b"}},
     .spec = spec_deepnorm},
    {.name = "deepnorm_release", .label = "DeepNorm (release)",
     .formula = "N(2.8284 x + F(x)); xavier-normal, gain (8L)^(+1/4) on v, o, gate, up, down, "
                "1 on q, k",
     .source = "the DeepNorm of the LNS and Mix-LN releases, behind the papers' published "
               "DeepNorm values: lmsdss/LayerNorm-Scaling 5d4dd11 and pixeli99/MixLN ff45826, "
               "modeling_llama.py (NORM_TYPE=deeppost): residual scale hard-coded 2*sqrt(2), "
               "xavier gain (num_layers * 8) ** 0.25. DeepNet's own formulas are `deepnorm`",
     .spec = spec_deepnorm_release},
    {.name = "mix_ln", .label = "Mix-LN",
     .formula = "post_ln for l <= floor(alpha L), pre_ln after",
     .source = "Mix-LN, Li et al. 2024 (arXiv:2412.13795), section 3",
     .consts = {{"mixln_alpha", "0.25", def_quarter, 0.0, 1.0, 0, 0,
                 "fraction of Post-LN layers"}},
     .spec = spec_mix_ln},
    {.name = "lns", .label = "LNS", .formula = "x + F(N(x) / sqrt(l))",
     .source = "The Curse of Depth, Sun et al. 2025 (arXiv:2502.05795), eq. 12. The release "
               "compares a lower-cased flag with 'LNS' and never scales; here names are exact",
     .featured = 1, .spec = spec_lns},
    {.name = "scaled_init", .label = "Scaled Init",
     .formula = "x + F(N(x)); o_proj, down_proj drawn with std / sqrt(2L)",
     .source = "Curse of Depth ablation (Sun et al. 2025); the GPT-2 / Megatron-LM "
               "(Shoeybi et al. 2019) residual-projection scaling. Same as the CoD release's "
               "norm_type scale_pre (_init_weights: normal(0, std / sqrt(2L)) on o_proj, "
               "down_proj)",
     .spec = spec_scaled_init},
    {.name = "depth_scaled_init", .label = "Depth-Scaled Init",
     .formula = "x + F(N(x)); every weight of block l xavier-uniform times alpha / sqrt(l)",
     .source = "DS-Init, Zhang, Titov & Sennrich 2019 (EMNLP), section 3: W ~ U(-g, g), g = alpha "
               "sqrt(6 / (fan_in + fan_out)) / sqrt(l), alpha in (0, 1]; Curse of Depth ablation "
               "(not in the CoD release: built from the DS-Init paper)",
     .consts = {{"dsinit_alpha", "1", def_one, 0.0, 1.0, 1, 0, "DS-Init alpha"}},
     .spec = spec_depth_scaled_init},
    {.name = "lns_scaled_init", .label = "LNS + Scaled Init",
     .formula = "x + F(N(x) / sqrt(l)); o_proj, down_proj drawn with std / sqrt(2L)",
     .source = "Curse of Depth, Sun et al. 2025, ablation (LNS combined with scaled init; the "
               "release has no norm_type combining them)",
     .spec = spec_lns_scaled_init},
    {.name = "layerscale", .label = "LayerScale",
     .formula = "x + diag(lambda) F(N(x)), lambda learnable per channel, init eps(L)",
     .source = "CaiT, Touvron et al. 2021 (ICCV), section 2.1 (LayerScale): eps = 0.1 for "
               "depth <= 18, 1e-5 for <= 24, 1e-6 beyond (depth = L blocks); Curse of Depth "
               "ablation (not in the CoD release: built from CaiT)",
     .consts = {{"layerscale_eps", "0.1 (L<=18), 1e-5 (L<=24), 1e-6", def_layerscale_eps,
                 POSITIVE(0.0), "initial value of every lambda"}},
     .spec = spec_layerscale},
    {.name = "skipinit", .label = "SkipInit",
     .formula = "x + alpha F(N(x)), alpha one learnable scalar per branch, init 0",
     .source = "SkipInit, De & Smith 2020 (NeurIPS). The paper removes batch "
               "normalization from ResNets; here the Pre-LN norm stays, a choice: the Curse of "
               "Depth ablation's SkipInit setup is not in its release",
     .spec = spec_skipinit},
    {.name = "sandwich_ln", .label = "Sandwich-LN", .formula = "x + N2(F(N1(x)))",
     .source = "CogView, Ding et al. 2021 (NeurIPS), Sandwich-LN (training-stability section); "
               "the same as the CoD release's norm_type sandwich",
     .spec = spec_sandwich_ln},
    {.name = "peri_ln", .label = "Peri-LN",
     .formula = "x + N2(F(N1(x))); h_0 = N_e(embedding)",
     .source = "Peri-LN, Kim et al. 2025 (ICML, arXiv:2502.02732): a norm before and after "
               "each module, and on the input embedding (the embedding norm as we read the "
               "paper; not re-checked against its text when the row was added)",
     .spec = spec_peri_ln},
    {.name = "dyt", .label = "DyT",
     .formula = "every N -> gamma tanh(alpha x) + beta, alpha learnable, init alpha0",
     .source = "Transformers without Normalization, Zhu et al. 2025 (CVPR), eq. 1 and section 7 "
               "(LLM alpha0: separate values before attention and elsewhere, 0.8 / 0.2 at "
               "LLaMA 7B; 0.5 is its non-LLM default). Its LLaMA runs also add a learnable "
               "scalar after the embedding: not built here. alpha0 values not re-checked against "
               "the paper's text when the row was added",
     .consts = {{"dyt_alpha_attn", "0.8", def_dyt_attn, POSITIVE(0.0),
                 "DyT alpha0 before attention"},
                {"dyt_alpha_other", "0.2", def_dyt_other, POSITIVE(0.0),
                 "DyT alpha0 before the MLP and at the final norm"}},
     .spec = spec_dyt},
};

size_t scheme_count(void) { return sizeof scheme_table / sizeof scheme_table[0]; }

const SchemeRow *scheme_at(size_t i) { return i < scheme_count() ? &scheme_table[i] : NULL; }

const SchemeRow *scheme_find(const char *name) {
    for (size_t i = 0; i < scheme_count(); i++)
        if (strcmp(scheme_table[i].name, name) == 0) return &scheme_table[i];
    return NULL;
}

const char *scheme_label(const char *name) {
    const SchemeRow *row = scheme_find(name);
    return row ? row->label : name;
}

/* ---- constants --------------------------------------------------------------------------- */

/* Constant j of row r, NULL past the row's last. */
static const SchemeConst *row_const(size_t r, int j) {
    const SchemeConst *c = &scheme_table[r].consts[j];
    return j < SCHEME_MAX_CONSTS && c->key ? c : NULL;
}

/* 1 when constant j of row r is the first occurrence of its key in table order */
static int first_occurrence(size_t r, int j) {
    const char *key = row_const(r, j)->key;
    for (size_t q = 0; q <= r; q++)
        for (int i = 0; row_const(q, i) && (q < r || i < j); i++)
            if (strcmp(row_const(q, i)->key, key) == 0) return 0;
    return 1;
}

/* The distinct keys, by a scan of the table (a few dozen comparisons; no hidden state):
 * returns the `want`-th distinct key, or the one called want_key (its index in *index);
 * *count gets the number of distinct keys when neither is found. */
static const SchemeConst *key_scan(int want, const char *want_key, int *count, int *index) {
    int n = 0;
    for (size_t r = 0; r < scheme_count(); r++)
        for (int j = 0; row_const(r, j); j++) {
            if (!first_occurrence(r, j)) continue;
            const SchemeConst *c = row_const(r, j);
            if (n == want || (want_key && strcmp(c->key, want_key) == 0)) {
                if (index) *index = n;
                return c;
            }
            n++;
        }
    if (count) *count = n;
    if (index) *index = -1;
    return NULL;
}

int scheme_key_count(void) {
    int n = 0;
    key_scan(-1, NULL, &n, NULL);
    return n;
}

const SchemeConst *scheme_key_at(int i) { return i < 0 ? NULL : key_scan(i, NULL, NULL, NULL); }

int scheme_key_index(const char *key) {
    int index = -1;
    key_scan(-1, key, NULL, &index);
    return index;
}

double scheme_const_value(const SchemeConst *c, const SchemeParams *p, int L) {
    int i = scheme_key_index(c->key);
    double v = i >= 0 ? p->value[i] : NAN;
    return isnan(v) ? c->default_value(L) : v;
}

double scheme_param_get(const SchemeParams *p, const char *key, int L) {
    int i = scheme_key_index(key);
    return i < 0 ? NAN : scheme_const_value(scheme_key_at(i), p, L);
}

void scheme_param_set(SchemeParams *p, const char *key, double v) {
    int i = scheme_key_index(key);
    if (i >= 0) p->value[i] = v;
}

static int const_in_range(const SchemeConst *c, double v) {
    if (isnan(v)) return 0;
    if (c->lo_open ? !(v > c->lo) : !(v >= c->lo)) return 0;
    if (c->hi_open ? !(v < c->hi) : !(v <= c->hi)) return 0;
    return 1;
}

static void range_text(const SchemeConst *c, char *out, size_t n) {
    if (isinf(c->hi)) snprintf(out, n, "must be %s %g", c->lo_open ? ">" : ">=", c->lo);
    else snprintf(out, n, "must be in %c%g, %g%c", c->lo_open ? '(' : '[', c->lo, c->hi,
                  c->hi_open ? ')' : ']');
}

int scheme_check_params(const SchemeParams *p, int L, char *err, size_t errlen) {
    if (L < 1) {
        snprintf(err, errlen, "scheme: depth must be >= 1, got %d", L);
        return -1;
    }
    for (int i = 0; i < scheme_key_count(); i++) {
        const SchemeConst *c = scheme_key_at(i);
        if (isnan(p->value[i]) || const_in_range(c, p->value[i])) continue;
        char range[64];
        range_text(c, range, sizeof range);
        snprintf(err, errlen, "scheme.%s: %s, got %g", c->key, range, p->value[i]);
        return -1;
    }
    if (!(p->init_std > 0.0)) {
        snprintf(err, errlen, "init.std: must be > 0, got %g", p->init_std);
        return -1;
    }
    return 0;
}

/* ---- building a table ---------------------------------------------------------------------- */

int scheme_build_table(const SchemeRow *row, const SchemeParams *p, int L, SublayerSpec *specs,
                       char *err, size_t errlen) {
    if (scheme_check_params(p, L, err, errlen) != 0) return -1;
    double k[SCHEME_MAX_CONSTS] = {0};
    for (int i = 0; i < SCHEME_MAX_CONSTS && row->consts[i].key; i++)
        k[i] = scheme_const_value(&row->consts[i], p, L);
    for (int i = 0; i < 2 * L; i++) {
        SublayerSpec *sp = &specs[i];
        memset(sp, 0, sizeof *sp);
        sp->placement = PLACE_PRE;
        sp->in_scale = 1.0f;
        sp->residual_scale = 1.0f;
        sp->init = INIT_NORMAL;
        sp->init_std = (float)p->init_std;
        for (int r = 0; r < SUBLAYER_MAX_WEIGHTS; r++) sp->init_gain[r] = 1.0f;
        sp->norm_fn = NORM_FN_NORM;
        sp->branch = BRANCH_NONE;
        sp->branch_init = 1.0f;
        row->spec(k, L, i / 2 + 1, (Sublayer)(i % 2), sp);
        if (sp->placement == PLACE_POST && (sp->out_norm || sp->branch != BRANCH_NONE)) {
            snprintf(err, errlen, "scheme %s: a second norm or a branch scale needs the pre "
                     "placement (layer %d)", row->name, i / 2 + 1);
            return -1;
        }
        if (i > 0) sp->embed_norm = 0; /* read on sublayer 0 only */
    }
    return 0;
}

void scheme_print(FILE *f, const SchemeRow *row, const SchemeParams *p, int L,
                  const SublayerSpec *specs) {
    fprintf(f, "# scheme %s (%s): %s\n#   source: %s\n", row->name, row->label, row->formula,
            row->source);
    for (int i = 0; i < SCHEME_MAX_CONSTS && row->consts[i].key; i++) {
        const SchemeConst *c = &row->consts[i];
        char range[64];
        range_text(c, range, sizeof range);
        fprintf(f, "#   scheme.%s = %.6g  (%s; default %s; %s)\n", c->key,
                scheme_const_value(c, p, L), c->doc, c->default_text, range);
    }
    fprintf(f, "%5s %-4s %-5s %9s %9s %-14s %8s %-30s %-4s %8s %4s %-7s %8s\n", "layer", "sub",
            "place", "in_scale", "res_scale", "init", "std", "gains (q k v o | gate up down)",
            "norm", "alpha0", "out", "branch", "lambda0");
    for (int i = 0; i < 2 * L; i++) {
        const SublayerSpec *sp = &specs[i];
        char gains[64];
        int n_weights = i % 2 ? 3 : 4, len = 0;
        for (int r = 0; r < n_weights; r++)
            len += snprintf(gains + len, sizeof gains - (size_t)len, " %.4f", sp->init_gain[r]);
        fprintf(f, "%5d %-4s %-5s %9.6f %9.6f %-14s %8.4f%-31s %-4s %8.4f %4s %-7s %8.2g\n",
                i / 2 + 1, i % 2 ? "mlp" : "attn", placement_name(sp->placement), sp->in_scale,
                sp->residual_scale, init_kind_name(sp->init), sp->init_std, gains,
                norm_fn_name(sp->norm_fn), sp->norm_fn == NORM_FN_DYT ? sp->dyt_alpha : 0.0,
                sp->out_norm ? "yes" : "no", branch_scale_name(sp->branch),
                sp->branch == BRANCH_NONE ? 1.0 : sp->branch_init);
    }
    if (specs[0].embed_norm) fprintf(f, "#   embedding output normalized: h_0 = N_e(embedding)\n");
}

const char *placement_name(NormPlacement p) { return p == PLACE_POST ? "post" : "pre"; }

const char *init_kind_name(InitKind k) {
    static const char *const names[INIT_KIND_COUNT] = {"normal", "xavier_normal",
                                                       "xavier_uniform"};
    return (unsigned)k < INIT_KIND_COUNT ? names[k] : "?";
}

const char *norm_fn_name(NormFn f) { return f == NORM_FN_DYT ? "dyt" : "norm"; }

const char *branch_scale_name(BranchScale b) {
    static const char *const names[BRANCH_SCALE_COUNT] = {"none", "scalar", "channel"};
    return (unsigned)b < BRANCH_SCALE_COUNT ? names[b] : "?";
}
