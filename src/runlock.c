/* runlock.c — the per-run advisory lock (see runlock.h). */
#include "runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int lock_path(const char *run_file, char *out, size_t len) {
    return snprintf(out, len, "%s.lock", run_file) < (int)len ? 0 : -1;
}

static struct flock whole_file(short type) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file, however long */
    return fl;
}

int runlock_acquire(const char *run_file, RunLock *lk, char *err, size_t errlen) {
    char path[4096];
    lk->fd = -1;
    if (lock_path(run_file, path, sizeof path) != 0) {
        snprintf(err, errlen, "%s: path too long for its lock file", run_file);
        return RUNLOCK_ERROR;
    }
    /* O_CLOEXEC: a process the run starts must not keep the lock alive after it dies */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create lock file: %s", path, strerror(errno));
        return RUNLOCK_ERROR;
    }
    struct flock fl = whole_file(F_WRLCK);
    int rc;
    while ((rc = fcntl(fd, F_SETLK, &fl)) != 0 && errno == EINTR) {}
    if (rc != 0) {
        int e = errno;
        close(fd);
        if (e == EACCES || e == EAGAIN) {
            snprintf(err, errlen, "%s: in progress in another process (lock %s held)", run_file,
                     path);
            return RUNLOCK_BUSY;
        }
        snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(e));
        return RUNLOCK_ERROR;
    }
    lk->fd = fd;
    return RUNLOCK_HELD;
}

void runlock_release(RunLock *lk) {
    if (lk->fd < 0) return;
    close(lk->fd); /* closing drops the process's record locks on the file */
    lk->fd = -1;
}

int runlock_is_busy(const char *run_file) {
    char path[4096];
    if (lock_path(run_file, path, sizeof path) != 0) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct flock fl = whole_file(F_WRLCK);
    int busy = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return busy;
}
