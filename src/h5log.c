/* h5log.c — run files (DESIGN.md section 5) and the RunRecorder observer (see h5log.h;
 * the layout is documented in docs/run-file.md). */
#include "h5log.h"

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
#include "provenance.h"
#include "schemes.h"
#include "sha256.h"

struct H5Log {
    char *path;
    hid_t file;
    int L;
    int n_buf;
    TrainStepInfo buf[H5LOG_TRAIN_BUFFER];
};

/* Series of each group, in the order docs/run-file.md lists them. */
static const char *const train_series[] = {"train/step", "train/loss", "train/lr",
                                           "train/grad_norm", "train/tokens_per_s"};
static const char *const eval_series[] = {"eval/step", "eval/loss", "eval/ppl"};
static const char *const layer_series[] = {"layers/step", "layers/variance", "layers/angular",
                                           "layers/angular_last", "layers/grad_norm"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum { TRAIN_CHUNK = 1024, EVAL_CHUNK = 256, LAYER_CHUNK = 16 };

/* ---- small helpers ---------------------------------------------------------------------- */

static void now_iso8601(char *out, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_failed(const H5Log *log, const char *what, char *err, size_t errlen) {
    int e = errno;
    snprintf(err, errlen, "%s: cannot write %s: %s", log->path, what,
             e ? strerror(e) : "HDF5 write error (disk full?)");
    return -1;
}

static hid_t make_group(hid_t loc, const char *name) {
    hid_t g = -1;
    H5E_BEGIN_TRY { g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT); } H5E_END_TRY;
    return g;
}

/* ---- /scheme: a compound table [L, 2] ------------------------------------------------ */

typedef struct {
    int layer;          /* 1..L */
    int sublayer;       /* enum attn | mlp */
    int placement;      /* enum pre | post */
    float in_scale, residual_scale;
    int init;           /* enum normal | xavier_normal */
    float init_std;
    float init_gain[SUBLAYER_MAX_WEIGHTS];
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
    const char *init_names[2] = {init_kind_name(INIT_NORMAL), init_kind_name(INIT_XAVIER)};
    SchemeRecord *rec = calloc((size_t)2 * L, sizeof *rec);
    if (!rec) return -1;
    for (int i = 0; i < 2 * L; i++) {
        const SublayerSpec *sp = &specs[i];
        rec[i] = (SchemeRecord){.layer = i / 2 + 1, .sublayer = i % 2,
                                .placement = (int)sp->placement, .in_scale = sp->in_scale,
                                .residual_scale = sp->residual_scale, .init = (int)sp->init,
                                .init_std = sp->init_std};
        memcpy(rec[i].init_gain, sp->init_gain, sizeof rec[i].init_gain);
    }
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t sub_t = enum_type(sub_names, 2), place_t = enum_type(place_names, 2),
              init_t = enum_type(init_names, 2);
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
        hid_t ft = H5Tcopy(t);
        H5Tpack(ft);
        hsize_t dims[2] = {(hsize_t)L, 2};
        hid_t space = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(file, "scheme", ft, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rec) >= 0) {
            const SchemeRow *row = run->schemes[0];
            const SchemeParams *p = &run->scheme_params;
            /* the constants the scheme functions derive from the depth (or the overrides) */
            rc = h5_write_attr_string(d, "name", row->name) == 0 &&
                         h5_write_attr_string(d, "description", row->description) == 0 &&
                         h5_write_attr_string(d, "source", row->source) == 0 &&
                         h5_write_attr_string(d, "columns", "attn, mlp") == 0 &&
                         h5_write_attr_double(d, "init_std", p->init_std) == 0 &&
                         h5_write_attr_double(d, "mixln_boundary", scheme_mixln_boundary(p, L)) == 0 &&
                         h5_write_attr_double(d, "deepnorm_alpha", scheme_deepnorm_alpha(p, L)) == 0 &&
                         h5_write_attr_double(d, "deepnorm_beta", scheme_deepnorm_beta(p, L)) == 0
                     ? 0
                     : -1;
        }
        if (d >= 0) H5Dclose(d);
        H5Sclose(space);
        H5Tclose(ft), H5Tclose(t), H5Tclose(gain_t);
        H5Tclose(init_t), H5Tclose(place_t), H5Tclose(sub_t);
    } H5E_END_TRY;
    free(rec);
    return rc;
}

/* ---- creating and reopening -------------------------------------------------------------- */

static H5Log *log_new(const char *path, int L) {
    H5Log *log = calloc(1, sizeof *log);
    if (!log) return NULL;
    log->path = strdup(path);
    log->file = -1;
    log->L = L;
    if (!log->path) {
        free(log);
        return NULL;
    }
    return log;
}

static void log_free(H5Log *log) {
    if (!log) return;
    if (log->file >= 0) H5E_BEGIN_TRY { H5Fclose(log->file); } H5E_END_TRY;
    free(log->path);
    free(log);
}

static int write_layout(H5Log *log, const NbConfig *run, const H5LogRunInfo *info,
                        const SublayerSpec *specs, const char *yaml) {
    const ModelConfig *mc = &run->model;
    const hid_t f = log->file;
    const int L = mc->n_layer;
    char sha[65], host[256] = "unknown", commit[64], now[32];
    sha256_hex(yaml, strlen(yaml), sha);
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    provenance_git_commit(commit, sizeof commit);
    now_iso8601(now, sizeof now);
    errno = 0; /* write_failed reports the system error of the writes below */
    int ok = h5_write_attr_int64(f, "format_version", H5LOG_FORMAT_VERSION) == 0 &&
             h5_write_attr_string(f, "normbench_version", NORMBENCH_VERSION) == 0 &&
             h5_write_attr_string(f, "git_commit", commit) == 0 &&
             h5_write_attr_string(f, "config_yaml", yaml) == 0 &&
             h5_write_attr_string(f, "config_sha256", sha) == 0 &&
             h5_write_attr_string(f, "scheme", run->schemes[0]->name) == 0 &&
             h5_write_attr_int64(f, "seed", (long long)run->seeds[0]) == 0 &&
             h5_write_attr_string(f, "backend", info && info->backend ? info->backend : "unknown") == 0 &&
             h5_write_attr_string(f, "device", info && info->device ? info->device : "unknown") == 0 &&
             h5_write_attr_string(f, "host", host) == 0 &&
             h5_write_attr_string(f, "started_at", now) == 0 &&
             h5_write_attr_string(f, "status", "running") == 0 &&
             h5_write_attr_string(f, "finished_at", "") == 0 &&
             h5_write_attr_int64(f, "steps", run->train.steps) == 0;
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

    hid_t gt = ok ? make_group(f, "train") : -1, ge = ok ? make_group(f, "eval") : -1,
          gl = ok ? make_group(f, "layers") : -1;
    ok = ok && gt >= 0 && ge >= 0 && gl >= 0;
    for (size_t i = 0; ok && i < COUNT(train_series); i++)
        ok = h5_series_create(f, train_series[i], i == 0 ? H5T_STD_I64LE : H5T_IEEE_F64LE, 1,
                              NULL, TRAIN_CHUNK) == 0;
    for (size_t i = 0; ok && i < COUNT(eval_series); i++)
        ok = h5_series_create(f, eval_series[i], i == 0 ? H5T_STD_I64LE : H5T_IEEE_F64LE, 1,
                              NULL, EVAL_CHUNK) == 0;
    const size_t P = (size_t)L + 1, sq[2] = {P, P}, nl = (size_t)L;
    ok = ok && h5_series_create(f, "layers/step", H5T_STD_I64LE, 1, NULL, LAYER_CHUNK) == 0 &&
         h5_series_create(f, "layers/variance", H5T_IEEE_F64LE, 2, &P, LAYER_CHUNK) == 0 &&
         h5_series_create(f, "layers/angular", H5T_IEEE_F64LE, 3, sq, LAYER_CHUNK) == 0 &&
         h5_series_create(f, "layers/angular_last", H5T_IEEE_F64LE, 3, sq, LAYER_CHUNK) == 0 &&
         h5_series_create(f, "layers/grad_norm", H5T_IEEE_F64LE, 2, &nl, LAYER_CHUNK) == 0;
    /* the probe set */
    ok = ok && h5_write_attr_int64(gl, "every", run->metrics.every) == 0 &&
         h5_write_attr_int64(gl, "probe_batches", run->metrics.probe_batches) == 0 &&
         h5_write_attr_int64(gl, "batch", run->train.batch) == 0 &&
         h5_write_attr_int64(gl, "seq_len", mc->seq_len) == 0 &&
         h5_write_attr_int64(ge, "batches", run->eval.batches) == 0;
    if (gt >= 0) H5Gclose(gt);
    if (ge >= 0) H5Gclose(ge);
    if (gl >= 0) H5Gclose(gl);
    return ok ? 0 : -1;
}

H5Log *h5log_create(const char *path, const NbConfig *run, const H5LogRunInfo *info,
                    char *err, size_t errlen) {
    const int L = run->model.n_layer;
    SublayerSpec *specs = malloc(sizeof *specs * 2 * (size_t)L);
    char *yaml = NULL;
    H5Log *log = log_new(path, L);
    if (!specs || !log || config_write_yaml(run, &yaml) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (train_build_specs(run, specs, err, errlen) != 0) goto fail;
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
    H5E_BEGIN_TRY { log->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); } H5E_END_TRY;
    if (log->file < 0) {
        snprintf(err, errlen, "%s: cannot create run file: %s", path,
                 errno ? strerror(errno) : "HDF5 error");
        goto fail;
    }
    if (write_layout(log, run, info, specs, yaml) != 0 || h5log_flush(log, err, errlen) != 0) {
        write_failed(log, "the run file layout", err, errlen);
        goto fail;
    }
    free(specs);
    free(yaml);
    return log;
fail:
    free(specs);
    free(yaml);
    log_free(log);
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

static int truncate_group(hid_t file, const char *const *names, size_t n, int start_step) {
    long long keep = rows_through(file, names[0], start_step);
    if (keep < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (h5_series_set_rows(file, names[i], (size_t)keep) != 0) return -1;
    return 0;
}

H5Log *h5log_reopen(const char *path, const NbConfig *run, int start_step, char *err,
                    size_t errlen) {
    H5Log *log = log_new(path, run->model.n_layer);
    char *yaml = NULL, *stored_sha = NULL;
    if (!log || config_write_yaml(run, &yaml) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (access(path, R_OK | W_OK) != 0) {
        snprintf(err, errlen, "%s: cannot reopen run file: %s", path, strerror(errno));
        goto fail;
    }
    H5E_BEGIN_TRY { log->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT); } H5E_END_TRY;
    long long version = 0;
    if (log->file < 0 || h5_read_attr_int64(log->file, "format_version", &version) != 0 ||
        h5_read_attr_string(log->file, "config_sha256", &stored_sha) != 0) {
        snprintf(err, errlen, "%s: not a normbench run file (or locked by a running writer)",
                 path);
        goto fail;
    }
    char sha[65];
    sha256_hex(yaml, strlen(yaml), sha);
    if (version != H5LOG_FORMAT_VERSION) {
        snprintf(err, errlen, "%s: run file format_version %lld, this normbench writes %d", path,
                 version, H5LOG_FORMAT_VERSION);
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
    int ok = truncate_group(log->file, train_series, COUNT(train_series), start_step) == 0 &&
             truncate_group(log->file, eval_series, COUNT(eval_series), start_step) == 0 &&
             truncate_group(log->file, layer_series, COUNT(layer_series), start_step) == 0;
    H5E_BEGIN_TRY {
        if (ok && H5Lexists(log->file, "prune", H5P_DEFAULT) > 0)
            ok = H5Ldelete(log->file, "prune", H5P_DEFAULT) >= 0;
    } H5E_END_TRY;
    ok = ok && h5_write_attr_string(log->file, "status", "running") == 0 &&
         h5_write_attr_string(log->file, "finished_at", "") == 0 &&
         h5_write_attr_string(log->file, "resumed_at", now) == 0 &&
         h5_write_attr_int64(log->file, "resumed_from_step", start_step) == 0;
    if (!ok) {
        write_failed(log, "the resumed run file", err, errlen);
        goto fail;
    }
    if (h5log_flush(log, err, errlen) != 0) goto fail;
    free(yaml);
    free(stored_sha);
    return log;
fail:
    free(yaml);
    free(stored_sha);
    log_free(log);
    return NULL;
}

/* ---- appending ---------------------------------------------------------------------------- */

static int write_train_buffer(H5Log *log, char *err, size_t errlen) {
    const int n = log->n_buf;
    if (n == 0) return 0;
    long long steps[H5LOG_TRAIN_BUFFER];
    double cols[4][H5LOG_TRAIN_BUFFER];
    for (int i = 0; i < n; i++) {
        const TrainStepInfo *r = &log->buf[i];
        steps[i] = r->step;
        cols[0][i] = r->loss, cols[1][i] = r->lr, cols[2][i] = r->grad_norm;
        cols[3][i] = r->tokens_per_s;
    }
    errno = 0;
    int ok = h5_series_append(log->file, train_series[0], H5T_NATIVE_LLONG, steps, (size_t)n) == 0;
    for (int c = 0; ok && c < 4; c++)
        ok = h5_series_append(log->file, train_series[c + 1], H5T_NATIVE_DOUBLE, cols[c],
                              (size_t)n) == 0;
    if (!ok) return write_failed(log, "/train", err, errlen);
    log->n_buf = 0;
    return 0;
}

int h5log_flush(H5Log *log, char *err, size_t errlen) {
    if (write_train_buffer(log, err, errlen) != 0) return -1;
    errno = 0;
    herr_t rc = -1;
    H5E_BEGIN_TRY { rc = H5Fflush(log->file, H5F_SCOPE_GLOBAL); } H5E_END_TRY;
    return rc >= 0 ? 0 : write_failed(log, "(flush)", err, errlen);
}

int h5log_append_train(H5Log *log, const TrainStepInfo *row, char *err, size_t errlen) {
    log->buf[log->n_buf++] = *row;
    return log->n_buf == H5LOG_TRAIN_BUFFER ? h5log_flush(log, err, errlen) : 0;
}

int h5log_append_eval(H5Log *log, int step, double loss, char *err, size_t errlen) {
    long long s = step;
    double ppl = exp(loss);
    errno = 0;
    if (h5_series_append(log->file, "eval/step", H5T_NATIVE_LLONG, &s, 1) != 0 ||
        h5_series_append(log->file, "eval/loss", H5T_NATIVE_DOUBLE, &loss, 1) != 0 ||
        h5_series_append(log->file, "eval/ppl", H5T_NATIVE_DOUBLE, &ppl, 1) != 0)
        return write_failed(log, "/eval", err, errlen);
    return h5log_flush(log, err, errlen);
}

int h5log_append_probe(H5Log *log, const LayerProbe *p, char *err, size_t errlen) {
    if (p->L != log->L) {
        snprintf(err, errlen, "%s: probe of %d layers for a %d-layer run", log->path, p->L,
                 log->L);
        return -1;
    }
    long long s = p->step;
    errno = 0;
    if (h5_series_append(log->file, "layers/step", H5T_NATIVE_LLONG, &s, 1) != 0 ||
        h5_series_append(log->file, "layers/variance", H5T_NATIVE_DOUBLE, p->variance, 1) != 0 ||
        h5_series_append(log->file, "layers/angular", H5T_NATIVE_DOUBLE, p->angular, 1) != 0 ||
        h5_series_append(log->file, "layers/angular_last", H5T_NATIVE_DOUBLE, p->angular_last,
                         1) != 0 ||
        h5_series_append(log->file, "layers/grad_norm", H5T_NATIVE_DOUBLE, p->grad_norm, 1) != 0)
        return write_failed(log, "/layers", err, errlen);
    return h5log_flush(log, err, errlen);
}

int h5log_write_prune(H5Log *log, const PruneResult *p, int step, char *err, size_t errlen) {
    if (p->L != log->L) {
        snprintf(err, errlen, "%s: pruning of %d layers for a %d-layer run", log->path, p->L,
                 log->L);
        return -1;
    }
    errno = 0;
    hid_t g = -1;
    H5E_BEGIN_TRY {
        g = H5Lexists(log->file, "prune", H5P_DEFAULT) > 0
                ? H5Gopen2(log->file, "prune", H5P_DEFAULT)
                : H5Gcreate2(log->file, "prune", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    } H5E_END_TRY;
    int ok = g >= 0 && h5_write_f64(g, "block", p->block, (size_t)p->L) == 0 &&
             h5_write_f64(g, "attn", p->attn, (size_t)p->L) == 0 &&
             h5_write_f64(g, "mlp", p->mlp, (size_t)p->L) == 0 &&
             h5_write_attr_double(g, "base_loss", p->base_loss) == 0 &&
             h5_write_attr_double(g, "base_ppl", exp(p->base_loss)) == 0 &&
             h5_write_attr_int64(g, "batches", p->batches) == 0 &&
             h5_write_attr_int64(g, "step", step) == 0;
    if (g >= 0) H5Gclose(g);
    if (!ok) return write_failed(log, "/prune", err, errlen);
    return h5log_flush(log, err, errlen);
}

int h5log_set_status(H5Log *log, const char *status, char *err, size_t errlen) {
    char now[32] = "";
    if (strcmp(status, "running") != 0) now_iso8601(now, sizeof now);
    errno = 0;
    if (h5_write_attr_string(log->file, "status", status) != 0 ||
        h5_write_attr_string(log->file, "finished_at", now) != 0)
        return write_failed(log, "the status", err, errlen);
    return h5log_flush(log, err, errlen);
}

int h5log_close(H5Log *log, char *err, size_t errlen) {
    if (!log) return 0;
    int rc = write_train_buffer(log, err, errlen);
    errno = 0;
    herr_t closed = -1;
    H5E_BEGIN_TRY { closed = H5Fclose(log->file); } H5E_END_TRY;
    log->file = -1;
    if (closed < 0 && rc == 0) rc = write_failed(log, "(close)", err, errlen);
    log_free(log);
    return rc;
}

const char *h5log_path(const H5Log *log) { return log->path; }

int h5log_read_status(const char *path, char *status, size_t len, char *err, size_t errlen) {
    if (len) status[0] = '\0';
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    hid_t f = h5_open_readonly_nolock(path);
    char *value = NULL;
    if (f < 0 || h5_read_attr_string(f, "status", &value) != 0) {
        snprintf(err, errlen, "%s: not a normbench run file (no status attribute)", path);
        if (f >= 0) H5Fclose(f);
        return -1;
    }
    H5Fclose(f);
    snprintf(status, len, "%s", value);
    free(value);
    return 0;
}

/* ---- the recorder ------------------------------------------------------------------------- */

struct RunRecorder {
    char *path;
    const Dataset *ds;
    const Backend *be;
    H5Log *log;
    ProbeSet probe;   /* metrics.probe_batches validation batches */
    ProbeSet evalset; /* eval.batches validation batches, for pruning */
    LayerProbe lp;
    int every, prune, accum, steps, L;
};

RunRecorder *run_recorder_create(const char *path, const Dataset *ds, const Backend *be) {
    RunRecorder *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->path = strdup(path);
    if (!r->path) {
        free(r);
        return NULL;
    }
    r->ds = ds;
    r->be = be;
    return r;
}

static void recorder_release_probes(RunRecorder *r) {
    probe_set_free(&r->probe);
    probe_set_free(&r->evalset);
    layer_probe_free(&r->lp);
}

static int rec_on_start(void *ctx, Model *m, const NbConfig *run, int start_step, char *err,
                        size_t errlen) {
    RunRecorder *r = ctx;
    recorder_release_probes(r);
    h5log_close(r->log, err, errlen);
    r->log = NULL;
    r->every = run->metrics.every;
    r->prune = run->metrics.prune;
    r->accum = run->train.grad_accum > 0 ? run->train.grad_accum : 1;
    r->steps = run->train.steps;
    r->L = run->model.n_layer;
    const int B = model_batch(m);
    if (layer_probe_alloc(&r->lp, r->L) != 0) {
        snprintf(err, errlen, "%s: out of memory for probes", r->path);
        return -1;
    }
    if (r->every > 0 &&
        probe_set_from_val(&r->probe, r->ds, run->metrics.probe_batches, B, err, errlen) != 0)
        return -1;
    if (r->prune && probe_set_from_val(&r->evalset, r->ds, run->eval.batches, B, err, errlen) != 0)
        return -1;
    H5LogRunInfo info = {.backend = r->be ? r->be->name : "unknown",
                         .device = r->be ? r->be->device : "unknown",
                         .n_params = model_params(m)->total};
    if (start_step > 0 && access(r->path, F_OK) == 0)
        r->log = h5log_reopen(r->path, run, start_step, err, errlen);
    else
        r->log = h5log_create(r->path, run, &info, err, errlen);
    return r->log ? 0 : -1;
}

static int rec_on_step(void *ctx, Model *m, const TrainStepInfo *info, char *err,
                       size_t errlen) {
    RunRecorder *r = ctx;
    if (h5log_append_train(r->log, info, err, errlen) != 0) return -1;
    if (r->every <= 0 || info->step % r->every != 0) return 0;
    /* gradients of this step first: the probe's forward passes leave them alone, but nothing
     * else may run between the optimizer step and this read (DESIGN.md section 4) */
    r->lp.step = info->step;
    metrics_grad_norms(m, 1.0 / r->accum, &r->lp);
    if (metrics_hidden_probes(m, &r->probe, &r->lp, err, errlen) != 0) return -1;
    return h5log_append_probe(r->log, &r->lp, err, errlen);
}

static int rec_on_eval(void *ctx, Model *m, int step, double val_loss, char *err,
                       size_t errlen) {
    (void)m;
    RunRecorder *r = ctx;
    return h5log_append_eval(r->log, step, val_loss, err, errlen);
}

static int rec_on_end(void *ctx, Model *m, RunStatus status, int step, char *err,
                      size_t errlen) {
    RunRecorder *r = ctx;
    const char *name = run_status_name(status);
    /* stopped early on request (--stop-after, a signal): resumable, so still "running" */
    int stopped = strcmp(name, "stopped") == 0 || (status == RUN_FINISHED && step < r->steps);
    int rc = 0;
    if (!stopped && status == RUN_FINISHED && r->prune) {
        PruneResult pr;
        if (prune_result_alloc(&pr, r->L) != 0) {
            snprintf(err, errlen, "%s: out of memory for pruning", r->path);
            rc = -1;
        } else {
            rc = metrics_prune(m, &r->evalset, &pr, err, errlen) != 0 ||
                         h5log_write_prune(r->log, &pr, step, err, errlen) != 0
                     ? -1
                     : 0;
            prune_result_free(&pr);
        }
    }
    if (rc == 0) rc = h5log_set_status(r->log, stopped ? "running" : name, err, errlen);
    else h5log_set_status(r->log, "failed", NULL, 0);
    char cerr[512];
    int closed = h5log_close(r->log, cerr, sizeof cerr);
    r->log = NULL;
    if (rc == 0 && closed != 0) {
        snprintf(err, errlen, "%s", cerr);
        rc = -1;
    }
    return rc;
}

TrainObserver run_recorder_observer(RunRecorder *r) {
    return (TrainObserver){.ctx = r, .on_start = rec_on_start, .on_step = rec_on_step,
                           .on_eval = rec_on_eval, .on_end = rec_on_end};
}

void run_recorder_destroy(RunRecorder *r) {
    if (!r) return;
    if (r->log) {
        char err[256];
        h5log_set_status(r->log, "failed", err, sizeof err);
        h5log_close(r->log, err, sizeof err);
    }
    recorder_release_probes(r);
    free(r->path);
    free(r);
}
