/* vec_kernels.h — the bodies of the CPU backend's vector loops, written once against a
 * native vector type and included by vec_kernels.c once per instruction set (no include
 * guard). The includer defines:
 *   VEC_FN(name)  the name of this copy's function (name_avx512, name_avx2, name_plain)
 *   VEC_TARGET    its target attribute (empty for the plain build)
 *   VF, VI, VL    the native fp32 vector, its int32 twin, its lanes (16, 8 or 4)
 *   VD, VFD, VDL  the native fp64 vector, the fp32 vector of as many lanes, its lanes
 *   VEC_ROWS, VEC_NVEC  combine's register tile: VEC_ROWS rows x VEC_NVEC vectors
 * and this file undefines them at its end, ready for the next copy.
 *
 * Every function computes each output element by the same chain of operations whatever VL:
 * products and elementwise expressions per lane (separate multiplies and adds,
 * -ffp-contract=off), and every reduction as a fixed set of logical partial sums (16 for the
 * softmax, 32 for norm rows) combined in a fixed tree, the native vectors holding slices of
 * the logical lanes. So every copy gives the same bits (tests/test_kernels.c checks). */

/* ---- attention: combine (the row products) ---------------------------------------------
 * For r < R and j < w, with a_r[k] = a[r*lda + k*inca]:
 *   out[r*ldo + j] = init + a_r[0] * B[j] + a_r[1] * B[ldb + j] + ...
 *                         + a_r[K-1] * B[(K-1)*ldb + j]
 * summed left to right, init = out[r*ldo + j] when accumulating, else 0. A sum split in k
 * (terms 0..k1-1, then the rest accumulating) gives the same bits as one call. */

/* R rows by NV*VL columns in R*NV accumulators held in registers (R, NV compile-time). */
static inline __attribute__((always_inline)) void VEC_FN(combine_tile)(
    float *out, size_t ldo, const float *a, size_t lda, size_t inca, const float *B, size_t ldb,
    int K, int accumulate, const int R, const int NV) {
    VF c[VEC_ROWS][VEC_NVEC];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            if (accumulate) c[r][v] = VLOAD(out + r * ldo + VL * v);
            else c[r][v] = VSPLAT(0.0f);
        }
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        VF bv[VEC_NVEC];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = VLOAD(b + VL * v);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const float ak = a[r * lda + (size_t)k * inca];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) c[r][v] += ak * bv[v];
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) VSTORE(out + r * ldo + VL * v, c[r][v]);
}

/* R rows (compile-time) over all w columns: whole tiles, then one vector at a time, then the
 * last columns one at a time. */
static inline __attribute__((always_inline)) void VEC_FN(combine_row_block)(
    float *out, size_t ldo, const float *a, size_t lda, size_t inca, const float *B, size_t ldb,
    int K, int w, int accumulate, const int R) {
    int j0 = 0;
    for (; j0 + VL * VEC_NVEC <= w; j0 += VL * VEC_NVEC)
        VEC_FN(combine_tile)(out + j0, ldo, a, lda, inca, B + j0, ldb, K, accumulate, R,
                             VEC_NVEC);
    for (; j0 + VL <= w; j0 += VL)
        VEC_FN(combine_tile)(out + j0, ldo, a, lda, inca, B + j0, ldb, K, accumulate, R, 1);
    for (int r = 0; r < R; r++)
        for (int j = j0; j < w; j++) {
            float c = accumulate ? out[r * ldo + j] : 0.0f;
            for (int k = 0; k < K; k++)
                c += a[r * lda + (size_t)k * inca] * B[(size_t)k * ldb + j];
            out[r * ldo + j] = c;
        }
}

/* All R rows: blocks of VEC_ROWS rows, the rest one by one. */
VEC_TARGET static void VEC_FN(combine)(float *out, size_t ldo, const float *a, size_t lda,
                                       size_t inca, const float *B, size_t ldb, int R, int K,
                                       int w, int accumulate) {
    int r0 = 0;
    for (; r0 + VEC_ROWS <= R; r0 += VEC_ROWS)
        VEC_FN(combine_row_block)(out + r0 * ldo, ldo, a + r0 * lda, lda, inca, B, ldb, K, w,
                                  accumulate, VEC_ROWS);
    for (; r0 < R; r0++)
        VEC_FN(combine_row_block)(out + r0 * ldo, ldo, a + r0 * lda, lda, inca, B, ldb, K, w,
                                  accumulate, 1);
}

/* ---- attention: softmax ------------------------------------------------------------------ */

/* In place over x[0..m): x = softmax(scale * x) (the max taken after scaling). The sum: 16
 * logical partial sums over the first m / 16 * 16 elements, their fixed tree, then the rest in
 * order. */
static inline __attribute__((always_inline)) void VEC_FN(softmax_scaled)(float *x, int m,
                                                                         float scale) {
    const int m16 = m / 16 * 16;
    float maxs = -INFINITY;
    if (m16) {
        VF mv[16 / VL];
        for (int p = 0; p < 16 / VL; p++) mv[p] = VSPLAT(-INFINITY);
        for (int j = 0; j < m16; j += 16)
            for (int p = 0; p < 16 / VL; p++) {
                VF v = scale * VLOAD(x + j + VL * p);
                VSTORE(x + j + VL * p, v);
                mv[p] = VMAX(v, mv[p]);
            }
        float lanes[16];
        for (int p = 0; p < 16 / VL; p++) VSTORE(lanes + VL * p, mv[p]);
        maxs = cpu_max16(lanes);
    }
    for (int j = m16; j < m; j++) {
        x[j] *= scale;
        if (x[j] > maxs) maxs = x[j];
    }
    VF sv[16 / VL];
    for (int p = 0; p < 16 / VL; p++) sv[p] = VSPLAT(0.0f);
    for (int j = 0; j < m16; j += 16)
        for (int p = 0; p < 16 / VL; p++) {
            VF e = VEXP(VLOAD(x + j + VL * p) - maxs);
            VSTORE(x + j + VL * p, e);
            sv[p] += e;
        }
    float lanes[16];
    for (int p = 0; p < 16 / VL; p++) VSTORE(lanes + VL * p, sv[p]);
    float sum = cpu_sum16(lanes);
    for (int j = m16; j < m; j++) {
        x[j] = VEXP1(x[j] - maxs);
        sum += x[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < m16; j += VL) VSTORE(x + j, inv * VLOAD(x + j));
    for (int j = m16; j < m; j++) x[j] *= inv;
}

/* Softmax rows t0 .. t0 + rows - 1 of one (b, h) pair: the scores s[r, .] (stride Tp) into
 * probability rows p[r, .] (stride T), zero past the diagonal. */
VEC_TARGET static void VEC_FN(softmax_rows)(float *p, size_t T, float *s, size_t Tp, int t0,
                                            int rows, float scale) {
    for (int r = 0; r < rows; r++) {
        const int m = t0 + r + 1;
        float *pr = p + (size_t)r * T;
        VEC_FN(softmax_scaled)(s + (size_t)r * Tp, m, scale);
        memcpy(pr, s + (size_t)r * Tp, (size_t)m * sizeof(float));
        if ((size_t)m < T) memset(pr + m, 0, (T - (size_t)m) * sizeof(float));
    }
}

/* The softmax backward of rows t0 .. t0 + rows - 1: with D = sum_j p[j] dp[j] (16 logical
 * partial sums as above), ds[j] = scale * p[j] * (dp[j] - D) for j <= t0 + r; ds rows have
 * stride Tp, p rows stride T, dp rows stride Tp. */
VEC_TARGET static void VEC_FN(softmax_backward_rows)(float *ds, size_t Tp, const float *p,
                                                     size_t T, const float *dp, int t0,
                                                     int rows, float scale) {
    for (int r = 0; r < rows; r++) {
        const int m = t0 + r + 1, m16 = m / 16 * 16;
        float *dsr = ds + (size_t)r * Tp;
        const float *pr = p + (size_t)r * T, *dpr = dp + (size_t)r * Tp;
        VF dv[16 / VL];
        for (int q = 0; q < 16 / VL; q++) dv[q] = VSPLAT(0.0f);
        for (int j = 0; j < m16; j += 16)
            for (int q = 0; q < 16 / VL; q++)
                dv[q] += VLOAD(pr + j + VL * q) * VLOAD(dpr + j + VL * q);
        float lanes[16];
        for (int q = 0; q < 16 / VL; q++) VSTORE(lanes + VL * q, dv[q]);
        float D = cpu_sum16(lanes);
        for (int j = m16; j < m; j++) D += pr[j] * dpr[j];
        for (int j = 0; j < m16; j += VL)
            VSTORE(dsr + j, scale * VLOAD(pr + j) * (VLOAD(dpr + j) - D));
        for (int j = m16; j < m; j++) dsr[j] = scale * pr[j] * (dpr[j] - D);
    }
}

/* ---- SwiGLU: out = silu(gate) * up, silu(x) = x * sigmoid(x) -----------------------------
 * Elementwise, VL elements at a time; a tail of fewer goes through the same block on
 * zero-padded copies. */

/* o[i] = silu(g[i]) * u[i] for i < VL */
static inline __attribute__((always_inline)) void VEC_FN(swiglu_forward_vec)(float *o,
                                                                             const float *g,
                                                                             const float *u) {
    const VF gv = VLOAD(g);
    VSTORE(o, gv * VSIGMOID(gv) * VLOAD(u));
}

VEC_TARGET static void VEC_FN(swiglu_forward_span)(float *o, const float *g, const float *u,
                                                   size_t n) {
    const size_t whole = n / VL * VL, rest = n - whole;
    for (size_t i = 0; i < whole; i += VL) VEC_FN(swiglu_forward_vec)(o + i, g + i, u + i);
    if (rest) {
        float gt[VL] = {0}, ut[VL] = {0}, ot[VL];
        memcpy(gt, g + whole, rest * sizeof(float));
        memcpy(ut, u + whole, rest * sizeof(float));
        VEC_FN(swiglu_forward_vec)(ot, gt, ut);
        memcpy(o + whole, ot, rest * sizeof(float));
    }
}

/* d silu(x)/dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))
 * dgate += dout * up * silu'(gate);   dup += dout * silu(gate)   (for i < VL) */
static inline __attribute__((always_inline)) void VEC_FN(swiglu_backward_vec)(
    float *dg, float *du, const float *d, const float *g, const float *u) {
    const VF dv = VLOAD(d), gv = VLOAD(g), uv = VLOAD(u);
    const VF sig = VSIGMOID(gv);
    const VF silu = gv * sig;
    VSTORE(dg, VLOAD(dg) + dv * uv * sig * (1.0f + gv * (1.0f - sig)));
    VSTORE(du, VLOAD(du) + dv * silu);
}

VEC_TARGET static void VEC_FN(swiglu_backward_span)(float *dg, float *du, const float *d,
                                                    const float *g, const float *u, size_t n) {
    const size_t whole = n / VL * VL, rest = n - whole;
    for (size_t i = 0; i < whole; i += VL)
        VEC_FN(swiglu_backward_vec)(dg + i, du + i, d + i, g + i, u + i);
    if (rest) {
        float dgt[VL] = {0}, dut[VL] = {0}, dt[VL] = {0}, gt[VL] = {0}, ut[VL] = {0};
        const size_t bytes = rest * sizeof(float);
        memcpy(dgt, dg + whole, bytes), memcpy(dut, du + whole, bytes);
        memcpy(dt, d + whole, bytes), memcpy(gt, g + whole, bytes), memcpy(ut, u + whole, bytes);
        VEC_FN(swiglu_backward_vec)(dgt, dut, dt, gt, ut);
        memcpy(dg + whole, dgt, bytes), memcpy(du + whole, dut, bytes);
    }
}

/* ---- RMSNorm / LayerNorm (norm.c states the op) -------------------------------------------
 * Row sums in double: NORM_LANES logical partial sums (element c to c mod NORM_LANES, in
 * index order) in a fixed tree (cpu_sum32d), then the last C mod NORM_LANES elements in order. */

/* sum_c (x[c] - mu)^2 in double */
static inline __attribute__((always_inline)) double VEC_FN(row_sum_sq_dev)(const float *x,
                                                                           int C, double mu) {
    const int whole = C / NORM_LANES * NORM_LANES;
    VD acc[NORM_LANES / VDL];
    for (int p = 0; p < NORM_LANES / VDL; p++) acc[p] = (VD){0};
    for (int c = 0; c < whole; c += NORM_LANES)
        for (int p = 0; p < NORM_LANES / VDL; p++) {
            VD dv = VLOAD_WIDE(x + c + VDL * p) - mu;
            acc[p] += dv * dv;
        }
    double lanes[NORM_LANES];
    for (int p = 0; p < NORM_LANES / VDL; p++) memcpy(lanes + VDL * p, &acc[p], sizeof acc[p]);
    double s = cpu_sum32d(lanes);
    for (int c = whole; c < C; c++) {
        double dv = x[c] - mu;
        s += dv * dv;
    }
    return s;
}

/* sum_c x[c] in double */
static inline __attribute__((always_inline)) double VEC_FN(row_sum)(const float *x, int C) {
    const int whole = C / NORM_LANES * NORM_LANES;
    VD acc[NORM_LANES / VDL];
    for (int p = 0; p < NORM_LANES / VDL; p++) acc[p] = (VD){0};
    for (int c = 0; c < whole; c += NORM_LANES)
        for (int p = 0; p < NORM_LANES / VDL; p++) acc[p] += VLOAD_WIDE(x + c + VDL * p);
    double lanes[NORM_LANES];
    for (int p = 0; p < NORM_LANES / VDL; p++) memcpy(lanes + VDL * p, &acc[p], sizeof acc[p]);
    double s = cpu_sum32d(lanes);
    for (int c = whole; c < C; c++) s += x[c];
    return s;
}

/* Rows n0 .. n1-1 of the forward (layer: LayerNorm; b NULL: no bias). */
VEC_TARGET static void VEC_FN(norm_forward_rows)(int layer, float *o, float *mean, float *rstd,
                                                 const float *x, const float *w,
                                                 const float *b, int n0, int n1, int C,
                                                 float eps, float out_scale) {
    const int Cv = C / VL * VL;
    for (int n = n0; n < n1; n++) {
        const float *xr = x + (size_t)n * C;
        float *orow = o + (size_t)n * C;
        /* two-pass: second moment about the (double) mean; about 0 for RMSNorm */
        const double mu = layer ? VEC_FN(row_sum)(xr, C) / C : 0.0;
        const double m2 = VEC_FN(row_sum_sq_dev)(xr, C, mu) / C;
        const float mu_f = (float)mu, r = (float)(1.0 / sqrt(m2 + (double)eps));
        if (layer && mean) mean[n] = mu_f;
        rstd[n] = r;
        /* out = s * ((x - mu) * r * w + b) */
        for (int c = 0; c < Cv; c += VL) {
            VF v = (VLOAD(xr + c) - mu_f) * r * VLOAD(w + c);
            if (b) v += VLOAD(b + c);
            VSTORE(orow + c, out_scale * v);
        }
        for (int c = Cv; c < C; c++) {
            float v = (xr[c] - mu_f) * r * w[c];
            if (b) v += b[c];
            orow[c] = out_scale * v;
        }
    }
}

/* Rows n0 .. n1-1 of the input gradient. */
VEC_TARGET static void VEC_FN(norm_backward_rows)(int layer, float *dx, const float *g,
                                                  const float *x, const float *w,
                                                  const float *mean, const float *rstd, int n0,
                                                  int n1, int C, float out_scale) {
    const int whole = C / NORM_LANES * NORM_LANES, Cv = C / VL * VL;
    const double s = out_scale;
    for (int n = n0; n < n1; n++) {
        const float *xr = x + (size_t)n * C, *gr = g + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        const float mu = layer ? mean[n] : 0.0f, r = rstd[n];
        /* sum_g = sum_c gc, sum_gx = sum_c gc * xhat_c, gc = s * dout * w in double */
        VD acc_g[NORM_LANES / VDL], acc_gx[NORM_LANES / VDL];
        for (int p = 0; p < NORM_LANES / VDL; p++) acc_g[p] = acc_gx[p] = (VD){0};
        for (int c = 0; c < whole; c += NORM_LANES)
            for (int p = 0; p < NORM_LANES / VDL; p++) {
                const int cc = c + VDL * p;
                VFD xh, wv;
                memcpy(&xh, xr + cc, sizeof xh);
                memcpy(&wv, w + cc, sizeof wv);
                xh = (xh - mu) * r;
                const VD gc = s * VLOAD_WIDE(gr + cc) * __builtin_convertvector(wv, VD);
                acc_g[p] += gc;
                acc_gx[p] += gc * __builtin_convertvector(xh, VD);
            }
        double lanes_g[NORM_LANES], lanes_gx[NORM_LANES];
        for (int p = 0; p < NORM_LANES / VDL; p++) {
            memcpy(lanes_g + VDL * p, &acc_g[p], sizeof acc_g[p]);
            memcpy(lanes_gx + VDL * p, &acc_gx[p], sizeof acc_gx[p]);
        }
        double sum_g = cpu_sum32d(lanes_g), sum_gx = cpu_sum32d(lanes_gx);
        for (int c = whole; c < C; c++) {
            const double gc = s * gr[c] * w[c];
            sum_g += gc;
            sum_gx += gc * ((xr[c] - mu) * r);
        }
        const float mean_g = layer ? (float)(sum_g / C) : 0.0f;
        const float mean_gx = (float)(sum_gx / C);
        for (int c = 0; c < Cv; c += VL) {
            const VF gc = out_scale * VLOAD(gr + c) * VLOAD(w + c);
            const VF xhat = (VLOAD(xr + c) - mu) * r;
            VSTORE(dxr + c, VLOAD(dxr + c) + r * (gc - mean_g - xhat * mean_gx));
        }
        for (int c = Cv; c < C; c++) {
            const float gc = out_scale * gr[c] * w[c];
            const float xhat = (xr[c] - mu) * r;
            dxr[c] += r * (gc - mean_g - xhat * mean_gx);
        }
    }
}

/* Columns c0 .. c1-1 (at most NORM_COL_BLOCK) of the weight and bias gradients: each column
 * summed over rows in row order, in double. */
VEC_TARGET static void VEC_FN(norm_param_grads)(int layer, float *dweight, float *dbias,
                                                const float *g, const float *x,
                                                const float *mean, const float *rstd, int N,
                                                int C, int c0, int c1, float out_scale) {
    double acc_w[NORM_COL_BLOCK] = {0}, acc_b[NORM_COL_BLOCK] = {0};
    const int width = c1 - c0, whole = width / VDL * VDL;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C + c0, *gr = g + (size_t)n * C + c0;
        const float mu = layer ? mean[n] : 0.0f, r = rstd[n];
        for (int c = 0; c < whole; c += VDL) {
            VFD xh;
            memcpy(&xh, xr + c, sizeof xh);
            xh = (xh - mu) * r;
            const VD gd = VLOAD_WIDE(gr + c);
            VD aw, ab;
            memcpy(&aw, acc_w + c, sizeof aw);
            memcpy(&ab, acc_b + c, sizeof ab);
            aw += gd * __builtin_convertvector(xh, VD);
            ab += gd;
            memcpy(acc_w + c, &aw, sizeof aw);
            memcpy(acc_b + c, &ab, sizeof ab);
        }
        for (int c = whole; c < width; c++) {
            acc_w[c] += (double)gr[c] * ((xr[c] - mu) * r);
            acc_b[c] += gr[c];
        }
    }
    for (int c = 0; c < width; c++) dweight[c0 + c] += (float)(out_scale * acc_w[c]);
    if (layer && dbias)
        for (int c = 0; c < width; c++) dbias[c0 + c] += (float)(out_scale * acc_b[c]);
}

/* ---- AdamW (adamw.c states the op): elementwise, vectorized by the compiler --------------- */
VEC_TARGET static void VEC_FN(adamw_span)(float *restrict master, const float *restrict grad,
                                          float *restrict m, float *restrict v, size_t n,
                                          const CpuAdamWConstants *k) {
    const float b1 = k->b1, b2 = k->b2, lr = k->lr, eps = k->eps, wd = k->wd,
                grad_scale = k->grad_scale, bc1 = k->bc1, bc2 = k->bc2;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = grad_scale * grad[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        master[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * master[i]);
    }
}

/* This copy's table. */
static const CpuVecKernels VEC_FN(kernels) = {
    .combine = VEC_FN(combine),
    .softmax_rows = VEC_FN(softmax_rows),
    .softmax_backward_rows = VEC_FN(softmax_backward_rows),
    .swiglu_forward_span = VEC_FN(swiglu_forward_span),
    .swiglu_backward_span = VEC_FN(swiglu_backward_span),
    .norm_forward_rows = VEC_FN(norm_forward_rows),
    .norm_backward_rows = VEC_FN(norm_backward_rows),
    .norm_param_grads = VEC_FN(norm_param_grads),
    .adamw_span = VEC_FN(adamw_span),
};

#undef VEC_FN
#undef VEC_TARGET
#undef VF
#undef VI
#undef VL
#undef VD
#undef VFD
#undef VDL
#undef VEC_ROWS
#undef VEC_NVEC
