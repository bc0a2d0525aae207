/* report.h — `normbench report DIR`: the comparison of a sweep's run files (docs/design.md
 * sections 1, 4, 5, 8).
 *
 * Owns: reading every run file DIR/<*>.h5 (not the *.ckpt.h5 checkpoints beside them, not
 * subdirectories), the summary tables, the TSV data behind every plot, and rendering the
 * plots by running the gnuplot scripts in plots/ (one script per figure kind). Everything is
 * written into DIR/report/:
 *
 *   summary.tsv          one row per run (scheme, seed order): scheme, seed, status, steps
 *                        (last /train/step), final_val_loss, final_val_ppl (last /eval
 *                        entries), tokens_per_s (mean of /train/tokens_per_s), file
 *   summary_schemes.tsv  one row per scheme: runs, n (finished runs with a finite final val
 *                        ppl), mean_val_ppl, std_val_ppl (sample std, n-1; empty for n < 2),
 *                        diverged (count; diverged runs never enter the mean)
 *   summary.md           both tables in Markdown, skipped files, the rendered figures
 *   <figure>.tsv         the data of each figure (below); gnuplot "index" blocks, one per
 *                        scheme, separated by two blank lines, each opened by a "# scheme"
 *                        comment line and a "# column names" comment line
 *   <figure>.png/.svg    pngcairo and svg renderings
 *
 * Figures (data file: columns):
 *   val_ppl              validation perplexity vs step, log y (val_ppl.tsv: step, ppl, loss, n)
 *   variance_final       output variance of h_l vs l at the final probe, log y
 *                        (variance_final.tsv: layer, variance, probe_step)
 *   variance_evolution   the same at every probe for pre_ln and lns, colour = step
 *                        (variance_evolution.tsv: step, layer, variance; one blank line
 *                        between probes)
 *   angular_heatmap      angular distance d(h_l, h_{l+n}) over all tokens, x = first layer
 *                        l, y = block size n, one panel per scheme on a grid of up to
 *                        3 columns, one colour scale [0, max d] (Gromov et al. 2024)
 *                        (angular.tsv: l, n, d for l + n <= L)
 *   angular_last_heatmap the same for the last token (angular_last.tsv)
 *   grad_norm            gradient norm of block l vs l at the final probe, log y
 *                        (grad_norm.tsv: layer, grad_norm)
 *   prune_block          delta validation loss with block l removed vs l
 *   prune_sublayer       the same for the attention and the MLP sublayer, two panels
 *                        (prune.tsv: layer, d_block, d_attn, d_mlp, base_loss; d = loss with
 *                        the part removed - base_loss)
 *
 * Which runs a curve averages: per scheme, the runs whose status is finished or running
 * (the mean over their seeds, element by element, of the finite values at each step or
 * layer); a scheme with no such run is drawn from all its runs and titled "(diverged)" or
 * "(failed)". Per-layer figures use each run's last probe; the evolution figure uses the
 * lowest seed. A figure with no data in any run is skipped with a log line.
 *
 * Unreadable files: a *.h5 that HDF5 cannot open, or that lacks the root attribute
 * `scheme`, is reported by name on the log, listed under "Skipped files" in summary.md, and
 * left out; the report goes on with the other files. A run file missing optional groups
 * (/eval, /layers, /prune: a run killed early, probes off) simply contributes no data to
 * the figures that need them.
 *
 * gnuplot is run by fork + exec (no shell) with the working directory DIR/report, on
 * fixed relative file names; values (scheme titles, the plots directory) are passed as
 * gnuplot single-quoted strings via -e with quotes doubled and control characters
 * replaced, so no file or scheme name can inject commands. gnuplot's stderr is appended to
 * DIR/report/gnuplot.log.
 */
#ifndef NORMBENCH_REPORT_H
#define NORMBENCH_REPORT_H

#include <stddef.h>
#include <stdio.h>

/* report_write's results */
#define REPORT_OK 0          /* tables, data files and every plot with data written */
#define REPORT_NO_GNUPLOT 1  /* tables and data files written; gnuplot not found, no plots */
#define REPORT_ERR 2         /* err says why: DIR missing or holding no readable run file,
                                DIR/report not writable, or a gnuplot script failed (tables
                                are still written in that last case) */

typedef struct {
    const char *plots_dir; /* the gnuplot scripts; NULL = "plots" (relative to the current
                              directory: normbench runs from the repository root) */
    const char *gnuplot;   /* the program; NULL = "gnuplot" looked up in PATH. A name with
                              a '/' is used as a path. */
    FILE *log;             /* progress lines and warnings; NULL = silent */
} ReportOptions;

/* Writes DIR/report/ (created if missing; the figure files it owns are replaced). opt may
 * be NULL (all defaults). Returns REPORT_OK, REPORT_NO_GNUPLOT (a message naming the
 * package gnuplot-nox is logged and put in summary.md) or REPORT_ERR with a one-line
 * message in err. */
int report_write(const char *dir, const ReportOptions *opt, char *err, size_t errlen);

#endif
