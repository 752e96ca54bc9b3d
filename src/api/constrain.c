/* constrain.c — which requests get constrained decoding, and the grammar they get. A client
 * that demands a tool (Anthropic tool_choice any / tool, OpenAI "required" / a named
 * function) gets a grammar for exactly one call in the model's own tool-call syntax (the
 * src/toolcall syntax table, so the parser accepts what the grammar forces) whose arguments
 * follow the tool's input_schema; an OpenAI response_format json_schema / json_object gets a
 * grammar for that JSON value. The grammar text is GBNF for src/grammar, compiled by the
 * scheduler at submit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "../grammar/pv_grammar.h"

/* Appends s as a GBNF string literal. */
static void put_literal(pv_api_sb *sb, const char *s) {
    pv_api_sb_puts(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': pv_api_sb_puts(sb, "\\\""); break;
        case '\\': pv_api_sb_puts(sb, "\\\\"); break;
        case '\n': pv_api_sb_puts(sb, "\\n"); break;
        case '\r': pv_api_sb_puts(sb, "\\r"); break;
        case '\t': pv_api_sb_puts(sb, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\x%02X", *p);
                pv_api_sb_puts(sb, esc);
            } else {
                pv_api_sb_append(sb, (const char *)p, 1); /* UTF-8 passes through */
            }
        }
    }
    pv_api_sb_puts(sb, "\"");
}

/* Appends one call alternative for tool t (its schema rules named "t<i>"). */
static pv_status put_call(pv_api_sb *sb, pv_api_sb *rules, const pv_api_chat *c,
                          const pv_api_tool *t, size_t i, pv_api_error *e) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "t%zu", i);
    char *args = NULL;
    pv_error err = {0};
    if (pv_grammar_schema_to_gbnf(t->input_schema, prefix, &args, &err) != PV_OK)
        return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "tools",
                                "tool \"%s\": input_schema cannot be enforced: %s", t->name, err.msg);
    pv_api_sb_puts(rules, args);
    pv_api_sb_puts(rules, "\n");
    free(args);
    char *h, *tl;
    if (!pv_toolcall_call_affixes(pv_api_chat_toolcall_format(c), t->name, &h, &tl))
        return pv_api_error_set(e, PV_API_ERR_API, "", "out of memory");
    put_literal(sb, h);
    pv_api_sb_puts(sb, " ");
    pv_api_sb_puts(sb, prefix);
    pv_api_sb_puts(sb, " ");
    put_literal(sb, tl);
    free(h);
    free(tl);
    return PV_OK;
}

/* The schema of an OpenAI response_format, or NULL when it asks for nothing (text). */
static pv_status response_format_schema(const json_t *rf, json_t **schema, pv_api_error *e) {
    *schema = NULL;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type || !strcmp(type, "text")) return PV_OK;
    if (!strcmp(type, "json_object")) {
        *schema = json_pack("{s:s}", "type", "object");
        return *schema ? PV_OK : pv_api_error_set(e, PV_API_ERR_API, "", "out of memory");
    }
    if (!strcmp(type, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *s = json_object_get(js, "schema");
        if (!json_is_object(s) && !json_is_true(s))
            return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "response_format.json_schema.schema",
                                    "must be a JSON Schema object");
        *schema = json_incref(s);
        return PV_OK;
    }
    return pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "response_format.type",
                            "must be one of \"text\", \"json_object\", \"json_schema\"");
}

bool pv_api_forces_tool(const pv_request *r) {
    if (r->tool_choice != PV_API_TOOL_CHOICE_ANY && r->tool_choice != PV_API_TOOL_CHOICE_TOOL)
        return false;
    for (size_t i = 0; i < r->n_tools; i++)
        if (r->tools[i].input_schema) return true;
    return false;
}

pv_status pv_api_constraint_gbnf(const pv_api_chat *c, const pv_request *r, char **gbnf,
                                 pv_api_error *e) {
    *gbnf = NULL;
    pv_api_sb sb = {0}, rules = {0};
    pv_status st = PV_OK;
    if (pv_api_forces_tool(r)) {
        pv_api_sb_puts(&sb, "root ::= ");
        size_t n_alt = 0;
        for (size_t i = 0; st == PV_OK && i < r->n_tools; i++) {
            const pv_api_tool *t = &r->tools[i];
            if (!t->input_schema) continue; /* server tools are not ours to call */
            if (r->tool_choice == PV_API_TOOL_CHOICE_TOOL &&
                (!r->tool_choice_name || strcmp(r->tool_choice_name, t->name)))
                continue;
            if (n_alt++) pv_api_sb_puts(&sb, " | ");
            st = put_call(&sb, &rules, c, t, i, e);
        }
        if (st == PV_OK && n_alt == 0)
            st = pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "tool_choice.name",
                                  "tool \"%s\" is not among the tools of this request",
                                  r->tool_choice_name ? r->tool_choice_name : "");
    } else if (r->response_format) {
        json_t *schema = NULL;
        st = response_format_schema(r->response_format, &schema, e);
        if (st == PV_OK && schema) {
            char *g = NULL;
            pv_error err = {0};
            if (pv_grammar_schema_to_gbnf(schema, "rf", &g, &err) != PV_OK) {
                st = pv_api_error_set(e, PV_API_ERR_INVALID_REQUEST, "response_format",
                                      "schema cannot be enforced: %s", err.msg);
            } else {
                pv_api_sb_puts(&sb, "root ::= rf");
                pv_api_sb_puts(&rules, g);
                free(g);
            }
        }
        json_decref(schema);
    }
    if (st != PV_OK || sb.len == 0) {
        pv_api_sb_free(&sb);
        pv_api_sb_free(&rules);
        return st;
    }
    pv_api_sb_puts(&sb, "\n");
    pv_api_sb_append(&sb, rules.buf ? rules.buf : "", rules.len);
    pv_api_sb_free(&rules);
    *gbnf = pv_api_sb_take(&sb);
    return *gbnf ? PV_OK : pv_api_error_set(e, PV_API_ERR_API, "", "out of memory");
}
