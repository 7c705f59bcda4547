// Packed-layout kernels for AVX2 + AVX-VNNI (the VEX-encoded 256-bit vpdpbusd of CPUs
// without AVX-512, e.g. Intel's client cores since Alder Lake): the 8-row kernels of
// packed_impl.h with one vpdpbusd as the integer dot instead of maddubs + madd + add.
// The same integers (the weights are nibbles, so maddubs never saturates), the same bits.
// VEX code has 16 vector registers: 4 tokens per pass keeps the accumulators in them.
#if defined(__x86_64__)
#include "kernels/packed_impl.h"
#include "kernels/packed_legacy_impl.h"

namespace tachyon::kernels {
namespace {
struct DpAvxVnni {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
  static __m256i dot2(__m256i acc, __m256i u0, __m256i s0, __m256i u1, __m256i s1) {
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(acc, u0, s0), u1, s1);
  }
};
}  // namespace

void install_packed_avxvnni(PackedKernels* t) {
  install_packed_8row<DpAvxVnni, 4, 2>(t, "avxvnni");
  install_packed_legacy<DpAvxVnni>(t, "avxvnni");  // Q4_1, Q5_0, Q5_1, IQ4_NL
}

}  // namespace tachyon::kernels
#endif
