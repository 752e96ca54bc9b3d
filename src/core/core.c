/* core.c — status strings, error records, logging, clock and allocation helpers declared
 * in pv_core.h. Logging writes one line per call to stderr with a level tag and the
 * component, so a user can grep for a module; the level is global and set once at start. */
#define _POSIX_C_SOURCE 200809L
#include "pv_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const pv_status_strings[] = {
#define PV_STATUS_STR_(name, str) str,
    PV_STATUS_MAP(PV_STATUS_STR_)
#undef PV_STATUS_STR_
};
static const char *const pv_status_names[] = {
#define PV_STATUS_NAME_(name, str) #name,
    PV_STATUS_MAP(PV_STATUS_NAME_)
#undef PV_STATUS_NAME_
};

const char *pv_status_str(pv_status st) {
    if ((unsigned)st >= PV_STATUS_COUNT) return "unknown status";
    return pv_status_strings[st];
}

const char *pv_status_name(pv_status st) {
    if ((unsigned)st >= PV_STATUS_COUNT) return "UNKNOWN";
    return pv_status_names[st];
}

pv_status pv_error_set(pv_error *err, pv_status st, const char *fmt, ...) {
    if (err) {
        err->status = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

void pv_error_clear(pv_error *err) {
    if (err) {
        err->status = PV_OK;
        err->msg[0] = '\0';
    }
}

static pv_log_level g_log_level = PV_LOG_INFO;
static const char *const pv_log_names[] = {"error", "warn", "info", "debug", "trace"};

void pv_log_set_level(pv_log_level lvl) { g_log_level = lvl; }
pv_log_level pv_log_get_level(void) { return g_log_level; }

bool pv_log_level_parse(const char *s, pv_log_level *out) {
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_log_names); i++) {
        if (strcasecmp(s, pv_log_names[i]) == 0) {
            *out = (pv_log_level)i;
            return true;
        }
    }
    return false;
}

void pv_log_write(pv_log_level lvl, const char *component, const char *fmt, ...) {
    if (lvl > g_log_level) return;
    char line[2048];
    int n = snprintf(line, sizeof line, "[%s] %s: ", pv_log_names[lvl], component ? component : "-");
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    if ((size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one fputs per line so lines from different threads do not interleave mid-line */
    size_t len = strlen(line);
    if (len + 1 < sizeof line) {
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    fputs(line, stderr);
}

double pv_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pv_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void *pv_calloc_array(size_t n, size_t size) {
    if (n == 0 || size == 0) return calloc(1, 1);
    return calloc(n, size); /* calloc checks n*size overflow itself */
}

void *pv_malloc_aligned(size_t size) {
    void *p = NULL;
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) return NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
    return p;
}

void pv_free_aligned(void *p) { free(p); }
