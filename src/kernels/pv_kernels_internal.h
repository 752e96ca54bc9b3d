/* pv_kernels_internal.h — declarations shared inside the kernels module only: the
 * reference non-matmul kernels (so optimised sets and tests can name them), the fill
 * functions of the SIMD variants (defined in cpu/kernels_avx2.c and cpu/kernels_avx512.c,
 * compiled with ISA flags and called only after pv_cpu_features_get says the CPU runs
 * them), and the availability checks. Not part of the engine's public interface. */
#ifndef PV_KERNELS_INTERNAL_H
#define PV_KERNELS_INTERNAL_H

#include "pv_kernels.h"

/* reference kernels (ref/ops_ref.c); signatures are those of the pv_kernel_set slots */
void pv_ref_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
void pv_ref_softmax(float *x, int64_t n);
void pv_ref_silu_mul(float *y, const float *g, const float *u, int64_t n);
void pv_ref_add(float *y, const float *a, const float *b, int64_t n);
void pv_ref_scale(float *x, float s, int64_t n);
void pv_ref_rope(float *x, int n_heads, int head_dim, int n_rot, pv_rope_mode mode,
                 const float *cs, const float *sn);
void pv_ref_attn_head(float *out, const float *q, const void *k, const void *v,
                      size_t kv_stride, pv_type kv_type, int64_t n_kv, int head_dim, float scale,
                      float *scratch);
void pv_ref_gemm(pv_type wt, int64_t k, const void *W, size_t w_stride, int64_t r0, int64_t r1,
                 const void *Xq, size_t x_stride, int64_t n_tok, float *Y, int64_t y_stride);
/* Activation quantizers as llama.cpp's CPU backend computes them (ref/quants_ref.c says
 * how they differ from the reference from_float of the type table). */
void pv_ref_quantize_act_q8_0(const float *x, void *dst, int64_t n);
void pv_ref_quantize_act_q8_1(const float *x, void *dst, int64_t n);
/* Fills every slot of `ks` with the reference kernels (vec_dot/quantize from the traits). */
void pv_kernels_ref_fill(pv_kernel_set *ks);

/* SIMD variants: overwrite the slots they implement; the caller filled ref first. */
void pv_kernels_avx2_fill(pv_kernel_set *ks);
void pv_kernels_avx512_fill(pv_kernel_set *ks);
/* Whether the detected features suffice for each variant. */
bool pv_cpu_runs_avx2(const pv_cpu_features *f);
bool pv_cpu_runs_avx512(const pv_cpu_features *f);

#endif /* PV_KERNELS_INTERNAL_H */
