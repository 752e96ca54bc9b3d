/* pv_template.h — the chat-template engine: parses the Jinja subset that real chat templates
 * use and renders it exactly as Hugging Face's apply_chat_template does with Python jinja2
 * (ImmutableSandboxedEnvironment, trim_blocks + lstrip_blocks, loopcontrols, the json.dumps
 * `tojson`, raise_exception, strftime_now, the {% generation %} tag). A parsed template is
 * immutable; any number of threads may render it at once (each render owns its memory).
 * Untrusted templates and contexts are safe: recursion depth, work, memory and output are
 * bounded and every failure is a status with "line L, column C: ..." in the message. */
#ifndef PV_TEMPLATE_H
#define PV_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#include "core/pv_core.h"

typedef struct pv_template pv_template; /* immutable parsed template, thread-safe to render */

/* Parses `len` bytes of template source (need not be NUL-terminated; copied). On success
 * *out is the caller's (free with pv_template_free). Syntax errors: PV_ERR_FORMAT with
 * "line L, column C: ..." in err->msg, *out left NULL. */
pv_status pv_template_parse(const char *src, size_t len, pv_template **out, pv_error *err);
void pv_template_free(pv_template *t);

/* ctx: a JSON object = the whole template context (messages, tools, add_generation_prompt,
 * bos_token, eos_token, ...), borrowed. *out: malloc'd NUL-terminated text (caller frees),
 * *out_len its length. Errors: PV_ERR_FORMAT for template runtime errors with
 * "line L, column C: ..." in err->msg; raise_exception(msg) -> PV_ERR_INVALID with
 * err->msg == msg exactly (truncated to the size of err->msg); PV_ERR_RANGE when a limit
 * (work, memory, output size, recursion) is exceeded. */
pv_status pv_template_render(const pv_template *t, const json_t *ctx, char **out, size_t *out_len,
                             pv_error *err);

/* Limits applied to every render (exposed for tests and documentation). */
#define PV_TEMPLATE_MAX_OUTPUT (16u << 20)   /* bytes of rendered text (and of any string) */
#define PV_TEMPLATE_MAX_MEMORY (128u << 20)  /* bytes of working memory per render */
#define PV_TEMPLATE_MAX_OPS 50000000ull     /* evaluation steps per render */
#define PV_TEMPLATE_MAX_DEPTH 200           /* nesting of the parse tree */
#define PV_TEMPLATE_MAX_CALL_DEPTH 32       /* nested macro calls (bounds stack use) */

#endif /* PV_TEMPLATE_H */
