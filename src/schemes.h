/* schemes.h — normalization schemes as data.
 *
 * A scheme is one row of a table (schemes.c): a name, its source, and a function that
 * derives, for a model of depth L, the SublayerSpec of every sublayer of every block. The
 * block code in model.c reads the spec and never tests a scheme's name, so adding a scheme
 * is adding a row. The definitions follow docs/design.md section 3.
 */
#ifndef NORMBENCH_SCHEMES_H
#define NORMBENCH_SCHEMES_H

#include <stddef.h>

typedef enum {
    PLACE_PRE = 0,  /* y = r*x + F(s * N(x))     */
    PLACE_POST = 1, /* y = s * N(r*x + F(x))     */
} NormPlacement;

typedef enum { SUBLAYER_ATTN = 0, SUBLAYER_MLP = 1 } Sublayer;

typedef enum {
    INIT_NORMAL = 0, /* normal(0, std * gain)                                 */
    INIT_XAVIER = 1, /* normal(0, gain * sqrt(2 / (fan_in + fan_out)))       */
} InitKind;

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
} SublayerSpec;

/* Constants a config may override; NaN means "derive from the depth". */
typedef struct {
    double mixln_alpha;     /* fraction of Post-LN layers, default 0.25            */
    double deepnorm_alpha;  /* residual scale a, default (2L)^(1/4)               */
    double deepnorm_beta;   /* init gain b, default (8L)^(-1/4)                   */
    double init_std;        /* base normal std, default 0.02                      */
} SchemeParams;

/* The residual scale the LNS and Mix-LN releases hard-coded for DeepNorm (2 sqrt 2). */
#define SCHEME_DEEPNORM_RELEASE_ALPHA 2.8284271247461903

void scheme_params_default(SchemeParams *p); /* all NaN except init_std = 0.02 */

typedef struct SchemeRow {
    const char *name;
    const char *description;
    const char *source;
    /* fills the spec of sublayer `s` of block l (1-based) in a model of depth L */
    void (*spec)(const SchemeParams *p, int L, int l, Sublayer s, SublayerSpec *out);
} SchemeRow;

/* NULL when unknown. Names are matched exactly (case-sensitive: the LNS release compared a
 * lower-cased flag against "LNS" and never ran LNS; here an unknown name is an error). */
const SchemeRow *scheme_find(const char *name);
size_t scheme_count(void);
const SchemeRow *scheme_at(size_t i);

/* 0 when the constants are valid for depth L, else -1 with err naming the key (config.c
 * validates with it; the table itself is built once per run, by run.c). */
int scheme_check_params(const SchemeParams *p, int L, char *err, size_t errlen);

/* Fills specs[2*(l-1) + s] for l = 1..L. Returns 0, or -1 (with err) for a bad override. */
int scheme_build_table(const SchemeRow *row, const SchemeParams *p, int L, SublayerSpec *specs,
                       char *err, size_t errlen);

/* The constants a run actually uses (overrides applied), for printing and run files. */
double scheme_mixln_boundary(const SchemeParams *p, int L);  /* floor(alpha L) */
double scheme_deepnorm_alpha(const SchemeParams *p, int L);
double scheme_deepnorm_beta(const SchemeParams *p, int L);

const char *placement_name(NormPlacement p);
const char *init_kind_name(InitKind k);

#endif
