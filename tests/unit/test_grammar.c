/* test_grammar.c — unit tests of the grammar engine: GBNF parsing (valid grammars compile;
 * malformed ones fail with the line and column worked out by hand from the text), the
 * matcher on hand-written grammars (expected verdicts follow from each grammar's
 * definition), UTF-8 split across calls, the stack bound, clone/reset, the shortest-
 * completion figure (checked against lengths counted by hand), JSON Schema conversion on
 * small cases, two tool schemas embedded in one tool-call wrapper grammar, fuzzing of the
 * parser and the converter, and on the qwen3 fixture's vocabulary (and stories260K's SPM
 * one): the trie mask equals the per-token check for every id in many random states, the
 * shortest and budget masks match their definitions (checked by cloning the state and
 * accepting the token), forced shortest completion always closes within min_bytes tokens,
 * and a timing report (printed, not asserted). */
#include "pv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/pv_grammar.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static pv_grammar *compile_ok(const char *text, const char *root) {
    pv_grammar *g = NULL;
    pv_error err = {0};
    pv_status st = pv_grammar_compile(text, strlen(text), root, &g, &err);
    if (st != PV_OK) fail_msg("grammar should compile: %s\n---\n%s", err.msg, text);
    assert_non_null(g);
    return g;
}

/* Accepts s in one call and returns whether it is accepted and complete. */
static bool matches(const pv_grammar *g, const char *s) {
    pv_grammar_state *st = NULL;
    assert_int_equal(pv_grammar_state_init(g, &st, NULL), PV_OK);
    bool ok = pv_grammar_state_accept(st, s, strlen(s)) && pv_grammar_state_complete(st);
    pv_grammar_state_free(st);
    return ok;
}

/* Same, one byte per call (checks that splitting never changes the verdict). */
static bool matches_bytewise(const pv_grammar *g, const char *s) {
    pv_grammar_state *st = NULL;
    assert_int_equal(pv_grammar_state_init(g, &st, NULL), PV_OK);
    bool ok = true;
    for (size_t i = 0; s[i] && ok; i++) ok = pv_grammar_state_accept(st, s + i, 1);
    ok = ok && pv_grammar_state_complete(st);
    pv_grammar_state_free(st);
    return ok;
}

typedef struct {
    const char *grammar;
    const char *yes[8];
    const char *no[8];
} match_case;

static void test_matcher_hand_grammars(void **state) {
    (void)state;
    static const match_case cases[] = {
        {"root ::= \"ab\" | \"cd\"", {"ab", "cd"}, {"", "a", "abc", "ac", "cdab"}},
        {"root ::= [a-c]+ \"!\"", {"a!", "abcabc!", "ccc!"}, {"!", "abd!", "a", "a!!"}},
        {"root ::= [^\"\\\\]* \"\\\"\"", {"\"", "abc\"", "\xc3\xa9\xe2\x82\xac\"", "\xf0\x9f\x98\x80\""}, {"a\\\"", "\"\"", "abc"}},
        {"root ::= \"x\"{2,4}", {"xx", "xxx", "xxxx"}, {"", "x", "xxxxx"}},
        {"root ::= \"x\"{3}", {"xxx"}, {"xx", "xxxx"}},
        {"root ::= \"a\"{2,} \"b\"", {"aab", "aaaaaab"}, {"ab", "b", "aa"}},
        {"root ::= (\"a\" | \"b\")? \"c\"", {"c", "ac", "bc"}, {"abc", "cc", ""}},
        {"root ::= list\nlist ::= item (\",\" item)*\nitem ::= [0-9]+", {"1", "1,22,333"}, {"", ",", "1,", "1,,2", "a"}},
        {"# comment\nroot ::= a b # trailing\n  | c\na ::= \"x\"\nb ::= \"y\"\nc ::= \"z\"", {"xy", "z"}, {"x", "y", "xyz"}},
        {"root ::= . \"!\"", {"a!", "\xe2\x82\xac!"}, {"!", "ab!"}},
        {"root ::= \"\\x41\\u00e9\\n\\t\\\\\"", {"A\xc3\xa9\n\t\\"}, {"A\xc3\xa9"}},
        {"root ::= [\\u00e0-\\u00ff]", {"\xc3\xa0", "\xc3\xbf"}, {"a", "\xc3\x9f", "\xc4\x80"}},
        {"root ::= ( \"(\" root \")\" )*", {"", "()", "(())()", "((()))"}, {"(", ")", "(()"}},
        {"root ::= a\na ::= \"a\" a | \"\"", {"", "a", "aaaa"}, {"b"}},
        {"root ::= \"a\" | ", {"", "a"}, {"aa"}},
        {"root ::=\n  \"{\" (\n    \"x\"\n  )? \"}\"", {"{}", "{x}"}, {"{", "{xx}"}},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(cases); i++) {
        pv_grammar *g = compile_ok(cases[i].grammar, NULL);
        for (int k = 0; k < 8 && cases[i].yes[k]; k++) {
            if (!matches(g, cases[i].yes[k]) || !matches_bytewise(g, cases[i].yes[k]))
                fail_msg("case %zu: \"%s\" should match", i, cases[i].yes[k]);
        }
        for (int k = 0; k < 8 && cases[i].no[k]; k++) {
            if (matches(g, cases[i].no[k]) || matches_bytewise(g, cases[i].no[k]))
                fail_msg("case %zu: \"%s\" should not match", i, cases[i].no[k]);
        }
        pv_grammar_free(g);
    }
}

typedef struct {
    const char *text;
    pv_status status;
    const char *where; /* "line L, column C" expected in the message */
} bad_case;

static void test_parser_errors(void **state) {
    (void)state;
    static const bad_case cases[] = {
        {"root ::= \"abc", PV_ERR_FORMAT, "line 1, column 10"},          /* unterminated literal at its quote */
        {"root ::= [a-", PV_ERR_FORMAT, "line 1, column 10"},            /* unterminated class */
        {"root ::= x\n", PV_ERR_NOT_FOUND, "line 1, column 10"},         /* undefined x */
        {"root ::= \"a\"\nroot ::= \"b\"", PV_ERR_INVALID, "line 2, column 1"}, /* defined twice */
        {"root ::= \"a\" )", PV_ERR_FORMAT, "line 1, column 14"},        /* stray ) */
        {"root := \"a\"", PV_ERR_FORMAT, "line 1, column 6"},            /* expected ::= */
        {"root ::= \"a\"\n  x ::= \"\\q\"", PV_ERR_FORMAT, "line 2, column 10"}, /* unknown escape */
        {"root ::= [z-a]", PV_ERR_FORMAT, "line 1, column 12"},          /* range out of order at '-' */
        {"root ::= * \"a\"", PV_ERR_FORMAT, "line 1, column 10"},        /* repetition without item */
        {"root ::= \"a\"{3,2}", PV_ERR_FORMAT, "line 1, column 13"},     /* n < m */
        {"root ::= (\"a\" \n", PV_ERR_FORMAT, "line 2, column 1"},       /* expected ) at end */
        {"root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", PV_ERR_INVALID, "line 2, column 1"}, /* left recursion */
        {"root ::= a \"x\"\na ::= b a | \"y\"\nb ::= \"\" | \"z\"", PV_ERR_INVALID, "line 2, column 1"}, /* through nullable b */
        {"root ::= \"\\x4\"", PV_ERR_FORMAT, "line 1, column 14"},       /* short hex escape */
        {"other ::= \"a\"", PV_ERR_NOT_FOUND, "root"},                    /* no root */
        {"root ::= \"a\"{100001}", PV_ERR_FORMAT, "line 1, column 19"},   /* count too large */
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(cases); i++) {
        pv_grammar *g = NULL;
        pv_error err = {0};
        pv_status st = pv_grammar_compile(cases[i].text, strlen(cases[i].text), NULL, &g, &err);
        if (st != cases[i].status)
            fail_msg("case %zu: status %s, want %s (%s)", i, pv_status_name(st), pv_status_name(cases[i].status), err.msg);
        assert_null(g);
        if (!strstr(err.msg, cases[i].where)) fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, cases[i].where);
    }
    /* repetition of a nullable item is left recursion too */
    pv_grammar *g = NULL;
    pv_error err = {0};
    const char *t = "root ::= (\"a\"?)*";
    assert_int_equal(pv_grammar_compile(t, strlen(t), NULL, &g, &err), PV_ERR_INVALID);
    /* named root */
    g = compile_ok("start ::= \"s\"", "start");
    assert_true(matches(g, "s"));
    pv_grammar_free(g);
}

static void test_utf8_split_and_invalid(void **state) {
    (void)state;
    pv_grammar *g = compile_ok("root ::= [\\u4e00-\\u9fff]+", NULL); /* CJK */
    pv_grammar_state *s = NULL;
    assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
    const char *txt = "\xe4\xb8\xad\xe6\x96\x87"; /* 中文 */
    assert_true(pv_grammar_state_accept(s, txt, 1));
    assert_false(pv_grammar_state_complete(s)); /* mid-character */
    assert_true(pv_grammar_state_accept(s, txt + 1, 3));
    assert_false(pv_grammar_state_complete(s));
    assert_true(pv_grammar_state_accept(s, txt + 4, 2));
    assert_true(pv_grammar_state_complete(s));
    /* a lead byte that cannot start a CJK ideograph (U+0800..U+0FFF) is refused early */
    assert_false(pv_grammar_state_accept(s, "\xe0", 1));
    /* all-or-nothing: the good first byte is not kept when the second is bad */
    assert_false(pv_grammar_state_accept(s, "\xe4\x41", 2));
    assert_true(pv_grammar_state_complete(s));
    /* invalid UTF-8: overlong, surrogate, stray continuation */
    pv_grammar_free(g);
    pv_grammar_state_free(s);
    g = compile_ok("root ::= .*", NULL);
    assert_true(matches(g, "abc\xc3\xa9\xf0\x9f\x98\x80"));
    assert_false(matches(g, "\xc0\xaf"));
    assert_false(matches(g, "\xed\xa0\x80"));
    {
        /* a surrogate is refused at its second byte already: no completion could follow */
        pv_grammar_state *st = NULL;
        assert_int_equal(pv_grammar_state_init(g, &st, NULL), PV_OK);
        assert_true(pv_grammar_state_accept(st, "\xed", 1));
        assert_false(pv_grammar_state_accept(st, "\xa0", 1));
        assert_true(pv_grammar_state_accept(st, "\x9f", 1)); /* U+D7C0.. is fine */
        pv_grammar_state_free(st);
    }
    assert_false(matches(g, "\x80"));
    assert_false(matches(g, "\xf4\x90\x80\x80"));
    pv_grammar_free(g);
}

static void test_state_ops_and_bounds(void **state) {
    (void)state;
    pv_grammar *g = compile_ok("root ::= \"{\" [0-9]+ \"}\"", NULL);
    pv_grammar_state *s = NULL;
    assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
    /* fewest bytes: "{" + 1 digit + "}" = 3, then 2, 1, 0 (counted from the grammar) */
    assert_int_equal(pv_grammar_state_min_bytes(s), 3);
    assert_true(pv_grammar_state_accept(s, "{1", 2));
    assert_int_equal(pv_grammar_state_min_bytes(s), 1);
    pv_grammar_state *c = pv_grammar_state_clone(s);
    assert_non_null(c);
    assert_true(pv_grammar_state_accept(c, "}", 1));
    assert_true(pv_grammar_state_complete(c));
    assert_int_equal(pv_grammar_state_min_bytes(c), 0);
    assert_false(pv_grammar_state_complete(s)); /* the original did not move */
    assert_false(pv_grammar_state_accept(s, "x", 1));
    assert_null(pv_grammar_state_error(s)); /* plain mismatch: no error */
    pv_grammar_state_reset(s);
    assert_int_equal(pv_grammar_state_min_bytes(s), 3);
    assert_true(pv_grammar_state_accept(s, "{42}", 4));
    pv_grammar_state_free(c);
    pv_grammar_state_free(s);
    pv_grammar_free(g);

    /* ambiguity: after k "a"s the grammar below keeps about 2^(k+1) distinct stacks (each
     * open level closes with b or c); 7 are fine (~256), 11 exceed PV_GRAMMAR_MAX_STACKS */
    g = compile_ok("root ::= s\ns ::= \"a\" s \"b\" | \"a\" s \"c\" | \"\"", NULL);
    assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
    assert_true(pv_grammar_state_accept(s, "aaaaaaa", 7));
    assert_false(pv_grammar_state_accept(s, "aaaa", 4));
    assert_non_null(pv_grammar_state_error(s));
    assert_true(pv_grammar_state_accept(s, "bcb", 3)); /* the state is still usable */
    pv_grammar_state_free(s);
    pv_grammar_free(g);

    /* a long run through distinct configurations (each count of digits is one) outgrows
     * the transition cache, which is rebuilt from the live configuration: the count must
     * still be exact afterwards (at most 20000 digits, min_bytes 0 all along) */
    g = compile_ok("root ::= [0-9]{0,20000}", NULL);
    assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
    for (int i = 0; i < 20000; i++) {
        char d = (char)('0' + i % 10);
        if (!pv_grammar_state_accept(s, &d, 1)) fail_msg("digit %d refused", i);
        if (i % 997 == 0) {
            assert_true(pv_grammar_state_complete(s));
            pv_grammar_state *c = pv_grammar_state_clone(s);
            assert_non_null(c);
            assert_true(pv_grammar_state_accept(c, "1", 1));
            pv_grammar_state_free(c);
        }
    }
    assert_false(pv_grammar_state_accept(s, "1", 1));
    assert_true(pv_grammar_state_complete(s));
    pv_grammar_state_reset(s);
    assert_true(pv_grammar_state_accept(s, "12", 2));
    pv_grammar_state_free(s);
    pv_grammar_free(g);

    /* minimum bytes with multi-byte characters: "é" is 2 bytes, [a-z] 1 */
    g = compile_ok("root ::= \"\\u00e9\" x\nx ::= [a-z] [a-z] | \"\\u20ac\"", NULL);
    assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
    assert_int_equal(pv_grammar_state_min_bytes(s), 4); /* é (2) + min(2, € = 3) */
    pv_grammar_state_free(s);
    pv_grammar_free(g);
}

static char *schema_gbnf(const char *json, const char *prefix) {
    json_error_t je;
    json_t *sch = json_loads(json, 0, &je);
    if (!sch) fail_msg("bad test JSON: %s", je.text);
    char *out = NULL;
    pv_error err = {0};
    pv_status st = pv_grammar_schema_to_gbnf(sch, prefix, &out, &err);
    json_decref(sch);
    if (st != PV_OK) fail_msg("schema_to_gbnf: %s", err.msg);
    return out;
}

static void test_schema_small(void **state) {
    (void)state;
    char *gb = schema_gbnf("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                           "\"b\":{\"type\":\"string\",\"maxLength\":3}},\"required\":[\"a\"]}", "T");
    /* every rule it defines starts with the prefix */
    for (const char *line = gb; *line;) {
        assert_true(strncmp(line, "T", 1) == 0);
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
    pv_grammar *g = compile_ok(gb, "T");
    static const char *yes[] = {"{\"a\":1}", "{\"a\": -20, \"b\": \"xyz\"}", "{ \"a\" : 0 , \"b\" : \"\" }",
                                "{\n  \"a\": 5,\n  \"b\": \"\\n\\u00e9\"\n}"};
    static const char *no[] = {"{}", "{\"b\":\"x\"}", "{\"a\":1.5}", "{\"a\":1,\"b\":\"abcd\"}",
                               "{\"b\":\"x\",\"a\":1}", "{\"a\":1,}", "{\"a\":1,\"c\":2}", "{\"a\":01}",
                               " {\"a\":1}", "{\"a\":1} "};
    for (size_t i = 0; i < PV_ARRAY_LEN(yes); i++)
        if (!matches(g, yes[i])) fail_msg("should match: %s\n%s", yes[i], gb);
    for (size_t i = 0; i < PV_ARRAY_LEN(no); i++)
        if (matches(g, no[i])) fail_msg("should not match: %s", no[i]);
    pv_grammar_free(g);
    free(gb);

    /* additionalProperties true: extra keys allowed but never a declared one again */
    gb = schema_gbnf("{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"null\"}},"
                     "\"additionalProperties\":true}", "X");
    g = compile_ok(gb, "X");
    assert_true(matches(g, "{\"ab\":null,\"a\":1,\"abc\":[true]}"));
    assert_true(matches(g, "{\"b\":{}}"));
    assert_false(matches(g, "{\"ab\":null,\"ab\":1}"));
    assert_false(matches(g, "{\"ab\":1}"));
    pv_grammar_free(g);
    free(gb);

    /* refused schemas */
    static const char *bad[] = {"false", "{\"allOf\":[{},{}]}", "{\"$ref\":\"http://x/y\"}",
                                "{\"type\":\"strng\"}", "{\"$ref\":\"#/$defs/missing\"}", "{\"type\":3}"};
    for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++) {
        json_t *sch = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(sch);
        char *out = NULL;
        pv_error err = {0};
        if (pv_grammar_schema_to_gbnf(sch, "B", &out, &err) == PV_OK) fail_msg("should be refused: %s", bad[i]);
        assert_null(out);
        assert_true(strlen(err.msg) > 0);
        json_decref(sch);
    }
    json_t *t = json_true();
    char *out = NULL;
    assert_int_equal(pv_grammar_schema_to_gbnf(t, "bad prefix", &out, NULL), PV_ERR_INVALID);
}

/* Two tool schemas embedded in one wrapper grammar, the way the lead builds forced tool
 * calls (Hermes/Qwen syntax); verdicts follow from the wrapper text and the schemas. Also
 * prints the compile time of a Claude-Code-sized grammar (20 tool schemas). */
static void test_embed_tool_wrapper(void **state) {
    (void)state;
    char *bash = schema_gbnf("{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"string\"},"
                             "\"timeout\":{\"type\":\"number\"}},\"required\":[\"command\"]}", "Bash-args");
    char *read = schema_gbnf("{\"type\":\"object\",\"properties\":{\"file_path\":{\"type\":\"string\"}},"
                             "\"required\":[\"file_path\"]}", "Read-args");
    const char *wrap = "root ::= \"<tool_call>\\n{\\\"name\\\": \\\"\" ( \"Bash\\\", \\\"arguments\\\": \" Bash-args"
                       " | \"Read\\\", \\\"arguments\\\": \" Read-args ) \"}\\n</tool_call>\"\n";
    size_t n = strlen(wrap) + strlen(bash) + strlen(read) + 1;
    char *all = malloc(n);
    snprintf(all, n, "%s%s%s", wrap, bash, read);
    pv_grammar *g = compile_ok(all, NULL);
    assert_true(matches(g, "<tool_call>\n{\"name\": \"Bash\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>"));
    assert_true(matches(g, "<tool_call>\n{\"name\": \"Read\", \"arguments\": {\"file_path\": \"/a\"}}\n</tool_call>"));
    assert_false(matches(g, "<tool_call>\n{\"name\": \"Read\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>"));
    assert_false(matches(g, "<tool_call>\n{\"name\": \"Bash\", \"arguments\": {\"command\": \"ls\"}}</tool_call>"));
    pv_grammar_free(g);
    free(all);
    free(bash);
    free(read);

    /* 20 TodoWrite-sized schemas in one grammar */
    const char *todo = "{\"type\":\"object\",\"properties\":{\"todos\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                       "\"properties\":{\"content\":{\"type\":\"string\",\"minLength\":1},\"status\":{\"type\":\"string\","
                       "\"enum\":[\"pending\",\"in_progress\",\"completed\"]},\"activeForm\":{\"type\":\"string\","
                       "\"minLength\":1}},\"required\":[\"content\",\"status\",\"activeForm\"]}},\"note\":{\"type\":"
                       "[\"string\",\"null\"],\"maxLength\":200}},\"required\":[\"todos\"]}";
    size_t cap = 1 << 20, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big, cap, "root ::= T0");
    for (int i = 1; i < 20; i++) len += (size_t)snprintf(big + len, cap - len, " | T%d", i);
    len += (size_t)snprintf(big + len, cap - len, "\n");
    double t0 = pv_time_now();
    for (int i = 0; i < 20; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "T%d", i);
        char *gb = schema_gbnf(todo, prefix);
        size_t l = strlen(gb);
        assert_true(len + l < cap);
        memcpy(big + len, gb, l + 1);
        len += l;
        free(gb);
    }
    double t1 = pv_time_now();
    g = compile_ok(big, NULL);
    double t2 = pv_time_now();
    printf("# 20 tool schemas: convert %.1f ms, compile %.1f ms (%zu rules, %zu bytes of GBNF)\n", (t1 - t0) * 1e3,
           (t2 - t1) * 1e3, pv_grammar_n_rules(g), len);
    assert_true(matches(g, "{\"todos\": [{\"content\": \"a\", \"status\": \"pending\", \"activeForm\": \"b\"}], \"note\": null}"));
    pv_grammar_free(g);
    free(big);
}

/* ---- fuzz ---- */
static void test_fuzz_parser(void **state) {
    (void)state;
    pv_test_rng r;
    pv_test_rng_seed(&r, 4242);
    static const char *seeds[] = {
        "root ::= \"a\" b* | [^x-z]{2,3} ( c | \"\\u00e9\" )?\nb ::= \"b\"\nc ::= . root",
        "root ::= x\nx ::= \"[\" ( x (\",\" x)* )? \"]\" | [0-9]+",
    };
    static const char alphabet[] = "root::=\"ab|()[]^-*+?{},.#\\\n x0123456789";
    char buf[256];
    for (int it = 0; it < 20000; it++) {
        size_t n;
        if (it % 2) {
            const char *sd = seeds[it % 4 / 2];
            n = strlen(sd);
            memcpy(buf, sd, n);
            int muts = 1 + (int)(pv_test_rng_u64(&r) % 4);
            for (int m = 0; m < muts && n > 0; m++) {
                size_t pos = pv_test_rng_u64(&r) % n;
                uint64_t op = pv_test_rng_u64(&r) % 3;
                if (op == 0) buf[pos] = alphabet[pv_test_rng_u64(&r) % (sizeof alphabet - 1)];
                else if (op == 1) buf[pos] = (char)(pv_test_rng_u64(&r) & 0xFF);
                else n = pos; /* truncate */
            }
        } else {
            n = pv_test_rng_u64(&r) % 64;
            for (size_t i = 0; i < n; i++)
                buf[i] = (it % 4 == 0) ? (char)(pv_test_rng_u64(&r) & 0xFF)
                                       : alphabet[pv_test_rng_u64(&r) % (sizeof alphabet - 1)];
        }
        pv_grammar *g = NULL;
        pv_error err = {0};
        pv_status st = pv_grammar_compile(buf, n, NULL, &g, &err);
        if (st == PV_OK) {
            /* a compiled grammar must also run */
            pv_grammar_state *s = NULL;
            if (pv_grammar_state_init(g, &s, NULL) == PV_OK) {
                for (int k = 0; k < 8; k++) {
                    char b = alphabet[pv_test_rng_u64(&r) % (sizeof alphabet - 1)];
                    (void)pv_grammar_state_accept(s, &b, 1);
                }
                (void)pv_grammar_state_complete(s);
                (void)pv_grammar_state_min_bytes(s);
                pv_grammar_state_free(s);
            }
            pv_grammar_free(g);
        } else {
            assert_null(g);
            assert_true(strlen(err.msg) > 0);
        }
    }
}

/* random JSON values built from schema keywords */
static json_t *rand_schema(pv_test_rng *r, int depth) {
    static const char *keys[] = {"type", "properties", "required", "items", "enum", "const", "anyOf",
                                 "oneOf", "minLength", "maxLength", "minItems", "maxItems",
                                 "additionalProperties", "$ref", "allOf", "description"};
    static const char *types[] = {"string", "integer", "number", "boolean", "null", "object", "array", "bogus"};
    uint64_t k = pv_test_rng_u64(r) % 10;
    if (depth > 4 || k == 0) {
        switch (pv_test_rng_u64(r) % 6) {
        case 0: return json_true();
        case 1: return json_false();
        case 2: return json_integer((json_int_t)(pv_test_rng_u64(r) % 7) - 2);
        case 3: return json_string(types[pv_test_rng_u64(r) % PV_ARRAY_LEN(types)]);
        case 4: return json_null();
        default: return json_real(1.5);
        }
    }
    if (k == 1) {
        json_t *a = json_array();
        int n = (int)(pv_test_rng_u64(r) % 4);
        for (int i = 0; i < n; i++) json_array_append_new(a, rand_schema(r, depth + 1));
        return a;
    }
    json_t *o = json_object();
    int n = (int)(pv_test_rng_u64(r) % 5);
    for (int i = 0; i < n; i++) {
        const char *key = keys[pv_test_rng_u64(r) % PV_ARRAY_LEN(keys)];
        json_t *v;
        if (strcmp(key, "type") == 0 && pv_test_rng_u64(r) % 3) v = json_string(types[pv_test_rng_u64(r) % PV_ARRAY_LEN(types)]);
        else if (strcmp(key, "$ref") == 0) v = json_string(pv_test_rng_u64(r) % 2 ? "#" : "#/properties/a");
        else if (strcmp(key, "properties") == 0) {
            v = json_object();
            json_object_set_new(v, pv_test_rng_u64(r) % 2 ? "a" : "a\"\\\n\xc3\xa9", rand_schema(r, depth + 1));
            json_object_set_new(v, "b", rand_schema(r, depth + 1));
        } else v = rand_schema(r, depth + 1);
        json_object_set_new(o, key, v);
    }
    return o;
}

static void test_fuzz_schema(void **state) {
    (void)state;
    pv_test_rng r;
    pv_test_rng_seed(&r, 777);
    int compiled = 0;
    for (int it = 0; it < 3000; it++) {
        json_t *s = rand_schema(&r, 0);
        char *gb = NULL;
        pv_error err = {0};
        pv_status st = pv_grammar_schema_to_gbnf(s, "F", &gb, &err);
        if (st == PV_OK) {
            /* what the converter writes must always compile */
            pv_grammar *g = NULL;
            pv_status cs = pv_grammar_compile(gb, strlen(gb), "F", &g, &err);
            if (cs != PV_OK) {
                char *dump = json_dumps(s, JSON_COMPACT);
                fail_msg("converter output does not compile: %s\nschema %s\n%s", err.msg, dump, gb);
            }
            compiled++;
            pv_grammar_free(g);
            free(gb);
        } else {
            assert_null(gb);
        }
        json_decref(s);
    }
    assert_true(compiled > 100);
}

/* ---- vocabulary tests on the qwen3 fixture ---- */
static pv_weights *g_w;
static pv_tokenizer *g_tok;
static pv_grammar_vocab *g_voc;

static int vocab_setup(void **state) {
    (void)state;
    char *path = pv_test_fixture_path("qwen3/qwen3-f32.gguf");
    pv_test_require(path, "qwen3 fixture (build/fixtures/qwen3/qwen3-f32.gguf)");
    pv_error err = {0};
    if (pv_weights_open(path, &g_w, &err) != PV_OK) fail_msg("open: %s", err.msg);
    if (pv_tokenizer_init(g_w, &g_tok, &err) != PV_OK) fail_msg("tokenizer: %s", err.msg);
    double t0 = pv_time_now();
    if (pv_grammar_vocab_init(g_tok, &g_voc, &err) != PV_OK) fail_msg("vocab: %s", err.msg);
    printf("# grammar vocab init (%d tokens): %.1f ms\n", pv_grammar_vocab_n(g_voc), (pv_time_now() - t0) * 1e3);
    free(path);
    return 0;
}

static int vocab_teardown(void **state) {
    (void)state;
    pv_grammar_vocab_free(g_voc);
    pv_tokenizer_free(g_tok);
    pv_weights_free(g_w);
    return 0;
}

static const char *k_tool_schema =
    "{\"type\":\"object\",\"properties\":{"
    "\"command\":{\"type\":\"string\",\"description\":\"The command\"},"
    "\"timeout\":{\"type\":\"number\"},"
    "\"mode\":{\"enum\":[\"fast\",\"safe\",\"caf\\u00e9\"]},"
    "\"todos\":{\"type\":\"array\",\"maxItems\":3,\"items\":{\"type\":\"object\",\"properties\":{"
    "\"content\":{\"type\":\"string\",\"minLength\":1},\"done\":{\"type\":\"boolean\"}},"
    "\"required\":[\"content\",\"done\"]}},"
    "\"extra\":{\"type\":[\"string\",\"null\"]}},"
    "\"required\":[\"command\"],\"additionalProperties\":false}";

/* Picks a random allowed token (mask) and accepts it; false when none. */
static bool random_step(pv_grammar_state *s, uint8_t *mask, pv_test_rng *r, bool prefer_short) {
    pv_grammar_mask(s, g_voc, mask);
    int32_t n = pv_grammar_vocab_n(g_voc);
    int32_t cand[4096];
    int nc = 0;
    uint64_t start = pv_test_rng_u64(r) % (uint64_t)n;
    for (int32_t k = 0; k < n && nc < 4096; k++) {
        int32_t id = (int32_t)((start + (uint64_t)k) % (uint64_t)n);
        if (!mask[id] || pv_tokenizer_is_eog(g_tok, id)) continue;
        if (prefer_short) {
            char buf[64];
            if (pv_tokenizer_piece(g_tok, id, buf, sizeof buf, false) > 1) continue;
        }
        cand[nc++] = id;
    }
    if (!nc) return false;
    int32_t id = cand[pv_test_rng_u64(r) % (uint64_t)nc];
    assert_true(pv_grammar_accept_token(s, g_voc, id));
    return true;
}

static void compare_mask(pv_grammar_state *s, uint8_t *mask) {
    pv_grammar_mask(s, g_voc, mask);
    int32_t n = pv_grammar_vocab_n(g_voc);
    for (int32_t id = 0; id < n; id++) {
        bool one = pv_grammar_token_allowed(s, g_voc, id);
        if (one != (mask[id] != 0)) fail_msg("token %d: mask %d, per-token %d", id, mask[id], one);
    }
}

/* The budget mask against its definition on a sample of tokens (all single-byte tokens
 * first, then random ids): allowed iff allowed at all and min_bytes after it <= budget;
 * pv_grammar_token_allowed_budget must agree. */
static void compare_budget(pv_grammar_state *s, uint8_t *mask, pv_test_rng *r, size_t budget) {
    int32_t n = pv_grammar_vocab_n(g_voc);
    pv_grammar_mask_budget(s, g_voc, mask, budget);
    /* the listing variant: the same mask, and a list that is exactly its allowed ids */
    uint8_t *mask2 = malloc((size_t)n);
    int32_t ids[256];
    assert_non_null(mask2);
    size_t n_ids = pv_grammar_mask_budget_list(s, g_voc, mask2, budget, ids, PV_ARRAY_LEN(ids));
    assert_memory_equal(mask, mask2, (size_t)n);
    size_t n_allowed = 0;
    for (int32_t id = 0; id < n; id++) n_allowed += mask[id] != 0;
    assert_int_equal(n_ids, n_allowed);
    if (n_ids <= PV_ARRAY_LEN(ids))
        for (size_t k = 0; k < n_ids; k++) {
            assert_true(mask[ids[k]]);
            mask2[ids[k]] = 0; /* each id once */
        }
    if (n_ids <= PV_ARRAY_LEN(ids))
        for (int32_t id = 0; id < n; id++) assert_int_equal(mask2[id], 0);
    free(mask2);
    for (int k = 0; k < 3000; k++) {
        int32_t id = (int32_t)(pv_test_rng_u64(r) % (uint64_t)n);
        bool want = false;
        if (pv_tokenizer_is_eog(g_tok, id)) {
            want = pv_grammar_state_complete(s);
        } else if (pv_grammar_token_allowed(s, g_voc, id)) {
            pv_grammar_state *c = pv_grammar_state_clone(s);
            assert_non_null(c);
            assert_true(pv_grammar_accept_token(c, g_voc, id));
            want = pv_grammar_state_min_bytes(c) <= budget;
            pv_grammar_state_free(c);
        }
        if (want != (mask[id] != 0)) fail_msg("budget %zu mask, token %d: mask %d, definition %d", budget, id, mask[id], want);
        if (want != pv_grammar_token_allowed_budget(s, g_voc, id, budget))
            fail_msg("token_allowed_budget, token %d: definition %d", id, want);
    }
}

/* The shortest mask against its definition, on a sample of tokens: allowed iff accepted
 * and min_bytes drops by exactly the token's length. */
static void compare_shortest(pv_grammar_state *s, uint8_t *mask, pv_test_rng *r) {
    pv_grammar_mask_shortest(s, g_voc, mask);
    size_t m0 = pv_grammar_state_min_bytes(s);
    int32_t n = pv_grammar_vocab_n(g_voc);
    int n_allowed = 0;
    for (int32_t id = 0; id < n; id++) n_allowed += mask[id];
    if (m0 > 0 && m0 != SIZE_MAX) assert_true(n_allowed > 0);
    for (int k = 0; k < 3000; k++) {
        int32_t id = (int32_t)(pv_test_rng_u64(r) % (uint64_t)n);
        if (k < 256) id = pv_tokenizer_find(g_tok, (char[]){(char)k}, 1) >= 0 ? pv_tokenizer_find(g_tok, (char[]){(char)k}, 1) : id;
        bool want = false;
        if (pv_tokenizer_is_eog(g_tok, id)) {
            want = pv_grammar_state_complete(s);
        } else if (pv_grammar_token_allowed(s, g_voc, id)) {
            char buf[1024];
            size_t len = pv_tokenizer_piece(g_tok, id, buf, sizeof buf, false);
            pv_grammar_state *c = pv_grammar_state_clone(s);
            assert_non_null(c);
            assert_true(pv_grammar_accept_token(c, g_voc, id));
            want = pv_grammar_state_min_bytes(c) + len == m0;
            pv_grammar_state_free(c);
        }
        if (want != (mask[id] != 0)) fail_msg("shortest mask, token %d: mask %d, definition %d", id, mask[id], want);
    }
    size_t budget = m0 == SIZE_MAX ? 0 : m0 + (size_t)(pv_test_rng_u64(r) % 3) - 1;
    if (m0 == 0) budget = 0;
    compare_budget(s, mask, r, budget);
}

static void test_mask_equals_per_token(void **state) {
    (void)state;
    char *gb = schema_gbnf(k_tool_schema, "Tool");
    pv_grammar *g = compile_ok(gb, "Tool");
    free(gb);
    pv_grammar *g2 = compile_ok("root ::= \"<\" [\\u4e00-\\u9fff\\u00e0-\\u00ff]{1,3} \">\" ( \" \" [a-z]+ )*", NULL);
    int32_t n = pv_grammar_vocab_n(g_voc);
    uint8_t *mask = malloc((size_t)n);
    pv_test_rng r;
    pv_test_rng_seed(&r, 99);
    int states = 0;
    const pv_grammar *gs[2] = {g, g2};
    for (int gi = 0; gi < 2; gi++) {
        for (int walk = 0; walk < 4; walk++) {
            pv_grammar_state *s = NULL;
            assert_int_equal(pv_grammar_state_init(gs[gi], &s, NULL), PV_OK);
            for (int step = 0; step < 12; step++) {
                compare_mask(s, mask);
                if (step % 4 == 0) compare_shortest(s, mask, &r);
                states++;
                if (!random_step(s, mask, &r, step % 2 == 1)) break;
            }
            pv_grammar_state_free(s);
        }
    }
    /* explicit states inside strings (where whole subtrees are skipped), one of them in
     * the middle of a character, with budgets around the "room for a cut character" edge */
    static const char *prefixes[] = {"{\"command\": \"ls -la", "{\"command\": \"\xc3", "{\"command\": \"x\\",
                                     "{\"command\": \"\", \"todos\": [{\"content\": \"\xe4\xb8"};
    for (size_t i = 0; i < PV_ARRAY_LEN(prefixes); i++) {
        pv_grammar_state *s = NULL;
        assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
        assert_true(pv_grammar_state_accept(s, prefixes[i], strlen(prefixes[i])));
        compare_mask(s, mask);
        size_t m0 = pv_grammar_state_min_bytes(s);
        for (size_t extra = 0; extra < 6; extra++) compare_budget(s, mask, &r, m0 + extra);
        compare_budget(s, mask, &r, SIZE_MAX);
        states++;
        pv_grammar_state_free(s);
    }
    printf("# mask == per-token check on %d states x %d tokens\n", states, n);
    free(mask);
    pv_grammar_free(g);
    pv_grammar_free(g2);
}

/* Forced shortest completion from random states always closes, within min_bytes tokens. */
static void test_shortest_closes(void **state) {
    (void)state;
    char *gb = schema_gbnf(k_tool_schema, "Tool");
    pv_grammar *g = compile_ok(gb, "Tool");
    free(gb);
    int32_t n = pv_grammar_vocab_n(g_voc);
    uint8_t *mask = malloc((size_t)n);
    pv_test_rng r;
    pv_test_rng_seed(&r, 5);
    for (int walk = 0; walk < 6; walk++) {
        pv_grammar_state *s = NULL;
        assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
        for (int step = 0; step < 6 + walk * 3; step++)
            if (!random_step(s, mask, &r, walk % 2)) break;
        size_t budget = pv_grammar_state_min_bytes(s);
        assert_true(budget != SIZE_MAX);
        size_t used = 0;
        while (!pv_grammar_state_complete(s)) {
            pv_grammar_mask_shortest(s, g_voc, mask);
            int32_t pick = -1;
            for (int32_t id = 0; id < n && pick < 0; id++)
                if (mask[id] && !pv_tokenizer_is_eog(g_tok, id)) pick = id;
            assert_true(pick >= 0);
            assert_true(pv_grammar_accept_token(s, g_voc, pick));
            used++;
            assert_true(used <= budget);
        }
        pv_grammar_state_free(s);
    }
    free(mask);
    pv_grammar_free(g);
}

/* The same checks on a SentencePiece vocabulary (stories260K: 512 tokens, "\u2581" for
 * spaces, byte fallback): mask == per-token check, and forced closure. */
static void test_spm_vocab(void **state) {
    (void)state;
    char *path = pv_test_data_path("models/stories260K.gguf");
    if (!path) {
        if (getenv("CI") && *getenv("CI")) fail_msg("stories260K.gguf missing");
        skip();
    }
    pv_weights *w = NULL;
    pv_tokenizer *tok = NULL;
    pv_grammar_vocab *voc = NULL;
    pv_error err = {0};
    if (pv_weights_open(path, &w, &err) != PV_OK || pv_tokenizer_init(w, &tok, &err) != PV_OK ||
        pv_grammar_vocab_init(tok, &voc, &err) != PV_OK)
        fail_msg("stories260K: %s", err.msg);
    free(path);
    /* swap the globals the helpers use */
    pv_tokenizer *save_tok = g_tok;
    pv_grammar_vocab *save_voc = g_voc;
    g_tok = tok;
    g_voc = voc;
    char *gb = schema_gbnf(k_tool_schema, "Tool");
    pv_grammar *g = compile_ok(gb, "Tool");
    free(gb);
    uint8_t *mask = malloc((size_t)pv_grammar_vocab_n(voc));
    pv_test_rng r;
    pv_test_rng_seed(&r, 17);
    for (int walk = 0; walk < 6; walk++) {
        pv_grammar_state *s = NULL;
        assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
        for (int step = 0; step < 16; step++) {
            compare_mask(s, mask);
            if (step % 5 == 0) compare_shortest(s, mask, &r);
            if (!random_step(s, mask, &r, step % 2 == 1)) break;
        }
        /* close it with the shortest mask */
        size_t budget = pv_grammar_state_min_bytes(s), used = 0;
        while (!pv_grammar_state_complete(s)) {
            pv_grammar_mask_shortest(s, voc, mask);
            int32_t pick = -1;
            for (int32_t id = 0; id < pv_grammar_vocab_n(voc) && pick < 0; id++)
                if (mask[id] && !pv_tokenizer_is_eog(tok, id)) pick = id;
            assert_true(pick >= 0);
            assert_true(pv_grammar_accept_token(s, voc, pick));
            assert_true(++used <= budget);
        }
        pv_grammar_state_free(s);
    }
    g_tok = save_tok;
    g_voc = save_voc;
    free(mask);
    pv_grammar_free(g);
    pv_grammar_vocab_free(voc);
    pv_tokenizer_free(tok);
    pv_weights_free(w);
}

static void test_mask_timing(void **state) {
    (void)state;
    char *gb = schema_gbnf(k_tool_schema, "Tool");
    pv_grammar *g = compile_ok(gb, "Tool");
    free(gb);
    int32_t n = pv_grammar_vocab_n(g_voc);
    uint8_t *mask = malloc((size_t)n);
    static const struct {
        const char *name, *prefix;
    } points[] = {
        {"start (before '{')", ""},
        {"after '{' (keys)", "{"},
        {"inside a string value", "{\"command\": \"ls -la /tm"},
        {"inside a number", "{\"command\": \"x\", \"timeout\": 12"},
        {"after a value (',' or '}')", "{\"command\": \"x\""},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(points); i++) {
        pv_grammar_state *s = NULL;
        assert_int_equal(pv_grammar_state_init(g, &s, NULL), PV_OK);
        assert_true(pv_grammar_state_accept(s, points[i].prefix, strlen(points[i].prefix)));
        double t0 = pv_time_now();
        pv_grammar_mask(s, g_voc, mask);
        double cold = pv_time_now() - t0;
        int reps = 20;
        t0 = pv_time_now();
        for (int k = 0; k < reps; k++) pv_grammar_mask(s, g_voc, mask);
        double warm = (pv_time_now() - t0) / reps;
        int cnt = 0;
        for (int32_t id = 0; id < n; id++) cnt += mask[id];
        /* a fresh clone has an empty cache: what one sequence pays at a new position */
        t0 = pv_time_now();
        int one = 0;
        for (int32_t id = 0; id < 1000; id++) one += pv_grammar_token_allowed(s, g_voc, id);
        double per_tok = (pv_time_now() - t0) / 1000;
        printf("# mask %-30s cold %7.2f ms  warm %7.2f ms  allowed %6d / %d  token_allowed %.2f us\n",
               points[i].name, cold * 1e3, warm * 1e3, cnt, n, per_tok * 1e6);
        (void)one;
        pv_grammar_state_free(s);
    }
    free(mask);
    pv_grammar_free(g);
}

int main(void) {
    const struct CMUnitTest basic[] = {
        cmocka_unit_test(test_matcher_hand_grammars),
        cmocka_unit_test(test_parser_errors),
        cmocka_unit_test(test_utf8_split_and_invalid),
        cmocka_unit_test(test_state_ops_and_bounds),
        cmocka_unit_test(test_schema_small),
        cmocka_unit_test(test_embed_tool_wrapper),
        cmocka_unit_test(test_fuzz_parser),
        cmocka_unit_test(test_fuzz_schema),
    };
    int rc = cmocka_run_group_tests_name("grammar", basic, NULL, NULL);
    const struct CMUnitTest vocab[] = {
        cmocka_unit_test(test_mask_equals_per_token),
        cmocka_unit_test(test_shortest_closes),
        cmocka_unit_test(test_spm_vocab),
        cmocka_unit_test(test_mask_timing),
    };
    rc |= cmocka_run_group_tests_name("grammar_vocab", vocab, vocab_setup, vocab_teardown);
    return rc;
}
