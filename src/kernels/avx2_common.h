// Helpers shared by the AVX2 kernel files (*_avx2.cpp). Include only from files compiled
// with -mavx2 -mfma -mf16c.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "base/fp16.h"
#include "kernels/traits.h"

namespace tachyon::kernels::avx2 {

// Sum of 8 floats: (lo + hi) then pairwise, the order of ggml's hsum_float_8.
// half -> float with the F16C instruction (the same exact value as f16_to_f32, a fraction
// of its instructions: block scales are converted per block in the inner loops).
inline float half_to_float(f16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// Largest of 8 floats.
inline float hmax(__m256 v) {
  __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  return _mm_cvtss_f32(m4);
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

// 32 activations to int8 at the scale amax / 127, rounded to even as the references
// (quantize_q8_0_ref, quantize_q8_1_ref) do: the quants go to qs in element order and, as
// 32-bit lanes, to q (for their sums). Returns amax.
inline float quantize32_q8(const float* x, int8_t* qs, __m256i q[4]) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
  }
  const float am = hmax(amax);
  const __m256 id = _mm256_set1_ps(am != 0 ? 127.f / am : 0.f);
  for (int k = 0; k < 4; ++k)
    q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  // the packs interleave the two 128-bit lanes; the permute restores element order
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  return am;
}

// The 16 sub-block scales of a K-quant super-block (Q2_K, Q3_K, Q6_K) as 16-bit lanes
// (sub-block s in lane s) -> those of half h (sub-blocks 8h..8h+7) in both 128-bit lanes.
inline __m256i half_scales(__m256i s16, int h) {
  // (two literal immediates: unoptimized builds do not fold a ternary into one)
  return h == 0 ? _mm256_permute4x64_epi64(s16, 0x44) : _mm256_permute4x64_epi64(s16, 0xEE);
}

// The scales of chunk k of a half (32 weights: sub-block 2k in the low 128-bit lane,
// 2k + 1 in the high one) from half_scales, for madd.
inline __m256i chunk_scales(__m256i sh, int k) {
  const short lo = static_cast<short>(((4 * k + 1) << 8) | (4 * k));
  const short hi = static_cast<short>(((4 * k + 3) << 8) | (4 * k + 2));
  return _mm256_shuffle_epi8(sh, _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo)));
}

// Dequantizing: 16 signed bytes -> two vectors of 8 floats, each times dl (minus ml).
inline void store16(float* y, __m128i q, __m256 dl) {
  _mm256_storeu_ps(y, _mm256_mul_ps(dl, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(dl, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)))));
}
inline void store16(float* y, __m128i q, __m256 dl, __m256 ml) {
  _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(dl, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))), ml));
  _mm256_storeu_ps(y + 8,
                   _mm256_sub_ps(_mm256_mul_ps(dl, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)))), ml));
}

// Block i of row r, rows `stride` bytes apart from base (weight or activation rows).
template <class B>
inline const B* row_block(const uint8_t* base, size_t stride, int r, int64_t i) {
  return reinterpret_cast<const B*>(base + r * stride) + i;
}

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
