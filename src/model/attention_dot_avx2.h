// The decode path's score dot product (include only from files compiled with AVX2, FMA,
// F16C; internal linkage so each ISA-specific file keeps its own copy): the reference's
// f16 dot as 4 x 8-lane FMA chains over 32-element steps, combined and reduced in its
// order, the tail in double. Load(p) widens 8 elements of x at p to f32 exactly.
#pragma once
#include <immintrin.h>

#include "base/fp16.h"

namespace tachyon::model::detail {
namespace {

template <class X, class Load>
inline float dot_chains(int n, const X* x, const float* y, Load load, float (*widen)(X)) {
  const int np = n & ~31;
  double sum = 0;
  if (np > 0) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int i = 0; i < np; i += 32) {
      a0 = _mm256_fmadd_ps(load(x + i), _mm256_loadu_ps(y + i), a0);
      a1 = _mm256_fmadd_ps(load(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
      a2 = _mm256_fmadd_ps(load(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
      a3 = _mm256_fmadd_ps(load(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    a0 = _mm256_add_ps(a0, a2);
    a1 = _mm256_add_ps(a1, a3);
    a0 = _mm256_add_ps(a0, a1);
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));  // t[l] = a[l] + a[l+4]
    const __m128 h = _mm_hadd_ps(t, t);                                                   // t0+t1, t2+t3
    sum = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
  for (int i = np; i < n; ++i) sum += static_cast<double>(widen(x[i]) * y[i]);
  return static_cast<float>(sum);
}

inline float widen_f16(f16_t v) { return f16_to_f32(v); }
inline float widen_f32(float v) { return v; }

// x in f16 / x already widened to f32 (exact), y the f16-rounded query widened to f32.
inline float dot_f16(int n, const f16_t* x, const float* y) {
  return dot_chains(
      n, x, y, [](const f16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); },
      widen_f16);
}
inline float dot_f32x(int n, const float* x, const float* y) {
  return dot_chains(n, x, y, [](const float* p) { return _mm256_loadu_ps(p); }, widen_f32);
}

inline float fma1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

}  // namespace
}  // namespace tachyon::model::detail
