/* test_config.c — the specification of normbench's config files (src/config.c) and of its
 * SHA-256 (src/sha256.c).
 *
 * Read top to bottom: defaults; the YAML shapes `scheme` and `seed` accept; `--set`
 * overrides; every error, each with its exact one-line message `FILE:LINE: KEY: what` and
 * return code CONFIG_ERR (exit 2); the canonical YAML round trip; per-run configs; the
 * shipped configs; NIST's SHA-256 vectors. Every test writes its YAML into a fresh mkdtemp
 * directory. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"

/* the raw value of scheme constant `key` in a loaded config (NaN: not set) */
static double raw(const NbConfig *c, const char *key) {
    int k = scheme_key_index(key);
    ck_assert_msg(k >= 0, "%s is a constant of the scheme table", key);
    return c->scheme_params.value[k];
}
#include "sha256.h"

/* ---- helpers ------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char path[128];
} TmpYaml;

/* Writes `text` to <fresh tmp dir>/<name> and returns its path in t->path. */
static void tmp_yaml(TmpYaml *t, const char *name, const char *text) {
    snprintf(t->dir, sizeof t->dir, "/tmp/nbcfgXXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    FILE *f = fopen(t->path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void tmp_done(TmpYaml *t) {
    unlink(t->path);
    rmdir(t->dir);
}

/* Loads `text` (written to sweep.yaml) with overrides; asserts success. */
static void load_ok(NbConfig *cfg, const char *text, const char *const *sets, int nsets) {
    TmpYaml t;
    char err[1024] = "";
    tmp_yaml(&t, "sweep.yaml", text);
    int rc = config_load(cfg, t.path, sets, nsets, err, sizeof err);
    tmp_done(&t);
    ck_assert_msg(rc == 0, "load failed: %s", err);
}

/* Loads `text` and asserts it fails with CONFIG_ERR and the message `expect_fmt`, in which
 * %s stands for the file's path. */
static void load_fails(const char *text, const char *const *sets, int nsets,
                       const char *expect_fmt) {
    TmpYaml t;
    NbConfig cfg;
    char err[1024] = "", expect[1024];
    tmp_yaml(&t, "bad.yaml", text);
    int rc = config_load(&cfg, t.path, sets, nsets, err, sizeof err);
    snprintf(expect, sizeof expect, expect_fmt, t.path);
    tmp_done(&t);
    ck_assert_int_eq(rc, CONFIG_ERR);
    ck_assert_str_eq(err, expect);
    ck_assert_ptr_null(cfg.source_text);
}

static const char *one_set[1];
#define SET1(s) (one_set[0] = (s), one_set)

/* "pre_ln, post_ln, ...": the valid names, as unknown-scheme errors list them */
static void scheme_names(char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < scheme_count(); i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", scheme_at(i)->name);
}

/* ---- defaults -------------------------------------------------------------------------- */

START_TEST(defaults_fill_every_key) {
    NbConfig c;
    ModelConfig m;
    load_ok(&c, "{}\n", NULL, 0);
    model_config_default(&m);
    ck_assert_str_eq(c.name, "sweep"); /* the file's basename without .yaml */
    ck_assert_int_eq(c.model.n_layer, m.n_layer);
    ck_assert_int_eq(c.model.d_model, m.d_model);
    ck_assert_int_eq(c.model.n_head, m.n_head);
    ck_assert_int_eq(c.model.d_ff, m.d_ff);
    ck_assert_int_eq(c.model.vocab_size, m.vocab_size);
    ck_assert_int_eq(c.model.seq_len, m.seq_len);
    ck_assert_int_eq(c.model.norm, NORM_RMS);
    ck_assert(c.model.norm_eps == m.norm_eps && c.model.rope_theta == m.rope_theta);
    ck_assert_int_eq(c.model.final_norm, 1);
    ck_assert(c.model.embed_std == 0.02f);
    ck_assert(c.scheme_params.init_std == 0.02);
    /* every scheme constant of the table is unset (NaN: derived from the depth) */
    ck_assert_int_gt(scheme_key_count(), 0);
    for (int k = 0; k < scheme_key_count(); k++) ck_assert(isnan(c.scheme_params.value[k]));
    ck_assert_int_eq(c.n_schemes, 1);
    ck_assert_str_eq(c.schemes[0]->name, "pre_ln");
    ck_assert_int_eq(c.n_seeds, 1);
    ck_assert_uint_eq(c.seeds[0], 1);
    ck_assert_int_eq(c.train.steps, 1000);
    ck_assert_int_eq(c.train.batch * c.train.grad_accum, 32); /* sequences per step */
    ck_assert_int_eq(c.train.grad_accum, 1);
    ck_assert(c.train.lr == 1e-3 && c.train.min_lr == 1e-3 / 10);
    ck_assert_int_eq(c.train.warmup, 0);
    ck_assert_int_eq(c.train.schedule, NB_SCHED_COSINE);
    ck_assert(c.train.weight_decay == 0 && c.train.grad_clip == 0);
    ck_assert(c.train.beta1 == 0.9 && c.train.beta2 == 0.999 && c.train.eps == 1e-8);
    ck_assert(c.train.diverge_loss == 0);
    ck_assert_int_eq(c.train.checkpoint_every, 0);
    ck_assert_int_eq(c.train.log_every, 10);
    ck_assert_int_eq(c.eval.every, 100);
    ck_assert_int_eq(c.eval.batches, 8);
    ck_assert_int_eq(c.data.source, NB_DATA_BROWN);
    ck_assert_str_eq(c.data.train, "");
    ck_assert_str_eq(c.data.val, "");
    ck_assert_int_eq(c.metrics.every, 0);
    ck_assert_int_eq(c.metrics.probe_tokens, 65536);
    ck_assert_int_eq(c.train.precision, NB_PRECISION_FP32_MASTER);
    ck_assert_int_eq(c.data.repeat, NB_REPEAT_ERROR);
    ck_assert_int_eq(c.metrics.prune, 0);
    ck_assert_int_eq(c.backend.name, NB_BACKEND_CPU);
    ck_assert_int_eq(c.backend.threads, 0);
    ck_assert_str_eq(c.output.dir, "runs");
    ck_assert_str_eq(c.source_text, "{}\n"); /* the raw text is kept */
    ck_assert(strstr(c.source_path, "/sweep.yaml") != NULL);
    config_free(&c);
}
END_TEST

START_TEST(min_lr_defaults_to_a_tenth_of_lr_unless_given) {
    NbConfig c;
    load_ok(&c, "train:\n  lr: 0.02\n", NULL, 0);
    ck_assert(c.train.min_lr == 0.02 / 10);
    config_free(&c);
    load_ok(&c, "train:\n  lr: 0.02\n  min_lr: 0\n", NULL, 0);
    ck_assert(c.train.min_lr == 0);
    config_free(&c);
}
END_TEST

START_TEST(every_section_and_key_is_read) {
    NbConfig c;
    load_ok(&c,
            "name: full-1\n"
            "model: {n_layer: 3, d_model: 32, n_head: 2, d_ff: 88, vocab_size: 300,\n"
            "        seq_len: 16, norm: layernorm, norm_eps: 1e-5, rope_theta: 500000,\n"
            "        final_norm: false}\n"
            "init: {std: 0.01, embed_std: 0.6324555}\n"
            "train:\n  steps: 50\n  batch: 3\n  grad_accum: 2\n  lr: 3e-4\n  min_lr: 1e-5\n"
            "  warmup: 5\n  schedule: linear\n  weight_decay: 0.1\n  grad_clip: 1.0\n"
            "  beta1: 0.8\n  beta2: 0.95\n  eps: 1e-6\n  diverge_loss: 12.5\n"
            "  checkpoint_every: 25\n  log_every: 1\n  precision: bf16_pure\n"
            "eval: {every: 10, batches: 4}\n"
            "data: {source: shards, train: data/a.bin, val: \"data/b c.bin\", repeat: allow}\n"
            "metrics: {every: 5, probe_tokens: 3000, prune: true}\n"
            "backend: {name: auto, threads: 2}\n"
            "output: {dir: /tmp/out}\n",
            NULL, 0);
    ck_assert_str_eq(c.name, "full-1");
    ck_assert_int_eq(c.model.n_layer, 3);
    ck_assert_int_eq(c.model.vocab_size, 300);
    ck_assert_int_eq(c.model.norm, NORM_LAYER);
    ck_assert(c.model.norm_eps == 1e-5f && c.model.rope_theta == 500000.0f);
    ck_assert_int_eq(c.model.final_norm, 0);
    ck_assert(c.scheme_params.init_std == 0.01 && c.model.embed_std == 0.6324555f);
    ck_assert_int_eq(c.train.steps, 50);
    ck_assert_int_eq(c.train.grad_accum, 2);
    ck_assert(c.train.lr == 3e-4 && c.train.min_lr == 1e-5);
    ck_assert_int_eq(c.train.schedule, NB_SCHED_LINEAR);
    ck_assert(c.train.weight_decay == 0.1 && c.train.grad_clip == 1.0);
    ck_assert(c.train.beta1 == 0.8 && c.train.beta2 == 0.95 && c.train.eps == 1e-6);
    ck_assert(c.train.diverge_loss == 12.5);
    ck_assert_int_eq(c.train.checkpoint_every, 25);
    ck_assert_int_eq(c.eval.batches, 4);
    ck_assert_int_eq(c.data.source, NB_DATA_SHARDS);
    ck_assert_str_eq(c.data.train, "data/a.bin"); /* kept as written: relative to the cwd */
    ck_assert_str_eq(c.data.val, "data/b c.bin");
    ck_assert_int_eq(c.data.repeat, NB_REPEAT_ALLOW);
    ck_assert_int_eq(c.train.precision, NB_PRECISION_BF16_PURE);
    ck_assert_int_eq(c.metrics.probe_tokens, 3000);
    ck_assert_int_eq(c.metrics.prune, 1);
    ck_assert_int_eq(c.backend.name, NB_BACKEND_AUTO);
    ck_assert_int_eq(c.backend.threads, 2);
    ck_assert_str_eq(c.output.dir, "/tmp/out");
    config_free(&c);
}
END_TEST

START_TEST(an_empty_section_is_allowed) {
    NbConfig c;
    load_ok(&c, "train:\nmodel:\n", NULL, 0);
    ck_assert_int_eq(c.train.steps, 1000);
    config_free(&c);
}
END_TEST

/* ---- scheme and seed shapes ------------------------------------------------------------ */

START_TEST(scheme_as_a_name) {
    NbConfig c;
    load_ok(&c, "scheme: lns\n", NULL, 0);
    ck_assert_int_eq(c.n_schemes, 1);
    ck_assert_ptr_eq(c.schemes[0], scheme_find("lns"));
    config_free(&c);
}
END_TEST

START_TEST(scheme_as_a_list_is_a_sweep_in_order) {
    NbConfig c;
    load_ok(&c, "scheme:\n  - post_ln\n  - pre_ln\n  - mix_ln\n", NULL, 0);
    ck_assert_int_eq(c.n_schemes, 3);
    ck_assert_str_eq(c.schemes[0]->name, "post_ln");
    ck_assert_str_eq(c.schemes[1]->name, "pre_ln");
    ck_assert_str_eq(c.schemes[2]->name, "mix_ln");
    config_free(&c);
    load_ok(&c, "scheme: [deepnorm, lns]\n", NULL, 0);
    ck_assert_int_eq(c.n_schemes, 2);
    ck_assert_str_eq(c.schemes[1]->name, "lns");
    config_free(&c);
}
END_TEST

START_TEST(scheme_as_a_mapping_with_constants) {
    NbConfig c;
    load_ok(&c, "scheme:\n  name: mix_ln\n  mixln_alpha: 0.5\n", NULL, 0);
    ck_assert_int_eq(c.n_schemes, 1);
    ck_assert_str_eq(c.schemes[0]->name, "mix_ln");
    ck_assert(raw(&c, "mixln_alpha") == 0.5);
    ck_assert(isnan(raw(&c, "deepnorm_alpha"))); /* unset: derived from the depth */
    config_free(&c);
    load_ok(&c,
            "scheme:\n  name: [deepnorm, pre_ln]\n  deepnorm_alpha: 2.5\n  deepnorm_beta: 0.3\n",
            NULL, 0);
    ck_assert_int_eq(c.n_schemes, 2);
    ck_assert(raw(&c, "deepnorm_alpha") == 2.5 && raw(&c, "deepnorm_beta") == 0.3);
    config_free(&c);
    /* a mapping without a name keeps the default scheme */
    load_ok(&c, "scheme: {mixln_alpha: 0.75}\n", NULL, 0);
    ck_assert_str_eq(c.schemes[0]->name, "pre_ln");
    config_free(&c);
}
END_TEST

START_TEST(seed_as_a_number_or_a_list) {
    NbConfig c;
    load_ok(&c, "seed: 42\n", NULL, 0);
    ck_assert_int_eq(c.n_seeds, 1);
    ck_assert_uint_eq(c.seeds[0], 42);
    config_free(&c);
    load_ok(&c, "seed: [3, 1, 2]\n", NULL, 0);
    ck_assert_int_eq(c.n_seeds, 3);
    ck_assert_uint_eq(c.seeds[0], 3);
    ck_assert_uint_eq(c.seeds[2], 2);
    config_free(&c);
    load_ok(&c, "seed:\n  - 0\n  - 9223372036854775807\n", NULL, 0);
    ck_assert_uint_eq(c.seeds[1], 9223372036854775807ull);
    config_free(&c);
}
END_TEST

/* ---- --set overrides ------------------------------------------------------------------- */

START_TEST(set_overrides_nested_keys_in_order) {
    NbConfig c;
    const char *sets[] = {"train.steps=7", "model.norm=layernorm", "train.steps=9",
                          "data.val=x/val.bin", "metrics.prune=true", "init.std=0.5"};
    load_ok(&c, "train:\n  steps: 100\n", sets, 6);
    ck_assert_int_eq(c.train.steps, 9); /* the last one wins */
    ck_assert_int_eq(c.model.norm, NORM_LAYER);
    ck_assert_str_eq(c.data.val, "x/val.bin");
    ck_assert_int_eq(c.metrics.prune, 1);
    ck_assert(c.scheme_params.init_std == 0.5);
    config_free(&c);
}
END_TEST

START_TEST(set_values_are_yaml_lists_and_mappings_too) {
    NbConfig c;
    const char *sets[] = {"scheme=[pre_ln, lns]", "seed=[1,2,3]", "scheme.mixln_alpha=0.3",
                          "eval={every: 5, batches: 1}"};
    load_ok(&c, "scheme: post_ln\n", sets, 4);
    ck_assert_int_eq(c.n_schemes, 2);
    ck_assert_str_eq(c.schemes[1]->name, "lns");
    ck_assert_int_eq(c.n_seeds, 3);
    ck_assert(raw(&c, "mixln_alpha") == 0.3);
    ck_assert_int_eq(c.eval.every, 5);
    ck_assert_int_eq(c.eval.batches, 1);
    config_free(&c);
}
END_TEST

START_TEST(set_is_type_checked) {
    load_fails("{}\n", SET1("train.steps=abc"), 1,
               "--set: train.steps: expected an integer, got abc");
    load_fails("{}\n", SET1("train.lr=1e-3x"), 1, "--set: train.lr: expected a number, got 1e-3x");
    load_fails("{}\n", SET1("model.final_norm=1"), 1,
               "--set: model.final_norm: expected true or false, got 1");
    load_fails("{}\n", SET1("train.steps=0"), 1, "--set: train.steps: must be > 0, got 0");
    load_fails("{}\n", SET1("train=5"), 1, "--set: train: expected a mapping, got 5");
}
END_TEST

START_TEST(set_rejects_unknown_keys_and_malformed_arguments) {
    load_fails("{}\n", SET1("train.stepz=1"), 1,
               "--set: train.stepz: unknown key (valid: steps, batch, grad_accum, lr, min_lr, "
               "warmup, schedule, weight_decay, grad_clip, beta1, beta2, eps, diverge_loss, "
               "checkpoint_every, log_every, precision)");
    load_fails("{}\n", SET1("trian.steps=1"), 1,
               "--set: trian.steps: unknown key (valid: name, model, init, scheme, seed, train, "
               "eval, data, metrics, backend, output)");
    load_fails("{}\n", SET1("train.steps"), 1, "--set: train.steps: expected key.path=value");
    load_fails("{}\n", SET1("=3"), 1, "--set: =3: expected key.path=value");
    load_fails("{}\n", SET1("train.steps="), 1, "--set: train.steps: missing value");
    load_fails("{}\n", SET1("scheme=[pre_ln"), 1,
               "--set: scheme: bad YAML value: did not find expected ',' or ']' (while "
               "parsing a flow sequence)");
}
END_TEST

START_TEST(set_can_break_a_cross_key_rule_set_in_the_file) {
    /* the file's warmup is blamed at its line: it is the value that no longer fits */
    load_fails("train:\n  steps: 100\n  warmup: 10\n", SET1("train.steps=5"), 1,
               "%s:3: train.warmup: must be < train.steps (5), got 10");
    load_fails("{}\n", SET1("train.warmup=2000"), 1,
               "--set: train.warmup: must be < train.steps (1000), got 2000");
}
END_TEST

/* ---- errors: one line FILE:LINE: KEY: what, return code CONFIG_ERR --------------------- */

typedef struct {
    const char *yaml;
    const char *expect; /* %s = the file's path */
} ErrCase;

static const ErrCase ERRORS[] = {
    /* unknown keys, with the valid ones listed */
    {"train:\n  steps: 10\n  stepz: 5\n",
     "%s:3: train.stepz: unknown key (valid: steps, batch, grad_accum, lr, min_lr, warmup, "
     "schedule, weight_decay, grad_clip, beta1, beta2, eps, diverge_loss, checkpoint_every, "
     "log_every, precision)"},
    {"name: x\nfoo: 1\n",
     "%s:2: foo: unknown key (valid: name, model, init, scheme, seed, train, eval, data, "
     "metrics, backend, output)"},
    {"model:\n  layers: 12\n",
     "%s:2: model.layers: unknown key (valid: n_layer, d_model, n_head, d_ff, vocab_size, "
     "seq_len, norm, norm_eps, rope_theta, final_norm)"},
    {"train.steps: 10\n",
     "%s:1: train.steps: unknown key (valid: name, model, init, scheme, seed, train, eval, "
     "data, metrics, backend, output)"},
    {"scheme:\n  names: [lns]\n",
     "%s:2: scheme.names: unknown key (valid: name, deepnorm_alpha, deepnorm_beta, "
     "mixln_alpha, dsinit_alpha, layerscale_eps, dyt_alpha_attn, dyt_alpha_other)"},
    /* wrong types */
    {"train:\n  steps: ten\n", "%s:2: train.steps: expected an integer, got ten"},
    {"train:\n  steps: 2.5\n", "%s:2: train.steps: expected an integer, got 2.5"},
    {"train:\n  steps: 1e3\n", "%s:2: train.steps: expected an integer, got 1e3"},
    {"train:\n  steps: \"100\"\n",
     "%s:2: train.steps: expected an integer, got the string \"100\""},
    {"train:\n  steps: [1, 2]\n", "%s:2: train.steps: expected an integer, got a list"},
    {"train:\n  steps:\n", "%s:2: train.steps: expected an integer, got nothing"},
    {"train:\n  lr: fast\n", "%s:2: train.lr: expected a number, got fast"},
    {"train:\n  lr: '0.1'\n", "%s:2: train.lr: expected a number, got the string \"0.1\""},
    {"train:\n  lr: nan\n", "%s:2: train.lr: expected a finite number, got nan"},
    {"model:\n  norm_eps: 1e99\n", "%s:2: model.norm_eps: expected a finite number, got 1e99"},
    {"model:\n  final_norm: yes\n", "%s:2: model.final_norm: expected true or false, got yes"},
    {"metrics:\n  prune: 1\n", "%s:2: metrics.prune: expected true or false, got 1"},
    {"output:\n  dir: {a: 1}\n", "%s:2: output.dir: expected a string, got a mapping"},
    {"train: 5\n", "%s:1: train: expected a mapping, got 5"},
    {"- train\n", "%s:1: config: expected a mapping of sections, got a list"},
    {"just a string\n", "%s:1: config: expected a mapping of sections, got just a string"},
    {"? [a, b]\n: 1\n", "%s:1: config: keys must be plain names"},
    /* out of range */
    {"train:\n  steps: -3\n", "%s:2: train.steps: must be > 0, got -3"},
    {"train:\n  steps: 0\n", "%s:2: train.steps: must be > 0, got 0"},
    {"train:\n  steps: 99999999999\n", "%s:2: train.steps: must be <= 2147483647, got 99999999999"},
    {"train:\n  batch: 0\n", "%s:2: train.batch: must be > 0, got 0"},
    {"train:\n  grad_accum: 0\n", "%s:2: train.grad_accum: must be >= 1, got 0"},
    {"train:\n  lr: 0\n", "%s:2: train.lr: must be > 0, got 0"},
    {"train:\n  lr: 0.001\n  min_lr: 0.01\n",
     "%s:3: train.min_lr: must be <= train.lr (0.001), got 0.01"},
    {"train:\n  steps: 10\n  warmup: 10\n",
     "%s:3: train.warmup: must be < train.steps (10), got 10"},
    {"train:\n  warmup: -1\n", "%s:2: train.warmup: must be >= 0, got -1"},
    {"train:\n  beta1: 1.0\n", "%s:2: train.beta1: must be in [0, 1), got 1.0"},
    {"train:\n  beta2: -0.1\n", "%s:2: train.beta2: must be in [0, 1), got -0.1"},
    {"train:\n  eps: 0\n", "%s:2: train.eps: must be > 0, got 0"},
    {"train:\n  grad_clip: -1\n", "%s:2: train.grad_clip: must be >= 0, got -1"},
    {"train:\n  log_every: 0\n", "%s:2: train.log_every: must be >= 1, got 0"},
    {"eval:\n  batches: 0\n", "%s:2: eval.batches: must be >= 1, got 0"},
    {"metrics:\n  every: -5\n", "%s:2: metrics.every: must be >= 0, got -5"},
    {"metrics:\n  probe_tokens: 0\n", "%s:2: metrics.probe_tokens: must be >= 1, got 0"},
    {"metrics:\n  probe_batches: 2\n",
     "%s:2: metrics.probe_batches: unknown key (valid: every, probe_tokens, prune)"},
    {"data:\n  repeat: sometimes\n",
     "%s:2: data.repeat: unknown value 'sometimes' (valid: error, allow)"},
    {"train:\n  precision: fp16\n",
     "%s:2: train.precision: unknown value 'fp16' (valid: fp32_master, bf16_pure)"},
    /* bf16_pure is the CUDA backend's; the CPU backend refuses it, naming the key */
    {"train:\n  precision: bf16_pure\nbackend:\n  name: cpu\n",
     "%s:2: train.precision: bf16_pure needs backend.name cuda (the CPU backend trains in fp32 "
     "and does not emulate bf16 weights and moments)"},
    {"train:\n  precision: bf16_pure\n",
     "%s:2: train.precision: bf16_pure needs backend.name cuda (the CPU backend trains in fp32 "
     "and does not emulate bf16 weights and moments)"},
    {"backend:\n  threads: -1\n", "%s:2: backend.threads: must be in [0, 4096], got -1"},
    {"model:\n  n_layer: 0\n", "%s:2: model.n_layer: must be in [1, 4096], got 0"},
    {"model:\n  d_model: 64\n  n_head: 5\n",
     "%s:3: model.n_head: must divide model.d_model (64), got 5"},
    {"model:\n  d_model: 66\n",
     "%s:2: model.d_model: must be a multiple of model.n_head (4), got 66"},
    {"model:\n  d_model: 40\n  n_head: 8\n",
     "%s:3: model.n_head: head size d_model/n_head must be even for RoPE, got 40/8 = 5"},
    {"model:\n  vocab_size: 70000\n", "%s:2: model.vocab_size: must be in [2, 65536], got 70000"},
    {"model:\n  vocab_size: 100\n",
     "%s:2: model.vocab_size: must be >= 256 for data.source brown (byte-level tokens), got 100"},
    {"model:\n  rope_theta: 0\n", "%s:2: model.rope_theta: must be > 0, got 0"},
    {"init:\n  std: -0.02\n", "%s:2: init.std: must be > 0, got -0.02"},
    {"scheme:\n  name: mix_ln\n  mixln_alpha: 1.5\n",
     "%s:3: scheme.mixln_alpha: must be in [0, 1], got 1.5"},
    {"scheme:\n  deepnorm_beta: 0\n", "%s:2: scheme.deepnorm_beta: must be > 0, got 0"},
    /* names */
    {"model:\n  norm: batchnorm\n",
     "%s:2: model.norm: unknown value 'batchnorm' (valid: rmsnorm, layernorm)"},
    {"train:\n  schedule: step\n",
     "%s:2: train.schedule: unknown value 'step' (valid: cosine, linear, constant)"},
    {"data:\n  source: c4\n", "%s:2: data.source: unknown value 'c4' (valid: brown, shards)"},
    {"backend:\n  name: tpu\n", "%s:2: backend.name: unknown value 'tpu' (valid: cpu, cuda, auto)"},
    {"data:\n  source: shards\n", "%s:2: data.train: required when data.source is shards"},
    {"output:\n  dir: \"\"\n", "%s:2: output.dir: must not be empty"},
    {"name: \"my sweep\"\n",
     "%s:1: name: may contain only letters, digits, '.', '_' and '-', got 'my sweep'"},
    /* seeds */
    {"seed: -1\n", "%s:1: seed: must be >= 0, got -1"},
    {"seed: one\n", "%s:1: seed: expected an integer seed, got one"},
    {"seed:\n  - 1\n  - 2.5\n", "%s:3: seed: expected an integer seed, got 2.5"},
    {"seed: [1, 2, 1]\n", "%s:1: seed: duplicate seed 1"},
    {"seed: []\n", "%s:1: seed: empty list, expected at least one seed"},
    {"seed: {a: 1}\n", "%s:1: seed: expected an integer seed or a list of them, got a mapping"},
    {"seed: 99999999999999999999\n",
     "%s:1: seed: must be <= 9223372036854775807, got 99999999999999999999"},
    /* duplicate keys */
    {"train:\n  steps: 10\n  batch: 2\n  steps: 20\n",
     "%s:4: train.steps: duplicate key (first at line 2)"},
    {"train: {steps: 10}\nseed: 1\ntrain: {batch: 2}\n", "%s:3: train: duplicate key (first at line 1)"},
    /* schemes: the other messages are in unknown_scheme_names_list_the_valid_ones */
    {"scheme: [pre_ln, lns, pre_ln]\n", "%s:1: scheme: duplicate scheme 'pre_ln'"},
    {"scheme: []\n", "%s:1: scheme: empty list, expected at least one scheme"},
    {"scheme: [[pre_ln]]\n", "%s:1: scheme: expected a scheme name, got a list"},
    /* YAML itself */
    {"", "%s:1: config: empty file, expected a mapping of sections"},
    {"# only a comment\n\n", "%s:1: config: empty file, expected a mapping of sections"},
    {"train:\n  steps: 10\n batch: 3\n",
     "%s:3: yaml: did not find expected key (while parsing a block mapping)"},
    {"train: {steps: 10\n", "%s:2: yaml: did not find expected ',' or '}' (while parsing a flow mapping)"},
    {"name: a\n---\nname: b\n", "%s:3: config: more than one YAML document"},
};

START_TEST(each_error_is_one_line_naming_file_line_and_key) {
    load_fails(ERRORS[_i].yaml, NULL, 0, ERRORS[_i].expect);
}
END_TEST

START_TEST(unknown_scheme_names_list_the_valid_ones) {
    char valid[512], expect[1024];
    scheme_names(valid, sizeof valid);
    /* the LNS release's bug: a case mismatch must be an error, never a silent fallback */
    snprintf(expect, sizeof expect, "%%s:1: scheme: unknown scheme 'LNS' (valid: %s)", valid);
    load_fails("scheme: LNS\n", NULL, 0, expect);
    snprintf(expect, sizeof expect, "%%s:3: scheme: unknown scheme 'nope' (valid: %s)", valid);
    load_fails("scheme:\n  - pre_ln\n  - nope\n", NULL, 0, expect);
    snprintf(expect, sizeof expect, "%%s:2: scheme.name: unknown scheme 'x' (valid: %s)", valid);
    load_fails("scheme:\n  name: [lns, x]\n", NULL, 0, expect);
    snprintf(expect, sizeof expect, "--set: scheme: unknown scheme 'prenorm' (valid: %s)", valid);
    load_fails("{}\n", SET1("scheme=prenorm"), 1, expect);
    ck_assert(strstr(valid, "pre_ln, post_ln, deepnorm, deepnorm_release, mix_ln, lns") != NULL);
}
END_TEST

START_TEST(a_missing_file_says_cannot_open) {
    NbConfig c;
    char err[512];
    int rc = config_load(&c, "/nonexistent/dir/x.yaml", NULL, 0, err, sizeof err);
    ck_assert_int_eq(rc, CONFIG_ERR);
    ck_assert_str_eq(err, "/nonexistent/dir/x.yaml: cannot open: No such file or directory");
}
END_TEST

START_TEST(a_directory_is_not_a_config) {
    NbConfig c;
    char dir[] = "/tmp/nbcfgXXXXXX", err[512], expect[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int rc = config_load(&c, dir, NULL, 0, err, sizeof err);
    rmdir(dir);
    ck_assert_int_eq(rc, CONFIG_ERR);
    snprintf(expect, sizeof expect, "%s: cannot read: Is a directory", dir);
    ck_assert_str_eq(err, expect);
}
END_TEST

/* ---- canonical YAML, per-run configs, printing ----------------------------------------- */

static void assert_same_config(const NbConfig *a, const NbConfig *b) {
    char *ta, *tb;
    ck_assert_int_eq(config_write_yaml(a, &ta), 0);
    ck_assert_int_eq(config_write_yaml(b, &tb), 0);
    ck_assert_str_eq(ta, tb);
    free(ta);
    free(tb);
    ck_assert_str_eq(a->name, b->name);
    ck_assert(memcmp(&a->model, &b->model, sizeof a->model) == 0);
    ck_assert(memcmp(&a->train, &b->train, sizeof a->train) == 0);
    ck_assert(memcmp(&a->eval, &b->eval, sizeof a->eval) == 0);
    ck_assert(memcmp(&a->data, &b->data, sizeof a->data) == 0);
    ck_assert(memcmp(&a->metrics, &b->metrics, sizeof a->metrics) == 0);
    ck_assert(memcmp(&a->backend, &b->backend, sizeof a->backend) == 0);
    ck_assert_str_eq(a->output.dir, b->output.dir);
    ck_assert_int_eq(a->n_schemes, b->n_schemes);
    for (int i = 0; i < a->n_schemes; i++) ck_assert_ptr_eq(a->schemes[i], b->schemes[i]);
    ck_assert_int_eq(a->n_seeds, b->n_seeds);
    for (int i = 0; i < a->n_seeds; i++) ck_assert_uint_eq(a->seeds[i], b->seeds[i]);
    const SchemeParams *p = &a->scheme_params, *q = &b->scheme_params;
    ck_assert(p->init_std == q->init_std);
    for (int k = 0; k < scheme_key_count(); k++)
        ck_assert(p->value[k] == q->value[k] || (isnan(p->value[k]) && isnan(q->value[k])));
}

/* write -> load gives the same config, and writing that gives the same bytes */
static void assert_round_trip(const NbConfig *a) {
    char *text, err[1024] = "";
    NbConfig b;
    ck_assert_int_eq(config_write_yaml(a, &text), 0);
    int rc = config_load_string(&b, text, "resolved.yaml", NULL, 0, err, sizeof err);
    ck_assert_msg(rc == 0, "reloading the written YAML failed: %s\n%s", err, text);
    assert_same_config(a, &b);
    ck_assert_str_eq(b.source_text, text);
    config_free(&b);
    free(text);
}

/* Run files and checkpoints written before metrics.probe_tokens store metrics.probe_batches:
 * N batches of train.batch x model.seq_len tokens (the older meaning), which must read as
 * the token count whose probes are those same N batches. */
START_TEST(a_stored_config_with_the_older_probe_batches_reads_as_the_same_probe_tokens) {
    const char *stored = "name: old\nmodel: {seq_len: 16}\ntrain: {batch: 4}\n"
                         "metrics: {every: 10, probe_batches: 3}\n";
    NbConfig c;
    char err[1024] = "";
    ck_assert_msg(config_load_string(&c, stored, "old.ckpt.h5", NULL, 0, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(c.metrics.probe_tokens, 3 * 4 * 16);
    ck_assert_int_eq(metrics_probe_batches(c.metrics.probe_tokens, 4, 16), 3);
    config_free(&c);

    const char *both = "metrics: {probe_batches: 3, probe_tokens: 100}\n";
    ck_assert_int_eq(config_load_string(&c, both, "old.ckpt.h5", NULL, 0, err, sizeof err),
                     CONFIG_ERR);
    ck_assert_msg(strstr(err, "metrics.probe_tokens: set together with the older "
                              "metrics.probe_batches"), "%s", err);
    ck_assert_int_eq(config_load_string(&c, "metrics: {probe_batches: 0}\n", "old.ckpt.h5",
                                        NULL, 0, err, sizeof err),
                     CONFIG_ERR);

    /* a config file a user writes today gets the unknown-key error */
    TmpYaml t;
    tmp_yaml(&t, "new.yaml", "metrics: {probe_batches: 3}\n");
    ck_assert_int_eq(config_load(&c, t.path, NULL, 0, err, sizeof err), CONFIG_ERR);
    tmp_done(&t);
    ck_assert_msg(strstr(err, "metrics.probe_batches: unknown key"), "%s", err);
}
END_TEST

START_TEST(written_yaml_reloads_to_the_same_config) {
    NbConfig c;
    const char *sets[] = {"train.lr=0.0003", "model.norm_eps=1e-5", "init.embed_std=0.6324555",
                          "scheme.deepnorm_beta=0.123456789", "data.train=a \"quoted\"\\path"};
    load_ok(&c,
            "scheme: [pre_ln, deepnorm, lns]\nseed: [5, 6]\nname: rt\n"
            "model: {rope_theta: 500000, final_norm: false, norm: layernorm}\n"
            "train: {steps: 77, warmup: 7, schedule: constant, beta2: 0.95}\n",
            sets, 5);
    assert_round_trip(&c);
    config_free(&c);
    load_ok(&c, "{}\n", NULL, 0);
    assert_round_trip(&c);
    config_free(&c);
}
END_TEST

START_TEST(written_yaml_is_canonical) {
    NbConfig c;
    char *text;
    load_ok(&c, "seed: [2, 3]\ntrain: {lr: 0.001}\nscheme: {name: mix_ln, mixln_alpha: 0.5}\n",
            NULL, 0);
    ck_assert_int_eq(config_write_yaml(&c, &text), 0);
    /* sections in table order, every key written, shortest exact decimals */
    ck_assert(strncmp(text, "name: \"sweep\"\nmodel:\n  n_layer: ", 31) == 0);
    ck_assert(strstr(text, "scheme:\n  name: mix_ln\n  mixln_alpha: 0.5\nseed: [2, 3]\ntrain:\n"));
    ck_assert(strstr(text, "  lr: 0.001\n  min_lr: 0.0001\n"));
    ck_assert(strstr(text, "deepnorm_alpha") == NULL); /* unset constants are not written */
    ck_assert(strstr(text, "output:\n  dir: \"runs\"\n"));
    /* floats: whole numbers plainly, exponents with a '.' so YAML 1.1 readers see a float */
    ck_assert(strstr(text, "  rope_theta: 10000\n"));
    ck_assert(strstr(text, "  eps: 1.0e-08\n"));
    /* the same config written twice hashes the same */
    char h1[65], h2[65], *again;
    ck_assert_int_eq(config_write_yaml(&c, &again), 0);
    sha256_hex(text, strlen(text), h1);
    sha256_hex(again, strlen(again), h2);
    ck_assert_str_eq(h1, h2);
    free(text);
    free(again);
    config_free(&c);
}
END_TEST

START_TEST(select_run_cuts_one_scheme_and_one_seed) {
    NbConfig sweep, run;
    load_ok(&sweep, "scheme: [pre_ln, post_ln]\nseed: [1, 2, 3]\n", NULL, 0);
    config_select_run(&sweep, 1, 2, &run);
    ck_assert_int_eq(run.n_schemes, 1);
    ck_assert_str_eq(run.schemes[0]->name, "post_ln");
    ck_assert_int_eq(run.n_seeds, 1);
    ck_assert_uint_eq(run.seeds[0], 3);
    ck_assert_str_eq(run.name, sweep.name);
    ck_assert_str_eq(run.source_text, sweep.source_text);
    ck_assert_ptr_ne(run.source_text, sweep.source_text); /* its own copy */
    char *text;
    ck_assert_int_eq(config_write_yaml(&run, &text), 0);
    ck_assert(strstr(text, "scheme:\n  name: post_ln\nseed: 3\n"));
    free(text);
    assert_round_trip(&run);
    config_free(&run);
    ck_assert_int_eq(sweep.n_schemes, 2); /* the sweep is untouched */
    config_free(&sweep);
}
END_TEST

START_TEST(print_shows_the_source_and_the_resolved_yaml) {
    NbConfig c;
    char *buf = NULL, *text;
    size_t len = 0;
    load_ok(&c, "scheme: [pre_ln, lns]\n", NULL, 0);
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    config_print(f, &c);
    fclose(f);
    ck_assert(strstr(buf, "# resolved config of ") == buf);
    ck_assert(strstr(buf, ": 2 schemes x 1 seed = 2 runs\n"));
    ck_assert_int_eq(config_write_yaml(&c, &text), 0);
    ck_assert(strstr(buf, text) != NULL);
    free(text);
    free(buf);
    config_free(&c);
}
END_TEST

/* ---- the shipped configs (tests run from the repository root) -------------------------- */

START_TEST(shipped_configs_load_and_round_trip) {
    NbConfig c;
    char err[1024] = "";
    int rc = config_load(&c, "configs/demo/demo.yaml", NULL, 0, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(c.name, "demo");
    ck_assert_int_eq(c.model.n_layer, 12);
    ck_assert_int_eq(c.model.d_model, 64);
    ck_assert_int_eq(c.model.n_head, 4);
    ck_assert_int_eq(c.model.d_ff, 172);
    ck_assert_int_eq(c.model.seq_len, 64);
    ck_assert_int_eq(c.train.batch * c.train.grad_accum, 32); /* sequences per step */
    ck_assert_int_eq(c.n_schemes, 5);
    ck_assert_int_eq(c.n_seeds, 3); /* error bars by default */
    ck_assert(c.train.min_lr == c.train.lr / 10);
    ck_assert_int_eq(c.train.warmup, c.train.steps / 10);
    assert_round_trip(&c);
    config_free(&c);
    /* the zoo: every row of the scheme table, in its order, 3 seeds */
    rc = config_load(&c, "configs/demo/zoo.yaml", NULL, 0, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(c.n_schemes, (int)scheme_count());
    for (int i = 0; i < c.n_schemes; i++) ck_assert_ptr_eq(c.schemes[i], scheme_at((size_t)i));
    ck_assert_int_eq(c.n_seeds, 3);
    ck_assert_int_eq(c.model.n_layer, 12);
    ck_assert_int_eq(c.model.d_model, 64);
    assert_round_trip(&c);
    config_free(&c);
    rc = config_load(&c, "configs/tiny/tiny.yaml", NULL, 0, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(c.model.n_layer, 4);
    ck_assert_int_eq(c.model.d_model, 16);
    ck_assert_int_eq(c.train.steps, 20);
    assert_round_trip(&c);
    config_free(&c);
}
END_TEST

/* ---- SHA-256: FIPS 180-4 / NIST example vectors --------------------------------------- */

START_TEST(sha256_nist_vectors) {
    char hex[65];
    sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 448 bits */
    sha256_hex(m448, strlen(m448), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    ck_assert_ptr_nonnull(million);
    memset(million, 'a', 1000000);
    sha256_hex(million, 1000000, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* incremental updates in uneven pieces give the same digest */
    Sha256 s;
    unsigned char d[32];
    sha256_init(&s);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 257 + 1)
        sha256_update(&s, million + off, off + step <= 1000000 ? step : 1000000 - off);
    sha256_final(&s, d);
    ck_assert_uint_eq(d[0], 0xcd);
    ck_assert_uint_eq(d[31], 0xd0);
    free(million);
}
END_TEST

Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *t = tcase_create("defaults");
    tcase_add_test(t, defaults_fill_every_key);
    tcase_add_test(t, min_lr_defaults_to_a_tenth_of_lr_unless_given);
    tcase_add_test(t, every_section_and_key_is_read);
    tcase_add_test(t, an_empty_section_is_allowed);
    suite_add_tcase(s, t);

    t = tcase_create("shapes");
    tcase_add_test(t, scheme_as_a_name);
    tcase_add_test(t, scheme_as_a_list_is_a_sweep_in_order);
    tcase_add_test(t, scheme_as_a_mapping_with_constants);
    tcase_add_test(t, seed_as_a_number_or_a_list);
    suite_add_tcase(s, t);

    t = tcase_create("overrides");
    tcase_add_test(t, set_overrides_nested_keys_in_order);
    tcase_add_test(t, set_values_are_yaml_lists_and_mappings_too);
    tcase_add_test(t, set_is_type_checked);
    tcase_add_test(t, set_rejects_unknown_keys_and_malformed_arguments);
    tcase_add_test(t, set_can_break_a_cross_key_rule_set_in_the_file);
    suite_add_tcase(s, t);

    t = tcase_create("errors");
    tcase_add_loop_test(t, each_error_is_one_line_naming_file_line_and_key, 0,
                        (int)(sizeof ERRORS / sizeof ERRORS[0]));
    tcase_add_test(t, unknown_scheme_names_list_the_valid_ones);
    tcase_add_test(t, a_missing_file_says_cannot_open);
    tcase_add_test(t, a_directory_is_not_a_config);
    suite_add_tcase(s, t);

    t = tcase_create("yaml_out");
    tcase_add_test(t, written_yaml_reloads_to_the_same_config);
    tcase_add_test(t, written_yaml_is_canonical);
    tcase_add_test(t, select_run_cuts_one_scheme_and_one_seed);
    tcase_add_test(t, print_shows_the_source_and_the_resolved_yaml);
    tcase_add_test(t, shipped_configs_load_and_round_trip);
    tcase_add_test(t, a_stored_config_with_the_older_probe_batches_reads_as_the_same_probe_tokens);
    suite_add_tcase(s, t);

    t = tcase_create("sha256");
    tcase_add_test(t, sha256_nist_vectors);
    suite_add_tcase(s, t);
    return s;
}
