/*
 * fexp.h — a vector exp for the fp32 kernels' swish (fconv.c's epilogue, fswish.c).
 */
#ifndef IMGSIM_MODEL_KERNELS_FEXP_H
#define IMGSIM_MODEL_KERNELS_FEXP_H

#include <immintrin.h>

/* exp(z) for z in [-87, 88]: z = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-6 Taylor
 * polynomial (error < 2e-7 relative), times 2^n. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512 fexp(__m512 z)
{
    z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), z); /* ln2 in two parts */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

#endif
