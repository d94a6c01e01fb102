/*
 * qgap.c — ONNX Runtime's QLinearGlobalAveragePool over NHWC on AVX512, bit for bit
 * (contract in qgap.h).
 */
#include "model/kernels/qgap.h"

#include <immintrin.h>

#define TARGET_VL __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

TARGET_VL void qgap_run(const uint8_t *x, size_t n, size_t hw, size_t c, float sx, int32_t zx,
                     float sy, int32_t zy, uint8_t lo, uint8_t hi, uint8_t *y)
{
    float scale = sx / (sy * (float)hw);
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512 vlo = _mm512_set1_ps((float)lo - (float)zy);
    const __m512 vhi = _mm512_set1_ps((float)hi - (float)zy);
    const __m512i bias = _mm512_set1_epi32(-zx * (int32_t)hw), vz = _mm512_set1_epi32(zy);
    for (size_t img = 0; img < n; img++) {
        const uint8_t *xi = x + img * hw * c;
        for (size_t c0 = 0; c0 < c; c0 += 16) {
            size_t left = c - c0;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __m512i acc = _mm512_setzero_si512();
            for (size_t px = 0; px < hw; px++)
                acc = _mm512_add_epi32(acc, _mm512_cvtepu8_epi32(
                                                _mm_maskz_loadu_epi8(m, xi + px * c + c0)));
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bias)), vs);
            f = _mm512_min_ps(_mm512_max_ps(f, vlo), vhi);
            __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(f), vz);
            _mm512_mask_cvtepi32_storeu_epi8(y + img * c + c0, m, r);
        }
    }
}
