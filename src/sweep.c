/* sweep.c — runs of a sweep on disk: naming, planning, one run end to end, N at a time. */
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dist.h"
#include "runfile.h"

static const char *const plan_names[] = {"train", "resume", "skip (finished)", "skip (diverged)"};

const char *run_plan_name(RunPlan p) { return plan_names[p]; }

int sweep_make_dirs(const char *path, char *err, size_t errlen) {
    char buf[NB_PATH_MAX * 2];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char keep = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%.512s: cannot create directory: %s", buf, strerror(errno));
            return -1;
        }
        *p = keep;
        if (keep == '\0') return 0;
    }
}

void sweep_dir(const NbConfig *cfg, char *out, size_t len) {
    snprintf(out, len, "%s/%s", cfg->output.dir, cfg->name);
}

int sweep_plan(const NbConfig *cfg, int fresh, SweepRun **runs, int *count, char *err,
               size_t errlen) {
    char dir[NB_PATH_MAX + NB_NAME_MAX + 2];
    sweep_dir(cfg, dir, sizeof dir);
    *count = cfg->n_schemes * cfg->n_seeds;
    *runs = calloc((size_t)*count, sizeof **runs);
    if (!*runs) {
        snprintf(err, errlen, "sweep: out of memory");
        return -1;
    }
    for (int si = 0, k = 0; si < cfg->n_schemes; si++) {
        for (int ki = 0; ki < cfg->n_seeds; ki++, k++) {
            SweepRun *r = &(*runs)[k];
            r->scheme_index = si;
            r->seed_index = ki;
            snprintf(r->run_file, sizeof r->run_file, "%s/%s-s%llu.h5", dir,
                     cfg->schemes[si]->name, (unsigned long long)cfg->seeds[ki]);
            snprintf(r->checkpoint, sizeof r->checkpoint, "%s/%s-s%llu.ckpt.h5", dir,
                     cfg->schemes[si]->name, (unsigned long long)cfg->seeds[ki]);
            char ignored[256];
            /* no readable run file: RUN_UNKNOWN */
            RunStatus status = runfile_read_status(r->run_file, ignored, sizeof ignored);
            int has_ckpt = access(r->checkpoint, F_OK) == 0;
            if (fresh) r->plan = PLAN_TRAIN;
            else if (status == RUN_FINISHED) r->plan = PLAN_SKIP_FINISHED;
            else if (status == RUN_DIVERGED) r->plan = PLAN_SKIP_DIVERGED;
            /* running (killed or stopped) or an unreadable file of a killed run: resume when
             * a checkpoint exists; failed or nothing: start over */
            else if (status != RUN_FAILED && has_ckpt) r->plan = PLAN_RESUME;
            else r->plan = PLAN_TRAIN;
        }
    }
    return 0;
}

/* Runs one run of the sweep in this process on ds and be (be NULL: the run opens its own
 * with `threads`). Returns 0 with res filled (whatever the run's status), or -1 with err for
 * a setup failure. */
static int run_one(const NbConfig *cfg, const SweepRun *sr, const SweepOptions *opt,
                   Dataset *ds, Backend *be, int threads, RunResult *res, char *err,
                   size_t errlen) {
    NbConfig run;
    config_select_run(cfg, sr->scheme_index, sr->seed_index, &run);
    run.backend.threads = threads;
    int resume = sr->plan == PLAN_RESUME;
    if (!resume && dist_rank() == 0) {
        unlink(sr->checkpoint); /* a fresh run never continues an old checkpoint */
        unlink(sr->run_file);
    }
    RunOptions ropt = {.run_file = sr->run_file, .checkpoint = sr->checkpoint,
                       .resume = resume, .progress = opt->progress,
                       .progress_tty = opt->progress_tty, .stop_after = opt->stop_after,
                       .stop_flag = opt->stop_flag};
    int rc = run_train(&run, ds, be, &ropt, res, err, errlen);
    config_free(&run);
    return rc;
}

static void print_result(const NbConfig *cfg, const SweepRun *sr, const RunResult *res) {
    printf("%-9s seed %-4llu %-9s %6d steps  train loss %.4f  val loss %.4f  val ppl %9.3f  "
           "%7.0f tokens/s",
           cfg->schemes[sr->scheme_index]->name, (unsigned long long)cfg->seeds[sr->seed_index],
           run_status_name(res->status), res->steps_done, res->final_train_loss, res->val_loss,
           res->val_ppl, res->tokens_per_s);
    if (isfinite(res->mfu)) printf("  MFU %.1f%%", 100.0 * res->mfu);
    printf("\n");
    fflush(stdout);
}

static void count(SweepTotals *t, RunStatus s) {
    int *slot[] = {[RUN_FINISHED] = &t->finished, [RUN_DIVERGED] = &t->diverged,
                   [RUN_FAILED] = &t->failed, [RUN_STOPPED] = &t->stopped};
    (*slot[s <= RUN_STOPPED ? s : RUN_FAILED])++;
}

/* Runs sr in this process, prints its line, returns its status. */
static RunStatus run_and_report(const NbConfig *cfg, const SweepRun *sr, const SweepOptions *opt,
                                Dataset *ds, Backend *be, int threads) {
    RunResult res;
    char err[1024];
    if (run_one(cfg, sr, opt, ds, be, threads, &res, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        dist_abort(1, "run failed"); /* with several ranks: never leave the others waiting */
        return RUN_FAILED;
    }
    if (res.status == RUN_FAILED) dist_abort(1, "run failed");
    print_result(cfg, sr, &res);
    return res.status;
}

int sweep_execute(const NbConfig *cfg, const SweepOptions *opt, SweepTotals *totals, char *err,
                  size_t errlen) {
    memset(totals, 0, sizeof *totals);
    const int jobs = opt->jobs > 1 ? opt->jobs : 1;
    /* Each concurrent run gets an equal share of the cores unless the config fixes it
     * (bitwise reproducibility holds for a fixed thread count). */
    const int threads = cfg->backend.threads > 0 ? cfg->backend.threads
                        : omp_get_num_procs() / jobs > 0 ? omp_get_num_procs() / jobs
                                                          : 1;
    /* The dataset and the backend, opened once before anything is written, so that a config
     * error is one line: with -j 1 every run trains on this backend; with -j N the children
     * share the dataset and each opens its own backend (a GPU context does not survive a
     * fork). */
    Dataset ds = {0};
    Backend *be = NULL;
    SweepRun *runs = NULL;
    int n = 0, rc = SWEEP_SETUP_ERROR;
    NbConfig with_threads = *cfg;
    with_threads.backend.threads = jobs == 1 ? threads : cfg->backend.threads;
    if (run_load_dataset(cfg, &ds, err, errlen) != 0 ||
        !(be = run_open_backend(&with_threads, err, errlen)))
        goto done;
    if (opt->progress)
        fprintf(opt->progress, "normbench %s: %s, %d scheme(s) x %d seed(s), backend %s (%s), "
                "%zu train / %zu val tokens\n", opt->command ? opt->command : "sweep", cfg->name,
                cfg->n_schemes, cfg->n_seeds, be->name, be->device, ds.n_train, ds.n_val);
    if (jobs > 1) {
        backend_destroy(be);
        be = NULL;
    }
    rc = -1;
    if (sweep_plan(cfg, opt->fresh, &runs, &n, err, errlen) != 0) goto done;
    dist_bcast(runs, sizeof *runs * (size_t)n); /* several ranks: rank 0's plan for all */
    char dir[NB_PATH_MAX + NB_NAME_MAX + 2];
    sweep_dir(cfg, dir, sizeof dir);
    if (sweep_make_dirs(dir, err, errlen) != 0) goto done;
    if (opt->progress)
        for (int k = 0; k < n; k++)
            fprintf(opt->progress, "  %-40s %s\n", runs[k].run_file, run_plan_name(runs[k].plan));
    SweepOptions child_opt = *opt;
    if (jobs > 1) child_opt.progress_tty = 0; /* interleaved children: plain lines */

    int running = 0;
    for (int k = 0; k < n || running > 0;) {
        int stopping = opt->stop_flag && *opt->stop_flag;
        if (k < n && !stopping && running < jobs) {
            SweepRun *sr = &runs[k++];
            if (opt->only > 0 && k - 1 != opt->only - 1) continue; /* --only: that run alone */
            if (sr->plan == PLAN_SKIP_FINISHED || sr->plan == PLAN_SKIP_DIVERGED) {
                totals->skipped++;
                continue;
            }
            if (jobs == 1) {
                count(totals, run_and_report(cfg, sr, &child_opt, &ds, be, threads));
                continue;
            }
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid == 0) _exit((int)run_and_report(cfg, sr, &child_opt, &ds, NULL, threads));
            if (pid < 0) {
                snprintf(err, errlen, "sweep: cannot fork: %s", strerror(errno));
                count(totals, RUN_FAILED);
                continue;
            }
            running++;
            continue;
        }
        if (running == 0) break; /* stopping, nothing in flight */
        int status;
        pid_t done = waitpid(-1, &status, 0);
        if (done < 0) {
            if (errno == EINTR) continue;
            break;
        }
        running--;
        count(totals, WIFEXITED(status) ? (RunStatus)WEXITSTATUS(status) : RUN_FAILED);
    }
    rc = 0;
done:
    free(runs);
    if (be) backend_destroy(be);
    dataset_free(&ds);
    return rc;
}
