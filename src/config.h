/* config.h — the resolved configuration of a normbench sweep (docs/design.md section 7).
 *
 * Owns: NbConfig, loading it from a YAML file (libyaml) plus `--set key.path=value`
 * overrides with every default applied and every value validated, writing it back as
 * canonical YAML (stored in run files and hashed), printing it, and cutting a sweep config
 * (several schemes x several seeds) into per-run configs.
 *
 * Keys, types, ranges and defaults live in ONE table in config.c (the scheme constants'
 * keys come from the rows of the scheme table); `normbench show` and the tests read the
 * same table through config_write_yaml. Summary (defaults in parentheses):
 *
 *   name                sweep name (the config file's basename without extension)
 *   model.{n_layer, d_model, n_head, d_ff, vocab_size, seq_len, norm (rmsnorm|layernorm),
 *          norm_eps, rope_theta, final_norm}       (model_config_default)
 *   init.{std (0.02), embed_std (0.02)}            -> scheme_params.init_std, model.embed_std
 *   scheme              a name, a list of names (a sweep), or a mapping
 *                       {name: name-or-list, <constant>: value...}: one key per constant
 *                       of the scheme table (schemes.h; e.g. mixln_alpha, deepnorm_alpha),
 *                       (pre_ln; the constants default to NaN = derived from the depth)
 *   seed                an integer >= 0 or a list of them (1)
 *   train.{steps (1000), batch (32), grad_accum (1), lr (1e-3), min_lr (lr/10, absolute),
 *          warmup (0, < steps), schedule (cosine|linear|constant), weight_decay (0),
 *          grad_clip (0 = off), beta1 (0.9), beta2 (0.999), eps (1e-8),
 *          diverge_loss (0 = auto: 2x the initial loss), checkpoint_every (0 = at the end),
 *          log_every (10), precision (fp32_master|bf16_pure; fp32_master)}
 *   eval.{every (100; 0 = only at the end), batches (8)}
 *   data.{source (brown|shards), train, val}   paths are kept as written; relative paths are
 *                       relative to the CURRENT WORKING DIRECTORY (normbench is run from the
 *                       repository root), not to the config file. source: shards needs train.
 *   metrics.{every (0 = off), probe_tokens (65536), prune (false)}
 *   backend.{name (cpu|cuda|auto; cpu), threads (0 = default)}
 *   output.{dir ("runs")}
 *
 * Errors: every loader error is ONE line in `err`, `FILE:LINE: KEY: what is wrong`
 * (`--set: KEY: ...` for an override, `FILE: cannot open: ...` for a missing file), and the
 * function returns CONFIG_ERR, which the CLI maps to exit code 2.
 */
#ifndef NORMBENCH_CONFIG_H
#define NORMBENCH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "schemes.h"

#define CONFIG_ERR 2         /* return code of a failed load: the CLI's exit code */

#define NB_NAME_MAX 128      /* name, including the NUL */
#define NB_PATH_MAX 1024     /* data.train, data.val, output.dir, source_path */
#define NB_MAX_SCHEMES 32    /* schemes in one sweep */
#define NB_MAX_SEEDS 256     /* seeds in one sweep */

typedef enum { NB_SCHED_COSINE = 0, NB_SCHED_LINEAR = 1, NB_SCHED_CONSTANT = 2 } NbSchedule;
typedef enum { NB_DATA_BROWN = 0, NB_DATA_SHARDS = 1 } NbDataSource;
typedef enum { NB_BACKEND_CPU = 0, NB_BACKEND_CUDA = 1, NB_BACKEND_AUTO = 2 } NbBackendKind;
/* fp32_master: bf16 compute copy beside fp32 master weights and moments (the default);
 * bf16_pure: weights and AdamW moments held as bf16 values, as the LNS / Mix-LN releases
 * trained (model.to(bfloat16) + torch.optim.Adam); CUDA backend only. */
typedef enum { NB_PRECISION_FP32_MASTER = 0, NB_PRECISION_BF16_PURE = 1 } NbPrecision;
/* data.repeat: what a run whose samples exceed the training split's windows does */
typedef enum { NB_REPEAT_ERROR = 0, NB_REPEAT_ALLOW = 1 } NbDataRepeat;

typedef struct {
    int steps, batch, grad_accum;
    double lr, min_lr;       /* min_lr absolute */
    int warmup;              /* linear warmup steps, < steps */
    NbSchedule schedule;
    double weight_decay;
    double grad_clip;        /* global-norm clip; 0 = off */
    double beta1, beta2, eps;
    double diverge_loss;     /* 0 = auto: 2x the initial loss */
    int checkpoint_every;    /* 0 = only at the end */
    int log_every;
    NbPrecision precision;
} NbTrainConfig;

typedef struct {
    int every;               /* eval interval in steps; 0 = only at the end */
    int batches;             /* validation batches */
} NbEvalConfig;

typedef struct {
    NbDataSource source;
    char train[NB_PATH_MAX]; /* shard paths, relative to the current directory; "" = unset */
    char val[NB_PATH_MAX];
    NbDataRepeat repeat;     /* error: refuse a run that needs more than one epoch */
} NbDataConfig;

typedef struct {
    int every;               /* probe interval in steps; 0 = off */
    int probe_tokens;        /* tokens per probe: ceil(probe_tokens / (batch x seq_len)) batches */
    int prune;               /* 1: pruning sweep after training */
} NbMetricsConfig;

typedef struct {
    NbBackendKind name;
    int threads;             /* 0 = backend default */
} NbBackendConfig;

typedef struct {
    char dir[NB_PATH_MAX];
} NbOutputConfig;

typedef struct {
    char name[NB_NAME_MAX];
    ModelConfig model;                         /* includes embed_std (init.embed_std) */
    SchemeParams scheme_params;                /* includes init_std (init.std) */
    int n_schemes;                             /* >= 1 */
    const SchemeRow *schemes[NB_MAX_SCHEMES];  /* rows of schemes.c, in config order */
    int n_seeds;                               /* >= 1 */
    uint64_t seeds[NB_MAX_SEEDS];
    NbTrainConfig train;
    NbEvalConfig eval;
    NbDataConfig data;
    NbMetricsConfig metrics;
    NbBackendConfig backend;
    NbOutputConfig output;
    char source_path[NB_PATH_MAX];             /* the file it came from ("" if a string) */
    char *source_text;                         /* raw YAML text as read (owned; may be NULL) */
} NbConfig;

/* Loads `path` and applies `overrides` (each "key.path=value"; the value is YAML, so
 * `--set scheme=[pre_ln,lns]` or `--set seed=[1,2]` work) in order. Returns 0, or
 * CONFIG_ERR with one line in err. On error cfg holds nothing that needs freeing. */
int config_load(NbConfig *cfg, const char *path, const char *const *overrides, int n_overrides,
                char *err, size_t errlen);
/* The same from YAML text in memory, such as the config a checkpoint or run file stored;
 * `display_name` stands for the file in messages and gives the default sweep name (may be
 * NULL: "config"). Stored configs may predate a renamed key, so this also reads
 * metrics.probe_batches (replaced by metrics.probe_tokens: N batches = N x train.batch x
 * model.seq_len tokens, the same probes); config_load refuses it as unknown. */
int config_load_string(NbConfig *cfg, const char *text, const char *display_name,
                       const char *const *overrides, int n_overrides, char *err, size_t errlen);
void config_free(NbConfig *cfg);

/* The fully resolved config as YAML in canonical key order (every key, defaults written out;
 * scheme constants only when overridden). Loading it gives back the same config. *out_text is
 * malloc'ed (caller frees). Returns 0, or -1 when out of memory. */
int config_write_yaml(const NbConfig *cfg, char **out_text);
/* Human-readable: the canonical YAML preceded by a comment naming the source. */
void config_print(FILE *f, const NbConfig *cfg);

/* A per-run config: a copy of `sweep` with exactly one scheme (scheme_index) and one seed
 * (seed_index). `run` owns its own copy of source_text; free it with config_free. */
void config_select_run(const NbConfig *sweep, int scheme_index, int seed_index, NbConfig *run);

const char *config_backend_name(NbBackendKind b);
const char *config_norm_name(NormKind k);

#endif
