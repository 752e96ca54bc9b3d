/* tpl_internal.h — private types of the template engine shared by its three files: the
 * arena allocator (tpl_value.c), the syntax tree built by the parser (tpl_parse.c) and the
 * runtime values, with Python's semantics, used by the renderer (tpl_render.c). Nothing here
 * is exported outside src/template (the functions carry the pv_tpl_ prefix so they do not
 * collide with other modules in the static engine library). */
#ifndef PV_TPL_INTERNAL_H
#define PV_TPL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "template/pv_template.h"

/* ---- arena: bump allocation in malloc'd chunks, freed all at once; a byte cap bounds it ---- */
typedef struct pv_tpl_chunk pv_tpl_chunk;
typedef struct pv_tpl_arena {
    pv_tpl_chunk *head;
    size_t used_total; /* bytes obtained from malloc */
    size_t cap;        /* 0 = unlimited */
} pv_tpl_arena;

/* Returns zeroed memory owned by the arena, NULL when malloc fails or the cap is reached. */
void *pv_tpl_arena_alloc(pv_tpl_arena *a, size_t n);
void pv_tpl_arena_free(pv_tpl_arena *a);

/* ---- values (Python objects as jinja2 sees them) ---- */
typedef enum {
    TV_UNDEF, /* jinja2 Undefined: falsy, prints as "", errors when used; s = hint message */
    TV_NONE,
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STR,
    TV_LIST, /* list or tuple (is_tuple) */
    TV_DICT,
    TV_NS,     /* namespace(): a mutable dict of attributes */
    TV_MACRO,  /* macro: u.macro is its statement, aux its closure frame */
    TV_FUNC,   /* global function: u.i indexes the builtin-function table */
    TV_METHOD, /* bound method: aux points at the receiver (a pv_tpl_val), s is the method name */
    TV_LOOP,   /* a for loop's `loop` object: aux points at its state */
} pv_tpl_kind;

typedef struct pv_tpl_list pv_tpl_list;
typedef struct pv_tpl_dict pv_tpl_dict;
struct pv_tpl_stmt;

typedef struct pv_tpl_val {
    uint8_t k;
    bool is_tuple;
    size_t n; /* string length in bytes */
    union {
        bool b;
        int64_t i;
        double f;
        const char *s;
        pv_tpl_list *l;
        pv_tpl_dict *d;
        const struct pv_tpl_stmt *macro;
    } u;
    void *aux;
} pv_tpl_val;

struct pv_tpl_list {
    pv_tpl_val *v;
    size_t n, cap;
};
struct pv_tpl_dict {
    pv_tpl_val *key;
    pv_tpl_val *val;
    size_t n, cap;
};

/* ---- syntax tree ---- */
typedef enum {
    E_LIT, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_BIN, E_NEG, E_POS,
    E_AND, E_OR, E_NOT, E_COND, E_LIST, E_TUPLE, E_DICT, E_CONCAT, E_CMP
} pv_tpl_ekind;

typedef enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN
} pv_tpl_op;

typedef struct pv_tpl_expr {
    uint8_t kind, op;
    bool negate; /* `is not` */
    int line, col;
    struct pv_tpl_expr *a, *b, *c; /* operands; slice: a=obj, b/c/args[0]=start/stop/step */
    struct pv_tpl_expr **args;     /* call/filter/test arguments, list items, dict values */
    const char **kw;               /* keyword names for args (NULL entry = positional) */
    struct pv_tpl_expr **keys;     /* dict literal keys; E_CMP: extra operands */
    uint8_t *ops;                  /* E_CMP: operators between operands */
    int nargs;
    const char *name; /* names, attributes, filters, tests */
    pv_tpl_val lit;
} pv_tpl_expr;

typedef enum {
    S_TEXT, S_OUTPUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO, S_BREAK, S_CONTINUE, S_BODY,
    S_CALLBLOCK, S_FILTERBLOCK
} pv_tpl_skind;

typedef struct pv_tpl_stmt {
    uint8_t kind;
    int line, col;
    const char *text; /* S_TEXT */
    size_t len;
    pv_tpl_expr *e;    /* output / if condition / for iterable / set value / call expr */
    pv_tpl_expr *cond; /* for ... if cond */
    const char **names; /* for/set targets, macro parameters */
    int nnames;
    const char *attr;          /* set ns.attr: names[0] is ns */
    pv_tpl_expr **defaults;    /* macro parameter defaults (NULL = required) */
    const char *name;          /* macro name, filter-block filter name */
    struct pv_tpl_stmt *body, *else_body;
    struct pv_tpl_stmt *next;
} pv_tpl_stmt;

struct pv_template {
    pv_tpl_arena arena; /* owns the tree and the normalized source */
    pv_tpl_stmt *root;
};

/* tpl_parse.c */
pv_status pv_tpl_parse_source(pv_template *t, const char *src, size_t len, pv_error *err);

#endif
