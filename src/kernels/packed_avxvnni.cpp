// Packed-layout kernels for AVX2 + AVX-VNNI (the VEX-encoded 256-bit vpdpbusd of CPUs
// without AVX-512, e.g. Intel's client cores since Alder Lake): the 8-row kernels of
// packed_impl.h with one vpdpbusd as the integer dot instead of maddubs + madd + add.
// The same integers (the weights are nibbles, so maddubs never saturates), the same bits.
// VEX code has 16 vector registers: 4 tokens per pass keeps the accumulators in them.
#if defined(__x86_64__)
#include "kernels/packed_impl.h"

namespace tachyon::kernels {
namespace {
struct DpAvxVnni {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
};
}  // namespace

void install_packed_avxvnni(PackedKernels* t) {
  auto& q40 = t[static_cast<int>(DType::Q4_0)];
  q40.gemm = q4_0x8_gemm<DpAvxVnni, 4>;  // gemm_ref: the 8-row reference twin (set in packed_ref.cpp)
  q40.impl = "avxvnni";
  auto& q4k = t[static_cast<int>(DType::Q4_K)];
  q4k.gemm = q4_Kx8_gemm<DpAvxVnni, 2>;
  q4k.impl = "avxvnni";
}

}  // namespace tachyon::kernels
#endif
