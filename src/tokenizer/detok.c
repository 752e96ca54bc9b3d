/* detok.c — token ids back to text: single pieces, whole sequences, and the streaming
 * detokenizer that only ever emits complete UTF-8 characters.
 *
 * Pieces come from the cache built at init (vocab.c: "▁" -> space for SPM, GPT-2 byte
 * decoding for byte-level BPE, <0xXX> -> the byte), so nothing here allocates except
 * pv_tokenizer_decode's result. Control and unknown tokens render only on request.
 * SPM's space prefix: the first text-bearing token loses one leading space (llama.cpp's
 * remove_space, applied after any leading control tokens such as BOS, so that
 * decode(encode(x)) == x with or without BOS).
 *
 * The streaming UTF-8 assembler follows Unicode's "maximal subpart" rule (Table 3-7): a
 * byte that cannot continue the pending sequence ends it with one U+FFFD and is then
 * looked at afresh; stray continuation bytes and bytes that can never start a character
 * (C0, C1, F5..FF) become U+FFFD at once. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int pv_utf8_len(uint8_t lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 1;
}

size_t pv_utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The bytes token `id` renders to (NULL/0 when it renders nothing). */
static const char *piece_of(const pv_tokenizer *t, int32_t id, bool render_special, uint32_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_vocab) return NULL;
    uint8_t ty = t->types[id];
    if (!render_special && (ty == PV_TOKTYPE_CONTROL || ty == PV_TOKTYPE_UNKNOWN)) return NULL;
    *len = t->piece_len[id];
    return t->piece_pool + t->piece_off[id];
}

/* Whether `id` is text-bearing for the leading-space rule (not a control/unknown token). */
static bool is_text_token(const pv_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return false;
    uint8_t ty = t->types[id];
    return ty != PV_TOKTYPE_CONTROL && ty != PV_TOKTYPE_UNKNOWN;
}

size_t pv_tokenizer_piece(const pv_tokenizer *t, int32_t id, char *buf, size_t cap,
                          bool render_special) {
    uint32_t n;
    const char *p = piece_of(t, id, render_special, &n);
    if (p && buf && cap) memcpy(buf, p, PV_MIN((size_t)n, cap));
    return n;
}

char *pv_tokenizer_decode(const pv_tokenizer *t, const int32_t *ids, size_t n,
                          bool render_special) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t l;
        (void)piece_of(t, ids[i], render_special, &l);
        total += l;
    }
    char *s = malloc(total + 1);
    if (!s) return NULL;
    size_t w = 0;
    bool at_start = true;
    for (size_t i = 0; i < n; i++) {
        uint32_t l;
        const char *p = piece_of(t, ids[i], render_special, &l);
        if (at_start && is_text_token(t, ids[i])) {
            at_start = false;
            if (t->kind == PV_TOK_SPM && t->add_space_prefix && l && p[0] == ' ') {
                p++;
                l--;
            }
        }
        if (l) memcpy(s + w, p, l);
        w += l;
    }
    s[w] = '\0';
    return s;
}

/* ---- streaming ---- */

void pv_detok_init(pv_detok *d, const pv_tokenizer *t, bool render_special) {
    memset(d, 0, sizeof(*d));
    d->tok = t;
    d->render_special = render_special;
    d->at_start = true;
}

typedef struct {
    char *out;
    size_t cap, w;
} sink;

/* Appends whole characters only; one that does not fit in the caller's buffer is dropped
 * (the header asks for 1024 bytes, several times the longest token). */
static void sink_put(sink *s, const void *b, size_t n) {
    if (s->w + n > s->cap) return;
    memcpy(s->out + s->w, b, n);
    s->w += n;
}

static void emit_fffd(sink *s) { sink_put(s, "\xEF\xBF\xBD", 3); }

/* Whether byte b may follow the pending bytes p[0..n) of a character. */
static bool continues(const uint8_t *p, int n, uint8_t b) {
    if (n == 1) {
        switch (p[0]) {
        case 0xE0: return b >= 0xA0 && b <= 0xBF; /* no overlongs */
        case 0xED: return b >= 0x80 && b <= 0x9F; /* no surrogates */
        case 0xF0: return b >= 0x90 && b <= 0xBF;
        case 0xF4: return b >= 0x80 && b <= 0x8F; /* <= U+10FFFF */
        default: break;
        }
    }
    return b >= 0x80 && b <= 0xBF;
}

static void feed(pv_detok *d, uint8_t b, sink *s) {
    for (;;) {
        if (d->n_pending == 0) {
            if (b < 0x80) {
                sink_put(s, &b, 1);
            } else if (b >= 0xC2 && b <= 0xF4) {
                d->pending[0] = b;
                d->n_pending = 1;
            } else {
                emit_fffd(s);
            }
            return;
        }
        if (continues(d->pending, d->n_pending, b)) {
            d->pending[d->n_pending++] = b;
            if (d->n_pending == pv_utf8_len(d->pending[0])) {
                sink_put(s, d->pending, (size_t)d->n_pending);
                d->n_pending = 0;
            }
            return;
        }
        /* the pending sequence can never complete: one U+FFFD, then b afresh */
        emit_fffd(s);
        d->n_pending = 0;
    }
}

size_t pv_detok_push(pv_detok *d, int32_t id, char *out, size_t cap) {
    sink s = {out, cap, 0};
    uint32_t l;
    const char *p = piece_of(d->tok, id, d->render_special, &l);
    if (d->at_start && is_text_token(d->tok, id)) {
        d->at_start = false;
        if (d->tok->kind == PV_TOK_SPM && d->tok->add_space_prefix && l && p[0] == ' ') {
            p++;
            l--;
        }
    }
    for (uint32_t i = 0; i < l; i++) feed(d, (uint8_t)p[i], &s);
    return s.w;
}

size_t pv_detok_flush(pv_detok *d, char *out, size_t cap) {
    sink s = {out, cap, 0};
    if (d->n_pending > 0) emit_fffd(&s);
    d->n_pending = 0;
    return s.w;
}
