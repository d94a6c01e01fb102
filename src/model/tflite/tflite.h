/*
 * tflite.h — the TFLite front-end's entry point: a .tflite file into the graph IR
 * (tflite_reader.c, over the checked FlatBuffers reader flatbuf.h).
 */
#ifndef IMGSIM_MODEL_TFLITE_TFLITE_H
#define IMGSIM_MODEL_TFLITE_TFLITE_H

#include <stddef.h>
#include <stdint.h>

#include "model/ir/graph.h"

/* Read a .tflite file held in memory; on success the graph takes ownership of `bytes`. */
imgsim_status tflite_read(uint8_t *bytes, size_t len, ir_graph *g, imgsim_error *err);

#endif
