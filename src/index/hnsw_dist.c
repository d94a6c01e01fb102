/*
 * hnsw_dist.c — the distance kernels of the HNSW index, compiled for several instruction
 * sets with function-level target attributes; the best one the CPU runs is picked once
 * (like score.c does for L1).
 *
 *   dot_f32, l2_f32   float32 dot product / squared distance: AVX-512F, AVX2+FMA, portable
 *   dot_u8s8          uint8 codes x int8 query, exact int32 sum: AVX512-VNNI (vpdpbusd,
 *                     64 products per instruction), AVX-512BW / AVX2 (widen to 16 bits,
 *                     vpmaddwd: no saturation), portable
 *
 * Lengths are multiples of 16 floats / 64 bytes (the index pads its codes), so no kernel has
 * a tail loop. Float kernels use four accumulators to hide the FMA latency.
 */
#include "index/hnsw_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HNSW_X86 1
#include <immintrin.h>
#endif

/* ------------------------------------------------------------ portable */

static float dot_f32_generic(const float *a, const float *b, size_t n)
{
    float s[8] = {0};
    for (size_t i = 0; i < n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[i + l] * b[i + l];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float l2_f32_generic(const float *a, const float *b, size_t n)
{
    float s[8] = {0};
    for (size_t i = 0; i < n; i += 8)
        for (int l = 0; l < 8; l++) {
            float d = a[i + l] - b[i + l];
            s[l] += d * d;
        }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static int32_t dot_u8s8_generic(const uint8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

#ifdef HNSW_X86
/* ------------------------------------------------------------ AVX2 + FMA */

__attribute__((target("avx2,fma"))) static float hsum256(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b,
                                                              size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx2,fma"))) static float l2_f32_avx2(const float *a, const float *b,
                                                             size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx2"))) static int32_t dot_u8s8_avx2(const uint8_t *a, const int8_t *b,
                                                             size_t n)
{
    __m256i s = _mm256_setzero_si256();
    for (size_t i = 0; i < n; i += 16) {
        __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(x, y));
    }
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

/* ------------------------------------------------------------ AVX-512 */

__attribute__((target("avx512f"))) static float dot_f32_avx512(const float *a, const float *b,
                                                               size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i < n)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float l2_f32_avx512(const float *a, const float *b,
                                                              size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i < n) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f,avx512bw"))) static int32_t dot_u8s8_avx512bw(const uint8_t *a,
                                                                             const int8_t *b,
                                                                             size_t n)
{
    __m512i s = _mm512_setzero_si512();
    for (size_t i = 0; i < n; i += 32) {
        __m512i x = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(x, y));
    }
    return _mm512_reduce_add_epi32(s);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int32_t
dot_u8s8_vnni(const uint8_t *a, const int8_t *b, size_t n)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(a + i + 64),
                                 _mm512_loadu_si512(b + i + 64));
    }
    if (i < n)
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}
#endif

static hnsw_kernels kernels_best;
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

/* Pick the widest kernels this CPU (and OS) supports. */
static void kernels_pick(void)
{
    kernels_best = (hnsw_kernels){dot_f32_generic, l2_f32_generic, dot_u8s8_generic};
#ifdef HNSW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        kernels_best = (hnsw_kernels){dot_f32_avx2, l2_f32_avx2, dot_u8s8_avx2};
    if (__builtin_cpu_supports("avx512f")) {
        kernels_best.dot_f32 = dot_f32_avx512;
        kernels_best.l2_f32 = l2_f32_avx512;
        if (__builtin_cpu_supports("avx512bw"))
            kernels_best.dot_u8s8 = dot_u8s8_avx512bw;
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
            kernels_best.dot_u8s8 = dot_u8s8_vnni;
    }
#endif
}

int hnsw_kernels_variants(hnsw_kernels *out, const char **names, int max)
{
    int n = 0;
#define ADD(name, a, b, c)                                                                         \
    do {                                                                                           \
        if (n < max) {                                                                             \
            out[n] = (hnsw_kernels){a, b, c};                                                      \
            names[n] = name;                                                                       \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)
    ADD("generic", dot_f32_generic, l2_f32_generic, dot_u8s8_generic);
#ifdef HNSW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ADD("avx2", dot_f32_avx2, l2_f32_avx2, dot_u8s8_avx2);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        ADD("avx512bw", dot_f32_avx512, l2_f32_avx512, dot_u8s8_avx512bw);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        ADD("avx512vnni", dot_f32_avx512, l2_f32_avx512, dot_u8s8_vnni);
#endif
#undef ADD
    return n < max ? n : max;
}

const hnsw_kernels *hnsw_kernels_get(void)
{
    pthread_once(&kernels_once, kernels_pick);
    return &kernels_best;
}
