// Paged KV storage, owned outside the model. Fixed-size pages of `page_size` tokens;
// a sequence addresses its KV through a page table (page ids in position order).
// Pages are refcounted so that sequences (and later the radix prefix cache) can share
// them. Single-threaded: owned by the engine thread (no locks by design).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "base/status.h"

namespace tachyon::kv {

// Element type of the cached K and V rows. kQ8_0: llama.cpp's Q8_0 blocks (32 int8 and
// one f16 scale, 34 bytes per 32 values): about half the bytes of f16.
enum class KvType { kF16, kQ8_0 };

struct KvConfig {
  int n_layer = 0;
  int n_kv_head = 0;
  int head_dim_k = 0;
  int head_dim_v = 0;
  int page_size = 16;  // tokens per page
  int n_pages = 0;
  KvType type = KvType::kF16;

  // Storage of one row of `dim` values, in f16-sized units (a Q8_0 block is 17 of them).
  static int row_units(KvType t, int dim) { return t == KvType::kQ8_0 ? dim / 32 * 17 : dim; }
  // Bytes of one page (all layers and heads, K and V).
  size_t page_bytes() const {
    return static_cast<size_t>(n_layer) * n_kv_head * page_size *
           (row_units(type, head_dim_k) + row_units(type, head_dim_v)) * sizeof(f16_t);
  }
};

// "f16" | "q8_0" -> type; false for anything else.
bool parse_kv_type(const std::string& s, KvType* out);

class KvPool {
 public:
  // Allocates n_pages pages; fails cleanly when the memory is not available.
  static Result<KvPool> create(const KvConfig& cfg);

  const KvConfig& config() const { return cfg_; }
  int page_size() const { return cfg_.page_size; }
  int n_pages() const { return cfg_.n_pages; }
  int n_free() const { return static_cast<int>(free_.size()); }
  size_t bytes() const { return (k_n_ + v_n_) * sizeof(f16_t); }
  KvType type() const { return cfg_.type; }
  // Bytes between consecutive rows (tokens) of one page's K or V.
  size_t k_row_bytes() const { return static_cast<size_t>(k_row_) * sizeof(f16_t); }
  size_t v_row_bytes() const { return static_cast<size_t>(v_row_) * sizeof(f16_t); }

  // Takes a free page with refcount 1; -1 when none is free. O(1).
  int32_t alloc();
  // Adds a reference to a page in use. O(1).
  void retain(int32_t page);
  // Drops a reference; the page returns to the free list at zero. O(1).
  void release(int32_t page);
  int refcount(int32_t page) const { return refs_[page]; }

  // K of one page, layer and kv head: [page_size][head_dim_k] f16, contiguous (for kQ8_0
  // the same place holds [page_size][head_dim_k / 32] Q8_0 blocks: use k_bytes()).
  f16_t* k(int32_t page, int layer, int head) { return k_.get() + k_offset(page, layer, head); }
  const f16_t* k(int32_t page, int layer, int head) const { return k_.get() + k_offset(page, layer, head); }
  // V of one page, layer and kv head: [page_size][head_dim_v] f16, contiguous.
  f16_t* v(int32_t page, int layer, int head) { return v_.get() + v_offset(page, layer, head); }
  const f16_t* v(int32_t page, int layer, int head) const { return v_.get() + v_offset(page, layer, head); }
  uint8_t* k_bytes(int32_t page, int layer, int head) { return reinterpret_cast<uint8_t*>(k(page, layer, head)); }
  const uint8_t* k_bytes(int32_t page, int layer, int head) const {
    return reinterpret_cast<const uint8_t*>(k(page, layer, head));
  }
  uint8_t* v_bytes(int32_t page, int layer, int head) { return reinterpret_cast<uint8_t*>(v(page, layer, head)); }
  const uint8_t* v_bytes(int32_t page, int layer, int head) const {
    return reinterpret_cast<const uint8_t*>(v(page, layer, head));
  }

 private:
  size_t k_offset(int32_t page, int layer, int head) const {
    return ((static_cast<size_t>(layer) * cfg_.n_kv_head + head) * cfg_.n_pages + page) * cfg_.page_size * k_row_;
  }
  size_t v_offset(int32_t page, int layer, int head) const {
    return ((static_cast<size_t>(layer) * cfg_.n_kv_head + head) * cfg_.n_pages + page) * cfg_.page_size * v_row_;
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
  int k_row_ = 0, v_row_ = 0;  // units (f16-sized) per row
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
