// AVX-512 (F + BW + VL) variant of the Q6_K x Q8_K kernel: the two 128-weight halves of
// a super-block run side by side in the two 256-bit halves of 512-bit vectors, halving
// the instruction count of the AVX2 kernel. The integer sums are exact, so adding the
// halves' lanes gives the AVX2 kernel's per-lane sums, and the float steps (one FMA per
// lane and super-block, then the 256-bit horizontal add) are the same: bit-identical
// results (tests/unit/kernels/kernels_test.cpp, DotTileIsBitIdenticalToVecDot and
// SimdMatchesReference; tests/unit/kernels/packed_test.cpp compares it with the AVX2
// kernel). Installed when the CPU has AVX512F/BW/VL.
#if defined(__x86_64__)
#include "kernels/avx2_common.h"
#include "kernels/quant.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

struct Q6KZ {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK_K;
    const __m512i m15 = _mm512_set1_epi8(15), m3 = _mm512_set1_epi8(3), m12 = _mm512_set1_epi8(12);
    const __m512i m48 = _mm512_set1_epi8(48), m192 = _mm512_set1_epi8(static_cast<char>(0xC0));
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ6_K* x[NR];
      const BlockQ8_K* y[NC];
      __m256i s16[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = reinterpret_cast<const BlockQ6_K*>(w + r * ws) + i;
        s16[r] = _mm256_cvtepi8_epi16(load128(x[r]->scales));
      }
      __m256i isum[NC][NR];
      __m512i q8[NC][4];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        y[c] = reinterpret_cast<const BlockQ8_K*>(a + c * as) + i;
        const __m256i bs = load256(y[c]->bsums);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r)
          isum[c][r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, s16[r]), 5));
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) q8[c][k] = join256(load256(y[c]->qs + 32 * k), load256(y[c]->qs + 128 + 32 * k));
      }
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const __m512i ql0 = join256(load256(x[r]->ql), load256(x[r]->ql + 64));
        const __m512i ql1 = join256(load256(x[r]->ql + 32), load256(x[r]->ql + 96));
        const __m512i qh = _mm512_loadu_si512(x[r]->qh);
        __m512i q[4];
        q[0] = _mm512_or_si512(_mm512_and_si512(ql0, m15), _mm512_slli_epi16(_mm512_and_si512(qh, m3), 4));
        q[1] = _mm512_or_si512(_mm512_and_si512(ql1, m15), _mm512_slli_epi16(_mm512_and_si512(qh, m12), 2));
        q[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql0, 4), m15), _mm512_and_si512(qh, m48));
        q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql1, 4), m15),
                               _mm512_srli_epi16(_mm512_and_si512(qh, m192), 2));
        // scales of half 0 (sub-blocks 0..7) in the low 256 bits, of half 1 in the high
        const __m512i sh = join256(_mm256_permute4x64_epi64(s16[r], 0x44), _mm256_permute4x64_epi64(s16[r], 0xEE));
        __m512i part[NC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) part[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          const short lo = static_cast<short>(((4 * k + 1) << 8) | (4 * k));
          const short hi = static_cast<short>(((4 * k + 3) << 8) | (4 * k + 2));
          const __m128i ml = _mm_set1_epi16(lo), mh = _mm_set1_epi16(hi);
          const __m512i mask = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(mh, ml)), _mm256_set_m128i(mh, ml), 1);
          const __m512i sv = _mm512_shuffle_epi8(sh, mask);
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c)
            part[c] = _mm512_add_epi32(part[c], _mm512_madd_epi16(sv, _mm512_maddubs_epi16(q[k], q8[c][k])));
        }
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c)
          isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_add_epi32(_mm512_castsi512_si256(part[c]),
                                                                      _mm512_extracti64x4_epi64(part[c], 1)));
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 d = _mm256_set1_ps(y[c]->d * _cvtsh_ss(x[r]->d));
          acc[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

}  // namespace

void install_kquant_avx512_kernels(TypeTraits* t) {
  auto& q6 = t[static_cast<int>(DType::Q6_K)];
  q6.vec_dot = dot_1x1<Q6KZ>;
  q6.vec_dot_tile = tile_driver<Q6KZ, 1, 4, 4>;
  q6.impl = "avx512";
}

}  // namespace tachyon::kernels
#endif
