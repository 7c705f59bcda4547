// Packed-layout kernels with AVX512-VNNI on 256-bit vectors (vpdpbusd; needs AVX512VL).
#if defined(__x86_64__)
#include "kernels/packed_impl.h"
#include "kernels/quant_legacy.h"

namespace tachyon::kernels {

// packed_ref.cpp: the scalar parts of the 16-row Q4_0 layout
size_t q4_0x16_group_bytes(int64_t n_cols);
void q4_0x16_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out);
int64_t q8_0_pair_count(int64_t n_cols);
void q8_0_aux_negsum8_scale(const uint8_t* act_row, int64_t n_cols, int32_t* aux);
void q4_0x16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                      size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld);

void q8_0_aux_negsum128_scale(const uint8_t* act_row, int64_t n_cols, int32_t* aux);
void iq4_nlx16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                        size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld);

size_t q4_Kx16_group_bytes(int64_t n_cols);
void q4_Kx16_pack(const uint8_t* rows, size_t row_bytes, int64_t n_cols, uint8_t* out);
void q4_Kx16_gemm_ref(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                      size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld);

namespace {
// acc + u . (the 4 bytes at y, broadcast to every lane), the broadcast folded into the
// instruction's memory operand (GCC emits a separate broadcast load otherwise).
inline __m512i dpbusd_bcast(__m512i acc, __m512i u, const int8_t* y) {
#if defined(TACHYON_NO_ASM_BCAST)
  int32_t v;
  std::memcpy(&v, y, 4);
  return _mm512_dpbusd_epi32(acc, u, _mm512_set1_epi32(v));
#else
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*reinterpret_cast<const int32_t*>(y)));
  return acc;
#endif
}

// Per lane (row), 8 accumulators summed in the order of the AVX2 one-row kernel's
// horizontal add: ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)).
inline __m512 sum8_lanes(const __m512* a) {
  const __m512 t0 = _mm512_add_ps(a[0], a[4]), t1 = _mm512_add_ps(a[1], a[5]);
  const __m512 t2 = _mm512_add_ps(a[2], a[6]), t3 = _mm512_add_ps(a[3], a[7]);
  return _mm512_add_ps(_mm512_add_ps(t0, t2), _mm512_add_ps(t1, t3));
}

constexpr size_t kQ40x16BlockBytes = 16 * sizeof(f16_t) + 256;

// Q4_0x16 x Q8_0: the Q4_0x8 kernel on 16 rows per 512-bit vector (one broadcast of
// activations feeds 64 multiply-adds; the 8-row form is bound by those loads).
// s8[t] holds q8_0_aux_negsum8_scale pairs: the integer sum starts at -8 * sum(y) and the
// activation scale comes as f32.
// With kLut (IQ4_NLx16: the same bytes) each nibble becomes its IQ4_NL level + 128 by one
// vpshufb, and s8's sums are -128 * sum(y).
template <int NC, bool kLut = false>
inline void q4_0x16_run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const* s8,
                        float* const* out, bool pf) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  __m512i lut = _mm512_setzero_si512();
  if constexpr (kLut) {
    alignas(16) uint8_t t[16];
    for (int k = 0; k < 16; ++k) t[k] = static_cast<uint8_t>(kIq4nlValues[k] + 128);
    lut = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
  }
  __m512 acc[NC];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ40x16BlockBytes;
    if (NC > 1 && pf) prefetch_ahead(blk, kQ40x16BlockBytes);  // one token: measured 10% slower with it
    __m512i is[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) is[t] = _mm512_set1_epi32(s8[t][2 * i]);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(blk + 32 + 64 * c);
      __m512i lo = _mm512_and_si512(v, m4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      if constexpr (kLut) {
        lo = _mm512_shuffle_epi8(lut, lo);
        hi = _mm512_shuffle_epi8(lut, hi);
      }
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        is[t] = dpbusd_bcast(is[t], lo, a[t][i].qs + 4 * c);
        is[t] = dpbusd_bcast(is[t], hi, a[t][i].qs + 16 + 4 * c);
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      float da;
      std::memcpy(&da, &s8[t][2 * i + 1], 4);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), _mm512_mul_ps(dw, _mm512_set1_ps(da)), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) _mm512_storeu_ps(out[t], acc[t]);
}

struct Q40x16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const* s8, float* const* out,
                  bool pf) {
    q4_0x16_run<NC>(nb, wg, a, s8, out, pf);
  }
};

struct Iq4nlx16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const* s8, float* const* out,
                  bool pf) {
    q4_0x16_run<NC, true>(nb, wg, a, s8, out, pf);
  }
};

void iq4_nlx16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                    size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_0, 8, Iq4nlx16>(n_cols / QK4_0, kQ40x16BlockBytes, n_groups, wp, n_tok, acts, act_stride, aux,
                                      aux_stride, y, ld);
}

// What a pass of the two-group kernel prefetches: with next, block step i asks for
// [next + i * step, next + (i + 1) * step); otherwise, with ahead, its own blocks 4 KiB ahead.
struct PairPrefetch {
  const uint8_t* next = nullptr;
  size_t step = 0;
  bool ahead = false;
};

// q4_0x16_run over two adjacent groups (32 rows) at once: each activation broadcast feeds
// both groups' vpdpbusd, halving the broadcast loads, the bound of the one-group kernel
// (this core retires two vector loads per cycle; see docs/design-notes.md). Needs 2x the
// accumulators, so at most 4 tokens per pass. Per row the same operations in the same
// order as q4_0x16_run: the same bits.
template <int NC>
inline void q4_0x16_run2(int64_t nb, const uint8_t* wa, size_t gb, const BlockQ8_0* const* a,
                         const int32_t* const* s8, float* const* oa, float* const* ob, const PairPrefetch& pf) {
  const uint8_t* wb = wa + gb;
  const __m512i m4 = _mm512_set1_epi8(0xF);
  __m512 acca[NC], accb[NC];
#pragma GCC unroll 4
  for (int t = 0; t < NC; ++t) acca[t] = accb[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* ba = wa + i * kQ40x16BlockBytes;
    const uint8_t* bb = wb + i * kQ40x16BlockBytes;
    if (pf.next) {
      prefetch_lines(pf.next + i * pf.step, pf.step);
    } else if (pf.ahead) {
      prefetch_ahead(ba, kQ40x16BlockBytes);
      prefetch_ahead(bb, kQ40x16BlockBytes);
    }
    __m512i ia[NC], ib[NC];
#pragma GCC unroll 4
    for (int t = 0; t < NC; ++t) ia[t] = ib[t] = _mm512_set1_epi32(s8[t][2 * i]);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i va = _mm512_loadu_si512(ba + 32 + 64 * c), vb = _mm512_loadu_si512(bb + 32 + 64 * c);
      const __m512i loa = _mm512_and_si512(va, m4), hia = _mm512_and_si512(_mm512_srli_epi16(va, 4), m4);
      const __m512i lob = _mm512_and_si512(vb, m4), hib = _mm512_and_si512(_mm512_srli_epi16(vb, 4), m4);
#pragma GCC unroll 4
      for (int t = 0; t < NC; ++t) {
        int32_t y0, y1;
        std::memcpy(&y0, a[t][i].qs + 4 * c, 4);
        std::memcpy(&y1, a[t][i].qs + 16 + 4 * c, 4);
        const __m512i b0 = _mm512_set1_epi32(y0), b1 = _mm512_set1_epi32(y1);
        ia[t] = _mm512_dpbusd_epi32(ia[t], loa, b0);
        ib[t] = _mm512_dpbusd_epi32(ib[t], lob, b0);
        ia[t] = _mm512_dpbusd_epi32(ia[t], hia, b1);
        ib[t] = _mm512_dpbusd_epi32(ib[t], hib, b1);
      }
    }
    const __m512 dwa = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ba)));
    const __m512 dwb = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bb)));
#pragma GCC unroll 4
    for (int t = 0; t < NC; ++t) {
      float da;
      std::memcpy(&da, &s8[t][2 * i + 1], 4);
      const __m512 dav = _mm512_set1_ps(da);
      acca[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[t]), _mm512_mul_ps(dwa, dav), acca[t]);
      accb[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib[t]), _mm512_mul_ps(dwb, dav), accb[t]);
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < NC; ++t) {
    _mm512_storeu_ps(oa[t], acca[t]);
    _mm512_storeu_ps(ob[t], accb[t]);
  }
}

struct Q40x16Pair {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wa, size_t gb, const BlockQ8_0* const* a, const int32_t* const* s8,
                  float* const* oa, float* const* ob, const PairPrefetch& pf) {
    q4_0x16_run2<NC>(nb, wa, gb, a, s8, oa, ob, pf);
  }
};

// Pairs up to this size (2048 columns: 36 KiB) prefetch the next pair while they run.
constexpr size_t kPairNextMaxBytes = 40 * 1024;

// Several tokens: group pairs, each pair's passes of 4 tokens back to back, so that the
// passes after the first find the pair in L1 (L2 for wider rows). The passes of a small
// pair spread prefetches of the next pair over their blocks, so that DRAM streams at an
// even rate while the pair is being reused; wider pairs (ffn_down) run better with the
// first pass asking 4 KiB ahead of itself. Microbench, 2 threads, 8 tokens, ns per group
// against the one-group kernel in the same run: 2048 columns 640-684 vs 709-752 streamed,
// 470 vs 658 cache-resident; 5632 columns 1690-2159 vs 2030-2624 streamed. perf
// --batch 8 -d 64 (5 alternating rounds, medians) 252 -> 282 tok/s; --batch 4 +10%;
// batch 2 and 16 and prompts unchanged. (Running the pair kernel in 4-token passes
// over whole 192 KiB tiles: the later passes came from L2 while DRAM idled, and batch
// decode measured slower than the one-group kernel.) One token stays on the one-group
// kernel: it is bound by DRAM, not by loads.
void q4_0x16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK4_0;
  const size_t gb = static_cast<size_t>(nb) * kQ40x16BlockBytes;
  const int64_t n_pairs = n_tok > 1 ? n_groups / 2 : 0;
  const int n_pass = (n_tok + 3) / 4;
  const bool next_pair = 2 * gb <= kPairNextMaxBytes;
  for (int64_t g = 0; g < 2 * n_pairs; g += 2) {
    for (int t0 = 0; t0 < n_tok; t0 += 4) {
      PairPrefetch pf;
      if (next_pair) {
        pf.step = 2 * gb / (static_cast<size_t>(n_pass) * nb);
        pf.next = wp + (g + 2) * gb + (t0 / 4) * pf.step * nb;
      } else {
        pf.ahead = t0 == 0;
      }
      const int nc = std::min(4, n_tok - t0);
      const BlockQ8_0* a[4];
      const int32_t* xp[4];
      float* oa[4];
      float* ob[4];
      for (int t = 0; t < nc; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_0*>(acts + (t0 + t) * act_stride);
        xp[t] = aux + (t0 + t) * aux_stride;
        oa[t] = y + (t0 + t) * ld + 16 * g;
        ob[t] = oa[t] + 16;
      }
      dispatch_nc<4, Q40x16Pair>(nc, nb, wp + g * gb, gb, static_cast<const BlockQ8_0* const*>(a),
                                 static_cast<const int32_t* const*>(xp), static_cast<float* const*>(oa),
                                 static_cast<float* const*>(ob), pf);
    }
  }
  // the odd group (or every group, for one token)
  const int64_t g = 2 * n_pairs;
  if (g < n_groups)
    gemm_groups<BlockQ8_0, 8, Q40x16>(nb, kQ40x16BlockBytes, n_groups - g, wp + g * gb, n_tok, acts, act_stride, aux,
                                 aux_stride, y + 16 * g, ld);
}

constexpr size_t kQ4Kx16BlockBytes = 4 * 16 + 8 * 16 + 8 * 16 + 128 * 16;

// Q4_Kx16 x Q8_K: the Q4_Kx8 kernel's per-lane chains on 16 rows per 512-bit vector.
template <int NC>
inline void q4_Kx16_run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const* bp,
                        float* const* out, bool pf) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  __m512 acc[NC], accm[NC];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) acc[t] = accm[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ4Kx16BlockBytes;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
    __m512 dd[NC], dm[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      const __m512 dy = _mm512_set1_ps(a[t][i].d);
      dd[t] = _mm512_mul_ps(dw, dy);
      dm[t] = _mm512_mul_ps(dmw, dy);
    }
#pragma GCC unroll 1
    for (int j = 0; j < 4; ++j) {
      __m512i i0[NC], i1[NC];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) i0[t] = i1[t] = _mm512_setzero_si512();
      const uint8_t* q = blk + 320 + 512 * j;
      if (pf) prefetch_ahead(blk + 592 * j, 592);
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m512i v = _mm512_loadu_si512(q + 64 * c);
        const __m512i lo = _mm512_and_si512(v, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#pragma GCC unroll 8
        for (int t = 0; t < NC; ++t) {
          i0[t] = dpbusd_bcast(i0[t], lo, a[t][i].qs + 64 * j + 4 * c);
          i1[t] = dpbusd_bcast(i1[t], hi, a[t][i].qs + 64 * j + 32 + 4 * c);
        }
      }
      const __m512i sc0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 32 * j)));
      const __m512i sc1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 80 + 32 * j)));
      const __m512i mn = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 192 + 32 * j)));
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        const __m512i s = _mm512_add_epi32(_mm512_mullo_epi32(i0[t], sc0), _mm512_mullo_epi32(i1[t], sc1));
        const __m512i m = _mm512_madd_epi16(mn, _mm512_set1_epi32(bp[t][4 * i + j]));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), dd[t], acc[t]);
        accm[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), dm[t], accm[t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) _mm512_storeu_ps(out[t], _mm512_sub_ps(acc[t], accm[t]));
}

struct Q4Kx16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const* bp, float* const* out,
                  bool pf) {
    q4_Kx16_run<NC>(nb, wg, a, bp, out, pf);
  }
};

void q4_Kx16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_K, 4, Q4Kx16>(n_cols / QK_K, kQ4Kx16BlockBytes, n_groups, wp, n_tok, acts, act_stride, aux, aux_stride,
                               y, ld);
}

constexpr size_t kQ6Kx16BlockBytes = 32 + 256 + 3072;
// Tokens per pass over a group. The per-token accumulators (8 per token) no longer fit
// in registers past 2 tokens, but L1 holds them well: with 8 tokens the 6-bit unpack is
// shared 4x more and one weight pass serves the whole batch. Single core, 8 tokens,
// weights streamed from DRAM: 2 tokens 3230 ns per group of 16 rows x 2048, 4 tokens
// 2140-2260, 8 tokens 1780-1840 (with vpdpwssd in all three).
constexpr int kQ6KTokens = 8;

// Q6_Kx16 x Q8_K (see packed_ref.cpp for the layout and the per-lane integers): per
// super-block the 16 sub-block scales become (s, s) 16-bit pairs per row, so that
// madd(maddubs(q, y), pair) = s * 4-element dot, as the AVX2 kernel computes it.
template <int NC>
inline void q6_Kx16_run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, float* const* out, bool pf) {
  __m512 acc[NC][8];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) acc[t][l] = _mm512_setzero_ps();
  alignas(64) __m512i scp[16];  // (s, s) per row, per sub-block
  alignas(64) __m512i offp[8];  // (sc[2l], sc[2l+1]) per row
  const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
  const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ6Kx16BlockBytes;
    for (int sb = 0; sb < 16; ++sb) {
      const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * sb)));
      scp[sb] = _mm512_or_si512(_mm512_and_si512(v, lo16), _mm512_slli_epi32(v, 16));
    }
    for (int l = 0; l < 8; ++l) {
      const __m512i v0 = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * (2 * l))));
      const __m512i v1 =
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * (2 * l + 1))));
      offp[l] = _mm512_or_si512(_mm512_and_si512(v0, lo16), _mm512_slli_epi32(v1, 16));
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512 dd[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) dd[t] = _mm512_mul_ps(_mm512_set1_ps(a[t][i].d), dw);
    const uint8_t* q = blk + 288;
#pragma GCC unroll 1
    for (int l = 0; l < 8; ++l) {
      if (pf) prefetch_ahead(blk + 420 * l, 420);
      __m512i I[NC];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        int32_t bp;
        const uint32_t b0 = static_cast<uint16_t>(a[t][i].bsums[2 * l]), b1 = static_cast<uint16_t>(a[t][i].bsums[2 * l + 1]);
        bp = static_cast<int32_t>(b0 | (b1 << 16));
        const __m512i off = _mm512_madd_epi16(offp[l], _mm512_set1_epi32(bp));
        I[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(off, 5));
      }
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        // the 6-bit quants of chunks k = 0..3 (see packed_ref.cpp), widened to bytes
        const uint8_t* unit = q + 192 * (2 * l + h);
        const __m512i ql0 = _mm512_loadu_si512(unit), ql1 = _mm512_loadu_si512(unit + 64);
        const __m512i qh = _mm512_loadu_si512(unit + 128);
        __m512i w[4];
        // x | (y & m) in one ternary-logic op (0xF8)
        w[0] = _mm512_ternarylogic_epi32(_mm512_and_si512(ql0, m0f), _mm512_slli_epi16(qh, 4), m30, 0xF8);
        w[1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql0, 4), m0f), _mm512_slli_epi16(qh, 2), m30, 0xF8);
        w[2] = _mm512_ternarylogic_epi32(_mm512_and_si512(ql1, m0f), qh, m30, 0xF8);
        w[3] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql1, 4), m0f), _mm512_srli_epi16(qh, 2), m30, 0xF8);
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          const int hk = 4 * h + k;
          const __m512i sp = scp[2 * hk + (l >= 4 ? 1 : 0)];  // sub-block 8h + 2k (+1)
#pragma GCC unroll 8
          for (int t = 0; t < NC; ++t) {
            int32_t yv;
            std::memcpy(&yv, a[t][i].qs + 128 * h + 32 * k + 4 * l, 4);
            const __m512i p = _mm512_maddubs_epi16(w[k], _mm512_set1_epi32(yv));
            I[t] = _mm512_dpwssd_epi32(I[t], p, sp);  // = I + madd(p, sp): the same integers
          }
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) acc[t][l] = _mm512_fmadd_ps(dd[t], _mm512_cvtepi32_ps(I[t]), acc[t][l]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) {
    _mm512_storeu_ps(out[t], sum8_lanes(acc[t]));
  }
}

struct Q6Kx16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const*, float* const* out,
                  bool pf) {
    q6_Kx16_run<NC>(nb, wg, a, out, pf);
  }
};

void q6_Kx16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_K, kQ6KTokens, Q6Kx16>(n_cols / QK_K, kQ6Kx16BlockBytes, n_groups, wp, n_tok, acts, act_stride, aux, aux_stride,
                               y, ld);
}

constexpr size_t kQ80x16BlockBytes = 16 * sizeof(f16_t) + 512;

// Q8_0x16 x Q8_0, 16 rows in the lanes of 512-bit vectors, NC tokens: per row the AVX2
// one-row kernel's 8 float lanes (one per 4-quant piece), each
// acc_c = fma(d_w*d_a, float(piece dot), acc_c), then its horizontal add order.
template <int NC>
inline void q8_0x16_run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const* px,
                        float* const* out, bool pf) {
  __m512 acc[NC][8];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t)
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) acc[t][c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ80x16BlockBytes;
    if (pf) prefetch_ahead(blk, kQ80x16BlockBytes);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512 dd[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) dd[t] = _mm512_mul_ps(dw, _mm512_set1_ps(_cvtsh_ss(a[t][i].d)));
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      const __m512i w = _mm512_loadu_si512(blk + 32 + 64 * c);
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        const __m512i p = dpbusd_bcast(_mm512_set1_epi32(px[t][8 * i + c]), w, a[t][i].qs + 4 * c);
        acc[t][c] = _mm512_fmadd_ps(dd[t], _mm512_cvtepi32_ps(p), acc[t][c]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) {
    _mm512_storeu_ps(out[t], sum8_lanes(acc[t]));
  }
}

struct Q80x16 {
  template <int NC>
  static void run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const* px, float* const* out,
                  bool pf) {
    q8_0x16_run<NC>(nb, wg, a, px, out, pf);
  }
};

void q8_0x16_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                  size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  gemm_groups<BlockQ8_0, 3, Q80x16>(n_cols / QK8_0, kQ80x16BlockBytes, n_groups, wp, n_tok, acts, act_stride, aux, aux_stride,
                               y, ld);
}
}  // namespace

void install_packed_vnni(PackedKernels* t) {
  auto& q40 = t[static_cast<int>(DType::Q4_0)];
  q40.rows = 16;
  q40.multi_token_groups = 2;  // q4_0x16_gemm: group pairs
  q40.group_bytes = q4_0x16_group_bytes;
  q40.pack = q4_0x16_pack;
  q40.gemm = q4_0x16_gemm;
  q40.gemm_ref = q4_0x16_gemm_ref;
  q40.aux_count = q8_0_pair_count;
  q40.make_aux = q8_0_aux_negsum8_scale;
  q40.impl = "avx512vnni";
  // IQ4_NL: Q4_0x16's layout, its levels through a vpshufb (the 8-row AVX-VNNI form was
  // half of Q4_0x16's prefill speed).
  auto& iq4 = t[static_cast<int>(DType::IQ4_NL)];
  iq4 = q40;
  iq4.type = DType::IQ4_NL;
  iq4.multi_token_groups = 1;
  iq4.gemm = iq4_nlx16_gemm;
  iq4.gemm_ref = iq4_nlx16_gemm_ref;
  iq4.make_aux = q8_0_aux_negsum128_scale;
  auto& q6k = t[static_cast<int>(DType::Q6_K)];
  q6k.gemm = q6_Kx16_gemm;
  q6k.impl = "avx512vnni";
  auto& q80 = t[static_cast<int>(DType::Q8_0)];
  q80.gemm = q8_0x16_gemm;
  q80.impl = "avx512vnni";
  auto& q4k = t[static_cast<int>(DType::Q4_K)];
  q4k.rows = 16;
  q4k.group_bytes = q4_Kx16_group_bytes;
  q4k.pack = q4_Kx16_pack;
  q4k.gemm = q4_Kx16_gemm;
  q4k.gemm_ref = q4_Kx16_gemm_ref;
  q4k.impl = "avx512vnni";
}

}  // namespace tachyon::kernels
#endif
