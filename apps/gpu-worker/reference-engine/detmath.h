/*
 * detmath.h - deterministic maths and hashing for the reference engine.
 *
 * Everything that decides a pixel value goes through these helpers, which use
 * only + - * / sqrt floor frexp ldexp (all exactly specified by IEEE 754 / C).
 * libm's exp/log/sin differ in the last bit between C libraries; ours do not,
 * so the same binary flags give byte-identical PNGs on glibc, musl and macOS
 * as long as the compiler does not fuse multiply-adds (build with
 * -ffp-contract=off, which build.mjs does).
 */
#ifndef REFENGINE_DETMATH_H
#define REFENGINE_DETMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define R_PI 3.14159265358979323846
#define R_LN2_HI 6.93147180369123816490e-01
#define R_LN2_LO 1.90821492927058770002e-10

/* e^x, relative error ~1e-15 */
static inline double r_exp(double x) {
    if (x < -700.0) return 0.0;
    if (x > 700.0) x = 700.0;
    double k = floor(x * 1.4426950408889634 + 0.5);
    double r = (x - k * R_LN2_HI) - k * R_LN2_LO; /* |r| <= 0.35 */
    double sum = 1.0, term = 1.0;
    for (int i = 1; i <= 14; i++) {
        term = term * r / (double)i;
        sum += term;
    }
    return ldexp(sum, (int)k);
}

/* natural log for x > 0 (returns -745 for x <= 0) */
static inline double r_log(double x) {
    if (!(x > 0.0)) return -745.0;
    int e;
    double m = frexp(x, &e); /* x = m * 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752) {
        m *= 2.0;
        e -= 1;
    }
    double f = (m - 1.0) / (m + 1.0); /* |f| < 0.172 */
    double f2 = f * f, term = f, sum = 0.0;
    for (int i = 1; i <= 25; i += 2) {
        sum += term / (double)i;
        term *= f2;
    }
    return (double)e * R_LN2_HI + ((double)e * R_LN2_LO + 2.0 * sum);
}

static inline double r_pow(double a, double b) { return r_exp(b * r_log(a)); }

/* sin(x), absolute error ~1e-15 for |x| < 1e6 */
static inline double r_sin(double x) {
    double k = floor(x / (2.0 * R_PI) + 0.5);
    double r = x - k * (2.0 * R_PI); /* [-pi, pi] */
    if (r > R_PI / 2) r = R_PI - r;
    else if (r < -R_PI / 2) r = -R_PI - r;
    double r2 = r * r, term = r, sum = r;
    for (int i = 1; i <= 9; i++) {
        term = -term * r2 / (double)((2 * i) * (2 * i + 1));
        sum += term;
    }
    return sum;
}

static inline double r_cos(double x) { return r_sin(x + R_PI / 2); }

/* ---- hashing / PRNG ---- */

static inline uint64_t mix64(uint64_t z) { /* splitmix64 finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s;
} rng64;

static inline void rng_seed(rng64 *r, uint64_t seed) { r->s = mix64(seed ^ 0x6a09e667f3bcc909ULL); }

static inline uint64_t rng_next(rng64 *r) { /* splitmix64 */
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

/* uniform in [0, 1) with 24 bits */
static inline float rng_unit(rng64 *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }

/* uniform in [lo, hi) */
static inline float rng_range(rng64 *r, float lo, float hi) { return lo + (hi - lo) * rng_unit(r); }

/* approximately standard normal: Irwin-Hall sum of four 16-bit uniforms */
static inline float gauss_from_bits(uint64_t z) {
    uint32_t s = (uint32_t)(z & 0xffff) + (uint32_t)((z >> 16) & 0xffff) + (uint32_t)((z >> 32) & 0xffff) +
                 (uint32_t)(z >> 48);
    /* mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12 */
    return ((float)s - 131070.0f) * (1.0f / 37837.23f);
}

static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t h) { /* FNV-1a 64, then mixed */
    const unsigned char *b = (const unsigned char *)p;
    h ^= 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif
