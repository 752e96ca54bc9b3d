/* fuzz_toml_driver.c — deterministic driver for the fuzz target in fuzz_toml.c, run by ctest
 * (under ASan/UBSan in the sanitizer build). It reads the TOML corpus (tests/config/{valid,
 * invalid,unsupported}) and feeds LLVMFuzzerTestOneInput the seeds and N random mutations of
 * them (byte flips, token insertions, deletions, line duplication/swaps, splices of two
 * seeds), seeded so that every run is the same. The target aborts on a violation; the driver
 * also checks that both accepted and rejected inputs were exercised.
 * usage: test_fuzz_toml CORPUS_DIR [ITERATIONS] */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_test.h"
#include "config/pv_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    char *data;
    size_t len;
} seed;

static const char *const tokens[] = {"=",
                                     "[",
                                     "]",
                                     "[[",
                                     ",",
                                     ".",
                                     "\"",
                                     "'",
                                     "\\",
                                     "\\u00E9",
                                     "\\U0001F600",
                                     "\\uD800",
                                     "#",
                                     "\n",
                                     "\r\n",
                                     "\r",
                                     " ",
                                     "\t",
                                     "0",
                                     "1_0",
                                     "0x1F",
                                     "0o7",
                                     "0b1",
                                     "e+3",
                                     ".5",
                                     "+",
                                     "-",
                                     "inf",
                                     "nan",
                                     "true",
                                     "false",
                                     "{",
                                     "}",
                                     "\"\"\"",
                                     "'''",
                                     "\xC3\xA9",
                                     "\xC3",
                                     "\xF0\x9F\x98\x80",
                                     "a.b",
                                     "[a]",
                                     "[a.b]",
                                     "x = 1\n",
                                     "1979-05-27",
                                     ":",
                                     "[1, [2, 3],]",
                                     "\"k\" = \"v\"\n",
                                     "9223372036854775807",
                                     "-9223372036854775808"};

static size_t load_dir(const char *dir, seed *seeds, size_t n, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return n;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".toml")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%.4000s/%.4000s", dir, e->d_name);
        seeds[n].data = pv_test_read_file(path, &seeds[n].len);
        if (seeds[n].data) n++;
    }
    closedir(d);
    return n;
}

/* Applies 1-4 random edits to buf (len bytes, capacity cap); returns the new length. */
static size_t mutate(pv_test_rng *r, char *buf, size_t len, size_t cap, const seed *seeds, size_t n_seeds) {
    int edits = 1 + (int)(pv_test_rng_u64(r) % 4);
    for (int k = 0; k < edits; k++) {
        size_t pos = len ? pv_test_rng_u64(r) % (len + 1) : 0;
        switch (pv_test_rng_u64(r) % 5) {
        case 0: /* overwrite a byte */
            if (len) buf[pos < len ? pos : len - 1] = (char)(pv_test_rng_u64(r) & 0xFF);
            break;
        case 1: { /* insert a token */
            const char *t = tokens[pv_test_rng_u64(r) % PV_ARRAY_LEN(tokens)];
            size_t tl = strlen(t);
            if (len + tl > cap) break;
            memmove(buf + pos + tl, buf + pos, len - pos);
            memcpy(buf + pos, t, tl);
            len += tl;
            break;
        }
        case 2: { /* delete a span */
            size_t dl = 1 + pv_test_rng_u64(r) % 16;
            if (pos + dl > len) dl = len - pos;
            memmove(buf + pos, buf + pos + dl, len - pos - dl);
            len -= dl;
            break;
        }
        case 3: { /* copy a span of the document elsewhere (duplicates keys and tables) */
            if (!len) break;
            size_t from = pv_test_rng_u64(r) % len, sl = 1 + pv_test_rng_u64(r) % 64;
            if (from + sl > len) sl = len - from;
            if (len + sl > cap) break;
            char tmp[64];
            memcpy(tmp, buf + from, sl);
            memmove(buf + pos + sl, buf + pos, len - pos);
            memcpy(buf + pos, tmp, sl);
            len += sl;
            break;
        }
        default: { /* splice: the tail of another seed */
            const seed *s = &seeds[pv_test_rng_u64(r) % n_seeds];
            size_t from = s->len ? pv_test_rng_u64(r) % s->len : 0, sl = s->len - from;
            if (pos + sl > cap) sl = cap - pos;
            memcpy(buf + pos, s->data + from, sl);
            len = pos + sl;
            break;
        }
        }
    }
    return len;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    long iters = argc > 2 ? atol(argv[2]) : 20000;
    seed seeds[256];
    size_t n = 0;
    const char *const sub[] = {"valid", "invalid", "unsupported"};
    for (size_t i = 0; i < PV_ARRAY_LEN(sub); i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], sub[i]);
        n = load_dir(dir, seeds, n, PV_ARRAY_LEN(seeds));
    }
    if (n < 10) {
        fprintf(stderr, "FAIL: only %zu corpus files under %s\n", n, argv[1]);
        return 1;
    }
    enum { CAP = 16384 };
    char *buf = malloc(CAP);
    long accepted = 0;
    pv_test_rng r;
    pv_test_rng_seed(&r, 0x70a1);
    for (size_t i = 0; i < n; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)seeds[i].data, seeds[i].len);
    for (long it = 0; it < iters; it++) {
        const seed *s = &seeds[pv_test_rng_u64(&r) % n];
        size_t len = PV_MIN(s->len, (size_t)CAP);
        memcpy(buf, s->data, len);
        len = mutate(&r, buf, len, CAP, seeds, n);
        /* an exact-size heap copy, so ASan sees any read past the end */
        char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        pv_toml_value *root = NULL;
        if (pv_toml_parse("count", exact, len, &root, NULL) == PV_OK) accepted++;
        pv_toml_free(root);
        LLVMFuzzerTestOneInput((const uint8_t *)exact, len);
        free(exact);
    }
    printf("%ld mutations of %zu seeds: %ld accepted, %ld rejected\n", iters, n, accepted, iters - accepted);
    free(buf);
    for (size_t i = 0; i < n; i++)
        free(seeds[i].data);
    if (accepted < iters / 50 || iters - accepted < iters / 50) {
        fprintf(stderr, "FAIL: the mutations reach too little of one side\n");
        return 1;
    }
    return 0;
}
