/* quants_ref.c — reference row conversions for every supported element type: to_float
 * (dequantize) and from_float (quantize). The quantizers reproduce ggml's reference
 * quantizers (quantize_row_*_ref in ggml-quants.c) operation for operation — the same
 * float expressions, the same rounding helpers, the same search loops for the K-quants —
 * so that activations we quantize are bit-identical to llama.cpp's and files produced by
 * either agree. The block layouts are ggml's (see pv_tensor.h). Every function takes `n`
 * elements; a trailing partial block (n not a multiple of the block size) is ignored,
 * callers check divisibility with pv_type_row_size. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "../pv_kernels_internal.h"
#include "pv_kernels_ref.h"

#define GROUP_MAX_EPS 1e-15f

/* ---- rounding helpers (exactly ggml's results for finite inputs, defined for all) ---- */

/* Round to nearest, ties to even (ggml's nearest_int magic-number trick gives the same
 * for |v| < 2^22). Out-of-range and NaN inputs are clamped instead of invoking UB. */
static inline int pv_nearest_int(float v) {
    if (!(v > -4194303.0f)) return v != v ? 0 : -4194303;
    if (v > 4194303.0f) return 4194303;
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* (int8_t)roundf(v) as ggml writes it, but saturating: roundf rounds ties away from 0. */
static inline int8_t pv_round_i8(float v) {
    float r = roundf(v);
    if (!(r > -128.0f)) return r != r ? 0 : -128;
    if (r > 127.0f) return 127;
    return (int8_t)r;
}

/* (int8_t)(v) truncation as in ggml's "x + 8.5f" idiom, saturating and NaN-safe. */
static inline int pv_trunc_i8(float v) {
    if (!(v > -128.0f)) return v != v ? 0 : -128;
    if (v > 127.0f) return 127;
    return (int)(int8_t)v;
}

static inline int pv_imin(int a, int b) { return a < b ? a : b; }
static inline int pv_imax(int a, int b) { return a > b ? a : b; }

/* ---- F32 / F16 / BF16 ---- */

void pv_ref_to_float_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
void pv_ref_from_float_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
void pv_ref_to_float_f16(const void *src, float *dst, int64_t n) {
    const pv_f16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = pv_f16_to_f32(s[i]);
}
void pv_ref_from_float_f16(const float *src, void *dst, int64_t n) {
    pv_f16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = pv_f32_to_f16(src[i]);
}
void pv_ref_to_float_bf16(const void *src, float *dst, int64_t n) {
    const pv_bf16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = pv_bf16_to_f32(s[i]);
}
void pv_ref_from_float_bf16(const float *src, void *dst, int64_t n) {
    pv_bf16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = pv_f32_to_bf16(src[i]);
}

/* ---- Q4_0: d = max / -8 (max = the value of largest magnitude, sign kept), q = x/d + 8 ---- */

void pv_ref_from_float_q4_0(const float *x, void *dst, int64_t n) {
    pv_block_q4_0 *y = dst;
    const int qk = PV_QK4_0;
    for (int64_t i = 0; i < n / qk; i++) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pv_f32_to_f16(d);
        for (int j = 0; j < qk / 2; j++) {
            const float x0 = x[i * qk + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const int xi0 = pv_imax(0, pv_imin(15, pv_trunc_i8(x0 + 8.5f)));
            const int xi1 = pv_imax(0, pv_imin(15, pv_trunc_i8(x1 + 8.5f)));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

void pv_ref_to_float_q4_0(const void *src, float *y, int64_t n) {
    const pv_block_q4_0 *x = src;
    const int qk = PV_QK4_0;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        for (int j = 0; j < qk / 2; j++) {
            y[i * qk + j] = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            y[i * qk + j + qk / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ---- Q4_1: d = (max - min) / 15, m = min, q = (x - min)/d ---- */

void pv_ref_from_float_q4_1(const float *x, void *dst, int64_t n) {
    pv_block_q4_1 *y = dst;
    const int qk = PV_QK4_1;
    for (int64_t i = 0; i < n / qk; i++) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pv_f32_to_f16(d);
        y[i].m = pv_f32_to_f16(min);
        for (int j = 0; j < qk / 2; j++) {
            const float x0 = (x[i * qk + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            const int xi0 = pv_imax(0, pv_imin(15, pv_trunc_i8(x0 + 0.5f)));
            const int xi1 = pv_imax(0, pv_imin(15, pv_trunc_i8(x1 + 0.5f)));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

void pv_ref_to_float_q4_1(const void *src, float *y, int64_t n) {
    const pv_block_q4_1 *x = src;
    const int qk = PV_QK4_1;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        const float m = pv_f16_to_f32(x[i].m);
        for (int j = 0; j < qk / 2; j++) {
            y[i * qk + j] = (float)(x[i].qs[j] & 0x0F) * d + m;
            y[i * qk + j + qk / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* ---- Q5_0: d = max / -16, q = x/d + 16 (5 bits: low nibble in qs, bit 4 in qh) ---- */

void pv_ref_from_float_q5_0(const float *x, void *dst, int64_t n) {
    pv_block_q5_0 *y = dst;
    const int qk = PV_QK5_0;
    for (int64_t i = 0; i < n / qk; i++) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pv_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; j++) {
            const float x0 = x[i * qk + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            const uint32_t xi0 = (uint32_t)pv_imax(0, pv_imin(31, pv_trunc_i8(x0 + 16.5f)));
            const uint32_t xi1 = (uint32_t)pv_imax(0, pv_imin(31, pv_trunc_i8(x1 + 16.5f)));
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void pv_ref_to_float_q5_0(const void *src, float *y, int64_t n) {
    const pv_block_q5_0 *x = src;
    const int qk = PV_QK5_0;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < qk / 2; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10);
            const int xh1 = (int)((qh >> (j + 12)) & 0x10);
            y[i * qk + j] = (float)(((x[i].qs[j] & 0x0F) | xh0) - 16) * d;
            y[i * qk + j + qk / 2] = (float)(((x[i].qs[j] >> 4) | xh1) - 16) * d;
        }
    }
}

/* ---- Q5_1: d = (max - min) / 31, m = min ---- */

void pv_ref_from_float_q5_1(const float *x, void *dst, int64_t n) {
    pv_block_q5_1 *y = dst;
    const int qk = PV_QK5_1;
    for (int64_t i = 0; i < n / qk; i++) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pv_f32_to_f16(d);
        y[i].m = pv_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; j++) {
            const float x0 = (x[i * qk + j] - min) * id;
            const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
            /* ggml casts straight to uint8_t here (values are in [0.5, 31.5]) */
            const uint32_t xi0 = (uint32_t)pv_imax(0, pv_imin(31, pv_trunc_i8(x0 + 0.5f)));
            const uint32_t xi1 = (uint32_t)pv_imax(0, pv_imin(31, pv_trunc_i8(x1 + 0.5f)));
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void pv_ref_to_float_q5_1(const void *src, float *y, int64_t n) {
    const pv_block_q5_1 *x = src;
    const int qk = PV_QK5_1;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        const float m = pv_f16_to_f32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < qk / 2; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10);
            const int xh1 = (int)((qh >> (j + 12)) & 0x10);
            y[i * qk + j] = (float)((x[i].qs[j] & 0x0F) | xh0) * d + m;
            y[i * qk + j + qk / 2] = (float)((x[i].qs[j] >> 4) | xh1) * d + m;
        }
    }
}

/* ---- Q8_0: d = amax / 127, q = roundf(x / d) ---- */

void pv_ref_from_float_q8_0(const float *x, void *dst, int64_t n) {
    pv_block_q8_0 *y = dst;
    const int qk = PV_QK8_0;
    for (int64_t i = 0; i < n / qk; i++) {
        float amax = 0.0f;
        for (int j = 0; j < qk; j++) amax = fmaxf(amax, fabsf(x[i * qk + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pv_f32_to_f16(d);
        for (int j = 0; j < qk; j++) y[i].qs[j] = pv_round_i8(x[i * qk + j] * id);
    }
}

void pv_ref_to_float_q8_0(const void *src, float *y, int64_t n) {
    const pv_block_q8_0 *x = src;
    const int qk = PV_QK8_0;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        for (int j = 0; j < qk; j++) y[i * qk + j] = (float)x[i].qs[j] * d;
    }
}

/* ---- Q8_1: as Q8_0 plus s = d * sum(q) (used by the Q4_1/Q5_1 dot products) ---- */

void pv_ref_from_float_q8_1(const float *x, void *dst, int64_t n) {
    pv_block_q8_1 *y = dst;
    const int qk = PV_QK8_1;
    for (int64_t i = 0; i < n / qk; i++) {
        float amax = 0.0f;
        for (int j = 0; j < qk; j++) amax = fmaxf(amax, fabsf(x[i * qk + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = pv_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < qk; j++) {
            y[i].qs[j] = pv_round_i8(x[i * qk + j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = pv_f32_to_f16((float)sum * d);
    }
}

void pv_ref_to_float_q8_1(const void *src, float *y, int64_t n) {
    const pv_block_q8_1 *x = src;
    const int qk = PV_QK8_1;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        for (int j = 0; j < qk; j++) y[i * qk + j] = (float)x[i].qs[j] * d;
    }
}

/* ---- Q8_0 / Q8_1 activation quantizers (the kernel sets' quantize slots) ----
 * llama.cpp does not quantize activations with the reference functions above: its x86
 * CPU backend (quantize_row_q8_0/q8_1 in ggml-cpu/arch/x86/quants.c, and the repacked
 * GEMM paths) computes id = 127/amax instead of 1/d and rounds ties to even
 * (_mm256_round_ps) instead of away from zero. The two disagree on a few elements per
 * row, and on the fixture models that alone moves next-token probabilities by up to
 * 0.04 against llama.cpp's, so activations follow llama.cpp's CPU backend while the
 * from_float entries (used to write files) follow the reference quantizers. */

/* lrintf in the default rounding mode (ties to even), saturating and NaN-safe */
static inline int8_t pv_rint_i8(float v) {
    if (!(v > -128.0f)) return v != v ? 0 : -128;
    if (v > 127.0f) return 127;
    return (int8_t)lrintf(v);
}

static void pv_quant_act_q8_block(const float *x, int8_t *qs, pv_f16 *dout, pv_f16 *sout) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    *dout = pv_f32_to_f16(d);
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        qs[j] = pv_rint_i8(x[j] * id);
        sum += qs[j];
    }
    if (sout) *sout = pv_f32_to_f16(d * (float)sum);
}

void pv_ref_quantize_act_q8_0(const float *x, void *dst, int64_t n) {
    pv_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / PV_QK8_0; i++) pv_quant_act_q8_block(x + i * 32, y[i].qs, &y[i].d, NULL);
}

void pv_ref_quantize_act_q8_1(const float *x, void *dst, int64_t n) {
    pv_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / PV_QK8_1; i++) pv_quant_act_q8_block(x + i * 32, y[i].qs, &y[i].d, &y[i].s);
}

/* ---- K-quant helpers (ggml's make_qx_quants / make_qkx2_quants searches) ---- */

/* Symmetric quantization of n values to [-nmax, nmax-1] with a scale search that
 * minimises the weighted squared error (weights x^2 for rmse_type 1). L gets values
 * offset by nmax. Returns the scale. */
static float pv_make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; i++) {
            int l = pv_nearest_int(iscale * x[i]);
            L[i] = (int8_t)(nmax + pv_imax(-nmax, pv_imin(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = pv_nearest_int(iscale * x[i]);
        l = pv_imax(-nmax, pv_imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = rmse_type == 1 ? x[i] * x[i] : rmse_type == 2 ? 1 : rmse_type == 3 ? fabsf(x[i]) : sqrtf(fabsf(x[i]));
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = pv_nearest_int(iscale * x[i]);
            l = pv_imax(-nmax, pv_imin(nmax - 1, l));
            float w = rmse_type == 1 ? x[i] * x[i] : rmse_type == 2 ? 1 : rmse_type == 3 ? fabsf(x[i]) : sqrtf(fabsf(x[i]));
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = pv_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + pv_imax(-nmax, pv_imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Asymmetric quantization x ~ scale*L - the_min, L in [0, nmax], searching nstep+1
 * candidate scales for the lowest weighted error. Returns the scale, *the_min >= 0. */
static float pv_make_qkx2_quants(int n, int nmax, const float *x, const float *weights,
                                 uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                                 float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = pv_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)pv_imax(0, pv_imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = pv_nearest_int(iscale * (x[i] - min));
            l = pv_imax(0, pv_imin(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* The 12-byte Q4_K/Q5_K scale field: 8 six-bit scales and 8 six-bit mins. j < 4 keep
 * their low 6 bits in bytes j / j+4; j >= 4 split into nibbles of byte j+4 and the top
 * two bits of bytes j-4 (scale) and j (min). */
static inline void pv_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* Shared by Q4_K and Q5_K: per 32-element sub-block scale/min search, then 6-bit
 * quantization of scales and mins against the block's max scale/min. Fills L (values in
 * [0, nmax]) and the d/dmin/scales fields through the out-parameters. */
static void pv_quantize_k_scales(const float *x, int nmax, float rmin, float rdelta, int nstep,
                                 uint8_t L[PV_QK_K], pv_f16 *d_out, pv_f16 *dmin_out,
                                 uint8_t scales_out[PV_K_SCALE_SIZE]) {
    uint8_t Laux[32];
    float weights[32];
    float mins[PV_QK_K / 32];
    float scales[PV_QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < PV_QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = pv_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                        rmin, rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, PV_K_SCALE_SIZE);
    for (int j = 0; j < PV_QK_K / 32; j++) {
        /* ggml stores nearest_int into a uint8_t before MIN(63, .) */
        uint8_t ls = (uint8_t)pv_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)pv_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = pv_f32_to_f16(max_scale / 63.f);
    *dmin_out = pv_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < PV_QK_K / 32; j++) {
        uint8_t sc, m;
        pv_get_scale_min_k4(j, scales_out, &sc, &m);
        const float d = pv_f16_to_f32(*d_out) * sc;
        if (!d) continue;
        const float dm = pv_f16_to_f32(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = pv_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)pv_imax(0, pv_imin(nmax, l));
        }
    }
}

/* ---- Q4_K ---- */

void pv_ref_from_float_q4_K(const float *x, void *dst, int64_t n) {
    pv_block_q4_K *y = dst;
    uint8_t L[PV_QK_K];
    for (int64_t i = 0; i < n / PV_QK_K; i++, x += PV_QK_K) {
        pv_quantize_k_scales(x, 15, -1.f, 0.1f, 20, L, &y[i].d, &y[i].dmin, y[i].scales);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < PV_QK_K; j += 64) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

void pv_ref_to_float_q4_K(const void *src, float *y, int64_t n) {
    const pv_block_q4_K *x = src;
    for (int64_t i = 0; i < n / PV_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const float d = pv_f16_to_f32(x[i].d);
        const float min = pv_f16_to_f32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < PV_QK_K; j += 64) {
            pv_get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            pv_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

/* ---- Q5_K ---- */

void pv_ref_from_float_q5_K(const float *x, void *dst, int64_t n) {
    pv_block_q5_K *y = dst;
    uint8_t L[PV_QK_K];
    for (int64_t i = 0; i < n / PV_QK_K; i++, x += PV_QK_K) {
        pv_quantize_k_scales(x, 31, -0.5f, 0.1f, 15, L, &y[i].d, &y[i].dmin, y[i].scales);
        uint8_t *qh = y[i].qh;
        uint8_t *ql = y[i].qs;
        memset(qh, 0, PV_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int nn = 0; nn < PV_QK_K; nn += 64) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[nn + j];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                int l2 = L[nn + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
            ql += 32;
        }
    }
}

void pv_ref_to_float_q5_K(const void *src, float *y, int64_t n) {
    const pv_block_q5_K *x = src;
    for (int64_t i = 0; i < n / PV_QK_K; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = pv_f16_to_f32(x[i].d);
        const float min = pv_f16_to_f32(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        unsigned u1 = 1, u2 = 2;
        for (int j = 0; j < PV_QK_K; j += 64) {
            pv_get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            pv_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

/* ---- Q6_K: 16 sub-blocks of 16 with signed 8-bit scales, 6-bit quants offset 32 ---- */

void pv_ref_from_float_q6_K(const float *x, void *dst, int64_t n) {
    pv_block_q6_K *y = dst;
    int8_t L[PV_QK_K];
    float scales[PV_QK_K / 16];
    for (int64_t i = 0; i < n / PV_QK_K; i++, x += PV_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < PV_QK_K / 16; ib++) {
            const float scale = pv_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = pv_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < PV_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)pv_imax(-128, pv_imin(127, pv_nearest_int(iscale * scales[ib])));
        for (int j = 0; j < PV_QK_K / 16; j++) {
            float d = pv_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = pv_nearest_int(x[16 * j + ii] / d);
                l = pv_imax(-32, pv_imin(31, l));
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < PV_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

void pv_ref_to_float_q6_K(const void *src, float *y, int64_t n) {
    const pv_block_q6_K *x = src;
    for (int64_t i = 0; i < n / PV_QK_K; i++) {
        const float d = pv_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int nn = 0; nn < PV_QK_K; nn += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * (float)q1;
                y[l + 32] = d * sc[is + 2] * (float)q2;
                y[l + 64] = d * sc[is + 4] * (float)q3;
                y[l + 96] = d * sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ---- Q8_K: float scale, d = max / -127 (max with sign), bsums per 16 ---- */

void pv_ref_from_float_q8_K(const float *x, void *dst, int64_t n) {
    pv_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / PV_QK_K; i++, x += PV_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < PV_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < PV_QK_K; j++) {
            int v = pv_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)pv_imax(-128, pv_imin(127, v));
        }
        for (int j = 0; j < PV_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void pv_ref_to_float_q8_K(const void *src, float *y, int64_t n) {
    const pv_block_q8_K *x = src;
    for (int64_t i = 0; i < n / PV_QK_K; i++)
        for (int j = 0; j < PV_QK_K; j++) y[i * PV_QK_K + j] = x[i].d * (float)x[i].qs[j];
}
