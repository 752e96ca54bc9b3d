/* kv.c — KV cache storage and sequence operations (see pv_kv.h). */
#include "pv_kv.h"

#include <stdlib.h>
#include <string.h>

pv_status pv_kv_init(pv_kv_cache *kv, pv_backend *be, pv_type type, int n_layer, int n_seq,
                     int n_ctx, int kv_dim, pv_error *err) {
    memset(kv, 0, sizeof *kv);
    if (type != PV_TYPE_F16 && type != PV_TYPE_F32)
        return pv_error_set(err, PV_ERR_INVALID, "kv cache: type %s not supported (F16 or F32)",
                            pv_type_name(type));
    if (n_layer <= 0 || n_seq <= 0 || n_ctx <= 0 || kv_dim <= 0)
        return pv_error_set(err, PV_ERR_INVALID, "kv cache: invalid shape");
    kv->be = be;
    kv->type = type;
    kv->n_layer = n_layer;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->kv_dim = kv_dim;
    kv->row_bytes = (size_t)kv_dim * (type == PV_TYPE_F16 ? 2 : 4);
    uint64_t total;
    if (pv_mul_overflow_u64((uint64_t)n_layer * (uint64_t)n_seq, (uint64_t)n_ctx, &total) ||
        pv_mul_overflow_u64(total, kv->row_bytes, &total) || total > SIZE_MAX / 2)
        return pv_error_set(err, PV_ERR_OVERFLOW, "kv cache: size overflows");
    kv->k = be->ops->alloc(be, (size_t)total);
    kv->v = be->ops->alloc(be, (size_t)total);
    kv->seq_len = calloc((size_t)n_seq, sizeof(int32_t));
    if (!kv->k || !kv->v || !kv->seq_len) {
        pv_kv_free(kv);
        return pv_error_set(err, PV_ERR_NOMEM,
                            "kv cache: cannot allocate %.1f MiB (%d layers x %d sequences x %d positions)",
                            2.0 * (double)total / 1048576.0, n_layer, n_seq, n_ctx);
    }
    return PV_OK;
}

void pv_kv_free(pv_kv_cache *kv) {
    if (!kv) return;
    if (kv->be) {
        if (kv->k) kv->be->ops->release(kv->be, kv->k);
        if (kv->v) kv->be->ops->release(kv->be, kv->v);
    }
    free(kv->seq_len);
    memset(kv, 0, sizeof *kv);
}

int32_t pv_kv_seq_len(const pv_kv_cache *kv, int seq) {
    if (seq < 0 || seq >= kv->n_seq) return 0;
    return kv->seq_len[seq];
}

pv_status pv_kv_seq_rm(pv_kv_cache *kv, int seq, int32_t p0, int32_t p1, pv_error *err) {
    if (seq < 0) {
        for (int s = 0; s < kv->n_seq; s++) {
            pv_status st = pv_kv_seq_rm(kv, s, p0, p1, err);
            if (st != PV_OK) return st;
        }
        return PV_OK;
    }
    if (seq >= kv->n_seq)
        return pv_error_set(err, PV_ERR_RANGE, "kv cache: sequence %d out of range (0..%d)", seq,
                            kv->n_seq - 1);
    int32_t len = kv->seq_len[seq];
    if (p0 < 0) p0 = 0;
    if (p1 < 0 || p1 > len) p1 = len;
    if (p0 >= p1) return PV_OK;
    if (p1 != len)
        return pv_error_set(err, PV_ERR_UNSUPPORTED,
                            "kv cache: removing positions [%d, %d) of sequence %d would leave a hole (length %d); only a suffix can be removed",
                            p0, p1, seq, len);
    kv->seq_len[seq] = p0;
    return PV_OK;
}

pv_status pv_kv_seq_cp(pv_kv_cache *kv, int src, int dst, int32_t p0, int32_t p1,
                       pv_error *err) {
    if (src < 0 || src >= kv->n_seq || dst < 0 || dst >= kv->n_seq)
        return pv_error_set(err, PV_ERR_RANGE, "kv cache: sequence out of range (%d -> %d)", src, dst);
    int32_t slen = kv->seq_len[src];
    if (p0 < 0) p0 = 0;
    if (p1 < 0 || p1 > slen) p1 = slen;
    if (src == dst || p0 >= p1) return PV_OK;
    if (p0 > kv->seq_len[dst])
        return pv_error_set(err, PV_ERR_UNSUPPORTED,
                            "kv cache: copy to sequence %d at position %d would leave a hole (its length is %d)",
                            dst, p0, kv->seq_len[dst]);
    size_t n = (size_t)(p1 - p0) * kv->row_bytes;
    for (int l = 0; l < kv->n_layer; l++) {
        kv->be->ops->copy_bytes(kv->be, pv_kv_k_row(kv, l, dst, p0), pv_kv_k_row(kv, l, src, p0), n);
        kv->be->ops->copy_bytes(kv->be, pv_kv_v_row(kv, l, dst, p0), pv_kv_v_row(kv, l, src, p0), n);
    }
    kv->seq_len[dst] = p1;
    return PV_OK;
}

void pv_kv_clear(pv_kv_cache *kv) { memset(kv->seq_len, 0, (size_t)kv->n_seq * sizeof(int32_t)); }

size_t pv_kv_bytes(const pv_kv_cache *kv) {
    return 2 * (size_t)kv->n_layer * (size_t)kv->n_seq * (size_t)kv->n_ctx * kv->row_bytes;
}
