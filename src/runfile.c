/* runfile.c — the run file in both directions: names, statuses, writer, reader, listing
 * (see runfile.h; the layout is documented in docs/run-file.md). */
#include "runfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"
#include "h5vet.h"
#include "provenance.h"
#include "sha256.h"

/* ---- statuses ------------------------------------------------------------------------- */

static const char *const status_names[] = {
    [RUN_FINISHED] = "finished", [RUN_DIVERGED] = "diverged", [RUN_FAILED] = "failed",
    [RUN_STOPPED] = "stopped",   [RUN_RUNNING] = "running",   [RUN_UNKNOWN] = "unknown",
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *run_status_name(RunStatus s) {
    return (unsigned)s < COUNT(status_names) ? status_names[s] : "unknown";
}

RunStatus run_status_parse(const char *name) {
    for (unsigned s = 0; name && s < COUNT(status_names); s++)
        if (strcmp(name, status_names[s]) == 0) return (RunStatus)s;
    return RUN_UNKNOWN;
}

/* What the file says of a run that ended with status s: a stopped run is resumable, so it
 * stays "running". */
static const char *stored_status_name(RunStatus s) {
    return run_status_name(s == RUN_STOPPED ? RUN_RUNNING : s);
}

/* ---- datasets ------------------------------------------------------------------------- */

/* Each dataset's path and rank; the series' first column (the step) is int64, everything
 * else float64. The order within a group is the order docs/run-file.md lists them. */
static const struct {
    const char *name;
    int rank;
} datasets[RF_N_DATASETS] = {
    [RF_TRAIN_STEP] = {"train/step", 1},
    [RF_TRAIN_LOSS] = {"train/loss", 1},
    [RF_TRAIN_LR] = {"train/lr", 1},
    [RF_TRAIN_GRAD_NORM] = {"train/grad_norm", 1},
    [RF_TRAIN_TOKENS_PER_S] = {"train/tokens_per_s", 1},
    [RF_EVAL_STEP] = {"eval/step", 1},
    [RF_EVAL_LOSS] = {"eval/loss", 1},
    [RF_EVAL_PPL] = {"eval/ppl", 1},
    [RF_LAYERS_STEP] = {"layers/step", 1},
    [RF_LAYERS_VARIANCE] = {"layers/variance", 2},
    [RF_LAYERS_ANGULAR] = {"layers/angular", 3},
    [RF_LAYERS_ANGULAR_LAST] = {"layers/angular_last", 3},
    [RF_LAYERS_GRAD_NORM] = {"layers/grad_norm", 2},
    [RF_PRUNE_BLOCK] = {"prune/block", 1},
    [RF_PRUNE_ATTN] = {"prune/attn", 1},
    [RF_PRUNE_MLP] = {"prune/mlp", 1},
};

const char *runfile_dataset_name(RunDataset d) {
    return (unsigned)d < RF_N_DATASETS ? datasets[d].name : "?";
}

int runfile_dataset_rank(RunDataset d) { return (unsigned)d < RF_N_DATASETS ? datasets[d].rank : 0; }

/* The series groups: [first, last] dataset ids, the first being the step column. */
typedef struct {
    const char *group;
    RunDataset first, last;
} SeriesGroup;
static const SeriesGroup series_groups[] = {
    {"train", RF_TRAIN_STEP, RF_TRAIN_TOKENS_PER_S},
    {"eval", RF_EVAL_STEP, RF_EVAL_PPL},
    {"layers", RF_LAYERS_STEP, RF_LAYERS_GRAD_NORM},
};
enum { SG_TRAIN, SG_EVAL, SG_LAYERS };
static const RunDataset prune_datasets[3] = {RF_PRUNE_BLOCK, RF_PRUNE_ATTN, RF_PRUNE_MLP};
#define PRUNE_GROUP "prune"
#define PRUNE_PARTIAL "prune_partial"

/* ---- writing ------------------------------------------------------------------------- */

typedef struct {
    long long step;
    double loss, lr, grad_norm, tokens_per_s;
} TrainRow;

struct RunFile {
    char *path;
    hid_t file;
    int L;
    int n_buf;
    TrainRow buf[RUNFILE_TRAIN_BUFFER];
};

enum { TRAIN_CHUNK = 1024, EVAL_CHUNK = 256, LAYER_CHUNK = 16 };

/* ---- small helpers ---------------------------------------------------------------------- */

static void now_iso8601(char *out, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_failed(const RunFile *rf, const char *what, char *err, size_t errlen) {
    int e = errno;
    snprintf(err, errlen, "%s: cannot write %s: %s", rf->path, what,
             e ? strerror(e) : "HDF5 write error (disk full?)");
    return -1;
}

static hid_t make_group(hid_t loc, const char *name) {
    hid_t g = -1;
    H5E_BEGIN_TRY { g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT); } H5E_END_TRY;
    return g;
}

/* The group `name`, created when the file has none yet (written again by a later prune). */
static hid_t open_or_make_group(hid_t loc, const char *name) {
    hid_t g = -1;
    H5E_BEGIN_TRY {
        g = H5Lexists(loc, name, H5P_DEFAULT) > 0 ? H5Gopen2(loc, name, H5P_DEFAULT) : -1;
    } H5E_END_TRY;
    return g >= 0 ? g : make_group(loc, name);
}

/* ---- /scheme: a compound table [L, 2] ------------------------------------------------ */

typedef struct {
    int layer;          /* 1..L */
    int sublayer;       /* enum attn | mlp */
    int placement;      /* enum pre | post */
    float in_scale, residual_scale;
    int init;           /* enum normal | xavier_normal | xavier_uniform */
    float init_std;
    float init_gain[SUBLAYER_MAX_WEIGHTS];
    int norm_fn;        /* enum norm | dyt */
    float dyt_alpha;
    int out_norm;       /* 0 | 1 */
    int branch;         /* enum none | scalar | channel */
    float branch_init;
    int embed_norm;     /* 0 | 1 (sublayer 0 only) */
} SchemeRecord;

static hid_t enum_type(const char *const *names, int n) {
    hid_t t = H5Tenum_create(H5T_NATIVE_INT);
    for (int v = 0; v < n; v++) H5Tenum_insert(t, names[v], &v);
    return t;
}

static int write_scheme(hid_t file, const NbConfig *run, const SublayerSpec *specs) {
    const int L = run->model.n_layer;
    const char *sub_names[2] = {"attn", "mlp"};
    const char *place_names[2] = {placement_name(PLACE_PRE), placement_name(PLACE_POST)};
    const char *init_names[INIT_KIND_COUNT], *fn_names[NORM_FN_COUNT],
        *branch_names[BRANCH_SCALE_COUNT];
    for (int v = 0; v < INIT_KIND_COUNT; v++) init_names[v] = init_kind_name((InitKind)v);
    for (int v = 0; v < NORM_FN_COUNT; v++) fn_names[v] = norm_fn_name((NormFn)v);
    for (int v = 0; v < BRANCH_SCALE_COUNT; v++) branch_names[v] = branch_scale_name((BranchScale)v);
    SchemeRecord *rec = calloc((size_t)2 * L, sizeof *rec);
    if (!rec) return -1;
    for (int i = 0; i < 2 * L; i++) {
        const SublayerSpec *sp = &specs[i];
        rec[i] = (SchemeRecord){.layer = i / 2 + 1, .sublayer = i % 2,
                                .placement = (int)sp->placement, .in_scale = sp->in_scale,
                                .residual_scale = sp->residual_scale, .init = (int)sp->init,
                                .init_std = sp->init_std, .norm_fn = (int)sp->norm_fn,
                                .dyt_alpha = sp->dyt_alpha, .out_norm = sp->out_norm,
                                .branch = (int)sp->branch, .branch_init = sp->branch_init,
                                .embed_norm = sp->embed_norm};
        memcpy(rec[i].init_gain, sp->init_gain, sizeof rec[i].init_gain);
    }
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t sub_t = enum_type(sub_names, 2), place_t = enum_type(place_names, 2),
              init_t = enum_type(init_names, INIT_KIND_COUNT),
              fn_t = enum_type(fn_names, NORM_FN_COUNT),
              branch_t = enum_type(branch_names, BRANCH_SCALE_COUNT);
        hsize_t gdim[1] = {SUBLAYER_MAX_WEIGHTS};
        hid_t gain_t = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, gdim);
        hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(SchemeRecord));
        H5Tinsert(t, "layer", HOFFSET(SchemeRecord, layer), H5T_NATIVE_INT);
        H5Tinsert(t, "sublayer", HOFFSET(SchemeRecord, sublayer), sub_t);
        H5Tinsert(t, "placement", HOFFSET(SchemeRecord, placement), place_t);
        H5Tinsert(t, "in_scale", HOFFSET(SchemeRecord, in_scale), H5T_NATIVE_FLOAT);
        H5Tinsert(t, "residual_scale", HOFFSET(SchemeRecord, residual_scale), H5T_NATIVE_FLOAT);
        H5Tinsert(t, "init", HOFFSET(SchemeRecord, init), init_t);
        H5Tinsert(t, "init_std", HOFFSET(SchemeRecord, init_std), H5T_NATIVE_FLOAT);
        H5Tinsert(t, "init_gain", HOFFSET(SchemeRecord, init_gain), gain_t);
        H5Tinsert(t, "norm_fn", HOFFSET(SchemeRecord, norm_fn), fn_t);
        H5Tinsert(t, "dyt_alpha", HOFFSET(SchemeRecord, dyt_alpha), H5T_NATIVE_FLOAT);
        H5Tinsert(t, "out_norm", HOFFSET(SchemeRecord, out_norm), H5T_NATIVE_INT);
        H5Tinsert(t, "branch", HOFFSET(SchemeRecord, branch), branch_t);
        H5Tinsert(t, "branch_init", HOFFSET(SchemeRecord, branch_init), H5T_NATIVE_FLOAT);
        H5Tinsert(t, "embed_norm", HOFFSET(SchemeRecord, embed_norm), H5T_NATIVE_INT);
        hid_t ft = H5Tcopy(t);
        H5Tpack(ft);
        hsize_t dims[2] = {(hsize_t)L, 2};
        hid_t space = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(file, "scheme", ft, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rec) >= 0) {
            const SchemeRow *row = run->schemes[0];
            const SchemeParams *p = &run->scheme_params;
            /* the row, then every constant of the scheme table as this run resolves it for
             * its depth (derived or overridden), whatever the scheme */
            rc = h5_write_attr_string(d, "name", row->name) == 0 &&
                         h5_write_attr_string(d, "label", row->label) == 0 &&
                         h5_write_attr_string(d, "description", row->formula) == 0 &&
                         h5_write_attr_string(d, "source", row->source) == 0 &&
                         h5_write_attr_string(d, "columns", "attn, mlp") == 0 &&
                         h5_write_attr_double(d, "init_std", p->init_std) == 0
                     ? 0
                     : -1;
            for (int k = 0; rc == 0 && k < scheme_key_count(); k++) {
                const SchemeConst *c = scheme_key_at(k);
                rc = h5_write_attr_double(d, c->key, scheme_const_value(c, p, L));
            }
        }
        if (d >= 0) H5Dclose(d);
        H5Sclose(space);
        H5Tclose(ft), H5Tclose(t), H5Tclose(gain_t);
        H5Tclose(init_t), H5Tclose(place_t), H5Tclose(sub_t), H5Tclose(fn_t), H5Tclose(branch_t);
    } H5E_END_TRY;
    free(rec);
    return rc;
}

/* ---- creating and reopening -------------------------------------------------------------- */

static RunFile *runfile_new(const char *path, int L) {
    RunFile *rf = calloc(1, sizeof *rf);
    if (!rf) return NULL;
    rf->path = strdup(path);
    rf->file = -1;
    rf->L = L;
    if (!rf->path) {
        free(rf);
        return NULL;
    }
    return rf;
}

static void runfile_free(RunFile *rf) {
    if (!rf) return;
    if (rf->file >= 0) H5E_BEGIN_TRY { H5Fclose(rf->file); } H5E_END_TRY;
    free(rf->path);
    free(rf);
}

static int write_layout(RunFile *rf, const NbConfig *run, const RunFileInfo *info,
                        const SublayerSpec *specs, const char *yaml) {
    const ModelConfig *mc = &run->model;
    const hid_t f = rf->file;
    const int L = mc->n_layer;
    char sha[65], host[256] = "unknown", commit[64], now[32];
    sha256_hex(yaml, strlen(yaml), sha);
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    provenance_git_commit(commit, sizeof commit);
    now_iso8601(now, sizeof now);
    errno = 0; /* write_failed reports the system error of the writes below */
    int ok = h5_write_attr_int64(f, "format_version", RUNFILE_FORMAT_VERSION) == 0 &&
             h5_write_attr_string(f, "normbench_version", NORMBENCH_VERSION) == 0 &&
             h5_write_attr_string(f, "git_commit", commit) == 0 &&
             h5_write_attr_string(f, "config_yaml", yaml) == 0 &&
             h5_write_attr_string(f, "config_sha256", sha) == 0 &&
             h5_write_attr_string(f, "scheme", run->schemes[0]->name) == 0 &&
             h5_write_attr_int64(f, "seed", (long long)run->seeds[0]) == 0 &&
             h5_write_attr_string(f, "backend", info && info->backend ? info->backend : "unknown") == 0 &&
             h5_write_attr_string(f, "device", info && info->device ? info->device : "unknown") == 0 &&
             h5_write_attr_string(f, "kernels", info && info->kernels ? info->kernels : "unknown") == 0 &&
             h5_write_attr_string(f, "host", host) == 0 &&
             h5_write_attr_int64(f, "ranks", info && info->ranks > 1 ? info->ranks : 1) == 0 &&
             h5_write_attr_string(f, "started_at", now) == 0 &&
             h5_write_attr_string(f, "status", run_status_name(RUN_RUNNING)) == 0 &&
             h5_write_attr_string(f, "finished_at", "") == 0 &&
             h5_write_attr_int64(f, "steps", run->train.steps) == 0 &&
             h5_write_attr_double(f, "data_epochs", info ? info->data_epochs : NAN) == 0;
    hid_t g = ok ? make_group(f, "model") : -1;
    ok = ok && g >= 0 && h5_write_attr_int64(g, "n_layer", mc->n_layer) == 0 &&
         h5_write_attr_int64(g, "d_model", mc->d_model) == 0 &&
         h5_write_attr_int64(g, "n_head", mc->n_head) == 0 &&
         h5_write_attr_int64(g, "d_ff", mc->d_ff) == 0 &&
         h5_write_attr_int64(g, "vocab_size", mc->vocab_size) == 0 &&
         h5_write_attr_int64(g, "seq_len", mc->seq_len) == 0 &&
         h5_write_attr_string(g, "norm", config_norm_name(mc->norm)) == 0 &&
         h5_write_attr_double(g, "norm_eps", mc->norm_eps) == 0 &&
         h5_write_attr_double(g, "rope_theta", mc->rope_theta) == 0 &&
         h5_write_attr_int64(g, "final_norm", mc->final_norm) == 0 &&
         h5_write_attr_double(g, "embed_std", mc->embed_std) == 0 &&
         h5_write_attr_int64(g, "n_params", info ? (long long)info->n_params : 0) == 0;
    if (g >= 0) H5Gclose(g);
    ok = ok && write_scheme(f, run, specs) == 0;

    hid_t gt = ok ? make_group(f, series_groups[SG_TRAIN].group) : -1,
          ge = ok ? make_group(f, series_groups[SG_EVAL].group) : -1,
          gl = ok ? make_group(f, series_groups[SG_LAYERS].group) : -1;
    ok = ok && gt >= 0 && ge >= 0 && gl >= 0;
    /* the series: step column int64, values float64; a /layers row is a vector over the
     * hidden states h_0..h_L (variance), a matrix over pairs of them (angular), or a vector
     * over the blocks (grad_norm) */
    const size_t P = (size_t)L + 1, sq[2] = {P, P}, nl = (size_t)L;
    const size_t chunk[] = {[SG_TRAIN] = TRAIN_CHUNK, [SG_EVAL] = EVAL_CHUNK,
                            [SG_LAYERS] = LAYER_CHUNK};
    for (size_t g = 0; ok && g < COUNT(series_groups); g++)
        for (RunDataset d = series_groups[g].first; ok && d <= series_groups[g].last; d++) {
            const size_t *tail = d == RF_LAYERS_VARIANCE ? &P
                                 : d == RF_LAYERS_GRAD_NORM ? &nl
                                 : datasets[d].rank == 3 ? sq : NULL;
            ok = h5_series_create(f, datasets[d].name,
                                  d == series_groups[g].first ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                                  datasets[d].rank, tail, chunk[g]) == 0;
        }
    /* the probe set */
    ok = ok && h5_write_attr_int64(gl, "every", run->metrics.every) == 0 &&
         h5_write_attr_int64(gl, "probe_tokens", run->metrics.probe_tokens) == 0 &&
         h5_write_attr_int64(gl, "probe_batches",
                             metrics_probe_batches(run->metrics.probe_tokens, run->train.batch,
                                                   mc->seq_len)) == 0 &&
         h5_write_attr_int64(gl, "batch", run->train.batch) == 0 &&
         h5_write_attr_int64(gl, "seq_len", mc->seq_len) == 0 &&
         h5_write_attr_int64(ge, "batches", run->eval.batches) == 0;
    if (gt >= 0) H5Gclose(gt);
    if (ge >= 0) H5Gclose(ge);
    if (gl >= 0) H5Gclose(gl);
    return ok ? 0 : -1;
}

RunFile *runfile_create(const char *path, const NbConfig *run, const SublayerSpec *specs,
                        const RunFileInfo *info, char *err, size_t errlen) {
    char *yaml = NULL;
    RunFile *rf = runfile_new(path, run->model.n_layer);
    if (!rf || config_write_yaml(run, &yaml) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    /* open(2) and a trial write first, for an error that says why (missing directory,
     * permissions, a full disk) before HDF5 holds a half-created file it cannot close */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create run file: %s", path, strerror(errno));
        goto fail;
    }
    static const char zeros[4096];
    struct stat st;
    if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros) {
        snprintf(err, errlen, "%s: cannot write run file: %s", path,
                 errno ? strerror(errno) : "short write");
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) unlink(path);
        close(fd);
        goto fail;
    }
    close(fd);
    errno = 0;
    H5E_BEGIN_TRY { rf->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); } H5E_END_TRY;
    if (rf->file < 0) {
        snprintf(err, errlen, "%s: cannot create run file: %s", path,
                 errno ? strerror(errno) : "HDF5 error");
        goto fail;
    }
    if (write_layout(rf, run, info, specs, yaml) != 0 || runfile_flush(rf, err, errlen) != 0) {
        write_failed(rf, "the run file layout", err, errlen);
        goto fail;
    }
    free(yaml);
    return rf;
fail:
    free(yaml);
    runfile_free(rf);
    return NULL;
}

/* Number of leading rows of series `step_name` with step <= start_step. */
static long long rows_through(hid_t file, const char *step_name, int start_step) {
    double *steps = NULL;
    size_t dims[1];
    int rank = 0;
    if (h5_read_f64_nd(file, step_name, 1, &steps, dims, &rank) != 0) return -1;
    size_t k = 0;
    while (k < dims[0] && steps[k] <= start_step) k++;
    free(steps);
    return (long long)k;
}

/* Cuts every series of group g to its rows with step <= start_step. */
static int truncate_group(hid_t file, const SeriesGroup *g, int start_step) {
    long long keep = rows_through(file, datasets[g->first].name, start_step);
    if (keep < 0) return -1;
    for (RunDataset d = g->first; d <= g->last; d++)
        if (h5_series_set_rows(file, datasets[d].name, (size_t)keep) != 0) return -1;
    return 0;
}

static int vet_whole_file(const char *path, char *why, size_t whylen);

/* Opens rf->path read-write: -1 with "PATH: cannot VERB run file: why" when the file is
 * missing, not writable or makes libhdf5 crash or hang (read in a child first); otherwise 0,
 * rf->file being the HDF5 id or < 0 when HDF5 cannot open it (the caller says what that
 * means). */
static int open_for_writing(RunFile *rf, const char *verb, char *err, size_t errlen) {
    if (access(rf->path, R_OK | W_OK) != 0) {
        snprintf(err, errlen, "%s: cannot %s run file: %s", rf->path, verb, strerror(errno));
        return -1;
    }
    char why[512];
    if (vet_whole_file(rf->path, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: cannot %s run file: %s", rf->path, verb, why);
        return -1;
    }
    H5E_BEGIN_TRY { rf->file = H5Fopen(rf->path, H5F_ACC_RDWR, H5P_DEFAULT); } H5E_END_TRY;
    return 0;
}

RunFile *runfile_reopen(const char *path, const NbConfig *run, int start_step, char *err,
                    size_t errlen) {
    RunFile *rf = runfile_new(path, run->model.n_layer);
    char *yaml = NULL, *stored_sha = NULL;
    if (!rf || config_write_yaml(run, &yaml) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (open_for_writing(rf, "reopen", err, errlen) != 0) goto fail;
    long long version = 0;
    if (rf->file < 0 || h5_read_attr_int64(rf->file, "format_version", &version) != 0 ||
        h5_read_attr_string(rf->file, "config_sha256", &stored_sha) != 0) {
        snprintf(err, errlen, "%s: not a normbench run file (or locked by a running writer)",
                 path);
        goto fail;
    }
    char sha[65];
    sha256_hex(yaml, strlen(yaml), sha);
    if (version != RUNFILE_FORMAT_VERSION) {
        snprintf(err, errlen, "%s: run file format_version %lld, this normbench writes %d", path,
                 version, RUNFILE_FORMAT_VERSION);
        goto fail;
    }
    if (strcmp(sha, stored_sha) != 0) {
        snprintf(err, errlen, "%s: run file was written with a different config; remove it or "
                 "train without --resume", path);
        goto fail;
    }
    char now[32];
    now_iso8601(now, sizeof now);
    errno = 0;
    int ok = 1;
    for (size_t g = 0; ok && g < COUNT(series_groups); g++)
        ok = truncate_group(rf->file, &series_groups[g], start_step) == 0;
    H5E_BEGIN_TRY {
        if (ok && H5Lexists(rf->file, PRUNE_GROUP, H5P_DEFAULT) > 0)
            ok = H5Ldelete(rf->file, PRUNE_GROUP, H5P_DEFAULT) >= 0;
        if (ok && H5Lexists(rf->file, PRUNE_PARTIAL, H5P_DEFAULT) > 0)
            ok = H5Ldelete(rf->file, PRUNE_PARTIAL, H5P_DEFAULT) >= 0;
    } H5E_END_TRY;
    ok = ok && h5_write_attr_string(rf->file, "status", run_status_name(RUN_RUNNING)) == 0 &&
         h5_write_attr_string(rf->file, "finished_at", "") == 0 &&
         h5_write_attr_string(rf->file, "resumed_at", now) == 0 &&
         h5_write_attr_int64(rf->file, "resumed_from_step", start_step) == 0;
    if (!ok) {
        write_failed(rf, "the resumed run file", err, errlen);
        goto fail;
    }
    if (runfile_flush(rf, err, errlen) != 0) goto fail;
    free(yaml);
    free(stored_sha);
    return rf;
fail:
    free(yaml);
    free(stored_sha);
    runfile_free(rf);
    return NULL;
}

/* ---- appending ---------------------------------------------------------------------------- */

static int write_train_buffer(RunFile *rf, char *err, size_t errlen) {
    const int n = rf->n_buf;
    if (n == 0) return 0;
    long long steps[RUNFILE_TRAIN_BUFFER];
    double cols[4][RUNFILE_TRAIN_BUFFER];
    for (int i = 0; i < n; i++) {
        const TrainRow *r = &rf->buf[i];
        steps[i] = r->step;
        cols[0][i] = r->loss, cols[1][i] = r->lr, cols[2][i] = r->grad_norm;
        cols[3][i] = r->tokens_per_s;
    }
    errno = 0;
    int ok = h5_series_append(rf->file, datasets[RF_TRAIN_STEP].name, H5T_NATIVE_LLONG, steps,
                              (size_t)n) == 0;
    for (int c = 0; ok && c < 4; c++)
        ok = h5_series_append(rf->file, datasets[RF_TRAIN_LOSS + c].name, H5T_NATIVE_DOUBLE,
                              cols[c], (size_t)n) == 0;
    if (!ok) return write_failed(rf, "/train", err, errlen);
    rf->n_buf = 0;
    return 0;
}

int runfile_flush(RunFile *rf, char *err, size_t errlen) {
    if (write_train_buffer(rf, err, errlen) != 0) return -1;
    errno = 0;
    herr_t rc = -1;
    H5E_BEGIN_TRY { rc = H5Fflush(rf->file, H5F_SCOPE_GLOBAL); } H5E_END_TRY;
    return rc >= 0 ? 0 : write_failed(rf, "(flush)", err, errlen);
}

int runfile_append_train(RunFile *rf, int step, double loss, double lr, double grad_norm,
                         double tokens_per_s, char *err, size_t errlen) {
    rf->buf[rf->n_buf++] = (TrainRow){step, loss, lr, grad_norm, tokens_per_s};
    return rf->n_buf == RUNFILE_TRAIN_BUFFER ? runfile_flush(rf, err, errlen) : 0;
}

/* Appends one row to each series of group g: the step, then one value (or vector, matrix)
 * per following dataset, in the group's order. */
static int append_row(RunFile *rf, SeriesGroup g, long long step, const double *const *values) {
    int ok = h5_series_append(rf->file, datasets[g.first].name, H5T_NATIVE_LLONG, &step, 1) == 0;
    for (RunDataset d = g.first + 1; ok && d <= g.last; d++)
        ok = h5_series_append(rf->file, datasets[d].name, H5T_NATIVE_DOUBLE,
                              values[d - g.first - 1], 1) == 0;
    return ok ? 0 : -1;
}

int runfile_append_eval(RunFile *rf, int step, double loss, char *err, size_t errlen) {
    double ppl = exp(loss);
    const double *values[] = {&loss, &ppl}; /* RF_EVAL_LOSS, RF_EVAL_PPL */
    errno = 0;
    if (append_row(rf, series_groups[SG_EVAL], step, values) != 0)
        return write_failed(rf, "/eval", err, errlen);
    return runfile_flush(rf, err, errlen);
}

int runfile_append_probe(RunFile *rf, const LayerProbe *p, char *err, size_t errlen) {
    if (p->L != rf->L) {
        snprintf(err, errlen, "%s: probe of %d layers for a %d-layer run", rf->path, p->L,
                 rf->L);
        return -1;
    }
    /* RF_LAYERS_VARIANCE, RF_LAYERS_ANGULAR, RF_LAYERS_ANGULAR_LAST, RF_LAYERS_GRAD_NORM */
    const double *values[] = {p->variance, p->angular, p->angular_last, p->grad_norm};
    errno = 0;
    if (append_row(rf, series_groups[SG_LAYERS], p->step, values) != 0)
        return write_failed(rf, "/layers", err, errlen);
    return runfile_flush(rf, err, errlen);
}

int runfile_write_prune(RunFile *rf, const PruneResult *p, int step, char *err, size_t errlen) {
    if (p->L != rf->L) {
        snprintf(err, errlen, "%s: pruning of %d layers for a %d-layer run", rf->path, p->L,
                 rf->L);
        return -1;
    }
    errno = 0;
    hid_t g = open_or_make_group(rf->file, PRUNE_GROUP);
    const double *values[3] = {p->block, p->attn, p->mlp}; /* prune_datasets' order */
    int ok = g >= 0;
    for (int k = 0; ok && k < 3; k++)
        ok = h5_write_f64(rf->file, datasets[prune_datasets[k]].name, values[k],
                          (size_t)p->L) == 0;
    ok = ok && h5_write_attr_double(g, "base_loss", p->base_loss) == 0 &&
         h5_write_attr_double(g, "base_ppl", exp(p->base_loss)) == 0 &&
         h5_write_attr_int64(g, "batches", p->batches) == 0 &&
         h5_write_attr_int64(g, "step", step) == 0;
    if (g >= 0) H5Gclose(g);
    if (!ok) return write_failed(rf, "/prune", err, errlen);
    return runfile_flush(rf, err, errlen);
}

RunFile *runfile_open_existing(const char *path, const char *config_yaml, int n_layer,
                               RunStatus *status, char *err, size_t errlen) {
    RunFile *rf = runfile_new(path, n_layer);
    char *stored = NULL, *status_text = NULL;
    long long L = -1;
    if (!rf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (open_for_writing(rf, "open", err, errlen) != 0) goto fail;
    hid_t g = -1;
    if (rf->file >= 0) H5E_BEGIN_TRY { g = H5Gopen2(rf->file, "model", H5P_DEFAULT); } H5E_END_TRY;
    int ok = rf->file >= 0 && h5_read_attr_string(rf->file, "config_yaml", &stored) == 0 &&
             h5_read_attr_string(rf->file, "status", &status_text) == 0 && g >= 0 &&
             h5_read_attr_int64(g, "n_layer", &L) == 0;
    if (g >= 0) H5Gclose(g);
    if (!ok) {
        snprintf(err, errlen, "%s: not a normbench run file (or locked by a running writer)",
                 path);
        goto fail;
    }
    if (strcmp(stored, config_yaml) != 0 || L != n_layer) {
        snprintf(err, errlen, "%s: run file and checkpoint were written with different configs",
                 path);
        goto fail;
    }
    *status = run_status_parse(status_text);
    free(stored);
    free(status_text);
    return rf;
fail:
    free(stored);
    free(status_text);
    runfile_free(rf);
    return NULL;
}

int runfile_write_prune_partial(RunFile *rf, int step, int batches, unsigned what, int done,
                                const double *sums, char *err, size_t errlen) {
    errno = 0;
    hid_t g = open_or_make_group(rf->file, PRUNE_PARTIAL);
    int ok = g >= 0 &&
             h5_write_f64(rf->file, PRUNE_PARTIAL "/sums", sums, (size_t)3 * rf->L + 1) == 0 &&
             h5_write_attr_int64(g, "step", step) == 0 &&
             h5_write_attr_int64(g, "batches", batches) == 0 &&
             h5_write_attr_int64(g, "what", what) == 0 &&
             h5_write_attr_int64(g, "done", done) == 0;
    if (g >= 0) H5Gclose(g);
    if (!ok) return write_failed(rf, "/" PRUNE_PARTIAL, err, errlen);
    return runfile_flush(rf, err, errlen);
}

int runfile_read_prune_partial(RunFile *rf, int step, int batches, unsigned what, double *sums) {
    hid_t g = -1;
    H5E_BEGIN_TRY {
        if (H5Lexists(rf->file, PRUNE_PARTIAL, H5P_DEFAULT) > 0)
            g = H5Gopen2(rf->file, PRUNE_PARTIAL, H5P_DEFAULT);
    } H5E_END_TRY;
    long long s = -1, b = -1, w = -1, done = 0;
    double *data = NULL;
    size_t dims[1] = {0};
    int rank = 0;
    int ok = g >= 0 && h5_read_attr_int64(g, "step", &s) == 0 &&
             h5_read_attr_int64(g, "batches", &b) == 0 &&
             h5_read_attr_int64(g, "what", &w) == 0 &&
             h5_read_attr_int64(g, "done", &done) == 0 && s == step && b == batches &&
             w == (long long)what && done > 0 && done <= batches &&
             h5_read_f64_nd(rf->file, PRUNE_PARTIAL "/sums", 1, &data, dims, &rank) == 0 &&
             dims[0] == (size_t)3 * rf->L + 1;
    if (g >= 0) H5Gclose(g);
    if (ok) memcpy(sums, data, sizeof *sums * dims[0]);
    free(data);
    return ok ? (int)done : 0;
}

int runfile_clear_prune_partial(RunFile *rf, char *err, size_t errlen) {
    int ok = 1;
    errno = 0;
    H5E_BEGIN_TRY {
        if (H5Lexists(rf->file, PRUNE_PARTIAL, H5P_DEFAULT) > 0)
            ok = H5Ldelete(rf->file, PRUNE_PARTIAL, H5P_DEFAULT) >= 0;
    } H5E_END_TRY;
    if (!ok) return write_failed(rf, "/" PRUNE_PARTIAL, err, errlen);
    return runfile_flush(rf, err, errlen);
}

int runfile_set_status(RunFile *rf, RunStatus status, char *err, size_t errlen) {
    const char *name = stored_status_name(status);
    char now[32] = "";
    if (strcmp(name, run_status_name(RUN_RUNNING)) != 0) now_iso8601(now, sizeof now);
    errno = 0;
    if (h5_write_attr_string(rf->file, "status", name) != 0 ||
        h5_write_attr_string(rf->file, "finished_at", now) != 0)
        return write_failed(rf, "the status", err, errlen);
    return runfile_flush(rf, err, errlen);
}

int runfile_close(RunFile *rf, char *err, size_t errlen) {
    if (!rf) return 0;
    int rc = write_train_buffer(rf, err, errlen);
    errno = 0;
    herr_t closed = -1;
    H5E_BEGIN_TRY { closed = H5Fclose(rf->file); } H5E_END_TRY;
    rf->file = -1; /* never closed twice, even when this close failed */
    if (closed < 0 && rc == 0) rc = write_failed(rf, "(close)", err, errlen);
    runfile_free(rf);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------- */

/* The arguments of one read, for running it in a child first (h5vet.h). */
typedef struct {
    const char *path;
    unsigned want;
    RunFileData *data;  /* runfile_read */
    RunStatus *status;  /* runfile_read_status */
} RunFileRead;

static int read_status(void *ctx, char *err, size_t errlen) {
    const RunFileRead *args = ctx;
    const char *path = args->path;
    *args->status = RUN_UNKNOWN;
    hid_t f = h5_open_readonly_nolock(path);
    char *value = NULL;
    if (f < 0 || h5_read_attr_string(f, "status", &value) != 0) {
        snprintf(err, errlen, "%s: not a normbench run file (no status attribute)", path);
        if (f >= 0) H5Fclose(f);
        return -1;
    }
    H5Fclose(f);
    *args->status = run_status_parse(value);
    free(value);
    return 0;
}

RunStatus runfile_read_status(const char *path, char *err, size_t errlen) {
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return RUN_UNKNOWN;
    }
    RunStatus status = RUN_UNKNOWN;
    RunFileRead args = {.path = path, .status = &status};
    return h5vet_read(read_status, &args, path, 0, 1, err, errlen) == 0 ? status : RUN_UNKNOWN;
}

void runfile_data_free(RunFileData *d) {
    free(d->scheme);
    free(d->status_text);
    for (int k = 0; k < RF_N_DATASETS; k++) free(d->data[k].data);
    memset(d, 0, sizeof *d);
}

/* What a reader that found nothing leaves (runfile_data_free is safe on it). */
static void data_init(RunFileData *d) {
    memset(d, 0, sizeof *d);
    d->status = RUN_UNKNOWN;
    d->n_layer = d->d_model = d->n_params = -1;
    d->prune_base_loss = NAN;
}

static int read_data(void *ctx, char *why, size_t whylen) {
    const RunFileRead *args = ctx;
    const char *path = args->path;
    const unsigned want = args->want;
    RunFileData *d = args->data;
    data_init(d);
    hid_t f = h5_open_readonly_nolock(path);
    if (f < 0) {
        snprintf(why, whylen, "not a readable HDF5 file (truncated or corrupt?)");
        return -1;
    }
    if (h5_read_attr_string(f, "scheme", &d->scheme) != 0) {
        snprintf(why, whylen, "not a normbench run file (no root attribute 'scheme')");
        H5Fclose(f);
        return -1;
    }
    /* a checkpoint renamed .h5 has `scheme` too, but no config_sha256; a file of another
     * format version is not read as if it were this one */
    long long version = -1;
    char *sha = NULL;
    int has_sha = h5_read_attr_string(f, "config_sha256", &sha) == 0;
    free(sha);
    if (!has_sha) {
        snprintf(why, whylen, "not a normbench run file (no root attribute 'config_sha256'; "
                 "a checkpoint?)");
        H5Fclose(f);
        return -1;
    }
    if (h5_read_attr_int64(f, "format_version", &version) != 0 ||
        version != RUNFILE_FORMAT_VERSION) {
        if (version < 0) snprintf(why, whylen, "no root attribute 'format_version'");
        else snprintf(why, whylen, "run file format_version %lld, this normbench reads %d",
                      version, RUNFILE_FORMAT_VERSION);
        H5Fclose(f);
        return -1;
    }
    if (h5_read_attr_string(f, "status", &d->status_text) != 0)
        d->status_text = strdup(run_status_name(RUN_UNKNOWN));
    d->status = run_status_parse(d->status_text);
    d->has_seed = h5_read_attr_int64(f, "seed", &d->seed) == 0;
    H5E_BEGIN_TRY {
        hid_t g = H5Lexists(f, "model", H5P_DEFAULT) > 0 ? H5Gopen2(f, "model", H5P_DEFAULT) : -1;
        if (g >= 0) {
            if (h5_read_attr_int64(g, "n_layer", &d->n_layer) != 0) d->n_layer = -1;
            if (h5_read_attr_int64(g, "d_model", &d->d_model) != 0) d->d_model = -1;
            if (h5_read_attr_int64(g, "n_params", &d->n_params) != 0) d->n_params = -1;
            H5Gclose(g);
        }
        g = H5Lexists(f, PRUNE_GROUP, H5P_DEFAULT) > 0 ? H5Gopen2(f, PRUNE_GROUP, H5P_DEFAULT)
                                                        : -1;
        if (g >= 0) {
            d->has_prune = h5_read_attr_double(g, "base_loss", &d->prune_base_loss) == 0;
            if (!d->has_prune) d->prune_base_loss = NAN;
            H5Gclose(g);
        }
    } H5E_END_TRY;
    for (int k = 0; k < RF_N_DATASETS; k++) {
        RunArray *a = &d->data[k];
        if (!(want & RF_WANT(k))) continue;
        a->present = h5_read_f64_nd(f, datasets[k].name, 3, &a->data, a->dims, &a->rank) == 0;
        if (!a->present) a->rank = 0;
    }
    H5Fclose(f);
    if (!d->status_text) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* Everything in the file read in a child (h5vet.h), before a writer opens it to touch part of
 * it: 0, or -1 with "corrupt HDF5 file: ..." when that crashed or hung. */
static int vet_whole_file(const char *path, char *why, size_t whylen) {
    RunFileData scratch; /* filled in the child only */
    RunFileRead all = {.path = path, .want = RF_WANT_ALL, .data = &scratch};
    return h5vet_run(read_data, &all, 0, why, whylen) == -2 ? -1 : 0;
}

int runfile_read(const char *path, unsigned want, RunFileData *d, char *why, size_t whylen) {
    RunFileRead args = {.path = path, .want = want, .data = d};
    data_init(d); /* what the caller frees when the child's read failed */
    return h5vet_read(read_data, &args, NULL, 0, 1, why, whylen); /* why: no path */
}

/* ---- directories of run files --------------------------------------------------------- */

char *runfile_path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int runfile_is_run_file(const char *name) {
    return name[0] != '.' && ends_with(name, ".h5") && !ends_with(name, ".ckpt.h5");
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

long runfile_list(const char *dir, int want_dirs, int (*keep)(const char *), char ***out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int oom = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (keep && !keep(e->d_name))) continue;
        char *p = runfile_path_join(dir, e->d_name);
        struct stat st;
        int ok = p && stat(p, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(p);
        if (!ok) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                oom = 1;
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            oom = 1;
            break;
        }
        n++;
    }
    closedir(d);
    if (oom) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        errno = ENOMEM;
        return -1;
    }
    if (n) qsort(names, n, sizeof *names, compare_names);
    *out = names;
    return (long)n;
}
