/* runlock.h — the per-run advisory lock: who owns a run's files on disk.
 *
 * Owns the lock file beside each run file (<run>.h5.lock) and the POSIX record lock
 * (fcntl F_SETLK, whole file, exclusive) on it. A process that trains a run holds its lock
 * from before it decides anything about the run's files (start over, resume, set damaged
 * files aside) until the run file is closed; the kernel drops the lock when the process
 * dies, kill -9 included, so a lock is never stale. The lock file itself is never deleted:
 * unlinking it would let a second process lock a fresh inode while the first still holds
 * the old one. Nothing else in normbench takes the lock; readers (report, tables, export)
 * need none, since the run file is flushed at consistent points.
 *
 * fcntl locks belong to a process, not a descriptor: a child of fork() does not inherit
 * them, and closing any descriptor of the lock file drops them. Hence one RunLock per run,
 * taken in the process that trains it, the file opened by nothing else in that process.
 */
#ifndef NORMBENCH_RUNLOCK_H
#define NORMBENCH_RUNLOCK_H

#include <stddef.h>

typedef struct {
    int fd; /* -1: not held */
} RunLock;

#define RUNLOCK_INIT {-1}

enum { RUNLOCK_HELD = 0, RUNLOCK_BUSY = 1, RUNLOCK_ERROR = -1 };

/* Takes the lock of run file `run_file` without waiting: RUNLOCK_HELD, RUNLOCK_BUSY when
 * another process holds it (err names the file), RUNLOCK_ERROR with err (the lock file
 * cannot be created: missing directory, permissions, full disk). */
int runlock_acquire(const char *run_file, RunLock *lk, char *err, size_t errlen);
/* Drops the lock (no-op when not held). */
void runlock_release(RunLock *lk);
/* 1 when some other process holds the lock of `run_file` now (a snapshot). */
int runlock_is_busy(const char *run_file);

#endif
