// The 2048-entry grid of 8 ternary weights shared by IQ1_S and IQ1_M (iq1_grid.cpp).
#pragma once
#include <cstdint>

namespace tachyon::kernels {

constexpr int kIq1sGridSize = 2048;  // indexed by 11 bits: 8 in qs, 3 in qh

// Entry k holds 8 int8 weights in {-1, 0, +1}, weight j in byte j.
extern const uint64_t kIq1sGrid[kIq1sGridSize];

}  // namespace tachyon::kernels
