/* weights.c — the format-neutral side of a model file: format detection by magic
 * (pv_weights_open), release (pv_weights_free), key and tensor lookups, the typed metadata
 * getters and the array element accessors. Values live in place in the file mapping, so
 * multi-byte array elements are read with memcpy (they are not aligned) as little-endian
 * (the build asserts a little-endian host). The value-type table below is the one place
 * that knows each GGUF value type's name, size and kind. */
#include "pv_weights.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gguf/pv_gguf.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "GGUF values are read in place as little-endian");

/* What a value type is, for conversions: unsigned / signed integer, float, bool, other. */
typedef enum { VK_UINT, VK_SINT, VK_FLOAT, VK_BOOL, VK_OTHER } val_kind;

typedef struct {
    const char *name;
    uint8_t size; /* bytes of one fixed-size element; 0 = variable (string, array) */
    val_kind kind;
} val_info;

static const val_info pv_val_table[PV_VAL_COUNT] = {
    [PV_VAL_U8] = {"u8", 1, VK_UINT},          [PV_VAL_I8] = {"i8", 1, VK_SINT},
    [PV_VAL_U16] = {"u16", 2, VK_UINT},        [PV_VAL_I16] = {"i16", 2, VK_SINT},
    [PV_VAL_U32] = {"u32", 4, VK_UINT},        [PV_VAL_I32] = {"i32", 4, VK_SINT},
    [PV_VAL_F32] = {"f32", 4, VK_FLOAT},       [PV_VAL_BOOL] = {"bool", 1, VK_BOOL},
    [PV_VAL_STRING] = {"string", 0, VK_OTHER}, [PV_VAL_ARRAY] = {"array", 0, VK_OTHER},
    [PV_VAL_U64] = {"u64", 8, VK_UINT},        [PV_VAL_I64] = {"i64", 8, VK_SINT},
    [PV_VAL_F64] = {"f64", 8, VK_FLOAT},
};

const char *pv_val_type_name(uint32_t t) { return t < PV_VAL_COUNT ? pv_val_table[t].name : NULL; }

size_t pv_val_type_size(uint32_t t) { return t < PV_VAL_COUNT ? pv_val_table[t].size : 0; }

/* ---- open / free ---- */

/* Formats up to 4 magic bytes as "0x7b225f5f '{\"__'" (non-printables as '.'). */
static void magic_describe(const uint8_t *b, size_t n, char *out, size_t cap) {
    char hex[16] = "", txt[8] = "";
    for (size_t i = 0; i < n && i < 4; i++) {
        snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", b[i]);
        txt[i] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char)b[i] : '.';
        txt[i + 1] = '\0';
    }
    snprintf(out, cap, "0x%s '%s'", hex, txt);
}

pv_status pv_weights_open(const char *path, pv_weights **out, pv_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return pv_error_set(err, PV_ERR_INVALID, "pv_weights_open: NULL argument");
    struct stat st;
    if (stat(path, &st) != 0) {
        return pv_error_set(err, errno == ENOENT ? PV_ERR_NOT_FOUND : PV_ERR_IO,
                            "%s: cannot open: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return pv_error_set(err, PV_ERR_UNSUPPORTED,
                            "%s: is a directory, not a GGUF file (model folders such as "
                            "safetensors are not supported yet)",
                            path);
    }
    if (!S_ISREG(st.st_mode)) { /* a FIFO or device could block or never end */
        return pv_error_set(err, PV_ERR_FORMAT, "%s: not a regular file, cannot be a model file",
                            path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pv_error_set(err, PV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[4];
    ssize_t got = read(fd, magic, sizeof magic);
    int read_errno = errno;
    close(fd);
    if (got < 0)
        return pv_error_set(err, PV_ERR_IO, "%s: cannot read: %s", path, strerror(read_errno));
    uint32_t m = 0;
    if (got == 4) memcpy(&m, magic, 4);
    if (got == 4 && m == PV_GGUF_MAGIC) return pv_gguf_open(path, out, err);
    if (got < 4) {
        return pv_error_set(err, PV_ERR_FORMAT,
                            "%s: not a GGUF file (file is %zd bytes, too short for a magic)", path,
                            got);
    }
    char desc[40];
    magic_describe(magic, 4, desc, sizeof desc);
    return pv_error_set(err, PV_ERR_FORMAT, "%s: not a GGUF file (magic %s, expected 'GGUF')", path,
                        desc);
}

void pv_weights_free(pv_weights *w) {
    if (!w) return;
    if (w->free_impl) w->free_impl(w);
    free(w->path);
    free(w);
}

/* ---- lookups ---- */

bool pv_str_eq(pv_str s, const char *cstr) {
    if (!cstr) return false;
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

/* Both lookups compare lengths first, so a scan over a few hundred names costs a few
 * hundred integer compares and one memcmp. */
const pv_value *pv_weights_meta(const pv_weights *w, const char *key) {
    if (!w || !key) return NULL;
    size_t n = strlen(key);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        const pv_str *k = &w->kv[i].key;
        if (k->len == n && memcmp(k->ptr, key, n) == 0) return &w->kv[i].value;
    }
    return NULL;
}

const pv_tensor_desc *pv_weights_tensor(const pv_weights *w, const char *name) {
    if (!w || !name) return NULL;
    size_t n = strlen(name);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const pv_str *k = &w->tensors[i].name;
        if (k->len == n && memcmp(k->ptr, name, n) == 0) return &w->tensors[i];
    }
    return NULL;
}

/* ---- typed getters ---- */

/* double -> float without the undefined behaviour of an out-of-range cast: values beyond
 * float's range become +-inf (NaN stays NaN). */
static float f64_to_f32(double d) {
    if (d > FLT_MAX) return INFINITY;
    if (d < -FLT_MAX) return -INFINITY;
    return (float)d;
}

/* Reads a scalar value as a signed/unsigned pair: returns false for non-integers. *neg is
 * set when the value is a negative signed integer (then *mag holds it as int64). */
static bool value_as_int(const pv_value *v, bool *neg, uint64_t *u, int64_t *i) {
    if (!v || (uint32_t)v->type >= PV_VAL_COUNT) return false;
    switch (pv_val_table[v->type].kind) {
    case VK_UINT:
        *neg = false;
        *u = v->u;
        *i = v->u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v->u;
        return true;
    case VK_SINT:
        *neg = v->i < 0;
        *i = v->i;
        *u = v->i < 0 ? 0 : (uint64_t)v->i;
        return true;
    default: return false;
    }
}

bool pv_meta_get_u32(const pv_weights *w, const char *key, uint32_t *out) {
    bool neg;
    uint64_t u;
    int64_t i;
    if (!value_as_int(pv_weights_meta(w, key), &neg, &u, &i) || neg || u > UINT32_MAX) return false;
    *out = (uint32_t)u;
    return true;
}

bool pv_meta_get_i64(const pv_weights *w, const char *key, int64_t *out) {
    bool neg;
    uint64_t u;
    int64_t i;
    if (!value_as_int(pv_weights_meta(w, key), &neg, &u, &i)) return false;
    if (!neg && u > (uint64_t)INT64_MAX) return false;
    *out = i;
    return true;
}

bool pv_meta_get_f32(const pv_weights *w, const char *key, float *out) {
    const pv_value *v = pv_weights_meta(w, key);
    if (!v) return false;
    if (v->type == PV_VAL_F32 || v->type == PV_VAL_F64) {
        *out = f64_to_f32(v->f);
        return true;
    }
    bool neg;
    uint64_t u;
    int64_t i;
    if (!value_as_int(v, &neg, &u, &i)) return false;
    *out = neg ? (float)i : (float)u;
    return true;
}

bool pv_meta_get_bool(const pv_weights *w, const char *key, bool *out) {
    const pv_value *v = pv_weights_meta(w, key);
    if (!v || v->type != PV_VAL_BOOL) return false;
    *out = v->b;
    return true;
}

char *pv_meta_get_strdup(const pv_weights *w, const char *key) {
    const pv_value *v = pv_weights_meta(w, key);
    if (!v || v->type != PV_VAL_STRING || v->s.len >= SIZE_MAX) return NULL;
    char *s = malloc((size_t)v->s.len + 1);
    if (!s) return NULL;
    if (v->s.len) memcpy(s, v->s.ptr, (size_t)v->s.len);
    s[v->s.len] = '\0';
    return s;
}

const pv_value *pv_meta_get_arr(const pv_weights *w, const char *key) {
    const pv_value *v = pv_weights_meta(w, key);
    return v && v->type == PV_VAL_ARRAY ? v : NULL;
}

/* ---- array element accessors ----
 * Out-of-range indices and mismatched element types give 0 (or an empty string) rather
 * than a crash; callers check arr.type and arr.n once before a loop. */

/* Reads element i of a fixed-size integer array as int64 (signed) / uint64 (unsigned). */
static bool arr_int_elem(const pv_value *a, uint64_t i, bool *neg, uint64_t *u, int64_t *s) {
    if (!a || a->type != PV_VAL_ARRAY || i >= a->arr.n || !a->arr.raw) return false;
    uint32_t t = a->arr.type;
    if (t >= PV_VAL_COUNT) return false;
    const val_info *vi = &pv_val_table[t];
    if (vi->kind != VK_UINT && vi->kind != VK_SINT && vi->kind != VK_BOOL) return false;
    const uint8_t *p = a->arr.raw + i * vi->size;
    uint64_t raw = 0;
    memcpy(&raw, p, vi->size);
    if (vi->kind == VK_SINT && vi->size < 8) {
        /* sign-extend from size*8 bits */
        unsigned shift = 64u - 8u * vi->size;
        *s = (int64_t)(raw << shift) >> shift;
    } else {
        *s = (int64_t)raw;
    }
    *neg = vi->kind == VK_SINT && *s < 0;
    *u = raw;
    return true;
}

float pv_value_arr_f32(const pv_value *arr, uint64_t i) {
    if (!arr || arr->type != PV_VAL_ARRAY || i >= arr->arr.n || !arr->arr.raw) return 0.0f;
    if (arr->arr.type == PV_VAL_F32) {
        float f;
        memcpy(&f, arr->arr.raw + i * 4, 4);
        return f;
    }
    if (arr->arr.type == PV_VAL_F64) {
        double d;
        memcpy(&d, arr->arr.raw + i * 8, 8);
        return f64_to_f32(d);
    }
    bool neg;
    uint64_t u;
    int64_t s;
    if (!arr_int_elem(arr, i, &neg, &u, &s)) return 0.0f;
    return neg ? (float)s : (float)u;
}

int32_t pv_value_arr_i32(const pv_value *arr, uint64_t i) {
    bool neg;
    uint64_t u;
    int64_t s;
    if (!arr_int_elem(arr, i, &neg, &u, &s)) return 0;
    /* U32 elements above INT32_MAX wrap as in C (e.g. 0xFFFFFFFF -> -1) */
    return (int32_t)(uint32_t)(neg ? (uint64_t)s : u);
}

uint32_t pv_value_arr_u32(const pv_value *arr, uint64_t i) {
    bool neg;
    uint64_t u;
    int64_t s;
    if (!arr_int_elem(arr, i, &neg, &u, &s)) return 0;
    return (uint32_t)(neg ? (uint64_t)s : u);
}

pv_str pv_value_arr_str(const pv_value *arr, uint64_t i) {
    pv_str empty = {"", 0};
    if (!arr || arr->type != PV_VAL_ARRAY || arr->arr.type != PV_VAL_STRING || i >= arr->arr.n ||
        !arr->arr.items)
        return empty;
    return arr->arr.items[i].s;
}
