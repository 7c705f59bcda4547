// Scalar reference kernels of the legacy family (see quant_legacy.h for the float order
// the dot products share with their AVX2 twins).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/packed_ref.h"
#include "kernels/quant_fit.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {

// Data tables as in ggml-common.h (kvalues_iq4nl, kvalues_mxfp4).
const int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

float e8m0_to_f32_half(uint8_t e) {
  // e < 2: 2^-128 and 2^-127 are subnormal; otherwise the float exponent field is e - 1
  return bits_to_f32(e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23);
}

namespace {

// Element j of a 32-element block with 5-bit quants: low nibble | bit 4 from qh.
inline int q5_element(const uint8_t* qs, const uint8_t* qh, int j) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const int nib = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
  return nib | static_cast<int>(((h >> j) & 1) << 4);
}
inline int q4_element(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }

// Packs 32 quants (5-bit) into nibbles and the qh bit plane.
void pack_q5(const uint8_t* L, uint8_t* qs, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
    h |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
    h |= static_cast<uint32_t>((L[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh, &h, 4);
}

// min and max of 32 floats, starting from +-FLT_MAX as llama.cpp does.
void min_max32(const float* x, float* mn, float* mx) {
  *mn = FLT_MAX;
  *mx = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < *mn) *mn = x[j];
    if (x[j] > *mx) *mx = x[j];
  }
}

// The element of largest magnitude (the first one on ties), with its sign.
float signed_amax32(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// Index of the MXFP4 level whose value times e is nearest to x (the first on ties).
int best_index_mxfp4(float x, float e) {
  int best = 0;
  float best_err = std::fabs(kMxfp4Values[0] * e - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(kMxfp4Values[i] * e - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

}  // namespace

// ---------------------------------------------------------------- dequantize

void dequantize_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = f16_to_f32(x[i].d), m = f16_to_f32(x[i].m);
    for (int j = 0; j < 32; ++j) y[j] = q4_element(x[i].qs, j) * d + m;
  }
}

void dequantize_q5_0_ref(const BlockQ5_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < 32; ++j) y[j] = (q5_element(x[i].qs, x[i].qh, j) - 16) * d;
  }
}

void dequantize_q5_1_ref(const BlockQ5_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = f16_to_f32(x[i].d), m = f16_to_f32(x[i].m);
    for (int j = 0; j < 32; ++j) y[j] = q5_element(x[i].qs, x[i].qh, j) * d + m;
  }
}

void dequantize_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < 32; ++j) y[j] = x[i].qs[j] * d;
  }
}

void dequantize_iq4_nl_ref(const BlockIQ4_NL* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < 32; ++j) y[j] = d * kIq4nlValues[q4_element(x[i].qs, j)];
  }
}

void dequantize_mxfp4_ref(const BlockMXFP4* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = e8m0_to_f32_half(x[i].e);
    for (int j = 0; j < 32; ++j) y[j] = kMxfp4Values[q4_element(x[i].qs, j)] * d;
  }
}

void dequantize_q1_0_ref(const BlockQ1_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK1_0; ++i, y += QK1_0) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < QK1_0; ++j) y[j] = (x[i].qs[j / 8] >> (j % 8)) & 1 ? d : -d;
  }
}

// ---------------------------------------------------------------- quantize

void quantize_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0 ? 127.f / amax : 0.f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      y[i].qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].d = f32_to_f16(d);
    y[i].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

void quantize_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float mn, mx;
    min_max32(x, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(mn);
    for (int j = 0; j < 16; ++j) {
      // truncation after +0.5 (values are >= 0), as llama.cpp
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - mn) * id + 0.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - mn) * id + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_q5_0_ref(const float* x, BlockQ5_0* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float d = signed_amax32(x) / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    uint8_t L[32];
    for (int j = 0; j < 32; ++j)
      L[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
    pack_q5(L, y[i].qs, y[i].qh);
  }
}

void quantize_q5_1_ref(const float* x, BlockQ5_1* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float mn, mx;
    min_max32(x, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(mn);
    uint8_t L[32];
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>((x[j] - mn) * id + 0.5f);
    pack_q5(L, y[i].qs, y[i].qh);
  }
}

namespace {

// What llama-quantize writes (quantize_iq4_nl, ntry = 7, not quantize_row_iq4_nl_ref's
// single fit): the searched scale d, then every level picked again at 1 / d (from the
// float d, not its f16 rounding). An all-zero block gets d = 0 and every index at the
// level nearest 0 (8).
// qw (optional): the importance of the n columns, weighting each block's fit by
// qw * sqrt(sigma2 + x^2), sigma2 twice the block's mean square.
void quantize_iq4_nl_impl(const float* x, BlockIQ4_NL* y, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float w[32];
    if (qw) {
      float sigma2 = 0;
      for (int j = 0; j < 32; ++j) sigma2 += x[j] * x[j];
      sigma2 *= 2.f / 32;
      importance_weights(32, x, qw + 32 * i, sigma2, w);
    }
    const float d = fit_iq4nl_scale(x, qw ? w : nullptr);
    y[i].d = f32_to_f16(d);
    const float id = d != 0 ? 1 / d : 0.f;
    for (int j = 0; j < 16; ++j)
      y[i].qs[j] = static_cast<uint8_t>(nearest_iq4nl_index(id * x[j]) | nearest_iq4nl_index(id * x[j + 16]) << 4);
  }
}

}  // namespace

void quantize_iq4_nl_ref(const float* x, BlockIQ4_NL* y, int64_t n) { quantize_iq4_nl_impl(x, y, n, nullptr); }

void quantize_mxfp4_ref(const float* x, BlockMXFP4* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    // the largest level (6, stored doubled as 12) then lands near amax
    const float e_f = std::floor(std::log2(amax)) - 2 + 127;
    const uint8_t e = amax > 0 ? static_cast<uint8_t>(std::clamp(e_f, 0.f, 254.f)) : 0;
    const float d = e8m0_to_f32_half(e);
    y[i].e = e;
    for (int j = 0; j < 16; ++j)
      y[i].qs[j] = static_cast<uint8_t>(best_index_mxfp4(x[j], d) | (best_index_mxfp4(x[j + 16], d) << 4));
  }
}

void quantize_q1_0_ref(const float* x, BlockQ1_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK1_0; ++i, x += QK1_0) {
    float sum_abs = 0;
    for (int j = 0; j < QK1_0; ++j) sum_abs += std::fabs(x[j]);
    y[i].d = f32_to_f16(sum_abs / QK1_0);
    std::memset(y[i].qs, 0, sizeof y[i].qs);
    for (int j = 0; j < QK1_0; ++j)
      if (x[j] >= 0) y[i].qs[j / 8] |= static_cast<uint8_t>(1 << (j % 8));
  }
}

// ---------------------------------------------------------------- with an importance matrix
// llama.cpp's quantize_row_<type>_impl with quant_weights: each block of 32 weighted
// qw * sqrt(sigma2 + x^2), sigma2 the mean square of the row; Q5_0 by make_qx_quants
// (fit_signed_scale), Q4_1 / Q5_1 by make_qkx3_quants (fit_scale_min with 37 trials).

namespace {

float row_mean_square(const float* x, int64_t n_per_row) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / n_per_row;
}

template <typename Block, int nmax>
void min_fit_weighted_row(const float* x, Block* y, int64_t n_per_row, const float* qw) {
  const float sigma2 = row_mean_square(x, n_per_row);
  float w[32], neg_min;
  uint8_t L[32];
  for (int64_t ib = 0; ib < n_per_row / 32; ++ib) {
    const float* xb = x + 32 * ib;
    importance_weights(32, xb, qw + 32 * ib, sigma2, w);
    const float d = fit_scale_min(32, nmax, xb, w, L, &neg_min, -0.9f, 0.05f, 36, false);
    y[ib].d = f32_to_f16(d);
    y[ib].m = f32_to_f16(-neg_min);
    if constexpr (nmax == 15) {
      for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
    } else {
      pack_q5(L, y[ib].qs, y[ib].qh);
    }
  }
}

void q5_0_weighted_row(const float* x, BlockQ5_0* y, int64_t n_per_row, const float* qw) {
  const float sigma2 = row_mean_square(x, n_per_row);
  float w[32];
  int8_t L[32];
  uint8_t Lu[32];
  for (int64_t ib = 0; ib < n_per_row / 32; ++ib) {
    const float* xb = x + 32 * ib;
    importance_weights(32, xb, qw + 32 * ib, sigma2, w);
    y[ib].d = f32_to_f16(fit_signed_scale(32, 16, xb, L, w));
    for (int j = 0; j < 32; ++j) Lu[j] = static_cast<uint8_t>(L[j]);
    pack_q5(Lu, y[ib].qs, y[ib].qh);
  }
}

}  // namespace

void quantize_q4_1_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ4_1, 32, min_fit_weighted_row<BlockQ4_1, 15>>(x, y, n, imatrix, n_cols);
}
void quantize_q5_0_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ5_0, 32, q5_0_weighted_row>(x, y, n, imatrix, n_cols);
}
void quantize_q5_1_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ5_1, 32, min_fit_weighted_row<BlockQ5_1, 31>>(x, y, n, imatrix, n_cols);
}
void quantize_iq4_nl_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ4_NL, 32, quantize_iq4_nl_impl>(x, y, n, imatrix, n_cols);
}

// ---------------------------------------------------------------- dot products

float vec_dot_q4_1_q8_1_ref(int64_t n, const BlockQ4_1* x, const BlockQ8_1* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += q4_element(x[i].qs, j) * y[i].qs[j];
    sum = std::fma(static_cast<float>(isum), f16_to_f32(x[i].d) * f16_to_f32(y[i].d), sum);
    sum = std::fma(f16_to_f32(x[i].m), f16_to_f32(y[i].s), sum);
  }
  return sum;
}

float vec_dot_q5_0_q8_0_ref(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += (q5_element(x[i].qs, x[i].qh, j) - 16) * y[i].qs[j];
    sum = std::fma(static_cast<float>(isum), f16_to_f32(x[i].d) * f16_to_f32(y[i].d), sum);
  }
  return sum;
}

float vec_dot_q5_1_q8_1_ref(int64_t n, const BlockQ5_1* x, const BlockQ8_1* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += q5_element(x[i].qs, x[i].qh, j) * y[i].qs[j];
    sum = std::fma(static_cast<float>(isum), f16_to_f32(x[i].d) * f16_to_f32(y[i].d), sum);
    sum = std::fma(f16_to_f32(x[i].m), f16_to_f32(y[i].s), sum);
  }
  return sum;
}

float vec_dot_iq4_nl_q8_0_ref(int64_t n, const BlockIQ4_NL* x, const BlockQ8_0* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += kIq4nlValues[q4_element(x[i].qs, j)] * y[i].qs[j];
    sum = std::fma(static_cast<float>(isum), f16_to_f32(x[i].d) * f16_to_f32(y[i].d), sum);
  }
  return sum;
}

float vec_dot_mxfp4_q8_0_ref(int64_t n, const BlockMXFP4* x, const BlockQ8_0* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += kMxfp4Values[q4_element(x[i].qs, j)] * y[i].qs[j];
    sum = std::fma(static_cast<float>(isum), e8m0_to_f32_half(x[i].e) * f16_to_f32(y[i].d), sum);
  }
  return sum;
}

float vec_dot_q1_0_q8_0_ref(int64_t n, const BlockQ1_0* x, const BlockQ8_0* y) {
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK1_0; ++i) {
    for (int l = 0; l < 8; ++l) {
      float t = 0;
      for (int k = 0; k < 4; ++k) {
        const BlockQ8_0& a = y[4 * i + k];
        int isum = 0;
        for (int j = 4 * l; j < 4 * l + 4; ++j) isum += (x[i].qs[4 * k + j / 8] >> (j % 8)) & 1 ? a.qs[j] : -a.qs[j];
        const float dy = f16_to_f32(a.d);
        t = k == 0 ? dy * static_cast<float>(isum) : std::fma(dy, static_cast<float>(isum), t);
      }
      acc[l] = std::fma(f16_to_f32(x[i].d), t, acc[l]);
    }
  }
  return sum8_avx2_order(acc);
}

// ---------------------------------------------------------------- validate

bool validate_q4_1(const void* x, int64_t n) { return scales_finite<BlockQ4_1, 32>(x, n); }
bool validate_q5_0(const void* x, int64_t n) { return scales_finite<BlockQ5_0, 32>(x, n); }
bool validate_q5_1(const void* x, int64_t n) { return scales_finite<BlockQ5_1, 32>(x, n); }
bool validate_iq4_nl(const void* x, int64_t n) { return scales_finite<BlockIQ4_NL, 32>(x, n); }
bool validate_q1_0(const void* x, int64_t n) { return scales_finite<BlockQ1_0, QK1_0>(x, n); }
// E8M0 255 is NaN; from 253 on the largest level (6, stored doubled as 12, times
// 2^(e-128)) overflows float, which no real weight does.
bool validate_mxfp4(const void* x, int64_t n) {
  const BlockMXFP4* b = static_cast<const BlockMXFP4*>(x);
  for (int64_t i = 0; i < n / 32; ++i)
    if (b[i].e >= 253) return false;
  return true;
}

// ---------------------------------------------------------------- traits

void install_legacy_ref(TypeTraits* table) {
  auto put = [&](TypeTraits t) { table[static_cast<int>(t.type)] = t; };
  put({DType::Q4_1, DType::Q8_1, to_float_fn<BlockQ4_1, dequantize_q4_1_ref>,
       from_float_fn<BlockQ4_1, quantize_q4_1_ref>, vec_dot_fn<BlockQ4_1, BlockQ8_1, vec_dot_q4_1_q8_1_ref>, "ref",
       nullptr, validate_q4_1});
  put({DType::Q5_0, DType::Q8_0, to_float_fn<BlockQ5_0, dequantize_q5_0_ref>,
       from_float_fn<BlockQ5_0, quantize_q5_0_ref>, vec_dot_fn<BlockQ5_0, BlockQ8_0, vec_dot_q5_0_q8_0_ref>, "ref",
       nullptr, validate_q5_0});
  put({DType::Q5_1, DType::Q8_1, to_float_fn<BlockQ5_1, dequantize_q5_1_ref>,
       from_float_fn<BlockQ5_1, quantize_q5_1_ref>, vec_dot_fn<BlockQ5_1, BlockQ8_1, vec_dot_q5_1_q8_1_ref>, "ref",
       nullptr, validate_q5_1});
  // Q8_1 exists only as an activation format.
  put({DType::Q8_1, DType::Q8_1, to_float_fn<BlockQ8_1, dequantize_q8_1_ref>,
       from_float_fn<BlockQ8_1, quantize_q8_1_ref>, nullptr, "ref"});
  put({DType::IQ4_NL, DType::Q8_0, to_float_fn<BlockIQ4_NL, dequantize_iq4_nl_ref>,
       from_float_fn<BlockIQ4_NL, quantize_iq4_nl_ref>, vec_dot_fn<BlockIQ4_NL, BlockQ8_0, vec_dot_iq4_nl_q8_0_ref>,
       "ref", nullptr, validate_iq4_nl});
  put({DType::MXFP4, DType::Q8_0, to_float_fn<BlockMXFP4, dequantize_mxfp4_ref>,
       from_float_fn<BlockMXFP4, quantize_mxfp4_ref>, vec_dot_fn<BlockMXFP4, BlockQ8_0, vec_dot_mxfp4_q8_0_ref>, "ref",
       nullptr, validate_mxfp4});
  put({DType::Q1_0, DType::Q8_0, to_float_fn<BlockQ1_0, dequantize_q1_0_ref>,
       from_float_fn<BlockQ1_0, quantize_q1_0_ref>, vec_dot_fn<BlockQ1_0, BlockQ8_0, vec_dot_q1_0_q8_0_ref>, "ref",
       nullptr, validate_q1_0});
}

}  // namespace tachyon::kernels
