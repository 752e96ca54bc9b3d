/* chat.c — from an Anthropic or OpenAI request to the exact prompt the model was trained
 * on. A model's chat format (pv_api_chat) is its own Jinja chat template (GGUF
 * `tokenizer.chat_template`) or, when it has none, the documented ChatML fallback below; the
 * tool-call syntax its output is parsed with follows from that template (src/toolcall). The
 * request is mapped to the template context Hugging Face's apply_chat_template would get
 * (docs/chat.md has the mapping), rendered by src/template, and tokenized with special-token
 * parsing. Generation and count_tokens both come through pv_api_prompt_tokens, so
 * count_tokens counts exactly what the model is fed, tools included. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "../template/pv_template.h"
#include "../tokenizer/pv_tokenizer.h"
#include "../weights/pv_weights.h"

/* The fallback for models without a template: ChatML with Hermes-style tool calls, the
 * format of Qwen2.5's template (the most widely imitated one), so that tools still work and
 * the output parser (HERMES) matches what the prompt teaches. */
static const char chatml_fallback[] =
    "{%- if tools %}\n"
    "{{- '<|im_start|>system\\n' }}\n"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}\n"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}\n"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}\n"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": "
    "<function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}\n"
    "{%- elif messages[0].role == 'system' %}\n"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "{%- if message.role == 'system' and loop.first %}\n"
    "{%- elif message.role == 'assistant' %}\n"
    "{{- '<|im_start|>assistant\\n' + message.content }}\n"
    "{%- for tc in message.tool_calls | default([]) %}\n"
    "{%- if not loop.first or message.content %}{{- '\\n' }}{%- endif %}\n"
    "{{- '<tool_call>\\n{\"name\": \"' + tc.function.name + '\", \"arguments\": ' + "
    "(tc.function.arguments | tojson) + '}\\n</tool_call>' }}\n"
    "{%- endfor %}\n"
    "{{- '<|im_end|>\\n' }}\n"
    "{%- elif message.role == 'tool' %}\n"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}"
    "{%- endif %}\n"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}\n"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}"
    "{%- endif %}\n"
    "{%- else %}\n"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";

struct pv_api_chat {
    pv_template *tmpl;       /* owned */
    char *source;            /* owned copy of the template text */
    bool fallback;           /* the model had no template */
    char *bos, *eos;         /* token texts for bos_token / eos_token ("" when none) */
    pv_toolcall_format toolcall;
    /* What the template does with tools, found by rendering probes at init (minja's method):
     * a template that ignores one of them gets it written into the messages instead. */
    bool renders_system, renders_tools, renders_tool_calls, renders_tool_results;
};

const char *pv_api_chat_fallback_template(void) { return chatml_fallback; }

static bool chat_has_token(void *ud, const char *text) {
    return pv_tokenizer_find(ud, text, strlen(text)) >= 0;
}

static char *token_text_dup(const pv_tokenizer *tok, int32_t id) {
    pv_str s = id >= 0 ? pv_tokenizer_token_text(tok, id) : (pv_str){"", 0};
    char *out = malloc(s.len + 1);
    if (out) {
        memcpy(out, s.ptr, s.len);
        out[s.len] = '\0';
    }
    return out;
}

/* Renders ctx_json (quotes written as ') with c's template and says whether `marker` shows
 * in the output; a template that raises or fails counts as not rendering it. */
static bool probe_renders(const pv_api_chat *c, const char *ctx_json, const char *marker) {
    char *txt = strdup(ctx_json);
    if (!txt) return false;
    for (char *p = txt; *p; p++)
        if (*p == '\'') *p = '"';
    json_t *ctx = json_loads(txt, 0, NULL);
    free(txt);
    if (!ctx) return false;
    json_object_set_new(ctx, "bos_token", json_string(c->bos));
    json_object_set_new(ctx, "eos_token", json_string(c->eos));
    char *out = NULL;
    size_t len = 0;
    pv_error err = {0};
    bool seen = pv_template_render(c->tmpl, ctx, &out, &len, &err) == PV_OK && strstr(out, marker);
    free(out);
    json_decref(ctx);
    return seen;
}

static void chat_probe(pv_api_chat *c) {
    c->renders_system = probe_renders(
        c, "{'messages':[{'role':'system','content':'pv_probe_system'},{'role':'user','content':"
           "'x'}],'add_generation_prompt':true}",
        "pv_probe_system");
    c->renders_tools = probe_renders(
        c, "{'messages':[{'role':'user','content':'x'}],'add_generation_prompt':true,'tools':[{"
           "'type':'function','function':{'name':'pv_probe_tool','description':'d','parameters':"
           "{'type':'object','properties':{}}}}]}",
        "pv_probe_tool");
    static const char call[] =
        "{'role':'assistant','content':'','tool_calls':[{'id':'call_pv1','type':'function',"
        "'function':{'name':'pv_probe_call','arguments':{'pv_probe_arg':1}}}]}";
    char ctx[1024];
    snprintf(ctx, sizeof ctx,
             "{'messages':[{'role':'user','content':'x'},%s,{'role':'user','content':'y'}],"
             "'add_generation_prompt':true}",
             call);
    c->renders_tool_calls = probe_renders(c, ctx, "pv_probe_call");
    snprintf(ctx, sizeof ctx,
             "{'messages':[{'role':'user','content':'x'},%s,{'role':'tool','tool_call_id':"
             "'call_pv1','name':'pv_probe_call','content':'pv_probe_result'}],"
             "'add_generation_prompt':true}",
             call);
    c->renders_tool_results = probe_renders(c, ctx, "pv_probe_result");
}

pv_status pv_api_chat_init(const char *template_src, const pv_tokenizer *tok, pv_api_chat **out,
                           pv_error *err) {
    *out = NULL;
    pv_api_chat *c = calloc(1, sizeof *c);
    if (!c) return pv_error_set(err, PV_ERR_NOMEM, "chat: out of memory");
    c->fallback = !template_src || !*template_src;
    const char *src = c->fallback ? chatml_fallback : template_src;
    c->source = strdup(src);
    c->bos = token_text_dup(tok, pv_tokenizer_bos(tok));
    c->eos = token_text_dup(tok, pv_tokenizer_eos(tok));
    if (!c->source || !c->bos || !c->eos) {
        pv_api_chat_free(c);
        return pv_error_set(err, PV_ERR_NOMEM, "chat: out of memory");
    }
    pv_status st = pv_template_parse(src, strlen(src), &c->tmpl, err);
    if (st != PV_OK) {
        pv_api_chat_free(c);
        return st;
    }
    c->toolcall = pv_toolcall_format_detect_ex(src, chat_has_token, (void *)tok);
    chat_probe(c);
    *out = c;
    return PV_OK;
}

pv_status pv_api_chat_init_model(const pv_weights *w, const pv_tokenizer *tok, pv_api_chat **out,
                                 pv_error *err) {
    char *tmpl = pv_meta_get_strdup(w, "tokenizer.chat_template");
    pv_status st = pv_api_chat_init(tmpl, tok, out, err);
    free(tmpl);
    if (st != PV_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        pv_error_set(err, st, "the model's chat template: %s", why);
    }
    return st;
}

void pv_api_chat_free(pv_api_chat *c) {
    if (!c) return;
    pv_template_free(c->tmpl);
    free(c->source);
    free(c->bos);
    free(c->eos);
    free(c);
}

bool pv_api_chat_is_fallback(const pv_api_chat *c) { return c->fallback; }
const char *pv_api_chat_template_source(const pv_api_chat *c) { return c->source; }
pv_toolcall_format pv_api_chat_toolcall_format(const pv_api_chat *c) { return c->toolcall; }

/* Text blocks of a list joined with "\n" (other block types skipped). */
static void put_text_blocks(pv_api_sb *sb, const pv_api_block *b, size_t n) {
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (b[i].type != PV_API_BLOCK_TEXT || !b[i].text || !*b[i].text) continue;
        if (!first) pv_api_sb_puts(sb, "\n");
        pv_api_sb_puts(sb, b[i].text);
        first = false;
    }
}

static json_t *text_of_blocks(const pv_api_block *b, size_t n, const char *prefix) {
    pv_api_sb sb = {0};
    if (prefix) pv_api_sb_puts(&sb, prefix);
    put_text_blocks(&sb, b, n);
    char *s = pv_api_sb_take(&sb);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j;
}

/* The name of the tool a tool_use id belongs to, searching the assistant turns before
 * message index `upto` (NULL when the id is unknown). */
static const char *tool_name_for(const pv_request *r, size_t upto, const char *id) {
    for (size_t i = upto; i-- > 0;) {
        const pv_api_message *m = &r->messages[i];
        if (m->role != PV_API_ROLE_ASSISTANT) continue;
        for (size_t k = 0; k < m->n_blocks; k++)
            if (m->blocks[k].type == PV_API_BLOCK_TOOL_USE && m->blocks[k].id && id &&
                !strcmp(m->blocks[k].id, id))
                return m->blocks[k].name;
    }
    return NULL;
}

/* A tool_use input as the templates expect `arguments`: an object (an OpenAI arguments
 * string that was not JSON stays a string). */
static json_t *tool_args(const pv_api_block *b) {
    return b->input ? json_incref(b->input) : json_object();
}

/* One call in the chat format's own syntax (what the model itself would write). */
static void put_call_text(pv_api_sb *sb, const pv_api_chat *c, const char *name, const json_t *args) {
    char *head, *tail;
    char *a = args ? json_dumps(args, JSON_ENCODE_ANY) : strdup("{}");
    if (!a || !pv_toolcall_call_affixes(c->toolcall, name, &head, &tail)) {
        sb->failed = true;
        free(a);
        return;
    }
    pv_api_sb_puts(sb, head);
    pv_api_sb_puts(sb, a);
    pv_api_sb_puts(sb, tail);
    free(head);
    free(tail);
    free(a);
}

/* For a template that ignores `tools`: the tool list and how to call, for the system
 * message. */
static void put_tools_text(pv_api_sb *sb, const pv_api_chat *c, const json_t *tools) {
    pv_api_sb_puts(sb, "# Tools\n\nYou may call one of the tools below. To call a tool, reply with "
                       "only this, nothing before it:\n");
    put_call_text(sb, c, "TOOL_NAME", NULL);
    pv_api_sb_puts(sb, "\nwith the name of the tool and a JSON object of its arguments.\n\nTools (JSON):");
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        char *d = json_dumps(json_object_get(t, "function"), 0);
        if (!d) {
            sb->failed = true;
            return;
        }
        pv_api_sb_puts(sb, "\n");
        pv_api_sb_puts(sb, d);
        free(d);
    }
}

/* Appends the messages of one request turn to `msgs` (see docs/chat.md). */
static bool add_turn(json_t *msgs, const pv_api_chat *c, const pv_request *r, size_t idx) {
    const pv_api_message *m = &r->messages[idx];
    bool ok = true;
    if (m->role == PV_API_ROLE_ASSISTANT && !c->renders_tool_calls) {
        /* the template shows no tool_calls: write the calls into the text, as the model
         * would have */
        pv_api_sb sb = {0};
        put_text_blocks(&sb, m->blocks, m->n_blocks);
        const char *sep = NULL;
        for (size_t k = 0; k < m->n_blocks; k++) {
            const pv_api_block *b = &m->blocks[k];
            if (b->type != PV_API_BLOCK_TOOL_USE) continue;
            if (sep) pv_api_sb_puts(&sb, sep);
            else if (sb.len) pv_api_sb_puts(&sb, "\n");
            put_call_text(&sb, c, b->name, b->input);
            sep = pv_toolcall_syntax_get(c->toolcall)->call_sep;
        }
        char *text = pv_api_sb_take(&sb);
        ok = text && !json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant",
                                                             "content", text));
        free(text);
        return ok;
    }
    if (m->role == PV_API_ROLE_USER && !c->renders_tool_results) {
        /* the template knows no tool messages: the results become the user's text */
        pv_api_sb sb = {0};
        for (size_t k = 0; k < m->n_blocks; k++) {
            const pv_api_block *b = &m->blocks[k];
            if (b->type != PV_API_BLOCK_TOOL_RESULT) continue;
            const char *name = tool_name_for(r, idx, b->id);
            if (sb.len) pv_api_sb_puts(&sb, "\n");
            pv_api_sb_puts(&sb, "<tool_response name=\"");
            pv_api_sb_puts(&sb, name ? name : "");
            pv_api_sb_puts(&sb, "\">\n");
            if (b->is_error) pv_api_sb_puts(&sb, "Error: ");
            put_text_blocks(&sb, b->content, b->n_content);
            pv_api_sb_puts(&sb, "\n</tool_response>");
        }
        pv_api_sb user = {0};
        put_text_blocks(&user, m->blocks, m->n_blocks);
        if (sb.len && user.len) pv_api_sb_puts(&sb, "\n");
        pv_api_sb_append(&sb, user.buf ? user.buf : "", user.len);
        if (user.failed) sb.failed = true;
        pv_api_sb_free(&user);
        char *text = pv_api_sb_take(&sb);
        ok = text && (!*text || !json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user",
                                                                       "content", text)));
        free(text);
        return ok;
    }
    if (m->role == PV_API_ROLE_ASSISTANT) {
        json_t *calls = json_array();
        for (size_t k = 0; k < m->n_blocks && calls; k++) {
            const pv_api_block *b = &m->blocks[k];
            if (b->type != PV_API_BLOCK_TOOL_USE) continue;
            ok &= !json_array_append_new(
                calls, json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", b->id ? b->id : "", "type",
                                 "function", "function", "name", b->name ? b->name : "",
                                 "arguments", tool_args(b)));
        }
        json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                                text_of_blocks(m->blocks, m->n_blocks, NULL));
        if (!msg || !calls) {
            json_decref(msg);
            json_decref(calls);
            return false;
        }
        if (json_array_size(calls)) ok &= !json_object_set(msg, "tool_calls", calls);
        json_decref(calls);
        return ok && !json_array_append_new(msgs, msg);
    }
    /* user (system turns were folded into the system message): tool results first, each a
     * "tool" message, then the remaining text as one user message */
    bool has_text = false;
    for (size_t k = 0; k < m->n_blocks; k++) {
        const pv_api_block *b = &m->blocks[k];
        if (b->type == PV_API_BLOCK_TOOL_RESULT) {
            const char *name = tool_name_for(r, idx, b->id);
            json_t *t = json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                  b->id ? b->id : "", "content",
                                  text_of_blocks(b->content, b->n_content,
                                                 b->is_error ? "Error: " : NULL));
            if (t && name) json_object_set_new(t, "name", json_string(name));
            ok &= t && !json_array_append_new(msgs, t);
        } else if (b->type == PV_API_BLOCK_TEXT && b->text && *b->text) {
            has_text = true;
        }
    }
    if (has_text)
        ok &= !json_array_append_new(
            msgs, json_pack("{s:s, s:o}", "role", "user", "content",
                            text_of_blocks(m->blocks, m->n_blocks, NULL)));
    return ok;
}

/* The request's tools in the OpenAI function format (new reference), or NULL when none
 * apply: server tools without a schema and tool_choice none leave them out (the model is not
 * to call them). *oom set when out of memory. */
static json_t *context_tools(const pv_request *r, bool *oom) {
    *oom = false;
    if (!r->n_tools || r->tool_choice == PV_API_TOOL_CHOICE_NONE) return NULL;
    json_t *tools = json_array();
    for (size_t i = 0; tools && i < r->n_tools; i++) {
        const pv_api_tool *t = &r->tools[i];
        if (!t->input_schema) continue;
        json_t *fn = json_pack("{s:s}", "name", t->name);
        if (fn && t->description) json_object_set_new(fn, "description", json_string(t->description));
        if (fn) json_object_set(fn, "parameters", t->input_schema);
        if (!fn || json_array_append_new(tools, json_pack("{s:s, s:o}", "type", "function", "function", fn)))
            *oom = true;
    }
    if (!tools) *oom = true;
    if (!tools || !json_array_size(tools)) {
        json_decref(tools);
        return NULL;
    }
    return tools;
}

/* Puts `text` + blank line before the content of the first user message (a new first
 * message when there is none). */
static bool prepend_to_first_user(json_t *msgs, const char *text) {
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role || strcmp(role, "user")) continue;
        const char *old = json_string_value(json_object_get(m, "content"));
        pv_api_sb sb = {0};
        pv_api_sb_puts(&sb, text);
        if (old && *old) {
            pv_api_sb_puts(&sb, "\n\n");
            pv_api_sb_puts(&sb, old);
        }
        char *joined = pv_api_sb_take(&sb);
        bool ok = joined && !json_object_set_new(m, "content", json_string(joined));
        free(joined);
        return ok;
    }
    return !json_array_insert_new(msgs, 0, json_pack("{s:s, s:s}", "role", "user", "content", text));
}

json_t *pv_api_chat_context(const pv_api_chat *c, const pv_request *r) {
    bool oom = false;
    json_t *ctx = json_object(), *msgs = json_array(), *tools = context_tools(r, &oom);
    if (!ctx || !msgs || oom) goto fail;
    /* One leading system message: the system field, then the text of system turns inside
     * the conversation (Claude Code sends one, often empty) — most templates only accept a
     * system message first. */
    pv_api_sb sys = {0};
    if (r->system) pv_api_sb_puts(&sys, r->system);
    for (size_t i = 0; i < r->n_messages; i++) {
        if (r->messages[i].role != PV_API_ROLE_SYSTEM) continue;
        pv_api_sb part = {0};
        put_text_blocks(&part, r->messages[i].blocks, r->messages[i].n_blocks);
        if (part.len) {
            if (sys.len) pv_api_sb_puts(&sys, "\n\n");
            pv_api_sb_append(&sys, part.buf, part.len);
        }
        if (part.failed) sys.failed = true;
        pv_api_sb_free(&part);
    }
    if (tools && !c->renders_tools) { /* a template blind to tools: tell the model here */
        if (sys.len) pv_api_sb_puts(&sys, "\n\n");
        put_tools_text(&sys, c, tools);
    }
    if (sys.failed) {
        pv_api_sb_free(&sys);
        goto fail;
    }
    if (sys.len && c->renders_system &&
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", sys.buf))) {
        pv_api_sb_free(&sys);
        goto fail;
    }
    for (size_t i = 0; i < r->n_messages; i++)
        if (r->messages[i].role != PV_API_ROLE_SYSTEM && !add_turn(msgs, c, r, i)) {
            pv_api_sb_free(&sys);
            goto fail;
        }
    /* a template that drops system messages (the April 2024 Phi-3 one): the system text goes
     * in front of the first user message instead, where the model will see it */
    if (sys.len && !c->renders_system && !prepend_to_first_user(msgs, sys.buf)) {
        pv_api_sb_free(&sys);
        goto fail;
    }
    pv_api_sb_free(&sys);
    if (json_object_set_new(ctx, "messages", msgs)) {
        msgs = NULL;
        goto fail;
    }
    msgs = NULL;
    if (tools) {
        json_object_set_new(ctx, "tools", tools);
        tools = NULL;
    }
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(!r->prefill));
    json_object_set_new(ctx, "bos_token", json_string(c->bos));
    json_object_set_new(ctx, "eos_token", json_string(c->eos));
    /* Qwen3-style reasoning switch: on only when the client asked for thinking */
    json_object_set_new(ctx, "enable_thinking",
                        json_boolean(r->thinking == PV_API_THINKING_ENABLED ||
                                     r->thinking == PV_API_THINKING_ADAPTIVE));
    return ctx;
fail:
    json_decref(tools);
    json_decref(msgs);
    json_decref(ctx);
    return NULL;
}

/* The text of the final (prefill) assistant turn, or NULL. */
static const char *prefill_text(const json_t *ctx) {
    const json_t *msgs = json_object_get(ctx, "messages");
    size_t n = json_array_size(msgs);
    if (!n) return NULL;
    const json_t *last = json_array_get(msgs, n - 1);
    if (strcmp(json_string_value(json_object_get(last, "role")) ? json_string_value(json_object_get(last, "role")) : "", "assistant"))
        return NULL;
    return json_string_value(json_object_get(last, "content"));
}

/* Last occurrence of needle in hay[0..n) or NULL. */
static const char *find_last(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (!m || m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (!memcmp(hay + i, needle, m)) return hay + i;
    return NULL;
}

pv_status pv_api_chat_render(const pv_api_chat *c, const pv_request *r, char **text, size_t *len,
                             pv_api_error *e) {
    *text = NULL;
    *len = 0;
    json_t *ctx = pv_api_chat_context(c, r);
    if (!ctx) return pv_api_error_set(e, PV_API_ERR_API, "", "chat template: out of memory");
    pv_error err = {0};
    pv_status st = pv_template_render(c->tmpl, ctx, text, len, &err);
    if (st == PV_ERR_INVALID) { /* raise_exception: the template refuses this conversation */
        json_decref(ctx);
        return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "", "%s", err.msg);
    }
    if (st != PV_OK) {
        json_decref(ctx);
        return pv_api_error_set(e, PV_API_ERR_API, "", "chat template failed: %s", err.msg);
    }
    /* A prefill is continued, not closed: like HF's continue_final_message, cut the render
     * right after the last occurrence of the final message's text (the template closed the
     * turn after it). */
    if (r->prefill) {
        const char *p = prefill_text(ctx);
        const char *at = p && *p ? find_last(*text, *len, p) : NULL;
        if (!at) {
            json_decref(ctx);
            free(*text);
            *text = NULL;
            return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "messages",
                                    "the final assistant message cannot be continued with this "
                                    "model's chat template (its text is not in the rendered prompt)");
        }
        *len = (size_t)(at - *text) + strlen(p);
        (*text)[*len] = '\0';
    }
    json_decref(ctx);
    return PV_OK;
}

pv_status pv_api_prompt_tokens(const pv_request *r, const pv_api_chat *c, const pv_tokenizer *tok,
                               int32_t **ids, size_t *n_ids, pv_api_error *e) {
    *ids = NULL;
    *n_ids = 0;
    char *text;
    size_t len;
    pv_status st = pv_api_chat_render(c, r, &text, &len, e);
    if (st != PV_OK) return st;
    /* Templates write special tokens (and usually BOS) as text: encode with special-token
     * parsing and without automatic BOS, then add BOS only if the model wants one and the
     * template did not write it — never two. */
    int32_t *raw = NULL;
    size_t n = 0;
    pv_error err = {0};
    st = pv_tokenizer_encode(tok, text, len, false, true, &raw, &n, &err);
    free(text);
    if (st != PV_OK) return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "", "%s", err.msg);
    int32_t bos = pv_tokenizer_bos(tok);
    bool add_bos = pv_tokenizer_add_bos(tok) && bos >= 0 && (n == 0 || raw[0] != bos);
    if (add_bos) {
        int32_t *with = malloc((n + 1) * sizeof *with);
        if (!with) {
            free(raw);
            return pv_api_error_set(e, PV_API_ERR_API, "", "out of memory");
        }
        with[0] = bos;
        if (n) memcpy(with + 1, raw, n * sizeof *raw);
        free(raw);
        raw = with;
        n++;
    }
    *ids = raw;
    *n_ids = n;
    return PV_OK;
}

pv_status pv_api_count_tokens(const pv_request *r, const pv_api_chat *c, const pv_tokenizer *tok,
                              int *n, pv_api_error *e) {
    int32_t *ids;
    size_t n_ids;
    *n = 0;
    pv_status st = pv_api_prompt_tokens(r, c, tok, &ids, &n_ids, e);
    if (st != PV_OK) return st;
    free(ids);
    if (n_ids > INT_MAX) return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "", "prompt too long");
    *n = (int)n_ids;
    return PV_OK;
}
