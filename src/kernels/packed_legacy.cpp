// The Lx8 layouts of Q4_1, Q5_0, Q5_1 and IQ4_NL (packed_legacy.h): repacking, the aux
// integers and the scalar kernel, which performs per row the float chain of the one-row
// kernels (quant_legacy.h): per block acc = fma(float(isum), d_w * d_a, acc), then for
// Q4_1/Q5_1 acc = fma(m_w, s_a, acc).
#include "kernels/packed_legacy.h"

#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {
namespace {

template <DType T> struct LegacyBlock;
template <> struct LegacyBlock<DType::Q4_1> { using Block = BlockQ4_1; using Act = BlockQ8_1; };
template <> struct LegacyBlock<DType::Q5_0> { using Block = BlockQ5_0; using Act = BlockQ8_0; };
template <> struct LegacyBlock<DType::Q5_1> { using Block = BlockQ5_1; using Act = BlockQ8_1; };
template <> struct LegacyBlock<DType::IQ4_NL> { using Block = BlockIQ4_NL; using Act = BlockQ8_0; };

template <DType T>
size_t lx8_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / 32) * LegacyX8<T>::kBlock; }

template <DType T>
void lx8_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  using L = LegacyX8<T>;
  using Block = typename LegacyBlock<T>::Block;
  for (int64_t i = 0; i < n_cols / 32; ++i) {
    uint8_t* o = out + i * L::kBlock;
    for (int r = 0; r < 8; ++r) {
      const Block* x = reinterpret_cast<const Block*>(rows + r * row_bytes) + i;
      std::memcpy(o + 2 * r, &x->d, 2);
      if constexpr (L::kMin) std::memcpy(o + L::kOffM + 2 * r, &x->m, 2);
      if constexpr (L::kQ5) {
        uint32_t h;
        std::memcpy(&h, x->qh, 4);
        h = legacy_x8_qh(h);
        std::memcpy(o + L::kOffH + 4 * r, &h, 4);
      }
      for (int c = 0; c < 4; ++c) std::memcpy(o + L::kOffQ + 32 * c + 4 * r, x->qs + 4 * c, 4);
    }
  }
}

// Element e's quant of row r in a packed block, as the signed value the dot multiplies.
template <DType T>
int lx8_quant(const uint8_t* blk, int r, int e) {
  using L = LegacyX8<T>;
  const int c = (e % 16) / 4, b = e % 4;
  const uint8_t q = blk[L::kOffQ + 32 * c + 4 * r + b];
  int v = e < 16 ? (q & 0xF) : (q >> 4);
  if constexpr (L::kQ5) {
    const int k = e / 4;  // byte b, bit k of the rearranged qh: element 4k + b
    v |= ((blk[L::kOffH + 4 * r + b] >> k) & 1) << 4;
  }
  if constexpr (T == DType::Q5_0) v -= 16;
  if constexpr (T == DType::IQ4_NL) v = kIq4nlValues[v];
  return v;
}

// aux of Q5_0x8: 16 * (sum of the block's activation quants) per Q8_0 block; the kernel
// multiplies the unsigned 5-bit quants u = q + 16 and subtracts it.
int64_t lx8_block_count(int64_t n_cols) { return n_cols / 32; }

void q8_0_aux_sum16(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(act_row);
  for (int64_t i = 0; i < n_cols / 32; ++i) {
    int s = 0;
    for (int k = 0; k < 32; ++k) s += y[i].qs[k];
    aux[i] = 16 * s;
  }
}

template <DType T>
void lx8_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t*, int64_t, float* y, int64_t ld) {
  using L = LegacyX8<T>;
  using Act = typename LegacyBlock<T>::Act;
  const int64_t nb = n_cols / 32;
  const size_t gb = lx8_group_bytes<T>(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const Act* a = reinterpret_cast<const Act*>(acts + t * act_stride);
      for (int r = 0; r < 8; ++r) {
        float acc = 0;
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * L::kBlock;
          f16_t d;
          std::memcpy(&d, blk + 2 * r, 2);
          int isum = 0;
          for (int e = 0; e < 32; ++e) isum += lx8_quant<T>(blk, r, e) * a[i].qs[e];
          acc = std::fma(static_cast<float>(isum), f16_to_f32(d) * f16_to_f32(a[i].d), acc);
          if constexpr (L::kMin) {
            f16_t m;
            std::memcpy(&m, blk + L::kOffM + 2 * r, 2);
            acc = std::fma(f16_to_f32(m), f16_to_f32(a[i].s), acc);
          }
        }
        y[t * ld + 8 * g + r] = acc;
      }
    }
  }
}

template <DType T>
void install_one(PackedKernels* table) {
  PackedKernels& e = table[static_cast<int>(T)];
  e = PackedKernels{};
  e.type = T;
  e.rows = 8;
  e.multi_token_groups = 1;
  e.group_bytes = lx8_group_bytes<T>;
  e.pack = lx8_pack<T>;
  if constexpr (T == DType::Q5_0) {
    e.aux_count = lx8_block_count;
    e.make_aux = q8_0_aux_sum16;
  }
  e.gemm = e.gemm_ref = lx8_gemm_ref<T>;
  e.impl = "ref";
}

}  // namespace

void install_packed_legacy_ref(PackedKernels* table) {
  install_one<DType::Q4_1>(table);
  install_one<DType::Q5_0>(table);
  install_one<DType::Q5_1>(table);
  install_one<DType::IQ4_NL>(table);
}

}  // namespace tachyon::kernels
