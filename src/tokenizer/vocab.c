/* vocab.c — builds a pv_tokenizer from GGUF-style metadata (tokenizer.ggml.*) the way
 * llama.cpp's llama_vocab::load does: model kind, token texts/scores/types, merges,
 * special ids and their llama.cpp defaults, add_bos/add_eos, the end-of-generation set,
 * the special-token trie, the byte-fallback table and the decoded-piece cache. Also the
 * encode driver that partitions text around special tokens (llama.cpp's
 * tokenizer_st_partition, done as one leftmost-longest scan over a trie) and hands the
 * plain fragments to the SPM or BPE encoder. Everything built here is immutable after
 * pv_tokenizer_init, so encode/decode may run on many threads at once. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define TOK_COMP "tokenizer"

/* ---- small helpers ---- */

void pv_ivec_push(pv_ivec *a, int32_t x) {
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv) {
            a->oom = true;
            return;
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix for the low bits */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int32_t pv_tok_map_get(const pv_tokenizer *t, const char *s, size_t n) {
    if (!t->map.slots) return -1;
    uint64_t i = hash_bytes(s, n) & t->map.mask;
    for (;;) {
        uint32_t v = t->map.slots[i];
        if (v == 0) return -1;
        int32_t id = (int32_t)(v - 1);
        if (t->tok_len[id] == n && memcmp(pv_tok_text(t, id), s, n) == 0) return id;
        i = (i + 1) & t->map.mask;
    }
}

/* Inserts id under its text; returns the id already there for a duplicate, else -1. */
static int32_t map_insert(pv_tokenizer *t, int32_t id) {
    const char *s = pv_tok_text(t, id);
    size_t n = t->tok_len[id];
    uint64_t i = hash_bytes(s, n) & t->map.mask;
    for (;;) {
        uint32_t v = t->map.slots[i];
        if (v == 0) {
            t->map.slots[i] = (uint32_t)id + 1;
            return -1;
        }
        int32_t o = (int32_t)(v - 1);
        if (t->tok_len[o] == n && memcmp(pv_tok_text(t, o), s, n) == 0) return o;
        i = (i + 1) & t->map.mask;
    }
}

int32_t pv_tok_merge_rank(const pv_tokenizer *t, int32_t left, int32_t right, int32_t *result) {
    if (t->merges.n == 0 || left < 0 || right < 0) return -1;
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t i = hash_u64(key) & t->merges.mask;
    for (;;) {
        uint64_t k = t->merges.keys[i];
        if (k == 0) return -1;
        if (k == key) {
            *result = t->merges.result[i];
            return t->merges.ranks[i];
        }
        i = (i + 1) & t->merges.mask;
    }
}

/* Adds a merge unless the pair is already there (the first, lowest rank wins, as with
 * llama.cpp's unordered_map::emplace). */
static void merge_insert(pv_merge_map *m, int32_t left, int32_t right, int32_t rank,
                         int32_t result) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t i = hash_u64(key) & m->mask;
    for (;;) {
        if (m->keys[i] == 0) {
            m->keys[i] = key;
            m->ranks[i] = rank;
            m->result[i] = result;
            m->n++;
            return;
        }
        if (m->keys[i] == key) return;
        i = (i + 1) & m->mask;
    }
}

/* ---- special-token trie ---- */

static int32_t trie_new_node(pv_tokenizer *t, uint8_t byte) {
    if (t->n_trie == t->cap_trie) {
        int32_t nc = t->cap_trie ? t->cap_trie * 2 : 256;
        pv_trie_node *nn = realloc(t->trie, (size_t)nc * sizeof(*nn));
        if (!nn) return -1;
        t->trie = nn;
        t->cap_trie = nc;
    }
    pv_trie_node *n = &t->trie[t->n_trie];
    n->first_child = -1;
    n->next_sibling = -1;
    n->token = -1;
    n->byte = byte;
    return t->n_trie++;
}

static int32_t trie_child(const pv_tokenizer *t, int32_t node, uint8_t b) {
    for (int32_t c = t->trie[node].first_child; c >= 0; c = t->trie[c].next_sibling)
        if (t->trie[c].byte == b) return c;
    return -1;
}

static bool trie_insert(pv_tokenizer *t, int32_t id) {
    const uint8_t *s = (const uint8_t *)pv_tok_text(t, id);
    uint32_t n = t->tok_len[id];
    int32_t node = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t c = trie_child(t, node, s[i]);
        if (c < 0) {
            c = trie_new_node(t, s[i]);
            if (c < 0) return false;
            t->trie[c].next_sibling = t->trie[node].first_child;
            t->trie[node].first_child = c;
        }
        node = c;
    }
    /* two special tokens with the same text cannot exist (duplicates are rejected) */
    t->trie[node].token = id;
    return true;
}

/* ---- end-of-generation texts (llama.cpp's list) ---- */
/* clang-format off */
static const char *const k_eog_texts[] = {
    "<|eot_id|>",      "<|im_end|>",  "<|end|>",       "<|return|>",  "<|call|>",
    "<end_of_turn>",   "<|endoftext|>", "</s>",        "<|eom_id|>",  "<EOT>",
    "_<EOT>",          "[EOT]",       "[EOS]",         "<|end_of_text|>", "<end_of_utterance>",
    "<eos>",           "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
};
/* clang-format on */

/* metadata keys for the special ids; default filled in by kind */
typedef struct {
    const char *key;
    size_t off; /* offset of the int32 field in pv_tokenizer */
} special_key;

static const special_key k_special_keys[] = {
    {"tokenizer.ggml.bos_token_id", offsetof(pv_tokenizer, bos)},
    {"tokenizer.ggml.eos_token_id", offsetof(pv_tokenizer, eos)},
    {"tokenizer.ggml.eot_token_id", offsetof(pv_tokenizer, eot)},
    {"tokenizer.ggml.eom_token_id", offsetof(pv_tokenizer, eom)},
    {"tokenizer.ggml.unknown_token_id", offsetof(pv_tokenizer, unk)},
    {"tokenizer.ggml.padding_token_id", offsetof(pv_tokenizer, pad)},
};

static bool is_special_type(uint8_t ty) {
    return ty == PV_TOKTYPE_CONTROL || ty == PV_TOKTYPE_USER_DEFINED || ty == PV_TOKTYPE_UNKNOWN;
}

/* Builds the decoded text of every token once (what pv_tokenizer_piece returns with
 * render_special), so decoding never allocates. */
static pv_status build_pieces(pv_tokenizer *t, pv_error *err) {
    uint64_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += t->tok_len[i];
    t->piece_pool = malloc(total + 1);
    t->piece_off = malloc((size_t)t->n_vocab * sizeof(uint64_t));
    t->piece_len = malloc((size_t)t->n_vocab * sizeof(uint32_t));
    if (!t->piece_pool || !t->piece_off || !t->piece_len)
        return pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory for piece cache");
    uint64_t pos = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = pv_tok_text(t, i);
        uint32_t n = t->tok_len[i];
        char *o = t->piece_pool + pos;
        uint32_t w = 0;
        uint8_t ty = t->types[i];
        t->piece_off[i] = pos;
        if (ty == PV_TOKTYPE_UNUSED || ty == PV_TOKTYPE_UNDEFINED) {
            w = 0; /* padding slots ("[PAD123]") render nothing, as in llama.cpp */
        } else if (ty == PV_TOKTYPE_CONTROL || ty == PV_TOKTYPE_UNKNOWN) {
            memcpy(o, s, n);
            w = n;
        } else if (ty == PV_TOKTYPE_BYTE) {
            unsigned v = 0;
            if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' &&
                sscanf(s + 3, "%2x", &v) == 1) {
                o[0] = (char)v;
                w = 1;
            } else { /* a byte token not in <0xXX> form: its text is the byte itself */
                memcpy(o, s, n);
                w = n;
            }
        } else if (t->kind == PV_TOK_SPM) {
            /* "▁" (E2 96 81) -> ' '; user-defined tokens too (HF's decoder replaces it
             * everywhere; llama.cpp keeps them raw, which breaks Gemma's "▁▁" tokens) */
            for (uint32_t k = 0; k < n;) {
                if (k + 3 <= n && (uint8_t)s[k] == 0xE2 && (uint8_t)s[k + 1] == 0x96 &&
                    (uint8_t)s[k + 2] == 0x81) {
                    o[w++] = ' ';
                    k += 3;
                } else {
                    o[w++] = s[k++];
                }
            }
        } else if (ty == PV_TOKTYPE_USER_DEFINED) {
            memcpy(o, s, n); /* BPE added tokens are stored as plain text */
            w = n;
        } else {
            /* byte-level BPE: each code point maps back to one byte; code points outside
             * the GPT-2 table are copied as they are */
            for (uint32_t k = 0; k < n;) {
                int l = pv_utf8_len((uint8_t)s[k]);
                if (k + (uint32_t)l > n) l = (int)(n - k);
                uint32_t cp = 0;
                if (l == 1)
                    cp = (uint8_t)s[k];
                else if (l == 2)
                    cp = ((uint32_t)(s[k] & 0x1F) << 6) | (s[k + 1] & 0x3F);
                else
                    cp = 0x110000; /* 3-4 byte code points are never in the table */
                int b = pv_gpt2_cp_to_byte(cp);
                if (b >= 0) {
                    o[w++] = (char)b;
                } else {
                    memcpy(o + w, s + k, (size_t)l);
                    w += (uint32_t)l;
                }
                k += (uint32_t)l;
            }
        }
        t->piece_len[i] = w;
        pos += w;
    }
    return PV_OK;
}

static bool name_contains_phi3(const pv_weights *w) {
    char *name = pv_meta_get_strdup(w, "general.name");
    if (!name) return false;
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    bool r = strstr(name, "phi-3") || strstr(name, "phi3");
    free(name);
    return r;
}

pv_status pv_tokenizer_init(const pv_weights *w, pv_tokenizer **out, pv_error *err) {
    *out = NULL;
    pv_status st = PV_OK;
    char *model = pv_meta_get_strdup(w, "tokenizer.ggml.model");
    if (!model)
        return pv_error_set(err, PV_ERR_NOT_FOUND, "%s: missing tokenizer.ggml.model",
                            w->path ? w->path : "model");
    pv_tokenizer *t = calloc(1, sizeof(*t));
    if (!t) {
        free(model);
        return pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory");
    }
    const char *path = w->path ? w->path : "model";
    if (!strcmp(model, "llama")) {
        t->kind = PV_TOK_SPM;
    } else if (!strcmp(model, "gpt2")) {
        t->kind = PV_TOK_BPE;
    } else {
        st = pv_error_set(err, PV_ERR_UNSUPPORTED,
                          "%s: unsupported tokenizer.ggml.model \"%s\" (supported: llama, gpt2)",
                          path, model);
        free(model);
        goto fail;
    }
    free(model);

    const pv_value *toks = pv_meta_get_arr(w, "tokenizer.ggml.tokens");
    if (!toks) {
        st = pv_error_set(err, PV_ERR_NOT_FOUND, "%s: missing tokenizer.ggml.tokens", path);
        goto fail;
    }
    if (toks->arr.type != PV_VAL_STRING || toks->arr.n == 0 || toks->arr.n > INT32_MAX / 2) {
        st = pv_error_set(err, PV_ERR_FORMAT,
                          "%s: tokenizer.ggml.tokens must be a non-empty array of strings", path);
        goto fail;
    }
    t->n_vocab = (int32_t)toks->arr.n;
    size_t nv = (size_t)t->n_vocab;

    const pv_value *scores = pv_meta_get_arr(w, "tokenizer.ggml.scores");
    if (scores && ((scores->arr.type != PV_VAL_F32 && scores->arr.type != PV_VAL_I32) ||
                   scores->arr.n < nv)) {
        st = pv_error_set(err, PV_ERR_FORMAT,
                          "%s: tokenizer.ggml.scores must be an f32/i32 array of %zu entries", path,
                          nv);
        goto fail;
    }
    const pv_value *ttypes = pv_meta_get_arr(w, "tokenizer.ggml.token_type");
    if (ttypes && ((ttypes->arr.type != PV_VAL_I32 && ttypes->arr.type != PV_VAL_U32) ||
                   ttypes->arr.n < nv)) {
        st = pv_error_set(err, PV_ERR_FORMAT,
                          "%s: tokenizer.ggml.token_type must be an i32 array of %zu entries", path,
                          nv);
        goto fail;
    }

    uint64_t total = 0;
    for (size_t i = 0; i < nv; i++) total += pv_value_arr_str(toks, i).len;
    t->pool = malloc(total + 1);
    t->tok_off = malloc(nv * sizeof(uint64_t));
    t->tok_len = malloc(nv * sizeof(uint32_t));
    t->scores = malloc(nv * sizeof(float));
    t->types = malloc(nv);
    t->strip = calloc(nv, 1);
    t->eog = calloc(nv, 1);
    t->map.mask = pow2_at_least(nv * 2) - 1;
    t->map.slots = calloc(t->map.mask + 1, sizeof(uint32_t));
    if (!t->pool || !t->tok_off || !t->tok_len || !t->scores || !t->types || !t->strip || !t->eog ||
        !t->map.slots) {
        st = pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory for %zu tokens", nv);
        goto fail;
    }
    uint64_t pos = 0;
    for (size_t i = 0; i < nv; i++) {
        pv_str s = pv_value_arr_str(toks, i);
        if (s.len > UINT32_MAX / 4) {
            st = pv_error_set(err, PV_ERR_FORMAT, "%s: token %zu is too long", path, i);
            goto fail;
        }
        memcpy(t->pool + pos, s.ptr, s.len);
        t->tok_off[i] = pos;
        t->tok_len[i] = (uint32_t)s.len;
        if (s.len > t->max_len) t->max_len = (uint32_t)s.len;
        pos += s.len;
        t->scores[i] = !scores                          ? 0.0f
                       : scores->arr.type == PV_VAL_F32 ? pv_value_arr_f32(scores, i)
                                                        : (float)pv_value_arr_i32(scores, i);
        int32_t ty = ttypes ? pv_value_arr_i32(ttypes, i) : PV_TOKTYPE_NORMAL;
        t->types[i] = (ty >= 1 && ty <= 6) ? (uint8_t)ty : PV_TOKTYPE_UNDEFINED;
        int32_t dup = map_insert(t, (int32_t)i);
        if (dup >= 0) {
            st = pv_error_set(err, PV_ERR_DUPLICATE,
                              "%s: duplicate token in tokenizer.ggml.tokens: '%.*s' has ids %d "
                              "and %zu",
                              path, (int)PV_MIN(s.len, 64), s.ptr, dup, i);
            goto fail;
        }
    }

    /* merges: required for gpt2; for llama (SPM) optional — when present (tokenizer.json
     * imports of BPE+byte_fallback models) they drive the merge order exactly */
    const pv_value *merges = pv_meta_get_arr(w, "tokenizer.ggml.merges");
    if (t->kind == PV_TOK_BPE && !merges) {
        st = pv_error_set(err, PV_ERR_NOT_FOUND,
                          "%s: missing tokenizer.ggml.merges (required for model gpt2)", path);
        goto fail;
    }
    if (merges) {
        if (merges->arr.type != PV_VAL_STRING) {
            st = pv_error_set(err, PV_ERR_FORMAT,
                              "%s: tokenizer.ggml.merges must be an array of strings", path);
            goto fail;
        }
        if (merges->arr.n > INT32_MAX / 4) {
            st = pv_error_set(err, PV_ERR_RANGE, "%s: too many merges", path);
            goto fail;
        }
        t->merges.mask = pow2_at_least(merges->arr.n * 2 + 2) - 1;
        t->merges.keys = calloc(t->merges.mask + 1, sizeof(uint64_t));
        t->merges.ranks = malloc((t->merges.mask + 1) * sizeof(int32_t));
        t->merges.result = malloc((t->merges.mask + 1) * sizeof(int32_t));
        char *cat = malloc(t->max_len * 2 + 2);
        if (!t->merges.keys || !t->merges.ranks || !t->merges.result || !cat) {
            free(cat);
            st = pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory for merges");
            goto fail;
        }
        for (uint64_t i = 0; i < merges->arr.n; i++) {
            pv_str m = pv_value_arr_str(merges, i);
            /* "left right": split at the first space after position 0 (llama.cpp) */
            uint64_t sp = 1;
            while (sp < m.len && m.ptr[sp] != ' ') sp++;
            if (sp >= m.len) continue;
            int32_t a = pv_tok_map_get(t, m.ptr, sp);
            int32_t b = pv_tok_map_get(t, m.ptr + sp + 1, m.len - sp - 1);
            if (a < 0 || b < 0) continue; /* cannot apply: a part is not a token */
            /* the merged text must be a token too (HF refuses such merges) */
            memcpy(cat, m.ptr, sp);
            memcpy(cat + sp, m.ptr + sp + 1, m.len - sp - 1);
            int32_t r = pv_tok_map_get(t, cat, m.len - 1);
            if (r < 0) continue;
            merge_insert(&t->merges, a, b, (int32_t)i, r);
        }
        free(cat);
    }

    /* special ids: llama.cpp's defaults per kind, then metadata (out of range: default) */
    t->eot = t->eom = t->pad = -1;
    if (t->kind == PV_TOK_SPM) {
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_bos = true;
        t->add_space_prefix = true;
    } else {
        /* llama.cpp defaults gpt2 vocabularies to bos = eos = 11 (GPT-2's "," in some
         * vocabularies): meaningless elsewhere, so none unless the metadata names them */
        t->bos = -1;
        t->eos = -1;
        t->unk = -1;
        t->add_bos = false;
        t->add_space_prefix = false;
    }
    for (size_t k = 0; k < PV_ARRAY_LEN(k_special_keys); k++) {
        int32_t *field = (int32_t *)((char *)t + k_special_keys[k].off);
        if (*field >= t->n_vocab) *field = -1;
        int64_t v;
        if (pv_meta_get_i64(w, k_special_keys[k].key, &v) && v >= 0 && v < t->n_vocab)
            *field = (int32_t)v;
    }

    if (t->kind == PV_TOK_BPE) {
        t->pre_name = pv_meta_get_strdup(w, "tokenizer.ggml.pre");
        bool llama3 = false;
        st = pv_pretok_new(t->pre_name, &t->pre, &t->ignore_merges, &t->nfc, err);
        if (st != PV_OK) goto fail;
        llama3 = t->ignore_merges; /* llama-bpe family: also add_bos by default */
        if (llama3) t->add_bos = true;
    }
    bool b;
    if (pv_meta_get_bool(w, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (pv_meta_get_bool(w, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (pv_meta_get_bool(w, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
    /* read for completeness; like llama.cpp's SPM path we do not collapse whitespace
     * (SentencePiece models converted for llama.cpp carry false here) */
    if (pv_meta_get_bool(w, "tokenizer.ggml.remove_extra_whitespaces", &b)) t->remove_extra_ws = b;
    if (t->add_bos && t->bos < 0) {
        st = pv_error_set(err, PV_ERR_FORMAT,
                          "%s: tokenizer.ggml.add_bos_token is true, but "
                          "tokenizer.ggml.bos_token_id is not set",
                          path);
        goto fail;
    }
    if (t->add_eos && t->eos < 0) {
        st = pv_error_set(err, PV_ERR_FORMAT,
                          "%s: tokenizer.ggml.add_eos_token is true, but "
                          "tokenizer.ggml.eos_token_id is not set",
                          path);
        goto fail;
    }

    /* end of generation: metadata ids plus control tokens with the well-known texts.
     * llama.cpp also turns normal tokens with these texts into control ones; we do not:
     * Qwen's vocabulary has a plain "</s>" that Hugging Face treats as text. */
    int32_t id_return = -1, id_call = -1, id_end = -1;
    for (size_t k = 0; k < PV_ARRAY_LEN(k_eog_texts); k++) {
        int32_t id = pv_tok_map_get(t, k_eog_texts[k], strlen(k_eog_texts[k]));
        if (id < 0 || t->types[id] != PV_TOKTYPE_CONTROL) continue;
        t->eog[id] = 1;
        if (!strcmp(k_eog_texts[k], "<|return|>")) id_return = id;
        if (!strcmp(k_eog_texts[k], "<|call|>")) id_call = id;
        if (!strcmp(k_eog_texts[k], "<|end|>")) id_end = id;
    }
    /* o200k_harmony: <|end|> ends a message, not the generation, when <|return|> and
     * <|call|> exist (llama.cpp's workaround) */
    if (id_return >= 0 && id_call >= 0 && id_end >= 0) {
        t->eog[id_end] = 0;
        t->types[id_end] = PV_TOKTYPE_USER_DEFINED;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;
    /* A generated BOS starts a new document, so the current one (the answer) is over. This is
     * llama2.c's stopping rule, and the only one TinyStories models such as stories260K have:
     * they were trained on BOS-delimited stories and never emit EOS (without it a chat turn on
     * them runs to the end of the context). llama.cpp does not stop there; no chat answer
     * legitimately contains a BOS. */
    if (t->bos >= 0) t->eog[t->bos] = 1;

    /* Phi-3: llama.cpp strips whitespace right of every special token except <unk>, <s>
     * and <|endoftext|> (the HF added tokens carry rstrip) */
    if (name_contains_phi3(w)) {
        for (int32_t i = 0; i < t->n_vocab; i++)
            if (is_special_type(t->types[i])) t->strip[i] |= 2;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        int32_t s_end = pv_tok_map_get(t, "</s>", 4);
        if (s_end >= 0) t->strip[s_end] |= 2;
        for (size_t k = 0; k < PV_ARRAY_LEN(keep); k++) {
            int32_t id = pv_tok_map_get(t, keep[k], strlen(keep[k]));
            if (id >= 0) t->strip[id] &= (uint8_t)~2u;
        }
    }

    /* byte fallback / byte-level table */
    for (int c = 0; c < 256; c++) {
        t->byte_tok[c] = -1;
        if (t->kind == PV_TOK_SPM) {
            char buf[8];
            snprintf(buf, sizeof buf, "<0x%02X>", c);
            t->byte_tok[c] = pv_tok_map_get(t, buf, 6);
            if (t->byte_tok[c] < 0) {
                char one = (char)c;
                t->byte_tok[c] = pv_tok_map_get(t, &one, 1);
            }
        } else {
            char buf[4];
            size_t n = pv_utf8_put(pv_gpt2_byte_to_cp((uint8_t)c), buf);
            t->byte_tok[c] = pv_tok_map_get(t, buf, n);
        }
    }

    /* special-token trie (control, user-defined, unknown; empty texts skipped) */
    if (trie_new_node(t, 0) != 0) {
        st = pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!is_special_type(t->types[i]) || t->tok_len[i] == 0) continue;
        if (!trie_insert(t, i)) {
            st = pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
    }

    st = build_pieces(t, err);
    if (st != PV_OK) goto fail;
    *out = t;
    return PV_OK;
fail:
    pv_tokenizer_free(t);
    return st;
}

void pv_tokenizer_free(pv_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->tok_off);
    free(t->tok_len);
    free(t->scores);
    free(t->types);
    free(t->strip);
    free(t->eog);
    free(t->map.slots);
    free(t->merges.keys);
    free(t->merges.ranks);
    free(t->merges.result);
    free(t->piece_pool);
    free(t->piece_off);
    free(t->piece_len);
    free(t->trie);
    pv_pretok_free(t->pre);
    free(t->pre_name);
    free(t);
}

/* ---- accessors ---- */

int32_t pv_tokenizer_n_vocab(const pv_tokenizer *t) { return t->n_vocab; }
int32_t pv_tokenizer_bos(const pv_tokenizer *t) { return t->bos; }
int32_t pv_tokenizer_eos(const pv_tokenizer *t) { return t->eos; }
bool pv_tokenizer_add_bos(const pv_tokenizer *t) { return t->add_bos; }
bool pv_tokenizer_add_eos(const pv_tokenizer *t) { return t->add_eos; }

bool pv_tokenizer_is_eog(const pv_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

bool pv_tokenizer_is_control(const pv_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->types[id] == PV_TOKTYPE_CONTROL;
}

pv_str pv_tokenizer_token_text(const pv_tokenizer *t, int32_t id) {
    pv_str s = {"", 0};
    if (id < 0 || id >= t->n_vocab) return s;
    s.ptr = pv_tok_text(t, id);
    s.len = t->tok_len[id];
    return s;
}

int32_t pv_tokenizer_find(const pv_tokenizer *t, const char *text, size_t len) {
    return pv_tok_map_get(t, text, len);
}

/* ---- encode driver ---- */

static pv_status encode_fragment(const pv_tokenizer *t, const char *s, size_t n, bool prev_special,
                                 pv_ivec *out, pv_error *err) {
    if (t->kind == PV_TOK_SPM)
        return pv_spm_encode(t, s, n, t->add_space_prefix && prev_special, out, err);
    return pv_bpe_encode(t, s, n, out, err);
}

/* Longest special token starting at text[i] that may be matched (control/unknown only
 * with parse_special; user-defined always, as llama.cpp and HF do). Returns its id and
 * length, or -1. */
static int32_t match_special(const pv_tokenizer *t, const char *text, size_t len, size_t i,
                             bool parse_special, size_t *mlen) {
    int32_t node = 0, best = -1;
    for (size_t k = i; k < len; k++) {
        node = trie_child(t, node, (uint8_t)text[k]);
        if (node < 0) break;
        int32_t id = t->trie[node].token;
        if (id >= 0 && (parse_special || t->types[id] == PV_TOKTYPE_USER_DEFINED)) {
            best = id;
            *mlen = k + 1 - i;
        }
    }
    return best;
}

pv_status pv_tokenizer_encode(const pv_tokenizer *t, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t **ids, size_t *n_ids, pv_error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return pv_error_set(err, PV_ERR_INVALID, "tokenize: NULL text");
    pv_ivec out = {0};
    pv_status st = PV_OK;
    if (add_special && t->add_bos) pv_ivec_push(&out, t->bos);

    bool prev_special = true; /* SPM: the first fragment gets the space prefix */
    size_t frag = 0, i = 0;
    while (i < len) {
        size_t mlen = 0;
        int32_t id =
            t->trie[0].first_child >= 0 ? match_special(t, text, len, i, parse_special, &mlen) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        size_t end = i;
        if (t->strip[id] & 1)
            while (end > frag && isspace((unsigned char)text[end - 1])) end--;
        if (end > frag) {
            st = encode_fragment(t, text + frag, end - frag, prev_special, &out, err);
            if (st != PV_OK) goto done;
        }
        pv_ivec_push(&out, id);
        prev_special = true;
        i += mlen;
        if (t->strip[id] & 2)
            while (i < len && isspace((unsigned char)text[i])) i++;
        frag = i;
    }
    if (len > frag) {
        st = encode_fragment(t, text + frag, len - frag, prev_special, &out, err);
        if (st != PV_OK) goto done;
    }
    if (add_special && t->add_eos) pv_ivec_push(&out, t->eos);
    if (out.oom) {
        st = pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
        goto done;
    }
    if (!out.v) { /* empty result: still hand back a freeable pointer */
        out.v = malloc(sizeof(int32_t));
        if (!out.v) {
            st = pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
            goto done;
        }
    }
    *ids = out.v;
    *n_ids = out.n;
    return PV_OK;
done:
    free(out.v);
    return st;
}
