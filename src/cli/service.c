/* service.c — the PID file, the default paths and the small HTTP client behind
 * `start --background`, `stop` and `status` (see service.h). The PID file is locked with a
 * POSIX record lock (fcntl F_SETLK) by the server for its whole life: the kernel drops the
 * lock when the process ends, however it ends, so a lock held means a live server and
 * F_GETLK names it, while a file without a lock is stale whatever PID it contains. */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- paths ---- */

/* $NAME when it is set to an absolute path (the XDG spec says to ignore relative ones). */
static const char *abs_env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] == '/' ? v : NULL;
}

/* "<$XDG_STATE_HOME or ~/.local/state>/pensieve/<file>" into out. */
static pv_status state_path(const char *file, char *out, size_t cap, pv_error *err) {
    const char *state = abs_env("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (state)
        n = snprintf(out, cap, "%s/pensieve/%s", state, file);
    else if (home && home[0])
        n = snprintf(out, cap, "%s/.local/state/pensieve/%s", home, file);
    else
        return pv_error_set(err, PV_ERR_NOT_FOUND,
                            "no place for %s: HOME is not set (set it, XDG_STATE_HOME, or the path "
                            "in the configuration)", file);
    if (n < 0 || (size_t)n >= cap) return pv_error_set(err, PV_ERR_RANGE, "path of %s is too long", file);
    return PV_OK;
}

static pv_status copy_path(const char *p, char *out, size_t cap, pv_error *err) {
    if (strlen(p) >= cap) return pv_error_set(err, PV_ERR_RANGE, "path '%s' is too long", p);
    strcpy(out, p);
    return PV_OK;
}

pv_status pv_cli_service_pid_path(const pv_config *cfg, char *out, size_t cap, pv_error *err) {
    const char *p = pv_config_get_str(cfg, PV_CFG_SERVER_PID_FILE);
    if (p[0]) return copy_path(p, out, cap, err);
    const char *run = abs_env("XDG_RUNTIME_DIR");
    if (run) {
        int n = snprintf(out, cap, "%s/pensieve.pid", run);
        if (n < 0 || (size_t)n >= cap) return pv_error_set(err, PV_ERR_RANGE, "PID file path is too long");
        return PV_OK;
    }
    return state_path("pensieve.pid", out, cap, err);
}

pv_status pv_cli_service_log_path(const pv_config *cfg, char *out, size_t cap, pv_error *err) {
    const char *p = pv_config_get_str(cfg, PV_CFG_LOGGING_FILE);
    if (p[0]) return copy_path(p, out, cap, err);
    return state_path("pensieve.log", out, cap, err);
}

pv_status pv_cli_service_mkdirs(const char *path, pv_error *err) {
    char dir[PV_CLI_PATH_MAX];
    if (copy_path(path, dir, sizeof dir, err) != PV_OK) return err ? err->status : PV_ERR_RANGE;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return PV_OK; /* relative file in cwd, or directly under / */
    *slash = '\0';
    /* each prefix in turn; EEXIST is fine (a file in the way shows up when opening) */
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return pv_error_set(err, PV_ERR_IO, "cannot create directory '%s': %s", dir, strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    return PV_OK;
}

/* ---- the PID file ---- */

/* The PID written at the start of fd's file (0 when empty or not a positive number). */
static pid_t read_pid(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end = NULL;
    long v = strtol(buf, &end, 10);
    if (end == buf || v <= 0 || v > 0x3fffffff || (*end && *end != '\n')) return 0;
    return (pid_t)v;
}

/* The PID holding a write-conflicting lock on fd's file, 0 when none, -1 on error. */
static pid_t lock_holder(int fd) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) != 0) return -1;
    return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

pv_status pv_cli_pidfile_acquire(const char *path, pv_cli_pidfile *pf, pid_t *holder,
                                 pid_t *stale, pv_error *err) {
    pf->fd = -1;
    *holder = 0;
    *stale = 0;
    if (copy_path(path, pf->path, sizeof pf->path, err) != PV_OK) return err ? err->status : PV_ERR_RANGE;
    int fd = -1;
    /* A server that exits unlinks its file and then unlocks it: if we opened the file just
     * before the unlink, our lock is on a file that no longer has the name, so check that
     * the name still leads to what we locked, and try again if not. */
    for (int attempt = 0; fd < 0; attempt++) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return pv_error_set(err, PV_ERR_IO, "cannot open PID file '%s': %s", path, strerror(errno));
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int e = errno;
            pid_t h = (e == EAGAIN || e == EACCES) ? lock_holder(fd) : 0;
            close(fd);
            if (e == EAGAIN || e == EACCES) {
                *holder = h;
                return pv_error_set(err, PV_ERR_DUPLICATE, "already running (PID %d, PID file %s)", (int)h,
                                    path);
            }
            return pv_error_set(err, PV_ERR_IO, "cannot lock PID file '%s': %s", path, strerror(e));
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) break;
        close(fd);
        fd = -1;
        if (attempt == 10) return pv_error_set(err, PV_ERR_IO, "PID file '%s' keeps changing", path);
    }
    *stale = read_pid(fd);
    if (*stale == getpid()) *stale = 0;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;
        unlink(path);
        close(fd);
        return pv_error_set(err, PV_ERR_IO, "cannot write PID file '%s': %s", path, strerror(e));
    }
    pf->fd = fd;
    return PV_OK;
}

void pv_cli_pidfile_release(pv_cli_pidfile *pf) {
    if (!pf || pf->fd < 0) return;
    unlink(pf->path);
    close(pf->fd);
    pf->fd = -1;
}

pv_status pv_cli_pidfile_query(const char *path, pid_t *holder, pid_t *written, pv_error *err) {
    *holder = 0;
    *written = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return pv_error_set(err, PV_ERR_NOT_FOUND, "no PID file at %s", path);
        return pv_error_set(err, PV_ERR_IO, "cannot read PID file '%s': %s", path, strerror(errno));
    }
    *written = read_pid(fd);
    pid_t h = lock_holder(fd);
    /* Closing our descriptor would drop locks *we* held on the file; this process holds
     * none (query is used by stop/status and before the fork of start). */
    close(fd);
    if (h < 0) return pv_error_set(err, PV_ERR_IO, "cannot query the lock of '%s': %s", path, strerror(errno));
    *holder = h;
    return PV_OK;
}

/* ---- HTTP ---- */

char *pv_cli_service_url(const char *host, int port, char *out, size_t cap) {
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, cap, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return out;
}

/* Milliseconds left until `deadline` (pv_time_now() seconds), at least 0. */
static int ms_left(double deadline) {
    double left = deadline - pv_time_now();
    return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

/* Connects to host:port before the deadline; returns the socket or -1 with err set. */
static int connect_deadline(const char *host, int port, double deadline, double timeout_s, pv_error *err) {
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        pv_error_set(err, PV_ERR_INVALID, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int pr = poll(&p, 1, ms_left(deadline));
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            last = pr == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        } else {
            last = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (last == ETIMEDOUT)
            pv_error_set(err, PV_ERR_IO, "connecting timed out after %.1f s", timeout_s);
        else
            pv_error_set(err, PV_ERR_IO, "%s", strerror(last));
    }
    return fd;
}

pv_status pv_cli_http_get(const char *host, int port, const char *path, double timeout_s,
                          int *status, char **body, pv_error *err) {
    *status = 0;
    *body = NULL;
    /* the server listens on every address: ask it on the loopback one */
    if (!host[0] || !strcmp(host, "0.0.0.0")) host = "127.0.0.1";
    else if (!strcmp(host, "::")) host = "::1";
    double deadline = pv_time_now() + timeout_s;
    int fd = connect_deadline(host, port, deadline, timeout_s, err);
    if (fd < 0) return err ? err->status : PV_ERR_IO;
    char req[1024];
    bool v6 = strchr(host, ':') != NULL;
    int rn = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nConnection: close\r\n\r\n",
                      path, v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (rn < 0 || (size_t)rn >= sizeof req) {
        close(fd);
        return pv_error_set(err, PV_ERR_RANGE, "request too long");
    }
    size_t off = 0, cap = 4096, len = 0;
    char *buf = malloc(cap);
    pv_status st = PV_OK;
    if (!buf) st = pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    /* write the request, then read until the server closes (Connection: close) */
    while (st == PV_OK && off < (size_t)rn) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, ms_left(deadline)) != 1) {
            st = pv_error_set(err, PV_ERR_IO, "timed out after %.1f s sending the request", timeout_s);
            break;
        }
        ssize_t w = send(fd, req + off, (size_t)rn - off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) st = pv_error_set(err, PV_ERR_IO, "send: %s", strerror(errno));
        if (w > 0) off += (size_t)w;
    }
    while (st == PV_OK) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms_left(deadline)) != 1) {
            st = pv_error_set(err, PV_ERR_IO, "no answer within %.1f s", timeout_s);
            break;
        }
        if (len + 1 >= cap) {
            if (cap >= ((size_t)1 << 20)) {
                st = pv_error_set(err, PV_ERR_RANGE, "answer larger than 1 MiB");
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                st = pv_error_set(err, PV_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            st = pv_error_set(err, PV_ERR_IO, "recv: %s", strerror(errno));
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    if (st != PV_OK) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    /* "HTTP/1.x NNN reason\r\n...\r\n\r\nbody" (MHD sends Content-Length for whole bodies,
     * and the connection end delimits it anyway) */
    int code = 0;
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || sscanf(buf + 8, " %3d", &code) != 1 || !hdr_end) {
        free(buf);
        return pv_error_set(err, PV_ERR_FORMAT, "not an HTTP response");
    }
    const char *b = hdr_end + 4;
    size_t blen = len - (size_t)(b - buf);
    memmove(buf, b, blen);
    buf[blen] = '\0';
    *status = code;
    *body = buf;
    return PV_OK;
}
