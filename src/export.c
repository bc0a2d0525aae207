/* export.c — run file tables as TSV (see export.h; layout in docs/run-file.md). */
#include "export.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"

const char *export_tables(void) { return "train|eval|variance|angular|grad|prune"; }

/* %.10g, with NaN and infinities spelled as gnuplot reads them */
static void put_num(FILE *out, double v) {
    if (isnan(v)) fputs("nan", out);
    else if (isinf(v)) fputs(v > 0 ? "inf" : "-inf", out);
    else fprintf(out, "%.10g", v);
}

typedef struct {
    double *data;
    size_t dims[3];
    int rank;
} Array;

static int read_array(hid_t f, const char *path, const char *name, int rank, Array *a,
                      char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    if (h5_read_f64_nd(f, name, rank, &a->data, a->dims, &a->rank) != 0 || a->rank != rank) {
        free(a->data);
        a->data = NULL;
        snprintf(err, errlen, "%s: dataset /%s missing or not of rank %d", path, name, rank);
        return -1;
    }
    return 0;
}

/* Prints series (all rank 1, same length) as columns; the first is an integer step. */
static int print_series(hid_t f, const char *path, const char *const *names, int n, FILE *out,
                        char *err, size_t errlen) {
    Array cols[8];
    int got = 0, rc = -1;
    for (; got < n; got++)
        if (read_array(f, path, names[got], 1, &cols[got], err, errlen) != 0) goto done;
    for (int c = 1; c < n; c++)
        if (cols[c].dims[0] != cols[0].dims[0]) {
            snprintf(err, errlen, "%s: /%s has %zu rows, /%s %zu", path, names[c],
                     cols[c].dims[0], names[0], cols[0].dims[0]);
            goto done;
        }
    for (int c = 0; c < n; c++) fprintf(out, "%s%s", c ? "\t" : "", strrchr(names[c], '/') + 1);
    fputc('\n', out);
    for (size_t i = 0; i < cols[0].dims[0]; i++) {
        fprintf(out, "%lld", (long long)cols[0].data[i]);
        for (int c = 1; c < n; c++) {
            fputc('\t', out);
            put_num(out, cols[c].data[i]);
        }
        fputc('\n', out);
    }
    rc = 0;
done:
    for (int c = 0; c < got; c++) free(cols[c].data);
    return rc;
}

/* Which probe rows [*first, *last) to print. */
static int pick_probes(const Array *steps, long step, const char *path, size_t *first,
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

static int print_probes(hid_t f, const char *path, const char *what, long step, FILE *out,
                        char *err, size_t errlen) {
    Array steps = {0}, a = {0}, b = {0};
    int rc = -1;
    size_t first = 0, last = 0;
    int is_angular = !strcmp(what, "angular"), is_grad = !strcmp(what, "grad");
    if (read_array(f, path, "layers/step", 1, &steps, err, errlen) != 0) goto done;
    if (is_angular) {
        if (read_array(f, path, "layers/angular", 3, &a, err, errlen) != 0 ||
            read_array(f, path, "layers/angular_last", 3, &b, err, errlen) != 0)
            goto done;
    } else if (read_array(f, path, is_grad ? "layers/grad_norm" : "layers/variance", 2, &a, err,
                          errlen) != 0) {
        goto done;
    }
    if (a.dims[0] != steps.dims[0] || (is_angular && b.dims[0] != steps.dims[0])) {
        snprintf(err, errlen, "%s: /layers series of different lengths", path);
        goto done;
    }
    if (pick_probes(&steps, step, path, &first, &last, err, errlen) != 0) goto done;
    if (is_angular) {
        size_t P = a.dims[1];
        fprintf(out, "step\tl\tm\tn\tdistance\tdistance_last\n");
        for (size_t i = first; i < last; i++)
            for (size_t l = 0; l < P; l++)
                for (size_t m = l + 1; m < P; m++) {
                    size_t at = (i * P + l) * P + m;
                    fprintf(out, "%lld\t%zu\t%zu\t%zu\t", (long long)steps.data[i], l, m, m - l);
                    put_num(out, a.data[at]);
                    fputc('\t', out);
                    put_num(out, b.data[at]);
                    fputc('\n', out);
                }
    } else {
        size_t W = a.dims[1];
        /* variance: hidden state h_l, l = 0..L; grad: block l = 1..L */
        fprintf(out, "step\tlayer\t%s\n", is_grad ? "grad_norm" : "variance");
        for (size_t i = first; i < last; i++)
            for (size_t l = 0; l < W; l++) {
                fprintf(out, "%lld\t%zu\t", (long long)steps.data[i], is_grad ? l + 1 : l);
                put_num(out, a.data[i * W + l]);
                fputc('\n', out);
            }
    }
    rc = 0;
done:
    free(steps.data), free(a.data), free(b.data);
    return rc;
}

static int print_prune(hid_t f, const char *path, FILE *out, char *err, size_t errlen) {
    Array parts[3] = {{0}};
    static const char *const names[3] = {"prune/block", "prune/attn", "prune/mlp"};
    double base = NAN;
    int rc = -1, got = 0;
    hid_t g = -1;
    H5E_BEGIN_TRY {
        g = H5Lexists(f, "prune", H5P_DEFAULT) > 0 ? H5Gopen2(f, "prune", H5P_DEFAULT) : -1;
    } H5E_END_TRY;
    if (g < 0 || h5_read_attr_double(g, "base_loss", &base) != 0) {
        snprintf(err, errlen, "%s: no pruning sweep (metrics.prune was off, or the run has not "
                 "finished)", path);
        goto done;
    }
    for (; got < 3; got++)
        if (read_array(f, path, names[got], 1, &parts[got], err, errlen) != 0) goto done;
    fprintf(out, "layer\tblock_loss\tblock_delta\tblock_ppl\tattn_loss\tattn_delta\tattn_ppl\t"
                 "mlp_loss\tmlp_delta\tmlp_ppl\n");
    for (size_t l = 0; l < parts[0].dims[0]; l++) {
        fprintf(out, "%zu", l + 1);
        for (int p = 0; p < 3; p++) {
            double loss = l < parts[p].dims[0] ? parts[p].data[l] : NAN;
            double v[3] = {loss, loss - base, exp(loss)};
            for (int k = 0; k < 3; k++) {
                fputc('\t', out);
                put_num(out, v[k]);
            }
        }
        fputc('\n', out);
    }
    rc = 0;
done:
    for (int p = 0; p < got; p++) free(parts[p].data);
    if (g >= 0) H5Gclose(g);
    return rc;
}

int export_run(const char *path, const char *what, long step, FILE *out, char *err,
               size_t errlen) {
    static const char *const train[] = {"train/step", "train/loss", "train/lr",
                                        "train/grad_norm", "train/tokens_per_s"};
    static const char *const eval[] = {"eval/step", "eval/loss", "eval/ppl"};
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
    hid_t f = h5_open_readonly_nolock(path);
    if (f < 0) {
        snprintf(err, errlen, "%s: not a readable HDF5 file", path);
        return -1;
    }
    int rc;
    if (!strcmp(what, "train")) rc = print_series(f, path, train, 5, out, err, errlen);
    else if (!strcmp(what, "eval")) rc = print_series(f, path, eval, 3, out, err, errlen);
    else if (!strcmp(what, "prune")) rc = print_prune(f, path, out, err, errlen);
    else rc = print_probes(f, path, what, step, out, err, errlen);
    H5Fclose(f);
    return rc;
}
