/* bpe.c — the merge engine shared by both tokenizer kinds, and byte-level BPE encoding.
 *
 * The merge loop is llama.cpp's (llm_tokenizer_spm_session / llm_tokenizer_bpe_session):
 * symbols in a doubly linked list, candidate pairs in a binary heap, the best pair merged
 * first (lowest merge rank, or highest SPM score), ties to the leftmost pair, stale
 * candidates dropped when popped. It is O(n log n) in the number of symbols, so long
 * prompts stay fast.
 *
 * Byte-level BPE (model "gpt2"): the pre-tokenizer (pretok.c) splits text into pieces;
 * every byte of a piece starts as the token of its GPT-2 byte->unicode character; merges
 * are looked up by (left id, right id) in the rank map. With ignore_merges (Llama 3) a
 * piece that is itself a token is emitted directly, as HF and llama.cpp do. Pre-tokenizers
 * that normalize to NFC (Qwen2) do so first, through utf8proc. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"

/* ---- GPT-2 byte <-> unicode table ---- */

static bool gpt2_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t pv_gpt2_byte_to_cp(uint8_t b) {
    if (gpt2_printable(b)) return b;
    /* the non-printable bytes get 256, 257, ... in byte order */
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!gpt2_printable(c)) n++;
    return 256 + n;
}

int pv_gpt2_cp_to_byte(uint32_t cp) {
    if (cp < 256) return gpt2_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1; /* 68 non-printable bytes */
    uint32_t n = cp - 256;
    for (unsigned c = 0; c < 256; c++) {
        if (gpt2_printable(c)) continue;
        if (n == 0) return (int)c;
        n--;
    }
    return -1;
}

/* ---- merge loop ---- */

typedef struct {
    double prio; /* larger first: -rank, or the SPM score */
    int32_t left, right;
    int32_t lid, rid; /* rank mode: ids at push time */
    int32_t result;   /* id of the merged token */
    uint32_t size;    /* score mode: byte size of the merged text */
} cand;

typedef struct {
    cand *v;
    size_t n, cap;
} heap;

static bool cand_better(const cand *a, const cand *b) {
    if (a->prio != b->prio) return a->prio > b->prio;
    return a->left < b->left;
}

static bool heap_push(heap *h, cand c) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        cand *nv = realloc(h->v, nc * sizeof(*nv));
        if (!nv) return false;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_better(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return true;
}

static cand heap_pop(heap *h) {
    cand top = h->v[0];
    cand last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const cand *bc = &last;
        if (l < h->n && cand_better(&h->v[l], bc)) {
            best = l;
            bc = &h->v[l];
        }
        if (r < h->n && cand_better(&h->v[r], bc)) best = r;
        if (best == i) break;
        h->v[i] = h->v[best];
        i = best;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Pushes the candidate for merging syms[l] and syms[r], if there is one. */
static bool try_pair(const pv_tokenizer *t, const char *buf, const pv_sym *syms, int32_t l,
                     int32_t r, bool by_rank, heap *h) {
    if (l < 0 || r < 0) return true;
    cand c = {0};
    c.left = l;
    c.right = r;
    if (by_rank) {
        int32_t res = -1;
        int32_t rank = pv_tok_merge_rank(t, syms[l].id, syms[r].id, &res);
        if (rank < 0) return true;
        c.prio = -(double)rank;
        c.lid = syms[l].id;
        c.rid = syms[r].id;
        c.result = res;
    } else {
        uint32_t size = syms[l].len + syms[r].len;
        int32_t id = pv_tok_map_get(t, buf + syms[l].start, size);
        if (id < 0) return true;
        c.prio = t->scores[id];
        c.result = id;
        c.size = size;
    }
    return heap_push(h, c);
}

pv_status pv_merge_run(const pv_tokenizer *t, const char *buf, pv_sym *syms, int32_t n_syms,
                       bool by_rank, pv_ivec *out, pv_error *err) {
    if (n_syms <= 0) return PV_OK;
    heap h = {0};
    bool ok = true;
    for (int32_t i = 1; i < n_syms && ok; i++) ok = try_pair(t, buf, syms, i - 1, i, by_rank, &h);
    while (ok && h.n) {
        cand c = heap_pop(&h);
        pv_sym *L = &syms[c.left], *R = &syms[c.right];
        if (L->len == 0 || R->len == 0 || L->next != c.right) continue;
        if (by_rank ? (L->id != c.lid || R->id != c.rid) : (L->len + R->len != c.size)) continue;
        L->len += R->len;
        L->id = c.result;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) syms[R->next].prev = c.left;
        ok = try_pair(t, buf, syms, L->prev, c.left, by_rank, &h) &&
             try_pair(t, buf, syms, c.left, L->next, by_rank, &h);
    }
    free(h.v);
    if (!ok) return pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
    for (int32_t i = 0; i >= 0; i = syms[i].next) {
        const pv_sym *s = &syms[i];
        if (s->len == 0) continue;
        int32_t id = s->id;
        if (id < 0 && !by_rank) id = pv_tok_map_get(t, buf + s->start, s->len);
        if (id >= 0) {
            pv_ivec_push(out, id);
            continue;
        }
        /* no token: byte fallback, one token per byte (unknown token if even that fails) */
        for (uint32_t k = 0; k < s->len; k++) {
            int32_t b = t->byte_tok[(uint8_t)buf[s->start + k]];
            if (b >= 0)
                pv_ivec_push(out, b);
            else if (t->kind == PV_TOK_SPM && t->unk >= 0)
                pv_ivec_push(out, t->unk);
        }
    }
    return out->oom ? pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory") : PV_OK;
}

/* ---- byte-level BPE ---- */

typedef struct {
    const pv_tokenizer *t;
    pv_ivec *out;
    pv_error *err;
    pv_status st;
    char *enc; /* byte-encoded piece (ignore_merges lookup) */
    size_t enc_cap;
    pv_sym *syms;
    size_t syms_cap;
} bpe_ctx;

static bool bpe_piece(const char *s, size_t n, void *vctx) {
    bpe_ctx *c = vctx;
    const pv_tokenizer *t = c->t;
    if (n == 0) return true;
    if (t->ignore_merges) {
        if (c->enc_cap < n * 2) {
            char *ne = realloc(c->enc, n * 2);
            if (!ne) goto oom;
            c->enc = ne;
            c->enc_cap = n * 2;
        }
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            w += pv_utf8_put(pv_gpt2_byte_to_cp((uint8_t)s[i]), c->enc + w);
        int32_t id = pv_tok_map_get(t, c->enc, w);
        if (id >= 0) {
            pv_ivec_push(c->out, id);
            return true;
        }
    }
    if (c->syms_cap < n) {
        pv_sym *ns = realloc(c->syms, n * sizeof(*ns));
        if (!ns) goto oom;
        c->syms = ns;
        c->syms_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        pv_sym *y = &c->syms[i];
        y->start = (uint32_t)i;
        y->len = 1;
        y->prev = (int32_t)i - 1;
        y->next = i + 1 < n ? (int32_t)i + 1 : -1;
        y->id = t->byte_tok[(uint8_t)s[i]];
    }
    /* symbols carry ids, so the merge loop needs no text; byte fallback in pv_merge_run
     * would re-read raw bytes from `s`, which is exactly what BPE wants (byte tokens) */
    c->st = pv_merge_run(t, s, c->syms, (int32_t)n, true, c->out, c->err);
    return c->st == PV_OK;
oom:
    c->st = pv_error_set(c->err, PV_ERR_NOMEM, "tokenize: out of memory");
    return false;
}

pv_status pv_bpe_encode(const pv_tokenizer *t, const char *text, size_t len, pv_ivec *out,
                        pv_error *err) {
    if (len > UINT32_MAX / 4) return pv_error_set(err, PV_ERR_RANGE, "tokenize: text too long");
    utf8proc_uint8_t *norm = NULL;
    if (t->nfc) {
        /* NFC as the HF normalizer does; text that is not valid UTF-8 is left as it is */
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                          &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r >= 0) {
            text = (const char *)norm;
            len = (size_t)r;
        } else {
            norm = NULL;
        }
    }
    bpe_ctx c = {.t = t, .out = out, .err = err, .st = PV_OK};
    pv_status st = pv_pretok_split(t->pre, text, len, bpe_piece, &c, err);
    if (st == PV_OK) st = c.st;
    free(c.enc);
    free(c.syms);
    free(norm);
    return st;
}
