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
        for (int64_t k = i; k < n; ++k) s += f16_to_f32(x[r][k]) * f16_to_f32(y[c][k]);
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

// Q4_0: llama.cpp repacks Q4_0 matrices (rows a multiple of 8) into 8-row interleaved
// blocks and accumulates, per row and token, one FMA chain over blocks:
// acc += float(dot_b) * (d_w * d_a). The same chain here.
struct Q40 {
  // NR is 1 or a multiple of 4: the float chains of 4 rows run in the lanes of one
  // vector (the same operations per lane as the scalar chain of a single row).
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    static_assert(NR == 1 || NR % 4 == 0);
    constexpr int NG = NR >= 4 ? NR / 4 : 1;
    const int64_t nb = n / QK8_0;
    const __m256i low = _mm256_set1_epi8(0xF), off = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    __m128 acc[NC][NG];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) acc[c][g] = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      __m256i ax[NR], qx[NR];
      alignas(16) float dx[4 * NG];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const BlockQ4_0* x = reinterpret_cast<const BlockQ4_0*>(w + r * ws) + i;
        const __m128i q = load128(x->qs);
        // low nibbles are elements 0..15, high nibbles 16..31
        qx[r] = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low), off);
        ax[r] = _mm256_sign_epi8(qx[r], qx[r]);
        dx[r] = f16_to_f32(x->d);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(a + c * as) + i;
        const __m256i qy = load256(y->qs);
        const float dy = f16_to_f32(y->d);
        __m256i p[NR];
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(ax[r], _mm256_sign_epi8(qy, qx[r])), ones);
        if constexpr (NR == 1) {
          acc[c][0] = _mm_fmadd_ss(_mm_cvtepi32_ps(_mm_cvtsi32_si128(hsum_i32(p[0]))), _mm_set_ss(dx[0] * dy), acc[c][0]);
        } else {
#pragma GCC unroll 4
          for (int g = 0; g < NG; ++g) {
            // the 4 rows' dot products in the lanes of one vector
            const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4 * g], p[4 * g + 1]),
                                                _mm256_hadd_epi32(p[4 * g + 2], p[4 * g + 3]));
            const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            const __m128 d = _mm_mul_ps(_mm_load_ps(dx + 4 * g), _mm_set1_ps(dy));
            acc[c][g] = _mm_fmadd_ps(_mm_cvtepi32_ps(s), d, acc[c][g]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) {
      if constexpr (NR == 1) {
        out[c * ld] = _mm_cvtss_f32(acc[c][0]);
      } else {
#pragma GCC unroll 4
        for (int g = 0; g < NG; ++g) _mm_storeu_ps(out + c * ld + 4 * g, acc[c][g]);
      }
    }
  }
};

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
        dx[r] = f16_to_f32(x->d);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(a + c * as) + i;
        const __m256i qy = load256(y->qs);
        const float dy = f16_to_f32(y->d);
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
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 32 * i + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float am = _mm_cvtss_f32(m4);
    y[i].d = f32_to_f16(am / 127.f);
    const __m256 id = _mm256_set1_ps(am != 0 ? 127.f / am : 0.f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), p);
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
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void dequantize_q4_0_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(vx);
  const __m128i low = _mm_set1_epi8(0xF), off = _mm_set1_epi8(8);
  for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
    const __m256 d = _mm256_set1_ps(f16_to_f32(x[i].d));
    const __m128i q = load128(x[i].qs);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, low), off);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), low), off);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
  }
}

void dequantize_q8_0_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
    const __m256 d = _mm256_set1_ps(f16_to_f32(x[i].d));
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
  auto& q40 = t[static_cast<int>(DType::Q4_0)];
  q40.vec_dot = dot_1x1<Q40>;
  q40.vec_dot_tile = tile_driver<Q40, 4, 4, 8>;
  q40.to_float = dequantize_q4_0_avx2;
  q40.impl = "avx2";
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
