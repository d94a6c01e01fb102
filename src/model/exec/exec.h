/*
 * exec.h — runs a graph IR on XNNPACK operators.
 *
 * An exec_plan is made once per model: it decides each tensor's element type for the
 * chosen precision, which tensors share a buffer (reshape/squeeze are free), and where in a
 * single arena each activation lives (liveness-based reuse). An exec_ctx instantiates the
 * plan: one XNNPACK operator (or, for quantized convolutions on AVX512-VNNI CPUs, one of
 * imgsim's own kernels: qconv.h) per IR node, weights packed once, a pthreadpool and the
 * arena, sized for up to `max_batch` images. Contexts with several threads run batches one
 * image per thread (quantized plans, and fp32 plans whose weights are small; see exec.c).
 * Contexts are independent and may run concurrently; the plan and graph they point to are
 * read-only.
 */
#ifndef IMGSIM_MODEL_EXEC_H
#define IMGSIM_MODEL_EXEC_H

#include "model/ir/graph.h"

typedef struct exec_plan {
    const ir_graph *g;
    int quant;          /* 1: uint8 activations and qu8 operators; 0: fp32 throughout */
    int *root;          /* per tensor: tensor whose buffer it uses (itself unless aliased) */
    size_t *offset;     /* per root tensor: byte offset in a batch-1 arena, SIZE_MAX if none */
    size_t arena_bytes; /* per image */
    int emb;            /* embedding tensor */
    int out;            /* classifier output tensor (graph output) */
    int emb_pool_in;    /* quant plans whose embedding is a global average pool: the pool's
                         * input, averaged in float by exec_read (else -1) */
    uint8_t *fused;     /* per node: 1 = a Relu/Relu6/Clamp folded into its producer's output
                         * range (the producer's only reader); the node is then an alias */
    float *fuse_lo, *fuse_hi; /* per node: output range folded in (-INF/INF: none) */
    uint8_t *swish;     /* per node: a Mul(x, Sigmoid(x)) computed as one swish pass over x,
                         * 1 + the index of x among its inputs (its Sigmoid is then folded:
                         * an alias) */
    size_t weight_bytes; /* convolution and fully connected weights as executed */
    int ort_arith;      /* quant plans of ONNX-quantized graphs (int8 weights or a float-fed
                         * input) on AVX512 CPUs: Add and global average pooling follow ONNX
                         * Runtime's arithmetic bit for bit (TFLite graphs keep XNNPACK's) */
} exec_plan;

/* `precision`: IMGSIM_PRECISION_QUANT fails if the graph cannot run quantized. */
imgsim_status exec_plan_make(const ir_graph *g, imgsim_precision precision, int emb,
                             exec_plan *p, imgsim_error *err);
void exec_plan_free(exec_plan *p);

typedef struct exec_ctx exec_ctx;

imgsim_status exec_ctx_new(const exec_plan *p, int threads, int max_batch, exec_ctx **out,
                           imgsim_error *err);
void exec_ctx_free(exec_ctx *c);

/* Input: n images, each H*W*3 float values already normalised for the model (fp32 plans of
 * float models) — or raw RGB bytes, converted by exec as the model's input quantization says. */
imgsim_status exec_run(exec_ctx *c, const uint8_t *const *rgb, int n, const float mean[3],
                       const float std[3], imgsim_error *err);

/* After exec_run: tensor `t` of image `i` as floats (dequantized if needed); `out` holds
 * numel(t) floats. `t` must be the plan's `emb` or `out` tensor (batches that ran one image
 * per thread only bring those back into the context). */
void exec_read(const exec_ctx *c, int t, int i, float *out);

#endif
