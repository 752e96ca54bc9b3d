/* cmd_run.c — `pensieve run`: load a model, tokenize a prompt (BOS as the metadata says)
 * or take prompt ids as given, generate with the sampler and stream the text to stdout at
 * UTF-8 boundaries (or, with --ids, print the generated ids on one line). Timing goes to
 * stderr: load time, prompt tok/s, generation tok/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/pv_model.h"
#include "pv_cli.h"
#include "sampler/pv_sampler.h"
#include "tokenizer/pv_tokenizer.h"

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve run -m FILE [-p TEXT | --prompt-ids \"1 2 3\"] [-n N] [--temp T]\n"
            "                    [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"
            "                    [--seed S] [-t THREADS] [-c CTX] [--ids] [--ignore-eos]\n"
            "                    [--kernels ref|avx2|avx512] [--kv-type f16|f32]\n"
            "  --temp 0 is greedy. The prompt gets BOS as the model's metadata says;\n"
            "  --prompt-ids is used exactly as given.\n");
}

/* Parses "1 2 3" (spaces/commas) into a malloc'ed array; returns false on bad input. */
static bool parse_ids(const char *s, int32_t **out, int *n_out) {
    size_t cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return false;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX) {
            free(ids);
            return false;
        }
        if (n == cap) {
            cap *= 2;
            int32_t *nids = realloc(ids, cap * sizeof *ids);
            if (!nids) {
                free(ids);
                return false;
            }
            ids = nids;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    *n_out = (int)n;
    return true;
}

int pv_cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_ids = NULL, *kernels = NULL;
    int64_t n_predict = 128, threads = 0, n_ctx = 0, top_k = 40, seed = -1;
    float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
    bool print_ids = false, ignore_eos = false;
    pv_type kv_type = PV_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL() \
    do { if (!(v = pv_cli_value("run", argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model_path = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { VAL(); prompt = v; }
        else if (!strcmp(a, "--prompt-ids")) { VAL(); prompt_ids = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { VAL(); if (!pv_cli_parse_i64("run", a, v, &n_predict)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { VAL(); if (!pv_cli_parse_i64("run", a, v, &threads)) return 2; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { VAL(); if (!pv_cli_parse_i64("run", a, v, &n_ctx)) return 2; }
        else if (!strcmp(a, "--top-k")) { VAL(); if (!pv_cli_parse_i64("run", a, v, &top_k)) return 2; }
        else if (!strcmp(a, "--seed")) { VAL(); if (!pv_cli_parse_i64("run", a, v, &seed)) return 2; }
        else if (!strcmp(a, "--temp")) { VAL(); if (!pv_cli_parse_f32("run", a, v, &temp)) return 2; }
        else if (!strcmp(a, "--top-p")) { VAL(); if (!pv_cli_parse_f32("run", a, v, &top_p)) return 2; }
        else if (!strcmp(a, "--min-p")) { VAL(); if (!pv_cli_parse_f32("run", a, v, &min_p)) return 2; }
        else if (!strcmp(a, "--repeat-penalty")) { VAL(); if (!pv_cli_parse_f32("run", a, v, &repeat_penalty)) return 2; }
        else if (!strcmp(a, "--kernels")) { VAL(); kernels = v; }
        else if (!strcmp(a, "--kv-type")) {
            VAL();
            if (!pv_type_parse(v, &kv_type) || (kv_type != PV_TYPE_F16 && kv_type != PV_TYPE_F32)) {
                fprintf(stderr, "pensieve run: --kv-type must be f16 or f32\n");
                return 2;
            }
        }
        else if (!strcmp(a, "--ids")) print_ids = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { run_usage(stdout); return 0; }
        else {
            fprintf(stderr, "pensieve run: unknown option '%s'\n", a);
            run_usage(stderr);
            return 2;
        }
#undef VAL
    }
    if (!model_path) {
        fprintf(stderr, "pensieve run: -m FILE is required\n");
        run_usage(stderr);
        return 2;
    }
    if (prompt && prompt_ids) {
        fprintf(stderr, "pensieve run: give -p or --prompt-ids, not both\n");
        return 2;
    }
    if (n_predict < 0) n_predict = 0;

    pv_error err = {0};
    pv_model *m = NULL;
    pv_tokenizer *tok = NULL;
    pv_ctx *ctx = NULL;
    pv_sampler *smp = NULL;
    int32_t *ids = NULL;
    int n_ids = 0, rc = 1;
    pv_model_params mp = pv_model_params_default();
    mp.n_threads = (int)threads;
    mp.kernels = kernels;
    if (pv_model_load(model_path, &mp, &m, &err) != PV_OK) goto fail;
    if (pv_tokenizer_init(m->file, &tok, &err) != PV_OK) goto fail;

    if (prompt_ids) {
        if (!parse_ids(prompt_ids, &ids, &n_ids)) {
            fprintf(stderr, "pensieve run: --prompt-ids: expected space-separated token ids\n");
            goto out;
        }
    } else {
        size_t n = 0;
        const char *text = prompt ? prompt : "";
        if (pv_tokenizer_encode(tok, text, strlen(text), true, true, &ids, &n, &err) != PV_OK) goto fail;
        n_ids = (int)n;
    }
    if (n_ids == 0) {
        fprintf(stderr, "pensieve run: the prompt is empty and the model has no BOS token to start from\n");
        goto out;
    }
    for (int i = 0; i < n_ids; i++)
        if (ids[i] >= m->hp.n_vocab) {
            fprintf(stderr, "pensieve run: prompt id %d is out of the vocabulary (%d)\n", ids[i], m->hp.n_vocab);
            goto out;
        }

    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_ctx = (int)n_ctx;
    if (cp.n_ctx <= 0) {
        int64_t want = n_ids + n_predict;
        cp.n_ctx = (int)PV_MIN((int64_t)m->hp.n_ctx_train, PV_MAX(want, 512));
    }
    cp.kv_type = kv_type;
    if (pv_ctx_new(m, &cp, &ctx, &err) != PV_OK) goto fail;
    if (n_ids >= cp.n_ctx) {
        fprintf(stderr, "pensieve run: prompt of %d tokens does not fit the context of %d\n", n_ids, cp.n_ctx);
        goto out;
    }

    pv_sampler_params sp = pv_sampler_params_default();
    sp.temperature = temp;
    sp.top_k = (int32_t)top_k;
    sp.top_p = top_p;
    sp.min_p = min_p;
    sp.repeat_penalty = repeat_penalty;
    sp.seed = seed >= 0 ? (uint64_t)seed : (uint64_t)time(NULL);
    smp = pv_sampler_new(&sp, m->hp.n_vocab);
    if (!smp) {
        pv_error_set(&err, PV_ERR_NOMEM, "sampler: out of memory");
        goto fail;
    }
    for (int i = 0; i < n_ids; i++) pv_sampler_accept(smp, ids[i]);

    fprintf(stderr, "pensieve: model '%s' (%s, %d layers, vocab %d), kernels %s, %d threads, load %.3f s\n",
            m->name, m->arch->name, m->hp.n_layer, m->hp.n_vocab, pv_backend_cpu_kernels_name(m->be),
            pv_backend_cpu_threads(m->be), m->load_seconds);

    double t0 = pv_time_now();
    if (pv_ctx_eval_seq(ctx, 0, ids, n_ids, &err) != PV_OK) goto fail;
    double t_prompt = pv_time_now() - t0;

    float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    if (!logits) goto out;
    pv_detok dt;
    pv_detok_init(&dt, tok, false);
    char piece[1024];
    int n_gen = 0;
    int32_t pos = n_ids;
    double t1 = pv_time_now();
    const char *stop_reason = "length";
    while (n_gen < n_predict) {
        memcpy(logits, pv_ctx_logits(ctx, 0), (size_t)m->hp.n_vocab * sizeof(float));
        int32_t next = pv_sampler_sample(smp, logits);
        pv_sampler_accept(smp, next);
        if (!ignore_eos && pv_tokenizer_is_eog(tok, next)) {
            stop_reason = "end of generation token";
            break;
        }
        n_gen++;
        if (print_ids) {
            printf(n_gen == 1 ? "%d" : " %d", next);
        } else {
            size_t len = pv_detok_push(&dt, next, piece, sizeof piece);
            fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
        if (n_gen >= n_predict) break;
        if (pos >= cp.n_ctx) {
            stop_reason = "context full";
            break;
        }
        if (pv_ctx_eval_seq(ctx, 0, &next, 1, &err) != PV_OK) {
            free(logits);
            goto fail;
        }
        pos++;
    }
    double t_gen = pv_time_now() - t1;
    if (!print_ids) {
        size_t len = pv_detok_flush(&dt, piece, sizeof piece);
        fwrite(piece, 1, len, stdout);
    }
    printf("\n");
    free(logits);
    fprintf(stderr, "pensieve: load %.3f s | prompt %d tokens, %.2f tok/s | generation %d tokens, %.2f tok/s | stop: %s\n",
            m->load_seconds, n_ids, t_prompt > 0 ? n_ids / t_prompt : 0.0, n_gen,
            t_gen > 0 && n_gen > 0 ? n_gen / t_gen : 0.0, stop_reason);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "pensieve run: %s\n", err.msg[0] ? err.msg : pv_status_str(err.status));
out:
    free(ids);
    pv_sampler_free(smp);
    pv_ctx_free(ctx);
    pv_tokenizer_free(tok);
    pv_model_free(m);
    return rc;
}
