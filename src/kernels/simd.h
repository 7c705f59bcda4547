// Installs the SIMD variants this CPU supports into a traits table (indexed by DType), in
// stages so that the registry can list each stage's kernels as a variant of its own.
#pragma once
#include "kernels/traits.h"

namespace tachyon::kernels {

// AVX2 + FMA + F16C kernels; false (table untouched) when the CPU lacks them.
bool install_avx2_stage(TypeTraits* table);
// AVX-512 (F, BW, VL, VNNI) kernels over an AVX2 table; false when the CPU lacks them.
bool install_avx512_stage(TypeTraits* table);

}  // namespace tachyon::kernels
