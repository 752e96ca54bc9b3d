/* cmd_config.c — `pensieve config`: prints the effective configuration (every key with its
 * value and where it came from: default, file:PATH:LINE, env:NAME or flag:--x), and
 * `pensieve config init [FILE]`: writes the commented pensieve.toml template with every key
 * at its default (refusing to overwrite an existing file unless --force), and `pensieve
 * config keys`: the key table in Markdown for the README. `config` takes the
 * same configuration flags as `pensieve start`, so a command line can be checked before it
 * is used. Exit codes: 0 ok, 1 configuration or i/o error, 2 usage error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/pv_config.h"
#include "pv_cli.h"

static void config_usage(FILE *f) {
    fprintf(f, "usage: pensieve config [--show-secrets] [--config FILE] [configuration flags]\n"
               "       pensieve config init [FILE] [--force]\n"
               "       pensieve config keys\n"
               "  config       prints the effective configuration as TOML, with the source of every\n"
               "               value (default, file:PATH:LINE, env:NAME, flag:--x); a non-default\n"
               "               api_key is hidden unless --show-secrets.\n"
               "  config init  writes a commented pensieve.toml (FILE, default ./pensieve.toml; '-'\n"
               "               for standard output) listing every key at its default; an existing\n"
               "               file is kept unless --force.\n"
               "  config keys  prints every key as a Markdown table (for the README).\n"
               "configuration flags:\n");
    pv_config_flags_usage(f);
}

/* `config init`: the file is created with O_EXCL unless --force, so an existing one is
 * never clobbered by accident (even when it appears between a check and the write). */
static int config_init(int argc, char **argv) {
    const char *path = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
            force = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            config_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "pensieve config init: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (path) {
            fprintf(stderr, "pensieve config init: only one FILE may be given\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) path = "pensieve.toml";
    if (!strcmp(path, "-")) return pv_config_write_template(stdout) ? 0 : 1;
    int fd = open(path, O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL), 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "pensieve config init: '%s' already exists (use --force to overwrite it)\n",
                    path);
        else
            fprintf(stderr, "pensieve config init: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        fprintf(stderr, "pensieve config init: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    bool ok = pv_config_write_template(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        fprintf(stderr, "pensieve config init: error writing '%s'\n", path);
        return 1;
    }
    fprintf(stderr, "pensieve config init: wrote %s\n", path);
    return 0;
}

int pv_cmd_config(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "init")) return config_init(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "keys")) {
        if (argc > 2) {
            fprintf(stderr, "pensieve config keys: takes no arguments\n");
            return 2;
        }
        return pv_config_write_markdown(stdout) ? 0 : 1;
    }
    pv_config_flags flags;
    memset(&flags, 0, sizeof flags);
    bool show_secrets = false;
    pv_error err = {0};
    for (int i = 1; i < argc; i++) {
        int m = pv_config_flag_match(argc, argv, &i, &flags, &err);
        if (m < 0) {
            fprintf(stderr, "pensieve config: %s\n", err.msg);
            return 2;
        }
        if (m) continue;
        if (!strcmp(argv[i], "--show-secrets"))
            show_secrets = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            config_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "pensieve config: unknown option '%s'\n", argv[i]);
            config_usage(stderr);
            return 2;
        }
    }
    pv_config *cfg = NULL;
    if (pv_config_load(&flags, &cfg, &err) != PV_OK) {
        fprintf(stderr, "pensieve config: %s\n", err.msg);
        return 1;
    }
    bool ok = pv_config_write_effective(stdout, cfg, show_secrets);
    pv_config_free(cfg);
    return ok ? 0 : 1;
}
