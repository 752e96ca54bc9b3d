/* test_synth.c — the synthetic-model generator (src/model/synth.c), read back through
 * pv_weights_open. The expectations are written out here independently of the generator:
 * the tensor names and GGUF shapes each architecture must have (as llama.cpp names them),
 * the hyper-parameter keys, each tensor's type under every --type (including llama.cpp's
 * Q4_K_M/Q5_K_M rules and the fallback for rows that do not fit 256-blocks), and the
 * statistics of the dequantized weights (std 1/sqrt(fan_in) for projections, 0.02 for the
 * embedding, 1 +- 0.02 for norms). Also: byte-identical output for the same seed and any
 * thread count, different bytes for another seed, vocabulary-only files, the synthetic
 * vocabulary tokenizing text, tokenizer.json import, and parameter errors. */
#include "pv_test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/pv_synth.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][160];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

static pv_synth_params small(const char *arch, const char *type) {
    pv_synth_params p;
    pv_synth_params_default(&p);
    p.arch = arch;
    p.type = type;
    p.dim = 64;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.n_ff = 128;
    p.n_vocab = 300;
    p.n_ctx = 256;
    p.seed = 1;
    p.n_threads = 2;
    return p;
}

static pv_weights *synth_open(const pv_synth_params *p, const char *file) {
    pv_error err = {0};
    pv_status st = pv_synth_write(p, tmp_path(file), &err);
    if (st != PV_OK) print_error("synth: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    pv_weights *w = NULL;
    st = pv_weights_open(tmp_path(file), &w, &err);
    if (st != PV_OK) print_error("open: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    return w;
}

/* ---- expected tensors, spelled here ---- */
typedef struct {
    char name[64];
    int n_dims;
    int64_t ne0, ne1;
    int layer; /* -1 for global tensors */
    enum { K_PROJ, K_EMBD, K_NORM, K_BIAS, K_ROPE } kind;
} exp_tensor;

static int expected_tensors(const char *arch, const pv_synth_params *p, int64_t n_vocab,
                            exp_tensor *out) {
    int64_t hd = p->head_dim ? p->head_dim : p->dim / p->n_head;
    int64_t q = p->n_head * hd, kv = p->n_head_kv * hd;
    bool phi3 = !strcmp(arch, "phi3"), qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
    int n = 0;
#define ADD(nm, l, nd, a, b, k)                                                  \
    do {                                                                         \
        snprintf(out[n].name, sizeof out[n].name, nm, (l) < 0 ? 0 : (int)(l));                 \
        out[n].layer = (int)(l);                                                 \
        out[n].n_dims = nd;                                                      \
        out[n].ne0 = a;                                                          \
        out[n].ne1 = b;                                                          \
        out[n].kind = k;                                                         \
        n++;                                                                     \
    } while (0)
    ADD("token_embd.weight%.0d", -1, 2, p->dim, n_vocab, K_EMBD);
    ADD("output_norm.weight%.0d", -1, 1, p->dim, 1, K_NORM);
    ADD("output.weight%.0d", -1, 2, p->dim, n_vocab, K_PROJ);
    if (phi3) {
        ADD("rope_factors_long.weight%.0d", -1, 1, hd / 2, 1, K_ROPE);
        ADD("rope_factors_short.weight%.0d", -1, 1, hd / 2, 1, K_ROPE);
    }
    for (int l = 0; l < p->n_layer; l++) {
        ADD("blk.%d.attn_norm.weight", l, 1, p->dim, 1, K_NORM);
        if (phi3) {
            ADD("blk.%d.attn_qkv.weight", l, 2, p->dim, q + 2 * kv, K_PROJ);
        } else {
            ADD("blk.%d.attn_q.weight", l, 2, p->dim, q, K_PROJ);
            ADD("blk.%d.attn_k.weight", l, 2, p->dim, kv, K_PROJ);
            ADD("blk.%d.attn_v.weight", l, 2, p->dim, kv, K_PROJ);
        }
        if (qwen2) {
            ADD("blk.%d.attn_q.bias", l, 1, q, 1, K_BIAS);
            ADD("blk.%d.attn_k.bias", l, 1, kv, 1, K_BIAS);
            ADD("blk.%d.attn_v.bias", l, 1, kv, 1, K_BIAS);
        }
        if (qwen3) {
            ADD("blk.%d.attn_q_norm.weight", l, 1, hd, 1, K_NORM);
            ADD("blk.%d.attn_k_norm.weight", l, 1, hd, 1, K_NORM);
        }
        ADD("blk.%d.attn_output.weight", l, 2, q, p->dim, K_PROJ);
        ADD("blk.%d.ffn_norm.weight", l, 1, p->dim, 1, K_NORM);
        if (!phi3) ADD("blk.%d.ffn_gate.weight", l, 2, p->dim, p->n_ff, K_PROJ);
        ADD("blk.%d.ffn_up.weight", l, 2, p->dim, phi3 ? 2 * p->n_ff : p->n_ff, K_PROJ);
        ADD("blk.%d.ffn_down.weight", l, 2, p->n_ff, p->dim, K_PROJ);
    }
#undef ADD
    return n;
}

/* ---- expected types ---- */
static const struct {
    const char *name;
    pv_type base;
    bool k_m;
    uint32_t file_type;
} g_types[] = {
    {"f32", PV_TYPE_F32, false, 0},    {"f16", PV_TYPE_F16, false, 1},
    {"bf16", PV_TYPE_BF16, false, 32}, {"q4_0", PV_TYPE_Q4_0, false, 2},
    {"q4_1", PV_TYPE_Q4_1, false, 3},  {"q5_0", PV_TYPE_Q5_0, false, 8},
    {"q5_1", PV_TYPE_Q5_1, false, 9},  {"q8_0", PV_TYPE_Q8_0, false, 7},
    {"q4_k", PV_TYPE_Q4_K, false, 14}, {"q5_k", PV_TYPE_Q5_K, false, 16},
    {"q6_k", PV_TYPE_Q6_K, false, 18}, {"q4_k_m", PV_TYPE_Q4_K, true, 15},
    {"q5_k_m", PV_TYPE_Q5_K, true, 17},
};

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static pv_type expect_type(size_t ti, const exp_tensor *e, int n_layer) {
    if (e->n_dims == 1) return PV_TYPE_F32;
    pv_type t = g_types[ti].base;
    if (g_types[ti].k_m) {
        if ((strstr(e->name, ".attn_v.weight") || strstr(e->name, ".ffn_down.weight")) &&
            more_bits(e->layer, n_layer))
            t = PV_TYPE_Q6_K;
        if (!strcmp(e->name, "output.weight")) t = PV_TYPE_Q6_K;
        if (strstr(e->name, ".attn_qkv.weight")) t = t == PV_TYPE_Q4_K ? PV_TYPE_Q5_K : PV_TYPE_Q6_K;
    }
    bool k = t == PV_TYPE_Q4_K || t == PV_TYPE_Q5_K || t == PV_TYPE_Q6_K;
    bool b32 = t == PV_TYPE_Q4_0 || t == PV_TYPE_Q4_1 || t == PV_TYPE_Q5_0 || t == PV_TYPE_Q5_1 ||
               t == PV_TYPE_Q8_0;
    if (k && e->ne0 % 256 != 0) return e->ne0 % 32 == 0 ? PV_TYPE_Q8_0 : PV_TYPE_F16;
    if (b32 && e->ne0 % 32 != 0) return PV_TYPE_F16;
    return t;
}

/* Dequantizes a tensor to floats (malloc'ed, caller frees). */
static float *dequant(const pv_tensor_desc *d) {
    const pv_type_traits *tr = pv_type_traits_get(d->type);
    assert_non_null(tr);
    assert_non_null(tr->to_float);
    int64_t n0 = d->ne[0], rows = d->ne[1] * d->ne[2] * d->ne[3];
    size_t rb = pv_type_row_size(d->type, n0);
    assert_int_equal(rb * (size_t)rows, d->nbytes);
    float *f = malloc(sizeof(float) * (size_t)(n0 * rows));
    assert_non_null(f);
    for (int64_t r = 0; r < rows; r++) tr->to_float((const uint8_t *)d->data + (size_t)r * rb, f + r * n0, n0);
    return f;
}

static void stats(const float *f, size_t n, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += f[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++) s2 += (f[i] - *mean) * (f[i] - *mean);
    *sd = sqrt(s2 / (double)(n > 1 ? n - 1 : 1));
}

/* Checks one tensor's values against its intended distribution. */
static void check_values(const pv_tensor_desc *d, const exp_tensor *e) {
    float *f = dequant(d);
    size_t n = (size_t)(d->ne[0] * d->ne[1]);
    double mean, sd;
    stats(f, n, &mean, &sd);
    for (size_t i = 0; i < n; i++) assert_true(isfinite(f[i]));
    switch (e->kind) {
    case K_PROJ:
    case K_EMBD: {
        double want = e->kind == K_EMBD ? 0.02 : 1.0 / sqrt((double)e->ne0);
        if (fabs(sd / want - 1.0) > 0.07 || fabs(mean) > 0.1 * want)
            print_error("%s: mean %g sd %g want sd %g\n", e->name, mean, sd, want);
        assert_true(fabs(sd / want - 1.0) < 0.07);
        assert_true(fabs(mean) < 0.1 * want);
        break;
    }
    case K_NORM:
        assert_true(fabs(mean - 1.0) < 0.02);
        assert_true(sd > 0.005 && sd < 0.04);
        break;
    case K_BIAS:
        assert_true(fabs(mean) < 0.02);
        assert_true(sd > 0.005 && sd < 0.04);
        break;
    case K_ROPE:
        for (size_t i = 0; i < n; i++) assert_true(f[i] >= 1.0f && f[i] <= 4.0f);
        break;
    }
    free(f);
}

static void check_model(pv_weights *w, const char *arch, const pv_synth_params *p, size_t ti,
                        bool check_stats) {
    static exp_tensor ex[512];
    int n = expected_tensors(arch, p, p->n_vocab, ex);
    assert_int_equal(w->n_tensors, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        const pv_tensor_desc *d = pv_weights_tensor(w, ex[i].name);
        if (!d) print_error("missing tensor %s\n", ex[i].name);
        assert_non_null(d);
        assert_int_equal(d->n_dims, ex[i].n_dims);
        assert_int_equal(d->ne[0], ex[i].ne0);
        assert_int_equal(d->ne[1], ex[i].ne1);
        pv_type want = expect_type(ti, &ex[i], (int)p->n_layer);
        if ((pv_type)d->type != want)
            print_error("%s (%s): type %s, want %s\n", ex[i].name, g_types[ti].name,
                        pv_type_name(d->type), pv_type_name(want));
        assert_int_equal(d->type, want);
        if (check_stats) check_values(d, &ex[i]);
    }
}

static uint32_t meta_u32(const pv_weights *w, const char *arch, const char *suffix) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = 0;
    if (!pv_meta_get_u32(w, key, &v)) print_error("missing key %s\n", key);
    assert_true(pv_meta_get_u32(w, key, &v));
    return v;
}

static float meta_f32(const pv_weights *w, const char *arch, const char *suffix) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    float v = 0;
    assert_true(pv_meta_get_f32(w, key, &v));
    return v;
}

static void test_archs(void **state) {
    (void)state;
    static const struct {
        const char *arch;
        float eps, base;
    } archs[] = {{"llama", 1e-5f, 10000.0f}, {"qwen2", 1e-6f, 1e6f}, {"qwen3", 1e-6f, 1e6f},
                 {"phi3", 1e-5f, 10000.0f}};
    for (size_t a = 0; a < PV_ARRAY_LEN(archs); a++) {
        const char *arch = archs[a].arch;
        pv_synth_params p = small(arch, "f32");
        pv_weights *w = synth_open(&p, "arch.gguf");
        char *s = pv_meta_get_strdup(w, "general.architecture");
        assert_non_null(s);
        assert_string_equal(s, arch);
        free(s);
        s = pv_meta_get_strdup(w, "general.name");
        assert_non_null(s);
        free(s);
        uint32_t ft = 99;
        assert_true(pv_meta_get_u32(w, "general.file_type", &ft));
        assert_int_equal(ft, 0);
        assert_int_equal(meta_u32(w, arch, "context_length"), 256);
        assert_int_equal(meta_u32(w, arch, "embedding_length"), 64);
        assert_int_equal(meta_u32(w, arch, "feed_forward_length"), 128);
        assert_int_equal(meta_u32(w, arch, "block_count"), 2);
        assert_int_equal(meta_u32(w, arch, "attention.head_count"), 4);
        assert_int_equal(meta_u32(w, arch, "attention.head_count_kv"), 2);
        assert_int_equal(meta_u32(w, arch, "rope.dimension_count"), 16);
        assert_float_equal(meta_f32(w, arch, "attention.layer_norm_rms_epsilon"), archs[a].eps, 1e-12);
        assert_float_equal(meta_f32(w, arch, "rope.freq_base"), archs[a].base, 1e-3);
        if (!strcmp(arch, "qwen3")) {
            assert_int_equal(meta_u32(w, arch, "attention.key_length"), 16);
            assert_int_equal(meta_u32(w, arch, "attention.value_length"), 16);
        }
        if (!strcmp(arch, "phi3"))
            assert_int_equal(meta_u32(w, arch, "rope.scaling.original_context_length"), 256);
        const pv_value *toks = pv_meta_get_arr(w, "tokenizer.ggml.tokens");
        assert_non_null(toks);
        assert_int_equal(toks->arr.n, 300);
        check_model(w, arch, &p, 0, true);
        pv_weights_free(w);
    }
    /* a head dimension that differs from dim / heads: key/value lengths are written */
    pv_synth_params p = small("qwen3", "f32");
    p.head_dim = 32;
    pv_weights *w = synth_open(&p, "hd.gguf");
    assert_int_equal(meta_u32(w, "qwen3", "attention.key_length"), 32);
    assert_int_equal(meta_u32(w, "qwen3", "rope.dimension_count"), 32);
    check_model(w, "qwen3", &p, 0, false);
    const pv_tensor_desc *q = pv_weights_tensor(w, "blk.1.attn_q.weight");
    assert_non_null(q);
    assert_int_equal(q->ne[1], 128);
    pv_weights_free(w);
}

/* Every architecture x every type: tensor types (mix + fallback) and dequantized
 * statistics. dim 256 so that K-quants apply to most tensors; ffn 320 is not a multiple of
 * 256 (ffn_down falls back); llama gets 8 layers so that use_more_bits picks a mix of
 * layers (0, 3, 6, 7), the others 2 (layer 1). */
static void test_types(void **state) {
    (void)state;
    static const char *const archs[] = {"llama", "qwen2", "qwen3", "phi3"};
    for (size_t a = 0; a < PV_ARRAY_LEN(archs); a++) {
        for (size_t ti = 0; ti < PV_ARRAY_LEN(g_types); ti++) {
            pv_synth_params p = small(archs[a], g_types[ti].name);
            p.dim = 256;
            p.n_ff = 320;
            p.n_layer = a == 0 ? 8 : 2;
            p.n_head = 4;
            p.n_head_kv = 1;
            pv_weights *w = synth_open(&p, "types.gguf");
            uint32_t ft = 999;
            assert_true(pv_meta_get_u32(w, "general.file_type", &ft));
            assert_int_equal(ft, g_types[ti].file_type);
            check_model(w, archs[a], &p, ti, true);
            pv_weights_free(w);
        }
    }
    /* the K_M mixes with every row a multiple of 256 (no fallback) */
    for (size_t ti = 0; ti < PV_ARRAY_LEN(g_types); ti++) {
        if (!g_types[ti].k_m) continue;
        for (size_t a = 0; a < PV_ARRAY_LEN(archs); a += 3) {
            pv_synth_params p = small(archs[a], g_types[ti].name);
            p.dim = 256;
            p.n_ff = 512;
            p.n_layer = 8;
            pv_weights *w = synth_open(&p, "kmix.gguf");
            check_model(w, archs[a], &p, ti, false);
            pv_weights_free(w);
        }
    }
}

/* A larger f32 projection: its values are normal (68.3% within one std). */
static void test_distribution(void **state) {
    (void)state;
    pv_synth_params p = small("llama", "f32");
    p.dim = 256;
    p.n_ff = 1024;
    p.n_layer = 1;
    pv_weights *w = synth_open(&p, "dist.gguf");
    const pv_tensor_desc *d = pv_weights_tensor(w, "blk.0.ffn_gate.weight");
    assert_non_null(d);
    float *f = dequant(d);
    size_t n = 256 * 1024;
    double mean, sd;
    stats(f, n, &mean, &sd);
    assert_true(fabs(sd - 1.0 / 16.0) < 0.002);
    size_t in1 = 0, in2 = 0;
    for (size_t i = 0; i < n; i++) {
        in1 += fabs(f[i]) < 1.0 / 16.0;
        in2 += fabs(f[i]) < 2.0 / 16.0;
    }
    assert_true(fabs((double)in1 / n - 0.6827) < 0.005);
    assert_true(fabs((double)in2 / n - 0.9545) < 0.003);
    /* rows are not copies of each other */
    assert_true(memcmp(f, f + 256, 256 * sizeof(float)) != 0);
    free(f);
    pv_weights_free(w);
}

static void test_determinism(void **state) {
    (void)state;
    pv_synth_params p = small("qwen2", "q4_k_m");
    p.dim = 256;
    p.n_ff = 512;
    pv_error err = {0};
    p.n_threads = 1;
    assert_int_equal(pv_synth_write(&p, tmp_path("d1.gguf"), &err), PV_OK);
    p.n_threads = 3;
    assert_int_equal(pv_synth_write(&p, tmp_path("d2.gguf"), &err), PV_OK);
    p.seed = 2;
    assert_int_equal(pv_synth_write(&p, tmp_path("d3.gguf"), &err), PV_OK);
    size_t n1, n2, n3;
    char *b1 = pv_test_read_file(tmp_path("d1.gguf"), &n1);
    char *b2 = pv_test_read_file(tmp_path("d2.gguf"), &n2);
    char *b3 = pv_test_read_file(tmp_path("d3.gguf"), &n3);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_non_null(b3);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    assert_int_equal(n1, n3); /* same layout, other values */
    size_t diff = 0;
    for (size_t i = 0; i < n1; i++) diff += b1[i] != b3[i];
    assert_true(diff > n1 / 2);
    free(b1);
    free(b2);
    free(b3);
}

static void test_vocab(void **state) {
    (void)state;
    pv_synth_params p = small("llama", "q8_0");
    p.n_vocab = 2000;
    p.vocab_only = true;
    pv_weights *w = synth_open(&p, "vocab.gguf");
    assert_int_equal(w->n_tensors, 0);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        pv_str k = w->kv[i].key;
        bool ok = (k.len > 10 && !memcmp(k.ptr, "tokenizer.", 10)) || pv_str_eq(k, "general.architecture");
        if (!ok) print_error("unexpected key %.*s\n", (int)k.len, k.ptr);
        assert_true(ok);
    }
    const pv_value *toks = pv_meta_get_arr(w, "tokenizer.ggml.tokens");
    const pv_value *types = pv_meta_get_arr(w, "tokenizer.ggml.token_type");
    const pv_value *scores = pv_meta_get_arr(w, "tokenizer.ggml.scores");
    assert_non_null(toks);
    assert_non_null(types);
    assert_non_null(scores);
    assert_int_equal(toks->arr.n, 2000);
    assert_int_equal(types->arr.n, 2000);
    assert_int_equal(scores->arr.n, 2000);
    assert_true(pv_str_eq(pv_value_arr_str(toks, 0), "<unk>"));
    assert_true(pv_str_eq(pv_value_arr_str(toks, 1), "<s>"));
    assert_true(pv_str_eq(pv_value_arr_str(toks, 2), "</s>"));
    assert_true(pv_str_eq(pv_value_arr_str(toks, 3 + 0x41), "<0x41>"));
    assert_int_equal(pv_value_arr_i32(types, 3 + 0x41), 6);
    assert_int_equal(pv_value_arr_i32(types, 1), 3);
    /* pieces are unique */
    for (uint64_t i = 0; i < 2000; i++) {
        pv_str a = pv_value_arr_str(toks, i);
        for (uint64_t j = i + 1; j < 2000; j++) {
            pv_str b = pv_value_arr_str(toks, j);
            assert_false(a.len == b.len && !memcmp(a.ptr, b.ptr, a.len));
        }
    }
    /* the vocabulary tokenizes text: no <unk>, merges used, decodes back */
    pv_tokenizer *tok = NULL;
    pv_error err = {0};
    pv_status st = pv_tokenizer_init(w, &tok, &err);
    if (st != PV_OK) print_error("tokenizer: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    const char *text = "hello world, the quick fox! caf\xC3\xA9";
    int32_t *ids = NULL;
    size_t n_ids = 0;
    assert_int_equal(pv_tokenizer_encode(tok, text, strlen(text), false, false, &ids, &n_ids, &err), PV_OK);
    assert_true(n_ids > 0 && n_ids < strlen(text));
    for (size_t i = 0; i < n_ids; i++) assert_true(ids[i] > 2 && ids[i] < 2000);
    char *dec = pv_tokenizer_decode(tok, ids, n_ids, false);
    assert_non_null(dec);
    const char *d = dec[0] == ' ' ? dec + 1 : dec; /* SPM's prefix space */
    assert_string_equal(d, text);
    free(dec);
    free(ids);
    pv_tokenizer_free(tok);
    pv_weights_free(w);
}

/* The vocabulary size of a tokenizer.json, counted independently: max id + 1 over the
 * model vocabulary and the added tokens. */
static int64_t hf_vocab_size(const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    assert_non_null(root);
    int64_t max = -1;
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (json_integer_value(v) > max) max = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(json_object_get(root, "added_tokens"), i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (id > max) max = id;
    }
    json_decref(root);
    return max + 1;
}

static void test_tokenizer_json(void **state) {
    (void)state;
    char *tj = pv_test_fixture_path("qwen3/tiny-random-qwen3/tokenizer.json");
    char *tc = pv_test_fixture_path("qwen3/tiny-random-qwen3/tokenizer_config.json");
    if (!tj) {
        free(tc);
        skip();
    }
    pv_synth_params p = small("qwen3", "q8_0");
    p.tokenizer_json = tj;
    p.tokenizer_config = tc;
    p.n_vocab = 300; /* ignored */
    pv_weights *w = synth_open(&p, "hf.gguf");
    const pv_value *toks = pv_meta_get_arr(w, "tokenizer.ggml.tokens");
    assert_non_null(toks);
    int64_t want = hf_vocab_size(tj);
    assert_true((int64_t)toks->arr.n >= want);
    const pv_tensor_desc *e = pv_weights_tensor(w, "token_embd.weight");
    assert_non_null(e);
    assert_int_equal(e->ne[1], (int64_t)toks->arr.n);
    char *model = pv_meta_get_strdup(w, "tokenizer.ggml.model");
    assert_non_null(model);
    assert_string_equal(model, "gpt2");
    free(model);
    pv_weights_free(w);
    free(tj);
    free(tc);
}

static void test_errors(void **state) {
    (void)state;
    pv_error err = {0};
    pv_synth_params p = small("gpt9", "f32");
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "llama"));
    p = small("llama", "q3_k");
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "q4_k_m"));
    p = small("llama", "f32");
    p.n_head = 5;
    p.dim = 80;
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "--kv-heads"));
    p = small("llama", "f32");
    p.n_vocab = 100;
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_INVALID);
    p = small("llama", "f32");
    p.dim = 0;
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_INVALID);
    p = small("llama", "f32");
    p.n_head = 3; /* 64 / 3 */
    p.n_head_kv = 1;
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_INVALID);
    p = small("llama", "f32");
    assert_int_equal(pv_synth_write(&p, "/nonexistent-dir/x.gguf", &err), PV_ERR_IO);
    assert_int_equal(access(tmp_path("e.gguf"), F_OK), -1); /* nothing written on errors */
}
/* --boost-token: exactly that row of the output matrix is scaled, the rest is unchanged
 * (F32, so the comparison is exact); a token past the vocabulary is refused. */
static void test_boost(void **state) {
    (void)state;
    pv_synth_params p = small("llama", "f32");
    pv_weights *plain = synth_open(&p, "b0.gguf");
    p.boost_token = 7;
    p.boost_scale = 10.0f;
    pv_weights *boosted = synth_open(&p, "b1.gguf");
    const pv_tensor_desc *a = pv_weights_tensor(plain, "output.weight");
    const pv_tensor_desc *b = pv_weights_tensor(boosted, "output.weight");
    assert_non_null(a);
    assert_non_null(b);
    const float *fa = a->data, *fb = b->data;
    int64_t n0 = a->ne[0];
    for (int64_t r = 0; r < a->ne[1]; r++)
        for (int64_t c = 0; c < n0; c++) {
            float want = r == 7 ? fa[r * n0 + c] * 10.0f : fa[r * n0 + c];
            if (fb[r * n0 + c] != want) fail_msg("row %lld col %lld: %g, want %g", (long long)r, (long long)c, fb[r * n0 + c], want);
        }
    /* other tensors are byte-identical */
    const pv_tensor_desc *ea = pv_weights_tensor(plain, "token_embd.weight"), *eb = pv_weights_tensor(boosted, "token_embd.weight");
    assert_int_equal(ea->nbytes, eb->nbytes);
    assert_memory_equal(ea->data, eb->data, ea->nbytes);
    pv_weights_free(plain);
    pv_weights_free(boosted);
    pv_error err = {0};
    p.boost_token = 300; /* the vocabulary has 300 tokens */
    assert_int_equal(pv_synth_write(&p, tmp_path("e.gguf"), &err), PV_ERR_RANGE);
    assert_non_null(strstr(err.msg, "boost-token"));
}

static int teardown(void **state) {
    (void)state;
    const char *files[] = {"arch.gguf", "hd.gguf", "types.gguf", "kmix.gguf", "dist.gguf", "d1.gguf",
                           "d2.gguf", "d3.gguf", "vocab.gguf", "hf.gguf", "e.gguf", "b0.gguf", "b1.gguf"};
    for (size_t i = 0; i < PV_ARRAY_LEN(files); i++) unlink(tmp_path(files[i]));
    rmdir(g_dir);
    return 0;
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/pv_synth_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archs),       cmocka_unit_test(test_types),
        cmocka_unit_test(test_distribution), cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_vocab),       cmocka_unit_test(test_tokenizer_json),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_boost),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
