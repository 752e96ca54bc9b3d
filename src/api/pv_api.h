/* pv_api.h — the API format layer, pure functions without sockets: it parses and validates
 * Anthropic Messages (/v1/messages, /v1/messages/count_tokens) and OpenAI chat-completions
 * (/v1/chat/completions) request bodies into ONE internal request model (pv_request), renders
 * that model through the model's chat template (chat.c, docs/chat.md) and tokenizes it the
 * same way for generation and count_tokens, and builds the JSON
 * responses, SSE events and error bodies of both APIs (compact jansson output).
 *
 * Validation errors carry the field path ("messages.2.content.0.type: unknown block type
 * \"foo\"") in a pv_api_error that also knows its HTTP status and error type per API.
 * Thread safety: every function is reentrant; a pv_request is immutable after parsing. */
#ifndef PV_API_H
#define PV_API_H

#include <jansson.h>

#include "../core/pv_core.h"
#include "../sampler/pv_sampler.h"
#include "../toolcall/pv_toolcall.h"

struct pv_tokenizer;
struct pv_weights;

/* ---- tables ---- */
/* Which API a body or response belongs to (NONE: /health, answered in the Anthropic shape;
 * the server's route table uses this enum too). */
typedef enum pv_api_family {
    PV_API_NONE = 0,
    PV_API_ANTHROPIC,
    PV_API_OPENAI,
} pv_api_family;

/* Roles of the internal model. OpenAI "tool" messages become user messages holding
 * tool_result blocks (the Anthropic form), so one renderer serves both APIs; "developer" is
 * a system message. System messages inside the conversation stay in place. */
#define PV_API_ROLE_MAP(X) \
    X(USER, "user")         \
    X(ASSISTANT, "assistant") \
    X(SYSTEM, "system")

typedef enum {
#define PV_API_ROLE_ENUM_(n, s) PV_API_ROLE_##n,
    PV_API_ROLE_MAP(PV_API_ROLE_ENUM_)
#undef PV_API_ROLE_ENUM_
    PV_API_ROLE_COUNT
} pv_api_role;

#define PV_API_BLOCK_MAP(X)         \
    X(TEXT, "text")                 \
    X(IMAGE, "image")               \
    X(DOCUMENT, "document")         \
    X(TOOL_USE, "tool_use")         \
    X(TOOL_RESULT, "tool_result")   \
    X(THINKING, "thinking")         \
    X(REDACTED_THINKING, "redacted_thinking")

typedef enum {
#define PV_API_BLOCK_ENUM_(n, s) PV_API_BLOCK_##n,
    PV_API_BLOCK_MAP(PV_API_BLOCK_ENUM_)
#undef PV_API_BLOCK_ENUM_
    PV_API_BLOCK_COUNT
} pv_api_block_type;

/* Stop reasons: Anthropic name and the OpenAI finish_reason it maps to. */
#define PV_API_STOP_REASON_MAP(X)                                        \
    X(END_TURN, "end_turn", "stop")                                      \
    X(MAX_TOKENS, "max_tokens", "length")                                \
    X(STOP_SEQUENCE, "stop_sequence", "stop")                            \
    X(TOOL_USE, "tool_use", "tool_calls")                                \
    X(MODEL_CONTEXT_WINDOW_EXCEEDED, "model_context_window_exceeded", "length")

typedef enum {
#define PV_API_STOP_ENUM_(n, a, o) PV_API_STOP_##n,
    PV_API_STOP_REASON_MAP(PV_API_STOP_ENUM_)
#undef PV_API_STOP_ENUM_
    PV_API_STOP_COUNT
} pv_api_stop_reason;

/* Anthropic names; OpenAI's "required" is ANY and {"type":"function",...} is TOOL. */
#define PV_API_TOOL_CHOICE_MAP(X) \
    X(AUTO, "auto")               \
    X(ANY, "any")                 \
    X(TOOL, "tool")               \
    X(NONE, "none")

typedef enum {
#define PV_API_TC_ENUM_(n, a) PV_API_TOOL_CHOICE_##n,
    PV_API_TOOL_CHOICE_MAP(PV_API_TC_ENUM_)
#undef PV_API_TC_ENUM_
} pv_api_tool_choice;

/* OTHER: a thinking type this server does not know (tolerated for forward compatibility;
 * thinking never changes what this server generates). */
#define PV_API_THINKING_MAP(X) \
    X(UNSET, "")               \
    X(ENABLED, "enabled")      \
    X(DISABLED, "disabled")    \
    X(ADAPTIVE, "adaptive")    \
    X(OTHER, "other")

typedef enum {
#define PV_API_TH_ENUM_(n, s) PV_API_THINKING_##n,
    PV_API_THINKING_MAP(PV_API_TH_ENUM_)
#undef PV_API_TH_ENUM_
} pv_api_thinking;

/* Error kinds: HTTP status and type string per API. */
#define PV_API_ERROR_MAP(X)                                                              \
    X(INVALID_REQUEST, 400, "invalid_request_error", 400, "invalid_request_error")       \
    X(AUTHENTICATION, 401, "authentication_error", 401, "authentication_error")          \
    X(PERMISSION, 403, "permission_error", 403, "permission_error")                      \
    X(NOT_FOUND, 404, "not_found_error", 404, "not_found_error")                         \
    X(REQUEST_TOO_LARGE, 413, "request_too_large", 413, "invalid_request_error")         \
    X(RATE_LIMIT, 429, "rate_limit_error", 429, "rate_limit_error")                      \
    X(API, 500, "api_error", 500, "server_error")                                        \
    X(OVERLOADED, 529, "overloaded_error", 503, "server_error")

typedef enum {
#define PV_API_ERR_ENUM_(n, hs, at, os, ot) PV_API_ERR_##n,
    PV_API_ERROR_MAP(PV_API_ERR_ENUM_)
#undef PV_API_ERR_ENUM_
    PV_API_ERR_COUNT
} pv_api_error_kind;

const char *pv_api_role_str(pv_api_role r);
const char *pv_api_block_type_str(pv_api_block_type t);
const char *pv_api_stop_reason_str(pv_api_stop_reason r);        /* "end_turn" ... */
const char *pv_api_stop_reason_openai(pv_api_stop_reason r);     /* "stop" / "length" ... */
const char *pv_api_tool_choice_str(pv_api_tool_choice c);        /* Anthropic names */
const char *pv_api_thinking_str(pv_api_thinking t);

/* ---- errors ---- */
typedef struct pv_api_error {
    pv_api_error_kind kind;
    char param[160];   /* field path ("messages.2.content.0.type"); "" when none */
    char message[640]; /* full message, path first: "messages: at least one message ..." */
} pv_api_error;

/* Fills *e (if non-NULL); the message is "<param>: <formatted>" when param is non-empty.
 * Returns PV_ERR_INVALID for 4xx kinds and PV_ERR_INTERNAL for 5xx. */
pv_status pv_api_error_set(pv_api_error *e, pv_api_error_kind kind, const char *param,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int pv_api_error_http_status(pv_api_family f, pv_api_error_kind k);
const char *pv_api_error_type_str(pv_api_family f, pv_api_error_kind k);

/* ---- the internal request model ---- */
typedef struct pv_api_block {
    pv_api_block_type type;
    char *text;      /* text: text; thinking: thinking; redacted_thinking: data; NULL else */
    char *signature; /* thinking: signature (may be NULL) */
    char *id;        /* tool_use: id; tool_result: tool_use_id */
    char *name;      /* tool_use: name */
    json_t *input;   /* tool_use: input (owned reference; an object, or a string when an
                        OpenAI arguments string was not valid JSON) */
    bool is_error;   /* tool_result */
    struct pv_api_block *content; /* tool_result: its blocks (a string became one text) */
    size_t n_content;
} pv_api_block;

typedef struct pv_api_message {
    pv_api_role role;
    pv_api_block *blocks;
    size_t n_blocks;
} pv_api_message;

typedef struct pv_api_tool {
    char *name;
    char *description;   /* NULL if absent */
    json_t *input_schema; /* owned reference; NULL for server tools (type set, no schema) */
    char *type;          /* NULL if absent ("custom" or a server tool type) */
} pv_api_tool;

typedef struct pv_request {
    pv_api_family family;
    char *model;              /* requested name, echoed back */
    bool has_max_tokens;      /* false on count_tokens and OpenAI bodies without one */
    int64_t max_tokens;       /* >= 0 (0: answer at once, stop_reason max_tokens) */
    bool has_temperature, has_top_p, has_top_k, has_seed;
    bool has_presence_penalty, has_frequency_penalty; /* OpenAI only */
    double temperature, top_p, presence_penalty, frequency_penalty;
    int64_t top_k;
    uint64_t seed;
    char **stop;              /* stop_sequences / stop */
    size_t n_stop;
    bool stream;
    bool stream_include_usage; /* OpenAI stream_options.include_usage */
    char *system;             /* joined system text (billing header dropped); NULL if none */
    pv_api_message *messages; /* merged: no two consecutive messages share a role */
    size_t n_messages;
    bool prefill;             /* the last message is an assistant turn to continue */
    pv_api_tool *tools;
    size_t n_tools;
    pv_api_tool_choice tool_choice; /* AUTO when absent */
    char *tool_choice_name;   /* TOOL: the forced tool */
    bool disable_parallel_tool_use;
    pv_api_thinking thinking;
    int64_t thinking_budget_tokens; /* ENABLED: budget_tokens */
    json_t *response_format;  /* OpenAI response_format (owned reference) or NULL */
    char media_path[160];     /* path of the first image/document block; "" if none */
    pv_api_block_type media_type; /* IMAGE or DOCUMENT: the type of that block */
} pv_request;

void pv_request_free(pv_request *r);

/* True if the request holds an image or document block anywhere (tool results included). */
bool pv_api_request_has_media(const pv_request *r);
/* For a text-only model: PV_OK when there is no media, else a 400 naming the first media
 * block, e.g. "messages.0.content.1: image blocks are not supported: this model takes no
 * images or documents (text-only)". */
pv_status pv_api_request_check_text_only(const pv_request *r, pv_api_error *err);

/* Parses an Anthropic Messages body. count_tokens_route: the body of
 * /v1/messages/count_tokens (max_tokens not required, ignored if present). Borrows body;
 * on success *out is a new request (free with pv_request_free); on failure *out is NULL and
 * *err holds a 400 invalid_request_error whose message names the field. */
pv_status pv_api_anthropic_parse(const json_t *body, bool count_tokens_route, pv_request **out,
                                 pv_api_error *err);

/* Parses an OpenAI chat-completions body (same ownership as above). Paths in messages use
 * OpenAI's style "messages[2].content"; err->param holds the path for the "param" field. */
pv_status pv_api_openai_parse(const json_t *body, pv_request **out, pv_api_error *err);

/* ---- wiring helpers for the route ---- */

/* Sampler settings for a request, with the APIs' defaults where a field is absent:
 * temperature 1.0, top_k off, top_p off (1.0), min_p off, repetition penalty off, OpenAI
 * presence/frequency penalties as given (else 0), penalty window 64, seed as given or
 * default_seed (draw one per request with pv_api_new_seed()). */
pv_sampler_params pv_api_sampler_params(const pv_request *r, uint64_t default_seed);
uint64_t pv_api_new_seed(void);

/* How many tokens a request may generate in a context of n_ctx positions after an
 * n_prompt-token prompt. A prompt that leaves no room for one token is a 400 "prompt is too
 * long: N tokens > M maximum" (M = n_ctx - 1, as pv_sched_submit says).
 * *max_new = min(max_tokens, n_ctx - n_prompt) (no max_tokens: all that fits); *clamped
 * says whether the context, not max_tokens, set the limit: when generation then stops at
 * *max_new tokens, the stop reason is model_context_window_exceeded, not max_tokens. */
pv_status pv_api_plan_tokens(const pv_request *r, int64_t n_prompt, int64_t n_ctx,
                             int64_t *max_new, bool *clamped, pv_api_error *err);

/* ---- the model's chat format (chat.c; docs/chat.md) ---- */
/* Immutable after init, shared by every request thread: the parsed chat template (the
 * model's own, or the ChatML fallback when it has none), the BOS/EOS texts the template gets,
 * and the tool-call syntax the output is parsed with. */
typedef struct pv_api_chat pv_api_chat;

/* template_src: the model's `tokenizer.chat_template` (borrowed; NULL or "" → the ChatML
 * fallback). A template that does not parse fails here, with line and column. */
pv_status pv_api_chat_init(const char *template_src, const struct pv_tokenizer *tok,
                           pv_api_chat **out, pv_error *err);
/* The same for a model file: its tokenizer.chat_template (none: the fallback); errors are
 * prefixed "the model's chat template: ". */
pv_status pv_api_chat_init_model(const struct pv_weights *w, const struct pv_tokenizer *tok,
                                 pv_api_chat **out, pv_error *err);
void pv_api_chat_free(pv_api_chat *c);
bool pv_api_chat_is_fallback(const pv_api_chat *c);
const char *pv_api_chat_template_source(const pv_api_chat *c); /* the text in use */
const char *pv_api_chat_fallback_template(void);
pv_toolcall_format pv_api_chat_toolcall_format(const pv_api_chat *c);

/* The template context for a request (new reference; NULL when out of memory): messages
 * (system folded into one leading message, tool_use → assistant tool_calls, tool_result →
 * "tool" messages), tools in the OpenAI function format, add_generation_prompt, bos_token,
 * eos_token, enable_thinking. The mapping is documented in docs/chat.md. */
json_t *pv_api_chat_context(const pv_api_chat *c, const pv_request *r);

/* Renders the prompt text (*text malloc'ed, caller frees). A prefill (final assistant turn)
 * is left open, as HF's continue_final_message. A template's raise_exception becomes a 400
 * with its message; other template failures a 500 api_error. */
pv_status pv_api_chat_render(const pv_api_chat *c, const pv_request *r, char **text, size_t *len,
                             pv_api_error *e);

/* Renders and encodes (special tokens parsed, exactly one BOS when the model wants one).
 * This is what generation feeds the model; *ids is malloc'ed (caller frees). */
pv_status pv_api_prompt_tokens(const pv_request *r, const pv_api_chat *c,
                               const struct pv_tokenizer *tok, int32_t **ids, size_t *n_ids,
                               pv_api_error *e);
/* The number of tokens pv_api_prompt_tokens gives (count_tokens). */
pv_status pv_api_count_tokens(const pv_request *r, const pv_api_chat *c,
                              const struct pv_tokenizer *tok, int *n, pv_api_error *e);

/* ---- constrained decoding (constrain.c) ---- */
/* True when the request demands a tool call (tool_choice any/tool, OpenAI required/named)
 * and has tools with schemas to call. */
bool pv_api_forces_tool(const pv_request *r);
/* The grammar a request must be decoded with, as GBNF text with a "root" rule (*gbnf
 * malloc'ed; NULL when the request needs none): exactly one call of a demanded tool in the
 * chat format's tool-call syntax, arguments following the tool's input_schema; or the JSON
 * value of an OpenAI response_format (json_schema / json_object). A schema that cannot be
 * enforced, or a forced tool that is not in tools, is a 400. */
pv_status pv_api_constraint_gbnf(const pv_api_chat *c, const pv_request *r, char **gbnf,
                                 pv_api_error *e);

/* ---- responses ---- */
typedef struct pv_api_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_creation_input_tokens;
    int64_t cache_read_input_tokens;
} pv_api_usage;

/* A generated content block (everything borrowed). */
typedef struct pv_api_out_block {
    pv_api_block_type type; /* TEXT, TOOL_USE or THINKING */
    const char *text;       /* TEXT / THINKING */
    const char *signature;  /* THINKING */
    const char *id;         /* TOOL_USE */
    const char *name;       /* TOOL_USE */
    const json_t *input;    /* TOOL_USE (NULL: {}) */
} pv_api_out_block;

typedef struct pv_api_response {
    const char *id;    /* "msg_..." / "chatcmpl-..." */
    const char *model; /* the requested name */
    const pv_api_out_block *blocks;
    size_t n_blocks;
    pv_api_stop_reason stop_reason;
    const char *stop_sequence; /* STOP_SEQUENCE: the matched string, else NULL */
    pv_api_usage usage;
    int64_t created; /* OpenAI: unix seconds */
} pv_api_response;

/* Writes prefix + 24 random base62 characters into buf (cap >= strlen(prefix) + 25). */
void pv_api_new_id(const char *prefix, char *buf, size_t cap);

/* All builders return a malloc'ed NUL-terminated string (caller frees) or NULL when out of
 * memory. SSE builders return a whole frame "event: NAME\ndata: JSON\n\n". Generated text
 * that is not valid UTF-8 is sent with each invalid byte replaced by U+FFFD. */
char *pv_api_anthropic_message_json(const pv_api_response *r);
char *pv_api_anthropic_count_tokens_json(int64_t input_tokens);
char *pv_api_anthropic_sse_message_start(const char *id, const char *model,
                                         const pv_api_usage *usage);
/* content_block_start with an empty block of b's type (text "", tool_use input {},
 * thinking "" + signature ""); b's id/name are used for tool_use. */
char *pv_api_anthropic_sse_block_start(int index, const pv_api_out_block *b);

#define PV_API_DELTA_MAP(X)                         \
    X(TEXT, "text_delta", "text")                   \
    X(INPUT_JSON, "input_json_delta", "partial_json") \
    X(THINKING, "thinking_delta", "thinking")       \
    X(SIGNATURE, "signature_delta", "signature")

typedef enum {
#define PV_API_DELTA_ENUM_(n, t, f) PV_API_DELTA_##n,
    PV_API_DELTA_MAP(PV_API_DELTA_ENUM_)
#undef PV_API_DELTA_ENUM_
} pv_api_delta_type;

/* content_block_delta carrying `len` bytes of s (need not be NUL-terminated). */
char *pv_api_anthropic_sse_block_delta(int index, pv_api_delta_type t, const char *s,
                                       size_t len);
char *pv_api_anthropic_sse_block_stop(int index);
/* message_delta with stop_reason / stop_sequence (NULL -> null) and cumulative usage. */
char *pv_api_anthropic_sse_message_delta(pv_api_stop_reason reason, const char *stop_sequence,
                                         const pv_api_usage *usage);
char *pv_api_anthropic_sse_message_stop(void);
char *pv_api_anthropic_sse_ping(void);
char *pv_api_anthropic_sse_error(const pv_api_error *e);

/* Error bodies: Anthropic {"type":"error","error":{type,message},"request_id"} (request_id
 * omitted when NULL); OpenAI {"error":{message,type,param,code}}. */
char *pv_api_error_json(pv_api_family f, const pv_api_error *e, const char *request_id);

/* OpenAI chat.completion (text blocks joined into message.content, tool_use blocks as
 * tool_calls with arguments as a JSON string, thinking omitted). */
char *pv_api_openai_completion_json(const pv_api_response *r);

typedef struct pv_api_openai_chunk {
    const char *id, *model;
    int64_t created;
    bool role;               /* delta.role = "assistant" (first chunk) */
    const char *content;     /* delta.content (len bytes) or NULL */
    size_t content_len;
    const pv_api_out_block *tool_call; /* delta.tool_calls[0] (TOOL_USE) or NULL */
    int tool_call_index;
    bool finished;           /* finish_reason = map(finish) else null */
    pv_api_stop_reason finish;
    bool usage_chunk;        /* the include_usage chunk: choices [] and usage */
    const pv_api_usage *usage;
    bool usage_null;         /* include "usage": null (include_usage streams, other chunks) */
} pv_api_openai_chunk;

/* "data: {chat.completion.chunk}\n\n" */
char *pv_api_openai_sse_chunk(const pv_api_openai_chunk *c);
/* "data: [DONE]\n\n" (static string, do not free) */
const char *pv_api_openai_sse_done(void);

/* ---- stream assembler ----
 * Keeps the per-request streaming state so that the event order is right by construction:
 * Anthropic — message_start then ping first and once, one text block at index 0 started
 * on the first text and stopped at the end, message_delta with the final usage, then
 * message_stop (an error instead ends the stream with `event: error`); OpenAI — a first
 * chunk with the role, content chunks, a finish chunk, the usage chunk when include_usage,
 * then `data: [DONE]`. Every call returns the bytes to send (malloc'ed, possibly "" when
 * there is nothing to send, NULL only when out of memory); calls after the end return "". */
typedef struct pv_api_stream pv_api_stream;

/* Copies id and model. include_usage: OpenAI stream_options.include_usage. */
pv_api_stream *pv_api_stream_new(pv_api_family f, const char *id, const char *model,
                                 int64_t created, bool include_usage);
void pv_api_stream_free(pv_api_stream *s);
/* message_start (usage: input tokens known so far, output_tokens as the caller wants) and a
 * first ping / the OpenAI role chunk. */
char *pv_api_stream_begin(pv_api_stream *s, const pv_api_usage *usage);
/* len bytes of generated text (UTF-8 boundaries are the caller's job; stray bytes become
 * U+FFFD). Opens the text block on first use. len 0 sends nothing. */
char *pv_api_stream_text(pv_api_stream *s, const char *text, size_t len);
/* One complete tool call (TOOL_USE block, borrowed): Anthropic closes an open text block,
 * then content_block_start (tool_use, input {}), one input_json_delta with the whole input
 * JSON, content_block_stop; OpenAI a chunk with delta.tool_calls[{index, id, function}]. */
char *pv_api_stream_tool_use(pv_api_stream *s, const pv_api_out_block *b);
/* Keep-alive while the prompt is processed: `event: ping` / an SSE comment ": ping". */
char *pv_api_stream_ping(pv_api_stream *s);
/* The end: closes the open block, stop reason (stop_sequence only with STOP_SEQUENCE), final
 * cumulative usage. */
char *pv_api_stream_end(pv_api_stream *s, pv_api_stop_reason reason, const char *stop_sequence,
                        const pv_api_usage *usage);
/* An error after the 200 header: Anthropic `event: error`; OpenAI `data: {"error":{...}}`.
 * Ends the stream (no message_stop / [DONE]). */
char *pv_api_stream_error(pv_api_stream *s, const pv_api_error *e);
/* True once end or error was sent. */
bool pv_api_stream_done(const pv_api_stream *s);

#endif /* PV_API_H */
