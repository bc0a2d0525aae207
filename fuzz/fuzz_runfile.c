/* fuzz_runfile.c — libFuzzer target for the run-file reader (src/runfile.c: runfile_read,
 * runfile_read_status), the path report, tables and export take for every run file. The
 * input is the file. Properties: no crash, no leak; what reads has consistent shapes. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "runfile.h"

static volatile int fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_file(data, size);
    char why[512];
    (void)runfile_read_status(path, why, sizeof why);
    RunFileData d;
    if (runfile_read(path, RF_WANT_ALL, &d, why, sizeof why) == 0) {
        for (int k = 0; k < RF_N_DATASETS; k++) {
            const RunArray *a = &d.data[k];
            if (!a->present) continue;
            size_t n = 1;
            for (int r = 0; r < a->rank; r++) n *= a->dims[r];
            if (n > 0 && !a->data) abort();
            double sum = 0; /* every element is readable (ASan checks the bounds) */
            for (size_t i = 0; i < n; i++) sum += a->data[i];
            if (sum == 12345.678) fuzz_sink++;
        }
    }
    runfile_data_free(&d);
    return 0;
}
