/* pv_toolcall.h — turns a model's generated text back into tool calls. A chat template
 * teaches the model one syntax for calling a tool (Hermes/Qwen `<tool_call>{json}</tool_call>`,
 * Llama 3.x bare JSON with "parameters", or nothing at all, where we fall back to a bare JSON
 * object); this module picks the syntax from the template (and the vocabulary), then parses
 * the output incrementally as it is decoded: ordinary text is passed on as soon as it can no
 * longer turn into a call, and each complete, valid call is handed over as (name, input
 * object, id). Anything that looked like a call but is not a valid one (unknown tool,
 * unparsable JSON, unfinished at the end) is passed on as the raw text, never dropped.
 * The literal text that opens and closes a call in each syntax is exported as one table so
 * the constrained-decoding wrapper can force exactly what this parser accepts. */
#ifndef PV_TOOLCALL_H
#define PV_TOOLCALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pv_core.h"

/* NONE: no tool parsing at all (every byte is text) — for requests without tools.
 * HERMES: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` anywhere in the text.
 * LLAMA3_JSON: `{"name": ..., "parameters": {...}}` at the start of the output (or after
 *   `<|python_tag|>`), several separated by `;` and/or whitespace.
 * JSON: the fallback for templates with no tool syntax: a bare JSON object (or array of
 *   objects) `{"name": ..., "arguments"|"parameters"|"input": {...}}` at the start of the
 *   output. */
typedef enum {
    PV_TOOLCALL_NONE = 0,
    PV_TOOLCALL_HERMES,
    PV_TOOLCALL_LLAMA3_JSON,
    PV_TOOLCALL_JSON,
    PV_TOOLCALL_FORMAT_COUNT
} pv_toolcall_format;

/* One row per format: how it is detected and the exact literals of one call, so that the
 * text `open + json_prefix + NAME + name_args_sep + ARGS_OBJECT + json_suffix + close` is
 * a call this parser accepts (several calls are joined with call_sep). Strings are static;
 * arrays of markers end with NULL. */
typedef struct pv_toolcall_syntax {
    pv_toolcall_format format;
    const char *name;                  /* "hermes", "llama3_json", "json", "none" */
    const char *strong_markers[4];     /* template substrings that decide this format */
    const char *vocab_tokens[3];       /* vocabulary tokens that decide it (checked next) */
    const char *weak_markers[3];       /* template substrings checked last (model family) */
    const char *open;                  /* literal before the JSON object ("" if bare) */
    const char *alt_open;              /* another opener the parser accepts, or NULL */
    const char *json_prefix;           /* "{\"name\": \"" */
    const char *name_args_sep;         /* "\", \"arguments\": " */
    const char *json_suffix;           /* "}" */
    const char *close;                 /* literal after the JSON object ("" if none) */
    const char *call_sep;              /* between two calls when forcing several */
    const char *args_keys[4];          /* accepted argument keys, the preferred one first */
    bool bare;                         /* a bare `{` at the start of the output opens a call */
    bool bare_array;                   /* ... and so does a bare `[` of call objects */
    bool semicolon_sep;                /* `;` may separate calls (Llama 3.x) */
} pv_toolcall_syntax;

/* The table row for f (f out of range gives the NONE row). Never NULL. */
const pv_toolcall_syntax *pv_toolcall_syntax_get(pv_toolcall_format f);
const char *pv_toolcall_format_name(pv_toolcall_format f);
/* Parses a name from the table ("hermes", ...); false if unknown. */
bool pv_toolcall_format_parse(const char *name, pv_toolcall_format *out);

/* Chooses the format from the chat template source (NULL or "" = no template): the first
 * format whose strong marker occurs in the template, else the first whose weak marker
 * occurs, else JSON. Never returns NONE. */
pv_toolcall_format pv_toolcall_format_detect(const char *chat_template);

/* Asks whether the vocabulary has a token whose text is exactly `text`. */
typedef bool (*pv_toolcall_has_token_fn)(void *ud, const char *text);
/* Same as pv_toolcall_format_detect, with the vocabulary consulted between the strong and
 * the weak template markers (e.g. a `<tool_call>` token means HERMES even when the
 * template does not show the syntax). has_token may be NULL. */
pv_toolcall_format pv_toolcall_format_detect_ex(const char *chat_template,
                                                pv_toolcall_has_token_fn has_token, void *ud);

/* The literal text of one call of format f to tool `name`, around its arguments object:
 * *head = open + json_prefix + the JSON-escaped name + name_args_sep and *tail = json_suffix
 * + close (both malloc'ed, caller frees), so head + ARGS + tail is a call this parser accepts.
 * The chat mapping writes past calls with it and constrained decoding forces new ones with
 * it. False (both NULL) when out of memory. */
bool pv_toolcall_call_affixes(pv_toolcall_format f, const char *name, char **head, char **tail);

/* Writes prefix + 24 random base62 characters + NUL into out (Anthropic "toolu_" style,
 * or "call_" for OpenAI). Draws from the caller's rng (unbiased: rejection sampling).
 * Returns false (out set to "" when cap > 0) if cap is too small. */
#define PV_TOOLCALL_ID_RANDOM_CHARS 24
bool pv_toolcall_id_make(pv_rng *rng, const char *prefix, char *out, size_t cap);

/* ---- the streaming parser ---- */
typedef enum { PV_TOOLCALL_EV_TEXT = 0, PV_TOOLCALL_EV_CALL = 1 } pv_toolcall_event_kind;

/* Everything is borrowed for the duration of the callback only (json_incref input to keep
 * it). TEXT: text/len (UTF-8, not NUL-terminated; never empty). CALL: name (NUL-terminated),
 * input (a JSON object), id ("toolu_..." NUL-terminated), and text/len = the raw text of
 * the call as the model wrote it (for logs); the calls of one JSON array (JSON fallback)
 * share the array as their raw text, and raw_index numbers them (0 for the first, so the
 * raw texts of the events with raw_index 0 cover each call's bytes once). */
typedef struct pv_toolcall_event {
    pv_toolcall_event_kind kind;
    const char *text;
    size_t len;
    const char *name;
    json_t *input;
    const char *id;
    size_t raw_index;
} pv_toolcall_event;

typedef void (*pv_toolcall_cb)(void *ud, const pv_toolcall_event *ev);

typedef struct pv_toolcall_parser pv_toolcall_parser;

/* Creates a parser for format f. tools (borrowed, may be NULL) restricts the names that
 * count as calls: a JSON array whose items are names (strings) or objects with a "name"
 * (Anthropic {name, input_schema}; OpenAI {type:"function", function:{name}} also works).
 * NULL accepts any name. seed seeds the id generator (same seed, same ids). */
pv_status pv_toolcall_parser_init(pv_toolcall_parser **out, pv_toolcall_format f,
                                  const json_t *tools, uint64_t seed, pv_error *err);
/* Feeds the next piece of decoded text (pieces may split the text anywhere; the parser
 * itself only cuts TEXT events at ASCII bytes, so it never splits a UTF-8 sequence it was
 * given whole). Events for everything decided so far go to cb, in order. Out of memory is
 * logged (PV_LOG_E) and everything held is flushed as text, so no byte is lost. */
void pv_toolcall_parser_feed(pv_toolcall_parser *p, const char *text, size_t len,
                             pv_toolcall_cb cb, void *ud);
/* End of output: flushes held text (an unfinished call becomes text). The parser can be
 * fed again afterwards as a fresh output (ids continue from the same generator). */
void pv_toolcall_parser_finish(pv_toolcall_parser *p, pv_toolcall_cb cb, void *ud);
/* Number of calls emitted since init (so the caller can set stop_reason "tool_use"). */
size_t pv_toolcall_parser_calls(const pv_toolcall_parser *p);
void pv_toolcall_parser_free(pv_toolcall_parser *p);

#endif /* PV_TOOLCALL_H */
