// Worker-selection policies of `tachyon router`; see policy.h for the contract.
//
// PrefixTree layout: a compressed radix tree. Each node owns the label of the edge that
// leads into it (>= 1 element; the root's is empty) and a short list of (worker, stamp)
// pairs: the workers that were sent a key running through the whole label, and the clock
// value of the latest such insert. Invariants, kept by every mutation:
//   - closure: a worker held by a node is held by its parent (insert stamps the whole
//     path; trim only drops a worker from nodes none of whose children hold it);
//   - a worker holds a node's label whole (an insert that ends inside an edge splits it,
//     both halves keeping the holders), so sizes_[w] = sum of label lengths of the nodes
//     holding w, and all elements of one node share w's stamp;
//   - stamps do not grow downwards (an insert stamps every node of its path alike), so a
//     worker's least recently used nodes are among its leaves;
//   - every node but the root is held by someone (a node left with no holder is deleted
//     at once; by closure it has no children by then).
// Children are kept sorted by the first element of their label (binary search).
// Destruction is iterative: a tree of long keys that share little can be very deep.
#include "router/policy.h"

#include <algorithm>
#include <cstring>
#include <queue>
#include <utility>

namespace tachyon::router {

bool parse_policy(std::string_view s, Policy* out) {
  if (s == "cache_aware") {
    *out = Policy::kCacheAware;
  } else if (s == "least_load") {
    *out = Policy::kLeastLoad;
  } else if (s == "round_robin") {
    *out = Policy::kRoundRobin;
  } else {
    return false;
  }
  return true;
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::kCacheAware: return "cache_aware";
    case Policy::kLeastLoad: return "least_load";
    case Policy::kRoundRobin: return "round_robin";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// PrefixTree

struct PrefixTree::Node {
  struct Stamp {
    int worker;
    uint64_t stamp;  // clock_ at the latest insert of this worker through the node
  };
  std::vector<int32_t> label;  // [n] elements of the edge into this node (root: empty)
  Node* parent = nullptr;
  std::vector<std::unique_ptr<Node>> kids;  // sorted by kids[i]->label[0]
  std::vector<Stamp> stamps;                // one per worker holding the node (few)

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Iterative teardown of the subtree (a recursive one could overflow the stack).
  ~Node() {
    std::vector<std::unique_ptr<Node>> pending = std::move(kids);
    while (!pending.empty()) {
      std::unique_ptr<Node> n = std::move(pending.back());
      pending.pop_back();
      for (auto& k : n->kids) pending.push_back(std::move(k));
      n->kids.clear();
    }  // each n dies here with no children
  }

  Stamp* find_stamp(int w) {
    for (Stamp& s : stamps)
      if (s.worker == w) return &s;
    return nullptr;
  }
  const Stamp* find_stamp(int w) const { return const_cast<Node*>(this)->find_stamp(w); }
  bool holds(int w) const { return find_stamp(w) != nullptr; }
  void drop(int w) {
    for (size_t i = 0; i < stamps.size(); ++i) {
      if (stamps[i].worker == w) {
        stamps[i] = stamps.back();
        stamps.pop_back();
        return;
      }
    }
  }
  // Index of the child whose label starts with `first`, or the insertion point.
  size_t lower(int32_t first) const {
    auto it = std::lower_bound(kids.begin(), kids.end(), first,
                               [](const std::unique_ptr<Node>& k, int32_t v) { return k->label[0] < v; });
    return static_cast<size_t>(it - kids.begin());
  }
  Node* child(int32_t first) const {
    size_t i = lower(first);
    return i < kids.size() && kids[i]->label[0] == first ? kids[i].get() : nullptr;
  }
  bool any_kid_holds(int w) const {
    for (const auto& k : kids)
      if (k->holds(w)) return true;
    return false;
  }
};

namespace {

// Length of the common prefix of a node's label and key[pos..].
size_t common_prefix(const std::vector<int32_t>& label, std::span<const int32_t> key, size_t pos) {
  size_t n = std::min(label.size(), key.size() - pos);
  const int32_t* a = label.data();
  const int32_t* b = key.data() + pos;
  size_t i = 0;
  // Equal runs are the common case (a shared system prompt): compare them 16 elements at
  // a time with memcmp (vectorized in libc), then find the first difference.
  constexpr size_t kBlock = 16;
  while (i + kBlock <= n && std::memcmp(a + i, b + i, kBlock * sizeof(int32_t)) == 0) i += kBlock;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

PrefixTree::PrefixTree() : root_(std::make_unique<Node>()) {}
PrefixTree::~PrefixTree() = default;

// O(key length + path nodes * (log fan-out + holders)).
void PrefixTree::insert(std::span<const int32_t> key, int worker) {
  if (worker < 0) return;
  if (sizes_.size() <= static_cast<size_t>(worker)) sizes_.resize(static_cast<size_t>(worker) + 1, 0);
  const uint64_t stamp = ++clock_;
  Node* node = root_.get();
  size_t pos = 0;
  while (pos < key.size()) {
    size_t i = node->lower(key[pos]);
    if (i == node->kids.size() || node->kids[i]->label[0] != key[pos]) {
      auto leaf = std::make_unique<Node>();
      leaf->label.assign(key.begin() + static_cast<std::ptrdiff_t>(pos), key.end());
      leaf->parent = node;
      leaf->stamps.push_back({worker, stamp});
      sizes_[static_cast<size_t>(worker)] += leaf->label.size();
      node->kids.insert(node->kids.begin() + static_cast<std::ptrdiff_t>(i), std::move(leaf));
      return;
    }
    Node* child = node->kids[i].get();
    size_t common = common_prefix(child->label, key, pos);
    if (common < child->label.size()) {
      // Split the edge at `common`: a middle node takes the matched part and the holders.
      auto mid = std::make_unique<Node>();
      mid->label.assign(child->label.begin(), child->label.begin() + static_cast<std::ptrdiff_t>(common));
      mid->parent = node;
      mid->stamps = child->stamps;
      // A fresh exact-size tail: erasing in place would keep the whole old capacity in
      // every node of a chain that splits one long label many times.
      child->label = std::vector<int32_t>(child->label.begin() + static_cast<std::ptrdiff_t>(common),
                                          child->label.end());
      child->parent = mid.get();
      mid->kids.push_back(std::move(node->kids[i]));
      node->kids[i] = std::move(mid);
      child = node->kids[i].get();
    }
    if (Node::Stamp* s = child->find_stamp(worker)) {
      s->stamp = stamp;
    } else {
      child->stamps.push_back({worker, stamp});
      sizes_[static_cast<size_t>(worker)] += child->label.size();
    }
    pos += common;
    node = child;
  }
}

size_t PrefixTree::match(std::span<const int32_t> key, int worker) const {
  if (worker < 0) return 0;
  const Node* node = root_.get();
  size_t pos = 0;
  while (pos < key.size()) {
    const Node* child = node->child(key[pos]);
    if (!child || !child->holds(worker)) break;
    size_t common = common_prefix(child->label, key, pos);
    pos += common;
    if (common < child->label.size()) break;
    node = child;
  }
  return pos;
}

// One walk down the key's path (whoever holds it); by closure a worker's match ends in
// the deepest path node it holds, so deeper nodes overwrite shallower ones.
std::vector<size_t> PrefixTree::match_all(std::span<const int32_t> key,
                                          std::span<const int> workers) const {
  int max_id = -1;
  for (int w : workers) max_id = std::max(max_id, w);
  std::vector<size_t> by_id(static_cast<size_t>(max_id + 1), 0);  // [max_id + 1]
  const Node* node = root_.get();
  size_t pos = 0;
  while (pos < key.size() && max_id >= 0) {
    const Node* child = node->child(key[pos]);
    if (!child) break;
    size_t common = common_prefix(child->label, key, pos);
    size_t end = pos + common;
    for (const Node::Stamp& s : child->stamps)
      if (s.worker <= max_id) by_id[static_cast<size_t>(s.worker)] = end;
    if (common < child->label.size()) break;
    pos = end;
    node = child;
  }
  std::vector<size_t> out(workers.size(), 0);
  for (size_t i = 0; i < workers.size(); ++i)
    if (workers[i] >= 0) out[i] = by_id[static_cast<size_t>(workers[i])];
  return out;
}

size_t PrefixTree::size(int worker) const {
  if (worker < 0 || static_cast<size_t>(worker) >= sizes_.size()) return 0;
  return sizes_[static_cast<size_t>(worker)];
}

// O(nodes the worker holds). A node left with no holder goes with its (empty) subtree.
void PrefixTree::remove_worker(int worker) {
  if (worker < 0 || static_cast<size_t>(worker) >= sizes_.size()) return;
  std::vector<Node*> stack{root_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (size_t i = 0; i < n->kids.size();) {
      Node* k = n->kids[i].get();
      if (!k->holds(worker)) {
        ++i;
        continue;
      }
      k->drop(worker);
      if (k->stamps.empty()) {
        n->kids.erase(n->kids.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        stack.push_back(k);
        ++i;
      }
    }
  }
  sizes_[static_cast<size_t>(worker)] = 0;
}

// O(nodes the worker holds + removed * log): collects the worker's leaves (nodes no child
// of which it holds) into a min-heap by stamp and peels them, a parent joining the heap
// when its last child holding the worker is peeled. Whole nodes go, so the size may end
// below max_elems by up to one label.
void PrefixTree::trim(int worker, size_t max_elems) {
  if (worker < 0 || static_cast<size_t>(worker) >= sizes_.size()) return;
  size_t& size = sizes_[static_cast<size_t>(worker)];
  if (size <= max_elems) return;
  using Entry = std::pair<uint64_t, Node*>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  std::vector<Node*> stack{root_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    bool leaf = true;
    for (const auto& k : n->kids) {
      if (k->holds(worker)) {
        leaf = false;
        stack.push_back(k.get());
      }
    }
    if (leaf && n != root_.get()) heap.push({n->find_stamp(worker)->stamp, n});
  }
  while (size > max_elems && !heap.empty()) {
    Node* n = heap.top().second;
    heap.pop();
    Node* parent = n->parent;
    size -= n->label.size();
    n->drop(worker);
    if (n->stamps.empty()) {
      // No holder left, so no children either (closure): unlink and free it.
      size_t i = parent->lower(n->label[0]);
      parent->kids.erase(parent->kids.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (parent != root_.get() && !parent->any_kid_holds(worker))
      heap.push({parent->find_stamp(worker)->stamp, parent});
  }
}

// ---------------------------------------------------------------------------------------
// Selector

Selector::Selector(PolicyConfig cfg) : cfg_(cfg) {}

namespace {

// Least loaded, ties -> lowest id.
bool less_loaded(const Candidate& a, const Candidate& b) {
  return a.load != b.load ? a.load < b.load : a.id < b.id;
}

}  // namespace

Decision Selector::choose(std::span<const int32_t> key, std::span<const Candidate> cands) {
  Decision d;
  if (cands.empty()) return d;
  std::lock_guard<std::mutex> lock(mu_);
  switch (cfg_.policy) {
    case Policy::kLeastLoad: {
      d.worker = std::min_element(cands.begin(), cands.end(), less_loaded)->id;
      return d;
    }
    case Policy::kRoundRobin: {
      // The lowest id above the last chosen, else the lowest id (wrap around).
      int lowest = cands[0].id;
      int next = -1;
      bool found = false;
      for (const Candidate& c : cands) {
        lowest = std::min(lowest, c.id);
        if (c.id > last_rr_ && (!found || c.id < next)) {
          next = c.id;
          found = true;
        }
      }
      d.worker = found ? next : lowest;
      last_rr_ = d.worker;
      return d;
    }
    case Policy::kCacheAware: break;
  }

  std::vector<int> ids(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) ids[i] = cands[i].id;
  std::vector<size_t> matched = tree_.match_all(key, ids);  // [cands]

  int min_load = cands[0].load, max_load = cands[0].load;
  for (const Candidate& c : cands) {
    min_load = std::min(min_load, c.load);
    max_load = std::max(max_load, c.load);
  }
  const bool imbalanced = max_load - min_load > cfg_.balance_abs &&
                          static_cast<double>(max_load) > cfg_.balance_rel * static_cast<double>(min_load);
  size_t pick = 0;
  if (imbalanced) {
    for (size_t i = 1; i < cands.size(); ++i)
      if (less_loaded(cands[i], cands[pick])) pick = i;
    d.by_balance = true;
  } else {
    // Longest match, ties -> least loaded, then lowest id.
    size_t best = 0;
    for (size_t i = 1; i < cands.size(); ++i) {
      if (matched[i] > matched[best] || (matched[i] == matched[best] && less_loaded(cands[i], cands[best])))
        best = i;
    }
    if (matched[best] > 0 &&
        static_cast<double>(matched[best]) >= cfg_.cache_threshold * static_cast<double>(key.size())) {
      pick = best;
      d.by_cache = true;
    } else {
      // Smallest tree, ties -> least loaded, then lowest id.
      std::vector<size_t> sizes(cands.size());
      for (size_t i = 0; i < cands.size(); ++i) sizes[i] = tree_.size(cands[i].id);
      for (size_t i = 1; i < cands.size(); ++i) {
        if (sizes[i] < sizes[pick] || (sizes[i] == sizes[pick] && less_loaded(cands[i], cands[pick])))
          pick = i;
      }
    }
  }
  d.worker = cands[pick].id;
  d.matched = matched[pick];
  tree_.insert(key, d.worker);
  // Trim to 90% so that a worker at its cap does not pay a whole-tree walk per request.
  if (tree_.size(d.worker) > cfg_.max_elems) tree_.trim(d.worker, cfg_.max_elems - cfg_.max_elems / 10);
  return d;
}

void Selector::record(std::span<const int32_t> key, int worker) {
  if (cfg_.policy != Policy::kCacheAware || worker < 0 || key.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  tree_.insert(key, worker);
  if (tree_.size(worker) > cfg_.max_elems) tree_.trim(worker, cfg_.max_elems - cfg_.max_elems / 10);
}

void Selector::remove_worker(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  tree_.remove_worker(id);  // last_rr_ stays: the rotation goes on after the removed id
}

}  // namespace tachyon::router
