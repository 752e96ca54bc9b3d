/* pv_model.h — a loaded model (immutable weights bound to a backend, hyper-parameters) and
 * an inference context (KV cache, per-step scratch, logits) that evaluates batches of
 * tokens. Each batch token carries its sequence id, its position and whether its logits are
 * wanted, so that many requests share one forward pass (continuous batching).
 *
 * Lifetimes, split as the design asks: pv_model = weights (mmapped, read-only, shared by
 * every context and sequence); pv_ctx = per-sequence state (KV cache slots) + per-step
 * scratch allocated once at creation — pv_ctx_decode itself never allocates. */
#ifndef PV_MODEL_H
#define PV_MODEL_H

#include "../backend/pv_backend.h"
#include "../kv/pv_kv.h"
#include "../weights/pv_weights.h"
#include "pv_arch.h"

typedef struct pv_hparams {
    int n_vocab;
    int n_embd;      /* model width */
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;    /* key/value length per head */
    int n_ff;        /* feed-forward width */
    int n_rot;       /* rotated dims per head */
    int n_ctx_train; /* <arch>.context_length */
    float rms_eps;
    float rope_base;
    float rope_freq_scale;  /* 1 / linear scaling factor */
    float rope_attn_factor; /* LongRoPE mscale (1 otherwise) */
    int rope_orig_ctx;      /* LongRoPE original context (0 if none) */
} pv_hparams;

/* One transformer block's weights, views bound to the backend. Shapes in GGUF order
 * {in, out}: wq {n_embd, n_head*head_dim}, wk/wv {n_embd, n_head_kv*head_dim},
 * wqkv {n_embd, (n_head + 2*n_head_kv)*head_dim}, wo {n_head*head_dim, n_embd},
 * w_gate/w_up {n_embd, n_ff} (fused: w_up {n_embd, 2*n_ff}), w_down {n_ff, n_embd}. */
typedef struct pv_layer {
    pv_btensor attn_norm, ffn_norm;
    pv_btensor wq, wk, wv, wqkv, wo;
    pv_btensor bq, bk, bv; /* type F32; data NULL when absent */
    pv_btensor q_norm, k_norm;
    pv_btensor w_gate, w_up, w_down;
} pv_layer;

typedef struct pv_model_params {
    int n_threads;       /* <= 0: one per core */
    const char *kernels; /* NULL: best for this CPU */
} pv_model_params;

typedef struct pv_model {
    pv_weights *file; /* owned */
    const pv_arch_info *arch;
    pv_hparams hp;
    pv_backend *be; /* owned */
    char *name;     /* general.name or file name */
    pv_btensor tok_embd, output_norm, output;
    bool tied_output;
    const float *rope_freqs;      /* llama3 frequency factors [n_rot/2] or NULL */
    const float *rope_long, *rope_short; /* LongRoPE factors [n_rot/2] or NULL */
    pv_layer *layers;
    double load_seconds;
    uint64_t weight_bytes;
} pv_model;

pv_model_params pv_model_params_default(void);
/* Opens `path`, checks the architecture and every tensor (presence, shape, supported
 * type) and binds them to a new CPU backend. The error names the file and the problem:
 * unknown architecture (listing the supported ones), missing tensor, wrong shape,
 * unsupported type. The caller owns *out. */
pv_status pv_model_load(const char *path, const pv_model_params *p, pv_model **out,
                        pv_error *err);
void pv_model_free(pv_model *m);

typedef struct pv_ctx_params {
    int n_ctx;         /* positions per sequence (<= 0: min(n_ctx_train, 4096)) */
    int n_seq_max;     /* sequence slots */
    int n_batch;       /* most tokens per pv_ctx_decode call */
    int n_outputs_max; /* most tokens with logits per call (<= 0: n_seq_max) */
    pv_type kv_type;   /* F16 (default) or F32 */
} pv_ctx_params;

pv_ctx_params pv_ctx_params_default(void);

typedef struct pv_ctx pv_ctx;

/* A batch: n tokens with parallel arrays (borrowed for the call). */
typedef struct pv_batch {
    int n;
    const int32_t *token;
    const int32_t *pos;
    const int32_t *seq;
    const int8_t *logits; /* nonzero: compute logits for this token */
} pv_batch;

pv_status pv_ctx_new(pv_model *m, const pv_ctx_params *p, pv_ctx **out, pv_error *err);
void pv_ctx_free(pv_ctx *c);

/* Evaluates the batch: appends each token's K/V to its sequence at its position and
 * computes logits for the flagged tokens. Positions of a sequence must continue it
 * (pos <= current length, no holes); a position before the current end overwrites from
 * there (the cache is truncated to it first). Errors: token/sequence/position out of
 * range, batch too large, too many outputs. */
pv_status pv_ctx_decode(pv_ctx *c, const pv_batch *b, pv_error *err);
/* Logits row of the i-th flagged token of the last batch (n_vocab floats), or NULL. */
const float *pv_ctx_logits(const pv_ctx *c, int i);
int pv_ctx_n_outputs(const pv_ctx *c);
pv_kv_cache *pv_ctx_kv(pv_ctx *c);
const pv_ctx_params *pv_ctx_get_params(const pv_ctx *c);
const pv_model *pv_ctx_model(const pv_ctx *c);

/* Convenience for single-sequence use (CLI, tests): evaluates `n` tokens of sequence `seq`
 * starting at its current length, in chunks of n_batch, with logits for the last one. */
pv_status pv_ctx_eval_seq(pv_ctx *c, int seq, const int32_t *tokens, int n, pv_error *err);

#endif /* PV_MODEL_H */
