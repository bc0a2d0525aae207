/* cpu_kernels.h — owns the choice of CPU BLAS kernels (issue 18).
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when the library loads:
 * from OPENBLAS_CORETYPE when set, else from the CPU model. A CPU model newer than the
 * library falls back to the generic "Prescott" (SSE3) kernels, several times slower than
 * the AVX2 or AVX-512 kernels the same library carries, and says nothing. The choice cannot
 * be changed after load, so cpu_kernels_select(), called first thing in main(), compares
 * what OpenBLAS chose with what the CPU supports (CPUID + XGETBV) and, on a generic fallback,
 * re-executes the process once (/proc/self/exe, same argv) with OPENBLAS_CORETYPE set to
 * the matching kernels: SkylakeX for AVX-512, Haswell for AVX2+FMA. An environment marker
 * (CPU_KERNELS_MARKER) keeps it from looping and lets the re-executed process verify the
 * result. The user's own OPENBLAS_CORETYPE always wins. A fallback that remains on a capable
 * CPU prints one warning line on stderr. The CPU backend's own vector loops
 * (kernels/cpu/vec_kernels.c) use the instruction set of the kernels chosen here (CpuVectorIsa
 * in kernels/cpu/cpu_ops.h), so this one choice, and a user's OPENBLAS_CORETYPE, sets both.
 *
 * Everything but the warning is derived again from the environment and the loaded library
 * when asked (no state kept), so `normbench info` and the backends report the same thing.
 */
#ifndef NORMBENCH_CPU_KERNELS_H
#define NORMBENCH_CPU_KERNELS_H

#include <stddef.h>

/* The widest fp32 vector ISA the CPU *and* the OS support (ordered). */
typedef enum {
    CPU_ISA_UNKNOWN = -1, /* not x86, or a core name this module does not know */
    CPU_ISA_SSE = 0,      /* SSE2/SSE3: OpenBLAS's generic kernels */
    CPU_ISA_AVX = 1,      /* AVX without AVX2+FMA (Sandy/Ivy Bridge) */
    CPU_ISA_AVX2 = 2,     /* AVX2 + FMA3 (Haswell and later, Zen) */
    CPU_ISA_AVX512 = 3    /* AVX-512 F/CD/BW/DQ/VL (Skylake-X and later, Zen 4) */
} CpuIsa;

/* Set (to "TARGET,DETECTED", e.g. "SkylakeX,Prescott") by the re-execution, together with
 * OPENBLAS_CORETYPE=TARGET. */
#define CPU_KERNELS_MARKER "NB_OPENBLAS_CORETYPE_AUTO"

/* Call at the very top of main(), before anything else runs. Returns when the kernels are
 * settled; may instead re-execute the process once (does not return then). */
void cpu_kernels_select(char **argv);

/* What this CPU and OS support, from CPUID and XGETBV (CPU_ISA_UNKNOWN off x86). */
CpuIsa cpu_isa(void);
const char *cpu_isa_name(CpuIsa isa);            /* "AVX-512", "AVX2+FMA", ... */
/* fp32 FLOP per cycle per core at that ISA: vector lanes x 2 (FMA) x 2 FMA units (AVX-512:
 * 64, AVX2+FMA: 32); AVX: 16 (one 8-wide add + one 8-wide multiply port), SSE: 8; 0 unknown */
int cpu_isa_flops_per_cycle(CpuIsa isa);

/* The ISA level of an OpenBLAS core name (case-insensitive); CPU_ISA_UNKNOWN for a name this
 * module does not know. AMD family-15h cores (Bulldozer .. Excavator) count as AVX2: they are
 * OpenBLAS's deliberate choice for those CPUs, never a fallback. */
CpuIsa cpu_kernels_core_isa(const char *core);
/* The decision: the OPENBLAS_CORETYPE to run with when OpenBLAS chose `core` on a CPU with
 * `cpu` and the user set none ("SkylakeX", "Haswell"), or NULL to keep OpenBLAS's choice (it
 * is not below AVX2, or the CPU has nothing better, or the name is unknown). */
const char *cpu_kernels_target(CpuIsa cpu, const char *core);

/* The OpenBLAS cores this CPU can run, generic first: "Prescott" [, "Haswell"] [, "SkylakeX"]
 * (what `bench` measures sgemm under). Returns the count (<= max). */
int cpu_kernels_candidates(const char **names, int max);

/* One line for `normbench info`: the kernels, who chose them and why, and the CPU's ISA. */
void cpu_kernels_describe(char *out, size_t outlen);

#endif
