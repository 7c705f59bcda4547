// SIMD kernels over the 8-row packed layouts (packed.h), written once over an integer
// dot primitive and compiled twice: packed_avx2.cpp (maddubs + madd) and
// packed_avxvnni.cpp (AVX-VNNI vpdpbusd); packed_vnni.cpp uses packed_drive for its
// 16-row layouts. Include only from those files; everything here has internal linkage.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "base/fp16.h"
#include "kernels/packed.h"
#include "kernels/quant.h"

namespace tachyon::kernels {
namespace {

inline __m256i pk_load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i pk_load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i pk_bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Prefetches into L1 the cache lines of [p + kAhead, p + kAhead + bytes), on the first
// pass over the weights (later passes find them in L2). The hardware prefetcher falls
// behind the multi-token kernels: with 8 tokens, Q4_0x16 reading its weights from DRAM
// ran 1.8x slower than on cache-resident weights although it needs only ~10 GB/s per
// core. Asking 4 KiB ahead, single core, 8 tokens: Q4_0 1860 -> 1110 ns per group,
// Q4_K 1650 -> 1180, Q8_0 3620 -> 2890, Q6_K 3740 -> 3250; one token: Q4_K -15%,
// Q6_K -38%, Q8_0 unchanged, Q4_0 10% slower (so Q4_0 skips it for one token).
constexpr size_t kAhead = 4096;
// Prefetches into L1 the cache lines that hold [p, p + bytes). Prefetches never fault, so
// p may point past the end of the weights.
inline void prefetch_lines(const uint8_t* p, size_t bytes) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t e = reinterpret_cast<uintptr_t>(p) + bytes;
  // (asm: GCC deletes a loop whose body is only a prefetch builtin)
  for (uintptr_t a = b; a < e; a += 64) asm volatile("prefetcht0 %0" ::"m"(*reinterpret_cast<const char*>(a)));
}
inline void prefetch_ahead(const uint8_t* p, size_t bytes) { prefetch_lines(p + kAhead, bytes); }

// Per row lane, 8 float accumulators (the one-row AVX2 kernels' lanes) summed in the
// order of their 256-bit horizontal add: ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)).
inline __m256 sum8_lanes(const __m256* a) {
  const __m256 t0 = _mm256_add_ps(a[0], a[4]), t1 = _mm256_add_ps(a[1], a[5]);
  const __m256 t2 = _mm256_add_ps(a[2], a[6]), t3 = _mm256_add_ps(a[3], a[7]);
  return _mm256_add_ps(_mm256_add_ps(t0, t2), _mm256_add_ps(t1, t3));
}

constexpr size_t kQ40x8BlockBytes = 8 * sizeof(f16_t) + 128;

// Q4_0x8 x Q8_0 for NC tokens: per token one 8-lane integer sum per block (unsigned
// nibbles times signed activations, minus 8 * the activation block sum), then per lane
// acc = fma(float(isum), d_w * d_a, acc): the one-row kernel's chain, lane by lane.
template <class Dp, int NC>
inline void q4_0x8_run(int64_t nb, const uint8_t* wg, const BlockQ8_0* const* a, const int32_t* const* s8,
                       float* const* out) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc[NC];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ40x8BlockBytes;
    __m256i is[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) is[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i v = pk_load256(blk + 16 + 32 * c);
      const __m256i lo = _mm256_and_si256(v, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        is[t] = Dp::dot(is[t], lo, pk_bcast32(a[t][i].qs + 4 * c));
        is[t] = Dp::dot(is[t], hi, pk_bcast32(a[t][i].qs + 16 + 4 * c));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(is[t], _mm256_set1_epi32(s8[t][i])));
      const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(a[t][i].d)));
      acc[t] = _mm256_fmadd_ps(f, dd, acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) _mm256_storeu_ps(out[t], acc[t]);
}

constexpr size_t kQ4Kx8BlockBytes = 16 + 16 + 64 + 64 + 1024;

// Q4_Kx8 x Q8_K for NC tokens, per lane the one-row kernel's two FMA chains over the
// sub-block pairs: acc += float(sc0*dot0 + sc1*dot1) * (d*d8), accm += float(m0*b0 +
// m1*b1) * (dmin*d8); result acc - accm.
template <class Dp, int NC>
inline void q4_Kx8_run(int64_t nb, const uint8_t* wg, const BlockQ8_K* const* a, const int32_t* const* bp,
                       float* const* out, bool pf) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc[NC], accm[NC];
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) acc[t] = accm[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = wg + i * kQ4Kx8BlockBytes;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
    __m256 dd[NC], dm[NC];
#pragma GCC unroll 8
    for (int t = 0; t < NC; ++t) {
      const __m256 dy = _mm256_set1_ps(a[t][i].d);
      dd[t] = _mm256_mul_ps(dw, dy);
      dm[t] = _mm256_mul_ps(dmw, dy);
    }
#pragma GCC unroll 1
    for (int j = 0; j < 4; ++j) {
      __m256i i0[NC], i1[NC];
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) i0[t] = i1[t] = _mm256_setzero_si256();
      const uint8_t* q = blk + 160 + 256 * j;
      if (pf) prefetch_ahead(blk + kQ4Kx8BlockBytes / 4 * j, kQ4Kx8BlockBytes / 4);
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m256i v = pk_load256(q + 32 * c);
        const __m256i lo = _mm256_and_si256(v, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#pragma GCC unroll 8
        for (int t = 0; t < NC; ++t) {
          i0[t] = Dp::dot(i0[t], lo, pk_bcast32(a[t][i].qs + 64 * j + 4 * c));
          i1[t] = Dp::dot(i1[t], hi, pk_bcast32(a[t][i].qs + 64 * j + 32 + 4 * c));
        }
      }
      const __m256i sc0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 32 + 16 * j)));
      const __m256i sc1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 40 + 16 * j)));
      const __m256i mn = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 96 + 16 * j)));
#pragma GCC unroll 8
      for (int t = 0; t < NC; ++t) {
        const __m256i s = _mm256_add_epi32(_mm256_mullo_epi32(i0[t], sc0), _mm256_mullo_epi32(i1[t], sc1));
        const __m256i m = _mm256_madd_epi16(mn, _mm256_set1_epi32(bp[t][4 * i + j]));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), dd[t], acc[t]);
        accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), dm[t], accm[t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NC; ++t) _mm256_storeu_ps(out[t], _mm256_sub_ps(acc[t], accm[t]));
}

// Drives a per-group micro-kernel over groups (of ROWS rows) x tokens, tokens in chunks
// of up to NCMAX: run(nc, group weights, activation rows, aux rows, output pointers,
// first) where first is true on the first pass over the groups (the one that reads the
// weights from memory; later passes find them in cache).
template <int NCMAX, class Run, int ROWS = 8>
inline void packed_drive(int64_t n_groups, size_t gb, const uint8_t* wp, int n_tok, const uint8_t* acts,
                         size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld, Run run) {
  for (int t0 = 0; t0 < n_tok; t0 += NCMAX) {
    const int nc = n_tok - t0 < NCMAX ? n_tok - t0 : NCMAX;
    const uint8_t* ap[NCMAX];
    const int32_t* xp[NCMAX];
    for (int t = 0; t < nc; ++t) {
      ap[t] = acts + (t0 + t) * act_stride;
      xp[t] = aux + (t0 + t) * aux_stride;
    }
    for (int64_t g = 0; g < n_groups; ++g) {
      float* op[NCMAX];
      for (int t = 0; t < nc; ++t) op[t] = y + (t0 + t) * ld + ROWS * g;
      run(nc, wp + g * gb, ap, xp, op, t0 == 0);
    }
  }
}

// Calls F::run<nc>(...) for 1 <= nc <= NCMAX.
template <int NCMAX, class F, class... A>
inline void dispatch_nc(int nc, A... args) {
  if constexpr (NCMAX > 1) {
    if (nc == NCMAX) return F::template run<NCMAX>(args...);
    return dispatch_nc<NCMAX - 1, F>(nc, args...);
  } else {
    F::template run<1>(args...);
  }
}

// packed_drive over groups of ROWS rows x token chunks of up to NCMAX, calling
// F::run<nc>(nb, group, typed activation rows, aux rows, outputs, first pass).
template <class Blk, int NCMAX, class F, int ROWS = 16>
void gemm_groups(int64_t nb, size_t block_bytes, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
            size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  auto run = [nb](int nc, const uint8_t* wg, const uint8_t* const* ap, const int32_t* const* xp, float* const* op,
                  bool first) {
    const Blk* a[NCMAX];
    for (int t = 0; t < nc; ++t) a[t] = reinterpret_cast<const Blk*>(ap[t]);
    dispatch_nc<NCMAX, F>(nc, nb, wg, static_cast<const Blk* const*>(a), xp, op, first);
  };
  packed_drive<NCMAX, decltype(run), ROWS>(n_groups, static_cast<size_t>(nb) * block_bytes, wp, n_tok, acts, act_stride,
                                         aux, aux_stride, y, ld, run);
}

template <class Dp, int NCMAX>
void q4_0x8_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                 size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK4_0;
  packed_drive<NCMAX>(n_groups, static_cast<size_t>(nb) * kQ40x8BlockBytes, wp, n_tok, acts, act_stride, aux,
                      aux_stride, y, ld,
                      [nb](int nc, const uint8_t* wg, const uint8_t* const* ap, const int32_t* const* xp,
                           float* const* op, bool) {
                        const BlockQ8_0* a[NCMAX];
                        for (int t = 0; t < nc; ++t) a[t] = reinterpret_cast<const BlockQ8_0*>(ap[t]);
                        if constexpr (NCMAX >= 8) {
                          if (nc == 8) return q4_0x8_run<Dp, 8>(nb, wg, a, xp, op);
                          if (nc >= 6) return q4_0x8_run<Dp, 6>(nb, wg, a, xp, op), nc == 7 ? q4_0x8_run<Dp, 1>(nb, wg, a + 6, xp + 6, op + 6) : void();
                          if (nc == 5) return q4_0x8_run<Dp, 5>(nb, wg, a, xp, op);
                        }
                        switch (nc) {
                          case 4: q4_0x8_run<Dp, 4>(nb, wg, a, xp, op); break;
                          case 3: q4_0x8_run<Dp, 3>(nb, wg, a, xp, op); break;
                          case 2: q4_0x8_run<Dp, 2>(nb, wg, a, xp, op); break;
                          default: q4_0x8_run<Dp, 1>(nb, wg, a, xp, op); break;
                        }
                      });
}

}  // namespace
}  // namespace tachyon::kernels

namespace tachyon::kernels {
namespace {

template <class Dp, int NCMAX>
void q4_Kx8_gemm(int64_t n_cols, int64_t n_groups, const uint8_t* wp, int n_tok, const uint8_t* acts,
                 size_t act_stride, const int32_t* aux, int64_t aux_stride, float* y, int64_t ld) {
  const int64_t nb = n_cols / QK_K;
  packed_drive<NCMAX>(n_groups, static_cast<size_t>(nb) * kQ4Kx8BlockBytes, wp, n_tok, acts, act_stride, aux,
                      aux_stride, y, ld,
                      [nb](int nc, const uint8_t* wg, const uint8_t* const* ap, const int32_t* const* xp,
                           float* const* op, bool first) {
                        const BlockQ8_K* a[NCMAX];
                        for (int t = 0; t < nc; ++t) a[t] = reinterpret_cast<const BlockQ8_K*>(ap[t]);
                        if constexpr (NCMAX >= 4) {
                          if (nc == 4) return q4_Kx8_run<Dp, 4>(nb, wg, a, xp, op, first);
                          if (nc == 3) return q4_Kx8_run<Dp, 3>(nb, wg, a, xp, op, first);
                        }
                        if (nc == 2) return q4_Kx8_run<Dp, 2>(nb, wg, a, xp, op, first);
                        q4_Kx8_run<Dp, 1>(nb, wg, a, xp, op, first);
                      });
}

}  // namespace
}  // namespace tachyon::kernels

namespace tachyon::kernels {
namespace {

// Installs the 8-row Q4_0/Q4_K kernels over the integer dot Dp (gemm_ref: the 8-row
// reference twins, set in packed_ref.cpp), NC0/NCK tokens per pass at most.
template <class Dp, int NC0, int NCK>
void install_packed_8row(PackedKernels* t, const char* impl) {
  auto& q40 = t[static_cast<int>(DType::Q4_0)];
  q40.gemm = q4_0x8_gemm<Dp, NC0>;
  q40.impl = impl;
  auto& q4k = t[static_cast<int>(DType::Q4_K)];
  q4k.gemm = q4_Kx8_gemm<Dp, NCK>;
  q4k.impl = impl;
}

}  // namespace
}  // namespace tachyon::kernels
