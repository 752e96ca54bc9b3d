/* gbnf.c — the GBNF compiler: a recursive-descent parser for llama.cpp's grammar syntax that
 * emits the flat element layout of pv_grammar_int.h directly. Groups and repetitions become
 * generated rules (x* -> S ::= x S | "", x{m,n} -> m copies of x then a chain of n-m nested
 * optionals, so repetition is unambiguous and right-recursive: the matcher's stacks do not
 * grow with the count). After parsing it checks that every referenced rule is defined and
 * that no rule is left-recursive (also through nullable prefixes), then computes the fewest
 * bytes each rule and each alternative suffix needs (for the shortest-completion mask).
 * Every error carries the line and column of the offending text. Sizes are capped so random
 * input cannot make it allocate without bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_grammar_int.h"

#define GBNF_MAX_REPEAT 100000u
#define GBNF_MAX_ELEMENTS (8u << 20)
#define GBNF_MAX_RULES (1u << 20)
#define GBNF_MAX_DEPTH 256 /* nesting of groups */

typedef struct {
    pv_gel *v;
    size_t n, cap;
} elvec;

typedef struct {
    char *name;
    elvec body;
    bool defined;
    size_t def_pos;   /* where defined (or generated) */
    size_t first_use; /* where first referenced (SIZE_MAX: never) */
} prule;

typedef struct {
    const char *src;
    size_t len, pos;
    prule *rules;
    size_t n_rules, cap_rules;
    uint32_t *ranges; /* lo,hi pairs */
    size_t n_ranges, cap_ranges;
    pv_gcharset *cs;
    size_t n_cs, cap_cs;
    size_t total_el;
    uint32_t *name_ht; /* open addressing over named rules: id+1, 0 empty */
    size_t name_ht_cap, n_named;
    int depth;
    pv_error *err;
    pv_status st;
} gparser;

/* ---- errors with line/column ---- */
static void pos_line_col(const gparser *p, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static bool perr_at(gparser *p, pv_status st, size_t pos, const char *msg, const char *arg) {
    if (p->st != PV_OK) return false;
    int line, col;
    pos_line_col(p, pos, &line, &col);
    p->st = pv_error_set(p->err, st, "grammar: line %d, column %d: %s%s%s%s", line, col, msg,
                         arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return false;
}

static bool perr(gparser *p, const char *msg) {
    return perr_at(p, PV_ERR_FORMAT, p->pos, msg, NULL);
}

static bool oom(gparser *p) {
    if (p->st == PV_OK) p->st = pv_error_set(p->err, PV_ERR_NOMEM, "grammar: out of memory");
    return false;
}

/* ---- growable arrays ---- */
static bool grow(void **ptr, size_t *cap, size_t need, size_t elsize) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*ptr, nc * elsize);
    if (!q) return false;
    *ptr = q;
    *cap = nc;
    return true;
}

static bool el_push(gparser *p, elvec *v, uint32_t type, uint32_t val) {
    if (++p->total_el > GBNF_MAX_ELEMENTS) return perr(p, "grammar too large");
    if (!grow((void **)&v->v, &v->cap, v->n + 1, sizeof(pv_gel))) return oom(p);
    v->v[v->n].type = type;
    v->v[v->n].val = val;
    v->n++;
    return true;
}

static uint32_t name_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void name_ht_insert(uint32_t *ht, size_t cap, const char *name, uint32_t id) {
    size_t h = name_hash(name, strlen(name)) & (cap - 1);
    while (ht[h]) h = (h + 1) & (cap - 1);
    ht[h] = id + 1;
}

/* Returns the id of named rule `name` (len bytes), creating an undefined entry when new;
 * -1 on failure. Generated rules never go through here (they are not named in the text). */
static long rule_lookup(gparser *p, const char *name, size_t len) {
    if (p->name_ht_cap) {
        size_t h = name_hash(name, len) & (p->name_ht_cap - 1);
        for (; p->name_ht[h]; h = (h + 1) & (p->name_ht_cap - 1)) {
            const char *rn = p->rules[p->name_ht[h] - 1].name;
            if (strncmp(rn, name, len) == 0 && rn[len] == 0) return (long)(p->name_ht[h] - 1);
        }
    }
    if (p->n_rules >= GBNF_MAX_RULES) return perr(p, "too many rules"), -1;
    if (!grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof(prule))) return oom(p), -1;
    if ((p->n_named + 1) * 2 > p->name_ht_cap) { /* keep the table at most half full */
        size_t nc = p->name_ht_cap ? p->name_ht_cap * 2 : 64;
        uint32_t *ht = calloc(nc, sizeof(uint32_t));
        if (!ht) return oom(p), -1;
        for (size_t i = 0; i < p->name_ht_cap; i++)
            if (p->name_ht[i]) name_ht_insert(ht, nc, p->rules[p->name_ht[i] - 1].name, p->name_ht[i] - 1);
        free(p->name_ht);
        p->name_ht = ht;
        p->name_ht_cap = nc;
    }
    prule *r = &p->rules[p->n_rules];
    memset(r, 0, sizeof(*r));
    r->name = strndup(name, len);
    if (!r->name) return oom(p), -1;
    r->first_use = SIZE_MAX;
    name_ht_insert(p->name_ht, p->name_ht_cap, r->name, (uint32_t)p->n_rules);
    p->n_named++;
    return (long)p->n_rules++;
}

/* A new generated rule named after `base` with body taken over from *body. */
static long rule_generate(gparser *p, uint32_t base, elvec *body, size_t at) {
    if (p->n_rules >= GBNF_MAX_RULES) return perr(p, "too many rules"), -1;
    if (!grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof(prule))) return oom(p), -1;
    char buf[256];
    snprintf(buf, sizeof buf, "%.200s_%zu", p->rules[base].name, p->n_rules);
    prule *r = &p->rules[p->n_rules];
    memset(r, 0, sizeof(*r));
    r->name = strdup(buf);
    if (!r->name) return oom(p), -1;
    r->body = *body;
    memset(body, 0, sizeof(*body));
    r->defined = true;
    r->def_pos = at;
    r->first_use = at;
    return (long)p->n_rules++;
}

/* ---- character sets ---- */
static int cmp_range(const void *a, const void *b) {
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
}

static uint32_t utf8_len_of(uint32_t cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Normalizes n raw (lo,hi) pairs (sorted, merged, complemented when negated) into a new
 * charset; returns its id or -1. */
static long charset_add(gparser *p, uint32_t *raw, size_t n, bool negate) {
    qsort(raw, n, 2 * sizeof(uint32_t), cmp_range);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && raw[2 * i] <= raw[2 * (m - 1) + 1] + 1) {
            if (raw[2 * i + 1] > raw[2 * (m - 1) + 1]) raw[2 * (m - 1) + 1] = raw[2 * i + 1];
        } else {
            raw[2 * m] = raw[2 * i];
            raw[2 * m + 1] = raw[2 * i + 1];
            m++;
        }
    }
    size_t need = p->n_ranges + 2 * (m + 1);
    if (!grow((void **)&p->ranges, &p->cap_ranges, need, sizeof(uint32_t))) return oom(p), -1;
    if (!grow((void **)&p->cs, &p->cap_cs, p->n_cs + 1, sizeof(pv_gcharset))) return oom(p), -1;
    pv_gcharset *c = &p->cs[p->n_cs];
    memset(c, 0, sizeof(*c));
    c->off = (uint32_t)(p->n_ranges / 2);
    uint32_t *out = p->ranges + p->n_ranges;
    size_t k = 0;
    if (!negate) {
        memcpy(out, raw, 2 * m * sizeof(uint32_t));
        k = m;
    } else {
        uint32_t next = 0;
        for (size_t i = 0; i < m; i++) {
            if (raw[2 * i] > next) {
                out[2 * k] = next;
                out[2 * k + 1] = raw[2 * i] - 1;
                k++;
            }
            next = raw[2 * i + 1] + 1;
        }
        if (next <= 0x10FFFF) {
            out[2 * k] = next;
            out[2 * k + 1] = 0x10FFFF;
            k++;
        }
    }
    c->n = (uint32_t)k;
    p->n_ranges += 2 * k;
    for (size_t i = 0; i < k; i++)
        for (uint32_t cp = out[2 * i]; cp <= out[2 * i + 1] && cp < 128; cp++)
            c->ascii[cp >> 6] |= (uint64_t)1 << (cp & 63);
    c->min_bytes = k ? utf8_len_of(out[0]) : 0;
    return (long)p->n_cs++;
}

static bool push_char(gparser *p, elvec *out, uint32_t cp) {
    uint32_t r[2] = {cp, cp};
    long id = charset_add(p, r, 1, false);
    return id >= 0 && el_push(p, out, PV_GEL_CHARSET, (uint32_t)id);
}

/* ---- lexing ---- */
static int peek(const gparser *p) {
    return p->pos < p->len ? (unsigned char)p->src[p->pos] : -1;
}

static bool is_name_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* Skips blanks and comments; newlines too when newline_ok (inside groups, after ::= or |). */
static void skip_space(gparser *p, bool newline_ok) {
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        if (c == ' ' || c == '\t') {
            p->pos++;
        } else if (c == '#') {
            while (p->pos < p->len && p->src[p->pos] != '\n') p->pos++;
        } else if (newline_ok && (c == '\n' || c == '\r')) {
            p->pos++;
        } else {
            break;
        }
    }
}

/* Decodes one UTF-8 code point of the source; false (error set) on invalid UTF-8. */
static bool src_utf8(gparser *p, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)p->src + p->pos;
    size_t left = p->len - p->pos;
    uint32_t c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || (size_t)n > left) return perr(p, "invalid UTF-8");
    if (n > 1) c &= 0x3F >> (n - 1);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return perr(p, "invalid UTF-8");
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return perr(p, "invalid UTF-8");
    p->pos += (size_t)n;
    *cp = c;
    return true;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class: an escape or a UTF-8 code point. */
static bool parse_char(gparser *p, uint32_t *cp) {
    if (p->pos >= p->len) return perr(p, "unexpected end of input");
    if (p->src[p->pos] != '\\') return src_utf8(p, cp);
    size_t at = p->pos;
    p->pos++;
    int e = peek(p);
    if (e < 0) return perr(p, "unexpected end of input in escape");
    p->pos++;
    static const struct { char esc; uint32_t cp; } simple[] = {
        {'n', '\n'}, {'r', '\r'}, {'t', '\t'}, {'\\', '\\'}, {'"', '"'},
        {'[', '['},  {']', ']'},  {'-', '-'},  {'/', '/'},   {'^', '^'}};
    for (size_t i = 0; i < PV_ARRAY_LEN(simple); i++)
        if (simple[i].esc == e) {
            *cp = simple[i].cp;
            return true;
        }
    int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (!digits) return perr_at(p, PV_ERR_FORMAT, at, "unknown escape", NULL);
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        int h = hexval(peek(p));
        if (h < 0) return perr(p, "expected a hex digit");
        v = (v << 4) | (uint32_t)h;
        p->pos++;
    }
    if (v > 0x10FFFF) return perr_at(p, PV_ERR_FORMAT, at, "code point above U+10FFFF", NULL);
    *cp = v;
    return true;
}

static bool parse_alternates(gparser *p, uint32_t rule, elvec *out, bool nested);

static bool parse_literal(gparser *p, elvec *out) {
    size_t at = p->pos;
    p->pos++; /* opening quote */
    while (p->st == PV_OK) {
        int c = peek(p);
        if (c < 0 || c == '\n') return perr_at(p, PV_ERR_FORMAT, at, "unterminated literal", NULL);
        if (c == '"') {
            p->pos++;
            return true;
        }
        uint32_t cp;
        if (!parse_char(p, &cp) || !push_char(p, out, cp)) return false;
    }
    return false;
}

static bool parse_class(gparser *p, elvec *out) {
    size_t at = p->pos;
    p->pos++;
    bool negate = false;
    if (peek(p) == '^') {
        negate = true;
        p->pos++;
    }
    uint32_t *raw = NULL;
    size_t n = 0, cap = 0;
    bool ok = false;
    while (p->st == PV_OK) {
        int c = peek(p);
        if (c < 0 || c == '\n') {
            perr_at(p, PV_ERR_FORMAT, at, "unterminated character class", NULL);
            break;
        }
        if (c == ']') {
            p->pos++;
            long id = charset_add(p, raw ? raw : (uint32_t[2]){0, 0}, n, negate);
            ok = id >= 0 && el_push(p, out, PV_GEL_CHARSET, (uint32_t)id);
            break;
        }
        uint32_t lo, hi;
        if (!parse_char(p, &lo)) break;
        hi = lo;
        if (peek(p) == '-' && p->pos + 1 < p->len && p->src[p->pos + 1] != ']') {
            size_t rat = p->pos;
            p->pos++;
            if (!parse_char(p, &hi)) break;
            if (hi < lo) {
                perr_at(p, PV_ERR_FORMAT, rat, "character range out of order", NULL);
                break;
            }
        }
        if (n >= 65536) {
            perr(p, "character class too long");
            break;
        }
        if (!grow((void **)&raw, &cap, 2 * (n + 1), sizeof(uint32_t))) {
            oom(p);
            break;
        }
        raw[2 * n] = lo;
        raw[2 * n + 1] = hi;
        n++;
    }
    free(raw);
    return ok;
}

static bool parse_uint(gparser *p, uint32_t *v) {
    if (peek(p) < '0' || peek(p) > '9') return perr(p, "expected a number");
    uint64_t x = 0;
    while (peek(p) >= '0' && peek(p) <= '9') {
        x = x * 10 + (uint64_t)(peek(p) - '0');
        if (x > GBNF_MAX_REPEAT) return perr(p, "repetition count too large (max 100000)");
        p->pos++;
    }
    *v = (uint32_t)x;
    return true;
}

/* Replaces out[start..] (the item) by its repetition {min,max} (max UINT32_MAX = no bound). */
static bool apply_repeat(gparser *p, uint32_t rule, elvec *out, size_t start, uint32_t min,
                         uint32_t max, size_t at) {
    size_t ilen = out->n - start;
    elvec item = {0};
    if (ilen) {
        item.v = malloc(ilen * sizeof(pv_gel));
        if (!item.v) return oom(p);
        memcpy(item.v, out->v + start, ilen * sizeof(pv_gel));
        item.n = item.cap = ilen;
    }
    out->n = start;
    bool ok = true;
    for (uint32_t i = 0; i < min && ok; i++)
        for (size_t k = 0; k < ilen && ok; k++) ok = el_push(p, out, item.v[k].type, item.v[k].val);
    if (ok && max == UINT32_MAX) {
        /* S ::= item S | "" */
        elvec body = {0};
        long sid = (long)p->n_rules; /* the id rule_generate will give */
        for (size_t k = 0; k < ilen && ok; k++) ok = el_push(p, &body, item.v[k].type, item.v[k].val);
        ok = ok && el_push(p, &body, PV_GEL_REF, (uint32_t)sid) && el_push(p, &body, PV_GEL_ALT, 0) &&
             el_push(p, &body, PV_GEL_END, 0);
        long got = ok ? rule_generate(p, rule, &body, at) : -1;
        free(body.v);
        ok = got == sid && el_push(p, out, PV_GEL_REF, (uint32_t)sid);
    } else if (ok && max > min) {
        /* R1 ::= item | "";  Rk ::= item R(k-1) | "" */
        long prev = -1;
        for (uint32_t k = 0; k < max - min && ok; k++) {
            elvec body = {0};
            for (size_t j = 0; j < ilen && ok; j++) ok = el_push(p, &body, item.v[j].type, item.v[j].val);
            if (ok && prev >= 0) ok = el_push(p, &body, PV_GEL_REF, (uint32_t)prev);
            ok = ok && el_push(p, &body, PV_GEL_ALT, 0) && el_push(p, &body, PV_GEL_END, 0);
            long got = ok ? rule_generate(p, rule, &body, at) : -1;
            free(body.v);
            ok = got >= 0;
            prev = got;
        }
        ok = ok && el_push(p, out, PV_GEL_REF, (uint32_t)prev);
    }
    free(item.v);
    return ok && p->st == PV_OK;
}

static bool parse_sequence(gparser *p, uint32_t rule, elvec *out, bool nested) {
    size_t last = SIZE_MAX;
    while (p->st == PV_OK) {
        skip_space(p, nested);
        int c = peek(p);
        size_t at = p->pos;
        if (c == '"') {
            last = out->n;
            if (!parse_literal(p, out)) return false;
        } else if (c == '[') {
            last = out->n;
            if (!parse_class(p, out)) return false;
        } else if (c == '.') {
            p->pos++;
            last = out->n;
            uint32_t r[2] = {0, 0x10FFFF};
            long id = charset_add(p, r, 1, false);
            if (id < 0 || !el_push(p, out, PV_GEL_CHARSET, (uint32_t)id)) return false;
        } else if (is_name_char(c)) {
            size_t s = p->pos;
            while (is_name_char(peek(p))) p->pos++;
            long id = rule_lookup(p, p->src + s, p->pos - s);
            if (id < 0) return false;
            if (p->rules[id].first_use == SIZE_MAX) p->rules[id].first_use = s;
            last = out->n;
            if (!el_push(p, out, PV_GEL_REF, (uint32_t)id)) return false;
        } else if (c == '(') {
            if (++p->depth > GBNF_MAX_DEPTH) return perr(p, "groups nested too deeply");
            p->pos++;
            skip_space(p, true);
            elvec body = {0};
            bool ok = parse_alternates(p, rule, &body, true);
            if (ok && peek(p) != ')') ok = perr(p, "expected ')'");
            long id = -1;
            if (ok) {
                p->pos++;
                id = rule_generate(p, rule, &body, at);
            }
            free(body.v);
            p->depth--;
            if (id < 0) return false;
            last = out->n;
            if (!el_push(p, out, PV_GEL_REF, (uint32_t)id)) return false;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last == SIZE_MAX) return perr(p, "repetition operator without an item before it");
            uint32_t min = 0, max = UINT32_MAX;
            p->pos++;
            if (c == '+') {
                min = 1;
            } else if (c == '?') {
                max = 1;
            } else if (c == '{') {
                skip_space(p, false);
                if (!parse_uint(p, &min)) return false;
                skip_space(p, false);
                max = min;
                if (peek(p) == ',') {
                    p->pos++;
                    skip_space(p, false);
                    max = UINT32_MAX;
                    if (peek(p) != '}' && !parse_uint(p, &max)) return false;
                    skip_space(p, false);
                }
                if (peek(p) != '}') return perr(p, "expected '}'");
                p->pos++;
                if (max < min) return perr_at(p, PV_ERR_FORMAT, at, "repetition {m,n} with n < m", NULL);
            }
            if (!apply_repeat(p, rule, out, last, min, max, at)) return false;
        } else {
            break;
        }
    }
    return p->st == PV_OK;
}

/* alternates := sequence ("|" sequence)*; at top level a following line that starts with
 * "|" continues the rule. Appends ALT separators and the final END. */
static bool parse_alternates(gparser *p, uint32_t rule, elvec *out, bool nested) {
    if (!parse_sequence(p, rule, out, nested)) return false;
    for (;;) {
        if (!nested) {
            size_t save = p->pos;
            skip_space(p, true);
            if (peek(p) != '|') p->pos = save;
        }
        if (peek(p) != '|') break;
        p->pos++;
        skip_space(p, true);
        if (!el_push(p, out, PV_GEL_ALT, 0) || !parse_sequence(p, rule, out, nested)) return false;
    }
    return el_push(p, out, PV_GEL_END, 0);
}

static bool parse_rule(gparser *p) {
    size_t at = p->pos;
    if (!is_name_char(peek(p))) return perr(p, "expected a rule name");
    while (is_name_char(peek(p))) p->pos++;
    long id = rule_lookup(p, p->src + at, p->pos - at);
    if (id < 0) return false;
    if (p->rules[id].defined)
        return perr_at(p, PV_ERR_INVALID, at, "rule defined twice:", p->rules[id].name);
    p->rules[id].defined = true;
    p->rules[id].def_pos = at;
    skip_space(p, false);
    if (p->len - p->pos < 3 || memcmp(p->src + p->pos, "::=", 3) != 0) return perr(p, "expected '::='");
    p->pos += 3;
    skip_space(p, true);
    elvec body = {0};
    bool ok = parse_alternates(p, (uint32_t)id, &body, false);
    p->rules[id].body = body; /* owned by the rule even on failure */
    if (!ok) return false;
    skip_space(p, false);
    if (peek(p) == '\r') p->pos++;
    if (peek(p) == '\n') {
        p->pos++;
    } else if (peek(p) >= 0) {
        return perr(p, "expected end of line");
    }
    return true;
}

/* ---- checks and tables over the flattened grammar ---- */

/* Rejects left recursion: edge r -> s when s can be the first thing r derives (after
 * nullable references). Iterative DFS with colours; reports the rule closing a cycle. */
static bool check_left_recursion(gparser *p, pv_grammar *g, const bool *nullable) {
    uint32_t n = g->n_rules;
    uint32_t *eoff = calloc((size_t)n + 1, sizeof(uint32_t));
    uint32_t *edges = NULL;
    size_t ne = 0, cap = 0;
    uint8_t *colour = calloc(n, 1);
    uint32_t *stk = malloc(((size_t)n + 1) * 2 * sizeof(uint32_t));
    bool ok = eoff && colour && stk;
    if (!ok) goto out;
    for (uint32_t r = 0; r < n && ok; r++) {
        eoff[r] = (uint32_t)ne;
        bool at_start = true;
        for (size_t i = g->rule_start[r];; i++) {
            const pv_gel *e = &g->el[i];
            if (e->type == PV_GEL_END) break;
            if (e->type == PV_GEL_ALT) {
                at_start = true;
                continue;
            }
            if (!at_start) continue;
            if (e->type == PV_GEL_REF) {
                if (!grow((void **)&edges, &cap, ne + 1, sizeof(uint32_t))) {
                    ok = false;
                    break;
                }
                edges[ne++] = e->val;
                if (!nullable[e->val]) at_start = false;
            } else {
                at_start = false;
            }
        }
    }
    if (!ok) goto out;
    eoff[n] = (uint32_t)ne;
    for (uint32_t s = 0; s < n && ok; s++) {
        if (colour[s]) continue;
        size_t sp = 0;
        stk[sp * 2] = s;
        stk[sp * 2 + 1] = eoff[s];
        sp++;
        colour[s] = 1;
        while (sp) {
            uint32_t r = stk[(sp - 1) * 2];
            uint32_t k = stk[(sp - 1) * 2 + 1];
            if (k == eoff[r + 1]) {
                colour[r] = 2;
                sp--;
                continue;
            }
            stk[(sp - 1) * 2 + 1] = k + 1;
            uint32_t t = edges[k];
            if (colour[t] == 1) {
                free(eoff);
                free(edges);
                free(colour);
                free(stk);
                /* report at the rule that closes the loop */
                return perr_at(p, PV_ERR_INVALID, p->rules[t].def_pos,
                               "left recursion (a rule can reach itself without consuming "
                               "input) in rule",
                               p->rules[t].name);
            }
            if (colour[t] == 0) {
                colour[t] = 1;
                stk[sp * 2] = t;
                stk[sp * 2 + 1] = eoff[t];
                sp++;
            }
        }
    }
out:
    free(eoff);
    free(edges);
    free(colour);
    free(stk);
    return ok ? true : oom(p);
}

/* Fewest bytes per rule (Knuth's generalization of Dijkstra to grammars: an alternative's
 * cost is known once all rules it references are final; rules become final in increasing
 * cost order), then per-element suffix costs. */
typedef struct {
    uint64_t cost;
    uint32_t rule;
} heap_item;

static void heap_push(heap_item *h, size_t *n, heap_item x) {
    size_t i = (*n)++;
    while (i && h[(i - 1) / 2].cost > x.cost) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static heap_item heap_pop(heap_item *h, size_t *n) {
    heap_item top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].cost < h[c].cost) c++;
        if (h[c].cost >= x.cost) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = x;
    return top;
}

static bool compute_min(gparser *p, pv_grammar *g) {
    uint32_t n = g->n_rules;
    size_t n_el = g->n_el;
    /* alternatives: id per element run; pending ref count and known sum */
    uint32_t *alt_of = malloc(n_el * sizeof(uint32_t)); /* element -> alternative id */
    size_t n_alts = 0;
    for (size_t i = 0; i < n_el; i++) n_alts += pv_gel_is_end(&g->el[i]);
    uint32_t *alt_rule = malloc(n_alts * sizeof(uint32_t));
    uint32_t *pending = calloc(n_alts, sizeof(uint32_t));
    uint64_t *sum = calloc(n_alts, sizeof(uint64_t));
    uint32_t *occ_off = calloc((size_t)n + 2, sizeof(uint32_t));
    size_t n_refs = 0;
    for (size_t i = 0; i < n_el; i++) n_refs += g->el[i].type == PV_GEL_REF;
    uint32_t *occ = malloc((n_refs + 1) * sizeof(uint32_t));
    heap_item *heap = malloc((n_alts + 1) * sizeof(heap_item));
    bool *final = calloc(n, 1);
    g->rule_min = malloc(n * sizeof(uint64_t));
    g->suffix_min = malloc(n_el * sizeof(uint64_t));
    bool ok = alt_of && alt_rule && pending && sum && occ_off && occ && heap && final &&
              g->rule_min && g->suffix_min;
    if (ok) {
        uint32_t a = 0;
        for (uint32_t r = 0; r < n; r++) {
            for (size_t i = g->rule_start[r];; i++) {
                const pv_gel *e = &g->el[i];
                alt_of[i] = a;
                if (pv_gel_is_end(e)) {
                    alt_rule[a++] = r;
                    if (e->type == PV_GEL_END) break;
                    continue;
                }
                if (e->type == PV_GEL_REF) {
                    pending[a]++;
                    occ_off[e->val + 1]++;
                } else {
                    sum[a] = pv_grammar_sat_add(sum[a], g->cs[e->val].n ? g->cs[e->val].min_bytes : PV_GRAMMAR_INF);
                }
            }
        }
        for (uint32_t r = 0; r < n; r++) occ_off[r + 1] += occ_off[r];
        uint32_t *fill = calloc((size_t)n + 1, sizeof(uint32_t));
        ok = fill != NULL;
        for (size_t i = 0; ok && i < n_el; i++)
            if (g->el[i].type == PV_GEL_REF) {
                uint32_t t = g->el[i].val;
                occ[occ_off[t] + fill[t]++] = alt_of[i];
            }
        free(fill);
        size_t hn = 0;
        for (uint32_t k = 0; ok && k < n_alts; k++)
            if (!pending[k] && sum[k] < PV_GRAMMAR_INF) heap_push(heap, &hn, (heap_item){sum[k], alt_rule[k]});
        for (uint32_t r = 0; r < n; r++) g->rule_min[r] = PV_GRAMMAR_INF;
        while (ok && hn) {
            heap_item it = heap_pop(heap, &hn);
            if (final[it.rule]) continue;
            final[it.rule] = true;
            g->rule_min[it.rule] = it.cost;
            for (uint32_t k = occ_off[it.rule]; k < occ_off[it.rule + 1]; k++) {
                uint32_t alt = occ[k];
                sum[alt] = pv_grammar_sat_add(sum[alt], it.cost);
                if (--pending[alt] == 0 && sum[alt] < PV_GRAMMAR_INF)
                    heap_push(heap, &hn, (heap_item){sum[alt], alt_rule[alt]});
            }
        }
        /* suffix costs: walk each alternative backwards */
        for (size_t i = n_el; ok && i-- > 0;) {
            const pv_gel *e = &g->el[i];
            if (pv_gel_is_end(e)) {
                g->suffix_min[i] = 0;
            } else {
                uint64_t c = e->type == PV_GEL_REF ? g->rule_min[e->val]
                             : g->cs[e->val].n ? g->cs[e->val].min_bytes : PV_GRAMMAR_INF;
                g->suffix_min[i] = pv_grammar_sat_add(c, g->suffix_min[i + 1]);
            }
        }
    }
    free(alt_of);
    free(alt_rule);
    free(pending);
    free(sum);
    free(occ_off);
    free(occ);
    free(heap);
    free(final);
    return ok ? true : oom(p);
}

static bool finish(gparser *p, pv_grammar *g, const char *root) {
    for (size_t i = 0; i < p->n_rules; i++)
        if (!p->rules[i].defined)
            return perr_at(p, PV_ERR_NOT_FOUND, p->rules[i].first_use, "undefined rule",
                           p->rules[i].name);
    long root_id = -1;
    for (size_t i = 0; i < p->n_rules; i++)
        if (strcmp(p->rules[i].name, root) == 0) root_id = (long)i;
    if (root_id < 0) {
        if (p->st == PV_OK)
            p->st = pv_error_set(p->err, PV_ERR_NOT_FOUND, "grammar: root rule '%s' is not defined", root);
        return false;
    }
    g->root = (uint32_t)root_id;
    g->n_rules = (uint32_t)p->n_rules;
    g->n_el = p->total_el;
    g->el = malloc((g->n_el ? g->n_el : 1) * sizeof(pv_gel));
    g->rule_start = malloc(p->n_rules * sizeof(uint32_t));
    g->rule_names = calloc(p->n_rules, sizeof(char *));
    if (!g->el || !g->rule_start || !g->rule_names) return oom(p);
    size_t k = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        g->rule_start[i] = (uint32_t)k;
        memcpy(g->el + k, p->rules[i].body.v, p->rules[i].body.n * sizeof(pv_gel));
        k += p->rules[i].body.n;
        g->rule_names[i] = p->rules[i].name;
        p->rules[i].name = NULL;
    }
    g->n_el = k;
    g->cs = p->cs;
    g->n_cs = (uint32_t)p->n_cs;
    g->ranges = p->ranges;
    p->cs = NULL;
    p->ranges = NULL;
    /* nullable: fixpoint (rules become nullable monotonically; n_rules rounds at most, but
     * typically 2-3) */
    bool *nullable = calloc(g->n_rules, 1);
    if (!nullable) return oom(p);
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < g->n_rules; r++) {
            if (nullable[r]) continue;
            bool alt_ok = true;
            for (size_t i = g->rule_start[r];; i++) {
                const pv_gel *e = &g->el[i];
                if (pv_gel_is_end(e)) {
                    if (alt_ok) {
                        nullable[r] = true;
                        changed = true;
                        break;
                    }
                    if (e->type == PV_GEL_END) break;
                    alt_ok = true;
                    continue;
                }
                if (e->type == PV_GEL_CHARSET || !nullable[e->val]) alt_ok = false;
            }
        }
    }
    bool ok = check_left_recursion(p, g, nullable);
    free(nullable);
    return ok && compute_min(p, g);
}

void pv_grammar_free(pv_grammar *g) {
    if (!g) return;
    if (g->rule_names)
        for (uint32_t i = 0; i < g->n_rules; i++) free(g->rule_names[i]);
    free(g->rule_names);
    free(g->el);
    free(g->rule_start);
    free(g->cs);
    free(g->ranges);
    free(g->rule_min);
    free(g->suffix_min);
    free(g);
}

size_t pv_grammar_n_rules(const pv_grammar *g) {
    return g ? g->n_rules : 0;
}

pv_status pv_grammar_compile(const char *gbnf, size_t len, const char *root, pv_grammar **out,
                             pv_error *err) {
    if (!out) return pv_error_set(err, PV_ERR_INVALID, "grammar: NULL output");
    *out = NULL;
    if (!gbnf && len) return pv_error_set(err, PV_ERR_INVALID, "grammar: NULL text");
    gparser p = {.src = gbnf ? gbnf : "", .len = len, .err = err, .st = PV_OK};
    pv_grammar *g = calloc(1, sizeof(*g));
    if (!g) return pv_error_set(err, PV_ERR_NOMEM, "grammar: out of memory");
    skip_space(&p, true);
    while (p.st == PV_OK && p.pos < p.len) {
        if (!parse_rule(&p)) break;
        skip_space(&p, true);
    }
    if (p.st == PV_OK) finish(&p, g, root ? root : "root");
    for (size_t i = 0; i < p.n_rules; i++) {
        free(p.rules[i].name);
        free(p.rules[i].body.v);
    }
    free(p.rules);
    free(p.name_ht);
    free(p.cs);
    free(p.ranges);
    if (p.st != PV_OK) {
        pv_grammar_free(g);
        return p.st;
    }
    *out = g;
    return PV_OK;
}
