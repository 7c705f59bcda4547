// The kernel registry: for every weight type, its row kernels (dequantize, quantize, dot
// products, validation) in every variant this build has: the scalar reference and each
// SIMD stage the CPU supports (AVX2, then AVX-512 over it). Packed layouts (packed.h) are
// the registry's second half, listed per type by packed_kernel_variants().
// type_traits() returns the fastest variant; type_traits_ref() the scalar reference (tests,
// --scalar); kernel_variants() all of them, so tests iterate every kernel that any machine
// may run here, and weight_type_names() is what "type not supported" errors list.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace tachyon::kernels {

struct TypeTraits {
  DType type;
  DType vec_dot_type;  // activation format the dot product consumes
  // Dequantizes n elements (n a multiple of the block size).
  void (*to_float)(const void* x, float* y, int64_t n);
  // Converts n floats into this type; for vec_dot_type entries this is the activation
  // quantizer. nullptr where not provided.
  void (*from_float)(const float* x, void* y, int64_t n);
  // Dot product of n elements: a weight row of this type and an activation row of
  // vec_dot_type.
  float (*vec_dot)(int64_t n, const void* w, const void* a);
  const char* impl;  // "ref", "avx2", ...
  // Optional (nullptr: use vec_dot): a block of dot products of nr weight rows (row r
  // at w + r*w_stride bytes) with nc activation rows (row c at a + c*a_stride bytes):
  // out[c*ld_out + r] for r < nr, c < nc. Each result is bit-identical to vec_dot of
  // the same pair, so batching never changes a number; the block form only reuses
  // loaded and unpacked data across rows and tokens.
  void (*vec_dot_tile)(int64_t n, int nr, int nc, const void* w, size_t w_stride, const void* a, size_t a_stride,
                       float* out, int64_t ld_out) = nullptr;
  // Optional: false when n elements of blocks hold a value no valid file has (a NaN or
  // infinite scale, an out-of-range index); the loader rejects such a tensor.
  bool (*validate)(const void* x, int64_t n) = nullptr;
  // Optional: the weight quantizer where it differs from from_float (Q8_0: llama.cpp rounds
  // weights half away from zero, activations to even). weight_quantizer() picks.
  void (*quantize_weights)(const float* x, void* y, int64_t n) = nullptr;
  auto weight_quantizer() const { return quantize_weights ? quantize_weights : from_float; }
  // Optional: the importance-weighted weight quantizer (llama-quantize --imatrix): n floats
  // in rows of n_cols, imatrix[0..n_cols) the importance of each column, the same for every
  // row. nullptr where llama.cpp ignores the matrix (Q8_0). IQ2_XXS, IQ2_XS and IQ1_S have
  // only this one (llama.cpp quantizes them only with a matrix).
  void (*quantize_weighted)(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) = nullptr;
};

// nullptr when the type has no compute kernels in this build.
const TypeTraits* type_traits(DType t);
const TypeTraits* type_traits_ref(DType t);

struct KernelVariant {
  const char* isa;  // "ref", "avx2", "avx512"
  const TypeTraits* traits;
};
// The reference first, then each SIMD stage this CPU runs that changed one of t's kernels.
std::vector<KernelVariant> kernel_variants(DType t);

// Types a weight matrix may have (a dot product and a dequantizer), in type-id order.
const std::vector<DType>& weight_types();
// Their names, comma-separated ("F32, F16, Q4_0, ...").
const std::string& weight_type_names();

// Selects the scalar reference kernels everywhere (for fidelity checks and debugging).
void force_scalar_kernels(bool on);
bool scalar_kernels_forced();

}  // namespace tachyon::kernels
