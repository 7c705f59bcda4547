#include "kernels/simd.h"

#include "base/cpu.h"
#include "kernels/quant_groups.h"

namespace tachyon::kernels {

#if defined(__x86_64__)
void install_avx2_kernels(TypeTraits* table);            // kernels_avx2.cpp
void install_kquant_avx512_kernels(TypeTraits* table);  // kquants_vnni.cpp
#endif

bool install_avx2_stage(TypeTraits* table) {
#if defined(__x86_64__)
  const auto& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return false;
  install_avx2_kernels(table);
  install_legacy_avx2(table);
  install_kq_avx2(table);
  install_iq23_avx2(table);
  install_iq1tq_avx2(table);
  return true;
#else
  (void)table;
  return false;
#endif
}

bool install_avx512_stage(TypeTraits* table) {
#if defined(__x86_64__)
  const auto& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni)) return false;
  install_kquant_avx512_kernels(table);
  return true;
#else
  (void)table;
  return false;
#endif
}

}  // namespace tachyon::kernels
