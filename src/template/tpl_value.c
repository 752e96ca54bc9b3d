/* tpl_value.c — Python value semantics for the template renderer: str() and repr() of
 * values (Python's shortest float repr, list/dict/tuple reprs with Python's quote choice),
 * json.dumps exactly as Hugging Face's tojson calls it (ensure_ascii=False, indent,
 * separators, sort_keys), truthiness, equality and ordering, and the conversion of the JSON
 * context into values. Memory comes from the render's arena (see tpl_render.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/tpl_render.h"

/* ---- output buffers ---- */
void pv_tpl_sb_put(pv_tpl_rt *r, pv_tpl_sb *b, const char *s, size_t n) {
    if (n == 0) return;
    if (b->n + n + 1 > b->cap) {
        if (b->n + n > PV_TEMPLATE_MAX_OUTPUT)
            pv_tpl_fail_status(r, PV_ERR_RANGE, "template output exceeds %u bytes",
                               PV_TEMPLATE_MAX_OUTPUT);
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = pv_tpl_alloc(r, nc);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void pv_tpl_sb_puts(pv_tpl_rt *r, pv_tpl_sb *b, const char *s) { pv_tpl_sb_put(r, b, s, strlen(s)); }

pv_tpl_val pv_tpl_sb_value(pv_tpl_sb *b) {
    pv_tpl_val v = {.k = TV_STR};
    v.u.s = b->p ? b->p : "";
    v.n = b->n;
    return v;
}

/* ---- constructors ---- */
pv_tpl_val pv_tpl_str(const char *s, size_t n) {
    pv_tpl_val v = {.k = TV_STR, .n = n};
    v.u.s = s;
    return v;
}
pv_tpl_val pv_tpl_int(int64_t i) {
    pv_tpl_val v = {.k = TV_INT};
    v.u.i = i;
    return v;
}
pv_tpl_val pv_tpl_float(double f) {
    pv_tpl_val v = {.k = TV_FLOAT};
    v.u.f = f;
    return v;
}
pv_tpl_val pv_tpl_bool(bool b) {
    pv_tpl_val v = {.k = TV_BOOL};
    v.u.b = b;
    return v;
}
pv_tpl_val pv_tpl_none(void) { return (pv_tpl_val){.k = TV_NONE}; }
pv_tpl_val pv_tpl_undef(const char *hint) {
    pv_tpl_val v = {.k = TV_UNDEF};
    v.u.s = hint;
    return v;
}

pv_tpl_val pv_tpl_new_list(pv_tpl_rt *r, size_t cap) {
    pv_tpl_val v = {.k = TV_LIST};
    v.u.l = pv_tpl_alloc(r, sizeof(pv_tpl_list));
    if (cap) {
        v.u.l->v = pv_tpl_alloc_array(r, cap, sizeof(pv_tpl_val));
        v.u.l->cap = cap;
    }
    return v;
}

void pv_tpl_list_push(pv_tpl_rt *r, pv_tpl_list *l, pv_tpl_val x) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        pv_tpl_val *nv = pv_tpl_alloc_array(r, nc, sizeof(pv_tpl_val));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(pv_tpl_val));
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
}

pv_tpl_val pv_tpl_new_dict(pv_tpl_rt *r) {
    pv_tpl_val v = {.k = TV_DICT};
    v.u.d = pv_tpl_alloc(r, sizeof(pv_tpl_dict));
    return v;
}

/* Index of key in d or -1 (linear: template dicts are small). */
static long dict_find(const pv_tpl_dict *d, const pv_tpl_val *key) {
    for (size_t i = 0; i < d->n; i++)
        if (pv_tpl_eq(&d->key[i], key)) return (long)i;
    return -1;
}

pv_tpl_val *pv_tpl_dict_get(const pv_tpl_dict *d, const pv_tpl_val *key) {
    long i = dict_find(d, key);
    return i < 0 ? NULL : &d->val[i];
}

pv_tpl_val *pv_tpl_dict_get_str(const pv_tpl_dict *d, const char *key) {
    size_t kn = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->key[i].k == TV_STR && d->key[i].n == kn && !memcmp(d->key[i].u.s, key, kn))
            return &d->val[i];
    return NULL;
}

/* Appends without looking for the key (the caller knows it is new). */
static void dict_append(pv_tpl_rt *r, pv_tpl_dict *d, pv_tpl_val key, pv_tpl_val val);

void pv_tpl_dict_set(pv_tpl_rt *r, pv_tpl_dict *d, pv_tpl_val key, pv_tpl_val val) {
    long i = dict_find(d, &key);
    if (i >= 0) {
        d->val[i] = val;
        return;
    }
    dict_append(r, d, key, val);
}

static void dict_append(pv_tpl_rt *r, pv_tpl_dict *d, pv_tpl_val key, pv_tpl_val val) {
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 8;
        pv_tpl_val *nk = pv_tpl_alloc_array(r, nc, sizeof(pv_tpl_val));
        pv_tpl_val *nv = pv_tpl_alloc_array(r, nc, sizeof(pv_tpl_val));
        if (d->n) {
            memcpy(nk, d->key, d->n * sizeof(pv_tpl_val));
            memcpy(nv, d->val, d->n * sizeof(pv_tpl_val));
        }
        d->key = nk;
        d->val = nv;
        d->cap = nc;
    }
    d->key[d->n] = key;
    d->val[d->n] = val;
    d->n++;
}

/* Converts a JSON value (borrowed; strings point into it) into a template value. */
pv_tpl_val pv_tpl_from_json(pv_tpl_rt *r, const json_t *j, int depth) {
    if (depth > 1000) pv_tpl_fail_status(r, PV_ERR_RANGE, "context nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        pv_tpl_val d = pv_tpl_new_dict(r);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            /* JSON object keys are unique (jansson keeps the last of duplicates): no lookup,
             * so a context with many keys converts in linear time */
            dict_append(r, d.u.d, pv_tpl_str(k, strlen(k)), pv_tpl_from_json(r, v, depth + 1));
        }
        return d;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        pv_tpl_val l = pv_tpl_new_list(r, n);
        for (size_t i = 0; i < n; i++)
            pv_tpl_list_push(r, l.u.l, pv_tpl_from_json(r, json_array_get(j, i), depth + 1));
        return l;
    }
    case JSON_STRING: return pv_tpl_str(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return pv_tpl_int((int64_t)json_integer_value(j));
    case JSON_REAL: return pv_tpl_float(json_real_value(j));
    case JSON_TRUE: return pv_tpl_bool(true);
    case JSON_FALSE: return pv_tpl_bool(false);
    default: return pv_tpl_none();
    }
}

/* ---- Python names and truthiness ---- */
const char *pv_tpl_type_name(const pv_tpl_val *v) {
    static const char *const names[] = {
        [TV_UNDEF] = "Undefined", [TV_NONE] = "NoneType", [TV_BOOL] = "bool",
        [TV_INT] = "int",         [TV_FLOAT] = "float",   [TV_STR] = "str",
        [TV_LIST] = "list",       [TV_DICT] = "dict",     [TV_NS] = "Namespace",
        [TV_MACRO] = "Macro",     [TV_FUNC] = "function", [TV_METHOD] = "builtin_function_or_method",
        [TV_LOOP] = "LoopContext",
    };
    if (v->k == TV_LIST && v->is_tuple) return "tuple";
    return v->k < PV_ARRAY_LEN(names) ? names[v->k] : "object";
}

bool pv_tpl_truthy(const pv_tpl_val *v) {
    switch (v->k) {
    case TV_UNDEF: case TV_NONE: return false;
    case TV_BOOL: return v->u.b;
    case TV_INT: return v->u.i != 0;
    case TV_FLOAT: return v->u.f != 0.0;
    case TV_STR: return v->n != 0;
    case TV_LIST: return v->u.l->n != 0;
    case TV_DICT: case TV_NS: return v->u.d->n != 0 || v->k == TV_NS;
    default: return true;
    }
}

/* ---- float formatting: Python's repr (shortest round-trip digits, its exponent rule) ---- */
void pv_tpl_fmt_float(double f, char *out, size_t cap) {
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    /* buf = [-]d[.ddd]e[+-]XX */
    const char *p = buf;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 20) digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = exp10 + 1;
    char res[64];
    size_t rn = 0;
    if (neg) res[rn++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            res[rn++] = '0';
            res[rn++] = '.';
            for (int i = 0; i < -decpt; i++) res[rn++] = '0';
            for (int i = 0; i < nd; i++) res[rn++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++) res[rn++] = digits[i];
            for (int i = nd; i < decpt; i++) res[rn++] = '0';
            res[rn++] = '.';
            res[rn++] = '0';
        } else {
            for (int i = 0; i < decpt; i++) res[rn++] = digits[i];
            res[rn++] = '.';
            for (int i = decpt; i < nd; i++) res[rn++] = digits[i];
        }
        res[rn] = 0;
    } else {
        res[rn++] = digits[0];
        if (nd > 1) {
            res[rn++] = '.';
            for (int i = 1; i < nd; i++) res[rn++] = digits[i];
        }
        res[rn] = 0;
        snprintf(res + rn, sizeof res - rn, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(out, cap, "%s", res);
}

/* ---- repr / str ---- */
static void repr_str(pv_tpl_rt *r, pv_tpl_sb *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    pv_tpl_sb_put(r, b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == (unsigned char)q || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            pv_tpl_sb_put(r, b, esc, 2);
        } else if (c == '\n') {
            pv_tpl_sb_puts(r, b, "\\n");
        } else if (c == '\r') {
            pv_tpl_sb_puts(r, b, "\\r");
        } else if (c == '\t') {
            pv_tpl_sb_puts(r, b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            pv_tpl_sb_puts(r, b, esc);
        } else if (c >= 0x80) {
            /* Python escapes non-printable code points (controls, format chars, separators,
             * unassigned) as \xhh, \uhhhh or \Uhhhhhhhh */
            utf8proc_int32_t cp;
            utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (l <= 0) {
                snprintf(esc, sizeof esc, "\\x%02x", c); /* invalid UTF-8: cannot come from JSON */
                pv_tpl_sb_puts(r, b, esc);
                continue;
            }
            utf8proc_category_t cat = utf8proc_category(cp);
            bool printable = !(cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                               cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
                               cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_ZL ||
                               cat == UTF8PROC_CATEGORY_ZP || cat == UTF8PROC_CATEGORY_ZS);
            if (printable) {
                pv_tpl_sb_put(r, b, s + i, (size_t)l);
            } else {
                char ub[16];
                if (cp < 0x100) snprintf(ub, sizeof ub, "\\x%02x", (unsigned)cp);
                else if (cp < 0x10000) snprintf(ub, sizeof ub, "\\u%04x", (unsigned)cp);
                else snprintf(ub, sizeof ub, "\\U%08x", (unsigned)cp);
                pv_tpl_sb_puts(r, b, ub);
            }
            i += (size_t)l - 1;
        } else {
            pv_tpl_sb_put(r, b, (const char *)&c, 1);
        }
    }
    pv_tpl_sb_put(r, b, &q, 1);
}

void pv_tpl_repr(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *v, int depth) {
    if (depth > 500) pv_tpl_fail_status(r, PV_ERR_RANGE, "value nested too deeply");
    switch (v->k) {
    case TV_STR: repr_str(r, b, v->u.s, v->n); return;
    case TV_LIST: {
        pv_tpl_sb_puts(r, b, v->is_tuple ? "(" : "[");
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) pv_tpl_sb_puts(r, b, ", ");
            pv_tpl_repr(r, b, &v->u.l->v[i], depth + 1);
        }
        if (v->is_tuple && v->u.l->n == 1) pv_tpl_sb_puts(r, b, ",");
        pv_tpl_sb_puts(r, b, v->is_tuple ? ")" : "]");
        return;
    }
    case TV_DICT: {
        pv_tpl_sb_puts(r, b, "{");
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) pv_tpl_sb_puts(r, b, ", ");
            pv_tpl_repr(r, b, &v->u.d->key[i], depth + 1);
            pv_tpl_sb_puts(r, b, ": ");
            pv_tpl_repr(r, b, &v->u.d->val[i], depth + 1);
        }
        pv_tpl_sb_puts(r, b, "}");
        return;
    }
    case TV_UNDEF: pv_tpl_sb_puts(r, b, "Undefined"); return; /* its str() is "" */
    default: pv_tpl_to_str(r, b, v);
    }
}

void pv_tpl_to_str(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *v) {
    char num[64];
    switch (v->k) {
    case TV_UNDEF: return;
    case TV_NONE: pv_tpl_sb_puts(r, b, "None"); return;
    case TV_BOOL: pv_tpl_sb_puts(r, b, v->u.b ? "True" : "False"); return;
    case TV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        pv_tpl_sb_puts(r, b, num);
        return;
    case TV_FLOAT:
        pv_tpl_fmt_float(v->u.f, num, sizeof num);
        pv_tpl_sb_puts(r, b, num);
        return;
    case TV_STR: pv_tpl_sb_put(r, b, v->u.s, v->n); return;
    case TV_LIST: case TV_DICT: pv_tpl_repr(r, b, v, 0); return;
    case TV_NS: { /* jinja2: <Namespace {'a': 1}> */
        pv_tpl_val d = *v;
        d.k = TV_DICT;
        pv_tpl_sb_puts(r, b, "<Namespace ");
        pv_tpl_repr(r, b, &d, 1);
        pv_tpl_sb_puts(r, b, ">");
        return;
    }
    case TV_MACRO: pv_tpl_sb_puts(r, b, "<Macro>"); return;
    case TV_LOOP: pv_tpl_sb_puts(r, b, "<LoopContext>"); return;
    default: pv_tpl_sb_puts(r, b, "<built-in function>"); return;
    }
}

/* str(v) as a value (strings are returned as is, without copying). */
pv_tpl_val pv_tpl_str_of(pv_tpl_rt *r, const pv_tpl_val *v) {
    if (v->k == TV_STR) return *v;
    pv_tpl_sb b = {0};
    pv_tpl_to_str(r, &b, v);
    return pv_tpl_sb_value(&b);
}

/* ---- json.dumps(ensure_ascii=..., indent, separators, sort_keys) ---- */
/* A JSON string literal. ascii: escape every non-ASCII code point as \uXXXX (UTF-16
 * surrogate pairs above U+FFFF), as json.dumps(ensure_ascii=True) does. */
static void json_str(pv_tpl_rt *r, pv_tpl_sb *b, const char *s, size_t n, bool ascii) {
    pv_tpl_sb_put(r, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ub[16];
        size_t skip = 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(ub, sizeof ub, "\\u%04x", c);
                esc = ub;
            } else if (c >= 0x80 && ascii) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
                if (l <= 0) {
                    cp = 0xFFFD;
                    l = 1;
                }
                if (cp >= 0x10000) {
                    uint32_t v = (uint32_t)cp - 0x10000;
                    snprintf(ub, sizeof ub, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    snprintf(ub, sizeof ub, "\\u%04x", (unsigned)cp);
                }
                esc = ub;
                skip = (size_t)l;
            }
        }
        if (!esc) continue;
        pv_tpl_sb_put(r, b, s + run, i - run);
        pv_tpl_sb_puts(r, b, esc);
        i += skip - 1;
        run = i + 1;
    }
    pv_tpl_sb_put(r, b, s + run, n - run);
    pv_tpl_sb_put(r, b, "\"", 1);
}

static int key_cmp(const void *a, const void *b) {
    const pv_tpl_val *x = *(const pv_tpl_val *const *)a, *y = *(const pv_tpl_val *const *)b;
    return pv_tpl_cmp(NULL, x, y);
}

static void json_newline(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_json_opts *o, int level) {
    pv_tpl_sb_put(r, b, "\n", 1);
    for (int i = 0; i < level; i++) pv_tpl_sb_put(r, b, o->indent, o->indent_len);
}

/* Python json.dumps key coercion: str as is; int/float/bool/None to their JSON text. */
static void json_key(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *k, bool ascii) {
    char num[64];
    switch (k->k) {
    case TV_STR: json_str(r, b, k->u.s, k->n, ascii); return;
    case TV_INT: snprintf(num, sizeof num, "\"%lld\"", (long long)k->u.i); break;
    case TV_BOOL: snprintf(num, sizeof num, "\"%s\"", k->u.b ? "true" : "false"); break;
    case TV_NONE: snprintf(num, sizeof num, "\"null\""); break;
    case TV_FLOAT: {
        char f[48];
        pv_tpl_fmt_float(k->u.f, f, sizeof f);
        snprintf(num, sizeof num, "\"%s\"", f);
        break;
    }
    default:
        pv_tpl_fail_status(r, PV_ERR_FORMAT, "keys must be str, int, float, bool or None, not %s",
                           pv_tpl_type_name(k));
    }
    pv_tpl_sb_puts(r, b, num);
}

void pv_tpl_json(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *v, const pv_tpl_json_opts *o, int level) {
    char num[64];
    if (level > 500) pv_tpl_fail_status(r, PV_ERR_RANGE, "value nested too deeply");
    switch (v->k) {
    case TV_NONE: pv_tpl_sb_puts(r, b, "null"); return;
    case TV_BOOL: pv_tpl_sb_puts(r, b, v->u.b ? "true" : "false"); return;
    case TV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        pv_tpl_sb_puts(r, b, num);
        return;
    case TV_FLOAT:
        if (isnan(v->u.f)) pv_tpl_sb_puts(r, b, "NaN");
        else if (isinf(v->u.f)) pv_tpl_sb_puts(r, b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else {
            pv_tpl_fmt_float(v->u.f, num, sizeof num);
            pv_tpl_sb_puts(r, b, num);
        }
        return;
    case TV_STR: json_str(r, b, v->u.s, v->n, o->ensure_ascii); return;
    case TV_LIST: {
        const pv_tpl_list *l = v->u.l;
        if (!l->n) {
            pv_tpl_sb_puts(r, b, "[]");
            return;
        }
        pv_tpl_sb_puts(r, b, "[");
        for (size_t i = 0; i < l->n; i++) {
            if (i) pv_tpl_sb_put(r, b, o->item_sep, o->item_sep_len);
            if (o->indent) json_newline(r, b, o, level + 1);
            pv_tpl_json(r, b, &l->v[i], o, level + 1);
        }
        if (o->indent) json_newline(r, b, o, level);
        pv_tpl_sb_puts(r, b, "]");
        return;
    }
    case TV_DICT: case TV_NS: {
        const pv_tpl_dict *d = v->u.d;
        if (v->k == TV_NS) pv_tpl_fail_status(r, PV_ERR_FORMAT, "Object of type Namespace is not JSON serializable");
        if (!d->n) {
            pv_tpl_sb_puts(r, b, "{}");
            return;
        }
        const pv_tpl_val **order = pv_tpl_alloc_array(r, d->n, sizeof(pv_tpl_val *));
        for (size_t i = 0; i < d->n; i++) order[i] = &d->key[i];
        if (o->sort_keys) {
            for (size_t i = 0; i < d->n; i++)
                if (d->key[i].k != TV_STR)
                    pv_tpl_fail_status(r, PV_ERR_FORMAT, "sort_keys needs string keys");
            qsort(order, d->n, sizeof(pv_tpl_val *), key_cmp);
        }
        pv_tpl_sb_puts(r, b, "{");
        for (size_t i = 0; i < d->n; i++) {
            size_t idx = (size_t)(order[i] - d->key);
            if (i) pv_tpl_sb_put(r, b, o->item_sep, o->item_sep_len);
            if (o->indent) json_newline(r, b, o, level + 1);
            json_key(r, b, &d->key[idx], o->ensure_ascii);
            pv_tpl_sb_put(r, b, o->key_sep, o->key_sep_len);
            pv_tpl_json(r, b, &d->val[idx], o, level + 1);
        }
        if (o->indent) json_newline(r, b, o, level);
        pv_tpl_sb_puts(r, b, "}");
        return;
    }
    default:
        pv_tpl_fail_status(r, PV_ERR_FORMAT, "Object of type %s is not JSON serializable",
                           pv_tpl_type_name(v));
    }
}

/* ---- equality and ordering (Python semantics) ---- */
static bool is_num(const pv_tpl_val *v) { return v->k == TV_BOOL || v->k == TV_INT || v->k == TV_FLOAT; }
static double num_f(const pv_tpl_val *v) {
    return v->k == TV_FLOAT ? v->u.f : v->k == TV_INT ? (double)v->u.i : (double)v->u.b;
}
static int64_t num_i(const pv_tpl_val *v) { return v->k == TV_INT ? v->u.i : (int64_t)v->u.b; }

bool pv_tpl_eq(const pv_tpl_val *a, const pv_tpl_val *b) {
    if (is_num(a) && is_num(b)) {
        if (a->k == TV_FLOAT || b->k == TV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a->k != b->k) return false;
    switch (a->k) {
    case TV_UNDEF: case TV_NONE: return true;
    case TV_STR: return a->n == b->n && !memcmp(a->u.s, b->u.s, a->n);
    case TV_LIST:
        if (a->is_tuple != b->is_tuple || a->u.l->n != b->u.l->n) return false;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!pv_tpl_eq(&a->u.l->v[i], &b->u.l->v[i])) return false;
        return true;
    case TV_DICT:
        if (a->u.d->n != b->u.d->n) return false;
        for (size_t i = 0; i < a->u.d->n; i++) {
            pv_tpl_val *o = pv_tpl_dict_get(b->u.d, &a->u.d->key[i]);
            if (!o || !pv_tpl_eq(&a->u.d->val[i], o)) return false;
        }
        return true;
    case TV_METHOD: return a->aux == b->aux && a->u.s == b->u.s;
    default: return a->u.l == b->u.l && a->aux == b->aux;
    }
}

/* Three-way ordering for <, sorted(), min/max; r may be NULL (then mismatches order by kind). */
int pv_tpl_cmp(pv_tpl_rt *r, const pv_tpl_val *a, const pv_tpl_val *b) {
    if (is_num(a) && is_num(b)) {
        if (a->k == TV_FLOAT || b->k == TV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->k == TV_STR && b->k == TV_STR) {
        size_t n = PV_MIN(a->n, b->n);
        int c = memcmp(a->u.s, b->u.s, n);
        if (c) return c < 0 ? -1 : 1;
        return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
    }
    if (a->k == TV_LIST && b->k == TV_LIST && a->is_tuple == b->is_tuple) {
        size_t n = PV_MIN(a->u.l->n, b->u.l->n);
        for (size_t i = 0; i < n; i++) {
            if (pv_tpl_eq(&a->u.l->v[i], &b->u.l->v[i])) continue;
            return pv_tpl_cmp(r, &a->u.l->v[i], &b->u.l->v[i]);
        }
        return a->u.l->n < b->u.l->n ? -1 : a->u.l->n > b->u.l->n ? 1 : 0;
    }
    if (r)
        pv_tpl_fail_status(r, PV_ERR_FORMAT, "'<' not supported between instances of '%s' and '%s'",
                           pv_tpl_type_name(a), pv_tpl_type_name(b));
    return a->k < b->k ? -1 : a->k > b->k ? 1 : 0;
}
