// The legacy family (Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, Q1_0 and the Q8_1 activations):
// formats against independent formulas and hand-computed blocks, reference dots against
// dequantized dots, and every AVX2 kernel bitwise against its reference twin, on random
// blocks and on the blocks of llama.cpp-made model files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_checks.h"
#include "real_blocks.h"
#include "base/fp16.h"
#include "kernels/quant_legacy.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;
using namespace tachyon::test;

namespace {

const DType kTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::MXFP4, DType::Q1_0};
const int64_t kSizes[] = {256, 512, 4096};

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x, bool fast = false) {
  const TypeTraits* tt = fast ? type_traits(t) : type_traits_ref(t);
  std::vector<uint8_t> out(row_bytes(t, static_cast<int64_t>(x.size())));
  tt->from_float(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> dequantize(const TypeTraits* tt, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(n);
  tt->to_float(q.data(), y.data(), n);
  return y;
}

// Random bytes with every scale replaced by a sane value (all other bit patterns are
// valid in these formats).
std::vector<uint8_t> random_blocks(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(row_bytes(t, n));
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(0.001f, 0.05f), shift(-0.5f, 0.5f);
  const int64_t nb = n / dtype_info(t).block_elems;
  auto fix = [&](auto* blk) {
    for (int64_t i = 0; i < nb; ++i) {
      if constexpr (requires { blk[i].e; }) {
        blk[i].e = static_cast<uint8_t>(110 + rng() % 20);
      } else {
        blk[i].d = f32_to_f16(scale(rng));
        if constexpr (requires { blk[i].m; }) blk[i].m = f32_to_f16(shift(rng));
      }
    }
  };
  switch (t) {
    case DType::Q4_1: fix(reinterpret_cast<BlockQ4_1*>(b.data())); break;
    case DType::Q5_0: fix(reinterpret_cast<BlockQ5_0*>(b.data())); break;
    case DType::Q5_1: fix(reinterpret_cast<BlockQ5_1*>(b.data())); break;
    case DType::IQ4_NL: fix(reinterpret_cast<BlockIQ4_NL*>(b.data())); break;
    case DType::MXFP4: fix(reinterpret_cast<BlockMXFP4*>(b.data())); break;
    case DType::Q1_0: fix(reinterpret_cast<BlockQ1_0*>(b.data())); break;
    default: ADD_FAILURE() << "no random blocks for " << dtype_info(t).name;
  }
  return b;
}

// The SIMD variants of t's kernels this CPU runs (the registry's entries after the
// reference).
std::vector<KernelVariant> simd_variants(DType t) {
  auto v = kernel_variants(t);
  v.erase(v.begin());
  return v;
}

// Element j of a block by the formats' definitions, written out independently of the
// kernels: nibble j % 16 of the 16 quant bytes (low half first), bit j of qh.
int nibble(const uint8_t* qs, int j) { return (qs[j % 16] >> (4 * (j / 16))) & 0xF; }
int high_bit(const uint8_t* qh, int j) { return (qh[j / 8] >> (j % 8)) & 1; }

float expected_element(DType t, const uint8_t* blk, int j) {
  switch (t) {
    case DType::Q4_1: {
      const auto& b = *reinterpret_cast<const BlockQ4_1*>(blk);
      return nibble(b.qs, j) * f16_to_f32(b.d) + f16_to_f32(b.m);
    }
    case DType::Q5_0: {
      const auto& b = *reinterpret_cast<const BlockQ5_0*>(blk);
      return (nibble(b.qs, j) + 16 * high_bit(b.qh, j) - 16) * f16_to_f32(b.d);
    }
    case DType::Q5_1: {
      const auto& b = *reinterpret_cast<const BlockQ5_1*>(blk);
      return (nibble(b.qs, j) + 16 * high_bit(b.qh, j)) * f16_to_f32(b.d) + f16_to_f32(b.m);
    }
    case DType::IQ4_NL: {
      const auto& b = *reinterpret_cast<const BlockIQ4_NL*>(blk);
      return f16_to_f32(b.d) * kIq4nlValues[nibble(b.qs, j)];
    }
    case DType::MXFP4: {
      const auto& b = *reinterpret_cast<const BlockMXFP4*>(blk);
      // E2M1 doubled times 2^(e - 128)
      return kMxfp4Values[nibble(b.qs, j)] * std::ldexp(1.0f, b.e - 128);
    }
    case DType::Q1_0: {
      const auto& b = *reinterpret_cast<const BlockQ1_0*>(blk);
      return high_bit(b.qs, j) ? f16_to_f32(b.d) : -f16_to_f32(b.d);
    }
    default: return NAN;
  }
}

// Activations of type t's vec_dot_type for a random row.
std::vector<uint8_t> random_acts(DType t, int64_t n, uint32_t seed) {
  return quantize(type_traits_ref(t)->vec_dot_type, random_row(n, seed));
}

uint64_t fnv1a64(const void* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

TEST(Legacy, BlockSizesAndTraitsEntries) {
  EXPECT_EQ(dtype_info(DType::Q4_1).block_bytes, sizeof(BlockQ4_1));
  EXPECT_EQ(dtype_info(DType::Q5_0).block_bytes, sizeof(BlockQ5_0));
  EXPECT_EQ(dtype_info(DType::Q5_1).block_bytes, sizeof(BlockQ5_1));
  EXPECT_EQ(dtype_info(DType::Q8_1).block_bytes, sizeof(BlockQ8_1));
  EXPECT_EQ(dtype_info(DType::IQ4_NL).block_bytes, sizeof(BlockIQ4_NL));
  EXPECT_EQ(dtype_info(DType::MXFP4).block_bytes, sizeof(BlockMXFP4));
  EXPECT_EQ(dtype_info(DType::Q1_0).block_bytes, sizeof(BlockQ1_0));
  EXPECT_EQ(dtype_info(DType::Q1_0).block_elems, static_cast<uint32_t>(QK1_0));
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    ASSERT_NE(tt, nullptr) << dtype_info(t).name;
    EXPECT_EQ(tt->type, t);
    EXPECT_TRUE(tt->to_float && tt->from_float && tt->vec_dot && tt->validate) << dtype_info(t).name;
    const DType want = t == DType::Q4_1 || t == DType::Q5_1 ? DType::Q8_1 : DType::Q8_0;
    EXPECT_EQ(tt->vec_dot_type, want) << dtype_info(t).name;
    if (has_avx2()) {
      const auto v = simd_variants(t);
      ASSERT_FALSE(v.empty()) << dtype_info(t).name;
      EXPECT_STREQ(v.front().traits->impl, "avx2") << dtype_info(t).name;
    }
  }
  const TypeTraits* q81 = type_traits_ref(DType::Q8_1);
  ASSERT_NE(q81, nullptr);
  EXPECT_EQ(q81->vec_dot_type, DType::Q8_1);
  EXPECT_TRUE(q81->to_float && q81->from_float);
  EXPECT_EQ(q81->vec_dot, nullptr);
}

TEST(Legacy, ValueTablesAreTheGgmlTables) {
  EXPECT_EQ(fnv1a64(kIq4nlValues, 16), 0x055d06d2d8fa0f75ull);
  EXPECT_EQ(fnv1a64(kMxfp4Values, 16), 0x3f0e3c08af1e5eb5ull);
  for (int i = 1; i < 16; ++i) EXPECT_LT(kIq4nlValues[i - 1], kIq4nlValues[i]);
  EXPECT_EQ(kIq4nlValues[0], -127);  // |q| <= 127: the sign trick of the dot products holds
  // E2M1 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 doubled; the sign bit negates
  const int8_t e2m1x2[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(kMxfp4Values[i], e2m1x2[i]);
    EXPECT_EQ(kMxfp4Values[i + 8], -e2m1x2[i]);
  }
}

TEST(Legacy, E8M0HalfIsTwoToTheEMinus128) {
  for (int e = 0; e < 255; ++e) EXPECT_EQ(e8m0_to_f32_half(static_cast<uint8_t>(e)), std::ldexp(1.0f, e - 128)) << e;
  EXPECT_EQ(e8m0_to_f32_half(128), 1.0f);
  EXPECT_EQ(e8m0_to_f32_half(0), std::ldexp(1.0f, -128));  // subnormal
}

// Dequantization follows the formats' definitions; the AVX2 one gives the same bits.
TEST(Legacy, DequantizeMatchesFormulaAndSimdMatchesReference) {
  for (DType t : kTypes) {
    const uint32_t be = dtype_info(t).block_elems, bb = dtype_info(t).block_bytes;
    for (int64_t n : kSizes) {
      for (int src = 0; src < 2; ++src) {
        const auto q = src == 0 ? random_blocks(t, n, 1 + static_cast<uint32_t>(n)) : quantize(t, random_row(n, 2));
        const auto y = dequantize(type_traits_ref(t), q, n);
        for (int64_t i = 0; i < n; ++i) {
          const float e = expected_element(t, q.data() + (i / be) * bb, static_cast<int>(i % be));
          ASSERT_EQ(y[i], e) << dtype_info(t).name << " n=" << n << " i=" << i;
        }
        for (const KernelVariant& v : simd_variants(t)) {
          const auto yf = dequantize(v.traits, q, n);
          ASSERT_EQ(std::memcmp(y.data(), yf.data(), n * sizeof(float)), 0) << dtype_info(t).name << " " << v.isa;
        }
      }
    }
  }
}

// MXFP4 has no model file: blocks computed by hand.
TEST(Legacy, Mxfp4HandComputedBlocks) {
  BlockMXFP4 w[2];
  w[0].e = 128;  // scale 2^0 on the doubled values: y = E2M1 * 2
  w[1].e = 126;  // 2^-2
  for (int j = 0; j < 16; ++j) w[0].qs[j] = w[1].qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[64];
  dequantize_mxfp4_ref(w, y, 64);
  const float first[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], first[j]);
    EXPECT_EQ(y[16 + j], first[15 - j]);
    EXPECT_EQ(y[32 + j], first[j] / 4);
  }
  // activations: d = 0.5; block 0: q = 1 on elements 0..7 (sum of values 36 -> 18);
  // block 1: q = 3 on element 16 (value -12 -> -36 * 0.25 * 0.5 = -4.5)
  BlockQ8_0 a[2] = {};
  a[0].d = a[1].d = f32_to_f16(0.5f);
  for (int j = 0; j < 8; ++j) a[0].qs[j] = 1;
  a[1].qs[16] = 3;
  for (const KernelVariant& v : kernel_variants(DType::MXFP4)) EXPECT_EQ(v.traits->vec_dot(64, w, a), 13.5f) << v.isa;
  // the quantizer takes e = floor(log2 amax) - 2 + 127 and the nearest levels
  const float x[32] = {5.9f, -3.1f, 0.24f, 0.26f, 1.0f, -6.0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                       0,    0,     0,     0,     0,    0,     0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  BlockMXFP4 q;
  quantize_mxfp4_ref(x, &q, 32);
  EXPECT_EQ(q.e, 127);  // floor(log2 6) - 2 + 127
  dequantize_mxfp4_ref(&q, y, 32);
  const float want[6] = {6.0f, -3.0f, 0.0f, 0.5f, 1.0f, -6.0f};
  for (int j = 0; j < 6; ++j) EXPECT_EQ(y[j], want[j]) << j;
}

// Quantizers: every element within half a step of its value, and a bounded RMS error.
TEST(Legacy, WeightQuantizersRoundTrip) {
  const int64_t n = 4096;
  const auto x = random_row(n, 3);
  for (DType t : kTypes) {
    const auto q = quantize(t, x);
    const auto y = dequantize(type_traits_ref(t), q, n);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; ++i) {
      se += double(y[i] - x[i]) * (y[i] - x[i]);
      sx += double(x[i]) * x[i];
    }
    const double rel = std::sqrt(se / sx);
    const double tol = t == DType::Q1_0                       ? 0.65
                       : t == DType::MXFP4                    ? 0.15
                       : t == DType::Q5_0 || t == DType::Q5_1 ? 0.05
                                                              : 0.11;
    EXPECT_LE(rel, tol) << dtype_info(t).name;
  }
  // the linear formats: elements within half a step (plus the f16 rounding of d and m)
  for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q5_1}) {
    const auto q = quantize(t, x);
    const auto y = dequantize(type_traits_ref(t), q, n);
    const size_t bb = dtype_info(t).block_bytes;
    for (int64_t i = 0; i < n; ++i) {
      const float d = std::fabs(f16_to_f32(*reinterpret_cast<const f16_t*>(q.data() + (i / 32) * bb)));
      // Q5_0 clamps q = 32 (an element of the sign opposite to the largest one) to 31
      const float steps = t == DType::Q5_0 ? 1.0f : 0.5f;
      ASSERT_LE(std::fabs(y[i] - x[i]), (steps + 0.02f) * d + 2e-3f) << dtype_info(t).name << " i=" << i;
    }
  }
  // Q1_0: the sign of each weight and the mean magnitude of its block
  BlockQ1_0 b;
  std::vector<float> v(QK1_0);
  for (int j = 0; j < QK1_0; ++j) v[j] = j % 3 == 0 ? -0.5f : 1.25f;
  quantize_q1_0_ref(v.data(), &b, QK1_0);
  float mean = 0;
  for (float f : v) mean += std::fabs(f);
  EXPECT_EQ(f16_to_f32(b.d), f16_to_f32(f32_to_f16(mean / QK1_0)));
  for (int j = 0; j < QK1_0; ++j) EXPECT_EQ(high_bit(b.qs, j), j % 3 == 0 ? 0 : 1) << j;
}

// IQ4_NL's quantizer is what llama-quantize runs (quantize_iq4_nl's scale search, not
// quantize_row_iq4_nl_ref's single fit): it writes the test model's blocks again from the
// F16 weights, and an all-zero block gets d = 0 and every index at the level nearest 0.
TEST(Legacy, Iq4NlQuantizerReproducesLlamaCppFile) {
  const auto g = open_model("mini-llama-IQ4_NL");
  int n_tensors = 0;
  for (const auto& t : g->tensors()) {
    if (t.type != DType::IQ4_NL) continue;
    const auto x = f16_weights(t.name);
    ASSERT_EQ(static_cast<int64_t>(x.size()), t.n_elements()) << t.name;
    const auto q = quantize(DType::IQ4_NL, x);
    ASSERT_EQ(q.size(), t.n_bytes) << t.name;
    EXPECT_EQ(std::memcmp(q.data(), t.data, q.size()), 0) << t.name;
    ++n_tensors;
  }
  EXPECT_GT(n_tensors, 0);
  const float zero[32] = {};
  BlockIQ4_NL b;
  quantize_iq4_nl_ref(zero, &b, 32);
  EXPECT_EQ(b.d, 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], 0x88) << j;
}

// The reference dot products equal the dot of the dequantized rows (up to float order;
// Q8_1's min terms go through its f16 sum s).
TEST(Legacy, RefDotMatchesDequantizedDot) {
  for (DType t : kTypes) {
    for (int64_t n : kSizes) {
      const TypeTraits* tt = type_traits_ref(t);
      const auto w = quantize(t, random_row(n, 11));
      const auto a = random_acts(t, n, 12);
      const auto wf = dequantize(tt, w, n);
      const auto af = dequantize(type_traits_ref(tt->vec_dot_type), a, n);
      double expect = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        expect += double(wf[i]) * af[i];
        mag += std::fabs(double(wf[i]) * af[i]);
      }
      const double tol = tt->vec_dot_type == DType::Q8_1 ? 2e-3 * mag : 1e-5 * mag + 1e-6;
      EXPECT_NEAR(tt->vec_dot(n, w.data(), a.data()), expect, tol) << dtype_info(t).name << " n=" << n;
    }
  }
}

// The SIMD dot products give the reference's bits, on random blocks, on quantized rows and
// on the blocks of the llama.cpp-made model files.
TEST(Legacy, SimdDotIsBitIdenticalToReference) {
  if (!has_avx2()) GTEST_SKIP() << "no AVX2";
  for (DType t : kTypes)
    for (const KernelVariant& v : simd_variants(t)) {
      SCOPED_TRACE(v.isa);
      const TypeTraits* ref = type_traits_ref(t);
      const TypeTraits* fast = v.traits;
      std::vector<std::vector<uint8_t>> rows;
      for (int64_t n : kSizes) {
        rows = {random_blocks(t, n, 40 + static_cast<uint32_t>(n)), quantize(t, random_row(n, 41))};
        for (size_t k = 0; k < rows.size(); ++k) {
          const auto a = random_acts(t, n, 42 + static_cast<uint32_t>(k));
          const float r = ref->vec_dot(n, rows[k].data(), a.data());
          const float f = fast->vec_dot(n, rows[k].data(), a.data());
          ASSERT_TRUE(same_bits(r, f)) << dtype_info(t).name << " n=" << n << " row " << k << ": " << r << " vs " << f;
        }
      }
      if (t == DType::MXFP4) continue;  // no model file
      const auto& real = real_blocks(t);
      ASSERT_GE(real.size(), row_bytes(t, 4096) * 8) << dtype_info(t).name;
      for (int64_t n : kSizes) {
        const size_t rb = row_bytes(t, n);
        for (size_t off = 0, k = 0; off + rb <= real.size() && k < 64; off += rb, ++k) {
          const auto a = random_acts(t, n, 500 + static_cast<uint32_t>(k));
          const float r = ref->vec_dot(n, real.data() + off, a.data());
          const float f = fast->vec_dot(n, real.data() + off, a.data());
          ASSERT_TRUE(same_bits(r, f)) << dtype_info(t).name << " file row " << k << " n=" << n << ": " << r << " vs "
                                       << f;
        }
      }
      std::vector<float> y(real.size() / dtype_info(t).block_bytes * dtype_info(t).block_elems), yf(y.size());
      ref->to_float(real.data(), y.data(), static_cast<int64_t>(y.size()));
      fast->to_float(real.data(), yf.data(), static_cast<int64_t>(y.size()));
      ASSERT_EQ(std::memcmp(y.data(), yf.data(), y.size() * sizeof(float)), 0) << dtype_info(t).name;
    }
}

// The rows x tokens form gives exactly the bits of the single dot product, whatever the
// block shape.
TEST(Legacy, DotTileIsBitIdenticalToVecDot) {
  for (DType t : kTypes)
    for (const KernelVariant& v : kernel_variants(t)) {
      SCOPED_TRACE(v.isa);
      const TypeTraits* tt = v.traits;
      if (!tt->vec_dot_tile) continue;
      const DType at = tt->vec_dot_type;
      for (int64_t n : kSizes) {
        const size_t wb = row_bytes(t, n), ab = row_bytes(at, n);
        for (auto [nr, nc] : {std::pair{1, 1}, {4, 1}, {11, 7}, {8, 16}, {3, 2}}) {
          std::vector<uint8_t> w(wb * nr), a(ab * nc);
          for (int r = 0; r < nr; ++r) {
            const auto row = r % 2 ? random_blocks(t, n, 300 + r) : quantize(t, random_row(n, 300 + r));
            std::copy(row.begin(), row.end(), w.begin() + r * wb);
          }
          for (int c = 0; c < nc; ++c) {
            const auto row = quantize(at, random_row(n, 700 + c), true);
            std::copy(row.begin(), row.end(), a.begin() + c * ab);
          }
          ASSERT_NO_FATAL_FAILURE(expect_tile_is_vec_dot(tt, n, w.data(), wb, nr, a.data(), ab, nc))
              << dtype_info(t).name;
        }
      }
    }
}

// The Q8_1 activation quantizer: llama.cpp's rounding (ties to even, s = d * sum in f16),
// and the AVX2 one bit-identical to it, corner cases included.
TEST(Legacy, Q81QuantizerIsBitIdenticalToReference) {
  {
    std::vector<float> x(32, 0.f);
    BlockQ8_1 q;
    quantize_q8_1_ref(x.data(), &q, 32);
    EXPECT_EQ(q.d, 0);
    EXPECT_EQ(q.s, 0);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(q.qs[j], 0);
    x[0] = 127.f;
    x[1] = 2.5f;   // tie -> 2
    x[2] = -3.5f;  // tie -> -4
    x[3] = -127.f;
    x[4] = 7.f;
    quantize_q8_1_ref(x.data(), &q, 32);
    EXPECT_EQ(f16_to_f32(q.d), 1.f);
    EXPECT_EQ(q.qs[0], 127);
    EXPECT_EQ(q.qs[1], 2);
    EXPECT_EQ(q.qs[2], -4);
    EXPECT_EQ(q.qs[3], -127);
    EXPECT_EQ(f16_to_f32(q.s), 5.f);  // 127 + 2 - 4 - 127 + 7
  }
  if (!has_avx2()) GTEST_SKIP() << "no AVX2";
  const auto variants = simd_variants(DType::Q8_1);
  ASSERT_FALSE(variants.empty());
  std::vector<std::vector<float>> cases;
  cases.push_back(random_row(4096, 5));
  cases.push_back(random_row(64, 6, 1e-30f));  // tiny (subnormal products)
  cases.push_back(random_row(64, 7, 1e30f));   // huge
  cases.push_back(std::vector<float>(96, 0.f));
  {
    std::vector<float> x(64, 0.f);
    x[3] = -2.f;
    x[20] = 2.f;
    x[10] = 0.5f * 2.f / 127.f;  // exact ties
    x[11] = 1.5f * 2.f / 127.f;
    x[40] = 1.f;  // second block: d = 1/127 and quants hit exactly
    for (int j = 41; j < 64; ++j) x[j] = static_cast<float>(j * 11 % 255 - 127) / 127.f;
    cases.push_back(x);
  }
  for (const KernelVariant& v : variants)
    for (size_t k = 0; k < cases.size(); ++k) {
      const auto& x = cases[k];
      const int64_t n = static_cast<int64_t>(x.size());
      const auto r = quantize(DType::Q8_1, x);
      std::vector<uint8_t> f(r.size());
      v.traits->from_float(x.data(), f.data(), n);
      EXPECT_EQ(r, f) << v.isa << " case " << k;
    }
}

TEST(Legacy, ValidateRejectsNonFiniteScalesAndAcceptsRealBlocks) {
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    const int64_t n = 512;
    auto q = quantize(t, random_row(n, 9));
    EXPECT_TRUE(tt->validate(q.data(), n)) << dtype_info(t).name;
    const size_t last = q.size() - dtype_info(t).block_bytes;  // the last block's scale
    if (t == DType::MXFP4) {
      auto b = q;
      b[last] = 252;  // the largest exponent whose levels all stay finite
      EXPECT_TRUE(tt->validate(b.data(), n));
      b[last] = 253;  // 12 * 2^125 overflows float
      EXPECT_FALSE(tt->validate(b.data(), n));
      b[last] = 0xFF;  // E8M0 NaN
      EXPECT_FALSE(tt->validate(b.data(), n));
      continue;  // no model file
    }
    for (uint16_t bad : {uint16_t{0x7E00}, uint16_t{0x7C00}, uint16_t{0xFC00}}) {
      auto b = q;
      std::memcpy(&b[last], &bad, 2);
      EXPECT_FALSE(tt->validate(b.data(), n)) << dtype_info(t).name << " " << bad;
      if (t == DType::Q4_1 || t == DType::Q5_1) {  // the min too
        b = q;
        std::memcpy(&b[last + 2], &bad, 2);
        EXPECT_FALSE(tt->validate(b.data(), n)) << dtype_info(t).name << " min " << bad;
      }
    }
    const auto& real = real_blocks(t);
    ASSERT_FALSE(real.empty()) << dtype_info(t).name;
    const int64_t n_real = static_cast<int64_t>(real.size() / dtype_info(t).block_bytes * dtype_info(t).block_elems);
    EXPECT_TRUE(tt->validate(real.data(), n_real)) << dtype_info(t).name;
  }
}
