/* arch.c — the architecture table and tensor-name table declared in pv_arch.h. Adding an
 * architecture that reuses the existing blocks is one row here. */
#include "pv_arch.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *fmt;
    bool per_layer;
} pv_roles[PV_TENSOR_ROLE_COUNT] = {
#define PV_ROLE_ROW_(r, name, per_layer) {name, per_layer},
    PV_TENSOR_ROLE_MAP(PV_ROLE_ROW_)
#undef PV_ROLE_ROW_
};

#define R_(r) PV_ROLE_BIT(r)
#define PV_COMMON_REQ (R_(TOKEN_EMBD) | R_(OUTPUT_NORM) | R_(ATTN_NORM) | R_(ATTN_OUT) | R_(FFN_NORM) | R_(FFN_UP) | R_(FFN_DOWN))
#define PV_SPLIT_QKV (R_(ATTN_Q) | R_(ATTN_K) | R_(ATTN_V))

static const pv_arch_info pv_archs[PV_ARCH_COUNT] = {
    {PV_ARCH_LLAMA, "llama", PV_ROPE_NORM, PV_COMMON_REQ | PV_SPLIT_QKV | R_(FFN_GATE),
     R_(OUTPUT) | R_(ROPE_FREQS) | R_(ATTN_Q_BIAS) | R_(ATTN_K_BIAS) | R_(ATTN_V_BIAS), false, false},
    {PV_ARCH_QWEN2, "qwen2", PV_ROPE_NEOX,
     PV_COMMON_REQ | PV_SPLIT_QKV | R_(FFN_GATE) | R_(ATTN_Q_BIAS) | R_(ATTN_K_BIAS) | R_(ATTN_V_BIAS),
     R_(OUTPUT), false, false},
    {PV_ARCH_QWEN3, "qwen3", PV_ROPE_NEOX,
     PV_COMMON_REQ | PV_SPLIT_QKV | R_(FFN_GATE) | R_(ATTN_Q_NORM) | R_(ATTN_K_NORM), R_(OUTPUT),
     false, false},
    {PV_ARCH_PHI3, "phi3", PV_ROPE_NEOX, PV_COMMON_REQ | R_(ATTN_QKV),
     R_(OUTPUT) | R_(ROPE_FACTORS_LONG) | R_(ROPE_FACTORS_SHORT), true, true},
};

const pv_arch_info *pv_arch_find(const char *name) {
    for (int i = 0; i < PV_ARCH_COUNT; i++)
        if (name && strcmp(pv_archs[i].name, name) == 0) return &pv_archs[i];
    return NULL;
}

const pv_arch_info *pv_arch_get(pv_arch_id id) {
    return (unsigned)id < PV_ARCH_COUNT ? &pv_archs[id] : NULL;
}

const char *pv_arch_supported_list(void) {
    static char buf[128];
    if (!buf[0]) {
        size_t off = 0;
        for (int i = 0; i < PV_ARCH_COUNT; i++)
            off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? ", " : "", pv_archs[i].name);
    }
    return buf;
}

const char *pv_tensor_role_name(pv_tensor_role role, int layer, char *buf, size_t cap) {
    if ((unsigned)role >= PV_TENSOR_ROLE_COUNT) {
        snprintf(buf, cap, "?");
        return buf;
    }
    if (pv_roles[role].per_layer) {
        /* the pattern is a table constant with exactly one %d */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(buf, cap, pv_roles[role].fmt, layer);
#pragma GCC diagnostic pop
    } else {
        snprintf(buf, cap, "%s", pv_roles[role].fmt);
    }
    return buf;
}

bool pv_tensor_role_per_layer(pv_tensor_role role) {
    return (unsigned)role < PV_TENSOR_ROLE_COUNT && pv_roles[role].per_layer;
}

const char *pv_arch_key(const pv_arch_info *a, const char *suffix, char *buf, size_t cap) {
    snprintf(buf, cap, "%s.%s", a->name, suffix);
    return buf;
}
