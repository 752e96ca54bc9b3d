/* grammar_driver.c — test driver for the JSON Schema oracle test (schema_oracle.js). Reads
 * one JSON request on stdin:
 *   {"vocab": "<gguf path>", "cases": [{"name", "schema", "instances": ["<json text>"...],
 *     "walks": N, "seed": S, "max_tokens": T}]}
 * and for each case converts the schema (prefix "S"), compiles it, reports for every
 * instance text whether the grammar accepts it completely, and produces N random outputs
 * by walking the token mask of the vocabulary: each step picks uniformly among the allowed
 * tokens (half of the time among the allowed single-byte ones, so structure closes more
 * often), may stop when the state is complete (more likely as the output grows), and masks
 * with pv_grammar_mask_budget so that the output always closes within max_tokens. Writes {"results": [{"name", "error", "gbnf", "accepted": [...],
 * "walks": ["<text>"...], "closed": [bool...]}]} on stdout. The node script is the judge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/pv_grammar.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static bool accepts(const pv_grammar *g, const char *s, size_t n) {
    pv_grammar_state *st = NULL;
    if (pv_grammar_state_init(g, &st, NULL) != PV_OK) return false;
    bool ok = pv_grammar_state_accept(st, s, n) && pv_grammar_state_complete(st);
    pv_grammar_state_free(st);
    return ok;
}

/* One random walk; returns the text (malloc'ed) and whether it ended complete. */
static char *walk(const pv_grammar *g, const pv_tokenizer *tok, const pv_grammar_vocab *v,
                  const uint8_t *single_byte, pv_rng *r, int max_tokens, bool *closed) {
    int32_t n = pv_grammar_vocab_n(v);
    uint8_t *mask = malloc((size_t)n);
    int32_t *all = malloc((size_t)n * sizeof(int32_t));
    int32_t *one = malloc((size_t)n * sizeof(int32_t));
    size_t cap = 256, len = 0;
    char *text = malloc(cap);
    pv_grammar_state *s = NULL;
    *closed = false;
    if (!mask || !all || !one || !text || pv_grammar_state_init(g, &s, NULL) != PV_OK) goto out;
    for (int step = 0; step < max_tokens; step++) {
        bool complete = pv_grammar_state_complete(s);
        if (complete && pv_rng_uniform(r) < 0.2 + 0.8 * step / max_tokens) break;
        /* the budget mask keeps min_bytes <= tokens left, so the walk always closes */
        pv_grammar_mask_budget(s, v, mask, (size_t)(max_tokens - step - 1));
        int32_t na = 0, n1 = 0;
        for (int32_t id = 0; id < n; id++) {
            if (!mask[id] || pv_tokenizer_is_eog(tok, id)) continue;
            all[na++] = id;
            if (single_byte[id]) one[n1++] = id;
        }
        if (na == 0) {
            if (getenv("PV_DRIVER_DEBUG"))
                fprintf(stderr, "driver: empty mask at step %d/%d, min_bytes %zu, complete %d, text %.*s\n", step,
                        max_tokens, pv_grammar_state_min_bytes(s), (int)complete, (int)len, text);
            break;
        }
        int32_t id = (n1 && pv_rng_uniform(r) < 0.5) ? one[pv_rng_next(r) % (uint64_t)n1]
                                                      : all[pv_rng_next(r) % (uint64_t)na];
        char piece[1024];
        size_t pl = pv_tokenizer_piece(tok, id, piece, sizeof piece, false);
        if (pl > sizeof piece || !pv_grammar_accept_token(s, v, id)) {
            fprintf(stderr, "driver: token %d allowed by the mask but refused\n", id);
            exit(1);
        }
        while (len + pl + 1 > cap) {
            cap *= 2;
            text = realloc(text, cap);
            if (!text) exit(1);
        }
        memcpy(text + len, piece, pl);
        len += pl;
    }
    *closed = pv_grammar_state_complete(s);
out:
    if (text) text[len] = 0;
    pv_grammar_state_free(s);
    free(mask);
    free(all);
    free(one);
    return text;
}

int main(void) {
    json_error_t je;
    json_t *req = json_loadf(stdin, 0, &je);
    if (!req) {
        fprintf(stderr, "driver: bad request: %s\n", je.text);
        return 2;
    }
    const char *vpath = json_string_value(json_object_get(req, "vocab"));
    pv_weights *w = NULL;
    pv_tokenizer *tok = NULL;
    pv_grammar_vocab *voc = NULL;
    pv_error err = {0};
    if (!vpath || pv_weights_open(vpath, &w, &err) != PV_OK || pv_tokenizer_init(w, &tok, &err) != PV_OK ||
        pv_grammar_vocab_init(tok, &voc, &err) != PV_OK) {
        fprintf(stderr, "driver: vocabulary: %s\n", err.msg);
        return 2;
    }
    /* which tokens produce exactly one byte (computed once: the walks pick among them) */
    int32_t nv = pv_tokenizer_n_vocab(tok);
    uint8_t *single_byte = calloc((size_t)nv, 1);
    if (!single_byte) return 2;
    for (int32_t id = 0; id < nv; id++) {
        char b[8];
        single_byte[id] = pv_tokenizer_piece(tok, id, b, sizeof b, false) == 1;
    }
    json_t *results = json_array();
    size_t ci;
    json_t *cs;
    json_array_foreach(json_object_get(req, "cases"), ci, cs) {
        json_t *res = json_object();
        json_object_set(res, "name", json_object_get(cs, "name"));
        char *gbnf = NULL;
        pv_grammar *g = NULL;
        pv_status st = pv_grammar_schema_to_gbnf(json_object_get(cs, "schema"), "S", &gbnf, &err);
        if (st == PV_OK) st = pv_grammar_compile(gbnf, strlen(gbnf), "S", &g, &err);
        json_object_set_new(res, "gbnf", gbnf ? json_string(gbnf) : json_null());
        json_object_set_new(res, "error", st == PV_OK ? json_null() : json_string(err.msg));
        if (st == PV_OK) {
            json_t *acc = json_array();
            size_t ii;
            json_t *inst;
            json_array_foreach(json_object_get(cs, "instances"), ii, inst) {
                const char *t = json_string_value(inst);
                json_array_append_new(acc, json_boolean(t && accepts(g, t, strlen(t))));
            }
            json_object_set_new(res, "accepted", acc);
            json_t *walks = json_array(), *closed = json_array();
            pv_rng r;
            pv_rng_seed(&r, (uint64_t)json_integer_value(json_object_get(cs, "seed")));
            int nw = (int)json_integer_value(json_object_get(cs, "walks"));
            int mt = (int)json_integer_value(json_object_get(cs, "max_tokens"));
            if (mt <= 0) mt = 64;
            for (int k = 0; k < nw; k++) {
                bool ok;
                char *txt = walk(g, tok, voc, single_byte, &r, mt, &ok);
                json_t *js = json_stringn(txt ? txt : "", txt ? strlen(txt) : 0);
                /* an unclosed walk may end inside a UTF-8 character; the judge fails it anyway */
                json_array_append_new(walks, js ? js : json_string("<not UTF-8>"));
                json_array_append_new(closed, json_boolean(ok));
                free(txt);
            }
            json_object_set_new(res, "walks", walks);
            json_object_set_new(res, "closed", closed);
        }
        free(gbnf);
        pv_grammar_free(g);
        json_array_append_new(results, res);
    }
    json_t *out = json_pack("{s:o}", "results", results);
    json_dumpf(out, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(out);
    json_decref(req);
    free(single_byte);
    pv_grammar_vocab_free(voc);
    pv_tokenizer_free(tok);
    pv_weights_free(w);
    return 0;
}
