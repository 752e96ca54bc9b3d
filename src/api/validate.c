/* validate.c — the typed field readers both request parsers use, so that every wrong type,
 * missing field and out-of-range value is reported the same way ("temperature: must be a
 * number between 0 and 1"), plus the stop-list and tool helpers shared by both APIs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

#define INVALID_ PV_API_ERR_INVALID_REQUEST

static const char *type_phrase(json_type t) {
    switch (t) {
    case JSON_OBJECT: return "must be an object";
    case JSON_ARRAY: return "must be an array";
    case JSON_STRING: return "must be a string";
    case JSON_INTEGER: return "must be an integer";
    case JSON_REAL: return "must be a number";
    case JSON_TRUE:
    case JSON_FALSE: return "must be a boolean";
    default: return "has the wrong type";
    }
}

/* json_object_get on a non-object is NULL; null values count as absent. */
static const json_t *get_(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

const json_t *pv_api_field_typed(const json_t *obj, const char *key, const char *path,
                                 json_type t, bool required, bool *bad, pv_api_error *err) {
    const json_t *v = get_(obj, key);
    *bad = false;
    if (!v) {
        if (required) {
            *bad = true;
            pv_api_error_set(err, INVALID_, path, "field required");
        }
        return NULL;
    }
    if (json_typeof(v) != t) {
        *bad = true;
        pv_api_error_set(err, INVALID_, path, "%s", type_phrase(t));
        return NULL;
    }
    return v;
}

pv_status pv_api_field_str(const json_t *obj, const char *key, const char *path, bool required,
                           const char **out, pv_api_error *err) {
    bool bad;
    const json_t *v = pv_api_field_typed(obj, key, path, JSON_STRING, required, &bad, err);
    *out = v ? json_string_value(v) : NULL;
    return bad ? PV_ERR_INVALID : PV_OK;
}

pv_status pv_api_field_bool(const json_t *obj, const char *key, const char *path, bool *out,
                            bool *present, pv_api_error *err) {
    const json_t *v = get_(obj, key);
    if (present) *present = v != NULL;
    if (!v) return PV_OK;
    if (!json_is_boolean(v))
        return pv_api_error_set(err, INVALID_, path, "%s", type_phrase(JSON_TRUE));
    *out = json_is_true(v);
    return PV_OK;
}

pv_status pv_api_field_int(const json_t *obj, const char *key, const char *path, bool required,
                           int64_t min, int64_t max, int64_t *out, bool *present,
                           pv_api_error *err) {
    const json_t *v = get_(obj, key);
    if (present) *present = v != NULL;
    if (!v) return required ? pv_api_error_set(err, INVALID_, path, "field required") : PV_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        if (min == INT64_MIN && max == INT64_MAX)
            return pv_api_error_set(err, INVALID_, path, "must be an integer");
        if (max == INT64_MAX)
            return pv_api_error_set(err, INVALID_, path, "must be an integer >= %lld",
                                    (long long)min);
        return pv_api_error_set(err, INVALID_, path, "must be an integer between %lld and %lld",
                                (long long)min, (long long)max);
    }
    *out = json_integer_value(v);
    return PV_OK;
}

pv_status pv_api_field_num(const json_t *obj, const char *key, const char *path, double min,
                           double max, double *out, bool *present, pv_api_error *err) {
    const json_t *v = get_(obj, key);
    if (present) *present = v != NULL;
    if (!v) return PV_OK;
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(x >= min && x <= max)) /* NaN fails too */
        return pv_api_error_set(err, INVALID_, path, "must be a number between %g and %g", min,
                                max);
    *out = x;
    return PV_OK;
}

static pv_status add_stop_(pv_request *r, const char *s) {
    char **ns = realloc(r->stop, (r->n_stop + 1) * sizeof *ns);
    if (!ns) return PV_ERR_NOMEM;
    r->stop = ns;
    if (!(ns[r->n_stop] = strdup(s))) return PV_ERR_NOMEM;
    r->n_stop++;
    return PV_OK;
}

pv_status pv_api_parse_stop(pv_request *r, const json_t *v, const char *path, bool allow_string,
                            bool brackets, pv_api_error *err) {
    if (!v || json_is_null(v)) return PV_OK;
    if (allow_string && json_is_string(v)) {
        if (add_stop_(r, json_string_value(v)) != PV_OK)
            return pv_api_error_set(err, PV_API_ERR_API, "", "out of memory");
        return PV_OK;
    }
    if (!json_is_array(v))
        return pv_api_error_set(err, INVALID_, path, "%s",
                                allow_string ? "must be a string or an array of strings"
                                             : "must be an array of strings");
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s) {
        char p[160];
        pv_api_pathf(p, sizeof p, brackets ? "%s[%zu]" : "%s.%zu", path, i);
        if (!json_is_string(s)) return pv_api_error_set(err, INVALID_, p, "must be a string");
        if (add_stop_(r, json_string_value(s)) != PV_OK)
            return pv_api_error_set(err, PV_API_ERR_API, "", "out of memory");
    }
    return PV_OK;
}

pv_status pv_api_request_add_tool(pv_request *r, const char *name, const char *description,
                                  const json_t *schema, const char *type, const char *path,
                                  pv_api_error *err) {
    for (size_t i = 0; i < r->n_tools; i++)
        if (strcmp(r->tools[i].name, name) == 0)
            return pv_api_error_set(err, INVALID_, path, "duplicate tool name \"%s\"", name);
    pv_api_tool *nt = realloc(r->tools, (r->n_tools + 1) * sizeof *nt);
    if (!nt) return pv_api_error_set(err, PV_API_ERR_API, "", "out of memory");
    r->tools = nt;
    pv_api_tool *t = &nt[r->n_tools++];
    *t = (pv_api_tool){.name = strdup(name),
                       .description = pv_api_strdup(description),
                       .type = pv_api_strdup(type),
                       .input_schema = schema ? json_incref((json_t *)schema) : NULL};
    if (!t->name || (description && !t->description) || (type && !t->type))
        return pv_api_error_set(err, PV_API_ERR_API, "", "out of memory");
    return PV_OK;
}

void pv_api_pathf(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}
