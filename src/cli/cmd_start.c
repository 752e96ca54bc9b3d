/* cmd_start.c — `pensieve start`: load a model and its tokenizer, start the HTTP server
 * (src/server) and serve until told to stop. Foreground by default; `--background` forks a
 * detached server (new session, stdin from /dev/null, output to the log file, a locked PID
 * file) and returns only once it answers /health, or prints why it could not start (the
 * child sends its startup error back through a pipe) and exits non-zero.
 *
 * Signals are blocked before any thread starts (model threads and MHD threads inherit the
 * mask) and taken synchronously with sigwait on the main thread, so no handler runs in a
 * random thread:
 *   SIGTERM/SIGINT  stop accepting, let in-flight requests finish (server.drain_timeout_s),
 *                   exit 0; a SIGINT during the drain exits at once (code 130).
 *   SIGHUP          load the configuration again, apply the keys that can change live (the
 *                   key table's `live` column, through the appliers below) and log what
 *                   changed and what needs a restart.
 *   SIGUSR1         log a diagnostic snapshot (requests, KV slots, memory, threads).
 * Options come from the configuration layer (src/config: flags > PENSIEVE_* environment >
 * pensieve.toml > defaults). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/pv_config.h"
#include "model/pv_model.h"
#include "pv_cli.h"
#include "server/pv_metrics.h"
#include "server/pv_server.h"
#include "server/routes_gen.h"
#include "service.h"
#include "tokenizer/pv_tokenizer.h"

static void start_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve start [-m FILE] [--background] [--config FILE] [configuration flags]\n"
            "  Serves the Anthropic Messages API and OpenAI chat completions on\n"
            "  http://127.0.0.1:7777 by default. The API key defaults to pensieve-local-key;\n"
            "  --api-key none disables authentication. The model comes from -m,\n"
            "  PENSIEVE_MODEL_PATH or [model] path in the file.\n"
            "  --background, -d  detach: the server runs in a new session with its output in the\n"
            "                    log file (logging.file, default ~/.local/state/pensieve/pensieve.log)\n"
            "                    and its PID in the PID file (server.pid_file); this command\n"
            "                    returns once the server answers /health. Stop it with\n"
            "                    `pensieve stop`, inspect it with `pensieve status`.\n"
            "  Signals: SIGTERM/SIGINT drain and exit (a second SIGINT exits at once), SIGHUP\n"
            "  reloads the configuration, SIGUSR1 logs a diagnostic snapshot.\n"
            "configuration flags:\n");
    pv_config_flags_usage(f);
}

/* Everything the running server is made of; owned by pv_cmd_start's frame. */
typedef struct start_ctx {
    const pv_config_flags *flags; /* borrowed from argv: reused by every SIGHUP reload */
    pv_config *cfg;               /* the configuration in force (replaced by reloads) */
    bool background;
    int ready_fd;                 /* background: write end of the pipe to the waiting
                                   * parent until the server is up, else -1 */
    pv_cli_pidfile pidfile;       /* background: held until exit */
    char log_path[PV_CLI_PATH_MAX]; /* the log file in use ("" : standard error) */
    bool log_open;                /* log_path is open: log lines go there */
    pv_model *m;
    pv_tokenizer *tok;
    pv_sched *sched;
    pv_server *srv;
    pv_gen_app app;               /* owns the chat template and the grammar vocabulary */
    int n_parallel;
} start_ctx;

/* A startup failure: into the log file when one is open, onto the terminal in the
 * foreground, and, while a background child's parent is still waiting, through the pipe as
 * "error MSG" (then closed) so that the parent prints it. Returns 1, the exit code. */
static int start_fail(start_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int start_fail(start_ctx *c, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* the log file when one is open (the record); the terminal in the foreground; a
     * background child's waiting parent prints the copy it gets through the pipe */
    if (c->log_open) PV_LOG_E("server", "%s", msg);
    if (!c->background) fprintf(stderr, "pensieve start: %s\n", msg);
    if (c->ready_fd >= 0) {
        char line[1100];
        int n = snprintf(line, sizeof line, "error %s\n", msg);
        if (n > 0 && write(c->ready_fd, line, (size_t)PV_MIN(n, (int)sizeof line - 1)) < 0) {
            /* the parent is gone: nobody to tell, the log has it */
        }
        close(c->ready_fd);
        c->ready_fd = -1;
    }
    return 1;
}

/* ---- logging configuration ---- */

/* Applies logging.level and logging.format (any time: start and SIGHUP). */
static void apply_log_style(const pv_config *cfg) {
    pv_log_level lvl = PV_LOG_INFO;
    pv_log_level_parse(pv_config_get_str(cfg, PV_CFG_LOGGING_LEVEL), &lvl); /* a checked choice */
    pv_log_set_level(lvl);
    pv_log_format fmt = PV_LOG_FORMAT_TEXT;
    pv_log_format_parse(pv_config_get_str(cfg, PV_CFG_LOGGING_FORMAT), &fmt);
    pv_log_set_format(fmt);
}

/* (Re)opens the log file c->log_path with the rotation settings of cfg; in background mode
 * the file also becomes standard error (and output), so that stray library messages and
 * sanitizer reports land there too. No-op when logging to standard error. */
static pv_status open_log_file(start_ctx *c, const pv_config *cfg, pv_error *err) {
    if (!c->log_path[0]) return PV_OK;
    uint64_t max_bytes = (uint64_t)pv_config_get_int(cfg, PV_CFG_LOGGING_MAX_SIZE_MB) << 20;
    int keep = (int)pv_config_get_int(cfg, PV_CFG_LOGGING_KEEP_FILES);
    pv_status st = pv_log_file_open(c->log_path, max_bytes, keep, c->background, err);
    /* standard output too (the server writes nothing there itself; after a rotation it
     * stays on the rotated file, where standard error is moved along by the logger) */
    if (st == PV_OK && c->background) dup2(STDERR_FILENO, STDOUT_FILENO);
    if (st == PV_OK) c->log_open = true;
    return st;
}

/* ---- SIGHUP: live keys ---- */

/* Applies one changed key from `cfg` to the running server; returns false with err set
 * when it could not (the old value then stays). */
typedef bool (*apply_fn)(start_ctx *c, const pv_config *cfg, pv_error *err);

static bool apply_level_format(start_ctx *c, const pv_config *cfg, pv_error *err) {
    (void)c;
    (void)err;
    apply_log_style(cfg);
    return true;
}
static bool apply_rotation(start_ctx *c, const pv_config *cfg, pv_error *err) {
    return open_log_file(c, cfg, err) == PV_OK;
}
static bool apply_api_key(start_ctx *c, const pv_config *cfg, pv_error *err) {
    const char *k = pv_config_get_str(cfg, PV_CFG_SERVER_API_KEY);
    return pv_server_set_api_key(c->srv, strcmp(k, "none") ? k : NULL, err) == PV_OK;
}
static bool apply_body_limit(start_ctx *c, const pv_config *cfg, pv_error *err) {
    (void)err;
    pv_server_set_max_body(c->srv, (size_t)pv_config_get_int(cfg, PV_CFG_SERVER_REQUEST_BODY_LIMIT_MB) << 20);
    return true;
}
static bool apply_queue(start_ctx *c, const pv_config *cfg, pv_error *err) {
    (void)err;
    pv_sched_set_queue_max(c->sched, (int)pv_config_get_int(cfg, PV_CFG_SERVER_MAX_QUEUED_REQUESTS));
    return true;
}
/* Read from the configuration in force when it is needed (the drain): nothing to push. */
static bool apply_read_when_used(start_ctx *c, const pv_config *cfg, pv_error *err) {
    (void)c;
    (void)cfg;
    (void)err;
    return true;
}

/* The live keys this server applies. A key marked live in the configuration table but
 * missing here is reported as needing a restart, so the log never claims more than
 * happened. */
static const struct {
    pv_config_key key;
    apply_fn fn;
} live_appliers[] = {
    {PV_CFG_LOGGING_LEVEL, apply_level_format},
    {PV_CFG_LOGGING_FORMAT, apply_level_format},
    {PV_CFG_LOGGING_MAX_SIZE_MB, apply_rotation},
    {PV_CFG_LOGGING_KEEP_FILES, apply_rotation},
    {PV_CFG_SERVER_API_KEY, apply_api_key},
    {PV_CFG_SERVER_REQUEST_BODY_LIMIT_MB, apply_body_limit},
    {PV_CFG_SERVER_MAX_QUEUED_REQUESTS, apply_queue},
    {PV_CFG_SERVER_DRAIN_TIMEOUT_S, apply_read_when_used},
};

static apply_fn find_applier(pv_config_key k) {
    for (size_t i = 0; i < PV_ARRAY_LEN(live_appliers); i++)
        if (live_appliers[i].key == k) return live_appliers[i].fn;
    return NULL;
}

/* A value for the log: the API key is never written, whatever the level. */
static const char *loggable(const pv_config *cfg, pv_config_key k, char *buf, size_t cap) {
    if (k == PV_CFG_SERVER_API_KEY) return "(hidden)";
    return pv_config_format_value(cfg, k, buf, cap);
}

/* SIGHUP: loads the configuration again with the same flags and applies what changed. A
 * configuration that does not load is logged and the running one stays. Keys that need a
 * restart are logged and also kept in the new configuration, so the next reload reports
 * only new changes. */
static void reload(start_ctx *c) {
    pv_config *next = NULL;
    pv_error err = {0};
    if (pv_config_load(c->flags, &next, &err) != PV_OK) {
        PV_LOG_E("config", "SIGHUP: the configuration does not load, keeping the running one: %s", err.msg);
        return;
    }
    pv_config_change ch[PV_CFG_KEY_COUNT];
    size_t n = pv_config_diff(c->cfg, next, ch);
    const char *file = pv_config_file(next);
    PV_LOG_I("config", "SIGHUP: configuration reloaded (%s): %zu key%s changed", file ? file : "no file", n,
             n == 1 ? "" : "s");
    int applied = 0, restart = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        const pv_config_key_info *k = pv_config_key_get(ch[i].key);
        char a[160], b[160];
        const char *was = loggable(c->cfg, ch[i].key, a, sizeof a);
        const char *now = loggable(next, ch[i].key, b, sizeof b);
        apply_fn fn = ch[i].live ? find_applier(ch[i].key) : NULL;
        if (!fn) {
            PV_LOG_W("config", "[%s] %s: %s -> %s needs a restart (still running with %s)", k->section,
                     k->name, was, now, was);
            restart++;
            continue;
        }
        pv_error aerr = {0};
        if (fn(c, next, &aerr)) {
            PV_LOG_I("config", "[%s] %s: %s -> %s applied", k->section, k->name, was, now);
            applied++;
        } else {
            PV_LOG_E("config", "[%s] %s: %s -> %s could not be applied: %s", k->section, k->name, was, now,
                     aerr.msg);
            failed++;
        }
    }
    if (n)
        PV_LOG_I("config", "SIGHUP: %d applied, %d need a restart, %d failed", applied, restart, failed);
    pv_config_free(c->cfg);
    c->cfg = next;
}

/* ---- SIGUSR1: diagnostic snapshot ---- */

/* "Name:   value kB" from /proc/self/status into *out (kB, or the plain number for
 * Threads); false when absent (non-Linux). */
static bool proc_status_field(const char *name, long long *out) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return false;
    char line[256];
    size_t nl = strlen(name);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, name, nl) && line[nl] == ':') found = sscanf(line + nl + 1, "%lld", out) == 1;
    fclose(f);
    return found;
}

static void snapshot(start_ctx *c, double started) {
    int active = 0, queued = 0;
    pv_sched_counts(c->sched, &active, &queued);
    long long rss = -1, hwm = -1, threads = -1;
    proc_status_field("VmRSS", &rss);
    proc_status_field("VmHWM", &hwm);
    proc_status_field("Threads", &threads);
    double kv_usage = pv_sched_kv_usage(c->sched);
    int inflight = pv_server_inflight(c->srv);
    pv_log_field f[] = {
        PV_LF_INT("in_flight", inflight),
        PV_LF_INT("active", active),
        PV_LF_INT("queued", queued),
        PV_LF_INT("kv_slots_used", active),
        PV_LF_INT("kv_slots", c->n_parallel),
        PV_LF_DBL("kv_usage", kv_usage),
        PV_LF_INT("vm_rss_kb", rss),
        PV_LF_INT("vm_hwm_kb", hwm),
        PV_LF_INT("threads", threads),
        PV_LF_DBL("uptime_s", pv_time_now() - started),
    };
    pv_log_fields(PV_LOG_INFO, "server", f, PV_ARRAY_LEN(f),
                  "SIGUSR1 snapshot: %d request%s in flight (%d generating, %d queued), KV cache %d of %d "
                  "sequence slots in use (%.1f%% of positions), VmRSS %lld kB (peak %lld kB), %lld threads",
                  inflight, inflight == 1 ? "" : "s", active, queued, active, c->n_parallel, kv_usage * 100,
                  rss, hwm, threads);
}

/* ---- SIGTERM/SIGINT: drain ---- */

/* Stops accepting and waits until the in-flight requests are done or drain_timeout_s has
 * passed, watching for a second SIGINT (exit at once) and SIGUSR1 meanwhile. Returns the
 * process exit code: 0, or 130 for the immediate exit (the caller then skips the orderly
 * teardown). */
static int drain(start_ctx *c, int sig, const sigset_t *sigs, double started) {
    double timeout = (double)pv_config_get_int(c->cfg, PV_CFG_SERVER_DRAIN_TIMEOUT_S);
    pv_server_quiesce(c->srv);
    int n = pv_server_inflight(c->srv);
    PV_LOG_I("server", "%s received: no new connections; draining %d request%s in flight (up to %.0f s)",
             sig == SIGINT ? "SIGINT" : "SIGTERM", n, n == 1 ? "" : "s", timeout);
    double t0 = pv_time_now(), deadline = t0 + timeout;
    while (pv_server_inflight(c->srv) > 0 && pv_time_now() < deadline) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        int s = sigtimedwait(sigs, NULL, &ts);
        if (s == SIGINT) {
            PV_LOG_W("server", "second signal (SIGINT): exiting now, %d request%s cut",
                     pv_server_inflight(c->srv), pv_server_inflight(c->srv) == 1 ? "" : "s");
            return 130;
        }
        if (s == SIGUSR1) snapshot(c, started);
        if (s == SIGTERM) PV_LOG_I("server", "SIGTERM again: already draining (SIGINT exits at once)");
        if (s == SIGHUP) PV_LOG_I("server", "SIGHUP ignored while draining");
    }
    n = pv_server_inflight(c->srv);
    if (n > 0)
        PV_LOG_W("server", "drain timeout (%.0f s) passed: cutting %d request%s", timeout, n, n == 1 ? "" : "s");
    else
        PV_LOG_I("server", "drained in %.2f s", pv_time_now() - t0);
    return 0;
}

/* ---- serving ---- */

/* /health's active/queued counts come from the scheduler. */
static void start_load(void *cls, int *active, int *queued) { pv_sched_counts(cls, active, queued); }
/* So do /metrics' gauges, with the KV cache use. */
static void start_gauges(void *cls, pv_metrics_gauges *g) {
    pv_sched_counts(cls, &g->active, &g->queued);
    g->kv_usage = pv_sched_kv_usage(cls);
}

/* Loads the model, starts the server and serves until a stop signal. c->cfg is loaded; in
 * background mode the detaching is done. Returns the exit code. */
static int serve(start_ctx *c) {
    const pv_config *cfg = c->cfg;
    /* strings are borrowed from the configuration loaded at start; reloads replace c->cfg
     * but the values needed here are copied by the server before then */
    const char *model_path = pv_config_get_str(cfg, PV_CFG_MODEL_PATH);
    const char *host = pv_config_get_str(cfg, PV_CFG_SERVER_HOST);
    const char *api_key_cfg = pv_config_get_str(cfg, PV_CFG_SERVER_API_KEY);
    int64_t port = pv_config_get_int(cfg, PV_CFG_SERVER_PORT);
    int64_t n_ctx = pv_config_get_int(cfg, PV_CFG_MODEL_CONTEXT_LENGTH);
    int64_t parallel = pv_config_get_int(cfg, PV_CFG_SERVER_MAX_CONCURRENT_REQUESTS);
    int64_t queued = pv_config_get_int(cfg, PV_CFG_SERVER_MAX_QUEUED_REQUESTS);
    int64_t threads = pv_config_get_int(cfg, PV_CFG_PERFORMANCE_THREADS);
    int64_t max_body_mb = pv_config_get_int(cfg, PV_CFG_SERVER_REQUEST_BODY_LIMIT_MB);
    int64_t batch = pv_config_get_int(cfg, PV_CFG_PERFORMANCE_BATCH_SIZE);
    bool kv_f32 = !strcmp(pv_config_get_str(cfg, PV_CFG_PERFORMANCE_KV_CACHE_TYPE), "f32");
    const char *api_key = strcmp(api_key_cfg, "none") ? api_key_cfg : NULL;
    c->n_parallel = (int)parallel;

    /* Before any thread exists: every thread inherits the blocked mask, so the signals wait
     * for sigwait below. SIGPIPE is ignored: a client closing mid-response is normal. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pv_error err = {0};
    struct stat st;
    if (stat(model_path, &st) != 0) return start_fail(c, "model file '%s' not found", model_path);
    if (!S_ISREG(st.st_mode)) return start_fail(c, "model '%s' is not a regular file", model_path);
    pv_model_params mp = pv_model_params_default();
    mp.n_threads = (int)threads;
    if (pv_model_load(model_path, &mp, &c->m, &err) != PV_OK) goto fail;
    if (pv_tokenizer_init(c->m->file, &c->tok, &err) != PV_OK) goto fail;

    int ctx_size = n_ctx > 0 ? (int)n_ctx : PV_MIN(c->m->hp.n_ctx_train, 4096);
    pv_server_options so = pv_server_options_default();
    so.host = host;
    so.port = (int)port;
    so.api_key = api_key;
    so.max_body_bytes = (size_t)max_body_mb << 20;
    so.model_name = c->m->name;
    so.context_size = ctx_size;
    so.model_created = (int64_t)st.st_mtime;
    pv_sched_params sp = pv_sched_params_default();
    sp.n_parallel = (int)parallel;
    sp.n_queue_max = (int)queued;
    sp.n_batch = (int)batch;
    sp.kv_type = kv_f32 ? PV_TYPE_F32 : PV_TYPE_F16;
    sp.n_ctx = ctx_size;
    if (pv_sched_new(c->m, c->tok, &sp, &c->sched, &err) != PV_OK) goto fail;
    if (pv_gen_app_init(&c->app, c->m, c->tok, c->sched, &err) != PV_OK) goto fail;
    PV_LOG_I("server", "chat template: %s; tool calls: %s",
             pv_api_chat_is_fallback(c->app.chat) ? "none in the model, ChatML fallback" : "the model's",
             pv_toolcall_format_name(pv_api_chat_toolcall_format(c->app.chat)));
    int64_t seed = pv_config_get_int(cfg, PV_CFG_SAMPLING_SEED);
    c->app.has_seed = seed >= 0;
    c->app.seed = (uint64_t)(seed >= 0 ? seed : 0);
    so.app = &c->app;
    so.load_fn = start_load;
    so.load_cls = c->sched;
    if (pv_server_start(&so, &c->srv, &err) != PV_OK) goto fail;
    pv_metrics_set_model_load_seconds(pv_server_metrics(c->srv), c->m->load_seconds);
    pv_metrics_set_gauges_fn(pv_server_metrics(c->srv), start_gauges, c->sched);
    double started = pv_time_now();

    PV_LOG_I("server", "model '%s' (%s, %d layers), context %d, parallel %d, load %.3f s", c->m->name,
             c->m->arch->name, c->m->hp.n_layer, ctx_size, (int)parallel, c->m->load_seconds);
    if (!api_key)
        PV_LOG_W("server", "--api-key none: authentication is disabled, anyone who can reach %s:%d can use the API",
                 host, pv_server_port(c->srv));
    char url[300];
    pv_cli_service_url(host, pv_server_port(c->srv), url, sizeof url);
    PV_LOG_I("server", "listening on %s (PID %d)", url, (int)getpid());
    if (c->ready_fd >= 0) {
        /* background: tell the waiting parent, which then checks /health itself */
        char line[64];
        int n = snprintf(line, sizeof line, "ready %d\n", pv_server_port(c->srv));
        if (write(c->ready_fd, line, (size_t)n) != n) PV_LOG_W("server", "the starting command went away");
        close(c->ready_fd);
        c->ready_fd = -1;
    }

    int sig = 0;
    for (;;) {
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) reload(c);
        else if (sig == SIGUSR1) snapshot(c, started);
        else break;
    }
    return drain(c, sig, &sigs, started);
fail:
    return start_fail(c, "%s", err.msg[0] ? err.msg : pv_status_str(err.status));
}

/* Frees what serve() built, in the order the threads need: the engine first (running
 * streams end, so the server's connection threads can be joined; the scheduler stays valid
 * for late submits), then the server. */
static void teardown(start_ctx *c) {
    pv_sched_shutdown(c->sched);
    pv_server_stop(c->srv);
    pv_gen_app_free(&c->app);
    pv_sched_free(c->sched);
    pv_tokenizer_free(c->tok);
    pv_model_free(c->m);
}

/* ---- --background ---- */

/* Prints the last `max_lines` lines of the file at `path` to stderr, indented. */
static void print_log_tail(const char *path, int max_lines) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    static char buf[16384];
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = buf + n;
    int lines = 0;
    while (p > buf && lines <= max_lines)
        if (*--p == '\n' && p + 1 < buf + n) lines++;
    if (*p == '\n') p++;
    fprintf(stderr, "--- the end of %s ---\n%s%s", path, p, n && buf[n - 1] != '\n' ? "\n" : "");
}

/* The parent's side: waits for the child's "ready PORT" or "error MSG" line, then for
 * /health. Returns the exit code of `pensieve start --background`. */
static int wait_for_child(start_ctx *c, pid_t child, int rfd, const char *pid_path) {
    char msg[2048];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(rfd, msg + len, sizeof msg - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof msg - 1) break;
    }
    close(rfd);
    msg[len] = '\0';
    char *nl = strchr(msg, '\n');
    if (nl) *nl = '\0';
    int port = 0;
    if (sscanf(msg, "ready %d", &port) != 1) {
        int ws = 0;
        pid_t w;
        while ((w = waitpid(child, &ws, 0)) < 0 && errno == EINTR) {
        }
        if (!strncmp(msg, "error ", 6)) {
            fprintf(stderr, "pensieve start: %s\n", msg + 6);
        } else {
            if (w == child && WIFSIGNALED(ws))
                fprintf(stderr, "pensieve start: the server died during startup (signal %d, %s)\n", WTERMSIG(ws),
                        strsignal(WTERMSIG(ws)));
            else
                fprintf(stderr, "pensieve start: the server exited during startup (exit code %d)\n",
                        w == child && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
            print_log_tail(c->log_path, 20);
        }
        return 1;
    }
    const char *host = pv_config_get_str(c->cfg, PV_CFG_SERVER_HOST);
    char url[300];
    pv_cli_service_url(host, port, url, sizeof url);
    /* the child says ready once it listens; /health proves it from the outside */
    pv_error err = {0};
    int status = 0;
    char *body = NULL;
    double deadline = pv_time_now() + 30;
    pv_status st;
    while ((st = pv_cli_http_get(host, port, "/health", 5.0, &status, &body, &err)) != PV_OK ||
           status != 200) {
        free(body);
        body = NULL;
        if (pv_time_now() > deadline) {
            fprintf(stderr, "pensieve start: the server (PID %d) started but %s/health does not answer: %s\n",
                    (int)child, url, st != PV_OK ? err.msg : "status is not 200");
            kill(child, SIGTERM);
            return 1;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(body);
    printf("pensieve: started in the background (PID %d), %s\n  log: %s\n  PID file: %s\n", (int)child, url,
           c->log_path, pid_path);
    return 0;
}

/* `start --background`: refuses a second server, detaches a child that runs serve(), and
 * in the parent waits for it. In the child (which returns through the same frame) the
 * return value is the server's exit code. */
static int start_background(start_ctx *c) {
    char pid_path[PV_CLI_PATH_MAX];
    pv_error err = {0};
    if (pv_cli_service_pid_path(c->cfg, pid_path, sizeof pid_path, &err) != PV_OK ||
        pv_cli_service_log_path(c->cfg, c->log_path, sizeof c->log_path, &err) != PV_OK ||
        pv_cli_service_mkdirs(pid_path, &err) != PV_OK || pv_cli_service_mkdirs(c->log_path, &err) != PV_OK) {
        fprintf(stderr, "pensieve start: %s\n", err.msg);
        return 1;
    }
    /* the friendly early answer; the child's lock below is what really decides */
    pid_t holder = 0, written = 0;
    pv_status q = pv_cli_pidfile_query(pid_path, &holder, &written, &err);
    if (q == PV_OK && holder > 0) {
        fprintf(stderr, "pensieve start: already running (PID %d; PID file %s)\n", (int)holder, pid_path);
        return 1;
    }
    if (q != PV_OK && q != PV_ERR_NOT_FOUND) {
        fprintf(stderr, "pensieve start: %s\n", err.msg);
        return 1;
    }
    if (q == PV_OK && written > 0)
        fprintf(stderr, "pensieve start: replacing a stale PID file %s (PID %d is not running)\n", pid_path,
                (int)written);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "pensieve start: pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "pensieve start: fork: %s\n", strerror(errno));
        close(p[0]);
        close(p[1]);
        return 1;
    }
    if (child > 0) {
        close(p[1]);
        return wait_for_child(c, child, p[0], pid_path);
    }
    /* the child: a new session without a terminal, stdin from /dev/null */
    close(p[0]);
    c->ready_fd = p[1];
    setsid();
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    pid_t stale = 0;
    if (pv_cli_pidfile_acquire(pid_path, &c->pidfile, &holder, &stale, &err) != PV_OK)
        return start_fail(c, "%s", err.msg);
    if (open_log_file(c, c->cfg, &err) != PV_OK) {
        pv_cli_pidfile_release(&c->pidfile);
        return start_fail(c, "%s", err.msg);
    }
    if (stale > 0) PV_LOG_W("server", "replaced a stale PID file %s (PID %d is not running)", pid_path, (int)stale);
    PV_LOG_I("server", "starting in the background (PID %d, PID file %s)", (int)getpid(), pid_path);
    return -1; /* go on serving */
}

int pv_cmd_start(int argc, char **argv) {
    /* flags, environment and pensieve.toml through the configuration layer (src/config),
     * which checks every value against the key table (ranges, choices, types) */
    pv_config_flags flags;
    memset(&flags, 0, sizeof flags);
    pv_error cerr = {0};
    bool background = false;
    for (int i = 1; i < argc; i++) {
        int matched = pv_config_flag_match(argc, argv, &i, &flags, &cerr);
        if (matched < 0) {
            fprintf(stderr, "pensieve start: %s\n", cerr.msg);
            return 2;
        }
        if (matched) continue;
        if (!strcmp(argv[i], "--background") || !strcmp(argv[i], "-d")) {
            background = true;
            continue;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            start_usage(stdout);
            return 0;
        }
        fprintf(stderr, "pensieve start: unknown option '%s'\n", argv[i]);
        start_usage(stderr);
        return 2;
    }
    start_ctx c;
    memset(&c, 0, sizeof c);
    c.flags = &flags;
    c.background = background;
    c.ready_fd = -1;
    c.pidfile.fd = -1;
    if (pv_config_load(&flags, &c.cfg, &cerr) != PV_OK) {
        fprintf(stderr, "pensieve start: %s\n", cerr.msg);
        return 2;
    }
    if (!pv_config_get_str(c.cfg, PV_CFG_MODEL_PATH)[0]) {
        fprintf(stderr, "pensieve start: -m FILE is required (or PENSIEVE_MODEL_PATH, or [model] path)\n");
        start_usage(stderr);
        pv_config_free(c.cfg);
        return 2;
    }
    apply_log_style(c.cfg);
    int rc = -1;
    if (background) {
        rc = start_background(&c);
    } else {
        const char *lf = pv_config_get_str(c.cfg, PV_CFG_LOGGING_FILE);
        pv_error err = {0};
        if (lf[0] && strlen(lf) >= sizeof c.log_path) {
            fprintf(stderr, "pensieve start: log file path too long\n");
            rc = 2;
        } else if (lf[0]) {
            strcpy(c.log_path, lf);
            if (open_log_file(&c, c.cfg, &err) != PV_OK) {
                fprintf(stderr, "pensieve start: %s\n", err.msg);
                rc = 2;
            }
        }
    }
    if (rc < 0) {
        /* the server process (foreground, or the background child) */
        rc = serve(&c);
        if (rc == 130) {
            /* a second SIGINT: no orderly teardown (threads may be mid-stream); only the
             * PID file must not outlive us */
            pv_cli_pidfile_release(&c.pidfile);
            _exit(130);
        }
        teardown(&c);
        if (c.background) PV_LOG_I("server", "stopped (exit code %d)", rc);
        pv_cli_pidfile_release(&c.pidfile);
        if (c.log_path[0]) pv_log_file_close();
    }
    pv_config_free(c.cfg);
    return rc;
}
