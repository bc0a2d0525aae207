/* prune.c — `normbench prune`: the pruning sweep of a finished run, resumable (prune.h). */
#include "prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "clock.h"
#include "config.h"
#include "metrics.h"
#include "run.h"
#include "runfile.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* RUN.h5 <-> RUN.ckpt.h5 (malloc'ed into *run and *ckpt). */
static int pair_paths(const char *path, char **run, char **ckpt, char *err, size_t errlen) {
    *run = *ckpt = NULL;
    const size_t n = strlen(path);
    if (ends_with(path, ".ckpt.h5")) {
        *ckpt = strdup(path);
        *run = malloc(n + 1);
        if (*run) snprintf(*run, n + 1, "%.*s.h5", (int)(n - strlen(".ckpt.h5")), path);
    } else if (ends_with(path, ".h5")) {
        *run = strdup(path);
        *ckpt = malloc(n + 16);
        if (*ckpt) snprintf(*ckpt, n + 16, "%.*s.ckpt.h5", (int)(n - 3), path);
    } else {
        snprintf(err, errlen, "%s: expected a run file (RUN.h5) or its checkpoint (RUN.ckpt.h5)",
                 path);
        return -1;
    }
    if (!*run || !*ckpt) {
        snprintf(err, errlen, "prune: out of memory");
        return -1;
    }
    return 0;
}

static int parse_what(const char *what, unsigned *mask, char *err, size_t errlen) {
    if (!what) *mask = PRUNE_WHAT_ALL;
    else if (!strcmp(what, "block")) *mask = PRUNE_WHAT_BLOCK;
    else if (!strcmp(what, "attn")) *mask = PRUNE_WHAT_ATTN;
    else if (!strcmp(what, "mlp")) *mask = PRUNE_WHAT_MLP;
    else {
        snprintf(err, errlen, "--what: expected block, attn or mlp, got '%s'", what);
        return -1;
    }
    return 0;
}

static void format_duration(double s, char *out, size_t len) {
    if (!(s >= 0) || s > 1e7) snprintf(out, len, "?");
    else if (s >= 3600) snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, len, "%.0fs", s);
}

int prune_run(const char *path, const PruneOptions *opt, char *err, size_t errlen) {
    char *run_path = NULL, *ckpt_path = NULL;
    CheckpointInfo info = {0};
    int have_info = 0, have_cfg = 0;
    NbConfig cfg;
    Dataset ds = {0};
    Backend *be = NULL;
    Model *m = NULL;
    RunFile *rf = NULL;
    ProbeSet ps = {0};
    PruneResult pr = {0};
    RunFileData old = {0};
    double *sums = NULL;
    int rc = PRUNE_USAGE;
    unsigned what;

    /* the files: the run file and the checkpoint beside it, written with one config */
    if (parse_what(opt->what, &what, err, errlen) != 0 ||
        pair_paths(path, &run_path, &ckpt_path, err, errlen) != 0)
        goto done;
    if (access(run_path, F_OK) != 0 || access(ckpt_path, F_OK) != 0) {
        snprintf(err, errlen, "%s: prune needs the run file and its checkpoint (%s)", path,
                 access(run_path, F_OK) != 0 ? run_path : ckpt_path);
        goto done;
    }
    if (checkpoint_read_info(ckpt_path, &info, err, errlen) != 0) goto done;
    have_info = 1;
    if (config_load_string(&cfg, info.config_yaml, ckpt_path, NULL, 0, err, errlen) != 0) goto done;
    have_cfg = 1;
    const int L = cfg.model.n_layer;
    if (info.step != cfg.train.steps) {
        snprintf(err, errlen, "%s: checkpoint at step %d of %d: prune needs a finished run",
                 ckpt_path, info.step, cfg.train.steps);
        goto done;
    }
    /* what an earlier sweep left of the variants this one does not compute */
    char why[512];
    const unsigned want = RF_WANT(RF_PRUNE_BLOCK) | RF_WANT(RF_PRUNE_ATTN) | RF_WANT(RF_PRUNE_MLP);
    if (runfile_read(run_path, want, &old, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", run_path, why);
        goto done;
    }
    RunStatus status;
    if (!(rf = runfile_open_existing(run_path, info.config_yaml, L, &status, err, errlen)))
        goto done;
    if (status != RUN_FINISHED) {
        snprintf(err, errlen, "%s: run is %s: prune needs a finished run", run_path,
                 run_status_name(status));
        goto done;
    }

    /* the model, the batches and the backend, as the run built them */
    if (run_load_dataset(&cfg, &ds, err, errlen) != 0 ||
        !(be = run_open_backend(&cfg, err, errlen)))
        goto done;
    rc = PRUNE_FAILED;
    if (!(m = run_create_model(&cfg, be, err, errlen)) ||
        checkpoint_load_params(ckpt_path, m, err, errlen) != 0 ||
        probe_set_from_val(&ps, &ds, cfg.eval.batches, cfg.train.batch, err, errlen) != 0)
        goto done;
    sums = calloc((size_t)3 * L + 1, sizeof *sums);
    if (!sums || prune_result_alloc(&pr, L) != 0) {
        snprintf(err, errlen, "prune: out of memory");
        goto done;
    }
    const int n = ps.n_batches;
    int first = runfile_read_prune_partial(rf, info.step, n, what, sums);
    const int variants = 1 + L * ((what & PRUNE_WHAT_BLOCK ? 1 : 0) + (what & PRUNE_WHAT_ATTN ? 1 : 0) +
                                  (what & PRUNE_WHAT_MLP ? 1 : 0));
    if (opt->progress) {
        fprintf(opt->progress, "prune %s: %s s%llu, %d blocks, %s, %d evaluations x %d batches "
                "of %d x %d tokens%s", run_path, cfg.schemes[0]->name,
                (unsigned long long)cfg.seeds[0], L, opt->what ? opt->what : "block+attn+mlp",
                variants, n, cfg.train.batch, cfg.model.seq_len, first ? "" : "\n");
        if (first) fprintf(opt->progress, "; resuming after batch %d\n", first);
    }

    /* the batches, each followed by its partial sums in the run file */
    const double t0 = monotonic_seconds();
    int done_here = 0, stopped = 0;
    for (int b = first; b < n; b++) {
        if (metrics_prune_batch(m, &ps, b, what, sums, err, errlen) != 0) goto done;
        done_here++;
        if (b + 1 < n &&
            runfile_write_prune_partial(rf, info.step, n, what, b + 1, sums, err, errlen) != 0)
            goto done;
        if (opt->progress) {
            double per = (monotonic_seconds() - t0) / done_here;
            char eta[32];
            format_duration(per * (n - b - 1), eta, sizeof eta);
            fprintf(opt->progress, "%sprune batch %d/%d  %.1f s/batch  ETA %s%s",
                    opt->progress_tty ? "\r\033[K" : "", b + 1, n, per, eta,
                    opt->progress_tty ? "" : "\n");
            fflush(opt->progress);
        }
        if (b + 1 < n && ((opt->stop_after_batches > 0 && done_here >= opt->stop_after_batches) ||
                          (opt->stop_flag && *opt->stop_flag))) {
            stopped = 1;
            break;
        }
    }
    if (opt->progress && opt->progress_tty) fputc('\n', opt->progress);
    if (stopped) {
        snprintf(err, errlen, "%s: pruning stopped after batch %d of %d; rerun to continue",
                 run_path, first + done_here, n);
        rc = PRUNE_STOPPED;
        goto done;
    }

    /* the result: /prune as in-training pruning writes it; variants not computed keep an
     * earlier sweep's values of the same model and batches (same base loss), else NaN */
    metrics_prune_finish(sums, n, &pr);
    const int same_base = old.has_prune && old.prune_base_loss == pr.base_loss;
    const struct { unsigned bit; RunDataset d; double *v; } kinds[3] = {
        {PRUNE_WHAT_BLOCK, RF_PRUNE_BLOCK, pr.block}, {PRUNE_WHAT_ATTN, RF_PRUNE_ATTN, pr.attn},
        {PRUNE_WHAT_MLP, RF_PRUNE_MLP, pr.mlp}};
    for (int k = 0; k < 3; k++) {
        if (what & kinds[k].bit) continue;
        const RunArray *a = &old.data[kinds[k].d];
        int keep = same_base && a->present && a->rank == 1 && a->dims[0] == (size_t)L;
        for (int l = 0; l < L; l++) kinds[k].v[l] = keep ? a->data[l] : NAN;
    }
    if (runfile_write_prune(rf, &pr, info.step, err, errlen) != 0 ||
        runfile_clear_prune_partial(rf, err, errlen) != 0)
        goto done;
    int closed = runfile_close(rf, err, errlen);
    rf = NULL;
    if (closed != 0) goto done;
    if (opt->progress)
        fprintf(opt->progress, "prune %s: base loss %.4f, /prune written\n", run_path,
                pr.base_loss);
    rc = PRUNE_OK;
done:
    if (rf) {
        char ignored[256];
        runfile_close(rf, ignored, sizeof ignored);
    }
    runfile_data_free(&old);
    free(sums);
    prune_result_free(&pr);
    probe_set_free(&ps);
    model_destroy(m);
    if (be) backend_destroy(be);
    dataset_free(&ds);
    if (have_cfg) config_free(&cfg);
    if (have_info) checkpoint_info_free(&info);
    free(run_path);
    free(ckpt_path);
    return rc;
}
