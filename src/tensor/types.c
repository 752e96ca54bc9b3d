/* types.c — the one type-traits table (name, block size, block bytes, reference
 * conversions and dot product per type) and the f16/bf16 conversions. Indexed by GGUF
 * type id; ids that ggml defines but this engine cannot compute with keep their name (so
 * an error can say "IQ2_XXS is not supported") and have supported = false. */
#include "pv_tensor.h"

#include <math.h>
#include <pthread.h>
#include <strings.h>

#include "../kernels/ref/pv_kernels_ref.h"

#define T_(id, nm, bs, ts, sup, vdt, tof, fromf, dot) \
    [id] = {nm, bs, ts, sup, vdt, tof, fromf, dot}

static const pv_type_traits pv_traits[PV_TYPE_COUNT] = {
    T_(PV_TYPE_F32, "F32", 1, 4, true, PV_TYPE_F32, pv_ref_to_float_f32, pv_ref_from_float_f32, pv_ref_vec_dot_f32),
    T_(PV_TYPE_F16, "F16", 1, 2, true, PV_TYPE_F32, pv_ref_to_float_f16, pv_ref_from_float_f16, pv_ref_vec_dot_f16),
    T_(PV_TYPE_Q4_0, "Q4_0", PV_QK4_0, sizeof(pv_block_q4_0), true, PV_TYPE_Q8_0, pv_ref_to_float_q4_0, pv_ref_from_float_q4_0, pv_ref_vec_dot_q4_0),
    T_(PV_TYPE_Q4_1, "Q4_1", PV_QK4_1, sizeof(pv_block_q4_1), true, PV_TYPE_Q8_1, pv_ref_to_float_q4_1, pv_ref_from_float_q4_1, pv_ref_vec_dot_q4_1),
    [4] = {"Q4_2", 32, 0, false, PV_TYPE_F32, NULL, NULL, NULL},
    [5] = {"Q4_3", 32, 0, false, PV_TYPE_F32, NULL, NULL, NULL},
    T_(PV_TYPE_Q5_0, "Q5_0", PV_QK5_0, sizeof(pv_block_q5_0), true, PV_TYPE_Q8_0, pv_ref_to_float_q5_0, pv_ref_from_float_q5_0, pv_ref_vec_dot_q5_0),
    T_(PV_TYPE_Q5_1, "Q5_1", PV_QK5_1, sizeof(pv_block_q5_1), true, PV_TYPE_Q8_1, pv_ref_to_float_q5_1, pv_ref_from_float_q5_1, pv_ref_vec_dot_q5_1),
    T_(PV_TYPE_Q8_0, "Q8_0", PV_QK8_0, sizeof(pv_block_q8_0), true, PV_TYPE_Q8_0, pv_ref_to_float_q8_0, pv_ref_from_float_q8_0, pv_ref_vec_dot_q8_0),
    T_(PV_TYPE_Q8_1, "Q8_1", PV_QK8_1, sizeof(pv_block_q8_1), false, PV_TYPE_Q8_1, pv_ref_to_float_q8_1, pv_ref_from_float_q8_1, NULL),
    [PV_TYPE_Q2_K] = {"Q2_K", PV_QK_K, 84, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [PV_TYPE_Q3_K] = {"Q3_K", PV_QK_K, 110, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    T_(PV_TYPE_Q4_K, "Q4_K", PV_QK_K, sizeof(pv_block_q4_K), true, PV_TYPE_Q8_K, pv_ref_to_float_q4_K, pv_ref_from_float_q4_K, pv_ref_vec_dot_q4_K),
    T_(PV_TYPE_Q5_K, "Q5_K", PV_QK_K, sizeof(pv_block_q5_K), true, PV_TYPE_Q8_K, pv_ref_to_float_q5_K, pv_ref_from_float_q5_K, pv_ref_vec_dot_q5_K),
    T_(PV_TYPE_Q6_K, "Q6_K", PV_QK_K, sizeof(pv_block_q6_K), true, PV_TYPE_Q8_K, pv_ref_to_float_q6_K, pv_ref_from_float_q6_K, pv_ref_vec_dot_q6_K),
    T_(PV_TYPE_Q8_K, "Q8_K", PV_QK_K, sizeof(pv_block_q8_K), false, PV_TYPE_Q8_K, pv_ref_to_float_q8_K, pv_ref_from_float_q8_K, NULL),
    [16] = {"IQ2_XXS", PV_QK_K, 66, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [17] = {"IQ2_XS", PV_QK_K, 74, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [18] = {"IQ3_XXS", PV_QK_K, 98, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [19] = {"IQ1_S", PV_QK_K, 50, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [20] = {"IQ4_NL", 32, 18, false, PV_TYPE_Q8_0, NULL, NULL, NULL},
    [21] = {"IQ3_S", PV_QK_K, 110, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [22] = {"IQ2_S", PV_QK_K, 82, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [23] = {"IQ4_XS", PV_QK_K, 136, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [24] = {"I8", 1, 1, false, PV_TYPE_F32, NULL, NULL, NULL},
    [25] = {"I16", 1, 2, false, PV_TYPE_F32, NULL, NULL, NULL},
    [26] = {"I32", 1, 4, false, PV_TYPE_F32, NULL, NULL, NULL},
    [27] = {"I64", 1, 8, false, PV_TYPE_F32, NULL, NULL, NULL},
    [28] = {"F64", 1, 8, false, PV_TYPE_F32, NULL, NULL, NULL},
    [29] = {"IQ1_M", PV_QK_K, 56, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    T_(PV_TYPE_BF16, "BF16", 1, 2, true, PV_TYPE_F32, pv_ref_to_float_bf16, pv_ref_from_float_bf16, pv_ref_vec_dot_bf16),
    [34] = {"TQ1_0", PV_QK_K, 54, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [35] = {"TQ2_0", PV_QK_K, 66, false, PV_TYPE_Q8_K, NULL, NULL, NULL},
    [39] = {"MXFP4", 32, 17, false, PV_TYPE_Q8_0, NULL, NULL, NULL},
};

const pv_type_traits *pv_type_traits_get(uint32_t t) {
    if (t >= PV_TYPE_COUNT || pv_traits[t].name == NULL) return NULL;
    return &pv_traits[t];
}

const char *pv_type_name(pv_type t) {
    const pv_type_traits *tr = pv_type_traits_get((uint32_t)t);
    return tr ? tr->name : "unknown";
}

bool pv_type_parse(const char *s, pv_type *out) {
    for (uint32_t i = 0; i < PV_TYPE_COUNT; i++) {
        if (pv_traits[i].name && strcasecmp(pv_traits[i].name, s) == 0) {
            *out = (pv_type)i;
            return true;
        }
    }
    return false;
}

size_t pv_type_row_size(pv_type t, int64_t n) {
    const pv_type_traits *tr = pv_type_traits_get((uint32_t)t);
    if (!tr || tr->type_size == 0 || n < 0 || n % tr->blck_size != 0) return 0;
    return (size_t)(n / tr->blck_size) * tr->type_size;
}

/* ---- f16 / bf16 ---- */
float pv_f16_table[65536];

float pv_f16_to_f32(pv_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while ((mant & 0x400) == 0);
            mant &= 0x3ff;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

pv_f16 pv_f32_to_f16(float f) {
    /* round-to-nearest-even, as the F16C instruction and numpy do */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) { /* inf or nan */
        return (pv_f16)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    }
    if (absx >= 0x477ff000u) return (pv_f16)(sign | 0x7c00); /* overflow to inf */
    if (absx < 0x38800000u) {                                 /* subnormal or zero in f16 */
        float af;
        memcpy(&af, &absx, 4);
        /* scale so that the f16 subnormal unit (2^-24) becomes 1, round to nearest even */
        float scaled = af * 16777216.0f;
        uint32_t m = (uint32_t)lrintf(scaled);
        return (pv_f16)(sign | m);
    }
    uint32_t e = (absx >> 23) - 127 + 15;
    uint32_t mant = absx & 0x7fffff;
    uint32_t h = (e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (pv_f16)(sign | h);
}

pv_bf16 pv_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000u) return (pv_bf16)((u >> 16) | 64); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (pv_bf16)(u >> 16);
}

static pthread_once_t pv_tensor_once = PTHREAD_ONCE_INIT;
static void pv_tensor_init_once(void) {
    for (uint32_t i = 0; i < 65536; i++) pv_f16_table[i] = pv_f16_to_f32((pv_f16)i);
}
void pv_tensor_init(void) { pthread_once(&pv_tensor_once, pv_tensor_init_once); }
