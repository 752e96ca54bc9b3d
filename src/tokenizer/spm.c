/* spm.c — SentencePiece-style encoding (model "llama"), as llama.cpp's
 * llm_tokenizer_spm_session: the fragment gets a "▁" prefix when asked (start of text or
 * after a special token, add_space_prefix), every space becomes "▁", the text is split into
 * UTF-8 characters and adjacent symbols are merged while their concatenation is a token,
 * highest score first; symbols that are not tokens fall back to <0xXX> byte tokens.
 *
 * "SPM-BPE": when the vocabulary also carries tokenizer.ggml.merges (our tokenizer.json
 * importer writes them for BPE models with byte_fallback — Mistral, Gemma 3), the merge
 * order comes from the merge ranks instead of the scores, and characters that are not
 * tokens are split into byte tokens before merging. That is exactly Hugging Face's BPE with
 * byte_fallback, which scores alone cannot always reproduce. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

pv_status pv_spm_encode(const pv_tokenizer *t, const char *text, size_t len, bool prefix_space,
                        pv_ivec *out, pv_error *err) {
    /* escaped text: at most 3 bytes per input byte, plus the prefix */
    if (len > (UINT32_MAX - 3) / 3)
        return pv_error_set(err, PV_ERR_RANGE, "tokenize: text too long");
    char *buf = malloc(len * 3 + 3);
    if (!buf) return pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
    size_t n = 0;
    static const char k_sp[3] = {(char)0xE2, (char)0x96, (char)0x81};
    if (prefix_space) {
        memcpy(buf, k_sp, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + n, k_sp, 3);
            n += 3;
        } else {
            buf[n++] = text[i];
        }
    }
    /* one symbol per character (or per byte for SPM-BPE characters that are not tokens) */
    bool by_rank = t->merges.n > 0;
    pv_sym *syms = malloc((n ? n : 1) * sizeof(*syms));
    if (!syms) {
        free(buf);
        return pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
    }
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        /* a character by its lead byte, but a malformed sequence is split into single
         * bytes (llama.cpp would swallow the next bytes, e.g. the start of a "▁") */
        size_t cl = (size_t)pv_utf8_len((uint8_t)buf[off]);
        if (cl > n - off) cl = 1;
        for (size_t k = 1; k < cl; k++)
            if (((uint8_t)buf[off + k] & 0xC0) != 0x80) cl = 1;
        int32_t id = by_rank ? pv_tok_map_get(t, buf + off, cl) : -1;
        if (by_rank && id < 0) {
            for (size_t k = 0; k < cl; k++) {
                syms[ns] = (pv_sym){(uint32_t)(off + k), 1, ns - 1, ns + 1,
                                    t->byte_tok[(uint8_t)buf[off + k]]};
                ns++;
            }
        } else {
            syms[ns] = (pv_sym){(uint32_t)off, (uint32_t)cl, ns - 1, ns + 1, id};
            ns++;
        }
        off += cl;
    }
    if (ns > 0) syms[ns - 1].next = -1;
    pv_status st = pv_merge_run(t, buf, syms, ns, by_rank, out, err);
    free(syms);
    free(buf);
    return st;
}
