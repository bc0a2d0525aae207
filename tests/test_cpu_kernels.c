/* test_cpu_kernels.c — the choice of CPU BLAS kernels (src/cpu_kernels.c, issue 18): the
 * decision table on every (CPU ISA, OpenBLAS core) pair that matters; that this process
 * (settled by run_tests' own cpu_kernels_select) runs kernels that fit the CPU or the user's
 * OPENBLAS_CORETYPE; that the CPU backend records them; and, through the normbench binary
 * (NB_BIN), the re-execution, the user's override and the one-line warning when a generic
 * fallback remains. Nothing here is timed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cblas.h>

#include "backend.h"
#include "cpu_kernels.h"
#include "testutil.h"

START_TEST(core_names_map_to_the_isa_of_their_kernels) {
    ck_assert_int_eq(cpu_kernels_core_isa("Prescott"), CPU_ISA_SSE);
    ck_assert_int_eq(cpu_kernels_core_isa("prescott"), CPU_ISA_SSE);
    ck_assert_int_eq(cpu_kernels_core_isa("Nehalem"), CPU_ISA_SSE);
    ck_assert_int_eq(cpu_kernels_core_isa("Sandybridge"), CPU_ISA_AVX);
    ck_assert_int_eq(cpu_kernels_core_isa("Haswell"), CPU_ISA_AVX2);
    ck_assert_int_eq(cpu_kernels_core_isa("Zen"), CPU_ISA_AVX2);
    ck_assert_int_eq(cpu_kernels_core_isa("Excavator"), CPU_ISA_AVX2);
    ck_assert_int_eq(cpu_kernels_core_isa("SkylakeX"), CPU_ISA_AVX512);
    ck_assert_int_eq(cpu_kernels_core_isa("Cooperlake"), CPU_ISA_AVX512);
    ck_assert_int_eq(cpu_kernels_core_isa("ARMV8"), CPU_ISA_UNKNOWN);
    ck_assert_int_eq(cpu_kernels_core_isa(NULL), CPU_ISA_UNKNOWN);
}
END_TEST

static void expect_target(CpuIsa cpu, const char *core, const char *want) {
    const char *got = cpu_kernels_target(cpu, core);
    ck_assert_msg((got == NULL) == (want == NULL) && (!got || strcmp(got, want) == 0),
                  "%s on a %s CPU: got %s, want %s", core, cpu_isa_name(cpu), got ? got : "keep",
                  want ? want : "keep");
}

START_TEST(a_generic_core_on_a_capable_cpu_is_replaced_and_nothing_else_is) {
    /* the fallback this issue is about, and its AVX2 twin */
    expect_target(CPU_ISA_AVX512, "Prescott", "SkylakeX");
    expect_target(CPU_ISA_AVX512, "Nehalem", "SkylakeX");
    expect_target(CPU_ISA_AVX2, "Prescott", "Haswell");
    expect_target(CPU_ISA_AVX2, "Sandybridge", "Haswell");
    expect_target(CPU_ISA_AVX512, "Sandybridge", "SkylakeX");
    /* nothing better to choose */
    expect_target(CPU_ISA_AVX, "Prescott", NULL);
    expect_target(CPU_ISA_AVX, "Sandybridge", NULL);
    expect_target(CPU_ISA_SSE, "Prescott", NULL);
    expect_target(CPU_ISA_UNKNOWN, "Prescott", NULL);
    /* OpenBLAS recognised the CPU: its own choice stays */
    expect_target(CPU_ISA_AVX512, "SkylakeX", NULL);
    expect_target(CPU_ISA_AVX512, "Cooperlake", NULL);
    expect_target(CPU_ISA_AVX512, "Haswell", NULL);
    expect_target(CPU_ISA_AVX512, "Zen", NULL);
    expect_target(CPU_ISA_AVX2, "Excavator", NULL);
    expect_target(CPU_ISA_AVX2, "Haswell", NULL);
    /* a core this module does not know (another architecture, a newer OpenBLAS) */
    expect_target(CPU_ISA_AVX512, "ARMV8", NULL);
}
END_TEST

START_TEST(flops_per_cycle_follow_the_isa) {
    ck_assert_int_eq(cpu_isa_flops_per_cycle(CPU_ISA_AVX512), 64);
    ck_assert_int_eq(cpu_isa_flops_per_cycle(CPU_ISA_AVX2), 32);
    ck_assert_int_eq(cpu_isa_flops_per_cycle(CPU_ISA_AVX), 16);
    ck_assert_int_eq(cpu_isa_flops_per_cycle(CPU_ISA_SSE), 8);
    ck_assert_int_eq(cpu_isa_flops_per_cycle(CPU_ISA_UNKNOWN), 0);
}
END_TEST

START_TEST(candidates_are_the_cores_this_cpu_can_run_generic_first) {
    const char *names[8];
    int n = cpu_kernels_candidates(names, 8);
    CpuIsa isa = cpu_isa();
    if (isa == CPU_ISA_UNKNOWN || !strstr(openblas_get_config(), "DYNAMIC_ARCH")) {
        ck_assert_int_eq(n, 0);
        return;
    }
    int want = isa >= CPU_ISA_AVX512 ? 3 : isa >= CPU_ISA_AVX2 ? 2 : 1;
    ck_assert_int_eq(n, want);
    ck_assert_str_eq(names[0], "Prescott");
    for (int i = 0; i < n; i++)
        ck_assert_msg(cpu_kernels_core_isa(names[i]) <= isa, "%s needs more than %s", names[i],
                      cpu_isa_name(isa));
    ck_assert_int_eq(cpu_kernels_candidates(names, 1), 1); /* bounded by max */
}
END_TEST

/* run_tests settled its own kernels at start, as normbench does */
START_TEST(this_process_runs_kernels_that_fit_the_cpu_or_the_users_choice) {
    const char *core = openblas_get_corename();
    const char *user = getenv("OPENBLAS_CORETYPE"), *marker = getenv(CPU_KERNELS_MARKER);
    int ours = user && marker && strncasecmp(marker, user, strlen(user)) == 0 &&
               marker[strlen(user)] == ',';
    if (user && !ours) {
        ck_assert_msg(strcasecmp(core, user) == 0, "OPENBLAS_CORETYPE=%s but OpenBLAS runs %s",
                      user, core);
        return;
    }
    ck_assert_msg(cpu_kernels_target(cpu_isa(), core) == NULL,
                  "OpenBLAS runs %s on a %s CPU: a generic fallback was left in place", core,
                  cpu_isa_name(cpu_isa()));
}
END_TEST

START_TEST(the_cpu_backend_records_the_kernels_in_use) {
    char err[256];
    Backend *be = cpu_backend_create(1, err, sizeof err);
    ck_assert_ptr_nonnull(be);
    char want[96];
    snprintf(want, sizeof want, "OpenBLAS %s", openblas_get_corename());
    ck_assert_str_eq(be->kernels, want);
    cpu_backend_destroy(be);
}
END_TEST

/* ---- through the binary -------------------------------------------------------------- */

typedef TestCli Cli;

/* normbench with `env` set and the kernel choice's own variables unset first */
static Cli run_env(const char *env, const char *args) {
    char prefix[512];
    snprintf(prefix, sizeof prefix,
             "env -u OPENBLAS_CORETYPE -u " CPU_KERNELS_MARKER " -u NB_OPENBLAS_WARNED %s", env);
    return test_run_cli(prefix, args);
}

/* the core named on info's "CPU kernels: OpenBLAS CORE (" line */
static void info_core(const Cli *r, char *core, size_t n) {
    const char *p = strstr(r->out, "CPU kernels: OpenBLAS ");
    ck_assert_msg(p != NULL, "info printed no kernels line:\n%s", r->out);
    p += strlen("CPU kernels: OpenBLAS ");
    size_t len = strcspn(p, " \n");
    ck_assert(len > 0 && len < n);
    snprintf(core, n, "%.*s", (int)len, p);
}

START_TEST(info_runs_kernels_that_fit_the_cpu_without_a_word_on_stderr) {
    Cli r = run_env("", "info");
    ck_assert_int_eq(r.code, 0);
    char core[64];
    info_core(&r, core, sizeof core);
    /* the BLAS line (OpenBLAS's own config string) names the same core */
    const char *blas = strstr(r.out, "BLAS: ");
    ck_assert_ptr_nonnull(blas);
    const char *hit = strstr(blas, core);
    ck_assert_msg(hit && hit < strstr(blas, "CPU kernels:"), "%s", r.out);
    if (!strstr(blas, "DYNAMIC_ARCH")) return; /* a fixed-core OpenBLAS: nothing to choose */
    ck_assert_msg(cpu_kernels_target(cpu_isa(), core) == NULL,
                  "normbench runs OpenBLAS %s on a %s CPU:\n%s", core, cpu_isa_name(cpu_isa()),
                  r.out);
    ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(the_users_openblas_coretype_wins_quietly) {
    Cli r = run_env("OPENBLAS_CORETYPE=Prescott", "info");
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "CPU kernels: OpenBLAS Prescott (OPENBLAS_CORETYPE=Prescott set by the user") != NULL,
                  "%s", r.out);
    ck_assert_str_eq(r.err, "");
}
END_TEST

/* With the marker already set the process may not re-execute (as after a re-execution
 * whose setting did not take): it runs OpenBLAS's own detection, and a fallback on a
 * capable CPU must say so in exactly one line, once per process tree. */
START_TEST(a_fallback_that_remains_prints_one_warning_line) {
    Cli r = run_env(CPU_KERNELS_MARKER "=SkylakeX,Prescott", "info");
    ck_assert_int_eq(r.code, 0);
    char core[64];
    info_core(&r, core, sizeof core);
    if (cpu_kernels_target(cpu_isa(), core) != NULL) {
        ck_assert_msg(test_count_lines(r.err) == 1, "stderr:\n%s", r.err);
        ck_assert_ptr_nonnull(strstr(r.err, "warning"));
        ck_assert_ptr_nonnull(strstr(r.err, core));
        ck_assert_ptr_nonnull(strstr(r.out, "generic kernels, below this CPU"));
        Cli quiet = run_env(CPU_KERNELS_MARKER "=SkylakeX,Prescott NB_OPENBLAS_WARNED=1", "info");
        ck_assert_str_eq(quiet.err, "");
    } else {
        ck_assert_str_eq(r.err, ""); /* OpenBLAS knows this CPU: nothing to warn about */
    }
}
END_TEST

START_TEST(the_re_execution_keeps_arguments_and_exit_status) {
    Cli r = run_env("", "frobnicate");
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "unknown command 'frobnicate'"));
    r = run_env("", "show configs/tiny/tiny.yaml --set model.d_model=48");
    ck_assert_msg(r.code == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "d_model: 48\n")); /* the --set reached the new image */
}
END_TEST

Suite *cpu_kernels_suite(void) {
    Suite *s = suite_create("cpu_kernels");
    TCase *choice = tcase_create("choice");
    tcase_add_test(choice, core_names_map_to_the_isa_of_their_kernels);
    tcase_add_test(choice, a_generic_core_on_a_capable_cpu_is_replaced_and_nothing_else_is);
    tcase_add_test(choice, flops_per_cycle_follow_the_isa);
    tcase_add_test(choice, candidates_are_the_cores_this_cpu_can_run_generic_first);
    tcase_add_test(choice, this_process_runs_kernels_that_fit_the_cpu_or_the_users_choice);
    tcase_add_test(choice, the_cpu_backend_records_the_kernels_in_use);
    suite_add_tcase(s, choice);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 60);
    tcase_add_test(cli, info_runs_kernels_that_fit_the_cpu_without_a_word_on_stderr);
    tcase_add_test(cli, the_users_openblas_coretype_wins_quietly);
    tcase_add_test(cli, a_fallback_that_remains_prints_one_warning_line);
    tcase_add_test(cli, the_re_execution_keeps_arguments_and_exit_status);
    suite_add_tcase(s, cli);
    return s;
}
