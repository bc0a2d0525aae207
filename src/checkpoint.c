/* checkpoint.c — HDF5 checkpoints with Hugging Face LLaMA tensor names (see checkpoint.h). */
#include "checkpoint.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"
#include "h5vet.h"

#define CHECKPOINT_FORMAT_VERSION 1

static const char *const moment_groups[2] = {"optimizer/exp_avg", "optimizer/exp_avg_sq"};

/* Writes every tensor of `values` (the layout of t) into group `loc`. */
static int write_tensors(hid_t loc, const ParamTable *t, const float *values) {
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        if (h5_write_f32(loc, p->name, values + p->offset, (size_t)p->rows, (size_t)p->cols) != 0)
            return -1;
    }
    return 0;
}

static int read_tensors(hid_t loc, const ParamTable *t, float *values, const char *path,
                        char *err, size_t errlen) {
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        if (h5_read_f32(loc, p->name, values + p->offset, (size_t)p->rows, (size_t)p->cols) != 0) {
            snprintf(err, errlen, "%s: tensor %s missing or not of shape [%d%s%.0d]", path,
                     p->name, p->rows, p->cols ? ", " : "", p->cols);
            return -1;
        }
    }
    return 0;
}

int checkpoint_save(const char *path, const Model *m, const CheckpointInfo *info, char *err,
                    size_t errlen) {
    const ParamTable *t = model_params(m);
    size_t tmp_len = strlen(path) + 8;
    char *tmp = malloc(tmp_len);
    float *buf = malloc(sizeof *buf * t->total);
    float *buf2 = malloc(sizeof *buf2 * t->total);
    int rc = -1;
    hid_t file = -1;
    if (!tmp || !buf || !buf2) {
        snprintf(err, errlen, "%s: out of memory writing checkpoint", path);
        goto done;
    }
    snprintf(tmp, tmp_len, "%s.tmp", path);
    errno = 0;
    H5E_BEGIN_TRY { file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); } H5E_END_TRY;
    if (file < 0) {
        snprintf(err, errlen, "%s: cannot create checkpoint: %s", tmp,
                 errno ? strerror(errno) : "directory missing or not writable");
        unlink(tmp); /* HDF5 may have created it before its first write failed */
        goto done;
    }
    int ok = h5_write_attr_int64(file, "format_version", CHECKPOINT_FORMAT_VERSION) == 0 &&
             h5_write_attr_int64(file, "step", info->step) == 0 &&
             h5_write_attr_int64(file, "seed", (long long)info->seed) == 0 &&
             h5_write_attr_double(file, "initial_loss", info->initial_loss) == 0 &&
             h5_write_attr_string(file, "scheme", info->scheme) == 0 &&
             h5_write_attr_string(file, "config_yaml", info->config_yaml) == 0;
    model_get_params(m, buf);
    ok = ok && write_tensors(file, t, buf) == 0;
    model_get_optimizer_state(m, buf, buf2);
    hid_t opt = -1, g0 = -1, g1 = -1;
    H5E_BEGIN_TRY {
        opt = H5Gcreate2(file, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        g0 = H5Gcreate2(file, moment_groups[0], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        g1 = H5Gcreate2(file, moment_groups[1], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    } H5E_END_TRY;
    ok = ok && opt >= 0 && g0 >= 0 && g1 >= 0 && write_tensors(g0, t, buf) == 0 &&
         write_tensors(g1, t, buf2) == 0;
    H5E_BEGIN_TRY {
        if (g1 >= 0) H5Gclose(g1);
        if (g0 >= 0) H5Gclose(g0);
        if (opt >= 0) H5Gclose(opt);
        /* A flush first: a full disk fails here, while the file can still be closed. */
        ok = ok && H5Fflush(file, H5F_SCOPE_LOCAL) >= 0;
    } H5E_END_TRY;
    if (!ok) {
        /* A file whose data cannot reach the disk cannot be closed either: H5Fclose fails,
         * the id stays open, and HDF5 tries again at exit (the segfault of issue 17). Cut
         * the temp file to nothing first, so that the close has no data left to write and
         * succeeds, and it is closed once. */
        if (truncate(tmp, 0) != 0) { /* nothing more to do: the close below may fail */ }
    }
    herr_t closed = -1;
    H5E_BEGIN_TRY { closed = H5Fclose(file); } H5E_END_TRY;
    file = -1;
    ok = ok && closed >= 0;
    if (!ok) {
        snprintf(err, errlen, "%s: cannot write checkpoint: %s", tmp,
                 errno ? strerror(errno) : "HDF5 write error (disk full?)");
        unlink(tmp);
        goto done;
    }
    rc = h5_commit_file(tmp, path, err, errlen);
done:
    free(tmp);
    free(buf);
    free(buf2);
    return rc;
}

/* The arguments of one read, for running it in a child first (h5vet.h). */
typedef struct {
    const char *path;
    CheckpointInfo *info;
    const ModelConfig *mc;        /* check */
    const SublayerSpec *specs;    /* check */
    int steps;                    /* check */
    const ParamTable *table;      /* load */
    int with_optimizer;           /* load */
    float *params, *moments[2];   /* load: memory shared with the child */
} CheckpointRead;

static hid_t open_readonly(const char *path, char *err, size_t errlen) {
    hid_t file = -1;
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (file < 0) snprintf(err, errlen, "%s: not a readable HDF5 checkpoint (truncated or corrupt?)", path);
    return file;
}

static int read_info(void *ctx, char *err, size_t errlen) {
    const char *path = ((CheckpointRead *)ctx)->path;
    CheckpointInfo *info = ((CheckpointRead *)ctx)->info;
    memset(info, 0, sizeof *info);
    hid_t file = open_readonly(path, err, errlen);
    if (file < 0) return -1;
    long long step = 0, seed = 0, version = 0;
    char *scheme = NULL;
    int ok = h5_read_attr_int64(file, "format_version", &version) == 0 &&
             h5_read_attr_int64(file, "step", &step) == 0 &&
             h5_read_attr_int64(file, "seed", &seed) == 0 &&
             h5_read_attr_double(file, "initial_loss", &info->initial_loss) == 0 &&
             h5_read_attr_string(file, "scheme", &scheme) == 0 &&
             h5_read_attr_string(file, "config_yaml", &info->config_yaml) == 0;
    H5Fclose(file);
    if (ok && version != CHECKPOINT_FORMAT_VERSION) {
        snprintf(err, errlen, "%s: checkpoint format_version %lld, this normbench reads %d", path,
                 version, CHECKPOINT_FORMAT_VERSION);
        ok = 0;
    } else if (!ok) {
        snprintf(err, errlen, "%s: not a normbench checkpoint (attributes missing)", path);
    }
    if (scheme) snprintf(info->scheme, sizeof info->scheme, "%s", scheme);
    free(scheme);
    if (ok && (step < 0 || step > INT_MAX)) {
        snprintf(err, errlen, "%s: checkpoint step %lld out of range", path, step);
        ok = 0;
    }
    info->step = ok ? (int)step : 0;
    info->seed = (uint64_t)seed;
    if (!ok) checkpoint_info_free(info);
    return ok ? 0 : -1;
}

int checkpoint_read_info(const char *path, CheckpointInfo *info, char *err, size_t errlen) {
    CheckpointRead args = {.path = path, .info = info};
    memset(info, 0, sizeof *info);
    return h5vet_read(read_info, &args, path, 0, 1, err, errlen);
}

void checkpoint_info_free(CheckpointInfo *info) {
    free(info->config_yaml);
    info->config_yaml = NULL;
}

/* The child's read of a checkpoint's tensors into args->params (and the moments), which
 * are shared with the parent: the file is read once, by the child. */
static int read_state(void *ctx, char *err, size_t errlen) {
    const CheckpointRead *args = ctx;
    const char *path = args->path;
    hid_t file = open_readonly(path, err, errlen);
    if (file < 0) return -1;
    int rc = read_tensors(file, args->table, args->params, path, err, errlen);
    for (int k = 0; rc == 0 && args->with_optimizer && k < 2; k++) {
        hid_t g = -1;
        H5E_BEGIN_TRY { g = H5Gopen2(file, moment_groups[k], H5P_DEFAULT); } H5E_END_TRY;
        if (g < 0) snprintf(err, errlen, "%s: optimizer state missing", path);
        rc = g >= 0 ? read_tensors(g, args->table, args->moments[k], path, err, errlen) : -1;
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(file);
    return rc;
}

static int load(const char *path, Model *m, int with_optimizer, char *err, size_t errlen) {
    const ParamTable *t = model_params(m);
    const size_t bytes = sizeof(float) * t->total;
    CheckpointRead args = {.path = path, .table = t, .with_optimizer = with_optimizer};
    args.params = h5vet_shared_alloc(bytes);
    for (int k = 0; with_optimizer && k < 2; k++) args.moments[k] = h5vet_shared_alloc(bytes);
    int rc = -1;
    if (!args.params || (with_optimizer && (!args.moments[0] || !args.moments[1]))) {
        snprintf(err, errlen, "%s: out of memory reading checkpoint", path);
    } else {
        /* the time limit grows with the data: 3 x bytes at 100 MB/s */
        const double seconds_extra = 3.0 * (double)bytes / 100e6;
        rc = h5vet_read(read_state, &args, path, seconds_extra, 0, err, errlen);
    }
    if (rc == 0) {
        model_set_params(m, args.params);
        if (with_optimizer) model_set_optimizer_state(m, args.moments[0], args.moments[1]);
    }
    h5vet_shared_free(args.params, bytes);
    for (int k = 0; k < 2; k++) h5vet_shared_free(args.moments[k], bytes);
    return rc;
}

int checkpoint_load_state(const char *path, Model *m, char *err, size_t errlen) {
    return load(path, m, 1, err, errlen);
}

int checkpoint_load_params(const char *path, Model *m, char *err, size_t errlen) {
    return load(path, m, 0, err, errlen);
}

/* 1 when dataset `name` under loc is fp32-convertible of exactly [rows(, cols)] with all
 * of its bytes allocated in the file (a checkpoint is written in one go, so a tensor whose
 * storage is short was cut off). Reads no data: a resume loads every tensor right after,
 * and reading a large checkpoint twice would double its startup. */
static int tensor_ok(hid_t loc, const ParamInfo *p) {
    int ok = 0;
    H5E_BEGIN_TRY {
        hid_t d = H5Dopen2(loc, p->name, H5P_DEFAULT);
        hid_t space = d >= 0 ? H5Dget_space(d) : -1;
        hid_t type = d >= 0 ? H5Dget_type(d) : -1;
        hsize_t dims[2] = {0, 0};
        int rank = space >= 0 && H5Sget_simple_extent_ndims(space) == (p->cols ? 2 : 1)
                       ? H5Sget_simple_extent_dims(space, dims, NULL)
                       : -1;
        ok = rank == (p->cols ? 2 : 1) && dims[0] == (hsize_t)p->rows &&
             (!p->cols || dims[1] == (hsize_t)p->cols) && type >= 0 &&
             H5Tget_class(type) == H5T_FLOAT &&
             H5Dget_storage_size(d) >= (hsize_t)p->numel * H5Tget_size(type);
        if (type >= 0) H5Tclose(type);
        if (space >= 0) H5Sclose(space);
        if (d >= 0) H5Dclose(d);
    } H5E_END_TRY;
    return ok;
}

static int check(void *ctx, char *err, size_t errlen) {
    const CheckpointRead *args = ctx;
    const char *path = args->path;
    CheckpointInfo *info = args->info;
    const int steps = args->steps;
    if (read_info(ctx, err, errlen) != 0) return -1;
    if (info->step > steps) {
        snprintf(err, errlen, "%s: checkpoint step %d beyond train.steps %d", path, info->step,
                 steps);
        checkpoint_info_free(info);
        return -1;
    }
    ParamTable t;
    if (param_table_build(args->mc, args->specs, &t) != 0) {
        snprintf(err, errlen, "%s: out of memory checking checkpoint", path);
        checkpoint_info_free(info);
        return -1;
    }
    hid_t file = open_readonly(path, err, errlen);
    int ok = file >= 0;
    const char *groups[3] = {".", moment_groups[0], moment_groups[1]};
    for (int g = 0; ok && g < 3; g++) {
        hid_t loc = -1;
        H5E_BEGIN_TRY { loc = H5Gopen2(file, groups[g], H5P_DEFAULT); } H5E_END_TRY;
        if (loc < 0) {
            snprintf(err, errlen, "%s: %s missing (optimizer state)", path, groups[g]);
            ok = 0;
            break;
        }
        for (int i = 0; ok && i < t.count; i++) {
            const ParamInfo *p = &t.items[i];
            if (!tensor_ok(loc, p)) {
                snprintf(err, errlen, "%s: %s/%s missing, short or not of shape [%d%s%.0d]",
                         path, groups[g], p->name, p->rows, p->cols ? ", " : "", p->cols);
                ok = 0;
            }
        }
        H5E_BEGIN_TRY { H5Gclose(loc); } H5E_END_TRY;
    }
    if (file >= 0) H5E_BEGIN_TRY { H5Fclose(file); } H5E_END_TRY;
    param_table_free(&t);
    if (!ok) checkpoint_info_free(info);
    return ok ? 0 : -1;
}

int checkpoint_check(const char *path, const ModelConfig *mc, const SublayerSpec *specs,
                     int steps, CheckpointInfo *info, char *err, size_t errlen) {
    CheckpointRead args = {.path = path, .info = info, .mc = mc, .specs = specs, .steps = steps};
    memset(info, 0, sizeof *info);
    return h5vet_read(check, &args, path, 0, 1, err, errlen);
}
