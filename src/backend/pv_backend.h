/* pv_backend.h — where tensors live and which kernels run. The model's forward pass is
 * written once against this table of operations; the CPU backend (backend_cpu.c) runs them
 * with the selected SIMD kernel set on a persistent thread pool, and a CUDA backend will
 * implement the same table with device memory. The model never dereferences a backend
 * buffer itself: it hands pointers obtained from the backend back to the backend, and reads
 * results (logits) only through `read`.
 *
 * Shapes: activations are row-major [n_tok][width] float rows ("rows of a batch"). Weight
 * matrices are pv_btensor with ne = {k, rows} (GGUF order). */
#ifndef PV_BACKEND_H
#define PV_BACKEND_H

#include "../core/pv_core.h"
#include "../kernels/pv_kernels.h"
#include "../weights/pv_weights.h"

/* A weight as the backend holds it. CPU: `data` points into the mmapped file (used in
 * place, never expanded). */
typedef struct pv_btensor {
    pv_type type;
    int64_t ne[PV_MAX_DIMS];
    size_t row_bytes; /* bytes per row of ne[0] elements */
    const void *data;
} pv_btensor;

/* A run of attention work: batch token i (query rows q[i]) attends to positions
 * [0, n_kv[i]) of its sequence's cache, whose K and V rows for this layer start at
 * k_base[i] / v_base[i] (kv_stride bytes apart, n_head_kv*head_dim elements each). */
typedef struct pv_attn_args {
    int n_tok;
    int n_head, n_head_kv, head_dim;
    float scale;
    pv_type kv_type;
    size_t kv_stride;
    const void *const *k_base; /* [n_tok] */
    const void *const *v_base; /* [n_tok] */
    const int32_t *n_kv;       /* [n_tok] */
} pv_attn_args;

typedef struct pv_backend pv_backend;

typedef struct pv_backend_ops {
    const char *name;
    void (*free)(pv_backend *b);
    /* Makes a weight usable by the backend (CPU: a view in place). */
    pv_status (*bind_weight)(pv_backend *b, const pv_tensor_desc *src, pv_btensor *dst,
                             pv_error *err);
    /* Activation / cache memory owned by the backend (zeroed); NULL on failure. */
    void *(*alloc)(pv_backend *b, size_t bytes);
    void (*release)(pv_backend *b, void *p);
    /* Copies n bytes of backend memory to host memory. */
    void (*read)(pv_backend *b, void *dst_host, const void *src, size_t n);

    /* out[i] = row ids[i] of the embedding matrix, as floats. [n][k] */
    void (*get_rows)(pv_backend *b, const pv_btensor *embd, const int32_t *ids, int n, float *out);
    /* Y[n][rows] = X[n][k] . W^T (+ bias[rows] if bias != NULL; bias is an F32 btensor). */
    void (*matmul)(pv_backend *b, const pv_btensor *W, const pv_btensor *bias, const float *X,
                   int n, float *Y);
    /* per row r of n rows of width w: y[r] = rmsnorm(x[r]) * weight (weight F32 [w]) */
    void (*rmsnorm)(pv_backend *b, float *y, const float *x, const pv_btensor *weight, int n,
                    int w, float eps);
    /* rmsnorm of each head (head_dim wide) of n rows of n_heads heads, in place */
    void (*rmsnorm_heads)(pv_backend *b, float *x, const pv_btensor *weight, int n, int n_heads,
                          int head_dim, float eps);
    /* rope on n rows of n_heads heads; cs/sn are [n][n_rot/2] (host memory of the model) */
    void (*rope)(pv_backend *b, float *x, int n, int n_heads, int head_dim, int n_rot,
                 pv_rope_mode mode, const float *cs, const float *sn);
    /* y = a + b, n rows of width w (y may alias a) */
    void (*add)(pv_backend *b, float *y, const float *a, const float *c, int n, int w);
    /* y[r] = silu(x[r][0:w]) * x[r][off:off+w] for gate/up packed in one row of stride ld;
     * with separate buffers pass g and u. */
    void (*silu_mul)(pv_backend *b, float *y, int ldy, const float *g, const float *u, int ldx,
                     int n, int w);
    /* Stores rows src[i] (width w floats, stride lds) into dst[i] (kv_type). */
    void (*store_rows)(pv_backend *b, void *const *dst, pv_type kv_type, const float *src,
                       int lds, int n, int w);
    /* out[i] = attention of q[i] (n_head*head_dim, stride ldq) per pv_attn_args. */
    void (*attention)(pv_backend *b, float *out, const float *q, int ldq,
                      const pv_attn_args *a);
    /* Reserves scratch for batches of up to max_rows rows of up to max_k inputs and
     * attention over up to max_kv positions, so that later steps never allocate. */
    pv_status (*reserve)(pv_backend *b, int max_rows, int64_t max_k, int64_t max_kv);
    /* copies n bytes inside backend memory (regions do not overlap) */
    void (*copy_bytes)(pv_backend *b, void *dst, const void *src, size_t n);
    /* copy n rows of width w from src (stride lds) to dst (stride ldd) */
    void (*copy_rows)(pv_backend *b, float *dst, int ldd, const float *src, int lds, int n,
                      int w);
} pv_backend_ops;

struct pv_backend {
    const pv_backend_ops *ops;
    void *impl;
};

/* CPU backend: n_threads (<= 0: one per core), kernels = NULL for the best set this CPU
 * runs or a name ("ref", "avx2", "avx512"). */
pv_status pv_backend_cpu_new(int n_threads, const char *kernels, pv_backend **out,
                             pv_error *err);
/* Name of the kernel set a CPU backend uses (for logs and bench output). */
const char *pv_backend_cpu_kernels_name(const pv_backend *b);
int pv_backend_cpu_threads(const pv_backend *b);

/* ---- thread pool (used by the CPU backend, and by tools that quantize) ---- */
typedef struct pv_threadpool pv_threadpool;
/* fn(ctx, task, thread_index) is called once for each task in [0, n_tasks). */
typedef void (*pv_task_fn)(void *ctx, int64_t task, int thread);

pv_threadpool *pv_threadpool_new(int n_threads);
void pv_threadpool_free(pv_threadpool *p);
int pv_threadpool_size(const pv_threadpool *p);
/* Runs the tasks on all threads (the caller is thread 0) and returns when all are done. */
void pv_threadpool_run(pv_threadpool *p, int64_t n_tasks, pv_task_fn fn, void *ctx);

#endif /* PV_BACKEND_H */
