/* request.c — the internal request model's lifecycle and tables: enum <-> string lookups
 * generated from the X-macros in pv_api.h, the pv_api_error constructor and its per-API
 * status/type columns, freeing a pv_request, same-role merging, media detection, and the
 * small string buffer the parsers and renderer share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* ---- tables ---- */
static const char *const role_names[] = {
#define X_(n, s) s,
    PV_API_ROLE_MAP(X_)
#undef X_
};
static const char *const block_names[] = {
#define X_(n, s) s,
    PV_API_BLOCK_MAP(X_)
#undef X_
};
static const char *const stop_names[] = {
#define X_(n, a, o) a,
    PV_API_STOP_REASON_MAP(X_)
#undef X_
};
static const char *const stop_openai[] = {
#define X_(n, a, o) o,
    PV_API_STOP_REASON_MAP(X_)
#undef X_
};
static const char *const tool_choice_names[] = {
#define X_(n, a) a,
    PV_API_TOOL_CHOICE_MAP(X_)
#undef X_
};
static const char *const thinking_names[] = {
#define X_(n, s) s,
    PV_API_THINKING_MAP(X_)
#undef X_
};

static const struct {
    int status[2];
    const char *type[2];
} error_table[] = {
#define X_(n, hs, at, os, ot) {{hs, os}, {at, ot}},
    PV_API_ERROR_MAP(X_)
#undef X_
};

#define LOOKUP_(tab, i) \
    ((size_t)(i) < PV_ARRAY_LEN(tab) ? (tab)[(size_t)(i)] : "unknown")

const char *pv_api_role_str(pv_api_role r) { return LOOKUP_(role_names, r); }
const char *pv_api_block_type_str(pv_api_block_type t) { return LOOKUP_(block_names, t); }
const char *pv_api_stop_reason_str(pv_api_stop_reason r) { return LOOKUP_(stop_names, r); }
const char *pv_api_stop_reason_openai(pv_api_stop_reason r) { return LOOKUP_(stop_openai, r); }
const char *pv_api_tool_choice_str(pv_api_tool_choice c) {
    return LOOKUP_(tool_choice_names, c);
}
const char *pv_api_thinking_str(pv_api_thinking t) { return LOOKUP_(thinking_names, t); }

/* ---- errors ---- */
pv_status pv_api_error_set(pv_api_error *e, pv_api_error_kind kind, const char *param,
                           const char *fmt, ...) {
    pv_status st = error_table[kind < PV_API_ERR_COUNT ? kind : PV_API_ERR_API].status[0] >= 500
                       ? PV_ERR_INTERNAL
                       : PV_ERR_INVALID;
    if (!e) return st;
    e->kind = kind;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    size_t off = 0;
    if (e->param[0]) {
        int k = snprintf(e->message, sizeof e->message, "%s: ", e->param);
        off = k > 0 ? PV_MIN((size_t)k, sizeof e->message - 1) : 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message + off, sizeof e->message - off, fmt, ap);
    va_end(ap);
    return st;
}

int pv_api_error_http_status(pv_api_family f, pv_api_error_kind k) {
    if ((size_t)k >= PV_ARRAY_LEN(error_table)) k = PV_API_ERR_API;
    return error_table[k].status[f == PV_API_OPENAI];
}

const char *pv_api_error_type_str(pv_api_family f, pv_api_error_kind k) {
    if ((size_t)k >= PV_ARRAY_LEN(error_table)) k = PV_API_ERR_API;
    return error_table[k].type[f == PV_API_OPENAI];
}

/* ---- string buffer ---- */
void pv_api_sb_append(pv_api_sb *sb, const char *s, size_t n) {
    if (sb->failed) return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                sb->failed = true;
                return;
            }
            cap *= 2;
        }
        char *nb = realloc(sb->buf, cap);
        if (!nb) {
            sb->failed = true;
            return;
        }
        sb->buf = nb;
        sb->cap = cap;
    }
    if (n) memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void pv_api_sb_puts(pv_api_sb *sb, const char *s) { pv_api_sb_append(sb, s, strlen(s)); }

char *pv_api_sb_take(pv_api_sb *sb) {
    if (!sb->failed && !sb->buf) pv_api_sb_append(sb, "", 0);
    if (sb->failed) {
        pv_api_sb_free(sb);
        return NULL;
    }
    char *b = sb->buf;
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return b;
}

void pv_api_sb_free(pv_api_sb *sb) {
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

char *pv_api_strdup(const char *s) { return s ? strdup(s) : NULL; }

/* ---- blocks, messages, requests ---- */
void pv_api_blocks_free(pv_api_block *b, size_t n) {
    if (!b) return;
    for (size_t i = 0; i < n; i++) {
        free(b[i].text);
        free(b[i].signature);
        free(b[i].id);
        free(b[i].name);
        json_decref(b[i].input);
        pv_api_blocks_free(b[i].content, b[i].n_content);
    }
    free(b);
}

pv_api_block *pv_api_blocks_push(pv_api_block **arr, size_t *n) {
    pv_api_block *nb = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!nb) return NULL;
    *arr = nb;
    memset(&nb[*n], 0, sizeof nb[*n]);
    return &nb[(*n)++];
}

pv_status pv_api_request_add_message(pv_request *r, pv_api_role role, pv_api_block *blocks,
                                     size_t n) {
    if (r->n_messages && r->messages[r->n_messages - 1].role == role) {
        pv_api_message *m = &r->messages[r->n_messages - 1];
        if (n) {
            pv_api_block *nb = realloc(m->blocks, (m->n_blocks + n) * sizeof *nb);
            if (!nb) {
                pv_api_blocks_free(blocks, n);
                return PV_ERR_NOMEM;
            }
            memcpy(nb + m->n_blocks, blocks, n * sizeof *nb);
            m->blocks = nb;
            m->n_blocks += n;
        }
        free(blocks); /* the elements moved; only the array goes */
        return PV_OK;
    }
    pv_api_message *nm = realloc(r->messages, (r->n_messages + 1) * sizeof *nm);
    if (!nm) {
        pv_api_blocks_free(blocks, n);
        return PV_ERR_NOMEM;
    }
    r->messages = nm;
    nm[r->n_messages++] = (pv_api_message){.role = role, .blocks = blocks, .n_blocks = n};
    return PV_OK;
}

void pv_api_request_note_media(pv_request *r, const char *path, pv_api_block_type type) {
    if (r->media_path[0]) return;
    snprintf(r->media_path, sizeof r->media_path, "%s", path);
    r->media_type = type;
}

void pv_api_request_finish(pv_request *r) {
    r->prefill = r->n_messages > 0 && r->messages[r->n_messages - 1].role == PV_API_ROLE_ASSISTANT;
}

void pv_request_free(pv_request *r) {
    if (!r) return;
    free(r->model);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->system);
    for (size_t i = 0; i < r->n_messages; i++)
        pv_api_blocks_free(r->messages[i].blocks, r->messages[i].n_blocks);
    free(r->messages);
    for (size_t i = 0; i < r->n_tools; i++) {
        free(r->tools[i].name);
        free(r->tools[i].description);
        free(r->tools[i].type);
        json_decref(r->tools[i].input_schema);
    }
    free(r->tools);
    free(r->tool_choice_name);
    json_decref(r->response_format);
    free(r);
}

bool pv_api_request_has_media(const pv_request *r) { return r && r->media_path[0] != '\0'; }

pv_status pv_api_request_check_text_only(const pv_request *r, pv_api_error *err) {
    if (!pv_api_request_has_media(r)) return PV_OK;
    return pv_api_error_set(err, PV_API_ERR_INVALID_REQUEST, r->media_path,
                            "%s blocks are not supported: this model takes no images or "
                            "documents (text-only)",
                            pv_api_block_type_str(r->media_type));
}

pv_status pv_api_request_begin(const json_t *body, pv_api_family family, pv_request **out,
                               pv_api_error *err) {
    *out = NULL;
    if (!json_is_object(body))
        return pv_api_error_set(err, PV_API_ERR_INVALID_REQUEST, "", "request body must be a JSON object");
    const char *model;
    pv_status st = pv_api_field_str(body, "model", "model", true, &model, err);
    if (st != PV_OK) return st;
    if (!*model) return pv_api_error_set(err, PV_API_ERR_INVALID_REQUEST, "model", "must not be empty");
    pv_request *r = calloc(1, sizeof *r);
    if (!r || !(r->model = strdup(model))) {
        free(r);
        return pv_api_error_set(err, PV_API_ERR_API, "", "out of memory");
    }
    r->family = family;
    r->tool_choice = PV_API_TOOL_CHOICE_AUTO;
    *out = r;
    return PV_OK;
}
