/* cmd_start.c — `pensieve start`: load a model and its tokenizer, start the HTTP server
 * (src/server) in the foreground and serve until SIGINT/SIGTERM, then stop the daemon and
 * exit 0. The signals are blocked before any thread starts (model threads, MHD threads all
 * inherit the mask) and taken synchronously with sigwait, so no handler runs in a random
 * thread and shutdown happens on the main thread. Options come from the configuration layer
 * (src/config: flags > PENSIEVE_* environment > pensieve.toml > defaults). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/pv_config.h"
#include "model/pv_model.h"
#include "pv_cli.h"
#include "server/routes_gen.h"
#include "server/pv_server.h"
#include "tokenizer/pv_tokenizer.h"

static void start_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve start [-m FILE] [--config FILE] [configuration flags]\n"
            "  Serves the Anthropic Messages API and OpenAI chat completions on\n"
            "  http://127.0.0.1:7777 by default. The API key defaults to pensieve-local-key;\n"
            "  --api-key none disables authentication. SIGINT/SIGTERM stop the server.\n"
            "  The model comes from -m, PENSIEVE_MODEL_PATH or [model] path in the file.\n"
            "configuration flags:\n");
    pv_config_flags_usage(f);
}

/* /health's active/queued counts come from the scheduler. */
static void start_load(void *cls, int *active, int *queued) { pv_sched_counts(cls, active, queued); }

int pv_cmd_start(int argc, char **argv) {
    /* flags, environment and pensieve.toml through the configuration layer (src/config),
     * which checks every value against the key table (ranges, choices, types) */
    pv_config_flags flags;
    memset(&flags, 0, sizeof flags);
    pv_error cerr = {0};
    for (int i = 1; i < argc; i++) {
        int matched = pv_config_flag_match(argc, argv, &i, &flags, &cerr);
        if (matched < 0) {
            fprintf(stderr, "pensieve start: %s\n", cerr.msg);
            return 2;
        }
        if (matched) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            start_usage(stdout);
            return 0;
        }
        fprintf(stderr, "pensieve start: unknown option '%s'\n", argv[i]);
        start_usage(stderr);
        return 2;
    }
    pv_config *cfg = NULL;
    if (pv_config_load(&flags, &cfg, &cerr) != PV_OK) {
        fprintf(stderr, "pensieve start: %s\n", cerr.msg);
        return 2;
    }
    /* strings are borrowed from cfg, which lives until the server has stopped (and is what a
     * SIGHUP reload will diff against) */
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
    pv_log_level lvl = PV_LOG_INFO;
    pv_log_level_parse(pv_config_get_str(cfg, PV_CFG_LOGGING_LEVEL), &lvl); /* a checked choice */
    pv_log_set_level(lvl);
    if (!model_path[0]) {
        fprintf(stderr, "pensieve start: -m FILE is required (or PENSIEVE_MODEL_PATH, or [model] path)\n");
        start_usage(stderr);
        pv_config_free(cfg);
        return 2;
    }
    const char *api_key = strcmp(api_key_cfg, "none") ? api_key_cfg : NULL;

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
    pv_gen_app app = {0}; /* owns the chat template and the grammar vocabulary */
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
    sp.n_queue_max = (int)queued;
    sp.n_batch = (int)batch;
    sp.kv_type = kv_f32 ? PV_TYPE_F32 : PV_TYPE_F16;
    sp.n_ctx = ctx_size;
    if (pv_sched_new(m, tok, &sp, &sched, &err) != PV_OK) goto fail;
    if (pv_gen_app_init(&app, m, tok, sched, &err) != PV_OK) goto fail;
    PV_LOG_I("server", "chat template: %s; tool calls: %s",
             pv_api_chat_is_fallback(app.chat) ? "none in the model, ChatML fallback" : "the model's",
             pv_toolcall_format_name(pv_api_chat_toolcall_format(app.chat)));
    int64_t seed = pv_config_get_int(cfg, PV_CFG_SAMPLING_SEED);
    app.has_seed = seed >= 0;
    app.seed = (uint64_t)(seed >= 0 ? seed : 0);
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
    pv_gen_app_free(&app);
    pv_sched_free(sched);
    pv_tokenizer_free(tok);
    pv_model_free(m);
    pv_config_free(cfg);
    return rc;
}
