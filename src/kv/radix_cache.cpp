#include "kv/radix_cache.h"

#include <cassert>
#include <cstring>

namespace tachyon::kv {

namespace {
uint64_t hash_page(const int32_t* t, int n) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<uint32_t>(t[i]);
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace

struct RadixCache::Node {
  Node* parent = nullptr;
  std::vector<int32_t> tokens;  // [page_size]
  int32_t page = -1;
  int lock = 0;
  uint64_t stamp = 0;
  // children by page hash; collisions resolved by comparing tokens
  std::unordered_multimap<uint64_t, std::unique_ptr<Node>> children;
  bool in_lru = false;
};

RadixCache::RadixCache(KvPool& pool) : pool_(pool), root_(std::make_unique<Node>()) {}

RadixCache::~RadixCache() {
  // Release the tree's page references.
  std::vector<Node*> stack = {root_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->page >= 0) pool_.release(n->page);
    for (auto& [h, c] : n->children) stack.push_back(c.get());
  }
}

int RadixCache::page_of(const Node* n) const { return n->page; }

void RadixCache::touch(Node* n) {
  if (n->in_lru) {
    lru_.erase({n->stamp, n});
    n->in_lru = false;
  }
  n->stamp = ++clock_;
  maybe_lru_insert(n);
}

void RadixCache::maybe_lru_insert(Node* n) {
  if (n != root_.get() && n->lock == 0 && n->children.empty() && !n->in_lru) {
    lru_.insert({n->stamp, n});
    n->in_lru = true;
  }
}

std::vector<RadixCache::Node*> RadixCache::match(const int32_t* tokens, int n_tokens, int max_pages) {
  const int ps = pool_.page_size();
  std::vector<Node*> path;
  Node* cur = root_.get();
  for (int p = 0; p < max_pages && (p + 1) * ps <= n_tokens; ++p) {
    const int32_t* t = tokens + p * ps;
    auto range = cur->children.equal_range(hash_page(t, ps));
    Node* next = nullptr;
    for (auto it = range.first; it != range.second; ++it) {
      if (std::memcmp(it->second->tokens.data(), t, ps * sizeof(int32_t)) == 0) {
        next = it->second.get();
        break;
      }
    }
    if (!next) break;
    path.push_back(next);
    cur = next;
  }
  for (Node* n : path) touch(n);
  return path;
}

void RadixCache::lock(const std::vector<Node*>& path) {
  for (Node* n : path) {
    if (n->in_lru) {
      lru_.erase({n->stamp, n});
      n->in_lru = false;
    }
    if (n->lock++ == 0) --n_unlocked_;
  }
}

void RadixCache::unlock(const std::vector<Node*>& path) {
  for (Node* n : path) {
    assert(n->lock > 0);
    if (--n->lock == 0) ++n_unlocked_;
    n->stamp = ++clock_;
    maybe_lru_insert(n);
  }
}

void RadixCache::insert(const int32_t* tokens, const int32_t* pages, int n_pages, std::vector<Node*>* path) {
  const int ps = pool_.page_size();
  Node* cur = path->empty() ? root_.get() : path->back();
  for (int p = static_cast<int>(path->size()); p < n_pages; ++p) {
    const int32_t* t = tokens + p * ps;
    const uint64_t h = hash_page(t, ps);
    Node* next = nullptr;
    auto range = cur->children.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) {
      if (std::memcmp(it->second->tokens.data(), t, ps * sizeof(int32_t)) == 0) {
        next = it->second.get();
        break;
      }
    }
    if (!next) {
      auto node = std::make_unique<Node>();
      node->parent = cur;
      node->tokens.assign(t, t + ps);
      node->page = pages[p];
      pool_.retain(pages[p]);
      next = node.get();
      if (cur->in_lru) {  // cur stops being a leaf
        lru_.erase({cur->stamp, cur});
        cur->in_lru = false;
      }
      cur->children.emplace(h, std::move(node));
      ++n_nodes_;
      ++n_unlocked_;  // locked just below
    }
    if (next->in_lru) {
      lru_.erase({next->stamp, next});
      next->in_lru = false;
    }
    if (next->lock++ == 0) --n_unlocked_;
    next->stamp = ++clock_;
    path->push_back(next);
    cur = next;
  }
}

int RadixCache::evict(int n_pages) {
  int freed = 0;
  while (freed < n_pages && !lru_.empty()) {
    Node* n = lru_.begin()->second;
    lru_.erase(lru_.begin());
    n->in_lru = false;
    assert(n->lock == 0 && n->children.empty());
    Node* parent = n->parent;
    const int32_t page = n->page;
    const bool last_ref = pool_.refcount(page) == 1;
    pool_.release(page);
    if (last_ref) ++freed;
    // remove n from its parent
    auto range = parent->children.equal_range(hash_page(n->tokens.data(), static_cast<int>(n->tokens.size())));
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second.get() == n) {
        parent->children.erase(it);
        break;
      }
    }
    --n_nodes_;
    --n_unlocked_;
    maybe_lru_insert(parent);
  }
  return freed;
}

}  // namespace tachyon::kv
