/* test_model_load.c — the model loader's errors: each malformed-but-parseable model gives a
 * clear error naming the file and the problem, never a crash. Variants are made from the
 * real stories260K.gguf by copying it through the GGUF writer with one change each: an
 * unknown architecture (the error lists the supported ones), a tensor of an unsupported
 * type (named in the error), a missing tensor, a tensor of the wrong shape, a missing
 * hyper-parameter; and a vocabulary-only file (no tensors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pv_test.h"
#include "gguf/pv_gguf.h"
#include "model/pv_model.h"

static char *src_path;

typedef struct {
    const char *drop_key;     /* metadata key left out */
    const char *arch;         /* replaces general.architecture */
    const char *drop_tensor;  /* tensor left out */
    const char *retype;       /* tensor written with type `new_type` (bytes zeroed) */
    pv_type new_type;
    const char *reshape;      /* tensor written with ne[1] - 1 rows */
    bool no_tensors;
} variant;

/* Writes a modified copy of stories260K to a temp file; returns its malloc'ed path. */
static char *write_variant(const variant *v) {
    pv_weights *w = NULL;
    pv_error err = {0};
    assert_int_equal(pv_weights_open(src_path, &w, &err), PV_OK);
    pv_gguf_writer *g = pv_gguf_writer_new();
    for (uint64_t i = 0; i < w->n_kv; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)w->kv[i].key.len, w->kv[i].key.ptr);
        if (v->drop_key && !strcmp(key, v->drop_key)) continue;
        if (v->arch && !strcmp(key, "general.architecture")) {
            pv_gguf_writer_set_str(g, key, v->arch);
            continue;
        }
        assert_int_equal(pv_gguf_writer_set_value(g, key, &w->kv[i].value, &err), PV_OK);
    }
    void *scratch = NULL;
    for (uint64_t i = 0; !v->no_tensors && i < w->n_tensors; i++) {
        const pv_tensor_desc *t = &w->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (v->drop_tensor && !strcmp(name, v->drop_tensor)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (v->reshape && !strcmp(name, v->reshape)) {
            ne[1] -= 1;
            assert_int_equal(pv_gguf_writer_add_tensor(g, name, t->type, t->n_dims, ne, t->data, &err), PV_OK);
        } else if (v->retype && !strcmp(name, v->retype)) {
            const pv_type_traits *tr = pv_type_traits_get(v->new_type);
            size_t nb = (size_t)(ne[0] / tr->blck_size) * tr->type_size * (size_t)ne[1];
            scratch = calloc(1, nb);
            assert_int_equal(pv_gguf_writer_add_tensor(g, name, v->new_type, t->n_dims, ne, scratch, &err), PV_OK);
        } else {
            assert_int_equal(pv_gguf_writer_add_tensor(g, name, t->type, t->n_dims, ne, t->data, &err), PV_OK);
        }
    }
    char tmpl[] = "/tmp/pv_model_load_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    close(fd);
    pv_status st = pv_gguf_writer_write(g, tmpl, &err);
    if (st != PV_OK) fprintf(stderr, "write: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    pv_gguf_writer_free(g);
    free(scratch);
    pv_weights_free(w);
    return strdup(tmpl);
}

/* Loads the variant and asserts the status and that the message holds each needle. */
static void expect_error(const variant *v, pv_status want, const char *n1, const char *n2) {
    char *path = write_variant(v);
    pv_model *m = NULL;
    pv_error err = {0};
    pv_status st = pv_model_load(path, NULL, &m, &err);
    printf("  -> %s\n", err.msg);
    assert_int_equal(st, want);
    assert_null(m);
    assert_non_null(strstr(err.msg, path));
    if (n1) assert_non_null(strstr(err.msg, n1));
    if (n2) assert_non_null(strstr(err.msg, n2));
    unlink(path);
    free(path);
}

static void test_unmodified_copy_loads(void **state) {
    (void)state;
    variant v = {0};
    char *path = write_variant(&v);
    pv_model *m = NULL;
    pv_error err = {0};
    assert_int_equal(pv_model_load(path, NULL, &m, &err), PV_OK);
    assert_int_equal(m->hp.n_layer, 5);
    assert_int_equal(m->hp.n_vocab, 512);
    pv_model_free(m);
    unlink(path);
    free(path);
}

static void test_unknown_arch(void **state) {
    (void)state;
    variant v = {.arch = "gptneox"};
    expect_error(&v, PV_ERR_UNSUPPORTED, "'gptneox' is not supported", "llama, qwen2, qwen3, phi3");
}

static void test_unsupported_type(void **state) {
    (void)state;
    /* I8 (GGUF id 24) is a type the file format knows and the engine does not compute with */
    variant v = {.retype = "blk.0.attn_q.weight", .new_type = (pv_type)24};
    expect_error(&v, PV_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "type I8 is not supported");
    /* vectors (norms) must be F32 */
    variant v2 = {.retype = "output_norm.weight", .new_type = PV_TYPE_F16};
    expect_error(&v2, PV_ERR_UNSUPPORTED, "output_norm.weight", "F16");
}

static void test_missing_tensor(void **state) {
    (void)state;
    variant v = {.drop_tensor = "blk.3.ffn_gate.weight"};
    expect_error(&v, PV_ERR_FORMAT, "'blk.3.ffn_gate.weight' is missing", NULL);
}

static void test_wrong_shape(void **state) {
    (void)state;
    variant v = {.reshape = "blk.1.attn_k.weight"};
    expect_error(&v, PV_ERR_FORMAT, "'blk.1.attn_k.weight' has shape [64, 31], expected [64, 32]", NULL);
}

static void test_missing_hparam(void **state) {
    (void)state;
    variant v = {.drop_key = "llama.block_count"};
    expect_error(&v, PV_ERR_FORMAT, "llama.block_count", "missing");
}

static void test_vocab_only_is_not_a_model(void **state) {
    (void)state;
    variant v = {.no_tensors = true};
    expect_error(&v, PV_ERR_FORMAT, "token_embd.weight", NULL);
}

int main(void) {
    src_path = pv_test_data_path("models/stories260K.gguf");
    pv_test_require(src_path, "models/stories260K.gguf");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmodified_copy_loads), cmocka_unit_test(test_unknown_arch),
        cmocka_unit_test(test_unsupported_type),      cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape),           cmocka_unit_test(test_missing_hparam),
        cmocka_unit_test(test_vocab_only_is_not_a_model),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(src_path);
    return rc;
}
