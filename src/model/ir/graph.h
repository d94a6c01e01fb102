/*
 * graph.h — imgsim's small graph IR: tensors (shape, dtype, quantization, constant data)
 * and operators in execution order. Front-ends (model/tflite, model/onnx) produce it,
 * shape.c completes it, model/exec lowers it onto XNNPACK operators.
 *
 * Layout is NHWC throughout: the ONNX front-end converts NCHW models once, at the input
 * (weights are transposed at load, axes remapped). Constant data normally points into the model file's bytes,
 * which the graph owns (`file`); tensors created by passes own their data (`owned`).
 */
#ifndef IMGSIM_MODEL_GRAPH_H
#define IMGSIM_MODEL_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"

#define IR_MAX_RANK 6
#define IR_MAX_IN 4

typedef enum ir_dtype { IR_F32, IR_U8, IR_I8, IR_I32, IR_I64, IR_F16, IR_OTHER } ir_dtype;

typedef struct ir_tensor {
    char *name;
    int rank;                   /* -1 while unknown (shape not stored in the file) */
    int64_t shape[IR_MAX_RANK];
    ir_dtype dtype;
    int quantized;              /* per-tensor affine: real = scale * (q - zero_point) */
    float scale;
    int32_t zero_point;
    int nchannel_scales;        /* > 1: per-channel quantization along `qdim` */
    float *channel_scales;      /* owned */
    int qdim;
    const uint8_t *data;        /* constant data, NULL for activations */
    size_t nbytes;
    void *owned;                /* set when the tensor owns `data` */
} ir_tensor;

typedef enum ir_op_kind {
    IR_CONV2D,
    IR_DWCONV2D,
    IR_FULLY_CONNECTED,
    IR_ADD,
    IR_MUL,
    IR_AVG_POOL,
    IR_MAX_POOL,
    IR_MEAN,      /* spatial mean over H and W (axes 1,2) */
    IR_RESHAPE,   /* also SQUEEZE: data unchanged */
    IR_SOFTMAX,
    IR_HARD_SWISH,
    IR_LOGISTIC,
    IR_RELU,
    IR_RELU6,
    IR_QUANTIZE,  /* float->quant or quant->quant (requantize) */
    IR_DEQUANTIZE,
    IR_CONCAT,
    IR_SUB,
    IR_LEAKY_RELU, /* y = x < 0 ? alpha * x : x */
    IR_HARD_SIGMOID, /* y = max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid) */
    IR_CLAMP,     /* y = min(max(x, lo), hi) (ONNX Clip; Relu6 is a clamp to [0, 6]) */
    IR_OP_COUNT
} ir_op_kind;

typedef enum ir_act { IR_ACT_NONE, IR_ACT_RELU, IR_ACT_RELU6, IR_ACT_RELU_N1_1 } ir_act;

typedef struct ir_op {
    ir_op_kind kind;
    int nin;
    int in[IR_MAX_IN];       /* tensor indices; -1 = optional input absent */
    int out;
    /* convolution / pooling */
    int stride_h, stride_w, dil_h, dil_w;
    int kh, kw;              /* pooling window (convs take it from the filter) */
    int pad_same;            /* TensorFlow SAME padding, else VALID (or explicit, below) */
    int pad_explicit;        /* pad_* set by the front-end (ONNX pads); shape inference keeps
                              * them instead of deriving SAME/VALID padding */
    int pad_top, pad_left, pad_bottom, pad_right; /* filled by shape inference */
    int depth_mult;
    ir_act act;
    /* reductions, concat, softmax */
    int axis;
    int keep_dims;
    int squeeze;             /* RESHAPE from SQUEEZE: drop size-1 dims in mask `axis` (0 = all) */
    float beta;              /* softmax beta; HARD_SIGMOID offset */
    float alpha;             /* LEAKY_RELU slope; HARD_SIGMOID slope */
    float lo, hi;            /* CLAMP bounds (-INFINITY / INFINITY when absent) */
    char *name;              /* name of the node (its output tensor), for messages */
} ir_op;

typedef struct ir_graph {
    ir_tensor *t;
    int nt;
    ir_op *ops;
    int nops;
    int input;               /* the image input tensor */
    int output;              /* the graph's (first) output tensor */
    /* The input tensor is quantized but takes normalised floats, not raw pixels (ONNX
     * QuantizeLinear at the input): q = round(((rgb - mean) / std) / scale) + zero_point.
     * 0 for TFLite uint8 models, whose input quantization is itself the normalisation. */
    int input_from_float;
    int output_logits;       /* the output holds logits (no softmax in the graph): a
                              * classifier whose probabilities are softmax(output) */
    uint8_t *file;           /* model bytes, owned; constants point inside */
    size_t file_len;
} ir_graph;

const char *ir_op_name(ir_op_kind k);
const char *ir_dtype_name(ir_dtype d);
size_t ir_dtype_size(ir_dtype d);
int64_t ir_numel(const ir_tensor *t);        /* product of the shape (rank must be known) */
int ir_find_tensor(const ir_graph *g, const char *name);
int ir_producer(const ir_graph *g, int tensor); /* op index or -1 */
void ir_graph_free(ir_graph *g);

/* Complete missing shapes and compute padding; checks every operator's operands. */
imgsim_status ir_infer_shapes(ir_graph *g, imgsim_error *err);

#endif
