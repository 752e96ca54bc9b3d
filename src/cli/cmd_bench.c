/* cmd_bench.c — `pensieve bench`: llama-bench-style speed measurement. pp<N>: one batch of
 * N prompt tokens evaluated from an empty cache; tg<N>: N tokens generated one at a time
 * (each step a batch of one, greedy argmax of the logits, as a real decode loop does). One
 * warm-up run, then -r repetitions; prints mean ± standard deviation of tokens/second. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/pv_model.h"
#include "pv_cli.h"
#include "sampler/pv_sampler.h"

static void bench_usage(FILE *f) {
    fprintf(f, "usage: pensieve bench -m FILE [-p 512] [-n 128] [-r 5] [-t THREADS]\n"
               "                      [--kernels ref|avx2|avx512] [--kv-type f16|f32]\n"
               "  -p 0 or -n 0 skips that test.\n");
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0.0;
}

/* One prompt-processing run: n_p tokens in batches of n_batch from an empty cache. */
static pv_status run_pp(pv_ctx *ctx, const int32_t *toks, int n_p, double *secs, pv_error *err) {
    pv_kv_seq_rm(pv_ctx_kv(ctx), -1, 0, -1, NULL);
    double t0 = pv_time_now();
    pv_status st = pv_ctx_eval_seq(ctx, 0, toks, n_p, err);
    *secs = pv_time_now() - t0;
    return st;
}

/* One generation run: n_g single-token steps after a 1-token start. */
static pv_status run_tg(pv_ctx *ctx, int32_t first, int n_vocab, int n_g, double *secs, pv_error *err) {
    pv_kv_seq_rm(pv_ctx_kv(ctx), -1, 0, -1, NULL);
    int32_t t = first;
    double t0 = pv_time_now();
    for (int i = 0; i < n_g; i++) {
        pv_status st = pv_ctx_eval_seq(ctx, 0, &t, 1, err);
        if (st != PV_OK) return st;
        t = pv_sampler_argmax(pv_ctx_logits(ctx, 0), n_vocab);
    }
    *secs = pv_time_now() - t0;
    return PV_OK;
}

int pv_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *kernels = NULL;
    int64_t n_p = 512, n_g = 128, reps = 5, threads = 0;
    pv_type kv_type = PV_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL() \
    do { if (!(v = pv_cli_value("bench", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model_path = v; }
        else if (!strcmp(a, "-p")) { VAL(); if (!pv_cli_parse_i64("bench", a, v, &n_p)) return 2; }
        else if (!strcmp(a, "-n")) { VAL(); if (!pv_cli_parse_i64("bench", a, v, &n_g)) return 2; }
        else if (!strcmp(a, "-r")) { VAL(); if (!pv_cli_parse_i64("bench", a, v, &reps)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!pv_cli_parse_i64("bench", a, v, &threads)) return 2; }
        else if (!strcmp(a, "--kernels")) { VAL(); kernels = v; }
        else if (!strcmp(a, "--kv-type")) {
            VAL();
            if (!pv_type_parse(v, &kv_type) || (kv_type != PV_TYPE_F16 && kv_type != PV_TYPE_F32)) {
                fprintf(stderr, "pensieve bench: --kv-type must be f16 or f32\n");
                return 2;
            }
        }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { bench_usage(stdout); return 0; }
        else {
            fprintf(stderr, "pensieve bench: unknown option '%s'\n", a);
            bench_usage(stderr);
            return 2;
        }
#undef VAL
    }
    if (!model_path || n_p < 0 || n_g < 0 || reps < 1 || n_p > 1 << 20 || n_g > 1 << 20) {
        bench_usage(stderr);
        return 2;
    }
    pv_error err = {0};
    pv_model *m = NULL;
    pv_ctx *ctx = NULL;
    int32_t *toks = NULL;
    double *times = NULL;
    int rc = 1;
    pv_model_params mp = pv_model_params_default();
    mp.n_threads = (int)threads;
    mp.kernels = kernels;
    if (pv_model_load(model_path, &mp, &m, &err) != PV_OK) goto fail;
    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_ctx = (int)PV_MAX(n_p, n_g + 1) + 16;
    cp.n_batch = (int)PV_MAX(1, PV_MIN(n_p, 512));
    cp.kv_type = kv_type;
    if (pv_ctx_new(m, &cp, &ctx, &err) != PV_OK) goto fail;
    toks = malloc((size_t)PV_MAX(n_p, 1) * sizeof *toks);
    times = malloc((size_t)reps * sizeof *times);
    if (!toks || !times) goto out;
    uint64_t s = 12345;
    for (int64_t i = 0; i < n_p; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((s >> 33) % (uint64_t)m->hp.n_vocab);
    }
    char size_s[32], params_s[32];
    uint64_t n_params = 0;
    for (uint64_t i = 0; i < m->file->n_tensors; i++) {
        const pv_tensor_desc *t = &m->file->tensors[i];
        n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    snprintf(size_s, sizeof size_s, "%.2f GiB", (double)m->weight_bytes / (1024.0 * 1024 * 1024));
    snprintf(params_s, sizeof params_s, "%.2f B", (double)n_params / 1e9);
    printf("| %-28s | %10s | %8s | %-14s | %7s | %8s | %20s |\n", "model", "size", "params",
           "backend", "threads", "test", "t/s");
    printf("| %.28s | %.10s | %.8s | %.14s | %.7s | %.8s | %.20s |\n",
           "------------------------------", "----------", "--------", "--------------",
           "-------", "--------", "--------------------");
    char backend_s[32];
    snprintf(backend_s, sizeof backend_s, "CPU (%s)", pv_backend_cpu_kernels_name(m->be));
    for (int test = 0; test < 2; test++) {
        int64_t n = test == 0 ? n_p : n_g;
        if (n == 0) continue;
        double secs;
        /* warm-up */
        pv_status st = test == 0 ? run_pp(ctx, toks, (int)n, &secs, &err)
                                 : run_tg(ctx, 1, m->hp.n_vocab, (int)n, &secs, &err);
        if (st != PV_OK) goto fail;
        for (int r = 0; r < reps; r++) {
            st = test == 0 ? run_pp(ctx, toks, (int)n, &secs, &err)
                           : run_tg(ctx, 1, m->hp.n_vocab, (int)n, &secs, &err);
            if (st != PV_OK) goto fail;
            times[r] = (double)n / secs;
        }
        double mean, sd;
        mean_sd(times, (int)reps, &mean, &sd);
        char test_s[32], ts[48];
        snprintf(test_s, sizeof test_s, "%s%lld", test == 0 ? "pp" : "tg", (long long)n);
        snprintf(ts, sizeof ts, "%.2f ± %.2f", mean, sd);
        printf("| %-28.28s | %10s | %8s | %-14s | %7d | %8s | %20s |\n", m->name, size_s, params_s,
               backend_s, pv_backend_cpu_threads(m->be), test_s, ts);
        fflush(stdout);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "pensieve bench: %s\n", err.msg[0] ? err.msg : pv_status_str(err.status));
out:
    free(toks);
    free(times);
    pv_ctx_free(ctx);
    pv_model_free(m);
    return rc;
}
