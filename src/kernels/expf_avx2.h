// exp(x) in 8 lanes, bit-identical to kernels::expf_poly (ops.cpp): the same range
// reduction, polynomial and final rounding, lane-wise; lanes outside its fast range take
// std::exp as it does. Include only from files compiled with -mavx2 -mfma.
#pragma once
#include <immintrin.h>

#include <cmath>

namespace tachyon::kernels::avx2 {

inline __m256 expf_poly8(__m256 x) {
  const __m256 shift = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), shift);
  const __m256 n = _mm256_sub_ps(z, shift);
  const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  const int ok = _mm256_movemask_ps(_mm256_cmp_ps(absn, _mm256_set1_ps(126.f), _CMP_LE_OQ));
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 p5 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f));
  const __m256 p3 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f));
  const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p5, u, p3), u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  const __m256i ni = _mm256_cvtps_epi32(n);  // integral; lanes out of range are replaced below
  const __m256 k = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23));
  __m256 e = _mm256_fmadd_ps(j, k, k);
  if (ok != 0xFF) {
    alignas(32) float xs[8], es[8];
    _mm256_store_ps(xs, x);
    _mm256_store_ps(es, e);
    for (int l = 0; l < 8; ++l)
      if (!(ok >> l & 1)) es[l] = std::exp(xs[l]);
    e = _mm256_load_ps(es);
  }
  return e;
}

}  // namespace tachyon::kernels::avx2

namespace tachyon::kernels::avx2 {

// exp(x) in 8 lanes with glibc's expf algorithm (table of 2^(i/32), degree-3 polynomial,
// all in double precision, one final rounding to float), which returns the same float as
// libm's expf for every input we have checked (tests/unit/kernels/kernels_test.cpp
// compares it with std::exp over all floats in [-104, 0] at a stride, and specials).
// Code whose numerics were defined with std::exp (decode attention) keeps its bits while
// computing 8 exps at once.
struct Exp2Table32 {
  alignas(32) long long t[32];  // bits(2^(i/32)) - (i << 47)
  Exp2Table32() {
    for (int i = 0; i < 32; ++i) {
      const double v = static_cast<double>(exp2l(static_cast<long double>(i) / 32));
      long long b;
      __builtin_memcpy(&b, &v, 8);
      t[i] = b - (static_cast<long long>(i) << 47);
    }
  }
};

inline const long long* exp2_table32() {
  static const Exp2Table32 tab;
  return tab.t;
}

inline __m256d expf_libm4d(__m256d xd, const long long* tab) {
  const __m256d shift = _mm256_set1_pd(0x1.8p+52);
  const __m256d z = _mm256_mul_pd(_mm256_set1_pd(0x1.71547652b82fep+0 * 32), xd);
  __m256d kd = _mm256_add_pd(z, shift);
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_sub_pd(z, kd);
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i t = _mm256_add_epi64(_mm256_i64gather_epi64(tab, idx, 8), _mm256_slli_epi64(ki, 47));
  const __m256d s = _mm256_castsi256_pd(t);
  const __m256d zz = _mm256_fmadd_pd(_mm256_set1_pd(0x1.c6af84b912394p-5 / 32 / 32 / 32), r,
                                     _mm256_set1_pd(0x1.ebfce50fac4f3p-3 / 32 / 32));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(0x1.62e42ff0c52d6p-1 / 32), r, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(zz, r2, y);
  return _mm256_mul_pd(y, s);
}

inline __m256 expf_libm8(__m256 x, const long long* tab) {
  const __m128 lo = _mm256_cvtpd_ps(expf_libm4d(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), tab));
  const __m128 hi = _mm256_cvtpd_ps(expf_libm4d(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), tab));
  __m256 e = _mm256_set_m128(hi, lo);
  // outside the table's range: underflow to 0 (also -inf), overflow to inf, NaN stays
  e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-0x1.9fe368p6f), _CMP_LT_OQ));
  e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(0x1.62e42ep6f), _CMP_GT_OQ));
  return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

}  // namespace tachyon::kernels::avx2
