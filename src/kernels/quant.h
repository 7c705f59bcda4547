// Quantized block formats as stored in GGUF files (bit-compatible with ggml), each a
// plain struct with its size asserted, plus the scalar reference kernels for them.
// Every SIMD kernel has its reference twin here and a test comparing the two.
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/fp16.h"

namespace tachyon::kernels {

constexpr int QK4_0 = 32;
constexpr int QK8_0 = 32;
constexpr int QK_K = 256;
constexpr int K_SCALE_SIZE = 12;

// y = d * (q - 8), q in [0, 15]; low nibbles hold elements 0..15, high nibbles 16..31.
struct BlockQ4_0 {
  f16_t d;
  uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// y = d * q
struct BlockQ8_0 {
  f16_t d;
  int8_t qs[QK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Super-block of 8 sub-blocks of 32: y = d * sc_j * q - dmin * m_j, with 6-bit
// scales/mins packed into `scales`.
struct BlockQ4_K {
  f16_t d;
  f16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// As Q4_K with a fifth bit per weight in qh.
struct BlockQ5_K {
  f16_t d;
  f16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 16 sub-blocks of 16: y = d * sc_j * (q - 32), q 6-bit (4 low bits in ql, 2 high in qh).
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  f16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Activation format for K-quant dot products: float scale, 8-bit quants, and the sums
// of each group of 16 quants (used for the min terms).
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Round to nearest, ties to even (what the hardware rounding in ggml's kernels does).
int nearest_int(float x);

// ---- scalar reference: dequantize n elements (n a multiple of the block size) ----
void dequantize_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_q4_K_ref(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_q5_K_ref(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_q6_K_ref(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_q8_K_ref(const BlockQ8_K* x, float* y, int64_t n);
void dequantize_f16_ref(const f16_t* x, float* y, int64_t n);
void dequantize_bf16_ref(const bf16_t* x, float* y, int64_t n);

// ---- scalar reference: quantize n floats ----
// Activation quantizers (match llama.cpp's rounding of activations).
void quantize_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
void quantize_q8_K_ref(const float* x, BlockQ8_K* y, int64_t n);
void quantize_f16_ref(const float* x, f16_t* y, int64_t n);
void quantize_bf16_ref(const float* x, bf16_t* y, int64_t n);
// Weight quantizers (quant_fit.cpp): the fits of llama.cpp's reference quantizer, same
// bytes; used by `tachyon quantize`.
void quantize_q8_0_weights_ref(const float* x, BlockQ8_0* y, int64_t n);
void quantize_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void quantize_q4_K_ref(const float* x, BlockQ4_K* y, int64_t n);
void quantize_q5_K_ref(const float* x, BlockQ5_K* y, int64_t n);
void quantize_q6_K_ref(const float* x, BlockQ6_K* y, int64_t n);
// Importance-weighted weight quantizers: llama.cpp's fits with quant_weights (what
// llama-quantize --imatrix writes). x holds n / n_cols rows of n_cols floats; imatrix[0..
// n_cols) is the per-column importance every row uses. TypeTraits::quantize_weighted.
void quantize_q4_0_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q4_1_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q5_0_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q5_1_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q2_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q3_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q4_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q5_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_q6_K_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq4_nl_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq4_xs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);

// ---- scalar reference dot products: weight row (n elements) . activation row ----
float vec_dot_f32_ref(int64_t n, const float* x, const float* y);
float vec_dot_f16_ref(int64_t n, const f16_t* x, const f16_t* y);
float vec_dot_bf16_ref(int64_t n, const bf16_t* x, const bf16_t* y);
float vec_dot_q4_0_q8_0_ref(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y);
float vec_dot_q8_0_q8_0_ref(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y);
float vec_dot_q4_K_q8_K_ref(int64_t n, const BlockQ4_K* x, const BlockQ8_K* y);
float vec_dot_q5_K_q8_K_ref(int64_t n, const BlockQ5_K* x, const BlockQ8_K* y);
float vec_dot_q6_K_q8_K_ref(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y);

}  // namespace tachyon::kernels
