/* cmd_validate.c — `pensieve validate [-m FILE] [--config FILE] [configuration flags]`:
 * checks what `pensieve start` would use without starting anything, printing one verdict
 * line per check — "ok", "warn", "FAIL", or "skip" when an earlier failure makes a check
 * meaningless:
 *   config   the configuration (file, environment, flags) is valid
 *   model    the model file is given and readable
 *   gguf     it parses as GGUF (every offset and size checked)
 *   arch     its general.architecture is one the engine runs
 *   tensors  the model loads: every tensor present, of the right shape and a supported type
 *   context  the configured context vs the model's training context (beyond it: warn)
 *   memory   weights + KV cache (n_layer * n_ctx * n_kv_heads * head_dim * 2 * bytes per
 *            element * parallel sequences) vs [performance] memory_limit_gb and the
 *            machine's MemAvailable (/proc/meminfo)
 * Exit code 1 when any check fails, 0 otherwise (warnings included), 2 on usage errors. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/pv_config.h"
#include "gguf/pv_gguf.h"
#include "model/pv_model.h"
#include "pv_cli.h"

/* The checks in order; a failure skips the ones after it (each needs the previous). */
static const char *const pv_checks[] = {"config", "model", "gguf", "arch", "tensors", "context", "memory"};

typedef struct vstate {
    int failures;
    size_t next; /* index of the next check to report */
} vstate;

static void verdict(vstate *vs, const char *word, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(vstate *vs, const char *word, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("%-4s %-8s %s\n", word, pv_checks[vs->next++], msg);
    if (!strcmp(word, "FAIL")) vs->failures++;
}

static void skip_rest(vstate *vs, const char *why) {
    while (vs->next < PV_ARRAY_LEN(pv_checks))
        verdict(vs, "skip", "(%s)", why);
}

static void human_bytes(uint64_t b, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    size_t u = 0;
    while (v >= 1024 && u + 1 < PV_ARRAY_LEN(units))
        v /= 1024, u++;
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", v, units[u]);
}

/* MemAvailable from /proc/meminfo in bytes, or 0 when unknown. */
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static void validate_usage(FILE *f) {
    fprintf(f, "usage: pensieve validate [-m FILE] [--config FILE] [configuration flags]\n"
               "  Checks the configuration and the model (readable, GGUF valid, architecture and\n"
               "  tensor types supported, context, memory estimate) and prints one verdict line per\n"
               "  check. Exit code 1 if any check fails.\n"
               "configuration flags:\n");
    pv_config_flags_usage(f);
}

/* Types present in the file, e.g. "F32 x 11, Q8_0 x 28". */
static void type_summary(const pv_weights *w, char *buf, size_t cap) {
    uint64_t count[PV_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if ((unsigned)w->tensors[i].type < PV_TYPE_COUNT) count[w->tensors[i].type]++;
    buf[0] = '\0';
    for (int t = 0; t < PV_TYPE_COUNT; t++) {
        if (!count[t]) continue;
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s x %" PRIu64, l ? ", " : "", pv_type_name((pv_type)t), count[t]);
    }
}

/* The checks after the configuration; returns nothing, reports through vs. */
static void validate_model(vstate *vs, const pv_config *cfg) {
    const char *path = pv_config_get_str(cfg, PV_CFG_MODEL_PATH);
    if (!path[0]) {
        verdict(vs, "FAIL", "no model given (-m FILE, PENSIEVE_MODEL_PATH or [model] path)");
        skip_rest(vs, "no model");
        return;
    }
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        verdict(vs, "FAIL", "cannot read '%s': %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        skip_rest(vs, "model not readable");
        return;
    }
    close(fd);
    char hb[32], hb2[32], hb3[32];
    human_bytes((uint64_t)st.st_size, hb, sizeof hb);
    verdict(vs, "ok", "%s (%s)", path, hb);

    pv_weights *w = NULL;
    pv_error err = {0};
    if (pv_weights_open(path, &w, &err) != PV_OK) {
        verdict(vs, "FAIL", "%s", err.msg);
        skip_rest(vs, "not a valid GGUF file");
        return;
    }
    verdict(vs, "ok", "GGUF v%u: %" PRIu64 " tensors, %" PRIu64 " metadata keys", w->version, w->n_tensors,
            w->n_kv);

    char *arch = pv_meta_get_strdup(w, "general.architecture");
    const pv_arch_info *ai = arch ? pv_arch_find(arch) : NULL;
    if (!ai) {
        verdict(vs, "FAIL", "architecture '%s' is not supported (supported: %s)",
                arch ? arch : "(general.architecture missing)", pv_arch_supported_list());
        free(arch);
        pv_weights_free(w);
        skip_rest(vs, "unsupported architecture");
        return;
    }
    free(arch);
    uint64_t weight_bytes = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++)
        weight_bytes += w->tensors[i].nbytes;
    char types[512];
    type_summary(w, types, sizeof types);
    verdict(vs, "ok", "%s", ai->name);
    pv_weights_free(w);

    /* the loader checks presence, shapes and types exactly as `start` will; one thread is
     * enough, nothing is computed */
    pv_model_params mp = pv_model_params_default();
    mp.n_threads = 1;
    pv_model *m = NULL;
    if (pv_model_load(path, &mp, &m, &err) != PV_OK) {
        verdict(vs, "FAIL", "%s", err.msg);
        skip_rest(vs, "the model does not load");
        return;
    }
    verdict(vs, "ok", "%" PRIu64 " tensors of supported types (%s), shapes match %s", m->file->n_tensors,
            types, ai->name);

    int64_t want_ctx = pv_config_get_int(cfg, PV_CFG_MODEL_CONTEXT_LENGTH);
    int n_train = m->hp.n_ctx_train;
    int64_t n_ctx = want_ctx > 0 ? want_ctx : PV_MIN(n_train, 4096);
    if (want_ctx > n_train)
        verdict(vs, "warn", "context_length %" PRId64 " > training context %d (quality degrades beyond it)",
                want_ctx, n_train);
    else
        verdict(vs, "ok", "%" PRId64 " positions per sequence (training context %d%s)", n_ctx, n_train,
                want_ctx > 0 ? "" : "; context_length 0 uses it, at most 4096");

    /* KV cache: K and V rows of n_head_kv * head_dim elements per layer, position and
     * sequence; in double so that absurd configurations cannot overflow */
    int64_t parallel = pv_config_get_int(cfg, PV_CFG_SERVER_MAX_CONCURRENT_REQUESTS);
    int bpe = !strcmp(pv_config_get_str(cfg, PV_CFG_PERFORMANCE_KV_CACHE_TYPE), "f32") ? 4 : 2;
    double kv = (double)m->hp.n_layer * (double)n_ctx * m->hp.n_head_kv * m->hp.head_dim * 2.0 * bpe *
                (double)parallel;
    double total = (double)weight_bytes + kv;
    double limit_gb = pv_config_get_float(cfg, PV_CFG_PERFORMANCE_MEMORY_LIMIT_GB);
    double limit = limit_gb * 1073741824.0;
    uint64_t avail = mem_available();
    human_bytes((uint64_t)total, hb, sizeof hb);
    human_bytes(weight_bytes, hb2, sizeof hb2);
    human_bytes((uint64_t)kv, hb3, sizeof hb3);
    char detail[700];
    snprintf(detail, sizeof detail,
             "estimate %s = weights %s (%" PRIu64 " B) + KV cache %s (%.0f B = %d layers x %" PRId64
             " positions x %d KV heads x %d dims x 2 x %d B %s x %" PRId64 " sequences)",
             hb, hb2, weight_bytes, hb3, kv, m->hp.n_layer, n_ctx, m->hp.n_head_kv, m->hp.head_dim, bpe,
             bpe == 4 ? "f32" : "f16", parallel);
    pv_model_free(m);
    char ha[32];
    human_bytes(avail, ha, sizeof ha);
    if (limit_gb > 0 && total > limit)
        verdict(vs, "FAIL", "%s exceeds memory_limit_gb %g", detail, limit_gb);
    else if (avail && total > (double)avail)
        verdict(vs, "FAIL", "%s exceeds MemAvailable %s", detail, ha);
    else
        verdict(vs, "ok", "%s; MemAvailable %s%s", detail, avail ? ha : "unknown",
                limit_gb > 0 ? "; within memory_limit_gb" : "");
}

int pv_cmd_validate(int argc, char **argv) {
    pv_config_flags flags;
    memset(&flags, 0, sizeof flags);
    pv_error err = {0};
    for (int i = 1; i < argc; i++) {
        int m = pv_config_flag_match(argc, argv, &i, &flags, &err);
        if (m < 0) {
            fprintf(stderr, "pensieve validate: %s\n", err.msg);
            return 2;
        }
        if (m) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            validate_usage(stdout);
            return 0;
        }
        fprintf(stderr, "pensieve validate: unknown option '%s'\n", argv[i]);
        validate_usage(stderr);
        return 2;
    }
    /* the model checks log nothing useful at info; verdict lines are the output */
    pv_log_set_level(PV_LOG_ERROR);
    vstate vs = {0};
    pv_config *cfg = NULL;
    if (pv_config_load(&flags, &cfg, &err) != PV_OK) {
        verdict(&vs, "FAIL", "%s", err.msg);
        skip_rest(&vs, "the configuration is invalid");
        return 1;
    }
    verdict(&vs, "ok", "%s",
            pv_config_file(cfg) ? pv_config_file(cfg)
                                : "no configuration file; defaults, environment and flags");
    validate_model(&vs, cfg);
    pv_config_free(cfg);
    return vs.failures ? 1 : 0;
}
