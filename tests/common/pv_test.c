/* pv_test.c — see pv_test.h. */
#define _POSIX_C_SOURCE 200809L
#include "pv_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *join_if_exists(const char *base, const char *rel) {
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/%s", base, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

char *pv_test_data_path(const char *rel) {
    const char *base = getenv("PENSIEVE_TEST_DATA");
    if (!base || !*base) base = "../shared";
    return join_if_exists(base, rel);
}

char *pv_test_fixture_path(const char *rel) {
    const char *base = getenv("PENSIEVE_FIXTURES");
    if (!base || !*base) base = "build/fixtures";
    return join_if_exists(base, rel);
}

void pv_test_require(const char *path, const char *what) {
    if (path) return;
    const char *ci = getenv("CI");
    if (ci && *ci) {
        fprintf(stderr, "FAIL: test data missing under CI: %s\n", what);
        exit(1);
    }
    fprintf(stderr, "SKIP: test data missing: %s (set PENSIEVE_TEST_DATA)\n", what);
    exit(PV_TEST_SKIP_CODE);
}

char *pv_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (size) *size = (size_t)n;
    }
    return buf;
}

void pv_test_rng_seed(pv_test_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }

uint64_t pv_test_rng_u64(pv_test_rng *r) {
    /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float pv_test_rng_uniform(pv_test_rng *r) { return (float)(pv_test_rng_u64(r) >> 40) / 16777216.0f; }

float pv_test_rng_normal(pv_test_rng *r) {
    float u1 = pv_test_rng_uniform(r), u2 = pv_test_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
