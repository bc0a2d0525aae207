/* h5util.h — the few HDF5 idioms normbench's files share (checkpoints, run files, bench
 * dumps): scalar and string attributes, fp32 and float64 datasets, numeric datasets read as
 * double, extendible series, lock-free read-only opening, and the atomic temp-file + fsync +
 * rename commit. Strings are variable-length UTF-8 so h5py reads them as str. Functions
 * return 0 or -1 unless their comment says otherwise (a file id, a row count); HDF5's own
 * error stack printing is suppressed inside them. */
#ifndef NORMBENCH_H5UTIL_H
#define NORMBENCH_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

int h5_write_attr_string(hid_t obj, const char *name, const char *value);
int h5_write_attr_double(hid_t obj, const char *name, double value);
int h5_write_attr_int64(hid_t obj, const char *name, long long value);
/* *value is malloc'ed */
int h5_read_attr_string(hid_t obj, const char *name, char **value);
int h5_read_attr_double(hid_t obj, const char *name, double *value);
int h5_read_attr_int64(hid_t obj, const char *name, long long *value);

/* A contiguous fp32 dataset of rank 1 or 2 (dims[1] == 0 means rank 1). */
int h5_write_f32(hid_t loc, const char *name, const float *data, size_t rows, size_t cols);
/* Reads an fp32 dataset that must have exactly the given shape. */
int h5_read_f32(hid_t loc, const char *name, float *data, size_t rows, size_t cols);

/* fsync(path) then rename(tmp, path) and fsync the directory: a crash leaves either the
 * old file or the new one, never a torn one. */
int h5_commit_file(const char *tmp_path, const char *path, char *err, size_t errlen);

/* Opens an existing file read-only with HDF5's file locking off, so that a reader (the
 * report) can open a run file that a running writer holds; HDF5's error printing is
 * suppressed. Returns the file id or -1. Files normbench did not just write are vetted
 * first (h5vet.h). */
hid_t h5_open_readonly_nolock(const char *path);

/* Reads a numeric dataset (any integer or float type, converted to double) of rank
 * 1..max_rank (max_rank <= 3). On success *data is malloc'ed (NULL when the dataset has no
 * elements), dims[0..*rank-1] hold its shape and dims[*rank..max_rank-1] are 0. Returns -1
 * (nothing allocated) when `name` (a path relative to loc, e.g. "train/loss") is missing,
 * not numeric, or of another rank. */
int h5_read_f64_nd(hid_t loc, const char *name, int max_rank, double **data, size_t *dims,
                   int *rank);

/* ---- series: datasets that grow along their first axis (run files) ------------------- */

/* Creates an empty dataset `name` of type file_type, rank 1..3, shape [0, tail[0], ...]
 * (tail holds rank-1 sizes; NULL for rank 1), extendible without limit along axis 0 and
 * chunked by chunk_rows rows. Returns 0 or -1. */
int h5_series_create(hid_t loc, const char *name, hid_t file_type, int rank,
                     const size_t *tail, size_t chunk_rows);
/* Appends n_rows rows (each the product of the tail sizes, in mem_type) at the end. */
int h5_series_append(hid_t loc, const char *name, hid_t mem_type, const void *rows,
                     size_t n_rows);
/* Number of rows (the extent of axis 0), or -1 when the dataset is missing. */
long long h5_series_rows(hid_t loc, const char *name);
/* Cuts (or extends with fill values) the series to n_rows rows. */
int h5_series_set_rows(hid_t loc, const char *name, size_t n_rows);

/* A contiguous 1-D float64 dataset of n values, replacing any dataset of that name. */
int h5_write_f64(hid_t loc, const char *name, const double *data, size_t n);

#endif
