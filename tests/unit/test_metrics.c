/* test_metrics.c — unit tests of the logging layer (src/core: JSON lines and text format
 * with fields, level filtering, the log file's size-based rotation, lines from many
 * threads) and of the metrics registry (src/server/metrics.c: histogram buckets, the
 * per-request record's log line and counters, the exposition text). JSON lines are checked
 * with jansson (an independent parser); expected numbers come from the inputs the tests
 * chose (counts by a naive loop, rates by arithmetic), never from the code's own output. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pv_test.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/pv_core.h"
#include "server/pv_metrics.h"

/* ---- helpers ---- */

static char g_dir[256];

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/pv_test_metrics_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown_dir(void **state) {
    (void)state;
    pv_log_file_close();
    pv_log_set_format(PV_LOG_FORMAT_TEXT);
    pv_log_set_level(PV_LOG_INFO);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void path_in_dir(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static off_t file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Splits a file into its lines (each NUL-terminated, without '\n'); returns the count.
 * *buf owns the storage. Every line must end in '\n'. */
static size_t read_lines(const char *path, char **buf, char ***lines) {
    size_t size = 0;
    *buf = pv_test_read_file(path, &size);
    assert_non_null(*buf);
    size_t n = 0, cap = 16;
    *lines = malloc(cap * sizeof **lines);
    char *p = *buf;
    while (p < *buf + size) {
        char *nl = memchr(p, '\n', (size_t)(*buf + size - p));
        assert_non_null(nl); /* a line without its newline: a torn write */
        *nl = '\0';
        if (n == cap) *lines = realloc(*lines, (cap *= 2) * sizeof **lines);
        (*lines)[n++] = p;
        p = nl + 1;
    }
    return n;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ" and that it is within 60 s of now. */
static void assert_rfc3339_now(const char *t) {
    assert_int_equal(strlen(t), 24);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_true(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' && rest[2] <= '9' &&
                rest[3] >= '0' && rest[3] <= '9' && rest[4] == 'Z' && rest[5] == '\0');
    time_t then = timegm(&tm);
    assert_true(llabs((long long)(time(NULL) - then)) <= 60);
}

/* ---- JSON lines ---- */

static void test_json_lines(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "j.log");
    pv_error err = {0};
    assert_int_equal(pv_log_file_open(path, 0, 3, false, &err), PV_OK);
    pv_log_set_format(PV_LOG_FORMAT_JSON);
    pv_log_set_level(PV_LOG_DEBUG);

    PV_LOG_I("server", "plain message");
    PV_LOG_W("comp\"x", "quote \" backslash \\ newline \n tab \t ctl \x01 end");
    PV_LOG_E("bad", "invalid utf8 \xff\xfe and overlong \xc0\xaf and ok \xc3\xa9");
    pv_log_field f[] = {PV_LF_STR("s", "a \"b\"\n"), PV_LF_INT("i", -42), PV_LF_DBL("d", 0.25),
                        PV_LF_BOOL("b", true), PV_LF_DBL("nan", NAN), PV_LF_STR("null", NULL)};
    pv_log_fields(PV_LOG_INFO, "http", f, PV_ARRAY_LEN(f), "with %d fields", 6);
    PV_LOG_T("hidden", "trace is above debug: not written");
    /* a message far over the line limit, then fields that cannot fit */
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    big[5000] = '\xc3'; /* a 2-byte character across any cut point near here */
    big[5001] = '\xa9';
    pv_log_field bf[] = {PV_LF_STR("k", big), PV_LF_INT("after", 1)};
    pv_log_fields(PV_LOG_INFO, "big", bf, 2, "%s", big);

    char *buf;
    char **lines;
    size_t n = read_lines(path, &buf, &lines);
    assert_int_equal(n, 5);
    const char *levels[] = {"info", "warn", "error", "info", "info"};
    const char *comps[] = {"server", "comp\"x", "bad", "http", "big"};
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        json_t *j = json_loads(lines[i], 0, &je);
        if (!j) fail_msg("line %zu is not JSON: %s (%s)", i, je.text, lines[i]);
        assert_true(json_is_object(j));
        assert_int_equal(json_object_size(j), 5);
        assert_rfc3339_now(json_string_value(json_object_get(j, "time")));
        assert_string_equal(json_string_value(json_object_get(j, "level")), levels[i]);
        assert_string_equal(json_string_value(json_object_get(j, "component")), comps[i]);
        assert_true(json_is_string(json_object_get(j, "message")));
        assert_true(json_is_object(json_object_get(j, "fields")));
        const char *msg = json_string_value(json_object_get(j, "message"));
        json_t *fl = json_object_get(j, "fields");
        switch (i) {
        case 0:
            assert_string_equal(msg, "plain message");
            assert_int_equal(json_object_size(fl), 0);
            break;
        case 1: assert_string_equal(msg, "quote \" backslash \\ newline \n tab \t ctl \x01 end"); break;
        case 2:
            /* each invalid byte becomes U+FFFD (EF BF BD); valid é stays */
            assert_string_equal(msg, "invalid utf8 \xef\xbf\xbd\xef\xbf\xbd and overlong \xef\xbf\xbd\xef\xbf\xbd and ok \xc3\xa9");
            break;
        case 3:
            assert_string_equal(msg, "with 6 fields");
            assert_int_equal(json_object_size(fl), 6);
            assert_string_equal(json_string_value(json_object_get(fl, "s")), "a \"b\"\n");
            assert_int_equal(json_integer_value(json_object_get(fl, "i")), -42);
            assert_true(json_real_value(json_object_get(fl, "d")) == 0.25);
            assert_true(json_is_true(json_object_get(fl, "b")));
            assert_true(json_is_null(json_object_get(fl, "nan")));
            assert_true(json_is_null(json_object_get(fl, "null")));
            break;
        case 4: {
            /* cut, but valid JSON under 8 KiB; the message is a prefix of the original */
            assert_true(strlen(lines[i]) < 8192);
            size_t ml = strlen(msg);
            assert_true(ml > 1000 && ml < 8192);
            assert_memory_equal(msg, big, ml);
            assert_int_equal(json_object_size(fl), 0); /* neither field fits after it */
            break;
        }
        }
        json_decref(j);
    }
    free(big);
    free(lines);
    free(buf);
}

/* ---- text format ---- */

static void test_text_fields_and_levels(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "t.log");
    pv_error err = {0};
    assert_int_equal(pv_log_file_open(path, 0, 1, false, &err), PV_OK);
    pv_log_set_format(PV_LOG_FORMAT_TEXT);
    pv_log_set_level(PV_LOG_WARN);
    PV_LOG_I("x", "info is filtered at warn");
    pv_log_field f[] = {PV_LF_STR("route", "/v1/messages"), PV_LF_STR("q", "two words \"q\""),
                        PV_LF_INT("n", 7), PV_LF_STR("e", "")};
    pv_log_fields(PV_LOG_WARN, "http", f, PV_ARRAY_LEN(f), "hello");
    pv_log_set_level(PV_LOG_INFO);
    PV_LOG_I("x", "now info passes");

    char *buf;
    char **lines;
    size_t n = read_lines(path, &buf, &lines);
    assert_int_equal(n, 2);
    /* a file gets the time first */
    assert_rfc3339_now(strndupa(lines[0], 24));
    assert_string_equal(lines[0] + 24,
                        " [warn] http: hello route=/v1/messages q=\"two words \\\"q\\\"\" n=7 e=\"\"");
    assert_string_equal(lines[1] + 24, " [info] x: now info passes");
    free(lines);
    free(buf);

    pv_log_level lv;
    pv_log_format lf;
    assert_true(pv_log_level_parse("TRACE", &lv) && lv == PV_LOG_TRACE);
    assert_false(pv_log_level_parse("verbose", &lv));
    assert_true(pv_log_format_parse("json", &lf) && lf == PV_LOG_FORMAT_JSON);
    assert_false(pv_log_format_parse("xml", &lf));
    assert_int_equal(pv_log_file_open("/nonexistent-dir/x.log", 0, 1, false, &err), PV_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.log"));
}

/* ---- rotation ---- */

static void test_rotation(void **state) {
    (void)state;
    char path[512], p1[600], p2[600], p3[600];
    path_in_dir(path, sizeof path, "r.log");
    snprintf(p1, sizeof p1, "%s.1", path);
    snprintf(p2, sizeof p2, "%s.2", path);
    snprintf(p3, sizeof p3, "%s.3", path);
    const uint64_t max = 300;
    pv_error err = {0};
    assert_int_equal(pv_log_file_open(path, max, 2, false, &err), PV_OK);
    pv_log_set_format(PV_LOG_FORMAT_JSON);
    const int N = 60;
    for (int i = 0; i < N; i++) {
        pv_log_field f = PV_LF_INT("seq", i);
        pv_log_fields(PV_LOG_INFO, "rot", &f, 1, "line");
    }
    assert_true(file_exists(path) && file_exists(p1) && file_exists(p2));
    assert_false(file_exists(p3)); /* keep_files = 2 */
    const char *order[] = {p2, p1, path}; /* oldest first */
    int expect = -1, total = 0;
    for (int k = 0; k < 3; k++) {
        assert_true(file_size(order[k]) > 0 && file_size(order[k]) <= (off_t)max);
        char *buf;
        char **lines;
        size_t n = read_lines(order[k], &buf, &lines);
        for (size_t i = 0; i < n; i++) {
            json_t *j = json_loads(lines[i], 0, NULL);
            assert_non_null(j);
            int seq = (int)json_integer_value(json_object_get(json_object_get(j, "fields"), "seq"));
            if (expect >= 0) assert_int_equal(seq, expect); /* no line lost or repeated */
            expect = seq + 1;
            total++;
            json_decref(j);
        }
        free(lines);
        free(buf);
    }
    assert_int_equal(expect, N); /* the newest line is in the live file */
    assert_true(total < N);      /* older files were dropped */

    /* keep 0: the file is emptied instead, never grows past max */
    char z[512];
    path_in_dir(z, sizeof z, "z.log");
    assert_int_equal(pv_log_file_open(z, max, 0, false, &err), PV_OK);
    for (int i = 0; i < N; i++) PV_LOG_I("rot", "zero keep %d", i);
    char z1[600];
    snprintf(z1, sizeof z1, "%s.1", z);
    assert_false(file_exists(z1));
    assert_true(file_size(z) > 0 && file_size(z) <= (off_t)max);
    /* reopening appends to what is there */
    off_t before = file_size(z);
    pv_log_file_close();
    assert_int_equal(pv_log_file_open(z, 1 << 20, 0, false, &err), PV_OK);
    PV_LOG_I("rot", "appended");
    assert_true(file_size(z) > before);
}

/* ---- many threads ---- */

enum { N_THREADS = 4, N_PER_THREAD = 300 };

static void *log_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < N_PER_THREAD; i++) {
        pv_log_field f[] = {PV_LF_INT("thread", id), PV_LF_INT("i", i)};
        pv_log_fields(PV_LOG_INFO, "mt", f, 2, "thread %d line %d padding padding padding", id, i);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "mt.log");
    pv_error err = {0};
    /* rotation on (keep many) so rotations race with writers too */
    assert_int_equal(pv_log_file_open(path, 16 * 1024, 100, false, &err), PV_OK);
    pv_log_set_format(PV_LOG_FORMAT_JSON);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i);
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    pv_log_file_close();
    int next[N_THREADS] = {0};
    int total = 0;
    /* oldest to newest: path.K … path.1, path */
    for (int k = 100; k >= 0; k--) {
        char p[600];
        if (k) snprintf(p, sizeof p, "%s.%d", path, k);
        else snprintf(p, sizeof p, "%s", path);
        if (!file_exists(p)) continue;
        char *buf;
        char **lines;
        size_t n = read_lines(p, &buf, &lines);
        for (size_t i = 0; i < n; i++) {
            json_t *j = json_loads(lines[i], 0, NULL);
            if (!j) fail_msg("torn line: %s", lines[i]);
            json_t *fl = json_object_get(j, "fields");
            int id = (int)json_integer_value(json_object_get(fl, "thread"));
            assert_true(id >= 0 && id < N_THREADS);
            assert_int_equal(json_integer_value(json_object_get(fl, "i")), next[id]); /* per-thread order */
            next[id]++;
            total++;
            json_decref(j);
        }
        free(lines);
        free(buf);
    }
    assert_int_equal(total, N_THREADS * N_PER_THREAD);
}

/* ---- histogram ---- */

static void test_histogram(void **state) {
    (void)state;
    const double bounds[] = {0.01, 0.1, 1, 10};
    pv_histogram h;
    assert_int_equal(pv_histogram_init(&h, bounds, 4, NULL), PV_OK);
    const double vals[] = {0.001, 0.01, 0.0100001, 0.1, 0.5, 1, 9.99, 10, 10.5, 1e9, -3, 0.05};
    double sum = 0;
    for (size_t i = 0; i < PV_ARRAY_LEN(vals); i++) {
        pv_histogram_observe(&h, vals[i]);
        sum += vals[i];
    }
    pv_histogram_observe(&h, NAN); /* ignored */
    assert_int_equal(h.count, PV_ARRAY_LEN(vals));
    assert_true(fabs(h.sum - sum) < 1e-6);
    /* oracle: count values <= bound (le is inclusive) */
    for (size_t b = 0; b <= 4; b++) {
        uint64_t want = 0;
        for (size_t i = 0; i < PV_ARRAY_LEN(vals); i++)
            if (b == 4 || vals[i] <= bounds[b]) want++;
        assert_int_equal(pv_histogram_cumulative(&h, b), want);
    }
    pv_error err = {0};
    const double bad1[] = {1, 1};
    const double bad2[] = {1, INFINITY};
    const double bad3[] = {2, 1};
    assert_int_equal(pv_histogram_init(&h, bad1, 2, &err), PV_ERR_INVALID);
    assert_int_equal(pv_histogram_init(&h, bad2, 2, &err), PV_ERR_INVALID);
    assert_int_equal(pv_histogram_init(&h, bad3, 2, &err), PV_ERR_INVALID);
    double many[PV_HISTOGRAM_MAX_BOUNDS + 1];
    for (size_t i = 0; i < PV_ARRAY_LEN(many); i++) many[i] = (double)i;
    assert_int_equal(pv_histogram_init(&h, many, PV_ARRAY_LEN(many), &err), PV_ERR_RANGE);
}

/* ---- registry + per-request record ---- */

/* The value of the sample line that starts with `prefix` followed by a space, or NAN. */
static double sample(const char *text, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return NAN;
}

static void fake_gauges(void *cls, pv_metrics_gauges *g) {
    (void)cls;
    g->active = 2;
    g->queued = 3;
    g->kv_usage = 0.125;
}

static void test_registry(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "req.log");
    pv_error err = {0};
    assert_int_equal(pv_log_file_open(path, 0, 1, false, &err), PV_OK);
    pv_log_set_format(PV_LOG_FORMAT_JSON);
    pv_metrics *m = pv_metrics_new();
    assert_non_null(m);
    pv_metrics_set_gauges_fn(m, fake_gauges, NULL);
    pv_metrics_set_model_load_seconds(m, 1.5);

    /* a generation: ttft 0.2 s after arrival, 5 tokens over 0.4 s of decode → 10 tokens/s
     * (4 gaps), 0.1 s per token; held by a second reference like a stream */
    pv_req_stats *st = pv_req_stats_new(m, "req_abc", "POST", "/v1/messages", "/v1/messages");
    pv_req_stats *stream_ref = pv_req_stats_ref(st);
    double t0 = pv_time_now();
    pv_req_stats_set_model(st, "claude-x");
    pv_req_stats_set_status(st, 200);
    pv_req_stats_set_generation(st, 12, 5, 0, t0 + 0.2, t0 + 0.6);
    pv_req_stats_unref(st);
    assert_int_equal(file_size(path), 0); /* the stream still holds it: no line yet */
    pv_req_stats_set_client_gone(stream_ref);
    pv_req_stats_unref(stream_ref);
    /* two 401s and a 404 on an unmatched path */
    for (int i = 0; i < 2; i++) {
        pv_req_stats *a = pv_req_stats_new(m, "req_x", "POST", "/v1/messages", "/v1/messages");
        pv_req_stats_set_status(a, 401);
        pv_req_stats_unref(a);
    }
    pv_req_stats *u = pv_req_stats_new(m, "req_y", "GET", "/nope", NULL);
    pv_req_stats_set_status(u, 404);
    pv_req_stats_unref(u);

    uint64_t tp = 0, tg = 0;
    pv_metrics_token_totals(m, &tp, &tg);
    assert_int_equal(tp, 12);
    assert_int_equal(tg, 5);

    size_t len = 0;
    char *text = pv_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_true(sample(text, "pensieve_requests_total{route=\"/v1/messages\",status=\"200\"}") == 1);
    assert_true(sample(text, "pensieve_requests_total{route=\"/v1/messages\",status=\"401\"}") == 2);
    assert_true(sample(text, "pensieve_requests_total{route=\"unmatched\",status=\"404\"}") == 1);
    assert_true(sample(text, "pensieve_prompt_tokens_total") == 12);
    assert_true(sample(text, "pensieve_generated_tokens_total") == 5);
    assert_true(sample(text, "pensieve_client_disconnects_total") == 1);
    assert_true(sample(text, "pensieve_requests_active") == 2);
    assert_true(sample(text, "pensieve_requests_queued") == 3);
    assert_true(sample(text, "pensieve_kv_cache_usage_ratio") == 0.125);
    assert_true(sample(text, "pensieve_model_load_seconds") == 1.5);
    assert_true(sample(text, "pensieve_process_resident_memory_bytes") > 1e5);
    /* ttft ~0.2 s (+ the microseconds between new and t0): in the 0.25 bucket, not 0.1 */
    assert_true(sample(text, "pensieve_time_to_first_token_seconds_bucket{le=\"0.1\"}") == 0);
    assert_true(sample(text, "pensieve_time_to_first_token_seconds_bucket{le=\"0.25\"}") == 1);
    assert_true(sample(text, "pensieve_time_to_first_token_seconds_bucket{le=\"+Inf\"}") == 1);
    assert_true(sample(text, "pensieve_time_to_first_token_seconds_count") == 1);
    assert_true(fabs(sample(text, "pensieve_time_per_output_token_seconds_sum") - 0.1) < 1e-6);
    assert_true(sample(text, "pensieve_time_per_output_token_seconds_count") == 1);
    /* every family has HELP and TYPE */
    const char *fams[] = {"pensieve_requests_total counter", "pensieve_kv_cache_usage_ratio gauge",
                          "pensieve_time_to_first_token_seconds histogram"};
    for (size_t i = 0; i < PV_ARRAY_LEN(fams); i++) {
        char want[160];
        snprintf(want, sizeof want, "# TYPE %s\n", fams[i]);
        assert_non_null(strstr(text, want));
        snprintf(want, sizeof want, "# HELP %.*s ", (int)strcspn(fams[i], " "), fams[i]);
        assert_non_null(strstr(text, want));
    }
    free(text);

    /* the log: one JSON line per request, the generation's with its numbers */
    char *buf;
    char **lines;
    size_t n = read_lines(path, &buf, &lines);
    assert_int_equal(n, 4);
    json_t *j = json_loads(lines[0], 0, NULL);
    assert_non_null(j);
    json_t *fl = json_object_get(j, "fields");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "http");
    assert_string_equal(json_string_value(json_object_get(fl, "request_id")), "req_abc");
    assert_string_equal(json_string_value(json_object_get(fl, "route")), "/v1/messages");
    assert_int_equal(json_integer_value(json_object_get(fl, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(fl, "model")), "claude-x");
    assert_int_equal(json_integer_value(json_object_get(fl, "input_tokens")), 12);
    assert_int_equal(json_integer_value(json_object_get(fl, "output_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(fl, "cached_tokens")), 0);
    double ttft = json_number_value(json_object_get(fl, "ttft_ms"));
    assert_true(ttft >= 200 && ttft < 210);
    assert_true(fabs(json_number_value(json_object_get(fl, "tokens_per_s")) - 10.0) < 1e-3);
    assert_true(json_is_true(json_object_get(fl, "client_disconnected")));
    json_decref(j);
    j = json_loads(lines[1], 0, NULL);
    fl = json_object_get(j, "fields");
    assert_int_equal(json_integer_value(json_object_get(fl, "status")), 401);
    assert_null(json_object_get(fl, "input_tokens")); /* no generation: no token fields */
    assert_null(json_object_get(fl, "client_disconnected"));
    json_decref(j);
    free(lines);
    free(buf);
    pv_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_lines, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_text_fields_and_levels, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_rotation, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_threads, setup_dir, teardown_dir),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test_setup_teardown(test_registry, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
