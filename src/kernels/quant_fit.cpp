// Weight quantizers of the first types (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) and the searches
// shared with the later ones (quant_fit.h): the fits llama.cpp's reference quantizer makes
// (without an importance matrix), in the same float operations and order, so that
// `tachyon quantize` writes the blocks llama-quantize writes (checked block by block in
// tests/golden/quantize_golden_test.cpp). The searches:
//  - fit_scale_min: y = scale * L + min over a sub-block, min <= 0, L in [0, nmax]: the
//    min/max fit, then nstep+1 trial inverse scales, each refined by weighted least squares
//    for scale and min, keeping the lowest weighted squared (Q4_K, Q5_K) or absolute
//    (Q2_K) error;
//  - fit_signed_scale: y = scale * L, L in [-nmax, nmax-1], x^2- or imatrix-weighted: the
//    max-magnitude fit refined by least squares, then 18 trial inverse scales around it
//    (Q6_K; with an importance matrix also Q4_0, Q5_0, Q3_K);
//  - fit_positive_scale: the 6- or 4-bit sub-block scales of the imatrix-weighted K-quants;
//  - fit_iq4nl_scale: the scale of 32 values on IQ4_NL's non-linear levels (IQ4_NL,
//    IQ4_XS's sub-blocks).
#include "kernels/quant_fit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {

namespace {

constexpr float kAllZero = 1e-15f;  // below it a group counts as all zero (GROUP_MAX_EPS)

}  // namespace

float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float rmin,
                    float rdelta, int nstep, bool use_mad) {
  // the weighted error of one element (diff = fitted - x)
  auto error = [use_mad](float w_i, float diff) { return w_i * (use_mad ? std::fabs(diff) : diff * diff); };
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, 0);
    *neg_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
    best_error += error(w[i], scale * L[i] + min - x[i]);
  }
  uint8_t trial[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) err += error(w[i], this_scale * trial[i] + this_min - x[i]);
    if (err < best_error) {
      std::copy(trial, trial + n, L);
      best_error = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

int nearest_iq4nl_index(float v) {
  const int8_t* levels = kIq4nlValues;
  if (v <= levels[0]) return 0;
  if (v >= levels[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (v < levels[mid] ? hi : lo) = mid;
  }
  return v - levels[hi - 1] < levels[hi] - v ? hi - 1 : hi;
}

float fit_iq4nl_scale(const float* x, const float* weights) {
  constexpr int n = 32, ntry = 7;
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kAllZero) return 0.f;
  // the weighted sums of levels and products for inverse scale id
  auto sums = [&](float id, float* sumqx, float* sumq2) {
    *sumqx = *sumq2 = 0;
    for (int j = 0; j < n; ++j) {
      const float q = kIq4nlValues[nearest_iq4nl_index(id * x[j])];
      const float w = weights ? weights[j] : x[j] * x[j];
      *sumqx += w * q * x[j];
      *sumq2 += w * q * q;
    }
  };
  float sumqx, sumq2;
  sums(1 / (-max / kIq4nlValues[0]), &sumqx, &sumq2);
  float d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int t = -ntry; t <= ntry; ++t) {
    sums((t + kIq4nlValues[0]) / max, &sumqx, &sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

float fit_signed_scale(int n, int nmax, const float* x, int8_t* L, const float* weights) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kAllZero) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  auto quant = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = quant(iscale, i);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = weights ? weights[i] : x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = quant(iscale, i);
      const float w = weights ? weights[i] : x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(quant(iscale, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float fit_positive_scale(int n, int nmax, const float* x, uint8_t* L, const float* w) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kAllZero) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  float iscale = nmax / max;
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const uint8_t l = static_cast<uint8_t>(nearest_int(iscale * x[i]));  // stored as llama.cpp's L
    const float diff = x[i] - scale * l;
    best_mse += w[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * is + nmax) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * l;
      mse += w[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    sumlx += w[i] * x[i] * l;
    suml2 += w[i] * l * l;
  }
  for (int round = 0; round < 5; ++round) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      float slx = sumlx - w[i] * x[i] * L[i];
      float sl2 = suml2 - w[i] * L[i] * L[i];
      if (!(slx > 0 && sl2 > 0)) continue;
      const int l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
      if (l == L[i]) continue;
      slx += w[i] * x[i] * l;
      sl2 += w[i] * l * l;
      if (slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<uint8_t>(l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

namespace {

// Q5_K quants L[256] (0..31): low nibbles in qs, the fifth bits in qh.
void pack_q5_K_quants(const uint8_t* L, BlockQ5_K* y) {
  std::memset(y->qh, 0, sizeof y->qh);
  for (int j = 0; j < QK_K / 64; ++j) {
    for (int l = 0; l < 32; ++l) {
      const int a = L[64 * j + l], b = L[64 * j + 32 + l];
      y->qs[32 * j + l] = static_cast<uint8_t>((a & 0xF) | ((b & 0xF) << 4));
      if (a & 16) y->qh[l] |= static_cast<uint8_t>(1 << (2 * j));
      if (b & 16) y->qh[l] |= static_cast<uint8_t>(2 << (2 * j));
    }
  }
}

// Q4_K / Q5_K tail: packs the 6-bit sub-block scales Ls and mins Lm (llama.cpp's 12-byte
// layout), stores d and dmin as f16, and recomputes every quant L[256] in [0, nmax] from the
// stored scales.
void store_k_scales(const float* x, int nmax, const uint8_t* Ls, const uint8_t* Lm, float d_block, float m_block,
                    f16_t* d, f16_t* dmin, uint8_t* packed, uint8_t* L) {
  std::memset(packed, 0, K_SCALE_SIZE);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = Ls[j], lm = Lm[j];
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d = f32_to_f16(d_block);
  *dmin = f32_to_f16(m_block);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, &sc, &m);
    const float dj = f16_to_f32(*d) * sc;
    if (dj == 0) continue;
    const float dm = f16_to_f32(*dmin) * m;
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + l] + dm) / dj), 0, nmax));
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 fitted with fit_scale_min (weights |x| + rms), their
// scales and mins quantized to 6 bits against the largest, then every quant recomputed
// from the stored scales. Writes d, dmin, the packed scales and L[256] in [0, nmax].
void fit_k_superblock(const float* x, int nmax, float rmin, int nstep, f16_t* d, f16_t* dmin, uint8_t* packed,
                      uint8_t* L) {
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t Ls[8], Lm[8];
  for (int j = 0; j < 8; ++j) {
    Ls[j] = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j]) & 0xFF));
    Lm[j] = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j]) & 0xFF));
  }
  store_k_scales(x, nmax, Ls, Lm, max_scale / 63.f, max_min / 63.f, d, dmin, packed, L);
}

}  // namespace

// Weights: scale amax/127 through its reciprocal, round half away from zero (roundf), as
// llama.cpp's reference; activations round to even instead (quantize_q8_0_ref).
void quantize_q8_0_weights_ref(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

// Q4_0: d = -max/8 from the element of largest magnitude; quants truncate x/d + 8.5.
void quantize_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK4_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    auto q = [&](float v) { return std::min(15, static_cast<int>(static_cast<int8_t>(v * id + 8.5f))); };
    for (int j = 0; j < QK4_0 / 2; ++j) y[i].qs[j] = static_cast<uint8_t>(q(x[j]) | (q(x[j + QK4_0 / 2]) << 4));
  }
}

void quantize_q4_K_ref(const float* x, BlockQ4_K* y, int64_t n) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    fit_k_superblock(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int j = 0; j < QK_K / 64; ++j)
      for (int l = 0; l < 32; ++l) y[i].qs[32 * j + l] = static_cast<uint8_t>(L[64 * j + l] | (L[64 * j + 32 + l] << 4));
  }
}

void quantize_q5_K_ref(const float* x, BlockQ5_K* y, int64_t n) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    fit_k_superblock(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    pack_q5_K_quants(L, &y[i]);
  }
}

namespace {

// Q6_K: 16 sub-blocks of 16 fitted with fit_signed_scale (x^2-weighted, or by the
// importance qw[0..n) as given, without llama.cpp's sigma2 term), their scales quantized to
// int8 against the largest in magnitude, quants recomputed from the stored scales.
void quantize_q6_K_impl(const float* x, BlockQ6_K* y, int64_t n, const float* qw) {
  int8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float scales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int s = 0; s < QK_K / 16; ++s) {
      scales[s] = fit_signed_scale(16, 32, x + 16 * s, L + 16 * s, qw ? qw + QK_K * i + 16 * s : nullptr);
      if (std::fabs(scales[s]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[s]);
        max_scale = scales[s];
      }
    }
    if (max_abs_scale < kAllZero) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = f32_to_f16(1 / iscale);
    for (int s = 0; s < QK_K / 16; ++s) y[i].scales[s] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[s])));
    for (int s = 0; s < QK_K / 16; ++s) {
      const float d = f16_to_f32(y[i].d) * y[i].scales[s];
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * s + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * s + l] / d), -32, 31) + 32);
    }
    for (int half = 0; half < 2; ++half) {
      uint8_t* ql = y[i].ql + 64 * half;
      uint8_t* qh = y[i].qh + 32 * half;
      const int8_t* Lh = L + 128 * half;
      for (int l = 0; l < 32; ++l) {
        const int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace

void quantize_q6_K_ref(const float* x, BlockQ6_K* y, int64_t n) { quantize_q6_K_impl(x, y, n, nullptr); }

// ---------------------------------------------------------------- with an importance matrix
// llama.cpp's quantize_row_<type>_impl with quant_weights, one row of n_per_row at a time;
// qw holds the row's n_per_row column importances.

namespace {

// Q4_0: each block of 32 by make_qx_quants (nmax 8) weighted qw * sqrt(sigma2 + x^2),
// sigma2 the mean square of the row.
void q4_0_weighted_row(const float* x, BlockQ4_0* y, int64_t n_per_row, const float* qw) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
  const float sigma2 = sum_x2 / n_per_row;
  float w[QK4_0];
  int8_t L[QK4_0];
  for (int64_t ib = 0; ib < n_per_row / QK4_0; ++ib) {
    const float* xb = x + QK4_0 * ib;
    importance_weights(QK4_0, xb, qw + QK4_0 * ib, sigma2, w);
    y[ib].d = f32_to_f16(fit_signed_scale(QK4_0, 8, xb, L, w));
    for (int j = 0; j < QK4_0 / 2; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + QK4_0 / 2] << 4));
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 fitted with fit_scale_min (make_qkx3_quants: 37 trials)
// weighted qw * sqrt(sigma2 + x^2), sigma2 twice the mean square of the super-block; the
// scales and mins then fitted to 6 bits by fit_positive_scale weighted by each sub-block's
// weight sum, and every quant recomputed from the stored scales. Q5_K clamps the 6-bit
// codes to 63 (clamp63), Q4_K stores them as they are, as llama.cpp does.
void fit_k_superblock_weighted(const float* x, const float* qw, int nmax, bool clamp63, f16_t* d, f16_t* dmin,
                               uint8_t* packed, uint8_t* L) {
  float sum_x2 = 0;
  for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / QK_K;
  float scales[8], mins[8], sw[8], w[32];
  for (int j = 0; j < 8; ++j) {
    importance_weights(32, x + 32 * j, qw + 32 * j, sigma2, w);
    float sum_w = 0;
    for (int l = 0; l < 32; ++l) sum_w += w[l];
    sw[j] = sum_w;
    scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], -0.9f, 0.05f, 36, false);
  }
  uint8_t Ls[8], Lm[8];
  const float d_block = fit_positive_scale(8, 63, scales, Ls, sw);
  const float m_block = fit_positive_scale(8, 63, mins, Lm, sw);
  if (clamp63)
    for (int j = 0; j < 8; ++j) {
      Ls[j] = std::min<uint8_t>(63, Ls[j]);
      Lm[j] = std::min<uint8_t>(63, Lm[j]);
    }
  store_k_scales(x, nmax, Ls, Lm, d_block, m_block, d, dmin, packed, L);
}

void q4_K_weighted_row(const float* x, BlockQ4_K* y, int64_t n_per_row, const float* qw) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n_per_row / QK_K; ++i, x += QK_K) {
    fit_k_superblock_weighted(x, qw + QK_K * i, 15, false, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int j = 0; j < QK_K / 64; ++j)
      for (int l = 0; l < 32; ++l) y[i].qs[32 * j + l] = static_cast<uint8_t>(L[64 * j + l] | (L[64 * j + 32 + l] << 4));
  }
}

void q5_K_weighted_row(const float* x, BlockQ5_K* y, int64_t n_per_row, const float* qw) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n_per_row / QK_K; ++i, x += QK_K) {
    fit_k_superblock_weighted(x, qw + QK_K * i, 31, true, &y[i].d, &y[i].dmin, y[i].scales, L);
    pack_q5_K_quants(L, &y[i]);
  }
}

}  // namespace

void quantize_q4_0_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ4_0, QK4_0, q4_0_weighted_row>(x, y, n, imatrix, n_cols);
}
void quantize_q4_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ4_K, QK_K, q4_K_weighted_row>(x, y, n, imatrix, n_cols);
}
void quantize_q5_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ5_K, QK_K, q5_K_weighted_row>(x, y, n, imatrix, n_cols);
}
void quantize_q6_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ6_K, QK_K, quantize_q6_K_impl>(x, y, n, imatrix, n_cols);
}

}  // namespace tachyon::kernels
