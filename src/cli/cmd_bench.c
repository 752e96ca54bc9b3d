/* cmd_bench.c — `pensieve bench`: llama-bench-style speed measurement. pp<N>: one batch of
 * N prompt tokens evaluated from an empty cache; tg<N>: N tokens generated one at a time
 * (each step a batch of one, greedy argmax of the logits, as a real decode loop does). One
 * warm-up run, then -r repetitions; prints mean ± standard deviation of tokens/second.
 * --json-schema FILE adds tg<N>+json: the same decode loop under constrained decoding with
 * that JSON Schema, exactly as the scheduler does it (unconstrained argmax first, the full
 * grammar mask only when the grammar refuses it; a finished JSON value starts over), so its
 * ratio to tg<N> in the same run is the cost of constrained decoding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/pv_grammar.h"
#include "model/pv_model.h"
#include "tokenizer/pv_tokenizer.h"
#include "pv_cli.h"
#include "sampler/pv_sampler.h"

static void bench_usage(FILE *f) {
    fprintf(f, "usage: pensieve bench -m FILE [-p 512] [-n 128] [-r 5] [-t THREADS]\n"
               "                      [--kernels ref|avx2|avx512] [--kv-type f16|f32]\n"
               "                      [--json-schema FILE]  (adds tg<N>+json: constrained decoding)\n"
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
    double start = pv_time_now();
    for (int i = 0; i < n_g; i++) {
        pv_status st = pv_ctx_eval_seq(ctx, 0, &t, 1, err);
        if (st != PV_OK) return st;
        t = pv_sampler_argmax(pv_ctx_logits(ctx, 0), n_vocab);
    }
    *secs = pv_time_now() - start;
    return PV_OK;
}

/* Constrained decoding for the tg+json test (NULL members: not requested). */
typedef struct bench_grammar {
    pv_grammar *g;
    pv_grammar_state *st;
    pv_grammar_vocab *v;
    uint8_t *allowed;
    int32_t ids[1024]; /* the allowed ids when few */
    int n_masks;        /* full masks computed in the last run */
    double mask_secs;   /* time spent in the grammar (checks, masks, accepts) in the last run */
} bench_grammar;

/* The next token under the grammar: argmax, and only if the grammar refuses it, the full
 * mask and the argmax of what it allows (the scheduler's order); -1 if nothing is allowed. */
static int32_t grammar_next(bench_grammar *bg, const float *logits, int n_vocab) {
    int32_t t = pv_sampler_argmax(logits, n_vocab);
    double t0 = pv_time_now();
    if (!pv_grammar_token_allowed_budget(bg->st, bg->v, t, SIZE_MAX)) {
        bg->n_masks++;
        size_t n = pv_grammar_mask_budget_list(bg->st, bg->v, bg->allowed, SIZE_MAX, bg->ids,
                                               PV_ARRAY_LEN(bg->ids));
        /* the argmax of the allowed tokens: over the list when it is complete */
        float best = -INFINITY;
        t = -1;
        if (n <= PV_ARRAY_LEN(bg->ids)) {
            for (size_t k = 0; k < n; k++)
                if (logits[bg->ids[k]] > best || t < 0) {
                    best = logits[bg->ids[k]];
                    t = bg->ids[k];
                }
        } else {
            for (int i = 0; i < n_vocab; i++)
                if (bg->allowed[i] && (logits[i] > best || t < 0)) {
                    best = logits[i];
                    t = i;
                }
        }
    }
    bg->mask_secs += pv_time_now() - t0;
    return t;
}

/* tg under the grammar: like run_tg; an end-of-generation pick (the JSON value is complete)
 * restarts the grammar and feeds token `first` instead. */
static pv_status run_tg_grammar(pv_ctx *ctx, bench_grammar *bg, const pv_tokenizer *tok,
                                int32_t first, int n_vocab, int n_g, double *secs, pv_error *err) {
    pv_kv_seq_rm(pv_ctx_kv(ctx), -1, 0, -1, NULL);
    pv_grammar_state_reset(bg->st);
    bg->n_masks = 0;
    bg->mask_secs = 0;
    int32_t t = first;
    double start = pv_time_now();
    for (int i = 0; i < n_g; i++) {
        pv_status st = pv_ctx_eval_seq(ctx, 0, &t, 1, err);
        if (st != PV_OK) return st;
        t = grammar_next(bg, pv_ctx_logits(ctx, 0), n_vocab);
        double t0 = pv_time_now();
        bool eog = pv_tokenizer_is_eog(tok, t);
        if (eog) pv_grammar_state_reset(bg->st);
        else if (!pv_grammar_accept_token(bg->st, bg->v, t))
            return pv_error_set(err, PV_ERR_INTERNAL, "bench: grammar refused its own pick");
        bg->mask_secs += pv_time_now() - t0;
        if (eog) t = first;
    }
    *secs = pv_time_now() - start;
    return PV_OK;
}

/* Reads the schema file and builds the grammar, state and vocabulary view. */
static pv_status bench_grammar_init(bench_grammar *bg, const char *path, const pv_tokenizer *tok,
                                    int n_vocab, pv_error *err) {
    json_error_t je;
    json_t *schema = json_load_file(path, 0, &je);
    if (!schema) return pv_error_set(err, PV_ERR_FORMAT, "%s: %s", path, je.text);
    char *rules = NULL;
    pv_status st = pv_grammar_schema_to_gbnf(schema, "v", &rules, err);
    json_decref(schema);
    if (st != PV_OK) return st;
    size_t n = strlen(rules) + 16;
    char *gbnf = malloc(n);
    if (!gbnf) {
        free(rules);
        return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    }
    snprintf(gbnf, n, "root ::= v\n%s", rules);
    free(rules);
    st = pv_grammar_compile(gbnf, strlen(gbnf), "root", &bg->g, err);
    free(gbnf);
    if (st == PV_OK) st = pv_grammar_state_init(bg->g, &bg->st, err);
    if (st == PV_OK) st = pv_grammar_vocab_init(tok, &bg->v, err);
    if (st == PV_OK && pv_grammar_vocab_n(bg->v) != n_vocab)
        st = pv_error_set(err, PV_ERR_INVALID, "bench: vocabulary and model sizes differ");
    bg->allowed = malloc((size_t)n_vocab);
    if (st == PV_OK && !bg->allowed) st = pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    return st;
}

static void bench_grammar_free(bench_grammar *bg) {
    pv_grammar_state_free(bg->st);
    pv_grammar_free(bg->g);
    pv_grammar_vocab_free(bg->v);
    free(bg->allowed);
}

int pv_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *kernels = NULL, *schema_path = NULL;
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
        else if (!strcmp(a, "--json-schema")) { VAL(); schema_path = v; }
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
    pv_tokenizer *tok = NULL;
    bench_grammar bg = {0};
    pv_model_params mp = pv_model_params_default();
    mp.n_threads = (int)threads;
    mp.kernels = kernels;
    if (pv_model_load(model_path, &mp, &m, &err) != PV_OK) goto fail;
    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_ctx = (int)PV_MAX(n_p, n_g + 1) + 16;
    cp.n_batch = (int)PV_MAX(1, PV_MIN(n_p, 512));
    cp.kv_type = kv_type;
    if (pv_ctx_new(m, &cp, &ctx, &err) != PV_OK) goto fail;
    if (schema_path && (pv_tokenizer_init(m->file, &tok, &err) != PV_OK ||
                        bench_grammar_init(&bg, schema_path, tok, m->hp.n_vocab, &err) != PV_OK))
        goto fail;
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
    for (int test = 0; test < 3; test++) {
        int64_t n = test == 0 ? n_p : n_g;
        if (n == 0 || (test == 2 && !schema_path)) continue;
        double secs = 0;
        /* warm-up, then the timed runs */
        for (int r = -1; r < reps; r++) {
            pv_status st = test == 0   ? run_pp(ctx, toks, (int)n, &secs, &err)
                           : test == 1 ? run_tg(ctx, 1, m->hp.n_vocab, (int)n, &secs, &err)
                                       : run_tg_grammar(ctx, &bg, tok, 1, m->hp.n_vocab, (int)n, &secs, &err);
            if (st != PV_OK) goto fail;
            if (r >= 0) times[r] = (double)n / secs;
        }
        double mean, sd;
        mean_sd(times, (int)reps, &mean, &sd);
        char test_s[32], ts[48];
        snprintf(test_s, sizeof test_s, "%s%lld%s", test == 0 ? "pp" : "tg", (long long)n,
                 test == 2 ? "+json" : "");
        snprintf(ts, sizeof ts, "%.2f ± %.2f", mean, sd);
        printf("| %-28.28s | %10s | %8s | %-14s | %7d | %8s | %20s |\n", m->name, size_s, params_s,
               backend_s, pv_backend_cpu_threads(m->be), test_s, ts);
        if (test == 2)
            printf("|   (tg%lld+json, last run: %d full masks in %lld steps; time in the grammar "
                   "%.2f ms of %.2f ms = %.1f%%)\n",
                   (long long)n, bg.n_masks, (long long)n, bg.mask_secs * 1e3, secs * 1e3,
                   100.0 * bg.mask_secs / secs);
        fflush(stdout);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "pensieve bench: %s\n", err.msg[0] ? err.msg : pv_status_str(err.status));
out:
    free(toks);
    free(times);
    bench_grammar_free(&bg);
    pv_tokenizer_free(tok);
    pv_ctx_free(ctx);
    pv_model_free(m);
    return rc;
}
