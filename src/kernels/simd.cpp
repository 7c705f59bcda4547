#include "kernels/simd.h"

#include "base/cpu.h"

namespace tachyon::kernels {

#if defined(__x86_64__)
void install_avx2_kernels(TypeTraits* table);  // kernels_avx2.cpp
#endif

void install_simd_kernels(TypeTraits* table) {
#if defined(__x86_64__)
  const auto& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) install_avx2_kernels(table);
#else
  (void)table;
#endif
}

}  // namespace tachyon::kernels
