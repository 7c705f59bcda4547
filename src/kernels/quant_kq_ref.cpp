// Scalar references of Q2_K, Q3_K and IQ4_XS: dequantizers bit-exact with llama.cpp's,
// its reference quantizers (the same fitting searches, float operations in the same
// order, so the same bytes), and dot products in the float order of the AVX2 kernels,
// which is that of llama.cpp's AVX2 vec_dot (see quant_kq.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/packed_ref.h"
#include "kernels/quant_fit.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_kq.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {

namespace {

// The 2-bit field of element e (Q2_K, and Q3_K's low bits).
inline int low2(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3; }

// Q3_K's sub-block scale s, with its offset: [-32, 31].
inline int q3_scale(const uint8_t* sc, int s) {
  const int lo = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4;
  const int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (lo | hi << 4) - 32;
}

// Q3_K's quant of element e: [-4, 3].
inline int q3_quant(const BlockQ3_K& b, int e) { return low2(b.qs, e) - ((b.hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4); }

// IQ4_XS's sub-block scale ib, with its offset: [-32, 31].
inline int iq4xs_scale(const BlockIQ4_XS& b, int ib) {
  return (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4)) - 32;
}

// IQ4_XS's level index of element e.
inline int iq4xs_index(const BlockIQ4_XS& b, int e) {
  const uint8_t q = b.qs[16 * (e / 32) + e % 16];
  return e % 32 < 16 ? q & 0xF : q >> 4;
}

}  // namespace

// ---------------------------------------------------------------- dequantize

void dequantize_q2_K_ref(const BlockQ2_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d), dmin = f16_to_f32(x[i].dmin);
    for (int e = 0; e < QK_K; ++e) {
      const uint8_t sc = x[i].scales[e / 16];
      const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
      *y++ = dl * low2(x[i].qs, e) - ml;
    }
  }
}

void dequantize_q3_K_ref(const BlockQ3_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int e = 0; e < QK_K; ++e) *y++ = d * q3_scale(x[i].scales, e / 16) * q3_quant(x[i], e);
  }
}

void dequantize_iq4_xs_ref(const BlockIQ4_XS* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int e = 0; e < QK_K; ++e) *y++ = d * iq4xs_scale(x[i], e / 32) * kIq4nlValues[iq4xs_index(x[i], e)];
  }
}

// ---------------------------------------------------------------- dot products

// Q2_K: per super-block, first the min terms (lane l: sub-blocks 2l and 2l+1 through the
// Q8_K group sums) with -dmin * d8, then the scaled products with d * d8, as llama.cpp's
// AVX2 kernel does.
float vec_dot_q2_K_q8_K_ref(int64_t n, const BlockQ2_K* x, const BlockQ8_K* y) {
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * f16_to_f32(x[i].d);
    const float dmin = -y[i].d * f16_to_f32(x[i].dmin);
    int32_t lanes[8] = {};
    for (int e = 0; e < QK_K; ++e) lanes[lane_of(e)] += (x[i].scales[e / 16] & 0xF) * low2(x[i].qs, e) * y[i].qs[e];
    for (int l = 0; l < 8; ++l) {
      const int32_t m = (x[i].scales[2 * l] >> 4) * y[i].bsums[2 * l] + (x[i].scales[2 * l + 1] >> 4) * y[i].bsums[2 * l + 1];
      acc[l] = std::fma(dmin, static_cast<float>(m), acc[l]);
      acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
    }
  }
  return sum8_avx2_order(acc);
}

float vec_dot_q3_K_q8_K_ref(int64_t n, const BlockQ3_K* x, const BlockQ8_K* y) {
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * f16_to_f32(x[i].d);
    int32_t lanes[8] = {};
    for (int e = 0; e < QK_K; ++e) lanes[lane_of(e)] += q3_scale(x[i].scales, e / 16) * q3_quant(x[i], e) * y[i].qs[e];
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
  }
  return sum8_avx2_order(acc);
}

float vec_dot_iq4_xs_q8_K_ref(int64_t n, const BlockIQ4_XS* x, const BlockQ8_K* y) {
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d) * y[i].d;
    int32_t lanes[8] = {};
    for (int e = 0; e < QK_K; ++e)
      lanes[lane_of(e)] += iq4xs_scale(x[i], e / 32) * kIq4nlValues[iq4xs_index(x[i], e)] * y[i].qs[e];
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
  }
  return sum8_avx2_order(acc);
}

// ---------------------------------------------------------------- weights

namespace {

// llama.cpp's make_q3_quants (with its rmse search) as Q3_K calls it: a signed scale for
// 16 values with L in [-4, 3], from the max-magnitude fit refined by up to 5 rounds of
// single-quant moves that raise the x^2-weighted sum_lx^2 / sum_l2. Writes L + 4.
float fit_q3_sub_block(const float* x, int8_t* L) {
  constexpr int n = 16, nmax = 4;
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // all zero: llama.cpp leaves quants 0 (that is -4)
    std::fill(L, L + n, 0);
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int round = 0; round < 5; ++round) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (!(slx > 0)) continue;
      float sl2 = suml2 - w * L[i] * L[i];
      const int l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (l == L[i]) continue;
      slx += w * x[i] * l;
      sl2 += w * l * l;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0 ? sumlx / suml2 : 0.f;
}

// Element e of a super-block: its 2-bit field goes to qs as low2() reads it.
void pack_low2(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(q[0] | q[32] << 2 | q[64] << 4 | q[96] << 6);
    }
}

}  // namespace

void quantize_q2_K_ref(const float* x, BlockQ2_K* y, int64_t n) {
  constexpr float q4scale = 15.f;
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    float scales[QK_K / 16], mins[QK_K / 16], w[16];
    float max_scale = 0, max_min = 0;
    for (int s = 0; s < QK_K / 16; ++s) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * s + l]);
      scales[s] = fit_scale_min(16, 3, x + 16 * s, w, L + 16 * s, &mins[s], -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[s]);
      max_min = std::max(max_min, mins[s]);
    }
    // 4-bit scales and mins relative to the largest of each
    std::memset(y[i].scales, 0, sizeof y[i].scales);
    y[i].d = f32_to_f16(max_scale > 0 ? max_scale / q4scale : 0.f);
    y[i].dmin = f32_to_f16(max_min > 0 ? max_min / q4scale : 0.f);
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int s = 0; s < QK_K / 16; ++s) y[i].scales[s] = static_cast<uint8_t>(nearest_int(iscale * scales[s]));
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int s = 0; s < QK_K / 16; ++s) y[i].scales[s] |= static_cast<uint8_t>(nearest_int(iscale * mins[s]) << 4);
    }
    // requantize against the stored scales (a sub-block whose scale rounded to 0 keeps
    // its fitted quants)
    for (int s = 0; s < QK_K / 16; ++s) {
      const float d = f16_to_f32(y[i].d) * (y[i].scales[s] & 0xF);
      if (d == 0) continue;
      const float dm = f16_to_f32(y[i].dmin) * (y[i].scales[s] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * s + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * s + l] + dm) / d), 0, 3));
    }
    pack_low2(L, y[i].qs);
  }
}

namespace {

// Q3_K tail: packs the 6-bit scale codes Ls (l + 32) as a nibble and 2 high bits, stores
// d, recomputes the quants L[256] (0..7) from the stored scales, and writes them as 2 low
// bits plus the high-bit mask (element e: bit e / 32 of hmask[e % 32]).
void store_q3_K(const float* x, const int8_t* Ls, float d_block, int8_t* L, BlockQ3_K* y) {
  std::memset(y->scales, 0, sizeof y->scales);
  for (int s = 0; s < QK_K / 16; ++s) {
    const int l = Ls[s];
    y->scales[s % 8] |= static_cast<uint8_t>((l & 0xF) << (s < 8 ? 0 : 4));
    y->scales[8 + s % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (s / 4)));
  }
  y->d = f32_to_f16(d_block);
  for (int s = 0; s < QK_K / 16; ++s) {
    const float d = f16_to_f32(y->d) * q3_scale(y->scales, s);
    if (d == 0) continue;
    for (int l = 0; l < 16; ++l)
      L[16 * s + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * s + l] / d), -4, 3) + 4);
  }
  std::memset(y->hmask, 0, sizeof y->hmask);
  uint8_t low[QK_K];
  for (int e = 0; e < QK_K; ++e) {
    if (L[e] > 3) y->hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
    low[e] = static_cast<uint8_t>(L[e] & 3);
  }
  pack_low2(low, y->qs);
}

}  // namespace

void quantize_q3_K_ref(const float* x, BlockQ3_K* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, amax = 0;  // the scale of largest magnitude, with its sign
    for (int s = 0; s < QK_K / 16; ++s) {
      scales[s] = fit_q3_sub_block(x + 16 * s, L + 16 * s);
      if (std::fabs(scales[s]) > amax) {
        amax = std::fabs(scales[s]);
        max_scale = scales[s];
      }
    }
    // 6-bit signed scales relative to it: l + 32 (all 0 when the block is all zero)
    int8_t Ls[QK_K / 16] = {};
    float d_block = 0.f;
    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      for (int s = 0; s < QK_K / 16; ++s)
        Ls[s] = static_cast<int8_t>(
            std::clamp(static_cast<int>(static_cast<int8_t>(nearest_int(iscale * scales[s]))), -32, 31) + 32);
      d_block = 1 / iscale;
    }
    store_q3_K(x, Ls, d_block, L, &y[i]);
  }
}

namespace {

// qw (optional): the importance of the n columns, weighting each sub-block's fit by
// qw * sqrt(sigma2 + x^2), sigma2 twice the super-block's mean square.
void quantize_iq4_xs_impl(const float* x, BlockIQ4_XS* y, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float sigma2 = 0;
    if (qw) {
      for (int j = 0; j < QK_K; ++j) sigma2 += x[j] * x[j];
      sigma2 *= 2.f / QK_K;
    }
    float scales[QK_K / 32], w[32];
    float max_scale = 0, amax = 0;  // the scale of largest magnitude, with its sign
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      if (qw) importance_weights(32, x + 32 * ib, qw + QK_K * i + 32 * ib, sigma2, w);
      scales[ib] = fit_iq4nl_scale(x + 32 * ib, qw ? w : nullptr);
      if (std::fabs(scales[ib]) > amax) {
        amax = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    // 6-bit signed sub-block scales relative to d, then each quant against its stored scale
    const float d = -max_scale / 32;
    y[i].d = f32_to_f16(d);
    const float id = d != 0 ? 1 / d : 0.f;
    y[i].scales_h = 0;
    std::memset(y[i].scales_l, 0, sizeof y[i].scales_l);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * l;
      const float idl = dl != 0 ? 1 / dl : 0.f;
      const float* xb = x + 32 * ib;
      uint8_t* q = y[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j)
        q[j] = static_cast<uint8_t>(nearest_iq4nl_index(idl * xb[j]) | nearest_iq4nl_index(idl * xb[j + 16]) << 4);
      y[i].scales_l[ib / 2] |= static_cast<uint8_t>(((l + 32) & 0xF) << (4 * (ib % 2)));
      y[i].scales_h |= static_cast<uint16_t>(((l + 32) >> 4) << (2 * ib));
    }
  }
}

}  // namespace

void quantize_iq4_xs_ref(const float* x, BlockIQ4_XS* y, int64_t n) { quantize_iq4_xs_impl(x, y, n, nullptr); }

// ---------------------------------------------------------------- with an importance matrix
// llama.cpp's quantize_row_q2_K_impl / q3_K_impl with quant_weights, one row at a time:
// sub-blocks of 16 weighted qw * sqrt(sigma2 + x^2) (sigma2 the super-block's mean square,
// doubled for Q3_K), their scales (and Q2_K's mins) fitted to 4 or 6 bits weighted by each
// sub-block's weight sum, quants recomputed from the stored scales.

namespace {

void q2_K_weighted_row(const float* x, BlockQ2_K* y, int64_t n_per_row, const float* qw) {
  for (int64_t i = 0; i < n_per_row / QK_K; ++i, x += QK_K) {
    float sum_x2 = 0;
    for (int j = 0; j < QK_K; ++j) sum_x2 += x[j] * x[j];
    const float sigma2 = sum_x2 / QK_K;
    uint8_t L[QK_K];
    float scales[QK_K / 16], mins[QK_K / 16], sw[QK_K / 16], w[16];
    for (int s = 0; s < QK_K / 16; ++s) {
      importance_weights(16, x + 16 * s, qw + QK_K * i + 16 * s, sigma2, w);
      float sum_w = 0;
      for (int l = 0; l < 16; ++l) sum_w += w[l];
      sw[s] = sum_w;
      scales[s] = fit_scale_min(16, 3, x + 16 * s, w, L + 16 * s, &mins[s], -0.9f, 0.05f, 36, false);
    }
    uint8_t Ls[QK_K / 16], Lm[QK_K / 16];
    const float dm_fit = fit_positive_scale(QK_K / 16, 15, scales, Ls, sw);
    const float mm_fit = fit_positive_scale(QK_K / 16, 15, mins, Lm, sw);
    y[i].d = f32_to_f16(dm_fit);
    y[i].dmin = f32_to_f16(mm_fit);
    const float dm = f16_to_f32(y[i].d), mm = f16_to_f32(y[i].dmin);
    for (int s = 0; s < QK_K / 16; ++s) y[i].scales[s] = static_cast<uint8_t>(Ls[s] | (Lm[s] << 4));
    for (int s = 0; s < QK_K / 16; ++s) {
      const float d = dm * (y[i].scales[s] & 0xF);
      if (d == 0) continue;
      const float m = mm * (y[i].scales[s] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * s + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * s + l] + m) / d), 0, 3));
    }
    pack_low2(L, y[i].qs);
  }
}

void q3_K_weighted_row(const float* x, BlockQ3_K* y, int64_t n_per_row, const float* qw) {
  for (int64_t i = 0; i < n_per_row / QK_K; ++i, x += QK_K) {
    float sum_x2 = 0;
    for (int j = 0; j < QK_K; ++j) sum_x2 += x[j] * x[j];
    const float sigma2 = 2 * sum_x2 / QK_K;
    int8_t L[QK_K];
    float scales[QK_K / 16], sw[QK_K / 16], w[16];
    for (int s = 0; s < QK_K / 16; ++s) {
      importance_weights(16, x + 16 * s, qw + QK_K * i + 16 * s, sigma2, w);
      float sum_w = 0;
      for (int l = 0; l < 16; ++l) sum_w += w[l];
      sw[s] = sum_w;
      scales[s] = fit_signed_scale(16, 4, x + 16 * s, L + 16 * s, w);
    }
    // 6-bit codes (l + 32, from the fit) split into a nibble and 2 high bits
    int8_t Ls[QK_K / 16];
    const float d_block = fit_signed_scale(QK_K / 16, 32, scales, Ls, sw);
    store_q3_K(x, Ls, d_block, L, &y[i]);
  }
}

}  // namespace

void quantize_q2_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ2_K, QK_K, q2_K_weighted_row>(x, y, n, imatrix, n_cols);
}
void quantize_q3_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockQ3_K, QK_K, q3_K_weighted_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq4_xs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ4_XS, QK_K, quantize_iq4_xs_impl>(x, y, n, imatrix, n_cols);
}

// ---------------------------------------------------------------- validate

bool validate_q2_K(const void* x, int64_t n) { return scales_finite<BlockQ2_K, QK_K>(x, n); }
bool validate_q3_K(const void* x, int64_t n) { return scales_finite<BlockQ3_K, QK_K>(x, n); }
bool validate_iq4_xs(const void* x, int64_t n) { return scales_finite<BlockIQ4_XS, QK_K>(x, n); }

// ---------------------------------------------------------------- traits

void install_kq_ref(TypeTraits* table) {
  auto put = [&](TypeTraits t) { table[static_cast<int>(t.type)] = t; };
  put({DType::Q2_K, DType::Q8_K, to_float_fn<BlockQ2_K, dequantize_q2_K_ref>,
       from_float_fn<BlockQ2_K, quantize_q2_K_ref>, vec_dot_fn<BlockQ2_K, BlockQ8_K, vec_dot_q2_K_q8_K_ref>, "ref",
       nullptr, validate_q2_K});
  put({DType::Q3_K, DType::Q8_K, to_float_fn<BlockQ3_K, dequantize_q3_K_ref>,
       from_float_fn<BlockQ3_K, quantize_q3_K_ref>, vec_dot_fn<BlockQ3_K, BlockQ8_K, vec_dot_q3_K_q8_K_ref>, "ref",
       nullptr, validate_q3_K});
  put({DType::IQ4_XS, DType::Q8_K, to_float_fn<BlockIQ4_XS, dequantize_iq4_xs_ref>,
       from_float_fn<BlockIQ4_XS, quantize_iq4_xs_ref>, vec_dot_fn<BlockIQ4_XS, BlockQ8_K, vec_dot_iq4_xs_q8_K_ref>,
       "ref", nullptr, validate_iq4_xs});
}

}  // namespace tachyon::kernels
