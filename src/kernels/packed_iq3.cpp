// IQ3x8 (packed_iq3.h): repacking IQ3_XXS / IQ3_S rows into 4-bit codes and the scalar
// kernel, which performs per row the float chain of the one-row kernels (quant_iq23.h):
// per super-block 8 integer lanes (lane k: elements 4k..4k+3 of every chunk times 2s+1)
// folded into 8 float lanes by fma with d_w * d_a, summed in the AVX2 order at the end
// and multiplied by the format's factor.
#include "kernels/packed_iq3.h"

#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/packed.h"
#include "kernels/packed_ref.h"
#include "kernels/quant.h"
#include "kernels/quant_iq23.h"

namespace tachyon::kernels {
namespace {

template <DType T> struct Iq3;
template <> struct Iq3<DType::IQ3_XXS> {
  using Block = BlockIQ3_XXS;
  static constexpr const int8_t* kLevels = kIq3xxsLevels;
  static constexpr float kFactor = 0.25f;
  static void decode(const Block& b, int j, int8_t* w, int* s) { decode_iq3_xxs_chunk(b, j, w, s); }
};
template <> struct Iq3<DType::IQ3_S> {
  using Block = BlockIQ3_S;
  static constexpr const int8_t* kLevels = kIq3sLevels;
  static constexpr float kFactor = 1.0f;
  static void decode(const Block& b, int j, int8_t* w, int* s) { decode_iq3_s_chunk(b, j, w, s); }
};

size_t iq3x8_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / QK_K) * kIq3x8Block; }

// The 4-bit code of each signed grid value (indexed by its byte).
template <DType T>
struct Codes {
  uint8_t of[256] = {};
  Codes() {
    for (int l = 0; l < 8; ++l) {
      of[static_cast<uint8_t>(Iq3<T>::kLevels[l])] = static_cast<uint8_t>(l);
      of[static_cast<uint8_t>(-Iq3<T>::kLevels[l])] = static_cast<uint8_t>(l | 8);
    }
  }
};
template <DType T>
uint8_t code_of(int8_t w) {
  static const Codes<T> codes;
  return codes.of[static_cast<uint8_t>(w)];
}

template <DType T>
void iq3x8_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  using Block = typename Iq3<T>::Block;
  for (int64_t i = 0; i < n_cols / QK_K; ++i) {
    uint8_t* o = out + i * kIq3x8Block;
    for (int r = 0; r < 8; ++r) {
      const Block& x = reinterpret_cast<const Block*>(rows + r * row_bytes)[i];
      std::memcpy(o + 2 * r, &x.d, 2);
      for (int j = 0; j < QK_K / 32; ++j) {
        int8_t w[32];
        int s[2];
        Iq3<T>::decode(x, j, w, s);
        o[kIq3x8OffSc + 8 * j + r] = static_cast<uint8_t>(2 * s[0] + 1);  // both halves share it
        for (int c = 0; c < 4; ++c)
          for (int b = 0; b < 4; ++b)
            o[kIq3x8OffQ + 128 * j + 32 * c + 4 * r + b] =
                static_cast<uint8_t>(code_of<T>(w[4 * c + b]) | (code_of<T>(w[16 + 4 * c + b]) << 4));
      }
    }
  }
}

// Signed grid value of element e of chunk j, row r, in a packed super-block.
template <DType T>
int iq3x8_value(const uint8_t* blk, int r, int j, int e) {
  const int c = (e % 16) / 4, b = e % 4;
  const uint8_t q = blk[kIq3x8OffQ + 128 * j + 32 * c + 4 * r + b];
  const int code = e < 16 ? (q & 0xF) : (q >> 4);
  const int m = Iq3<T>::kLevels[code & 7];
  return code & 8 ? -m : m;
}

template <DType T>
void iq3x8_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                    size_t act_stride, const int32_t*, int64_t, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK_K;
  const size_t gb = iq3x8_group_bytes(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(acts + t * act_stride);
      for (int r = 0; r < 8; ++r) {
        float acc[8] = {};
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * kIq3x8Block;
          int lane[8] = {};
          for (int j = 0; j < QK_K / 32; ++j) {
            const int sc = blk[kIq3x8OffSc + 8 * j + r];
            for (int e = 0; e < 32; ++e) lane[lane_of(e)] += sc * iq3x8_value<T>(blk, r, j, e) * a[i].qs[32 * j + e];
          }
          f16_t d;
          std::memcpy(&d, blk + 2 * r, 2);
          const float dd = f16_to_f32(d) * a[i].d;
          for (int k = 0; k < 8; ++k) acc[k] = std::fma(dd, static_cast<float>(lane[k]), acc[k]);
        }
        y[t * ld + 8 * g + r] = Iq3<T>::kFactor * sum8_avx2_order(acc);
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
  e.grows = true;
  e.group_bytes = iq3x8_group_bytes;
  e.pack = iq3x8_pack<T>;
  e.gemm = e.gemm_ref = iq3x8_gemm_ref<T>;
  e.impl = "ref";
}

}  // namespace

void install_packed_iq3_ref(PackedKernels* table) {
  install_one<DType::IQ3_XXS>(table);
  install_one<DType::IQ3_S>(table);
}

}  // namespace tachyon::kernels
