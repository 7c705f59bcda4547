// Tensor element types as numbered in GGUF (the ggml type ids), with their block
// geometry. This table is what the GGUF reader validates against and what the kernels'
// per-type traits table extends with functions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tachyon {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  Q1_0 = 41,
};

// One past the largest type id above: tables indexed by type id have this many entries.
constexpr int kDTypeIdEnd = 42;

struct DTypeInfo {
  std::string_view name;
  uint32_t block_elems;  // elements per block (1 for plain types), 0 if the id is unknown
  uint32_t block_bytes;  // bytes per block
};

// Geometry of every type id GGUF files use, so that files with types the engine cannot
// compute are still parsed and validated. Unknown ids give block_elems == 0.
DTypeInfo dtype_info(uint32_t id);
inline DTypeInfo dtype_info(DType t) { return dtype_info(static_cast<uint32_t>(t)); }

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(DType t, int64_t n) {
  DTypeInfo i = dtype_info(t);
  return static_cast<size_t>(n / i.block_elems) * i.block_bytes;
}

}  // namespace tachyon
