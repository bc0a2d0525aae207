/* export.c — run file tables as TSV (see export.h; layout in docs/run-file.md). */
#include "export.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runfile.h"

const char *export_tables(void) { return "train|eval|variance|angular|grad|prune"; }

/* %.10g, with NaN and infinities spelled as gnuplot reads them */
static void put_num(FILE *out, double v) {
    if (isnan(v)) fputs("nan", out);
    else if (isinf(v)) fputs(v > 0 ? "inf" : "-inf", out);
    else fprintf(out, "%.10g", v);
}

/* The dataset k of d when it has rank `rank`, else NULL with err naming it. */
static const RunArray *dataset(const RunFileData *d, RunDataset k, const char *path, char *err,
                               size_t errlen) {
    const RunArray *a = &d->data[k];
    if (a->present && a->rank == runfile_dataset_rank(k)) return a;
    snprintf(err, errlen, "%s: dataset /%s missing or not of rank %d", path,
             runfile_dataset_name(k), runfile_dataset_rank(k));
    return NULL;
}

/* Prints the series first..last of one group (all rank 1, the same length) as columns; the
 * first is the integer step. */
static int print_series(const RunFileData *d, const char *path, RunDataset first,
                        RunDataset last, FILE *out, char *err, size_t errlen) {
    const RunArray *cols[8] = {NULL};
    const int n = (int)(last - first) + 1;
    for (int c = 0; c < n; c++)
        if (!(cols[c] = dataset(d, first + c, path, err, errlen))) return -1;
    for (int c = 1; c < n; c++)
        if (cols[c]->dims[0] != cols[0]->dims[0]) {
            snprintf(err, errlen, "%s: /%s has %zu rows, /%s %zu", path,
                     runfile_dataset_name(first + c), cols[c]->dims[0],
                     runfile_dataset_name(first), cols[0]->dims[0]);
            return -1;
        }
    for (int c = 0; c < n; c++)
        fprintf(out, "%s%s", c ? "\t" : "", strrchr(runfile_dataset_name(first + c), '/') + 1);
    fputc('\n', out);
    for (size_t i = 0; i < cols[0]->dims[0]; i++) {
        fprintf(out, "%lld", (long long)cols[0]->data[i]);
        for (int c = 1; c < n; c++) {
            fputc('\t', out);
            put_num(out, cols[c]->data[i]);
        }
        fputc('\n', out);
    }
    return 0;
}

/* Which probe rows [*first, *last) to print. */
static int pick_probes(const RunArray *steps, long step, const char *path, size_t *first,
                       size_t *last, char *err, size_t errlen) {
    size_t n = steps->dims[0];
    if (n == 0) {
        snprintf(err, errlen, "%s: no probes recorded (metrics.every is 0, or the run stopped "
                 "before the first probe)", path);
        return -1;
    }
    if (step == EXPORT_ALL_STEPS) {
        *first = 0, *last = n;
        return 0;
    }
    if (step == EXPORT_LAST_STEP) {
        *first = n - 1, *last = n;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if ((long)steps->data[i] == step) {
            *first = i, *last = i + 1;
            return 0;
        }
    snprintf(err, errlen, "%s: no probe at step %ld (probes at steps %lld..%lld, %zu of them)",
             path, step, (long long)steps->data[0], (long long)steps->data[n - 1], n);
    return -1;
}

static int print_probes(const RunFileData *d, const char *path, const char *what, long step,
                        FILE *out, char *err, size_t errlen) {
    const RunArray *steps, *a, *b = NULL;
    size_t first = 0, last = 0;
    int is_angular = !strcmp(what, "angular"), is_grad = !strcmp(what, "grad");
    if (!(steps = dataset(d, RF_LAYERS_STEP, path, err, errlen))) return -1;
    if (is_angular) {
        if (!(a = dataset(d, RF_LAYERS_ANGULAR, path, err, errlen)) ||
            !(b = dataset(d, RF_LAYERS_ANGULAR_LAST, path, err, errlen)))
            return -1;
    } else if (!(a = dataset(d, is_grad ? RF_LAYERS_GRAD_NORM : RF_LAYERS_VARIANCE, path, err,
                             errlen))) {
        return -1;
    }
    if (a->dims[0] != steps->dims[0] || (is_angular && b->dims[0] != steps->dims[0])) {
        snprintf(err, errlen, "%s: /layers series of different lengths", path);
        return -1;
    }
    if (pick_probes(steps, step, path, &first, &last, err, errlen) != 0) return -1;
    if (is_angular) {
        size_t P = a->dims[1];
        fprintf(out, "step\tl\tm\tn\tdistance\tdistance_last\n");
        for (size_t i = first; i < last; i++)
            for (size_t l = 0; l < P; l++)
                for (size_t m = l + 1; m < P; m++) {
                    size_t at = (i * P + l) * P + m;
                    fprintf(out, "%lld\t%zu\t%zu\t%zu\t", (long long)steps->data[i], l, m, m - l);
                    put_num(out, a->data[at]);
                    fputc('\t', out);
                    put_num(out, b->data[at]);
                    fputc('\n', out);
                }
    } else {
        size_t W = a->dims[1];
        /* variance: hidden state h_l, l = 0..L; grad: block l = 1..L */
        fprintf(out, "step\tlayer\t%s\n", is_grad ? "grad_norm" : "variance");
        for (size_t i = first; i < last; i++)
            for (size_t l = 0; l < W; l++) {
                fprintf(out, "%lld\t%zu\t", (long long)steps->data[i], is_grad ? l + 1 : l);
                put_num(out, a->data[i * W + l]);
                fputc('\n', out);
            }
    }
    return 0;
}

static int print_prune(const RunFileData *d, const char *path, FILE *out, char *err,
                       size_t errlen) {
    static const RunDataset parts[3] = {RF_PRUNE_BLOCK, RF_PRUNE_ATTN, RF_PRUNE_MLP};
    const RunArray *a[3];
    if (!d->has_prune) {
        snprintf(err, errlen, "%s: no pruning sweep (metrics.prune was off, or the run has not "
                 "finished)", path);
        return -1;
    }
    for (int p = 0; p < 3; p++)
        if (!(a[p] = dataset(d, parts[p], path, err, errlen))) return -1;
    const double base = d->prune_base_loss;
    fprintf(out, "layer\tblock_loss\tblock_delta\tblock_ppl\tattn_loss\tattn_delta\tattn_ppl\t"
                 "mlp_loss\tmlp_delta\tmlp_ppl\n");
    for (size_t l = 0; l < a[0]->dims[0]; l++) {
        fprintf(out, "%zu", l + 1);
        for (int p = 0; p < 3; p++) {
            double loss = l < a[p]->dims[0] ? a[p]->data[l] : NAN;
            double v[3] = {loss, loss - base, exp(loss)};
            for (int k = 0; k < 3; k++) {
                fputc('\t', out);
                put_num(out, v[k]);
            }
        }
        fputc('\n', out);
    }
    return 0;
}

int export_run(const char *path, const char *what, long step, FILE *out, char *err,
               size_t errlen) {
    int known = !strcmp(what, "train") || !strcmp(what, "eval") || !strcmp(what, "variance") ||
                !strcmp(what, "angular") || !strcmp(what, "grad") || !strcmp(what, "prune");
    if (!known) {
        snprintf(err, errlen, "unknown table '%s' (one of %s)", what, export_tables());
        return -1;
    }
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    RunFileData d;
    char why[256];
    int rc = -1;
    if (runfile_read(path, RF_WANT_ALL, &d, why, sizeof why) != 0)
        snprintf(err, errlen, "%s: %s", path, why);
    else if (!strcmp(what, "train"))
        rc = print_series(&d, path, RF_TRAIN_STEP, RF_TRAIN_TOKENS_PER_S, out, err, errlen);
    else if (!strcmp(what, "eval"))
        rc = print_series(&d, path, RF_EVAL_STEP, RF_EVAL_PPL, out, err, errlen);
    else if (!strcmp(what, "prune")) rc = print_prune(&d, path, out, err, errlen);
    else rc = print_probes(&d, path, what, step, out, err, errlen);
    runfile_data_free(&d);
    return rc;
}
