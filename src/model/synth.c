/* synth.c — the synthetic-model generator declared in pv_synth.h. Three tables drive it:
 * the file-type table (name -> base tensor type, llama.cpp's general.file_type, and whether
 * the Q4_K_M/Q5_K_M mix applies), the per-role table (shape in symbolic dimensions and the
 * kind of values: projection, embedding, norm, bias, rope factors), and the per-architecture
 * hyper-parameter defaults. Which tensors exist comes from the architecture table in
 * pv_arch.h (required roles + the natural optional ones: a separate output matrix and
 * phi3's rope factors); tensor names come from pv_tensor_role_name.
 *
 * Determinism: every row of every tensor has its own xoshiro256** stream seeded from
 * (seed, tensor name, row), so the bytes depend neither on the thread count nor on how rows
 * are split into tasks. Rows are generated and quantized by the thread pool, one tensor at
 * a time; f32 values exist only one row per thread. The quantized bytes of every tensor
 * are kept until the GGUF writer (which has no streaming callback) writes the file: the
 * peak memory is the size of the output file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/pv_backend.h"
#include "../gguf/pv_gguf.h"
#include "../tokenizer/pv_tokenizer.h"
#include "pv_arch.h"
#include "pv_synth.h"

#define PV_SYNTH_MAX_DIM (INT64_C(1) << 24)

/* ---- file types ---- */
typedef struct pv_synth_ftype {
    const char *name;
    pv_type base;
    bool k_mix;         /* Q4_K_M / Q5_K_M tensor-type mix */
    uint32_t file_type; /* llama_ftype value for general.file_type */
} pv_synth_ftype;

static const pv_synth_ftype pv_synth_ftypes[] = {
    {"f32", PV_TYPE_F32, false, 0},      {"f16", PV_TYPE_F16, false, 1},
    {"bf16", PV_TYPE_BF16, false, 32},   {"q4_0", PV_TYPE_Q4_0, false, 2},
    {"q4_1", PV_TYPE_Q4_1, false, 3},    {"q5_0", PV_TYPE_Q5_0, false, 8},
    {"q5_1", PV_TYPE_Q5_1, false, 9},    {"q8_0", PV_TYPE_Q8_0, false, 7},
    {"q4_k", PV_TYPE_Q4_K, false, 14},   {"q5_k", PV_TYPE_Q5_K, false, 16},
    {"q6_k", PV_TYPE_Q6_K, false, 18},   {"q4_k_m", PV_TYPE_Q4_K, true, 15},
    {"q5_k_m", PV_TYPE_Q5_K, true, 17},
};

const char *pv_synth_type_list(void) {
    static char buf[160];
    if (!buf[0]) {
        size_t off = 0;
        for (size_t i = 0; i < PV_ARRAY_LEN(pv_synth_ftypes); i++)
            off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? "|" : "",
                                    pv_synth_ftypes[i].name);
    }
    return buf;
}

static const pv_synth_ftype *pv_synth_ftype_find(const char *name) {
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_synth_ftypes); i++)
        if (name && strcmp(pv_synth_ftypes[i].name, name) == 0) return &pv_synth_ftypes[i];
    return NULL;
}

/* llama.cpp's llama_tensor_get_type rules for Q4_K_M / Q5_K_M on the tensors we write:
 * attn_v and ffn_down get Q6_K on the layers use_more_bits picks, output always Q6_K,
 * a fused attn_qkv one step up (Q4_K -> Q5_K, Q5_K -> Q6_K); everything else (token_embd
 * included) keeps the base type. */
typedef enum { PV_MIX_MORE_BITS_Q6K, PV_MIX_Q6K, PV_MIX_STEP_UP } pv_mix_rule;
static const struct {
    pv_tensor_role role;
    pv_mix_rule rule;
} pv_synth_mix[] = {
    {PV_TENSOR_ATTN_V, PV_MIX_MORE_BITS_Q6K},
    {PV_TENSOR_FFN_DOWN, PV_MIX_MORE_BITS_Q6K},
    {PV_TENSOR_OUTPUT, PV_MIX_Q6K},
    {PV_TENSOR_ATTN_QKV, PV_MIX_STEP_UP},
};

static bool pv_use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* ---- roles: shapes and value kinds ---- */
typedef enum {
    PV_D_NONE, /* dimension absent (1-D tensor) */
    PV_D_DIM,
    PV_D_VOCAB,
    PV_D_QDIM,  /* n_head * head_dim */
    PV_D_KVDIM, /* n_head_kv * head_dim */
    PV_D_QKV,   /* QDIM + 2 KVDIM */
    PV_D_FFN,
    PV_D_FFN_UP, /* FFN, or 2 FFN when gate and up are fused */
    PV_D_HEAD,
    PV_D_HALF_HEAD,
} pv_synth_dim;

typedef enum {
    PV_K_PROJ,  /* quantized, std 1/sqrt(ne0) */
    PV_K_EMBD,  /* quantized, std EMBD_STD */
    PV_K_NORM,  /* F32, 1 + noise */
    PV_K_BIAS,  /* F32, small noise */
    PV_K_ROPE_LONG,
    PV_K_ROPE_SHORT,
} pv_synth_kind;

static const struct {
    pv_synth_dim ne0, ne1;
    pv_synth_kind kind;
} pv_synth_roles[PV_TENSOR_ROLE_COUNT] = {
    [PV_TENSOR_TOKEN_EMBD] = {PV_D_DIM, PV_D_VOCAB, PV_K_EMBD},
    [PV_TENSOR_OUTPUT_NORM] = {PV_D_DIM, PV_D_NONE, PV_K_NORM},
    [PV_TENSOR_OUTPUT] = {PV_D_DIM, PV_D_VOCAB, PV_K_PROJ},
    [PV_TENSOR_ROPE_FREQS] = {PV_D_HALF_HEAD, PV_D_NONE, PV_K_ROPE_SHORT},
    [PV_TENSOR_ROPE_FACTORS_LONG] = {PV_D_HALF_HEAD, PV_D_NONE, PV_K_ROPE_LONG},
    [PV_TENSOR_ROPE_FACTORS_SHORT] = {PV_D_HALF_HEAD, PV_D_NONE, PV_K_ROPE_SHORT},
    [PV_TENSOR_ATTN_NORM] = {PV_D_DIM, PV_D_NONE, PV_K_NORM},
    [PV_TENSOR_ATTN_Q] = {PV_D_DIM, PV_D_QDIM, PV_K_PROJ},
    [PV_TENSOR_ATTN_K] = {PV_D_DIM, PV_D_KVDIM, PV_K_PROJ},
    [PV_TENSOR_ATTN_V] = {PV_D_DIM, PV_D_KVDIM, PV_K_PROJ},
    [PV_TENSOR_ATTN_QKV] = {PV_D_DIM, PV_D_QKV, PV_K_PROJ},
    [PV_TENSOR_ATTN_Q_BIAS] = {PV_D_QDIM, PV_D_NONE, PV_K_BIAS},
    [PV_TENSOR_ATTN_K_BIAS] = {PV_D_KVDIM, PV_D_NONE, PV_K_BIAS},
    [PV_TENSOR_ATTN_V_BIAS] = {PV_D_KVDIM, PV_D_NONE, PV_K_BIAS},
    [PV_TENSOR_ATTN_Q_NORM] = {PV_D_HEAD, PV_D_NONE, PV_K_NORM},
    [PV_TENSOR_ATTN_K_NORM] = {PV_D_HEAD, PV_D_NONE, PV_K_NORM},
    [PV_TENSOR_ATTN_OUT] = {PV_D_QDIM, PV_D_DIM, PV_K_PROJ},
    [PV_TENSOR_FFN_NORM] = {PV_D_DIM, PV_D_NONE, PV_K_NORM},
    [PV_TENSOR_FFN_GATE] = {PV_D_DIM, PV_D_FFN, PV_K_PROJ},
    [PV_TENSOR_FFN_UP] = {PV_D_DIM, PV_D_FFN_UP, PV_K_PROJ},
    [PV_TENSOR_FFN_DOWN] = {PV_D_FFN, PV_D_DIM, PV_K_PROJ},
};

/* Optional roles every generated model gets when its architecture allows them. */
#define PV_SYNTH_NATURAL_OPTIONAL \
    (PV_ROLE_BIT(OUTPUT) | PV_ROLE_BIT(ROPE_FACTORS_LONG) | PV_ROLE_BIT(ROPE_FACTORS_SHORT))

/* ---- per-architecture hyper-parameter defaults (values of the reference models) ---- */
static const struct {
    float rms_eps;
    float rope_base;
    bool kv_lengths;    /* always write attention.key_length / value_length */
    bool rope_orig_ctx; /* write rope.scaling.original_context_length */
} pv_synth_arch_hp[PV_ARCH_COUNT] = {
    [PV_ARCH_LLAMA] = {1e-5f, 10000.0f, false, false},
    [PV_ARCH_QWEN2] = {1e-6f, 1000000.0f, false, false},
    [PV_ARCH_QWEN3] = {1e-6f, 1000000.0f, true, false},
    [PV_ARCH_PHI3] = {1e-5f, 10000.0f, false, true},
};

/* ---- the plan: every tensor to write ---- */
typedef struct pv_synth_tensor {
    char name[64];
    pv_tensor_role role;
    int layer;
    int n_dims;
    int64_t ne[2];
    pv_type type;
    pv_synth_kind kind;
    float std;
    uint64_t seed;
} pv_synth_tensor;

typedef struct pv_synth_plan {
    const pv_arch_info *arch;
    const pv_synth_ftype *ftype;
    int64_t head_dim;
    pv_synth_tensor *t;
    size_t n;
    size_t n_fallback;
    char fallback_example[96];
} pv_synth_plan;

void pv_synth_params_default(pv_synth_params *p) {
    memset(p, 0, sizeof *p);
    p->boost_token = -1;
    p->boost_scale = 1.0f;
    p->arch = "llama";
    p->dim = 2048;
    p->n_layer = 16;
    p->n_head = 32;
    p->n_head_kv = 8;
    p->n_ff = 8192;
    p->n_vocab = 32000;
    p->n_ctx = 4096;
    p->type = "f16";
    p->seed = 1;
}

/* ---- random numbers ---- */
/* Uniform in (0, 1]: never 0, so log() below is finite. */
static inline float pv_synth_uniform(pv_rng *r) {
    return (float)((pv_rng_next(r) >> 40) + 1) * (1.0f / 16777216.0f);
}

/* Fills out[0..n) with N(mean, std) by Box-Muller (pairs). */
static void pv_synth_normal(pv_rng *r, float *out, int64_t n, float mean, float std) {
    const float two_pi = 6.283185307179586f;
    for (int64_t i = 0; i < n; i += 2) {
        float rad = sqrtf(-2.0f * logf(pv_synth_uniform(r))) * std;
        float ang = two_pi * pv_synth_uniform(r);
        out[i] = mean + rad * cosf(ang);
        if (i + 1 < n) out[i + 1] = mean + rad * sinf(ang);
    }
}

/* FNV-1a of the name mixed with the user seed: the tensor's own seed. */
static uint64_t pv_synth_tensor_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    uint64_t x = seed ^ h;
    return pv_splitmix64(&x);
}

/* ---- building the plan ---- */
static int64_t pv_synth_dim_value(pv_synth_dim d, const pv_synth_params *p, const pv_synth_plan *pl,
                                  int64_t n_vocab) {
    int64_t q = p->n_head * pl->head_dim, kv = p->n_head_kv * pl->head_dim;
    switch (d) {
    case PV_D_NONE: return 1;
    case PV_D_DIM: return p->dim;
    case PV_D_VOCAB: return n_vocab;
    case PV_D_QDIM: return q;
    case PV_D_KVDIM: return kv;
    case PV_D_QKV: return q + 2 * kv;
    case PV_D_FFN: return p->n_ff;
    case PV_D_FFN_UP: return pl->arch->fused_gate_up ? 2 * p->n_ff : p->n_ff;
    case PV_D_HEAD: return pl->head_dim;
    case PV_D_HALF_HEAD: return pl->head_dim / 2;
    }
    return 1;
}

/* The type a 2-D tensor gets: the file type's base type, the K_M mix, then the fallback
 * when rows do not split into the type's blocks (K-quants -> Q8_0 like llama-quantize's
 * fallback to a 32-block type; 32-block types -> F16). */
static pv_type pv_synth_pick_type(pv_synth_plan *pl, const pv_synth_tensor *t, int64_t n_layer) {
    pv_type ty = pl->ftype->base;
    if (pl->ftype->k_mix) {
        for (size_t i = 0; i < PV_ARRAY_LEN(pv_synth_mix); i++) {
            if (pv_synth_mix[i].role != t->role) continue;
            switch (pv_synth_mix[i].rule) {
            case PV_MIX_MORE_BITS_Q6K:
                if (pv_use_more_bits(t->layer, n_layer)) ty = PV_TYPE_Q6_K;
                break;
            case PV_MIX_Q6K: ty = PV_TYPE_Q6_K; break;
            case PV_MIX_STEP_UP: ty = ty == PV_TYPE_Q4_K ? PV_TYPE_Q5_K : PV_TYPE_Q6_K; break;
            }
        }
    }
    const pv_type_traits *tr = pv_type_traits_get(ty);
    if (t->ne[0] % tr->blck_size != 0) {
        pv_type fb = t->ne[0] % PV_QK8_0 == 0 ? PV_TYPE_Q8_0 : PV_TYPE_F16;
        if (pl->n_fallback++ == 0)
            snprintf(pl->fallback_example, sizeof pl->fallback_example, "%s: row %lld -> %s",
                     t->name, (long long)t->ne[0], pv_type_name(fb));
        ty = fb;
    }
    return ty;
}

static pv_status pv_synth_add(pv_synth_plan *pl, const pv_synth_params *p, int64_t n_vocab,
                              pv_tensor_role role, int layer, pv_error *err) {
    pv_synth_tensor *t = &pl->t[pl->n++];
    memset(t, 0, sizeof *t);
    pv_tensor_role_name(role, layer, t->name, sizeof t->name);
    t->role = role;
    t->layer = layer;
    t->kind = pv_synth_roles[role].kind;
    t->ne[0] = pv_synth_dim_value(pv_synth_roles[role].ne0, p, pl, n_vocab);
    t->ne[1] = pv_synth_dim_value(pv_synth_roles[role].ne1, p, pl, n_vocab);
    t->n_dims = pv_synth_roles[role].ne1 == PV_D_NONE ? 1 : 2;
    if (t->ne[0] <= 0 || t->ne[1] <= 0 || t->ne[0] > PV_SYNTH_MAX_DIM || t->ne[1] > PV_SYNTH_MAX_DIM)
        return pv_error_set(err, PV_ERR_INVALID, "synth: tensor %s: bad shape [%lld, %lld]",
                            t->name, (long long)t->ne[0], (long long)t->ne[1]);
    switch (t->kind) {
    case PV_K_PROJ:
        t->std = 1.0f / sqrtf((float)t->ne[0]);
        t->type = pv_synth_pick_type(pl, t, p->n_layer);
        break;
    case PV_K_EMBD:
        t->std = PV_SYNTH_EMBD_STD;
        t->type = pv_synth_pick_type(pl, t, p->n_layer);
        break;
    case PV_K_NORM: t->std = PV_SYNTH_NORM_STD; t->type = PV_TYPE_F32; break;
    case PV_K_BIAS: t->std = PV_SYNTH_BIAS_STD; t->type = PV_TYPE_F32; break;
    case PV_K_ROPE_LONG:
    case PV_K_ROPE_SHORT: t->type = PV_TYPE_F32; break;
    }
    t->seed = pv_synth_tensor_seed(p->seed, t->name);
    return PV_OK;
}

/* Builds the tensor list (owned by pl->t, freed by the caller). */
static pv_status pv_synth_plan_build(pv_synth_plan *pl, const pv_synth_params *p, int64_t n_vocab,
                                     pv_error *err) {
    uint32_t mask = pl->arch->required | (pl->arch->optional & PV_SYNTH_NATURAL_OPTIONAL);
    size_t max = (size_t)PV_TENSOR_ROLE_COUNT * ((size_t)p->n_layer + 1);
    pl->t = pv_calloc_array(max, sizeof *pl->t);
    if (!pl->t) return pv_error_set(err, PV_ERR_NOMEM, "synth: out of memory");
    for (int r = 0; r < PV_TENSOR_ROLE_COUNT; r++) {
        if (!(mask & (1u << r)) || pv_tensor_role_per_layer((pv_tensor_role)r)) continue;
        pv_status st = pv_synth_add(pl, p, n_vocab, (pv_tensor_role)r, 0, err);
        if (st != PV_OK) return st;
    }
    for (int l = 0; l < p->n_layer; l++) {
        for (int r = 0; r < PV_TENSOR_ROLE_COUNT; r++) {
            if (!(mask & (1u << r)) || !pv_tensor_role_per_layer((pv_tensor_role)r)) continue;
            pv_status st = pv_synth_add(pl, p, n_vocab, (pv_tensor_role)r, l, err);
            if (st != PV_OK) return st;
        }
    }
    return PV_OK;
}

/* ---- generating one tensor ---- */
typedef struct pv_synth_job {
    const pv_synth_tensor *t;
    uint8_t *dst;      /* ne[1] rows of row_bytes */
    size_t row_bytes;
    int64_t rows_per_task;
    float **scratch;   /* [thread] ne[0] floats */
    pv_from_float_fn quantize;
    int64_t boost_row; /* row scaled by boost_scale, or -1 */
    float boost_scale;
} pv_synth_job;

/* Generates row `row` of tensor t into f (ne[0] floats). */
static void pv_synth_row(const pv_synth_tensor *t, int64_t row, float *f) {
    pv_rng rng;
    pv_rng_seed(&rng, t->seed ^ ((uint64_t)row * 0xD1B54A32D192ED03ull));
    int64_t n = t->ne[0];
    switch (t->kind) {
    case PV_K_PROJ:
    case PV_K_EMBD:
    case PV_K_BIAS: pv_synth_normal(&rng, f, n, 0.0f, t->std); break;
    case PV_K_NORM: pv_synth_normal(&rng, f, n, 1.0f, t->std); break;
    case PV_K_ROPE_SHORT:
        for (int64_t i = 0; i < n; i++) f[i] = 1.0f + 0.05f * pv_synth_uniform(&rng);
        break;
    case PV_K_ROPE_LONG:
        for (int64_t i = 0; i < n; i++) {
            float x = n > 1 ? (float)i / (float)(n - 1) : 0.0f;
            f[i] = 1.0f + 3.0f * x * x;
        }
        break;
    }
}

static void pv_synth_task(void *ctx, int64_t task, int thread) {
    pv_synth_job *j = ctx;
    int64_t r0 = task * j->rows_per_task, r1 = PV_MIN(r0 + j->rows_per_task, j->t->ne[1]);
    float *f = j->scratch[thread];
    for (int64_t r = r0; r < r1; r++) {
        pv_synth_row(j->t, r, f);
        if (r == j->boost_row)
            for (int64_t c = 0; c < j->t->ne[0]; c++) f[c] *= j->boost_scale;
        j->quantize(f, j->dst + (size_t)r * j->row_bytes, j->t->ne[0]);
    }
}

/* ---- vocabulary ---- */

/* The synthetic SPM vocabulary: <unk>, <s>, </s>, <0x00>..<0xFF>, "▁", then printable
 * ASCII characters alone and after "▁", then lowercase n-grams (n = 2, 3, ...) alone and
 * after "▁", until n_vocab pieces; scores decrease with the index (earlier = preferred). */
static pv_status pv_synth_vocab(pv_gguf_writer *g, int64_t n_vocab, pv_error *err) {
    enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };
    static const char sp[] = "\xE2\x96\x81"; /* U+2581 */
    size_t n = (size_t)n_vocab;
    char **tok = pv_calloc_array(n, sizeof *tok);
    float *score = pv_calloc_array(n, sizeof *score);
    int32_t *type = pv_calloc_array(n, sizeof *type);
    char *pool = pv_calloc_array(n, 24); /* longest piece: "▁" + a 19-gram, never reached */
    pv_status st = PV_OK;
    if (!tok || !score || !type || !pool) {
        st = pv_error_set(err, PV_ERR_NOMEM, "synth: out of memory for %zu tokens", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) tok[i] = pool + 24 * i;
    size_t k = 0;
    snprintf(tok[k], 24, "<unk>");
    type[k++] = TT_UNKNOWN;
    snprintf(tok[k], 24, "<s>");
    type[k++] = TT_CONTROL;
    snprintf(tok[k], 24, "</s>");
    type[k++] = TT_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(tok[k], 24, "<0x%02X>", b);
        type[k++] = TT_BYTE;
    }
    size_t first_normal = k;
    snprintf(tok[k], 24, "%s", sp);
    type[k++] = TT_NORMAL;
    for (int c = 33; c < 127 && k < n; c++) {
        snprintf(tok[k], 24, "%c", c);
        type[k++] = TT_NORMAL;
        if (k < n) {
            snprintf(tok[k], 24, "%s%c", sp, c);
            type[k++] = TT_NORMAL;
        }
    }
    for (int len = 2; k < n && len <= 19; len++) {
        char gram[20];
        int idx[20] = {0};
        for (;;) {
            for (int i = 0; i < len; i++) gram[i] = (char)('a' + idx[i]);
            gram[len] = '\0';
            snprintf(tok[k], 24, "%s", gram);
            type[k++] = TT_NORMAL;
            if (k == n) break;
            snprintf(tok[k], 24, "%s%s", sp, gram);
            type[k++] = TT_NORMAL;
            if (k == n) break;
            int pos = len - 1; /* odometer increment */
            while (pos >= 0 && ++idx[pos] == 26) idx[pos--] = 0;
            if (pos < 0) break;
        }
    }
    for (size_t i = first_normal; i < n; i++) score[i] = -(float)(i - first_normal) * 0.01f;
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "llama");
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", (const char *const *)tok, n);
    pv_gguf_writer_set_arr(g, "tokenizer.ggml.scores", PV_VAL_F32, score, n);
    pv_gguf_writer_set_arr(g, "tokenizer.ggml.token_type", PV_VAL_I32, type, n);
    pv_gguf_writer_set_u32(g, "tokenizer.ggml.unknown_token_id", 0);
    pv_gguf_writer_set_u32(g, "tokenizer.ggml.bos_token_id", 1);
    pv_gguf_writer_set_u32(g, "tokenizer.ggml.eos_token_id", 2);
    pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_bos_token", true);
    pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_eos_token", false);
done:
    free(tok);
    free(score);
    free(type);
    free(pool);
    return st;
}

/* ---- validation and hyper-parameters ---- */
static pv_status pv_synth_check(const pv_synth_params *p, pv_error *err) {
    const struct {
        const char *flag;
        int64_t v;
    } dims[] = {{"--dim", p->dim}, {"--layers", p->n_layer}, {"--heads", p->n_head},
                {"--kv-heads", p->n_head_kv}, {"--ffn", p->n_ff}, {"--ctx", p->n_ctx}};
    for (size_t i = 0; i < PV_ARRAY_LEN(dims); i++)
        if (dims[i].v <= 0 || dims[i].v > PV_SYNTH_MAX_DIM)
            return pv_error_set(err, PV_ERR_INVALID, "synth: %s must be in 1..%lld (got %lld)",
                                dims[i].flag, (long long)PV_SYNTH_MAX_DIM, (long long)dims[i].v);
    if (p->n_layer > 4096)
        return pv_error_set(err, PV_ERR_INVALID, "synth: --layers must be <= 4096");
    if (p->n_head % p->n_head_kv != 0)
        return pv_error_set(err, PV_ERR_INVALID,
                            "synth: --heads (%lld) must be a multiple of --kv-heads (%lld)",
                            (long long)p->n_head, (long long)p->n_head_kv);
    if (p->head_dim < 0 || p->head_dim > 4096)
        return pv_error_set(err, PV_ERR_INVALID, "synth: --head-dim must be in 0..4096");
    if (p->head_dim == 0 && p->dim % p->n_head != 0)
        return pv_error_set(err, PV_ERR_INVALID,
                            "synth: --dim (%lld) must be a multiple of --heads (%lld), or give --head-dim",
                            (long long)p->dim, (long long)p->n_head);
    int64_t hd = p->head_dim ? p->head_dim : p->dim / p->n_head;
    if (hd % 2 != 0)
        return pv_error_set(err, PV_ERR_INVALID, "synth: head dimension %lld must be even",
                            (long long)hd);
    if (!p->tokenizer_json && (p->n_vocab < PV_SYNTH_MIN_VOCAB || p->n_vocab > PV_SYNTH_MAX_DIM))
        return pv_error_set(err, PV_ERR_INVALID, "synth: --vocab must be in %d..%lld (got %lld)",
                            PV_SYNTH_MIN_VOCAB, (long long)PV_SYNTH_MAX_DIM, (long long)p->n_vocab);
    if (p->tokenizer_config && !p->tokenizer_json)
        return pv_error_set(err, PV_ERR_INVALID, "synth: --tokenizer-config needs --tokenizer-json");
    return PV_OK;
}

static void pv_synth_set_hparams(pv_gguf_writer *g, const pv_synth_params *p, const pv_synth_plan *pl) {
    const pv_arch_info *a = pl->arch;
    char key[128], name[96];
    snprintf(name, sizeof name, "synthetic-%s-%s", a->name, pl->ftype->name);
    pv_gguf_writer_set_str(g, "general.name", name);
    pv_gguf_writer_set_u32(g, "general.file_type", pl->ftype->file_type);
    pv_gguf_writer_set_u32(g, "general.quantization_version", 2);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "context_length", key, sizeof key), (uint32_t)p->n_ctx);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "embedding_length", key, sizeof key), (uint32_t)p->dim);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "feed_forward_length", key, sizeof key), (uint32_t)p->n_ff);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "block_count", key, sizeof key), (uint32_t)p->n_layer);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "attention.head_count", key, sizeof key), (uint32_t)p->n_head);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "attention.head_count_kv", key, sizeof key),
                           (uint32_t)p->n_head_kv);
    pv_gguf_writer_set_f32(g, pv_arch_key(a, "attention.layer_norm_rms_epsilon", key, sizeof key),
                           pv_synth_arch_hp[a->id].rms_eps);
    pv_gguf_writer_set_f32(g, pv_arch_key(a, "rope.freq_base", key, sizeof key),
                           pv_synth_arch_hp[a->id].rope_base);
    pv_gguf_writer_set_u32(g, pv_arch_key(a, "rope.dimension_count", key, sizeof key),
                           (uint32_t)pl->head_dim);
    if (pv_synth_arch_hp[a->id].kv_lengths || pl->head_dim * p->n_head != p->dim) {
        pv_gguf_writer_set_u32(g, pv_arch_key(a, "attention.key_length", key, sizeof key),
                               (uint32_t)pl->head_dim);
        pv_gguf_writer_set_u32(g, pv_arch_key(a, "attention.value_length", key, sizeof key),
                               (uint32_t)pl->head_dim);
    }
    if (pv_synth_arch_hp[a->id].rope_orig_ctx)
        pv_gguf_writer_set_u32(g, pv_arch_key(a, "rope.scaling.original_context_length", key, sizeof key),
                               (uint32_t)PV_MIN(p->n_ctx, 4096));
}

/* Generates every tensor of the plan, one tensor at a time, into buffers the writer
 * borrows (add_tensor_ref: no second copy); bufs[pl->n] receives them and the caller frees
 * them after pv_gguf_writer_write. */
static pv_status pv_synth_tensors(pv_gguf_writer *g, const pv_synth_plan *pl, const pv_synth_params *p,
                                  int n_threads, void **bufs, pv_error *err) {
    pv_threadpool *pool = pv_threadpool_new(n_threads);
    if (!pool) return pv_error_set(err, PV_ERR_NOMEM, "synth: cannot start %d threads", n_threads);
    int nt = pv_threadpool_size(pool);
    int64_t max_ne0 = 1;
    for (size_t i = 0; i < pl->n; i++) max_ne0 = PV_MAX(max_ne0, pl->t[i].ne[0]);
    float **scratch = pv_calloc_array((size_t)nt, sizeof *scratch);
    pv_status st = PV_OK;
    if (!scratch) st = pv_error_set(err, PV_ERR_NOMEM, "synth: out of memory");
    for (int i = 0; st == PV_OK && i < nt; i++) {
        scratch[i] = pv_calloc_array((size_t)max_ne0, sizeof(float));
        if (!scratch[i]) st = pv_error_set(err, PV_ERR_NOMEM, "synth: out of memory");
    }
    for (size_t i = 0; st == PV_OK && i < pl->n; i++) {
        const pv_synth_tensor *t = &pl->t[i];
        const pv_type_traits *tr = pv_type_traits_get(t->type);
        size_t row_bytes = pv_type_row_size(t->type, t->ne[0]);
        if (!tr || !tr->from_float || row_bytes == 0) {
            st = pv_error_set(err, PV_ERR_UNSUPPORTED, "synth: %s: no quantizer for %s",
                              t->name, pv_type_name(t->type));
            break;
        }
        uint64_t nbytes;
        if (pv_mul_overflow_u64(row_bytes, (uint64_t)t->ne[1], &nbytes) || nbytes > SIZE_MAX) {
            st = pv_error_set(err, PV_ERR_OVERFLOW, "synth: %s: too large", t->name);
            break;
        }
        uint8_t *dst = malloc((size_t)nbytes);
        if (!dst) {
            st = pv_error_set(err, PV_ERR_NOMEM, "synth: %s: out of memory (%llu bytes)", t->name,
                              (unsigned long long)nbytes);
            break;
        }
        /* the boosted row lives in the output matrix: output.weight, or token_embd when the
         * plan has no separate output (tied embeddings) */
        bool has_output = false;
        for (size_t k = 0; k < pl->n; k++) has_output |= !strcmp(pl->t[k].name, "output.weight");
        bool out_matrix = !strcmp(t->name, has_output ? "output.weight" : "token_embd.weight");
        pv_synth_job job = {t, dst, row_bytes, PV_MAX(1, 262144 / t->ne[0]), scratch, tr->from_float,
                            out_matrix && p->boost_token >= 0 ? p->boost_token : -1, p->boost_scale};
        int64_t n_tasks = (t->ne[1] + job.rows_per_task - 1) / job.rows_per_task;
        pv_threadpool_run(pool, n_tasks, pv_synth_task, &job);
        bufs[i] = dst;
        st = pv_gguf_writer_add_tensor_ref(g, t->name, t->type, t->n_dims, t->ne, dst, err);
    }
    for (int i = 0; scratch && i < nt; i++) free(scratch[i]);
    free(scratch);
    pv_threadpool_free(pool);
    return st;
}

pv_status pv_synth_write(const pv_synth_params *p, const char *path, pv_error *err) {
    if (!p || !path) return pv_error_set(err, PV_ERR_INVALID, "synth: no parameters or output path");
    pv_synth_plan pl = {0};
    pl.arch = pv_arch_find(p->arch);
    if (!pl.arch)
        return pv_error_set(err, PV_ERR_UNSUPPORTED, "synth: unknown architecture '%s' (supported: %s)",
                            p->arch ? p->arch : "(null)", pv_arch_supported_list());
    pl.ftype = pv_synth_ftype_find(p->type);
    if (!pl.ftype)
        return pv_error_set(err, PV_ERR_UNSUPPORTED, "synth: unknown type '%s' (supported: %s)",
                            p->type ? p->type : "(null)", pv_synth_type_list());
    pv_status st = pv_synth_check(p, err);
    if (st != PV_OK) return st;
    void **bufs = NULL;
    pl.head_dim = p->head_dim ? p->head_dim : p->dim / p->n_head;
    pv_tensor_init();

    pv_gguf_writer *g = pv_gguf_writer_new();
    if (!g) return pv_error_set(err, PV_ERR_NOMEM, "synth: out of memory");
    pv_gguf_writer_set_str(g, "general.architecture", pl.arch->name);
    int64_t n_vocab = p->n_vocab;
    if (p->tokenizer_json) {
        int32_t nv = 0;
        st = pv_tokenizer_import_hf(p->tokenizer_json, p->tokenizer_config, g, &nv, err);
        n_vocab = nv;
        if (st == PV_OK && (nv <= 0 || nv > PV_SYNTH_MAX_DIM))
            st = pv_error_set(err, PV_ERR_FORMAT, "synth: %s: vocabulary size %d", p->tokenizer_json, nv);
    } else {
        st = pv_synth_vocab(g, n_vocab, err);
    }
    if (st == PV_OK && !p->vocab_only) {
        pv_synth_set_hparams(g, p, &pl);
        st = pv_synth_plan_build(&pl, p, n_vocab, err);
        if (st == PV_OK && pl.n_fallback)
            PV_LOG_I("synth", "note: %zu tensor(s) have rows that are not a multiple of their "
                     "type's block size and use a fallback type, as llama-quantize does (e.g. %s)",
                     pl.n_fallback, pl.fallback_example);
        int nt = p->n_threads > 0 ? p->n_threads : pv_cpu_count();
        if (st == PV_OK) {
            bufs = pv_calloc_array(pl.n ? pl.n : 1, sizeof *bufs);
            if (!bufs) st = pv_error_set(err, PV_ERR_NOMEM, "synth: out of memory");
        }
        if (st == PV_OK && p->boost_token >= n_vocab)
            st = pv_error_set(err, PV_ERR_RANGE, "synth: --boost-token %lld is not in the vocabulary (%lld tokens)",
                              (long long)p->boost_token, (long long)n_vocab);
        if (st == PV_OK) st = pv_synth_tensors(g, &pl, p, nt, bufs, err);
    }
    if (st == PV_OK) st = pv_gguf_writer_write(g, path, err);
    for (size_t i = 0; bufs && i < pl.n; i++) free(bufs[i]);
    free(bufs);
    free(pl.t);
    pv_gguf_writer_free(g);
    return st;
}
