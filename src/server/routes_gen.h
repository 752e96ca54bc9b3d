/* routes_gen.h — the generation routes of `pensieve start`: POST /v1/messages (JSON and
 * SSE), POST /v1/messages/count_tokens and POST /v1/chat/completions (JSON and SSE). They
 * join the API format layer (src/api: parsing, prompt rendering, response builders) to the
 * scheduler (src/sched: one engine thread, continuous batching); neither of those knows
 * about the other or about HTTP. */
#ifndef PV_ROUTES_GEN_H
#define PV_ROUTES_GEN_H

#include "api/pv_api.h"
#include "grammar/pv_grammar.h"
#include "model/pv_model.h"
#include "pv_server.h"
#include "sched/pv_sched.h"
#include "tokenizer/pv_tokenizer.h"

/* What the generation handlers need; handed to the server as options.app. model, tok and
 * sched are borrowed; chat and gvocab are owned (pv_gen_app_init / pv_gen_app_free). */
typedef struct pv_gen_app {
    pv_model *model;
    pv_tokenizer *tok;
    pv_sched *sched;
    pv_api_chat *chat;          /* the model's chat template (or the ChatML fallback) */
    pv_grammar_vocab *gvocab;   /* the vocabulary as the grammar engine sees it */
    double ping_interval_s; /* SSE keep-alive while nothing else is sent (default 5 s) */
    /* Seed for requests that send none (`--seed`): every such request samples from the same
     * seed, so a run is reproducible (llama-server's -s). Unset: a fresh random seed each. */
    bool has_seed;
    uint64_t seed;
} pv_gen_app;

/* Fills app for model/tok/sched (borrowed): parses the model's chat template (GGUF
 * tokenizer.chat_template; the ChatML fallback without one) and builds the grammar view of
 * the vocabulary. Fails on a template that does not parse. */
pv_status pv_gen_app_init(pv_gen_app *app, pv_model *model, pv_tokenizer *tok, pv_sched *sched,
                          pv_error *err);
void pv_gen_app_free(pv_gen_app *app);

void pv_route_messages(const pv_http_request *req, pv_http_response *resp);
void pv_route_count_tokens(const pv_http_request *req, pv_http_response *resp);
void pv_route_chat_completions(const pv_http_request *req, pv_http_response *resp);

#endif /* PV_ROUTES_GEN_H */
