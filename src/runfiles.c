/* runfiles.c — run-file names and directory listings (see runfiles.h). */
#include "runfiles.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *runfiles_path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int runfiles_is_run_file(const char *name) {
    return name[0] != '.' && ends_with(name, ".h5") && !ends_with(name, ".ckpt.h5");
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

long runfiles_list(const char *dir, int want_dirs, int (*keep)(const char *), char ***out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int oom = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (keep && !keep(e->d_name))) continue;
        char *p = runfiles_path_join(dir, e->d_name);
        struct stat st;
        int ok = p && stat(p, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(p);
        if (!ok) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                oom = 1;
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            oom = 1;
            break;
        }
        n++;
    }
    closedir(d);
    if (oom) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        errno = ENOMEM;
        return -1;
    }
    if (n) qsort(names, n, sizeof *names, compare_names);
    *out = names;
    return (long)n;
}
