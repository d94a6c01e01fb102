/*
 * onnx_reader.h — what the files of the ONNX front-end share: the parsed model (values and
 * nodes), the conversion context, and helpers to read attributes and constants and to add
 * IR tensors and operators.
 *
 *   onnx_pb.c      protobuf wire format
 *   onnx_reader.c  ModelProto / GraphProto -> values and nodes; the driver (onnx_read)
 *   onnx_tensor.c  TensorProto (raw, typed and external data); constants as numbers
 *   onnx_build.c   IR tensors and operators, NCHW -> NHWC layout of values
 *   onnx_attr.c    error messages, node attributes
 *   onnx_fold.c    constant folding of shape arithmetic
 *   onnx_shape.c   shape rules of Reshape / Flatten / Squeeze / Unsqueeze
 *   onnx_lower.c   lowering helpers the operator files share (onnx_lower.h): windows, fused
 *                  activations, BatchNormalization parameters, element-wise operands,
 *                  quantized operands
 *   onnx_conv.c    Conv / QLinearConv, BatchNormalization folding, activation fusion
 *   onnx_gemm.c    Gemm / MatMul
 *   onnx_ops.c     every other float operator
 *   onnx_qops.c    the QOperator set (QuantizeLinear, QLinearAdd, QLinearMatMul, ...)
 *
 * The four operator files are leaves: each uses this header and onnx_lower.h, never another
 * operator file.
 *
 * Values are ONNX tensors by name. A value is a constant (initializer, Constant node or a
 * folded result; data in ONNX layout) or an activation with an IR tensor. Rank-4
 * activations in ONNX's NCHW order are stored NHWC in the IR (layout OX_NCHW); rows
 * flattened from such a tensor keep their H,W,C memory order (OX_CHW_FLAT) and may only
 * feed a Gemm/MatMul, whose weights are permuted to match at load.
 */
#ifndef IMGSIM_MODEL_ONNX_READER_H
#define IMGSIM_MODEL_ONNX_READER_H

#include <stdint.h>

#include "core/error.h"
#include "core/strmap.h"
#include "model/ir/graph.h"
#include "model/onnx/onnx_pb.h"

/* TensorProto.DataType */
enum {
    OX_FLOAT = 1, OX_UINT8 = 2, OX_INT8 = 3, OX_UINT16 = 4, OX_INT16 = 5, OX_INT32 = 6,
    OX_INT64 = 7, OX_STRING = 8, OX_BOOL = 9, OX_FLOAT16 = 10, OX_DOUBLE = 11, OX_UINT32 = 12,
    OX_UINT64 = 13,
};

/* AttributeProto.AttributeType */
enum { OX_A_FLOAT = 1, OX_A_INT = 2, OX_A_STRING = 3, OX_A_TENSOR = 4, OX_A_FLOATS = 6,
       OX_A_INTS = 7 };

/* Limits on what a file may declare (far above any real image model). */
#define OX_MAX_NODES 100000
#define OX_MAX_VALUES 400000
#define OX_MAX_NODE_IO 4096
#define OX_MAX_FOLD 16777216 /* elements a folded constant may have */
#define OX_FOLD_BUDGET ((size_t)256 << 20) /* bytes all folded constants may take */
#define OX_MAX_ACT ((int64_t)1 << 31)   /* elements an activation may have */

typedef enum ox_layout { OX_PLAIN, OX_NCHW, OX_CHW_FLAT } ox_layout;

typedef struct ox_value {
    char *name;
    int defined;             /* initializer, graph input, or output of an earlier node */
    int dtype;               /* ONNX data type (0 unknown) */
    int rank;                /* -1 unknown */
    int64_t dims[IR_MAX_RANK];
    /* constants */
    int is_const;
    const uint8_t *data;     /* little-endian elements in ONNX order */
    size_t nbytes;
    void *owned;             /* reader allocation behind `data` (moves to the IR on use) */
    /* activations */
    int ir;                  /* IR tensor index, -1 none */
    int ir_const;            /* a constant's IR tensor viewing `data` as is, -1 none */
    ox_layout layout;
    int64_t chw[3];          /* OX_CHW_FLAT: C, H, W of the rows' source */
    int bad_node;            /* produced by an unsupported node: its index + 1 */
    int nreaders;            /* nodes naming it as an input (+1 for a graph output) */
    int shape_readers;       /* of those, Shape nodes (they read no data) */
    int reader;              /* the last of them */
    int is_output;           /* a graph output */
} ox_value;

typedef struct ox_node {
    pb_buf msg;              /* the NodeProto, for attributes */
    char *name;              /* node name, or its first output when unnamed */
    char *op;                /* op_type */
    int ms;                  /* domain com.microsoft */
    int nin, nout;
    int *in, *out;           /* value indices, -1 = absent (one allocation, `in` first) */
    int skip;                /* folded into an earlier node */
} ox_node;

typedef struct ox_ctx {
    ir_graph *g;
    imgsim_error *err;
    const uint8_t *file;
    size_t file_len;
    const char *dir;
    int64_t opset;           /* default-domain opset */
    ox_value *v;
    int nv;
    size_t capv;
    strmap names;            /* value name -> index */
    ox_node *nodes;
    int nnodes;
    size_t tcap, opcap;      /* capacities of g->t, g->ops */
    size_t fold_bytes;       /* allocated by constant folding so far */
    int input, output;       /* graph input / first output value */
    int axes_hw;             /* IR constant [1, 2] (int32) for spatial means, -1 until made */
} ox_ctx;

typedef struct ox_attr {
    int type;
    float f;
    int64_t i;
    pb_buf s;                /* string */
    pb_buf t;                /* tensor message */
    pb_buf msg;              /* the whole AttributeProto (floats / ints) */
} ox_attr;

/* ---- errors: "ONNX node 'name' (Op): ..." (onnx_attr.c) */
imgsim_status ox_fail(ox_ctx *c, const ox_node *n, imgsim_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
imgsim_status ox_nomem(ox_ctx *c);

/* ---- attributes (onnx_attr.c): 1 found, 0 absent, -1 corrupt */
int ox_attr_find(const ox_node *n, const char *name, ox_attr *a);
imgsim_status ox_attr_int(ox_ctx *c, const ox_node *n, const char *name, int64_t def,
                          int64_t *out);
imgsim_status ox_attr_float(ox_ctx *c, const ox_node *n, const char *name, float def,
                            float *out);
/* INTS attribute into out[0..max); *count = -1 when absent. */
imgsim_status ox_attr_ints(ox_ctx *c, const ox_node *n, const char *name, int64_t *out, int max,
                           int *count);
/* STRING attribute equal to `z`? `def` when absent. */
int ox_attr_str_is(const ox_node *n, const char *name, const char *z, int def);

/* ---- tensors and constants (onnx_tensor.c) */
void *ox_alloc(size_t bytes);   /* malloc, never of 0 bytes */
size_t ox_dtype_size(int dtype);
int64_t ox_numel(const ox_value *v);
imgsim_status ox_read_tensor(ox_ctx *c, pb_buf msg, ox_value *v, const char *what);
/* Constant input `k` of node `n` (error if absent or not constant when `required`). Returns
 * the value index, -1 if absent and optional. */
int ox_const_in(ox_ctx *c, const ox_node *n, int k, int required, imgsim_status *st);
/* Element i of a constant (any number type) as double. */
double ox_elem(const ox_value *v, size_t i);
/* A constant's elements as int64 / float (converted from any integer or float type); the
 * arrays are malloc'ed (caller frees). */
imgsim_status ox_to_i64(ox_ctx *c, const ox_node *n, const ox_value *v, int64_t **out,
                        size_t *count);
imgsim_status ox_to_f32(ox_ctx *c, const ox_node *n, const ox_value *v, float **out,
                        size_t *count);
/* Transpose a dense array of `esize`-byte elements: dst dimension i is src dimension perm[i]. */
void ox_transpose(const uint8_t *src, uint8_t *dst, int rank, const int64_t *dims,
                  const int *perm, size_t esize);
float ox_half(uint16_t h);
/* Make `v` a constant holding `data` (malloc'ed, taken even on failure). */
imgsim_status ox_set_const(ox_ctx *c, ox_value *v, int dtype, int rank, const int64_t *dims,
                           void *data, size_t nbytes);

/* ---- IR building (onnx_build.c) */
/* New IR tensor "name" or "name<suffix>"; -1 on failure (error set). */
int ox_tensor(ox_ctx *c, const char *name, const char *suffix, ir_dtype dt, int rank,
              const int64_t *shape);
/* New IR constant; takes `owned` (may be NULL when `data` points into the file). */
int ox_tensor_const(ox_ctx *c, const char *name, const char *suffix, ir_dtype dt, int rank,
                    const int64_t *shape, const void *data, size_t nbytes, void *owned);
/* An IR constant viewing constant value `v` as is (zero copy; the IR takes `owned`). */
int ox_tensor_of(ox_ctx *c, ox_value *v, ir_dtype dt);
/* New IR operator with neutral attributes; -1 on failure. */
int ox_op(ox_ctx *c, ir_op_kind k, int out, int nin, const int *in);
/* The IR constant [1, 2] for spatial means. */
int ox_axes_hw(ox_ctx *c);
ir_dtype ox_ir_dtype(int onnx_dtype);
/* Activation input `k` of `n`: its value index (must have an IR tensor). */
imgsim_status ox_act_in(ox_ctx *c, const ox_node *n, int k, int *vi);
/* Give value `vi` an IR tensor with ONNX shape `dims` in `layout` (the IR shape is permuted
 * for OX_NCHW); *ir receives it. */
imgsim_status ox_act_out(ox_ctx *c, const ox_node *n, int vi, ir_dtype dt, ox_layout layout,
                         int rank, const int64_t *dims, int *ir);
/* The IR shape of ONNX dims in `layout`. */
void ox_ir_shape(ox_layout layout, int rank, const int64_t *dims, int64_t *out);
/* A constant operand of a broadcasting element-wise op next to an activation of `act_rank`
 * in `layout`, as an IR constant of type `dt` (IR_F32: converted from any number type;
 * IR_U8: must be uint8). NCHW: padded to rank 4 and permuted to NHWC. */
imgsim_status ox_broadcast_const(ox_ctx *c, const ox_node *n, ox_value *v, int act_rank,
                                 ox_layout layout, ir_dtype dt, int *ir);
/* The single node reading value `vi` and nothing else (graph output counts as a reader):
 * its index, else -1. */
int ox_sole_reader(const ox_ctx *c, int vi);
/* May node `r` be folded into an earlier one (not yet done, outputs not defined)? */
int ox_fusable_node(const ox_ctx *c, int r);
/* Copy quantization (scale, zero point) of IR tensor `from` to `to`. */
void ox_copy_quant(ox_ctx *c, int to, int from);

/* ---- constant folding (onnx_fold.c): 1 folded, 0 not foldable, -1 error (*st) */
int ox_fold(ox_ctx *c, ox_node *n, imgsim_status *st);

/* ---- shape rules (onnx_shape.c) */
/* The axes of Squeeze / Unsqueeze / ReduceMean: attribute `attr` before opset `from`, else
 * constant input `k`. *count = -1 when absent. */
imgsim_status ox_axes(ox_ctx *c, const ox_node *n, const char *attr, int k, int64_t from,
                      int64_t *axes, int *count);
/* Output dims of Reshape (target with 0 / -1), Flatten, Squeeze, Unsqueeze; rank or -1. */
int ox_reshape_dims(int rank, const int64_t *dims, const int64_t *target, int tn, int allowzero,
                    int64_t *out);
int ox_flatten_dims(int rank, const int64_t *dims, int64_t axis, int64_t *out);
int ox_squeeze_dims(int rank, const int64_t *dims, const int64_t *axes, int na, int64_t *out);
int ox_unsqueeze_dims(int rank, const int64_t *dims, const int64_t *axes, int na, int64_t *out);
/* The output dims of a lowered reshape-like node `n` (Reshape, Flatten, Squeeze, Unsqueeze)
 * on input dims; rank or -1 (error set). */
int ox_reshape_target(ox_ctx *c, const ox_node *n, int rank, const int64_t *dims, int64_t *out,
                      imgsim_status *st);

/* ---- operators, one file each (onnx_conv.c, onnx_gemm.c, onnx_ops.c, onnx_qops.c), called
 * by onnx_reader.c; their shared helpers are in onnx_lower.h. */
imgsim_status ox_lower_conv(ox_ctx *c, ox_node *n, int quant);
imgsim_status ox_lower_gemm(ox_ctx *c, ox_node *n, int matmul);
/* Every other float operator / the QOperator set: *handled = 0 if `n` is none of them. */
imgsim_status ox_lower_op(ox_ctx *c, ox_node *n, int *handled);
imgsim_status ox_lower_qop(ox_ctx *c, ox_node *n, int *handled);

#endif
