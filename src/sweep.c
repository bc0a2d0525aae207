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

#include "h5log.h"

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
            char status[32], ignored[256];
            /* no readable run file leaves status "" */
            h5log_read_status(r->run_file, status, sizeof status, ignored, sizeof ignored);
            int has_ckpt = access(r->checkpoint, F_OK) == 0;
            if (fresh) r->plan = PLAN_TRAIN;
            else if (!strcmp(status, "finished")) r->plan = PLAN_SKIP_FINISHED;
            else if (!strcmp(status, "diverged")) r->plan = PLAN_SKIP_DIVERGED;
            /* "running" (killed or stopped) or an unreadable file of a killed run: resume
             * when a checkpoint exists; "failed" or nothing: start over */
            else if (strcmp(status, "failed") != 0 && has_ckpt) r->plan = PLAN_RESUME;
            else r->plan = PLAN_TRAIN;
        }
    }
    return 0;
}

int sweep_run_one(const NbConfig *cfg, const SweepRun *sr, const SweepOptions *opt,
                  int threads, TrainResult *res, char *err, size_t errlen) {
    NbConfig run;
    config_select_run(cfg, sr->scheme_index, sr->seed_index, &run);
    if (threads > 0) run.backend.threads = threads;
    Dataset ds = {0};
    Backend *be = NULL;
    RunRecorder *recorder = NULL;
    int rc = -1;
    if (train_load_dataset(&run, &ds, err, errlen) != 0) goto done;
    if (!(be = backend_create(config_backend_name(run.backend.name), run.backend.threads, err,
                              errlen)))
        goto done;
    int resume = sr->plan == PLAN_RESUME;
    if (!resume) {
        unlink(sr->checkpoint); /* a fresh run never continues an old checkpoint */
        unlink(sr->run_file);
    }
    if (!(recorder = run_recorder_create(sr->run_file, &ds, be))) {
        snprintf(err, errlen, "%s: out of memory", sr->run_file);
        goto done;
    }
    TrainObserver observer = run_recorder_observer(recorder);
    TrainOptions topt = {.checkpoint_path = sr->checkpoint, .resume = resume,
                         .progress = opt->progress, .progress_tty = opt->progress_tty,
                         .observer = &observer, .stop_after = opt->stop_after,
                         .stop_flag = opt->stop_flag};
    rc = train_run(&run, be, &ds, &topt, res, err, errlen);
done:
    run_recorder_destroy(recorder);
    if (be) backend_destroy(be);
    dataset_free(&ds);
    config_free(&run);
    return rc;
}

static void print_result(const NbConfig *cfg, const SweepRun *sr, const TrainResult *res) {
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
    int *slot[] = {&t->finished, &t->diverged, &t->failed, &t->stopped};
    (*slot[(unsigned)s < 4 ? s : RUN_FAILED])++;
}

/* Runs sr in this process, prints its line, returns its status. */
static RunStatus run_and_report(const NbConfig *cfg, const SweepRun *sr, const SweepOptions *opt,
                                int threads) {
    TrainResult res;
    char err[1024];
    if (sweep_run_one(cfg, sr, opt, threads, &res, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return RUN_FAILED;
    }
    print_result(cfg, sr, &res);
    return res.status;
}

int sweep_execute(const NbConfig *cfg, const SweepOptions *opt, SweepTotals *totals, char *err,
                  size_t errlen) {
    memset(totals, 0, sizeof *totals);
    SweepRun *runs;
    int n;
    if (sweep_plan(cfg, opt->fresh, &runs, &n, err, errlen) != 0) return -1;
    char dir[NB_PATH_MAX + NB_NAME_MAX + 2];
    sweep_dir(cfg, dir, sizeof dir);
    if (sweep_make_dirs(dir, err, errlen) != 0) {
        free(runs);
        return -1;
    }
    const int jobs = opt->jobs > 1 ? opt->jobs : 1;
    /* Each concurrent run gets an equal share of the cores unless the config fixes it
     * (bitwise reproducibility holds for a fixed thread count). */
    int threads = cfg->backend.threads > 0 ? cfg->backend.threads
                                           : (omp_get_num_procs() / jobs > 0 ? omp_get_num_procs() / jobs : 1);
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
            if (sr->plan == PLAN_SKIP_FINISHED || sr->plan == PLAN_SKIP_DIVERGED) {
                totals->skipped++;
                continue;
            }
            if (jobs == 1) {
                count(totals, run_and_report(cfg, sr, &child_opt, threads));
                continue;
            }
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid == 0) _exit((int)run_and_report(cfg, sr, &child_opt, threads));
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
    free(runs);
    return 0;
}
