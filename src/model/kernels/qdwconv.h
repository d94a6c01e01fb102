/*
 * qdwconv.h — imgsim's exact depthwise (multiplier 1) uint8 convolution on AVX512 (qdwconv.c):
 * pairs of taps are multiplied as int16 with vpdpwssd, padding reads a row of input zero
 * points.
 */
#ifndef IMGSIM_MODEL_KERNELS_QDWCONV_H
#define IMGSIM_MODEL_KERNELS_QDWCONV_H

#include <pthreadpool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/kernels/qconv.h"

/* Parameters as qconv.h's, with cin == cout == channels and w in TFLite's
 * [1][kh][kw][channels] layout (uint8 or int8, per-tensor or per-channel scales alike). */
typedef struct qdwconv qdwconv;
qdwconv *qdwconv_new(const qconv_params *p, int *unsupported);
void qdwconv_free(qdwconv *q);
void qdwconv_run(const qdwconv *q, size_t n, size_t in_h, size_t in_w, size_t out_h,
                 size_t out_w, const uint8_t *x, uint8_t *y, pthreadpool_t pool);

#endif
