// The engine over the KV cache tiers: a request served from the pool (L1), from host RAM
// (L2) and from disk after a restart (L3) gives the greedy output it gives cold, and the
// disk cache is never reused across a changed model file, KV dtype or page size.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

using namespace tachyon;
using namespace tachyon::engine;

namespace {

const std::string kData = TACHYON_SHARED_DATA;
const std::string kModel = kData + "/models/mini-llama-F16.gguf";

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/tachyon_engine_tiers_XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct Out {
  std::vector<int32_t> tokens;
  Event finish;
};

Out run(Engine& e, const std::vector<int32_t>& prompt, int n = 12) {
  GenerateRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = n;
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

EngineConfig config(const std::string& model, const std::string& dir, int64_t host_bytes) {
  EngineConfig c;
  c.model_path = model;
  c.n_threads = 1;
  c.n_ctx = 256;
  c.kv_pages = 17;  // one context: a second long prompt evicts the first
  c.kv_host_bytes = host_bytes;
  c.kv_disk_dir = dir;
  c.kv_write_through = 0;
  return c;
}

std::unique_ptr<Engine> make(const EngineConfig& c) {
  auto e = Engine::create(c);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return e.is_ok() ? std::move(e.value()) : nullptr;
}

std::vector<int32_t> words(Engine& e, const std::string& seed, int n_words) {
  std::string text;
  for (int i = 0; i < n_words; ++i) text += seed + std::to_string(i * 7919 % 1000) + " ";
  return e.tokenizer().encode(text, true, false);
}

}  // namespace

TEST(KvTiers, GreedyOutputIsTheSameFromEveryTier) {
  TempDir dir;
  std::vector<int32_t> p, q;
  Out cold;
  {
    auto ref = make(config(kModel, "", 0));  // no tiers at all
    p = words(*ref, "alpha", 20);
    q = words(*ref, "omega", 45);
    ASSERT_GE(p.size(), 96u);
    ASSERT_LT(q.size() + 12, 250u);
    cold = run(*ref, p);
    EXPECT_EQ(cold.finish.cached_tokens, 0);
  }
  {
    auto e = make(config(kModel, dir.path, 64 << 20));
    EXPECT_EQ(run(*e, p).tokens, cold.tokens);  // cold on this engine
    const Out l1 = run(*e, p);
    EXPECT_EQ(l1.tokens, cold.tokens);
    EXPECT_GT(l1.finish.cached_tokens_tier[0], 0);
    run(*e, q);  // needs most of the pool: p's pages go to host RAM
    const Out l2 = run(*e, p);
    EXPECT_EQ(l2.tokens, cold.tokens);
    EXPECT_GT(l2.finish.cached_tokens_tier[1], 0) << "l1 " << l2.finish.cached_tokens_tier[0];
    const auto st = e->stats();
    EXPECT_GT(st.kv_tiers.demotions[kv::kL2], 0u);
    EXPECT_GT(st.kv_tiers.promotions[kv::kL2], 0u);
  }  // shutdown writes the cached pages to disk
  {
    auto e = make(config(kModel, dir.path, 64 << 20));
    const Out l3 = run(*e, p);
    EXPECT_EQ(l3.tokens, cold.tokens);
    EXPECT_EQ(l3.finish.cached_tokens_tier[2], l3.finish.cached_tokens);
    EXPECT_GE(l3.finish.cached_tokens, static_cast<int>(p.size()) / 16 * 16 - 16);
    EXPECT_GT(e->stats().kv_disk.reads, 0u);
  }
  // Another KV dtype, another page size: nothing from the disk.
  {
    auto c = config(kModel, dir.path, 0);
    c.kv_type = kv::KvType::kQ8_0;
    auto e = make(c);
    EXPECT_EQ(run(*e, p).finish.cached_tokens, 0);
  }
  {
    auto c = config(kModel, dir.path, 0);
    c.page_size = 32;
    c.kv_pages = 12;
    auto e = make(c);
    EXPECT_EQ(run(*e, p).finish.cached_tokens, 0);
  }
  // The same model bytes under another path: a hit (the key is the content, not the name).
  const std::string copy = dir.path + "/copy.gguf";
  std::filesystem::copy_file(kModel, copy);
  {
    auto e = make(config(copy, dir.path, 0));
    EXPECT_GT(run(*e, p).finish.cached_tokens_tier[2], 0);
  }
  // One weight changed (the lowest bit of one f16 value of a K projection): a miss.
  {
    auto f = gguf::File::open(copy);
    ASSERT_TRUE(f.is_ok());
    const gguf::TensorInfo* t = f.value()->tensor("blk.0.attn_k.weight");
    ASSERT_NE(t, nullptr);
    const uint64_t at = f.value()->data_offset() + t->offset + 2 * 17;
    f.value().reset();
    std::fstream io(copy, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(at));
    char c;
    io.read(&c, 1);
    c = static_cast<char>(c ^ 1);
    io.seekp(static_cast<std::streamoff>(at));
    io.write(&c, 1);
  }
  {
    auto e = make(config(copy, dir.path, 0));
    EXPECT_EQ(run(*e, p).finish.cached_tokens, 0);
  }
}

TEST(KvTiers, AnUnwritableDiskDegradesToRam) {
  TempDir dir;
  const std::string file = dir.path + "/not-a-dir";
  std::ofstream(file) << "x";
  auto e = make(config(kModel, file + "/kv", 64 << 20));
  ASSERT_NE(e, nullptr);
  const auto p = words(*e, "beta", 30);
  const Out a = run(*e, p), b = run(*e, p);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_GT(b.finish.cached_tokens, 0);
  EXPECT_FALSE(e->stats().kv_disk.writable);
}
