// Prefix cache over the paged KV pool: a radix tree of token ids at page granularity,
// with tiers below the pool.
//
// Every node holds exactly one full page (page_size token ids); a path from the root
// spells a token prefix. A node's KV lives in one tier:
//   L1  a page of the KV pool (attention reads it in place);
//   L2  a copy in host RAM (a byte blob; up to TierConfig::host_bytes in all);
//   L3  a file of the DiskTier (pages of this root's files survive restarts).
// Tiers only grow away from the root (a node's tier >= its parent's), so the L1 part of
// the tree is a prefix-closed subtree and a match reads L1 pages, then L2, then L3.
// Eviction demotes: L1 leaves of the L1 subtree (least recently used first) move to L2,
// L2 to L3 (write-back, when the page is not on disk yet), and are dropped only where no
// lower tier exists. Pages hit at least write_through_hits times are also written to
// disk while in L1 (write-through), so a restart finds the hot prefixes.
//
// Contract (the engine's view; mini-sglang's kvcache/base.py):
//   match()   read-only: the longest cached prefix across all tiers (for a disk tier, the
//             next page's key is looked up in the disk index even where the tree has no
//             node: files written before a restart are found lazily, page by page).
//   acquire() locks the match, promotes its L2/L3 pages into freshly allocated pool
//             pages (verified; a page that fails ends the prefix there) and returns an
//             opaque handle: the caller sees page ids, never nodes.
//   insert()  extends a handle with the caller's newly computed full pages and reports
//             the page ids the tree now holds for them (the caller may switch to those).
//   release() unlocks a handle.
//   prefetch() reads a match's disk-only pages into host RAM on the cache's reader thread
//             (the engine admits the request once they are there: the engine thread never
//             waits on the disk when an L2 tier exists; without one acquire() reads).
// Keys: node key = page_key(parent key, tokens), root key = TierConfig::root (disk files
// are named by it); without tiers nothing is hashed beyond the child lookup.
// With sliding-window layers the tree holds no local (window) reference: a page's local
// slot may be reused while its node stays (the engine checks has_local); such models run
// without L2/L3 (the window arena is not paged out).
//
// Single-threaded (engine thread); the DiskTier writes on its own thread and the reader
// thread reads for prefetch(); both report back through poll(). Costs: match/insert O(pages * page_size) token comparisons plus
// one hash per page (two with a disk tier); evict O(log n) per page plus the copy.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "kv/cache_key.h"
#include "kv/disk_tier.h"
#include "kv/kv_pool.h"

namespace tachyon::kv {

enum Tier : int { kL1 = 0, kL2 = 1, kL3 = 2 };

struct TierConfig {
  uint64_t host_bytes = 0;       // L2 capacity (0: no L2)
  DiskTier* disk = nullptr;      // L3 (owned outside; null: no L3)
  int write_through_hits = 2;    // write an L1 page to disk at its n-th hit (0: only on eviction)
  Key128 root;                   // key of the empty prefix (the disk tier's root)
};

struct TierStats {
  uint64_t pages[3] = {0, 0, 0};  // nodes per tier now (L3: nodes the tree knows of; see disk)
  uint64_t bytes[3] = {0, 0, 0};  // L1: pool bytes of those pages; L2: host bytes; L3: disk bytes of this root
  uint64_t hit_pages[3] = {0, 0, 0};  // pages handed to requests from each tier
  uint64_t miss_pages = 0;            // prompt pages no tier had (acquire's callers computed them)
  uint64_t promotions[3] = {0, 0, 0};  // [kL2], [kL3]: pages moved into the pool
  uint64_t demotions[3] = {0, 0, 0};   // [kL2], [kL3]: pages moved down to that tier
  uint64_t dropped = 0;                // pages evicted with no lower tier to take them
  uint64_t promote_failures = 0;       // L3 reads rejected, or no pool page for a promotion
  uint64_t prefetched = 0;             // pages read from disk ahead of their request's admission
  uint64_t imported = 0;               // pages added by import_pages (KV transfers)
};

class RadixCache {
 public:
  struct Node;

  // A matched prefix (read-only result of match()).
  class Match {
   public:
    int n_pages() const { return static_cast<int>(nodes_.size() + disk_keys_.size()); }
    int n_pages_in(Tier t) const;
    // Shortens the match to its first n pages.
    void truncate(int n);

   private:
    friend class RadixCache;
    std::vector<Node*> nodes_;         // tree nodes along the path
    std::vector<Key128> disk_keys_;    // then pages found only in the disk index
  };

  // A locked prefix whose pages are all in the pool.
  class Handle {
   public:
    int n_pages() const { return static_cast<int>(nodes_.size()); }
    bool empty() const { return nodes_.empty(); }

   private:
    friend class RadixCache;
    std::vector<Node*> nodes_;
  };

  struct Acquired {
    Handle handle;
    int pages_from[3] = {0, 0, 0};      // pages of the handle by the tier they came from
    std::vector<int32_t> new_pages;     // pool pages filled by promotion
  };

  explicit RadixCache(KvPool& pool, TierConfig tiers = {});
  ~RadixCache();
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  // Longest cached prefix of `tokens`, in whole pages, at most max_pages. Changes nothing.
  Match match(const int32_t* tokens, int n_tokens, int max_pages) const;
  // Page id of the i-th page of a match that is in L1 (-1 for L2/L3 pages).
  int32_t page_of(const Match& m, int i) const;

  // Locks the match and brings its pages into the pool (see the header comment). `tokens`
  // are the ones the match was made from. Refreshes the LRU stamps.
  Acquired acquire(const Match& m, const int32_t* tokens);
  int32_t page(const Handle& h, int i) const;

  // Inserts the full pages of a sequence: tokens[0, n_pages*page_size) with its pages,
  // extending h (its first pages; h may be empty). Pages already cached under the same
  // tokens in L1 are kept (the caller's duplicate page stays the caller's); a node cached
  // in L2/L3 takes the caller's page (the same KV) and returns to L1; otherwise the tree
  // takes a reference on the caller's page. Afterwards page(h, i) is the tree's page.
  // Returns how many of the pages the tree newly cached (took the caller's page for).
  int insert(const int32_t* tokens, const int32_t* pages, int n_pages, Handle* h);

  // Unlocks and empties a handle.
  void release(Handle* h);

  // Adds pages computed elsewhere (a KV transfer, kv/transfer.h, verified against this
  // cache's root by the caller): the first n_pages full pages of `tokens`, page i's KV
  // bytes in payloads[i]. Pages already cached (any tier) stay as they are; a new page
  // goes to host RAM (L2) when that tier has room, else into a free or evictable pool page
  // (L1) under an L1 parent; the import stops at the first page it cannot place (or below
  // a node that is only on disk). New nodes are unlocked: a later match() finds them and
  // acquire() promotes the L2 ones with a memory copy, as after a prefetch. Returns the
  // pages added; *present (optional): pages of the path that were cached already;
  // *l1_pages (optional): pool pages the import filled.
  int import_pages(const int32_t* tokens, int n_pages,
                   const std::vector<std::shared_ptr<const std::vector<uint8_t>>>& payloads, int* present = nullptr,
                   std::vector<int32_t>* l1_pages = nullptr);

  // Frees up to n_pages pool pages by demoting unlocked L1 leaves, LRU first. Returns how
  // many pages returned to the pool's free list (a page still referenced by a request
  // does not, though its node left L1).
  int evict(int n_pages);

  // Starts reading the match's pages that are only on disk into host RAM, on the cache's
  // reader thread; each becomes an L2 page when its read completes (at a poll()), so a
  // later acquire() promotes it with a memory copy instead of blocking the engine thread
  // on the disk. Pages in flight are locked. Returns how many of the match's pages are
  // still being read (0: acquire() now reads nothing from disk). Without an L2 tier (host
  // bytes 0) nothing is prefetched and acquire() reads synchronously.
  int prefetch(const Match& m, const int32_t* tokens);
  // Reads in flight, and a wait (up to ms) for one of them to complete.
  bool prefetching() const { return n_reads_in_flight_ > 0; }
  void wait_prefetch(int ms);

  // Applies the disk tier's events (completed and failed writes, deleted files) and the
  // reader thread's completed prefetches.
  void poll();
  // Counts pages of a prompt that no tier had (for the miss statistic).
  void count_misses(int n_pages) { stats_.miss_pages += static_cast<uint64_t>(n_pages); }

  int n_nodes() const { return n_nodes_; }
  // L1 nodes no request holds: their pages are the evictable part of the pool.
  int n_unlocked() const { return n_unlocked_; }
  bool tiered() const { return tiers_.host_bytes > 0 || tiers_.disk != nullptr; }
  TierStats stats() const;

 private:
  Node* root() const { return root_.get(); }
  Node* child(Node* n, const int32_t* t) const;
  Node* add_child(Node* parent, const int32_t* t, int tier);
  void set_tier(Node* n, int tier);
  void refresh(Node* n);  // recomputes n's membership of the LRU sets
  void touch(Node* n);
  void lock_node(Node* n);
  void unlock_node(Node* n);
  bool demote_l1(Node* n);  // true when the pool page went back to the free list
  void demote_l2(Node* n);
  bool make_host_room(size_t bytes);  // demotes L2 pages; true when `bytes` fit
  // Queues the page's write (keep: the node holds the blob until the write completes).
  void write_to_disk(Node* n, std::shared_ptr<const std::vector<uint8_t>> blob, bool keep);
  // Removes n and its subtree unless a node in it is locked (then nothing: false).
  bool remove_subtree(Node* n);
  bool promote(Node* n, int32_t page, std::vector<uint8_t>* scratch);
  int32_t alloc_page();
  std::shared_ptr<std::vector<uint8_t>> copy_out(int32_t page) const;

  KvPool& pool_;
  TierConfig tiers_;
  size_t page_bytes_ = 0;  // payload of one page (pool.page_payload_bytes())
  std::unique_ptr<Node> root_;
  uint64_t clock_ = 0;
  int n_nodes_ = 0;
  int n_unlocked_ = 0;
  uint64_t host_used_ = 0;
  int tier_nodes_[3] = {0, 0, 0};
  TierStats stats_;
  // Demotion candidates by last access (stamp, node): [kL1] unlocked L1 nodes without L1
  // children, [kL2] unlocked L2 nodes without L2 children.
  std::set<std::pair<uint64_t, Node*>> lru_[2];
  std::unordered_map<Key128, Node*, Key128Hash> by_key_;  // nodes with a disk copy or one in flight
  // Prefetch: the reader thread takes jobs and returns blobs (null: the read failed).
  struct ReadJob {
    Node* node;
    Key128 key, parent;
    std::vector<int32_t> tokens;
  };
  struct Reader;
  std::unique_ptr<Reader> reader_;
  int n_reads_in_flight_ = 0;
};

}  // namespace tachyon::kv
