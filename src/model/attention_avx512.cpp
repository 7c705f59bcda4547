// AVX-512 (F/BW/VL) form of the short-path (decode) attention rows for head dims that
// are multiples of 16 up to 128. Same float operations in the same order as the
// reference, so the same bits (tests/unit/model/attention_simd_test.cpp): what differs
// is scheduling. The f16-rounded V accumulator makes every key a dependent chain
// (FMA -> round to f16 -> widen) per row; the AVX2 form runs one row at a time and waits
// on that chain. Here several rows of the GQA group advance together, key by key, so
// their chains overlap, with the accumulators of all of them in the 32 vector registers.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/expf_avx2.h"
#include "model/attention_dot_avx2.h"
#include "model/attention_f32acc.h"
#include "model/attention_rows.h"

namespace tachyon::model::detail {

namespace {

inline __m512 round_f16(__m512 v) { return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); }

constexpr int kBlk = 16;

// Scores, running max and exps of one row over its visible keys [k0, nk) of one block
// of keys (see the AVX2 form).
struct RowBlock {
  alignas(64) float vs[kBlk];
  alignas(64) float ms[kBlk];
  unsigned newmax = 0;
  int k0 = 0;
  int nk = 0;
};

inline void score_block(int hd, const float* kb, int k0, int nk, const float* qf, float scale, float* M, RowBlock* rb,
                        const long long* tab) {
  alignas(32) float s[kBlk], as[kBlk], am[kBlk];
  float m = *M;
  unsigned newmax = 0;
  for (int k = 0; k < k0; ++k) as[k] = am[k] = 0.f;
  for (int k = k0; k < nk; ++k) {
    s[k] = dot_f32x(hd, kb + k * hd, qf) * scale;
    if (s[k] > m) {
      am[k] = m - s[k];
      as[k] = 0.f;
      m = s[k];
      newmax |= 1u << k;
    } else {
      as[k] = s[k] - m;
      am[k] = 0.f;
    }
  }
  for (int k = nk; k < kBlk; ++k) as[k] = am[k] = 0.f;
  _mm256_store_ps(rb->vs, kernels::avx2::expf_libm8(_mm256_load_ps(as), tab));
  _mm256_store_ps(rb->vs + 8, kernels::avx2::expf_libm8(_mm256_load_ps(as + 8), tab));
  if (newmax) {
    _mm256_store_ps(rb->ms, kernels::avx2::expf_libm8(_mm256_load_ps(am), tab));
    _mm256_store_ps(rb->ms + 8, kernels::avx2::expf_libm8(_mm256_load_ps(am + 8), tab));
  }
  rb->newmax = newmax;
  rb->k0 = k0;
  rb->nk = nk;
  *M = m;
}

// R rows of head dim 16*NV advanced together over a block of keys.
template <int NV, int R>
inline void accumulate_rows(const int* rows, int nr, const RowBlock* rb, const float* vb, float* acc_all, float* s_all) {
  constexpr int hd = 16 * NV;
  __m512 acc[R][NV];
  float S[R];
#pragma GCC unroll 4
  for (int j = 0; j < R; ++j) {
    if (j >= nr) break;
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e) acc[j][e] = _mm512_loadu_ps(acc_all + rows[j] * hd + 16 * e);
    S[j] = s_all[rows[j]];
  }
  int k_min = kBlk, nk_max = 0;
  for (int j = 0; j < nr; ++j) {
    k_min = std::min(k_min, rb[j].k0);
    nk_max = std::max(nk_max, rb[j].nk);
  }
  for (int k = k_min; k < nk_max; ++k) {
    __m512 v[NV];
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e) v[e] = _mm512_loadu_ps(vb + k * hd + 16 * e);
#pragma GCC unroll 4
    for (int j = 0; j < R; ++j) {
      // one test for k outside [k0, nk)
      if (j >= nr || static_cast<unsigned>(k - rb[j].k0) >= static_cast<unsigned>(rb[j].nk - rb[j].k0)) continue;
      float msk = 1.f;
      if (rb[j].newmax >> k & 1) {
        msk = rb[j].ms[k];
        const __m512 msv = _mm512_set1_ps(msk);
#pragma GCC unroll 8
        for (int e = 0; e < NV; ++e) acc[j][e] = round_f16(_mm512_mul_ps(acc[j][e], msv));
      }
      const __m512 vsv = _mm512_set1_ps(rb[j].vs[k]);
#pragma GCC unroll 8
      for (int e = 0; e < NV; ++e) acc[j][e] = round_f16(_mm512_fmadd_ps(v[e], vsv, acc[j][e]));
      S[j] = fma1(S[j], msk, rb[j].vs[k]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < R; ++j) {
    if (j >= nr) break;
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e) _mm512_storeu_ps(acc_all + rows[j] * hd + 16 * e, acc[j][e]);
    s_all[rows[j]] = S[j];
  }
}

template <int NV, int R>
void f16acc_rows512(const AttnRows& r, AttnScratch& sc) {
  constexpr int hd = 16 * NV;
  const kv::KvView& kv = *r.kv;
  const int ps = kv.page_size();
  const int n = r.n_rows;
  const long long* tab = kernels::avx2::exp2_table32();
  sc.acc.assign(static_cast<size_t>(n) * hd, 0.f);
  sc.kt.resize(static_cast<size_t>(n) * hd);
  sc.m.assign(n, -INFINITY);
  sc.s.assign(n, 0.f);
  sc.vt.resize(static_cast<size_t>(kBlk) * hd);
  sc.p.resize(static_cast<size_t>(kBlk) * hd);
  int32_t max_ctx = 0;
  for (int row = 0; row < n; ++row) {
    max_ctx = std::max(max_ctx, r.n_ctx[row]);
    for (int d = 0; d < hd; d += 16)
      _mm512_storeu_ps(sc.kt.data() + row * hd + d, round_f16(_mm512_loadu_ps(r.q[row] + d)));
  }
  RowBlock rb[R];
  int rows[R];
  for (int32_t j0 = min_begin(r); j0 < max_ctx;) {
    const int32_t page = r.pt->pages[j0 / ps];
    const int off0 = j0 % ps;
    const int blk = std::min<int32_t>({kBlk, max_ctx - j0, ps - off0});
    if (j0 + blk < max_ctx) prefetch_kv(r, j0 + blk, std::min<int32_t>(max_ctx, j0 + blk + kBlk));
    const f16_t* kb16 = kv.k(page, r.layer, r.hk) + static_cast<size_t>(off0) * hd;
    const f16_t* vb16 = kv.v(page, r.layer, r.hk) + static_cast<size_t>(off0) * hd;
    float* kb = sc.vt.data();
    float* vb = sc.p.data();
    for (int i = 0; i < blk * hd; i += 16) {
      _mm512_storeu_ps(kb + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kb16 + i))));
      _mm512_storeu_ps(vb + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vb16 + i))));
    }
    for (int row0 = 0; row0 < n;) {
      int nr = 0;
      for (; row0 < n && nr < R; ++row0) {
        const int nk = std::min<int32_t>(blk, r.n_ctx[row0] - j0);
        const int k0 = r.ctx_begin ? std::max<int32_t>(0, r.ctx_begin[row0] - j0) : 0;
        if (nk <= k0) continue;
        score_block(hd, kb, k0, nk, sc.kt.data() + row0 * hd, r.scale, &sc.m[row0], &rb[nr], tab);
        rows[nr++] = row0;
      }
      if (nr > 0) accumulate_rows<NV, R>(rows, nr, rb, vb, sc.acc.data(), sc.s.data());
    }
    j0 += blk;
  }
  for (int row = 0; row < n; ++row) {
    const float S = sc.s[row];
    const __m512 invv = _mm512_set1_ps(S == 0.f ? 0.f : 1.f / S);
    for (int d = 0; d < hd; d += 16)
      _mm512_storeu_ps(r.out[row] + d, _mm512_mul_ps(_mm512_loadu_ps(sc.acc.data() + row * hd + d), invv));
  }
}

}  // namespace

bool attend_rows_f16acc_avx512(const AttnRows& r, AttnScratch& sc) {
  switch (r.hd) {
    case 64: f16acc_rows512<4, 4>(r, sc); return true;
    case 128: f16acc_rows512<8, 2>(r, sc); return true;
    case 32: f16acc_rows512<2, 4>(r, sc); return true;
    case 96: f16acc_rows512<6, 2>(r, sc); return true;
    default: return false;
  }
}

namespace {

inline void widen512(const f16_t* x, int n, float* y) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

inline void widen_q8_512(const uint8_t* x, int n_blocks, float* y) {
  for (int b = 0; b < n_blocks; ++b, x += 34, y += 32) {
    f16_t d16;
    std::memcpy(&d16, x, 2);
    const __m512 d = _mm512_set1_ps(f16_to_f32(d16));
    for (int i = 0; i < 32; i += 16) {
      const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2 + i)));
      _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
    }
  }
}

// V accumulation of a chunk's rows with 512-bit lanes over the head dim, R rows at a time
// sharing each V load (R * HD/16 accumulators); rows whose visible key ranges [k0i, nki)
// differ from their group's go one at a time. Same per-lane FMA chains as pv_row_ymm.
template <int HD>
void pv_chunk_512(float* acc_c, int hd, int n_lanes, const int* k0i, const int* nki, const float* vb, const float* pb,
                  const float* al) {
  constexpr int NV = HD / 16;
  constexpr int R = 16 / NV;
  int i0 = 0;
  for (; i0 + R <= n_lanes; i0 += R) {
    bool same = nki[i0] > k0i[i0];
    for (int j = 1; j < R; ++j) same = same && nki[i0 + j] == nki[i0] && k0i[i0 + j] == k0i[i0];
    if (!same) {
      for (int j = 0; j < R; ++j)
        if (nki[i0 + j] > k0i[i0 + j])
          pv_row_ymm<HD>(acc_c + (i0 + j) * HD, HD, vb, pb + i0 + j, k0i[i0 + j], nki[i0 + j], al[i0 + j]);
      continue;
    }
    __m512 a[R][NV];
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j) {
      const __m512 alv = _mm512_set1_ps(al[i0 + j]);
#pragma GCC unroll 8
      for (int e = 0; e < NV; ++e) a[j][e] = _mm512_mul_ps(_mm512_loadu_ps(acc_c + (i0 + j) * HD + 16 * e), alv);
    }
    const int nk = nki[i0];
    for (int k = k0i[i0]; k < nk; ++k) {
      __m512 v[NV];
#pragma GCC unroll 8
      for (int e = 0; e < NV; ++e) v[e] = _mm512_loadu_ps(vb + k * HD + 16 * e);
#pragma GCC unroll 8
      for (int j = 0; j < R; ++j) {
        const __m512 pk = _mm512_set1_ps(pb[k * 8 + i0 + j]);
#pragma GCC unroll 8
        for (int e = 0; e < NV; ++e) a[j][e] = _mm512_fmadd_ps(v[e], pk, a[j][e]);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j)
#pragma GCC unroll 8
      for (int e = 0; e < NV; ++e) _mm512_storeu_ps(acc_c + (i0 + j) * HD + 16 * e, a[j][e]);
  }
  for (; i0 < n_lanes; ++i0)
    if (nki[i0] > k0i[i0]) pv_row_ymm<HD>(acc_c + i0 * HD, HD, vb, pb + i0, k0i[i0], nki[i0], al[i0]);
}

}  // namespace

// Scores with 512-bit FMAs, two keys per vector: lane 2i + e holds row i of the chunk
// against key 2p + e, so each FMA advances 8 rows x 2 keys (AVX-512 machines with
// full-width units run as many 512-bit FMAs per cycle as 256-bit ones: half the
// instructions of ScoresYmm). block() interleaves the block's keys by pairs,
// kp[(p * HD + d) * 2 + e] = key (2p + e) dim d, so that a 64-bit broadcast supplies
// both keys' element; the queries are duplicated per lane pair. Per (row, key) the same
// FMA chain over the head dim as ScoresYmm, so the same bits.
template <int HD>
struct ScoresPair512 {
  static_assert(HD % 16 == 0 && HD > 0);
  static constexpr int kPairs = kF32Blk / 2;
  float* kp;  // [kPairs][HD][2]
  float* q2;  // [chunk][HD][16]

  // q2 lanes (2i, 2i+1) = lane i of the transposed queries qt ([chunk][HD][8]).
  void init(const float* qt, int nch, int) {
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int i = 0; i < nch * HD; ++i)
      _mm512_storeu_ps(q2 + static_cast<size_t>(i) * 16,
                       _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(qt + static_cast<size_t>(i) * 8))));
  }
  void block(const float* kb, int) {
    const __m512i i0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i i1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
#pragma GCC unroll 2
    for (int p = 0; p < kPairs; ++p)
#pragma GCC unroll 8
      for (int d = 0; d < HD; d += 16) {
        const __m512 a = _mm512_loadu_ps(kb + (2 * p) * HD + d), b = _mm512_loadu_ps(kb + (2 * p + 1) * HD + d);
        _mm512_storeu_ps(kp + (p * HD + d) * 2, _mm512_permutex2var_ps(a, i0, b));
        _mm512_storeu_ps(kp + (p * HD + d) * 2 + 16, _mm512_permutex2var_ps(a, i1, b));
      }
  }
  void chunk(int c, const float*, const float*, int, __m256* s) const {
    const float* qc = q2 + static_cast<size_t>(c) * HD * 16;
    __m512 a[kPairs];
#pragma GCC unroll 8
    for (int p = 0; p < kPairs; ++p) a[p] = _mm512_setzero_ps();
    for (int d = 0; d < HD; ++d) {
      const __m512 qv = _mm512_loadu_ps(qc + d * 16);
#pragma GCC unroll 8
      for (int p = 0; p < kPairs; ++p) {
        double kk;
        std::memcpy(&kk, kp + (p * HD + d) * 2, 8);
        a[p] = _mm512_fmadd_ps(qv, _mm512_castpd_ps(_mm512_set1_pd(kk)), a[p]);
      }
    }
    // lanes (2i, 2i+1) -> key 2p's rows in the low half, key 2p+1's in the high half
    const __m512i de = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
#pragma GCC unroll 8
    for (int p = 0; p < kPairs; ++p) {
      const __m512 t = _mm512_permutexvar_ps(de, a[p]);
      s[2 * p] = _mm512_castps512_ps256(t);
      s[2 * p + 1] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1));
    }
  }
};

template <int HD, class Pv>
void f32acc_rows_pair512(const AttnRows& r, AttnScratch& sc, Pv pv) {
  thread_local std::vector<float> kp, q2;
  kp.resize(static_cast<size_t>(kF32Blk) * HD);
  q2.resize(static_cast<size_t>((r.n_rows + 7) / 8) * HD * 16);
  f32acc_rows_impl<HD>(r, sc, widen512, widen_q8_512, pv, ScoresPair512<HD>{kp.data(), q2.data()});
}

void attend_rows_f32acc_avx512(const AttnRows& r, AttnScratch& sc) {
  switch (r.hd) {
    case 64: return f32acc_rows_pair512<64>(r, sc, pv_chunk_512<64>);
    case 128: return f32acc_rows_pair512<128>(r, sc, pv_chunk_512<128>);
    case 32: return f32acc_rows_pair512<32>(r, sc, pv_chunk_512<32>);
    default: return f32acc_rows_impl<0>(r, sc, widen512, widen_q8_512, pv_chunk_ymm<0>, ScoresYmm<16, 0>{});
  }
}

}  // namespace tachyon::model::detail
#endif
