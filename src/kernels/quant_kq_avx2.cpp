// AVX2 kernels for Q2_K, Q3_K and IQ4_XS with Q8_K activations: rows x tokens
// micro-kernels (tile_driver) and dequantizers. Each gives the bits of its twin in
// quant_kq_ref.cpp: the same integer lanes and float steps (see quant_kq.h).
//
// A weight row's super-block is unpacked once per group of 8 (or 4) tokens and used for
// all of them; per token only loads and multiply-adds remain:
//  - Q2_K: the 2-bit quants are premultiplied by their 4-bit scales with a byte shuffle
//    (q * sc <= 45 still fits maddubs' unsigned bytes), so two 32-byte chunks add in 16
//    bits before one madd: 3 multiply instructions per 64 weights instead of 4;
//  - Q3_K: the quants biased to u = q + 4 (unsigned, as maddubs needs) and the token's
//    4 * q8 pair sums subtracted in 16 bits: two maddubs per 32 weights as in llama.cpp,
//    but no unpacking per token;
//  - IQ4_XS: levels looked up by byte shuffle and their magnitudes kept, so a token costs
//    a sign, a maddubs and a madd per 32 weights.
// Products stay in their lanes throughout: moving integer terms between lanes (say,
// taking Q3_K's +4 bias back through the Q8_K group sums) changes the float sums, and
// moved the logits of the Q3_K test model by 0.18 from llama.cpp's (0 as it is).
// Counted with callgrind (n = 4096, 64 rows x 16 tokens), instructions per row, token
// and super-block in the tile / the one-token kernel: Q2_K 44 / 83, Q3_K 67 / 143,
// IQ4_XS 65 / 123 (Q4_K's tile: 93).
#if defined(__x86_64__)
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_kq.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

// f16 -> f32 by the F16C instruction: exact, as f16_to_f32, in one instruction instead of a dozen.
inline float half_to_float(f16_t h) { return _cvtsh_ss(h); }

// Q2_K's quants times their scales, wq[4h + k] = elements 128h + 32k .. +31 (sub-blocks
// 8h + 2k and 8h + 2k + 1 in its two 128-bit lanes).
inline void q2k_weights(const BlockQ2_K* x, __m256i wq[8]) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i sc = _mm256_broadcastsi128_si256(_mm_and_si128(load128(x->scales), _mm_set1_epi8(0xF)));
  // byte 4k + v of a lane: the scale of chunk k's sub-block in that lane
  const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6,  //
                                       1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
  const __m256i odd = _mm256_set1_epi32(static_cast<int>(0xFF00FF00u));  // v = 1, 3
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));  // v = 2, 3
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    // byte 4k + v of a lane becomes v * scale: the product table of the lane's 4 chunks
    const __m256i s = _mm256_shuffle_epi8(sc, _mm256_add_epi8(idx, _mm256_set1_epi8(static_cast<char>(8 * h))));
    const __m256i table = _mm256_add_epi8(_mm256_and_si256(s, odd), _mm256_and_si256(_mm256_add_epi8(s, s), high));
    const __m256i bits = load256(x->qs + 32 * h);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
      wq[4 * h + k] = _mm256_shuffle_epi8(table, _mm256_or_si256(q, _mm256_set1_epi8(static_cast<char>(4 * k))));
    }
  }
}

struct Q2K {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ2_K* x[NR];
      const BlockQ8_K* y[NC];
      __m256i mins[NR];
      float dx[NR], dmx[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<BlockQ2_K>(w, ws, r, i);
        mins[r] = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(load128(x[r]->scales), 4), m4));
        dx[r] = half_to_float(x[r]->d);
        dmx[r] = half_to_float(x[r]->dmin);
      }
      // the min terms first (lane l: sub-blocks 2l, 2l + 1), as llama.cpp adds them
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        y[c] = row_block<BlockQ8_K>(a, as, c, i);
        const __m256i bs = load256(y[c]->bsums);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 m = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins[r], bs));
          acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(-y[c]->d * dmx[r]), m, acc[c][r]);
        }
      }
      __m256i isum[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = _mm256_setzero_si256();
      if constexpr (NC == 1) {
        // one token: scales by madd per 32 weights (premultiplying would not pay off)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256i s16 = _mm256_cvtepu8_epi16(_mm_and_si128(load128(x[r]->scales), m4));
#pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) {
            const __m256i bits = load256(x[r]->qs + 32 * h), sh = half_scales(s16, h);
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
              const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
              const __m256i p = _mm256_maddubs_epi16(q, load256(y[0]->qs + 128 * h + 32 * k));
              isum[0][r] = _mm256_add_epi32(isum[0][r], _mm256_madd_epi16(chunk_scales(sh, k), p));
            }
          }
        }
      } else {
        __m256i wq[NR][8];
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) q2k_weights(x[r], wq[r]);
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {  // 64 weights: two products of <= 2 * 45 * 128 add in 16 bits
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c) {
            const __m256i q8a = load256(y[c]->qs + 64 * p), q8b = load256(y[c]->qs + 64 * p + 32);
#pragma GCC unroll 8
            for (int r = 0; r < NR; ++r) {
              const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(wq[r][2 * p], q8a),
                                                   _mm256_maddubs_epi16(wq[r][2 * p + 1], q8b));
              isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(s16, ones));
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r)
          acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(y[c]->d * dx[r]), _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

// The 16 sub-block scales of a Q3_K block, offset removed, as 16-bit lanes.
inline __m256i q3k_scales(const uint8_t* s) {
  uint32_t a0, a1, a2;
  std::memcpy(&a0, s, 4);
  std::memcpy(&a1, s + 4, 4);
  std::memcpy(&a2, s + 8, 4);
  const uint32_t lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const __m128i v = _mm_set_epi32(static_cast<int>(((a1 >> 4) & lo4) | (((a2 >> 6) & lo2) << 4)),
                                  static_cast<int>(((a0 >> 4) & lo4) | (((a2 >> 4) & lo2) << 4)),
                                  static_cast<int>((a1 & lo4) | (((a2 >> 2) & lo2) << 4)),
                                  static_cast<int>((a0 & lo4) | ((a2 & lo2) << 4)));
  return _mm256_cvtepi8_epi16(_mm_sub_epi8(v, _mm_set1_epi8(32)));
}

struct Q3K {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ3_K* x[NR];
      const BlockQ8_K* y[NC];
      __m256i s16[NR], isum[NC][NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<BlockQ3_K>(w, ws, r, i);
        s16[r] = q3k_scales(x[r]->scales);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        y[c] = row_block<BlockQ8_K>(a, as, c, i);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = _mm256_setzero_si256();
      }
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          // u = q + 4 = low2 + 4 * high bit (bit j of hmask moved to bit 2), unsigned for maddubs
          const int j = 4 * h + k;
          __m256i u[NR], sv[NR];
#pragma GCC unroll 8
          for (int r = 0; r < NR; ++r) {
            const __m256i low = _mm256_and_si256(_mm256_srli_epi16(load256(x[r]->qs + 32 * h), 2 * k), m3);
            const __m256i hm = load256(x[r]->hmask);
            const __m256i h4 = _mm256_and_si256(j >= 2 ? _mm256_srli_epi16(hm, j - 2) : _mm256_slli_epi16(hm, 2 - j), four);
            u[r] = _mm256_or_si256(low, h4);
            sv[r] = chunk_scales(half_scales(s16[r], h), k);
          }
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c) {
            const __m256i q8 = load256(y[c]->qs + 128 * h + 32 * k);
            // the pair sums of q * q8 as those of u * q8 less those of 4 * q8 (16-bit exact)
            const __m256i t = _mm256_maddubs_epi16(four, q8);
#pragma GCC unroll 8
            for (int r = 0; r < NR; ++r) {
              const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u[r], q8), t);
              isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(sv[r], p));
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 d = _mm256_set1_ps(y[c]->d * half_to_float(x[r]->d));
          acc[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

// The 32 levels of IQ4_XS sub-block qs[0..15] in element order (low nibbles, then high).
inline __m256i iq4_levels(const uint8_t* qs, __m256i values) {
  const __m128i q = load128(qs);
  const __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF));
  return _mm256_shuffle_epi8(values, idx);
}

// The 8 sub-block scales of an IQ4_XS block, offset removed, as 16-bit lanes.
inline __m128i iq4xs_scales(const BlockIQ4_XS* x) {
  uint32_t l;
  std::memcpy(&l, x->scales_l, 4);
  const __m128i v = _mm_cvtsi32_si128(static_cast<int>(l)), m4 = _mm_set1_epi8(0xF);
  const __m128i lo = _mm_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4)));
  // field b of scales_h to the top bits of lane b, then to bits 4..5
  const __m128i top = _mm_mullo_epi16(_mm_set1_epi16(static_cast<short>(x->scales_h)),
                                      _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(top, 10), _mm_set1_epi16(0x30));
  return _mm_sub_epi16(_mm_or_si128(lo, hi), _mm_set1_epi16(32));
}

struct IQ4XS {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK_K;
    const __m256i values = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockIQ4_XS* x[NR];
      const BlockQ8_K* y[NC];
      __m256i scl[NR], isum[NC][NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<BlockIQ4_XS>(w, ws, r, i);
        scl[r] = _mm256_broadcastsi128_si256(iq4xs_scales(x[r]));
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        y[c] = row_block<BlockQ8_K>(a, as, c, i);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = _mm256_setzero_si256();
      }
#pragma GCC unroll 8
      for (int b = 0; b < QK_K / 32; ++b) {
        __m256i v[NR], av[NR], sv[NR];
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          v[r] = iq4_levels(x[r]->qs + 16 * b, values);
          av[r] = _mm256_abs_epi8(v[r]);
          sv[r] = _mm256_shuffle_epi8(scl[r], _mm256_set1_epi16(static_cast<short>(((2 * b + 1) << 8) | (2 * b))));
        }
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) {
          const __m256i q8 = load256(y[c]->qs + 32 * b);
#pragma GCC unroll 8
          for (int r = 0; r < NR; ++r) {
            // |level| * (q8 with the level's sign): pairs <= 2 * 127 * 127, no saturation
            const __m256i p = _mm256_maddubs_epi16(av[r], _mm256_sign_epi8(q8, v[r]));
            isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(p, sv[r]));
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 d = _mm256_set1_ps(half_to_float(x[r]->d) * y[c]->d);
          acc[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

// ---------------------------------------------------------------- dequantize

void dequantize_q2_K_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(vx);
  const __m128i m3 = _mm_set1_epi8(3);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d), dmin = half_to_float(x[i].dmin);
    for (int s = 0; s < QK_K / 16; ++s, y += 16) {  // sub-block s: bits 2k of qs[32h + 16 * (s % 2)..]
      const int h = s / 8, k = s % 8 / 2;
      const uint8_t sc = x[i].scales[s];
      const __m128i q = _mm_and_si128(_mm_srl_epi16(load128(x[i].qs + 32 * h + 16 * (s % 2)), _mm_cvtsi32_si128(2 * k)), m3);
      store16(y, q, _mm256_set1_ps(d * (sc & 0xF)), _mm256_set1_ps(dmin * (sc >> 4)));
    }
  }
}

void dequantize_q3_K_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(vx);
  const __m128i m3 = _mm_set1_epi8(3), one = _mm_set1_epi8(1), four = _mm_set1_epi8(4);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d);
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), q3k_scales(x[i].scales));
    for (int s = 0; s < QK_K / 16; ++s, y += 16) {
      const int h = s / 8, k = s % 8 / 2, o = 16 * (s % 2);
      const __m128i low = _mm_and_si128(_mm_srl_epi16(load128(x[i].qs + 32 * h + o), _mm_cvtsi32_si128(2 * k)), m3);
      const __m128i hb = _mm_and_si128(_mm_srl_epi16(load128(x[i].hmask + o), _mm_cvtsi32_si128(4 * h + k)), one);
      // q = low - 4 where the high bit is clear
      const __m128i q = _mm_sub_epi8(low, _mm_andnot_si128(_mm_slli_epi16(hb, 2), four));
      store16(y, q, _mm256_set1_ps(d * sc[s]));
    }
  }
}

void dequantize_iq4_xs_avx2(const void* vx, float* y, int64_t n) {
  const BlockIQ4_XS* x = static_cast<const BlockIQ4_XS*>(vx);
  const __m256i values = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d);
    alignas(16) int16_t sc[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(sc), iq4xs_scales(&x[i]));
    for (int b = 0; b < QK_K / 32; ++b, y += 32) {
      const __m256 dl = _mm256_set1_ps(d * sc[b]);
      const __m256i v = iq4_levels(x[i].qs + 16 * b, values);
      store16(y, _mm256_castsi256_si128(v), dl);
      store16(y + 16, _mm256_extracti128_si256(v, 1), dl);
    }
  }
}

// Tokens in groups of 8 (one row at a time: 8 accumulators and a row's unpacked chunk
// fit the 16 registers), the rest in a group of 4, then one at a time with the vec_dot
// kernel. Every pair is computed by the same per-pair code whatever its group.
template <class K>
void tile8(int64_t n, int nr, int nc, const void* w, size_t ws, const void* a, size_t as, float* out, int64_t ld) {
  const int nc8 = nc / 8 * 8;
  tile_driver<K, 1, 8, 1>(n, nr, nc8, w, ws, a, as, out, ld);
  tile_driver<K, 1, 4, 1>(n, nr, nc - nc8, w, ws, static_cast<const uint8_t*>(a) + nc8 * as, as, out + nc8 * ld, ld);
}

}  // namespace

void install_kq_avx2(TypeTraits* table) {
  auto& q2k = table[static_cast<int>(DType::Q2_K)];
  q2k.vec_dot = dot_1x1<Q2K>;
  q2k.vec_dot_tile = tile8<Q2K>;
  q2k.to_float = dequantize_q2_K_avx2;
  q2k.impl = "avx2";
  auto& q3k = table[static_cast<int>(DType::Q3_K)];
  q3k.vec_dot = dot_1x1<Q3K>;
  q3k.vec_dot_tile = tile8<Q3K>;
  q3k.to_float = dequantize_q3_K_avx2;
  q3k.impl = "avx2";
  auto& iq4xs = table[static_cast<int>(DType::IQ4_XS)];
  iq4xs.vec_dot = dot_1x1<IQ4XS>;
  iq4xs.vec_dot_tile = tile8<IQ4XS>;
  iq4xs.to_float = dequantize_iq4_xs_avx2;
  iq4xs.impl = "avx2";
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
