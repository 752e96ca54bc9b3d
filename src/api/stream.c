/* stream.c — the stream assembler: per-request state (begun, text block open, ended) that
 * turns "begin / text / ping / end / error" calls into the exact SSE byte sequence of either
 * API, built from the single-event builders in response.c, so a route cannot send a delta
 * before its block start, a second message_start, or anything after the end. */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

struct pv_api_stream {
    pv_api_family family;
    char *id, *model;
    int64_t created;
    bool include_usage;
    bool begun, block_open, done;
    int next_index; /* the next Anthropic content block index (dense, from 0) */
    int n_tool_calls; /* OpenAI tool_calls[].index */
};

pv_api_stream *pv_api_stream_new(pv_api_family f, const char *id, const char *model,
                                 int64_t created, bool include_usage) {
    pv_api_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (pv_api_stream){.family = f, .id = strdup(id ? id : ""),
                         .model = strdup(model ? model : ""), .created = created,
                         .include_usage = include_usage};
    if (!s->id || !s->model) {
        pv_api_stream_free(s);
        return NULL;
    }
    return s;
}

void pv_api_stream_free(pv_api_stream *s) {
    if (!s) return;
    free(s->id);
    free(s->model);
    free(s);
}

bool pv_api_stream_done(const pv_api_stream *s) { return s->done; }

/* Concatenates the NULL-terminated list of owned frames; any NULL before `end` (an
 * allocation failure) makes the result NULL. Frees every frame. */
static char *join_(char **frames, size_t n) {
    pv_api_sb sb = {0};
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (!frames[i]) ok = false;
        else pv_api_sb_puts(&sb, frames[i]);
        free(frames[i]);
    }
    if (!ok) {
        pv_api_sb_free(&sb);
        return NULL;
    }
    return pv_api_sb_take(&sb);
}

static pv_api_openai_chunk chunk_base(const pv_api_stream *s) {
    return (pv_api_openai_chunk){.id = s->id, .model = s->model, .created = s->created,
                                 .usage_null = s->include_usage};
}

char *pv_api_stream_begin(pv_api_stream *s, const pv_api_usage *usage) {
    if (s->begun || s->done) return strdup("");
    s->begun = true;
    if (s->family == PV_API_OPENAI) {
        pv_api_openai_chunk c = chunk_base(s);
        c.role = true;
        c.content = "";
        c.content_len = 0;
        return pv_api_openai_sse_chunk(&c);
    }
    char *f[] = {pv_api_anthropic_sse_message_start(s->id, s->model, usage),
                 pv_api_anthropic_sse_ping()};
    return join_(f, PV_ARRAY_LEN(f));
}

/* content_block_stop for an open text block ("" when none is open; NULL when out of memory). */
static char *close_text_block(pv_api_stream *s) {
    if (!s->block_open) return strdup("");
    s->block_open = false;
    return pv_api_anthropic_sse_block_stop(s->next_index++);
}

char *pv_api_stream_text(pv_api_stream *s, const char *text, size_t len) {
    if (s->done || len == 0) return strdup("");
    char *pre = s->begun ? strdup("") : pv_api_stream_begin(s, NULL);
    if (s->family == PV_API_OPENAI) {
        pv_api_openai_chunk c = chunk_base(s);
        c.content = text;
        c.content_len = len;
        char *f[] = {pre, pv_api_openai_sse_chunk(&c)};
        return join_(f, PV_ARRAY_LEN(f));
    }
    char *start = strdup("");
    if (!s->block_open) {
        pv_api_out_block b = {.type = PV_API_BLOCK_TEXT};
        free(start);
        start = pv_api_anthropic_sse_block_start(s->next_index, &b);
        s->block_open = true;
    }
    char *f[] = {pre, start,
                 pv_api_anthropic_sse_block_delta(s->next_index, PV_API_DELTA_TEXT, text, len)};
    return join_(f, PV_ARRAY_LEN(f));
}

char *pv_api_stream_tool_use(pv_api_stream *s, const pv_api_out_block *b) {
    if (s->done) return strdup("");
    char *pre = s->begun ? strdup("") : pv_api_stream_begin(s, NULL);
    if (s->family == PV_API_OPENAI) {
        pv_api_openai_chunk c = chunk_base(s);
        c.tool_call = b;
        c.tool_call_index = s->n_tool_calls++;
        char *f[] = {pre, pv_api_openai_sse_chunk(&c)};
        return join_(f, PV_ARRAY_LEN(f));
    }
    /* a text block before the call is closed first; the call is a block of its own whose
     * single input_json_delta is the whole (complete, valid) input */
    char *stop = close_text_block(s);
    char *json = b->input ? json_dumps(b->input, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    int idx = s->next_index++;
    char *f[] = {pre, stop, pv_api_anthropic_sse_block_start(idx, b),
                 json ? pv_api_anthropic_sse_block_delta(idx, PV_API_DELTA_INPUT_JSON, json,
                                                         strlen(json))
                      : NULL,
                 pv_api_anthropic_sse_block_stop(idx)};
    free(json);
    return join_(f, PV_ARRAY_LEN(f));
}

char *pv_api_stream_ping(pv_api_stream *s) {
    if (s->done) return strdup("");
    if (!s->begun) return pv_api_stream_begin(s, NULL);
    /* OpenAI has no ping event; an SSE comment line keeps the connection alive and the SDKs
     * skip it. */
    return s->family == PV_API_OPENAI ? strdup(": ping\n\n") : pv_api_anthropic_sse_ping();
}

char *pv_api_stream_end(pv_api_stream *s, pv_api_stop_reason reason, const char *stop_sequence,
                        const pv_api_usage *usage) {
    if (s->done) return strdup("");
    char *pre = s->begun ? strdup("") : pv_api_stream_begin(s, usage);
    s->done = true;
    if (s->family == PV_API_OPENAI) {
        pv_api_openai_chunk fin = chunk_base(s);
        fin.finished = true;
        fin.finish = reason;
        pv_api_openai_chunk uc = chunk_base(s);
        uc.usage_chunk = true;
        uc.usage = usage;
        pv_api_usage zero = {0};
        if (!uc.usage) uc.usage = &zero;
        char *f[] = {pre, pv_api_openai_sse_chunk(&fin),
                     s->include_usage ? pv_api_openai_sse_chunk(&uc) : strdup(""),
                     strdup(pv_api_openai_sse_done())};
        return join_(f, PV_ARRAY_LEN(f));
    }
    char *stop = close_text_block(s);
    char *f[] = {pre, stop, pv_api_anthropic_sse_message_delta(reason, stop_sequence, usage),
                 pv_api_anthropic_sse_message_stop()};
    return join_(f, PV_ARRAY_LEN(f));
}

char *pv_api_stream_error(pv_api_stream *s, const pv_api_error *e) {
    if (s->done) return strdup("");
    s->done = true;
    if (s->family == PV_API_OPENAI) {
        char *json = pv_api_error_json(PV_API_OPENAI, e, NULL);
        pv_api_sb sb = {0};
        if (json) {
            pv_api_sb_puts(&sb, "data: ");
            pv_api_sb_puts(&sb, json);
            pv_api_sb_puts(&sb, "\n\n");
        } else {
            sb.failed = true;
        }
        free(json);
        return pv_api_sb_take(&sb);
    }
    return pv_api_anthropic_sse_error(e);
}
