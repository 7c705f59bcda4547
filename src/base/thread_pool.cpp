#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace tachyon {

namespace {
// How long a worker spins before sleeping: long enough to bridge the single-threaded
// gaps of a forward pass (norms, RoPE, sampling), short enough to give a shared core
// back soon after the engine goes idle.
constexpr auto kSpin = std::chrono::microseconds(1000);
// Pause iterations between clock reads while spinning.
constexpr int kPausesPerCheck = 64;

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  fn_ = &fn;
  rest_.store(false, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // seq_cst pairs with the worker's sleepers_ increment + generation re-check: either
  // we see it sleeping (and signal under the mutex) or it sees the new generation.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  fn(0, n_threads_);
  // The split is even, so the others finish about now: spin, then yield the core.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < 20000)
      cpu_relax();
    else
      std::this_thread::yield();
  }
  fn_ = nullptr;
}

void ThreadPool::worker(int ith) {
  uint64_t seen = 0;
  for (;;) {
    // Spin a little before sleeping: kernels are launched back to back.
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      do {
        for (int k = 0; k < kPausesPerCheck && g == seen; ++k) {
          cpu_relax();
          g = generation_.load(std::memory_order_acquire);
        }
      } while (g == seen && !rest_.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lk, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*fn_)(ith, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::rest() { rest_.store(true, std::memory_order_relaxed); }

RangeSplit::RangeSplit(int64_t n, int nth) : nth_(nth), ranges_(new Range[static_cast<size_t>(nth)]) {
  for (int i = 0; i < nth; ++i) {
    int64_t b, e;
    split_range(n, i, nth, &b, &e);
    ranges_[i].fb.store(static_cast<uint64_t>(b) | static_cast<uint64_t>(e) << 32, std::memory_order_relaxed);
  }
}

bool RangeSplit::next_run(int ith, int64_t run, int64_t steal, int64_t* begin, int64_t* end) {
  auto front = [](uint64_t v) { return static_cast<int64_t>(v & 0xffffffffu); };
  auto back = [](uint64_t v) { return static_cast<int64_t>(v >> 32); };
  run = std::max<int64_t>(1, run);
  steal = std::max<int64_t>(1, steal);
  std::atomic<uint64_t>& own = ranges_[ith].fb;
  for (uint64_t v = own.load(std::memory_order_relaxed); front(v) < back(v);) {
    const int64_t take = std::min(run, back(v) - front(v));
    if (own.compare_exchange_weak(v, v + static_cast<uint64_t>(take), std::memory_order_relaxed)) {
      *begin = front(v);
      *end = front(v) + take;
      return true;
    }
  }
  for (;;) {
    int victim = -1;
    int64_t most = 0;
    uint64_t vv = 0;
    for (int j = 0; j < nth_; ++j) {
      const uint64_t v = ranges_[j].fb.load(std::memory_order_relaxed);
      if (back(v) - front(v) > most) {
        most = back(v) - front(v);
        victim = j;
        vv = v;
      }
    }
    if (victim < 0) return false;
    const int64_t take = std::min(steal, most);
    const uint64_t nv = (vv & 0xffffffffu) | static_cast<uint64_t>(back(vv) - take) << 32;
    if (ranges_[victim].fb.compare_exchange_weak(vv, nv, std::memory_order_relaxed)) {
      *begin = back(vv) - take;
      *end = back(vv);
      return true;
    }
  }
}

bool RangeSplit::next(int ith, int64_t* item) {
  int64_t end;
  return next_run(ith, 1, 1, item, &end);
}

}  // namespace tachyon
