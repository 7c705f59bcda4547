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
