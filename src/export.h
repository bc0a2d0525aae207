/* export.h — `normbench export RUN.h5`: a run file's series and probes as TSV (a header row,
 * then tab-separated rows), for gnuplot and for people.
 *
 * Owns: the TSV views of a run file. Tables (columns):
 *   train     step, loss, lr, grad_norm, tokens_per_s          every training step
 *   eval      step, loss, ppl                                  every evaluation
 *   variance  step, layer, variance                            layer l = 0..L (h_l)
 *   angular   step, l, m, n, distance, distance_last           every pair 0 <= l < m <= L of
 *             hidden states, n = m - l (Gromov et al.'s block size), long format
 *   grad      step, layer, grad_norm                           block l = 1..L
 *   prune     layer, block_loss, block_delta, block_ppl, attn_loss, attn_delta, attn_ppl,
 *             mlp_loss, mlp_delta, mlp_ppl                     block l = 1..L; delta = loss
 *             with the part removed - base_loss (nats), ppl = exp(loss)
 * The probe tables (variance, angular, grad) print one probe: `step` = -1 the last one,
 * EXPORT_ALL_STEPS every one, otherwise the probe at exactly that step.
 * Reads without HDF5's file lock, so it works on a run that is still training.
 */
#ifndef NORMBENCH_EXPORT_H
#define NORMBENCH_EXPORT_H

#include <stdio.h>

#define EXPORT_LAST_STEP (-1L)
#define EXPORT_ALL_STEPS (-2L)

/* Prints table `what` of run file `path` to out. Returns 0, or -1 with a one-line message
 * in err (unknown table, unreadable file, no probe at that step, no pruning sweep). */
int export_run(const char *path, const char *what, long step, FILE *out, char *err,
               size_t errlen);

/* The table names, for usage messages: "train|eval|variance|angular|grad|prune". */
const char *export_tables(void);

#endif
