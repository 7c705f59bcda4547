// Ternary-grid formats (IQ1_S, IQ1_M) and ternary formats (TQ1_0, TQ2_0): 256-weight
// super-blocks, dot products with Q8_K activations. Bit-compatible with ggml.
#pragma once
#include <cstdint>

#include "kernels/iq1_grid.h"
#include "kernels/quant.h"

namespace tachyon::kernels {

// IQ1_S/IQ1_M weights are grid values in {-1, 0, 1} shifted by +-1/8 (ggml's IQ1S_DELTA).
constexpr float kIq1Delta = 0.125f;

// 8 sub-blocks of 32 weights = 4 groups of 8, each a grid entry (11-bit index: 8 bits in
// qs, 3 in qh). qh[ib]: bits 3l..3l+2 index high bits of group l, 12..14 the 3-bit scale
// s (sub-block scale 2s+1), bit 15 the sign of the delta. y = d * (2s+1) * (g +- 1/8).
struct BlockIQ1_S {
  f16_t d;
  uint8_t qs[QK_K / 8];
  uint16_t qh[QK_K / 32];
};
static_assert(sizeof(BlockIQ1_S) == 50);

// As IQ1_S with one qh nibble per group of 8 (bits 0..2 index high bits, bit 3 the delta
// sign) and a 3-bit scale per 16 weights in `scales` (4 little-endian 16-bit words: word
// ib/2 holds sub-block ib's two scales at bits 6*(ib%2) and 6*(ib%2)+3). The 4 top
// nibbles of the words form the f16 super-block scale.
struct BlockIQ1_M {
  uint8_t qs[QK_K / 8];
  uint8_t qh[QK_K / 16];
  uint8_t scales[QK_K / 32];
};
static_assert(sizeof(BlockIQ1_M) == 56);

// y = d * (t - 1), t in {0, 1, 2}. 5 trits per byte in qs, 4 per byte in qh, each byte
// holding ceil(v * 256 / 243) for its base-3 number v (first trit most significant):
// trit n of byte q is (uint8_t(q * 3^n) * 3) >> 8. Element order: qs[m] (m < 32) holds
// elements m + 32n; qs[32 + m] (m < 16) elements 160 + m + 16n; qh[j] 240 + j + 4n.
struct BlockTQ1_0 {
  uint8_t qs[(QK_K - 4 * QK_K / 64) / 5];
  uint8_t qh[QK_K / 64];
  f16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);

// y = d * (q - 1), q 2 bits: qs[32j + m] bits 2l..2l+1 hold element 128j + 32l + m.
struct BlockTQ2_0 {
  uint8_t qs[QK_K / 4];
  f16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

// Grid index of group l (0..3) of sub-block ib (0..7).
inline int iq1s_index(const BlockIQ1_S& b, int ib, int l) {
  return b.qs[4 * ib + l] | (((b.qh[ib] >> (3 * l)) & 7) << 8);
}
inline int iq1m_index(const BlockIQ1_M& b, int ib, int l) {
  return b.qs[4 * ib + l] | (((b.qh[2 * ib + l / 2] >> (4 * (l % 2))) & 7) << 8);
}
// Delta sign of group l of sub-block ib: true for -1/8.
inline bool iq1m_delta_neg(const BlockIQ1_M& b, int ib, int l) { return b.qh[2 * ib + l / 2] & (8 << (4 * (l % 2))); }

inline uint16_t iq1m_scale_word(const BlockIQ1_M& b, int k) {
  return static_cast<uint16_t>(b.scales[2 * k] | (b.scales[2 * k + 1] << 8));
}
// The f16 super-block scale: nibble k is the top nibble of scale word k.
inline f16_t iq1m_scale(const BlockIQ1_M& b) {
  return static_cast<f16_t>((iq1m_scale_word(b, 0) >> 12) | ((iq1m_scale_word(b, 1) >> 8) & 0x00F0) |
                            ((iq1m_scale_word(b, 2) >> 4) & 0x0F00) | (iq1m_scale_word(b, 3) & 0xF000));
}
// Scale (odd, 1..15) of half h (16 weights) of sub-block ib.
inline int iq1m_sub_scale(const BlockIQ1_M& b, int ib, int h) {
  return 2 * ((iq1m_scale_word(b, ib / 2) >> (6 * (ib % 2) + 3 * h)) & 7) + 1;
}

// IQ1_S's delta terms of a super-block in units of the delta: per sub-block (2s+1) * (+-1)
// times the sum of its 32 activations (from the Q8_K sums of 16).
inline int iq1s_delta_sum(const BlockIQ1_S& x, const BlockQ8_K& y) {
  int sum = 0;
  for (int ib = 0; ib < QK_K / 32; ++ib) {
    const int ls = 2 * ((x.qh[ib] >> 12) & 7) + 1;
    const int s = y.bsums[2 * ib] + y.bsums[2 * ib + 1];
    sum += ls * (x.qh[ib] & 0x8000 ? -s : s);
  }
  return sum;
}

void dequantize_iq1_s_ref(const BlockIQ1_S* x, float* y, int64_t n);
void dequantize_iq1_m_ref(const BlockIQ1_M* x, float* y, int64_t n);
void dequantize_tq1_0_ref(const BlockTQ1_0* x, float* y, int64_t n);
void dequantize_tq2_0_ref(const BlockTQ2_0* x, float* y, int64_t n);

// Weight quantizers for the ternary types (scale = max |x|, as llama.cpp's *_ref). IQ1_S and
// IQ1_M need an importance matrix and have none.
void quantize_tq1_0_ref(const float* x, BlockTQ1_0* y, int64_t n);
void quantize_tq2_0_ref(const float* x, BlockTQ2_0* y, int64_t n);

// Integer sums exact, float steps those of llama.cpp's AVX2 kernels (8 lanes).
float vec_dot_iq1_s_q8_K_ref(int64_t n, const BlockIQ1_S* x, const BlockQ8_K* y);
float vec_dot_iq1_m_q8_K_ref(int64_t n, const BlockIQ1_M* x, const BlockQ8_K* y);
float vec_dot_tq1_0_q8_K_ref(int64_t n, const BlockTQ1_0* x, const BlockQ8_K* y);
float vec_dot_tq2_0_q8_K_ref(int64_t n, const BlockTQ2_0* x, const BlockQ8_K* y);

// False when a super-block scale is NaN or infinite (every index is in range).
bool validate_iq1_s(const void* x, int64_t n);
bool validate_iq1_m(const void* x, int64_t n);
bool validate_tq1_0(const void* x, int64_t n);
bool validate_tq2_0(const void* x, int64_t n);

}  // namespace tachyon::kernels
