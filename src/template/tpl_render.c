/* tpl_render.c — evaluates a parsed template against a JSON context with jinja2's semantics
 * under Hugging Face's sandboxed environment: scoping (a for-loop iteration is a scope of its
 * own, `if` is not; namespace() objects carry state out of loops), jinja2's getattr/getitem
 * fallbacks and Undefined behaviour, Python arithmetic and comparisons, the filters, tests,
 * string/dict methods and globals that chat templates use (each in a table), macros and
 * loop controls. Also the public pv_template_* entry points. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "template/tpl_render.h"

struct pv_tpl_frame {
    pv_tpl_frame *parent;
    pv_tpl_dict vars;
};

typedef struct {
    pv_tpl_list *items;
    size_t index0;
} loop_state;

/* ---- errors and memory ---- */
_Noreturn void pv_tpl_fail_status(pv_tpl_rt *r, pv_status st, const char *fmt, ...) {
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (st == PV_ERR_INVALID)
        pv_error_set(r->err, st, "%s", msg);
    else
        pv_error_set(r->err, st, "line %d, column %d: %s", r->line, r->col, msg);
    r->status = st;
    longjmp(r->jb, 1);
}

#define FAIL(r, ...) pv_tpl_fail_status((r), PV_ERR_FORMAT, __VA_ARGS__)

void *pv_tpl_alloc(pv_tpl_rt *r, size_t n) {
    void *p = pv_tpl_arena_alloc(&r->arena, n);
    if (!p) pv_tpl_fail_status(r, PV_ERR_RANGE, "template render exceeds its memory limit");
    return p;
}

void *pv_tpl_alloc_array(pv_tpl_rt *r, size_t n, size_t sz) {
    uint64_t total;
    if (pv_mul_overflow_u64(n, sz, &total) || total > PV_TEMPLATE_MAX_MEMORY)
        pv_tpl_fail_status(r, PV_ERR_RANGE, "template render exceeds its memory limit");
    return pv_tpl_alloc(r, (size_t)total);
}

static void tick(pv_tpl_rt *r) {
    if (++r->ops > PV_TEMPLATE_MAX_OPS)
        pv_tpl_fail_status(r, PV_ERR_RANGE, "template render exceeds its work limit");
}

static const char *rstrdup(pv_tpl_rt *r, const char *s, size_t n) {
    char *d = pv_tpl_alloc(r, n + 1);
    memcpy(d, s, n);
    return d;
}

static const char *fmt_hint(pv_tpl_rt *r, const char *fmt, const char *a, const char *b) {
    size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = pv_tpl_alloc(r, n);
    snprintf(s, n, fmt, a, b ? b : "");
    return s;
}

/* jinja2's object_type_repr for Undefined messages: "dict object", "None", "str object". */
static const char *obj_type_repr(const pv_tpl_val *v) {
    switch (v->k) {
    case TV_NONE: return "None";
    case TV_DICT: return "dict object";
    case TV_LIST: return v->is_tuple ? "tuple object" : "list object";
    case TV_STR: return "str object";
    case TV_INT: return "int object";
    case TV_FLOAT: return "float object";
    case TV_BOOL: return "bool object";
    case TV_NS: return "jinja2.utils.Namespace object";
    case TV_LOOP: return "jinja2.runtime.LoopContext object";
    default: return "object";
    }
}

_Noreturn static void undefined_error(pv_tpl_rt *r, const pv_tpl_val *u) {
    FAIL(r, "%s", u->u.s ? u->u.s : "value is undefined");
}

static pv_tpl_val missing_attr(pv_tpl_rt *r, const pv_tpl_val *obj, const char *name) {
    if (obj->k == TV_NONE) return pv_tpl_undef(fmt_hint(r, "'None' has no attribute '%s'%s", name, NULL));
    return pv_tpl_undef(fmt_hint(r, "'%s' has no attribute '%s'", obj_type_repr(obj), name));
}

/* ---- UTF-8 helpers (Python strings index by code point) ---- */
static size_t u8_len(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* Byte offsets of each code point (n_cp + 1 entries). */
static size_t *u8_offsets(pv_tpl_rt *r, const char *s, size_t n, size_t *ncp) {
    size_t c = u8_len(s, n);
    size_t *off = pv_tpl_alloc_array(r, c + 1, sizeof(size_t));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) off[k++] = i;
    off[c] = n;
    *ncp = c;
    return off;
}

/* Upper/title forms that expand (Unicode SpecialCasing, unconditional part). */
static const struct {
    int32_t cp;
    const char *upper, *title;
} upper_special[] = {
    {0xDF, "SS", "Ss"},          {0xFB00, "FF", "Ff"},     {0xFB01, "FI", "Fi"},
    {0xFB02, "FL", "Fl"},        {0xFB03, "FFI", "Ffi"},   {0xFB04, "FFL", "Ffl"},
    {0xFB05, "ST", "St"},        {0xFB06, "ST", "St"},     {0x149, "\xca\xbcN", "\xca\xbcN"},
};

static bool cased_cp(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

/* For the final-sigma rule: is there a cased letter before byte offset `at` (skipping
 * case-ignorable marks is not modelled) / right after offset `at`? */
static bool prev_cased_any(const pv_tpl_val *s, size_t at) {
    if (at == 0) return false;
    size_t st = at - 1;
    while (st > 0 && ((unsigned char)s->u.s[st] & 0xC0) == 0x80) st--;
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s->u.s + st, (utf8proc_ssize_t)(at - st), &cp) <= 0) return false;
    return cased_cp(cp);
}
static bool next_cased(const pv_tpl_val *s, size_t at) {
    if (at >= s->n) return false;
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s->u.s + at, (utf8proc_ssize_t)(s->n - at), &cp) <= 0) return false;
    return cased_cp(cp);
}

/* Maps each code point of s: mode 0 upper, 1 lower, 2 str.title, 3 str.capitalize (Python's
 * full case mapping: utf8proc's simple mappings plus the SpecialCasing expansions above). */
static pv_tpl_val u8_map(pv_tpl_rt *r, const pv_tpl_val *s, int mode) {
    pv_tpl_sb b = {0};
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s->u.s;
    utf8proc_ssize_t i = 0, n = (utf8proc_ssize_t)s->n;
    bool prev_cased = false;
    size_t idx = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(p + i, n - i, &cp);
        if (l <= 0) {
            pv_tpl_sb_put(r, &b, (const char *)p + i, 1);
            i++;
            continue;
        }
        /* Python's full case mappings that are not one code point to one (SpecialCasing) */
        const char *special = NULL;
        if (mode == 0 || (mode == 3 && idx == 0) || (mode == 2 && !prev_cased)) {
            for (size_t k = 0; k < PV_ARRAY_LEN(upper_special); k++)
                if (upper_special[k].cp == cp) special = mode == 0 ? upper_special[k].upper : upper_special[k].title;
        } else if (cp == 0x130) {
            special = "i\xcc\x87"; /* İ -> i + combining dot above */
        } else if (cp == 0x3A3 && prev_cased_any(s, (size_t)i) && !next_cased(s, (size_t)(i + l))) {
            special = "\xcf\x82"; /* final sigma */
        }
        if (special) {
            pv_tpl_sb_puts(r, &b, special);
            if (mode == 2) prev_cased = true;
            i += l;
            idx++;
            continue;
        }
        utf8proc_int32_t out = cp;
        if (mode == 0) out = utf8proc_toupper(cp);
        else if (mode == 1) out = utf8proc_tolower(cp);
        else if (mode == 2) { /* Python str.title */
            out = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
        } else if (mode == 3) { /* str.capitalize */
            out = idx == 0 ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
        }
        if (mode == 2) {
            utf8proc_category_t cat = utf8proc_category(cp);
            prev_cased = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
                         cat == UTF8PROC_CATEGORY_LT;
        }
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t el = utf8proc_encode_char(out, enc);
        pv_tpl_sb_put(r, &b, (const char *)enc, (size_t)el);
        i += l;
        idx++;
    }
    return pv_tpl_sb_value(&b);
}

static bool is_py_space_at(const char *s, size_t n, size_t i, size_t *len) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) {
        *len = 1;
        return true;
    }
    if (c >= 0x80) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l > 0 && (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
                      cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)) {
            *len = (size_t)l;
            return true;
        }
    }
    return false;
}

/* Python str.strip/lstrip/rstrip: chars NULL = whitespace, else any code point in chars. */
static pv_tpl_val py_strip(const pv_tpl_val *s, const pv_tpl_val *chars, bool left, bool right) {
    const char *p = s->u.s;
    size_t a = 0, b = s->n;
    if (!chars) {
        size_t l;
        while (left && a < b && is_py_space_at(p, b, a, &l)) a += l;
        while (right && b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            if (!is_py_space_at(p, b, st, &l) || st + l != b) break;
            b = st;
        }
    } else {
        /* membership by code point: compare the UTF-8 sequence against each of chars */
        for (;;) {
            bool moved = false;
            if (left && a < b) {
                size_t l = 1;
                while (a + l < b && ((unsigned char)p[a + l] & 0xC0) == 0x80) l++;
                for (size_t i = 0; i < chars->n;) {
                    size_t cl = 1;
                    while (i + cl < chars->n && ((unsigned char)chars->u.s[i + cl] & 0xC0) == 0x80) cl++;
                    if (cl == l && !memcmp(chars->u.s + i, p + a, l)) {
                        a += l;
                        moved = true;
                        break;
                    }
                    i += cl;
                }
            }
            if (right && b > a) {
                size_t st = b - 1;
                while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
                size_t l = b - st;
                for (size_t i = 0; i < chars->n;) {
                    size_t cl = 1;
                    while (i + cl < chars->n && ((unsigned char)chars->u.s[i + cl] & 0xC0) == 0x80) cl++;
                    if (cl == l && !memcmp(chars->u.s + i, p + st, l)) {
                        b = st;
                        moved = true;
                        break;
                    }
                    i += cl;
                }
            }
            if (!moved) break;
        }
    }
    return pv_tpl_str(p + a, b - a);
}

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && !memcmp(h + i, n, nn)) return h + i;
    return NULL;
}

static pv_tpl_val py_replace(pv_tpl_rt *r, const pv_tpl_val *s, const pv_tpl_val *old, const pv_tpl_val *new_, int64_t count) {
    pv_tpl_sb b = {0};
    if (old->n == 0) {
        /* Python inserts `new` between every code point and at both ends */
        size_t ncp;
        size_t *off = u8_offsets(r, s->u.s, s->n, &ncp);
        int64_t done = 0;
        for (size_t i = 0; i <= ncp; i++) {
            if (count < 0 || done < count) {
                pv_tpl_sb_put(r, &b, new_->u.s, new_->n);
                done++;
            }
            if (i < ncp) pv_tpl_sb_put(r, &b, s->u.s + off[i], off[i + 1] - off[i]);
        }
        pv_tpl_val v = pv_tpl_sb_value(&b);
        return v;
    }
    const char *p = s->u.s, *end = s->u.s + s->n;
    int64_t done = 0;
    while (p < end) {
        const char *f = (count < 0 || done < count) ? memfind(p, (size_t)(end - p), old->u.s, old->n) : NULL;
        if (!f) break;
        pv_tpl_sb_put(r, &b, p, (size_t)(f - p));
        pv_tpl_sb_put(r, &b, new_->u.s, new_->n);
        p = f + old->n;
        done++;
        tick(r);
    }
    pv_tpl_sb_put(r, &b, p, (size_t)(end - p));
    return pv_tpl_sb_value(&b);
}

static pv_tpl_val py_split(pv_tpl_rt *r, const pv_tpl_val *s, const pv_tpl_val *sep, int64_t maxsplit) {
    pv_tpl_val out = pv_tpl_new_list(r, 0);
    const char *p = s->u.s, *end = s->u.s + s->n;
    if (!sep || sep->k == TV_NONE) {
        size_t l;
        int64_t splits = 0;
        size_t i = 0, n = s->n;
        while (i < n) {
            while (i < n && is_py_space_at(p, n, i, &l)) i += l;
            if (i >= n) break;
            size_t st = i;
            if (maxsplit >= 0 && splits >= maxsplit) {
                /* the rest as is (Python strips only the whitespace before it) */
                pv_tpl_list_push(r, out.u.l, pv_tpl_str(p + st, n - st));
                return out;
            }
            while (i < n && !is_py_space_at(p, n, i, &l)) i++;
            pv_tpl_list_push(r, out.u.l, pv_tpl_str(p + st, i - st));
            splits++;
        }
        return out;
    }
    if (sep->k != TV_STR) FAIL(r, "must be str or None, not %s", pv_tpl_type_name(sep));
    if (sep->n == 0) FAIL(r, "empty separator");
    int64_t splits = 0;
    for (;;) {
        tick(r);
        const char *f = (maxsplit < 0 || splits < maxsplit) ? memfind(p, (size_t)(end - p), sep->u.s, sep->n) : NULL;
        if (!f) {
            pv_tpl_list_push(r, out.u.l, pv_tpl_str(p, (size_t)(end - p)));
            return out;
        }
        pv_tpl_list_push(r, out.u.l, pv_tpl_str(p, (size_t)(f - p)));
        p = f + sep->n;
        splits++;
    }
}

/* ---- sequences ---- */
/* Materializes an iterable as a list (borrowing the list when it is one). */
static pv_tpl_list *iter_list(pv_tpl_rt *r, const pv_tpl_val *v) {
    switch (v->k) {
    case TV_LIST: return v->u.l;
    case TV_UNDEF: return pv_tpl_new_list(r, 0).u.l;
    case TV_DICT: case TV_NS: {
        pv_tpl_val l = pv_tpl_new_list(r, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) pv_tpl_list_push(r, l.u.l, v->u.d->key[i]);
        return l.u.l;
    }
    case TV_STR: {
        size_t ncp;
        size_t *off = u8_offsets(r, v->u.s, v->n, &ncp);
        pv_tpl_val l = pv_tpl_new_list(r, ncp);
        for (size_t i = 0; i < ncp; i++)
            pv_tpl_list_push(r, l.u.l, pv_tpl_str(v->u.s + off[i], off[i + 1] - off[i]));
        return l.u.l;
    }
    default: FAIL(r, "'%s' object is not iterable", pv_tpl_type_name(v));
    }
}

static int64_t py_len(pv_tpl_rt *r, const pv_tpl_val *v) {
    switch (v->k) {
    case TV_STR: return (int64_t)u8_len(v->u.s, v->n);
    case TV_LIST: return (int64_t)v->u.l->n;
    case TV_DICT: case TV_NS: return (int64_t)v->u.d->n;
    case TV_UNDEF: return 0;
    default: FAIL(r, "object of type '%s' has no len()", pv_tpl_type_name(v));
    }
}

/* Python slice index normalization (PySlice_AdjustIndices). */
static void slice_indices(pv_tpl_rt *r, int64_t len, const pv_tpl_val *a, const pv_tpl_val *b, const pv_tpl_val *c,
                          int64_t *start, int64_t *stop, int64_t *step) {
    *step = 1;
    if (c && c->k != TV_NONE && c->k != TV_UNDEF) {
        if (c->k != TV_INT) FAIL(r, "slice indices must be integers or None");
        *step = c->u.i;
        if (*step == 0) FAIL(r, "slice step cannot be zero");
    }
    int64_t def_start = *step < 0 ? len - 1 : 0, def_stop = *step < 0 ? -1 : len;
    const pv_tpl_val *ab[2] = {a, b};
    int64_t *out[2] = {start, stop};
    int64_t defs[2] = {def_start, def_stop};
    for (int k = 0; k < 2; k++) {
        const pv_tpl_val *x = ab[k];
        if (!x || x->k == TV_NONE || x->k == TV_UNDEF) {
            *out[k] = defs[k];
            continue;
        }
        if (x->k != TV_INT && x->k != TV_BOOL) FAIL(r, "slice indices must be integers or None");
        int64_t i = x->k == TV_INT ? x->u.i : x->u.b;
        if (i < 0) {
            i += len;
            if (i < 0) i = *step < 0 ? -1 : 0;
        } else if (i >= len) {
            i = *step < 0 ? len - 1 : len;
        }
        *out[k] = i;
    }
}

static pv_tpl_val do_slice(pv_tpl_rt *r, const pv_tpl_val *obj, const pv_tpl_val *a, const pv_tpl_val *b, const pv_tpl_val *c) {
    if (obj->k == TV_UNDEF) undefined_error(r, obj);
    if (obj->k != TV_LIST && obj->k != TV_STR) FAIL(r, "'%s' object is not subscriptable", pv_tpl_type_name(obj));
    size_t ncp = 0, *off = NULL;
    int64_t len;
    if (obj->k == TV_STR) {
        off = u8_offsets(r, obj->u.s, obj->n, &ncp);
        len = (int64_t)ncp;
    } else {
        len = (int64_t)obj->u.l->n;
    }
    int64_t start, stop, step;
    slice_indices(r, len, a, b, c, &start, &stop, &step);
    if (obj->k == TV_STR) {
        pv_tpl_sb sb = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            pv_tpl_sb_put(r, &sb, obj->u.s + off[i], off[i + 1] - off[i]);
        pv_tpl_val v = pv_tpl_sb_value(&sb);
        return v;
    }
    pv_tpl_val out = pv_tpl_new_list(r, 0);
    out.is_tuple = obj->is_tuple;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        pv_tpl_list_push(r, out.u.l, obj->u.l->v[i]);
    return out;
}

/* ---- globals and methods ---- */
typedef struct {
    const pv_tpl_val *args;
    const char *const *kw;
    int n;
} argv_t;

/* Positional argument i or keyword `name` (NULL if absent). */
static const pv_tpl_val *arg(const argv_t *a, int i, const char *name) {
    int pos = 0;
    for (int k = 0; k < a->n; k++) {
        if (a->kw && a->kw[k]) {
            if (name && !strcmp(a->kw[k], name)) return &a->args[k];
        } else if (pos++ == i) {
            return &a->args[k];
        }
    }
    return NULL;
}

static const pv_tpl_val *arg_str(pv_tpl_rt *r, const argv_t *a, int i, const char *name, const char *what) {
    const pv_tpl_val *v = arg(a, i, name);
    if (v && v->k != TV_STR) FAIL(r, "%s must be str, not %s", what, pv_tpl_type_name(v));
    return v;
}

static int64_t arg_int(pv_tpl_rt *r, const argv_t *a, int i, const char *name, int64_t def) {
    const pv_tpl_val *v = arg(a, i, name);
    if (!v || v->k == TV_NONE) return def;
    if (v->k == TV_BOOL) return v->u.b;
    if (v->k != TV_INT) FAIL(r, "'%s' object cannot be interpreted as an integer", pv_tpl_type_name(v));
    return v->u.i;
}

typedef pv_tpl_val (*pv_tpl_fn)(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a);

static pv_tpl_val g_range(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a) {
    (void)self;
    int64_t start = 0, stop, step = 1;
    if (a->n == 1) stop = arg_int(r, a, 0, NULL, 0);
    else {
        start = arg_int(r, a, 0, NULL, 0);
        stop = arg_int(r, a, 1, NULL, 0);
        step = arg_int(r, a, 2, NULL, 1);
    }
    if (a->n < 1 || a->n > 3) FAIL(r, "range expected 1 to 3 arguments, got %d", a->n);
    if (step == 0) FAIL(r, "range() arg 3 must not be zero");
    double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
                            : ceil(((double)start - (double)stop) / (double)-step);
    if (count > 100000)
        FAIL(r, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    pv_tpl_val l = pv_tpl_new_list(r, count > 0 ? (size_t)count : 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) pv_tpl_list_push(r, l.u.l, pv_tpl_int(i));
    return l;
}

static pv_tpl_val g_namespace(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a) {
    (void)self;
    pv_tpl_val ns = pv_tpl_new_dict(r);
    ns.k = TV_NS;
    for (int k = 0; k < a->n; k++) {
        if (a->kw && a->kw[k]) {
            pv_tpl_dict_set(r, ns.u.d, pv_tpl_str(a->kw[k], strlen(a->kw[k])), a->args[k]);
        } else if (a->args[k].k == TV_DICT) {
            for (size_t i = 0; i < a->args[k].u.d->n; i++)
                pv_tpl_dict_set(r, ns.u.d, a->args[k].u.d->key[i], a->args[k].u.d->val[i]);
        } else {
            FAIL(r, "namespace() takes keyword arguments or a dict");
        }
    }
    return ns;
}

static pv_tpl_val g_dict(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a) {
    pv_tpl_val d = g_namespace(r, self, a);
    d.k = TV_DICT;
    return d;
}

static pv_tpl_val g_raise(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a) {
    (void)self;
    const pv_tpl_val *m = arg(a, 0, "message");
    pv_tpl_val s = m ? pv_tpl_str_of(r, m) : pv_tpl_str("", 0);
    pv_tpl_fail_status(r, PV_ERR_INVALID, "%.*s", (int)PV_MIN(s.n, 470), s.u.s);
}

static pv_tpl_val g_strftime_now(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a) {
    (void)self;
    const pv_tpl_val *f = arg_str(r, a, 0, "format", "strftime_now() argument");
    if (!f) FAIL(r, "strftime_now() missing the format argument");
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    char *fmt = (char *)rstrdup(r, f->u.s, f->n);
    char buf[512];
    size_t n = f->n ? strftime(buf, sizeof buf, fmt, &tmv) : 0;
    return pv_tpl_str(rstrdup(r, buf, n), n);
}

static const struct {
    const char *name;
    pv_tpl_fn fn;
} g_funcs[] = {
    {"range", g_range},
    {"namespace", g_namespace},
    {"dict", g_dict},
    {"raise_exception", g_raise},
    {"strftime_now", g_strftime_now},
};

/* str methods */
static pv_tpl_val m_startswith_impl(pv_tpl_rt *r, const pv_tpl_val *self, const argv_t *a, bool ends) {
    const pv_tpl_val *p = arg(a, 0, NULL);
    if (!p) FAIL(r, "%s() takes at least 1 argument (0 given)", ends ? "endswith" : "startswith");
    const pv_tpl_val *opts = p;
    size_t nopt = 1;
    if (p->k == TV_LIST && p->is_tuple) {
        opts = p->u.l->v;
        nopt = p->u.l->n;
    }
    for (size_t i = 0; i < nopt; i++) {
        if (opts[i].k != TV_STR)
            FAIL(r, "%s first arg must be str or a tuple of str, not %s", ends ? "endswith" : "startswith",
                 pv_tpl_type_name(&opts[i]));
        size_t n = opts[i].n;
        if (n <= self->n && !memcmp(ends ? self->u.s + self->n - n : self->u.s, opts[i].u.s, n))
            return pv_tpl_bool(true);
    }
    return pv_tpl_bool(false);
}
static pv_tpl_val m_startswith(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return m_startswith_impl(r, s, a, false); }
static pv_tpl_val m_endswith(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return m_startswith_impl(r, s, a, true); }
static const pv_tpl_val *strip_chars(pv_tpl_rt *r, const argv_t *a) {
    const pv_tpl_val *c = arg(a, 0, NULL);
    if (c && c->k == TV_NONE) return NULL;
    if (c && c->k != TV_STR) FAIL(r, "strip arg must be None or str");
    return c;
}
static pv_tpl_val m_strip(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return py_strip(s, strip_chars(r, a), true, true); }
static pv_tpl_val m_lstrip(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return py_strip(s, strip_chars(r, a), true, false); }
static pv_tpl_val m_rstrip(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return py_strip(s, strip_chars(r, a), false, true); }
static pv_tpl_val m_upper(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { (void)a; return u8_map(r, s, 0); }
static pv_tpl_val m_lower(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { (void)a; return u8_map(r, s, 1); }
static pv_tpl_val m_title(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { (void)a; return u8_map(r, s, 2); }
static pv_tpl_val m_capitalize(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { (void)a; return u8_map(r, s, 3); }
static pv_tpl_val m_split(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) {
    return py_split(r, s, arg(a, 0, "sep"), arg_int(r, a, 1, "maxsplit", -1));
}
static pv_tpl_val m_replace(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) {
    const pv_tpl_val *o = arg_str(r, a, 0, NULL, "replace() argument 1"), *n = arg_str(r, a, 1, NULL, "replace() argument 2");
    if (!o || !n) FAIL(r, "replace expected at least 2 arguments");
    return py_replace(r, s, o, n, arg_int(r, a, 2, "count", -1));
}
static pv_tpl_val m_find_impl(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a, bool count) {
    const pv_tpl_val *sub = arg_str(r, a, 0, NULL, "argument");
    if (!sub) FAIL(r, "%s() takes at least 1 argument", count ? "count" : "find");
    if (count) {
        if (!sub->n) return pv_tpl_int((int64_t)u8_len(s->u.s, s->n) + 1);
        int64_t c = 0;
        const char *p = s->u.s, *end = s->u.s + s->n, *f;
        while ((f = memfind(p, (size_t)(end - p), sub->u.s, sub->n))) {
            c++;
            p = f + sub->n;
        }
        return pv_tpl_int(c);
    }
    const char *f = memfind(s->u.s, s->n, sub->u.s, sub->n);
    return pv_tpl_int(f ? (int64_t)u8_len(s->u.s, (size_t)(f - s->u.s)) : -1);
}
static pv_tpl_val m_find(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return m_find_impl(r, s, a, false); }
static pv_tpl_val m_count(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) { return m_find_impl(r, s, a, true); }
static pv_tpl_val m_join(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) {
    const pv_tpl_val *it = arg(a, 0, NULL);
    if (!it) FAIL(r, "join() takes exactly one argument");
    pv_tpl_list *l = iter_list(r, it);
    pv_tpl_sb b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].k != TV_STR)
            FAIL(r, "sequence item %zu: expected str instance, %s found", i, pv_tpl_type_name(&l->v[i]));
        if (i) pv_tpl_sb_put(r, &b, s->u.s, s->n);
        pv_tpl_sb_put(r, &b, l->v[i].u.s, l->v[i].n);
    }
    return pv_tpl_sb_value(&b);
}
/* str.format with {} / {N} / {name} fields (format specs and conversions unsupported). */
static pv_tpl_val m_format(pv_tpl_rt *r, const pv_tpl_val *s, const argv_t *a) {
    pv_tpl_sb b = {0};
    int auto_idx = 0;
    for (size_t i = 0; i < s->n; i++) {
        char c = s->u.s[i];
        if ((c == '{' || c == '}') && i + 1 < s->n && s->u.s[i + 1] == c) {
            pv_tpl_sb_put(r, &b, &c, 1);
            i++;
            continue;
        }
        if (c == '}') FAIL(r, "Single '}' encountered in format string");
        if (c != '{') {
            pv_tpl_sb_put(r, &b, &c, 1);
            continue;
        }
        size_t j = i + 1;
        while (j < s->n && s->u.s[j] != '}') j++;
        if (j >= s->n) FAIL(r, "Single '{' encountered in format string");
        const char *field = s->u.s + i + 1;
        size_t fl = j - i - 1;
        if (memchr(field, ':', fl) || memchr(field, '!', fl)) FAIL(r, "format specs are not supported");
        const pv_tpl_val *v;
        if (fl == 0) {
            v = arg(a, auto_idx++, NULL);
        } else if (field[0] >= '0' && field[0] <= '9') {
            v = arg(a, atoi(field), NULL);
        } else {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)PV_MIN(fl, 63), field);
            v = arg(a, -1, name);
            if (!v) FAIL(r, "KeyError: '%s'", name);
        }
        if (!v) FAIL(r, "Replacement index %d out of range for positional args tuple", auto_idx - 1);
        pv_tpl_to_str(r, &b, v);
        i = j;
    }
    return pv_tpl_sb_value(&b);
}

/* dict methods */
static pv_tpl_val m_items(pv_tpl_rt *r, const pv_tpl_val *d, const argv_t *a) {
    (void)a;
    pv_tpl_val l = pv_tpl_new_list(r, d->u.d->n);
    for (size_t i = 0; i < d->u.d->n; i++) {
        pv_tpl_val pair = pv_tpl_new_list(r, 2);
        pair.is_tuple = true;
        pv_tpl_list_push(r, pair.u.l, d->u.d->key[i]);
        pv_tpl_list_push(r, pair.u.l, d->u.d->val[i]);
        pv_tpl_list_push(r, l.u.l, pair);
    }
    return l;
}
static pv_tpl_val m_keys(pv_tpl_rt *r, const pv_tpl_val *d, const argv_t *a) {
    (void)a;
    return (pv_tpl_val){.k = TV_LIST, .u.l = iter_list(r, d)};
}
static pv_tpl_val m_values(pv_tpl_rt *r, const pv_tpl_val *d, const argv_t *a) {
    (void)a;
    pv_tpl_val l = pv_tpl_new_list(r, d->u.d->n);
    for (size_t i = 0; i < d->u.d->n; i++) pv_tpl_list_push(r, l.u.l, d->u.d->val[i]);
    return l;
}
static pv_tpl_val m_get(pv_tpl_rt *r, const pv_tpl_val *d, const argv_t *a) {
    const pv_tpl_val *k = arg(a, 0, NULL);
    if (!k) FAIL(r, "get expected at least 1 argument, got 0");
    const pv_tpl_val *v = pv_tpl_dict_get(d->u.d, k);
    if (v) return *v;
    const pv_tpl_val *def = arg(a, 1, NULL);
    return def ? *def : pv_tpl_none();
}

/* loop.cycle(...) */
static pv_tpl_val m_cycle(pv_tpl_rt *r, const pv_tpl_val *lp, const argv_t *a) {
    if (a->n == 0) FAIL(r, "no items for cycling given");
    const loop_state *st = lp->aux;
    return a->args[st->index0 % (size_t)a->n];
}

typedef struct {
    uint8_t kind; /* receiver kind */
    const char *name;
    pv_tpl_fn fn;
} method_entry;

static const method_entry methods[] = {
    {TV_STR, "startswith", m_startswith}, {TV_STR, "endswith", m_endswith},
    {TV_STR, "strip", m_strip},           {TV_STR, "lstrip", m_lstrip},
    {TV_STR, "rstrip", m_rstrip},         {TV_STR, "upper", m_upper},
    {TV_STR, "lower", m_lower},           {TV_STR, "title", m_title},
    {TV_STR, "capitalize", m_capitalize}, {TV_STR, "split", m_split},
    {TV_STR, "replace", m_replace},       {TV_STR, "format", m_format},
    {TV_STR, "find", m_find},             {TV_STR, "count", m_count},
    {TV_STR, "join", m_join},
    {TV_DICT, "items", m_items},          {TV_DICT, "keys", m_keys},
    {TV_DICT, "values", m_values},        {TV_DICT, "get", m_get},
    {TV_LOOP, "cycle", m_cycle},
};

/* Python attributes that exist but the immutable sandbox refuses (mutations). */
static const char *const unsafe_attrs[] = {
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update",
    "setdefault", "popitem", "add", "discard"};

/* ---- attribute and item access (jinja2 getattr/getitem with fallbacks) ---- */
static pv_tpl_val loop_attr(const pv_tpl_val *lp, const char *name, bool *found) {
    const loop_state *st = lp->aux;
    size_t n = st->items->n, i = st->index0;
    *found = true;
    if (!strcmp(name, "index0")) return pv_tpl_int((int64_t)i);
    if (!strcmp(name, "index")) return pv_tpl_int((int64_t)i + 1);
    if (!strcmp(name, "revindex")) return pv_tpl_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return pv_tpl_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return pv_tpl_bool(i == 0);
    if (!strcmp(name, "last")) return pv_tpl_bool(i + 1 == n);
    if (!strcmp(name, "length")) return pv_tpl_int((int64_t)n);
    if (!strcmp(name, "depth")) return pv_tpl_int(1);
    if (!strcmp(name, "depth0")) return pv_tpl_int(0);
    if (!strcmp(name, "previtem"))
        return i > 0 ? st->items->v[i - 1] : pv_tpl_undef("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? st->items->v[i + 1] : pv_tpl_undef("there is no next item");
    *found = false;
    return pv_tpl_none();
}

static pv_tpl_val get_method(pv_tpl_rt *r, const pv_tpl_val *obj, const char *name, bool *found) {
    uint8_t kind = obj->k == TV_NS ? TV_DICT : obj->k;
    for (size_t i = 0; i < PV_ARRAY_LEN(methods); i++) {
        if (methods[i].kind == kind && !strcmp(methods[i].name, name) && obj->k != TV_NS) {
            pv_tpl_val *recv = pv_tpl_alloc(r, sizeof(pv_tpl_val));
            *recv = *obj;
            pv_tpl_val m = {.k = TV_METHOD, .aux = recv};
            m.u.s = methods[i].name;
            m.n = i;
            *found = true;
            return m;
        }
    }
    if (obj->k == TV_LIST || obj->k == TV_DICT) {
        for (size_t i = 0; i < PV_ARRAY_LEN(unsafe_attrs); i++)
            if (!strcmp(unsafe_attrs[i], name))
                FAIL(r, "access to attribute '%s' of '%s' object is unsafe.", name, pv_tpl_type_name(obj));
    }
    *found = false;
    return pv_tpl_none();
}

/* obj.name: Python attribute first, then item (jinja2 Environment.getattr). */
static pv_tpl_val get_attr(pv_tpl_rt *r, const pv_tpl_val *obj, const char *name) {
    bool found;
    if (obj->k == TV_UNDEF) undefined_error(r, obj);
    if (obj->k == TV_LOOP) {
        pv_tpl_val v = loop_attr(obj, name, &found);
        if (found) return v;
    }
    pv_tpl_val m = get_method(r, obj, name, &found);
    if (found) return m;
    if (obj->k == TV_DICT || obj->k == TV_NS) {
        pv_tpl_val *v = pv_tpl_dict_get_str(obj->u.d, name);
        if (v) return *v;
    }
    return missing_attr(r, obj, name);
}

/* obj[key]: item first, then attribute for string keys (jinja2 Environment.getitem). */
static pv_tpl_val get_item(pv_tpl_rt *r, const pv_tpl_val *obj, const pv_tpl_val *key) {
    if (obj->k == TV_UNDEF) undefined_error(r, obj);
    if (key->k == TV_UNDEF) undefined_error(r, key);
    if (obj->k == TV_DICT || obj->k == TV_NS) {
        pv_tpl_val *v = pv_tpl_dict_get(obj->u.d, key);
        if (v) return *v;
    } else if ((obj->k == TV_LIST || obj->k == TV_STR) && (key->k == TV_INT || key->k == TV_BOOL)) {
        int64_t i = key->k == TV_INT ? key->u.i : key->u.b;
        if (obj->k == TV_LIST) {
            int64_t n = (int64_t)obj->u.l->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return obj->u.l->v[i];
        } else {
            size_t ncp;
            size_t *off = u8_offsets(r, obj->u.s, obj->n, &ncp);
            if (i < 0) i += (int64_t)ncp;
            if (i >= 0 && i < (int64_t)ncp) return pv_tpl_str(obj->u.s + off[i], off[i + 1] - off[i]);
        }
        char idx[32];
        snprintf(idx, sizeof idx, "%lld", (long long)(key->k == TV_INT ? key->u.i : key->u.b));
        return pv_tpl_undef(fmt_hint(r, "%s has no element %s", obj_type_repr(obj), idx));
    }
    if (key->k == TV_STR) {
        const char *name = rstrdup(r, key->u.s, key->n);
        bool found;
        if (obj->k == TV_LOOP) {
            pv_tpl_val v = loop_attr(obj, name, &found);
            if (found) return v;
        }
        pv_tpl_val m = get_method(r, obj, name, &found);
        if (found) return m;
        return missing_attr(r, obj, name);
    }
    pv_tpl_sb b = {0};
    pv_tpl_repr(r, &b, key, 0);
    return pv_tpl_undef(fmt_hint(r, "%s has no element %s", obj_type_repr(obj), b.p ? b.p : ""));
}

/* ---- arithmetic ---- */
static pv_tpl_val printf_format(pv_tpl_rt *r, const pv_tpl_val *fmt, const argv_t *a);
static bool isnum(const pv_tpl_val *v) { return v->k == TV_INT || v->k == TV_FLOAT || v->k == TV_BOOL; }
static double fval(const pv_tpl_val *v) { return v->k == TV_FLOAT ? v->u.f : v->k == TV_INT ? (double)v->u.i : v->u.b; }
static int64_t ival(const pv_tpl_val *v) { return v->k == TV_INT ? v->u.i : v->k == TV_BOOL ? v->u.b : 0; }

static const char *const op_syms[] = {"+", "-", "*", "/", "//", "%", "**"};

_Noreturn static void op_type_error(pv_tpl_rt *r, int op, const pv_tpl_val *a, const pv_tpl_val *b) {
    if (op == OP_ADD && (a->k == TV_STR || (a->k == TV_LIST && !a->is_tuple)))
        FAIL(r, "can only concatenate %s (not \"%s\") to %s", pv_tpl_type_name(a), pv_tpl_type_name(b),
             pv_tpl_type_name(a));
    FAIL(r, "unsupported operand type(s) for %s: '%s' and '%s'", op_syms[op], pv_tpl_type_name(a),
         pv_tpl_type_name(b));
}

static pv_tpl_val repeat(pv_tpl_rt *r, const pv_tpl_val *seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq->k == TV_STR) {
        pv_tpl_sb b = {0};
        for (int64_t i = 0; i < times; i++) {
            pv_tpl_sb_put(r, &b, seq->u.s, seq->n);
            tick(r);
        }
        return pv_tpl_sb_value(&b);
    }
    pv_tpl_val l = pv_tpl_new_list(r, 0);
    l.is_tuple = seq->is_tuple;
    for (int64_t i = 0; i < times; i++) {
        for (size_t k = 0; k < seq->u.l->n; k++) pv_tpl_list_push(r, l.u.l, seq->u.l->v[k]);
        tick(r);
    }
    return l;
}

static pv_tpl_val binop(pv_tpl_rt *r, int op, const pv_tpl_val *a, const pv_tpl_val *b) {
    if (a->k == TV_UNDEF) undefined_error(r, a);
    if (b->k == TV_UNDEF) undefined_error(r, b);
    if (isnum(a) && isnum(b)) {
        bool fl = a->k == TV_FLOAT || b->k == TV_FLOAT;
        int64_t x = ival(a), y = ival(b), z;
        double fx = fval(a), fy = fval(b);
        switch (op) {
        case OP_ADD:
            if (fl) return pv_tpl_float(fx + fy);
            if (__builtin_add_overflow(x, y, &z)) FAIL(r, "integer overflow");
            return pv_tpl_int(z);
        case OP_SUB:
            if (fl) return pv_tpl_float(fx - fy);
            if (__builtin_sub_overflow(x, y, &z)) FAIL(r, "integer overflow");
            return pv_tpl_int(z);
        case OP_MUL:
            if (fl) return pv_tpl_float(fx * fy);
            if (__builtin_mul_overflow(x, y, &z)) FAIL(r, "integer overflow");
            return pv_tpl_int(z);
        case OP_DIV:
            if (fy == 0.0) FAIL(r, "division by zero");
            return pv_tpl_float(fx / fy);
        case OP_FLOORDIV: case OP_MOD:
            if (fl) {
                if (fy == 0.0) FAIL(r, op == OP_MOD ? "float modulo" : "float floor division by zero");
                double m = fmod(fx, fy);
                if (m != 0.0 && ((m < 0) != (fy < 0))) m += fy;
                if (op == OP_MOD) return pv_tpl_float(m);
                return pv_tpl_float(floor(fx / fy));
            }
            if (y == 0) FAIL(r, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) FAIL(r, "integer overflow");
            {
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return pv_tpl_int(op == OP_MOD ? m : q);
            }
        case OP_POW:
            if (!fl && y >= 0) {
                int64_t res = 1, base = x;
                int64_t e = y;
                while (e > 0) {
                    if (e & 1 && __builtin_mul_overflow(res, base, &res)) FAIL(r, "integer overflow");
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) FAIL(r, "integer overflow");
                }
                return pv_tpl_int(res);
            }
            if (fx == 0.0 && fy < 0) FAIL(r, "0.0 cannot be raised to a negative power");
            return pv_tpl_float(pow(fx, fy));
        }
    }
    if (op == OP_ADD && a->k == TV_STR && b->k == TV_STR) {
        size_t n = a->n + b->n;
        if (n > PV_TEMPLATE_MAX_OUTPUT) pv_tpl_fail_status(r, PV_ERR_RANGE, "string too long");
        char *s = pv_tpl_alloc(r, n + 1);
        memcpy(s, a->u.s, a->n);
        memcpy(s + a->n, b->u.s, b->n);
        return pv_tpl_str(s, n);
    }
    if (op == OP_ADD && a->k == TV_LIST && b->k == TV_LIST && a->is_tuple == b->is_tuple) {
        pv_tpl_val l = pv_tpl_new_list(r, a->u.l->n + b->u.l->n);
        l.is_tuple = a->is_tuple;
        for (size_t i = 0; i < a->u.l->n; i++) pv_tpl_list_push(r, l.u.l, a->u.l->v[i]);
        for (size_t i = 0; i < b->u.l->n; i++) pv_tpl_list_push(r, l.u.l, b->u.l->v[i]);
        return l;
    }
    if (op == OP_MOD && a->k == TV_STR) {
        /* printf-style `'%s' % x` / `'%s %s' % (x, y)`: the same code as the format filter */
        argv_t fa = {.args = b, .n = 1};
        if (b->k == TV_LIST && b->is_tuple) fa = (argv_t){.args = b->u.l->v, .n = (int)b->u.l->n};
        return printf_format(r, a, &fa);
    }
    if (op == OP_MUL && (a->k == TV_STR || a->k == TV_LIST) && (b->k == TV_INT || b->k == TV_BOOL))
        return repeat(r, a, ival(b));
    if (op == OP_MUL && (b->k == TV_STR || b->k == TV_LIST) && (a->k == TV_INT || a->k == TV_BOOL))
        return repeat(r, b, ival(a));
    op_type_error(r, op, a, b);
}

static bool contains(pv_tpl_rt *r, const pv_tpl_val *item, const pv_tpl_val *seq) {
    switch (seq->k) {
    case TV_STR:
        if (item->k != TV_STR) FAIL(r, "'in <string>' requires string as left operand, not %s", pv_tpl_type_name(item));
        return memfind(seq->u.s, seq->n, item->u.s, item->n) != NULL;
    case TV_LIST:
        for (size_t i = 0; i < seq->u.l->n; i++) {
            tick(r);
            if (pv_tpl_eq(item, &seq->u.l->v[i])) return true;
        }
        return false;
    case TV_DICT: case TV_NS: return pv_tpl_dict_get(seq->u.d, item) != NULL;
    case TV_UNDEF: return false;
    default: FAIL(r, "argument of type '%s' is not iterable", pv_tpl_type_name(seq));
    }
}

static bool compare(pv_tpl_rt *r, int op, const pv_tpl_val *a, const pv_tpl_val *b) {
    switch (op) {
    case OP_EQ: return pv_tpl_eq(a, b);
    case OP_NE: return !pv_tpl_eq(a, b);
    case OP_IN: return contains(r, a, b);
    case OP_NOTIN: return !contains(r, a, b);
    default: break;
    }
    static const char *const syms[] = {[OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">="};
    if (a->k == TV_UNDEF) undefined_error(r, a);
    if (b->k == TV_UNDEF) undefined_error(r, b);
    bool ok = (isnum(a) && isnum(b)) || (a->k == TV_STR && b->k == TV_STR) ||
              (a->k == TV_LIST && b->k == TV_LIST && a->is_tuple == b->is_tuple);
    if (!ok)
        FAIL(r, "'%s' not supported between instances of '%s' and '%s'", syms[op], pv_tpl_type_name(a),
             pv_tpl_type_name(b));
    int c = pv_tpl_cmp(r, a, b);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* ---- evaluation ---- */
static pv_tpl_val eval(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_expr *e);
static int exec_body(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_stmt *s, pv_tpl_sb *out);

static pv_tpl_val lookup(pv_tpl_rt *r, pv_tpl_frame *f, const char *name) {
    for (; f; f = f->parent) {
        pv_tpl_val *v = pv_tpl_dict_get_str(&f->vars, name);
        if (v) return *v;
    }
    pv_tpl_val *g = pv_tpl_dict_get_str(r->globals.u.d, name);
    if (g) return *g;
    for (size_t i = 0; i < PV_ARRAY_LEN(g_funcs); i++) {
        if (!strcmp(g_funcs[i].name, name)) {
            pv_tpl_val fn = {.k = TV_FUNC};
            fn.u.i = (int64_t)i;
            return fn;
        }
    }
    return pv_tpl_undef(fmt_hint(r, "'%s' is undefined%s", name, NULL));
}

static void frame_set(pv_tpl_rt *r, pv_tpl_frame *f, const char *name, pv_tpl_val v) {
    pv_tpl_dict_set(r, &f->vars, pv_tpl_str(name, strlen(name)), v);
}

static pv_tpl_frame *new_frame(pv_tpl_rt *r, pv_tpl_frame *parent) {
    pv_tpl_frame *f = pv_tpl_alloc(r, sizeof *f);
    f->parent = parent;
    return f;
}

/* Evaluates call arguments into an argv (values + keyword names). */
static argv_t eval_args(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_expr *e, const pv_tpl_val *first) {
    int extra = first ? 1 : 0;
    argv_t a = {0};
    a.n = e->nargs + extra;
    pv_tpl_val *vals = pv_tpl_alloc_array(r, (size_t)a.n + 1, sizeof(pv_tpl_val));
    const char **kw = pv_tpl_alloc_array(r, (size_t)a.n + 1, sizeof(char *));
    if (first) vals[0] = *first;
    for (int i = 0; i < e->nargs; i++) {
        vals[i + extra] = eval(r, f, e->args[i]);
        kw[i + extra] = e->kw ? e->kw[i] : NULL;
    }
    a.args = vals;
    a.kw = kw;
    return a;
}

static pv_tpl_val call_macro(pv_tpl_rt *r, const pv_tpl_val *m, const argv_t *a, const pv_tpl_val *caller) {
    const pv_tpl_stmt *s = m->u.macro;
    if (r->call_depth >= PV_TEMPLATE_MAX_CALL_DEPTH)
        pv_tpl_fail_status(r, PV_ERR_RANGE, "macro calls nested too deeply");
    pv_tpl_frame *f = new_frame(r, m->aux);
    if (s->kind == S_MACRO) {
        int pos = 0;
        for (int k = 0; k < a->n; k++) {
            if (a->kw && a->kw[k]) {
                int idx = -1;
                for (int p = 0; p < s->nnames; p++)
                    if (!strcmp(s->names[p], a->kw[k])) idx = p;
                if (idx < 0) FAIL(r, "macro '%s' takes no keyword argument '%s'", s->name, a->kw[k]);
                frame_set(r, f, s->names[idx], a->args[k]);
            } else {
                if (pos >= s->nnames) FAIL(r, "macro '%s' takes not more than %d argument(s)", s->name, s->nnames);
                frame_set(r, f, s->names[pos++], a->args[k]);
            }
        }
        for (int p = 0; p < s->nnames; p++) {
            if (pv_tpl_dict_get_str(&f->vars, s->names[p])) continue;
            if (s->defaults[p]) {
                int line = r->line, col = r->col;
                frame_set(r, f, s->names[p], eval(r, f, s->defaults[p]));
                r->line = line;
                r->col = col;
            } else {
                frame_set(r, f, s->names[p],
                          pv_tpl_undef(fmt_hint(r, "parameter '%s' was not provided%s", s->names[p], NULL)));
            }
        }
        if (caller) frame_set(r, f, "caller", *caller);
    }
    pv_tpl_sb out = {0};
    r->call_depth++;
    exec_body(r, f, s->body, &out); /* a macro's body, or a call block's for caller() */
    r->call_depth--;
    return pv_tpl_sb_value(&out);
}

static pv_tpl_val call_value(pv_tpl_rt *r, const pv_tpl_val *fn, const argv_t *a, const pv_tpl_val *caller) {
    switch (fn->k) {
    case TV_FUNC: return g_funcs[fn->u.i].fn(r, NULL, a);
    case TV_METHOD: return methods[fn->n].fn(r, fn->aux, a);
    case TV_MACRO: return call_macro(r, fn, a, caller);
    case TV_UNDEF: undefined_error(r, fn);
    default: FAIL(r, "'%s' object is not callable", pv_tpl_type_name(fn));
    }
}

static pv_tpl_val apply_filter(pv_tpl_rt *r, const char *name, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f);
static bool apply_test(pv_tpl_rt *r, const char *name, const pv_tpl_val *v, const argv_t *a);

static pv_tpl_val eval(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_expr *e) {
    tick(r);
    r->line = e->line;
    r->col = e->col;
    switch (e->kind) {
    case E_LIT: return e->lit;
    case E_NAME: return lookup(r, f, e->name);
    case E_ATTR: {
        pv_tpl_val o = eval(r, f, e->a);
        r->line = e->line;
        r->col = e->col;
        return get_attr(r, &o, e->name);
    }
    case E_ITEM: {
        pv_tpl_val o = eval(r, f, e->a);
        pv_tpl_val k = eval(r, f, e->b);
        r->line = e->line;
        r->col = e->col;
        return get_item(r, &o, &k);
    }
    case E_SLICE: {
        pv_tpl_val o = eval(r, f, e->a);
        pv_tpl_val a, b, c;
        if (e->b) a = eval(r, f, e->b);
        if (e->c) b = eval(r, f, e->c);
        if (e->args[0]) c = eval(r, f, e->args[0]);
        r->line = e->line;
        r->col = e->col;
        return do_slice(r, &o, e->b ? &a : NULL, e->c ? &b : NULL, e->args[0] ? &c : NULL);
    }
    case E_CALL: {
        pv_tpl_val fn = eval(r, f, e->a);
        argv_t a = eval_args(r, f, e, NULL);
        r->line = e->line;
        r->col = e->col;
        return call_value(r, &fn, &a, NULL);
    }
    case E_FILTER: {
        pv_tpl_val v = eval(r, f, e->a);
        argv_t a = eval_args(r, f, e, NULL);
        r->line = e->line;
        r->col = e->col;
        return apply_filter(r, e->name, &v, &a, f);
    }
    case E_TEST: {
        pv_tpl_val v = eval(r, f, e->a);
        argv_t a = eval_args(r, f, e, NULL);
        r->line = e->line;
        r->col = e->col;
        bool b = apply_test(r, e->name, &v, &a);
        return pv_tpl_bool(e->negate ? !b : b);
    }
    case E_BIN: {
        pv_tpl_val a = eval(r, f, e->a), b = eval(r, f, e->b);
        r->line = e->line;
        r->col = e->col;
        return binop(r, e->op, &a, &b);
    }
    case E_CONCAT: {
        pv_tpl_val a = eval(r, f, e->a), b = eval(r, f, e->b);
        pv_tpl_sb sb = {0};
        pv_tpl_to_str(r, &sb, &a);
        pv_tpl_to_str(r, &sb, &b);
        return pv_tpl_sb_value(&sb);
    }
    case E_NEG: case E_POS: {
        pv_tpl_val a = eval(r, f, e->a);
        r->line = e->line;
        r->col = e->col;
        if (a.k == TV_UNDEF) undefined_error(r, &a);
        if (!isnum(&a)) FAIL(r, "bad operand type for unary %s: '%s'", e->kind == E_NEG ? "-" : "+", pv_tpl_type_name(&a));
        if (e->kind == E_POS) return a.k == TV_BOOL ? pv_tpl_int(a.u.b) : a;
        if (a.k == TV_FLOAT) return pv_tpl_float(-a.u.f);
        if (ival(&a) == INT64_MIN) FAIL(r, "integer overflow");
        return pv_tpl_int(-ival(&a));
    }
    case E_AND: {
        pv_tpl_val a = eval(r, f, e->a);
        return pv_tpl_truthy(&a) ? eval(r, f, e->b) : a;
    }
    case E_OR: {
        pv_tpl_val a = eval(r, f, e->a);
        return pv_tpl_truthy(&a) ? a : eval(r, f, e->b);
    }
    case E_NOT: {
        pv_tpl_val a = eval(r, f, e->a);
        return pv_tpl_bool(!pv_tpl_truthy(&a));
    }
    case E_COND: {
        pv_tpl_val c = eval(r, f, e->b);
        if (pv_tpl_truthy(&c)) return eval(r, f, e->a);
        if (e->c) return eval(r, f, e->c);
        {
            char hint[128];
            snprintf(hint, sizeof hint,
                     "the inline if-expression on line %d evaluated to false and no else section was defined.",
                     e->line);
            return pv_tpl_undef(rstrdup(r, hint, strlen(hint)));
        }
    }
    case E_LIST: case E_TUPLE: {
        pv_tpl_val l = pv_tpl_new_list(r, (size_t)e->nargs);
        l.is_tuple = e->kind == E_TUPLE;
        for (int i = 0; i < e->nargs; i++) pv_tpl_list_push(r, l.u.l, eval(r, f, e->args[i]));
        return l;
    }
    case E_DICT: {
        pv_tpl_val d = pv_tpl_new_dict(r);
        for (int i = 0; i < e->nargs; i++) {
            pv_tpl_val k = eval(r, f, e->keys[i]);
            if (k.k == TV_LIST && !k.is_tuple) FAIL(r, "unhashable type: 'list'");
            if (k.k == TV_DICT) FAIL(r, "unhashable type: 'dict'");
            pv_tpl_dict_set(r, d.u.d, k, eval(r, f, e->args[i]));
        }
        return d;
    }
    case E_CMP: {
        pv_tpl_val a = eval(r, f, e->a);
        for (int i = 0; i < e->nargs; i++) {
            pv_tpl_val b = eval(r, f, e->keys[i]);
            r->line = e->line;
            r->col = e->col;
            if (!compare(r, e->ops[i], &a, &b)) return pv_tpl_bool(false);
            a = b;
        }
        return pv_tpl_bool(true);
    }
    }
    FAIL(r, "unknown expression");
}

/* ---- filters ---- */
typedef pv_tpl_val (*filter_fn)(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f);

static pv_tpl_val f_tojson(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_json_opts o = {0};
    const pv_tpl_val *ind = arg(a, 1, "indent");
    char spaces[64];
    if (ind && ind->k == TV_INT) {
        int64_t n = ind->u.i < 0 ? 0 : PV_MIN(ind->u.i, 63);
        memset(spaces, ' ', (size_t)n);
        spaces[n] = 0;
        o.indent = spaces;
        o.indent_len = (size_t)n;
    } else if (ind && ind->k == TV_STR) {
        o.indent = ind->u.s;
        o.indent_len = ind->n;
    } else if (ind && ind->k != TV_NONE) {
        FAIL(r, "tojson: indent must be an int or a string");
    }
    o.item_sep = o.indent ? "," : ", ";
    o.key_sep = ": ";
    const pv_tpl_val *sep = arg(a, 2, "separators");
    if (sep && sep->k != TV_NONE) {
        if (sep->k != TV_LIST || sep->u.l->n != 2 || sep->u.l->v[0].k != TV_STR || sep->u.l->v[1].k != TV_STR)
            FAIL(r, "tojson: separators must be a pair of strings");
        o.item_sep = sep->u.l->v[0].u.s;
        o.item_sep_len = sep->u.l->v[0].n;
        o.key_sep = sep->u.l->v[1].u.s;
        o.key_sep_len = sep->u.l->v[1].n;
    } else {
        o.item_sep_len = strlen(o.item_sep);
        o.key_sep_len = strlen(o.key_sep);
    }
    /* HF's signature: tojson(x, ensure_ascii=False, indent=None, separators=None,
     * sort_keys=False); templates pass them by keyword */
    const pv_tpl_val *sk = arg(a, 3, "sort_keys"), *ea = arg(a, 0, "ensure_ascii");
    o.sort_keys = sk && pv_tpl_truthy(sk);
    o.ensure_ascii = ea && pv_tpl_truthy(ea);
    pv_tpl_sb b = {0};
    pv_tpl_json(r, &b, v, &o, 0);
    return pv_tpl_sb_value(&b);
}

static pv_tpl_val f_trim(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    const pv_tpl_val *chars = arg(a, 0, "chars");
    return py_strip(&s, chars && chars->k == TV_STR ? chars : NULL, true, true);
}
static pv_tpl_val f_length(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    return pv_tpl_int(py_len(r, v));
}
static pv_tpl_val f_upper(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    return u8_map(r, &s, 0);
}
static pv_tpl_val f_lower(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    return u8_map(r, &s, 1);
}
static pv_tpl_val f_capitalize(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    return u8_map(r, &s, 3);
}
/* A separator of jinja2's title filter ([-\s({\[<]) at byte i; *len gets its size. */
static bool title_sep_at(const pv_tpl_val *s, size_t i, size_t *len) {
    char c = s->u.s[i];
    if (c && strchr("-({[<", c)) {
        *len = 1;
        return true;
    }
    return is_py_space_at(s->u.s, s->n, i, len);
}

/* jinja2 do_title: split on runs of [-\s({[<], upper the first char of each piece, lower the
 * rest (unlike str.title, an apostrophe does not start a word). */
static pv_tpl_val f_title(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    pv_tpl_sb b = {0};
    size_t i = 0, l;
    while (i < s.n) {
        size_t st = i;
        while (i < s.n && title_sep_at(&s, i, &l)) i += l;
        pv_tpl_sb_put(r, &b, s.u.s + st, i - st);
        st = i;
        while (i < s.n && !title_sep_at(&s, i, &l)) i++;
        if (i > st) {
            size_t first = 1;
            while (st + first < i && ((unsigned char)s.u.s[st + first] & 0xC0) == 0x80) first++;
            pv_tpl_val h = pv_tpl_str(s.u.s + st, first), t = pv_tpl_str(s.u.s + st + first, i - st - first);
            pv_tpl_val hu = u8_map(r, &h, 0), tl = u8_map(r, &t, 1);
            pv_tpl_sb_put(r, &b, hu.u.s, hu.n);
            pv_tpl_sb_put(r, &b, tl.u.s, tl.n);
        }
    }
    return pv_tpl_sb_value(&b);
}
static pv_tpl_val f_replace(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    const pv_tpl_val *o = arg(a, 0, "old"), *n = arg(a, 1, "new");
    if (!o || !n) FAIL(r, "replace filter needs old and new");
    pv_tpl_val os = pv_tpl_str_of(r, o), ns = pv_tpl_str_of(r, n);
    return py_replace(r, &s, &os, &ns, arg_int(r, a, 2, "count", -1));
}

static pv_tpl_val attr_path(pv_tpl_rt *r, const pv_tpl_val *item, const pv_tpl_val *attr) {
    /* jinja2 make_attrgetter: dotted path, integer parts as indexes, item lookup */
    if (attr->k == TV_INT) return get_item(r, item, attr);
    pv_tpl_val cur = *item;
    const char *s = attr->u.s, *end = attr->u.s + attr->n;
    while (s <= end) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        if (!dot) dot = end;
        pv_tpl_val key = pv_tpl_str(rstrdup(r, s, (size_t)(dot - s)), (size_t)(dot - s));
        bool digits = dot > s;
        for (const char *c = s; c < dot; c++)
            if (*c < '0' || *c > '9') digits = false;
        if (digits) key = pv_tpl_int(strtoll(key.u.s, NULL, 10));
        if (cur.k == TV_UNDEF) return cur;
        cur = get_item(r, &cur, &key);
        s = dot + 1;
    }
    return cur;
}

static pv_tpl_val f_join(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    const pv_tpl_val *d = arg(a, 0, "d"), *attr = arg(a, 1, "attribute");
    pv_tpl_list *l = iter_list(r, v);
    pv_tpl_sb b = {0};
    pv_tpl_val ds = d ? pv_tpl_str_of(r, d) : pv_tpl_str("", 0);
    for (size_t i = 0; i < l->n; i++) {
        if (i) pv_tpl_sb_put(r, &b, ds.u.s, ds.n);
        pv_tpl_val x = attr ? attr_path(r, &l->v[i], attr) : l->v[i];
        pv_tpl_to_str(r, &b, &x);
    }
    return pv_tpl_sb_value(&b);
}
static pv_tpl_val f_default(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)r; (void)f;
    const pv_tpl_val *d = arg(a, 0, "default_value"), *boolean = arg(a, 1, "boolean");
    bool use = v->k == TV_UNDEF || (boolean && pv_tpl_truthy(boolean) && !pv_tpl_truthy(v));
    if (use) return d ? *d : pv_tpl_str("", 0);
    return *v;
}
static pv_tpl_val f_first(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_list *l = iter_list(r, v);
    return l->n ? l->v[0] : pv_tpl_undef("No first item, sequence was empty.");
}
static pv_tpl_val f_last(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    if (v->k == TV_DICT) FAIL(r, "'dict' object is not reversible");
    pv_tpl_list *l = iter_list(r, v);
    return l->n ? l->v[l->n - 1] : pv_tpl_undef("No last item, sequence was empty.");
}
static pv_tpl_val f_list(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_list *src = iter_list(r, v);
    pv_tpl_val l = pv_tpl_new_list(r, src->n);
    for (size_t i = 0; i < src->n; i++) pv_tpl_list_push(r, l.u.l, src->v[i]);
    return l;
}
static pv_tpl_val f_items(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    if (v->k == TV_UNDEF) return pv_tpl_new_list(r, 0);
    if (v->k != TV_DICT) FAIL(r, "Can only get item pairs from a mapping.");
    return m_items(r, v, a);
}
static pv_tpl_val f_string(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    return pv_tpl_str_of(r, v);
}
static pv_tpl_val f_safe(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    return pv_tpl_str_of(r, v);
}
static pv_tpl_val f_int(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f; (void)r;
    const pv_tpl_val *d = arg(a, 0, "default");
    pv_tpl_val def = d ? *d : pv_tpl_int(0);
    switch (v->k) {
    case TV_INT: return *v;
    case TV_BOOL: return pv_tpl_int(v->u.b);
    case TV_FLOAT:
        if (!isfinite(v->u.f) || fabs(v->u.f) >= 9.2e18) return def;
        return pv_tpl_int((int64_t)v->u.f);
    case TV_STR: {
        char buf[64];
        pv_tpl_val s = py_strip(v, NULL, true, true);
        if (s.n == 0 || s.n >= sizeof buf) return def;
        memcpy(buf, s.u.s, s.n);
        buf[s.n] = 0;
        char *end;
        long long i = strtoll(buf, &end, 10);
        if (*end == 0) return pv_tpl_int(i);
        double d2 = strtod(buf, &end);
        if (*end == 0 && isfinite(d2) && fabs(d2) < 9.2e18) return pv_tpl_int((int64_t)d2);
        return def;
    }
    default: return def;
    }
}
static pv_tpl_val f_float(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    const pv_tpl_val *d = arg(a, 0, "default");
    pv_tpl_val def = d ? *d : pv_tpl_float(0.0);
    if (isnum(v)) return pv_tpl_float(fval(v));
    if (v->k == TV_STR) {
        char buf[64];
        pv_tpl_val s = py_strip(v, NULL, true, true);
        if (s.n == 0 || s.n >= sizeof buf) return def;
        memcpy(buf, s.u.s, s.n);
        buf[s.n] = 0;
        char *end;
        double x = strtod(buf, &end);
        if (*end == 0) return pv_tpl_float(x);
    }
    (void)r;
    return def;
}
static pv_tpl_val f_round(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    int64_t prec = arg_int(r, a, 0, "precision", 0);
    const pv_tpl_val *m = arg(a, 1, "method");
    if (!isnum(v)) FAIL(r, "type %s doesn't define __round__ method", pv_tpl_type_name(v));
    double x = fval(v);
    if (m && m->k == TV_STR && m->n && strncmp(m->u.s, "common", m->n)) {
        double p = pow(10.0, (double)prec);
        if (!strncmp(m->u.s, "floor", m->n)) return pv_tpl_float(floor(x * p) / p);
        if (!strncmp(m->u.s, "ceil", m->n)) return pv_tpl_float(ceil(x * p) / p);
        FAIL(r, "method must be common, ceil or floor");
    }
    if (v->k != TV_FLOAT) return pv_tpl_int(ival(v)); /* round(int, n) stays an int for n >= 0 */
    if (prec < 0 || prec > 300 || !isfinite(x)) {
        double p = pow(10.0, (double)prec);
        return pv_tpl_float(isfinite(x) ? nearbyint(x * p) / p : x);
    }
    /* Python's round is correctly rounded half-even on the exact binary value: so is printf */
    char buf[400];
    snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
    return pv_tpl_float(strtod(buf, NULL));
}
static pv_tpl_val f_abs(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    if (v->k == TV_FLOAT) return pv_tpl_float(fabs(v->u.f));
    if (v->k == TV_INT || v->k == TV_BOOL) {
        if (ival(v) == INT64_MIN) FAIL(r, "integer overflow");
        return pv_tpl_int(ival(v) < 0 ? -ival(v) : ival(v));
    }
    FAIL(r, "bad operand type for abs(): '%s'", pv_tpl_type_name(v));
}

/* select/reject/selectattr/rejectattr */
static pv_tpl_val select_impl(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, bool by_attr, bool keep) {
    pv_tpl_list *l = iter_list(r, v);
    int base = 0;
    const pv_tpl_val *attr = NULL;
    if (by_attr) {
        attr = arg(a, 0, NULL);
        if (!attr || (attr->k != TV_STR && attr->k != TV_INT)) FAIL(r, "Missing parameter for attribute name");
        base = 1;
    }
    const pv_tpl_val *test = arg(a, base, NULL);
    if (test && test->k != TV_STR) FAIL(r, "test name must be a string");
    /* the rest are test arguments */
    argv_t targs = {0};
    int pos = 0;
    pv_tpl_val *tvals = pv_tpl_alloc_array(r, (size_t)a->n + 1, sizeof(pv_tpl_val));
    for (int k = 0; k < a->n; k++) {
        if (a->kw && a->kw[k]) continue;
        if (pos++ <= base) continue;
        tvals[targs.n++] = a->args[k];
    }
    targs.args = tvals;
    char *tname = test ? (char *)rstrdup(r, test->u.s, test->n) : NULL;
    pv_tpl_val out = pv_tpl_new_list(r, 0);
    for (size_t i = 0; i < l->n; i++) {
        tick(r);
        pv_tpl_val x = by_attr ? attr_path(r, &l->v[i], attr) : l->v[i];
        bool ok = tname ? apply_test(r, tname, &x, &targs) : pv_tpl_truthy(&x);
        if (ok == keep) pv_tpl_list_push(r, out.u.l, l->v[i]);
    }
    return out;
}
static pv_tpl_val f_selectattr(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) { (void)f; return select_impl(r, v, a, true, true); }
static pv_tpl_val f_rejectattr(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) { (void)f; return select_impl(r, v, a, true, false); }
static pv_tpl_val f_select(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) { (void)f; return select_impl(r, v, a, false, true); }
static pv_tpl_val f_reject(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) { (void)f; return select_impl(r, v, a, false, false); }

static pv_tpl_val f_map(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    pv_tpl_list *l = iter_list(r, v);
    pv_tpl_val out = pv_tpl_new_list(r, l->n);
    const pv_tpl_val *attr = arg(a, -1, "attribute");
    if (attr) {
        const pv_tpl_val *def = arg(a, -1, "default");
        for (size_t i = 0; i < l->n; i++) {
            pv_tpl_val x = attr_path(r, &l->v[i], attr);
            if (x.k == TV_UNDEF && def) x = *def;
            pv_tpl_list_push(r, out.u.l, x);
        }
        return out;
    }
    const pv_tpl_val *fname = arg(a, 0, NULL);
    if (!fname || fname->k != TV_STR) FAIL(r, "map requires a filter name or attribute=");
    argv_t rest = {.args = a->args + 1, .kw = a->kw ? a->kw + 1 : NULL, .n = a->n - 1};
    const char *name = rstrdup(r, fname->u.s, fname->n);
    for (size_t i = 0; i < l->n; i++) pv_tpl_list_push(r, out.u.l, apply_filter(r, name, &l->v[i], &rest, f));
    return out;
}

static pv_tpl_val f_unique(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_list *l = iter_list(r, v);
    const pv_tpl_val *cs = arg(a, 0, "case_sensitive"), *attr = arg(a, 1, "attribute");
    bool sensitive = cs && pv_tpl_truthy(cs);
    pv_tpl_val out = pv_tpl_new_list(r, 0), seen = pv_tpl_new_list(r, 0);
    for (size_t i = 0; i < l->n; i++) {
        pv_tpl_val key = attr ? attr_path(r, &l->v[i], attr) : l->v[i];
        if (!sensitive && key.k == TV_STR) key = u8_map(r, &key, 1);
        if (contains(r, &key, &seen)) continue;
        pv_tpl_list_push(r, seen.u.l, key);
        pv_tpl_list_push(r, out.u.l, l->v[i]);
    }
    return out;
}

/* stable insertion sort keyed by cmp (lists in templates are short) */
static void sort_tv(pv_tpl_rt *r, pv_tpl_val *keys, pv_tpl_val *vals, size_t n, bool reverse) {
    for (size_t i = 1; i < n; i++) {
        pv_tpl_val k = keys[i], v = vals[i];
        size_t j = i;
        while (j > 0) {
            int c = pv_tpl_cmp(r, &keys[j - 1], &k);
            if (reverse ? c >= 0 : c <= 0) break;
            keys[j] = keys[j - 1];
            vals[j] = vals[j - 1];
            j--;
            tick(r);
        }
        keys[j] = k;
        vals[j] = v;
    }
}

static pv_tpl_val sort_impl(pv_tpl_rt *r, pv_tpl_list *l, bool reverse, bool sensitive, const pv_tpl_val *attr,
                    bool by_value_pairs, int pair_idx) {
    pv_tpl_val *keys = pv_tpl_alloc_array(r, l->n + 1, sizeof(pv_tpl_val));
    pv_tpl_val out = pv_tpl_new_list(r, l->n);
    for (size_t i = 0; i < l->n; i++) {
        pv_tpl_val k = l->v[i];
        if (by_value_pairs) k = k.u.l->v[pair_idx];
        else if (attr) k = attr_path(r, &k, attr);
        if (!sensitive && k.k == TV_STR) k = u8_map(r, &k, 1);
        keys[i] = k;
        pv_tpl_list_push(r, out.u.l, l->v[i]);
    }
    sort_tv(r, keys, out.u.l->v, l->n, reverse);
    return out;
}

static pv_tpl_val f_sort(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    const pv_tpl_val *rev = arg(a, 0, "reverse"), *cs = arg(a, 1, "case_sensitive"), *attr = arg(a, 2, "attribute");
    return sort_impl(r, iter_list(r, v), rev && pv_tpl_truthy(rev), cs && pv_tpl_truthy(cs), attr, false, 0);
}
static pv_tpl_val f_dictsort(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    if (v->k != TV_DICT) FAIL(r, "dictsort needs a mapping");
    const pv_tpl_val *cs = arg(a, 0, "case_sensitive"), *by = arg(a, 1, "by"), *rev = arg(a, 2, "reverse");
    int idx = 0;
    if (by && by->k == TV_STR && by->n == 5 && !memcmp(by->u.s, "value", 5)) idx = 1;
    pv_tpl_val items = m_items(r, v, a);
    return sort_impl(r, items.u.l, rev && pv_tpl_truthy(rev), cs && pv_tpl_truthy(cs), NULL, true, idx);
}
static pv_tpl_val f_reverse(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    if (v->k == TV_STR) {
        pv_tpl_val mone = pv_tpl_int(-1);
        return do_slice(r, v, NULL, NULL, &mone);
    }
    pv_tpl_list *l = iter_list(r, v);
    pv_tpl_val out = pv_tpl_new_list(r, l->n);
    for (size_t i = l->n; i > 0; i--) pv_tpl_list_push(r, out.u.l, l->v[i - 1]);
    return out;
}
static pv_tpl_val f_sum(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_list *l = iter_list(r, v);
    const pv_tpl_val *attr = arg(a, -1, "attribute"), *start = arg(a, 1, "start");
    pv_tpl_val acc = start ? *start : pv_tpl_int(0);
    for (size_t i = 0; i < l->n; i++) {
        pv_tpl_val x = attr ? attr_path(r, &l->v[i], attr) : l->v[i];
        acc = binop(r, OP_ADD, &acc, &x);
    }
    return acc;
}
static pv_tpl_val minmax(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, bool max) {
    pv_tpl_list *l = iter_list(r, v);
    const pv_tpl_val *cs = arg(a, 0, "case_sensitive"), *attr = arg(a, 1, "attribute");
    if (!l->n) return pv_tpl_undef("No aggregated item, sequence was empty.");
    size_t best = 0;
    pv_tpl_val bk = {0};
    for (size_t i = 0; i < l->n; i++) {
        pv_tpl_val k = attr ? attr_path(r, &l->v[i], attr) : l->v[i];
        if (!(cs && pv_tpl_truthy(cs)) && k.k == TV_STR) k = u8_map(r, &k, 1);
        if (i == 0 || (max ? pv_tpl_cmp(r, &k, &bk) > 0 : pv_tpl_cmp(r, &k, &bk) < 0)) {
            best = i;
            bk = k;
        }
    }
    return l->v[best];
}
static pv_tpl_val f_max(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) { (void)f; return minmax(r, v, a, true); }
static pv_tpl_val f_min(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) { (void)f; return minmax(r, v, a, false); }

static pv_tpl_val f_indent(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    const pv_tpl_val *w = arg(a, 0, "width"), *first = arg(a, 1, "first"), *blank = arg(a, 2, "blank");
    pv_tpl_val ind;
    if (w && w->k == TV_STR) ind = *w;
    else {
        int64_t n = w ? (w->k == TV_INT ? w->u.i : 4) : 4;
        if (n < 0) n = 0;
        if (n > 4096) FAIL(r, "indent width too large");
        char *sp = pv_tpl_alloc(r, (size_t)n + 1);
        memset(sp, ' ', (size_t)n);
        ind = pv_tpl_str(sp, (size_t)n);
    }
    bool do_first = first && pv_tpl_truthy(first), do_blank = blank && pv_tpl_truthy(blank);
    /* jinja2 do_indent: lines = (s + "\n").splitlines(); blank: join with "\n" + indent;
     * else indent every line after the first that is not empty; first: prefix the result */
    pv_tpl_sb b = {0};
    if (do_first) pv_tpl_sb_put(r, &b, ind.u.s, ind.n);
    size_t i = 0;
    bool firstline = true;
    for (;;) {
        const char *nl = memchr(s.u.s + i, '\n', s.n - i);
        size_t e = nl ? (size_t)(nl - s.u.s) : s.n;
        if (!firstline) {
            pv_tpl_sb_puts(r, &b, "\n");
            if (do_blank || e > i) pv_tpl_sb_put(r, &b, ind.u.s, ind.n);
        }
        pv_tpl_sb_put(r, &b, s.u.s + i, e - i);
        firstline = false;
        if (!nl) break;
        i = e + 1; /* s ends with "\n": the line after it is the empty one splitlines keeps */
    }
    return pv_tpl_sb_value(&b);
}

static pv_tpl_val printf_format(pv_tpl_rt *r, const pv_tpl_val *fmt, const argv_t *a) {
    /* printf-style: %s %d %i %f %r %% */
    pv_tpl_val s = *fmt;
    pv_tpl_sb b = {0};
    int ai = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.u.s[i];
        if (c != '%' || i + 1 >= s.n) {
            pv_tpl_sb_put(r, &b, &c, 1);
            continue;
        }
        char spec = s.u.s[++i];
        if (spec == '%') {
            pv_tpl_sb_puts(r, &b, "%");
            continue;
        }
        const pv_tpl_val *x = arg(a, ai++, NULL);
        if (!x) FAIL(r, "not enough arguments for format string");
        char num[64];
        switch (spec) {
        case 's': pv_tpl_to_str(r, &b, x); break;
        case 'r': pv_tpl_repr(r, &b, x, 0); break;
        case 'd': case 'i':
            if (!isnum(x)) FAIL(r, "%%%c format: a real number is required, not %s", spec, pv_tpl_type_name(x));
            snprintf(num, sizeof num, "%lld", x->k == TV_FLOAT ? (long long)x->u.f : (long long)ival(x));
            pv_tpl_sb_puts(r, &b, num);
            break;
        case 'f':
            if (!isnum(x)) FAIL(r, "must be real number, not %s", pv_tpl_type_name(x));
            snprintf(num, sizeof num, "%f", fval(x));
            pv_tpl_sb_puts(r, &b, num);
            break;
        default: FAIL(r, "unsupported format character '%c'", spec);
        }
    }
    if (ai < a->n) FAIL(r, "not all arguments converted during string formatting");
    return pv_tpl_sb_value(&b);
}

static pv_tpl_val f_format(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    return printf_format(r, &s, a);
}

static pv_tpl_val f_wordcount(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    (void)a; (void)f;
    pv_tpl_val s = pv_tpl_str_of(r, v);
    int64_t n = 0;
    bool in = false;
    for (size_t i = 0; i < s.n; i++) {
        bool w = isalnum((unsigned char)s.u.s[i]) || s.u.s[i] == '_' || (unsigned char)s.u.s[i] >= 0x80;
        if (w && !in) n++;
        in = w;
    }
    return pv_tpl_int(n);
}

static const struct {
    const char *name;
    filter_fn fn;
} filters[] = {
    {"tojson", f_tojson},       {"trim", f_trim},           {"length", f_length},
    {"count", f_length},        {"upper", f_upper},         {"lower", f_lower},
    {"title", f_title},         {"capitalize", f_capitalize}, {"replace", f_replace},
    {"join", f_join},           {"default", f_default},     {"d", f_default},
    {"first", f_first},         {"last", f_last},           {"list", f_list},
    {"items", f_items},         {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
    {"select", f_select},       {"reject", f_reject},       {"map", f_map},
    {"string", f_string},       {"int", f_int},             {"float", f_float},
    {"round", f_round},         {"safe", f_safe},           {"abs", f_abs},
    {"unique", f_unique},       {"dictsort", f_dictsort},   {"sort", f_sort},
    {"reverse", f_reverse},     {"sum", f_sum},             {"max", f_max},
    {"min", f_min},             {"indent", f_indent},       {"format", f_format},
    {"wordcount", f_wordcount},
};

static pv_tpl_val apply_filter(pv_tpl_rt *r, const char *name, const pv_tpl_val *v, const argv_t *a, pv_tpl_frame *f) {
    tick(r);
    for (size_t i = 0; i < PV_ARRAY_LEN(filters); i++)
        if (!strcmp(filters[i].name, name)) {
            /* filters that stringify accept Undefined as ""; the rest see it as it is */
            return filters[i].fn(r, v, a, f);
        }
    FAIL(r, "No filter named '%s'.", name);
}

/* ---- tests ---- */
static bool t_cmp_arg(pv_tpl_rt *r, const pv_tpl_val *v, const argv_t *a, int op) {
    const pv_tpl_val *o = arg(a, 0, NULL);
    if (!o) FAIL(r, "test needs an argument");
    return compare(r, op, v, o);
}

static bool apply_test(pv_tpl_rt *r, const char *name, const pv_tpl_val *v, const argv_t *a) {
    tick(r);
    static const struct { const char *name; int op; } cmp_tests[] = {
        {"eq", OP_EQ}, {"equalto", OP_EQ}, {"==", OP_EQ}, {"ne", OP_NE}, {"!=", OP_NE},
        {"lt", OP_LT}, {"lessthan", OP_LT}, {"<", OP_LT}, {"le", OP_LE}, {"<=", OP_LE},
        {"gt", OP_GT}, {"greaterthan", OP_GT}, {">", OP_GT}, {"ge", OP_GE}, {">=", OP_GE},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(cmp_tests); i++)
        if (!strcmp(name, cmp_tests[i].name)) return t_cmp_arg(r, v, a, cmp_tests[i].op);
    if (!strcmp(name, "defined")) return v->k != TV_UNDEF;
    if (!strcmp(name, "undefined")) return v->k == TV_UNDEF;
    if (!strcmp(name, "none")) return v->k == TV_NONE;
    if (!strcmp(name, "string")) return v->k == TV_STR;
    if (!strcmp(name, "mapping")) return v->k == TV_DICT;
    if (!strcmp(name, "iterable")) return v->k == TV_STR || v->k == TV_LIST || v->k == TV_DICT || v->k == TV_UNDEF;
    if (!strcmp(name, "sequence")) return v->k == TV_STR || v->k == TV_LIST || v->k == TV_DICT || v->k == TV_UNDEF;
    if (!strcmp(name, "number")) return isnum(v);
    if (!strcmp(name, "integer")) return v->k == TV_INT;
    if (!strcmp(name, "float")) return v->k == TV_FLOAT;
    if (!strcmp(name, "boolean")) return v->k == TV_BOOL;
    if (!strcmp(name, "true")) return v->k == TV_BOOL && v->u.b;
    if (!strcmp(name, "false")) return v->k == TV_BOOL && !v->u.b;
    if (!strcmp(name, "callable")) return v->k == TV_MACRO || v->k == TV_FUNC || v->k == TV_METHOD;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (v->k != TV_INT && v->k != TV_BOOL) FAIL(r, "not all arguments converted during string formatting");
        int64_t m = ival(v) % 2;
        return (name[0] == 'o') == (m != 0);
    }
    if (!strcmp(name, "divisibleby")) {
        const pv_tpl_val *d = arg(a, 0, NULL);
        if (!d || !isnum(d) || !isnum(v)) FAIL(r, "divisibleby needs numbers");
        pv_tpl_val m = binop(r, OP_MOD, v, d);
        return !pv_tpl_truthy(&m);
    }
    if (!strcmp(name, "in")) {
        const pv_tpl_val *s = arg(a, 0, NULL);
        if (!s) FAIL(r, "test 'in' needs an argument");
        return contains(r, v, s);
    }
    if (!strcmp(name, "sameas")) {
        const pv_tpl_val *o = arg(a, 0, NULL);
        if (!o) FAIL(r, "test 'sameas' needs an argument");
        if (v->k != o->k) return false;
        if (v->k == TV_NONE || v->k == TV_BOOL) return pv_tpl_eq(v, o);
        return v->k == TV_LIST ? v->u.l == o->u.l : v->k == TV_DICT ? v->u.d == o->u.d : pv_tpl_eq(v, o);
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v->k != TV_STR) return false;
        pv_tpl_val m = u8_map(r, v, name[0] == 'l' ? 1 : 0);
        return pv_tpl_eq(&m, v);
    }
    FAIL(r, "No test named '%s'.", name);
}

/* ---- statements ---- */
enum { CTL_NONE = 0, CTL_BREAK, CTL_CONTINUE };

static void assign_targets(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_stmt *s, const pv_tpl_val *v) {
    if (s->nnames == 1) {
        frame_set(r, f, s->names[0], *v);
        return;
    }
    pv_tpl_list *l;
    if (v->k == TV_LIST) l = v->u.l;
    else if (v->k == TV_STR || v->k == TV_DICT) l = iter_list(r, v);
    else FAIL(r, "cannot unpack non-iterable %s object", pv_tpl_type_name(v));
    if (l->n > (size_t)s->nnames) FAIL(r, "too many values to unpack (expected %d)", s->nnames);
    if (l->n < (size_t)s->nnames) FAIL(r, "not enough values to unpack (expected %d, got %zu)", s->nnames, l->n);
    for (int i = 0; i < s->nnames; i++) frame_set(r, f, s->names[i], l->v[i]);
}

static int exec_for(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_stmt *s, pv_tpl_sb *out) {
    pv_tpl_val it = eval(r, f, s->e);
    r->line = s->line;
    r->col = s->col;
    pv_tpl_list *items = iter_list(r, &it);
    if (s->cond) {
        pv_tpl_val kept = pv_tpl_new_list(r, 0);
        pv_tpl_frame *cf = new_frame(r, f);
        for (size_t i = 0; i < items->n; i++) {
            tick(r);
            cf->vars.n = 0;
            assign_targets(r, cf, s, &items->v[i]);
            pv_tpl_val c = eval(r, cf, s->cond);
            if (pv_tpl_truthy(&c)) pv_tpl_list_push(r, kept.u.l, items->v[i]);
        }
        items = kept.u.l;
    }
    if (items->n == 0) return s->else_body ? exec_body(r, f, s->else_body, out) : CTL_NONE;
    /* iterate over a snapshot: the body cannot change the sequence (immutable sandbox) */
    loop_state *st = pv_tpl_alloc(r, sizeof *st);
    st->items = items;
    pv_tpl_val loopv = {.k = TV_LOOP, .aux = st};
    size_t n = items->n;
    /* one frame for all iterations, emptied each time (each iteration is a fresh scope);
     * reusing it keeps a long loop's memory constant */
    pv_tpl_frame *bf = new_frame(r, f);
    for (size_t i = 0; i < n; i++) {
        tick(r);
        st->index0 = i;
        bf->vars.n = 0;
        frame_set(r, bf, "loop", loopv);
        r->line = s->line;
        r->col = s->col;
        assign_targets(r, bf, s, &items->v[i]);
        int ctl = exec_body(r, bf, s->body, out);
        if (ctl == CTL_BREAK) break;
    }
    return CTL_NONE;
}

static int exec_body(pv_tpl_rt *r, pv_tpl_frame *f, const pv_tpl_stmt *s, pv_tpl_sb *out) {
    for (; s; s = s->next) {
        tick(r);
        r->line = s->line;
        r->col = s->col;
        switch (s->kind) {
        case S_TEXT: pv_tpl_sb_put(r, out, s->text, s->len); break;
        case S_OUTPUT: {
            pv_tpl_val v = eval(r, f, s->e);
            pv_tpl_to_str(r, out, &v);
            break;
        }
        case S_IF: {
            pv_tpl_val c = eval(r, f, s->e);
            const pv_tpl_stmt *b = pv_tpl_truthy(&c) ? s->body : s->else_body;
            int ctl = exec_body(r, f, b, out);
            if (ctl) return ctl;
            break;
        }
        case S_FOR: {
            int ctl = exec_for(r, f, s, out);
            if (ctl) return ctl;
            break;
        }
        case S_SET: {
            pv_tpl_val v = eval(r, f, s->e);
            r->line = s->line;
            r->col = s->col;
            if (s->attr) {
                pv_tpl_val ns = lookup(r, f, s->names[0]);
                if (ns.k != TV_NS) FAIL(r, "cannot assign attribute on non-namespace object");
                pv_tpl_dict_set(r, ns.u.d, pv_tpl_str(s->attr, strlen(s->attr)), v);
            } else {
                assign_targets(r, f, s, &v);
            }
            break;
        }
        case S_SETBLOCK: {
            pv_tpl_sb b = {0};
            exec_body(r, f, s->body, &b);
            frame_set(r, f, s->names[0], pv_tpl_sb_value(&b));
            break;
        }
        case S_MACRO: {
            pv_tpl_val m = {.k = TV_MACRO, .aux = f};
            m.u.macro = s;
            frame_set(r, f, s->name, m);
            break;
        }
        case S_BREAK: return CTL_BREAK;
        case S_CONTINUE: return CTL_CONTINUE;
        case S_BODY: {
            int ctl = exec_body(r, f, s->body, out);
            if (ctl) return ctl;
            break;
        }
        case S_FILTERBLOCK: {
            pv_tpl_sb b = {0};
            exec_body(r, f, s->body, &b);
            pv_tpl_val body = pv_tpl_sb_value(&b);
            argv_t a = eval_args(r, f, s->e, NULL);
            pv_tpl_val v = apply_filter(r, s->e->name, &body, &a, f);
            pv_tpl_to_str(r, out, &v);
            break;
        }
        case S_CALLBLOCK: {
            pv_tpl_val caller = {.k = TV_MACRO, .aux = f};
            caller.u.macro = s;
            pv_tpl_val fn = eval(r, f, s->e->a);
            argv_t a = eval_args(r, f, s->e, NULL);
            if (fn.k != TV_MACRO) FAIL(r, "call block needs a macro");
            pv_tpl_val v = call_value(r, &fn, &a, &caller);
            pv_tpl_to_str(r, out, &v);
            break;
        }
        }
    }
    return CTL_NONE;
}

/* ---- public API ---- */
pv_status pv_template_parse(const char *src, size_t len, pv_template **out, pv_error *err) {
    *out = NULL;
    if (!src && len) return pv_error_set(err, PV_ERR_INVALID, "template: NULL source");
    pv_template *t = calloc(1, sizeof *t);
    if (!t) return pv_error_set(err, PV_ERR_NOMEM, "template: out of memory");
    t->arena.cap = PV_TEMPLATE_MAX_MEMORY;
    pv_status st = pv_tpl_parse_source(t, src ? src : "", len, err);
    if (st != PV_OK) {
        pv_template_free(t);
        return st;
    }
    *out = t;
    return PV_OK;
}

void pv_template_free(pv_template *t) {
    if (!t) return;
    pv_tpl_arena_free(&t->arena);
    free(t);
}

pv_status pv_template_render(const pv_template *t, const json_t *ctx, char **out, size_t *out_len,
                             pv_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!t) return pv_error_set(err, PV_ERR_INVALID, "template: NULL template");
    if (ctx && !json_is_object(ctx))
        return pv_error_set(err, PV_ERR_INVALID, "template: the context must be a JSON object");
    pv_error local;
    pv_tpl_rt *r = calloc(1, sizeof *r);
    if (!r) return pv_error_set(err, PV_ERR_NOMEM, "template: out of memory");
    r->arena.cap = PV_TEMPLATE_MAX_MEMORY;
    r->err = err ? err : &local;
    r->line = r->col = 1;
    volatile pv_status st = PV_OK;
    if (setjmp(r->jb) == 0) {
        /* a fresh local, not the parameter: nothing assigned after setjmp may live in a
         * register that longjmp would restore (-Wclobbered) */
        json_t *empty = ctx ? NULL : json_object();
        r->globals = pv_tpl_from_json(r, ctx ? ctx : empty, 0);
        json_decref(empty); /* an empty object holds no strings the values point into */
        pv_tpl_frame *root = new_frame(r, NULL);
        pv_tpl_sb sb = {0};
        exec_body(r, root, t->root, &sb);
        char *res = malloc(sb.n + 1);
        if (!res) {
            st = pv_error_set(err, PV_ERR_NOMEM, "template: out of memory");
        } else {
            if (sb.n) memcpy(res, sb.p, sb.n);
            res[sb.n] = 0;
            *out = res;
            if (out_len) *out_len = sb.n;
        }
    } else {
        st = r->status;
    }
    pv_tpl_arena_free(&r->arena);
    free(r);
    return st;
}
