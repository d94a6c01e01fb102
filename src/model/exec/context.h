/*
 * context.h — the inside of an exec_ctx (exec.h), shared by the files that build one
 * (lower.c), run it operator by operator (run.c) and schedule batches over threads
 * (schedule.c): one step per IR node, the arena, the pool, sub-contexts and their timings.
 */
#ifndef IMGSIM_MODEL_EXEC_CONTEXT_H
#define IMGSIM_MODEL_EXEC_CONTEXT_H

#include <pthread.h>
#include <pthreadpool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <xnnpack.h>

#include "model/exec/exec.h"
#include "model/kernels/fconv.h"
#include "model/kernels/qadd.h"
#include "model/kernels/qconv.h"
#include "model/kernels/qdwconv.h"

#define EX_MAX_BATCH 4096 /* images a context may be sized for */
#define EX_PAD_BYTES 64   /* slack after constant copies: XNNPACK kernels may over-read */

/* Batches run one image per thread on fp32 plans only when every thread streaming all the
 * weights is cheap; larger models (ResNet-50, VGG16) are faster layer by layer, each layer's
 * weights read once for the whole batch. 48 MB: MobileNetV2 (14 MB) and EfficientNet-B0
 * (21 MB) are under it, ResNet-50 (100 MB) above (docs/MODELS.md, "Threads"). */
#define IMAGE_PARALLEL_F32_BYTES ((size_t)48 << 20)

typedef struct step {
    xnn_operator_t op;
    qconv *qc;              /* quant convolutions (and fully connected layers with int8
                             * weights) on imgsim's AVX512 kernels instead of op */
    qdwconv *qdw;
    fconv *fc;              /* fp32 convolutions and fully connected layers (AVX512F) */
    int borrowed;           /* qc / qdw / fc belong to the parent context (sub-contexts) */
    void *consts[2];        /* operator-owned copies of constant operands (nd ops) */
    uint8_t *lut;           /* quant element-wise nodes: output byte for each input byte */
    int own_add;            /* ort_arith plans: Add on qadd_run (operands swapped if 2) */
    qadd_params add;
    int own_gap;            /* ort_arith plans: global average pool on qgap_run */
} step;

struct exec_ctx {
    const exec_plan *p;
    step *steps;
    uint8_t *arena;
    int max_batch;
    int setup_batch;        /* batch the operators are currently set up for, 0 = none */
    pthreadpool_t pool;
    /* Quant plans with several threads: batches of 2+ images run one image per thread, each
     * on a single-threaded batch-1 context of its own (no synchronisation between layers,
     * and each image's activations stay in its core's cache). */
    exec_ctx **sub;
    atomic_int *sub_busy;
    int nsub;
    atomic_int sub_failed;
    pthread_mutex_t sub_lock; /* guards sub_err */
    imgsim_error sub_err;
    /* Single images with sub-contexts: seconds per run layer-parallel on the pool [0] and
     * serially on sub[0] [1], and the number of single-image runs. */
    double one_time[2];
    unsigned one_runs;
    double one_probe;       /* when to re-time the slower mode next (seconds) */
    int image_parallel;     /* batches one image per sub-context (else only sub[0], for the
                             * serial fallback) */
    double many_time[2];    /* as one_time, per image, for batches run layer by layer */
    unsigned many_runs;
    double many_probe;
    /* Quantized inputs fed with normalised floats (g->input_from_float): the input byte for
     * each raw channel value, for the mean/std it was made with. */
    uint8_t in_lut[3][256];
    float lut_mean[3], lut_std[3];
    int lut_ready;
};

/* Where tensor t's buffer starts: images of a batch lie one after another at each offset. */
static inline void *tensor_ptr(const exec_ctx *c, int t)
{
    int r = c->p->root[t];
    return c->arena + c->p->offset[r] * (size_t)c->max_batch;
}

/* XNNPACK refused node `op` (lower.c). */
imgsim_status ex_xnn_fail(imgsim_error *err, const ir_op *op, enum xnn_status s);

/* The whole batch operator by operator, each operator spread over the pool (run.c). */
imgsim_status ex_run_layers(exec_ctx *c, const uint8_t *const *rgb, int n, const float mean[3],
                            const float std[3], imgsim_error *err);

/* Let the pool's spinning workers sleep (run.c), so decode threads sharing the cores get them
 * back. */
void ex_rest_workers(pthreadpool_t pool);

#endif
