/* wiring.c — small decisions the HTTP routes need between parsing and generation, kept here
 * so both APIs make them the same way: the sampler settings that follow the APIs' defaults,
 * and the token budget (max_tokens clamped to the context, "prompt is too long" when nothing
 * fits). */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api_internal.h"

uint64_t pv_api_new_seed(void) {
    uint64_t s;
    if (getrandom(&s, sizeof s, 0) == (ssize_t)sizeof s) return s;
    uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(pv_time_now() * 1e9);
    return pv_splitmix64(&t);
}

pv_sampler_params pv_api_sampler_params(const pv_request *r, uint64_t default_seed) {
    /* The APIs' documented defaults, not llama.cpp's CLI ones (no min_p, top_k 40 or
     * top_p 0.95 behind the client's back). */
    pv_sampler_params p = {
        .temperature = r->has_temperature ? (float)r->temperature : 1.0f,
        .top_k = r->has_top_k ? (int32_t)PV_MIN(r->top_k, (int64_t)INT32_MAX) : 0,
        .top_p = r->has_top_p ? (float)r->top_p : 1.0f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .penalty_last_n = 64,
        .presence_penalty = r->has_presence_penalty ? (float)r->presence_penalty : 0.0f,
        .frequency_penalty = r->has_frequency_penalty ? (float)r->frequency_penalty : 0.0f,
        .seed = r->has_seed ? r->seed : default_seed,
    };
    return p;
}

pv_status pv_api_plan_tokens(const pv_request *r, int64_t n_prompt, int64_t n_ctx,
                             int64_t *max_new, bool *clamped, pv_api_error *err) {
    *max_new = 0;
    *clamped = false;
    /* One position stays free for a generated token (the scheduler's rule too), also for
     * max_tokens 0, so that a prompt is accepted or refused whatever max_tokens says. */
    int64_t maximum = n_ctx - 1;
    if (n_prompt > maximum)
        return pv_api_error_set(err, PV_API_ERR_INVALID_REQUEST, "",
                                "prompt is too long: %lld tokens > %lld maximum",
                                (long long)n_prompt, (long long)maximum);
    int64_t room = n_ctx - n_prompt;
    if (!r->has_max_tokens || r->max_tokens > room) {
        *max_new = room;
        *clamped = true;
    } else {
        *max_new = r->max_tokens;
    }
    return PV_OK;
}
