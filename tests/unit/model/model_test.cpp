#include <gtest/gtest.h>

#include <filesystem>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <set>

#include "base/fp16.h"
#include "gguf/writer.h"
#include "kernels/traits.h"
#include "model/attention.h"
#include "model/model.h"

using namespace tachyon;

namespace {

const std::string kData = TACHYON_SHARED_DATA;
const std::string kQwen3 = kData + "/models/mini-qwen3-Q8_0.gguf";
const std::string kLlama = kData + "/models/mini-llama-Q4_K_M.gguf";

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + name; }

// Copies a model file, letting the caller drop or replace keys and tensors.
struct Rewrite {
  std::function<bool(std::string_view key)> drop_key = [](std::string_view) { return false; };
  std::function<bool(std::string_view name)> drop_tensor = [](std::string_view) { return false; };
  std::function<void(gguf::Writer&)> extra = [](gguf::Writer&) {};
};

std::string rewrite(const std::string& src, const std::string& out_name, const Rewrite& rw) {
  auto f = gguf::File::open(src);
  EXPECT_TRUE(f.is_ok());
  gguf::Writer w;
  for (const auto& kv : f.value()->metadata())
    if (!rw.drop_key(kv.key)) w.copy_kv(std::string(kv.key), kv.value);
  rw.extra(w);
  for (const auto& t : f.value()->tensors()) {
    if (rw.drop_tensor(t.name)) continue;
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    EXPECT_TRUE(w.add_tensor(std::string(t.name), t.type, ne, t.data, t.n_bytes).is_ok());
  }
  const std::string path = tmp_path(out_name);
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}

std::vector<float> run_seq(model::Model& m, kv::KvPool& kv, kv::PageTable& pt, const std::vector<int32_t>& toks, int start,
                           ThreadPool& pool) {
  model::Batch b;
  b.seqs.push_back(&pt);
  pt.reserve(kv, start + static_cast<int>(toks.size()));
  for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], start + static_cast<int>(i), 0, true);
  std::vector<float> logits;
  EXPECT_TRUE(m.forward(b, kv, pool, &logits).is_ok());
  pt.n_tokens = start + static_cast<int>(toks.size());
  return logits;
}

}  // namespace

TEST(Model, LoadsAndReportsHparams) {
  auto m = model::Model::load(kQwen3);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto& h = m.value()->hparams();
  EXPECT_EQ(h.arch_name, "qwen3");
  ASSERT_EQ(h.arch.layers.size(), static_cast<size_t>(h.n_layer));
  EXPECT_EQ(h.n_embd, 256);
  EXPECT_EQ(h.head_dim_k, 64);  // from attention.key_length, not n_embd / n_head
  EXPECT_EQ(h.n_head, 8);
  EXPECT_EQ(h.n_head_kv, 4);
  EXPECT_EQ(h.n_vocab, 4096);
  for (const auto& L : h.arch.layers) EXPECT_TRUE(L.qk_norm && !L.qkv_bias && L.window == 0);
  EXPECT_EQ(m.value()->weight_type(), "Q8_0");
  EXPECT_GT(m.value()->weight_bytes(), 1000000u);
}

TEST(Model, ClearLoadErrors) {
  {
    Rewrite rw;
    rw.drop_tensor = [](std::string_view n) { return n == "blk.1.ffn_up.weight"; };
    auto m = model::Model::load(rewrite(kLlama, "missing.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("tensor 'blk.1.ffn_up.weight': missing"), std::string::npos) << m.status().message();
  }
  {
    Rewrite rw;
    rw.drop_key = [](std::string_view k) { return k == "general.architecture"; };
    rw.extra = [](gguf::Writer& w) { w.set_str("general.architecture", "mamba"); };
    auto m = model::Model::load(rewrite(kLlama, "arch.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("architecture 'mamba' is not supported"), std::string::npos);
  }
  {
    Rewrite rw;
    rw.drop_key = [](std::string_view k) { return k == "llama.attention.head_count_kv"; };
    rw.extra = [](gguf::Writer& w) { w.set_u32("llama.attention.head_count_kv", 3); };
    auto m = model::Model::load(rewrite(kLlama, "heads.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("does not divide head_count"), std::string::npos) << m.status().message();
  }
  {  // a shape that does not match the hyper-parameters
    Rewrite rw;
    rw.drop_key = [](std::string_view k) { return k == "llama.feed_forward_length"; };
    rw.extra = [](gguf::Writer& w) { w.set_u32("llama.feed_forward_length", 512); };
    auto m = model::Model::load(rewrite(kLlama, "shape.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("blk.0.ffn_gate.weight': shape [256, 768], expected [256, 512]"), std::string::npos)
        << m.status().message();
  }
  {  // a weight of a type with no kernels, then a weight whose block scale is NaN
    auto src = gguf::File::open(kLlama);
    auto with_attn_q = [&](DType type, const std::vector<uint8_t>& data, const std::string& path) {
      gguf::Writer w;
      for (const auto& kv : src.value()->metadata()) w.copy_kv(std::string(kv.key), kv.value);
      for (const auto& t : src.value()->tensors()) {
        std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        if (t.name == "blk.0.attn_q.weight") {
          ASSERT_TRUE(w.add_tensor(std::string(t.name), type, ne, data.data(), data.size()).is_ok());
        } else {
          ASSERT_TRUE(w.add_tensor(std::string(t.name), t.type, ne, t.data, t.n_bytes).is_ok());
        }
      }
      ASSERT_TRUE(w.write(path).is_ok());
    };
    const auto* q = src.value()->tensor("blk.0.attn_q.weight");
    with_attn_q(DType::I8, std::vector<uint8_t>(q->ne[0] * q->ne[1], 0), tmp_path("i8.gguf"));
    auto m = model::Model::load(tmp_path("i8.gguf"));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("weight type I8 is not supported (F32, F16, Q4_0"), std::string::npos)
        << m.status().message();
    std::vector<uint8_t> q41(row_bytes(DType::Q4_1, q->ne[0]) * q->ne[1], 0);
    q41[20 * 7] = 0x00;
    q41[20 * 7 + 1] = 0x7E;  // block 7's f16 scale: NaN
    with_attn_q(DType::Q4_1, q41, tmp_path("q41nan.gguf"));
    m = model::Model::load(tmp_path("q41nan.gguf"));
    ASSERT_FALSE(m.is_ok());
    EXPECT_EQ(m.status().code(), ErrorCode::kCorrupt);
    EXPECT_NE(m.status().message().find("'blk.0.attn_q.weight': type Q4_1 data holds an invalid block"), std::string::npos)
        << m.status().message();
  }
}

TEST(Model, MoeLoadErrorsNameTheKeyOrTensor) {
  const std::string moe = kData + "/models/mini-qwen3moe-Q8_0.gguf";
  {
    Rewrite rw;
    rw.drop_key = [](std::string_view k) { return k == "qwen3moe.expert_used_count"; };
    auto m = model::Model::load(rewrite(moe, "moe_nokey.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("'qwen3moe.expert_used_count': missing"), std::string::npos)
        << m.status().message();
  }
  {
    Rewrite rw;
    rw.drop_key = [](std::string_view k) { return k == "qwen3moe.expert_used_count"; };
    rw.extra = [](gguf::Writer& w) { w.set_u32("qwen3moe.expert_used_count", 9); };  // more than the 8 experts
    auto m = model::Model::load(rewrite(moe, "moe_used.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("out of range"), std::string::npos) << m.status().message();
  }
  {
    Rewrite rw;
    rw.drop_tensor = [](std::string_view n) { return n == "blk.1.ffn_down_exps.weight"; };
    auto m = model::Model::load(rewrite(moe, "moe_notensor.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("tensor 'blk.1.ffn_down_exps.weight': missing"), std::string::npos)
        << m.status().message();
  }
  {
    Rewrite rw;  // an expert count that does not match the tensors' third dimension
    rw.drop_key = [](std::string_view k) { return k == "qwen3moe.expert_count"; };
    rw.extra = [](gguf::Writer& w) { w.set_u32("qwen3moe.expert_count", 4); };
    auto m = model::Model::load(rewrite(moe, "moe_count.gguf", rw));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("shape"), std::string::npos) << m.status().message();
  }
}

TEST(Model, ForwardRejectsBadBatches) {
  auto m = model::Model::load(kQwen3);
  ASSERT_TRUE(m.is_ok());
  auto kv = kv::KvPool::create(m.value()->kv_config(4));
  ThreadPool pool(1);
  kv::PageTable pt;
  pt.reserve(kv.value(), 16);
  std::vector<float> logits;
  model::Batch b;
  b.seqs.push_back(&pt);
  b.add(99999, 0, 0, true);
  EXPECT_NE(m.value()->forward(b, kv.value(), pool, &logits).message().find("out of range"), std::string::npos);
  b.clear();
  b.seqs.push_back(&pt);
  b.add(5, 40, 0, true);  // no page for position 40
  EXPECT_NE(m.value()->forward(b, kv.value(), pool, &logits).message().find("no KV page"), std::string::npos);
}

// Several sequences in one batch give exactly the logits each gives alone, and a prompt
// split into chunks gives exactly the logits of the unsplit prompt (same numerics path
// below 64 query tokens).
// Dense and routed (qwen3moe: tokens grouped by expert) FFNs alike: a token's logits do
// not depend on what else is in its batch.
class BatchInvariance : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchInvariance, BatchingDoesNotChangeResults) {
  auto m = model::Model::load(GetParam());
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  auto& model = *m.value();
  const int nv = model.hparams().n_vocab;
  ThreadPool pool(2);
  auto kv = kv::KvPool::create(model.kv_config(64));
  std::vector<int32_t> a = {1, 450, 4996, 17354, 1701, 29916, 432, 17204};
  std::vector<int32_t> b = {1, 15043, 29892, 3186, 29991, 10};
  for (auto& t : a) t %= nv;
  for (auto& t : b) t %= nv;

  kv::PageTable pa, pb;
  const auto la = run_seq(model, kv.value(), pa, a, 0, pool);
  const auto lb = run_seq(model, kv.value(), pb, b, 0, pool);
  pa.clear(kv.value());
  pb.clear(kv.value());

  // both in one interleaved batch
  kv::PageTable qa, qb;
  qa.reserve(kv.value(), static_cast<int>(a.size()));
  qb.reserve(kv.value(), static_cast<int>(b.size()));
  model::Batch batch;
  batch.seqs = {&qa, &qb};
  std::vector<std::pair<int, int>> order;  // (seq, index)
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < b.size()) order.push_back({1, static_cast<int>(i)});
    if (i < a.size()) order.push_back({0, static_cast<int>(i)});
  }
  for (auto [s, i] : order) batch.add(s == 0 ? a[i] : b[i], i, s, true);
  std::vector<float> lab;
  ASSERT_TRUE(model.forward(batch, kv.value(), pool, &lab).is_ok());
  for (size_t k = 0; k < order.size(); ++k) {
    const auto [s, i] = order[k];
    const float* got = lab.data() + k * nv;
    const float* want = (s == 0 ? la.data() : lb.data()) + static_cast<size_t>(i) * nv;
    for (int v = 0; v < nv; ++v) ASSERT_EQ(got[v], want[v]) << "seq " << s << " pos " << i;
  }

  // chunked prefill: 3 + 4 + 1 tokens
  kv::PageTable pc;
  std::vector<float> chunked;
  int start = 0;
  for (int len : {3, 4, 1}) {
    std::vector<int32_t> part(a.begin() + start, a.begin() + start + len);
    const auto l = run_seq(model, kv.value(), pc, part, start, pool);
    chunked.insert(chunked.end(), l.begin(), l.end());
    start += len;
  }
  ASSERT_EQ(chunked.size(), la.size());
  for (size_t i = 0; i < la.size(); ++i) ASSERT_EQ(chunked[i], la[i]) << "index " << i;
}

INSTANTIATE_TEST_SUITE_P(Model, BatchInvariance,
                         ::testing::Values(kQwen3, kData + "/models/mini-qwen3moe-Q4_K_M.gguf",
                                           kData + "/models/mini-qwen3moe-F16.gguf"),
                         [](const auto& info) {
                           std::string s = std::filesystem::path(info.param).stem().string();
                           for (auto& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// A phase sink sees every step while it is set and none after: each phase's time is
// accounted once, the phases of a step sum to no more than the step's wall time, and the
// logits do not change.
TEST(Model, PhaseSinkTimesEveryPhaseOfTheStepsItSees) {
  auto m = model::Model::load(kLlama);
  ASSERT_TRUE(m.is_ok());
  auto& model = *m.value();
  ThreadPool pool(2);
  auto kv = kv::KvPool::create(model.kv_config(16));
  std::vector<int32_t> toks = {1, 450, 4996, 17354, 1701, 29916};
  for (auto& t : toks) t %= model.hparams().n_vocab;
  kv::PageTable plain, timed;
  const auto want = run_seq(model, kv.value(), plain, toks, 0, pool);

  model::StepPhases ph;
  model.set_phase_sink(&ph);
  const auto t0 = std::chrono::steady_clock::now();
  const auto got = run_seq(model, kv.value(), timed, toks, 0, pool);
  const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  model.set_phase_sink(nullptr);
  ASSERT_EQ(got, want);
  EXPECT_EQ(ph.steps, 1);
  for (int i = 0; i < model::StepPhases::kN; ++i) {
    EXPECT_GE(ph.ms[i], 0.0) << model::StepPhases::name(i);
    EXPECT_STRNE(model::StepPhases::name(i), "?");
  }
  // the products and attention do real work on every layer
  for (auto p : {model::StepPhases::kQkv, model::StepPhases::kAttention, model::StepPhases::kGateUp,
                 model::StepPhases::kDown, model::StepPhases::kOutput})
    EXPECT_GT(ph.ms[p], 0.0) << model::StepPhases::name(p);
  EXPECT_GT(ph.total_ms(), 0.0);
  EXPECT_LE(ph.total_ms(), wall);

  const model::StepPhases before = ph;
  std::vector<float> logits;
  model::Batch b;
  b.seqs.push_back(&timed);
  timed.reserve(kv.value(), static_cast<int>(toks.size()) + 1);
  b.add(toks[0], static_cast<int32_t>(toks.size()), 0, true);
  ASSERT_TRUE(model.forward(b, kv.value(), pool, &logits).is_ok());
  EXPECT_EQ(ph.steps, before.steps);
  EXPECT_EQ(ph.total_ms(), before.total_ms());
}

// The two attention numerics (short-batch f16 accumulator, tiled f32) agree with a
// double-precision reference over the same f16 cache.
TEST(Attention, BothPathsMatchDoubleReference) {
  const int n_head = 4, n_kv = 2, hd = 64, n = 150;
  kv::KvConfig cfg{1, n_kv, hd, hd, 16, (n + 15) / 16};
  auto pool_kv = kv::KvPool::create(cfg);
  ASSERT_TRUE(pool_kv.is_ok());
  kv::PageTable pt;
  pt.reserve(pool_kv.value(), n);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q(n * n_head * hd), k(n * n_kv * hd), v(n * n_kv * hd);
  for (auto& x : q) x = nd(rng);
  for (auto& x : k) x = nd(rng);
  for (auto& x : v) x = nd(rng);
  model::AttentionShape s{n_head, n_kv, hd, 0, 1.f / 8.f};
  ThreadPool pool(2);

  model::Batch all;  // 150 tokens of one sequence: tiled path
  all.seqs.push_back(&pt);
  for (int i = 0; i < n; ++i) all.add(0, i, 0, true);
  model::store_kv(s, all, pool_kv.value(), k.data(), v.data());
  std::vector<float> out_tiled(q.size());
  model::attention(s, all, pool_kv.value(), q.data(), out_tiled.data(), pool);

  // the same queries one at a time: short-batch path
  std::vector<float> out_short(q.size());
  for (int i = 0; i < n; ++i) {
    model::Batch one;
    one.seqs.push_back(&pt);
    one.add(0, i, 0, true);
    model::attention(s, one, pool_kv.value(), q.data() + i * n_head * hd, out_short.data() + i * n_head * hd, pool);
  }

  double worst_tiled = 0, worst_short = 0;
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < n_head; ++h) {
      const int hk = h / (n_head / n_kv);
      std::vector<double> sc(i + 1);
      double mx = -1e30;
      for (int j = 0; j <= i; ++j) {
        double d = 0;
        for (int e = 0; e < hd; ++e)
          d += double(q[(i * n_head + h) * hd + e]) * f16_to_f32(f32_to_f16(k[(j * n_kv + hk) * hd + e]));
        sc[j] = d / 8.0;
        mx = std::max(mx, sc[j]);
      }
      double sum = 0;
      for (auto& x : sc) sum += (x = std::exp(x - mx));
      for (int e = 0; e < hd; ++e) {
        double o = 0;
        for (int j = 0; j <= i; ++j) o += sc[j] / sum * f16_to_f32(f32_to_f16(v[(j * n_kv + hk) * hd + e]));
        const size_t idx = (i * n_head + h) * hd + e;
        worst_tiled = std::max(worst_tiled, std::fabs(out_tiled[idx] - o));
        worst_short = std::max(worst_short, std::fabs(out_short[idx] - o));
      }
    }
  }
  std::printf("attention max |error| vs double reference: tiled %.2e, short-batch %.2e\n", worst_tiled, worst_short);
  EXPECT_LT(worst_tiled, 1e-4);
  EXPECT_LT(worst_short, 1e-2);  // f16 accumulator
}

// A model shape not in the shared data (MHA, wider, other rope base and epsilon) built
// from random weights: runs, gives finite spread logits, and its Q8_0 quantization
// tracks the F32 original.
TEST(Model, UnseenShapeRunsAndQuantizesConsistently) {
  const int E = 384, H = 6, F = 1024, L = 2, V = 512;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto make = [&](DType type, const std::string& path) {
    std::mt19937 r2(9);
    std::normal_distribution<float> d2(0.f, 1.f);
    gguf::Writer w;
    w.set_str("general.architecture", "llama");
    w.set_u32("llama.embedding_length", E);
    w.set_u32("llama.block_count", L);
    w.set_u32("llama.feed_forward_length", F);
    w.set_u32("llama.attention.head_count", H);
    w.set_u32("llama.attention.head_count_kv", H);
    w.set_f32("llama.rope.freq_base", 500000.f);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
    auto mat = [&](const std::string& name, int cols, int rows, float scale) {
      std::vector<float> x(static_cast<size_t>(cols) * rows);
      for (auto& v : x) v = d2(r2) * scale;
      const auto* tt = kernels::type_traits_ref(type);
      std::vector<uint8_t> q(row_bytes(type, cols) * rows);
      for (int rr = 0; rr < rows; ++rr) tt->from_float(x.data() + static_cast<size_t>(rr) * cols, q.data() + rr * row_bytes(type, cols), cols);
      ASSERT_TRUE(w.add_tensor(name, type, {cols, rows}, q.data(), q.size()).is_ok());
    };
    auto vec = [&](const std::string& name, int n) {
      std::vector<float> x(n, 1.f);
      ASSERT_TRUE(w.add_tensor(name, DType::F32, {n}, x.data(), x.size() * 4).is_ok());
    };
    mat("token_embd.weight", E, V, 1.f);
    vec("output_norm.weight", E);
    mat("output.weight", E, V, 1.f / std::sqrt(float(E)));
    for (int l = 0; l < L; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      vec(b + "attn_norm.weight", E);
      vec(b + "ffn_norm.weight", E);
      mat(b + "attn_q.weight", E, E, 1.f / std::sqrt(float(E)));
      mat(b + "attn_k.weight", E, E, 1.f / std::sqrt(float(E)));
      mat(b + "attn_v.weight", E, E, 1.f / std::sqrt(float(E)));
      mat(b + "attn_output.weight", E, E, 1.f / std::sqrt(float(E)));
      mat(b + "ffn_gate.weight", E, F, 1.f / std::sqrt(float(E)));
      mat(b + "ffn_up.weight", E, F, 1.f / std::sqrt(float(E)));
      mat(b + "ffn_down.weight", F, E, 1.f / std::sqrt(float(F)));
    }
    ASSERT_TRUE(w.write(path).is_ok());
  };
  make(DType::F32, tmp_path("unseen-f32.gguf"));
  make(DType::Q8_0, tmp_path("unseen-q8.gguf"));
  std::vector<int32_t> toks;
  for (int i = 0; i < 20; ++i) toks.push_back(static_cast<int32_t>(rng() % V));
  ThreadPool pool(2);
  std::vector<std::vector<float>> out;
  for (const char* name : {"unseen-f32.gguf", "unseen-q8.gguf"}) {
    auto m = model::Model::load(tmp_path(name));
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    EXPECT_EQ(m.value()->hparams().n_head_kv, H);
    auto kv = kv::KvPool::create(m.value()->kv_config(4));
    kv::PageTable pt;
    out.push_back(run_seq(*m.value(), kv.value(), pt, toks, 0, pool));
  }
  double max_diff = 0, spread = 0;
  for (size_t i = 0; i < out[0].size(); ++i) {
    ASSERT_TRUE(std::isfinite(out[0][i]));
    max_diff = std::max(max_diff, double(std::fabs(out[0][i] - out[1][i])));
    spread = std::max(spread, double(std::fabs(out[0][i])));
  }
  std::printf("unseen shape: max |logit| %.2f, max |F32 - Q8_0| %.3f\n", spread, max_diff);
  EXPECT_GT(spread, 1.0);
  EXPECT_LT(max_diff, 0.1 * spread);
}
