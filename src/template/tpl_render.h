/* tpl_render.h — the renderer's private runtime: one pv_tpl_rt per render call holds the
 * arena (all values and buffers of the render; freed at once at the end), the error exit
 * (errors longjmp back to pv_template_render, which is safe because nothing outside the arena
 * is allocated while rendering), the work counter and the current source position used to
 * prefix error messages with "line L, column C". Shared by tpl_value.c and tpl_render.c. */
#ifndef PV_TPL_RENDER_H
#define PV_TPL_RENDER_H

#include <setjmp.h>

#include "template/tpl_internal.h"

typedef struct pv_tpl_frame pv_tpl_frame;

typedef struct pv_tpl_rt {
    pv_tpl_arena arena;
    jmp_buf jb;
    pv_error *err;
    pv_status status;
    uint64_t ops;
    int call_depth;
    int line, col; /* position of the node being evaluated */
    pv_tpl_val globals;    /* the context as a dict (strings point into the borrowed JSON) */
} pv_tpl_rt;

typedef struct {
    char *p;
    size_t n, cap;
} pv_tpl_sb;

/* Errors: never return. fail_status prefixes "line L, column C: " (current position) unless
 * st is PV_ERR_INVALID (raise_exception: the message exactly). */
_Noreturn void pv_tpl_fail_status(pv_tpl_rt *r, pv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void *pv_tpl_alloc(pv_tpl_rt *r, size_t n);                 /* zeroed; fails the render */
void *pv_tpl_alloc_array(pv_tpl_rt *r, size_t n, size_t sz); /* overflow-checked */

void pv_tpl_sb_put(pv_tpl_rt *r, pv_tpl_sb *b, const char *s, size_t n);
void pv_tpl_sb_puts(pv_tpl_rt *r, pv_tpl_sb *b, const char *s);
pv_tpl_val pv_tpl_sb_value(pv_tpl_sb *b);

pv_tpl_val pv_tpl_str(const char *s, size_t n);
pv_tpl_val pv_tpl_int(int64_t i);
pv_tpl_val pv_tpl_float(double f);
pv_tpl_val pv_tpl_bool(bool b);
pv_tpl_val pv_tpl_none(void);
pv_tpl_val pv_tpl_undef(const char *hint);
pv_tpl_val pv_tpl_new_list(pv_tpl_rt *r, size_t cap);
void pv_tpl_list_push(pv_tpl_rt *r, pv_tpl_list *l, pv_tpl_val x);
pv_tpl_val pv_tpl_new_dict(pv_tpl_rt *r);
pv_tpl_val *pv_tpl_dict_get(const pv_tpl_dict *d, const pv_tpl_val *key);
pv_tpl_val *pv_tpl_dict_get_str(const pv_tpl_dict *d, const char *key);
void pv_tpl_dict_set(pv_tpl_rt *r, pv_tpl_dict *d, pv_tpl_val key, pv_tpl_val val);
pv_tpl_val pv_tpl_from_json(pv_tpl_rt *r, const json_t *j, int depth);

const char *pv_tpl_type_name(const pv_tpl_val *v);
bool pv_tpl_truthy(const pv_tpl_val *v);
void pv_tpl_fmt_float(double f, char *out, size_t cap);
void pv_tpl_repr(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *v, int depth);
void pv_tpl_to_str(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *v);
pv_tpl_val pv_tpl_str_of(pv_tpl_rt *r, const pv_tpl_val *v);

typedef struct {
    const char *indent; /* NULL: no indentation */
    size_t indent_len;
    const char *item_sep, *key_sep;
    size_t item_sep_len, key_sep_len;
    bool sort_keys;
    bool ensure_ascii; /* HF's tojson defaults to false */
} pv_tpl_json_opts;
void pv_tpl_json(pv_tpl_rt *r, pv_tpl_sb *b, const pv_tpl_val *v, const pv_tpl_json_opts *o, int level);

bool pv_tpl_eq(const pv_tpl_val *a, const pv_tpl_val *b);
int pv_tpl_cmp(pv_tpl_rt *r, const pv_tpl_val *a, const pv_tpl_val *b);

#endif
