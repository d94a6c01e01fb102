/*
 * fuzz_tflite.c — libFuzzer target for the TFLite reader (flatbuf.c, tflite_reader.c,
 * shape.c) and the execution planner: any byte string must give a graph or a clean error.
 *
 *   make fuzz FUZZ_SECONDS=600        (scripts/fuzz.sh: builds with clang
 *   -fsanitize=fuzzer,address,undefined and seeds the corpus with the real models)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec/exec.h"
#include "model/ir/graph.h"
#include "model/tflite/tflite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    ir_graph g;
    imgsim_error e = {0};
    if (tflite_read(b, size, &g, &e) == IMGSIM_OK) {
        exec_plan p;
        if (exec_plan_make(&g, IMGSIM_PRECISION_AUTO, g.output, &p, &e) == IMGSIM_OK)
            exec_plan_free(&p);
    }
    ir_graph_free(&g);
    return 0;
}
