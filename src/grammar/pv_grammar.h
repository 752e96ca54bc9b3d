/* pv_grammar.h — the grammar engine for constrained decoding: a GBNF compiler (llama.cpp's
 * grammar syntax), a JSON Schema -> GBNF converter, a per-sequence matcher (a pushdown
 * automaton over Unicode code points that keeps a set of stacks, UTF-8 aware across token
 * boundaries) and a token masker that walks a byte trie of the vocabulary so that shared
 * token prefixes are matched once.
 *
 * GBNF syntax accepted (as llama.cpp's grammars/README.md):
 *   name ::= alt1 | alt2        rule names are [A-Za-z0-9_-]+; one rule per definition; a
 *                               definition may continue on following lines inside ( ), after
 *                               "::=" or "|", or when the next line starts with "|"
 *   "literal"                   escapes \n \r \t \" \\ \[ \] \- \/ \^ \xHH \uHHHH \UHHHHHHHH
 *   [a-z0-9_] [^"\\]            character classes over code points (ranges, negation)
 *   .                           any code point
 *   ( ... )                     groups;  x* x+ x? x{m} x{m,} x{m,n} repetition (n <= 100000)
 *   # comment                   to end of line; an empty alternative is allowed ("a ::= | b")
 * Rejected with line:column: syntax errors, undefined rules, rules defined twice, and left
 * recursion (also through nullable prefixes, e.g. ("a"?)* ), which a top-down matcher cannot
 * run.
 *
 * JSON Schema support (pv_grammar_schema_to_gbnf): type (string, integer, number, boolean,
 * null, object, array, and unions such as ["string","null"]), enum, const, properties,
 * required, additionalProperties (false / true / a schema), items, minItems/maxItems,
 * minLength/maxLength, anyOf/oneOf (oneOf is treated as anyOf: exclusivity is not enforced),
 * allOf with one member, $ref to "#", "#/$defs/..." and "#/definitions/...", {} and true (any
 * JSON value). A schema without "type" is typed by its keywords (properties -> object,
 * items -> array, enum/const -> those values, nothing -> any value).
 *   Policy for additionalProperties when absent: an object schema that lists "properties"
 *   is closed (absent = false, the right default for tool inputs: a model must not invent
 *   arguments); an object schema without "properties" is open (absent = true: any members).
 *   Ignored keywords (no constraint emitted, output may violate them): pattern, format,
 *   minimum/maximum/exclusiveMinimum/exclusiveMaximum/multipleOf, uniqueItems,
 *   minProperties/maxProperties, patternProperties, propertyNames, dependentRequired,
 *   prefixItems, contains, not, if/then/else; annotations (description, title, default,
 *   examples, $schema, $id, $comment, deprecated, readOnly...) are ignored as they carry no
 *   constraint. Precedence: $ref, then const, enum (values not of the declared "type" are
 *   dropped), anyOf/oneOf, allOf, type; keywords beside the one used are ignored (e.g.
 *   "type" next to "anyOf"). Errors: PV_ERR_UNSUPPORTED for allOf with several members, a
 *   $ref that is not local, the schema `false`, an unknown "type" name, a "required" name
 *   missing from "properties", a $ref/anyOf cycle that consumes no input ({"$ref": "#"});
 *   PV_ERR_INVALID for malformed keywords (e.g. "properties" not an object); PV_ERR_NOT_FOUND
 *   for a $ref that does not resolve.
 * Output formatting the generated grammar allows (R = rule_prefix):
 *   - the value itself has no leading or trailing whitespace;
 *   - objects: members in schema "properties" order (optional ones may be skipped), then
 *     additional members if allowed: keys other than the declared ones (where such a key
 *     first differs from every declared key, that character is written raw, not escaped);
 *   - "ws" (rule R-space = nothing | " " | "\n" followed by up to 20 spaces/tabs) may appear
 *     after "{", "[", ":" and ",", and before ":", ",", "}" and "]"; nowhere else. So compact
 *     JSON, `{"a": 1, "b": 2}` and JSON.stringify(x, null, 2) (nesting <= 10) all match;
 *   - strings: any code point except '"', '\\' and U+0000..U+001F raw; escapes \" \\ \/ \b \f
 *     \n \r \t \uXXXX (XXXX not a surrogate); minLength/maxLength count characters;
 *   - integers: -?(0|[1-9][0-9]{0,15}); numbers add an optional fraction of 1..16 digits and
 *     an optional exponent [eE][-+]?[0-9]{1,2} (bounded so a model cannot loop on digits and
 *     every value is a finite double);
 *   - enum/const values: scalars exactly as their compact JSON text (strings with jansson's
 *     escaping: non-ASCII raw, so "caf\u00e9" is not accepted for "café"); arrays/objects
 *     member by member in their order, with the whitespace above.
 *   - minItems/maxItems/minLength/maxLength are repeated exactly up to 100000; a larger
 *     maximum is treated as no maximum, a larger minimum is refused (PV_ERR_UNSUPPORTED).
 * Rule names: the schema's value is the rule named exactly rule_prefix; every helper rule is
 * named "<rule_prefix>-<kind><n>" or "<rule_prefix>-<primitive>" (space, char, string,
 * integer, number, boolean, null, value, object, array), so several schemas can share one
 * grammar when their prefixes differ; avoid a prefix equal to another prefix plus "-..."
 * (e.g. "A" and "A-space"), whose helper names could collide.
 *
 * Thread safety: pv_grammar and pv_grammar_vocab are immutable and may be shared by threads.
 * A pv_grammar_state belongs to one sequence; all calls on one state must be serialized
 * (pv_grammar_mask/token_allowed only grow the state's transition cache, which is why they
 * take a non-const state: the logical state they see is unchanged). */
#ifndef PV_GRAMMAR_H
#define PV_GRAMMAR_H

#include <jansson.h>

#include "../core/pv_core.h"
#include "../tokenizer/pv_tokenizer.h"

typedef struct pv_grammar pv_grammar;             /* compiled, immutable, shareable */
typedef struct pv_grammar_state pv_grammar_state; /* per sequence */
typedef struct pv_grammar_vocab pv_grammar_vocab; /* per tokenizer, immutable */

/* Most stacks a state may hold at once (alternatives still alive). A grammar so ambiguous
 * that one more code point would exceed it makes that code point rejected and sets the
 * state's error message (pv_grammar_state_error). */
#define PV_GRAMMAR_MAX_STACKS 1024

/* Compiles GBNF text (len bytes, need not be NUL-terminated) with `root` as start rule
 * (NULL = "root"). On error returns PV_ERR_FORMAT (syntax, "line L, column C: ..."),
 * PV_ERR_NOT_FOUND (undefined rule or root) or PV_ERR_INVALID (left recursion, rule defined
 * twice), each message with line and column. *out is owned by the caller. */
pv_status pv_grammar_compile(const char *gbnf, size_t len, const char *root, pv_grammar **out,
                             pv_error *err);
void pv_grammar_free(pv_grammar *g);
/* Number of rules after compilation (generated helper rules included); for tests/logs. */
size_t pv_grammar_n_rules(const pv_grammar *g);

/* Converts a JSON Schema (borrowed) to GBNF rules (see the header comment for what is
 * supported and the exact formatting). rule_prefix must match [A-Za-z0-9_-]+. On success
 * *out_gbnf is a malloc'ed NUL-terminated string the caller frees; it has no "root" rule:
 * compile it with root = rule_prefix, or embed it in a larger grammar. */
pv_status pv_grammar_schema_to_gbnf(const json_t *schema, const char *rule_prefix,
                                    char **out_gbnf, pv_error *err);

/* ---- per-sequence matcher ---- */
/* A new state at the start of the root rule; borrows g, which must outlive it. */
pv_status pv_grammar_state_init(const pv_grammar *g, pv_grammar_state **out, pv_error *err);
/* A deep copy (for forking a sequence); NULL on out of memory. */
pv_grammar_state *pv_grammar_state_clone(const pv_grammar_state *s);
/* Back to the start of the root rule. */
void pv_grammar_state_reset(pv_grammar_state *s);
void pv_grammar_state_free(pv_grammar_state *s);
/* Feeds n bytes (may end or start inside a UTF-8 character). All or nothing: returns false
 * and leaves the state as it was when any byte is rejected (invalid UTF-8 included). */
bool pv_grammar_state_accept(pv_grammar_state *s, const char *bytes, size_t n);
/* True when the text so far is a complete sentence of the grammar (generation may stop;
 * it may also continue when the grammar allows more). */
bool pv_grammar_state_complete(const pv_grammar_state *s);
/* Bytes of the shortest continuation that completes the grammar (0 when complete;
 * SIZE_MAX when no completion exists). Every byte needs at most one token (single-byte
 * tokens exist in byte-level BPE and byte-fallback SPM vocabularies), so a state with
 * min_bytes <= tokens left can always close in time: see pv_grammar_mask_budget. */
size_t pv_grammar_state_min_bytes(pv_grammar_state *s);
/* NULL, or why the last pv_grammar_state_accept failed for a reason other than a plain
 * mismatch (too many stacks, out of memory). A static string. */
const char *pv_grammar_state_error(const pv_grammar_state *s);

/* ---- vocabulary masking ---- */
/* Precomputes, once per tokenizer, each token's output bytes (pv_tokenizer_piece) and a
 * byte trie of them. Control/special tokens are never allowed by a grammar; end-of-
 * generation tokens (pv_tokenizer_is_eog) are allowed exactly when the state is complete;
 * tokens that produce no bytes are never allowed (they would not advance the grammar).
 * Borrows tok only during the call. */
pv_status pv_grammar_vocab_init(const pv_tokenizer *tok, pv_grammar_vocab **out,
                                pv_error *err);
void pv_grammar_vocab_free(pv_grammar_vocab *v);
int32_t pv_grammar_vocab_n(const pv_grammar_vocab *v);

/* Is this one token allowed now? Cheap (walks the token's bytes only). Sampling without the
 * mask first and computing the mask only when the sampled token is refused gives the same
 * distribution as masking first: renormalizing over the allowed set is the same as
 * rejection sampling restricted to it, and an allowed first draw is a draw from it. */
bool pv_grammar_token_allowed(pv_grammar_state *s, const pv_grammar_vocab *v, int32_t id);
/* Fills allowed[0..n_vocab) with 1 for allowed tokens and 0 otherwise (one trie walk). */
void pv_grammar_mask(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed);
/* Like pv_grammar_mask but allows only tokens on a shortest path to completion: a token of
 * L bytes is allowed when, after it, pv_grammar_state_min_bytes drops by exactly L (and the
 * end-of-generation tokens when complete). Never empty while a completion exists and the
 * vocabulary has single-byte tokens for the bytes needed (byte-level BPE and SPM with byte
 * fallback do). */
void pv_grammar_mask_shortest(pv_grammar_state *s, const pv_grammar_vocab *v,
                              uint8_t *allowed);
/* Like pv_grammar_mask but allows only tokens after which pv_grammar_state_min_bytes is
 * <= max_bytes. The guarantee of a closed output within max_tokens: at each step, with R
 * tokens left including this one (and E = 1 if an end token must follow, else 0), use
 * max_bytes = R - 1 - E. While min_bytes <= R - E holds (it does at the start whenever
 * the grammar's shortest sentence fits), the mask is never empty (the first byte of a
 * shortest completion qualifies) and the invariant carries to the next step; with no
 * budget pressure it equals pv_grammar_mask. SIZE_MAX = no budget. */
void pv_grammar_mask_budget(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed,
                            size_t max_bytes);
/* pv_grammar_mask_budget that also lists the allowed ids in ids[0..cap) (any order) and
 * returns how many tokens are allowed; a return value <= cap means the list is complete, so a
 * caller can visit only those few ids instead of scanning allowed[] (the common case at the
 * structural points of JSON, where a handful of tokens are allowed). */
size_t pv_grammar_mask_budget_list(pv_grammar_state *s, const pv_grammar_vocab *v, uint8_t *allowed,
                                   size_t max_bytes, int32_t *ids, size_t cap);
/* The one-token check that matches pv_grammar_mask_budget (allowed, and min_bytes after it
 * <= max_bytes), for sampling first and masking only on refusal under a token budget. */
bool pv_grammar_token_allowed_budget(pv_grammar_state *s, const pv_grammar_vocab *v, int32_t id,
                                     size_t max_bytes);
/* Advances the state by token id's bytes; false (state unchanged) when not allowed. An
 * end-of-generation token is accepted (state unchanged) exactly when complete. */
bool pv_grammar_accept_token(pv_grammar_state *s, const pv_grammar_vocab *v, int32_t id);

#endif /* PV_GRAMMAR_H */
