// What the kernel tests share: Gaussian rows, bitwise float equality, whether the AVX2
// kernels are installed, and the check every vec_dot_tile has to pass.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "base/cpu.h"
#include "kernels/traits.h"

namespace tachyon::test {

// n floats drawn from N(0, scale^2) with the given seed.
inline std::vector<float> random_row(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The CPUs the AVX2 kernels are installed on (elsewhere the dispatched kernels are the
// references and the SIMD checks hold trivially).
inline bool has_avx2() { return cpu_features().avx2 && cpu_features().fma && cpu_features().f16c; }

// tt->vec_dot_tile over nr weight rows (from w, wb bytes apart) x nc activation rows
// (from a, ab bytes apart) gives every pair the bits of tt->vec_dot and writes nothing
// outside the block. Call through ASSERT_NO_FATAL_FAILURE to stop at the first mismatch.
inline void expect_tile_is_vec_dot(const kernels::TypeTraits* tt, int64_t n, const uint8_t* w, size_t wb, int nr,
                                   const uint8_t* a, size_t ab, int nc) {
  const int64_t ld = nr + 3;
  std::vector<float> out(static_cast<size_t>(nc) * ld, -7.f);
  tt->vec_dot_tile(n, nr, nc, w, wb, a, ab, out.data(), ld);
  for (int c = 0; c < nc; ++c) {
    for (int r = 0; r < nr; ++r)
      ASSERT_TRUE(same_bits(tt->vec_dot(n, w + r * wb, a + c * ab), out[c * ld + r]))
          << "n=" << n << " block " << nr << "x" << nc << " r=" << r << " c=" << c;
    for (int r = nr; r < ld; ++r) ASSERT_EQ(out[c * ld + r], -7.f) << "wrote outside the block";
  }
}

}  // namespace tachyon::test
