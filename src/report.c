/* report.c — `normbench report DIR`: reads a directory of run files, writes the summary
 * tables, the TSV data of every figure, and renders the figures with the gnuplot scripts in
 * plots/ (see report.h for the files, their columns and the rules). */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runfile.h"
#include "schemes.h"
#include "stats.h"

/* ---- one run file ------------------------------------------------------------------- */

typedef struct {
    double *v;
    size_t n;
} Vec;

enum { LAYER_VARIANCE = 0, LAYER_ANGULAR, LAYER_ANGULAR_LAST, LAYER_GRAD, LAYER_KINDS };
enum { PRUNE_BLOCK = 0, PRUNE_ATTN, PRUNE_MLP, PRUNE_KINDS };

/* the run-file datasets behind each kind */
static const RunDataset layer_data[LAYER_KINDS] = {RF_LAYERS_VARIANCE, RF_LAYERS_ANGULAR,
                                                   RF_LAYERS_ANGULAR_LAST, RF_LAYERS_GRAD_NORM};
static const RunDataset prune_data[PRUNE_KINDS] = {RF_PRUNE_BLOCK, RF_PRUNE_ATTN, RF_PRUNE_MLP};

typedef struct {
    char *file;   /* base name inside DIR */
    char *scheme; /* root attribute `scheme` */
    char *status; /* root attribute `status` as stored; "unknown" when absent */
    RunStatus status_code;
    long long seed;
    int has_seed;
    int L;        /* /model n_layer (or inferred from the layer data); 0 = unknown */
    long long d_model, n_params; /* -1 = absent */
    Vec train_step, tokens_per_s, eval_step, eval_loss, eval_ppl;
    size_t n_probe;
    double *probe_step;          /* [n_probe] */
    double *layer[LAYER_KINDS];  /* [n_probe][width] or NULL; see layer_width() */
    double *prune[PRUNE_KINDS];  /* [L] or NULL */
    double base_loss;            /* NaN when absent */
} Run;

static size_t layer_width(int kind, int L) {
    size_t w = (size_t)L + 1;
    switch (kind) {
    case LAYER_VARIANCE: return w;
    case LAYER_GRAD: return (size_t)L;
    default: return w * w;
    }
}

static void run_free(Run *r) {
    free(r->file);
    free(r->scheme);
    free(r->status);
    free(r->train_step.v);
    free(r->tokens_per_s.v);
    free(r->eval_step.v);
    free(r->eval_loss.v);
    free(r->eval_ppl.v);
    free(r->probe_step);
    for (int k = 0; k < LAYER_KINDS; k++) free(r->layer[k]);
    for (int k = 0; k < PRUNE_KINDS; k++) free(r->prune[k]);
}

static void logf_(FILE *log, const char *fmt, ...) {
    if (!log) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("report: ", log);
    vfprintf(log, fmt, ap);
    fputc('\n', log);
    va_end(ap);
    fflush(log);
}


/* Takes a rank-1 dataset out of d into a Vec (empty when absent or of another rank). */
static void take_vec(RunFileData *d, RunDataset k, Vec *out) {
    RunArray *a = &d->data[k];
    out->v = NULL;
    out->n = 0;
    if (a->present && a->rank == 1) {
        out->v = a->data;
        out->n = a->dims[0];
        a->data = NULL;
    }
}

static const char *shape_str(char *buf, size_t len, const size_t *dims, int rank) {
    int o = snprintf(buf, len, "[");
    for (int i = 0; i < rank && o > 0 && (size_t)o < len; i++)
        o += snprintf(buf + o, len - (size_t)o, "%s%zu", i ? ", " : "", dims[i]);
    if (o > 0 && (size_t)o < len) snprintf(buf + o, len - (size_t)o, "]");
    return buf;
}

/* Takes /layers and /prune out of d once L is known; a dataset of the wrong shape is
 * ignored with a warning. */
static void take_layers(RunFileData *d, Run *r, FILE *log, const char *path) {
    char shape[96];
    Vec steps;
    take_vec(d, RF_LAYERS_STEP, &steps);
    r->probe_step = steps.v;
    r->n_probe = steps.n;
    for (int k = 0; k < LAYER_KINDS && r->n_probe > 0; k++) {
        RunArray *a = &d->data[layer_data[k]];
        if (!a->present) continue;
        int want_rank = runfile_dataset_rank(layer_data[k]);
        size_t w = (size_t)r->L + (k == LAYER_GRAD ? 0 : 1);
        int ok = r->L > 0 && a->rank == want_rank && a->dims[0] == r->n_probe &&
                 a->dims[1] == w && (want_rank == 2 || a->dims[2] == w);
        if (ok) {
            r->layer[k] = a->data;
            a->data = NULL;
        } else {
            logf_(log, "warning: %s: /%s has shape %s, expected [%zu, %zu%s]; ignored", path,
                  runfile_dataset_name(layer_data[k]),
                  shape_str(shape, sizeof shape, a->dims, a->rank), r->n_probe, w,
                  want_rank == 3 ? (w == (size_t)r->L + 1 ? ", L+1" : "") : "");
        }
    }
    for (int k = 0; k < PRUNE_KINDS; k++) {
        RunArray *a = &d->data[prune_data[k]];
        if (!a->present) continue;
        if (r->L > 0 && a->rank == 1 && a->dims[0] == (size_t)r->L) {
            r->prune[k] = a->data;
            a->data = NULL;
        } else {
            logf_(log, "warning: %s: /%s has %zu entries, expected n_layer = %d; ignored", path,
                  runfile_dataset_name(prune_data[k]), a->dims[0], r->L);
        }
    }
    r->base_loss = d->prune_base_loss;
}

/* Infers L when /model n_layer is missing: from /layers/variance, else /prune/block. */
static int infer_layers(const RunFileData *d) {
    const RunArray *var = &d->data[RF_LAYERS_VARIANCE], *block = &d->data[RF_PRUNE_BLOCK];
    if (var->present && var->rank == 2 && var->dims[1] > 1) return (int)var->dims[1] - 1;
    if (block->present) return (int)block->dims[0];
    return 0;
}

/* Returns 0, or -1 with the reason in why (the file is skipped). */
static int read_run(const char *dir, const char *name, Run *r, FILE *log, char *why,
                    size_t whylen) {
    memset(r, 0, sizeof *r);
    r->base_loss = NAN;
    r->d_model = r->n_params = -1;
    char *path = runfile_path_join(dir, name);
    if (!path) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    RunFileData d;
    if (runfile_read(path, RF_WANT_ALL, &d, why, whylen) != 0) {
        runfile_data_free(&d);
        free(path);
        return -1;
    }
    r->file = strdup(name);
    r->scheme = d.scheme;
    r->status = d.status_text;
    d.scheme = d.status_text = NULL;
    r->status_code = d.status;
    r->has_seed = d.has_seed;
    r->seed = d.seed;
    r->d_model = d.d_model;
    r->n_params = d.n_params;
    r->L = d.n_layer > 0 && d.n_layer < 100000 ? (int)d.n_layer : infer_layers(&d);
    take_vec(&d, RF_TRAIN_STEP, &r->train_step);
    take_vec(&d, RF_TRAIN_TOKENS_PER_S, &r->tokens_per_s);
    take_vec(&d, RF_EVAL_STEP, &r->eval_step);
    take_vec(&d, RF_EVAL_LOSS, &r->eval_loss);
    take_vec(&d, RF_EVAL_PPL, &r->eval_ppl);
    take_layers(&d, r, log, path);
    runfile_data_free(&d);
    free(path);
    if (!r->file) {
        snprintf(why, whylen, "out of memory");
        run_free(r);
        return -1;
    }
    return 0;
}

/* ---- runs grouped by scheme ---------------------------------------------------------- */

typedef struct {
    const char *name;     /* the first run's scheme string */
    size_t first, count;  /* runs[first .. first+count-1], seed order */
    int color;            /* gnuplot linetype: table position for known schemes */
    int L;                /* layer count of the curve runs */
    size_t *curve;        /* indices of the runs the figures average */
    size_t n_curve;
    char title[160];      /* legend title */
    /* summary */
    size_t n_ok, n_diverged;
    double mean_ppl, std_ppl;
} Scheme;

typedef struct {
    Run *runs;
    size_t n_runs;
    Scheme *schemes;
    size_t n_schemes;
    char **skipped;       /* "name: reason" */
    size_t n_skipped;
} Report;

static size_t scheme_rank(const char *name) {
    for (size_t i = 0; i < scheme_count(); i++)
        if (strcmp(scheme_at(i)->name, name) == 0) return i;
    return scheme_count();
}

static int run_cmp(const void *pa, const void *pb) {
    const Run *a = pa, *b = pb;
    size_t ra = scheme_rank(a->scheme), rb = scheme_rank(b->scheme);
    if (ra != rb) return ra < rb ? -1 : 1;
    int c = strcmp(a->scheme, b->scheme);
    if (c) return c;
    if (a->has_seed != b->has_seed) return a->has_seed ? -1 : 1;
    if (a->has_seed && a->seed != b->seed) return a->seed < b->seed ? -1 : 1;
    return strcmp(a->file, b->file);
}

static double last(const Vec *v) { return v->n ? v->v[v->n - 1] : NAN; }

static double vec_mean(const Vec *v) {
    double s = 0;
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        if (isfinite(v->v[i])) s += v->v[i], n++;
    return n ? s / (double)n : NAN;
}

static int is_curve_status(RunStatus status) {
    return status == RUN_FINISHED || status == RUN_RUNNING;
}

static int group_schemes(Report *rep) {
    rep->schemes = calloc(rep->n_runs, sizeof *rep->schemes);
    if (!rep->schemes) return -1;
    int next_color = (int)scheme_count() + 1;
    for (size_t i = 0; i < rep->n_runs; i++) {
        Scheme *s = rep->n_schemes ? &rep->schemes[rep->n_schemes - 1] : NULL;
        if (!s || strcmp(s->name, rep->runs[i].scheme) != 0) {
            s = &rep->schemes[rep->n_schemes++];
            s->name = rep->runs[i].scheme;
            s->first = i;
            size_t rank = scheme_rank(s->name);
            s->color = rank < scheme_count() ? (int)rank + 1 : next_color++;
        }
        s->count++;
    }
    for (size_t k = 0; k < rep->n_schemes; k++) {
        Scheme *s = &rep->schemes[k];
        s->curve = malloc(s->count * sizeof *s->curve);
        if (!s->curve) return -1;
        for (size_t i = s->first; i < s->first + s->count; i++)
            if (is_curve_status(rep->runs[i].status_code)) s->curve[s->n_curve++] = i;
        const char *suffix = "";
        if (s->n_curve == 0) { /* nothing finished: draw what there is, and say so */
            RunStatus common = rep->runs[s->first].status_code; /* RUN_UNKNOWN: mixed */
            for (size_t i = s->first; i < s->first + s->count; i++) {
                s->curve[s->n_curve++] = i;
                if (rep->runs[i].status_code != common) common = RUN_UNKNOWN;
            }
            suffix = common == RUN_DIVERGED ? " (diverged)"
                     : common == RUN_FAILED ? " (failed)"
                                            : " (not finished)";
        }
        for (size_t c = 0; c < s->n_curve && !s->L; c++) s->L = rep->runs[s->curve[c]].L;
        if (s->n_curve > 1)
            snprintf(s->title, sizeof s->title, "%s (%zu seeds)%s", s->name, s->n_curve, suffix);
        else
            snprintf(s->title, sizeof s->title, "%s%s", s->name, suffix);
        /* summary over finished seeds */
        double *ok_ppl = malloc((s->count ? s->count : 1) * sizeof *ok_ppl);
        if (!ok_ppl) return -1;
        for (size_t i = s->first; i < s->first + s->count; i++) {
            const Run *r = &rep->runs[i];
            double ppl = last(&r->eval_ppl);
            if (r->status_code == RUN_DIVERGED) s->n_diverged++;
            if (r->status_code == RUN_FINISHED && isfinite(ppl)) ok_ppl[s->n_ok++] = ppl;
        }
        stats_mean_std(ok_ppl, s->n_ok, &s->mean_ppl, &s->std_ppl);
        free(ok_ppl);
    }
    return 0;
}

static void report_free(Report *rep) {
    for (size_t i = 0; i < rep->n_runs; i++) run_free(&rep->runs[i]);
    free(rep->runs);
    for (size_t k = 0; k < rep->n_schemes; k++) free(rep->schemes[k].curve);
    free(rep->schemes);
    for (size_t i = 0; i < rep->n_skipped; i++) free(rep->skipped[i]);
    free(rep->skipped);
}

/* Reads DIR. Returns 0, or -1 with err. */
static int load_dir(Report *rep, const char *dir, FILE *log, char *err, size_t errlen) {
    char **names = NULL;
    long listed = runfile_list(dir, 0, runfile_is_run_file, &names);
    if (listed < 0) {
        snprintf(err, errlen, "%s: cannot open run directory: %s", dir, strerror(errno));
        return -1;
    }
    size_t n = (size_t)listed;
    int rc = -1;
    if (n == 0) {
        snprintf(err, errlen, "%s: no run files (*.h5) in this directory", dir);
        goto done;
    }
    rep->runs = calloc(n, sizeof *rep->runs);
    rep->skipped = calloc(n, sizeof *rep->skipped);
    if (!rep->runs || !rep->skipped) {
        snprintf(err, errlen, "%s: out of memory", dir);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char why[256];
        if (read_run(dir, names[i], &rep->runs[rep->n_runs], log, why, sizeof why) == 0) {
            rep->n_runs++;
            continue;
        }
        logf_(log, "warning: %s/%s: %s; skipped", dir, names[i], why);
        size_t len = strlen(names[i]) + strlen(why) + 3;
        char *s = malloc(len);
        if (s) snprintf(s, len, "%s: %s", names[i], why);
        if (s) rep->skipped[rep->n_skipped++] = s;
    }
    if (rep->n_runs == 0) {
        snprintf(err, errlen, "%s: none of the %zu *.h5 files is a readable run file", dir, n);
        goto done;
    }
    qsort(rep->runs, rep->n_runs, sizeof *rep->runs, run_cmp);
    if (group_schemes(rep) != 0) {
        snprintf(err, errlen, "%s: out of memory", dir);
        goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* ---- tables --------------------------------------------------------------------------- */

/* empty for "absent"; nan / inf / -inf; else %.6g */
static const char *num(char *buf, size_t len, double x, int absent) {
    if (absent) snprintf(buf, len, "%s", "");
    else if (isnan(x)) snprintf(buf, len, "nan");
    else if (isinf(x)) snprintf(buf, len, "%s", x > 0 ? "inf" : "-inf");
    else snprintf(buf, len, "%.6g", x);
    return buf;
}

/* A string as one TSV / Markdown cell: tabs and control characters become spaces, '|'
 * is escaped in Markdown. */
static void put_cell(FILE *f, const char *s, int markdown) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) fputc(' ', f);
        else if (markdown && c == '|') fputs("\\|", f);
        else fputc(c, f);
    }
}

static int close_checked(FILE *f) {
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

static int write_summary_tsv(const Report *rep, const char *out_dir) {
    char *p = runfile_path_join(out_dir, "summary.tsv");
    FILE *f = p ? fopen(p, "w") : NULL;
    free(p);
    if (!f) return -1;
    char a[64], b[64], c[64], d[64];
    fprintf(f, "scheme\tseed\tstatus\tsteps\tfinal_val_loss\tfinal_val_ppl\ttokens_per_s\tfile\n");
    for (size_t i = 0; i < rep->n_runs; i++) {
        const Run *r = &rep->runs[i];
        put_cell(f, r->scheme, 0);
        if (r->has_seed) fprintf(f, "\t%lld\t", r->seed);
        else fputs("\t\t", f);
        put_cell(f, r->status, 0);
        double tps = vec_mean(&r->tokens_per_s);
        fprintf(f, "\t%s\t%s\t%s\t%s\t", num(a, sizeof a, last(&r->train_step), !r->train_step.n),
                num(b, sizeof b, last(&r->eval_loss), !r->eval_loss.n),
                num(c, sizeof c, last(&r->eval_ppl), !r->eval_ppl.n),
                num(d, sizeof d, tps, !isfinite(tps)));
        put_cell(f, r->file, 0);
        fputc('\n', f);
    }
    if (close_checked(f) != 0) return -1;

    p = runfile_path_join(out_dir, "summary_schemes.tsv");
    f = p ? fopen(p, "w") : NULL;
    free(p);
    if (!f) return -1;
    fprintf(f, "scheme\truns\tn\tmean_val_ppl\tstd_val_ppl\tdiverged\n");
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        put_cell(f, s->name, 0);
        fprintf(f, "\t%zu\t%zu\t%s\t%s\t%zu\n", s->count, s->n_ok,
                num(a, sizeof a, s->mean_ppl, s->n_ok == 0),
                num(b, sizeof b, s->std_ppl, s->n_ok < 2), s->n_diverged);
    }
    return close_checked(f);
}

typedef struct {
    const char *name;     /* output base name: name.png, name.svg */
    const char *script;   /* plots/<script> */
    const char *data;     /* data file in DIR/report */
    const char *what;     /* one line for summary.md */
} FigureDef;

enum {
    FIG_VAL_PPL = 0, FIG_VAR_FINAL, FIG_VAR_EVOLUTION, FIG_ANGULAR, FIG_ANGULAR_LAST,
    FIG_GRAD, FIG_PRUNE_BLOCK, FIG_PRUNE_SUB, FIG_COUNT
};

static const FigureDef figures[FIG_COUNT] = {
    {"val_ppl", "val_ppl.gp", "val_ppl.tsv",
     "validation perplexity vs training step, one line per scheme (mean over seeds, log "
     "scale)"},
    {"variance_final", "variance_final.gp", "variance_final.tsv",
     "output variance of each hidden state h_l at the final probe (l = 0: embeddings; log "
     "scale); growth with depth is the Curse-of-Depth signature"},
    {"variance_evolution", "variance_evolution.gp", "variance_evolution.tsv",
     "the same at every probe during training for the featured schemes of the scheme table, "
     "pre_ln and lns (colour: training step)"},
    {"angular_heatmap", "angular_heatmap.gp", "angular.tsv",
     "angular distance between h_l and h_{l+n}, mean over tokens: x = first layer l, y = "
     "block size n; dark cells = the n blocks after l are close to an identity"},
    {"angular_last_heatmap", "angular_heatmap.gp", "angular_last.tsv",
     "the same for the last token of each sequence, as in Gromov et al. 2024"},
    {"grad_norm", "grad_norm.gp", "grad_norm.tsv",
     "L2 norm of the gradient of each block's parameters at the final probe (log scale)"},
    {"prune_block", "prune_block.gp", "prune.tsv",
     "increase of the validation loss when block l is replaced by the identity"},
    {"prune_sublayer", "prune_sublayer.gp", "prune.tsv",
     "the same for the attention sublayer alone and the MLP sublayer alone"},
};

/* What a figure's script is told besides the file names: the blocks of its data file
 * (one per scheme) and optional ranges. */
typedef struct {
    size_t n;
    const Scheme **scheme; /* [n] */
    char (*title)[160];    /* [n] */
    int *L;                /* [n] */
    double cbmax, ylo, yhi, smin, smax;
    int has_cb, has_y, has_s;
    int rendered;
} Plot;

static void md_num(FILE *f, const char *fmt, double x, int absent) {
    if (absent) fputs("–", f);
    else if (!isfinite(x)) fputs(isnan(x) ? "nan" : x > 0 ? "inf" : "-inf", f);
    else fprintf(f, fmt, x);
}

/* Final validation loss of run r when it finished with one, else NaN. */
static double final_loss(const Run *r) {
    double loss = last(&r->eval_loss);
    return r->status_code == RUN_FINISHED && r->has_seed && isfinite(loss) ? loss : NAN;
}

/* Each scheme against pre_ln seed by seed (the same seed trains on the same batches in the
 * same order): the final validation loss difference over the seeds where both finished,
 * its mean and sample std, and on how many seeds the scheme ended lower. */
static void write_md_paired(FILE *f, const Report *rep) {
    const Scheme *base = NULL;
    for (size_t k = 0; k < rep->n_schemes; k++)
        if (!strcmp(rep->schemes[k].name, "pre_ln")) base = &rep->schemes[k];
    if (!base || rep->n_schemes < 2) return;
    fputs("\n## Against pre_ln, seed by seed\n\nFinal validation loss minus pre_ln's with the "
          "same seed (the same batches in the same order), over the seeds where both finished: "
          "mean, sample std, and on how many of them the scheme ended lower.\n\n"
          "| scheme | pairs | mean Δ loss | std | lower |\n|---|---:|---:|---:|---:|\n", f);
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        if (s == base) continue;
        double d[256], mean, std;
        size_t n = 0, lower = 0;
        for (size_t i = s->first; i < s->first + s->count && n < 256; i++) {
            const Run *r = &rep->runs[i];
            for (size_t j = base->first; j < base->first + base->count; j++) {
                const Run *b = &rep->runs[j];
                if (!b->has_seed || !r->has_seed || b->seed != r->seed) continue;
                double x = final_loss(r), y = final_loss(b);
                if (isfinite(x) && isfinite(y)) {
                    d[n] = x - y, lower += d[n] < 0, n++;
                }
                break;
            }
        }
        stats_mean_std(d, n, &mean, &std);
        fputs("| ", f);
        put_cell(f, s->name, 1);
        fprintf(f, " | %zu | ", n);
        md_num(f, "%+.4f", mean, n == 0);
        fputs(" | ", f);
        md_num(f, "%.4f", std, n < 2);
        if (n) fprintf(f, " | %zu of %zu |\n", lower, n);
        else fputs(" | – |\n", f);
    }
}

static int write_summary_md(const Report *rep, const char *dir, const char *out_dir,
                            const Plot *plots, const char *plot_note) {
    char *p = runfile_path_join(out_dir, "summary.md");
    FILE *f = p ? fopen(p, "w") : NULL;
    free(p);
    if (!f) return -1;
    fputs("# normbench report: ", f);
    put_cell(f, dir, 1);
    fputs("\n\n", f);
    const Run *r0 = &rep->runs[0];
    fprintf(f, "%zu run files, %zu schemes", rep->n_runs, rep->n_schemes);
    if (r0->L > 0) fprintf(f, "; model: %d layers", r0->L);
    if (r0->d_model > 0) fprintf(f, ", d_model %lld", r0->d_model);
    if (r0->n_params > 0) fprintf(f, ", %lld parameters", r0->n_params);
    fputs(".\n\n## Runs\n\n", f);
    fputs("| scheme | seed | status | steps | final val loss | final val ppl | tokens/s |\n"
          "|---|---:|---|---:|---:|---:|---:|\n", f);
    for (size_t i = 0; i < rep->n_runs; i++) {
        const Run *r = &rep->runs[i];
        fputs("| ", f);
        put_cell(f, r->scheme, 1);
        fputs(" | ", f);
        if (r->has_seed) fprintf(f, "%lld", r->seed);
        fputs(" | ", f);
        put_cell(f, r->status, 1);
        fputs(" | ", f);
        md_num(f, "%.0f", last(&r->train_step), !r->train_step.n);
        fputs(" | ", f);
        md_num(f, "%.4f", last(&r->eval_loss), !r->eval_loss.n);
        fputs(" | ", f);
        md_num(f, "%.3f", last(&r->eval_ppl), !r->eval_ppl.n);
        fputs(" | ", f);
        double tps = vec_mean(&r->tokens_per_s);
        md_num(f, "%.0f", tps, !isfinite(tps));
        fputs(" |\n", f);
    }
    fputs("\n## Per scheme\n\nFinal validation perplexity over the finished seeds (mean, "
          "sample std); diverged runs are counted, never averaged.\n\n"
          "| scheme | runs | n | mean val ppl | std | diverged |\n"
          "|---|---:|---:|---:|---:|---:|\n", f);
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        fputs("| ", f);
        put_cell(f, s->name, 1);
        fprintf(f, " | %zu | %zu | ", s->count, s->n_ok);
        md_num(f, "%.3f", s->mean_ppl, s->n_ok == 0);
        fputs(" | ", f);
        md_num(f, "%.3f", s->std_ppl, s->n_ok < 2);
        fprintf(f, " | %zu |\n", s->n_diverged);
    }
    write_md_paired(f, rep);
    if (rep->n_skipped) {
        fputs("\n## Skipped files\n\n", f);
        for (size_t i = 0; i < rep->n_skipped; i++) {
            fputs("- ", f);
            put_cell(f, rep->skipped[i], 1);
            fputc('\n', f);
        }
    }
    fputs("\n## Figures\n\n", f);
    if (plot_note) fprintf(f, "%s\n\n", plot_note);
    for (int k = 0; k < FIG_COUNT; k++) {
        if (!plots[k].rendered) continue;
        fprintf(f, "- `%s.png` (`%s.svg`): %s. Data: `%s`.\n", figures[k].name, figures[k].name,
                figures[k].what, figures[k].data);
    }
    for (int k = 0; k < FIG_COUNT; k++) {
        if (!plots[k].rendered) continue;
        fprintf(f, "\n![%s](%s.png)\n", figures[k].name, figures[k].name);
    }
    return close_checked(f);
}

/* ---- figure data ---------------------------------------------------------------------- */

static FILE *open_data(const char *out_dir, const char *name) {
    char *p = runfile_path_join(out_dir, name);
    FILE *f = p ? fopen(p, "w") : NULL;
    free(p);
    return f;
}

static void block_head(FILE *f, Plot *pl, const Scheme *s, const char *title, int L,
                       const char *columns) {
    if (pl->n) fputs("\n\n", f);
    fputs("# ", f);
    put_cell(f, title, 0);
    fprintf(f, "\n# %s\n", columns);
    pl->scheme[pl->n] = s;
    snprintf(pl->title[pl->n], sizeof pl->title[0], "%s", title);
    pl->L[pl->n] = L;
    pl->n++;
}

static void fmt9(FILE *f, double x) {
    if (isnan(x)) fputs("nan", f);
    else if (isinf(x)) fputs(x > 0 ? "inf" : "-inf", f);
    else fprintf(f, "%.9g", x);
}

typedef struct {
    double step, ppl, loss;
} EvalPoint;

static int eval_cmp(const void *pa, const void *pb) {
    const EvalPoint *a = pa, *b = pb;
    return (a->step > b->step) - (a->step < b->step);
}

static int data_val_ppl(const Report *rep, const char *out_dir, Plot *pl) {
    FILE *f = open_data(out_dir, figures[FIG_VAL_PPL].data);
    if (!f) return -1;
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        size_t total = 0;
        for (size_t c = 0; c < s->n_curve; c++) total += rep->runs[s->curve[c]].eval_step.n;
        EvalPoint *pts = malloc((total ? total : 1) * sizeof *pts);
        if (!pts) {
            fclose(f);
            return -1;
        }
        size_t n = 0;
        for (size_t c = 0; c < s->n_curve; c++) {
            const Run *r = &rep->runs[s->curve[c]];
            for (size_t i = 0; i < r->eval_step.n && i < r->eval_ppl.n; i++)
                if (isfinite(r->eval_ppl.v[i]) && isfinite(r->eval_step.v[i]))
                    pts[n++] = (EvalPoint){r->eval_step.v[i], r->eval_ppl.v[i],
                                           i < r->eval_loss.n ? r->eval_loss.v[i] : NAN};
        }
        qsort(pts, n, sizeof *pts, eval_cmp);
        if (n) block_head(f, pl, s, s->title, s->L, "step\tppl\tloss\tn");
        for (size_t i = 0; i < n;) {
            size_t j = i, nl = 0;
            double sp = 0, sl = 0;
            for (; j < n && pts[j].step == pts[i].step; j++) {
                sp += pts[j].ppl;
                if (isfinite(pts[j].loss)) sl += pts[j].loss, nl++;
            }
            fmt9(f, pts[i].step);
            fputc('\t', f);
            fmt9(f, sp / (double)(j - i));
            fputc('\t', f);
            fmt9(f, nl ? sl / (double)nl : NAN);
            fprintf(f, "\t%zu\n", j - i);
            i = j;
        }
        free(pts);
    }
    return close_checked(f);
}

/* Mean over the scheme's curve runs with layer count s->L of the last probe row of layer
 * array `kind`, element by element over finite values (NaN where none). Returns the number
 * of runs used; *step is the largest final probe step among them. */
static size_t mean_last_row(const Report *rep, const Scheme *s, int kind, double *out,
                            double *step) {
    size_t w = layer_width(kind, s->L), used = 0;
    size_t *cnt = calloc(w ? w : 1, sizeof *cnt);
    if (!cnt) return 0;
    for (size_t i = 0; i < w; i++) out[i] = 0;
    *step = NAN;
    for (size_t c = 0; c < s->n_curve; c++) {
        const Run *r = &rep->runs[s->curve[c]];
        if (r->L != s->L || !r->layer[kind]) continue;
        const double *row = r->layer[kind] + (r->n_probe - 1) * w;
        for (size_t i = 0; i < w; i++)
            if (isfinite(row[i])) out[i] += row[i], cnt[i]++;
        double st = r->probe_step[r->n_probe - 1];
        if (!(st <= *step)) *step = st;
        used++;
    }
    for (size_t i = 0; i < w; i++) out[i] = cnt[i] ? out[i] / (double)cnt[i] : NAN;
    free(cnt);
    return used;
}

static int data_layer_final(const Report *rep, const char *out_dir, int fig, int kind,
                            Plot *pl) {
    FILE *f = open_data(out_dir, figures[fig].data);
    if (!f) return -1;
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        if (s->L <= 0) continue;
        size_t w = layer_width(kind, s->L);
        double *m = malloc(w * sizeof *m), step;
        if (!m) {
            fclose(f);
            return -1;
        }
        if (mean_last_row(rep, s, kind, m, &step)) {
            block_head(f, pl, s, s->title, s->L,
                       kind == LAYER_VARIANCE ? "layer\tvariance\tprobe_step" : "layer\tgrad_norm\tprobe_step");
            for (size_t i = 0; i < w; i++) {
                /* variance: l = 0..L (h_0 = embeddings); grad_norm: block l = 1..L */
                fprintf(f, "%zu\t", kind == LAYER_VARIANCE ? i : i + 1);
                fmt9(f, m[i]);
                fputc('\t', f);
                fmt9(f, step);
                fputc('\n', f);
            }
        }
        free(m);
    }
    return close_checked(f);
}

static int data_angular(const Report *rep, const char *out_dir, int fig, int kind, Plot *pl) {
    FILE *f = open_data(out_dir, figures[fig].data);
    if (!f) return -1;
    pl->cbmax = 0;
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        if (s->L <= 0) continue;
        size_t w1 = (size_t)s->L + 1;
        double *m = malloc(w1 * w1 * sizeof *m), step;
        if (!m) {
            fclose(f);
            return -1;
        }
        if (mean_last_row(rep, s, kind, m, &step)) {
            block_head(f, pl, s, s->title, s->L, "l\tn\td");
            for (size_t n = 1; n <= (size_t)s->L; n++)
                for (size_t l = 0; l + n <= (size_t)s->L; l++) {
                    double d = m[l * w1 + l + n];
                    fprintf(f, "%zu\t%zu\t", l, n);
                    fmt9(f, d);
                    fputc('\n', f);
                    if (isfinite(d) && d > pl->cbmax) pl->cbmax = d;
                }
        }
        free(m);
    }
    if (!(pl->cbmax > 0)) pl->cbmax = 1e-3;
    if (pl->cbmax > 1) pl->cbmax = 1; /* an angular distance is at most 1 */
    pl->has_cb = 1;
    return close_checked(f);
}

static void widen(double *lo, double *hi, double x) {
    if (!isfinite(x)) return;
    if (!(x >= *lo)) *lo = x;
    if (!(x <= *hi)) *hi = x;
}

static int data_variance_evolution(const Report *rep, const char *out_dir, Plot *pl) {
    FILE *f = open_data(out_dir, figures[FIG_VAR_EVOLUTION].data);
    if (!f) return -1;
    pl->ylo = pl->smin = INFINITY;
    pl->yhi = pl->smax = -INFINITY;
    /* the rows the scheme table marks `featured`, in table order */
    for (size_t w = 0; w < scheme_count(); w++) {
        if (!scheme_at(w)->featured) continue;
        for (size_t k = 0; k < rep->n_schemes; k++) {
            const Scheme *s = &rep->schemes[k];
            if (strcmp(s->name, scheme_at(w)->name) != 0 || s->L <= 0) continue;
            const Run *r = NULL;
            for (size_t c = 0; c < s->n_curve && !r; c++) {
                const Run *x = &rep->runs[s->curve[c]];
                if (x->L == s->L && x->layer[LAYER_VARIANCE]) r = x;
            }
            if (!r) continue;
            char title[160];
            if (r->has_seed) snprintf(title, sizeof title, "%s (seed %lld)", s->name, r->seed);
            else snprintf(title, sizeof title, "%s", s->name);
            block_head(f, pl, s, title, s->L, "step\tlayer\tvariance (one blank line between probes)");
            size_t w1 = (size_t)s->L + 1;
            for (size_t p = 0; p < r->n_probe; p++) {
                if (p) fputc('\n', f);
                widen(&pl->smin, &pl->smax, r->probe_step[p]);
                for (size_t l = 0; l < w1; l++) {
                    double v = r->layer[LAYER_VARIANCE][p * w1 + l];
                    fmt9(f, r->probe_step[p]);
                    fprintf(f, "\t%zu\t", l);
                    fmt9(f, v);
                    fputc('\n', f);
                    if (v > 0) widen(&pl->ylo, &pl->yhi, v);
                }
            }
        }
    }
    if (pl->n && isfinite(pl->ylo)) {
        pl->ylo /= 1.5;
        pl->yhi *= 1.5;
        pl->has_y = 1;
    }
    if (pl->n && isfinite(pl->smin)) {
        if (pl->smax <= pl->smin) pl->smax = pl->smin + 1;
        pl->has_s = 1;
    }
    return close_checked(f);
}

static int data_prune(const Report *rep, const char *out_dir, Plot *pl_block, Plot *pl_sub) {
    FILE *f = open_data(out_dir, figures[FIG_PRUNE_BLOCK].data);
    if (!f) return -1;
    pl_sub->ylo = INFINITY;
    pl_sub->yhi = -INFINITY;
    for (size_t k = 0; k < rep->n_schemes; k++) {
        const Scheme *s = &rep->schemes[k];
        if (s->L <= 0) continue;
        size_t L = (size_t)s->L;
        double *sum = calloc(4 * L, sizeof *sum), base = 0;
        size_t *cnt = calloc(4 * L, sizeof *cnt), nb = 0, used = 0;
        if (!sum || !cnt) {
            free(sum);
            free(cnt);
            fclose(f);
            return -1;
        }
        for (size_t c = 0; c < s->n_curve; c++) {
            const Run *r = &rep->runs[s->curve[c]];
            if (r->L != s->L || !isfinite(r->base_loss)) continue;
            int any = 0;
            for (int p = 0; p < PRUNE_KINDS; p++) {
                if (!r->prune[p]) continue;
                any = 1;
                for (size_t l = 0; l < L; l++) {
                    double d = r->prune[p][l] - r->base_loss;
                    if (isfinite(d)) sum[p * L + l] += d, cnt[p * L + l]++;
                }
            }
            if (any) base += r->base_loss, nb++, used++;
        }
        if (used) {
            /* both figures read prune.tsv, so both get the same blocks */
            block_head(f, pl_block, s, s->title, s->L,
                       "layer\td_block\td_attn\td_mlp\tbase_loss (d = loss without the part - base_loss)");
            pl_sub->scheme[pl_sub->n] = s;
            snprintf(pl_sub->title[pl_sub->n], sizeof pl_sub->title[0], "%s", s->title);
            pl_sub->L[pl_sub->n] = s->L;
            pl_sub->n++;
            for (size_t l = 0; l < L; l++) {
                fprintf(f, "%zu", l + 1);
                for (int p = 0; p < PRUNE_KINDS; p++) {
                    double v = cnt[p * L + l] ? sum[p * L + l] / (double)cnt[p * L + l] : NAN;
                    fputc('\t', f);
                    fmt9(f, v);
                    if (p != PRUNE_BLOCK) widen(&pl_sub->ylo, &pl_sub->yhi, v);
                }
                fputc('\t', f);
                fmt9(f, base / (double)nb);
                fputc('\n', f);
            }
        }
        free(sum);
        free(cnt);
    }
    if (pl_sub->n && isfinite(pl_sub->ylo)) {
        double pad = (pl_sub->yhi - pl_sub->ylo) * 0.05;
        if (!(pad > 0)) pad = 0.1;
        pl_sub->ylo -= pad;
        pl_sub->yhi += pad;
        pl_sub->has_y = 1;
    }
    return close_checked(f);
}

/* ---- gnuplot -------------------------------------------------------------------------- */

/* Finds an executable: a name with '/' as a path, else along PATH. */
static int find_program(const char *name, char *out, size_t outlen) {
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) != 0 || !S_ISREG(st.st_mode) || access(name, X_OK) != 0) return -1;
        snprintf(out, outlen, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        int n = snprintf(out, outlen, "%.*s/%s", (int)len, len ? path : ".", name);
        if (len == 0) n = snprintf(out, outlen, "./%s", name);
        if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return 0;
        path += len;
        if (*path == ':') path++;
    }
    return -1;
}

/* name='value' as a gnuplot single-quoted string: quotes doubled, control characters '?' */
static void gp_str(FILE *f, const char *name, const char *value) {
    fprintf(f, "%s='", name);
    for (const char *s = value; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\'') fputs("''", f);
        else if (c < 0x20 || c == 0x7f) fputc('?', f);
        else fputc(c, f);
    }
    fputs("'; ", f);
}

static void gp_num(FILE *f, const char *name, double x) { fprintf(f, "%s=%.9g; ", name, x); }

/* Runs `gnuplot -e CMDS SCRIPT` in out_dir (stdin, stdout /dev/null; stderr appended to
 * gnuplot.log). Returns the exit status, or -1 when it could not be started. */
static int run_gnuplot(const char *gnuplot, const char *cmds, const char *script,
                       const char *out_dir) {
    char *log_path = runfile_path_join(out_dir, "gnuplot.log");
    int logfd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    free(log_path);
    char *argv[] = {(char *)gnuplot, "-e", (char *)cmds, (char *)script, NULL};
    int status = -1;
    pid_t pid = logfd >= 0 && nullfd >= 0 ? fork() : -1;
    if (pid == 0) {
        if (chdir(out_dir) != 0) _exit(126);
        dup2(nullfd, 0);
        dup2(nullfd, 1);
        dup2(logfd, 2);
        execv(gnuplot, argv);
        _exit(127);
    }
    if (pid > 0) {
        int ws;
        pid_t w;
        while ((w = waitpid(pid, &ws, 0)) < 0 && errno == EINTR) {}
        if (w == pid) status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    }
    if (logfd >= 0) close(logfd);
    if (nullfd >= 0) close(nullfd);
    return status;
}

static int nonempty_file(const char *dir, const char *name, const char *ext) {
    size_t n = strlen(name) + strlen(ext) + 1;
    char *base = malloc(n);
    if (!base) return 0;
    snprintf(base, n, "%s%s", name, ext);
    char *p = runfile_path_join(dir, base);
    free(base);
    struct stat st;
    int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    free(p);
    return ok;
}

/* Renders one figure as PNG and SVG. Returns 0, or -1 with err. */
static int render(const char *gnuplot, const char *plots_abs, const char *out_dir, int fig,
                  const Plot *pl, char *err, size_t errlen) {
    const FigureDef *fd = &figures[fig];
    char *script = runfile_path_join(plots_abs, fd->script);
    if (!script || access(script, R_OK) != 0) {
        snprintf(err, errlen, "%s/%s: gnuplot script missing", plots_abs, fd->script);
        free(script);
        return -1;
    }
    static const char *const terms[2][2] = {{"png", ".png"}, {"svg", ".svg"}};
    int rc = 0;
    for (int t = 0; t < 2 && rc == 0; t++) {
        char *cmds = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&cmds, &len);
        if (!f) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        char out[128];
        snprintf(out, sizeof out, "%s%s", fd->name, terms[t][1]);
        gp_str(f, "term", terms[t][0]);
        gp_str(f, "out", out);
        gp_str(f, "data", fd->data);
        gp_str(f, "plotdir", plots_abs);
        gp_str(f, "kind", fd->name);
        gp_num(f, "n", (double)pl->n);
        for (size_t i = 0; i < pl->n; i++) {
            char name[32];
            snprintf(name, sizeof name, "t%zu", i + 1);
            gp_str(f, name, pl->title[i]);
            snprintf(name, sizeof name, "c%zu", i + 1);
            gp_num(f, name, pl->scheme[i]->color);
            snprintf(name, sizeof name, "L%zu", i + 1);
            gp_num(f, name, pl->L[i]);
        }
        if (pl->has_cb) gp_num(f, "cbmax", pl->cbmax);
        if (pl->has_y) gp_num(f, "ylo", pl->ylo), gp_num(f, "yhi", pl->yhi);
        if (pl->has_s) gp_num(f, "smin", pl->smin), gp_num(f, "smax", pl->smax);
        if (fclose(f) != 0 || !cmds) {
            free(cmds);
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        int st = run_gnuplot(gnuplot, cmds, script, out_dir);
        free(cmds);
        if (st != 0) {
            if (st < 0) snprintf(err, errlen, "%s: could not start %.200s", fd->script, gnuplot);
            else snprintf(err, errlen, "%s: gnuplot failed (exit %d) writing %s; see %s/gnuplot.log",
                          fd->script, st, out, out_dir);
            rc = -1;
        } else if (!nonempty_file(out_dir, fd->name, terms[t][1])) {
            snprintf(err, errlen, "%s: gnuplot wrote no %s", fd->script, out);
            rc = -1;
        }
    }
    free(script);
    return rc;
}

/* The directory as an absolute path (malloc'ed), or NULL (errno set) when it is not one. */
static char *absolute_dir(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return NULL;
    }
    if (path[0] == '/') return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    return runfile_path_join(cwd, path);
}

/* ---- entry point ---------------------------------------------------------------------- */

static void remove_outputs(const char *out_dir) {
    for (int k = 0; k < FIG_COUNT; k++) {
        static const char *const ext[] = {".png", ".svg"};
        for (int e = 0; e < 2; e++) {
            char name[128];
            snprintf(name, sizeof name, "%s%s", figures[k].name, ext[e]);
            char *p = runfile_path_join(out_dir, name);
            if (p) unlink(p);
            free(p);
        }
    }
    char *p = runfile_path_join(out_dir, "gnuplot.log");
    if (p) unlink(p);
    free(p);
}

int report_write(const char *dir, const ReportOptions *opt, char *err, size_t errlen) {
    ReportOptions defaults = {0};
    if (!opt) opt = &defaults;
    const char *plots_dir = opt->plots_dir ? opt->plots_dir : "plots";
    const char *gnuplot_name = opt->gnuplot ? opt->gnuplot : "gnuplot";
    FILE *log = opt->log;
    err[0] = '\0';

    Report rep = {0};
    Plot plots[FIG_COUNT];
    memset(plots, 0, sizeof plots);
    char *out_dir = NULL, *plots_abs = NULL;
    int rc = REPORT_ERR;
    if (load_dir(&rep, dir, log, err, errlen) != 0) goto done;
    logf_(log, "%zu run files, %zu schemes in %s%s", rep.n_runs, rep.n_schemes, dir,
          rep.n_skipped ? " (some files skipped, see above)" : "");

    out_dir = runfile_path_join(dir, "report");
    if (!out_dir) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", out_dir, strerror(errno));
        goto done;
    }
    remove_outputs(out_dir);
    for (int k = 0; k < FIG_COUNT; k++) {
        plots[k].scheme = calloc(rep.n_schemes, sizeof *plots[k].scheme);
        plots[k].title = calloc(rep.n_schemes, sizeof *plots[k].title);
        plots[k].L = calloc(rep.n_schemes, sizeof *plots[k].L);
        if (!plots[k].scheme || !plots[k].title || !plots[k].L) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    if (write_summary_tsv(&rep, out_dir) != 0 ||
        data_val_ppl(&rep, out_dir, &plots[FIG_VAL_PPL]) != 0 ||
        data_layer_final(&rep, out_dir, FIG_VAR_FINAL, LAYER_VARIANCE, &plots[FIG_VAR_FINAL]) != 0 ||
        data_variance_evolution(&rep, out_dir, &plots[FIG_VAR_EVOLUTION]) != 0 ||
        data_angular(&rep, out_dir, FIG_ANGULAR, LAYER_ANGULAR, &plots[FIG_ANGULAR]) != 0 ||
        data_angular(&rep, out_dir, FIG_ANGULAR_LAST, LAYER_ANGULAR_LAST, &plots[FIG_ANGULAR_LAST]) != 0 ||
        data_layer_final(&rep, out_dir, FIG_GRAD, LAYER_GRAD, &plots[FIG_GRAD]) != 0 ||
        data_prune(&rep, out_dir, &plots[FIG_PRUNE_BLOCK], &plots[FIG_PRUNE_SUB]) != 0) {
        snprintf(err, errlen, "%s: cannot write the report files: %s", out_dir, strerror(errno));
        goto done;
    }
    logf_(log, "wrote %s/summary.tsv, summary_schemes.tsv and the figure data", out_dir);

    char gnuplot[PATH_MAX];
    const char *note = NULL;
    char note_buf[512];
    if (find_program(gnuplot_name, gnuplot, sizeof gnuplot) != 0) {
        snprintf(note_buf, sizeof note_buf,
                 "Plots not rendered: gnuplot (`%s`) not found; install the Debian package "
                 "gnuplot-nox (scripts/install-deps does) and rerun `normbench report`.",
                 gnuplot_name);
        note = note_buf;
        logf_(log, "gnuplot not found (looked for '%s'): install the Debian package gnuplot-nox "
                   "(scripts/install-deps); tables written, no plots", gnuplot_name);
        rc = REPORT_NO_GNUPLOT;
    } else if (!(plots_abs = absolute_dir(plots_dir))) {
        snprintf(err, errlen, "%s: gnuplot scripts not found (%s); run normbench from the "
                 "repository root", plots_dir, strerror(errno));
        note = "Plots not rendered: the gnuplot scripts (plots/) were not found.";
    } else {
        rc = REPORT_OK;
        for (int k = 0; k < FIG_COUNT; k++) {
            if (plots[k].n == 0) {
                logf_(log, "%s: no data in any run; skipped", figures[k].name);
                continue;
            }
            char e[512];
            if (render(gnuplot, plots_abs, out_dir, k, &plots[k], e, sizeof e) != 0) {
                logf_(log, "error: %s", e);
                if (rc == REPORT_OK) snprintf(err, errlen, "%s", e);
                rc = REPORT_ERR;
                continue;
            }
            plots[k].rendered = 1;
            logf_(log, "plot %s/%s.png (.svg)", out_dir, figures[k].name);
        }
    }
    if (write_summary_md(&rep, dir, out_dir, plots, note) != 0) {
        snprintf(err, errlen, "%s/summary.md: cannot write: %s", out_dir, strerror(errno));
        rc = REPORT_ERR;
        goto done;
    }
    logf_(log, "wrote %s/summary.md", out_dir);

done:
    for (int k = 0; k < FIG_COUNT; k++) {
        free(plots[k].scheme);
        free(plots[k].title);
        free(plots[k].L);
    }
    free(plots_abs);
    free(out_dir);
    report_free(&rep);
    return rc;
}
