/* toolcall.c — the tool-call syntax table, format detection, id generation and the
 * streaming tool-call parser (see pv_toolcall.h for the contract).
 *
 * The parser is a byte-at-a-time state machine over a buffer of held text, so every
 * decision depends only on the bytes seen, never on how they were split into pieces: a
 * streamed run and a one-shot run produce the same events (TEXT events may be cut at
 * different places, their concatenation between two calls is the same). Two modes:
 *  - SCAN: ordinary text. Text is released as soon as it cannot become part of a call.
 *    What is held: a possible prefix of an opener literal at the end of the buffer
 *    ("<tool_c"), and separators (whitespace, and `;` in Llama 3 mode after a call) while
 *    the parser is at a call boundary (start of the output or right after a call), since
 *    separators directly before/between/after calls are dropped once a call follows.
 *  - CALL: a candidate call opened by an opener literal ("<tool_call>", "<|python_tag|>")
 *    or, for the bare-JSON formats, by `{` (or `[` in the JSON fallback) at a call
 *    boundary. A light structural JSON scanner (bracket stack, strings, escapes) finds the
 *    end of the value without parsing it and rejects early any byte that cannot occur in
 *    JSON at that place; the completed value is then parsed by jansson and validated as a
 *    call; tagged formats then need the close literal. On any failure the candidate's
 *    bytes up to the failing byte are released as TEXT (logged), and scanning resumes at
 *    the failing byte in SCAN mode, no longer at a boundary (so a bare `{` there is text).
 * When a bare `{`/`[` counts as a call (LLAMA3_JSON, JSON): only when everything before it
 * in this output is whitespace (or previous calls and the separators between them). A `{`
 * after any other text is text. The completed value must be a JSON object (or, JSON
 * fallback only, a non-empty array of them) whose keys are exactly "name" (a non-empty
 * string), one argument key of the format ("arguments"/"parameters"/"input") holding an
 * object (or a string containing a JSON object), and optionally "type": "function" and
 * "id"; anything else is text. Keys are checked as they close (raw bytes: a key written
 * with escapes is not a call key), so ordinary JSON is released as text at its first
 * foreign key instead of being held to its end. The call is emitted as soon as the value
 * closes; text after it is kept as text.
 * Inside explicit tags (Hermes) the model has said it is calling, so the object is read
 * leniently: other keys are ignored, a missing argument key means {}, and at finish() a
 * complete valid object whose close tag was cut off (stop sequence, token budget) is
 * still a call. In every format the name must be one of the tools given at init (if
 * any), and the arguments an object or a string holding one. */
#include "toolcall/pv_toolcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TC_LOG "toolcall"
/* Deeper nesting than this is treated as not-a-call (jansson's own limit is 2048). */
#define TC_MAX_DEPTH 256

/* ---- the syntax table: the only place formats differ ---- */
static const pv_toolcall_syntax tc_syntax[PV_TOOLCALL_FORMAT_COUNT] = {
    [PV_TOOLCALL_NONE] = {.format = PV_TOOLCALL_NONE, .name = "none", .open = "",
                          .json_prefix = "", .name_args_sep = "", .json_suffix = "",
                          .close = "", .call_sep = ""},
    /* Qwen2.5/Qwen3/Hermes: the template itself prints the syntax inside <tools> help. */
    [PV_TOOLCALL_HERMES] = {.format = PV_TOOLCALL_HERMES,
                            .name = "hermes",
                            .strong_markers = {"<tool_call>", NULL},
                            .vocab_tokens = {"<tool_call>", NULL},
                            .open = "<tool_call>\n",
                            .json_prefix = "{\"name\": \"",
                            .name_args_sep = "\", \"arguments\": ",
                            .json_suffix = "}",
                            .close = "\n</tool_call>",
                            .call_sep = "\n",
                            .args_keys = {"arguments", "parameters", NULL}},
    /* Llama 3.1-3.3: the tool template says 'Respond in the format {"name": function name,
     * "parameters": dictionary of argument name and its value}' and uses <|python_tag|>;
     * a plain Llama 3 header template (no tool text) still marks the family (weak). */
    [PV_TOOLCALL_LLAMA3_JSON] = {.format = PV_TOOLCALL_LLAMA3_JSON,
                                 .name = "llama3_json",
                                 .strong_markers = {"<|python_tag|>",
                                                    "dictionary of argument name and its value",
                                                    "Environment: ipython", NULL},
                                 .vocab_tokens = {"<|python_tag|>", NULL},
                                 .weak_markers = {"<|start_header_id|>", NULL},
                                 .open = "",
                                 .alt_open = "<|python_tag|>",
                                 .json_prefix = "{\"name\": \"",
                                 .name_args_sep = "\", \"parameters\": ",
                                 .json_suffix = "}",
                                 .close = "",
                                 .call_sep = "; ",
                                 .args_keys = {"parameters", "arguments", NULL},
                                 .bare = true,
                                 .semicolon_sep = true},
    [PV_TOOLCALL_JSON] = {.format = PV_TOOLCALL_JSON,
                          .name = "json",
                          .open = "",
                          .json_prefix = "{\"name\": \"",
                          .name_args_sep = "\", \"arguments\": ",
                          .json_suffix = "}",
                          .close = "",
                          .call_sep = "\n",
                          .args_keys = {"arguments", "parameters", "input", NULL},
                          .bare = true,
                          .bare_array = true},
};

/* Order in which detection tries the formats (NONE is never detected). */
static const pv_toolcall_format tc_detect_order[] = {PV_TOOLCALL_HERMES,
                                                     PV_TOOLCALL_LLAMA3_JSON};

const pv_toolcall_syntax *pv_toolcall_syntax_get(pv_toolcall_format f) {
    if ((unsigned)f >= PV_TOOLCALL_FORMAT_COUNT) return &tc_syntax[PV_TOOLCALL_NONE];
    return &tc_syntax[f];
}

const char *pv_toolcall_format_name(pv_toolcall_format f) {
    return pv_toolcall_syntax_get(f)->name;
}

bool pv_toolcall_format_parse(const char *name, pv_toolcall_format *out) {
    if (!name) return false;
    for (int f = 0; f < PV_TOOLCALL_FORMAT_COUNT; f++) {
        if (strcmp(tc_syntax[f].name, name) == 0) {
            if (out) *out = (pv_toolcall_format)f;
            return true;
        }
    }
    return false;
}

/* True if any of the NULL-terminated markers (at most n) occurs in tmpl (borrowed). */
static bool tc_any_marker(const char *tmpl, const char *const *markers, size_t n) {
    if (!tmpl) return false;
    for (size_t i = 0; i < n && markers[i]; i++)
        if (strstr(tmpl, markers[i])) return true;
    return false;
}

pv_toolcall_format pv_toolcall_format_detect_ex(const char *chat_template,
                                                pv_toolcall_has_token_fn has_token, void *ud) {
    const char *t = (chat_template && *chat_template) ? chat_template : NULL;
    for (size_t i = 0; i < PV_ARRAY_LEN(tc_detect_order); i++) {
        const pv_toolcall_syntax *s = &tc_syntax[tc_detect_order[i]];
        if (tc_any_marker(t, s->strong_markers, PV_ARRAY_LEN(s->strong_markers)))
            return s->format;
    }
    if (has_token) {
        for (size_t i = 0; i < PV_ARRAY_LEN(tc_detect_order); i++) {
            const pv_toolcall_syntax *s = &tc_syntax[tc_detect_order[i]];
            for (size_t k = 0; k < PV_ARRAY_LEN(s->vocab_tokens) && s->vocab_tokens[k]; k++)
                if (has_token(ud, s->vocab_tokens[k])) return s->format;
        }
    }
    for (size_t i = 0; i < PV_ARRAY_LEN(tc_detect_order); i++) {
        const pv_toolcall_syntax *s = &tc_syntax[tc_detect_order[i]];
        if (tc_any_marker(t, s->weak_markers, PV_ARRAY_LEN(s->weak_markers))) return s->format;
    }
    return PV_TOOLCALL_JSON;
}

pv_toolcall_format pv_toolcall_format_detect(const char *chat_template) {
    return pv_toolcall_format_detect_ex(chat_template, NULL, NULL);
}

bool pv_toolcall_call_affixes(pv_toolcall_format f, const char *name, char **head, char **tail) {
    const pv_toolcall_syntax *syn = pv_toolcall_syntax_get(f);
    *head = *tail = NULL;
    json_t *jn = json_string(name ? name : "");
    char *q = jn ? json_dumps(jn, JSON_ENCODE_ANY) : NULL; /* "name", JSON-escaped */
    json_decref(jn);
    if (!q) return false;
    size_t nq = strlen(q) - 2; /* without the quotes: json_prefix/name_args_sep carry them */
    size_t nh = strlen(syn->open) + strlen(syn->json_prefix) + nq + strlen(syn->name_args_sep);
    size_t nt = strlen(syn->json_suffix) + strlen(syn->close);
    *head = malloc(nh + 1);
    *tail = malloc(nt + 1);
    if (*head && *tail) {
        snprintf(*head, nh + 1, "%s%s%.*s%s", syn->open, syn->json_prefix, (int)nq, q + 1,
                 syn->name_args_sep);
        snprintf(*tail, nt + 1, "%s%s", syn->json_suffix, syn->close);
    }
    free(q);
    if (*head && *tail) return true;
    free(*head);
    free(*tail);
    *head = *tail = NULL;
    return false;
}

bool pv_toolcall_id_make(pv_rng *rng, const char *prefix, char *out, size_t cap) {
    static const char b62[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    if (!prefix) prefix = "";
    size_t pl = strlen(prefix);
    if (!out || !rng || cap < pl + PV_TOOLCALL_ID_RANDOM_CHARS + 1) {
        if (out && cap) out[0] = '\0';
        return false;
    }
    memcpy(out, prefix, pl);
    size_t n = 0;
    /* 6-bit chunks, rejecting 62 and 63, so each character is exactly uniform. */
    while (n < PV_TOOLCALL_ID_RANDOM_CHARS) {
        uint64_t r = pv_rng_next(rng);
        for (int k = 0; k < 10 && n < PV_TOOLCALL_ID_RANDOM_CHARS; k++, r >>= 6) {
            unsigned v = (unsigned)(r & 63u);
            if (v < 62) out[pl + n++] = b62[v];
        }
    }
    out[pl + n] = '\0';
    return true;
}

/* ---- the parser ---- */
typedef enum { TC_SCAN = 0, TC_CALL } tc_mode;
typedef enum {
    TC_J_PRE = 0, /* after an opener literal, before the JSON value (whitespace allowed) */
    TC_J_IN,      /* inside the JSON value */
    TC_J_POST     /* value complete and valid; waiting for the close literal */
} tc_jstate;

struct pv_toolcall_parser {
    pv_toolcall_format fmt;
    const pv_toolcall_syntax *syn;
    char open_lit[32];  /* syn->open without trailing whitespace ("<tool_call>") */
    char close_lit[32]; /* syn->close without leading whitespace ("</tool_call>") */
    json_t *names;      /* set of allowed names (object name -> true), NULL = any */
    pv_rng rng;
    size_t calls_total;

    char *buf; /* held bytes, not yet emitted */
    size_t len, cap;
    bool oom;

    tc_mode mode;
    bool at_boundary;  /* start of output or right after a call: separators are held */
    size_t calls_out;  /* calls in the current output (since the last finish) */
    size_t pos;        /* SCAN: next byte to look at; CALL: next byte for the JSON scanner */

    /* CALL mode */
    size_t cand;       /* offset of the candidate's first byte (opener or bare bracket) */
    size_t jstart;     /* offset of the JSON value's first byte */
    size_t jend;       /* offset just past it (TC_J_POST) */
    bool tagged;       /* opened by a literal: needs close_lit (when non-empty) */
    tc_jstate js;
    bool in_str, esc;
    bool expect_key;   /* bare candidates: the next string in a call object is a key */
    bool in_key;       /* ... and the current string is that key, starting at key_start */
    size_t key_start;
    int depth;
    char stack[TC_MAX_DEPTH];
    json_t *pending;   /* TC_J_POST: the validated calls (array of {name,input}) */
};

/* Copies s into out with leading (lead) or trailing (!lead) whitespace removed. */
static void tc_trim_copy(char *out, size_t cap, const char *s, bool lead) {
    size_t a = 0, b = strlen(s);
    if (lead)
        while (a < b && (s[a] == ' ' || s[a] == '\n' || s[a] == '\t' || s[a] == '\r')) a++;
    else
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\n' || s[b - 1] == '\t' ||
                         s[b - 1] == '\r'))
            b--;
    size_t n = PV_MIN(b - a, cap - 1);
    memcpy(out, s + a, n);
    out[n] = '\0';
}

/* Builds the allowed-name set from a tools array (borrowed). */
static pv_status tc_names_build(json_t **out, const json_t *tools, pv_error *err) {
    *out = NULL;
    if (!tools) return PV_OK;
    if (!json_is_array(tools))
        return pv_error_set(err, PV_ERR_INVALID, "toolcall: tools must be a JSON array");
    json_t *set = json_object();
    if (!set) return pv_error_set(err, PV_ERR_NOMEM, "toolcall: out of memory");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *name = NULL;
        if (json_is_string(t)) {
            name = json_string_value(t);
        } else if (json_is_object(t)) {
            json_t *n = json_object_get(t, "name");
            if (!n) { /* OpenAI {type:"function", function:{name,...}} */
                json_t *fn = json_object_get(t, "function");
                n = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
            }
            name = json_string_value(n);
        }
        if (!name || !*name) {
            json_decref(set);
            return pv_error_set(err, PV_ERR_INVALID, "toolcall: tools[%zu] has no name", i);
        }
        if (json_object_set_new(set, name, json_true()) != 0) {
            json_decref(set);
            return pv_error_set(err, PV_ERR_NOMEM, "toolcall: out of memory");
        }
    }
    *out = set;
    return PV_OK;
}

pv_status pv_toolcall_parser_init(pv_toolcall_parser **out, pv_toolcall_format f,
                                  const json_t *tools, uint64_t seed, pv_error *err) {
    if (!out) return pv_error_set(err, PV_ERR_INVALID, "toolcall: out is NULL");
    *out = NULL;
    if ((unsigned)f >= PV_TOOLCALL_FORMAT_COUNT)
        return pv_error_set(err, PV_ERR_INVALID, "toolcall: unknown format %d", (int)f);
    pv_toolcall_parser *p = calloc(1, sizeof *p);
    if (!p) return pv_error_set(err, PV_ERR_NOMEM, "toolcall: out of memory");
    pv_status st = tc_names_build(&p->names, tools, err);
    if (st != PV_OK) {
        free(p);
        return st;
    }
    p->fmt = f;
    p->syn = &tc_syntax[f];
    tc_trim_copy(p->open_lit, sizeof p->open_lit, p->syn->open, false);
    tc_trim_copy(p->close_lit, sizeof p->close_lit, p->syn->close, true);
    pv_rng_seed(&p->rng, seed);
    p->at_boundary = true;
    *out = p;
    return PV_OK;
}

void pv_toolcall_parser_free(pv_toolcall_parser *p) {
    if (!p) return;
    json_decref(p->names);
    json_decref(p->pending);
    free(p->buf);
    free(p);
}

size_t pv_toolcall_parser_calls(const pv_toolcall_parser *p) { return p ? p->calls_total : 0; }

static void tc_emit_text(const char *s, size_t n, pv_toolcall_cb cb, void *ud) {
    if (n == 0 || !cb) return;
    pv_toolcall_event ev = {.kind = PV_TOOLCALL_EV_TEXT, .text = s, .len = n};
    cb(ud, &ev);
}

/* Drops the first n held bytes. */
static void tc_consume(pv_toolcall_parser *p, size_t n) {
    memmove(p->buf, p->buf + n, p->len - n);
    p->len -= n;
}

static bool tc_is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* Is c a separator that is held (and dropped if a call follows) at a boundary? */
static bool tc_is_sep(const pv_toolcall_parser *p, char c) {
    if (tc_is_ws(c)) return true;
    return c == ';' && p->syn->semicolon_sep && p->calls_out > 0;
}

/* Compares buf[i..len) with lit: 1 = full match, 0 = buf ends inside a prefix of lit
 * (need more bytes), -1 = mismatch. An empty lit never matches. */
static int tc_match(const pv_toolcall_parser *p, size_t i, const char *lit) {
    size_t n = strlen(lit);
    if (n == 0) return -1;
    size_t avail = p->len - i;
    size_t k = PV_MIN(avail, n);
    if (memcmp(p->buf + i, lit, k) != 0) return -1;
    return avail >= n ? 1 : 0;
}

/* Turns one parsed value into {name, input} (a new object appended to calls) if it is a
 * valid call for this parser; returns NULL on success or a static reason for the log.
 * v is borrowed. */
static const char *tc_call_check(pv_toolcall_parser *p, json_t *v, json_t *calls, bool *warn) {
    if (!json_is_object(v)) return "not a JSON object";
    const char *name = json_string_value(json_object_get(v, "name"));
    if (!name || !*name) return "no \"name\" string";
    *warn = true; /* it names something: whatever fails from here on deserves a warning */
    json_t *args = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        bool is_args = false;
        for (size_t k = 0; k < PV_ARRAY_LEN(p->syn->args_keys) && p->syn->args_keys[k]; k++)
            if (strcmp(key, p->syn->args_keys[k]) == 0) is_args = true;
        if (is_args) {
            if (args) return "several argument keys";
            args = val;
        } else if (strcmp(key, "name") == 0 || strcmp(key, "id") == 0) {
            continue;
        } else if (strcmp(key, "type") == 0) {
            const char *ty = json_string_value(val);
            if (!p->tagged && (!ty || strcmp(ty, "function") != 0)) {
                *warn = false;
                return "\"type\" is not \"function\"";
            }
        } else if (!p->tagged) {
            /* A bare object is only a call when it has nothing but call keys. */
            *warn = false;
            return "unexpected key in a bare JSON object";
        }
    }
    json_t *input = NULL;
    if (!args) {
        if (!p->tagged) {
            *warn = false;
            return "no arguments key";
        }
        input = json_object(); /* inside explicit call tags, no arguments means none */
    } else if (json_is_object(args)) {
        input = json_incref(args);
    } else if (json_is_string(args)) {
        /* Some models write the arguments as a JSON-encoded string (OpenAI style). */
        input = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
        if (!json_is_object(input)) {
            json_decref(input);
            return "arguments string is not a JSON object";
        }
    } else {
        return "arguments are not an object";
    }
    if (!input) return "out of memory";
    if (p->names && !json_object_get(p->names, name)) {
        json_decref(input);
        return "unknown tool";
    }
    json_t *c = json_pack("{s:s, s:o}", "name", name, "input", input);
    if (!c || json_array_append_new(calls, c) != 0) return "out of memory";
    return NULL;
}

/* Parses and validates the value buf[jstart..jend); on success keeps the calls in
 * p->pending (owned) and returns NULL, else returns the reason (*warn: worth a warning,
 * i.e. it was meant as a call, rather than ordinary JSON text). */
static const char *tc_validate(pv_toolcall_parser *p, bool *warn) {
    *warn = p->tagged;
    /* Duplicate keys would make the name or the arguments ambiguous: not a call. */
    json_t *v = json_loadb(p->buf + p->jstart, p->jend - p->jstart, JSON_REJECT_DUPLICATES,
                           NULL);
    if (!v) return "invalid JSON";
    json_t *calls = json_array();
    const char *why = calls ? NULL : "out of memory";
    if (!why && json_is_array(v)) {
        size_t i;
        json_t *el;
        if (json_array_size(v) == 0) why = "empty array";
        json_array_foreach(v, i, el) {
            if ((why = tc_call_check(p, el, calls, warn)) != NULL) break;
        }
    } else if (!why) {
        why = tc_call_check(p, v, calls, warn);
    }
    json_decref(v);
    if (why) {
        json_decref(calls);
        return why;
    }
    p->pending = calls;
    return NULL;
}

/* Back to SCAN mode with an empty scan position. */
static void tc_to_scan(pv_toolcall_parser *p, bool at_boundary) {
    json_decref(p->pending);
    p->pending = NULL;
    p->mode = TC_SCAN;
    p->pos = 0;
    p->at_boundary = at_boundary;
}

/* The candidate is not a call: releases buf[0..at) as text (held separators included),
 * logs why, and resumes scanning at `at` (which is past the candidate's first byte, so
 * the parser always advances). */
static void tc_fail(pv_toolcall_parser *p, size_t at, const char *why, bool warn,
                    pv_toolcall_cb cb, void *ud) {
    int shown = (int)PV_MIN(at - p->cand, (size_t)300);
    if (warn)
        PV_LOG_W(TC_LOG, "%s tool call returned as text (%s): %.*s",
                 p->syn->name, why, shown, p->buf + p->cand);
    else
        PV_LOG_D(TC_LOG, "not a tool call (%s): %.*s", why, shown, p->buf + p->cand);
    tc_emit_text(p->buf, at, cb, ud);
    tc_consume(p, at);
    tc_to_scan(p, false);
}

/* Emits the validated calls in p->pending; the raw call text is buf[cand..raw_end) and
 * the separators before it (buf[0..cand), held at a boundary) are dropped. */
static void tc_emit_calls(pv_toolcall_parser *p, size_t raw_end, pv_toolcall_cb cb,
                          void *ud) {
    size_t i;
    json_t *c;
    json_array_foreach(p->pending, i, c) {
        char id[40];
        pv_toolcall_id_make(&p->rng, "toolu_", id, sizeof id);
        pv_toolcall_event ev = {.kind = PV_TOOLCALL_EV_CALL,
                                .text = p->buf + p->cand,
                                .len = raw_end - p->cand,
                                .name = json_string_value(json_object_get(c, "name")),
                                .input = json_object_get(c, "input"),
                                .id = id,
                                .raw_index = i};
        if (cb) cb(ud, &ev);
        p->calls_total++;
        p->calls_out++;
    }
    tc_consume(p, raw_end);
    tc_to_scan(p, true);
}

/* Enters CALL mode for a candidate starting at offset i whose JSON starts at jstart
 * (tagged: after the opener literal; bare: i itself). Text before it that is not held
 * separators is released first. */
static void tc_start_candidate(pv_toolcall_parser *p, size_t i, size_t jstart, bool tagged,
                               pv_toolcall_cb cb, void *ud) {
    if (!p->at_boundary) {
        tc_emit_text(p->buf, i, cb, ud);
        tc_consume(p, i);
        jstart -= i;
        i = 0;
    }
    p->mode = TC_CALL;
    p->cand = i;
    p->jstart = jstart;
    p->jend = 0;
    p->tagged = tagged;
    p->js = tagged ? TC_J_PRE : TC_J_IN;
    p->in_str = p->esc = false;
    p->expect_key = p->in_key = false;
    p->depth = 0;
    p->pos = jstart;
}

/* SCAN mode over buf[pos..len): releases text, or switches to CALL mode. Returns true if
 * it switched (the caller continues), false if it needs more bytes. */
static bool tc_run_scan(pv_toolcall_parser *p, pv_toolcall_cb cb, void *ud) {
    const char *lits[2] = {p->open_lit[0] ? p->open_lit : NULL, p->syn->alt_open};
    size_t i = p->pos;
    while (i < p->len) {
        char c = p->buf[i];
        bool partial = false;
        for (size_t k = 0; k < 2; k++) {
            if (!lits[k] || lits[k][0] != c) continue;
            int m = tc_match(p, i, lits[k]);
            if (m > 0) {
                tc_start_candidate(p, i, i + strlen(lits[k]), true, cb, ud);
                return true;
            }
            if (m == 0) partial = true;
        }
        if (partial) break; /* hold the possible opener prefix */
        if (p->at_boundary && p->syn->bare &&
            (c == '{' || (c == '[' && p->syn->bare_array))) {
            tc_start_candidate(p, i, i, false, cb, ud);
            return true;
        }
        if (!(p->at_boundary && tc_is_sep(p, c))) p->at_boundary = false;
        i++;
    }
    if (!p->at_boundary) {
        tc_emit_text(p->buf, i, cb, ud);
        tc_consume(p, i);
        i = 0;
    }
    p->pos = i;
    return false;
}

/* Bare candidates: is the scanner directly inside what must be a call object (the top
 * object, or an object element of a top array)? Keys there are checked as they close so
 * that ordinary JSON text is released early instead of being held to its end. */
static bool tc_call_level(const pv_toolcall_parser *p) {
    return (p->depth == 1 && p->stack[0] == '{') ||
           (p->depth == 2 && p->stack[0] == '[' && p->stack[1] == '{');
}

/* May a bare call object have the key s[0..n) (raw bytes, escapes not decoded)? */
static bool tc_key_allowed(const pv_toolcall_parser *p, const char *s, size_t n) {
    static const char *const common[] = {"name", "id", "type"};
    for (size_t k = 0; k < PV_ARRAY_LEN(common); k++)
        if (strlen(common[k]) == n && memcmp(common[k], s, n) == 0) return true;
    for (size_t k = 0; k < PV_ARRAY_LEN(p->syn->args_keys) && p->syn->args_keys[k]; k++)
        if (strlen(p->syn->args_keys[k]) == n && memcmp(p->syn->args_keys[k], s, n) == 0)
            return true;
    return false;
}

static bool tc_json_plain(char c) {
    return tc_is_ws(c) || (c && strchr(",:-+.0123456789eEtrufalsn", c) != NULL);
}

/* CALL mode over buf[pos..len): returns true if the candidate was decided (call emitted
 * or failed: back to SCAN), false if it needs more bytes. */
static bool tc_run_call(pv_toolcall_parser *p, pv_toolcall_cb cb, void *ud) {
    while (p->pos < p->len) {
        size_t i = p->pos;
        char c = p->buf[i];
        if (p->js == TC_J_PRE) {
            if (tc_is_ws(c)) {
                p->pos++;
                continue;
            }
            if (c != '{') {
                tc_fail(p, i, "no JSON object after the opener", true, cb, ud);
                return true;
            }
            p->jstart = i;
            p->js = TC_J_IN;
        }
        if (p->js == TC_J_POST) {
            if (tc_is_ws(c)) {
                p->pos++;
                continue;
            }
            int m = tc_match(p, i, p->close_lit);
            if (m > 0) {
                tc_emit_calls(p, i + strlen(p->close_lit), cb, ud);
                return true;
            }
            if (m == 0) return false;
            tc_fail(p, i, "no close tag after the call", true, cb, ud);
            return true;
        }
        /* TC_J_IN */
        if (p->in_str) {
            if (p->esc) p->esc = false;
            else if (c == '\\') p->esc = true;
            else if (c == '"') {
                p->in_str = false;
                if (p->in_key) {
                    p->in_key = false;
                    if (!tc_key_allowed(p, p->buf + p->key_start, i - p->key_start)) {
                        tc_fail(p, i + 1, "not a call object (unexpected key)", false, cb, ud);
                        return true;
                    }
                }
            } else if ((unsigned char)c < 0x20) {
                tc_fail(p, i, "control character in a JSON string", p->tagged, cb, ud);
                return true;
            }
        } else if (!p->tagged && p->depth == 1 && p->stack[0] == '[' &&
                   !(tc_is_ws(c) || c == '{' || c == ',' || c == ']')) {
            tc_fail(p, i, "not a call array (an element is not an object)", false, cb, ud);
            return true;
        } else if (c == '"') {
            p->in_str = true;
            if (p->expect_key && !p->tagged && tc_call_level(p)) {
                p->in_key = true;
                p->key_start = i + 1;
            }
            p->expect_key = false;
        } else if (c == '{' || c == '[') {
            if (p->depth >= TC_MAX_DEPTH) {
                tc_fail(p, i, "JSON nested too deeply", p->tagged, cb, ud);
                return true;
            }
            p->stack[p->depth++] = c;
            p->expect_key = c == '{' && tc_call_level(p);
        } else if (c == ',' && tc_call_level(p)) {
            p->expect_key = true;
        } else if (c == '}' || c == ']') {
            char want = c == '}' ? '{' : '[';
            if (p->depth == 0 || p->stack[p->depth - 1] != want) {
                tc_fail(p, i, "mismatched bracket", p->tagged, cb, ud);
                return true;
            }
            if (--p->depth == 0) {
                p->jend = i + 1;
                bool warn = false;
                const char *why = tc_validate(p, &warn);
                if (why) {
                    tc_fail(p, p->jend, why, warn, cb, ud);
                    return true;
                }
                if (p->tagged && p->close_lit[0]) {
                    p->js = TC_J_POST;
                    p->pos = p->jend;
                    continue;
                }
                tc_emit_calls(p, p->jend, cb, ud);
                return true;
            }
        } else if (!tc_json_plain(c)) {
            tc_fail(p, i, "not JSON", p->tagged, cb, ud);
            return true;
        }
        p->pos++;
    }
    return false;
}

static void tc_run(pv_toolcall_parser *p, pv_toolcall_cb cb, void *ud) {
    for (;;) {
        bool progressed = p->mode == TC_SCAN ? tc_run_scan(p, cb, ud) : tc_run_call(p, cb, ud);
        if (!progressed) return;
    }
}

void pv_toolcall_parser_feed(pv_toolcall_parser *p, const char *text, size_t len,
                             pv_toolcall_cb cb, void *ud) {
    if (!p || !text || len == 0) return;
    if (p->fmt == PV_TOOLCALL_NONE) {
        tc_emit_text(text, len, cb, ud);
        return;
    }
    if (len > SIZE_MAX - p->len) {
        p->oom = true;
    } else if (p->len + len > p->cap) {
        size_t ncap = p->cap ? p->cap : 256;
        while (ncap < p->len + len) ncap = ncap > SIZE_MAX / 2 ? p->len + len : ncap * 2;
        char *nb = realloc(p->buf, ncap);
        if (!nb) {
            p->oom = true;
        } else {
            p->buf = nb;
            p->cap = ncap;
        }
    }
    if (p->oom) {
        /* Keep the no-byte-lost promise: everything held and this piece go out as text. */
        PV_LOG_E(TC_LOG, "out of memory holding %zu bytes: tool-call parsing stops for this output",
                 p->len + len);
        tc_emit_text(p->buf, p->len, cb, ud);
        tc_emit_text(text, len, cb, ud);
        p->len = 0;
        tc_to_scan(p, false);
        p->oom = false;
        return;
    }
    memcpy(p->buf + p->len, text, len);
    p->len += len;
    tc_run(p, cb, ud);
}

void pv_toolcall_parser_finish(pv_toolcall_parser *p, pv_toolcall_cb cb, void *ud) {
    if (!p) return;
    if (p->mode == TC_CALL) {
        if (p->js == TC_J_POST) {
            /* The call is complete and valid and only whitespace or the start of the close
             * tag follows: the tag was cut off (stop sequence, token budget). Accept it. */
            tc_emit_calls(p, p->len, cb, ud);
        } else {
            tc_fail(p, p->len, "unfinished at the end of the output", true, cb, ud);
        }
    }
    bool only_sep = p->at_boundary;
    for (size_t i = 0; only_sep && i < p->len; i++) only_sep = tc_is_sep(p, p->buf[i]);
    if (!(only_sep && p->calls_out > 0)) tc_emit_text(p->buf, p->len, cb, ud);
    p->len = 0;
    p->calls_out = 0;
    tc_to_scan(p, true);
}
