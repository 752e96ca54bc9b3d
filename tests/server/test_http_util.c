/* test_http_util.c — unit tests of the server's response helpers: the status → error type
 * table against the contract's table (spec/anthropic-messages.md "Errors"), both error body
 * shapes (parsed back with jansson), OpenAI's 529 → 503, JSON request parsing with
 * line/column diagnostics, request-id format and uniqueness, and the API-key comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/pv_server.h"

/* Parses resp's body (must be JSON); the caller owns the result. */
static json_t *body_json(const pv_http_response *r) {
    assert_non_null(r->body);
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_anthropic_types_match_contract(void **state) {
    (void)state;
    /* The contract's table, typed from the spec, not from our code. */
    static const struct { int status; const char *type; } spec[] = {
        {400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
        {404, "not_found_error"},       {413, "request_too_large"},    {429, "rate_limit_error"},
        {500, "api_error"},             {529, "overloaded_error"},
    };
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
        assert_string_equal(pv_http_anthropic_error_type(spec[i].status), spec[i].type);
    /* Unlisted statuses fall back by class. */
    assert_string_equal(pv_http_anthropic_error_type(418), "invalid_request_error");
    assert_string_equal(pv_http_anthropic_error_type(502), "api_error");
}

static void test_anthropic_shape(void **state) {
    (void)state;
    pv_http_response r = {0};
    pv_http_error_anthropic(&r, 404, "req_abc", "no such \"thing\"");
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/json");
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "not_found_error");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "no such \"thing\"");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req_abc");
    assert_int_equal(json_object_size(j), 3);
    json_decref(j);
    free(r.body);
}

static void test_openai_shape(void **state) {
    (void)state;
    pv_http_response r = {0};
    pv_http_error_openai(&r, 401, NULL, NULL, NULL, "bad key");
    json_t *j = body_json(&r);
    json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "bad key");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "invalid_api_key");
    assert_true(json_is_null(json_object_get(e, "param")));
    json_decref(j);
    /* Explicit type/code/param win; the old body is freed (ASan checks the leak). */
    pv_http_error_openai(&r, 400, "invalid_request_error", NULL, "messages", "x");
    j = body_json(&r);
    e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "param")), "messages");
    assert_true(json_is_null(json_object_get(e, "code")));
    json_decref(j);
    free(r.body);
}

static void test_error_by_family(void **state) {
    (void)state;
    pv_http_request req = {0};
    req.request_id = "req_123456789012345678901234";
    pv_http_response r = {0};
    req.api = PV_API_OPENAI;
    pv_http_error(&req, &r, 529, "queue full (%d waiting)", 7);
    assert_int_equal(r.status, 503); /* OpenAI clients know 503 */
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "queue full (7 waiting)");
    json_decref(j);
    req.api = PV_API_ANTHROPIC;
    pv_http_error(&req, &r, 529, "queue full");
    assert_int_equal(r.status, 529);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                        "overloaded_error");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), req.request_id);
    json_decref(j);
    free(r.body);
}

static int g_stream_frees;
static void count_free(void *cls) {
    (void)cls;
    g_stream_frees++;
}

static void test_error_replaces_stream(void **state) {
    (void)state;
    pv_http_response r = {0};
    r.stream = (pv_http_stream_fn)1; /* never called */
    r.stream_free = count_free;
    g_stream_frees = 0;
    pv_http_error_anthropic(&r, 500, "req_x", "boom");
    assert_int_equal(g_stream_frees, 1);
    assert_null(r.stream);
    assert_int_equal(r.status, 500);
    free(r.body);
}

/* A request with `body` and the Anthropic family. */
static pv_http_request req_with(const char *body) {
    pv_http_request q = {0};
    q.body = body;
    q.body_len = strlen(body);
    q.request_id = "req_t";
    q.api = PV_API_ANTHROPIC;
    return q;
}

static void expect_400_containing(const char *body, const char *needle) {
    pv_http_request q = req_with(body);
    pv_http_response r = {0};
    assert_null(pv_http_request_json(&q, &r));
    assert_int_equal(r.status, 400);
    json_t *j = body_json(&r);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    if (!strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    json_decref(j);
    free(r.body);
}

static void test_request_json(void **state) {
    (void)state;
    /* The error is on line 3 (the missing value before '}'). */
    expect_400_containing("{\n  \"a\": 1,\n  \"b\": }", "line 3");
    expect_400_containing("", "empty");
    expect_400_containing("[1,2]", "JSON object");
    expect_400_containing("{\"a\":1} trailing", "line 1");
    expect_400_containing("{\"s\":\"\xff\xfe\"}", "line 1"); /* invalid UTF-8 */
    pv_http_request q = req_with("{\"model\":\"m\",\"n\":[1,2,3]}");
    pv_http_response r = {0};
    json_t *j = pv_http_request_json(&q, &r);
    assert_non_null(j);
    assert_int_equal(r.status, 0); /* untouched on success */
    assert_null(r.body);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "m");
    assert_int_equal(json_array_size(json_object_get(j, "n")), 3);
    json_decref(j);
}

static int cmp_ids(const void *a, const void *b) { return strcmp(a, b); }

static void test_request_ids(void **state) {
    (void)state;
    enum { N = 2000 };
    char(*ids)[29] = calloc(N, sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        pv_http_request_id_new(ids[i]);
        assert_int_equal(strlen(ids[i]), 28);
        assert_memory_equal(ids[i], "req_", 4);
        for (int k = 4; k < 28; k++) {
            char c = ids[i][k];
            assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
        }
    }
    qsort(ids, N, sizeof *ids, cmp_ids);
    for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_key_equal(void **state) {
    (void)state;
    assert_true(pv_http_key_equal("pensieve-local-key", "pensieve-local-key"));
    assert_false(pv_http_key_equal("pensieve-local-kez", "pensieve-local-key"));
    assert_false(pv_http_key_equal("pensieve-local-ke", "pensieve-local-key"));
    assert_false(pv_http_key_equal("pensieve-local-keyy", "pensieve-local-key"));
    assert_false(pv_http_key_equal("", "pensieve-local-key"));
    assert_false(pv_http_key_equal(NULL, "pensieve-local-key"));
    assert_false(pv_http_key_equal("x", NULL));
    assert_true(pv_http_key_equal("", ""));
}

static void test_client_gone(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_false(pv_http_client_gone(sv[0]));
    /* Unread data from a live peer is not a hang-up. */
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_false(pv_http_client_gone(sv[0]));
    close(sv[1]);
    assert_true(pv_http_client_gone(sv[0]));
    close(sv[0]);
    assert_false(pv_http_client_gone(-1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_types_match_contract),
        cmocka_unit_test(test_anthropic_shape),
        cmocka_unit_test(test_openai_shape),
        cmocka_unit_test(test_error_by_family),
        cmocka_unit_test(test_error_replaces_stream),
        cmocka_unit_test(test_request_json),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_key_equal),
        cmocka_unit_test(test_client_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
