// Q5_Kx8: Q5_K weights repacked into groups of 8 interleaved rows, and the scalar
// reference kernel over that layout (the AVX2 kernel is in packed_q5k_avx2.cpp).
//
// The contract is the one-row AVX2 kernel Q5K::run (kquants_avx2.cpp), bit for bit. Per
// row and token it keeps 8 float lanes L = 0..7, and per super-block
//   I_L    = sum over sub-block pairs j of sc[2j] * dot(elements 64j + 4L .. +3)
//                                        + sc[2j+1] * dot(elements 64j + 32 + 4L .. +3)
//   acc_L  = fma(y.d * d, float(I_L), acc_L)           (the product rounded first)
//   summs  = fma(-y.d * dmin, float(sm), summs)        sm = sum_s m[s] * B(s), exact
// with B(s) the sum of the activations of sub-block s; the result is
// ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)) + summs. Lane L of that kernel is the
// 4-byte column L of its 32-byte vectors, which is chunk c = L below: so a packed kernel
// with one int32 lane per row rebuilds I_c exactly, one chunk at a time.
//
// Layout, per super-block of the group's 8 rows (r = row, 1440 bytes = 8 x 176 + 32):
//   [0, 16)      f16 d[8]
//   [16, 32)     f16 dmin[8]
//   [32, 96)     u8 sc[8 sub-blocks][8 rows]           (6-bit scales, unpacked)
//   [96, 160)    u8 mn[4 pairs j][8 rows][2]           (m_2j, m_2j+1: 16-bit pairs after
//                                                       a zero extension, per row lane)
//   [160, 1440)  8 chunk units of 160 bytes, unit c at 160 + 160c:
//                  [0, 32)          qh: byte 4r + b = row r's qh[4c + b]
//                  [32 + 32j, +32)  qs of pair j: byte 4r + b = row r's qs[32j + 4c + b]
//                                   (low nibble: element 64j + 4c + b, high nibble:
//                                   element 64j + 32 + 4c + b)
// Bit 2j (2j + 1) of a qh byte is the fifth bit of the low (high) nibble of pair j.
// A unit holds everything chunk c needs, so the kernel streams the weights in order and
// reads each qh byte once; every 32-byte piece sits at a multiple of 32 from the group
// start (1440 = 45 x 32), so aligned groups never split a load across cache lines.
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/packed.h"
#include "kernels/packed_ref.h"
#include "kernels/quant.h"

namespace tachyon::kernels {

namespace {

// Byte offsets inside a Q5_Kx8 super-block (see above; packed_q5k_avx2.cpp spells the
// same numbers).
constexpr size_t kBlockBytes = 1440, kOffDmin = 16, kOffSc = 32, kOffMn = 96, kOffUnits = 160, kUnitBytes = 160;
static_assert(kOffUnits + 8 * kUnitBytes == kBlockBytes);

size_t q5_Kx8_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / QK_K) * kBlockBytes; }

void q5_Kx8_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  const int64_t nb = n_cols / QK_K;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* o = out + i * kBlockBytes;
    for (int r = 0; r < 8; ++r) {
      const BlockQ5_K* x = reinterpret_cast<const BlockQ5_K*>(rows + r * row_bytes) + i;
      std::memcpy(o + 2 * r, &x->d, 2);
      std::memcpy(o + kOffDmin + 2 * r, &x->dmin, 2);
      for (int s = 0; s < 8; ++s) {
        uint8_t sc, m;
        get_scale_min_k4(s, x->scales, &sc, &m);
        o[kOffSc + 8 * s + r] = sc;
        o[kOffMn + 16 * (s / 2) + 2 * r + (s % 2)] = m;
      }
      for (int c = 0; c < 8; ++c) {
        uint8_t* unit = o + kOffUnits + kUnitBytes * c;
        std::memcpy(unit + 4 * r, x->qh + 4 * c, 4);
        for (int j = 0; j < 4; ++j) std::memcpy(unit + 32 + 32 * j + 4 * r, x->qs + 32 * j + 4 * c, 4);
      }
    }
  }
}

// The 5-bit quant of element 64j + 32h + 4c + b (h: 0 low nibble, 1 high) of row r.
inline int q5x8_quant(const uint8_t* blk, int j, int h, int c, int r, int b) {
  const uint8_t* unit = blk + kOffUnits + kUnitBytes * c;
  const uint8_t q = unit[32 + 32 * j + 4 * r + b];
  const int lo4 = h ? q >> 4 : q & 0xF;
  return lo4 | (((unit[4 * r + b] >> (2 * j + h)) & 1) << 4);
}

void q5_Kx8_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                     size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK_K;
  const size_t gb = q5_Kx8_group_bytes(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(acts + t * act_stride);
      const int32_t* bp = aux + t * aux_stride;
      for (int r = 0; r < 8; ++r) {
        float acc[8] = {};
        float summs = 0;
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * kBlockBytes;
          f16_t d, dmin;
          std::memcpy(&d, blk + 2 * r, 2);
          std::memcpy(&dmin, blk + kOffDmin + 2 * r, 2);
          int sm = 0;
          for (int j = 0; j < 4; ++j) {
            const uint32_t pair = static_cast<uint32_t>(bp[4 * i + j]);
            sm += blk[kOffMn + 16 * j + 2 * r] * static_cast<int16_t>(pair & 0xFFFF) +
                  blk[kOffMn + 16 * j + 2 * r + 1] * static_cast<int16_t>(pair >> 16);
          }
          summs = std::fma(-a[i].d * f16_to_f32(dmin), static_cast<float>(sm), summs);
          const float dd = a[i].d * f16_to_f32(d);
          for (int c = 0; c < 8; ++c) {
            int isum = 0;
            for (int j = 0; j < 4; ++j)
              for (int h = 0; h < 2; ++h) {
                int dot = 0;
                for (int b = 0; b < 4; ++b) dot += q5x8_quant(blk, j, h, c, r, b) * a[i].qs[64 * j + 32 * h + 4 * c + b];
                isum += blk[kOffSc + 8 * (2 * j + h) + r] * dot;
              }
            acc[c] = std::fma(dd, static_cast<float>(isum), acc[c]);
          }
        }
        y[t * ld + 8 * g + r] = sum8_avx2_order(acc) + summs;
      }
    }
  }
}

}  // namespace

void install_packed_q5k_ref(PackedKernels* e) {
  e->type = DType::Q5_K;
  e->rows = 8;
  e->multi_token_groups = 1;
  e->group_bytes = q5_Kx8_group_bytes;
  e->pack = q5_Kx8_pack;
  e->aux_count = q8_K_aux_count;  // the Q4_K layouts' aux: shared when both read one acts
  e->make_aux = q8_K_aux_pairs;
  e->gemm = e->gemm_ref = q5_Kx8_gemm_ref;
  e->impl = "ref";
}

}  // namespace tachyon::kernels
