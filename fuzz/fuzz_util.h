/* fuzz_util.h — what the fuzz targets share: the input written to a private temp file (the
 * readers under test take paths, as normbench gives them), HDF5's error printing off and the
 * time limit of the child that reads HDF5 files first (src/h5vet.c) lowered. */
#ifndef NORMBENCH_FUZZ_UTIL_H
#define NORMBENCH_FUZZ_UTIL_H

#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "h5vet.h"

/* The input as a file: /dev/shm when present (no disk I/O per execution), one per process. */
static inline const char *fuzz_input_file(const uint8_t *data, size_t size) {
    static char path[128];
    if (!path[0]) {
        H5dont_atexit();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        h5vet_set_timeout(0.2); /* a normbench file's metadata reads in milliseconds */
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/nb-fuzz-%d.bin", dir, (int)getpid());
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    close(fd);
    return path;
}

#endif
