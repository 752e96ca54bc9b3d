/* ops_ref.c — the reference (scalar) non-matmul kernels and the reference gemm, plus the
 * function that fills a kernel set with them. These define the semantics the SIMD variants
 * are tested against; reductions that decide accuracy (rmsnorm's mean square, softmax's
 * normaliser, attention's dot products and normaliser) accumulate in double so that an F32
 * model run on this set tracks a float64 reference closely. */
#include <math.h>

#include "../pv_kernels_internal.h"
#include "pv_kernels_ref.h"

void pv_ref_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0;
    /* float squares summed in double, exactly as ggml's rms_norm: llama.cpp's Q8_0
     * activation quantization downstream is sensitive to the last bit of the scale */
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = n > 0 ? (float)(sum / (double)n) : 0.0f;
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

void pv_ref_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = fmaxf(max, x[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        /* a row of all -inf (fully masked) gives NaN in ggml too; keep it defined: zeros */
        const float e = max == -INFINITY ? 0.0f : expf(x[i] - max);
        x[i] = e;
        sum += e;
    }
    const float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void pv_ref_silu_mul(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        y[i] = gi / (1.0f + expf(-gi)) * u[i];
    }
}

void pv_ref_add(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void pv_ref_scale(float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void pv_ref_rope(float *x, int n_heads, int head_dim, int n_rot, pv_rope_mode mode,
                 const float *cs, const float *sn) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i++) {
            /* NORM rotates adjacent pairs, NEOX pairs dimension i with i + n_rot/2 */
            const int i0 = mode == PV_ROPE_NEOX ? i : 2 * i;
            const int i1 = mode == PV_ROPE_NEOX ? i + half : 2 * i + 1;
            const float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * cs[i] - x1 * sn[i];
            v[i1] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* Element d of a K or V row of kv_type (F32 or F16; anything else reads as F32). */
static inline float pv_kv_at(const void *row, pv_type t, int d) {
    return t == PV_TYPE_F16 ? pv_f16_to_f32(((const pv_f16 *)row)[d]) : ((const float *)row)[d];
}

void pv_ref_attn_head(float *out, const float *q, const void *k, const void *v,
                      size_t kv_stride, pv_type kv_type, int64_t n_kv, int head_dim, float scale,
                      float *scratch) {
    for (int d = 0; d < head_dim; d++) out[d] = 0.0f;
    if (n_kv <= 0) return;
    for (int64_t j = 0; j < n_kv; j++) {
        const void *kr = (const char *)k + (size_t)j * kv_stride;
        double s = 0;
        for (int d = 0; d < head_dim; d++) s += (double)q[d] * pv_kv_at(kr, kv_type, d);
        scratch[j] = scale * (float)s;
    }
    pv_ref_softmax(scratch, n_kv);
    for (int64_t j = 0; j < n_kv; j++) {
        const void *vr = (const char *)v + (size_t)j * kv_stride;
        const float p = scratch[j];
        for (int d = 0; d < head_dim; d++) out[d] += p * pv_kv_at(vr, kv_type, d);
    }
}

void pv_ref_gemm(pv_type wt, int64_t k, const void *W, size_t w_stride, int64_t r0, int64_t r1,
                 const void *Xq, size_t x_stride, int64_t n_tok, float *Y, int64_t y_stride) {
    const pv_type_traits *tr = pv_type_traits_get((uint32_t)wt);
    if (!tr || !tr->vec_dot) return;
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = (const char *)W + (size_t)r * w_stride;
        for (int64_t t = 0; t < n_tok; t++)
            tr->vec_dot(k, &Y[t * y_stride + r], wr, (const char *)Xq + (size_t)t * x_stride);
    }
}

void pv_kernels_ref_fill(pv_kernel_set *ks) {
    for (uint32_t t = 0; t < PV_TYPE_COUNT; t++) {
        const pv_type_traits *tr = pv_type_traits_get(t);
        ks->vec_dot[t] = tr ? tr->vec_dot : NULL;
        ks->quantize[t] = tr ? tr->from_float : NULL;
    }
    /* activations: llama.cpp's CPU-backend rounding (see quants_ref.c); Q8_K's is the
     * reference one in llama.cpp too */
    ks->quantize[PV_TYPE_Q8_0] = pv_ref_quantize_act_q8_0;
    ks->quantize[PV_TYPE_Q8_1] = pv_ref_quantize_act_q8_1;
    ks->gemm = pv_ref_gemm;
    ks->rmsnorm = pv_ref_rmsnorm;
    ks->softmax = pv_ref_softmax;
    ks->silu_mul = pv_ref_silu_mul;
    ks->add = pv_ref_add;
    ks->scale = pv_ref_scale;
    ks->rope = pv_ref_rope;
    ks->attn_head = pv_ref_attn_head;
}
