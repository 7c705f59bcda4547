// The f32 decode numerics of attention (see attention.cpp), in a vector form shared by the
// AVX2 and AVX-512 files (include only from files compiled with AVX2, FMA and F16C;
// internal linkage, so each ISA-specific file keeps its own copy). It performs exactly
// the float operations of the scalar reference attend_rows_f32acc_ref, in the same
// order, and so gives the same bits:
//  - query rows are the vector lanes (8 per chunk; the rows of a GQA group, for one or
//    more tokens): each lane's score is the FMA chain over the head dim of its
//    (pre-scaled) query and the key, so one broadcast key element feeds 8 rows and no
//    horizontal reduction is needed;
//  - keys come in blocks of 16 aligned to absolute positions (independent of the page
//    size), widened to f32 once per block for all row chunks; per block one online-softmax
//    update per row (block max, polynomial exp), then V accumulated in f32 with lanes =
//    head dims, each lane the FMA chain over the block's keys in order;
//  - with a sliding window (AttnRows::ctx_begin) the blocks start at the one holding the
//    smallest first visible key; a lane's keys before its own are masked like those past
//    its end (score -inf, no V update), and blocks before its first leave its state as is.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/expf_avx2.h"
#include "model/attention_rows.h"

namespace tachyon::model::detail {
namespace {

constexpr int kF32Blk = kAttnF32Block;

// V accumulation of one row: acc = acc * al + sum over keys k0 <= k < nk of p[8k] * v[k],
// keys in order (p points at the row's lane of the [key][8] probabilities).
template <int HD>
inline void pv_row_ymm(float* acc, int hd_rt, const float* vb, const float* p, int k0, int nk, float al) {
  const int hd = HD ? HD : hd_rt;
  const int hd8 = hd & ~7;
  const __m256 alv = _mm256_set1_ps(al);
  int d = 0;
  for (; d + 64 <= hd8; d += 64) {
    __m256 a[8];
#pragma GCC unroll 8
    for (int e = 0; e < 8; ++e) a[e] = _mm256_mul_ps(_mm256_loadu_ps(acc + d + 8 * e), alv);
    for (int k = k0; k < nk; ++k) {
      const __m256 pk = _mm256_broadcast_ss(p + k * 8);
      const float* vr = vb + k * hd + d;
#pragma GCC unroll 8
      for (int e = 0; e < 8; ++e) a[e] = _mm256_fmadd_ps(_mm256_loadu_ps(vr + 8 * e), pk, a[e]);
    }
#pragma GCC unroll 8
    for (int e = 0; e < 8; ++e) _mm256_storeu_ps(acc + d + 8 * e, a[e]);
  }
  for (; d < hd8; d += 8) {
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(acc + d), alv);
    for (int k = k0; k < nk; ++k) a = _mm256_fmadd_ps(_mm256_loadu_ps(vb + k * hd + d), _mm256_broadcast_ss(p + k * 8), a);
    _mm256_storeu_ps(acc + d, a);
  }
  for (; d < hd; ++d) {
    float a = acc[d] * al;
    for (int k = k0; k < nk; ++k) a = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(vb[k * hd + d]), _mm_set_ss(p[k * 8]), _mm_set_ss(a)));
    acc[d] = a;
  }
}

// V accumulation of the rows of one chunk, one at a time: acc_c holds the chunk's rows
// (row-major, hd floats each), [k0i[i], nki[i]) the visible keys of lane i in the block,
// al[i] its alpha.
template <int HD>
inline void pv_chunk_ymm(float* acc_c, int hd, int n_lanes, const int* k0i, const int* nki, const float* vb,
                         const float* pb, const float* al) {
  for (int i = 0; i < n_lanes; ++i)
    if (nki[i] > k0i[i]) pv_row_ymm<HD>(acc_c + static_cast<size_t>(i) * hd, hd, vb, pb + i, k0i[i], nki[i], al[i]);
}

// Scores of one 8-row chunk against a block of keys, s[k] = the 8 lanes' FMA chains over
// the head dim: the query rows (transposed, pre-scaled: qt[d * 8 + lane]) times the
// broadcast key element, KH keys per pass over the head dim (8 needs 11 vector
// registers, 16 needs 19: AVX-512VL's 32 registers). init() sees the transposed queries
// of all chunks once, block() each block's keys (kb: [key][hd] f32) before the chunks;
// this form needs neither.
template <int KH, int HD>
struct ScoresYmm {
  static_assert(kF32Blk % KH == 0);
  void init(const float*, int, int) {}
  void block(const float*, int) {}
  void chunk(int, const float* qt, const float* kb, int hd_rt, __m256* s) const {
    const int hd = HD ? HD : hd_rt;
    for (int k0 = 0; k0 < kF32Blk; k0 += KH) {
      __m256 a[KH];
#pragma GCC unroll 16
      for (int k = 0; k < KH; ++k) a[k] = _mm256_setzero_ps();
      for (int d = 0; d < hd; ++d) {
        const __m256 qv = _mm256_loadu_ps(qt + d * 8);
#pragma GCC unroll 16
        for (int k = 0; k < KH; ++k) a[k] = _mm256_fmadd_ps(qv, _mm256_broadcast_ss(kb + (k0 + k) * hd + d), a[k]);
      }
#pragma GCC unroll 16
      for (int k = 0; k < KH; ++k) s[k0 + k] = a[k];
    }
  }
};

// widen(f16 *, n, float *) converts n f16 values; widen_q8(blocks, n_blocks, float *)
// dequantizes Q8_0 blocks (d * float(q), one rounding) for a kQ8_0 cache; scores: see
// ScoresYmm.
template <int HD, class Widen, class WidenQ8, class Pv, class Scores>
void f32acc_rows_impl(const AttnRows& r, AttnScratch& sc, Widen widen, WidenQ8 widen_q8, Pv pv_chunk, Scores scores) {
  const kv::KvView& kv = *r.kv;
  const int ps = kv.page_size();
  const int hd = HD ? HD : r.hd;
  const int n = r.n_rows;
  const int nch = (n + 7) / 8;
  // Transposed pre-scaled queries: chunk c, dim d -> 8 lanes (rows 8c..8c+7; padding 0).
  sc.qt.assign(static_cast<size_t>(nch) * hd * 8, 0.f);
  const bool windowed = r.ctx_begin != nullptr;
  sc.nctx.assign(static_cast<size_t>(nch) * 8, 0);                // [nch * 8] lane's end of context (padding: 0)
  if (windowed) sc.cbeg.assign(static_cast<size_t>(nch) * 8, 0);  // [nch * 8] lane's first visible key
  int32_t max_ctx = 0;
  // Full chunks of 8 rows as 8x8 transposes of the scaled rows (the same products as the
  // scalar loop below, which takes a last partial chunk): measured 1% of a batch-8 step at
  // 128-256 tokens of context, where the per-item work is a visible part of attention.
  const int n_full = n / 8 * 8;
  const __m256 sv = _mm256_set1_ps(r.scale);
  for (int c = 0; c < n_full / 8; ++c) {
    float* qt = sc.qt.data() + static_cast<size_t>(c) * hd * 8;
    int d = 0;
    for (; d + 8 <= hd; d += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_mul_ps(_mm256_loadu_ps(r.q[8 * c + i] + d), sv);
      const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
      const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
      const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
      const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      _mm256_storeu_ps(qt + (d + 0) * 8, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(qt + (d + 1) * 8, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(qt + (d + 2) * 8, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(qt + (d + 3) * 8, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(qt + (d + 4) * 8, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(qt + (d + 5) * 8, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(qt + (d + 6) * 8, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(qt + (d + 7) * 8, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    if constexpr (HD % 8 != 0 || HD == 0) {
      for (int i = 0; i < 8 && d < hd; ++i) {  // head dims past the last multiple of 8
        float* qi = qt + i;
        const float* qr = r.q[8 * c + i];
        for (int e = d; e < hd; ++e) qi[e * 8] = qr[e] * r.scale;
      }
    }
  }
  for (int row = 0; row < n; ++row) {
    if (row >= n_full) {
      float* qt = sc.qt.data() + static_cast<size_t>(row / 8) * hd * 8 + row % 8;
      for (int d = 0; d < hd; ++d) qt[d * 8] = r.q[row][d] * r.scale;
    }
    sc.nctx[row] = r.n_ctx[row];
    if (windowed) sc.cbeg[row] = r.ctx_begin[row];
    max_ctx = std::max(max_ctx, r.n_ctx[row]);
  }
  const int32_t jb = min_begin(r);  // keys before it are read by no row
  scores.init(sc.qt.data(), nch, hd);
  sc.acc.assign(static_cast<size_t>(n) * hd, 0.f);
  sc.m.assign(static_cast<size_t>(nch) * 8, -INFINITY);
  sc.s.assign(static_cast<size_t>(nch) * 8, 0.f);
  sc.kt.resize(static_cast<size_t>(kF32Blk) * hd);
  sc.vt.resize(static_cast<size_t>(kF32Blk) * hd);
  sc.p.resize(static_cast<size_t>(kF32Blk) * 8 + 8);
  float* kb = sc.kt.data();
  float* vb = sc.vt.data();
  float* pb = sc.p.data();  // [key][lane] probabilities, then [8] the block's alpha
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int32_t j0 = jb / kF32Blk * kF32Blk; j0 < max_ctx; j0 += kF32Blk) {
    const int nk = std::min<int32_t>(kF32Blk, max_ctx - j0);
    if (j0 + 2 * kF32Blk < max_ctx) prefetch_kv(r, j0 + 2 * kF32Blk, std::min<int32_t>(max_ctx, j0 + 3 * kF32Blk));
    const int k_lo = std::max<int32_t>(0, jb - j0);  // the block's keys read: [k_lo, nk)
    std::fill(kb, kb + k_lo * hd, 0.f);
    for (int k = k_lo; k < nk;) {  // one run per page the block touches
      const int32_t j = j0 + k;
      const int32_t page = r.pt->pages[j / ps];
      const int o = j % ps;
      const int run = std::min(nk - k, ps - o);
      if (kv.type() == kv::KvType::kQ8_0) {
        widen_q8(kv.k_bytes(page, r.layer, r.hk) + o * kv.k_row_bytes(), run * hd / 32, kb + k * hd);
        widen_q8(kv.v_bytes(page, r.layer, r.hk) + o * kv.v_row_bytes(), run * hd / 32, vb + k * hd);
      } else {
        widen(kv.k(page, r.layer, r.hk) + static_cast<size_t>(o) * hd, run * hd, kb + k * hd);
        widen(kv.v(page, r.layer, r.hk) + static_cast<size_t>(o) * hd, run * hd, vb + k * hd);
      }
      k += run;
    }
    std::fill(kb + nk * hd, kb + kF32Blk * hd, 0.f);
    scores.block(kb, hd);
    for (int c = 0; c < nch; ++c) {
      const __m256i nc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc.nctx.data() + c * 8));
      __m256i live = _mm256_cmpgt_epi32(nc, _mm256_set1_epi32(j0));  // lanes with a visible key in the block
      __m256i bc = _mm256_setzero_si256();
      int starts = 0;  // lanes whose first visible key is past j0
      if (windowed) {
        bc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc.cbeg.data() + c * 8));
        live = _mm256_and_si256(live, _mm256_cmpgt_epi32(_mm256_set1_epi32(j0 + nk), bc));
        starts = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(bc, _mm256_set1_epi32(j0))));
      }
      if (_mm256_movemask_ps(_mm256_castsi256_ps(live)) == 0) continue;
      const float* qt = sc.qt.data() + static_cast<size_t>(c) * hd * 8;
      __m256 s[kF32Blk];
      scores.chunk(c, qt, kb, hd, s);
      // keys at or past a lane's context (and before its first visible key) are masked;
      // block max per lane
      __m256 mx = ninf;
      if (starts == 0) {
#pragma GCC unroll 16
        for (int k = 0; k < kF32Blk; ++k) {
          const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(nc, _mm256_set1_epi32(j0 + k)));
          s[k] = _mm256_blendv_ps(ninf, s[k], vis);
          mx = _mm256_max_ps(mx, s[k]);
        }
      } else {
#pragma GCC unroll 16
        for (int k = 0; k < kF32Blk; ++k) {
          const __m256i jk = _mm256_set1_epi32(j0 + k);
          const __m256i vis_i = _mm256_andnot_si256(_mm256_cmpgt_epi32(bc, jk), _mm256_cmpgt_epi32(nc, jk));
          const __m256 vis = _mm256_castsi256_ps(vis_i);
          s[k] = _mm256_blendv_ps(ninf, s[k], vis);
          mx = _mm256_max_ps(mx, s[k]);
        }
      }
      const __m256 M = _mm256_loadu_ps(sc.m.data() + c * 8);
      const __m256 m_new = _mm256_max_ps(M, mx);
      const __m256 m_use = _mm256_blendv_ps(m_new, _mm256_setzero_ps(), _mm256_cmp_ps(m_new, ninf, _CMP_EQ_OQ));
      const __m256 alpha = kernels::avx2::expf_poly8(_mm256_sub_ps(M, m_use));
      __m256 t = _mm256_setzero_ps();
#pragma GCC unroll 16
      for (int k = 0; k < kF32Blk; ++k) {
        const __m256 p = kernels::avx2::expf_poly8(_mm256_sub_ps(s[k], m_use));
        t = k == 0 ? p : _mm256_add_ps(t, p);
        _mm256_storeu_ps(pb + k * 8, p);
      }
      const __m256 S = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(sc.s.data() + c * 8), alpha), t);
      _mm256_storeu_ps(sc.s.data() + c * 8, S);
      _mm256_storeu_ps(sc.m.data() + c * 8, m_new);
      _mm256_storeu_ps(pb + kF32Blk * 8, alpha);
      // V: per row, acc = acc * alpha + sum over its visible keys of p * v, in key order
      const int n_lanes = std::min(8, n - c * 8);
      int k0i[8], nki[8];
      for (int i = 0; i < n_lanes; ++i) {
        k0i[i] = windowed ? std::max<int32_t>(0, sc.cbeg[c * 8 + i] - j0) : 0;
        nki[i] = std::min<int32_t>(nk, sc.nctx[c * 8 + i] - j0);
      }
      pv_chunk(sc.acc.data() + static_cast<size_t>(c) * 8 * hd, hd, n_lanes, k0i, nki, vb, pb, pb + kF32Blk * 8);
    }
  }
  for (int row = 0; row < n; ++row) {
    const float S = sc.s[row];
    const float inv = S == 0.f ? 0.f : 1.f / S;
    const float* acc = sc.acc.data() + static_cast<size_t>(row) * hd;
    float* o = r.out[row];
    const __m256 invv = _mm256_set1_ps(inv);
    int d = 0;
    for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(acc + d), invv));
    for (; d < hd; ++d) o[d] = acc[d] * inv;
  }
}

}  // namespace
}  // namespace tachyon::model::detail
