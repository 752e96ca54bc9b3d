/* routes_info.c — the informational endpoints: GET /health (status, model, context size,
 * active/queued requests from the scheduler's callback, tokens served, resident memory,
 * uptime), GET /metrics (Prometheus text) and GET /v1/models, /v1/models/{id}. One model object carries both the Anthropic fields
 * (type, id, display_name, created_at) and the OpenAI ones (object, created, owned_by), so
 * both SDKs' `models.list` read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

void pv_server_handle_health(const pv_http_request *req, pv_http_response *resp) {
    const pv_server *s = req->server;
    int active = 0, queued = 0;
    if (s->load_fn) s->load_fn(s->load_cls, &active, &queued);
    double up = pv_time_now() - s->started_at;
    uint64_t prompt = 0, generated = 0;
    pv_metrics_token_totals(s->metrics, &prompt, &generated);
    json_t *j = json_pack("{s:s, s:s, s:i, s:{s:i, s:i}, s:{s:I, s:I}, s:I, s:I}", "status", "ok",
                          "model", s->model_name, "context_size", s->context_size, "requests",
                          "active", active, "queued", queued, "tokens", "prompt", (json_int_t)prompt,
                          "generated", (json_int_t)generated, "memory_bytes",
                          (json_int_t)pv_metrics_resident_bytes(), "uptime_seconds",
                          (json_int_t)(up > 0 ? up : 0));
    pv_http_response_json(resp, 200, j);
}

/* GET /metrics: the registry in Prometheus text format 0.0.4. */
void pv_server_handle_metrics(const pv_http_request *req, pv_http_response *resp) {
    const pv_server *s = req->server;
    size_t len = 0;
    char *text = s->metrics ? pv_metrics_render(s->metrics, &len) : NULL;
    if (!text) {
        pv_http_error(req, resp, 500, "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    free(resp->body);
    resp->body = text;
    resp->body_len = len;
}

/* A new model object for the loaded model (caller owns it), or NULL when out of memory. */
static json_t *model_object(const pv_server *s) {
    char created_at[32];
    time_t t = (time_t)s->model_created;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(created_at, sizeof created_at, "%Y-%m-%dT%H:%M:%SZ", &tm))
        strcpy(created_at, "1970-01-01T00:00:00Z");
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "type", "model", "id", s->model_name,
                     "display_name", s->model_name, "created_at", created_at, "object", "model",
                     "created", (json_int_t)s->model_created, "owned_by", "pensieve");
}

void pv_server_handle_models_list(const pv_http_request *req, pv_http_response *resp) {
    const pv_server *s = req->server;
    json_t *m = model_object(s);
    json_t *j = m ? json_pack("{s:[o], s:s, s:s, s:s, s:b}", "data", m, "object", "list", "first_id",
                              s->model_name, "last_id", s->model_name, "has_more", 0)
                  : NULL;
    pv_http_response_json(resp, 200, j);
}

void pv_server_handle_models_get(const pv_http_request *req, pv_http_response *resp) {
    const pv_server *s = req->server;
    /* The route is the prefix "/v1/models/", so the id is what follows it (MHD has already
     * percent-decoded the path). */
    const char *id = req->path + strlen("/v1/models/");
    if (strcmp(id, s->model_name) != 0) {
        pv_http_error(req, resp, 404, "model '%s' not found: this server serves '%s'", id,
                      s->model_name);
        return;
    }
    pv_http_response_json(resp, 200, model_object(s));
}
