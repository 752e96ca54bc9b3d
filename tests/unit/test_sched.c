/* test_sched.c — the continuous-batching scheduler on the real stories260K model:
 *  - greedy from BOS gives the MANIFEST's text (independent oracle) through the scheduler;
 *  - isolation: six different prompts run concurrently (four slots, two queued) each give
 *    exactly the text they give when run alone;
 *  - a stop string ends the text right before it (finish STOP, its index);
 *  - max_tokens, cancellation (slot freed, next job fine), overload, prompt too long. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_test.h"
#include "sched/pv_sched.h"

static pv_model *model;
static pv_tokenizer *tok;
static char *manifest_text;

typedef struct {
    char text[8192];
    size_t len;
    pv_finish finish;
    int stop_index, n_gen;
} result;

static pv_gen_params greedy(const int32_t *ids, int n, int max_tokens) {
    pv_gen_params g = {0};
    g.prompt = ids;
    g.n_prompt = n;
    g.max_tokens = max_tokens;
    g.sampling = pv_sampler_params_default();
    g.sampling.temperature = 0;
    return g;
}

static void collect(pv_job *j, result *r) {
    r->len = 0;
    bool done = false;
    while (!done) {
        size_t len;
        assert_int_equal(pv_job_wait(j, 5.0, r->text + r->len, sizeof r->text - 1 - r->len, &len, &done), PV_OK);
        r->len += len;
    }
    r->text[r->len] = '\0';
    r->finish = pv_job_finish(j, &r->stop_index, NULL, &r->n_gen);
}

static void run_one(pv_sched *s, const char *prompt, int max_tokens, result *r) {
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(pv_tokenizer_encode(tok, prompt, strlen(prompt), true, false, &ids, &n, NULL), PV_OK);
    pv_gen_params g = greedy(ids, (int)n, max_tokens);
    pv_job *j = NULL;
    pv_error err = {0};
    pv_status st = pv_sched_submit(s, &g, &j, &err);
    if (st != PV_OK) fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    free(ids);
    collect(j, r);
    pv_job_release(j);
}

static pv_sched *new_sched(int parallel, int queue) {
    pv_sched_params p = pv_sched_params_default();
    p.n_parallel = parallel;
    p.n_queue_max = queue;
    p.n_ctx = 1024;
    p.n_batch = 64; /* small, so prompts are chunked between decode steps */
    pv_sched *s = NULL;
    pv_error err = {0};
    assert_int_equal(pv_sched_new(model, tok, &p, &s, &err), PV_OK);
    return s;
}

static void test_oracle_text(void **state) {
    (void)state;
    pv_sched *s = new_sched(2, 4);
    static result r;
    run_one(s, "", 256, &r); /* BOS only */
    assert_int_equal(r.finish, PV_FINISH_LENGTH);
    assert_int_equal(r.n_gen, 256);
    printf("  %.60s...\n", r.text);
    assert_memory_equal(r.text, manifest_text, strlen(manifest_text));
    pv_sched_free(s);
}

static const char *const prompts[6] = {"Once upon a time", "Lily and Ben", "The dog was",
                                       "One day, a bird", "Tom had a big red", "She said"};

typedef struct {
    pv_sched *s;
    int i;
    result r;
} thread_arg;

static void *client(void *arg) {
    thread_arg *a = arg;
    run_one(a->s, prompts[a->i], 48 + 7 * a->i, &a->r);
    return NULL;
}

static void test_isolation(void **state) {
    (void)state;
    static result alone[6];
    pv_sched *s = new_sched(4, 8);
    for (int i = 0; i < 6; i++) run_one(s, prompts[i], 48 + 7 * i, &alone[i]);
    static thread_arg args[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        args[i].s = s;
        args[i].i = i;
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(args[i].r.n_gen, alone[i].n_gen);
        assert_string_equal(args[i].r.text, alone[i].text);
    }
    int active, queued;
    pv_sched_counts(s, &active, &queued);
    assert_int_equal(active, 0);
    assert_int_equal(queued, 0);
    pv_sched_free(s);
}

static void test_stop_and_length(void **state) {
    (void)state;
    pv_sched *s = new_sched(2, 4);
    int32_t bos = pv_tokenizer_bos(tok);
    const char *stops[] = {"zzz", "Lily"};
    pv_gen_params g = greedy(&bos, 1, 200);
    g.stops = stops;
    g.n_stops = 2;
    pv_job *j = NULL;
    assert_int_equal(pv_sched_submit(s, &g, &j, NULL), PV_OK);
    static result r;
    collect(j, &r);
    pv_job_release(j);
    assert_int_equal(r.finish, PV_FINISH_STOP);
    assert_int_equal(r.stop_index, 1);
    const char *at = strstr(manifest_text, "Lily");
    assert_non_null(at);
    assert_int_equal(r.len, (size_t)(at - manifest_text));
    assert_memory_equal(r.text, manifest_text, r.len);

    run_one(s, "Once", 5, &r);
    assert_int_equal(r.finish, PV_FINISH_LENGTH);
    assert_int_equal(r.n_gen, 5);
    pv_sched_free(s);
}

static void test_cancel_overload_too_long(void **state) {
    (void)state;
    pv_sched *s = new_sched(1, 1);
    int32_t bos = pv_tokenizer_bos(tok);
    pv_gen_params g = greedy(&bos, 1, 1000);
    pv_job *a = NULL, *b = NULL, *c = NULL;
    pv_error err = {0};
    assert_int_equal(pv_sched_submit(s, &g, &a, &err), PV_OK);
    assert_int_equal(pv_sched_submit(s, &g, &b, &err), PV_OK);
    assert_int_equal(pv_sched_submit(s, &g, &c, &err), PV_ERR_OVERLOADED);
    assert_null(c);
    /* cancel the running one after its first text: it ends CANCELLED, b then runs */
    char buf[64];
    size_t len = 0;
    bool done = false;
    while (len == 0 && !done) pv_job_wait(a, 5.0, buf, sizeof buf, &len, &done);
    pv_job_cancel(a);
    static result r;
    collect(a, &r);
    assert_int_equal(r.finish, PV_FINISH_CANCELLED);
    assert_true(r.n_gen < 1000);
    pv_job_release(a);
    pv_job_release(b); /* released while queued or running: must not leak or hang */
    run_one(s, "Once upon", 3, &r);
    assert_int_equal(r.finish, PV_FINISH_LENGTH);
    /* a prompt that does not fit the context */
    static int32_t ids[1100];
    for (int i = 0; i < 1100; i++) ids[i] = bos;
    g = greedy(ids, 1100, 1);
    assert_int_equal(pv_sched_submit(s, &g, &c, &err), PV_ERR_RANGE);
    assert_non_null(strstr(err.msg, "prompt is too long: 1100 tokens > 1023 maximum"));
    pv_sched_free(s);
}

/* The MANIFEST's story text (first code block after "reproduces **exactly**"). */
static char *load_manifest_text(void) {
    char *p = pv_test_data_path("models/MANIFEST.md");
    pv_test_require(p, "models/MANIFEST.md");
    char *all = pv_test_read_file(p, NULL);
    free(p);
    char *at = strstr(all, "reproduces **exactly**");
    at = strstr(at, "```\n") + 4;
    char *end = strstr(at, "\n```");
    char *t = strndup(at, (size_t)(end - at));
    free(all);
    return t;
}

int main(void) {
    char *path = pv_test_data_path("models/stories260K.gguf");
    pv_test_require(path, "models/stories260K.gguf");
    manifest_text = load_manifest_text();
    pv_error err = {0};
    if (pv_model_load(path, NULL, &model, &err) != PV_OK || pv_tokenizer_init(model->file, &tok, &err) != PV_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    free(path);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_text),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_stop_and_length),
        cmocka_unit_test(test_cancel_overload_too_long),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pv_tokenizer_free(tok);
    pv_model_free(model);
    free(manifest_text);
    return rc;
}
