/*
 * schedule.c — exec_run (exec.h): how a batch uses the context's threads. Batches of 2+
 * images on image-parallel contexts run one image per thread on single-threaded batch-1
 * sub-contexts; otherwise the batch runs layer by layer on the pool (run.c), or image after
 * image on one thread when that is measured faster (another process holding a core).
 */
#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "model/exec/context.h"
#include "model/exec/node.h"

/* The serial / layer-parallel choice (contexts with sub-contexts). Each context keeps, for
 * single images and for batches, the seconds per image of each mode and a run counter k:
 *   - runs 0 and 1 warm each mode up once, untimed (first-touch page faults, cold caches);
 *     runs 2 and 3 time each mode once; even runs are layer-parallel, odd ones serial;
 *   - from run SCHED_START_RUNS on the faster mode runs, and its time is a running average;
 *   - every SCHED_PROBE_EVERY runs, and whenever the probe is late, the slower mode runs once
 *     instead and its time is replaced by that run's. A probe is late after
 *     SCHED_PROBE_SPACING times the slower mode's cost of a batch (so probing costs at most
 *     ~1/20 = 5% of the time) and at least SCHED_PROBE_MIN_SECONDS: large models run few
 *     images per second, and a core taken by another process should be noticed within
 *     a second or so.
 * The numbers are tuning choices from measurements on the project's 2-core machine
 * (docs/MODELS.md, "Threads": layer-parallel runs measured up to 50x slower while another
 * process held a core). */
#define SCHED_UNTIMED_RUNS 2
#define SCHED_START_RUNS 4
#define SCHED_PROBE_EVERY 256
#define SCHED_PROBE_SPACING 20
#define SCHED_PROBE_MIN_SECONDS 1.0
#define SCHED_NEW_WEIGHT 0.25 /* weight of a new timing in the running average */

typedef struct image_job {
    exec_ctx *c;
    const uint8_t *const *rgb;
    const float *mean, *std;
} image_job;

/* The tensors exec_read may be asked for after a run. */
static void copy_results(exec_ctx *to, const exec_ctx *from, int i)
{
    const exec_plan *p = to->p;
    int ts[3] = {p->emb, p->out, p->emb_pool_in};
    for (int k = 0; k < 3; k++) {
        if (ts[k] < 0)
            continue;
        size_t bytes = (size_t)ir_numel(&p->g->t[ts[k]]) * ex_elem_size(p);
        memcpy((uint8_t *)tensor_ptr(to, ts[k]) + (size_t)i * bytes,
                                        tensor_ptr(from, ts[k]), bytes);
    }
}

/* One image on a free single-threaded sub-context (at most nsub run at once: one per
 * pool thread). */
static void run_image(void *ctx, size_t i)
{
    image_job *j = ctx;
    exec_ctx *c = j->c;
    int k = 0;
    for (;; k = (k + 1) % c->nsub) {
        int idle = 0;
        if (atomic_compare_exchange_strong(&c->sub_busy[k], &idle, 1))
            break;
    }
    imgsim_error e = {0};
    if (exec_run(c->sub[k], &j->rgb[i], 1, j->mean, j->std, &e) == IMGSIM_OK) {
        copy_results(c, c->sub[k], (int)i);
    } else if (!atomic_exchange(&c->sub_failed, 1)) {
        pthread_mutex_lock(&c->sub_lock);
        c->sub_err = e;
        pthread_mutex_unlock(&c->sub_lock);
    }
    atomic_store(&c->sub_busy[k], 0);
}

imgsim_status exec_run(exec_ctx *c, const uint8_t *const *rgb, int n, const float mean[3],
                       const float std[3], imgsim_error *err)
{
    if (n < 1 || n > c->max_batch)
        return error_set(err, IMGSIM_E_ARG, "batch of %d images; context holds %d", n,
                         c->max_batch);
    if (n > 1 && c->nsub && c->image_parallel) {
        image_job j = {c, rgb, mean, std};
        atomic_store(&c->sub_failed, 0);
        pthreadpool_parallelize_1d(c->pool, run_image, &j, (size_t)n, 0);
        ex_rest_workers(c->pool);
        if (atomic_load(&c->sub_failed)) {
            if (err)
                *err = c->sub_err;
            return c->sub_err.code ? c->sub_err.code : IMGSIM_E_INTERNAL;
        }
        return IMGSIM_OK;
    }
    if (c->nsub) {
        /* Layer by layer on the pool (one image, or a batch of a large fp32 model). But when
         * another process holds a core, every operator waits for a descheduled worker
         * (pthreadpool joins all threads after each operator) and a run can take 20-50x
         * longer; then one thread alone, image after image, is faster. Both are timed per
         * image (after a warm-up run each) and the faster used; the other is re-timed now and
         * then (SCHED_* above). */
        double *t = n == 1 ? c->one_time : c->many_time;
        unsigned *runs = n == 1 ? &c->one_runs : &c->many_runs;
        double *next = n == 1 ? &c->one_probe : &c->many_probe;
        unsigned k = (*runs)++;
        if (*runs == 0)
            *runs = SCHED_START_RUNS; /* wrapped: stay past the warm-up */
        double t0 = clock_now();
        /* re-time the slower mode every SCHED_PROBE_EVERY runs, and when the probe is late */
        int late = k >= SCHED_START_RUNS && t0 >= *next;
        int due = k % SCHED_PROBE_EVERY == 0 || late;
        int probe = k < SCHED_START_RUNS || due;
        int serial = k < SCHED_START_RUNS ? (int)(k & 1) : (t[1] < t[0]) != due;
        imgsim_status st = IMGSIM_OK;
        if (serial) {
            for (int i = 0; i < n && st == IMGSIM_OK; i++) {
                st = exec_run(c->sub[0], &rgb[i], 1, mean, std, err);
                if (st == IMGSIM_OK)
                    copy_results(c, c->sub[0], i);
            }
        } else {
            st = ex_run_layers(c, rgb, n, mean, std, err);
        }
        if (st != IMGSIM_OK)
            return st;
        double dt = (clock_now() - t0) / n;
        if (k >= SCHED_UNTIMED_RUNS)
            t[serial] = probe ? dt : (1.0 - SCHED_NEW_WEIGHT) * t[serial] + SCHED_NEW_WEIGHT * dt;
        if (probe && k >= SCHED_START_RUNS - 1) { /* both modes timed: when to probe next */
            double slow = (t[0] > t[1] ? t[0] : t[1]) * n, gap = slow * SCHED_PROBE_SPACING;
            *next = clock_now() + (gap > SCHED_PROBE_MIN_SECONDS ? gap : SCHED_PROBE_MIN_SECONDS);
        }
        return IMGSIM_OK;
    }
    return ex_run_layers(c, rgb, n, mean, std, err);
}
