/*
 * exec.h — runs a graph IR on XNNPACK operators.
 *
 * An exec_plan is made once per model: it decides each tensor's element type for the
 * chosen precision, which tensors share a buffer (reshape/squeeze are free), and where in a
 * single arena each activation lives (liveness-based reuse). An exec_ctx instantiates the
 * plan: one XNNPACK operator (or, for quantized convolutions on AVX512-VNNI CPUs, one of
 * imgsim's own kernels: model/kernels) per IR node, weights packed once, a pthreadpool and
 * the arena, sized for up to `max_batch` images. Contexts with several threads run batches
 * one image per thread (quantized plans, and fp32 plans whose weights are small; see schedule.c).
 * Contexts are independent and may run concurrently; the plan and graph they point to are
 * read-only.
 *
 * Two precisions share one lowering:
 *   quant: activations stay uint8 with the file's per-tensor scale/zero point, and every
 *          node maps to an XNNPACK qu8 operator (convolution, add, pooling, softmax, ...);
 *          element-wise activations (LeakyRelu, HardSigmoid, Clamp, HardSwish, requantizing
 *          Relu) are 256-entry tables;
 *   fp32:  activations are float; uint8/int8 weights are dequantized when the context is
 *          built ((w - zero_point) * scale per tensor or channel, int32 biases * input_scale
 *          * weight_scale), and the file's activation quantization is ignored.
 * On CPUs with AVX512-VNNI, quant convolutions and depthwise convolutions run on imgsim's
 * exact kernels (model/kernels: qconv, qdwconv, about 2.5x XNNPACK 2022's qu8) instead.
 * Convolutions and fully connected layers with int8 or per-channel weights (ONNX
 * QLinearConv/MatMul) need those kernels: without VNNI such models run in fp32.
 * ONNX-quantized graphs (`ort_arith`) also add and global-pool with ONNX Runtime's
 * arithmetic (qadd_run, qgap_run). On AVX512F CPUs fp32 convolutions and fully connected
 * layers run on fconv.
 * Reshape, squeeze and (in fp32) quantize/dequantize nodes are aliases: their output shares
 * the input's buffer, so they cost nothing; so are a Relu/Relu6/Clamp folded into its
 * producer's output range, and (fp32) a Sigmoid + Mul folded into a swish of its producer.
 * Activations live in one arena; a buffer is reused once the last node reading it has run
 * (greedy first-fit by liveness).
 *
 * Threads (quant plans, and fp32 plans with up to 48 MB of weights): a batch of 2+ images
 * runs one image per thread on single-threaded batch-1 sub-contexts, which share the
 * parent's packed weights (imgsim's kernels are read-only once built); a single image runs
 * operator by operator on the pool, or on one thread when that is measured faster (another
 * process holding a core). Larger fp32 models run every batch layer by layer, with the same
 * fallback to one thread. See docs/MODELS.md.
 *
 * Files: plan.c (exec_plan_make, in named steps), arena.c (activation allocator), node.c
 * (what they share about nodes), lower.c (exec_ctx_new: a step per node), run.c (the steps
 * of a batch, exec_read), schedule.c (exec_run: threads, the serial fallback).
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
