/* gpu_tests.h — what the GPU test files share: the suites that test_gpu.c's runner adds and
 * the count of comparisons made (the runner fails when none ran, so nothing passes
 * silently). Only compiled with the CUDA backend (NB_HAVE_CUDA). */
#ifndef NORMBENCH_GPU_TESTS_H
#define NORMBENCH_GPU_TESTS_H

#include <check.h>

int gpu_tests_run(void);          /* test_gpu.c: failures, or -1 when no comparison ran */
void gpu_note_check(void);        /* test_gpu.c: one more comparison made */
Suite *gpu_model_suite(void);     /* test_gpu_model.c: whole training steps and runs */

#endif
