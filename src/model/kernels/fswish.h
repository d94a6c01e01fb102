/*
 * fswish.h — a one-pass fp32 swish on AVX512F (fswish.c).
 */
#ifndef IMGSIM_MODEL_KERNELS_FSWISH_H
#define IMGSIM_MODEL_KERNELS_FSWISH_H

#include <pthreadpool.h>
#include <stddef.h>

/* Swish / SiLU, y = x * sigmoid(x) = x / (1 + exp(-x)), in one pass over n floats (AVX512F;
 * exp by range reduction and a degree-6 polynomial: relative error ~2e-7). The fused form of
 * ONNX's Sigmoid + Mul (EfficientNet); y may be x. */
void fswish_run(const float *x, float *y, size_t n, pthreadpool_t pool);

#endif
