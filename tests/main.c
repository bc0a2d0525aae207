/* main.c — the Check test runner: runs every suite defined in tests/ (every .c file) (the Makefile
 * collects `Suite *NAME_suite(void)` definitions into suites.h) and prints Check's summary.
 * A suite name given on the command line runs that suite alone. */
#include <check.h>
#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv) {
    SRunner *runner = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (argc > 1 && strstr(suites[i].name, argv[1]) == NULL) continue;
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
