/* cmd_synth.c — `pensieve synth`: parses the flags into pv_synth_params and calls the
 * generator in src/model/synth.c (see pv_synth.h for what it writes). Integer flags are a
 * table (flag -> field), so adding one is one row. */
#include <stdio.h>
#include <string.h>

#include "model/pv_synth.h"
#include "pv_cli.h"

static void synth_usage(FILE *f) {
    fprintf(f,
            "usage: pensieve synth --arch llama|qwen2|qwen3|phi3 [--dim 2048] [--layers 16]\n"
            "         [--heads 32] [--kv-heads 8] [--ffn 8192] [--vocab 32000] [--ctx 4096]\n"
            "         [--head-dim N] [--type %s]\n"
            "         [--seed 1] [--tokenizer-json PATH [--tokenizer-config PATH]] [--vocab-only]\n"
            "         [--boost-token ID --boost-scale F]  (scale that token's output row: a random\n"
            "          model that samples it now and then, e.g. its end-of-turn token)\n"
            "         [-t THREADS] -o OUT.gguf\n"
            "Writes a model with deterministic random weights (same flags and seed, same bytes).\n"
            "--type defaults to f16; q4_k_m/q5_k_m mix types like llama-quantize.\n",
            pv_synth_type_list());
}

int pv_cmd_synth(int argc, char **argv) {
    pv_synth_params p;
    pv_synth_params_default(&p);
    const char *out = NULL;
    int64_t seed = 1, threads = 0;
    bool arch_given = false;
    const struct {
        const char *flag;
        int64_t *field;
    } ints[] = {
        {"--dim", &p.dim},       {"--layers", &p.n_layer}, {"--heads", &p.n_head},
        {"--kv-heads", &p.n_head_kv}, {"--ffn", &p.n_ff}, {"--vocab", &p.n_vocab},
        {"--ctx", &p.n_ctx},     {"--head-dim", &p.head_dim}, {"--seed", &seed},
        {"-t", &threads},        {"--threads", &threads}, {"--boost-token", &p.boost_token},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            synth_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--vocab-only")) {
            p.vocab_only = true;
            continue;
        }
        if (!strcmp(a, "--boost-scale")) {
            if (!(v = pv_cli_value("synth", argc, argv, &i))) return 2;
            if (!pv_cli_parse_f32("synth", a, v, &p.boost_scale)) return 2;
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < PV_ARRAY_LEN(ints); k++) {
            if (strcmp(a, ints[k].flag) != 0) continue;
            found = true;
            if (!(v = pv_cli_value("synth", argc, argv, &i))) return 2;
            if (!pv_cli_parse_i64("synth", a, v, ints[k].field)) return 2;
        }
        if (found) continue;
        const struct {
            const char *flag;
            const char **field;
        } strs[] = {{"--arch", &p.arch}, {"--type", &p.type}, {"--tokenizer-json", &p.tokenizer_json},
                    {"--tokenizer-config", &p.tokenizer_config}, {"-o", &out}, {"--output", &out}};
        for (size_t k = 0; k < PV_ARRAY_LEN(strs); k++) {
            if (strcmp(a, strs[k].flag) != 0) continue;
            found = true;
            if (!(v = pv_cli_value("synth", argc, argv, &i))) return 2;
            *strs[k].field = v;
            if (strs[k].field == &p.arch) arch_given = true;
        }
        if (!found) {
            fprintf(stderr, "pensieve synth: unknown option '%s'\n", a);
            synth_usage(stderr);
            return 2;
        }
    }
    if (!arch_given || !out) {
        fprintf(stderr, "pensieve synth: %s is required\n", !arch_given ? "--arch" : "-o");
        synth_usage(stderr);
        return 2;
    }
    if (seed < 0) {
        fprintf(stderr, "pensieve synth: --seed must be >= 0\n");
        return 2;
    }
    if (threads < 0 || threads > 1024) {
        fprintf(stderr, "pensieve synth: -t must be in 0..1024\n");
        return 2;
    }
    p.seed = (uint64_t)seed;
    p.n_threads = (int)threads;
    pv_error err = {0};
    double t0 = pv_time_now();
    pv_status st = pv_synth_write(&p, out, &err);
    if (st != PV_OK) {
        fprintf(stderr, "pensieve synth: %s\n", err.msg[0] ? err.msg : pv_status_str(st));
        return 1;
    }
    fprintf(stderr, "pensieve synth: wrote %s in %.1f s\n", out, pv_time_now() - t0);
    return 0;
}
