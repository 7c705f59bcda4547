// Persistent compute pool: n-1 worker threads plus the caller. run(fn) calls
// fn(ith, nth) once for every ith in [0, nth) and returns when all are done. Workers
// spin on a generation counter (about a millisecond: the gaps between the kernels of a
// forward pass), then sleep on a condition variable; a launch only takes the mutex and
// signals when some worker sleeps. Back-to-back kernel launches cost no syscalls.
// Not reentrant: one run() at a time (the engine thread owns the pool).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tachyon {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }
  void run(const std::function<void(int ith, int nth)>& fn);
  // The caller will not run() for a while (e.g. the engine's serial part of a step):
  // workers sleep now instead of spinning on their cores, which leaves those cores to
  // other threads (the server's I/O threads), at the price of one wake-up at the next
  // run(). The next run() ends the rest.
  void rest();

 private:
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* fn_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};  // workers blocked (or about to block) on cv_
  std::atomic<bool> rest_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

// Splits [0, n) into nth nearly equal contiguous ranges; returns ith's [begin, end).
inline void split_range(int64_t n, int ith, int nth, int64_t* begin, int64_t* end) {
  const int64_t per = (n + nth - 1) / nth;
  *begin = std::min<int64_t>(n, per * ith);
  *end = std::min<int64_t>(n, *begin + per);
}

// Work over [0, n) handed out as in split_range, with stealing: thread ith walks its own
// contiguous range front to back (so each thread streams one address range and the
// hardware prefetcher keeps up), and once it is done takes items from the back of the
// range with the most items left. A static split stalls every kernel on its slowest
// thread (on a shared 2-core box the two cores often run 10-20% apart); this one ends
// both within about one item. Lock-free: each range is one 64-bit word (front, back).
class RangeSplit {
 public:
  RangeSplit(int64_t n, int nth);
  // The next item for thread ith; false when every range is empty.
  bool next(int ith, int64_t* item);
  // The same walk in runs of items [*begin, *end): up to `run` from the front of ith's own
  // range, then up to `steal` from the back of the fullest other range. A small steal
  // keeps the threads' finishing times within a fraction of a run (a kernel's tail then
  // waits on a quarter of an L2 tile instead of a whole one).
  bool next_run(int ith, int64_t run, int64_t steal, int64_t* begin, int64_t* end);

 private:
  struct alignas(64) Range {
    std::atomic<uint64_t> fb{0};  // front in the low 32 bits, back (one past) in the high
  };
  int nth_;
  std::unique_ptr<Range[]> ranges_;
};

}  // namespace tachyon
