// The 8-row packed layout of the 32-element legacy formats Q4_1, Q5_0, Q5_1 and IQ4_NL
// (Lx8), shared by packed_legacy.cpp (pack + scalar kernel) and packed_legacy_avx2.cpp.
// Internal to src/kernels.
//
// Per block of the 8 rows (the file's bytes, rearranged):
//   f16 d[8]; f16 m[8] (Q4_1, Q5_1); u32 qh[8] (Q5_0, Q5_1); u8 qs[128]
// qs as Q4_0x8: qs[32c + 4r + b] = row r's qs[4c + b] (low nibble element 4c+b, high
// nibble element 16+4c+b). qh[r] holds row r's fifth bits rearranged so that byte b, bit
// k is the bit of element 4k + b: piece c's low-nibble elements then find theirs at bit c
// of each byte, its high-nibble elements at bit 4 + c, one shift from bit 4.
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace tachyon::kernels {

template <DType T>
struct LegacyX8 {
  static constexpr bool kMin = T == DType::Q4_1 || T == DType::Q5_1;  // has m, Q8_1 acts
  static constexpr bool kQ5 = T == DType::Q5_0 || T == DType::Q5_1;   // has qh
  static constexpr size_t kOffM = 16;
  static constexpr size_t kOffH = kOffM + (kMin ? 16 : 0);
  static constexpr size_t kOffQ = kOffH + (kQ5 ? 32 : 0);
  static constexpr size_t kBlock = kOffQ + 128;
};

// The rearranged fifth bits (see above) of a Q5_0/Q5_1 block's qh.
inline uint32_t legacy_x8_qh(uint32_t h) {
  uint32_t p = 0;
  for (int b = 0; b < 4; ++b)
    for (int k = 0; k < 8; ++k) p |= ((h >> (4 * k + b)) & 1u) << (8 * b + k);
  return p;
}

}  // namespace tachyon::kernels
