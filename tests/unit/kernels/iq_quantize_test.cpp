// The grid formats' weight quantizers (quant_fit_iq.cpp). Byte equality with llama-quantize
// is checked on the shared mini-llama files by tests/golden/quantize_golden_test.cpp; here:
// the fits round-trip through the reference dequantizers with the error each format's bit
// budget allows, an importance matrix moves the error off the important columns, all-zero
// rows stay zero, and NaN input yields blocks (no crash).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "kernels/quant_fit_iq.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;

namespace {

struct Case {
  DType type;
  float max_rel_rmse;  // relative RMSE on Gaussian rows with the x^2 (or flat-matrix) weights
};
// Measured on these rows: IQ3 0.16-0.25, IQ2 0.30-0.41, IQ1 0.50-0.61; bounds with margin.
const Case kCases[] = {
    {DType::IQ3_S, 0.24f},  {DType::IQ3_XXS, 0.29f}, {DType::IQ2_S, 0.40f}, {DType::IQ2_XS, 0.44f},
    {DType::IQ2_XXS, 0.48f}, {DType::IQ1_M, 0.67f},  {DType::IQ1_S, 0.67f},
};

constexpr int64_t kCols = 512, kRows = 32;

std::vector<float> gaussian_rows(uint32_t seed) {
  std::vector<float> x(kCols * kRows);
  uint32_t s = seed;
  auto u = [&] {
    s = s * 1664525u + 1013904223u;
    return ((s >> 8) + 0.5f) / 16777216.f;
  };
  for (auto& v : x) v = std::sqrt(-2 * std::log(u())) * std::cos(6.2831853f * u()) * (u() < 0.02f ? 4.f : 1.f);
  return x;
}

std::vector<float> round_trip(DType t, const std::vector<float>& x, const float* imatrix) {
  const TypeTraits* tr = type_traits_ref(t);
  const size_t rb = row_bytes(t, kCols);
  std::vector<uint8_t> q(rb * kRows);
  if (imatrix) tr->quantize_weighted(x.data(), q.data(), static_cast<int64_t>(x.size()), imatrix, kCols);
  else
    for (int64_t r = 0; r < kRows; ++r) tr->weight_quantizer()(x.data() + r * kCols, q.data() + r * rb, kCols);
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < kRows; ++r) tr->to_float(q.data() + r * rb, y.data() + r * kCols, kCols);
  return y;
}

// sqrt(sum w (x - y)^2 / sum w x^2) with per-column weights w (1 when null).
double rel_rmse(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>* w = nullptr) {
  double e = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w ? (*w)[i % kCols] : 1.0;
    e += wi * (x[i] - y[i]) * (x[i] - y[i]);
    n += wi * x[i] * x[i];
  }
  return std::sqrt(e / n);
}

TEST(IqQuantize, LatticesHaveNeighbourLists) {
  for (const auto& c : kCases) EXPECT_GT(iq_lattice_neighbour_count(c.type), 0) << dtype_info(c.type).name;
  EXPECT_EQ(iq_lattice_neighbour_count(DType::Q4_K), 0);
}

TEST(IqQuantize, RoundTripsWithinTheFormatsError) {
  const auto x = gaussian_rows(7);
  const std::vector<float> flat(kCols, 1.f);
  for (const auto& c : kCases) {
    const TypeTraits* tr = type_traits_ref(c.type);
    ASSERT_NE(tr, nullptr);
    ASSERT_NE(tr->quantize_weighted, nullptr) << dtype_info(c.type).name;
    const double weighted = rel_rmse(x, round_trip(c.type, x, flat.data()));
    std::printf("[iq-quantize] %-7s rel. RMSE %.3f (flat matrix)", std::string(dtype_info(c.type).name).c_str(), weighted);
    EXPECT_LT(weighted, c.max_rel_rmse) << dtype_info(c.type).name;
    EXPECT_GT(weighted, 0.02) << dtype_info(c.type).name;  // these formats cannot be exact
    if (tr->weight_quantizer()) {
      const double plain = rel_rmse(x, round_trip(c.type, x, nullptr));
      std::printf(", %.3f (no matrix)", plain);
      EXPECT_LT(plain, c.max_rel_rmse) << dtype_info(c.type).name;
    }
    std::printf("\n");
  }
}

TEST(IqQuantize, TheMatrixProtectsImportantColumns) {
  const auto x = gaussian_rows(11);
  std::vector<float> skew(kCols), flat(kCols, 1.f);
  for (int64_t c = 0; c < kCols; ++c) skew[c] = c % 4 == 0 ? 100.f : 1.f;
  for (const auto& c : kCases) {
    const double with_skew = rel_rmse(x, round_trip(c.type, x, skew.data()), &skew);
    const double with_flat = rel_rmse(x, round_trip(c.type, x, flat.data()), &skew);
    EXPECT_LT(with_skew, with_flat) << dtype_info(c.type).name;
  }
}

TEST(IqQuantize, ZeroRowsStayZeroAndNaNDoesNotCrash) {
  std::vector<float> zeros(kCols * kRows, 0.f), flat(kCols, 1.f);
  auto nan_rows = gaussian_rows(3);
  for (size_t i = 0; i < nan_rows.size(); i += 37) nan_rows[i] = std::nanf("");
  for (const auto& c : kCases) {
    for (float v : round_trip(c.type, zeros, flat.data())) ASSERT_EQ(v, 0.f) << dtype_info(c.type).name;
    round_trip(c.type, nan_rows, flat.data());  // any blocks, but no fault (ASan/UBSan run this)
  }
}

}  // namespace
