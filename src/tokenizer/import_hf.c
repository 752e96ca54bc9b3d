/* import_hf.c — Hugging Face tokenizer.json (+ tokenizer_config.json) to GGUF tokenizer
 * metadata, following llama.cpp's convert_hf_to_gguf.py:
 *
 *  - BPE model with a ByteLevel pre-tokenizer -> tokenizer.ggml.model "gpt2": tokens by id
 *    (ids missing from vocab and added tokens become "[PAD<i>]", type unused), types
 *    (normal; added special -> control; added non-special -> user-defined, except texts that
 *    look special such as <|...|>, <｜...｜>, <unused..> which the converter makes control),
 *    merges (both "a b" and ["a","b"] forms), and tokenizer.ggml.pre chosen by comparing the
 *    Split regexes with the known families (Llama 3 -> llama-bpe, Qwen2 -> qwen2,
 *    DeepSeek V3 -> deepseek-v3, plain ByteLevel -> gpt-2).
 *  - BPE model with byte_fallback (Mistral, Gemma 3, Phi-3's tokenizer.json) -> model
 *    "llama" (SentencePiece-style): <0xXX> tokens typed byte, the unk token unknown, scores
 *    = -rank of the merge that first creates each token (tokens no merge creates score
 *    below every merge), and the merges themselves: our SPM encoder then applies the merge
 *    ranks exactly (the "SPM-BPE" path in spm.c), while other readers still get usable
 *    scores. add_space_prefix from the normalizer's Prepend("▁") or a Metaspace
 *    pre-tokenizer's prepend scheme.
 *  - bos/eos/unk/pad ids and add_bos/add_eos from tokenizer_config.json, else from the
 *    post_processor's TemplateProcessing; tokenizer.chat_template when present. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/pv_gguf.h"
#include "tok_internal.h"

/* Known pre-tokenizer regex sets, as tokenizer.json spells them (JSON-decoded). */
typedef struct {
    const char *pre;
    const char *re[4];
} hf_pre;

/* clang-format off */
static const hf_pre k_hf_pres[] = {
    {"llama-bpe",
     {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"qwen2",
     {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
};
/* clang-format on */

typedef struct {
    const char *path;
    pv_error *err;
    /* token table being built */
    char **tok;
    uint64_t *len;
    int32_t *type;
    float *score;
    int32_t n;
    /* regexes found in the pre-tokenizer */
    const char *re[8];
    int n_re;
    bool byte_level, byte_level_regex, metaspace_prefix;
} imp;

static const char *jstr(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* convert_hf_to_gguf's does_token_look_special */
static bool looks_special(const char *s) {
    size_t n = strlen(s);
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < PV_ARRAY_LEN(exact); i++)
        if (!strcmp(s, exact[i])) return true;
    if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) return true;
    /* <｜ ... ｜> (fullwidth bars, DeepSeek) */
    if (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>"))
        return true;
    if (!strncmp(s, "<unused", 7) && n > 7 && s[n - 1] == '>') return true;
    return false;
}

/* Collects Split regexes and ByteLevel / Metaspace settings from a pre_tokenizer tree. */
static void scan_pre(imp *im, const json_t *pt) {
    if (!json_is_object(pt)) return;
    const char *type = jstr(pt, "type");
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(pt, "pretokenizers");
        size_t i;
        const json_t *e;
        json_array_foreach(list, i, e) scan_pre(im, e);
    } else if (!strcmp(type, "Split")) {
        const json_t *pat = json_object_get(pt, "pattern");
        const char *re = jstr(pat, "Regex");
        if (re && im->n_re < (int)PV_ARRAY_LEN(im->re)) im->re[im->n_re++] = re;
    } else if (!strcmp(type, "ByteLevel")) {
        im->byte_level = true;
        const json_t *ur = json_object_get(pt, "use_regex");
        if (!ur || json_is_true(ur)) im->byte_level_regex = true;
    } else if (!strcmp(type, "Metaspace")) {
        const char *scheme = jstr(pt, "prepend_scheme");
        const json_t *aps = json_object_get(pt, "add_prefix_space");
        if ((scheme && strcmp(scheme, "never")) || json_is_true(aps)) im->metaspace_prefix = true;
    }
}

/* Whether the normalizer (any depth of Sequence) prepends "▁" / replaces " " with "▁". */
static void scan_norm(const json_t *n, bool *prepend, bool *replace) {
    if (!json_is_object(n)) return;
    const char *type = jstr(n, "type");
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(n, "normalizers"), i, e) scan_norm(e, prepend, replace);
    } else if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (p && !strcmp(p, "\xe2\x96\x81")) *prepend = true;
    } else if (!strcmp(type, "Replace")) {
        const char *c = jstr(n, "content");
        if (c && !strcmp(c, "\xe2\x96\x81")) *replace = true;
    }
}

static pv_status choose_pre(imp *im, const char **pre) {
    if (im->n_re == 0) {
        if (im->byte_level_regex) {
            *pre = "gpt-2";
            return PV_OK;
        }
        return pv_error_set(im->err, PV_ERR_UNSUPPORTED,
                            "%s: ByteLevel BPE without a pre-tokenizer regex is not supported",
                            im->path);
    }
    for (size_t k = 0; k < PV_ARRAY_LEN(k_hf_pres); k++) {
        int n = 0;
        while (n < 4 && k_hf_pres[k].re[n]) n++;
        if (n != im->n_re) continue;
        bool eq = true;
        for (int i = 0; i < n && eq; i++) eq = !strcmp(im->re[i], k_hf_pres[k].re[i]);
        if (eq) {
            *pre = k_hf_pres[k].pre;
            return PV_OK;
        }
    }
    return pv_error_set(im->err, PV_ERR_UNSUPPORTED,
                        "%s: unrecognized pre-tokenizer regex '%.200s' (known families: "
                        "llama-bpe, qwen2, deepseek-v3, gpt-2)",
                        im->path, im->re[0]);
}

/* A special token named in tokenizer_config.json: a string or {"content": ...}. */
static const char *config_token(const json_t *cfg, const char *key) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

static int32_t find_id(const imp *im, const char *text) {
    if (!text) return -1;
    size_t n = strlen(text);
    for (int32_t i = 0; i < im->n; i++)
        if (im->len[i] == n && !memcmp(im->tok[i], text, n)) return i;
    return -1;
}

/* TemplateProcessing "single": whether it starts / ends with a special token, and which. */
static void scan_post(const json_t *pp, const char **first, const char **last, bool *found) {
    if (!json_is_object(pp)) return;
    const char *type = jstr(pp, "type");
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(pp, "processors"), i, e)
            scan_post(e, first, last, found);
        return;
    }
    if (strcmp(type, "TemplateProcessing")) return;
    const json_t *single = json_object_get(pp, "single");
    size_t n = json_array_size(single);
    if (!n) return;
    *found = true;
    const json_t *a = json_object_get(json_array_get(single, 0), "SpecialToken");
    const json_t *z = json_object_get(json_array_get(single, n - 1), "SpecialToken");
    *first = a ? jstr(a, "id") : NULL;
    *last = z ? jstr(z, "id") : NULL;
}

static void imp_free(imp *im) {
    if (im->tok)
        for (int32_t i = 0; i < im->n; i++) free(im->tok[i]);
    free(im->tok);
    free(im->len);
    free(im->type);
    free(im->score);
}

static bool set_token(imp *im, int64_t id, const char *s, size_t n, int32_t type) {
    if (id < 0 || id >= im->n) return false;
    char *c = malloc(n + 1);
    if (!c) return false;
    memcpy(c, s, n);
    c[n] = '\0';
    free(im->tok[id]);
    im->tok[id] = c;
    im->len[id] = n;
    im->type[id] = type;
    return true;
}

pv_status pv_tokenizer_import_hf(const char *tokenizer_json, const char *tokenizer_config,
                                 struct pv_gguf_writer *g, int32_t *n_vocab_out, pv_error *err) {
    if (n_vocab_out) *n_vocab_out = 0;
    if (!tokenizer_json || !g) return pv_error_set(err, PV_ERR_INVALID, "import: no input");
    json_error_t je;
    json_t *root = json_load_file(tokenizer_json, 0, &je);
    if (!root)
        return pv_error_set(err, PV_ERR_FORMAT, "%s:%d: %s", tokenizer_json, je.line, je.text);
    json_t *cfg = NULL;
    if (tokenizer_config) {
        /* model_max_length is often 1e30 written as an integer: read integers as reals
         * here (the config's only integer fields are such limits) */
        cfg = json_load_file(tokenizer_config, JSON_DECODE_INT_AS_REAL, &je);
        if (!cfg) {
            json_decref(root);
            return pv_error_set(err, PV_ERR_FORMAT, "%s:%d: %s", tokenizer_config, je.line,
                                je.text);
        }
    }
    pv_status st = PV_OK;
    imp im = {.path = tokenizer_json, .err = err};
    char **merge_strs = NULL;
    uint64_t *merge_lens = NULL;
    size_t n_merges = 0;

    const json_t *model = json_object_get(root, "model");
    const char *mtype = jstr(model, "type");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    if (!mtype || strcmp(mtype, "BPE")) {
        st = pv_error_set(err, PV_ERR_UNSUPPORTED,
                          "%s: model.type \"%s\" is not supported (BPE only)", tokenizer_json,
                          mtype ? mtype : "(missing)");
        goto done;
    }
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        st = pv_error_set(err, PV_ERR_FORMAT,
                          "%s: model.vocab (object) and model.merges (array) "
                          "are required",
                          tokenizer_json);
        goto done;
    }
    bool byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    scan_pre(&im, json_object_get(root, "pre_tokenizer"));
    bool spm = byte_fallback && !im.byte_level;
    if (!spm && !im.byte_level) {
        st = pv_error_set(err, PV_ERR_UNSUPPORTED,
                          "%s: BPE without ByteLevel pre-tokenizer or byte_fallback is not "
                          "supported",
                          tokenizer_json);
        goto done;
    }

    /* vocabulary size: highest id in vocab or added_tokens, plus one */
    int64_t max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= (1 << 24)) {
            st = pv_error_set(err, PV_ERR_FORMAT, "%s: bad id for vocab entry '%.64s'",
                              tokenizer_json, key);
            goto done;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    const json_t *added = json_object_get(root, "added_tokens");
    size_t ai;
    const json_t *at;
    json_array_foreach(added, ai, at) {
        const json_t *idv = json_object_get(at, "id");
        if (!json_is_integer(idv) || json_integer_value(idv) < 0 ||
            json_integer_value(idv) >= (1 << 24) || !jstr(at, "content")) {
            st = pv_error_set(err, PV_ERR_FORMAT, "%s: added_tokens[%zu]: bad id or content",
                              tokenizer_json, ai);
            goto done;
        }
        if (json_integer_value(idv) > max_id) max_id = json_integer_value(idv);
    }
    if (max_id < 0) {
        st = pv_error_set(err, PV_ERR_FORMAT, "%s: empty vocabulary", tokenizer_json);
        goto done;
    }
    im.n = (int32_t)(max_id + 1);
    im.tok = calloc((size_t)im.n, sizeof(char *));
    im.len = calloc((size_t)im.n, sizeof(uint64_t));
    im.type = calloc((size_t)im.n, sizeof(int32_t));
    im.score = calloc((size_t)im.n, sizeof(float));
    if (!im.tok || !im.len || !im.type || !im.score) goto oom;
    json_object_foreach((json_t *)vocab, key, val) {
        size_t kl = strlen(key); /* jansson keys are NUL-terminated */
        if (!set_token(&im, json_integer_value(val), key, kl, PV_TOKTYPE_NORMAL)) goto oom;
    }
    json_array_foreach(added, ai, at) {
        const char *c = jstr(at, "content");
        bool special = json_is_true(json_object_get(at, "special"));
        int32_t ty = (special || looks_special(c)) ? PV_TOKTYPE_CONTROL : PV_TOKTYPE_USER_DEFINED;
        if (!set_token(&im, json_integer_value(json_object_get(at, "id")), c,
                       json_string_length(json_object_get(at, "content")), ty))
            goto oom;
    }
    for (int32_t i = 0; i < im.n; i++) {
        if (im.tok[i]) continue;
        char pad[32];
        int l = snprintf(pad, sizeof pad, "[PAD%d]", i);
        if (!set_token(&im, i, pad, (size_t)l, PV_TOKTYPE_UNUSED)) goto oom;
    }

    /* merges, normalised to "a b" strings */
    n_merges = json_array_size(merges);
    merge_strs = calloc(n_merges ? n_merges : 1, sizeof(char *));
    merge_lens = calloc(n_merges ? n_merges : 1, sizeof(uint64_t));
    if (!merge_strs || !merge_lens) goto oom;
    for (size_t i = 0; i < n_merges; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t al, bl;
        if (json_is_string(m)) {
            a = json_string_value(m);
            al = json_string_length(m);
            b = NULL;
            bl = 0;
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            al = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            bl = json_string_length(json_array_get(m, 1));
        } else {
            st = pv_error_set(err, PV_ERR_FORMAT,
                              "%s: model.merges[%zu] is neither \"a b\" nor "
                              "[\"a\", \"b\"]",
                              tokenizer_json, i);
            goto done;
        }
        size_t n = b ? al + 1 + bl : al;
        char *s = malloc(n + 1);
        if (!s) goto oom;
        memcpy(s, a, al);
        if (b) {
            s[al] = ' ';
            memcpy(s + al + 1, b, bl);
        }
        s[n] = '\0';
        merge_strs[i] = s;
        merge_lens[i] = n;
    }

    if (spm) {
        /* scores: -(rank of the first merge creating the token); others below all merges */
        for (int32_t i = 0; i < im.n; i++) im.score[i] = -(float)n_merges - 1.0f;
        /* map the merged texts to ids with a simple hash of the token table */
        uint64_t cap = 16;
        while (cap < (uint64_t)im.n * 2) cap <<= 1;
        int32_t *slots = malloc(cap * sizeof(int32_t));
        if (!slots) goto oom;
        for (uint64_t k = 0; k < cap; k++) slots[k] = -1;
        for (int32_t i = 0; i < im.n; i++) {
            uint64_t h = 1469598103934665603ull;
            for (size_t k = 0; k < im.len[i]; k++)
                h = (h ^ (uint8_t)im.tok[i][k]) * 1099511628211ull;
            uint64_t s = h & (cap - 1);
            while (slots[s] >= 0) s = (s + 1) & (cap - 1);
            slots[s] = i;
        }
        for (size_t m = n_merges; m-- > 0;) {
            /* merged text = the merge string without its separating space */
            const char *s = merge_strs[m];
            size_t n = merge_lens[m], sp = 1;
            while (sp < n && s[sp] != ' ') sp++;
            if (sp >= n) continue;
            uint64_t h = 1469598103934665603ull;
            for (size_t k = 0; k < n; k++)
                if (k != sp) h = (h ^ (uint8_t)s[k]) * 1099511628211ull;
            for (uint64_t q = h & (cap - 1); slots[q] >= 0; q = (q + 1) & (cap - 1)) {
                int32_t id = slots[q];
                if (im.len[id] == n - 1 && !memcmp(im.tok[id], s, sp) &&
                    !memcmp(im.tok[id] + sp, s + sp + 1, n - sp - 1)) {
                    im.score[id] = -(float)m; /* iterating backwards: the first merge wins */
                    break;
                }
            }
        }
        free(slots);
        const char *unk = jstr(model, "unk_token");
        for (int32_t i = 0; i < im.n; i++) {
            const char *s = im.tok[i];
            if (im.type[i] == PV_TOKTYPE_CONTROL || im.type[i] == PV_TOKTYPE_USER_DEFINED) {
                im.score[i] = 0.0f;
            } else if (im.len[i] == 6 && !strncmp(s, "<0x", 3) && s[5] == '>') {
                im.type[i] = PV_TOKTYPE_BYTE;
            }
            if (unk && !strcmp(s, unk)) im.type[i] = PV_TOKTYPE_UNKNOWN;
        }
    }

    pv_gguf_writer_set_str(g, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!spm) {
        const char *pre = NULL;
        st = choose_pre(&im, &pre);
        if (st != PV_OK) goto done;
        pv_gguf_writer_set_str(g, "tokenizer.ggml.pre", pre);
    } else {
        bool prepend = false, replace = false;
        scan_norm(json_object_get(root, "normalizer"), &prepend, &replace);
        pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_space_prefix",
                                prepend || im.metaspace_prefix);
    }
    pv_gguf_writer_set_arr_strn(g, "tokenizer.ggml.tokens", (const char *const *)im.tok, im.len,
                                (uint64_t)im.n);
    pv_gguf_writer_set_arr(g, "tokenizer.ggml.token_type", PV_VAL_I32, im.type, (uint64_t)im.n);
    if (spm)
        pv_gguf_writer_set_arr(g, "tokenizer.ggml.scores", PV_VAL_F32, im.score, (uint64_t)im.n);
    pv_gguf_writer_set_arr_strn(g, "tokenizer.ggml.merges", (const char *const *)merge_strs,
                                merge_lens, n_merges);

    /* special ids and add_bos/add_eos */
    const char *first = NULL, *last = NULL;
    bool have_template = false;
    scan_post(json_object_get(root, "post_processor"), &first, &last, &have_template);
    static const struct {
        const char *cfg, *key;
    } specials[] = {
        {"bos_token", "tokenizer.ggml.bos_token_id"},
        {"eos_token", "tokenizer.ggml.eos_token_id"},
        {"unk_token", "tokenizer.ggml.unknown_token_id"},
        {"pad_token", "tokenizer.ggml.padding_token_id"},
    };
    for (size_t k = 0; k < PV_ARRAY_LEN(specials); k++) {
        const char *text = cfg ? config_token(cfg, specials[k].cfg) : NULL;
        if (!text && k == 0) text = first; /* BOS from the template */
        if (!text && k == 2 && spm) text = jstr(model, "unk_token");
        int32_t id = find_id(&im, text);
        if (id >= 0) pv_gguf_writer_set_u32(g, specials[k].key, (uint32_t)id);
    }
    const json_t *ab = cfg ? json_object_get(cfg, "add_bos_token") : NULL;
    const json_t *ae = cfg ? json_object_get(cfg, "add_eos_token") : NULL;
    if (json_is_boolean(ab))
        pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_bos_token", json_is_true(ab));
    else if (have_template)
        pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_bos_token", first != NULL);
    if (json_is_boolean(ae))
        pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_eos_token", json_is_true(ae));
    else if (have_template)
        pv_gguf_writer_set_bool(g, "tokenizer.ggml.add_eos_token", last != NULL);
    if (cfg) {
        const json_t *ct = json_object_get(cfg, "chat_template");
        if (json_is_string(ct)) {
            pv_gguf_writer_set_str(g, "tokenizer.chat_template", json_string_value(ct));
        } else if (json_is_array(ct)) { /* [{name, template}, ...]: the "default" one */
            size_t i;
            const json_t *e;
            json_array_foreach(ct, i, e) {
                const char *name = jstr(e, "name"), *tpl = jstr(e, "template");
                if (name && tpl && !strcmp(name, "default"))
                    pv_gguf_writer_set_str(g, "tokenizer.chat_template", tpl);
            }
        }
    }
    if (n_vocab_out) *n_vocab_out = im.n;
    goto done;
oom:
    st = pv_error_set(err, PV_ERR_NOMEM, "%s: out of memory", tokenizer_json);
done:
    if (merge_strs)
        for (size_t i = 0; i < n_merges; i++) free(merge_strs[i]);
    free(merge_strs);
    free(merge_lens);
    imp_free(&im);
    json_decref(root);
    json_decref(cfg);
    return st;
}
