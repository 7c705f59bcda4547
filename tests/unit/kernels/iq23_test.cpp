// IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: the grid tables, the reference kernels against
// straightforward formulas, and the AVX2 kernels bit for bit against the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_checks.h"
#include "real_blocks.h"
#include "base/fp16.h"
#include "kernels/iq_grids.h"
#include "kernels/quant.h"
#include "kernels/quant_iq23.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;
using namespace tachyon::test;

namespace {

const DType kTypes[] = {DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S, DType::IQ3_XXS, DType::IQ3_S};

template <class T>
uint64_t fnv1a64(const T* v, size_t count) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < count; ++i)
    for (size_t b = 0; b < sizeof(T); ++b)
      h = (h ^ ((static_cast<uint64_t>(v[i]) >> (8 * b)) & 0xFF)) * 0x100000001b3ull;
  return h;
}

// Every byte of every entry is one of `levels`, and entries are strictly increasing (so
// distinct), as in llama.cpp's tables.
template <class T>
void check_grid(const T* g, size_t count, std::vector<int> levels, const char* name) {
  for (size_t i = 0; i < count; ++i) {
    for (size_t b = 0; b < sizeof(T); ++b) {
      const int v = static_cast<int>((static_cast<uint64_t>(g[i]) >> (8 * b)) & 0xFF);
      ASSERT_NE(std::find(levels.begin(), levels.end(), v), levels.end()) << name << "[" << i << "] byte " << b;
    }
    if (i > 0) {
      ASSERT_LT(g[i - 1], g[i]) << name << "[" << i << "]";
    }
  }
}

uint32_t u32_at(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint8_t grid_byte(uint64_t entry, int k) { return static_cast<uint8_t>(entry >> (8 * k)); }

float sign_of(uint8_t signs, int k) { return (signs >> k) & 1 ? -1.f : 1.f; }

// Element e of a block, written per element from the format description (llama.cpp's
// dequantize_row_* arithmetic: db * grid * sign).
float element(DType t, const uint8_t* blk, int e) {
  const int c = e / 32, g = (e % 32) / 8, k = e % 8;
  const float d = f16_to_f32(static_cast<f16_t>(blk[0] | blk[1] << 8));
  const uint8_t* p = blk + 2;
  switch (t) {
    case DType::IQ2_XXS: {
      const uint32_t idx = u32_at(p + 8 * c), sg = u32_at(p + 8 * c + 4);
      const float db = d * (0.5f + (sg >> 28)) * 0.25f;
      return db * grid_byte(kIq2xxsGrid[(idx >> (8 * g)) & 255], k) * sign_of(kIq2Signs[(sg >> (7 * g)) & 127], k);
    }
    case DType::IQ2_XS: {
      const uint16_t q = static_cast<uint16_t>(p[8 * c + 2 * g] | p[8 * c + 2 * g + 1] << 8);
      const uint8_t sc = p[64 + c];
      const float db = d * (0.5f + (g < 2 ? sc & 15 : sc >> 4)) * 0.25f;
      return db * grid_byte(kIq2xsGrid[q & 511], k) * sign_of(kIq2Signs[q >> 9], k);
    }
    case DType::IQ2_S: {
      const uint8_t lo = p[4 * c + g], signs = p[32 + 4 * c + g], qh = p[64 + c], sc = p[72 + c];
      const int idx = lo + 256 * ((qh >> (2 * g)) & 3);
      const float db = d * (0.5f + (g < 2 ? sc & 15 : sc >> 4)) * 0.25f;
      return db * grid_byte(kIq2sGrid[idx], k) * sign_of(signs, k);
    }
    case DType::IQ3_XXS: {
      const uint32_t sg = u32_at(p + 64 + 4 * c);
      const float db = d * (0.5f + (sg >> 28)) * 0.5f;
      const uint32_t entry = kIq3xxsGrid[p[8 * c + 2 * g + k / 4]];
      return db * grid_byte(entry, k % 4) * sign_of(kIq2Signs[(sg >> (7 * g)) & 127], k);
    }
    case DType::IQ3_S: {
      const int q = 2 * g + k / 4;  // group of 4 within the chunk
      const uint8_t qh = p[64 + c], signs = p[72 + 4 * c + g], sc = p[104 + c / 2];
      const int idx = p[8 * c + q] + 256 * ((qh >> q) & 1);
      const float db = d * (1 + 2 * (c % 2 == 0 ? sc & 15 : sc >> 4));
      return db * grid_byte(kIq3sGrid[idx], k % 4) * sign_of(signs, k);
    }
    default: return NAN;
  }
}

size_t block_bytes(DType t) { return dtype_info(t).block_bytes; }

// Random blocks: every bit pattern is valid except a non-finite scale, so random bytes
// with a sane d.
std::vector<uint8_t> random_blocks(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(row_bytes(t, n));
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> dd(-0.02f, 0.02f);
  for (size_t i = 0; i < b.size(); i += block_bytes(t)) {
    const f16_t d = f32_to_f16(dd(rng));
    std::memcpy(&b[i], &d, 2);
  }
  return b;
}

// Blocks of each type as llama.cpp's quantizer wrote them (the IQ2_S tensors live in
// the IQ3_XXS file).
const std::vector<uint8_t>& file_blocks(DType t) {
  return t == DType::IQ2_S ? real_blocks("mini-llama-IQ3_XXS", t) : real_blocks(t);
}

// Test weights for n elements: real blocks (the first n / 256 of the file's) or random.
std::vector<uint8_t> weights(DType t, int64_t n, bool real, uint32_t seed) {
  if (!real) return random_blocks(t, n, seed);
  const auto& all = file_blocks(t);
  const size_t bytes = row_bytes(t, n);
  EXPECT_GE(all.size(), bytes) << dtype_info(t).name;
  if (all.size() < bytes) return random_blocks(t, n, seed);
  return std::vector<uint8_t>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(bytes));
}

std::vector<BlockQ8_K> activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  std::vector<BlockQ8_K> a(n / QK_K);
  quantize_q8_K_ref(x.data(), a.data(), n);
  return a;
}

}  // namespace

TEST(Iq23, GridTablesMatchLlamaCpp) {
  // FNV-1a 64 of the little-endian bytes of llama.cpp's tables (ggml-common.h, 68f30663)
  EXPECT_EQ(fnv1a64(kIq2xxsGrid, 256), 0xbb4ee025b5ac6e8eull);
  EXPECT_EQ(fnv1a64(kIq2xsGrid, 512), 0xc9b1ee61e79909bdull);
  EXPECT_EQ(fnv1a64(kIq2sGrid, 1024), 0x123edd38a3b62b90ull);
  EXPECT_EQ(fnv1a64(kIq3xxsGrid, 256), 0xdfa5dc83d6a155d5ull);
  EXPECT_EQ(fnv1a64(kIq3sGrid, 512), 0xfa37020c25b44829ull);
  EXPECT_EQ(fnv1a64(kIq2Signs, 128), 0xf19ba8f8c3292ba5ull);
  check_grid(kIq2xxsGrid, 256, {0x08, 0x19, 0x2b}, "kIq2xxsGrid");
  check_grid(kIq2xsGrid, 512, {0x08, 0x19, 0x2b}, "kIq2xsGrid");
  check_grid(kIq2sGrid, 1024, {0x08, 0x19, 0x2b}, "kIq2sGrid");
  check_grid(kIq3xxsGrid, 256, {4, 12, 20, 28, 36, 44, 52, 62}, "kIq3xxsGrid");
  check_grid(kIq3sGrid, 512, {1, 3, 5, 7, 9, 11, 13, 15}, "kIq3sGrid");
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(kIq2Signs[i] & 127, i);
    EXPECT_EQ(std::popcount(kIq2Signs[i]) % 2, 0) << i;  // an even number of negated weights
  }
}

TEST(Iq23, BlockSizesMatchTheGgufTable) {
  EXPECT_EQ(block_bytes(DType::IQ2_XXS), sizeof(BlockIQ2_XXS));
  EXPECT_EQ(block_bytes(DType::IQ2_XS), sizeof(BlockIQ2_XS));
  EXPECT_EQ(block_bytes(DType::IQ2_S), sizeof(BlockIQ2_S));
  EXPECT_EQ(block_bytes(DType::IQ3_XXS), sizeof(BlockIQ3_XXS));
  EXPECT_EQ(block_bytes(DType::IQ3_S), sizeof(BlockIQ3_S));
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    ASSERT_NE(tt, nullptr) << dtype_info(t).name;
    EXPECT_EQ(tt->vec_dot_type, DType::Q8_K);
    EXPECT_EQ(tt->from_float, nullptr);
  }
}

TEST(Iq23, RealBlocksAreFoundInTheModelFiles) {
  for (DType t : kTypes) EXPECT_GE(file_blocks(t).size(), row_bytes(t, 4096)) << dtype_info(t).name;
}

// The reference dequantizers give the per-element formula's bits, and the SIMD ones the
// reference's.
TEST(Iq23, DequantizeMatchesTheFormula) {
  for (DType t : kTypes)
    for (int64_t n : {256, 512, 4096})
      for (bool real : {false, true}) {
        const auto w = weights(t, n, real, 1 + static_cast<uint32_t>(n));
        std::vector<float> expect(n), ref(n), fast(n);
        for (int64_t e = 0; e < n; ++e) expect[e] = element(t, w.data() + (e / QK_K) * block_bytes(t), e % QK_K);
        type_traits_ref(t)->to_float(w.data(), ref.data(), n);
        type_traits(t)->to_float(w.data(), fast.data(), n);
        ASSERT_EQ(std::memcmp(expect.data(), ref.data(), n * sizeof(float)), 0) << dtype_info(t).name << " n=" << n;
        ASSERT_EQ(std::memcmp(ref.data(), fast.data(), n * sizeof(float)), 0)
            << dtype_info(t).name << " n=" << n << " impl=" << type_traits(t)->impl;
      }
}

// vec_dot_ref is the dot of the dequantized weights and activations (up to float
// summation order), and the dispatched (AVX2) vec_dot gives its bits.
TEST(Iq23, DotMatchesDequantizedDotAndSimdMatchesReference) {
  for (DType t : kTypes)
    for (int64_t n : {256, 512, 4096})
      for (bool real : {false, true}) {
        const auto w = weights(t, n, real, 2 + static_cast<uint32_t>(n));
        const auto a = activations(n, 3 + static_cast<uint32_t>(n));
        std::vector<float> wf(n), af(n);
        type_traits_ref(t)->to_float(w.data(), wf.data(), n);
        dequantize_q8_K_ref(a.data(), af.data(), n);
        double expect = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          expect += double(wf[i]) * af[i];
          mag += std::fabs(double(wf[i]) * af[i]);
        }
        const float ref = type_traits_ref(t)->vec_dot(n, w.data(), a.data());
        EXPECT_NEAR(ref, expect, 1e-5 * mag + 1e-6) << dtype_info(t).name << " n=" << n << " real=" << real;
        const float fast = type_traits(t)->vec_dot(n, w.data(), a.data());
        EXPECT_EQ(std::memcmp(&ref, &fast, sizeof(float)), 0) << dtype_info(t).name << " n=" << n << " ref " << ref
                                                              << " fast " << fast << " impl=" << type_traits(t)->impl;
      }
}

// The rows x tokens form gives vec_dot's bits for every pair, whatever the shape.
TEST(Iq23, DotTileIsBitIdenticalToVecDot) {
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits(t);
    if (!tt->vec_dot_tile) continue;
    for (int64_t n : {256, 512, 4096}) {
      const size_t wb = row_bytes(t, n), ab = row_bytes(DType::Q8_K, n);
      for (auto [nr, nc] : {std::pair{1, 1}, {4, 1}, {11, 7}, {8, 16}, {3, 2}}) {
        std::vector<uint8_t> w(wb * nr), a(ab * nc);
        for (int r = 0; r < nr; ++r) {
          const auto row = weights(t, n, r % 2 == 1, 300 + r);
          std::copy(row.begin(), row.end(), w.begin() + r * wb);
        }
        for (int c = 0; c < nc; ++c) {
          const auto row = activations(n, 700 + c);
          std::memcpy(a.data() + c * ab, row.data(), ab);
        }
        ASSERT_NO_FATAL_FAILURE(expect_tile_is_vec_dot(tt, n, w.data(), wb, nr, a.data(), ab, nc))
            << dtype_info(t).name;
      }
    }
  }
}

TEST(Iq23, ValidateRejectsNonFiniteScales) {
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    ASSERT_NE(tt->validate, nullptr);
    const int64_t n = 4096;
    EXPECT_TRUE(tt->validate(weights(t, n, true, 5).data(), n)) << dtype_info(t).name;
    for (f16_t bad : {f16_t{0x7C00}, f16_t{0xFC00}, f16_t{0x7E00}}) {  // +inf, -inf, NaN
      auto w = random_blocks(t, n, 6);
      EXPECT_TRUE(tt->validate(w.data(), n));
      std::memcpy(&w[5 * block_bytes(t)], &bad, 2);  // d of block 5
      EXPECT_FALSE(tt->validate(w.data(), n)) << dtype_info(t).name << " d=" << bad;
    }
  }
}
