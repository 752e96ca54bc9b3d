/* backend_cpu.c — the CPU backend: weights are views into the mmapped file (used in their
 * stored type), activations are host float rows, and every operation runs the selected
 * kernel set (ref / AVX2 / AVX-512) split over the persistent thread pool. Scratch memory
 * (quantized activations, attention scores) is reserved once per context through
 * `reserve`, so that a decode step performs no allocation. */
#include <stdlib.h>
#include <string.h>

#include "pv_backend.h"

typedef struct pv_cpu {
    pv_threadpool *pool;
    const pv_kernel_set *ks;
    int n_threads;
    /* scratch: quantized activations and per-thread attention scores */
    uint8_t *qbuf;
    size_t qbuf_size;
    float *scores; /* [n_threads][scores_per_thread] */
    int64_t scores_per_thread;
} pv_cpu;

static pv_cpu *cpu_of(pv_backend *b) { return (pv_cpu *)b->impl; }

static void cpu_free(pv_backend *b) {
    if (!b) return;
    pv_cpu *c = cpu_of(b);
    if (c) {
        pv_threadpool_free(c->pool);
        pv_free_aligned(c->qbuf);
        pv_free_aligned(c->scores);
        free(c);
    }
    free(b);
}

static pv_status cpu_bind_weight(pv_backend *b, const pv_tensor_desc *src, pv_btensor *dst,
                                 pv_error *err) {
    (void)b;
    const pv_type_traits *tr = pv_type_traits_get(src->type);
    if (!tr || !tr->supported || !tr->to_float)
        return pv_error_set(err, PV_ERR_UNSUPPORTED, "tensor '%.*s': type %s is not supported",
                            (int)src->name.len, src->name.ptr, tr ? tr->name : "unknown");
    memset(dst, 0, sizeof *dst);
    dst->type = src->type;
    for (int i = 0; i < PV_MAX_DIMS; i++) dst->ne[i] = i < src->n_dims ? src->ne[i] : 1;
    dst->row_bytes = pv_type_row_size(src->type, dst->ne[0]);
    dst->data = src->data;
    return PV_OK;
}

static void *cpu_alloc(pv_backend *b, size_t bytes) {
    (void)b;
    void *p = pv_malloc_aligned(bytes ? bytes : 1);
    if (p) memset(p, 0, bytes);
    return p;
}

static void cpu_release(pv_backend *b, void *p) {
    (void)b;
    pv_free_aligned(p);
}

static void cpu_read(pv_backend *b, void *dst, const void *src, size_t n) {
    (void)b;
    memcpy(dst, src, n);
}

static pv_status cpu_reserve(pv_backend *b, int max_rows, int64_t max_k, int64_t max_kv) {
    pv_cpu *c = cpu_of(b);
    /* the largest activation row type is Q8_K (292 bytes / 256) or f32 (4 bytes/elem):
     * reserve for f32 rows, which bounds every quantized layout too (the row size of
     * Q8_0/Q8_1/Q8_K is at most 36/32 bytes per element... less than 4). */
    size_t need = (size_t)max_rows * (size_t)max_k * sizeof(float) + 4096;
    if (need > c->qbuf_size) {
        pv_free_aligned(c->qbuf);
        c->qbuf = pv_malloc_aligned(need);
        c->qbuf_size = c->qbuf ? need : 0;
        if (!c->qbuf) return PV_ERR_NOMEM;
    }
    if (max_kv > c->scores_per_thread) {
        pv_free_aligned(c->scores);
        int64_t per = (max_kv + 15) & ~(int64_t)15;
        c->scores = pv_malloc_aligned((size_t)per * (size_t)c->n_threads * sizeof(float));
        c->scores_per_thread = c->scores ? per : 0;
        if (!c->scores) return PV_ERR_NOMEM;
    }
    return PV_OK;
}

/* ---- get_rows ---- */
static void cpu_get_rows(pv_backend *b, const pv_btensor *embd, const int32_t *ids, int n,
                         float *out) {
    (void)b;
    const pv_type_traits *tr = pv_type_traits_get(embd->type);
    int64_t k = embd->ne[0];
    for (int i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)embd->data + (size_t)ids[i] * embd->row_bytes;
        tr->to_float(row, out + (size_t)i * (size_t)k, k);
    }
}

/* ---- matmul ---- */
typedef struct {
    const pv_kernel_set *ks;
    const pv_btensor *W;
    const float *X;
    int n;
    int64_t k;
    pv_type vt;
    uint8_t *Xq;
    size_t xq_stride;
    float *Y;
    int64_t rows;
    int64_t rows_per_task;
} pv_mm_job;

static void mm_quant_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    pv_mm_job *j = ctx;
    j->ks->quantize[j->vt](j->X + t * j->k, j->Xq + (size_t)t * j->xq_stride, j->k);
}

static void mm_gemm_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    pv_mm_job *j = ctx;
    int64_t r0 = t * j->rows_per_task;
    int64_t r1 = PV_MIN(r0 + j->rows_per_task, j->rows);
    const void *Xq = j->Xq ? (const void *)j->Xq : (const void *)j->X;
    j->ks->gemm(j->W->type, j->k, j->W->data, j->W->row_bytes, r0, r1, Xq, j->xq_stride, j->n,
                j->Y, j->rows);
}

static void cpu_matmul(pv_backend *b, const pv_btensor *W, const pv_btensor *bias,
                       const float *X, int n, float *Y) {
    pv_cpu *c = cpu_of(b);
    const pv_type_traits *tr = pv_type_traits_get(W->type);
    pv_mm_job j = {.ks = c->ks, .W = W, .X = X, .n = n, .k = W->ne[0], .vt = tr->vec_dot_type,
                   .Y = Y, .rows = W->ne[1]};
    if (j.vt == PV_TYPE_F32) {
        j.Xq = NULL;
        j.xq_stride = (size_t)j.k * sizeof(float);
    } else {
        j.Xq = c->qbuf;
        j.xq_stride = pv_type_row_size(j.vt, j.k);
        pv_threadpool_run(c->pool, n, mm_quant_task, &j);
    }
    /* row chunks: enough tasks to balance threads, each a multiple of 16 rows */
    int64_t target = (int64_t)c->n_threads * 8;
    int64_t per = (j.rows + target - 1) / target;
    per = (per + 15) & ~(int64_t)15;
    if (per < 16) per = 16;
    j.rows_per_task = per;
    pv_threadpool_run(c->pool, (j.rows + per - 1) / per, mm_gemm_task, &j);
    if (bias) {
        const float *bv = bias->data;
        for (int t = 0; t < n; t++) c->ks->add(Y + (size_t)t * (size_t)j.rows, Y + (size_t)t * (size_t)j.rows, bv, j.rows);
    }
}

/* ---- row-wise ops ---- */
static void cpu_rmsnorm(pv_backend *b, float *y, const float *x, const pv_btensor *weight,
                        int n, int w, float eps) {
    pv_cpu *c = cpu_of(b);
    const float *wv = weight ? weight->data : NULL;
    for (int r = 0; r < n; r++) c->ks->rmsnorm(y + (size_t)r * w, x + (size_t)r * w, wv, w, eps);
}

static void cpu_rmsnorm_heads(pv_backend *b, float *x, const pv_btensor *weight, int n,
                              int n_heads, int head_dim, float eps) {
    pv_cpu *c = cpu_of(b);
    const float *wv = weight ? weight->data : NULL;
    for (int r = 0; r < n * n_heads; r++) {
        float *row = x + (size_t)r * head_dim;
        c->ks->rmsnorm(row, row, wv, head_dim, eps);
    }
}

static void cpu_rope(pv_backend *b, float *x, int n, int n_heads, int head_dim, int n_rot,
                     pv_rope_mode mode, const float *cs, const float *sn) {
    pv_cpu *c = cpu_of(b);
    int half = n_rot / 2;
    for (int r = 0; r < n; r++)
        c->ks->rope(x + (size_t)r * n_heads * head_dim, n_heads, head_dim, n_rot, mode,
                    cs + (size_t)r * half, sn + (size_t)r * half);
}

static void cpu_add(pv_backend *b, float *y, const float *a, const float *c2, int n, int w) {
    pv_cpu *c = cpu_of(b);
    c->ks->add(y, a, c2, (int64_t)n * w);
}

static void cpu_silu_mul(pv_backend *b, float *y, int ldy, const float *g, const float *u,
                         int ldx, int n, int w) {
    pv_cpu *c = cpu_of(b);
    for (int r = 0; r < n; r++)
        c->ks->silu_mul(y + (size_t)r * ldy, g + (size_t)r * ldx, u + (size_t)r * ldx, w);
}

static void cpu_store_rows(pv_backend *b, void *const *dst, pv_type kv_type, const float *src,
                           int lds, int n, int w) {
    (void)b;
    for (int r = 0; r < n; r++) {
        const float *s = src + (size_t)r * lds;
        if (kv_type == PV_TYPE_F16) {
            pv_f16 *d = dst[r];
            for (int i = 0; i < w; i++) d[i] = pv_f32_to_f16(s[i]);
        } else {
            memcpy(dst[r], s, (size_t)w * sizeof(float));
        }
    }
}

typedef struct {
    pv_cpu *c;
    float *out;
    const float *q;
    int ldq;
    const pv_attn_args *a;
} pv_attn_job;

static void attn_task(void *ctx, int64_t t, int thread) {
    pv_attn_job *j = ctx;
    const pv_attn_args *a = j->a;
    int i = (int)(t / a->n_head);
    int h = (int)(t % a->n_head);
    int hk = h / (a->n_head / a->n_head_kv);
    size_t elt = a->kv_type == PV_TYPE_F16 ? 2 : 4;
    size_t off = (size_t)hk * (size_t)a->head_dim * elt;
    const char *kb = (const char *)a->k_base[i] + off;
    const char *vb = (const char *)a->v_base[i] + off;
    float *scratch = j->c->scores + (size_t)thread * (size_t)j->c->scores_per_thread;
    j->c->ks->attn_head(j->out + (size_t)i * a->n_head * a->head_dim + (size_t)h * a->head_dim,
                        j->q + (size_t)i * j->ldq + (size_t)h * a->head_dim, kb, vb,
                        a->kv_stride, a->kv_type, a->n_kv[i], a->head_dim, a->scale, scratch);
}

static void cpu_attention(pv_backend *b, float *out, const float *q, int ldq,
                          const pv_attn_args *a) {
    pv_cpu *c = cpu_of(b);
    pv_attn_job j = {c, out, q, ldq, a};
    pv_threadpool_run(c->pool, (int64_t)a->n_tok * a->n_head, attn_task, &j);
}

static void cpu_copy_rows(pv_backend *b, float *dst, int ldd, const float *src, int lds, int n,
                          int w) {
    (void)b;
    for (int r = 0; r < n; r++)
        memcpy(dst + (size_t)r * ldd, src + (size_t)r * lds, (size_t)w * sizeof(float));
}

static void cpu_copy_bytes(pv_backend *b, void *dst, const void *src, size_t n) {
    (void)b;
    memcpy(dst, src, n);
}

static const pv_backend_ops pv_cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
    .bind_weight = cpu_bind_weight,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .read = cpu_read,
    .get_rows = cpu_get_rows,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rmsnorm_heads = cpu_rmsnorm_heads,
    .rope = cpu_rope,
    .add = cpu_add,
    .silu_mul = cpu_silu_mul,
    .store_rows = cpu_store_rows,
    .attention = cpu_attention,
    .reserve = cpu_reserve,
    .copy_rows = cpu_copy_rows,
    .copy_bytes = cpu_copy_bytes,
};

pv_status pv_backend_cpu_new(int n_threads, const char *kernels, pv_backend **out,
                             pv_error *err) {
    *out = NULL;
    pv_tensor_init();
    const pv_kernel_set *ks = kernels ? pv_kernels_get(kernels) : pv_kernels_best();
    if (!ks)
        return pv_error_set(err, PV_ERR_UNSUPPORTED,
                            "kernel set '%s' is not available on this CPU (choose ref, avx2 or avx512)",
                            kernels ? kernels : "?");
    pv_backend *b = calloc(1, sizeof *b);
    pv_cpu *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        return pv_error_set(err, PV_ERR_NOMEM, "cpu backend: out of memory");
    }
    c->n_threads = n_threads > 0 ? n_threads : pv_cpu_count();
    c->ks = ks;
    c->pool = pv_threadpool_new(c->n_threads);
    b->ops = &pv_cpu_ops;
    b->impl = c;
    if (!c->pool) {
        cpu_free(b);
        return pv_error_set(err, PV_ERR_NOMEM, "cpu backend: cannot start %d threads", n_threads);
    }
    *out = b;
    return PV_OK;
}

const char *pv_backend_cpu_kernels_name(const pv_backend *b) {
    return ((const pv_cpu *)b->impl)->ks->name;
}

int pv_backend_cpu_threads(const pv_backend *b) { return ((const pv_cpu *)b->impl)->n_threads; }
