/*
 * fconv.h — imgsim's fp32 convolution (and fully connected layers as 1x1 convolutions) on
 * AVX512F (fconv.c).
 */
#ifndef IMGSIM_MODEL_KERNELS_FCONV_H
#define IMGSIM_MODEL_KERNELS_FCONV_H

#include <pthreadpool.h>
#include <stddef.h>

/* An "indirect" GEMM — each tile of 6 output pixels x 64 channels accumulates in 24 zmm
 * registers over taps and input channels, reading the NHWC input in place (a zero row for
 * padding), weights packed per 64-channel group as [k][64]; K is cut into L2-sized chunks
 * (accumulating in the output) when the packed group outgrows L2. XNNPACK 2022's f32 GEMM
 * keeps 7 accumulators (7x16) and runs at about half this rate on Zen 5. */
typedef struct fconv_params {
    size_t kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    size_t cin, cout;
    const float *w;       /* [cout][kh][kw][cin] */
    const float *bias;    /* [cout] or NULL */
    float y_min, y_max;   /* output clamp (-INFINITY / INFINITY for none) */
    int swish;            /* then y = y * sigmoid(y) (ONNX Sigmoid + Mul, EfficientNet) */
} fconv_params;
typedef struct fconv fconv;

/* 1 if this CPU can run fconv kernels (AVX512F). */
int fconv_available(void);
/* NULL with *unsupported = 1 if the CPU or shape is not handled, *unsupported = 0 when out of
 * memory. */
fconv *fconv_new(const fconv_params *p, int *unsupported);
void fconv_free(fconv *f);
void fconv_run(const fconv *f, size_t n, size_t in_h, size_t in_w, size_t out_h, size_t out_w,
               const float *x, float *y, pthreadpool_t pool);

#endif
