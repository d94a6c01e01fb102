/*
 * l1_kernel.h — the L1 (Manhattan) distance loops, written once and compiled several times
 * by score.c for different vector widths (16 bytes for any CPU, 32 for AVX2, 64 for
 * AVX-512), the fastest one being picked at run time. Not a normal header: score.c defines
 * L1_SUFFIX (name suffix), L1_VB (vector bytes) and L1_ATTR (function attribute) and
 * includes it.
 *
 * GNU vector extensions, not intrinsics: the code is plain arithmetic on float vectors and
 * compiles on any GCC/Clang target. gcc -O2 does not vectorise a float reduction written as
 * a scalar loop (it may not reorder the additions), so the lanes are made explicit; one
 * accumulator per pair, the lanes added in order 0..VL-1, then the scalar tail. Every
 * function below uses that same order, so a pair gets the same distance from all of them.
 * Vectors are only ever local variables (never passed or returned), which keeps the ABI of
 * these functions independent of the vector width.
 */
#define L1_CAT2(a, b) a##_##b
#define L1_CAT(a, b) L1_CAT2(a, b)
#define L1_NAME(x) L1_CAT(x, L1_SUFFIX)
#define L1_VL (L1_VB / 4)

typedef float L1_NAME(l1_vf) __attribute__((vector_size(L1_VB)));
typedef uint32_t L1_NAME(l1_vu) __attribute__((vector_size(L1_VB)));

/* acc += |x - y| over one vector of lanes at pa, pb. */
#define L1_STEP(acc, pa, pb)                                                                       \
    do {                                                                                           \
        L1_NAME(l1_vf) x_, y_;                                                                     \
        memcpy(&x_, (pa), sizeof x_);                                                              \
        memcpy(&y_, (pb), sizeof y_);                                                              \
        acc += (L1_NAME(l1_vf))((L1_NAME(l1_vu))(x_ - y_) & 0x7fffffffu);                          \
    } while (0)

/* out = lanes of acc in order, then the tail elements [dv, dim) of a and b. */
#define L1_FINISH(out, acc, a, b, dv, dim)                                                         \
    do {                                                                                           \
        float s_ = 0;                                                                              \
        for (int l_ = 0; l_ < L1_VL; l_++)                                                         \
            s_ += acc[l_];                                                                         \
        for (int i_ = (dv); i_ < (dim); i_++)                                                      \
            s_ += fabsf((a)[i_] - (b)[i_]);                                                        \
        (out) = s_;                                                                                \
    } while (0)

/* Distance of one pair. */
L1_ATTR static float L1_NAME(l1_pair)(const float *a, const float *b, int dim)
{
    int dv = dim - dim % L1_VL;
    L1_NAME(l1_vf) acc = {0};
    for (int i = 0; i < dv; i += L1_VL)
        L1_STEP(acc, a + i, b + i);
    float s;
    L1_FINISH(s, acc, a, b, dv, dim);
    return s;
}

/* One query against nr consecutive rows, four rows at a time: keys[j] = -distance. */
L1_ATTR static void L1_NAME(l1_q1)(const float *q, const float *rows, size_t nr, int dim,
                                   float *keys)
{
    int dv = dim - dim % L1_VL;
    size_t j = 0;
    for (; j + 4 <= nr; j += 4) {
        const float *b0 = rows + j * (size_t)dim, *b1 = b0 + dim, *b2 = b1 + dim, *b3 = b2 + dim;
        L1_NAME(l1_vf) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int i = 0; i < dv; i += L1_VL) {
            L1_STEP(a0, b0 + i, q + i);
            L1_STEP(a1, b1 + i, q + i);
            L1_STEP(a2, b2 + i, q + i);
            L1_STEP(a3, b3 + i, q + i);
        }
        float s0, s1, s2, s3;
        L1_FINISH(s0, a0, b0, q, dv, dim);
        L1_FINISH(s1, a1, b1, q, dv, dim);
        L1_FINISH(s2, a2, b2, q, dv, dim);
        L1_FINISH(s3, a3, b3, q, dv, dim);
        keys[j] = -s0;
        keys[j + 1] = -s1;
        keys[j + 2] = -s2;
        keys[j + 3] = -s3;
    }
    for (; j < nr; j++)
        keys[j] = -L1_NAME(l1_pair)(rows + j * (size_t)dim, q, dim);
}

/* Four consecutive queries (stride dim) against nr rows: each row is loaded once for four
 * pairs. keys[i * ldk + j] = -distance. */
L1_ATTR static void L1_NAME(l1_q4)(const float *q, const float *rows, size_t nr, int dim,
                                   float *keys, size_t ldk)
{
    int dv = dim - dim % L1_VL;
    const float *q0 = q, *q1 = q0 + dim, *q2 = q1 + dim, *q3 = q2 + dim;
    for (size_t j = 0; j < nr; j++) {
        const float *b = rows + j * (size_t)dim;
        L1_NAME(l1_vf) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int i = 0; i < dv; i += L1_VL) {
            L1_STEP(a0, b + i, q0 + i);
            L1_STEP(a1, b + i, q1 + i);
            L1_STEP(a2, b + i, q2 + i);
            L1_STEP(a3, b + i, q3 + i);
        }
        float s0, s1, s2, s3;
        L1_FINISH(s0, a0, b, q0, dv, dim);
        L1_FINISH(s1, a1, b, q1, dv, dim);
        L1_FINISH(s2, a2, b, q2, dv, dim);
        L1_FINISH(s3, a3, b, q3, dv, dim);
        keys[j] = -s0;
        keys[ldk + j] = -s1;
        keys[2 * ldk + j] = -s2;
        keys[3 * ldk + j] = -s3;
    }
}

#undef L1_STEP
#undef L1_FINISH
#undef L1_VL
#undef L1_NAME
#undef L1_CAT
#undef L1_CAT2
