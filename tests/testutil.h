/* testutil.h — helpers shared by the Check suites: seeded uniform test inputs (drawn from
 * src/rng.h's splitmix64, the project's one generator), relative-error measures, temporary
 * directories. Test-only; nothing here is used by normbench itself. */
#ifndef NORMBENCH_TESTUTIL_H
#define NORMBENCH_TESTUTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rng.h"

/* uniform in [lo, hi) (53 random bits; rng_uniform's (0, 1] would move every test input) */
static inline double test_uniform(uint64_t *state, double lo, double hi) {
    return lo + (hi - lo) * (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}
static inline void test_fill_uniform(float *x, size_t n, uint64_t *state, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)test_uniform(state, lo, hi);
}

/* max_i |a_i - b_i| / max(max_i |b_i|, floor): error relative to the reference's scale,
 * so that near-zero entries do not blow up the measure. */
static inline double test_max_rel_err_f(const float *a, const double *ref, size_t n,
                                        double floor) {
    double scale = floor, err = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs((double)a[i] - ref[i]));
    return err / scale;
}

/* A fresh directory /tmp/<prefix>-XXXXXX (malloc'ed; NULL on failure). */
static inline char *test_temp_dir(const char *prefix) {
    size_t n = strlen(prefix) + 16;
    char *dir = malloc(n);
    if (!dir) return NULL;
    snprintf(dir, n, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* rm -rf dir; 0 on success */
static inline int test_remove_tree(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static inline int test_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}
 
/* One run of the normbench binary ($NB_BIN, else build/normbench): exit code, stdout and
 * stderr (each cut to 8 KiB). `prefix` goes before the binary in the shell command (an `env`
 * invocation, or ""); args are shell words. */
typedef struct {
    int code;
    char out[8192], err[8192];
} TestCli;

static inline TestCli test_run_cli(const char *prefix, const char *args) {
    const char *bin = getenv("NB_BIN");
    if (!bin) bin = "build/normbench";
    char cmd[2048], out_path[] = "/tmp/nbcli-out-XXXXXX", err_path[] = "/tmp/nbcli-err-XXXXXX";
    close(mkstemp(out_path));
    close(mkstemp(err_path));
    snprintf(cmd, sizeof cmd, "%s %s %s >%s 2>%s", prefix, bin, args, out_path, err_path);
    TestCli r = {0};
    int status = system(cmd);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char *paths[2] = {out_path, err_path};
    char *bufs[2] = {r.out, r.err};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        if (f) {
            bufs[i][fread(bufs[i], 1, sizeof r.out - 1, f)] = 0;
            fclose(f);
        }
        unlink(paths[i]);
    }
    return r;
}

#endif
