/* forward.c — the inference context and the forward pass over a batch of tokens from any
 * number of sequences. One code path serves every architecture in the table: the
 * differences (fused qkv / gate-up, biases, q/k norms, rope layout and factors) are read
 * from the model's bound tensors and pv_arch_info, never from the architecture's name.
 *
 * Per step (n tokens):
 *   x[n][E] = embed(tokens)
 *   per layer:  h = rmsnorm(x) ; q,k,v = h W^T (+b) ; [q/k head norms] ; rope(q,k at pos)
 *               K/V rows -> cache[seq][pos] ; o = attention(q, cache[seq][0..pos])
 *               x += o Wo^T ; h = rmsnorm(x) ; x += (silu(h Wg^T) * h Wu^T) Wd^T
 *   logits[m][V] = rmsnorm(x[flagged rows]) Wout^T
 * All buffers are allocated in pv_ctx_new for n_batch tokens; decode allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pv_model.h"

struct pv_ctx {
    pv_model *m;
    pv_ctx_params p;
    pv_kv_cache kv;
    const float *rope_ff; /* frequency factors chosen for this context (or NULL) */
    /* backend scratch, [n_batch][width] */
    float *x, *h, *q, *k, *v, *o, *t, *gu, *up, *qkv;
    float *hout;   /* [n_outputs_max][E] */
    float *logits_dev; /* [n_outputs_max][V] backend */
    /* host scratch */
    float *logits; /* [n_outputs_max][V] */
    float *cs, *sn; /* [n_batch][n_rot/2] */
    const void **k_base, **v_base;
    int32_t *n_kv;
    void **kdst, **vdst;
    int32_t *out_rows;
    int32_t *seq_tmp;
    int32_t *bpos, *bseq; /* [n_batch] batch arrays for pv_ctx_eval_seq */
    int8_t *blog;
    int n_outputs;
};

pv_ctx_params pv_ctx_params_default(void) {
    pv_ctx_params p = {.n_ctx = 0, .n_seq_max = 1, .n_batch = 512, .n_outputs_max = 0,
                       .kv_type = PV_TYPE_F16};
    return p;
}

static void *be_alloc_f(pv_backend *be, size_t rows, size_t width, bool *ok) {
    void *p = be->ops->alloc(be, rows * width * sizeof(float));
    if (!p) *ok = false;
    return p;
}

pv_status pv_ctx_new(pv_model *m, const pv_ctx_params *pp, pv_ctx **out, pv_error *err) {
    *out = NULL;
    pv_ctx_params p = pp ? *pp : pv_ctx_params_default();
    const pv_hparams *hp = &m->hp;
    if (p.n_ctx <= 0) p.n_ctx = PV_MIN(hp->n_ctx_train, 4096);
    if (p.n_seq_max <= 0) p.n_seq_max = 1;
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.n_outputs_max <= 0) p.n_outputs_max = p.n_seq_max;
    if (p.n_outputs_max > p.n_batch) p.n_outputs_max = p.n_batch;
    pv_ctx *c = calloc(1, sizeof *c);
    if (!c) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = p;
    pv_backend *be = m->be;
    int E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim;
    int F = hp->n_ff, V = hp->n_vocab, B = p.n_batch, M = p.n_outputs_max;
    pv_status st = pv_kv_init(&c->kv, be, p.kv_type, hp->n_layer, p.n_seq_max, p.n_ctx, KV, err);
    if (st != PV_OK) {
        free(c);
        return st;
    }
    /* LongRoPE: long factors when the context exceeds the original one (llama.cpp's rule) */
    if (m->rope_long && m->rope_short)
        c->rope_ff = (hp->rope_orig_ctx > 0 && p.n_ctx > hp->rope_orig_ctx) ? m->rope_long : m->rope_short;
    else
        c->rope_ff = m->rope_freqs;

    bool ok = true;
    c->x = be_alloc_f(be, B, E, &ok);
    c->h = be_alloc_f(be, B, E, &ok);
    c->q = be_alloc_f(be, B, Q, &ok);
    c->k = be_alloc_f(be, B, KV, &ok);
    c->v = be_alloc_f(be, B, KV, &ok);
    c->o = be_alloc_f(be, B, Q, &ok);
    c->t = be_alloc_f(be, B, E, &ok);
    c->gu = be_alloc_f(be, B, 2 * (size_t)F, &ok);
    c->up = be_alloc_f(be, B, F, &ok);
    if (m->arch->fused_qkv) c->qkv = be_alloc_f(be, B, (size_t)Q + 2 * (size_t)KV, &ok);
    c->hout = be_alloc_f(be, M, E, &ok);
    c->logits_dev = be_alloc_f(be, M, V, &ok);
    c->logits = malloc((size_t)M * V * sizeof(float));
    c->cs = malloc((size_t)B * (hp->n_rot / 2) * sizeof(float));
    c->sn = malloc((size_t)B * (hp->n_rot / 2) * sizeof(float));
    c->k_base = malloc((size_t)B * sizeof(void *));
    c->v_base = malloc((size_t)B * sizeof(void *));
    c->kdst = malloc((size_t)B * sizeof(void *));
    c->vdst = malloc((size_t)B * sizeof(void *));
    c->n_kv = malloc((size_t)B * sizeof(int32_t));
    c->out_rows = malloc((size_t)B * sizeof(int32_t));
    c->seq_tmp = malloc((size_t)p.n_seq_max * sizeof(int32_t));
    c->bpos = malloc((size_t)B * sizeof(int32_t));
    c->bseq = malloc((size_t)B * sizeof(int32_t));
    c->blog = malloc((size_t)B);
    if (!c->bpos || !c->bseq || !c->blog) ok = false;
    if (!ok || !c->logits || !c->cs || !c->sn || !c->k_base || !c->v_base || !c->kdst ||
        !c->vdst || !c->n_kv || !c->out_rows || !c->seq_tmp) {
        pv_ctx_free(c);
        return pv_error_set(err, PV_ERR_NOMEM, "context: out of memory (n_batch %d, vocab %d)", B, V);
    }
    int64_t max_k = PV_MAX(PV_MAX(E, F), Q);
    st = be->ops->reserve(be, B, max_k, p.n_ctx);
    if (st != PV_OK) {
        pv_ctx_free(c);
        return pv_error_set(err, st, "context: cannot reserve backend scratch");
    }
    *out = c;
    return PV_OK;
}

void pv_ctx_free(pv_ctx *c) {
    if (!c) return;
    pv_backend *be = c->m->be;
    float *bufs[] = {c->x, c->h, c->q, c->k, c->v, c->o, c->t, c->gu, c->up, c->qkv, c->hout, c->logits_dev};
    for (size_t i = 0; i < PV_ARRAY_LEN(bufs); i++)
        if (bufs[i]) be->ops->release(be, bufs[i]);
    pv_kv_free(&c->kv);
    free(c->logits);
    free(c->cs);
    free(c->sn);
    free(c->k_base);
    free(c->v_base);
    free(c->kdst);
    free(c->vdst);
    free(c->n_kv);
    free(c->out_rows);
    free(c->seq_tmp);
    free(c->bpos);
    free(c->bseq);
    free(c->blog);
    free(c);
}

/* Checks the batch against the cache: every position continues its sequence. Fills
 * seq_tmp with the new lengths and out_rows with the flagged token indices. */
static pv_status validate_batch(pv_ctx *c, const pv_batch *b, pv_error *err) {
    const pv_hparams *hp = &c->m->hp;
    if (b->n <= 0) return pv_error_set(err, PV_ERR_INVALID, "decode: empty batch");
    if (b->n > c->p.n_batch)
        return pv_error_set(err, PV_ERR_RANGE, "decode: batch of %d tokens exceeds n_batch %d", b->n, c->p.n_batch);
    for (int s = 0; s < c->p.n_seq_max; s++) c->seq_tmp[s] = -1;
    int n_out = 0;
    for (int i = 0; i < b->n; i++) {
        int32_t tok = b->token[i], pos = b->pos[i], seq = b->seq[i];
        if (tok < 0 || tok >= hp->n_vocab)
            return pv_error_set(err, PV_ERR_RANGE, "decode: token %d out of range (vocabulary %d)", tok, hp->n_vocab);
        if (seq < 0 || seq >= c->p.n_seq_max)
            return pv_error_set(err, PV_ERR_RANGE, "decode: sequence %d out of range (%d slots)", seq, c->p.n_seq_max);
        if (pos < 0 || pos >= c->p.n_ctx)
            return pv_error_set(err, PV_ERR_RANGE, "decode: position %d out of range (context %d)", pos, c->p.n_ctx);
        int32_t cur = c->seq_tmp[seq] >= 0 ? c->seq_tmp[seq] : c->kv.seq_len[seq];
        if (c->seq_tmp[seq] < 0 && pos < cur) cur = pos; /* rewrite from pos: truncation */
        if (pos != cur)
            return pv_error_set(err, PV_ERR_INVALID,
                                "decode: sequence %d continues at position %d, got %d", seq, cur, pos);
        c->seq_tmp[seq] = pos + 1;
        if (b->logits && b->logits[i]) {
            if (n_out >= c->p.n_outputs_max)
                return pv_error_set(err, PV_ERR_RANGE, "decode: more than %d tokens want logits",
                                    c->p.n_outputs_max);
            c->out_rows[n_out++] = i;
        }
    }
    c->n_outputs = n_out;
    return PV_OK;
}

pv_status pv_ctx_decode(pv_ctx *c, const pv_batch *b, pv_error *err) {
    c->n_outputs = 0;
    pv_status st = validate_batch(c, b, err);
    if (st != PV_OK) return st;
    const pv_model *m = c->m;
    const pv_hparams *hp = &m->hp;
    pv_backend *be = m->be;
    const pv_backend_ops *op = be->ops;
    const int n = b->n, E = hp->n_embd, H = hp->n_head, HK = hp->n_head_kv, D = hp->head_dim;
    const int Q = H * D, KV = HK * D, F = hp->n_ff, half = hp->n_rot / 2;

    /* sequences being rewritten from an earlier position are truncated first */
    for (int s = 0; s < c->p.n_seq_max; s++)
        if (c->seq_tmp[s] >= 0) {
            int32_t first = -1;
            for (int i = 0; i < n; i++)
                if (b->seq[i] == s) {
                    first = b->pos[i];
                    break;
                }
            if (first < c->kv.seq_len[s]) c->kv.seq_len[s] = first;
        }

    for (int i = 0; i < n; i++)
        pv_rope_cos_sin(c->cs + (size_t)i * half, c->sn + (size_t)i * half, b->pos[i], hp->n_rot,
                        hp->rope_base, hp->rope_freq_scale, c->rope_ff, hp->rope_attn_factor);

    pv_attn_args aa = {.n_tok = n, .n_head = H, .n_head_kv = HK, .head_dim = D,
                       .scale = 1.0f / sqrtf((float)D), .kv_type = c->kv.type,
                       .kv_stride = c->kv.row_bytes, .k_base = c->k_base, .v_base = c->v_base,
                       .n_kv = c->n_kv};
    for (int i = 0; i < n; i++) c->n_kv[i] = b->pos[i] + 1;

    op->get_rows(be, &m->tok_embd, b->token, n, c->x);
    for (int l = 0; l < hp->n_layer; l++) {
        const pv_layer *L = &m->layers[l];
        op->rmsnorm(be, c->h, c->x, &L->attn_norm, n, E, hp->rms_eps);
        if (L->wqkv.data) {
            const int W = Q + 2 * KV;
            op->matmul(be, &L->wqkv, NULL, c->h, n, c->qkv);
            op->copy_rows(be, c->q, Q, c->qkv, W, n, Q);
            op->copy_rows(be, c->k, KV, c->qkv + Q, W, n, KV);
            op->copy_rows(be, c->v, KV, c->qkv + Q + KV, W, n, KV);
        } else {
            op->matmul(be, &L->wq, L->bq.data ? &L->bq : NULL, c->h, n, c->q);
            op->matmul(be, &L->wk, L->bk.data ? &L->bk : NULL, c->h, n, c->k);
            op->matmul(be, &L->wv, L->bv.data ? &L->bv : NULL, c->h, n, c->v);
        }
        if (L->q_norm.data) op->rmsnorm_heads(be, c->q, &L->q_norm, n, H, D, hp->rms_eps);
        if (L->k_norm.data) op->rmsnorm_heads(be, c->k, &L->k_norm, n, HK, D, hp->rms_eps);
        op->rope(be, c->q, n, H, D, hp->n_rot, m->arch->rope, c->cs, c->sn);
        op->rope(be, c->k, n, HK, D, hp->n_rot, m->arch->rope, c->cs, c->sn);
        for (int i = 0; i < n; i++) {
            c->kdst[i] = pv_kv_k_row(&c->kv, l, b->seq[i], b->pos[i]);
            c->vdst[i] = pv_kv_v_row(&c->kv, l, b->seq[i], b->pos[i]);
            c->k_base[i] = pv_kv_k_row(&c->kv, l, b->seq[i], 0);
            c->v_base[i] = pv_kv_v_row(&c->kv, l, b->seq[i], 0);
        }
        op->store_rows(be, c->kdst, c->kv.type, c->k, KV, n, KV);
        op->store_rows(be, c->vdst, c->kv.type, c->v, KV, n, KV);
        op->attention(be, c->o, c->q, Q, &aa);
        op->matmul(be, &L->wo, NULL, c->o, n, c->t);
        op->add(be, c->x, c->x, c->t, n, E);

        op->rmsnorm(be, c->h, c->x, &L->ffn_norm, n, E, hp->rms_eps);
        if (m->arch->fused_gate_up) {
            op->matmul(be, &L->w_up, NULL, c->h, n, c->gu);
            op->silu_mul(be, c->up, F, c->gu, c->gu + F, 2 * F, n, F);
        } else {
            op->matmul(be, &L->w_gate, NULL, c->h, n, c->gu);
            op->matmul(be, &L->w_up, NULL, c->h, n, c->up);
            op->silu_mul(be, c->up, F, c->gu, c->up, F, n, F);
        }
        op->matmul(be, &L->w_down, NULL, c->up, n, c->t);
        op->add(be, c->x, c->x, c->t, n, E);
    }
    for (int s = 0; s < c->p.n_seq_max; s++)
        if (c->seq_tmp[s] >= 0) c->kv.seq_len[s] = c->seq_tmp[s];

    if (c->n_outputs > 0) {
        for (int j = 0; j < c->n_outputs; j++)
            op->copy_rows(be, c->hout + (size_t)j * E, E, c->x + (size_t)c->out_rows[j] * E, E, 1, E);
        op->rmsnorm(be, c->hout, c->hout, &m->output_norm, c->n_outputs, E, hp->rms_eps);
        op->matmul(be, &m->output, NULL, c->hout, c->n_outputs, c->logits_dev);
        op->read(be, c->logits, c->logits_dev, (size_t)c->n_outputs * hp->n_vocab * sizeof(float));
    }
    return PV_OK;
}

const float *pv_ctx_logits(const pv_ctx *c, int i) {
    if (i < 0 || i >= c->n_outputs) return NULL;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}

int pv_ctx_n_outputs(const pv_ctx *c) { return c->n_outputs; }
pv_kv_cache *pv_ctx_kv(pv_ctx *c) { return &c->kv; }
const pv_ctx_params *pv_ctx_get_params(const pv_ctx *c) { return &c->p; }
const pv_model *pv_ctx_model(const pv_ctx *c) { return c->m; }

pv_status pv_ctx_eval_seq(pv_ctx *c, int seq, const int32_t *tokens, int n, pv_error *err) {
    if (n <= 0) return pv_error_set(err, PV_ERR_INVALID, "eval: no tokens");
    int32_t start = pv_kv_seq_len(&c->kv, seq);
    if ((int64_t)start + n > c->p.n_ctx)
        return pv_error_set(err, PV_ERR_RANGE, "eval: %d tokens after %d exceed the context of %d",
                            n, start, c->p.n_ctx);
    int B = c->p.n_batch;
    for (int off = 0; off < n;) {
        int len = PV_MIN(B, n - off);
        for (int i = 0; i < len; i++) {
            c->bpos[i] = start + off + i;
            c->bseq[i] = seq;
            c->blog[i] = (off + i == n - 1);
        }
        pv_batch b = {len, tokens + off, c->bpos, c->bseq, c->blog};
        pv_status st = pv_ctx_decode(c, &b, err);
        if (st != PV_OK) return st;
        off += len;
    }
    return PV_OK;
}
