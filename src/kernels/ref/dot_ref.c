/* dot_ref.c — reference dot products of a weight row with an activation row of the weight
 * type's vec_dot_type, computed as ggml's generic (scalar) vec_dot functions do: exact
 * integer sums inside each block, then one float multiply-add per block with the block
 * scales. Float weight types (F32/F16/BF16) take f32 activations and accumulate in
 * double so that the reference is as accurate as it can cheaply be. */
#include <string.h>

#include <math.h>

#include "pv_kernels_ref.h"

void pv_ref_vec_dot_f32(int64_t n, float *out, const void *w, const void *x) {
    const float *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    *out = (float)s;
}

void pv_ref_vec_dot_f16(int64_t n, float *out, const void *w, const void *x) {
    const pv_f16 *a = w;
    const float *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)pv_f16_to_f32(a[i]) * b[i];
    *out = (float)s;
}

void pv_ref_vec_dot_bf16(int64_t n, float *out, const void *w, const void *x) {
    const pv_bf16 *a = w;
    const float *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)pv_bf16_to_f32(a[i]) * b[i];
    *out = (float)s;
}

void pv_ref_vec_dot_q4_0(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q4_0 *a = w;
    const pv_block_q8_0 *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < PV_QK4_0 / 2; j++) {
            const int v0 = (a[i].qs[j] & 0x0F) - 8;
            const int v1 = (a[i].qs[j] >> 4) - 8;
            sumi += v0 * b[i].qs[j] + v1 * b[i].qs[j + PV_QK4_0 / 2];
        }
        sumf += (float)sumi * (pv_f16_to_f32(a[i].d) * pv_f16_to_f32(b[i].d));
    }
    *out = sumf;
}

void pv_ref_vec_dot_q4_1(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q4_1 *a = w;
    const pv_block_q8_1 *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < PV_QK4_1 / 2; j++) {
            sumi += (a[i].qs[j] & 0x0F) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + PV_QK4_1 / 2];
        }
        sumf += (pv_f16_to_f32(a[i].d) * pv_f16_to_f32(b[i].d)) * (float)sumi +
                pv_f16_to_f32(a[i].m) * pv_f16_to_f32(b[i].s);
    }
    *out = sumf;
}

void pv_ref_vec_dot_q5_0(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q5_0 *a = w;
    const pv_block_q8_0 *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK8_0; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, sizeof qh);
        int sumi = 0;
        for (int j = 0; j < PV_QK5_0 / 2; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10);
            const int xh1 = (int)((qh >> (j + 12)) & 0x10);
            const int v0 = ((a[i].qs[j] & 0x0F) | xh0) - 16;
            const int v1 = ((a[i].qs[j] >> 4) | xh1) - 16;
            sumi += v0 * b[i].qs[j] + v1 * b[i].qs[j + PV_QK5_0 / 2];
        }
        sumf += (float)sumi * (pv_f16_to_f32(a[i].d) * pv_f16_to_f32(b[i].d));
    }
    *out = sumf;
}

void pv_ref_vec_dot_q5_1(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q5_1 *a = w;
    const pv_block_q8_1 *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK8_1; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, sizeof qh);
        int sumi = 0;
        for (int j = 0; j < PV_QK5_1 / 2; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10);
            const int xh1 = (int)((qh >> (j + 12)) & 0x10);
            const int v0 = (a[i].qs[j] & 0x0F) | xh0;
            const int v1 = (a[i].qs[j] >> 4) | xh1;
            sumi += v0 * b[i].qs[j] + v1 * b[i].qs[j + PV_QK5_1 / 2];
        }
        sumf += (pv_f16_to_f32(a[i].d) * pv_f16_to_f32(b[i].d)) * (float)sumi +
                pv_f16_to_f32(a[i].m) * pv_f16_to_f32(b[i].s);
    }
    *out = sumf;
}

void pv_ref_vec_dot_q8_0(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q8_0 *a = w;
    const pv_block_q8_0 *b = x;
    /* llama.cpp's exact arithmetic (its x86 vec_dot and tinyBLAS): 8 lanes, lane l sums
     * products 4l..4l+3 of each block, one fma per block with d = dw*dx, then the lanes
     * are added pairwise as ((0+4)+(2+6))+((1+5)+(3+7)). Q8_0 models then reproduce
     * llama.cpp's logits bit for bit, which the fixture goldens rely on. */
    float acc[8] = {0};
    for (int64_t i = 0; i < n / PV_QK8_0; i++) {
        const float d = pv_f16_to_f32(a[i].d) * pv_f16_to_f32(b[i].d);
        for (int l = 0; l < 8; l++) {
            int s4 = 0;
            for (int j = 0; j < 4; j++) s4 += a[i].qs[4 * l + j] * b[i].qs[4 * l + j];
            acc[l] = fmaf(d, (float)s4, acc[l]);
        }
    }
    *out = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/* Unpacks the 8 six-bit scales and mins of a Q4_K/Q5_K block (see quants_ref.c). */
static void pv_unpack_k4_scales(const uint8_t *q, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            m[j] = q[j + 4] & 63;
        } else {
            sc[j] = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }
}

/* Q4_K . Q8_K: sum_j d*sc_j*sum(q*y) - dmin*sum_j m_j*sum(y), the y sums from bsums. */
void pv_ref_vec_dot_q4_K(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q4_K *a = w;
    const pv_block_q8_K *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK_K; i++) {
        uint8_t sc[8], m[8];
        pv_unpack_k4_scales(a[i].scales, sc, m);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = a[i].qs + 32 * (j / 2);
            const int8_t *y = b[i].qs + 32 * j;
            int s = 0;
            for (int l = 0; l < 32; l++) s += ((j & 1) ? (q[l] >> 4) : (q[l] & 0xF)) * y[l];
            sumi += sc[j] * s;
            summ += m[j] * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        sumf += pv_f16_to_f32(a[i].d) * b[i].d * (float)sumi -
                pv_f16_to_f32(a[i].dmin) * b[i].d * (float)summ;
    }
    *out = sumf;
}

void pv_ref_vec_dot_q5_K(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q5_K *a = w;
    const pv_block_q8_K *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK_K; i++) {
        uint8_t sc[8], m[8];
        pv_unpack_k4_scales(a[i].scales, sc, m);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = a[i].qs + 32 * (j / 2);
            const int8_t *y = b[i].qs + 32 * j;
            int s = 0;
            for (int l = 0; l < 32; l++) {
                int v = (j & 1) ? (q[l] >> 4) : (q[l] & 0xF);
                if (a[i].qh[l] & (1u << j)) v += 16;
                s += v * y[l];
            }
            sumi += sc[j] * s;
            summ += m[j] * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        }
        sumf += pv_f16_to_f32(a[i].d) * b[i].d * (float)sumi -
                pv_f16_to_f32(a[i].dmin) * b[i].d * (float)summ;
    }
    *out = sumf;
}

void pv_ref_vec_dot_q6_K(int64_t n, float *out, const void *w, const void *x) {
    const pv_block_q6_K *a = w;
    const pv_block_q8_K *b = x;
    float sumf = 0;
    for (int64_t i = 0; i < n / PV_QK_K; i++) {
        int8_t q[PV_QK_K];
        const uint8_t *ql = a[i].ql;
        const uint8_t *qh = a[i].qh;
        for (int nn = 0; nn < PV_QK_K; nn += 128) {
            for (int l = 0; l < 32; l++) {
                q[nn + l + 0] = (int8_t)(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[nn + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[nn + l + 64] = (int8_t)(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[nn + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
            ql += 64;
            qh += 32;
        }
        int sumi = 0;
        for (int j = 0; j < PV_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * j + l] * b[i].qs[16 * j + l];
            sumi += a[i].scales[j] * s;
        }
        sumf += pv_f16_to_f32(a[i].d) * b[i].d * (float)sumi;
    }
    *out = sumf;
}
