/*
 * fuzz_onnx.c — libFuzzer target for the ONNX reader (onnx_pb.c, onnx_reader.c and the rest
 * of the front-end, shape.c) and the execution planner: any byte string must give a graph
 * or a clean one-line error. External data is not allowed here (no directory is given).
 *
 *   FUZZ_TARGETS=fuzz/fuzz_onnx.c scripts/fuzz.sh 600
 * (scripts/fuzz.sh builds with clang -fsanitize=fuzzer,address,undefined). Seeds: small
 * .onnx files in build/fuzz/fuzz_onnx/corpus — a few KB each is best (the int8 zoo model's
 * stem and classifier cut out of it, small float networks); whole models work but make
 * every execution slow.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec/exec.h"
#include "model/ir/graph.h"
#include "model/onnx/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    ir_graph g;
    imgsim_error e = {0};
    if (onnx_read(b, size, NULL, &g, &e) == IMGSIM_OK) {
        exec_plan p;
        if (exec_plan_make(&g, IMGSIM_PRECISION_AUTO, g.output, &p, &e) == IMGSIM_OK)
            exec_plan_free(&p);
    } else if (!e.msg[0] || strchr(e.msg, '\n')) {
        abort(); /* every failure explains itself in one line */
    }
    ir_graph_free(&g);
    return 0;
}
