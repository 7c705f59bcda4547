// Scalar reference kernels. Clarity over speed: these define the numerics that the SIMD
// variants are tested against.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "kernels/quant.h"

namespace tachyon::kernels {

int nearest_int(float x) { return static_cast<int>(std::nearbyint(x)); }

// ---------------------------------------------------------------- dequantize

void dequantize_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[i * QK4_0 + j] = ((x[i].qs[j] & 0xF) - 8) * d;
      y[i * QK4_0 + j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = x[i].qs[j] * d;
  }
}

void dequantize_q4_K_ref(const BlockQ4_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    const float dmin = f16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int j = 0; j < QK_K / 64; ++j) {  // pairs of sub-blocks share 32 bytes of nibbles
      uint8_t sc, m;
      get_scale_min_k4(2 * j, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      get_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void dequantize_q5_K_ref(const BlockQ5_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    const float dmin = f16_to_f32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K / 64; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(2 * j, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      get_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

// Q6_K element order: within each half (128 elements) element l+32*k for l<32 takes
// its low nibble from ql[l + 32*(k&1)] (low or high nibble by k>>1) and its 2 high bits
// from qh[l] bits 2k..2k+1; sub-block (16 elements) s uses scales[s].
void dequantize_q6_K_ref(const BlockQ6_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void dequantize_q8_K_ref(const BlockQ8_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i)
    for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * x[i].qs[j];
}

void dequantize_f16_ref(const f16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void dequantize_bf16_ref(const bf16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

// ---------------------------------------------------------------- activations

void quantize_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0 ? 127.f / amax : 0.f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
    x += QK8_0;
  }
}

void quantize_q8_K_ref(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      x += QK_K;
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[g * 16 + l];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
    x += QK_K;
  }
}

void quantize_f16_ref(const float* x, f16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void quantize_bf16_ref(const float* x, bf16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

// ---------------------------------------------------------------- weights

// Weight quantizers (the fits of llama.cpp's reference quantizer): quant_fit.cpp.

// ---------------------------------------------------------------- dot products

float vec_dot_f32_ref(int64_t n, const float* x, const float* y) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
  return static_cast<float>(s);
}

float vec_dot_f16_ref(int64_t n, const f16_t* x, const f16_t* y) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(f16_to_f32(x[i])) * f16_to_f32(y[i]);
  return static_cast<float>(s);
}

float vec_dot_bf16_ref(int64_t n, const bf16_t* x, const bf16_t* y) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_f32(x[i])) * bf16_to_f32(y[i]);
  return static_cast<float>(s);
}

float vec_dot_q4_0_q8_0_ref(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
      sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
    }
    sum += sumi * f16_to_f32(x[i].d) * f16_to_f32(y[i].d);
  }
  return sum;
}

float vec_dot_q8_0_q8_0_ref(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sum += sumi * f16_to_f32(x[i].d) * f16_to_f32(y[i].d);
  }
  return sum;
}

// K-quant dots: integer sums inside a super-block, one float multiply-add per block for
// the scales and one for the mins (via the precomputed Q8_K group sums).
float vec_dot_q4_K_q8_K_ref(int64_t n, const BlockQ4_K* x, const BlockQ8_K* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q4 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    int sumi = 0, summ = 0;
    for (int j = 0; j < QK_K / 64; ++j) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * j, x[i].scales, &sc0, &m0);
      get_scale_min_k4(2 * j + 1, x[i].scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q4[l] & 0xF) * q8[l];
        s1 += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) + m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
      q4 += 32;
      q8 += 64;
    }
    sum += f16_to_f32(x[i].d) * y[i].d * sumi - f16_to_f32(x[i].dmin) * y[i].d * summ;
  }
  return sum;
}

float vec_dot_q5_K_q8_K_ref(int64_t n, const BlockQ5_K* x, const BlockQ8_K* y) {
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const int8_t* q8 = y[i].qs;
    int sumi = 0, summ = 0;
    for (int j = 0; j < QK_K / 64; ++j) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * j, x[i].scales, &sc0, &m0);
      get_scale_min_k4(2 * j + 1, x[i].scales, &sc1, &m1);
      const uint8_t u1 = static_cast<uint8_t>(1 << (2 * j)), u2 = static_cast<uint8_t>(2 << (2 * j));
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) * q8[l];
        s1 += ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) + m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
      ql += 32;
      q8 += 64;
    }
    sum += f16_to_f32(x[i].d) * y[i].d * sumi - f16_to_f32(x[i].dmin) * y[i].d * summ;
  }
  return sum;
}

float vec_dot_q6_K_q8_K_ref(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y) {
  float sum = 0;
  int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const uint8_t* qh = x[i].qh + 32 * half;
      int8_t* o = q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        o[l + 0] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int sumi = 0;
    for (int s = 0; s < QK_K / 16; ++s) {
      int ss = 0;
      for (int l = 0; l < 16; ++l) ss += q[16 * s + l] * y[i].qs[16 * s + l];
      sumi += x[i].scales[s] * ss;
    }
    sum += f16_to_f32(x[i].d) * y[i].d * sumi;
  }
  return sum;
}

}  // namespace tachyon::kernels
