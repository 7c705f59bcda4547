// The AVX2 kernel over IQ3x8 (packed_iq3.h). Per super-block, for piece c of each of the
// 8 chunks: one 32-byte load holds 8 rows x 8 codes; vpshufb turns the low and high
// nibbles into grid magnitudes and signed values, the signs go onto the broadcast
// activations (_mm256_sign_epi8), maddubs + madd by the rows' 2s+1 give each row's 4-way
// sums in its lane: integer sums c and c + 4 of the one-row kernel, for all 8 rows at
// once. Bit-identical to the scalar twin (exact integers, the same per-lane float chain).
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/packed.h"
#include "kernels/packed_iq3.h"
#include "kernels/quant.h"

namespace tachyon::kernels {
namespace {

using namespace avx2;

inline __m256i lut_of(const int8_t* levels, bool abs_only) {
  alignas(16) int8_t t[16];
  for (int c = 0; c < 16; ++c) t[c] = static_cast<int8_t>(c & 8 && !abs_only ? -levels[c & 7] : levels[c & 7]);
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

inline __m256i bcast32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <int NT>
void run_tokens(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const __m256i lut, const __m256i lut_abs,
                float factor, float* const* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // Row r's 2s+1 into both 16-bit halves of lane r (the 8 bytes are in both 128-bit halves).
  const __m256i dup = _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1,  //
                                       4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1);
  __m256 acc[NT][8];
  for (int t = 0; t < NT; ++t)
    for (int k = 0; k < 8; ++k) acc[t][k] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kIq3x8Block;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    for (int c = 0; c < 4; ++c) {
      __m256i lo_sum[NT], hi_sum[NT];
      for (int t = 0; t < NT; ++t) lo_sum[t] = hi_sum[t] = _mm256_setzero_si256();
      for (int j = 0; j < QK_K / 32; ++j) {
        int64_t s8;
        std::memcpy(&s8, blk + kIq3x8OffSc + 8 * j, 8);
        const __m256i sc = _mm256_shuffle_epi8(_mm256_set1_epi64x(s8), dup);
        const __m256i q = load256(blk + kIq3x8OffQ + 128 * j + 32 * c);
        const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        const __m256i wlo = _mm256_shuffle_epi8(lut, lo), alo = _mm256_shuffle_epi8(lut_abs, lo);
        const __m256i whi = _mm256_shuffle_epi8(lut, hi), ahi = _mm256_shuffle_epi8(lut_abs, hi);
        for (int t = 0; t < NT; ++t) {
          const int8_t* qa = a[t][i].qs + 32 * j + 4 * c;
          const __m256i plo = _mm256_maddubs_epi16(alo, _mm256_sign_epi8(bcast32(qa), wlo));
          const __m256i phi = _mm256_maddubs_epi16(ahi, _mm256_sign_epi8(bcast32(qa + 16), whi));
          lo_sum[t] = _mm256_add_epi32(lo_sum[t], _mm256_madd_epi16(plo, sc));
          hi_sum[t] = _mm256_add_epi32(hi_sum[t], _mm256_madd_epi16(phi, sc));
        }
      }
      for (int t = 0; t < NT; ++t) {
        const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(a[t][i].d));
        acc[t][c] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lo_sum[t]), acc[t][c]);
        acc[t][c + 4] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(hi_sum[t]), acc[t][c + 4]);
      }
    }
  }
  const __m256 f = _mm256_set1_ps(factor);
  for (int t = 0; t < NT; ++t) {
    const __m256 t0 = _mm256_add_ps(acc[t][0], acc[t][4]), t1 = _mm256_add_ps(acc[t][1], acc[t][5]);
    const __m256 t2 = _mm256_add_ps(acc[t][2], acc[t][6]), t3 = _mm256_add_ps(acc[t][3], acc[t][7]);
    const __m256 s = _mm256_add_ps(_mm256_add_ps(t0, t2), _mm256_add_ps(t1, t3));
    _mm256_storeu_ps(out[t], _mm256_mul_ps(f, s));
  }
}

template <DType T>
void iq3x8_gemm_avx2(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                     size_t act_stride, const int32_t*, int64_t, float* y, int64_t ld) {
  const int8_t* levels = T == DType::IQ3_XXS ? kIq3xxsLevels : kIq3sLevels;
  const float factor = T == DType::IQ3_XXS ? 0.25f : 1.0f;
  const __m256i lut = lut_of(levels, false), lut_abs = lut_of(levels, true);
  const int64_t nb = n_cols / QK_K;
  const size_t gb = static_cast<size_t>(nb) * kIq3x8Block;
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t0 = 0; t0 < n_tok; t0 += 4) {
      const int nt = std::min(4, n_tok - t0);
      const BlockQ8_K* a[4];
      float* out[4];
      for (int t = 0; t < nt; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(acts + (t0 + t) * act_stride);
        out[t] = y + (t0 + t) * ld + 8 * g;
      }
      switch (nt) {
        case 1: run_tokens<1>(nb, wg, a, lut, lut_abs, factor, out); break;
        case 2: run_tokens<2>(nb, wg, a, lut, lut_abs, factor, out); break;
        case 3: run_tokens<3>(nb, wg, a, lut, lut_abs, factor, out); break;
        default: run_tokens<4>(nb, wg, a, lut, lut_abs, factor, out); break;
      }
    }
  }
}

}  // namespace

void install_packed_iq3_avx2(PackedKernels* table) {
  for (DType t : {DType::IQ3_XXS, DType::IQ3_S}) {
    PackedKernels& e = table[static_cast<int>(t)];
    e.gemm = t == DType::IQ3_XXS ? iq3x8_gemm_avx2<DType::IQ3_XXS> : iq3x8_gemm_avx2<DType::IQ3_S>;
    e.impl = "avx2";
  }
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
