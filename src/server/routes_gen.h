/* routes_gen.h — the generation routes of `pensieve start`: POST /v1/messages (JSON and
 * SSE), POST /v1/messages/count_tokens and POST /v1/chat/completions (JSON and SSE). They
 * join the API format layer (src/api: parsing, prompt rendering, response builders) to the
 * scheduler (src/sched: one engine thread, continuous batching); neither of those knows
 * about the other or about HTTP. */
#ifndef PV_ROUTES_GEN_H
#define PV_ROUTES_GEN_H

#include "model/pv_model.h"
#include "pv_server.h"
#include "sched/pv_sched.h"
#include "tokenizer/pv_tokenizer.h"

/* What the generation handlers need; handed to the server as options.app. Borrowed. */
typedef struct pv_gen_app {
    pv_model *model;
    pv_tokenizer *tok;
    pv_sched *sched;
    double ping_interval_s; /* SSE keep-alive while nothing else is sent (default 5 s) */
} pv_gen_app;

void pv_route_messages(const pv_http_request *req, pv_http_response *resp);
void pv_route_count_tokens(const pv_http_request *req, pv_http_response *resp);
void pv_route_chat_completions(const pv_http_request *req, pv_http_response *resp);

#endif /* PV_ROUTES_GEN_H */
