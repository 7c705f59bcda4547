// Paged KV storage, owned outside the model. Fixed-size pages of `page_size` tokens;
// a sequence addresses its KV through a page table (page ids in position order).
// Pages are refcounted so that sequences (and later the radix prefix cache) can share
// them. Single-threaded: owned by the engine thread (no locks by design).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "base/fp16.h"
#include "base/status.h"

namespace tachyon::kv {

struct KvConfig {
  int n_layer = 0;
  int n_kv_head = 0;
  int head_dim_k = 0;
  int head_dim_v = 0;
  int page_size = 16;  // tokens per page
  int n_pages = 0;
};

class KvPool {
 public:
  // Allocates n_pages pages; fails cleanly when the memory is not available.
  static Result<KvPool> create(const KvConfig& cfg);

  const KvConfig& config() const { return cfg_; }
  int page_size() const { return cfg_.page_size; }
  int n_pages() const { return cfg_.n_pages; }
  int n_free() const { return static_cast<int>(free_.size()); }
  size_t bytes() const { return (k_n_ + v_n_) * sizeof(f16_t); }

  // Takes a free page with refcount 1; -1 when none is free. O(1).
  int32_t alloc();
  // Adds a reference to a page in use. O(1).
  void retain(int32_t page);
  // Drops a reference; the page returns to the free list at zero. O(1).
  void release(int32_t page);
  int refcount(int32_t page) const { return refs_[page]; }

  // K of one page, layer and kv head: [page_size][head_dim_k] f16, contiguous.
  f16_t* k(int32_t page, int layer, int head) { return k_.get() + k_offset(page, layer, head); }
  const f16_t* k(int32_t page, int layer, int head) const { return k_.get() + k_offset(page, layer, head); }
  // V of one page, layer and kv head: [page_size][head_dim_v] f16, contiguous.
  f16_t* v(int32_t page, int layer, int head) { return v_.get() + v_offset(page, layer, head); }
  const f16_t* v(int32_t page, int layer, int head) const { return v_.get() + v_offset(page, layer, head); }

 private:
  size_t k_offset(int32_t page, int layer, int head) const {
    return ((static_cast<size_t>(layer) * cfg_.n_kv_head + head) * cfg_.n_pages + page) * cfg_.page_size * cfg_.head_dim_k;
  }
  size_t v_offset(int32_t page, int layer, int head) const {
    return ((static_cast<size_t>(layer) * cfg_.n_kv_head + head) * cfg_.n_pages + page) * cfg_.page_size * cfg_.head_dim_v;
  }

  struct FreeDeleter {
    void operator()(f16_t* p) const { std::free(p); }
  };
  // Zeroed, 2 MiB-aligned and advised as huge pages: decode reads a page's 2-4 KiB of K
  // and V per (layer, head) at a stride of a whole page, one TLB miss each with 4 KiB pages.
  static std::unique_ptr<f16_t, FreeDeleter> alloc_zeroed(size_t n);

  KvConfig cfg_;
  // [n_layer][n_kv_head][n_pages][page_size][head_dim]: one (layer, head) of consecutive
  // pages is one contiguous run, so attention over a sequence whose pages were handed
  // out in order streams sequentially (the hardware prefetcher reaches full bandwidth;
  // a page-major layout read 2 KiB runs at a large stride, about half of it).
  std::unique_ptr<f16_t, FreeDeleter> k_;
  std::unique_ptr<f16_t, FreeDeleter> v_;
  size_t k_n_ = 0, v_n_ = 0;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // stack of free page ids
};

// A sequence's page table: page i holds positions [i*page_size, (i+1)*page_size).
struct PageTable {
  std::vector<int32_t> pages;
  int32_t n_tokens = 0;  // positions with KV written

  // Grows the table so positions [0, n) have pages; false when the pool is exhausted
  // (pages taken so far stay in the table).
  bool reserve(KvPool& pool, int32_t n);
  // Releases every page and empties the table.
  void clear(KvPool& pool);
};

}  // namespace tachyon::kv
