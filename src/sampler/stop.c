/* stop.c — the stop-string matcher declared in pv_sampler.h. It keeps one byte buffer of
 * text not yet handed out: [rd, safe) may be emitted, [safe, len) is held back because it
 * could still become the beginning of a stop string or ends inside a UTF-8 character. Each
 * push checks, for every new end position in order, whether a stop string ends there (the
 * first completion in text order wins), then recomputes the held tail. Stop strings are
 * short, so the direct comparison (positions x stops x stop length) is cheaper and simpler
 * than an automaton. */
#include <stdlib.h>
#include <string.h>

#include "pv_sampler.h"

#define PV_STOP_SLACK 4096

struct pv_stop {
    char **stops;
    size_t *lens;
    size_t n_stops;
    size_t max_len;

    char *buf;
    size_t cap, rd, safe, len;
    size_t scanned; /* end positions <= scanned were already checked for completions */
    bool matched, failed;
    size_t which;
};

void pv_stop_free(pv_stop *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_stops; i++) free(s->stops[i]);
    free(s->stops);
    free(s->lens);
    free(s->buf);
    free(s);
}

/* Copies the stop strings; returns the matcher (owned by the caller) or NULL. */
pv_stop *pv_stop_new(const char *const *stops, size_t n_stops) {
    if (n_stops && !stops) return NULL;
    pv_stop *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (n_stops) {
        s->stops = pv_calloc_array(n_stops, sizeof *s->stops);
        s->lens = pv_calloc_array(n_stops, sizeof *s->lens);
        if (!s->stops || !s->lens) goto fail;
    }
    s->n_stops = n_stops;
    for (size_t i = 0; i < n_stops; i++) {
        const char *src = stops[i] ? stops[i] : "";
        size_t l = strlen(src);
        s->stops[i] = malloc(l + 1);
        if (!s->stops[i]) goto fail;
        memcpy(s->stops[i], src, l + 1);
        s->lens[i] = l;
        if (l > s->max_len) s->max_len = l;
    }
    s->cap = PV_STOP_SLACK + s->max_len;
    s->buf = malloc(s->cap);
    if (!s->buf) goto fail;
    return s;
fail:
    pv_stop_free(s);
    return NULL;
}

void pv_stop_reset(pv_stop *s) {
    if (!s) return;
    s->rd = s->safe = s->len = s->scanned = 0;
    s->matched = s->failed = false;
    s->which = 0;
}

bool pv_stop_failed(const pv_stop *s) { return s && s->failed; }

/* Length of the UTF-8 sequence a lead byte announces (1 for ASCII and invalid leads, so
 * that stray bytes are never held forever). */
static size_t pv_utf8_seq_len(unsigned char b) {
    if (b < 0xC0) return 1; /* ASCII, or a continuation byte met on its own */
    if (b < 0xE0) return 2;
    if (b < 0xF0) return 3;
    if (b < 0xF8) return 4;
    return 1;
}

/* Moves a cut position p (rd <= p <= len) back so it does not split a character: if the
 * character whose last byte precedes p needs bytes at or after p, cut before it. */
static size_t pv_utf8_cut(const pv_stop *s, size_t p) {
    const unsigned char *b = (const unsigned char *)s->buf;
    size_t lead = p;
    for (int back = 0; back < 4 && lead > s->rd; back++) {
        lead--;
        if ((b[lead] & 0xC0) != 0x80) { /* found the lead byte */
            return lead + pv_utf8_seq_len(b[lead]) > p ? lead : p;
        }
    }
    return p; /* only continuation bytes: invalid text, nothing to protect */
}

/* Does stop i end exactly at position e of the buffer (starting at or after rd)? */
static bool pv_stop_ends_at(const pv_stop *s, size_t i, size_t e) {
    size_t l = s->lens[i];
    return l > 0 && e >= s->rd + l && memcmp(s->buf + e - l, s->stops[i], l) == 0;
}

/* Is buf[p, len) a proper prefix of some stop string? */
static bool pv_stop_prefix_at(const pv_stop *s, size_t p) {
    size_t tail = s->len - p;
    for (size_t i = 0; i < s->n_stops; i++)
        if (s->lens[i] > tail && memcmp(s->buf + p, s->stops[i], tail) == 0) return true;
    return false;
}

static bool pv_stop_grow(pv_stop *s, size_t need) {
    if (s->rd > 0) { /* drop what was taken before growing */
        memmove(s->buf, s->buf + s->rd, s->len - s->rd);
        s->len -= s->rd;
        s->safe -= s->rd;
        s->scanned -= s->rd;
        s->rd = 0;
    }
    if (s->len + need <= s->cap) return true;
    size_t cap = s->cap;
    while (cap < s->len + need) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *nb = realloc(s->buf, cap);
    if (!nb) return false;
    s->buf = nb;
    s->cap = cap;
    return true;
}

bool pv_stop_push(pv_stop *s, const char *text, size_t len, size_t *which) {
    if (!s) return false;
    if (s->matched) {
        if (which) *which = s->which;
        return true;
    }
    if (len == 0) return false;
    if (!text || !pv_stop_grow(s, len)) {
        s->failed = true;
        return false;
    }
    memcpy(s->buf + s->len, text, len);
    s->len += len;

    /* completions, in order of their end position; at one end, the longest stop */
    for (size_t e = s->scanned + 1; e <= s->len; e++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < s->n_stops; i++)
            if (pv_stop_ends_at(s, i, e) && (best == SIZE_MAX || s->lens[i] > s->lens[best]))
                best = i;
        if (best != SIZE_MAX) {
            s->matched = true;
            s->which = best;
            s->safe = e - s->lens[best];
            s->len = s->safe; /* the stop and what follows are gone */
            s->scanned = s->len;
            if (which) *which = best;
            return true;
        }
    }
    s->scanned = s->len;

    /* the held tail starts at the earliest position that is still a possible stop start */
    size_t hold = s->len;
    size_t from = s->len - s->rd > s->max_len ? s->len - s->max_len : s->rd;
    if (from < s->safe) from = s->safe;
    for (size_t p = from; p < s->len; p++) {
        if (pv_stop_prefix_at(s, p)) {
            hold = p;
            break;
        }
    }
    size_t cut = pv_utf8_cut(s, hold);
    if (cut > s->safe) s->safe = cut;
    return false;
}

size_t pv_stop_available(const pv_stop *s) { return s ? s->safe - s->rd : 0; }

size_t pv_stop_take(pv_stop *s, char *out, size_t cap) {
    if (!s || !out) return 0;
    size_t n = PV_MIN(cap, s->safe - s->rd);
    memcpy(out, s->buf + s->rd, n);
    s->rd += n;
    if (s->rd == s->len) s->rd = s->safe = s->len = s->scanned = 0; /* empty: rewind */
    return n;
}

size_t pv_stop_finish(pv_stop *s, char *out, size_t cap) {
    if (!s) return 0;
    if (!s->matched) s->safe = s->len;
    return pv_stop_take(s, out, cap);
}
