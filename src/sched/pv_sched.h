/* pv_sched.h — the engine thread and its continuous-batching loop. Requests (jobs) are
 * submitted from any thread; one engine thread owns the model context and, at every step,
 * builds ONE batch holding the next token of every generating sequence plus a chunk of a
 * waiting prompt, so a long prompt is processed in pieces between other sequences' decode
 * steps instead of freezing them. Each job has its own sampler and stop-string matcher and
 * an output buffer of text released only at UTF-8 boundaries and never containing a stop
 * string. The HTTP side waits on a job (with a timeout, for keep-alive pings), reads text,
 * and cancels it when its client goes away; the engine frees the sequence at the next step.
 *
 * Ownership: a job is shared by the submitter and the engine (reference counted); the
 * submitter calls pv_job_release once, the engine drops its reference when the job ends. */
#ifndef PV_SCHED_H
#define PV_SCHED_H

#include "../grammar/pv_grammar.h"
#include "../model/pv_model.h"
#include "../sampler/pv_sampler.h"
#include "../tokenizer/pv_tokenizer.h"

typedef struct pv_sched_params {
    int n_parallel;    /* sequences generating at once (KV slots); default 4 */
    int n_queue_max;   /* jobs waiting for a slot before submit says overloaded; default 16 */
    int n_ctx;         /* positions per sequence (<= 0: model default, at most 4096) */
    int n_batch;       /* most tokens per forward pass; default 512 */
    pv_type kv_type;   /* F16 default */
} pv_sched_params;

pv_sched_params pv_sched_params_default(void);

typedef enum {
    PV_FINISH_NONE = 0,  /* still running */
    PV_FINISH_EOG,       /* the model produced an end-of-generation token */
    PV_FINISH_LENGTH,    /* max_tokens reached */
    PV_FINISH_STOP,      /* a stop string matched (stop_index says which) */
    PV_FINISH_CONTEXT,   /* the sequence filled the context */
    PV_FINISH_CANCELLED, /* cancelled by the submitter */
    PV_FINISH_ERROR      /* engine error (message in the job) */
} pv_finish;

typedef struct pv_gen_params {
    const int32_t *prompt; /* copied at submit */
    int n_prompt;
    int max_tokens;
    pv_sampler_params sampling;
    const char *const *stops; /* copied at submit */
    size_t n_stops;
    /* Constrained decoding (NULL: none): GBNF text with a "root" rule, compiled at submit
     * (the job owns the result), and the vocabulary view it is matched with (borrowed; must
     * outlive the scheduler). Every token is drawn from those the grammar allows, with a
     * budget so that the output is a complete sentence of the grammar before max_tokens or
     * the context runs out (whenever the shortest sentence fits at all); end-of-generation
     * is allowed only once it is complete. */
    const char *grammar;
    const pv_grammar_vocab *grammar_vocab;
} pv_gen_params;

typedef struct pv_sched pv_sched;
typedef struct pv_job pv_job;

/* Creates the context (n_parallel sequence slots) on `m` and starts the engine thread.
 * Borrows m and tok (they must outlive the scheduler). */
pv_status pv_sched_new(pv_model *m, const pv_tokenizer *tok, const pv_sched_params *p,
                       pv_sched **out, pv_error *err);
/* Stops the engine thread: running and queued jobs end as CANCELLED (their waiters wake
 * up) and later submits answer overloaded. The scheduler stays valid until pv_sched_free,
 * so a server can shut down its engine before it stops its connection threads. */
void pv_sched_shutdown(pv_sched *s);
/* Shuts down (if not done yet) and frees the context. */
void pv_sched_free(pv_sched *s);

/* Queues a job. PV_ERR_OVERLOADED when the wait queue is full; PV_ERR_RANGE when the prompt
 * does not fit the context (message says "N tokens > M maximum"). */
pv_status pv_sched_submit(pv_sched *s, const pv_gen_params *p, pv_job **out, pv_error *err);

/* Active and queued job counts (for /health and metrics). */
void pv_sched_counts(pv_sched *s, int *active, int *queued);
int pv_sched_n_ctx(const pv_sched *s);
/* KV cache use: positions holding a sequence's rows over positions allocated
 * (n_parallel * n_ctx), 0..1, as of the engine's last step (for metrics; any thread). */
double pv_sched_kv_usage(pv_sched *s);
/* Changes how many jobs may wait for a slot (SIGHUP reload); jobs already queued stay. */
void pv_sched_set_queue_max(pv_sched *s, int n_queue_max);

/* Waits up to timeout_s for new text or the end. Copies up to cap bytes of new text to buf
 * (*len; the rest stays for the next call) and sets *done when the job has ended and all
 * its text has been taken. Returns PV_OK (also on timeout with *len == 0). */
pv_status pv_job_wait(pv_job *j, double timeout_s, char *buf, size_t cap, size_t *len,
                      bool *done);
/* Final state (valid once done): finish reason, matched stop index (or -1), token counts. */
pv_finish pv_job_finish(pv_job *j, int *stop_index, int *n_prompt, int *n_generated);
const char *pv_job_error(pv_job *j);
/* pv_time_now() stamps of the job's first sampled token and of its end (0: not reached),
 * for time-to-first-token and tokens/s. */
void pv_job_times(pv_job *j, double *t_first, double *t_end);
/* Asks the engine to end the job; it frees the sequence at its next step. */
void pv_job_cancel(pv_job *j);
/* The submitter's release (cancels if still running). */
void pv_job_release(pv_job *j);

#endif /* PV_SCHED_H */
