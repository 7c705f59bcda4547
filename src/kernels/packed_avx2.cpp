// Packed-layout kernels for AVX2 + FMA + F16C (maddubs + madd as the integer dot).
#if defined(__x86_64__)
#include "kernels/packed_impl.h"

namespace tachyon::kernels {
namespace {
struct DpAvx2 {
  // acc + 4-way sums of u8 x s8 products (no saturation for |u| < 128 or nibbles).
  static __m256i dot(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};
}  // namespace

void install_packed_avx2(PackedKernels* t) {
  install_packed_8row<DpAvx2, 4, 2>(t, "avx2");
  install_packed_x16_avx2(t);
  install_packed_q5k_avx2(&t[static_cast<int>(DType::Q5_K)]);
  install_packed_legacy_avx2(t);
  install_packed_iq3_avx2(t);
}

}  // namespace tachyon::kernels
#endif
