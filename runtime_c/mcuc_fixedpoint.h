/* mcuc_fixedpoint.h: TFLite's integer requantization, bit-exact with mcuc.ir.fixedpoint.
 *
 * Every function is static inline so per-layer kernels see constants through them.
 * No float, no libc. Signed right shifts are arithmetic on every compiler mcuc targets
 * (gcc and clang define it so); signed left shifts that may overflow go through uint32.
 */
#ifndef MCUC_FIXEDPOINT_H
#define MCUC_FIXEDPOINT_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MCUC_DSP 1
#else
#define MCUC_DSP 0
#endif

#if defined(__GNUC__)
#define MCUC_INLINE static inline __attribute__((always_inline))
#define MCUC_ALIGNED(n) __attribute__((aligned(n)))
/* Each generated step stays its own function: inlined into one large invoke function the
 * kernels' loops lose their registers to spills. */
#define MCUC_STEP static __attribute__((noinline))
#else
#define MCUC_STEP static
#define MCUC_INLINE static inline
#define MCUC_ALIGNED(n)
#endif

/* gemmlowp's SaturatingRoundingDoublingHighMul. For every pair except the saturating
 * one it equals floor((a * b + 2^30) / 2^31): the nudge-and-truncate formulation rounds
 * ties toward +infinity for both signs, which is what the floor form does. */
MCUC_INLINE int32_t mcuc_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent, ties away from zero; 0 <= exponent <= 31. */
MCUC_INLINE int32_t mcuc_rdbpot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* CountLeadingZeros of a uint32 (32 for zero). */
MCUC_INLINE int mcuc_clz32(uint32_t x) {
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

/* CountLeadingSignBits of an int32 (31 for zero). */
MCUC_INLINE int mcuc_clsb32(int32_t x) {
    return x >= 0 ? mcuc_clz32((uint32_t)x) - 1 : mcuc_clz32(2u * (uint32_t)(-(int64_t)x) - 1u);
}

/* x * 2^left, wrapping to int32 as the reference kernels' C++ does. */
MCUC_INLINE int32_t mcuc_shl_wrap(int32_t x, int32_t left) {
    return (int32_t)((uint32_t)x << left);
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding): shift > 0 scales up first. */
MCUC_INLINE int32_t mcuc_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return mcuc_rdbpot(mcuc_srdhm(mcuc_shl_wrap(x, left), multiplier), right);
}

/* TFLite's int64 MultiplyByQuantizedMultiplier (the 16x8 stage): `reduced` is the
 * multiplier rounded to 15 bits and `total` = 15 - shift, both from the compiler
 * (mcuc.ir.ops.batch_matmul.multiply_int64); truncated to int32 as the C++ does, spelled so
 * that no conversion is implementation-defined. */
MCUC_INLINE int32_t mcuc_mbqm64(int64_t acc, int32_t reduced, int32_t total) {
    return (int32_t)(uint32_t)(uint64_t)((acc * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
MCUC_INLINE int32_t mcuc_mbqm_small(int32_t x, int32_t multiplier, int32_t shift) {
    return mcuc_rdbpot(mcuc_srdhm(x, multiplier), -shift);
}

/* The fast requantization the compiler selects when it has proven, per layer, that
 * |x| < 2^30, 0 < multiplier and every right shift is >= 1 (no left shift): then
 *   SRDHM(x, m)            == (2x * m + 2^31) >> 32        (SMMULR on ARMv7E-M)
 *   RDBPOT(y, e), e >= 1   == (y + 2^(e-1) - (y < 0)) >> e
 * `rounding` is 2^(e-1), precomputed per channel. ((y < 0) rather than y >> 31: a signed
 * shift by 31 is implementation-defined in C; gcc emits the same ASR for both.) */
MCUC_INLINE int32_t mcuc_requant_fast(int32_t x, int32_t multiplier, int32_t rounding, int32_t right) {
#if MCUC_DSP
    int32_t high;
    __asm__("smmulr %0, %1, %2" : "=r"(high) : "r"(x * 2), "r"(multiplier));
#else
    const int32_t high = (int32_t)(((int64_t)x * (int64_t)multiplier + ((int64_t)1 << 30)) >> 31);
#endif
    return (high + rounding - (int32_t)(high < 0)) >> right;
}

/* The same for an accumulator the kernel already holds doubled (x2 = 2x, even). */
MCUC_INLINE int32_t mcuc_requant_fast_doubled(int32_t x2, int32_t multiplier, int32_t rounding, int32_t right) {
#if MCUC_DSP
    int32_t high;
    __asm__("smmulr %0, %1, %2" : "=r"(high) : "r"(x2), "r"(multiplier));
#else
    const int32_t high = (int32_t)(((int64_t)(x2 / 2) * (int64_t)multiplier + ((int64_t)1 << 30)) >> 31);
#endif
    return (high + rounding - (int32_t)(high < 0)) >> right;
}

/* Rotate right (ACLE's __ror is missing from some arm_acle.h versions; gcc turns this
 * into ROR, or folds it into SXTB16's rotate operand). */
MCUC_INLINE uint32_t mcuc_ror(uint32_t x, uint32_t n) {
    return (x >> n) | (x << ((32u - n) & 31u));
}

#if MCUC_DSP
/* SXTB16 / SXTAB16 of the operand rotated right by 8 in one instruction (the rotation
 * is part of the encoding; compilers do not always fold a separate ROR into it). */
MCUC_INLINE uint32_t mcuc_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

MCUC_INLINE uint32_t mcuc_sxtab16_ror8(uint32_t add, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(add), "r"(x));
    return r;
}

/* ACLE's SXTB16, SXTAB16 and SSAT on the uint32_t words and int32_t values the kernels
 * hold, as the same instructions: ACLE types packed words int32_t, and GCC's __ssat
 * macro converts its builtin's unsigned result inside, so calling them directly is a
 * -Wsign-conversion warning at every call. */
MCUC_INLINE uint32_t mcuc_sxtb16(uint32_t x) {
    return (uint32_t)__sxtb16((int8x4_t)x);
}

MCUC_INLINE uint32_t mcuc_sxtab16(uint32_t add, uint32_t x) {
    return (uint32_t)__sxtab16((int16x2_t)add, (int8x4_t)x);
}

MCUC_INLINE int32_t mcuc_ssat8(int32_t x) {
    return (int32_t)__builtin_arm_ssat(x, 8);
}
#endif

MCUC_INLINE int32_t mcuc_clamp(int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Unaligned-safe 32-bit loads and stores: one LDR/STR where the core allows unaligned
 * access (M3/M4/M7/M33), byte accesses on M0. */
MCUC_INLINE uint32_t mcuc_load32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

MCUC_INLINE void mcuc_store32(void *p, uint32_t v) {
    memcpy(p, &v, 4);
}

/* Element i of an int8 array, or of an int16 one with `wide`: the kernels that take
 * either pass `wide` as a constant, so each call keeps one access. */
MCUC_INLINE int32_t mcuc_get_s8s16(const void *p, int i, int wide) {
    return wide ? (int32_t)((const int16_t *)p)[i] : (int32_t)((const int8_t *)p)[i];
}

MCUC_INLINE void mcuc_set_s8s16(void *p, int i, int32_t v, int wide) {
    if (wide) {
        ((int16_t *)p)[i] = (int16_t)v;
    } else {
        ((int8_t *)p)[i] = (int8_t)v;
    }
}

#endif /* MCUC_FIXEDPOINT_H */
