/* threadpool.c — a persistent pool of worker threads for data-parallel kernels. One job at
 * a time: the caller publishes (fn, ctx, n_tasks) under a new generation number, every
 * thread (the caller included, as thread 0) claims task indices from an atomic counter, and
 * the caller returns when all workers have finished. Workers spin briefly before sleeping on
 * a condition variable because a decode step issues a few hundred short jobs and a futex
 * wake per job would cost more than the work of small matrices. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "pv_backend.h"

#define PV_SPIN_ITERS 20000

struct pv_threadpool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint_fast64_t generation;
    atomic_int_fast64_t next_task;
    atomic_int n_busy; /* workers that have not finished the current job */
    atomic_bool stop;
    int64_t n_tasks;
    pv_task_fn fn;
    void *ctx;
};

typedef struct {
    pv_threadpool *pool;
    int index;
} pv_worker_arg;

static inline void pv_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    sched_yield();
#endif
}

static void pv_pool_do_tasks(pv_threadpool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *pv_pool_worker(void *arg) {
    pv_worker_arg *wa = arg;
    pv_threadpool *p = wa->pool;
    int index = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        /* wait for a new generation: spin, then sleep */
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire)) {
            if (++spins < PV_SPIN_ITERS) {
                pv_cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_acquire))
                pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = g;
        pv_pool_do_tasks(p, index);
        if (atomic_fetch_sub_explicit(&p->n_busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Owns the threads it creates; returns NULL on failure (partial threads are joined). */
pv_threadpool *pv_threadpool_new(int n_threads) {
    if (n_threads <= 0) n_threads = pv_cpu_count();
    pv_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->next_task, 0);
    atomic_init(&p->n_busy, 0);
    atomic_init(&p->stop, false);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->threads) {
            pv_threadpool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            pv_worker_arg *wa = malloc(sizeof *wa);
            if (wa) {
                wa->pool = p;
                wa->index = i;
            }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, pv_pool_worker, wa) != 0) {
                free(wa);
                p->n_threads = i; /* only join what started */
                pv_threadpool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void pv_threadpool_free(pv_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

int pv_threadpool_size(const pv_threadpool *p) { return p ? p->n_threads : 1; }

void pv_threadpool_run(pv_threadpool *p, int64_t n_tasks, pv_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_busy, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);

    pv_pool_do_tasks(p, 0);

    int spins = 0;
    while (atomic_load_explicit(&p->n_busy, memory_order_acquire) != 0) {
        if (++spins < PV_SPIN_ITERS) {
            pv_cpu_relax();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->n_busy, memory_order_acquire) != 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
