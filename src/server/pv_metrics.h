/* pv_metrics.h — what `pensieve start` counts and how it reports it: a registry of
 * counters, gauges and histograms rendered as Prometheus text exposition format 0.0.4 for
 * GET /metrics (every name prefixed pensieve_), and the record of one HTTP request
 * (pv_req_stats) that the server and the generation routes fill in and that, when the
 * last holder lets go of it, writes the one info log line per request and adds the request
 * to the registry. The record is reference counted because a streamed response outlives
 * the handler call: the connection and the stream each hold it, in either order.
 *
 * Nothing here logs or counts prompt text or keys: only ids, routes, statuses, counts and
 * times. */
#ifndef PV_METRICS_H
#define PV_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pv_core.h"

/* ---- histogram: fixed upper bounds (Prometheus `le`, inclusive), +Inf implicit ---- */
#define PV_HISTOGRAM_MAX_BOUNDS 24

typedef struct pv_histogram {
    size_t n_bounds;
    double bounds[PV_HISTOGRAM_MAX_BOUNDS];        /* strictly ascending, finite */
    uint64_t counts[PV_HISTOGRAM_MAX_BOUNDS + 1];  /* per bucket (not cumulative); the last
                                                    * one holds values above every bound */
    double sum;
    uint64_t count;
} pv_histogram;

/* Sets the bounds (copied) and zeroes the counts. Errors: more than
 * PV_HISTOGRAM_MAX_BOUNDS bounds, a non-finite bound, bounds not strictly ascending. */
pv_status pv_histogram_init(pv_histogram *h, const double *bounds, size_t n_bounds, pv_error *err);
/* Adds one value (a NaN is ignored). Not locked: the registry locks around it. */
void pv_histogram_observe(pv_histogram *h, double v);
/* The cumulative count of values <= bounds[i] (i == n_bounds: every value, the +Inf bucket). */
uint64_t pv_histogram_cumulative(const pv_histogram *h, size_t i);

/* ---- the registry ---- */
typedef struct pv_metrics pv_metrics;

/* Values read at scrape time from whoever owns them (the scheduler). */
typedef struct pv_metrics_gauges {
    int active;      /* requests generating */
    int queued;      /* requests waiting for a slot */
    double kv_usage; /* KV cache positions in use / positions allocated, 0..1 */
} pv_metrics_gauges;
typedef void (*pv_metrics_gauges_fn)(void *cls, pv_metrics_gauges *out);

/* A new, empty registry (NULL when out of memory). Thread-safe from here on. */
pv_metrics *pv_metrics_new(void);
void pv_metrics_free(pv_metrics *m);
/* The scrape-time gauges' source (NULL: all zero). Set before serving. */
void pv_metrics_set_gauges_fn(pv_metrics *m, pv_metrics_gauges_fn fn, void *cls);
void pv_metrics_set_model_load_seconds(pv_metrics *m, double seconds);
/* Totals since start, for /health and `pensieve status`. */
void pv_metrics_token_totals(pv_metrics *m, uint64_t *prompt, uint64_t *generated);
/* The exposition text (malloc'ed, NUL-terminated; caller frees; *len without the NUL), or
 * NULL when out of memory. */
char *pv_metrics_render(pv_metrics *m, size_t *len);
/* Process resident memory in bytes from /proc/self/statm (0 where unavailable). */
int64_t pv_metrics_resident_bytes(void);

/* ---- the record of one request ---- */
typedef struct pv_req_stats pv_req_stats;

/* A new record (one reference, the caller's) for a request that arrived now. `route` is a
 * static label (the route table's path pattern, or "unmatched"); request_id, method and
 * path are copied (the path cut at 256 bytes). m may be NULL (nothing counted, still
 * logged). Returns NULL when out of memory; every function below accepts NULL. */
pv_req_stats *pv_req_stats_new(pv_metrics *m, const char *request_id, const char *method,
                               const char *path, const char *route);
/* Another reference (returns st). */
pv_req_stats *pv_req_stats_ref(pv_req_stats *st);
/* Drops a reference; the last one writes the request's info line, counts it in the
 * registry and frees the record. */
void pv_req_stats_unref(pv_req_stats *st);
void pv_req_stats_set_status(pv_req_stats *st, int status);
/* The model the request named (copied, cut at 128 bytes). */
void pv_req_stats_set_model(pv_req_stats *st, const char *model);
/* A generation's outcome: token counts and pv_time_now() stamps of its first sampled
 * token and its end (0: never reached). Time to first token is measured from the record's
 * creation (parsing and tokenizing count); tokens/s over the decode phase, (output - 1) /
 * (t_end - t_first). */
void pv_req_stats_set_generation(pv_req_stats *st, int64_t input_tokens, int64_t output_tokens,
                                 int64_t cached_tokens, double t_first, double t_end);
/* The client went away before the response was complete. */
void pv_req_stats_set_client_gone(pv_req_stats *st);

#endif /* PV_METRICS_H */
