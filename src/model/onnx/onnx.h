/*
 * onnx.h — the ONNX front-end's entry point: an .onnx file into the graph IR (onnx_reader.c;
 * the files of the front-end are listed in onnx_reader.h).
 */
#ifndef IMGSIM_MODEL_ONNX_ONNX_H
#define IMGSIM_MODEL_ONNX_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "model/ir/graph.h"

/* Read an ONNX model held in memory; on success the graph takes ownership of `bytes`.
 * `dir` is the model file's directory, for external-data files (NULL: none allowed). */
imgsim_status onnx_read(uint8_t *bytes, size_t len, const char *dir, ir_graph *g,
                        imgsim_error *err);

#endif
