// Repacking into 8-row groups (see packed.h) and the scalar reference kernels over the
// packed layouts. The reference performs, per row, the float operations of the AVX2
// one-row kernel in the same order (std::fma where that kernel fuses), so it is
// bit-identical to it and to the SIMD packed kernels.
#include "kernels/packed.h"
#include "kernels/packed_ref.h"
#include "kernels/quant_legacy.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/quant.h"
#include "kernels/traits.h"

namespace tachyon::kernels {

namespace {

// ---- Q4_0x8 / Q4_0x16 ----
template <int R>
constexpr size_t q40_block_bytes() { return R * sizeof(f16_t) + R * 16; }

template <int R>
size_t q4_0xR_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / QK4_0) * q40_block_bytes<R>(); }

template <int R>
void q4_0xR_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  const int64_t nb = n_cols / QK4_0;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* o = out + i * q40_block_bytes<R>();
    for (int r = 0; r < R; ++r) {
      const BlockQ4_0* x = reinterpret_cast<const BlockQ4_0*>(rows + r * row_bytes) + i;
      std::memcpy(o + 2 * r, &x->d, 2);
      for (int c = 0; c < 4; ++c) std::memcpy(o + 2 * R + 4 * R * c + 4 * r, x->qs + 4 * c, 4);
    }
  }
}

// aux: 8 * (sum of the block's 32 activation quants), per Q8_0 block; the kernels use
// unsigned nibbles u = q + 8 and subtract it: sum((u - 8) y) = sum(u y) - 8 sum(y).
int64_t q8_0_block_count(int64_t n_cols) { return n_cols / QK8_0; }

void q8_0_aux_sum8(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(act_row);
  for (int64_t i = 0; i < n_cols / QK8_0; ++i) {
    int s = 0;
    for (int k = 0; k < QK8_0; ++k) s += y[i].qs[k];
    aux[i] = 8 * s;
  }
}

// kIq4 (IQ4_NLx16, the same bytes): each nibble is the index of an IQ4_NL level, and
// there is no offset to take back (aux unused).
template <int R, bool kIq4 = false>
void q4_0xR_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                     size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK4_0;
  const size_t gb = q4_0xR_group_bytes<R>(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * act_stride);
      const int32_t* s8 = aux + t * aux_stride;
      for (int r = 0; r < R; ++r) {
        float acc = 0;
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * q40_block_bytes<R>();
          f16_t d;
          std::memcpy(&d, blk + 2 * r, 2);
          int isum = 0;
          for (int c = 0; c < 4; ++c)
            for (int b = 0; b < 4; ++b) {
              const uint8_t q = blk[2 * R + 4 * R * c + 4 * r + b];
              const int lo = kIq4 ? kIq4nlValues[q & 0xF] : q & 0xF, hi = kIq4 ? kIq4nlValues[q >> 4] : q >> 4;
              isum += lo * a[i].qs[4 * c + b] + hi * a[i].qs[16 + 4 * c + b];
            }
          if constexpr (!kIq4) isum -= s8[i];
          acc = std::fma(static_cast<float>(isum), f16_to_f32(d) * f16_to_f32(a[i].d), acc);
        }
        y[t * ld + R * g + r] = acc;
      }
    }
  }
}

}  // namespace

// The 16-row Q4_0 layout's scalar parts, for packed_vnni.cpp.
// The 16-row kernel's aux, two ints per Q8_0 block: -8 * (sum of the quants), the start
// of its integer sum, and the block's scale as f32 bits (no f16 conversion per row group).
int64_t q8_0_pair_count(int64_t n_cols) { return 2 * (n_cols / QK8_0); }

template <int kMul>
void q8_0_aux_negsum_scale(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(act_row);
  for (int64_t i = 0; i < n_cols / QK8_0; ++i) {
    int s = 0;
    for (int k = 0; k < QK8_0; ++k) s += y[i].qs[k];
    aux[2 * i] = -kMul * s;
    const float d = f16_to_f32(y[i].d);
    std::memcpy(&aux[2 * i + 1], &d, 4);
  }
}
void q8_0_aux_negsum8_scale(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  q8_0_aux_negsum_scale<8>(act_row, n_cols, aux);
}

size_t q4_0x16_group_bytes(int64_t n_cols) { return q4_0xR_group_bytes<16>(n_cols); }
void q4_0x16_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  q4_0xR_pack<16>(rows, row_bytes, n_cols, out);
}
// aux: q8_0_aux_negsum8_scale pairs (the same integers and scales as the 8-row form).
void q4_0x16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                      size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK4_0;
  std::vector<int32_t> s8(static_cast<size_t>(n_tok) * nb);
  for (int t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < nb; ++i) s8[t * nb + i] = -aux[t * aux_stride + 2 * i];
  q4_0xR_gemm_ref<16>(n_cols, n_groups, wp, n_tok, acts, act_stride, s8.data(), nb, y, ld);
}

// IQ4_NLx16: the Q4_0x16 bytes; aux pairs -128 * sum(y) and the activation scale, since
// the kernel multiplies the unsigned levels kIq4nlValues + 128. Per row the IQ4_NL row
// kernel's chain: acc = fma(float(sum of level * y), d_w * d_a, acc).
void q8_0_aux_negsum128_scale(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  q8_0_aux_negsum_scale<128>(act_row, n_cols, aux);
}
void iq4_nlx16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                        size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  q4_0xR_gemm_ref<16, true>(n_cols, n_groups, wp, n_tok, acts, act_stride, aux, aux_stride, y, ld);
}

// packed_ref.h
int64_t q8_K_aux_count(int64_t n_cols) { return n_cols / QK_K * 4; }

void q8_K_aux_pairs(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(act_row);
  for (int64_t i = 0; i < n_cols / QK_K; ++i)
    for (int j = 0; j < 4; ++j) {
      const int b0 = y[i].bsums[4 * j] + y[i].bsums[4 * j + 1];
      const int b1 = y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3];
      aux[4 * i + j] = static_cast<int32_t>((static_cast<uint32_t>(static_cast<uint16_t>(b1)) << 16) |
                                            static_cast<uint16_t>(b0));
    }
}

namespace {

// ---- Q4_Kx8 / Q4_Kx16 ----
// Per super-block (R rows): f16 d[R], f16 dmin[R], u8 sc[8 sub-blocks][R],
// u8 mins[4 pairs][R][2], u8 qs[4 pairs][8 chunks][R rows][4]: chunk c of pair j holds
// row r's qs[32j + 4c .. +3] (low nibbles: sub-block 2j elements 4c..4c+3, high
// nibbles: sub-block 2j+1).
template <int R>
constexpr size_t q4k_block_bytes() { return 4 * R + 8 * R + 8 * R + 128 * R; }

template <int R>
size_t q4_KxR_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / QK_K) * q4k_block_bytes<R>(); }

template <int R>
void q4_KxR_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  const int64_t nb = n_cols / QK_K;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* o = out + i * q4k_block_bytes<R>();
    const BlockQ4_K* x[R];
    for (int r = 0; r < R; ++r) {
      x[r] = reinterpret_cast<const BlockQ4_K*>(rows + r * row_bytes) + i;
      std::memcpy(o + 2 * r, &x[r]->d, 2);
      std::memcpy(o + 2 * R + 2 * r, &x[r]->dmin, 2);
      for (int k = 0; k < 8; ++k) {
        uint8_t sc, m;
        get_scale_min_k4(k, x[r]->scales, &sc, &m);
        o[4 * R + R * k + r] = sc;
        o[12 * R + 2 * R * (k / 2) + 2 * r + (k % 2)] = m;
      }
    }
    // the quants in output order (each 4R-byte run written whole: a cold destination is
    // filled line by line instead of 4 bytes per line per row)
    uint8_t* q = o + 20 * R;
    for (int j = 0; j < 4; ++j)
      for (int c = 0; c < 8; ++c, q += 4 * R)
        for (int r = 0; r < R; ++r) std::memcpy(q + 4 * r, x[r]->qs + 32 * j + 4 * c, 4);
  }
}

template <int R>
void q4_KxR_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                     size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK_K;
  const size_t gb = q4_KxR_group_bytes<R>(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(acts + t * act_stride);
      const int32_t* bp = aux + t * aux_stride;
      for (int r = 0; r < R; ++r) {
        float acc = 0, accm = 0;
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * q4k_block_bytes<R>();
          f16_t d, dmin;
          std::memcpy(&d, blk + 2 * r, 2);
          std::memcpy(&dmin, blk + 2 * R + 2 * r, 2);
          const float dd = f16_to_f32(d) * a[i].d, dm = f16_to_f32(dmin) * a[i].d;
          for (int j = 0; j < 4; ++j) {
            int i0 = 0, i1 = 0;
            for (int c = 0; c < 8; ++c)
              for (int b = 0; b < 4; ++b) {
                const uint8_t q = blk[20 * R + 32 * R * j + 4 * R * c + 4 * r + b];
                i0 += (q & 0xF) * a[i].qs[64 * j + 4 * c + b];
                i1 += (q >> 4) * a[i].qs[64 * j + 32 + 4 * c + b];
              }
            const int sum = i0 * blk[4 * R + R * (2 * j) + r] + i1 * blk[4 * R + R * (2 * j + 1) + r];
            const int32_t bpair = bp[4 * i + j];
            const int mins = blk[12 * R + 2 * R * j + 2 * r] * static_cast<int16_t>(bpair & 0xFFFF) +
                             blk[12 * R + 2 * R * j + 2 * r + 1] * static_cast<int16_t>(static_cast<uint32_t>(bpair) >> 16);
            acc = std::fma(static_cast<float>(sum), dd, acc);
            accm = std::fma(static_cast<float>(mins), dm, accm);
          }
        }
        y[t * ld + R * g + r] = acc - accm;
      }
    }
  }
}

}  // namespace

// The 16-row Q4_K layout's scalar parts, for packed_vnni.cpp.
size_t q4_Kx16_group_bytes(int64_t n_cols) { return q4_KxR_group_bytes<16>(n_cols); }
void q4_Kx16_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  q4_KxR_pack<16>(rows, row_bytes, n_cols, out);
}
void q4_Kx16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                      size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  q4_KxR_gemm_ref<16>(n_cols, n_groups, wp, n_tok, acts, act_stride, aux, aux_stride, y, ld);
}

namespace {

// ---- Q8_0x16 ----
constexpr size_t kQ80x16Block = 16 * sizeof(f16_t) + 512;

size_t q8_0x16_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / QK8_0) * kQ80x16Block; }

void q8_0x16_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  const int64_t nb = n_cols / QK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* o = out + i * kQ80x16Block;
    for (int r = 0; r < 16; ++r) {
      const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(rows + r * row_bytes) + i;
      std::memcpy(o + 2 * r, &x->d, 2);
      // 4 quants at a time; + 128 (mod 256) on each byte is flipping its top bit
      for (int c = 0; c < 8; ++c) {
        uint32_t w;
        std::memcpy(&w, x->qs + 4 * c, 4);
        w ^= 0x80808080u;
        std::memcpy(o + 32 + 64 * c + 4 * r, &w, 4);
      }
    }
  }
}

// aux: per Q8_0 block, -128 * (sum of each 4-quant piece), 8 per block: the kernels use
// unsigned weights w + 128 and start each piece's integer sum there.
int64_t q8_0_piece_count(int64_t n_cols) { return n_cols / QK8_0 * 8; }

void q8_0_aux_pieces(const uint8_t* act_row, int64_t n_cols, int32_t* aux) {
  const BlockQ8_0* y = reinterpret_cast<const BlockQ8_0*>(act_row);
  for (int64_t i = 0; i < n_cols / QK8_0; ++i)
    for (int c = 0; c < 8; ++c)
      aux[8 * i + c] = -128 * (y[i].qs[4 * c] + y[i].qs[4 * c + 1] + y[i].qs[4 * c + 2] + y[i].qs[4 * c + 3]);
}

// Per row: 8 float lanes (lane c = the 4-quant pieces c of every block), acc_c =
// fma(d_w * d_a, float(piece dot), acc_c), then the AVX2 horizontal add order.
void q8_0x16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                      size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK8_0;
  const size_t gb = q8_0x16_group_bytes(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(acts + t * act_stride);
      const int32_t* px = aux + t * aux_stride;
      for (int r = 0; r < 16; ++r) {
        float acc[8] = {};
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * kQ80x16Block;
          f16_t d;
          std::memcpy(&d, blk + 2 * r, 2);
          const float dd = f16_to_f32(d) * f16_to_f32(a[i].d);
          for (int c = 0; c < 8; ++c) {
            int p = 0;
            for (int b = 0; b < 4; ++b) p += blk[32 + 64 * c + 4 * r + b] * a[i].qs[4 * c + b];
            p += px[8 * i + c];
            acc[c] = std::fma(dd, static_cast<float>(p), acc[c]);
          }
        }
        y[t * ld + 16 * g + r] = sum8_avx2_order(acc);
      }
    }
  }
}

// ---- Q6_Kx16 ----
// Per super-block: f16 d[16], i8 sc[16 sub-blocks][16 rows], then the 6-bit quants in
// 64 chunks of [16 rows][4] bytes' worth: chunk (h*4 + k)*8 + l holds elements
// 128h + 32k + 4l .. +3 of each row. Chunk l of every (h, k) is 4-byte column l of the
// AVX2 kernel's 32-byte vectors, so lane l of its per-row accumulator is rebuilt exactly:
// I_l = -32 (sc[2l] b[2l] + sc[2l+1] b[2l+1]) + sum over (h, k) of sc[8h+2k+(l>=4)] *
// (4-element dot), acc_l = fma(d_w*d_a, float(I_l), acc_l), then its horizontal add.
// The quants stay 6-bit (as many bytes as the file's Q6_K: decode streams them): for
// each (l, h) a 192-byte unit [ql0 | ql1 | qh], 64 bytes each, byte i = 4*row + b:
// ql0 = low nibbles of chunks k=0 (bits 0-3) and k=1 (bits 4-7), ql1 of k=2 and k=3,
// qh = the high 2 bits of k=0..3 at bits 2k, 2k+1.
constexpr size_t kQ6Kx16Block = 32 + 256 + 3072;

// The 6-bit value of chunk (h, k, l), byte i (= 4*row + b), of a packed super-block.
inline int q6x16_quant(const uint8_t* blk, int h, int k, int l, int i) {
  const uint8_t* unit = blk + 288 + 192 * (2 * l + h);
  const uint8_t ql = unit[64 * (k / 2) + i];
  const int lo = (k % 2) ? ql >> 4 : ql & 0xF;
  return lo | (((unit[128 + i] >> (2 * k)) & 3) << 4);
}

size_t q6_Kx16_group_bytes(int64_t n_cols) { return static_cast<size_t>(n_cols / QK_K) * kQ6Kx16Block; }

void q6_Kx16_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out) {
  const int64_t nb = n_cols / QK_K;
  constexpr uint32_t k0F = 0x0F0F0F0Fu, k03 = 0x03030303u;
  const auto ld = [](const uint8_t* p) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  };
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* o = out + i * kQ6Kx16Block;
    for (int r = 0; r < 16; ++r) {
      const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(rows + r * row_bytes) + i;
      std::memcpy(o + 2 * r, &x->d, 2);
      for (int sb = 0; sb < 16; ++sb) o[32 + 16 * sb + r] = static_cast<uint8_t>(x->scales[sb]);
      // The row's 6-bit values u[256] (u[128h + 32k + l]: ql's nibble k/2 of byte
      // 64h + 32(k%2) + l, qh's bits 2k..2k+1 of byte 32h + l), then regrouped into the
      // units; 4 bytes at a time in 32-bit words, every byte lane masked, so no lane
      // spills into another.
      uint32_t u[QK_K / 4];  // u[32h + 8k + l/4]: values 128h + 32k + l .. +3
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; l += 4) {
          const uint32_t q0 = ld(x->ql + 64 * h + l), q1 = ld(x->ql + 64 * h + 32 + l), hb = ld(x->qh + 32 * h + l);
          u[32 * h + l / 4] = (q0 & k0F) | ((hb & k03) << 4);
          u[32 * h + 8 + l / 4] = (q1 & k0F) | (((hb >> 2) & k03) << 4);
          u[32 * h + 16 + l / 4] = ((q0 >> 4) & k0F) | (((hb >> 4) & k03) << 4);
          u[32 * h + 24 + l / 4] = ((q1 >> 4) & k0F) | (((hb >> 6) & k03) << 4);
        }
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 8; ++l) {
          uint8_t* unit = o + 288 + 192 * (2 * l + h);
          const uint32_t v0 = u[32 * h + l], v1 = u[32 * h + 8 + l], v2 = u[32 * h + 16 + l], v3 = u[32 * h + 24 + l];
          const uint32_t lo = (v0 & k0F) | ((v1 & k0F) << 4);
          const uint32_t mid = (v2 & k0F) | ((v3 & k0F) << 4);
          const uint32_t hi = ((v0 >> 4) & k03) | (((v1 >> 4) & k03) << 2) | (((v2 >> 4) & k03) << 4) |
                              (((v3 >> 4) & k03) << 6);
          std::memcpy(unit + 4 * r, &lo, 4);
          std::memcpy(unit + 64 + 4 * r, &mid, 4);
          std::memcpy(unit + 128 + 4 * r, &hi, 4);
        }
    }
  }
}

void q6_Kx16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                      size_t act_stride, const int32_t*, int64_t, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK_K;
  const size_t gb = q6_Kx16_group_bytes(n_cols);
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* wg = wp + g * gb;
    for (int t = 0; t < n_tok; ++t) {
      const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(acts + t * act_stride);
      for (int r = 0; r < 16; ++r) {
        float acc[8] = {};
        for (int64_t i = 0; i < nb; ++i) {
          const uint8_t* blk = wg + i * kQ6Kx16Block;
          f16_t d;
          std::memcpy(&d, blk + 2 * r, 2);
          const float dd = a[i].d * f16_to_f32(d);
          auto sc = [&](int sb) { return static_cast<int>(static_cast<int8_t>(blk[32 + 16 * sb + r])); };
          for (int l = 0; l < 8; ++l) {
            int I = -32 * (sc(2 * l) * a[i].bsums[2 * l] + sc(2 * l + 1) * a[i].bsums[2 * l + 1]);
            for (int hk = 0; hk < 8; ++hk) {
              const int h = hk / 4, k = hk % 4;
              int dot = 0;
              for (int b = 0; b < 4; ++b) dot += q6x16_quant(blk, h, k, l, 4 * r + b) * a[i].qs[128 * h + 32 * k + 4 * l + b];
              I += sc(8 * h + 2 * k + (l >= 4 ? 1 : 0)) * dot;
            }
            acc[l] = std::fma(dd, static_cast<float>(I), acc[l]);
          }
        }
        y[t * ld + 16 * g + r] = sum8_avx2_order(acc);
      }
    }
  }
}

constexpr int kMaxType = kDTypeIdEnd;

struct PackedTables {
  PackedKernels ref[kMaxType] = {};
  PackedKernels best[kMaxType] = {};
  PackedKernels avx2[kMaxType] = {};     // the AVX2 variants alone (tests)
  PackedKernels avxvnni[kMaxType] = {};  // AVX2 with AVX-VNNI (tests)
  bool has_ref[kMaxType] = {};
  bool has_best[kMaxType] = {};
  bool has_avx2[kMaxType] = {};
  bool has_avxvnni[kMaxType] = {};

  PackedTables() {
    PackedKernels q40;
    q40.type = DType::Q4_0;
    q40.group_bytes = q4_0xR_group_bytes<8>;
    q40.pack = q4_0xR_pack<8>;
    q40.aux_count = q8_0_block_count;
    q40.make_aux = q8_0_aux_sum8;
    q40.gemm = q40.gemm_ref = q4_0xR_gemm_ref<8>;
    q40.impl = "ref";
    ref[static_cast<int>(DType::Q4_0)] = best[static_cast<int>(DType::Q4_0)] = q40;
    has_ref[static_cast<int>(DType::Q4_0)] = true;
    PackedKernels q4k;
    q4k.type = DType::Q4_K;
    q4k.group_bytes = q4_KxR_group_bytes<8>;
    q4k.pack = q4_KxR_pack<8>;
    q4k.aux_count = q8_K_aux_count;
    q4k.make_aux = q8_K_aux_pairs;
    q4k.gemm = q4k.gemm_ref = q4_KxR_gemm_ref<8>;
    q4k.impl = "ref";
    ref[static_cast<int>(DType::Q4_K)] = best[static_cast<int>(DType::Q4_K)] = q4k;
    has_ref[static_cast<int>(DType::Q4_K)] = true;
    PackedKernels q80;
    q80.type = DType::Q8_0;
    q80.rows = 16;
    q80.group_bytes = q8_0x16_group_bytes;
    q80.pack = q8_0x16_pack;
    q80.aux_count = q8_0_piece_count;
    q80.make_aux = q8_0_aux_pieces;
    q80.gemm = q80.gemm_ref = q8_0x16_gemm_ref;
    q80.impl = "ref";
    ref[static_cast<int>(DType::Q8_0)] = best[static_cast<int>(DType::Q8_0)] = q80;
    has_ref[static_cast<int>(DType::Q8_0)] = true;
    PackedKernels q6k;
    q6k.type = DType::Q6_K;
    q6k.rows = 16;
    q6k.group_bytes = q6_Kx16_group_bytes;
    q6k.pack = q6_Kx16_pack;
    q6k.gemm = q6k.gemm_ref = q6_Kx16_gemm_ref;
    q6k.impl = "ref";
    ref[static_cast<int>(DType::Q6_K)] = best[static_cast<int>(DType::Q6_K)] = q6k;
    has_ref[static_cast<int>(DType::Q6_K)] = true;
    install_packed_q5k_ref(&ref[static_cast<int>(DType::Q5_K)]);
    best[static_cast<int>(DType::Q5_K)] = ref[static_cast<int>(DType::Q5_K)];
    has_ref[static_cast<int>(DType::Q5_K)] = true;
    install_packed_legacy_ref(ref);  // Q4_1, Q5_0, Q5_1, IQ4_NL
    install_packed_iq3_ref(ref);  // IQ3_XXS, IQ3_S
    for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::IQ3_XXS, DType::IQ3_S}) {
      best[static_cast<int>(t)] = ref[static_cast<int>(t)];
      has_ref[static_cast<int>(t)] = true;
    }
#if defined(__x86_64__)
    const auto& f = cpu_features();
    // snapshot of best after an install: the entries that install changed
    auto snapshot = [&](PackedKernels* dst, bool* has, const PackedKernels* before) {
      for (int i = 0; i < kMaxType; ++i) {
        has[i] = has_ref[i] && best[i].impl != before[i].impl;
        dst[i] = best[i];
      }
    };
    if (f.avx2 && f.fma && f.f16c) install_packed_avx2(best);  // Q5_K's too
    snapshot(avx2, has_avx2, ref);
    if (f.avx2 && f.fma && f.f16c && f.avxvnni) install_packed_avxvnni(best);
    snapshot(avxvnni, has_avxvnni, avx2);
    if (f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512vl && f.avx512bw && f.avx512vnni) install_packed_vnni(best);
#endif
    for (int i = 0; i < kMaxType; ++i) has_best[i] = has_ref[i] && best[i].impl != ref[i].impl;
  }
};

const PackedTables& packed_tables() {
  static const PackedTables t;
  return t;
}

}  // namespace

const PackedKernels* packed_kernels(DType t) {
  const int i = static_cast<int>(t);
  if (i < 0 || i >= kMaxType) return nullptr;
  return packed_tables().has_best[i] ? &packed_tables().best[i] : nullptr;
}

std::vector<const PackedKernels*> packed_kernel_variants(DType t) {
  std::vector<const PackedKernels*> v;
  const int i = static_cast<int>(t);
  if (i < 0 || i >= kMaxType) return v;
  const PackedTables& pt = packed_tables();
  auto add = [&](bool has, const PackedKernels& k) {
    for (const PackedKernels* o : v)
      if (o->impl == k.impl) return;
    if (has) v.push_back(&k);
  };
  add(pt.has_avx2[i], pt.avx2[i]);
  add(pt.has_avxvnni[i], pt.avxvnni[i]);
  add(pt.has_best[i], pt.best[i]);
  return v;
}

}  // namespace tachyon::kernels
