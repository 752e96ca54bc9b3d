/* cmd_tokenize.c — `pensieve tokenize`: prints the token ids of a text, space-separated on
 * one line. Works on vocabulary-only files (no tensors needed). The text is an argument or
 * a file's exact bytes (--file, newlines included). --no-bos: no BOS/EOS at all;
 * --special: special tokens written in the text are parsed. Errors go to stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_cli.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static void usage(FILE *f) {
    fprintf(f, "usage: pensieve tokenize -m FILE [--no-bos] [--special] (TEXT | --file PATH)\n"
               "  -m, --model FILE   model or vocabulary-only GGUF file\n"
               "  --file PATH        tokenize the exact bytes of PATH\n"
               "  --no-bos           add no BOS/EOS tokens\n"
               "  --special          parse special tokens written in the text\n");
}

int pv_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL;
    bool add_special = true, parse_special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = pv_cli_value("tokenize", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--file")) {
            if (!(file = pv_cli_value("tokenize", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--no-bos")) {
            add_special = false;
        } else if (!strcmp(a, "--special")) {
            parse_special = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1] != '\0' && !text) {
            fprintf(stderr, "pensieve tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 1;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr, "pensieve tokenize: more than one TEXT argument\n");
            return 1;
        }
    }
    if (!model) {
        fprintf(stderr, "pensieve tokenize: -m FILE is required\n");
        usage(stderr);
        return 1;
    }
    if ((text != NULL) == (file != NULL)) {
        fprintf(stderr, "pensieve tokenize: give either TEXT or --file PATH\n");
        usage(stderr);
        return 1;
    }
    char *buf = NULL;
    size_t len = 0;
    if (file) {
        buf = pv_cli_read_file(file, &len);
        if (!buf) {
            fprintf(stderr, "pensieve tokenize: cannot read '%s'\n", file);
            return 1;
        }
    } else {
        len = strlen(text);
    }

    int rc = 1;
    pv_error err = {0};
    pv_weights *w = NULL;
    pv_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (pv_weights_open(model, &w, &err) != PV_OK || pv_tokenizer_init(w, &tok, &err) != PV_OK ||
        pv_tokenizer_encode(tok, file ? buf : text, len, add_special, parse_special, &ids, &n,
                            &err) != PV_OK) {
        fprintf(stderr, "pensieve tokenize: %s\n", err.msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(ids);
    pv_tokenizer_free(tok);
    pv_weights_free(w);
    free(buf);
    return rc;
}
