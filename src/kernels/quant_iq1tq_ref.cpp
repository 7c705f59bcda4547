// Scalar reference kernels for IQ1_S, IQ1_M, TQ1_0 and TQ2_0 (see quant_iq1tq.h).
#include <cmath>

#include "kernels/packed_ref.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_iq1tq.h"

namespace tachyon::kernels {

namespace {

// Trit n (0..4) of a TQ1_0 byte: scaling by 3^n (mod 256) brings it to the top, where
// (q * 3) >> 8 reads it.
inline int tq1_trit(uint8_t q, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t p = static_cast<uint8_t>(q * kPow3[n]);
  return (p * 3) >> 8;
}

// The 256 weights t - 1 (in {-1, 0, 1}) of a TQ1_0 block, in element order.
void tq1_0_unpack(const BlockTQ1_0& b, int8_t* w) {  // w: [QK_K]
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) w[32 * n + m] = static_cast<int8_t>(tq1_trit(b.qs[m], n) - 1);
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) w[160 + 16 * n + m] = static_cast<int8_t>(tq1_trit(b.qs[32 + m], n) - 1);
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 4; ++j) w[240 + 4 * n + j] = static_cast<int8_t>(tq1_trit(b.qh[j], n) - 1);
}

// The 256 weights q - 1 (in {-1, 0, 1, 2}; 2 never produced) of a TQ2_0 block.
void tq2_0_unpack(const BlockTQ2_0& b, int8_t* w) {  // w: [QK_K]
  for (int j = 0; j < 2; ++j)
    for (int l = 0; l < 4; ++l)
      for (int m = 0; m < 32; ++m)
        w[128 * j + 32 * l + m] = static_cast<int8_t>(((b.qs[32 * j + m] >> (2 * l)) & 3) - 1);
}

inline const int8_t* grid_entry(int index) { return reinterpret_cast<const int8_t*>(&kIq1sGrid[index]); }

// Ternary value of x / amax rounded half away from zero, as 0, 1, 2 (llama.cpp's lroundf).
inline int ternary(float x, float id) { return static_cast<int>(std::lround(x * id)) + 1; }

// ceil(v * 256 / 243): a base-3 number of 5 trits scaled to a byte, so that multiplying
// by 3^n (mod 256) brings trit n to the top.
inline uint8_t tq1_pack(int v) { return static_cast<uint8_t>((v * 256 + 242) / 243); }

// TQ1_0/TQ2_0: the lanes hold (w + 1) * q8 less Q8_K sums 2k and 2k+1 (the +1 taken back
// through the group sums, exact in total). llama.cpp writes the fold as a multiply and an
// add, which its compiler contracts to an FMA (the golden files agree only with that).
template <class B, void (*Unpack)(const B&, int8_t*)>
float ternary_dot(int64_t n, const B* x, const BlockQ8_K* y) {
  float acc[8] = {};
  int8_t w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    Unpack(x[i], w);
    int lanes[8] = {};
    for (int e = 0; e < QK_K; ++e) lanes[lane_of(e)] += (w[e] + 1) * y[i].qs[e];
    const float d = y[i].d * f16_to_f32(x[i].d);
    for (int k = 0; k < 8; ++k) {
      lanes[k] -= y[i].bsums[2 * k] + y[i].bsums[2 * k + 1];
      acc[k] = std::fma(static_cast<float>(lanes[k]), d, acc[k]);
    }
  }
  return sum8_avx2_order(acc);
}

}  // namespace

// ---------------------------------------------------------------- dequantize

void dequantize_iq1_s_ref(const BlockIQ1_S* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float dl = d * (2 * ((x[i].qh[ib] >> 12) & 7) + 1);
      const float delta = x[i].qh[ib] & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l) {
        const int8_t* g = grid_entry(iq1s_index(x[i], ib, l));
        for (int j = 0; j < 8; ++j) *y++ = dl * (g[j] + delta);
      }
    }
  }
}

void dequantize_iq1_m_ref(const BlockIQ1_M* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(iq1m_scale(x[i]));
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      for (int l = 0; l < 4; ++l) {
        const float dl = d * iq1m_sub_scale(x[i], ib, l / 2);
        const float delta = iq1m_delta_neg(x[i], ib, l) ? -kIq1Delta : kIq1Delta;
        const int8_t* g = grid_entry(iq1m_index(x[i], ib, l));
        for (int j = 0; j < 8; ++j) *y++ = dl * (g[j] + delta);
      }
    }
  }
}

void dequantize_tq1_0_ref(const BlockTQ1_0* x, float* y, int64_t n) {
  int8_t w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    tq1_0_unpack(x[i], w);
    for (int j = 0; j < QK_K; ++j) *y++ = static_cast<float>(w[j]) * d;
  }
}

void dequantize_tq2_0_ref(const BlockTQ2_0* x, float* y, int64_t n) {
  int8_t w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    tq2_0_unpack(x[i], w);
    for (int j = 0; j < QK_K; ++j) *y++ = static_cast<float>(w[j]) * d;
  }
}

// ---------------------------------------------------------------- quantize

void quantize_tq1_0_ref(const float* x, BlockTQ1_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float amax = 0;
    for (int j = 0; j < QK_K; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float id = amax != 0 ? 1 / amax : 0;
    y[i].d = f32_to_f16(amax);
    // groups of 5 (or 4) elements one stride apart, first element the top trit
    auto pack = [&](const float* e, int stride, int count) {
      int v = 0;
      for (int k = 0; k < count; ++k) v = 3 * v + ternary(e[k * stride], id);
      return tq1_pack(count == 5 ? v : 3 * v);
    };
    for (int m = 0; m < 32; ++m) y[i].qs[m] = pack(x + m, 32, 5);
    for (int m = 0; m < 16; ++m) y[i].qs[32 + m] = pack(x + 160 + m, 16, 5);
    for (int j = 0; j < 4; ++j) y[i].qh[j] = pack(x + 240 + j, 4, 4);
  }
}

void quantize_tq2_0_ref(const float* x, BlockTQ2_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float amax = 0;
    for (int j = 0; j < QK_K; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float id = amax != 0 ? 1 / amax : 0;
    y[i].d = f32_to_f16(amax);
    for (int j = 0; j < 2; ++j)
      for (int m = 0; m < 32; ++m) {
        int q = 0;
        for (int l = 0; l < 4; ++l) q |= ternary(x[128 * j + 32 * l + m], id) << (2 * l);
        y[i].qs[32 * j + m] = static_cast<uint8_t>(q);
      }
  }
}

// ---------------------------------------------------------------- dot products
//
// These follow llama.cpp's AVX2 kernels, whose rounding the golden files record: per
// super-block, 8 integer lanes (lane k: elements 4k..4k+3 of every 32-element chunk) folded
// into 8 float lanes with d_w * d_a, the lanes summed at the end in the order of a 256-bit
// horizontal add. The integer sums are exact; only these float steps have to match.

// The grid part in lanes (FMA); the delta part, through the Q8_K sums of 16, in one
// scalar (an FMA too: llama.cpp's compiler contracts its `accum1 += d * sumi1`).
float vec_dot_iq1_s_q8_K_ref(int64_t n, const BlockIQ1_S* x, const BlockQ8_K* y) {
  float acc[8] = {}, acc_delta = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int lanes[8] = {};
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const int ls = 2 * ((x[i].qh[ib] >> 12) & 7) + 1;
      for (int l = 0; l < 4; ++l) {
        const int8_t* g = grid_entry(iq1s_index(x[i], ib, l));
        for (int j = 0; j < 8; ++j) lanes[lane_of(8 * l + j)] += ls * g[j] * y[i].qs[32 * ib + 8 * l + j];
      }
    }
    const float d = y[i].d * f16_to_f32(x[i].d);
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
    acc_delta = std::fma(d, static_cast<float>(iq1s_delta_sum(x[i], y[i])), acc_delta);
  }
  return sum8_avx2_order(acc) + kIq1Delta * acc_delta;
}

// The delta sign changes every 8 weights, finer than the Q8_K sums: both parts in lanes.
float vec_dot_iq1_m_q8_K_ref(int64_t n, const BlockIQ1_M* x, const BlockQ8_K* y) {
  float acc[8] = {}, acc_delta[8] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int lanes[8] = {}, lanes_delta[8] = {};
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      for (int l = 0; l < 4; ++l) {
        const int8_t* g = grid_entry(iq1m_index(x[i], ib, l));
        const int ls = iq1m_sub_scale(x[i], ib, l / 2);
        const int delta = iq1m_delta_neg(x[i], ib, l) ? -1 : 1;
        for (int j = 0; j < 8; ++j) {
          const int q8 = y[i].qs[32 * ib + 8 * l + j];
          lanes[lane_of(8 * l + j)] += ls * g[j] * q8;
          lanes_delta[lane_of(8 * l + j)] += ls * delta * q8;
        }
      }
    }
    const float d = y[i].d * f16_to_f32(iq1m_scale(x[i]));
    for (int k = 0; k < 8; ++k) {
      acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
      acc_delta[k] = std::fma(d, static_cast<float>(lanes_delta[k]), acc_delta[k]);
    }
  }
  return sum8_avx2_order(acc) + kIq1Delta * sum8_avx2_order(acc_delta);
}

float vec_dot_tq1_0_q8_K_ref(int64_t n, const BlockTQ1_0* x, const BlockQ8_K* y) {
  return ternary_dot<BlockTQ1_0, tq1_0_unpack>(n, x, y);
}
float vec_dot_tq2_0_q8_K_ref(int64_t n, const BlockTQ2_0* x, const BlockQ8_K* y) {
  return ternary_dot<BlockTQ2_0, tq2_0_unpack>(n, x, y);
}

// ---------------------------------------------------------------- validate

bool validate_iq1_s(const void* x, int64_t n) { return scales_finite<BlockIQ1_S, QK_K>(x, n); }
bool validate_tq1_0(const void* x, int64_t n) { return scales_finite<BlockTQ1_0, QK_K>(x, n); }
bool validate_tq2_0(const void* x, int64_t n) { return scales_finite<BlockTQ2_0, QK_K>(x, n); }
bool validate_iq1_m(const void* x, int64_t n) {
  const BlockIQ1_M* b = static_cast<const BlockIQ1_M*>(x);
  for (int64_t i = 0; i < n / QK_K; ++i)
    if (!std::isfinite(f16_to_f32(iq1m_scale(b[i])))) return false;
  return true;
}

// ---------------------------------------------------------------- traits

void install_iq1tq_ref(TypeTraits* table) {
  auto put = [&](TypeTraits t) { table[static_cast<int>(t.type)] = t; };
  put({DType::IQ1_S, DType::Q8_K, to_float_fn<BlockIQ1_S, dequantize_iq1_s_ref>, nullptr,
       vec_dot_fn<BlockIQ1_S, BlockQ8_K, vec_dot_iq1_s_q8_K_ref>, "ref", nullptr, validate_iq1_s});
  put({DType::IQ1_M, DType::Q8_K, to_float_fn<BlockIQ1_M, dequantize_iq1_m_ref>, nullptr,
       vec_dot_fn<BlockIQ1_M, BlockQ8_K, vec_dot_iq1_m_q8_K_ref>, "ref", nullptr, validate_iq1_m});
  put({DType::TQ1_0, DType::Q8_K, to_float_fn<BlockTQ1_0, dequantize_tq1_0_ref>,
       from_float_fn<BlockTQ1_0, quantize_tq1_0_ref>, vec_dot_fn<BlockTQ1_0, BlockQ8_K, vec_dot_tq1_0_q8_K_ref>, "ref",
       nullptr, validate_tq1_0});
  put({DType::TQ2_0, DType::Q8_K, to_float_fn<BlockTQ2_0, dequantize_tq2_0_ref>,
       from_float_fn<BlockTQ2_0, quantize_tq2_0_ref>, vec_dot_fn<BlockTQ2_0, BlockQ8_K, vec_dot_tq2_0_q8_K_ref>, "ref",
       nullptr, validate_tq2_0});
}

}  // namespace tachyon::kernels
