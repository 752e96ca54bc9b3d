/* pv_cli.h — the command table's entry points. Each command lives in its own file
 * (cmd_<name>.c), parses its own flags and returns the process exit code. Shared helpers
 * for flag parsing live in cli_util.c. */
#ifndef PV_CLI_H
#define PV_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int (*pv_cli_cmd_fn)(int argc, char **argv); /* argv[0] is the command name */

typedef struct pv_cli_cmd {
    const char *name;
    pv_cli_cmd_fn fn;
    const char *summary;
} pv_cli_cmd;

int pv_cmd_run(int argc, char **argv);
int pv_cmd_tokenize(int argc, char **argv);
int pv_cmd_bench(int argc, char **argv);
int pv_cmd_synth(int argc, char **argv);
int pv_cmd_start(int argc, char **argv);
int pv_cmd_stop(int argc, char **argv);   /* cmd_service.c */
int pv_cmd_status(int argc, char **argv); /* cmd_service.c */
int pv_cmd_config(int argc, char **argv);
int pv_cmd_validate(int argc, char **argv);
int pv_cmd_template(int argc, char **argv);

/* Flag helpers: parse a number or print "pensieve <cmd>: <flag>: invalid value 'x'" to
 * stderr and return false. */
bool pv_cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t *out);
bool pv_cli_parse_f32(const char *cmd, const char *flag, const char *s, float *out);
/* Returns argv[*i + 1] and advances *i, or prints "<flag> needs a value" and returns NULL. */
const char *pv_cli_value(const char *cmd, int argc, char **argv, int *i);
/* Reads a whole file's bytes: a malloc'ed buffer (caller frees; *len its size) or NULL with
 * errno set. */
char *pv_cli_read_file(const char *path, size_t *len);

#endif
