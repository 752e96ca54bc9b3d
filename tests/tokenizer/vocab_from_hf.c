/* vocab_from_hf.c — test tool: writes a vocabulary-only GGUF (no tensors) from a Hugging
 * Face tokenizer.json (+ optional tokenizer_config.json) through pv_tokenizer_import_hf.
 * usage: vocab_from_hf TOKENIZER_JSON CONFIG_JSON|- OUT.gguf [GENERAL_NAME [PRE]]
 * PRE overrides tokenizer.ggml.pre (tests/tokenizer/pretok_families.js uses it to run one
 * vocabulary through every pre-tokenizer family). */
#include <stdio.h>
#include <string.h>

#include "gguf/pv_gguf.h"
#include "tokenizer/pv_tokenizer.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON CONFIG_JSON|- OUT.gguf [GENERAL_NAME [PRE]]\n",
                argv[0]);
        return 2;
    }
    const char *cfg = strcmp(argv[2], "-") ? argv[2] : NULL;
    pv_gguf_writer *g = pv_gguf_writer_new();
    if (!g) return 1;
    pv_gguf_writer_set_str(g, "general.architecture", "llama");
    if (argc > 4) pv_gguf_writer_set_str(g, "general.name", argv[4]);
    pv_error err = {0};
    int32_t n_vocab = 0;
    pv_status st = pv_tokenizer_import_hf(argv[1], cfg, g, &n_vocab, &err);
    if (st == PV_OK && argc > 5) pv_gguf_writer_set_str(g, "tokenizer.ggml.pre", argv[5]);
    if (st == PV_OK) st = pv_gguf_writer_write(g, argv[3], &err);
    pv_gguf_writer_free(g);
    if (st != PV_OK) {
        fprintf(stderr, "vocab_from_hf: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "vocab_from_hf: %s: %d tokens\n", argv[3], n_vocab);
    return 0;
}
