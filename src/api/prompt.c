/* prompt.c — the fallback prompt format used until chat templates land (docs/api.md), and
 * the one tokenization path that generation and count_tokens share, so count_tokens always
 * counts exactly what the model is fed. Two styles from one table: PLAIN, a transcript
 * ("User: ...\n\nAssistant:") that a base model such as stories260K can continue, and
 * CHATML (<|im_start|>role\n...<|im_end|>\n) chosen when the vocabulary has those tokens.
 * Tools are listed as JSON in the system part; tool_use / tool_result are written as
 * XML-like text; thinking blocks of earlier turns are left out (as Anthropic does). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "../tokenizer/pv_tokenizer.h"

typedef struct {
    const char *name;
    const char *label[PV_API_ROLE_COUNT]; /* indexed by pv_api_role */
    const char *open_pre, *open_post, *close;
    bool trim_gen;      /* drop the trailing space of the generation prompt */
    bool parse_special; /* tokenize with special-token matching */
} prompt_style;

/* PLAIN ends the generation prompt with "Assistant:" (no space): SentencePiece and byte-level
 * BPE vocabularies both carry the space as the start of the next word's token. */
static const prompt_style styles[] = {
    [PV_API_PROMPT_PLAIN] = {"plain",
                             {[PV_API_ROLE_USER] = "User",
                              [PV_API_ROLE_ASSISTANT] = "Assistant",
                              [PV_API_ROLE_SYSTEM] = "System"},
                             "", ": ", "\n\n", true, false},
    [PV_API_PROMPT_CHATML] = {"chatml",
                              {[PV_API_ROLE_USER] = "user",
                               [PV_API_ROLE_ASSISTANT] = "assistant",
                               [PV_API_ROLE_SYSTEM] = "system"},
                              "<|im_start|>", "\n", "<|im_end|>\n", false, true},
};

/* The tool_choice line: text before and after the forced tool's name (TOOL only). */
static const struct {
    const char *before, *after;
} tool_choice_hint[] = {
    [PV_API_TOOL_CHOICE_AUTO] = {NULL, NULL},
    [PV_API_TOOL_CHOICE_ANY] = {"You must call one of the tools.", NULL},
    [PV_API_TOOL_CHOICE_TOOL] = {"You must call the tool \"", "\"."},
    [PV_API_TOOL_CHOICE_NONE] = {"Do not call any tool.", NULL},
};

const char *pv_api_prompt_style_str(pv_api_prompt_style s) {
    return (size_t)s < PV_ARRAY_LEN(styles) ? styles[s].name : "unknown";
}

bool pv_api_prompt_parse_special(pv_api_prompt_style s) {
    return (size_t)s < PV_ARRAY_LEN(styles) && styles[s].parse_special;
}

pv_api_prompt_style pv_api_prompt_style_for(const pv_tokenizer *tok) {
    static const char a[] = "<|im_start|>", b[] = "<|im_end|>";
    if (tok && pv_tokenizer_find(tok, a, sizeof a - 1) >= 0 &&
        pv_tokenizer_find(tok, b, sizeof b - 1) >= 0)
        return PV_API_PROMPT_CHATML;
    return PV_API_PROMPT_PLAIN;
}

/* Appends compact JSON with sorted keys (deterministic whatever the client's key order);
 * a string (an OpenAI arguments string that was not JSON) is written raw. */
static void put_json(pv_api_sb *sb, const json_t *v) {
    if (!v) {
        pv_api_sb_puts(sb, "{}");
        return;
    }
    if (json_is_string(v)) {
        pv_api_sb_append(sb, json_string_value(v), json_string_length(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s) {
        sb->failed = true;
        return;
    }
    pv_api_sb_puts(sb, s);
    free(s);
}

/* Renders a block list, blocks separated by "\n"; blocks that render empty are skipped. */
static void put_blocks(pv_api_sb *sb, const pv_api_block *b, size_t n) {
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        size_t before = sb->len;
        if (!first) pv_api_sb_puts(sb, "\n");
        size_t start = sb->len;
        switch (b[i].type) {
        case PV_API_BLOCK_TEXT:
            pv_api_sb_puts(sb, b[i].text ? b[i].text : "");
            break;
        case PV_API_BLOCK_IMAGE:
        case PV_API_BLOCK_DOCUMENT: /* never reaches a text-only model: the route rejects it */
            pv_api_sb_puts(sb, b[i].type == PV_API_BLOCK_IMAGE ? "[image]" : "[document]");
            break;
        case PV_API_BLOCK_TOOL_USE:
            pv_api_sb_puts(sb, "<tool_use id=\"");
            pv_api_sb_puts(sb, b[i].id);
            pv_api_sb_puts(sb, "\" name=\"");
            pv_api_sb_puts(sb, b[i].name);
            pv_api_sb_puts(sb, "\">");
            put_json(sb, b[i].input);
            pv_api_sb_puts(sb, "</tool_use>");
            break;
        case PV_API_BLOCK_TOOL_RESULT:
            pv_api_sb_puts(sb, "<tool_result tool_use_id=\"");
            pv_api_sb_puts(sb, b[i].id);
            pv_api_sb_puts(sb, b[i].is_error ? "\" is_error=\"true\">" : "\">");
            put_blocks(sb, b[i].content, b[i].n_content);
            pv_api_sb_puts(sb, "</tool_result>");
            break;
        default: /* thinking / redacted_thinking of earlier turns: not shown to the model */
            break;
        }
        if (sb->len == start && !sb->failed) {
            sb->len = before; /* nothing rendered: drop the separator too */
            if (sb->buf) sb->buf[before] = '\0';
        } else {
            first = false;
        }
    }
}

/* The system part: system text, then the tool list and the tool_choice hint. */
static void put_system(pv_api_sb *sb, const pv_request *r) {
    if (r->system) pv_api_sb_puts(sb, r->system);
    if (r->n_tools) {
        if (sb->len) pv_api_sb_puts(sb, "\n\n");
        pv_api_sb_puts(sb, "# Tools\nTo call a tool, write <tool_use id=\"ID\" name=\"NAME\">"
                           "JSON input</tool_use>. Available tools (JSON):\n");
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < r->n_tools; i++) {
            const pv_api_tool *t = &r->tools[i];
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(t->name));
            if (t->description) json_object_set_new(o, "description", json_string(t->description));
            if (t->input_schema) json_object_set(o, "input_schema", t->input_schema);
            if (t->type) json_object_set_new(o, "type", json_string(t->type));
            json_array_append_new(arr, o);
        }
        if (!arr) sb->failed = true;
        put_json(sb, arr);
        json_decref(arr);
        if ((size_t)r->tool_choice < PV_ARRAY_LEN(tool_choice_hint) &&
            tool_choice_hint[r->tool_choice].before) {
            pv_api_sb_puts(sb, "\n");
            pv_api_sb_puts(sb, tool_choice_hint[r->tool_choice].before);
            if (tool_choice_hint[r->tool_choice].after) {
                pv_api_sb_puts(sb, r->tool_choice_name ? r->tool_choice_name : "");
                pv_api_sb_puts(sb, tool_choice_hint[r->tool_choice].after);
            }
        }
    }
}

static void put_open(pv_api_sb *sb, const prompt_style *st, pv_api_role role) {
    pv_api_sb_puts(sb, st->open_pre);
    pv_api_sb_puts(sb, st->label[role]);
    pv_api_sb_puts(sb, st->open_post);
}

pv_status pv_api_render_prompt(const pv_request *r, pv_api_prompt_style style, char **text,
                               pv_error *err) {
    *text = NULL;
    if (!r || (size_t)style >= PV_ARRAY_LEN(styles))
        return pv_error_set(err, PV_ERR_INVALID, "render_prompt: bad arguments");
    const prompt_style *st = &styles[style];
    pv_api_sb sb = {0}, part = {0};
    put_system(&part, r);
    if (part.failed) sb.failed = true;
    if (part.len) {
        put_open(&sb, st, PV_API_ROLE_SYSTEM);
        pv_api_sb_append(&sb, part.buf, part.len);
        pv_api_sb_puts(&sb, st->close);
    }
    pv_api_sb_free(&part);
    bool continued = false;
    for (size_t i = 0; i < r->n_messages; i++) {
        const pv_api_message *m = &r->messages[i];
        pv_api_sb body = {0};
        put_blocks(&body, m->blocks, m->n_blocks);
        if (body.failed) sb.failed = true;
        if (body.len) {
            put_open(&sb, st, m->role);
            pv_api_sb_append(&sb, body.buf, body.len);
            /* A final assistant turn is a prefill: left open for the model to continue. */
            if (i + 1 == r->n_messages && r->prefill) continued = true;
            else pv_api_sb_puts(&sb, st->close);
        }
        pv_api_sb_free(&body);
    }
    if (!continued) {
        put_open(&sb, st, PV_API_ROLE_ASSISTANT);
        if (st->trim_gen && sb.len && sb.buf[sb.len - 1] == ' ') sb.buf[--sb.len] = '\0';
    }
    *text = pv_api_sb_take(&sb);
    return *text ? PV_OK : pv_error_set(err, PV_ERR_NOMEM, "render_prompt: out of memory");
}

pv_status pv_api_prompt_tokens(const pv_request *r, const pv_tokenizer *tok, int32_t **ids,
                               size_t *n_ids, pv_error *err) {
    *ids = NULL;
    *n_ids = 0;
    pv_api_prompt_style style = pv_api_prompt_style_for(tok);
    char *text;
    pv_status st = pv_api_render_prompt(r, style, &text, err);
    if (st != PV_OK) return st;
    st = pv_tokenizer_encode(tok, text, strlen(text), true, pv_api_prompt_parse_special(style),
                             ids, n_ids, err);
    free(text);
    return st;
}

pv_status pv_api_count_tokens(const pv_request *r, const pv_tokenizer *tok, int *n,
                              pv_error *err) {
    int32_t *ids;
    size_t n_ids;
    *n = 0;
    pv_status st = pv_api_prompt_tokens(r, tok, &ids, &n_ids, err);
    if (st != PV_OK) return st;
    free(ids);
    if (n_ids > INT_MAX) return pv_error_set(err, PV_ERR_RANGE, "count_tokens: prompt too long");
    *n = (int)n_ids;
    return PV_OK;
}
