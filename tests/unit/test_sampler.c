/* test_sampler.c — the sampler against distributions derived by hand in this file: a
 * five-token vocabulary with chosen probabilities p (logits = log p), for which top-k,
 * top-p, min-p and temperature have closed-form results, checked with a chi-square test
 * and a maximum deviation over 20000 seeded draws; a 4096-token geometric distribution for
 * top-p past the first selection block; reproducibility by seed; greedy ties; penalty
 * arithmetic written out from the llama.cpp / OpenAI formulas. */
#include "pv_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler/pv_sampler.h"

#define N_DRAWS 20000

static pv_sampler_params base_params(void) {
    pv_sampler_params p = pv_sampler_params_default();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.penalty_last_n = 64;
    p.seed = 12345;
    return p;
}

/* Draws N_DRAWS tokens (logits re-made each time since sampling may modify them) and
 * compares the histogram with `expect` (probabilities summing to 1, zero = never).
 * Chi-square critical values at p = 0.001 for up to 10 degrees of freedom are tabled. */
static void check_distribution(const pv_sampler_params *p, const float *logits, int n,
                               const double *expect) {
    static const double chi2_crit[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52,
                                       22.46, 24.32, 26.12, 27.88, 29.59};
    pv_sampler *s = pv_sampler_new(p, n);
    assert_non_null(s);
    int counts[16] = {0};
    float work[16];
    for (int d = 0; d < N_DRAWS; d++) {
        memcpy(work, logits, sizeof(float) * (size_t)n);
        int32_t t = pv_sampler_sample(s, work);
        assert_true(t >= 0 && t < n);
        counts[t]++;
    }
    double chi2 = 0.0, maxdev = 0.0;
    int df = -1;
    for (int i = 0; i < n; i++) {
        if (expect[i] == 0.0) {
            assert_int_equal(counts[i], 0); /* filtered tokens never appear */
            continue;
        }
        df++;
        double e = expect[i] * N_DRAWS;
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
        double dev = fabs((double)counts[i] / N_DRAWS - expect[i]);
        if (dev > maxdev) maxdev = dev;
    }
    if (df > 0) {
        if (chi2 >= chi2_crit[df]) print_error("chi2 %.2f df %d\n", chi2, df);
        assert_true(chi2 < chi2_crit[df]);
    }
    assert_true(maxdev < 0.015);
    pv_sampler_free(s);
}

static const double P5[5] = {0.4, 0.3, 0.15, 0.1, 0.05};

static void logits_from_p(const double *pr, int n, float *out, float shift) {
    for (int i = 0; i < n; i++) out[i] = (float)log(pr[i]) + shift;
}

/* Renormalises pr^(1/T) over the tokens where keep[i]. */
static void expected(const double *pr, int n, const int *keep, double temp, double *out) {
    double z = 0.0;
    for (int i = 0; i < n; i++) z += keep[i] ? pow(pr[i], 1.0 / temp) : 0.0;
    for (int i = 0; i < n; i++) out[i] = keep[i] ? pow(pr[i], 1.0 / temp) / z : 0.0;
}

static void test_temperature(void **state) {
    (void)state;
    float lg[5];
    logits_from_p(P5, 5, lg, 3.0f); /* a shift must not matter */
    const int all[5] = {1, 1, 1, 1, 1};
    const double temps[] = {1.0, 0.5, 2.0};
    for (size_t k = 0; k < PV_ARRAY_LEN(temps); k++) {
        pv_sampler_params p = base_params();
        p.temperature = (float)temps[k];
        double e[5];
        expected(P5, 5, all, temps[k], e);
        check_distribution(&p, lg, 5, e);
    }
}

static void test_top_k(void **state) {
    (void)state;
    float lg[5];
    /* permuted so that the best tokens are not the first ids */
    const double pr[5] = {0.1, 0.3, 0.05, 0.4, 0.15};
    logits_from_p(pr, 5, lg, 0.0f);
    pv_sampler_params p = base_params();
    p.top_k = 2;
    const int keep2[5] = {0, 1, 0, 1, 0};
    double e[5];
    expected(pr, 5, keep2, 1.0, e);
    check_distribution(&p, lg, 5, e);
    p.top_k = 3;
    p.temperature = 0.7f;
    const int keep3[5] = {0, 1, 0, 1, 1};
    expected(pr, 5, keep3, 0.7, e);
    check_distribution(&p, lg, 5, e);
    /* ties at the boundary: the lower ids win */
    const float flat[5] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    const double pflat[5] = {0.2, 0.2, 0.2, 0.2, 0.2};
    p.top_k = 2;
    p.temperature = 1.0f;
    const int keep01[5] = {1, 1, 0, 0, 0};
    expected(pflat, 5, keep01, 1.0, e);
    check_distribution(&p, flat, 5, e);
    p.top_k = 50; /* larger than the vocabulary: off */
    p.temperature = 1.0f;
    const int all[5] = {1, 1, 1, 1, 1};
    expected(pr, 5, all, 1.0, e);
    check_distribution(&p, lg, 5, e);
}

static void test_top_p(void **state) {
    (void)state;
    float lg[5];
    logits_from_p(P5, 5, lg, -1.0f);
    pv_sampler_params p = base_params();
    double e[5];
    /* cumulative 0.4, 0.7, 0.85, 0.95, 1: top_p 0.8 keeps three, 0.65 two, 0.3 one */
    p.top_p = 0.8f;
    const int k3[5] = {1, 1, 1, 0, 0};
    expected(P5, 5, k3, 1.0, e);
    check_distribution(&p, lg, 5, e);
    p.top_p = 0.65f;
    const int k2[5] = {1, 1, 0, 0, 0};
    expected(P5, 5, k2, 1.0, e);
    check_distribution(&p, lg, 5, e);
    p.top_p = 0.3f;
    const int k1[5] = {1, 0, 0, 0, 0};
    expected(P5, 5, k1, 1.0, e);
    check_distribution(&p, lg, 5, e);
}

static void test_min_p(void **state) {
    (void)state;
    float lg[5];
    logits_from_p(P5, 5, lg, 0.5f);
    pv_sampler_params p = base_params();
    double e[5];
    p.min_p = 0.3f; /* keeps p >= 0.12 */
    const int k3[5] = {1, 1, 1, 0, 0};
    expected(P5, 5, k3, 1.0, e);
    check_distribution(&p, lg, 5, e);
    p.min_p = 0.5f; /* keeps p >= 0.2 */
    p.temperature = 1.5f;
    const int k2[5] = {1, 1, 0, 0, 0};
    expected(P5, 5, k2, 1.5, e);
    check_distribution(&p, lg, 5, e);
}

static void test_chain(void **state) {
    (void)state;
    /* top_k 4 -> {.4,.3,.15,.1}/.95 = .421,.316,.158,.105; top_p .8: cumulative .421,
     * .737, .895 -> three; min_p .3 of .421 = .126 keeps all three; T .5 squares them. */
    float lg[5];
    logits_from_p(P5, 5, lg, 0.0f);
    pv_sampler_params p = base_params();
    p.top_k = 4;
    p.top_p = 0.8f;
    p.min_p = 0.3f;
    p.temperature = 0.5f;
    const int k3[5] = {1, 1, 1, 0, 0};
    double e[5];
    expected(P5, 5, k3, 0.5, e);
    check_distribution(&p, lg, 5, e);
    /* min_p applies after top_p: with min_p .5 (keeps >= .2105 of the renormalised set)
     * only the two best survive */
    p.min_p = 0.5f;
    const int k2[5] = {1, 1, 0, 0, 0};
    expected(P5, 5, k2, 0.5, e);
    check_distribution(&p, lg, 5, e);
}

/* Top-p over 4096 tokens with geometric probabilities placed on shuffled ids: the kept
 * prefix (100 tokens) spans more than one selection block. */
static void test_top_p_large(void **state) {
    (void)state;
    enum { N = 4096, KEEP = 100 };
    static float lg[N], work[N];
    static double pr[N];
    static int32_t perm[N];
    static int counts[N];
    const double q = 0.97;
    double z = 0.0;
    for (int r = 0; r < N; r++) z += pow(q, r);
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(pv_test_rng_u64(&rng) % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    double cum = 0.0;
    for (int r = 0; r < N; r++) {
        pr[perm[r]] = pow(q, r) / z;
        lg[perm[r]] = (float)(r * log(q));
        if (r < KEEP) cum += pow(q, r) / z;
    }
    /* halfway into the last kept token's probability, far from float rounding */
    double top_p = cum - 0.5 * pow(q, KEEP - 1) / z;
    pv_sampler_params p = base_params();
    p.top_p = (float)top_p;
    pv_sampler *s = pv_sampler_new(&p, N);
    assert_non_null(s);
    for (int d = 0; d < N_DRAWS; d++) {
        memcpy(work, lg, sizeof lg);
        int32_t t = pv_sampler_sample(s, work);
        assert_true(t >= 0 && t < N);
        counts[t]++;
    }
    double chi2 = 0.0;
    for (int r = 0; r < N; r++) {
        int id = perm[r];
        if (r >= KEEP) {
            assert_int_equal(counts[id], 0);
            continue;
        }
        double e = pr[id] / cum * N_DRAWS;
        chi2 += (counts[id] - e) * (counts[id] - e) / e;
    }
    /* 99 degrees of freedom: the p = 0.001 critical value is 148.2 */
    assert_true(chi2 < 148.2);
    pv_sampler_free(s);
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Top-p where thousands of candidates have almost the same logit (one logit bucket): the
 * exact cut inside that bucket. The oracle sorts the probabilities with qsort and takes
 * the shortest prefix reaching top_p, chosen halfway into the last kept token. */
static void test_top_p_flat(void **state) {
    (void)state;
    enum { N = 5000, KEEP = 2500 };
    static float lg[N], work[N];
    static double pr[N], sorted_pr[N];
    static int counts[N];
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 11);
    double z = 0.0;
    for (int i = 0; i < N; i++) {
        lg[i] = -0.05f * pv_test_rng_uniform(&rng);
        z += exp((double)lg[i]);
    }
    for (int i = 0; i < N; i++) sorted_pr[i] = pr[i] = exp((double)lg[i]) / z;
    qsort(sorted_pr, N, sizeof(double), cmp_desc);
    double cum = 0.0;
    for (int r = 0; r < KEEP; r++) cum += sorted_pr[r];
    double cutoff = sorted_pr[KEEP - 1]; /* kept: probability >= this */
    assert_true(sorted_pr[KEEP] < cutoff); /* no tie at the cut */
    pv_sampler_params p = base_params();
    p.top_p = (float)(cum - 0.5 * sorted_pr[KEEP - 1]);
    pv_sampler *s = pv_sampler_new(&p, N);
    assert_non_null(s);
    for (int d = 0; d < N_DRAWS; d++) {
        memcpy(work, lg, sizeof lg);
        int32_t t = pv_sampler_sample(s, work);
        assert_true(t >= 0 && t < N);
        counts[t]++;
        assert_true(pr[t] >= cutoff);
    }
    int distinct = 0;
    for (int i = 0; i < N; i++) distinct += counts[i] > 0;
    /* 20000 draws over 2500 near-uniform tokens: each is missed with probability ~e^-8 */
    assert_true(distinct > KEEP - 10 && distinct <= KEEP);
    pv_sampler_free(s);
}

static void test_seed(void **state) {
    (void)state;
    enum { N = 50, DRAWS = 200 };
    float lg[N], work[N];
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 3);
    for (int i = 0; i < N; i++) lg[i] = pv_test_rng_normal(&rng);
    pv_sampler_params p = base_params();
    p.seed = 42;
    pv_sampler *a = pv_sampler_new(&p, N), *b = pv_sampler_new(&p, N);
    p.seed = 43;
    pv_sampler *c = pv_sampler_new(&p, N);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    int32_t seq_a[DRAWS];
    int differ = 0;
    for (int d = 0; d < DRAWS; d++) {
        memcpy(work, lg, sizeof lg);
        seq_a[d] = pv_sampler_sample(a, work);
        memcpy(work, lg, sizeof lg);
        assert_int_equal(pv_sampler_sample(b, work), seq_a[d]);
        memcpy(work, lg, sizeof lg);
        differ += pv_sampler_sample(c, work) != seq_a[d];
    }
    assert_true(differ > DRAWS / 2); /* 50 roughly flat choices: a match is ~1/20 */
    pv_sampler_reset(a, 42);          /* reset reproduces the same stream */
    for (int d = 0; d < DRAWS; d++) {
        memcpy(work, lg, sizeof lg);
        assert_int_equal(pv_sampler_sample(a, work), seq_a[d]);
    }
    pv_sampler_free(a);
    pv_sampler_free(b);
    pv_sampler_free(c);
}

static void test_greedy(void **state) {
    (void)state;
    float lg[5] = {1.0f, 3.0f, -2.0f, 3.0f, 2.0f};
    pv_sampler_params p = base_params();
    p.temperature = 0.0f;
    pv_sampler *s = pv_sampler_new(&p, 5);
    assert_non_null(s);
    for (int i = 0; i < 10; i++) assert_int_equal(pv_sampler_sample(s, lg), 1); /* first max */
    pv_sampler_free(s);
    p.temperature = -1.0f;
    s = pv_sampler_new(&p, 5);
    float lg2[5] = {-INFINITY, -5.0f, NAN, -5.0f, -7.0f};
    assert_int_equal(pv_sampler_sample(s, lg2), 1);
    pv_sampler_free(s);
    const float nan_first[3] = {NAN, 0.5f, 0.5f};
    assert_int_equal(pv_sampler_argmax(nan_first, 3), 1);
    assert_int_equal(pv_sampler_argmax(nan_first, 0), 0);
    /* a single dominant token under sampling is always drawn */
    p.temperature = 1.0f;
    s = pv_sampler_new(&p, 5);
    for (int i = 0; i < 100; i++) {
        float lg3[5] = {0.0f, 0.0f, 200.0f, 0.0f, 0.0f};
        assert_int_equal(pv_sampler_sample(s, lg3), 2);
        float lg4[5] = {0.0f, NAN, 5.0f, INFINITY, 0.0f}; /* +inf wins, NaN never */
        assert_int_equal(pv_sampler_sample(s, lg4), 3);
    }
    pv_sampler_free(s);
    /* nothing finite, through every filter: falls back to argmax (first non-NaN) */
    p.top_p = 0.9f;
    p.min_p = 0.1f;
    for (int k = 0; k <= 2; k += 2) {
        p.top_k = k;
        s = pv_sampler_new(&p, 5);
        float lg5[5] = {NAN, -INFINITY, NAN, -INFINITY, -INFINITY};
        assert_int_equal(pv_sampler_sample(s, lg5), 1);
        pv_sampler_free(s);
    }
}

static void test_penalties(void **state) {
    (void)state;
    pv_sampler_params p = base_params();
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.penalty_last_n = 3;
    pv_sampler *s = pv_sampler_new(&p, 4);
    assert_non_null(s);
    pv_sampler_accept(s, 0);
    pv_sampler_accept(s, 1);
    pv_sampler_accept(s, 1);
    pv_sampler_accept(s, 99); /* out of range: ignored */
    pv_sampler_accept(s, -1);
    float lg[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    int32_t t = pv_sampler_sample(s, lg);
    /* token 0 (count 1): 2/2 - 0.25 - 0.5 = 0.25; token 1 (count 2): -2*2 - 0.5 - 0.5 = -5 */
    assert_float_equal(lg[0], 0.25f, 1e-6);
    assert_float_equal(lg[1], -5.0f, 1e-6);
    assert_float_equal(lg[2], 1.0f, 0.0);
    assert_float_equal(lg[3], 0.5f, 0.0);
    assert_int_equal(t, 2);
    /* window of 3: accepting 2 pushes token 0 out */
    pv_sampler_accept(s, 2);
    float lg2[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    pv_sampler_sample(s, lg2);
    assert_float_equal(lg2[0], 2.0f, 0.0);
    assert_float_equal(lg2[1], -5.0f, 1e-6);
    assert_float_equal(lg2[2], 1.0f / 2.0f - 0.25f - 0.5f, 1e-6);
    /* reset forgets the history */
    pv_sampler_reset(s, 1);
    float lg3[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    pv_sampler_sample(s, lg3);
    assert_float_equal(lg3[0], 2.0f, 0.0);
    assert_float_equal(lg3[1], -2.0f, 0.0);
    pv_sampler_free(s);

    /* last_n -1 keeps the whole history; 0 disables */
    p.penalty_last_n = -1;
    p.presence_penalty = 0.0f;
    p.repeat_penalty = 1.0f;
    p.frequency_penalty = 1.0f;
    s = pv_sampler_new(&p, 4);
    for (int i = 0; i < 100; i++) pv_sampler_accept(s, 3);
    float lg4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    pv_sampler_sample(s, lg4);
    assert_float_equal(lg4[3], -100.0f, 1e-4);
    pv_sampler_free(s);
    p.penalty_last_n = 0;
    s = pv_sampler_new(&p, 4);
    pv_sampler_accept(s, 3);
    float lg5[4] = {0.0f, 0.0f, 0.0f, 1.0f};
    assert_int_equal(pv_sampler_sample(s, lg5), 3);
    assert_float_equal(lg5[3], 1.0f, 0.0);
    pv_sampler_free(s);

    /* a repetition penalty flips a greedy choice: 2/1.1 = 1.818 < 1.9 */
    p.penalty_last_n = 64;
    p.frequency_penalty = 0.0f;
    p.repeat_penalty = 1.1f;
    s = pv_sampler_new(&p, 2);
    float lg6[2] = {2.0f, 1.9f};
    assert_int_equal(pv_sampler_sample(s, lg6), 0);
    pv_sampler_accept(s, 0);
    float lg7[2] = {2.0f, 1.9f};
    assert_int_equal(pv_sampler_sample(s, lg7), 1);
    pv_sampler_free(s);

    /* invalid construction */
    assert_null(pv_sampler_new(&p, 0));
    p.penalty_last_n = -2;
    assert_null(pv_sampler_new(&p, 4));
}

/* ---- stop strings ---- */

/* Takes everything available into out (appending at *n). */
static void drain(pv_stop *st, char *out, size_t *n, bool finish) {
    char tmp[3]; /* tiny on purpose: take must be callable repeatedly */
    size_t k;
    while ((k = finish ? pv_stop_finish(st, tmp, sizeof tmp) : pv_stop_take(st, tmp, sizeof tmp)) > 0) {
        memcpy(out + *n, tmp, k);
        *n += k;
    }
    out[*n] = '\0';
}

static void test_stop_across_pushes(void **state) {
    (void)state;
    const char *stops[] = {"<|end|>"};
    pv_stop *st = pv_stop_new(stops, 1);
    assert_non_null(st);
    char out[128];
    size_t n = 0, which = 99;
    assert_false(pv_stop_push(st, "Hello <|", 8, &which));
    assert_int_equal(pv_stop_available(st), 6); /* "<|" held */
    drain(st, out, &n, false);
    assert_string_equal(out, "Hello ");
    assert_false(pv_stop_push(st, "en", 2, &which));
    assert_int_equal(pv_stop_available(st), 0);
    assert_true(pv_stop_push(st, "d|> more", 8, &which));
    assert_int_equal(which, 0);
    drain(st, out, &n, false);
    assert_string_equal(out, "Hello ");
    assert_true(pv_stop_push(st, "x", 1, &which)); /* after the match: ignored */
    drain(st, out, &n, true);
    assert_string_equal(out, "Hello ");
    pv_stop_free(st);
}

static void test_stop_false_start(void **state) {
    (void)state;
    const char *stops[] = {"</s>"};
    pv_stop *st = pv_stop_new(stops, 1);
    char out[128];
    size_t n = 0, which;
    assert_false(pv_stop_push(st, "a</", 3, &which));
    drain(st, out, &n, false);
    assert_string_equal(out, "a");
    assert_false(pv_stop_push(st, "x>", 2, &which));
    drain(st, out, &n, false);
    assert_string_equal(out, "a</x>");
    /* a held tail at the end is released by finish */
    assert_false(pv_stop_push(st, " </", 3, &which));
    drain(st, out, &n, false);
    assert_string_equal(out, "a</x> ");
    drain(st, out, &n, true);
    assert_string_equal(out, "a</x> </");
    /* overlapping self-prefix: "aab" inside "aaab" */
    const char *stops2[] = {"aab"};
    pv_stop *s2 = pv_stop_new(stops2, 1);
    n = 0;
    for (const char *c = "aaa"; *c; c++) assert_false(pv_stop_push(s2, c, 1, &which));
    assert_int_equal(pv_stop_available(s2), 1); /* "aa" could still start "aab" */
    assert_true(pv_stop_push(s2, "b", 1, &which));
    drain(s2, out, &n, true);
    assert_string_equal(out, "a");
    pv_stop_free(s2);
    pv_stop_free(st);
}

static void test_stop_prefix_stops(void **state) {
    (void)state;
    char out[64];
    size_t n = 0, which = 99;
    /* "ab" completes first even though "abc" might follow */
    const char *s1[] = {"abc", "ab"};
    pv_stop *st = pv_stop_new(s1, 2);
    assert_true(pv_stop_push(st, "xab", 3, &which));
    assert_int_equal(which, 1);
    drain(st, out, &n, true);
    assert_string_equal(out, "x");
    pv_stop_free(st);
    /* "b" completes inside a possible "abc": the earlier completion wins */
    const char *s2[] = {"abc", "b"};
    st = pv_stop_new(s2, 2);
    n = 0;
    assert_false(pv_stop_push(st, "a", 1, &which));
    assert_int_equal(pv_stop_available(st), 0);
    assert_true(pv_stop_push(st, "b", 1, &which));
    assert_int_equal(which, 1);
    drain(st, out, &n, true);
    assert_string_equal(out, "a");
    pv_stop_free(st);
    /* both end together: the longer (earlier start) wins; empty stops are ignored */
    const char *s3[] = {"", "bc", "abc"};
    st = pv_stop_new(s3, 3);
    n = 0;
    assert_true(pv_stop_push(st, "zabcz", 5, &which));
    assert_int_equal(which, 2);
    drain(st, out, &n, true);
    assert_string_equal(out, "z");
    pv_stop_free(st);
    /* a stop in the middle of a single push; reset makes it reusable */
    const char *s4[] = {"STOP"};
    st = pv_stop_new(s4, 1);
    n = 0;
    assert_true(pv_stop_push(st, "hello STOP world", 16, &which));
    drain(st, out, &n, false);
    assert_string_equal(out, "hello ");
    pv_stop_reset(st);
    n = 0;
    assert_false(pv_stop_push(st, "STO", 3, &which));
    assert_false(pv_stop_push(st, "STOSTO", 6, &which));
    drain(st, out, &n, false);
    assert_string_equal(out, "STOSTO");
    drain(st, out, &n, true);
    assert_string_equal(out, "STOSTOSTO");
    assert_false(pv_stop_failed(st));
    pv_stop_free(st);
}

static void test_stop_utf8(void **state) {
    (void)state;
    char out[64];
    size_t n = 0, which;
    /* no stops: only incomplete characters are held; "€" = E2 82 AC over three pushes */
    pv_stop *st = pv_stop_new(NULL, 0);
    assert_non_null(st);
    assert_false(pv_stop_push(st, "a\xE2", 2, &which));
    assert_int_equal(pv_stop_available(st), 1);
    assert_false(pv_stop_push(st, "\x82", 1, &which));
    assert_int_equal(pv_stop_available(st), 1);
    assert_false(pv_stop_push(st, "\xAC" "b\xC3", 3, &which));
    assert_int_equal(pv_stop_available(st), 5);
    drain(st, out, &n, false);
    assert_string_equal(out, "a\xE2\x82\xAC" "b");
    assert_false(pv_stop_push(st, "\xA9", 1, &which)); /* completes "é" */
    drain(st, out, &n, false);
    assert_string_equal(out, "a\xE2\x82\xAC" "b\xC3\xA9");
    assert_false(pv_stop_push(st, "\xF0\x9F", 2, &which)); /* truncated 4-byte char */
    assert_int_equal(pv_stop_available(st), 0);
    drain(st, out, &n, true); /* the end releases it as it is */
    assert_int_equal(n, 9);
    pv_stop_free(st);

    /* a multi-byte stop string split inside its first character */
    const char *stops[] = {"\xE2\x86\x92" "END"}; /* "→END" */
    st = pv_stop_new(stops, 1);
    n = 0;
    assert_false(pv_stop_push(st, "x\xE2\x86", 3, &which));
    assert_int_equal(pv_stop_available(st), 1);
    assert_false(pv_stop_push(st, "\x92" "EN", 3, &which));
    assert_int_equal(pv_stop_available(st), 1);
    assert_true(pv_stop_push(st, "D!", 2, &which));
    drain(st, out, &n, true);
    assert_string_equal(out, "x");
    pv_stop_free(st);

    /* "→" followed by something else: released whole, never split */
    st = pv_stop_new(stops, 1);
    n = 0;
    assert_false(pv_stop_push(st, "\xE2\x86\x92", 3, &which));
    assert_int_equal(pv_stop_available(st), 0);
    assert_false(pv_stop_push(st, "\xC3", 1, &which)); /* mismatch, but "é" incomplete */
    assert_int_equal(pv_stop_available(st), 3);
    assert_false(pv_stop_push(st, "\xA9", 1, &which));
    drain(st, out, &n, false);
    assert_string_equal(out, "\xE2\x86\x92\xC3\xA9");
    pv_stop_free(st);
}

static void test_stop_large(void **state) {
    (void)state;
    /* more text than the initial buffer without taking: the buffer grows */
    const char *stops[] = {"#"};
    pv_stop *st = pv_stop_new(stops, 1);
    static char big[10000], out[10001];
    memset(big, 'x', sizeof big);
    size_t which, n = 0;
    for (int i = 0; i < 3; i++) assert_false(pv_stop_push(st, big, sizeof big / 4, &which));
    assert_int_equal(pv_stop_available(st), 3 * (sizeof big / 4));
    assert_true(pv_stop_push(st, "yy#", 3, &which));
    drain(st, out, &n, true);
    assert_int_equal(n, 3 * (sizeof big / 4) + 2);
    assert_false(pv_stop_failed(st));
    pv_stop_free(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_temperature),   cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),         cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_chain),         cmocka_unit_test(test_top_p_large),
        cmocka_unit_test(test_top_p_flat),
        cmocka_unit_test(test_seed),          cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_penalties),     cmocka_unit_test(test_stop_across_pushes),
        cmocka_unit_test(test_stop_false_start), cmocka_unit_test(test_stop_prefix_stops),
        cmocka_unit_test(test_stop_utf8),     cmocka_unit_test(test_stop_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
