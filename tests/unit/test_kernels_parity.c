/* test_kernels_parity.c — every kernel variant the CPU runs (ref, avx2, avx512) against
 * the reference set, for every weight type: vec_dot, activation quantizers (bit-exact),
 * gemm over odd shapes and row slices, rmsnorm, softmax, silu_mul, add, scale and
 * attn_head with F32 and F16 K/V. Inputs are fresh random data each run; the seed comes
 * from the clock (override with PV_TEST_SEED) and is printed so a failure can be rerun.
 *
 * Tolerances: SIMD dot products compute the same exact integer block sums as the
 * reference and differ only in the order of float additions (and, for float weights,
 * float vs double accumulation), so results must agree to a few float ulps of the
 * magnitude sum |w|.|x|: 1e-5 of sum |w_i x_i|. Row-wise kernels use a vector exp with
 * ~2e-7 relative error, so 2e-6 relative. The activation quantizers (Q8_0, Q8_1, Q8_K)
 * must be bit-identical to the reference set's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_test.h"
#include "kernels/pv_kernels.h"
#include "kernels/ref/pv_kernels_ref.h"
#include "tensor/pv_tensor.h"

static uint64_t g_seed;
static const char *const g_variants[] = {"ref", "avx2", "avx512"};
static const pv_type g_weight_types[] = {PV_TYPE_F32, PV_TYPE_F16, PV_TYPE_BF16, PV_TYPE_Q4_0,
                                         PV_TYPE_Q4_1, PV_TYPE_Q5_0, PV_TYPE_Q5_1, PV_TYPE_Q8_0,
                                         PV_TYPE_Q4_K, PV_TYPE_Q5_K, PV_TYPE_Q6_K};
#define N_WTYPES (sizeof g_weight_types / sizeof g_weight_types[0])
#define DOT_TOL 1e-5

static void fill_normal(pv_test_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * pv_test_rng_normal(r);
}

/* The variants to test; prints the skipped ones. */
static int variants(const pv_kernel_set *out[3]) {
    int n = 0;
    for (int i = 0; i < 3; i++) {
        const pv_kernel_set *ks = pv_kernels_get(g_variants[i]);
        if (ks) out[n++] = ks;
        else printf("  variant %s: not supported by this CPU, skipped\n", g_variants[i]);
    }
    return n;
}

/* element count used for a type: several blocks, and for float types not a multiple of 8
 * so the SIMD tails run */
static int64_t k_for(pv_type t, int variant_k) {
    const int64_t bs = pv_type_traits_get(t)->blck_size;
    if (bs == 1) return variant_k == 0 ? 1003 : variant_k == 1 ? 8 : 77;
    if (bs == 32) return variant_k == 0 ? 32 * 13 : variant_k == 1 ? 32 : 32 * 4;
    return variant_k == 0 ? 256 * 3 : variant_k == 1 ? 256 : 512;
}

/* sum_i |w_i x_i| of the dequantized rows (the scale of the rounding error) */
static double abs_dot(const float *wd, const float *xd, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m += fabs((double)wd[i] * xd[i]);
    return m;
}

static void test_vec_dot(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const pv_kernel_set *ref = pv_kernels_ref();
    pv_test_rng r;
    pv_test_rng_seed(&r, g_seed ^ 1);
    const int64_t nmax = 1024;
    float *w = malloc(nmax * 4), *x = malloc(nmax * 4), *wd = malloc(nmax * 4), *xd = malloc(nmax * 4);
    uint8_t *wq = malloc(nmax * 4), *xq = malloc(nmax * 4);
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        const pv_type t = g_weight_types[ti];
        const pv_type_traits *tr = pv_type_traits_get(t);
        const pv_type_traits *vt = pv_type_traits_get(tr->vec_dot_type);
        for (int kv = 0; kv < 3; kv++) {
            const int64_t n = k_for(t, kv);
            for (int rep = 0; rep < 8; rep++) {
                fill_normal(&r, w, n, rep == 0 ? 1e-3f : 0.05f);
                fill_normal(&r, x, n, rep == 1 ? 100.0f : 1.0f);
                if (rep == 2) /* extreme quants: large and small magnitudes mixed */
                    for (int64_t i = 0; i < n; i += 7) w[i] *= 50.0f;
                tr->from_float(w, wq, n);
                vt->from_float(x, xq, n);
                tr->to_float(wq, wd, n);
                vt->to_float(xq, xd, n);
                const double mag = abs_dot(wd, xd, n);
                float want;
                ref->vec_dot[t](n, &want, wq, xq);
                for (int v = 0; v < nv; v++) {
                    float got = NAN;
                    sets[v]->vec_dot[t](n, &got, wq, xq);
                    if (!(fabs(got - want) <= DOT_TOL * mag + 1e-30))
                        fail_msg("%s vec_dot %s n=%lld: %.9g vs ref %.9g (mag %.3g, seed %llu)",
                                 sets[v]->name, tr->name, (long long)n, got, want, mag,
                                 (unsigned long long)g_seed);
                }
            }
        }
    }
    free(w); free(x); free(wd); free(xd); free(wq); free(xq);
}

static void test_quantize_bitexact(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const pv_type acts[] = {PV_TYPE_Q8_0, PV_TYPE_Q8_1, PV_TYPE_Q8_K};
    pv_test_rng r;
    pv_test_rng_seed(&r, g_seed ^ 2);
    const int64_t n = 256 * 6;
    float *x = malloc(n * 4);
    uint8_t *a = malloc(n * 2), *b = malloc(n * 2);
    for (int rep = 0; rep < 40; rep++) {
        fill_normal(&r, x, n, rep % 3 == 0 ? 1e-4f : rep % 3 == 1 ? 1.0f : 300.0f);
        if (rep == 0) memset(x, 0, 256 * 4); /* zero blocks */
        if (rep == 1) { /* ties in the roundings: amax 127 (scale 1) with x.5 values */
            for (int i = 0; i < 256; i++) x[i] = (float)((i % 64) - 32) + 0.5f;
            x[0] = 127.0f;
            x[32] = -127.0f;
            x[33] = 126.5f;
        }
        if (rep == 2) /* equal magnitudes of both signs: first one decides Q8_K's sign */
            for (int i = 0; i < 256; i++) x[i] = (i & 1) ? -3.0f : 3.0f;
        for (size_t ai = 0; ai < 3; ai++) {
            const size_t bytes = pv_type_row_size(acts[ai], n);
            memset(a, 0x55, bytes);
            pv_kernels_ref()->quantize[acts[ai]](x, a, n);
            for (int v = 0; v < nv; v++) {
                memset(b, 0xaa, bytes);
                sets[v]->quantize[acts[ai]](x, b, n);
                if (memcmp(a, b, bytes) != 0) {
                    size_t at = 0;
                    while (a[at] == b[at]) at++;
                    fail_msg("%s quantize %s differs from ref at byte %zu (rep %d, seed %llu)",
                             sets[v]->name, pv_type_name(acts[ai]), at, rep, (unsigned long long)g_seed);
                }
            }
        }
    }
    free(x); free(a); free(b);
}

/* gemm over odd shapes: rows and tokens not multiples of any tile, a row slice [r0, r1)
 * of a larger matrix, y_stride > rows, untouched outputs must stay untouched. */
static void test_gemm(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const pv_kernel_set *ref = pv_kernels_ref();
    pv_test_rng r;
    pv_test_rng_seed(&r, g_seed ^ 3);
    /* rows in the slice: every remainder mod 4 (and mod 2); tokens: every remainder */
    const int64_t shapes[][2] = {{1, 1}, {5, 3}, {14, 7}, {19, 6}, {4, 4}, {10, 1}, {35, 9}, {3, 2}, {2, 5}};
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        const pv_type t = g_weight_types[ti];
        const pv_type_traits *tr = pv_type_traits_get(t);
        const pv_type_traits *vt = pv_type_traits_get(tr->vec_dot_type);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int64_t rows = shapes[si][0] + 2, ntok = shapes[si][1];
            const int64_t k = k_for(t, (int)(si % 3) == 1 ? 2 : (int)(si % 3));
            const int64_t r0 = 1, r1 = rows - 1, ys = rows + 3;
            const size_t wrow = pv_type_row_size(t, k), xrow = pv_type_row_size(vt == tr ? t : tr->vec_dot_type, k);
            float *w = malloc(rows * k * 4), *x = malloc(ntok * k * 4), *wd = malloc(rows * k * 4),
                  *xd = malloc(ntok * k * 4);
            uint8_t *W = malloc(rows * wrow), *X = malloc(ntok * xrow);
            float *yref = malloc(ntok * ys * 4), *y = malloc(ntok * ys * 4);
            fill_normal(&r, w, rows * k, 0.1f);
            fill_normal(&r, x, ntok * k, 1.0f);
            for (int64_t i = 0; i < rows; i++) {
                tr->from_float(w + i * k, W + i * wrow, k);
                tr->to_float(W + i * wrow, wd + i * k, k);
            }
            for (int64_t i = 0; i < ntok; i++) {
                vt->from_float(x + i * k, X + i * xrow, k);
                vt->to_float(X + i * xrow, xd + i * k, k);
            }
            for (int64_t i = 0; i < ntok * ys; i++) yref[i] = -777.0f;
            ref->gemm(t, k, W, wrow, r0, r1, X, xrow, ntok, yref, ys);
            for (int v = 0; v < nv; v++) {
                for (int64_t i = 0; i < ntok * ys; i++) y[i] = -777.0f;
                sets[v]->gemm(t, k, W, wrow, r0, r1, X, xrow, ntok, y, ys);
                for (int64_t tt = 0; tt < ntok; tt++) {
                    for (int64_t rr = 0; rr < ys; rr++) {
                        const float got = y[tt * ys + rr], want = yref[tt * ys + rr];
                        if (rr < r0 || rr >= r1) {
                            if (got != -777.0f)
                                fail_msg("%s gemm %s wrote outside rows [%lld,%lld): row %lld",
                                         sets[v]->name, tr->name, (long long)r0, (long long)r1, (long long)rr);
                            continue;
                        }
                        const double mag = abs_dot(wd + rr * k, xd + tt * k, k);
                        if (!(fabs(got - want) <= DOT_TOL * mag + 1e-30))
                            fail_msg("%s gemm %s rows=%lld ntok=%lld k=%lld at (t %lld, r %lld): %.9g vs %.9g (seed %llu)",
                                     sets[v]->name, tr->name, (long long)rows, (long long)ntok,
                                     (long long)k, (long long)tt, (long long)rr, got, want,
                                     (unsigned long long)g_seed);
                    }
                }
            }
            free(w); free(x); free(wd); free(xd); free(W); free(X); free(yref); free(y);
        }
    }
}

/* a larger prompt-like batch so the token chunking inside gemm is exercised */
static void test_gemm_large_batch(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const pv_kernel_set *ref = pv_kernels_ref();
    pv_test_rng r;
    pv_test_rng_seed(&r, g_seed ^ 4);
    const pv_type types[] = {PV_TYPE_Q4_0, PV_TYPE_Q8_0, PV_TYPE_Q4_K, PV_TYPE_F32};
    /* 130 tokens: more than one L2 chunk of activations for every type (the chunk is
     * 256 KiB / row size: 120 tokens for Q4_0/Q8_0 at k = 2048, 112 for Q4_K, 32 for F32) */
    const int64_t k = 2048, rows = 9, ntok = 130;
    float *x = malloc(ntok * k * 4), *w = malloc(rows * k * 4);
    uint8_t *X = malloc(ntok * k * 4), *W = malloc(rows * k * 4);
    float *yref = malloc(ntok * rows * 4), *y = malloc(ntok * rows * 4);
    fill_normal(&r, x, ntok * k, 1.0f);
    fill_normal(&r, w, rows * k, 0.1f);
    for (size_t ti = 0; ti < 4; ti++) {
        const pv_type_traits *tr = pv_type_traits_get(types[ti]);
        const pv_type_traits *vt = pv_type_traits_get(tr->vec_dot_type);
        const size_t wrow = pv_type_row_size(types[ti], k), xrow = pv_type_row_size(tr->vec_dot_type, k);
        for (int64_t i = 0; i < rows; i++) tr->from_float(w + i * k, W + i * wrow, k);
        for (int64_t i = 0; i < ntok; i++) vt->from_float(x + i * k, X + i * xrow, k);
        ref->gemm(types[ti], k, W, wrow, 0, rows, X, xrow, ntok, yref, rows);
        for (int v = 0; v < nv; v++) {
            sets[v]->gemm(types[ti], k, W, wrow, 0, rows, X, xrow, ntok, y, rows);
            for (int64_t i = 0; i < ntok * rows; i++) {
                /* magnitude bound: |w|.|x| <= 0.1*1*k*(E|z|)^2 ~ 0.064 k; use rms-based */
                const double tol = DOT_TOL * 0.1 * k;
                if (!(fabs(y[i] - yref[i]) <= tol))
                    fail_msg("%s gemm %s large batch elem %lld: %g vs %g", sets[v]->name, tr->name,
                             (long long)i, y[i], yref[i]);
            }
        }
    }
    free(x); free(w); free(X); free(W); free(yref); free(y);
}

static void check_close(const char *what, const char *variant, const float *got,
                        const float *want, int64_t n, double rel, double abs_tol) {
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs(got[i] - want[i]) <= rel * fabs(want[i]) + abs_tol))
            fail_msg("%s %s n=%lld at %lld: %.9g vs ref %.9g (seed %llu)", variant, what,
                     (long long)n, (long long)i, got[i], want[i], (unsigned long long)g_seed);
    }
}

static void test_rowwise(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const pv_kernel_set *ref = pv_kernels_ref();
    pv_test_rng r;
    pv_test_rng_seed(&r, g_seed ^ 5);
    const int64_t sizes[] = {1, 7, 8, 9, 64, 100, 4096, 5003};
    enum { NMAX = 5003 };
    static float x[NMAX], w[NMAX], u[NMAX], a[NMAX], b[NMAX];
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t n = sizes[si];
        fill_normal(&r, x, n, 4.0f);
        fill_normal(&r, w, n, 1.0f);
        fill_normal(&r, u, n, 1.0f);
        if (n > 8) { x[3] = -95.0f; x[5] = 90.0f; } /* exp range ends */
        for (int v = 0; v < nv; v++) {
            const char *vn = sets[v]->name;
            ref->rmsnorm(a, x, w, n, 1e-6f);
            sets[v]->rmsnorm(b, x, w, n, 1e-6f);
            check_close("rmsnorm", vn, b, a, n, 1e-6, 1e-30);
            memcpy(b, x, n * 4);
            sets[v]->rmsnorm(b, b, NULL, n, 1e-6f); /* aliasing, no weight */
            ref->rmsnorm(a, x, NULL, n, 1e-6f);
            check_close("rmsnorm(in place)", vn, b, a, n, 1e-6, 1e-30);

            memcpy(a, x, n * 4);
            memcpy(b, x, n * 4);
            ref->softmax(a, n);
            sets[v]->softmax(b, n);
            check_close("softmax", vn, b, a, n, 2e-6, 1e-37);

            ref->silu_mul(a, x, u, n);
            sets[v]->silu_mul(b, x, u, n);
            check_close("silu_mul", vn, b, a, n, 2e-6, 1e-30);
            memcpy(b, x, n * 4);
            sets[v]->silu_mul(b, b, u, n); /* y aliases g */
            check_close("silu_mul(in place)", vn, b, a, n, 2e-6, 1e-30);

            ref->add(a, x, u, n);
            memcpy(b, x, n * 4);
            sets[v]->add(b, b, u, n);
            check_close("add", vn, b, a, n, 0, 0);

            memcpy(a, x, n * 4);
            memcpy(b, x, n * 4);
            ref->scale(a, -0.3f, n);
            sets[v]->scale(b, -0.3f, n);
            check_close("scale", vn, b, a, n, 0, 0);

            /* rope: all variants currently share the reference, but check anyway */
            if (n >= 64) {
                float cs[16], sn[16];
                pv_rope_cos_sin(cs, sn, 123, 32, 10000.0f, 1.0f, NULL, 1.0f);
                memcpy(a, x, 64 * 4);
                memcpy(b, x, 64 * 4);
                ref->rope(a, 2, 32, 32, PV_ROPE_NEOX, cs, sn);
                sets[v]->rope(b, 2, 32, 32, PV_ROPE_NEOX, cs, sn);
                check_close("rope", vn, b, a, 64, 1e-6, 1e-7);
            }
        }
    }
}

static void test_attention(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const pv_kernel_set *ref = pv_kernels_ref();
    pv_test_rng r;
    pv_test_rng_seed(&r, g_seed ^ 6);
    const int hds[] = {64, 128, 80, 12, 100};
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const int hd = hds[hi];
        /* 1..9 every one, then a spread up to and including 300 */
        for (int64_t nkv = 1; nkv <= 300; nkv = nkv < 9 ? nkv + 1 : nkv == 268 ? 300 : nkv + 37) {
            for (int f16 = 0; f16 < 2; f16++) {
                const size_t esz = f16 ? 2 : 4;
                /* rows two heads apart; f16 rows additionally off 16-byte alignment */
                const size_t stride = (size_t)hd * esz * 2 + (f16 ? 2 : 0);
                uint8_t *K = malloc(nkv * stride), *V = malloc(nkv * stride);
                float q[128], a[128], b[128];
                float *s1 = malloc(nkv * 4), *s2 = malloc(nkv * 4);
                fill_normal(&r, q, hd, 1.0f);
                for (int64_t j = 0; j < nkv; j++) {
                    for (int d = 0; d < hd; d++) {
                        const float kv = 2.0f * pv_test_rng_normal(&r), vv = pv_test_rng_normal(&r);
                        if (f16) {
                            memcpy(K + j * stride + d * 2, &(pv_f16){pv_f32_to_f16(kv)}, 2);
                            memcpy(V + j * stride + d * 2, &(pv_f16){pv_f32_to_f16(vv)}, 2);
                        } else {
                            memcpy(K + j * stride + d * 4, &kv, 4);
                            memcpy(V + j * stride + d * 4, &vv, 4);
                        }
                    }
                }
                const size_t st = stride;
                const float scale = 1.0f / sqrtf((float)hd);
                ref->attn_head(a, q, K, V, st, f16 ? PV_TYPE_F16 : PV_TYPE_F32, nkv, hd, scale, s1);
                for (int v = 0; v < nv; v++) {
                    sets[v]->attn_head(b, q, K, V, st, f16 ? PV_TYPE_F16 : PV_TYPE_F32, nkv, hd, scale, s2);
                    /* outputs are convex combinations of V entries of size ~1: absolute 2e-6 */
                    char what[64];
                    snprintf(what, sizeof what, "attn_head(%s, hd=%d, n_kv=%lld)", f16 ? "f16" : "f32",
                             hd, (long long)nkv);
                    check_close(what, sets[v]->name, b, a, hd, 1e-5, 2e-6);
                }
                free(K); free(V); free(s1); free(s2);
            }
        }
    }
}

/* Non-finite and huge inputs (a corrupt activation, an overflowing layer) must not crash
 * or trip the sanitizers in any quantizer or dot product; the values are not checked. */
static void test_nonfinite_inputs(void **state) {
    (void)state;
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    const int64_t n = 512;
    float x[512];
    static uint8_t q[512 * 4], a[512 * 4];
    const float specials[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-45f, 0.0f, -0.0f};
    for (int64_t i = 0; i < n; i++) x[i] = specials[i % 8] * (i % 3 == 0 ? 1.0f : 0.5f);
    for (size_t ti = 0; ti < N_WTYPES; ti++) {
        const pv_type_traits *tr = pv_type_traits_get(g_weight_types[ti]);
        const pv_type_traits *vt = pv_type_traits_get(tr->vec_dot_type);
        tr->from_float(x, q, n);
        vt->from_float(x, a, n);
        float out[512];
        tr->to_float(q, out, n);
        for (int v = 0; v < nv; v++) {
            float d;
            if (tr->vec_dot_type != PV_TYPE_F32) sets[v]->quantize[tr->vec_dot_type](x, a, n);
            sets[v]->vec_dot[g_weight_types[ti]](n, &d, q, a);
            sets[v]->gemm(g_weight_types[ti], n, q, pv_type_row_size(g_weight_types[ti], n), 0, 1,
                          a, pv_type_row_size(tr->vec_dot_type, n), 1, &d, 1);
        }
    }
    for (int v = 0; v < nv; v++) {
        float y[512];
        sets[v]->rmsnorm(y, x, NULL, n, 1e-5f);
        memcpy(y, x, sizeof y);
        sets[v]->softmax(y, n);
        sets[v]->silu_mul(y, x, x, n);
    }
    assert_true(nv >= 1);
}

int main(void) {
    const char *s = getenv("PV_TEST_SEED");
    g_seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    printf("test_kernels_parity: seed %llu (rerun with PV_TEST_SEED=%llu)\n",
           (unsigned long long)g_seed, (unsigned long long)g_seed);
    const pv_kernel_set *sets[3];
    const int nv = variants(sets);
    printf("  variants tested:");
    for (int i = 0; i < nv; i++) printf(" %s", sets[i]->name);
    printf(" (best: %s)\n", pv_kernels_best()->name);
    /* the SIMD sets must really provide their own kernels (not ref fallbacks) */
    for (int i = 0; i < nv; i++) {
        if (strcmp(sets[i]->name, "ref") == 0) continue;
        const pv_kernel_set *ref = pv_kernels_ref();
        for (size_t t = 0; t < N_WTYPES; t++)
            if (sets[i]->vec_dot[g_weight_types[t]] == ref->vec_dot[g_weight_types[t]]) {
                printf("%s: vec_dot %s is the reference one\n", sets[i]->name, pv_type_name(g_weight_types[t]));
                return 1;
            }
        if (sets[i]->gemm == ref->gemm || sets[i]->attn_head == ref->attn_head ||
            sets[i]->quantize[PV_TYPE_Q8_0] == ref->quantize[PV_TYPE_Q8_0] ||
            sets[i]->quantize[PV_TYPE_Q8_K] == ref->quantize[PV_TYPE_Q8_K]) {
            printf("%s: a hot kernel is the reference one\n", sets[i]->name);
            return 1;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_quantize_bitexact),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_gemm_large_batch),
        cmocka_unit_test(test_rowwise),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_nonfinite_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
