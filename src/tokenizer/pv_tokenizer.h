/* pv_tokenizer.h — vocabularies from model metadata (GGUF tokenizer.ggml.* keys):
 * SentencePiece-style (model "llama": scores, byte fallback, space prefix) and byte-level
 * BPE (model "gpt2": merges + the tokenizer.ggml.pre pre-tokenizer family, regexes via
 * PCRE2 JIT, Unicode via utf8proc); special-token matching on request; BOS/EOS per
 * metadata; a streaming detokenizer that emits text only at UTF-8 boundaries; and the
 * tokenizer.json importer used by the model generator.
 *
 * Thread safety: a pv_tokenizer is immutable after init; encode/decode may be called from
 * many threads at once. */
#ifndef PV_TOKENIZER_H
#define PV_TOKENIZER_H

#include "../core/pv_core.h"
#include "../weights/pv_weights.h"

typedef struct pv_tokenizer pv_tokenizer;

/* Builds the tokenizer from the metadata of `w` (works on vocabulary-only files: no
 * tensors needed). The tokenizer copies what it needs; `w` may be freed afterwards.
 * Errors name the key and problem (e.g. unknown tokenizer.ggml.pre "foo": lists the
 * supported ones). */
pv_status pv_tokenizer_init(const pv_weights *w, pv_tokenizer **out, pv_error *err);
void pv_tokenizer_free(pv_tokenizer *t);

int32_t pv_tokenizer_n_vocab(const pv_tokenizer *t);
int32_t pv_tokenizer_bos(const pv_tokenizer *t); /* -1 if none */
int32_t pv_tokenizer_eos(const pv_tokenizer *t); /* -1 if none */
bool pv_tokenizer_add_bos(const pv_tokenizer *t);
bool pv_tokenizer_add_eos(const pv_tokenizer *t);
/* End-of-generation: EOS, EOT, EOM, <|im_end|>, <|end|>, <|eot_id|>, ... from metadata
 * ids and well-known control-token texts. */
bool pv_tokenizer_is_eog(const pv_tokenizer *t, int32_t id);
bool pv_tokenizer_is_control(const pv_tokenizer *t, int32_t id);
/* The token's text as stored in the vocabulary (raw piece, e.g. "▁the" / "Ġthe"). */
pv_str pv_tokenizer_token_text(const pv_tokenizer *t, int32_t id);
/* Looks a token up by exact piece text; -1 if absent. */
int32_t pv_tokenizer_find(const pv_tokenizer *t, const char *text, size_t len);

/* Encodes `len` bytes of `text` (need not be NUL-terminated).
 * add_special: add BOS/EOS as the metadata says (tokenizer.ggml.add_bos_token /
 *   add_eos_token, defaulting as llama.cpp does per model type).
 * parse_special: match special/control tokens written in the text (e.g. "<|im_start|>");
 *   otherwise they are tokenized as plain text.
 * On success *ids is malloc'ed (caller frees) and *n_ids set. */
pv_status pv_tokenizer_encode(const pv_tokenizer *t, const char *text, size_t len,
                              bool add_special, bool parse_special, int32_t **ids,
                              size_t *n_ids, pv_error *err);

/* Bytes a token contributes to output text (byte-fallback tokens give their byte, SPM "▁"
 * becomes a space, byte-level BPE maps back through the GPT-2 byte table). Control tokens
 * give their text only if render_special. Returns the byte count (may exceed cap: then
 * only cap bytes were written). */
size_t pv_tokenizer_piece(const pv_tokenizer *t, int32_t id, char *buf, size_t cap,
                          bool render_special);

/* Whole-sequence decode into a malloc'ed NUL-terminated string (caller frees). SPM's
 * leading space after BOS is stripped as llama.cpp does when remove_leading_space. */
char *pv_tokenizer_decode(const pv_tokenizer *t, const int32_t *ids, size_t n,
                          bool render_special);

/* Streaming detokenizer: push tokens, get back only complete UTF-8 characters; an
 * incomplete multi-byte sequence is held until the next token completes it (invalid
 * bytes are emitted as U+FFFD once it is clear they cannot complete). No allocation. */
typedef struct pv_detok {
    const pv_tokenizer *tok;
    bool render_special;
    bool at_start;      /* for SPM leading-space handling */
    uint8_t pending[8]; /* bytes of an incomplete UTF-8 character */
    int n_pending;
} pv_detok;

void pv_detok_init(pv_detok *d, const pv_tokenizer *t, bool render_special);
/* Appends the text that became complete to out (cap bytes; a token's text is at most a
 * few hundred bytes, give 1024). Returns the number of bytes written. */
size_t pv_detok_push(pv_detok *d, int32_t id, char *out, size_t cap);
/* Emits whatever is pending (as U+FFFD for incomplete bytes). */
size_t pv_detok_flush(pv_detok *d, char *out, size_t cap);

/* ---- tokenizer.json import (for the model generator) ----
 * Reads a Hugging Face tokenizer.json (and optionally its tokenizer_config.json, may be
 * NULL) and sets the tokenizer.ggml.* keys on `g` the way llama.cpp's converter does
 * (model, pre, tokens, token_type, scores or merges, bos/eos/unk/pad ids, add_bos/eos,
 * chat_template when present). */
struct pv_gguf_writer;
pv_status pv_tokenizer_import_hf(const char *tokenizer_json, const char *tokenizer_config,
                                 struct pv_gguf_writer *g, int32_t *n_vocab_out,
                                 pv_error *err);

#endif /* PV_TOKENIZER_H */
