// Routed experts under a memory budget (`--mem-budget SIZE`, issue 23).
//
// Without a budget, a MoE model's expert tensors are packed into RAM at load like every
// other matrix. With one, they never are: the unit of caching is one (layer, expert) -
// its gate, up and down matrices - read from the GGUF file with pread (O_DIRECT where the
// file system allows, so that the page cache does not hold a second copy of what the
// budget excludes), checked (validate, as at load), and kept in a cache of at most
// `budget` bytes, either repacked into the SIMD layout the resident matrices use or, when
// read for a decode step, in the file's layout (see acquire()). Attention, norms, routers,
// embeddings and the output stay resident as before.
//
// Replacement is CLOCK with a small use counter per unit (a hit adds 1 up to 3; the hand
// takes 1 from each unit it passes and evicts the first at 0): recency and frequency, O(1)
// per eviction. Units pinned by the layer being computed, and units being read, are never
// evicted.
//
// Each MoE layer asks for its active experts through plan() + acquire()/release(): plan
// orders them resident-first and cuts them into waves that each fit the cache (a prefill
// step touching more experts than fit runs them wave by wave, reading each expert once per
// step); acquire pins a wave's units, reading the missing ones on the compute pool's
// threads (pread into the slot, or into a staging buffer and repacked into the slot).
//
// Prefetch: the model predicts a layer's experts from the hidden state entering it (that
// layer's FFN norm and router) and queues them while the layer's attention runs. A reader
// thread only preads them into a few staging buffers (with O_DIRECT it sleeps in I/O and
// takes no core from the compute threads, which matters on 2-core machines); the layer's
// acquire then repacks the ones it needs into slots. A prediction therefore never evicts
// anything: a wrong one costs only its read. Staged units the layer does not need are
// dropped by its plan().
//
// Memory: the budget holds the staging buffers (kStages units' raw bytes, when the budget
// has room for them and 2 slots besides; else no prefetch) and one arena, 2 MiB-aligned
// and advised as huge pages (decode streams each expert once per token: 4 KiB pages cost
// a TLB miss every 4 KiB), cut into slots of the largest unit's size (a mix whose
// down_exps differ by layer wastes the difference in the smaller units' slots), touched
// at load (a huge page's first touch in a step cost that token ~10 ms). Outputs are
// bit-identical to the resident model's: packed units run the packed kernels on the
// bytes the resident model packs, raw units the row kernels, which give the same bits.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"

namespace tachyon::model {

// Counters since load (monotonic) and gauges, a consistent snapshot.
struct ExpertCacheStats {
  size_t budget_bytes = 0;      // --mem-budget
  size_t allocated_bytes = 0;   // staging buffers + slots in use now (<= budget_bytes)
  int64_t slots = 0;            // units the budget holds at once
  int64_t stages = 0;           // prefetch staging buffers (0: prefetch off)
  size_t expert_bytes = 0;      // all routed experts, as cached (packed) units
  size_t expert_file_bytes = 0;  // ... as stored in the file
  int64_t units = 0;            // (layer, expert) units in the model
  int64_t resident_units = 0;   // cached now
  uint64_t lookups = 0;         // units a layer needed
  uint64_t hits = 0;            // ... found resident
  uint64_t prefetch_hits = 0;   // ... found staged or being read by a prefetch
  uint64_t misses = 0;          // ... read while the layer waited
  uint64_t bytes_read = 0;      // from the file, sync and prefetch (O_DIRECT rounding included)
  uint64_t units_read = 0;
  uint64_t prefetch_issued = 0;     // units queued for prefetch
  uint64_t prefetch_used = 0;       // ... that their layer then needed
  uint64_t prefetch_dropped = 0;    // ... dropped unused
  uint64_t evictions = 0;
  uint64_t repacks = 0;         // raw units repacked once they proved hot
  double read_s = 0;   // seconds inside pread (summed over threads)
  double pack_s = 0;   // seconds checking and repacking what was read (summed over threads)
  double wait_s = 0;   // seconds the forward pass waited for expert reads
  bool direct_io = false;  // O_DIRECT reads
  double hit_rate() const { return lookups ? static_cast<double>(hits + prefetch_hits) / lookups : 0.0; }
};

class ExpertCache {
 public:
  // One stacked expert tensor of a layer: n_expert matrices of rows_per_expert rows.
  struct Tensor {
    std::string name;
    DType type = DType::F32;
    int64_t n_cols = 0, rows_per_expert = 0;
    size_t row_bytes = 0;
    int part = 0;              // split part of the file
    uint64_t file_offset = 0;  // of expert 0's first row
  };
  struct Layer {
    int n_expert = 0;
    Tensor t[3];  // gate, up, down
  };
  struct Options {
    size_t budget = 0;
    bool prefetch = true;
    bool direct_io = true;  // try O_DIRECT (TACHYON_EXPERT_DIRECT=0 turns it off)
  };

  // layers: one entry per model layer (n_expert 0 for dense ones); part_paths: the file's
  // parts. Fails when the budget cannot hold one unit, or a file cannot be opened.
  static Result<std::unique_ptr<ExpertCache>> create(const std::vector<Layer>& layers,
                                                     const std::vector<std::string>& part_paths, const Options& opt);
  ~ExpertCache();
  ExpertCache(const ExpertCache&) = delete;
  ExpertCache& operator=(const ExpertCache&) = delete;

  bool prefetch_enabled() const { return opt_.prefetch; }
  size_t budget() const { return opt_.budget; }

  // Orders the layer's active experts (distinct, any order) into *order, cached first,
  // then staged by prefetch, then the rest, and cuts them into waves that fit the slots:
  // wave w is order[wave_end[w-1], wave_end[w]). Drops staged or queued prefetches that
  // this layer does not need (and every other layer's).
  void plan(int layer, const std::vector<int32_t>& active, std::vector<int32_t>* order, std::vector<size_t>* wave_end);
  // Pins experts[0, n) of a layer (one wave of plan()), reading the missing ones on the
  // pool, and writes their gate, up and down views to views[3 * i + 0/1/2]. n_tok[i]:
  // the step's tokens for expert i. A unit read for at least kPackMinTokens tokens is
  // repacked into the SIMD layout (a prefill's GEMM pays that back many times); one read
  // for fewer stays in the file's layout, read straight into its slot (a decode step's
  // matrix-vector product gains too little from the layout to pay for repacking each
  // miss: ~0.8 ms of a core per Q4_K expert). Both give the same bits (packed kernels are
  // bit-identical to vec_dot). A raw unit is repacked in place on its kRepackHits-th hit
  // (or when a step gives it kPackMinTokens tokens) while the hit rate is at least
  // kRepackHitRate. Fails (nothing pinned) on a read error
  // or a corrupt block.
  Status acquire(int layer, const int32_t* experts, const int32_t* n_tok, size_t n, kernels::MatView* views,
                 ThreadPool& pool);
  // Unpins what acquire() pinned.
  void release(int layer, const int32_t* experts, size_t n);
  // Queues reads of a layer's experts (most wanted first) for the reader thread, as many
  // as there are free staging buffers; units cached or already on their way are skipped.
  // While the predictions' accuracy (EMA over layer steps) is below 1/3, only every 8th
  // call queues anything (a probe).
  void prefetch(int layer, const std::vector<int32_t>& experts);

  ExpertCacheStats stats() const;
  // Bytes per second of reading units as misses do (same file descriptors, scattered
  // units, parts split over the pool's threads), over about max_bytes; nothing cached.
  // The I/O roofline of a budget: this / bytes missed per token.
  double measure_read_bandwidth(ThreadPool& pool, size_t max_bytes);

 private:
  static constexpr int kStages = 4;
  static constexpr int kPackMinTokens = 4;
  static constexpr double kMinAccuracy = 1.0 / 3;
  // A raw unit is repacked on its 2nd hit while at least 90% of lookups hit (EMA over
  // layer steps): then units live long enough to pay the repacking back; below, they
  // are evicted first (measured: repacking at a 67% hit rate cost a third of tg).
  static constexpr int kRepackHits = 2;
  static constexpr double kRepackHitRate = 0.9;
  // kAbsent -> (prefetch) kQueued -> kReading -> kStaged -> (acquire) kLoading -> kReady,
  // or kAbsent -> (acquire) kLoading -> kReady; kReady -> (eviction) kAbsent.
  enum class State : uint8_t { kAbsent, kQueued, kReading, kStaged, kLoading, kReady };
  struct Unit {
    State state = State::kAbsent;
    bool drop = false;   // kReading: not needed any more, free it when the read ends
    uint8_t use = 0;     // CLOCK counter
    int pins = 0;
    int stage = -1;      // staging buffer (kQueued, kReading, kStaged, and kLoading from a stage)
    uint32_t stage_skip[3] = {};  // kStaged: where each part's bytes start in its stage region
    uint8_t* buf = nullptr;  // slot (kLoading, kReady)
    bool raw = false;         // kLoading, kReady: the file's layout (else repacked)
    int raw_hits = 0;         // hits since it was read raw
    size_t part_off[3] = {};  // repacked: offsets of gate/up/down in the slot
    uint32_t raw_skip[3] = {};  // raw: part k starts at stage_off_[k] + raw_skip[k] in the slot
    int ring_pos = -1;        // index in ring_ while holding a slot
  };
  ExpertCache() = default;
  int64_t id(int layer, int e) const { return unit_base_[layer] + e; }
  // Takes a slot for unit u, evicting unpinned ready units as needed (under mu_). false
  // when nothing more can be evicted.
  bool reserve_locked(int64_t u);
  void free_slot_locked(int64_t u);
  void free_stage_locked(int64_t u);
  bool evict_one_locked();
  // Preads part k of unit u into buf (align_-aligned, at least stage_part_[k] bytes);
  // *out: where the part's bytes start in buf.
  Status pread_part(int64_t u, int k, uint8_t* buf, double* read_s, uint64_t* bytes, const uint8_t** out) const;
  // Checks part k's raw bytes and repacks them into u's slot (or, for a raw unit, copies
  // them there unless they are there already).
  Status pack_part(int64_t u, int k, const uint8_t* src, double* pack_s);
  uint8_t* stage_part(int stage, int k) const { return stages_ + stage * stage_bytes_ + stage_off_[k]; }
  void reader_main();
  kernels::MatView view(int64_t u, int k) const;
  bool packs_any(int64_t u) const;

  Options opt_;
  std::vector<Layer> layers_;
  std::vector<int64_t> unit_base_;     // first unit id of each layer
  std::vector<int> unit_layer_;        // layer of each unit
  std::vector<size_t> part_bytes_[3];  // per layer: packed (or raw) bytes of each part
  std::vector<size_t> unit_bytes_;     // per layer
  size_t stage_part_[3] = {}, stage_off_[3] = {}, stage_bytes_ = 0;  // one staging buffer's layout
  std::vector<int> fds_, fds_buffered_;
  size_t align_ = 4096;
  int pack_min_tokens_ = kPackMinTokens;  // TACHYON_EXPERT_PACK_MIN overrides (experiments)
  int repack_hits_ = kRepackHits;         // TACHYON_EXPERT_REPACK_HITS overrides (0: never)

  mutable std::mutex mu_;
  std::condition_variable cv_;  // a read ended / the queue changed
  std::vector<Unit> units_;
  std::vector<int64_t> ring_;  // units holding a slot (CLOCK order)
  size_t hand_ = 0;
  uint8_t* arena_ = nullptr;   // stages, then slots
  size_t arena_bytes_ = 0, slot_bytes_ = 0;
  uint8_t* stages_ = nullptr;
  std::vector<uint8_t*> free_;  // free slots
  std::vector<int> free_stages_;
  size_t allocated_ = 0;
  std::deque<int64_t> queue_;  // prefetch queue
  std::vector<int64_t> staged_;  // units kQueued, kReading or kStaged
  bool stop_ = false;
  double accuracy_ = 1.0;  // EMA of the prediction's hit ratio (per layer step)
  double hit_ema_ = 0.0;   // EMA of the lookups' hit ratio (per acquire)
  uint64_t skipped_ = 0;
  ExpertCacheStats st_;
  std::vector<std::vector<uint8_t>> staging_;  // per pool thread (sync reads)
  std::vector<std::vector<uint8_t>> repack_scratch_;
  std::thread reader_;
};

}  // namespace tachyon::model
