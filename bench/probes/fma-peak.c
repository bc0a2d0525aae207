/* fma-peak.c — the fp32 FMA throughput the cores reach (issue 18's "physical peak" check):
 * per thread, 12 independent chains of 512-bit (then 256-bit) fused multiply-adds, each
 * accumulator started at a different value so that the compiler cannot merge them into one
 * chain. Prints GFLOP/s with 1 or N threads (best of 3 is the figure).
 *   gcc -O2 -fopenmp -include stdlib.h -o /tmp/fma-peak bench/probes/fma-peak.c && /tmp/fma-peak 2
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((target("avx512f"))) static double zmm(long n){
  __m512 a=_mm512_set1_ps(1.0000001f), b=_mm512_set1_ps(0.9999999f);
  __m512 c0=_mm512_set1_ps(0),c1=_mm512_set1_ps(1),c2=_mm512_set1_ps(2),c3=_mm512_set1_ps(3),c4=_mm512_set1_ps(4),c5=_mm512_set1_ps(5),c6=_mm512_set1_ps(6),c7=_mm512_set1_ps(7),c8=_mm512_set1_ps(8),c9=_mm512_set1_ps(9),c10=_mm512_set1_ps(10),c11=_mm512_set1_ps(11);
  for(long i=0;i<n;i++){
   c0=_mm512_fmadd_ps(c0,a,b);c1=_mm512_fmadd_ps(c1,a,b);c2=_mm512_fmadd_ps(c2,a,b);c3=_mm512_fmadd_ps(c3,a,b);
   c4=_mm512_fmadd_ps(c4,a,b);c5=_mm512_fmadd_ps(c5,a,b);c6=_mm512_fmadd_ps(c6,a,b);c7=_mm512_fmadd_ps(c7,a,b);
   c8=_mm512_fmadd_ps(c8,a,b);c9=_mm512_fmadd_ps(c9,a,b);c10=_mm512_fmadd_ps(c10,a,b);c11=_mm512_fmadd_ps(c11,a,b);}
  __m512 s=_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0,c1),_mm512_add_ps(c2,c3)),_mm512_add_ps(_mm512_add_ps(c4,c5),_mm512_add_ps(c6,c7)));
  s=_mm512_add_ps(s,_mm512_add_ps(_mm512_add_ps(c8,c9),_mm512_add_ps(c10,c11)));
  return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static double ymm(long n){
  __m256 a=_mm256_set1_ps(1.0000001f), b=_mm256_set1_ps(0.9999999f);
  __m256 c0=_mm256_set1_ps(0),c1=_mm256_set1_ps(1),c2=_mm256_set1_ps(2),c3=_mm256_set1_ps(3),c4=_mm256_set1_ps(4),c5=_mm256_set1_ps(5),c6=_mm256_set1_ps(6),c7=_mm256_set1_ps(7),c8=_mm256_set1_ps(8),c9=_mm256_set1_ps(9),c10=_mm256_set1_ps(10),c11=_mm256_set1_ps(11);
  for(long i=0;i<n;i++){
   c0=_mm256_fmadd_ps(c0,a,b);c1=_mm256_fmadd_ps(c1,a,b);c2=_mm256_fmadd_ps(c2,a,b);c3=_mm256_fmadd_ps(c3,a,b);
   c4=_mm256_fmadd_ps(c4,a,b);c5=_mm256_fmadd_ps(c5,a,b);c6=_mm256_fmadd_ps(c6,a,b);c7=_mm256_fmadd_ps(c7,a,b);
   c8=_mm256_fmadd_ps(c8,a,b);c9=_mm256_fmadd_ps(c9,a,b);c10=_mm256_fmadd_ps(c10,a,b);c11=_mm256_fmadd_ps(c11,a,b);}
  __m256 s=_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0,c1),_mm256_add_ps(c2,c3)),_mm256_add_ps(_mm256_add_ps(c4,c5),_mm256_add_ps(c6,c7)));
  s=_mm256_add_ps(s,_mm256_add_ps(_mm256_add_ps(c8,c9),_mm256_add_ps(c10,c11)));
  float f[8];_mm256_storeu_ps(f,s);return f[0];
}
int main(int argc,char**argv){
  int th=argc>1?atoi(argv[1]):2; long n=200000000/ (th); double sink=0;
  for(int rep=0;rep<3;rep++){
  double t0=now();
  #pragma omp parallel num_threads(th) reduction(+:sink)
  sink+=zmm(n);
  double tz=now()-t0; t0=now();
  #pragma omp parallel num_threads(th) reduction(+:sink)
  sink+=ymm(n);
  double ty=now()-t0;
  printf("threads %d: AVX-512 FMA %.1f GFLOP/s  AVX2 FMA %.1f GFLOP/s\n", th,
    th*n*12.0*32/tz*1e-9, th*n*12.0*16/ty*1e-9);
  }
  return sink==1.2345;
}
