/* test_stories.c — the real trained model ../shared/models/stories260K.gguf: greedy from
 * BOS for 256 steps must give exactly the 256 ids listed in ../shared/models/MANIFEST.md
 * (an independent float64 pass that reproduces llama2.c's documented output). The expected
 * ids are read from the MANIFEST at run time, not copied into this file. Also checks that
 * the same chain comes out with every kernel set the CPU runs, and with several sequences
 * decoded in one batch (each sequence must be unaffected by the others). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_test.h"
#include "model/pv_model.h"

static int32_t want[256];
static char *model_path;

/* Parses the id list that follows "The 256 greedy token ids" in the MANIFEST. */
static void load_expected(void) {
    char *mp = pv_test_data_path("models/MANIFEST.md");
    pv_test_require(mp, "models/MANIFEST.md");
    char *text = pv_test_read_file(mp, NULL);
    assert_non_null(text);
    char *at = strstr(text, "The 256 greedy token ids");
    assert_non_null(at);
    at = strstr(at, "```");
    assert_non_null(at);
    at += 3;
    int n = 0;
    while (n < 256) {
        char *end;
        long v = strtol(at, &end, 10);
        if (end == at) break;
        want[n++] = (int32_t)v;
        at = end;
    }
    assert_int_equal(n, 256);
    free(text);
    free(mp);
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void greedy_with(const char *kernels) {
    pv_model_params mp = pv_model_params_default();
    mp.kernels = kernels;
    pv_model *m = NULL;
    pv_error err = {0};
    pv_status st = pv_model_load(model_path, &mp, &m, &err);
    if (st == PV_ERR_UNSUPPORTED && kernels) {
        printf("  kernels %s: not available on this CPU, skipped\n", kernels);
        return;
    }
    assert_int_equal(st, PV_OK);
    pv_ctx *c = NULL;
    assert_int_equal(pv_ctx_new(m, NULL, &c, &err), PV_OK);
    int32_t t = 1; /* BOS */
    int agree = 0;
    for (int s = 0; s < 256; s++) {
        assert_int_equal(pv_ctx_eval_seq(c, 0, &t, 1, &err), PV_OK);
        t = argmax(pv_ctx_logits(c, 0), m->hp.n_vocab);
        if (t != want[s]) break;
        agree++;
    }
    printf("  kernels %-6s: %d/256 greedy ids match\n", pv_backend_cpu_kernels_name(m->be), agree);
    assert_int_equal(agree, 256);
    pv_ctx_free(c);
    pv_model_free(m);
}

static void test_greedy_default(void **state) {
    (void)state;
    greedy_with(NULL);
}

static void test_greedy_every_variant(void **state) {
    (void)state;
    greedy_with("ref");
    greedy_with("avx2");
    greedy_with("avx512");
}

/* Three sequences in one batch per step, started at different offsets of the chain: each
 * must follow the oracle exactly as if alone. */
static void test_batched_sequences(void **state) {
    (void)state;
    pv_model *m = NULL;
    pv_error err = {0};
    assert_int_equal(pv_model_load(model_path, NULL, &m, &err), PV_OK);
    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_seq_max = 3;
    pv_ctx *c = NULL;
    assert_int_equal(pv_ctx_new(m, &cp, &c, &err), PV_OK);
    /* seq s first consumes BOS + the first 10*s oracle ids as a prompt */
    int32_t prompt[64];
    for (int s = 0; s < 3; s++) {
        prompt[0] = 1;
        for (int i = 0; i < 10 * s; i++) prompt[1 + i] = want[i];
        assert_int_equal(pv_ctx_eval_seq(c, s, prompt, 1 + 10 * s, &err), PV_OK);
    }
    int32_t next[3], pos[3], seq[3];
    int8_t lg[3] = {1, 1, 1};
    /* the prompt evals were separate calls: compute each seq's next token now */
    for (int s = 0; s < 3; s++) {
        pos[s] = 1 + 10 * s;
        seq[s] = s;
        next[s] = want[10 * s]; /* oracle's next id after that prefix */
    }
    for (int step = 0; step < 60; step++) {
        pv_batch b = {3, next, pos, seq, lg};
        assert_int_equal(pv_ctx_decode(c, &b, &err), PV_OK);
        for (int s = 0; s < 3; s++) {
            int32_t t = argmax(pv_ctx_logits(c, s), m->hp.n_vocab);
            assert_int_equal(t, want[10 * s + step + 1]);
            next[s] = t;
            pos[s]++;
        }
    }
    pv_ctx_free(c);
    pv_model_free(m);
}

/* Prefix reuse: the KV rows of a prefix copied from sequence 0 to sequence 1 continue
 * exactly as a fresh evaluation would; truncating and re-evaluating gives the same ids. */
static void test_kv_copy_and_truncate(void **state) {
    (void)state;
    pv_model *m = NULL;
    pv_error err = {0};
    assert_int_equal(pv_model_load(model_path, NULL, &m, &err), PV_OK);
    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_seq_max = 2;
    pv_ctx *c = NULL;
    assert_int_equal(pv_ctx_new(m, &cp, &c, &err), PV_OK);
    int32_t prompt[21];
    prompt[0] = 1;
    for (int i = 0; i < 20; i++) prompt[1 + i] = want[i];
    assert_int_equal(pv_ctx_eval_seq(c, 0, prompt, 21, &err), PV_OK);
    pv_kv_cache *kv = pv_ctx_kv(c);
    assert_int_equal(pv_kv_seq_len(kv, 0), 21);
    /* copy the first 11 positions, then continue seq 1 from there */
    assert_int_equal(pv_kv_seq_cp(kv, 0, 1, 0, 11, &err), PV_OK);
    assert_int_equal(pv_kv_seq_len(kv, 1), 11);
    int32_t t = want[10];
    for (int s = 0; s < 30; s++) {
        assert_int_equal(pv_ctx_eval_seq(c, 1, &t, 1, &err), PV_OK);
        t = argmax(pv_ctx_logits(c, 0), m->hp.n_vocab);
        assert_int_equal(t, want[11 + s]);
    }
    /* a hole is refused, a suffix removal works */
    assert_int_equal(pv_kv_seq_rm(kv, 0, 3, 5, &err), PV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "hole"));
    assert_int_equal(pv_kv_seq_rm(kv, 0, 5, -1, &err), PV_OK);
    assert_int_equal(pv_kv_seq_len(kv, 0), 5);
    t = want[4];
    for (int s = 0; s < 10; s++) {
        assert_int_equal(pv_ctx_eval_seq(c, 0, &t, 1, &err), PV_OK);
        t = argmax(pv_ctx_logits(c, 0), m->hp.n_vocab);
        assert_int_equal(t, want[5 + s]);
    }
    pv_ctx_free(c);
    pv_model_free(m);
}

/* Bad batches give errors, not crashes; the context stays usable. */
static void test_bad_batches(void **state) {
    (void)state;
    pv_model *m = NULL;
    pv_error err = {0};
    assert_int_equal(pv_model_load(model_path, NULL, &m, &err), PV_OK);
    pv_ctx *c = NULL;
    assert_int_equal(pv_ctx_new(m, NULL, &c, &err), PV_OK);
    int32_t tok = 600, pos = 0, seq = 0;
    int8_t lg = 1;
    pv_batch b = {1, &tok, &pos, &seq, &lg};
    assert_int_equal(pv_ctx_decode(c, &b, &err), PV_ERR_RANGE);
    assert_non_null(strstr(err.msg, "token 600 out of range"));
    tok = 1;
    pos = 5; /* hole */
    assert_int_equal(pv_ctx_decode(c, &b, &err), PV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "continues at position 0"));
    seq = 7;
    pos = 0;
    assert_int_equal(pv_ctx_decode(c, &b, &err), PV_ERR_RANGE);
    seq = 0;
    assert_int_equal(pv_ctx_decode(c, &b, &err), PV_OK);
    assert_int_equal(argmax(pv_ctx_logits(c, 0), m->hp.n_vocab), want[0]);
    pv_ctx_free(c);
    pv_model_free(m);
}

int main(void) {
    model_path = pv_test_data_path("models/stories260K.gguf");
    pv_test_require(model_path, "models/stories260K.gguf");
    load_expected();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_default),
        cmocka_unit_test(test_greedy_every_variant),
        cmocka_unit_test(test_batched_sequences),
        cmocka_unit_test(test_kv_copy_and_truncate),
        cmocka_unit_test(test_bad_batches),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(model_path);
    return rc;
}
