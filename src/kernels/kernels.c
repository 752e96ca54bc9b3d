/* kernels.c — kernel-set selection and the rope helpers. The sets (ref, avx2, avx512) are
 * built once under pthread_once: each starts as a copy of the reference set and the SIMD
 * variant overwrites the slots it implements, so every slot is callable. A variant is
 * offered only if the CPU (and OS) runs it; PENSIEVE_KERNELS picks one explicitly. The
 * rope helpers compute angles in double so long positions keep full float precision. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/pv_core.h"
#include "pv_kernels_internal.h"

typedef struct {
    const char *name;
    bool (*runs)(const pv_cpu_features *f); /* NULL: always */
    void (*fill)(pv_kernel_set *ks);        /* NULL: reference only */
} pv_variant;

static bool pv_runs_any(const pv_cpu_features *f) {
    (void)f;
    return true;
}

/* Fastest first: pv_kernels_best takes the first the CPU runs. */
static const pv_variant pv_variants[] = {
    {"avx512", pv_cpu_runs_avx512, pv_kernels_avx512_fill},
    {"avx2", pv_cpu_runs_avx2, pv_kernels_avx2_fill},
    {"ref", pv_runs_any, NULL},
};
#define PV_N_VARIANTS PV_ARRAY_LEN(pv_variants)

static pv_kernel_set g_sets[PV_N_VARIANTS];
static bool g_available[PV_N_VARIANTS];
static pthread_once_t g_sets_once = PTHREAD_ONCE_INIT;

static void pv_kernels_init(void) {
    pv_tensor_init(); /* the f16 table some kernels read */
    const pv_cpu_features *f = pv_cpu_features_get();
    for (size_t i = 0; i < PV_N_VARIANTS; i++) {
        g_available[i] = pv_variants[i].runs(f);
        pv_kernels_ref_fill(&g_sets[i]);
        g_sets[i].name = pv_variants[i].name;
        if (g_available[i] && pv_variants[i].fill) pv_variants[i].fill(&g_sets[i]);
    }
}

static int pv_variant_index(const char *name) {
    for (size_t i = 0; i < PV_N_VARIANTS; i++)
        if (name && strcmp(pv_variants[i].name, name) == 0) return (int)i;
    return -1;
}

const pv_kernel_set *pv_kernels_ref(void) {
    pthread_once(&g_sets_once, pv_kernels_init);
    return &g_sets[pv_variant_index("ref")];
}

const pv_kernel_set *pv_kernels_get(const char *name) {
    pthread_once(&g_sets_once, pv_kernels_init);
    int i = pv_variant_index(name);
    if (i < 0 || !g_available[i]) return NULL;
    return &g_sets[i];
}

static const pv_kernel_set *g_best;
static pthread_once_t g_best_once = PTHREAD_ONCE_INIT;

static void pv_kernels_best_init(void) {
    pthread_once(&g_sets_once, pv_kernels_init);
    const char *env = getenv("PENSIEVE_KERNELS");
    if (env && *env) {
        int i = pv_variant_index(env);
        if (i < 0) {
            PV_LOG_W("kernels", "PENSIEVE_KERNELS=%s is not a kernel set (ref, avx2, avx512); "
                                "choosing automatically", env);
        } else if (!g_available[i]) {
            PV_LOG_W("kernels", "PENSIEVE_KERNELS=%s: this CPU does not run it; "
                                "choosing automatically", env);
        } else {
            g_best = &g_sets[i];
            return;
        }
    }
    for (size_t i = 0; i < PV_N_VARIANTS; i++) {
        if (g_available[i]) {
            g_best = &g_sets[i];
            return;
        }
    }
}

const pv_kernel_set *pv_kernels_best(void) {
    pthread_once(&g_best_once, pv_kernels_best_init);
    return g_best;
}

/* ---- rope ---- */

void pv_rope_cos_sin(float *cs, float *sn, int64_t pos, int n_rot, float freq_base,
                     float freq_scale, const float *ff, float attn_factor) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        double theta = (double)pos * (double)freq_scale *
                       pow((double)freq_base, -2.0 * (double)i / (double)n_rot);
        if (ff) theta /= (double)ff[i];
        cs[i] = (float)(cos(theta) * (double)attn_factor);
        sn[i] = (float)(sin(theta) * (double)attn_factor);
    }
}

void pv_rope_llama3_factors(float *ff, int n_rot, float freq_base, float factor,
                            float low_freq_factor, float high_freq_factor, int orig_ctx) {
    const double two_pi = 6.283185307179586476925286766559;
    const double low_wl = (double)orig_ctx / (double)low_freq_factor;
    const double high_wl = (double)orig_ctx / (double)high_freq_factor;
    for (int i = 0; i < n_rot / 2; i++) {
        const double inv_freq = pow((double)freq_base, -2.0 * (double)i / (double)n_rot);
        const double wavelen = two_pi / inv_freq;
        double f;
        if (wavelen < high_wl) {
            f = 1.0;
        } else if (wavelen > low_wl) {
            f = (double)factor;
        } else {
            /* transformers: smooth interpolation between the scaled and unscaled
             * frequency; ff is the divisor that turns inv_freq into the new one */
            const double smooth = ((double)orig_ctx / wavelen - (double)low_freq_factor) /
                                  ((double)high_freq_factor - (double)low_freq_factor);
            const double inv_new = (1.0 - smooth) * inv_freq / (double)factor + smooth * inv_freq;
            f = inv_freq / inv_new;
        }
        ff[i] = (float)f;
    }
}
