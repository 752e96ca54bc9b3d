/* config.c — the configuration keys (one table, from PV_CONFIG_KEYS in pv_config.h) and the
 * layered loader: defaults, then the TOML file, then PENSIEVE_<SECTION>_<KEY> environment
 * variables, then command-line flags, each layer checked with the same per-type code (the
 * defaults too, so a bad default is caught by the tests) and remembering where its value
 * came from. Also the flag matcher shared by the commands, the diff used by SIGHUP reloads
 * and the writers (`pensieve config`, `pensieve config init`, `pensieve config keys`). */
#include "pv_config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const pv_config_key_info pv_config_keys[PV_CFG_KEY_COUNT] = {
#define PV_CONFIG_ROW_(id, sec, key, type, def, env, sflag, flag, mn, mx, choices, live, doc)                \
    {PV_CFG_##id, sec, key, PV_CFG_##type, def, env, sflag, flag, mn, mx, choices, live, doc},
    PV_CONFIG_KEYS(PV_CONFIG_ROW_)
#undef PV_CONFIG_ROW_
};

/* Sections in the order they are printed (the order of first appearance in the table). */
static const char *const pv_config_sections[] = {"model", "server", "performance", "sampling",
                                                 "logging"};

typedef struct cfg_value {
    pv_config_source src;
    char *detail; /* "PATH:LINE", variable name or flag spelling; NULL for defaults */
    char *s;      /* STRING / ENUM */
    int64_t i;
    double f;
} cfg_value;

struct pv_config {
    cfg_value v[PV_CFG_KEY_COUNT];
    char *file;
};

const pv_config_key_info *pv_config_key_get(pv_config_key id) {
    return (unsigned)id < PV_CFG_KEY_COUNT ? &pv_config_keys[id] : NULL;
}

const pv_config_key_info *pv_config_key_find(const char *section, const char *name) {
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++)
        if (!strcmp(pv_config_keys[i].section, section) && !strcmp(pv_config_keys[i].name, name))
            return &pv_config_keys[i];
    return NULL;
}

const char *pv_config_type_name(pv_config_type t) {
    static const char *const names[] = {"string", "integer", "number", "choice"};
    return (unsigned)t < PV_ARRAY_LEN(names) ? names[t] : "unknown";
}

const char *pv_config_source_name(pv_config_source s) {
    static const char *const names[] = {"default", "file", "env", "flag"};
    return (unsigned)s < PV_ARRAY_LEN(names) ? names[s] : "unknown";
}

static bool section_known(const char *s) {
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_config_sections); i++)
        if (!strcmp(pv_config_sections[i], s)) return true;
    return false;
}

/* ---------------- checking one value ---------------- */

/* Finds `s` among the "a|b|c" choices (case-insensitively, as --log-level always was) and
 * copies the canonical spelling into out. */
static bool choice_find(const char *choices, const char *s, char *out, size_t cap) {
    size_t n = strlen(s);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncasecmp(c, s, n)) {
            snprintf(out, cap, "%.*s", (int)len, c);
            return true;
        }
        c += len + (bar ? 1 : 0);
    }
    return false;
}

/* The numeric range as text ("0..65535"), integers without decimals. */
static const char *range_text(const pv_config_key_info *k, char *buf, size_t cap) {
    if (k->type == PV_CFG_FLOAT)
        snprintf(buf, cap, "%.15g..%.15g", k->min, k->max);
    else
        snprintf(buf, cap, "%lld..%lld", (long long)k->min, (long long)k->max);
    return buf;
}

/* Checks a value already converted to its type and stores it in *dst (taking nothing:
 * strings are copied). `where` prefixes messages ("FILE:L:C: [server] port", "--port",
 * "environment PENSIEVE_SERVER_PORT"). */
static pv_status store_checked(const pv_config_key_info *k, cfg_value *dst, const char *s, size_t slen,
                               int64_t i, double f, const char *where, pv_error *err) {
    char range[64];
    switch (k->type) {
    case PV_CFG_STRING: {
        if (memchr(s, '\0', slen))
            return pv_error_set(err, PV_ERR_INVALID, "%s: must not contain NUL characters", where);
        if ((double)slen < k->min)
            return pv_error_set(err, PV_ERR_RANGE, "%s: must not be empty%s", where,
                                k->id == PV_CFG_SERVER_API_KEY ? " (use \"none\" to disable authentication)"
                                                               : "");
        if ((double)slen > k->max)
            return pv_error_set(err, PV_ERR_RANGE, "%s: longer than %lld bytes", where, (long long)k->max);
        char *copy = strdup(s);
        if (!copy) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
        free(dst->s);
        dst->s = copy;
        return PV_OK;
    }
    case PV_CFG_ENUM: {
        char canon[64];
        if (memchr(s, '\0', slen) || !choice_find(k->choices, s, canon, sizeof canon))
            return pv_error_set(err, PV_ERR_INVALID, "%s: '%.*s' is not one of %s", where,
                                (int)PV_MIN(slen, 64), s, k->choices);
        char *copy = strdup(canon);
        if (!copy) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
        free(dst->s);
        dst->s = copy;
        return PV_OK;
    }
    case PV_CFG_INT:
        /* the table's bounds are integers well inside ±2^53, so the comparison is exact */
        if ((double)i < k->min || (double)i > k->max)
            return pv_error_set(err, PV_ERR_RANGE, "%s: %lld is out of range %s", where, (long long)i,
                                range_text(k, range, sizeof range));
        dst->i = i;
        return PV_OK;
    case PV_CFG_FLOAT:
        if (!isfinite(f)) return pv_error_set(err, PV_ERR_RANGE, "%s: must be a finite number", where);
        if (f < k->min || f > k->max)
            return pv_error_set(err, PV_ERR_RANGE, "%s: %g is out of range %s", where, f,
                                range_text(k, range, sizeof range));
        dst->f = f;
        return PV_OK;
    }
    return pv_error_set(err, PV_ERR_INTERNAL, "%s: unknown key type", where);
}

/* Converts text (a default, an environment value or a flag value) to the key's type, then
 * checks and stores it. */
static pv_status store_text(const pv_config_key_info *k, cfg_value *dst, const char *text, const char *where,
                            pv_error *err) {
    int64_t i = 0;
    double f = 0;
    if (k->type == PV_CFG_INT) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end || text[0] == ' ' || text[0] == '\t')
            return pv_error_set(err, PV_ERR_INVALID, "%s: invalid integer '%.64s'", where, text);
        i = v;
    } else if (k->type == PV_CFG_FLOAT) {
        char *end = NULL;
        errno = 0;
        f = strtod(text, &end);
        if (errno || end == text || *end || text[0] == ' ' || text[0] == '\t')
            return pv_error_set(err, PV_ERR_INVALID, "%s: invalid number '%.64s'", where, text);
    }
    return store_checked(k, dst, text, strlen(text), i, f, where, err);
}

/* Converts a TOML value (wrong types are errors: an integer key does not take 1.0 or
 * "1"), then checks and stores it. */
static pv_status store_toml(const pv_config_key_info *k, cfg_value *dst, const pv_toml_value *v,
                            const char *where, pv_error *err) {
    bool ok = false;
    switch (k->type) {
    case PV_CFG_STRING:
    case PV_CFG_ENUM: ok = v->type == PV_TOML_STRING; break;
    case PV_CFG_INT: ok = v->type == PV_TOML_INT; break;
    case PV_CFG_FLOAT: ok = v->type == PV_TOML_INT || v->type == PV_TOML_FLOAT; break;
    }
    if (!ok)
        return pv_error_set(
            err, PV_ERR_INVALID, "%s: expected %s %s, found %s %s", where, k->type == PV_CFG_INT ? "an" : "a",
            k->type == PV_CFG_ENUM ? "string" : pv_config_type_name(k->type),
            v->type == PV_TOML_INT || v->type == PV_TOML_ARRAY ? "an" : "a", pv_toml_type_name(v->type));
    if (v->type == PV_TOML_STRING) return store_checked(k, dst, v->s.ptr, v->s.len, 0, 0, where, err);
    double f = v->type == PV_TOML_INT ? (double)v->i : v->f;
    return store_checked(k, dst, "", 0, v->i, f, where, err);
}

static pv_status set_source(cfg_value *dst, pv_config_source src, const char *detail, pv_error *err) {
    free(dst->detail);
    dst->detail = NULL;
    dst->src = src;
    if (detail && !(dst->detail = strdup(detail))) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    return PV_OK;
}

/* ---------------- layers ---------------- */

void pv_config_free(pv_config *c) {
    if (!c) return;
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        free(c->v[i].s);
        free(c->v[i].detail);
    }
    free(c->file);
    free(c);
}

static pv_status load_defaults(pv_config *c, pv_error *err) {
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        const pv_config_key_info *k = &pv_config_keys[i];
        char where[96];
        snprintf(where, sizeof where, "default of [%s] %s", k->section, k->name);
        pv_status st = store_text(k, &c->v[i], k->def, where, err);
        if (st != PV_OK) return st;
        c->v[i].src = PV_CFG_SRC_DEFAULT;
    }
    return PV_OK;
}

pv_config *pv_config_new_defaults(void) {
    pv_config *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (load_defaults(c, NULL) != PV_OK) {
        pv_config_free(c);
        return NULL;
    }
    return c;
}

/* The keys of a section, for "unknown key" messages. */
static void section_keys(const char *section, char *buf, size_t cap) {
    buf[0] = '\0';
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        if (strcmp(pv_config_keys[i].section, section)) continue;
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", pv_config_keys[i].name);
    }
}

/* Applies the parsed file: two levels only (section tables, then keys). */
static pv_status apply_file(pv_config *c, const char *path, const pv_toml_value *root, pv_error *err) {
    for (size_t i = 0; i < root->tab.n; i++) {
        const pv_toml_entry *sec = &root->tab.items[i];
        if (sec->val.type != PV_TOML_TABLE)
            return pv_error_set(
                err, PV_ERR_INVALID,
                "%s:%d:%d: key '%s' must be inside a section ([model], [server], [performance] or [logging])",
                path, sec->line, sec->col, sec->key);
        if (!section_known(sec->key) || strlen(sec->key) != sec->key_len)
            return pv_error_set(err, PV_ERR_INVALID,
                                "%s:%d:%d: unknown section [%s] (known: model, server, performance, logging)",
                                path, sec->val.line, sec->val.col, sec->key);
        for (size_t j = 0; j < sec->val.tab.n; j++) {
            const pv_toml_entry *e = &sec->val.tab.items[j];
            const pv_config_key_info *k =
                strlen(e->key) == e->key_len ? pv_config_key_find(sec->key, e->key) : NULL;
            if (!k) {
                char known[400];
                section_keys(sec->key, known, sizeof known);
                return pv_error_set(err, PV_ERR_INVALID, "%s:%d:%d: [%s] unknown key '%s' (known: %s)", path,
                                    e->line, e->col, sec->key, e->key, known);
            }
            char where[600], detail[560];
            snprintf(where, sizeof where, "%s:%d:%d: [%s] %s", path, e->val.line, e->val.col, k->section,
                     k->name);
            pv_status st = store_toml(k, &c->v[k->id], &e->val, where, err);
            if (st != PV_OK) return st;
            snprintf(detail, sizeof detail, "%s:%d", path, e->line);
            if ((st = set_source(&c->v[k->id], PV_CFG_SRC_FILE, detail, err)) != PV_OK) return st;
        }
    }
    return PV_OK;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Picks the configuration file: an explicit one (flag, then $PENSIEVE_CONFIG) must exist;
 * the searched ones are optional. *path gets a malloc'ed path or NULL. */
static pv_status find_file(const pv_config_flags *flags, char **path, pv_error *err) {
    *path = NULL;
    const char *explicit_path = flags && flags->config_path ? flags->config_path : NULL;
    const char *origin = "--config";
    if (!explicit_path) {
        const char *e = getenv("PENSIEVE_CONFIG");
        if (e && *e) explicit_path = e, origin = "environment PENSIEVE_CONFIG";
    }
    if (explicit_path) {
        if (!file_exists(explicit_path))
            return pv_error_set(err, PV_ERR_NOT_FOUND, "%s: configuration file '%s' not found", origin,
                                explicit_path);
        *path = strdup(explicit_path);
        return *path ? PV_OK : pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    }
    char buf[4096];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    const char *cand[3] = {"pensieve.toml", NULL, NULL};
    char xdg_path[4096];
    if (xdg && xdg[0] == '/') { /* the XDG spec ignores relative values */
        snprintf(xdg_path, sizeof xdg_path, "%s/pensieve/pensieve.toml", xdg);
        cand[1] = xdg_path;
    } else if (home && *home) {
        snprintf(buf, sizeof buf, "%s/.config/pensieve/pensieve.toml", home);
        cand[1] = buf;
    }
    for (size_t i = 0; i < PV_ARRAY_LEN(cand) && cand[i]; i++) {
        if (file_exists(cand[i])) {
            *path = strdup(cand[i]);
            return *path ? PV_OK : pv_error_set(err, PV_ERR_NOMEM, "out of memory");
        }
    }
    return PV_OK;
}

static pv_status apply_env(pv_config *c, pv_error *err) {
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        const pv_config_key_info *k = &pv_config_keys[i];
        const char *v = getenv(k->env);
        if (!v) continue;
        char where[96];
        snprintf(where, sizeof where, "environment %s", k->env);
        pv_status st = store_text(k, &c->v[i], v, where, err);
        if (st == PV_OK) st = set_source(&c->v[i], PV_CFG_SRC_ENV, k->env, err);
        if (st != PV_OK) return st;
    }
    return PV_OK;
}

static pv_status apply_flags(pv_config *c, const pv_config_flags *flags, pv_error *err) {
    for (size_t i = 0; flags && i < PV_CFG_KEY_COUNT; i++) {
        if (!flags->value[i]) continue;
        const char *spelling = flags->spelling[i] ? flags->spelling[i] : pv_config_keys[i].flag;
        pv_status st = store_text(&pv_config_keys[i], &c->v[i], flags->value[i], spelling, err);
        if (st == PV_OK) st = set_source(&c->v[i], PV_CFG_SRC_FLAG, spelling, err);
        if (st != PV_OK) return st;
    }
    return PV_OK;
}

pv_status pv_config_load(const pv_config_flags *flags, pv_config **out, pv_error *err) {
    *out = NULL;
    pv_config *c = calloc(1, sizeof *c);
    if (!c) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    pv_status st = load_defaults(c, err);
    if (st == PV_OK) st = find_file(flags, &c->file, err);
    if (st == PV_OK && c->file) {
        pv_toml_value *root = NULL;
        st = pv_toml_parse_file(c->file, &root, err);
        if (st == PV_OK) st = apply_file(c, c->file, root, err);
        pv_toml_free(root);
    }
    if (st == PV_OK) st = apply_env(c, err);
    if (st == PV_OK) st = apply_flags(c, flags, err);
    if (st != PV_OK) {
        pv_config_free(c);
        return st;
    }
    *out = c;
    return PV_OK;
}

/* ---------------- getters ---------------- */

int64_t pv_config_get_int(const pv_config *c, pv_config_key k) {
    return (unsigned)k < PV_CFG_KEY_COUNT ? c->v[k].i : 0;
}

double pv_config_get_float(const pv_config *c, pv_config_key k) {
    return (unsigned)k < PV_CFG_KEY_COUNT ? c->v[k].f : 0;
}

const char *pv_config_get_str(const pv_config *c, pv_config_key k) {
    return (unsigned)k < PV_CFG_KEY_COUNT && c->v[k].s ? c->v[k].s : "";
}

pv_config_source pv_config_get_source(const pv_config *c, pv_config_key k, const char **detail) {
    if ((unsigned)k >= PV_CFG_KEY_COUNT) {
        if (detail) *detail = NULL;
        return PV_CFG_SRC_DEFAULT;
    }
    if (detail) *detail = c->v[k].detail;
    return c->v[k].src;
}

const char *pv_config_file(const pv_config *c) { return c->file; }

/* ---------------- flags ---------------- */

int pv_config_flag_match(int argc, char **argv, int *i, pv_config_flags *flags, pv_error *err) {
    const char *a = argv[*i];
    if (strncmp(a, "-", 1)) return 0;
    const char *eq = !strncmp(a, "--", 2) ? strchr(a, '=') : NULL;
    size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
    int key = -1; /* PV_CFG_KEY_COUNT: --config */
    if (name_len == 8 && !strncmp(a, "--config", 8)) key = PV_CFG_KEY_COUNT;
    for (size_t k = 0; key < 0 && k < PV_CFG_KEY_COUNT; k++) {
        const pv_config_key_info *ki = &pv_config_keys[k];
        if ((strlen(ki->flag) == name_len && !strncmp(a, ki->flag, name_len)) ||
            (!eq && ki->short_flag && !strcmp(a, ki->short_flag)))
            key = (int)k;
    }
    if (key < 0) return 0;
    const char *value;
    if (eq) {
        value = eq + 1;
    } else {
        if (*i + 1 >= argc) {
            pv_error_set(err, PV_ERR_INVALID, "%s needs a value", a);
            return -1;
        }
        value = argv[++*i];
    }
    if (key == PV_CFG_KEY_COUNT) {
        flags->config_path = value;
    } else {
        flags->value[key] = value;
        /* the spelling without "=value": point into the static table for --x=v forms */
        flags->spelling[key] = eq ? pv_config_keys[key].flag : a;
    }
    return 1;
}

void pv_config_flags_usage(FILE *f) {
    fprintf(f, "  %-28s %s\n", "--config FILE",
            "configuration file (else $PENSIEVE_CONFIG, ./pensieve.toml,");
    fprintf(f, "  %-28s %s\n", "",
            "$XDG_CONFIG_HOME/pensieve/pensieve.toml or ~/.config/pensieve/pensieve.toml)");
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        const pv_config_key_info *k = &pv_config_keys[i];
        char spec[96];
        const char *meta = k->type == PV_CFG_INT     ? "N"
                           : k->type == PV_CFG_FLOAT ? "X"
                           : k->type == PV_CFG_ENUM  ? k->choices
                                                     : "TEXT";
        if (k->id == PV_CFG_MODEL_PATH || k->id == PV_CFG_LOGGING_FILE) meta = "FILE";
        snprintf(spec, sizeof spec, "%s%s%s %s", k->short_flag ? k->short_flag : "",
                 k->short_flag ? ", " : "", k->flag, meta);
        fprintf(f, "  %-28s %s\n", spec, k->doc);
    }
    fprintf(f, "  Every flag also reads PENSIEVE_<SECTION>_<KEY> and [section] key in the file;\n"
               "  precedence: flag > environment > file > default ('pensieve config' shows them).\n");
}

/* ---------------- formatting, diff, writers ---------------- */

/* Shortest "%.{15..17}g" that reads back exactly, with ".0" so TOML reads a float. */
static void float_text(double f, char *buf, size_t cap) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, f);
        if (strtod(buf, NULL) == f) break;
    }
    if (!strpbrk(buf, ".eE")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

/* Writes s as a TOML basic string into buf (escaping quotes, backslashes, controls). */
static void toml_quote(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    if (cap < 3) {
        if (cap) buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
        if (*p == '"' || *p == '\\')
            buf[o++] = '\\', buf[o++] = (char)*p;
        else if (*p < 0x20 || *p == 0x7F)
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04X", *p);
        else
            buf[o++] = (char)*p;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

char *pv_config_format_value(const pv_config *c, pv_config_key k, char *buf, size_t cap) {
    const pv_config_key_info *ki = pv_config_key_get(k);
    if (!ki || !cap) {
        if (cap) buf[0] = '\0';
        return buf;
    }
    switch (ki->type) {
    case PV_CFG_STRING:
    case PV_CFG_ENUM: toml_quote(pv_config_get_str(c, k), buf, cap); break;
    case PV_CFG_INT: snprintf(buf, cap, "%lld", (long long)c->v[k].i); break;
    case PV_CFG_FLOAT: float_text(c->v[k].f, buf, cap); break;
    }
    return buf;
}

size_t pv_config_diff(const pv_config *a, const pv_config *b, pv_config_change *out) {
    size_t n = 0;
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        const pv_config_key_info *k = &pv_config_keys[i];
        bool same;
        switch (k->type) {
        case PV_CFG_INT: same = a->v[i].i == b->v[i].i; break;
        case PV_CFG_FLOAT: same = a->v[i].f == b->v[i].f; break;
        default: same = !strcmp(pv_config_get_str(a, k->id), pv_config_get_str(b, k->id)); break;
        }
        if (!same) out[n++] = (pv_config_change){.key = k->id, .live = k->live};
    }
    return n;
}

/* "integer 0..65535", "one of f16|f32", "string". */
static const char *type_text(const pv_config_key_info *k, char *buf, size_t cap) {
    char range[64];
    switch (k->type) {
    case PV_CFG_INT: snprintf(buf, cap, "integer %s", range_text(k, range, sizeof range)); break;
    case PV_CFG_FLOAT: snprintf(buf, cap, "number %s", range_text(k, range, sizeof range)); break;
    case PV_CFG_ENUM: snprintf(buf, cap, "one of %s", k->choices); break;
    case PV_CFG_STRING: snprintf(buf, cap, "string"); break;
    }
    return buf;
}

bool pv_config_write_effective(FILE *f, const pv_config *c, bool show_secrets) {
    bool ok = true;
    if (c->file)
        ok &= fprintf(f, "# effective configuration; file: %s\n", c->file) >= 0;
    else
        ok &= fprintf(f, "# effective configuration; no configuration file found\n") >= 0;
    ok &= fprintf(f, "# precedence: flag > environment > file > default\n") >= 0;
    for (size_t s = 0; s < PV_ARRAY_LEN(pv_config_sections); s++) {
        ok &= fprintf(f, "\n[%s]\n", pv_config_sections[s]) >= 0;
        for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
            const pv_config_key_info *k = &pv_config_keys[i];
            if (strcmp(k->section, pv_config_sections[s])) continue;
            char val[8192], line[8400];
            pv_config_format_value(c, k->id, val, sizeof val);
            /* the built-in key is public and "none" is not a secret; anything else is */
            if (k->id == PV_CFG_SERVER_API_KEY && !show_secrets && strcmp(c->v[i].s, k->def) &&
                strcmp(c->v[i].s, "none"))
                snprintf(val, sizeof val, "\"********\"");
            snprintf(line, sizeof line, "%s = %s", k->name, val);
            const char *d = c->v[i].detail;
            ok &= fprintf(f, "%-44s # %s%s%s\n", line, pv_config_source_name(c->v[i].src), d ? ":" : "",
                          d ? d : "") >= 0;
        }
    }
    return ok;
}

bool pv_config_write_template(FILE *f) {
    bool ok =
        fprintf(
            f,
            "# pensieve.toml — configuration of the Pensieve server (written by `pensieve config init`).\n"
            "# Every key is listed with its default value; delete or change what you like.\n"
            "# Precedence, highest first: command-line flag > environment variable > this file > default.\n"
            "# Found at --config FILE, $PENSIEVE_CONFIG, ./pensieve.toml, then\n"
            "# $XDG_CONFIG_HOME/pensieve/pensieve.toml (else ~/.config/pensieve/pensieve.toml).\n") >= 0;
    pv_config *d = pv_config_new_defaults();
    if (!d) return false;
    for (size_t s = 0; s < PV_ARRAY_LEN(pv_config_sections); s++) {
        ok &= fprintf(f, "\n[%s]\n", pv_config_sections[s]) >= 0;
        for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
            const pv_config_key_info *k = &pv_config_keys[i];
            if (strcmp(k->section, pv_config_sections[s])) continue;
            char val[4096], type[96];
            ok &= fprintf(f, "\n# %s\n# %s; env %s; flag %s%s%s; %s\n%s = %s\n", k->doc,
                          type_text(k, type, sizeof type), k->env, k->short_flag ? k->short_flag : "",
                          k->short_flag ? "/" : "", k->flag,
                          k->live ? "applied live on SIGHUP" : "needs a restart", k->name,
                          pv_config_format_value(d, k->id, val, sizeof val)) >= 0;
        }
    }
    pv_config_free(d);
    return ok;
}

bool pv_config_write_markdown(FILE *f) {
    pv_config *d = pv_config_new_defaults();
    if (!d) return false;
    bool ok = fprintf(f, "| key | type | default | environment | flag | SIGHUP | description |\n"
                         "|---|---|---|---|---|---|---|\n") >= 0;
    for (size_t i = 0; i < PV_CFG_KEY_COUNT; i++) {
        const pv_config_key_info *k = &pv_config_keys[i];
        char val[4096], type[96];
        pv_config_format_value(d, k->id, val, sizeof val);
        /* a "|" inside a cell would end it: the choices are written with "/" instead */
        type_text(k, type, sizeof type);
        for (char *p = type; *p; p++)
            if (*p == '|') *p = '/';
        ok &= fprintf(f, "| `[%s] %s` | %s | `%s` | `%s` | `%s%s%s` | %s | %s |\n", k->section, k->name, type,
                      val, k->env, k->short_flag ? k->short_flag : "", k->short_flag ? "`, `" : "", k->flag,
                      k->live ? "live" : "restart", k->doc) >= 0;
    }
    pv_config_free(d);
    return ok;
}
