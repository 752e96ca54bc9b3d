/* test_gguf_real.c — the GGUF reader on real files: Karpathy's stories260K.gguf (facts
 * from shared/models/MANIFEST.md, read there with an independent Python reader) and the
 * 13 fixture GGUFs made by llama.cpp's converter (tensor counts and types from
 * shared/fixtures/MANIFEST.md, shapes from each fixture's config.json). Also checks that
 * every tensor of every file lies inside the mapping, is aligned, and does not overlap
 * another. Missing data skips (or fails under CI) through pv_test_require. */
#include "pv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/pv_gguf.h"

static char *g_stories;

static pv_weights *open_or_fail(const char *path) {
    pv_weights *w = NULL;
    pv_error err = {0};
    if (pv_weights_open(path, &w, &err) != PV_OK) fail_msg("%s", err.msg);
    return w;
}

static void check_u32(const pv_weights *w, const char *key, uint32_t want) {
    uint32_t v = 0;
    if (!pv_meta_get_u32(w, key, &v)) fail_msg("%s missing or not an integer", key);
    if (v != want) fail_msg("%s = %u, want %u", key, v, want);
}

static void check_str(const pv_weights *w, const char *key, const char *want) {
    char *s = pv_meta_get_strdup(w, key);
    if (!s) fail_msg("%s missing or not a string", key);
    assert_string_equal(s, want);
    free(s);
}

static void test_stories_header(void **state) {
    (void)state;
    pv_weights *w = open_or_fail(g_stories);
    assert_int_equal(w->version, 3);
    assert_int_equal(w->n_tensors, 48);
    assert_int_equal(w->n_kv, 19);
    assert_int_equal(w->alignment, 32); /* no general.alignment key */
    assert_null(pv_weights_meta(w, "general.alignment"));
    assert_int_equal(pv_gguf_data_offset(w), 14176);
    assert_int_equal(w->map_size, 1185376);
    check_str(w, "general.architecture", "llama");
    check_str(w, "general.name", "llama");
    check_str(w, "tokenizer.ggml.model", "llama");
    check_u32(w, "llama.context_length", 2048);
    check_u32(w, "llama.embedding_length", 64);
    check_u32(w, "llama.feed_forward_length", 172);
    check_u32(w, "llama.block_count", 5);
    check_u32(w, "llama.attention.head_count", 8);
    check_u32(w, "llama.attention.head_count_kv", 4);
    check_u32(w, "llama.rope.dimension_count", 8);
    check_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    check_u32(w, "tokenizer.ggml.bos_token_id", 1);
    check_u32(w, "tokenizer.ggml.eos_token_id", 2);
    check_u32(w, "tokenizer.ggml.seperator_token_id", 4294967295u);
    check_u32(w, "tokenizer.ggml.padding_token_id", 4294967295u);
    const pv_value *eps = pv_weights_meta(w, "llama.attention.layer_norm_rms_epsilon");
    assert_non_null(eps);
    assert_int_equal(eps->type, PV_VAL_F32);
    assert_true(eps->f == (double)1e-5f);
    assert_null(pv_weights_meta(w, "tokenizer.chat_template"));
    assert_null(pv_weights_meta(w, "tokenizer.ggml.merges"));
    pv_weights_free(w);
}

static void test_stories_vocab(void **state) {
    (void)state;
    pv_weights *w = open_or_fail(g_stories);
    const pv_value *tok = pv_meta_get_arr(w, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr.type, PV_VAL_STRING);
    assert_int_equal(tok->arr.n, 512);
    assert_true(pv_str_eq(pv_value_arr_str(tok, 1), "<s>"));
    assert_true(pv_str_eq(pv_value_arr_str(tok, 2), "</s>"));
    assert_true(pv_str_eq(pv_value_arr_str(tok, 3), "<0x00>"));
    assert_true(pv_str_eq(pv_value_arr_str(tok, 13), "<0x0A>"));
    assert_true(pv_str_eq(pv_value_arr_str(tok, 258), "<0xFF>"));
    const pv_value *sc = pv_meta_get_arr(w, "tokenizer.ggml.scores");
    assert_non_null(sc);
    assert_int_equal(sc->arr.type, PV_VAL_F32);
    assert_int_equal(sc->arr.n, 512);
    const pv_value *tt = pv_meta_get_arr(w, "tokenizer.ggml.token_type");
    assert_non_null(tt);
    assert_int_equal(tt->arr.n, 512);
    int counts[8] = {0};
    for (uint64_t i = 0; i < tt->arr.n; i++) {
        int32_t t = pv_value_arr_i32(tt, i);
        assert_true(t >= 0 && t < 8);
        counts[t]++;
    }
    assert_int_equal(counts[1], 253); /* normal */
    assert_int_equal(counts[2], 1);   /* unknown */
    assert_int_equal(counts[3], 2);   /* control */
    assert_int_equal(counts[6], 256); /* byte */
    pv_weights_free(w);
}

static void check_tensor(const pv_weights *w, const char *name, int64_t ne0, int64_t ne1) {
    const pv_tensor_desc *t = pv_weights_tensor(w, name);
    if (!t) fail_msg("tensor %s missing", name);
    assert_int_equal(t->type, PV_TYPE_F32);
    assert_int_equal(t->n_dims, ne1 ? 2 : 1);
    assert_int_equal(t->ne[0], ne0);
    assert_int_equal(t->ne[1], ne1 ? ne1 : 1);
    assert_int_equal(t->nbytes, (uint64_t)(ne0 * (ne1 ? ne1 : 1) * 4));
}

static void test_stories_tensors(void **state) {
    (void)state;
    pv_weights *w = open_or_fail(g_stories);
    check_tensor(w, "token_embd.weight", 64, 512);
    check_tensor(w, "output_norm.weight", 64, 0);
    check_tensor(w, "output.weight", 64, 512);
    static const struct {
        const char *suffix;
        int64_t ne0, ne1;
    } blk[] = {{"attn_q", 64, 64},      {"attn_k", 64, 32},   {"attn_v", 64, 32},
               {"attn_output", 64, 64}, {"attn_norm", 64, 0}, {"ffn_gate", 64, 172},
               {"ffn_down", 172, 64},   {"ffn_up", 64, 172},  {"ffn_norm", 64, 0}};
    for (int l = 0; l < 5; l++) {
        for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, blk[k].suffix);
            check_tensor(w, name, blk[k].ne0, blk[k].ne1);
        }
    }
    /* the manifest: output.weight is a separate copy equal to the embedding */
    const pv_tensor_desc *e = pv_weights_tensor(w, "token_embd.weight");
    const pv_tensor_desc *o = pv_weights_tensor(w, "output.weight");
    assert_ptr_not_equal(e->data, o->data);
    assert_memory_equal(e->data, o->data, e->nbytes);
    assert_null(pv_weights_tensor(w, "blk.5.attn_q.weight"));
    pv_weights_free(w);
}

/* ---- fixtures: counts and types from fixtures/MANIFEST.md ---- */
typedef struct {
    const char *file;
    int n_tensors, n_f32, n_f16, n_q8_0, n_q4_0;
    int output_type; /* -1: no output.weight (tied embeddings) */
    int embd_type;
} fixture_spec;

static const fixture_spec fixtures[] = {
    {"llama/llama-f32.gguf", 22, 22, 0, 0, 0, PV_TYPE_F32, PV_TYPE_F32},
    {"llama/llama-q8_0.gguf", 22, 6, 0, 16, 0, PV_TYPE_Q8_0, PV_TYPE_Q8_0},
    {"llama/llama-q4_0.gguf", 22, 6, 0, 1, 15, PV_TYPE_Q8_0, PV_TYPE_Q4_0},
    {"qwen2/qwen2-f32.gguf", 26, 26, 0, 0, 0, -1, PV_TYPE_F32},
    {"qwen2/qwen2-q8_0.gguf", 26, 11, 0, 15, 0, -1, PV_TYPE_Q8_0},
    {"qwen2/qwen2-q4_0.gguf", 26, 11, 0, 1, 14, -1, PV_TYPE_Q8_0},
    {"qwen3/qwen3-f32.gguf", 24, 24, 0, 0, 0, -1, PV_TYPE_F32},
    {"qwen3/qwen3-q8_0.gguf", 24, 9, 0, 15, 0, -1, PV_TYPE_Q8_0},
    {"qwen3/qwen3-q4_0.gguf", 24, 9, 0, 1, 14, -1, PV_TYPE_Q8_0},
    {"phi3/phi3-f32.gguf", 17, 17, 0, 0, 0, PV_TYPE_F32, PV_TYPE_F32},
    {"phi3/phi3-f16.gguf", 17, 7, 10, 0, 0, PV_TYPE_F16, PV_TYPE_F16},
    {"phi3/phi3-q8_0.gguf", 17, 7, 0, 10, 0, PV_TYPE_Q8_0, PV_TYPE_Q8_0},
    {"phi3/phi3-q4_0.gguf", 17, 7, 0, 1, 9, PV_TYPE_Q8_0, PV_TYPE_Q4_0},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])
static char *g_fixture_paths[N_FIXTURES];

static void test_fixture_types(void **state) {
    (void)state;
    for (size_t f = 0; f < N_FIXTURES; f++) {
        pv_weights *w = open_or_fail(g_fixture_paths[f]);
        assert_int_equal(w->version, 3);
        assert_int_equal(w->n_tensors, (uint64_t)fixtures[f].n_tensors);
        int n[PV_TYPE_COUNT] = {0};
        for (uint64_t i = 0; i < w->n_tensors; i++)
            n[w->tensors[i].type]++;
        if (n[PV_TYPE_F32] != fixtures[f].n_f32 || n[PV_TYPE_F16] != fixtures[f].n_f16 ||
            n[PV_TYPE_Q8_0] != fixtures[f].n_q8_0 || n[PV_TYPE_Q4_0] != fixtures[f].n_q4_0)
            fail_msg("%s: type counts F32 %d F16 %d Q8_0 %d Q4_0 %d", fixtures[f].file,
                     n[PV_TYPE_F32], n[PV_TYPE_F16], n[PV_TYPE_Q8_0], n[PV_TYPE_Q4_0]);
        const pv_tensor_desc *o = pv_weights_tensor(w, "output.weight");
        if (fixtures[f].output_type < 0) {
            assert_null(o);
        } else {
            assert_non_null(o);
            assert_int_equal(o->type, fixtures[f].output_type);
        }
        const pv_tensor_desc *e = pv_weights_tensor(w, "token_embd.weight");
        assert_non_null(e);
        assert_int_equal(e->type, fixtures[f].embd_type);
        assert_int_equal(e->ne[0], 64); /* hidden_size 64 in every config.json */
        pv_weights_free(w);
    }
}

/* qwen2-q4_0 in detail: config.json facts as the converter writes them */
static void test_qwen2_q4_0(void **state) {
    (void)state;
    pv_weights *w = open_or_fail(g_fixture_paths[5]);
    check_str(w, "general.architecture", "qwen2");
    check_u32(w, "qwen2.block_count", 2);
    check_u32(w, "qwen2.embedding_length", 64);
    check_u32(w, "qwen2.feed_forward_length", 160);
    check_u32(w, "qwen2.attention.head_count", 4);
    check_u32(w, "qwen2.attention.head_count_kv", 2);
    const pv_tensor_desc *e = pv_weights_tensor(w, "token_embd.weight");
    assert_int_equal(e->n_dims, 2);
    assert_int_equal(e->ne[1], 151936); /* vocab_size */
    assert_int_equal(e->nbytes, 151936ull * (64 / 32) * 34);
    const pv_value *tok = pv_meta_get_arr(w, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr.type, PV_VAL_STRING);
    assert_int_equal(tok->arr.n, 151936);
    /* q/k/v biases exist (qwen2), o_proj has none */
    assert_non_null(pv_weights_tensor(w, "blk.0.attn_q.bias"));
    assert_null(pv_weights_tensor(w, "blk.0.attn_output.bias"));
    pv_weights_free(w);
}

static int cmp_ptr(const void *a, const void *b) {
    const pv_tensor_desc *x = *(const pv_tensor_desc *const *)a,
                         *y = *(const pv_tensor_desc *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    return px < py ? -1 : px > py;
}

/* Every tensor's bytes lie inside the mapping, start aligned in the data section, and no
 * two tensors overlap. */
static void check_bounds(const char *path) {
    pv_weights *w = open_or_fail(path);
    uintptr_t lo = (uintptr_t)w->map, hi = lo + w->map_size;
    uint64_t data_off = pv_gguf_data_offset(w);
    assert_true(data_off > 0 && data_off <= w->map_size);
    const pv_tensor_desc **order = calloc(w->n_tensors, sizeof *order);
    assert_non_null(order);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const pv_tensor_desc *t = &w->tensors[i];
        uintptr_t p = (uintptr_t)t->data;
        assert_true(p >= lo + data_off && p <= hi && t->nbytes <= hi - p);
        assert_int_equal((p - lo - data_off) % w->alignment, 0);
        const pv_type_traits *tr = pv_type_traits_get(t->type);
        assert_non_null(tr);
        uint64_t n = 1;
        for (int d = 0; d < PV_MAX_DIMS; d++)
            n *= (uint64_t)t->ne[d];
        assert_int_equal(t->nbytes, n / (uint64_t)tr->blck_size * tr->type_size);
        order[i] = t;
    }
    qsort(order, w->n_tensors, sizeof *order, cmp_ptr);
    for (uint64_t i = 1; i < w->n_tensors; i++)
        assert_true((uintptr_t)order[i - 1]->data + order[i - 1]->nbytes <=
                    (uintptr_t)order[i]->data);
    free(order);
    pv_weights_free(w);
}

static void test_bounds_all(void **state) {
    (void)state;
    check_bounds(g_stories);
    for (size_t f = 0; f < N_FIXTURES; f++)
        check_bounds(g_fixture_paths[f]);
}

int main(void) {
    g_stories = pv_test_data_path("models/stories260K.gguf");
    pv_test_require(g_stories, "models/stories260K.gguf");
    for (size_t f = 0; f < N_FIXTURES; f++) {
        g_fixture_paths[f] = pv_test_fixture_path(fixtures[f].file);
        pv_test_require(g_fixture_paths[f], fixtures[f].file);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_header),  cmocka_unit_test(test_stories_vocab),
        cmocka_unit_test(test_stories_tensors), cmocka_unit_test(test_fixture_types),
        cmocka_unit_test(test_qwen2_q4_0),      cmocka_unit_test(test_bounds_all),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_stories);
    for (size_t f = 0; f < N_FIXTURES; f++)
        free(g_fixture_paths[f]);
    return rc;
}
