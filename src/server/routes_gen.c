/* routes_gen.c — see routes_gen.h. One code path serves both APIs: parse (API-specific) →
 * prompt tokens → sampling parameters → submit a job → either wait for the whole text
 * (JSON) or stream it (SSE) through a small state machine driven by the server's
 * streaming callback. The callback blocks on the job with a timeout so that keep-alive
 * pings go out while a long prompt is being processed; a client that goes away makes the
 * server call stream_free, which cancels the job (the engine frees its sequence at the next
 * step). */
#include "routes_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/pv_api.h"
#include "pv_metrics.h"

/* ---- shared request preparation ---- */

typedef struct gen_prep {
    pv_request *r;
    int32_t *ids;
    size_t n_ids;
    char *gbnf;        /* constrained decoding grammar, or NULL */
    pv_toolcall_format tc_format; /* how tool calls are read back (NONE: no tools) */
    int max_new;       /* after clamping to the context */
    bool clamped;      /* max_tokens was cut to fit the context */
} gen_prep;

static void prep_free(gen_prep *g) {
    pv_request_free(g->r);
    free(g->ids);
    free(g->gbnf);
    memset(g, 0, sizeof *g);
}

/* Makes `body` (malloc'ed JSON, taken; NULL = out of memory) the response. */
static void set_json_body(const pv_http_request *req, pv_http_response *resp, int status,
                          char *body) {
    if (!body) {
        pv_http_error(req, resp, 500, "out of memory");
        return;
    }
    resp->status = status;
    resp->content_type = "application/json";
    free(resp->body);
    resp->body = body;
    resp->body_len = strlen(body);
    if (status >= 400) pv_http_response_retry_headers(resp, status);
}

static void api_error_response(const pv_http_request *req, pv_http_response *resp,
                               pv_api_family fam, const pv_api_error *e) {
    set_json_body(req, resp, pv_api_error_http_status(fam, e->kind),
                  pv_api_error_json(fam, e, req->request_id));
}

/* Parses and checks the body, tokenizes the prompt and clamps max_tokens. Returns false
 * after filling resp with the error. */
static bool prepare(const pv_http_request *req, pv_http_response *resp, pv_api_family fam,
                    bool count_only, gen_prep *g) {
    const pv_gen_app *app = req->app;
    memset(g, 0, sizeof *g);
    json_t *body = pv_http_request_json(req, resp);
    if (!body) return false;
    pv_api_error e;
    memset(&e, 0, sizeof e);
    pv_status st = fam == PV_API_OPENAI ? pv_api_openai_parse(body, &g->r, &e)
                                        : pv_api_anthropic_parse(body, count_only, &g->r, &e);
    json_decref(body);
    if (st == PV_OK) st = pv_api_request_check_text_only(g->r, &e);
    if (g->r) pv_req_stats_set_model(req->stats, g->r->model); /* for the request's log line */
    if (st != PV_OK) {
        api_error_response(req, resp, fam, &e);
        prep_free(g);
        return false;
    }
    if (pv_api_prompt_tokens(g->r, app->chat, app->tok, &g->ids, &g->n_ids, &e) != PV_OK ||
        (!count_only && pv_api_constraint_gbnf(app->chat, g->r, &g->gbnf, &e) != PV_OK)) {
        api_error_response(req, resp, fam, &e);
        prep_free(g);
        return false;
    }
    if (count_only) return true;
    g->tc_format = g->r->n_tools && g->r->tool_choice != PV_API_TOOL_CHOICE_NONE
                       ? pv_api_chat_toolcall_format(app->chat)
                       : PV_TOOLCALL_NONE;
    int64_t max_new = 0;
    if (pv_api_plan_tokens(g->r, (int64_t)g->n_ids, pv_sched_n_ctx(app->sched), &max_new, &g->clamped,
                           &e) != PV_OK) {
        api_error_response(req, resp, fam, &e);
        prep_free(g);
        return false;
    }
    g->max_new = (int)max_new;
    return true;
}

/* Submits the job; on failure fills resp (529/503 overloaded, 400 too long). */
static pv_job *submit(const pv_http_request *req, pv_http_response *resp, pv_api_family fam,
                      gen_prep *g) {
    const pv_gen_app *app = req->app;
    pv_gen_params gp = {.prompt = g->ids, .n_prompt = (int)g->n_ids, .max_tokens = g->max_new,
                        .sampling = pv_api_sampler_params(g->r, app->has_seed ? app->seed : pv_api_new_seed()), .stops = (const char *const *)g->r->stop,
                        .n_stops = g->r->n_stop, .grammar = g->gbnf, .grammar_vocab = app->gvocab};
    pv_job *job = NULL;
    pv_error err = {0};
    pv_status st = pv_sched_submit(app->sched, &gp, &job, &err);
    if (st != PV_OK) {
        pv_api_error e;
        memset(&e, 0, sizeof e);
        pv_api_error_set(&e, st == PV_ERR_OVERLOADED ? PV_API_ERR_OVERLOADED : PV_API_ERR_INVALID_REQUEST, "",
                         "%s", err.msg);
        api_error_response(req, resp, fam, &e);
        return NULL;
    }
    return job;
}

static pv_api_stop_reason stop_reason_of(pv_finish f, bool clamped) {
    switch (f) {
    case PV_FINISH_EOG: return PV_API_STOP_END_TURN;
    case PV_FINISH_STOP: return PV_API_STOP_STOP_SEQUENCE;
    case PV_FINISH_CONTEXT: return PV_API_STOP_MODEL_CONTEXT_WINDOW_EXCEEDED;
    case PV_FINISH_LENGTH:
        return clamped ? PV_API_STOP_MODEL_CONTEXT_WINDOW_EXCEEDED : PV_API_STOP_MAX_TOKENS;
    default: return PV_API_STOP_END_TURN;
    }
}

/* Length of the longest prefix of s[0..n) that ends on a UTF-8 character boundary. */
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n, back = 0;
    while (i > 0 && back < 4) {
        unsigned char c = (unsigned char)s[i - 1];
        if ((c & 0xC0) != 0x80) { /* lead or ASCII byte at i-1 */
            size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
            return (back + 1 >= need) ? n : i - 1;
        }
        i--;
        back++;
    }
    return n;
}

/* ---- non-streaming ---- */

typedef struct text_buf {
    char *p;
    size_t len, cap;
} text_buf;

static bool tb_append(text_buf *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + n + 1) cap *= 2;
        char *q = realloc(t->p, cap);
        if (!q) return false;
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return true;
}

/* ---- tool calls read back from the text ---- */

/* A parser for the request's tool-call syntax, checking names against its tools; NULL when
 * the request offers no tools (then every byte is text) or out of memory (logged). */
static pv_toolcall_parser *tc_parser_new(const gen_prep *g) {
    if (g->tc_format == PV_TOOLCALL_NONE) return NULL;
    json_t *names = json_array();
    for (size_t i = 0; names && i < g->r->n_tools; i++)
        if (g->r->tools[i].input_schema) json_array_append_new(names, json_string(g->r->tools[i].name));
    pv_toolcall_parser *p = NULL;
    pv_error err = {0};
    if (!names || pv_toolcall_parser_init(&p, g->tc_format, names, pv_api_new_seed(), &err) != PV_OK)
        PV_LOG_E("server", "tool-call parser: %s", names ? err.msg : "out of memory");
    json_decref(names);
    return p;
}

/* Tool ids are "toolu_…" (Anthropic); OpenAI clients expect "call_…". Writes the id for
 * family fam into out. */
static void tc_id_for(pv_api_family fam, const char *id, char *out, size_t cap) {
    static const char pre[] = "toolu_";
    if (fam == PV_API_OPENAI && !strncmp(id, pre, sizeof pre - 1))
        snprintf(out, cap, "call_%s", id + sizeof pre - 1);
    else
        snprintf(out, cap, "%s", id);
}

/* The content blocks of a whole response: text runs and tool calls in order. */
typedef struct block_list {
    pv_api_family fam;
    pv_api_out_block *b;
    size_t n, cap;
    text_buf cur; /* text not yet closed into a block */
    bool failed;
} block_list;

static pv_api_out_block *bl_push(block_list *l) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        pv_api_out_block *nb = realloc(l->b, cap * sizeof *nb);
        if (!nb) {
            l->failed = true;
            return NULL;
        }
        l->b = nb;
        l->cap = cap;
    }
    memset(&l->b[l->n], 0, sizeof l->b[l->n]);
    return &l->b[l->n++];
}

static void bl_close_text(block_list *l) {
    if (!l->cur.len) return;
    pv_api_out_block *b = bl_push(l);
    if (!b) return;
    b->type = PV_API_BLOCK_TEXT;
    b->text = l->cur.p; /* the block takes the buffer */
    l->cur = (text_buf){0};
}

static void bl_on_event(void *ud, const pv_toolcall_event *ev) {
    block_list *l = ud;
    if (ev->kind == PV_TOOLCALL_EV_TEXT) {
        if (!tb_append(&l->cur, ev->text, ev->len)) l->failed = true;
        return;
    }
    bl_close_text(l);
    pv_api_out_block *b = bl_push(l);
    if (!b) return;
    char id[64];
    tc_id_for(l->fam, ev->id, id, sizeof id);
    b->type = PV_API_BLOCK_TOOL_USE;
    b->id = strdup(id);
    b->name = strdup(ev->name);
    b->input = json_incref(ev->input);
    if (!b->id || !b->name) l->failed = true;
}

static void bl_free(block_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->b[i].text);
        free((char *)l->b[i].id);
        free((char *)l->b[i].name);
        json_decref((json_t *)l->b[i].input);
    }
    free(l->b);
    free(l->cur.p);
}

/* A finished run's stop reason: tool_use once the model called a tool and stopped by itself. */
static pv_api_stop_reason final_reason(pv_finish f, bool clamped, size_t n_calls) {
    if (n_calls && (f == PV_FINISH_EOG || f == PV_FINISH_STOP)) return PV_API_STOP_TOOL_USE;
    return stop_reason_of(f, clamped);
}

static void respond_whole(const pv_http_request *req, pv_http_response *resp, pv_api_family fam,
                          gen_prep *g, pv_job *job) {
    text_buf tb = {0};
    tb_append(&tb, "", 0);
    char buf[4096];
    bool done = false;
    while (!done) {
        size_t len = 0;
        pv_job_wait(job, 1.0, buf, sizeof buf, &len, &done);
        if (len && !tb_append(&tb, buf, len)) break;
    }
    int stop_index = -1, n_prompt = 0, n_gen = 0;
    pv_finish f = pv_job_finish(job, &stop_index, &n_prompt, &n_gen);
    double t_first = 0, t_end = 0;
    pv_job_times(job, &t_first, &t_end);
    /* no prefix reuse in the scheduler yet: no prompt token comes from the cache */
    pv_req_stats_set_generation(req->stats, n_prompt, n_gen, 0, t_first, t_end);
    if (f == PV_FINISH_ERROR || f == PV_FINISH_CANCELLED || !tb.p) {
        pv_api_error e;
        memset(&e, 0, sizeof e);
        pv_api_error_set(&e, PV_API_ERR_API, "", "generation failed: %s", pv_job_error(job));
        api_error_response(req, resp, fam, &e);
        free(tb.p);
        return;
    }
    char id[64];
    pv_api_new_id(fam == PV_API_OPENAI ? "chatcmpl-" : "msg_", id, sizeof id);
    /* split the text into text and tool_use blocks (no tools: one text block) */
    block_list bl = {.fam = fam};
    size_t n_calls = 0;
    pv_toolcall_parser *tp = tc_parser_new(g);
    if (tp) {
        pv_toolcall_parser_feed(tp, tb.p, tb.len, bl_on_event, &bl);
        pv_toolcall_parser_finish(tp, bl_on_event, &bl);
        n_calls = pv_toolcall_parser_calls(tp);
        pv_toolcall_parser_free(tp);
    } else if (tb.len && !tb_append(&bl.cur, tb.p, tb.len)) {
        bl.failed = true;
    }
    free(tb.p);
    bl_close_text(&bl);
    if (bl.n == 0 && fam == PV_API_OPENAI) { /* OpenAI: content "" rather than no message */
        pv_api_out_block *b = bl_push(&bl);
        if (b) {
            b->type = PV_API_BLOCK_TEXT;
            b->text = strdup("");
        }
    }
    if (bl.failed) {
        bl_free(&bl);
        pv_http_error(req, resp, 500, "out of memory");
        return;
    }
    pv_api_response r = {.id = id, .model = g->r->model, .blocks = bl.b, .n_blocks = bl.n,
                         .stop_reason = final_reason(f, g->clamped, n_calls),
                         .stop_sequence = f == PV_FINISH_STOP && stop_index >= 0 && !n_calls
                                              ? g->r->stop[stop_index] : NULL,
                         .usage = {.input_tokens = n_prompt, .output_tokens = n_gen},
                         .created = (int64_t)time(NULL)};
    char *body = fam == PV_API_OPENAI ? pv_api_openai_completion_json(&r) : pv_api_anthropic_message_json(&r);
    bl_free(&bl);
    set_json_body(req, resp, 200, body);
}

/* ---- streaming ---- */

typedef struct gen_stream {
    const pv_gen_app *app;
    gen_prep g;
    pv_job *job;
    pv_api_stream *as; /* event order and framing (src/api) */
    bool begun;
    /* bytes ready to send */
    char *out;
    size_t out_len, out_off;
    /* text taken from the job but not yet sent (an incomplete UTF-8 tail) */
    char carry[8];
    size_t n_carry;
    int client_fd;      /* to notice a client that hung up while nothing is being sent */
    double last_sent;   /* time of the last bytes handed to the server */
    pv_toolcall_parser *tp; /* reads tool calls out of the text; NULL without tools */
    text_buf frames;        /* SSE frames produced by the parser's events */
    bool frames_failed;
    pv_req_stats *stats;    /* a reference of the request's record, for its log line */
    bool recorded;          /* the generation's outcome is in stats */
} gen_stream;

/* Puts the generation's token counts and times into the request's record (once). */
static void gs_record(gen_stream *s) {
    if (s->recorded || !s->stats) return;
    s->recorded = true;
    int n_prompt = 0, n_gen = 0;
    double t_first = 0, t_end = 0;
    pv_job_finish(s->job, NULL, &n_prompt, &n_gen);
    pv_job_times(s->job, &t_first, &t_end);
    pv_req_stats_set_generation(s->stats, n_prompt, n_gen, 0, t_first, t_end > 0 ? t_end : pv_time_now());
}

static void gs_free(void *cls) {
    gen_stream *s = cls;
    if (!s) return;
    if (s->stats) {
        /* freed before the last event was produced: the client went away (or the server
         * is stopping); the record gets what was generated until now */
        if (!s->begun || !pv_api_stream_done(s->as)) pv_req_stats_set_client_gone(s->stats);
        gs_record(s);
        pv_req_stats_unref(s->stats);
    }
    pv_job_release(s->job); /* cancels the job if the client left early */
    pv_api_stream_free(s->as);
    pv_toolcall_parser_free(s->tp);
    free(s->frames.p);
    prep_free(&s->g);
    free(s->out);
    free(s);
}

/* Parser event → SSE frames (text deltas, or a whole tool_use block / tool_calls chunk). */
static void gs_on_event(void *ud, const pv_toolcall_event *ev) {
    gen_stream *s = ud;
    char *frame;
    if (ev->kind == PV_TOOLCALL_EV_TEXT) {
        frame = pv_api_stream_text(s->as, ev->text, ev->len);
    } else {
        char id[64];
        tc_id_for(s->g.r->family, ev->id, id, sizeof id);
        pv_api_out_block b = {.type = PV_API_BLOCK_TOOL_USE, .id = id, .name = ev->name,
                              .input = ev->input};
        frame = pv_api_stream_tool_use(s->as, &b);
    }
    if (!frame || !tb_append(&s->frames, frame, strlen(frame))) s->frames_failed = true;
    free(frame);
}

/* Generated text → SSE frames (malloc'ed; "" when the parser holds everything back; NULL
 * when out of memory). Without tools the text goes straight out as deltas; with tools it
 * goes through the parser, which releases text as soon as it cannot be a call. final:
 * the end of the output (the parser flushes what it held). */
static char *gs_text(gen_stream *s, const char *text, size_t len, bool final) {
    if (!s->tp) return pv_api_stream_text(s->as, text, len);
    s->frames.len = 0;
    if (s->frames.p) s->frames.p[0] = '\0';
    if (len) pv_toolcall_parser_feed(s->tp, text, len, gs_on_event, s);
    if (final) pv_toolcall_parser_finish(s->tp, gs_on_event, s);
    if (s->frames_failed) return NULL;
    return strdup(s->frames.p ? s->frames.p : "");
}

/* Replaces the (fully sent) output with a new malloc'ed frame; false when out of memory. */
static bool gs_set(gen_stream *s, char *frame) {
    if (!frame) return false;
    free(s->out);
    s->out = frame;
    s->out_len = strlen(frame);
    s->out_off = 0;
    return true;
}

/* Produces the next bytes to send, blocking on the job up to the ping interval. */
static bool gs_advance(gen_stream *s) {
    pv_api_usage usage = {.input_tokens = (int64_t)s->g.n_ids, .output_tokens = 1};
    if (!s->begun) {
        s->begun = true;
        return gs_set(s, pv_api_stream_begin(s->as, &usage));
    }
    char buf[4096];
    size_t len = 0;
    bool done = false;
    memcpy(buf, s->carry, s->n_carry);
    /* wait in short slices: a client that hung up is noticed within a quarter second (its
     * job is then cancelled by gs_free), a ping goes out once the interval passed */
    const double interval = s->app->ping_interval_s > 0 ? s->app->ping_interval_s : 5.0;
    for (;;) {
        pv_job_wait(s->job, 0.25, buf + s->n_carry, sizeof buf - s->n_carry, &len, &done);
        if (len || done) break;
        if (pv_http_client_gone(s->client_fd)) return false;
        if (pv_time_now() - s->last_sent >= interval) break;
    }
    len += s->n_carry;
    size_t ok = done ? len : utf8_complete(buf, len);
    s->n_carry = len - ok;
    memcpy(s->carry, buf + ok, s->n_carry);
    if (!done) {
        char *frames = ok ? gs_text(s, buf, ok, false) : pv_api_stream_ping(s->as);
        /* a ping also goes out while the parser holds a tool call back for long */
        if (frames && !*frames && pv_time_now() - s->last_sent >= interval) {
            free(frames);
            frames = pv_api_stream_ping(s->as);
        }
        if (frames && *frames) s->last_sent = pv_time_now();
        return gs_set(s, frames);
    }
    s->last_sent = pv_time_now();
    /* the end: the last text, then the closing events */
    char *text = gs_text(s, buf, ok, true);
    int stop_index = -1, n_prompt = 0, n_gen = 0;
    pv_finish f = pv_job_finish(s->job, &stop_index, &n_prompt, &n_gen);
    gs_record(s);
    usage.output_tokens = n_gen;
    char *tail;
    if (f == PV_FINISH_ERROR || f == PV_FINISH_CANCELLED) {
        pv_api_error e;
        memset(&e, 0, sizeof e);
        pv_api_error_set(&e, PV_API_ERR_API, "", "generation failed: %s", pv_job_error(s->job));
        tail = pv_api_stream_error(s->as, &e);
    } else {
        const char *seq = f == PV_FINISH_STOP && stop_index >= 0 ? s->g.r->stop[stop_index] : NULL;
        size_t n_calls = s->tp ? pv_toolcall_parser_calls(s->tp) : 0;
        tail = pv_api_stream_end(s->as, final_reason(f, s->g.clamped, n_calls), n_calls ? NULL : seq,
                                 &usage);
    }
    if (!text || !tail) {
        free(text);
        free(tail);
        return false;
    }
    size_t a = strlen(text), b = strlen(tail);
    char *both = malloc(a + b + 1);
    if (both) {
        memcpy(both, text, a);
        memcpy(both + a, tail, b + 1);
    }
    free(text);
    free(tail);
    return gs_set(s, both);
}

static ssize_t gs_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    gen_stream *s = cls;
    while (s->out_off == s->out_len) {
        if (s->begun && pv_api_stream_done(s->as)) return PV_HTTP_STREAM_END;
        if (!gs_advance(s)) return PV_HTTP_STREAM_ERROR;
    }
    size_t n = PV_MIN(max, s->out_len - s->out_off);
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    return (ssize_t)n;
}

/* ---- handlers ---- */

static void generate(const pv_http_request *req, pv_http_response *resp, pv_api_family fam) {
    gen_prep g;
    if (!prepare(req, resp, fam, false, &g)) return;
    pv_job *job = submit(req, resp, fam, &g);
    if (!job) {
        prep_free(&g);
        return;
    }
    if (!g.r->stream) {
        respond_whole(req, resp, fam, &g, job);
        pv_job_release(job);
        prep_free(&g);
        return;
    }
    gen_stream *s = calloc(1, sizeof *s);
    if (!s) {
        pv_job_release(job);
        prep_free(&g);
        pv_http_error(req, resp, 500, "out of memory");
        return;
    }
    char id[64];
    pv_api_new_id(fam == PV_API_OPENAI ? "chatcmpl-" : "msg_", id, sizeof id);
    s->app = req->app;
    s->g = g;
    s->job = job;
    s->client_fd = req->client_fd;
    s->last_sent = pv_time_now();
    s->as = pv_api_stream_new(fam, id, g.r->model, (int64_t)time(NULL), g.r->stream_include_usage);
    s->tp = tc_parser_new(&s->g);
    if (!s->as || (s->g.tc_format != PV_TOOLCALL_NONE && !s->tp)) {
        gs_free(s);
        pv_http_error(req, resp, 500, "out of memory");
        return;
    }
    s->stats = pv_req_stats_ref(req->stats);
    resp->status = 200;
    resp->content_type = "text/event-stream";
    resp->stream = gs_read;
    resp->stream_cls = s;
    resp->stream_free = gs_free;
}

void pv_route_messages(const pv_http_request *req, pv_http_response *resp) {
    generate(req, resp, PV_API_ANTHROPIC);
}

void pv_route_chat_completions(const pv_http_request *req, pv_http_response *resp) {
    generate(req, resp, PV_API_OPENAI);
}

void pv_route_count_tokens(const pv_http_request *req, pv_http_response *resp) {
    gen_prep g;
    if (!prepare(req, resp, PV_API_ANTHROPIC, true, &g)) return;
    char *body = pv_api_anthropic_count_tokens_json((int64_t)g.n_ids);
    prep_free(&g);
    set_json_body(req, resp, 200, body);
}

/* ---- the app ---- */

pv_status pv_gen_app_init(pv_gen_app *app, pv_model *model, pv_tokenizer *tok, pv_sched *sched,
                          pv_error *err) {
    memset(app, 0, sizeof *app);
    app->model = model;
    app->tok = tok;
    app->sched = sched;
    app->ping_interval_s = 5.0;
    pv_status st = pv_api_chat_init_model(model->file, tok, &app->chat, err);
    if (st != PV_OK) return st;
    st = pv_grammar_vocab_init(tok, &app->gvocab, err);
    if (st != PV_OK) pv_gen_app_free(app);
    return st;
}

void pv_gen_app_free(pv_gen_app *app) {
    pv_api_chat_free(app->chat);
    pv_grammar_vocab_free(app->gvocab);
    app->chat = NULL;
    app->gvocab = NULL;
}
