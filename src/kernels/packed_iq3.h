// The IQ3x8 layout of IQ3_XXS and IQ3_S (packed_iq3.cpp: packing and the scalar kernel;
// packed_iq3_avx2.cpp: the AVX2 kernel). Internal to src/kernels.
//
// The grid formats spend most of a dot product on unpacking (a table look-up per 4
// weights, sign bits, scales), once per row and token: decode is bound by it at ~10% of
// the memory roofline. IQ3x8 unpacks once, at load: every weight of these formats is one
// of 8 magnitudes with a sign, so it is stored as a 4-bit code (bit 3 the sign, bits 0..2
// the magnitude level) that one vpshufb turns back into the signed grid value. That costs
// 4.3 bits per weight instead of 3.06 (model_load.cpp decides whether to pay it).
//
// Per super-block of 256 weights of the group's 8 rows:
//   f16 d[8];                      the rows' block scales
//   u8  sc[8 chunks][8 rows];      2s+1 of chunk j (the odd multiplier of the dot product)
//   u8  qs[8 chunks][4 pieces][8 rows][4]: byte b of piece c of row r, chunk j holds the
//        codes of chunk elements 4c+b (low nibble) and 16+4c+b (high nibble)
// so a 32-byte load of (j, c) gives the 8 rows' elements 4c..4c+3 (lanes of integer sum
// c) in its low nibbles and 16+4c..16+4c+3 (lane c+4) in its high ones.
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace tachyon::kernels {

constexpr size_t kIq3x8OffSc = 16;
constexpr size_t kIq3x8OffQ = kIq3x8OffSc + 64;
constexpr size_t kIq3x8Block = kIq3x8OffQ + 1024;

// Magnitudes of the 8 levels: IQ3_XXS's grid bytes, IQ3_S's odd values.
inline constexpr int8_t kIq3xxsLevels[8] = {4, 12, 20, 28, 36, 44, 52, 62};
inline constexpr int8_t kIq3sLevels[8] = {1, 3, 5, 7, 9, 11, 13, 15};

}  // namespace tachyon::kernels
