// Weight matrices repacked at load time into groups of 8 interleaved rows.
//
// In GGUF order a dot product of one row needs a horizontal reduction per block to get
// the block's integer sum into a scalar before it is scaled, which costs more than the
// multiply-adds themselves. In a group, the 4-byte pieces of the 8 rows' quants sit
// side by side, so that one 8-lane integer multiply-add (vpdpbusd, or maddubs+madd on
// plain AVX2) with a broadcast piece of activations advances all 8 rows at once, lane r
// holding row r: no horizontal work at all, and each lane performs exactly the float
// operations of the one-row kernel, so results are bit-identical to vec_dot (tested).
//
// Layouts (nb = blocks per row, group g holds rows 8g..8g+7, blocks in order):
//  Q8_0x16 (16-row groups, AVX512-VNNI only): per block { f16 d[16]; u8 qs[512] },
//          qs[64c + 4r + b] = row r's qs[4c + b] + 128 (as unsigned), 544 bytes.
//  Q4_0x16 (AVX512-VNNI): as Q4_0x8 with 16 rows: { f16 d[16]; u8 qs[256] },
//          qs[64c + 4r + b] = row r's qs[4c + b], 288 bytes.
//  Q4_0x8: per block { f16 d[8]; u8 qs[128] }, qs[32c + 4r + b] = row r's qs[4c + b]
//          (low nibble element 4c+b, high nibble element 16+4c+b), 144 bytes.
//  Q4_1x8, Q5_0x8, Q5_1x8, IQ4_NLx8: Q4_0x8 plus the mins and fifth bits (packed_legacy.h).
//  IQ3x8 (IQ3_XXS, IQ3_S): the grid values as 4-bit codes, 4.3 bits a weight (packed_iq3.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/dtype.h"

namespace tachyon::kernels {

constexpr int kPackRows = 8;

struct PackedKernels {
  DType type = DType::F32;
  int rows = kPackRows;  // rows per group (8, or 16 for 512-bit layouts)
  // Groups the kernel walks together when there are several tokens (matmul cuts the
  // threads' runs in multiples of it).
  int multi_token_groups = 1;
  // The layout takes more bytes than the file's (IQ3x8): the loader packs such matrices
  // only when memory allows (model_load.cpp).
  bool grows = false;
  // Bytes of one group of `rows` rows of n_cols.
  size_t (*group_bytes)(int64_t n_cols) = nullptr;
  // Repacks `rows` consecutive rows (row r at rows + r*row_bytes) into one group at out.
  void (*pack)(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) = nullptr;
  // Per-token integers the kernel needs besides the quantized activations (e.g. block
  // sums), aux_count(n_cols) of them, written by make_aux from one activation row.
  int64_t (*aux_count)(int64_t n_cols) = nullptr;
  void (*make_aux)(const uint8_t* act_row, int64_t n_cols, int32_t* aux) = nullptr;
  // y[t*ld + rows*g + r] = row (rows*g + r) . activation row t, for groups g < n_groups stored
  // consecutively at wp and tokens t < n_tok (activation row t at acts + t*act_stride,
  // its aux at aux + t*aux_stride).
  void (*gemm)(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
               size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) = nullptr;
  // The scalar twin of gemm over the same layout (same bits).
  void (*gemm_ref)(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                   size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) = nullptr;
  const char* impl = "ref";
};

// The fastest layout and kernel for this CPU; nullptr when the type has no packed layout
// or no SIMD kernel for it (packing then buys nothing). matmul() runs gemm_ref instead of
// gemm under force_scalar_kernels(true).
const PackedKernels* packed_kernels(DType t);
// Every SIMD variant installed for this CPU (e.g. the AVX2 8-row layout and the
// AVX512-VNNI 16-row one), so tests cover the layouts other machines use.
std::vector<const PackedKernels*> packed_kernel_variants(DType t);
// Installs SIMD variants (packed_avx2.cpp, packed_avxvnni.cpp, packed_vnni.cpp).
void install_packed_avx2(PackedKernels* table);
void install_packed_avxvnni(PackedKernels* table);
void install_packed_vnni(PackedKernels* table);
// The Q5_Kx8 layout (packed_q5k.cpp: fills one entry with the layout and the scalar
// kernel) and its AVX2 kernel (packed_q5k_avx2.cpp: sets gemm and impl on that entry).
void install_packed_q5k_ref(PackedKernels* q5k_entry);
void install_packed_q5k_avx2(PackedKernels* q5k_entry);
// The 8-row layouts of Q4_1, Q5_0, Q5_1 and IQ4_NL (packed_legacy.h): the layout and
// scalar kernel of each into its entry of a table (packed_legacy.cpp), and their AVX2
// kernels (packed_legacy_avx2.cpp, called by install_packed_avx2).
void install_packed_legacy_ref(PackedKernels* table);
void install_packed_legacy_avx2(PackedKernels* table);
// The IQ3x8 layout of IQ3_XXS and IQ3_S (packed_iq3.h): layout and scalar kernel
// (packed_iq3.cpp), AVX2 kernel (packed_iq3_avx2.cpp, called by install_packed_avx2).
void install_packed_iq3_ref(PackedKernels* table);
void install_packed_iq3_avx2(PackedKernels* table);
// The AVX2 kernels over the 16-row Q8_0/Q6_K layouts (packed_x16_avx2.cpp), called by
// install_packed_avx2.
void install_packed_x16_avx2(PackedKernels* table);

}  // namespace tachyon::kernels
