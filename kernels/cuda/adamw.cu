/* adamw.cu — fused AdamW (Loshchilov & Hutter 2019, decoupled weight decay) on fp32 master
 * weights, exactly as kernels/backend.h and kernels/cpu/adamw.c write it:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
 * on the gradient g = grad_scale * grad (accumulation's 1/k and clipping folded in by the
 * caller), with the bias corrections computed once in double and rounded to fp32; one pass also
 * writes the bf16 compute copy (round to nearest even) when `compute` is given. */
#include <math.h>

#include "common.cuh"

__global__ void adamw_kernel(float *__restrict__ p, bf16 *__restrict__ compute,
                             const float *__restrict__ grad, float *__restrict__ m,
                             float *__restrict__ v, size_t n, float lr, float b1, float b2,
                             float eps, float wd, float grad_scale, float bc1,
                             float bc2) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = grad_scale * grad[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        float pi = p[i];
        pi -= lr * (mhat / (sqrtf(vhat) + eps) + wd * pi);
        p[i] = pi;
        if (compute) compute[i] = tobf(pi);
    }
}

/* train.precision: bf16_pure — torch.optim.Adam's multi-tensor step on bf16 tensors, one
 * bf16 rounding per foreach op (kernels/backend.h, AdamWArgs.bf16_pure). master, m and v
 * hold bf16 values in f32 storage; the compute copy is the master value itself. */
__device__ __forceinline__ float rbf(float x) { return __bfloat162float(tobf(x)); }

__global__ void adamw_bf16_pure_kernel(float *__restrict__ p, bf16 *__restrict__ compute,
                                       const float *__restrict__ grad, float *__restrict__ m,
                                       float *__restrict__ v, size_t n, float decay, float b1,
                                       float b2, float eps, float grad_scale, float bc2_sqrt,
                                       float step_size) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float g = rbf(grad_scale * grad[i]);
        float pi = rbf(p[i]);
        if (decay != 1.0f) pi = rbf(pi * decay);
        const float mi = rbf(m[i] + (1.0f - b1) * (g - m[i]));
        const float vi = rbf(rbf(v[i] * b2) + (1.0f - b2) * g * g);
        const float d = rbf(rbf(rbf(sqrtf(vi)) / bc2_sqrt) + eps);
        pi = rbf(pi + step_size * (mi / d));
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
        if (compute) compute[i] = tobf(pi);
    }
}

void cu_adamw_update(Backend *be, float *master, void *compute, const float *grad, float *m,
                     float *v, size_t n, const AdamWArgs *args) {
    if (!n) return;
    const float bc1 = (float)(1.0 - pow((double)args->beta1, args->step));
    const float bc2 = (float)(1.0 - pow((double)args->beta2, args->step));
    const unsigned blocks = cu_grid(n);
    if (args->bf16_pure) {
        const double bc1d = 1.0 - pow((double)args->beta1, args->step);
        const float bc2_sqrt = (float)sqrt(1.0 - pow((double)args->beta2, args->step));
        const float step_size = (float)(-(double)args->lr / bc1d);
        const float decay = (float)(1.0 - (double)args->lr * args->weight_decay);
        adamw_bf16_pure_kernel<<<blocks, 256, 0, cu_stream(be)>>>(
            master, (bf16 *)compute, grad, m, v, n, decay, args->beta1, args->beta2, args->eps,
            args->grad_scale, bc2_sqrt, step_size);
        LAUNCH_CHECK("adamw_bf16_pure_kernel");
        return;
    }
    adamw_kernel<<<blocks, 256, 0, cu_stream(be)>>>(master, (bf16 *)compute, grad, m, v, n,
                                                    args->lr, args->beta1, args->beta2,
                                                    args->eps, args->weight_decay,
                                                    args->grad_scale, bc1, bc2);
    LAUNCH_CHECK("adamw_kernel");
}
