/* test_sweep.c — a sweep on disk as a user meets it: the scheme x seed grid expands into
 * runs named runs/<sweep>/<scheme>-s<seed>.h5; a run cut off mid-way is resumed from its
 * checkpoint, a finished one is skipped, a diverged one is recorded and skipped. Runs the
 * tiny config (configs/tiny/tiny.yaml) from the repository root on one thread. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "runfile.h"
#include "sweep.h"
#include "testutil.h"

static void load_grid(NbConfig *cfg, const char *dir, const char *extra) {
    char out[512];
    snprintf(out, sizeof out, "output.dir=%s", dir);
    const char *sets[] = {out, "scheme=[pre_ln,lns]", "seed=[1,2]", "backend.threads=1",
                          "metrics.every=0", extra ? extra : "train.log_every=10"};
    char err[1024];
    ck_assert_msg(config_load(cfg, "configs/tiny/tiny.yaml", sets, 6, err, sizeof err) == 0,
                  "%s", err);
}

static SweepRun *plan_of(const NbConfig *cfg, int *n) {
    SweepRun *runs;
    char err[512];
    ck_assert_int_eq(sweep_plan(cfg, 0, &runs, n, err, sizeof err), 0);
    return runs;
}

START_TEST(the_grid_expands_scheme_major_into_named_run_files) {
    char *dir = test_temp_dir("nbsweep");
    NbConfig cfg;
    load_grid(&cfg, dir, NULL);
    int n;
    SweepRun *runs = plan_of(&cfg, &n);
    ck_assert_int_eq(n, 4);
    const char *want[] = {"pre_ln-s1", "pre_ln-s2", "lns-s1", "lns-s2"};
    for (int k = 0; k < n; k++) {
        char file[600], ckpt[600];
        snprintf(file, sizeof file, "%s/tiny/%s.h5", dir, want[k]);
        snprintf(ckpt, sizeof ckpt, "%s/tiny/%s.ckpt.h5", dir, want[k]);
        ck_assert_str_eq(runs[k].run_file, file);
        ck_assert_str_eq(runs[k].checkpoint, ckpt);
        ck_assert_int_eq(runs[k].plan, PLAN_TRAIN);
    }
    free(runs);
    config_free(&cfg);
    ck_assert_int_eq(test_remove_tree(dir), 0);
    free(dir);
}
END_TEST

START_TEST(a_cut_off_sweep_resumes_and_a_finished_one_is_skipped) {
    char *dir = test_temp_dir("nbsweep");
    NbConfig cfg;
    load_grid(&cfg, dir, NULL);
    char err[1024];
    SweepTotals t;
    /* every run stops after 5 of its 20 steps, as if the sweep had been killed */
    SweepOptions opt = {.jobs = 1, .stop_after = 5};
    ck_assert_msg(sweep_execute(&cfg, &opt, &t, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(t.stopped, 4);
    int n;
    SweepRun *runs = plan_of(&cfg, &n);
    for (int k = 0; k < n; k++) {
        ck_assert_int_eq(runfile_read_status(runs[k].run_file, err, sizeof err), RUN_RUNNING);
        ck_assert_int_eq(runs[k].plan, PLAN_RESUME);
    }
    free(runs);
    /* the next sweep finishes them from their checkpoints, on two jobs */
    opt = (SweepOptions){.jobs = 2};
    ck_assert_msg(sweep_execute(&cfg, &opt, &t, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(t.finished, 4);
    runs = plan_of(&cfg, &n);
    for (int k = 0; k < n; k++) ck_assert_int_eq(runs[k].plan, PLAN_SKIP_FINISHED);
    free(runs);
    /* and a third sweep has nothing to do */
    ck_assert_int_eq(sweep_execute(&cfg, &opt, &t, err, sizeof err), 0);
    ck_assert_int_eq(t.skipped, 4);
    ck_assert_int_eq(t.finished + t.stopped + t.failed + t.diverged, 0);
    config_free(&cfg);
    ck_assert_int_eq(test_remove_tree(dir), 0);
    free(dir);
}
END_TEST

START_TEST(a_diverged_run_is_recorded_and_skipped_while_the_sweep_goes_on) {
    char *dir = test_temp_dir("nbsweep");
    NbConfig cfg;
    load_grid(&cfg, dir, "train.lr=1000");
    char err[1024];
    SweepTotals t;
    SweepOptions opt = {.jobs = 1};
    ck_assert_msg(sweep_execute(&cfg, &opt, &t, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(t.diverged, 4); /* every run was tried: one divergence stops nothing */
    int n;
    SweepRun *runs = plan_of(&cfg, &n);
    for (int k = 0; k < n; k++) {
        ck_assert_int_eq(runfile_read_status(runs[k].run_file, err, sizeof err), RUN_DIVERGED);
        ck_assert_int_eq(runs[k].plan, PLAN_SKIP_DIVERGED);
    }
    free(runs);
    config_free(&cfg);
    ck_assert_int_eq(test_remove_tree(dir), 0);
    free(dir);
}
END_TEST

Suite *sweep_suite(void) {
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_grid_expands_scheme_major_into_named_run_files);
    tcase_add_test(tc, a_cut_off_sweep_resumes_and_a_finished_one_is_skipped);
    tcase_add_test(tc, a_diverged_run_is_recorded_and_skipped_while_the_sweep_goes_on);
    suite_add_tcase(s, tc);
    return s;
}
