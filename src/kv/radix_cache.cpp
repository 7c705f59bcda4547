#include "kv/radix_cache.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

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
constexpr int kNoSet = -1;
}  // namespace

struct RadixCache::Node {
  enum Disk : uint8_t { kNone, kPending, kOnDisk };
  Node* parent = nullptr;
  std::vector<int32_t> tokens;  // [page_size]
  int32_t page = -1;            // L1: the pool page (the tree holds one reference)
  // L2: the page's bytes; L3: the bytes of a write still in flight (dropped at completion)
  std::shared_ptr<const std::vector<uint8_t>> host;
  int tier = kL1;
  Disk disk = kNone;
  Key128 key;
  int lock = 0;
  int hits = 0;
  uint64_t stamp = 0;
  int n_child_tier[3] = {0, 0, 0};
  int in_set = kNoSet;
  bool reading = false;  // a prefetch read is in flight (the node is locked meanwhile)
  bool prefetched = false;  // an L2 page read from disk for a waiting request (counts as an L3 hit)
  // children by page hash; collisions resolved by comparing tokens
  std::unordered_multimap<uint64_t, std::unique_ptr<Node>> children;
};

struct RadixCache::Reader {
  DiskTier* disk;
  size_t page_bytes;
  std::mutex mu;
  std::condition_variable cv, done_cv;
  std::deque<ReadJob> jobs;
  std::vector<std::pair<Node*, std::shared_ptr<std::vector<uint8_t>>>> done;
  bool stop = false;
  std::thread thread;

  Reader(DiskTier* d, size_t pb) : disk(d), page_bytes(pb), thread([this] { run(); }) {}
  ~Reader() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv.notify_all();
    thread.join();
  }
  void run() {
    for (;;) {
      ReadJob job;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || !jobs.empty(); });
        if (stop) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      auto blob = std::make_shared<std::vector<uint8_t>>(page_bytes);
      if (!disk->read(job.key, job.parent, job.tokens.data(), static_cast<int>(job.tokens.size()), blob->data(),
                      page_bytes))
        blob.reset();
      {
        std::lock_guard<std::mutex> lk(mu);
        done.emplace_back(job.node, std::move(blob));
      }
      done_cv.notify_all();
    }
  }
};

int RadixCache::Match::n_pages_in(Tier t) const {
  int n = t == kL3 ? static_cast<int>(disk_keys_.size()) : 0;
  for (const Node* x : nodes_) n += x->tier == t;
  return n;
}

void RadixCache::Match::truncate(int n) {
  n = std::max(0, n);
  if (n < static_cast<int>(nodes_.size())) {
    nodes_.resize(n);
    disk_keys_.clear();
  } else if (n < n_pages()) {
    disk_keys_.resize(n - nodes_.size());
  }
}

RadixCache::RadixCache(KvPool& pool, TierConfig tiers)
    : pool_(pool), tiers_(tiers), page_bytes_(pool.page_payload_bytes()), root_(std::make_unique<Node>()) {
  if (page_bytes_ == 0) {  // sliding-window pools keep everything in L1
    tiers_.host_bytes = 0;
    tiers_.disk = nullptr;
  }
  root_->key = tiers_.root;
}

RadixCache::~RadixCache() {
  reader_.reset();  // reads in flight are abandoned (their nodes go with the tree)
  // Write-back of everything not on disk yet (children before parents: a parent's file is
  // then the more recently written, and a cap evicts leaves first), then release the tree's
  // page references. The writer thread keeps the blobs alive.
  if (tiers_.disk && tiers_.disk->writable()) {
    poll();
    uint64_t queued = 0;
    std::vector<std::pair<Node*, bool>> stack = {{root_.get(), false}};
    while (!stack.empty()) {
      auto [n, expanded] = stack.back();
      stack.pop_back();
      if (!expanded) {
        stack.push_back({n, true});
        for (auto& [h, c] : n->children) stack.push_back({c.get(), false});
        continue;
      }
      if (n == root_.get() || n->disk != Node::kNone || n->tier == kL3) continue;
      write_to_disk(n, n->tier == kL1 ? copy_out(n->page) : n->host, /*keep=*/false);
      queued += page_bytes_;
      if (queued >= (64ull << 20)) {  // stay under the writer's queue limit
        tiers_.disk->flush();
        queued = 0;
      }
    }
    tiers_.disk->flush();
  }
  std::vector<Node*> stack = {root_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->page >= 0 && n != root_.get()) pool_.release(n->page);
    for (auto& [h, c] : n->children) stack.push_back(c.get());
  }
}

RadixCache::Node* RadixCache::child(Node* n, const int32_t* t) const {
  const int ps = pool_.page_size();
  auto range = n->children.equal_range(hash_page(t, ps));
  for (auto it = range.first; it != range.second; ++it)
    if (std::memcmp(it->second->tokens.data(), t, ps * sizeof(int32_t)) == 0) return it->second.get();
  return nullptr;
}

RadixCache::Node* RadixCache::add_child(Node* parent, const int32_t* t, int tier) {
  const int ps = pool_.page_size();
  auto node = std::make_unique<Node>();
  node->parent = parent;
  node->tokens.assign(t, t + ps);
  node->tier = tier;
  if (tiered()) node->key = page_key(parent->key, t, ps);
  Node* n = node.get();
  parent->children.emplace(hash_page(t, ps), std::move(node));
  ++parent->n_child_tier[tier];
  ++tier_nodes_[tier];
  ++n_nodes_;
  if (tier == kL1) ++n_unlocked_;
  refresh(parent);
  return n;
}

void RadixCache::set_tier(Node* n, int tier) {
  if (n->tier == tier) return;
  if (n->lock == 0) {
    if (n->tier == kL1) --n_unlocked_;
    if (tier == kL1) ++n_unlocked_;
  }
  --n->parent->n_child_tier[n->tier];
  ++n->parent->n_child_tier[tier];
  --tier_nodes_[n->tier];
  ++tier_nodes_[tier];
  n->tier = tier;
  refresh(n);
  refresh(n->parent);
}

void RadixCache::refresh(Node* n) {
  int want = kNoSet;
  if (n != root_.get() && n->lock == 0) {
    if (n->tier == kL1 && n->n_child_tier[kL1] == 0) want = 0;
    else if (n->tier == kL2 && n->n_child_tier[kL1] == 0 && n->n_child_tier[kL2] == 0) want = 1;
  }
  if (want == n->in_set) return;
  if (n->in_set != kNoSet) lru_[n->in_set].erase({n->stamp, n});
  if (want != kNoSet) lru_[want].insert({n->stamp, n});
  n->in_set = want;
}

void RadixCache::touch(Node* n) {
  if (n->in_set != kNoSet) lru_[n->in_set].erase({n->stamp, n});
  n->stamp = ++clock_;
  if (n->in_set != kNoSet) lru_[n->in_set].insert({n->stamp, n});
}

void RadixCache::lock_node(Node* n) {
  if (n->lock++ == 0 && n->tier == kL1) --n_unlocked_;
  refresh(n);
}

void RadixCache::unlock_node(Node* n) {
  assert(n->lock > 0);
  if (--n->lock == 0 && n->tier == kL1) ++n_unlocked_;
  touch(n);
  refresh(n);
}

RadixCache::Match RadixCache::match(const int32_t* tokens, int n_tokens, int max_pages) const {
  const int ps = pool_.page_size();
  Match m;
  Node* cur = root_.get();
  int p = 0;
  for (; p < max_pages && (p + 1) * ps <= n_tokens; ++p) {
    Node* next = child(cur, tokens + p * ps);
    if (!next || (next->tier == kL3 && !next->host && next->disk != Node::kOnDisk)) break;
    m.nodes_.push_back(next);
    cur = next;
  }
  if (tiers_.disk) {
    Key128 k = cur->key;
    for (; p < max_pages && (p + 1) * ps <= n_tokens; ++p) {
      k = page_key(k, tokens + p * ps, ps);
      if (!tiers_.disk->contains(k)) break;
      m.disk_keys_.push_back(k);
    }
  }
  return m;
}

int32_t RadixCache::page_of(const Match& m, int i) const {
  if (i < 0 || i >= static_cast<int>(m.nodes_.size())) return -1;
  return m.nodes_[i]->tier == kL1 ? m.nodes_[i]->page : -1;
}

int32_t RadixCache::page(const Handle& h, int i) const { return h.nodes_[i]->page; }

int32_t RadixCache::alloc_page() {
  int32_t p = pool_.alloc();
  if (p < 0 && evict(1) > 0) p = pool_.alloc();
  return p;
}

std::shared_ptr<std::vector<uint8_t>> RadixCache::copy_out(int32_t page) const {
  auto blob = std::make_shared<std::vector<uint8_t>>(page_bytes_);
  pool_.read_page(page, blob->data());
  return blob;
}

RadixCache::Acquired RadixCache::acquire(const Match& m, const int32_t* tokens) {
  const int ps = pool_.page_size();
  Acquired r;
  std::vector<Node*> nodes = m.nodes_;
  Node* cur = nodes.empty() ? root_.get() : nodes.back();
  for (size_t i = 0; i < m.disk_keys_.size(); ++i) {  // pages known only to the disk index
    const int32_t* t = tokens + nodes.size() * ps;
    Node* next = child(cur, t);
    if (!next) {
      next = add_child(cur, t, kL3);
      next->disk = Node::kOnDisk;
      by_key_[next->key] = next;
    }
    nodes.push_back(next);
    cur = next;
  }
  for (Node* n : nodes) lock_node(n);

  // Pool pages for the pages below L1 (allocation may demote other, unlocked pages).
  std::vector<int32_t> fresh(nodes.size(), -1);
  size_t ok = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i]->tier == kL1) continue;
    fresh[i] = alloc_page();
    if (fresh[i] < 0) {
      ok = i;
      break;
    }
  }
  // Fill them: disk reads deepest page first, so that a parent's file is always the more
  // recently used one (the disk cap evicts by recency and would orphan children).
  std::vector<uint8_t> scratch;
  for (size_t i = ok; i-- > 0;) {
    Node* n = nodes[i];
    if (n->tier == kL1) continue;
    if (n->host) {
      pool_.write_page(fresh[i], n->host->data());
    } else {
      scratch.resize(page_bytes_);
      const bool read = tiers_.disk && tiers_.disk->read(n->key, n->parent->key, n->tokens.data(), ps,
                                                         scratch.data(), page_bytes_);
      if (!read) {
        ok = i;
        continue;
      }
      pool_.write_page(fresh[i], scratch.data());
    }
  }
  if (ok < nodes.size()) ++stats_.promote_failures;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node* n = nodes[i];
    if (i >= ok) {
      if (fresh[i] >= 0) pool_.release(fresh[i]);
      continue;
    }
    const int from = n->tier;
    if (from != kL1) {
      if (from == kL2) host_used_ -= page_bytes_;
      n->host.reset();  // an L3 page's write in flight keeps its own reference
      n->page = fresh[i];
      set_tier(n, kL1);
      ++stats_.promotions[from];
      r.new_pages.push_back(fresh[i]);
    }
    const int origin = n->prefetched ? kL3 : from;  // where the request found it
    n->prefetched = false;
    ++r.pages_from[origin];
    ++stats_.hit_pages[origin];
    ++n->hits;
    touch(n);
  }
  // Write-through of pages hit often enough (deepest first, as above).
  if (tiers_.disk && tiers_.write_through_hits > 0 && tiers_.disk->writable())
    for (size_t i = ok; i-- > 0;)
      if (nodes[i]->disk == Node::kNone && nodes[i]->hits >= tiers_.write_through_hits)
        write_to_disk(nodes[i], copy_out(nodes[i]->page), /*keep=*/false);
  // The pages past the prefix: unlock; a page whose file was rejected is gone.
  for (size_t i = nodes.size(); i-- > ok;) {
    Node* n = nodes[i];
    unlock_node(n);
    if (i == ok && n->tier == kL3 && !n->host) {
      n->disk = Node::kNone;  // its file was rejected (or vanished): match() stops before it
      remove_subtree(n);
    }
  }
  nodes.resize(ok);
  r.handle.nodes_ = std::move(nodes);
  return r;
}

int RadixCache::insert(const int32_t* tokens, const int32_t* pages, int n_pages, Handle* h) {
  const int ps = pool_.page_size();
  int taken = 0;
  Node* cur = h->nodes_.empty() ? root_.get() : h->nodes_.back();
  for (int p = static_cast<int>(h->nodes_.size()); p < n_pages; ++p) {
    const int32_t* t = tokens + p * ps;
    Node* next = child(cur, t);
    if (!next) {
      next = add_child(cur, t, kL1);
      next->page = pages[p];
      pool_.retain(pages[p]);
      ++taken;
    } else if (next->tier != kL1) {
      // The caller computed the KV this node holds below L1: the node takes its page.
      pool_.retain(pages[p]);
      if (next->tier == kL2) host_used_ -= page_bytes_;
      next->host.reset();
      next->page = pages[p];
      set_tier(next, kL1);
      ++taken;
    }
    lock_node(next);
    touch(next);
    h->nodes_.push_back(next);
    cur = next;
  }
  return taken;
}

int RadixCache::import_pages(const int32_t* tokens, int n_pages,
                             const std::vector<std::shared_ptr<const std::vector<uint8_t>>>& payloads, int* present,
                             std::vector<int32_t>* l1_pages) {
  const int ps = pool_.page_size();
  int added = 0, had = 0;
  std::vector<Node*> path;  // locked while importing: making room must not demote them
  Node* cur = root_.get();
  n_pages = std::min(n_pages, static_cast<int>(payloads.size()));
  for (int p = 0; p < n_pages && page_bytes_ > 0; ++p) {
    const int32_t* t = tokens + static_cast<size_t>(p) * ps;
    Node* next = child(cur, t);
    if (next) {
      if (next->tier == kL3 && !next->host && next->disk != Node::kOnDisk) break;  // a node without bytes
      ++had;
    } else {
      if (!payloads[p] || payloads[p]->size() != page_bytes_ || cur->tier == kL3) break;
      if (tiers_.host_bytes >= page_bytes_ && make_host_room(page_bytes_)) {
        next = add_child(cur, t, kL2);
        next->host = payloads[p];
        host_used_ += page_bytes_;
      } else if (cur == root_.get() || cur->tier == kL1) {
        const int32_t page = alloc_page();
        if (page < 0) break;
        pool_.write_page(page, payloads[p]->data());
        next = add_child(cur, t, kL1);
        next->page = page;  // the tree holds alloc()'s reference
        if (l1_pages) l1_pages->push_back(page);
      } else {
        break;
      }
      ++added;
    }
    lock_node(next);
    touch(next);
    path.push_back(next);
    cur = next;
  }
  for (Node* n : path) unlock_node(n);
  stats_.imported += static_cast<uint64_t>(added);
  if (present) *present = had;
  return added;
}

void RadixCache::release(Handle* h) {
  for (Node* n : h->nodes_) unlock_node(n);
  h->nodes_.clear();
}

void RadixCache::write_to_disk(Node* n, std::shared_ptr<const std::vector<uint8_t>> blob, bool keep) {
  if (tiers_.disk->contains(n->key)) {  // written before (another run, or a removed node)
    n->disk = Node::kOnDisk;
  } else {
    n->disk = Node::kPending;
    tiers_.disk->write_async(n->key, n->parent->key, n->tokens.data(), pool_.page_size(), blob);
    if (keep) n->host = std::move(blob);
  }
  by_key_[n->key] = n;
}

bool RadixCache::make_host_room(size_t bytes) {
  while (host_used_ + bytes > tiers_.host_bytes && !lru_[1].empty()) demote_l2(lru_[1].begin()->second);
  return host_used_ + bytes <= tiers_.host_bytes;
}

void RadixCache::demote_l2(Node* n) {
  assert(n->tier == kL2 && n->lock == 0);
  n->prefetched = false;
  if (n->disk == Node::kNone) {
    if (!tiers_.disk || !tiers_.disk->writable()) {
      ++stats_.dropped;
      if (!remove_subtree(n)) {  // a page below is being read: keep the node, without its bytes
        host_used_ -= page_bytes_;
        n->host.reset();
        set_tier(n, kL3);  // disk kNone: match() stops before it
      }
      return;
    }
    write_to_disk(n, n->host, /*keep=*/true);
  }
  host_used_ -= page_bytes_;
  if (n->disk == Node::kOnDisk) n->host.reset();  // kPending: the blob stays until the write completes
  set_tier(n, kL3);
  ++stats_.demotions[kL3];
}

bool RadixCache::demote_l1(Node* n) {
  assert(n->tier == kL1 && n->lock == 0 && n->n_child_tier[kL1] == 0);
  const int32_t page = n->page;
  const bool last_ref = pool_.refcount(page) == 1;
  if (tiers_.host_bytes >= page_bytes_ && page_bytes_ > 0 && make_host_room(page_bytes_)) {
    n->host = copy_out(page);
    host_used_ += page_bytes_;
    n->page = -1;
    set_tier(n, kL2);
    ++stats_.demotions[kL2];
  } else if (tiers_.disk && (n->disk != Node::kNone || tiers_.disk->writable())) {
    if (n->disk == Node::kNone) write_to_disk(n, copy_out(page), /*keep=*/true);
    if (n->disk == Node::kOnDisk) n->host.reset();
    n->page = -1;
    set_tier(n, kL3);
    ++stats_.demotions[kL3];
  } else {
    if (tiered()) ++stats_.dropped;
    n->page = -1;  // released below
    if (!remove_subtree(n)) {
      n->disk = Node::kNone;  // a page below is being read: keep the node, without its bytes
      set_tier(n, kL3);
    }
  }
  pool_.release(page);
  return last_ref;
}

bool RadixCache::remove_subtree(Node* top) {
  std::vector<Node*> stack = {top};
  std::vector<Node*> all;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->lock > 0) return false;  // in use (a request, a read in flight): stays
    all.push_back(n);
    for (auto& [h, c] : n->children) stack.push_back(c.get());
  }
  for (Node* n : all) {
    if (n->in_set != kNoSet) lru_[n->in_set].erase({n->stamp, n});
    n->in_set = kNoSet;
    if (n->page >= 0) pool_.release(n->page);
    if (n->tier == kL2) host_used_ -= page_bytes_;
    if (n->tier == kL1) --n_unlocked_;
    --tier_nodes_[n->tier];
    --n_nodes_;
    auto it = by_key_.find(n->key);
    if (it != by_key_.end() && it->second == n) by_key_.erase(it);
  }
  Node* parent = top->parent;
  --parent->n_child_tier[top->tier];
  auto range = parent->children.equal_range(hash_page(top->tokens.data(), static_cast<int>(top->tokens.size())));
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.get() == top) {
      parent->children.erase(it);  // frees the subtree
      break;
    }
  }
  refresh(parent);
  return true;
}

int RadixCache::evict(int n_pages) {
  int freed = 0;
  while (freed < n_pages && !lru_[0].empty())
    if (demote_l1(lru_[0].begin()->second)) ++freed;
  return freed;
}

int RadixCache::prefetch(const Match& m, const int32_t* tokens) {
  if (!tiers_.disk || tiers_.host_bytes == 0) return 0;
  const int ps = pool_.page_size();
  // Disk-only pages: tree nodes in L3 without bytes in memory, then the index's pages.
  int pending = 0;
  std::vector<Node*> to_read;
  auto consider = [&](Node* n) {
    if (n->tier != kL3 || n->host) return;
    if (n->reading) ++pending;
    else to_read.push_back(n);
  };
  Node* cur = root_.get();
  for (Node* n : m.nodes_) {
    consider(n);
    cur = n;
  }
  for (size_t i = 0; i < m.disk_keys_.size(); ++i) {
    const int32_t* t = tokens + (m.nodes_.size() + i) * ps;
    Node* next = child(cur, t);
    if (!next) {
      next = add_child(cur, t, kL3);
      next->disk = Node::kOnDisk;
      by_key_[next->key] = next;
    }
    consider(next);
    cur = next;
  }
  if (to_read.empty()) return pending;
  if (!reader_) reader_ = std::make_unique<Reader>(tiers_.disk, page_bytes_);
  {
    std::lock_guard<std::mutex> lk(reader_->mu);
    // Deepest first: the disk cap's recency then keeps parents longer than children.
    for (size_t i = to_read.size(); i-- > 0;) {
      Node* n = to_read[i];
      n->reading = true;
      lock_node(n);
      reader_->jobs.push_back({n, n->key, n->parent->key, n->tokens});
    }
  }
  reader_->cv.notify_all();
  n_reads_in_flight_ += static_cast<int>(to_read.size());
  return pending + static_cast<int>(to_read.size());
}

void RadixCache::wait_prefetch(int ms) {
  if (!reader_ || n_reads_in_flight_ == 0) return;
  std::unique_lock<std::mutex> lk(reader_->mu);
  reader_->done_cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return !reader_->done.empty(); });
}

void RadixCache::poll() {
  if (!tiers_.disk) return;
  if (reader_ && n_reads_in_flight_ > 0) {
    std::vector<std::pair<Node*, std::shared_ptr<std::vector<uint8_t>>>> done;
    {
      std::lock_guard<std::mutex> lk(reader_->mu);
      done.swap(reader_->done);
    }
    for (auto& [n, blob] : done) {
      --n_reads_in_flight_;
      n->reading = false;
      unlock_node(n);
      if (n->tier != kL3 || n->host) continue;  // the page came back by other means meanwhile
      if (blob) {
        // An L2 page now (the host budget may be exceeded until the next demotion: the
        // request waiting for it is about to take it into the pool).
        n->host = std::move(blob);
        host_used_ += page_bytes_;
        set_tier(n, kL2);
        touch(n);  // the most recent L2 page: not the next to be demoted again
        n->prefetched = true;
        ++stats_.prefetched;
      } else {
        ++stats_.promote_failures;
        n->disk = Node::kNone;  // its file is gone (rejected): match() stops before it
      }
    }
  }
  for (const auto& [key, ok] : tiers_.disk->poll()) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) continue;
    Node* n = it->second;
    if (ok) {
      n->disk = Node::kOnDisk;
      if (n->tier == kL3) n->host.reset();
      continue;
    }
    n->disk = Node::kNone;
    by_key_.erase(it);
    if (n->tier == kL3 && !n->host) remove_subtree(n);  // its only copy is gone (kept while locked)
  }
}

TierStats RadixCache::stats() const {
  TierStats s = stats_;
  for (int t = 0; t < 3; ++t) s.pages[t] = static_cast<uint64_t>(tier_nodes_[t]);
  s.bytes[kL1] = s.pages[kL1] * pool_.config().page_bytes();
  s.bytes[kL2] = host_used_;
  if (tiers_.disk) {
    const DiskTierStats d = tiers_.disk->stats();
    s.pages[kL3] = d.files;
    s.bytes[kL3] = d.bytes;
  }
  return s;
}

}  // namespace tachyon::kv
