/* sampler.c — the token sampler declared in pv_sampler.h: penalties over a sliding window
 * of accepted tokens, then top-k, top-p, min-p, temperature and a seeded draw (llama.cpp's
 * default chain order). Every buffer is allocated in pv_sampler_new, so sampling and
 * accepting never allocate. Candidates carry (logit, id) and are ordered by logit
 * descending with the lower id first on ties, a total order that makes every step
 * deterministic. Top-k keeps a k-element heap while scanning the logits and sorts only the
 * k survivors; top-p without top-k finds its cut with a quickselect weighted by probability
 * mass (O(n) expected, no full sort of a 150k vocabulary); min-p is a filter. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_sampler.h"

typedef struct pv_cand {
    float logit;
    int32_t id;
    float w; /* exp(logit - max): top-p's probability mass, unnormalised */
} pv_cand;

struct pv_sampler {
    pv_sampler_params p;
    int32_t n_vocab;
    pv_rng rng;

    pv_cand *cand; /* [n_vocab] working candidate list */
    float *w;      /* [n_vocab] unnormalised probabilities of the final draw */

    /* penalty history: a ring of the last `ring_cap` accepted tokens (ring_cap 0 with
     * penalty_last_n -1: keep everything), per-token counts over that window, and the
     * list of distinct tokens with a non-zero count (so penalties touch only those). */
    int32_t *ring;
    int32_t ring_cap, ring_len, ring_head;
    int32_t *count;       /* [n_vocab] */
    int32_t *present;     /* [n_vocab] distinct tokens with count > 0 */
    int32_t *present_pos; /* [n_vocab] index in present[], valid while count > 0 */
    int32_t n_present;
};

/* ---- candidate ordering: logit descending, id ascending on ties ---- */
static inline bool pv_cand_before(const pv_cand *a, const pv_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void pv_cand_swap(pv_cand *a, pv_cand *b) {
    pv_cand t = *a;
    *a = *b;
    *b = t;
}

static void pv_cand_insertion_sort(pv_cand *c, int32_t n) {
    for (int32_t i = 1; i < n; i++) {
        pv_cand x = c[i];
        int32_t j = i - 1;
        while (j >= 0 && pv_cand_before(&x, &c[j])) {
            c[j + 1] = c[j];
            j--;
        }
        c[j + 1] = x;
    }
}

/* Heap sort: the guaranteed O(n log n) fallback when quicksort recursion gets too deep.
 * The heap keeps the "last" element (in sort order) at the root. */
static void pv_cand_sift(pv_cand *c, int32_t root, int32_t n) {
    for (;;) {
        int32_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && pv_cand_before(&c[child], &c[child + 1])) child++;
        if (!pv_cand_before(&c[root], &c[child])) return;
        pv_cand_swap(&c[root], &c[child]);
        root = child;
    }
}

static void pv_cand_heap_sort(pv_cand *c, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) pv_cand_sift(c, i, n);
    for (int32_t end = n - 1; end > 0; end--) {
        pv_cand_swap(&c[0], &c[end]);
        pv_cand_sift(c, 0, end);
    }
}

/* Partitions c[0..n) around a median-of-three pivot; returns the pivot's final index. All
 * elements before it come before the pivot in sort order, all after it do not. */
static int32_t pv_cand_partition(pv_cand *c, int32_t n) {
    int32_t mid = n / 2, last = n - 1;
    if (pv_cand_before(&c[mid], &c[0])) pv_cand_swap(&c[mid], &c[0]);
    if (pv_cand_before(&c[last], &c[0])) pv_cand_swap(&c[last], &c[0]);
    if (pv_cand_before(&c[last], &c[mid])) pv_cand_swap(&c[last], &c[mid]);
    pv_cand_swap(&c[mid], &c[last]); /* pivot (the median) to the end */
    pv_cand pivot = c[last];
    int32_t store = 0;
    for (int32_t i = 0; i < last; i++) {
        if (pv_cand_before(&c[i], &pivot)) pv_cand_swap(&c[i], &c[store++]);
    }
    pv_cand_swap(&c[store], &c[last]);
    return store;
}

/* Introsort: quicksort with a depth limit, heap sort past it, insertion sort for small
 * ranges. Recurses on the smaller side only, so the stack stays O(log n). */
static void pv_cand_sort_depth(pv_cand *c, int32_t n, int depth) {
    while (n > 16) {
        if (depth-- <= 0) {
            pv_cand_heap_sort(c, n);
            return;
        }
        int32_t p = pv_cand_partition(c, n);
        if (p < n - p - 1) {
            pv_cand_sort_depth(c, p, depth);
            c += p + 1;
            n -= p + 1;
        } else {
            pv_cand_sort_depth(c + p + 1, n - p - 1, depth);
            n = p;
        }
    }
    pv_cand_insertion_sort(c, n);
}

static int pv_log2_depth(int32_t n) {
    int d = 0;
    while (n > 1) {
        n >>= 1;
        d++;
    }
    return 2 * d + 4;
}

static void pv_cand_sort(pv_cand *c, int32_t n) { pv_cand_sort_depth(c, n, pv_log2_depth(n)); }

/* ---- parameters, lifetime ---- */
pv_sampler_params pv_sampler_params_default(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    pv_sampler_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .penalty_last_n = 64,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = pv_splitmix64(&x),
    };
    return p;
}

void pv_sampler_free(pv_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->w);
    free(s->ring);
    free(s->count);
    free(s->present);
    free(s->present_pos);
    free(s);
}

/* Returns a new sampler owning all its buffers, or NULL (bad arguments / no memory). */
pv_sampler *pv_sampler_new(const pv_sampler_params *p, int32_t n_vocab) {
    if (!p || n_vocab <= 0 || p->penalty_last_n < -1) return NULL;
    pv_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->ring_cap = p->penalty_last_n > 0 ? p->penalty_last_n : 0;
    s->cand = pv_calloc_array((size_t)n_vocab, sizeof *s->cand);
    s->w = pv_calloc_array((size_t)n_vocab, sizeof *s->w);
    s->count = pv_calloc_array((size_t)n_vocab, sizeof *s->count);
    s->present = pv_calloc_array((size_t)n_vocab, sizeof *s->present);
    s->present_pos = pv_calloc_array((size_t)n_vocab, sizeof *s->present_pos);
    s->ring = s->ring_cap ? pv_calloc_array((size_t)s->ring_cap, sizeof *s->ring) : NULL;
    if (!s->cand || !s->w || !s->count || !s->present || !s->present_pos ||
        (s->ring_cap && !s->ring)) {
        pv_sampler_free(s);
        return NULL;
    }
    pv_rng_seed(&s->rng, p->seed);
    return s;
}

void pv_sampler_reset(pv_sampler *s, uint64_t seed) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_present; i++) s->count[s->present[i]] = 0;
    s->n_present = 0;
    s->ring_len = s->ring_head = 0;
    s->p.seed = seed;
    pv_rng_seed(&s->rng, seed);
}

/* ---- history ---- */
static void pv_hist_inc(pv_sampler *s, int32_t t) {
    if (s->count[t]++ == 0) {
        s->present_pos[t] = s->n_present;
        s->present[s->n_present++] = t;
    }
}

static void pv_hist_dec(pv_sampler *s, int32_t t) {
    if (--s->count[t] == 0) { /* swap-remove from the distinct list */
        int32_t pos = s->present_pos[t];
        int32_t last = s->present[--s->n_present];
        s->present[pos] = last;
        s->present_pos[last] = pos;
    }
}

void pv_sampler_accept(pv_sampler *s, int32_t token) {
    if (!s || token < 0 || token >= s->n_vocab || s->p.penalty_last_n == 0) return;
    if (s->ring_cap == 0) { /* last_n -1: the whole history */
        pv_hist_inc(s, token);
        return;
    }
    if (s->ring_len == s->ring_cap) { /* evict the oldest */
        pv_hist_dec(s, s->ring[s->ring_head]);
        s->ring[s->ring_head] = token;
        s->ring_head = (s->ring_head + 1) % s->ring_cap;
    } else {
        s->ring[(s->ring_head + s->ring_len) % s->ring_cap] = token;
        s->ring_len++;
    }
    pv_hist_inc(s, token);
}

static void pv_apply_penalties(pv_sampler *s, float *logits) {
    const pv_sampler_params *p = &s->p;
    if (p->penalty_last_n == 0 ||
        (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f))
        return;
    for (int32_t i = 0; i < s->n_present; i++) {
        int32_t t = s->present[i];
        float l = logits[t];
        l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)s->count[t] * p->frequency_penalty + p->presence_penalty;
        logits[t] = l;
    }
}

int32_t pv_sampler_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    float bv = -INFINITY;
    bool found = false;
    for (int32_t i = 0; i < n; i++) {
        float v = logits[i];
        if (isnan(v)) continue;
        if (!found || v > bv) {
            bv = v;
            best = i;
            found = true;
        }
    }
    return best;
}

/* ---- the filters; each works on cand[0..n) and returns the new n ---- */

/* NaN never wins; +inf becomes the largest float so that softmax arithmetic stays finite. */
static inline float pv_clean_logit(float l) {
    if (isnan(l)) return -INFINITY;
    return l == INFINITY ? FLT_MAX : l;
}

/* Top-k straight from the logits: a heap of the k best seen so far whose root is the worst
 * of them, so most tokens cost one comparison (O(n + k log k log(n/k)) for typical
 * inputs, O(n log k) at worst); then the k survivors are sorted. */
static void pv_top_k(const float *logits, int32_t n, int32_t k, pv_cand *c) {
    for (int32_t i = 0; i < k; i++) c[i] = (pv_cand){pv_clean_logit(logits[i]), i, 0.0f};
    for (int32_t i = k / 2 - 1; i >= 0; i--) pv_cand_sift(c, i, k);
    for (int32_t i = k; i < n; i++) {
        pv_cand x = {pv_clean_logit(logits[i]), i, 0.0f};
        if (pv_cand_before(&x, &c[0])) {
            c[0] = x;
            pv_cand_sift(c, 0, k);
        }
    }
    pv_cand_sort(c, k);
}

#define PV_TOPP_BUCKETS 256
#define PV_TOPP_RANGE 32.0f /* logits further below the max carry < e^-32 each */

static inline int pv_topp_bucket(float logit, float lo, float scale) {
    if (!(logit > lo)) return 0; /* also -inf */
    int b = (int)((logit - lo) * scale);
    return b < PV_TOPP_BUCKETS ? b : PV_TOPP_BUCKETS - 1;
}

/* Top-p: keeps the shortest prefix, in sort order, of c[0..n) whose probability mass
 * reaches p, and returns its length. When c is already sorted (after top-k) this is a
 * walk. Otherwise: one pass sums the mass per logit bucket (256 buckets over the 32 below
 * the max), which locates the bucket holding the cut; a partition pass moves the buckets
 * above it to the front (kept whole, unsorted) followed by the cut bucket; inside that
 * bucket a quickselect weighted by mass finds the exact cut. O(n) expected, no full sort
 * of a 150k vocabulary; the kept prefix's order is still deterministic. */
static int32_t pv_top_p(pv_cand *c, int32_t n, bool sorted, float p) {
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++) max = c[i].logit > max ? c[i].logit : max;
    if (max == -INFINITY) return n; /* nothing finite: the draw falls back to argmax */
    double z = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].w = expf(c[i].logit - max);
        z += c[i].w;
    }
    const double target = (double)p * z;
    double acc = 0.0; /* mass of c[0..lo), all of which comes before c[lo..) */
    int32_t lo = 0, hi = n;
    if (!sorted) {
        const float edge = max - PV_TOPP_RANGE, scale = PV_TOPP_BUCKETS / PV_TOPP_RANGE;
        double mass[PV_TOPP_BUCKETS] = {0};
        for (int32_t i = 0; i < n; i++) mass[pv_topp_bucket(c[i].logit, edge, scale)] += c[i].w;
        int cut = PV_TOPP_BUCKETS - 1;
        while (cut >= 0 && acc + mass[cut] < target) acc += mass[cut--];
        if (cut < 0) return n; /* rounding kept the sum below p: keep everything */
        for (int32_t i = 0; i < n; i++)
            if (pv_topp_bucket(c[i].logit, edge, scale) > cut) pv_cand_swap(&c[i], &c[lo++]);
        hi = lo;
        for (int32_t i = lo; i < n; i++)
            if (pv_topp_bucket(c[i].logit, edge, scale) == cut) pv_cand_swap(&c[i], &c[hi++]);
        int depth = pv_log2_depth(hi - lo);
        while (hi - lo > 16 && depth-- > 0) {
            int32_t q = lo + pv_cand_partition(c + lo, hi - lo);
            double left = 0.0;
            for (int32_t i = lo; i < q; i++) left += c[i].w;
            if (acc + left >= target) { /* the cut is before the pivot */
                hi = q;
                continue;
            }
            acc += left + c[q].w;
            if (acc >= target) return q + 1; /* the pivot is the last kept */
            lo = q + 1;
        }
        pv_cand_sort(c + lo, hi - lo);
    }
    for (int32_t i = lo; i < hi; i++) {
        acc += c[i].w;
        if (acc >= target) return i + 1;
    }
    return hi > 0 ? hi : 1; /* rounding: keep up to the cut bucket */
}

/* Min-p keeps candidates with logit >= max + log(min_p), preserving their order. */
static int32_t pv_min_p(pv_cand *c, int32_t n, float min_p) {
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++) max = c[i].logit > max ? c[i].logit : max;
    float thr = max + logf(min_p);
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit >= thr) c[k++] = c[i];
    return k > 0 ? k : 1;
}

int32_t pv_sampler_sample(pv_sampler *s, float *logits) {
    const pv_sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    pv_apply_penalties(s, logits);
    if (p->temperature <= 0.0f) return pv_sampler_argmax(logits, n);

    pv_cand *c = s->cand;
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < n) {
        pv_top_k(logits, n, p->top_k, c);
        n = p->top_k;
        sorted = true;
    } else {
        for (int32_t i = 0; i < n; i++) c[i] = (pv_cand){pv_clean_logit(logits[i]), i, 0.0f};
    }
    if (p->top_p < 1.0f) n = pv_top_p(c, n, sorted, p->top_p);
    if (p->min_p > 0.0f) n = pv_min_p(c, n, p->min_p);

    /* temperature, then draw from the softmax of the survivors */
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++) max = c[i].logit > max ? c[i].logit : max;
    if (max == -INFINITY) return pv_sampler_argmax(logits, s->n_vocab);
    float inv_t = 1.0f / p->temperature;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        s->w[i] = expf((c[i].logit - max) * inv_t);
        sum += s->w[i];
    }
    double u = pv_rng_uniform(&s->rng) * sum, acc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        acc += s->w[i];
        if (u < acc) return c[i].id;
    }
    /* u landed on the rounding slack at the very end: the last candidate with weight */
    for (int32_t i = n - 1; i > 0; i--)
        if (s->w[i] > 0.0f) return c[i].id;
    return c[0].id;
}
