/* test_train.c — the training loop and the `normbench` command line as a user meets them:
 * the learning-rate schedule against its closed form, exact resume, gradient accumulation,
 * divergence detection, checkpoints that carry Hugging Face names, and the CLI's exit codes
 * and one-line errors. Runs on configs/tiny/tiny.yaml from the repository root. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "h5util.h"
#include "testutil.h"
#include "run.h"
#include "train.h"

static const char *tiny_path = "configs/tiny/tiny.yaml";

static void load_tiny(NbConfig *cfg, const char *const *sets, int n_sets) {
    char err[1024];
    ck_assert_msg(config_load(cfg, tiny_path, sets, n_sets, err, sizeof err) == 0, "%s", err);
}

static char *temp_dir(void) {
    char *dir = test_temp_dir("nbtrain");
    ck_assert_ptr_nonnull(dir);
    return dir;
}

static void remove_tree(const char *dir) { ck_assert_int_eq(test_remove_tree(dir), 0); }

/* ---- schedule ------------------------------------------------------------------------- */

START_TEST(warmup_is_linear_then_cosine_reaches_min_lr_at_the_last_step) {
    NbTrainConfig t = {.steps = 110, .lr = 1e-3, .min_lr = 1e-4, .warmup = 10,
                       .schedule = NB_SCHED_COSINE};
    ck_assert_double_eq_tol(train_lr_at(&t, 0), 1e-4, 1e-15);   /* 1/10 of peak */
    ck_assert_double_eq_tol(train_lr_at(&t, 4), 5e-4, 1e-15);
    ck_assert_double_eq_tol(train_lr_at(&t, 9), 1e-3, 1e-15);   /* end of warmup: peak */
    ck_assert_double_eq_tol(train_lr_at(&t, 10), 1e-3, 1e-15);  /* cosine starts at peak */
    /* step 10 + 99*k: progress k; lr = min + (max-min)(1 + cos(pi k))/2 */
    for (int s = 10; s < 110; s += 7) {
        double k = (s - 10) / 99.0;
        double want = 1e-4 + 0.9e-3 * 0.5 * (1.0 + cos(3.14159265358979323846 * k));
        ck_assert_double_eq_tol(train_lr_at(&t, s), want, 1e-15);
    }
    ck_assert_double_eq_tol(train_lr_at(&t, 109), 1e-4, 1e-15);
    t.schedule = NB_SCHED_LINEAR;
    ck_assert_double_eq_tol(train_lr_at(&t, 10 + 33), 1e-3 - 0.9e-3 / 3.0, 1e-15);
    t.schedule = NB_SCHED_CONSTANT;
    ck_assert_double_eq_tol(train_lr_at(&t, 80), 1e-3, 1e-15);
}
END_TEST

/* ---- runs through run_train ------------------------------------------------------------ */

typedef struct {
    RunResult res;
    float *params, *adam_m, *adam_v;
    size_t n;
} Outcome;

/* Trains the tiny config with overrides; stop_after > 0 stops there; resume continues. */
static Outcome run_tiny(const char *ckpt, const char *const *sets, int n_sets, int stop_after,
                        int resume) {
    NbConfig cfg;
    load_tiny(&cfg, sets, n_sets);
    char err[1024];
    Dataset ds = {0};
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    Backend *be = backend_create("cpu", 2, err, sizeof err);
    ck_assert_ptr_nonnull(be);
    RunOptions opt = {.checkpoint = ckpt, .resume = resume, .stop_after = stop_after};
    Outcome out = {0};
    ck_assert_msg(run_train(&cfg, &ds, be, &opt, &out.res, err, sizeof err) == 0, "%s", err);
    if (out.res.status == RUN_FINISHED) {
        /* read the state back from the checkpoint the run wrote at its end */
        Model *m = run_create_model(&cfg, be, err, sizeof err);
        ck_assert_msg(m != NULL, "%s", err);
        ck_assert_msg(checkpoint_load_state(ckpt, m, err, sizeof err) == 0, "%s", err);
        out.n = model_params(m)->total;
        out.params = malloc(out.n * sizeof(float));
        out.adam_m = malloc(out.n * sizeof(float));
        out.adam_v = malloc(out.n * sizeof(float));
        model_get_params(m, out.params);
        model_get_optimizer_state(m, out.adam_m, out.adam_v);
        model_destroy(m);
    }
    backend_destroy(be);
    dataset_free(&ds);
    config_free(&cfg);
    return out;
}

static void outcome_free(Outcome *o) {
    free(o->params), free(o->adam_m), free(o->adam_v);
}

START_TEST(resuming_from_a_checkpoint_is_bitwise_identical_to_training_straight) {
    char *dir = temp_dir();
    char straight[300], halves[300];
    snprintf(straight, sizeof straight, "%s/straight.ckpt.h5", dir);
    snprintf(halves, sizeof halves, "%s/halves.ckpt.h5", dir);
    Outcome a = run_tiny(straight, NULL, 0, 0, 0);
    Outcome first = run_tiny(halves, NULL, 0, 10, 0); /* killed after step 10 of 20 */
    ck_assert_int_eq(first.res.steps_done, 10);
    CheckpointInfo info;
    char err[512];
    ck_assert_int_eq(checkpoint_read_info(halves, &info, err, sizeof err), 0);
    ck_assert_int_eq(info.step, 10);
    checkpoint_info_free(&info);
    Outcome b = run_tiny(halves, NULL, 0, 0, 1);
    ck_assert_int_eq(b.res.status, RUN_FINISHED);
    ck_assert_int_eq(b.res.steps_done, 20);
    ck_assert_uint_eq(a.n, b.n);
    ck_assert_int_eq(memcmp(a.params, b.params, a.n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.adam_m, b.adam_m, a.n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.adam_v, b.adam_v, a.n * sizeof(float)), 0);
    /* and training really moved the weights: the comparison is not vacuous */
    Outcome c = run_tiny(straight, (const char *const[]){"train.steps=19"}, 1, 0, 0);
    ck_assert_int_ne(memcmp(a.params, c.params, a.n * sizeof(float)), 0);
    outcome_free(&a), outcome_free(&first), outcome_free(&b), outcome_free(&c);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(resume_refuses_a_checkpoint_of_another_config) {
    char *dir = temp_dir();
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/x.ckpt.h5", dir);
    Outcome first = run_tiny(ckpt, NULL, 0, 5, 0);
    NbConfig cfg;
    load_tiny(&cfg, (const char *const[]){"train.lr=0.002"}, 1);
    char err[1024];
    Dataset ds = {0};
    ck_assert_int_eq(run_load_dataset(&cfg, &ds, err, sizeof err), 0);
    Backend *be = backend_create("cpu", 2, err, sizeof err);
    RunOptions opt = {.checkpoint = ckpt, .resume = 1};
    RunResult res;
    ck_assert_int_eq(run_train(&cfg, &ds, be, &opt, &res, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "different config"));
    ck_assert_ptr_nonnull(strstr(err, ckpt));
    backend_destroy(be);
    dataset_free(&ds);
    config_free(&cfg);
    outcome_free(&first);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* Mean losses: one batch of 4 equals two accumulated batches of 2 over the same samples,
 * up to fp32 rounding (the sums are grouped differently, so not bitwise). */
START_TEST(gradient_accumulation_matches_the_full_batch) {
    char *dir = temp_dir();
    char p1[300], p2[300];
    snprintf(p1, sizeof p1, "%s/a.ckpt.h5", dir);
    snprintf(p2, sizeof p2, "%s/b.ckpt.h5", dir);
    const char *one[] = {"train.steps=3", "train.warmup=0", "train.batch=4", "train.grad_accum=1"};
    const char *two[] = {"train.steps=3", "train.warmup=0", "train.batch=2", "train.grad_accum=2"};
    Outcome a = run_tiny(p1, one, 4, 0, 0), b = run_tiny(p2, two, 4, 0, 0);
    ck_assert_double_eq_tol(a.res.final_train_loss, b.res.final_train_loss, 1e-5);
    double max_diff = 0, max_abs = 0;
    for (size_t i = 0; i < a.n; i++) {
        max_diff = fmax(max_diff, fabs((double)a.params[i] - b.params[i]));
        max_abs = fmax(max_abs, fabs((double)a.params[i]));
    }
    /* Adam's first steps move every weight by ~lr; the two must agree far closer than that */
    ck_assert_msg(max_diff < 1e-5, "max param diff %g", max_diff);
    outcome_free(&a), outcome_free(&b);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(an_absurd_learning_rate_ends_the_run_as_diverged) {
    char *dir = temp_dir();
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/d.ckpt.h5", dir);
    const char *sets[] = {"train.lr=1000", "train.min_lr=1000", "train.warmup=0"};
    Outcome o = run_tiny(ckpt, sets, 3, 0, 0);
    ck_assert_int_eq(o.res.status, RUN_DIVERGED);
    ck_assert_int_lt(o.res.steps_done, 20);
    /* no checkpoint of the diverged state replaces good state */
    ck_assert_int_ne(access(ckpt, F_OK), 0);
    outcome_free(&o);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(checkpoints_store_llama_tensors_under_hugging_face_names) {
    char *dir = temp_dir();
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/c.ckpt.h5", dir);
    Outcome o = run_tiny(ckpt, (const char *const[]){"train.steps=2", "train.warmup=0"}, 2, 0, 0);
    hid_t f = H5Fopen(ckpt, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    float q[16 * 16], down[16 * 44];
    ck_assert_int_eq(h5_read_f32(f, "model.layers.3.self_attn.q_proj.weight", q, 16, 16), 0);
    ck_assert_int_eq(h5_read_f32(f, "model.layers.0.mlp.down_proj.weight", down, 16, 44), 0);
    float *head_m = malloc(256 * 16 * sizeof(float));
    ck_assert_int_eq(h5_read_f32(f, "optimizer/exp_avg/lm_head.weight", head_m, 256, 16), 0);
    free(head_m);
    ck_assert_int_eq(h5_read_f32(f, "model.layers.0.mlp.down_proj.weight", down, 44, 16), -1);
    long long step;
    ck_assert_int_eq(h5_read_attr_int64(f, "step", &step), 0);
    ck_assert_int_eq(step, 2);
    H5Fclose(f);
    outcome_free(&o);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- the command line ------------------------------------------------------------------ */

typedef TestCli Cli;

static Cli run_cli(const char *args) { return test_run_cli("", args); }

START_TEST(config_errors_give_one_line_naming_file_line_key_and_exit_2) {
    char *dir = temp_dir();
    char path[300], args[700];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    struct { const char *yaml, *needle; } cases[] = {
        {"model:\n  n_layer: 2\n  d_modle: 16\n", ":3: model.d_modle: unknown key"},
        {"scheme: LNS\n", ":1: scheme"},
        {"train:\n  steps: -3\n", ":2: train.steps"},
        {"model:\n  d_model: 16\n  n_head: 3\n", "model.n_head"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(cases[i].yaml, f);
        fclose(f);
        snprintf(args, sizeof args, "train %s --set output.dir=%s", path, dir);
        Cli r = run_cli(args);
        ck_assert_int_eq(r.code, 2);
        ck_assert_int_eq(test_count_lines(r.err), 1);
        ck_assert_msg(strstr(r.err, cases[i].needle) && strstr(r.err, path),
                      "case %zu: stderr was: %s", i, r.err);
    }
    Cli r = run_cli("train /nonexistent/config.yaml");
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/config.yaml: cannot open"));
    r = run_cli("train configs/tiny/tiny.yaml --set train.stepz=3");
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--set: train.stepz: unknown key"));
    r = run_cli("frobnicate");
    ck_assert_int_eq(r.code, 2);
    r = run_cli("train");
    ck_assert_int_eq(r.code, 2);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(train_then_eval_through_the_cli) {
    char *dir = temp_dir();
    char args[700];
    snprintf(args, sizeof args, "train %s --set output.dir=%s --set train.steps=6 --quiet",
             tiny_path, dir);
    Cli r = run_cli(args);
    ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
    double loss = 0;
    const char *p = strstr(r.out, "val loss ");
    ck_assert_ptr_nonnull(p);
    loss = atof(p + 9);
    ck_assert(loss > 0 && loss < 6.0);
    snprintf(args, sizeof args, "eval %s/tiny/pre_ln-s1.ckpt.h5", dir);
    r = run_cli(args);
    ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "val_loss "));
    /* eval over all validation batches vs train's eval.batches: same model, similar loss */
    ck_assert_double_eq_tol(atof(strstr(r.out, "val_loss ") + 9), loss, 0.5);
    snprintf(args, sizeof args, "eval %s/tiny/missing.ckpt.h5", dir);
    r = run_cli(args);
    ck_assert_int_eq(r.code, 2);
    ck_assert_int_eq(test_count_lines(r.err), 1);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(a_diverging_run_exits_1_without_crashing) {
    char *dir = temp_dir();
    char args[700];
    snprintf(args, sizeof args, "train %s --set output.dir=%s --set train.lr=1000 "
             "--set train.min_lr=1000 --set train.warmup=0 --quiet", tiny_path, dir);
    Cli r = run_cli(args);
    ck_assert_int_eq(r.code, 1);
    ck_assert_ptr_nonnull(strstr(r.out, "diverged"));
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(an_unwritable_output_directory_fails_cleanly) {
    char args[700];
    snprintf(args, sizeof args, "train %s --set output.dir=/proc/normbench-nope --quiet", tiny_path);
    Cli r = run_cli(args);
    ck_assert_int_eq(r.code, 1);
    ck_assert_int_eq(test_count_lines(r.err), 1);
    ck_assert_ptr_nonnull(strstr(r.err, "/proc/normbench-nope"));
}
END_TEST

Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, warmup_is_linear_then_cosine_reaches_min_lr_at_the_last_step);
    tcase_add_test(tc, resuming_from_a_checkpoint_is_bitwise_identical_to_training_straight);
    tcase_add_test(tc, resume_refuses_a_checkpoint_of_another_config);
    tcase_add_test(tc, gradient_accumulation_matches_the_full_batch);
    tcase_add_test(tc, an_absurd_learning_rate_ends_the_run_as_diverged);
    tcase_add_test(tc, checkpoints_store_llama_tensors_under_hugging_face_names);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, config_errors_give_one_line_naming_file_line_key_and_exit_2);
    tcase_add_test(cli, train_then_eval_through_the_cli);
    tcase_add_test(cli, a_diverging_run_exits_1_without_crashing);
    tcase_add_test(cli, an_unwritable_output_directory_fails_cleanly);
    suite_add_tcase(s, cli);
    return s;
}
