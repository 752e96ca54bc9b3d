/* pv_weights.h — the format-neutral view of a model file: metadata (key -> typed value,
 * keyed by GGUF's names, e.g. "llama.embedding_length") and named tensors (type, shape,
 * bytes in place). GGUF implements it now (src/gguf); HF/MLX safetensors folders will
 * implement it later by translating config.json into the same keys. Everything above this
 * layer (model, tokenizer, CLI) sees only this interface.
 *
 * Lifetime: a pv_weights owns its mapping; every pointer it hands out (strings, arrays,
 * tensor data) stays valid until pv_weights_free. Strings are NOT NUL-terminated in the
 * file: use pv_str (pointer + length). */
#ifndef PV_WEIGHTS_H
#define PV_WEIGHTS_H

#include "../core/pv_core.h"
#include "../tensor/pv_tensor.h"

/* GGUF metadata value types, GGUF's numbering */
typedef enum {
    PV_VAL_U8 = 0,
    PV_VAL_I8 = 1,
    PV_VAL_U16 = 2,
    PV_VAL_I16 = 3,
    PV_VAL_U32 = 4,
    PV_VAL_I32 = 5,
    PV_VAL_F32 = 6,
    PV_VAL_BOOL = 7,
    PV_VAL_STRING = 8,
    PV_VAL_ARRAY = 9,
    PV_VAL_U64 = 10,
    PV_VAL_I64 = 11,
    PV_VAL_F64 = 12,
    PV_VAL_COUNT
} pv_val_type;

typedef struct pv_str {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} pv_str;

typedef struct pv_value pv_value;
struct pv_value {
    pv_val_type type;
    union {
        uint64_t u;  /* U8..U64 */
        int64_t i;   /* I8..I64 */
        double f;    /* F32, F64 */
        bool b;      /* BOOL */
        pv_str s;    /* STRING */
        struct {
            pv_val_type type; /* element type */
            uint64_t n;       /* element count */
            /* fixed-size scalar elements: raw little-endian bytes in place (unaligned:
             * read with the pv_value_arr_* accessors); NULL for strings/arrays */
            const uint8_t *raw;
            /* STRING or ARRAY elements: n parsed values; NULL for scalars */
            const pv_value *items;
        } arr;
    };
};

typedef struct pv_kv {
    pv_str key;
    pv_value value;
} pv_kv;

#define PV_MAX_DIMS 4
typedef struct pv_tensor_desc {
    pv_str name;
    pv_type type;
    int n_dims;
    int64_t ne[PV_MAX_DIMS]; /* ne[0] innermost (a row); unused dims are 1 */
    const void *data;        /* in place, in the mapping */
    uint64_t nbytes;
} pv_tensor_desc;

typedef struct pv_weights pv_weights;
struct pv_weights {
    char *path;        /* owned copy of the path opened, for messages */
    const char *format; /* "gguf" */
    uint32_t version;  /* format version (GGUF 2 or 3) */
    uint64_t n_kv;
    const pv_kv *kv;
    uint64_t n_tensors;
    const pv_tensor_desc *tensors;
    uint64_t alignment;
    const void *map;   /* the whole file, read-only */
    uint64_t map_size;
    void *impl;        /* format's private state */
    void (*free_impl)(pv_weights *w);
};

/* Opens a model file (detects the format by its magic). On failure returns a status,
 * leaves *out NULL and fills err with a message naming the file, the field and the
 * problem. The caller owns *out and frees it with pv_weights_free. */
pv_status pv_weights_open(const char *path, pv_weights **out, pv_error *err);
void pv_weights_free(pv_weights *w);

/* Lookups (linear scan; tables are small). NULL when absent. */
const pv_value *pv_weights_meta(const pv_weights *w, const char *key);
const pv_tensor_desc *pv_weights_tensor(const pv_weights *w, const char *name);

/* Typed metadata getters: return false if absent or of a non-convertible type.
 * Integer getters accept any integer type whose value fits; float getters accept F32/F64
 * and integers. */
bool pv_meta_get_u32(const pv_weights *w, const char *key, uint32_t *out);
bool pv_meta_get_i64(const pv_weights *w, const char *key, int64_t *out);
bool pv_meta_get_f32(const pv_weights *w, const char *key, float *out);
bool pv_meta_get_bool(const pv_weights *w, const char *key, bool *out);
/* String getter: returns a malloc'ed NUL-terminated copy (caller frees) or NULL. */
char *pv_meta_get_strdup(const pv_weights *w, const char *key);
/* Array getter: returns the array value if `key` is an array (of any element type). */
const pv_value *pv_meta_get_arr(const pv_weights *w, const char *key);

/* Element accessors for array values (index must be < arr.n; type must match). */
float pv_value_arr_f32(const pv_value *arr, uint64_t i);   /* F32 elements */
int32_t pv_value_arr_i32(const pv_value *arr, uint64_t i); /* I32 (or U32/I8/U8...) elements */
uint32_t pv_value_arr_u32(const pv_value *arr, uint64_t i);
pv_str pv_value_arr_str(const pv_value *arr, uint64_t i);  /* STRING elements */

/* pv_str helpers */
bool pv_str_eq(pv_str s, const char *cstr);

/* Value-type table (GGUF numbering): a short name ("u32", "string", "array") or NULL for an
 * id that is not a value type; and the byte size of a fixed-size element (0 for STRING,
 * ARRAY and unknown ids). Added by the GGUF helper for messages and array walking. */
const char *pv_val_type_name(uint32_t t);
size_t pv_val_type_size(uint32_t t);

#endif /* PV_WEIGHTS_H */
