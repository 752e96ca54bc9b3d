/* cli_util.c — flag-value and file helpers shared by the commands (see pv_cli.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pv_cli.h"

bool pv_cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        fprintf(stderr, "pensieve %s: %s: invalid integer '%s'\n", cmd, flag, s);
        return false;
    }
    *out = v;
    return true;
}

bool pv_cli_parse_f32(const char *cmd, const char *flag, const char *s, float *out) {
    char *end = NULL;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end != '\0') {
        fprintf(stderr, "pensieve %s: %s: invalid number '%s'\n", cmd, flag, s);
        return false;
    }
    *out = v;
    return true;
}

const char *pv_cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "pensieve %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

char *pv_cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) {
            if (ferror(f)) {
                free(b);
                b = NULL;
            }
            break;
        }
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return b;
}
