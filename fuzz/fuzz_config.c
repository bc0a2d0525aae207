/* fuzz_config.c — libFuzzer target for the config parser (src/config.c): the input is YAML
 * text; bytes after a 0x01 byte are one `--set key.path=value` override. Properties: no
 * crash, no leak, and a config that loads writes YAML that loads again to the same YAML. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *sep = memchr(text, 1, size);
    const char *overrides[1];
    int n_overrides = 0;
    if (sep) {
        *sep = '\0';
        overrides[n_overrides++] = sep + 1;
    }
    NbConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[1024];
    if (config_load_string(&cfg, text, "fuzz.yaml", overrides, n_overrides, err, sizeof err) == 0) {
        char *yaml = NULL, *again = NULL;
        if (config_write_yaml(&cfg, &yaml) == 0) {
            NbConfig back;
            memset(&back, 0, sizeof back);
            if (config_load_string(&back, yaml, "fuzz.yaml", NULL, 0, err, sizeof err) != 0)
                abort(); /* what normbench wrote, it must read */
            if (config_write_yaml(&back, &again) != 0 || strcmp(yaml, again) != 0) abort();
            config_free(&back);
        }
        free(yaml);
        free(again);
        config_free(&cfg);
    }
    free(text);
    return 0;
}
