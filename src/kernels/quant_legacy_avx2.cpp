// AVX2 kernels of the legacy family, and of Q4_0: rows x tokens dot-product
// micro-kernels, the Q8_1 activation quantizer and the dequantizers. Each gives the bits of
// its _ref twin in quant_legacy_ref.cpp (quant_ref.cpp for Q4_0; the float order is spelled
// out in quant_legacy.h).
//
// The 32-element types share one micro-kernel, Q4_0's: the NR weight blocks of a step
// are unpacked once into 32 signed or unsigned bytes and used for every token; the integer
// dot of a (row, token) pair is maddubs + madd (with the sign trick for signed weights),
// the sums of 4 rows land in the lanes of one vector by horizontal adds, and each lane
// runs the scalar chain acc = fma(isum, d_w * d_a, acc) (plus acc = fma(m_w, s_a, acc) for
// the formats with a min). For Q4_0 that is the chain of llama.cpp's repacked (8-row
// interleaved) Q4_0 GEMM: acc += float(dot_b) * (d_w * d_a) per row and token.
#if defined(__x86_64__)
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

// The 32 nibbles of a block as bytes in element order (low nibbles are 0..15).
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i q = load128(qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF));
}

// Byte j = 0xFF where bit j of the 32 bits at p is set, else 0.
inline __m256i bit_bytes(const uint8_t* p) {
  uint32_t b;
  std::memcpy(&b, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(b)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// Weight formats of 32 elements: Block, Act (the activation block), whether the quants
// are unsigned with a min term (kMin), and the quants as bytes in element order.
struct Q40 {
  using Block = BlockQ4_0;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  static __m256i quants(const Block& x) { return _mm256_sub_epi8(nibbles(x.qs), _mm256_set1_epi8(8)); }
  static float scale(const Block& x) { return half_to_float(x.d); }
};
struct Q41 {
  using Block = BlockQ4_1;
  using Act = BlockQ8_1;
  static constexpr bool kMin = true;
  static __m256i quants(const Block& x) { return nibbles(x.qs); }
  static float scale(const Block& x) { return half_to_float(x.d); }
  static float min(const Block& x) { return half_to_float(x.m); }
};
struct Q50 {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  // q - 16 as a signed byte: the nibble with 0xF0 or-ed in where bit 4 is clear
  static __m256i quants(const Block& x) {
    return _mm256_or_si256(nibbles(x.qs),
                           _mm256_andnot_si256(bit_bytes(x.qh), _mm256_set1_epi8(static_cast<char>(0xF0))));
  }
  static float scale(const Block& x) { return half_to_float(x.d); }
};
struct Q51 {
  using Block = BlockQ5_1;
  using Act = BlockQ8_1;
  static constexpr bool kMin = true;
  static __m256i quants(const Block& x) {
    return _mm256_or_si256(nibbles(x.qs), _mm256_and_si256(bit_bytes(x.qh), _mm256_set1_epi8(0x10)));
  }
  static float scale(const Block& x) { return half_to_float(x.d); }
  static float min(const Block& x) { return half_to_float(x.m); }
};
struct IQ4NL {
  using Block = BlockIQ4_NL;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  static __m256i quants(const Block& x) {
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(kIq4nlValues)), nibbles(x.qs));
  }
  static float scale(const Block& x) { return half_to_float(x.d); }
};
struct MXFP4 {
  using Block = BlockMXFP4;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  static __m256i quants(const Block& x) {
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(kMxfp4Values)), nibbles(x.qs));
  }
  static float scale(const Block& x) { return e8m0_to_f32_half(x.e); }
};

template <class W>
struct Dot32 {
  // NR is 1 or a multiple of 4: the float chains of 4 rows run in the lanes of one
  // vector (the same operations per lane as the scalar chain of a single row).
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    static_assert(NR == 1 || NR % 4 == 0);
    constexpr int NG = NR >= 4 ? NR / 4 : 1;
    using Act = typename W::Act;
    const int64_t nb = n / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m128 acc[NC][NG];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) acc[c][g] = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      // qx: the quants; ux: what maddubs takes unsigned (|q| for signed formats)
      __m256i qx[NR], ux[NR];
      alignas(16) float dx[4 * NG], mx[4 * NG];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const auto& x = *row_block<typename W::Block>(w, ws, r, i);
        qx[r] = W::quants(x);
        ux[r] = W::kMin ? qx[r] : _mm256_sign_epi8(qx[r], qx[r]);
        dx[r] = W::scale(x);
        if constexpr (W::kMin) mx[r] = W::min(x);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const Act& y = *row_block<Act>(a, as, c, i);
        const __m256i qy = load256(y.qs);
        const float dy = half_to_float(y.d);
        __m256i p[NR];
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r)
          p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(ux[r], W::kMin ? qy : _mm256_sign_epi8(qy, qx[r])), ones);
        if constexpr (NR == 1) {
          __m128 s =
              _mm_fmadd_ss(_mm_cvtepi32_ps(_mm_cvtsi32_si128(hsum_i32(p[0]))), _mm_set_ss(dx[0] * dy), acc[c][0]);
          if constexpr (W::kMin) s = _mm_fmadd_ss(_mm_set_ss(mx[0]), _mm_set_ss(half_to_float(y.s)), s);
          acc[c][0] = s;
        } else {
#pragma GCC unroll 4
          for (int g = 0; g < NG; ++g) {
            // the 4 rows' dot products in the lanes of one vector
            const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4 * g], p[4 * g + 1]),
                                                _mm256_hadd_epi32(p[4 * g + 2], p[4 * g + 3]));
            const __m128i si = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            const __m128 d = _mm_mul_ps(_mm_load_ps(dx + 4 * g), _mm_set1_ps(dy));
            __m128 s = _mm_fmadd_ps(_mm_cvtepi32_ps(si), d, acc[c][g]);
            if constexpr (W::kMin) s = _mm_fmadd_ps(_mm_load_ps(mx + 4 * g), _mm_set1_ps(half_to_float(y.s)), s);
            acc[c][g] = s;
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) {
      if constexpr (NR == 1) {
        out[c * ld] = _mm_cvtss_f32(acc[c][0]);
      } else {
#pragma GCC unroll 4
        for (int g = 0; g < NG; ++g) _mm_storeu_ps(out + c * ld + 4 * g, acc[c][g]);
      }
    }
  }
};

// Q1_0 x four Q8_0 blocks, in llama.cpp's AVX2 float order (8 lanes, lane l holding
// elements 4l..4l+3 of each sub-block): t = d_a0 * s_0, t = fma(d_ak, s_k, t) for
// k = 1..3, acc = fma(d_w, t, acc), summed at the end. The integer lanes: with b_j in
// {0, 1} the bits, sum (2 b_j - 1) q_j = 2 S1 - S where S1 = maddubs(b, q) (per pair)
// and S = sum q (per token, shared by the rows).
struct Q10 {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK1_0;
    const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1), two16 = _mm256_set1_epi16(2);
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      __m256i bx[NR][4];
      float dx[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const BlockQ1_0& x = *row_block<BlockQ1_0>(w, ws, r, i);
        for (int k = 0; k < 4; ++k) bx[r][k] = _mm256_and_si256(bit_bytes(x.qs + 4 * k), one8);
        dx[r] = half_to_float(x.d);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const BlockQ8_0* y = row_block<BlockQ8_0>(a, as, c, 4 * i);
        __m256i qy[4], sy[4];
        __m256 dy[4];
        for (int k = 0; k < 4; ++k) {
          qy[k] = load256(y[k].qs);
          sy[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, qy[k]), one16);
          dy[k] = _mm256_set1_ps(half_to_float(y[k].d));
        }
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          __m256 t;
          for (int k = 0; k < 4; ++k) {
            const __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(bx[r][k], qy[k]), two16), sy[k]);
            t = k == 0 ? _mm256_mul_ps(dy[0], _mm256_cvtepi32_ps(s)) : _mm256_fmadd_ps(dy[k], _mm256_cvtepi32_ps(s), t);
          }
          acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(dx[r]), t, acc[c][r]);
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

// Activations to Q8_1: as quantize_q8_0_avx2 (kernels_avx2.cpp) plus s = d * sum(q).
void quantize_q8_1_avx2(const float* x, void* vy, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(vy);
  for (int64_t i = 0; i < n / 32; ++i) {
    __m256i q[4];
    const float d = quantize32_q8(x + 32 * i, y[i].qs, q) / 127.f;
    const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    y[i].d = f32_to_f16(d);
    y[i].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

// y = q * d (+ m), the reference's products (and sums) in 8 lanes.
template <class W>
void dequantize32_avx2(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const typename W::Block*>(vx);
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const __m256i q = W::quants(x[i]);
    const __m256 d = _mm256_set1_ps(W::scale(x[i]));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
      __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[k])), d);
      if constexpr (W::kMin) v = _mm256_add_ps(v, _mm256_set1_ps(W::min(x[i])));
      _mm256_storeu_ps(y + 8 * k, v);
    }
  }
}

void dequantize_q1_0_avx2(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ1_0*>(vx);
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t i = 0; i < n / QK1_0; ++i) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
    const __m256 nd = _mm256_xor_ps(d, _mm256_set1_ps(-0.0f));
    for (int b = 0; b < QK1_0 / 8; ++b, y += 8) {
      const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(x[i].qs[b]), bit), bit);
      _mm256_storeu_ps(y, _mm256_blendv_ps(nd, d, _mm256_castsi256_ps(set)));
    }
  }
}

template <class W>
void set_dot32(TypeTraits& t) {
  t.vec_dot = dot_1x1<Dot32<W>>;
  t.vec_dot_tile = tile_driver<Dot32<W>, 4, 4, 8>;
  t.to_float = dequantize32_avx2<W>;
  t.impl = "avx2";
}

}  // namespace

void install_legacy_avx2(TypeTraits* table) {
  set_dot32<Q40>(table[static_cast<int>(DType::Q4_0)]);
  set_dot32<Q41>(table[static_cast<int>(DType::Q4_1)]);
  set_dot32<Q50>(table[static_cast<int>(DType::Q5_0)]);
  set_dot32<Q51>(table[static_cast<int>(DType::Q5_1)]);
  set_dot32<IQ4NL>(table[static_cast<int>(DType::IQ4_NL)]);
  set_dot32<MXFP4>(table[static_cast<int>(DType::MXFP4)]);
  auto& q10 = table[static_cast<int>(DType::Q1_0)];
  q10.vec_dot = dot_1x1<Q10>;
  q10.vec_dot_tile = tile_driver<Q10, 2, 2>;
  q10.to_float = dequantize_q1_0_avx2;
  q10.impl = "avx2";
  auto& q81 = table[static_cast<int>(DType::Q8_1)];
  q81.from_float = quantize_q8_1_avx2;
  q81.impl = "avx2";
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
