/* backend.c — backend selection by name: "cpu", "cuda" (when compiled with nvcc), "auto"
 * (the first available entry of the preference-ordered table below), and the one-line-per-
 * backend description for `normbench` to print. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cpu/cpu_ops.h"

typedef struct {
    const char *name;
    Backend *(*create)(int threads, char *err, size_t errlen);
    void (*destroy)(Backend *be);
    int (*available)(void);                    /* usable on this machine now */
    void (*describe)(char *out, size_t outlen); /* device line */
} BackendEntry;

static int cpu_available(void) { return 1; }

#ifdef NB_HAVE_CUDA
static int cuda_available(void) { return cuda_device_count() > 0; }
#endif

/* Compiled-in backends, in "auto" preference order. */
static const BackendEntry backends[] = {
#ifdef NB_HAVE_CUDA
    {"cuda", cuda_backend_create, cuda_backend_destroy, cuda_available, cuda_describe},
#endif
    {"cpu", cpu_backend_create, cpu_backend_destroy, cpu_available, cpu_describe},
};
enum { N_BACKENDS = sizeof backends / sizeof backends[0] };

/* Backends normbench knows but this build lacks, with the reason. */
typedef struct {
    const char *name, *why;
} MissingBackend;
static const MissingBackend missing[] = {
#ifndef NB_HAVE_CUDA
    {"cuda", "no nvcc at build time"},
#endif
    {NULL, NULL},
};

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

Backend *backend_create(const char *name, int threads, char *err, size_t errlen) {
    char msg[256];
    if (!name) name = "(null)";
    if (strcmp(name, "auto") == 0) {
        for (int i = 0; i < N_BACKENDS; i++)
            if (backends[i].available()) return backends[i].create(threads, err, errlen);
        set_err(err, errlen, "backend 'auto': no backend available");
        return NULL;
    }
    for (int i = 0; i < N_BACKENDS; i++)
        if (strcmp(name, backends[i].name) == 0) return backends[i].create(threads, err, errlen);
    for (const MissingBackend *m = missing; m->name; m++) {
        if (strcmp(name, m->name) == 0) {
            snprintf(msg, sizeof msg, "backend '%s' not compiled in (%s)", name, m->why);
            set_err(err, errlen, msg);
            return NULL;
        }
    }
    size_t len = (size_t)snprintf(msg, sizeof msg, "unknown backend '%s' (valid: ", name);
    for (int i = 0; i < N_BACKENDS && len < sizeof msg; i++)
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s, ", backends[i].name);
    if (len < sizeof msg) snprintf(msg + len, sizeof msg - len, "auto)");
    set_err(err, errlen, msg);
    return NULL;
}

void backend_destroy(Backend *be) {
    if (!be) return;
    for (int i = 0; i < N_BACKENDS; i++) {
        if (strcmp(be->name, backends[i].name) == 0) {
            backends[i].destroy(be);
            return;
        }
    }
}

void backend_describe(char *out, size_t outlen) {
    if (!out || outlen == 0) return;
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < N_BACKENDS && len < outlen; i++) {
        char dev[256];
        int avail = backends[i].available();
        if (avail) backends[i].describe(dev, sizeof dev);
        len += (size_t)snprintf(out + len, outlen - len, "%s: %s%s%s\n", backends[i].name,
                                avail ? "available (" : "not available on this machine",
                                avail ? dev : "", avail ? ")" : "");
    }
    for (const MissingBackend *m = missing; m->name && len < outlen; m++)
        len += (size_t)snprintf(out + len, outlen - len, "%s: not compiled in (%s)\n", m->name,
                                m->why);
}
