/* pv_kv.h — the KV cache: for every layer, K and V rows (n_head_kv * head_dim elements of
 * F16 by default, or F32) for each sequence slot and position. Storage is per sequence and
 * indexed by position (cell = position), so a sequence's cache is contiguous and attention
 * reads it as one strided run. Sequences can be truncated (remove [p0, end)) and a range
 * of positions copied from one sequence to another — what prefix reuse needs: a new
 * request copies the common prefix of a finished one instead of recomputing it.
 *
 * Memory: 2 * n_layer * n_seq * n_ctx * kv_dim * sizeof(type), allocated once in the
 * backend at init; no operation allocates afterwards. */
#ifndef PV_KV_H
#define PV_KV_H

#include "../backend/pv_backend.h"

typedef struct pv_kv_cache {
    pv_backend *be;
    pv_type type; /* PV_TYPE_F16 or PV_TYPE_F32 */
    int n_layer, n_seq, n_ctx, kv_dim;
    size_t row_bytes;  /* kv_dim * sizeof(type) */
    uint8_t *k, *v;    /* backend memory: [layer][seq][pos][kv_dim] */
    int32_t *seq_len;  /* host: positions [0, seq_len) hold valid rows */
} pv_kv_cache;

pv_status pv_kv_init(pv_kv_cache *kv, pv_backend *be, pv_type type, int n_layer, int n_seq,
                     int n_ctx, int kv_dim, pv_error *err);
void pv_kv_free(pv_kv_cache *kv);

static inline void *pv_kv_k_row(const pv_kv_cache *kv, int layer, int seq, int pos) {
    size_t idx = (((size_t)layer * (size_t)kv->n_seq + (size_t)seq) * (size_t)kv->n_ctx + (size_t)pos);
    return kv->k + idx * kv->row_bytes;
}
static inline void *pv_kv_v_row(const pv_kv_cache *kv, int layer, int seq, int pos) {
    size_t idx = (((size_t)layer * (size_t)kv->n_seq + (size_t)seq) * (size_t)kv->n_ctx + (size_t)pos);
    return kv->v + idx * kv->row_bytes;
}

/* Number of valid positions of a sequence (0 for an empty or unknown slot). */
int32_t pv_kv_seq_len(const pv_kv_cache *kv, int seq);
/* Removes positions [p0, p1) of seq (p1 < 0: to the end; seq < 0: every sequence).
 * Only a suffix can be removed (p1 must reach the current end): a hole in the middle would
 * need masked attention and is rejected with PV_ERR_UNSUPPORTED. */
pv_status pv_kv_seq_rm(pv_kv_cache *kv, int seq, int32_t p0, int32_t p1, pv_error *err);
/* Copies positions [p0, p1) (p1 < 0: src's end) of src to the same positions of dst.
 * dst must already hold [0, p0) (p0 <= its length); afterwards its length is p1. */
pv_status pv_kv_seq_cp(pv_kv_cache *kv, int src, int dst, int32_t p0, int32_t p1,
                       pv_error *err);
void pv_kv_clear(pv_kv_cache *kv);
/* Bytes used by the cache storage. */
size_t pv_kv_bytes(const pv_kv_cache *kv);

#endif
