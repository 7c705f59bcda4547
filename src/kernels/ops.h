// Element-wise and row-wise operations of the transformer forward pass (f32).
#pragma once
#include <cstdint>

#include "base/fp16.h"

namespace tachyon::kernels {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * (w ? w[i] : 1). out may alias x.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);
// rms_norm of n_rows rows (row r at x + r*ldx, to out + r*ldo; out rows may alias x's),
// the same bits row by row: the rows' serial double sums advance together (one row's
// chain of dependent adds, ~2.4 us for 2048, left the core mostly idle).
void rms_norm_rows(const float* x, int64_t ldx, const float* w, int64_t n, float eps, float* out, int64_t ldo,
                   int64_t n_rows);
// Its portable form, and the AVX2 one (lanes = rows) where the CPU has AVX2; for tests.
void rms_norm_rows_ref(const float* x, int64_t ldx, const float* w, int64_t n, float eps, float* out, int64_t ldo,
                       int64_t n_rows);
#if defined(__x86_64__)
void rms_norm_rows_avx2(const float* x, int64_t ldx, const float* w, int64_t n, float eps, float* out, int64_t ldo,
                        int64_t n_rows);
#endif

enum class RopeMode { kNorm, kNeox };  // adjacent pairs (llama) or split halves (qwen2/3)

struct RopeParams {
  RopeMode mode = RopeMode::kNorm;
  int n_rot = 0;             // rotated dims (<= head_dim)
  float freq_base = 10000.f;
  float freq_scale = 1.f;    // linear position scaling (1 / factor)
  const float* freq_factors = nullptr;  // [n_rot/2] divisors of the frequencies (rope_freqs), or null
  float attn_factor = 1.f;   // cos/sin multiplied by it (rope.scaling.attn_factor, LongRoPE)
};

// Precomputes cos/sin for one position: cs[2*i] = cos(theta_i), cs[2*i+1] = sin(theta_i),
// i < n_rot/2 (theta computed as ggml does: repeated multiplication by base^(-2/n_rot)).
void rope_cache(const RopeParams& p, int32_t pos, float* cs);
// Rotates one head vector x[head_dim] in place with a cache from rope_cache.
void rope_apply(const RopeParams& p, const float* cs, float* x);

// exp(x) by range reduction and a degree-5 polynomial (max error ~1.5 ulp).
float expf_poly(float x);

#if defined(__x86_64__)
// expf with glibc's algorithm, 8 lanes at a time (AVX2 + FMA only; see expf_avx2.h):
// returns what std::exp returns. Exposed for its test.
void expf_libm_avx2(const float* x, int64_t n, float* y);
#endif

// y[i] = f32_to_f16(x[i]) (base/fp16.h; F16C 8 at a time where the CPU has it, same bits).
void f32_to_f16_row(const float* x, int64_t n, f16_t* y);

// y[i] = std::exp(x[i]) (the same bits), 8 lanes at a time where the CPU has AVX2 + FMA.
// y may equal x.
void exp_libm(const float* x, int64_t n, float* y);

// Passes of the sampler over a vocabulary of logits (AVX2 where the CPU has it, the same
// results as the scalar loops; a 32k-vocabulary sample was ~100 us of scalar passes):
// y[i] = x[i], NaN -> -inf and +inf -> FLT_MAX (y may equal x);
void sanitize_logits(const float* x, int64_t n, float* y);
// the largest of x[n] (no NaN in x; -inf when n == 0);
float max_f32(const float* x, int64_t n);
// y[i] = std::exp(x[i] - c) (y may equal x).
void exp_shifted(const float* x, int64_t n, float c, float* y);

#if defined(__x86_64__)
void sanitize_logits_avx2(const float* x, int64_t n, float* y);
float max_f32_avx2(const float* x, int64_t n);
void exp_shifted_avx2(const float* x, int64_t n, float c, float* y);
#endif

// x[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, int64_t n, float* out);

// out[i] = gelu(gate[i]) * up[i], GELU's tanh approximation as ggml computes it on CPUs:
// through a table of f16 results indexed by the f16-rounded input (0 below -10, the input
// itself from 10 on). out may alias gate or up.
void geglu(const float* gate, const float* up, int64_t n, float* out);
// The tanh-approximated GELU in f32 (the table's entries before rounding to f16).
float gelu_tanh_f32(float x);

// In-place softmax over n; returns the log-sum-exp.
float softmax(float* x, int64_t n);

// Log-sum-exp of x[n] (max-shifted, double accumulation).
double log_sum_exp(const float* x, int64_t n);

}  // namespace tachyon::kernels
