/* core.c — status strings, error records, logging, clock and allocation helpers declared
 * in pv_core.h. Logging writes one whole line per call, in text ("[level] component:
 * message key=value…", so a user can grep for a module) or JSON lines, to stderr or to a
 * log file rotated by size; level and format are global and may change while running. */
#define _POSIX_C_SOURCE 200809L
#include "pv_core.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

/* ---- logging ----
 * The level and format are atomics (read on every call, changed by SIGHUP from another
 * thread); the sink (stderr or a rotating file) is guarded by g_log_mu, which is held for
 * the write and any rotation so that lines never interleave and a rotation never loses one.
 * A line is built in a stack buffer first: nothing allocates on the logging path. */

#define PV_LOG_LINE_MAX 8192
#define PV_LOG_MSG_MAX 4096

static _Atomic int g_log_level = PV_LOG_INFO;
static _Atomic int g_log_format = PV_LOG_FORMAT_TEXT;
static const char *const pv_log_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const pv_log_format_names[] = {"text", "json"};

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
/* the file sink, under g_log_mu; fd < 0: standard error */
static struct {
    int fd;
    char *path;
    uint64_t size, max_bytes;
    int keep;
    bool capture_stderr;
} g_log_file = {.fd = -1};

void pv_log_set_level(pv_log_level lvl) { atomic_store(&g_log_level, (int)lvl); }
pv_log_level pv_log_get_level(void) { return (pv_log_level)atomic_load(&g_log_level); }
void pv_log_set_format(pv_log_format fmt) { atomic_store(&g_log_format, (int)fmt); }
pv_log_format pv_log_get_format(void) { return (pv_log_format)atomic_load(&g_log_format); }

/* Finds s in names[0..n) case-insensitively; the index or -1. */
static int name_index(const char *s, const char *const *names, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        if (strcasecmp(s, names[i]) == 0) return (int)i;
    return -1;
}

bool pv_log_level_parse(const char *s, pv_log_level *out) {
    int i = name_index(s, pv_log_names, PV_ARRAY_LEN(pv_log_names));
    if (i >= 0) *out = (pv_log_level)i;
    return i >= 0;
}

bool pv_log_format_parse(const char *s, pv_log_format *out) {
    int i = name_index(s, pv_log_format_names, PV_ARRAY_LEN(pv_log_format_names));
    if (i >= 0) *out = (pv_log_format)i;
    return i >= 0;
}

/* A bounded line builder: appends that do not fit below `soft` are refused whole and mark
 * the builder full, so a caller can roll back to a mark; `force` appends use the reserve
 * above soft (closing brackets, the newline). */
typedef struct lbuf {
    char p[PV_LOG_LINE_MAX];
    size_t len, soft;
    bool full;
} lbuf;

static void lb_put(lbuf *b, const char *s, size_t n) {
    if (b->full || b->len > b->soft || n > b->soft - b->len) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static void lb_puts(lbuf *b, const char *s) { lb_put(b, s, strlen(s)); }
static void lb_force(lbuf *b, const char *s) {
    size_t n = strlen(s);
    if (n > sizeof b->p - 1 - b->len) n = sizeof b->p - 1 - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static void lb_printf(lbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lb_printf(lbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) lb_put(b, tmp, (size_t)PV_MIN((size_t)n, sizeof tmp - 1));
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if it is not valid (overlong
 * forms, surrogates and code points past U+10FFFF are invalid, as RFC 3629 says). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* Appends s as the inside of a JSON string: escapes, invalid UTF-8 as U+FFFD. Stops at the
 * first character that does not fit (whole characters only), so the string stays valid. */
static void lb_json_str(lbuf *b, const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n && !b->full;) {
        unsigned c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
            lb_puts(b, esc);
            i++;
        } else if (c < 0x20) {
            static const char short_esc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
            if (c < sizeof short_esc && short_esc[c]) snprintf(esc, sizeof esc, "\\%c", short_esc[c]);
            else snprintf(esc, sizeof esc, "\\u%04x", c);
            lb_puts(b, esc);
            i++;
        } else {
            size_t len = utf8_seq_len(u + i, n - i);
            if (len == 0) {
                lb_puts(b, "\\ufffd");
                i++;
            } else {
                lb_put(b, s + i, len);
                i += len;
            }
        }
    }
}

/* Text format value: bare when it is made of safe characters, else quoted with \" \\ and
 * \xHH for control bytes, so a line always parses back as key=value pairs. */
static void lb_text_value(lbuf *b, const char *s) {
    bool bare = s[0] != '\0';
    for (const char *q = s; *q && bare; q++)
        bare = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
               strchr("_.:/@+-", *q);
    if (bare) {
        lb_puts(b, s);
        return;
    }
    lb_put(b, "\"", 1);
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        char esc[8];
        if (*q == '"' || *q == '\\') snprintf(esc, sizeof esc, "\\%c", *q);
        else if (*q < 0x20 || *q == 0x7f) snprintf(esc, sizeof esc, "\\x%02x", *q);
        else esc[0] = (char)*q, esc[1] = 0;
        lb_puts(b, esc);
    }
    lb_put(b, "\"", 1);
}

/* Writes a field's value in the line's format. */
static void lb_field_value(lbuf *b, const pv_log_field *f, bool json) {
    switch (f->type) {
    case PV_LOG_FIELD_STR:
        if (!f->v.s) lb_puts(b, json ? "null" : "-");
        else if (json) {
            lb_put(b, "\"", 1);
            lb_json_str(b, f->v.s);
            lb_put(b, "\"", 1);
        } else lb_text_value(b, f->v.s);
        break;
    case PV_LOG_FIELD_INT: lb_printf(b, "%lld", (long long)f->v.i); break;
    case PV_LOG_FIELD_DBL:
        if (!isfinite(f->v.d)) lb_puts(b, json ? "null" : "-");
        else lb_printf(b, "%.6g", f->v.d);
        break;
    case PV_LOG_FIELD_BOOL: lb_puts(b, f->v.b ? "true" : "false"); break;
    default: lb_puts(b, "null"); break;
    }
}

/* "2026-01-02T03:04:05.678Z" (RFC 3339, UTC, milliseconds) into out[32]. */
static void log_time(char out[32]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    time_t t = ts.tv_sec;
    if (!gmtime_r(&t, &tm) || !strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm)) strcpy(out, "1970-01-01T00:00:00");
    snprintf(out + strlen(out), 8, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Builds the whole line (ending in '\n') for the current format. */
static void log_build(lbuf *b, pv_log_level lvl, const char *comp, const pv_log_field *fields,
                      size_t n_fields, const char *msg, bool with_time) {
    b->len = 0;
    b->full = false;
    b->soft = sizeof b->p - 64; /* the reserve holds every closer */
    const char *lname = pv_log_names[(unsigned)lvl < PV_ARRAY_LEN(pv_log_names) ? (unsigned)lvl : 0];
    char tbuf[32];
    if (pv_log_get_format() == PV_LOG_FORMAT_JSON) {
        log_time(tbuf);
        lb_puts(b, "{\"time\":\"");
        lb_puts(b, tbuf);
        lb_puts(b, "\",\"level\":\"");
        lb_puts(b, lname);
        lb_puts(b, "\",\"component\":\"");
        lb_json_str(b, comp);
        lb_puts(b, "\",\"message\":\"");
        lb_json_str(b, msg);
        b->full = false; /* a cut message still gets its closing quote and the fields */
        lb_force(b, "\",\"fields\":{");
        for (size_t i = 0; i < n_fields; i++) {
            size_t mark = b->len;
            if (i) lb_put(b, ",", 1);
            lb_put(b, "\"", 1);
            lb_json_str(b, fields[i].key ? fields[i].key : "");
            lb_put(b, "\":", 2);
            lb_field_value(b, &fields[i], true);
            if (b->full) { /* the field does not fit: drop it and the rest */
                b->len = mark;
                break;
            }
        }
        lb_force(b, "}}\n");
    } else {
        if (with_time) {
            log_time(tbuf);
            lb_puts(b, tbuf);
            lb_put(b, " ", 1);
        }
        lb_printf(b, "[%s] ", lname);
        lb_puts(b, comp);
        lb_puts(b, ": ");
        lb_puts(b, msg);
        if (b->full) { /* the message alone is too long: cut it */
            size_t room = b->soft - b->len, n = strlen(msg);
            b->full = false;
            lb_put(b, msg, PV_MIN(room, n));
        }
        for (size_t i = 0; i < n_fields && !b->full; i++) {
            size_t mark = b->len;
            lb_put(b, " ", 1);
            lb_puts(b, fields[i].key ? fields[i].key : "");
            lb_put(b, "=", 1);
            lb_field_value(b, &fields[i], false);
            if (b->full) b->len = mark;
        }
        lb_force(b, "\n");
    }
    b->p[b->len] = '\0';
}

/* Writes all of buf to fd (retrying short writes); false on an error. */
static bool write_all(int fd, const char *buf, size_t n) {
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* Opens the log file for appending (g_log_mu held or before any thread logs), records its
 * size and, if asked, makes it standard error. Returns the fd or -1 (errno set). */
static int log_file_open_fd(const char *path, bool capture_stderr, uint64_t *size) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    struct stat st;
    *size = fstat(fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
    if (capture_stderr) dup2(fd, STDERR_FILENO);
    return fd;
}

/* Rotates the file (g_log_mu held): path.(N-1) -> path.N, …, path -> path.1, then a new
 * path; with keep 0 the file is emptied instead. On failure logging goes on in the file
 * it has (never lost): a rename that fails leaves the chain as it was. */
static void log_rotate(void) {
    char from[4200], to[4200];
    if (g_log_file.keep == 0) {
        if (ftruncate(g_log_file.fd, 0) == 0) g_log_file.size = 0;
        return;
    }
    for (int i = g_log_file.keep - 1; i >= 1; i--) {
        snprintf(from, sizeof from, "%s.%d", g_log_file.path, i);
        snprintf(to, sizeof to, "%s.%d", g_log_file.path, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT) return;
    }
    snprintf(to, sizeof to, "%s.1", g_log_file.path);
    if (rename(g_log_file.path, to) != 0) return;
    uint64_t size = 0;
    int fd = log_file_open_fd(g_log_file.path, g_log_file.capture_stderr, &size);
    if (fd < 0) return; /* keep writing to the renamed file rather than losing lines */
    close(g_log_file.fd);
    g_log_file.fd = fd;
    g_log_file.size = size;
}

/* Sends a finished line to the sink (takes g_log_mu). */
static void log_emit(const char *line, size_t len) {
    pthread_mutex_lock(&g_log_mu);
    if (g_log_file.fd >= 0) {
        if (g_log_file.max_bytes && g_log_file.size > 0 && g_log_file.size + len > g_log_file.max_bytes)
            log_rotate();
        if (write_all(g_log_file.fd, line, len)) {
            g_log_file.size += len;
            pthread_mutex_unlock(&g_log_mu);
            return;
        }
    }
    fputs(line, stderr);
    pthread_mutex_unlock(&g_log_mu);
}

static void log_vwrite(pv_log_level lvl, const char *component, const pv_log_field *fields,
                       size_t n_fields, const char *fmt, va_list ap) {
    char msg[PV_LOG_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    lbuf *b = malloc(sizeof *b); /* 8 KiB: kept off small thread stacks */
    if (!b) {
        fprintf(stderr, "[%s] %s: %s\n", pv_log_names[lvl], component ? component : "-", msg);
        return;
    }
    pthread_mutex_lock(&g_log_mu);
    bool to_file = g_log_file.fd >= 0;
    pthread_mutex_unlock(&g_log_mu);
    log_build(b, lvl, component ? component : "-", fields, n_fields, msg, to_file);
    log_emit(b->p, b->len);
    free(b);
}

void pv_log_write(pv_log_level lvl, const char *component, const char *fmt, ...) {
    if ((int)lvl > atomic_load(&g_log_level) || (unsigned)lvl >= PV_ARRAY_LEN(pv_log_names)) return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, component, NULL, 0, fmt, ap);
    va_end(ap);
}

void pv_log_fields(pv_log_level lvl, const char *component, const pv_log_field *fields,
                   size_t n_fields, const char *fmt, ...) {
    if ((int)lvl > atomic_load(&g_log_level) || (unsigned)lvl >= PV_ARRAY_LEN(pv_log_names)) return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, component, fields, n_fields, fmt, ap);
    va_end(ap);
}

pv_status pv_log_file_open(const char *path, uint64_t max_bytes, int keep_files,
                           bool capture_stderr, pv_error *err) {
    if (!path || !path[0]) return pv_error_set(err, PV_ERR_INVALID, "log file: empty path");
    if (keep_files < 0 || keep_files > 1000)
        return pv_error_set(err, PV_ERR_RANGE, "log file: keep_files %d is out of range (0..1000)", keep_files);
    if (strlen(path) > 4096) return pv_error_set(err, PV_ERR_RANGE, "log file: path too long");
    char *copy = strdup(path);
    if (!copy) return pv_error_set(err, PV_ERR_NOMEM, "log file: out of memory");
    uint64_t size = 0;
    int fd = log_file_open_fd(path, capture_stderr, &size);
    if (fd < 0) {
        int e = errno;
        free(copy);
        return pv_error_set(err, PV_ERR_IO, "cannot open log file '%s': %s", path, strerror(e));
    }
    pthread_mutex_lock(&g_log_mu);
    if (g_log_file.fd >= 0) close(g_log_file.fd);
    free(g_log_file.path);
    g_log_file.fd = fd;
    g_log_file.path = copy;
    g_log_file.size = size;
    g_log_file.max_bytes = max_bytes;
    g_log_file.keep = keep_files;
    g_log_file.capture_stderr = capture_stderr;
    pthread_mutex_unlock(&g_log_mu);
    return PV_OK;
}

void pv_log_file_close(void) {
    pthread_mutex_lock(&g_log_mu);
    if (g_log_file.fd >= 0) close(g_log_file.fd);
    free(g_log_file.path);
    g_log_file.fd = -1;
    g_log_file.path = NULL;
    pthread_mutex_unlock(&g_log_mu);
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
