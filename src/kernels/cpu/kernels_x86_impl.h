/* kernels_x86_impl.h — the x86 SIMD kernels, written once over 256-bit vectors and
 * compiled twice: by kernels_avx2.c (AVX2 + FMA + F16C: byte dot products through
 * maddubs/madd, 16 vector registers, 4x2 gemm tiles) and by kernels_avx512.c (AVX-512
 * F/BW/VL/DQ/VNNI: the same code gets vpdpbusd/vpdpwssd for the byte dot products and
 * the 32 registers of AVX-512VL, which allow 4x4 gemm tiles; the Q4_0/Q5_0/Q8_0 tiles
 * there use 512-bit vectors, two blocks per register). Only those two files
 * include this header, so everything here is built with their ISA flags and reached only
 * after run-time detection. All functions are static; each file exports one fill function.
 *
 * The including file defines PV_X86_VNNI and PV_X86_AVX512 (0/1), PV_TR and PV_TT (gemm
 * tile: weight rows x tokens per inner loop).
 *
 * Numerics: quantized dot products use exact integer sums per block (or sub-block) and
 * float accumulation, like ggml's SIMD kernels; they differ from the reference only in
 * the order of float additions. The activation quantizers are bit-exact with the
 * reference set's (pv_ref_quantize_act_q8_0/q8_1, pv_ref_from_float_q8_K). */
#ifndef PV_KERNELS_X86_IMPL_H
#define PV_KERNELS_X86_IMPL_H

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../pv_kernels_internal.h"

#define PV_AI static inline __attribute__((always_inline))
/* the tile loops run over compile-time R/T/chunk counts: unroll them fully so that the
 * accumulators stay in registers (-O2 alone keeps them in memory) */
#define PV_UNROLL _Pragma("GCC unroll 16")

/* ---------------------------------------------------------------- primitives */

PV_AI float pv_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PV_AI int pv_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

PV_AI float pv_hmax_ps(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PV_AI float pv_h2f(pv_f16 h) { return _cvtsh_ss(h); }
/* an f16 broadcast to 8 float lanes: vpbroadcastw + vcvtph2ps */
PV_AI __m256 pv_h2f_bcast(pv_f16 h) { return _mm256_cvtph_ps(_mm_set1_epi16((short)h)); }

/* acc + sum of 4 adjacent products u8 x s8 per int32 lane (u <= 127 or the pair sums
 * must not saturate int16 on the AVX2 path: callers guarantee it). */
PV_AI __m256i pv_dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if PV_X86_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    const __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* acc + sum of products of two signed byte vectors (|w| <= 128, y != -128). */
PV_AI __m256i pv_dot_s8s8(__m256i acc, __m256i w, __m256i y) {
    return pv_dot_u8s8(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
}

/* acc + per int32 lane: sc16 * (u0*s0 + u1*s1) + sc16' * (...): byte products summed in
 * pairs to int16 (u <= 63 so no saturation), then weighted by int16 scales. */
PV_AI __m256i pv_dot_u8s8_scaled(__m256i acc, __m256i u, __m256i s, __m256i sc16) {
    const __m256i p = _mm256_maddubs_epi16(u, s);
#if PV_X86_VNNI
    return _mm256_dpwssd_epi32(acc, p, sc16);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc16));
#endif
}

/* 32 bits -> 32 bytes: 0xFF where the bit is set (bit i -> byte i). */
PV_AI __m256i pv_bytes_from_bits32(const uint8_t *x) {
    uint32_t x32;
    memcpy(&x32, x, sizeof x32);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x32), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* 16 packed bytes -> 32 nibbles: low nibbles in bytes 0..15, high nibbles in 16..31 (the
 * element order of Q4_0/Q4_1/Q5_* blocks). */
PV_AI __m256i pv_nibbles_16(const uint8_t *q) {
    const __m128i t = _mm_loadu_si128((const __m128i *)q);
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(t, 4), m), _mm_and_si128(t, m));
}

/* exp(x) for a vector: range reduction by ln2 and a degree-6 polynomial (|rel err| about
 * 2e-7); inputs below -87.3 give 0 and above 88.7 saturate, as expf does in float. */
PV_AI __m256 pv_exp_ps(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.37626f), lo = _mm256_set1_ps(-87.33654f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n split in two factors so that n = 128 (x near the top) does not overflow the
     * exponent field */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_andnot_ps(under, res);
}

/* four int32x8 -> 32 int8 in element order (saturating) */
PV_AI __m256i pv_pack_i32x4_i8(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    return _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ---------------------------------------------------------------- activation quantizers */

/* Q8_0 / Q8_1 share everything but the sum; bit-exact with pv_ref_quantize_act_q8_0/1
 * (llama.cpp's CPU-backend activation quantizer: id = 127/amax, ties to even). */
PV_AI void pv_quant_q8_block(const float *x, int8_t *qs, pv_f16 *dout, pv_f16 *sout) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    PV_UNROLL for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
    }
    const float am = pv_hmax_ps(amax);
    const float d = am / 127.0f;
    const float id = am != 0.0f ? 127.0f / am : 0.0f;
    *dout = _cvtss_sh(d, 0);
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; j++) /* cvtps rounds to nearest even (the MXCSR default) */
        q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], idv));
    if (sout) {
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        *sout = _cvtss_sh((float)pv_hsum_epi32(s) * d, 0);
    }
    _mm256_storeu_si256((__m256i *)qs, pv_pack_i32x4_i8(q[0], q[1], q[2], q[3]));
}

static void pv_x86_quantize_q8_0(const float *x, void *dst, int64_t n) {
    pv_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / PV_QK8_0; i++) pv_quant_q8_block(x + i * 32, y[i].qs, &y[i].d, NULL);
}

static void pv_x86_quantize_q8_1(const float *x, void *dst, int64_t n) {
    pv_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / PV_QK8_1; i++) pv_quant_q8_block(x + i * 32, y[i].qs, &y[i].d, &y[i].s);
}

static void pv_x86_quantize_q8_K(const float *x, void *dst, int64_t n) {
    pv_block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / PV_QK_K; i++, x += PV_QK_K) {
        __m256 amaxv = _mm256_setzero_ps();
        for (int j = 0; j < PV_QK_K; j += 8)
            amaxv = _mm256_max_ps(amaxv, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        const float amax = pv_hmax_ps(amaxv);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the reference keeps the sign of the first element of largest magnitude */
        float max = amax;
        for (int j = 0; j < PV_QK_K; j++) {
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i top = _mm256_set1_epi32(127);
        PV_UNROLL for (int j = 0; j < PV_QK_K; j += 32) {
            __m256i q[4];
            PV_UNROLL for (int u = 0; u < 4; u++) /* cvtps rounds to nearest even, like nearest_int */
                q[u] = _mm256_min_epi32(top, _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * u), is)));
            y[i].bsums[j / 16] = (int16_t)pv_hsum_epi32(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[j / 16 + 1] = (int16_t)pv_hsum_epi32(_mm256_add_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pv_pack_i32x4_i8(q[0], q[1], q[2], q[3]));
        }
        y[i].d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- gemm tiles
 * A tile computes R weight rows x T tokens over the whole row (nb blocks). Each function
 * is always_inline and called with constant R/T, so the accumulators live in registers.
 * w: first weight row, ws: bytes between rows; x: first activation row, xs: bytes between
 * rows; y: output for (row 0, token 0), ys: floats between tokens. */

#define PV_TILE_ARGS int R, int T, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x,      \
                     size_t xs, float *y, int64_t ys

#define PV_ACC_INIT(acc)                                                                           \
    __m256 acc[PV_TR][PV_TT];                                                                      \
    PV_UNROLL for (int r_ = 0; r_ < PV_TR; r_++)                                                   \
        PV_UNROLL for (int t_ = 0; t_ < PV_TT; t_++) acc[r_][t_] = _mm256_setzero_ps();

#define PV_ACC_STORE(acc, extra)                                                                   \
    PV_UNROLL for (int r_ = 0; r_ < R; r_++)                                                       \
        PV_UNROLL for (int t_ = 0; t_ < T; t_++) y[t_ * ys + r_] = pv_hsum_ps(acc[r_][t_]) + (extra);

/* Q4_0, Q5_0, Q8_0 . Q8_0, one scale per block. UNPACK gives the weights as unsigned
 * bytes u = q + BIAS (BIAS 8, 16; 128 for Q8_0 with VNNI), so that sum(q*y) =
 * sum(u*y) - BIAS*sum(y): the second term depends on the token only and seeds the
 * per-pair dot product (one vpdpbusd per pair and block). Without VNNI, Q8_0's u would
 * saturate maddubs, so it keeps signed bytes and the sign trick (BIAS 0). */
#define PV_DEFINE_TILE_Q_0(NAME, BT, UNPACK, BIAS)                                                 \
    PV_AI void NAME(PV_TILE_ARGS) {                                                                \
        PV_ACC_INIT(acc)                                                                           \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            __m256i wq[PV_TR];                                                                     \
            __m256 wd[PV_TR];                                                                      \
            PV_UNROLL for (int r = 0; r < R; r++) {                                                \
                const BT *blk = (const BT *)(w + (size_t)r * ws) + b;                              \
                wq[r] = UNPACK(blk);                                                               \
                wd[r] = pv_h2f_bcast(blk->d);                                                      \
            }                                                                                      \
            PV_UNROLL for (int t = 0; t < T; t++) {                                                \
                const pv_block_q8_0 *yb = (const pv_block_q8_0 *)(x + (size_t)t * xs) + b;         \
                const __m256i yq = _mm256_loadu_si256((const __m256i *)yb->qs);                    \
                const __m256 yd = pv_h2f_bcast(yb->d);                                             \
                const __m256i corr = (BIAS) ? _mm256_sub_epi32(_mm256_setzero_si256(),             \
                    pv_dot_u8s8(_mm256_setzero_si256(), _mm256_set1_epi8((char)(BIAS)), yq))       \
                                            : _mm256_setzero_si256();                              \
                PV_UNROLL for (int r = 0; r < R; r++) {                                            \
                    const __m256i s = (BIAS) ? pv_dot_u8s8(corr, wq[r], yq)                        \
                                             : pv_dot_s8s8(corr, wq[r], yq);                       \
                    /* d = dw*dy first, then one fma per block and lane: ggml's order */    \
                    acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(wd[r], yd),                          \
                                                _mm256_cvtepi32_ps(s), acc[r][t]);                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        PV_ACC_STORE(acc, 0.0f)                                                                    \
    }

PV_AI __m256i pv_unpack_q4_0(const pv_block_q4_0 *b) { return pv_nibbles_16(b->qs); }
PV_AI __m256i pv_unpack_q5_0(const pv_block_q5_0 *b) {
    const __m256i hi = _mm256_and_si256(pv_bytes_from_bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(pv_nibbles_16(b->qs), hi);
}
#if PV_X86_VNNI
#define PV_Q8_0_BIAS 128
PV_AI __m256i pv_unpack_q8_0(const pv_block_q8_0 *b) { /* q + 128 as unsigned, exactly */
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b->qs), _mm256_set1_epi8((char)0x80));
}
#else
#define PV_Q8_0_BIAS 0
PV_AI __m256i pv_unpack_q8_0(const pv_block_q8_0 *b) {
    return _mm256_loadu_si256((const __m256i *)b->qs);
}
#endif

PV_DEFINE_TILE_Q_0(pv_tile_q4_0, pv_block_q4_0, pv_unpack_q4_0, 8)
PV_DEFINE_TILE_Q_0(pv_tile_q5_0, pv_block_q5_0, pv_unpack_q5_0, 16)
PV_DEFINE_TILE_Q_0(pv_tile_q8_0, pv_block_q8_0, pv_unpack_q8_0, PV_Q8_0_BIAS)

/* Q4_1, Q5_1 . Q8_1: unsigned weight bytes, x = d*q + m, so dot = d*dy*sum(q*y) + m*sy. */
#define PV_DEFINE_TILE_Q_1(NAME, BT, UNPACK)                                                       \
    PV_AI void NAME(PV_TILE_ARGS) {                                                                \
        PV_ACC_INIT(acc)                                                                           \
        float macc[PV_TR][PV_TT] = {{0}};                                                          \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            __m256i wq[PV_TR];                                                                     \
            __m256 wd[PV_TR];                                                                      \
            float wm[PV_TR];                                                                       \
            PV_UNROLL for (int r = 0; r < R; r++) {                                                \
                const BT *blk = (const BT *)(w + (size_t)r * ws) + b;                              \
                wq[r] = UNPACK(blk);                                                               \
                wd[r] = pv_h2f_bcast(blk->d);                                                      \
                wm[r] = pv_h2f(blk->m);                                                            \
            }                                                                                      \
            PV_UNROLL for (int t = 0; t < T; t++) {                                                \
                const pv_block_q8_1 *yb = (const pv_block_q8_1 *)(x + (size_t)t * xs) + b;         \
                const __m256i yq = _mm256_loadu_si256((const __m256i *)yb->qs);                    \
                const __m256 yd = pv_h2f_bcast(yb->d);                                             \
                const float ysum = pv_h2f(yb->s);                                                  \
                PV_UNROLL for (int r = 0; r < R; r++) {                                            \
                    const __m256i s = pv_dot_u8s8(_mm256_setzero_si256(), wq[r], yq);              \
                    acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), wd[r]),       \
                                                yd, acc[r][t]);                                    \
                    macc[r][t] += wm[r] * ysum;                                                    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        PV_ACC_STORE(acc, macc[r_][t_])                                                            \
    }

PV_AI __m256i pv_unpack_q4_1(const pv_block_q4_1 *b) { return pv_nibbles_16(b->qs); }
PV_AI __m256i pv_unpack_q5_1(const pv_block_q5_1 *b) {
    const __m256i hi = _mm256_and_si256(pv_bytes_from_bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(pv_nibbles_16(b->qs), hi);
}

PV_DEFINE_TILE_Q_1(pv_tile_q4_1, pv_block_q4_1, pv_unpack_q4_1)
PV_DEFINE_TILE_Q_1(pv_tile_q5_1, pv_block_q5_1, pv_unpack_q5_1)

/* ---- K-quants . Q8_K ---- */

/* Q4_K/Q5_K scales and mins (6 bits each) of one block, unpacked with 32-bit word
 * operations (the bit layout is that of pv_get_scale_min_k4 in quants_ref.c): sc gets the
 * 8 scales, *mins8 the 8 mins as int16 lanes. */
PV_AI void pv_k4_scales(const uint8_t *q, int16_t sc[8], __m128i *mins8) {
    uint32_t u[4];
    memcpy(u, q, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4); /* mins 4..7 */
    const uint32_t m03 = u[1] & k1;                           /* mins 0..3 */
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);          /* scales 4..7 */
    u[2] = m03;
    u[0] &= k1; /* scales 0..3 */
    const __m256i ms = _mm256_cvtepu8_epi16(_mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]));
    _mm_storeu_si128((__m128i *)sc, _mm256_castsi256_si128(ms));
    *mins8 = _mm256_extracti128_si256(ms, 1);
}

/* The 8 chunks (32 elements each) of a K-quant block, chunk-outer: each weight chunk
 * and activation chunk is loaded once per tile and feeds R*T independent integer
 * accumulators. With few accumulators (T <= 2, e.g. decoding one token) a second set
 * takes the odd chunks so that the accumulate latency (vpdpwssd: several cycles) does
 * not serialise the loop; the two are summed at the end. */
#define PV_K_CHUNK_LOOP(isum, wq, scv)                                                             \
    {                                                                                              \
        __m256i isum2_[PV_TR][PV_TT];                                                              \
        PV_UNROLL for (int r = 0; r < R; r++)                                                      \
            PV_UNROLL for (int t = 0; t < T; t++) isum2_[r][t] = _mm256_setzero_si256();           \
        for (int j = 0; j < 8; j += 2) {                                                           \
            __m256i y0_[PV_TT], y1_[PV_TT];                                                        \
            PV_UNROLL for (int t = 0; t < T; t++) {                                                \
                const int8_t *q_ = ((const pv_block_q8_K *)(x + (size_t)t * xs) + b)->qs;          \
                y0_[t] = _mm256_loadu_si256((const __m256i *)(q_ + 32 * j));                       \
                y1_[t] = _mm256_loadu_si256((const __m256i *)(q_ + 32 * j + 32));                  \
            }                                                                                      \
            PV_UNROLL for (int r = 0; r < R; r++)                                                  \
                PV_UNROLL for (int t = 0; t < T; t++) {                                            \
                    isum[r][t] = pv_dot_u8s8_scaled(isum[r][t], wq[r][j], y0_[t], scv[r][j]);      \
                    if (T <= 2)                                                                    \
                        isum2_[r][t] = pv_dot_u8s8_scaled(isum2_[r][t], wq[r][j + 1], y1_[t], scv[r][j + 1]); \
                    else                                                                           \
                        isum[r][t] = pv_dot_u8s8_scaled(isum[r][t], wq[r][j + 1], y1_[t], scv[r][j + 1]); \
                }                                                                                  \
        }                                                                                          \
        if (T <= 2)                                                                                \
            PV_UNROLL for (int r = 0; r < R; r++)                                                  \
                PV_UNROLL for (int t = 0; t < T; t++) isum[r][t] = _mm256_add_epi32(isum[r][t], isum2_[r][t]); \
    }

/* Q4_K and Q5_K: per 32-element sub-block j, d*sc_j*sum(q*y) - dmin*m_j*sum(y). The
 * R rows' blocks are unpacked once (bytes and int16 scale vectors, a few KiB that stay
 * in L1) and reused by the T tokens; the min term uses the activation's bsums. */
#define PV_DEFINE_TILE_K45(NAME, BT, UNPACK)                                                       \
    PV_AI void NAME(PV_TILE_ARGS) {                                                                \
        PV_ACC_INIT(acc)                                                                           \
        __m256i wq[PV_TR][8];                                                                      \
        int16_t sc[8];                                                                             \
        __m256i scv[PV_TR][8];                                                                     \
        __m128i mins8[PV_TR];                                                                      \
        __m256 wd[PV_TR], wdmin[PV_TR];                                                            \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            PV_UNROLL for (int r = 0; r < R; r++) {                                                \
                const BT *blk = (const BT *)(w + (size_t)r * ws) + b;                              \
                UNPACK(blk, wq[r]);                                                                \
                pv_k4_scales(blk->scales, sc, &mins8[r]);                                          \
                PV_UNROLL for (int j = 0; j < 8; j++) scv[r][j] = _mm256_set1_epi16(sc[j]);        \
                wd[r] = pv_h2f_bcast(blk->d);                                                      \
                wdmin[r] = _mm256_xor_ps(pv_h2f_bcast(blk->dmin), _mm256_set1_ps(-0.0f));          \
            }                                                                                      \
            __m256i isum[PV_TR][PV_TT];                                                            \
            PV_UNROLL for (int r = 0; r < R; r++)                                                  \
                PV_UNROLL for (int t = 0; t < T; t++) isum[r][t] = _mm256_setzero_si256();         \
            PV_K_CHUNK_LOOP(isum, wq, scv)                                                         \
            PV_UNROLL for (int t = 0; t < T; t++) {                                                \
                const pv_block_q8_K *yb = (const pv_block_q8_K *)(x + (size_t)t * xs) + b;         \
                const __m256 yd = _mm256_set1_ps(yb->d);                                           \
                /* sums of y over each 32-element sub-block, from the 16-element bsums */          \
                const __m128i ys = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)yb->bsums),     \
                                                  _mm_loadu_si128((const __m128i *)yb->bsums + 1)); \
                PV_UNROLL for (int r = 0; r < R; r++) {                                            \
                    const __m128i mi = _mm_madd_epi16(ys, mins8[r]);                               \
                    const __m256 f = _mm256_fmadd_ps(_mm256_zextps128_ps256(_mm_cvtepi32_ps(mi)), wdmin[r], \
                                                     _mm256_mul_ps(_mm256_cvtepi32_ps(isum[r][t]), wd[r])); \
                    acc[r][t] = _mm256_fmadd_ps(f, yd, acc[r][t]);                                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        PV_ACC_STORE(acc, 0.0f)                                                                    \
    }

PV_AI void pv_unpack_q4_K(const pv_block_q4_K *b, __m256i out[8]) {
    const __m256i m = _mm256_set1_epi8(0x0F);
    PV_UNROLL for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        out[2 * c] = _mm256_and_si256(q, m);
        out[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m);
    }
}
PV_AI void pv_unpack_q5_K(const pv_block_q5_K *b, __m256i out[8]) {
    const __m256i m = _mm256_set1_epi8(0x0F);
    const __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
    PV_UNROLL for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        PV_UNROLL for (int h = 0; h < 2; h++) {
            const int j = 2 * c + h;
            const __m256i bit = _mm256_set1_epi8((char)(1u << j));
            const __m256i hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit),
                                                _mm256_set1_epi8(0x10));
            const __m256i lo = h ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m) : _mm256_and_si256(q, m);
            out[j] = _mm256_or_si256(lo, hb);
        }
    }
}

PV_DEFINE_TILE_K45(pv_tile_q4_K, pv_block_q4_K, pv_unpack_q4_K)
PV_DEFINE_TILE_K45(pv_tile_q5_K, pv_block_q5_K, pv_unpack_q5_K)

/* Q6_K: unsigned 6-bit q (q - 32 is the value), 16 signed scales per block. The -32
 * offset is folded in with bsums: sum_j sc_j*(sum(q*y) - 32*bsum_j). */
PV_AI void pv_unpack_q6_K(const pv_block_q6_K *b, __m256i out[8], __m256i scv[8],
                          __m256i *sc_m32) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    PV_UNROLL for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        out[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
        out[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
        out[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
        out[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
    }
    /* scales as int16; dword c holds the scales of groups 2c and 2c+1, which chunk c
     * needs in its low and high 128-bit lane respectively */
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
    const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    PV_UNROLL for (int c = 0; c < 8; c++)
        scv[c] = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(s16, _mm256_set1_epi32(c)), pick);
    *sc_m32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 5)); /* -32*sc */
}

PV_AI void pv_tile_q6_K(PV_TILE_ARGS) {
    PV_ACC_INIT(acc)
    __m256i wq[PV_TR][8], scv[PV_TR][8], scm[PV_TR];
    __m256 wd[PV_TR];
    for (int64_t b = 0; b < nb; b++) {
        PV_UNROLL for (int r = 0; r < R; r++) {
            const pv_block_q6_K *blk = (const pv_block_q6_K *)(w + (size_t)r * ws) + b;
            pv_unpack_q6_K(blk, wq[r], scv[r], &scm[r]);
            wd[r] = pv_h2f_bcast(blk->d);
        }
        __m256i isum[PV_TR][PV_TT];
        PV_UNROLL for (int t = 0; t < T; t++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)((const pv_block_q8_K *)(x + (size_t)t * xs) + b)->bsums);
            PV_UNROLL for (int r = 0; r < R; r++) isum[r][t] = _mm256_madd_epi16(bs, scm[r]);
        }
        PV_K_CHUNK_LOOP(isum, wq, scv)
        PV_UNROLL for (int t = 0; t < T; t++) {
            const __m256 yd = _mm256_set1_ps(((const pv_block_q8_K *)(x + (size_t)t * xs) + b)->d);
            PV_UNROLL for (int r = 0; r < R; r++)
                acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(isum[r][t]), wd[r]), yd, acc[r][t]);
        }
    }
    PV_ACC_STORE(acc, 0.0f)
}

/* ---- float weights . f32 activations (nb = k elements here) ---- */

PV_AI __m256 pv_load8_f32(const void *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
PV_AI __m256 pv_load8_f16(const void *p, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const pv_f16 *)p + i)));
}
PV_AI __m256 pv_load8_bf16(const void *p, int64_t i) {
    const __m128i h = _mm_loadu_si128((const __m128i *)((const pv_bf16 *)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
PV_AI float pv_load1_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
PV_AI float pv_load1_f16(const void *p, int64_t i) { return pv_h2f(((const pv_f16 *)p)[i]); }
PV_AI float pv_load1_bf16(const void *p, int64_t i) { return pv_bf16_to_f32(((const pv_bf16 *)p)[i]); }

#define PV_DEFINE_TILE_FLOAT(NAME, LOAD8, LOAD1)                                                   \
    PV_AI void NAME(PV_TILE_ARGS) {                                                                \
        PV_ACC_INIT(acc)                                                                           \
        const int64_t k = nb;                                                                      \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= k; i += 8) {                                                               \
            __m256 xv[PV_TT];                                                                      \
            PV_UNROLL for (int t = 0; t < T; t++) xv[t] = _mm256_loadu_ps((const float *)(x + (size_t)t * xs) + i); \
            PV_UNROLL for (int r = 0; r < R; r++) {                                                \
                const __m256 wv = LOAD8(w + (size_t)r * ws, i);                                    \
                PV_UNROLL for (int t = 0; t < T; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]); \
            }                                                                                      \
        }                                                                                          \
        float tail[PV_TR][PV_TT] = {{0}};                                                          \
        for (; i < k; i++)                                                                         \
            PV_UNROLL for (int r = 0; r < R; r++)                                                  \
                PV_UNROLL for (int t = 0; t < T; t++)                                              \
                    tail[r][t] += LOAD1(w + (size_t)r * ws, i) * ((const float *)(x + (size_t)t * xs))[i]; \
        PV_ACC_STORE(acc, tail[r_][t_])                                                            \
    }

PV_DEFINE_TILE_FLOAT(pv_tile_f32, pv_load8_f32, pv_load1_f32)
PV_DEFINE_TILE_FLOAT(pv_tile_f16, pv_load8_f16, pv_load1_f16)
PV_DEFINE_TILE_FLOAT(pv_tile_bf16, pv_load8_bf16, pv_load1_bf16)

/* ---- AVX-512: Q4_0 / Q5_0 / Q8_0 tiles over zmm registers, two blocks per vector ----
 * The same arithmetic as PV_DEFINE_TILE_Q_0 (unsigned weight bytes, the token's
 * -BIAS*sum(y) seeding vpdpbusd), on 512-bit vectors: blocks b and b+1 side by side, with
 * their scales in the low and high eight lanes. An odd last block pairs with zeros. */
#if PV_X86_AVX512
PV_AI __m512i pv512_pair(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
/* two f16 block scales -> lanes 0..7 and 8..15 (one vcvtph2ps for both) */
PV_AI __m512 pv512_scales(pv_f16 lo, pv_f16 hi) {
    return _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo)));
}
/* nibbles of two Q4_0/Q5_0 blocks: 128-bit lanes [b0 low, b0 high, b1 low, b1 high] */
PV_AI __m512i pv512_nibbles_x2(const uint8_t *q0, const uint8_t *q1, bool two) {
    const __m128i a = _mm_loadu_si128((const __m128i *)q0);
    const __m128i b = two ? _mm_loadu_si128((const __m128i *)q1) : _mm_setzero_si128();
    __m512i z = _mm512_castsi256_si512(_mm256_set_m128i(b, a));
    z = _mm512_shuffle_i64x2(z, z, 0x50);            /* lanes: a a b b */
    z = _mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4); /* odd lanes: high nibbles */
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}
PV_AI __m512i pv512_unpack_q4_0(const pv_block_q4_0 *b, bool two) {
    return pv512_nibbles_x2(b[0].qs, b[1 - !two].qs, two);
}
PV_AI __m512i pv512_unpack_q5_0(const pv_block_q5_0 *b, bool two) {
    uint32_t h0, h1 = 0;
    memcpy(&h0, b[0].qh, 4);
    if (two) memcpy(&h1, b[1].qh, 4);
    const __mmask64 k = (__mmask64)h0 | ((__mmask64)h1 << 32); /* bit i: element i */
    const __m512i z = pv512_nibbles_x2(b[0].qs, b[1 - !two].qs, two);
    return _mm512_mask_or_epi32(z, 0xFFFF, z, _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10)));
}

#define PV_DEFINE_TILE512_Q_0(NAME, BT, UNPACK2, BIAS)                                             \
    PV_AI void NAME(PV_TILE_ARGS) {                                                                \
        __m512 acc[PV_TR][PV_TT];                                                                  \
        PV_UNROLL for (int r = 0; r < PV_TR; r++)                                                  \
            PV_UNROLL for (int t = 0; t < PV_TT; t++) acc[r][t] = _mm512_setzero_ps();             \
        for (int64_t b = 0; b < nb; b += 2) {                                                      \
            const bool two = b + 1 < nb;                                                           \
            __m512i wq[PV_TR];                                                                     \
            __m512 wd[PV_TR];                                                                      \
            PV_UNROLL for (int r = 0; r < R; r++) {                                                \
                const BT *blk = (const BT *)(w + (size_t)r * ws) + b;                              \
                wq[r] = UNPACK2(blk, two);                                                         \
                wd[r] = pv512_scales(blk[0].d, two ? blk[1].d : 0);                                \
            }                                                                                      \
            PV_UNROLL for (int t = 0; t < T; t++) {                                                \
                const pv_block_q8_0 *yb = (const pv_block_q8_0 *)(x + (size_t)t * xs) + b;         \
                const __m256i y0 = _mm256_loadu_si256((const __m256i *)yb[0].qs);                  \
                const __m256i y1 = two ? _mm256_loadu_si256((const __m256i *)yb[1].qs)             \
                                       : _mm256_setzero_si256();                                   \
                const __m512i yq = pv512_pair(y0, y1);                                             \
                const __m512 yd = pv512_scales(yb[0].d, two ? yb[1].d : 0);                        \
                const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(),                      \
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)(BIAS)), yq)); \
                PV_UNROLL for (int r = 0; r < R; r++) {                                            \
                    const __m512i s = _mm512_dpbusd_epi32(corr, wq[r], yq);                        \
                    acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), wd[r]), yd,   \
                                                acc[r][t]);                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        PV_UNROLL for (int r = 0; r < R; r++)                                                      \
            PV_UNROLL for (int t = 0; t < T; t++) y[t * ys + r] = _mm512_reduce_add_ps(acc[r][t]); \
    }

PV_DEFINE_TILE512_Q_0(pv512_tile_q4_0, pv_block_q4_0, pv512_unpack_q4_0, 8)
PV_DEFINE_TILE512_Q_0(pv512_tile_q5_0, pv_block_q5_0, pv512_unpack_q5_0, 16)
#define PV_TILE_Q4_0 pv512_tile_q4_0
#define PV_TILE_Q5_0 pv512_tile_q5_0
/* Q8_0 keeps the 256-bit tile: one block per register and lane-wise fma in block order is
 * exactly llama.cpp's Q8_0 dot product (vec_dot and tinyBLAS alike), so Q8_0 models give
 * llama.cpp's numbers bit for bit; the two-blocks-per-register tile reorders the sum. */
#define PV_TILE_Q8_0 pv_tile_q8_0
#else
#define PV_TILE_Q4_0 pv_tile_q4_0
#define PV_TILE_Q5_0 pv_tile_q5_0
#define PV_TILE_Q8_0 pv_tile_q8_0
#endif

/* ---------------------------------------------------------------- gemm drivers
 * Tokens are processed in chunks whose activations fit in L2; inside a chunk each tile
 * of PV_TR weight rows stays in L1 while PV_TT tokens at a time stream past it. Row and
 * token remainders use narrower instantiations of the same tile. */

#define PV_TILE_CALL(TILE, R, T)                                                                   \
    TILE(R, T, nb, wr, w_stride, (const uint8_t *)Xq + (size_t)t * x_stride, x_stride,             \
         Y + t * y_stride + r, y_stride)

/* R weight rows (at wr) against the tokens [t0, tn): whole PV_TT-token tiles, then the
 * remainder. A tile's T must be a constant no larger than PV_TT in every instantiation,
 * also in the cases that cannot occur for this PV_TT (hence the guards and PV_TMIN). */
#define PV_TMIN(a) ((a) < PV_TT ? (a) : PV_TT)
#define PV_ROWS_X_TOKENS(TILE, R)                                                                  \
    {                                                                                              \
        int64_t t = t0;                                                                            \
        for (; t + PV_TT <= tn; t += PV_TT) PV_TILE_CALL(TILE, R, PV_TT);                          \
        switch (tn - t) {                                                                          \
        case 1: PV_TILE_CALL(TILE, R, 1); break;                                                   \
        case 2: if (PV_TT > 2) PV_TILE_CALL(TILE, R, PV_TMIN(2)); break;                           \
        case 3: if (PV_TT > 3) PV_TILE_CALL(TILE, R, PV_TMIN(3)); break;                           \
        default: break;                                                                            \
        }                                                                                          \
    }

/* Defines the gemm of one weight type from its tile, and the single dot product (a 1x1
 * tile) that fills the set's vec_dot slot. */
#define PV_DEFINE_GEMM(NAME, TILE, BLK)                                                            \
    static void NAME(pv_type wt, int64_t k, const void *W, size_t w_stride, int64_t r0,            \
                     int64_t r1, const void *Xq, size_t x_stride, int64_t n_tok, float *Y,         \
                     int64_t y_stride) {                                                           \
        (void)wt;                                                                                  \
        const int64_t nb = k / (BLK);                                                              \
        int64_t chunk = (int64_t)((256u * 1024u) / (x_stride ? x_stride : 1));                     \
        chunk = chunk < PV_TT ? PV_TT : chunk - chunk % PV_TT;                                     \
        for (int64_t t0 = 0; t0 < n_tok; t0 += chunk) {                                            \
            const int64_t tn = t0 + chunk < n_tok ? t0 + chunk : n_tok;                            \
            int64_t r = r0;                                                                        \
            for (; r + PV_TR <= r1; r += PV_TR) {                                                  \
                const uint8_t *wr = (const uint8_t *)W + (size_t)r * w_stride;                     \
                PV_ROWS_X_TOKENS(TILE, PV_TR)                                                      \
            }                                                                                      \
            for (; r < r1; r++) {                                                                  \
                const uint8_t *wr = (const uint8_t *)W + (size_t)r * w_stride;                     \
                PV_ROWS_X_TOKENS(TILE, 1)                                                          \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_dot(int64_t n, float *out, const void *w, const void *x) {                  \
        const int64_t nb = n / (BLK);                                                              \
        TILE(1, 1, nb, (const uint8_t *)w, 0, (const uint8_t *)x, 0, out, 0);                      \
    }

PV_DEFINE_GEMM(pv_gemm_f32, pv_tile_f32, 1)
PV_DEFINE_GEMM(pv_gemm_f16, pv_tile_f16, 1)
PV_DEFINE_GEMM(pv_gemm_bf16, pv_tile_bf16, 1)
PV_DEFINE_GEMM(pv_gemm_q4_0, PV_TILE_Q4_0, PV_QK4_0)
PV_DEFINE_GEMM(pv_gemm_q4_1, pv_tile_q4_1, PV_QK4_1)
PV_DEFINE_GEMM(pv_gemm_q5_0, PV_TILE_Q5_0, PV_QK5_0)
PV_DEFINE_GEMM(pv_gemm_q5_1, pv_tile_q5_1, PV_QK5_1)
PV_DEFINE_GEMM(pv_gemm_q8_0, PV_TILE_Q8_0, PV_QK8_0)
PV_DEFINE_GEMM(pv_gemm_q4_K, pv_tile_q4_K, PV_QK_K)
PV_DEFINE_GEMM(pv_gemm_q5_K, pv_tile_q5_K, PV_QK_K)
PV_DEFINE_GEMM(pv_gemm_q6_K, pv_tile_q6_K, PV_QK_K)

typedef struct {
    pv_gemm_fn gemm;
    pv_vec_dot_fn dot;
} pv_x86_mm;

/* per weight type: the gemm and the single dot product (one table, indexed by type id) */
static const pv_x86_mm pv_x86_mm_table[PV_TYPE_COUNT] = {
    [PV_TYPE_F32] = {pv_gemm_f32, pv_gemm_f32_dot},
    [PV_TYPE_F16] = {pv_gemm_f16, pv_gemm_f16_dot},
    [PV_TYPE_BF16] = {pv_gemm_bf16, pv_gemm_bf16_dot},
    [PV_TYPE_Q4_0] = {pv_gemm_q4_0, pv_gemm_q4_0_dot},
    [PV_TYPE_Q4_1] = {pv_gemm_q4_1, pv_gemm_q4_1_dot},
    [PV_TYPE_Q5_0] = {pv_gemm_q5_0, pv_gemm_q5_0_dot},
    [PV_TYPE_Q5_1] = {pv_gemm_q5_1, pv_gemm_q5_1_dot},
    [PV_TYPE_Q8_0] = {pv_gemm_q8_0, pv_gemm_q8_0_dot},
    [PV_TYPE_Q4_K] = {pv_gemm_q4_K, pv_gemm_q4_K_dot},
    [PV_TYPE_Q5_K] = {pv_gemm_q5_K, pv_gemm_q5_K_dot},
    [PV_TYPE_Q6_K] = {pv_gemm_q6_K, pv_gemm_q6_K_dot},
};

/* The set's gemm: dispatch on the weight type; types without a SIMD path use ref. */
static void pv_x86_gemm(pv_type wt, int64_t k, const void *W, size_t w_stride, int64_t r0,
                        int64_t r1, const void *Xq, size_t x_stride, int64_t n_tok, float *Y,
                        int64_t y_stride) {
    const pv_gemm_fn g = (unsigned)wt < PV_TYPE_COUNT ? pv_x86_mm_table[wt].gemm : NULL;
    (g ? g : pv_ref_gemm)(wt, k, W, w_stride, r0, r1, Xq, x_stride, n_tok, Y, y_stride);
}

/* ---------------------------------------------------------------- row-wise kernels */

static void pv_x86_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 sq = _mm256_mul_ps(v, v); /* float squares summed in double, as ref */
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = n > 0 ? (float)(sum / (double)n) : 0.0f;
    const float scale = 1.0f / sqrtf(mean + eps);
    const __m256 sv = _mm256_set1_ps(scale);
    i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
        if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

static void pv_x86_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float max = pv_hmax_ps(mv);
    for (; i < n; i++) max = fmaxf(max, x[i]);
    if (max == -INFINITY) { /* fully masked row: zeros, like the reference */
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    const __m256 m = _mm256_set1_ps(max);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = pv_exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    pv_ref_scale(x, inv, n);
}

static void pv_x86_silu_mul(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 e = pv_exp_ps(_mm256_xor_ps(gv, sign));
        const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void pv_x86_add(float *y, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

static void pv_x86_scale(float *x, float s, int64_t n) {
    int64_t i = 0;
    const __m256 sv = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
    for (; i < n; i++) x[i] *= s;
}

/* Attention for one head: scores with 8-wide dots (F16 K/V converted with F16C), the
 * SIMD softmax, then the weighted V sum accumulated 64 dims at a time in registers. */
#define PV_DEFINE_ATTN(NAME, LOAD8, LOAD1)                                                         \
    static void NAME(float *out, const float *q, const void *k, const void *v,                     \
                     size_t kv_stride, int64_t n_kv, int head_dim, float scale,                    \
                     float *scratch) {                                                             \
        const int hd8 = head_dim & ~7;                                                             \
        for (int64_t j = 0; j < n_kv; j++) {                                                       \
            const void *kr = (const char *)k + (size_t)j * kv_stride;                              \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                             \
            int d = 0;                                                                             \
            for (; d + 16 <= hd8; d += 16) {                                                       \
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LOAD8(kr, d), a0);                    \
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), LOAD8(kr, d + 8), a1);            \
            }                                                                                      \
            for (; d < hd8; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LOAD8(kr, d), a0); \
            float s = pv_hsum_ps(_mm256_add_ps(a0, a1));                                           \
            for (; d < head_dim; d++) s += q[d] * LOAD1(kr, d);                                    \
            scratch[j] = scale * s;                                                                \
        }                                                                                          \
        pv_x86_softmax(scratch, n_kv);                                                             \
        int d0 = 0;                                                                                \
        for (; d0 + 64 <= hd8; d0 += 64) {                                                         \
            __m256 o[8];                                                                           \
            for (int u = 0; u < 8; u++) o[u] = _mm256_setzero_ps();                                \
            for (int64_t j = 0; j < n_kv; j++) {                                                   \
                const void *vr = (const char *)v + (size_t)j * kv_stride;                          \
                const __m256 p = _mm256_set1_ps(scratch[j]);                                       \
                for (int u = 0; u < 8; u++) o[u] = _mm256_fmadd_ps(p, LOAD8(vr, d0 + 8 * u), o[u]); \
            }                                                                                      \
            for (int u = 0; u < 8; u++) _mm256_storeu_ps(out + d0 + 8 * u, o[u]);                  \
        }                                                                                          \
        for (; d0 + 8 <= hd8; d0 += 8) {                                                           \
            __m256 o = _mm256_setzero_ps();                                                        \
            for (int64_t j = 0; j < n_kv; j++) {                                                   \
                const void *vr = (const char *)v + (size_t)j * kv_stride;                          \
                o = _mm256_fmadd_ps(_mm256_set1_ps(scratch[j]), LOAD8(vr, d0), o);                 \
            }                                                                                      \
            _mm256_storeu_ps(out + d0, o);                                                         \
        }                                                                                          \
        for (; d0 < head_dim; d0++) {                                                              \
            float o = 0;                                                                           \
            for (int64_t j = 0; j < n_kv; j++)                                                     \
                o += scratch[j] * LOAD1((const char *)v + (size_t)j * kv_stride, d0);              \
            out[d0] = o;                                                                           \
        }                                                                                          \
    }

PV_DEFINE_ATTN(pv_x86_attn_f32, pv_load8_f32, pv_load1_f32)
PV_DEFINE_ATTN(pv_x86_attn_f16, pv_load8_f16, pv_load1_f16)

static void pv_x86_attn_head(float *out, const float *q, const void *k, const void *v,
                             size_t kv_stride, pv_type kv_type, int64_t n_kv, int head_dim,
                             float scale, float *scratch) {
    if (n_kv <= 0) {
        memset(out, 0, (size_t)head_dim * sizeof *out);
        return;
    }
    if (kv_type == PV_TYPE_F16)
        pv_x86_attn_f16(out, q, k, v, kv_stride, n_kv, head_dim, scale, scratch);
    else
        pv_x86_attn_f32(out, q, k, v, kv_stride, n_kv, head_dim, scale, scratch);
}

/* Overwrites the slots this ISA implements (the caller filled the rest from ref). */
static void pv_x86_fill(pv_kernel_set *ks) {
    for (int t = 0; t < PV_TYPE_COUNT; t++)
        if (pv_x86_mm_table[t].dot) ks->vec_dot[t] = pv_x86_mm_table[t].dot;
    ks->quantize[PV_TYPE_Q8_0] = pv_x86_quantize_q8_0;
    ks->quantize[PV_TYPE_Q8_1] = pv_x86_quantize_q8_1;
    ks->quantize[PV_TYPE_Q8_K] = pv_x86_quantize_q8_K;
    ks->gemm = pv_x86_gemm;
    ks->rmsnorm = pv_x86_rmsnorm;
    ks->softmax = pv_x86_softmax;
    ks->silu_mul = pv_x86_silu_mul;
    ks->add = pv_x86_add;
    ks->scale = pv_x86_scale;
    ks->attn_head = pv_x86_attn_head;
}

#endif /* PV_KERNELS_X86_IMPL_H */
