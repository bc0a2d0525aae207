/* blas-sgemm.c — the training GEMM shapes under other BLAS libraries than normbench's
 * OpenBLAS, as matmul.c calls them (rows split over OpenMP threads, one single-threaded call
 * each): llama71m's gate/up (2048x1368x512), down (2048x512x1368) and the 1024^3 square.
 * Best of 7, GFLOP/s. Through the Fortran sgemm_ of whichever libblas it is linked to, or
 * oneDNN's dnnl_sgemm (-DUSE_DNNL):
 *   gcc -O2 -fopenmp -o /tmp/ob bench/probes/blas-sgemm.c -L/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas
 *   gcc -O2 -fopenmp -o /tmp/blis bench/probes/blas-sgemm.c -L/usr/lib/x86_64-linux-gnu/blis-serial -lblas \
 *       -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-serial                     # apt-get install libblis4-serial
 *   gcc -O2 -fopenmp -DUSE_DNNL -o /tmp/dnnl bench/probes/blas-sgemm.c -ldnnl  # apt-get install libdnnl-dev
 *   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX /tmp/ob 2; BLIS_ARCH_TYPE=skx /tmp/blis 2; OMP_NUM_THREADS=1 /tmp/dnnl 2
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <omp.h>
#ifdef USE_DNNL
#include <dnnl.h>
#endif
void sgemm_(const char *, const char *, const int *, const int *, const int *, const float *,
            const float *, const int *, const float *, const int *, const float *, float *,
            const int *);
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
/* row-major C[M,N] = A[M,K] B[K,N], split M over threads, each a column-major call */
static void gemm(int M, int N, int K, const float *A, const float *B, float *C, int th) {
#pragma omp parallel num_threads(th)
    {
        int t = omp_get_thread_num();
        int m0 = M * t / th, m1 = M * (t + 1) / th;
        int mm = m1 - m0;
#ifdef USE_DNNL
        dnnl_sgemm('N', 'N', mm, N, K, 1.0f, A + (size_t)m0 * K, K, B, N, 0.0f, C + (size_t)m0 * N,
                   N);
#else
        const float one = 1, zero = 0;
        sgemm_("N", "N", &N, &mm, &K, &one, B, &N, A + (size_t)m0 * K, &K, &zero,
               C + (size_t)m0 * N, &N);
#endif
    }
}
int main(int argc, char **argv) {
    int th = argc > 1 ? atoi(argv[1]) : 2;
    int shapes[3][3] = {{2048, 1368, 512}, {2048, 512, 1368}, {1024, 1024, 1024}};
    for (int s = 0; s < 3; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
              *C = malloc(sizeof(float) * M * N);
        for (long i = 0; i < (long)M * K; i++)
            A[i] = (i % 7) * 0.1f;
        for (long i = 0; i < (long)K * N; i++)
            B[i] = (i % 5) * 0.1f;
        gemm(M, N, K, A, B, C, th);
        double best = 1e9;
        for (int r = 0; r < 7; r++) {
            double t0 = now();
            gemm(M, N, K, A, B, C, th);
            double dt = now() - t0;
            if (dt < best)
                best = dt;
        }
        printf("%dx%dx%d threads %d: %.1f GFLOP/s\n", M, N, K, th, 2.0 * M * N * K / best * 1e-9);
        free(A);
        free(B);
        free(C);
    }
}
