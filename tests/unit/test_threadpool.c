/* test_threadpool.c — the persistent thread pool: every task runs exactly once, on every
 * pool size, over many consecutive jobs (the decode loop issues hundreds per token), and
 * jobs with fewer tasks than threads. */
#include <stdatomic.h>
#include <stdlib.h>

#include "pv_test.h"
#include "backend/pv_backend.h"

typedef struct {
    atomic_int *hits;
    atomic_int max_thread;
} job_t;

static void task(void *ctx, int64_t t, int thread) {
    job_t *j = ctx;
    atomic_fetch_add(&j->hits[t], 1);
    int cur = atomic_load(&j->max_thread);
    while (thread > cur && !atomic_compare_exchange_weak(&j->max_thread, &cur, thread)) {
    }
}

static void test_every_task_once(void **state) {
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        pv_threadpool *p = pv_threadpool_new(threads);
        assert_non_null(p);
        assert_int_equal(pv_threadpool_size(p), threads);
        for (int job = 0; job < 300; job++) {
            int n = 1 + (job * 37) % 200;
            atomic_int *hits = calloc((size_t)n, sizeof *hits);
            job_t j = {hits, 0};
            pv_threadpool_run(p, n, task, &j);
            for (int i = 0; i < n; i++) assert_int_equal(atomic_load(&hits[i]), 1);
            assert_true(atomic_load(&j.max_thread) < threads);
            free(hits);
        }
        pv_threadpool_run(p, 0, task, NULL); /* no tasks: returns at once */
        pv_threadpool_free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_task_once)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
