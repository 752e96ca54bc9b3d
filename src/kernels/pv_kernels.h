/* pv_kernels.h — the kernel sets. A kernel set is a table of function pointers for one
 * instruction-set variant ("ref", "avx2", "avx512"); the CPU's features are detected once
 * and the fastest set the machine runs is chosen (pv_kernels_best). Entries a variant does
 * not optimise are filled from the reference set, so every slot is callable.
 *
 * Layout conventions used by every kernel here:
 *  - A weight matrix W has `rows` rows of `k` elements (GGUF ne = {k, rows}), each row
 *    `pv_type_row_size(type, k)` bytes, rows contiguous.
 *  - Activations X are [n_tok][k] float rows; before a quantized matmul they are converted
 *    to the weight type's vec_dot_type (Q8_0 / Q8_1 / Q8_K, or kept f32) row by row.
 *  - Y = X W^T: Y[t][r] = dot(W[r], X[t]). */
#ifndef PV_KERNELS_H
#define PV_KERNELS_H

#include "../tensor/pv_tensor.h"

typedef enum { PV_ROPE_NORM = 0, PV_ROPE_NEOX = 2 } pv_rope_mode; /* ggml's numbering */

/* gemm over a slice of rows: for r in [r0, r1), t in [0, n_tok):
 *   Y[t * y_stride + r] = dot(W row r, Xq row t)
 * W: rows of type wt, w_stride bytes apart. Xq: n_tok rows of vec_dot_type(wt),
 * x_stride bytes apart. Callers split [0, rows) across threads. */
typedef void (*pv_gemm_fn)(pv_type wt, int64_t k, const void *W, size_t w_stride, int64_t r0,
                           int64_t r1, const void *Xq, size_t x_stride, int64_t n_tok, float *Y,
                           int64_t y_stride);

/* Attention for one query head over n_kv cached positions (all of them visible):
 *   out[d] = sum_j softmax_j(scale * q . K_j) V_j[d]
 * K_j = (const char*)k + j * kv_stride, likewise V_j; each is head_dim elements of
 * kv_type (F32 or F16). scratch holds at least n_kv floats. */
typedef void (*pv_attn_head_fn)(float *out, const float *q, const void *k, const void *v,
                                size_t kv_stride, pv_type kv_type, int64_t n_kv, int head_dim,
                                float scale, float *scratch);

typedef struct pv_kernel_set {
    const char *name;                        /* "ref", "avx2", "avx512" */
    pv_vec_dot_fn vec_dot[PV_TYPE_COUNT];    /* per weight type */
    pv_from_float_fn quantize[PV_TYPE_COUNT]; /* per activation type: Q8_0, Q8_1, Q8_K */
    pv_gemm_fn gemm;
    /* y = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no weight). y may alias x. */
    void (*rmsnorm)(float *y, const float *x, const float *w, int64_t n, float eps);
    /* x = softmax(x) in place (max-subtracted) */
    void (*softmax)(float *x, int64_t n);
    /* y[i] = silu(g[i]) * u[i]; y may alias g or u */
    void (*silu_mul)(float *y, const float *g, const float *u, int64_t n);
    /* y[i] = a[i] + b[i]; y may alias a */
    void (*add)(float *y, const float *a, const float *b, int64_t n);
    /* x[i] *= s */
    void (*scale)(float *x, float s, int64_t n);
    /* Rotates the first n_rot dims of each of n_heads heads (head_dim apart) in place.
     * cs[i] = cos(theta_i), sn[i] = sin(theta_i) for i < n_rot/2, already multiplied by
     * the attention factor (mscale). NORM pairs (2i, 2i+1); NEOX pairs (i, i + n_rot/2). */
    void (*rope)(float *x, int n_heads, int head_dim, int n_rot, pv_rope_mode mode,
                 const float *cs, const float *sn);
    pv_attn_head_fn attn_head;
} pv_kernel_set;

/* CPU features, detected once (cpuid + xgetbv: the OS must enable the register state). */
typedef struct pv_cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
} pv_cpu_features;
const pv_cpu_features *pv_cpu_features_get(void);

/* The reference set (always available). */
const pv_kernel_set *pv_kernels_ref(void);
/* A named variant if compiled in and the CPU runs it, else NULL. Names: ref, avx2, avx512. */
const pv_kernel_set *pv_kernels_get(const char *name);
/* The fastest variant this CPU runs; honours PENSIEVE_KERNELS=ref|avx2|avx512 if set. */
const pv_kernel_set *pv_kernels_best(void);

/* Fills cos/sin for one position: theta_i = pos * freq_scale * base^(-2i/n_rot) / ff[i]
 * (ff = frequency factors: llama3 or LongRoPE; NULL = all 1), each times attn_factor.
 * Computed in double so that long positions keep full float precision. */
void pv_rope_cos_sin(float *cs, float *sn, int64_t pos, int n_rot, float freq_base,
                     float freq_scale, const float *ff, float attn_factor);
/* Llama 3.1 frequency factors (rope_scaling type "llama3") for n_rot/2 frequencies. */
void pv_rope_llama3_factors(float *ff, int n_rot, float freq_base, float factor,
                            float low_freq_factor, float high_freq_factor, int orig_ctx);

#endif /* PV_KERNELS_H */
