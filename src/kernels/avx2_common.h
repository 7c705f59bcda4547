// Helpers shared by the AVX2 kernel files (*_avx2.cpp). Include only from files compiled
// with -mavx2 -mfma -mf16c.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/traits.h"

namespace tachyon::kernels::avx2 {

// Sum of 8 floats: (lo + hi) then pairwise, the order of ggml's hsum_float_8.
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline int hsum_i32(__m128i s) {
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// a * b + c, rounded once (the scalar FMA instruction).
inline float fmaf1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Drives a micro-kernel K::run<NR, NC>(n, w, w_stride, a, a_stride, out, ld_out) (NR
// weight rows x NC activation rows, out[c*ld_out + r]) over an nr x nc block: columns
// in groups of NC with rows in groups of NR, leftover columns one at a time with rows in
// groups of NR1 (the decode shape), leftover rows one at a time. Every pair is computed
// by the same per-pair code whatever the group, so results do not depend on the
// blocking.
template <class K, int NR, int NC, int NR1 = NR>
void tile_driver(int64_t n, int nr, int nc, const void* vw, size_t ws, const void* va, size_t as, float* out,
                 int64_t ld) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* a = static_cast<const uint8_t*>(va);
  int c = 0;
  for (; c + NC <= nc; c += NC) {
    int r = 0;
    for (; r + NR <= nr; r += NR) K::template run<NR, NC>(n, w + r * ws, ws, a + c * as, as, out + c * ld + r, ld);
    for (; r < nr; ++r) K::template run<1, NC>(n, w + r * ws, ws, a + c * as, as, out + c * ld + r, ld);
  }
  for (; c < nc; ++c) {
    int r = 0;
    for (; r + NR1 <= nr; r += NR1) K::template run<NR1, 1>(n, w + r * ws, ws, a + c * as, as, out + c * ld + r, ld);
    for (; r < nr; ++r) K::template run<1, 1>(n, w + r * ws, ws, a + c * as, as, out + c * ld + r, ld);
  }
}

// The single dot product as the 1 x 1 micro-kernel (so it is the same code).
template <class K>
float dot_1x1(int64_t n, const void* w, const void* a) {
  float r;
  K::template run<1, 1>(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &r, 0);
  return r;
}

}  // namespace tachyon::kernels::avx2
