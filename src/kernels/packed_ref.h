// Scalar parts shared by the reference kernels (packed_ref.cpp, packed_q5k.cpp,
// quant_*_ref.cpp): the Q8_K pair-sum aux of the packed K-quant layouts, and the 8 float
// lanes of the AVX2 kernels that the references follow (which lane an element feeds, the
// order the lanes are summed in). Internal to src/kernels.
#pragma once
#include <cstdint>

namespace tachyon::kernels {

// aux: per Q8_K super-block and sub-block pair j, the sums of the activations of
// sub-blocks 2j and 2j+1 as two 16-bit halves of one int (what the min terms multiply).
int64_t q8_K_aux_count(int64_t n_cols);
void q8_K_aux_pairs(const uint8_t* act_row, int64_t n_cols, int32_t* aux);

// The AVX2 lane that element e of a block (or super-block) adds its product to: the
// 4-byte column of its 32-byte vector.
constexpr int lane_of(int e) { return (e % 32) / 4; }

// The 8 lanes of a per-row accumulator summed in the order of the AVX2 horizontal add:
// ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)).
inline float sum8_avx2_order(const float* a) {
  const float t0 = a[0] + a[4], t1 = a[1] + a[5], t2 = a[2] + a[6], t3 = a[3] + a[7];
  return (t0 + t2) + (t1 + t3);
}

}  // namespace tachyon::kernels
