/* test_dist.c — one run across 2 processes through the real mpirun (Open MPI), on the CPU
 * backend and configs/tiny/tiny.yaml: the 2-rank losses against the 1-rank run, the 2-rank
 * run repeated bitwise, one run file written by rank 0, a config 2 ranks cannot serve, a
 * rank killed mid-run ending the other within seconds, Ctrl-C stopping both ranks at the
 * same step, and resume after both finishing bitwise equal to a run never interrupted.
 * Skips, saying why, when mpirun or the build's MPI is missing, or under the sanitizers
 * (Open MPI's own allocations would be reported as leaks). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "h5util.h"
#include "testutil.h"

static const char *bin(void) {
    const char *b = getenv("NB_BIN");
    return b ? b : "build/normbench";
}

/* mpirun as the tests use it: root allowed (CI), 2 ranks on 2 cores, shared-memory copies
 * that work inside containers */
#define MPIRUN "OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun --allow-run-as-root " \
               "--oversubscribe -np 2 "
#define TINY "configs/tiny/tiny.yaml"

/* 1 when the MPI tests can run here; else prints why (once per test) and returns 0 */
static int mpi_available(void) {
    if (getenv("NB_SANITIZE")) {
        fprintf(stderr, "dist: skipped under the sanitizers (Open MPI's allocations read as "
                        "leaks); `make test` runs it\n");
        return 0;
    }
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        fprintf(stderr, "dist: SKIPPED: no mpirun (scripts/install-deps installs openmpi-bin)\n");
        return 0;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s info | grep -q '^MPI: Open MPI'", bin());
    if (system(cmd) != 0) {
        fprintf(stderr, "dist: SKIPPED: %s was built without MPI (no mpicc at build time)\n", bin());
        return 0;
    }
    return 1;
}

/* Runs a shell command with stdout and stderr captured to out (malloc'ed). Exit status. */
static int sh(const char *cmd, char **out) {
    char path[] = "/tmp/nbdist-out-XXXXXX", full[8192];
    close(mkstemp(path));
    snprintf(full, sizeof full, "(%s) >%s 2>&1", cmd, path);
    int st = system(full);
    FILE *f = fopen(path, "r");
    size_t cap = 1 << 16, n = 0;
    char *buf = calloc(cap + 1, 1);
    if (f) {
        n = fread(buf, 1, cap, f);
        fclose(f);
    }
    buf[n] = '\0';
    unlink(path);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A series of a run file (e.g. "train/loss"), malloc'ed; *n its length. */
static double *series(const char *run_file, const char *name, size_t *n) {
    hid_t f = h5_open_readonly_nolock(run_file);
    ck_assert_msg(f >= 0, "%s: cannot open", run_file);
    double *data = NULL;
    size_t dims[1];
    int rank;
    ck_assert_msg(h5_read_f64_nd(f, name, 1, &data, dims, &rank) == 0, "%s: no %s", run_file, name);
    H5Fclose(f);
    *n = dims[0];
    return data;
}

static long long attr_int(const char *run_file, const char *name) {
    hid_t f = h5_open_readonly_nolock(run_file);
    ck_assert(f >= 0);
    long long v = -1;
    ck_assert_int_eq(h5_read_attr_int64(f, name, &v), 0);
    H5Fclose(f);
    return v;
}

static char *attr_string(const char *run_file, const char *name) {
    hid_t f = h5_open_readonly_nolock(run_file);
    ck_assert(f >= 0);
    char *v = NULL;
    ck_assert_int_eq(h5_read_attr_string(f, name, &v), 0);
    H5Fclose(f);
    return v;
}

/* run files (*.h5 but not *.ckpt.h5) and all entries in dir */
static void count_files(const char *dir, int *run_files, int *entries) {
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "ls -1 '%s' | grep '\\.h5$' | grep -vc '\\.ckpt\\.h5$'; ls -1 '%s' | wc -l",
             dir, dir);
    sh(cmd, &out);
    ck_assert_int_eq(sscanf(out, "%d %d", run_files, entries), 2);
    free(out);
}

/* mv dir/out dir/name: every run trains into the same output.dir (which its config, hence
 * its checkpoint, records), then moves aside for the comparisons */
static void move_out(const char *dir, const char *name) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mv '%s/out' '%s/%s'", dir, dir, name);
    ck_assert_int_eq(sh(cmd, NULL), 0);
}

static int same_checkpoints(const char *a, const char *b) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "h5diff '%s' '%s'", a, b);
    return sh(cmd, NULL) == 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

#define ACCUM2 "--set train.grad_accum=2 --set train.log_every=1 --quiet"

START_TEST(two_ranks_match_one_rank_repeat_bitwise_and_write_one_run_file) {
    if (!mpi_available()) return;
    char *dir = test_temp_dir("nbdist");
    char cmd[2048], *out;
    const char *sub[] = {"one", "two-a", "two-b"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s%s train " TINY " " ACCUM2 " --set output.dir=%s/out",
                 i == 0 ? "" : MPIRUN, bin(), dir);
        int rc = sh(cmd, &out);
        ck_assert_msg(rc == 0, "%s -> %d:\n%s", cmd, rc, out);
        if (i > 0) /* the run's summary line, from rank 0 alone */
            ck_assert_msg(test_count_lines(out) == 1 && strstr(out, "pre_ln    seed 1    finished"),
                          "expected one summary line, got:\n%s", out);
        free(out);
        move_out(dir, sub[i]);
    }
    char f[3][600], ck[3][600], rundir[600];
    for (int i = 0; i < 3; i++) {
        snprintf(f[i], sizeof f[i], "%s/%s/tiny/pre_ln-s1.h5", dir, sub[i]);
        snprintf(ck[i], sizeof ck[i], "%s/%s/tiny/pre_ln-s1.ckpt.h5", dir, sub[i]);
    }
    /* exactly one run file (and its checkpoint) for the 2-rank run, saying 2 ranks */
    snprintf(rundir, sizeof rundir, "%s/two-a/tiny", dir);
    int run_files, entries;
    count_files(rundir, &run_files, &entries);
    ck_assert_int_eq(run_files, 1);
    ck_assert_int_eq(entries, 3); /* and its checkpoint and its lock file (src/runlock.c) */
    ck_assert_int_eq(attr_int(f[1], "ranks"), 2);
    ck_assert_int_eq(attr_int(f[0], "ranks"), 1);
    char *status = attr_string(f[1], "status");
    ck_assert_str_eq(status, "finished");
    free(status);

    size_t n1, n2, n3;
    double *one = series(f[0], "train/loss", &n1), *a = series(f[1], "train/loss", &n2),
           *b = series(f[2], "train/loss", &n3);
    ck_assert_int_eq(n1, 20);
    ck_assert_int_eq(n2, 20);
    ck_assert_int_eq(n3, 20);
    double worst = 0;
    for (size_t i = 0; i < n1; i++) {
        double rel = fabs(a[i] - one[i]) / fabs(one[i]);
        worst = fmax(worst, rel);
        ck_assert_msg(rel <= 1e-5, "step %zu: 2 ranks %.17g, 1 rank %.17g", i + 1, a[i], one[i]);
    }
    fprintf(stderr, "dist: 2 ranks vs 1: max relative loss difference %.3g over %zu steps\n",
            worst, n1);
    ck_assert_msg(memcmp(a, b, sizeof *a * n2) == 0, "2-rank losses differ between two runs");
    free(one), free(a), free(b);
    double *ga = series(f[1], "train/grad_norm", &n2), *gb = series(f[2], "train/grad_norm", &n3);
    ck_assert(memcmp(ga, gb, sizeof *ga * n2) == 0);
    free(ga), free(gb);
    double *ea = series(f[1], "eval/loss", &n2), *eb = series(f[2], "eval/loss", &n3);
    ck_assert(n2 == n3 && memcmp(ea, eb, sizeof *ea * n2) == 0);
    free(ea), free(eb);
    /* parameters and AdamW moments, bit for bit */
    ck_assert_msg(same_checkpoints(ck[1], ck[2]), "2-rank checkpoints differ");
    ck_assert_int_eq(test_remove_tree(dir), 0);
    free(dir);
}
END_TEST

START_TEST(a_grad_accum_the_ranks_cannot_share_is_one_line_and_exit_2) {
    if (!mpi_available()) return;
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, MPIRUN "%s train " TINY " --set train.grad_accum=3 "
             "--set output.dir=/tmp/nbdist-never", bin());
    int rc = sh(cmd, &out);
    ck_assert_msg(rc == 2, "exit %d:\n%s", rc, out);
    int lines = 0; /* lines that name the key */
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        lines += strstr(line, "train.grad_accum") != NULL;
    ck_assert_msg(lines == 1, "expected one line naming train.grad_accum:\n%s", out);
    ck_assert(access("/tmp/nbdist-never", F_OK) != 0);
    free(out);
}
END_TEST

/* the long run the signal tests cut: LONG_STEPS steps, a checkpoint every 10 (long enough
 * that an idle machine does not finish it between the first checkpoint and the signal) */
#define LONG_STEPS 1500
#define NB_STR_(x) #x
#define NB_STR(x) NB_STR_(x)
#define LONG "--set train.grad_accum=2 --set train.steps=" NB_STR(LONG_STEPS) " --set train.checkpoint_every=10 " \
             "--set eval.every=100 --set metrics.every=100 --quiet"

static void signal_run(const char *mode, const char *ckpt, const char *out_dir, int *rc,
                       double *seconds) {
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "OMPI_MCA_btl_vader_single_copy_mechanism=none "
             "bash tests/dist-signal.sh %s '%s' %s train " TINY " " LONG " --resume "
             "--set output.dir=%s", mode, ckpt, bin(), out_dir);
    ck_assert_int_eq(sh(cmd, &out), 0);
    char *last = strstr(out, "rc=");
    while (last && strstr(last + 1, "rc=")) last = strstr(last + 1, "rc=");
    ck_assert_msg(last && sscanf(last, "rc=%d seconds=%lf", rc, seconds) == 2, "%s", out);
    fprintf(stderr, "dist: %s: mpirun exit %d, %.2f s after the signal\n", mode, *rc, *seconds);
    free(out);
}

/* trains (or resumes) LONG on 2 ranks into out_dir to the end; exit status */
static int finish(const char *out_dir) {
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, MPIRUN "%s train " TINY " " LONG " --resume --set output.dir=%s",
             bin(), out_dir);
    int rc = sh(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s -> %d:\n%s\n", cmd, rc, out);
    free(out);
    return rc;
}

START_TEST(a_killed_rank_ends_the_other_ctrl_c_stops_both_and_resume_finishes_bitwise) {
    if (!mpi_available()) return;
    char *dir = test_temp_dir("nbdist");
    char path[3][600], ckpt[3][2048], run[3][2048];
    const char *sub[] = {"straight", "killed", "ctrl-c"};
    char out[600], out_ckpt[700], out_run[700];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(out_ckpt, sizeof out_ckpt, "%s/tiny/pre_ln-s1.ckpt.h5", out);
    snprintf(out_run, sizeof out_run, "%s/tiny/pre_ln-s1.h5", out);
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, sub[i]);
        snprintf(ckpt[i], sizeof ckpt[i], "%s/tiny/pre_ln-s1.ckpt.h5", path[i]);
        snprintf(run[i], sizeof run[i], "%s/tiny/pre_ln-s1.h5", path[i]);
    }
    /* the reference: LONG_STEPS steps on 2 ranks, never interrupted */
    ck_assert_int_eq(finish(out), 0);
    move_out(dir, sub[0]);

    /* rank 1 killed (SIGKILL) mid-run: mpirun, and with it rank 0, ends non-zero within
     * seconds; the last checkpoint stays */
    int rc;
    double seconds;
    signal_run("kill", out_ckpt, out, &rc, &seconds);
    ck_assert_msg(rc != 0, "mpirun exited 0 after a rank was killed");
    ck_assert_msg(seconds < 10, "the surviving rank took %.1f s to end", seconds);
    long long step = attr_int(out_ckpt, "step");
    ck_assert_msg(step > 0 && step < LONG_STEPS, "checkpoint of the killed run at step %lld", step);
    ck_assert_int_eq(finish(out), 0); /* resumed to the end */
    move_out(dir, sub[1]);

    /* Ctrl-C (SIGINT to mpirun): both ranks stop after the same step, rank 0 checkpoints
     * there, the run file holds exactly the steps up to it and says "running" */
    signal_run("int", out_ckpt, out, &rc, &seconds);
    ck_assert_msg(rc != 0, "mpirun exited 0 after Ctrl-C");
    ck_assert_msg(seconds < 10, "Ctrl-C took %.1f s to end the ranks", seconds);
    step = attr_int(out_ckpt, "step");
    ck_assert_msg(step > 0 && step < LONG_STEPS, "checkpoint of the stopped run at step %lld", step);
    size_t n;
    double *steps = series(out_run, "train/step", &n);
    ck_assert_msg(n > 0 && (long long)steps[n - 1] == step,
                  "run file ends at step %g, checkpoint at %lld", n ? steps[n - 1] : -1.0, step);
    free(steps);
    char *status = attr_string(out_run, "status");
    ck_assert_str_eq(status, "running");
    free(status);
    ck_assert_int_eq(finish(out), 0);
    move_out(dir, sub[2]);

    /* both resumed to the end: the same parameters and moments as the uninterrupted run */
    for (int i = 1; i < 3; i++) {
        status = attr_string(run[i], "status");
        ck_assert_str_eq(status, "finished");
        free(status);
        ck_assert_msg(same_checkpoints(ckpt[0], ckpt[i]), "%s run resumed differs from straight",
                      sub[i]);
        size_t na, nb;
        double *a = series(run[0], "train/loss", &na), *b = series(run[i], "train/loss", &nb);
        ck_assert_int_eq(na, LONG_STEPS);
        ck_assert_int_eq(nb, LONG_STEPS);
        ck_assert_msg(memcmp(a, b, sizeof *a * na) == 0, "%s: losses differ", sub[i]);
        free(a), free(b);
    }
    ck_assert_int_eq(test_remove_tree(dir), 0);
    free(dir);
}
END_TEST

/* the sbatch script of `sweep --emit slurm` (run for real by tests/slurm.sh) and --only */
START_TEST(emit_slurm_writes_one_array_task_per_run_and_checks_the_ranks) {
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s sweep " TINY " --set 'scheme=[pre_ln,lns]' --set 'seed=[1,2,3]' "
             "--set output.dir=/tmp/nbdist-emit --emit slurm --time 1:00:00 --partition p1", bin());
    ck_assert_msg(sh(cmd, &out) == 0, "%s", out);
    const char *want[] = {"#!/bin/bash", "#SBATCH --array=0-5\n", "#SBATCH --ntasks=1\n",
                          "#SBATCH --time=1:00:00\n", "#SBATCH --partition=p1\n",
                          "#SBATCH --requeue\n", "--only \"$SLURM_ARRAY_TASK_ID\"",
                          "--dependency=afterany:\"$SLURM_ARRAY_JOB_ID\"", "report '/tmp/nbdist-emit/tiny'",
                          "--set 'scheme=[pre_ln,lns]'", "task 5   lns       seed 3"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(out, want[i]), "no '%s' in:\n%s", want[i], out);
    ck_assert_ptr_null(strstr(out, "--gpus-per-task"));
    free(out);
    /* 2 GPUs per run: 2 tasks, one GPU each, PMIx */
    snprintf(cmd, sizeof cmd, "%s sweep " TINY " --set train.grad_accum=4 --set output.dir=/tmp/nbdist-emit "
             "--emit slurm --gpus-per-run 2", bin());
    ck_assert_msg(sh(cmd, &out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "#SBATCH --ntasks=2\n#SBATCH --gpus-per-task=1\n"));
    ck_assert_ptr_nonnull(strstr(out, "srun --kill-on-bad-exit=1 --mpi=pmix"));
    free(out);
    /* ranks that cannot share grad_accum, an --only outside the grid: one line, exit 2 */
    snprintf(cmd, sizeof cmd, "%s sweep " TINY " --set train.grad_accum=2 --set output.dir=/tmp/nbdist-emit "
             "--emit slurm --gpus-per-run 3", bin());
    ck_assert_int_eq(sh(cmd, &out), 2);
    ck_assert_msg(test_count_lines(out) == 1 && strstr(out, "train.grad_accum"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s sweep " TINY " --set output.dir=/tmp/nbdist-emit --only 1", bin());
    ck_assert_int_eq(sh(cmd, &out), 2);
    ck_assert_msg(test_count_lines(out) == 1 && strstr(out, "--only 1"), "%s", out);
    free(out);
    ck_assert_int_eq(test_remove_tree("/tmp/nbdist-emit"), 0);
}
END_TEST

Suite *dist_suite(void) {
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("mpirun");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, two_ranks_match_one_rank_repeat_bitwise_and_write_one_run_file);
    tcase_add_test(tc, a_grad_accum_the_ranks_cannot_share_is_one_line_and_exit_2);
    tcase_add_test(tc, a_killed_rank_ends_the_other_ctrl_c_stops_both_and_resume_finishes_bitwise);
    tcase_add_test(tc, emit_slurm_writes_one_array_task_per_run_and_checks_the_ranks);
    suite_add_tcase(s, tc);
    return s;
}
