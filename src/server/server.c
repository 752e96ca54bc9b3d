/* server.c — the libmicrohttpd daemon behind `pensieve start`: binds the listening socket
 * itself (so "address already in use" is reported precisely), runs one thread per
 * connection (handlers may block; HTTP/1.1 keep-alive is MHD's), accumulates each request
 * body under a size limit, then routes on the path alone through ONE table, checks the API
 * key and calls the route's handler. Every response, errors and MHD-level refusals we build
 * included, carries a `request-id` header; error bodies come in the route's API shape. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "routes_gen.h"

#include <microhttpd.h>

#include "server_internal.h"

/* How the error shape of a route is chosen: fixed by the route, or by the client on paths
 * both SDKs call (/v1/models): OpenAI when the client sends a Bearer token and neither an
 * `anthropic-version` header (every Anthropic SDK sends one) nor x-api-key, Anthropic
 * otherwise (curl without headers included). */
typedef enum route_shape {
    ROUTE_SHAPE_FIXED,
    ROUTE_SHAPE_BY_CLIENT,
} route_shape;

typedef struct pv_route {
    const char *method;
    const char *path;   /* exact path, or a prefix when `prefix` (then something must follow) */
    bool prefix;
    pv_api_family api;  /* the family when shape is FIXED */
    route_shape shape;
    bool needs_auth;
    pv_http_handler_fn fn;
    const char *label; /* the route in logs and metrics (NULL: path; prefix rows name their tail) */
} pv_route;

/* The route table (redis-style): one row per method+path. */
static const pv_route pv_routes[] = {
    {"GET", "/health", false, PV_API_NONE, ROUTE_SHAPE_FIXED, false, pv_server_handle_health, NULL},
    /* Like /health, no API key: a Prometheus scraper has none, and the counters say nothing
     * about the prompts or the key (bind to a public address with that in mind). */
    {"GET", "/metrics", false, PV_API_NONE, ROUTE_SHAPE_FIXED, false, pv_server_handle_metrics, NULL},
    {"GET", "/v1/models", false, PV_API_ANTHROPIC, ROUTE_SHAPE_BY_CLIENT, true,
     pv_server_handle_models_list, NULL},
    {"GET", "/v1/models/", true, PV_API_ANTHROPIC, ROUTE_SHAPE_BY_CLIENT, true,
     pv_server_handle_models_get, "/v1/models/{id}"},
    {"POST", "/v1/messages", false, PV_API_ANTHROPIC, ROUTE_SHAPE_FIXED, true, pv_route_messages, NULL},
    {"POST", "/v1/messages/count_tokens", false, PV_API_ANTHROPIC, ROUTE_SHAPE_FIXED, true,
     pv_route_count_tokens, NULL},
    {"POST", "/v1/chat/completions", false, PV_API_OPENAI, ROUTE_SHAPE_FIXED, true,
     pv_route_chat_completions, NULL},
};

/* Per-request state, created on MHD's first call for a request (headers received) and freed
 * by the request-completed callback. */
typedef struct conn_req {
    char request_id[29];
    char *body; /* NUL-terminated */
    size_t len, cap;
    size_t limit;     /* the body limit when the headers arrived (a SIGHUP may change the
                         server's; one request keeps one limit) */
    bool after_drain; /* the headers arrived after pv_server_quiesce: turned away */
    bool too_large;   /* the body passed the limit: the rest is discarded, then 413 */
    uint64_t dropped; /* bytes discarded after passing the limit */
    pv_req_stats *stats; /* one reference; the log line is written when the last one goes */
} conn_req;

pv_server_options pv_server_options_default(void) {
    pv_server_options o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = 7777;
    o.api_key = "pensieve-local-key";
    o.max_body_bytes = (size_t)32 << 20;
    o.model_name = "model";
    return o;
}

int pv_server_port(const pv_server *s) { return s ? s->port : 0; }
pv_metrics *pv_server_metrics(pv_server *s) { return s ? s->metrics : NULL; }

/* ---- wire response ---- */

/* Adapter from MHD's content-reader signature to ours (identical today, kept separate so
 * pv_server.h does not expose MHD types). */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    pv_http_response *r = cls;
    ssize_t n = r->stream(r->stream_cls, pos, buf, max);
    if (n == PV_HTTP_STREAM_END) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

/* Called by MHD once the streamed response is done or abandoned (client gone). */
static void stream_release(void *cls) {
    pv_http_response *r = cls;
    if (r->stream_free) r->stream_free(r->stream_cls);
    free(r);
}

/* Turns *resp into an MHD response and queues it. Takes ownership of resp's body/stream
 * (resp itself is borrowed; for streams a heap copy is kept until MHD releases it).
 * `close_after` adds "Connection: close" (used after a refused body). */
static enum MHD_Result send_response(struct MHD_Connection *conn, const conn_req *r,
                                     pv_http_response *resp, bool close_after) {
    struct MHD_Response *mr = NULL;
    if (resp->status == 0 && !resp->body && !resp->stream) {
        /* A handler that answered nothing is a bug on our side: say so instead of hanging. */
        pv_http_error_anthropic(resp, 500, r->request_id, "internal error: the handler produced no response");
    }
    pv_req_stats_set_status(r->stats, resp->status);
    if (resp->stream) {
        free(resp->body); /* a stream wins over a body set by mistake */
        resp->body = NULL;
        pv_http_response *copy = malloc(sizeof *copy);
        if (copy) {
            *copy = *resp;
            mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, copy,
                                                   stream_release);
            if (!mr) free(copy);
        }
        if (!mr) {
            if (resp->stream_free) resp->stream_free(resp->stream_cls);
            return MHD_NO;
        }
    } else if (resp->body && resp->body_len > 0) {
        mr = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (!mr) {
            free(resp->body);
            return MHD_NO;
        }
    } else {
        free(resp->body);
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!mr) return MHD_NO;
    }
    resp->body = NULL;
    resp->stream = NULL;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(mr, "request-id", r->request_id);
    for (int i = 0; i < resp->n_extra_headers && i < PV_HTTP_MAX_EXTRA_HEADERS; i++)
        if (resp->extra_header_names[i] && resp->extra_header_values[i])
            MHD_add_response_header(mr, resp->extra_header_names[i], resp->extra_header_values[i]);
    if (close_after) MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    return ok;
}

/* ---- auth ---- */

/* The key the client presented: a non-empty x-api-key, else the token of
 * "Authorization: Bearer T" (scheme case-insensitive, spaces trimmed), else NULL. Borrowed
 * from MHD (valid during the access-handler call). */
static const char *presented_key(struct MHD_Connection *conn) {
    const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key");
    if (k && k[0]) return k; /* an empty x-api-key does not hide a Bearer token */
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a) return NULL;
    while (*a == ' ' || *a == '\t') a++;
    if (strncasecmp(a, "Bearer", 6) != 0 || (a[6] != ' ' && a[6] != '\t')) return NULL;
    a += 6;
    while (*a == ' ' || *a == '\t') a++;
    return a;
}

/* Error shape for a client on a by-client route (see route_shape) or an unknown path. */
static pv_api_family shape_by_client(struct MHD_Connection *conn, const char *path) {
    if (!strncmp(path, "/v1/chat/", 9) || !strcmp(path, "/v1/completions") ||
        !strcmp(path, "/v1/embeddings"))
        return PV_API_OPENAI;
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "anthropic-version")) return PV_API_ANTHROPIC;
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key")) return PV_API_ANTHROPIC;
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    while (a && (*a == ' ' || *a == '\t')) a++;
    return a && !strncasecmp(a, "Bearer", 6) ? PV_API_OPENAI : PV_API_ANTHROPIC;
}

/* ---- routing ---- */

static bool route_path_matches(const pv_route *rt, const char *path) {
    if (!rt->prefix) return strcmp(rt->path, path) == 0;
    size_t n = strlen(rt->path);
    return strncmp(rt->path, path, n) == 0 && path[n] != '\0';
}

/* The route label of a path for logs and metrics: the table's pattern (a bounded set, so
 * a client cannot grow the metrics with made-up paths), "unmatched" for any other path. */
static const char *route_label(const char *url) {
    char path[2048];
    size_t plen = strcspn(url, "?");
    if (plen >= sizeof path) return "unmatched";
    memcpy(path, url, plen);
    path[plen] = '\0';
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_routes); i++)
        if (route_path_matches(&pv_routes[i], path)) return pv_routes[i].label ? pv_routes[i].label : pv_routes[i].path;
    return "unmatched";
}

/* Handles a fully received request: route, method, auth, handler. */
static enum MHD_Result dispatch(pv_server *s, struct MHD_Connection *conn, conn_req *r,
                                const char *url, const char *method) {
    /* Route on the path alone: MHD already splits the query off, but be robust. */
    char path[2048];
    size_t plen = strcspn(url, "?");
    pv_http_response resp;
    memset(&resp, 0, sizeof resp);
    pv_http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.body = r->body ? r->body : "";
    req.body_len = r->len;
    req.request_id = r->request_id;
    req.app = s->app;
    req.server = s;
    req.conn_ = conn;
    req.stats = r->stats;
    req.path = path;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req.client_fd = ci ? (int)ci->connect_fd : -1;
    if (plen >= sizeof path) {
        req.api = PV_API_ANTHROPIC;
        req.path = "";
        pv_http_error(&req, &resp, 404, "path too long");
        return send_response(conn, r, &resp, false);
    }
    memcpy(path, url, plen);
    path[plen] = '\0';

    const pv_route *found = NULL, *path_only = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_routes); i++) {
        const pv_route *rt = &pv_routes[i];
        if (!route_path_matches(rt, path)) continue;
        /* HEAD is GET without the body (MHD drops the body for HEAD itself). */
        if (!strcmp(rt->method, method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"))) {
            found = rt;
            break;
        }
        path_only = rt;
        size_t al = strlen(allow);
        snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "", rt->method);
    }
    const pv_route *rt = found ? found : path_only;
    if (!rt) {
        req.api = shape_by_client(conn, path);
        pv_http_error(&req, &resp, 404, "not found: %s %s", method, path);
        return send_response(conn, r, &resp, false);
    }
    req.api = rt->shape == ROUTE_SHAPE_BY_CLIENT ? shape_by_client(conn, path) : rt->api;
    if (!found) {
        pv_http_error(&req, &resp, 405, "method %s not allowed on %s (allowed: %s)", method, path, allow);
        resp.extra_header_names[0] = "allow";
        resp.extra_header_values[0] = allow;
        resp.n_extra_headers = 1;
        return send_response(conn, r, &resp, false);
    }
    if (r->after_drain && rt->fn != pv_server_handle_health) {
        /* Shutting down: the listening socket is closed to new connections, and a request
         * that started on an open keep-alive connection after the drain began is turned
         * away (and the connection closed), so that the drain only waits for what had
         * already arrived; a request whose upload began before still gets its answer. */
        pv_http_error(&req, &resp, 503, "the server is shutting down");
        return send_response(conn, r, &resp, true);
    }
    if (rt->needs_auth) {
        /* The key can be replaced by a SIGHUP reload: compare under its mutex. */
        const char *key = presented_key(conn);
        pthread_mutex_lock(&s->key_mu);
        int auth = !s->api_key ? 0 : !key ? 1 : !pv_http_key_equal(key, s->api_key) ? 2 : 0;
        pthread_mutex_unlock(&s->key_mu);
        if (auth == 1) {
            pv_http_error(&req, &resp, 401,
                          "missing API key: send it in the x-api-key header or as Authorization: Bearer");
            return send_response(conn, r, &resp, false);
        }
        if (auth == 2) {
            pv_http_error(&req, &resp, 401, "invalid API key");
            return send_response(conn, r, &resp, false);
        }
    }
    double t0 = pv_time_now();
    rt->fn(&req, &resp);
    PV_LOG_D("server", "%s %s -> %d (%.1f ms) %s", method, path, resp.status,
             (pv_time_now() - t0) * 1e3, r->request_id);
    return send_response(conn, r, &resp, false);
}

/* A 413 for a body over the limit; the connection is closed after it (the rest of the
 * body is never read, so the connection cannot be reused). */
static enum MHD_Result send_too_large(struct MHD_Connection *conn, conn_req *r, const char *url) {
    pv_http_request req;
    memset(&req, 0, sizeof req);
    req.client_fd = -1;
    req.request_id = r->request_id;
    req.api = shape_by_client(conn, url);
    pv_http_response resp;
    memset(&resp, 0, sizeof resp);
    pv_http_error(&req, &resp, 413, "request body too large: the limit is %zu bytes", r->limit);
    return send_response(conn, r, &resp, true);
}

/* MHD's access handler: called once after the headers, once per body chunk, and once when
 * the request is complete (upload_data_size 0). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    pv_server *s = cls;
    conn_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        pv_http_request_id_new(r->request_id);
        r->limit = atomic_load(&s->max_body);
        r->after_drain = atomic_load(&s->draining);
        *con_cls = r;
        atomic_fetch_add(&s->n_inflight, 1); /* until on_completed */
        char spath[257];
        snprintf(spath, sizeof spath, "%.*s", (int)PV_MIN(strcspn(url, "?"), sizeof spath - 1), url);
        r->stats = pv_req_stats_new(s->metrics, r->request_id, method, spath, route_label(url));
        /* A declared length over the limit is refused before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || n > (unsigned long long)r->limit) {
                r->too_large = true;
                return send_too_large(conn, r, url);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large) {
            /* Chunked body past the limit: MHD cannot answer mid-upload, so discard until
             * the end, but not forever: after another `limit` bytes, drop the connection. */
            r->dropped += n;
            return r->dropped > (uint64_t)r->limit ? MHD_NO : MHD_YES;
        }
        if (n > r->limit - r->len) {
            r->too_large = true;
            free(r->body);
            r->body = NULL;
            r->dropped = 0;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            if (cap > r->limit + 1) cap = r->limit + 1;
            char *nb = realloc(r->body, cap);
            if (!nb) return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->too_large) return send_too_large(conn, r, url);
    return dispatch(s, conn, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    pv_server *s = cls;
    conn_req *r = *con_cls;
    if (!r) return;
    atomic_fetch_sub(&s->n_inflight, 1);
    /* the connection broke before the response was complete (a write to a client that has
     * gone is WITH_ERROR; a client that closes mid-request is CLIENT_ABORT/READ_ERROR) */
    if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR || toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ||
        toe == MHD_REQUEST_TERMINATED_READ_ERROR)
        pv_req_stats_set_client_gone(r->stats);
    pv_req_stats_unref(r->stats); /* a stream may still hold it: then its end writes the line */
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* MHD's own diagnostics (malformed requests, socket errors) go to our debug log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    PV_LOG_D("server", "libmicrohttpd: %s", buf);
}

/* Creates, binds and listens on host:port. Returns the socket or -1 with *err set. */
static int listen_on(const char *host, int port, int *family, int *bound_port, pv_error *err) {
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        pv_error_set(err, PV_ERR_INVALID, "cannot resolve host '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            *family = ai->ai_family;
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            *bound_port = port;
            if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
                if (ss.ss_family == AF_INET) *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                else if (ss.ss_family == AF_INET6) *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            }
            break;
        }
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        pv_error_set(err, last_errno == EADDRINUSE ? PV_ERR_IO : PV_ERR_INVALID, "%s:%d: %s%s", host,
                     port, strerror(last_errno),
                     last_errno == EADDRINUSE ? " (another server is using this port: pick one with --port)" : "");
    return fd;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

pv_status pv_server_start(const pv_server_options *opts, pv_server **out, pv_error *err) {
    *out = NULL;
    pv_server_options o = opts ? *opts : pv_server_options_default();
    if (!o.host) o.host = "127.0.0.1";
    if (!o.model_name) o.model_name = "model";
    if (o.max_body_bytes == 0) o.max_body_bytes = (size_t)32 << 20;
    if (o.port < 0 || o.port > 65535)
        return pv_error_set(err, PV_ERR_RANGE, "port %d is out of range (0..65535)", o.port);
    pv_server *s = calloc(1, sizeof *s);
    if (!s) return pv_error_set(err, PV_ERR_NOMEM, "server: out of memory");
    pthread_mutex_init(&s->key_mu, NULL);
    s->quiesced_fd = -1;
    s->host = strdup(o.host);
    s->api_key = dup_or_null(o.api_key);
    s->model_name = strdup(o.model_name);
    if (!s->host || !s->model_name || (o.api_key && !s->api_key)) {
        pv_server_stop(s);
        return pv_error_set(err, PV_ERR_NOMEM, "server: out of memory");
    }
    atomic_store(&s->max_body, o.max_body_bytes);
    s->context_size = o.context_size;
    s->model_created = o.model_created;
    s->load_fn = o.load_fn;
    s->load_cls = o.load_cls;
    s->app = o.app;
    s->started_at = pv_time_now();
    s->metrics = pv_metrics_new();
    if (!s->metrics) {
        pv_server_stop(s);
        return pv_error_set(err, PV_ERR_NOMEM, "server: out of memory");
    }

    int family = AF_INET;
    int fd = listen_on(s->host, o.port, &family, &s->port, err);
    if (fd < 0) {
        pv_server_stop(s);
        return err ? err->status : PV_ERR_IO;
    }
    /* MHD_USE_ITC: MHD_quiesce_daemon (the drain on SIGTERM) needs it in this mode. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (family == AF_INET6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)NULL,
                                 MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
                                 /* Headers of Claude Code's requests are a few KiB; the
                                  * default 32 KiB pool is tight once MHD parses them. */
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                                 /* Idle keep-alive connections each hold a thread. */
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        /* Whether MHD closed the socket it was handed on failure differs by version: close
         * it only if it is still open. */
        if (fcntl(fd, F_GETFD) != -1) close(fd);
        pv_error_set(err, PV_ERR_INTERNAL, "%s:%d: libmicrohttpd could not start the daemon", s->host,
                     o.port);
        pv_server_stop(s);
        return PV_ERR_INTERNAL;
    }
    *out = s;
    return PV_OK;
}

void pv_server_stop(pv_server *s) {
    if (!s) return;
    /* MHD_stop_daemon closes the listening socket and joins every connection thread. */
    if (s->daemon) MHD_stop_daemon(s->daemon);
    pv_metrics_free(s->metrics); /* after the threads: their records count into it */
    /* after a quiesce the listening socket is ours to close, once MHD no longer polls it */
    if (s->quiesced_fd >= 0) close(s->quiesced_fd);
    pthread_mutex_destroy(&s->key_mu);
    free(s->host);
    free(s->api_key);
    free(s->model_name);
    free(s);
}

pv_status pv_server_set_api_key(pv_server *s, const char *api_key, pv_error *err) {
    char *copy = NULL;
    if (api_key && !(copy = strdup(api_key)))
        return pv_error_set(err, PV_ERR_NOMEM, "server: out of memory");
    pthread_mutex_lock(&s->key_mu);
    char *old = s->api_key;
    s->api_key = copy;
    pthread_mutex_unlock(&s->key_mu);
    free(old); /* no connection thread holds it: they compare under the mutex */
    return PV_OK;
}

void pv_server_set_max_body(pv_server *s, size_t bytes) {
    atomic_store(&s->max_body, bytes ? bytes : (size_t)32 << 20);
}

void pv_server_quiesce(pv_server *s) {
    if (!s || atomic_exchange(&s->draining, true)) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    /* MHD_INVALID_SOCKET: already quiesced or refused; the daemon then keeps its socket
     * and MHD_stop_daemon closes it as usual. */
    if (fd == MHD_INVALID_SOCKET) return;
    s->quiesced_fd = (int)fd;
    /* Stop listening now, so that new clients are refused at once instead of waiting in
     * the backlog until the drain ends. shutdown() on a listening socket makes Linux close
     * the listen queue (new SYNs are reset) while the descriptor stays valid; closing it
     * here instead could race with MHD's polling thread, which lets go of it only at
     * MHD_stop_daemon. */
    shutdown(s->quiesced_fd, SHUT_RD);
}

int pv_server_inflight(pv_server *s) { return s ? atomic_load(&s->n_inflight) : 0; }
