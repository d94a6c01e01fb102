/*
 * qconv.h — imgsim's own kernels: uint8 (TFLite "qu8") and int8-weight (ONNX) convolutions
 * on AVX512-VNNI, exact; fp32 convolutions on AVX512F (fconv); ONNX Runtime's QLinearAdd and
 * QLinearGlobalAveragePool arithmetic; a one-pass swish.
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
#ifndef IMGSIM_MODEL_QCONV_H
#define IMGSIM_MODEL_QCONV_H

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

/* Depthwise (multiplier 1) uint8 convolution, exact, in qdwconv.c: pairs of taps are
 * multiplied as int16 with vpdpwssd, padding reads a row of input zero points. Parameters
 * as above with cin == cout == channels and w in TFLite's [1][kh][kw][channels] layout
 * (uint8 or int8, per-tensor or per-channel scales alike). */
typedef struct qdwconv qdwconv;
qdwconv *qdwconv_new(const qconv_params *p, int *unsupported);
void qdwconv_free(qdwconv *q);
void qdwconv_run(const qdwconv *q, size_t n, size_t in_h, size_t in_w, size_t out_h,
                 size_t out_w, const uint8_t *x, uint8_t *y, pthreadpool_t pool);

/* fp32 convolution (and fully connected layers as 1x1 convolutions) on AVX512F, in qconv.c:
 * an "indirect" GEMM — each tile of 6 output pixels x 64 channels accumulates in 24 zmm
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

/* Swish / SiLU, y = x * sigmoid(x) = x / (1 + exp(-x)), in one pass over n floats (AVX512F;
 * exp by range reduction and a degree-6 polynomial: relative error ~2e-7). The fused form of
 * ONNX's Sigmoid + Mul (EfficientNet); y may be x. */
void fswish_run(const float *x, float *y, size_t n, pthreadpool_t pool);

/* ONNX Runtime's QLinearAdd, bit for bit (its x86 kernel: real ratios, fused multiply-adds,
 * round half to even): with ra = sa / sc, rb = sb / sc and fixed = zc - fma(ra, za, rb * zb),
 *   c = sat_u8(round(fma(a, ra, fma(b, rb, fixed))))
 * (b a single value too). Checked against onnxruntime-node 1.30 on every input pair for 43
 * scale sets. AVX512 CPUs only (qconv_available). `b` has blen values, repeated along a
 * (blen divides n; 1: a single value). A single *a* (ONNX Runtime's other scalar case) is
 * fma(b, rb, fma(a, ra, fixed)): swap ra and rb after qadd_init and pass b as `a`. */
typedef struct qadd_params {
    float ra, rb, fixed;
    uint8_t lo, hi;       /* output clamp (a fused activation), 0..255 without one */
} qadd_params;
void qadd_init(qadd_params *p, float sa, int32_t za, float sb, int32_t zb, float sc,
               int32_t zc, uint8_t lo, uint8_t hi);
void qadd_run(const qadd_params *p, const uint8_t *a, const uint8_t *b, size_t blen, size_t n,
              uint8_t *c, pthreadpool_t pool);

/* ONNX Runtime's QLinearGlobalAveragePool over NHWC, bit for bit: per channel, the sum of
 * hw bytes minus zx * hw, times sx / (sy * hw), clamped to [lo - zy, hi - zy], rounded half to
 * even, plus zy. n images of hw pixels x c channels into n x c bytes. AVX512 CPUs only. */
void qgap_run(const uint8_t *x, size_t n, size_t hw, size_t c, float sx, int32_t zx, float sy,
              int32_t zy, uint8_t lo, uint8_t hi, uint8_t *y);

#endif
