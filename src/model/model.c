/* model.c — loading a model: reads the hyper-parameters through the architecture table's
 * keys, finds every tensor by role, checks its shape and type, and binds it to the
 * backend. Nothing is copied or converted: the backend decides where weights live (the CPU
 * backend uses them in place from the mapping). */
#include "pv_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pv_model_params pv_model_params_default(void) {
    pv_model_params p = {.n_threads = 0, .kernels = NULL};
    return p;
}

static bool meta_u32(const pv_model *m, const char *suffix, uint32_t *out) {
    char key[128];
    return pv_meta_get_u32(m->file, pv_arch_key(m->arch, suffix, key, sizeof key), out);
}

static bool meta_f32(const pv_model *m, const char *suffix, float *out) {
    char key[128];
    return pv_meta_get_f32(m->file, pv_arch_key(m->arch, suffix, key, sizeof key), out);
}

/* Reads the hyper-parameters; the required ones must be present and positive. */
static pv_status load_hparams(pv_model *m, pv_error *err) {
    pv_hparams *hp = &m->hp;
    static const struct {
        const char *suffix;
        size_t off;
    } required[] = {
        {"embedding_length", offsetof(pv_hparams, n_embd)},
        {"block_count", offsetof(pv_hparams, n_layer)},
        {"attention.head_count", offsetof(pv_hparams, n_head)},
        {"feed_forward_length", offsetof(pv_hparams, n_ff)},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(required); i++) {
        uint32_t v;
        if (!meta_u32(m, required[i].suffix, &v) || v == 0 || v > (1u << 24))
            return pv_error_set(err, PV_ERR_FORMAT, "%s: metadata '%s.%s' is missing or invalid",
                                m->file->path, m->arch->name, required[i].suffix);
        *(int *)((char *)hp + required[i].off) = (int)v;
    }
    uint32_t v;
    hp->n_head_kv = meta_u32(m, "attention.head_count_kv", &v) ? (int)v : hp->n_head;
    hp->head_dim = meta_u32(m, "attention.key_length", &v) ? (int)v : hp->n_embd / hp->n_head;
    hp->n_rot = meta_u32(m, "rope.dimension_count", &v) ? (int)v : hp->head_dim;
    hp->n_ctx_train = meta_u32(m, "context_length", &v) ? (int)v : 2048;
    if (!meta_f32(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps)) hp->rms_eps = 1e-5f;
    if (!meta_f32(m, "rope.freq_base", &hp->rope_base)) hp->rope_base = 10000.0f;
    float factor;
    hp->rope_freq_scale = 1.0f;
    char *stype = NULL;
    {
        char key[128];
        stype = pv_meta_get_strdup(m->file, pv_arch_key(m->arch, "rope.scaling.type", key, sizeof key));
    }
    if (stype && strcmp(stype, "linear") == 0 && meta_f32(m, "rope.scaling.factor", &factor) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    free(stype);
    hp->rope_orig_ctx = meta_u32(m, "rope.scaling.original_context_length", &v) ? (int)v : 0;
    hp->rope_attn_factor = 1.0f;
    if (!meta_f32(m, "rope.scaling.attn_factor", &hp->rope_attn_factor)) {
        hp->rope_attn_factor = 1.0f;
        if (m->arch->id == PV_ARCH_PHI3 && hp->rope_orig_ctx > 0 && hp->n_ctx_train > hp->rope_orig_ctx) {
            double s = (double)hp->n_ctx_train / hp->rope_orig_ctx;
            hp->rope_attn_factor = (float)sqrt(1.0 + log(s) / log((double)hp->rope_orig_ctx));
        }
    }
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0)
        return pv_error_set(err, PV_ERR_FORMAT, "%s: head_count %d is not a multiple of head_count_kv %d",
                            m->file->path, hp->n_head, hp->n_head_kv);
    if (hp->head_dim <= 0 || hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return pv_error_set(err, PV_ERR_FORMAT, "%s: invalid head size %d / rope dims %d",
                            m->file->path, hp->head_dim, hp->n_rot);
    return PV_OK;
}

/* Finds the tensor of `role` (layer for per-layer roles), checks that its shape is
 * {ne0, ne1} (ne1 = 0: 1-D of ne0) and binds it into dst. A missing optional tensor
 * leaves dst zeroed and returns OK. */
static pv_status bind_role(pv_model *m, pv_tensor_role role, int layer, int64_t ne0, int64_t ne1,
                           pv_btensor *dst, pv_error *err) {
    char name[96];
    pv_tensor_role_name(role, layer, name, sizeof name);
    memset(dst, 0, sizeof *dst);
    const pv_tensor_desc *t = pv_weights_tensor(m->file, name);
    uint32_t bit = 1u << role;
    if (!t) {
        if (m->arch->required & bit)
            return pv_error_set(err, PV_ERR_FORMAT, "%s: tensor '%s' is missing (required by %s)",
                                m->file->path, name, m->arch->name);
        return PV_OK;
    }
    int want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && (ne1 ? t->ne[1] == ne1 : 1) && t->n_dims <= 2 &&
              (t->n_dims == want_dims || (t->n_dims == 2 && t->ne[1] == 1 && want_dims == 1));
    if (!ok)
        return pv_error_set(err, PV_ERR_FORMAT,
                            "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
                            m->file->path, name, (long long)t->ne[0],
                            (long long)(t->n_dims > 1 ? t->ne[1] : 1), (long long)ne0,
                            (long long)(ne1 ? ne1 : 1));
    if (want_dims == 1 && t->type != PV_TYPE_F32)
        return pv_error_set(err, PV_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; vectors must be F32",
                            m->file->path, name, pv_type_name(t->type));
    pv_status st = m->be->ops->bind_weight(m->be, t, dst, err);
    if (st != PV_OK) {
        pv_error e2;
        pv_error_set(&e2, st, "%s: %s", m->file->path, err ? err->msg : "cannot bind tensor");
        if (err) *err = e2;
        return st;
    }
    m->weight_bytes += t->nbytes;
    return PV_OK;
}

static const float *rope_factor_data(pv_model *m, pv_tensor_role role, pv_error *err, pv_status *st) {
    char name[64];
    pv_tensor_role_name(role, 0, name, sizeof name);
    const pv_tensor_desc *t = pv_weights_tensor(m->file, name);
    *st = PV_OK;
    if (!t) return NULL;
    if (t->type != PV_TYPE_F32 || t->ne[0] != m->hp.n_rot / 2) {
        *st = pv_error_set(err, PV_ERR_FORMAT, "%s: tensor '%s' must be F32 [%d]", m->file->path,
                           name, m->hp.n_rot / 2);
        return NULL;
    }
    return (const float *)t->data;
}

static pv_status bind_all(pv_model *m, pv_error *err) {
    const pv_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim;
    int64_t KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    pv_status st;
    /* vocabulary size comes from the embedding matrix */
    char name[64];
    const pv_tensor_desc *te = pv_weights_tensor(m->file, pv_tensor_role_name(PV_TENSOR_TOKEN_EMBD, 0, name, sizeof name));
    if (!te || te->n_dims != 2)
        return pv_error_set(err, PV_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing or not 2-D",
                            m->file->path);
    m->hp.n_vocab = (int)te->ne[1];
#define BIND(role, layer, a, b, dst)                                         \
    do {                                                                     \
        if ((st = bind_role(m, PV_TENSOR_##role, layer, a, b, dst, err)) != PV_OK) return st; \
    } while (0)
    BIND(TOKEN_EMBD, 0, E, hp->n_vocab, &m->tok_embd);
    BIND(OUTPUT_NORM, 0, E, 0, &m->output_norm);
    BIND(OUTPUT, 0, E, hp->n_vocab, &m->output);
    m->tied_output = m->output.data == NULL;
    if (m->tied_output) m->output = m->tok_embd;
    m->rope_freqs = rope_factor_data(m, PV_TENSOR_ROPE_FREQS, err, &st);
    if (st != PV_OK) return st;
    m->rope_long = rope_factor_data(m, PV_TENSOR_ROPE_FACTORS_LONG, err, &st);
    if (st != PV_OK) return st;
    m->rope_short = rope_factor_data(m, PV_TENSOR_ROPE_FACTORS_SHORT, err, &st);
    if (st != PV_OK) return st;

    m->layers = calloc((size_t)hp->n_layer, sizeof(pv_layer));
    if (!m->layers) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layer; l++) {
        pv_layer *L = &m->layers[l];
        BIND(ATTN_NORM, l, E, 0, &L->attn_norm);
        BIND(FFN_NORM, l, E, 0, &L->ffn_norm);
        if (m->arch->fused_qkv) {
            BIND(ATTN_QKV, l, E, Q + 2 * KV, &L->wqkv);
        } else {
            BIND(ATTN_Q, l, E, Q, &L->wq);
            BIND(ATTN_K, l, E, KV, &L->wk);
            BIND(ATTN_V, l, E, KV, &L->wv);
            BIND(ATTN_Q_BIAS, l, Q, 0, &L->bq);
            BIND(ATTN_K_BIAS, l, KV, 0, &L->bk);
            BIND(ATTN_V_BIAS, l, KV, 0, &L->bv);
        }
        BIND(ATTN_Q_NORM, l, hp->head_dim, 0, &L->q_norm);
        BIND(ATTN_K_NORM, l, hp->head_dim, 0, &L->k_norm);
        BIND(ATTN_OUT, l, Q, E, &L->wo);
        if (m->arch->fused_gate_up) {
            BIND(FFN_UP, l, E, 2 * F, &L->w_up);
        } else {
            BIND(FFN_GATE, l, E, F, &L->w_gate);
            BIND(FFN_UP, l, E, F, &L->w_up);
        }
        BIND(FFN_DOWN, l, F, E, &L->w_down);
    }
#undef BIND
    return PV_OK;
}

pv_status pv_model_load(const char *path, const pv_model_params *p, pv_model **out,
                        pv_error *err) {
    *out = NULL;
    double t0 = pv_time_now();
    pv_model_params defaults = pv_model_params_default();
    if (!p) p = &defaults;
    pv_model *m = calloc(1, sizeof *m);
    if (!m) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    pv_status st = pv_weights_open(path, &m->file, err);
    if (st != PV_OK) {
        free(m);
        return st;
    }
    char *arch = pv_meta_get_strdup(m->file, "general.architecture");
    m->arch = pv_arch_find(arch);
    if (!m->arch) {
        st = pv_error_set(err, PV_ERR_UNSUPPORTED,
                          "%s: architecture '%s' is not supported (supported: %s)", path,
                          arch ? arch : "(general.architecture missing)", pv_arch_supported_list());
        free(arch);
        pv_model_free(m);
        return st;
    }
    free(arch);
    m->name = pv_meta_get_strdup(m->file, "general.name");
    if (!m->name) {
        const char *base = strrchr(path, '/');
        m->name = strdup(base ? base + 1 : path);
    }
    if ((st = load_hparams(m, err)) != PV_OK ||
        (st = pv_backend_cpu_new(p->n_threads, p->kernels, &m->be, err)) != PV_OK ||
        (st = bind_all(m, err)) != PV_OK) {
        pv_model_free(m);
        return st;
    }
    m->load_seconds = pv_time_now() - t0;
    *out = m;
    return PV_OK;
}

void pv_model_free(pv_model *m) {
    if (!m) return;
    free(m->layers);
    if (m->be) m->be->ops->free(m->be);
    pv_weights_free(m->file);
    free(m->name);
    free(m);
}
