// AVX2 kernels over the 16-row Q8_0x16 and Q6_Kx16 layouts (packed.h, packed_ref.cpp),
// for CPUs without AVX-512: a 256-bit vector holds 8 rows, so each 16-row group runs as
// two halves of 8 lanes side by side. Same layouts as the AVX512-VNNI kernels, so the
// loader packs once whichever of the two a CPU runs, and the same per-row float
// operations as the one-row AVX2 kernels (kernels_avx2.cpp, kquants_avx2.cpp): the same
// bits (tests/unit/kernels/packed_test.cpp).
//
// Why packed on AVX2 too: the one-row kernels reduce every 32-byte product horizontally
// and convert scales one row at a time; here the lanes are rows, so a broadcast piece of
// activations advances 8 rows with no horizontal work, and the weights stream in one
// sequential pass per group, prefetched ahead (decode reads every byte once: the
// one-row kernels reached 26-34% of the read bandwidth, measured in bench/perf.sh).
#if defined(__x86_64__)
#include <vector>

#include "kernels/packed_impl.h"

namespace tachyon::kernels {
namespace {

// (s, s) 16-bit pairs per 32-bit lane from 8 signed bytes: madd(p, pair) = s * (p0 + p1).
inline __m256i scale_pairs(const uint8_t* p) {
  const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}
// (a, b) 16-bit pairs per 32-bit lane from two rows of 8 signed bytes.
inline __m256i scale_two(const uint8_t* pa, const uint8_t* pb) {
  const __m256i a = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pa)));
  const __m256i b = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pb)));
  return _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(b, 16));
}

// ---------------------------------------------------------------- Q6_Kx16

constexpr size_t kQ6Kx16Bytes = 32 + 256 + 3072;

// Q6_Kx16 x Q8_K for NC tokens (packed_ref.cpp: q6_Kx16_gemm_ref). Per row half h2 (rows
// 8*h2..8*h2+7), column l and token: I = -32 (sc[2l] bsum[2l] + sc[2l+1] bsum[2l+1]) +
// sum over (h, k) of sc[8h+2k+(l>=4)] * (4-element dot), then acc[l] = fma(d_a*d_w,
// float(I), acc[l]); the 8 columns summed in the AVX2 horizontal-add order at the end.
template <int NC>
inline void q6_Kx16_run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, float* const* out, bool pf) {
  __m256 acc[NC][2][8];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
    for (int h2 = 0; h2 < 2; ++h2)
      for (int l = 0; l < 8; ++l) acc[t][h2][l] = _mm256_setzero_ps();
  const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ6Kx16Bytes;
    __m256 dd[NC][2];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t)
      for (int h2 = 0; h2 < 2; ++h2)
        dd[t][h2] = _mm256_mul_ps(_mm256_set1_ps(a[t][i].d),
                                  _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * h2))));
    const uint8_t* sc = blk + 32;  // [16 sub-blocks][16 rows] signed bytes
    // (s, s) pairs of each sub-block and row half, made once per super-block (each is
    // used by 4 columns x NC tokens)
    __m256i scp[16][2];
#pragma GCC unroll 16
    for (int sb = 0; sb < 16; ++sb)
      for (int h2 = 0; h2 < 2; ++h2) scp[sb][h2] = scale_pairs(sc + 16 * sb + 8 * h2);
    // (-32 sc[2l], -32 sc[2l+1]) per row (|-32 sc| <= 4096 fits 16 bits)
    __m256i offp[8][2];
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l)
      for (int h2 = 0; h2 < 2; ++h2)
        offp[l][h2] = _mm256_sub_epi16(
            _mm256_setzero_si256(),
            _mm256_slli_epi16(scale_two(sc + 16 * (2 * l) + 8 * h2, sc + 16 * (2 * l + 1) + 8 * h2), 5));
    const uint8_t* q = blk + 288;
#pragma GCC unroll 1
    for (int l = 0; l < 8; ++l) {
      if (pf) prefetch_ahead(blk + 420 * l, 420);
      // both row halves at once, so that each activation broadcast feeds 16 rows;
      // the -32 offset: madd of (-32 sc[2l], -32 sc[2l+1]) with (bsum[2l], bsum[2l+1])
      __m256i I[NC][2];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        const __m256i bp = pk_bcast32(a[t][i].bsums + 2 * l);
        I[t][0] = _mm256_madd_epi16(offp[l][0], bp);
        I[t][1] = _mm256_madd_epi16(offp[l][1], bp);
      }
#pragma GCC unroll 1
      for (int h = 0; h < 2; ++h) {
        const uint8_t* unit = q + 192 * (2 * l + h);  // [ql0 | ql1 | qh], 64 bytes each
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          __m256i w[2];
#pragma GCC unroll 2
          for (int h2 = 0; h2 < 2; ++h2) {
            const __m256i ql = pk_load256(unit + 64 * (k / 2) + 32 * h2), qh = pk_load256(unit + 128 + 32 * h2);
            const __m256i lo = (k & 1) ? _mm256_and_si256(_mm256_srli_epi16(ql, 4), m0f) : _mm256_and_si256(ql, m0f);
            // bits 2k, 2k+1 of qh to bits 4, 5
            const __m256i hi = k == 0   ? _mm256_slli_epi16(qh, 4)
                               : k == 1 ? _mm256_slli_epi16(qh, 2)
                               : k == 2 ? qh
                                        : _mm256_srli_epi16(qh, 2);
            w[h2] = _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
          }
          // sub-block 8h + 2k (+1 for columns 4..7)
          const int sb = 8 * h + 2 * k + (l >= 4 ? 1 : 0);
          const __m256i sp0 = scp[sb][0], sp1 = scp[sb][1];
#pragma GCC unroll 8
          for (int t = 0; t < NC; ++t) {
            const __m256i y = pk_bcast32(a[t][i].qs + 128 * h + 32 * k + 4 * l);
            I[t][0] = _mm256_add_epi32(I[t][0], _mm256_madd_epi16(_mm256_maddubs_epi16(w[0], y), sp0));
            I[t][1] = _mm256_add_epi32(I[t][1], _mm256_madd_epi16(_mm256_maddubs_epi16(w[1], y), sp1));
          }
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t)
        for (int h2 = 0; h2 < 2; ++h2)
          acc[t][h2][l] = _mm256_fmadd_ps(dd[t][h2], _mm256_cvtepi32_ps(I[t][h2]), acc[t][h2][l]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
    for (int h2 = 0; h2 < 2; ++h2) _mm256_storeu_ps(out[t] + 8 * h2, sum8_lanes(acc[t][h2]));
}

struct Q6Kx16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const*, float* const* out,
                  bool pf) {
    q6_Kx16_run<NC>(nb, wg, a, out, pf);
  }
};

// Tokens per pass: the 6-bit unpacking is shared by the pass's tokens.
constexpr int kQ6KTokens = 4;

void q6_Kx16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_K, kQ6KTokens, Q6Kx16>(n_cols / QK_K, kQ6Kx16Bytes, n_groups, wp, n_tok, acts, act_stride, aux,
                                        aux_stride, y, ld);
}

// ---------------------------------------------------------------- Q8_0x16

constexpr size_t kQ80x16Bytes = 16 * sizeof(f16_t) + 512;

// Q8_0x16 x Q8_0 for NC tokens (packed_ref.cpp: q8_0x16_gemm_ref): per row the one-row
// kernel's 8 float lanes, acc_c = fma(d_w*d_a, float(piece c dot), acc_c). The layout
// stores q + 128 for vpdpbusd; maddubs would saturate on those, so the weights go back to
// signed and the dot uses llama.cpp's sign trick (|w| times y with w's sign), which gives
// the same exact integer as the reference's (q + 128) . y - 128 sum(y): no aux needed.
template <int NC>
inline void q8_0x16_run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, float* const* out, bool pf) {
  __m256 acc[NC][2][8];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
    for (int h2 = 0; h2 < 2; ++h2)
      for (int c = 0; c < 8; ++c) acc[t][h2][c] = _mm256_setzero_ps();
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ80x16Bytes;
    if (pf) prefetch_ahead(blk, kQ80x16Bytes);
    __m256 dd[NC][2];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      const __m256 da = _mm256_set1_ps(_cvtsh_ss(a[t][i].d));
      for (int h2 = 0; h2 < 2; ++h2)
        dd[t][h2] = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * h2))), da);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      // both row halves per activation broadcast
      const __m256i x0 = _mm256_xor_si256(pk_load256(blk + 32 + 64 * c), bias);  // signed weights
      const __m256i x1 = _mm256_xor_si256(pk_load256(blk + 64 + 64 * c), bias);
      const __m256i ax0 = _mm256_sign_epi8(x0, x0), ax1 = _mm256_sign_epi8(x1, x1);
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        const __m256i y = pk_bcast32(a[t][i].qs + 4 * c);
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax0, _mm256_sign_epi8(y, x0)), ones);
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax1, _mm256_sign_epi8(y, x1)), ones);
        acc[t][0][c] = _mm256_fmadd_ps(dd[t][0], _mm256_cvtepi32_ps(p0), acc[t][0][c]);
        acc[t][1][c] = _mm256_fmadd_ps(dd[t][1], _mm256_cvtepi32_ps(p1), acc[t][1][c]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
    for (int h2 = 0; h2 < 2; ++h2) _mm256_storeu_ps(out[t] + 8 * h2, sum8_lanes(acc[t][h2]));
}

// The same for several tokens, column by column: for each 4-byte column c, a run of
// blocks, so that the pass's 2 x NC accumulators of that column stay in registers (the
// block-major order keeps 16 x NC of them in memory: a load and a store per FMA). Each
// column's chain still runs over the blocks in order: the same bits. Runs of
// kQ80ColBlocks blocks (34 KiB) stay in L1/L2 while the 8 columns pass over them; the
// per-block scales d_w * d_a are made once per call into dd [nb][NC][2][8 floats].
// Single core, 64 tokens, 5632 x 2048: 44 -> 36 ns per token-row.
constexpr int64_t kQ80ColBlocks = 64;

template <int NC>
inline void q8_0x16_run_cols(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, float* const* out, float* dd) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ80x16Bytes;
    const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      const __m256 da = _mm256_set1_ps(_cvtsh_ss(a[t][i].d));
      _mm256_storeu_ps(dd + ((i * NC + t) * 2) * 8, _mm256_mul_ps(dw0, da));
      _mm256_storeu_ps(dd + ((i * NC + t) * 2 + 1) * 8, _mm256_mul_ps(dw1, da));
    }
  }
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  __m256 sums[NC][2][8];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
    for (int h2 = 0; h2 < 2; ++h2)
      for (int c = 0; c < 8; ++c) sums[t][h2][c] = _mm256_setzero_ps();
  for (int64_t i0 = 0; i0 < nb; i0 += kQ80ColBlocks) {
    const int64_t i1 = i0 + kQ80ColBlocks < nb ? i0 + kQ80ColBlocks : nb;
#pragma GCC unroll 1
    for (int c = 0; c < 8; ++c) {
      __m256 acc[NC][2];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        acc[t][0] = sums[t][0][c];
        acc[t][1] = sums[t][1][c];
      }
      const uint8_t* w = wg + i0 * kQ80x16Bytes + 32 + 64 * c;
      for (int64_t i = i0; i < i1; ++i, w += kQ80x16Bytes) {
        const __m256i x0 = _mm256_xor_si256(pk_load256(w), bias), x1 = _mm256_xor_si256(pk_load256(w + 32), bias);
        const __m256i ax0 = _mm256_sign_epi8(x0, x0), ax1 = _mm256_sign_epi8(x1, x1);
        const float* ddi = dd + i * NC * 16;
#pragma GCC unroll 8
        for (int t = 0; t < NC; ++t) {
          const __m256i y = pk_bcast32(a[t][i].qs + 4 * c);
          const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax0, _mm256_sign_epi8(y, x0)), ones);
          const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax1, _mm256_sign_epi8(y, x1)), ones);
          acc[t][0] = _mm256_fmadd_ps(_mm256_loadu_ps(ddi + 16 * t), _mm256_cvtepi32_ps(p0), acc[t][0]);
          acc[t][1] = _mm256_fmadd_ps(_mm256_loadu_ps(ddi + 16 * t + 8), _mm256_cvtepi32_ps(p1), acc[t][1]);
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        sums[t][0][c] = acc[t][0];
        sums[t][1][c] = acc[t][1];
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
    for (int h2 = 0; h2 < 2; ++h2) _mm256_storeu_ps(out[t] + 8 * h2, sum8_lanes(sums[t][h2]));
}

struct Q80x16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const*, float* const* out,
                  bool pf) {
    // The first pass over a group streams it from memory block by block (read 8 times
    // column by column, it would come from DRAM in strided passes: 2 tokens ran 1.9x
    // slower); later passes find it in cache and go column by column.
    if (NC == 1 || pf) {
      q8_0x16_run<NC>(nb, wg, a, out, pf);
    } else {
      thread_local std::vector<float> dd;
      if (dd.size() < static_cast<size_t>(nb) * NC * 16) dd.resize(static_cast<size_t>(nb) * NC * 16);
      q8_0x16_run_cols<NC>(nb, wg, a, out, dd.data());
    }
  }
};

constexpr int kQ80Tokens = 4;

void q8_0x16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_0, kQ80Tokens, Q80x16>(n_cols / QK8_0, kQ80x16Bytes, n_groups, wp, n_tok, acts, act_stride, aux,
                                        aux_stride, y, ld);
}

}  // namespace

void install_packed_x16_avx2(PackedKernels* t) {
  auto& q6k = t[static_cast<int>(DType::Q6_K)];
  q6k.gemm = q6_Kx16_gemm;
  q6k.impl = "avx2";
  auto& q80 = t[static_cast<int>(DType::Q8_0)];
  q80.gemm = q8_0x16_gemm;
  q80.impl = "avx2";
}

}  // namespace tachyon::kernels
#endif
