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
  kv::RadixCache::Handle path;
  EXPECT_EQ(cache.insert(a.data(), pa.pages.data(), 3, &path), 3);
  EXPECT_EQ(cache.n_nodes(), 3);
  EXPECT_EQ(cache.n_unlocked(), 0);  // held by the inserting request
  EXPECT_EQ(cache.match(b.data(), 6, 3).n_pages(), 1);  // [1,2] shared; [3,9] differs
  EXPECT_EQ(cache.match(a.data(), 6, 3).n_pages(), 3);
  EXPECT_EQ(cache.match(a.data(), 6, 2).n_pages(), 2);
  // locked nodes are not evicted
  EXPECT_EQ(cache.evict(10), 0);
  auto shared = cache.acquire(cache.match(b.data(), 6, 3), b.data());  // a second request on [1,2]
  EXPECT_EQ(shared.handle.n_pages(), 1);
  EXPECT_EQ(shared.pages_from[kv::kL1], 1);
  EXPECT_EQ(cache.page(shared.handle, 0), pa.pages[0]);
  cache.release(&path);
  EXPECT_EQ(cache.n_unlocked(), 2);  // [1,2] still held by the second request
  cache.release(&shared.handle);
  EXPECT_EQ(cache.n_unlocked(), 3);
  pa.clear(pool.value());  // the tree still holds the pages
  EXPECT_EQ(pool.value().n_free(), 5);
  EXPECT_EQ(cache.evict(2), 2);  // leaves first
  EXPECT_EQ(cache.n_nodes(), 1);
  EXPECT_EQ(cache.n_unlocked(), 1);
  EXPECT_EQ(cache.match(a.data(), 6, 3).n_pages(), 1);
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

// Sliding-window models (Gemma 3): the KV of the window layers lives in a local arena
// of fewer slots than pages, and each sequence gives up the slots behind its window.
namespace {

const std::string kGemma = kData + "/models/mini-gemma3-F16.gguf";  // window 16, 4 of 6 layers local

std::unique_ptr<Engine> make_gemma(int kv_pages, int local_slots, int budget = 64) {
  EngineConfig c;
  c.model_path = kGemma;
  c.n_threads = 2;
  c.n_ctx = 512;
  c.kv_pages = kv_pages;
  c.kv_local_slots = local_slots;
  c.max_batch_tokens = budget;
  auto e = Engine::create(c);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return e.is_ok() ? std::move(e.value()) : nullptr;
}

std::vector<int32_t> words_prompt(Engine& e, int seed, size_t n_tokens) {
  std::string t;
  for (int k = 0; k < 400; ++k) t += "w" + std::to_string(seed * 1000 + k * 7) + " ";
  auto p = prompt_of(e, t);
  EXPECT_GE(p.size(), n_tokens);
  p.resize(n_tokens);
  return p;
}

// Waits until the engine has taken its end-of-iteration stats after the last request.
EngineStats idle_stats(Engine& e) {
  EngineStats s;
  for (int i = 0; i < 100; ++i) {
    s = e.stats();
    if (s.running == 0 && s.kv_local_slots_free == s.kv_local_slots_total) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return s;
}

}  // namespace

TEST(EngineSlidingWindow, TinyLocalArenaGivesTheSameTokensAndHitsTheCache) {
  // Reference: one local slot per page (as before). Small: 16 slots for 64 pages, one
  // more than a sequence needs (window 16 + two 64-key tiles + a 64-token prefill chunk).
  auto ref = make_gemma(64, 0);
  auto small = make_gemma(64, 16);
  ASSERT_TRUE(ref && small);
  EXPECT_EQ(ref->stats().kv_local_slots_total, 64);
  EXPECT_EQ(small->stats().kv_local_slots_total, 16);
  EXPECT_LT(small->stats().kv_bytes, ref->stats().kv_bytes);
  // 2 global layers of 64 pages + 4 local layers of 17 slots (16 + the NaN slot), 4 KiB K+V
  // per layer and page (1 KV head, head dim 128, 16 tokens, f16)
  EXPECT_EQ(small->stats().kv_bytes, (2u * 64 + 4u * 17) * 8192);
  EXPECT_EQ(ref->stats().kv_bytes, (2u * 64 + 4u * 65) * 8192);

  const auto p = words_prompt(*ref, 1, 300);
  const Output a = collect(ref->submit(greedy(p, 40)).value());
  ASSERT_EQ(a.finish.finish_reason, "length");
  ASSERT_EQ(a.tokens.size(), 40u);
  // Even with a slot per page, a sequence holds only its window's: 340 tokens span 22
  // pages, the window and the prefill chunk at most 15.
  EXPECT_LE(ref->stats().kv_local_slots_peak, 15);
  EXPECT_GE(ref->stats().kv_local_slots_peak, 8);

  const Output b = collect(small->submit(greedy(p, 40)).value());
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.finish.cached_tokens, 0);
  auto st = idle_stats(*small);
  EXPECT_LE(st.kv_local_slots_peak, 15);
  EXPECT_EQ(st.preemptions, 0u);
  EXPECT_EQ(st.kv_local_slots_free, 16);  // every local reference given back

  // The same prompt again: the prompt's last window is still in dropped-but-attached
  // slots, so all whole pages but the last token's are served from the cache.
  const Output c = collect(small->submit(greedy(p, 40)).value());
  EXPECT_EQ(c.finish.cached_tokens, 288);
  EXPECT_EQ(c.tokens, a.tokens);

  // A prompt sharing only the first 100 tokens: the pages holding them lost their window
  // KV to later pages in the small arena (the hit shrinks, here to nothing), not in the
  // reference one; the tokens are those of an engine with an empty cache either way.
  auto q = p;
  const auto tail = words_prompt(*ref, 2, 150);
  q.resize(100);
  q.insert(q.end(), tail.begin() + 1, tail.end());
  auto fresh = make_gemma(64, 0);
  ASSERT_TRUE(fresh);
  const Output q0 = collect(fresh->submit(greedy(q, 30)).value());
  EXPECT_EQ(q0.finish.cached_tokens, 0);
  const Output q_ref = collect(ref->submit(greedy(q, 30)).value());
  EXPECT_EQ(q_ref.finish.cached_tokens, 96);
  EXPECT_EQ(q_ref.tokens, q0.tokens);
  const Output q_small = collect(small->submit(greedy(q, 30)).value());
  EXPECT_LT(q_small.finish.cached_tokens, 96);
  EXPECT_EQ(q_small.tokens, q0.tokens);
  EXPECT_EQ(idle_stats(*small).kv_local_slots_free, 16);
}

// Three requests at once in an arena that holds fewer than their windows: slots run out
// before pages, sequences are preempted and recomputed, and every one gives the tokens
// it gives alone. The budget-derived sizing (no --kv-pages) gives the same tokens too.
TEST(EngineSlidingWindow, ConcurrentRequestsShareTheLocalArena) {
  auto alone = make_gemma(64, 0);
  auto tight = make_gemma(64, 16);
  auto sized = make_gemma(0, 0, 512);
  ASSERT_TRUE(alone && tight && sized);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 3; ++i) prompts.push_back(words_prompt(*alone, 10 + i, 120 + 50 * i));
  std::vector<Output> ref;
  for (auto& p : prompts) ref.push_back(collect(alone->submit(greedy(p, 30)).value()));
  for (Engine* e : {tight.get(), sized.get()}) {
    std::vector<std::shared_ptr<RequestHandle>> hs;
    for (auto& p : prompts) hs.push_back(e->submit(greedy(p, 30)).value());
    for (size_t i = 0; i < hs.size(); ++i) {
      const Output o = collect(hs[i]);
      EXPECT_EQ(o.finish.finish_reason, "length");
      EXPECT_EQ(o.tokens, ref[i].tokens) << i;
    }
    const auto st = idle_stats(*e);
    EXPECT_EQ(st.kv_local_slots_free, st.kv_local_slots_total);
    EXPECT_LE(st.kv_local_slots_peak, st.kv_local_slots_total);
  }
  EXPECT_GT(tight->stats().preemptions, 0u);
  // Sizing from the memory of 4 contexts: the local arena has fewer slots than pages,
  // so more pages fit than the 4 * 33 a full page per token would allow.
  const auto ss = sized->stats();
  EXPECT_LT(ss.kv_local_slots_total, ss.kv_pages_total);
  EXPECT_GT(ss.kv_pages_total, 4 * 33);
  EXPECT_LE(ss.kv_bytes, 4u * 33 * 6 * 8192 + (size_t{2} << 20));
  std::printf("derived: %d pages, %d local slots, %zu KV bytes; tight arena preemptions %llu\n", ss.kv_pages_total,
              ss.kv_local_slots_total, ss.kv_bytes, static_cast<unsigned long long>(tight->stats().preemptions));
}

TEST(EngineSlidingWindow, RejectsAnArenaSmallerThanOneWindow) {
  EngineConfig c;
  c.model_path = kGemma;
  c.n_ctx = 512;
  c.kv_pages = 64;
  c.kv_local_slots = 8;
  c.max_batch_tokens = 64;
  auto e = Engine::create(c);
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("8 local KV slots cannot hold"), std::string::npos) << e.status().message();
}
