// The IQ2 / IQ3 weight formats (llama.cpp's "i-quants" of 2 and 3 bits): super-blocks of
// 256 weights in 8 chunks of 32, each group of 8 (IQ2) or 4 (IQ3) weight magnitudes
// given by an index into a fixed grid (iq_grids.h), plus one sign bit per weight and a
// 4-bit scale per chunk or half-chunk. They dot with Q8_K activations. Weights of these
// types are produced with an importance matrix, so there is no weight quantizer here.
#pragma once
#include <cstdint>

#include "kernels/quant.h"

namespace tachyon::kernels {

// Chunk j: qs[4j..4j+3] as two 32-bit words; the first holds 4 grid indices (one byte
// per group of 8), the second 4 x 7 sign bits (kIq2Signs) and the scale s in its top 4
// bits. y = d * (0.5 + s) / 4 * grid * sign.
struct BlockIQ2_XXS {
  f16_t d;
  uint16_t qs[QK_K / 8];
};
static_assert(sizeof(BlockIQ2_XXS) == 66);

// qs[4j + l]: 9-bit grid index, 7 sign bits above it (kIq2Signs); scales[j]: the low
// nibble scales weights 0..15 of chunk j, the high nibble 16..31. y = d * (0.5 + s) / 4 * ...
struct BlockIQ2_XS {
  f16_t d;
  uint16_t qs[QK_K / 8];
  uint8_t scales[QK_K / 32];
};
static_assert(sizeof(BlockIQ2_XS) == 74);

// qs[0..31]: low 8 bits of the 10-bit grid indices, 2 more bits per index from qh[j];
// qs[32..63]: one plain sign byte per group of 8; scales as IQ2_XS.
struct BlockIQ2_S {
  f16_t d;
  uint8_t qs[QK_K / 4];
  uint8_t qh[QK_K / 32];
  uint8_t scales[QK_K / 32];
};
static_assert(sizeof(BlockIQ2_S) == 82);

// qs[0..63]: 8 grid indices (groups of 4) per chunk; qs[64..95]: a 32-bit word per
// chunk with 4 x 7 sign bits and the scale s in the top 4 bits. y = d * (0.5 + s) / 2 * ...
struct BlockIQ3_XXS {
  f16_t d;
  uint8_t qs[3 * QK_K / 8];
};
static_assert(sizeof(BlockIQ3_XXS) == 98);

// qs: low 8 bits of the 9-bit grid indices, the 9th from qh[j] (bit k for group k of
// chunk j); signs: one plain byte per group of 8; scales[j / 2]: chunk j's scale s in
// the low (even j) or high (odd j) nibble. y = d * (1 + 2s) * grid * sign.
struct BlockIQ3_S {
  f16_t d;
  uint8_t qs[QK_K / 4];
  uint8_t qh[QK_K / 32];
  uint8_t signs[QK_K / 8];
  uint8_t scales[QK_K / 64];
};
static_assert(sizeof(BlockIQ3_S) == 110);

// Bit-exact with llama.cpp's dequantize_row_*.
void dequantize_iq2_xxs_ref(const BlockIQ2_XXS* x, float* y, int64_t n);
void dequantize_iq2_xs_ref(const BlockIQ2_XS* x, float* y, int64_t n);
void dequantize_iq2_s_ref(const BlockIQ2_S* x, float* y, int64_t n);
void dequantize_iq3_xxs_ref(const BlockIQ3_XXS* x, float* y, int64_t n);
void dequantize_iq3_s_ref(const BlockIQ3_S* x, float* y, int64_t n);

// The integer math of llama.cpp's vec_dot (scaled products summed per super-block) in
// the float order of its AVX2 kernels, which the AVX2 kernels here share bit for bit.
float vec_dot_iq2_xxs_q8_K_ref(int64_t n, const BlockIQ2_XXS* x, const BlockQ8_K* y);
float vec_dot_iq2_xs_q8_K_ref(int64_t n, const BlockIQ2_XS* x, const BlockQ8_K* y);
float vec_dot_iq2_s_q8_K_ref(int64_t n, const BlockIQ2_S* x, const BlockQ8_K* y);
float vec_dot_iq3_xxs_q8_K_ref(int64_t n, const BlockIQ3_XXS* x, const BlockQ8_K* y);
float vec_dot_iq3_s_q8_K_ref(int64_t n, const BlockIQ3_S* x, const BlockQ8_K* y);

// Chunk j (0..7) of a block as 32 signed grid values w and the 4-bit scales s of its
// halves (the decoding the reference kernels share; the IQ3x8 packing uses it).
void decode_iq3_xxs_chunk(const BlockIQ3_XXS& b, int j, int8_t* w, int* s);
void decode_iq3_s_chunk(const BlockIQ3_S& b, int j, int8_t* w, int* s);

// False when a block's scale d is NaN or infinite. Every other bit pattern is valid:
// the grid and sign indices are bit fields exactly as wide as their tables.
bool validate_iq2_xxs(const void* x, int64_t n);
bool validate_iq2_xs(const void* x, int64_t n);
bool validate_iq2_s(const void* x, int64_t n);
bool validate_iq3_xxs(const void* x, int64_t n);
bool validate_iq3_s(const void* x, int64_t n);

}  // namespace tachyon::kernels
