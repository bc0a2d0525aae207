/* tables.c — `normbench tables`: the papers' perplexity tables from run files, beside the
 * published values (see tables.h for the columns, rows, cell rules and formats). */
#include "tables.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runfile.h"
#include "schemes.h"
#include "stats.h"

/* ---- small helpers ---------------------------------------------------------------------- */


static void free_names(char **names, long n) {
    for (long i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* ---- the published results ---------------------------------------------------------------- */

static const char *const results_header[] = {"source", "arxiv", "table", "size",
                                             "scheme", "metric", "value", "diverged"};
#define RESULTS_COLS 8

void tables_free_results(PaperResults *r) {
    if (!r) return;
    free(r->rows);
    r->rows = NULL;
    r->count = 0;
}

/* Splits line (modified in place, no trailing newline) at tabs into at most max fields. */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return max + 1;
        fields[n++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

static int copy_field(char *dst, size_t len, const char *src) {
    if (!*src || strlen(src) >= len) return -1;
    for (const char *s = src; *s; s++)
        if ((unsigned char)*s <= ' ') return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int tables_load_results(const char *path, PaperResults *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the published results: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    size_t lineno = 0, cap = 0;
    int header_seen = 0, rc = -1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%zu: line longer than %zu characters", path, lineno,
                     sizeof line - 2);
            goto done;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        char *fields[RESULTS_COLS + 1];
        int nf = split_tabs(line, fields, RESULTS_COLS);
        if (nf != RESULTS_COLS) {
            snprintf(err, errlen, "%s:%zu: expected %d tab-separated fields (%s ... %s), got %d",
                     path, lineno, RESULTS_COLS, results_header[0],
                     results_header[RESULTS_COLS - 1], nf > RESULTS_COLS ? nf : nf);
            goto done;
        }
        if (!header_seen) {
            for (int i = 0; i < RESULTS_COLS; i++)
                if (strcmp(fields[i], results_header[i]) != 0) {
                    snprintf(err, errlen, "%s:%zu: header field %d is '%s', expected '%s'", path,
                             lineno, i + 1, fields[i], results_header[i]);
                    goto done;
                }
            header_seen = 1;
            continue;
        }
        if (out->count == cap) {
            cap = cap ? 2 * cap : 64;
            PaperResult *grown = realloc(out->rows, cap * sizeof *grown);
            if (!grown) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto done;
            }
            out->rows = grown;
        }
        PaperResult *r = &out->rows[out->count];
        memset(r, 0, sizeof *r);
        char *end = NULL;
        errno = 0;
        r->value = strtod(fields[6], &end);
        const char *bad = NULL;
        if (copy_field(r->source, sizeof r->source, fields[0])) bad = "source";
        else if (copy_field(r->arxiv, sizeof r->arxiv, fields[1])) bad = "arxiv";
        else if (copy_field(r->table, sizeof r->table, fields[2])) bad = "table";
        else if (copy_field(r->size, sizeof r->size, fields[3])) bad = "size";
        else if (copy_field(r->scheme, sizeof r->scheme, fields[4])) bad = "scheme";
        else if (copy_field(r->metric, sizeof r->metric, fields[5])) bad = "metric";
        else if (end == fields[6] || *end || errno || !isfinite(r->value) || r->value <= 0)
            bad = "value (a positive number)";
        else if (strcmp(fields[7], "0") && strcmp(fields[7], "1")) bad = "diverged (0 or 1)";
        if (bad) {
            snprintf(err, errlen, "%s:%zu: bad %s", path, lineno, bad);
            goto done;
        }
        r->diverged = fields[7][0] == '1';
        out->count++;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto done;
    }
    if (!header_seen) {
        snprintf(err, errlen, "%s: no header line (%s\t%s\t...)", path, results_header[0],
                 results_header[1]);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    if (rc != 0) tables_free_results(out);
    return rc;
}

const PaperResult *tables_find_result(const PaperResults *r, const char *source,
                                      const char *size, const char *scheme, const char *metric) {
    for (size_t i = 0; i < r->count; i++) {
        const PaperResult *p = &r->rows[i];
        if (!strcmp(p->source, source) && !strcasecmp(p->size, size) &&
            !strcmp(p->scheme, scheme) && !strcmp(p->metric, metric))
            return p;
    }
    return NULL;
}

const char *tables_published_scheme(const char *scheme) {
    return !strcmp(scheme, "deepnorm_release") ? "deepnorm" : scheme;
}

/* data/paper-results.tsv from the current directory, else beside the binary
 * (build/normbench -> ../data/paper-results.tsv). */
static void default_results_path(char *out, size_t len) {
    snprintf(out, len, "%s", TABLES_RESULTS_DEFAULT);
    if (access(out, R_OK) == 0) return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char try_[PATH_MAX + 64];
    snprintf(try_, sizeof try_, "%s/../%s", dirname(exe), TABLES_RESULTS_DEFAULT);
    if (access(try_, R_OK) == 0) snprintf(out, len, "%s", try_);
}

/* ---- run files ------------------------------------------------------------------------------ */

/* What a run counts as in a table cell (tables.h): derived from its status and its final
 * perplexity. */
typedef enum { VERDICT_OK = 0, VERDICT_DIVERGED, VERDICT_RUNNING, VERDICT_FAILED } RunVerdict;

typedef struct {
    char *scheme;
    RunVerdict kind;
    double ppl;     /* final validation perplexity (NaN when none) */
} RunEntry;

typedef struct {
    char label[128];        /* header text: the paper's size, or the directory name */
    char *dir;              /* NULL: a published size without runs */
    const char *paper_size; /* the results file's size of this column, or NULL */
    long long n_params;     /* -1: unknown */
    RunEntry *runs;
    size_t n_runs;
} Column;

typedef struct {
    Column *cols;
    size_t n_cols;
    char **schemes;         /* row order; owned strings */
    size_t n_schemes;
} Table;

static void table_free(Table *t) {
    for (size_t c = 0; c < t->n_cols; c++) {
        Column *col = &t->cols[c];
        free(col->dir);
        for (size_t i = 0; i < col->n_runs; i++) free(col->runs[i].scheme);
        free(col->runs);
    }
    free(t->cols);
    for (size_t i = 0; i < t->n_schemes; i++) free(t->schemes[i]);
    free(t->schemes);
    memset(t, 0, sizeof *t);
}

/* Reads one run file. Returns 0, or -1 with the reason in why (the file is skipped). */
static int read_run(const char *path, RunEntry *r, long long *n_params, char *why, size_t whylen) {
    memset(r, 0, sizeof *r);
    r->ppl = NAN;
    RunFileData d;
    if (runfile_read(path, RF_WANT(RF_EVAL_PPL), &d, why, whylen) != 0) {
        runfile_data_free(&d);
        return -1;
    }
    r->scheme = d.scheme;
    d.scheme = NULL;
    *n_params = d.n_params > 0 ? d.n_params : -1;
    const RunArray *ppl = &d.data[RF_EVAL_PPL];
    size_t n_eval = ppl->present && ppl->rank == 1 ? ppl->dims[0] : 0;
    if (n_eval > 0) r->ppl = ppl->data[n_eval - 1];
    switch (d.status) {
    case RUN_FINISHED:
        if (n_eval == 0) r->kind = VERDICT_FAILED; /* no evaluation at all */
        else if (!isfinite(r->ppl) || r->ppl > TABLES_DIVERGED_PPL) r->kind = VERDICT_DIVERGED;
        else r->kind = VERDICT_OK;
        break;
    case RUN_DIVERGED: r->kind = VERDICT_DIVERGED; break;
    case RUN_RUNNING: r->kind = VERDICT_RUNNING; break;
    default: r->kind = VERDICT_FAILED; break;
    }
    runfile_data_free(&d);
    return 0;
}

/* Reads every run file of dir into col. Returns 0 (col->n_runs may be 0), or -1 when out of
 * memory or the directory cannot be listed (err). */
static int read_column(const char *dir, Column *col, FILE *log, char *err, size_t errlen) {
    char **names;
    long n = runfile_list(dir, 0, runfile_is_run_file, &names);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot list: %s", dir, strerror(errno));
        return -1;
    }
    col->runs = n ? calloc((size_t)n, sizeof *col->runs) : NULL;
    if (n && !col->runs) {
        free_names(names, n);
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        char *path = runfile_path_join(dir, names[i]);
        char why[256];
        long long np;
        if (!path) {
            free_names(names, n);
            snprintf(err, errlen, "%s: out of memory", dir);
            return -1;
        }
        if (read_run(path, &col->runs[col->n_runs], &np, why, sizeof why) == 0) {
            col->n_runs++;
            if (np > 0 && np > col->n_params) col->n_params = np;
        } else if (log) {
            fprintf(log, "tables: warning: %s: %s; skipped\n", path, why);
        }
        free(path);
    }
    free_names(names, n);
    return 0;
}

static int has_run_files(const char *dir) {
    char **names;
    long n = runfile_list(dir, 0, runfile_is_run_file, &names);
    free_names(names, n > 0 ? n : 0);
    return n > 0;
}

/* ---- cells ------------------------------------------------------------------------------------ */

typedef struct {
    size_t n_runs, n_ok, n_div, n_running, n_failed;
    double mean, std;           /* over ok runs; NaN when n_ok == 0 (std: n_ok < 2) */
    const PaperResult *pub;     /* NULL: no published value */
    double rel_diff;            /* percent; NaN when not comparable */
} Cell;

static void make_cell(const Column *col, const char *scheme, const PaperResults *res,
                      const char *paper, Cell *c) {
    memset(c, 0, sizeof *c);
    double *ok_ppl = malloc((col->n_runs ? col->n_runs : 1) * sizeof *ok_ppl);
    for (size_t i = 0; i < col->n_runs; i++) {
        const RunEntry *r = &col->runs[i];
        if (strcmp(r->scheme, scheme) != 0) continue;
        c->n_runs++;
        switch (r->kind) {
        case VERDICT_OK:
            if (ok_ppl) ok_ppl[c->n_ok] = r->ppl;
            c->n_ok++;
            break;
        case VERDICT_DIVERGED: c->n_div++; break;
        case VERDICT_RUNNING: c->n_running++; break;
        default: c->n_failed++; break;
        }
    }
    if (ok_ppl) stats_mean_std(ok_ppl, c->n_ok, &c->mean, &c->std);
    else c->mean = c->std = NAN; /* out of memory: the counts stand, the numbers do not */
    free(ok_ppl);
    c->pub = paper && col->paper_size
                 ? tables_find_result(res, paper, col->paper_size, scheme, "val_ppl")
                 : NULL;
    if (!c->pub && paper && col->paper_size && strcmp(tables_published_scheme(scheme), scheme))
        c->pub = tables_find_result(res, paper, col->paper_size, tables_published_scheme(scheme),
                                    "val_ppl");
    c->rel_diff = c->pub && !c->pub->diverged && c->n_ok
                      ? 100.0 * (c->mean - c->pub->value) / c->pub->value
                      : NAN;
}

typedef enum { FMT_MD, FMT_TSV, FMT_TEX } Format;

/* Our part of a cell as text (md or tex). */
static void ours_text(const Cell *c, Format fmt, char *buf, size_t len) {
    if (c->n_ok) {
        int o;
        if (c->n_ok > 1)
            o = snprintf(buf, len, fmt == FMT_TEX ? "$%.2f \\pm %.2f$ (%zu" : "%.2f ± %.2f (%zu",
                         c->mean, c->std, c->n_ok);
        else
            o = snprintf(buf, len, fmt == FMT_TEX ? "$%.2f$ (%zu" : "%.2f (%zu", c->mean, c->n_ok);
        if (o > 0 && (size_t)o < len)
            snprintf(buf + o, len - (size_t)o, c->n_div ? "; %zu diverged)" : ")", c->n_div);
    } else if (c->n_div) {
        snprintf(buf, len, "diverged");
    } else if (c->n_running) {
        snprintf(buf, len, "running");
    } else if (c->n_failed) {
        snprintf(buf, len, "failed");
    } else {
        snprintf(buf, len, "%s", fmt == FMT_TEX ? "---" : "—");
    }
}

static void pub_text(const Cell *c, Format fmt, char *buf, size_t len) {
    if (!c->pub) snprintf(buf, len, "%s", fmt == FMT_TEX ? "---" : "—");
    else if (!c->pub->diverged) snprintf(buf, len, "%.2f", c->pub->value);
    else snprintf(buf, len, fmt == FMT_TEX ? "%.2f$^\\dagger$" : "%.2f (diverged)", c->pub->value);
}

static void diff_text(const Cell *c, Format fmt, char *buf, size_t len) {
    if (isnan(c->rel_diff)) snprintf(buf, len, "%s", fmt == FMT_TEX ? "---" : "—");
    else snprintf(buf, len, fmt == FMT_TEX ? "$%+.1f\\%%$" : "%+.1f%%", c->rel_diff);
}

/* ---- writers ---------------------------------------------------------------------------------- */

static void put_md(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f) fputc(' ', f);
        else if (ch == '|') fputs("\\|", f);
        else fputc(ch, f);
    }
}

static void put_tsv(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        fputc(ch < 0x20 || ch == 0x7f ? ' ' : ch, f);
    }
}

static void put_tex(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '\\': fputs("\\textbackslash{}", f); break;
        case '~': fputs("\\textasciitilde{}", f); break;
        case '^': fputs("\\textasciicircum{}", f); break;
        case '#': case '$': case '%': case '&': case '_': case '{': case '}':
            fputc('\\', f), fputc(ch, f); break;
        default: fputc(ch < 0x20 || ch == 0x7f ? ' ' : ch, f);
        }
    }
}

static void count_text(long long n, char *buf, size_t len) {
    if (n >= 1000000000LL) snprintf(buf, len, "%.2fB", (double)n / 1e9);
    else if (n >= 1000000LL) snprintf(buf, len, "%.1fM", (double)n / 1e6);
    else if (n >= 1000LL) snprintf(buf, len, "%.0fK", (double)n / 1e3);
    else snprintf(buf, len, "%lld", n);
}

/* The caption lines (without comment or paragraph markup). */
static void caption(const Table *t, const PaperResults *res, const char *paper,
                    char *buf, size_t len) {
    int o = snprintf(buf, len, "Validation perplexity at the end of training: mean ± std over "
                               "seeds (n finished runs).");
    const PaperResult *first = NULL;
    for (size_t i = 0; paper && i < res->count && !first; i++)
        if (!strcmp(res->rows[i].source, paper)) first = &res->rows[i];
    if (first && o > 0 && (size_t)o < len)
        o += snprintf(buf + o, len - (size_t)o,
                      " Published: arXiv:%s, Table %s; Δ = (ours - published) / published; "
                      "published values above %.0f are runs that diverged.",
                      first->arxiv, first->table, TABLES_DIVERGED_PPL);
    int any = 0;
    for (size_t c = 0; c < t->n_cols && o > 0 && (size_t)o < len; c++) {
        if (t->cols[c].n_params <= 0) continue;
        char n[32];
        count_text(t->cols[c].n_params, n, sizeof n);
        o += snprintf(buf + o, len - (size_t)o, "%s%s %s", any ? ", " : " Parameters: ",
                      t->cols[c].label, n);
        any = 1;
    }
    if (any && o > 0 && (size_t)o < len) snprintf(buf + o, len - (size_t)o, ".");
}

static void write_md(const Table *t, const PaperResults *res, const char *paper, FILE *f) {
    char cap[2048], a[96], b[96], d[96];
    caption(t, res, paper, cap, sizeof cap);
    fprintf(f, "%s\n\n| scheme |", cap);
    for (size_t c = 0; c < t->n_cols; c++) {
        fputc(' ', f);
        put_md(f, t->cols[c].label);
        if (paper) {
            fputs(" ours | ", f);
            put_md(f, t->cols[c].label);
            fputs(" paper | ", f);
            put_md(f, t->cols[c].label);
            fputs(" Δ", f);
        }
        fputs(" |", f);
    }
    fputs("\n|---|", f);
    for (size_t c = 0; c < t->n_cols; c++) fputs(paper ? "---:|---:|---:|" : "---:|", f);
    fputc('\n', f);
    for (size_t s = 0; s < t->n_schemes; s++) {
        fputs("| ", f);
        put_md(f, scheme_label(t->schemes[s]));
        fputs(" |", f);
        for (size_t c = 0; c < t->n_cols; c++) {
            Cell cell;
            make_cell(&t->cols[c], t->schemes[s], res, paper, &cell);
            ours_text(&cell, FMT_MD, a, sizeof a);
            if (paper) {
                pub_text(&cell, FMT_MD, b, sizeof b);
                diff_text(&cell, FMT_MD, d, sizeof d);
                fprintf(f, " %s | %s | %s |", a, b, d);
            } else {
                fprintf(f, " %s |", a);
            }
        }
        fputc('\n', f);
    }
}

static void tsv_num(FILE *f, double x, const char *fmt) {
    fputc('\t', f);
    if (!isnan(x)) fprintf(f, fmt, x);
}

static void write_tsv(const Table *t, const PaperResults *res, const char *paper, FILE *f) {
    static const char *const ours_cols[] = {"mean", "std", "n", "diverged", "runs"};
    static const char *const pub_cols[] = {"paper", "paper_diverged", "rel_diff_pct"};
    fputs("scheme", f);
    for (size_t c = 0; c < t->n_cols; c++) {
        for (size_t k = 0; k < 5; k++) {
            fputc('\t', f);
            put_tsv(f, t->cols[c].label);
            fprintf(f, "_%s", ours_cols[k]);
        }
        for (size_t k = 0; paper && k < 3; k++) {
            fputc('\t', f);
            put_tsv(f, t->cols[c].label);
            fprintf(f, "_%s", pub_cols[k]);
        }
    }
    fputc('\n', f);
    for (size_t s = 0; s < t->n_schemes; s++) {
        put_tsv(f, t->schemes[s]);
        for (size_t c = 0; c < t->n_cols; c++) {
            Cell cell;
            make_cell(&t->cols[c], t->schemes[s], res, paper, &cell);
            tsv_num(f, cell.mean, "%.4f");
            tsv_num(f, cell.std, "%.4f");
            fprintf(f, "\t%zu\t%zu\t%zu", cell.n_ok, cell.n_div, cell.n_runs);
            if (paper) {
                if (cell.pub) fprintf(f, "\t%.2f\t%d", cell.pub->value, cell.pub->diverged);
                else fputs("\t\t", f);
                tsv_num(f, cell.rel_diff, "%.4f");
            }
        }
        fputc('\n', f);
    }
}

static void write_tex(const Table *t, const PaperResults *res, const char *paper, FILE *f) {
    char cap[2048], a[96], b[96], d[96];
    caption(t, res, paper, cap, sizeof cap);
    /* the caption as a comment; "±" and "Δ" spelled out for 8-bit TeX engines */
    fputs("% normbench tables: ", f);
    for (const char *p = cap; *p; p++) {
        if (!strncmp(p, "±", strlen("±"))) fputs("+-", f), p += strlen("±") - 1;
        else if (!strncmp(p, "Δ", strlen("Δ"))) fputs("Delta", f), p += strlen("Δ") - 1;
        else fputc(*p, f);
    }
    fputs("\n% needs \\usepackage{booktabs}\n\\begin{tabular}{l", f);
    for (size_t c = 0; c < t->n_cols; c++) fputs(paper ? "rrr" : "r", f);
    fputs("}\n\\toprule\n", f);
    int any_dagger = 0;
    if (paper) {
        for (size_t c = 0; c < t->n_cols; c++) {
            fputs(" & \\multicolumn{3}{c}{", f);
            put_tex(f, t->cols[c].label);
            fputc('}', f);
        }
        fputs(" \\\\\n", f);
        for (size_t c = 0; c < t->n_cols; c++)
            fprintf(f, "%s\\cmidrule(lr){%zu-%zu}", c ? " " : "", 2 + 3 * c, 4 + 3 * c);
        fputs("\nScheme", f);
        for (size_t c = 0; c < t->n_cols; c++) fputs(" & Ours & Paper & $\\Delta$", f);
    } else {
        fputs("Scheme", f);
        for (size_t c = 0; c < t->n_cols; c++) {
            fputs(" & ", f);
            put_tex(f, t->cols[c].label);
        }
    }
    fputs(" \\\\\n\\midrule\n", f);
    for (size_t s = 0; s < t->n_schemes; s++) {
        put_tex(f, scheme_label(t->schemes[s]));
        for (size_t c = 0; c < t->n_cols; c++) {
            Cell cell;
            make_cell(&t->cols[c], t->schemes[s], res, paper, &cell);
            ours_text(&cell, FMT_TEX, a, sizeof a);
            if (paper) {
                pub_text(&cell, FMT_TEX, b, sizeof b);
                diff_text(&cell, FMT_TEX, d, sizeof d);
                if (cell.pub && cell.pub->diverged) any_dagger = 1;
                fprintf(f, " & %s & %s & %s", a, b, d);
            } else {
                fprintf(f, " & %s", a);
            }
        }
        fputs(" \\\\\n", f);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", f);
    if (any_dagger)
        fprintf(f, "\\par\\smallskip{\\footnotesize $^\\dagger$ diverged as published "
                   "(perplexity above %.0f).}\n", TABLES_DIVERGED_PPL);
}

/* ---- assembling the table --------------------------------------------------------------------- */

static size_t scheme_rank(const char *name) {
    for (size_t i = 0; i < scheme_count(); i++)
        if (!strcmp(scheme_at(i)->name, name)) return i;
    return scheme_count();
}

static int scheme_cmp(const void *pa, const void *pb) {
    const char *a = *(char *const *)pa, *b = *(char *const *)pb;
    size_t ra = scheme_rank(a), rb = scheme_rank(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    return strcmp(a, b);
}

static int col_cmp(const void *pa, const void *pb) {
    const Column *a = pa, *b = pb;
    if ((a->n_params > 0) != (b->n_params > 0)) return a->n_params > 0 ? -1 : 1;
    if (a->n_params != b->n_params) return a->n_params < b->n_params ? -1 : 1;
    return strcmp(a->label, b->label);
}

static int add_scheme(Table *t, const char *name, size_t *cap) {
    for (size_t i = 0; i < t->n_schemes; i++)
        if (!strcmp(t->schemes[i], name)) return 0;
    if (t->n_schemes == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        char **grown = realloc(t->schemes, *cap * sizeof *grown);
        if (!grown) return -1;
        t->schemes = grown;
    }
    if (!(t->schemes[t->n_schemes] = strdup(name))) return -1;
    t->n_schemes++;
    return 0;
}

/* Reads the run directories of runs_dir into t->cols (unordered, labels = directory names;
 * runs_dir itself is labelled with its base name). */
static int read_columns(const char *runs_dir, Table *t, FILE *log, char *err, size_t errlen) {
    char **subs;
    long n_sub = runfile_list(runs_dir, 1, NULL, &subs);
    if (n_sub < 0) {
        snprintf(err, errlen, "%s: cannot open run directory: %s", runs_dir, strerror(errno));
        return -1;
    }
    t->cols = calloc((size_t)n_sub + 1, sizeof *t->cols);
    if (!t->cols) {
        free_names(subs, n_sub);
        snprintf(err, errlen, "%s: out of memory", runs_dir);
        return -1;
    }
    int rc = 0;
    for (long i = -1; i < n_sub && rc == 0; i++) {
        char *dir = i < 0 ? strdup(runs_dir) : runfile_path_join(runs_dir, subs[i]);
        if (!dir) {
            snprintf(err, errlen, "%s: out of memory", runs_dir);
            rc = -1;
            break;
        }
        if (!has_run_files(dir)) {
            free(dir);
            continue;
        }
        Column *col = &t->cols[t->n_cols++];
        memset(col, 0, sizeof *col);
        col->n_params = -1;
        col->dir = dir;
        if (i >= 0) {
            snprintf(col->label, sizeof col->label, "%s", subs[i]);
        } else { /* runs_dir itself: its base name, trailing slashes ignored */
            size_t len = strlen(runs_dir);
            while (len > 1 && runs_dir[len - 1] == '/') len--;
            size_t b = len;
            while (b > 0 && runs_dir[b - 1] != '/') b--;
            snprintf(col->label, sizeof col->label, "%.*s", (int)(len - b), runs_dir + b);
        }
        rc = read_column(dir, col, log, err, errlen);
        if (rc == 0 && col->n_runs == 0) { /* only unreadable files: not a column */
            free(col->dir);
            free(col->runs);
            t->n_cols--;
        }
    }
    free_names(subs, n_sub);
    return rc;
}

/* Puts the paper's sizes first (matching directories by name, case-insensitively; adding
 * empty columns for sizes without runs), then the other directories by parameter count. */
static int order_columns(Table *t, const PaperResults *res, const char *paper, char *err,
                         size_t errlen) {
    size_t n_dirs = t->n_cols, n_sizes = 0;
    for (size_t i = 0; paper && i < res->count; i++) n_sizes++;
    Column *cols = calloc(n_dirs + n_sizes + 1, sizeof *cols);
    char *used = calloc(n_dirs + 1, 1);
    if (!cols || !used) {
        free(cols);
        free(used);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; paper && i < res->count; i++) {
        const PaperResult *r = &res->rows[i];
        if (strcmp(r->source, paper) || strcmp(r->metric, "val_ppl")) continue;
        int seen = 0;
        for (size_t k = 0; k < n && !seen; k++) seen = !strcasecmp(cols[k].paper_size, r->size);
        if (seen) continue;
        size_t match = n_dirs;
        for (size_t d = 0; d < n_dirs && match == n_dirs; d++)
            if (!used[d] && !strcasecmp(t->cols[d].label, r->size)) match = d;
        if (match < n_dirs) {
            cols[n] = t->cols[match];
            used[match] = 1;
        } else {
            cols[n].n_params = -1;
        }
        cols[n].paper_size = r->size;
        snprintf(cols[n].label, sizeof cols[n].label, "%s", r->size);
        n++;
    }
    size_t first_extra = n;
    for (size_t d = 0; d < n_dirs; d++)
        if (!used[d]) cols[n++] = t->cols[d];
    qsort(cols + first_extra, n - first_extra, sizeof *cols, col_cmp);
    free(t->cols);
    free(used);
    t->cols = cols;
    t->n_cols = n;
    return 0;
}

int tables_print(const char *runs_dir, const TablesOptions *opt, FILE *out, char *err,
                 size_t errlen) {
    TablesOptions defaults = {0};
    if (!opt) opt = &defaults;
    const char *fmt_name = opt->format ? opt->format : "md";
    Format fmt;
    if (!strcmp(fmt_name, "md")) fmt = FMT_MD;
    else if (!strcmp(fmt_name, "tsv")) fmt = FMT_TSV;
    else if (!strcmp(fmt_name, "tex")) fmt = FMT_TEX;
    else {
        snprintf(err, errlen, "--format: unknown format '%s' (md, tsv or tex)", fmt_name);
        return TABLES_ERR;
    }
    const char *paper = opt->paper && *opt->paper ? opt->paper : NULL;
    PaperResults res = {0};
    Table t = {0};
    int rc = TABLES_ERR;
    if (paper) {
        char path[PATH_MAX + 64];
        if (opt->results_path) snprintf(path, sizeof path, "%s", opt->results_path);
        else default_results_path(path, sizeof path);
        if (tables_load_results(path, &res, err, errlen) != 0) return TABLES_ERR;
        int known = 0;
        for (size_t i = 0; i < res.count && !known; i++)
            known = !strcmp(res.rows[i].source, paper) && !strcmp(res.rows[i].metric, "val_ppl");
        if (!known) {
            char list[256] = "";
            size_t o = 0;
            for (size_t i = 0; i < res.count; i++) {
                int dup = 0;
                for (size_t k = 0; k < i && !dup; k++)
                    dup = !strcmp(res.rows[k].source, res.rows[i].source);
                if (!dup && o < sizeof list)
                    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "",
                                          res.rows[i].source);
            }
            snprintf(err, errlen, "--paper: no published perplexities for '%s' in %s (it has: %s)",
                     paper, path, list);
            goto done;
        }
    }
    struct stat st;
    if (stat(runs_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a run directory (%s)", runs_dir,
                 stat(runs_dir, &st) != 0 ? strerror(errno) : "not a directory");
        goto done;
    }
    if (read_columns(runs_dir, &t, opt->log, err, errlen) != 0) goto done;
    if (t.n_cols == 0 && !paper) {
        snprintf(err, errlen, "%s: no run files (*.h5) in it or in its subdirectories", runs_dir);
        goto done;
    }
    if (order_columns(&t, &res, paper, err, errlen) != 0) goto done;
    size_t cap = 0;
    for (size_t i = 0; paper && i < res.count; i++)
        if (!strcmp(res.rows[i].source, paper) && !strcmp(res.rows[i].metric, "val_ppl") &&
            add_scheme(&t, res.rows[i].scheme, &cap) != 0)
            goto oom;
    size_t n_paper_schemes = t.n_schemes;
    for (size_t c = 0; c < t.n_cols; c++)
        for (size_t i = 0; i < t.cols[c].n_runs; i++)
            if (add_scheme(&t, t.cols[c].runs[i].scheme, &cap) != 0) goto oom;
    if (t.n_schemes > n_paper_schemes)
        qsort(t.schemes + n_paper_schemes, t.n_schemes - n_paper_schemes, sizeof *t.schemes,
              scheme_cmp);
    switch (fmt) {
    case FMT_MD: write_md(&t, &res, paper, out); break;
    case FMT_TSV: write_tsv(&t, &res, paper, out); break;
    case FMT_TEX: write_tex(&t, &res, paper, out); break;
    }
    if (fflush(out) != 0 || ferror(out)) {
        snprintf(err, errlen, "writing the table failed: %s", strerror(errno));
        goto done;
    }
    rc = TABLES_OK;
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    table_free(&t);
    tables_free_results(&res);
    return rc;
}
