#include "model/expert_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/packed.h"
#include "kernels/traits.h"

namespace tachyon::model {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

std::string size_str(size_t b) {
  char buf[32];
  if (b >= (size_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  else if (b >= (size_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else
    std::snprintf(buf, sizeof buf, "%zu bytes", b);
  return buf;
}

// Layouts larger than the file's (IQ3x8) would fit fewer experts in the budget: not here.
bool packs(const ExpertCache::Tensor& t) {
  const kernels::PackedKernels* pk = kernels::packed_kernels(t.type);
  return pk && !pk->grows && t.rows_per_expert % pk->rows == 0;
}

// One expert's matrix of t (raw rows at src) in its cached layout at dst: the packed
// groups where t packs, else the rows as they are.
void pack_matrix(const ExpertCache::Tensor& t, const uint8_t* src, uint8_t* dst) {
  if (packs(t)) {
    const kernels::PackedKernels* pk = kernels::packed_kernels(t.type);
    const size_t gb = pk->group_bytes(t.n_cols);
    for (int64_t g = 0; g < t.rows_per_expert / pk->rows; ++g)
      pk->pack(src + static_cast<size_t>(g) * pk->rows * t.row_bytes, t.row_bytes, t.n_cols, dst + g * gb);
  } else {
    std::memcpy(dst, src, static_cast<size_t>(t.rows_per_expert) * t.row_bytes);
  }
}

}  // namespace

bool ExpertCache::packs_any(int64_t u) const {
  const Layer& L = layers_[unit_layer_[u]];
  return packs(L.t[0]) || packs(L.t[1]) || packs(L.t[2]);
}

Result<std::unique_ptr<ExpertCache>> ExpertCache::create(const std::vector<Layer>& layers,
                                                         const std::vector<std::string>& part_paths,
                                                         const Options& opt) {
  std::unique_ptr<ExpertCache> c(new ExpertCache());
  c->opt_ = opt;
  c->layers_ = layers;
  const size_t nl = layers.size();
  c->unit_base_.resize(nl + 1, 0);
  for (int k = 0; k < 3; ++k) c->part_bytes_[k].assign(nl, 0);
  c->unit_bytes_.assign(nl, 0);
  size_t max_unit = 0;
  for (size_t l = 0; l < nl; ++l) {
    const Layer& L = layers[l];
    c->unit_base_[l + 1] = c->unit_base_[l] + L.n_expert;
    if (L.n_expert == 0) continue;
    size_t ub = 0;
    for (int k = 0; k < 3; ++k) {
      const Tensor& t = L.t[k];
      const size_t raw = static_cast<size_t>(t.rows_per_expert) * t.row_bytes;
      size_t b = raw;
      if (packs(t)) {
        const kernels::PackedKernels* pk = kernels::packed_kernels(t.type);
        b = static_cast<size_t>(t.rows_per_expert / pk->rows) * pk->group_bytes(t.n_cols);
      }
      c->part_bytes_[k][l] = round_up(b, 64);
      ub += c->part_bytes_[k][l];
      c->st_.expert_file_bytes += raw * static_cast<size_t>(L.n_expert);
      // a staged part: the raw bytes and the O_DIRECT rounding on both ends
      c->stage_part_[k] = std::max(c->stage_part_[k], round_up(raw + 2 * c->align_, c->align_));
    }
    c->unit_bytes_[l] = ub;
    max_unit = std::max(max_unit, ub);
    c->st_.expert_bytes += ub * static_cast<size_t>(L.n_expert);
  }
  const int64_t n_units = c->unit_base_[nl];
  c->st_.units = n_units;
  c->st_.budget_bytes = opt.budget;
  if (n_units == 0) return invalid_argument("--mem-budget: the model has no routed experts");
  if (opt.budget < max_unit)
    return invalid_argument("--mem-budget " + size_str(opt.budget) + " is below one expert's weights (" +
                            size_str(max_unit) + "): give at least that");
  // the budget: staging buffers when it has room for them and two slots, then slots
  for (int k = 0; k < 3; ++k) {
    c->stage_off_[k] = c->stage_bytes_;
    c->stage_bytes_ += c->stage_part_[k];
  }
  // a slot holds a repacked unit, or a raw one as a stage holds it (O_DIRECT-aligned)
  c->slot_bytes_ = round_up(std::max(max_unit, c->stage_bytes_), c->align_);
  int n_stages = 0;
  if (opt.prefetch && opt.budget >= kStages * c->stage_bytes_ + 2 * c->slot_bytes_) n_stages = kStages;
  // (no more slots than units: a budget above the experts' bytes holds them all)
  const int64_t n_slots =
      std::min<int64_t>(n_units, static_cast<int64_t>((opt.budget - n_stages * c->stage_bytes_) / c->slot_bytes_));
  c->st_.slots = n_slots;
  c->st_.stages = n_stages;
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t stage_total = static_cast<size_t>(n_stages) * c->stage_bytes_;
  const size_t slots_at = round_up(stage_total, kHuge);
  const size_t want = slots_at + static_cast<size_t>(n_slots) * c->slot_bytes_;
  void* p = mmap(nullptr, want + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return Status(ErrorCode::kIo, "--mem-budget: cannot reserve " + size_str(want) + ": " + std::strerror(errno));
  uint8_t* base = static_cast<uint8_t*>(p);
  uint8_t* aligned = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(base), kHuge));
  if (aligned > base) munmap(base, aligned - base);
  const size_t tail = (base + want + kHuge) - (aligned + want);
  if (tail > 0) munmap(aligned + want, tail);
  madvise(aligned + slots_at, want - slots_at, MADV_HUGEPAGE);
  // Touched now, at load, not at a step's first read into each slot: a huge page's first
  // touch zeroes 2 MiB and may compact memory (tens of ms on a busy machine), which would
  // land on some token's latency. The budget is memory the user gave the cache anyway.
  if (!std::getenv("TACHYON_EXPERT_LAZY"))
    for (size_t off = 0; off < want; off += 4096) aligned[off] = 0;
  c->arena_ = aligned;
  c->arena_bytes_ = want;
  c->stages_ = aligned;
  for (int i = n_stages - 1; i >= 0; --i) c->free_stages_.push_back(i);
  for (int64_t i = n_slots - 1; i >= 0; --i)
    c->free_.push_back(aligned + slots_at + static_cast<size_t>(i) * c->slot_bytes_);
  c->units_.resize(static_cast<size_t>(n_units));
  c->unit_layer_.resize(static_cast<size_t>(n_units));
  for (size_t l = 0; l < nl; ++l)
    for (int64_t u = c->unit_base_[l]; u < c->unit_base_[l + 1]; ++u) {
      c->unit_layer_[u] = static_cast<int>(l);
      Unit& U = c->units_[u];
      U.part_off[0] = 0;
      U.part_off[1] = c->part_bytes_[0][l];
      U.part_off[2] = c->part_bytes_[0][l] + c->part_bytes_[1][l];
    }
  bool direct = opt.direct_io;
  if (const char* e = std::getenv("TACHYON_EXPERT_DIRECT"); e && std::string(e) == "0") direct = false;
  for (const std::string& path : part_paths) {
    const int fb = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fb < 0) return Status(ErrorCode::kIo, path + ": cannot open for expert reads: " + std::strerror(errno));
    posix_fadvise(fb, 0, 0, POSIX_FADV_RANDOM);
    c->fds_buffered_.push_back(fb);
    int fd = direct ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT) : -1;
    if (fd >= 0) {  // some file systems open with O_DIRECT and refuse the reads: try one
      alignas(4096) static thread_local uint8_t probe[4096];
      if (::pread(fd, probe, sizeof probe, 0) < 0) {
        ::close(fd);
        fd = -1;
      }
    }
    if (fd < 0) direct = false;
    c->fds_.push_back(fd);
  }
  c->st_.direct_io = direct;
  if (const char* e = std::getenv("TACHYON_EXPERT_PACK_MIN"); e && *e) c->pack_min_tokens_ = std::atoi(e);
  if (const char* e = std::getenv("TACHYON_EXPERT_REPACK_HITS"); e && *e) c->repack_hits_ = std::atoi(e);
  if (!direct) {
    for (int& fd : c->fds_)
      if (fd >= 0) ::close(fd);
    c->fds_ = c->fds_buffered_;
    c->fds_buffered_.clear();
  }
  if (n_stages > 0) c->reader_ = std::thread([q = c.get()] { q->reader_main(); });
  return c;
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (reader_.joinable()) reader_.join();
  if (arena_) munmap(arena_, arena_bytes_);
  for (int fd : fds_) ::close(fd);
  for (int fd : fds_buffered_) ::close(fd);
}

kernels::MatView ExpertCache::view(int64_t u, int k) const {
  const Unit& U = units_[u];
  const Tensor& t = layers_[unit_layer_[u]].t[k];
  kernels::MatView v;
  v.type = t.type;
  v.n_cols = t.n_cols;
  v.n_rows = t.rows_per_expert;
  v.row_bytes = t.row_bytes;
  if (U.raw) {
    v.data = U.buf + stage_off_[k] + U.raw_skip[k];
    return v;
  }
  const uint8_t* p = U.buf + U.part_off[k];
  if (packs(t)) {
    v.packed = p;
    v.packed_rows = t.rows_per_expert;
  }
  v.data = p;
  return v;
}

bool ExpertCache::evict_one_locked() {
  const size_t n = ring_.size();
  for (size_t step = 0; step < 4 * n + 4 && !ring_.empty(); ++step) {
    if (hand_ >= ring_.size()) hand_ = 0;
    Unit& U = units_[ring_[hand_]];
    if (U.state != State::kReady || U.pins > 0) {
      ++hand_;
      continue;
    }
    if (U.use > 0) {
      --U.use;
      ++hand_;
      continue;
    }
    free_slot_locked(ring_[hand_]);
    U.state = State::kAbsent;
    ++st_.evictions;
    return true;
  }
  return false;
}

void ExpertCache::free_slot_locked(int64_t u) {
  Unit& U = units_[u];
  if (U.buf) {
    free_.push_back(U.buf);
    allocated_ -= slot_bytes_;
  }
  U.buf = nullptr;
  U.use = 0;
  if (U.ring_pos >= 0) {
    const int64_t last = ring_.back();
    ring_[U.ring_pos] = last;
    units_[last].ring_pos = U.ring_pos;
    ring_.pop_back();
    U.ring_pos = -1;
  }
}

void ExpertCache::free_stage_locked(int64_t u) {
  Unit& U = units_[u];
  if (U.stage >= 0) free_stages_.push_back(U.stage);
  U.stage = -1;
  staged_.erase(std::find(staged_.begin(), staged_.end(), u));
}

bool ExpertCache::reserve_locked(int64_t u) {
  Unit& U = units_[u];
  while (free_.empty())
    if (!evict_one_locked()) return false;
  U.buf = free_.back();
  free_.pop_back();
  allocated_ += slot_bytes_;
  U.ring_pos = static_cast<int>(ring_.size());
  ring_.push_back(u);
  U.use = 0;
  return true;
}

Status ExpertCache::pread_part(int64_t u, int k, uint8_t* buf, double* read_s, uint64_t* bytes,
                               const uint8_t** out) const {
  const int l = unit_layer_[u];
  const int64_t e = u - unit_base_[l];
  const Tensor& t = layers_[l].t[k];
  const size_t raw = static_cast<size_t>(t.rows_per_expert) * t.row_bytes;
  const uint64_t off = t.file_offset + static_cast<uint64_t>(e) * raw;
  const bool direct = st_.direct_io;
  const uint64_t a = direct ? off / align_ * align_ : off;
  const size_t len = direct ? round_up(off + raw - a, align_) : raw;
  int fd = fds_[t.part];
  const double t0 = now_s();
  size_t got = 0;
  while (got < len) {
    const ssize_t r = ::pread(fd, buf + got, len - got, static_cast<off_t>(a + got));
    if (r < 0 && errno == EINTR) continue;
    // a file system that opened with O_DIRECT but refuses its reads: the same read,
    // through the page cache
    if (r < 0 && errno == EINVAL && direct && fd != fds_buffered_[t.part]) {
      fd = fds_buffered_[t.part];
      continue;
    }
    if (r < 0)
      return Status(ErrorCode::kIo, "expert cache: reading '" + t.name + "' expert " + std::to_string(e) + ": " +
                                        std::strerror(errno));
    if (r == 0) break;  // end of file (O_DIRECT reads round past it)
    got += static_cast<size_t>(r);
  }
  *read_s += now_s() - t0;
  *bytes += got;
  if (got < off - a + raw)
    return Status(ErrorCode::kCorrupt, "expert cache: '" + t.name + "' expert " + std::to_string(e) + ": file too short");
  *out = buf + (off - a);
  return Status::ok();
}

Status ExpertCache::pack_part(int64_t u, int k, const uint8_t* src, double* pack_s) {
  const double t0 = now_s();
  const int l = unit_layer_[u];
  const int64_t e = u - unit_base_[l];
  const Tensor& t = layers_[l].t[k];
  const kernels::TypeTraits* tt = kernels::type_traits(t.type);
  if (tt && tt->validate && !tt->validate(src, t.n_cols * t.rows_per_expert)) {
    *pack_s += now_s() - t0;
    return Status(ErrorCode::kCorrupt, "tensor '" + t.name + "' expert " + std::to_string(e) + ": type " +
                                           std::string(dtype_info(t.type).name) +
                                           " data holds an invalid block (NaN/Inf scale or out-of-range index)");
  }
  Unit& U = units_[u];
  if (U.raw) {
    uint8_t* dst = U.buf + stage_off_[k];
    if (src >= dst && src < dst + stage_part_[k]) {  // read straight into the slot
      U.raw_skip[k] = static_cast<uint32_t>(src - dst);
    } else {  // from a stage: at the same offset as there
      U.raw_skip[k] = U.stage_skip[k];
      std::memcpy(dst + U.raw_skip[k], src, static_cast<size_t>(t.rows_per_expert) * t.row_bytes);
    }
    *pack_s += now_s() - t0;
    return Status::ok();
  }
  pack_matrix(t, src, U.buf + U.part_off[k]);
  *pack_s += now_s() - t0;
  return Status::ok();
}

void ExpertCache::plan(int layer, const std::vector<int32_t>& active, std::vector<int32_t>* order,
                       std::vector<size_t>* wave_end) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<char> want(static_cast<size_t>(layers_[layer].n_expert), 0);
  for (int32_t e : active) want[e] = 1;
  // prefetches this layer does not need: dropped (a read in flight ends dropped); the
  // accuracy of this layer's prediction steers the next ones (prefetch())
  int right = 0, wrong = 0;
  for (size_t i = 0; i < staged_.size();) {
    const int64_t u = staged_[i];
    const int l = unit_layer_[u];
    Unit& U = units_[u];
    if (l == layer && want[u - unit_base_[l]]) {
      U.drop = false;
      ++right;
      ++i;
      continue;
    }
    wrong += l == layer;
    if (U.state == State::kReading) {
      U.drop = true;
      ++i;
      continue;
    }
    if (U.state == State::kQueued) queue_.erase(std::find(queue_.begin(), queue_.end(), u));
    ++st_.prefetch_dropped;
    U.state = State::kAbsent;
    free_stage_locked(u);  // erases staged_[i]
  }
  if (right + wrong > 0) accuracy_ = 0.9 * accuracy_ + 0.1 * right / static_cast<double>(right + wrong);
  order->clear();
  for (int32_t e : active)
    if (units_[id(layer, e)].state == State::kReady) order->push_back(e);
  const size_t cached = order->size();
  for (int32_t e : active) {
    const State s = units_[id(layer, e)].state;
    if (s == State::kQueued || s == State::kReading || s == State::kStaged) order->push_back(e);
  }
  for (int32_t e : active)
    if (units_[id(layer, e)].state == State::kAbsent) order->push_back(e);
  const size_t cap = std::max<size_t>(1, static_cast<size_t>(st_.slots));
  wave_end->clear();
  size_t at = 0;
  while (at < order->size()) {
    // the cached units fit together (they hold slots already)
    at = std::min(order->size(), at + std::max(cap, at == 0 ? cached : size_t{0}));
    wave_end->push_back(at);
  }
}

Status ExpertCache::acquire(int layer, const int32_t* experts, const int32_t* n_tok, size_t n,
                            kernels::MatView* views, ThreadPool& pool) {
  const double t0 = now_s();
  std::unique_lock<std::mutex> lk(mu_);
  std::vector<int64_t> mine;  // units this call took a slot for
  std::vector<int64_t> repack;  // cached raw units to repack
  {
    int hit = 0;
    for (size_t i = 0; i < n; ++i) hit += units_[id(layer, experts[i])].state == State::kReady;
    if (n > 0) hit_ema_ = 0.95 * hit_ema_ + 0.05 * hit / static_cast<double>(n);
  }
  const auto fail_all = [&](Status st) {
    for (int64_t u : mine) {
      Unit& U = units_[u];
      if (U.stage >= 0 && U.state != State::kReading) free_stage_locked(u);
      if (U.state == State::kReading) {
        U.drop = true;  // the reader frees it
      } else {
        U.state = State::kAbsent;
      }
      free_slot_locked(u);
    }
    for (size_t i = 0; i < n; ++i) {
      Unit& U = units_[id(layer, experts[i])];
      if (U.pins > 0) --U.pins;
    }
    st_.wait_s += now_s() - t0;
    return st;
  };
  for (size_t i = 0; i < n; ++i) {
    const int64_t u = id(layer, experts[i]);
    Unit& U = units_[u];
    ++st_.lookups;
    ++U.pins;
    if (U.state == State::kReady) {
      ++st_.hits;
      U.use = static_cast<uint8_t>(std::min(3, U.use + 1));
      // a raw unit that keeps being used is worth its repacking now
      if (U.raw && repack_hits_ > 0 && hit_ema_ >= kRepackHitRate &&
          (++U.raw_hits >= repack_hits_ || n_tok[i] >= pack_min_tokens_) && packs_any(u)) {
        U.state = State::kLoading;
        repack.push_back(u);
      }
      continue;
    }
    if (U.state == State::kQueued) {  // predicted, not started: read it now instead
      queue_.erase(std::find(queue_.begin(), queue_.end(), u));
      free_stage_locked(u);
      U.state = State::kAbsent;
      ++st_.prefetch_used;
      ++st_.misses;
    } else if (U.state == State::kStaged || U.state == State::kReading) {
      ++st_.prefetch_hits;
      ++st_.prefetch_used;
    } else {
      ++st_.misses;
    }
    if (!reserve_locked(u))
      return fail_all(Status(ErrorCode::kInternal, "expert cache: no room for layer " + std::to_string(layer) +
                                                       "'s experts within --mem-budget"));
    mine.push_back(u);
    U.raw = n_tok[i] < pack_min_tokens_;
    U.raw_hits = 0;
    if (U.state == State::kAbsent) U.state = State::kLoading;
  }
  if (!repack.empty()) {
    // into a scratch unit each (the packed layout overlaps the raw one in the slot), then
    // copied over: parts split over the pool like reads
    lk.unlock();
    if (repack_scratch_.size() < repack.size()) repack_scratch_.resize(repack.size());
    for (size_t i = 0; i < repack.size(); ++i) repack_scratch_[i].resize(slot_bytes_);
    std::vector<double> ps(pool.n_threads(), 0);
    const int64_t n_items = static_cast<int64_t>(repack.size()) * 3;
    const auto work = [&](int ith, int nt) {
      const double t1 = now_s();
      for (int64_t i = ith; i < n_items; i += nt) {
        const int64_t u = repack[i / 3];
        const int k = static_cast<int>(i % 3);
        const Unit& U = units_[u];
        const Tensor& t = layers_[unit_layer_[u]].t[k];
        const uint8_t* src = U.buf + stage_off_[k] + U.raw_skip[k];
        pack_matrix(t, src, repack_scratch_[i / 3].data() + U.part_off[k]);
      }
      ps[ith] += now_s() - t1;
    };
    if (n_items == 1 || pool.n_threads() == 1)
      work(0, 1);
    else
      pool.run(work);
    for (size_t i = 0; i < repack.size(); ++i) {
      Unit& U = units_[repack[i]];
      std::memcpy(U.buf, repack_scratch_[i].data(), unit_bytes_[unit_layer_[repack[i]]]);
      U.raw = false;
    }
    lk.lock();
    for (double x : ps) st_.pack_s += x;
    st_.repacks += repack.size();
    for (int64_t u : repack) units_[u].state = State::kReady;
  }
  // Two batches over the pool: units staged (repack) or absent (pread + repack), then the
  // ones the reader was still reading when they were asked for.
  std::vector<int64_t> batch;
  for (int64_t u : mine)
    if (units_[u].state != State::kReading) batch.push_back(u);
  const int nth = pool.n_threads();
  if (staging_.size() < static_cast<size_t>(nth)) staging_.resize(nth);
  Status failed;
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      batch.clear();
      for (int64_t u : mine) {
        Unit& U = units_[u];
        if (U.state == State::kReady) continue;  // done in round 0
        // still being read, or read since round 0 began
        cv_.wait(lk, [&] { return U.state != State::kReading; });
        if (U.state == State::kAbsent) U.state = State::kLoading;  // the read failed: again here
        batch.push_back(u);
      }
    }
    if (batch.empty()) continue;
    // work items: (unit, part); a staged unit's parts are repacked from its stage
    std::vector<const uint8_t*> staged_src(batch.size() * 3, nullptr);
    for (size_t i = 0; i < batch.size(); ++i) {
      Unit& U = units_[batch[i]];
      if (U.state == State::kStaged) {
        for (int k = 0; k < 3; ++k) staged_src[3 * i + k] = stage_part(U.stage, k) + U.stage_skip[k];
      }
      U.state = State::kLoading;
    }
    lk.unlock();
    std::vector<Status> errs(nth);
    std::vector<double> rs(nth, 0), ps(nth, 0);
    std::vector<uint64_t> bs(nth, 0);
    const int64_t n_items = static_cast<int64_t>(batch.size()) * 3;
    const auto work = [&](int ith, int nt) {
      for (int64_t i = ith; i < n_items; i += nt) {
        const int64_t u = batch[i / 3];
        const int k = static_cast<int>(i % 3);
        const uint8_t* src = staged_src[i];
        Status s;
        if (!src && units_[u].raw) {  // straight into the slot, as a stage would hold it
          s = pread_part(u, k, units_[u].buf + stage_off_[k], &rs[ith], &bs[ith], &src);
        } else if (!src) {
          std::vector<uint8_t>& sv = staging_[ith];
          if (sv.size() < stage_part_[k] + align_) sv.resize(stage_bytes_ + align_);
          uint8_t* buf = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(sv.data()), align_));
          s = pread_part(u, k, buf, &rs[ith], &bs[ith], &src);
        }
        if (s.is_ok()) s = pack_part(u, k, src, &ps[ith]);
        if (!s.is_ok() && errs[ith].is_ok()) errs[ith] = std::move(s);
      }
    };
    if (n_items == 1 || nth == 1)
      work(0, 1);
    else
      pool.run(work);
    lk.lock();
    for (int i = 0; i < nth; ++i) {
      st_.read_s += rs[i];
      st_.pack_s += ps[i];
      st_.bytes_read += bs[i];
      if (!errs[i].is_ok() && failed.is_ok()) failed = errs[i];
    }
    for (int64_t u : batch) {
      Unit& U = units_[u];
      if (U.stage >= 0) {
        free_stage_locked(u);
      } else {
        ++st_.units_read;
      }
      U.state = State::kReady;
    }
    if (!failed.is_ok()) return fail_all(failed);
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t u = id(layer, experts[i]);
    for (int k = 0; k < 3; ++k) views[3 * i + k] = view(u, k);
  }
  st_.wait_s += now_s() - t0;
  return Status::ok();
}

void ExpertCache::release(int layer, const int32_t* experts, size_t n) {
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < n; ++i) {
    Unit& U = units_[id(layer, experts[i])];
    if (U.pins > 0) --U.pins;
  }
}

void ExpertCache::prefetch(int layer, const std::vector<int32_t>& experts) {
  if (st_.stages == 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  // A prediction right less than a third of the time costs more reads than it saves
  // waits (measured on random-weight MoE files, where attention moves the routing a lot):
  // then only every 8th layer step predicts, to notice when it gets better.
  if (accuracy_ < kMinAccuracy && ++skipped_ % 8 != 0) return;
  bool queued = false;
  for (int32_t e : experts) {
    const int64_t u = id(layer, e);
    Unit& U = units_[u];
    if (U.state != State::kAbsent) continue;
    if (free_stages_.empty()) break;
    U.stage = free_stages_.back();
    free_stages_.pop_back();
    U.state = State::kQueued;
    U.drop = false;
    staged_.push_back(u);
    queue_.push_back(u);
    ++st_.prefetch_issued;
    queued = true;
  }
  if (queued) cv_.notify_all();
}

void ExpertCache::reader_main() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const int64_t u = queue_.front();
    queue_.pop_front();
    Unit& U = units_[u];
    U.state = State::kReading;
    const int stage = U.stage;
    lk.unlock();
    double rs = 0;
    uint64_t bs = 0;
    Status s;
    const uint8_t* src[3] = {};
    for (int k = 0; k < 3 && s.is_ok(); ++k) s = pread_part(u, k, stage_part(stage, k), &rs, &bs, &src[k]);
    lk.lock();
    st_.read_s += rs;
    st_.bytes_read += bs;
    ++st_.units_read;
    if (U.drop || !s.is_ok()) {
      // not needed any more, or failed (an acquire waiting for it reads it itself and
      // reports the error)
      if (U.drop) ++st_.prefetch_dropped;
      free_stage_locked(u);
      if (U.state == State::kReading) U.state = State::kAbsent;
      U.drop = false;
    } else {
      U.state = State::kStaged;
      for (int k = 0; k < 3; ++k) U.stage_skip[k] = static_cast<uint32_t>(src[k] - stage_part(stage, k));
    }
    cv_.notify_all();
  }
}

double ExpertCache::measure_read_bandwidth(ThreadPool& pool, size_t max_bytes) {
  std::vector<int64_t> us;
  for (int64_t u = 0; u < static_cast<int64_t>(units_.size()); ++u)
    if (unit_bytes_[unit_layer_[u]] > 0) us.push_back(u);
  // a fixed shuffle: reads at scattered offsets, as a cache's misses are
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = us.size(); i > 1; --i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::swap(us[i - 1], us[x % i]);
  }
  size_t total = 0, n = 0;
  while (n < us.size() && total < max_bytes) total += unit_bytes_[unit_layer_[us[n++]]];
  us.resize(n);
  const int nth = pool.n_threads();
  std::vector<std::vector<uint8_t>> staging(nth);
  std::vector<uint64_t> bs(nth, 0);
  std::vector<double> rs(nth, 0);
  const int64_t n_items = static_cast<int64_t>(n) * 3;
  const double t0 = now_s();
  pool.run([&](int ith, int nt) {
    staging[ith].resize(stage_bytes_ + align_);
    uint8_t* buf = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(staging[ith].data()), align_));
    for (int64_t i = ith; i < n_items; i += nt) {
      const uint8_t* p = nullptr;
      (void)pread_part(us[i / 3], static_cast<int>(i % 3), buf, &rs[ith], &bs[ith], &p);
    }
  });
  const double dt = now_s() - t0;
  uint64_t b = 0;
  for (uint64_t v : bs) b += v;
  return dt > 0 ? b / dt : 0.0;
}

ExpertCacheStats ExpertCache::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  ExpertCacheStats s = st_;
  s.allocated_bytes = allocated_ + static_cast<size_t>(st_.stages) * stage_bytes_;
  int64_t r = 0;
  for (int64_t u : ring_) r += units_[u].state == State::kReady;
  s.resident_units = r;
  return s;
}

}  // namespace tachyon::model
