// AVX2 + FMA + F16C forms of the attention row kernels. They perform exactly the float
// operations of the scalar reference in attention.cpp, in the same order, and so give
// the same bits (tests/unit/model/attention_simd_test.cpp checks this):
//  - short path: the f16 dot is the same 4 x 8-lane FMA accumulators, combined and
//    reduced in the same order; the V accumulator is rounded to f16 after every update
//    (F16C rounds to nearest even, as f32_to_f16 does);
//  - tiled path: 8 keys' scores at once with lanes = keys, each lane the FMA chain over
//    the head dimension in order (K tiles transposed once per call and shared by all its
//    rows); the exp is the same polynomial lane-wise; V is accumulated with lanes = head
//    dims, each lane the FMA chain over keys in order.
// With a sliding window (AttnRows::ctx_begin) both start at the smallest first visible
// key of the call's rows and, per row, skip (short path) or mask (tiled) the keys before
// the row's own; the block/tile level handles it, the per-key loops are unchanged.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/expf_avx2.h"
#include "model/attention_dot_avx2.h"
#include "model/attention_f32acc.h"
#include "model/attention_rows.h"

namespace tachyon::model::detail {

namespace {

inline __m256 load_f16x8(const f16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline void store_f16x8(f16_t* p, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

// Sum of 8 floats in the order of the reference's reduce8: (a0+a4 + a2+a6) + (a1+a5 + a3+a7).
inline float reduce8(__m256 v) {
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Transposes 8 rows of 8 halves: out[e] holds element e of rows 0..7.
inline void transpose8x8_f16(const __m128i in[8], __m128i out[8]) {
  const __m128i t0 = _mm_unpacklo_epi16(in[0], in[1]), t1 = _mm_unpackhi_epi16(in[0], in[1]);
  const __m128i t2 = _mm_unpacklo_epi16(in[2], in[3]), t3 = _mm_unpackhi_epi16(in[2], in[3]);
  const __m128i t4 = _mm_unpacklo_epi16(in[4], in[5]), t5 = _mm_unpackhi_epi16(in[4], in[5]);
  const __m128i t6 = _mm_unpacklo_epi16(in[6], in[7]), t7 = _mm_unpackhi_epi16(in[6], in[7]);
  const __m128i u0 = _mm_unpacklo_epi32(t0, t2), u1 = _mm_unpackhi_epi32(t0, t2);
  const __m128i u2 = _mm_unpacklo_epi32(t1, t3), u3 = _mm_unpackhi_epi32(t1, t3);
  const __m128i u4 = _mm_unpacklo_epi32(t4, t6), u5 = _mm_unpackhi_epi32(t4, t6);
  const __m128i u6 = _mm_unpacklo_epi32(t5, t7), u7 = _mm_unpackhi_epi32(t5, t7);
  out[0] = _mm_unpacklo_epi64(u0, u4);
  out[1] = _mm_unpackhi_epi64(u0, u4);
  out[2] = _mm_unpacklo_epi64(u1, u5);
  out[3] = _mm_unpackhi_epi64(u1, u5);
  out[4] = _mm_unpacklo_epi64(u2, u6);
  out[5] = _mm_unpackhi_epi64(u2, u6);
  out[6] = _mm_unpacklo_epi64(u3, u7);
  out[7] = _mm_unpackhi_epi64(u3, u7);
}

// acc[0 .. 8*NV) += sum over keys tk < n_keys of v[tk][..] * p[tk], one FMA per key and
// lane, keys in order (v rows at stride ld floats).
template <int NV>
inline void v_accum(float* acc, const float* v, int ld, const float* p, int n_keys) {
  __m256 a[NV];
#pragma GCC unroll 8
  for (int e = 0; e < NV; ++e) a[e] = _mm256_loadu_ps(acc + 8 * e);
  for (int tk = 0; tk < n_keys; ++tk) {
    const __m256 pk = _mm256_broadcast_ss(p + tk);
    const float* vr = v + static_cast<size_t>(tk) * ld;
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e) a[e] = _mm256_fmadd_ps(_mm256_loadu_ps(vr + 8 * e), pk, a[e]);
  }
#pragma GCC unroll 8
  for (int e = 0; e < NV; ++e) _mm256_storeu_ps(acc + 8 * e, a[e]);
}

}  // namespace

namespace {
// Any head dim, one key at a time (kept for head dims without a specialization).
void attend_rows_f16acc_avx2_generic(const AttnRows& r, AttnScratch& sc) {
  const kv::KvView& kv = *r.kv;
  const int ps = kv.page_size();
  const int hd = r.hd;
  const int hd8 = hd & ~7;
  sc.q16.resize(hd);
  sc.acc16.resize(hd);
  sc.m.resize(hd);  // q rounded to f16, widened back to f32
  for (int row = 0; row < r.n_rows; ++row) {
    const float* q = r.q[row];
    f16_t* acc = sc.acc16.data();
    float* qf = sc.m.data();
    for (int d = 0; d < hd8; d += 8) {
      store_f16x8(sc.q16.data() + d, _mm256_loadu_ps(q + d));
      _mm256_storeu_ps(qf + d, load_f16x8(sc.q16.data() + d));
    }
    for (int d = hd8; d < hd; ++d) qf[d] = f16_to_f32(sc.q16[d] = f32_to_f16(q[d]));
    std::fill(sc.acc16.begin(), sc.acc16.end(), f16_t{0});
    float M = -INFINITY, S = 0.f;
    for (int32_t j = row_begin(r, row); j < r.n_ctx[row]; ++j) {
      const int32_t page = r.pt->pages[j / ps];
      const size_t off = static_cast<size_t>(j % ps) * hd;
      const float s = dot_f16(hd, kv.k(page, r.layer, r.hk) + off, qf) * r.scale;
      float ms = 1.f, vs = 1.f;
      if (s > M) {
        const float m_old = M;
        M = s;
        ms = std::exp(m_old - M);
        const __m256 msv = _mm256_set1_ps(ms);
        for (int d = 0; d < hd8; d += 8) store_f16x8(acc + d, _mm256_mul_ps(load_f16x8(acc + d), msv));
        for (int d = hd8; d < hd; ++d) acc[d] = f32_to_f16(f16_to_f32(acc[d]) * ms);
      } else {
        vs = std::exp(s - M);
      }
      const f16_t* vr = kv.v(page, r.layer, r.hk) + off;
      const __m256 vsv = _mm256_set1_ps(vs);
      for (int d = 0; d < hd8; d += 8) store_f16x8(acc + d, _mm256_fmadd_ps(load_f16x8(vr + d), vsv, load_f16x8(acc + d)));
      for (int d = hd8; d < hd; ++d) acc[d] = f32_to_f16(fma1(f16_to_f32(vr[d]), vs, f16_to_f32(acc[d])));
      S = fma1(S, ms, vs);
    }
    const float inv = S == 0.f ? 0.f : 1.f / S;
    float* o = r.out[row];
    const __m256 invv = _mm256_set1_ps(inv);
    for (int d = 0; d < hd8; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(load_f16x8(acc + d), invv));
    for (int d = hd8; d < hd; ++d) o[d] = f16_to_f32(acc[d]) * inv;
  }
}
}  // namespace

namespace {

inline __m256 round_f16(__m256 v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); }

// The short path for head dims 8*NV: keys in blocks of up to 16 (within a page) shared by
// all rows of the call (the query heads of a GQA group stay on one K/V read in L1), from
// the smallest first visible key on. Per row and block, over the row's visible keys
// [k0, nk) of it: the scores, a scan for the running max, the block's exps 8 at a time
// with the libm-identical vector exp, then the V updates with the f16-rounded
// accumulator held in registers. Operation for operation the scalar reference.
template <int NV>
void f16acc_blocks(const AttnRows& r, AttnScratch& sc) {
  constexpr int hd = 8 * NV;
  constexpr int kBlk = 16;
  const kv::KvView& kv = *r.kv;
  const int ps = kv.page_size();
  const int n = r.n_rows;
  const long long* tab = kernels::avx2::exp2_table32();
  sc.acc.assign(static_cast<size_t>(n) * hd, 0.f);  // f16-representable values
  sc.kt.resize(static_cast<size_t>(n) * hd);         // q rounded to f16, widened
  sc.m.assign(n, -INFINITY);
  sc.s.assign(n, 0.f);
  sc.vt.resize(static_cast<size_t>(kBlk) * hd);  // K block, f32
  sc.p.resize(static_cast<size_t>(kBlk) * hd);   // V block, f32
  int32_t max_ctx = 0;
  for (int row = 0; row < n; ++row) {
    max_ctx = std::max(max_ctx, r.n_ctx[row]);
    for (int d = 0; d < hd; d += 8) _mm256_storeu_ps(sc.kt.data() + row * hd + d, round_f16(_mm256_loadu_ps(r.q[row] + d)));
  }
  alignas(32) float s[kBlk], as[kBlk], am[kBlk], vs[kBlk], ms[kBlk];
  for (int32_t j0 = min_begin(r); j0 < max_ctx;) {
    const int32_t page = r.pt->pages[j0 / ps];
    const int off0 = j0 % ps;
    const int blk = std::min<int32_t>({kBlk, max_ctx - j0, ps - off0});
    // widen the block's K and V once for all rows of the GQA group (exact conversions)
    const f16_t* kb16 = kv.k(page, r.layer, r.hk) + static_cast<size_t>(off0) * hd;
    const f16_t* vb16 = kv.v(page, r.layer, r.hk) + static_cast<size_t>(off0) * hd;
    float* kb = sc.vt.data();
    float* vb = sc.p.data();
    for (int i = 0; i < blk * hd; i += 8) {
      _mm256_storeu_ps(kb + i, load_f16x8(kb16 + i));
      _mm256_storeu_ps(vb + i, load_f16x8(vb16 + i));
    }
    for (int row = 0; row < n; ++row) {
      const int nk = std::min<int32_t>(blk, r.n_ctx[row] - j0);
      const int k0 = r.ctx_begin ? std::max<int32_t>(0, r.ctx_begin[row] - j0) : 0;
      if (nk <= k0) continue;
      const float* qf = sc.kt.data() + row * hd;
      float M = sc.m[row];
      unsigned newmax = 0;
      for (int k = 0; k < k0; ++k) as[k] = am[k] = 0.f;
      for (int k = k0; k < nk; ++k) {
        s[k] = dot_f32x(hd, kb + k * hd, qf) * r.scale;
        if (s[k] > M) {
          am[k] = M - s[k];
          as[k] = 0.f;  // vs = 1
          M = s[k];
          newmax |= 1u << k;
        } else {
          as[k] = s[k] - M;
          am[k] = 0.f;  // ms = 1
        }
      }
      for (int k = nk; k < kBlk; ++k) as[k] = am[k] = 0.f;
      _mm256_store_ps(vs, kernels::avx2::expf_libm8(_mm256_load_ps(as), tab));
      _mm256_store_ps(vs + 8, kernels::avx2::expf_libm8(_mm256_load_ps(as + 8), tab));
      if (newmax) {
        _mm256_store_ps(ms, kernels::avx2::expf_libm8(_mm256_load_ps(am), tab));
        _mm256_store_ps(ms + 8, kernels::avx2::expf_libm8(_mm256_load_ps(am + 8), tab));
      }
      float* accp = sc.acc.data() + row * hd;
      __m256 acc[NV];
#pragma GCC unroll 16
      for (int e = 0; e < NV; ++e) acc[e] = _mm256_loadu_ps(accp + 8 * e);
      float S = sc.s[row];
      for (int k = k0; k < nk; ++k) {
        float msk = 1.f;
        if (newmax >> k & 1) {
          msk = ms[k];
          const __m256 msv = _mm256_set1_ps(msk);
#pragma GCC unroll 16
          for (int e = 0; e < NV; ++e) acc[e] = round_f16(_mm256_mul_ps(acc[e], msv));
        }
        const __m256 vsv = _mm256_set1_ps(vs[k]);
        const float* vr = vb + k * hd;
#pragma GCC unroll 16
        for (int e = 0; e < NV; ++e) acc[e] = round_f16(_mm256_fmadd_ps(_mm256_loadu_ps(vr + 8 * e), vsv, acc[e]));
        S = fma1(S, msk, vs[k]);
      }
#pragma GCC unroll 16
      for (int e = 0; e < NV; ++e) _mm256_storeu_ps(accp + 8 * e, acc[e]);
      sc.m[row] = M;
      sc.s[row] = S;
    }
    j0 += blk;
  }
  for (int row = 0; row < n; ++row) {
    const float S = sc.s[row];
    const __m256 invv = _mm256_set1_ps(S == 0.f ? 0.f : 1.f / S);
    for (int d = 0; d < hd; d += 8)
      _mm256_storeu_ps(r.out[row] + d, _mm256_mul_ps(_mm256_loadu_ps(sc.acc.data() + row * hd + d), invv));
  }
}

}  // namespace

void attend_rows_f16acc_avx2(const AttnRows& r, AttnScratch& sc) {
  switch (r.hd) {
    case 64: return f16acc_blocks<8>(r, sc);
    case 128: return f16acc_blocks<16>(r, sc);
    case 32: return f16acc_blocks<4>(r, sc);
    case 96: return f16acc_blocks<12>(r, sc);
    default: break;
  }
  attend_rows_f16acc_avx2_generic(r, sc);
}

void attend_rows_tiled_avx2(const AttnRows& r, AttnScratch& sc) {
  constexpr int T = kAttnTile;  // keys per tile (a multiple of 8)
  const kv::KvView& kv = *r.kv;
  const int ps = kv.page_size();
  const int hd = r.hd;
  const int hd8 = hd & ~7;
  const int n = r.n_rows;
  int32_t max_ctx = 0;
  for (int i = 0; i < n; ++i) max_ctx = std::max(max_ctx, r.n_ctx[i]);
  const int32_t jb = min_begin(r);  // keys before it are read by no row
  sc.acc.assign(static_cast<size_t>(n) * hd, 0.f);  // [n][hd] running V sums
  sc.m.assign(n, -INFINITY);                          // [n] running max
  sc.s.assign(n, 0.f);                                // [n] running softmax denominators
  sc.kt.resize(static_cast<size_t>(hd) * T);          // [hd][T] K tile, transposed, f32
  sc.vt.resize(static_cast<size_t>(T) * hd);          // [T][hd] V tile, f32
  sc.p.resize(T);
  sc.q16.assign(static_cast<size_t>(hd), 0);          // a zero K row for keys outside [jb, max_ctx)
  float* kt = sc.kt.data();
  float* vt = sc.vt.data();
  float* p = sc.p.data();
  for (int32_t c = jb / T * T; c < max_ctx; c += T) {
    const int n_keys = std::min<int32_t>(T, max_ctx - c);
    const int k_lo = std::max<int32_t>(0, jb - c);  // the tile's keys read: [k_lo, n_keys)
    // Widen (and for K transpose) the tile once for all rows.
    for (int g = 0; g < T; g += 8) {
      if (g >= n_keys || g + 8 <= k_lo) {
        for (int d = 0; d < hd; ++d) _mm256_storeu_ps(kt + d * T + g, _mm256_setzero_ps());
        continue;
      }
      const f16_t* kr[8];
      for (int l = 0; l < 8; ++l) {
        const int32_t j = c + g + l;
        const bool read = g + l >= k_lo && g + l < n_keys;
        kr[l] = read ? kv.k(r.pt->pages[j / ps], r.layer, r.hk) + static_cast<size_t>(j % ps) * hd : sc.q16.data();
      }
      for (int d = 0; d < hd8; d += 8) {
        __m128i in[8], tr[8];
#pragma GCC unroll 8
        for (int l = 0; l < 8; ++l) in[l] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kr[l] + d));
        transpose8x8_f16(in, tr);
#pragma GCC unroll 8
        for (int e = 0; e < 8; ++e) _mm256_storeu_ps(kt + (d + e) * T + g, _mm256_cvtph_ps(tr[e]));
      }
      for (int d = hd8; d < hd; ++d)
        for (int l = 0; l < 8; ++l) kt[d * T + g + l] = f16_to_f32(kr[l][d]);
    }
    for (int tk = k_lo; tk < n_keys; ++tk) {
      const int32_t j = c + tk;
      const f16_t* vr = kv.v(r.pt->pages[j / ps], r.layer, r.hk) + static_cast<size_t>(j % ps) * hd;
      float* vo = vt + static_cast<size_t>(tk) * hd;
      for (int d = 0; d < hd8; d += 8) _mm256_storeu_ps(vo + d, load_f16x8(vr + d));
      for (int d = hd8; d < hd; ++d) vo[d] = f16_to_f32(vr[d]);
    }

    for (int i = 0; i < n; ++i) {
      if (c >= r.n_ctx[i]) continue;
      const int n_vis = std::min<int32_t>(T, r.n_ctx[i] - c);  // visible keys in this tile: [lo, n_vis)
      const int lo = r.ctx_begin ? std::max<int32_t>(0, r.ctx_begin[i] - c) : 0;
      if (lo >= n_vis) continue;  // the whole tile before the row's window (the reference skips it)
      const float* q = r.q[i];
      // scores: lanes = keys, the FMA chain over d in order
      __m256 s[T / 8];
#pragma GCC unroll 8
      for (int g = 0; g < T / 8; ++g) s[g] = _mm256_setzero_ps();
      for (int d = 0; d < hd; ++d) {
        const __m256 qd = _mm256_broadcast_ss(q + d);
        const float* kd = kt + d * T;
#pragma GCC unroll 8
        for (int g = 0; g < T / 8; ++g) s[g] = _mm256_fmadd_ps(_mm256_loadu_ps(kd + 8 * g), qd, s[g]);
      }
      const __m256 scale = _mm256_set1_ps(r.scale);
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      // The maximum over the visible keys (masked ones are -inf). Its order does not
      // matter: there are no NaNs, and where +0 and -0 tie either gives the same bits
      // below (x - m, exp(x - m) and the comparisons treat them alike).
      __m256 mx = _mm256_set1_ps(-INFINITY);
      if (lo == 0) {
#pragma GCC unroll 8
        for (int g = 0; g < T / 8; ++g) {
          const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n_vis - 8 * g), lane));
          s[g] = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_mul_ps(s[g], scale), vis);
          mx = _mm256_max_ps(mx, s[g]);
        }
      } else {  // the tile holds the row's first visible key: keys before it masked too
#pragma GCC unroll 8
        for (int g = 0; g < T / 8; ++g) {
          const __m256i end = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_vis - 8 * g), lane);
          const __m256i before = _mm256_cmpgt_epi32(_mm256_set1_epi32(lo - 8 * g), lane);
          const __m256 vis = _mm256_castsi256_ps(_mm256_andnot_si256(before, end));
          s[g] = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_mul_ps(s[g], scale), vis);
          mx = _mm256_max_ps(mx, s[g]);
        }
      }
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      const float tile_max = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
      if (tile_max == -INFINITY) continue;
      float& M = sc.m[i];
      float& S = sc.s[i];
      float* acc = sc.acc.data() + static_cast<size_t>(i) * hd;
      const float m_new = std::fmax(M, tile_max);
      if (m_new > M) {
        const float ms = std::exp(M - m_new);
        const __m256 msv = _mm256_set1_ps(ms);
        for (int d = 0; d < hd8; d += 8) _mm256_storeu_ps(acc + d, _mm256_mul_ps(_mm256_loadu_ps(acc + d), msv));
        for (int d = hd8; d < hd; ++d) acc[d] *= ms;
        S *= ms;
      }
      M = m_new;
      double sum = 0;
      const __m256 mv = _mm256_set1_ps(m_new);
#pragma GCC unroll 8
      for (int g = 0; g < T / 8; ++g) {
        const __m256 e = kernels::avx2::expf_poly8(_mm256_sub_ps(s[g], mv));
        _mm256_storeu_ps(p + 8 * g, e);
        sum += reduce8(e);
      }
      S = static_cast<float>(S + sum);
      // V: lanes = head dims, the FMA chain over the visible keys in order; 64 dims at a time
      const float* pl = p + lo;
      const int nv = n_vis - lo;
      for (int d0 = 0; d0 < hd8; d0 += 64) {
        float* a = acc + d0;
        const float* v0 = vt + static_cast<size_t>(lo) * hd + d0;
        switch (std::min(64, hd8 - d0) / 8) {
          case 1: v_accum<1>(a, v0, hd, pl, nv); break;
          case 2: v_accum<2>(a, v0, hd, pl, nv); break;
          case 3: v_accum<3>(a, v0, hd, pl, nv); break;
          case 4: v_accum<4>(a, v0, hd, pl, nv); break;
          case 5: v_accum<5>(a, v0, hd, pl, nv); break;
          case 6: v_accum<6>(a, v0, hd, pl, nv); break;
          case 7: v_accum<7>(a, v0, hd, pl, nv); break;
          default: v_accum<8>(a, v0, hd, pl, nv); break;
        }
      }
      for (int d = hd8; d < hd; ++d)
        for (int tk = lo; tk < n_vis; ++tk) acc[d] = fma1(vt[static_cast<size_t>(tk) * hd + d], p[tk], acc[d]);
    }
  }
  for (int i = 0; i < n; ++i) {
    const float S = sc.s[i];
    const float inv = S == 0.f ? 0.f : 1.f / S;
    const float* acc = sc.acc.data() + static_cast<size_t>(i) * hd;
    float* o = r.out[i];
    for (int d = 0; d < hd; ++d) o[d] = acc[d] * inv;
  }
}

void attend_rows_f32acc_avx2(const AttnRows& r, AttnScratch& sc) {
  auto widen = [](const f16_t* x, int n, float* y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(x + i));
    for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
  };
  auto widen_q8 = [](const uint8_t* x, int n_blocks, float* y) {
    for (int b = 0; b < n_blocks; ++b, x += 34, y += 32) {
      f16_t d16;
      std::memcpy(&d16, x, 2);
      const __m256 d = _mm256_set1_ps(f16_to_f32(d16));
      for (int i = 0; i < 32; i += 8) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 2 + i)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
      }
    }
  };
  if (r.hd == 64) return f32acc_rows_impl<64>(r, sc, widen, widen_q8, pv_chunk_ymm<64>, ScoresYmm<8, 64>{});
  if (r.hd == 128) return f32acc_rows_impl<128>(r, sc, widen, widen_q8, pv_chunk_ymm<128>, ScoresYmm<8, 128>{});
  f32acc_rows_impl<0>(r, sc, widen, widen_q8, pv_chunk_ymm<0>, ScoresYmm<8, 0>{});
}

}  // namespace tachyon::model::detail
#endif  // __x86_64__
