// AVX2 kernels of the IQ2 / IQ3 formats: dot products with Q8_K activations as rows x
// tokens micro-kernels, and dequantizers. Bit-identical to their _ref twins in
// quant_iq23_ref.cpp, whose float order is that of llama.cpp's AVX2 kernels (8 lanes).
//
// A weight chunk of 32 is unpacked once per row (grid look-ups, sign bits to +-1 bytes,
// scales) and used for every token of the tile: the look-ups are most of the work of a
// chunk, so reusing them is where the tile gains over one dot product at a time.
// The signs go onto the activations (_mm256_sign_epi8) so that the grid magnitudes stay
// the unsigned operand of maddubs; Q8_K quants lie in [-127, 127], so negating one never
// overflows, and maddubs cannot saturate (2 * 62 * 127 < 32767).
#if defined(__x86_64__)
#include <array>
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/iq_grids.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_iq23.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

// kIq2Signs as 8 bytes of +1 / -1 each.
constexpr std::array<uint64_t, 128> make_sign_bytes() {
  std::array<uint64_t, 128> t{};
  for (int i = 0; i < 128; ++i)
    for (int k = 0; k < 8; ++k) t[i] |= static_cast<uint64_t>((kIq2Signs[i] >> k) & 1 ? 0xFF : 0x01) << (8 * k);
  return t;
}
constexpr std::array<uint64_t, 128> kSignBytes = make_sign_bytes();

inline uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load_u64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline __m256i set_u64(uint64_t e3, uint64_t e2, uint64_t e1, uint64_t e0) {
  return _mm256_set_epi64x(static_cast<long long>(e3), static_cast<long long>(e2), static_cast<long long>(e1),
                           static_cast<long long>(e0));
}

// Signs of 4 groups of 8 from their 7-bit kIq2Signs indices.
inline __m256i signs_from_index(unsigned i3, unsigned i2, unsigned i1, unsigned i0) {
  return set_u64(kSignBytes[i3], kSignBytes[i2], kSignBytes[i1], kSignBytes[i0]);
}
// Signs of 4 groups of 8 from plain sign bytes (byte g, bit k: weight 8g + k negated).
inline __m256i signs_from_bytes(uint32_t v) {
  const __m256i byte_of_group = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                                 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(v)), byte_of_group);
  const __m256i neg = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(neg, _mm256_set1_epi8(1));
}

// ... 4 x 7 bits packed at bits 0, 7, 14, 21: spread to 4 bytes, each byte's bit 7 the
// parity of its bits 0..6 (what kIq2Signs adds), then as plain sign bytes. Cheaper than 4
// table look-ups and their inserts.
inline __m256i signs_from_index(uint32_t v) {
  return signs_from_index((v >> 21) & 127, (v >> 14) & 127, (v >> 7) & 127, v & 127);
}

// One chunk of 32 weights: |w| = mag, w = mag * sgn; s: the 4-bit scales of weights
// 0..15 and 16..31.
struct Chunk {
  __m256i mag;
  __m256i sgn;
  int s[2];
};

// The 16 odd multipliers 2s+1 of a block with two 4-bit scales per chunk (IQ2_XS, IQ2_S):
// int16 lane j of the low half is chunk j's first-half scale, of the high half its
// second-half one; chunk_scale(v, j) broadcasts chunk j's pair into the two halves.
inline __m256i half_scales16(const uint8_t* scales) {
  uint64_t v;
  std::memcpy(&v, scales, 8);
  const __m128i nib = _mm_and_si128(_mm_set_epi64x(static_cast<long long>(v >> 4), static_cast<long long>(v)),
                                    _mm_set1_epi8(0xF));
  return _mm256_cvtepi8_epi16(_mm_add_epi8(_mm_add_epi8(nib, nib), _mm_set1_epi8(1)));
}
inline __m256i chunk_scale(__m256i s16, int j) {
  const __m256i pick = _mm256_set1_epi16(static_cast<short>((2 * j) | ((2 * j + 1) << 8)));
  return _mm256_shuffle_epi8(s16, pick);
}

// Per format: unpack(block, j) gives chunk j (0..7); db(d, s) the float scale of a
// dequantized weight; kFactor turns the odd scales 2s+1 of the dot product into the
// format's.
struct IQ2XXS {
  static constexpr bool kOneScale = true;  // one scale for the chunk
  using Block = BlockIQ2_XXS;
  static constexpr float kFactor = 0.125f;
  static Chunk unpack(const Block& b, int j) {
    const uint32_t idx = load_u32(b.qs + 4 * j), sg = load_u32(b.qs + 4 * j + 2);
    const int s = static_cast<int>(sg >> 28);
    return {set_u64(kIq2xxsGrid[idx >> 24], kIq2xxsGrid[(idx >> 16) & 0xFF], kIq2xxsGrid[(idx >> 8) & 0xFF],
                    kIq2xxsGrid[idx & 0xFF]),
            signs_from_index(sg),
            {s, s}};
  }
  static float db(float d, int s) { return d * (0.5f + s) * 0.25f; }
};

struct IQ2XS {
  static constexpr bool kOneScale = false;  // a scale per half chunk
  using Block = BlockIQ2_XS;
  static constexpr float kFactor = 0.125f;
  static Chunk unpack(const Block& b, int j) {
    const uint64_t q = load_u64(b.qs + 4 * j);  // 4 x 16 bits: 9-bit grid index, 7-bit sign index
    return {set_u64(kIq2xsGrid[(q >> 48) & 511], kIq2xsGrid[(q >> 32) & 511], kIq2xsGrid[(q >> 16) & 511],
                    kIq2xsGrid[q & 511]),
            signs_from_index(q >> 57, (q >> 41) & 127, (q >> 25) & 127, (q >> 9) & 127),
            {b.scales[j] & 0xF, b.scales[j] >> 4}};
  }
  static float db(float d, int s) { return d * (0.5f + s) * 0.25f; }
};

struct IQ2S {
  static constexpr bool kOneScale = false;  // a scale per half chunk
  using Block = BlockIQ2_S;
  static constexpr float kFactor = 0.125f;
  static Chunk unpack(const Block& b, int j) {
    const uint8_t* q = b.qs + 4 * j;
    const int h = b.qh[j];  // bits 2l, 2l+1: index bits 8, 9 of group l
    return {set_u64(kIq2sGrid[q[3] | ((h << 2) & 0x300)], kIq2sGrid[q[2] | ((h << 4) & 0x300)],
                    kIq2sGrid[q[1] | ((h << 6) & 0x300)], kIq2sGrid[q[0] | ((h << 8) & 0x300)]),
            signs_from_bytes(load_u32(b.qs + QK_K / 8 + 4 * j)),
            {b.scales[j] & 0xF, b.scales[j] >> 4}};
  }
  static float db(float d, int s) { return d * (0.5f + s) * 0.25f; }
};

struct IQ3XXS {
  static constexpr bool kOneScale = true;  // one scale for the chunk
  using Block = BlockIQ3_XXS;
  static constexpr float kFactor = 0.25f;
  static Chunk unpack(const Block& b, int j) {
    const uint8_t* q = b.qs + 8 * j;
    const uint32_t sg = load_u32(b.qs + QK_K / 4 + 4 * j);
    const int s = static_cast<int>(sg >> 28);
    const auto g = [&](int k) { return static_cast<int>(kIq3xxsGrid[q[k]]); };
    return {_mm256_setr_epi32(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7)), signs_from_index(sg), {s, s}};
  }
  static float db(float d, int s) { return d * (0.5f + s) * 0.5f; }
};

struct IQ3S {
  static constexpr bool kOneScale = true;  // one scale for the chunk
  using Block = BlockIQ3_S;
  static constexpr float kFactor = 1.0f;
  static Chunk unpack(const Block& b, int j) {
    const uint8_t* q = b.qs + 8 * j;
    const int h = b.qh[j];  // bit k: index bit 8 of group k
    const auto g = [&](int k) { return static_cast<int>(kIq3sGrid[q[k] | ((h << (8 - k)) & 256)]); };
    const int s = (b.scales[j / 2] >> (4 * (j & 1))) & 0xF;
    return {_mm256_setr_epi32(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7)),
            signs_from_bytes(load_u32(b.signs + 4 * j)),
            {s, s}};
  }
  static float db(float d, int s) { return d * (1 + 2 * s); }
};

// NR rows x NC tokens. Per pair and super-block the 8 integer lanes (lane k: elements
// 4k..4k+3 of every chunk, times 2s+1) go into 8 float lanes by one FMA with d_w * d_a,
// summed and scaled at the end: vec_dot_*_ref's order.
template <class F>
struct IqDot {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    using Block = typename F::Block;
    const int64_t nb = n / QK_K;
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const Block* x[NR];
      const BlockQ8_K* y[NC];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) x[r] = row_block<Block>(w, ws, r, i);
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) y[c] = row_block<BlockQ8_K>(a, as, c, i);
      __m256i isum[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = _mm256_setzero_si256();
      __m256i s16[NR];
      if constexpr (!F::kOneScale) {
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) s16[r] = half_scales16(x[r]->scales);
      }
      for (int j = 0; j < QK_K / 32; ++j) {
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const Chunk ch = F::unpack(*x[r], j);
          __m256i sc;
          if constexpr (F::kOneScale) sc = _mm256_set1_epi16(static_cast<short>(2 * ch.s[0] + 1));
          else sc = chunk_scale(s16[r], j);
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c) {
            const __m256i q8 = _mm256_sign_epi8(load256(y[c]->qs + 32 * j), ch.sgn);
            isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(_mm256_maddubs_epi16(ch.mag, q8), sc));
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
      for (int r = 0; r < NR; ++r) out[c * ld + r] = F::kFactor * hsum(acc[c][r]);
  }
};

// y = db * w per weight, as dequantize_*_ref.
template <class F>
void dequantize(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const typename F::Block*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d);
    for (int j = 0; j < QK_K / 32; ++j, y += 32) {
      const Chunk ch = F::unpack(x[i], j);
      const __m256i q = _mm256_sign_epi8(ch.mag, ch.sgn);
      store16(y, _mm256_castsi256_si128(q), _mm256_set1_ps(F::db(d, ch.s[0])));
      store16(y + 16, _mm256_extracti128_si256(q, 1), _mm256_set1_ps(F::db(d, ch.s[1])));
    }
  }
}

template <class F>
void install(TypeTraits& t) {
  t.vec_dot = dot_1x1<IqDot<F>>;
  t.vec_dot_tile = tile_driver<IqDot<F>, 1, 4, 4>;
  t.to_float = dequantize<F>;
  t.impl = "avx2";
}

}  // namespace

void install_iq23_avx2(TypeTraits* table) {
  install<IQ2XXS>(table[static_cast<int>(DType::IQ2_XXS)]);
  install<IQ2XS>(table[static_cast<int>(DType::IQ2_XS)]);
  install<IQ2S>(table[static_cast<int>(DType::IQ2_S)]);
  install<IQ3XXS>(table[static_cast<int>(DType::IQ3_XXS)]);
  install<IQ3S>(table[static_cast<int>(DType::IQ3_S)]);
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
