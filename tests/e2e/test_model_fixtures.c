/* test_model_fixtures.c — end-to-end forward-pass tests against independent oracles:
 *  - ../shared/fixtures/<arch>/ref_golden.json + ref_logits_*.f32 (a float64 NumPy
 *    reference): the F32 GGUF's last-position logits within 1e-3 relative error
 *    (max |diff| / max |ref|) and the greedy chain equal to the reference's, for llama,
 *    qwen2, qwen3, phi3, and phi3's 4225-token prompt (LongRoPE long factors, n_ctx 8192);
 *  - llamacpp_golden_{q8_0,q4_0}.json (llama.cpp's greedy chains with top-5 probabilities):
 *    teacher-forced through llama.cpp's chain, our probabilities for their top-5 ids are
 *    within 0.01 (Q8_0) / 0.02 (Q4_0), and our top-1 equals theirs wherever theirs leads
 *    by more than 0.01.
 * Fixtures are decompressed into build/fixtures by `make fixtures` (PENSIEVE_FIXTURES). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_test.h"
#include "model/pv_model.h"

static const char *const archs[] = {"llama", "qwen2", "qwen3", "phi3"};

static json_t *load_json(const char *rel) {
    char *p = pv_test_fixture_path(rel);
    assert_non_null(p);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) fprintf(stderr, "%s: %s (line %d)\n", p, je.text, je.line);
    free(p);
    assert_non_null(j);
    return j;
}

/* The golden JSON `name` of architecture `arch`. */
static json_t *load_json_for(const char *arch, const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "%s/%s", arch, name);
    return load_json(rel);
}

static int32_t *json_ids(json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    return ids;
}

static pv_model *load_model(const char *arch, const char *type) {
    char rel[128];
    snprintf(rel, sizeof rel, "%s/%s-%s.gguf", arch, arch, type);
    char *path = pv_test_fixture_path(rel);
    assert_non_null(path);
    pv_model *m = NULL;
    pv_error err = {0};
    pv_status st = pv_model_load(path, NULL, &m, &err);
    if (st != PV_OK) fprintf(stderr, "load %s: %s\n", path, err.msg);
    assert_int_equal(st, PV_OK);
    free(path);
    return m;
}

/* The goldens were computed with an F32 KV cache (llama.cpp: -ctk f32 -ctv f32), so the
 * comparisons use one too; the F16 cache (the default) gets its own, looser check. */
static pv_ctx *new_ctx_kv(pv_model *m, int n_ctx, pv_type kv_type) {
    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_ctx = n_ctx;
    cp.n_batch = 512;
    cp.kv_type = kv_type;
    pv_ctx *c = NULL;
    pv_error err = {0};
    pv_status st = pv_ctx_new(m, &cp, &c, &err);
    if (st != PV_OK) fprintf(stderr, "ctx: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    return c;
}

static pv_ctx *new_ctx(pv_model *m, int n_ctx) { return new_ctx_kv(m, n_ctx, PV_TYPE_F32); }

static void eval(pv_ctx *c, const int32_t *ids, int n) {
    pv_error err = {0};
    pv_status st = pv_ctx_eval_seq(c, 0, ids, n, &err);
    if (st != PV_OK) fprintf(stderr, "eval: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* max |ours - ref| / max |ref| over the vocabulary, against the prompt's logits file */
static double logits_rel_err(const float *lg, int V, const char *arch, json_t *pr) {
    char rel[128];
    snprintf(rel, sizeof rel, "%s/%s", arch, json_string_value(json_object_get(pr, "last_logits_file")));
    char *lp = pv_test_fixture_path(rel);
    assert_non_null(lp);
    size_t sz = 0;
    float *ref = (float *)pv_test_read_file(lp, &sz);
    free(lp);
    assert_non_null(ref);
    assert_int_equal(sz, (size_t)V * sizeof(float));
    assert_non_null(lg);
    double maxdiff = 0, maxref = 0;
    for (int i = 0; i < V; i++) {
        maxdiff = fmax(maxdiff, fabs((double)lg[i] - ref[i]));
        maxref = fmax(maxref, fabs((double)ref[i]));
    }
    free(ref);
    return maxdiff / maxref;
}

/* F32 GGUF vs the float64 reference: logits and greedy chain for one prompt object. */
static void check_ref_prompt(pv_model *m, const char *arch, json_t *pr, int n_ctx) {
    const char *name = json_string_value(json_object_get(pr, "name"));
    int n_ids;
    int32_t *ids = json_ids(json_object_get(pr, "ids"), &n_ids);
    pv_ctx *c = new_ctx(m, n_ctx);
    eval(c, ids, n_ids);

    int V = m->hp.n_vocab;
    double rel_err = logits_rel_err(pv_ctx_logits(c, 0), V, arch, pr);
    printf("  %-6s %-10s n=%-5d logits rel err %.2e", arch, name, n_ids, rel_err);
    assert_true(rel_err < 1e-3);

    json_t *g = json_object_get(pr, "greedy");
    int n_g;
    int32_t *want = json_ids(json_object_get(g, "ids"), &n_g);
    int agree = 0;
    for (int s = 0; s < n_g; s++) {
        int32_t t = argmax(pv_ctx_logits(c, 0), V);
        if (t != want[s]) {
            printf("\n  step %d: got %d want %d\n", s, t, want[s]);
            break;
        }
        agree++;
        eval(c, &t, 1);
    }
    printf(", greedy %d/%d\n", agree, n_g);
    assert_int_equal(agree, n_g);
    free(want);
    free(ids);
    pv_ctx_free(c);
}

/* With the default F16 KV cache the logits stay close to the reference (f16 rounding of
 * K/V on these large random activations costs about 1e-3). */
static void test_ref_f32_kv_f16(void **state) {
    (void)state;
    for (size_t a = 0; a < PV_ARRAY_LEN(archs); a++) {
        json_t *g = load_json_for(archs[a], "ref_golden.json");
        pv_model *m = load_model(archs[a], "f32");
        json_t *pr = json_array_get(json_object_get(g, "prompts"), 2); /* paragraph */
        int n_ids;
        int32_t *ids = json_ids(json_object_get(pr, "ids"), &n_ids);
        pv_ctx *c = new_ctx_kv(m, 4096, PV_TYPE_F16);
        eval(c, ids, n_ids);
        double err = logits_rel_err(pv_ctx_logits(c, 0), m->hp.n_vocab, archs[a], pr);
        printf("  %-6s paragraph, f16 KV cache: logits rel err %.2e\n", archs[a], err);
        assert_true(err < 1e-2);
        free(ids);
        pv_ctx_free(c);
        pv_model_free(m);
        json_decref(g);
    }
}

static void test_ref_f32(void **state) {
    (void)state;
    for (size_t a = 0; a < PV_ARRAY_LEN(archs); a++) {
        json_t *g = load_json_for(archs[a], "ref_golden.json");
        pv_model *m = load_model(archs[a], "f32");
        json_t *prompts = json_object_get(g, "prompts");
        assert_int_equal(json_array_size(prompts), 3);
        for (size_t i = 0; i < json_array_size(prompts); i++)
            check_ref_prompt(m, archs[a], json_array_get(prompts, i), 4096);
        json_t *lp = json_object_get(g, "long_prompt");
        if (lp) check_ref_prompt(m, archs[a], lp, 8192); /* > original 4096: long factors */
        pv_model_free(m);
        json_decref(g);
    }
}

/* Quantized GGUF vs llama.cpp, teacher-forced along llama.cpp's greedy chain. */
static void check_llamacpp_prompt(pv_model *m, const char *arch, json_t *pr, int n_ctx, double tol,
                                  double *worst) {
    int n_ids;
    int32_t *ids = json_ids(json_object_get(pr, "ids"), &n_ids);
    pv_ctx *c = new_ctx(m, n_ctx);
    eval(c, ids, n_ids);
    json_t *steps = json_object_get(json_object_get(pr, "greedy"), "steps");
    int V = m->hp.n_vocab;
    double *p = malloc((size_t)V * sizeof *p);
    int n_top1_checked = 0;
    for (size_t s = 0; s < json_array_size(steps); s++) {
        json_t *st = json_array_get(steps, s);
        const float *lg = pv_ctx_logits(c, 0);
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, lg[i]);
        for (int i = 0; i < V; i++) sum += (p[i] = exp((double)lg[i] - mx));
        for (int i = 0; i < V; i++) p[i] /= sum;
        json_t *top5 = json_object_get(st, "top5");
        for (size_t k = 0; k < json_array_size(top5); k++) {
            json_t *e = json_array_get(top5, k);
            int id = (int)json_integer_value(json_array_get(e, 0));
            double their = json_number_value(json_array_get(e, 1));
            double d = fabs(p[id] - their);
            if (d > *worst) *worst = d;
            if (d > tol)
                printf("\n  %s %s step %zu id %d: ours %.5f theirs %.5f\n", arch,
                       json_string_value(json_object_get(pr, "name")), s, id, p[id], their);
            assert_true(d <= tol);
        }
        double p1 = json_number_value(json_array_get(json_array_get(top5, 0), 1));
        double p2 = json_number_value(json_array_get(json_array_get(top5, 1), 1));
        if (p1 - p2 > 0.01) {
            int want = (int)json_integer_value(json_array_get(json_array_get(top5, 0), 0));
            assert_int_equal(argmax(lg, V), want);
            n_top1_checked++;
        }
        int32_t next = (int32_t)json_integer_value(json_object_get(st, "id"));
        eval(c, &next, 1);
    }
    printf("  %-6s %-10s steps %zu, top-1 checked at %d\n", arch,
           json_string_value(json_object_get(pr, "name")), json_array_size(steps), n_top1_checked);
    free(p);
    free(ids);
    pv_ctx_free(c);
}

static void run_llamacpp(const char *type, double tol) {
    for (size_t a = 0; a < PV_ARRAY_LEN(archs); a++) {
        char name[64];
        snprintf(name, sizeof name, "llamacpp_golden_%s.json", type);
        json_t *g = load_json_for(archs[a], name);
        pv_model *m = load_model(archs[a], type);
        double worst = 0;
        json_t *prompts = json_object_get(g, "prompts");
        for (size_t i = 0; i < json_array_size(prompts); i++)
            check_llamacpp_prompt(m, archs[a], json_array_get(prompts, i), 4096, tol, &worst);
        json_t *lp = json_object_get(g, "long_prompt");
        if (lp) check_llamacpp_prompt(m, archs[a], lp, 8192, tol, &worst);
        printf("  %-6s %s: max |prob diff| over llama.cpp's top-5 = %.5f (tolerance %.2f)\n", archs[a], type, worst, tol);
        pv_model_free(m);
        json_decref(g);
    }
}

static void test_llamacpp_q8_0(void **state) {
    (void)state;
    run_llamacpp("q8_0", 0.01);
}

static void test_llamacpp_q4_0(void **state) {
    (void)state;
    run_llamacpp("q4_0", 0.02);
}

int main(void) {
    char *p = pv_test_fixture_path("llama/llama-f32.gguf");
    pv_test_require(p, "decompressed fixtures (make fixtures)");
    free(p);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_f32),
        cmocka_unit_test(test_ref_f32_kv_f16),
        cmocka_unit_test(test_llamacpp_q8_0),
        cmocka_unit_test(test_llamacpp_q4_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
