/* fuzz_toml.c — fuzz target for the TOML parser (src/config/toml.c). For any input bytes:
 * the parser must not crash, leak or read out of bounds (run under ASan/UBSan); a rejected
 * input must get a message of the form "fuzz:LINE:COL: ..."; an accepted one must round-trip
 * through the value API — written back by pv_toml_write, parsed again, equal to the first
 * parse, and writing that again gives the same text. Violations abort().
 *
 * libFuzzer build (clang; the CMake build uses gcc, so this is a manual step):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     tests/unit/fuzz_toml.c src/config/toml.c src/core/core.c -lm -o fuzz_toml
 *   ./fuzz_toml -max_len=4096 tests/config/valid tests/config/invalid
 * (or `cmake --build build --target fuzz_toml_libfuzzer`, defined in tests/cmake/config.cmake).
 * The ctest `test_fuzz_toml` runs the same target deterministically on random mutations of
 * the corpus (tests/unit/fuzz_toml_driver.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/pv_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_toml: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* pv_toml_write into a malloc'ed buffer (*len bytes). */
static char *write_text(const pv_toml_value *root, size_t *len) {
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f) die("open_memstream failed", NULL);
    bool ok = pv_toml_write(f, root);
    fclose(f);
    if (!ok) die("pv_toml_write failed on an accepted document", NULL);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pv_toml_value *root = NULL;
    pv_error err = {0};
    pv_status st = pv_toml_parse("fuzz", (const char *)data, size, &root, &err);
    if (st != PV_OK) {
        int line = 0, col = 0, n = 0;
        if (root) die("a failed parse returned a value", NULL);
        if (sscanf(err.msg, "fuzz:%d:%d: %n", &line, &col, &n) != 2 || n == 0 || line < 1 || col < 1)
            die("error without FILE:LINE:COL", err.msg);
        return 0;
    }
    size_t len1 = 0, len2 = 0;
    char *text1 = write_text(root, &len1);
    pv_toml_value *again = NULL;
    if (pv_toml_parse("fuzz-rewritten", text1, len1, &again, &err) != PV_OK)
        die("rewritten text does not parse", err.msg);
    if (!pv_toml_equal(root, again)) die("rewritten text reads back different values", text1);
    char *text2 = write_text(again, &len2);
    if (len1 != len2 || memcmp(text1, text2, len1)) die("writing is not stable", text1);
    free(text1);
    free(text2);
    pv_toml_free(again);
    pv_toml_free(root);
    return 0;
}
