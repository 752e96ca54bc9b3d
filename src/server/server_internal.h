/* server_internal.h — the pv_server object's fields, shared by server.c (daemon, routing,
 * auth, body) and routes_info.c (the /health and /v1/models handlers). Not for other
 * modules: they see only pv_server.h. */
#ifndef PV_SERVER_INTERNAL_H
#define PV_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "pv_metrics.h"
#include "pv_server.h"

struct MHD_Daemon;

struct pv_server {
    struct MHD_Daemon *daemon;
    int port;
    char *host;
    /* Live settings (SIGHUP, pv_server_set_*): the key is read by every connection thread,
     * so it is swapped and compared under key_mu; the body limit is atomic and each request
     * takes its own copy when its headers arrive. */
    pthread_mutex_t key_mu;
    char *api_key;     /* NULL: no authentication; under key_mu */
    _Atomic size_t max_body;
    /* Drain (pv_server_quiesce): requests received and not yet completed, the flag that
     * turns new requests on open connections away, and the listening socket MHD gave back. */
    atomic_int n_inflight;
    atomic_bool draining;
    int quiesced_fd;   /* -1 until quiesced; closed after MHD_stop_daemon */
    char *model_name;
    int context_size;
    int64_t model_created;
    pv_server_load_fn load_fn;
    void *load_cls;
    void *app;
    double started_at; /* pv_time_now() at start, for uptime */
    pv_metrics *metrics; /* owned: GET /metrics, the per-request records */
};

/* Built-in handlers (routes_info.c). */
void pv_server_handle_health(const pv_http_request *req, pv_http_response *resp);
void pv_server_handle_models_list(const pv_http_request *req, pv_http_response *resp);
void pv_server_handle_models_get(const pv_http_request *req, pv_http_response *resp);
void pv_server_handle_metrics(const pv_http_request *req, pv_http_response *resp);

#endif
