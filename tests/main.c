/* main.c — the Check test runner: runs every suite defined in tests/ (every .c file) (the Makefile
 * collects `Suite *NAME_suite(void)` definitions into suites.h) and prints Check's summary.
 * Suite names given on the command line run those suites alone (a suite runs when any
 * argument is part of its name).
 *
 * CPU kernels: the runner settles OpenBLAS's kernels exactly as normbench does
 * (cpu_kernels_select: the right ones for this CPU, or OPENBLAS_CORETYPE when set), so
 * `OPENBLAS_CORETYPE=Prescott run_tests kernel model` runs those suites under the generic
 * kernels. `run_tests --other-kernels` prints the other OpenBLAS cores this CPU can run, one
 * per line (what `make test` runs the numerical suites under a second time). */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>

#include "cpu_kernels.h"

#define NB_SUITE(fn) Suite *fn(void);
#include "suites.h"
#undef NB_SUITE

typedef struct {
    const char *name;
    Suite *(*make)(void);
} SuiteEntry;

static const SuiteEntry suites[] = {
#define NB_SUITE(fn) {#fn, fn},
#include "suites.h"
#undef NB_SUITE
};

static int selected(const char *name, int argc, char **argv) {
    if (argc <= 1) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    cpu_kernels_select(argv);
    if (argc == 2 && strcmp(argv[1], "--other-kernels") == 0) {
        const char *names[8];
        int n = cpu_kernels_candidates(names, 8);
        for (int i = 0; i < n; i++)
            if (strcasecmp(names[i], openblas_get_corename()) != 0) printf("%s\n", names[i]);
        return 0;
    }
    char kernels[512];
    cpu_kernels_describe(kernels, sizeof kernels);
    printf("run_tests: CPU kernels: %s\n", kernels);
    fflush(stdout);
    SRunner *runner = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (!selected(suites[i].name, argc, argv)) continue;
        Suite *s = suites[i].make();
        if (!runner) runner = srunner_create(s);
        else srunner_add_suite(runner, s);
    }
    if (!runner) {
        fprintf(stderr, "run_tests: no suite matches '%s'\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
