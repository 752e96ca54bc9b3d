/* pv_synth.h — the deterministic synthetic-model generator behind `pensieve synth`: writes
 * a GGUF file with an architecture's hyper-parameter keys (named as llama.cpp names them),
 * the tensors that the architecture table (pv_arch.h) lists, random weights drawn from the
 * seed and each tensor's name (so the bytes depend on neither the thread count nor the
 * tensor order), quantized with the reference quantizers of the type-traits table, and a
 * vocabulary (a synthetic SentencePiece-style one, or one imported from tokenizer.json).
 *
 * Weight distributions (all normal unless said otherwise), chosen so that activations stay
 * O(1) through the network and the output softmax is neither flat nor one-hot:
 *   2-D projections:        mean 0, std 1/sqrt(ne[0])  (ne[0] = input features)
 *   token_embd:             mean 0, std PV_SYNTH_EMBD_STD
 *   norm weights (F32):     mean 1, std PV_SYNTH_NORM_STD
 *   biases (F32):           mean 0, std PV_SYNTH_BIAS_STD
 *   rope_factors_short:     1 + uniform noise in (0, 0.05]
 *   rope_factors_long:      1 + 3 (i / (n-1))^2, i = 0..n-1 (deterministic, increasing) */
#ifndef PV_SYNTH_H
#define PV_SYNTH_H

#include "../core/pv_core.h"

#define PV_SYNTH_EMBD_STD 0.02f
#define PV_SYNTH_NORM_STD 0.02f
#define PV_SYNTH_BIAS_STD 0.02f
/* Smallest synthetic vocabulary: <unk>, <s>, </s>, 256 byte tokens, "▁". */
#define PV_SYNTH_MIN_VOCAB 260

typedef struct pv_synth_params {
    const char *arch;       /* "llama", "qwen2", "qwen3", "phi3" */
    int64_t dim;            /* embedding length */
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t n_ff;           /* feed-forward length */
    int64_t n_vocab;        /* synthetic vocabulary size (ignored with tokenizer_json) */
    int64_t n_ctx;          /* context length */
    int64_t head_dim;       /* 0: dim / n_head */
    const char *type;       /* f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k q4_k_m q5_k_m */
    uint64_t seed;
    const char *tokenizer_json;   /* NULL: synthetic SPM vocabulary */
    const char *tokenizer_config; /* optional with tokenizer_json */
    bool vocab_only;              /* tokenizer keys + general.architecture only */
    int n_threads;                /* <= 0: one per core */
    /* Optional: the row of token boost_token in the output matrix (output.weight, else the
     * tied token_embd) is multiplied by boost_scale, which widens that token's logit spread
     * so a random model samples it now and then. With the end-of-turn token this makes a
     * random model that ends its turns within some tens of tokens — a test model for clients
     * (Claude Code) that need a turn to end. boost_token < 0: none. */
    int64_t boost_token;
    float boost_scale;
} pv_synth_params;

/* Defaults: llama, dim 2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, vocab 32000,
 * context 4096, f16, seed 1, synthetic vocabulary, all cores. */
void pv_synth_params_default(pv_synth_params *p);

/* Validates p and writes the model to `path`. Returns PV_OK, or an error naming the bad
 * parameter (PV_ERR_INVALID / PV_ERR_UNSUPPORTED) or the failing file (PV_ERR_IO). Prints
 * a note (info log) when a tensor's rows do not fit its K-quant blocks and it falls back.
 * Borrows p; owns nothing afterwards. */
pv_status pv_synth_write(const pv_synth_params *p, const char *path, pv_error *err);

/* Names accepted for pv_synth_params.type, for usage texts: "f32|f16|...|q5_k_m". */
const char *pv_synth_type_list(void);

#endif /* PV_SYNTH_H */
