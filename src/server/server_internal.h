/* server_internal.h — the pv_server object's fields, shared by server.c (daemon, routing,
 * auth, body) and routes_info.c (the /health and /v1/models handlers). Not for other
 * modules: they see only pv_server.h. */
#ifndef PV_SERVER_INTERNAL_H
#define PV_SERVER_INTERNAL_H

#include "pv_server.h"

struct MHD_Daemon;

struct pv_server {
    struct MHD_Daemon *daemon;
    int port;
    char *host;
    char *api_key;     /* NULL: no authentication */
    size_t max_body;
    char *model_name;
    int context_size;
    int64_t model_created;
    pv_server_load_fn load_fn;
    void *load_cls;
    void *app;
    double started_at; /* pv_time_now() at start, for uptime */
};

/* Built-in handlers (routes_info.c). */
void pv_server_handle_health(const pv_http_request *req, pv_http_response *resp);
void pv_server_handle_models_list(const pv_http_request *req, pv_http_response *resp);
void pv_server_handle_models_get(const pv_http_request *req, pv_http_response *resp);

#endif
