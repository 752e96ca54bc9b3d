/* test_config.c — the configuration layer (src/config): the TOML subset parser (values
 * checked against the TOML 1.0 specification's own examples, errors with their
 * FILE:LINE:COL positions counted by hand from the inputs), the key table's invariants,
 * precedence flag > environment > file > default for EVERY key in every combination of
 * layers, file lookup order, configuration errors with their origin, flag matching and the
 * reload diff.
 *
 * Also a test-only dumper for the tomllib oracle (tests/config/tomllib_oracle.py):
 * `test_config --dump FILE...` prints one JSON line per file, {"file", "ok", "value" (the
 * document in the tagged form {"type":"integer","value":"42"}) or "error"}. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "pv_test.h"
#include "config/pv_config.h"

/* ---------------- dumper for the oracle ---------------- */

static json_t *tagged(const char *type, const char *value) {
    return json_pack("{s:s, s:s}", "type", type, "value", value);
}

static json_t *to_json(const pv_toml_value *v) {
    char buf[64];
    switch (v->type) {
    case PV_TOML_STRING: return json_pack("{s:s, s:s%}", "type", "string", "value", v->s.ptr, v->s.len);
    case PV_TOML_INT: snprintf(buf, sizeof buf, "%lld", (long long)v->i); return tagged("integer", buf);
    case PV_TOML_FLOAT: snprintf(buf, sizeof buf, "%.17g", v->f); return tagged("float", buf);
    case PV_TOML_BOOL: return tagged("bool", v->b ? "true" : "false");
    case PV_TOML_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->arr.n; i++)
            json_array_append_new(a, to_json(&v->arr.items[i]));
        return a;
    }
    case PV_TOML_TABLE: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->tab.n; i++)
            json_object_setn_new(o, v->tab.items[i].key, v->tab.items[i].key_len,
                                 to_json(&v->tab.items[i].val));
        return o;
    }
    }
    return json_null();
}

static int dump_files(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        pv_toml_value *root = NULL;
        pv_error err = {0};
        json_t *line = json_object();
        json_object_set_new(line, "file", json_string(argv[i]));
        if (pv_toml_parse_file(argv[i], &root, &err) == PV_OK) {
            json_object_set_new(line, "ok", json_true());
            json_object_set_new(line, "value", to_json(root));
        } else {
            json_object_set_new(line, "ok", json_false());
            json_object_set_new(line, "error", json_string(err.msg));
        }
        char *s = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
        puts(s ? s : "null");
        free(s);
        json_decref(line);
        pv_toml_free(root);
    }
    return 0;
}

/* ---------------- helpers ---------------- */

static char tmpdir[256];

static pv_toml_value *parse_ok(const char *text) {
    pv_toml_value *root = NULL;
    pv_error err = {0};
    pv_status st = pv_toml_parse("t.toml", text, strlen(text), &root, &err);
    if (st != PV_OK) fprintf(stderr, "unexpected error: %s\n", err.msg);
    assert_int_equal(st, PV_OK);
    return root;
}

static const pv_toml_value *get(const pv_toml_value *t, const char *key) {
    const pv_toml_entry *e = pv_toml_table_get(t, key);
    if (!e) fprintf(stderr, "missing key '%s'\n", key);
    assert_non_null(e);
    return &e->val;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Clears every variable the loader reads and points HOME/XDG at an empty folder. */
static void clean_env(void) {
    for (int k = 0; k < PV_CFG_KEY_COUNT; k++)
        unsetenv(pv_config_key_get(k)->env);
    unsetenv("PENSIEVE_CONFIG");
    char home[300];
    snprintf(home, sizeof home, "%s/home", tmpdir);
    setenv("HOME", home, 1);
    unsetenv("XDG_CONFIG_HOME");
    unlink("pensieve.toml");
}

/* ---------------- TOML values ---------------- */

static void test_toml_values(void **state) {
    (void)state;
    /* values from the TOML 1.0 specification's examples, with their meaning per the spec */
    pv_toml_value *r = parse_ok(
        "# comment\n"
        "int1 = +99\nint2 = -17\nint3 = 1_000\nint4 = 0\nhex = 0xDEAD_beef\noct = 0o755\nbin = 0b1101_0110\n"
        "min = -9223372036854775808\nmax = 9223372036854775807\n"
        "flt1 = +1.0\nflt2 = 3.1415\nflt3 = -0.01\nflt4 = 5e+22\nflt5 = 1e06\nflt6 = -2E-2\nflt7 = "
        "6.626e-34\n"
        "flt8 = 224_617.445_991_228\nsinf = -inf\nsnan = nan\nnzero = -0.0\n"
        "str = \"I'm a string. \\\"You can quote me\\\". Name\\tJos\\u00E9\\nLocation\\tSF.\"\n"
        "emoji = \"\\U0001F600\"\nctl = \"\\b\\f\\r\\\\\"\n"
        "winpath = 'C:\\Users\\nodejs\\templates'\n"
        "t = true\r\nf = false # trailing comment\n"
        "arr = [ 1, 2, 3, ]\n"
        "nested = [ [ 1, 2 ], ['a', \"b\"], ]\n"
        "multi = [\n  1, # one\n  2.5,\n\n  \"x\"\n]\n"
        "\"\" = 'empty key'\n"
        "\"a.b\" = 'quoted dotted'\n"
        "site.\"google.com\" = true\n"
        "[dog.\"tater.man\"]\ntype.name = \"pug\"\n"
        "[x.y.z]\n[x]\nw = 1\n");
    assert_int_equal(get(r, "int1")->i, 99);
    assert_int_equal(get(r, "int2")->i, -17);
    assert_int_equal(get(r, "int3")->i, 1000);
    assert_int_equal(get(r, "int4")->i, 0);
    assert_int_equal(get(r, "hex")->i, 0xDEADBEEF);
    assert_int_equal(get(r, "oct")->i, 0755);
    assert_int_equal(get(r, "bin")->i, 214);
    assert_true(get(r, "min")->i == INT64_MIN);
    assert_true(get(r, "max")->i == INT64_MAX);
    assert_int_equal(get(r, "flt1")->type, PV_TOML_FLOAT);
    assert_true(get(r, "flt1")->f == 1.0);
    assert_true(get(r, "flt2")->f == 3.1415);
    assert_true(get(r, "flt3")->f == -0.01);
    assert_true(get(r, "flt4")->f == 5e22);
    assert_true(get(r, "flt5")->f == 1e6);
    assert_true(get(r, "flt6")->f == -2e-2);
    assert_true(get(r, "flt7")->f == 6.626e-34);
    assert_true(get(r, "flt8")->f == 224617.445991228);
    assert_true(isinf(get(r, "sinf")->f) && get(r, "sinf")->f < 0);
    assert_true(isnan(get(r, "snan")->f));
    assert_true(get(r, "nzero")->f == 0.0 && signbit(get(r, "nzero")->f));
    const pv_toml_value *s = get(r, "str");
    assert_string_equal(s->s.ptr, "I'm a string. \"You can quote me\". Name\tJos\xC3\xA9\nLocation\tSF.");
    assert_string_equal(get(r, "emoji")->s.ptr, "\xF0\x9F\x98\x80");
    assert_string_equal(get(r, "ctl")->s.ptr, "\b\f\r\\");
    assert_string_equal(get(r, "winpath")->s.ptr, "C:\\Users\\nodejs\\templates");
    assert_true(get(r, "t")->b);
    assert_false(get(r, "f")->b);
    const pv_toml_value *a = get(r, "arr");
    assert_int_equal(a->type, PV_TOML_ARRAY);
    assert_int_equal(a->arr.n, 3);
    assert_int_equal(a->arr.items[2].i, 3);
    const pv_toml_value *nest = get(r, "nested");
    assert_int_equal(nest->arr.n, 2);
    assert_int_equal(nest->arr.items[1].arr.n, 2);
    assert_string_equal(nest->arr.items[1].arr.items[1].s.ptr, "b");
    const pv_toml_value *m = get(r, "multi");
    assert_int_equal(m->arr.n, 3);
    assert_true(m->arr.items[1].f == 2.5);
    assert_int_equal(m->arr.items[2].line, 34); /* "x" is on the array's 5th line */
    assert_int_equal(m->arr.items[2].col, 3);
    assert_string_equal(get(r, "")->s.ptr, "empty key");
    assert_string_equal(get(r, "a.b")->s.ptr, "quoted dotted");
    assert_true(get(get(r, "site"), "google.com")->b);
    const pv_toml_value *dog = get(get(r, "dog"), "tater.man");
    assert_string_equal(get(get(dog, "type"), "name")->s.ptr, "pug");
    assert_int_equal(get(get(r, "x"), "w")->i, 1);
    assert_int_equal(get(get(get(r, "x"), "y"), "z")->type, PV_TOML_TABLE);
    /* positions: int2's value starts at column 8 of line 3 */
    assert_int_equal(get(r, "int2")->line, 3);
    assert_int_equal(get(r, "int2")->col, 8);

    /* round trip through the writer */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_true(pv_toml_write(f, r));
    fclose(f);
    pv_toml_value *r2 = NULL;
    pv_error err = {0};
    pv_status st = pv_toml_parse("rt.toml", text, len, &r2, &err);
    if (st != PV_OK) fprintf(stderr, "%s\n%s\n", err.msg, text);
    assert_int_equal(st, PV_OK);
    assert_true(pv_toml_equal(r, r2));
    /* and equality notices a change */
    get(r2, "int1");
    ((pv_toml_value *)get(r2, "int1"))->i = 98;
    assert_false(pv_toml_equal(r, r2));
    pv_toml_free(r2);
    free(text);
    pv_toml_free(r);
}

/* ---------------- TOML errors ---------------- */

typedef struct {
    const char *text;
    const char *pos;    /* "LINE:COL" counted by hand */
    const char *needle; /* part of the message */
} err_case;

static const err_case toml_errors[] = {
    {"a = 1\na = 2\n", "2:1", "duplicate key 'a'"},
    {"[t]\nx=1\n[t]\n", "3:1", "table 't' is defined twice"},
    {"a = {x = 1}\n", "1:5", "inline tables are not supported"},
    {"[[fruit]]\n", "1:1", "arrays of tables"},
    {"d = 1979-05-27\n", "1:5", "dates and times are not supported"},
    {"t = 07:32:00\n", "1:5", "dates and times"},
    {"s = \"\"\"x\"\"\"\n", "1:5", "multi-line strings are not supported"},
    {"s = '''x'''\n", "1:5", "multi-line strings"},
    {"s = \"bad \\x escape\"\n", "1:10", "invalid escape sequence '\\x'"},
    {"s = \"\\uD800\"\n", "1:6", "not a Unicode scalar value"},
    {"s = \"\\U00110000\"\n", "1:6", "not a Unicode scalar value"},
    {"s = \"\\u12\"\n", "1:6", "needs 4 hex digits"},
    {"s = \"abc\n", "1:5", "unterminated string"},
    {"s = 'abc\n", "1:5", "unterminated string"},
    {"# ok\ns = \"a\xC3\"\n", "2:7", "invalid UTF-8"},
    {"s = \"\xED\xA0\x80\"\n", "1:6", "invalid UTF-8"},            /* encoded surrogate */
    {"s = \"\xC0\xAF\"\n", "1:6", "invalid UTF-8"},                /* overlong '/' */
    {"\xC3\xA9 = \"a\x01\"\n", "1:7", "control character U+0001"}, /* col counts code points */
    {"a = 1\r\nb = 2\rc = 3\n", "2:6", "carriage return"},
    {"# \x7F\n", "1:3", "control character U+007F"},
    {"n = 012\n", "1:5", "leading zeros"},
    {"n = 1__2\n", "1:5", "invalid number"},
    {"n = _1\n", "1:5", "invalid value '_1'"},
    {"n = 1_\n", "1:5", "invalid number"},
    {"n = 0x\n", "1:5", "invalid value"},
    {"n = +0x10\n", "1:5", "invalid"},
    {"n = 9223372036854775808\n", "1:5", "does not fit in 64 bits"},
    {"n = 1.\n", "1:5", "invalid number"},
    {"n = .5\n", "1:5", "invalid value"},
    {"n = 1e\n", "1:5", "invalid number"},
    {"n = 1.2.3\n", "1:5", "invalid"},
    {"b = True\n", "1:5", "invalid value"},
    {"a = 1 b = 2\n", "1:7", "unexpected text after the value"},
    {"a =\n", "1:4", "expected a value"},
    {"a\n", "1:2", "expected '='"},
    {"= 1\n", "1:1", "invalid character in key"},
    {"a b = 1\n", "1:3", "expected '='"},
    {"arr = [1 2]\n", "1:10", "expected ',' or ']'"},
    {"arr = [1,\n2,\n", "3:1", "unterminated array"},
    {"arr = [,]\n", "1:8", "invalid value"},
    {"[a]\nb = 1\n[a.b]\n", "3:4", "key 'b' is already defined as a value (integer, line 2)"},
    {"a.b = 1\n[a]\n", "2:1", "table 'a' is defined twice"},
    {"[a]\nb.c = 1\n[a.b]\n", "3:1", "defined twice"},
    {"[a.b]\n[a]\nb.c = 1\n", "3:1", "dotted keys cannot add to it"},
    {"[a]\nx = 1\n[b]\na.y = 2\n[a]\n", "5:1", "defined twice"},
    {"a = 1\na.b = 2\n", "2:1", "already defined as a value"},
    {"[ a ] junk\n", "1:7", "unexpected text after the table header"},
    {"[a\n", "1:3", "expected ']'"},
};

static void test_toml_errors(void **state) {
    (void)state;
    for (size_t i = 0; i < PV_ARRAY_LEN(toml_errors); i++) {
        const err_case *c = &toml_errors[i];
        pv_toml_value *root = (pv_toml_value *)0x1;
        pv_error err = {0};
        pv_status st = pv_toml_parse("t.toml", c->text, strlen(c->text), &root, &err);
        char want[64];
        snprintf(want, sizeof want, "t.toml:%s: ", c->pos);
        bool ok = st == PV_ERR_FORMAT && root == NULL && !strncmp(err.msg, want, strlen(want)) &&
                  strstr(err.msg, c->needle);
        if (!ok) fprintf(stderr, "case %zu: got '%s', want '%s...%s'\n", i, err.msg, want, c->needle);
        assert_true(ok);
        pv_toml_free(root);
    }
    /* a NUL byte inside the given length is a control character, not the end */
    pv_toml_value *root = NULL;
    pv_error err = {0};
    assert_int_equal(pv_toml_parse("t.toml", "a = 1\0", 6, &root, &err), PV_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "t.toml:1:6: control character U+0000"));
    /* arrays nested beyond the limit fail cleanly */
    char deep[600];
    memset(deep, '[', sizeof deep);
    memcpy(deep, "a = ", 4);
    assert_int_equal(pv_toml_parse("t.toml", deep, sizeof deep, &root, &err), PV_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "nested too deep"));
}

/* ---------------- the key table ---------------- */

static void test_key_table(void **state) {
    (void)state;
    pv_config *d = pv_config_new_defaults();
    assert_non_null(d);
    for (int k = 0; k < PV_CFG_KEY_COUNT; k++) {
        const pv_config_key_info *ki = pv_config_key_get(k);
        assert_int_equal(ki->id, k);
        /* PENSIEVE_<SECTION>_<KEY>, spelled out independently here */
        char env[128] = "PENSIEVE_";
        size_t o = strlen(env);
        for (const char *p = ki->section; *p; p++)
            env[o++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[o++] = '_';
        for (const char *p = ki->name; *p; p++)
            env[o++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[o] = '\0';
        assert_string_equal(ki->env, env);
        assert_true(!strncmp(ki->flag, "--", 2));
        assert_non_null(ki->doc);
        assert_ptr_equal(pv_config_key_find(ki->section, ki->name), ki);
        for (int j = 0; j < k; j++) {
            const pv_config_key_info *kj = pv_config_key_get(j);
            assert_string_not_equal(ki->flag, kj->flag);
            if (ki->short_flag && kj->short_flag) assert_string_not_equal(ki->short_flag, kj->short_flag);
        }
        assert_int_equal(pv_config_get_source(d, k, NULL), PV_CFG_SRC_DEFAULT);
    }
    /* the defaults `pensieve start` had before the config layer (src/cli/cmd_start.c) and
     * the scheduler's (src/sched/pv_sched.h) */
    assert_int_equal(pv_config_get_int(d, PV_CFG_SERVER_PORT), 7777);
    assert_string_equal(pv_config_get_str(d, PV_CFG_SERVER_HOST), "127.0.0.1");
    assert_string_equal(pv_config_get_str(d, PV_CFG_SERVER_API_KEY), "pensieve-local-key");
    assert_int_equal(pv_config_get_int(d, PV_CFG_SERVER_MAX_CONCURRENT_REQUESTS), 4);
    assert_int_equal(pv_config_get_int(d, PV_CFG_SERVER_MAX_QUEUED_REQUESTS), 16);
    assert_int_equal(pv_config_get_int(d, PV_CFG_SERVER_REQUEST_BODY_LIMIT_MB), 32);
    assert_int_equal(pv_config_get_int(d, PV_CFG_MODEL_CONTEXT_LENGTH), 0);
    assert_int_equal(pv_config_get_int(d, PV_CFG_PERFORMANCE_THREADS), 0);
    assert_int_equal(pv_config_get_int(d, PV_CFG_PERFORMANCE_BATCH_SIZE), 512);
    assert_string_equal(pv_config_get_str(d, PV_CFG_PERFORMANCE_KV_CACHE_TYPE), "f16");
    assert_string_equal(pv_config_get_str(d, PV_CFG_LOGGING_LEVEL), "info");
    assert_null(pv_config_key_get(PV_CFG_KEY_COUNT));
    assert_null(pv_config_key_find("server", "nope"));
    pv_config_free(d);
}

/* ---------------- precedence, every key ---------------- */

/* Three distinct valid values per key, none the default: [0] file, [1] env, [2] flag.
 * toml[j] is value j as TOML text, text[j] as env/flag text; the expected stored value is
 * in s/i/f. */
typedef struct {
    char toml[3][96], text[3][96], s[3][96];
    int64_t i[3];
    double f[3];
} candidates;

static void make_candidates(const pv_config_key_info *k, candidates *c) {
    memset(c, 0, sizeof *c);
    static const char *const names[3] = {"file", "env", "flag"};
    switch (k->type) {
    case PV_CFG_INT: {
        int64_t def = strtoll(k->def, NULL, 10), v = (int64_t)k->min;
        for (int j = 0; j < 3; j++) {
            if (++v == def) v++;
            c->i[j] = v;
            snprintf(c->toml[j], 96, "%lld", (long long)v);
            snprintf(c->text[j], 96, "%lld", (long long)v);
        }
        break;
    }
    case PV_CFG_FLOAT:
        for (int j = 0; j < 3; j++) {
            c->f[j] = k->min + 0.5 + j;
            snprintf(c->toml[j], 96, "%.1f", c->f[j]);
            snprintf(c->text[j], 96, "%.1f", c->f[j]);
        }
        break;
    case PV_CFG_STRING:
        for (int j = 0; j < 3; j++) {
            /* the file's value uses escapes: "\"q\" \u00E9" must arrive decoded */
            snprintf(c->s[j], 96, "%s-\"q\" \xC3\xA9", names[j]);
            snprintf(c->toml[j], 96, "\"%s-\\\"q\\\" \\u00E9\"", names[j]);
            memcpy(c->text[j], c->s[j], sizeof c->text[j]);
        }
        break;
    case PV_CFG_ENUM: {
        /* non-default choices, cycling when there are fewer than three */
        char list[8][32];
        int n = 0;
        for (const char *p = k->choices; *p && n < 8;) {
            size_t len = strcspn(p, "|");
            snprintf(list[n], 32, "%.*s", (int)len, p);
            if (strcmp(list[n], k->def)) n++;
            p += len + (p[len] == '|');
        }
        for (int j = 0; j < 3; j++) {
            snprintf(c->s[j], 96, "%s", list[j % n]);
            snprintf(c->toml[j], 96, "\"%s\"", list[j % n]);
            snprintf(c->text[j], 96, "%s", list[j % n]);
        }
        break;
    }
    }
}

static void check_value(const pv_config *cfg, const pv_config_key_info *k, const candidates *c, int j) {
    switch (k->type) {
    case PV_CFG_INT: assert_int_equal(pv_config_get_int(cfg, k->id), c->i[j]); break;
    case PV_CFG_FLOAT: assert_true(pv_config_get_float(cfg, k->id) == c->f[j]); break;
    default: assert_string_equal(pv_config_get_str(cfg, k->id), c->s[j]); break;
    }
}

static void test_precedence_every_key(void **state) {
    (void)state;
    clean_env();
    char cwd_file[300];
    snprintf(cwd_file, sizeof cwd_file, "pensieve.toml");
    int checked = 0;
    for (int id = 0; id < PV_CFG_KEY_COUNT; id++) {
        const pv_config_key_info *k = pv_config_key_get(id);
        candidates c;
        make_candidates(k, &c);
        for (int mask = 0; mask < 8; mask++) {
            bool in_file = mask & 1, in_env = mask & 2, in_flag = mask & 4;
            if (in_file) {
                char text[400];
                /* a comment line first, so the key sits on line 3 */
                snprintf(text, sizeof text, "# precedence test\n[%s]\n%s = %s\n", k->section, k->name,
                         c.toml[0]);
                write_file(cwd_file, text);
            } else {
                unlink(cwd_file);
            }
            if (in_env)
                setenv(k->env, c.text[1], 1);
            else
                unsetenv(k->env);
            pv_config_flags fl;
            memset(&fl, 0, sizeof fl);
            if (in_flag) {
                /* the short spelling when there is one, to check both forms */
                fl.value[id] = c.text[2];
                fl.spelling[id] = k->short_flag ? k->short_flag : k->flag;
            }
            pv_config *cfg = NULL;
            pv_error err = {0};
            pv_status st = pv_config_load(&fl, &cfg, &err);
            if (st != PV_OK) fprintf(stderr, "[%s] %s mask %d: %s\n", k->section, k->name, mask, err.msg);
            assert_int_equal(st, PV_OK);
            const char *detail = NULL;
            pv_config_source src = pv_config_get_source(cfg, id, &detail);
            if (in_flag) {
                assert_int_equal(src, PV_CFG_SRC_FLAG);
                check_value(cfg, k, &c, 2);
                assert_string_equal(detail, k->short_flag ? k->short_flag : k->flag);
            } else if (in_env) {
                assert_int_equal(src, PV_CFG_SRC_ENV);
                check_value(cfg, k, &c, 1);
                assert_string_equal(detail, k->env);
            } else if (in_file) {
                assert_int_equal(src, PV_CFG_SRC_FILE);
                check_value(cfg, k, &c, 0);
                assert_string_equal(detail, "pensieve.toml:3");
            } else {
                assert_int_equal(src, PV_CFG_SRC_DEFAULT);
                assert_null(detail);
                char got[128], want[128];
                pv_config *d = pv_config_new_defaults();
                assert_string_equal(pv_config_format_value(cfg, id, got, sizeof got),
                                    pv_config_format_value(d, id, want, sizeof want));
                pv_config_free(d);
            }
            if (in_file)
                assert_string_equal(pv_config_file(cfg), "pensieve.toml");
            else
                assert_null(pv_config_file(cfg));
            /* no other key moved */
            for (int o = 0; o < PV_CFG_KEY_COUNT; o++)
                if (o != id) assert_int_equal(pv_config_get_source(cfg, o, NULL), PV_CFG_SRC_DEFAULT);
            pv_config_free(cfg);
            checked++;
        }
        unsetenv(k->env);
    }
    unlink(cwd_file);
    assert_int_equal(checked, 8 * PV_CFG_KEY_COUNT);
}

/* ---------------- file lookup ---------------- */

static void expect_file(const pv_config_flags *fl, const char *want_file, int64_t want_port) {
    pv_config *cfg = NULL;
    pv_error err = {0};
    pv_status st = pv_config_load(fl, &cfg, &err);
    if (st != PV_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, PV_OK);
    if (want_file)
        assert_string_equal(pv_config_file(cfg), want_file);
    else
        assert_null(pv_config_file(cfg));
    assert_int_equal(pv_config_get_int(cfg, PV_CFG_SERVER_PORT), want_port);
    pv_config_free(cfg);
}

static void test_file_lookup(void **state) {
    (void)state;
    clean_env();
    char home_cfg[700], xdg[300], xdg_cfg[400], explicit_path[400], envfile[400], dir[600];
    snprintf(dir, sizeof dir, "%s/home/.config/pensieve", tmpdir);
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s/xdg/pensieve'", dir, tmpdir);
    assert_int_equal(system(cmd), 0);
    snprintf(home_cfg, sizeof home_cfg, "%s/pensieve.toml", dir);
    snprintf(xdg, sizeof xdg, "%s/xdg", tmpdir);
    snprintf(xdg_cfg, sizeof xdg_cfg, "%s/xdg/pensieve/pensieve.toml", tmpdir);
    snprintf(explicit_path, sizeof explicit_path, "%s/explicit.toml", tmpdir);
    snprintf(envfile, sizeof envfile, "%s/env.toml", tmpdir);
    write_file(home_cfg, "[server]\nport = 1001\n");
    write_file(xdg_cfg, "[server]\nport = 1002\n");
    write_file(explicit_path, "[server]\nport = 1004\n");
    write_file(envfile, "[server]\nport = 1005\n");
    pv_config_flags fl;
    memset(&fl, 0, sizeof fl);

    expect_file(&fl, home_cfg, 1001); /* ~/.config when XDG_CONFIG_HOME is unset */
    setenv("XDG_CONFIG_HOME", xdg, 1);
    expect_file(&fl, xdg_cfg, 1002);
    write_file("pensieve.toml", "[server]\nport = 1003\n");
    expect_file(&fl, "pensieve.toml", 1003);
    setenv("PENSIEVE_CONFIG", envfile, 1);
    expect_file(&fl, envfile, 1005);
    fl.config_path = explicit_path;
    expect_file(&fl, explicit_path, 1004);

    /* an explicit file that does not exist is an error; a searched one is optional */
    fl.config_path = "/nonexistent/p.toml";
    pv_config *cfg = NULL;
    pv_error err = {0};
    assert_int_equal(pv_config_load(&fl, &cfg, &err), PV_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "--config: configuration file '/nonexistent/p.toml' not found"));
    fl.config_path = NULL;
    setenv("PENSIEVE_CONFIG", "/nonexistent/q.toml", 1);
    assert_int_equal(pv_config_load(&fl, &cfg, &err), PV_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "PENSIEVE_CONFIG"));
    assert_null(cfg);
    unsetenv("PENSIEVE_CONFIG");
    unlink("pensieve.toml");
    unlink(xdg_cfg);
    expect_file(&fl, NULL, 7777); /* XDG set but empty: ~/.config is not consulted */
    unsetenv("XDG_CONFIG_HOME");
    unlink(home_cfg);
    expect_file(&fl, NULL, 7777);
}

/* ---------------- configuration errors ---------------- */

typedef struct {
    const char *file; /* pensieve.toml content (NULL: none) */
    const char *env;  /* "NAME=value" or NULL */
    const char *flag; /* "--flag", value below */
    const char *flag_value;
    const char *needle; /* the whole expected message, or a distinctive part */
} cfg_err_case;

static const cfg_err_case cfg_errors[] = {
    {"[server]\nprot = 1\n", NULL, NULL, NULL,
     "pensieve.toml:2:1: [server] unknown key 'prot' (known: host, port, api_key, max_concurrent_requests"},
    {"[sever]\nport = 1\n", NULL, NULL, NULL,
     "pensieve.toml:1:1: unknown section [sever] (known: model, server, performance, logging)"},
    {"port = 1\n", NULL, NULL, NULL, "pensieve.toml:1:1: key 'port' must be inside a section"},
    {"[server]\nport = \"80\"\n", NULL, NULL, NULL,
     "pensieve.toml:2:8: [server] port: expected an integer, found a string"},
    {"[server]\nport = 8.0\n", NULL, NULL, NULL,
     "pensieve.toml:2:8: [server] port: expected an integer, found a float"},
    {"[server]\n  port   =   70000\n", NULL, NULL, NULL,
     "pensieve.toml:2:14: [server] port: 70000 is out of range 0..65535"},
    {"[performance]\nmemory_limit_gb = -1.5\n", NULL, NULL, NULL,
     "pensieve.toml:2:19: [performance] memory_limit_gb: -1.5 is out of range 0..1048576"},
    {"[performance]\nmemory_limit_gb = inf\n", NULL, NULL, NULL, "memory_limit_gb: must be a finite number"},
    {"[performance]\nkv_cache_type = \"q8\"\n", NULL, NULL, NULL,
     "pensieve.toml:2:17: [performance] kv_cache_type: 'q8' is not one of f16|f32"},
    {"[server]\napi_key = \"\"\n", NULL, NULL, NULL,
     "pensieve.toml:2:11: [server] api_key: must not be empty (use \"none\" to disable authentication)"},
    {"[server]\nhost = \"a\\u0000b\"\n", NULL, NULL, NULL, "[server] host: must not contain NUL characters"},
    {"[server.tls]\ncert = 1\n", NULL, NULL, NULL, "pensieve.toml:1:9: [server] unknown key 'tls'"},
    {"[logging]\nlevel = [\"info\"]\n", NULL, NULL, NULL,
     "[logging] level: expected a string, found an array"},
    {"[model]\npath = 'x'\npath = 'y'\n", NULL, NULL, NULL, "pensieve.toml:3:1: duplicate key 'path'"},
    {NULL, "PENSIEVE_SERVER_PORT=80x", NULL, NULL, "environment PENSIEVE_SERVER_PORT: invalid integer '80x'"},
    {NULL, "PENSIEVE_SERVER_PORT=", NULL, NULL, "environment PENSIEVE_SERVER_PORT: invalid integer ''"},
    {NULL, "PENSIEVE_LOGGING_LEVEL=loud", NULL, NULL,
     "environment PENSIEVE_LOGGING_LEVEL: 'loud' is not one of error|warn|info|debug|trace"},
    {NULL, "PENSIEVE_PERFORMANCE_MEMORY_LIMIT_GB=nan", NULL, NULL, "must be a finite number"},
    {NULL, NULL, "--parallel", "0", "--parallel: 0 is out of range 1..256"},
    {NULL, NULL, "-c", "-5", "-c: -5 is out of range 0..16777216"},
    {NULL, NULL, "--max-body-mb", "4097", "--max-body-mb: 4097 is out of range 1..4096"},
    {NULL, NULL, "--api-key", "", "--api-key: must not be empty"},
    {NULL, NULL, "--port", " 80", "--port: invalid integer ' 80'"},
};

static void test_config_errors(void **state) {
    (void)state;
    for (size_t i = 0; i < PV_ARRAY_LEN(cfg_errors); i++) {
        const cfg_err_case *c = &cfg_errors[i];
        clean_env();
        if (c->file) write_file("pensieve.toml", c->file);
        char envname[128] = "";
        if (c->env) {
            const char *eq = strchr(c->env, '=');
            snprintf(envname, sizeof envname, "%.*s", (int)(eq - c->env), c->env);
            setenv(envname, eq + 1, 1);
        }
        pv_config_flags fl;
        memset(&fl, 0, sizeof fl);
        if (c->flag) {
            char *argv[] = {(char *)c->flag, (char *)c->flag_value};
            int idx = 0;
            pv_error ferr = {0};
            assert_int_equal(pv_config_flag_match(2, argv, &idx, &fl, &ferr), 1);
            assert_int_equal(idx, 1);
        }
        pv_config *cfg = NULL;
        pv_error err = {0};
        pv_status st = pv_config_load(&fl, &cfg, &err);
        bool ok = st != PV_OK && cfg == NULL && strstr(err.msg, c->needle);
        if (!ok)
            fprintf(stderr, "case %zu: got %s '%s', want '%s'\n", i, pv_status_name(st), err.msg, c->needle);
        assert_true(ok);
        if (envname[0]) unsetenv(envname);
    }
    clean_env();
}

/* ---------------- flags ---------------- */

static void test_flag_match(void **state) {
    (void)state;
    char *argv[] = {"start",  "--port=8080", "-m", "model.gguf",  "--bogus", "--config",
                    "c.toml", "-t",          "3",  "--log-level", "DEBUG",   "--ctx-size"};
    int argc = (int)PV_ARRAY_LEN(argv);
    pv_config_flags fl;
    memset(&fl, 0, sizeof fl);
    pv_error err = {0};
    int i = 1;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), 1);
    assert_int_equal(i, 1);
    assert_string_equal(fl.value[PV_CFG_SERVER_PORT], "8080");
    assert_string_equal(fl.spelling[PV_CFG_SERVER_PORT], "--port");
    i = 2;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), 1);
    assert_int_equal(i, 3);
    assert_string_equal(fl.value[PV_CFG_MODEL_PATH], "model.gguf");
    i = 4;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), 0); /* not ours */
    i = 5;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), 1);
    assert_string_equal(fl.config_path, "c.toml");
    i = 7;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), 1);
    i = 9;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), 1);
    i = 11;
    assert_int_equal(pv_config_flag_match(argc, argv, &i, &fl, &err), -1);
    assert_string_equal(err.msg, "--ctx-size needs a value");
    /* the values are checked by the loader: DEBUG is accepted case-insensitively */
    clean_env();
    fl.config_path = NULL;
    pv_config *cfg = NULL;
    assert_int_equal(pv_config_load(&fl, &cfg, &err), PV_OK);
    assert_int_equal(pv_config_get_int(cfg, PV_CFG_PERFORMANCE_THREADS), 3);
    assert_string_equal(pv_config_get_str(cfg, PV_CFG_LOGGING_LEVEL), "debug");
    assert_int_equal(pv_config_get_int(cfg, PV_CFG_SERVER_PORT), 8080);
    pv_config_free(cfg);
}

/* ---------------- reload diff ---------------- */

static void test_reload_diff(void **state) {
    (void)state;
    clean_env();
    write_file("pensieve.toml", "[server]\napi_key = \"k1\"\nport = 8000\n[logging]\nlevel = \"warn\"\n");
    pv_config *a = NULL, *b = NULL;
    pv_error err = {0};
    assert_int_equal(pv_config_load(NULL, &a, &err), PV_OK);
    /* the file changes: key and level (live), port (restart); threads via env (restart) */
    write_file("pensieve.toml", "[server]\napi_key = \"k2\"\nport = 8001\n[logging]\nlevel = \"debug\"\n");
    setenv("PENSIEVE_PERFORMANCE_THREADS", "2", 1);
    assert_int_equal(pv_config_load(NULL, &b, &err), PV_OK);
    pv_config_change ch[PV_CFG_KEY_COUNT];
    size_t n = pv_config_diff(a, b, ch);
    assert_int_equal(n, 4);
    /* table order: port, api_key, threads, level */
    assert_int_equal(ch[0].key, PV_CFG_SERVER_PORT);
    assert_false(ch[0].live);
    assert_int_equal(ch[1].key, PV_CFG_SERVER_API_KEY);
    assert_true(ch[1].live);
    assert_int_equal(ch[2].key, PV_CFG_PERFORMANCE_THREADS);
    assert_false(ch[2].live);
    assert_int_equal(ch[3].key, PV_CFG_LOGGING_LEVEL);
    assert_true(ch[3].live);
    assert_int_equal(pv_config_diff(b, b, ch), 0);
    /* a reload that fails leaves the caller's config untouched and reports the line */
    write_file("pensieve.toml", "[server]\nport = -1\n");
    pv_config *c = (pv_config *)0x1;
    assert_int_equal(pv_config_load(NULL, &c, &err), PV_ERR_RANGE);
    assert_null(c);
    assert_non_null(strstr(err.msg, "pensieve.toml:2:8: [server] port: -1 is out of range"));
    assert_string_equal(pv_config_get_str(b, PV_CFG_SERVER_API_KEY), "k2");
    pv_config_free(a);
    pv_config_free(b);
    unsetenv("PENSIEVE_PERFORMANCE_THREADS");
    unlink("pensieve.toml");
}

/* ---------------- writers ---------------- */

static void test_template_parses_to_defaults(void **state) {
    (void)state;
    clean_env();
    FILE *f = fopen("pensieve.toml", "w");
    assert_non_null(f);
    assert_true(pv_config_write_template(f));
    fclose(f);
    pv_config *cfg = NULL;
    pv_error err = {0};
    assert_int_equal(pv_config_load(NULL, &cfg, &err), PV_OK);
    pv_config *d = pv_config_new_defaults();
    pv_config_change ch[PV_CFG_KEY_COUNT];
    assert_int_equal(pv_config_diff(d, cfg, ch), 0);
    /* every key came from the file */
    for (int k = 0; k < PV_CFG_KEY_COUNT; k++)
        assert_int_equal(pv_config_get_source(cfg, k, NULL), PV_CFG_SRC_FILE);
    pv_config_free(d);
    pv_config_free(cfg);
    unlink("pensieve.toml");
}

static int setup_dir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pv_test_config_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    char home[300];
    snprintf(home, sizeof home, "%s/home", tmpdir);
    mkdir(home, 0700);
    return chdir(tmpdir);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--dump")) return dump_files(argc - 2, argv + 2);
    if (setup_dir() != 0) {
        perror("temp dir");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toml_values),
        cmocka_unit_test(test_toml_errors),
        cmocka_unit_test(test_key_table),
        cmocka_unit_test(test_precedence_every_key),
        cmocka_unit_test(test_file_lookup),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_flag_match),
        cmocka_unit_test(test_reload_diff),
        cmocka_unit_test(test_template_parses_to_defaults),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
