// Q5_Kx8 x Q8_K on AVX2 + FMA + F16C (maddubs + madd), over the layout of
// packed_q5k.cpp: one int32 lane per row, so the 8 rows of a group advance together and
// no horizontal sums are needed until the end of the row.
#if defined(__x86_64__)
#include "kernels/packed_impl.h"

namespace tachyon::kernels {
namespace {

// Byte offsets inside a Q5_Kx8 super-block (the layout comment in packed_q5k.cpp).
constexpr size_t kBlockBytes = 1440, kOffDmin = 16, kOffSc = 32, kOffMn = 96, kOffUnits = 160, kUnitBytes = 160;

// x shifted left by S bits in 16-bit lanes (right by -S when S < 0). With S in [-3, 4]
// and the result masked to bit 4 of each byte, no bit crosses between the two bytes.
template <int S>
inline __m256i shift16(__m256i x) {
  if constexpr (S > 0) return _mm256_slli_epi16(x, S);
  else if constexpr (S < 0) return _mm256_srli_epi16(x, -S);
  else return x;
}

// Sub-block pair J of chunk c for NC tokens: the 5-bit quants of the 8 rows' elements
// 64J + 4c .. +3 (lo) and 64J + 32 + 4c .. +3 (hi), then per token
// I += sc[2J] * dot(lo) + sc[2J+1] * dot(hi) per row lane: madd against the (s, s) pairs
// of scp does the scaling and the pairing of the maddubs halves in one instruction, as
// the one-row kernel does. u5 * s8 pairs stay within 16 bits: maddubs never saturates.
template <int J, int NC>
inline void q5_pair(const uint8_t* unit, __m256i qh, const __m256i* scp, const int8_t* const* q8, __m256i* isum) {
  const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10);
  const __m256i v = pk_load256(unit + 32 + 32 * J);
  const __m256i lo = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(shift16<4 - 2 * J>(qh), m16));
  const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                     _mm256_and_si256(shift16<3 - 2 * J>(qh), m16));
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) {
    const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, pk_bcast32(q8[t] + 64 * J)), scp[2 * J]);
    const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, pk_bcast32(q8[t] + 64 * J + 32)), scp[2 * J + 1]);
    isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(pl, ph));
    // (keeps the sum running in a register: GCC otherwise reassociates the adds of the
    // four pairs and parks every product on the stack until the last one; 8 tokens
    // 1.46 -> 1.27 ms)
    asm("" : "+x"(isum[t]));
  }
}

// NC tokens x one group: per row lane and token the one-row kernel's float operations
// (see packed_q5k.cpp): acc[t][c] is its lane c, summs its min chain.
template <int NC>
void q5_Kx8_run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const* bp, float* const* out,
                bool pf) {
  __m256 acc[NC][8], summs[NC];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) {
    summs[t] = _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) acc[t][c] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kBlockBytes;
    const __m256 dw = _mm256_cvtph_ps(pk_load128(blk));
    const __m256 dmw = _mm256_cvtph_ps(pk_load128(blk + kOffDmin));
    // min terms: (m_2j, m_2j+1) . (B(2j), B(2j+1)) per row, summed over the pairs
    const __m256i mn0 = _mm256_cvtepu8_epi16(pk_load128(blk + kOffMn));
    const __m256i mn1 = _mm256_cvtepu8_epi16(pk_load128(blk + kOffMn + 16));
    const __m256i mn2 = _mm256_cvtepu8_epi16(pk_load128(blk + kOffMn + 32));
    const __m256i mn3 = _mm256_cvtepu8_epi16(pk_load128(blk + kOffMn + 48));
    __m256 dd[NC];
    const int8_t* q8[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      const int32_t* p = bp[t] + 4 * i;
      const __m256i sm = _mm256_add_epi32(
          _mm256_add_epi32(_mm256_madd_epi16(mn0, _mm256_set1_epi32(p[0])), _mm256_madd_epi16(mn1, _mm256_set1_epi32(p[1]))),
          _mm256_add_epi32(_mm256_madd_epi16(mn2, _mm256_set1_epi32(p[2])), _mm256_madd_epi16(mn3, _mm256_set1_epi32(p[3]))));
      const float yd = a[t][i].d;
      summs[t] = _mm256_fmadd_ps(_mm256_mul_ps(dmw, _mm256_set1_ps(-yd)), _mm256_cvtepi32_ps(sm), summs[t]);
      dd[t] = _mm256_mul_ps(dw, _mm256_set1_ps(yd));
      q8[t] = a[t][i].qs;
    }
    // the 8 sub-block scales as (s, s) 16-bit pairs per row lane
    __m256i scp[8];
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + kOffSc + 8 * s)));
      scp[s] = _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      if (pf) prefetch_ahead(blk + 180 * c, 180);
      const uint8_t* unit = blk + kOffUnits + kUnitBytes * c;
      const __m256i qh = pk_load256(unit);
      const int8_t* q8c[NC];
      __m256i isum[NC];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        q8c[t] = q8[t] + 4 * c;
        isum[t] = _mm256_setzero_si256();
      }
      q5_pair<0, NC>(unit, qh, scp, q8c, isum);
      q5_pair<1, NC>(unit, qh, scp, q8c, isum);
      q5_pair<2, NC>(unit, qh, scp, q8c, isum);
      q5_pair<3, NC>(unit, qh, scp, q8c, isum);
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) acc[t][c] = _mm256_fmadd_ps(dd[t], _mm256_cvtepi32_ps(isum[t]), acc[t][c]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) {
    // the one-row kernel's horizontal add order, lane by lane, then its min chain
    _mm256_storeu_ps(out[t], _mm256_add_ps(sum8_lanes(acc[t]), summs[t]));
  }
}

// Tokens per pass over a group: the unpacking of the 5-bit quants (9 operations per
// 64 weights of 8 rows, as many as the multiply-adds of one token) is shared by them.
// Single core (EPYC Zen 5, 2 shared cores: +-10% noise), 8 tokens, 2048 columns x 5632
// rows, best medians: 2 per pass 1.50 ms, 3 1.40, 4 1.23, 6 1.29, 8 1.28 (past 4
// tokens the integer sums no longer fit the 16 vector registers with the quants).
constexpr int kTokens = 4;

struct Q5Kx8 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const* bp, float* const* out,
                  bool pf) {
    q5_Kx8_run<NC>(nb, wg, a, bp, out, pf);
  }
};

// Token chunks of up to kTokens, each over every group: matmul hands over runs of groups
// small enough to stay in L2, so only the first chunk reads them from memory (and
// prefetches).
void q5_Kx8_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                 size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_K, kTokens, Q5Kx8, 8>(n_cols / QK_K, kBlockBytes, n_groups, wp, n_tok, acts, act_stride, aux,
                                            aux_stride, y, ld);
}

}  // namespace

void install_packed_q5k_avx2(PackedKernels* e) {
  e->gemm = q5_Kx8_gemm;
  e->impl = "avx2";
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
