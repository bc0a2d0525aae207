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
#include "metrics.h"
#include "recover.h"
#include "runfile.h"
#include "runlock.h"

static const char *const plan_names[] = {"train", "resume", "skip (finished)", "skip (diverged)",
                                          "skip (in progress in another process)"};

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
            if (runlock_is_busy(r->run_file)) r->plan = PLAN_SKIP_BUSY;
            else if (fresh) r->plan = PLAN_TRAIN;
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

/* What run_one did besides training: nothing to do (another process holds the run, or it
 * finished meanwhile). */
enum { RUN_ONE_TRAINED = 0, RUN_ONE_SKIPPED = 1 };
/* A child's exit code for a skipped run (RunStatus values are the others). */
#define EXIT_SKIPPED 10

/* Runs one run of the sweep in this process on ds and be (be NULL: the run opens its own
 * with `threads`), holding the run's lock from before anything on disk is decided until its
 * run file is closed; the plan made without the lock is made again under it (another
 * process may have finished or damaged the run meanwhile). Returns RUN_ONE_TRAINED with res
 * filled (whatever the run's status), RUN_ONE_SKIPPED (the reason printed), or -1 with err
 * for a setup failure. */
static int run_one(const NbConfig *cfg, const SweepRun *planned, const SweepOptions *opt,
                   Dataset *ds, Backend *be, int threads, RunResult *res, char *err,
                   size_t errlen) {
    SweepRun sr_locked = *planned, *sr = &sr_locked;
    RunLock lock = RUNLOCK_INIT;
    NbConfig run;
    config_select_run(cfg, sr->scheme_index, sr->seed_index, &run);
    run.backend.threads = threads;
    /* Rank 0 alone owns the run's files (src/dist.c): it takes the lock and decides under
     * it what they allow (src/recover.c); the other ranks of a multi-process run follow its
     * decision: {-1 error, RUN_ONE_SKIPPED, RUN_ONE_TRAINED (go)} and the plan. */
    int decision[2] = {RUN_ONE_TRAINED, (int)sr->plan};
    if (dist_rank() == 0) {
        int got = runlock_acquire(sr->run_file, &lock, err, errlen);
        char note[1024] = "";
        if (got == RUNLOCK_BUSY) {
            fprintf(stderr, "%s; skipped\n", err);
            decision[0] = RUN_ONE_SKIPPED;
        } else if (got != RUNLOCK_HELD) {
            decision[0] = -1;
        } else if (recover_prepare(&run, sr, opt->fresh, note, sizeof note, err, errlen) != 0) {
            decision[0] = -1;
        } else if (sr->plan == PLAN_SKIP_FINISHED || sr->plan == PLAN_SKIP_DIVERGED) {
            fprintf(stderr, "%s: %s meanwhile; skipped\n", sr->run_file,
                    sr->plan == PLAN_SKIP_FINISHED ? "finished" : "diverged");
            decision[0] = RUN_ONE_SKIPPED;
        }
        if (note[0]) fprintf(stderr, "%s\n", note);
        decision[1] = (int)sr->plan;
    }
    dist_bcast(decision, sizeof decision);
    sr->plan = (RunPlan)decision[1];
    int rc = decision[0];
    if (rc == RUN_ONE_TRAINED) {
        RunOptions ropt = {.run_file = sr->run_file, .checkpoint = sr->checkpoint,
                           .resume = sr->plan == PLAN_RESUME, .progress = opt->progress,
                           .progress_tty = opt->progress_tty, .stop_after = opt->stop_after,
                           .stop_flag = opt->stop_flag};
        rc = run_train(&run, ds, be, &ropt, res, err, errlen) != 0 ? -1 : RUN_ONE_TRAINED;
    }
    config_free(&run);
    runlock_release(&lock);
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

/* s: a RunStatus, or EXIT_SKIPPED */
static void count(SweepTotals *t, int s) {
    if (s == EXIT_SKIPPED) {
        t->skipped++;
        return;
    }
    int *slot[] = {[RUN_FINISHED] = &t->finished, [RUN_DIVERGED] = &t->diverged,
                   [RUN_FAILED] = &t->failed, [RUN_STOPPED] = &t->stopped};
    (*slot[s >= 0 && s <= RUN_STOPPED ? s : RUN_FAILED])++;
}

/* Runs sr in this process, prints its line, returns its status (EXIT_SKIPPED: not run). */
static int run_and_report(const NbConfig *cfg, const SweepRun *sr, const SweepOptions *opt,
                          Dataset *ds, Backend *be, int threads) {
    RunResult res;
    char err[1024];
    int rc = run_one(cfg, sr, opt, ds, be, threads, &res, err, sizeof err);
    if (rc == RUN_ONE_SKIPPED) return EXIT_SKIPPED;
    if (rc != RUN_ONE_TRAINED) {
        fprintf(stderr, "%s\n", err);
        dist_abort(1, "run failed"); /* with several ranks: never leave the others waiting */
        return RUN_FAILED;
    }
    if (res.status == RUN_FAILED) dist_abort(1, "run failed");
    print_result(cfg, sr, &res);
    return (int)res.status;
}

/* The thread rule (docs/design.md): backend.threads when set, else OMP_NUM_THREADS when it
 * is a count (its first entry, as OpenMP reads it), else the cores shared by the runs that
 * train at once. The value is what the banner prints, the backend uses and the run file
 * records (backend.threads in its config). */
int sweep_threads(int configured, int jobs) {
    if (configured > 0) return configured;
    const char *env = getenv("OMP_NUM_THREADS");
    if (env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (end != env && (*end == '\0' || *end == ',') && errno == 0 && v >= 1 && v <= 4096)
            return (int)v;
    }
    int share = omp_get_num_procs() / (jobs > 1 ? jobs : 1);
    return share > 0 ? share : 1;
}

/* A run evaluates, probes and prunes on whole validation batches: a split holding fewer
 * than one batch would train to "finished" with no evaluation at all, so it is a data error
 * (as `eval --data` says for the same case). */
static int sweep_check_val_split(const NbConfig *cfg, const Dataset *ds, char *err,
                                 size_t errlen) {
    const size_t have = dataset_val_batches(ds, cfg->train.batch);
    const char *where = cfg->data.source == NB_DATA_SHARDS ? cfg->data.val : DATA_DEFAULT_CORPUS;
    if (have == 0) {
        snprintf(err, errlen, "%s: data.val: validation split of %zu tokens holds fewer than "
                 "train.batch = %d sequences of model.seq_len = %d tokens", where, ds->n_val,
                 cfg->train.batch, cfg->model.seq_len);
        return -1;
    }
    /* no silent caps: the run file records the batches asked for, so they must exist */
    const struct {
        const char *key;
        int want, used;
    } asks[] = {{"eval.batches", cfg->eval.batches, 1},
                {"metrics.probe_tokens",
                 metrics_probe_batches(cfg->metrics.probe_tokens, cfg->train.batch,
                                       cfg->model.seq_len),
                 cfg->metrics.every > 0}};
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++)
        if (asks[i].used && asks[i].want > 0 && (size_t)asks[i].want > have) {
            snprintf(err, errlen, "%s: %s: needs %d batches, the validation split holds %zu "
                     "of train.batch = %d x model.seq_len = %d tokens", where, asks[i].key,
                     asks[i].want, have, cfg->train.batch, cfg->model.seq_len);
            return -1;
        }
    return 0;
}

int sweep_execute(const NbConfig *cfg, const SweepOptions *opt, SweepTotals *totals, char *err,
                  size_t errlen) {
    memset(totals, 0, sizeof *totals);
    const int jobs = opt->jobs > 1 ? opt->jobs : 1;
    /* Each concurrent run gets an equal share of the cores unless the config fixes it
     * (bitwise reproducibility holds for a fixed thread count). */
    const int threads = sweep_threads(cfg->backend.threads, jobs);
    /* The dataset and the backend, opened once before anything is written, so that a config
     * error is one line: with -j 1 every run trains on this backend; with -j N the children
     * share the dataset and each opens its own backend (a GPU context does not survive a
     * fork). */
    Dataset ds = {0};
    Backend *be = NULL;
    SweepRun *runs = NULL;
    int n = 0, rc = SWEEP_SETUP_ERROR;
    NbConfig with_threads = *cfg;
    with_threads.backend.threads = threads; /* the banner names what every run uses */
    if (run_load_dataset(cfg, &ds, err, errlen) != 0 ||
        sweep_check_val_split(cfg, &ds, err, errlen) != 0 ||
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
            if (sr->plan == PLAN_SKIP_FINISHED || sr->plan == PLAN_SKIP_DIVERGED ||
                sr->plan == PLAN_SKIP_BUSY) {
                if (sr->plan == PLAN_SKIP_BUSY && dist_rank() == 0)
                    fprintf(stderr, "%s: in progress in another process; skipped\n", sr->run_file);
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
            if (pid == 0) _exit(run_and_report(cfg, sr, &child_opt, &ds, NULL, threads));
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
        count(totals, WIFEXITED(status) ? WEXITSTATUS(status) : RUN_FAILED);
    }
    rc = 0;
done:
    free(runs);
    if (be) backend_destroy(be);
    dataset_free(&ds);
    return rc;
}
