/* gguf_writer.c — GGUF v3 writer. Metadata values are serialized to their final bytes as
 * soon as they are set (so a key set twice just swaps its blob, and callers may free their
 * inputs at once); tensor infos are kept, and tensor data is either copied or borrowed
 * (add_tensor_ref) until pv_gguf_writer_write streams everything out with buffered fwrite:
 * header, kvs, tensor infos, padding to the alignment, then each tensor's bytes padded to
 * the alignment. A setter that cannot allocate makes the writer "failed": write then
 * reports it instead of producing a file with a missing key. */
#include "pv_gguf.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF is written as little-endian");

/* Arrays nested deeper than the reader accepts are refused here too. */
#define WRITER_MAX_DEPTH 8

/* A growable byte buffer; `oom` is sticky. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void wbuf_put(wbuf *b, const void *src, size_t n) {
    if (b->oom || n == 0) return;
    if (n > SIZE_MAX - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n) {
            if (nc > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            nc *= 2;
        }
        uint8_t *q = realloc(b->p, nc);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void wbuf_u32(wbuf *b, uint32_t v) { wbuf_put(b, &v, 4); }
static void wbuf_u64(wbuf *b, uint64_t v) { wbuf_put(b, &v, 8); }
static void wbuf_str(wbuf *b, const char *s, uint64_t len) {
    wbuf_u64(b, len);
    if (len > SIZE_MAX) {
        b->oom = true;
        return;
    }
    wbuf_put(b, s, (size_t)len);
}

typedef struct {
    char *key;
    uint8_t *blob; /* u32 value type + the value's bytes */
    size_t blob_len;
} wkv;

typedef struct {
    char *name;
    pv_type type;
    int n_dims;
    int64_t ne[PV_MAX_DIMS];
    const void *data; /* owned (== owned) or borrowed */
    void *owned;
    uint64_t nbytes;
} wtensor;

struct pv_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint32_t alignment;
    bool bad_alignment; /* set_alignment got a non-power of two */
    bool failed;        /* a setter ran out of memory or got an invalid value */
    char fail_what[160];
};

pv_gguf_writer *pv_gguf_writer_new(void) {
    pv_gguf_writer *g = calloc(1, sizeof *g);
    if (g) g->alignment = PV_GGUF_DEFAULT_ALIGNMENT;
    return g;
}

void pv_gguf_writer_free(pv_gguf_writer *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].blob);
    }
    free(g->kv);
    for (size_t i = 0; i < g->n_t; i++) {
        free(g->t[i].name);
        free(g->t[i].owned);
    }
    free(g->t);
    free(g);
}

static void writer_fail(pv_gguf_writer *g, const char *what, const char *key) {
    if (!g->failed)
        snprintf(g->fail_what, sizeof g->fail_what, "%s '%s'", what, key ? key : "(null)");
    g->failed = true;
}

/* Stores a finished blob for `key` (takes ownership of b->p), replacing an older value. */
static void kv_store(pv_gguf_writer *g, const char *key, wbuf *b) {
    if (!key || b->oom) {
        free(b->p);
        writer_fail(g, key ? "out of memory for key" : "NULL key", key);
        return;
    }
    for (size_t i = 0; i < g->n_kv; i++) {
        if (strcmp(g->kv[i].key, key) == 0) {
            free(g->kv[i].blob);
            g->kv[i].blob = b->p;
            g->kv[i].blob_len = b->n;
            return;
        }
    }
    if (g->n_kv == g->cap_kv) {
        size_t nc = g->cap_kv ? g->cap_kv * 2 : 16;
        wkv *q = realloc(g->kv, nc * sizeof *q);
        if (!q) {
            free(b->p);
            writer_fail(g, "out of memory for key", key);
            return;
        }
        g->kv = q;
        g->cap_kv = nc;
    }
    char *k = strdup(key);
    if (!k) {
        free(b->p);
        writer_fail(g, "out of memory for key", key);
        return;
    }
    g->kv[g->n_kv++] = (wkv){k, b->p, b->n};
}

/* Appends the payload of a value of type `type` (no type tag), as GGUF lays it out.
 * Returns false for an inconsistent tree (unknown type, element type mismatch, missing
 * element table, too deep). */
static bool put_payload(wbuf *b, uint32_t type, const pv_value *v, int depth) {
    size_t sz = pv_val_type_size(type);
    if (type >= PV_VAL_COUNT) return false;
    if (type == PV_VAL_STRING) {
        if (!v->s.ptr && v->s.len) return false;
        wbuf_str(b, v->s.ptr, v->s.len);
        return true;
    }
    if (type != PV_VAL_ARRAY) {
        /* scalars: take the union member that the reader fills for this type */
        uint8_t raw[8] = {0};
        switch (type) {
        case PV_VAL_F32: {
            /* out-of-range doubles become +-inf rather than an undefined cast */
            float f = v->f > FLT_MAX ? INFINITY : v->f < -FLT_MAX ? -INFINITY : (float)v->f;
            memcpy(raw, &f, 4);
            break;
        }
        case PV_VAL_F64: memcpy(raw, &v->f, 8); break;
        case PV_VAL_BOOL: raw[0] = v->b ? 1 : 0; break;
        case PV_VAL_I8:
        case PV_VAL_I16:
        case PV_VAL_I32:
        case PV_VAL_I64: memcpy(raw, &v->i, sz); break;
        default: memcpy(raw, &v->u, sz); break; /* U8..U64: low bytes, little-endian */
        }
        wbuf_put(b, raw, sz);
        return true;
    }
    uint32_t et = v->arr.type;
    if (et >= PV_VAL_COUNT || depth >= WRITER_MAX_DEPTH) return false;
    wbuf_u32(b, et);
    wbuf_u64(b, v->arr.n);
    size_t esz = pv_val_type_size(et);
    if (esz) {
        if (v->arr.n && !v->arr.raw) return false;
        if (v->arr.n > SIZE_MAX / esz) return false;
        wbuf_put(b, v->arr.raw, (size_t)(v->arr.n * esz));
        return true;
    }
    if (v->arr.n && !v->arr.items) return false;
    for (uint64_t i = 0; i < v->arr.n; i++) {
        if ((uint32_t)v->arr.items[i].type != et) return false;
        if (!put_payload(b, et, &v->arr.items[i], depth + 1)) return false;
    }
    return true;
}

pv_status pv_gguf_writer_set_value(pv_gguf_writer *g, const char *key, const pv_value *v,
                                   pv_error *err) {
    if (!g || !key || !v) return pv_error_set(err, PV_ERR_INVALID, "gguf writer: NULL argument");
    wbuf b = {0};
    wbuf_u32(&b, (uint32_t)v->type);
    if (!put_payload(&b, (uint32_t)v->type, v, 0)) {
        free(b.p);
        return pv_error_set(err, PV_ERR_INVALID, "gguf writer: key '%s': inconsistent value", key);
    }
    if (b.oom) {
        free(b.p);
        return pv_error_set(err, PV_ERR_NOMEM, "gguf writer: key '%s': out of memory", key);
    }
    kv_store(g, key, &b);
    return g->failed ? pv_error_set(err, PV_ERR_NOMEM, "gguf writer: %s", g->fail_what) : PV_OK;
}

/* Scalar setters go through one helper: the value is encoded from its raw bytes. */
static void set_scalar(pv_gguf_writer *g, const char *key, pv_val_type type, const void *raw) {
    if (!g) return;
    wbuf b = {0};
    wbuf_u32(&b, type);
    wbuf_put(&b, raw, pv_val_type_size(type));
    kv_store(g, key, &b);
}

void pv_gguf_writer_set_u32(pv_gguf_writer *g, const char *key, uint32_t v) {
    set_scalar(g, key, PV_VAL_U32, &v);
}
void pv_gguf_writer_set_i32(pv_gguf_writer *g, const char *key, int32_t v) {
    set_scalar(g, key, PV_VAL_I32, &v);
}
void pv_gguf_writer_set_u64(pv_gguf_writer *g, const char *key, uint64_t v) {
    set_scalar(g, key, PV_VAL_U64, &v);
}
void pv_gguf_writer_set_f32(pv_gguf_writer *g, const char *key, float v) {
    set_scalar(g, key, PV_VAL_F32, &v);
}
void pv_gguf_writer_set_bool(pv_gguf_writer *g, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    set_scalar(g, key, PV_VAL_BOOL, &b);
}

void pv_gguf_writer_set_str(pv_gguf_writer *g, const char *key, const char *v) {
    if (!g) return;
    if (!v) {
        writer_fail(g, "NULL string for key", key);
        return;
    }
    wbuf b = {0};
    wbuf_u32(&b, PV_VAL_STRING);
    wbuf_str(&b, v, strlen(v));
    kv_store(g, key, &b);
}

void pv_gguf_writer_set_alignment(pv_gguf_writer *g, uint32_t alignment) {
    if (!g) return;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        g->bad_alignment = true;
        return;
    }
    g->alignment = alignment;
    g->bad_alignment = false;
    /* the reader learns the alignment only from this key */
    pv_gguf_writer_set_u32(g, "general.alignment", alignment);
}

void pv_gguf_writer_set_arr(pv_gguf_writer *g, const char *key, pv_val_type elem_type,
                            const void *data, uint64_t n) {
    if (!g) return;
    size_t esz = pv_val_type_size(elem_type);
    if (esz == 0 || (n && !data) || n > SIZE_MAX / esz) {
        writer_fail(g, "invalid scalar array for key", key);
        return;
    }
    wbuf b = {0};
    wbuf_u32(&b, PV_VAL_ARRAY);
    wbuf_u32(&b, elem_type);
    wbuf_u64(&b, n);
    wbuf_put(&b, data, (size_t)(n * esz));
    kv_store(g, key, &b);
}

void pv_gguf_writer_set_arr_strn(pv_gguf_writer *g, const char *key, const char *const *strs,
                                 const uint64_t *lens, uint64_t n) {
    if (!g) return;
    if (n && !strs) {
        writer_fail(g, "NULL string array for key", key);
        return;
    }
    wbuf b = {0};
    wbuf_u32(&b, PV_VAL_ARRAY);
    wbuf_u32(&b, PV_VAL_STRING);
    wbuf_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        const char *s = strs[i] ? strs[i] : "";
        uint64_t len = lens ? lens[i] : strlen(s);
        if (!strs[i] && len) {
            free(b.p);
            writer_fail(g, "NULL string in array for key", key);
            return;
        }
        wbuf_str(&b, s, len);
    }
    kv_store(g, key, &b);
}

void pv_gguf_writer_set_arr_str(pv_gguf_writer *g, const char *key, const char *const *strs,
                                uint64_t n) {
    pv_gguf_writer_set_arr_strn(g, key, strs, NULL, n);
}

/* Validates and records a tensor; data copied when `copy`, else borrowed. */
static pv_status add_tensor(pv_gguf_writer *g, const char *name, pv_type type, int n_dims,
                            const int64_t *ne, const void *data, bool copy, pv_error *err) {
    if (!g || !name || !ne || !data)
        return pv_error_set(err, PV_ERR_INVALID, "gguf writer: NULL argument");
    const pv_type_traits *tr = pv_type_traits_get((uint32_t)type);
    if (!tr || tr->type_size == 0 || tr->blck_size <= 0) {
        return pv_error_set(err, PV_ERR_INVALID, "gguf writer: tensor '%s': type %d has no size",
                            name, (int)type);
    }
    if (n_dims < 1 || n_dims > PV_MAX_DIMS) {
        return pv_error_set(err, PV_ERR_INVALID,
                            "gguf writer: tensor '%s': n_dims %d (must be 1..%d)", name, n_dims,
                            PV_MAX_DIMS);
    }
    for (size_t i = 0; i < g->n_t; i++) {
        if (strcmp(g->t[i].name, name) == 0) {
            return pv_error_set(err, PV_ERR_DUPLICATE, "gguf writer: tensor '%s' added twice",
                                name);
        }
    }
    wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) {
            return pv_error_set(err, PV_ERR_INVALID, "gguf writer: tensor '%s': ne[%d] = %" PRId64,
                                name, d, ne[d]);
        }
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % tr->blck_size != 0) {
        return pv_error_set(err, PV_ERR_INVALID,
                            "gguf writer: tensor '%s': ne[0] = %" PRId64
                            " is not a multiple of the %s block size %" PRId64,
                            name, t.ne[0], tr->name, tr->blck_size);
    }
    uint64_t nb = (uint64_t)(t.ne[0] / tr->blck_size);
    bool ovf = pv_mul_overflow_u64(nb, tr->type_size, &nb);
    for (int d = 1; d < PV_MAX_DIMS; d++)
        ovf = ovf || pv_mul_overflow_u64(nb, (uint64_t)t.ne[d], &nb);
    if (ovf || nb > SIZE_MAX) {
        return pv_error_set(err, PV_ERR_OVERFLOW, "gguf writer: tensor '%s': size overflows", name);
    }
    t.nbytes = nb;
    if (g->n_t == g->cap_t) {
        size_t nc = g->cap_t ? g->cap_t * 2 : 16;
        wtensor *q = realloc(g->t, nc * sizeof *q);
        if (!q) return pv_error_set(err, PV_ERR_NOMEM, "gguf writer: out of memory");
        g->t = q;
        g->cap_t = nc;
    }
    t.name = strdup(name);
    if (!t.name) return pv_error_set(err, PV_ERR_NOMEM, "gguf writer: out of memory");
    if (copy) {
        t.owned = malloc((size_t)nb);
        if (!t.owned) {
            free(t.name);
            return pv_error_set(err, PV_ERR_NOMEM,
                                "gguf writer: tensor '%s': out of memory for %" PRIu64 " bytes",
                                name, nb);
        }
        memcpy(t.owned, data, (size_t)nb);
        t.data = t.owned;
    } else {
        t.data = data;
    }
    g->t[g->n_t++] = t;
    return PV_OK;
}

pv_status pv_gguf_writer_add_tensor(pv_gguf_writer *g, const char *name, pv_type type, int n_dims,
                                    const int64_t *ne, const void *data, pv_error *err) {
    return add_tensor(g, name, type, n_dims, ne, data, true, err);
}

pv_status pv_gguf_writer_add_tensor_ref(pv_gguf_writer *g, const char *name, pv_type type,
                                        int n_dims, const int64_t *ne, const void *data,
                                        pv_error *err) {
    return add_tensor(g, name, type, n_dims, ne, data, false, err);
}

/* ---- output ---- */

typedef struct {
    FILE *f;
    uint64_t pos;
    bool bad;
} wfile;

static void wf_put(wfile *o, const void *p, size_t n) {
    if (o->bad || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->bad = true;
    o->pos += n;
}
static void wf_u32(wfile *o, uint32_t v) { wf_put(o, &v, 4); }
static void wf_u64(wfile *o, uint64_t v) { wf_put(o, &v, 8); }
static void wf_pad(wfile *o, uint64_t a) {
    static const uint8_t zeros[64];
    uint64_t rem = o->pos % a;
    uint64_t pad = rem ? a - rem : 0;
    while (pad > 0 && !o->bad) {
        size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        wf_put(o, zeros, k);
        pad -= k;
    }
}

pv_status pv_gguf_writer_write(pv_gguf_writer *g, const char *path, pv_error *err) {
    if (!g || !path) return pv_error_set(err, PV_ERR_INVALID, "gguf writer: NULL argument");
    if (g->failed)
        return pv_error_set(err, PV_ERR_NOMEM, "%s: not written: %s", path, g->fail_what);
    if (g->bad_alignment) {
        return pv_error_set(err, PV_ERR_INVALID,
                            "%s: not written: alignment must be a nonzero power of two", path);
    }
    const uint64_t a = g->alignment;
    FILE *f = fopen(path, "wb");
    if (!f) return pv_error_set(err, PV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    /* a large stdio buffer: GB-sized tensors go out in big writes */
    setvbuf(f, NULL, _IOFBF, (size_t)1 << 20);
    wfile o = {f, 0, false};
    wf_u32(&o, PV_GGUF_MAGIC);
    wf_u32(&o, 3);
    wf_u64(&o, g->n_t);
    wf_u64(&o, g->n_kv);
    for (size_t i = 0; i < g->n_kv; i++) {
        uint64_t klen = strlen(g->kv[i].key);
        wf_u64(&o, klen);
        wf_put(&o, g->kv[i].key, (size_t)klen);
        wf_put(&o, g->kv[i].blob, g->kv[i].blob_len);
    }
    uint64_t off = 0;
    bool ovf = false;
    for (size_t i = 0; i < g->n_t; i++) {
        const wtensor *t = &g->t[i];
        uint64_t nlen = strlen(t->name);
        wf_u64(&o, nlen);
        wf_put(&o, t->name, (size_t)nlen);
        wf_u32(&o, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            wf_u64(&o, (uint64_t)t->ne[d]);
        wf_u32(&o, (uint32_t)t->type);
        wf_u64(&o, off);
        /* next offset: this tensor's bytes rounded up to the alignment */
        uint64_t rem = t->nbytes % a;
        ovf = ovf || pv_add_overflow_u64(off, t->nbytes, &off) ||
              (rem && pv_add_overflow_u64(off, a - rem, &off));
    }
    if (ovf) o.bad = true;
    wf_pad(&o, a);
    for (size_t i = 0; i < g->n_t && !o.bad; i++) {
        wf_put(&o, g->t[i].data, (size_t)g->t[i].nbytes);
        wf_pad(&o, a);
    }
    int e = o.bad ? errno : 0;
    if (fclose(f) != 0 && !o.bad) {
        o.bad = true;
        e = errno;
    }
    if (o.bad) {
        unlink(path); /* never leave a half-written model behind */
        return pv_error_set(err, PV_ERR_IO, "%s: write failed: %s", path,
                            ovf ? "data size overflows" : strerror(e));
    }
    return PV_OK;
}
