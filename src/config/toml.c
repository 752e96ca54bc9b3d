/* toml.c — a strict parser for the subset of TOML 1.0 that pensieve.toml uses, and a writer
 * that emits what the parser reads back (round trips are how the fuzz tests check it).
 * The document is first checked as a whole for valid UTF-8 and for control characters
 * (forbidden everywhere in TOML except tab and the LF / CRLF line ends), so the lexer
 * below can treat the text as clean and a NUL byte as the end. Table redefinition follows
 * the rules Python's tomllib implements (the oracle of the tests): a [header] may name a
 * table only once, and tables made by dotted keys become closed when the next [header]
 * starts. Everything outside the subset is an error "NAME:LINE:COL: message" at the
 * offending character (columns count code points). */
#include "pv_config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { HOW_HEADER = 1 };  /* tab.how bit: a [header] defined this table */
enum { MAX_DEPTH = 128 }; /* nesting of tables + arrays (bounds the recursion) */

typedef struct parser {
    const char *name;
    const char *s;
    size_t n, p;
    int line;
    size_t line_start;
    size_t col_off; /* col_at's memo: column `col` is at offset col_off (on this line) */
    int col;
    uint32_t section; /* number of the current [header] section (1: before any header) */
    pv_error *err;
    pv_toml_value *root;
    pv_toml_value *cur; /* table of the current section */
    int cur_depth;      /* its depth below the root */
} parser;

/* A key part (of a possibly dotted key): owned bytes and the position of its start. */
typedef struct key_part {
    char *s;
    size_t len;
    int line, col;
} key_part;

typedef struct key_path {
    key_part *parts;
    size_t n, cap;
} key_path;

/* ---------------- positions and errors ---------------- */

/* Column (in code points) of offset `off` on the current line. Remembers the last answer,
 * so that a long line of many values costs linear, not quadratic, time. */
static int col_at(parser *P, size_t off) {
    size_t from = P->line_start;
    int col = 1;
    if (P->col_off >= P->line_start && P->col_off <= off) from = P->col_off, col = P->col;
    for (size_t i = from; i < off && i < P->n; i++)
        if (((unsigned char)P->s[i] & 0xC0) != 0x80) col++;
    P->col_off = off, P->col = col;
    return col;
}

static pv_status fail_at(parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static pv_status fail_at(parser *P, int line, int col, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pv_error_set(P->err, PV_ERR_FORMAT, "%s:%d:%d: %s", P->name, line, col, msg);
}

/* fail(P, fmt, ...) reports at the current position. */
#define fail(P, ...) fail_at((P), (P)->line, col_at((P), (P)->p), __VA_ARGS__)

static pv_status nomem(parser *P) { return pv_error_set(P->err, PV_ERR_NOMEM, "%s: out of memory", P->name); }

static int peek(const parser *P) { return P->p < P->n ? (unsigned char)P->s[P->p] : 0; }
static int peek_at(const parser *P, size_t k) { return P->p + k < P->n ? (unsigned char)P->s[P->p + k] : 0; }

/* ---------------- whole-document checks ---------------- */

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if invalid (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static pv_status check_document(parser *P) {
    const unsigned char *s = (const unsigned char *)P->s;
    int line = 1, col = 1;
    for (size_t i = 0; i < P->n;) {
        unsigned c = s[i];
        if (c == '\n') {
            line++, col = 1, i++;
            continue;
        }
        if (c == '\r') {
            if (i + 1 < P->n && s[i + 1] == '\n') {
                i++;
                continue;
            }
            return fail_at(P, line, col, "carriage return not followed by a line feed");
        }
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return fail_at(P, line, col,
                           "control character U+%04X is not allowed (escape it in a basic string)", c);
        size_t len = utf8_seq_len(s + i, P->n - i);
        if (!len) return fail_at(P, line, col, "invalid UTF-8 byte 0x%02X", c);
        i += len, col++;
    }
    return PV_OK;
}

/* ---------------- values ---------------- */

static void value_free(pv_toml_value *v) {
    switch (v->type) {
    case PV_TOML_STRING: free(v->s.ptr); break;
    case PV_TOML_ARRAY:
        for (size_t i = 0; i < v->arr.n; i++)
            value_free(&v->arr.items[i]);
        free(v->arr.items);
        break;
    case PV_TOML_TABLE:
        for (size_t i = 0; i < v->tab.n; i++) {
            free(v->tab.items[i].key);
            value_free(&v->tab.items[i].val);
        }
        free(v->tab.items);
        break;
    default: break;
    }
}

void pv_toml_free(pv_toml_value *root) {
    if (!root) return;
    value_free(root);
    free(root);
}

/* Grows a (items, n, cap) array by one zeroed element; returns it or NULL (no memory). */
static void *grow(void **items, size_t *n, size_t *cap, size_t elem) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        void *ni = pv_calloc_array(nc, elem);
        if (!ni) return NULL;
        if (*n) memcpy(ni, *items, *n * elem);
        free(*items);
        *items = ni, *cap = nc;
    }
    void *e = (char *)*items + (*n)++ * elem;
    memset(e, 0, elem);
    return e;
}

static pv_toml_entry *table_find(const pv_toml_value *t, const char *key, size_t len) {
    for (size_t i = 0; i < t->tab.n; i++)
        if (t->tab.items[i].key_len == len && !memcmp(t->tab.items[i].key, key, len)) return &t->tab.items[i];
    return NULL;
}

const pv_toml_entry *pv_toml_table_get(const pv_toml_value *t, const char *key) {
    if (!t || t->type != PV_TOML_TABLE || !key) return NULL;
    return table_find(t, key, strlen(key));
}

/* Adds key (copied) to table t; the new entry's value is zeroed. Returns NULL on no memory.
 * The pointer is valid until the next insertion into t. */
static pv_toml_entry *table_add(pv_toml_value *t, const key_part *k) {
    char *copy = malloc(k->len + 1);
    if (!copy) return NULL;
    memcpy(copy, k->s, k->len);
    copy[k->len] = '\0';
    pv_toml_entry *e = grow((void **)&t->tab.items, &t->tab.n, &t->tab.cap, sizeof *e);
    if (!e) {
        free(copy);
        return NULL;
    }
    e->key = copy, e->key_len = k->len, e->line = k->line, e->col = k->col;
    return e;
}

/* A key for messages: at most 60 bytes, quoted. */
static const char *key_show(const key_part *k, char buf[72]) {
    snprintf(buf, 72, "'%.*s%s'", (int)PV_MIN(k->len, 60), k->s, k->len > 60 ? "..." : "");
    return buf;
}

/* ---------------- lexing helpers ---------------- */

static void skip_ws(parser *P) {
    while (peek(P) == ' ' || peek(P) == '\t')
        P->p++;
}

static bool at_newline(const parser *P) { return peek(P) == '\n' || peek(P) == '\r'; }

static void eat_newline(parser *P) {
    if (peek(P) == '\r') P->p++; /* the document check guarantees a '\n' follows */
    P->p++;
    P->line++;
    P->line_start = P->p;
}

static void skip_comment(parser *P) {
    if (peek(P) != '#') return;
    while (P->p < P->n && !at_newline(P))
        P->p++;
}

/* Skips whitespace, comments and newlines (inside arrays). */
static void skip_ws_nl(parser *P) {
    for (;;) {
        skip_ws(P);
        skip_comment(P);
        if (!at_newline(P)) return;
        eat_newline(P);
    }
}

static bool is_bare(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A growing byte buffer for string contents. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static bool sbuf_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 32;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return false;
        b->p = np, b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

static size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses a single-line basic ("...") or literal ('...') string at P->p into a new buffer
 * (*out, *len; caller frees). Multi-line forms are outside the subset. */
static pv_status parse_string(parser *P, char **out, size_t *len) {
    int q = peek(P);
    if (peek_at(P, 1) == q && peek_at(P, 2) == q)
        return fail(P, "multi-line strings are not supported (use a single-line string with escapes)");
    int sline = P->line, scol = col_at(P, P->p);
    P->p++;
    sbuf b = {0};
    pv_status st = PV_OK;
    for (;;) {
        int c = peek(P);
        if (c == 0 || at_newline(P)) {
            st = fail_at(P, sline, scol, "unterminated string");
            break;
        }
        if (c == q) {
            P->p++;
            break;
        }
        if (q == '"' && c == '\\') {
            int e = peek_at(P, 1);
            static const char simple_from[] = "btnfr\"\\", simple_to[] = "\b\t\n\f\r\"\\";
            const char *hit = e ? strchr(simple_from, e) : NULL;
            if (hit) {
                if (!sbuf_put(&b, &simple_to[hit - simple_from], 1)) {
                    st = nomem(P);
                    break;
                }
                P->p += 2;
                continue;
            }
            if (e == 'u' || e == 'U') {
                int nd = e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int i = 0; i < nd; i++) {
                    int h = hexval(peek_at(P, 2 + (size_t)i));
                    if (h < 0) {
                        st = fail(P, "\\%c escape needs %d hex digits", e, nd);
                        goto done;
                    }
                    cp = cp * 16 + (uint32_t)h;
                }
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    st = fail(P, "\\%c%0*X is not a Unicode scalar value", e, nd, cp);
                    break;
                }
                char u[4];
                if (!sbuf_put(&b, u, utf8_encode(cp, u))) {
                    st = nomem(P);
                    break;
                }
                P->p += 2 + (size_t)nd;
                continue;
            }
            st = e ? fail(P, "invalid escape sequence '\\%c'", e >= 0x20 && e < 0x7F ? e : '?')
                   : fail(P, "unterminated string");
            break;
        }
        /* copy one whole (already validated) UTF-8 sequence */
        size_t l = utf8_seq_len((const unsigned char *)P->s + P->p, P->n - P->p);
        if (!sbuf_put(&b, P->s + P->p, l)) {
            st = nomem(P);
            break;
        }
        P->p += l;
    }
done:
    if (st != PV_OK) {
        free(b.p);
        return st;
    }
    if (!b.p && !(b.p = calloc(1, 1))) return nomem(P);
    *out = b.p, *len = b.n;
    return PV_OK;
}

/* ---------------- keys ---------------- */

static void path_free(key_path *k) {
    for (size_t i = 0; i < k->n; i++)
        free(k->parts[i].s);
    free(k->parts);
    memset(k, 0, sizeof *k);
}

/* Parses `simple-key ( ws "." ws simple-key )*` at P->p. */
static pv_status parse_key(parser *P, key_path *k) {
    for (;;) {
        key_part part = {.line = P->line, .col = col_at(P, P->p)};
        int c = peek(P);
        if (c == '"' || c == '\'') {
            pv_status st = parse_string(P, &part.s, &part.len);
            if (st != PV_OK) return st;
        } else if (is_bare(c)) {
            size_t b = P->p;
            while (is_bare(peek(P)))
                P->p++;
            part.len = P->p - b;
            if (!(part.s = malloc(part.len + 1))) return nomem(P);
            memcpy(part.s, P->s + b, part.len);
            part.s[part.len] = '\0';
        } else if (c == 0 || at_newline(P)) {
            return fail(P, "expected a key");
        } else {
            return fail(P, "invalid character in key (bare keys use A-Z a-z 0-9 _ -; quote others)");
        }
        key_part *slot = grow((void **)&k->parts, &k->n, &k->cap, sizeof *slot);
        if (!slot) {
            free(part.s);
            return nomem(P);
        }
        *slot = part;
        skip_ws(P);
        if (peek(P) != '.') return PV_OK;
        P->p++;
        skip_ws(P);
    }
}

/* ---------------- scalars ---------------- */

/* Reads the bare token of a non-string scalar (number, boolean, date) at P->p. */
static size_t scan_token(const parser *P) {
    size_t e = P->p;
    while (e < P->n) {
        int c = (unsigned char)P->s[e];
        if (is_bare(c) || c == '+' || c == '.' || c == ':')
            e++;
        else
            break;
    }
    return e - P->p;
}

static bool is_digit_in(int c, int base) {
    int v = hexval(c);
    return v >= 0 && v < base && (base == 16 || (c >= '0' && c <= '9'));
}

/* Checks that t[0..n) is digits of `base` with single underscores only between digits. */
static bool digits_ok(const char *t, size_t n, int base) {
    if (n == 0 || !is_digit_in(t[0], base) || !is_digit_in(t[n - 1], base)) return false;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_') {
            if (!is_digit_in(t[i + 1], base) || !is_digit_in(t[i - 1], base)) return false;
        } else if (!is_digit_in(t[i], base)) {
            return false;
        }
    }
    return true;
}

/* Accumulates the digits of t[0..n) (underscores skipped) into *out with overflow
 * checks; negative values are accumulated downwards so INT64_MIN is reachable. */
static bool int_value(const char *t, size_t n, int base, bool neg, int64_t *out) {
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_') continue;
        int d = hexval(t[i]);
        if (__builtin_mul_overflow(v, (int64_t)base, &v)) return false;
        if (neg ? __builtin_sub_overflow(v, (int64_t)d, &v) : __builtin_add_overflow(v, (int64_t)d, &v))
            return false;
    }
    *out = v;
    return true;
}

/* Parses a number, boolean (or recognises a date to refuse it) from the token at P->p. */
static pv_status parse_bare_value(parser *P, pv_toml_value *v) {
    size_t n = scan_token(P);
    const char *t = P->s + P->p;
    if (n == 0) {
        if (peek(P) == '{') return fail(P, "inline tables are not supported (use a [section])");
        if (peek(P) == 0 || at_newline(P)) return fail(P, "expected a value");
        return fail(P, "invalid value");
    }
    char show[48];
    snprintf(show, sizeof show, "%.*s%s", (int)PV_MIN(n, 32), t, n > 32 ? "..." : "");
    if ((n == 4 && !memcmp(t, "true", 4)) || (n == 5 && !memcmp(t, "false", 5))) {
        v->type = PV_TOML_BOOL;
        v->b = n == 4;
        P->p += n;
        return PV_OK;
    }
    /* dates (1979-05-27...) and times (07:32...) are valid TOML outside this subset */
    bool d4 = n >= 5 && is_digit_in(t[0], 10) && is_digit_in(t[1], 10) && is_digit_in(t[2], 10) &&
              is_digit_in(t[3], 10) && t[4] == '-';
    bool t2 = n >= 3 && is_digit_in(t[0], 10) && is_digit_in(t[1], 10) && t[2] == ':';
    if (d4 || t2) return fail(P, "dates and times are not supported (use a string)");

    size_t i = 0;
    bool neg = false, sign = false;
    if (t[0] == '+' || t[0] == '-') neg = t[0] == '-', sign = true, i = 1;
    if ((n - i == 3 && (!memcmp(t + i, "inf", 3) || !memcmp(t + i, "nan", 3)))) {
        v->type = PV_TOML_FLOAT;
        v->f = t[i] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        P->p += n;
        return PV_OK;
    }
    if (!sign && n > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
        int base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
        if (!digits_ok(t + 2, n - 2, base)) return fail(P, "invalid number '%s'", show);
        v->type = PV_TOML_INT;
        if (!int_value(t + 2, n - 2, base, false, &v->i))
            return fail(P, "integer '%s' does not fit in 64 bits", show);
        P->p += n;
        return PV_OK;
    }
    /* decimal: int-part [ "." digits ] [ (e|E) [+-] digits ] */
    if (i >= n || !is_digit_in(t[i], 10)) return fail(P, "invalid value '%s'", show);
    size_t ib = i;
    while (i < n && (is_digit_in(t[i], 10) || t[i] == '_'))
        i++;
    size_t ie = i;
    if (!digits_ok(t + ib, ie - ib, 10)) return fail(P, "invalid number '%s'", show);
    if (t[ib] == '0' && ie - ib > 1) return fail(P, "leading zeros are not allowed in '%s'", show);
    bool is_float = false;
    if (i < n && t[i] == '.') {
        size_t fb = ++i;
        while (i < n && (is_digit_in(t[i], 10) || t[i] == '_'))
            i++;
        if (!digits_ok(t + fb, i - fb, 10)) return fail(P, "invalid number '%s'", show);
        is_float = true;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-')) i++;
        size_t eb = i;
        while (i < n && (is_digit_in(t[i], 10) || t[i] == '_'))
            i++;
        if (!digits_ok(t + eb, i - eb, 10)) return fail(P, "invalid number '%s'", show);
        is_float = true;
    }
    if (i != n) return fail(P, "invalid value '%s'", show);
    if (!is_float) {
        v->type = PV_TOML_INT;
        if (!int_value(t + ib, ie - ib, 10, neg, &v->i))
            return fail(P, "integer '%s' does not fit in 64 bits", show);
        P->p += n;
        return PV_OK;
    }
    /* strtod on a copy without underscores; the grammar above already checked the form,
     * so strtod consumes all of it (overflow gives ±inf, as TOML readers do). The decimal
     * point is '.' because Pensieve never leaves the C locale (no setlocale call). */
    char *clean = malloc(n + 1);
    if (!clean) return nomem(P);
    size_t cn = 0;
    for (size_t k = 0; k < n; k++)
        if (t[k] != '_') clean[cn++] = t[k];
    clean[cn] = '\0';
    char *end = NULL;
    v->type = PV_TOML_FLOAT;
    v->f = strtod(clean, &end);
    bool whole = end == clean + cn;
    free(clean);
    if (!whole) return fail(P, "invalid number '%s'", show);
    P->p += n;
    return PV_OK;
}

static pv_status parse_value(parser *P, pv_toml_value *v, int depth);

static pv_status parse_array(parser *P, pv_toml_value *v, int depth) {
    v->type = PV_TOML_ARRAY;
    if (depth >= MAX_DEPTH) return fail(P, "arrays nested too deep (more than %d levels)", MAX_DEPTH);
    P->p++; /* '[' */
    for (;;) {
        skip_ws_nl(P);
        if (peek(P) == ']') {
            P->p++;
            return PV_OK;
        }
        if (peek(P) == 0) return fail(P, "unterminated array (expected ']')");
        pv_toml_value *item = grow((void **)&v->arr.items, &v->arr.n, &v->arr.cap, sizeof *item);
        if (!item) return nomem(P);
        pv_status st = parse_value(P, item, depth + 1);
        if (st != PV_OK) return st;
        skip_ws_nl(P);
        if (peek(P) == ',') {
            P->p++;
            continue;
        }
        if (peek(P) == ']') {
            P->p++;
            return PV_OK;
        }
        return peek(P) ? fail(P, "expected ',' or ']' in array")
                       : fail(P, "unterminated array (expected ']')");
    }
}

/* Parses any value at P->p into *v (zeroed by the caller). */
static pv_status parse_value(parser *P, pv_toml_value *v, int depth) {
    v->line = P->line;
    v->col = col_at(P, P->p);
    int c = peek(P);
    if (c == '"' || c == '\'') {
        v->type = PV_TOML_STRING;
        return parse_string(P, &v->s.ptr, &v->s.len);
    }
    if (c == '[') return parse_array(P, v, depth);
    return parse_bare_value(P, v);
}

/* ---------------- tables ---------------- */

/* Whether dotted keys may no longer add to table t (it was defined by a header, or made
 * by dotted keys in an earlier section) — tomllib's EXPLICIT_NEST flag. */
static bool table_closed(const parser *P, const pv_toml_value *t) {
    return (t->tab.how & HOW_HEADER) || (t->tab.dotted_section && t->tab.dotted_section != P->section);
}

/* Walks `k` from the root, creating missing tables, and makes the last one the current
 * section. */
static pv_status define_table(parser *P, const key_path *k, int hline, int hcol) {
    P->section++;
    if (k->n > MAX_DEPTH) return fail_at(P, hline, hcol, "tables nested too deep");
    pv_toml_value *t = P->root;
    char ks[72];
    for (size_t i = 0; i < k->n; i++) {
        const key_part *part = &k->parts[i];
        pv_toml_entry *e = table_find(t, part->s, part->len);
        if (!e) {
            if (!(e = table_add(t, part))) return nomem(P);
            e->val.type = PV_TOML_TABLE;
            e->val.line = hline, e->val.col = hcol;
        } else if (e->val.type != PV_TOML_TABLE) {
            return fail_at(P, part->line, part->col,
                           "key %s is already defined as a value (%s, line %d), not a table",
                           key_show(part, ks), pv_toml_type_name(e->val.type), e->line);
        } else if (i + 1 == k->n && table_closed(P, &e->val)) {
            return fail_at(P, hline, hcol, "table %s is defined twice (first at line %d)", key_show(part, ks),
                           e->val.line);
        }
        t = &e->val;
    }
    t->tab.how |= HOW_HEADER;
    P->cur = t;
    P->cur_depth = (int)k->n;
    return PV_OK;
}

static pv_status parse_header(parser *P) {
    int hline = P->line, hcol = col_at(P, P->p);
    P->p++; /* '[' */
    if (peek(P) == '[') return fail_at(P, hline, hcol, "arrays of tables ([[...]]) are not supported");
    skip_ws(P);
    key_path k = {0};
    pv_status st = parse_key(P, &k);
    if (st == PV_OK) {
        skip_ws(P);
        if (peek(P) != ']')
            st = fail(P, "expected ']' to close the table header");
        else
            P->p++;
    }
    if (st == PV_OK) st = define_table(P, &k, hline, hcol);
    path_free(&k);
    return st;
}

static pv_status parse_keyval(parser *P) {
    key_path k = {0};
    pv_status st = parse_key(P, &k);
    char ks[72];
    if (st != PV_OK) goto out;
    if (peek(P) != '=') {
        st = at_newline(P) || !peek(P)
                 ? fail(P, "expected '=' after the key")
                 : fail(P, "expected '=' after the key (keys with spaces must be quoted)");
        goto out;
    }
    P->p++;
    skip_ws(P);
    if (P->cur_depth + (int)k.n > MAX_DEPTH) {
        st = fail_at(P, k.parts[0].line, k.parts[0].col, "tables nested too deep");
        goto out;
    }
    /* the dotted prefix: tables created or extended in this section */
    pv_toml_value *t = P->cur;
    for (size_t i = 0; i + 1 < k.n; i++) {
        const key_part *part = &k.parts[i];
        pv_toml_entry *e = table_find(t, part->s, part->len);
        if (!e) {
            if (!(e = table_add(t, part))) {
                st = nomem(P);
                goto out;
            }
            e->val.type = PV_TOML_TABLE;
            e->val.line = part->line, e->val.col = part->col;
        } else if (e->val.type != PV_TOML_TABLE) {
            st = fail_at(P, part->line, part->col,
                         "key %s is already defined as a value (%s, line %d), not a table",
                         key_show(part, ks), pv_toml_type_name(e->val.type), e->line);
            goto out;
        } else if (table_closed(P, &e->val)) {
            st = fail_at(P, part->line, part->col,
                         "table %s was defined elsewhere; dotted keys cannot add to it here",
                         key_show(part, ks));
            goto out;
        }
        e->val.tab.dotted_section = P->section;
        t = &e->val;
    }
    const key_part *last = &k.parts[k.n - 1];
    pv_toml_entry *dup = table_find(t, last->s, last->len);
    if (dup) {
        st = fail_at(P, last->line, last->col, "duplicate key %s (first defined at line %d)",
                     key_show(last, ks), dup->line);
        goto out;
    }
    pv_toml_entry *e = table_add(t, last);
    if (!e) {
        st = nomem(P);
        goto out;
    }
    /* parse into a local: the value's own parse cannot insert into t, but keep the entry
     * well-formed (a zeroed value is an empty string) if parsing fails */
    pv_toml_value val = {0};
    st = parse_value(P, &val, P->cur_depth + (int)k.n);
    if (st != PV_OK) {
        value_free(&val);
        e->val.type = PV_TOML_INT;
        goto out;
    }
    e->val = val;
out:
    path_free(&k);
    return st;
}

/* After a header or a key/value: only whitespace and a comment may remain on the line. */
static pv_status end_of_line(parser *P, const char *what) {
    skip_ws(P);
    skip_comment(P);
    if (P->p >= P->n) return PV_OK;
    if (at_newline(P)) {
        eat_newline(P);
        return PV_OK;
    }
    return fail(P, "unexpected text after %s (expected a new line)", what);
}

pv_status pv_toml_parse(const char *name, const char *text, size_t len, pv_toml_value **out, pv_error *err) {
    *out = NULL;
    parser P = {.name = name ? name : "<toml>",
                .s = text,
                .n = text ? len : 0,
                .line = 1,
                .col = 1,
                .section = 1,
                .err = err};
    pv_status st = check_document(&P);
    if (st != PV_OK) return st;
    if (!(P.root = calloc(1, sizeof *P.root))) return nomem(&P);
    P.root->type = PV_TOML_TABLE;
    P.root->line = P.root->col = 1;
    P.cur = P.root;
    while (st == PV_OK) {
        skip_ws(&P);
        int c = peek(&P);
        if (P.p >= P.n) break;
        if (c == '#' || at_newline(&P))
            st = end_of_line(&P, "a comment");
        else if (c == '[') {
            if ((st = parse_header(&P)) == PV_OK) st = end_of_line(&P, "the table header");
        } else {
            if ((st = parse_keyval(&P)) == PV_OK) st = end_of_line(&P, "the value");
        }
    }
    if (st != PV_OK) {
        pv_toml_free(P.root);
        return st;
    }
    *out = P.root;
    return PV_OK;
}

pv_status pv_toml_parse_file(const char *path, pv_toml_value **out, pv_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pv_error_set(err, PV_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    sbuf b = {0};
    char chunk[8192];
    size_t got;
    bool ok = true;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!(ok = sbuf_put(&b, chunk, got))) break;
    bool rerr = ferror(f);
    fclose(f);
    if (!ok) {
        free(b.p);
        return pv_error_set(err, PV_ERR_NOMEM, "%s: out of memory", path);
    }
    if (rerr) {
        free(b.p);
        return pv_error_set(err, PV_ERR_IO, "%s: read error", path);
    }
    pv_status st = pv_toml_parse(path, b.p ? b.p : "", b.n, out, err);
    free(b.p);
    return st;
}

/* ---------------- comparison ---------------- */

bool pv_toml_equal(const pv_toml_value *a, const pv_toml_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case PV_TOML_STRING: return a->s.len == b->s.len && !memcmp(a->s.ptr, b->s.ptr, a->s.len);
    case PV_TOML_INT: return a->i == b->i;
    case PV_TOML_FLOAT:
        if (isnan(a->f) || isnan(b->f)) return isnan(a->f) && isnan(b->f);
        return a->f == b->f && signbit(a->f) == signbit(b->f);
    case PV_TOML_BOOL: return a->b == b->b;
    case PV_TOML_ARRAY:
        if (a->arr.n != b->arr.n) return false;
        for (size_t i = 0; i < a->arr.n; i++)
            if (!pv_toml_equal(&a->arr.items[i], &b->arr.items[i])) return false;
        return true;
    case PV_TOML_TABLE:
        if (a->tab.n != b->tab.n) return false;
        for (size_t i = 0; i < a->tab.n; i++) {
            const pv_toml_entry *ea = &a->tab.items[i];
            const pv_toml_entry *eb = table_find(b, ea->key, ea->key_len);
            if (!eb || !pv_toml_equal(&ea->val, &eb->val)) return false;
        }
        return true;
    }
    return false;
}

const char *pv_toml_type_name(pv_toml_type t) {
    static const char *const names[] = {"string", "integer", "float", "boolean", "array", "table"};
    return (unsigned)t < PV_ARRAY_LEN(names) ? names[t] : "unknown";
}

/* ---------------- writer ---------------- */

/* Writes a TOML basic string: quotes, backslashes and control characters escaped, other
 * (valid UTF-8) bytes as they are. */
static bool write_str(FILE *f, const char *s, size_t n) {
    if (fputc('"', f) == EOF) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int r;
        switch (c) {
        case '"': r = fputs("\\\"", f); break;
        case '\\': r = fputs("\\\\", f); break;
        case '\b': r = fputs("\\b", f); break;
        case '\t': r = fputs("\\t", f); break;
        case '\n': r = fputs("\\n", f); break;
        case '\f': r = fputs("\\f", f); break;
        case '\r': r = fputs("\\r", f); break;
        default: r = (c < 0x20 || c == 0x7F) ? fprintf(f, "\\u%04X", c) : fputc(c, f);
        }
        if (r < 0) return false;
    }
    return fputc('"', f) != EOF;
}

/* Shortest %.{15,16,17}g text that reads back to exactly f, made to look like a TOML float
 * (a "." or exponent is required, else it would read back as an integer). */
static void float_text(double f, char *buf, size_t cap) {
    if (isnan(f)) {
        snprintf(buf, cap, "%s", signbit(f) ? "-nan" : "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, "%s", f < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, f);
        if (strtod(buf, NULL) == f) break;
    }
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", cap - strlen(buf) - 1);
    /* "1e+20" is valid TOML, but %g's "1.5e+20" and "1e-05" are too: nothing more to do */
}

static bool write_value(FILE *f, const pv_toml_value *v) {
    char buf[64];
    switch (v->type) {
    case PV_TOML_STRING: return write_str(f, v->s.ptr, v->s.len);
    case PV_TOML_INT: return fprintf(f, "%lld", (long long)v->i) >= 0;
    case PV_TOML_FLOAT: float_text(v->f, buf, sizeof buf); return fputs(buf, f) >= 0;
    case PV_TOML_BOOL: return fputs(v->b ? "true" : "false", f) >= 0;
    case PV_TOML_ARRAY:
        if (fputc('[', f) == EOF) return false;
        for (size_t i = 0; i < v->arr.n; i++) {
            if (i && fputs(", ", f) < 0) return false;
            if (!write_value(f, &v->arr.items[i])) return false;
        }
        return fputc(']', f) != EOF;
    case PV_TOML_TABLE: return false; /* tables are written as sections */
    }
    return false;
}

/* Writes t's plain keys, then each sub-table under a [path.key] header. path[0..depth)
 * are the entries leading to t. */
static bool write_table(FILE *f, const pv_toml_value *t, const pv_toml_entry **path, int depth) {
    for (size_t i = 0; i < t->tab.n; i++) {
        const pv_toml_entry *e = &t->tab.items[i];
        if (e->val.type == PV_TOML_TABLE) continue;
        if (!write_str(f, e->key, e->key_len) || fputs(" = ", f) < 0 || !write_value(f, &e->val) ||
            fputc('\n', f) == EOF)
            return false;
    }
    for (size_t i = 0; i < t->tab.n; i++) {
        const pv_toml_entry *e = &t->tab.items[i];
        if (e->val.type != PV_TOML_TABLE) continue;
        if (depth >= MAX_DEPTH + 1) return false;
        path[depth] = e;
        if (fputs("\n[", f) < 0) return false;
        for (int d = 0; d <= depth; d++) {
            if (d && fputc('.', f) == EOF) return false;
            if (!write_str(f, path[d]->key, path[d]->key_len)) return false;
        }
        if (fputs("]\n", f) < 0 || !write_table(f, &e->val, path, depth + 1)) return false;
    }
    return true;
}

bool pv_toml_write(FILE *f, const pv_toml_value *root) {
    if (!root || root->type != PV_TOML_TABLE) return false;
    const pv_toml_entry *path[MAX_DEPTH + 2];
    return write_table(f, root, path, 0);
}
