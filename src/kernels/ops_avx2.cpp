// AVX2 + FMA forms of element-wise ops in ops.cpp, giving the same bits: the same float
// operations in the same order (std::fma here compiles to the FMA instruction instead
// of a libm call).
#if defined(__x86_64__)
#include <cfloat>
#include <cmath>

#include "kernels/expf_avx2.h"
#include "base/fp16.h"
#include "kernels/ops.h"

namespace tachyon::kernels {

// out[i] = g / (1 + expf_poly(-g)) * up[i], as swiglu.
void swiglu_avx2(const float* gate, const float* up, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = avx2::expf_poly8(_mm256_xor_ps(g, neg));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf_poly(-g)) * up[i];
  }
}

// As f32_to_f16_row: vcvtps2ph with round-to-nearest-even is what f32_to_f16 computes.
void f32_to_f16_row_f16c(const float* x, int64_t n, f16_t* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

// y[i] = expf(x[i]) with the libm-identical vector exp (kernels/expf_avx2.h); for tests.
void expf_libm_avx2(const float* x, int64_t n, float* y) {
  const long long* tab = avx2::exp2_table32();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, avx2::expf_libm8(_mm256_loadu_ps(x + i), tab));
  for (; i < n; ++i) y[i] = std::exp(x[i]);
}

// As sanitize_logits: NaN lanes to -inf (unordered compare), then min with FLT_MAX.
void sanitize_logits_avx2(const float* x, int64_t n, float* y) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY), big = _mm256_set1_ps(FLT_MAX);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    _mm256_storeu_ps(y + i, _mm256_blendv_ps(_mm256_min_ps(v, big), ninf, nan));
  }
  for (; i < n; ++i) {
    const float l = x[i];
    y[i] = l != l ? -INFINITY : l > FLT_MAX ? FLT_MAX : l;
  }
}

// As max_f32 (the maximum does not depend on the order; +-0 compare equal).
float max_f32_avx2(const float* x, int64_t n) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
    m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
    m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  float m = lanes[0];
  for (int j = 1; j < 8; ++j) m = m > lanes[j] ? m : lanes[j];
  for (; i < n; ++i) m = m > x[i] ? m : x[i];
  return m;
}

// As exp_shifted: the subtraction, then the libm-identical vector exp.
void exp_shifted_avx2(const float* x, int64_t n, float c, float* y) {
  const long long* tab = avx2::exp2_table32();
  const __m256 cv = _mm256_set1_ps(c);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, avx2::expf_libm8(_mm256_sub_ps(_mm256_loadu_ps(x + i), cv), tab));
  for (; i < n; ++i) y[i] = std::exp(x[i] - c);
}

// As rope_apply.
void rope_apply_avx2(const RopeParams& p, const float* cs, float* x) {
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

}  // namespace tachyon::kernels
#endif  // __x86_64__
