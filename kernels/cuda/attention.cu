/* attention.cu — causal softmax attention, scale 1/sqrt(HS), built from strided-batched
 * cuBLASLt GEMMs (tensor cores, bf16 operands, fp32 accumulation) and two fused softmax
 * kernels. Chosen over a fused flash-style kernel because it is simple enough to be right
 * without hardware at hand, every FLOP-heavy part runs in cuBLASLt, and it matches the CPU
 * reference's structure (S, P, O) step for step; its cost is O(B NH T^2) memory for P and
 * the fp32 score scratch, acceptable at the sequence lengths normbench trains (<= 2048).
 *
 * q, k, v, out are [B,T,NH,HS]; the GEMMs want each (b,h) head contiguous, so q, k, v (and
 * dout) are first permuted into [B,NH,T,HS] scratch copies. Per head, row-major:
 *   forward:  S = scale Q K^T (fp32 scratch),  P = causal_softmax(S) -> saved (bf16,
 *             [B,NH,T,T], zero above the diagonal),  O = P V -> un-permuted into out.
 *   backward: dV = P^T dO,  dP = dO V^T (fp32),  dS = scale P (dP - rowsum(P dP)) (bf16),
 *             dQ = dS K,  dK = dS^T Q; dQ, dK, dV come out of the GEMMs in fp32 and are
 *             added into dq, dk, dv (bf16) with one rounding.
 * `saved` holds P in bf16 (P must be bf16 to be a GEMM operand): attention_saved_bytes =
 * B*NH*T*T*2. Each softmax row is one warp with fixed-order reductions: deterministic. */
#include "common.cuh"

size_t cu_attention_saved_bytes(Backend *be, int B, int T, int NH) {
    (void)be;
    return (size_t)B * NH * T * T * sizeof(bf16);
}

/* The head permutes move whole head rows (HS contiguous elements in both layouts), VEC
 * elements per thread: 16-byte loads and stores when HS and the pointers allow, else one
 * element. Index arithmetic is 32-bit (launches split by sequences, as in rope.cu); the
 * first version used 64-bit div/mod per element and was the slowest part of attention. */
/* Chunk idx (VEC elements) of a [B,T,NH,HS] tensor, idx = (((b*T + t)*NH + h)*HS + d) / VEC:
 * the offset of its first element in the head-major [B,NH,T,HS] layout. */
template <int VEC>
__device__ __forceinline__ size_t head_major_offset(unsigned idx, int T, int NH, int HS) {
    const unsigned per_row = (unsigned)HS / VEC;
    unsigned c = idx % per_row, row = idx / per_row;
    unsigned h = row % (unsigned)NH, bt = row / (unsigned)NH;
    unsigned t = bt % (unsigned)T, b = bt / (unsigned)T;
    return (((size_t)b * NH + h) * T + t) * HS + (size_t)c * VEC;
}

/* [B,T,NH,HS] -> [B,NH,T,HS] (bf16 copy) */
template <int VEC>
__global__ void permute_kernel(bf16 *__restrict__ dst, const bf16 *__restrict__ src,
                               unsigned chunks, int T, int NH, int HS) {
    for (unsigned idx = blockIdx.x * blockDim.x + threadIdx.x; idx < chunks;
         idx += gridDim.x * blockDim.x) {
        size_t d = head_major_offset<VEC>(idx, T, NH, HS); /* idx enumerates src chunks */
        *(Vec<bf16, VEC> *)(dst + d) = *(const Vec<bf16, VEC> *)(src + (size_t)idx * VEC);
    }
}

/* [B,NH,T,HS] -> [B,T,NH,HS]; ACC: dst += src (src fp32), else dst = src (bf16) */
template <typename S, bool ACC, int VEC>
__global__ void unpermute_kernel(bf16 *__restrict__ dst, const S *__restrict__ src,
                                 unsigned chunks, int T, int NH, int HS) {
    for (unsigned idx = blockIdx.x * blockDim.x + threadIdx.x; idx < chunks;
         idx += gridDim.x * blockDim.x) {
        size_t s = head_major_offset<VEC>(idx, T, NH, HS); /* idx enumerates dst chunks */
        Vec<S, VEC> in = *(const Vec<S, VEC> *)(src + s);
        Vec<bf16, VEC> *o = (Vec<bf16, VEC> *)(dst + (size_t)idx * VEC);
        Vec<bf16, VEC> r;
        if (ACC) r = *o;
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            float v = (float)in.v[k];
            if (ACC) v += __bfloat162float(r.v[k]);
            r.v[k] = __float2bfloat16_rn(v);
        }
        *o = r;
    }
}

/* one warp per row (bh, i): P[j] = exp(S[j] - max) / sum over j <= i; 0 for j > i */
__global__ void softmax_fwd_kernel(bf16 *__restrict__ P, const float *__restrict__ S,
                                   size_t rows, int T) {
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int i = (int)(row % T);
    const float *s = S + row * T;
    bf16 *p = P + row * T;
    float mx = -INFINITY;
    for (int j = lane; j <= i; j += 32) mx = fmaxf(mx, s[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += 32) sum += expf(s[j] - mx);
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32)
        p[j] = __float2bfloat16_rn(j <= i ? expf(s[j] - mx) * inv : 0.0f);
}

/* one warp per row: dS[j] = scale P[j] (dP[j] - sum_{j'<=i} P[j'] dP[j']) for j <= i, else 0 */
__global__ void softmax_bwd_kernel(bf16 *__restrict__ dS, const bf16 *__restrict__ P,
                                   const float *__restrict__ dP, size_t rows, int T,
                                   float scale) {
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int i = (int)(row % T);
    const bf16 *p = P + row * T;
    const float *dp = dP + row * T;
    bf16 *ds = dS + row * T;
    float acc = 0.0f;
    for (int j = lane; j <= i; j += 32) acc += __bfloat162float(p[j]) * dp[j];
    float dot = warp_sum(acc);
    for (int j = lane; j < T; j += 32)
        ds[j] = __float2bfloat16_rn(j <= i ? scale * __bfloat162float(p[j]) * (dp[j] - dot)
                                           : 0.0f);
}

static void permute(Backend *be, bf16 *dst, const void *src, int B, int T, int NH, int HS) {
    const bf16 *s = (const bf16 *)src;
    const int vec = (HS % 8 == 0 && aligned16(dst) && aligned16(src)) ? 8 : 1;
    cu_by_sequences(B, (size_t)T * NH * HS, [&](size_t off, size_t n) {
        const unsigned chunks = (unsigned)(n / vec);
        if (vec == 8)
            permute_kernel<8><<<cu_grid(chunks), 256, 0, cu_stream(be)>>>(dst + off, s + off,
                                                                         chunks, T, NH, HS);
        else
            permute_kernel<1><<<cu_grid(chunks), 256, 0, cu_stream(be)>>>(dst + off, s + off,
                                                                         chunks, T, NH, HS);
        LAUNCH_CHECK("permute_kernel");
    });
}

/* dst = src (bf16 src) or dst += src (fp32 src), [B,NH,T,HS] -> [B,T,NH,HS] */
template <typename S, bool ACC>
static void unpermute(Backend *be, void *dst, const S *src, int B, int T, int NH, int HS) {
    bf16 *d = (bf16 *)dst;
    const int vec = (HS % 4 == 0 && aligned16(dst) && aligned16(src)) ? 4 : 1;
    cu_by_sequences(B, (size_t)T * NH * HS, [&](size_t off, size_t n) {
        const unsigned chunks = (unsigned)(n / vec);
        if (vec == 4)
            unpermute_kernel<S, ACC, 4><<<cu_grid(chunks), 256, 0, cu_stream(be)>>>(
                d + off, src + off, chunks, T, NH, HS);
        else
            unpermute_kernel<S, ACC, 1><<<cu_grid(chunks), 256, 0, cu_stream(be)>>>(
                d + off, src + off, chunks, T, NH, HS);
        LAUNCH_CHECK("unpermute_kernel");
    });
}

void cu_attention_forward(Backend *be, void *out, void *saved, const void *q, const void *k,
                          const void *v, int B, int T, int NH, int HS) {
    if (B <= 0 || T <= 0 || NH <= 0 || HS <= 0) return;
    const int BH = B * NH;
    const size_t head = (size_t)T * HS, nh = (size_t)BH * head, nss = (size_t)BH * T * T;
    const size_t hb = cu_align256(nh * sizeof(bf16));
    char *sc = (char *)cu_scratch(be, SCRATCH_ATTN, 4 * hb + cu_align256(nss * sizeof(float)));
    bf16 *Qp = (bf16 *)sc, *Kp = (bf16 *)(sc + hb), *Vp = (bf16 *)(sc + 2 * hb),
         *Op = (bf16 *)(sc + 3 * hb);
    float *S = (float *)(sc + 4 * hb);
    bf16 *P = (bf16 *)saved;
    const float scale = 1.0f / sqrtf((float)HS);

    permute(be, Qp, q, B, T, NH, HS);
    permute(be, Kp, k, B, T, NH, HS);
    permute(be, Vp, v, B, T, NH, HS);
    /* S^T[j,i] (col-major, ld T) = scale * op(K)[j,d] Q^T[d,i]: K, Q col-major [HS,T] */
    cu_gemm(be, 1, 0, T, T, HS, scale, Kp, HS, (long long)head, Qp, HS, (long long)head, 0.0f,
            S, CUDA_R_32F, T, (long long)T * T, BH);
    const size_t rows = (size_t)BH * T;
    softmax_fwd_kernel<<<cu_blocks(rows, 8), 256, 0, cu_stream(be)>>>(P, S, rows, T);
    LAUNCH_CHECK("softmax_fwd_kernel");
    /* O^T[d,i] = V^T[d,j] P^T[j,i]: V col-major [HS,T], P row-major = col-major P^T */
    cu_gemm(be, 0, 0, HS, T, T, 1.0f, Vp, HS, (long long)head, P, T, (long long)T * T, 0.0f, Op,
            CUDA_R_16BF, HS, (long long)head, BH);
    unpermute<bf16, false>(be, out, Op, B, T, NH, HS);
}

void cu_attention_backward(Backend *be, void *dq, void *dk, void *dv, const void *dout,
                           const void *saved, const void *q, const void *k, const void *v,
                           int B, int T, int NH, int HS) {
    if (B <= 0 || T <= 0 || NH <= 0 || HS <= 0) return;
    const int BH = B * NH;
    const size_t head = (size_t)T * HS, nh = (size_t)BH * head, nss = (size_t)BH * T * T;
    const size_t hb = cu_align256(nh * sizeof(bf16)), hf = cu_align256(nh * sizeof(float));
    const size_t pf = cu_align256(nss * sizeof(float)), pb = cu_align256(nss * sizeof(bf16));
    char *sc = (char *)cu_scratch(be, SCRATCH_ATTN, 4 * hb + 3 * hf + pf + pb);
    bf16 *Qp = (bf16 *)sc, *Kp = (bf16 *)(sc + hb), *Vp = (bf16 *)(sc + 2 * hb),
         *dOp = (bf16 *)(sc + 3 * hb);
    float *dQp = (float *)(sc + 4 * hb), *dKp = (float *)(sc + 4 * hb + hf),
          *dVp = (float *)(sc + 4 * hb + 2 * hf);
    float *dP = (float *)(sc + 4 * hb + 3 * hf);
    bf16 *dS = (bf16 *)(sc + 4 * hb + 3 * hf + pf);
    const bf16 *P = (const bf16 *)saved;
    const float scale = 1.0f / sqrtf((float)HS);
    const long long sh = (long long)head, sp = (long long)T * T;

    permute(be, Qp, q, B, T, NH, HS);
    permute(be, Kp, k, B, T, NH, HS);
    permute(be, Vp, v, B, T, NH, HS);
    permute(be, dOp, dout, B, T, NH, HS);
    /* dV^T[d,j] = dO^T[d,i] P[i,j]: B operand = P^T col-major view, transposed */
    cu_gemm(be, 0, 1, HS, T, T, 1.0f, dOp, HS, sh, P, T, sp, 0.0f, dVp, CUDA_R_32F, HS, sh, BH);
    /* dP^T[j,i] = op(V)[j,d] dO^T[d,i]  (as S = K Q^T in the forward) */
    cu_gemm(be, 1, 0, T, T, HS, 1.0f, Vp, HS, sh, dOp, HS, sh, 0.0f, dP, CUDA_R_32F, T, sp, BH);
    const size_t rows = (size_t)BH * T;
    softmax_bwd_kernel<<<cu_blocks(rows, 8), 256, 0, cu_stream(be)>>>(dS, P, dP, rows, T, scale);
    LAUNCH_CHECK("softmax_bwd_kernel");
    /* dQ^T[d,i] = K^T[d,j] dS^T[j,i]   (as O = P V) */
    cu_gemm(be, 0, 0, HS, T, T, 1.0f, Kp, HS, sh, dS, T, sp, 0.0f, dQp, CUDA_R_32F, HS, sh, BH);
    /* dK^T[d,j] = Q^T[d,i] dS[i,j]     (as dV = P^T dO) */
    cu_gemm(be, 0, 1, HS, T, T, 1.0f, Qp, HS, sh, dS, T, sp, 0.0f, dKp, CUDA_R_32F, HS, sh, BH);
    unpermute<float, true>(be, dq, dQp, B, T, NH, HS);
    unpermute<float, true>(be, dk, dKp, B, T, NH, HS);
    unpermute<float, true>(be, dv, dVp, B, T, NH, HS);
}
