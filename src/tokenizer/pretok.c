/* pretok.c — the byte-level BPE pre-tokenizers, selected by tokenizer.ggml.pre. Each family
 * is a list of regexes copied from llama.cpp's llama-vocab.cpp (llm_tokenizer_bpe), which in
 * turn are the Hugging Face tokenizer.json Split patterns (with (?i:'s|...) spelled out as
 * '[sS]|... so no case folding of non-ASCII letters sneaks in). They run through PCRE2 with
 * JIT in UTF + UCP mode (so \p{L}, \p{N}, \s are Unicode-aware) and MATCH_INVALID_UTF (bad
 * bytes never match and end up in the gaps instead of failing the match).
 *
 * Splitting is llama.cpp's unicode_regex_split / HF's Split(behavior=Isolated): the regexes
 * apply in order, each to every piece left by the previous one; both the matches and the
 * text between them become pieces. The subject of each match is the piece alone, so
 * look-arounds and `$` see the piece boundaries, as in llama.cpp.
 *
 * Compiled patterns are shared read-only; match data is created per call, so splitting is
 * thread-safe. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* clang-format off */
#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

static const char *const re_llama3[] = {
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
static const char *const re_qwen2[] = {
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
static const char *const re_gpt2[] = {GPT2_RE};
static const char *const re_starcoder[] = {"\\p{N}", GPT2_RE};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    GPT2_RE,
    "[0-9][0-9][0-9]",
};
static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    GPT2_RE,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
};
/* deepseek-llm's letter class: U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126 and U+212A are
 * written as \x{...} because their literal forms are not NFC-stable — a tool that
 * normalizes the source would turn "ῐ-ΐ" into an out-of-order range */
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝ\\x{1F5F}-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌ\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-\\x{212D}ℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
};
static const char *const re_deepseek_coder[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}",
};
static const char *const re_deepseek_v3[] = {
    "\\p{N}{1,3}",
    "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};
/* clang-format on */

typedef struct {
    const char *names; /* accepted tokenizer.ggml.pre values, '|'-separated; first = canonical */
    const char *const *re;
    int n_re;
    bool ignore_merges; /* llama-bpe: whole pieces that are tokens skip merging (adds BOS too) */
    bool nfc;           /* HF normalizer is NFC (Qwen2) */
} pre_def;

#define RE(a) a, (int)PV_ARRAY_LEN(a)
static const pre_def k_pre_defs[] = {
    {"default", RE(re_default), false, false},
    {"llama-bpe|llama3|llama-v3", RE(re_llama3), true, false},
    {"qwen2|deepseek-r1-qwen", RE(re_qwen2), false, true},
    {"gpt-2|phi-2", RE(re_gpt2), false, false},
    {"mpt", RE(re_gpt2), false, false},
    {"deepseek-llm", RE(re_deepseek_llm), false, false},
    {"deepseek-coder", RE(re_deepseek_coder), false, false},
    {"deepseek-v3", RE(re_deepseek_v3), false, false},
    {"starcoder|smollm", RE(re_starcoder), false, false},
    {"refact", RE(re_starcoder), false, false},
    {"falcon", RE(re_falcon), false, false},
};

const char *pv_pretok_supported(void) {
    return "default, llama-bpe (llama3, llama-v3), qwen2 (deepseek-r1-qwen), gpt-2 (phi-2), "
           "mpt, deepseek-llm, deepseek-coder, deepseek-v3, starcoder (smollm), refact, falcon";
}

struct pv_pretok {
    const pre_def *def;
    pcre2_code *code[8];
    int n;
};

static bool name_in(const char *names, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == nl && !memcmp(p, name, l)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

void pv_pretok_free(pv_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p);
}

pv_status pv_pretok_new(const char *name, pv_pretok **out, bool *ignore_merges, bool *nfc,
                        pv_error *err) {
    *out = NULL;
    if (!name || !*name) name = "default";
    const pre_def *def = NULL;
    for (size_t i = 0; i < PV_ARRAY_LEN(k_pre_defs); i++)
        if (name_in(k_pre_defs[i].names, name)) def = &k_pre_defs[i];
    if (!def)
        return pv_error_set(err, PV_ERR_UNSUPPORTED,
                            "unknown tokenizer.ggml.pre \"%s\" (supported: %s)", name,
                            pv_pretok_supported());
    pv_pretok *p = calloc(1, sizeof(*p));
    if (!p) return pv_error_set(err, PV_ERR_NOMEM, "tokenizer: out of memory");
    p->def = def;
    for (int i = 0; i < def->n_re; i++) {
        int ec = 0;
        PCRE2_SIZE eo = 0;
        pcre2_code *c = pcre2_compile(
            (PCRE2_SPTR)def->re[i], PCRE2_ZERO_TERMINATED,
            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!c) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            pv_pretok_free(p);
            return pv_error_set(err, PV_ERR_INTERNAL, "pre-tokenizer %s: regex %d: %s at %zu", name,
                                i, (const char *)msg, (size_t)eo);
        }
        /* JIT is an optimisation: if it is unavailable the interpreter runs instead */
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
        p->code[p->n++] = c;
    }
    *ignore_merges = def->ignore_merges;
    *nfc = def->nfc;
    *out = p;
    return PV_OK;
}

typedef struct {
    size_t off, len;
} span;

typedef struct {
    span *v;
    size_t n, cap;
} spans;

static bool spans_push(spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        span *nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv) return false;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = (span){off, len};
    return true;
}

pv_status pv_pretok_split(const pv_pretok *p, const char *text, size_t len, pv_pretok_fn fn,
                          void *ctx, pv_error *err) {
    pv_status st = PV_OK;
    spans cur = {0}, nxt = {0};
    pcre2_match_data *md = pcre2_match_data_create(32, NULL);
    if (!md || !spans_push(&cur, 0, len)) {
        st = pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
        goto done;
    }
    for (int r = 0; r < p->n; r++) {
        nxt.n = 0;
        for (size_t k = 0; k < cur.n; k++) {
            const char *s = text + cur.v[k].off;
            size_t n = cur.v[k].len, last = 0, at = 0;
            while (at <= n) {
                int rc = pcre2_match(p->code[r], (PCRE2_SPTR)s, n, at, 0, md, NULL);
                if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
                    rc = pcre2_match(p->code[r], (PCRE2_SPTR)s, n, at, PCRE2_NO_JIT, md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    st = pv_error_set(err, PV_ERR_INTERNAL, "pre-tokenizer: match failed: %s",
                                      (const char *)msg);
                    goto done;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                bool ok = true;
                if (ms > last) ok = spans_push(&nxt, cur.v[k].off + last, ms - last);
                if (me > ms) ok = ok && spans_push(&nxt, cur.v[k].off + ms, me - ms);
                if (!ok) {
                    st = pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
                    goto done;
                }
                last = me;
                if (me == ms) { /* empty match: step over one character */
                    if (me >= n) break;
                    at = me + (size_t)pv_utf8_len((uint8_t)s[me]);
                    if (at > n) at = n;
                } else {
                    at = me;
                }
            }
            if (last < n && !spans_push(&nxt, cur.v[k].off + last, n - last)) {
                st = pv_error_set(err, PV_ERR_NOMEM, "tokenize: out of memory");
                goto done;
            }
        }
        spans tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    for (size_t k = 0; k < cur.n; k++)
        if (!fn(text + cur.v[k].off, cur.v[k].len, ctx)) break;
done:
    pcre2_match_data_free(md);
    free(cur.v);
    free(nxt.v);
    return st;
}
