/*
 * qadd.h — ONNX Runtime's QLinearAdd arithmetic on AVX512 (qadd.c).
 */
#ifndef IMGSIM_MODEL_KERNELS_QADD_H
#define IMGSIM_MODEL_KERNELS_QADD_H

#include <pthreadpool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
