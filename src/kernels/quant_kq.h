// The low-bit K-quant family (bit-compatible with ggml): Q2_K, Q3_K and IQ4_XS, all dotted
// with Q8_K activations. Scalar references in quant_kq_ref.cpp, AVX2 in quant_kq_avx2.cpp.
//
// Float order of the dot products, that of llama.cpp's AVX2 vec_dot (the references
// follow it, so the AVX2 kernels give their bits, and the test models' logits match
// llama.cpp's: max |dlogit| 0.0000 in the golden tests): per super-block the integer products fall into 8
// lanes, element e of the super-block going to lane (e % 32) / 4 (the 4-byte column of
// its 32-byte vector); each lane is converted to float and added by FMA with the
// super-block's scale product into a lane accumulator (Q2_K first adds its min terms the
// same way); the 8 accumulators are summed at the end in the order of the AVX2
// horizontal add (sum8_avx2_order).
#pragma once
#include <cstdint>

#include "kernels/quant.h"

namespace tachyon::kernels {

// 16 sub-blocks of 16: y = d * sc_s * q - dmin * m_s, q 2-bit, sc_s / m_s the low / high
// nibble of scales[s]. In each half (128 elements) element l + 32k (l < 32) is bits 2k..2k+1
// of qs[32 * half + l].
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  f16_t d;
  f16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// 16 sub-blocks of 16: y = d * (sc_s - 32) * q, q = low2 - (high bit clear ? 4 : 0) in
// [-4, 3]. low2 as in Q2_K; the high bit of element l + 32k of half h (l < 32) is bit
// 4h + k of hmask[l]. The 6-bit sc_s: low nibbles in scales[0..7] (s < 8 low, else high
// nibble of scales[s - 8]), top 2 bits in scales[8 + s % 4] at bit 2 * (s / 4).
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[K_SCALE_SIZE];
  f16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// 8 sub-blocks of 32: y = d * (ls_b - 32) * kIq4nlValues[q] (IQ4_NL's levels, in
// quant_legacy.h), q 4-bit (low nibbles of qs[16b..16b+15] are elements 0..15 of sub-block
// b, high nibbles 16..31); the 6-bit ls_b: low 4 bits a nibble of scales_l[b / 2], top 2
// bits bits 2b..2b+1 of scales_h.
struct BlockIQ4_XS {
  f16_t d;
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

void dequantize_q2_K_ref(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_q3_K_ref(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_iq4_xs_ref(const BlockIQ4_XS* x, float* y, int64_t n);

// llama.cpp's reference weight quantizers (its fitting searches, no importance matrix).
void quantize_q2_K_ref(const float* x, BlockQ2_K* y, int64_t n);
void quantize_q3_K_ref(const float* x, BlockQ3_K* y, int64_t n);
void quantize_iq4_xs_ref(const float* x, BlockIQ4_XS* y, int64_t n);

float vec_dot_q2_K_q8_K_ref(int64_t n, const BlockQ2_K* x, const BlockQ8_K* y);
float vec_dot_q3_K_q8_K_ref(int64_t n, const BlockQ3_K* x, const BlockQ8_K* y);
float vec_dot_iq4_xs_q8_K_ref(int64_t n, const BlockIQ4_XS* x, const BlockQ8_K* y);

// False when a block holds a NaN or infinite scale (every other bit pattern is valid).
bool validate_q2_K(const void* x, int64_t n);
bool validate_q3_K(const void* x, int64_t n);
bool validate_iq4_xs(const void* x, int64_t n);

}  // namespace tachyon::kernels
