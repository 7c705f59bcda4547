#include <gtest/gtest.h>

#include <algorithm>

#include <cfloat>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "kernel_checks.h"
#include "base/cpu.h"
#include "base/fp16.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;
using namespace tachyon::test;

namespace {

std::vector<uint8_t> convert(DType t, const std::vector<float>& x) {
  const TypeTraits* tt = type_traits_ref(t);
  std::vector<uint8_t> out(row_bytes(t, static_cast<int64_t>(x.size())));
  tt->from_float(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> to_float(DType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(n);
  type_traits_ref(t)->to_float(q.data(), y.data(), n);
  return y;
}

double rms(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += double(v) * v;
  return std::sqrt(s / a.size());
}

const DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Relative RMS error of quantize -> dequantize that each format must meet.
double roundtrip_tolerance(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1e-3;
    case DType::BF16: return 5e-3;
    case DType::Q8_0: return 0.01;
    case DType::Q6_K: return 0.03;
    case DType::Q5_K: return 0.06;
    case DType::Q4_0:
    case DType::Q4_K: return 0.12;
    default: return 1;
  }
}

}  // namespace

TEST(Fp16, ExhaustiveRoundTripAndKnownValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<f16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    EXPECT_EQ(f32_to_f16(f), h) << "h=" << h;
  }
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(65520.f), 0x7C00);                   // rounds to inf
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
}

TEST(Kernels, BlockSizesMatchTheGgufTable) {
  EXPECT_EQ(dtype_info(DType::Q4_0).block_bytes, sizeof(BlockQ4_0));
  EXPECT_EQ(dtype_info(DType::Q8_0).block_bytes, sizeof(BlockQ8_0));
  EXPECT_EQ(dtype_info(DType::Q4_K).block_bytes, sizeof(BlockQ4_K));
  EXPECT_EQ(dtype_info(DType::Q5_K).block_bytes, sizeof(BlockQ5_K));
  EXPECT_EQ(dtype_info(DType::Q6_K).block_bytes, sizeof(BlockQ6_K));
  EXPECT_EQ(dtype_info(DType::Q8_K).block_bytes, sizeof(BlockQ8_K));
}

TEST(Kernels, QuantizeDequantizeRoundTrip) {
  const int64_t n = 1024;
  for (DType t : kWeightTypes) {
    const auto x = random_row(n, 7);
    const auto y = to_float(t, convert(t, x), n);
    std::vector<float> err(n);
    for (int64_t i = 0; i < n; ++i) err[i] = y[i] - x[i];
    EXPECT_LE(rms(err) / rms(x), roundtrip_tolerance(t)) << dtype_info(t).name;
  }
}

// The reference dot product of a weight row and quantized activations equals the dot of
// their dequantized values (up to float summation order).
TEST(Kernels, RefDotMatchesDequantizedDot) {
  const int64_t n = 2048;
  for (DType t : kWeightTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    const auto w = convert(t, random_row(n, 11));
    const auto a = convert(tt->vec_dot_type, random_row(n, 12));
    const auto wf = to_float(t, w, n);
    const auto af = to_float(tt->vec_dot_type, a, n);
    double expect = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      expect += double(wf[i]) * af[i];
      mag += std::fabs(double(wf[i]) * af[i]);
    }
    const float got = tt->vec_dot(n, w.data(), a.data());
    EXPECT_NEAR(got, expect, 1e-5 * mag + 1e-6) << dtype_info(t).name;
  }
}

// Each dispatched (SIMD) kernel agrees with its scalar reference twin.
// Every variant the registry lists for every weight type (the reference, then each SIMD
// stage this CPU runs) against the reference. Types without a weight quantizer (the IQ1/IQ2
// families need an importance matrix) are covered by their family's tests on real blocks.
TEST(Kernels, EveryVariantMatchesReference) {
  int checked = 0;
  for (int64_t n : {256, 512, 4096}) {
    for (DType t : weight_types()) {
      const TypeTraits* ref = type_traits_ref(t);
      if (!ref->from_float || n % dtype_info(t).block_elems != 0) continue;
      const auto w = convert(t, random_row(n, 21));
      const auto x = random_row(n, 22);
      for (const KernelVariant& v : kernel_variants(t)) {
        const TypeTraits* fast = v.traits;
        SCOPED_TRACE(std::string(dtype_info(t).name) + " variant " + v.isa);
        // activations converted by each path must be bit-identical
        std::vector<uint8_t> a_ref(row_bytes(ref->vec_dot_type, n)), a_fast(a_ref.size());
        type_traits_ref(ref->vec_dot_type)->from_float(x.data(), a_ref.data(), n);
        type_traits(ref->vec_dot_type)->from_float(x.data(), a_fast.data(), n);
        EXPECT_EQ(a_ref, a_fast) << "activation conversion to " << dtype_info(ref->vec_dot_type).name;
        const float r = ref->vec_dot(n, w.data(), a_ref.data());
        const float f = fast->vec_dot(n, w.data(), a_ref.data());
        EXPECT_NEAR(f, r, 1e-5f * (std::fabs(r) + std::sqrt(float(n))));
        std::vector<float> d_ref(n), d_fast(n);
        ref->to_float(w.data(), d_ref.data(), n);
        fast->to_float(w.data(), d_fast.data(), n);
        EXPECT_EQ(d_ref, d_fast);
        if (fast->validate) EXPECT_TRUE(fast->validate(w.data(), n));
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 3 * 8);
}

// The registry's list of weight types is what "not supported" errors name, and every type
// in it has a reference dot product and dequantizer.
TEST(Kernels, RegistryListsEveryWeightType) {
  const auto& types = weight_types();
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end()) << dtype_info(t).name;
  for (DType t : types) {
    const TypeTraits* ref = type_traits_ref(t);
    ASSERT_NE(ref, nullptr);
    EXPECT_TRUE(ref->vec_dot && ref->to_float) << dtype_info(t).name;
    EXPECT_EQ(kernel_variants(t).front().traits, ref);
    EXPECT_NE(weight_type_names().find(dtype_info(t).name), std::string::npos);
  }
  EXPECT_EQ(std::find(types.begin(), types.end(), DType::Q8_K), types.end()) << "Q8_K is an activation format only";
}

// The block (rows x tokens) form of every dispatched dot product gives exactly the bits
// of the single dot product, whatever the block shape: matmul relies on it so that
// batching never changes a result.
TEST(Kernels, DotTileIsBitIdenticalToVecDot) {
  for (int64_t n : {256, 512, 4096}) {
    for (DType t : weight_types()) {
      for (const KernelVariant& v : kernel_variants(t)) {
        const TypeTraits* tt = v.traits;
        if (!tt->vec_dot_tile || !type_traits_ref(t)->from_float || n % dtype_info(t).block_elems != 0) continue;
        const DType at = tt->vec_dot_type;
        const size_t wb = row_bytes(t, n), ab = row_bytes(at, n);
        for (auto [nr, nc] : {std::pair{1, 1}, {4, 1}, {11, 7}, {8, 16}, {3, 2}}) {
          std::vector<uint8_t> w(wb * nr), a(ab * nc);
          for (int r = 0; r < nr; ++r) {
            const auto row = convert(t, random_row(n, 300 + r));
            std::copy(row.begin(), row.end(), w.begin() + r * wb);
          }
          for (int c = 0; c < nc; ++c) {
            std::vector<uint8_t> row(ab);
            type_traits(at)->from_float(random_row(n, 700 + c).data(), row.data(), n);
            std::copy(row.begin(), row.end(), a.begin() + c * ab);
          }
          ASSERT_NO_FATAL_FAILURE(expect_tile_is_vec_dot(tt, n, w.data(), wb, nr, a.data(), ab, nc))
              << dtype_info(t).name << " " << v.isa;
        }
      }
    }
  }
}

// The Q8_K activation quantizer (what K-quant dots consume) is bit-identical to the
// reference, including its corner cases: the sign of the scale comes from the first
// element of largest magnitude, exact .5 ties round to even, all-zero blocks.
TEST(Kernels, Q8KQuantizerIsBitIdenticalToReference) {
  const TypeTraits* fast = type_traits(DType::Q8_K);
  std::vector<std::vector<float>> cases;
  cases.push_back(random_row(4096, 5));
  cases.push_back(random_row(QK_K, 6, 1e-30f));  // tiny (subnormal products)
  cases.push_back(random_row(QK_K, 7, 1e30f));   // huge
  cases.push_back(std::vector<float>(2 * QK_K, 0.f));
  {
    std::vector<float> x(QK_K, 0.f);
    x[3] = -2.f;  // negative maximum first, positive tie later
    x[200] = 2.f;
    x[10] = 0.5f * 2.f / 127.f;  // lands on an exact tie
    x[11] = 1.5f * 2.f / 127.f;
    cases.push_back(x);
    std::swap(x[3], x[200]);  // positive first
    cases.push_back(x);
  }
  {
    std::vector<float> x = random_row(2 * QK_K, 8);
    for (int i = 0; i < QK_K; ++i) x[i] = static_cast<float>(i % 255 - 127);  // every quant value, exactly
    cases.push_back(x);
  }
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto& x = cases[k];
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<BlockQ8_K> r(n / QK_K), f(n / QK_K);
    quantize_q8_K_ref(x.data(), r.data(), n);
    fast->from_float(x.data(), f.data(), n);
    EXPECT_EQ(std::memcmp(r.data(), f.data(), r.size() * sizeof(BlockQ8_K)), 0) << "case " << k << " impl=" << fast->impl;
  }
}

// Element-wise ops with SIMD forms give the scalar formulas' bits.
TEST(Ops, SwigluAndRopeAreBitIdenticalToScalar) {
  const int64_t n = 777;
  auto g = random_row(n, 40, 4.f), u = random_row(n, 41);
  g[0] = -200.f;  // beyond the polynomial exp's range
  g[1] = 100.f;
  std::vector<float> out(n);
  swiglu(g.data(), u.data(), n, out.data());
  for (int64_t i = 0; i < n; ++i) {
    const float e = g[i] / (1.0f + expf_poly(-g[i])) * u[i];
    ASSERT_EQ(std::memcmp(&e, &out[i], sizeof(float)), 0) << i;
  }
  for (auto mode : {RopeMode::kNorm, RopeMode::kNeox}) {
    RopeParams p;
    p.mode = mode;
    p.n_rot = 64;
    std::vector<float> cs(64), x = random_row(64, 42), y = x;
    rope_cache(p, 1234, cs.data());
    rope_apply(p, cs.data(), y.data());
    const int half = 32;
    for (int i = 0; i < half; ++i) {
      const int a = mode == RopeMode::kNorm ? 2 * i : i, b = mode == RopeMode::kNorm ? 2 * i + 1 : i + half;
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float ea = std::fma(x[a], c, -(x[b] * s)), eb = std::fma(x[a], s, x[b] * c);
      ASSERT_EQ(std::memcmp(&ea, &y[a], 4), 0) << i;
      ASSERT_EQ(std::memcmp(&eb, &y[b], 4), 0) << i;
    }
  }
}

TEST(Kernels, Q8ActivationsRoundTiesToEvenAndHandleZeros) {
  std::vector<float> x(32, 0.f);
  std::vector<BlockQ8_0> q(1);
  quantize_q8_0_ref(x.data(), q.data(), 32);
  EXPECT_EQ(f16_to_f32(q[0].d), 0.f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q[0].qs[i], 0);
  x[0] = 127.f;
  x[1] = 2.5f;   // exactly representable tie -> 2
  x[2] = -3.5f;  // -> -4
  quantize_q8_0_ref(x.data(), q.data(), 32);
  EXPECT_EQ(q[0].qs[0], 127);
  EXPECT_EQ(q[0].qs[1], 2);
  EXPECT_EQ(q[0].qs[2], -4);
  std::vector<float> k(256, 0.f);
  std::vector<BlockQ8_K> qk(1);
  quantize_q8_K_ref(k.data(), qk.data(), 256);
  EXPECT_EQ(qk[0].d, 0.f);
  k[5] = -3.f;
  k[6] = 1.f;
  quantize_q8_K_ref(k.data(), qk.data(), 256);
  EXPECT_EQ(qk[0].qs[5], -127);
  EXPECT_EQ(qk[0].bsums[0], qk[0].qs[5] + qk[0].qs[6]);
}

TEST(Kernels, MatmulIsBatchInvariant) {
  ThreadPool pool(2);
  // small (one thread) and large enough to be split over the pool, ragged tiles
  for (auto [n_cols, n_rows, n_tok] : {std::tuple<int64_t, int64_t, int64_t>{512, 96, 5}, {1024, 520, 9}})
  for (DType t : kWeightTypes) {
    std::vector<uint8_t> w(row_bytes(t, n_cols) * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) {
      const auto row = convert(t, random_row(n_cols, 100 + r));
      std::copy(row.begin(), row.end(), w.begin() + r * row_bytes(t, n_cols));
    }
    MatView m{w.data(), t, n_cols, n_rows, row_bytes(t, n_cols)};
    std::vector<float> x(n_tok * n_cols);
    for (int64_t tk = 0; tk < n_tok; ++tk) {
      const auto r = random_row(n_cols, 900 + tk);
      std::copy(r.begin(), r.end(), x.begin() + tk * n_cols);
    }
    QuantActs scratch;
    std::vector<float> y(n_tok * n_rows), y1(n_rows);
    matmul(m, x.data(), n_tok, y.data(), n_rows, pool, &scratch);
    // every element is the dispatched single dot product, bit for bit
    for (int64_t tk = 0; tk < n_tok; ++tk)
      for (int64_t r = 0; r < n_rows; ++r) {
        const float d = type_traits(t)->vec_dot(n_cols, w.data() + r * row_bytes(t, n_cols), scratch.row(tk));
        ASSERT_EQ(std::memcmp(&d, &y[tk * n_rows + r], sizeof(float)), 0) << dtype_info(t).name;
      }
    for (int64_t tk = 0; tk < n_tok; ++tk) {
      matmul(m, x.data() + tk * n_cols, 1, y1.data(), n_rows, pool, &scratch);
      for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(y[tk * n_rows + r], y1[r]) << dtype_info(t).name;
    }
    // and agrees with the double-precision product of the dequantized weights and the
    // activations as the kernel consumed them
    const DType at = type_traits(t)->vec_dot_type;
    const auto xq = to_float(at, convert(at, std::vector<float>(x.begin(), x.begin() + n_cols)), n_cols);
    for (int64_t r = 0; r < n_rows; ++r) {
      std::vector<float> wf(n_cols);
      get_row(m, r, wf.data());
      double e = 0, mag = 0;
      for (int64_t c = 0; c < n_cols; ++c) {
        e += double(wf[c]) * xq[c];
        mag += std::fabs(double(wf[c]) * xq[c]);
      }
      EXPECT_NEAR(y[r], e, 1e-5 * mag + 1e-5) << dtype_info(t).name << " row " << r;
    }
  }
}

// rms_norm_rows gives rms_norm's bits on every row (interleaved chains, groups of 8 and
// the short tail groups), with and without weights, in place too.
TEST(Ops, RmsNormRowsMatchesRowByRow) {
  std::mt19937 rng(11);
  std::lognormal_distribution<float> mag(0.f, 3.f);  // wide exponent spread: the double sums round
  const int64_t n = 2051;
  for (int64_t n_rows : {1, 2, 7, 8, 9, 17}) {
    std::vector<float> x(n_rows * (n + 5)), w(n), y(n_rows * n), want(n_rows * n);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 ? 1.f : -1.f) * mag(rng);
    // a large first element per row: every later square then rounds in the double sum,
    // so that any change of the summation order shows
    for (int64_t r = 0; r < n_rows; ++r) x[r * (n + 5)] = 3e4f + static_cast<float>(r);
    for (auto& v : w) v = mag(rng);
    using Fn = void (*)(const float*, int64_t, const float*, int64_t, float, float*, int64_t, int64_t);
    std::vector<std::pair<const char*, Fn>> impls = {{"dispatch", rms_norm_rows}, {"ref", rms_norm_rows_ref}};
#if defined(__x86_64__)
    if (cpu_features().avx2 && cpu_features().fma) impls.push_back({"avx2", rms_norm_rows_avx2});
#endif
    for (const float* wp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
      for (int64_t r = 0; r < n_rows; ++r) rms_norm(x.data() + r * (n + 5), wp, n, 1e-5f, want.data() + r * n);
      for (auto [name, fn] : impls) {
        std::fill(y.begin(), y.end(), -1.f);
        fn(x.data(), n + 5, wp, n, 1e-5f, y.data(), n, n_rows);
        ASSERT_EQ(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)), 0) << name << " n_rows=" << n_rows;
      }
    }
    std::vector<float> z(x);  // in place (ldo == ldx)
    rms_norm_rows(z.data(), n + 5, w.data(), n, 1e-5f, z.data(), n + 5, n_rows);
    for (int64_t r = 0; r < n_rows; ++r)
      ASSERT_EQ(std::memcmp(z.data() + r * (n + 5), want.data() + r * n, n * sizeof(float)), 0) << "in place, row " << r;
  }
}

TEST(Ops, RmsNormRopeSoftmax) {
  std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> w = {1, 1, 2, 2};
  std::vector<float> y(4);
  rms_norm(x.data(), w.data(), 4, 0.f, y.data());
  const float s = 1.f / std::sqrt(7.5f);
  EXPECT_FLOAT_EQ(y[0], 1 * s);
  EXPECT_FLOAT_EQ(y[3], 4 * s * 2);

  // RoPE rotates pairs by pos * base^(-2i/d); norms are preserved, pos 0 is identity.
  for (auto mode : {RopeMode::kNorm, RopeMode::kNeox}) {
    RopeParams p;
    p.mode = mode;
    p.n_rot = 8;
    p.freq_base = 10000.f;
    std::vector<float> v = random_row(8, 3), v0 = v;
    float cs[8];
    rope_cache(p, 0, cs);
    rope_apply(p, cs, v.data());
    EXPECT_EQ(v, v0);
    rope_cache(p, 5, cs);
    rope_apply(p, cs, v.data());
    EXPECT_NEAR(rms(v), rms(v0), 1e-5);
    const int a = 0, b = mode == RopeMode::kNorm ? 1 : 4;
    EXPECT_NEAR(v[a], v0[a] * std::cos(5.f) - v0[b] * std::sin(5.f), 1e-5);
    EXPECT_NEAR(v[b], v0[a] * std::sin(5.f) + v0[b] * std::cos(5.f), 1e-5);
  }

  std::vector<float> l = {1.f, 2.f, 3.f, -INFINITY};
  const double lse = log_sum_exp(l.data(), 4);
  EXPECT_NEAR(lse, std::log(std::exp(1.) + std::exp(2.) + std::exp(3.)), 1e-6);
  softmax(l.data(), 4);
  EXPECT_NEAR(l[0] + l[1] + l[2] + l[3], 1.f, 1e-6);
  EXPECT_EQ(l[3], 0.f);
}

TEST(Ops, VectorLibmExpMatchesStdExp) {
#if defined(__x86_64__)
  if (!cpu_features().avx2 || !cpu_features().fma) GTEST_SKIP() << "no AVX2/FMA";
  // every 211th float in [-104, 0] (the decode softmax arguments; a one-off run checked
  // every 7th), then specials
  std::vector<float> x, y, want;
  for (uint32_t b = 0x80000000u; b <= 0xC2D00000u; b += 211) {
    float f;
    std::memcpy(&f, &b, 4);
    x.push_back(f);
  }
  for (float f : {0.f, -0.f, 1.f, 10.f, 88.f, 88.8f, 100.f, -87.5f, -103.9f, -104.f, -200.f, -INFINITY, INFINITY, NAN})
    x.push_back(f);
  y.resize(x.size());
  expf_libm_avx2(x.data(), static_cast<int64_t>(x.size()), y.data());
  size_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float e = std::exp(x[i]);
    if (std::memcmp(&e, &y[i], 4) != 0 && !(std::isnan(e) && std::isnan(y[i]))) {
      if (++bad < 5) ADD_FAILURE() << "x=" << x[i] << " std::exp=" << e << " vector=" << y[i];
    }
  }
  EXPECT_EQ(bad, 0u) << "of " << x.size();
#else
  GTEST_SKIP() << "x86-64 only";
#endif
}

// The sampler's vocabulary passes: the AVX2 forms against their scalar definitions, over
// random logits with NaN, +-inf, +-0 and FLT_MAX mixed in, at lengths exercising the
// 32-wide, 8-wide and tail loops.
TEST(Ops, LogitsPassesMatchScalar) {
#if defined(__x86_64__)
  if (!cpu_features().avx2 || !cpu_features().fma) GTEST_SKIP() << "no AVX2/FMA";
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.f, 4.f);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{31}, int64_t{77}, int64_t{32000}}) {
    std::vector<float> x(n);
    for (auto& v : x) v = d(rng);
    const float specials[] = {NAN, INFINITY, -INFINITY, 0.f, -0.f, FLT_MAX, -FLT_MAX, 90.f};
    for (int64_t i = 0; i < n; i += 5) x[i] = specials[(i / 5) % 8];
    std::vector<float> y(n), want(n);
    sanitize_logits_avx2(x.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = std::isnan(x[i]) ? -INFINITY : x[i] > FLT_MAX ? FLT_MAX : x[i];
    ASSERT_TRUE(n == 0 || std::memcmp(y.data(), want.data(), n * sizeof(float)) == 0) << "sanitize n=" << n;
    float m = -INFINITY;
    for (float v : want) m = std::max(m, v);
    EXPECT_EQ(max_f32_avx2(want.data(), n), m) << "max n=" << n;  // (the same value; a zero may differ in sign)
    for (int64_t at = 0; at < n; at += std::max<int64_t>(1, n / 9)) {  // the max in every loop's range
      std::vector<float> z = want;
      z[at] = FLT_MAX;
      z[n - 1 - at] = INFINITY;  // above every sanitized logit
      EXPECT_EQ(max_f32_avx2(z.data(), n), INFINITY) << "max n=" << n << " at " << n - 1 - at;
    }
    for (float c : {m, 0.f, 3.5f}) {
      if (!std::isfinite(c)) continue;
      exp_shifted_avx2(want.data(), n, c, y.data());
      for (int64_t i = 0; i < n; ++i) {
        const float e = std::exp(want[i] - c);
        ASSERT_EQ(std::memcmp(&e, &y[i], 4), 0) << "exp_shifted x=" << want[i] << " c=" << c;
      }
    }
  }
#else
  GTEST_SKIP() << "x86-64 only";
#endif
}

TEST(Ops, F16RowConversionMatchesScalar) {
  // every 1021st bit pattern (all exponents: subnormal results, overflow to inf, ties),
  // then specials, at lengths that exercise the 8-wide body and the tail
  std::vector<float> x;
  for (uint64_t b = 0; b <= 0xFFFFFFFFull; b += 1021) {
    const uint32_t u = static_cast<uint32_t>(b);
    float f;
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  for (float f : {0.f, -0.f, 65504.f, 65519.f, 65520.f, 5.96e-8f, 2.98e-8f, 1.f + 1.f / 2048, 1.f + 3.f / 2048, -INFINITY,
                  INFINITY, NAN})
    x.push_back(f);
  std::vector<f16_t> y(x.size() + 3);
  for (int64_t n : {static_cast<int64_t>(x.size()), int64_t{7}, int64_t{13}}) {
    f32_to_f16_row(x.data(), n, y.data());
    size_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const f16_t want = f32_to_f16(x[i]);
      const bool nan = std::isnan(x[i]) && (y[i] & 0x7C00) == 0x7C00 && (y[i] & 0x3FF) != 0;
      if (y[i] != want && !nan && ++bad < 5) ADD_FAILURE() << "x=" << x[i] << " got " << y[i] << " want " << want;
    }
    EXPECT_EQ(bad, 0u) << "n=" << n;
  }
}

TEST(Ops, PolynomialExpIsAccurate) {
  for (float x = -80.f; x < 80.f; x += 0.0137f) {
    const float e = expf_poly(x), r = std::exp(x);
    EXPECT_NEAR(e, r, 4e-7f * r) << x;
  }
  EXPECT_EQ(expf_poly(-INFINITY), 0.f);
  EXPECT_EQ(expf_poly(0.f), 1.f);
  EXPECT_TRUE(std::isinf(expf_poly(100.f)));
}

TEST(ThreadPool, RunsEveryIndexOnce) {
  for (int n : {1, 2, 3, 8}) {
    ThreadPool pool(n);
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<std::atomic<int>> hits(n);
      pool.run([&](int ith, int nth) {
        ASSERT_EQ(nth, n);
        hits[ith]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
}

// rest() sends the workers to sleep; the next run() still reaches every one of them,
// whether it comes at once (a worker may still be spinning) or after they slept.
TEST(ThreadPool, RunAfterRestReachesEveryWorker) {
  for (int n : {2, 3}) {
    ThreadPool pool(n);
    for (int rep = 0; rep < 100; ++rep) {
      pool.rest();
      if (rep % 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::vector<std::atomic<int>> hits(n);
      pool.run([&](int ith, int) { hits[ith]++; });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "n=" << n << " rep=" << rep;
    }
  }
}

// RangeSplit hands out every item exactly once; a slow thread's range is finished by the
// others (stealing from its back), and each thread's own items come front to back.
TEST(ThreadPool, RangeSplitStealsFromSlowThreads) {
  for (int n : {1, 2, 3, 8}) {
    ThreadPool pool(n);
    for (int64_t items : {0, 1, 7, 100, 1000}) {
      RangeSplit split(items, n);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(items));
      std::vector<std::atomic<int>> done_by(n);
      std::atomic<bool> order_ok{true};
      pool.run([&](int ith, int) {
        int64_t b, e, last_own = -1;
        split_range(items, ith, n, &b, &e);
        for (int64_t i; split.next(ith, &i);) {
          hits[static_cast<size_t>(i)]++;
          done_by[ith]++;
          if (i >= b && i < e) {
            if (i <= last_own) order_ok = false;
            last_own = i;
          }
          if (ith == 0 && n > 1) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
      EXPECT_TRUE(order_ok.load());
      if (n > 1 && items >= 100) {
        int64_t b, e;
        split_range(items, 0, n, &b, &e);
        EXPECT_LT(done_by[0].load(), e - b) << "the slow thread's range was not shared";
      }
    }
  }
}

// next_run: every item exactly once, in runs of at most `run` items from the front of the
// thread's own range (in order) and at most `steal` from the back of the others.
TEST(ThreadPool, RangeSplitRunsAndSmallSteals) {
  for (int n : {1, 2, 3}) {
    ThreadPool pool(n);
    for (int64_t items : {0, 1, 7, 100, 1001}) {
      RangeSplit split(items, n);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(items));
      std::atomic<bool> ok{true};
      std::atomic<int> steals{0};
      pool.run([&](int ith, int) {
        int64_t ob, oe, last_own = -1;
        split_range(items, ith, n, &ob, &oe);
        for (int64_t b, e; split.next_run(ith, 10, 3, &b, &e);) {
          if (!(b < e)) ok = false;
          const bool own = b >= ob && e <= oe && b > last_own;
          if (own) last_own = e - 1;
          if (e - b > (own ? 10 : 3)) ok = false;
          if (!own) ++steals;
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          if (ith == 0 && n > 1) std::this_thread::sleep_for(std::chrono::microseconds(300));
        }
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "n=" << n << " items=" << items;
      EXPECT_TRUE(ok.load()) << "n=" << n << " items=" << items;
      if (n > 1 && items >= 100) {
        EXPECT_GT(steals.load(), 0) << "the slow thread's range was not shared";
      }
    }
  }
}
