#include "kv/kv_pool.h"

#include <sys/mman.h>

#include <cassert>
#include <cstring>
#include <new>

namespace tachyon::kv {

std::unique_ptr<f16_t, KvPool::FreeDeleter> KvPool::alloc_zeroed(size_t n) {
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
  KvPool p;
  p.cfg_ = cfg;
  p.k_row_ = KvConfig::row_units(cfg.type, cfg.head_dim_k);
  p.v_row_ = KvConfig::row_units(cfg.type, cfg.head_dim_v);
  const size_t per_page = static_cast<size_t>(cfg.n_layer) * cfg.n_kv_head * cfg.page_size;
  p.k_n_ = per_page * p.k_row_ * cfg.n_pages;
  p.v_n_ = per_page * p.v_row_ * cfg.n_pages;
  p.k_ = alloc_zeroed(p.k_n_);
  p.v_ = alloc_zeroed(p.v_n_);
  if (!p.k_ || !p.v_)
    return Status(ErrorCode::kInvalidArgument, "kv: cannot allocate " + std::to_string(cfg.n_pages) + " pages");
  p.refs_.assign(cfg.n_pages, 0);
  p.free_.reserve(cfg.n_pages);
  for (int32_t i = cfg.n_pages - 1; i >= 0; --i) p.free_.push_back(i);
  return p;
}

bool parse_kv_type(const std::string& s, KvType* out) {
  if (s == "f16") *out = KvType::kF16;
  else if (s == "q8_0") *out = KvType::kQ8_0;
  else return false;
  return true;
}

int32_t KvPool::alloc() {
  if (free_.empty()) return -1;
  const int32_t p = free_.back();
  free_.pop_back();
  assert(refs_[p] == 0);
  refs_[p] = 1;
  return p;
}

void KvPool::retain(int32_t page) {
  assert(refs_[page] > 0);
  ++refs_[page];
}

void KvPool::release(int32_t page) {
  assert(refs_[page] > 0);
  if (--refs_[page] == 0) free_.push_back(page);
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
