/* parse_anthropic.c — validates an Anthropic Messages request body (/v1/messages and
 * /v1/messages/count_tokens) field by field and block by block, following
 * ../shared/spec/anthropic-messages.md, and builds the internal pv_request. Every error names
 * the field path with dots (messages.2.content.0.type: unknown block type "foo"). Fields
 * the contract says to tolerate (cache_control, output_config, service_tier,
 * context_management, container, citations, anthropic-beta extras, unknown top-level keys)
 * are accepted and ignored. Claude Code's first system block, the per-request
 * "x-anthropic-billing-header:" line, is dropped so the prompt prefix stays stable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

#define INVALID_ PV_API_ERR_INVALID_REQUEST
#define BILLING_PREFIX "x-anthropic-billing-header:"

typedef struct {
    pv_request *r;
    pv_api_error *err;
} actx;

static pv_status nomem_(actx *c) {
    return pv_api_error_set(c->err, PV_API_ERR_API, "", "out of memory");
}

static bool block_type_lookup(const char *s, pv_api_block_type *out) {
    for (int t = 0; t < PV_API_BLOCK_COUNT; t++)
        if (strcmp(s, pv_api_block_type_str((pv_api_block_type)t)) == 0) {
            *out = (pv_api_block_type)t;
            return true;
        }
    return false;
}

/* Checks that obj[key] is an object whose "type" is one of `types` (NULL-terminated). */
static pv_status check_source(actx *c, const json_t *blk, const char *path,
                              const char *const *types) {
    char p[160];
    bool bad;
    pv_api_pathf(p, sizeof p, "%s.source", path);
    const json_t *src = pv_api_field_typed(blk, "source", p, JSON_OBJECT, true, &bad, c->err);
    if (bad) return PV_ERR_INVALID;
    const char *type;
    pv_api_pathf(p, sizeof p, "%s.source.type", path);
    if (pv_api_field_str(src, "type", p, true, &type, c->err) != PV_OK) return PV_ERR_INVALID;
    for (size_t i = 0; types[i]; i++)
        if (strcmp(type, types[i]) == 0) return PV_OK;
    return pv_api_error_set(c->err, INVALID_, p, "unknown source type \"%s\"", type);
}

/* Validates the image source's own fields (base64: media_type + data; url: url; file:
 * file_id). */
static pv_status check_image(actx *c, const json_t *blk, const char *path) {
    static const char *const types[] = {"base64", "url", "file", NULL};
    if (check_source(c, blk, path, types) != PV_OK) return PV_ERR_INVALID;
    const json_t *src = json_object_get(blk, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    static const struct {
        const char *type, *field;
    } need[] = {{"base64", "media_type"}, {"base64", "data"}, {"url", "url"}, {"file", "file_id"}};
    for (size_t i = 0; i < PV_ARRAY_LEN(need); i++) {
        if (strcmp(type, need[i].type) != 0) continue;
        char p[160];
        const char *s;
        pv_api_pathf(p, sizeof p, "%s.source.%s", path, need[i].field);
        if (pv_api_field_str(src, need[i].field, p, true, &s, c->err) != PV_OK)
            return PV_ERR_INVALID;
    }
    return PV_OK;
}

/* Where each block type may appear: by role, and inside tool_result content. */
static const char *placement_error(pv_api_block_type t, pv_api_role role, bool in_result) {
    if (in_result) {
        if (t == PV_API_BLOCK_TEXT || t == PV_API_BLOCK_IMAGE || t == PV_API_BLOCK_DOCUMENT)
            return NULL;
        return "blocks are not allowed inside tool_result content";
    }
    switch (t) {
    case PV_API_BLOCK_TOOL_USE:
    case PV_API_BLOCK_THINKING:
    case PV_API_BLOCK_REDACTED_THINKING:
        return role == PV_API_ROLE_ASSISTANT ? NULL
                                             : "blocks are only allowed in assistant messages";
    case PV_API_BLOCK_TOOL_RESULT:
        return role == PV_API_ROLE_USER ? NULL : "blocks are only allowed in user messages";
    case PV_API_BLOCK_TEXT:
        return NULL;
    default: /* image, document */
        return role == PV_API_ROLE_SYSTEM ? "blocks are not allowed in system messages" : NULL;
    }
}

static pv_status parse_blocks(actx *c, const json_t *content, const char *path,
                              pv_api_role role, bool in_result, pv_api_block **blocks,
                              size_t *n);

/* Parses one content block (already known to be an object) into b. */
static pv_status parse_block(actx *c, const json_t *blk, const char *path, pv_api_role role,
                             bool in_result, pv_api_block *b) {
    char p[160];
    const char *type, *s;
    pv_api_pathf(p, sizeof p, "%s.type", path);
    if (pv_api_field_str(blk, "type", p, true, &type, c->err) != PV_OK) return PV_ERR_INVALID;
    if (!block_type_lookup(type, &b->type))
        return pv_api_error_set(c->err, INVALID_, p, "unknown block type \"%s\"", type);
    const char *where = placement_error(b->type, role, in_result);
    if (where) return pv_api_error_set(c->err, INVALID_, p, "%s %s", type, where);

    /* Required string fields per type, read into the block (table, not a switch per field). */
    static const struct {
        pv_api_block_type type;
        const char *key;
        size_t off;
        bool required;
    } fields[] = {
        {PV_API_BLOCK_TEXT, "text", offsetof(pv_api_block, text), true},
        {PV_API_BLOCK_TOOL_USE, "id", offsetof(pv_api_block, id), true},
        {PV_API_BLOCK_TOOL_USE, "name", offsetof(pv_api_block, name), true},
        {PV_API_BLOCK_TOOL_RESULT, "tool_use_id", offsetof(pv_api_block, id), true},
        {PV_API_BLOCK_THINKING, "thinking", offsetof(pv_api_block, text), true},
        {PV_API_BLOCK_THINKING, "signature", offsetof(pv_api_block, signature), false},
        {PV_API_BLOCK_REDACTED_THINKING, "data", offsetof(pv_api_block, text), true},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(fields); i++) {
        if (fields[i].type != b->type) continue;
        pv_api_pathf(p, sizeof p, "%s.%s", path, fields[i].key);
        if (pv_api_field_str(blk, fields[i].key, p, fields[i].required, &s, c->err) != PV_OK)
            return PV_ERR_INVALID;
        if (s && !(*(char **)((char *)b + fields[i].off) = strdup(s))) return nomem_(c);
    }

    bool bad;
    switch (b->type) {
    case PV_API_BLOCK_IMAGE:
        if (check_image(c, blk, path) != PV_OK) return PV_ERR_INVALID;
        pv_api_request_note_media(c->r, path, b->type);
        break;
    case PV_API_BLOCK_DOCUMENT: {
        static const char *const types[] = {"base64", "text", "content", "url", "file", NULL};
        if (check_source(c, blk, path, types) != PV_OK) return PV_ERR_INVALID;
        pv_api_request_note_media(c->r, path, b->type);
        break;
    }
    case PV_API_BLOCK_TOOL_USE: {
        pv_api_pathf(p, sizeof p, "%s.input", path);
        const json_t *in = pv_api_field_typed(blk, "input", p, JSON_OBJECT, true, &bad, c->err);
        if (bad) return PV_ERR_INVALID;
        b->input = json_incref((json_t *)in);
        break;
    }
    case PV_API_BLOCK_TOOL_RESULT: {
        pv_api_pathf(p, sizeof p, "%s.is_error", path);
        if (pv_api_field_bool(blk, "is_error", p, &b->is_error, NULL, c->err) != PV_OK)
            return PV_ERR_INVALID;
        const json_t *ct = json_object_get(blk, "content");
        pv_api_pathf(p, sizeof p, "%s.content", path);
        if (ct && !json_is_null(ct) &&
            parse_blocks(c, ct, p, role, true, &b->content, &b->n_content) != PV_OK)
            return PV_ERR_INVALID;
        break;
    }
    default:
        break;
    }
    return PV_OK;
}

/* content: a string (one text block; an empty string gives none) or an array of blocks.
 * On success *blocks and *n own the parsed blocks; on failure they are freed. */
static pv_status parse_blocks(actx *c, const json_t *content, const char *path,
                              pv_api_role role, bool in_result, pv_api_block **blocks,
                              size_t *n) {
    *blocks = NULL;
    *n = 0;
    if (json_is_string(content)) {
        if (json_string_length(content) == 0) return PV_OK;
        pv_api_block *b = pv_api_blocks_push(blocks, n);
        if (!b || !(b->text = strdup(json_string_value(content)))) {
            pv_api_blocks_free(*blocks, *n);
            *blocks = NULL;
            *n = 0;
            return nomem_(c);
        }
        b->type = PV_API_BLOCK_TEXT;
        return PV_OK;
    }
    if (!json_is_array(content))
        return pv_api_error_set(c->err, INVALID_, path,
                                "must be a string or an array of content blocks");
    size_t i;
    const json_t *blk;
    json_array_foreach(content, i, blk) {
        char p[160];
        pv_api_pathf(p, sizeof p, "%s.%zu", path, i);
        pv_status st;
        if (!json_is_object(blk)) {
            st = pv_api_error_set(c->err, INVALID_, p, "must be an object");
        } else {
            pv_api_block *b = pv_api_blocks_push(blocks, n);
            st = b ? parse_block(c, blk, p, role, in_result, b) : nomem_(c);
        }
        if (st != PV_OK) {
            pv_api_blocks_free(*blocks, *n);
            *blocks = NULL;
            *n = 0;
            return st;
        }
    }
    return PV_OK;
}

static pv_status parse_messages(actx *c, const json_t *body) {
    bool bad;
    const json_t *msgs = pv_api_field_typed(body, "messages", "messages", JSON_ARRAY, true, &bad,
                                            c->err);
    if (bad) return PV_ERR_INVALID;
    if (json_array_size(msgs) == 0)
        return pv_api_error_set(c->err, INVALID_, "messages", "at least one message is required");
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        char p[160];
        pv_api_pathf(p, sizeof p, "messages.%zu", i);
        if (!json_is_object(m)) return pv_api_error_set(c->err, INVALID_, p, "must be an object");
        const char *role_s;
        pv_api_pathf(p, sizeof p, "messages.%zu.role", i);
        if (pv_api_field_str(m, "role", p, true, &role_s, c->err) != PV_OK) return PV_ERR_INVALID;
        int role = -1;
        for (int k = 0; k < PV_API_ROLE_COUNT; k++)
            if (strcmp(role_s, pv_api_role_str((pv_api_role)k)) == 0) role = k;
        if (role < 0)
            return pv_api_error_set(c->err, INVALID_, p,
                                    "unknown role \"%s\" (expected \"user\", \"assistant\" or "
                                    "\"system\")",
                                    role_s);
        pv_api_pathf(p, sizeof p, "messages.%zu.content", i);
        const json_t *content = json_object_get(m, "content");
        if (!content || json_is_null(content))
            return pv_api_error_set(c->err, INVALID_, p, "field required");
        pv_api_block *blocks;
        size_t n;
        if (parse_blocks(c, content, p, (pv_api_role)role, false, &blocks, &n) != PV_OK)
            return PV_ERR_INVALID;
        if (pv_api_request_add_message(c->r, (pv_api_role)role, blocks, n) != PV_OK)
            return nomem_(c);
    }
    pv_api_request_finish(c->r);
    return PV_OK;
}

/* system: a string or an array of text blocks, joined with "\n"; block 0 is dropped when it
 * is Claude Code's billing header (it changes on every request). */
static pv_status parse_system(actx *c, const json_t *body) {
    const json_t *sys = json_object_get(body, "system");
    if (!sys || json_is_null(sys)) return PV_OK;
    pv_api_sb sb = {0};
    if (json_is_string(sys)) {
        pv_api_sb_puts(&sb, json_string_value(sys));
    } else if (json_is_array(sys)) {
        size_t i;
        const json_t *blk;
        bool first = true;
        json_array_foreach(sys, i, blk) {
            char p[160];
            pv_api_pathf(p, sizeof p, "system.%zu", i);
            const char *type, *text;
            pv_status st = PV_OK;
            if (!json_is_object(blk)) {
                st = pv_api_error_set(c->err, INVALID_, p, "must be an object");
            } else {
                pv_api_pathf(p, sizeof p, "system.%zu.type", i);
                st = pv_api_field_str(blk, "type", p, true, &type, c->err);
                if (st == PV_OK && strcmp(type, "text") != 0)
                    st = pv_api_error_set(c->err, INVALID_, p,
                                          "must be \"text\" (got \"%s\")", type);
                pv_api_pathf(p, sizeof p, "system.%zu.text", i);
                if (st == PV_OK) st = pv_api_field_str(blk, "text", p, true, &text, c->err);
            }
            if (st != PV_OK) {
                pv_api_sb_free(&sb);
                return st;
            }
            if (i == 0 && strncmp(text, BILLING_PREFIX, strlen(BILLING_PREFIX)) == 0) continue;
            if (!first) pv_api_sb_puts(&sb, "\n");
            pv_api_sb_puts(&sb, text);
            first = false;
        }
    } else {
        return pv_api_error_set(c->err, INVALID_, "system",
                                "must be a string or an array of text blocks");
    }
    char *s = pv_api_sb_take(&sb);
    if (!s) return nomem_(c);
    if (!*s) {
        free(s);
        return PV_OK;
    }
    c->r->system = s;
    return PV_OK;
}

static pv_status parse_tools(actx *c, const json_t *body) {
    bool bad;
    const json_t *tools = pv_api_field_typed(body, "tools", "tools", JSON_ARRAY, false, &bad,
                                             c->err);
    if (bad) return PV_ERR_INVALID;
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        char p[160];
        pv_api_pathf(p, sizeof p, "tools.%zu", i);
        if (!json_is_object(t)) return pv_api_error_set(c->err, INVALID_, p, "must be an object");
        const char *name, *desc, *type;
        pv_api_pathf(p, sizeof p, "tools.%zu.name", i);
        if (pv_api_field_str(t, "name", p, true, &name, c->err) != PV_OK) return PV_ERR_INVALID;
        if (!*name) return pv_api_error_set(c->err, INVALID_, p, "must not be empty");
        pv_api_pathf(p, sizeof p, "tools.%zu.description", i);
        if (pv_api_field_str(t, "description", p, false, &desc, c->err) != PV_OK)
            return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "tools.%zu.type", i);
        if (pv_api_field_str(t, "type", p, false, &type, c->err) != PV_OK) return PV_ERR_INVALID;
        /* Custom tools need a schema; server tools (a type other than "custom") have none. */
        bool custom = !type || strcmp(type, "custom") == 0;
        pv_api_pathf(p, sizeof p, "tools.%zu.input_schema", i);
        const json_t *schema =
            pv_api_field_typed(t, "input_schema", p, JSON_OBJECT, custom, &bad, c->err);
        if (bad) return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "tools.%zu.name", i);
        if (pv_api_request_add_tool(c->r, name, desc, schema, type, p, c->err) != PV_OK)
            return PV_ERR_INVALID;
    }
    return PV_OK;
}

static pv_status parse_tool_choice(actx *c, const json_t *body) {
    bool bad;
    const json_t *tc = pv_api_field_typed(body, "tool_choice", "tool_choice", JSON_OBJECT, false,
                                          &bad, c->err);
    if (bad) return PV_ERR_INVALID;
    if (!tc) return PV_OK;
    const char *type;
    if (pv_api_field_str(tc, "type", "tool_choice.type", true, &type, c->err) != PV_OK)
        return PV_ERR_INVALID;
    static const pv_api_tool_choice all[] = {PV_API_TOOL_CHOICE_AUTO, PV_API_TOOL_CHOICE_ANY,
                                             PV_API_TOOL_CHOICE_TOOL, PV_API_TOOL_CHOICE_NONE};
    size_t k = 0;
    while (k < PV_ARRAY_LEN(all) && strcmp(type, pv_api_tool_choice_str(all[k])) != 0) k++;
    if (k == PV_ARRAY_LEN(all))
        return pv_api_error_set(c->err, INVALID_, "tool_choice.type",
                                "must be one of \"auto\", \"any\", \"tool\", \"none\" (got "
                                "\"%s\")",
                                type);
    c->r->tool_choice = all[k];
    if (pv_api_field_bool(tc, "disable_parallel_tool_use", "tool_choice.disable_parallel_tool_use",
                          &c->r->disable_parallel_tool_use, NULL, c->err) != PV_OK)
        return PV_ERR_INVALID;
    if (all[k] == PV_API_TOOL_CHOICE_ANY || all[k] == PV_API_TOOL_CHOICE_TOOL) {
        if (c->r->n_tools == 0)
            return pv_api_error_set(c->err, INVALID_, "tool_choice",
                                    "type \"%s\" requires tools", type);
    }
    if (all[k] == PV_API_TOOL_CHOICE_TOOL) {
        const char *name;
        if (pv_api_field_str(tc, "name", "tool_choice.name", true, &name, c->err) != PV_OK)
            return PV_ERR_INVALID;
        size_t i = 0;
        while (i < c->r->n_tools && strcmp(c->r->tools[i].name, name) != 0) i++;
        if (i == c->r->n_tools)
            return pv_api_error_set(c->err, INVALID_, "tool_choice.name",
                                    "no tool named \"%s\" in tools", name);
        if (!(c->r->tool_choice_name = strdup(name))) return nomem_(c);
    }
    return PV_OK;
}

static pv_status parse_thinking(actx *c, const json_t *body) {
    bool bad;
    const json_t *th = pv_api_field_typed(body, "thinking", "thinking", JSON_OBJECT, false, &bad,
                                          c->err);
    if (bad) return PV_ERR_INVALID;
    if (!th) return PV_OK;
    const char *type;
    if (pv_api_field_str(th, "type", "thinking.type", true, &type, c->err) != PV_OK)
        return PV_ERR_INVALID;
    static const pv_api_thinking known[] = {PV_API_THINKING_ENABLED, PV_API_THINKING_DISABLED,
                                            PV_API_THINKING_ADAPTIVE};
    c->r->thinking = PV_API_THINKING_OTHER; /* tolerated: future types */
    for (size_t k = 0; k < PV_ARRAY_LEN(known); k++)
        if (strcmp(type, pv_api_thinking_str(known[k])) == 0) c->r->thinking = known[k];
    if (c->r->thinking == PV_API_THINKING_ENABLED)
        return pv_api_field_int(th, "budget_tokens", "thinking.budget_tokens", true, 1, INT64_MAX,
                                &c->r->thinking_budget_tokens, NULL, c->err);
    return PV_OK;
}

pv_status pv_api_anthropic_parse(const json_t *body, bool count_tokens_route, pv_request **out,
                                 pv_api_error *err) {
    *out = NULL;
    pv_request *r = NULL;
    pv_status st = pv_api_request_begin(body, PV_API_ANTHROPIC, &r, err);
    if (st != PV_OK) return st;
    actx c = {r, err};
    bool bad;
    /* max_tokens 0 is accepted as the real API does (a cache-warming call: the answer is
     * empty with stop_reason max_tokens); count_tokens bodies carry none. */
    if (st == PV_OK && !count_tokens_route)
        st = pv_api_field_int(body, "max_tokens", "max_tokens", true, 0, INT64_MAX,
                              &r->max_tokens, &r->has_max_tokens, err);
    if (st == PV_OK) st = parse_system(&c, body);
    if (st == PV_OK) st = parse_messages(&c, body);
    if (st == PV_OK)
        st = pv_api_field_num(body, "temperature", "temperature", 0, 1, &r->temperature,
                              &r->has_temperature, err);
    if (st == PV_OK)
        st = pv_api_field_num(body, "top_p", "top_p", 0, 1, &r->top_p, &r->has_top_p, err);
    if (st == PV_OK)
        st = pv_api_field_int(body, "top_k", "top_k", false, 0, INT64_MAX, &r->top_k,
                              &r->has_top_k, err);
    if (st == PV_OK)
        st = pv_api_parse_stop(r, json_object_get(body, "stop_sequences"), "stop_sequences",
                               false, false, err);
    if (st == PV_OK) st = pv_api_field_bool(body, "stream", "stream", &r->stream, NULL, err);
    if (st == PV_OK) st = parse_tools(&c, body);
    if (st == PV_OK) st = parse_tool_choice(&c, body);
    if (st == PV_OK) st = parse_thinking(&c, body);
    if (st == PV_OK) {
        pv_api_field_typed(body, "metadata", "metadata", JSON_OBJECT, false, &bad, err);
        if (bad) st = PV_ERR_INVALID;
    }
    if (st == PV_OK) {
        const char *uid;
        st = pv_api_field_str(json_object_get(body, "metadata"), "user_id", "metadata.user_id",
                              false, &uid, err);
    }
    if (st != PV_OK) {
        pv_request_free(r);
        return st;
    }
    *out = r;
    return PV_OK;
}
