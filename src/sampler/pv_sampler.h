/* pv_sampler.h — turns a row of logits into the next token: repetition / presence /
 * frequency penalties over the recent history, temperature, top-k, top-p, min-p, then a
 * draw from a seeded generator (or argmax when temperature <= 0); and the stop-string
 * matcher that holds back text which might be the start of a stop string, so that a stop
 * string never leaks into output even when it spans tokens.
 *
 * A sampler is per sequence and allocates everything at creation: sampling does not
 * allocate (the decode loop stays allocation-free). */
#ifndef PV_SAMPLER_H
#define PV_SAMPLER_H

#include "../core/pv_core.h"

/* The chain, in llama.cpp's default order (each step sees the survivors of the previous):
 *   1. penalties on the raw logits, for every token seen in the last penalty_last_n accepted
 *      tokens (count c > 0): logit = logit > 0 ? logit / repeat_penalty
 *      : logit * repeat_penalty (llama.cpp), then logit -= c * frequency_penalty +
 *      presence_penalty (OpenAI); applied in place on the caller's logits;
 *   2. top-k: keep the k largest logits (ties broken by the lower token id);
 *   3. top-p: softmax (temperature 1) over the survivors, sorted by logit descending; keep
 *      the shortest prefix whose cumulative probability reaches top_p (at least one);
 *   4. min-p: keep tokens whose probability is >= min_p * the largest probability
 *      (logit >= max_logit + log(min_p));
 *   5. temperature: logits / temperature;
 *   6. draw from the softmax of what is left with the sampler's own xoshiro256** generator.
 * temperature <= 0 is greedy: penalties, then the argmax (first index of the maximum); the
 * filters cannot change the argmax, so they are skipped. Non-finite logits: NaN counts as
 * -inf (never chosen unless everything is -inf/NaN, then argmax decides), +inf as the
 * largest float (it wins the draw). */
typedef struct pv_sampler_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off (llama.cpp semantics: divide positive logits) */
    int32_t penalty_last_n;  /* history window for all penalties (0: off, -1: all) */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;
} pv_sampler_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off, last_n 64,
 * seed from the clock. */
pv_sampler_params pv_sampler_params_default(void);

typedef struct pv_sampler pv_sampler;

/* Allocates every buffer the sampler needs (O(n_vocab) + the history window). NULL when
 * n_vocab <= 0, penalty_last_n < -1, or on allocation failure. Copies *p. */
pv_sampler *pv_sampler_new(const pv_sampler_params *p, int32_t n_vocab);
void pv_sampler_free(pv_sampler *s);
/* Forgets the history and reseeds (for reuse across requests). */
void pv_sampler_reset(pv_sampler *s, uint64_t seed);
/* Picks a token from logits[n_vocab]; logits may be modified (penalties). Does not record
 * the token: call pv_sampler_accept with it. Never allocates. */
int32_t pv_sampler_sample(pv_sampler *s, float *logits);
/* Records a token (prompt or generated) in the penalty history. Ids outside [0, n_vocab)
 * are ignored. Never allocates. */
void pv_sampler_accept(pv_sampler *s, int32_t token);

/* Argmax helper (first index of the maximum; NaN never wins; 0 if n <= 0 or all NaN). */
int32_t pv_sampler_argmax(const float *logits, int32_t n);

/* ---- stop strings ----
 * A pv_stop sits between the detokenizer and the output. Generated text is pushed in
 * pieces of any size (one token's text, possibly part of a UTF-8 character); the matcher
 * keeps a buffer of text not yet handed out and splits it into
 *   - "safe" text: cannot be the start of any stop string and ends on a UTF-8 character
 *     boundary; the caller moves it out with pv_stop_take (or sees its size with
 *     pv_stop_available);
 *   - "held" text: a tail that is a proper prefix of some stop string (a possible start of
 *     a stop spanning the next tokens), or an incomplete UTF-8 character at the end.
 * A stop string completes when the text contains it. The first completion in text order
 * (smallest end position; at equal ends, the earliest start, i.e. the longest stop) wins:
 * the safe text becomes exactly the text before the stop's first byte, and the stop string
 * and anything after it are never released. Later pushes are ignored (they return true
 * with the same index). A held false start ("</" then "x") is released as soon as it can
 * no longer become a stop. Matching is on bytes; empty stop strings are ignored.
 * Usage per token: push, then take until 0; at the end of generation without a match,
 * finish until 0 releases the held tail (incomplete UTF-8 bytes included, as they are).
 * pv_stop allocates only when text piles up beyond its initial buffer (4 KiB + the longest
 * stop) because the caller did not take it; a failed growth is reported by pv_stop_failed. */
typedef struct pv_stop pv_stop;

/* Copies the stop strings (NUL-terminated; `stops` may be NULL when n_stops is 0: then
 * only UTF-8 holding applies). NULL on allocation failure. */
pv_stop *pv_stop_new(const char *const *stops, size_t n_stops);
void pv_stop_free(pv_stop *s);
/* Appends `len` bytes of newly generated text. Returns true when a stop string has
 * completed (now or in an earlier push): then *which (if non-NULL) is its index in the
 * array given to pv_stop_new. Afterwards pv_stop_take yields the text that may be emitted. */
bool pv_stop_push(pv_stop *s, const char *text, size_t len, size_t *which);
/* Bytes that pv_stop_take would hand out now (the current safe length). */
size_t pv_stop_available(const pv_stop *s);
/* Moves the emittable text out: copies up to cap bytes into out and returns the count
 * (call until 0; a small cap may split a character between two calls, the concatenation
 * is what counts). */
size_t pv_stop_take(pv_stop *s, char *out, size_t cap);
/* At the end of generation: if no stop matched, marks the held-back tail safe; then works
 * like pv_stop_take (call until 0). After a match it only drains the text before the stop. */
size_t pv_stop_finish(pv_stop *s, char *out, size_t cap);
/* Forgets all text and any match (for reuse across requests); keeps the stop strings. */
void pv_stop_reset(pv_stop *s);
/* True if a push could not grow the buffer (the pushed text was dropped). */
bool pv_stop_failed(const pv_stop *s);

#endif /* PV_SAMPLER_H */
