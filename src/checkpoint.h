/* checkpoint.h — training state on disk as HDF5, readable without normbench.
 *
 * One dataset per parameter at the file's root, named and shaped as Hugging Face's LLaMA
 * stores it ("model.layers.3.self_attn.q_proj.weight", [out, in], fp32), so h5py and
 * PyTorch load the weights directly; the AdamW moments under /optimizer/exp_avg/<name> and
 * /optimizer/exp_avg_sq/<name> (PyTorch's names); attributes on the root: step, seed, scheme,
 * initial_loss, config_yaml (the resolved config), format_version. The data position needs
 * no state of its own: batch order is a pure function of (seed, step).
 * Writes are atomic: a temp file beside the target, fsync, rename.
 */
#ifndef NORMBENCH_CHECKPOINT_H
#define NORMBENCH_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct {
    int step;             /* optimizer steps completed */
    uint64_t seed;
    double initial_loss;  /* the run's first training loss (divergence threshold) */
    char scheme[64];
    char *config_yaml;    /* resolved config; owned after checkpoint_read_info */
} CheckpointInfo;

int checkpoint_save(const char *path, const Model *m, const CheckpointInfo *info, char *err,
                    size_t errlen);
/* Reads the attributes; info->config_yaml is malloc'ed (checkpoint_info_free). */
int checkpoint_read_info(const char *path, CheckpointInfo *info, char *err, size_t errlen);
void checkpoint_info_free(CheckpointInfo *info);
/* Whether a checkpoint can resume a run of model mc with scheme table specs (which decides
 * the scheme's own parameters) that trains `steps` steps, without a model and without
 * reading tensor data: readable (HDF5 refuses a file cut short), format version 1,
 * 0 <= step <= steps, every parameter and both AdamW moments present as floats of the shapes
 * mc and specs give, with their storage allocated. Returns 0 with info filled
 * (checkpoint_info_free), or -1 with a one-line reason naming the file. */
int checkpoint_check(const char *path, const ModelConfig *mc, const SublayerSpec *specs,
                     int steps, CheckpointInfo *info, char *err, size_t errlen);
/* Loads parameters and AdamW moments into m, checking every name and shape. */
int checkpoint_load_state(const char *path, Model *m, char *err, size_t errlen);
/* Loads parameters only (optimizer state absent or ignored), for evaluation. */
int checkpoint_load_params(const char *path, Model *m, char *err, size_t errlen);

#endif
