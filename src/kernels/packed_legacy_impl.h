// SIMD kernels over the Lx8 layouts of Q4_1, Q5_0, Q5_1 and IQ4_NL (packed_legacy.h):
// Q4_0x8's kernel (packed_impl.h) with the per-format expansion of a 4-byte piece of the
// 8 rows' quants into bytes. Per piece c, one 32-byte load gives the nibbles of elements
// 4c..4c+3 (low) and 16+4c..16+4c+3 (high) of all 8 rows; Q5_0/Q5_1 or in the fifth bit
// (one shift of the block's rearranged qh), IQ4_NL looks the levels up with vpshufb. The
// integer dot with the broadcast activation piece is Dp's (lane r = row r):
//  - Q4_1, Q5_1: unsigned quants x signed activations (|pair| <= 2*31*127: maddubs never
//    saturates, and Dp::dot2 may add the low and high pieces' pairs in 16 bits);
//  - Q5_0: unsigned u = q + 16, minus 16 * (activation block sum) from aux;
//  - IQ4_NL: |level| x (activation with the level's sign) (|pair| <= 2*127*127).
// Then per lane the one-row kernel's float chain: acc = fma(float(isum), d_w * d_a, acc),
// and for Q4_1/Q5_1 acc = fma(m_w, s_a, acc), so results are the bits of vec_dot.
//
// Written once over the integer dot Dp (dot(acc, u, s): acc + the 4-byte u8 x s8 sums;
// dot2: two of them) and compiled in packed_legacy_avx2.cpp and packed_avxvnni.cpp.
// Include only from those files; everything here has internal linkage.
#pragma once
#include <type_traits>

#include "kernels/packed_impl.h"
#include "kernels/packed_legacy.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {
namespace {

template <class Dp, DType T>
struct Lx8 {
  using L = LegacyX8<T>;
  using Act = std::conditional_t<L::kMin, BlockQ8_1, BlockQ8_0>;
  static constexpr bool kIq4 = T == DType::IQ4_NL;

  // Adds piece C of block i (at blk) to the NC tokens' integer sums.
  template <int C, int NC>
  static inline void piece(const uint8_t* blk, __m256i h, __m256i tbl, int64_t i, const Act* const* a, __m256i* is) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i v = pk_load256(blk + L::kOffQ + 32 * C);
    __m256i lo = _mm256_and_si256(v, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if constexpr (L::kQ5) {
      // byte b of lane r: bit C = fifth bit of element 4C+b, bit 4+C = of 16+4C+b
      const __m256i b4 = _mm256_set1_epi8(0x10);
      lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4 - C), b4));
      hi = _mm256_or_si256(hi, _mm256_and_si256(C == 0 ? h : _mm256_srli_epi16(h, C), b4));
    }
    if constexpr (kIq4) {
      lo = _mm256_shuffle_epi8(tbl, lo);
      hi = _mm256_shuffle_epi8(tbl, hi);
      const __m256i ulo = _mm256_abs_epi8(lo), uhi = _mm256_abs_epi8(hi);
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        is[t] = Dp::dot(is[t], ulo, _mm256_sign_epi8(pk_bcast32(a[t][i].qs + 4 * C), lo));
        is[t] = Dp::dot(is[t], uhi, _mm256_sign_epi8(pk_bcast32(a[t][i].qs + 16 + 4 * C), hi));
      }
    } else {
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t)
        is[t] = Dp::dot2(is[t], lo, pk_bcast32(a[t][i].qs + 4 * C), hi, pk_bcast32(a[t][i].qs + 16 + 4 * C));
    }
  }

  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const Act* const* a, const int32_t* const* xs, float* const* out,
                  bool) {
    const __m256i tbl =
        kIq4 ? _mm256_broadcastsi128_si256(pk_load128(kIq4nlValues)) : _mm256_setzero_si256();
    __m256 acc[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const uint8_t* blk = wg + i * L::kBlock;
      __m256i is[NC];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) is[t] = _mm256_setzero_si256();
      const __m256i h = L::kQ5 ? pk_load256(blk + L::kOffH) : _mm256_setzero_si256();
      piece<0, NC>(blk, h, tbl, i, a, is);
      piece<1, NC>(blk, h, tbl, i, a, is);
      piece<2, NC>(blk, h, tbl, i, a, is);
      piece<3, NC>(blk, h, tbl, i, a, is);
      const __m256 dw = _mm256_cvtph_ps(pk_load128(blk));
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        __m256i s = is[t];
        if constexpr (T == DType::Q5_0) s = _mm256_sub_epi32(s, _mm256_set1_epi32(xs[t][i]));
        const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(a[t][i].d)));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), dd, acc[t]);
      }
      if constexpr (L::kMin) {
        const __m256 mw = _mm256_cvtph_ps(pk_load128(blk + L::kOffM));
#pragma GCC unroll 8
        for (int t = 0; t < NC; ++t) acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(_cvtsh_ss(a[t][i].s)), acc[t]);
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) _mm256_storeu_ps(out[t], acc[t]);
  }
};

template <class Dp, DType T>
void lx8_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts, size_t act_stride,
              const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<typename Lx8<Dp, T>::Act, 4, Lx8<Dp, T>, 8>(n_cols / 32, LegacyX8<T>::kBlock, n_groups, wp, n_tok, acts,
                                                  act_stride, aux, aux_stride, y, ld);
}

template <class Dp, DType T>
void install_lx8(PackedKernels* table, const char* impl) {
  PackedKernels& e = table[static_cast<int>(T)];
  e.gemm = lx8_gemm<Dp, T>;
  e.impl = impl;
}

// Sets gemm and impl of the Q4_1, Q5_0, Q5_1 and IQ4_NL entries (installed by
// install_packed_legacy_ref) to the Lx8 kernels over Dp.
template <class Dp>
void install_packed_legacy(PackedKernels* table, const char* impl) {
  install_lx8<Dp, DType::Q4_1>(table, impl);
  install_lx8<Dp, DType::Q5_0>(table, impl);
  install_lx8<Dp, DType::Q5_1>(table, impl);
  install_lx8<Dp, DType::IQ4_NL>(table, impl);
}

}  // namespace
}  // namespace tachyon::kernels
