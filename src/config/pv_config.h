/* pv_config.h — Pensieve's configuration layer: a strict parser for the subset of TOML that
 * pensieve.toml uses (with a value API that the config layer, the tests and the fuzz target
 * share), and the one table of configuration keys that drives parsing, precedence
 * (flag > environment > file > default), `pensieve config`, `pensieve config init`,
 * validation and the README. Every value remembers where it came from, and every error
 * names its origin ("FILE:LINE:COL: ...", "environment PENSIEVE_X: ...", "--flag: ...").
 *
 * TOML subset accepted (TOML 1.0 semantics): tables `[a]` and dotted `[a.b]`, bare, quoted
 * and dotted keys, basic strings with every TOML escape, literal strings, integers
 * (decimal with underscores and sign, 0x/0o/0b), floats (fraction, exponent, inf, nan),
 * booleans, comments, arrays (multi-line, trailing comma, nested). Rejected with
 * "FILE:LINE:COL: message": inline tables, arrays of tables, dates/times, multi-line
 * strings, duplicate keys, redefined tables, bad escapes, invalid UTF-8, control
 * characters, and anything else that is not valid TOML. */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/pv_core.h"

/* ======================= TOML value API ======================= */

typedef enum {
    PV_TOML_STRING,
    PV_TOML_INT,
    PV_TOML_FLOAT,
    PV_TOML_BOOL,
    PV_TOML_ARRAY,
    PV_TOML_TABLE
} pv_toml_type;

typedef struct pv_toml_value pv_toml_value;
typedef struct pv_toml_entry pv_toml_entry;

struct pv_toml_value {
    pv_toml_type type;
    int line, col; /* 1-based position of the value's first character (tables: header or
                      first key that created them; col counts code points) */
    union {
        struct {
            char *ptr; /* NUL-terminated; may also hold NULs from \u0000, so use len */
            size_t len;
        } s;
        int64_t i;
        double f;
        bool b;
        struct {
            pv_toml_value *items;
            size_t n, cap;
        } arr;
        struct {
            pv_toml_entry *items; /* in order of first appearance */
            size_t n, cap;
            /* private, for the redefinition rules: whether a [header] defined the table,
             * and the section number in which dotted keys created or extended it */
            uint8_t how;
            uint32_t dotted_section;
        } tab;
    };
};

struct pv_toml_entry {
    char *key; /* NUL-terminated; key_len counts bytes (quoted keys may contain NUL) */
    size_t key_len;
    int line, col; /* the key's position */
    pv_toml_value val;
};

/* Parses `len` bytes of `text`. On success *out is a new root table (caller frees with
 * pv_toml_free). On failure returns PV_ERR_FORMAT (or PV_ERR_NOMEM), leaves *out NULL and
 * sets err to "NAME:LINE:COL: message" (name: the file name for messages, e.g. the path).
 * The text need not be NUL-terminated. */
pv_status pv_toml_parse(const char *name, const char *text, size_t len, pv_toml_value **out,
                        pv_error *err);
/* Reads and parses a file; errors name the path ("PATH: cannot read: ..." for i/o). */
pv_status pv_toml_parse_file(const char *path, pv_toml_value **out, pv_error *err);
void pv_toml_free(pv_toml_value *root);

/* Looks up `key` (a plain, NUL-free key, not dotted) in table `t`; NULL if absent or if t
 * is not a table. Borrowed pointer into t. */
const pv_toml_entry *pv_toml_table_get(const pv_toml_value *t, const char *key);
/* Deep equality of two values (types, keys in any order, values; NaN equals NaN, as the
 * round-trip tests need). Positions are ignored. */
bool pv_toml_equal(const pv_toml_value *a, const pv_toml_value *b);
/* Writes `root` (a table) as TOML that pv_toml_parse reads back to an equal value:
 * scalars and arrays of each table first, then sub-tables as [dotted.headers]. Returns
 * false on a write error. */
bool pv_toml_write(FILE *f, const pv_toml_value *root);
/* "string", "integer", "float", "boolean", "array", "table". */
const char *pv_toml_type_name(pv_toml_type t);

/* ======================= configuration keys ======================= */

typedef enum {
    PV_CFG_STRING, /* any string (min..max: length bounds) */
    PV_CFG_INT,    /* 64-bit integer within min..max */
    PV_CFG_FLOAT,  /* number within min..max (TOML integers accepted) */
    PV_CFG_ENUM    /* one of `choices` ("a|b|c") */
} pv_config_type;

/* The key table, one row per key:
 * X(ID, section, key, type, default, env, short flag, long flag, min, max, choices, live, doc)
 * `live`: true when a running server can apply a change on SIGHUP; false: needs a restart.
 * Defaults are text, parsed by the same code as environment values and flags. */
#define PV_CONFIG_KEYS(X)                                                                      \
    X(MODEL_PATH, "model", "path", STRING, "", "PENSIEVE_MODEL_PATH", "-m", "--model", 0,      \
      4096, NULL, false, "GGUF model file to serve (\"\": none; then -m is required)")         \
    X(MODEL_CONTEXT_LENGTH, "model", "context_length", INT, "0",                               \
      "PENSIEVE_MODEL_CONTEXT_LENGTH", "-c", "--ctx-size", 0, 16777216, NULL, false,           \
      "positions per sequence (0: the model's training context, at most 4096)")                \
    X(SERVER_HOST, "server", "host", STRING, "127.0.0.1", "PENSIEVE_SERVER_HOST", NULL,        \
      "--host", 1, 255, NULL, false, "address to listen on (numeric or a resolvable name)")    \
    X(SERVER_PORT, "server", "port", INT, "7777", "PENSIEVE_SERVER_PORT", NULL, "--port", 0,   \
      65535, NULL, false, "TCP port (0: any free port)")                                       \
    X(SERVER_API_KEY, "server", "api_key", STRING, "pensieve-local-key",                       \
      "PENSIEVE_SERVER_API_KEY", NULL, "--api-key", 1, 4096, NULL, true,                       \
      "key clients must send (x-api-key or Bearer); \"none\" disables authentication")         \
    X(SERVER_MAX_CONCURRENT_REQUESTS, "server", "max_concurrent_requests", INT, "4",           \
      "PENSIEVE_SERVER_MAX_CONCURRENT_REQUESTS", NULL, "--parallel", 1, 256, NULL, false,      \
      "requests generating at once (KV cache sequence slots)")                                 \
    X(SERVER_MAX_QUEUED_REQUESTS, "server", "max_queued_requests", INT, "16",                  \
      "PENSIEVE_SERVER_MAX_QUEUED_REQUESTS", NULL, "--max-queued", 0, 65536, NULL, true,       \
      "requests waiting for a slot before the server answers overloaded (529/503)")            \
    X(SERVER_REQUEST_BODY_LIMIT_MB, "server", "request_body_limit_mb", INT, "32",              \
      "PENSIEVE_SERVER_REQUEST_BODY_LIMIT_MB", NULL, "--max-body-mb", 1, 4096, NULL, true,     \
      "largest request body accepted, in MiB (larger: 413)")                                   \
    X(SERVER_DRAIN_TIMEOUT_S, "server", "drain_timeout_s", INT, "30",                          \
      "PENSIEVE_SERVER_DRAIN_TIMEOUT_S", NULL, "--drain-timeout", 0, 86400, NULL, true,        \
      "seconds in-flight requests may run after SIGTERM/SIGINT before they are cut")           \
    X(SERVER_PID_FILE, "server", "pid_file", STRING, "", "PENSIEVE_SERVER_PID_FILE", NULL,     \
      "--pid-file", 0, 4096, NULL, false,                                                      \
      "PID file of start --background, stop, status (\"\": $XDG_RUNTIME_DIR/pensieve.pid, "    \
      "else ~/.local/state/pensieve/pensieve.pid)")                                            \
    X(PERFORMANCE_THREADS, "performance", "threads", INT, "0", "PENSIEVE_PERFORMANCE_THREADS", \
      "-t", "--threads", 0, 1024, NULL, false, "compute threads (0: one per core)")            \
    X(PERFORMANCE_MEMORY_LIMIT_GB, "performance", "memory_limit_gb", FLOAT, "0",               \
      "PENSIEVE_PERFORMANCE_MEMORY_LIMIT_GB", NULL, "--memory-limit-gb", 0, 1048576, NULL,     \
      false, "most memory for weights + KV cache, in GiB (0: no limit but MemAvailable)")       \
    X(PERFORMANCE_BATCH_SIZE, "performance", "batch_size", INT, "512",                         \
      "PENSIEVE_PERFORMANCE_BATCH_SIZE", NULL, "--batch-size", 1, 65536, NULL, false,          \
      "most tokens per forward pass (prompt prefill chunk)")                                   \
    X(PERFORMANCE_KV_CACHE_TYPE, "performance", "kv_cache_type", ENUM, "f16",                  \
      "PENSIEVE_PERFORMANCE_KV_CACHE_TYPE", NULL, "--kv-cache-type", 0, 0, "f16|f32", false,   \
      "element type of the KV cache")                                                          \
    X(LOGGING_LEVEL, "logging", "level", ENUM, "info", "PENSIEVE_LOGGING_LEVEL", NULL,         \
      "--log-level", 0, 0, "error|warn|info|debug|trace", true, "least severe level logged")   \
    X(LOGGING_FORMAT, "logging", "format", ENUM, "text", "PENSIEVE_LOGGING_FORMAT", NULL,      \
      "--log-format", 0, 0, "text|json", true, "log line format (json: one object per line)")  \
    X(LOGGING_FILE, "logging", "file", STRING, "", "PENSIEVE_LOGGING_FILE", NULL,              \
      "--log-file", 0, 4096, NULL, false,                                                      \
      "log file (\"\": standard error; with start --background: "                               \
      "$XDG_STATE_HOME/pensieve/pensieve.log, else ~/.local/state/pensieve/pensieve.log)")      \
    X(LOGGING_MAX_SIZE_MB, "logging", "max_size_mb", INT, "16", "PENSIEVE_LOGGING_MAX_SIZE_MB", \
      NULL, "--log-max-size-mb", 1, 65536, NULL, true,                                         \
      "rotate the log file when it reaches this size, in MiB")                                 \
    X(LOGGING_KEEP_FILES, "logging", "keep_files", INT, "5", "PENSIEVE_LOGGING_KEEP_FILES",    \
      NULL, "--log-keep-files", 0, 1000, NULL, true, "rotated log files kept (file.1 ... file.N)") \
    X(SAMPLING_SEED, "sampling", "seed", INT, "-1", "PENSIEVE_SAMPLING_SEED", "-s", "--seed", -1, \
      9007199254740991.0, NULL, false,                                                          \
      "seed of requests that send none, for reproducible runs (-1: a fresh random seed each)")

typedef enum {
#define PV_CONFIG_ID_(id, ...) PV_CFG_##id,
    PV_CONFIG_KEYS(PV_CONFIG_ID_)
#undef PV_CONFIG_ID_
    PV_CFG_KEY_COUNT
} pv_config_key;

/* One row of the key table. */
typedef struct pv_config_key_info {
    pv_config_key id;
    const char *section, *name;
    pv_config_type type;
    const char *def;          /* default, as text */
    const char *env;          /* PENSIEVE_<SECTION>_<KEY> */
    const char *short_flag;   /* "-m" or NULL */
    const char *flag;         /* "--model" */
    double min, max;          /* numeric range, or string length range */
    const char *choices;      /* ENUM: "a|b|c" */
    bool live;                /* applied by SIGHUP without a restart */
    const char *doc;          /* one-line description */
} pv_config_key_info;

/* The row for `id` (NULL for an out-of-range id); rows in table order. */
const pv_config_key_info *pv_config_key_get(pv_config_key id);
/* The row for "section" + "key", or NULL. */
const pv_config_key_info *pv_config_key_find(const char *section, const char *name);
const char *pv_config_type_name(pv_config_type t);

/* ======================= loading ======================= */

typedef enum {
    PV_CFG_SRC_DEFAULT,
    PV_CFG_SRC_FILE,
    PV_CFG_SRC_ENV,
    PV_CFG_SRC_FLAG
} pv_config_source;

const char *pv_config_source_name(pv_config_source s); /* "default", "file", "env", "flag" */

/* Command-line settings collected by pv_config_flag_match: the --config path and one value
 * per key (the last one given wins). Strings are borrowed from argv (which lives as long as
 * the process), so a copy of this struct can be kept for reloads on SIGHUP. */
typedef struct pv_config_flags {
    const char *config_path;                  /* --config FILE, or NULL */
    const char *value[PV_CFG_KEY_COUNT];      /* NULL: not given */
    const char *spelling[PV_CFG_KEY_COUNT];   /* the flag as written ("-m", "--model") */
} pv_config_flags;

/* Tries argv[*i] as a configuration flag ("--port 8080", "--port=8080", "-m FILE",
 * "--config FILE"). Returns 1 and advances *i past the value when it is one; 0 when argv[*i]
 * is not a configuration flag (the command handles or rejects it); -1 when the value is
 * missing (err says "--port needs a value"). Values are checked later by pv_config_load. */
int pv_config_flag_match(int argc, char **argv, int *i, pv_config_flags *flags, pv_error *err);
/* Writes the flag list ("  -m, --model FILE  ...") for a command's usage text. */
void pv_config_flags_usage(FILE *f);

typedef struct pv_config pv_config;

/* Loads the effective configuration: defaults, then the file (flags->config_path, else
 * $PENSIEVE_CONFIG, else ./pensieve.toml, else $XDG_CONFIG_HOME/pensieve/pensieve.toml or
 * ~/.config/pensieve/pensieve.toml; an explicit path that does not exist is an error, the
 * searched ones are optional), then PENSIEVE_<SECTION>_<KEY> variables, then flags. Every
 * value is checked (type, range, choices); the first problem is returned with its origin:
 * "FILE:LINE:COL: [server] port: 70000 is out of range 0..65535", "environment
 * PENSIEVE_SERVER_PORT: ...", "--port: ...", unknown keys and sections included.
 * flags may be NULL. Callable again at any time (SIGHUP reload); the caller owns *out. */
pv_status pv_config_load(const pv_config_flags *flags, pv_config **out, pv_error *err);
/* A configuration of defaults only (cannot fail except for memory: returns NULL). */
pv_config *pv_config_new_defaults(void);
void pv_config_free(pv_config *c);

/* Typed getters (the key must be of that type: STRING/ENUM for get_str). Strings are owned
 * by the config. */
int64_t pv_config_get_int(const pv_config *c, pv_config_key k);
double pv_config_get_float(const pv_config *c, pv_config_key k);
const char *pv_config_get_str(const pv_config *c, pv_config_key k);
/* Where the value came from; *detail (optional) gets the file path "PATH:LINE", the
 * variable name or the flag spelling, or NULL for a default. */
pv_config_source pv_config_get_source(const pv_config *c, pv_config_key k, const char **detail);
/* The file that was read (NULL when none was found). */
const char *pv_config_file(const pv_config *c);

/* The value as text, as `pensieve config` prints it and as a TOML value: strings quoted and
 * escaped, numbers plain. Writes at most cap bytes (NUL-terminated); returns buf. */
char *pv_config_format_value(const pv_config *c, pv_config_key k, char *buf, size_t cap);

/* ======================= reload ======================= */

typedef struct pv_config_change {
    pv_config_key key;
    bool live; /* from the table: true: apply now; false: needs a restart */
} pv_config_change;

/* Lists the keys whose value differs between old and new (in table order) into out
 * (room for PV_CFG_KEY_COUNT entries); returns how many. */
size_t pv_config_diff(const pv_config *old_cfg, const pv_config *new_cfg, pv_config_change *out);

/* ======================= writers ======================= */

/* Writes the effective configuration as TOML with the source of every value in a comment
 * ("port = 8080  # env:PENSIEVE_SERVER_PORT"). show_secrets false: an api_key other than
 * the built-in default and "none" is printed as "********". Returns false on a write error. */
bool pv_config_write_effective(FILE *f, const pv_config *c, bool show_secrets);
/* Writes the commented template of `pensieve config init`: every key with its description,
 * environment variable, flag, range and default value. Parses back to the defaults. */
bool pv_config_write_template(FILE *f);
/* Writes the key table as a Markdown table (section, key, type and range, default,
 * environment variable, flag, SIGHUP, description) for the README (`pensieve config keys`). */
bool pv_config_write_markdown(FILE *f);

#endif /* PV_CONFIG_H */
