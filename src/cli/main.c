/* main.c — the `pensieve` binary: a table of commands (redis-style), dispatch on argv[1],
 * global usage text. Commands never call exit() themselves; they return the exit code. */
#include <stdio.h>
#include <string.h>

#include "core/pv_core.h"
#include "pv_cli.h"

static const pv_cli_cmd pv_commands[] = {
    {"run", pv_cmd_run, "generate text from a prompt with a model"},
    {"tokenize", pv_cmd_tokenize, "print the token ids of a text"},
    {"bench", pv_cmd_bench, "measure prompt processing and generation speed"},
    {"synth", pv_cmd_synth, "write a deterministic random-weight model (GGUF)"},
    {"start", pv_cmd_start, "serve the Anthropic and OpenAI APIs over HTTP (--background: detached)"},
    {"stop", pv_cmd_stop, "stop the background server (SIGTERM, drain, wait; --force: SIGKILL)"},
    {"status", pv_cmd_status, "is the server running and healthy: PID, address, model, load, memory"},
    {"config", pv_cmd_config, "print the effective configuration; `config init` writes pensieve.toml"},
    {"validate", pv_cmd_validate, "check the configuration and the model without starting"},
    {"template", pv_cmd_template, "render a chat template with a JSON context"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: pensieve <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_commands); i++)
        fprintf(f, "  %-10s %s\n", pv_commands[i].name, pv_commands[i].summary);
    fprintf(f, "\n'pensieve <command> --help' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < PV_ARRAY_LEN(pv_commands); i++) {
        if (!strcmp(argv[1], pv_commands[i].name)) return pv_commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "pensieve: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
