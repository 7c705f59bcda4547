// AVX2 dot products for IQ1_S, IQ1_M, TQ1_0 and TQ2_0 with Q8_K activations, as rows x
// tokens micro-kernels (weights unpacked once per block and reused across tokens). Their
// integer lanes and float steps are those of llama.cpp's AVX2 kernels, as the _ref in
// quant_iq1tq_ref.cpp spells out, so results are bitwise equal to it.
#if defined(__x86_64__)
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_iq1tq.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

// ---------------------------------------------------------------- IQ1_S / IQ1_M

inline __m256i grid4(int i0, int i1, int i2, int i3) {
  return _mm256_set_epi64x(static_cast<long long>(kIq1sGrid[i3]), static_cast<long long>(kIq1sGrid[i2]),
                           static_cast<long long>(kIq1sGrid[i1]), static_cast<long long>(kIq1sGrid[i0]));
}

// Products of q8 with weights s in {-1, 0, 1} summed in pairs (16-bit lanes). Q8_K
// quants are never -128, so the sign flip is exact.
inline __m256i signed_pairs(__m256i q8, __m256i s) {
  return _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_sign_epi8(q8, s));
}

// Grid part in 8 lanes of (2s+1) * g . q8, FMA-folded; delta part one integer per
// super-block (iq1s_delta_sum), FMA-folded in a scalar.
struct IQ1S {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    __m256 acc[NC][NR];
    float acc_delta[NC][NR] = {};
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
      const BlockIQ1_S* x[NR];
      const BlockQ8_K* y[NC];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) x[r] = row_block<BlockIQ1_S>(w, ws, r, i);
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) y[c] = row_block<BlockQ8_K>(a, as, c, i);
      __m256i isum[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = _mm256_setzero_si256();
      for (int ib = 0; ib < QK_K / 32; ++ib) {
        __m256i q8[NC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) q8[c] = load256(y[c]->qs + 32 * ib);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const BlockIQ1_S& b = *x[r];
          const __m256i g =
              grid4(iq1s_index(b, ib, 0), iq1s_index(b, ib, 1), iq1s_index(b, ib, 2), iq1s_index(b, ib, 3));
          const __m256i ls = _mm256_set1_epi16(static_cast<short>(2 * ((b.qh[ib] >> 12) & 7) + 1));
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c)
            isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(signed_pairs(q8[c], g), ls));
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const float d = y[c]->d * half_to_float(x[r]->d);
          acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
          acc_delta[c][r] = fmaf1(d, static_cast<float>(iq1s_delta_sum(*x[r], *y[c])), acc_delta[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]) + kIq1Delta * acc_delta[c][r];
  }
};

// Grid and delta parts each in 8 lanes; the scales change every 16 weights (lanes 0..7
// and 8..15 of the pair sums), the delta sign every 8.
struct IQ1M {
  static long long delta8(const BlockIQ1_M& b, int ib, int l) {
    return iq1m_delta_neg(b, ib, l) ? -1 : 0x0101010101010101;  // the sign of 8 weights
  }
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    __m256 acc[NC][NR], acc_delta[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = acc_delta[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
      const BlockIQ1_M* x[NR];
      const BlockQ8_K* y[NC];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) x[r] = row_block<BlockIQ1_M>(w, ws, r, i);
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) y[c] = row_block<BlockQ8_K>(a, as, c, i);
      __m256i isum[NC][NR], isum_delta[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = isum_delta[c][r] = _mm256_setzero_si256();
      for (int ib = 0; ib < QK_K / 32; ++ib) {
        __m256i q8[NC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) q8[c] = load256(y[c]->qs + 32 * ib);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const BlockIQ1_M& b = *x[r];
          const __m256i g =
              grid4(iq1m_index(b, ib, 0), iq1m_index(b, ib, 1), iq1m_index(b, ib, 2), iq1m_index(b, ib, 3));
          const __m256i delta =
              _mm256_set_epi64x(delta8(b, ib, 3), delta8(b, ib, 2), delta8(b, ib, 1), delta8(b, ib, 0));
          const __m256i ls = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(iq1m_sub_scale(b, ib, 1))),
                                              _mm_set1_epi16(static_cast<short>(iq1m_sub_scale(b, ib, 0))));
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c) {
            isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(signed_pairs(q8[c], g), ls));
            isum_delta[c][r] = _mm256_add_epi32(isum_delta[c][r], _mm256_madd_epi16(signed_pairs(q8[c], delta), ls));
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 d = _mm256_set1_ps(y[c]->d * half_to_float(iq1m_scale(*x[r])));
          acc[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
          acc_delta[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum_delta[c][r]), acc_delta[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]) + kIq1Delta * hsum(acc_delta[c][r]);
  }
};

// ---------------------------------------------------------------- TQ1_0 / TQ2_0

// x * 3 per byte, mod 256.
inline __m128i mul3(__m128i x) { return _mm_add_epi8(_mm_add_epi8(x, x), x); }
inline __m256i mul3(__m256i x) { return _mm256_add_epi8(_mm256_add_epi8(x, x), x); }

// The trit at the top of each byte p, floor(3p / 256) = [p >= 86] + [p >= 171].
inline __m256i top_trit(__m256i p) {
  const __m256i s = _mm256_xor_si256(p, _mm256_set1_epi8(-128));  // unsigned order as signed
  const __m256i ge86 = _mm256_cmpgt_epi8(s, _mm256_set1_epi8(85 - 128));
  const __m256i ge171 = _mm256_cmpgt_epi8(s, _mm256_set1_epi8(170 - 128));
  return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(ge86, ge171));
}

// A format's 256 weights plus one (u = t in {0, 1, 2}) as 8 vectors in element order.
struct TQ1 {
  using Block = BlockTQ1_0;
  static void unpack(const Block& b, __m256i* u) {  // u: [8]
    // qs[0..31]: trit n of every byte is elements 32n..32n+31
    __m256i p = load256(b.qs);
    for (int k = 0; k < 5; ++k, p = mul3(p)) u[k] = top_trit(p);
    // qs[32..47]: 16 elements per trit; qh: trit n of byte j is element 240 + 4n + j, so
    // 4 copies of qh scaled by 1, 3, 9, 27 give the last 16 in order
    const __m128i t0 = load128(b.qs + 32), t1 = mul3(t0), t2 = mul3(t1), t3 = mul3(t2), t4 = mul3(t3);
    int32_t qh;
    std::memcpy(&qh, b.qh, 4);
    const __m128i h0 = _mm_set1_epi32(qh), h1 = mul3(h0), h2 = mul3(h1), h3 = mul3(h2);
    const __m128i hs = _mm_blend_epi32(_mm_blend_epi32(h0, h1, 0x2), _mm_blend_epi32(h2, h3, 0x8), 0xC);
    u[5] = top_trit(_mm256_set_m128i(t1, t0));
    u[6] = top_trit(_mm256_set_m128i(t3, t2));
    u[7] = top_trit(_mm256_set_m128i(hs, t4));
  }
};

struct TQ2 {
  using Block = BlockTQ2_0;
  static void unpack(const Block& b, __m256i* u) {  // u: [8]
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int j = 0; j < 2; ++j) {
      const __m256i bits = load256(b.qs + 32 * j);
      for (int l = 0; l < 4; ++l) u[4 * j + l] = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * l), m3);
    }
  }
};

// Lanes of u * q8 (u = w + 1) less the Q8_K group sums, FMA-folded.
template <class F>
struct TernaryKernel {
  using Block = typename F::Block;
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
      const Block* x[NR];
      const BlockQ8_K* y[NC];
      __m256i u[NR][8];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<Block>(w, ws, r, i);
        F::unpack(*x[r], u[r]);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) y[c] = row_block<BlockQ8_K>(a, as, c, i);
      // 16-bit lanes: 8 products of pairs, each |.| <= 2 * 3 * 128, less a group sum
      __m256i s16[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) s16[c][r] = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) {
          const __m256i q8 = load256(y[c]->qs + 32 * k);
#pragma GCC unroll 8
          for (int r = 0; r < NR; ++r) s16[c][r] = _mm256_add_epi16(s16[c][r], _mm256_maddubs_epi16(u[r][k], q8));
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const __m256i bs = load256(y[c]->bsums);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256i lanes = _mm256_madd_epi16(_mm256_sub_epi16(s16[c][r], bs), ones16);
          const __m256 d = _mm256_set1_ps(y[c]->d * half_to_float(x[r]->d));
          acc[c][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), d, acc[c][r]);
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

template <class K>
void install(TypeTraits* t, DType type) {
  auto& e = t[static_cast<int>(type)];
  e.vec_dot = dot_1x1<K>;
  e.vec_dot_tile = tile_driver<K, 1, 4, 4>;
  e.impl = "avx2";
}

}  // namespace

void install_iq1tq_avx2(TypeTraits* table) {
  install<IQ1S>(table, DType::IQ1_S);
  install<IQ1M>(table, DType::IQ1_M);
  install<TernaryKernel<TQ1>>(table, DType::TQ1_0);
  install<TernaryKernel<TQ2>>(table, DType::TQ2_0);
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
