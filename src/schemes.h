/* schemes.h — normalization schemes as data: one row per scheme.
 *
 * Owns the scheme table (schemes.c) and everything a row says about its scheme: its name,
 * its display label, its formula and source (paper, equation; where a release differs from
 * the paper, the difference), its constants ({key, default as a function of the depth L,
 * valid range}: config keys `scheme.<key>` and run-file attributes are generated from them),
 * and its rule `(constants, L, l, sublayer) -> SublayerSpec`, which gives the placement,
 * the per-layer scales, the extra norms and branch scales, and the init of every sublayer.
 * The block code in model.c reads the spec and never tests a scheme's name; config.c,
 * `show`, runfile.c, report.c and tables.c read the row. Adding a scheme is adding a row
 * (docs/design.md section 12.1); definitions in docs/design.md section 3.
 */
#ifndef NORMBENCH_SCHEMES_H
#define NORMBENCH_SCHEMES_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    PLACE_PRE = 0,  /* y = r*x + lambda * N2(F(s * N(x)))   (N2, lambda optional)   */
    PLACE_POST = 1, /* y = s * N(r*x + F(x))                                          */
} NormPlacement;

typedef enum { SUBLAYER_ATTN = 0, SUBLAYER_MLP = 1 } Sublayer;

typedef enum {
    INIT_NORMAL = 0,         /* normal(0, std * gain)                                    */
    INIT_XAVIER = 1,         /* normal(0, gain * sqrt(2 / (fan_in + fan_out)))           */
    INIT_XAVIER_UNIFORM = 2, /* uniform(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))  */
} InitKind;
#define INIT_KIND_COUNT 3

/* What stands where the scheme puts a norm. */
typedef enum {
    NORM_FN_NORM = 0, /* the config's norm (RMSNorm or LayerNorm), weight (and bias) */
    NORM_FN_DYT = 1,  /* DyT(x) = gamma * tanh(alpha x) + beta, alpha a learnable scalar */
} NormFn;
#define NORM_FN_COUNT 2

/* A learnable scale on the residual branch (PRE placement): y = r x + lambda * branch. */
typedef enum {
    BRANCH_NONE = 0,    /* no parameter, lambda = 1 */
    BRANCH_SCALAR = 1,  /* one learnable scalar (SkipInit) */
    BRANCH_CHANNEL = 2, /* one learnable scale per channel (LayerScale) */
} BranchScale;
#define BRANCH_SCALE_COUNT 3

/* Weight roles inside a sublayer, indexing SublayerSpec.init_gain:
 * attention: q, k, v, o;  MLP: gate, up, down (index 3 unused). */
enum { ROLE_Q = 0, ROLE_K = 1, ROLE_V = 2, ROLE_O = 3 };
enum { ROLE_GATE = 0, ROLE_UP = 1, ROLE_DOWN = 2 };
#define SUBLAYER_MAX_WEIGHTS 4

typedef struct {
    NormPlacement placement;
    float in_scale;       /* s: multiplies the norm's output (LNS: 1/sqrt(l)) */
    float residual_scale; /* r: multiplies the skip branch (DeepNorm: alpha)  */
    InitKind init;
    float init_std;                          /* INIT_NORMAL base std            */
    float init_gain[SUBLAYER_MAX_WEIGHTS];   /* per weight role                 */
    /* --- added with the Curse-of-Depth ablation, Peri-LN and DyT rows --- */
    NormFn norm_fn;       /* what every norm of this sublayer is                         */
    float dyt_alpha;      /* DyT: initial alpha of this sublayer's norms (NORM_FN_DYT)  */
    int out_norm;         /* 1: a second norm N2 on F's output (PRE only)                */
    BranchScale branch;   /* learnable branch scale lambda (PRE only)                    */
    float branch_init;    /* its initial value (every element)                           */
    int embed_norm;       /* read on sublayer 0 only: 1 normalizes h_0 = N_e(embedding) */
} SublayerSpec;

/* One constant of a scheme. Its config key is `scheme.<key>`, its run-file attribute
 * `<key>` (the value the run used); NaN in SchemeParams means "derive from the depth". */
typedef struct {
    const char *key;
    const char *default_text;      /* the default as the paper writes it: "(2L)^(1/4)" */
    double (*default_value)(int L);
    double lo, hi;                 /* valid range; -INFINITY / INFINITY for none       */
    int lo_open, hi_open;          /* 1: the bound itself is excluded                  */
    const char *doc;               /* one line: what it is                             */
} SchemeConst;

#define SCHEME_MAX_CONSTS 4   /* per row */
#define SCHEME_MAX_KEYS 32    /* distinct keys over the whole table */

/* The constants a config may override, one slot per distinct key of the table
 * (scheme_key_index), NaN = derive; init_std is `init.std`, shared by every scheme. */
typedef struct {
    double value[SCHEME_MAX_KEYS];
    double init_std; /* base normal std, default 0.02 */
} SchemeParams;

/* The residual scale the LNS and Mix-LN releases hard-coded for DeepNorm (2 sqrt 2). */
#define SCHEME_DEEPNORM_RELEASE_ALPHA 2.8284271247461903

void scheme_params_default(SchemeParams *p); /* every value NaN, init_std = 0.02 */

/* Per-row resolved constants, in the row's order (k[i] is consts[i]), handed to its rule. */
typedef struct SchemeRow {
    const char *name;    /* config and run-file name: exact, case-sensitive */
    const char *label;   /* for tables and figures: "Pre-LN" */
    const char *formula; /* the sublayer as a formula */
    const char *source;  /* paper, equation or table; how a release differs */
    int featured;        /* 1: drawn in the report's per-probe variance figure */
    SchemeConst consts[SCHEME_MAX_CONSTS]; /* terminated by key == NULL */
    /* the rule: fills the spec of sublayer s of block l (1-based) in a model of depth L
     * from the row's resolved constants k and the base std; `out` starts as the plain spec
     * (pre placement, unit scales, normal(0, init_std) everywhere, no extras). */
    void (*spec)(const double *k, int L, int l, Sublayer s, SublayerSpec *out);
} SchemeRow;

/* NULL when unknown. Names are matched exactly (case-sensitive: the LNS release compared a
 * lower-cased flag against "LNS" and never ran LNS; here an unknown name is an error). */
const SchemeRow *scheme_find(const char *name);
size_t scheme_count(void);
const SchemeRow *scheme_at(size_t i);
/* "Pre-LN" for "pre_ln"; the name itself for a name not in the table. */
const char *scheme_label(const char *name);

/* The distinct constant keys of the whole table, in table order (first row first). */
int scheme_key_count(void);
const SchemeConst *scheme_key_at(int i);
int scheme_key_index(const char *key); /* -1 when no row has it */

/* Value of constant `c` of the run: the override in p, else its default for depth L. */
double scheme_const_value(const SchemeConst *c, const SchemeParams *p, int L);
/* by key; NaN when no row has the key */
double scheme_param_get(const SchemeParams *p, const char *key, int L);
void scheme_param_set(SchemeParams *p, const char *key, double v); /* ignores unknown keys */

/* 0 when the constants are valid for depth L, else -1 with err naming the key (config.c
 * validates with it; the table itself is built once per run, by run.c). */
int scheme_check_params(const SchemeParams *p, int L, char *err, size_t errlen);

/* Fills specs[2*(l-1) + s] for l = 1..L. Returns 0, or -1 (with err) for a bad override. */
int scheme_build_table(const SchemeRow *row, const SchemeParams *p, int L, SublayerSpec *specs,
                       char *err, size_t errlen);

/* `show`: the row's constants as used, then one line per sublayer of the table. */
void scheme_print(FILE *f, const SchemeRow *row, const SchemeParams *p, int L,
                  const SublayerSpec *specs);

const char *placement_name(NormPlacement p);
const char *init_kind_name(InitKind k);
const char *norm_fn_name(NormFn f);
const char *branch_scale_name(BranchScale b);

#endif
