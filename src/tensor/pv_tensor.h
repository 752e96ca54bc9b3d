/* pv_tensor.h — tensor element types and their one type-traits table (ggml style).
 * Type ids are GGUF's (ggml_type) so a file's id indexes the table directly. Block
 * layouts are byte-exact copies of ggml's, because weights are used in place from the
 * mmapped file; this header is shared by every kernel variant (ref, AVX2, AVX-512, CUDA).
 *
 * Conventions: a "row" is `n` consecutive elements (n a multiple of the type's block
 * size); a weight matrix [rows, cols] in GGUF dims is ne = {cols, rows}: cols innermost. */
#ifndef PV_TENSOR_H
#define PV_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    PV_TYPE_F32 = 0,
    PV_TYPE_F16 = 1,
    PV_TYPE_Q4_0 = 2,
    PV_TYPE_Q4_1 = 3,
    /* 4, 5: removed Q4_2/Q4_3 in ggml */
    PV_TYPE_Q5_0 = 6,
    PV_TYPE_Q5_1 = 7,
    PV_TYPE_Q8_0 = 8,
    PV_TYPE_Q8_1 = 9,
    PV_TYPE_Q2_K = 10,
    PV_TYPE_Q3_K = 11,
    PV_TYPE_Q4_K = 12,
    PV_TYPE_Q5_K = 13,
    PV_TYPE_Q6_K = 14,
    PV_TYPE_Q8_K = 15,
    /* 16..29: IQ types and integer types, known by name but not supported */
    PV_TYPE_BF16 = 30,
    PV_TYPE_COUNT = 40 /* table size; ids >= this are unknown */
} pv_type;

#define PV_QK4_0 32
#define PV_QK4_1 32
#define PV_QK5_0 32
#define PV_QK5_1 32
#define PV_QK8_0 32
#define PV_QK8_1 32
#define PV_QK_K 256
#define PV_K_SCALE_SIZE 12

typedef uint16_t pv_f16;  /* IEEE half, raw bits */
typedef uint16_t pv_bf16; /* bfloat16, raw bits */

typedef struct { pv_f16 d; uint8_t qs[PV_QK4_0 / 2]; } pv_block_q4_0;                 /* 18 B */
typedef struct { pv_f16 d, m; uint8_t qs[PV_QK4_1 / 2]; } pv_block_q4_1;              /* 20 B */
typedef struct { pv_f16 d; uint8_t qh[4]; uint8_t qs[PV_QK5_0 / 2]; } pv_block_q5_0;  /* 22 B */
typedef struct { pv_f16 d, m; uint8_t qh[4]; uint8_t qs[PV_QK5_1 / 2]; } pv_block_q5_1; /* 24 B */
typedef struct { pv_f16 d; int8_t qs[PV_QK8_0]; } pv_block_q8_0;                      /* 34 B */
typedef struct { pv_f16 d, s; int8_t qs[PV_QK8_1]; } pv_block_q8_1; /* 36 B; s = d * sum(qs) */
typedef struct {
    pv_f16 d, dmin;
    uint8_t scales[PV_K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) packed */
    uint8_t qs[PV_QK_K / 2];
} pv_block_q4_K; /* 144 B */
typedef struct {
    pv_f16 d, dmin;
    uint8_t scales[PV_K_SCALE_SIZE];
    uint8_t qh[PV_QK_K / 8];
    uint8_t qs[PV_QK_K / 2];
} pv_block_q5_K; /* 176 B */
typedef struct {
    uint8_t ql[PV_QK_K / 2];
    uint8_t qh[PV_QK_K / 4];
    int8_t scales[PV_QK_K / 16];
    pv_f16 d;
} pv_block_q6_K; /* 210 B */
typedef struct {
    float d;
    int8_t qs[PV_QK_K];
    int16_t bsums[PV_QK_K / 16];
} pv_block_q8_K; /* 292 B; activation type of the K-quants */

_Static_assert(sizeof(pv_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(pv_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(pv_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(pv_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(pv_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(pv_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(pv_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(pv_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(pv_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(pv_block_q8_K) == 292, "q8_K layout");

/* Row conversion and dot-product function types. `n` is the element count of the row. */
typedef void (*pv_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*pv_from_float_fn)(const float *src, void *dst, int64_t n);
/* *out = dot(w row of the weight type, x row of that type's vec_dot_type), n elements */
typedef void (*pv_vec_dot_fn)(int64_t n, float *out, const void *w, const void *x);

typedef struct pv_type_traits {
    const char *name;         /* "Q4_0"; NULL for ids that are not types at all */
    int64_t blck_size;        /* elements per block (1 for float types) */
    size_t type_size;         /* bytes per block */
    bool supported;           /* usable as a weight type by this engine */
    pv_type vec_dot_type;     /* activation type the dot product takes */
    pv_to_float_fn to_float;  /* reference dequantization */
    pv_from_float_fn from_float; /* reference quantization (for activations and the generator) */
    pv_vec_dot_fn vec_dot;    /* reference dot product against vec_dot_type */
} pv_type_traits;

/* The table entry for `t`, or NULL when `t` is not a known type id at all. */
const pv_type_traits *pv_type_traits_get(uint32_t t);
/* Name for logs and errors; "type#N" style for unknown ids is produced by the caller. */
const char *pv_type_name(pv_type t);
/* Parses "q4_0", "Q4_K", "f32", ... (case-insensitive); returns false if unknown. */
bool pv_type_parse(const char *s, pv_type *out);
/* Bytes of a row of n elements (n must be a multiple of blck_size; returns 0 if not). */
size_t pv_type_row_size(pv_type t, int64_t n);

/* ---- half and bfloat16 conversions (exact, round-to-nearest-even) ---- */
float pv_f16_to_f32(pv_f16 h);
pv_f16 pv_f32_to_f16(float f);
static inline float pv_bf16_to_f32(pv_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
pv_bf16 pv_f32_to_bf16(float f);

/* Table-driven f16→f32 for hot loops (65536 entries, built once by pv_tensor_init). */
extern float pv_f16_table[65536];
static inline float pv_f16_lookup(pv_f16 h) { return pv_f16_table[h]; }
/* Builds the lookup tables; idempotent and thread-safe (pthread_once). */
void pv_tensor_init(void);

#endif /* PV_TENSOR_H */
