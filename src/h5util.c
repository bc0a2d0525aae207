/* h5util.c — shared HDF5 helpers (see h5util.h). */
#include "h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static hid_t string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                      const void *value) {
    int rc = -1;
    H5E_BEGIN_TRY {
        if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
        hid_t space = H5Screate(H5S_SCALAR);
        hid_t attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr >= 0 && H5Awrite(attr, mem_type, value) >= 0) rc = 0;
        if (attr >= 0) H5Aclose(attr);
        H5Sclose(space);
    } H5E_END_TRY;
    return rc;
}

int h5_write_attr_string(hid_t obj, const char *name, const char *value) {
    hid_t t = string_type();
    int rc = write_attr(obj, name, t, t, &value);
    H5Tclose(t);
    return rc;
}

int h5_write_attr_double(hid_t obj, const char *name, double value) {
    return write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int h5_write_attr_int64(hid_t obj, const char *name, long long value) {
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &value);
}

static int read_attr(hid_t obj, const char *name, hid_t mem_type, void *value) {
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
        if (attr >= 0 && H5Aread(attr, mem_type, value) >= 0) rc = 0;
        if (attr >= 0) H5Aclose(attr);
    } H5E_END_TRY;
    return rc;
}

int h5_read_attr_string(hid_t obj, const char *name, char **value) {
    hid_t t = string_type();
    char *raw = NULL;
    int rc = read_attr(obj, name, t, &raw);
    H5Tclose(t);
    if (rc != 0 || !raw) return -1;
    *value = strdup(raw);
    H5free_memory(raw);
    return *value ? 0 : -1;
}

int h5_read_attr_double(hid_t obj, const char *name, double *value) {
    return read_attr(obj, name, H5T_NATIVE_DOUBLE, value);
}

int h5_read_attr_int64(hid_t obj, const char *name, long long *value) {
    return read_attr(obj, name, H5T_NATIVE_LLONG, value);
}

int h5_write_f32(hid_t loc, const char *name, const float *data, size_t rows, size_t cols) {
    hsize_t dims[2] = {rows, cols};
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t space = H5Screate_simple(cols ? 2 : 1, dims, NULL);
        hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)
            rc = 0;
        if (d >= 0) H5Dclose(d);
        H5Sclose(space);
    } H5E_END_TRY;
    return rc;
}

int h5_read_f32(hid_t loc, const char *name, float *data, size_t rows, size_t cols) {
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
        hid_t space = d >= 0 ? H5Dget_space(d) : -1;
        hsize_t dims[2] = {0, 0};
        int rank = space >= 0 ? H5Sget_simple_extent_dims(space, dims, NULL) : -1;
        int shape_ok = rank == (cols ? 2 : 1) && dims[0] == rows && (!cols || dims[1] == cols);
        if (shape_ok && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)
            rc = 0;
        if (space >= 0) H5Sclose(space);
        if (d >= 0) H5Dclose(d);
    } H5E_END_TRY;
    return rc;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int h5_commit_file(const char *tmp_path, const char *path, char *err, size_t errlen) {
    if (fsync_path(tmp_path, O_RDONLY) != 0 || rename(tmp_path, path) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp_path);
        return -1;
    }
    char *copy = strdup(path);
    if (copy) {
        fsync_path(dirname(copy), O_RDONLY | O_DIRECTORY);
        free(copy);
    }
    return 0;
}

hid_t h5_open_readonly_nolock(const char *path) {
    hid_t file = -1;
    H5E_BEGIN_TRY {
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (fapl >= 0) {
            H5Pset_file_locking(fapl, 0, 1);
            file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
            H5Pclose(fapl);
        }
    } H5E_END_TRY;
    return file;
}

int h5_read_f64_nd(hid_t loc, const char *name, int max_rank, double **data, size_t *dims,
                   int *rank) {
    int rc = -1;
    *data = NULL;
    *rank = 0;
    for (int i = 0; i < max_rank; i++) dims[i] = 0;
    if (max_rank < 1 || max_rank > 3) return -1;
    H5E_BEGIN_TRY {
        hid_t d = H5Lexists(loc, name, H5P_DEFAULT) > 0 ? H5Dopen2(loc, name, H5P_DEFAULT) : -1;
        hid_t type = d >= 0 ? H5Dget_type(d) : -1;
        H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
        hid_t space = d >= 0 ? H5Dget_space(d) : -1;
        hsize_t hd[3] = {0, 0, 0};
        int r = space >= 0 && H5Sget_simple_extent_ndims(space) >= 1 &&
                        H5Sget_simple_extent_ndims(space) <= max_rank
                    ? H5Sget_simple_extent_dims(space, hd, NULL)
                    : -1;
        /* The element count comes from the file: computed without wrapping, and held to
         * the bytes the dataset stores (normbench writes every element it extends a series
         * by, uncompressed), so that a corrupt extent cannot ask for terabytes. */
        size_t n = 1;
        int sane = r >= 1;
        for (int i = 0; sane && i < r; i++) {
            if (hd[i] != 0 && n > SIZE_MAX / sizeof(double) / (size_t)hd[i]) sane = 0;
            else n *= (size_t)hd[i];
        }
        size_t elem = type >= 0 ? H5Tget_size(type) : 0;
        if (sane && n > 0 && (elem == 0 || n > H5Dget_storage_size(d) / elem)) sane = 0;
        if (sane && (cls == H5T_INTEGER || cls == H5T_FLOAT)) {
            double *buf = n ? malloc(n * sizeof *buf) : NULL;
            if (n == 0 || (buf && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                          buf) >= 0)) {
                *data = buf;
                *rank = r;
                for (int i = 0; i < r; i++) dims[i] = (size_t)hd[i];
                rc = 0;
            } else {
                free(buf);
            }
        }
        if (space >= 0) H5Sclose(space);
        if (type >= 0) H5Tclose(type);
        if (d >= 0) H5Dclose(d);
    } H5E_END_TRY;
    return rc;
}

/* ---- series ------------------------------------------------------------------------- */

int h5_series_create(hid_t loc, const char *name, hid_t file_type, int rank,
                     const size_t *tail, size_t chunk_rows) {
    if (rank < 1 || rank > 3 || chunk_rows == 0) return -1;
    hsize_t dims[3] = {0, 0, 0}, maxdims[3] = {H5S_UNLIMITED, 0, 0}, chunk[3] = {chunk_rows, 0, 0};
    for (int i = 1; i < rank; i++) dims[i] = maxdims[i] = chunk[i] = tail[i - 1];
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t space = H5Screate_simple(rank, dims, maxdims);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0) {
            hid_t d = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (d >= 0) {
                rc = 0;
                H5Dclose(d);
            }
        }
        if (dcpl >= 0) H5Pclose(dcpl);
        if (space >= 0) H5Sclose(space);
    } H5E_END_TRY;
    return rc;
}

/* Opens a series and reads its shape; returns the dataset or -1. */
static hid_t series_open(hid_t loc, const char *name, int *rank, hsize_t dims[3]) {
    hid_t d = -1;
    H5E_BEGIN_TRY {
        d = H5Lexists(loc, name, H5P_DEFAULT) > 0 ? H5Dopen2(loc, name, H5P_DEFAULT) : -1;
        hid_t space = d >= 0 ? H5Dget_space(d) : -1;
        int r = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
        if (r < 1 || r > 3 || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
            if (d >= 0) H5Dclose(d);
            d = -1;
        }
        *rank = r;
        if (space >= 0) H5Sclose(space);
    } H5E_END_TRY;
    return d;
}

int h5_series_append(hid_t loc, const char *name, hid_t mem_type, const void *rows,
                     size_t n_rows) {
    int rank = 0;
    hsize_t dims[3] = {0, 0, 0};
    hid_t d = series_open(loc, name, &rank, dims);
    if (d < 0) return -1;
    if (n_rows == 0) {
        H5Dclose(d);
        return 0;
    }
    int rc = -1;
    H5E_BEGIN_TRY {
        hsize_t start[3] = {dims[0], 0, 0}, count[3] = {n_rows, dims[1], dims[2]};
        hsize_t grown[3] = {dims[0] + n_rows, dims[1], dims[2]};
        if (H5Dset_extent(d, grown) >= 0) {
            hid_t file_space = H5Dget_space(d);
            hid_t mem_space = H5Screate_simple(rank, count, NULL);
            if (file_space >= 0 && mem_space >= 0 &&
                H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                H5Dwrite(d, mem_type, mem_space, file_space, H5P_DEFAULT, rows) >= 0)
                rc = 0;
            if (mem_space >= 0) H5Sclose(mem_space);
            if (file_space >= 0) H5Sclose(file_space);
        }
        H5Dclose(d);
    } H5E_END_TRY;
    return rc;
}

long long h5_series_rows(hid_t loc, const char *name) {
    int rank = 0;
    hsize_t dims[3] = {0, 0, 0};
    hid_t d = series_open(loc, name, &rank, dims);
    if (d < 0) return -1;
    H5Dclose(d);
    return (long long)dims[0];
}

int h5_series_set_rows(hid_t loc, const char *name, size_t n_rows) {
    int rank = 0;
    hsize_t dims[3] = {0, 0, 0};
    hid_t d = series_open(loc, name, &rank, dims);
    if (d < 0) return -1;
    dims[0] = n_rows;
    int rc = -1;
    H5E_BEGIN_TRY { rc = H5Dset_extent(d, dims) >= 0 ? 0 : -1; } H5E_END_TRY;
    H5Dclose(d);
    return rc;
}

int h5_write_f64(hid_t loc, const char *name, const double *data, size_t n) {
    hsize_t dims[1] = {n};
    int rc = -1;
    H5E_BEGIN_TRY {
        if (H5Lexists(loc, name, H5P_DEFAULT) > 0) H5Ldelete(loc, name, H5P_DEFAULT);
        hid_t space = H5Screate_simple(1, dims, NULL);
        hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)
            rc = 0;
        if (d >= 0) H5Dclose(d);
        H5Sclose(space);
    } H5E_END_TRY;
    return rc;
}
