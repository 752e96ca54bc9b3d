/* tok_internal.h — private layout of pv_tokenizer shared by the tokenizer's files: the
 * vocabulary (texts in one pool, scores, GGUF token types), the open-addressing hash maps
 * (token text -> id, merge pair -> rank), the special-token trie, the compiled
 * pre-tokenizer and the per-token decoded-piece cache. Nothing here is part of the public
 * API; include only from the tokenizer sources. */
#ifndef PV_TOK_INTERNAL_H
#define PV_TOK_INTERNAL_H

#include "pv_tokenizer.h"

/* GGUF token types (tokenizer.ggml.token_type), llama.cpp's numbering */
enum {
    PV_TOKTYPE_UNDEFINED = 0,
    PV_TOKTYPE_NORMAL = 1,
    PV_TOKTYPE_UNKNOWN = 2,
    PV_TOKTYPE_CONTROL = 3,
    PV_TOKTYPE_USER_DEFINED = 4,
    PV_TOKTYPE_UNUSED = 5,
    PV_TOKTYPE_BYTE = 6,
};

typedef enum { PV_TOK_SPM = 1, PV_TOK_BPE = 2 } pv_tok_kind;

/* A growable int32 vector (encode output). */
typedef struct {
    int32_t *v;
    size_t n, cap;
    bool oom;
} pv_ivec;
void pv_ivec_push(pv_ivec *a, int32_t x);

/* token text -> id (open addressing, linear probing; slots hold id+1, 0 = empty) */
typedef struct {
    uint32_t *slots;
    uint64_t mask;
} pv_tok_map;

/* merge pair (left id, right id) -> rank */
typedef struct {
    uint64_t *keys; /* (left << 32 | right) + 1; 0 = empty */
    int32_t *ranks;
    int32_t *result; /* id of the merged token */
    uint64_t mask;
    uint64_t n;
} pv_merge_map;

/* special-token trie: children as sibling lists */
typedef struct {
    int32_t first_child, next_sibling;
    int32_t token; /* -1: no token ends here */
    uint8_t byte;
} pv_trie_node;

struct pv_pretok; /* pretok.c */

struct pv_tokenizer {
    pv_tok_kind kind;
    int32_t n_vocab;
    char *pool;        /* all token texts, back to back */
    uint64_t *tok_off; /* offset of token i in pool */
    uint32_t *tok_len;
    uint32_t max_len; /* longest token text */
    float *scores;
    uint8_t *types; /* PV_TOKTYPE_* */
    uint8_t *strip; /* bit0 lstrip, bit1 rstrip (special-token partition) */
    pv_tok_map map;
    pv_merge_map merges;   /* n == 0: none (SPM scores path) */
    int32_t byte_tok[256]; /* token for each raw byte (-1 if none) */

    /* decoded pieces (what each token contributes to text, special tokens raw) */
    char *piece_pool;
    uint64_t *piece_off;
    uint32_t *piece_len;

    pv_trie_node *trie;
    int32_t n_trie, cap_trie;

    struct pv_pretok *pre; /* BPE only */
    char *pre_name;

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix, remove_extra_ws, ignore_merges, nfc;
    uint8_t *eog; /* per-token flag */
};

/* vocab.c */
int32_t pv_tok_map_get(const pv_tokenizer *t, const char *s, size_t n);
static inline const char *pv_tok_text(const pv_tokenizer *t, int32_t id) {
    return t->pool + t->tok_off[id];
}
/* rank of merging (left, right), -1 if none; *result gets the merged token's id */
int32_t pv_tok_merge_rank(const pv_tokenizer *t, int32_t left, int32_t right, int32_t *result);

/* spm.c: SentencePiece-style encoding of one raw-text fragment (no special tokens inside);
 * prefix_space adds the "▁" the first fragment (or one after a special token) gets. */
pv_status pv_spm_encode(const pv_tokenizer *t, const char *text, size_t len, bool prefix_space,
                        pv_ivec *out, pv_error *err);

/* bpe.c: byte-level BPE encoding of one raw-text fragment. */
pv_status pv_bpe_encode(const pv_tokenizer *t, const char *text, size_t len, pv_ivec *out,
                        pv_error *err);
/* bpe.c: shared merge loop. Symbols are byte ranges of `buf` with token ids; merges by rank
 * (merges != NULL) or by score (SPM). Appends the final ids (byte fallback for id -1). */
typedef struct {
    uint32_t start, len;
    int32_t prev, next;
    int32_t id;
} pv_sym;
pv_status pv_merge_run(const pv_tokenizer *t, const char *buf, pv_sym *syms, int32_t n_syms,
                       bool by_rank, pv_ivec *out, pv_error *err);
/* GPT-2 byte <-> unicode table */
uint32_t pv_gpt2_byte_to_cp(uint8_t b);
int pv_gpt2_cp_to_byte(uint32_t cp); /* -1 if cp is not in the table */

/* pretok.c */
typedef struct pv_pretok pv_pretok;
/* Compiles the regex list of pre-tokenizer `name` (NULL or "" = "default"). */
pv_status pv_pretok_new(const char *name, pv_pretok **out, bool *ignore_merges, bool *nfc,
                        pv_error *err);
void pv_pretok_free(pv_pretok *p);
/* Splits text into pieces; calls fn(piece, len, ctx) in order. fn returns false to abort. */
typedef bool (*pv_pretok_fn)(const char *s, size_t n, void *ctx);
pv_status pv_pretok_split(const pv_pretok *p, const char *text, size_t len, pv_pretok_fn fn,
                          void *ctx, pv_error *err);
/* Comma-separated list of supported pre-tokenizer names (static string). */
const char *pv_pretok_supported(void);

/* utf8 helpers (detok.c) */
int pv_utf8_len(uint8_t lead); /* 1..4 by lead byte (invalid lead -> 1) */
size_t pv_utf8_put(uint32_t cp, char *out);

#endif /* PV_TOK_INTERNAL_H */
