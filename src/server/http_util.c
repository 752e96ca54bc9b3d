/* http_util.c — the response and request helpers every route handler uses: the two error
 * shapes (Anthropic, OpenAI) driven by one status table, JSON bodies through jansson
 * (serialising responses, parsing requests with line/column diagnostics), request ids and
 * the constant-time API-key comparison. Nothing here touches libmicrohttpd except the
 * header lookup, so these functions are the stable surface for src/api. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/random.h>

#include <microhttpd.h>

#include "pv_server.h"

/* One row per HTTP status we emit: the Anthropic error type, the OpenAI type and code
 * (code NULL → JSON null), and the retry advice the Anthropic and OpenAI SDKs read:
 * `x-should-retry` overrides their own status-based guess and `retry-after` (seconds) sets
 * the wait. A full server is worth retrying in a second; a bad request never is (Claude Code
 * would otherwise resend a 400 several times). Unlisted statuses fall back by class. */
typedef struct status_row {
    int status;
    const char *anthropic_type;
    const char *openai_type;
    const char *openai_code;
    const char *retry_after; /* NULL: no retry-after header */
    bool should_retry;
} status_row;

static const status_row pv_status_table[] = {
    {400, "invalid_request_error", "invalid_request_error", NULL, NULL, false},
    {401, "authentication_error", "invalid_request_error", "invalid_api_key", NULL, false},
    {403, "permission_error", "invalid_request_error", "permission_denied", NULL, false},
    {404, "not_found_error", "invalid_request_error", "not_found", NULL, false},
    {405, "invalid_request_error", "invalid_request_error", "method_not_allowed", NULL, false},
    {413, "request_too_large", "invalid_request_error", "request_too_large", NULL, false},
    {429, "rate_limit_error", "rate_limit_error", "rate_limit_exceeded", "1", true},
    {500, "api_error", "server_error", NULL, NULL, true},
    {503, "overloaded_error", "server_error", "overloaded", "1", true},
    {529, "overloaded_error", "server_error", "overloaded", "1", true},
};

/* The row for `status`; unknown 4xx share 400's row and unknown 5xx share 500's, so a
 * client always gets a type it knows. */
static const status_row *status_row_for(int status) {
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_status_table); i++)
        if (pv_status_table[i].status == status) return &pv_status_table[i];
    return status_row_for(status >= 500 ? 500 : 400); /* both are in the table */
}

const char *pv_http_anthropic_error_type(int status) { return status_row_for(status)->anthropic_type; }

/* Sets (or replaces) one extra header; names and values must be static strings. */
static void response_header_set(pv_http_response *resp, const char *name, const char *value) {
    for (int i = 0; i < resp->n_extra_headers; i++)
        if (!strcmp(resp->extra_header_names[i], name)) {
            resp->extra_header_values[i] = value;
            return;
        }
    if (resp->n_extra_headers < PV_HTTP_MAX_EXTRA_HEADERS) {
        resp->extra_header_names[resp->n_extra_headers] = name;
        resp->extra_header_values[resp->n_extra_headers++] = value;
    }
}

void pv_http_response_retry_headers(pv_http_response *resp, int status) {
    const status_row *row = status_row_for(status);
    response_header_set(resp, "x-should-retry", row->should_retry ? "true" : "false");
    if (row->retry_after) response_header_set(resp, "retry-after", row->retry_after);
}

/* Replaces resp's body (frees the old one, drops any stream) with `body` (owned). */
static void response_set_body(pv_http_response *resp, int status, char *body, size_t len) {
    free(resp->body);
    if (resp->stream && resp->stream_free) resp->stream_free(resp->stream_cls);
    resp->stream = NULL;
    resp->stream_cls = NULL;
    resp->stream_free = NULL;
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = len;
}

/* Last-resort body when even building the JSON failed (out of memory): a static literal
 * copied with strdup, or nothing (the server then sends an empty 500). */
static void response_oom(pv_http_response *resp) {
    static const char oom[] =
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"out of memory\"}}";
    char *b = strdup(oom);
    response_set_body(resp, 500, b, b ? sizeof oom - 1 : 0);
}

bool pv_http_response_json(pv_http_response *resp, int status, json_t *json) {
    char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!s) {
        response_oom(resp);
        return false;
    }
    /* json_dumps allocates with jansson's allocator, which is malloc unless someone set
     * json_set_alloc_funcs (we never do), so the server may free() it. */
    response_set_body(resp, status, s, strlen(s));
    return true;
}

void pv_http_error_anthropic(pv_http_response *resp, int status, const char *request_id,
                             const char *message) {
    json_t *j = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type",
                          pv_http_anthropic_error_type(status), "message", message ? message : "",
                          "request_id", request_id ? request_id : "");
    if (pv_http_response_json(resp, status, j)) pv_http_response_retry_headers(resp, status);
}

void pv_http_error_openai(pv_http_response *resp, int status, const char *type,
                          const char *code, const char *param, const char *message) {
    const status_row *row = status_row_for(status);
    if (!type) type = row->openai_type;
    if (!code) code = row->openai_code;
    json_t *j = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", message ? message : "",
                          "type", type, "param", param ? json_string(param) : json_null(),
                          "code", code ? json_string(code) : json_null());
    if (pv_http_response_json(resp, status, j)) pv_http_response_retry_headers(resp, status);
}

void pv_http_error(const pv_http_request *req, pv_http_response *resp, int status,
                   const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (req->api == PV_API_OPENAI) {
        /* OpenAI clients know 503 as "try later"; 529 is Anthropic's own code. */
        pv_http_error_openai(resp, status == 529 ? 503 : status, NULL, NULL, NULL, msg);
    } else {
        pv_http_error_anthropic(resp, status, req->request_id, msg);
    }
}

json_t *pv_http_request_json(const pv_http_request *req, pv_http_response *resp) {
    if (req->body_len == 0) {
        pv_http_error(req, resp, 400, "request body is empty: expected a JSON object");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!j) {
        pv_http_error(req, resp, 400, "invalid JSON in request body at line %d, column %d: %s",
                      jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        pv_http_error(req, resp, 400, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

const char *pv_http_request_header(const pv_http_request *req, const char *name) {
    if (!req || !req->conn_ || !name) return NULL;
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn_, MHD_HEADER_KIND, name);
}

bool pv_http_client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) < 0) return false; /* EINTR etc.: ask again next time */
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void pv_http_request_id_new(char out[29]) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[24];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (got < sizeof rnd) {
        /* getrandom cannot fail on Linux >= 3.17 short of EINTR storms; fall back to a
         * clock-seeded generator rather than leaving the id constant. */
        pv_rng r;
        pv_rng_seed(&r, (uint64_t)(pv_time_now() * 1e9) ^ (uint64_t)(uintptr_t)out);
        for (size_t i = got; i < sizeof rnd; i++) rnd[i] = (unsigned char)pv_rng_next(&r);
    }
    memcpy(out, "req_", 4);
    /* 62 does not divide 256: the slight bias of the modulo is irrelevant for an id. */
    for (size_t i = 0; i < sizeof rnd; i++) out[4 + i] = alnum[rnd[i] % 62];
    out[28] = '\0';
}

bool pv_http_key_equal(const char *presented, const char *expected) {
    if (!presented || !expected) return false;
    size_t lp = strlen(presented), le = strlen(expected);
    /* Loop over the expected key only, so the time reveals its length at most (which the
     * default key's documentation does anyway), never how many leading bytes matched. */
    unsigned diff = lp != le;
    for (size_t i = 0; i < le; i++) {
        unsigned char p = i < lp ? (unsigned char)presented[i] : 0;
        diff |= (unsigned)(p ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}
