/* pv_server.h — the HTTP layer of `pensieve start`: a libmicrohttpd daemon (one thread per
 * connection, HTTP/1.1 keep-alive) with one route table, API-key checking, a request-body
 * limit, request ids, and the two error shapes (Anthropic and OpenAI). A route handler gets a
 * fully received pv_http_request and fills a pv_http_response (a whole body, or a streaming
 * callback for SSE); the server turns that into the wire response and adds `request-id`.
 * The built-in routes are /health and /v1/models[/{id}]; the generation routes
 * (/v1/messages, /v1/messages/count_tokens, /v1/chat/completions) are listed in server.c's
 * route table once their handlers exist (until then they answer 404). */
#ifndef PV_SERVER_H
#define PV_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/pv_core.h"

/* pv_api_family (which API a route belongs to, which decides the shape of its error
 * bodies; NONE is /health, answered in the Anthropic shape) is the API layer's enum. */
#include "api/pv_api.h"

typedef struct pv_server pv_server;
/* The server's metrics registry and the record of one request (src/server/pv_metrics.h). */
typedef struct pv_metrics pv_metrics;
typedef struct pv_req_stats pv_req_stats;

/* Active/queued request counts for /health (the scheduler provides them). */
typedef void (*pv_server_load_fn)(void *cls, int *active, int *queued);

typedef struct pv_server_options {
    const char *host;        /* numeric or resolvable; NULL: "127.0.0.1" */
    int port;                /* 0: any free port (see pv_server_port) */
    const char *api_key;     /* NULL: authentication disabled */
    size_t max_body_bytes;   /* 0: 32 MiB */
    const char *model_name;  /* the loaded model's own name (GET /v1/models/{id}) */
    int context_size;        /* for /health */
    int64_t model_created;   /* unix seconds reported as created/created_at (file mtime) */
    pv_server_load_fn load_fn; /* NULL: active = queued = 0 */
    void *load_cls;
    void *app;               /* handed to every handler as req->app (scheduler, tokenizer…) */
} pv_server_options;

/* Defaults: host 127.0.0.1, port 7777, api_key "pensieve-local-key", 32 MiB body limit. */
pv_server_options pv_server_options_default(void);

/* Binds host:port, starts the daemon's threads and returns it in *out (caller owns it; free
 * with pv_server_stop). The options' strings are copied. Errors: the address cannot be
 * resolved or bound ("127.0.0.1:7777: address already in use"), libmicrohttpd refused. */
pv_status pv_server_start(const pv_server_options *opts, pv_server **out, pv_error *err);
/* The port actually bound (useful with port 0). */
int pv_server_port(const pv_server *s);
/* Stops accepting, waits for the connection threads, frees everything. NULL is a no-op. */
void pv_server_stop(pv_server *s);
/* The server's metrics registry (owned by the server; valid until pv_server_stop), e.g. to
 * set its gauge source and the model load time. */
pv_metrics *pv_server_metrics(pv_server *s);

/* ---- live settings (SIGHUP reload); safe while connection threads run ---- */
/* Replaces the API key (copied; NULL disables authentication). Requests already past the
 * key check keep running. Fails only when out of memory (the old key then stays). */
pv_status pv_server_set_api_key(pv_server *s, const char *api_key, pv_error *err);
/* Replaces the request-body limit (0: 32 MiB) for requests whose headers arrive later. */
void pv_server_set_max_body(pv_server *s, size_t bytes);

/* ---- drain (SIGTERM/SIGINT) ---- */
/* Stops accepting connections (MHD_quiesce_daemon, then the listen queue is shut so new
 * clients are refused at once) and answers requests that begin after this on open
 * keep-alive connections with 503 and Connection: close (/health excepted), so that only
 * requests already received (even half-uploaded ones) continue. Returns at once;
 * idempotent. pv_server_stop still ends it. */
void pv_server_quiesce(pv_server *s);
/* Requests received (headers in) and not yet completed: the response fully sent or the
 * connection gone. Streams count until their last byte is written. */
int pv_server_inflight(pv_server *s);

/* ---- what a handler sees ---- */
typedef struct pv_http_request {
    const char *method;     /* "GET", "POST", … */
    const char *path;       /* the URL path without "?query" */
    const char *body;       /* the whole body, NUL-terminated (body_len excludes the NUL); "" if none */
    size_t body_len;
    const char *request_id; /* "req_" + 24 alphanumerics, also sent as the request-id header */
    pv_api_family api;      /* the route's API family */
    void *app;              /* pv_server_options.app */
    pv_server *server;
    int client_fd;          /* the connection's socket, for pv_http_client_gone (-1: unknown) */
    void *conn_;            /* private: the MHD connection, for pv_http_request_header */
    /* The request's record for its log line and metrics (pv_metrics.h; may be NULL):
     * handlers add the model, token counts and times; a streamed response keeps its own
     * reference (pv_req_stats_ref) until its stream_free. */
    pv_req_stats *stats;
} pv_http_request;

/* The value of request header `name` (case-insensitive), or NULL. Borrowed: valid during the
 * handler call. */
const char *pv_http_request_header(const pv_http_request *req, const char *name);

/* A streaming body: called repeatedly (from the connection's thread) to fill up to `max`
 * bytes of `buf`; returns the number of bytes written (0 is allowed only if the callback
 * blocks until it has data — prefer blocking), PV_HTTP_STREAM_END when done or
 * PV_HTTP_STREAM_ERROR to abort the connection. `pos` is the number of bytes sent so far. */
#define PV_HTTP_STREAM_END ((ssize_t)-1)
#define PV_HTTP_STREAM_ERROR ((ssize_t)-2)
typedef ssize_t (*pv_http_stream_fn)(void *cls, uint64_t pos, char *buf, size_t max);

#define PV_HTTP_MAX_EXTRA_HEADERS 4

typedef struct pv_http_response {
    int status;               /* 0 when the handler left it empty: the server answers 500 */
    const char *content_type; /* static string; NULL: application/json */
    char *body;               /* malloc'ed, owned by the response (freed by the server) */
    size_t body_len;
    /* Streaming instead of body: stream(stream_cls, …) until END; stream_free(stream_cls) is
     * called exactly once when the response is finished or the client went away. */
    pv_http_stream_fn stream;
    void *stream_cls;
    void (*stream_free)(void *cls);
    /* Extra headers (static or owned-by-caller strings that outlive the handler call, e.g.
     * literals): "retry-after", "x-should-retry"… */
    const char *extra_header_names[PV_HTTP_MAX_EXTRA_HEADERS];
    const char *extra_header_values[PV_HTTP_MAX_EXTRA_HEADERS];
    int n_extra_headers;
} pv_http_response;

typedef void (*pv_http_handler_fn)(const pv_http_request *req, pv_http_response *resp);

/* ---- response helpers (each replaces whatever body the response had) ---- */

/* 200-style JSON body: serialises `json` compactly, takes ownership of it (decref). Returns
 * false (and fills a 500 api_error) only when out of memory. */
bool pv_http_response_json(pv_http_response *resp, int status, json_t *json);

/* The retry advice for an error status, as headers: `x-should-retry` (true for 429/5xx,
 * false for other 4xx) and `retry-after: 1` for 429/503/529. The error helpers below add it;
 * a route that builds its own error body calls it. */
void pv_http_response_retry_headers(pv_http_response *resp, int status);

/* The Anthropic error type for an HTTP status (400 → "invalid_request_error", 401 →
 * "authentication_error", … 529 → "overloaded_error"); unknown 4xx → invalid_request_error,
 * unknown 5xx → api_error. */
const char *pv_http_anthropic_error_type(int status);

/* Anthropic shape: {"type":"error","error":{"type":T,"message":M},"request_id":ID}. */
void pv_http_error_anthropic(pv_http_response *resp, int status, const char *request_id,
                             const char *message);
/* OpenAI shape: {"error":{"message":M,"type":T,"param":P|null,"code":C|null}}. type/code NULL:
 * taken from the status table (e.g. 401 → invalid_request_error / invalid_api_key). */
void pv_http_error_openai(pv_http_response *resp, int status, const char *type,
                          const char *code, const char *param, const char *message);
/* The error in the shape of req->api (OpenAI routes answer 529 as 503), printf-style. */
void pv_http_error(const pv_http_request *req, pv_http_response *resp, int status,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parses the request body as JSON. On success returns the value (caller owns it); on bad
 * JSON fills resp with 400 invalid_request_error naming jansson's line/column/message and
 * returns NULL. An empty body is an error too ("request body is empty"). */
json_t *pv_http_request_json(const pv_http_request *req, pv_http_response *resp);

/* True when the client of socket `fd` has closed or reset its side (poll for
 * POLLRDHUP/POLLHUP/POLLERR without waiting). For a streaming callback that waits for
 * tokens: check it every few hundred ms and return PV_HTTP_STREAM_ERROR when true, so a
 * disconnected client is cancelled without waiting for the next write to fail. Valid only
 * while the connection is alive, i.e. from inside the handler or the stream callback. */
bool pv_http_client_gone(int fd);

/* Writes "req_" + 24 random alphanumerics + NUL into out[29]. Thread-safe. */
void pv_http_request_id_new(char out[29]);

/* Constant-time comparison of a presented key with the expected one (time depends only on
 * the expected key's length). NULL presented → false. */
bool pv_http_key_equal(const char *presented, const char *expected);

#endif /* PV_SERVER_H */
