/* pv_kernels_ref.h — the plain scalar reference kernels: the specification every
 * optimised variant (AVX2, AVX-512, CUDA) is tested against. Clarity over speed; the
 * arithmetic order follows ggml's reference code where the result depends on it
 * (quantization rounding), so files quantized by llama.cpp and by us agree. */
#ifndef PV_KERNELS_REF_H
#define PV_KERNELS_REF_H

#include "../../tensor/pv_tensor.h"

/* row conversions: src -> f32 (to_float) and f32 -> type (from_float = quantize) */
#define PV_REF_DECL_TYPE_(t)                                                  \
    void pv_ref_to_float_##t(const void *src, float *dst, int64_t n);         \
    void pv_ref_from_float_##t(const float *src, void *dst, int64_t n);
PV_REF_DECL_TYPE_(f32)
PV_REF_DECL_TYPE_(f16)
PV_REF_DECL_TYPE_(bf16)
PV_REF_DECL_TYPE_(q4_0)
PV_REF_DECL_TYPE_(q4_1)
PV_REF_DECL_TYPE_(q5_0)
PV_REF_DECL_TYPE_(q5_1)
PV_REF_DECL_TYPE_(q8_0)
PV_REF_DECL_TYPE_(q8_1)
PV_REF_DECL_TYPE_(q4_K)
PV_REF_DECL_TYPE_(q5_K)
PV_REF_DECL_TYPE_(q6_K)
PV_REF_DECL_TYPE_(q8_K)
#undef PV_REF_DECL_TYPE_

/* dot products: weight row of the named type . activation row of its vec_dot_type
 * (f32 for F32/F16/BF16, Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants) */
void pv_ref_vec_dot_f32(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_f16(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_bf16(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q4_0(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q4_1(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q5_0(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q5_1(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q8_0(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q4_K(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q5_K(int64_t n, float *out, const void *w, const void *x);
void pv_ref_vec_dot_q6_K(int64_t n, float *out, const void *w, const void *x);

#endif /* PV_KERNELS_REF_H */
