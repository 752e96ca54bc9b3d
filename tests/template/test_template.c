/* test_template.c — unit tests of the chat-template engine (src/template). The expected
 * outputs of the hand-written cases (tests/template/cases.json) are not stored anywhere: they
 * are rendered at test time by Python jinja2 with Hugging Face's settings (oracle.py --cases)
 * and compared byte for byte, errors included (raise_exception's message exactly, other
 * errors by jinja2's message). Also: error positions, limits (output, work, recursion,
 * nesting), fuzzing of the parser and renderer with random and mutated templates (must never
 * crash; ASan build checks memory), and concurrent renders of one parsed template. */
#include <pthread.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_test.h"
#include "template/pv_template.h"

static json_t *g_cases; /* array from oracle.py --cases */
static char *g_src_dir;

/* Runs the oracle and parses its JSON; exits 77 (or 1 under CI) when python/jinja2 is absent. */
static json_t *load_cases(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/template/oracle.py' --cases", g_src_dir);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    int st = pclose(p);
    if (!buf || st != 0) {
        free(buf);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) pv_test_require(NULL, "python3 with jinja2");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(buf, n, 0, &jerr);
    free(buf);
    return j;
}

static pv_status render_src(const char *src, size_t len, const json_t *ctx, char **out, size_t *out_len,
                            pv_error *err) {
    pv_template *t = NULL;
    *out = NULL;
    pv_status st = pv_template_parse(src, len, &t, err);
    if (st != PV_OK) return st;
    st = pv_template_render(t, ctx, out, out_len, err);
    pv_template_free(t);
    return st;
}

/* Every hand case must match jinja2: same bytes, or the same failure. */
static void test_oracle_cases(void **state) {
    (void)state;
    assert_non_null(g_cases);
    size_t i;
    json_t *c;
    int failures = 0, ok = 0;
    json_array_foreach(g_cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *tsrc = json_string_value(json_object_get(c, "template"));
        size_t tlen = json_string_length(json_object_get(c, "template"));
        const char *kind = json_string_value(json_object_get(c, "kind"));
        json_t *exp = json_object_get(c, "expected");
        const char *e = json_string_value(exp);
        size_t elen = json_string_length(exp);
        char *out = NULL;
        size_t out_len = 0;
        pv_error err = {0};
        pv_status st = render_src(tsrc, tlen, json_object_get(c, "context"), &out, &out_len, &err);
        bool good;
        if (!strcmp(kind, "ok")) {
            good = st == PV_OK && out_len == elen && !memcmp(out, e, elen);
            if (!good)
                fprintf(stderr, "case %s: expected [%s]\n   got (%s) [%s]\n", name, e, pv_status_name(st),
                        st == PV_OK ? out : err.msg);
        } else if (!strcmp(kind, "raise")) {
            good = st == PV_ERR_INVALID && !strcmp(err.msg, e);
            if (!good) fprintf(stderr, "case %s: expected raise [%s], got %s [%s]\n", name, e, pv_status_name(st), err.msg);
        } else {
            /* other errors: a FORMAT status whose message, after "line L, column C: ", is jinja2's
             * (syntax errors: only the status and the position prefix are checked) */
            bool syntax = !strncmp(e, "syntax: ", 8);
            const char *m = strstr(err.msg, ": ");
            good = st == PV_ERR_FORMAT && !strncmp(err.msg, "line ", 5) && m &&
                   (syntax || !strcmp(m + 2, e) || (strlen(err.msg) >= elen && !strcmp(err.msg + strlen(err.msg) - elen, e)));
            if (!good) fprintf(stderr, "case %s: expected error [%s], got %s [%s]\n", name, e, pv_status_name(st), err.msg);
        }
        failures += !good;
        ok += good;
        free(out);
    }
    fprintf(stderr, "template unit cases: %d identical to jinja2, %d mismatched\n", ok, failures);
    assert_int_equal(failures, 0);
    assert_true(ok >= 60);
}

static void expect_error(const char *src, const char *ctx_json, pv_status want, const char *msg_part) {
    json_t *ctx = json_loads(ctx_json, 0, NULL);
    assert_non_null(ctx);
    char *out = NULL;
    size_t n;
    pv_error err = {0};
    pv_status st = render_src(src, strlen(src), ctx, &out, &n, &err);
    if (st != want || !strstr(err.msg, msg_part))
        fprintf(stderr, "template %.60s: got %s [%s], want %s [%s]\n", src, pv_status_name(st), err.msg,
                pv_status_name(want), msg_part);
    assert_int_equal(st, want);
    assert_non_null(strstr(err.msg, msg_part));
    assert_null(out);
    json_decref(ctx);
}

/* Errors carry the line and column of the failing construct. */
static void test_error_positions(void **state) {
    (void)state;
    expect_error("ok\n  {{ 1 + }}", "{}", PV_ERR_FORMAT, "line 2, column 10: ");
    expect_error("a\nb {% for %}", "{}", PV_ERR_FORMAT, "line 2, column ");
    expect_error("{% if x %}\nunterminated", "{}", PV_ERR_FORMAT, "line 2");
    expect_error("x\n\n   {{ d.a.b }}", "{\"d\": {}}", PV_ERR_FORMAT, "line 3, column 10: 'dict object' has no attribute 'a'");
    expect_error("{{ 'unterminated }}", "{}", PV_ERR_FORMAT, "line 1, column 4");
    expect_error("{{ raise_exception('exact message') }}", "{}", PV_ERR_INVALID, "exact message");
}

/* Hostile templates hit a limit and fail cleanly instead of exhausting memory or time. */
static void test_limits(void **state) {
    (void)state;
    expect_error("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}", "{}", PV_ERR_RANGE,
                 "output exceeds");
    expect_error("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "{}", PV_ERR_RANGE, "nested too deeply");
    expect_error("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", "{}",
                 PV_ERR_RANGE, "work limit");
    /* a fresh 100000-element list per iteration runs into the memory cap instead */
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{}",
                 PV_ERR_RANGE, "memory limit");
    expect_error("{{ range(1000000) | length }}", "{}", PV_ERR_FORMAT, "Range too big");
    /* deep nesting: parentheses, lists, ifs */
    size_t depth = 5000;
    char *src = malloc(depth * 12 + 64);
    size_t n = 0;
    n += (size_t)sprintf(src + n, "{{ ");
    for (size_t i = 0; i < depth; i++) src[n++] = '(';
    src[n++] = '1';
    for (size_t i = 0; i < depth; i++) src[n++] = ')';
    n += (size_t)sprintf(src + n, " }}");
    src[n] = 0;
    expect_error(src, "{}", PV_ERR_FORMAT, "nested too deeply");
    n = 0;
    for (size_t i = 0; i < depth; i++) n += (size_t)sprintf(src + n, "{%% if 1 %%}");
    src[n] = 0;
    expect_error(src, "{}", PV_ERR_FORMAT, "nested too deeply");
    free(src);
}

static char *read_rel(const char *rel, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_src_dir, rel);
    return pv_test_read_file(path, len);
}

/* Random bytes and mutations of a real template: parse and render must return a status
 * (never crash, never leak: the ASan build checks). */
static void test_fuzz(void **state) {
    (void)state;
    size_t base_len = 0, ctx_len = 0;
    char *base = read_rel("tests/template/chatml_tools.jinja", &base_len);
    char *ctx_src = read_rel("tests/template/conversations/05_tool_calls_and_results.json", &ctx_len);
    assert_non_null(base);
    assert_non_null(ctx_src);
    json_t *ctx = json_loadb(ctx_src, ctx_len, 0, NULL);
    assert_non_null(ctx);
    static const char alphabet[] = "{}%#-+()[]|.,:'\"~ \n\tabcdefxyz_019=<>!*/ifendforsetmacroinnotisloop";
    /* PV_TEMPLATE_FUZZ_ITERS / _SEED allow longer one-off campaigns */
    const char *it_env = getenv("PV_TEMPLATE_FUZZ_ITERS"), *seed_env = getenv("PV_TEMPLATE_FUZZ_SEED");
    int iters = it_env ? atoi(it_env) : 3000;
    pv_test_rng rng;
    pv_test_rng_seed(&rng, seed_env ? strtoull(seed_env, NULL, 10) : 1234);
    size_t cap = base_len + 256;
    char *buf = malloc(cap);
    int rendered = 0, rejected = 0;
    for (int iter = 0; iter < iters; iter++) {
        size_t n;
        if (iter % 2 == 0) {
            n = pv_test_rng_u64(&rng) % 160;
            for (size_t i = 0; i < n; i++) {
                uint64_t r = pv_test_rng_u64(&rng);
                buf[i] = (r & 7) == 0 ? (char)(r >> 8) : alphabet[(r >> 8) % (sizeof alphabet - 1)];
            }
        } else {
            memcpy(buf, base, base_len);
            n = base_len;
            int muts = 1 + (int)(pv_test_rng_u64(&rng) % 4);
            for (int m = 0; m < muts; m++) {
                uint64_t r = pv_test_rng_u64(&rng);
                size_t pos = n ? (size_t)(r % n) : 0;
                switch ((r >> 32) % 3) {
                case 0: buf[pos] = alphabet[(r >> 40) % (sizeof alphabet - 1)]; break;
                case 1: /* delete a span */
                    if (n) {
                        size_t span = PV_MIN((size_t)((r >> 40) % 8 + 1), n - pos);
                        memmove(buf + pos, buf + pos + span, n - pos - span);
                        n -= span;
                    }
                    break;
                default: /* duplicate a span */
                    if (n + 16 < cap) {
                        size_t span = PV_MIN((size_t)((r >> 40) % 16 + 1), n - pos);
                        memmove(buf + pos + span, buf + pos, n - pos);
                        n += span;
                    }
                }
            }
        }
        pv_template *t = NULL;
        pv_error err = {0};
        pv_status st = pv_template_parse(buf, n, &t, &err);
        if (st != PV_OK) {
            assert_null(t);
            assert_int_equal(st, PV_ERR_FORMAT);
            assert_memory_equal(err.msg, "line ", 5);
            rejected++;
            continue;
        }
        char *out = NULL;
        size_t out_len = 0;
        st = pv_template_render(t, ctx, &out, &out_len, &err);
        if (st == PV_OK) {
            assert_non_null(out);
            assert_int_equal(out[out_len], 0); /* NUL-terminated after the text */
            rendered++;
        } else {
            assert_null(out);
            assert_true(st == PV_ERR_FORMAT || st == PV_ERR_INVALID || st == PV_ERR_RANGE);
        }
        free(out);
        pv_template_free(t);
    }
    fprintf(stderr, "fuzz: %d rendered, %d rejected by the parser\n", rendered, rejected);
    assert_true(rendered > 0 && rejected > 0);
    free(buf);
    json_decref(ctx);
    free(base);
    free(ctx_src);
}

/* Real templates over contexts whose fields have the wrong types or odd values (what a
 * hostile API request could send): every render returns a status, never crashes. */
static void test_fuzz_context(void **state) {
    (void)state;
    static const char *const tpl_files[] = {"tests/template/chatml_tools.jinja",
                                            "tests/template/typescript_tools.jinja",
                                            "tests/template/llama31_tools.jinja"};
    static const char *const pool[] = {
        "null", "5", "-1.5e300", "true", "\"\"", "\"tool\"", "\"assistant\"", "[]", "{}",
        "[{\"type\":\"text\",\"text\":\"x\"}]", "[1,[2,[3]]]", "{\"function\":{}}",
        "[{\"function\":{\"name\":null,\"arguments\":[1]}}]", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"x\",1]}}}"};
    static const char *const fields[] = {"role", "content", "tool_calls", "name", "function", "parameters"};
    size_t cl = 0;
    char *cs = read_rel("tests/template/conversations/05_tool_calls_and_results.json", &cl);
    assert_non_null(cs);
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 77);
    int ok = 0, failed = 0;
    for (size_t ti = 0; ti < PV_ARRAY_LEN(tpl_files); ti++) {
        size_t tl = 0;
        char *src = read_rel(tpl_files[ti], &tl);
        assert_non_null(src);
        pv_template *t = NULL;
        pv_error err;
        assert_int_equal(pv_template_parse(src, tl, &t, &err), PV_OK);
        for (int iter = 0; iter < 300; iter++) {
            json_t *ctx = json_loadb(cs, cl, 0, NULL);
            json_t *msgs = json_object_get(ctx, "messages"), *tools = json_object_get(ctx, "tools");
            int muts = 1 + (int)(pv_test_rng_u64(&rng) % 3);
            for (int m = 0; m < muts; m++) {
                uint64_t r = pv_test_rng_u64(&rng);
                json_t *target = (r & 1) ? json_array_get(msgs, (r >> 8) % json_array_size(msgs))
                                         : json_array_get(tools, (r >> 8) % json_array_size(tools));
                json_t *val = json_loads(pool[(r >> 16) % PV_ARRAY_LEN(pool)], JSON_DECODE_ANY, NULL);
                assert_non_null(val);
                if (json_is_object(target))
                    json_object_set_new(target, fields[(r >> 24) % PV_ARRAY_LEN(fields)], val);
                else if ((r >> 32) % 4 == 0)
                    json_object_set_new(ctx, (r >> 40) % 2 ? "messages" : "tools", val);
                else
                    json_decref(val);
            }
            char *out = NULL;
            size_t n;
            pv_status st = pv_template_render(t, ctx, &out, &n, &err);
            if (st == PV_OK) {
                assert_non_null(out);
                ok++;
            } else {
                assert_null(out);
                assert_true(st == PV_ERR_FORMAT || st == PV_ERR_INVALID);
                failed++;
            }
            free(out);
            json_decref(ctx);
        }
        pv_template_free(t);
        free(src);
    }
    fprintf(stderr, "context fuzz: %d rendered, %d failed cleanly\n", ok, failed);
    assert_true(ok > 0 && failed > 0);
    free(cs);
}

typedef struct {
    const pv_template *t;
    const json_t *ctx;
    const char *want;
    size_t want_len;
    int mismatches;
} thread_arg;

static void *render_many(void *p) {
    thread_arg *a = p;
    for (int i = 0; i < 40; i++) {
        char *out = NULL;
        size_t n = 0;
        pv_error err;
        if (pv_template_render(a->t, a->ctx, &out, &n, &err) != PV_OK || n != a->want_len ||
            memcmp(out, a->want, n))
            a->mismatches++;
        free(out);
    }
    return NULL;
}

/* One parsed template rendered by several threads at once gives the same text everywhere. */
static void test_threads(void **state) {
    (void)state;
    size_t tl = 0, cl = 0;
    char *src = read_rel("tests/template/chatml_tools.jinja", &tl);
    char *cs = read_rel("tests/template/conversations/08_non_ascii.json", &cl);
    assert_non_null(src);
    assert_non_null(cs);
    json_t *ctx = json_loadb(cs, cl, 0, NULL);
    pv_template *t = NULL;
    pv_error err;
    assert_int_equal(pv_template_parse(src, tl, &t, &err), PV_OK);
    char *want = NULL;
    size_t want_len = 0;
    assert_int_equal(pv_template_render(t, ctx, &want, &want_len, &err), PV_OK);
    assert_true(want_len > 100);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){t, ctx, want, want_len, 0};
        assert_int_equal(pthread_create(&th[i], NULL, render_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].mismatches, 0);
    }
    free(want);
    pv_template_free(t);
    json_decref(ctx);
    free(src);
    free(cs);
}

int main(void) {
    const char *src = getenv("PENSIEVE_SRC");
    g_src_dir = strdup(src ? src : ".");
    g_cases = load_cases();
    if (!g_cases) {
        fprintf(stderr, "could not run tests/template/oracle.py --cases (python3 + jinja2 needed)\n");
        pv_test_require(NULL, "the jinja2 oracle (python3 with jinja2)");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_cases), cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_fuzz_context), cmocka_unit_test(test_threads),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(g_cases);
    free(g_src_dir);
    return rc;
}
