/* schema.c — JSON Schema -> GBNF. Each schema node becomes a named rule
 * "<prefix>-<kind><n>"; shared primitives (whitespace, string characters, numbers, any JSON
 * value) are emitted once per prefix when first used. Objects list their properties in
 * schema order through two chains of "tail" rules (one for "nothing written yet", one for
 * "a member was written, so a comma comes first"), which makes optional members skippable
 * without ever allowing a stray comma. When additional properties are allowed, their keys
 * go through a rule built from a trie of the declared keys that accepts exactly the strings
 * that are none of them (no duplicate of a declared member can slip in). What is supported,
 * ignored and refused is listed in pv_grammar.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_grammar_int.h"

#define SCHEMA_MAX_DEPTH 64
#define SCHEMA_MAX_KEY 256

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

typedef struct {
    char *ref;
    char *rule;
} refmap;

typedef struct {
    sbuf out;
    const char *prefix;
    const json_t *root;
    unsigned counter;
    unsigned have; /* primitive rules already emitted (bits of enum prim) */
    refmap *refs;
    size_t n_refs, cap_refs;
    int depth;
    pv_error *err;
    pv_status st;
    char pnames[8][160]; /* names of the primitive rules, "<prefix>-<suffix>" */
} sconv;

enum prim { P_SPACE, P_CHAR, P_STRING, P_INTEGER, P_NUMBER, P_BOOLEAN, P_NULL, P_VALUE, P_COUNT };
_Static_assert(P_COUNT == 8, "sconv.pnames holds 8 primitive names");

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *q = realloc(b->s, nc);
        if (!q) {
            b->oom = true;
            return;
        }
        b->s = q;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) {
    sb_putn(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        sb_putn(b, tmp, (size_t)k);
        return;
    }
    char *big = malloc((size_t)k + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)k);
    free(big);
}

/* Writes bytes as a GBNF literal "..." (quote, backslash and control bytes escaped). */
static void sb_literal(sbuf *b, const char *s, size_t n) {
    sb_putn(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_putn(b, e, 2);
        } else if (c < 0x20 || c == 0x7F) {
            sb_printf(b, "\\x%02X", c);
        } else {
            sb_putn(b, (const char *)&c, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

static bool fail(sconv *c, pv_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(sconv *c, pv_status st, const char *fmt, ...) {
    if (c->st != PV_OK) return false;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = pv_error_set(c->err, st, "json schema: %s", msg);
    return false;
}

/* A fresh rule name "<prefix>-<kind><n>" (malloc'ed). */
static char *new_name(sconv *c, const char *kind) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s-%s%u", c->prefix, kind, c->counter++);
    char *s = strdup(buf);
    if (!s) fail(c, PV_ERR_NOMEM, "out of memory");
    return s;
}

static void emit_rule(sconv *c, const char *name, const char *body) {
    sb_printf(&c->out, "%s ::= %s\n", name, body ? body : "");
}

/* Name of primitive p (emitting its definition the first time). The string lives in the
 * converter (c->pnames) until the conversion ends. */
static const char *prim(sconv *c, enum prim p) {
    static const struct {
        const char *suffix;
        const char *body; /* %1$s = prefix */
    } defs[P_COUNT] = {
        [P_SPACE] = {"space", "| \" \" | \"\\n\" [ \\t]{0,20}"},
        [P_CHAR] = {"char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" ( [0-9a-cA-Ce-fE-F] "
                            "[0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )"},
        [P_STRING] = {"string", "\"\\\"\" %1$s-char* \"\\\"\""},
        [P_INTEGER] = {"integer", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )"},
        [P_NUMBER] = {"number", "%1$s-integer ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?"},
        [P_BOOLEAN] = {"boolean", "\"true\" | \"false\""},
        [P_NULL] = {"null", "\"null\""},
        [P_VALUE] = {"value", "%1$s-object | %1$s-array | %1$s-string | %1$s-number | %1$s-boolean | "
                              "%1$s-null\n"
                              "%1$s-object ::= \"{\" %1$s-space ( %1$s-string %1$s-space \":\" %1$s-space "
                              "%1$s-value %1$s-space ( \",\" %1$s-space %1$s-string %1$s-space \":\" "
                              "%1$s-space %1$s-value %1$s-space )* )? \"}\"\n"
                              "%1$s-array ::= \"[\" %1$s-space ( %1$s-value %1$s-space ( \",\" %1$s-space "
                              "%1$s-value %1$s-space )* )? \"]\""},
    };
    static const enum prim deps[P_COUNT][3] = {
        [P_STRING] = {P_CHAR, P_COUNT, P_COUNT},
        [P_NUMBER] = {P_INTEGER, P_COUNT, P_COUNT},
        [P_VALUE] = {P_SPACE, P_STRING, P_NUMBER},
        [P_SPACE] = {P_COUNT, P_COUNT, P_COUNT},
        [P_CHAR] = {P_COUNT, P_COUNT, P_COUNT},
        [P_INTEGER] = {P_COUNT, P_COUNT, P_COUNT},
        [P_BOOLEAN] = {P_COUNT, P_COUNT, P_COUNT},
        [P_NULL] = {P_COUNT, P_COUNT, P_COUNT},
    };
    if (!(c->have & (1u << p))) {
        c->have |= 1u << p;
        for (int i = 0; i < 3; i++)
            if (deps[p][i] != P_COUNT) (void)prim(c, deps[p][i]);
        if (p == P_VALUE) {
            (void)prim(c, P_BOOLEAN);
            (void)prim(c, P_NULL);
        }
        sb_printf(&c->out, "%s-%s ::= ", c->prefix, defs[p].suffix);
        /* expand %1$s by hand (the body is a constant, not a format argument list) */
        for (const char *q = defs[p].body; *q; q++) {
            if (strncmp(q, "%1$s", 4) == 0) {
                sb_puts(&c->out, c->prefix);
                q += 3;
            } else {
                sb_putn(&c->out, q, 1);
            }
        }
        sb_puts(&c->out, "\n");
    }
    snprintf(c->pnames[p], sizeof c->pnames[p], "%s-%s", c->prefix, defs[p].suffix);
    return c->pnames[p];
}

static char *gen(sconv *c, const json_t *schema);

static char *strdup_checked(sconv *c, const char *s) {
    char *r = strdup(s);
    if (!r) fail(c, PV_ERR_NOMEM, "out of memory");
    return r;
}

/* Appends the GBNF for one literal JSON value: scalars as their compact JSON text; arrays
 * and objects element by element with the same optional whitespace as everywhere else. */
static bool literal_of(sconv *c, sbuf *body, const json_t *v, int depth) {
    if (depth > SCHEMA_MAX_DEPTH) return fail(c, PV_ERR_UNSUPPORTED, "enum/const value nested too deeply");
    if (json_is_object(v) || json_is_array(v)) {
        const char *sp = prim(c, P_SPACE);
        bool obj = json_is_object(v);
        sb_printf(body, "\"%c\" %s", obj ? '{' : '[', sp);
        size_t i = 0;
        if (obj) {
            const char *key;
            json_t *x;
            json_object_foreach((json_t *)v, key, x) {
                if (i++) sb_printf(body, " \",\" %s", sp);
                json_t *ks = json_string(key);
                char *enc = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
                json_decref(ks);
                if (!enc) return fail(c, PV_ERR_NOMEM, "out of memory");
                sb_putn(body, " ", 1);
                sb_literal(body, enc, strlen(enc));
                free(enc);
                sb_printf(body, " %s \":\" %s ", sp, sp);
                if (!literal_of(c, body, x, depth + 1)) return false;
                sb_printf(body, " %s", sp);
            }
        } else {
            size_t k;
            json_t *x;
            json_array_foreach(v, k, x) {
                sb_puts(body, i++ ? " \",\" " : " ");
                if (i > 1) sb_printf(body, "%s ", sp);
                if (!literal_of(c, body, x, depth + 1)) return false;
                sb_printf(body, " %s", sp);
            }
        }
        sb_printf(body, " \"%c\"", obj ? '}' : ']');
        return true;
    }
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!txt) return fail(c, PV_ERR_NOMEM, "out of memory");
    sb_literal(body, txt, strlen(txt));
    free(txt);
    return true;
}

static bool type_matches(const json_t *v, const char *type) {
    static const struct {
        const char *name;
        int t1, t2, t3;
    } tab[] = {
        {"string", JSON_STRING, -1, -1},  {"integer", JSON_INTEGER, -1, -1},
        {"number", JSON_INTEGER, JSON_REAL, -1}, {"boolean", JSON_TRUE, JSON_FALSE, -1},
        {"null", JSON_NULL, -1, -1},      {"object", JSON_OBJECT, -1, -1},
        {"array", JSON_ARRAY, -1, -1},
    };
    int t = (int)json_typeof(v);
    for (size_t i = 0; i < PV_ARRAY_LEN(tab); i++)
        if (strcmp(tab[i].name, type) == 0) return t == tab[i].t1 || t == tab[i].t2 || t == tab[i].t3;
    if (json_is_real(v) && strcmp(type, "integer") == 0) {
        double d = json_real_value(v);
        return d == (double)(long long)d;
    }
    return false;
}

/* Does value v satisfy the schema's "type" (absent = yes)? */
static bool value_fits_type(const json_t *schema, const json_t *v) {
    const json_t *t = json_object_get(schema, "type");
    if (json_is_string(t)) return type_matches(v, json_string_value(t));
    if (json_is_array(t)) {
        size_t i;
        const json_t *x;
        json_array_foreach(t, i, x) if (json_is_string(x) && type_matches(v, json_string_value(x))) return true;
        return false;
    }
    return true;
}

static char *gen_enum(sconv *c, const json_t *schema, const json_t *values) {
    sbuf body = {0};
    size_t i, k = 0;
    const json_t *v;
    json_array_foreach(values, i, v) {
        if (!value_fits_type(schema, v)) continue;
        if (k++) sb_puts(&body, " | ");
        if (!literal_of(c, &body, v, 0)) break;
    }
    char *name = NULL;
    if (c->st == PV_OK && k == 0) {
        fail(c, PV_ERR_UNSUPPORTED, "enum/const allows no value of the declared type");
    } else if (c->st == PV_OK && !body.oom) {
        name = new_name(c, "enum");
        if (name) emit_rule(c, name, body.s);
    }
    if (body.oom) fail(c, PV_ERR_NOMEM, "out of memory");
    free(body.s);
    return name;
}

static bool get_count(sconv *c, const json_t *schema, const char *key, uint64_t *out, bool *present) {
    const json_t *v = json_object_get(schema, key);
    *present = false;
    if (!v) return true;
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v)) d = json_real_value(v);
    else return fail(c, PV_ERR_INVALID, "\"%s\" must be a number", key);
    if (!(d >= 0) || d != (double)(uint64_t)d) return fail(c, PV_ERR_INVALID, "\"%s\" must be a non-negative integer", key);
    if (d > 100000) {
        /* beyond what the grammar repeats exactly: a maximum this large is no bound in
         * practice (leave it open), a minimum is refused */
        if (key[1] == 'i') return fail(c, PV_ERR_UNSUPPORTED, "\"%s\" above 100000", key);
        return true;
    }
    *out = (uint64_t)d;
    *present = true;
    return true;
}

/* "{m,n}" / "{m,}" / "*" etc. for a repetition of the item (empty when exactly once). */
static void rep_suffix(char *buf, size_t cap, uint64_t min, bool has_max, uint64_t max) {
    if (!has_max) {
        if (min == 0) snprintf(buf, cap, "*");
        else snprintf(buf, cap, "{%llu,}", (unsigned long long)min);
    } else {
        snprintf(buf, cap, "{%llu,%llu}", (unsigned long long)min, (unsigned long long)max);
    }
}

static char *gen_string(sconv *c, const json_t *schema) {
    uint64_t mn = 0, mx = 0;
    bool has_mn, has_mx;
    if (!get_count(c, schema, "minLength", &mn, &has_mn) || !get_count(c, schema, "maxLength", &mx, &has_mx))
        return NULL;
    if (!has_mn && !has_mx) return strdup_checked(c, prim(c, P_STRING));
    if (has_mx && mx < mn) return fail(c, PV_ERR_INVALID, "maxLength < minLength"), NULL;
    char rep[64];
    rep_suffix(rep, sizeof rep, mn, has_mx, mx);
    char *name = new_name(c, "string");
    if (!name) return NULL;
    sbuf body = {0};
    sb_printf(&body, "\"\\\"\" %s%s \"\\\"\"", prim(c, P_CHAR), rep);
    emit_rule(c, name, body.s);
    free(body.s);
    return name;
}

static char *gen_array(sconv *c, const json_t *schema) {
    uint64_t mn = 0, mx = 0;
    bool has_mn, has_mx;
    if (!get_count(c, schema, "minItems", &mn, &has_mn) || !get_count(c, schema, "maxItems", &mx, &has_mx))
        return NULL;
    if (has_mx && mx < mn) return fail(c, PV_ERR_INVALID, "maxItems < minItems"), NULL;
    const json_t *items = json_object_get(schema, "items");
    char *item = items ? gen(c, items) : strdup_checked(c, prim(c, P_VALUE));
    if (!item) return NULL;
    const char *sp = prim(c, P_SPACE);
    char *name = new_name(c, "array");
    if (!name) {
        free(item);
        return NULL;
    }
    sbuf body = {0};
    char rep[64];
    if (has_mx && mx == 0) {
        sb_printf(&body, "\"[\" %s \"]\"", sp);
    } else if (mn == 0) {
        rep_suffix(rep, sizeof rep, 0, has_mx, has_mx ? mx - 1 : 0);
        sb_printf(&body, "\"[\" %s ( %s %s ( \",\" %s %s %s )%s )? \"]\"", sp, item, sp, sp, item, sp, rep);
    } else {
        rep_suffix(rep, sizeof rep, mn - 1, has_mx, has_mx ? mx - 1 : 0);
        sb_printf(&body, "\"[\" %s %s %s ( \",\" %s %s %s )%s \"]\"", sp, item, sp, sp, item, sp, rep);
    }
    emit_rule(c, name, body.s);
    free(body.s);
    free(item);
    return name;
}

/* ---- keys that are none of the declared ones ---- */

/* Is a prefix of a JSON-encoded string (no quotes) in the middle of an escape sequence? */
static bool in_escape(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= n) return true;
        size_t step = s[i + 1] == 'u' ? 6 : 2;
        if (i + step > n) return true;
        i += step;
    }
    return false;
}

static size_t utf8_seq_len(unsigned char b) {
    return b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rule for the rest of a key after the common prefix of keys[lo..hi) of byte length d
 * (everything up to and including the closing quote). */
static char *gen_notkey_node(sconv *c, char **keys, size_t lo, size_t hi, size_t d) {
    sbuf body = {0};
    bool terminal = false, escaping = in_escape(keys[lo], d);
    size_t k = 0;
    char *name = new_name(c, "xkey");
    if (!name) return NULL;
    sbuf cls = {0};
    sb_puts(&cls, "[^\"\\\\\\x00-\\x1F");
    for (size_t i = lo; i < hi && c->st == PV_OK;) {
        size_t len = strlen(keys[i]);
        if (len == d) {
            terminal = true;
            i++;
            continue;
        }
        size_t cl = utf8_seq_len((unsigned char)keys[i][d]);
        if (d + cl > len) cl = len - d;
        size_t j = i + 1;
        while (j < hi && strlen(keys[j]) >= d + cl && memcmp(keys[j] + d, keys[i] + d, cl) == 0) j++;
        char *child = gen_notkey_node(c, keys, i, j, d + cl);
        if (!child) break;
        if (k++) sb_puts(&body, " | ");
        sb_literal(&body, keys[i] + d, cl);
        sb_printf(&body, " %s", child);
        free(child);
        if (cl == 1 && (unsigned char)keys[i][d] < 0x80) {
            sb_printf(&cls, "\\x%02X", (unsigned char)keys[i][d]);
        } else {
            sb_putn(&cls, keys[i] + d, cl);
        }
        i = j;
    }
    sb_puts(&cls, "]");
    if (!escaping) {
        if (k++) sb_puts(&body, " | ");
        sb_printf(&body, "%s %s* \"\\\"\"", cls.s, prim(c, P_CHAR));
        if (!terminal) sb_puts(&body, " | \"\\\"\"");
    }
    if (c->st == PV_OK && !body.oom && !cls.oom) emit_rule(c, name, body.s);
    else fail(c, PV_ERR_NOMEM, "out of memory");
    free(body.s);
    free(cls.s);
    if (c->st != PV_OK) {
        free(name);
        return NULL;
    }
    return name;
}

/* Rule matching a quoted key that differs from every declared key. */
static char *gen_notkey(sconv *c, const json_t *props) {
    size_t n = json_object_size(props), k = 0;
    if (n == 0) return strdup_checked(c, prim(c, P_STRING));
    char **keys = calloc(n, sizeof(char *));
    if (!keys) return fail(c, PV_ERR_NOMEM, "out of memory"), NULL;
    const char *key;
    const json_t *v;
    char *res = NULL;
    json_object_foreach((json_t *)props, key, v) {
        json_t *js = json_string(key);
        char *enc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
        json_decref(js);
        if (!enc) {
            fail(c, PV_ERR_NOMEM, "out of memory");
            goto out;
        }
        size_t len = strlen(enc);
        if (len - 2 > SCHEMA_MAX_KEY) {
            free(enc);
            fail(c, PV_ERR_UNSUPPORTED, "property name longer than %d bytes", SCHEMA_MAX_KEY);
            goto out;
        }
        memmove(enc, enc + 1, len - 2);
        enc[len - 2] = 0;
        keys[k++] = enc;
    }
    qsort(keys, k, sizeof(char *), cmp_str);
    char *node = gen_notkey_node(c, keys, 0, k, 0);
    if (node) {
        res = new_name(c, "xkey");
        if (res) {
            char body[400];
            snprintf(body, sizeof body, "\"\\\"\" %s", node);
            emit_rule(c, res, body);
        }
        free(node);
    }
out:
    for (size_t i = 0; i < k; i++) free(keys[i]);
    free(keys);
    return res;
}

static char *gen_object(sconv *c, const json_t *schema) {
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    if (props && !json_is_object(props)) return fail(c, PV_ERR_INVALID, "\"properties\" must be an object"), NULL;
    if (req && !json_is_array(req)) return fail(c, PV_ERR_INVALID, "\"required\" must be an array"), NULL;
    /* additionalProperties: absent -> closed when properties are listed, open otherwise */
    const json_t *extra = NULL; /* schema for extra members, NULL = none allowed */
    json_t *any = json_true();
    if (!addl) extra = props ? NULL : any;
    else if (json_is_false(addl)) extra = NULL;
    else if (json_is_true(addl) || json_is_object(addl)) extra = addl;
    else return fail(c, PV_ERR_INVALID, "\"additionalProperties\" must be a boolean or a schema"), NULL;
    size_t n = props ? json_object_size(props) : 0;
    /* every required name must be a declared property (or extras must allow it) */
    size_t ri;
    const json_t *rv;
    json_array_foreach(req, ri, rv) {
        if (!json_is_string(rv)) return fail(c, PV_ERR_INVALID, "\"required\" entries must be strings"), NULL;
        if (!json_object_get(props, json_string_value(rv)))
            return fail(c, PV_ERR_UNSUPPORTED, "required property \"%s\" is not listed in \"properties\"",
                        json_string_value(rv)),
                   NULL;
    }
    const char *sp = prim(c, P_SPACE);
    char **kv = calloc(n + 1, sizeof(char *));
    bool *required = calloc(n + 1, sizeof(bool));
    char **more = calloc(n + 1, sizeof(char *));
    char **first = calloc(n + 1, sizeof(char *));
    char *name = NULL;
    sbuf body = {0};
    if (!kv || !required || !more || !first) {
        fail(c, PV_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t i = 0;
    const char *key;
    const json_t *sub;
    json_object_foreach((json_t *)props, key, sub) {
        char *val = gen(c, sub);
        if (!val) goto out;
        json_t *js = json_string(key);
        char *enc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
        json_decref(js);
        kv[i] = new_name(c, "kv");
        if (!enc || !kv[i]) {
            free(val);
            free(enc);
            fail(c, PV_ERR_NOMEM, "out of memory");
            goto out;
        }
        body.n = 0;
        sb_literal(&body, enc, strlen(enc));
        sb_printf(&body, " %s \":\" %s %s %s", sp, sp, val, sp);
        emit_rule(c, kv[i], body.s);
        free(enc);
        free(val);
        json_array_foreach(req, ri, rv) if (strcmp(json_string_value(rv), key) == 0) required[i] = true;
        i++;
    }
    /* tails from the end: more[n], first[n] = the additional members (or nothing) */
    more[n] = new_name(c, "more");
    first[n] = new_name(c, "first");
    if (!more[n] || !first[n]) goto out;
    if (extra) {
        char *xkey = gen_notkey(c, props);
        char *xval = xkey ? gen(c, extra) : NULL;
        char *xkv = xval ? new_name(c, "xkv") : NULL;
        if (xkv) {
            body.n = 0;
            sb_printf(&body, "%s %s \":\" %s %s %s", xkey, sp, sp, xval, sp);
            emit_rule(c, xkv, body.s);
            body.n = 0;
            sb_printf(&body, "( \",\" %s %s )*", sp, xkv);
            emit_rule(c, more[n], body.s);
            body.n = 0;
            sb_printf(&body, "( %s %s )?", xkv, more[n]);
            emit_rule(c, first[n], body.s);
        }
        free(xkey);
        free(xval);
        free(xkv);
        if (c->st != PV_OK) goto out;
    } else {
        emit_rule(c, more[n], "\"\"");
        emit_rule(c, first[n], "\"\"");
    }
    for (size_t k = n; k-- > 0;) {
        more[k] = new_name(c, "more");
        first[k] = new_name(c, "first");
        if (!more[k] || !first[k]) goto out;
        body.n = 0;
        if (required[k]) sb_printf(&body, "\",\" %s %s %s", sp, kv[k], more[k + 1]);
        else sb_printf(&body, "( \",\" %s %s )? %s", sp, kv[k], more[k + 1]);
        emit_rule(c, more[k], body.s);
        body.n = 0;
        if (required[k]) sb_printf(&body, "%s %s", kv[k], more[k + 1]);
        else sb_printf(&body, "%s %s | %s", kv[k], more[k + 1], first[k + 1]);
        emit_rule(c, first[k], body.s);
    }
    name = new_name(c, "object");
    if (name) {
        body.n = 0;
        sb_printf(&body, "\"{\" %s %s \"}\"", sp, first[0]);
        emit_rule(c, name, body.s);
    }
out:
    if (body.oom) fail(c, PV_ERR_NOMEM, "out of memory");
    if (c->st != PV_OK) {
        free(name);
        name = NULL;
    }
    for (size_t k = 0; k <= n && kv; k++) {
        free(kv[k]);
        if (more) free(more[k]);
        if (first) free(first[k]);
    }
    free(kv);
    free(required);
    free(more);
    free(first);
    free(body.s);
    return name;
}

/* Resolves a local JSON pointer "#/a/b" against the root schema. */
static const json_t *resolve_ref(sconv *c, const char *ref) {
    if (ref[0] != '#') return fail(c, PV_ERR_UNSUPPORTED, "$ref \"%s\" is not local (only \"#...\")", ref), NULL;
    const json_t *cur = c->root;
    const char *p = ref + 1;
    while (*p) {
        if (*p != '/') return fail(c, PV_ERR_INVALID, "$ref \"%s\": bad JSON pointer", ref), NULL;
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1')) ch = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof tok) return fail(c, PV_ERR_UNSUPPORTED, "$ref \"%s\": name too long", ref), NULL;
            tok[n++] = ch;
        }
        tok[n] = 0;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long idx = strtoul(tok, &end, 10);
            cur = (*end || !n) ? NULL : json_array_get(cur, idx);
        } else {
            cur = NULL;
        }
        if (!cur) return fail(c, PV_ERR_NOT_FOUND, "$ref \"%s\" does not resolve", ref), NULL;
    }
    return cur;
}

static char *gen_ref(sconv *c, const char *ref) {
    for (size_t i = 0; i < c->n_refs; i++)
        if (strcmp(c->refs[i].ref, ref) == 0) return strdup_checked(c, c->refs[i].rule);
    const json_t *target = resolve_ref(c, ref);
    if (!target) return NULL;
    if (c->n_refs == c->cap_refs) {
        size_t nc = c->cap_refs ? c->cap_refs * 2 : 8;
        refmap *q = realloc(c->refs, nc * sizeof(refmap));
        if (!q) return fail(c, PV_ERR_NOMEM, "out of memory"), NULL;
        c->refs = q;
        c->cap_refs = nc;
    }
    char *name = new_name(c, "ref");
    char *rc = strdup(ref);
    if (!name || !rc) {
        free(name);
        free(rc);
        return fail(c, PV_ERR_NOMEM, "out of memory"), NULL;
    }
    /* registered before generating the target so recursive references resolve to it */
    c->refs[c->n_refs].ref = rc;
    c->refs[c->n_refs].rule = name;
    c->n_refs++;
    char *body = gen(c, target);
    if (!body) return NULL;
    emit_rule(c, name, body);
    free(body);
    return strdup_checked(c, name);
}

/* Rule for the schema restricted to one type name. */
static char *gen_typed(sconv *c, const json_t *schema, const char *type) {
    if (strcmp(type, "string") == 0) return gen_string(c, schema);
    if (strcmp(type, "integer") == 0) return strdup_checked(c, prim(c, P_INTEGER));
    if (strcmp(type, "number") == 0) return strdup_checked(c, prim(c, P_NUMBER));
    if (strcmp(type, "boolean") == 0) return strdup_checked(c, prim(c, P_BOOLEAN));
    if (strcmp(type, "null") == 0) return strdup_checked(c, prim(c, P_NULL));
    if (strcmp(type, "object") == 0) return gen_object(c, schema);
    if (strcmp(type, "array") == 0) return gen_array(c, schema);
    return fail(c, PV_ERR_UNSUPPORTED, "unknown type \"%s\"", type), NULL;
}

/* A rule "a | b | ..." over the given rule names (takes ownership of them). */
static char *gen_alts(sconv *c, char **alts, size_t n) {
    char *name = NULL;
    if (c->st == PV_OK) {
        sbuf body = {0};
        for (size_t i = 0; i < n; i++) sb_printf(&body, "%s%s", i ? " | " : "", alts[i]);
        name = new_name(c, "alt");
        if (name && !body.oom) emit_rule(c, name, body.s);
        if (body.oom) fail(c, PV_ERR_NOMEM, "out of memory");
        free(body.s);
    }
    for (size_t i = 0; i < n; i++) free(alts[i]);
    if (c->st != PV_OK) {
        free(name);
        return NULL;
    }
    return name;
}

static char *gen_inner(sconv *c, const json_t *schema) {
    if (json_is_true(schema)) return strdup_checked(c, prim(c, P_VALUE));
    if (json_is_false(schema)) return fail(c, PV_ERR_UNSUPPORTED, "the schema false allows no value"), NULL;
    if (!json_is_object(schema)) return fail(c, PV_ERR_INVALID, "a schema must be an object or a boolean"), NULL;
    const json_t *ref = json_object_get(schema, "$ref");
    if (ref) {
        if (!json_is_string(ref)) return fail(c, PV_ERR_INVALID, "\"$ref\" must be a string"), NULL;
        return gen_ref(c, json_string_value(ref));
    }
    const json_t *cnst = json_object_get(schema, "const");
    if (cnst) {
        json_t *arr = json_pack("[O]", cnst);
        if (!arr) return fail(c, PV_ERR_NOMEM, "out of memory"), NULL;
        char *r = gen_enum(c, schema, arr);
        json_decref(arr);
        return r;
    }
    const json_t *en = json_object_get(schema, "enum");
    if (en) {
        if (!json_is_array(en)) return fail(c, PV_ERR_INVALID, "\"enum\" must be an array"), NULL;
        return gen_enum(c, schema, en);
    }
    static const char *const combiners[] = {"anyOf", "oneOf"};
    for (size_t k = 0; k < PV_ARRAY_LEN(combiners); k++) {
        const json_t *arr = json_object_get(schema, combiners[k]);
        if (!arr) continue;
        if (!json_is_array(arr) || json_array_size(arr) == 0)
            return fail(c, PV_ERR_INVALID, "\"%s\" must be a non-empty array", combiners[k]), NULL;
        size_t n = json_array_size(arr), i;
        char **alts = calloc(n, sizeof(char *));
        if (!alts) return fail(c, PV_ERR_NOMEM, "out of memory"), NULL;
        const json_t *sub;
        json_array_foreach(arr, i, sub) {
            alts[i] = gen(c, sub);
            if (!alts[i]) break;
        }
        char *r = gen_alts(c, alts, n);
        free(alts);
        return r;
    }
    const json_t *all = json_object_get(schema, "allOf");
    if (all) {
        if (!json_is_array(all) || json_array_size(all) != 1)
            return fail(c, PV_ERR_UNSUPPORTED, "\"allOf\" with other than one member"), NULL;
        return gen(c, json_array_get(all, 0));
    }
    const json_t *type = json_object_get(schema, "type");
    if (json_is_string(type)) return gen_typed(c, schema, json_string_value(type));
    if (json_is_array(type)) {
        size_t n = json_array_size(type), i;
        if (n == 0) return fail(c, PV_ERR_INVALID, "\"type\" is an empty array"), NULL;
        char **alts = calloc(n, sizeof(char *));
        if (!alts) return fail(c, PV_ERR_NOMEM, "out of memory"), NULL;
        const json_t *t;
        json_array_foreach(type, i, t) {
            if (!json_is_string(t)) {
                fail(c, PV_ERR_INVALID, "\"type\" entries must be strings");
                break;
            }
            alts[i] = gen_typed(c, schema, json_string_value(t));
            if (!alts[i]) break;
        }
        char *r = gen_alts(c, alts, n);
        free(alts);
        return r;
    }
    if (type) return fail(c, PV_ERR_INVALID, "\"type\" must be a string or an array"), NULL;
    /* untyped: typed by its keywords */
    static const struct {
        const char *key, *type;
    } infer[] = {{"properties", "object"}, {"additionalProperties", "object"}, {"required", "object"},
                 {"items", "array"},       {"minItems", "array"},              {"maxItems", "array"},
                 {"minLength", "string"},  {"maxLength", "string"}};
    for (size_t k = 0; k < PV_ARRAY_LEN(infer); k++)
        if (json_object_get(schema, infer[k].key)) return gen_typed(c, schema, infer[k].type);
    return strdup_checked(c, prim(c, P_VALUE));
}

static char *gen(sconv *c, const json_t *schema) {
    if (c->st != PV_OK) return NULL;
    if (++c->depth > SCHEMA_MAX_DEPTH) {
        c->depth--;
        return fail(c, PV_ERR_UNSUPPORTED, "schema nested deeper than %d", SCHEMA_MAX_DEPTH), NULL;
    }
    char *r = gen_inner(c, schema);
    c->depth--;
    if (c->out.oom) fail(c, PV_ERR_NOMEM, "out of memory");
    if (c->st != PV_OK) {
        free(r);
        return NULL;
    }
    return r;
}

pv_status pv_grammar_schema_to_gbnf(const json_t *schema, const char *rule_prefix, char **out_gbnf,
                                    pv_error *err) {
    if (!out_gbnf || !rule_prefix) return pv_error_set(err, PV_ERR_INVALID, "json schema: NULL argument");
    *out_gbnf = NULL;
    if (!schema) return pv_error_set(err, PV_ERR_INVALID, "json schema: NULL schema");
    size_t pl = strlen(rule_prefix);
    if (pl == 0 || pl > 100) return pv_error_set(err, PV_ERR_INVALID, "json schema: rule prefix must be 1..100 characters");
    for (size_t i = 0; i < pl; i++) {
        char ch = rule_prefix[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return pv_error_set(err, PV_ERR_INVALID, "json schema: rule prefix \"%s\" must match [A-Za-z0-9_-]+", rule_prefix);
    }
    sconv c = {.prefix = rule_prefix, .root = schema, .err = err, .st = PV_OK};
    char *top = gen(&c, schema);
    if (top) {
        sb_printf(&c.out, "%s ::= %s\n", rule_prefix, top);
        if (c.out.oom) fail(&c, PV_ERR_NOMEM, "out of memory");
    }
    free(top);
    for (size_t i = 0; i < c.n_refs; i++) {
        free(c.refs[i].ref);
        free(c.refs[i].rule);
    }
    free(c.refs);
    if (c.st == PV_OK) {
        /* a $ref/anyOf cycle that consumes nothing (e.g. {"$ref": "#"} at the root) gives a
         * left-recursive grammar: refuse it here rather than hand out text that will not
         * compile */
        pv_grammar *g = NULL;
        pv_error cerr = {0};
        pv_status cs = pv_grammar_compile(c.out.s, c.out.n, rule_prefix, &g, &cerr);
        pv_grammar_free(g);
        if (cs != PV_OK)
            fail(&c, cs == PV_ERR_NOMEM ? cs : PV_ERR_UNSUPPORTED,
                 "the schema refers to itself without consuming input ($ref/anyOf cycle): %s", cerr.msg);
    }
    if (c.st != PV_OK) {
        free(c.out.s);
        return c.st;
    }
    *out_gbnf = c.out.s;
    return PV_OK;
}
