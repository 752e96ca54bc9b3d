/* pv_core.h — the project's foundation: the status enum (one X-macro gives both the codes
 * and their strings), an error record that carries a human-readable message, levelled
 * logging to stderr, checked arithmetic for sizes read from untrusted files, and a
 * monotonic clock. Every other module includes this and nothing above it. */
#ifndef PV_CORE_H
#define PV_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- status codes: one table, codes and strings from the same X-macro (libuv style) ---- */
#define PV_STATUS_MAP(X)                                             \
    X(OK, "ok")                                                      \
    X(ERR_IO, "i/o error")                                           \
    X(ERR_FORMAT, "malformed input")                                 \
    X(ERR_TRUNCATED, "truncated input")                              \
    X(ERR_UNSUPPORTED, "unsupported")                                \
    X(ERR_NOMEM, "out of memory")                                    \
    X(ERR_INVALID, "invalid argument")                               \
    X(ERR_RANGE, "value out of range")                               \
    X(ERR_NOT_FOUND, "not found")                                    \
    X(ERR_DUPLICATE, "duplicate entry")                              \
    X(ERR_OVERFLOW, "arithmetic overflow")                           \
    X(ERR_OVERLOADED, "overloaded")                                  \
    X(ERR_CANCELLED, "cancelled")                                    \
    X(ERR_INTERNAL, "internal error")

typedef enum {
#define PV_STATUS_ENUM_(name, str) PV_##name,
    PV_STATUS_MAP(PV_STATUS_ENUM_)
#undef PV_STATUS_ENUM_
    PV_STATUS_COUNT
} pv_status;

/* Returns a static string for any status value (an unknown value gives "unknown status"). */
const char *pv_status_str(pv_status st);
/* Returns the enum's name without prefix, e.g. "ERR_FORMAT". */
const char *pv_status_name(pv_status st);

/* An error record: the status and a message that names the file, the field and the
 * problem. Functions that can fail take a `pv_error *` (may be NULL) and return pv_status. */
typedef struct pv_error {
    pv_status status;
    char msg[512];
} pv_error;

/* Sets *err (if non-NULL) to st and the formatted message; returns st so callers can
 * `return pv_error_set(err, PV_ERR_FORMAT, "%s: ...", path);`. */
pv_status pv_error_set(pv_error *err, pv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pv_error_clear(pv_error *err);

/* ---- logging ----
 * One line per call, written whole (under a mutex) to standard error or to a log file with
 * size-based rotation. Two formats: text ("[info] server: message key=value ...", prefixed
 * with an RFC 3339 UTC time when writing to a file) and JSON lines ({"time", "level",
 * "component", "message", "fields"}). Level and format may change at any time (SIGHUP). */
typedef enum {
    PV_LOG_ERROR = 0,
    PV_LOG_WARN = 1,
    PV_LOG_INFO = 2,
    PV_LOG_DEBUG = 3,
    PV_LOG_TRACE = 4
} pv_log_level;

void pv_log_set_level(pv_log_level lvl);
pv_log_level pv_log_get_level(void);
/* Parses "error|warn|info|debug|trace"; returns false on an unknown name. */
bool pv_log_level_parse(const char *s, pv_log_level *out);
void pv_log_write(pv_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef enum { PV_LOG_FORMAT_TEXT = 0, PV_LOG_FORMAT_JSON = 1 } pv_log_format;
void pv_log_set_format(pv_log_format fmt);
pv_log_format pv_log_get_format(void);
/* Parses "text|json" (case-insensitive); returns false on an unknown name. */
bool pv_log_format_parse(const char *s, pv_log_format *out);

/* A structured field of a log line: a key (a literal or a string that outlives the call)
 * and a typed value. Text format writes key=value (quoted when needed), JSON writes it into
 * the "fields" object (a non-finite double becomes null). Build them with PV_LF_*. */
typedef enum {
    PV_LOG_FIELD_STR,
    PV_LOG_FIELD_INT,
    PV_LOG_FIELD_DBL,
    PV_LOG_FIELD_BOOL
} pv_log_field_type;

typedef struct pv_log_field {
    const char *key;
    pv_log_field_type type;
    union {
        const char *s; /* NULL is written as null (JSON) or - (text) */
        int64_t i;
        double d;
        bool b;
    } v;
} pv_log_field;

#define PV_LF_STR(k, x) ((pv_log_field){.key = (k), .type = PV_LOG_FIELD_STR, .v.s = (x)})
#define PV_LF_INT(k, x) ((pv_log_field){.key = (k), .type = PV_LOG_FIELD_INT, .v.i = (int64_t)(x)})
#define PV_LF_DBL(k, x) ((pv_log_field){.key = (k), .type = PV_LOG_FIELD_DBL, .v.d = (double)(x)})
#define PV_LF_BOOL(k, x) ((pv_log_field){.key = (k), .type = PV_LOG_FIELD_BOOL, .v.b = (x)})

/* A log line with structured fields (borrowed for the call). A line longer than 8 KiB is
 * cut (at a UTF-8 boundary in JSON, whose output always stays valid: fields that do not fit
 * are dropped whole). */
void pv_log_fields(pv_log_level lvl, const char *component, const pv_log_field *fields,
                   size_t n_fields, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sends the log to `path` (appended, created 0644) instead of standard error. Before a line
 * would make the file larger than max_bytes (0: never rotate), the file is rotated:
 * path.(N-1) -> path.N, …, path -> path.1 (keep_files = N; 0 keeps none: the file is
 * truncated instead). If capture_stderr, the file is also made the process's standard
 * error (again after each rotation), so output from libraries lands in the current file.
 * Replaces a file opened before. Errors: the file cannot be opened (message names it). */
pv_status pv_log_file_open(const char *path, uint64_t max_bytes, int keep_files,
                           bool capture_stderr, pv_error *err);
/* Back to standard error (the file is closed). No-op when no file is open. */
void pv_log_file_close(void);

#define PV_LOG_E(comp, ...) pv_log_write(PV_LOG_ERROR, comp, __VA_ARGS__)
#define PV_LOG_W(comp, ...) pv_log_write(PV_LOG_WARN, comp, __VA_ARGS__)
#define PV_LOG_I(comp, ...) pv_log_write(PV_LOG_INFO, comp, __VA_ARGS__)
#define PV_LOG_D(comp, ...) pv_log_write(PV_LOG_DEBUG, comp, __VA_ARGS__)
#define PV_LOG_T(comp, ...) pv_log_write(PV_LOG_TRACE, comp, __VA_ARGS__)

/* ---- checked arithmetic (for every size computed from file contents) ---- */
static inline bool pv_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}
static inline bool pv_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

/* ---- random numbers: xoshiro256** seeded through splitmix64 (Vigna's reference
 * algorithms); deterministic for a seed on every platform (sampler, generator, tests) ---- */
typedef struct pv_rng {
    uint64_t s[4];
} pv_rng;

/* Advances *state and returns the next splitmix64 value (also a good 64-bit mixer). */
static inline uint64_t pv_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void pv_rng_seed(pv_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = pv_splitmix64(&seed);
}

static inline uint64_t pv_rng_next(pv_rng *r) {
    uint64_t *s = r->s;
    const uint64_t x = s[1] * 5;
    const uint64_t result = ((x << 7) | (x >> 57)) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double pv_rng_uniform(pv_rng *r) {
    return (double)(pv_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- misc ---- */
#define PV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PV_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Monotonic time in seconds. */
double pv_time_now(void);

/* Number of online CPUs (at least 1). */
int pv_cpu_count(void);

/* malloc/calloc that return NULL on size overflow; aligned allocation (64 bytes) for
 * SIMD buffers, freed with pv_free_aligned. */
void *pv_calloc_array(size_t n, size_t size);
void *pv_malloc_aligned(size_t size);
void pv_free_aligned(void *p);

#endif /* PV_CORE_H */
