// AVX2 + FMA + F16C variants. Compiled with those flags (see CMakeLists) and installed
// only when the CPU reports them. Each has a _ref twin in quant_ref.cpp.
#if defined(__x86_64__)
#include "kernels/avx2_common.h"
#include "kernels/quant.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

float vec_dot_f32_avx2(int64_t n, const void* vx, const void* vy) {
  const float* x = static_cast<const float*>(vx);
  const float* y = static_cast<const float*>(vy);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

// F16: two 8-lane FMA accumulators over 16-element steps, summed at the end; the
// tail as float products added in order.
struct F16 {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    __m256 acc0[NC][NR], acc1[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc0[c][r] = acc1[c][r] = _mm256_setzero_ps();
    const f16_t* x[NR];
    const f16_t* y[NC];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) x[r] = reinterpret_cast<const f16_t*>(w + r * ws);
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) y[c] = reinterpret_cast<const f16_t*>(a + c * as);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256 x0[NR], x1[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x0[r] = _mm256_cvtph_ps(load128(x[r] + i));
        x1[r] = _mm256_cvtph_ps(load128(x[r] + i + 8));
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const __m256 y0 = _mm256_cvtph_ps(load128(y[c] + i));
        const __m256 y1 = _mm256_cvtph_ps(load128(y[c] + i + 8));
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          acc0[c][r] = _mm256_fmadd_ps(x0[r], y0, acc0[c][r]);
          acc1[c][r] = _mm256_fmadd_ps(x1[r], y1, acc1[c][r]);
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        float s = hsum(_mm256_add_ps(acc0[c][r], acc1[c][r]));
        for (int64_t k = i; k < n; ++k) s += half_to_float(x[r][k]) * half_to_float(y[c][k]);
        out[c * ld + r] = s;
      }
  }
};

float vec_dot_bf16_avx2(int64_t n, const void* vx, const void* vy) {
  const bf16_t* x = static_cast<const bf16_t*>(vx);
  const bf16_t* y = static_cast<const bf16_t*>(vy);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i xi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))), 16);
    const __m256i yi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i))), 16);
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(xi), _mm256_castsi256_ps(yi), acc);
  }
  float s = hsum(acc);
  for (; i < n; ++i) s += bf16_to_f32(x[i]) * bf16_to_f32(y[i]);
  return s;
}

// Q8_0: 8 float lanes accumulated by FMA over blocks, summed at the end (as llama.cpp's
// AVX2 vec_dot and its tiled sgemm do).
struct Q80 {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      __m256i ax[NR], qx[NR];
      float dx[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(w + r * ws) + i;
        _mm_prefetch(reinterpret_cast<const char*>(x + 12), _MM_HINT_T0);
        qx[r] = load256(x->qs);
        ax[r] = _mm256_sign_epi8(qx[r], qx[r]);
        dx[r] = half_to_float(x->d);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(a + c * as) + i;
        const __m256i qy = load256(y->qs);
        const float dy = half_to_float(y->d);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax[r], _mm256_sign_epi8(qy, qx[r])), ones);
          acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(dx[r] * dy), _mm256_cvtepi32_ps(p), acc[c][r]);
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

// Activations to Q8_0: the same rounding as the reference (ties to even).
void quantize_q8_0_avx2(const float* x, void* vy, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(vy);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    __m256i q[4];
    y[i].d = f32_to_f16(quantize32_q8(x + 32 * i, y[i].qs, q) / 127.f);
  }
}

void quantize_f16_avx2(const float* x, void* vy, int64_t n) {
  f16_t* y = static_cast<f16_t*>(vy);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void dequantize_f16_avx2(const void* vx, float* y, int64_t n) {
  const f16_t* x = static_cast<const f16_t*>(vx);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = half_to_float(x[i]);
}

void dequantize_q8_0_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[i].d));
    for (int k = 0; k < 4; ++k)
      _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                                                    reinterpret_cast<const __m128i*>(x[i].qs + 8 * k)))),
                                                d));
  }
}

}  // namespace

void install_kquant_avx2_kernels(TypeTraits* t);  // kquants_avx2.cpp

void install_avx2_kernels(TypeTraits* t) {
  auto& f32 = t[static_cast<int>(DType::F32)];
  f32.vec_dot = vec_dot_f32_avx2;
  f32.impl = "avx2";
  auto& f16 = t[static_cast<int>(DType::F16)];
  f16.vec_dot = dot_1x1<F16>;
  f16.vec_dot_tile = tile_driver<F16, 2, 2, 4>;
  f16.from_float = quantize_f16_avx2;
  f16.to_float = dequantize_f16_avx2;
  f16.impl = "avx2";
  auto& bf16 = t[static_cast<int>(DType::BF16)];
  bf16.vec_dot = vec_dot_bf16_avx2;
  bf16.impl = "avx2";
  // Q4_0: with the other 32-element types (quant_legacy_avx2.cpp)
  auto& q80 = t[static_cast<int>(DType::Q8_0)];
  q80.vec_dot = dot_1x1<Q80>;
  q80.vec_dot_tile = tile_driver<Q80, 4, 2, 4>;
  q80.from_float = quantize_q8_0_avx2;
  q80.to_float = dequantize_q8_0_avx2;
  q80.impl = "avx2";
  install_kquant_avx2_kernels(t);
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
