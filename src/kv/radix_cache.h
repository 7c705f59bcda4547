// Prefix cache over the paged KV pool: a radix tree of token ids at page granularity.
// Every node holds exactly one full page (page_size token ids) and that page's id; a
// path from the root spells a token prefix whose KV lives in those pages. The tree owns
// one pool reference per node. Requests lock the nodes they use (lock counts along the
// path); unlocked leaves are evicted least-recently-used first when pages run out.
// With sliding-window layers the tree holds no local (window) reference: a page's local
// slot may be reused while its node stays, and a match is usable only up to where the
// window KV its next query reads is still attached (the engine checks has_local).
//
// Single-threaded (engine thread). Costs: match/insert O(pages * page_size) token
// comparisons plus one hash per page; evict O(log n) per evicted leaf.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "kv/kv_pool.h"

namespace tachyon::kv {

class RadixCache {
 public:
  struct Node;

  explicit RadixCache(KvPool& pool);
  ~RadixCache();
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  // Longest cached prefix of `tokens`, in whole pages, at most max_pages. Returns the
  // nodes along the path (root excluded), in order. Refreshes their LRU stamps.
  // Does not lock: call lock() on the result to keep it from eviction.
  std::vector<Node*> match(const int32_t* tokens, int n_tokens, int max_pages);

  // Lock counts keep nodes (and their ancestors, implicitly: only leaves are evicted)
  // from eviction while a request uses them.
  void lock(const std::vector<Node*>& path);
  void unlock(const std::vector<Node*>& path);

  // Inserts the full pages of a sequence: tokens[0, n_pages*page_size) with their pages.
  // `path` is the sequence's current locked path (its first nodes); it is extended with
  // the newly inserted or already present nodes, which get locked too. Pages already
  // cached under the same tokens are kept (the caller's duplicate page stays the
  // caller's); otherwise the tree takes a reference on the caller's page.
  // Returns the page ids of the path after insertion (the caller may switch its page
  // table to them to drop duplicates).
  void insert(const int32_t* tokens, const int32_t* pages, int n_pages, std::vector<Node*>* path);

  // Frees up to n_pages pages by evicting unlocked leaves, LRU first. Returns how many
  // pages returned to the pool's free list (a page still referenced by a request does
  // not, though its node is gone).
  int evict(int n_pages);

  int n_nodes() const { return n_nodes_; }
  // Nodes no request holds: their pages are the evictable part of the cache.
  int n_unlocked() const { return n_unlocked_; }
  int page_of(const Node* n) const;

 private:
  void touch(Node* n);
  void maybe_lru_insert(Node* n);

  KvPool& pool_;
  std::unique_ptr<Node> root_;
  uint64_t clock_ = 0;
  int n_nodes_ = 0;
  int n_unlocked_ = 0;
  // Evictable leaves ordered by last access (stamp, node).
  std::set<std::pair<uint64_t, Node*>> lru_;
};

}  // namespace tachyon::kv
