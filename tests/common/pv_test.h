/* pv_test.h — helpers shared by the C tests: locating test data (PENSIEVE_TEST_DATA,
 * default ../shared; decompressed fixtures under PENSIEVE_FIXTURES, default build/fixtures),
 * the skip-or-fail rule (absent data: skip with exit code 77, but under CI=... fail),
 * reading whole files, and a deterministic random generator for kernel tests. cmocka's
 * headers need stdarg/stddef/setjmp first, so this header includes them in order. */
#ifndef PV_TEST_H
#define PV_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#define PV_TEST_SKIP_CODE 77

/* Returns a malloc'ed absolute-ish path "<PENSIEVE_TEST_DATA>/<rel>" if it exists, else
 * NULL. */
char *pv_test_data_path(const char *rel);
/* Same under the decompressed fixtures folder ("llama/llama-f32.gguf"). */
char *pv_test_fixture_path(const char *rel);
/* Called from main() before running tests that need `path` (may be NULL for absent):
 * returns normally if present; otherwise prints why and exits 77 (skip), or, when the
 * environment variable CI is set and non-empty, exits 1 (CI can never skip). */
void pv_test_require(const char *path, const char *what);
/* Reads a whole file (malloc'ed, NUL-terminated beyond size); NULL on failure. */
char *pv_test_read_file(const char *path, size_t *size);

/* xorshift-style deterministic generator (seeded per test, reproducible). */
typedef struct { uint64_t s; } pv_test_rng;
void pv_test_rng_seed(pv_test_rng *r, uint64_t seed);
uint64_t pv_test_rng_u64(pv_test_rng *r);
float pv_test_rng_uniform(pv_test_rng *r);  /* [0,1) */
float pv_test_rng_normal(pv_test_rng *r);   /* N(0,1) */

#endif
