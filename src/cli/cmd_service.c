/* cmd_service.c — `pensieve stop` and `pensieve status`, the commands that talk to a running
 * server. Both take the same configuration flags as `start` (--config, --pid-file, --host,
 * --port, ...) so that they find the server it started: the PID file names the process
 * (and its lock says whether that process is alive, see service.h), /health tells how it
 * is doing. Exit codes: stop 0 when the server is gone, 1 when none was running or it did
 * not stop in time; status 0 only when /health answers "ok", else 1; 2 for usage errors. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/pv_config.h"
#include "pv_cli.h"
#include "service.h"

/* Parses the configuration flags plus the command's own (handled by `own`, which returns 1
 * when it took argv[*i], 0 when it is not its flag, -1 on a bad value). Returns 0 and *cfg,
 * or the exit code. */
typedef int (*own_flag_fn)(int argc, char **argv, int *i, void *opts);

static int load_cmd_config(const char *cmd, int argc, char **argv, own_flag_fn own, void *opts,
                           void (*usage)(FILE *), pv_config **cfg) {
    pv_config_flags flags;
    memset(&flags, 0, sizeof flags);
    pv_error err = {0};
    for (int i = 1; i < argc; i++) {
        int m = pv_config_flag_match(argc, argv, &i, &flags, &err);
        if (m < 0) {
            fprintf(stderr, "pensieve %s: %s\n", cmd, err.msg);
            return 2;
        }
        if (m) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return -1;
        }
        m = own ? own(argc, argv, &i, opts) : 0;
        if (m < 0) return 2;
        if (m) continue;
        fprintf(stderr, "pensieve %s: unknown option '%s'\n", cmd, argv[i]);
        usage(stderr);
        return 2;
    }
    if (pv_config_load(&flags, cfg, &err) != PV_OK) {
        fprintf(stderr, "pensieve %s: %s\n", cmd, err.msg);
        return 2;
    }
    return 0;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- stop ---- */

typedef struct stop_opts {
    bool force;
    double timeout; /* < 0: server.drain_timeout_s + 5 */
} stop_opts;

static void stop_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve stop [--force] [--timeout S] [--config FILE] [--pid-file FILE]\n"
            "  Sends SIGTERM to the server in the PID file (started by `pensieve start\n"
            "  --background`) and waits until it has drained and exited.\n"
            "  --timeout S  how long to wait (default: server.drain_timeout_s + 5 seconds)\n"
            "  --force      send SIGKILL when the wait times out\n"
            "  Exit code 0 when the server is gone, 1 when none was running or it is still\n"
            "  running after the wait. The configuration flags of `pensieve start` are accepted\n"
            "  (--config, --pid-file, ...) so that stop finds the server they started.\n");
}

static int stop_flag(int argc, char **argv, int *i, void *opts) {
    stop_opts *o = opts;
    if (!strcmp(argv[*i], "--force") || !strcmp(argv[*i], "-f")) {
        o->force = true;
        return 1;
    }
    if (!strcmp(argv[*i], "--timeout")) {
        const char *v = pv_cli_value("stop", argc, argv, i);
        float t = 0;
        if (!v || !pv_cli_parse_f32("stop", "--timeout", v, &t)) return -1;
        if (!(t >= 0 && t <= 86400)) {
            fprintf(stderr, "pensieve stop: --timeout: %s is out of range 0..86400\n", v);
            return -1;
        }
        o->timeout = t;
        return 1;
    }
    return 0;
}

/* Waits until no process holds the PID file's lock (the server has exited: the kernel
 * drops the lock even before the process is reaped) or `timeout` passes. */
static bool wait_released(const char *path, pid_t pid, double timeout) {
    double deadline = pv_time_now() + timeout;
    for (;;) {
        pid_t holder = 0, written = 0;
        pv_error err = {0};
        pv_status st = pv_cli_pidfile_query(path, &holder, &written, &err);
        if (st == PV_ERR_NOT_FOUND || (st == PV_OK && holder != pid)) return true;
        if (pv_time_now() >= deadline) return false;
        sleep_s(0.05);
    }
}

int pv_cmd_stop(int argc, char **argv) {
    stop_opts o = {.force = false, .timeout = -1};
    pv_config *cfg = NULL;
    int rc = load_cmd_config("stop", argc, argv, stop_flag, &o, stop_usage, &cfg);
    if (rc) return rc < 0 ? 0 : rc;
    char path[PV_CLI_PATH_MAX];
    pv_error err = {0};
    if (pv_cli_service_pid_path(cfg, path, sizeof path, &err) != PV_OK) {
        fprintf(stderr, "pensieve stop: %s\n", err.msg);
        pv_config_free(cfg);
        return 1;
    }
    double timeout = o.timeout >= 0 ? o.timeout : (double)pv_config_get_int(cfg, PV_CFG_SERVER_DRAIN_TIMEOUT_S) + 5;
    pv_config_free(cfg);

    pid_t pid = 0, written = 0;
    pv_status st = pv_cli_pidfile_query(path, &pid, &written, &err);
    if (st == PV_ERR_NOT_FOUND) {
        fprintf(stderr, "pensieve stop: no server running (no PID file at %s)\n", path);
        return 1;
    }
    if (st != PV_OK) {
        fprintf(stderr, "pensieve stop: %s\n", err.msg);
        return 1;
    }
    if (pid <= 0) {
        /* nobody holds the lock: the server that wrote it is gone */
        if (unlink(path) == 0)
            fprintf(stderr, "pensieve stop: no server running (removed the stale PID file %s of PID %d)\n", path,
                    (int)written);
        else
            fprintf(stderr, "pensieve stop: no server running (stale PID file %s: %s)\n", path, strerror(errno));
        return 1;
    }
    if (kill(pid, SIGTERM) != 0) {
        fprintf(stderr, "pensieve stop: cannot signal PID %d: %s\n", (int)pid, strerror(errno));
        return 1;
    }
    printf("pensieve: sent SIGTERM to PID %d, waiting up to %.0f s for it to drain and exit\n", (int)pid, timeout);
    fflush(stdout);
    double t0 = pv_time_now();
    if (wait_released(path, pid, timeout)) {
        printf("pensieve: stopped (PID %d, %.1f s)\n", (int)pid, pv_time_now() - t0);
        return 0;
    }
    if (!o.force) {
        fprintf(stderr,
                "pensieve stop: PID %d is still running after %.0f s (still draining requests?); "
                "`pensieve stop --force` kills it\n",
                (int)pid, timeout);
        return 1;
    }
    fprintf(stderr, "pensieve stop: PID %d did not exit within %.0f s: sending SIGKILL\n", (int)pid, timeout);
    if (kill(pid, SIGKILL) != 0 && errno != ESRCH) {
        fprintf(stderr, "pensieve stop: cannot kill PID %d: %s\n", (int)pid, strerror(errno));
        return 1;
    }
    if (!wait_released(path, pid, 10)) {
        fprintf(stderr, "pensieve stop: PID %d survived SIGKILL for 10 s\n", (int)pid);
        return 1;
    }
    /* a killed server cannot remove its PID file */
    unlink(path);
    printf("pensieve: killed (PID %d)\n", (int)pid);
    return 0;
}

/* ---- status ---- */

static void status_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve status [--config FILE] [--host H] [--port P] [--pid-file FILE]\n"
            "  Says whether the server runs and how it is doing: PID (from the PID file),\n"
            "  address, model, uptime, active and queued requests, tokens served, memory\n"
            "  (from GET /health at server.host:server.port).\n"
            "  Exit code 0 only when /health answers \"ok\"; 1 otherwise. The configuration\n"
            "  flags of `pensieve start` are accepted (--config, --pid-file, --host, --port, ...).\n");
}

/* "3d 4h 5m 6s" (leading zero units left out). */
static void fmt_duration(double s, char *out, size_t cap) {
    long long t = s > 0 ? (long long)s : 0;
    long long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
    if (d) snprintf(out, cap, "%lldd %lldh %lldm %llds", d, h, m, sec);
    else if (h) snprintf(out, cap, "%lldh %lldm %llds", h, m, sec);
    else if (m) snprintf(out, cap, "%lldm %llds", m, sec);
    else snprintf(out, cap, "%llds", sec);
}

static long long json_int_or(json_t *o, const char *key, long long def) {
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

/* Prints what /health said (h: its JSON object). */
static void print_health(json_t *h, const char *url) {
    const char *status = json_string_value(json_object_get(h, "status"));
    const char *model = json_string_value(json_object_get(h, "model"));
    char up[64];
    fmt_duration((double)json_int_or(h, "uptime_seconds", 0), up, sizeof up);
    json_t *rq = json_object_get(h, "requests");
    printf("  health    %s\n", status ? status : "(no status)");
    printf("  address   %s\n", url);
    printf("  model     %s (context %lld)\n", model ? model : "?", json_int_or(h, "context_size", 0));
    printf("  uptime    %s\n", up);
    printf("  requests  %lld active, %lld queued\n", json_int_or(rq, "active", 0), json_int_or(rq, "queued", 0));
    /* tokens served: an object of counters ({"prompt": N, "generated": M}) when the server
     * reports them */
    json_t *tok = json_object_get(h, "tokens");
    if (json_is_object(tok)) {
        printf("  tokens    ");
        const char *k;
        json_t *v;
        const char *sep = "";
        json_object_foreach(tok, k, v) {
            if (!json_is_integer(v)) continue;
            printf("%s%lld %s", sep, (long long)json_integer_value(v), k);
            sep = ", ";
        }
        printf(" (since start)\n");
    }
    long long mem = json_int_or(h, "memory_bytes", -1);
    if (mem >= 0) printf("  memory    %.1f MiB resident\n", (double)mem / (1 << 20));
}

int pv_cmd_status(int argc, char **argv) {
    pv_config *cfg = NULL;
    int rc = load_cmd_config("status", argc, argv, NULL, NULL, status_usage, &cfg);
    if (rc) return rc < 0 ? 0 : rc;
    char path[PV_CLI_PATH_MAX], url[300];
    pv_error err = {0};
    bool have_path = pv_cli_service_pid_path(cfg, path, sizeof path, &err) == PV_OK;
    const char *host = pv_config_get_str(cfg, PV_CFG_SERVER_HOST);
    int port = (int)pv_config_get_int(cfg, PV_CFG_SERVER_PORT);
    pv_cli_service_url(host, port, url, sizeof url);

    /* the process, from the PID file */
    pid_t pid = 0, written = 0;
    char pid_line[PV_CLI_PATH_MAX + 128];
    pv_status pst = have_path ? pv_cli_pidfile_query(path, &pid, &written, &err) : PV_ERR_NOT_FOUND;
    if (!have_path)
        snprintf(pid_line, sizeof pid_line, "unknown (%s)", err.msg);
    else if (pst == PV_ERR_NOT_FOUND)
        snprintf(pid_line, sizeof pid_line, "none (no PID file at %s: not started with --background?)", path);
    else if (pst != PV_OK)
        snprintf(pid_line, sizeof pid_line, "unknown (%s)", err.msg);
    else if (pid > 0)
        snprintf(pid_line, sizeof pid_line, "%d (PID file %s)", (int)pid, path);
    else
        snprintf(pid_line, sizeof pid_line, "none (stale PID file %s: PID %d is not running)", path, (int)written);

    /* the service, from /health */
    int status = 0;
    char *body = NULL;
    pv_status hst = pv_cli_http_get(host, port, "/health", 3.0, &status, &body, &err);
    pv_config_free(cfg);
    if (hst != PV_OK) {
        if (pid > 0)
            printf("pensieve: process running but not answering (still starting, draining after "
                   "SIGTERM, or another address?)\n  PID       %s\n  health    %s/health: %s\n",
                   pid_line, url, err.msg);
        else
            printf("pensieve: not running\n  PID       %s\n  health    %s/health: %s\n", pid_line, url, err.msg);
        return 1;
    }
    json_error_t je;
    json_t *h = json_loads(body, 0, &je);
    free(body);
    const char *hs = json_string_value(json_object_get(h, "status"));
    bool ok = status == 200 && hs && !strcmp(hs, "ok");
    printf("pensieve: %s\n  PID       %s\n", ok ? "running" : "running but unhealthy", pid_line);
    if (status != 200) printf("  HTTP      %d from %s/health\n", status, url);
    if (json_is_object(h)) print_health(h, url);
    else printf("  health    %s/health did not answer with a JSON object\n", url);
    json_decref(h);
    return ok ? 0 : 1;
}
