/* pv_arch.h — the one architecture table (llama.cpp's llama-arch): for each supported
 * architecture, its GGUF name, rope layout, and which tensors it has (by role), plus the
 * one table of tensor-name patterns shared by all architectures. The forward pass, the
 * loader and the synthetic-model generator all read these tables; nothing else in the
 * engine spells a tensor name or switches on an architecture name. */
#ifndef PV_ARCH_H
#define PV_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/pv_kernels.h"

typedef enum {
    PV_ARCH_LLAMA,
    PV_ARCH_QWEN2,
    PV_ARCH_QWEN3,
    PV_ARCH_PHI3,
    PV_ARCH_COUNT
} pv_arch_id;

/* Tensor roles. Global ones first, then per-layer ones (names contain "blk.%d."). */
#define PV_TENSOR_ROLE_MAP(X)                                   \
    X(TOKEN_EMBD, "token_embd.weight", 0)                       \
    X(OUTPUT_NORM, "output_norm.weight", 0)                     \
    X(OUTPUT, "output.weight", 0)                               \
    X(ROPE_FREQS, "rope_freqs.weight", 0)                       \
    X(ROPE_FACTORS_LONG, "rope_factors_long.weight", 0)         \
    X(ROPE_FACTORS_SHORT, "rope_factors_short.weight", 0)       \
    X(ATTN_NORM, "blk.%d.attn_norm.weight", 1)                  \
    X(ATTN_Q, "blk.%d.attn_q.weight", 1)                        \
    X(ATTN_K, "blk.%d.attn_k.weight", 1)                        \
    X(ATTN_V, "blk.%d.attn_v.weight", 1)                        \
    X(ATTN_QKV, "blk.%d.attn_qkv.weight", 1)                    \
    X(ATTN_Q_BIAS, "blk.%d.attn_q.bias", 1)                     \
    X(ATTN_K_BIAS, "blk.%d.attn_k.bias", 1)                     \
    X(ATTN_V_BIAS, "blk.%d.attn_v.bias", 1)                     \
    X(ATTN_Q_NORM, "blk.%d.attn_q_norm.weight", 1)              \
    X(ATTN_K_NORM, "blk.%d.attn_k_norm.weight", 1)              \
    X(ATTN_OUT, "blk.%d.attn_output.weight", 1)                 \
    X(FFN_NORM, "blk.%d.ffn_norm.weight", 1)                    \
    X(FFN_GATE, "blk.%d.ffn_gate.weight", 1)                    \
    X(FFN_UP, "blk.%d.ffn_up.weight", 1) /* phi3: gate and up fused, 2*n_ff rows */ \
    X(FFN_DOWN, "blk.%d.ffn_down.weight", 1)

typedef enum {
#define PV_ROLE_ENUM_(r, name, per_layer) PV_TENSOR_##r,
    PV_TENSOR_ROLE_MAP(PV_ROLE_ENUM_)
#undef PV_ROLE_ENUM_
    PV_TENSOR_ROLE_COUNT
} pv_tensor_role;

#define PV_ROLE_BIT(r) (1u << (PV_TENSOR_##r))

typedef struct pv_arch_info {
    pv_arch_id id;
    const char *name;     /* general.architecture value and GGUF key prefix */
    pv_rope_mode rope;    /* NORM (llama: pairs interleaved by the converter) or NEOX */
    uint32_t required;    /* PV_ROLE_BIT mask of tensors that must exist */
    uint32_t optional;    /* mask of tensors that may exist (OUTPUT: else tied embedding) */
    bool fused_qkv;       /* phi3: attn_qkv holds q, k, v rows in that order */
    bool fused_gate_up;   /* phi3: ffn_up holds gate rows then up rows */
} pv_arch_info;

/* The table entry for a GGUF architecture name, or NULL. */
const pv_arch_info *pv_arch_find(const char *name);
const pv_arch_info *pv_arch_get(pv_arch_id id);
/* "llama, qwen2, qwen3, phi3" — for the unknown-architecture error. */
const char *pv_arch_supported_list(void);

/* Tensor name for a role (layer ignored for global roles) into buf; returns buf. */
const char *pv_tensor_role_name(pv_tensor_role role, int layer, char *buf, size_t cap);
bool pv_tensor_role_per_layer(pv_tensor_role role);

/* Builds "<arch>.<suffix>" (e.g. "llama.block_count") into buf; returns buf. */
const char *pv_arch_key(const pv_arch_info *a, const char *suffix, char *buf, size_t cap);

#endif /* PV_ARCH_H */
