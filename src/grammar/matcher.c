/* matcher.c — the grammar runtime: per-sequence states, the vocabulary trie and masking.
 *
 * A parse position is a stack of grammar positions (top = a character set to match next,
 * below = where to continue after each enclosing rule), as in llama.cpp's llama_grammar; an
 * ambiguous prefix keeps a set of such stacks. Stacks are immutable linked nodes
 * (pos, parent) that are hash-consed, so equal stacks have equal ids; a "configuration" is
 * a sorted set of stack ids plus a partial UTF-8 character and a "complete" flag, also
 * hash-consed. Transitions configuration x byte -> configuration are computed on demand and
 * cached in a 256-entry row per configuration, so the matcher becomes a lazily built DFA:
 * walking the vocabulary's byte trie costs one table lookup per trie node once warm, and
 * text that revisits a configuration (inside a JSON string, say) is always warm. The cache
 * lives in the state (one sequence, one thread) and is rebuilt from the live configuration
 * when it grows past a bound. */
#include <stdlib.h>
#include <string.h>

#include "pv_grammar_int.h"

#define NIL UINT32_MAX
#define DEAD (-1)
#define UNKNOWN (-2)
#define EXPAND_MAX_DEPTH 4096
/* rebuild the cache beyond these (nodes, configurations) */
#define GC_NODES (1u << 20)
#define GC_CFGS (1u << 13)

typedef struct {
    uint32_t pos, parent;
    uint64_t min; /* fewest bytes to finish this stack */
} gnode;

typedef struct {
    uint32_t off, n;   /* stack ids in pool[off..off+n), sorted */
    uint32_t cp;       /* partial code point bits */
    uint8_t need, len; /* continuation bytes still needed; the character's length */
    bool complete;     /* the empty stack is among the alternatives (need == 0 only) */
    uint32_t trans;    /* row in the transition table, NIL until first used */
    int16_t loop;      /* byte classes that lead back here (CLS_* bits), -1 unknown */
    uint64_t min;      /* fewest bytes to completion */
} gcfg;

typedef struct {
    const pv_grammar *g;
    gnode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *node_ht; /* open addressing: id+1, 0 empty */
    uint32_t node_ht_cap;
    gcfg *cfgs;
    uint32_t n_cfgs, cap_cfgs;
    uint32_t *cfg_ht;
    uint32_t cfg_ht_cap;
    uint32_t *pool;
    size_t n_pool, cap_pool;
    int32_t *trans;
    size_t n_trans_rows, cap_trans_rows;
    uint32_t *tmp; /* expansion output */
    size_t n_tmp, cap_tmp;
    bool overflow, oom;
} gengine;

struct pv_grammar_state {
    const pv_grammar *g;
    gengine e;
    uint32_t cur;
    uint32_t start; /* configuration at the start (reset) */
    const char *error;
};

static bool grow(void **ptr, size_t *cap, size_t need, size_t elsize) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*ptr, nc * elsize);
    if (!q) return false;
    *ptr = q;
    *cap = nc;
    return true;
}

static uint32_t hash2(uint32_t a, uint32_t b) {
    uint64_t x = ((uint64_t)a << 32) | b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

static void engine_free(gengine *e) {
    free(e->nodes);
    free(e->node_ht);
    free(e->cfgs);
    free(e->cfg_ht);
    free(e->pool);
    free(e->trans);
    free(e->tmp);
    memset(e, 0, sizeof(*e));
}

static bool engine_init(gengine *e, const pv_grammar *g) {
    memset(e, 0, sizeof(*e));
    e->g = g;
    e->node_ht_cap = 1024;
    e->cfg_ht_cap = 256;
    e->node_ht = calloc(e->node_ht_cap, sizeof(uint32_t));
    e->cfg_ht = calloc(e->cfg_ht_cap, sizeof(uint32_t));
    return e->node_ht && e->cfg_ht;
}

/* ---- hash-consed stack nodes ---- */
static bool node_ht_rehash(gengine *e) {
    uint32_t nc = e->node_ht_cap * 2;
    uint32_t *ht = calloc(nc, sizeof(uint32_t));
    if (!ht) return false;
    for (uint32_t i = 0; i < e->n_nodes; i++) {
        uint32_t h = hash2(e->nodes[i].pos, e->nodes[i].parent) & (nc - 1);
        while (ht[h]) h = (h + 1) & (nc - 1);
        ht[h] = i + 1;
    }
    free(e->node_ht);
    e->node_ht = ht;
    e->node_ht_cap = nc;
    return true;
}

/* Returns the id of stack node (pos, parent), creating it once; NIL on out of memory. */
static uint32_t node_intern(gengine *e, uint32_t pos, uint32_t parent) {
    uint32_t mask = e->node_ht_cap - 1;
    uint32_t h = hash2(pos, parent) & mask;
    for (; e->node_ht[h]; h = (h + 1) & mask) {
        const gnode *n = &e->nodes[e->node_ht[h] - 1];
        if (n->pos == pos && n->parent == parent) return e->node_ht[h] - 1;
    }
    size_t cap = e->cap_nodes;
    if (e->n_nodes >= UINT32_MAX - 2 || !grow((void **)&e->nodes, &cap, (size_t)e->n_nodes + 1, sizeof(gnode))) {
        e->oom = true;
        return NIL;
    }
    e->cap_nodes = (uint32_t)cap;
    uint32_t id = e->n_nodes++;
    e->nodes[id].pos = pos;
    e->nodes[id].parent = parent;
    e->nodes[id].min = pv_grammar_sat_add(e->g->suffix_min[pos], parent == NIL ? 0 : e->nodes[parent].min);
    e->node_ht[h] = id + 1;
    if ((uint64_t)e->n_nodes * 2 > e->node_ht_cap && !node_ht_rehash(e)) e->oom = true;
    return id;
}

/* ---- expansion: from grammar position `pos` with continuation stack `parent`, push every
 * stack whose top is a character set into e->tmp (and note completion). Popping a finished
 * alternative is a loop; entering a rule recurses once per alternative. Termination: the
 * compiler rejected left recursion, so a chain of rule entries without consuming input is
 * finite; the depth guard is for safety only. ---- */
static void expand(gengine *e, uint32_t pos, uint32_t parent, bool *complete, int depth) {
    const pv_grammar *g = e->g;
    if (depth > EXPAND_MAX_DEPTH) {
        e->overflow = true;
        return;
    }
    for (;;) {
        const pv_gel *el = &g->el[pos];
        if (pv_gel_is_end(el)) {
            if (parent == NIL) {
                *complete = true;
                return;
            }
            pos = e->nodes[parent].pos;
            parent = e->nodes[parent].parent;
            continue;
        }
        if (el->type == PV_GEL_CHARSET) {
            if (e->n_tmp >= 4 * PV_GRAMMAR_MAX_STACKS) {
                e->overflow = true;
                return;
            }
            uint32_t id = node_intern(e, pos, parent);
            if (id == NIL) return;
            if (!grow((void **)&e->tmp, &e->cap_tmp, e->n_tmp + 1, sizeof(uint32_t))) {
                e->oom = true;
                return;
            }
            e->tmp[e->n_tmp++] = id;
            return;
        }
        /* REF: continue after it (tail position needs no frame: right recursion stays flat) */
        uint32_t cont = parent;
        if (!pv_gel_is_end(&g->el[pos + 1])) {
            cont = node_intern(e, pos + 1, parent);
            if (cont == NIL) return;
        }
        for (uint32_t i = g->rule_start[el->val];; i++) {
            expand(e, i, cont, complete, depth + 1);
            if (e->overflow || e->oom) return;
            while (!pv_gel_is_end(&g->el[i])) i++;
            if (g->el[i].type == PV_GEL_END) break;
        }
        return;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- configurations ---- */
static uint32_t cfg_hash(const uint32_t *s, uint32_t n, uint32_t cp, uint8_t need, bool complete) {
    uint32_t h = hash2(cp, ((uint32_t)need << 1) | complete);
    for (uint32_t i = 0; i < n; i++) h = hash2(h, s[i]);
    return h;
}

static bool cfg_ht_rehash(gengine *e) {
    uint32_t nc = e->cfg_ht_cap * 2;
    uint32_t *ht = calloc(nc, sizeof(uint32_t));
    if (!ht) return false;
    for (uint32_t i = 0; i < e->n_cfgs; i++) {
        const gcfg *c = &e->cfgs[i];
        uint32_t h = cfg_hash(e->pool + c->off, c->n, c->cp, c->need, c->complete) & (nc - 1);
        while (ht[h]) h = (h + 1) & (nc - 1);
        ht[h] = i + 1;
    }
    free(e->cfg_ht);
    e->cfg_ht = ht;
    e->cfg_ht_cap = nc;
    return true;
}

static uint64_t cfg_min_of(const gengine *e, const uint32_t *s, uint32_t n, uint8_t need, bool complete) {
    if (complete && need == 0) return 0;
    uint64_t best = PV_GRAMMAR_INF;
    for (uint32_t i = 0; i < n; i++) {
        const gnode *nd = &e->nodes[s[i]];
        uint64_t m;
        if (need == 0) {
            m = nd->min;
        } else {
            /* finish the character (need bytes), then what follows the character set */
            m = pv_grammar_sat_add(need, pv_grammar_sat_add(e->g->suffix_min[nd->pos + 1],
                                                            nd->parent == NIL ? 0 : e->nodes[nd->parent].min));
        }
        if (m < best) best = m;
    }
    return best;
}

/* Interns the configuration (stacks s[0..n) sorted and unique). Returns its id or DEAD. */
static int32_t cfg_intern(gengine *e, const uint32_t *s, uint32_t n, uint32_t cp, uint8_t need,
                          uint8_t len, bool complete) {
    uint32_t mask = e->cfg_ht_cap - 1;
    uint32_t h = cfg_hash(s, n, cp, need, complete) & mask;
    for (; e->cfg_ht[h]; h = (h + 1) & mask) {
        const gcfg *c = &e->cfgs[e->cfg_ht[h] - 1];
        if (c->n == n && c->cp == cp && c->need == need && c->complete == complete &&
            (n == 0 || memcmp(e->pool + c->off, s, n * sizeof(uint32_t)) == 0))
            return (int32_t)(e->cfg_ht[h] - 1);
    }
    size_t cap = e->cap_cfgs;
    if (e->n_cfgs >= INT32_MAX - 2 || !grow((void **)&e->cfgs, &cap, (size_t)e->n_cfgs + 1, sizeof(gcfg)) ||
        !grow((void **)&e->pool, &e->cap_pool, e->n_pool + n, sizeof(uint32_t))) {
        e->oom = true;
        return DEAD;
    }
    e->cap_cfgs = (uint32_t)cap;
    uint32_t id = e->n_cfgs++;
    gcfg *c = &e->cfgs[id];
    c->off = (uint32_t)e->n_pool;
    c->n = n;
    if (n) memmove(e->pool + e->n_pool, s, n * sizeof(uint32_t));
    e->n_pool += n;
    c->cp = cp;
    c->need = need;
    c->len = len;
    c->complete = complete;
    c->trans = NIL;
    c->loop = -1;
    c->min = cfg_min_of(e, e->pool + c->off, n, need, complete);
    e->cfg_ht[h] = id + 1;
    if ((uint64_t)e->n_cfgs * 2 > e->cfg_ht_cap && !cfg_ht_rehash(e)) e->oom = true;
    return (int32_t)id;
}

/* Sorts and dedups e->tmp, then interns it as a configuration. */
static int32_t cfg_from_tmp(gengine *e, bool complete, uint32_t cp, uint8_t need, uint8_t len) {
    if (e->oom || e->overflow) return DEAD;
    if (e->n_tmp > 1) qsort(e->tmp, e->n_tmp, sizeof(uint32_t), cmp_u32);
    size_t m = 0;
    for (size_t i = 0; i < e->n_tmp; i++)
        if (!m || e->tmp[m - 1] != e->tmp[i]) e->tmp[m++] = e->tmp[i];
    if (m > PV_GRAMMAR_MAX_STACKS) {
        e->overflow = true;
        return DEAD;
    }
    if (m == 0 && !complete) return DEAD;
    return cfg_intern(e, e->tmp, (uint32_t)m, cp, need, len, complete);
}

/* The configuration at the start of rule `rule`. */
static int32_t cfg_start(gengine *e, uint32_t rule) {
    e->n_tmp = 0;
    bool complete = false;
    const pv_grammar *g = e->g;
    for (uint32_t i = g->rule_start[rule];; i++) {
        expand(e, i, NIL, &complete, 0);
        while (!pv_gel_is_end(&g->el[i])) i++;
        if (g->el[i].type == PV_GEL_END) break;
    }
    return cfg_from_tmp(e, complete, 0, 0, 0);
}

/* ---- character sets ---- */
static bool cs_match(const pv_grammar *g, uint32_t csid, uint32_t cp) {
    const pv_gcharset *c = &g->cs[csid];
    if (cp < 128) return (c->ascii[cp >> 6] >> (cp & 63)) & 1;
    const uint32_t *r = g->ranges + 2 * (size_t)c->off;
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) { /* first range with hi >= cp */
        uint32_t mid = (lo + hi) / 2;
        if (r[2 * mid + 1] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n && r[2 * lo] <= cp;
}

static bool cs_intersects(const pv_grammar *g, uint32_t csid, uint32_t a, uint32_t b) {
    const pv_gcharset *c = &g->cs[csid];
    const uint32_t *r = g->ranges + 2 * (size_t)c->off;
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (r[2 * mid + 1] < a) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n && r[2 * lo] <= b;
}

/* ---- transitions ---- */
static const uint32_t utf8_min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};

static int32_t advance_cp(gengine *e, int32_t from, uint32_t cp) {
    const pv_grammar *g = e->g;
    e->n_tmp = 0;
    bool complete = false;
    uint32_t off = e->cfgs[from].off, n = e->cfgs[from].n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t sid = e->pool[off + i];
        uint32_t pos = e->nodes[sid].pos;
        if (!cs_match(g, g->el[pos].val, cp)) continue;
        expand(e, pos + 1, e->nodes[sid].parent, &complete, 0);
        if (e->overflow || e->oom) return DEAD;
    }
    return cfg_from_tmp(e, complete, 0, 0, 0);
}

/* Keeps the stacks whose character set can still match a character starting with the
 * bits seen so far. */
static int32_t filter_partial(gengine *e, int32_t from, uint32_t cp, uint8_t need, uint8_t len) {
    const pv_grammar *g = e->g;
    uint32_t lo = cp << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
    if (lo < utf8_min_cp[len]) lo = utf8_min_cp[len];
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi) return DEAD;
    /* the surrogates U+D800..U+DFFF are not characters: look on either side of them */
    uint32_t lo1 = lo, hi1 = PV_MIN(hi, 0xD7FFu), lo2 = PV_MAX(lo, 0xE000u), hi2 = hi;
    e->n_tmp = 0;
    uint32_t off = e->cfgs[from].off, n = e->cfgs[from].n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t sid = e->pool[off + i];
        uint32_t csid = g->el[e->nodes[sid].pos].val;
        if (!(lo1 <= hi1 && cs_intersects(g, csid, lo1, hi1)) && !(lo2 <= hi2 && cs_intersects(g, csid, lo2, hi2)))
            continue;
        if (!grow((void **)&e->tmp, &e->cap_tmp, e->n_tmp + 1, sizeof(uint32_t))) {
            e->oom = true;
            return DEAD;
        }
        e->tmp[e->n_tmp++] = sid;
    }
    if (!e->n_tmp) return DEAD;
    return cfg_intern(e, e->tmp, (uint32_t)e->n_tmp, cp, need, len, false);
}

static int32_t compute_trans(gengine *e, int32_t from, uint8_t b) {
    const gcfg c = e->cfgs[from];
    if (c.need == 0) {
        if (b < 0x80) return advance_cp(e, from, b);
        uint8_t len = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || b == 0xC0 || b == 0xC1 || b > 0xF4) return DEAD;
        uint32_t cp = b & (0x7Fu >> len);
        return filter_partial(e, from, cp, (uint8_t)(len - 1), len);
    }
    if ((b & 0xC0) != 0x80) return DEAD;
    uint32_t cp = (c.cp << 6) | (b & 0x3F);
    uint8_t need = (uint8_t)(c.need - 1);
    if (need) return filter_partial(e, from, cp, need, c.len);
    if (cp < utf8_min_cp[c.len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return DEAD;
    return advance_cp(e, from, cp);
}

/* The cached transition from configuration `from` on byte b (DEAD when rejected). */
static inline int32_t trans(gengine *e, int32_t from, uint8_t b) {
    uint32_t row = e->cfgs[from].trans;
    if (row == NIL) {
        if (!grow((void **)&e->trans, &e->cap_trans_rows, (e->n_trans_rows + 1) * 256, sizeof(int32_t))) {
            e->oom = true;
            return DEAD;
        }
        row = (uint32_t)e->n_trans_rows++;
        e->cfgs[from].trans = row;
        for (int i = 0; i < 256; i++) e->trans[(size_t)row * 256 + i] = UNKNOWN;
    }
    int32_t t = e->trans[(size_t)row * 256 + b];
    if (t != UNKNOWN) return t;
    e->overflow = false;
    t = compute_trans(e, from, b);
    /* an overflow or out-of-memory answer is not cached: it is not a property of the text */
    if (!e->overflow && !e->oom) e->trans[(size_t)e->cfgs[from].trans * 256 + b] = t;
    return t;
}

/* Copies configuration `id` of engine `src` into engine `dst` (stacks re-interned bottom
 * up); returns the new id or DEAD. */
static int32_t cfg_import(gengine *dst, const gengine *src, int32_t id) {
    const gcfg *c = &src->cfgs[id];
    uint32_t *ids = malloc(((size_t)c->n + 1) * sizeof(uint32_t));
    uint32_t *chain = NULL;
    size_t cap_chain = 0;
    if (!ids) return DEAD;
    for (uint32_t i = 0; i < c->n; i++) {
        size_t depth = 0;
        for (uint32_t s = src->pool[c->off + i]; s != NIL; s = src->nodes[s].parent) {
            if (!grow((void **)&chain, &cap_chain, depth + 1, sizeof(uint32_t))) {
                free(ids);
                free(chain);
                return DEAD;
            }
            chain[depth++] = s;
        }
        uint32_t parent = NIL;
        while (depth--) {
            parent = node_intern(dst, src->nodes[chain[depth]].pos, parent);
            if (parent == NIL) break;
        }
        ids[i] = parent;
    }
    free(chain);
    if (dst->oom) {
        free(ids);
        return DEAD;
    }
    if (c->n > 1) qsort(ids, c->n, sizeof(uint32_t), cmp_u32);
    int32_t r = cfg_intern(dst, ids, c->n, c->cp, c->need, c->len, c->complete);
    free(ids);
    return r;
}

/* Rebuilds the state's engine keeping only the live configuration (and the start one). */
static bool state_gc(pv_grammar_state *s) {
    gengine ne;
    if (!engine_init(&ne, s->g)) {
        engine_free(&ne);
        return false;
    }
    int32_t cur = cfg_import(&ne, &s->e, (int32_t)s->cur);
    int32_t start = cfg_start(&ne, s->g->root);
    if (cur == DEAD || start == DEAD) {
        engine_free(&ne);
        return false;
    }
    engine_free(&s->e);
    s->e = ne;
    s->cur = (uint32_t)cur;
    s->start = (uint32_t)start;
    return true;
}

static void state_maybe_gc(pv_grammar_state *s) {
    if (s->e.n_nodes > GC_NODES || s->e.n_cfgs > GC_CFGS || s->e.oom) {
        s->e.oom = false;
        (void)state_gc(s); /* on failure keep going with the big cache */
    }
}

/* ---- public: states ---- */
pv_status pv_grammar_state_init(const pv_grammar *g, pv_grammar_state **out, pv_error *err) {
    if (!out || !g) return pv_error_set(err, PV_ERR_INVALID, "grammar state: NULL argument");
    *out = NULL;
    pv_grammar_state *s = calloc(1, sizeof(*s));
    if (!s || !engine_init(&s->e, g)) {
        if (s) engine_free(&s->e);
        free(s);
        return pv_error_set(err, PV_ERR_NOMEM, "grammar state: out of memory");
    }
    s->g = g;
    int32_t c = cfg_start(&s->e, g->root);
    if (c == DEAD) {
        bool ovf = s->e.overflow;
        engine_free(&s->e);
        free(s);
        return pv_error_set(err, ovf ? PV_ERR_RANGE : PV_ERR_NOMEM,
                            ovf ? "grammar state: too many alternatives at the start (more than %d stacks)"
                                : "grammar state: out of memory",
                            PV_GRAMMAR_MAX_STACKS);
    }
    s->cur = s->start = (uint32_t)c;
    *out = s;
    return PV_OK;
}

pv_grammar_state *pv_grammar_state_clone(const pv_grammar_state *s) {
    if (!s) return NULL;
    pv_grammar_state *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->g = s->g;
    c->error = s->error;
    if (!engine_init(&c->e, s->g)) goto fail;
    int32_t cur = cfg_import(&c->e, &s->e, (int32_t)s->cur);
    int32_t start = cfg_start(&c->e, s->g->root);
    if (cur == DEAD || start == DEAD) goto fail;
    c->cur = (uint32_t)cur;
    c->start = (uint32_t)start;
    return c;
fail:
    engine_free(&c->e);
    free(c);
    return NULL;
}

void pv_grammar_state_reset(pv_grammar_state *s) {
    if (!s) return;
    s->cur = s->start;
    s->error = NULL;
}

void pv_grammar_state_free(pv_grammar_state *s) {
    if (!s) return;
    engine_free(&s->e);
    free(s);
}

/* Runs bytes from configuration `c`; returns the final configuration or DEAD. */
static int32_t run_bytes(pv_grammar_state *s, int32_t c, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n && c != DEAD; i++) c = trans(&s->e, c, b[i]);
    return c;
}

bool pv_grammar_state_accept(pv_grammar_state *s, const char *bytes, size_t n) {
    if (!s || (!bytes && n)) return false;
    state_maybe_gc(s);
    s->e.overflow = false;
    s->error = NULL;
    int32_t c = run_bytes(s, (int32_t)s->cur, (const uint8_t *)bytes, n);
    if (c == DEAD) {
        if (s->e.overflow)
            s->error = "grammar: too many alternative parses (stack limit reached); the grammar is too ambiguous";
        else if (s->e.oom)
            s->error = "grammar: out of memory";
        return false;
    }
    s->cur = (uint32_t)c;
    return true;
}

bool pv_grammar_state_complete(const pv_grammar_state *s) {
    if (!s) return false;
    const gcfg *c = &s->e.cfgs[s->cur];
    return c->complete && c->need == 0;
}

size_t pv_grammar_state_min_bytes(pv_grammar_state *s) {
    if (!s) return SIZE_MAX;
    uint64_t m = s->e.cfgs[s->cur].min;
    return m >= PV_GRAMMAR_INF ? SIZE_MAX : (size_t)m;
}

const char *pv_grammar_state_error(const pv_grammar_state *s) {
    return s ? s->error : NULL;
}

/* ---- byte classes for skipping whole trie subtrees ----
 * Inside a JSON string (and similar loops) the configuration after any ordinary character
 * is the configuration before it, so every token made only of such characters is allowed.
 * Each trie node records which classes of bytes occur below it; each configuration learns
 * (once) which classes lead straight back to itself; a subtree whose classes all loop is
 * marked allowed without walking it (its tokens are contiguous in depth-first order). */
enum {
    CLS_CTRL = 1,      /* 0x00..0x1F */
    CLS_QUOTE = 2,     /* '"' */
    CLS_BSLASH = 4,    /* '\\' */
    CLS_ASCII = 8,     /* other ASCII */
    CLS_NONASCII = 16, /* bytes of multi-byte characters */
    CLS_INVALID = 32   /* some token below is not UTF-8 (or ends with a cut character only) */
};

static uint8_t byte_class(uint8_t b) {
    return b < 0x20 ? CLS_CTRL : b == '"' ? CLS_QUOTE : b == '\\' ? CLS_BSLASH : b < 0x80 ? CLS_ASCII : CLS_NONASCII;
}

/* Is s[0..n) well-formed UTF-8, allowing a character cut at the end (the matcher's rules:
 * no overlongs, no surrogates, nothing above U+10FFFF)? */
static bool utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t len = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || b == 0xC0 || b == 0xC1 || b > 0xF4) return false;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (b == 0xE0) lo = 0xA0;
        else if (b == 0xED) hi = 0x9F;
        else if (b == 0xF0) lo = 0x90;
        else if (b == 0xF4) hi = 0x8F;
        for (size_t k = 1; k < len; k++) {
            if (i + k >= n) return true; /* cut at the end */
            uint8_t c = s[i + k];
            if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return false;
        }
        i += len;
    }
    return true;
}

/* The CLS_* classes whose every byte (or, for CLS_NONASCII, every whole non-ASCII
 * character) leads from configuration `id` (no partial character) straight back to it. */
static int loop_classes(gengine *e, int32_t id) {
    if (e->cfgs[id].loop >= 0) return e->cfgs[id].loop;
    int loop = 0;
    if (e->cfgs[id].need == 0) {
        static const struct {
            int cls;
            uint8_t lo, hi;
        } ranges[] = {{CLS_CTRL, 0x00, 0x1F}, {CLS_QUOTE, '"', '"'}, {CLS_BSLASH, '\\', '\\'}, {CLS_ASCII, 0x20, 0x7F}};
        for (size_t r = 0; r < PV_ARRAY_LEN(ranges); r++) {
            bool all = true;
            for (unsigned b = ranges[r].lo; b <= ranges[r].hi && all; b++) {
                if (ranges[r].cls == CLS_ASCII && (b == '"' || b == '\\')) continue;
                all = trans(e, id, (uint8_t)b) == id;
            }
            if (all) loop |= ranges[r].cls;
        }
        /* non-ASCII: each stack's set must hold all of U+0080..U+10FFFF (less surrogates)
         * or none of it, so every such character gives the same result; then one probe */
        const pv_grammar *g = e->g;
        bool uniform = true;
        uint32_t off = e->cfgs[id].off, n = e->cfgs[id].n;
        for (uint32_t i = 0; i < n && uniform; i++) {
            uint32_t csid = g->el[e->nodes[e->pool[off + i]].pos].val;
            bool any = cs_intersects(g, csid, 0x80, 0xD7FF) || cs_intersects(g, csid, 0xE000, 0x10FFFF);
            if (!any) continue;
            const pv_gcharset *c = &g->cs[csid];
            const uint32_t *r = g->ranges + 2 * (size_t)c->off;
            /* full coverage: [0x80, 0xD7FF] and [0xE000, 0x10FFFF] each inside one range */
            bool full1 = false, full2 = false;
            for (uint32_t k = 0; k < c->n; k++) {
                if (r[2 * k] <= 0x80 && r[2 * k + 1] >= 0xD7FF) full1 = true;
                if (r[2 * k] <= 0xE000 && r[2 * k + 1] >= 0x10FFFF) full2 = true;
            }
            uniform = full1 && full2;
        }
        if (uniform && n) {
            int32_t after = advance_cp(e, id, 0x80);
            if (after == id) loop |= CLS_NONASCII;
        }
    }
    if (!e->overflow && !e->oom) e->cfgs[id].loop = (int16_t)loop;
    return loop;
}

/* ---- vocabulary ---- */
enum { TOK_NEVER = 0, TOK_TEXT = 1, TOK_EOG = 2 };

struct pv_grammar_vocab {
    int32_t n_vocab;
    uint8_t *kind;       /* TOK_* per id */
    uint32_t *tok_off;   /* bytes[tok_off[id] .. tok_off[id+1]) */
    uint8_t *bytes;
    int32_t *eog;
    size_t n_eog;
    /* trie in depth-first order: node i's subtree is [i, i + t_size[i]); its children
     * are i+1, then each next sibling at child + t_size[child]. Node 0 is the root. */
    uint32_t n_trie;
    uint8_t *t_byte;
    uint32_t *t_size;
    uint32_t *t_tok_off; /* tokens ending at node i: t_toks[t_tok_off[i] .. t_tok_off[i+1]) */
    uint8_t *t_cls;      /* CLS_* bits of the bytes strictly below node i (see loop_classes) */
    int32_t *t_toks;
};

static int cmp_tok_bytes(const void *a, const void *b, void *ctx) {
    const pv_grammar_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = v->tok_off[x + 1] - v->tok_off[x], ly = v->tok_off[y + 1] - v->tok_off[y];
    int c = memcmp(v->bytes + v->tok_off[x], v->bytes + v->tok_off[y], PV_MIN(lx, ly));
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

void pv_grammar_vocab_free(pv_grammar_vocab *v) {
    if (!v) return;
    free(v->kind);
    free(v->tok_off);
    free(v->bytes);
    free(v->eog);
    free(v->t_byte);
    free(v->t_size);
    free(v->t_tok_off);
    free(v->t_toks);
    free(v->t_cls);
    free(v);
}

int32_t pv_grammar_vocab_n(const pv_grammar_vocab *v) {
    return v ? v->n_vocab : 0;
}

pv_status pv_grammar_vocab_init(const pv_tokenizer *tok, pv_grammar_vocab **out, pv_error *err) {
    if (!tok || !out) return pv_error_set(err, PV_ERR_INVALID, "grammar vocab: NULL argument");
    *out = NULL;
    int32_t n = pv_tokenizer_n_vocab(tok);
    if (n <= 0) return pv_error_set(err, PV_ERR_INVALID, "grammar vocab: empty vocabulary");
    pv_grammar_vocab *v = calloc(1, sizeof(*v));
    int32_t *order = NULL;
    uint32_t *path = NULL;
    if (!v) goto nomem;
    v->n_vocab = n;
    v->kind = calloc((size_t)n, 1);
    v->tok_off = calloc((size_t)n + 1, sizeof(uint32_t));
    v->eog = malloc((size_t)n * sizeof(int32_t));
    order = malloc((size_t)n * sizeof(int32_t));
    if (!v->kind || !v->tok_off || !v->eog || !order) goto nomem;
    size_t cap = 0, used = 0;
    char buf[1024];
    size_t n_text = 0;
    for (int32_t id = 0; id < n; id++) {
        v->tok_off[id] = (uint32_t)used;
        if (pv_tokenizer_is_eog(tok, id)) {
            v->kind[id] = TOK_EOG;
            v->eog[v->n_eog++] = id;
            continue;
        }
        if (pv_tokenizer_is_control(tok, id)) continue;
        size_t len = pv_tokenizer_piece(tok, id, buf, sizeof buf, false);
        if (len == 0 || len > sizeof buf) continue; /* empty or absurdly long: never allowed */
        if (used + len > UINT32_MAX / 2) continue;
        if (!grow((void **)&v->bytes, &cap, used + len, 1)) goto nomem;
        memcpy(v->bytes + used, buf, len);
        used += len;
        v->kind[id] = TOK_TEXT;
        order[n_text++] = id;
    }
    v->tok_off[n] = (uint32_t)used;
    qsort_r(order, n_text, sizeof(int32_t), cmp_tok_bytes, v);
    /* build the trie: nodes created in sorted order are depth-first order */
    size_t max_nodes = used + 1;
    v->t_byte = malloc(max_nodes);
    v->t_size = malloc(max_nodes * sizeof(uint32_t));
    v->t_tok_off = malloc((max_nodes + 1) * sizeof(uint32_t));
    v->t_toks = malloc((n_text + 1) * sizeof(int32_t));
    path = malloc((sizeof buf + 2) * sizeof(uint32_t));
    if (!v->t_byte || !v->t_size || !v->t_tok_off || !v->t_toks || !path) goto nomem;
    uint32_t nn = 1, depth = 0, n_toks = 0;
    v->t_byte[0] = 0;
    v->t_tok_off[0] = 0;
    path[0] = 0;
    const uint8_t *prev = NULL;
    uint32_t prev_len = 0;
    for (size_t k = 0; k < n_text; k++) {
        int32_t id = order[k];
        const uint8_t *b = v->bytes + v->tok_off[id];
        uint32_t len = v->tok_off[id + 1] - v->tok_off[id];
        uint32_t lcp = 0;
        while (prev && lcp < len && lcp < prev_len && b[lcp] == prev[lcp]) lcp++;
        while (depth > lcp) { /* close nodes off the shared prefix */
            v->t_size[path[depth]] = nn - path[depth];
            depth--;
        }
        while (depth < len) {
            v->t_byte[nn] = b[depth];
            v->t_tok_off[nn] = n_toks;
            path[++depth] = nn++;
        }
        v->t_toks[n_toks++] = id;
        prev = b;
        prev_len = len;
    }
    while (depth > 0) {
        v->t_size[path[depth]] = nn - path[depth];
        depth--;
    }
    v->t_size[0] = nn;
    v->t_tok_off[nn] = n_toks;
    v->n_trie = nn;
    /* classes below each node, bottom-up (children follow their parent in the arrays) */
    v->t_cls = calloc(nn, 1);
    if (!v->t_cls) goto nomem;
    for (uint32_t i = nn; i-- > 1;) {
        /* a token ending here that is not UTF-8 marks this node; its parent inherits */
        for (uint32_t k = v->t_tok_off[i]; k < v->t_tok_off[i + 1]; k++) {
            int32_t id = v->t_toks[k];
            if (!utf8_valid_prefix(v->bytes + v->tok_off[id], v->tok_off[id + 1] - v->tok_off[id]))
                v->t_cls[i] |= CLS_INVALID;
        }
    }
    for (uint32_t i = nn; i-- > 0;)
        for (uint32_t c = i + 1; c < i + v->t_size[i]; c += v->t_size[c])
            v->t_cls[i] |= (uint8_t)(v->t_cls[c] | byte_class(v->t_byte[c]));
    /* t_tok_off was set at creation; a node's tokens run to the next node's start */
    free(order);
    free(path);
    *out = v;
    return PV_OK;
nomem:
    free(order);
    free(path);
    pv_grammar_vocab_free(v);
    return pv_error_set(err, PV_ERR_NOMEM, "grammar vocab: out of memory");
}

/* ---- public: masking ---- */
bool pv_grammar_token_allowed(pv_grammar_state *s, const pv_grammar_vocab *v, int32_t id) {
    if (!s || !v || id < 0 || id >= v->n_vocab) return false;
    if (v->kind[id] == TOK_EOG) return pv_grammar_state_complete(s);
    if (v->kind[id] != TOK_TEXT) return false;
    state_maybe_gc(s);
    return run_bytes(s, (int32_t)s->cur, v->bytes + v->tok_off[id], v->tok_off[id + 1] - v->tok_off[id]) != DEAD;
}

bool pv_grammar_token_allowed_budget(pv_grammar_state *s, const pv_grammar_vocab *v, int32_t id,
                                     size_t max_bytes) {
    if (!s || !v || id < 0 || id >= v->n_vocab) return false;
    if (v->kind[id] == TOK_EOG) return pv_grammar_state_complete(s);
    if (v->kind[id] != TOK_TEXT) return false;
    state_maybe_gc(s);
    int32_t c = run_bytes(s, (int32_t)s->cur, v->bytes + v->tok_off[id], v->tok_off[id + 1] - v->tok_off[id]);
    return c != DEAD && (max_bytes >= PV_GRAMMAR_INF || s->e.cfgs[c].min <= (uint64_t)max_bytes);
}

bool pv_grammar_accept_token(pv_grammar_state *s, const pv_grammar_vocab *v, int32_t id) {
    if (!s || !v || id < 0 || id >= v->n_vocab) return false;
    if (v->kind[id] == TOK_EOG) return pv_grammar_state_complete(s);
    if (v->kind[id] != TOK_TEXT) return false;
    return pv_grammar_state_accept(s, (const char *)v->bytes + v->tok_off[id], v->tok_off[id + 1] - v->tok_off[id]);
}

typedef struct {
    uint32_t node, child, depth;
    int32_t cfg;
} walk_frame;

/* Depth-first walk of the trie from the state's configuration; marks tokens whose bytes are
 * accepted and, by mode:
 *   WALK_ALL: nothing more;
 *   WALK_SHORTEST: min_after + depth == min_now (prunes subtrees where that sum already
 *     exceeds it: it never decreases along a path, as one byte lowers min by at most 1);
 *   WALK_BUDGET: min_after <= budget. */
enum { WALK_ALL, WALK_SHORTEST, WALK_BUDGET };

/* An allowed-id list being filled alongside the mask (ids NULL: none wanted); n counts every
 * allowed id, also past cap, so n > cap says the list is incomplete. */
typedef struct {
    int32_t *ids;
    size_t cap, n;
} id_list;

static inline void allow(uint8_t *allowed, id_list *l, int32_t id) {
    allowed[id] = 1;
    if (l->ids && l->n < l->cap) l->ids[l->n] = id;
    l->n++;
}

static void mask_walk(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed, int mode, uint64_t budget,
                      id_list *l) {
    memset(allowed, 0, (size_t)v->n_vocab);
    state_maybe_gc(s);
    gengine *e = &s->e;
    bool complete = pv_grammar_state_complete(s);
    if (complete)
        for (size_t i = 0; i < v->n_eog; i++) allow(allowed, l, v->eog[i]);
    uint64_t min0 = e->cfgs[s->cur].min;
    if (mode == WALK_SHORTEST && (complete || min0 >= PV_GRAMMAR_INF)) return;
    walk_frame stackbuf[64];
    walk_frame *st = stackbuf;
    size_t cap = PV_ARRAY_LEN(stackbuf), sp = 0;
    st[sp++] = (walk_frame){0, 1, 0, (int32_t)s->cur};
    while (sp) {
        walk_frame *f = &st[sp - 1];
        uint32_t end = f->node + v->t_size[f->node];
        if (f->child >= end) {
            sp--;
            continue;
        }
        uint32_t c = f->child;
        f->child += v->t_size[c];
        int32_t nc = trans(e, f->cfg, v->t_byte[c]);
        if (nc == DEAD) continue;
        uint32_t depth = f->depth + 1;
        bool mark = true;
        if (mode == WALK_SHORTEST) {
            uint64_t m = pv_grammar_sat_add(e->cfgs[nc].min, depth);
            if (m > min0) continue;
            mark = m == min0;
        } else if (mode == WALK_BUDGET) {
            mark = e->cfgs[nc].min <= budget;
        }
        if (mark)
            for (uint32_t k = v->t_tok_off[c]; k < v->t_tok_off[c + 1]; k++) allow(allowed, l, v->t_toks[k]);
        if (v->t_size[c] > 1) {
            /* a subtree made only of bytes that loop back to nc: all its tokens are allowed
             * (under a budget too when it leaves room for a cut character: need <= 3) */
            if (mode != WALK_SHORTEST && e->cfgs[nc].need == 0 &&
                (mode == WALK_ALL || pv_grammar_sat_add(e->cfgs[nc].min, 3) <= budget) &&
                (v->t_cls[c] & ~loop_classes(e, nc)) == 0) {
                for (uint32_t k = v->t_tok_off[c + 1]; k < v->t_tok_off[c + v->t_size[c]]; k++)
                    allow(allowed, l, v->t_toks[k]);
                continue;
            }
            if (sp == cap) {
                size_t ncap = cap * 2;
                walk_frame *q = st == stackbuf ? malloc(ncap * sizeof(walk_frame)) : realloc(st, ncap * sizeof(walk_frame));
                if (!q) break; /* out of memory: the mask stays conservative (fewer tokens) */
                if (st == stackbuf) memcpy(q, stackbuf, sizeof stackbuf);
                st = q;
                cap = ncap;
            }
            st[sp++] = (walk_frame){c, c + 1, depth, nc};
        }
    }
    if (st != stackbuf) free(st);
}

void pv_grammar_mask(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed) {
    if (!s || !v || !allowed) return;
    id_list l = {0};
    mask_walk(s, v, allowed, WALK_ALL, 0, &l);
}

void pv_grammar_mask_shortest(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed) {
    if (!s || !v || !allowed) return;
    id_list l = {0};
    mask_walk(s, v, allowed, WALK_SHORTEST, 0, &l);
}

void pv_grammar_mask_budget(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed, size_t max_bytes) {
    pv_grammar_mask_budget_list(s, v, allowed, max_bytes, NULL, 0);
}

size_t pv_grammar_mask_budget_list(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed,
                                   size_t max_bytes, int32_t *ids, size_t cap) {
    if (!s || !v || !allowed) return 0;
    id_list l = {ids, cap, 0};
    mask_walk(s, v, allowed, WALK_BUDGET, max_bytes >= PV_GRAMMAR_INF ? PV_GRAMMAR_INF : (uint64_t)max_bytes, &l);
    return l.n;
}
