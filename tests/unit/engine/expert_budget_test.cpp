// The serving engine under --mem-budget (EngineConfig::mem_budget): concurrent requests
// on a MoE model, batched together, give the tokens they give with every expert resident,
// and the engine's stats carry the expert cache's figures (what /metrics exports).
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "model/model.h"

using namespace tachyon;
using namespace tachyon::engine;

namespace {

const std::string kModel = std::string(TACHYON_SHARED_DATA) + "/models/mini-qwen3moe-Q4_K_M.gguf";

std::vector<std::vector<int32_t>> run_all(Engine& e, int n_req) {
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (int i = 0; i < n_req; ++i) {
    GenerateRequest r;
    r.prompt = {1};
    for (int k = 1; k < 10 + 3 * i; ++k) r.prompt.push_back(100 + (k * 37 + i * 11) % 300);
    r.sampling.temperature = 0;
    r.max_tokens = 12;
    auto h = e.submit(r);
    EXPECT_TRUE(h.is_ok());
    hs.push_back(h.value());
  }
  std::vector<std::vector<int32_t>> out(n_req);
  for (int i = 0; i < n_req; ++i) {
    for (bool done = false; !done;) {
      std::vector<Event> ev;
      hs[i]->wait_drain(&ev, 1000);
      for (auto& x : ev) {
        if (x.kind == Event::Kind::kToken) out[i].push_back(x.token);
        else done = true;
      }
    }
  }
  return out;
}

std::unique_ptr<Engine> make(size_t budget) {
  EngineConfig c;
  c.model_path = kModel;
  c.n_threads = 2;
  c.n_ctx = 128;
  c.mem_budget = budget;
  auto e = Engine::create(c);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return std::move(e.value());
}

}  // namespace

TEST(ExpertBudgetEngine, ConcurrentRequestsGiveTheResidentTokens) {
  size_t unit = 0;
  {
    model::LoadOptions lo;
    lo.mem_budget = size_t{1} << 40;
    auto m = model::Model::load(kModel, lo);
    ASSERT_TRUE(m.is_ok());
    const auto s = m.value()->expert_cache()->stats();
    unit = s.expert_bytes / static_cast<size_t>(s.units);
  }
  auto plain = make(0);
  const auto want = run_all(*plain, 4);
  EXPECT_FALSE(plain->stats().has_expert_cache);
  auto small = make(3 * unit);
  EXPECT_EQ(run_all(*small, 4), want);
  const EngineStats s = small->stats();
  ASSERT_TRUE(s.has_expert_cache);
  EXPECT_GT(s.experts.lookups, 0u);
  EXPECT_GT(s.experts.bytes_read, 0u);
  EXPECT_LE(s.experts.allocated_bytes, 3 * unit);
  EXPECT_EQ(s.experts.budget_bytes, 3 * unit);
}
