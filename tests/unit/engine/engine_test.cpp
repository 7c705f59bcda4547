#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "engine/text_stream.h"
#include "kv/kv_pool.h"
#include "kv/radix_cache.h"
#include "tokenizer/tokenizer.h"

using namespace tachyon;
using namespace tachyon::engine;

namespace {

const std::string kData = TACHYON_SHARED_DATA;
const std::string kModel = kData + "/models/mini-qwen3-Q8_0.gguf";

struct Output {
  std::vector<int32_t> tokens;
  std::string text;
  Event finish;
};

Output collect(const std::shared_ptr<RequestHandle>& h) {
  Output o;
  for (;;) {
    std::vector<Event> ev;
    h->wait_drain(&ev, 1000);
    for (auto& e : ev) {
      o.text += e.text;
      if (e.kind == Event::Kind::kToken) o.tokens.push_back(e.token);
      else {
        o.finish = e;
        return o;
      }
    }
  }
}

GenerateRequest greedy(const std::vector<int32_t>& prompt, int n) {
  GenerateRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = n;
  return r;
}

std::unique_ptr<Engine> make_engine(int kv_pages = 0, int budget = 512) {
  EngineConfig c;
  c.model_path = kModel;
  c.n_threads = 2;
  c.n_ctx = 512;
  c.kv_pages = kv_pages;
  c.max_batch_tokens = budget;
  auto e = Engine::create(c);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return std::move(e.value());
}

std::vector<int32_t> prompt_of(Engine& e, const std::string& text) { return e.tokenizer().encode(text, true, false); }

}  // namespace

TEST(TextStream, HoldsBackPossibleStopStrings) {
  EXPECT_EQ(TextStream::holdback("hello wor", {"world"}), 3u);
  EXPECT_EQ(TextStream::holdback("hello", {"xyz"}), 0u);
  EXPECT_EQ(TextStream::holdback("ab", {"abc", "b"}), 2u);
}

TEST(RadixCache, MatchInsertLockEvict) {
  kv::KvConfig cfg{1, 1, 4, 4, 2, 8};
  auto pool = kv::KvPool::create(cfg);
  kv::RadixCache cache(pool.value());
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, 9, 9, 9};
  kv::PageTable pa;
  pa.reserve(pool.value(), 6);
  std::vector<kv::RadixCache::Node*> path;
  cache.insert(a.data(), pa.pages.data(), 3, &path);
  EXPECT_EQ(cache.n_nodes(), 3);
  EXPECT_EQ(cache.n_unlocked(), 0);  // held by the inserting request
  EXPECT_EQ(cache.match(b.data(), 6, 3).size(), 1u);  // [1,2] shared; [3,9] differs
  EXPECT_EQ(cache.match(a.data(), 6, 3).size(), 3u);
  EXPECT_EQ(cache.match(a.data(), 6, 2).size(), 2u);
  // locked nodes are not evicted
  EXPECT_EQ(cache.evict(10), 0);
  auto shared = cache.match(b.data(), 6, 3);
  cache.lock(shared);  // a second request on [1,2]
  cache.unlock(path);
  EXPECT_EQ(cache.n_unlocked(), 2);  // [1,2] still held by the second request
  cache.unlock(shared);
  EXPECT_EQ(cache.n_unlocked(), 3);
  pa.clear(pool.value());  // the tree still holds the pages
  EXPECT_EQ(pool.value().n_free(), 5);
  EXPECT_EQ(cache.evict(2), 2);  // leaves first
  EXPECT_EQ(cache.n_nodes(), 1);
  EXPECT_EQ(cache.n_unlocked(), 1);
  EXPECT_EQ(cache.match(a.data(), 6, 3).size(), 1u);
  EXPECT_EQ(cache.evict(10), 1);
  EXPECT_EQ(pool.value().n_free(), 8);
}

TEST(Engine, GreedyOutputIsIndependentOfConcurrency) {
  auto e = make_engine();
  const std::vector<std::string> texts = {"Once upon a time", "The quick brown fox", "Hello, world!", "def f(x):",
                                          "A B C D E F G",   "1 2 3 4 5",           "In the beginning", "Zebra"};
  std::vector<Output> alone;
  for (const auto& t : texts) alone.push_back(collect(e->submit(greedy(prompt_of(*e, t), 12)).value()));
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (const auto& t : texts) hs.push_back(e->submit(greedy(prompt_of(*e, t), 12)).value());
  for (size_t i = 0; i < texts.size(); ++i) {
    const Output o = collect(hs[i]);
    EXPECT_EQ(o.tokens, alone[i].tokens) << texts[i];
    EXPECT_EQ(o.text, alone[i].text);
    EXPECT_EQ(o.finish.finish_reason, "length");
    EXPECT_EQ(o.finish.completion_tokens, 12);
  }
  const auto st = e->stats();
  EXPECT_EQ(st.requests_finished, 16u);
}

// Concurrent streams' notify callbacks reach the dispatcher together, one batch per
// engine iteration, and every event still arrives.
TEST(Engine, NotifyDispatcherBatchesTheStepsCallbacks) {
  auto e = make_engine();
  std::mutex mu;
  std::vector<size_t> batch_sizes;
  e->set_notify_dispatcher([&](NotifyBatch&& b) {
    {
      std::lock_guard<std::mutex> lk(mu);
      batch_sizes.push_back(b.size());
    }
    for (auto& fn : b) fn();
  });
  const std::vector<std::string> texts = {"Once upon a time", "The quick brown fox", "Hello, world!", "def f(x):"};
  std::vector<std::shared_ptr<RequestHandle>> hs;
  std::atomic<int> notified{0};
  for (const auto& t : texts) {
    hs.push_back(e->submit(greedy(prompt_of(*e, t), 32)).value());  // long enough to overlap
    hs.back()->set_notify([&] { ++notified; });
  }
  for (auto& h : hs) {
    const Output o = collect(h);
    EXPECT_EQ(o.finish.finish_reason, "length");
    EXPECT_EQ(o.tokens.size(), 32u);
  }
  e->set_notify_dispatcher(nullptr);
  std::lock_guard<std::mutex> lk(mu);
  size_t via_dispatcher = 0, largest = 0;
  for (size_t n : batch_sizes) {
    via_dispatcher += n;
    largest = std::max(largest, n);
  }
  EXPECT_GE(largest, 2u);                           // streams decoding together share a batch
  EXPECT_LT(batch_sizes.size(), via_dispatcher);    // fewer hand-overs than callbacks
  // every callback but set_notify's own (events that came before it: at most one per
  // handle) went through the dispatcher
  EXPECT_GE(static_cast<size_t>(notified.load()), via_dispatcher);
  EXPECT_LE(static_cast<size_t>(notified.load()), via_dispatcher + hs.size());
}

TEST(Engine, PrefixCacheReusesPagesAndKeepsResults) {
  auto e = make_engine();
  std::string sys = "You are a helpful assistant. ";
  for (int i = 0; i < 12; ++i) sys += "Rule " + std::to_string(i) + ": be precise and kind. ";
  const auto p1 = prompt_of(*e, sys + "Question one?");
  const auto p2 = prompt_of(*e, sys + "Another question?");
  const Output a = collect(e->submit(greedy(p1, 8)).value());
  EXPECT_EQ(a.finish.cached_tokens, 0);
  const Output b = collect(e->submit(greedy(p2, 8)).value());
  EXPECT_GT(b.finish.cached_tokens, 64);
  EXPECT_LT(b.finish.cached_tokens, static_cast<int>(p2.size()));
  // same prompt again: everything but the last page is cached, output identical
  const Output c = collect(e->submit(greedy(p1, 8)).value());
  EXPECT_GE(c.finish.cached_tokens, static_cast<int>(p1.size()) - 16);
  EXPECT_EQ(c.tokens, a.tokens);
  EXPECT_GT(e->stats().cached_prompt_tokens, 100u);
}

TEST(Engine, StopStringsAndEosAndLength) {
  auto e = make_engine();
  const auto p = prompt_of(*e, "Once upon a time");
  const Output full = collect(e->submit(greedy(p, 20)).value());
  ASSERT_GT(full.text.size(), 6u);
  GenerateRequest r = greedy(p, 20);
  const std::string stop = full.text.substr(3, 3);
  r.stop = {stop};
  const Output s = collect(e->submit(r).value());
  EXPECT_EQ(s.finish.finish_reason, "stop");
  EXPECT_EQ(s.text, full.text.substr(0, full.text.find(stop)));
  GenerateRequest z = greedy(p, 0);
  const Output zo = collect(e->submit(z).value());
  EXPECT_EQ(zo.finish.finish_reason, "length");
  EXPECT_TRUE(zo.tokens.empty());
}

TEST(Engine, CancelFreesKvAndRejectsBadRequests) {
  auto e = make_engine();
  const int total = e->stats().kv_pages_total;
  auto h = e->submit(greedy(prompt_of(*e, "Tell me a long story"), 400)).value();
  std::vector<Event> ev;
  while (ev.empty()) h->wait_drain(&ev, 100);
  h->cancel();
  const Output o = collect(h);
  EXPECT_EQ(o.finish.finish_reason, "cancelled");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto st = e->stats();
  EXPECT_EQ(st.kv_pages_free, total);  // cancelled sequences do not keep pages
  auto bad = e->submit(greedy(std::vector<int32_t>(600, 5), 10));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message().rfind("context_length_exceeded", 0), 0u);
  EXPECT_FALSE(e->submit(greedy({}, 5)).is_ok());
  EXPECT_FALSE(e->submit(greedy({1, 999999}, 5)).is_ok());
}

// Prompts that wait together are prefilled shortest first, and once a step holds
// prefill_batch_target (64) prompt tokens the others wait for the next step: the short
// prompt's first token comes a whole step before the long one's (sharing the step's
// budget would give both their first token at the end of one step).
TEST(Engine, ShortPromptsArePrefilledFirst) {
  auto e = make_engine();
  auto words = [&](int n, int seed) {
    std::string t;
    for (int k = 0; k < n; ++k) t += "w" + std::to_string(seed * 1000 + k) + " ";
    return prompt_of(*e, t);
  };
  const auto busy_p = words(90, 1), long_p = words(70, 2), short_p = words(15, 3);
  ASSERT_LT(busy_p.size() + 2, 512u);
  ASSERT_GT(long_p.size(), 300u);
  ASSERT_GE(short_p.size(), 64u);
  ASSERT_LT(short_p.size(), 150u);
  auto busy = e->submit(greedy(busy_p, 1)).value();  // keeps the engine in a step meanwhile
  auto hl = e->submit(greedy(long_p, 1)).value();
  auto hs = e->submit(greedy(short_p, 1)).value();
  const Event fl = collect(hl).finish, fs = collect(hs).finish;
  collect(busy);
  // engine-side times (submit -> admitted -> first token), free of this thread's polling
  const double ttft_long = fl.queue_ms + fl.prompt_ms, ttft_short = fs.queue_ms + fs.prompt_ms;
  EXPECT_GT(ttft_long - ttft_short, 0.3 * fl.prompt_ms)
      << "short " << fs.queue_ms << "+" << fs.prompt_ms << " ms, long " << fl.queue_ms << "+" << fl.prompt_ms << " ms";
}

// A KV pool that holds little more than one context forces preemption; every request
// still completes, with the same tokens as alone.
TEST(Engine, PreemptionRecomputesAndCompletes) {
  auto e = make_engine(/*kv_pages=*/34, /*budget=*/64);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    std::string t;
    for (int k = 0; k < 30; ++k) t += "word" + std::to_string(i * 100 + k) + " ";
    prompts.push_back(prompt_of(*e, t));
  }
  std::vector<Output> alone;
  for (auto& p : prompts) alone.push_back(collect(e->submit(greedy(p, 40)).value()));
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (auto& p : prompts) hs.push_back(e->submit(greedy(p, 40)).value());
  for (size_t i = 0; i < hs.size(); ++i) {
    const Output o = collect(hs[i]);
    EXPECT_EQ(o.finish.finish_reason, "length");
    EXPECT_EQ(o.tokens, alone[i].tokens) << i;
  }
  std::printf("preemptions: %llu\n", static_cast<unsigned long long>(e->stats().preemptions));
}
