/* parse_openai.c — validates an OpenAI chat-completions body (/v1/chat/completions) and
 * converts it into the same pv_request the Anthropic parser builds: leading system/developer
 * messages become the system text, later ones stay in place; assistant tool_calls become
 * tool_use blocks (arguments parsed from their JSON string); tool messages become user
 * messages holding tool_result blocks. Paths use OpenAI's style ("messages[2].content") and
 * go into the error's param. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

#define INVALID_ PV_API_ERR_INVALID_REQUEST

typedef struct {
    pv_request *r;
    pv_api_error *err;
} octx;

static pv_status nomem_(octx *c) {
    return pv_api_error_set(c->err, PV_API_ERR_API, "", "out of memory");
}

/* OpenAI roles -> internal roles; "tool" is handled separately (tool_result blocks). */
static const struct {
    const char *name;
    pv_api_role role;
    bool tool;
} roles[] = {
    {"system", PV_API_ROLE_SYSTEM, false},   {"developer", PV_API_ROLE_SYSTEM, false},
    {"user", PV_API_ROLE_USER, false},       {"assistant", PV_API_ROLE_ASSISTANT, false},
    {"tool", PV_API_ROLE_USER, true},
};

/* Content parts: type name -> block type. "refusal" (assistant history) is text. */
static const struct {
    const char *type;
    const char *field; /* the part's text field, or the media object's name */
    pv_api_block_type block;
} parts[] = {
    {"text", "text", PV_API_BLOCK_TEXT},
    {"refusal", "refusal", PV_API_BLOCK_TEXT},
    {"image_url", "image_url", PV_API_BLOCK_IMAGE},
    {"file", "file", PV_API_BLOCK_DOCUMENT},
};

/* content: string or array of parts; appended to *blocks. text_only: tool and system
 * messages take only text parts. */
static pv_status parse_content(octx *c, const json_t *content, const char *path, bool text_only,
                               pv_api_block **blocks, size_t *n) {
    if (json_is_string(content)) {
        if (json_string_length(content) == 0) return PV_OK;
        pv_api_block *b = pv_api_blocks_push(blocks, n);
        if (!b || !(b->text = strdup(json_string_value(content)))) return nomem_(c);
        b->type = PV_API_BLOCK_TEXT;
        return PV_OK;
    }
    if (!json_is_array(content))
        return pv_api_error_set(c->err, INVALID_, path,
                                "must be a string or an array of content parts");
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        char p[160];
        pv_api_pathf(p, sizeof p, "%s[%zu]", path, i);
        if (!json_is_object(part))
            return pv_api_error_set(c->err, INVALID_, p, "must be an object");
        const char *type;
        pv_api_pathf(p, sizeof p, "%s[%zu].type", path, i);
        if (pv_api_field_str(part, "type", p, true, &type, c->err) != PV_OK) return PV_ERR_INVALID;
        size_t k = 0;
        while (k < PV_ARRAY_LEN(parts) && strcmp(type, parts[k].type) != 0) k++;
        if (k == PV_ARRAY_LEN(parts))
            return pv_api_error_set(c->err, INVALID_, p, "unknown content part type \"%s\"", type);
        if (text_only && parts[k].block != PV_API_BLOCK_TEXT)
            return pv_api_error_set(c->err, INVALID_, p,
                                    "%s parts are not allowed in this message", type);
        pv_api_pathf(p, sizeof p, "%s[%zu].%s", path, i, parts[k].field);
        pv_api_block *b = pv_api_blocks_push(blocks, n);
        if (!b) return nomem_(c);
        b->type = parts[k].block;
        if (parts[k].block == PV_API_BLOCK_TEXT) {
            const char *s;
            if (pv_api_field_str(part, parts[k].field, p, true, &s, c->err) != PV_OK)
                return PV_ERR_INVALID;
            if (!(b->text = strdup(s))) return nomem_(c);
        } else {
            bool bad;
            pv_api_field_typed(part, parts[k].field, p, JSON_OBJECT, true, &bad, c->err);
            if (bad) return PV_ERR_INVALID;
            char mp[160];
            pv_api_pathf(mp, sizeof mp, "%s[%zu]", path, i);
            pv_api_request_note_media(c->r, mp, parts[k].block);
        }
    }
    return PV_OK;
}

static pv_status parse_tool_calls(octx *c, const json_t *m, size_t mi, pv_api_block **blocks,
                                  size_t *n) {
    char p[160];
    bool bad;
    pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls", mi);
    const json_t *calls = pv_api_field_typed(m, "tool_calls", p, JSON_ARRAY, false, &bad, c->err);
    if (bad) return PV_ERR_INVALID;
    size_t i;
    const json_t *tc;
    json_array_foreach(calls, i, tc) {
        pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls[%zu]", mi, i);
        if (!json_is_object(tc)) return pv_api_error_set(c->err, INVALID_, p, "must be an object");
        const char *id, *type, *name, *args;
        pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls[%zu].id", mi, i);
        if (pv_api_field_str(tc, "id", p, true, &id, c->err) != PV_OK) return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls[%zu].type", mi, i);
        if (pv_api_field_str(tc, "type", p, false, &type, c->err) != PV_OK) return PV_ERR_INVALID;
        if (type && strcmp(type, "function") != 0)
            return pv_api_error_set(c->err, INVALID_, p, "must be \"function\"");
        pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls[%zu].function", mi, i);
        const json_t *fn = pv_api_field_typed(tc, "function", p, JSON_OBJECT, true, &bad, c->err);
        if (bad) return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls[%zu].function.name", mi, i);
        if (pv_api_field_str(fn, "name", p, true, &name, c->err) != PV_OK) return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "messages[%zu].tool_calls[%zu].function.arguments", mi, i);
        if (pv_api_field_str(fn, "arguments", p, true, &args, c->err) != PV_OK)
            return PV_ERR_INVALID;
        pv_api_block *b = pv_api_blocks_push(blocks, n);
        if (!b) return nomem_(c);
        b->type = PV_API_BLOCK_TOOL_USE;
        /* OpenAI does not validate arguments; keep a non-object as the raw string. */
        json_t *in = json_loads(args, JSON_DECODE_ANY, NULL);
        if (in && !json_is_object(in)) {
            json_decref(in);
            in = NULL;
        }
        b->input = in ? in : json_string(args);
        if (!(b->id = strdup(id)) || !(b->name = strdup(name)) || !b->input) return nomem_(c);
    }
    return PV_OK;
}

static pv_status parse_message(octx *c, const json_t *m, size_t i, pv_api_sb *system,
                               bool *in_prefix) {
    char p[160];
    pv_api_pathf(p, sizeof p, "messages[%zu]", i);
    if (!json_is_object(m)) return pv_api_error_set(c->err, INVALID_, p, "must be an object");
    const char *role_s;
    pv_api_pathf(p, sizeof p, "messages[%zu].role", i);
    if (pv_api_field_str(m, "role", p, true, &role_s, c->err) != PV_OK) return PV_ERR_INVALID;
    size_t k = 0;
    while (k < PV_ARRAY_LEN(roles) && strcmp(role_s, roles[k].name) != 0) k++;
    if (k == PV_ARRAY_LEN(roles))
        return pv_api_error_set(c->err, INVALID_, p,
                                "unknown role \"%s\" (expected \"system\", \"developer\", "
                                "\"user\", \"assistant\" or \"tool\")",
                                role_s);
    pv_api_role role = roles[k].role;
    bool assistant = role == PV_API_ROLE_ASSISTANT;
    const json_t *content = json_object_get(m, "content");
    pv_api_pathf(p, sizeof p, "messages[%zu].content", i);
    bool has_calls = json_array_size(json_object_get(m, "tool_calls")) > 0;
    if ((!content || json_is_null(content)) && !(assistant && has_calls))
        return pv_api_error_set(c->err, INVALID_, p, "field required");

    pv_api_block *blocks = NULL;
    size_t n = 0;
    pv_status st = PV_OK;
    if (roles[k].tool) {
        const char *id;
        char ip[160];
        snprintf(ip, sizeof ip, "messages[%zu].tool_call_id", i);
        st = pv_api_field_str(m, "tool_call_id", ip, true, &id, c->err);
        pv_api_block *b = st == PV_OK ? pv_api_blocks_push(&blocks, &n) : NULL;
        if (st == PV_OK && !b) st = nomem_(c);
        if (st == PV_OK) {
            b->type = PV_API_BLOCK_TOOL_RESULT;
            if (!(b->id = strdup(id))) st = nomem_(c);
        }
        if (st == PV_OK) st = parse_content(c, content, p, true, &b->content, &b->n_content);
    } else {
        if (content && !json_is_null(content))
            st = parse_content(c, content, p, role == PV_API_ROLE_SYSTEM, &blocks, &n);
        if (st == PV_OK && assistant) st = parse_tool_calls(c, m, i, &blocks, &n);
    }
    if (st != PV_OK) {
        pv_api_blocks_free(blocks, n);
        return st;
    }
    /* Leading system messages form the system text; later ones stay in place. */
    if (role == PV_API_ROLE_SYSTEM && *in_prefix) {
        for (size_t b = 0; b < n; b++) {
            if (system->len) pv_api_sb_puts(system, "\n");
            pv_api_sb_puts(system, blocks[b].text);
        }
        pv_api_blocks_free(blocks, n);
        return PV_OK;
    }
    *in_prefix = false;
    return pv_api_request_add_message(c->r, role, blocks, n) == PV_OK ? PV_OK : nomem_(c);
}

static pv_status parse_tools(octx *c, const json_t *body) {
    bool bad;
    const json_t *tools = pv_api_field_typed(body, "tools", "tools", JSON_ARRAY, false, &bad,
                                             c->err);
    if (bad) return PV_ERR_INVALID;
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        char p[160];
        const char *type, *name, *desc;
        pv_api_pathf(p, sizeof p, "tools[%zu]", i);
        if (!json_is_object(t)) return pv_api_error_set(c->err, INVALID_, p, "must be an object");
        pv_api_pathf(p, sizeof p, "tools[%zu].type", i);
        if (pv_api_field_str(t, "type", p, true, &type, c->err) != PV_OK) return PV_ERR_INVALID;
        if (strcmp(type, "function") != 0)
            return pv_api_error_set(c->err, INVALID_, p, "must be \"function\"");
        pv_api_pathf(p, sizeof p, "tools[%zu].function", i);
        const json_t *fn = pv_api_field_typed(t, "function", p, JSON_OBJECT, true, &bad, c->err);
        if (bad) return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "tools[%zu].function.name", i);
        if (pv_api_field_str(fn, "name", p, true, &name, c->err) != PV_OK) return PV_ERR_INVALID;
        if (!*name) return pv_api_error_set(c->err, INVALID_, p, "must not be empty");
        pv_api_pathf(p, sizeof p, "tools[%zu].function.description", i);
        if (pv_api_field_str(fn, "description", p, false, &desc, c->err) != PV_OK)
            return PV_ERR_INVALID;
        pv_api_pathf(p, sizeof p, "tools[%zu].function.parameters", i);
        const json_t *params =
            pv_api_field_typed(fn, "parameters", p, JSON_OBJECT, false, &bad, c->err);
        if (bad) return PV_ERR_INVALID;
        json_t *empty = params ? NULL : json_pack("{s:s,s:{}}", "type", "object", "properties");
        pv_api_pathf(p, sizeof p, "tools[%zu].function.name", i);
        pv_status st = pv_api_request_add_tool(c->r, name, desc, params ? params : empty, NULL,
                                               p, c->err);
        json_decref(empty);
        if (st != PV_OK) return st;
    }
    return PV_OK;
}

static pv_status parse_tool_choice(octx *c, const json_t *body) {
    const json_t *tc = json_object_get(body, "tool_choice");
    if (!tc || json_is_null(tc)) return PV_OK;
    static const struct {
        const char *name;
        pv_api_tool_choice choice;
    } modes[] = {{"none", PV_API_TOOL_CHOICE_NONE},
                 {"auto", PV_API_TOOL_CHOICE_AUTO},
                 {"required", PV_API_TOOL_CHOICE_ANY}};
    if (json_is_string(tc)) {
        for (size_t k = 0; k < PV_ARRAY_LEN(modes); k++)
            if (strcmp(json_string_value(tc), modes[k].name) == 0) {
                c->r->tool_choice = modes[k].choice;
                if (modes[k].choice == PV_API_TOOL_CHOICE_ANY && c->r->n_tools == 0)
                    return pv_api_error_set(c->err, INVALID_, "tool_choice",
                                            "\"required\" requires tools");
                return PV_OK;
            }
        return pv_api_error_set(c->err, INVALID_, "tool_choice",
                                "must be \"none\", \"auto\", \"required\" or "
                                "{\"type\":\"function\",\"function\":{\"name\":...}}");
    }
    if (!json_is_object(tc))
        return pv_api_error_set(c->err, INVALID_, "tool_choice", "must be a string or an object");
    const char *type, *name;
    if (pv_api_field_str(tc, "type", "tool_choice.type", true, &type, c->err) != PV_OK)
        return PV_ERR_INVALID;
    if (strcmp(type, "function") != 0)
        return pv_api_error_set(c->err, INVALID_, "tool_choice.type", "must be \"function\"");
    bool bad;
    const json_t *fn = pv_api_field_typed(tc, "function", "tool_choice.function", JSON_OBJECT,
                                          true, &bad, c->err);
    if (bad) return PV_ERR_INVALID;
    if (pv_api_field_str(fn, "name", "tool_choice.function.name", true, &name, c->err) != PV_OK)
        return PV_ERR_INVALID;
    size_t i = 0;
    while (i < c->r->n_tools && strcmp(c->r->tools[i].name, name) != 0) i++;
    if (i == c->r->n_tools)
        return pv_api_error_set(c->err, INVALID_, "tool_choice.function.name",
                                "no tool named \"%s\" in tools", name);
    c->r->tool_choice = PV_API_TOOL_CHOICE_TOOL;
    return (c->r->tool_choice_name = strdup(name)) ? PV_OK : nomem_(c);
}

static pv_status parse_response_format(octx *c, const json_t *body) {
    bool bad;
    const json_t *rf = pv_api_field_typed(body, "response_format", "response_format", JSON_OBJECT,
                                          false, &bad, c->err);
    if (bad) return PV_ERR_INVALID;
    if (!rf) return PV_OK;
    const char *type;
    if (pv_api_field_str(rf, "type", "response_format.type", true, &type, c->err) != PV_OK)
        return PV_ERR_INVALID;
    if (strcmp(type, "text") && strcmp(type, "json_object") && strcmp(type, "json_schema"))
        return pv_api_error_set(c->err, INVALID_, "response_format.type",
                                "must be \"text\", \"json_object\" or \"json_schema\"");
    c->r->response_format = json_incref((json_t *)rf);
    return PV_OK;
}

/* Top-level scalar fields, in one pass. */
static pv_status parse_scalars(octx *c, const json_t *body) {
    pv_request *r = c->r;
    pv_api_error *e = c->err;
    int64_t mt = 0, mct = 0, seed = 0, n = 1;
    bool has_mt = false, has_mct = false, has_n = false, par = true, has_par = false;
    if (pv_api_field_int(body, "max_tokens", "max_tokens", false, 1, INT64_MAX, &mt, &has_mt, e) ||
        pv_api_field_int(body, "max_completion_tokens", "max_completion_tokens", false, 1,
                         INT64_MAX, &mct, &has_mct, e) ||
        pv_api_field_num(body, "temperature", "temperature", 0, 2, &r->temperature,
                         &r->has_temperature, e) ||
        pv_api_field_num(body, "top_p", "top_p", 0, 1, &r->top_p, &r->has_top_p, e) ||
        pv_api_field_int(body, "top_k", "top_k", false, 0, INT64_MAX, &r->top_k, &r->has_top_k,
                         e) ||
        pv_api_field_num(body, "presence_penalty", "presence_penalty", -2, 2,
                         &r->presence_penalty, &r->has_presence_penalty, e) ||
        pv_api_field_num(body, "frequency_penalty", "frequency_penalty", -2, 2,
                         &r->frequency_penalty, &r->has_frequency_penalty, e) ||
        pv_api_field_int(body, "seed", "seed", false, INT64_MIN, INT64_MAX, &seed, &r->has_seed,
                         e) ||
        pv_api_field_bool(body, "stream", "stream", &r->stream, NULL, e) ||
        pv_api_field_bool(body, "parallel_tool_calls", "parallel_tool_calls", &par, &has_par, e) ||
        pv_api_parse_stop(r, json_object_get(body, "stop"), "stop", true, true, e))
        return PV_ERR_INVALID;
    /* One choice per request: the scheduler runs one sequence per request. */
    if (pv_api_field_int(body, "n", "n", false, INT64_MIN, INT64_MAX, &n, &has_n, e))
        return PV_ERR_INVALID;
    if (has_n && n != 1)
        return pv_api_error_set(e, INVALID_, "n", "only n = 1 is supported");
    /* max_completion_tokens is the newer name; it wins when both are sent. */
    r->has_max_tokens = has_mt || has_mct;
    r->max_tokens = has_mct ? mct : mt;
    r->seed = (uint64_t)seed;
    r->disable_parallel_tool_use = has_par && !par;
    bool bad;
    const json_t *so = pv_api_field_typed(body, "stream_options", "stream_options", JSON_OBJECT,
                                          false, &bad, e);
    if (bad) return PV_ERR_INVALID;
    return pv_api_field_bool(so, "include_usage", "stream_options.include_usage",
                             &r->stream_include_usage, NULL, e);
}

pv_status pv_api_openai_parse(const json_t *body, pv_request **out, pv_api_error *err) {
    *out = NULL;
    pv_request *r = NULL;
    pv_status st = pv_api_request_begin(body, PV_API_OPENAI, &r, err);
    if (st != PV_OK) return st;
    octx c = {r, err};
    bool bad;
    const json_t *msgs = NULL;
    if (st == PV_OK) {
        msgs = pv_api_field_typed(body, "messages", "messages", JSON_ARRAY, true, &bad, err);
        if (bad) st = PV_ERR_INVALID;
        else if (json_array_size(msgs) == 0)
            st = pv_api_error_set(err, INVALID_, "messages", "at least one message is required");
    }
    pv_api_sb system = {0};
    bool in_prefix = true;
    for (size_t i = 0; st == PV_OK && i < json_array_size(msgs); i++)
        st = parse_message(&c, json_array_get(msgs, i), i, &system, &in_prefix);
    if (st == PV_OK && system.len) {
        if (!(r->system = pv_api_sb_take(&system))) st = nomem_(&c);
    }
    pv_api_sb_free(&system);
    pv_api_request_finish(r);
    if (st == PV_OK) st = parse_scalars(&c, body);
    if (st == PV_OK) st = parse_tools(&c, body);
    if (st == PV_OK) st = parse_tool_choice(&c, body);
    if (st == PV_OK) st = parse_response_format(&c, body);
    if (st != PV_OK) {
        pv_request_free(r);
        return st;
    }
    *out = r;
    return PV_OK;
}
