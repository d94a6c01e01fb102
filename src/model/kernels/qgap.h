/*
 * qgap.h — ONNX Runtime's QLinearGlobalAveragePool arithmetic on AVX512 (qgap.c).
 */
#ifndef IMGSIM_MODEL_KERNELS_QGAP_H
#define IMGSIM_MODEL_KERNELS_QGAP_H

#include <stddef.h>
#include <stdint.h>

/* ONNX Runtime's QLinearGlobalAveragePool over NHWC, bit for bit: per channel, the sum of
 * hw bytes minus zx * hw, times sx / (sy * hw), clamped to [lo - zy, hi - zy], rounded half to
 * even, plus zy. n images of hw pixels x c channels into n x c bytes. AVX512 CPUs only. */
void qgap_run(const uint8_t *x, size_t n, size_t hw, size_t c, float sx, int32_t zx, float sy,
              int32_t zy, uint8_t lo, uint8_t hi, uint8_t *y);

#endif
