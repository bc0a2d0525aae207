/* cpu_kernels.c — owns the choice of CPU BLAS kernels (see cpu_kernels.h for the why).
 *
 * The decision is a pure function (cpu_kernels_target) of two facts: the ISA the CPU and OS
 * support (CPUID leaf 1 and 7, XGETBV for the register state the OS saves) and the ISA of
 * the core OpenBLAS chose (a table of OpenBLAS 0.3.x core names). Only a choice below
 * AVX2+FMA on a CPU with AVX2+FMA or AVX-512 is a fallback; a core OpenBLAS chose on
 * purpose for a CPU it recognises (Haswell, Zen, SkylakeX, Cooperlake, AMD family 15h) is
 * kept. */
#include "cpu_kernels.h"

#include <cblas.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NB_X86 1
#endif

/* Set once a fallback warning went out, so processes started by this one stay quiet. */
#define WARNED_MARKER "NB_OPENBLAS_WARNED"

#ifdef NB_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

CpuIsa cpu_isa(void) {
#ifdef NB_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CPU_ISA_SSE;
    const unsigned fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return CPU_ISA_SSE;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return CPU_ISA_SSE; /* the OS does not save XMM + YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return CPU_ISA_AVX;
    __cpuid_count(7, 0, a, b, c, d);
    if (!((b >> 5) & 1) || !fma) return CPU_ISA_AVX; /* AVX2 (leaf 7 EBX bit 5) and FMA3 */
    /* F (16), DQ (17), CD (28), BW (30), VL (31): the Skylake-X set OpenBLAS's SkylakeX
     * kernels may use (Xeon Phi has F and CD only); XCR0 bits 5-7: opmask and ZMM state */
    const unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
    if ((b & avx512) == avx512 && (xcr0 & 0xe6) == 0xe6) return CPU_ISA_AVX512;
    return CPU_ISA_AVX2;
#else
    return CPU_ISA_UNKNOWN;
#endif
}

const char *cpu_isa_name(CpuIsa isa) {
    switch (isa) {
    case CPU_ISA_SSE: return "SSE";
    case CPU_ISA_AVX: return "AVX";
    case CPU_ISA_AVX2: return "AVX2+FMA";
    case CPU_ISA_AVX512: return "AVX-512";
    case CPU_ISA_UNKNOWN: break;
    }
    return "unknown ISA";
}

int cpu_isa_flops_per_cycle(CpuIsa isa) {
    switch (isa) {
    case CPU_ISA_SSE: return 8;     /* 4-wide add + 4-wide multiply */
    case CPU_ISA_AVX: return 16;    /* 8-wide add + 8-wide multiply */
    case CPU_ISA_AVX2: return 32;   /* 8 lanes x 2 (FMA) x 2 units */
    case CPU_ISA_AVX512: return 64; /* 16 lanes x 2 (FMA) x 2 units */
    case CPU_ISA_UNKNOWN: break;
    }
    return 0;
}

/* OpenBLAS 0.3.x x86 core names (driver/others/dynamic.c) and the ISA of their kernels. */
static const struct {
    const char *name;
    CpuIsa isa;
} cores[] = {
    {"Katmai", CPU_ISA_SSE},      {"Coppermine", CPU_ISA_SSE},   {"Northwood", CPU_ISA_SSE},
    {"Prescott", CPU_ISA_SSE},    {"Banias", CPU_ISA_SSE},       {"Atom", CPU_ISA_SSE},
    {"Core2", CPU_ISA_SSE},       {"Penryn", CPU_ISA_SSE},       {"Dunnington", CPU_ISA_SSE},
    {"Nehalem", CPU_ISA_SSE},     {"Athlon", CPU_ISA_SSE},       {"Opteron", CPU_ISA_SSE},
    {"Opteron_SSE3", CPU_ISA_SSE}, {"Barcelona", CPU_ISA_SSE},   {"Nano", CPU_ISA_SSE},
    {"Bobcat", CPU_ISA_SSE},      {"Sandybridge", CPU_ISA_AVX},
    /* AMD family 15h: chosen only for those CPUs, on purpose; never treated as a fallback */
    {"Bulldozer", CPU_ISA_AVX2},  {"Piledriver", CPU_ISA_AVX2},  {"Steamroller", CPU_ISA_AVX2},
    {"Excavator", CPU_ISA_AVX2},
    {"Haswell", CPU_ISA_AVX2},    {"Zen", CPU_ISA_AVX2},
    {"SkylakeX", CPU_ISA_AVX512}, {"Cooperlake", CPU_ISA_AVX512}, {"SapphireRapids", CPU_ISA_AVX512},
};

CpuIsa cpu_kernels_core_isa(const char *core) {
    if (!core) return CPU_ISA_UNKNOWN;
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (strcasecmp(core, cores[i].name) == 0) return cores[i].isa;
    return CPU_ISA_UNKNOWN;
}

const char *cpu_kernels_target(CpuIsa cpu, const char *core) {
    const CpuIsa have = cpu_kernels_core_isa(core);
    if (have == CPU_ISA_UNKNOWN || have >= CPU_ISA_AVX2) return NULL;
    if (cpu >= CPU_ISA_AVX512) return "SkylakeX";
    if (cpu >= CPU_ISA_AVX2) return "Haswell";
    return NULL;
}

/* OPENBLAS_CORETYPE is read only by a DYNAMIC_ARCH build */
static int openblas_dynamic(void) {
    const char *cfg = openblas_get_config();
    return cfg && strstr(cfg, "DYNAMIC_ARCH") != NULL;
}

static const char *openblas_core(void) {
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

int cpu_kernels_candidates(const char **names, int max) {
    const CpuIsa isa = cpu_isa();
    int n = 0;
    if (isa == CPU_ISA_UNKNOWN || !openblas_dynamic()) return 0;
    if (n < max) names[n++] = "Prescott";
    if (isa >= CPU_ISA_AVX2 && n < max) names[n++] = "Haswell";
    if (isa >= CPU_ISA_AVX512 && n < max) names[n++] = "SkylakeX";
    return n;
}

/* The marker "TARGET,DETECTED" set by the re-execution; 0 when absent or malformed. */
static int parse_marker(char *target, char *detected, size_t cap) {
    const char *m = getenv(CPU_KERNELS_MARKER);
    const char *comma = m ? strchr(m, ',') : NULL;
    if (!comma || (size_t)(comma - m) >= cap || strlen(comma + 1) >= cap) return 0;
    snprintf(target, cap, "%.*s", (int)(comma - m), m);
    snprintf(detected, cap, "%s", comma + 1);
    return 1;
}

/* OPENBLAS_CORETYPE as set by the re-execution, not by the user */
static int coretype_is_ours(const char *user, const char *target, int have_marker) {
    return have_marker && user && strcasecmp(user, target) == 0;
}

static void warn_once(const char *core, const char *isa, const char *want, const char *why) {
    if (getenv(WARNED_MARKER)) return;
    fprintf(stderr,
            "normbench: warning: OpenBLAS runs its generic %s kernels on this %s CPU (%s): CPU "
            "ops run several times slower than the hardware allows (OPENBLAS_CORETYPE=%s "
            "selects the right ones)\n",
            core, isa, why, want);
    fflush(stderr);
    setenv(WARNED_MARKER, "1", 1);
}

void cpu_kernels_select(char **argv) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *core = openblas_core();
    const CpuIsa cpu = cpu_isa();
    char target[64] = "", detected[64] = "";
    const int have_marker = parse_marker(target, detected, sizeof target);

    if (user && !coretype_is_ours(user, target, have_marker)) {
        /* The user's choice always wins; say so only when it cannot run here (OpenBLAS
         * 0.3.21 maps an unknown OPENBLAS_CORETYPE to Cooperlake, an AVX-512 core). */
        const CpuIsa need = cpu_kernels_core_isa(core);
        if (cpu != CPU_ISA_UNKNOWN && need != CPU_ISA_UNKNOWN && need > cpu)
            fprintf(stderr,
                    "normbench: warning: OPENBLAS_CORETYPE=%s selects OpenBLAS's %s kernels "
                    "(%s) but this CPU supports only %s: expect an illegal-instruction crash\n",
                    user, core, cpu_isa_name(need), cpu_isa_name(cpu));
        return;
    }
    const char *want = cpu_kernels_target(cpu, core);
    if (!want) return; /* OpenBLAS's kernels fit this CPU (also after a re-execution) */

    char why[256];
    if (have_marker) {
        snprintf(why, sizeof why, "still %s after re-executing with OPENBLAS_CORETYPE=%s", core,
                 target);
    } else if (!openblas_dynamic()) {
        snprintf(why, sizeof why, "this OpenBLAS is built without DYNAMIC_ARCH");
    } else {
        char marker[160];
        snprintf(marker, sizeof marker, "%s,%s", want, core);
        if (setenv("OPENBLAS_CORETYPE", want, 1) == 0 &&
            setenv(CPU_KERNELS_MARKER, marker, 1) == 0) {
            fflush(NULL);
            execv("/proc/self/exe", argv);
        }
        snprintf(why, sizeof why, "cannot re-execute /proc/self/exe: %s", strerror(errno));
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv(CPU_KERNELS_MARKER);
    }
    warn_once(core, cpu_isa_name(cpu), want, why);
}

void cpu_kernels_describe(char *out, size_t outlen) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *core = openblas_core();
    const CpuIsa cpu = cpu_isa();
    char target[64] = "", detected[64] = "", who[256];
    const int have_marker = parse_marker(target, detected, sizeof target);
    if (coretype_is_ours(user, target, have_marker))
        snprintf(who, sizeof who, "chosen by normbench: OpenBLAS detected %s, so it re-ran with "
                 "OPENBLAS_CORETYPE=%s", detected, target);
    else if (user)
        snprintf(who, sizeof who, "OPENBLAS_CORETYPE=%s set by the user", user);
    else
        snprintf(who, sizeof who, "detected by OpenBLAS");
    const char *want = cpu_kernels_target(cpu, core);
    char below[96] = "";
    if (want) snprintf(below, sizeof below, "; generic kernels, below this CPU (%s would fit)", want);
    snprintf(out, outlen, "OpenBLAS %s (%s; CPU: %s%s)", core, who, cpu_isa_name(cpu), below);
}
