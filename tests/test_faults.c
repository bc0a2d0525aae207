/* test_faults.c — fault injection against the real binary (NB_BIN, default build/normbench):
 * two sweeps on the same runs, SIGKILL at random points then resume, full disks (a small
 * tmpfs when mounting is allowed, RLIMIT_FSIZE always), torn and deleted run files,
 * truncated checkpoints, checkpoints without /optimizer or with a step out of range, a
 * validation split smaller than one batch; and the run lock and the thread rule directly.
 *
 * The reference every recovered run is held to is an uninterrupted run of the same config in
 * another directory: every dataset of the run file row for row and bit for bit (except
 * /train/tokens_per_s, a timing), and its status. Runs from the repository root. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "h5util.h"
#include "h5vet.h"
#include "runfile.h"
#include "runlock.h"
#include "sweep.h"
#include "testutil.h"

/* 200 steps, a checkpoint every 7, evaluations, probes and the pruning sweep: every kind
 * of row; one thread, so that runs are bitwise comparable */
static const char *const base_sets[] = {
    "train.steps=200", "train.checkpoint_every=7", "backend.threads=1", "eval.every=25",
    "metrics.every=50", "metrics.prune=true",
};
#define N_BASE (sizeof base_sets / sizeof base_sets[0])

static const char *nb_bin(void) { return getenv("NB_BIN") ? getenv("NB_BIN") : "build/normbench"; }

/* Starts `normbench ARGS...` (args NULL-terminated); stdout to /dev/null, stderr to err_path
 * (NULL: /dev/null). fsize > 0: RLIMIT_FSIZE in bytes, SIGXFSZ ignored (a write past it
 * fails with EFBIG, as on a full disk). */
static pid_t spawn_nb(const char *const *args, const char *err_path, long fsize) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    const char *argv[80];
    int n = 0;
    argv[n++] = nb_bin();
    for (int i = 0; args[i] && n < 79; i++) argv[n++] = args[i];
    argv[n] = NULL;
    int null = open("/dev/null", O_WRONLY);
    int efd = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
    dup2(null, 1);
    dup2(efd, 2);
    if (fsize > 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

/* Starts `normbench sweep configs/tiny/tiny.yaml --quiet` with the base settings, `extra`
 * further --set values, --set output.dir=out_dir and then the flags in `tail`
 * (NULL-terminated, may be NULL); output as spawn_nb. */
static pid_t spawn_sweep_to(const char *out_dir, const char *const *extra, int n_extra,
                            const char *const *tail, const char *err_path, long fsize) {
    char outdir[700];
    snprintf(outdir, sizeof outdir, "output.dir=%s", out_dir);
    const char *args[72];
    int n = 0;
    args[n++] = "sweep";
    args[n++] = "configs/tiny/tiny.yaml";
    args[n++] = "--quiet";
    for (size_t i = 0; i < N_BASE; i++) args[n++] = "--set", args[n++] = base_sets[i];
    for (int i = 0; i < n_extra; i++) args[n++] = "--set", args[n++] = extra[i];
    args[n++] = "--set";
    args[n++] = outdir;
    for (int i = 0; tail && tail[i] && n < 71; i++) args[n++] = tail[i];
    args[n] = NULL;
    return spawn_nb(args, err_path, fsize);
}

static pid_t spawn_sweep(const char *dir, const char *const *extra, int n_extra,
                         const char *err_path, long fsize) {
    return spawn_sweep_to(dir, extra, n_extra, NULL, err_path, fsize);
}

/* The exit code of a finished child, or 128 + signal. */
static int wait_code(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_sweep(const char *dir, const char *const *extra, int n_extra, const char *err_path,
                     long fsize) {
    return wait_code(spawn_sweep(dir, extra, n_extra, err_path, fsize));
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void run_path(const char *dir, const char *suffix, char *out, size_t len) {
    snprintf(out, len, "%s/tiny/pre_ln-s1%s", dir, suffix);
}

/* The uninterrupted reference run, trained once for the whole test case (an unchecked
 * fixture runs in the runner's process, before the tests' forks) in a directory of its own. */
static char ref_dir[512], ref_path[600];

static void make_reference(void) {
    char *dir = test_temp_dir("nb-faults-ref");
    if (!dir) return;
    snprintf(ref_dir, sizeof ref_dir, "%s", dir);
    free(dir);
    if (run_sweep(ref_dir, NULL, 0, NULL, 0) == 0) run_path(ref_dir, ".h5", ref_path, sizeof ref_path);
}

static void remove_reference(void) {
    if (ref_dir[0]) test_remove_tree(ref_dir);
}

static const char *reference_file(void) {
    ck_assert_msg(ref_path[0], "the uninterrupted reference run failed");
    return ref_path;
}

/* Every dataset of `path` equals the reference's bit for bit (but tokens_per_s), same row
 * counts, status finished. */
static void assert_same_as_reference(const char *path) {
    RunFileData a, b;
    char why[512];
    ck_assert_msg(runfile_read(reference_file(), RF_WANT_ALL, &a, why, sizeof why) == 0, "%s", why);
    ck_assert_msg(runfile_read(path, RF_WANT_ALL, &b, why, sizeof why) == 0, "%s: %s", path, why);
    ck_assert_str_eq(b.status_text, "finished");
    ck_assert_str_eq(a.status_text, "finished");
    for (int k = 0; k < RF_N_DATASETS; k++) {
        if (k == RF_TRAIN_TOKENS_PER_S) continue;
        const RunArray *x = &a.data[k], *y = &b.data[k];
        ck_assert_msg(x->present && y->present, "%s missing", runfile_dataset_name(k));
        ck_assert_int_eq(x->rank, y->rank);
        size_t n = 1;
        for (int r = 0; r < x->rank; r++) {
            ck_assert_msg(x->dims[r] == y->dims[r], "%s: %zu rows, reference %zu",
                          runfile_dataset_name(k), y->dims[r], x->dims[r]);
            n *= x->dims[r];
        }
        ck_assert_msg(n == 0 || memcmp(x->data, y->data, n * sizeof(double)) == 0,
                      "%s differs from the uninterrupted run", runfile_dataset_name(k));
    }
    ck_assert_uint_eq(a.data[RF_TRAIN_STEP].dims[0], 200);
    ck_assert(memcmp(&a.prune_base_loss, &b.prune_base_loss, sizeof(double)) == 0);
    runfile_data_free(&a);
    runfile_data_free(&b);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

/* ---- 1. two sweeps on the same runs ------------------------------------------------- */

START_TEST(two_sweeps_started_together_train_each_run_once_and_agree) {
    char *dir = test_temp_dir("nb-faults");
    char e1[600], e2[600], path[600];
    snprintf(e1, sizeof e1, "%s/err1", dir);
    snprintf(e2, sizeof e2, "%s/err2", dir);
    pid_t a = spawn_sweep(dir, NULL, 0, e1, 0), b = spawn_sweep(dir, NULL, 0, e2, 0);
    ck_assert_int_eq(wait_code(a), 0);
    ck_assert_int_eq(wait_code(b), 0);
    char *t1 = slurp(e1), *t2 = slurp(e2);
    /* exactly one of them trained; the other said in one line that it skipped */
    int skipped = (strstr(t1, "in progress in another process") != NULL) +
                  (strstr(t2, "in progress in another process") != NULL);
    ck_assert_msg(skipped == 1, "stderr 1: %s\nstderr 2: %s", t1, t2);
    ck_assert_int_eq(test_count_lines(t1) + test_count_lines(t2), 1);
    run_path(dir, ".h5", path, sizeof path);
    assert_same_as_reference(path);
    free(t1), free(t2);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(a_second_sweep_never_deletes_a_run_in_progress) {
    /* staggered, before the first checkpoint exists: the second sweep used to delete the
     * first one's file and train the run again. The first trains 3000 steps (seconds), the
     * second the same run file with 200: while the first still runs, the second must leave
     * its file alone and say so. */
    char *dir = test_temp_dir("nb-faults");
    char e2[600], path[600];
    snprintf(e2, sizeof e2, "%s/err2", dir);
    run_path(dir, ".h5", path, sizeof path);
    const char *slow[] = {"train.checkpoint_every=0", "train.steps=3000"};
    pid_t a = spawn_sweep(dir, slow, 2, NULL, 0);
    for (int i = 0; i < 4000 && !file_exists(path); i++) sleep_ms(5);
    ck_assert(file_exists(path));
    struct stat before, after;
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(run_sweep(dir, slow, 1, e2, 0), 0);
    int st;
    int first_still_running = waitpid(a, &st, WNOHANG) == 0;
    ck_assert_int_eq(stat(path, &after), 0);
    char *t2 = slurp(e2);
    ck_assert_msg(first_still_running, "the first sweep ended before the second: inconclusive");
    ck_assert_msg(strstr(t2, "in progress in another process") && test_count_lines(t2) == 1,
                  "%s", t2);
    ck_assert_uint_eq(before.st_ino, after.st_ino); /* the same file, not a new one */
    ck_assert_int_eq(wait_code(a), 0);
    RunFileData d;
    char why[256];
    ck_assert_int_eq(runfile_read(path, RF_WANT(RF_TRAIN_STEP), &d, why, sizeof why), 0);
    ck_assert_str_eq(d.status_text, "finished");
    ck_assert_uint_eq(d.data[RF_TRAIN_STEP].dims[0], 3000);
    runfile_data_free(&d);
    free(t2);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- 2. SIGKILL at random points, then resume --------------------------------------- */

START_TEST(sigkill_at_random_points_then_resume_is_bitwise_the_uninterrupted_run) {
    reference_file();
    char *dir = test_temp_dir("nb-faults");
    char path[600];
    run_path(dir, ".h5", path, sizeof path);
    uint64_t rng = 0x5eed17ULL + (uint64_t)_i;
    for (int k = 0; k < 5; k++) {
        pid_t pid = spawn_sweep(dir, NULL, 0, NULL, 0);
        sleep_ms(150 + (long)test_uniform(&rng, 0, 900));
        kill(pid, SIGKILL);
        wait_code(pid);
    }
    char err[600];
    snprintf(err, sizeof err, "%s/err", dir);
    int code = run_sweep(dir, NULL, 0, err, 0);
    char *t = slurp(err);
    ck_assert_msg(code == 0, "exit %d: %s", code, t);
    assert_same_as_reference(path);
    free(t);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- 3. damaged state ---------------------------------------------------------------- */

/* A run stopped cleanly after 100 steps (run file "running", checkpoint of step 98), then
 * damaged by `damage`, then the sweep again: it ends as the uninterrupted run, and says in
 * one line what it set aside. */
static void damaged_then_sweep(void (*damage)(const char *run, const char *ckpt),
                               const char *expect_in_note) {
    reference_file();
    char *dir = test_temp_dir("nb-faults");
    char path[600], ckpt[600], err[600];
    run_path(dir, ".h5", path, sizeof path);
    run_path(dir, ".ckpt.h5", ckpt, sizeof ckpt);
    snprintf(err, sizeof err, "%s/err", dir);
    const char *stop_at_100[] = {"--stop-after", "100", NULL};
    ck_assert_int_eq(wait_code(spawn_sweep_to(dir, NULL, 0, stop_at_100, NULL, 0)), 0);
    char why[256];
    ck_assert_int_eq(runfile_read_status(path, why, sizeof why), RUN_RUNNING);
    damage(path, ckpt);
    int code = run_sweep(dir, NULL, 0, err, 0);
    char *t = slurp(err);
    ck_assert_msg(code == 0, "exit %d: %s", code, t);
    ck_assert_msg(strstr(t, expect_in_note) != NULL, "expected '%s' in: %s", expect_in_note, t);
    ck_assert_int_eq(test_count_lines(t), 1);
    assert_same_as_reference(path);
    free(t);
    test_remove_tree(dir);
    free(dir);
}

static void cut_in_half(const char *p) {
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size / 2), 0);
}

static void tear_run_file(const char *run, const char *ckpt) {
    (void)ckpt;
    cut_in_half(run);
}
static void delete_run_file(const char *run, const char *ckpt) {
    (void)ckpt;
    ck_assert_int_eq(unlink(run), 0);
}
static void truncate_checkpoint(const char *run, const char *ckpt) {
    (void)run;
    cut_in_half(ckpt);
}
static void cut_tail_of_checkpoint(const char *run, const char *ckpt) {
    (void)run;
    struct stat st;
    ck_assert_int_eq(stat(ckpt, &st), 0);
    ck_assert_int_eq(truncate(ckpt, st.st_size - 100), 0);
}
static void drop_optimizer(const char *run, const char *ckpt) {
    (void)run;
    hid_t f = H5Fopen(ckpt, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert(H5Ldelete(f, "optimizer", H5P_DEFAULT) >= 0);
    H5Fclose(f);
}
static void set_step(const char *ckpt, long long step) {
    hid_t f = H5Fopen(ckpt, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert_int_eq(h5_write_attr_int64(f, "step", step), 0);
    H5Fclose(f);
}
static void negative_step(const char *run, const char *ckpt) {
    (void)run;
    set_step(ckpt, -5);
}
static void step_beyond_train_steps(const char *run, const char *ckpt) {
    (void)run;
    set_step(ckpt, 500);
}

START_TEST(a_torn_run_file_beside_a_good_checkpoint_is_set_aside_and_retrained) {
    damaged_then_sweep(tear_run_file, "set aside");
}
END_TEST
START_TEST(a_deleted_run_file_with_a_kept_checkpoint_is_retrained_not_half_written) {
    damaged_then_sweep(delete_run_file, "missing beside checkpoint");
}
END_TEST
START_TEST(a_truncated_checkpoint_is_set_aside_and_retrained) {
    damaged_then_sweep(truncate_checkpoint, "set aside");
}
END_TEST
START_TEST(a_checkpoint_missing_its_last_bytes_is_set_aside_and_retrained) {
    damaged_then_sweep(cut_tail_of_checkpoint, "set aside");
}
END_TEST
START_TEST(a_checkpoint_without_optimizer_state_is_set_aside_and_retrained) {
    damaged_then_sweep(drop_optimizer, "optimizer");
}
END_TEST
START_TEST(a_checkpoint_step_out_of_range_is_not_trusted) {
    damaged_then_sweep(negative_step, "out of range");
}
END_TEST
START_TEST(a_checkpoint_step_beyond_train_steps_is_not_trusted) {
    damaged_then_sweep(step_beyond_train_steps, "beyond train.steps");
}
END_TEST

START_TEST(a_run_killed_during_pruning_resumes_to_the_same_file_and_reports_its_loss) {
    /* finished, then put back as a kill during the pruning sweep leaves it: status
     * running, no /prune, the checkpoint of the last step */
    reference_file();
    char *dir = test_temp_dir("nb-faults");
    char path[600], cmd[2048];
    ck_assert_int_eq(run_sweep(dir, NULL, 0, NULL, 0), 0);
    run_path(dir, ".h5", path, sizeof path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert_int_eq(h5_write_attr_string(f, "status", "running"), 0);
    ck_assert(H5Ldelete(f, "prune", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    int n = snprintf(cmd, sizeof cmd, "%s sweep configs/tiny/tiny.yaml --quiet", nb_bin());
    for (size_t i = 0; i < N_BASE; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --set %s", base_sets[i]);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " --set output.dir=%s > %s/out 2>&1", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    char out_path[700];
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    char *out = slurp(out_path);
    ck_assert_msg(strstr(out, "finished") && strstr(out, "val loss ") && !strstr(out, "nan"),
                  "%s", out);
    assert_same_as_reference(path);
    free(out);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- 4. full disks ----------------------------------------------------------------- */

/* One line on stderr naming the file, exit 1, no signal, no HDF5 error stack. */
static void assert_one_clean_line(int code, const char *err_path, const char *names) {
    char *t = slurp(err_path);
    ck_assert_msg(code == 1, "exit %d (139 is the old segfault): %s", code, t);
    ck_assert_msg(strstr(t, "HDF5-DIAG") == NULL, "HDF5 error stack printed: %s", t);
    ck_assert_msg(test_count_lines(t) == 1, "not one line: %s", t);
    ck_assert_msg(strstr(t, names) != NULL, "no '%s' in: %s", names, t);
    free(t);
}

START_TEST(a_size_limited_file_ends_with_one_line_and_exit_1) {
    /* RLIMIT_FSIZE: every write past 100 kB fails with EFBIG; the checkpoint (~300 kB) is
     * the first file to cross it. Works without privileges. */
    char *dir = test_temp_dir("nb-faults");
    char err[600];
    snprintf(err, sizeof err, "%s/err", dir);
    assert_one_clean_line(run_sweep(dir, NULL, 0, err, 100 * 1024), err, "ckpt.h5");
    /* the run file's rows up to the failure are there and readable */
    char path[600], why[256];
    run_path(dir, ".h5", path, sizeof path);
    ck_assert_int_eq(runfile_read_status(path, why, sizeof why), RUN_FAILED);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(a_full_tmpfs_ends_with_one_line_and_exit_1) {
    /* sizes at which the checkpoint (200k) or the run file itself (64k) fills the disk */
    const char *sizes[] = {"size=200k", "size=64k"};
    const char *names[] = {"ckpt.h5", "pre_ln-s1"};
    for (int k = 0; k < 2; k++) {
        char *dir = test_temp_dir("nb-faults-tmpfs");
        if (mount("tmpfs", dir, "tmpfs", 0, sizes[k]) != 0) {
            printf("faults: full-disk tmpfs case skipped: mount failed (%s); "
                   "RLIMIT_FSIZE case covers write failures\n", strerror(errno));
            rmdir(dir);
            free(dir);
            return;
        }
        char err[600];
        snprintf(err, sizeof err, "/tmp/nb-faults-err-%d-%d", (int)getpid(), k);
        int code = run_sweep(dir, NULL, 0, err, 0);
        assert_one_clean_line(code, err, names[k]);
        unlink(err);
        ck_assert_int_eq(umount(dir), 0);
        rmdir(dir);
        free(dir);
    }
}
END_TEST

/* ---- 5. a validation split smaller than one batch --------------------------------- */

START_TEST(a_validation_split_smaller_than_a_batch_is_a_data_error) {
    char *dir = test_temp_dir("nb-faults");
    char err[600];
    snprintf(err, sizeof err, "%s/err", dir);
    /* one step: the training split holds the step's 100000 sequences (data.repeat), the
     * validation split not one batch of them */
    const char *big[] = {"train.batch=100000", "train.steps=2", "train.warmup=1"};
    int code = run_sweep(dir, big, 3, err, 0);
    char *t = slurp(err);
    ck_assert_msg(code == 2, "exit %d: %s", code, t);
    ck_assert_int_eq(test_count_lines(t), 1);
    ck_assert_ptr_nonnull(strstr(t, "data.val"));
    ck_assert_ptr_nonnull(strstr(t, "train.batch"));
    free(t);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- 6. the lock itself and the thread rule ---------------------------------------- */

START_TEST(the_run_lock_is_exclusive_and_dies_with_its_holder) {
    char *dir = test_temp_dir("nb-faults");
    char run[600], err[512];
    snprintf(run, sizeof run, "%s/x.h5", dir);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        RunLock lk;
        char e[256];
        char ok = runlock_acquire(run, &lk, e, sizeof e) == RUNLOCK_HELD ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1) _exit(1);
        pause(); /* held until killed */
        _exit(0);
    }
    char ok = 0;
    ck_assert_int_eq(read(fds[0], &ok, 1), 1);
    ck_assert_int_eq(ok, 'y');
    RunLock lk;
    ck_assert_int_eq(runlock_acquire(run, &lk, err, sizeof err), RUNLOCK_BUSY);
    ck_assert_ptr_nonnull(strstr(err, run));
    ck_assert_int_eq(runlock_is_busy(run), 1);
    kill(pid, SIGKILL);
    wait_code(pid);
    ck_assert_int_eq(runlock_is_busy(run), 0);
    ck_assert_int_eq(runlock_acquire(run, &lk, err, sizeof err), RUNLOCK_HELD);
    runlock_release(&lk);
    /* an unwritable place for the lock file: an error, not "busy" */
    ck_assert_int_eq(runlock_acquire("/nonexistent-dir/x.h5", &lk, err, sizeof err),
                     RUNLOCK_ERROR);
    close(fds[0]), close(fds[1]);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(the_thread_rule_is_config_then_omp_num_threads_then_cores_per_job) {
    unsetenv("OMP_NUM_THREADS");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_int_eq(sweep_threads(3, 1), 3);
    ck_assert_int_eq(sweep_threads(0, 1), cores > 0 ? cores : 1);
    ck_assert_int_eq(sweep_threads(0, 1000), 1);
    setenv("OMP_NUM_THREADS", "5", 1);
    ck_assert_int_eq(sweep_threads(0, 4), 5);
    ck_assert_int_eq(sweep_threads(2, 4), 2);
    setenv("OMP_NUM_THREADS", "6,2", 1);
    ck_assert_int_eq(sweep_threads(0, 1), 6);
    setenv("OMP_NUM_THREADS", "abc", 1);
    ck_assert_int_eq(sweep_threads(0, 1000), 1);
    setenv("OMP_NUM_THREADS", "0", 1);
    ck_assert_int_eq(sweep_threads(0, 1000), 1);
    unsetenv("OMP_NUM_THREADS");
}
END_TEST

/* ---- 7. the smaller items: strict numbers, odd targets, renamed files ---------------- */

/* Runs normbench with argv (NULL-terminated, after the binary); returns the exit code and
 * stderr in *err_text (malloc'ed). */
static int run_nb(const char *const *args, char **err_text) {
    char err_path[64];
    snprintf(err_path, sizeof err_path, "/tmp/nb-faults-cli-%d", (int)getpid());
    int code = wait_code(spawn_nb(args, err_path, 0));
    *err_text = slurp(err_path);
    unlink(err_path);
    return code;
}

START_TEST(numeric_flags_and_values_are_parsed_strictly) {
/* should a flag be accepted after all, the sweep trains 2 steps in /tmp, not in runs/ */
#define GUARD "--set", "output.dir=/tmp/nb-faults-strict", "--set", "train.steps=2", \
              "--set", "train.warmup=1"
    const char *cases[][14] = {
        {"sweep", "configs/tiny/tiny.yaml", GUARD, "--stop-after", "abc", NULL},
        {"sweep", "configs/tiny/tiny.yaml", GUARD, "--stop-after", "-1", NULL},
        {"sweep", "configs/tiny/tiny.yaml", GUARD, "-j", "99999999999", NULL},
        {"sweep", "configs/tiny/tiny.yaml", GUARD, "-j", "2x", NULL},
        {"export", "fuzz/corpus/runfile/run.h5", "--step", "abc", NULL},
        {"show", "configs/tiny/tiny.yaml", "--set", "train.lr=0x10", NULL},
        {"show", "configs/tiny/tiny.yaml", "--set", "data.source=shards", "--set",
         "data.train=x.bin", NULL},
    };
    const char *names[] = {"--stop-after", "--stop-after", "-j", "-j", "--step", "train.lr",
                           "data.val"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t;
        int code = run_nb(cases[i], &t);
        ck_assert_msg(code == 2, "case %zu: exit %d: %s", i, code, t);
        ck_assert_msg(strstr(t, names[i]) != NULL, "case %zu: no %s in: %s", i, names[i], t);
        free(t);
    }
    test_remove_tree("/tmp/nb-faults-strict");
#undef GUARD
}
END_TEST

START_TEST(more_batches_than_the_validation_split_holds_are_refused) {
    char *dir = test_temp_dir("nb-faults");
    char err[600];
    snprintf(err, sizeof err, "%s/err", dir);
    const char *many[] = {"eval.batches=100000"};
    int code = run_sweep(dir, many, 1, err, 0);
    char *t = slurp(err);
    ck_assert_msg(code == 2 && strstr(t, "eval.batches") && test_count_lines(t) == 1, "exit %d: %s",
                  code, t);
    free(t);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(tokenize_never_replaces_a_file_that_is_not_regular) {
    /* A FIFO of the test's own stands for /dev/full: the same kind of target (not a regular
     * file) without the risk of replacing a real device node should this regress. */
    char *dir = test_temp_dir("nb-faults");
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/node", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *args[] = {"tokenize", "configs/tiny/tiny.yaml", "-o", fifo, NULL};
    char *t;
    int code = run_nb(args, &t);
    ck_assert_msg(code == 2 && strstr(t, fifo) && strstr(t, "not a regular file"), "%s", t);
    struct stat after;
    ck_assert_int_eq(stat(fifo, &after), 0);
    ck_assert(S_ISFIFO(after.st_mode));
    free(t);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(a_checkpoint_renamed_h5_is_not_read_as_a_run) {
    RunFileData d;
    char why[512];
    ck_assert_int_eq(runfile_read("fuzz/corpus/checkpoint/ckpt.h5", RF_WANT_ALL, &d, why,
                                  sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "not a normbench run file"));
    runfile_data_free(&d);
    /* and a run file of another format version is refused by name */
    char *dir = test_temp_dir("nb-faults");
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/v2.h5", dir);
    snprintf(cmd, sizeof cmd, "cp fuzz/corpus/runfile/run.h5 '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert_int_eq(h5_write_attr_int64(f, "format_version", 2), 0);
    H5Fclose(f);
    ck_assert_int_eq(runfile_read(path, RF_WANT_ALL, &d, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "format_version 2"));
    runfile_data_free(&d);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(another_spelling_of_output_dir_resumes_the_same_runs) {
    reference_file();
    char *dir = test_temp_dir("nb-faults");
    char spelled[600], path[600];
    snprintf(spelled, sizeof spelled, "%s//./", dir);
    const char *stop_at_50[] = {"--stop-after", "50", NULL};
    ck_assert_int_eq(wait_code(spawn_sweep_to(spelled, NULL, 0, stop_at_50, NULL, 0)), 0);
    char err[600];
    snprintf(err, sizeof err, "%s/err", dir);
    int code = run_sweep(dir, NULL, 0, err, 0);
    char *t = slurp(err);
    ck_assert_msg(code == 0 && test_count_lines(t) == 0, "exit %d: %s", code, t);
    run_path(dir, ".h5", path, sizeof path);
    assert_same_as_reference(path);
    RunFileData d;
    char why[256];
    ck_assert_int_eq(runfile_read(path, 0, &d, why, sizeof why), 0);
    runfile_data_free(&d);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    long long from = -1;
    ck_assert_int_eq(h5_read_attr_int64(f, "resumed_from_step", &from), 0);
    ck_assert_int_eq(from, 50); /* a stop writes a checkpoint at its step */
    H5Fclose(f);
    free(t);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- 8. fuzz findings, kept as regressions ------------------------------------------- */

START_TEST(run_files_with_corrupt_extents_are_read_without_huge_allocations) {
    /* found by make fuzz: a dataset whose extent claims 34 GB, or more elements than a size_t
     * holds; runfile_read used to malloc what the header said (ASan, test-sanitize: an
     * allocator failure; plain builds: a 34 GB allocation filled by H5Dread) */
    const char *files[] = {"fuzz/regressions/runfile-extent-34GB.h5",
                           "fuzz/regressions/runfile-extent-overflow.h5"};
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            RunFileData d;
            char why[512];
            int rc = runfile_read(files[i], RF_WANT_ALL, &d, why, sizeof why);
            size_t most = 0;
            for (int k = 0; rc == 0 && k < RF_N_DATASETS; k++)
                if (d.data[k].present && d.data[k].dims[0] > most) most = d.data[k].dims[0];
            runfile_data_free(&d);
            _exit(most > 1000000 ? 3 : 0);
        }
        ck_assert_msg(wait_code(pid) == 0, "%s", files[i]);
    }
}
END_TEST

/* ---- 9. files on which libhdf5 itself crashes or hangs ------------------------------- */

static int crash_in_read(void *ctx, char *err, size_t errlen) {
    (void)ctx, (void)err, (void)errlen;
    raise(SIGSEGV);
    return 0;
}

static int hang_in_read(void *ctx, char *err, size_t errlen) {
    (void)ctx, (void)err, (void)errlen;
    for (volatile int spin = 1; spin;) {}
    return 0;
}

static int write_shared_then_fail(void *ctx, char *err, size_t errlen) {
    *(int *)ctx = 42;
    snprintf(err, errlen, "the child's own reason");
    return -1;
}

static double elapsed_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

START_TEST(a_read_that_crashes_or_hangs_in_the_child_is_an_error_here) {
    char err[512];
    h5vet_set_timeout(1.0);
    ck_assert_int_eq(h5vet_run(crash_in_read, NULL, 0, err, sizeof err), -2);
    ck_assert_msg(strstr(err, "corrupt HDF5 file: the HDF5 library crashed"), "%s", err);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(h5vet_run(hang_in_read, NULL, 0, err, sizeof err), -2);
    const double took = elapsed_since(&t0);
    ck_assert_msg(strstr(err, "still reading it after 1 s"), "%s", err);
    ck_assert_msg(took >= 1.0 && took < 10.0, "the hung child was stopped after %.1f s", took);

    /* the child's return code and reason come back; its writes only through shared memory */
    int *shared = h5vet_shared_alloc(sizeof *shared), private_ = 0;
    ck_assert_int_eq(h5vet_run(write_shared_then_fail, shared, 0, err, sizeof err), -1);
    ck_assert_str_eq(err, "the child's own reason");
    ck_assert_int_eq(*shared, 42);
    ck_assert_int_eq(h5vet_run(write_shared_then_fail, &private_, 0, err, sizeof err), -1);
    ck_assert_int_eq(private_, 0);
    h5vet_shared_free(shared, sizeof *shared);
}
END_TEST

/* fuzz/libhdf5-findings/README.md: inputs on which libhdf5 1.10.8 loops forever or reads
 * out of bounds (normbench export used to hang or die with SIGSEGV on them) */
static const char *const libhdf5_findings[] = {
    "fuzz/libhdf5-findings/checkpoint-libhdf5-1.10.8-H5HG_read-memcpy-overlap.h5",
    "fuzz/libhdf5-findings/checkpoint-libhdf5-1.10.8-global-heap-loop.h5",
    "fuzz/libhdf5-findings/runfile-libhdf5-1.10.8-H5HG_read-memcpy-overlap.h5",
    "fuzz/libhdf5-findings/runfile-libhdf5-1.10.8-H5O_attr_open-heap-overflow.h5",
    "fuzz/libhdf5-findings/runfile-libhdf5-1.10.8-global-heap-loop.h5",
};
#define N_FINDINGS (sizeof libhdf5_findings / sizeof libhdf5_findings[0])

START_TEST(files_that_crash_or_hang_libhdf5_are_refused_by_every_reader) {
    const char *path = libhdf5_findings[_i];
    h5vet_set_timeout(2.0);
    char err[1024];
    /* this process survives every reader; where libhdf5 happens not to fault (the
     * attribute overflow reads a few bytes past a buffer, which only ASan sees) the run-file
     * reader may even succeed */
    RunFileData d;
    const int rc = runfile_read(path, RF_WANT_ALL, &d, err, sizeof err);
    ck_assert_msg(rc == 0 || rc == -1, "%d", rc);
    runfile_data_free(&d);
    (void)runfile_read_status(path, err, sizeof err);
    CheckpointInfo info;
    ck_assert_int_eq(checkpoint_read_info(path, &info, err, sizeof err), -1);
    ck_assert_msg(strstr(err, path) && !strchr(err, '\n'), "one line naming the file: %s", err);
}
END_TEST

START_TEST(export_of_a_run_file_that_crashed_libhdf5_exits_2_with_one_line) {
    TestCli r = test_run_cli("", "export fuzz/libhdf5-findings/"
                                 "runfile-libhdf5-1.10.8-H5HG_read-memcpy-overlap.h5");
    ck_assert_msg(r.code == 2, "exit %d (it was a SIGSEGV before src/h5vet.c)", r.code);
    ck_assert_msg(strstr(r.err, "runfile-libhdf5-1.10.8-H5HG_read-memcpy-overlap.h5: corrupt HDF5 "
                                "file: the HDF5 library"),
                  "%s", r.err);
    ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "one line: %s", r.err);
}
END_TEST

Suite *faults_suite(void) {
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, make_reference, remove_reference);
    tcase_add_test(tc, the_run_lock_is_exclusive_and_dies_with_its_holder);
    tcase_add_test(tc, the_thread_rule_is_config_then_omp_num_threads_then_cores_per_job);
    tcase_add_test(tc, a_validation_split_smaller_than_a_batch_is_a_data_error);
    tcase_add_test(tc, two_sweeps_started_together_train_each_run_once_and_agree);
    tcase_add_test(tc, a_second_sweep_never_deletes_a_run_in_progress);
    tcase_add_loop_test(tc, sigkill_at_random_points_then_resume_is_bitwise_the_uninterrupted_run,
                        0, 2);
    tcase_add_test(tc, a_torn_run_file_beside_a_good_checkpoint_is_set_aside_and_retrained);
    tcase_add_test(tc, a_deleted_run_file_with_a_kept_checkpoint_is_retrained_not_half_written);
    tcase_add_test(tc, a_truncated_checkpoint_is_set_aside_and_retrained);
    tcase_add_test(tc, a_checkpoint_missing_its_last_bytes_is_set_aside_and_retrained);
    tcase_add_test(tc, a_checkpoint_without_optimizer_state_is_set_aside_and_retrained);
    tcase_add_test(tc, a_checkpoint_step_out_of_range_is_not_trusted);
    tcase_add_test(tc, a_checkpoint_step_beyond_train_steps_is_not_trusted);
    tcase_add_test(tc, a_run_killed_during_pruning_resumes_to_the_same_file_and_reports_its_loss);
    tcase_add_test(tc, a_size_limited_file_ends_with_one_line_and_exit_1);
    tcase_add_test(tc, a_full_tmpfs_ends_with_one_line_and_exit_1);
    tcase_add_test(tc, numeric_flags_and_values_are_parsed_strictly);
    tcase_add_test(tc, run_files_with_corrupt_extents_are_read_without_huge_allocations);
    tcase_add_test(tc, more_batches_than_the_validation_split_holds_are_refused);
    tcase_add_test(tc, tokenize_never_replaces_a_file_that_is_not_regular);
    tcase_add_test(tc, a_checkpoint_renamed_h5_is_not_read_as_a_run);
    tcase_add_test(tc, another_spelling_of_output_dir_resumes_the_same_runs);
    tcase_add_test(tc, a_read_that_crashes_or_hangs_in_the_child_is_an_error_here);
    tcase_add_loop_test(tc, files_that_crash_or_hang_libhdf5_are_refused_by_every_reader, 0,
                        N_FINDINGS);
    tcase_add_test(tc, export_of_a_run_file_that_crashed_libhdf5_exits_2_with_one_line);
    suite_add_tcase(s, tc);
    return s;
}
