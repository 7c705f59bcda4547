// The AVX2 attention row kernels must give exactly the bits of the scalar reference, for
// both numerics (short batches and tiled prefill), several head dims, GQA, and contexts
// crossing page and tile boundaries.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/traits.h"
#include "base/fp16.h"
#include "model/attention.h"

using namespace tachyon;

namespace {

struct Case {
  int head_dim;
  int n_head;
  int n_head_kv;
  int page_size;
};

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
    cfg.n_pages = 2 * (kMaxCtx / c.page_size + 2);
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

  std::vector<double> naive(const std::vector<std::pair<int, int>>& toks, const std::vector<float>& q,
                            const kv::KvPool* pool = nullptr) {
    const kv::KvPool& kvp = pool ? *pool : *kv_;
    const int hd = shape_.head_dim, group = shape_.n_head / shape_.n_head_kv;
    const int ps = kv_->page_size();
    std::vector<double> out(q.size());
    for (size_t t = 0; t < toks.size(); ++t) {
      const auto [sq, pos] = toks[t];
      for (int h = 0; h < shape_.n_head; ++h) {
        const float* qr = q.data() + (t * shape_.n_head + h) * hd;
        std::vector<double> sc(pos + 1);
        double mx = -1e300;
        for (int j = 0; j <= pos; ++j) {
          double a = 0;
          for (int d = 0; d < hd; ++d)
            a += static_cast<double>(qr[d]) * kv_elem(kvp, true, pts_[sq].pages[j / ps], shape_.layer, h / group, j % ps, d);
          sc[j] = a * shape_.scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (auto& x : sc) sum += (x = std::exp(x - mx));
        for (int d = 0; d < hd; ++d) {
          double a = 0;
          for (int j = 0; j <= pos; ++j)
            a += sc[j] * kv_elem(kvp, false, pts_[sq].pages[j / ps], shape_.layer, h / group, j % ps, d);
          out[(t * shape_.n_head + h) * hd + d] = a / sum;
        }
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

  static constexpr int kMaxCtx = 600;
  std::mt19937 rng_{1234};
  std::unique_ptr<kv::KvPool> kv_;
  std::unique_ptr<kv::KvPool> kv_q8_;  // the same K/V in Q8_0 (head dims that are multiples of 32)
  kv::PageTable pts_[2];
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

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionSimd,
                         ::testing::Values(Case{32, 8, 2, 16}, Case{64, 8, 4, 16}, Case{128, 4, 1, 16}, Case{64, 4, 4, 12},
                                           Case{40, 6, 3, 16}, Case{20, 4, 2, 10}),
                         [](const auto& info) {
                           const Case& c = info.param;
                           return "hd" + std::to_string(c.head_dim) + "_h" + std::to_string(c.n_head) + "_kv" +
                                  std::to_string(c.n_head_kv) + "_ps" + std::to_string(c.page_size);
                         });

}  // namespace
