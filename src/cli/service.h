/* service.h — what `start --background`, `stop` and `status` share: where the PID file and
 * the background log live, the PID file itself (a file holding the server's PID, locked
 * with a POSIX record lock for as long as the server runs, so that "is it running?" is
 * answered by the kernel: a stale file from a crashed server is never locked, and a
 * recycled PID cannot fool it), and a minimal HTTP/1.1 GET for /health with a deadline. */
#ifndef PV_CLI_SERVICE_H
#define PV_CLI_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/pv_config.h"
#include "core/pv_core.h"

#define PV_CLI_PATH_MAX 4096

/* The PID file: server.pid_file, else $XDG_RUNTIME_DIR/pensieve.pid, else
 * $XDG_STATE_HOME/pensieve/pensieve.pid, else ~/.local/state/pensieve/pensieve.pid (XDG
 * variables are used only when absolute, as the XDG spec requires). Writes out[cap].
 * PV_ERR_NOT_FOUND when nothing applies (no HOME). */
pv_status pv_cli_service_pid_path(const pv_config *cfg, char *out, size_t cap, pv_error *err);
/* The background log: logging.file, else $XDG_STATE_HOME/pensieve/pensieve.log, else
 * ~/.local/state/pensieve/pensieve.log. */
pv_status pv_cli_service_log_path(const pv_config *cfg, char *out, size_t cap, pv_error *err);
/* Creates the directories above `path` (mode 0700, like mkdir -p); existing ones are fine. */
pv_status pv_cli_service_mkdirs(const char *path, pv_error *err);

/* A PID file held by this process (pv_cli_pidfile_acquire .. pv_cli_pidfile_release). */
typedef struct pv_cli_pidfile {
    int fd; /* -1: not held */
    char path[PV_CLI_PATH_MAX];
} pv_cli_pidfile;

/* Creates or opens `path`, takes its write lock and writes this process's PID. When another
 * live process holds the lock: PV_ERR_DUPLICATE, *holder = its PID, err says "already
 * running (PID n)". A file left by a process that is gone is replaced: *stale gets the PID
 * it held (0 when none). Other errors: PV_ERR_IO naming the path. */
pv_status pv_cli_pidfile_acquire(const char *path, pv_cli_pidfile *pf, pid_t *holder,
                                 pid_t *stale, pv_error *err);
/* Removes the file and drops the lock (in that order, so a new server never finds our
 * file). Safe on a file not held. Async-signal-safe (unlink, close). */
void pv_cli_pidfile_release(pv_cli_pidfile *pf);

/* What a PID file says, without taking it: *holder = the PID holding the lock (0: none, so
 * no server runs with this file) and *written = the PID written in it (0: empty or not a
 * number). PV_ERR_NOT_FOUND when the file does not exist; PV_ERR_IO when it cannot be read. */
pv_status pv_cli_pidfile_query(const char *path, pid_t *holder, pid_t *written, pv_error *err);

/* GET http://host:port/path (HTTP/1.1, Connection: close) with a deadline of timeout_s for
 * connecting and reading. On success *status is the HTTP status and *body a NUL-terminated
 * copy of the body (caller frees; bodies over 1 MiB are refused). A wildcard host
 * ("0.0.0.0", "::", "") is reached through the loopback address. Errors: PV_ERR_IO with
 * "connection refused", "timed out after 3.0 s" and the like. */
pv_status pv_cli_http_get(const char *host, int port, const char *path, double timeout_s,
                          int *status, char **body, pv_error *err);

/* "http://HOST:PORT" (IPv6 literals bracketed) into out[cap]; returns out. */
char *pv_cli_service_url(const char *host, int port, char *out, size_t cap);

#endif
