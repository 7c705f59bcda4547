// Installs the SIMD variants this CPU supports into a traits table (indexed by DType).
#pragma once
#include "kernels/traits.h"

namespace tachyon::kernels {

void install_simd_kernels(TypeTraits* table);

}  // namespace tachyon::kernels
