/* metrics.c — see pv_metrics.h. The registry is one mutex over plain counters (requests
 * arrive a few per second, a scrape every few seconds: contention is nil and a single lock
 * keeps the exposition self-consistent, e.g. a histogram's _count equals its +Inf bucket).
 * The metric families are listed once, in render order, in the table of metric_family; the
 * per-request record turns into one info log line and one update of the registry when its
 * last reference is dropped. */
#define _POSIX_C_SOURCE 200809L
#include "pv_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- histogram ---- */

pv_status pv_histogram_init(pv_histogram *h, const double *bounds, size_t n_bounds, pv_error *err) {
    memset(h, 0, sizeof *h);
    if (n_bounds > PV_HISTOGRAM_MAX_BOUNDS)
        return pv_error_set(err, PV_ERR_RANGE, "histogram: %zu bounds (at most %d)", n_bounds,
                            PV_HISTOGRAM_MAX_BOUNDS);
    for (size_t i = 0; i < n_bounds; i++) {
        if (!isfinite(bounds[i]))
            return pv_error_set(err, PV_ERR_INVALID, "histogram: bound %zu is not finite", i);
        if (i && !(bounds[i] > bounds[i - 1]))
            return pv_error_set(err, PV_ERR_INVALID, "histogram: bounds must be strictly ascending (bound %zu)", i);
        h->bounds[i] = bounds[i];
    }
    h->n_bounds = n_bounds;
    return PV_OK;
}

void pv_histogram_observe(pv_histogram *h, double v) {
    if (isnan(v)) return;
    /* the first bound >= v (le is inclusive); a handful of bounds: a linear scan */
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

uint64_t pv_histogram_cumulative(const pv_histogram *h, size_t i) {
    if (i > h->n_bounds) i = h->n_bounds;
    uint64_t c = 0;
    for (size_t k = 0; k <= i; k++) c += h->counts[k];
    return c;
}

/* ---- registry ---- */

/* Time to first token: from 5 ms (a warm tiny model) to a minute (a long prompt on CPU). */
static const double ttft_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
/* Time per output token: from 1 ms to 2.5 s. */
static const double tpot_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

typedef struct req_count {
    const char *route; /* static label */
    int status;
    uint64_t n;
} req_count;

struct pv_metrics {
    pthread_mutex_t mu;
    req_count *reqs;
    size_t n_reqs, cap_reqs;
    uint64_t prompt_tokens, generated_tokens, cached_tokens, disconnects;
    pv_histogram ttft, tpot;
    double model_load_s;
    double started_at;
    pv_metrics_gauges_fn gauges_fn;
    void *gauges_cls;
};

pv_metrics *pv_metrics_new(void) {
    pv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    /* the bound tables are constants checked by the unit test: init cannot fail */
    pv_histogram_init(&m->ttft, ttft_bounds, PV_ARRAY_LEN(ttft_bounds), NULL);
    pv_histogram_init(&m->tpot, tpot_bounds, PV_ARRAY_LEN(tpot_bounds), NULL);
    m->started_at = pv_time_now();
    return m;
}

void pv_metrics_free(pv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m->reqs);
    free(m);
}

void pv_metrics_set_gauges_fn(pv_metrics *m, pv_metrics_gauges_fn fn, void *cls) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->gauges_fn = fn;
    m->gauges_cls = cls;
    pthread_mutex_unlock(&m->mu);
}

void pv_metrics_set_model_load_seconds(pv_metrics *m, double seconds) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->model_load_s = seconds;
    pthread_mutex_unlock(&m->mu);
}

void pv_metrics_token_totals(pv_metrics *m, uint64_t *prompt, uint64_t *generated) {
    *prompt = *generated = 0;
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    *prompt = m->prompt_tokens;
    *generated = m->generated_tokens;
    pthread_mutex_unlock(&m->mu);
}

/* Adds one request to the (route, status) table (m->mu held). Out of memory: not counted. */
static void count_request(pv_metrics *m, const char *route, int status) {
    for (size_t i = 0; i < m->n_reqs; i++)
        if (m->reqs[i].status == status && !strcmp(m->reqs[i].route, route)) {
            m->reqs[i].n++;
            return;
        }
    if (m->n_reqs == m->cap_reqs) {
        size_t cap = m->cap_reqs ? m->cap_reqs * 2 : 16;
        req_count *n = realloc(m->reqs, cap * sizeof *n);
        if (!n) return;
        m->reqs = n;
        m->cap_reqs = cap;
    }
    m->reqs[m->n_reqs++] = (req_count){route, status, 1};
}

int64_t pv_metrics_resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long size = 0, resident = 0;
    int n = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || resident < 0 || page <= 0) return 0;
    return (int64_t)resident * page;
}

/* ---- exposition ---- */

/* A label value with the format's escapes (\\, \", \n). */
static void put_label_value(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '"') fputs("\\\"", f);
        else if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
}

/* A sample value: the shortest of %.15g/%.17g that reads back exactly (0.1, not
 * 0.10000000000000001), non-finite values as the format spells them. */
static void put_value(FILE *f, double v) {
    if (isnan(v)) {
        fputs("NaN", f);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", f);
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    fputs(buf, f);
}

static void put_header(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_histogram(FILE *f, const char *name, const char *help, const pv_histogram *h) {
    put_header(f, name, "histogram", help);
    for (size_t i = 0; i <= h->n_bounds; i++) {
        fprintf(f, "%s_bucket{le=\"", name);
        put_value(f, i < h->n_bounds ? h->bounds[i] : INFINITY);
        fputs("\"} ", f);
        put_value(f, (double)pv_histogram_cumulative(h, i));
        fputc('\n', f);
    }
    fprintf(f, "%s_sum ", name);
    put_value(f, h->sum);
    fprintf(f, "\n%s_count ", name);
    put_value(f, (double)h->count);
    fputc('\n', f);
}

/* The simple families, in render order: name, type, help and where the value is. */
typedef enum { SRC_PROMPT, SRC_GENERATED, SRC_CACHED, SRC_DISCONNECTS, SRC_ACTIVE, SRC_QUEUED,
               SRC_KV, SRC_LOAD, SRC_RSS, SRC_UPTIME } value_src;

static const struct metric_family {
    const char *name, *type, *help;
    value_src src;
} families[] = {
    {"pensieve_prompt_tokens_total", "counter", "Prompt (input) tokens of finished generation requests.", SRC_PROMPT},
    {"pensieve_generated_tokens_total", "counter", "Tokens generated for finished requests.", SRC_GENERATED},
    {"pensieve_cached_prompt_tokens_total", "counter", "Prompt tokens served from the KV cache instead of computed.", SRC_CACHED},
    {"pensieve_client_disconnects_total", "counter", "Requests whose client went away before the response was complete.", SRC_DISCONNECTS},
    {"pensieve_requests_active", "gauge", "Requests generating now.", SRC_ACTIVE},
    {"pensieve_requests_queued", "gauge", "Requests waiting for a generation slot.", SRC_QUEUED},
    {"pensieve_kv_cache_usage_ratio", "gauge", "KV cache positions in use over positions allocated (0..1).", SRC_KV},
    {"pensieve_model_load_seconds", "gauge", "Time it took to load the model at start.", SRC_LOAD},
    {"pensieve_process_resident_memory_bytes", "gauge", "Resident memory of the server process.", SRC_RSS},
    {"pensieve_uptime_seconds", "gauge", "Seconds since the server started.", SRC_UPTIME},
};

char *pv_metrics_render(pv_metrics *m, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    /* the gauges' source takes its own locks: call it before taking ours */
    pv_metrics_gauges g = {0};
    pthread_mutex_lock(&m->mu);
    pv_metrics_gauges_fn fn = m->gauges_fn;
    void *cls = m->gauges_cls;
    pthread_mutex_unlock(&m->mu);
    if (fn) fn(cls, &g);
    double rss = (double)pv_metrics_resident_bytes();

    pthread_mutex_lock(&m->mu);
    put_header(f, "pensieve_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (size_t i = 0; i < m->n_reqs; i++) {
        fputs("pensieve_requests_total{route=\"", f);
        put_label_value(f, m->reqs[i].route);
        fprintf(f, "\",status=\"%d\"} ", m->reqs[i].status);
        put_value(f, (double)m->reqs[i].n);
        fputc('\n', f);
    }
    for (size_t i = 0; i < PV_ARRAY_LEN(families); i++) {
        const struct metric_family *fam = &families[i];
        double v = 0;
        switch (fam->src) {
        case SRC_PROMPT: v = (double)m->prompt_tokens; break;
        case SRC_GENERATED: v = (double)m->generated_tokens; break;
        case SRC_CACHED: v = (double)m->cached_tokens; break;
        case SRC_DISCONNECTS: v = (double)m->disconnects; break;
        case SRC_ACTIVE: v = g.active; break;
        case SRC_QUEUED: v = g.queued; break;
        case SRC_KV: v = g.kv_usage; break;
        case SRC_LOAD: v = m->model_load_s; break;
        case SRC_RSS: v = rss; break;
        case SRC_UPTIME: v = pv_time_now() - m->started_at; break;
        }
        put_header(f, fam->name, fam->type, fam->help);
        fprintf(f, "%s ", fam->name);
        put_value(f, v);
        fputc('\n', f);
    }
    put_histogram(f, "pensieve_time_to_first_token_seconds",
                  "Time from a generation request's arrival to its first sampled token.", &m->ttft);
    put_histogram(f, "pensieve_time_per_output_token_seconds",
                  "Mean time between output tokens of a request (decode phase), one observation per request.",
                  &m->tpot);
    pthread_mutex_unlock(&m->mu);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len) *len = n;
    return buf;
}

/* ---- per-request record ---- */

struct pv_req_stats {
    atomic_int refs;
    pthread_mutex_t mu; /* the fields below: the connection thread and MHD's cleanup may differ */
    pv_metrics *m;
    const char *route;
    char request_id[32];
    char method[16];
    char path[257];
    char model[129];
    int status;
    bool has_gen, client_gone;
    int64_t in_tokens, out_tokens, cached_tokens;
    double t_start, t_first, t_end;
};

pv_req_stats *pv_req_stats_new(pv_metrics *m, const char *request_id, const char *method,
                               const char *path, const char *route) {
    pv_req_stats *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    atomic_init(&st->refs, 1);
    pthread_mutex_init(&st->mu, NULL);
    st->m = m;
    st->route = route ? route : "unmatched";
    snprintf(st->request_id, sizeof st->request_id, "%s", request_id ? request_id : "");
    snprintf(st->method, sizeof st->method, "%s", method ? method : "");
    snprintf(st->path, sizeof st->path, "%s", path ? path : "");
    st->t_start = pv_time_now();
    return st;
}

pv_req_stats *pv_req_stats_ref(pv_req_stats *st) {
    if (st) atomic_fetch_add(&st->refs, 1);
    return st;
}

void pv_req_stats_set_status(pv_req_stats *st, int status) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->status = status;
    pthread_mutex_unlock(&st->mu);
}

void pv_req_stats_set_model(pv_req_stats *st, const char *model) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    snprintf(st->model, sizeof st->model, "%s", model ? model : "");
    pthread_mutex_unlock(&st->mu);
}

void pv_req_stats_set_generation(pv_req_stats *st, int64_t input_tokens, int64_t output_tokens,
                                 int64_t cached_tokens, double t_first, double t_end) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->has_gen = true;
    st->in_tokens = input_tokens;
    st->out_tokens = output_tokens;
    st->cached_tokens = cached_tokens;
    st->t_first = t_first;
    st->t_end = t_end;
    pthread_mutex_unlock(&st->mu);
}

void pv_req_stats_set_client_gone(pv_req_stats *st) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->client_gone = true;
    pthread_mutex_unlock(&st->mu);
}

/* The last reference: one info line, then the registry. */
static void req_stats_finish(pv_req_stats *st) {
    double now = pv_time_now();
    double ttft = st->has_gen && st->t_first > 0 ? st->t_first - st->t_start : NAN;
    double decode = st->has_gen && st->t_first > 0 && st->t_end >= st->t_first ? st->t_end - st->t_first : NAN;
    /* per-token latency and rate over the decode phase: n tokens have n - 1 gaps */
    double tpot = st->out_tokens >= 2 && decode > 0 ? decode / (double)(st->out_tokens - 1) : NAN;
    double tps = tpot > 0 ? 1.0 / tpot : NAN;
    pv_log_field f[14];
    size_t n = 0;
    f[n++] = PV_LF_STR("request_id", st->request_id);
    f[n++] = PV_LF_STR("method", st->method);
    f[n++] = PV_LF_STR("route", st->route);
    f[n++] = PV_LF_STR("path", st->path);
    f[n++] = PV_LF_INT("status", st->status);
    f[n++] = PV_LF_DBL("duration_ms", (now - st->t_start) * 1e3);
    if (st->model[0]) f[n++] = PV_LF_STR("model", st->model);
    if (st->has_gen) {
        f[n++] = PV_LF_INT("input_tokens", st->in_tokens);
        f[n++] = PV_LF_INT("output_tokens", st->out_tokens);
        f[n++] = PV_LF_INT("cached_tokens", st->cached_tokens);
        if (!isnan(ttft)) f[n++] = PV_LF_DBL("ttft_ms", ttft * 1e3);
        if (!isnan(tps)) f[n++] = PV_LF_DBL("tokens_per_s", tps);
    }
    if (st->client_gone) f[n++] = PV_LF_BOOL("client_disconnected", true);
    pv_log_fields(PV_LOG_INFO, "http", f, n, "%s %s %d", st->method, st->path, st->status);

    pv_metrics *m = st->m;
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    /* status 0: the connection ended before any response was queued; nothing to count */
    if (st->status > 0) count_request(m, st->route, st->status);
    if (st->has_gen) {
        m->prompt_tokens += (uint64_t)PV_MAX(st->in_tokens, 0);
        m->generated_tokens += (uint64_t)PV_MAX(st->out_tokens, 0);
        m->cached_tokens += (uint64_t)PV_MAX(st->cached_tokens, 0);
        if (!isnan(ttft)) pv_histogram_observe(&m->ttft, ttft);
        if (!isnan(tpot)) pv_histogram_observe(&m->tpot, tpot);
    }
    if (st->client_gone) m->disconnects++;
    pthread_mutex_unlock(&m->mu);
}

void pv_req_stats_unref(pv_req_stats *st) {
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1) return;
    req_stats_finish(st);
    pthread_mutex_destroy(&st->mu);
    free(st);
}
