// Causal attention over the paged KV cache.
//
// Numerics deliberately follow llama.cpp's CPU flash attention with an f16 cache, so
// that logits agree with it to the last bits on the reference files (activation
// quantization downstream turns one-ulp differences into visible logit noise):
//  - a sequence with fewer than 64 query tokens in the step (decode, short prefill):
//    Q rounded to f16, f16 dot products, online softmax with an f16 V accumulator;
//  - 64 or more query tokens (prefill): f32 Q, KV processed in tiles of 64 with
//    fused-multiply-add chains, a per-tile softmax using the polynomial exp, and an
//    f32 accumulator.
// and, for decode at long contexts, a third (DecodeNumerics::kF32, used by default from
// position kAutoF32FromPos on, see attention.h) that does not follow llama.cpp:
//  - f32 Q pre-multiplied by the scale, scores as f32 FMA chains over the head dim, keys
//    in blocks of 16 at absolute positions with one online-softmax update per block
//    (polynomial exp), an f32 V accumulator. attention_f32acc.h vectorizes it with query
//    rows as lanes (no horizontal sums, each K/V element widened once per GQA group).
// With a sliding window each row also has a first visible key: the short-batch numerics
// skip the keys before it; the tiled and f32 ones mask them like the keys past the end,
// in the same tiles/blocks at absolute positions, starting at the one that holds it.
// All are exact attention; they differ only in rounding. This scalar version is the
// reference; attention_avx2.cpp performs the same float operations in the same order
// with AVX2 (same bits, checked by tests/unit/model/attention_simd_test.cpp) and is
// selected at run time when the CPU has AVX2, FMA and F16C.
#include "model/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/ops.h"
#include "kernels/traits.h"
#include "model/attention_rows.h"

namespace tachyon::model {

namespace {

using detail::AttnRows;
using detail::AttnScratch;

constexpr int kTile = detail::kAttnTile;  // KV tile and the query-count threshold of the tiled path
constexpr int kTiledMinQueries = 64;
constexpr int kBlockTokens = 16;  // query tokens of one sequence handled together (shared KV tiles)
// Below this a step runs on the calling thread. The workers spin between the kernels of
// a forward pass, so waking them costs ~1-2 us; at 2M (the old value) batch-8 decode at
// positions < 64 ran attention on one core while the other spun: 12% of the step.
constexpr double kMinParallelMacs = 64.0 * 1024;

// Tree reduction of 16 floats in the order of a 512-bit horizontal add.
inline float reduce16(const float* a) {
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i] + t8[i + 4];
  return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

// Horizontal add of 8 floats in the order of a 256-bit reduction.
inline float reduce8(const float* a) {
  float t[4];
  for (int i = 0; i < 4; ++i) t[i] = a[i] + a[i + 4];
  return (t[0] + t[2]) + (t[1] + t[3]);
}

// f16 dot product: 4 x 16-lane FMA accumulators over 64-element steps, tree-reduced;
// the tail as float products summed in double.
inline float dot_f16(int n, const f16_t* x, const f16_t* y) {
  const int np = n & ~63;
  double sum = 0;
  if (np > 0) {
    float acc[4][16] = {};
    for (int i = 0; i < np; i += 64)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 16; ++l)
          acc[j][l] = std::fma(f16_to_f32(x[i + 16 * j + l]), f16_to_f32(y[i + 16 * j + l]), acc[j][l]);
    for (int l = 0; l < 16; ++l) {
      acc[0][l] += acc[2][l];
      acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; ++l) acc[0][l] += acc[1][l];
    sum = reduce16(acc[0]);
  }
  for (int i = np; i < n; ++i) sum += static_cast<double>(f16_to_f32(x[i]) * f16_to_f32(y[i]));
  return static_cast<float>(sum);
}

inline float dot_f16_avx2(int n, const f16_t* x, const f16_t* y) {
  const int np = n & ~31;
  double sum = 0;
  if (np > 0) {
    float acc[4][8] = {};
    for (int i = 0; i < np; i += 32)
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 8; ++l)
          acc[j][l] = std::fma(f16_to_f32(x[i + 8 * j + l]), f16_to_f32(y[i + 8 * j + l]), acc[j][l]);
    for (int l = 0; l < 8; ++l) { acc[0][l] += acc[2][l]; acc[1][l] += acc[3][l]; }
    for (int l = 0; l < 8; ++l) acc[0][l] += acc[1][l];
    float t0[4];
    for (int l = 0; l < 4; ++l) t0[l] = acc[0][l] + acc[0][l + 4];
    sum = (t0[0] + t0[1]) + (t0[2] + t0[3]);
  }
  for (int i = np; i < n; ++i) sum += static_cast<double>(f16_to_f32(x[i]) * f16_to_f32(y[i]));
  return static_cast<float>(sum);
}

// Logit soft-capping (Gemma 2) as llama.cpp's flash attention applies it: the score scale
// divided by the cap, then cap * tanh(score); cap 0 leaves scores alone.
inline float capped(float s, float cap) { return cap != 0.f ? cap * std::tanh(s) : s; }
inline float eff_scale(const AttnRows& r) { return r.softcap != 0.f ? r.scale / r.softcap : r.scale; }

// One query row (one token, one head) over keys [begin, n_ctx), short-batch numerics.
// Keys before begin are skipped, as llama.cpp skips -inf-masked keys (same bits).
void attend_row_f16acc(const kv::KvView& kv, const kv::PageTable& pt, int layer, int hk, int hd, float scale, float cap,
                       const float* q, int32_t begin, int32_t n_ctx, float* out, AttnScratch& sc) {
  const int ps = kv.page_size();
  sc.q16.resize(hd);
  sc.acc16.assign(hd, 0);
  for (int d = 0; d < hd; ++d) sc.q16[d] = f32_to_f16(q[d]);
  float M = -INFINITY, S = 0.f;
  for (int32_t j = begin; j < n_ctx; ++j) {
    const int32_t page = pt.pages[j / ps];
    const size_t off = static_cast<size_t>(j % ps) * hd;
    const float s = capped(dot_f16_avx2(hd, kv.k(page, layer, hk) + off, sc.q16.data()) * scale, cap);
    float ms = 1.f, vs = 1.f;
    if (s > M) {
      const float m_old = M;
      M = s;
      ms = std::exp(m_old - M);
      for (int d = 0; d < hd; ++d) sc.acc16[d] = f32_to_f16(f16_to_f32(sc.acc16[d]) * ms);
    } else {
      vs = std::exp(s - M);
    }
    const f16_t* vr = kv.v(page, layer, hk) + off;
    for (int d = 0; d < hd; ++d) sc.acc16[d] = f32_to_f16(std::fma(f16_to_f32(vr[d]), vs, f16_to_f32(sc.acc16[d])));
    S = std::fma(S, ms, vs);
  }
  const float inv = S == 0.f ? 0.f : 1.f / S;
  for (int d = 0; d < hd; ++d) out[d] = f16_to_f32(sc.acc16[d]) * inv;
}

// One query row over keys [begin, n_ctx), prefill (tiled) numerics: tiles at positions
// 0, 64, 128, ..., keys outside [begin, n_ctx) masked (score -inf, no V update).
void attend_row_tiled(const kv::KvView& kv, const kv::PageTable& pt, int layer, int hk, int hd, float scale, float cap,
                      const float* q, int32_t begin, int32_t n_ctx, float* out, AttnScratch& sc) {
  const int ps = kv.page_size();
  sc.acc.assign(hd, 0.f);
  sc.p.resize(kTile);
  float M = -INFINITY, S = 0.f;
  for (int32_t c = begin / kTile * kTile; c < n_ctx; c += kTile) {
    const int n_vis = std::min<int32_t>(kTile, n_ctx - c);  // visible keys in this tile: [lo, n_vis)
    const int lo = std::max<int32_t>(0, begin - c);
    float* p = sc.p.data();
    float tile_max = -INFINITY;
    for (int tk = 0; tk < kTile; ++tk) {
      if (tk < lo || tk >= n_vis) {
        p[tk] = -INFINITY;
        continue;
      }
      const int32_t j = c + tk;
      const f16_t* kr = kv.k(pt.pages[j / ps], layer, hk) + static_cast<size_t>(j % ps) * hd;
      float s = 0.f;
      for (int d = 0; d < hd; ++d) s = std::fma(f16_to_f32(kr[d]), q[d], s);
      p[tk] = capped(s * scale, cap);
      tile_max = std::max(tile_max, p[tk]);
    }
    if (tile_max == -INFINITY) continue;
    const float m_new = std::fmax(M, tile_max);
    if (m_new > M) {
      const float ms = std::exp(M - m_new);
      for (int d = 0; d < hd; ++d) sc.acc[d] *= ms;
      S *= ms;
    }
    M = m_new;
    double sum = 0;
    for (int g = 0; g < kTile; g += 8) {
      for (int l = 0; l < 8; ++l) p[g + l] = kernels::expf_poly(p[g + l] - m_new);
      sum += reduce8(p + g);
    }
    S = static_cast<float>(S + sum);
    for (int tk = lo; tk < n_vis; ++tk) {
      const int32_t j = c + tk;
      const f16_t* vr = kv.v(pt.pages[j / ps], layer, hk) + static_cast<size_t>(j % ps) * hd;
      for (int d = 0; d < hd; ++d) sc.acc[d] = std::fma(f16_to_f32(vr[d]), p[tk], sc.acc[d]);
    }
  }
  const float inv = S == 0.f ? 0.f : 1.f / S;
  for (int d = 0; d < hd; ++d) out[d] = sc.acc[d] * inv;
}

// Row `slot` of one page's K (or V) as f32: f16 widened, or Q8_0 dequantized as
// float(q) * d (one rounding, as the SIMD forms do).
void kv_row_f32(const kv::KvView& kv, bool is_k, int32_t page, int layer, int hk, int slot, int hd, float* out) {
  if (kv.type() == kv::KvType::kQ8_0) {
    const uint8_t* row = (is_k ? kv.k_bytes(page, layer, hk) : kv.v_bytes(page, layer, hk)) +
                         static_cast<size_t>(slot) * (is_k ? kv.k_row_bytes() : kv.v_row_bytes());
    for (int b = 0; b < hd / 32; ++b) {
      f16_t d16;
      std::memcpy(&d16, row + 34 * b, 2);
      const float d = f16_to_f32(d16);
      for (int i = 0; i < 32; ++i) out[32 * b + i] = static_cast<float>(static_cast<int8_t>(row[34 * b + 2 + i])) * d;
    }
    return;
  }
  const f16_t* r = (is_k ? kv.k(page, layer, hk) : kv.v(page, layer, hk)) + static_cast<size_t>(slot) * hd;
  for (int d = 0; d < hd; ++d) out[d] = f16_to_f32(r[d]);
}

// One query row over keys [begin, n_ctx), f32 decode numerics (blocks at absolute
// positions from the one holding begin; keys outside the range masked: score -inf, no V
// update); attention_f32acc.h performs the same operations with query rows as lanes.
void attend_row_f32acc(const kv::KvView& kv, const kv::PageTable& pt, int layer, int hk, int hd, float scale, float cap,
                       const float* q, int32_t begin, int32_t n_ctx, float* out, AttnScratch& sc) {
  constexpr int B = detail::kAttnF32Block;
  const int ps = kv.page_size();
  sc.qt.resize(hd);
  sc.kt.resize(hd);
  for (int d = 0; d < hd; ++d) sc.qt[d] = q[d] * scale;
  sc.acc.assign(hd, 0.f);
  sc.p.resize(B);
  float M = -INFINITY, S = 0.f;
  for (int32_t j0 = begin / B * B; j0 < n_ctx; j0 += B) {
    const int nk = std::min<int32_t>(B, n_ctx - j0);  // visible keys of the block: [k0, nk)
    const int k0 = std::max<int32_t>(0, begin - j0);
    float s[B];
    float mx = -INFINITY;
    for (int k = 0; k < B; ++k) {
      s[k] = -INFINITY;
      if (k >= k0 && k < nk) {
        const int32_t j = j0 + k;
        float a = 0.f;
        kv_row_f32(kv, true, pt.pages[j / ps], layer, hk, j % ps, hd, sc.kt.data());
        for (int d = 0; d < hd; ++d) a = std::fma(sc.qt[d], sc.kt[d], a);
        s[k] = capped(a, cap);
      }
      mx = mx > s[k] ? mx : s[k];
    }
    const float m_new = M > mx ? M : mx;
    const float m_use = m_new == -INFINITY ? 0.f : m_new;
    const float alpha = kernels::expf_poly(M - m_use);
    float t = 0.f;
    for (int k = 0; k < B; ++k) {
      sc.p[k] = kernels::expf_poly(s[k] - m_use);
      t = k == 0 ? sc.p[k] : t + sc.p[k];
    }
    S = S * alpha;
    S = S + t;
    M = m_new;
    sc.vt.resize(static_cast<size_t>(B) * hd);
    for (int k = k0; k < nk; ++k)
      kv_row_f32(kv, false, pt.pages[(j0 + k) / ps], layer, hk, (j0 + k) % ps, hd, sc.vt.data() + k * hd);
    for (int d = 0; d < hd; ++d) {
      float a = sc.acc[d] * alpha;
      for (int k = k0; k < nk; ++k) a = std::fma(sc.vt[k * hd + d], sc.p[k], a);
      sc.acc[d] = a;
    }
  }
  const float inv = S == 0.f ? 0.f : 1.f / S;
  for (int d = 0; d < hd; ++d) out[d] = sc.acc[d] * inv;
}

}  // namespace

void store_kv_token(const AttentionShape& s, const Batch& batch, int64_t t, kv::KvView kv, const float* k,
                    const float* v) {
  const int ps = kv.page_size();
  const kv::PageTable& pt = *batch.seqs[batch.seq[t]];
  const int32_t pos = batch.pos[t];
  const int32_t page = pt.pages[pos / ps];
  const int slot = pos % ps;
  if (kv.type() == kv::KvType::kQ8_0) {
    const kernels::TypeTraits* q8 = kernels::type_traits(DType::Q8_0);
    for (int h = 0; h < s.n_head_kv; ++h) {
      q8->from_float(k + h * s.head_dim, kv.k_bytes(page, s.layer, h) + slot * kv.k_row_bytes(), s.head_dim);
      q8->from_float(v + h * s.head_dim, kv.v_bytes(page, s.layer, h) + slot * kv.v_row_bytes(), s.head_dim);
    }
    return;
  }
  for (int h = 0; h < s.n_head_kv; ++h) {
    f16_t* kd = kv.k(page, s.layer, h) + static_cast<size_t>(slot) * s.head_dim;
    f16_t* vd = kv.v(page, s.layer, h) + static_cast<size_t>(slot) * s.head_dim;
    kernels::f32_to_f16_row(k + h * s.head_dim, s.head_dim, kd);
    kernels::f32_to_f16_row(v + h * s.head_dim, s.head_dim, vd);
  }
}

void store_kv(const AttentionShape& s, const Batch& batch, kv::KvView kv, const float* k, const float* v) {
  const int64_t row = static_cast<int64_t>(s.n_head_kv) * s.head_dim;
  for (int64_t t = 0; t < batch.size(); ++t) store_kv_token(s, batch, t, kv, k + t * row, v + t * row);
}

namespace detail {

void attend_rows_f16acc_ref(const AttnRows& r, AttnScratch& sc) {
  for (int i = 0; i < r.n_rows; ++i)
    attend_row_f16acc(*r.kv, *r.pt, r.layer, r.hk, r.hd, eff_scale(r), r.softcap, r.q[i], row_begin(r, i), r.n_ctx[i], r.out[i],
                      sc);
}

void attend_rows_f32acc_ref(const AttnRows& r, AttnScratch& sc) {
  for (int i = 0; i < r.n_rows; ++i)
    attend_row_f32acc(*r.kv, *r.pt, r.layer, r.hk, r.hd, eff_scale(r), r.softcap, r.q[i], row_begin(r, i), r.n_ctx[i], r.out[i],
                      sc);
}

void attend_rows_tiled_ref(const AttnRows& r, AttnScratch& sc) {
  for (int i = 0; i < r.n_rows; ++i)
    attend_row_tiled(*r.kv, *r.pt, r.layer, r.hk, r.hd, eff_scale(r), r.softcap, r.q[i], row_begin(r, i), r.n_ctx[i], r.out[i],
                      sc);
}

#if defined(__x86_64__)
void attend_rows_f16acc_avx512_or_avx2(const AttnRows& r, AttnScratch& sc) {
  if (!attend_rows_f16acc_avx512(r, sc)) attend_rows_f16acc_avx2(r, sc);
}
#endif

}  // namespace detail

namespace {

struct RowKernels {
  void (*f16acc)(const AttnRows&, AttnScratch&);
  void (*tiled)(const AttnRows&, AttnScratch&);
  void (*f32acc)(const AttnRows&, AttnScratch&);
  const char* impl;
};

const RowKernels& ref_row_kernels() {
  static const RowKernels ref{detail::attend_rows_f16acc_ref, detail::attend_rows_tiled_ref, detail::attend_rows_f32acc_ref,
                              "ref"};
  return ref;
}

const RowKernels& row_kernels() {
  const RowKernels& ref = ref_row_kernels();
#if defined(__x86_64__)
  static const RowKernels avx2{detail::attend_rows_f16acc_avx2, detail::attend_rows_tiled_avx2,
                               detail::attend_rows_f32acc_avx2, "avx2"};
  static const RowKernels avx512{detail::attend_rows_f16acc_avx512_or_avx2, detail::attend_rows_tiled_avx2,
                                 detail::attend_rows_f32acc_avx512, "avx512"};
  const auto& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c && !kernels::scalar_kernels_forced()) {
    if (f.avx512f && f.avx512bw && f.avx512vl) return avx512;
    return avx2;
  }
#endif
  return ref;
}

}  // namespace

const char* attention_impl() { return row_kernels().impl; }

bool parse_decode_numerics(const std::string& v, DecodeNumerics* out) {
  if (v == "auto") *out = DecodeNumerics::kAuto;
  else if (v == "llama") *out = DecodeNumerics::kLlama;
  else if (v == "f32") *out = DecodeNumerics::kF32;
  else return false;
  return true;
}

const char* decode_numerics_name(DecodeNumerics d) {
  switch (d) {
    case DecodeNumerics::kLlama: return "llama";
    case DecodeNumerics::kF32: return "f32";
    default: return "auto";
  }
}

void attention(const AttentionShape& s, const Batch& batch, const kv::KvView& kv, const float* q, float* out,
               ThreadPool& pool) {
  const int64_t n_tok = batch.size();
  const int hd = s.head_dim;
  const int group = s.n_head / s.n_head_kv;
  // Soft-capped scores run on the reference row kernels (the SIMD ones have no tanh).
  const RowKernels& rk = s.softcap != 0.f ? ref_row_kernels() : row_kernels();
  // Query tokens per sequence in this step select the numerics (see the file comment).
  std::vector<int32_t> n_q(batch.seqs.size(), 0);
  for (int64_t t = 0; t < n_tok; ++t) ++n_q[batch.seq[t]];
  enum Kind : uint8_t { kTiled, kF16acc, kF32acc };
  auto kind = [&](int64_t t) -> Kind {
    const int32_t sq = batch.seq[t];
    const bool tl = batch.seq_tiled_until.empty() ? n_q[sq] >= kTiledMinQueries : batch.pos[t] < batch.seq_tiled_until[sq];
    if (kv.type() == kv::KvType::kQ8_0) return kF32acc;  // the only numerics over a Q8_0 cache
    if (tl) return kTiled;
    // kAuto counts the keys a query sees: a sliding-window layer keeps llama.cpp's bits at
    // every position (its f16 chain stays as short as the window)
    const int32_t seen = s.window > 0 ? std::min(batch.pos[t], s.window - 1) : batch.pos[t];
    const bool f32 = s.decode == DecodeNumerics::kF32 || (s.decode == DecodeNumerics::kAuto && seen >= kAutoF32FromPos);
    return f32 ? kF32acc : kF16acc;
  };
  // Work items: runs of up to kBlockTokens consecutive tokens of one sequence with the
  // same numerics, times the KV heads; each item covers group query heads per token.
  struct Block {
    int64_t t0, t1;
    Kind kind;
  };
  std::vector<Block> blocks;
  for (int64_t t = 0; t < n_tok; ++t) {
    const Kind k = kind(t);
    if (!blocks.empty()) {
      Block& b = blocks.back();
      if (b.t1 == t && b.kind == k && batch.seq[b.t0] == batch.seq[t] && t - b.t0 < kBlockTokens) {
        b.t1 = t + 1;
        continue;
      }
    }
    blocks.push_back({t, t + 1, k});
  }
  const int64_t n_items = static_cast<int64_t>(blocks.size()) * s.n_head_kv;
  // First visible key of token t's queries.
  auto begin_of = [&](int64_t t) -> int32_t { return s.window > 0 ? std::max<int32_t>(0, batch.pos[t] - s.window + 1) : 0; };
  double n_macs = 0;  // (q.k and p.v) multiply-adds of the whole step, visible keys only
  for (int64_t t = 0; t < n_tok; ++t) n_macs += 2.0 * (batch.pos[t] + 1 - begin_of(t)) * hd * s.n_head;
  std::atomic<int64_t> next{0};
  auto work = [&](int, int) {
    AttnScratch sc;
    std::vector<const float*> qs;
    std::vector<float*> outs;
    std::vector<int32_t> n_ctx, ctx_begin;
    // later tokens see longer contexts: hand out the heaviest items first
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) {
      const int64_t item = n_items - 1 - i;
      const Block& b = blocks[item / s.n_head_kv];
      const int hk = static_cast<int>(item % s.n_head_kv);
      qs.clear();
      outs.clear();
      n_ctx.clear();
      ctx_begin.clear();
      for (int64_t t = b.t0; t < b.t1; ++t) {
        for (int h = hk * group; h < (hk + 1) * group; ++h) {
          qs.push_back(q + (t * s.n_head + h) * hd);
          outs.push_back(out + (t * s.n_head + h) * hd);
          n_ctx.push_back(batch.pos[t] + 1);
          if (s.window > 0) ctx_begin.push_back(begin_of(t));
        }
      }
      AttnRows r;
      r.kv = &kv;
      r.pt = batch.seqs[batch.seq[b.t0]];
      r.layer = s.layer;
      r.hk = hk;
      r.hd = hd;
      r.scale = s.scale;
      r.softcap = s.softcap;
      r.n_rows = static_cast<int>(qs.size());
      r.q = qs.data();
      r.n_ctx = n_ctx.data();
      r.ctx_begin = s.window > 0 ? ctx_begin.data() : nullptr;
      r.out = outs.data();
      (b.kind == kTiled ? rk.tiled : b.kind == kF32acc ? rk.f32acc : rk.f16acc)(r, sc);
    }
  };
  // Small steps (decode at short contexts) run on the calling thread: waking the pool
  // would cost more than it saves.
  if (n_items == 1 || pool.n_threads() == 1 || n_macs < kMinParallelMacs) {
    work(0, 1);
  } else {
    pool.run(work);
  }
}

}  // namespace tachyon::model
