// KV transfer between two engines (prefill/decode disaggregation): the decode engine,
// given the prefill engine's exported pages, serves the prompt from its cache and gives
// the same greedy output as an engine that computed everything itself; a transfer from a
// differently configured engine, or to an engine without transfer, is refused.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "engine/engine.h"

using namespace tachyon;
using namespace tachyon::engine;

namespace {

const std::string kModel = std::string(TACHYON_SHARED_DATA) + "/models/mini-llama-F16.gguf";

struct Out {
  std::vector<int32_t> tokens;
  Event finish;
};

Out run(Engine& e, const std::vector<int32_t>& prompt, int n, bool export_kv = false) {
  GenerateRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = n;
  r.export_kv = export_kv;
  auto h = e.submit(r).value();
  Out o;
  for (;;) {
    std::vector<Event> ev;
    h->wait_drain(&ev, 1000);
    for (auto& x : ev) {
      if (x.kind == Event::Kind::kToken) {
        o.tokens.push_back(x.token);
      } else {
        o.finish = x;
        return o;
      }
    }
  }
}

Result<KvImportResult> import(Engine& e, const std::string& bytes) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<KvImportResult>> got;
  e.import_kv(bytes, [&](Result<KvImportResult> r) {
    std::lock_guard<std::mutex> lk(mu);
    got.emplace(std::move(r));
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return got.has_value(); });
  return std::move(*got);
}

std::unique_ptr<Engine> make(bool transfer, int n_ctx = 256) {
  EngineConfig c;
  c.model_path = kModel;
  c.n_threads = 1;
  c.n_ctx = n_ctx;
  c.kv_transfer = transfer;
  auto e = Engine::create(c);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return std::move(e.value());
}

std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(100 + (i * 37) % 200);
  return p;
}

}  // namespace

TEST(KvTransferEngine, DecodeEngineServesTheImportedPromptWithTheSameOutput) {
  auto prefill = make(true), decode = make(true), plain = make(false);
  const auto p = prompt(75);  // 4 full pages of 16 and 11 tokens
  const Out want = run(*plain, p, 16);
  const Out pre = run(*prefill, p, 1, /*export_kv=*/true);
  ASSERT_TRUE(pre.finish.kv_export) << pre.finish.kv_export_error;
  EXPECT_EQ(pre.finish.kv_export_pages, 4);
  auto r = import(*decode, *pre.finish.kv_export);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->pages, 4);
  EXPECT_EQ(r->added, 4);
  const Out got = run(*decode, p, 16);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.finish.cached_tokens, 64);
  EXPECT_EQ(got.finish.cached_tokens_tier[1], 64);  // from host RAM, where the import put them
  // The same transfer again: nothing new.
  auto again = import(*decode, *pre.finish.kv_export);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->present, 4);
  const auto st = decode->stats();
  EXPECT_EQ(st.kv_imports, 2u);
  EXPECT_EQ(st.kv_imported_pages, 4u);
  EXPECT_EQ(prefill->stats().kv_exported_pages, 4u);
}

TEST(KvTransferEngine, ForeignOrDisabledTransfersAreRefused) {
  auto prefill = make(true), other_ctx = make(true, 512), off = make(false);
  const auto p = prompt(40);
  const Out pre = run(*prefill, p, 1, true);
  ASSERT_TRUE(pre.finish.kv_export);
  auto r = import(*other_ctx, *pre.finish.kv_export);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(r.status().message().find("another root key"), std::string::npos) << r.status().message();
  auto r2 = import(*off, *pre.finish.kv_export);
  ASSERT_FALSE(r2.is_ok());
  EXPECT_EQ(r2.status().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(other_ctx->stats().kv_import_rejected, 1u);
  // export without transfer: the request finishes, with the reason instead of bytes
  const Out no = run(*off, p, 1, true);
  EXPECT_FALSE(no.finish.kv_export);
  EXPECT_FALSE(no.finish.kv_export_error.empty());
  // garbage
  auto g = import(*prefill, "not a transfer");
  EXPECT_FALSE(g.is_ok());
}
