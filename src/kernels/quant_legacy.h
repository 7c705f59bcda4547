// The "legacy" 32-element block formats besides Q4_0/Q8_0 (Q4_1, Q5_0, Q5_1, IQ4_NL,
// MXFP4), the 1-bit Q1_0 (128-element blocks) and Q8_1, the activation format of Q4_1 and
// Q5_1: plain structs as stored in GGUF (bit-compatible with ggml) and their scalar
// reference kernels (quant_legacy_ref.cpp). Dot products consume llama.cpp's
// vec_dot_type for each weight type: Q8_1 for Q4_1/Q5_1, Q8_0 for the others (four Q8_0
// blocks per Q1_0 block).
//
// Every vec_dot_*_ref performs llama.cpp's integer sums and scale products; its float
// steps are the ones of the AVX2 kernels (quant_legacy_avx2.cpp), which give the same
// bits:
//  - 32-element types: per block, acc = fma(float(isum), d_w * d_a, acc), and for
//    Q4_1/Q5_1 then acc = fma(m_w, s_a, acc) (the min term, with s_a = d_a * sum(q_a)).
//    It is the chain of our fastest tile (Q4_0's) and of llama.cpp's repacked IQ4_NL
//    GEMM (IQ4_NL logits agree with llama.cpp's to 1e-4); llama.cpp's Q4_1/Q5_0/Q5_1
//    kernels accumulate 8 float lanes instead, so ours differ from theirs in the last
//    bits (and, through the rounding of the next layer's activations, by ~0.15 in logits);
//  - Q1_0: llama.cpp's AVX2 order: 8 float lanes, lane l summing elements 4l..4l+3 of
//    each Q8_0 sub-block k: t = d_a0 * float(isum_0), t = fma(d_ak, float(isum_k), t),
//    acc_l = fma(d_w, t, acc_l); the lanes summed as a 256-bit horizontal add.
#pragma once
#include <cstdint>

#include "kernels/quant.h"

namespace tachyon::kernels {

constexpr int QK1_0 = 128;

// y = d * q + m, q in [0, 15]; low nibbles hold elements 0..15, high nibbles 16..31.
struct BlockQ4_1 {
  f16_t d;
  f16_t m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

// y = d * (q - 16), q in [0, 31]: its low 4 bits as in Q4_0, bit 4 of element j in bit j
// of qh (little-endian).
struct BlockQ5_0 {
  f16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

// y = d * q + m, q in [0, 31], bits laid out as in Q5_0.
struct BlockQ5_1 {
  f16_t d;
  f16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Activations for Q4_1/Q5_1: y = d * q, with s = d * sum(q) (f16) for the min terms.
struct BlockQ8_1 {
  f16_t d;
  f16_t s;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// y = d * kIq4nlValues[q], q a 4-bit index, nibbles laid out as in Q4_0.
struct BlockIQ4_NL {
  f16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// OCP MX FP4: y = 2^(e-127) * E2M1(q) = e8m0_to_f32_half(e) * kMxfp4Values[q] (the
// table holds the E2M1 values doubled). e = 255 (NaN) never occurs in a valid file.
struct BlockMXFP4 {
  uint8_t e;
  uint8_t qs[16];
};
static_assert(sizeof(BlockMXFP4) == 17);

// y = q ? d : -d, element j in bit j % 8 of qs[j / 8].
struct BlockQ1_0 {
  f16_t d;
  uint8_t qs[QK1_0 / 8];
};
static_assert(sizeof(BlockQ1_0) == 18);

// The 16 non-linear levels of IQ4_NL (and of IQ4_XS, quant_kq.h) and the E2M1 values
// (doubled) of MXFP4.
extern const int8_t kIq4nlValues[16];
extern const int8_t kMxfp4Values[16];

// 2^(e - 128), i.e. half the E8M0 scale (subnormal for e < 2), as llama.cpp's
// ggml_e8m0_to_fp32_half.
float e8m0_to_f32_half(uint8_t e);

void dequantize_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_q5_0_ref(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_q5_1_ref(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n);
void dequantize_iq4_nl_ref(const BlockIQ4_NL* x, float* y, int64_t n);
void dequantize_mxfp4_ref(const BlockMXFP4* x, float* y, int64_t n);
void dequantize_q1_0_ref(const BlockQ1_0* x, float* y, int64_t n);

// Activation quantizer: llama.cpp's CPU quantize_row_q8_1 (scale amax/127, ties to even).
void quantize_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n);
// Weight quantizers: llama.cpp's quantize_row_*_ref; for IQ4_NL its quantize_iq4_nl
// without an importance matrix (the scale search llama-quantize runs, quant_fit.h).
void quantize_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n);
void quantize_q5_0_ref(const float* x, BlockQ5_0* y, int64_t n);
void quantize_q5_1_ref(const float* x, BlockQ5_1* y, int64_t n);
void quantize_iq4_nl_ref(const float* x, BlockIQ4_NL* y, int64_t n);
void quantize_mxfp4_ref(const float* x, BlockMXFP4* y, int64_t n);
void quantize_q1_0_ref(const float* x, BlockQ1_0* y, int64_t n);

float vec_dot_q4_1_q8_1_ref(int64_t n, const BlockQ4_1* x, const BlockQ8_1* y);
float vec_dot_q5_0_q8_0_ref(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y);
float vec_dot_q5_1_q8_1_ref(int64_t n, const BlockQ5_1* x, const BlockQ8_1* y);
float vec_dot_iq4_nl_q8_0_ref(int64_t n, const BlockIQ4_NL* x, const BlockQ8_0* y);
float vec_dot_mxfp4_q8_0_ref(int64_t n, const BlockMXFP4* x, const BlockQ8_0* y);
float vec_dot_q1_0_q8_0_ref(int64_t n, const BlockQ1_0* x, const BlockQ8_0* y);

// False when a block holds a NaN/Inf f16 scale or min (an E8M0 exponent of 255 for MXFP4).
bool validate_q4_1(const void* x, int64_t n);
bool validate_q5_0(const void* x, int64_t n);
bool validate_q5_1(const void* x, int64_t n);
bool validate_iq4_nl(const void* x, int64_t n);
bool validate_mxfp4(const void* x, int64_t n);
bool validate_q1_0(const void* x, int64_t n);

}  // namespace tachyon::kernels
