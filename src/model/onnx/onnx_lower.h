/*
 * onnx_lower.h — the lowering helpers shared by the ONNX operator files (onnx_conv.c,
 * onnx_gemm.c, onnx_ops.c, onnx_qops.c), defined in onnx_lower.c.
 */
#ifndef IMGSIM_MODEL_ONNX_ONNX_LOWER_H
#define IMGSIM_MODEL_ONNX_ONNX_LOWER_H

#include "model/onnx/onnx_reader.h"

/* ---- windows of convolutions and pools */
typedef struct ox_win {
    int64_t stride[2], dil[2];
    int64_t pad[4];          /* top, left, bottom, right */
    int64_t out[2];          /* output H, W (floor) */
    int64_t ceil_out[2];     /* output H, W with ceil_mode */
    int same[2];             /* padding equals TensorFlow SAME */
} ox_win;
/* strides, dilations, pads and auto_pad of `n` over input H,W `in_hw` and kernel `k`. */
imgsim_status ox_window(ox_ctx *c, const ox_node *n, const int64_t *in_hw, const int64_t *k,
                        int allow_dil, ox_win *w);
void ox_set_window(ir_op *op, const ox_win *w);

/* ---- activations */
/* Clip's bounds; *ready = 0 when a bound input is not (yet) a constant. */
imgsim_status ox_clip_bounds(ox_ctx *c, const ox_node *n, float *lo, float *hi, int *ready);
/* Clip / Relu node `n` as a fused activation, if it is one: 1 and *act set. */
int ox_fusable_act(ox_ctx *c, const ox_node *n, ir_act *act);

/* ---- batch normalization */
/* BatchNormalization `b` as per-channel scale and shift over `ch` channels (malloc'ed). */
imgsim_status ox_bn_params(ox_ctx *c, const ox_node *b, int64_t ch, float **scale,
                           float **shift);

/* ---- element-wise operands */
/* The two operands (inputs ka, kb; quantized: scale / zero point follow each) of a
 * broadcasting element-wise node as IR tensors; *lay, *rank, dims: the ONNX result. */
imgsim_status ox_binary(ox_ctx *c, const ox_node *n, int ka, int kb, int quant, int ir[2],
                        ox_layout *lay, int *rank, int64_t *dims);

/* ---- flattened weights */
/* Reorder the columns of a [rows, C*H*W] weight matrix from C,H,W to H,W,C order. */
imgsim_status ox_permute_chw(ox_ctx *c, const ox_node *n, uint8_t *w, int64_t rows,
                             const int64_t chw[3], size_t es);

/* ---- quantized operands. QLinearConv and QLinearMatMul share the input order x, x_scale,
 * x_zp, w, w_scale, w_zp, y_scale, y_zp[, bias]. */
typedef struct ox_qconv {
    int bias;                /* bias value (int32 constant), -1 none */
    int wt;                  /* the IR weight tensor (transposed), to receive its scales */
    int64_t oc;              /* output channels */
    int qdim;                /* weight dimension of the output channel */
} ox_qconv;
/* Scale (float > 0) and zero point (uint8; *is_int8 for int8) of inputs k_scale, k_zp. */
imgsim_status ox_qparams(ox_ctx *c, const ox_node *n, int k_scale, int k_zp, float *scale,
                         int32_t *zp, int *is_int8);
/* Quantized activation input `k` (with its scale / zero point at k + 1, k + 2) as an IR
 * tensor with exactly those parameters (requantized when its producer's differ). */
imgsim_status ox_qinput(ox_ctx *c, const ox_node *n, int k, int *ir);
/* Weight scales of q->wt and the int32 bias of a QLinearConv / QLinearMatMul. */
imgsim_status ox_quant_weights(ox_ctx *c, const ox_node *n, const ox_qconv *q, int *x_ir,
                               int *bias_ir);
/* Output IR tensor `ir` takes scale / zero point inputs k_scale, k_zp (uint8 only). */
imgsim_status ox_quant_out(ox_ctx *c, const ox_node *n, int k_scale, int k_zp, int ir);

#endif
