// Packed-layout kernels with AVX512-VNNI on 256-bit vectors (vpdpbusd; needs AVX512VL).
#if defined(__x86_64__)
#include "kernels/packed_impl.h"

namespace tachyon::kernels {
namespace {
struct DpVnni {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
};
}  // namespace

void install_packed_vnni(PackedKernels* t) {
  auto& q40 = t[static_cast<int>(DType::Q4_0)];
  q40.gemm = q4_0x8_gemm<DpVnni>;
  q40.impl = "avx512vnni";
  auto& q4k = t[static_cast<int>(DType::Q4_K)];
  q4k.gemm = q4_Kx8_gemm<DpVnni, 4>;
  q4k.impl = "avx512vnni";
}

}  // namespace tachyon::kernels
#endif
