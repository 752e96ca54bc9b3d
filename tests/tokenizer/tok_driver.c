/* tok_driver.c — test driver for the oracle comparison (tests/tokenizer/oracle.js): loads
 * a GGUF vocabulary once and tokenizes a file through the library, either as one text
 * ("whole") or line by line ("lines": each line without its '\n', one output line of ids
 * per input line). Flags as `pensieve tokenize`: --no-bos, --special.
 * usage: tok_driver whole|lines MODEL.gguf FILE [--no-bos] [--special] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static int print_ids(const pv_tokenizer *t, const char *s, size_t n, bool add, bool special) {
    int32_t *ids = NULL;
    size_t k = 0;
    pv_error err = {0};
    if (pv_tokenizer_encode(t, s, n, add, special, &ids, &k, &err) != PV_OK) {
        fprintf(stderr, "tok_driver: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < k; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s whole|lines MODEL.gguf FILE [--no-bos] [--special]\n", argv[0]);
        return 2;
    }
    bool add = true, special = false;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--no-bos"))
            add = false;
        else if (!strcmp(argv[i], "--special"))
            special = true;
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        fprintf(stderr, "tok_driver: cannot open %s\n", argv[3]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(buf);
        return 1;
    }
    fclose(f);
    pv_error err = {0};
    pv_weights *w = NULL;
    pv_tokenizer *t = NULL;
    int rc = 1;
    if (pv_weights_open(argv[2], &w, &err) != PV_OK || pv_tokenizer_init(w, &t, &err) != PV_OK) {
        fprintf(stderr, "tok_driver: %s\n", err.msg);
        goto out;
    }
    if (!strcmp(argv[1], "whole")) {
        rc = print_ids(t, buf, (size_t)sz, add, special);
    } else {
        rc = 0;
        size_t start = 0;
        for (size_t i = 0; i <= (size_t)sz && !rc; i++) {
            if (i == (size_t)sz || buf[i] == '\n') {
                if (i == (size_t)sz && start == i) break; /* no empty last line after final \n */
                rc = print_ids(t, buf + start, i - start, add, special);
                start = i + 1;
            }
        }
    }
out:
    pv_tokenizer_free(t);
    pv_weights_free(w);
    free(buf);
    return rc;
}
