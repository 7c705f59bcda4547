// The AVX2 kernels over the Lx8 layouts (packed_legacy_impl.h): maddubs + madd as the
// integer dot; for two pieces of 5-bit or 4-bit unsigned quants the maddubs pair sums
// (|.| <= 2*2*31*127) add as 16-bit before the one madd.
#if defined(__x86_64__)
#include "kernels/packed_legacy_impl.h"

namespace tachyon::kernels {
namespace {
struct DpLegacyAvx2 {
  static __m256i dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
  static __m256i dot2(__m256i acc, __m256i u0, __m256i s0, __m256i u1, __m256i s1) {
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(u0, s0), _mm256_maddubs_epi16(u1, s1));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};
}  // namespace

void install_packed_legacy_avx2(PackedKernels* table) { install_packed_legacy<DpLegacyAvx2>(table, "avx2"); }

}  // namespace tachyon::kernels
#endif  // __x86_64__
