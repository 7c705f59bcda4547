// IQ1_S, IQ1_M, TQ1_0, TQ2_0: the grid table, dequantization against a direct reading
// of the bit layout, reference dots against float dots, every SIMD variant bitwise against
// the reference, quantizers and validation. Blocks come both from random bytes (every bit
// pattern but the scales is valid) and from the mini-llama model files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_checks.h"
#include "real_blocks.h"
#include "kernels/quant_iq1tq.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;
using namespace tachyon::test;

namespace {

const DType kTypes[] = {DType::IQ1_S, DType::IQ1_M, DType::TQ1_0, DType::TQ2_0};
const int64_t kSizes[] = {256, 512, 4096};

// ---- random blocks

// Writes the super-block scale of a block of type t (IQ1_M: the top nibbles of its 4 scale
// words, bytes 1, 3, 5, 7 of `scales`).
void put_scale(DType t, uint8_t* b, f16_t d) {
  if (t == DType::IQ1_M) {
    uint8_t* sc = b + offsetof(BlockIQ1_M, scales);
    for (int k = 0; k < 4; ++k)
      sc[2 * k + 1] = static_cast<uint8_t>((sc[2 * k + 1] & 0x0F) | ((d >> (4 * k)) & 0xF) << 4);
    return;
  }
  const size_t off = t == DType::IQ1_S   ? offsetof(BlockIQ1_S, d)
                     : t == DType::TQ1_0 ? offsetof(BlockTQ1_0, d)
                                         : offsetof(BlockTQ2_0, d);
  std::memcpy(b + off, &d, 2);
}

std::vector<uint8_t> random_blocks(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(row_bytes(t, n));
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  // random bytes may hold NaN/Inf scales: use sane ones
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  for (int64_t i = 0; i < n / QK_K; ++i) put_scale(t, v.data() + i * dtype_info(t).block_bytes, f32_to_f16(scale(rng)));
  return v;
}

// n elements of the blocks of t's model file, starting at block `first` (wrapping around).
std::vector<uint8_t> real_row(DType t, int64_t n, int64_t first) {
  const auto& all = real_blocks(t);
  const size_t bb = dtype_info(t).block_bytes;
  const int64_t have = static_cast<int64_t>(all.size() / bb);
  if (have == 0) throw std::runtime_error("mini-llama-" + std::string(dtype_info(t).name) + ": no blocks of its type");
  std::vector<uint8_t> v(row_bytes(t, n));
  for (int64_t i = 0; i < n / QK_K; ++i) std::memcpy(v.data() + i * bb, all.data() + ((first + i) % have) * bb, bb);
  return v;
}

// Test rows: random ones and real ones.
std::vector<std::vector<uint8_t>> weight_rows(DType t, int64_t n) {
  std::vector<std::vector<uint8_t>> rows;
  for (uint32_t s = 0; s < 3; ++s) rows.push_back(random_blocks(t, n, 100 + s));
  for (int64_t first : {0, 37, 1000}) rows.push_back(real_row(t, n, first));
  return rows;
}

std::vector<uint8_t> q8k_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  std::vector<uint8_t> out(row_bytes(DType::Q8_K, n));
  type_traits_ref(DType::Q8_K)->from_float(x.data(), out.data(), n);
  return out;
}

// ---- the layouts read directly from their description in ggml-common.h

int8_t grid_value(int index, int j) { return static_cast<int8_t>(kIq1sGrid[index] >> (8 * j)); }

// Element e of a block of type t, from the raw bytes.
float direct_value(DType t, const uint8_t* b, int e) {
  const int ib = e / 32, l = (e % 32) / 8, j = e % 8;
  switch (t) {
    case DType::IQ1_S: {
      f16_t d;
      uint16_t qh;
      std::memcpy(&d, b, 2);
      std::memcpy(&qh, b + 2 + 32 + 2 * ib, 2);
      const int index = b[2 + 4 * ib + l] + 256 * ((qh >> (3 * l)) % 8);
      const float ls = static_cast<float>(2 * ((qh >> 12) % 8) + 1);
      const float delta = qh >= 0x8000 ? -0.125f : 0.125f;
      return f16_to_f32(d) * ls * (grid_value(index, j) + delta);
    }
    case DType::IQ1_M: {
      const uint8_t* qs = b;
      const uint8_t* qh = b + 32;
      const uint8_t* sc = b + 48;
      const f16_t d = static_cast<f16_t>((sc[1] >> 4) | (sc[3] >> 4) << 4 | (sc[5] >> 4) << 8 | (sc[7] >> 4) << 12);
      const uint8_t nib = (qh[2 * ib + l / 2] >> (4 * (l % 2))) & 0xF;
      const int index = qs[4 * ib + l] + 256 * (nib % 8);
      const uint16_t word = static_cast<uint16_t>(sc[2 * (ib / 2)] | sc[2 * (ib / 2) + 1] << 8);
      const int s3 = (word >> (6 * (ib % 2) + 3 * (l / 2))) % 8;
      const float delta = nib >= 8 ? -0.125f : 0.125f;
      return f16_to_f32(d) * static_cast<float>(2 * s3 + 1) * (grid_value(index, j) + delta);
    }
    case DType::TQ1_0: {
      // each byte is ceil(v * 256 / 243) of a 5-trit base-3 number v (first trit most
      // significant), so v = (q * 243) >> 8; qh bytes hold 4 trits and a zero
      int byte, digit;
      if (e < 160) {
        byte = e % 32, digit = e / 32;
      } else if (e < 240) {
        byte = 32 + (e - 160) % 16, digit = (e - 160) / 16;
      } else {
        byte = 48 + (e - 240) % 4, digit = (e - 240) / 4;
      }
      const int v = (b[byte] * 243) >> 8;
      int p = 1;
      for (int k = digit; k < 4; ++k) p *= 3;
      f16_t d;
      std::memcpy(&d, b + 52, 2);
      return static_cast<float>((v / p) % 3 - 1) * f16_to_f32(d);
    }
    case DType::TQ2_0: {
      const int q = (b[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      f16_t d;
      std::memcpy(&d, b + 64, 2);
      return static_cast<float>(q - 1) * f16_to_f32(d);
    }
    default:
      return NAN;
  }
}

}  // namespace

TEST(Iq1Tq, BlockSizesMatchTheGgufTable) {
  EXPECT_EQ(dtype_info(DType::IQ1_S).block_bytes, sizeof(BlockIQ1_S));
  EXPECT_EQ(dtype_info(DType::IQ1_M).block_bytes, sizeof(BlockIQ1_M));
  EXPECT_EQ(dtype_info(DType::TQ1_0).block_bytes, sizeof(BlockTQ1_0));
  EXPECT_EQ(dtype_info(DType::TQ2_0).block_bytes, sizeof(BlockTQ2_0));
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    ASSERT_NE(tt, nullptr) << dtype_info(t).name;
    EXPECT_EQ(tt->vec_dot_type, DType::Q8_K);
    EXPECT_NE(tt->validate, nullptr);
  }
}

// The transcribed grid: its checksum (FNV-1a 64 over the little-endian bytes, as in
// ggml-common.h), every weight in {-1, 0, 1}, all entries distinct.
TEST(Iq1Tq, GridTable) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t e : kIq1sGrid)
    for (int j = 0; j < 8; ++j) {
      h ^= (e >> (8 * j)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  EXPECT_EQ(h, 0x6703ed863501ae2eull);
  for (int k = 0; k < kIq1sGridSize; ++k)
    for (int j = 0; j < 8; ++j) {
      const int v = grid_value(k, j);
      ASSERT_TRUE(v == -1 || v == 0 || v == 1) << k;
    }
  std::vector<uint64_t> sorted(std::begin(kIq1sGrid), std::end(kIq1sGrid));
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

TEST(Iq1Tq, ModelFilesHoldBlocks) {
  for (DType t : kTypes) EXPECT_GE(real_blocks(t).size() / dtype_info(t).block_bytes, 64u) << dtype_info(t).name;
}

TEST(Iq1Tq, DequantizeMatchesTheLayout) {
  for (DType t : kTypes)
    for (int64_t n : kSizes)
      for (const auto& w : weight_rows(t, n)) {
        std::vector<float> y(n);
        type_traits_ref(t)->to_float(w.data(), y.data(), n);
        const size_t bb = dtype_info(t).block_bytes;
        for (int64_t e = 0; e < n; ++e)
          ASSERT_EQ(y[e], direct_value(t, w.data() + (e / QK_K) * bb, static_cast<int>(e % QK_K)))
              << dtype_info(t).name << " n=" << n << " e=" << e;
      }
}

// The reference dot equals the dot of dequantized weights and activations up to float
// rounding (its integer sums are exact).
TEST(Iq1Tq, RefDotMatchesDequantizedDot) {
  for (DType t : kTypes)
    for (int64_t n : kSizes) {
      const auto a = q8k_row(n, 5);
      std::vector<float> af(n), wf(n);
      type_traits_ref(DType::Q8_K)->to_float(a.data(), af.data(), n);
      for (const auto& w : weight_rows(t, n)) {
        type_traits_ref(t)->to_float(w.data(), wf.data(), n);
        double dot = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          dot += double(wf[i]) * af[i];
          mag += std::fabs(double(wf[i]) * af[i]);
        }
        const float r = type_traits_ref(t)->vec_dot(n, w.data(), a.data());
        EXPECT_NEAR(r, dot, 1e-5 * mag + 1e-6) << dtype_info(t).name << " n=" << n;
      }
    }
}

// Every SIMD variant gives the reference's bits: same integer sums, same float steps.
TEST(Iq1Tq, SimdDotIsBitIdenticalToRef) {
  for (DType t : kTypes) {
    if (has_avx2()) {
      EXPECT_STREQ(type_traits(t)->impl, "avx2") << dtype_info(t).name;
    }
    for (const KernelVariant& v : kernel_variants(t)) {
      SCOPED_TRACE(std::string(dtype_info(t).name) + " variant " + v.isa);
      for (int64_t n : kSizes)
        for (uint32_t seed : {1u, 2u, 3u}) {
          const auto a = q8k_row(n, seed);
          for (const auto& w : weight_rows(t, n)) {
            const float r = type_traits_ref(t)->vec_dot(n, w.data(), a.data());
            const float f = v.traits->vec_dot(n, w.data(), a.data());
            ASSERT_EQ(std::memcmp(&r, &f, sizeof r), 0) << "n=" << n << " ref " << r << " simd " << f;
          }
        }
    }
  }
}

// Extreme activations: Q8_K quants at +-127 against the largest weights.
TEST(Iq1Tq, SimdDotIsBitIdenticalAtExtremes) {
  const int64_t n = 4096;
  for (DType t : kTypes)
    for (const KernelVariant& v : kernel_variants(t))
      for (int sign : {1, -1}) {
        std::vector<float> x(n);
        for (int64_t i = 0; i < n; ++i) x[i] = sign * ((i % 3) ? 1.f : -1.f);
        std::vector<uint8_t> a(row_bytes(DType::Q8_K, n));
        type_traits_ref(DType::Q8_K)->from_float(x.data(), a.data(), n);
        for (const auto& w : weight_rows(t, n)) {
          const float r = type_traits_ref(t)->vec_dot(n, w.data(), a.data());
          const float f = v.traits->vec_dot(n, w.data(), a.data());
          ASSERT_EQ(std::memcmp(&r, &f, sizeof r), 0) << dtype_info(t).name << " variant " << v.isa;
        }
      }
}

TEST(Iq1Tq, DotTileIsBitIdenticalToVecDot) {
  for (DType t : kTypes)
    for (const KernelVariant& v : kernel_variants(t)) {
      const TypeTraits* tt = v.traits;
      if (!tt->vec_dot_tile) continue;
      SCOPED_TRACE(std::string(dtype_info(t).name) + " variant " + v.isa);
      for (int64_t n : kSizes) {
        const size_t wb = row_bytes(t, n), ab = row_bytes(DType::Q8_K, n);
        for (auto [nr, nc] : {std::pair{1, 1}, {4, 1}, {11, 7}, {8, 16}, {3, 2}}) {
          std::vector<uint8_t> w(wb * nr), a(ab * nc);
          for (int r = 0; r < nr; ++r) {
            const auto row = r % 2 ? random_blocks(t, n, 300 + r) : real_row(t, n, 16 * r);
            std::copy(row.begin(), row.end(), w.begin() + r * wb);
          }
          for (int c = 0; c < nc; ++c) {
            const auto row = q8k_row(n, 700 + c);
            std::copy(row.begin(), row.end(), a.begin() + c * ab);
          }
          ASSERT_NO_FATAL_FAILURE(expect_tile_is_vec_dot(tt, n, w.data(), wb, nr, a.data(), ab, nc));
        }
      }
    }
}

// The ternary quantizers: scale max|x|, each weight round(x / max) (halves away from zero).
TEST(Iq1Tq, TernaryQuantizersRoundToTheScale) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (DType t : {DType::TQ1_0, DType::TQ2_0})
    for (int64_t n : kSizes) {
      std::vector<float> x(n);
      for (auto& v : x) v = nd(rng);
      // exact halves (x / amax = +-0.5) round away from zero
      x[0] = 8.f, x[1] = 4.f, x[2] = -4.f;
      std::vector<uint8_t> q(row_bytes(t, n));
      type_traits_ref(t)->from_float(x.data(), q.data(), n);
      std::vector<float> y(n);
      type_traits_ref(t)->to_float(q.data(), y.data(), n);
      for (int64_t i0 = 0; i0 < n; i0 += QK_K) {
        float amax = 0;
        for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(x[i0 + j]));
        const float d = f16_to_f32(f32_to_f16(amax));
        for (int j = 0; j < QK_K; ++j)
          ASSERT_EQ(y[i0 + j], static_cast<float>(std::lround(x[i0 + j] * (1 / amax))) * d)
              << dtype_info(t).name << " element " << i0 + j;
      }
    }
}

// Real blocks come from llama.cpp's quantizer: dequantizing and quantizing again gives
// back their bytes (the same packing, including TQ1_0's base-3 bytes).
TEST(Iq1Tq, TernaryQuantizersReproduceModelBlocks) {
  for (DType t : {DType::TQ1_0, DType::TQ2_0}) {
    const int64_t n = 64 * QK_K;
    const auto w = real_row(t, n, 0);
    std::vector<float> y(n);
    type_traits_ref(t)->to_float(w.data(), y.data(), n);
    std::vector<uint8_t> q(w.size());
    type_traits_ref(t)->from_float(y.data(), q.data(), n);
    EXPECT_EQ(q, w) << dtype_info(t).name;
  }
}

TEST(Iq1Tq, ValidateRejectsNonFiniteScales) {
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    const int64_t n = 4096;
    auto w = real_row(t, n, 0);
    EXPECT_TRUE(tt->validate(w.data(), n)) << dtype_info(t).name;
    EXPECT_TRUE(tt->validate(random_blocks(t, n, 4).data(), n)) << dtype_info(t).name;
    const size_t bb = dtype_info(t).block_bytes;
    for (f16_t bad : {f16_t{0x7E00}, f16_t{0x7C00}, f16_t{0xFC00}}) {
      auto v = w;
      put_scale(t, v.data() + 5 * bb, bad);
      if (t == DType::IQ1_M) {
        EXPECT_EQ(iq1m_scale(reinterpret_cast<const BlockIQ1_M*>(v.data())[5]), bad);
      }
      EXPECT_FALSE(tt->validate(v.data(), n)) << dtype_info(t).name << " scale " << bad;
    }
  }
}
