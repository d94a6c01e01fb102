/*
 * node.h — what plan making (plan.c), lowering (lower.c) and running (run.c) share about IR
 * nodes: aliases, global pools, weights only imgsim's kernels take, qconv parameters, and
 * output ranges. Defined in node.c.
 */
#ifndef IMGSIM_MODEL_EXEC_NODE_H
#define IMGSIM_MODEL_EXEC_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "model/exec/exec.h"
#include "model/kernels/qconv.h"

/* ---- kinds of nodes */
/* Is `op` an alias in a plan of this precision: no work, its output shares its input's
 * buffer (reshapes; quantize / dequantize in fp32; a float dequantize in quant plans)? */
int ex_is_alias(const ir_graph *g, const ir_op *op, int quant);
/* Node i of a plan: an alias (the above, or a node folded by the plan)? */
int ex_step_alias(const exec_plan *p, int i);
/* A pool or mean over the whole H x W input (MEAN, or a window covering it unpadded)? */
int ex_global_pool(const ir_graph *g, const ir_op *op);
/* Bytes per activation element: 1 in quant plans, 4 in fp32 ones. */
size_t ex_elem_size(const exec_plan *p);
/* Weights XNNPACK's qu8 operators cannot take (int8, or per-channel scales)? */
int ex_needs_own_kernel(const ir_tensor *w);

/* ---- quantized convolutions */
/* Requantization multiplier of output channel c (ONNX Runtime's float order). */
float ex_chan_mult(const ir_graph *g, const ir_op *op, size_t c);
/* qconv parameters of a quantized convolution, depthwise convolution or fully connected node
 * with output clamp [lo, hi]; per-channel multipliers into `scales` (cout floats) if given. */
void ex_qconv_params(const ir_graph *g, const ir_op *op, uint8_t lo, uint8_t hi,
                     float *scales, qconv_params *qp);

/* ---- output ranges */
/* round(real / scale) + zero point, clamped to 0..255. */
uint8_t ex_qclamp(const ir_tensor *t, float real);
/* Byte range of a fused activation on uint8 tensor y. */
void ex_act_range_q(const ir_tensor *y, ir_act act, uint8_t *lo, uint8_t *hi);
/* Float range of a fused activation (intersected with what a uint8 y can represent). */
void ex_act_range_f(const ir_tensor *y, ir_act act, float *lo, float *hi);
/* A node's output range in float / in bytes: its fused activation and any Relu / Clamp the
 * plan folded into it. */
void ex_op_range_f(const exec_plan *p, const ir_op *op, const ir_tensor *y, float *lo,
                   float *hi);
void ex_op_range_q(const exec_plan *p, const ir_op *op, const ir_tensor *y, uint8_t *lo,
                   uint8_t *hi);

#endif
