/* gguf.c — GGUF v2/v3 reader. The whole file is mapped read-only and parsed in place:
 * strings and scalar arrays point into the mapping, only the kv table, the tensor table
 * and the element tables of string/nested arrays are allocated. The file is untrusted, so
 * every read goes through a cursor that checks `n <= size - pos` before touching a byte,
 * every count is compared with the bytes left before anything is allocated for it, and
 * every size or offset computed from file values uses overflow-checked arithmetic. Tables
 * grow as entries are actually parsed (never pre-sized from a header count), so a forged
 * count cannot make us allocate more than a small multiple of the file size. Each error
 * message names the file, the field being parsed and the problem. */
#include "pv_gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF is read in place as little-endian");

/* Arrays of arrays deeper than this are refused: real files nest at most 2 levels, and a
 * bound keeps the recursive parser's stack use small on forged input. */
#define GGUF_MAX_DEPTH 8
/* Smallest encoding of a string (its u64 length) and of an array (u32 type + u64 count):
 * the lower bounds used to reject element counts that cannot fit in the bytes left. */
#define GGUF_MIN_STRING_BYTES 8u
#define GGUF_MIN_ARRAY_BYTES 12u
/* Smallest kv (key length, empty key, u32 type, u8 value) and tensor info (name length,
 * empty name, n_dims, one dim, type, offset). */
#define GGUF_MIN_KV_BYTES 13u
#define GGUF_MIN_TENSOR_BYTES 32u

/* The reader's private state behind pv_weights.impl: it owns the tables and, when the
 * file was opened by pv_gguf_open, the mapping. */
typedef struct {
    pv_kv *kv;
    uint64_t kv_cap;
    pv_tensor_desc *tensors;
    uint64_t tensors_cap;
    uint64_t *offsets; /* file offsets of tensor data (relative), only during parsing */
    uint64_t offsets_cap;
    uint64_t data_offset;
    bool owns_map;
} gguf_impl;

/* A bounds-checked read position, plus what is being parsed for error messages: `field`
 * names the kv or tensor, and idx[0..depth) the array element indices inside a value. */
typedef struct {
    const char *path;
    const uint8_t *base;
    uint64_t size;
    uint64_t pos; /* invariant: pos <= size */
    pv_error *err;
    char field[192];
    int depth;
    uint64_t idx[GGUF_MAX_DEPTH];
} gguf_cursor;

/* ---- messages ---- */

/* Writes a file-provided name quoted, at most 64 bytes, control bytes shown as '?', so a
 * forged name cannot garble a message. */
static void name_fmt(char *dst, size_t cap, pv_str s) {
    size_t o = 0;
    uint64_t n = s.len > 64 ? 64 : s.len;
    if (cap < 8) {
        if (cap) dst[0] = '\0';
        return;
    }
    dst[o++] = '\'';
    for (uint64_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        dst[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (s.len > n && o + 5 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o++] = '\'';
    dst[o] = '\0';
}

/* Fails the parse: "<path>: <field>[ element[i][j]]: <problem>". Returns st. */
static pv_status cur_fail(gguf_cursor *c, pv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static pv_status cur_fail(gguf_cursor *c, pv_status st, const char *fmt, ...) {
    char where[256];
    size_t o = (size_t)snprintf(where, sizeof where, "%s", c->field);
    for (int d = 0; d < c->depth && o < sizeof where; d++) {
        o += (size_t)snprintf(where + o, sizeof where - o,
                              d == 0 ? " element[%" PRIu64 "]" : "[%" PRIu64 "]", c->idx[d]);
    }
    char problem[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return pv_error_set(c->err, st, "%s: %s: %s", c->path, where, problem);
}

/* Appends a note to the message of an error already set (within pv_error.msg). */
static void err_append(pv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err_append(pv_error *err, const char *fmt, ...) {
    if (!err) return;
    size_t n = strlen(err->msg);
    if (n + 1 >= sizeof err->msg) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - n, fmt, ap);
    va_end(ap);
}

/* ---- bounds-checked reads ---- */

static pv_status cur_need(gguf_cursor *c, uint64_t n) {
    if (n > c->size - c->pos) {
        return cur_fail(c, PV_ERR_TRUNCATED,
                        "truncated: needs %" PRIu64 " bytes at offset %" PRIu64 ", file is %" PRIu64
                        " bytes",
                        n, c->pos, c->size);
    }
    return PV_OK;
}

static pv_status cur_u32(gguf_cursor *c, uint32_t *v) {
    pv_status st = cur_need(c, 4);
    if (st != PV_OK) return st;
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return PV_OK;
}

static pv_status cur_u64(gguf_cursor *c, uint64_t *v) {
    pv_status st = cur_need(c, 8);
    if (st != PV_OK) return st;
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return PV_OK;
}

/* A GGUF string: u64 length then the bytes (no NUL). *s points into the mapping. */
static pv_status cur_str(gguf_cursor *c, pv_str *s) {
    uint64_t len;
    pv_status st = cur_u64(c, &len);
    if (st != PV_OK) return st;
    if ((st = cur_need(c, len)) != PV_OK) return st;
    s->ptr = (const char *)(c->base + c->pos);
    s->len = len;
    c->pos += len;
    return PV_OK;
}

/* Grows a table to hold at least `need` entries (doubling). Returns the new pointer, or
 * NULL on overflow/allocation failure (then `p` is untouched and still owned by the
 * caller). New entries are zeroed. */
static void *table_grow(void *p, uint64_t *cap, uint64_t need, size_t elem) {
    if (need <= *cap) return p;
    uint64_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > UINT64_MAX / 2) return NULL;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem) return NULL;
    uint8_t *q = realloc(p, (size_t)(nc * elem));
    if (!q) return NULL;
    memset(q + *cap * elem, 0, (size_t)((nc - *cap) * elem));
    *cap = nc;
    return q;
}

/* ---- values ---- */

/* Frees what parse_value allocated under v (element tables of STRING/ARRAY arrays). */
static void value_free(pv_value *v) {
    if (v->type != PV_VAL_ARRAY || !v->arr.items) return;
    pv_value *items = (pv_value *)v->arr.items;
    for (uint64_t i = 0; i < v->arr.n; i++)
        value_free(&items[i]);
    free(items);
    v->arr.items = NULL;
}

/* Decodes a fixed-size scalar of `type` from `p` into the value's union member. This is
 * the one place that maps value types to union members. */
static void scalar_decode(uint32_t type, const uint8_t *p, pv_value *out) {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    float f32;
    double f64;
    switch (type) {
    case PV_VAL_U8:
        memcpy(&u8, p, 1);
        out->u = u8;
        break;
    case PV_VAL_I8:
        memcpy(&i8, p, 1);
        out->i = i8;
        break;
    case PV_VAL_U16:
        memcpy(&u16, p, 2);
        out->u = u16;
        break;
    case PV_VAL_I16:
        memcpy(&i16, p, 2);
        out->i = i16;
        break;
    case PV_VAL_U32:
        memcpy(&u32, p, 4);
        out->u = u32;
        break;
    case PV_VAL_I32:
        memcpy(&i32, p, 4);
        out->i = i32;
        break;
    case PV_VAL_F32:
        memcpy(&f32, p, 4);
        out->f = f32;
        break;
    case PV_VAL_BOOL: out->b = p[0] != 0; break;
    case PV_VAL_U64: memcpy(&out->u, p, 8); break;
    case PV_VAL_I64: memcpy(&out->i, p, 8); break;
    case PV_VAL_F64:
        memcpy(&f64, p, 8);
        out->f = f64;
        break;
    default: break;
    }
}

static pv_status parse_value(gguf_cursor *c, uint32_t type, pv_value *out);

/* An array value: u32 element type, u64 count, elements. The count is checked against the
 * bytes left (at the element type's minimum size) before anything is allocated. Scalar
 * elements stay in place (arr.raw); string/array elements get a calloc'ed table, attached
 * to `out` before the elements are parsed so that a failure part-way frees cleanly. */
static pv_status parse_array(gguf_cursor *c, pv_value *out) {
    uint32_t et;
    uint64_t n;
    pv_status st = cur_u32(c, &et);
    if (st != PV_OK) return st;
    if (et >= PV_VAL_COUNT)
        return cur_fail(c, PV_ERR_FORMAT, "unknown array element type %" PRIu32, et);
    if ((st = cur_u64(c, &n)) != PV_OK) return st;
    out->arr.type = (pv_val_type)et;
    out->arr.n = 0;
    out->arr.raw = NULL;
    out->arr.items = NULL;
    size_t esz = pv_val_type_size(et);
    uint64_t min = esz ? esz : (et == PV_VAL_STRING ? GGUF_MIN_STRING_BYTES : GGUF_MIN_ARRAY_BYTES);
    uint64_t left = c->size - c->pos;
    if (n > left / min) {
        return cur_fail(c, PV_ERR_TRUNCATED,
                        "truncated or corrupt: array of %" PRIu64
                        " %s elements cannot fit in the %" PRIu64 " bytes left at offset %" PRIu64
                        " (file is %" PRIu64 " bytes)",
                        n, pv_val_type_name(et), left, c->pos, c->size);
    }
    if (esz) {
        out->arr.raw = c->base + c->pos;
        out->arr.n = n;
        c->pos += n * esz; /* no overflow: n * esz <= left */
        return PV_OK;
    }
    if (et == PV_VAL_ARRAY && c->depth + 1 >= GGUF_MAX_DEPTH) {
        return cur_fail(c, PV_ERR_UNSUPPORTED, "arrays nested deeper than %d levels",
                        GGUF_MAX_DEPTH);
    }
    if (n == 0) return PV_OK;
    pv_value *items = calloc((size_t)n, sizeof *items); /* n <= size/8: no overflow */
    if (!items) return cur_fail(c, PV_ERR_NOMEM, "out of memory for %" PRIu64 " array elements", n);
    out->arr.items = items;
    out->arr.n = n;
    c->depth++;
    for (uint64_t i = 0; i < n && st == PV_OK; i++) {
        c->idx[c->depth - 1] = i;
        st = parse_value(c, et, &items[i]);
    }
    c->depth--;
    return st;
}

/* Parses one value of a known type (type < PV_VAL_COUNT) into *out (owned by the caller,
 * released with value_free). */
static pv_status parse_value(gguf_cursor *c, uint32_t type, pv_value *out) {
    out->type = (pv_val_type)type;
    if (type == PV_VAL_STRING) return cur_str(c, &out->s);
    if (type == PV_VAL_ARRAY) return parse_array(c, out);
    size_t sz = pv_val_type_size(type);
    pv_status st = cur_need(c, sz);
    if (st != PV_OK) return st;
    scalar_decode(type, c->base + c->pos, out);
    c->pos += sz;
    return PV_OK;
}

/* ---- duplicate detection ----
 * Sorting (name, index) pairs finds duplicates in O(n log n): a forged file with many
 * entries cannot make this quadratic. */
typedef struct {
    pv_str s;
    uint64_t idx;
} name_ref;

static int name_ref_cmp(const void *pa, const void *pb) {
    const name_ref *a = pa, *b = pb;
    uint64_t n = a->s.len < b->s.len ? a->s.len : b->s.len;
    int r = n ? memcmp(a->s.ptr, b->s.ptr, (size_t)n) : 0;
    if (r) return r;
    if (a->s.len != b->s.len) return a->s.len < b->s.len ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

/* Finds the earliest entry whose name already occurred: *dup is its index, *first the
 * earlier one. `names` is read with the given stride (pv_kv or pv_tensor_desc tables).
 * Returns 1 if found, 0 if none, -1 on allocation failure. */
static int find_duplicate(const void *table, size_t stride, uint64_t n, uint64_t *dup,
                          uint64_t *first) {
    if (n < 2) return 0;
    name_ref *refs = malloc((size_t)n * sizeof *refs);
    if (!refs) return -1;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(&refs[i].s, (const uint8_t *)table + i * stride, sizeof(pv_str));
        refs[i].idx = i;
    }
    qsort(refs, (size_t)n, sizeof *refs, name_ref_cmp);
    int found = 0;
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && refs[j].s.len == refs[i].s.len &&
               (refs[i].s.len == 0 ||
                memcmp(refs[j].s.ptr, refs[i].s.ptr, (size_t)refs[i].s.len) == 0))
            j++;
        /* within a run of equal names the indices are ascending: [i] first, [i+1] the
         * earliest repeat */
        if (j > i + 1 && (!found || refs[i + 1].idx < *dup)) {
            found = 1;
            *dup = refs[i + 1].idx;
            *first = refs[i].idx;
        }
        i = j;
    }
    free(refs);
    return found;
}

/* ---- sections ---- */

static pv_status parse_header(gguf_cursor *c, pv_weights *w, uint64_t *n_tensors, uint64_t *n_kv) {
    uint32_t magic, version;
    snprintf(c->field, sizeof c->field, "header magic");
    pv_status st = cur_u32(c, &magic);
    if (st != PV_OK) return st;
    if (magic != PV_GGUF_MAGIC) {
        const uint8_t *b = c->base;
        char txt[5];
        for (int i = 0; i < 4; i++)
            txt[i] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char)b[i] : '.';
        txt[4] = '\0';
        return cur_fail(c, PV_ERR_FORMAT,
                        "not a GGUF file (magic 0x%02x%02x%02x%02x '%s', expected 'GGUF')", b[0],
                        b[1], b[2], b[3], txt);
    }
    snprintf(c->field, sizeof c->field, "header version");
    if ((st = cur_u32(c, &version)) != PV_OK) return st;
    if (version == 1) {
        return cur_fail(c, PV_ERR_UNSUPPORTED,
                        "GGUF version 1 is not supported (v1 uses 32-bit counts and lengths; "
                        "re-convert the model with a current llama.cpp)");
    }
    uint32_t swapped = __builtin_bswap32(version);
    if (swapped == 2 || swapped == 3) {
        return cur_fail(c, PV_ERR_UNSUPPORTED,
                        "big-endian GGUF (version %" PRIu32 " byte-swapped) is not supported",
                        swapped);
    }
    if (version != 2 && version != 3) {
        return cur_fail(c, PV_ERR_UNSUPPORTED,
                        "unsupported GGUF version %" PRIu32 " (supported: 2, 3)", version);
    }
    w->version = version;
    snprintf(c->field, sizeof c->field, "header n_tensors");
    if ((st = cur_u64(c, n_tensors)) != PV_OK) return st;
    snprintf(c->field, sizeof c->field, "header n_kv");
    return cur_u64(c, n_kv);
}

static pv_status parse_kvs(gguf_cursor *c, pv_weights *w, gguf_impl *im, uint64_t n_kv) {
    char nm[80];
    pv_status st;
    for (uint64_t i = 0; i < n_kv; i++) {
        pv_str key;
        uint32_t type;
        snprintf(c->field, sizeof c->field, "kv[%" PRIu64 "] key", i);
        if ((st = cur_str(c, &key)) != PV_OK) return st;
        name_fmt(nm, sizeof nm, key);
        snprintf(c->field, sizeof c->field, "kv[%" PRIu64 "] key %s", i, nm);
        if ((st = cur_u32(c, &type)) != PV_OK) return st;
        if (type >= PV_VAL_COUNT)
            return cur_fail(c, PV_ERR_FORMAT, "unknown value type %" PRIu32, type);
        /* each kv consumed at least 12 bytes, so the table stays proportional to the file */
        pv_kv *grown = table_grow(im->kv, &im->kv_cap, w->n_kv + 1, sizeof *im->kv);
        if (!grown) return cur_fail(c, PV_ERR_NOMEM, "out of memory for the kv table");
        im->kv = grown;
        w->kv = grown;
        pv_kv *kv = &im->kv[w->n_kv++]; /* counted now so a failing value is freed */
        kv->key = key;
        if ((st = parse_value(c, type, &kv->value)) != PV_OK) return st;
    }
    uint64_t dup = 0, first = 0;
    int r = find_duplicate(im->kv, sizeof(pv_kv), w->n_kv, &dup, &first);
    if (r < 0) return cur_fail(c, PV_ERR_NOMEM, "out of memory checking duplicate keys");
    if (r > 0) {
        name_fmt(nm, sizeof nm, im->kv[dup].key);
        snprintf(c->field, sizeof c->field, "kv[%" PRIu64 "] key %s", dup, nm);
        return cur_fail(c, PV_ERR_DUPLICATE, "duplicate key (first at kv[%" PRIu64 "])", first);
    }
    return PV_OK;
}

/* general.alignment: optional; when present an unsigned integer, nonzero power of two. */
static pv_status parse_alignment(gguf_cursor *c, pv_weights *w) {
    w->alignment = PV_GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        if (!pv_str_eq(w->kv[i].key, "general.alignment")) continue;
        const pv_value *v = &w->kv[i].value;
        snprintf(c->field, sizeof c->field, "kv[%" PRIu64 "] key 'general.alignment'", i);
        if (v->type != PV_VAL_U8 && v->type != PV_VAL_U16 && v->type != PV_VAL_U32 &&
            v->type != PV_VAL_U64) {
            return cur_fail(c, PV_ERR_FORMAT,
                            "general.alignment must be an unsigned integer, got %s",
                            pv_val_type_name(v->type));
        }
        if (v->u == 0 || (v->u & (v->u - 1)) != 0) {
            return cur_fail(c, PV_ERR_FORMAT,
                            "alignment must be a nonzero power of two, got %" PRIu64, v->u);
        }
        w->alignment = v->u;
        return PV_OK;
    }
    return PV_OK;
}

/* One tensor info: name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset. Checks the
 * shape and type and computes nbytes; the offset is checked later, once the data section
 * start is known. */
static pv_status parse_tensor_info(gguf_cursor *c, pv_tensor_desc *t, uint64_t *offset) {
    pv_status st;
    uint32_t nd, type;
    if ((st = cur_u32(c, &nd)) != PV_OK) return st;
    if (nd == 0 || nd > PV_MAX_DIMS) {
        return cur_fail(c, PV_ERR_FORMAT, "n_dims %" PRIu32 " is out of range (must be 1..%d)", nd,
                        PV_MAX_DIMS);
    }
    t->n_dims = (int)nd;
    for (int d = 0; d < PV_MAX_DIMS; d++)
        t->ne[d] = 1;
    uint64_t nelem = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if ((st = cur_u64(c, &ne)) != PV_OK) return st;
        if (ne == 0) return cur_fail(c, PV_ERR_FORMAT, "dimension %" PRIu32 " is 0", d);
        if (ne > (uint64_t)INT64_MAX) {
            return cur_fail(c, PV_ERR_OVERFLOW,
                            "dimension %" PRIu32 " is %" PRIu64 ", above INT64_MAX", d, ne);
        }
        t->ne[d] = (int64_t)ne;
        if (pv_mul_overflow_u64(nelem, ne, &nelem) || nelem > (uint64_t)INT64_MAX) overflow = true;
    }
    if (overflow) return cur_fail(c, PV_ERR_OVERFLOW, "dimension product overflows");
    if ((st = cur_u32(c, &type)) != PV_OK) return st;
    const pv_type_traits *tr = pv_type_traits_get(type);
    if (!tr) return cur_fail(c, PV_ERR_FORMAT, "unknown tensor type %" PRIu32, type);
    if (tr->type_size == 0 || tr->blck_size <= 0) {
        return cur_fail(c, PV_ERR_UNSUPPORTED,
                        "tensor type %" PRIu32 " (%s) is obsolete and has no block size", type,
                        tr->name);
    }
    t->type = (pv_type)type;
    if (t->ne[0] % tr->blck_size != 0) {
        return cur_fail(c, PV_ERR_FORMAT,
                        "ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                        t->ne[0], tr->name, tr->blck_size);
    }
    uint64_t nbytes = (uint64_t)(t->ne[0] / tr->blck_size);
    bool ovf = pv_mul_overflow_u64(nbytes, tr->type_size, &nbytes);
    for (int d = 1; d < PV_MAX_DIMS; d++)
        ovf = ovf || pv_mul_overflow_u64(nbytes, (uint64_t)t->ne[d], &nbytes);
    if (ovf) return cur_fail(c, PV_ERR_OVERFLOW, "byte size overflows (%s)", tr->name);
    t->nbytes = nbytes;
    return cur_u64(c, offset);
}

static pv_status parse_tensors(gguf_cursor *c, pv_weights *w, gguf_impl *im, uint64_t n_tensors) {
    char nm[80];
    pv_status st;
    for (uint64_t i = 0; i < n_tensors; i++) {
        pv_str name;
        snprintf(c->field, sizeof c->field, "tensor[%" PRIu64 "] name", i);
        if ((st = cur_str(c, &name)) != PV_OK) return st;
        name_fmt(nm, sizeof nm, name);
        snprintf(c->field, sizeof c->field, "tensor[%" PRIu64 "] %s", i, nm);
        /* each tensor info is at least 32 bytes, so the tables stay proportional to the file */
        pv_tensor_desc *grown =
            table_grow(im->tensors, &im->tensors_cap, w->n_tensors + 1, sizeof *grown);
        if (!grown) return cur_fail(c, PV_ERR_NOMEM, "out of memory for the tensor table");
        im->tensors = grown;
        w->tensors = grown;
        uint64_t *og = table_grow(im->offsets, &im->offsets_cap, w->n_tensors + 1, sizeof *og);
        if (!og) return cur_fail(c, PV_ERR_NOMEM, "out of memory for the tensor table");
        im->offsets = og;
        pv_tensor_desc *t = &im->tensors[w->n_tensors];
        t->name = name;
        if ((st = parse_tensor_info(c, t, &im->offsets[w->n_tensors])) != PV_OK) return st;
        w->n_tensors++;
    }
    uint64_t dup = 0, first = 0;
    int r = find_duplicate(im->tensors, sizeof(pv_tensor_desc), w->n_tensors, &dup, &first);
    if (r < 0) return cur_fail(c, PV_ERR_NOMEM, "out of memory checking duplicate tensor names");
    if (r > 0) {
        name_fmt(nm, sizeof nm, im->tensors[dup].name);
        snprintf(c->field, sizeof c->field, "tensor[%" PRIu64 "] %s", dup, nm);
        return cur_fail(c, PV_ERR_DUPLICATE, "duplicate tensor name (first at tensor[%" PRIu64 "])",
                        first);
    }
    return PV_OK;
}

/* The data section starts at the first multiple of the alignment after the tensor infos;
 * every tensor offset is relative to it, must be aligned, and its bytes must lie in the
 * file. Sets each tensor's data pointer. */
static pv_status place_tensors(gguf_cursor *c, pv_weights *w, gguf_impl *im) {
    uint64_t a = w->alignment;
    uint64_t rem = c->pos % a;
    uint64_t data_start = c->pos;
    bool start_ovf = rem != 0 && pv_add_overflow_u64(c->pos, a - rem, &data_start);
    im->data_offset = start_ovf ? UINT64_MAX : data_start;
    char nm[80];
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        pv_tensor_desc *t = &im->tensors[i];
        uint64_t off = im->offsets[i];
        name_fmt(nm, sizeof nm, t->name);
        snprintf(c->field, sizeof c->field, "tensor[%" PRIu64 "] %s", i, nm);
        if (off % a != 0) {
            return cur_fail(c, PV_ERR_FORMAT,
                            "offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, off,
                            a);
        }
        uint64_t start, end;
        if (start_ovf || pv_add_overflow_u64(data_start, off, &start) ||
            pv_add_overflow_u64(start, t->nbytes, &end) || end > c->size) {
            return cur_fail(c, PV_ERR_TRUNCATED,
                            "data past end of file (%" PRIu64 " bytes at data offset %" PRIu64
                            " + %" PRIu64 ", file is %" PRIu64 " bytes)",
                            t->nbytes, start_ovf ? UINT64_MAX : data_start, off, c->size);
        }
        t->data = c->base + start;
    }
    return PV_OK;
}

/* ---- public ---- */

static void gguf_free_impl(pv_weights *w) {
    gguf_impl *im = w->impl;
    if (!im) return;
    for (uint64_t i = 0; i < w->n_kv; i++)
        value_free(&im->kv[i].value);
    free(im->kv);
    free(im->tensors);
    free(im->offsets);
    if (im->owns_map && w->map && w->map_size) munmap((void *)w->map, (size_t)w->map_size);
    free(im);
    w->impl = NULL;
}

uint64_t pv_gguf_data_offset(const pv_weights *w) {
    if (!w || w->free_impl != gguf_free_impl || !w->impl) return 0;
    return ((const gguf_impl *)w->impl)->data_offset;
}

/* Parses `size` bytes at `map` (borrowed, never written, must outlive the result). On
 * success *out is a new pv_weights owned by the caller (pv_weights_free); on failure *out
 * stays NULL and err names the file, field and problem. */
pv_status pv_gguf_parse(const char *path, const void *map, uint64_t size, pv_weights **out,
                        pv_error *err) {
    if (!out) return pv_error_set(err, PV_ERR_INVALID, "pv_gguf_parse: NULL out");
    *out = NULL;
    if (!path) path = "(memory)";
    if (!map && size) return pv_error_set(err, PV_ERR_INVALID, "%s: NULL mapping", path);
    pv_weights *w = calloc(1, sizeof *w);
    gguf_impl *im = calloc(1, sizeof *im);
    char *pcopy = strdup(path);
    if (!w || !im || !pcopy) {
        free(w);
        free(im);
        free(pcopy);
        return pv_error_set(err, PV_ERR_NOMEM, "%s: out of memory", path);
    }
    w->path = pcopy;
    w->format = "gguf";
    w->impl = im;
    w->free_impl = gguf_free_impl;
    w->map = map;
    w->map_size = size;
    w->alignment = PV_GGUF_DEFAULT_ALIGNMENT;

    gguf_cursor c = {.path = path, .base = map, .size = size, .pos = 0, .err = err};
    uint64_t n_tensors = 0, n_kv = 0;
    pv_status st = parse_header(&c, w, &n_tensors, &n_kv);
    /* A forged count is not rejected up front (the entry that runs out of bytes is the
     * more precise report), but when the count could never fit in this file even at the
     * smallest entry size, the message says so. */
    if (st == PV_OK) {
        bool impossible = n_kv > (c.size - c.pos) / GGUF_MIN_KV_BYTES;
        st = parse_kvs(&c, w, im, n_kv);
        if (st == PV_ERR_TRUNCATED && impossible)
            err_append(err, " (header declares n_kv = %" PRIu64 ", more than the file can hold)",
                       n_kv);
    }
    if (st == PV_OK) st = parse_alignment(&c, w);
    if (st == PV_OK) {
        bool impossible = n_tensors > (c.size - c.pos) / GGUF_MIN_TENSOR_BYTES;
        st = parse_tensors(&c, w, im, n_tensors);
        if (st == PV_ERR_TRUNCATED && impossible)
            err_append(err,
                       " (header declares n_tensors = %" PRIu64 ", more than the file can hold)",
                       n_tensors);
    }
    if (st == PV_OK) st = place_tensors(&c, w, im);
    if (st != PV_OK) {
        pv_weights_free(w);
        return st;
    }
    free(im->offsets);
    im->offsets = NULL;
    im->offsets_cap = 0;
    *out = w;
    return PV_OK;
}

/* Maps the file read-only (MAP_PRIVATE) and parses it; on success the result owns the
 * mapping, which gguf_free_impl unmaps. */
pv_status pv_gguf_open(const char *path, pv_weights **out, pv_error *err) {
    if (!out || !path) return pv_error_set(err, PV_ERR_INVALID, "pv_gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return pv_error_set(err, errno == ENOENT ? PV_ERR_NOT_FOUND : PV_ERR_IO,
                            "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return pv_error_set(err, PV_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return pv_error_set(err, PV_ERR_FORMAT, "%s: not a regular file, cannot be a GGUF file",
                            path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    void *map = NULL;
    if (size > 0) { /* mmap of 0 bytes fails; an empty file is reported as truncated */
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return pv_error_set(err, PV_ERR_IO, "%s: cannot mmap %" PRIu64 " bytes: %s", path, size,
                                strerror(e));
        }
    }
    close(fd); /* the mapping stays valid */
    pv_status st = pv_gguf_parse(path, map, size, out, err);
    if (st != PV_OK) {
        if (map) munmap(map, (size_t)size);
        return st;
    }
    ((gguf_impl *)(*out)->impl)->owns_map = true;
    return PV_OK;
}
