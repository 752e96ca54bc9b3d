/* cmd_template.c — `pensieve template`: renders a chat template with a JSON context and
 * prints the text exactly (nothing added, no trailing newline), for debugging templates and
 * for the jinja2 oracle test. The template comes from a model's GGUF metadata
 * (tokenizer.chat_template; the file is only mapped, no tensor is read; a model without one
 * gets the server's ChatML fallback) or from a file. Two more views of what the server does:
 * --print-template prints the template in use, and --request renders an API request body
 * (Anthropic, or OpenAI with --openai) through the server's own mapping (docs/chat.md). On a
 * template error the message goes to stderr as "pensieve template: <message>" (for
 * raise_exception, the message exactly as the template raised it) and the exit code is 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_cli.h"
#include "api/pv_api.h"
#include "template/pv_template.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static void usage(FILE *f) {
    fprintf(f, "usage: pensieve template (-m MODEL.gguf | --template FILE) --context FILE.json\n"
               "       pensieve template -m MODEL.gguf --request BODY.json [--openai]\n"
               "       pensieve template -m MODEL.gguf --print-template\n"
               "  -m, --model FILE    read the template from the model's tokenizer.chat_template\n"
               "                      (none there: the server's ChatML fallback)\n"
               "  --template FILE     read the template from FILE\n"
               "  --context FILE      JSON object: the whole template context (messages, tools,\n"
               "                      add_generation_prompt, bos_token, eos_token, ...)\n"
               "  --request FILE      an Anthropic Messages body (OpenAI chat body with --openai):\n"
               "                      print the prompt the server would feed the model\n"
               "  --print-template    print the template the server would use\n");
}

/* Returns the template source (malloc'ed, caller frees) from the model or the file, or NULL
 * after printing why. */
static char *load_template(const char *model, const char *file, size_t *len) {
    if (file) {
        char *s = pv_cli_read_file(file, len);
        if (!s) fprintf(stderr, "pensieve template: cannot read '%s'\n", file);
        return s;
    }
    pv_weights *w = NULL;
    pv_error err = {0};
    if (pv_weights_open(model, &w, &err) != PV_OK) {
        fprintf(stderr, "pensieve template: %s\n", err.msg);
        return NULL;
    }
    char *s = pv_meta_get_strdup(w, "tokenizer.chat_template");
    pv_weights_free(w);
    if (!s) {
        fprintf(stderr, "pensieve template: note: '%s' has no tokenizer.chat_template; using the "
                        "ChatML fallback\n", model);
        s = strdup(pv_api_chat_fallback_template());
        if (!s) return NULL;
    }
    *len = strlen(s);
    return s;
}

/* --request: the model's chat format renders an API body as the server does. */
static int render_request(const char *model, const char *path, bool openai) {
    pv_weights *w = NULL;
    pv_tokenizer *tok = NULL;
    pv_api_chat *chat = NULL;
    pv_request *r = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = 1;
    pv_error err = {0};
    json_error_t jerr;
    json_t *body = json_load_file(path, 0, &jerr);
    if (!body) {
        fprintf(stderr, "pensieve template: %s: %s\n", path, jerr.text);
        return 1;
    }
    if (pv_weights_open(model, &w, &err) != PV_OK || pv_tokenizer_init(w, &tok, &err) != PV_OK) {
        fprintf(stderr, "pensieve template: %s\n", err.msg);
        goto out;
    }
    if (pv_api_chat_init_model(w, tok, &chat, &err) != PV_OK) {
        fprintf(stderr, "pensieve template: %s\n", err.msg);
        goto out;
    }
    pv_api_error e;
    memset(&e, 0, sizeof e);
    pv_status st = openai ? pv_api_openai_parse(body, &r, &e) : pv_api_anthropic_parse(body, false, &r, &e);
    if (st == PV_OK) st = pv_api_chat_render(chat, r, &text, &len, &e);
    if (st != PV_OK) {
        fprintf(stderr, "pensieve template: %s\n", e.message);
        goto out;
    }
    rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
out:
    free(text);
    pv_request_free(r);
    pv_api_chat_free(chat);
    pv_tokenizer_free(tok);
    pv_weights_free(w);
    json_decref(body);
    return rc;
}

int pv_cmd_template(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *ctx_path = NULL, *request = NULL;
    bool print_template = false, openai = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = pv_cli_value("template", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--template")) {
            if (!(file = pv_cli_value("template", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--context")) {
            if (!(ctx_path = pv_cli_value("template", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--request")) {
            if (!(request = pv_cli_value("template", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--openai")) {
            openai = true;
        } else if (!strcmp(a, "--print-template")) {
            print_template = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "pensieve template: unknown argument '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (request || print_template) {
        if (!model) {
            fprintf(stderr, "pensieve template: --request and --print-template need -m MODEL\n");
            return 1;
        }
        if (request) return render_request(model, request, openai);
        size_t n = 0;
        char *src = load_template(model, NULL, &n);
        int ok = src && fwrite(src, 1, n, stdout) == n && fflush(stdout) == 0;
        free(src);
        return ok ? 0 : 1;
    }
    if ((!model) == (!file) || !ctx_path) {
        fprintf(stderr, "pensieve template: give one of -m/--template, and --context\n");
        usage(stderr);
        return 1;
    }
    json_error_t jerr;
    json_t *ctx = json_load_file(ctx_path, 0, &jerr);
    if (!ctx || !json_is_object(ctx)) {
        fprintf(stderr, "pensieve template: %s: %s\n", ctx_path,
                ctx ? "the context must be a JSON object" : jerr.text);
        json_decref(ctx);
        return 1;
    }
    size_t len = 0;
    char *src = load_template(model, file, &len);
    if (!src) {
        json_decref(ctx);
        return 1;
    }
    pv_template *t = NULL;
    pv_error err = {0};
    char *out = NULL;
    size_t out_len = 0;
    int rc = 0;
    if (pv_template_parse(src, len, &t, &err) != PV_OK ||
        pv_template_render(t, ctx, &out, &out_len, &err) != PV_OK) {
        fprintf(stderr, "pensieve template: %s\n", err.msg);
        rc = 1;
    } else if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) {
        fprintf(stderr, "pensieve template: write error\n");
        rc = 1;
    }
    free(out);
    pv_template_free(t);
    free(src);
    json_decref(ctx);
    return rc;
}
