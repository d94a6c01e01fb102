/*
 * irtest.h — helpers shared by the model tests that inspect an IR graph (test_tflite.c,
 * test_onnx_reader.c).
 */
#ifndef IMGSIM_TESTS_MODEL_IRTEST_H
#define IMGSIM_TESTS_MODEL_IRTEST_H

#include "model/ir/graph.h"

/* How many operators of kind `k` the graph holds. */
static inline int ir_count_ops(const ir_graph *g, ir_op_kind k)
{
    int n = 0;
    for (int i = 0; i < g->nops; i++)
        n += g->ops[i].kind == k;
    return n;
}

#endif
