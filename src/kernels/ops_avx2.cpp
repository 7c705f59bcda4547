// AVX2 + FMA forms of element-wise ops in ops.cpp, giving the same bits: the same float
// operations in the same order (std::fma here compiles to the FMA instruction instead
// of a libm call).
#if defined(__x86_64__)
#include <algorithm>
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

// As rms_norm_rows: lanes = rows. Columns come 4 at a time from 4 rows, transposed, so
// that each double lane adds its own row's float squares in column order: the serial
// chain of rms_norm per lane, two groups of 4 rows interleaved.
void rms_norm_rows_avx2(const float* x, int64_t ldx, const float* w, int64_t n, float eps, float* out, int64_t ldo,
                        int64_t n_rows) {
  for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
    const int nr = static_cast<int>(std::min<int64_t>(8, n_rows - r0));
    const float* xr[8];
    for (int r = 0; r < 8; ++r) xr[r] = x + (r0 + std::min(r, nr - 1)) * ldx;  // short groups repeat a row
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    const bool two = nr > 4;
    int64_t i = 0;
    // lane r of a += the squares of columns i..i+3 of row r[lane], in column order
    auto add4 = [](__m256d a, const float* const* r, int64_t i) {
      __m128 c0 = _mm_loadu_ps(r[0] + i), c1 = _mm_loadu_ps(r[1] + i), c2 = _mm_loadu_ps(r[2] + i),
             c3 = _mm_loadu_ps(r[3] + i);
      _MM_TRANSPOSE4_PS(c0, c1, c2, c3);
      a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm_mul_ps(c0, c0)));
      a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm_mul_ps(c1, c1)));
      a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm_mul_ps(c2, c2)));
      return _mm256_add_pd(a, _mm256_cvtps_pd(_mm_mul_ps(c3, c3)));
    };
    for (; i + 4 <= n; i += 4) {
      a0 = add4(a0, xr, i);
      if (two) a1 = add4(a1, xr + 4, i);
    }
    alignas(32) double sum[8];
    _mm256_store_pd(sum, a0);
    _mm256_store_pd(sum + 4, a1);
    for (int r = 0; r < nr; ++r) {
      const float* xi = xr[r];
      double sr = sum[r];
      for (int64_t j = i; j < n; ++j) sr += static_cast<double>(xi[j] * xi[j]);
      const float mean = static_cast<float>(sr / n);
      const float scale = 1.0f / std::sqrt(mean + eps);
      const __m256 sv = _mm256_set1_ps(scale);
      float* o = out + (r0 + r) * ldo;
      int64_t k = 0;
      if (w) {
        for (; k + 8 <= n; k += 8)
          _mm256_storeu_ps(o + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xi + k), sv), _mm256_loadu_ps(w + k)));
        for (; k < n; ++k) o[k] = (xi[k] * scale) * w[k];
      } else {
        for (; k + 8 <= n; k += 8) _mm256_storeu_ps(o + k, _mm256_mul_ps(_mm256_loadu_ps(xi + k), sv));
        for (; k < n; ++k) o[k] = xi[k] * scale;
      }
    }
  }
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
