/*
 * graph.c — small helpers over the graph IR: names, sizes, lookups and freeing.
 */
#include "model/ir/graph.h"

#include <stdlib.h>
#include <string.h>

const char *ir_op_name(ir_op_kind k)
{
    static const char *const names[IR_OP_COUNT] = {
        "Conv2D", "DepthwiseConv2D", "FullyConnected", "Add", "Mul", "AveragePool",
        "MaxPool", "Mean", "Reshape", "Softmax", "HardSwish", "Logistic", "Relu", "Relu6",
        "Quantize", "Dequantize", "Concat", "Sub", "LeakyRelu", "HardSigmoid", "Clamp",
    };
    return (unsigned)k < IR_OP_COUNT ? names[k] : "?";
}

const char *ir_dtype_name(ir_dtype d)
{
    switch (d) {
    case IR_F32: return "float32";
    case IR_U8: return "uint8";
    case IR_I8: return "int8";
    case IR_I32: return "int32";
    case IR_I64: return "int64";
    case IR_F16: return "float16";
    default: return "other";
    }
}

size_t ir_dtype_size(ir_dtype d)
{
    switch (d) {
    case IR_F32: case IR_I32: return 4;
    case IR_U8: case IR_I8: return 1;
    case IR_I64: return 8;
    case IR_F16: return 2;
    default: return 0;
    }
}

int64_t ir_numel(const ir_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->shape[i];
    return n;
}

int ir_find_tensor(const ir_graph *g, const char *name)
{
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].name && strcmp(g->t[i].name, name) == 0)
            return i;
    return -1;
}

int ir_producer(const ir_graph *g, int tensor)
{
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].out == tensor)
            return i;
    return -1;
}

void ir_graph_free(ir_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nt; i++) {
        free(g->t[i].name);
        free(g->t[i].channel_scales);
        free(g->t[i].owned);
    }
    free(g->t);
    free(g->ops);
    free(g->file);
    memset(g, 0, sizeof *g);
}
