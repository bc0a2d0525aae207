/* h5vet.c — running an HDF5 reading function in a child process with a time limit (see
 * h5vet.h for why). The child runs the function, stores its return code and message in a
 * page shared with the parent, and writes one byte to a pipe; the parent waits for that byte
 * with a time limit and kills the child when it does not come. Between the fork and the
 * parent's own call of the same function the parent allocates nothing, so a rehearsal
 * starts from the very memory the real call will. */
#define _GNU_SOURCE
#include "h5vet.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static const char VET_DONE = 'K';
static double vet_timeout_s = 30.0;

/* What the child hands back besides the byte on the pipe. */
typedef struct {
    int rc;
    char err[1024];
} VetResult;

void h5vet_set_timeout(double seconds) {
    if (seconds > 0) vet_timeout_s = seconds;
}

/* When a sanitizer runtime is linked (make test-sanitize, make fuzz) it reports a crash in
 * the child as its own and libFuzzer's death callback would save the input as a finding of
 * the parent; the child must die quietly instead. Weak: absent from normal builds. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static _Noreturn void vet_child(H5VetRead reader, void *ctx, VetResult *result, int done_fd) {
    /* none of these allocate: the child's read starts from the parent's heap as it is */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(NULL);
    const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof crash_signals / sizeof *crash_signals; i++)
        signal(crash_signals[i], SIG_DFL);
    result->rc = reader(ctx, result->err, sizeof result->err);
    ssize_t written = write(done_fd, &VET_DONE, 1);
    _exit(written == 1 ? 0 : 1);
}

/* ---- the parent ------------------------------------------------------------------------ */

void *h5vet_shared_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void h5vet_shared_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

/* Waits for the child's byte until the deadline: 1 when it came, 0 on timeout, -1 when the
 * pipe closed without it (the child died). */
static int wait_done(int fd, double deadline) {
    for (;;) {
        double left = deadline - monotonic_seconds();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, (int)(left * 1000) + 1);
        if (ready < 0 && errno == EINTR) continue; /* Ctrl-C: the caller stops after this */
        if (ready < 0) return -1;
        if (ready == 0) continue;                 /* rechecks the deadline */
        char byte = 0;
        ssize_t got = read(fd, &byte, 1);
        if (got < 0 && errno == EINTR) continue;
        return got == 1 && byte == VET_DONE ? 1 : -1;
    }
}

int h5vet_run(H5VetRead reader, void *ctx, double seconds_extra, char *err, size_t errlen) {
    /* mapped once and kept: the parent's own call then sees the same mappings as the
     * child's */
    static VetResult *result;
    if (!result) result = h5vet_shared_alloc(sizeof *result);
    int fds[2] = {-1, -1};
    pid_t pid = -1;
    if (!result || pipe2(fds, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
        snprintf(err, errlen, "cannot start the process that reads it first: %s",
                 strerror(errno));
        if (fds[0] >= 0) close(fds[0]), close(fds[1]);
        return -2;
    }
    if (pid == 0) {
        close(fds[0]);
        vet_child(reader, ctx, result, fds[1]);
    }
    close(fds[1]);
    const double limit = vet_timeout_s + (seconds_extra > 0 ? seconds_extra : 0);
    const int done = wait_done(fds[0], monotonic_seconds() + limit);
    close(fds[0]);
    if (done != 1) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    int rc = -2;
    if (done == 1) {
        rc = result->rc == 0 ? 0 : -1;
        if (rc != 0) snprintf(err, errlen, "%s", result->err);
    } else if (done == 0) {
        snprintf(err, errlen, "corrupt HDF5 file: the HDF5 library was still reading it after "
                 "%.0f s (stopped)", limit);
    } else if (WIFSIGNALED(status)) {
        snprintf(err, errlen, "corrupt HDF5 file: the HDF5 library crashed reading it (%s)",
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(err, errlen, "corrupt HDF5 file: the HDF5 library failed reading it");
    }
    return rc;
}

int h5vet_read(H5VetRead reader, void *ctx, const char *path, double seconds_extra,
               int rehearse, char *err, size_t errlen) {
    char why[1024];
    const int rc = h5vet_run(reader, ctx, seconds_extra, why, sizeof why);
    if (rc != 0) {
        if (rc == -2 && path) snprintf(err, errlen, "%s: %s", path, why);
        else snprintf(err, errlen, "%s", why);
        return -1;
    }
    return rehearse ? reader(ctx, err, errlen) : 0;
}
