// The AVX2 attention row kernels must give exactly the bits of the scalar reference, for
// both numerics (short batches and tiled prefill), several head dims, GQA, and contexts
// crossing page and tile boundaries; with sliding windows too (every numerics, every ISA
// form, ref within float rounding of exact attention over the window's keys).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "kernels/traits.h"
#include "base/fp16.h"
#include "model/attention.h"
#include "model/attention_rows.h"

using namespace tachyon;

namespace {

struct Case {
  int head_dim;
  int n_head;
  int n_head_kv;
  int page_size;
};

// Sliding windows: the windows of Gemma-style local layers and ones that do not divide
// the page (10, 12, 16), block (16) and tile (64) sizes.
constexpr int kWindows[] = {1, 5, 16, 64, 100};
// Reference vs exact attention over the window, relative to the row's largest output:
// float rounding for the f32-accumulating numerics; the short path rounds Q and its V
// accumulator to f16 at every key (llama.cpp's numerics): a random walk of 2^-11 steps.
constexpr double kTolF32 = 1e-5;
double tol_f16acc(int n_keys) { return 0x1p-10 * std::sqrt(static_cast<double>(n_keys)); }

// Runs attention over a batch with the dispatched kernels and with the reference, and
// returns whether the outputs are bitwise equal.
class AttentionSimd : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case c = GetParam();
    kv::KvConfig cfg;
    cfg.n_layer = 2;
    cfg.n_kv_head = c.n_head_kv;
    cfg.head_dim_k = cfg.head_dim_v = c.head_dim;
    cfg.page_size = c.page_size;
    cfg.n_pages = 3 * (kMaxCtx / c.page_size + 2);  // sequences 0, 1 and pts_[2] (copied keys)
    auto pool = kv::KvPool::create(cfg);
    ASSERT_TRUE(pool.is_ok());
    kv_ = std::make_unique<kv::KvPool>(std::move(pool.value()));
    if (c.head_dim % 32 == 0) {
      kv::KvConfig q8 = cfg;
      q8.type = kv::KvType::kQ8_0;
      auto p8 = kv::KvPool::create(q8);
      ASSERT_TRUE(p8.is_ok());
      kv_q8_ = std::make_unique<kv::KvPool>(std::move(p8.value()));
    }
    shape_.n_head = c.n_head;
    shape_.n_head_kv = c.n_head_kv;
    shape_.head_dim = c.head_dim;
    shape_.layer = 1;
    shape_.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    shape_.decode = model::DecodeNumerics::kLlama;  // the short-batch tests check these numerics
    // Two sequences with random K/V at every position.
    for (int s = 0; s < 2; ++s) {
      ASSERT_TRUE(pts_[s].reserve(*kv_, kMaxCtx));
      model::Batch b;
      b.seqs = {&pts_[s]};
      for (int p = 0; p < kMaxCtx; ++p) b.add(0, p, 0, false);
      const int row = c.n_head_kv * c.head_dim;
      std::vector<float> k(static_cast<size_t>(kMaxCtx) * row), v(k.size());
      std::normal_distribution<float> nd(0.f, 1.f);
      for (auto& x : k) x = nd(rng_);
      for (auto& x : v) x = nd(rng_);
      model::store_kv(shape_, b, *kv_, k.data(), v.data());
      if (kv_q8_) {
        // the same positions in the Q8_0 pool (page tables hold the same page ids)
        model::store_kv(shape_, b, *kv_q8_, k.data(), v.data());
      }
      pts_[s].n_tokens = kMaxCtx;
    }
    ASSERT_TRUE(pts_[2].reserve(*kv_, kMaxCtx));
  }

  void TearDown() override { kernels::force_scalar_kernels(false); }

  // Attention for the given (sequence, position) queries, q drawn with standard
  // deviation q_scale (large values push score gaps past the exp's fast range).
  void check(const std::vector<std::pair<int, int>>& toks, float q_scale, std::vector<int32_t> tiled_until = {}) {
    model::Batch b;
    b.seqs = {&pts_[0], &pts_[1]};
    b.seq_tiled_until = std::move(tiled_until);
    for (auto [s, p] : toks) b.add(0, p, s, true);
    const size_t n = toks.size() * shape_.n_head * shape_.head_dim;
    std::vector<float> q(n), out_fast(n, -1.f), out_ref(n, -2.f);
    std::normal_distribution<float> nd(0.f, q_scale);
    for (auto& x : q) x = nd(rng_);
    kernels::force_scalar_kernels(false);
    model::attention(shape_, b, *kv_, q.data(), out_fast.data(), pool_);
    kernels::force_scalar_kernels(true);
    ASSERT_STREQ(model::attention_impl(), "ref");
    model::attention(shape_, b, *kv_, q.data(), out_ref.data(), pool_);
    kernels::force_scalar_kernels(false);
    for (size_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(out_ref[i])) << i;
    EXPECT_EQ(std::memcmp(out_fast.data(), out_ref.data(), n * sizeof(float)), 0)
        << "first difference at " << first_diff(out_fast, out_ref) << " of " << n;
  }

  static size_t first_diff(const std::vector<float>& a, const std::vector<float>& b) {
    for (size_t i = 0; i < a.size(); ++i)
      if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return a.size();
  }

  // Exact attention in double precision over the stored (f16) K/V, for accuracy checks.
  // Row `slot` of a page's K or V as stored (f16, or Q8_0 dequantized).
  static double kv_elem(const kv::KvPool& kv, bool is_k, int32_t page, int layer, int hk, int slot, int d) {
    if (kv.type() == kv::KvType::kQ8_0) {
      const uint8_t* row = (is_k ? kv.k_bytes(page, layer, hk) : kv.v_bytes(page, layer, hk)) +
                           static_cast<size_t>(slot) * (is_k ? kv.k_row_bytes() : kv.v_row_bytes());
      f16_t d16;
      std::memcpy(&d16, row + 34 * (d / 32), 2);
      return static_cast<double>(f16_to_f32(d16)) * static_cast<int8_t>(row[34 * (d / 32) + 2 + d % 32]);
    }
    const int hd = kv.config().head_dim_k;
    return f16_to_f32((is_k ? kv.k(page, layer, hk) : kv.v(page, layer, hk))[static_cast<size_t>(slot) * hd + d]);
  }

  // Keys [begin_of(pos), pos] (window <= 0: all of them).
  static int begin_of(int pos, int window) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

  // Exact attention of query row q over keys [b, e) of sequence sq, KV head hk.
  void exact_row(const kv::KvPool& kvp, int sq, int hk, const float* q, int b, int e, double* out) const {
    const int hd = shape_.head_dim, ps = kvp.page_size();
    std::vector<double> sc(e - b);  // [key - b]
    double mx = -1e300;
    for (int j = b; j < e; ++j) {
      double a = 0;
      for (int d = 0; d < hd; ++d)
        a += static_cast<double>(q[d]) * kv_elem(kvp, true, pts_[sq].pages[j / ps], shape_.layer, hk, j % ps, d);
      sc[j - b] = a * shape_.scale;
      mx = std::max(mx, sc[j - b]);
    }
    double sum = 0;
    for (auto& x : sc) sum += (x = std::exp(x - mx));
    for (int d = 0; d < hd; ++d) out[d] = 0;
    for (int j = b; j < e; ++j)
      for (int d = 0; d < hd; ++d)
        out[d] += sc[j - b] * kv_elem(kvp, false, pts_[sq].pages[j / ps], shape_.layer, hk, j % ps, d);
    for (int d = 0; d < hd; ++d) out[d] /= sum;
  }

  std::vector<double> naive(const std::vector<std::pair<int, int>>& toks, const std::vector<float>& q,
                            const kv::KvPool* pool = nullptr, int window = 0) {
    const kv::KvPool& kvp = pool ? *pool : *kv_;
    const int hd = shape_.head_dim, group = shape_.n_head / shape_.n_head_kv;
    std::vector<double> out(q.size());
    for (size_t t = 0; t < toks.size(); ++t) {
      const auto [sq, pos] = toks[t];
      for (int h = 0; h < shape_.n_head; ++h) {
        const size_t o = (t * shape_.n_head + h) * hd;
        exact_row(kvp, sq, h / group, q.data() + o, begin_of(pos, window), pos + 1, out.data() + o);
      }
    }
    return out;
  }

  // The f32 decode numerics: dispatched kernels bitwise equal to the reference, and both
  // within float rounding of exact attention.
  void check_f32(const std::vector<std::pair<int, int>>& toks, float q_scale, const kv::KvPool* pool = nullptr) {
    const kv::KvPool& kvp = pool ? *pool : *kv_;
    model::Batch b;
    b.seqs = {&pts_[0], &pts_[1]};
    for (auto [s, p] : toks) b.add(0, p, s, true);
    const size_t n = toks.size() * shape_.n_head * shape_.head_dim;
    std::vector<float> q(n), out_fast(n, -1.f), out_ref(n, -2.f);
    std::normal_distribution<float> nd(0.f, q_scale);
    for (auto& x : q) x = nd(rng_);
    model::AttentionShape sh = shape_;
    sh.decode = model::DecodeNumerics::kF32;
    kernels::force_scalar_kernels(false);
    model::attention(sh, b, kvp, q.data(), out_fast.data(), pool_);
    kernels::force_scalar_kernels(true);
    model::attention(sh, b, kvp, q.data(), out_ref.data(), pool_);
    kernels::force_scalar_kernels(false);
    EXPECT_EQ(std::memcmp(out_fast.data(), out_ref.data(), n * sizeof(float)), 0)
        << "first difference at " << first_diff(out_fast, out_ref) << " of " << n;
    const std::vector<double> exact = naive(toks, q, &kvp);
    double worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(out_ref[i] - exact[i]));
    EXPECT_LT(worst, 1e-4) << "f32 decode attention vs exact";  // outputs are O(1); float rounding ~1e-6
  }

  // The numerics attention() picks, and how a test asks for them.
  enum class Kind { kF16acc, kTiled, kF32acc, kQ8 };
  static const char* kind_name(Kind k) {
    switch (k) {
      case Kind::kF16acc: return "f16acc";
      case Kind::kTiled: return "tiled";
      case Kind::kF32acc: return "f32acc";
      default: return "q8_0";
    }
  }

  // attention() over toks (sequence, position) with the given window and numerics, with
  // the dispatched kernels or (scalar) the reference.
  std::vector<float> run(const std::vector<std::pair<int, int>>& toks, const std::vector<float>& q, Kind kind, int window,
                         bool scalar) {
    model::Batch b;
    b.seqs = {&pts_[0], &pts_[1], &pts_[2]};
    // every token tiled, or none (whatever the number of queries per sequence)
    b.seq_tiled_until.assign(3, kind == Kind::kTiled ? kMaxCtx : 0);
    for (auto [sq, p] : toks) b.add(0, p, sq, true);
    model::AttentionShape sh = shape_;
    sh.window = window;
    sh.decode = kind == Kind::kF16acc ? model::DecodeNumerics::kLlama : model::DecodeNumerics::kF32;
    std::vector<float> out(q.size(), -3.f);
    kernels::force_scalar_kernels(scalar);
    model::attention(sh, b, kind == Kind::kQ8 ? *kv_q8_ : *kv_, q.data(), out.data(), pool_);
    kernels::force_scalar_kernels(false);
    return out;
  }

  // Worst over (token, head) rows of max |got - exact| / max |exact|.
  double worst_rel(const std::vector<float>& got, const std::vector<double>& exact) const {
    const size_t hd = shape_.head_dim;
    double worst = 0;
    for (size_t r0 = 0; r0 < got.size(); r0 += hd) {
      double err = 0, mag = 0;
      for (size_t d = r0; d < r0 + hd; ++d) {
        err = std::max(err, std::fabs(got[d] - exact[d]));
        mag = std::max(mag, std::fabs(exact[d]));
      }
      worst = std::max(worst, err / mag);
    }
    return worst;
  }

  // A windowed step: the dispatched kernels bitwise equal to the reference, the reference
  // within `tol` (relative, per row) of exact attention over each token's window.
  void check_window(const std::vector<std::pair<int, int>>& toks, Kind kind, int window, float q_scale, double tol) {
    SCOPED_TRACE(std::string(kind_name(kind)) + " window " + std::to_string(window) + " tokens " +
                 std::to_string(toks.size()) + " first pos " + std::to_string(toks[0].second));
    std::vector<float> q(toks.size() * shape_.n_head * shape_.head_dim);
    std::normal_distribution<float> nd(0.f, q_scale);
    for (auto& x : q) x = nd(rng_);
    const std::vector<float> ref = run(toks, q, kind, window, true);
    if (std::string(model::attention_impl()) != "ref") {
      const std::vector<float> fast = run(toks, q, kind, window, false);
      ASSERT_EQ(std::memcmp(fast.data(), ref.data(), q.size() * sizeof(float)), 0)
          << "first difference at " << first_diff(fast, ref) << " of " << q.size();
    }
    if (tol > 0) {
      const double w = worst_rel(ref, naive(toks, q, kind == Kind::kQ8 ? kv_q8_.get() : kv_.get(), window));
      EXPECT_LT(w, tol) << "reference vs exact attention over the window";
    }
  }

  // Copies the K/V rows of positions [b, b + n) of sequence sq (layer shape_.layer, every
  // KV head, f16 pool) to positions [0, n) of pts_[2].
  void copy_keys(int sq, int b, int n) {
    const int ps = kv_->page_size(), hd = shape_.head_dim;
    for (int j = 0; j < n; ++j)
      for (int h = 0; h < shape_.n_head_kv; ++h) {
        const int32_t from = pts_[sq].pages[(b + j) / ps], to = pts_[2].pages[j / ps];
        const size_t fo = static_cast<size_t>((b + j) % ps) * hd, tof = static_cast<size_t>(j % ps) * hd;
        std::memcpy(kv_->k(to, shape_.layer, h) + tof, kv_->k(from, shape_.layer, h) + fo, hd * sizeof(f16_t));
        std::memcpy(kv_->v(to, shape_.layer, h) + tof, kv_->v(from, shape_.layer, h) + fo, hd * sizeof(f16_t));
      }
  }

  // Positions around page (10, 12, 16), f32 block (16) and tile (64) edges, and the
  // windows' own edges, plus random ones.
  std::vector<int> edge_positions(int n_random) {
    std::vector<int> ps = {0, 1, 2, 4, 5, 6, 9, 10, 11, 12, 15, 16, 17, 31, 32, 63, 64, 65, 99, 100, 101,
                           115, 127, 128, 129, 163, 164, 191, 192, 255, 256, 299, 300, 511, 599};
    std::uniform_int_distribution<int> ud(0, kMaxCtx - 1);
    for (int i = 0; i < n_random; ++i) ps.push_back(ud(rng_));
    return ps;
  }

  // One row kernel form: its name, numerics (Kind) and entry.
  struct RowForm {
    const char* name;
    Kind kind;
    void (*fn)(const model::detail::AttnRows&, model::detail::AttnScratch&);
  };

  // One call of each form over rows of sequence 1 with the given [ctx_begin, n_ctx)
  // ranges (forms: each kind's reference first): equal bits to the reference, the
  // reference exact attention over each row's range within rounding; with zero_begin,
  // also ctx_begin all 0 equal to no ctx_begin.
  void check_row_kernels(const std::vector<RowForm>& forms, const std::vector<std::pair<int, int>>& ranges,
                         bool zero_begin) {
    const int hd = shape_.head_dim, n = static_cast<int>(ranges.size());
    int max_keys = 0;
    for (auto [b, e] : ranges) max_keys = std::max(max_keys, e - b);
    std::vector<float> q(static_cast<size_t>(n) * hd);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (auto& x : q) x = nd(rng_);
    std::vector<const float*> qs(n);
    std::vector<int32_t> begin(n), end(n), zeros(n, 0);
    for (int i = 0; i < n; ++i) {
      qs[i] = q.data() + static_cast<size_t>(i) * hd;
      begin[i] = ranges[i].first;
      end[i] = ranges[i].second;
    }
    auto call = [&](const RowForm& fm, const kv::KvPool& kvp, const int32_t* cb, const int32_t* ce) {
      std::vector<float> out(q.size(), -5.f);
      std::vector<float*> outs(n);
      for (int i = 0; i < n; ++i) outs[i] = out.data() + static_cast<size_t>(i) * hd;
      model::detail::AttnRows r;
      const kv::KvView view(kvp);
      r.kv = &view;
      r.pt = &pts_[1];
      r.layer = shape_.layer;
      r.hk = shape_.n_head_kv - 1;
      r.hd = hd;
      r.scale = shape_.scale;
      r.n_rows = n;
      r.q = qs.data();
      r.n_ctx = ce;
      r.ctx_begin = cb;
      r.out = outs.data();
      model::detail::AttnScratch sc;
      fm.fn(r, sc);
      return out;
    };
    for (const kv::KvPool* kvp : {kv_.get(), kv_q8_.get()}) {
      if (!kvp) continue;
      std::vector<double> exact(q.size());
      for (int i = 0; i < n; ++i)
        exact_row(*kvp, 1, shape_.n_head_kv - 1, qs[i], begin[i], end[i], exact.data() + static_cast<size_t>(i) * hd);
      std::vector<float> ref[3];  // per Kind
      for (const RowForm& fm : forms) {
        if (kvp == kv_q8_.get() && fm.kind != Kind::kF32acc) continue;  // Q8_0 rows: f32 numerics only
        SCOPED_TRACE(std::string(fm.name) + (kvp == kv_q8_.get() ? " q8_0" : " f16"));
        const std::vector<float> got = call(fm, *kvp, begin.data(), end.data());
        std::vector<float>& rk = ref[static_cast<int>(fm.kind)];
        if (rk.empty()) {  // the reference comes first
          rk = got;
          EXPECT_LT(worst_rel(got, exact), fm.kind == Kind::kF16acc ? tol_f16acc(max_keys) : kTolF32);
        } else {
          EXPECT_EQ(std::memcmp(got.data(), rk.data(), q.size() * sizeof(float)), 0)
              << "first difference at " << first_diff(got, rk) << " of " << q.size();
        }
        for (float x : got) ASSERT_TRUE(std::isfinite(x));
        if (zero_begin) {  // ctx_begin of zeros takes the windowed code paths: same bits as none
          const std::vector<float> z = call(fm, *kvp, zeros.data(), end.data()), none = call(fm, *kvp, nullptr, end.data());
          EXPECT_EQ(std::memcmp(z.data(), none.data(), q.size() * sizeof(float)), 0);
        }
      }
    }
  }

  static constexpr int kMaxCtx = 600;
  std::mt19937 rng_{1234};
  std::unique_ptr<kv::KvPool> kv_;
  std::unique_ptr<kv::KvPool> kv_q8_;  // the same K/V in Q8_0 (head dims that are multiples of 32)
  kv::PageTable pts_[3];               // two sequences of random K/V, and scratch for copied keys
  model::AttentionShape shape_;
  ThreadPool pool_{2};
};

TEST_P(AttentionSimd, ShortBatchMatchesReferenceBitwise) {
  if (std::string(model::attention_impl()) == "ref") GTEST_SKIP() << "no AVX2 on this CPU";
  // decode-like: one token per sequence at positions around page and tile edges
  for (int p : {0, 1, 7, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 200, 299}) check({{0, p}, {1, p / 2}}, 1.f);
  // a short prefill chunk (fewer than 64 queries) crossing pages
  std::vector<std::pair<int, int>> chunk;
  for (int p = 40; p < 90; ++p) chunk.push_back({1, p});
  check(chunk, 1.f);
  check({{0, 250}, {1, 299}}, 24.f);  // wide score gaps
}

TEST_P(AttentionSimd, F32DecodeMatchesReferenceBitwiseAndExactAttention) {
  if (std::string(model::attention_impl()) == "ref") GTEST_SKIP() << "no AVX2 on this CPU";
  for (int p : {0, 1, 15, 16, 17, 31, 100, 299, 513, 599}) check_f32({{0, p}, {1, p / 2}}, 1.f);
  std::vector<std::pair<int, int>> chunk;  // several tokens per sequence: rows with different contexts
  for (int p = 40; p < 70; ++p) chunk.push_back({1, p});
  check_f32(chunk, 1.f);
  check_f32({{0, 250}, {1, 599}}, 24.f);  // wide score gaps (exp outside its fast range)
}

// A Q8_0 cache: every batch shape (decode, short and long prefill chunks) takes the f32
// numerics over the dequantized rows; SIMD equals the reference, both equal exact attention
// over the stored values within float rounding.
TEST_P(AttentionSimd, Q8CacheMatchesReferenceAndExactAttention) {
  if (!kv_q8_) GTEST_SKIP() << "head dim not a multiple of 32";
  if (std::string(model::attention_impl()) == "ref") GTEST_SKIP() << "no AVX2 on this CPU";
  for (int p : {0, 17, 299, 599}) check_f32({{0, p}, {1, p / 3}}, 1.f, kv_q8_.get());
  std::vector<std::pair<int, int>> chunk;  // >= 64 queries: would be the tiled path over f16
  for (int p = 100; p < 180; ++p) chunk.push_back({0, p});
  check_f32(chunk, 1.f, kv_q8_.get());
}

// kAuto: llama.cpp's numerics below kAutoF32FromPos, f32 from there on, per token.
TEST_P(AttentionSimd, AutoNumericsSwitchByPosition) {
  const int at = model::kAutoF32FromPos;
  ASSERT_LT(at, kMaxCtx);
  model::Batch b;
  b.seqs = {&pts_[0], &pts_[1]};
  b.add(0, at - 1, 0, true);
  b.add(0, at, 1, true);
  const size_t n = 2 * shape_.n_head * shape_.head_dim;
  std::vector<float> q(n);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& x : q) x = nd(rng_);
  auto run = [&](model::DecodeNumerics d) {
    model::AttentionShape sh = shape_;
    sh.decode = d;
    std::vector<float> out(n);
    model::attention(sh, b, *kv_, q.data(), out.data(), pool_);
    return out;
  };
  const auto a = run(model::DecodeNumerics::kAuto), l = run(model::DecodeNumerics::kLlama), f = run(model::DecodeNumerics::kF32);
  const size_t half = n / 2;
  EXPECT_EQ(std::memcmp(a.data(), l.data(), half * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(a.data() + half, f.data() + half, half * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(l.data() + half, f.data() + half, half * sizeof(float)), 0);
}

TEST_P(AttentionSimd, TiledPrefillMatchesReferenceBitwise) {
  if (std::string(model::attention_impl()) == "ref") GTEST_SKIP() << "no AVX2 on this CPU";
  // >= 64 queries of one sequence: the tiled numerics, ragged last tiles per row
  std::vector<std::pair<int, int>> chunk;
  for (int p = 0; p < 70; ++p) chunk.push_back({0, p});
  check(chunk, 1.f);
  chunk.clear();
  for (int p = 120; p < 300; ++p) chunk.push_back({1, p});
  check(chunk, 1.f);
  check(chunk, 24.f);  // score gaps beyond the polynomial exp's range
  // per-sequence choice of numerics (tiled below a position), mixed sequences
  chunk.clear();
  for (int p = 60; p < 75; ++p) chunk.push_back({0, p});
  for (int p = 190; p < 200; ++p) chunk.push_back({1, p});
  check(chunk, 1.f, {70, 195});
}

// Every numerics with a window, through attention(): SIMD bits equal the reference's, the
// reference is exact attention over keys [pos - window + 1, pos] within rounding.
TEST_P(AttentionSimd, WindowEveryNumericsMatchesReferenceAndExactAttention) {
  for (int window : kWindows) {
    const std::vector<int> pos = edge_positions(4);
    for (Kind kind : {Kind::kF16acc, Kind::kTiled, Kind::kF32acc, Kind::kQ8}) {
      if (kind == Kind::kQ8 && !kv_q8_) continue;
      const double tol = kind == Kind::kF16acc ? tol_f16acc(window) : kTolF32;
      for (int p : pos) check_window({{0, p}, {1, (p * 7 + 3) % kMaxCtx}}, kind, window, 1.f, tol);
      // 40 tokens of one sequence: calls of up to 16 tokens, each row with its own window
      std::vector<std::pair<int, int>> chunk;
      for (int p = 100; p < 140; ++p) chunk.push_back({1, p});
      check_window(chunk, kind, window, 1.f, tol);
      check_window({{0, 250}, {1, 599}, {0, 3}}, kind, window, 24.f, 0);  // wide score gaps: bits only
    }
  }
}

// A window covering the whole context is full attention, bit for bit, in every numerics.
TEST_P(AttentionSimd, WindowCoveringContextEqualsNoWindow) {
  std::vector<std::pair<int, int>> toks = {{0, 0}, {1, 17}, {0, 99}, {1, 130}, {0, 299}};
  for (int p = 300; p < 310; ++p) toks.push_back({1, p});
  std::vector<float> q(toks.size() * shape_.n_head * shape_.head_dim);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& x : q) x = nd(rng_);
  for (Kind kind : {Kind::kF16acc, Kind::kTiled, Kind::kF32acc, Kind::kQ8}) {
    if (kind == Kind::kQ8 && !kv_q8_) continue;
    for (bool scalar : {false, true}) {
      SCOPED_TRACE(std::string(kind_name(kind)) + (scalar ? " ref" : " dispatched"));
      const std::vector<float> full = run(toks, q, kind, 0, scalar);
      for (int window : {310, 311, 1 << 30}) {
        const std::vector<float> w = run(toks, q, kind, window, scalar);
        EXPECT_EQ(std::memcmp(w.data(), full.data(), q.size() * sizeof(float)), 0) << "window " << window;
      }
      // a window just short of the context changes the last token's result
      const std::vector<float> w = run(toks, q, kind, 309, scalar);
      const size_t last = (toks.size() - 1) * shape_.n_head * shape_.head_dim;
      EXPECT_EQ(std::memcmp(w.data(), full.data(), last * sizeof(float)), 0);
      EXPECT_NE(std::memcmp(w.data() + last, full.data() + last, (q.size() - last) * sizeof(float)), 0);
    }
  }
}

// The short path skips the keys before the window as llama.cpp's flash attention skips
// -inf-masked keys: the result is, bit for bit, full attention over the window's keys
// alone (copied to positions 0..n-1 of another sequence).
TEST_P(AttentionSimd, ShortPathWindowIsAttentionOverItsKeysAlone) {
  for (int window : kWindows) {
    for (int p : {0, 3, 15, 16, 64, 99, 100, 101, 163, 299, 599}) {
      const int b = begin_of(p, window), n = p - b + 1;
      copy_keys(0, b, n);
      std::vector<float> q(static_cast<size_t>(shape_.n_head) * shape_.head_dim);
      std::normal_distribution<float> nd(0.f, 1.f);
      for (auto& x : q) x = nd(rng_);
      for (bool scalar : {false, true}) {
        const std::vector<float> w = run({{0, p}}, q, Kind::kF16acc, window, scalar);
        const std::vector<float> alone = run({{2, n - 1}}, q, Kind::kF16acc, 0, scalar);
        EXPECT_EQ(std::memcmp(w.data(), alone.data(), q.size() * sizeof(float)), 0)
            << "window " << window << " pos " << p << (scalar ? " ref" : " dispatched");
      }
    }
  }
}

// A mixed step through attention() with kAuto numerics and AttentionShape::window: a
// tiled prefill chunk, llama.cpp-numerics decode (position < kAutoF32FromPos) and a late
// decode token, which kAuto runs with the f32 numerics only when its window shows it at
// least kAutoF32FromPos keys (else llama.cpp's), on the thread pool.
TEST_P(AttentionSimd, WindowMixedBatch) {
  copy_keys(0, 0, kMaxCtx);  // sequence 2: the keys of sequence 0
  for (int window : {37, 100, 200}) {
    model::Batch b;
    b.seqs = {&pts_[0], &pts_[1], &pts_[2]};
    for (int p = 200; p < 280; ++p) b.add(0, p, 0, true);  // 80 queries: tiled
    b.add(0, 90, 2, true);                                  // decode below kAutoF32FromPos
    b.add(0, 450, 1, true);                                 // decode at f32 numerics
    ASSERT_LT(90, model::kAutoF32FromPos);
    const size_t row = static_cast<size_t>(shape_.n_head) * shape_.head_dim, n = b.size() * row;
    std::vector<float> q(n);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (auto& x : q) x = nd(rng_);
    model::AttentionShape sh = shape_;
    sh.decode = model::DecodeNumerics::kAuto;
    sh.window = window;
    std::vector<float> out_fast(n, -1.f), out_ref(n, -2.f);
    model::attention(sh, b, *kv_, q.data(), out_fast.data(), pool_);
    kernels::force_scalar_kernels(true);
    model::attention(sh, b, *kv_, q.data(), out_ref.data(), pool_);
    kernels::force_scalar_kernels(false);
    EXPECT_EQ(std::memcmp(out_fast.data(), out_ref.data(), n * sizeof(float)), 0)
        << "first difference at " << first_diff(out_fast, out_ref) << " of " << n;
    std::vector<std::pair<int, int>> toks;
    for (int64_t t = 0; t < b.size(); ++t) toks.push_back({b.seq[t], b.pos[t]});
    const std::vector<double> exact = naive(toks, q, kv_.get(), window);
    auto slice = [&](const auto& v, int64_t t0, int64_t t1) {
      return std::vector<typename std::decay_t<decltype(v)>::value_type>(v.begin() + t0 * row, v.begin() + t1 * row);
    };
    EXPECT_LT(worst_rel(slice(out_ref, 0, 80), slice(exact, 0, 80)), kTolF32) << "tiled, window " << window;
    EXPECT_LT(worst_rel(slice(out_ref, 80, 81), slice(exact, 80, 81)), tol_f16acc(window)) << "f16acc, window " << window;
    const bool late_f32 = window - 1 >= model::kAutoF32FromPos;
    EXPECT_LT(worst_rel(slice(out_ref, 81, 82), slice(exact, 81, 82)), late_f32 ? kTolF32 : tol_f16acc(window))
        << (late_f32 ? "f32acc" : "f16acc") << ", window " << window;
  }
}

// The row kernels themselves, every form this CPU runs (AVX2 and AVX-512 in one process),
// on calls whose rows have unrelated [ctx_begin, n_ctx) ranges: equal bits to the
// reference; ctx_begin all 0 equals no ctx_begin; the reference is exact attention over
// each row's range.
TEST_P(AttentionSimd, RowKernelsHonourFirstVisibleKeyInEveryForm) {
  std::vector<RowForm> forms = {{"f16acc_ref", Kind::kF16acc, model::detail::attend_rows_f16acc_ref},
                                {"tiled_ref", Kind::kTiled, model::detail::attend_rows_tiled_ref},
                                {"f32acc_ref", Kind::kF32acc, model::detail::attend_rows_f32acc_ref}};
#if defined(__x86_64__)
  const auto& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) {
    forms.push_back(RowForm{"f16acc_avx2", Kind::kF16acc, model::detail::attend_rows_f16acc_avx2});
    forms.push_back(RowForm{"tiled_avx2", Kind::kTiled, model::detail::attend_rows_tiled_avx2});
    forms.push_back(RowForm{"f32acc_avx2", Kind::kF32acc, model::detail::attend_rows_f32acc_avx2});
    if (f.avx512f && f.avx512bw && f.avx512vl) {
      forms.push_back(RowForm{"f16acc_avx512", Kind::kF16acc, model::detail::attend_rows_f16acc_avx512_or_avx2});
      forms.push_back(RowForm{"f32acc_avx512", Kind::kF32acc, model::detail::attend_rows_f32acc_avx512});
    }
  }
#endif
  // [begin, end) per row: single keys, ranges inside one page / block / tile, across them,
  // disjoint from each other, then random ones
  std::vector<std::pair<int, int>> ranges = {{0, 1},     {0, 600},   {599, 600}, {5, 6},     {17, 300},
                                             {300, 301}, {64, 128},  {63, 65},   {15, 17},   {128, 600},
                                             {200, 264}, {1, 2},     {400, 599}, {101, 102}, {33, 47}};
  std::uniform_int_distribution<int> ud(0, kMaxCtx - 1);
  for (int i = 0; i < 9; ++i) {
    const int a = ud(rng_), c = ud(rng_);
    ranges.push_back({std::min(a, c), std::max(a, c) + 1});
  }
  check_row_kernels(forms, ranges, true);
  // The rows that start at 101 or later, with NaN in every K and V row before 101: the
  // first block / tile starts inside, and keys before a row's range never count.
  std::vector<std::pair<int, int>> late;
  for (auto rg : ranges)
    if (rg.first >= 101) late.push_back(rg);
  ASSERT_GE(late.size(), 5u);
  ASSERT_EQ(std::min_element(late.begin(), late.end())->first, 101);
  for (kv::KvPool* kvp : {kv_.get(), kv_q8_.get()}) {
    if (!kvp) continue;
    const int ps = kvp->page_size();
    for (int j = 0; j < 101; ++j)  // f16 0xffff is a NaN; in a Q8_0 row, so is the block scale
      for (int h = 0; h < shape_.n_head_kv; ++h) {
        const int32_t page = pts_[1].pages[j / ps];
        std::memset(kvp->k_bytes(page, shape_.layer, h) + (j % ps) * kvp->k_row_bytes(), 0xff, kvp->k_row_bytes());
        std::memset(kvp->v_bytes(page, shape_.layer, h) + (j % ps) * kvp->v_row_bytes(), 0xff, kvp->v_row_bytes());
      }
  }
  check_row_kernels(forms, late, false);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionSimd,
                         ::testing::Values(Case{32, 8, 2, 16}, Case{64, 8, 4, 16}, Case{128, 4, 1, 16}, Case{64, 4, 4, 12},
                                           Case{40, 6, 3, 16}, Case{20, 4, 2, 10}),
                         [](const auto& info) {
                           const Case& c = info.param;
                           return "hd" + std::to_string(c.head_dim) + "_h" + std::to_string(c.n_head) + "_kv" +
                                  std::to_string(c.n_head_kv) + "_ps" + std::to_string(c.page_size);
                         });

}  // namespace
