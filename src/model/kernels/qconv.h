/*
 * qconv.h — imgsim's exact uint8 (TFLite "qu8") and int8-weight (ONNX) convolution on
 * AVX512-VNNI (qconv.c), and the parameters and checks it shares with the depthwise kernel
 * (qdwconv.h). The other kernels of model/kernels: fconv.h (fp32 convolution), fswish.h,
 * qadd.h (QLinearAdd), qgap.h (QLinearGlobalAveragePool).
 *
 * XNNPACK's qu8 convolutions (Debian's 2022 snapshot) widen bytes to 16 bits and use
 * vpmaddwd; this machine's VNNI instruction (vpdpbusd: 64 uint8 x int8 products per
 * instruction) does four times the work per instruction. qconv lowers a non-grouped
 * convolution to a GEMM (1x1 stride-1 convolutions read the NHWC activation in place; other
 * shapes gather patches per tile) and keeps qu8's arithmetic exact:
 *
 *   sum_k (x_k - zx)(w_k - zw) = sum_k x_k (w_k - 128)          vpdpbusd, weights as int8
 *                              + (128 - zw) * sum_k x_k          per-pixel byte sum (vpsadbw)
 *                              - zx * sum_k (w_k - zw)           folded into the bias
 *
 * then requantizes like XNNPACK's fp32 path (acc * scale, clamp, round to nearest even, add
 * the output zero point). Only available when the CPU has AVX512-F/BW and VNNI; callers fall
 * back to XNNPACK otherwise (qconv_new returns NULL with *unsupported set).
 *
 * ONNX QLinearConv / QLinearMatMul models have int8 weights (`w_signed`), usually zero point
 * 0, and a scale per output channel. vpdpbusd takes them as they are (the byte-sum term
 * vanishes when the zero point is 0); `scales` gives each channel its own multiplier
 * x_scale * w_scale[c] / y_scale. The requantization is then ONNX Runtime's
 * (MlasRequantizeOutput): float(acc) * multiplier, clamped to [0 - zy, 255 - zy], rounded to
 * nearest even, plus zy.
 */
#ifndef IMGSIM_MODEL_KERNELS_QCONV_H
#define IMGSIM_MODEL_KERNELS_QCONV_H

#include <pthreadpool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct qconv qconv;

typedef struct qconv_params {
    size_t kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    size_t cin, cout;
    const uint8_t *w;     /* [cout][kh][kw][cin], TFLite layout; int8 bytes if w_signed */
    int32_t w_zero_point; /* 0..255, or -128..127 if w_signed */
    const int32_t *bias;  /* [cout] or NULL; bytes may be unaligned */
    uint8_t x_zero_point;
    float scale;          /* input_scale * weight_scale / output_scale (unless `scales`) */
    uint8_t y_zero_point, y_min, y_max;
    int w_signed;         /* weights are int8 */
    const float *scales;  /* NULL, or [cout] per-channel multipliers replacing `scale` */
} qconv_params;

/* 1 if this CPU can run qconv kernels. */
int qconv_available(void);

/* 1 if qconv_new (qdwconv_new when `depthwise`) takes these parameters on this CPU. */
int qconv_supported(const qconv_params *p, int depthwise);

/* Weight i of p->w as a number, minus the weight zero point (for packing and references). */
int32_t qconv_weight(const qconv_params *p, size_t i);

#define QDW_MAX_TAPS 64

/* Packs the weights. NULL with *unsupported = 1 if the shape or CPU is not handled (use
 * XNNPACK), NULL with *unsupported = 0 when out of memory. */
qconv *qconv_new(const qconv_params *p, int *unsupported);
void qconv_free(qconv *q);

/* n images of in_h x in_w x cin (NHWC, uint8) into n x out_h x out_w x cout. */
void qconv_run(const qconv *q, size_t n, size_t in_h, size_t in_w, size_t out_h, size_t out_w,
               const uint8_t *x, uint8_t *y, pthreadpool_t pool);

#endif
