/* tables.h — `normbench tables RUNS_DIR [--paper cod|mixln] [--format md|tsv|tex]`: the
 * papers' perplexity tables rebuilt from run files, beside the published values.
 *
 * Owns: reading the published results (data/paper-results.tsv, documented in data/README.md),
 * finding the runs of each table column under RUNS_DIR, reducing each (column, scheme) cell
 * to mean ± std over seeds, and printing the table as Markdown, TSV or a LaTeX booktabs
 * tabular. docs/tables.md describes the whole workflow (configs, data, make targets).
 *
 * Columns. A column is one directory of run files (*.h5, not *.ckpt.h5): every immediate
 * subdirectory of RUNS_DIR that holds run files (a sweep's output directory, named after the
 * config: runs/paper/cod/130m/, runs/tables-small/l12d64/), and RUNS_DIR itself when it holds
 * run files. With --paper, the paper's sizes come first in the paper's order, matched to
 * directory names case-insensitively ("130m" is the paper's "130M"), sizes without runs
 * included; other directories follow. Without --paper, columns are ordered by the models'
 * parameter count (/model n_params), then by name.
 *
 * Rows are schemes: the paper's, in the order of its table, then any other scheme found, in
 * the order of schemes.c (unknown names last, alphabetically).
 *
 * A cell over the runs of one scheme in one column (all seeds found):
 *   ok        status "finished" with a final validation perplexity (last /eval/ppl) that is
 *             finite and <= TABLES_DIVERGED_PPL: enters the mean and the sample std (n-1)
 *   diverged  status "diverged", or finished with a final perplexity that is not finite or
 *             above TABLES_DIVERGED_PPL (the papers' tables mark such values as diverged)
 *   running   status "running" (training, or cut off to be resumed): not counted
 *   failed    anything else, or a finished run without an evaluation: not counted
 * Text: "26.12 ± 0.15 (3)" (n ok runs; one run: "26.12 (1)"; "(2; 1 diverged)" when some
 * diverged), "diverged" when no run is ok and one diverged, else "running", "failed", and
 * "—" (TeX "---") when there is no run at all. The published value follows with
 * Δ = (ours - published) / published in percent, printed only when both are not diverged;
 * a published value above 1000 is a published divergence and is printed with that mark.
 *
 * Errors (TABLES_ERR, one line in err): bad format, unknown paper, unreadable or malformed
 * results file (FILE:LINE), RUNS_DIR missing, or holding no run file while no --paper is
 * given. Unreadable *.h5 files are skipped with one line each on opt->log.
 * No global mutable state.
 */
#ifndef NORMBENCH_TABLES_H
#define NORMBENCH_TABLES_H

#include <stddef.h>
#include <stdio.h>

#define TABLES_OK 0
#define TABLES_ERR 2                 /* the CLI's exit code for every error here */
#define TABLES_DIVERGED_PPL 1000.0   /* final perplexity above this = diverged */
#define TABLES_RESULTS_DEFAULT "data/paper-results.tsv"

typedef struct {
    const char *paper;        /* NULL or "": our runs only; else a `source` of the results
                                 file ("cod", "mixln") */
    const char *format;       /* NULL = "md"; "md", "tsv" or "tex" */
    const char *results_path; /* NULL: TABLES_RESULTS_DEFAULT relative to the current
                                 directory, else ../data/paper-results.tsv beside the binary */
    FILE *log;                /* one line per skipped run file; NULL = silent */
} TablesOptions;

/* Prints the table of RUNS_DIR to out. Returns TABLES_OK, or TABLES_ERR with err. */
int tables_print(const char *runs_dir, const TablesOptions *opt, FILE *out, char *err,
                 size_t errlen);

/* ---- the published results ------------------------------------------------------------ */

/* One row of data/paper-results.tsv (a TSV with a header line, '#' comment lines):
 *   source arxiv table size scheme metric value diverged
 * e.g. "cod 2502.05795 1 130M post_ln val_ppl 26.95 0". */
typedef struct {
    char source[32], arxiv[32], table[16], size[16], scheme[32], metric[32];
    double value;
    int diverged;             /* 1: the published run diverged (value > 1000 as published) */
} PaperResult;

typedef struct {
    PaperResult *rows;
    size_t count;
} PaperResults;

/* Loads a results file. Returns 0, or -1 with "FILE:LINE: what is wrong" in err. */
int tables_load_results(const char *path, PaperResults *out, char *err, size_t errlen);
void tables_free_results(PaperResults *r);
/* The row of (source, size, scheme, metric) (size compared case-insensitively), or NULL. */
const PaperResult *tables_find_result(const PaperResults *r, const char *source,
                                      const char *size, const char *scheme, const char *metric);

/* The results file's scheme whose published values a scheme's cells stand beside: the
 * papers' DeepNorm rows were trained with the releases' DeepNorm, so deepnorm_release ->
 * deepnorm (its own rows, if the file has any, win); any other scheme -> itself. */
const char *tables_published_scheme(const char *scheme);

#endif
