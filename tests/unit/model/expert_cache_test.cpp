// The expert cache (--mem-budget, model/expert_cache.h) on the MoE reference files: the
// logits of every budget, from one expert's bytes to all of them, with and without
// prefetch, are bit-identical to the resident model's; the cache stays within its budget;
// a budget below one expert, a dense model and a corrupt expert are clear errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"
#include "model/quantize.h"

using namespace tachyon;

namespace {

const std::string kData = TACHYON_SHARED_DATA;

// Prefill of a 14-token prompt (most experts of every layer: the small budgets run it in
// waves), then 8 decode steps; every position's logits, in order.
std::vector<float> run(model::Model& m, ThreadPool& pool) {
  auto kv = kv::KvPool::create(m.kv_config(8));
  EXPECT_TRUE(kv.is_ok());
  const int nv = m.hparams().n_vocab;
  std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701, 29916, 432, 17204, 15043, 29892, 3186, 29991, 10, 77};
  for (auto& t : prompt) t %= nv;
  kv::PageTable pt;
  EXPECT_TRUE(pt.reserve(kv.value(), static_cast<int>(prompt.size()) + 8));
  std::vector<float> all, logits;
  model::Batch b;
  b.seqs.push_back(&pt);
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int>(i), 0, true);
  EXPECT_TRUE(m.forward(b, kv.value(), pool, &logits).is_ok());
  all.insert(all.end(), logits.begin(), logits.end());
  int32_t next = static_cast<int32_t>(std::max_element(logits.end() - nv, logits.end()) - (logits.end() - nv));
  for (int s = 0; s < 8; ++s) {
    model::Batch d;
    d.seqs.push_back(&pt);
    d.add(next, static_cast<int>(prompt.size()) + s, 0, true);
    Status st = m.forward(d, kv.value(), pool, &logits);
    EXPECT_TRUE(st.is_ok()) << st.message();
    all.insert(all.end(), logits.begin(), logits.end());
    next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  pt.clear(kv.value());
  return all;
}

class ExpertCacheFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ExpertCacheFile, EveryBudgetGivesTheResidentLogits) {
  const std::string path = kData + "/models/" + GetParam();
  ThreadPool pool(2);
  auto ref_m = model::Model::load(path);
  ASSERT_TRUE(ref_m.is_ok()) << ref_m.status().message();
  EXPECT_EQ(ref_m.value()->expert_cache(), nullptr);
  const std::vector<float> ref = run(*ref_m.value(), pool);

  // the unit size from a cache that holds everything
  size_t all_bytes = 0;
  int64_t units = 0;
  {
    model::LoadOptions lo;
    lo.mem_budget = size_t{1} << 40;
    auto m = model::Model::load(path, lo);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    const auto s0 = m.value()->expert_cache()->stats();
    all_bytes = s0.expert_bytes;
    units = s0.units;
    EXPECT_EQ(s0.bytes_read, 0u) << "nothing is read before a forward step";
    ASSERT_EQ(run(*m.value(), pool), ref);
    const auto s1 = m.value()->expert_cache()->stats();
    EXPECT_GT(s1.lookups, 0u);
    EXPECT_EQ(s1.evictions, 0u);
    // a second pass reads nothing: every unit it needs is cached
    ASSERT_EQ(run(*m.value(), pool), ref);
    const auto s2 = m.value()->expert_cache()->stats();
    EXPECT_EQ(s2.bytes_read, s1.bytes_read);
    EXPECT_EQ(s2.hits - s1.hits, s2.lookups - s1.lookups);
  }
  ASSERT_GT(units, 0);
  const size_t unit = all_bytes / static_cast<size_t>(units);
  for (size_t budget : {2 * unit, 5 * unit, all_bytes / 2}) {
    for (bool prefetch : {true, false}) {
      SCOPED_TRACE("budget " + std::to_string(budget) + (prefetch ? " with prefetch" : " without prefetch"));
      model::LoadOptions lo;
      lo.mem_budget = budget;
      lo.expert_prefetch = prefetch;
      auto m = model::Model::load(path, lo);
      ASSERT_TRUE(m.is_ok()) << m.status().message();
      ASSERT_EQ(run(*m.value(), pool), ref);
      ASSERT_EQ(run(*m.value(), pool), ref);
      const auto s = m.value()->expert_cache()->stats();
      EXPECT_LE(s.allocated_bytes, budget);
      EXPECT_GT(s.evictions, 0u);
      EXPECT_GT(s.misses, 0u);
      EXPECT_EQ(s.lookups, s.hits + s.prefetch_hits + s.misses);
      EXPECT_GT(s.bytes_read, 0u);
      if (prefetch && s.stages > 0) {
        EXPECT_GT(s.prefetch_issued, 0u);
      } else {
        EXPECT_EQ(s.prefetch_issued, 0u);
      }
      EXPECT_LE(s.prefetch_used, s.prefetch_issued);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Moe, ExpertCacheFile,
                         ::testing::Values("mini-qwen3moe-F16.gguf", "mini-qwen3moe-Q8_0.gguf",
                                           "mini-qwen3moe-Q4_K_M.gguf"),
                         [](const auto& info) {
                           std::string s = std::filesystem::path(info.param).stem().string();
                           for (auto& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

TEST(ExpertCache, BudgetBelowOneExpertOrDenseModelIsAClearError) {
  model::LoadOptions lo;
  lo.mem_budget = 4096;
  auto m = model::Model::load(kData + "/models/mini-qwen3moe-Q8_0.gguf", lo);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("below one expert's weights"), std::string::npos) << m.status().message();
  auto d = model::Model::load(kData + "/models/mini-qwen3-Q8_0.gguf", lo);
  ASSERT_FALSE(d.is_ok());
  EXPECT_NE(d.status().message().find("no routed experts"), std::string::npos) << d.status().message();
}

// A NaN scale inside experts: the resident load refuses the file; under a budget the
// load succeeds (experts are checked as they are read) and the step that reads one fails
// with the tensor and expert named, without crashing.
TEST(ExpertCache, CorruptExpertFailsTheStepThatReadsIt) {
  // Q2_K blocks are checked (their d must be finite); quantize the F16 reference to them
  const std::string dst = ::testing::TempDir() + "moe-corrupt-expert.gguf";
  auto target = model::parse_quant_target("Q2_K");
  ASSERT_TRUE(target.is_ok());
  ASSERT_TRUE(model::quantize_file(kData + "/models/mini-qwen3moe-F16.gguf", dst, target.value(), {}).is_ok());
  {
    auto f = gguf::File::open(dst);
    ASSERT_TRUE(f.is_ok());
    const gguf::TensorInfo* t = f.value()->tensor("blk.0.ffn_up_exps.weight");
    ASSERT_NE(t, nullptr);
    size_t d_at = 0;  // where a block keeps its f16 d
    if (t->type == DType::Q2_K) d_at = 80;
    else if (t->type == DType::Q3_K) d_at = 108;
    else GTEST_SKIP() << "blk.0.ffn_up_exps is " << dtype_info(t->type).name;
    const uint64_t off = f.value()->tensor_file_offset(*t);
    const uint64_t per_expert = t->n_bytes / static_cast<uint64_t>(t->ne[2]);
    std::fstream out(dst, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(out.good());
    const unsigned char nan_f16[2] = {0x00, 0x7e};
    for (int64_t e = 0; e < t->ne[2]; ++e) {  // every expert's first block
      out.seekp(static_cast<std::streamoff>(off + e * per_expert + d_at));
      out.write(reinterpret_cast<const char*>(nan_f16), 2);
    }
  }
  auto resident = model::Model::load(dst);
  ASSERT_FALSE(resident.is_ok());
  EXPECT_NE(resident.status().message().find("invalid block"), std::string::npos);
  model::LoadOptions lo;
  lo.mem_budget = size_t{64} << 20;
  auto m = model::Model::load(dst, lo);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ThreadPool pool(2);
  auto kv = kv::KvPool::create(m.value()->kv_config(4));
  kv::PageTable pt;
  ASSERT_TRUE(pt.reserve(kv.value(), 4));
  model::Batch b;
  b.seqs.push_back(&pt);
  for (int i = 0; i < 4; ++i) b.add(1 + i, i, 0, true);
  std::vector<float> logits;
  const Status st = m.value()->forward(b, kv.value(), pool, &logits);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("blk.0.ffn_up_exps.weight' expert"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("invalid block"), std::string::npos) << st.message();
  // the failure released what it held: the next step fails the same way, no hang
  const Status st2 = m.value()->forward(b, kv.value(), pool, &logits);
  EXPECT_FALSE(st2.is_ok());
  EXPECT_LE(m.value()->expert_cache()->stats().allocated_bytes, lo.mem_budget);
  std::filesystem::remove(dst);
}

}  // namespace
