/* sched.c — the engine thread: admission of queued jobs into sequence slots, one batched
 * forward pass per step (all decoding sequences + a chunk of prefill), sampling, stop
 * conditions, and hand-over of text to the waiting submitters (see pv_sched.h).
 *
 * Locking: s->mu guards the queue, the slot table and the stop flag; each job's own mutex
 * guards its output buffer and end state. The engine never holds both except in
 * job_end (s->mu is not held there). Model state (context, KV cache) is touched only by
 * the engine thread. */
#include "pv_sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                /* submitter + engine; under mu */
    /* set at submit, read-only afterwards */
    int32_t *prompt;
    int n_prompt;
    int max_tokens;
    pv_sampler_params sp;
    char **stops;
    size_t n_stops;
    /* output, under mu */
    char *out;
    size_t out_len, out_cap, out_taken;
    bool ended;
    pv_finish finish;
    int stop_index;
    int n_gen;
    double t_first, t_end; /* pv_time_now() of the first sampled token and of the end */
    char err[256];
    atomic_bool cancel;
    /* engine-only */
    pv_job *next;
    int slot;
    int n_past;   /* tokens of this job in its KV slot */
    int32_t last; /* sampled token waiting to be fed */
    pv_sampler *smp;
    pv_stop *stop;
    pv_detok dt;
    pv_grammar *grammar;             /* constrained decoding (owned), or NULL */
    pv_grammar_state *gs;            /* its state (owned) */
    const pv_grammar_vocab *gvocab;  /* borrowed */
};

#define PV_SCHED_ALLOWED_IDS 1024

struct pv_sched {
    pv_model *m;
    const pv_tokenizer *tok;
    pv_ctx *ctx;
    pv_sched_params p;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pv_job *q_head, *q_tail;
    int n_queued;
    pv_job **slots; /* [n_parallel] */
    int n_active;
    atomic_int kv_used; /* KV positions in use after the last step (engine writes) */
    /* batch scratch [n_batch] */
    int32_t *b_tok, *b_pos, *b_seq;
    int8_t *b_log;
    int *out_slot; /* [n_parallel]: slot of each output row */
    float *logits; /* [n_vocab] */
    uint8_t *allowed; /* [n_vocab] grammar mask scratch */
    int32_t allowed_ids[PV_SCHED_ALLOWED_IDS]; /* the allowed ids, when that few */
};

pv_sched_params pv_sched_params_default(void) {
    pv_sched_params p = {.n_parallel = 4, .n_queue_max = 16, .n_ctx = 0, .n_batch = 512,
                         .kv_type = PV_TYPE_F16};
    return p;
}

/* ---- job lifetime ---- */

static void job_unref(pv_job *j) {
    pthread_mutex_lock(&j->mu);
    int refs = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (refs > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    for (size_t i = 0; i < j->n_stops; i++) free(j->stops[i]);
    free(j->stops);
    free(j->out);
    pv_sampler_free(j->smp);
    pv_stop_free(j->stop);
    pv_grammar_state_free(j->gs);
    pv_grammar_free(j->grammar);
    free(j);
}

/* Appends text to the job's output (engine side). Growth failure ends nothing: the text is
 * dropped and the job is marked as an error at the end. */
static void job_append(pv_job *j, const char *text, size_t len) {
    if (!len) return;
    pthread_mutex_lock(&j->mu);
    if (j->out_len + len > j->out_cap) {
        size_t cap = j->out_cap ? j->out_cap : 4096;
        while (cap < j->out_len + len) cap *= 2;
        char *n = realloc(j->out, cap);
        if (!n) {
            snprintf(j->err, sizeof j->err, "out of memory for output text");
            pthread_mutex_unlock(&j->mu);
            return;
        }
        j->out = n;
        j->out_cap = cap;
    }
    memcpy(j->out + j->out_len, text, len);
    j->out_len += len;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Moves every releasable byte of the stop matcher into the output. */
static void job_drain(pv_job *j, bool final) {
    char buf[512];
    size_t n;
    while ((n = final ? pv_stop_finish(j->stop, buf, sizeof buf) : pv_stop_take(j->stop, buf, sizeof buf)) > 0)
        job_append(j, buf, n);
}

/* Ends a job on the engine side: frees its slot and drops the engine's reference. */
static void job_end(pv_sched *s, pv_job *j, pv_finish f, int stop_index, const char *err) {
    if (f != PV_FINISH_STOP && f != PV_FINISH_CANCELLED && f != PV_FINISH_ERROR) {
        char buf[64];
        size_t n = pv_detok_flush(&j->dt, buf, sizeof buf);
        if (n) pv_stop_push(j->stop, buf, n, NULL);
        job_drain(j, true);
    } else if (f == PV_FINISH_STOP) {
        job_drain(j, true);
    }
    /* free the slot before the submitter can see the end, so that a client that submits
     * again right after finds the slot free */
    pv_kv_seq_rm(pv_ctx_kv(s->ctx), j->slot, 0, -1, NULL);
    pthread_mutex_lock(&s->mu);
    s->slots[j->slot] = NULL;
    s->n_active--;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&j->mu);
    j->ended = true;
    j->t_end = pv_time_now();
    j->finish = f;
    j->stop_index = stop_index;
    if (err) snprintf(j->err, sizeof j->err, "%s", err);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

/* ---- the engine loop ---- */

/* Moves queued jobs into free slots (s->mu held). Allocation happens here, per request,
 * never in the decode step. */
static void admit(pv_sched *s) {
    for (int slot = 0; slot < s->p.n_parallel && s->q_head; slot++) {
        if (s->slots[slot]) continue;
        pv_job *j = s->q_head;
        s->q_head = j->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_queued--;
        j->slot = slot;
        j->n_past = 0;
        j->smp = pv_sampler_new(&j->sp, s->m->hp.n_vocab);
        j->stop = pv_stop_new((const char *const *)j->stops, j->n_stops);
        pv_detok_init(&j->dt, s->tok, false);
        s->slots[slot] = j;
        s->n_active++;
        if (j->smp)
            for (int i = 0; i < j->n_prompt; i++) pv_sampler_accept(j->smp, j->prompt[i]);
    }
}

/* Handles one sampled token of job j (engine side). */
static void on_token(pv_sched *s, pv_job *j, int32_t t) {
    pv_sampler_accept(j->smp, t);
    if (j->t_first == 0) { /* an end-of-generation token counts: it is the first answer */
        pthread_mutex_lock(&j->mu);
        j->t_first = pv_time_now();
        pthread_mutex_unlock(&j->mu);
    }
    if (pv_tokenizer_is_eog(s->tok, t)) {
        job_end(s, j, PV_FINISH_EOG, -1, NULL);
        return;
    }
    pthread_mutex_lock(&j->mu);
    j->n_gen++;
    int n_gen = j->n_gen;
    pthread_mutex_unlock(&j->mu);
    char piece[1024];
    size_t n = pv_detok_push(&j->dt, t, piece, sizeof piece);
    size_t which = 0;
    if (pv_stop_push(j->stop, piece, n, &which)) {
        job_end(s, j, PV_FINISH_STOP, (int)which, NULL);
        return;
    }
    job_drain(j, false);
    if (n_gen >= j->max_tokens) {
        job_end(s, j, PV_FINISH_LENGTH, -1, NULL);
        return;
    }
    if (j->n_past >= s->p.n_ctx) {
        job_end(s, j, PV_FINISH_CONTEXT, -1, NULL);
        return;
    }
    j->last = t;
}

/* The grammar's byte budget, which keeps enough room to finish: with R tokens left
 * (max_tokens and the context both count) and one end token to follow, only tokens after
 * which the shortest completion still fits in R - 2 bytes are allowed (every byte has a
 * single-byte token in the vocabularies we load). */
static size_t grammar_budget(const pv_sched *s, const pv_job *j) {
    int left_gen = j->max_tokens - j->n_gen, left_ctx = s->p.n_ctx - j->n_past;
    size_t r = (size_t)PV_MAX(PV_MIN(left_gen, left_ctx), 0);
    return r >= 2 ? r - 2 : 0;
}

/* Sets s->logits to `raw` masked to the tokens j's grammar allows within its budget. False
 * when nothing is allowed. */
static bool constrain(pv_sched *s, pv_job *j, const float *raw) {
    const int V = s->m->hp.n_vocab;
    size_t n = pv_grammar_mask_budget_list(j->gs, j->gvocab, s->allowed, grammar_budget(s, j),
                                           s->allowed_ids, PV_SCHED_ALLOWED_IDS);
    if (n == 0) return false;
    if (n <= PV_SCHED_ALLOWED_IDS) { /* few allowed (JSON structure): visit only those */
        for (int i = 0; i < V; i++) s->logits[i] = -INFINITY;
        for (size_t k = 0; k < n; k++) s->logits[s->allowed_ids[k]] = raw[s->allowed_ids[k]];
    } else {
        for (int i = 0; i < V; i++) s->logits[i] = s->allowed[i] ? raw[i] : -INFINITY;
    }
    return true;
}

/* One step: cancellations, one batch, sampling. Returns false if there was nothing to do. */
static bool step(pv_sched *s) {
    const int P = s->p.n_parallel;
    for (int slot = 0; slot < P; slot++) {
        pv_job *j = s->slots[slot];
        if (j && atomic_load(&j->cancel)) job_end(s, j, PV_FINISH_CANCELLED, -1, NULL);
        else if (j && (!j->smp || !j->stop)) job_end(s, j, PV_FINISH_ERROR, -1, "out of memory");
    }
    int n = 0, n_out = 0;
    /* decode tokens first: every generating sequence advances one token per step */
    for (int slot = 0; slot < P; slot++) {
        pv_job *j = s->slots[slot];
        if (!j || j->n_past < j->n_prompt) continue;
        s->b_tok[n] = j->last;
        s->b_pos[n] = j->n_past;
        s->b_seq[n] = slot;
        s->b_log[n] = 1;
        s->out_slot[n_out++] = slot;
        n++;
    }
    /* then prompt chunks in the room left */
    for (int slot = 0; slot < P && n < s->p.n_batch; slot++) {
        pv_job *j = s->slots[slot];
        if (!j || j->n_past >= j->n_prompt) continue;
        int len = PV_MIN(s->p.n_batch - n, j->n_prompt - j->n_past);
        for (int i = 0; i < len; i++) {
            s->b_tok[n] = j->prompt[j->n_past + i];
            s->b_pos[n] = j->n_past + i;
            s->b_seq[n] = slot;
            s->b_log[n] = (j->n_past + i == j->n_prompt - 1);
            if (s->b_log[n]) s->out_slot[n_out++] = slot;
            n++;
        }
    }
    if (n == 0) return false;
    pv_batch b = {n, s->b_tok, s->b_pos, s->b_seq, s->b_log};
    pv_error err = {0};
    pv_status st = pv_ctx_decode(s->ctx, &b, &err);
    if (st != PV_OK) {
        for (int slot = 0; slot < P; slot++)
            if (s->slots[slot]) job_end(s, s->slots[slot], PV_FINISH_ERROR, -1, err.msg);
        return true;
    }
    /* advance positions of everything fed */
    for (int i = 0; i < n; i++) s->slots[s->b_seq[i]]->n_past++;
    const int V = s->m->hp.n_vocab;
    for (int o = 0; o < n_out; o++) {
        pv_job *j = s->slots[s->out_slot[o]];
        if (j->max_tokens <= 0) {
            job_end(s, j, PV_FINISH_LENGTH, -1, NULL);
            continue;
        }
        memcpy(s->logits, pv_ctx_logits(s->ctx, o), (size_t)V * sizeof(float));
        int32_t t = pv_sampler_sample(j->smp, s->logits);
        /* Constrained: the unconstrained draw stands when the grammar (with its budget) allows
         * it — then it is a draw from the masked distribution too, exactly so for plain
         * temperature sampling (with top-k/top-p the truncation comes before the grammar, as
         * in llama.cpp) — and only a refused draw pays for the full mask and a second draw. */
        if (j->gs && !pv_grammar_token_allowed_budget(j->gs, j->gvocab, t, grammar_budget(s, j))) {
            if (!constrain(s, j, pv_ctx_logits(s->ctx, o))) {
                job_end(s, j, PV_FINISH_ERROR, -1, "constrained decoding: no token can continue the grammar");
                continue;
            }
            t = pv_sampler_sample(j->smp, s->logits);
        }
        if (j->gs && !pv_grammar_accept_token(j->gs, j->gvocab, t)) {
            job_end(s, j, PV_FINISH_ERROR, -1, "constrained decoding: the sampled token left the grammar");
            continue;
        }
        on_token(s, j, t);
    }
    return true;
}

static void *engine_main(void *arg) {
    pv_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        admit(s);
        if (s->n_active == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        step(s);
        int used = 0;
        for (int slot = 0; slot < s->p.n_parallel; slot++) used += pv_kv_seq_len(pv_ctx_kv(s->ctx), slot);
        atomic_store(&s->kv_used, used);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    /* shutting down: end whatever is running or queued */
    for (int slot = 0; slot < s->p.n_parallel; slot++)
        if (s->slots[slot]) job_end(s, s->slots[slot], PV_FINISH_CANCELLED, -1, "server shutting down");
    pthread_mutex_lock(&s->mu);
    pv_job *q = s->q_head;
    s->q_head = s->q_tail = NULL;
    s->n_queued = 0;
    pthread_mutex_unlock(&s->mu);
    while (q) {
        pv_job *next = q->next;
        pthread_mutex_lock(&q->mu);
        q->ended = true;
        q->finish = PV_FINISH_CANCELLED;
        snprintf(q->err, sizeof q->err, "server shutting down");
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        job_unref(q);
        q = next;
    }
    return NULL;
}

/* ---- public API ---- */

pv_status pv_sched_new(pv_model *m, const pv_tokenizer *tok, const pv_sched_params *pp,
                       pv_sched **out, pv_error *err) {
    *out = NULL;
    pv_sched_params p = pp ? *pp : pv_sched_params_default();
    if (p.n_parallel <= 0) p.n_parallel = 4;
    if (p.n_queue_max < 0) p.n_queue_max = 0;
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.n_ctx <= 0) p.n_ctx = PV_MIN(m->hp.n_ctx_train, 4096);
    pv_sched *s = calloc(1, sizeof *s);
    if (!s) return pv_error_set(err, PV_ERR_NOMEM, "scheduler: out of memory");
    s->m = m;
    s->tok = tok;
    s->p = p;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pv_ctx_params cp = pv_ctx_params_default();
    cp.n_ctx = p.n_ctx;
    cp.n_seq_max = p.n_parallel;
    cp.n_batch = p.n_batch;
    cp.n_outputs_max = p.n_parallel;
    cp.kv_type = p.kv_type;
    pv_status st = pv_ctx_new(m, &cp, &s->ctx, err);
    if (st != PV_OK) {
        pv_sched_free(s);
        return st;
    }
    s->slots = calloc((size_t)p.n_parallel, sizeof *s->slots);
    s->b_tok = malloc((size_t)p.n_batch * sizeof(int32_t));
    s->b_pos = malloc((size_t)p.n_batch * sizeof(int32_t));
    s->b_seq = malloc((size_t)p.n_batch * sizeof(int32_t));
    s->b_log = malloc((size_t)p.n_batch);
    s->out_slot = malloc((size_t)p.n_parallel * sizeof(int));
    s->logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    s->allowed = malloc((size_t)m->hp.n_vocab);
    if (!s->slots || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_log || !s->out_slot || !s->logits ||
        !s->allowed) {
        pv_sched_free(s);
        return pv_error_set(err, PV_ERR_NOMEM, "scheduler: out of memory");
    }
    if (pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        pv_sched_free(s);
        return pv_error_set(err, PV_ERR_INTERNAL, "scheduler: cannot start the engine thread");
    }
    s->thread_started = true;
    *out = s;
    return PV_OK;
}

void pv_sched_shutdown(pv_sched *s) {
    if (!s || !s->thread_started) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_started = false;
}

void pv_sched_free(pv_sched *s) {
    if (!s) return;
    pv_sched_shutdown(s);
    pv_ctx_free(s->ctx);
    free(s->slots);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_seq);
    free(s->b_log);
    free(s->out_slot);
    free(s->logits);
    free(s->allowed);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int pv_sched_n_ctx(const pv_sched *s) { return s->p.n_ctx; }

double pv_sched_kv_usage(pv_sched *s) {
    double total = (double)s->p.n_parallel * (double)s->p.n_ctx;
    return total > 0 ? (double)atomic_load(&s->kv_used) / total : 0.0;
}

void pv_sched_set_queue_max(pv_sched *s, int n_queue_max) {
    /* read by pv_sched_submit under s->mu */
    pthread_mutex_lock(&s->mu);
    s->p.n_queue_max = n_queue_max < 0 ? 0 : n_queue_max;
    pthread_mutex_unlock(&s->mu);
}

void pv_sched_counts(pv_sched *s, int *active, int *queued) {
    pthread_mutex_lock(&s->mu);
    if (active) *active = s->n_active;
    if (queued) *queued = s->n_queued;
    pthread_mutex_unlock(&s->mu);
}

pv_status pv_sched_submit(pv_sched *s, const pv_gen_params *p, pv_job **out, pv_error *err) {
    *out = NULL;
    if (p->n_prompt <= 0) return pv_error_set(err, PV_ERR_INVALID, "the prompt is empty");
    if (p->n_prompt >= s->p.n_ctx)
        return pv_error_set(err, PV_ERR_RANGE, "prompt is too long: %d tokens > %d maximum",
                            p->n_prompt, s->p.n_ctx - 1);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= s->m->hp.n_vocab)
            return pv_error_set(err, PV_ERR_RANGE, "prompt token %d is out of the vocabulary", p->prompt[i]);
    pv_job *j = calloc(1, sizeof *j);
    if (!j) return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2;
    j->n_prompt = p->n_prompt;
    j->max_tokens = p->max_tokens;
    j->sp = p->sampling;
    j->stop_index = -1;
    atomic_init(&j->cancel, false);
    j->prompt = malloc((size_t)p->n_prompt * sizeof(int32_t));
    j->stops = p->n_stops ? calloc(p->n_stops, sizeof(char *)) : NULL;
    bool ok = j->prompt && (!p->n_stops || j->stops);
    if (ok) memcpy(j->prompt, p->prompt, (size_t)p->n_prompt * sizeof(int32_t));
    if (ok && p->grammar) {
        if (!p->grammar_vocab || pv_grammar_vocab_n(p->grammar_vocab) != s->m->hp.n_vocab) {
            j->refs = 1;
            job_unref(j);
            return pv_error_set(err, PV_ERR_INVALID, "grammar vocabulary does not match the model");
        }
        pv_status gst = pv_grammar_compile(p->grammar, strlen(p->grammar), "root", &j->grammar, err);
        if (gst == PV_OK) gst = pv_grammar_state_init(j->grammar, &j->gs, err);
        if (gst != PV_OK) {
            j->refs = 1;
            job_unref(j);
            return gst;
        }
        j->gvocab = p->grammar_vocab;
    }
    for (size_t i = 0; ok && i < p->n_stops; i++) {
        j->stops[i] = strdup(p->stops[i]);
        j->n_stops = i + 1;
        ok = j->stops[i] != NULL;
    }
    if (!ok) {
        j->refs = 1;
        job_unref(j);
        return pv_error_set(err, PV_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&s->mu);
    int free_slots = s->p.n_parallel - s->n_active;
    if (s->n_queued >= s->p.n_queue_max + PV_MAX(free_slots, 0) || s->stop) {
        int queue_max = s->p.n_queue_max; /* read under s->mu: a SIGHUP reload may change it */
        pthread_mutex_unlock(&s->mu);
        j->refs = 1;
        job_unref(j);
        return pv_error_set(err, PV_ERR_OVERLOADED, "overloaded: %d requests running and %d waiting",
                            s->p.n_parallel, queue_max);
    }
    if (s->q_tail) s->q_tail->next = j;
    else s->q_head = j;
    s->q_tail = j;
    s->n_queued++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *out = j;
    return PV_OK;
}

pv_status pv_job_wait(pv_job *j, double timeout_s, char *buf, size_t cap, size_t *len,
                      bool *done) {
    *len = 0;
    *done = false;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double secs = timeout_s > 0 ? timeout_s : 0;
    until.tv_sec += (time_t)secs;
    until.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (j->out_taken == j->out_len && !j->ended) {
        if (pthread_cond_timedwait(&j->cv, &j->mu, &until) != 0) break;
    }
    size_t avail = j->out_len - j->out_taken;
    size_t n = PV_MIN(avail, cap);
    if (n) memcpy(buf, j->out + j->out_taken, n);
    j->out_taken += n;
    *len = n;
    *done = j->ended && j->out_taken == j->out_len;
    pthread_mutex_unlock(&j->mu);
    return PV_OK;
}

pv_finish pv_job_finish(pv_job *j, int *stop_index, int *n_prompt, int *n_generated) {
    pthread_mutex_lock(&j->mu);
    pv_finish f = j->ended ? j->finish : PV_FINISH_NONE;
    if (stop_index) *stop_index = j->stop_index;
    if (n_prompt) *n_prompt = j->n_prompt;
    if (n_generated) *n_generated = j->n_gen;
    pthread_mutex_unlock(&j->mu);
    return f;
}

const char *pv_job_error(pv_job *j) { return j->err; }

void pv_job_times(pv_job *j, double *t_first, double *t_end) {
    pthread_mutex_lock(&j->mu);
    if (t_first) *t_first = j->t_first;
    if (t_end) *t_end = j->t_end;
    pthread_mutex_unlock(&j->mu);
}

void pv_job_cancel(pv_job *j) { atomic_store(&j->cancel, true); }

void pv_job_release(pv_job *j) {
    if (!j) return;
    pv_job_cancel(j);
    job_unref(j);
}
