// PrefixTree against a brute-force model, and the Selector's policies.
#include "router/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace tachyon::router {
namespace {

using Key = std::vector<int32_t>;

size_t match_of(const PrefixTree& t, const Key& k, int w) { return t.match(k, w); }

TEST(PolicyNames, ParseAndName) {
  Policy p;
  ASSERT_TRUE(parse_policy("cache_aware", &p));
  EXPECT_EQ(p, Policy::kCacheAware);
  ASSERT_TRUE(parse_policy("least_load", &p));
  EXPECT_EQ(p, Policy::kLeastLoad);
  ASSERT_TRUE(parse_policy("round_robin", &p));
  EXPECT_EQ(p, Policy::kRoundRobin);
  EXPECT_FALSE(parse_policy("random", &p));
  EXPECT_FALSE(parse_policy("", &p));
  EXPECT_STREQ(policy_name(Policy::kCacheAware), "cache_aware");
  EXPECT_STREQ(policy_name(Policy::kLeastLoad), "least_load");
  EXPECT_STREQ(policy_name(Policy::kRoundRobin), "round_robin");
}

TEST(PrefixTree, EmptyTree) {
  PrefixTree t;
  EXPECT_EQ(t.size(0), 0u);
  EXPECT_EQ(match_of(t, {1, 2, 3}, 0), 0u);
  EXPECT_EQ(match_of(t, {}, 0), 0u);
  t.insert(Key{}, 0);  // an empty key holds nothing
  EXPECT_EQ(t.size(0), 0u);
  t.trim(0, 0);
  t.remove_worker(7);  // unknown worker: no-op
  EXPECT_EQ(t.size(7), 0u);
}

TEST(PrefixTree, SharedPrefixesAndSplits) {
  PrefixTree t;
  t.insert(Key{1, 2, 3, 4, 5}, 0);
  EXPECT_EQ(t.size(0), 5u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5}, 0), 5u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5, 6}, 0), 5u);
  EXPECT_EQ(match_of(t, {1, 2, 7}, 0), 2u);  // partial edge, element by element
  EXPECT_EQ(match_of(t, {2}, 0), 0u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5}, 1), 0u);  // another worker holds nothing

  t.insert(Key{1, 2, 3, 9}, 0);  // splits the edge after 3
  EXPECT_EQ(t.size(0), 6u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5}, 0), 5u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 9, 9}, 0), 4u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 8}, 0), 3u);

  t.insert(Key{1, 2}, 0);  // splits again, covers nothing new
  EXPECT_EQ(t.size(0), 6u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5}, 0), 5u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 9}, 0), 4u);

  t.insert(Key{1, 2, 3, 4, 5, 6, 7}, 0);  // extends a leaf
  EXPECT_EQ(t.size(0), 8u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5, 6, 7, 8}, 0), 7u);
}

TEST(PrefixTree, TwoWorkers) {
  PrefixTree t;
  t.insert(Key{1, 2, 3, 4, 5, 6}, 0);
  t.insert(Key{1, 2, 3}, 1);  // splits worker 0's edge; worker 1 holds only the top half
  EXPECT_EQ(t.size(0), 6u);
  EXPECT_EQ(t.size(1), 3u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5, 6}, 0), 6u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5, 6}, 1), 3u);
  t.insert(Key{1, 2, 3, 4, 7}, 1);
  EXPECT_EQ(t.size(1), 5u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5, 6}, 1), 4u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 7}, 0), 4u);
  const int ws[] = {0, 1, 2};
  auto all = t.match_all(Key{1, 2, 3, 4, 5, 6}, ws);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], 6u);
  EXPECT_EQ(all[1], 4u);
  EXPECT_EQ(all[2], 0u);

  t.remove_worker(0);
  EXPECT_EQ(t.size(0), 0u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 5, 6}, 0), 0u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 7}, 1), 5u);  // worker 1 untouched
  EXPECT_EQ(t.size(1), 5u);
  t.remove_worker(1);
  EXPECT_EQ(t.size(1), 0u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4, 7}, 1), 0u);
  t.insert(Key{1, 2, 3}, 0);  // the emptied tree takes keys again
  EXPECT_EQ(t.size(0), 3u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 4}, 0), 3u);
}

TEST(PrefixTree, MatchAllOddWorkerLists) {
  PrefixTree t;
  t.insert(Key{4, 5, 6}, 3);
  const int ws[] = {3, -1, 3, 0};
  auto all = t.match_all(Key{4, 5, 6, 7}, ws);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0], 3u);
  EXPECT_EQ(all[1], 0u);
  EXPECT_EQ(all[2], 3u);
  EXPECT_EQ(all[3], 0u);
  EXPECT_TRUE(t.match_all(Key{4, 5, 6}, std::span<const int>{}).empty());
}

TEST(PrefixTree, TrimDropsLeastRecentlyUsedLeaves) {
  PrefixTree t;
  const Key a{1, 2, 3, 4}, b{5, 6, 7, 8}, c{9, 10, 11, 12};
  t.insert(a, 0);
  t.insert(b, 0);
  t.insert(c, 0);
  t.insert(a, 0);  // a is now the most recent, b the oldest
  EXPECT_EQ(t.size(0), 12u);
  t.trim(0, 12);  // already within: no-op
  EXPECT_EQ(t.size(0), 12u);
  t.trim(0, 8);
  EXPECT_EQ(t.size(0), 8u);
  EXPECT_EQ(match_of(t, b, 0), 0u);
  EXPECT_EQ(match_of(t, a, 0), 4u);
  EXPECT_EQ(match_of(t, c, 0), 4u);
  t.trim(0, 5);  // whole nodes go: c (older than a) is dropped, ending below the cap
  EXPECT_EQ(t.size(0), 4u);
  EXPECT_EQ(match_of(t, a, 0), 4u);
  EXPECT_EQ(match_of(t, c, 0), 0u);
}

TEST(PrefixTree, TrimKeepsSharedPrefixAndRecentPath) {
  PrefixTree t;
  const Key x{1, 2, 3, 4, 10, 11, 12}, y{1, 2, 3, 4, 20, 21};
  t.insert(x, 0);
  t.insert(y, 0);
  EXPECT_EQ(t.size(0), 9u);
  t.trim(0, 6);  // x's tail (older leaf) goes; the shared prefix stays with y
  EXPECT_EQ(t.size(0), 6u);
  EXPECT_EQ(match_of(t, x, 0), 4u);
  EXPECT_EQ(match_of(t, y, 0), 6u);
  t.trim(0, 3);  // y's tail, then the prefix itself once it is a leaf
  EXPECT_EQ(t.size(0), 0u);
  EXPECT_EQ(match_of(t, y, 0), 0u);
}

TEST(PrefixTree, TrimOneWorkerLeavesOthers) {
  PrefixTree t;
  const Key k{1, 2, 3, 4, 5, 6};
  t.insert(k, 0);
  t.insert(k, 1);
  t.insert(Key{1, 2, 3, 7}, 1);
  t.trim(0, 0);
  EXPECT_EQ(t.size(0), 0u);
  EXPECT_EQ(match_of(t, k, 0), 0u);
  EXPECT_EQ(match_of(t, k, 1), 6u);
  EXPECT_EQ(match_of(t, {1, 2, 3, 7}, 1), 4u);
  EXPECT_EQ(t.size(1), 7u);
}

TEST(PrefixTree, LongKeysAndDeepTrees) {
  // A 30k-element key, and a 12k-node chain (a key's prefixes, longest first, each one
  // splitting the edge; building it costs the sum of the prefix lengths): destruction,
  // removal and trimming must not recurse per node.
  Key k(30000);
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<int32_t>(i * 7919 % 50021);
  const size_t depth = 12000;
  PrefixTree t;
  t.insert(k, 0);
  EXPECT_EQ(t.size(0), 30000u);
  EXPECT_EQ(match_of(t, k, 0), 30000u);
  for (size_t n = depth; n > 0; --n) t.insert(std::span<const int32_t>(k.data(), n), 1);
  EXPECT_EQ(t.size(1), depth);
  EXPECT_EQ(match_of(t, k, 1), depth);
  EXPECT_EQ(match_of(t, k, 0), 30000u);
  // Worker 1 inserted the shorter prefixes last: the longest ones are its oldest leaves.
  t.trim(1, 8000);
  EXPECT_EQ(t.size(1), 8000u);
  EXPECT_EQ(match_of(t, k, 1), 8000u);
  t.remove_worker(0);
  EXPECT_EQ(t.size(0), 0u);
  EXPECT_EQ(match_of(t, k, 0), 0u);
  EXPECT_EQ(match_of(t, k, 1), 8000u);
  t.insert(k, 0);  // back on top of an 8k-node chain
  EXPECT_EQ(t.size(0), 30000u);
  EXPECT_EQ(match_of(t, k, 0), 30000u);
}  // destroyed here with an 8k-deep chain

// Brute-force model: per worker, the keys it holds (whole, or cut to what a trim left).
struct Model {
  std::map<int, std::vector<Key>> keys;

  size_t size(int w) const {
    std::set<Key> prefixes;
    auto it = keys.find(w);
    if (it == keys.end()) return 0;
    for (const Key& k : it->second)
      for (size_t n = 1; n <= k.size(); ++n) prefixes.insert(Key(k.begin(), k.begin() + static_cast<long>(n)));
    return prefixes.size();
  }
  size_t match(const Key& q, int w) const {
    size_t best = 0;
    auto it = keys.find(w);
    if (it == keys.end()) return 0;
    for (const Key& k : it->second) {
      size_t i = 0;
      while (i < k.size() && i < q.size() && k[i] == q[i]) ++i;
      best = std::max(best, i);
    }
    return best;
  }
};

TEST(PrefixTree, RandomOpsMatchBruteForce) {
  std::mt19937 rng(12345);
  const int kWorkers = 4;
  const int ws[kWorkers] = {0, 1, 2, 3};
  auto rand_key = [&](size_t max_len) {
    Key k(rng() % (max_len + 1));
    for (auto& e : k) e = static_cast<int32_t>(rng() % 3);  // small alphabet: prefixes collide
    return k;
  };
  PrefixTree t;
  Model m;
  int n_trims = 0, n_removes = 0;
  for (int op = 0; op < 1000; ++op) {
    int w = static_cast<int>(rng() % kWorkers);
    unsigned r = rng() % 100;
    if (r < 70) {
      Key k = rand_key(10);
      t.insert(k, w);
      m.keys[w].push_back(k);
    } else if (r < 95) {
      size_t max = t.size(w) * (rng() % 4) / 4;
      t.trim(w, max);
      ASSERT_LE(t.size(w), max) << "op " << op;
      // What the tree still holds of each key becomes the model's key.
      for (Key& k : m.keys[w]) k.resize(match_of(t, k, w));
      ++n_trims;
    } else {
      t.remove_worker(w);
      m.keys[w].clear();
      ++n_removes;
    }
    for (int v = 0; v < kWorkers; ++v) ASSERT_EQ(t.size(v), m.size(v)) << "op " << op << " worker " << v;
    for (int q = 0; q < 5; ++q) {
      Key probe = rand_key(12);
      auto all = t.match_all(probe, ws);
      for (int v = 0; v < kWorkers; ++v) {
        size_t expect = m.match(probe, v);
        ASSERT_EQ(t.match(probe, v), expect) << "op " << op << " worker " << v;
        ASSERT_EQ(all[static_cast<size_t>(v)], expect) << "op " << op << " worker " << v;
      }
    }
  }
  EXPECT_GT(n_trims, 100);
  EXPECT_GT(n_removes, 10);
}

// A trim keeps the most recently inserted key whole when it alone fits in the cap.
TEST(PrefixTree, RandomTrimKeepsNewestKey) {
  std::mt19937 rng(777);
  PrefixTree t;
  for (int op = 0; op < 300; ++op) {
    Key k(1 + rng() % 20);
    for (auto& e : k) e = static_cast<int32_t>(rng() % 4);
    t.insert(k, 0);
    size_t cap = k.size() + rng() % 30;
    t.trim(0, cap);
    ASSERT_LE(t.size(0), cap);
    ASSERT_EQ(t.match(k, 0), k.size()) << "op " << op;
  }
}

// ---------------------------------------------------------------------------------------
// Selector

Key text_key(const std::string& s) { return Key(s.begin(), s.end()); }

TEST(Selector, EmptyCandidatesGiveNoWorker) {
  for (Policy p : {Policy::kCacheAware, Policy::kLeastLoad, Policy::kRoundRobin}) {
    PolicyConfig cfg;
    cfg.policy = p;
    Selector s(cfg);
    Decision d = s.choose(text_key("hello"), {});
    EXPECT_EQ(d.worker, -1);
    EXPECT_EQ(d.matched, 0u);
    EXPECT_FALSE(d.by_cache);
    EXPECT_FALSE(d.by_balance);
  }
}

TEST(Selector, CacheAwareIsStickyAndSpreads) {
  Selector s(PolicyConfig{});
  std::vector<Candidate> c = {{0, 0}, {1, 0}, {2, 0}};
  const Key a = text_key("system prompt A: you are a helpful assistant. user: hi");
  const Key b = text_key("a completely different system prompt B. user: hello");
  const Key e = text_key("#3 yet another prefix, nothing shared");
  Decision da = s.choose(a, c);
  EXPECT_EQ(da.worker, 0);  // all empty: smallest tree, ties -> lowest id
  EXPECT_FALSE(da.by_cache);
  EXPECT_EQ(da.matched, 0u);
  Decision db = s.choose(b, c);
  EXPECT_EQ(db.worker, 1);  // no match: the smallest (empty) tree
  Decision de = s.choose(e, c);
  EXPECT_EQ(de.worker, 2);
  for (int i = 0; i < 5; ++i) {
    Decision d = s.choose(a, c);
    EXPECT_EQ(d.worker, 0);
    EXPECT_TRUE(d.by_cache);
    EXPECT_EQ(d.matched, a.size());
  }
  // A continuation of a's conversation follows a.
  Key a2 = a;
  for (char ch : std::string(" assistant: hello! user: more")) a2.push_back(ch);
  Decision d2 = s.choose(a2, c);
  EXPECT_EQ(d2.worker, 0);
  EXPECT_TRUE(d2.by_cache);
  EXPECT_EQ(d2.matched, a.size());
  // Worker 0 gone from the candidates: b's worker is not better than the rest for a.
  std::vector<Candidate> c12 = {{1, 0}, {2, 0}};
  Decision d3 = s.choose(b, c12);
  EXPECT_EQ(d3.worker, 1);
  EXPECT_TRUE(d3.by_cache);
}

TEST(Selector, CacheThreshold) {
  PolicyConfig cfg;
  cfg.cache_threshold = 0.5;
  Selector s(cfg);
  std::vector<Candidate> c = {{0, 0}, {1, 0}};
  s.choose(text_key("0123456789"), c);  // -> 0
  // 4 of 10 elements matched on worker 0 (< 0.5): the smaller tree (worker 1) gets it.
  Decision d = s.choose(text_key("0123abcdef"), c);
  EXPECT_EQ(d.worker, 1);
  EXPECT_FALSE(d.by_cache);
  EXPECT_EQ(d.matched, 0u);
  // 5 of 10 (= 0.5): follows the cache.
  Decision d2 = s.choose(text_key("01234zzzzz"), c);
  EXPECT_EQ(d2.worker, 0);
  EXPECT_TRUE(d2.by_cache);
  EXPECT_EQ(d2.matched, 5u);
}

TEST(Selector, ImbalanceOverridesCacheOnlyWhenAbsAndRel) {
  PolicyConfig cfg;
  cfg.balance_abs = 32;
  cfg.balance_rel = 1.5;
  Selector s(cfg);
  const Key k = text_key("the shared prefix of every request in this test");
  std::vector<Candidate> c = {{0, 0}, {1, 0}};
  ASSERT_EQ(s.choose(k, c).worker, 0);
  // abs exceeded (100 - 10 > 32) and rel exceeded (100 > 15): balance wins.
  c = {{0, 100}, {1, 10}};
  Decision d = s.choose(k, c);
  EXPECT_EQ(d.worker, 1);
  EXPECT_TRUE(d.by_balance);
  EXPECT_FALSE(d.by_cache);
  EXPECT_EQ(d.matched, 0u);  // worker 1 had nothing of k (it has now)
  EXPECT_EQ(s.choose(k, std::vector<Candidate>{{1, 0}}).matched, k.size());

  Selector s2(cfg);
  ASSERT_EQ(s2.choose(k, std::vector<Candidate>{{0, 0}, {1, 0}}).worker, 0);
  // abs only: 200 - 150 = 50 > 32 but 200 <= 1.5 * 150: the cache wins.
  d = s2.choose(k, std::vector<Candidate>{{0, 200}, {1, 150}});
  EXPECT_EQ(d.worker, 0);
  EXPECT_TRUE(d.by_cache);
  EXPECT_FALSE(d.by_balance);
  // rel only: 30 > 1.5 * 1 but 30 - 1 <= 32: the cache wins.
  d = s2.choose(k, std::vector<Candidate>{{0, 30}, {1, 1}});
  EXPECT_EQ(d.worker, 0);
  EXPECT_TRUE(d.by_cache);
  // Both, with a zero minimum: balance; ties among the least loaded -> lowest id.
  d = s2.choose(k, std::vector<Candidate>{{0, 40}, {2, 0}, {1, 0}});
  EXPECT_EQ(d.worker, 1);
  EXPECT_TRUE(d.by_balance);
}

TEST(Selector, SmallestTreeTieBreaks) {
  Selector s(PolicyConfig{});
  // Equal (empty) trees: least loaded first, then lowest id.
  Decision d = s.choose(text_key("abc"), std::vector<Candidate>{{3, 5}, {1, 2}, {2, 2}});
  EXPECT_EQ(d.worker, 1);
  d = s.choose(text_key("xyz"), std::vector<Candidate>{{3, 5}, {1, 2}, {2, 2}});
  EXPECT_EQ(d.worker, 2);  // 1's tree is now bigger
  // An empty key matches nothing: the smallest tree.
  d = s.choose(Key{}, std::vector<Candidate>{{1, 0}, {2, 0}, {3, 0}});
  EXPECT_EQ(d.worker, 3);
  EXPECT_FALSE(d.by_cache);
}

TEST(Selector, LeastLoad) {
  PolicyConfig cfg;
  cfg.policy = Policy::kLeastLoad;
  Selector s(cfg);
  const Key k = text_key("anything");
  EXPECT_EQ(s.choose(k, std::vector<Candidate>{{0, 3}, {1, 1}, {2, 2}}).worker, 1);
  EXPECT_EQ(s.choose(k, std::vector<Candidate>{{4, 1}, {1, 1}, {2, 2}}).worker, 1);
  EXPECT_EQ(s.choose(k, std::vector<Candidate>{{4, 0}, {1, 1}, {2, 2}}).worker, 4);
  Decision d = s.choose(k, std::vector<Candidate>{{7, 9}});
  EXPECT_EQ(d.worker, 7);
  EXPECT_FALSE(d.by_cache);
  EXPECT_FALSE(d.by_balance);
}

TEST(Selector, RoundRobin) {
  PolicyConfig cfg;
  cfg.policy = Policy::kRoundRobin;
  Selector s(cfg);
  const Key k = text_key("anything");
  std::vector<Candidate> c = {{5, 0}, {2, 0}, {9, 0}};
  std::vector<int> got;
  for (int i = 0; i < 6; ++i) got.push_back(s.choose(k, c).worker);
  EXPECT_EQ(got, (std::vector<int>{2, 5, 9, 2, 5, 9}));
  // Last chosen 9; the rotation wraps to the lowest id.
  EXPECT_EQ(s.choose(k, std::vector<Candidate>{{9, 0}, {5, 0}}).worker, 5);
  // 5 was last; 9 is ineligible now: the next eligible after 5 is 11.
  EXPECT_EQ(s.choose(k, std::vector<Candidate>{{2, 0}, {11, 0}}).worker, 11);
  s.remove_worker(11);  // the rotation continues after the removed id
  EXPECT_EQ(s.choose(k, c).worker, 2);
}

TEST(Selector, RemoveWorkerForgetsTree) {
  Selector s(PolicyConfig{});
  const Key k = text_key("a prefix long enough to matter");
  std::vector<Candidate> c = {{0, 0}, {1, 0}};
  ASSERT_EQ(s.choose(k, c).worker, 0);
  ASSERT_EQ(s.choose(k, c).worker, 0);
  s.remove_worker(0);
  s.choose(text_key("zzz"), c);  // -> 0 (smaller tree now), 0 holds only "zzz"
  Decision d = s.choose(k, std::vector<Candidate>{{0, 0}, {1, 0}, {2, 0}});
  EXPECT_FALSE(d.by_cache);
  EXPECT_EQ(d.worker, 1);  // worker 2 would tie with 1 on size 0: lowest id
}

TEST(Selector, TrimsToCap) {
  PolicyConfig cfg;
  cfg.max_elems = 1000;
  Selector s(cfg);
  std::vector<Candidate> c = {{0, 0}};
  std::mt19937 rng(5);
  Key last;
  for (int i = 0; i < 200; ++i) {
    Key k(100);
    for (auto& e : k) e = static_cast<int32_t>(rng());
    s.choose(k, c);
    last = k;
  }
  // The newest key survives every trim (it is the most recently used path).
  Decision d = s.choose(last, c);
  EXPECT_TRUE(d.by_cache);
  EXPECT_EQ(d.matched, last.size());
}

TEST(Selector, LongKey) {
  Selector s(PolicyConfig{});
  Key k(30000);
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<int32_t>(i % 151000);
  std::vector<Candidate> c = {{0, 0}, {1, 0}, {2, 0}};
  EXPECT_EQ(s.choose(k, c).worker, 0);
  Decision d = s.choose(k, c);
  EXPECT_EQ(d.worker, 0);
  EXPECT_EQ(d.matched, 30000u);
  EXPECT_TRUE(d.by_cache);
}

TEST(Selector, ConcurrentChooseIsSafe) {
  Selector s(PolicyConfig{});
  std::vector<Candidate> c = {{0, 0}, {1, 0}, {2, 0}};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&s, &c, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 500; ++i) {
        Key k(50);
        for (auto& e : k) e = static_cast<int32_t>(rng() % 4);
        Decision d = s.choose(k, c);
        ASSERT_GE(d.worker, 0);
        if (i % 100 == 99) s.remove_worker(static_cast<int>(rng() % 3));
      }
    });
  }
  for (auto& th : threads) th.join();
}

// Throughput, printed and not asserted: 3 workers, 2 KB text keys made of a few shared
// system prompts and per-request tails (the tree is capped so the loop exercises trim).
TEST(Selector, ThroughputPrinted) {
  PolicyConfig cfg;
  cfg.max_elems = size_t{1} << 17;  // below the ~540k distinct elements: trims run
  Selector s(cfg);
  std::vector<Candidate> c = {{0, 0}, {1, 0}, {2, 0}};
  std::mt19937 rng(99);
  std::vector<Key> prompts(8, Key(1536));
  for (auto& p : prompts)
    for (auto& e : p) e = static_cast<int32_t>(32 + rng() % 95);
  std::vector<Key> keys(1024);
  for (auto& k : keys) {
    k = prompts[rng() % prompts.size()];
    for (int i = 0; i < 512; ++i) k.push_back(static_cast<int32_t>(32 + rng() % 95));
  }
  const int n = 30000;
  size_t by_cache = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    Decision d = s.choose(keys[static_cast<size_t>(i) % keys.size()], c);
    by_cache += d.by_cache;
  }
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ throughput ] cache_aware choose(): %.0f calls/s (3 workers, 2048-element keys, "
              "%.2f us/call, %zu/%d by cache)\n",
              n / sec, sec * 1e6 / n, by_cache, n);
  EXPECT_GT(by_cache, 0u);
}

}  // namespace
}  // namespace tachyon::router
