#include "kernels/ops.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "base/cpu.h"

namespace tachyon::kernels {

#if defined(__x86_64__)
void swiglu_avx2(const float* gate, const float* up, int64_t n, float* out);  // ops_avx2.cpp
void rope_apply_avx2(const RopeParams& p, const float* cs, float* x);
void f32_to_f16_row_f16c(const float* x, int64_t n, f16_t* y);

namespace {
bool use_avx2() {
  static const bool on = [] {
    const auto& f = cpu_features();
    return f.avx2 && f.fma;
  }();
  return on;
}
}  // namespace
#endif

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double sum = 0;
  // float products summed in double: the same rounding as ggml's rms_norm
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
}

void rms_norm_rows(const float* x, int64_t ldx, const float* w, int64_t n, float eps, float* out, int64_t ldo,
                   int64_t n_rows) {
#if defined(__x86_64__)
  if (use_avx2() && n_rows > 1) return rms_norm_rows_avx2(x, ldx, w, n, eps, out, ldo, n_rows);
#endif
  rms_norm_rows_ref(x, ldx, w, n, eps, out, ldo, n_rows);
}

void rms_norm_rows_ref(const float* x, int64_t ldx, const float* w, int64_t n, float eps, float* out, int64_t ldo,
                       int64_t n_rows) {
  constexpr int kRows = 8;
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kRows, n_rows - r0));
    if (nr == 1) {
      rms_norm(x + r0 * ldx, w, n, eps, out + r0 * ldo);
      continue;
    }
    // each row's sum is the serial chain of rms_norm; the rows' chains interleave
    const float* xr[kRows];
    for (int r = 0; r < kRows; ++r) xr[r] = x + (r0 + std::min(r, nr - 1)) * ldx;  // short groups repeat a row
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5], *x6 = xr[6], *x7 = xr[7];
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (int64_t i = 0; i < n; ++i) {
      s0 += static_cast<double>(x0[i] * x0[i]);
      s1 += static_cast<double>(x1[i] * x1[i]);
      s2 += static_cast<double>(x2[i] * x2[i]);
      s3 += static_cast<double>(x3[i] * x3[i]);
      s4 += static_cast<double>(x4[i] * x4[i]);
      s5 += static_cast<double>(x5[i] * x5[i]);
      s6 += static_cast<double>(x6[i] * x6[i]);
      s7 += static_cast<double>(x7[i] * x7[i]);
    }
    const double sum[kRows] = {s0, s1, s2, s3, s4, s5, s6, s7};
    for (int r = 0; r < nr; ++r) {
      const float mean = static_cast<float>(sum[r] / n);
      const float scale = 1.0f / std::sqrt(mean + eps);
      const float* xi = xr[r];
      float* o = out + (r0 + r) * ldo;
      if (w) {
        for (int64_t i = 0; i < n; ++i) o[i] = (xi[i] * scale) * w[i];
      } else {
        for (int64_t i = 0; i < n; ++i) o[i] = xi[i] * scale;
      }
    }
  }
}

void rope_cache(const RopeParams& p, int32_t pos, float* cs) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / p.n_rot);
  float theta = static_cast<float>(pos);
  for (int i = 0; i < p.n_rot / 2; ++i) {
    const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
    const float t = p.freq_scale * (theta / ff);
    cs[2 * i] = std::cos(t) * p.attn_factor;
    cs[2 * i + 1] = std::sin(t) * p.attn_factor;
    theta *= theta_scale;
  }
}

void rope_apply(const RopeParams& p, const float* cs, float* x) {
#if defined(__x86_64__)
  if (use_avx2()) return rope_apply_avx2(p, cs, x);
#endif
  const int half = p.n_rot / 2;
  if (p.mode == RopeMode::kNorm) {
    for (int i = 0; i < half; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float x0 = x[2 * i], x1 = x[2 * i + 1];
      x[2 * i] = std::fma(x0, c, -(x1 * s));
      x[2 * i + 1] = std::fma(x0, s, x1 * c);
    }
  } else {
    for (int i = 0; i < half; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float x0 = x[i], x1 = x[i + half];
      x[i] = std::fma(x0, c, -(x1 * s));
      x[i + half] = std::fma(x0, s, x1 * c);
    }
  }
}

float expf_poly(float x) {
  // exp(x) = 2^n * (1 + p(b)), n = round(x / ln2), b = x - n*ln2 (two-part ln2), p a
  // degree-5 minimax polynomial without its constant term. The same reduction,
  // coefficients and final k + k*p rounding as the widely used vectorized expf (ARM
  // optimized-routines) in its AVX2 form, which ggml's SIMD SiLU and softmax use;
  // agreeing with it bit for bit keeps our activations rounding like llama.cpp's.
  const float shift = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, shift);
  const float n = z - shift;
  if (!(std::fabs(n) <= 126.f)) return std::exp(x);
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  const float k = std::ldexp(1.0f, static_cast<int>(n));
  return std::fma(j, k, k);
}

void f32_to_f16_row(const float* x, int64_t n, f16_t* y) {
#if defined(__x86_64__)
  static const bool f16c = cpu_features().f16c && cpu_features().avx2;
  if (f16c) return f32_to_f16_row_f16c(x, n, y);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void exp_libm(const float* x, int64_t n, float* y) {
#if defined(__x86_64__)
  if (use_avx2()) return expf_libm_avx2(x, n, y);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void sanitize_logits(const float* x, int64_t n, float* y) {
#if defined(__x86_64__)
  if (use_avx2()) return sanitize_logits_avx2(x, n, y);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float l = x[i];
    y[i] = l != l ? -INFINITY : l > FLT_MAX ? FLT_MAX : l;
  }
}

float max_f32(const float* x, int64_t n) {
#if defined(__x86_64__)
  if (use_avx2()) return max_f32_avx2(x, n);
#endif
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

void exp_shifted(const float* x, int64_t n, float c, float* y) {
#if defined(__x86_64__)
  if (use_avx2()) return exp_shifted_avx2(x, n, c, y);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - c);
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
#if defined(__x86_64__)
  if (use_avx2()) return swiglu_avx2(gate, up, n, out);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf_poly(-g)) * up[i];
  }
}

float gelu_tanh_f32(float x) {
  constexpr float kA = 0.044715f;
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kA * x * x)));
}

namespace {
// gelu of every f16 value, rounded to f16 and widened back.
const float* gelu_f16_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t i = 0; i < 65536; ++i)
      v[i] = f16_to_f32(f32_to_f16(gelu_tanh_f32(f16_to_f32(static_cast<f16_t>(i)))));
    return v;
  }();
  return t.data();
}
}  // namespace

void geglu(const float* gate, const float* up, int64_t n, float* out) {
  const float* tab = gelu_f16_table();
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    if (x <= -10.0f) out[i] = 0.0f;
    else if (x >= 10.0f) out[i] = x * up[i];
    else out[i] = tab[f32_to_f16(x)] * up[i];
  }
}

float softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
  return mx + static_cast<float>(std::log(sum));
}

double log_sum_exp(const float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(sum);
}

}  // namespace tachyon::kernels
