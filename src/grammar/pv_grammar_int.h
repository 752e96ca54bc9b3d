/* pv_grammar_int.h — the compiled grammar's layout, shared by the GBNF compiler (gbnf.c) and
 * the matcher (matcher.c); not part of the module's interface. A grammar is one flat array
 * of elements: rule r's alternatives start at rule_start[r], each is a run of REF/CHARSET
 * elements ended by ALT (another alternative follows) or END (the rule's last). Character
 * sets are normalized at compile time to sorted, disjoint, positive code-point ranges (a
 * negated class is stored as its complement), with a bitmap for ASCII. */
#ifndef PV_GRAMMAR_INT_H
#define PV_GRAMMAR_INT_H

#include "pv_grammar.h"

enum { PV_GEL_END = 0, PV_GEL_ALT = 1, PV_GEL_REF = 2, PV_GEL_CHARSET = 3 };

typedef struct pv_gel {
    uint32_t type; /* PV_GEL_* */
    uint32_t val;  /* REF: rule id; CHARSET: charset id */
} pv_gel;

typedef struct pv_gcharset {
    uint32_t off, n;     /* ranges[2*off .. 2*(off+n)) as lo,hi pairs (inclusive) */
    uint64_t ascii[2];   /* bit c set when code point c < 128 is in the set */
    uint32_t min_bytes;  /* UTF-8 length of the smallest member (0 for an empty set) */
} pv_gcharset;

/* "Infinite" byte count (no completion); sums saturate here. */
#define PV_GRAMMAR_INF ((uint64_t)1 << 62)
static inline uint64_t pv_grammar_sat_add(uint64_t a, uint64_t b) {
    uint64_t s = a + b;
    return s >= PV_GRAMMAR_INF ? PV_GRAMMAR_INF : s;
}

struct pv_grammar {
    pv_gel *el;
    size_t n_el;
    uint32_t n_rules;
    uint32_t *rule_start;  /* per rule: index of its first element */
    char **rule_names;     /* per rule (generated ones are "<parent>_<n>") */
    pv_gcharset *cs;
    uint32_t n_cs;
    uint32_t *ranges;
    uint32_t root;
    uint64_t *rule_min;    /* per rule: fewest bytes of a sentence (INF: none) */
    uint64_t *suffix_min;  /* per element: fewest bytes from it to its alternative's end */
};

static inline bool pv_gel_is_end(const pv_gel *e) {
    return e->type == PV_GEL_END || e->type == PV_GEL_ALT;
}

#endif /* PV_GRAMMAR_INT_H */
