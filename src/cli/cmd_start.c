/* cmd_start.c — `pensieve start`: load a model and its tokenizer, start the HTTP server
 * (src/server) in the foreground and serve until SIGINT/SIGTERM, then stop the daemon and
 * exit 0. The signals are blocked before any thread starts (model threads, MHD threads all
 * inherit the mask) and taken synchronously with sigwait, so no handler runs in a random
 * thread and shutdown happens on the main thread. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/pv_model.h"
#include "pv_cli.h"
#include "server/routes_gen.h"
#include "server/pv_server.h"
#include "tokenizer/pv_tokenizer.h"

static void start_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve start -m FILE [--host ADDR] [--port N] [--api-key KEY|none]\n"
            "                      [--ctx-size N] [--parallel N] [--threads N] [--max-body-mb N]\n"
            "                      [--log-level error|warn|info|debug]\n"
            "  Serves the Anthropic Messages API and OpenAI chat completions on\n"
            "  http://127.0.0.1:7777 by default. The API key defaults to pensieve-local-key;\n"
            "  --api-key none disables authentication. SIGINT/SIGTERM stop the server.\n");
}

/* /health's active/queued counts come from the scheduler. */
static void start_load(void *cls, int *active, int *queued) { pv_sched_counts(cls, active, queued); }

int pv_cmd_start(int argc, char **argv) {
    const char *model_path = NULL, *host = "127.0.0.1", *api_key = "pensieve-local-key";
    int64_t port = 7777, n_ctx = 0, parallel = 4, threads = 0, max_body_mb = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL() \
    do { if (!(v = pv_cli_value("start", argc, argv, &i))) return 2; } while (0)
#define NUM(dst) \
    do { VAL(); if (!pv_cli_parse_i64("start", a, v, &(dst))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model_path = v; }
        else if (!strcmp(a, "--host")) { VAL(); host = v; }
        else if (!strcmp(a, "--port")) NUM(port);
        else if (!strcmp(a, "--api-key")) { VAL(); api_key = v; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) NUM(n_ctx);
        else if (!strcmp(a, "--parallel")) NUM(parallel);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) NUM(threads);
        else if (!strcmp(a, "--max-body-mb")) NUM(max_body_mb);
        else if (!strcmp(a, "--log-level")) {
            VAL();
            pv_log_level lvl;
            if (!pv_log_level_parse(v, &lvl)) {
                fprintf(stderr, "pensieve start: --log-level: unknown level '%s'\n", v);
                return 2;
            }
            pv_log_set_level(lvl);
        }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { start_usage(stdout); return 0; }
        else {
            fprintf(stderr, "pensieve start: unknown option '%s'\n", a);
            start_usage(stderr);
            return 2;
        }
#undef NUM
#undef VAL
    }
    if (!model_path) {
        fprintf(stderr, "pensieve start: -m FILE is required\n");
        start_usage(stderr);
        return 2;
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "pensieve start: --port must be 0..65535\n");
        return 2;
    }
    if (parallel < 1 || parallel > 256) {
        fprintf(stderr, "pensieve start: --parallel must be 1..256\n");
        return 2;
    }
    if (n_ctx < 0 || n_ctx > (1 << 24)) {
        fprintf(stderr, "pensieve start: --ctx-size must be 0..16777216 (0: the model's, at most 4096)\n");
        return 2;
    }
    /* 4096 MiB keeps the byte count inside size_t on every platform we build for. */
    if (max_body_mb < 1 || max_body_mb > 4096) {
        fprintf(stderr, "pensieve start: --max-body-mb must be 1..4096\n");
        return 2;
    }
    if (!strcmp(api_key, "none")) api_key = NULL;
    else if (!api_key[0]) {
        fprintf(stderr, "pensieve start: --api-key must not be empty (use 'none' to disable authentication)\n");
        return 2;
    }

    /* Before any thread exists: every thread inherits the blocked mask, so the signals wait
     * for sigwait below. SIGPIPE is ignored: a client closing mid-response is normal. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    pv_error err = {0};
    pv_model *m = NULL;
    pv_tokenizer *tok = NULL;
    pv_server *srv = NULL;
    pv_sched *sched = NULL;
    struct stat st;
    if (stat(model_path, &st) != 0) {
        fprintf(stderr, "pensieve start: model file '%s' not found\n", model_path);
        goto out;
    }
    pv_model_params mp = pv_model_params_default();
    mp.n_threads = (int)threads;
    if (pv_model_load(model_path, &mp, &m, &err) != PV_OK) goto fail;
    if (pv_tokenizer_init(m->file, &tok, &err) != PV_OK) goto fail;

    int ctx_size = n_ctx > 0 ? (int)n_ctx : PV_MIN(m->hp.n_ctx_train, 4096);
    pv_server_options so = pv_server_options_default();
    so.host = host;
    so.port = (int)port;
    so.api_key = api_key;
    so.max_body_bytes = (size_t)max_body_mb << 20;
    so.model_name = m->name;
    so.context_size = ctx_size;
    so.model_created = (int64_t)st.st_mtime;
    pv_sched_params sp = pv_sched_params_default();
    sp.n_parallel = (int)parallel;
    sp.n_ctx = ctx_size;
    if (pv_sched_new(m, tok, &sp, &sched, &err) != PV_OK) goto fail;
    pv_gen_app app = {.model = m, .tok = tok, .sched = sched, .ping_interval_s = 5.0};
    so.app = &app;
    so.load_fn = start_load;
    so.load_cls = sched;
    if (pv_server_start(&so, &srv, &err) != PV_OK) goto fail;

    PV_LOG_I("server", "model '%s' (%s, %d layers), context %d, parallel %d, load %.3f s", m->name,
             m->arch->name, m->hp.n_layer, ctx_size, (int)parallel, m->load_seconds);
    if (!api_key)
        PV_LOG_W("server", "--api-key none: authentication is disabled, anyone who can reach %s:%d can use the API",
                 host, pv_server_port(srv));
    bool v6 = strchr(host, ':') != NULL; /* an IPv6 literal needs brackets in a URL */
    PV_LOG_I("server", "listening on http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
             pv_server_port(srv));

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    PV_LOG_I("server", "%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "pensieve start: %s\n", err.msg[0] ? err.msg : pv_status_str(err.status));
out:
    /* the engine first: running streams end (their callbacks return), so that the server's
     * connection threads can be joined; the scheduler stays valid for late submits */
    pv_sched_shutdown(sched);
    pv_server_stop(srv);
    pv_sched_free(sched);
    pv_tokenizer_free(tok);
    pv_model_free(m);
    return rc;
}
