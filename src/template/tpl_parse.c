/* tpl_parse.c — the template lexer and parser. The lexer follows jinja2's lexer with
 * Hugging Face's settings: newlines normalized to "\n", one trailing newline dropped
 * (keep_trailing_newline=False), `-` whitespace control, trim_blocks (the newline after a
 * block or comment tag is eaten) and lstrip_blocks (spaces before a block/comment tag at the
 * start of a line are dropped). The parser is a recursive descent over jinja2's grammar with
 * its operator precedence (filters bind tighter than arithmetic; `~` between + and *). It
 * builds the tree in the template's arena; nesting depth is bounded so hostile input cannot
 * exhaust the stack. Also holds the arena allocator. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/tpl_internal.h"

/* ---- arena ---- */
struct pv_tpl_chunk {
    pv_tpl_chunk *next;
    size_t size, used;
    max_align_t data[];
};

void *pv_tpl_arena_alloc(pv_tpl_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    pv_tpl_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > (64u << 10) ? n : (64u << 10);
        if (a->cap && (a->used_total + size > a->cap || size > a->cap)) return NULL;
        c = malloc(sizeof(*c) + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->used_total += size;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void pv_tpl_arena_free(pv_tpl_arena *a) {
    pv_tpl_chunk *c = a->head;
    while (c) {
        pv_tpl_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used_total = 0;
}

/* ---- tokens ---- */
typedef enum {
    T_TEXT, T_BLOCK_BEGIN, T_BLOCK_END, T_VAR_BEGIN, T_VAR_END, T_NAME, T_STRING, T_INT,
    T_FLOAT, T_OP, T_EOF
} tok_kind;

typedef struct {
    uint8_t kind;
    int line, col;
    const char *s; /* text / name / decoded string / operator (NUL-terminated) */
    size_t n;
    int64_t i;
    double f;
} tok;

typedef struct {
    pv_template *t;
    pv_error *err;
    const char *src; /* normalized source */
    size_t len;
    tok *toks;
    size_t ntok, cap, pos;
    int depth, loop_depth;
    bool failed;
    size_t pos_off; /* pos_of's cache: line/column of offset pos_off */
    int pos_line, pos_col;
} parser;

static bool perr_at(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool perr_at(parser *p, int line, int col, const char *fmt, ...) {
    if (p->failed) return false;
    p->failed = true;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pv_error_set(p->err, PV_ERR_FORMAT, "line %d, column %d: %s", line, col, msg);
    return false;
}

static void *palloc(parser *p, size_t n) {
    void *m = pv_tpl_arena_alloc(&p->t->arena, n);
    if (!m && !p->failed) {
        p->failed = true;
        pv_error_set(p->err, PV_ERR_NOMEM, "template: out of memory");
    }
    return m;
}

static char *pstrndup(parser *p, const char *s, size_t n) {
    char *d = palloc(p, n + 1);
    if (d) memcpy(d, s, n);
    return d;
}

/* Line and column (1-based) of a byte offset in the normalized source. */
static void pos_of(parser *p, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    size_t i = 0;
    if (off >= p->pos_off && p->pos_line > 0) { /* tokens come in order: continue from cache */
        i = p->pos_off;
        l = p->pos_line;
        c = p->pos_col;
    }
    for (; i < off && i < p->len; i++) {
        if (p->src[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)p->src[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    p->pos_off = off;
    p->pos_line = l;
    p->pos_col = c;
    *line = l;
    *col = c;
}

static tok *push_tok(parser *p, uint8_t kind, size_t off) {
    if (p->ntok == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        tok *nt = palloc(p, nc * sizeof(tok));
        if (!nt) return NULL;
        if (p->ntok) memcpy(nt, p->toks, p->ntok * sizeof(tok));
        p->toks = nt;
        p->cap = nc;
    }
    tok *t = &p->toks[p->ntok++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    pos_of(p, off, &t->line, &t->col);
    return t;
}

static bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static bool is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

/* Appends the UTF-8 encoding of code point cp to buf at *n (buf has room for 4 more). */
static void put_utf8(char *buf, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xC0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | (cp >> 12));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | (cp >> 18));
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Lexes a string literal at src[*i] (the quote); decodes Python escapes as jinja2 does. */
static bool lex_string(parser *p, size_t *i, size_t end_limit) {
    size_t start = *i;
    char q = p->src[start];
    size_t j = start + 1;
    while (j < end_limit && p->src[j] != q) {
        if (p->src[j] == '\\' && j + 1 < end_limit) j++;
        j++;
    }
    int line, col;
    pos_of(p, start, &line, &col);
    if (j >= end_limit) return perr_at(p, line, col, "unexpected end of string");
    char *buf = palloc(p, (j - start) + 8);
    if (!buf) return false;
    size_t n = 0;
    for (size_t k = start + 1; k < j; k++) {
        char c = p->src[k];
        if (c != '\\' || k + 1 >= j) {
            buf[n++] = c;
            continue;
        }
        char e = p->src[++k];
        switch (e) {
        case 'n': buf[n++] = '\n'; break;
        case 't': buf[n++] = '\t'; break;
        case 'r': buf[n++] = '\r'; break;
        case '\\': buf[n++] = '\\'; break;
        case '\'': buf[n++] = '\''; break;
        case '"': buf[n++] = '"'; break;
        case 'a': buf[n++] = '\a'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'v': buf[n++] = '\v'; break;
        case '0': buf[n++] = '\0'; break;
        case '\n': break;
        case 'x': case 'u': case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            if (k + (size_t)digits >= j) return perr_at(p, line, col, "truncated \\%c escape", e);
            for (int d = 0; d < digits; d++) {
                int h = hexval(p->src[k + 1 + (size_t)d]);
                if (h < 0) return perr_at(p, line, col, "invalid \\%c escape", e);
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10FFFF) return perr_at(p, line, col, "invalid \\%c escape", e);
            k += (size_t)digits;
            put_utf8(buf, &n, cp);
            break;
        }
        default:
            buf[n++] = '\\';
            buf[n++] = e;
        }
    }
    buf[n] = 0;
    tok *t = push_tok(p, T_STRING, start);
    if (!t) return false;
    t->s = buf;
    t->n = n;
    *i = j + 1;
    return true;
}

static const char *const ops3[] = {"**", "//", "==", "!=", "<=", ">="};

/* Lexes the inside of a `{{ }}` or `{% %}` tag starting at *i into expression tokens and
 * the end token; leaves *i after the end marker. Sets *strip_after for a `-` end and
 * *keep_nl for a `+` end (which disables trim_blocks). A `}}` inside an open bracket is not
 * an end (jinja2 balances brackets too). */
static bool lex_tag(parser *p, size_t *i, bool block, bool *strip_after, bool *keep_nl) {
    const char *s = p->src;
    size_t n = p->len;
    char endc = block ? '%' : '}';
    int paren = 0; /* `}}` inside a dict literal: jinja2 balances braces */
    size_t j = *i;
    *strip_after = *keep_nl = false;
    while (j < n) {
        char c = s[j];
        if (is_ws(c)) {
            j++;
            continue;
        }
        /* end markers */
        if (paren == 0 || block) {
            if ((c == '-' || c == '+') && j + 2 < n && s[j + 1] == endc && s[j + 2] == '}') {
                if (!push_tok(p, block ? T_BLOCK_END : T_VAR_END, j)) return false;
                *strip_after = c == '-';
                *keep_nl = c == '+';
                *i = j + 3;
                return true;
            }
            if (c == endc && j + 1 < n && s[j + 1] == '}') {
                if (!push_tok(p, block ? T_BLOCK_END : T_VAR_END, j)) return false;
                *i = j + 2;
                return true;
            }
        }
        if (c == '\'' || c == '"') {
            if (!lex_string(p, &j, n)) return false;
            continue;
        }
        if (c >= '0' && c <= '9') {
            size_t st = j;
            bool isf = false;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) j++;
            if (j + 1 < n && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9') {
                isf = true;
                j++;
                while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) j++;
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < n && (s[k] == '+' || s[k] == '-')) k++;
                if (k < n && s[k] >= '0' && s[k] <= '9') {
                    isf = true;
                    j = k;
                    while (j < n && s[j] >= '0' && s[j] <= '9') j++;
                }
            }
            char buf[64];
            size_t bn = 0;
            for (size_t k = st; k < j && bn < sizeof buf - 1; k++)
                if (s[k] != '_') buf[bn++] = s[k];
            buf[bn] = 0;
            tok *t = push_tok(p, isf ? T_FLOAT : T_INT, st);
            if (!t) return false;
            errno = 0;
            if (isf) {
                t->f = strtod(buf, NULL);
            } else {
                t->i = strtoll(buf, NULL, 10);
                if (errno == ERANGE || j - st > 60)
                    return perr_at(p, t->line, t->col, "integer literal too large");
            }
            continue;
        }
        if (is_name_start((unsigned char)c)) {
            size_t st = j;
            while (j < n && is_name_char((unsigned char)s[j])) j++;
            tok *t = push_tok(p, T_NAME, st);
            if (!t) return false;
            t->s = pstrndup(p, s + st, j - st);
            t->n = j - st;
            if (!t->s) return false;
            continue;
        }
        size_t ol = 1;
        for (size_t k = 0; k < PV_ARRAY_LEN(ops3); k++)
            if (j + 1 < n && s[j] == ops3[k][0] && s[j + 1] == ops3[k][1]) ol = 2;
        if (ol == 1 && !strchr("+-*/%~()[]{}.,:|=<>", c)) {
            int line, col;
            pos_of(p, j, &line, &col);
            if (c == 0 || (unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                return perr_at(p, line, col, "unexpected character");
            return perr_at(p, line, col, "unexpected char '%c'", c);
        }
        if (c == '(' || c == '[' || c == '{') paren++;
        if ((c == ')' || c == ']' || c == '}') && paren > 0) paren--;
        tok *t = push_tok(p, T_OP, j);
        if (!t) return false;
        t->s = pstrndup(p, s + j, ol);
        t->n = ol;
        if (!t->s) return false;
        j += ol;
    }
    int line, col;
    pos_of(p, *i, &line, &col);
    return perr_at(p, line, col, "unexpected end of template, expected '%s'",
                   block ? "end of statement block" : "end of print statement");
}

/* True when text[from..to) is non-empty and entirely horizontal/vertical whitespace. */
static bool all_ws(const char *t, size_t from, size_t to) {
    if (from >= to) return false;
    for (size_t i = from; i < to; i++)
        if (!is_ws(t[i])) return false;
    return true;
}

/* Whether the tag at `off` (pointing at "{%") is `{% raw %}` (with optional -/+). Sets
 * *after to just past the tag's end. */
static bool is_raw_tag(const char *s, size_t n, size_t off, size_t *after, bool *strip_after) {
    size_t j = off + 2;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    while (j < n && is_ws(s[j])) j++;
    if (j + 3 > n || memcmp(s + j, "raw", 3) != 0) return false;
    j += 3;
    while (j < n && is_ws(s[j])) j++;
    *strip_after = false;
    if (j < n && (s[j] == '-' || s[j] == '+')) {
        *strip_after = s[j] == '-';
        j++;
    }
    if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return false;
    *after = j + 2;
    return true;
}

static bool lex(parser *p) {
    const char *s = p->src;
    size_t n = p->len, i = 0;
    bool strip_next = false, trim_next = false, line_start = true;
    while (i <= n) {
        /* apply the previous tag's right-side whitespace control */
        if (strip_next) {
            size_t st = i;
            while (i < n && is_ws(s[i])) i++;
            if (i > st) line_start = s[i - 1] == '\n';
        } else if (trim_next && i < n && s[i] == '\n') {
            i++;
            line_start = true;
        }
        strip_next = trim_next = false;
        /* find the next tag opener */
        size_t j = i;
        while (j + 1 < n && !(s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#'))) j++;
        bool found = j + 1 < n;
        if (!found) j = n;
        size_t text_end = j;
        char kind = found ? s[j + 1] : 0;
        char sign = found && j + 2 < n ? s[j + 2] : 0;
        if (found && sign == '-') {
            while (text_end > i && is_ws(s[text_end - 1])) text_end--;
        } else if (found && sign != '+' && kind != '{') {
            size_t lp = text_end;
            while (lp > i && s[lp - 1] != '\n') lp--;
            if ((lp > i || line_start) && all_ws(s, lp, text_end)) text_end = lp;
        }
        if (text_end > i) {
            tok *t = push_tok(p, T_TEXT, i);
            if (!t) return false;
            t->s = s + i;
            t->n = text_end - i;
        }
        if (!found) break;
        size_t body = j + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
        bool strip_after = false, keep_nl = false;
        if (kind == '#') {
            size_t k = body;
            while (k + 1 < n && !(s[k] == '#' && s[k + 1] == '}')) k++;
            if (k + 1 >= n) {
                int line, col;
                pos_of(p, j, &line, &col);
                return perr_at(p, line, col, "missing end of comment tag");
            }
            strip_after = k > body && s[k - 1] == '-';
            keep_nl = k > body && s[k - 1] == '+';
            i = k + 2;
            line_start = false;
            strip_next = strip_after;
            trim_next = !strip_after && !keep_nl;
            continue;
        }
        size_t raw_after;
        bool raw_strip;
        if (kind == '%' && is_raw_tag(s, n, j, &raw_after, &raw_strip)) {
            /* {% raw %}: everything up to {% endraw %} is text */
            size_t k = raw_after;
            if (raw_strip)
                while (k < n && is_ws(s[k])) k++;
            else if (k < n && s[k] == '\n')
                k++;
            size_t e = k;
            for (;; e++) {
                if (e + 1 >= n) {
                    int line, col;
                    pos_of(p, j, &line, &col);
                    return perr_at(p, line, col, "missing endraw tag");
                }
                if (s[e] != '{' || s[e + 1] != '%') continue;
                size_t q = e + 2;
                bool pre_strip = q < n && s[q] == '-';
                if (q < n && (s[q] == '-' || s[q] == '+')) q++;
                while (q < n && is_ws(s[q])) q++;
                if (q + 6 > n || memcmp(s + q, "endraw", 6) != 0) continue;
                q += 6;
                while (q < n && is_ws(s[q])) q++;
                bool post = false, post_keep = false;
                if (q < n && (s[q] == '-' || s[q] == '+')) {
                    post = s[q] == '-';
                    post_keep = s[q] == '+';
                    q++;
                }
                if (q + 1 >= n || s[q] != '%' || s[q + 1] != '}') continue;
                size_t te = e;
                if (pre_strip)
                    while (te > k && is_ws(s[te - 1])) te--;
                else {
                    size_t lp = te;
                    while (lp > k && s[lp - 1] != '\n') lp--;
                    if (all_ws(s, lp, te)) te = lp;
                }
                if (te > k) {
                    tok *t = push_tok(p, T_TEXT, k);
                    if (!t) return false;
                    t->s = s + k;
                    t->n = te - k;
                }
                i = q + 2;
                strip_next = post;
                trim_next = !post && !post_keep;
                line_start = false;
                break;
            }
            continue;
        }
        bool block = kind == '%';
        if (!push_tok(p, block ? T_BLOCK_BEGIN : T_VAR_BEGIN, j)) return false;
        i = body;
        if (!lex_tag(p, &i, block, &strip_after, &keep_nl)) return false;
        line_start = false;
        strip_next = strip_after;
        trim_next = block && !strip_after && !keep_nl;
    }
    return push_tok(p, T_EOF, n) != NULL;
}

/* ---- parser ---- */
static tok *cur(parser *p) { return &p->toks[p->pos]; }
static tok *peek(parser *p, size_t k) {
    size_t i = p->pos + k;
    return i < p->ntok ? &p->toks[i] : &p->toks[p->ntok - 1];
}
static bool is_op(const tok *t, const char *op) { return t->kind == T_OP && !strcmp(t->s, op); }
static bool is_name(const tok *t, const char *nm) { return t->kind == T_NAME && !strcmp(t->s, nm); }
static void advance(parser *p) {
    if (p->pos + 1 < p->ntok) p->pos++;
}

static const char *tok_desc(const tok *t) {
    switch (t->kind) {
    case T_NAME: case T_OP: return t->s;
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_BLOCK_END: return "end of statement block";
    case T_VAR_END: return "end of print statement";
    case T_EOF: return "end of template";
    default: return "text";
    }
}

static bool expect_op(parser *p, const char *op) {
    tok *t = cur(p);
    if (!is_op(t, op))
        return perr_at(p, t->line, t->col, "expected '%s', got '%s'", op, tok_desc(t));
    advance(p);
    return true;
}

static pv_tpl_expr *new_expr(parser *p, uint8_t kind, const tok *at) {
    pv_tpl_expr *e = palloc(p, sizeof *e);
    if (!e) return NULL;
    e->kind = kind;
    e->line = at->line;
    e->col = at->col;
    return e;
}

static pv_tpl_expr *parse_expr(parser *p);
static pv_tpl_expr *parse_or(parser *p);
static pv_tpl_expr *parse_unary(parser *p, bool with_filter);
static pv_tpl_expr *parse_primary(parser *p);

/* Growable array of expression pointers in the arena. */
typedef struct {
    pv_tpl_expr **v;
    const char **kw;
    int n, cap;
} exprvec;

static bool ev_push(parser *p, exprvec *v, pv_tpl_expr *e, const char *kw) {
    if (!e) return false;
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 4;
        pv_tpl_expr **nv = palloc(p, (size_t)nc * sizeof *nv);
        const char **nk = palloc(p, (size_t)nc * sizeof *nk);
        if (!nv || !nk) return false;
        if (v->n) {
            memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
            memcpy(nk, v->kw, (size_t)v->n * sizeof *nk);
        }
        v->v = nv;
        v->kw = nk;
        v->cap = nc;
    }
    v->v[v->n] = e;
    v->kw[v->n] = kw;
    v->n++;
    return true;
}

static bool enter(parser *p) {
    if (++p->depth > PV_TEMPLATE_MAX_DEPTH) {
        tok *t = cur(p);
        return perr_at(p, t->line, t->col, "template nested too deeply");
    }
    return true;
}

/* Parses `( args )` (the opening paren is current) into e->args/e->kw. */
static bool parse_call_args(parser *p, pv_tpl_expr *e) {
    if (!expect_op(p, "(")) return false;
    exprvec v = {0};
    while (!is_op(cur(p), ")")) {
        if (v.n && !expect_op(p, ",")) return false;
        if (is_op(cur(p), ")")) break;
        const char *kw = NULL;
        if (cur(p)->kind == T_NAME && is_op(peek(p, 1), "=")) {
            kw = cur(p)->s;
            advance(p);
            advance(p);
        } else if (is_op(cur(p), "*") || is_op(cur(p), "**")) {
            return perr_at(p, cur(p)->line, cur(p)->col, "*args and **kwargs are not supported");
        }
        if (!ev_push(p, &v, parse_expr(p), kw)) return false;
    }
    advance(p);
    e->args = v.v;
    e->kw = v.kw;
    e->nargs = v.n;
    return true;
}

/* Dotted name after `|` or `is` (jinja2 allows `foo.bar` filter names). */
static const char *parse_dotted_name(parser *p) {
    tok *t = cur(p);
    if (t->kind != T_NAME) {
        perr_at(p, t->line, t->col, "expected a name, got '%s'", tok_desc(t));
        return NULL;
    }
    advance(p);
    return t->s;
}

static pv_tpl_expr *parse_postfix(parser *p, pv_tpl_expr *node) {
    for (;;) {
        tok *t = cur(p);
        if (is_op(t, ".")) {
            advance(p);
            tok *a = cur(p);
            pv_tpl_expr *e;
            if (a->kind == T_NAME) {
                e = new_expr(p, E_ATTR, t);
                if (!e) return NULL;
                e->name = a->s;
            } else if (a->kind == T_INT) {
                e = new_expr(p, E_ITEM, t);
                if (!e) return NULL;
                pv_tpl_expr *k = new_expr(p, E_LIT, a);
                if (!k) return NULL;
                k->lit.k = TV_INT;
                k->lit.u.i = a->i;
                e->b = k;
            } else {
                perr_at(p, a->line, a->col, "expected name or number, got '%s'", tok_desc(a));
                return NULL;
            }
            advance(p);
            e->a = node;
            node = e;
        } else if (is_op(t, "[")) {
            advance(p);
            /* subscript or slice */
            pv_tpl_expr *parts[3] = {0};
            int nparts = 0;
            bool is_slice = false;
            for (;;) {
                if (is_op(cur(p), ":")) {
                    is_slice = true;
                    if (nparts >= 2) {
                        perr_at(p, cur(p)->line, cur(p)->col, "invalid slice");
                        return NULL;
                    }
                    nparts++;
                    advance(p);
                    continue;
                }
                if (is_op(cur(p), "]")) break;
                if (parts[nparts]) {
                    perr_at(p, cur(p)->line, cur(p)->col, "expected ']', got '%s'", tok_desc(cur(p)));
                    return NULL;
                }
                parts[nparts] = parse_expr(p);
                if (!parts[nparts]) return NULL;
            }
            advance(p);
            pv_tpl_expr *e = new_expr(p, is_slice ? E_SLICE : E_ITEM, t);
            if (!e) return NULL;
            e->a = node;
            if (is_slice) {
                e->b = parts[0];
                e->c = parts[1];
                e->args = palloc(p, sizeof(pv_tpl_expr *));
                if (!e->args) return NULL;
                e->args[0] = parts[2];
            } else {
                if (!parts[0]) {
                    perr_at(p, t->line, t->col, "expected an expression in []");
                    return NULL;
                }
                e->b = parts[0];
            }
            node = e;
        } else if (is_op(t, "(")) {
            pv_tpl_expr *e = new_expr(p, E_CALL, t);
            if (!e) return NULL;
            e->a = node;
            if (!parse_call_args(p, e)) return NULL;
            node = e;
        } else {
            return node;
        }
    }
}

/* Filters (`|name(args)`) and tests (`is [not] name [arg]`) after a unary expression. */
static pv_tpl_expr *parse_filter_expr(parser *p, pv_tpl_expr *node) {
    for (;;) {
        tok *t = cur(p);
        if (is_op(t, "|")) {
            advance(p);
            pv_tpl_expr *e = new_expr(p, E_FILTER, t);
            if (!e) return NULL;
            e->name = parse_dotted_name(p);
            if (!e->name) return NULL;
            e->a = node;
            if (is_op(cur(p), "(") && !parse_call_args(p, e)) return NULL;
            node = e;
        } else if (is_name(t, "is")) {
            advance(p);
            pv_tpl_expr *e = new_expr(p, E_TEST, t);
            if (!e) return NULL;
            if (is_name(cur(p), "not")) {
                e->negate = true;
                advance(p);
            }
            e->name = parse_dotted_name(p);
            if (!e->name) return NULL;
            e->a = node;
            tok *n = cur(p);
            if (is_op(n, "(")) {
                if (!parse_call_args(p, e)) return NULL;
            } else if (n->kind == T_STRING || n->kind == T_INT || n->kind == T_FLOAT ||
                       is_op(n, "[") || is_op(n, "{") ||
                       (n->kind == T_NAME && strcmp(n->s, "else") && strcmp(n->s, "or") &&
                        strcmp(n->s, "and") && strcmp(n->s, "if") && strcmp(n->s, "in") &&
                        strcmp(n->s, "not") && strcmp(n->s, "is"))) {
                /* a single argument without parentheses: `is divisibleby 3` */
                pv_tpl_expr *arg = parse_primary(p);
                if (!arg) return NULL;
                arg = parse_postfix(p, arg);
                if (!arg) return NULL;
                e->args = palloc(p, sizeof(pv_tpl_expr *));
                e->kw = palloc(p, sizeof(const char *));
                if (!e->args || !e->kw) return NULL;
                e->args[0] = arg;
                e->nargs = 1;
            }
            node = e;
        } else if (is_op(t, "(")) {
            pv_tpl_expr *e = new_expr(p, E_CALL, t);
            if (!e) return NULL;
            e->a = node;
            if (!parse_call_args(p, e)) return NULL;
            node = e;
        } else {
            return node;
        }
    }
}

static pv_tpl_expr *parse_primary(parser *p) {
    tok *t = cur(p);
    pv_tpl_expr *e;
    if (!enter(p)) return NULL;
    switch (t->kind) {
    case T_NAME: {
        static const struct { const char *name; uint8_t k; bool b; } lits[] = {
            {"true", TV_BOOL, true},  {"True", TV_BOOL, true}, {"false", TV_BOOL, false},
            {"False", TV_BOOL, false}, {"none", TV_NONE, false}, {"None", TV_NONE, false},
        };
        e = new_expr(p, E_NAME, t);
        if (!e) return NULL;
        for (size_t i = 0; i < PV_ARRAY_LEN(lits); i++) {
            if (!strcmp(t->s, lits[i].name)) {
                e->kind = E_LIT;
                e->lit.k = lits[i].k;
                e->lit.u.b = lits[i].b;
            }
        }
        e->name = t->s;
        advance(p);
        break;
    }
    case T_STRING: {
        /* adjacent string literals concatenate */
        size_t total = 0, k = p->pos;
        while (k < p->ntok && p->toks[k].kind == T_STRING) total += p->toks[k++].n;
        char *buf = palloc(p, total + 1);
        e = new_expr(p, E_LIT, t);
        if (!buf || !e) return NULL;
        size_t off = 0;
        while (cur(p)->kind == T_STRING) {
            memcpy(buf + off, cur(p)->s, cur(p)->n);
            off += cur(p)->n;
            advance(p);
        }
        e->lit.k = TV_STR;
        e->lit.u.s = buf;
        e->lit.n = total;
        break;
    }
    case T_INT: case T_FLOAT:
        e = new_expr(p, E_LIT, t);
        if (!e) return NULL;
        if (t->kind == T_INT) {
            e->lit.k = TV_INT;
            e->lit.u.i = t->i;
        } else {
            e->lit.k = TV_FLOAT;
            e->lit.u.f = t->f;
        }
        advance(p);
        break;
    case T_OP:
        if (is_op(t, "(")) {
            advance(p);
            if (is_op(cur(p), ")")) {
                advance(p);
                e = new_expr(p, E_TUPLE, t);
                break;
            }
            pv_tpl_expr *first = parse_expr(p);
            if (!first) return NULL;
            if (is_op(cur(p), ")")) {
                advance(p);
                e = first;
                break;
            }
            exprvec v = {0};
            if (!ev_push(p, &v, first, NULL)) return NULL;
            while (is_op(cur(p), ",")) {
                advance(p);
                if (is_op(cur(p), ")")) break;
                if (!ev_push(p, &v, parse_expr(p), NULL)) return NULL;
            }
            if (!expect_op(p, ")")) return NULL;
            e = new_expr(p, E_TUPLE, t);
            if (!e) return NULL;
            e->args = v.v;
            e->nargs = v.n;
            break;
        }
        if (is_op(t, "[")) {
            advance(p);
            exprvec v = {0};
            while (!is_op(cur(p), "]")) {
                if (v.n && !expect_op(p, ",")) return NULL;
                if (is_op(cur(p), "]")) break;
                if (!ev_push(p, &v, parse_expr(p), NULL)) return NULL;
            }
            advance(p);
            e = new_expr(p, E_LIST, t);
            if (!e) return NULL;
            e->args = v.v;
            e->nargs = v.n;
            break;
        }
        if (is_op(t, "{")) {
            advance(p);
            exprvec keys = {0}, vals = {0};
            while (!is_op(cur(p), "}")) {
                if (keys.n && !expect_op(p, ",")) return NULL;
                if (is_op(cur(p), "}")) break;
                if (!ev_push(p, &keys, parse_expr(p), NULL)) return NULL;
                if (!expect_op(p, ":")) return NULL;
                if (!ev_push(p, &vals, parse_expr(p), NULL)) return NULL;
            }
            advance(p);
            e = new_expr(p, E_DICT, t);
            if (!e) return NULL;
            e->keys = keys.v;
            e->args = vals.v;
            e->nargs = keys.n;
            break;
        }
        /* fallthrough */
    default:
        perr_at(p, t->line, t->col, "unexpected '%s'", tok_desc(t));
        return NULL;
    }
    p->depth--;
    return e;
}

static pv_tpl_expr *parse_unary(parser *p, bool with_filter) {
    tok *t = cur(p);
    pv_tpl_expr *node;
    if (!enter(p)) return NULL;
    if (is_op(t, "-") || is_op(t, "+")) {
        advance(p);
        node = new_expr(p, is_op(t, "-") ? E_NEG : E_POS, t);
        if (!node) return NULL;
        node->a = parse_unary(p, false);
        if (!node->a) return NULL;
    } else {
        node = parse_primary(p);
    }
    if (node) node = parse_postfix(p, node);
    if (node && with_filter) node = parse_filter_expr(p, node);
    p->depth--;
    return node;
}

static pv_tpl_expr *binary(parser *p, uint8_t kind, uint8_t op, const tok *at, pv_tpl_expr *a,
                           pv_tpl_expr *b) {
    if (!a || !b) return NULL;
    pv_tpl_expr *e = new_expr(p, kind, at);
    if (!e) return NULL;
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}

static pv_tpl_expr *parse_pow(parser *p) {
    pv_tpl_expr *l = parse_unary(p, true);
    while (l && is_op(cur(p), "**")) {
        tok *t = cur(p);
        advance(p);
        l = binary(p, E_BIN, OP_POW, t, l, parse_unary(p, true));
    }
    return l;
}

static pv_tpl_expr *parse_math2(parser *p) {
    static const struct { const char *s; uint8_t op; } ops[] = {
        {"*", OP_MUL}, {"/", OP_DIV}, {"//", OP_FLOORDIV}, {"%", OP_MOD}};
    pv_tpl_expr *l = parse_pow(p);
    for (;;) {
        if (!l) return NULL;
        tok *t = cur(p);
        size_t k = 0;
        while (k < PV_ARRAY_LEN(ops) && !is_op(t, ops[k].s)) k++;
        if (k == PV_ARRAY_LEN(ops)) return l;
        advance(p);
        l = binary(p, E_BIN, ops[k].op, t, l, parse_pow(p));
    }
}

static pv_tpl_expr *parse_concat(parser *p) {
    pv_tpl_expr *l = parse_math2(p);
    while (l && is_op(cur(p), "~")) {
        tok *t = cur(p);
        advance(p);
        l = binary(p, E_CONCAT, 0, t, l, parse_math2(p));
    }
    return l;
}

static pv_tpl_expr *parse_math1(parser *p) {
    pv_tpl_expr *l = parse_concat(p);
    while (l && (is_op(cur(p), "+") || is_op(cur(p), "-"))) {
        tok *t = cur(p);
        uint8_t op = is_op(t, "+") ? OP_ADD : OP_SUB;
        advance(p);
        l = binary(p, E_BIN, op, t, l, parse_concat(p));
    }
    return l;
}

static pv_tpl_expr *parse_compare(parser *p) {
    static const struct { const char *s; uint8_t op; } ops[] = {
        {"==", OP_EQ}, {"!=", OP_NE}, {"<", OP_LT}, {"<=", OP_LE}, {">", OP_GT}, {">=", OP_GE}};
    tok *start = cur(p);
    pv_tpl_expr *first = parse_math1(p);
    if (!first) return NULL;
    exprvec rest = {0};
    uint8_t opsbuf[64];
    for (;;) {
        tok *t = cur(p);
        int op = -1;
        for (size_t k = 0; k < PV_ARRAY_LEN(ops); k++)
            if (is_op(t, ops[k].s)) op = ops[k].op;
        if (op < 0 && is_name(t, "in")) op = OP_IN;
        if (op < 0 && is_name(t, "not") && is_name(peek(p, 1), "in")) {
            op = OP_NOTIN;
            advance(p);
        }
        if (op < 0) break;
        advance(p);
        if (rest.n >= (int)sizeof opsbuf) {
            perr_at(p, t->line, t->col, "comparison chain too long");
            return NULL;
        }
        opsbuf[rest.n] = (uint8_t)op;
        if (!ev_push(p, &rest, parse_math1(p), NULL)) return NULL;
    }
    if (!rest.n) return first;
    pv_tpl_expr *e = new_expr(p, E_CMP, start);
    if (!e) return NULL;
    e->a = first;
    e->keys = rest.v;
    e->nargs = rest.n;
    e->ops = palloc(p, (size_t)rest.n);
    if (!e->ops) return NULL;
    memcpy(e->ops, opsbuf, (size_t)rest.n);
    return e;
}

static pv_tpl_expr *parse_not(parser *p) {
    tok *t = cur(p);
    if (is_name(t, "not")) {
        if (!enter(p)) return NULL;
        advance(p);
        pv_tpl_expr *e = new_expr(p, E_NOT, t);
        if (!e) return NULL;
        e->a = parse_not(p);
        p->depth--;
        return e->a ? e : NULL;
    }
    return parse_compare(p);
}

static pv_tpl_expr *parse_and(parser *p) {
    pv_tpl_expr *l = parse_not(p);
    while (l && is_name(cur(p), "and")) {
        tok *t = cur(p);
        advance(p);
        l = binary(p, E_AND, 0, t, l, parse_not(p));
    }
    return l;
}

static pv_tpl_expr *parse_or(parser *p) {
    pv_tpl_expr *l = parse_and(p);
    while (l && is_name(cur(p), "or")) {
        tok *t = cur(p);
        advance(p);
        l = binary(p, E_OR, 0, t, l, parse_and(p));
    }
    return l;
}

/* expression with the inline `a if cond else b` */
static pv_tpl_expr *parse_expr(parser *p) {
    if (!enter(p)) return NULL;
    pv_tpl_expr *e = parse_or(p);
    while (e && is_name(cur(p), "if")) {
        tok *t = cur(p);
        advance(p);
        pv_tpl_expr *c = new_expr(p, E_COND, t);
        if (!c) return NULL;
        c->a = e;
        c->b = parse_or(p);
        if (!c->b) return NULL;
        if (is_name(cur(p), "else")) {
            advance(p);
            c->c = parse_expr(p);
            if (!c->c) return NULL;
        }
        e = c;
    }
    p->depth--;
    return e;
}

/* Expression or bare tuple `a, b` (for `for` iterables and `set` values). */
static pv_tpl_expr *parse_tuple_expr(parser *p) {
    tok *t = cur(p);
    pv_tpl_expr *e = parse_expr(p);
    if (!e || !is_op(cur(p), ",")) return e;
    exprvec v = {0};
    if (!ev_push(p, &v, e, NULL)) return NULL;
    while (is_op(cur(p), ",")) {
        advance(p);
        if (cur(p)->kind == T_BLOCK_END || cur(p)->kind == T_VAR_END) break;
        if (!ev_push(p, &v, parse_expr(p), NULL)) return NULL;
    }
    pv_tpl_expr *tu = new_expr(p, E_TUPLE, t);
    if (!tu) return NULL;
    tu->args = v.v;
    tu->nargs = v.n;
    return tu;
}

/* ---- statements ---- */
static pv_tpl_stmt *new_stmt(parser *p, uint8_t kind, const tok *at) {
    pv_tpl_stmt *s = palloc(p, sizeof *s);
    if (!s) return NULL;
    s->kind = kind;
    s->line = at->line;
    s->col = at->col;
    return s;
}

static bool expect_block_end(parser *p) {
    tok *t = cur(p);
    if (t->kind != T_BLOCK_END)
        return perr_at(p, t->line, t->col, "expected end of statement block, got '%s'", tok_desc(t));
    advance(p);
    return true;
}

/* Parses statements until a block tag whose name is in `ends` (NULL-terminated list) or EOF
 * (allowed only when ends == NULL). Leaves the parser after the end tag's name; *which
 * receives the matched end name. */
static pv_tpl_stmt *parse_body(parser *p, const char *const *ends, const char **which,
                               bool *ok);

/* Names list `a` or `a, b` (for/set targets). */
static bool parse_targets(parser *p, pv_tpl_stmt *s) {
    const char *names[16];
    int n = 0;
    bool paren = false;
    if (is_op(cur(p), "(")) {
        paren = true;
        advance(p);
    }
    for (;;) {
        tok *t = cur(p);
        if (t->kind != T_NAME) return perr_at(p, t->line, t->col, "expected a name, got '%s'", tok_desc(t));
        if (n == 16) return perr_at(p, t->line, t->col, "too many targets");
        names[n++] = t->s;
        advance(p);
        if (!is_op(cur(p), ",")) break;
        advance(p);
    }
    if (paren && !expect_op(p, ")")) return false;
    s->names = palloc(p, (size_t)n * sizeof(char *));
    if (!s->names) return false;
    memcpy(s->names, names, (size_t)n * sizeof(char *));
    s->nnames = n;
    return true;
}

static pv_tpl_stmt *parse_if(parser *p, const tok *at) {
    pv_tpl_stmt *s = new_stmt(p, S_IF, at);
    if (!s) return NULL;
    s->e = parse_tuple_expr(p);
    if (!s->e || !expect_block_end(p)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const char *which = NULL;
    bool ok;
    s->body = parse_body(p, ends, &which, &ok);
    if (!ok) return NULL;
    if (!strcmp(which, "elif")) {
        tok *t = &p->toks[p->pos - 1];
        s->else_body = parse_if(p, t);
        if (!s->else_body) return NULL;
        return s; /* the nested if consumed endif */
    }
    if (!strcmp(which, "else")) {
        if (!expect_block_end(p)) return NULL;
        static const char *const ends2[] = {"endif", NULL};
        s->else_body = parse_body(p, ends2, &which, &ok);
        if (!ok) return NULL;
    }
    return expect_block_end(p) ? s : NULL;
}

static pv_tpl_stmt *parse_for(parser *p, const tok *at) {
    pv_tpl_stmt *s = new_stmt(p, S_FOR, at);
    if (!s || !parse_targets(p, s)) return NULL;
    if (!is_name(cur(p), "in")) return perr_at(p, cur(p)->line, cur(p)->col, "expected 'in'"), NULL;
    advance(p);
    /* the iterable: no inline if-else here, `if` starts the loop filter (as in jinja2) */
    tok *t0 = cur(p);
    pv_tpl_expr *it = parse_or(p);
    if (!it) return NULL;
    if (is_op(cur(p), ",")) {
        exprvec v = {0};
        if (!ev_push(p, &v, it, NULL)) return NULL;
        while (is_op(cur(p), ",")) {
            advance(p);
            if (!ev_push(p, &v, parse_or(p), NULL)) return NULL;
        }
        it = new_expr(p, E_TUPLE, t0);
        if (!it) return NULL;
        it->args = v.v;
        it->nargs = v.n;
    }
    s->e = it;
    if (is_name(cur(p), "if")) {
        advance(p);
        s->cond = parse_expr(p);
        if (!s->cond) return NULL;
    }
    if (is_name(cur(p), "recursive"))
        return perr_at(p, cur(p)->line, cur(p)->col, "recursive loops are not supported"), NULL;
    if (!expect_block_end(p)) return NULL;
    static const char *const ends[] = {"else", "endfor", NULL};
    const char *which = NULL;
    bool ok;
    s->body = parse_body(p, ends, &which, &ok);
    if (!ok) return NULL;
    if (!strcmp(which, "else")) {
        if (!expect_block_end(p)) return NULL;
        static const char *const ends2[] = {"endfor", NULL};
        s->else_body = parse_body(p, ends2, &which, &ok);
        if (!ok) return NULL;
    }
    return expect_block_end(p) ? s : NULL;
}

static pv_tpl_stmt *parse_set(parser *p, const tok *at) {
    pv_tpl_stmt *s = new_stmt(p, S_SET, at);
    if (!s) return NULL;
    tok *t = cur(p);
    if (t->kind == T_NAME && is_op(peek(p, 1), ".")) {
        /* set ns.attr = value */
        tok *a = peek(p, 2);
        if (a->kind != T_NAME) return perr_at(p, a->line, a->col, "expected attribute name"), NULL;
        s->names = palloc(p, sizeof(char *));
        if (!s->names) return NULL;
        s->names[0] = t->s;
        s->nnames = 1;
        s->attr = a->s;
        advance(p);
        advance(p);
        advance(p);
    } else if (!parse_targets(p, s)) {
        return NULL;
    }
    if (cur(p)->kind == T_BLOCK_END && !s->attr && s->nnames == 1) {
        /* block set: {% set x %}...{% endset %} */
        advance(p);
        s->kind = S_SETBLOCK;
        static const char *const ends[] = {"endset", NULL};
        const char *which;
        bool ok;
        s->body = parse_body(p, ends, &which, &ok);
        if (!ok) return NULL;
        return expect_block_end(p) ? s : NULL;
    }
    if (!expect_op(p, "=")) return NULL;
    s->e = parse_tuple_expr(p);
    if (!s->e) return NULL;
    return expect_block_end(p) ? s : NULL;
}

static pv_tpl_stmt *parse_macro(parser *p, const tok *at) {
    pv_tpl_stmt *s = new_stmt(p, S_MACRO, at);
    if (!s) return NULL;
    tok *nt = cur(p);
    if (nt->kind != T_NAME) return perr_at(p, nt->line, nt->col, "expected macro name"), NULL;
    s->name = nt->s;
    advance(p);
    if (!expect_op(p, "(")) return NULL;
    const char *names[64];
    pv_tpl_expr *defs[64];
    int n = 0;
    while (!is_op(cur(p), ")")) {
        if (n && !expect_op(p, ",")) return NULL;
        if (is_op(cur(p), ")")) break;
        tok *t = cur(p);
        if (t->kind != T_NAME) return perr_at(p, t->line, t->col, "expected a parameter name"), NULL;
        if (n == 64) return perr_at(p, t->line, t->col, "too many macro parameters"), NULL;
        names[n] = t->s;
        defs[n] = NULL;
        advance(p);
        if (is_op(cur(p), "=")) {
            advance(p);
            defs[n] = parse_expr(p);
            if (!defs[n]) return NULL;
        } else {
            for (int k = 0; k < n; k++)
                if (defs[k]) return perr_at(p, t->line, t->col, "non-default argument follows default argument"), NULL;
        }
        n++;
    }
    advance(p);
    if (!expect_block_end(p)) return NULL;
    s->names = palloc(p, (size_t)(n ? n : 1) * sizeof(char *));
    s->defaults = palloc(p, (size_t)(n ? n : 1) * sizeof(pv_tpl_expr *));
    if (!s->names || !s->defaults) return NULL;
    if (n) {
        memcpy(s->names, names, (size_t)n * sizeof(char *));
        memcpy(s->defaults, defs, (size_t)n * sizeof(pv_tpl_expr *));
    }
    s->nnames = n;
    static const char *const ends[] = {"endmacro", NULL};
    const char *which;
    bool ok;
    s->body = parse_body(p, ends, &which, &ok);
    if (!ok) return NULL;
    if (cur(p)->kind == T_NAME) advance(p); /* {% endmacro name %} */
    return expect_block_end(p) ? s : NULL;
}

static pv_tpl_stmt *parse_statement(parser *p, bool in_loop, bool *ok) {
    tok *t = cur(p); /* the name after {% */
    *ok = false;
    if (t->kind != T_NAME) return perr_at(p, t->line, t->col, "expected a statement name, got '%s'", tok_desc(t)), NULL;
    const char *nm = t->s;
    advance(p);
    pv_tpl_stmt *s = NULL;
    if (!strcmp(nm, "if")) {
        s = parse_if(p, t);
    } else if (!strcmp(nm, "for")) {
        s = parse_for(p, t);
    } else if (!strcmp(nm, "set")) {
        s = parse_set(p, t);
    } else if (!strcmp(nm, "macro")) {
        s = parse_macro(p, t);
    } else if (!strcmp(nm, "break") || !strcmp(nm, "continue")) {
        if (!in_loop) return perr_at(p, t->line, t->col, "'%s' outside of a loop", nm), NULL;
        s = new_stmt(p, nm[0] == 'b' ? S_BREAK : S_CONTINUE, t);
        if (s && !expect_block_end(p)) return NULL;
    } else if (!strcmp(nm, "generation") || !strcmp(nm, "filter") || !strcmp(nm, "call")) {
        uint8_t kind = nm[0] == 'g' ? S_BODY : nm[0] == 'f' ? S_FILTERBLOCK : S_CALLBLOCK;
        s = new_stmt(p, kind, t);
        if (!s) return NULL;
        if (kind == S_FILTERBLOCK) {
            /* {% filter name(args) %}: stored as a filter expression applied to the body */
            pv_tpl_expr *e = new_expr(p, E_FILTER, cur(p));
            if (!e) return NULL;
            e->name = parse_dotted_name(p);
            if (!e->name) return NULL;
            if (is_op(cur(p), "(") && !parse_call_args(p, e)) return NULL;
            s->e = e;
        } else if (kind == S_CALLBLOCK) {
            if (is_op(cur(p), "(")) return perr_at(p, cur(p)->line, cur(p)->col, "call block parameters are not supported"), NULL;
            s->e = parse_expr(p);
            if (!s->e) return NULL;
            if (s->e->kind != E_CALL) return perr_at(p, t->line, t->col, "expected a macro call"), NULL;
        }
        if (!expect_block_end(p)) return NULL;
        const char *end = kind == S_BODY ? "endgeneration" : kind == S_FILTERBLOCK ? "endfilter" : "endcall";
        const char *ends[] = {end, NULL};
        const char *which;
        bool bok;
        s->body = parse_body(p, ends, &which, &bok);
        if (!bok) return NULL;
        if (!expect_block_end(p)) return NULL;
    } else {
        return perr_at(p, t->line, t->col, "unknown tag '%s'", nm), NULL;
    }
    *ok = s != NULL;
    return s;
}

static pv_tpl_stmt *parse_body_impl(parser *p, const char *const *ends, const char **which,
                                    bool *ok, bool in_loop) {
    pv_tpl_stmt *head = NULL, **tail = &head;
    *ok = false;
    if (!enter(p)) return NULL;
    for (;;) {
        tok *t = cur(p);
        pv_tpl_stmt *s = NULL;
        if (t->kind == T_EOF) {
            if (ends) {
                perr_at(p, t->line, t->col, "unexpected end of template, expected '%s'", ends[0]);
                return NULL;
            }
            break;
        }
        if (t->kind == T_TEXT) {
            s = new_stmt(p, S_TEXT, t);
            if (!s) return NULL;
            s->text = t->s;
            s->len = t->n;
            advance(p);
        } else if (t->kind == T_VAR_BEGIN) {
            advance(p);
            s = new_stmt(p, S_OUTPUT, t);
            if (!s) return NULL;
            s->e = parse_tuple_expr(p);
            if (!s->e) return NULL;
            if (cur(p)->kind != T_VAR_END) {
                perr_at(p, cur(p)->line, cur(p)->col, "expected end of print statement, got '%s'", tok_desc(cur(p)));
                return NULL;
            }
            advance(p);
        } else if (t->kind == T_BLOCK_BEGIN) {
            tok *nt = peek(p, 1);
            if (nt->kind == T_NAME && ends) {
                for (int k = 0; ends[k]; k++) {
                    if (!strcmp(nt->s, ends[k])) {
                        advance(p);
                        advance(p);
                        *which = ends[k];
                        *ok = true;
                        p->depth--;
                        return head;
                    }
                }
            }
            if (nt->kind == T_NAME && (!strncmp(nt->s, "end", 3) || !strcmp(nt->s, "else") || !strcmp(nt->s, "elif"))) {
                perr_at(p, nt->line, nt->col, "unexpected '%s'%s%s%s", nt->s, ends ? ", expected '" : "",
                        ends ? ends[0] : "", ends ? "'" : "");
                return NULL;
            }
            advance(p);
            bool sok;
            s = parse_statement(p, in_loop, &sok);
            if (!sok) return NULL;
        } else {
            perr_at(p, t->line, t->col, "unexpected '%s'", tok_desc(t));
            return NULL;
        }
        *tail = s;
        tail = &s->next;
    }
    *ok = true;
    p->depth--;
    return head;
}

/* break/continue are valid anywhere inside a for body (also nested in if blocks) but not
 * in a macro defined there; the parser tracks the for-nesting in p->loop_depth. */
static pv_tpl_stmt *parse_body(parser *p, const char *const *ends, const char **which, bool *ok) {
    bool in_loop = ends && (!strcmp(ends[0], "else") || !strcmp(ends[0], "endfor"));
    if (in_loop) p->loop_depth++;
    pv_tpl_stmt *r = parse_body_impl(p, ends, which, ok, p->loop_depth > 0);
    if (in_loop) p->loop_depth--;
    return r;
}

pv_status pv_tpl_parse_source(pv_template *t, const char *src, size_t len, pv_error *err) {
    parser p = {.t = t, .err = err};
    /* normalize newlines (\r\n, \r -> \n) and drop one trailing newline, as jinja2 does */
    char *norm = pv_tpl_arena_alloc(&t->arena, len + 1);
    if (!norm) return pv_error_set(err, PV_ERR_NOMEM, "template: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            norm[n++] = src[i];
        }
    }
    if (n && norm[n - 1] == '\n') n--;
    norm[n] = 0;
    p.src = norm;
    p.len = n;
    if (!lex(&p)) return err ? err->status : PV_ERR_FORMAT;
    bool ok;
    const char *which = NULL;
    t->root = parse_body(&p, NULL, &which, &ok);
    if (!ok) return err ? err->status : PV_ERR_FORMAT;
    return PV_OK;
}
