// Where the router sends a request: the worker-selection policies of `tachyon router`.
//
// cache_aware (SGLang router's rule, here on an approximate radix tree per worker of what
// the router sent it): let load = requests in flight. When the load is imbalanced -
// max - min > balance_abs and max > balance_rel * min, over the eligible workers - the
// least-loaded worker gets the request (ties: the lowest id). Otherwise the worker whose
// tree shares the longest prefix with the request's key gets it if that match covers at
// least cache_threshold of the key; else the worker whose tree is smallest (the most room
// for a new prefix; ties: least loaded, then lowest id). The chosen worker's tree then
// records the key.
// least_load: the least-loaded eligible worker (ties: lowest id). round_robin: the next
// eligible worker after the last one chosen.
//
// Keys are sequences of int32: token ids when the router has a tokenizer, else the
// request text's bytes. Trees are bounded: each worker's tree keeps at most max_elems
// elements; beyond it the least recently used leaves are dropped (what the worker itself
// has likely evicted too).
//
// Thread-safe (one mutex); choose() is O(key length) plus O(workers).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tachyon::router {

enum class Policy { kCacheAware, kLeastLoad, kRoundRobin };
// "cache_aware" | "least_load" | "round_robin"; false for anything else.
bool parse_policy(std::string_view s, Policy* out);
const char* policy_name(Policy p);

struct PolicyConfig {
  Policy policy = Policy::kCacheAware;
  double cache_threshold = 0.5;  // matched fraction of the key needed to follow the cache
  int balance_abs = 32;          // imbalance: max - min load above this ...
  double balance_rel = 1.5;      // ... and max above this times min
  size_t max_elems = size_t{1} << 22;  // per worker tree
};

// One eligible worker as the caller sees it now.
struct Candidate {
  int id = 0;        // stable worker id (the caller's)
  int load = 0;      // requests in flight
};

struct Decision {
  int worker = -1;        // -1: no candidate
  size_t matched = 0;     // elements of the key the chosen worker's tree already had
  bool by_cache = false;  // chosen for its cached prefix (cache_aware)
  bool by_balance = false;  // chosen because loads were imbalanced (cache_aware)
};

// A radix tree over int32 sequences recording, per node, which workers were sent a key
// through it and when (for LRU trimming). Exposed for tests.
class PrefixTree {
 public:
  PrefixTree();
  ~PrefixTree();
  PrefixTree(const PrefixTree&) = delete;
  PrefixTree& operator=(const PrefixTree&) = delete;
  void insert(std::span<const int32_t> key, int worker);
  // Longest prefix of key that worker's tree holds (elements).
  size_t match(std::span<const int32_t> key, int worker) const;
  // For every worker id in `workers`, the longest prefix it holds (one walk).
  std::vector<size_t> match_all(std::span<const int32_t> key, std::span<const int> workers) const;
  size_t size(int worker) const;  // elements attributed to worker
  void remove_worker(int worker);
  // Drops the worker's least recently used leaves until its size <= max_elems.
  void trim(int worker, size_t max_elems);

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  uint64_t clock_ = 0;
  std::vector<size_t> sizes_;  // by worker id
};

class Selector {
 public:
  explicit Selector(PolicyConfig cfg);
  // Picks one of `cands` (all eligible: healthy, not excluded) for `key` and, for
  // cache_aware, records the key in the chosen worker's tree.
  Decision choose(std::span<const int32_t> key, std::span<const Candidate> cands);
  // Records a key for a worker without choosing (cache_aware: what the worker now also
  // caches, e.g. a prompt followed by the reply it generated).
  void record(std::span<const int32_t> key, int worker);
  // A worker left for good (removed): forget its tree.
  void remove_worker(int id);
  const PolicyConfig& config() const { return cfg_; }

 private:
  PolicyConfig cfg_;
  std::mutex mu_;
  PrefixTree tree_;
  int last_rr_ = -1;
};

}  // namespace tachyon::router
