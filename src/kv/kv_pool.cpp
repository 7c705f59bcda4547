#include "kv/kv_pool.h"

#include <sys/mman.h>

#include <cassert>
#include <cstring>
#include <new>

namespace tachyon::kv {

namespace {
constexpr f16_t kNanF16 = 0x7E00;  // fills the slot of pages without one (Q8_0: NaN scales)
}  // namespace

std::unique_ptr<f16_t, KvPool::FreeDeleter> KvPool::alloc_zeroed(size_t n) {
  if (n == 0) return nullptr;
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = (n * sizeof(f16_t) + kHuge - 1) / kHuge * kHuge;
  auto* p = static_cast<f16_t*>(std::aligned_alloc(kHuge, bytes));
  if (!p) return nullptr;
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, n * sizeof(f16_t));
  return std::unique_ptr<f16_t, FreeDeleter>(p);
}

Result<KvPool> KvPool::create(const KvConfig& cfg) {
  if (cfg.n_layer <= 0 || cfg.n_kv_head <= 0 || cfg.head_dim_k <= 0 || cfg.head_dim_v <= 0 || cfg.page_size <= 0 ||
      cfg.n_pages <= 0)
    return invalid_argument("kv: invalid cache configuration (all sizes must be positive)");
  if (cfg.type == KvType::kQ8_0 && (cfg.head_dim_k % 32 != 0 || cfg.head_dim_v % 32 != 0))
    return invalid_argument("kv: q8_0 cache needs head dims that are multiples of 32 (have " +
                            std::to_string(cfg.head_dim_k) + ", " + std::to_string(cfg.head_dim_v) + ")");
  if (!cfg.local_layers.empty() && cfg.local_layers.size() != static_cast<size_t>(cfg.n_layer))
    return invalid_argument("kv: " + std::to_string(cfg.local_layers.size()) + " sliding-window layer flags for " +
                            std::to_string(cfg.n_layer) + " layers");
  const int n_local = cfg.n_local();
  if (n_local > 0 && cfg.window <= 0)
    return invalid_argument("kv: sliding-window layers need a positive window (have " + std::to_string(cfg.window) +
                            ")");
  if (cfg.n_local_slots < 0)
    return invalid_argument("kv: negative number of local slots (" + std::to_string(cfg.n_local_slots) + ")");
  KvPool p;
  p.cfg_ = cfg;
  p.k_row_ = KvConfig::row_units(cfg.type, cfg.head_dim_k);
  p.v_row_ = KvConfig::row_units(cfg.type, cfg.head_dim_v);
  p.local_of_.assign(cfg.n_layer, 0);
  p.arena_layer_.assign(cfg.n_layer, 0);
  int n_g = 0, n_l = 0;
  for (int l = 0; l < cfg.n_layer; ++l) {
    p.local_of_[l] = !cfg.local_layers.empty() && cfg.local_layers[l] != 0;
    p.arena_layer_[l] = p.local_of_[l] ? n_l++ : n_g++;
  }
  p.n_slots_ = n_local > 0 ? (cfg.n_local_slots > 0 ? cfg.n_local_slots : cfg.n_pages) : 0;
  const size_t per_id = static_cast<size_t>(cfg.n_kv_head) * cfg.page_size;  // rows of one page of one layer
  p.k_n_ = per_id * p.k_row_ * n_g * cfg.n_pages;
  p.v_n_ = per_id * p.v_row_ * n_g * cfg.n_pages;
  const size_t n_ids = n_local > 0 ? static_cast<size_t>(p.n_slots_) + 1 : 0;  // + the NaN slot
  p.lk_n_ = per_id * p.k_row_ * n_l * n_ids;
  p.lv_n_ = per_id * p.v_row_ * n_l * n_ids;
  p.k_ = alloc_zeroed(p.k_n_);
  p.v_ = alloc_zeroed(p.v_n_);
  p.lk_ = alloc_zeroed(p.lk_n_);
  p.lv_ = alloc_zeroed(p.lv_n_);
  if ((p.k_n_ > 0 && (!p.k_ || !p.v_)) || (p.lk_n_ > 0 && (!p.lk_ || !p.lv_)))
    return Status(ErrorCode::kInvalidArgument, "kv: cannot allocate " + std::to_string(cfg.n_pages) + " pages and " +
                                                   std::to_string(p.n_slots_) + " local slots");
  p.refs_.assign(cfg.n_pages, 0);
  p.free_.reserve(cfg.n_pages);
  for (int32_t i = cfg.n_pages - 1; i >= 0; --i) p.free_.push_back(i);
  if (p.n_slots_ > 0) {
    // the NaN slot of every (local layer, head)
    for (int l = 0; l < n_l; ++l)
      for (int h = 0; h < cfg.n_kv_head; ++h) {
        const size_t run = static_cast<size_t>(cfg.page_size);
        const size_t base = ((static_cast<size_t>(l) * cfg.n_kv_head + h) * n_ids + p.n_slots_) * run;
        std::fill_n(p.lk_.get() + base * p.k_row_, run * p.k_row_, kNanF16);
        std::fill_n(p.lv_.get() + base * p.v_row_, run * p.v_row_, kNanF16);
      }
    p.page_slot_.assign(cfg.n_pages, -1);
    p.local_refs_.assign(cfg.n_pages, 0);
    p.slot_page_.assign(p.n_slots_, -1);
    p.slot_prev_.assign(p.n_slots_, -1);
    p.slot_next_.assign(p.n_slots_, -1);
    p.slot_free_.assign(p.n_slots_, 0);
    for (int32_t s = p.n_slots_ - 1; s >= 0; --s) p.push_slot(s, /*front=*/true);
  }
  return p;
}

bool parse_kv_type(const std::string& s, KvType* out) {
  if (s == "f16") *out = KvType::kF16;
  else if (s == "q8_0") *out = KvType::kQ8_0;
  else return false;
  return true;
}

void KvPool::push_slot(int32_t slot, bool front) {
  assert(!slot_free_[slot]);
  slot_free_[slot] = 1;
  ++n_free_slots_;
  if (free_head_ < 0) {
    slot_prev_[slot] = slot_next_[slot] = -1;
    free_head_ = free_tail_ = slot;
  } else if (front) {
    slot_prev_[slot] = -1;
    slot_next_[slot] = free_head_;
    slot_prev_[free_head_] = slot;
    free_head_ = slot;
  } else {
    slot_next_[slot] = -1;
    slot_prev_[slot] = free_tail_;
    slot_next_[free_tail_] = slot;
    free_tail_ = slot;
  }
}

void KvPool::unlink_slot(int32_t slot) {
  assert(slot_free_[slot]);
  const int32_t a = slot_prev_[slot], b = slot_next_[slot];
  if (a >= 0) slot_next_[a] = b;
  else free_head_ = b;
  if (b >= 0) slot_prev_[b] = a;
  else free_tail_ = a;
  slot_prev_[slot] = slot_next_[slot] = -1;
  slot_free_[slot] = 0;
  --n_free_slots_;
}

int32_t KvPool::alloc() {
  if (free_.empty() || (has_local_layers() && n_free_slots_ == 0)) return -1;
  const int32_t p = free_.back();
  free_.pop_back();
  assert(refs_[p] == 0);
  refs_[p] = 1;
  if (has_local_layers()) {
    const int32_t s = free_head_;
    unlink_slot(s);
    if (slot_page_[s] >= 0) page_slot_[slot_page_[s]] = -1;  // a dropped page loses its window KV
    slot_page_[s] = p;
    page_slot_[p] = s;
    local_refs_[p] = 1;
  }
  return p;
}

void KvPool::retain(int32_t page) {
  assert(refs_[page] > 0);
  ++refs_[page];
}

void KvPool::release(int32_t page) {
  assert(refs_[page] > 0);
  if (--refs_[page] > 0) return;
  free_.push_back(page);
  if (!has_local_layers()) return;
  const int32_t s = page_slot_[page];
  if (s >= 0) {
    if (slot_free_[s]) unlink_slot(s);
    slot_page_[s] = -1;
    page_slot_[page] = -1;
    push_slot(s, /*front=*/true);  // its contents are of no use to anyone
  }
  local_refs_[page] = 0;
}

bool KvPool::retain_local(int32_t page) {
  assert(refs_[page] > 0);
  if (!has_local_layers()) return true;
  const int32_t s = page_slot_[page];
  if (s < 0) return false;
  if (local_refs_[page]++ == 0) unlink_slot(s);
  return true;
}

void KvPool::drop_local(int32_t page) {
  assert(refs_[page] > 0);
  if (!has_local_layers()) return;
  assert(local_refs_[page] > 0 && page_slot_[page] >= 0);
  if (--local_refs_[page] == 0) push_slot(page_slot_[page], /*front=*/false);
}

void KvPool::read_page(int32_t page, uint8_t* out) const {
  if (has_local_layers()) return;
  const size_t kb = static_cast<size_t>(cfg_.page_size) * k_row_ * sizeof(f16_t);
  const size_t vb = static_cast<size_t>(cfg_.page_size) * v_row_ * sizeof(f16_t);
  for (int l = 0; l < cfg_.n_layer; ++l)
    for (int h = 0; h < cfg_.n_kv_head; ++h) {
      std::memcpy(out, k(page, l, h), kb);
      std::memcpy(out + kb, v(page, l, h), vb);
      out += kb + vb;
    }
}

void KvPool::write_page(int32_t page, const uint8_t* in) {
  if (has_local_layers()) return;
  const size_t kb = static_cast<size_t>(cfg_.page_size) * k_row_ * sizeof(f16_t);
  const size_t vb = static_cast<size_t>(cfg_.page_size) * v_row_ * sizeof(f16_t);
  for (int l = 0; l < cfg_.n_layer; ++l)
    for (int h = 0; h < cfg_.n_kv_head; ++h) {
      std::memcpy(k(page, l, h), in, kb);
      std::memcpy(v(page, l, h), in + kb, vb);
      in += kb + vb;
    }
}

bool PageTable::reserve(KvPool& pool, int32_t n) {
  const int32_t need = (n + pool.page_size() - 1) / pool.page_size();
  while (static_cast<int32_t>(pages.size()) < need) {
    const int32_t p = pool.alloc();
    if (p < 0) return false;
    pages.push_back(p);
  }
  return true;
}

void PageTable::clear(KvPool& pool) {
  for (int32_t p : pages) pool.release(p);
  pages.clear();
  n_tokens = 0;
}

}  // namespace tachyon::kv
