/* api_internal.h — helpers shared by the files of the API layer and no one else: a growable
 * string buffer, strdup that tolerates NULL, and the request-building steps both parsers use
 * (appending a message with same-role merging, freeing blocks). Not a public interface. */
#ifndef PV_API_INTERNAL_H
#define PV_API_INTERNAL_H

#include "pv_api.h"

/* A growable NUL-terminated byte buffer; `failed` sticks after an allocation failure so
 * callers check once at the end. */
typedef struct pv_api_sb {
    char *buf;
    size_t len, cap;
    bool failed;
} pv_api_sb;

void pv_api_sb_append(pv_api_sb *sb, const char *s, size_t n);
void pv_api_sb_puts(pv_api_sb *sb, const char *s);
/* Returns the buffer (caller owns; "" when nothing was appended) or NULL on failure. */
char *pv_api_sb_take(pv_api_sb *sb);
void pv_api_sb_free(pv_api_sb *sb);

char *pv_api_strdup(const char *s); /* NULL for NULL */

void pv_api_blocks_free(pv_api_block *b, size_t n);
/* Appends a zeroed block to *arr (size *n); returns it or NULL when out of memory. */
pv_api_block *pv_api_blocks_push(pv_api_block **arr, size_t *n);
/* Appends a message to r, taking ownership of blocks[0..n); when the last message has the
 * same role the blocks are appended to it (consecutive same-role turns merge). On failure
 * the blocks are freed. */
/* Starts parsing a body of either API: checks that it is a JSON object, allocates the
 * request (family set, tool_choice AUTO) and reads the required, non-empty "model". On
 * failure *out is NULL and err says why. */
pv_status pv_api_request_begin(const json_t *body, pv_api_family family, pv_request **out,
                               pv_api_error *err);
pv_status pv_api_request_add_message(pv_request *r, pv_api_role role, pv_api_block *blocks,
                                     size_t n);
/* Records the first media block's path and type. */
void pv_api_request_note_media(pv_request *r, const char *path, pv_api_block_type type);
/* Sets r->prefill from the last message. */
void pv_api_request_finish(pv_request *r);

#endif

/* ---- field validation (validate.c) ----
 * Each helper reads obj[key] and reports errors under `path` (the field's full path). JSON
 * null counts as absent. An absent required field is "field required". *present (may be
 * NULL) says whether the field was given. */
pv_status pv_api_field_str(const json_t *obj, const char *key, const char *path, bool required,
                           const char **out, pv_api_error *err);
pv_status pv_api_field_bool(const json_t *obj, const char *key, const char *path, bool *out,
                            bool *present, pv_api_error *err);
/* Integer in [min, max]; the message says "must be an integer >= min" when max is INT64_MAX,
 * else "must be an integer between min and max". */
pv_status pv_api_field_int(const json_t *obj, const char *key, const char *path, bool required,
                           int64_t min, int64_t max, int64_t *out, bool *present,
                           pv_api_error *err);
/* Number (integer or real) in [min, max]: "must be a number between min and max". */
pv_status pv_api_field_num(const json_t *obj, const char *key, const char *path, double min,
                           double max, double *out, bool *present, pv_api_error *err);
/* Returns the value if it has JSON type `t` (NULL when absent); on a wrong type sets err
 * with "must be <what>" and sets *bad. */
const json_t *pv_api_field_typed(const json_t *obj, const char *key, const char *path,
                                 json_type t, bool required, bool *bad, pv_api_error *err);
/* Parses a stop list (string or array of strings when allow_string) into r->stop. */
pv_status pv_api_parse_stop(pv_request *r, const json_t *v, const char *path, bool allow_string,
                            bool brackets, pv_api_error *err);
/* Appends a tool to r (name checked for duplicates); takes a new reference to schema. */
pv_status pv_api_request_add_tool(pv_request *r, const char *name, const char *description,
                                  const json_t *schema, const char *type, const char *path,
                                  pv_api_error *err);
/* snprintf for field paths; long paths are cut (the message stays readable). A function
 * rather than snprintf so that a cut path is not a -Wformat-truncation error. */
void pv_api_pathf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
