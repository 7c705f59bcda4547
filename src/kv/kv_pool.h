// Paged KV storage, owned outside the model. Fixed-size pages of `page_size` tokens;
// a sequence addresses its KV through a page table (page ids in position order).
// Pages are refcounted so that sequences (and the radix prefix cache) can share them.
//
// Sliding-window layers (Gemma 3: five of every six) keep their K and V in a second,
// smaller arena of "local slots". A page owns a slot while its window KV may still be
// read; a query at position p of such a layer reads only keys >= p - window + 1, so a
// sequence gives up the slots of the pages behind its window (drop_local) and the same
// memory serves other pages. A dropped slot keeps its contents, still attached to its
// page, until alloc() hands it out again (oldest drop first): a prefix cached in the
// radix tree stays usable until then (has_local / retain_local tell).
//
// Single-threaded: owned by the engine thread (no locks by design).
#pragma once
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
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
  // [n_layer] 1 = a sliding-window layer whose K/V live in the local arena; empty = none.
  std::vector<uint8_t> local_layers = {};
  int window = 0;         // the largest window of the local layers (tokens)
  int n_local_slots = 0;  // slots of the local arena; 0 = one per page (nothing ever runs short)

  // Storage of one row of `dim` values, in f16-sized units (a Q8_0 block is 17 of them).
  static int row_units(KvType t, int dim) { return t == KvType::kQ8_0 ? dim / 32 * 17 : dim; }
  int n_local() const {
    int n = 0;
    for (uint8_t f : local_layers) n += f != 0;
    return n;
  }
  int n_global() const { return n_layer - n_local(); }
  // Bytes of one page of one layer (all heads, K and V).
  size_t layer_page_bytes() const {
    return static_cast<size_t>(n_kv_head) * page_size * (row_units(type, head_dim_k) + row_units(type, head_dim_v)) *
           sizeof(f16_t);
  }
  // Bytes of one page over all layers (what a page costs without a local arena).
  size_t page_bytes() const { return static_cast<size_t>(n_layer) * layer_page_bytes(); }
  // Bytes of one page in the global arena, and of one slot in the local arena.
  size_t global_page_bytes() const { return static_cast<size_t>(n_global()) * layer_page_bytes(); }
  size_t local_slot_bytes() const { return static_cast<size_t>(n_local()) * layer_page_bytes(); }
};

// "f16" | "q8_0" -> type; false for anything else.
bool parse_kv_type(const std::string& s, KvType* out);

class KvPool {
 public:
  // Allocates n_pages pages (and the local slots); fails cleanly when the memory is not
  // available or the configuration is inconsistent.
  static Result<KvPool> create(const KvConfig& cfg);

  const KvConfig& config() const { return cfg_; }
  int page_size() const { return cfg_.page_size; }
  int n_pages() const { return cfg_.n_pages; }
  // Pages alloc() can still hand out: free pages, and free local slots when there are
  // local layers (slots held by no reader, attached or not).
  int n_free() const { return has_local_layers() ? std::min(n_free_pages(), n_free_slots_) : n_free_pages(); }
  int n_free_pages() const { return static_cast<int>(free_.size()); }
  bool has_local_layers() const { return n_slots_ > 0; }
  int n_local_slots() const { return n_slots_; }
  int n_free_local_slots() const { return n_free_slots_; }
  // Bytes really allocated (both arenas).
  size_t bytes() const { return (k_n_ + v_n_ + lk_n_ + lv_n_) * sizeof(f16_t); }
  KvType type() const { return cfg_.type; }
  // Bytes between consecutive rows (tokens) of one page's K or V.
  size_t k_row_bytes() const { return static_cast<size_t>(k_row_) * sizeof(f16_t); }
  size_t v_row_bytes() const { return static_cast<size_t>(v_row_) * sizeof(f16_t); }

  // Takes a free page with refcount 1 and, with local layers, a free local slot held by
  // the caller (one local reference); -1 when either is exhausted. A slot taken from a
  // dropped page detaches it from that page. O(1).
  int32_t alloc();
  // Adds a reference to a page in use (no local reference). O(1).
  void retain(int32_t page);
  // Drops a reference; at zero the page returns to the free list and its local slot, if
  // any, with it (whatever local references remain). O(1).
  void release(int32_t page);
  int refcount(int32_t page) const { return refs_[page]; }

  // Local references count the readers that may still read a page's sliding-window KV;
  // at zero the slot is free for alloc() but keeps its contents until taken.
  // Whether the page still has its slot (held or dropped but not yet reused); always true
  // without local layers. O(1).
  bool has_local(int32_t page) const { return !has_local_layers() || page_slot_[page] >= 0; }
  // Takes a local reference on a page in use; reclaims its dropped slot if it is still
  // attached. False (nothing taken) when the slot is gone. O(1).
  bool retain_local(int32_t page);
  // Gives a local reference back (the caller will not read the page's window KV again);
  // at zero the slot joins the free list, behind slots never used. O(1).
  void drop_local(int32_t page);
  int local_refs(int32_t page) const { return has_local_layers() ? local_refs_[page] : 0; }

  // K of one page, layer and kv head: [page_size][head_dim_k] f16, contiguous (for kQ8_0
  // the same place holds [page_size][head_dim_k / 32] Q8_0 blocks: use k_bytes()). For a
  // local layer the page must have its slot (has_local); without it the pointer is to a
  // slot of NaNs (debug builds assert), never to another page's KV.
  f16_t* k(int32_t page, int layer, int head) { return k_base(layer) + offset(page, layer, head, k_row_); }
  const f16_t* k(int32_t page, int layer, int head) const { return k_base(layer) + offset(page, layer, head, k_row_); }
  // V of one page, layer and kv head: [page_size][head_dim_v] f16, contiguous.
  f16_t* v(int32_t page, int layer, int head) { return v_base(layer) + offset(page, layer, head, v_row_); }
  const f16_t* v(int32_t page, int layer, int head) const { return v_base(layer) + offset(page, layer, head, v_row_); }
  // A page's KV as one byte string (the unit the L2/L3 cache tiers store): for each
  // layer and kv head, K's rows then V's rows. Pools with sliding-window layers have no
  // such form (their window KV lives in slots): 0 and no-ops there. O(page bytes).
  size_t page_payload_bytes() const {
    return has_local_layers() ? 0 : cfg_.page_bytes();
  }
  void read_page(int32_t page, uint8_t* out) const;
  void write_page(int32_t page, const uint8_t* in);
  uint8_t* k_bytes(int32_t page, int layer, int head) { return reinterpret_cast<uint8_t*>(k(page, layer, head)); }
  const uint8_t* k_bytes(int32_t page, int layer, int head) const {
    return reinterpret_cast<const uint8_t*>(k(page, layer, head));
  }
  uint8_t* v_bytes(int32_t page, int layer, int head) { return reinterpret_cast<uint8_t*>(v(page, layer, head)); }
  const uint8_t* v_bytes(int32_t page, int layer, int head) const {
    return reinterpret_cast<const uint8_t*>(v(page, layer, head));
  }

 private:
  f16_t* k_base(int layer) const { return local_of_[layer] ? lk_.get() : k_.get(); }
  f16_t* v_base(int layer) const { return local_of_[layer] ? lv_.get() : v_.get(); }
  // Global layers: [global layer][head][page]; local layers: [local layer][head][slot],
  // where slot n_slots_ is the NaN slot that pages without a slot map to.
  size_t offset(int32_t page, int layer, int head, int row_units) const {
    size_t id, n_ids;
    if (local_of_[layer]) {
      id = slot_for_read(page);
      n_ids = static_cast<size_t>(n_slots_) + 1;
    } else {
      id = static_cast<size_t>(page);
      n_ids = static_cast<size_t>(cfg_.n_pages);
    }
    return ((static_cast<size_t>(arena_layer_[layer]) * cfg_.n_kv_head + head) * n_ids + id) * cfg_.page_size *
           row_units;
  }
  size_t slot_for_read(int32_t page) const {
    const int32_t s = page_slot_[page];
    assert(s >= 0 && "kv: sliding-window KV read from a page without its local slot");
    return s >= 0 ? static_cast<size_t>(s) : static_cast<size_t>(n_slots_);
  }
  // Free-slot list: taken from the head; unused slots go to the head, dropped ones to the
  // tail (reused last, oldest first).
  void push_slot(int32_t slot, bool front);
  void unlink_slot(int32_t slot);

  struct FreeDeleter {
    void operator()(f16_t* p) const { std::free(p); }
  };
  // Zeroed, 2 MiB-aligned and advised as huge pages: decode reads a page's 2-4 KiB of K
  // and V per (layer, head) at a stride of a whole page, one TLB miss each with 4 KiB pages.
  static std::unique_ptr<f16_t, FreeDeleter> alloc_zeroed(size_t n);

  KvConfig cfg_;
  // Global arena [n_global][n_kv_head][n_pages][page_size][head_dim], local arena
  // [n_local][n_kv_head][n_slots + 1][page_size][head_dim]: one (layer, head) of
  // consecutive ids (pages, or slots) is one contiguous run, so attention over a
  // sequence whose pages (and slots) were handed out in order streams sequentially (the
  // hardware prefetcher reaches full bandwidth; a page-major layout read 2 KiB runs at a
  // large stride, about half of it).
  std::unique_ptr<f16_t, FreeDeleter> k_, v_, lk_, lv_;
  size_t k_n_ = 0, v_n_ = 0, lk_n_ = 0, lv_n_ = 0;
  int k_row_ = 0, v_row_ = 0;  // units (f16-sized) per row
  std::vector<uint8_t> local_of_;    // [n_layer] 1 = local layer
  std::vector<int32_t> arena_layer_;  // [n_layer] index of the layer within its arena
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // stack of free page ids
  // Local slots (all empty without local layers).
  int n_slots_ = 0;
  int n_free_slots_ = 0;
  std::vector<int32_t> page_slot_;   // [n_pages] attached slot or -1
  std::vector<int32_t> local_refs_;  // [n_pages] readers of the page's window KV
  std::vector<int32_t> slot_page_;   // [n_slots] attached page or -1
  std::vector<int32_t> slot_prev_, slot_next_;  // [n_slots] free-list links (-1: none)
  std::vector<uint8_t> slot_free_;   // [n_slots] 1 = in the free list
  int32_t free_head_ = -1, free_tail_ = -1;
};

// What the forward pass sees of the KV cache: the rows of pages by (page, layer, head)
// and the pool's geometry, not its allocator (no alloc, release, refcounts, tiers): the
// model reads and writes KV where the engine's page tables point, and who holds which
// page, and in which cache tier, stays the engine's and the radix cache's business.
// A pointer-sized handle, passed by value or const reference; reading code takes
// `const KvView&` (const accessors only). Converts implicitly from a pool.
class KvView {
 public:
  KvView(KvPool& pool) : p_(&pool) {}  // NOLINT(google-explicit-constructor)
  KvView(const KvPool& pool) : p_(const_cast<KvPool*>(&pool)) {}  // NOLINT: reads through a const view only

  const KvConfig& config() const { return p_->config(); }
  int page_size() const { return p_->page_size(); }
  KvType type() const { return p_->type(); }
  bool has_local_layers() const { return p_->has_local_layers(); }
  size_t k_row_bytes() const { return p_->k_row_bytes(); }
  size_t v_row_bytes() const { return p_->v_row_bytes(); }
  f16_t* k(int32_t page, int layer, int head) { return p_->k(page, layer, head); }
  const f16_t* k(int32_t page, int layer, int head) const { return std::as_const(*p_).k(page, layer, head); }
  f16_t* v(int32_t page, int layer, int head) { return p_->v(page, layer, head); }
  const f16_t* v(int32_t page, int layer, int head) const { return std::as_const(*p_).v(page, layer, head); }
  uint8_t* k_bytes(int32_t page, int layer, int head) { return p_->k_bytes(page, layer, head); }
  const uint8_t* k_bytes(int32_t page, int layer, int head) const {
    return std::as_const(*p_).k_bytes(page, layer, head);
  }
  uint8_t* v_bytes(int32_t page, int layer, int head) { return p_->v_bytes(page, layer, head); }
  const uint8_t* v_bytes(int32_t page, int layer, int head) const {
    return std::as_const(*p_).v_bytes(page, layer, head);
  }

 private:
  KvPool* p_;
};

// A sequence's page table: page i holds positions [i*page_size, (i+1)*page_size).
struct PageTable {
  std::vector<int32_t> pages;
  int32_t n_tokens = 0;  // positions with KV written

  // Grows the table so positions [0, n) have pages; false when the pool is exhausted
  // (pages taken so far stay in the table). New pages hold a local reference.
  bool reserve(KvPool& pool, int32_t n);
  // Releases every page and empties the table. A local reference on a page that stays in
  // use (shared) is not given back: drop_local it first.
  void clear(KvPool& pool);
};

}  // namespace tachyon::kv
